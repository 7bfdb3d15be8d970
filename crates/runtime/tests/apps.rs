//! The example apps (built by `weft-apps` for wasm32) through the real
//! runtime over a real store on disk: each call reads a snapshot of the
//! context's state, and a successful call's writes are committed in one
//! durable transaction. Failures (bad JSON, unknown method, guest panic,
//! fuel) leave the root hash unchanged (docs/testing.md S9).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::{Value as Json, json};
use weft_abi::MethodKind::{self, Handler, Init, Mutate, View};
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_runtime::{App, CallResult, ExecuteRequest, Limits, Outcome, Runtime, RuntimeConfig, RuntimeError};
use weft_store::Store;

/// One node's copy of one context, in a store on disk.
struct Node {
    runtime: Arc<Runtime>,
    app: Arc<App>,
    store: Store,
    key: SigningKey,
    context: Hash,
    clock: u64,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new(runtime: Arc<Runtime>, wasm: &[u8], seed: u8) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("node.redb")).unwrap();
        let app = runtime.load(wasm).unwrap();
        Node {
            runtime,
            app,
            store,
            key: SigningKey::from_seed([seed; 32]),
            context: Hash::of(b"shared context"),
            clock: 0,
            _dir: dir,
        }
    }

    fn root(&self) -> Hash {
        weft_state::root_hash(&self.store.read().unwrap().state_view(self.context).unwrap()).unwrap()
    }

    /// Run a call over the current snapshot; commit its writes on success.
    fn call(&mut self, method: &str, kind: MethodKind, args: &Json) -> Result<Outcome, RuntimeError> {
        self.clock += 1;
        let input = serde_json::to_vec(args).unwrap();
        self.call_raw(method, kind, &input)
    }

    fn call_raw(&mut self, method: &str, kind: MethodKind, input: &[u8]) -> Result<Outcome, RuntimeError> {
        let snapshot = self.store.read().unwrap();
        let view = snapshot.state_view(self.context).unwrap();
        let outcome = self.runtime.execute(
            &self.app,
            ExecuteRequest {
                context_id: self.context,
                executor: &self.key,
                start_hlc: Hlc::new(self.clock * 100, 0),
                kv: &view,
                method,
                input,
                kind,
                event_author: None,
                text_lane: 0,
            },
        )?;
        let context = self.context;
        self.store.write(|txn| txn.apply_state_writes(context, &outcome.writes)).unwrap();
        assert_eq!(outcome.root_hash, self.root(), "{method}: the outcome's root is the committed root");
        Ok(outcome)
    }

    /// A call that must succeed; its JSON result.
    fn ok(&mut self, method: &str, kind: MethodKind, args: Json) -> Json {
        let outcome = self.call(method, kind, &args).unwrap_or_else(|e| panic!("{method}: {e}"));
        match outcome.result {
            CallResult::Ok(bytes) if bytes.is_empty() => Json::Null,
            CallResult::Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            CallResult::AppError(e) => panic!("{method}: app error {}", String::from_utf8_lossy(&e)),
        }
    }

    /// A call that must fail without changing the state.
    fn fails(&mut self, method: &str, kind: MethodKind, input: &[u8]) -> RuntimeError {
        let before = self.root();
        self.clock += 1;
        let error = self.call_raw(method, kind, input).expect_err("the call should fail");
        assert_eq!(self.root(), before, "{method}: a failed call changed the root hash");
        error
    }

    /// Apply another node's committed actions natively (no WASM), as a
    /// delta from `author` would be.
    fn apply(&mut self, author: &SigningKey, outcome: &Outcome) {
        let snapshot = self.store.read().unwrap();
        let view = snapshot.state_view(self.context).unwrap();
        let applied = weft_state::apply_actions(&view, &self.context, &author.public_key(), &outcome.actions).unwrap();
        drop(view);
        let context = self.context;
        self.store.write(|txn| txn.apply_state_writes(context, &applied.writes)).unwrap();
        assert_eq!(applied.root_hash, self.root());
    }
}

fn runtime() -> Arc<Runtime> {
    Arc::new(Runtime::new(RuntimeConfig::default()).unwrap())
}

fn event_kinds(outcome: &Outcome) -> Vec<&str> {
    outcome.events.iter().map(|event| event.kind.as_str()).collect()
}

#[test]
fn every_app_loads_with_its_manifest() {
    let runtime = runtime();
    for (name, wasm) in weft_apps::ALL {
        let app = runtime.load(wasm).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(app.manifest().name, name);
        assert!(app.manifest().init().is_some(), "{name} has an init method");
    }
}

#[test]
fn kv_store_methods_through_the_runtime_and_the_store() {
    let mut node = Node::new(runtime(), weft_apps::KV_STORE, 1);
    let empty = node.root();
    node.ok("init", Init, json!({}));
    let set = node.call("set", Mutate, &json!({"key": "a", "value": "1"})).unwrap();
    assert_eq!(event_kinds(&set), ["Inserted"]);
    assert!(!set.actions.is_empty());
    assert_ne!(node.root(), empty);
    assert_eq!(node.ok("get", View, json!({"key": "a"})), json!("1"));
    let update = node.call("set", Mutate, &json!({"key": "a", "value": "2"})).unwrap();
    assert_eq!(event_kinds(&update), ["Updated"]);
    assert_eq!(serde_json::from_slice::<Json>(&update.events[0].data).unwrap(), json!({"key": "a", "value": "2"}));
    node.ok("set", Mutate, json!({"key": "b", "value": "3"}));
    assert_eq!(node.ok("entries", View, json!({})), json!({"a": "2", "b": "3"}));
    assert_eq!(node.ok("len", View, json!({})), json!(2));
    let remove = node.call("remove", Mutate, &json!({"key": "a"})).unwrap();
    assert_eq!(remove.result, CallResult::Ok(br#""2""#.to_vec()));
    assert_eq!(event_kinds(&remove), ["Removed"]);
    assert_eq!(node.ok("get", View, json!({"key": "a"})), Json::Null);

    // A typed app error reaches the caller as JSON and commits nothing.
    let before = node.root();
    let missing = node.call("remove", Mutate, &json!({"key": "a"})).unwrap();
    let CallResult::AppError(error) = &missing.result else { panic!("expected an app error") };
    assert_eq!(serde_json::from_slice::<Json>(error).unwrap(), json!({"NotFound": {"key": "a"}}));
    assert!(missing.actions.is_empty() && missing.events.is_empty());
    assert_eq!(node.root(), before);
}

#[test]
fn kv_store_state_survives_reopening_the_store() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let mut node = Node::new(Arc::clone(&runtime), weft_apps::KV_STORE, 1);
    node.store = Store::open(&path).unwrap();
    node.ok("init", Init, json!({}));
    node.ok("set", Mutate, json!({"key": "k", "value": "durable"}));
    let root = node.root();
    node.store = Store::open(dir.path().join("other.redb")).unwrap(); // closes the first file
    node.store = Store::open(&path).unwrap();
    assert_eq!(node.root(), root);
    assert_eq!(node.ok("get", View, json!({"key": "k"})), json!("durable"));
}

#[test]
fn bad_json_arguments_are_a_guest_panic_and_change_nothing() {
    let mut node = Node::new(runtime(), weft_apps::KV_STORE, 1);
    node.ok("init", Init, json!({}));
    node.ok("set", Mutate, json!({"key": "a", "value": "1"}));
    for input in [&b"not json"[..], br#"{"key": 5}"#, br#"{"value": "no key"}"#, br#"[1,2]"#] {
        match node.fails("set", Mutate, input) {
            RuntimeError::GuestPanic { message } => {
                assert!(message.contains("invalid arguments for `set`"), "{message}")
            }
            other => panic!("{}: expected a guest panic, got {other:?}", String::from_utf8_lossy(input)),
        }
    }
    assert_eq!(node.ok("get", View, json!({"key": "a"})), json!("1"));
}

#[test]
fn unknown_methods_and_wrong_kinds_are_refused() {
    let mut node = Node::new(runtime(), weft_apps::KV_STORE, 1);
    node.ok("init", Init, json!({}));
    assert_eq!(
        node.fails("drop_table", Mutate, b"{}"),
        RuntimeError::UnknownMethod { app: "kv-store".into(), method: "drop_table".into() }
    );
    assert!(matches!(node.fails("set", View, br#"{"key":"a","value":"b"}"#), RuntimeError::KindMismatch { .. }));
}

#[test]
fn an_app_out_of_fuel_changes_nothing() {
    let limits = Limits { fuel: 20_000, ..Limits::default() };
    let tight = Arc::new(Runtime::new(RuntimeConfig { limits, ..RuntimeConfig::default() }).unwrap());
    let mut node = Node::new(runtime(), weft_apps::KV_STORE, 1);
    node.ok("init", Init, json!({}));
    node.runtime = Arc::clone(&tight);
    node.app = tight.load(weft_apps::KV_STORE).unwrap();
    assert_eq!(node.fails("set", Mutate, br#"{"key":"a","value":"b"}"#), RuntimeError::FuelExhausted { fuel: 20_000 });
}

#[test]
fn counter_handlers_run_on_every_other_node_and_converge() {
    let runtime = runtime();
    let mut nodes: Vec<Node> =
        (1..=3).map(|seed| Node::new(Arc::clone(&runtime), weft_apps::COUNTER_HANDLERS, seed)).collect();
    // Node 0 creates the context; the others receive its init delta.
    let init = nodes[0].call("init", Init, &json!({})).unwrap();
    let author = nodes[0].key.clone();
    for node in &mut nodes[1..] {
        node.apply(&author, &init);
    }
    // Node 0 triggers: its event names the handler.
    let trigger = nodes[0].call("trigger", Mutate, &json!({"note": "hi"})).unwrap();
    assert_eq!(trigger.events.len(), 1);
    let event = trigger.events[0].clone();
    assert_eq!(event.handler.as_deref(), Some("on_event"));
    // Every other node applies the delta, runs the handler with the event's
    // data, and its handler delta spreads to everyone else.
    let mut deltas = vec![(author.clone(), trigger, 0usize)];
    for (i, node) in nodes.iter_mut().enumerate().skip(1) {
        node.apply(&author, &deltas[0].1);
        node.clock += 1;
        let handled = node.call_raw("on_event", Handler, &event.data).unwrap();
        assert_eq!(handled.logs, ["handling trigger: hi"]);
        deltas.push((node.key.clone(), handled, i));
    }
    for (author, delta, origin) in &deltas[1..] {
        for (j, node) in nodes.iter_mut().enumerate() {
            if j != *origin {
                node.apply(author, delta);
            }
        }
    }
    let root = nodes[0].root();
    for node in &mut nodes {
        assert_eq!(node.ok("count", View, json!({})), json!(2), "two handler runs, seen everywhere");
        assert_eq!(node.ok("triggers", View, json!({})), json!(1));
        assert_eq!(node.root(), root, "every node ends with the same state");
    }
}

#[test]
fn collab_text_edits_by_position() {
    let mut node = Node::new(runtime(), weft_apps::COLLAB_TEXT, 1);
    node.ok("init", Init, json!({}));
    node.ok("insert", Mutate, json!({"pos": 0, "text": "hello"}));
    node.ok("insert", Mutate, json!({"pos": 5, "text": " world"}));
    assert_eq!(node.ok("read", View, json!({})), json!("hello world"));
    let delete = node.call("delete", Mutate, &json!({"pos": 0, "len": 6})).unwrap();
    assert_eq!(event_kinds(&delete), ["Deleted"]);
    assert_eq!(node.ok("read", View, json!({})), json!("world"));
    assert_eq!(node.ok("len", View, json!({})), json!(5));
    let before = node.root();
    let out_of_range = node.call("insert", Mutate, &json!({"pos": 99, "text": "x"})).unwrap();
    assert!(matches!(out_of_range.result, CallResult::AppError(_)));
    assert_eq!(node.root(), before);
    assert!(matches!(node.fails("delete", Mutate, br#"{"pos": "zero"}"#), RuntimeError::GuestPanic { .. }));
}

#[test]
fn concurrent_text_edits_merge_on_both_nodes() {
    let runtime = runtime();
    let mut a = Node::new(Arc::clone(&runtime), weft_apps::COLLAB_TEXT, 1);
    let mut b = Node::new(Arc::clone(&runtime), weft_apps::COLLAB_TEXT, 2);
    let init = a.call("init", Init, &json!({})).unwrap();
    let ak = a.key.clone();
    b.apply(&ak, &init);
    let from_a = a.call("insert", Mutate, &json!({"pos": 0, "text": "left"})).unwrap();
    let bk = b.key.clone();
    let from_b = b.call("insert", Mutate, &json!({"pos": 0, "text": "right"})).unwrap();
    a.apply(&bk, &from_b);
    b.apply(&ak, &from_a);
    let text = a.ok("read", View, json!({}));
    assert_eq!(b.ok("read", View, json!({})), text);
    assert_eq!(text.as_str().map(str::len), Some(9), "both inserts survive: {text}");
    assert_eq!(a.root(), b.root());
}
