//! The slow reference and the materialized view.
//!
//! [`recompute_root_hash`] recomputes the root hash from the rows alone: it
//! trusts no stored hash, link or live count, but rebuilds each collection's
//! canonical Merkle search tree from its child rows (sorted keys and their
//! levels) and recomputes every slot, entry, entity and node hash. It also
//! checks that the stored tree — the top node in the index row, every other
//! node in its own row, no other tree rows — has exactly the canonical
//! shape (keys, levels, visibility, links and counts; an error otherwise).
//! Equality with the incremental root therefore checks the incremental
//! code, the tree shape and the stored hashes at once. Cost: O(state).
//!
//! [`materialize`] dumps the visible tree as a comparable value, for tests
//! and debugging.

use std::collections::BTreeMap;

use weft_primitives::Hash;
use weft_primitives::encoding;
use weft_primitives::kv::{KvRead, WriteSet};

use crate::NESTING_DEPTH_MAX;
use crate::error::StateError;
use crate::model::{CrdtKind, EntityId, root_id};
use crate::node::{Link, TreeNode, key_level};
use crate::overlay::{Entry, Overlay, SCAN_PAGE_ROWS};
use crate::rows::{self, Index, Slot, SlotValue};

/// The root hash recomputed from scratch from every row of the state.
pub fn recompute_root_hash<K: KvRead + ?Sized>(kv: &K) -> Result<Hash, StateError> {
    recompute_entity(kv, &root_id(), None, 0)
}

/// (`slow-reference`) Check an incremental root against a full recomputation
/// over `kv` with `writes` applied.
#[cfg_attr(not(feature = "slow-reference"), allow(dead_code))]
pub(crate) fn verify_against_reference<K: KvRead + ?Sized>(
    kv: &K,
    writes: &WriteSet,
    incremental: Hash,
) -> Result<(), StateError> {
    let recomputed = recompute_root_hash(&crate::LayeredKv::new(kv, writes))?;
    if recomputed != incremental {
        return Err(StateError::ReferenceMismatch { incremental, recomputed });
    }
    Ok(())
}

fn recompute_entity<K: KvRead + ?Sized>(
    kv: &K,
    id: &EntityId,
    expected_parent: Option<(&EntityId, &[u8])>,
    depth: u32,
) -> Result<Hash, StateError> {
    if depth > NESTING_DEPTH_MAX {
        return Err(StateError::NestingTooDeep);
    }
    let what = || format!("index {id:?}");
    let index = match kv.get(&rows::index_key(id))? {
        Some(bytes) => encoding::decode::<Index>(&bytes).map_err(|e| StateError::corrupt(what(), e))?,
        None if *id == root_id() => Index::empty_root(),
        None => return Err(StateError::corrupt(what(), "a slot names an entity that has no index")),
    };
    let parent = index.parent.as_ref().map(|p| (&p.id, p.key.as_slice()));
    if index.id != *id || parent != expected_parent || index.depth != depth {
        return Err(StateError::corrupt(what(), "index does not match its position"));
    }
    let entry = kv.get(&rows::entry_key(id))?;
    let entry_hash = match (index.kind, entry) {
        // Read from its rows, never the cache, and hashed from scratch.
        (CrdtKind::Text, Some(_)) => match crate::text::load_rows(kv, id)? {
            Some(doc) => doc.content_hash(),
            None => crate::text::empty_text_hash(),
        },
        (CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector, Some(_)) => {
            return Err(StateError::corrupt(format!("entry {id:?}"), "collections have no entry"));
        }
        (_, Some(bytes)) => rows::entry_bytes_hash(&bytes),
        (kind, None) => rows::empty_entry_hash(kind),
    };
    let own = rows::own_hash(index.kind, &index.storage, &index.created, &index.updated, &entry_hash);
    let tree = recompute_tree(kv, id, index.tree.as_ref(), depth)?;
    Ok(rows::full_hash(id, &own, tree.as_ref()))
}

/// One child of a collection, as the canonical tree needs it.
struct Item {
    key: Vec<u8>,
    level: u8,
    slot_hash: Hash,
    live: bool,
}

/// The canonical tree hash of `entity`'s children, from their rows, after
/// checking that the stored tree (`top` and the tree rows) has the canonical shape.
fn recompute_tree<K: KvRead + ?Sized>(
    kv: &K,
    entity: &EntityId,
    top: Option<&TreeNode>,
    depth: u32,
) -> Result<Option<Hash>, StateError> {
    let prefix = rows::child_prefix(entity);
    let mut items: Vec<Item> = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    // Each page advances `after`; the prefix holds finitely many rows.
    loop {
        let page = kv.scan(&prefix, after.as_deref(), SCAN_PAGE_ROWS)?;
        let done = page.len() < SCAN_PAGE_ROWS;
        for (row, bytes) in page {
            let key = row[rows::CHILD_PREFIX_LEN..].to_vec();
            let slot = encoding::decode::<Slot>(&bytes)
                .map_err(|e| StateError::corrupt(format!("child slot of {entity:?}"), e))?;
            let mut full_hashes = Vec::with_capacity(slot.nested.len());
            for nested in &slot.nested {
                full_hashes.push(recompute_entity(kv, nested, Some((entity, &key)), depth + 1)?);
            }
            let slot_hash = slot.hash(&key, &full_hashes);
            items.push(Item { level: key_level(&key), slot_hash, live: slot.is_visible(), key });
            after = Some(row);
        }
        if done {
            break;
        }
    }
    let mut canonical: Vec<(Vec<u8>, TreeNode)> = Vec::new();
    let top_link = build(entity, &items, None, &mut canonical);
    check_stored_tree(kv, entity, top, canonical)?;
    Ok(top_link.map(|link| link.hash))
}

/// Build the canonical tree over `items` (sorted by key, all in the range
/// after `bound`), pushing each node with its row key, children first.
fn build(entity: &EntityId, items: &[Item], bound: Option<&[u8]>, out: &mut Vec<(Vec<u8>, TreeNode)>) -> Option<Link> {
    let level = items.iter().map(|item| item.level).max()?;
    // Levels strictly decrease with each recursion, so it is at most
    // TREE_LEVEL_MAX + 1 deep.
    let mut entries: Vec<(&[u8], &Hash, bool)> = Vec::new();
    let mut gaps: Vec<Option<Link>> = Vec::new();
    let mut start = 0;
    let mut gap_bound = bound;
    for (at, item) in items.iter().enumerate().filter(|(_, item)| item.level == level) {
        gaps.push(build(entity, &items[start..at], gap_bound, out));
        entries.push((&item.key, &item.slot_hash, item.live));
        start = at + 1;
        gap_bound = Some(&item.key);
    }
    gaps.push(build(entity, &items[start..], gap_bound, out));
    let mut node = TreeNode::from_entries(level, &entries, &gaps);
    let link = Link { level, hash: node.hash(), live: node.live_total(), stale: false };
    out.push((rows::tree_node_key(entity, level, bound), node));
    Some(link)
}

/// Check that the stored tree of `entity` has the shape of `canonical`
/// (whose last node is the top one, stored in the index row). Hashes are
/// left to the root hash comparison: a changed entity changes them.
fn check_stored_tree<K: KvRead + ?Sized>(
    kv: &K,
    entity: &EntityId,
    top: Option<&TreeNode>,
    mut canonical: Vec<(Vec<u8>, TreeNode)>,
) -> Result<(), StateError> {
    let differs = |reason: &str| StateError::corrupt(format!("children tree of {entity:?}"), reason);
    let canonical_top = canonical.pop().map(|(_, node)| node);
    let same_top = match (&canonical_top, top) {
        (Some(canonical), Some(stored)) => canonical.same_shape(stored),
        (None, None) => true,
        _ => false,
    };
    if !same_top {
        return Err(differs("top node is not the canonical one"));
    }
    for (row, node) in &canonical {
        let bytes = kv.get(row)?.ok_or_else(|| differs("a canonical node has no row"))?;
        let stored = TreeNode::from_bytes(bytes).map_err(differs)?;
        if !stored.same_shape(node) {
            return Err(differs("a node row is not the canonical node"));
        }
    }
    // No other tree rows: count them.
    let prefix = rows::tree_prefix(entity);
    let mut stored_rows = 0usize;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = kv.scan(&prefix, after.as_deref(), SCAN_PAGE_ROWS)?;
        stored_rows += page.len();
        if page.len() < SCAN_PAGE_ROWS {
            break;
        }
        after = page.last().map(|(row, _)| row.clone());
    }
    if stored_rows != canonical.len() {
        return Err(differs("tree rows beyond the canonical nodes"));
    }
    Ok(())
}

/// The visible state as a plain value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Materialized {
    /// An unset register.
    Null,
    /// Plain bytes (register value, map value).
    Bytes(Vec<u8>),
    /// A counter's value.
    Int(i128),
    /// A text's visible characters.
    Text(String),
    /// A vector's elements, or a set's elements in byte order.
    List(Vec<Materialized>),
    /// A map's visible entries.
    Map(BTreeMap<Vec<u8>, Materialized>),
}

/// Dump the visible tree below the root.
pub fn materialize<K: KvRead + ?Sized>(kv: &K) -> Result<Materialized, StateError> {
    let mut ov = Overlay::new(kv);
    materialize_entity(&mut ov, &root_id(), 0)
}

fn materialize_entity<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    id: &EntityId,
    depth: u32,
) -> Result<Materialized, StateError> {
    if depth > NESTING_DEPTH_MAX {
        return Err(StateError::NestingTooDeep);
    }
    let kind = ov.index(id)?.ok_or(StateError::UnknownTarget(*id))?.kind;
    Ok(match kind {
        CrdtKind::LwwRegister => match ov.entry(id, kind)? {
            Entry::Register(Some((_, value))) => Materialized::Bytes(value.clone()),
            _ => Materialized::Null,
        },
        CrdtKind::GCounter | CrdtKind::PnCounter => match ov.entry(id, kind)? {
            Entry::Counter(totals) => {
                Materialized::Int(totals.values().map(|t| i128::from(t.up) - i128::from(t.down)).sum())
            }
            _ => Materialized::Int(0),
        },
        CrdtKind::Text => match ov.entry(id, kind)? {
            Entry::Text(text) => Materialized::Text(text.doc.to_string()),
            _ => Materialized::Text(String::new()),
        },
        CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector => {
            let children = visible_children(ov, id)?;
            if kind == CrdtKind::Map {
                let mut map = BTreeMap::new();
                for (key, value) in children {
                    let item = match value {
                        SlotValue::Nested { id: child, .. } => materialize_entity(ov, &child, depth + 1)?,
                        SlotValue::Bytes(bytes) => Materialized::Bytes(bytes),
                        SlotValue::Present => Materialized::Null,
                    };
                    map.insert(key, item);
                }
                Materialized::Map(map)
            } else {
                let list = children
                    .into_iter()
                    .map(|(key, value)| match value {
                        SlotValue::Bytes(bytes) => Materialized::Bytes(bytes),
                        _ => Materialized::Bytes(key),
                    })
                    .collect();
                Materialized::List(list)
            }
        }
    })
}

fn visible_children<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    id: &EntityId,
) -> Result<Vec<(Vec<u8>, SlotValue)>, StateError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    // Each round moves `after` forward; the collection is finite.
    loop {
        let mut last = None;
        let more = ov.scan_children(id, after.as_deref(), SCAN_PAGE_ROWS, |key, slot| {
            if let Some(value) = slot.visible_value() {
                out.push((key.to_vec(), value.clone()));
            }
            last = Some(key.to_vec());
            true
        })?;
        if !more || last.is_none() {
            return Ok(out);
        }
        after = last;
    }
}
