//! Compiled applications and the in-memory cache of them.
//!
//! An [`App`] is a module compiled once and checked once: its manifest is
//! decoded, every method the manifest lists is exported as `fn()`, the guest
//! memory is exported, and every import is a host function of ABI v1 with the
//! right signature (pre-instantiation fails otherwise). Each call then only
//! instantiates the cached [`wasmtime::InstancePre`].
//!
//! [`AppCache`] keeps at most a configured number of apps, evicting the least
//! recently used; the on-disk layer below it is wasmtime's own cache (see
//! the `engine` module), keyed by the module bytes and the engine's version
//! and settings.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Engine, ExternType, InstancePre, Linker, Module};
use weft_abi::{GUEST_MEMORY, Manifest};
use weft_primitives::Hash;

use crate::call_data::CallData;
use crate::error::RuntimeError;
use crate::limits::Limits;
use crate::manifest::{initial_memory_bytes, read_manifest};

/// A compiled, checked application, ready to instantiate.
pub struct App {
    id: Hash,
    manifest: Arc<Manifest>,
    pre: InstancePre<CallData>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("id", &self.id).field("name", &self.manifest.name).finish()
    }
}

impl App {
    /// Compile and check `wasm`, whose id is `id`.
    pub(crate) fn compile(
        engine: &Engine,
        linker: &Linker<CallData>,
        limits: &Limits,
        id: Hash,
        wasm: &[u8],
    ) -> Result<App, RuntimeError> {
        // The manifest first: it is cheap and the clearest rejection.
        let manifest = read_manifest(wasm)?;
        // A memory that starts over the limit could never be instantiated.
        if let Some(initial) = initial_memory_bytes(wasm)?
            && initial > limits.memory_bytes as u64
        {
            return Err(RuntimeError::MemoryLimit { requested: initial, limit: limits.memory_bytes as u64 });
        }
        let module = Module::new(engine, wasm).map_err(|e| RuntimeError::Compile { reason: format!("{e:#}") })?;
        match module.get_export(GUEST_MEMORY) {
            Some(ExternType::Memory(_)) => {}
            _ => return Err(RuntimeError::MissingMemory),
        }
        for method in &manifest.methods {
            let exported = match module.get_export(&method.name) {
                Some(ExternType::Func(ty)) => ty.params().len() == 0 && ty.results().len() == 0,
                _ => false,
            };
            if !exported {
                return Err(RuntimeError::MissingExport { method: method.name.clone() });
            }
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| RuntimeError::Link { reason: format!("{e:#}") })?;
        Ok(App { id, manifest: Arc::new(manifest), pre })
    }

    /// The application id: BLAKE3 of the module bytes.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The app's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub(crate) fn shared_manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.manifest)
    }

    pub(crate) fn pre(&self) -> &InstancePre<CallData> {
        &self.pre
    }
}

/// Compiled apps by id, at most `capacity` of them, least recently used
/// evicted first.
pub(crate) struct AppCache {
    capacity: usize,
    clock: u64,
    apps: HashMap<Hash, (Arc<App>, u64)>,
}

impl AppCache {
    pub(crate) fn new(capacity: usize) -> AppCache {
        AppCache { capacity, clock: 0, apps: HashMap::new() }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The app `id`, marking it used.
    pub(crate) fn get(&mut self, id: &Hash) -> Option<Arc<App>> {
        let now = self.tick();
        let (app, used) = self.apps.get_mut(id)?;
        *used = now;
        Some(Arc::clone(app))
    }

    /// Keep `app` (or the copy another thread cached first), evicting the
    /// least recently used app when full. Returns the cached copy.
    pub(crate) fn insert(&mut self, app: App) -> Arc<App> {
        if let Some(existing) = self.get(&app.id) {
            return existing;
        }
        if self.capacity == 0 {
            return Arc::new(app);
        }
        while self.apps.len() >= self.capacity {
            // Linear in the capacity, which is small: compiling is far dearer.
            let Some(oldest) = self.apps.iter().min_by_key(|(_, (_, used))| *used).map(|(id, _)| *id) else { break };
            self.apps.remove(&oldest);
        }
        let now = self.tick();
        let app = Arc::new(app);
        self.apps.insert(app.id, (Arc::clone(&app), now));
        app
    }

    pub(crate) fn len(&self) -> usize {
        self.apps.len()
    }
}
