//! `POST /jsonrpc`: JSON-RPC 2.0 with the methods `execute` (a mutation,
//! answered once its delta is durable), `query` (a view) and `sync_status`.
//!
//! Exact 2.0 shapes: every response has `"jsonrpc": "2.0"` and echoes the
//! request's `id` (null, number or string) — `null` when the request was
//! unreadable; a notification (no `id` member) is executed and answered
//! `204` without a body. Batches are refused (`-32600`). Responses travel
//! with HTTP 200; only transport-level failures (an oversized body, a
//! missing token) are HTTP errors.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_node::NodeError;
use weft_primitives::Hash;

use crate::errors::{body_bytes, one_line, require_json};
use crate::rest::contexts::args_bytes;
use crate::shapes::{app_json, sync_status};
use crate::state::ApiState;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC 2.0 request object (batches included).
pub const INVALID_REQUEST: i64 = -32600;
/// No such JSON-RPC method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;
/// Anything else.
pub const INTERNAL_ERROR: i64 = -32603;
/// The application returned an error (`data` is its JSON).
pub const APP_ERROR: i64 = -32000;
/// No such context on this node.
pub const UNKNOWN_CONTEXT: i64 = -32001;
/// The application has no such method, or it is of the wrong kind.
pub const UNKNOWN_METHOD: i64 = -32002;
/// The node is stopped.
pub const NODE_STOPPED: i64 = -32003;

/// A JSON-RPC error object.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), data: None }
    }

    fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }
}

impl From<NodeError> for RpcError {
    fn from(error: NodeError) -> RpcError {
        let message = one_line(&error.to_string());
        match error {
            NodeError::App(bytes) => RpcError::new(APP_ERROR, "application error").with_data(app_json(&bytes)),
            NodeError::UnknownContext(_) => RpcError::new(UNKNOWN_CONTEXT, message),
            NodeError::UnknownMethod(_) | NodeError::NotCallable { .. } => RpcError::new(UNKNOWN_METHOD, message),
            NodeError::Stopped => RpcError::new(NODE_STOPPED, message),
            // The node's stable code tells clients which failure it was.
            other => RpcError::new(INTERNAL_ERROR, message).with_data(json!({ "code": other.code() })),
        }
    }
}

/// One readable request.
struct Call {
    /// `None` for a notification.
    id: Option<Value>,
    method: String,
    params: Option<Value>,
}

/// Check the envelope; on failure, the id to answer with (null when it
/// could not be read) and the error.
fn envelope(value: Value) -> Result<Call, (Value, RpcError)> {
    let invalid = |id: Value, why: &str| (id, RpcError::new(INVALID_REQUEST, format!("invalid request: {why}")));
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(invalid(Value::Null, "batches are not supported")),
        _ => return Err(invalid(Value::Null, "expected a JSON object")),
    };
    let id = object.remove("id");
    let echo = match &id {
        None | Some(Value::Null | Value::Number(_) | Value::String(_)) => id.clone().unwrap_or(Value::Null),
        Some(_) => return Err(invalid(Value::Null, "`id` must be a string, a number or null")),
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid(echo, "`jsonrpc` must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid(echo, "`method` must be a string")),
    };
    let params = object.remove("params");
    if !matches!(params, None | Some(Value::Object(_) | Value::Array(_))) {
        return Err(invalid(echo, "`params` must be an object or an array"));
    }
    Ok(Call { id, method, params })
}

/// A request body as a call; on failure, the id to answer with and the error.
fn parse(bytes: &[u8]) -> Result<Call, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| (Value::Null, RpcError::new(PARSE_ERROR, format!("parse error: {e}"))))?;
    envelope(value)
}

/// The response object to a call with `id`.
fn response_body(id: Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => {
            let mut object = Map::new();
            object.insert("code".into(), json!(error.code));
            object.insert("message".into(), json!(error.message));
            if let Some(data) = error.data {
                object.insert("data".into(), data);
            }
            json!({ "jsonrpc": "2.0", "id": id, "error": object })
        }
    }
}

fn respond(id: Value, outcome: Result<Value, RpcError>) -> Response {
    (StatusCode::OK, Json(response_body(id, outcome))).into_response()
}

/// `POST /jsonrpc`.
pub(crate) async fn handle(State(state): State<ApiState>, request: Request) -> Response {
    if let Err(error) = require_json(&request) {
        return error.into_response();
    }
    let bytes = match body_bytes(request, &state).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let call = match parse(&bytes) {
        Ok(call) => call,
        Err((id, error)) => return respond(id, Err(error)),
    };
    let outcome = dispatch(&state, &call.method, call.params).await;
    match call.id {
        Some(id) => respond(id, outcome),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn dispatch(state: &ApiState, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
    match method {
        "execute" => call(state, params, Kind::Mutate).await,
        "query" => call(state, params, Kind::View).await,
        "sync_status" => status(state, params).await,
        other => Err(method_not_found(other)),
    }
}

fn method_not_found(method: &str) -> RpcError {
    RpcError::new(METHOD_NOT_FOUND, format!("method not found: {:?}", truncated(method)))
}

fn truncated(value: &str) -> String {
    const ECHO_MAX: usize = 80;
    value.chars().take(ECHO_MAX).collect()
}

/// What `execute` and `query` may call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mutate,
    View,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mutate => "mutate",
            Kind::View => "view",
        }
    }

    fn rpc_method(self) -> &'static str {
        match self {
            Kind::Mutate => "execute",
            Kind::View => "query",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    context: String,
    method: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StatusParams {
    #[serde(default)]
    context: Option<String>,
}

/// Params as `T`: an object (absent counts as `{}`); arrays are refused.
fn params<T: serde::de::DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let value = match params {
        None => Value::Object(Map::new()),
        Some(Value::Object(object)) => Value::Object(object),
        Some(_) => return Err(RpcError::new(INVALID_PARAMS, "invalid params: expected an object")),
    };
    serde_json::from_value(value)
        .map_err(|e| RpcError::new(INVALID_PARAMS, format!("invalid params: {}", one_line(&e.to_string()))))
}

fn context_id(value: &str) -> Result<Hash, RpcError> {
    value.parse().map_err(|_| {
        RpcError::new(
            INVALID_PARAMS,
            format!("invalid params: `context` must be 64 hex digits, got {:?}", truncated(value)),
        )
    })
}

/// `execute`/`query` params: the context and the call.
fn call_params(raw: Option<Value>) -> Result<(Hash, CallParams), RpcError> {
    let call: CallParams = params(raw)?;
    Ok((context_id(&call.context)?, call))
}

/// `sync_status` params: one context, or every context.
fn status_params(raw: Option<Value>) -> Result<Option<Hash>, RpcError> {
    let params: StatusParams = params(raw)?;
    params.context.as_deref().map(context_id).transpose()
}

/// Everything a request body is checked for before the node is asked: the
/// envelope and the params of the method it names; `Err` is the response.
pub(crate) fn check_request(bytes: &[u8]) -> Result<(), Value> {
    let call = parse(bytes).map_err(|(id, error)| response_body(id, Err(error)))?;
    let checked = match call.method.as_str() {
        "execute" | "query" => call_params(call.params).map(drop),
        "sync_status" => status_params(call.params).map(drop),
        other => Err(method_not_found(other)),
    };
    checked.map_err(|error| response_body(call.id.unwrap_or(Value::Null), Err(error)))
}

async fn call(state: &ApiState, raw: Option<Value>, kind: Kind) -> Result<Value, RpcError> {
    let (context, call) = call_params(raw)?;
    match state.method_kind(context, &call.method).await? {
        None => return Err(NodeError::UnknownMethod(call.method).into()),
        Some(actual) if actual != kind.name() => {
            let hint = match actual.as_str() {
                "mutate" => "; call it with `execute`",
                "view" => "; call it with `query`",
                _ => "; it cannot be called directly",
            };
            return Err(RpcError::new(
                UNKNOWN_METHOD,
                format!(
                    "`{}` calls {} methods; {:?} is a {actual} method{hint}",
                    kind.rpc_method(),
                    kind.name(),
                    call.method
                ),
            )
            .with_data(json!({ "code": "wrong_method_kind", "kind": actual })));
        }
        Some(_) => {}
    }
    let reply = state.node().call(context, &call.method, args_bytes(call.args)).await?;
    let output = app_json(&reply.result);
    Ok(match kind {
        Kind::Mutate => json!({
            "output": output,
            "delta": reply.delta.map(|delta| delta.to_hex()),
            "root_hash": reply.root_hash.to_hex(),
        }),
        Kind::View => json!({ "output": output }),
    })
}

async fn status(state: &ApiState, raw: Option<Value>) -> Result<Value, RpcError> {
    match status_params(raw)? {
        Some(context) => Ok(json!([sync_status(&state.node().context(context).await?)])),
        None => Ok(crate::rest::ops::sync_status_all(state).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_echoes_ids_and_tells_notifications_apart() {
        let call = envelope(json!({ "jsonrpc": "2.0", "id": 7, "method": "query" })).unwrap();
        assert_eq!(call.id, Some(json!(7)));
        let call = envelope(json!({ "jsonrpc": "2.0", "id": null, "method": "query" })).unwrap();
        assert_eq!(call.id, Some(Value::Null));
        let call = envelope(json!({ "jsonrpc": "2.0", "method": "query" })).unwrap();
        assert_eq!(call.id, None);
    }

    #[test]
    fn requests_are_checked_without_a_node() {
        let context = "ab".repeat(32);
        let good =
            json!({ "jsonrpc": "2.0", "id": 1, "method": "query", "params": { "context": context, "method": "get" } });
        assert_eq!(check_request(good.to_string().as_bytes()), Ok(()));
        let cases = [
            (b"{".to_vec(), Value::Null, PARSE_ERROR),
            (json!({ "jsonrpc": "2.0", "id": 2, "method": "nope" }).to_string().into_bytes(), json!(2), METHOD_NOT_FOUND),
            (
                json!({ "jsonrpc": "2.0", "id": 3, "method": "execute", "params": { "context": "xyz", "method": "m" } })
                    .to_string()
                    .into_bytes(),
                json!(3),
                INVALID_PARAMS,
            ),
            (json!({ "jsonrpc": "2.0", "method": "sync_status", "params": [] }).to_string().into_bytes(), Value::Null, INVALID_PARAMS),
        ];
        for (body, id, code) in cases {
            let response = check_request(&body).unwrap_err();
            assert_eq!((&response["id"], &response["error"]["code"]), (&id, &json!(code)), "{response}");
        }
    }

    #[test]
    fn malformed_envelopes_are_invalid_requests() {
        let cases = [
            (json!([]), Value::Null),
            (json!("x"), Value::Null),
            (json!({ "jsonrpc": "2.0", "id": {}, "method": "q" }), Value::Null),
            (json!({ "jsonrpc": "1.0", "id": "a", "method": "q" }), json!("a")),
            (json!({ "jsonrpc": "2.0", "id": 1, "method": 3 }), json!(1)),
            (json!({ "jsonrpc": "2.0", "id": 1, "method": "q", "params": 3 }), json!(1)),
        ];
        for (request, id) in cases {
            let Err((echo, error)) = envelope(request.clone()) else { panic!("{request} accepted") };
            assert_eq!((echo, error.code), (id, INVALID_REQUEST), "{request}");
        }
    }
}
