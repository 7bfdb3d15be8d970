//! The OpenAPI 3.1 document served at `/admin/openapi.json`, generated from
//! [`ROUTES`] (the list the router is built from) plus the schemas of the
//! JSON shapes. A test probes every path and method it names against a
//! live server.

use serde_json::{Map, Value, json};

use crate::routes::{Answer, Body, ROUTES, Route};
use crate::{JSON_BODY_MAX, MODULE_BODY_MAX};

const HEX: &str = "#/components/schemas/Hex";

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `Name` → a reference; `[Name]` → an array of them.
fn answer_schema(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')) {
        Some(inner) => json!({ "type": "array", "items": schema_ref(inner) }),
        None => schema_ref(name),
    }
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn operation(route: &Route) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(format!("{:?}", route.endpoint)));
    op.insert("summary".into(), json!(route.summary));
    op.insert("tags".into(), json!([route.tag]));
    let mut parameters = Vec::new();
    if route.path.contains("{id}") {
        parameters.push(json!({ "name": "id", "in": "path", "required": true, "schema": { "$ref": HEX } }));
    }
    if route.path == "/events" {
        parameters.push(json!({
            "name": "context", "in": "query", "required": false, "explode": true,
            "description": "A context to follow (repeatable); all contexts when absent.",
            "schema": { "type": "array", "items": { "$ref": HEX } },
        }));
    }
    if matches!(route.path, "/events" | "/ws") {
        parameters.push(json!({
            "name": "ticket", "in": "query", "required": false,
            "description": "A single-use ticket from POST /admin/tickets, for clients that cannot set headers (browsers). The token itself is never accepted in a URL.",
            "schema": { "type": "string" },
        }));
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    match route.body {
        Body::None => {}
        Body::Json(name) => {
            let description = format!("JSON, at most {JSON_BODY_MAX} bytes");
            op.insert(
                "requestBody".into(),
                json!({ "required": false, "description": description, "content": json_content(schema_ref(name)) }),
            );
        }
        Body::Module => {
            let binary = json!({ "schema": { "type": "string", "contentMediaType": "application/wasm" } });
            let description = format!("The WASM module, at most {MODULE_BODY_MAX} bytes");
            op.insert(
                "requestBody".into(),
                json!({
                    "required": true,
                    "description": description,
                    "content": { "application/wasm": binary, "application/octet-stream": binary },
                }),
            );
        }
    }
    let mut responses = Map::new();
    let (status, success) = match route.answer {
        Answer::Json(status, name) => {
            (status, json!({ "description": "OK", "content": json_content(answer_schema(name)) }))
        }
        Answer::Empty(status) => (status, json!({ "description": "Done, no body" })),
        Answer::Text => (
            200,
            json!({ "description": "Prometheus text", "content": { "text/plain": { "schema": { "type": "string" } } } }),
        ),
        Answer::EventStream => (
            200,
            json!({ "description": "Server-Sent Events: `state_mutation`, `sync`, `error`", "content": { "text/event-stream": { "schema": { "type": "string" } } } }),
        ),
        Answer::Upgrade => (101, json!({ "description": "Switching to the WebSocket protocol" })),
    };
    responses.insert(status.to_string(), success);
    responses
        .insert("default".into(), json!({ "description": "An error", "content": json_content(schema_ref("Error")) }));
    op.insert("responses".into(), Value::Object(responses));
    if route.path == "/health" {
        op.insert("security".into(), json!([]));
    }
    Value::Object(op)
}

fn schemas() -> Value {
    let hex = json!({ "$ref": HEX });
    let hexes = json!({ "type": "array", "items": { "$ref": HEX } });
    let count = json!({ "type": "integer", "minimum": 0 });
    let stats_fields = [
        "applied",
        "duplicates",
        "rejected",
        "unvetted",
        "apply_failures",
        "syncs_started",
        "sessions_timed_out",
        "parent_requests",
        "escalations",
        "divergences",
        "store_failures",
        "pending_refused",
        "history_pruned",
        "history_forgotten",
    ];
    let stats: Map<String, Value> = stats_fields.iter().map(|f| ((*f).to_owned(), count.clone())).collect();
    json!({
        "Hex": { "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes, lowercase hex" },
        "Key": { "$ref": HEX },
        "Object": { "type": "object" },
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": {
                "type": "object", "required": ["code", "message"],
                "properties": { "code": { "type": "string" }, "message": { "type": "string" } },
            } },
        },
        "Health": { "type": "object", "properties": { "status": { "const": "ok" } } },
        "AppInfo": {
            "type": "object", "required": ["id", "name", "size", "methods"],
            "properties": {
                "id": hex, "name": { "type": "string" }, "size": count,
                "methods": { "type": "array", "items": {
                    "type": "object", "required": ["name", "kind"],
                    "properties": {
                        "name": { "type": "string" },
                        "kind": { "enum": ["init", "mutate", "view", "handler"] },
                    },
                } },
            },
        },
        "ContextInfo": {
            "type": "object",
            "properties": {
                "id": hex, "application": hex, "identity": hex, "members": hexes, "root_hash": hex,
                "heads": hexes, "applied": count, "pending": count, "handler_jobs": count, "peers": hexes,
            },
        },
        "SyncStatus": {
            "type": "object",
            "properties": {
                "id": hex, "root_hash": hex, "heads": hexes, "applied": count, "pending": count, "peers": hexes,
                "stats": { "type": "object", "properties": stats },
            },
        },
        "Identity": { "type": "object", "properties": { "public_key": hex, "default": { "type": "boolean" } } },
        "Peer": {
            "type": "object",
            "properties": {
                "peer_id": { "type": "string" },
                "addrs": { "type": "array", "items": { "type": "string" } },
                "agent": { "type": ["string", "null"] },
                "rtt_ms": { "type": ["number", "null"] },
            },
        },
        "CreateContext": {
            "type": "object", "required": ["application"],
            "properties": { "application": hex, "init_args": { "description": "JSON for init; default {}" } },
        },
        "Invite": {
            "type": "object",
            "properties": {
                "invitee": { "oneOf": [hex, { "type": "null" }] },
                "valid_for_secs": { "type": ["integer", "null"], "minimum": 1 },
            },
        },
        "Invitation": { "type": "object", "properties": { "invitation": { "type": "string" } } },
        "Join": { "type": "object", "required": ["invitation"], "properties": { "invitation": { "type": "string" } } },
        "SyncNow": { "type": "object", "properties": { "context": { "oneOf": [hex, { "type": "null" }] } } },
        "Revoke": {
            "type": "object", "required": ["invitation"], "additionalProperties": false,
            "properties": { "invitation": { "type": "string", "description": "weft-invite1:… or its id (hex)" } },
        },
        "Revoked": { "type": "object", "properties": { "revoked": hex } },
        "RemoveMember": {
            "type": "object", "required": ["member"], "additionalProperties": false,
            "properties": { "member": hex },
        },
        "MemberRemoved": { "type": "object", "properties": { "removed": hex, "delta": hex } },
        "KeyEpoch": {
            "type": "object",
            "properties": {
                "number": count, "rotation": hex, "recipients": count,
                "held": { "type": "boolean" }, "current": { "type": "boolean" },
            },
        },
        "DeadJob": {
            "type": "object",
            "properties": {
                "sequence": count, "delta": hex, "event": count, "handler": { "type": "string" },
                "attempts": count, "last_error": { "type": "string" },
            },
        },
        "Ticket": {
            "type": "object",
            "properties": { "ticket": { "type": "string" }, "expires_in_ms": count },
        },
        "SyncStarted": { "type": "object", "properties": { "started": count } },
        "RpcRequest": {
            "type": "object", "required": ["jsonrpc", "method"],
            "properties": {
                "jsonrpc": { "const": "2.0" },
                "id": { "type": ["string", "number", "null"] },
                "method": { "enum": ["execute", "query", "sync_status"] },
                "params": { "type": "object" },
            },
        },
        "RpcResponse": {
            "type": "object", "required": ["jsonrpc", "id"],
            "properties": {
                "jsonrpc": { "const": "2.0" },
                "id": { "type": ["string", "number", "null"] },
                "result": {},
                "error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": { "code": { "type": "integer" }, "message": { "type": "string" }, "data": {} },
                },
            },
        },
    })
}

/// The OpenAPI 3.1 document of every route this server serves.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in &ROUTES {
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.verb.name().to_owned(), operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Weft node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Admin REST, JSON-RPC 2.0, live events and metrics of one Weft node. \
                The bearer token is required when the API listens off loopback, optional on loopback.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_once_and_every_schema_reference_resolves() {
        let doc = openapi();
        let operations: usize =
            doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
        assert_eq!(operations, ROUTES.len());
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "dangling reference to {name}");
        }
    }
}
