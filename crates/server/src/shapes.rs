//! The JSON shapes of the node's nouns, as `docs/api.md` defines them:
//! AppInfo, ContextInfo, SyncStatus. Ids and keys are lowercase hex.

use serde_json::{Value, json};
use weft_node::{AppInfo, ContextInfo};
use weft_primitives::{Hash, PublicKey};

/// Lowercase hex of 32 raw bytes (ids, public keys, node keys).
pub(crate) fn hex32(bytes: &[u8; 32]) -> String {
    Hash(*bytes).to_hex()
}

pub(crate) fn key_hex(key: &PublicKey) -> String {
    hex32(&key.0)
}

/// Bytes an application produced (results, errors, event data): JSON when
/// they parse as JSON, `null` when empty, a (lossy UTF-8) string otherwise.
pub(crate) fn app_json(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

pub(crate) fn app_info(info: &AppInfo) -> Value {
    let methods: Vec<Value> = info.methods.iter().map(|(name, kind)| json!({ "name": name, "kind": kind })).collect();
    json!({ "id": info.id.to_hex(), "name": info.name, "size": info.size, "methods": methods })
}

pub(crate) fn context_info(info: &ContextInfo) -> Value {
    json!({
        "id": info.id.to_hex(),
        "application": info.application.to_hex(),
        "identity": key_hex(&info.identity),
        "members": info.members.iter().map(key_hex).collect::<Vec<_>>(),
        "root_hash": info.root_hash.to_hex(),
        "heads": info.heads.iter().map(Hash::to_hex).collect::<Vec<_>>(),
        "applied": info.applied,
        "pending": info.pending,
        "handler_jobs": info.handler_jobs,
        "peers": info.peers.iter().map(hex32).collect::<Vec<_>>(),
    })
}

pub(crate) fn sync_status(info: &ContextInfo) -> Value {
    let stats = &info.stats;
    json!({
        "id": info.id.to_hex(),
        "root_hash": info.root_hash.to_hex(),
        "heads": info.heads.iter().map(Hash::to_hex).collect::<Vec<_>>(),
        "applied": info.applied,
        "pending": info.pending,
        "peers": info.peers.iter().map(hex32).collect::<Vec<_>>(),
        "member_nodes_known": info.member_nodes_known,
        "reachable": !info.peers.is_empty(),
        "stats": {
            "applied": stats.applied,
            "duplicates": stats.duplicates,
            "rejected": stats.rejected,
            "unvetted": stats.unvetted,
            "apply_failures": stats.apply_failures,
            "syncs_started": stats.syncs_started,
            "sessions_timed_out": stats.sessions_timed_out,
            "parent_requests": stats.parent_requests,
            "escalations": stats.escalations,
            "divergences": stats.divergences,
            "store_failures": stats.store_failures,
            "pending_refused": stats.pending_refused,
            "history_pruned": stats.history_pruned,
            "history_forgotten": stats.history_forgotten,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_output_is_json_when_it_parses_null_when_empty_else_a_string() {
        assert_eq!(app_json(b""), Value::Null);
        assert_eq!(app_json(br#"{"a":1}"#), json!({ "a": 1 }));
        assert_eq!(app_json(b"not json"), json!("not json"));
    }
}
