//! Property tests: whatever pointers, lengths and module bytes a guest
//! supplies, the host answers with a typed result and never panics, and a
//! failed call changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use weft_abi::MethodKind::Mutate;
use weft_runtime::{CallResult, RuntimeError};

/// One method per pointer-taking host function; each loads `(a, b, c)` as
/// three i64 from its input and passes them on.
const PROBES: [(&str, &str); 9] = [
    ("p_read_register", "(call $context_id (i64.const 1)) (drop (call $read_register (i64.const 1) (local.get $a)))"),
    ("p_value_return", "(call $value_return (i64.and (local.get $c) (i64.const 1)) (local.get $a) (local.get $b))"),
    ("p_log", "(call $log_utf8 (local.get $a) (local.get $b))"),
    ("p_panic", "(call $panic_utf8 (local.get $a) (local.get $b))"),
    ("p_emit", "(call $emit (local.get $a) (local.get $b) (local.get $c) (local.get $b) (i64.const 0) (i64.const 0))"),
    (
        "p_emit_handler",
        "(call $emit (i64.const 0) (i64.const 1) (i64.const 0) (i64.const 1) (local.get $a) (local.get $b))",
    ),
    ("p_random", "(call $random_bytes (local.get $a) (local.get $b))"),
    ("p_state_call", "(drop (call $state_call (local.get $a) (local.get $b) (local.get $c)))"),
    ("p_register_len", "(drop (call $register_len (local.get $a)))"),
];

fn probe_guest() -> Vec<u8> {
    let mut body = String::new();
    for (name, call) in PROBES {
        body.push_str(&format!(
            r#"(func (export "{name}") (local $a i64) (local $b i64) (local $c i64)
                {write}
                (call $input (i64.const 0))
                (drop (call $read_register (i64.const 0) (i64.const 8192)))
                (local.set $a (i64.load (i32.const 8192)))
                (local.set $b (i64.load (i32.const 8200)))
                (local.set $c (i64.load (i32.const 8208)))
                {call})
            "#,
            write = do_write(),
        ));
    }
    let methods: Vec<_> = PROBES.iter().map(|(name, _)| (*name, Mutate)).collect();
    guest(&methods, &body)
}

/// Pointers and lengths near the interesting edges: zero, inside the one
/// page of memory, at its end, just past it, huge, negative.
fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 0i64..70_000, 65_500i64..65_600, Just(65_536), Just(i64::MAX), Just(-1), any::<i64>(),]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn host_functions_never_panic_and_failures_change_nothing(
        probe in 0..PROBES.len(),
        a in edge_i64(),
        b in edge_i64(),
        c in edge_i64(),
    ) {
        thread_local! {
            static HARNESS: std::cell::RefCell<Harness> = std::cell::RefCell::new(Harness::new(runtime(), &probe_guest()));
        }
        HARNESS.with(|h| {
            let mut h = h.borrow_mut();
            let before = h.root();
            let mut input = Vec::new();
            for value in [a, b, c] {
                input.extend_from_slice(&value.to_le_bytes());
            }
            match h.call(PROBES[probe].0, Mutate, &input) {
                Ok(outcome) => {
                    // Committed (or, for an app error, nothing to commit).
                    if matches!(outcome.result, CallResult::AppError(_)) {
                        prop_assert_eq!(h.root(), before);
                    }
                }
                Err(error) => {
                    prop_assert_eq!(h.root(), before, "a failed call changed the root");
                    let expected = matches!(
                        error,
                        RuntimeError::OutOfBounds { .. }
                            | RuntimeError::LimitExceeded { .. }
                            | RuntimeError::GuestPanic { .. }
                            | RuntimeError::BadEvent { .. }
                            | RuntimeError::ValueReturnedTwice
                    );
                    prop_assert!(expected, "unexpected error {:?}", error);
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn corrupted_modules_are_rejected_or_run_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        thread_local! {
            static RUNTIME: weft_runtime::Runtime = runtime();
            static WASM: Vec<u8> = probe_guest();
        }
        let mut wasm = WASM.with(Clone::clone);
        for (at, byte) in flips {
            let at = at.index(wasm.len());
            wasm[at] = byte;
        }
        if let Some(cut) = cut {
            wasm.truncate(cut.index(wasm.len()));
        }
        RUNTIME.with(|runtime| {
            // Either a typed rejection or a loaded app; never a panic.
            let _ = runtime.load(&wasm);
            let _ = weft_runtime::read_manifest(&wasm);
        });
    }
}
