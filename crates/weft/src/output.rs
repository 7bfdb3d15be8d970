//! Human-readable rendering of the API's JSON answers: aligned tables and
//! short ids. Pure functions from JSON to text, so they are tested without
//! a node; missing fields render as `-`, never fail (the JSON output is
//! the exact form for scripts).

use serde_json::Value;

/// Hex digits of an id shown where a short id is enough.
pub const SHORT_ID_CHARS: usize = 8;
/// The longest cell of a table before it is cut.
const CELL_CHARS_MAX: usize = 100;

/// The first [`SHORT_ID_CHARS`] characters of `id`.
pub fn short(id: &str) -> &str {
    match id.char_indices().nth(SHORT_ID_CHARS) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// A libp2p peer id shortened to its distinctive tail (they all start
/// with `12D3KooW`).
pub fn short_peer(peer: &str) -> String {
    let chars: Vec<char> = peer.chars().collect();
    if chars.len() <= SHORT_ID_CHARS + 1 {
        return peer.to_owned();
    }
    let tail: String = chars[chars.len() - SHORT_ID_CHARS..].iter().collect();
    format!("…{tail}")
}

/// Columns aligned on the widest cell; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| (*h).to_owned()).collect()] }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|cell| if cell.chars().count() > CELL_CHARS_MAX { format!("{}…", short_n(&cell)) } else { cell })
            .collect();
        self.rows.push(cells);
    }

    /// The rendered table, one line per row, each ending in `\n`.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[i] - cell.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn short_n(cell: &str) -> String {
    cell.chars().take(CELL_CHARS_MAX).collect()
}

/// `value[key]` as text: strings bare, numbers and others as JSON, `-` if absent.
pub fn field(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The length of the array `value[key]`, as text.
pub fn count(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_array).map_or_else(|| "-".into(), |items| items.len().to_string())
}

/// The strings of the array `value[key]`.
pub fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned)).collect())
        .unwrap_or_default()
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// `app list`.
pub fn apps_table(apps: &Value) -> String {
    let mut table = Table::new(&["ID", "NAME", "SIZE", "METHODS"]);
    for app in items(apps) {
        table.row(vec![field(app, "id"), field(app, "name"), field(app, "size"), count(app, "methods")]);
    }
    table.render()
}

/// `app show` / `app install`.
pub fn app_details(app: &Value) -> String {
    let mut out = format!(
        "id       {}\nname     {}\nsize     {} bytes\nmethods\n",
        field(app, "id"),
        field(app, "name"),
        field(app, "size")
    );
    let mut table = Table::new(&["  NAME", "KIND"]);
    for method in app.get("methods").map_or(&[][..], items) {
        table.row(vec![format!("  {}", field(method, "name")), field(method, "kind")]);
    }
    out.push_str(&table.render());
    out
}

/// `context epochs`.
pub fn key_epochs(epochs: &Value) -> String {
    let mut table = Table::new(&["EPOCH", "ROTATION", "RECIPIENTS", "HELD", "CURRENT"]);
    for epoch in items(epochs) {
        let flag = |key: &str| if epoch.get(key).and_then(Value::as_bool) == Some(true) { "yes" } else { "no" };
        table.row(vec![
            field(epoch, "number"),
            short(&field(epoch, "rotation")).to_owned(),
            field(epoch, "recipients"),
            flag("held").to_owned(),
            flag("current").to_owned(),
        ]);
    }
    table.render()
}

/// `context list`.
pub fn contexts_table(contexts: &Value) -> String {
    let mut table = Table::new(&["ID", "APP", "MEMBERS", "ROOT", "APPLIED", "PENDING", "PEERS"]);
    for context in items(contexts) {
        table.row(vec![
            field(context, "id"),
            short(&field(context, "application")).to_owned(),
            count(context, "members"),
            short(&field(context, "root_hash")).to_owned(),
            field(context, "applied"),
            field(context, "pending"),
            count(context, "peers"),
        ]);
    }
    table.render()
}

/// `context show` / `create` / `join`.
pub fn context_details(context: &Value) -> String {
    let mut out = String::new();
    for (label, key) in [
        ("id", "id"),
        ("application", "application"),
        ("identity", "identity"),
        ("root hash", "root_hash"),
        ("applied", "applied"),
        ("pending", "pending"),
        ("handler jobs", "handler_jobs"),
    ] {
        out.push_str(&format!("{label:<13}{}\n", field(context, key)));
    }
    for (label, key) in [("heads", "heads"), ("members", "members"), ("peers", "peers")] {
        let list = strings(context, key);
        if list.is_empty() {
            out.push_str(&format!("{label:<13}-\n"));
        }
        for (i, item) in list.iter().enumerate() {
            out.push_str(&format!("{:<13}{item}\n", if i == 0 { label } else { "" }));
        }
    }
    out
}

/// `peers`.
pub fn peers_table(peers: &Value) -> String {
    let mut table = Table::new(&["PEER", "ADDRESSES"]);
    for peer in items(peers) {
        table.row(vec![field(peer, "peer_id"), strings(peer, "addrs").join(" ")]);
    }
    table.render()
}

/// `sync status`: the table, then one plain line per context that no
/// member's node can be reached for.
pub fn sync_table(statuses: &Value) -> String {
    let mut table =
        Table::new(&["CONTEXT", "ROOT", "HEADS", "APPLIED", "PENDING", "PEERS", "KNOWN", "SYNCS", "DIVERGED"]);
    let mut unreachable = String::new();
    for status in items(statuses) {
        let stats = status.get("stats").cloned().unwrap_or(Value::Null);
        table.row(vec![
            field(status, "id"),
            short(&field(status, "root_hash")).to_owned(),
            count(status, "heads"),
            field(status, "applied"),
            field(status, "pending"),
            count(status, "peers"),
            field(status, "member_nodes_known"),
            field(&stats, "syncs_started"),
            field(&stats, "divergences"),
        ]);
        if status.get("reachable") == Some(&Value::Bool(false)) {
            unreachable.push_str(&no_reachable_member(&field(status, "id"), &field(status, "member_nodes_known")));
        }
    }
    table.render() + &unreachable
}

/// `sync now`: how many sessions started, and each context that has no
/// reachable member said plainly.
pub fn sync_now(answer: &Value) -> String {
    let started = answer.get("started").and_then(Value::as_u64).unwrap_or(0);
    let mut out = format!("started {started} sync session{}\n", if started == 1 { "" } else { "s" });
    for outcome in items(answer.get("contexts").unwrap_or(&Value::Null)) {
        if outcome.get("reachable") == Some(&Value::Bool(false)) {
            out.push_str(&no_reachable_member(&field(outcome, "context"), &field(outcome, "member_nodes_known")));
        }
    }
    out
}

fn no_reachable_member(context: &str, known: &str) -> String {
    format!(
        "context {context}: no reachable member ({known} member node(s) known, none connected); \
         it syncs as soon as one answers a redial\n"
    )
}

/// A call's output: strings bare, other JSON compact, nothing for `null`.
pub fn call_output(output: &Value) -> Option<String> {
    match output {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut table = Table::new(&["A", "LONGER"]);
        table.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(table.render(), "A          LONGER\nwide cell  x\n");
    }

    #[test]
    fn short_ids_and_peers() {
        assert_eq!(short("0123456789abcdef"), "01234567");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short_peer("12D3KooWAbCdEfGhIjKlMn"), "…GhIjKlMn");
    }

    #[test]
    fn missing_fields_render_as_dashes() {
        let text = contexts_table(&json!([{"id": "c1"}]));
        assert!(text.lines().nth(1).unwrap().starts_with("c1  -"), "{text}");
        assert_eq!(apps_table(&json!("not a list")), "ID  NAME  SIZE  METHODS\n");
    }

    #[test]
    fn sync_says_plainly_when_no_member_is_reachable() {
        let answer = json!({"started": 0, "contexts": [
            {"context": "c1", "started": false, "peers": 0, "member_nodes_known": 2, "reachable": false},
            {"context": "c2", "started": true, "peers": 1, "member_nodes_known": 1, "reachable": true},
        ]});
        let text = sync_now(&answer);
        assert!(text.starts_with("started 0 sync sessions\n"), "{text}");
        assert!(text.contains("context c1: no reachable member (2 member node(s) known"), "{text}");
        assert!(!text.contains("c2"), "{text}");
        let status = json!([{"id": "c1", "peers": [], "member_nodes_known": 3, "reachable": false, "stats": {}}]);
        assert!(sync_table(&status).contains("context c1: no reachable member (3 member node(s)"));
    }

    #[test]
    fn call_outputs_print_strings_bare() {
        assert_eq!(call_output(&json!("v")), Some("v".into()));
        assert_eq!(call_output(&json!({"a": 1})), Some("{\"a\":1}".into()));
        assert_eq!(call_output(&Value::Null), None);
    }
}
