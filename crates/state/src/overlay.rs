//! The write overlay: decoded rows read through [`KvRead`], changed in memory,
//! encoded into one [`WriteSet`] at the end.
//!
//! Guarantees: nothing reaches storage except through [`Overlay::into_writes`];
//! reads see the overlay first, then the store; a dropped overlay leaves no
//! trace but the text documents whose content it did not change, handed back
//! to the text cache (a memo keyed by content hash: see `text_cache`). Each row is fetched and
//! decoded at most once per overlay, and encoded at most once.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash as StdHash;
use std::ops::Bound;

use borsh::BorshSerialize;
use weft_primitives::kv::{KvPair, KvRead, WriteSet};
use weft_primitives::{Hash, encoding};

use crate::error::StateError;
use crate::model::{CrdtKind, EntityId, Stamp, root_id};
use crate::node::TreeNode;
use crate::rows::{self, CounterEntry, Index, RegisterEntry, Slot};
use crate::text::TextEntry;

/// Rows fetched per store scan while listing a collection.
pub(crate) const SCAN_PAGE_ROWS: usize = 256;

/// Walk buffers kept for reuse: a walk holds two (node row, lower bound),
/// a rehash one per level.
const BUFFERS_KEPT_MAX: usize = 24;

/// A row cache. Keys come from peers, so the hash is randomly seeded.
type RowMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

fn row_map<K: Eq + StdHash, V>(capacity: usize) -> RowMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
}

/// Cached rows by row key. A lookup returns a plain index into `items`, so
/// a cached row costs one hash lookup (a map of references would cost two).
struct RowArena<T> {
    ids: RowMap<Vec<u8>, usize>,
    /// `None` only while being drained into writes.
    items: Vec<Option<T>>,
}

impl<T> RowArena<T> {
    fn with_capacity(capacity: usize) -> RowArena<T> {
        RowArena { ids: row_map(capacity), items: Vec::with_capacity(capacity) }
    }

    fn id(&self, row: &[u8]) -> Option<usize> {
        self.ids.get(row).copied()
    }

    fn get(&self, row: &[u8]) -> Option<&T> {
        self.id(row).and_then(|id| self.items.get(id)).and_then(Option::as_ref)
    }

    fn at_mut(&mut self, id: usize) -> Option<&mut T> {
        self.items.get_mut(id).and_then(Option::as_mut)
    }

    /// Add the row (absent) and return its id.
    fn push(&mut self, row: Vec<u8>, item: T) -> usize {
        let id = self.items.len();
        self.items.push(Some(item));
        self.ids.insert(row, id);
        id
    }

    /// The rows with their items, in no particular order.
    fn into_rows(self) -> impl Iterator<Item = (Vec<u8>, T)> {
        let mut items = self.items;
        self.ids
            .into_iter()
            .filter_map(move |(row, id)| items.get_mut(id).and_then(Option::take).map(|item| (row, item)))
    }
}

/// Initial room in the node and slot caches: a single insert into a
/// million-entry map touches about 7 tree nodes and 2 slots. (Kept small:
/// allocations above a kilobyte are slow paths in common allocators.)
const NODES_CAPACITY_HINT: usize = 7;
const SLOTS_CAPACITY_HINT: usize = 3;

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

/// An index row; its top tree node lives in the node cache meanwhile.
struct CachedIndex {
    /// `tree` is `None` here; see `root_level`.
    index: Index,
    /// The level of the top tree node, if the entity has children.
    root_level: Option<u8>,
    /// The stored own hash's inputs that can change (`created`, `updated`,
    /// entry hash), as read; `None` for a new entity.
    own_basis: Option<OwnBasis>,
    dirty: bool,
}

/// What an entity's own hash depends on besides its fixed kind and storage.
type OwnBasis = (Stamp, Stamp, Hash);

fn own_basis(index: &Index) -> OwnBasis {
    (index.created, index.updated, index.entry_hash)
}

struct CachedEntry {
    entry: Entry,
    dirty: bool,
}

struct CachedSlot {
    slot: Slot,
    dirty: bool,
}

/// A tree node, or the absence of one that this overlay deleted.
struct CachedNode {
    node: Option<TreeNode>,
    dirty: bool,
    /// A row holds it in the store (so deleting it must write a delete).
    stored: bool,
}

/// Decoded rows over a store, with pending changes.
pub(crate) struct Overlay<'k, K: KvRead + ?Sized> {
    kv: &'k K,
    /// Boxed: an index is a few hundred bytes, and a table of them would
    /// be a large allocation.
    indexes: RowMap<EntityId, Box<CachedIndex>>,
    entries: Entries,
    /// Decoded child slots by row key.
    slots: RowArena<CachedSlot>,
    /// Row keys of the slots created here (absent from the store), in
    /// order, so listings can merge them into a store scan.
    created_slots: BTreeSet<Vec<u8>>,
    /// Decoded tree nodes by row key (top nodes too, under the row key they
    /// would have).
    nodes: RowArena<CachedNode>,
    /// Reused buffer for building row keys on lookups.
    scratch: Vec<u8>,
    /// Reused buffers for tree walks (see [`Overlay::take_buffer`]).
    buffers: Vec<Vec<u8>>,
    /// Entities whose hashes must be recomputed, deepest first.
    changed: BTreeSet<(Reverse<u32>, EntityId)>,
}

impl<'k, K: KvRead + ?Sized> Overlay<'k, K> {
    pub(crate) fn new(kv: &'k K) -> Overlay<'k, K> {
        Overlay {
            kv,
            indexes: row_map(0),
            entries: Entries(row_map(0)),
            slots: RowArena::with_capacity(SLOTS_CAPACITY_HINT),
            created_slots: BTreeSet::new(),
            nodes: RowArena::with_capacity(NODES_CAPACITY_HINT),
            scratch: Vec::new(),
            buffers: Vec::new(),
            changed: BTreeSet::new(),
        }
    }

    fn load_index(&mut self, id: &EntityId) -> Result<Option<&mut CachedIndex>, StateError> {
        // Ids are `Copy`: one hash lookup whether cached or not.
        match self.indexes.entry(*id) {
            MapEntry::Occupied(cached) => Ok(Some(&mut **cached.into_mut())),
            MapEntry::Vacant(vacant) => {
                let Some(mut index) = read_index(self.kv, id)? else { return Ok(None) };
                let root_level = index.tree.as_ref().map(TreeNode::level);
                if let Some(top) = index.tree.take() {
                    let row = rows::tree_node_key(id, top.level(), None);
                    self.nodes.push(row, CachedNode { node: Some(top), dirty: false, stored: false });
                }
                let own_basis = Some(own_basis(&index));
                let cached = CachedIndex { index, root_level, own_basis, dirty: false };
                Ok(Some(&mut **vacant.insert(Box::new(cached))))
            }
        }
    }

    /// Whether `id`'s own hash must be recomputed: it is new, or its stamps
    /// or entry hash changed since it was read.
    pub(crate) fn own_hash_stale(&self, id: &EntityId) -> bool {
        self.indexes.get(id).is_none_or(|c| c.own_basis.is_none_or(|basis| basis != own_basis(&c.index)))
    }

    /// The store under the overlay.
    #[cfg_attr(not(feature = "slow-reference"), allow(dead_code))]
    pub(crate) fn kv(&self) -> &'k K {
        self.kv
    }

    /// The index of `id`, if the entity exists (the root always does). Its
    /// `tree` is `None`: the tree is reached through [`Overlay::root_level`].
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

    /// Add a new entity (without children).
    pub(crate) fn insert_index(&mut self, index: Index) {
        self.indexes.insert(index.id, Box::new(CachedIndex { index, root_level: None, own_basis: None, dirty: true }));
    }

    /// The level of `id`'s top tree node; `None` when it has no children.
    pub(crate) fn root_level(&mut self, id: &EntityId) -> Result<Option<u8>, StateError> {
        match self.load_index(id)? {
            Some(cached) => Ok(cached.root_level),
            None => Err(StateError::UnknownTarget(*id)),
        }
    }

    /// Make the node at `level` with the lowest range `id`'s top tree node
    /// (it must be in the node cache).
    pub(crate) fn set_root_level(&mut self, id: &EntityId, level: u8) -> Result<(), StateError> {
        match self.load_index(id)? {
            Some(cached) => {
                cached.root_level = Some(level);
                cached.dirty = true;
                Ok(())
            }
            None => Err(StateError::UnknownTarget(*id)),
        }
    }

    /// The entry of `id` (of kind `kind`) for reading or changing.
    fn load_entry(&mut self, id: &EntityId, kind: CrdtKind) -> Result<&mut CachedEntry, StateError> {
        if kind == CrdtKind::Text && !self.entries.0.contains_key(id) {
            let expected = self.index(id)?.ok_or(StateError::UnknownTarget(*id))?.entry_hash;
            let entry = Entry::Text(TextEntry::load(self.kv, id, &expected)?);
            self.entries.0.insert(*id, CachedEntry { entry, dirty: false });
        }
        if !self.entries.0.contains_key(id) {
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
                // Loaded above, from the cache or its own rows.
                (CrdtKind::Text, _) => Entry::Text(TextEntry::new()),
                (CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector, _) => Entry::Nothing,
            };
            self.entries.0.insert(*id, CachedEntry { entry, dirty: false });
        }
        self.entries.0.get_mut(id).ok_or_else(|| StateError::corrupt(format!("entry {id:?}"), "cache miss"))
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
        self.entries.0.get(id).is_some_and(|c| c.dirty)
    }

    /// The cache id of the slot of child `key` of `entity`, loading it;
    /// `None` if the child does not exist.
    fn slot_id(&mut self, entity: &EntityId, key: &[u8]) -> Result<Option<usize>, StateError> {
        let mut row = std::mem::take(&mut self.scratch);
        rows::write_child_key(&mut row, entity, key);
        let id = match self.slots.id(&row) {
            Some(id) => Some(id),
            None => match self.kv.get(&row)? {
                Some(bytes) => {
                    let slot = decode_slot(entity, &bytes)?;
                    Some(self.slots.push(row.clone(), CachedSlot { slot, dirty: false }))
                }
                None => None,
            },
        };
        self.scratch = row;
        Ok(id)
    }

    /// The slot of child `key` of `entity`, if the child exists.
    pub(crate) fn slot(&mut self, entity: &EntityId, key: &[u8]) -> Result<Option<&Slot>, StateError> {
        let id = self.slot_id(entity, key)?;
        Ok(id.and_then(|id| self.slots.at_mut(id)).map(|c| &c.slot))
    }

    /// Whether the slot of child `key` of `entity` is in the overlay.
    pub(crate) fn has_slot_loaded(&mut self, entity: &EntityId, key: &[u8]) -> bool {
        rows::write_child_key(&mut self.scratch, entity, key);
        self.slots.id(&self.scratch).is_some()
    }

    /// The slot of child `key` of `entity` for changing; marks it for
    /// writing. `exists` says whether the child exists (its key is in the
    /// tree): if not, the slot is created empty without reading the store.
    pub(crate) fn slot_mut(&mut self, entity: &EntityId, key: &[u8], exists: bool) -> Result<&mut Slot, StateError> {
        let id = match exists {
            true => self.slot_id(entity, key)?.ok_or_else(|| {
                StateError::corrupt(format!("children tree of {entity:?}"), "holds a key without a slot")
            })?,
            false => {
                let row = rows::child_key(entity, key);
                self.created_slots.insert(row.clone());
                self.slots.push(row, CachedSlot { slot: Slot::default(), dirty: true })
            }
        };
        let cached = self.slots.at_mut(id).ok_or_else(|| dangling(entity))?;
        cached.dirty = true;
        Ok(&mut cached.slot)
    }

    /// The cache id of the tree node at row key `row`, loading it.
    pub(crate) fn node_id(&mut self, entity: &EntityId, row: &[u8]) -> Result<usize, StateError> {
        if let Some(id) = self.nodes.id(row) {
            return Ok(id);
        }
        let bytes = self.kv.get(row)?.ok_or_else(|| dangling(entity))?;
        let node =
            TreeNode::from_bytes(bytes).map_err(|e| StateError::corrupt(format!("tree node of {entity:?}"), e))?;
        Ok(self.nodes.push(row.to_vec(), CachedNode { node: Some(node), dirty: false, stored: true }))
    }

    fn load_node(&mut self, entity: &EntityId, row: &[u8]) -> Result<&mut CachedNode, StateError> {
        let id = self.node_id(entity, row)?;
        self.nodes.at_mut(id).ok_or_else(|| dangling(entity))
    }

    /// The tree node at row key `row` of `entity`'s tree, which a link or
    /// the index names (so it must exist).
    pub(crate) fn tree_node(&mut self, entity: &EntityId, row: &[u8]) -> Result<&TreeNode, StateError> {
        self.load_node(entity, row)?.node.as_ref().ok_or_else(|| dangling(entity))
    }

    /// [`Overlay::tree_node`] for changing; marks it for writing.
    pub(crate) fn tree_node_mut(&mut self, entity: &EntityId, row: &[u8]) -> Result<&mut TreeNode, StateError> {
        let cached = self.load_node(entity, row)?;
        cached.dirty = true;
        cached.node.as_mut().ok_or_else(|| dangling(entity))
    }

    /// The tree node with cache id `id` (from [`Overlay::node_id`]), for
    /// reading or for filling in the hashes it caches (only a node already
    /// marked for writing can lack them); marks nothing.
    pub(crate) fn node_by_id(&mut self, entity: &EntityId, id: usize) -> Result<&mut TreeNode, StateError> {
        self.nodes.at_mut(id).and_then(|c| c.node.as_mut()).ok_or_else(|| dangling(entity))
    }

    /// Store `node` at row key `row` (a new node, or one replacing a deleted one).
    pub(crate) fn put_tree_node(&mut self, row: &[u8], node: TreeNode) {
        match self.nodes.id(row).and_then(|id| self.nodes.at_mut(id)) {
            Some(cached) => {
                cached.node = Some(node);
                cached.dirty = true;
            }
            None => {
                self.nodes.push(row.to_vec(), CachedNode { node: Some(node), dirty: true, stored: false });
            }
        }
    }

    /// Delete the (loaded) tree node at row key `row`.
    pub(crate) fn delete_tree_node(&mut self, row: &[u8]) {
        if let Some(cached) = self.nodes.id(row).and_then(|id| self.nodes.at_mut(id)) {
            cached.node = None;
            cached.dirty = true;
        }
    }

    /// An empty buffer, reused from an earlier walk when one was given back.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    /// Give a buffer back for reuse (a few are kept).
    pub(crate) fn give_buffer(&mut self, mut buffer: Vec<u8>) {
        if self.buffers.len() < BUFFERS_KEPT_MAX {
            buffer.clear();
            self.buffers.push(buffer);
        }
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
        let prefix = rows::child_prefix(entity);
        let mut cursor: Option<Vec<u8>> = after.map(|a| rows::child_key(entity, a));
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
                .created_slots
                .range::<[u8], _>((lower, high))
                .take_while(|k| k.starts_with(&prefix))
                .filter_map(|k| self.slots.get(k).map(|c| (k.as_slice(), &c.slot)))
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
                    visit(&row[rows::CHILD_PREFIX_LEN..], slot)
                } else {
                    let Some((row, bytes)) = stored_iter.next() else { break };
                    // A row changed in this overlay shadows the stored one.
                    let keep_going = match self.slots.get(&row) {
                        Some(cached) => visit(&row[rows::CHILD_PREFIX_LEN..], &cached.slot),
                        None => visit(&row[rows::CHILD_PREFIX_LEN..], &decode_slot(entity, &bytes)?),
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

    /// Encode every changed row. A top tree node goes into its index row
    /// (rewritten when the node changed); every other changed node into its
    /// own row, or a delete.
    pub(crate) fn into_writes(mut self) -> WriteSet {
        let mut writes = WriteSet::new();
        let mut row = Vec::new();
        for (id, mut cached) in self.indexes {
            if let Some(level) = cached.root_level {
                rows::write_tree_node_key(&mut row, &id, level, None);
                if let Some(top) = self.nodes.id(&row).and_then(|id| self.nodes.at_mut(id)) {
                    cached.dirty |= top.dirty;
                    // Taken out of the node rows: it goes into the index row.
                    top.dirty = false;
                    cached.index.tree = top.node.take().map(|mut node| {
                        node.refresh_entries_hash();
                        node
                    });
                }
            }
            if cached.dirty {
                let size = INDEX_BYTES_HINT + cached.index.tree.as_ref().map_or(0, |node| 4 + node.encoded_len());
                writes.put(rows::index_key(&id), encode_sized(&cached.index, size));
            }
        }
        for (id, cached) in std::mem::take(&mut self.entries.0) {
            let bytes = match (cached.dirty, cached.entry) {
                (true, Entry::Register(r)) => encoding::encode(&r),
                (true, Entry::Counter(c)) => encoding::encode(&c),
                (dirty, Entry::Text(mut text)) => {
                    if dirty {
                        text.write_rows(&id, &mut writes);
                    }
                    text.keep(&id);
                    continue;
                }
                _ => continue,
            };
            writes.put(rows::entry_key(&id), bytes);
        }
        for (row, cached) in self.slots.into_rows() {
            if cached.dirty {
                let size = SLOT_BYTES_HINT + cached.slot.value_len();
                writes.put(row, encode_sized(&cached.slot, size));
            }
        }
        for (row, cached) in self.nodes.into_rows() {
            match (cached.dirty, cached.node) {
                (true, Some(node)) => writes.put(row, node.into_bytes()),
                (true, None) if cached.stored => writes.delete(row),
                _ => {}
            }
        }
        writes
    }
}

/// The entries an overlay loaded. Dropped without being encoded (a read-only
/// or failed transaction), it hands the texts whose content did not change
/// back to the text cache; changed ones are dropped with it.
struct Entries(RowMap<EntityId, CachedEntry>);

impl Drop for Entries {
    fn drop(&mut self) {
        for (id, cached) in self.0.drain() {
            match (cached.dirty, cached.entry) {
                (false, Entry::Text(text)) => text.keep(&id),
                (true, Entry::Text(text)) => text.keep_if_unchanged(&id),
                _ => {}
            }
        }
    }
}

/// The stored index of `id`, top tree node included (`None` if the entity
/// does not exist; the root always does).
pub(crate) fn read_index<K: KvRead + ?Sized>(kv: &K, id: &EntityId) -> Result<Option<Index>, StateError> {
    match kv.get(&rows::index_key_array(id))? {
        Some(bytes) => Ok(Some(Index::from_row(bytes).map_err(|e| StateError::corrupt(format!("index {id:?}"), e))?)),
        None if *id == root_id() => Ok(Some(Index::empty_root())),
        None => Ok(None),
    }
}

/// Room for an index row without its tree node (a user-owned entity's
/// parent key can make it longer; the buffer then grows).
const INDEX_BYTES_HINT: usize = 384;

/// Room for a slot row beyond its value's bytes (stamps, tags, lengths).
const SLOT_BYTES_HINT: usize = 160;

/// The canonical encoding of `value` into a buffer of `capacity` bytes.
fn encode_sized<T: BorshSerialize>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    // Writing into a Vec cannot fail.
    let _ = value.serialize(&mut out);
    out
}

fn decode_slot(entity: &EntityId, bytes: &[u8]) -> Result<Slot, StateError> {
    encoding::decode::<Slot>(bytes).map_err(|e| StateError::corrupt(format!("child slot of {entity:?}"), e))
}

fn dangling(entity: &EntityId) -> StateError {
    StateError::corrupt(format!("children tree of {entity:?}"), "link to a missing node")
}
