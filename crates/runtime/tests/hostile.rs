//! docs/testing.md S9: hostile guests. Each misbehaviour ends the call with its
//! own clear error, leaves the state (root hash and rows) unchanged, and
//! leaves the runtime able to run the next call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use weft_abi::MethodKind::{Mutate, View};
use weft_abi::host_fn;
use weft_runtime::{BoundsChecks, Limit, Limits, Runtime, RuntimeConfig, RuntimeError, read_manifest};

/// A well-behaved method, to check the runtime still works after abuse.
const OK_METHOD: &str = r#"(func (export "ok") (call $value_return (i64.const 0) (i64.const 0) (i64.const 0)))"#;

fn hostile(method: &str, body: &str) -> Harness {
    Harness::new(runtime(), &guest(&[(method, Mutate), ("ok", Mutate)], &format!("{body}\n{OK_METHOD}")))
}

fn still_works(h: &mut Harness) {
    h.call("ok", Mutate, b"{}").expect("the runtime still runs calls");
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let body = format!(r#"(func (export "spin") {} (loop $l (br $l)))"#, do_write());
    let mut h = hostile("spin", &body);
    assert_eq!(h.fails("spin", Mutate), RuntimeError::FuelExhausted { fuel: TEST_FUEL });
    still_works(&mut h);
}

#[test]
fn memory_grow_loop_hits_the_memory_limit() {
    let body =
        format!(r#"(func (export "bomb") {} (loop $l (drop (memory.grow (i32.const 16))) (br $l)))"#, do_write());
    let mut h = hostile("bomb", &body);
    let limit = Limits::default().memory_bytes as u64;
    assert!(
        matches!(h.fails("bomb", Mutate), RuntimeError::MemoryLimit { limit: l, requested } if l == limit && requested > limit)
    );
    still_works(&mut h);
}

#[test]
fn oversized_initial_memory_is_refused() {
    // 2,000 pages = 125 MiB, over the 64 MiB default.
    let wasm = wat::parse_str(format!(
        "(module (memory (export \"memory\") 2000) (func (export \"m\")) (@custom \"weft_manifest\" \"{}\"))",
        wat_bytes(&manifest(&[("m", Mutate)]).encode_section())
    ))
    .unwrap();
    // It could never be instantiated: refused when loaded, pooled or not.
    let limit = Limits::default().memory_bytes as u64;
    let expected = RuntimeError::MemoryLimit { requested: 131_072_000, limit };
    assert_eq!(runtime().load(&wasm).unwrap_err(), expected);
    let on_demand = Runtime::new(RuntimeConfig { instance_pool: None, ..RuntimeConfig::default() }).unwrap();
    assert_eq!(on_demand.load(&wasm).unwrap_err(), expected);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let body = format!(r#"(func $rec (call $rec)) (func (export "deep") {} (call $rec))"#, do_write());
    let mut h = hostile("deep", &body);
    assert_eq!(h.fails("deep", Mutate), RuntimeError::StackOverflow);
    still_works(&mut h);
}

#[test]
fn unreachable_is_a_trap() {
    let body = format!(r#"(func (export "boom") {} unreachable)"#, do_write());
    let mut h = hostile("boom", &body);
    assert!(matches!(h.fails("boom", Mutate), RuntimeError::Trap { .. }));
}

#[test]
fn guest_panic_reports_its_message() {
    let body = format!(
        r#"(data (i32.const 2048) "oh no") (func (export "panics") {} (call $panic_utf8 (i64.const 2048) (i64.const 5)))"#,
        do_write()
    );
    let mut h = hostile("panics", &body);
    assert_eq!(h.fails("panics", Mutate), RuntimeError::GuestPanic { message: "oh no".into() });
    still_works(&mut h);
}

/// One page of memory is 65,536 bytes: these pointers are just past it,
/// far past it, and negative (a huge u64).
const BAD_POINTERS: [i64; 3] = [65_536, 1 << 40, -1];

#[test]
fn out_of_bounds_pointers_to_every_host_function_are_typed_errors() {
    for ptr in BAD_POINTERS {
        // (function name, WAT call with the bad pointer `P`)
        let cases = [
            (
                host_fn::READ_REGISTER,
                "(call $context_id (i64.const 3)) (drop (call $read_register (i64.const 3) (i64.const P)))",
            ),
            (host_fn::VALUE_RETURN, "(call $value_return (i64.const 0) (i64.const P) (i64.const 4))"),
            (host_fn::LOG_UTF8, "(call $log_utf8 (i64.const P) (i64.const 4))"),
            (host_fn::PANIC_UTF8, "(call $panic_utf8 (i64.const P) (i64.const 4))"),
            (
                host_fn::EMIT,
                "(call $emit (i64.const P) (i64.const 1) (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 0))",
            ),
            (
                host_fn::EMIT,
                "(call $emit (i64.const 0) (i64.const 1) (i64.const P) (i64.const 1) (i64.const 0) (i64.const 0))",
            ),
            (
                host_fn::EMIT,
                "(call $emit (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 1) (i64.const P) (i64.const 2))",
            ),
            (host_fn::RANDOM_BYTES, "(call $random_bytes (i64.const P) (i64.const 8))"),
            (host_fn::STATE_CALL, "(drop (call $state_call (i64.const P) (i64.const 8) (i64.const 0)))"),
        ];
        for (function, call) in cases {
            let body = format!(r#"(func (export "bad") {} {})"#, do_write(), call.replace('P', &ptr.to_string()));
            let mut h = hostile("bad", &body);
            match h.fails("bad", Mutate) {
                RuntimeError::OutOfBounds { function: f, ptr: p, .. } => {
                    assert_eq!(f, function);
                    assert_eq!(p, ptr as u64);
                }
                // `emit` with the handler out of bounds reads kind and data first.
                other => panic!("{function} with ptr {ptr}: expected OutOfBounds, got {other:?}"),
            }
            still_works(&mut h);
        }
    }
}

#[test]
fn huge_lengths_hit_limits_before_anything_is_read() {
    let huge = [1i64 << 40, -1];
    for len in huge {
        let cases: [(&str, Option<Limit>); 6] = [
            ("(call $value_return (i64.const 0) (i64.const 0) (i64.const L))", Some(Limit::OutputBytes)),
            ("(call $log_utf8 (i64.const 0) (i64.const L))", Some(Limit::LogLineBytes)),
            ("(call $random_bytes (i64.const 0) (i64.const L))", Some(Limit::RandomBytes)),
            ("(drop (call $state_call (i64.const 0) (i64.const L) (i64.const 0)))", Some(Limit::StateRequestBytes)),
            (
                "(call $emit (i64.const 0) (i64.const L) (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 0))",
                Some(Limit::EventBytes),
            ),
            // A panic message is only truncated, but its range must be valid.
            ("(call $panic_utf8 (i64.const 0) (i64.const L))", None),
        ];
        for (call, limit) in cases {
            let body = format!(r#"(func (export "huge") {} {})"#, do_write(), call.replace('L', &len.to_string()));
            let mut h = hostile("huge", &body);
            let error = h.fails("huge", Mutate);
            match limit {
                Some(what) => assert!(
                    matches!(error, RuntimeError::LimitExceeded { what: w, .. } if w == what),
                    "{call} with len {len}: got {error:?}"
                ),
                None => assert!(matches!(error, RuntimeError::OutOfBounds { .. }), "{call}: got {error:?}"),
            }
        }
    }
}

#[test]
fn value_return_twice_is_an_error() {
    let body = format!(
        r#"(func (export "twice") {}
             (call $value_return (i64.const 0) (i64.const 0) (i64.const 0))
             (call $value_return (i64.const 0) (i64.const 0) (i64.const 0)))"#,
        do_write()
    );
    let mut h = hostile("twice", &body);
    assert_eq!(h.fails("twice", Mutate), RuntimeError::ValueReturnedTwice);
}

#[test]
fn value_return_with_an_unknown_status_is_an_error() {
    let body = format!(
        r#"(func (export "odd") {} (call $value_return (i64.const 7) (i64.const 0) (i64.const 0)))"#,
        do_write()
    );
    let mut h = hostile("odd", &body);
    assert_eq!(h.fails("odd", Mutate), RuntimeError::BadReturnStatus(7));
}

#[test]
fn a_storm_of_state_calls_hits_the_state_call_limit() {
    let body = format!(r#"(func (export "storm") (loop $l {} (br $l)))"#, do_write());
    // Default fuel: the limit, not the fuel, must stop it.
    let mut h = Harness::new(
        runtime_with(Limits::default()),
        &guest(&[("storm", Mutate), ("ok", Mutate)], &format!("{body}\n{OK_METHOD}")),
    );
    let error = h.fails("storm", Mutate);
    assert_eq!(
        error,
        RuntimeError::LimitExceeded { what: Limit::StateCalls, limit: Limits::default().state_calls as u64 }
    );
    still_works(&mut h);
}

#[test]
fn a_storm_of_cheap_host_calls_hits_the_host_call_limit() {
    let body = r#"(func (export "storm") (loop $l (drop (call $register_len (i64.const 1))) (br $l)))"#;
    let mut h = Harness::new(runtime_with(Limits::default()), &guest(&[("storm", Mutate)], body));
    let error = h.fails("storm", Mutate);
    assert_eq!(
        error,
        RuntimeError::LimitExceeded { what: Limit::HostCalls, limit: Limits::default().host_calls as u64 }
    );
}

#[test]
fn host_calls_cost_fuel() {
    // With the host-call limit out of the way, the storm ends on fuel.
    let limits = Limits { fuel: TEST_FUEL, host_calls: usize::MAX, ..Limits::default() };
    let body = r#"(func (export "storm") (loop $l (drop (call $register_len (i64.const 1))) (br $l)))"#;
    let mut h = Harness::new(runtime_with(limits), &guest(&[("storm", Mutate)], body));
    assert_eq!(h.fails("storm", Mutate), RuntimeError::FuelExhausted { fuel: TEST_FUEL });
}

#[test]
fn too_many_registers_is_an_error() {
    let body = r#"(func (export "regs") (local $i i64)
        (loop $l (call $context_id (local.get $i)) (local.set $i (i64.add (local.get $i) (i64.const 1))) (br $l)))"#;
    let mut h = hostile("regs", body);
    assert!(matches!(h.fails("regs", Mutate), RuntimeError::LimitExceeded { what: Limit::Registers, .. }));
}

#[test]
fn too_many_log_lines_is_an_error() {
    let body = r#"(func (export "chatty") (loop $l (call $log_utf8 (i64.const 0) (i64.const 1)) (br $l)))"#;
    let mut h = hostile("chatty", body);
    assert!(matches!(h.fails("chatty", Mutate), RuntimeError::LimitExceeded { what: Limit::LogLines, .. }));
}

#[test]
fn too_many_events_is_an_error() {
    let body = r#"(func (export "loud") (loop $l
        (call $emit (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 0)) (br $l)))"#;
    let mut h = hostile("loud", body);
    assert!(matches!(h.fails("loud", Mutate), RuntimeError::LimitExceeded { what: Limit::Events, .. }));
}

#[test]
fn oversized_input_is_refused_before_running() {
    let mut h = hostile("m", r#"(func (export "m"))"#);
    let big = vec![b' '; Limits::default().input_bytes + 1];
    let error = h.call("m", Mutate, &big).unwrap_err();
    assert!(matches!(error, RuntimeError::LimitExceeded { what: Limit::InputBytes, .. }));
}

#[test]
fn a_module_without_a_manifest_is_rejected() {
    let wasm = guest_with_manifest(None, OK_METHOD);
    assert_eq!(runtime().load(&wasm).unwrap_err(), RuntimeError::MissingManifest);
    assert_eq!(read_manifest(&wasm).unwrap_err(), RuntimeError::MissingManifest);
}

#[test]
fn a_manifest_of_another_abi_version_is_rejected() {
    let mut other = manifest(&[("ok", Mutate)]);
    other.abi_version += 1;
    let error = runtime().load(&guest_with_manifest(Some(&other), OK_METHOD)).unwrap_err();
    assert!(matches!(error, RuntimeError::BadManifest(weft_abi::ManifestError::UnsupportedAbiVersion { .. })));
}

#[test]
fn a_method_missing_from_the_exports_is_rejected_at_load() {
    let error = runtime().load(&guest(&[("ok", Mutate), ("ghost", Mutate)], OK_METHOD)).unwrap_err();
    assert_eq!(error, RuntimeError::MissingExport { method: "ghost".into() });
}

#[test]
fn an_unknown_import_is_rejected_at_load() {
    let body = r#"(import "weft" "launch_missiles" (func $x)) (func (export "ok") (call $x))"#;
    let text = format!(
        "(module {body} (memory (export \"memory\") 1) (@custom \"weft_manifest\" \"{}\"))",
        wat_bytes(&manifest(&[("ok", Mutate)]).encode_section())
    );
    let error = runtime().load(&wat::parse_str(text).unwrap()).unwrap_err();
    assert!(matches!(error, RuntimeError::Link { .. }), "got {error:?}");
}

#[test]
fn garbage_is_rejected_at_load() {
    assert!(matches!(runtime().load(b"not wasm at all").unwrap_err(), RuntimeError::Malformed { .. }));
}

#[test]
fn an_unknown_method_is_refused() {
    let mut h = hostile("m", r#"(func (export "m"))"#);
    assert_eq!(h.fails("nope", Mutate), RuntimeError::UnknownMethod { app: "test-app".into(), method: "nope".into() });
    // An export that is not in the manifest is not callable either.
    let mut h = Harness::new(runtime(), &guest(&[("m", Mutate)], &format!("(func (export \"m\")) {OK_METHOD}")));
    assert!(matches!(h.fails("ok", Mutate), RuntimeError::UnknownMethod { .. }));
}

#[test]
fn a_call_of_the_wrong_kind_is_refused() {
    let mut h = hostile("m", r#"(func (export "m"))"#);
    assert!(matches!(h.fails("m", View), RuntimeError::KindMismatch { .. }));
}

#[test]
fn a_view_that_writes_fails_even_if_it_ignores_the_status() {
    let body = format!(r#"(func (export "sneaky") {})"#, do_write());
    let mut h = Harness::new(runtime(), &guest(&[("sneaky", View)], &body));
    assert_eq!(h.fails("sneaky", View), RuntimeError::ReadOnly { what: "write state" });
}

#[test]
fn a_view_that_emits_fails() {
    let body = r#"(func (export "shout") (call $emit (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 0)))"#;
    let mut h = Harness::new(runtime(), &guest(&[("shout", View)], body));
    assert_eq!(h.fails("shout", View), RuntimeError::ReadOnly { what: "emit an event" });
}

#[test]
fn an_event_naming_an_unknown_handler_is_refused() {
    let body = r#"(data (i32.const 2048) "Kindon_nothing")
        (func (export "e") (call $emit (i64.const 2048) (i64.const 4) (i64.const 0) (i64.const 0) (i64.const 2052) (i64.const 10)))"#;
    let mut h = hostile("e", body);
    assert!(matches!(h.fails("e", Mutate), RuntimeError::BadEvent { .. }));
}

#[test]
fn guest_loads_and_stores_out_of_bounds_trap() {
    let body = format!(
        r#"(func (export "load") {w} (drop (i32.load (i32.const 65535))))
           (func (export "store") {w} (i64.store (i32.const -8) (i64.const 1)))"#,
        w = do_write()
    );
    let mut h = Harness::new(
        runtime(),
        &guest(&[("load", Mutate), ("store", Mutate), ("ok", Mutate)], &format!("{body}\n{OK_METHOD}")),
    );
    for method in ["load", "store"] {
        assert!(matches!(h.fails(method, Mutate), RuntimeError::Trap { .. }), "{method}");
        still_works(&mut h);
    }
}

#[test]
fn explicit_bounds_checks_keep_every_guarantee() {
    let limits = Limits { fuel: TEST_FUEL, ..Limits::default() };
    let explicit = || {
        Runtime::new(RuntimeConfig {
            limits: limits.clone(),
            bounds_checks: BoundsChecks::Explicit,
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    let body = format!(
        r#"(func (export "spin") (loop $l (br $l)))
           (func (export "bomb") {w} (loop $l (drop (memory.grow (i32.const 16))) (br $l)))
           (func $rec (call $rec)) (func (export "deep") {w} (call $rec))
           (func (export "load") {w} (drop (i32.load (i32.const 65535))))
           (func (export "store") {w} (i64.store (i32.const -8) (i64.const 1)))
           (func (export "bad_ptr") {w} (call $log_utf8 (i64.const 65535) (i64.const 2)))
           {OK_METHOD}"#,
        w = do_write()
    );
    let methods = ["spin", "bomb", "deep", "load", "store", "bad_ptr", "ok"];
    let wasm = guest(&methods.map(|m| (m, Mutate)), &body);
    let mut h = Harness::new(explicit(), &wasm);
    assert_eq!(h.fails("spin", Mutate), RuntimeError::FuelExhausted { fuel: TEST_FUEL });
    assert!(matches!(h.fails("bomb", Mutate), RuntimeError::MemoryLimit { .. }));
    assert_eq!(h.fails("deep", Mutate), RuntimeError::StackOverflow);
    assert!(matches!(h.fails("load", Mutate), RuntimeError::Trap { .. }));
    assert!(matches!(h.fails("store", Mutate), RuntimeError::Trap { .. }));
    assert!(matches!(h.fails("bad_ptr", Mutate), RuntimeError::OutOfBounds { .. }));
    // A slot reused after a grown memory still starts at the module's size.
    for _ in 0..3 {
        still_works(&mut h);
        assert!(matches!(h.fails("load", Mutate), RuntimeError::Trap { .. }));
    }
}
