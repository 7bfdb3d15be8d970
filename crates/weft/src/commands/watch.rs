//! `weft watch`: a node's live events over its SSE endpoint (`/events`),
//! one line each, until Ctrl-C (exit 0) or until the node closes the stream
//! (an error: the node went away).

use anyhow::bail;
use serde_json::Value;
use weft::client::ApiClient;
use weft::output::{field, short};
use weft::sse::{SseEvent, SseParser};

use crate::cli::Cli;

/// Follow the events of `context` (or every context).
pub async fn watch(cli: &Cli, client: &ApiClient, context: Option<&str>) -> anyhow::Result<()> {
    let contexts: Vec<String> = context.map(|c| super::id_arg("context", c)).transpose()?.into_iter().collect();
    let mut response = client.events(&contexts).await?;
    if !cli.json {
        let scope = context.map_or_else(|| "every context".to_owned(), |c| format!("context {}", short(c)));
        eprintln!("watching {scope} at {} (Ctrl-C to stop)", client.base());
    }
    let mut parser = SseParser::default();
    loop {
        let chunk = tokio::select! {
            chunk = client.next_chunk(&mut response) => chunk?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(chunk) = chunk else {
            bail!("the node at {} closed the event stream", client.base());
        };
        for event in parser.push(&chunk)? {
            print_event(cli.json, &event);
        }
    }
}

fn print_event(json: bool, event: &SseEvent) {
    let data: Value = serde_json::from_str(&event.data).unwrap_or_else(|_| Value::String(event.data.clone()));
    if json {
        // One compact JSON object per line: easy to pipe into jq.
        println!("{data}");
        return;
    }
    for line in describe(&event.event, &data) {
        println!("{}  {line}", clock());
    }
}

/// The text lines of one server message.
fn describe(kind: &str, data: &Value) -> Vec<String> {
    let context = short(&field(data, "context")).to_owned();
    match data.get("type").and_then(Value::as_str).unwrap_or(kind) {
        "state_mutation" => {
            let mut lines = Vec::new();
            let deltas = data.get("deltas").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let events = data.get("events").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            for delta in deltas {
                let id = field(delta, "id");
                let local = delta.get("local").and_then(Value::as_bool) == Some(true);
                lines.push(format!(
                    "{context}  delta {}  by {}{}  root {}",
                    short(&id),
                    short(&field(delta, "author")),
                    if local { " (this node)" } else { "" },
                    short(&field(data, "root_hash")),
                ));
                for event in events.iter().filter(|e| e.get("delta").and_then(Value::as_str) == Some(id.as_str())) {
                    lines.push(format!("{context}    {}", describe_app_event(event)));
                }
            }
            // Events not tied to a listed delta still get shown.
            for event in events.iter().filter(|e| {
                let delta = e.get("delta").and_then(Value::as_str);
                !deltas.iter().any(|d| d.get("id").and_then(Value::as_str) == delta)
            }) {
                lines.push(format!("{context}    {}", describe_app_event(event)));
            }
            if lines.is_empty() {
                lines.push(format!("{context}  root {}", short(&field(data, "root_hash"))));
            }
            lines
        }
        "sync" => {
            let mut rest = data.clone();
            if let Some(object) = rest.as_object_mut() {
                for key in ["type", "context", "event"] {
                    object.remove(key);
                }
            }
            let rest = if rest.as_object().is_some_and(|o| o.is_empty()) { String::new() } else { format!("  {rest}") };
            vec![format!("{context}  sync {}{rest}", field(data, "event"))]
        }
        other => vec![format!("{other}  {data}")],
    }
}

fn describe_app_event(event: &Value) -> String {
    let data = match event.get("data") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let handler = match event.get("handler").and_then(Value::as_str) {
        Some(handler) => format!("  → {handler}"),
        None => String::new(),
    };
    format!("{} {data}{handler}", field(event, "kind"))
}

/// The UTC time of day, `HH:MM:SS` (no date/time dependency for this).
fn clock() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_state_mutation_is_one_line_per_delta_and_per_event() {
        let data = json!({
            "type": "state_mutation", "context": "c".repeat(64), "root_hash": "r".repeat(64),
            "deltas": [{"id": "d".repeat(64), "author": "a".repeat(64), "local": false}],
            "events": [{"kind": "Inserted", "data": {"key": "k"}, "handler": null, "delta": "d".repeat(64)}],
        });
        let lines = describe("state_mutation", &data);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "cccccccc  delta dddddddd  by aaaaaaaa  root rrrrrrrr");
        assert_eq!(lines[1], "cccccccc    Inserted {\"key\":\"k\"}");
    }

    #[test]
    fn sync_events_show_their_extra_fields() {
        let data = json!({"type": "sync", "context": "c".repeat(64), "event": "in_sync", "peer": "p"});
        assert_eq!(describe("sync", &data), vec!["cccccccc  sync in_sync  {\"peer\":\"p\"}".to_owned()]);
    }
}
