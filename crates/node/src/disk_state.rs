//! [`DiskStateKv`]: a context's persisted state read straight from the
//! store, through a node-wide bounded [`StateCache`], instead of a copy of
//! the whole state in memory.
//!
//! Guarantees:
//! - A read sees exactly the store's last commit (deferred or durable, see
//!   [`weft_store::Store::defer_durability`]): the replica reads the
//!   persisted state and nothing else.
//! - Memory is bounded by the cache's byte budget, whatever the size of the
//!   states or the number of contexts.
//! - The cache is never stale. Only a context's `DiskReplicaStore` writes
//!   its state rows, and it hands every committed write set to
//!   [`DiskStateKv::committed`] after the commit succeeded (a failed commit
//!   leaves the cache as it was). Every opening of a context reads under a
//!   fresh generation, so rows cached before a context was closed, left or
//!   reloaded after a store reopening are never read again (they age out).
//! - Scans are not cached: they read a fresh snapshot.
//! - Writes staged for a turn's one transaction (see
//!   [`crate::replica_store`]) are read before the store: the replica sees
//!   its own staged commits, and the cache only learns them once they
//!   landed. So are the writes of the previous turn while its transaction
//!   lands on another thread (the "landing" layer, under the staged one):
//!   a turn may stage on top of one that is not durable yet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hashlink::LruCache;
use weft_primitives::Hash;
use weft_primitives::kv::{KvError, KvPair, KvRead, WriteSet};
use weft_store::Store;

/// Bytes of state rows a node caches by default (keys and values).
pub const STATE_CACHE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// What one cached row costs beyond its bytes (the map's entry, the
/// vectors' headers): so a flood of tiny rows is bounded too.
const ROW_OVERHEAD_BYTES: usize = 64;

/// State rows recently read or written, for every context of a node,
/// least recently used first out. Cloning shares it.
#[derive(Clone)]
pub struct StateCache {
    inner: Arc<Mutex<CacheInner>>,
    generations: Arc<AtomicU64>,
}

struct CacheInner {
    /// (generation ‖ state key) → the row, or `None` if it is absent.
    rows: LruCache<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    bytes_max: usize,
}

impl StateCache {
    /// A cache of at most `bytes_max` bytes (0 caches nothing).
    pub fn new(bytes_max: usize) -> StateCache {
        StateCache {
            inner: Arc::new(Mutex::new(CacheInner { rows: LruCache::new_unbounded(), bytes: 0, bytes_max })),
            generations: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Bytes held now (keys, values and per-row overhead).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("StateCache").field("bytes", &inner.bytes).field("bytes_max", &inner.bytes_max).finish()
    }
}

fn cost(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + ROW_OVERHEAD_BYTES
}

impl CacheInner {
    fn get(&mut self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.rows.get(key).cloned()
    }

    fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let added = cost(&key, &value);
        if let Some(old) = self.rows.remove(&key) {
            self.bytes -= cost(&key, &old);
        }
        if added > self.bytes_max {
            return;
        }
        self.bytes += added;
        self.rows.insert(key, value);
        while self.bytes > self.bytes_max {
            let Some((key, value)) = self.rows.remove_lru() else { break };
            self.bytes -= cost(&key, &value);
        }
    }
}

/// See the module doc.
pub struct DiskStateKv {
    store: Arc<Store>,
    context: Hash,
    cache: StateCache,
    generation: [u8; 8],
    /// Writes of commits staged for the turn's transaction, not yet in the
    /// store (latest write per key).
    staged: WriteSet,
    /// Writes of the previous turn, sealed and landing: read under
    /// `staged`, over the store, until they landed or were dropped.
    landing: Arc<WriteSet>,
}

impl std::fmt::Debug for DiskStateKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStateKv").field("context", &self.context).finish_non_exhaustive()
    }
}

impl DiskStateKv {
    /// The state of `context` in `store`, cached in `cache` under a fresh
    /// generation.
    pub fn new(store: Arc<Store>, context: Hash, cache: StateCache) -> DiskStateKv {
        let generation = cache.generations.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        DiskStateKv { store, context, cache, generation, staged: WriteSet::new(), landing: Arc::default() }
    }

    fn cache_key(&self, key: &[u8]) -> Vec<u8> {
        let mut cached = Vec::with_capacity(8 + key.len());
        cached.extend_from_slice(&self.generation);
        cached.extend_from_slice(key);
        cached
    }

    /// Note the writes of a commit that succeeded (write-through).
    pub fn committed(&self, writes: &WriteSet) {
        let mut inner = self.cache.lock();
        if inner.bytes_max == 0 {
            return;
        }
        for (key, value) in writes.iter() {
            inner.put(self.cache_key(key), value.map(<[u8]>::to_vec));
        }
    }

    /// Read `writes` before the store until they land or are dropped.
    pub fn stage(&mut self, writes: WriteSet) {
        self.staged.extend(writes);
    }

    /// Seal the staged writes for a transaction that lands on another
    /// thread: they are read (under the next turn's staged writes) until
    /// [`DiskStateKv::sealed_landed`] or [`DiskStateKv::drop_staged`].
    /// The writes sealed before must have landed or been dropped.
    pub fn seal(&mut self) -> Arc<WriteSet> {
        debug_assert!(self.landing.is_empty(), "a turn sealed while the previous one is landing");
        self.landing = Arc::new(std::mem::take(&mut self.staged));
        Arc::clone(&self.landing)
    }

    /// The sealed writes are in the store now: hand them to the cache.
    pub fn sealed_landed(&mut self) {
        let landing = std::mem::take(&mut self.landing);
        self.committed(&landing);
    }

    /// The staged writes, and the sealed ones still landing, will never
    /// land (their transaction failed: what was staged on top of it goes
    /// with it).
    pub fn drop_staged(&mut self) {
        self.staged = WriteSet::new();
        self.landing = Arc::default();
    }

    fn view(&self) -> Result<weft_store::ReadStateView, KvError> {
        self.store
            .read()
            .and_then(|read| read.state_view(self.context))
            .map_err(|error| KvError::Backend(error.to_string()))
    }
}

/// The rows the store holds, through the cache: what a [`DiskStateKv`]
/// reads under its staged writes.
struct StoredRows<'a>(&'a DiskStateKv);

impl KvRead for DiskStateKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self.staged.pending(key).or_else(|| self.landing.pending(key)) {
            Some(value) => Ok(value.map(<[u8]>::to_vec)),
            None => StoredRows(self).get(key),
        }
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError> {
        let stored = StoredRows(self);
        match (self.landing.is_empty(), self.staged.is_empty()) {
            (true, true) => stored.scan(prefix, after, limit),
            (true, false) => weft_state::LayeredKv::new(&stored, &self.staged).scan(prefix, after, limit),
            (false, true) => weft_state::LayeredKv::new(&stored, &self.landing).scan(prefix, after, limit),
            (false, false) => {
                let landing = weft_state::LayeredKv::new(&stored, &self.landing);
                weft_state::LayeredKv::new(&landing, &self.staged).scan(prefix, after, limit)
            }
        }
    }
}

impl KvRead for StoredRows<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let StoredRows(kv) = self;
        let cached = kv.cache_key(key);
        if let Some(value) = kv.cache.lock().get(&cached) {
            return Ok(value);
        }
        let value = kv.view()?.get(key)?;
        kv.cache.lock().put(cached, value.clone());
        Ok(value)
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError> {
        self.0.view()?.scan(prefix, after, limit)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weft_store::STATE;

    use super::*;

    fn put_row(store: &Store, context: Hash, key: &[u8], value: &[u8]) {
        let mut writes = WriteSet::new();
        writes.put(key.to_vec(), value.to_vec());
        store.write(|txn| txn.apply_state_writes(context, &writes)).unwrap();
    }

    #[test]
    fn reads_see_the_store_and_writes_through_the_cache() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let context = Hash::of(b"c");
        put_row(&store, context, b"a", b"1");
        let cache = StateCache::new(1 << 20);
        let kv = DiskStateKv::new(store.clone(), context, cache.clone());
        assert_eq!(kv.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get(b"b").unwrap(), None);
        // A commit through the replica store: the store, then the cache.
        let mut writes = WriteSet::new();
        writes.put(b"b".to_vec(), b"2".to_vec());
        writes.delete(b"a".to_vec());
        store.write(|txn| txn.apply_state_writes(context, &writes)).unwrap();
        kv.committed(&writes);
        assert_eq!(kv.get(b"a").unwrap(), None);
        assert_eq!(kv.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(kv.scan(b"", None, 10).unwrap(), vec![(b"b".to_vec(), b"2".to_vec())]);
        // Another context's rows are invisible.
        put_row(&store, Hash::of(b"other"), b"c", b"3");
        assert_eq!(kv.get(b"c").unwrap(), None);
        assert!(store.read().unwrap().len(STATE).unwrap() >= 2);
    }

    #[test]
    fn staged_writes_are_read_first_and_cached_only_once_landed() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let context = Hash::of(b"c");
        put_row(&store, context, b"a", b"1");
        put_row(&store, context, b"c", b"3");
        let cache = StateCache::new(1 << 20);
        let mut kv = DiskStateKv::new(store.clone(), context, cache.clone());
        assert_eq!(kv.get(b"a").unwrap(), Some(b"1".to_vec()));
        let mut writes = WriteSet::new();
        writes.put(b"b".to_vec(), b"2".to_vec());
        writes.delete(b"a".to_vec());
        kv.stage(writes);
        // Staged: read first, by get and by scan, though the store lacks them.
        assert_eq!(kv.get(b"a").unwrap(), None);
        assert_eq!(kv.get(b"b").unwrap(), Some(b"2".to_vec()));
        let rows = |kv: &DiskStateKv| kv.scan(b"", None, 10).unwrap();
        assert_eq!(rows(&kv), vec![(b"b".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        assert_eq!(store.read().unwrap().state_view(context).unwrap().get(b"b").unwrap(), None);
        // Dropped: the store's rows again, and the cache never saw them.
        kv.drop_staged();
        assert_eq!(kv.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get(b"b").unwrap(), None);
        // Landed: written by the turn's transaction, then handed to the cache.
        let mut writes = WriteSet::new();
        writes.put(b"b".to_vec(), b"2".to_vec());
        kv.stage(writes.clone());
        let sealed = kv.seal();
        store.write(|txn| txn.apply_state_writes(context, &sealed)).unwrap();
        kv.sealed_landed();
        assert_eq!(kv.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(rows(&kv).len(), 3);
    }

    #[test]
    fn a_sealed_turn_is_read_under_the_next_one_until_it_lands_or_is_dropped() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let context = Hash::of(b"c");
        put_row(&store, context, b"a", b"1");
        put_row(&store, context, b"c", b"3");
        let mut kv = DiskStateKv::new(store.clone(), context, StateCache::new(1 << 20));
        let writes = |pairs: &[(&[u8], &[u8])]| {
            let mut set = WriteSet::new();
            for (key, value) in pairs {
                set.put(key.to_vec(), value.to_vec());
            }
            set
        };
        let row = |key: &[u8], value: &[u8]| (key.to_vec(), value.to_vec());
        kv.stage(writes(&[(b"a", b"2"), (b"b", b"2")]));
        let sealed = kv.seal();
        // The next turn stages on top while the sealed one lands.
        kv.stage(writes(&[(b"b", b"3"), (b"d", b"4")]));
        assert_eq!(kv.get(b"a").unwrap(), Some(b"2".to_vec()), "the landing layer");
        assert_eq!(kv.get(b"b").unwrap(), Some(b"3".to_vec()), "the staged layer over the landing one");
        assert_eq!(kv.get(b"c").unwrap(), Some(b"3".to_vec()), "the store under both");
        let expected = vec![row(b"a", b"2"), row(b"b", b"3"), row(b"c", b"3"), row(b"d", b"4")];
        assert_eq!(kv.scan(b"", None, 10).unwrap(), expected);
        // Landed: the store has it, the staged layer still reads first.
        store.write(|txn| txn.apply_state_writes(context, &sealed)).unwrap();
        kv.sealed_landed();
        assert_eq!(kv.scan(b"", None, 10).unwrap(), expected);
        // The next turn seals in its turn; its landing fails: the turn
        // staged on top of it goes too, and the store's rows show again.
        let _second = kv.seal();
        kv.stage(writes(&[(b"e", b"5")]));
        kv.drop_staged();
        let stored = vec![row(b"a", b"2"), row(b"b", b"2"), row(b"c", b"3")];
        assert_eq!(kv.scan(b"", None, 10).unwrap(), stored);
        assert_eq!(kv.get(b"d").unwrap(), None);
        assert_eq!(kv.get(b"e").unwrap(), None);
    }

    #[test]
    fn a_reopened_context_never_reads_rows_cached_before() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let context = Hash::of(b"c");
        put_row(&store, context, b"k", b"old");
        let cache = StateCache::new(1 << 20);
        let first = DiskStateKv::new(store.clone(), context, cache.clone());
        assert_eq!(first.get(b"k").unwrap(), Some(b"old".to_vec()));
        // Changed behind the first opening's back (left and joined again,
        // or reloaded after the store reopened).
        put_row(&store, context, b"k", b"new");
        let second = DiskStateKv::new(store, context, cache);
        assert_eq!(second.get(b"k").unwrap(), Some(b"new".to_vec()));
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let context = Hash::of(b"c");
        let budget = 10 * 1024;
        let cache = StateCache::new(budget);
        let kv = DiskStateKv::new(store, context, cache.clone());
        for n in 0u32..1000 {
            let mut writes = WriteSet::new();
            writes.put(n.to_be_bytes().to_vec(), vec![7; 100]);
            kv.committed(&writes);
            assert!(cache.bytes() <= budget, "{} bytes cached", cache.bytes());
        }
        assert!(cache.bytes() > budget / 2);
        // A row larger than the whole budget is not cached at all.
        let mut writes = WriteSet::new();
        writes.put(b"huge".to_vec(), vec![0; 2 * budget]);
        kv.committed(&writes);
        assert!(cache.bytes() <= budget);
    }
}
