//! Live events as clients see them: a [`NodeEvent`] turned into the server
//! message of `docs/api.md` (`state_mutation` or `sync`), and the context
//! filter each WebSocket or SSE client has.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_node::NodeEvent;
use weft_primitives::Hash;

use crate::shapes::{app_json, hex32, key_hex};

/// Contexts one client may subscribe to by name.
pub const SUBSCRIPTIONS_MAX: usize = 1024;

/// One server message about one context.
pub(crate) struct LiveMessage {
    pub(crate) context: Hash,
    /// `state_mutation` or `sync` (the SSE event name).
    pub(crate) kind: &'static str,
    pub(crate) body: Value,
}

/// The message for `event`.
pub(crate) fn message(event: &NodeEvent) -> LiveMessage {
    match event {
        NodeEvent::StateMutation { context, root_hash, deltas } => {
            let applied: Vec<Value> = deltas
                .iter()
                .map(|d| json!({ "id": d.id.to_hex(), "author": key_hex(&d.author), "local": d.local }))
                .collect();
            let events: Vec<Value> = deltas
                .iter()
                .flat_map(|d| {
                    d.events.iter().map(move |e| {
                        json!({ "kind": e.kind, "data": app_json(&e.data), "handler": e.handler, "delta": d.id.to_hex() })
                    })
                })
                .collect();
            let body = json!({
                "type": "state_mutation",
                "context": context.to_hex(),
                "root_hash": root_hash.to_hex(),
                "deltas": applied,
                "events": events,
            });
            LiveMessage { context: *context, kind: "state_mutation", body }
        }
        NodeEvent::InSync { context, peer, root_hash } => {
            sync(*context, json!({ "event": "in_sync", "peer": hex32(peer), "root_hash": root_hash.to_hex() }))
        }
        NodeEvent::Diverged { context, peer } => sync(*context, json!({ "event": "diverged", "peer": hex32(peer) })),
        NodeEvent::SnapshotNeeded { context } => sync(*context, json!({ "event": "snapshot_needed" })),
        NodeEvent::MembersChanged { context, added, left } => sync(
            *context,
            json!({
                "event": "members_changed",
                "added": added.iter().map(key_hex).collect::<Vec<_>>(),
                "left": left.iter().map(key_hex).collect::<Vec<_>>(),
            }),
        ),
        NodeEvent::HandlerFailed { context, handler, error, attempts } => sync(
            *context,
            json!({ "event": "handler_failed", "handler": handler, "error": error, "attempts": attempts }),
        ),
    }
}

fn sync(context: Hash, mut fields: Value) -> LiveMessage {
    if let Value::Object(map) = &mut fields {
        map.insert("type".into(), json!("sync"));
        map.insert("context".into(), json!(context.to_hex()));
    }
    LiveMessage { context, kind: "sync", body: fields }
}

/// `{"type": "error", "message": …}`.
pub(crate) fn error_message(message: &str) -> Value {
    json!({ "type": "error", "message": message })
}

/// The message telling a client it missed events.
pub(crate) fn lagged_message(missed: u64) -> Value {
    error_message(&format!("missed {missed} events: this client fell behind the node's event bus"))
}

/// Which contexts a client receives.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Every context (an SSE client without `context=`, or a WebSocket
    /// `subscribe` without `contexts`).
    pub(crate) all: bool,
    pub(crate) contexts: BTreeSet<Hash>,
}

impl Filter {
    pub(crate) fn admits(&self, context: &Hash) -> bool {
        self.all || self.contexts.contains(context)
    }

    /// Add `contexts`, refusing to grow past [`SUBSCRIPTIONS_MAX`].
    pub(crate) fn subscribe(&mut self, contexts: impl IntoIterator<Item = Hash>) -> Result<(), String> {
        for context in contexts {
            if self.contexts.len() >= SUBSCRIPTIONS_MAX && !self.contexts.contains(&context) {
                return Err(format!("at most {SUBSCRIPTIONS_MAX} subscribed contexts"));
            }
            self.contexts.insert(context);
        }
        Ok(())
    }

    /// The `subscribed` message: the contexts now subscribed (`"*"` for all).
    pub(crate) fn subscribed_message(&self) -> Value {
        let contexts: Vec<String> = self.contexts.iter().map(Hash::to_hex).collect();
        json!({ "type": "subscribed", "contexts": contexts, "all": self.all })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_node::AppliedInfo;
    use weft_primitives::PublicKey;

    #[test]
    fn a_state_mutation_carries_its_deltas_and_their_events_with_json_data() {
        let event = NodeEvent::StateMutation {
            context: Hash([1; 32]),
            root_hash: Hash([2; 32]),
            deltas: vec![AppliedInfo {
                id: Hash([3; 32]),
                author: PublicKey([4; 32]),
                local: true,
                events: vec![weft_sync_event("Inserted", br#"{"key":"a"}"#)],
            }],
        };
        let live = message(&event);
        assert_eq!(live.kind, "state_mutation");
        assert_eq!(live.body["events"][0]["data"], json!({ "key": "a" }));
        assert_eq!(live.body["events"][0]["delta"], json!(Hash([3; 32]).to_hex()));
        assert_eq!(live.body["deltas"][0]["local"], json!(true));
    }

    fn weft_sync_event(kind: &str, data: &[u8]) -> weft_sync::Event {
        weft_sync::Event { kind: kind.into(), data: data.to_vec(), handler: None }
    }

    #[test]
    fn the_filter_admits_subscribed_contexts_or_all() {
        let mut filter = Filter::default();
        assert!(!filter.admits(&Hash([1; 32])));
        filter.subscribe([Hash([1; 32])]).unwrap();
        assert!(filter.admits(&Hash([1; 32])));
        assert!(!filter.admits(&Hash([2; 32])));
        filter.all = true;
        assert!(filter.admits(&Hash([2; 32])));
    }
}
