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
//! Bounded by [`TEXT_CACHE_ITEMS_MAX`] items (characters, tombstones
//! included) over all documents; the least recently put go first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex, PoisonError};

use weft_primitives::Hash;
use weft_text::TextDoc;

use crate::model::EntityId;

/// The most items (characters, tombstones included) the cache holds in all:
/// about 8 bytes each in memory, so about 64 MiB.
pub const TEXT_CACHE_ITEMS_MAX: usize = 8 << 20;

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
    if items > TEXT_CACHE_ITEMS_MAX {
        return;
    }
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let stamp = cache.next;
    cache.next += 1;
    if let Some((old, previous)) = cache.docs.insert((*id, hash), (stamp, doc)) {
        cache.order.remove(&old);
        cache.items -= previous.item_count();
    }
    cache.order.insert(stamp, (*id, hash));
    cache.items += items;
    while cache.items > TEXT_CACHE_ITEMS_MAX {
        let Some((_, key)) = cache.order.pop_first() else { break };
        if let Some((_, evicted)) = cache.docs.remove(&key) {
            cache.items -= evicted.item_count();
        }
    }
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
