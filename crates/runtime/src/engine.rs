//! The runtime's configuration and the one wasmtime [`Engine`] built from it.
//!
//! The engine is set up for bounded, deterministic guests:
//!
//! - fuel metering on (deterministic: the same call over the same state burns
//!   the same fuel on every machine), bulk memory ops charged per byte;
//! - NaN canonicalization on and relaxed SIMD off, so float results do not
//!   depend on the CPU; no threads, no shared memory (the `threads` feature
//!   is not compiled in), one memory per module;
//! - a fixed maximum wasm stack;
//! - linear memory bounded by [`Limits::memory_bytes`] (enforced per store
//!   by a resource limiter, and by the pooling allocator's slot size);
//! - by default a pooling instance allocator: instantiation reuses
//!   pre-mapped slots, the pages a call dirtied are reset in place (kept
//!   resident, so the next call takes no page faults for them), and slots
//!   are returned to the OS in batches;
//! - bounds checks by guard pages (default, with wasmtime's Spectre
//!   mitigations) or explicit ([`BoundsChecks`], faster per call);
//! - optionally wasmtime's own on-disk cache of compiled code.

use std::path::PathBuf;

use wasmtime::{Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::RuntimeError;
use crate::limits::Limits;

/// Default number of compiled apps kept in memory.
pub const MODULES_IN_MEMORY_DEFAULT: usize = 64;

/// Default number of calls that may run at once with the pooling allocator.
pub const INSTANCE_POOL_DEFAULT: u32 = 32;

/// The most table elements a guest table may hold (a Rust guest's function
/// table has a few hundred).
pub const TABLE_ELEMENTS_MAX: usize = 100_000;

/// Instance slots whose memory is returned to the OS in one system call.
/// Returning it costs a TLB shootdown on every core running the process;
/// batching shares one among many calls.
pub const DECOMMIT_BATCH: usize = 8;

/// Bytes of a slot's linear memory reset in place (copied back from the
/// module's image, found with the kernel's `PAGEMAP_SCAN` where available)
/// instead of being returned to the OS: the pages a call dirtied stay
/// resident, so the next call in that slot takes no page faults for them.
pub const MEMORY_KEEP_RESIDENT_BYTES: usize = 1024 * 1024;

/// Bytes of a table reset with `memset` instead of a system call (a Rust
/// guest's table is a few hundred 8-byte entries).
pub const TABLE_KEEP_RESIDENT_BYTES: usize = 16 * 1024;

/// Native stack for host code on a call's fiber, above the wasm stack: host
/// functions run on the fiber too (state operations do not: they run on the
/// caller's thread, see the `call` module).
pub const FIBER_HOST_STACK_BYTES: usize = 1024 * 1024;

/// Where compiled code is cached on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskCache {
    /// Compile every app once per process.
    Off,
    /// Keep compiled code in this directory, keyed by the module's bytes and
    /// the engine's version and settings (wasmtime's own cache).
    Directory(PathBuf),
}

/// How guest memory accesses are kept inside the guest's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoundsChecks {
    /// Guard pages: out-of-bounds accesses fault and the fault becomes a
    /// trap; compiled code keeps wasmtime's Spectre mitigations. Each call
    /// changes page protections (`mprotect`) when it instantiates and when
    /// the guest grows its memory, which takes a process-wide lock and a TLB
    /// shootdown on every core.
    #[default]
    GuardPages,
    /// Explicit bounds checks in compiled code, no guard pages and no
    /// signal handlers: a reused instance slot keeps its page protections,
    /// so calls make (almost) no `mprotect` calls (about a quarter less CPU
    /// per call in `benches/runtime.rs` with several threads). wasmtime then
    /// turns its Spectre mitigations for memory and table accesses off:
    /// choose this only for guests that cannot measure time (no timer or
    /// threads are exposed by this ABI, which is what makes a speculative
    /// read observable).
    Explicit,
}

/// How a [`crate::Runtime`] is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// The per-call bounds.
    pub limits: Limits,
    /// How many compiled apps to keep in memory (least recently used go first).
    pub modules_in_memory: usize,
    /// `Some(n)`: a pooling allocator with `n` instance slots (at most `n`
    /// calls run at once; more fail with [`RuntimeError::Busy`]). `None`:
    /// allocate each instance on demand.
    pub instance_pool: Option<u32>,
    /// The on-disk cache of compiled code.
    pub disk_cache: DiskCache,
    /// How memory accesses are bounds-checked.
    pub bounds_checks: BoundsChecks,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            modules_in_memory: MODULES_IN_MEMORY_DEFAULT,
            instance_pool: Some(INSTANCE_POOL_DEFAULT),
            disk_cache: DiskCache::Off,
            bounds_checks: BoundsChecks::GuardPages,
        }
    }
}

/// The wasmtime engine for `config`.
pub(crate) fn build_engine(config: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    let limits = &config.limits;
    let mut wasm = Config::new();
    wasm.consume_fuel(true)
        .max_wasm_stack(limits.stack_bytes)
        .async_stack_size(limits.stack_bytes.saturating_add(FIBER_HOST_STACK_BYTES))
        .cranelift_nan_canonicalization(true)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false);
    if config.bounds_checks == BoundsChecks::Explicit {
        // wasmtime switches its heap/table Spectre mitigations off itself:
        // they rely on the signal handlers this removes.
        wasm.signals_based_traps(false).memory_guard_size(0).memory_reservation(limits.memory_bytes as u64);
    }
    if let Some(slots) = config.instance_pool {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(limits.memory_bytes)
            .table_elements(TABLE_ELEMENTS_MAX)
            .decommit_batch_size(DECOMMIT_BATCH)
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES)
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    if let DiskCache::Directory(dir) = &config.disk_cache {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir.clone());
        let cache = Cache::new(cache).map_err(config_error)?;
        wasm.cache(Some(cache));
    }
    Engine::new(&wasm).map_err(config_error)
}

fn config_error(error: wasmtime::Error) -> RuntimeError {
    RuntimeError::Config { reason: format!("{error:#}") }
}
