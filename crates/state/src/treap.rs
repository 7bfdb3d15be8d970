//! The Merkle treap that holds a collection's children.
//!
//! A treap is a binary search tree by child key that is also a max-heap by
//! `(priority(key), key)`. Priorities come from hashing the key, so the
//! shape — and every hash in it — depends only on the set of keys, never on
//! insertion order: two replicas with the same children have the same root
//! hash and can be diffed top-down. Children are never deleted (removes are
//! tombstones), so only insertion is needed.
//!
//! Cost: one operation visits one root-to-leaf path (expected `O(log n)`
//! nodes). Links carry the subtree hash and live count, so the untouched side
//! of the path is never read; hashes are recomputed lazily, once per
//! transaction, for the nodes marked stale ([`rehash`]).

use weft_primitives::Hash;
use weft_primitives::kv::KvRead;

use crate::TREAP_DEPTH_MAX;
use crate::error::StateError;
use crate::model::EntityId;
use crate::overlay::Overlay;
use crate::rows::{Link, Node, Slot, outranks, priority};

/// Apply `change` to the slot at `key` of collection `entity`, creating the
/// slot (and its node) if absent. Keeps links, live counts and stale marks right.
pub(crate) fn update_slot<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    change: impl FnOnce(&mut Slot),
) -> Result<(), StateError> {
    match search(ov, entity, key)? {
        Place::Found => {
            let node = ov.linked_mut(entity, key)?;
            let old_live = node.slot.live();
            change(&mut node.slot);
            node.slot_hash = node.slot.hash();
            let new_live = node.slot.live();
            mark_path(ov, entity, key, old_live, new_live)
        }
        Place::Absent { parent, displaced } => {
            let mut slot = Slot::default();
            change(&mut slot);
            insert_node(ov, entity, key, slot, parent, displaced)
        }
    }
}

/// Where a key is, or would go, in a treap.
enum Place {
    /// A node holds the key.
    Found,
    /// The key is absent; a new node for it takes the place of the subtree
    /// topped by node `displaced` (which it splits), below `parent`
    /// (`None`: at the tree root; the flag says whether on the parent's left).
    Absent { parent: Option<(Vec<u8>, bool)>, displaced: Option<Vec<u8>> },
}

/// One walk down the search path of `key`. It meets the key's node before
/// any node the key outranks (every ancestor of a node outranks it), so the
/// first outranked node, or an empty link, proves the key absent — no
/// separate lookup needed.
fn search<K: KvRead + ?Sized>(ov: &mut Overlay<'_, K>, entity: &EntityId, key: &[u8]) -> Result<Place, StateError> {
    let key_priority = priority(key);
    let mut current: Option<Vec<u8>> = ov.index(entity)?.and_then(|i| i.tree_root.as_ref().map(|l| l.key.clone()));
    // Two key buffers swapped level by level, so the walk copies keys
    // without allocating.
    let mut parent_key: Vec<u8> = Vec::new();
    let mut parent_side: Option<bool> = None;
    for _ in 0..TREAP_DEPTH_MAX {
        let Some(here) = current.as_mut() else {
            return Ok(Place::Absent { parent: parent_side.map(|side| (parent_key, side)), displaced: None });
        };
        if here.as_slice() == key {
            return Ok(Place::Found);
        }
        let node = ov.linked(entity, here)?;
        if outranks(key_priority, key, node.priority, here) {
            return Ok(Place::Absent { parent: parent_side.map(|side| (parent_key, side)), displaced: current });
        }
        let go_left = key < here.as_slice();
        let next = if go_left { node.left.as_ref() } else { node.right.as_ref() };
        std::mem::swap(&mut parent_key, here);
        parent_side = Some(go_left);
        match next {
            Some(next) => {
                here.clear();
                here.extend_from_slice(&next.key);
            }
            None => current = None,
        }
    }
    Err(StateError::TreeTooDeep)
}

/// Mark every node above `key` stale and move its live count from
/// `old_live` to `new_live`.
fn mark_path<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    old_live: u64,
    new_live: u64,
) -> Result<(), StateError> {
    let adjust = |link: &mut Link| link.live = link.live.saturating_sub(old_live).saturating_add(new_live);
    let index = ov.index_mut(entity)?;
    let Some(root) = index.tree_root.as_mut() else { return Err(missing(entity)) };
    adjust(root);
    let mut current = root.key.clone();
    for _ in 0..TREAP_DEPTH_MAX {
        if current.as_slice() == key {
            return Ok(());
        }
        let node = ov.linked_mut(entity, &current)?;
        let next = if key < current.as_slice() { node.left.as_mut() } else { node.right.as_mut() };
        let Some(next) = next else { return Err(missing(entity)) };
        adjust(next);
        current.clear();
        current.extend_from_slice(&next.key);
    }
    Err(StateError::TreeTooDeep)
}

/// Insert a node for `key` (absent) holding `slot` at the place [`search`] found.
fn insert_node<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    slot: Slot,
    parent: Option<(Vec<u8>, bool)>,
    displaced: Option<Vec<u8>>,
) -> Result<(), StateError> {
    let new_live = slot.live();
    let (left, right) = split(ov, entity, displaced, key)?;
    let node = Node { priority: priority(key), left, right, slot_hash: slot.hash(), slot };
    let new_link = Link { key: key.to_vec(), hash: Hash::ZERO, live: node.subtree_live() };
    ov.insert_node(entity, key, node);
    match parent {
        None => ov.index_mut(entity)?.tree_root = Some(new_link),
        Some((parent_key, go_left)) => {
            // The path down to the parent gains the new slot's live count.
            mark_path(ov, entity, &parent_key, 0, new_live)?;
            let node = ov.linked_mut(entity, &parent_key)?;
            if go_left {
                node.left = Some(new_link);
            } else {
                node.right = Some(new_link);
            }
        }
    }
    Ok(())
}

/// Split the subtree rooted at node `top` into the keys below `key` and
/// those above it (`key` itself is absent). Nodes on the split path are
/// marked stale.
fn split<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    top: Option<Vec<u8>>,
    key: &[u8],
) -> Result<(Option<Link>, Option<Link>), StateError> {
    // Down: which side each node on the search path goes to.
    let mut path: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut current = top;
    while let Some(node_key) = current {
        if path.len() >= TREAP_DEPTH_MAX {
            return Err(StateError::TreeTooDeep);
        }
        let node = ov.linked(entity, &node_key)?;
        let goes_left = node_key.as_slice() < key;
        let next = if goes_left { node.right.as_ref() } else { node.left.as_ref() };
        current = next.map(|l| l.key.clone());
        path.push((node_key, goes_left));
    }
    // Up: a node that goes left takes the left part of its right subtree's
    // split as its new right child (and mirror-wise for the right).
    let mut left_part: Option<Link> = None;
    let mut right_part: Option<Link> = None;
    for (node_key, goes_left) in path.into_iter().rev() {
        let node = ov.linked_mut(entity, &node_key)?;
        if goes_left {
            node.right = left_part.take();
            left_part = Some(Link { live: node.subtree_live(), key: node_key, hash: Hash::ZERO });
        } else {
            node.left = right_part.take();
            right_part = Some(Link { live: node.subtree_live(), key: node_key, hash: Hash::ZERO });
        }
    }
    Ok((left_part, right_part))
}

/// Recompute the hashes of the stale nodes of `entity`'s treap and store
/// the root link's hash; returns the tree hash.
pub(crate) fn rehash<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
) -> Result<Option<Hash>, StateError> {
    let Some(root) = ov.index(entity)?.and_then(|i| i.tree_root.clone()) else { return Ok(None) };
    match rehash_stale(ov, entity, &root.key, 0)? {
        None => Ok(Some(root.hash)),
        Some(hash) => {
            if let Some(root) = ov.index_mut(entity)?.tree_root.as_mut() {
                root.hash = hash;
            }
            Ok(Some(hash))
        }
    }
}

/// The new hash of the subtree at `key` if its node is stale (its stale
/// children first); `None` when it is unchanged.
fn rehash_stale<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    key: &[u8],
    depth: usize,
) -> Result<Option<Hash>, StateError> {
    if depth > TREAP_DEPTH_MAX {
        return Err(StateError::TreeTooDeep);
    }
    let Some(cached) = ov.stale_node(entity, key) else { return Ok(None) };
    // Borrow the links out of the node while the children are rehashed
    // (no key copies); an error here fails the whole commit anyway.
    let mut left = cached.node.left.take();
    let mut right = cached.node.right.take();
    for link in [left.as_mut(), right.as_mut()].into_iter().flatten() {
        if let Some(hash) = rehash_stale(ov, entity, &link.key, depth + 1)? {
            link.hash = hash;
        }
    }
    let cached = ov.stale_node(entity, key).ok_or_else(|| missing(entity))?;
    cached.node.left = left;
    cached.node.right = right;
    cached.stale = false;
    Ok(Some(cached.node.subtree_hash(key)))
}

/// The number of visible children of `entity`.
pub(crate) fn live_len<K: KvRead + ?Sized>(ov: &mut Overlay<'_, K>, entity: &EntityId) -> Result<u64, StateError> {
    Ok(ov.index(entity)?.and_then(|i| i.tree_root.as_ref().map(|l| l.live)).unwrap_or(0))
}

/// The key of the `rank`-th visible child of `entity` (0-based, key order).
pub(crate) fn select<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    entity: &EntityId,
    rank: u64,
) -> Result<Option<Vec<u8>>, StateError> {
    let mut rank = rank;
    let mut current = ov.index(entity)?.and_then(|i| i.tree_root.as_ref().map(|l| l.key.clone()));
    for _ in 0..TREAP_DEPTH_MAX {
        let Some(key) = current else { return Ok(None) };
        let node = ov.linked(entity, &key)?;
        let left_live = node.left.as_ref().map_or(0, |l| l.live);
        if rank < left_live {
            current = node.left.as_ref().map(|l| l.key.clone());
            continue;
        }
        rank -= left_live;
        if node.slot.is_visible() {
            if rank == 0 {
                return Ok(Some(key));
            }
            rank -= 1;
        }
        current = node.right.as_ref().map(|l| l.key.clone());
    }
    Err(StateError::TreeTooDeep)
}

fn missing(entity: &EntityId) -> StateError {
    StateError::corrupt(format!("treap of {entity:?}"), "path to an existing node is broken")
}
