//! The slow reference and the materialized view.
//!
//! [`recompute_root_hash`] recomputes the root hash from the rows alone: it
//! trusts no stored hash, link or live count, but rebuilds each collection's
//! canonical treap from its sorted children (a Cartesian tree by priority) and
//! recomputes every slot, entry, entity and node hash. Equality with the
//! incremental root therefore checks the incremental code, the treap shape
//! and the stored hashes at once. Cost: O(state).
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
use crate::overlay::{Entry, Overlay, SCAN_PAGE_ROWS};
use crate::rows::{self, Index, Node, SlotValue, outranks, priority};
use crate::text::TextEntry;

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
        (CrdtKind::Text, Some(bytes)) => {
            TextEntry::decode(&bytes).map_err(|e| StateError::corrupt(format!("entry {id:?}"), e))?.content_hash()
        }
        (CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector, Some(_)) => {
            return Err(StateError::corrupt(format!("entry {id:?}"), "collections have no entry"));
        }
        (_, Some(bytes)) => rows::entry_bytes_hash(&bytes),
        (kind, None) => rows::empty_entry_hash(kind),
    };
    let own = rows::own_hash(index.kind, &index.storage, &index.created, &index.updated, &entry_hash);
    let tree = recompute_tree(kv, id, depth)?;
    Ok(rows::full_hash(id, &own, tree.as_ref()))
}

/// The canonical treap hash of `entity`'s children, from their rows.
fn recompute_tree<K: KvRead + ?Sized>(kv: &K, entity: &EntityId, depth: u32) -> Result<Option<Hash>, StateError> {
    let prefix = rows::node_prefix(entity);
    // (key, priority, slot hash), in key order.
    let mut items: Vec<(Vec<u8>, u64, Hash)> = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    // Each page advances `after`; the prefix holds finitely many rows.
    loop {
        let page = kv.scan(&prefix, after.as_deref(), SCAN_PAGE_ROWS)?;
        let done = page.len() < SCAN_PAGE_ROWS;
        for (row, bytes) in page {
            let key = row[rows::NODE_PREFIX_LEN..].to_vec();
            let mut node = encoding::decode::<Node>(&bytes)
                .map_err(|e| StateError::corrupt(format!("treap node of {entity:?}"), e))?;
            for nested in &mut node.slot.nested {
                nested.full_hash = recompute_entity(kv, &nested.id, Some((entity, &key)), depth + 1)?;
            }
            items.push((key.clone(), priority(&key), node.slot.hash()));
            after = Some(row);
        }
        if done {
            break;
        }
    }
    Ok(cartesian_hash(&items))
}

/// Hash of the treap over `items` (sorted by key), built bottom-up with a
/// stack: the shape is the unique one the incremental treap must have.
fn cartesian_hash(items: &[(Vec<u8>, u64, Hash)]) -> Option<Hash> {
    let n = items.len();
    let mut left: Vec<Option<usize>> = vec![None; n];
    let mut right: Vec<Option<usize>> = vec![None; n];
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..n {
        let mut last = None;
        while let Some(&top) = stack.last() {
            if !outranks(items[i].1, &items[i].0, items[top].1, &items[top].0) {
                break;
            }
            last = stack.pop();
        }
        left[i] = last;
        if let Some(&top) = stack.last() {
            right[top] = Some(i);
        }
        stack.push(i);
    }
    let root = *stack.first()?;
    // Post-order without recursion: a node is hashed once both children are.
    let mut hashes: Vec<Option<Hash>> = vec![None; n];
    let mut work = vec![root];
    while let Some(&i) = work.last() {
        let pending: Vec<usize> = [left[i], right[i]].into_iter().flatten().filter(|c| hashes[*c].is_none()).collect();
        if pending.is_empty() {
            work.pop();
            let (key, _, slot_hash) = &items[i];
            let l = left[i].and_then(|c| hashes[c]);
            let r = right[i].and_then(|c| hashes[c]);
            hashes[i] = Some(rows::node_hash(l.as_ref(), key, slot_hash, r.as_ref()));
        } else {
            work.extend(pending);
        }
    }
    hashes[root]
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
