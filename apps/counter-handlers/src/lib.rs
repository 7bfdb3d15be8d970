//! The handler example: `trigger` emits an event naming the handler
//! `on_event`; every node other than the author runs that handler when it
//! applies the delta, and the handler increments a shared counter. With `n`
//! nodes, every trigger adds `n - 1` to `handled` on every node, once all
//! deltas have spread. The handler also records who triggered
//! (`env::event_author`), which an app would use to decide whom to trust.

use weft_sdk::prelude::*;

/// The app state: how often this context was triggered, and how many
/// handler runs (on all nodes together) followed.
#[app::state]
pub struct CounterHandlers {
    triggered: Counter,
    handled: Counter,
    /// The member (hex public key) whose trigger was handled last.
    last_triggered_by: LwwRegister<String>,
}

/// Events of this app.
#[app::event]
pub enum Event {
    /// Someone triggered; other nodes run `on_event`.
    Triggered {
        /// A note from the caller, passed to the handlers.
        note: String,
    },
}

#[app::logic]
impl CounterHandlers {
    /// Both counters at zero.
    #[app::init]
    pub fn init() -> Self {
        Self::create()
    }

    /// Count a trigger and ask every other node to run `on_event`.
    pub fn trigger(&mut self, note: String) {
        self.triggered.increment();
        app::emit!(Event::Triggered { note }, handler = "on_event");
    }

    /// Run by every non-author node for each `Triggered` event.
    #[app::handler]
    pub fn on_event(&mut self, note: String) {
        weft_sdk::env::log(&format!("handling trigger: {note}"));
        self.handled.increment();
        if let Some(author) = weft_sdk::env::event_author() {
            let hex: String = author.iter().map(|byte| format!("{byte:02x}")).collect();
            self.last_triggered_by.set(&hex);
        }
    }

    /// The member whose trigger was handled last (hex public key), if any.
    pub fn last_triggered_by(&self) -> Option<String> {
        self.last_triggered_by.get()
    }

    /// How many handler runs happened.
    pub fn count(&self) -> i128 {
        self.handled.value()
    }

    /// How many triggers happened.
    pub fn triggers(&self) -> i128 {
        self.triggered.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::{self, json};

    #[test]
    fn trigger_emits_an_event_naming_the_handler() {
        testing::reset();
        let mut app = CounterHandlers::init();
        app.trigger("hello".into());
        let events = testing::take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "Triggered");
        assert_eq!(events[0].data, json!({ "note": "hello" }));
        assert_eq!(events[0].handler.as_deref(), Some("on_event"));
        // The author does not run its own handler.
        assert_eq!(app.count(), 0);
        assert_eq!(app.triggers(), 1);
    }

    #[test]
    fn every_other_node_runs_the_handler_and_all_agree() {
        testing::reset();
        testing::call::<CounterHandlers>("init", json!({})).unwrap();
        let nodes = [0, testing::add_node(), testing::add_node()];
        testing::sync();
        testing::call::<CounterHandlers>("trigger", json!({ "note": "a" })).unwrap();
        testing::call::<CounterHandlers>("trigger", json!({ "note": "b" })).unwrap();
        testing::on_node(nodes[1], || testing::call::<CounterHandlers>("trigger", json!({ "note": "c" }))).unwrap();

        let delivery = testing::deliver::<CounterHandlers>();
        assert!(delivery.failures.is_empty(), "{:?}", delivery.failures);
        // Three triggers, each handled by the two other nodes.
        assert_eq!(delivery.handlers_run.len(), 6);
        assert!(delivery.handlers_run.iter().all(|(_, handler)| handler == "on_event"));
        for node in nodes {
            let count = testing::on_node(node, || testing::call::<CounterHandlers>("count", json!({}))).unwrap();
            assert_eq!(count, json!(6), "node {node}");
            assert_eq!(testing::on_node(node, || CounterHandlers::load().triggers()), 3);
        }
        let root = testing::root_hash();
        assert!(nodes.iter().all(|&node| testing::on_node(node, testing::root_hash) == root));
    }

    #[test]
    fn handlers_receive_the_event_fields_as_arguments() {
        testing::reset();
        testing::call::<CounterHandlers>("init", json!({})).unwrap();
        let other = testing::add_node();
        testing::sync();
        testing::call::<CounterHandlers>("trigger", json!({ "note": "ping" })).unwrap();
        testing::deliver::<CounterHandlers>();
        testing::switch_node(other);
        assert_eq!(testing::take_logs(), ["handling trigger: ping"]);
    }

    #[test]
    fn the_handler_learns_who_triggered() {
        testing::reset();
        testing::call::<CounterHandlers>("init", json!({})).unwrap();
        let other = testing::add_node();
        testing::sync();
        assert_eq!(weft_sdk::env::event_author(), None, "not in a handler");
        let author: String = weft_sdk::env::executor_id().iter().map(|byte| format!("{byte:02x}")).collect();
        testing::call::<CounterHandlers>("trigger", json!({ "note": "ping" })).unwrap();
        testing::deliver::<CounterHandlers>();
        let seen = testing::on_node(other, || testing::call::<CounterHandlers>("last_triggered_by", json!({})));
        assert_eq!(seen.unwrap(), json!(author));
        assert_eq!(weft_sdk::env::event_author(), None, "reset after the handler");
    }

    #[test]
    fn count_is_a_view() {
        testing::reset();
        testing::call::<CounterHandlers>("init", json!({})).unwrap();
        let manifest_kinds: Vec<_> =
            <CounterHandlers as weft_sdk::App>::EXPORTS.iter().map(|export| (export.name, export.kind)).collect();
        assert!(manifest_kinds.contains(&("count", weft_sdk::MethodKind::View)));
        assert!(manifest_kinds.contains(&("on_event", weft_sdk::MethodKind::Handler)));
        assert!(manifest_kinds.contains(&("trigger", weft_sdk::MethodKind::Mutate)));
    }
}
