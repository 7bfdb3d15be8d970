//! The Merkle search tree over a collection's children: inserting and
//! updating slots, rehashing, and rank queries.
//!
//! The tree's shape is a function of the set of child keys (see the `node`
//! module), so replicas with the same children have the same tree, the same
//! rows and the same hashes. Children are never deleted (removes are
//! tombstones), so only insertion changes the shape.
//!
//! Cost: a change walks one path from the top node down (about `log16 n`
//! nodes); inserting a key of level `l` also splits the subtree it lands on,
//! one node per level below `l` (levels above 0 are rare: 1 key in 16).
//! Links carry subtree hashes and visible counts, so nothing off the path is
//! read. Hashes are recomputed lazily, once per transaction, for the nodes
//! whose links were marked stale ([`rehash`]).

use weft_primitives::Hash;
use weft_primitives::kv::KvRead;

use crate::TREE_LEVEL_MAX;
use crate::error::StateError;
use crate::model::EntityId;
use crate::node::{Link, TreeNode, key_level};
use crate::overlay::Overlay;
use crate::rows::{self, Slot};

/// Apply `change` to the slot at `key` of collection `entity`, creating the
/// slot (and its tree entry) if absent. Keeps hashes, counts and stale marks right.
pub(crate) fn update_slot<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    change: impl FnOnce(&mut Slot),
) -> Result<(), StateError> {
    // The tree says whether the child exists, so a new child costs no
    // store read for its (absent) slot row.
    let existed = ov.has_slot_loaded(entity, key) || contains(ov, entity, key)?;
    let slot = ov.slot_mut(entity, key, existed)?;
    let old_live = existed && slot.is_visible();
    change(slot);
    let (slot_hash, live) = match slot.nested.is_empty() {
        true => (slot.hash(key, &[]), slot.is_visible()),
        false => slot_state(ov, entity, key)?,
    };
    match existed {
        true => update_entry(ov, entity, key, &slot_hash, live, old_live),
        false => insert(ov, entity, key, &slot_hash, live),
    }
}

/// Whether `key` is in `entity`'s tree, i.e. the child exists.
fn contains<K: KvRead + ?Sized>(ov: &mut Overlay<'_, K>, entity: &EntityId, key: &[u8]) -> Result<bool, StateError> {
    let Some(top) = ov.root_level(entity)? else { return Ok(false) };
    let mut at = Cursor::top(ov, entity, top);
    for _ in 0..=TREE_LEVEL_MAX {
        let node = ov.tree_node(entity, &at.row)?;
        let i = match node.search(key) {
            Ok(_) => {
                at.finish(ov);
                return Ok(true);
            }
            Err(i) => i,
        };
        let Some(child_level) = node.child(i).map(|link| link.level) else {
            at.finish(ov);
            return Ok(false);
        };
        at.descend(entity, node, i, child_level);
    }
    Err(StateError::TreeTooDeep)
}

/// Recompute the slot hash at `key` of `entity` after the full hash of its
/// nested entity `nested` changed.
pub(crate) fn refresh_nested<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    nested: &EntityId,
) -> Result<(), StateError> {
    let listed = ov.slot(entity, key)?.is_some_and(|slot| slot.lists_nested(nested));
    if !listed {
        return Err(StateError::corrupt(format!("slot of {nested:?}"), "parent slot does not list the entity"));
    }
    let (slot_hash, live) = slot_state(ov, entity, key)?;
    update_entry(ov, entity, key, &slot_hash, live, live)
}

/// The hash and visibility of the (existing) slot at `key` of `entity`.
fn slot_state<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
) -> Result<(Hash, bool), StateError> {
    let missing = || StateError::corrupt(format!("slot of {entity:?}"), "vanished while changing");
    let slot = ov.slot(entity, key)?.ok_or_else(missing)?;
    if slot.nested.is_empty() {
        return Ok((slot.hash(key, &[]), slot.is_visible()));
    }
    // Nested full hashes come from the nested entities' index rows. A slot
    // almost always holds one nested entity: no allocation for a few.
    let count = slot.nested.len();
    let mut inline = [Hash::ZERO; NESTED_INLINE];
    let mut spilled = Vec::new();
    for i in 0..count {
        let Some(id) = ov.slot(entity, key)?.and_then(|slot| slot.nested.get(i).copied()) else {
            return Err(missing());
        };
        let index =
            ov.index(&id)?.ok_or_else(|| StateError::corrupt(format!("slot of {entity:?}"), "names no entity"))?;
        match inline.get_mut(i) {
            Some(at) => *at = index.full_hash,
            None => spilled.push(index.full_hash),
        }
    }
    let full_hashes: Vec<Hash>;
    let full_hashes: &[Hash] = match count <= NESTED_INLINE {
        true => &inline[..count],
        false => {
            full_hashes = inline.iter().copied().chain(spilled).collect();
            &full_hashes
        }
    };
    let slot = ov.slot(entity, key)?.ok_or_else(missing)?;
    Ok((slot.hash(key, full_hashes), slot.is_visible()))
}

/// Nested entities of one slot whose hashes are gathered without allocating.
const NESTED_INLINE: usize = 4;

/// A walk's position: the current node's level, the lower bound of its
/// range and its row key (buffers borrowed from the overlay).
struct Cursor {
    level: u8,
    /// Meaningful when `bounded`: empty is a valid key.
    bound: Vec<u8>,
    bounded: bool,
    row: Vec<u8>,
}

impl Cursor {
    fn top<K: KvRead + ?Sized>(ov: &mut Overlay<'_, K>, entity: &EntityId, level: u8) -> Cursor {
        let mut cursor = Cursor { level, bound: ov.take_buffer(), bounded: false, row: ov.take_buffer() };
        cursor.locate(entity);
        cursor
    }

    fn bound(&self) -> Option<&[u8]> {
        self.bounded.then_some(self.bound.as_slice())
    }

    fn locate(&mut self, entity: &EntityId) {
        let bound = self.bounded.then_some(self.bound.as_slice());
        rows::write_tree_node_key(&mut self.row, entity, self.level, bound);
    }

    /// Move to the child in gap `i` of `node` (the node at this cursor).
    fn descend(&mut self, entity: &EntityId, node: &TreeNode, i: usize, child_level: u8) {
        if i > 0 {
            self.bound.clear();
            self.bound.extend_from_slice(node.key(i - 1));
            self.bounded = true;
        }
        self.level = child_level;
        self.locate(entity);
    }

    /// Give the buffers back.
    fn finish<K: KvRead + ?Sized>(self, ov: &mut Overlay<'_, K>) {
        ov.give_buffer(self.bound);
        ov.give_buffer(self.row);
    }
}

/// The lower bound of gap `i` of a node whose range starts after `bound`.
fn gap_bound(node: &TreeNode, i: usize, bound: Option<&[u8]>) -> Option<Vec<u8>> {
    if i > 0 { Some(node.key(i - 1).to_vec()) } else { bound.map(<[u8]>::to_vec) }
}

/// Set the entry of existing key `key`, marking the path to it stale and
/// moving its visible count from `old_live` to `live`.
fn update_entry<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    slot_hash: &Hash,
    live: bool,
    old_live: bool,
) -> Result<(), StateError> {
    let Some(top) = ov.root_level(entity)? else { return Err(broken(entity)) };
    let mut at = Cursor::top(ov, entity, top);
    // Levels strictly decrease down the tree (checked on decode).
    for _ in 0..=TREE_LEVEL_MAX {
        let node = ov.tree_node_mut(entity, &at.row)?;
        let i = match node.search(key) {
            Ok(i) => {
                node.set_entry(i, slot_hash, live);
                at.finish(ov);
                return Ok(());
            }
            Err(i) => i,
        };
        let mut child_level = None;
        node.update_child(i, |link| {
            link.live = link.live.saturating_sub(u64::from(old_live)).saturating_add(u64::from(live));
            link.stale = true;
            child_level = Some(link.level);
        });
        let Some(child_level) = child_level else { return Err(broken(entity)) };
        at.descend(entity, node, i, child_level);
    }
    Err(StateError::TreeTooDeep)
}

/// Insert absent key `key` with its slot hash and visibility.
fn insert<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    slot_hash: &Hash,
    live: bool,
) -> Result<(), StateError> {
    let level = key_level(key);
    let top = match ov.root_level(entity)? {
        Some(top) if top >= level => top,
        // A new top node over the old tree, split at the key.
        old_top => {
            let (below, above) = split(ov, entity, old_top, None, key, 0)?;
            let row = rows::tree_node_key(entity, level, None);
            ov.put_tree_node(&row, TreeNode::single(level, key, slot_hash, live, below, above));
            return ov.set_root_level(entity, level);
        }
    };
    let mut at = Cursor::top(ov, entity, top);
    for _ in 0..=TREE_LEVEL_MAX {
        let node = ov.tree_node_mut(entity, &at.row)?;
        let i = match node.search(key) {
            Ok(_) => {
                return Err(StateError::corrupt(format!("children tree of {entity:?}"), "holds a key without a slot"));
            }
            Err(i) => i,
        };
        let child_level = node.child(i).map(|link| link.level);
        if at.level == level {
            // The key joins this node; the subtree in its gap splits around it.
            let (below, above) = match child_level {
                None => (None, None),
                Some(_) => {
                    let child_bound = gap_bound(node, i, at.bound());
                    split(ov, entity, child_level, child_bound.as_deref(), key, 0)?
                }
            };
            ov.tree_node_mut(entity, &at.row)?.insert_entry(i, key, slot_hash, live, below, above);
            at.finish(ov);
            return Ok(());
        }
        match child_level {
            Some(child_level) if child_level >= level => {
                node.update_child(i, |link| {
                    link.live = link.live.saturating_add(u64::from(live));
                    link.stale = true;
                });
                at.descend(entity, node, i, child_level);
            }
            // The key tops a new node in this gap, over the split subtree.
            _ => {
                let child_bound = gap_bound(node, i, at.bound());
                let (below, above) = split(ov, entity, child_level, child_bound.as_deref(), key, 0)?;
                let new = TreeNode::single(level, key, slot_hash, live, below, above);
                let link = Link::changed(level, new.live_total());
                ov.put_tree_node(&rows::tree_node_key(entity, level, child_bound.as_deref()), new);
                ov.tree_node_mut(entity, &at.row)?.set_child(i, Some(link));
                at.finish(ov);
                return Ok(());
            }
        }
    }
    Err(StateError::TreeTooDeep)
}

/// Split the subtree topped by the node at `level` (if any) whose range
/// starts after `bound` into the keys below `key` and those above it
/// (`key` itself is absent). The lower part keeps the node's row (or
/// collapses into its only child, deleting the row); the upper part's nodes
/// move to rows whose range starts after `key`.
fn split<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    level: Option<u8>,
    bound: Option<&[u8]>,
    key: &[u8],
    depth: u8,
) -> Result<(Option<Link>, Option<Link>), StateError> {
    let Some(level) = level else { return Ok((None, None)) };
    if depth > TREE_LEVEL_MAX {
        return Err(StateError::TreeTooDeep);
    }
    let row = rows::tree_node_key(entity, level, bound);
    let node = ov.tree_node(entity, &row)?;
    let i = match node.search(key) {
        Ok(_) => return Err(StateError::corrupt(format!("children tree of {entity:?}"), "holds a key without a slot")),
        Err(i) => i,
    };
    let child_level = node.child(i).map(|link| link.level);
    let child_bound = gap_bound(node, i, bound);
    let (below, above) = split(ov, entity, child_level, child_bound.as_deref(), key, depth + 1)?;
    let node = ov.tree_node_mut(entity, &row)?;
    let mut upper = node.split_off(i, below, above);
    let lower_link = match node.is_empty() {
        true => {
            let only = node.take_child(0);
            ov.delete_tree_node(&row);
            only
        }
        false => Some(Link::changed(level, node.live_total())),
    };
    let upper_link = match upper.is_empty() {
        true => upper.take_child(0),
        false => {
            let link = Link::changed(level, upper.live_total());
            ov.put_tree_node(&rows::tree_node_key(entity, level, Some(key)), upper);
            Some(link)
        }
    };
    Ok((lower_link, upper_link))
}

/// Recompute the hashes of the stale nodes of `entity`'s tree; returns the
/// top node's hash (always recomputed), `None` without children.
pub(crate) fn rehash<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
) -> Result<Option<Hash>, StateError> {
    let Some(top) = ov.root_level(entity)? else { return Ok(None) };
    let mut row = ov.take_buffer();
    rows::write_tree_node_key(&mut row, entity, top, None);
    let hash = rehash_node(ov, entity, &row, 0)?;
    ov.give_buffer(row);
    Ok(Some(hash))
}

/// The hash of the node at `row`, after rehashing its stale subtrees.
fn rehash_node<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    row: &[u8],
    depth: u8,
) -> Result<Hash, StateError> {
    if depth > TREE_LEVEL_MAX {
        return Err(StateError::TreeTooDeep);
    }
    let id = ov.node_id(entity, row)?;
    let mut child_row = ov.take_buffer();
    let mut next = 0;
    // Each round rehashes one stale child after the previous one.
    loop {
        let node = ov.node_by_id(entity, id)?;
        let Some((i, child_level)) = node.next_stale_child(next) else { break };
        let bound = if i > 0 { Some(node.key(i - 1)) } else { rows::tree_node_bound(row) };
        rows::write_tree_node_key(&mut child_row, entity, child_level, bound);
        let hash = rehash_node(ov, entity, &child_row, depth + 1)?;
        ov.node_by_id(entity, id)?.update_child(i, |link| {
            link.hash = hash;
            link.stale = false;
        });
        next = i + 1;
    }
    ov.give_buffer(child_row);
    Ok(ov.node_by_id(entity, id)?.hash())
}

/// The number of visible children of `entity`.
pub(crate) fn live_len<K: KvRead + ?Sized>(ov: &mut Overlay<'_, K>, entity: &EntityId) -> Result<u64, StateError> {
    let Some(top) = ov.root_level(entity)? else { return Ok(0) };
    let mut row = ov.take_buffer();
    rows::write_tree_node_key(&mut row, entity, top, None);
    let live = ov.tree_node(entity, &row)?.live_total();
    ov.give_buffer(row);
    Ok(live)
}

/// The key of the `rank`-th visible child of `entity` (0-based, key order).
pub(crate) fn select<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    rank: u64,
) -> Result<Option<Vec<u8>>, StateError> {
    let Some(top) = ov.root_level(entity)? else { return Ok(None) };
    let mut at = Cursor::top(ov, entity, top);
    let mut rank = rank;
    'levels: for _ in 0..=TREE_LEVEL_MAX {
        let node = ov.tree_node(entity, &at.row)?;
        for i in 0..=node.len() {
            if let Some(link) = node.child(i) {
                if rank < link.live {
                    let child_level = link.level;
                    at.descend(entity, node, i, child_level);
                    continue 'levels;
                }
                rank -= link.live;
            }
            if i < node.len() && node.is_live(i) {
                if rank == 0 {
                    let found = node.key(i).to_vec();
                    at.finish(ov);
                    return Ok(Some(found));
                }
                rank -= 1;
            }
        }
        at.finish(ov);
        return Ok(None);
    }
    Err(StateError::TreeTooDeep)
}

fn broken(entity: &EntityId) -> StateError {
    StateError::corrupt(format!("children tree of {entity:?}"), "path to an existing key is broken")
}

#[cfg(test)]
mod tests;
