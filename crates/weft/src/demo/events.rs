//! The demo's live lines: what each node's event bus reports about the
//! demo's context, one aligned line per applied delta.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use weft_node::NodeEvent;
use weft_primitives::{Hash, PublicKey};

/// Longest rendering of an event's data.
const EVENT_TEXT_CHARS_MAX: usize = 60;

/// What an event printer needs.
#[derive(Clone)]
pub struct Printer {
    /// When the demo started (lines show seconds since).
    pub start: Instant,
    /// The demo's context.
    pub context: Hash,
    /// Member key → node name.
    pub names: Arc<HashMap<PublicKey, String>>,
}

impl Printer {
    /// A line stamped with the seconds since the start.
    pub fn line(&self, text: &str) {
        println!("{:>7.1}s  {text}", self.start.elapsed().as_secs_f64());
    }

    fn name_of(&self, key: &PublicKey) -> String {
        self.names.get(key).cloned().unwrap_or_else(|| weft::output::short(&weft::home::hex(&key.0)).to_owned())
    }

    /// Print `node`'s events until its bus closes (or the task is aborted).
    pub async fn follow(self, node: String, mut events: broadcast::Receiver<NodeEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => {
                    for text in self.describe(&event) {
                        self.line(&format!("{node:<3} {text}"));
                    }
                }
                Err(RecvError::Lagged(missed)) => self.line(&format!("{node:<3} (missed {missed} events)")),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// The lines of one node event (none for other contexts and for
    /// routine `InSync` heartbeats).
    pub fn describe(&self, event: &NodeEvent) -> Vec<String> {
        match event {
            NodeEvent::StateMutation { context, deltas, .. } if *context == self.context => deltas
                .iter()
                .map(|delta| {
                    let id = delta.id.to_hex();
                    let what = delta.events.iter().map(|e| describe_app_event(&e.kind, &e.data)).collect::<Vec<_>>();
                    let what = if what.is_empty() { "(no events)".to_owned() } else { what.join("; ") };
                    if delta.local {
                        format!("wrote    {}           {what}", &id[..8])
                    } else {
                        format!("applied  {}  from {:<3} {what}", &id[..8], self.name_of(&delta.author))
                    }
                })
                .collect(),
            NodeEvent::MembersChanged { context, added, left } if *context == self.context => {
                let names = |keys: &[PublicKey]| keys.iter().map(|k| self.name_of(k)).collect::<Vec<_>>().join(", ");
                vec![format!("members  +[{}] -[{}]", names(added), names(left))]
            }
            NodeEvent::Diverged { context, .. } if *context == self.context => {
                vec!["DIVERGED from a peer with the same heads (a bug; repairing)".to_owned()]
            }
            NodeEvent::SnapshotNeeded { context } if *context == self.context => vec!["needs a snapshot".to_owned()],
            NodeEvent::HandlerFailed { context, handler, error, attempts } if *context == self.context => {
                vec![format!("handler {handler} failed (attempt {attempts}): {error}")]
            }
            _ => Vec::new(),
        }
    }
}

/// `Inserted key-003 = "n1 #3"` for kv-store events, `Kind {json}` otherwise.
pub fn describe_app_event(kind: &str, data: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(fields)) => match (fields.get("key").and_then(Value::as_str), fields.get("value")) {
            (Some(key), Some(value)) => format!("{key} = {value}"),
            (Some(key), None) => key.to_owned(),
            _ => Value::Object(fields).to_string(),
        },
        Ok(other) => other.to_string(),
        Err(_) => String::from_utf8_lossy(data).into_owned(),
    };
    let mut line = format!("{kind:<8} {text}");
    if line.chars().count() > EVENT_TEXT_CHARS_MAX {
        line = line.chars().take(EVENT_TEXT_CHARS_MAX).collect::<String>() + "…";
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_events_read_as_assignments() {
        assert_eq!(describe_app_event("Inserted", br#"{"key":"k","value":"v"}"#), "Inserted k = \"v\"");
        assert_eq!(describe_app_event("Removed", br#"{"key":"k"}"#), "Removed  k");
        assert_eq!(describe_app_event("X", b"\xff"), "X        \u{fffd}");
        assert!(describe_app_event("Big", &[b'a'; 500]).chars().count() <= EVENT_TEXT_CHARS_MAX + 1);
    }

    #[test]
    fn other_contexts_and_heartbeats_print_nothing() {
        let printer = Printer { start: Instant::now(), context: Hash([1; 32]), names: Arc::default() };
        let other = NodeEvent::SnapshotNeeded { context: Hash([2; 32]) };
        assert!(printer.describe(&other).is_empty());
        let heartbeat = NodeEvent::InSync { context: Hash([1; 32]), peer: [0; 32], root_hash: Hash([3; 32]) };
        assert!(printer.describe(&heartbeat).is_empty());
    }
}
