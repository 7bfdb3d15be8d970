//! Runtime costs, one JSON line per figure.
//!
//! 1. The fixed cost of a call: instantiate a tiny module (WAT, with a
//!    manifest) and call its empty method.
//! 2. `set` executed and committed durably to a real store on disk: worker
//!    threads, one context each, run calls back to back; each call sees the
//!    writes of the calls before it (the committed snapshot with the
//!    not-yet-committed writes laid over it), and every `BATCH` calls go to
//!    the store's `GroupCommitter` as one batch; a worker waits for its batch
//!    to be durable before it takes the next snapshot. Measured for a raw
//!    guest (the input is the borsh `MapInsert`: runtime + state + store,
//!    no SDK) and for the `kv-store` example app (SDK, JSON, LWW values),
//!    with the default guard-page bounds checks and with explicit ones.
//!
//! Wall-clock rates depend on what else the (shared, 2-core) machine runs;
//! the `*_cpu` lines (process CPU time per call, all threads) do not, and
//! `*_projected_2_idle_cores` is what that CPU cost allows on two idle cores.
//!
//! Run: `cargo bench -j2 -p weft-runtime`.

use std::time::Instant;

use weft_abi::{ABI_VERSION, Manifest, MethodKind, MethodSpec, StateCall};
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_runtime::{App, BoundsChecks, CallResult, ExecuteRequest, Runtime, RuntimeConfig};
use weft_state::LayeredKv;
use weft_store::{Store, WriteBatch};

const EMPTY_CALLS: usize = 20_000;
const WORKERS: usize = 4;
const BATCH: usize = 64;
const SET_CALLS: usize = 40_000;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// CPU time this process has used (all threads, user + system), from
/// `/proc/self/stat` (clock ticks of 10 ms). The machine is shared, so
/// CPU time per call is the figure that other load does not distort.
fn process_cpu_secs() -> f64 {
    const TICKS_PER_SEC: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS_PER_SEC
}

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A guest with an empty view `noop` and a `raw_set` that passes its input
/// (a borsh `StateCall`) straight to `state_call`.
fn raw_guest() -> BenchResult<Vec<u8>> {
    let spec = |name: &str, kind| MethodSpec { name: name.into(), kind, args: vec![], returns: "()".into() };
    let manifest = Manifest {
        abi_version: ABI_VERSION,
        name: "bench".into(),
        version: "0".into(),
        methods: vec![spec("noop", MethodKind::View), spec("raw_set", MethodKind::Mutate)],
        events: vec![],
    };
    let text = format!(
        r#"(module
          (import "weft" "input" (func $input (param i64)))
          (import "weft" "register_len" (func $register_len (param i64) (result i64)))
          (import "weft" "read_register" (func $read_register (param i64 i64) (result i32)))
          (import "weft" "state_call" (func $state_call (param i64 i64 i64) (result i32)))
          (memory (export "memory") 1)
          (func (export "noop"))
          (func (export "raw_set")
            (call $input (i64.const 0))
            (drop (call $read_register (i64.const 0) (i64.const 1024)))
            (if (call $state_call (i64.const 1024) (call $register_len (i64.const 0)) (i64.const 1))
              (then unreachable)))
          (@custom "weft_manifest" "{}"))"#,
        wat_bytes(&manifest.encode_section())
    );
    Ok(wat::parse_str(text)?)
}

/// Who calls what: the fixed part of a benchmark's calls.
struct Caller<'a> {
    runtime: &'a Runtime,
    app: &'a App,
    key: &'a SigningKey,
    context: Hash,
}

impl Caller<'_> {
    fn call<K: KvRead + ?Sized>(
        &self,
        start_hlc: Hlc,
        kv: &K,
        method: &str,
        input: &[u8],
        kind: MethodKind,
    ) -> BenchResult<weft_runtime::Outcome> {
        let request = ExecuteRequest {
            context_id: self.context,
            executor: self.key,
            start_hlc,
            kv,
            method,
            input,
            kind,
            event_author: None,
            text_lane: 0,
        };
        let outcome = self.runtime.execute(self.app, request)?;
        if let CallResult::AppError(error) = &outcome.result {
            return Err(format!("{method}: app error {}", String::from_utf8_lossy(error)).into());
        }
        Ok(outcome)
    }
}

/// The fixed cost of calling `method` (a cheap view) of `app`; ns per call.
fn view_call(runtime: &Runtime, app: &App, init: Option<&str>, method: &str) -> BenchResult<f64> {
    let key = SigningKey::from_seed([1; 32]);
    let caller = Caller { runtime, app, key: &key, context: Hash::ZERO };
    let mut kv = MemoryKv::new();
    if let Some(init) = init {
        let outcome = caller.call(Hlc::new(0, 0), &kv, init, b"{}", MethodKind::Init)?;
        kv.apply(outcome.writes);
    }
    let run = |n: usize| -> BenchResult<f64> {
        let start = Instant::now();
        for i in 0..n {
            caller.call(Hlc::new(i as u64, 0), &kv, method, b"", MethodKind::View)?;
        }
        Ok(start.elapsed().as_secs_f64())
    };
    run(EMPTY_CALLS / 10)?; // warm-up: pool slots, caches
    Ok(run(EMPTY_CALLS)? / EMPTY_CALLS as f64 * 1e9)
}

/// Builds the input of set number `i` of `worker`.
type InputOf = dyn Fn(usize, usize) -> Vec<u8> + Sync;

fn worker_context(worker: usize) -> (SigningKey, Hash) {
    (SigningKey::from_seed([worker as u8 + 1; 32]), Hash::of(&(worker as u64).to_le_bytes()))
}

/// What a committed run measured.
struct Committed {
    /// Calls per wall-clock second.
    rate: f64,
    /// CPU time of the whole process (workers and commit thread) per call.
    cpu_us_per_call: f64,
}

/// `SET_CALLS` calls of `method`, executed and committed durably.
/// Each worker's context is first initialised with `init` (not timed).
fn committed_sets(
    runtime: &Runtime,
    app: &App,
    init: Option<&str>,
    method: &str,
    input_of: &InputOf,
) -> BenchResult<Committed> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.redb"))?;
    if let Some(init) = init {
        for worker in 0..WORKERS {
            let (key, context) = worker_context(worker);
            let caller = Caller { runtime, app, key: &key, context };
            let snapshot = store.read()?;
            let view = snapshot.state_view(context)?;
            let outcome = caller.call(Hlc::new(0, 0), &view, init, b"{}", MethodKind::Init)?;
            store.write(|txn| txn.apply_state_writes(context, &outcome.writes))?;
        }
    }
    let committer = store.group_committer()?;
    let per_worker = SET_CALLS / WORKERS;
    let start = Instant::now();
    let cpu_start = process_cpu_secs();
    std::thread::scope(|scope| -> BenchResult<()> {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let (store, committer) = (&store, &committer);
                scope.spawn(move || -> BenchResult<()> {
                    let (key, context) = worker_context(worker);
                    let caller = Caller { runtime, app, key: &key, context };
                    let mut done = 0;
                    while done < per_worker {
                        let snapshot = store.read()?;
                        let view = snapshot.state_view(context)?;
                        let mut pending = WriteSet::new();
                        let batch_end = (done + BATCH).min(per_worker);
                        for i in done..batch_end {
                            let kv = LayeredKv::new(&view, &pending);
                            let hlc = Hlc::new(1 + i as u64, 0);
                            let input = input_of(worker, i);
                            let outcome = caller.call(hlc, &kv, method, &input, MethodKind::Mutate)?;
                            pending.extend(outcome.writes);
                        }
                        let mut batch = WriteBatch::new();
                        batch.apply_state_writes(context, pending);
                        committer.submit(batch)?.wait()?;
                        done = batch_end;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| "worker panicked")??;
        }
        Ok(())
    })?;
    let calls = (per_worker * WORKERS) as f64;
    let rate = calls / start.elapsed().as_secs_f64();
    Ok(Committed { rate, cpu_us_per_call: (process_cpu_secs() - cpu_start) / calls * 1e6 })
}

fn emit_committed(name: &str, run: &Committed) {
    emit(name, run.rate, "calls/s");
    emit(&format!("{name}_cpu"), run.cpu_us_per_call, "us/call");
    // What the same CPU cost gives when both cores are ours alone.
    emit(&format!("{name}_projected_2_idle_cores"), 2e6 / run.cpu_us_per_call, "calls/s");
}

/// The CPU cost of `method` without the store: one thread, writes applied
/// to memory after each call; ns per call.
fn sets_in_memory(
    runtime: &Runtime,
    app: &App,
    init: Option<&str>,
    method: &str,
    input_of: &InputOf,
) -> BenchResult<f64> {
    let key = SigningKey::from_seed([1; 32]);
    let caller = Caller { runtime, app, key: &key, context: Hash::ZERO };
    let mut kv = MemoryKv::new();
    if let Some(init) = init {
        let outcome = caller.call(Hlc::new(0, 0), &kv, init, b"{}", MethodKind::Init)?;
        kv.apply(outcome.writes);
    }
    let n = SET_CALLS / WORKERS;
    let start = Instant::now();
    for i in 0..n {
        let input = input_of(0, i);
        let hlc = Hlc::new(1 + i as u64, 0);
        let outcome = caller.call(hlc, &kv, method, &input, MethodKind::Mutate)?;
        kv.apply(outcome.writes);
    }
    Ok(start.elapsed().as_secs_f64() / n as f64 * 1e9)
}

fn main() -> BenchResult<()> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let raw = raw_guest()?;
    let start = Instant::now();
    let app = runtime.load(&raw)?;
    emit("compile_tiny_module", start.elapsed().as_secs_f64() * 1e6, "us");
    let empty = view_call(&runtime, &app, None, "noop")?;
    emit("empty_call", empty, "ns/call");
    emit("empty_call_rate", 1e9 / empty, "calls/s");

    let root = weft_state::root_id().0;
    let raw_input = move |worker: usize, i: usize| {
        let request = StateCall::MapInsert {
            map: root,
            key: format!("key-{worker}-{i}").into_bytes(),
            value: format!("value-{i}").into_bytes(),
        };
        borsh::to_vec(&request).unwrap_or_default()
    };
    emit("raw_set_in_memory", sets_in_memory(&runtime, &app, None, "raw_set", &raw_input)?, "ns/call");
    let run = committed_sets(&runtime, &app, None, "raw_set", &raw_input)?;
    emit_committed("raw_set_committed", &run);

    let kv_store = runtime.load(weft_apps::KV_STORE)?;
    // A cheap view of a real Rust guest (150 KB): its instantiation cost.
    emit("kv_store_len_call", view_call(&runtime, &kv_store, Some("init"), "len")?, "ns/call");
    let kv_input =
        |worker: usize, i: usize| format!(r#"{{"key":"key-{worker}-{i}","value":"value-{i}"}}"#).into_bytes();
    emit("kv_store_set_in_memory", sets_in_memory(&runtime, &kv_store, Some("init"), "set", &kv_input)?, "ns/call");
    let run = committed_sets(&runtime, &kv_store, Some("init"), "set", &kv_input)?;
    emit_committed("kv_store_set_committed", &run);
    emit("kv_store_set_committed_vs_target_20k", run.rate / 20_000.0, "ratio");

    // The same with explicit bounds checks (no per-call `mprotect`).
    let explicit = Runtime::new(RuntimeConfig { bounds_checks: BoundsChecks::Explicit, ..RuntimeConfig::default() })?;
    let kv_store = explicit.load(weft_apps::KV_STORE)?;
    emit("kv_store_len_call_explicit_bounds", view_call(&explicit, &kv_store, Some("init"), "len")?, "ns/call");
    let run = committed_sets(&explicit, &kv_store, Some("init"), "set", &kv_input)?;
    emit_committed("kv_store_set_committed_explicit_bounds", &run);

    Ok(())
}
