//! The write overlay: decoded rows read through [`KvRead`], changed in memory,
//! encoded into one [`WriteSet`] at the end.
//!
//! Guarantees: nothing reaches storage except through [`Overlay::into_writes`];
//! reads see the overlay first, then the store; a dropped overlay leaves no
//! trace (there is no cache that outlives it).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use weft_primitives::encoding;
use weft_primitives::kv::{KvPair, KvRead, WriteSet};

use crate::error::StateError;
use crate::model::{CrdtKind, EntityId, root_id};
use crate::rows::{self, CounterEntry, Index, Node, RegisterEntry, Slot};
use crate::text::TextEntry;

/// Rows fetched per store scan while listing a collection.
pub(crate) const SCAN_PAGE_ROWS: usize = 256;

/// Initial room in the node cache: a single-insert transaction into a
/// million-entry map touches about 30 nodes.
const NODES_CAPACITY_HINT: usize = 64;

/// An entity's own bytes, decoded.
pub(crate) enum Entry {
    /// A register's winning write.
    Register(RegisterEntry),
    /// A counter's per-author totals.
    Counter(CounterEntry),
    /// A text document.
    Text(TextEntry),
    /// Collections keep nothing in their entry.
    Nothing,
}

struct CachedIndex {
    index: Index,
    dirty: bool,
}

struct CachedEntry {
    entry: Entry,
    dirty: bool,
}

/// A decoded node; `stale` means its `hash` must be recomputed before use.
pub(crate) struct CachedNode {
    pub(crate) node: Node,
    dirty: bool,
    pub(crate) stale: bool,
}

/// Decoded rows over a store, with pending changes.
pub(crate) struct Overlay<'k, K: KvRead + ?Sized> {
    kv: &'k K,
    indexes: HashMap<EntityId, CachedIndex>,
    entries: HashMap<EntityId, CachedEntry>,
    /// Decoded treap nodes by row key.
    nodes: HashMap<Vec<u8>, CachedNode>,
    /// Row keys of the nodes created here (absent from the store), in
    /// order, so listings can merge them into a store scan.
    created_rows: BTreeSet<Vec<u8>>,
    /// Reused buffer for building row keys on lookups.
    scratch: Vec<u8>,
    /// Entities whose hashes must be recomputed, deepest first.
    changed: BTreeSet<(Reverse<u32>, EntityId)>,
}

impl<'k, K: KvRead + ?Sized> Overlay<'k, K> {
    pub(crate) fn new(kv: &'k K) -> Overlay<'k, K> {
        Overlay {
            kv,
            indexes: HashMap::new(),
            entries: HashMap::new(),
            nodes: HashMap::with_capacity(NODES_CAPACITY_HINT),
            created_rows: BTreeSet::new(),
            scratch: Vec::new(),
            changed: BTreeSet::new(),
        }
    }

    fn load_index(&mut self, id: &EntityId) -> Result<Option<&mut CachedIndex>, StateError> {
        if !self.indexes.contains_key(id) {
            let key = rows::index_key(id);
            let index = match self.kv.get(&key)? {
                Some(bytes) => {
                    encoding::decode::<Index>(&bytes).map_err(|e| StateError::corrupt(format!("index {id:?}"), e))?
                }
                None if *id == root_id() => Index::empty_root(),
                None => return Ok(None),
            };
            self.indexes.insert(*id, CachedIndex { index, dirty: false });
        }
        Ok(self.indexes.get_mut(id))
    }

    /// The store under the overlay.
    #[cfg_attr(not(feature = "slow-reference"), allow(dead_code))]
    pub(crate) fn kv(&self) -> &'k K {
        self.kv
    }

    /// The index of `id`, if the entity exists (the root always does).
    pub(crate) fn index(&mut self, id: &EntityId) -> Result<Option<&Index>, StateError> {
        Ok(self.load_index(id)?.map(|c| &c.index))
    }

    /// The index of `id` for changing; marks it for writing.
    pub(crate) fn index_mut(&mut self, id: &EntityId) -> Result<&mut Index, StateError> {
        match self.load_index(id)? {
            Some(cached) => {
                cached.dirty = true;
                Ok(&mut cached.index)
            }
            None => Err(StateError::UnknownTarget(*id)),
        }
    }

    /// Add a new entity.
    pub(crate) fn insert_index(&mut self, index: Index) {
        self.indexes.insert(index.id, CachedIndex { index, dirty: true });
    }

    /// The entry of `id` (of kind `kind`) for reading or changing.
    fn load_entry(&mut self, id: &EntityId, kind: CrdtKind) -> Result<&mut CachedEntry, StateError> {
        if !self.entries.contains_key(id) {
            let bytes = self.kv.get(&rows::entry_key(id))?;
            let what = || format!("entry {id:?}");
            let entry = match (kind, bytes) {
                (CrdtKind::LwwRegister, Some(b)) => {
                    Entry::Register(encoding::decode(&b).map_err(|e| StateError::corrupt(what(), e))?)
                }
                (CrdtKind::LwwRegister, None) => Entry::Register(None),
                (CrdtKind::GCounter | CrdtKind::PnCounter, Some(b)) => {
                    Entry::Counter(encoding::decode(&b).map_err(|e| StateError::corrupt(what(), e))?)
                }
                (CrdtKind::GCounter | CrdtKind::PnCounter, None) => Entry::Counter(CounterEntry::new()),
                (CrdtKind::Text, Some(b)) => {
                    Entry::Text(TextEntry::decode(&b).map_err(|e| StateError::corrupt(what(), e))?)
                }
                (CrdtKind::Text, None) => Entry::Text(TextEntry::new()),
                (CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector, _) => Entry::Nothing,
            };
            self.entries.insert(*id, CachedEntry { entry, dirty: false });
        }
        self.entries.get_mut(id).ok_or_else(|| StateError::corrupt(format!("entry {id:?}"), "cache miss"))
    }

    /// The entry of `id` for reading.
    pub(crate) fn entry(&mut self, id: &EntityId, kind: CrdtKind) -> Result<&Entry, StateError> {
        Ok(&self.load_entry(id, kind)?.entry)
    }

    /// The entry of `id` for changing; marks it for writing.
    pub(crate) fn entry_mut(&mut self, id: &EntityId, kind: CrdtKind) -> Result<&mut Entry, StateError> {
        let cached = self.load_entry(id, kind)?;
        cached.dirty = true;
        Ok(&mut cached.entry)
    }

    /// True when `id`'s entry was changed in this overlay.
    pub(crate) fn entry_is_dirty(&self, id: &EntityId) -> bool {
        self.entries.get(id).is_some_and(|c| c.dirty)
    }

    fn load_node(&mut self, entity: &EntityId, key: &[u8]) -> Result<Option<&mut CachedNode>, StateError> {
        let mut row = std::mem::take(&mut self.scratch);
        rows::write_node_key(&mut row, entity, key);
        if !self.nodes.contains_key(row.as_slice()) {
            let Some(bytes) = self.kv.get(&row)? else {
                self.scratch = row;
                return Ok(None);
            };
            let node = decode_node(entity, &bytes)?;
            self.nodes.insert(row.clone(), CachedNode { node, dirty: false, stale: false });
        }
        let found = self.nodes.get_mut(row.as_slice());
        self.scratch = row;
        Ok(found)
    }

    /// The node for child `key` of `entity`, if the child exists.
    pub(crate) fn node(&mut self, entity: &EntityId, key: &[u8]) -> Result<Option<&Node>, StateError> {
        Ok(self.load_node(entity, key)?.map(|c| &c.node))
    }

    /// A node the tree links to (so it must exist), for reading.
    pub(crate) fn linked(&mut self, entity: &EntityId, key: &[u8]) -> Result<&Node, StateError> {
        match self.load_node(entity, key)? {
            Some(cached) => Ok(&cached.node),
            None => Err(dangling(entity)),
        }
    }

    /// A node the tree links to, for changing: marks it for writing and rehashing.
    pub(crate) fn linked_mut(&mut self, entity: &EntityId, key: &[u8]) -> Result<&mut Node, StateError> {
        match self.load_node(entity, key)? {
            Some(cached) => {
                cached.dirty = true;
                cached.stale = true;
                Ok(&mut cached.node)
            }
            None => Err(dangling(entity)),
        }
    }

    /// The node for `key` if it is loaded and stale (changed and not
    /// rehashed since); never reads the store.
    pub(crate) fn stale_node(&mut self, entity: &EntityId, key: &[u8]) -> Option<&mut CachedNode> {
        let mut row = std::mem::take(&mut self.scratch);
        rows::write_node_key(&mut row, entity, key);
        let found = self.nodes.get_mut(row.as_slice()).filter(|c| c.stale);
        self.scratch = row;
        found
    }

    /// Add a new node.
    pub(crate) fn insert_node(&mut self, entity: &EntityId, key: &[u8], node: Node) {
        let row = rows::node_key(entity, key);
        self.created_rows.insert(row.clone());
        self.nodes.insert(row, CachedNode { node, dirty: true, stale: true });
    }

    /// Queue `id` (at `depth`) for rehashing.
    pub(crate) fn mark_changed(&mut self, id: EntityId, depth: u32) {
        self.changed.insert((Reverse(depth), id));
    }

    /// The deepest entity queued for rehashing.
    pub(crate) fn pop_changed(&mut self) -> Option<EntityId> {
        self.changed.pop_first().map(|(_, id)| id)
    }

    /// Visit the children of `entity` after `after` in key order, merged
    /// from the overlay and the store, until `visit` returns false or
    /// `rows_max` rows were visited. Returns true when it stopped early (more
    /// rows may follow), false when it reached the end.
    pub(crate) fn scan_children(
        &self,
        entity: &EntityId,
        after: Option<&[u8]>,
        rows_max: usize,
        mut visit: impl FnMut(&[u8], &Slot) -> bool,
    ) -> Result<bool, StateError> {
        let prefix = rows::node_prefix(entity);
        let mut cursor: Option<Vec<u8>> = after.map(|a| rows::node_key(entity, a));
        let mut visited = 0usize;
        // Each round reads one page from the store and advances the cursor
        // past it, so the loop ends within rows_max / SCAN_PAGE_ROWS + 1
        // rounds, or when the store runs out.
        loop {
            let page_rows = SCAN_PAGE_ROWS.min(rows_max.saturating_sub(visited)).max(1);
            let stored: Vec<KvPair> = self.kv.scan(&prefix, cursor.as_deref(), page_rows)?;
            let store_done = stored.len() < page_rows;
            // Overlay rows up to the last stored row (or all, if the store is done).
            let upper = if store_done { None } else { stored.last().map(|(k, _)| k.clone()) };
            let lower = match &cursor {
                Some(c) => Bound::Excluded(c.as_slice()),
                None => Bound::Included(prefix.as_slice()),
            };
            let high = match &upper {
                Some(u) => Bound::Included(u.as_slice()),
                None => Bound::Unbounded,
            };
            let mut pending = self
                .created_rows
                .range::<[u8], _>((lower, high))
                .take_while(|k| k.starts_with(&prefix))
                .filter_map(|k| self.nodes.get(k).map(|c| (k.as_slice(), &c.node.slot)))
                .peekable();
            let mut stored_iter = stored.into_iter().peekable();
            loop {
                let take_pending = match (pending.peek(), stored_iter.peek()) {
                    (None, None) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some((pk, _)), Some((sk, _))) => *pk <= sk.as_slice(),
                };
                let keep_going = if take_pending {
                    let Some((row, slot)) = pending.next() else { break };
                    cursor = Some(row.to_vec());
                    visit(&row[rows::NODE_PREFIX_LEN..], slot)
                } else {
                    let Some((row, bytes)) = stored_iter.next() else { break };
                    // A row changed in this overlay shadows the stored one.
                    let keep_going = match self.nodes.get(&row) {
                        Some(cached) => visit(&row[rows::NODE_PREFIX_LEN..], &cached.node.slot),
                        None => visit(&row[rows::NODE_PREFIX_LEN..], &decode_node(entity, &bytes)?.slot),
                    };
                    cursor = Some(row);
                    keep_going
                };
                visited += 1;
                if !keep_going || visited >= rows_max {
                    return Ok(true);
                }
            }
            if store_done {
                return Ok(false);
            }
        }
    }

    /// Encode every changed row.
    pub(crate) fn into_writes(self) -> WriteSet {
        let mut writes = WriteSet::new();
        for (id, cached) in self.indexes {
            if cached.dirty {
                writes.put(rows::index_key(&id), encoding::encode(&cached.index));
            }
        }
        for (id, cached) in self.entries {
            if cached.dirty {
                let bytes = match &cached.entry {
                    Entry::Register(r) => encoding::encode(r),
                    Entry::Counter(c) => encoding::encode(c),
                    Entry::Text(t) => t.encode(),
                    Entry::Nothing => continue,
                };
                writes.put(rows::entry_key(&id), bytes);
            }
        }
        for (row, cached) in self.nodes {
            if cached.dirty {
                writes.put(row, encoding::encode(&cached.node));
            }
        }
        writes
    }
}

fn decode_node(entity: &EntityId, bytes: &[u8]) -> Result<Node, StateError> {
    encoding::decode::<Node>(bytes).map_err(|e| StateError::corrupt(format!("treap node of {entity:?}"), e))
}

fn dangling(entity: &EntityId) -> StateError {
    StateError::corrupt(format!("treap of {entity:?}"), "link to a missing node")
}
