//! The SDK end to end on the native host: every collection, nesting, the
//! generated exports (JSON in and out, views, typed errors, panics, default
//! init, reference arguments, handlers), events, the environment, and
//! replication between simulated nodes.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

use weft_sdk::MethodKind;
use weft_sdk::prelude::*;
use weft_sdk::testing::{self, CallError, json};

#[app::state]
pub struct Everything {
    plain: Map<String, u64>,
    counters: Map<String, Counter>,
    nested: Map<String, Map<i64, String>>,
    tags: Set<String>,
    history: Vector<String>,
    owner: LwwRegister<String>,
    doc: Text,
}

#[app::event]
pub enum Event {
    Nothing,
    Single(u64),
    Pair(u64, String),
    Named { a: u64, b: String },
}

#[app::logic]
impl Everything {
    pub fn bump(&mut self, name: &str, by: i64) -> i128 {
        let mut counter = self.counters.entry(name);
        counter.add(by);
        counter.value()
    }

    pub fn put(&mut self, outer: String, inner: i64, value: String) {
        self.nested.entry(&outer).insert(&inner, &value);
    }

    pub fn nested_get(&self, outer: String, inner: i64) -> Option<String> {
        self.nested.get(&outer)?.get(&inner)
    }

    pub fn tag(&mut self, tags: &[String]) -> u64 {
        for tag in tags {
            self.tags.insert(tag);
        }
        self.tags.len()
    }

    pub fn sneaky_write(&self) {
        if let Some(mut counter) = self.counters.get("x") {
            counter.increment();
        }
    }

    pub fn sneaky_emit(&self) {
        app::emit!(Event::Nothing);
    }

    pub fn emit_all(&mut self) {
        app::emit!(Event::Nothing);
        app::emit!(Event::Single(7));
        app::emit!(Event::Pair(1, "x".into()));
        app::emit!(Event::Named { a: 2, b: "y".into() }, handler = "on_named");
    }

    #[app::handler]
    pub fn on_named(&mut self, a: u64) {
        self.plain.insert("handled", &a);
    }

    pub fn fail(&mut self) -> Result<u64, String> {
        self.plain.insert("failed", &1);
        Err("nope".into())
    }

    pub fn boom(&mut self) {
        self.plain.insert("boomed", &1);
        panic!("boom");
    }

    pub fn whoami(&self) -> Vec<u8> {
        weft_sdk::env::executor_id().to_vec()
    }

    pub fn now(&self) -> u64 {
        weft_sdk::env::time_now().wall_ms
    }

    fn private_helper(&self) -> u64 {
        self.plain.len()
    }

    pub fn via_helper(&self) -> u64 {
        self.private_helper()
    }
}

fn init() -> Everything {
    testing::reset();
    testing::call::<Everything>("init", json!({})).unwrap();
    Everything::load()
}

#[test]
fn without_an_init_marker_init_creates_the_state() {
    let kinds: Vec<_> = <Everything as App>::EXPORTS.iter().map(|export| (export.name, export.kind)).collect();
    assert!(kinds.contains(&("init", MethodKind::Init)));
    assert!(!kinds.iter().any(|(name, _)| *name == "private_helper"));
    let app = init();
    assert_eq!(app.via_helper(), 0);
}

#[test]
fn plain_maps_insert_get_remove_and_iterate_in_key_order() {
    let mut app = init();
    for (key, value) in [("b", 2), ("a", 1), ("c", 3)] {
        app.plain.insert(key, &value);
    }
    assert_eq!(app.plain.get("a"), Some(1));
    assert!(app.plain.contains_key("b"));
    assert_eq!(app.plain.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(app.plain.remove("b"));
    assert!(!app.plain.remove("b"));
    assert_eq!(app.plain.entries(), [("a".to_owned(), 1), ("c".to_owned(), 3)]);
    assert_eq!(app.plain.len(), 2);
    assert!(!app.plain.is_empty());
}

#[test]
fn iteration_crosses_page_boundaries() {
    let mut app = init();
    let count = weft_abi::limits::PAGE_ITEMS_MAX as usize + 5;
    for index in 0..count {
        app.plain.insert(&format!("{index:05}"), &(index as u64));
        app.tags.insert(&format!("{index:05}"));
    }
    let keys: Vec<String> = app.plain.keys().collect();
    assert_eq!(keys.len(), count);
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(app.tags.to_vec(), keys);
}

#[test]
fn nested_collections_are_created_once_and_found_again() {
    let mut app = init();
    assert_eq!(app.bump("likes", 2), 2);
    assert_eq!(app.bump("likes", -5), -3);
    assert_eq!(app.counters.get("likes").map(|counter| counter.value()), Some(-3));
    assert!(app.counters.get("other").is_none());
    app.put("alice".into(), -1, "minus one".into());
    app.put("alice".into(), 10, "ten".into());
    assert_eq!(app.nested_get("alice".into(), 10), Some("ten".into()));
    assert_eq!(app.nested_get("bob".into(), 10), None);
    let inner = app.nested.get("alice").unwrap();
    assert_eq!(inner.keys().collect::<Vec<_>>(), [-1, 10]);
    assert_eq!(app.nested.len(), 1);
}

#[test]
fn sets_vectors_registers_and_text() {
    let mut app = init();
    assert_eq!(app.tag(&["x".into(), "y".into(), "x".into()]), 2);
    assert!(app.tags.contains("y"));
    assert!(app.tags.remove("y"));
    assert!(!app.tags.contains("y"));

    app.history.push("first");
    app.history.push("second");
    app.history.push("third");
    app.history.set(1, "SECOND");
    app.history.remove(0);
    assert_eq!(app.history.to_vec(), ["SECOND", "third"]);
    assert_eq!(app.history.pop(), Some("third".into()));
    assert_eq!(app.history.len(), 1);
    assert_eq!(app.history.get(5), None);

    assert_eq!(app.owner.get(), None);
    app.owner.set("me");
    assert_eq!(app.owner.get(), Some("me".into()));

    app.doc.push_str("hello");
    app.doc.insert(0, "¡");
    app.doc.delete(1, 1);
    assert_eq!(app.doc.read(), "¡ello");
    assert_eq!(app.doc.len(), 5);
}

#[test]
fn calls_pass_reference_arguments_owned() {
    init();
    assert_eq!(testing::call::<Everything>("tag", json!({ "tags": ["a", "b"] })), Ok(json!(2)));
    assert_eq!(testing::call::<Everything>("bump", json!({ "name": "n", "by": 4 })), Ok(json!(4)));
}

#[test]
fn unknown_arguments_are_rejected_except_by_handlers() {
    init();
    let result = testing::call::<Everything>("bump", json!({ "name": "n", "by": 1, "typo": 0 }));
    assert!(matches!(result, Err(CallError::Panic(message)) if message.contains("unknown field `typo`")));
    assert_eq!(testing::call::<Everything>("on_named", json!({ "a": 9, "b": "extra" })), Ok(json!(null)));
    let result = testing::call::<Everything>("bump", json!("not an object"));
    assert!(matches!(result, Err(CallError::Panic(message)) if message.contains("invalid arguments for `bump`")));
}

#[test]
fn views_cannot_write_or_emit() {
    let mut app = init();
    app.bump("x", 1);
    testing::commit();
    let before = testing::root_hash();
    let result = testing::call::<Everything>("sneaky_write", json!({}));
    assert!(matches!(&result, Err(CallError::Panic(message)) if message.contains("read only")), "{result:?}");
    let result = testing::call::<Everything>("sneaky_emit", json!({}));
    assert!(matches!(&result, Err(CallError::Panic(message)) if message.contains("view")), "{result:?}");
    assert_eq!(testing::root_hash(), before);
}

#[test]
fn app_errors_and_panics_commit_nothing() {
    let app = init();
    let before = testing::root_hash();
    assert_eq!(testing::call::<Everything>("fail", json!({})), Err(CallError::App(json!("nope"))));
    assert_eq!(testing::call::<Everything>("boom", json!({})), Err(CallError::Panic("boom".into())));
    assert_eq!(testing::root_hash(), before);
    assert_eq!(app.plain.get("failed"), None);
    assert_eq!(app.plain.get("boomed"), None);
}

#[test]
fn event_data_is_the_json_of_the_variant_fields() {
    let mut app = init();
    app.emit_all();
    let events = testing::take_events();
    let shapes: Vec<(String, serde_json::Value, Option<String>)> =
        events.into_iter().map(|event| (event.kind, event.data, event.handler)).collect();
    assert_eq!(
        shapes,
        [
            ("Nothing".into(), json!(null), None),
            ("Single".into(), json!(7), None),
            ("Pair".into(), json!([1, "x"]), None),
            ("Named".into(), json!({ "a": 2, "b": "y" }), Some("on_named".into())),
        ]
    );
    assert!(testing::take_events().is_empty());
}

#[test]
fn handlers_run_on_other_nodes_only() {
    init();
    let other = testing::add_node();
    testing::sync();
    testing::call::<Everything>("emit_all", json!({})).unwrap();
    let delivery = testing::deliver::<Everything>();
    assert_eq!(delivery.handlers_run, [(other, "on_named".to_owned())]);
    // The handler's write replicated back to the author.
    testing::sync();
    assert_eq!(Everything::load().plain.get("handled"), Some(2));
}

#[test]
fn the_environment_is_the_test_node() {
    init();
    let me = testing::executor_id();
    assert_eq!(testing::call::<Everything>("whoami", json!({})), Ok(json!(me.to_vec())));
    let other = testing::add_node();
    let them = testing::on_node(other, testing::executor_id);
    assert_ne!(me, them);
    let before = Everything::load().now();
    testing::advance_time(5_000);
    assert!(Everything::load().now() >= before + 5_000);
    testing::set_context_id([7; 32]);
    assert_eq!(weft_sdk::env::context_id(), [7; 32]);
    let mut random = [0u8; 40];
    weft_sdk::env::random_bytes(&mut random);
    assert_ne!(random, [0u8; 40]);
}

#[test]
fn concurrent_writes_converge_across_nodes() {
    let mut app = init();
    let nodes = [0, testing::add_node(), testing::add_node()];
    testing::sync();
    app.bump("shared", 1);
    app.tags.insert("zero");
    for node in &nodes[1..] {
        testing::on_node(*node, || {
            let mut app = Everything::load();
            app.bump("shared", 10);
            app.history.push(&format!("from {node}"));
            app.owner.set(&format!("node {node}"));
        });
    }
    testing::sync();
    let root = testing::root_hash();
    for node in nodes {
        testing::on_node(node, || {
            let app = Everything::load();
            assert_eq!(app.counters.get("shared").unwrap().value(), 21);
            assert_eq!(app.history.len(), 2);
            assert!(app.tags.contains("zero"));
            assert_eq!(testing::root_hash(), root);
        });
    }
}

#[test]
#[should_panic(expected = "state error (not found")]
fn using_state_before_init_aborts_with_the_host_message() {
    testing::reset();
    Everything::load().plain.insert("a", &1);
}
