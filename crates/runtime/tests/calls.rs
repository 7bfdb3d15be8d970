//! Well-behaved guests (hand-written WAT): what each host function gives,
//! what a call commits, and the module caches.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use weft_abi::MethodKind::{self, Handler, Mutate, View};
use weft_abi::{StateCall, StateReply, StateValue};
use weft_primitives::Hlc;
use weft_runtime::{CallResult, DiskCache, Event, Limits, Runtime, RuntimeConfig, RuntimeError};

/// Read register `r` to memory at 4096 and return it as the call's value.
fn return_register(r: u32) -> String {
    format!(
        "(drop (call $read_register (i64.const {r}) (i64.const 4096)))
         (call $value_return (i64.const 0) (i64.const 4096) (call $register_len (i64.const {r})))"
    )
}

fn get_request() -> Vec<u8> {
    borsh::to_vec(&StateCall::MapGet { map: weft_state::root_id().0, key: b"k".to_vec() }).unwrap()
}

fn store_app() -> Vec<u8> {
    let get = get_request();
    let body = format!(
        r#"(data (i32.const 3000) "{get}")
        (func (export "put") {write} (call $value_return (i64.const 0) (i64.const 0) (i64.const 0)))
        (func (export "get") (drop (call $state_call (i64.const 3000) (i64.const {get_len}) (i64.const 1))) {ret})
        (func (export "put_then_fail") {write}
            (call $value_return (i64.const 1) (i64.const 3000) (i64.const 2)))"#,
        get = wat_bytes(&get),
        get_len = get.len(),
        write = do_write(),
        ret = return_register(1),
    );
    guest(&[("put", Mutate), ("get", View), ("put_then_fail", Mutate)], &body)
}

fn get_value(h: &mut Harness) -> Option<Vec<u8>> {
    let outcome = h.call("get", View, b"{}").unwrap();
    assert!(outcome.actions.is_empty() && outcome.writes.is_empty(), "a view commits nothing");
    let CallResult::Ok(bytes) = outcome.result else { panic!("get failed") };
    match borsh::from_slice::<StateReply>(&bytes).unwrap() {
        StateReply::Value(Some(StateValue::Bytes(value))) => Some(value),
        StateReply::Value(None) => None,
        other => panic!("unexpected reply {other:?}"),
    }
}

#[test]
fn a_mutation_commits_actions_writes_and_a_new_root() {
    let mut h = Harness::new(runtime(), &store_app());
    let before = h.root();
    assert_eq!(get_value(&mut h), None);
    let outcome = h.call("put", Mutate, b"{}").unwrap();
    assert_eq!(outcome.result, CallResult::Ok(vec![]));
    assert_eq!(outcome.actions.len(), 1);
    assert_ne!(outcome.root_hash, before);
    assert_eq!(outcome.root_hash, h.root(), "the returned root is the root once the writes are applied");
    assert_eq!(outcome.last_hlc, Some(Hlc::new(1_000 + h.tick, 0)));
    assert_eq!(get_value(&mut h), Some(b"v".to_vec()));
}

#[test]
fn an_app_error_commits_nothing() {
    let mut h = Harness::new(runtime(), &store_app());
    let before = h.root();
    let outcome = h.call("put_then_fail", Mutate, b"{}").unwrap();
    assert!(matches!(outcome.result, CallResult::AppError(ref bytes) if bytes.len() == 2));
    assert!(outcome.actions.is_empty() && outcome.events.is_empty() && outcome.writes.is_empty());
    assert_eq!(outcome.root_hash, before);
    assert_eq!(h.root(), before);
    assert_eq!(get_value(&mut h), None);
}

fn echo_app() -> Vec<u8> {
    let body = format!(
        r#"(func (export "input") (call $input (i64.const 5)) {input})
        (func (export "context") (call $context_id (i64.const 5)) {ret})
        (func (export "executor") (call $executor_id (i64.const 5)) {ret})
        (func (export "now") (call $time_now (i64.const 5)) {ret})
        (func (export "random") (call $random_bytes (i64.const 4096) (i64.const 32))
            (call $value_return (i64.const 0) (i64.const 4096) (i64.const 32)))
        (func (export "empty_register") (i64.store (i32.const 4096) (call $register_len (i64.const 9)))
            (i32.store (i32.const 4104) (call $read_register (i64.const 9) (i64.const 0)))
            (call $value_return (i64.const 0) (i64.const 4096) (i64.const 12)))"#,
        input = return_register(5),
        ret = return_register(5),
    );
    let methods: Vec<(&str, MethodKind)> =
        ["input", "context", "executor", "now", "random", "empty_register"].iter().map(|m| (*m, View)).collect();
    guest(&methods, &body)
}

fn view(h: &mut Harness, method: &str, input: &[u8]) -> Vec<u8> {
    match h.call(method, View, input).unwrap().result {
        CallResult::Ok(bytes) => bytes,
        CallResult::AppError(e) => panic!("{method}: app error {e:?}"),
    }
}

#[test]
fn host_functions_give_the_call_facts() {
    let mut h = Harness::new(runtime(), &echo_app());
    assert_eq!(view(&mut h, "input", br#"{"x":1}"#), br#"{"x":1}"#);
    assert_eq!(view(&mut h, "context", b""), h.context.0.to_vec());
    assert_eq!(view(&mut h, "executor", b""), h.key.public_key().0.to_vec());
    let now = view(&mut h, "now", b"");
    assert_eq!(now, borsh::to_vec(&Hlc::new(1_000 + h.tick, 0)).unwrap(), "time_now is the call's HLC, 12 bytes");
    let (a, b) = (view(&mut h, "random", b""), view(&mut h, "random", b""));
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    let empty = view(&mut h, "empty_register", b"");
    assert_eq!(empty[..8], (-1i64).to_le_bytes(), "register_len of an empty register is -1");
    assert_eq!(empty[8..], 0i32.to_le_bytes(), "read_register of an empty register is 0");
}

fn events_app() -> Vec<u8> {
    let body = r#"(data (i32.const 2048) "Added{\"n\":1}on_added")
        (func (export "add")
            (call $log_utf8 (i64.const 2048) (i64.const 5))
            (call $emit (i64.const 2048) (i64.const 5) (i64.const 2053) (i64.const 7) (i64.const 2060) (i64.const 8))
            (call $emit (i64.const 2048) (i64.const 5) (i64.const 2053) (i64.const 7) (i64.const 0) (i64.const 0)))
        (func (export "on_added"))"#;
    guest(&[("add", Mutate), ("on_added", Handler)], body)
}

#[test]
fn events_and_logs_come_back_with_the_outcome() {
    let mut h = Harness::new(runtime(), &events_app());
    let outcome = h.call("add", Mutate, b"{}").unwrap();
    assert_eq!(outcome.logs, vec!["Added".to_owned()]);
    let added = |handler: Option<&str>| Event {
        kind: "Added".into(),
        data: br#"{"n":1}"#.to_vec(),
        handler: handler.map(str::to_owned),
    };
    assert_eq!(outcome.events, vec![added(Some("on_added")), added(None)]);
    assert!(outcome.has_changes());
    h.call("on_added", Handler, b"{}").unwrap();
}

#[test]
fn fuel_use_is_deterministic() {
    let mut h = Harness::new(runtime(), &store_app());
    let first = h.call("get", View, b"{}").unwrap().fuel_used;
    let second = h.call("get", View, b"{}").unwrap().fuel_used;
    assert!(first > 0);
    assert_eq!(first, second);
}

#[test]
fn compiled_apps_are_cached_by_id_with_lru_eviction() {
    let runtime = Runtime::new(RuntimeConfig { modules_in_memory: 2, ..RuntimeConfig::default() }).unwrap();
    let apps: Vec<Vec<u8>> = (0..3)
        .map(|i| guest(&[("m", Mutate)], &format!("(func (export \"m\")) (global i32 (i32.const {i}))")))
        .collect();
    let a = runtime.load(&apps[0]).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &runtime.load(&apps[0]).unwrap()), "the second load is the cached app");
    assert_eq!(a.id(), weft_primitives::Hash::of(&apps[0]));
    runtime.load(&apps[1]).unwrap();
    runtime.app(&a.id()).unwrap(); // a is now more recent than apps[1]
    runtime.load(&apps[2]).unwrap();
    assert_eq!(runtime.apps_in_memory(), 2);
    assert!(runtime.app(&a.id()).is_some());
    assert!(runtime.app(&weft_primitives::Hash::of(&apps[1])).is_none(), "the least recently used app was evicted");
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { disk_cache: DiskCache::Directory(dir.path().to_owned()), ..RuntimeConfig::default() };
    let wasm = store_app();
    Runtime::new(config.clone()).unwrap().load(&wasm).unwrap();
    let files = walk(dir.path());
    assert!(!files.is_empty(), "compiling wrote the cache");
    // A fresh runtime (a restarted node) loads from the cache and runs the app.
    let mut h = Harness::new(Runtime::new(config).unwrap(), &wasm);
    h.call("put", Mutate, b"{}").unwrap();
    assert_eq!(get_value(&mut h), Some(b"v".to_vec()));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn an_app_from_another_runtime_is_refused() {
    let wasm = store_app();
    let mut h = Harness::new(runtime(), &wasm);
    h.app = Runtime::new(RuntimeConfig::default()).unwrap().load(&wasm).unwrap();
    assert_eq!(h.call("get", View, b"{}").unwrap_err(), RuntimeError::ForeignApp);
}

#[test]
fn on_demand_allocation_works_too() {
    let limits = Limits { fuel: TEST_FUEL, ..Limits::default() };
    let runtime = Runtime::new(RuntimeConfig { limits, instance_pool: None, ..RuntimeConfig::default() }).unwrap();
    let mut h = Harness::new(runtime, &store_app());
    h.call("put", Mutate, b"{}").unwrap();
    assert_eq!(get_value(&mut h), Some(b"v".to_vec()));
}

#[test]
fn a_runtime_and_its_apps_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Runtime>();
    shared::<weft_runtime::App>();
    let runtime = std::sync::Arc::new(runtime());
    let app = runtime.load(&store_app()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (runtime, app) = (std::sync::Arc::clone(&runtime), std::sync::Arc::clone(&app));
            std::thread::spawn(move || {
                let mut h = Harness::new_with_app(runtime, app);
                h.call("put", Mutate, b"{}").unwrap();
                get_value(&mut h)
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Some(b"v".to_vec()));
    }
}
