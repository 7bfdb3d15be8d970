//! Decoded text documents kept between transactions.
//!
//! Loading a text from its rows costs O(document); keeping it decoded makes
//! an edit cost O(chunk). A transaction *takes* the document it needs out of
//! the cache and *puts* it back when it is done: under its new content hash
//! once its writes are encoded, under the same hash if it only read it. A
//! document changed by a transaction that failed is never put back.
//!
//! Entries are keyed by entity id *and* content hash, and a transaction asks
//! for the hash its store's index row names, so a cached document is used
//! only where the store holds exactly that content: the cache is a memo of
//! loading, never a source of truth. Two contexts holding the same text at
//! the same entity hold byte-identical rows, so sharing an entry between
//! them is sound. A taken document is gone from the cache until it is put
//! back, so no two transactions ever share one.
//!
//! Bounded by [`text_cache_items_max`] items (characters, tombstones
//! included) over all documents, [`TEXT_CACHE_ITEMS_MAX`] unless the
//! process set another bound ([`set_text_cache_items_max`]: the node does,
//! from its configuration); the least recently put go first.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

use weft_primitives::Hash;
use weft_text::TextDoc;

use crate::model::EntityId;

/// The most items (characters, tombstones included) the cache holds in all
/// by default: about 8 bytes each in memory, so about 64 MiB.
pub const TEXT_CACHE_ITEMS_MAX: usize = 8 << 20;

/// The bound in force (see [`set_text_cache_items_max`]).
static ITEMS_MAX: AtomicUsize = AtomicUsize::new(TEXT_CACHE_ITEMS_MAX);

/// Bound the cache to `items` items (0 keeps nothing) for the whole
/// process, evicting the least recently put documents at once if it holds
/// more. The cache is shared by everything in the process that applies
/// text (every node of it): the last bound set holds.
pub fn set_text_cache_items_max(items: usize) {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    ITEMS_MAX.store(items, Ordering::Relaxed);
    cache.evict_beyond(items);
}

/// The bound in force, in items.
pub fn text_cache_items_max() -> usize {
    ITEMS_MAX.load(Ordering::Relaxed)
}

type Key = (EntityId, Hash);

#[derive(Default)]
struct DocCache {
    docs: HashMap<Key, (u64, Box<TextDoc>)>,
    /// Put order (a counter) -> key, for eviction.
    order: BTreeMap<u64, Key>,
    items: usize,
    next: u64,
}

static CACHE: LazyLock<Mutex<DocCache>> = LazyLock::new(|| Mutex::new(DocCache::default()));

impl DocCache {
    /// Drop the least recently put documents until at most `max` items stay.
    fn evict_beyond(&mut self, max: usize) {
        while self.items > max {
            let Some((_, key)) = self.order.pop_first() else { break };
            if let Some((_, evicted)) = self.docs.remove(&key) {
                self.items -= evicted.item_count();
            }
        }
    }
}

/// Take the document of text `id` whose content hash is `hash`, if cached.
pub(crate) fn take(id: &EntityId, hash: &Hash) -> Option<Box<TextDoc>> {
    // A panic elsewhere cannot leave the maps inconsistent: each method
    // changes them only after everything that can fail.
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let (stamp, doc) = cache.docs.remove(&(*id, *hash))?;
    cache.order.remove(&stamp);
    cache.items -= doc.item_count();
    Some(doc)
}

/// Keep `doc`, the document of text `id` with content hash `hash`.
pub(crate) fn put(id: &EntityId, hash: Hash, doc: Box<TextDoc>) {
    let items = doc.item_count();
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    // Read under the lock, so a bound set meanwhile is never overrun.
    let max = text_cache_items_max();
    if items > max {
        return;
    }
    let stamp = cache.next;
    cache.next += 1;
    if let Some((old, previous)) = cache.docs.insert((*id, hash), (stamp, doc)) {
        cache.order.remove(&old);
        cache.items -= previous.item_count();
    }
    cache.order.insert(stamp, (*id, hash));
    cache.items += items;
    cache.evict_beyond(max);
}

/// Forget every cached document: the next transaction that needs a text
/// loads it from its rows (frees the memory; tests use it to read rows).
pub fn forget_cached_texts() {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    *cache = DocCache::default();
}

/// How many documents the cache holds.
pub fn cached_texts() -> usize {
    CACHE.lock().unwrap_or_else(PoisonError::into_inner).docs.len()
}

/// How many items (characters, tombstones included) the cache holds.
pub fn cached_text_items() -> usize {
    CACHE.lock().unwrap_or_else(PoisonError::into_inner).items
}
