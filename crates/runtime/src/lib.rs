//! Weft's WASM runtime: runs application methods on wasmtime, safely and
//! cheaply, against a write overlay of a context's state.
//!
//! - [`Runtime::new`] builds one engine from a [`RuntimeConfig`]: fuel
//!   metering, bounded memory and stack, deterministic floats, optional
//!   pooling allocator and on-disk code cache (module `engine`).
//! - [`Runtime::load`] compiles a module once per application id (BLAKE3 of
//!   its bytes), checks its manifest, exports and imports, and keeps it in a
//!   bounded LRU cache ([`App`]).
//! - [`Runtime::execute`] runs one method: a fresh instance, the guest ABI
//!   of [`weft_abi`] (host functions in module `host`, state operations in
//!   module `state_ops`), per-call [`Limits`], and a
//!   [`weft_state::StateTxn`] as the write overlay. The [`Outcome`] is the
//!   commit for the caller to persist; any failure is a [`RuntimeError`]
//!   and commits nothing.
//!
//! # Guarantees
//!
//! - A hostile guest cannot crash or hang the host: every pointer is
//!   bounds-checked, every length and count is bounded before the host
//!   allocates, compute is bounded by fuel (host calls cost fuel too),
//!   memory by a limiter, stack by the engine.
//! - A call commits atomically or not at all: actions, events, writes and
//!   the new root hash come back together, only when the method returned
//!   `Ok`; a view never writes.
//! - No unsafe code (the workspace forbids it). That rules out loading
//!   precompiled code ourselves (`Module::deserialize` is unsafe): the disk
//!   cache is wasmtime's own, behind its safe `Module::new`.

mod app;
mod call;
mod call_data;
mod engine;
mod error;
mod host;
mod limits;
mod manifest;
mod state_ops;

use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::{Engine, Linker};
use weft_primitives::Hash;
use weft_primitives::kv::KvRead;

pub use app::App;
pub use call::{CallResult, ExecuteRequest, Outcome};
pub use call_data::Event;
pub use engine::{
    BoundsChecks, DiskCache, FIBER_HOST_STACK_BYTES, INSTANCE_POOL_DEFAULT, MODULES_IN_MEMORY_DEFAULT, RuntimeConfig,
    TABLE_ELEMENTS_MAX,
};
pub use error::RuntimeError;
pub use limits::*;
pub use manifest::read_manifest;
pub use weft_abi::{Manifest, MethodKind};

use crate::app::AppCache;
use crate::call_data::CallData;

/// The WASM runtime of a node: one engine, its host functions, and the
/// compiled apps. `Send + Sync`: share it among threads.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallData>,
    config: RuntimeConfig,
    apps: Mutex<AppCache>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime with `config`.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = engine::build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        host::define(&mut linker).map_err(|e| RuntimeError::Config { reason: format!("{e:#}") })?;
        let apps = Mutex::new(AppCache::new(config.modules_in_memory));
        Ok(Runtime { engine, linker, config, apps })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The application `wasm`, compiled and checked (or from the cache).
    /// Its id is `Hash::of(wasm)`.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<App>, RuntimeError> {
        let id = Hash::of(wasm);
        if let Some(app) = self.apps().get(&id) {
            return Ok(app);
        }
        // Compile without holding the lock: other apps stay callable.
        let app = App::compile(&self.engine, &self.linker, &self.config.limits, id, wasm)?;
        Ok(self.apps().insert(app))
    }

    /// The cached application `id`, if it was loaded and not evicted.
    pub fn app(&self, id: &Hash) -> Option<Arc<App>> {
        self.apps().get(id)
    }

    /// How many compiled apps are in memory.
    pub fn apps_in_memory(&self) -> usize {
        self.apps().len()
    }

    /// Execute one method call of `app` (loaded by this runtime).
    pub fn execute<K: KvRead + ?Sized>(
        &self,
        app: &App,
        request: ExecuteRequest<'_, K>,
    ) -> Result<Outcome, RuntimeError> {
        if !Engine::same(app.pre().module().engine(), &self.engine) {
            return Err(RuntimeError::ForeignApp);
        }
        call::execute(&self.engine, &self.config.limits, app, request)
    }

    fn apps(&self) -> MutexGuard<'_, AppCache> {
        // The cache is consistent after any panic (each operation is one
        // map update), so a poisoned lock is still usable.
        self.apps.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
