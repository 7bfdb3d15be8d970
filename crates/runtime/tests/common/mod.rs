//! Helpers for the runtime's tests: hand-written WAT guests with a manifest
//! section, and a harness that commits successful calls to an in-memory
//! state and checks that failed ones change nothing.

#![allow(dead_code)] // each test binary uses a subset
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use weft_abi::{ABI_VERSION, Manifest, MethodKind, MethodSpec, StateCall};
use weft_primitives::kv::MemoryKv;
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_runtime::{App, ExecuteRequest, Limits, Outcome, Runtime, RuntimeConfig, RuntimeError};

/// Fuel for the tests: enough for every well-behaved guest here, small
/// enough that an infinite loop ends in milliseconds.
pub const TEST_FUEL: u64 = 5_000_000;

/// Where the WAT guests keep their prepared state request.
pub const WRITE_REQUEST_AT: u32 = 1024;

/// All imports of ABI v1, for WAT guests to use any of.
pub const IMPORTS: &str = r#"
  (import "weft" "input" (func $input (param i64)))
  (import "weft" "register_len" (func $register_len (param i64) (result i64)))
  (import "weft" "read_register" (func $read_register (param i64 i64) (result i32)))
  (import "weft" "value_return" (func $value_return (param i64 i64 i64)))
  (import "weft" "log_utf8" (func $log_utf8 (param i64 i64)))
  (import "weft" "panic_utf8" (func $panic_utf8 (param i64 i64)))
  (import "weft" "emit" (func $emit (param i64 i64 i64 i64 i64 i64)))
  (import "weft" "context_id" (func $context_id (param i64)))
  (import "weft" "executor_id" (func $executor_id (param i64)))
  (import "weft" "time_now" (func $time_now (param i64)))
  (import "weft" "random_bytes" (func $random_bytes (param i64 i64)))
  (import "weft" "state_call" (func $state_call (param i64 i64 i64) (result i32)))
"#;

/// A WAT string literal of `bytes`.
pub fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The borsh request `root["k"] = "v"`, which every hostile guest makes
/// before misbehaving (so there is something to roll back).
pub fn write_request() -> Vec<u8> {
    let root = weft_state::root_id().0;
    borsh::to_vec(&StateCall::MapInsert { map: root, key: b"k".to_vec(), value: b"v".to_vec() }).unwrap()
}

/// WAT that performs [`write_request`] (it must be at [`WRITE_REQUEST_AT`]).
pub fn do_write() -> String {
    format!(
        "(drop (call $state_call (i64.const {WRITE_REQUEST_AT}) (i64.const {}) (i64.const 0)))",
        write_request().len()
    )
}

/// A manifest listing `methods`.
pub fn manifest(methods: &[(&str, MethodKind)]) -> Manifest {
    Manifest {
        abi_version: ABI_VERSION,
        name: "test-app".into(),
        version: "0.0.1".into(),
        methods: methods
            .iter()
            .map(|(name, kind)| MethodSpec { name: (*name).into(), kind: *kind, args: vec![], returns: "()".into() })
            .collect(),
        events: vec![],
    }
}

/// A guest module: the imports, one page of exported memory holding the
/// write request, `body` (functions), and a manifest for `methods`.
pub fn guest(methods: &[(&str, MethodKind)], body: &str) -> Vec<u8> {
    guest_with_manifest(Some(&manifest(methods)), body)
}

/// Like [`guest`], with any manifest (or none).
pub fn guest_with_manifest(manifest: Option<&Manifest>, body: &str) -> Vec<u8> {
    let section = manifest
        .map(|m| format!("(@custom \"weft_manifest\" \"{}\")", wat_bytes(&m.encode_section())))
        .unwrap_or_default();
    let text = format!(
        "(module {IMPORTS}\n (memory (export \"memory\") 1)\n (data (i32.const {WRITE_REQUEST_AT}) \"{}\")\n {body}\n {section})",
        wat_bytes(&write_request())
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("bad WAT: {e}\n{text}"))
}

/// A runtime with test-sized fuel and otherwise default limits.
pub fn runtime() -> Runtime {
    runtime_with(Limits { fuel: TEST_FUEL, ..Limits::default() })
}

/// A runtime with `limits`.
pub fn runtime_with(limits: Limits) -> Runtime {
    Runtime::new(RuntimeConfig { limits, ..RuntimeConfig::default() }).unwrap()
}

/// A context's state in memory, with calls committed on success.
pub struct Harness {
    pub runtime: Arc<Runtime>,
    pub app: Arc<App>,
    pub kv: MemoryKv,
    pub key: SigningKey,
    pub context: Hash,
    pub tick: u64,
}

impl Harness {
    /// Load `wasm` into `runtime`.
    pub fn new(runtime: Runtime, wasm: &[u8]) -> Harness {
        let app = runtime.load(wasm).unwrap();
        Harness::new_with_app(Arc::new(runtime), app)
    }

    /// A harness for `app`, already loaded into `runtime`.
    pub fn new_with_app(runtime: Arc<Runtime>, app: Arc<App>) -> Harness {
        Harness {
            runtime,
            app,
            kv: MemoryKv::new(),
            key: SigningKey::from_seed([7; 32]),
            context: Hash::of(b"test context"),
            tick: 0,
        }
    }

    /// The current root hash.
    pub fn root(&self) -> Hash {
        weft_state::root_hash(&self.kv).unwrap()
    }

    /// Call `method` as `kind`, committing the writes of a success.
    pub fn call(&mut self, method: &str, kind: MethodKind, input: &[u8]) -> Result<Outcome, RuntimeError> {
        self.tick += 1;
        let outcome = self.runtime.execute(
            &self.app,
            ExecuteRequest {
                context_id: self.context,
                executor: &self.key,
                start_hlc: Hlc::new(1_000 + self.tick, 0),
                kv: &self.kv,
                method,
                input,
                kind,
                event_author: None,
                text_lane: 0,
            },
        )?;
        self.kv.apply(outcome.writes.clone());
        Ok(outcome)
    }

    /// Call `method`, expect it to fail, and check it changed nothing.
    pub fn fails(&mut self, method: &str, kind: MethodKind) -> RuntimeError {
        let before = self.root();
        let rows = self.kv.len();
        let error = self.call(method, kind, b"{}").expect_err("the call should fail");
        assert_eq!(self.root(), before, "{method}: a failed call changed the root hash");
        assert_eq!(self.kv.len(), rows, "{method}: a failed call wrote rows");
        error
    }
}
