//! The persisted rows of the state tree, their key layout, and their hashes.
//!
//! Key layout (every state key starts with the namespace byte `b'S'`, so
//! state rows can share a keyspace with other rows of the context):
//!
//! | key | value |
//! |---|---|
//! | `S i <entity id:32>` | [`Index`]: position, kind, storage, stamps, hashes, and the top node of its children tree |
//! | `S e <entity id:32>` | the entity's own bytes: register value, counter totals; a text's top node hashes |
//! | `S g <entity id:32> <node hash:32>` | a node of a text's chunk tree: its children's hashes in order |
//! | `S c <entity id:32> <chunk hash:32>` | a text's chunk: the canonical encoding of its items |
//! | `S n <entity id:32> <child key>` | one child slot: LWW write, remove stamp, ids of nested entities |
//! | `S t <entity id:32> <level:1> 0` | the tree node of that level whose range starts at the lowest key |
//! | `S t <entity id:32> <level:1> 1 <key>` | the tree node of that level whose range starts just after `key` |
//!
//! Child rows sort by child key, so listing a collection in key order is a
//! prefix scan, and a child is found by one `get` without walking the tree.
//! The children of a collection are indexed by a Merkle search tree of
//! fanout about 16 (the `node` module): a change to one child rewrites its
//! child row and the about `log16 n` tree nodes above it; the top node lives
//! in the entity's index row, which every change rewrites anyway. A tree
//! node is named by its level and the lower end of its key range, both fixed
//! by the set of keys, so the rows depend only on the content (two replicas
//! with the same content hold byte-identical state rows). The slot of a
//! nested collection does not repeat the collection's full hash (it is read
//! from the collection's index row), so a change inside a nested collection
//! does not rewrite the parent's child row.
//!
//! Hashes (all BLAKE3 in derive mode, one context string per kind of hash):
//! - slot hash: the child key, the slot's LWW winner and remove stamp, and
//!   its nested entities' ids and full hashes;
//! - tree node hash: its level, its key count, the hash of its keys' slot
//!   hashes (kept in the node, so a node whose keys did not change rehashes
//!   only its links), which gaps hold a subtree, and those subtrees' hashes;
//! - own hash: `H(kind, storage, created, updated, entry hash)`;
//! - full hash: `H(id, own hash, top tree node hash)` — the root entity's is the root hash.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, PublicKey, encoding};

use crate::digest::{self, digest};
use crate::model::{CrdtKind, EntityId, Stamp, StorageKind};
use crate::node::TreeNode;

const NAMESPACE: u8 = b'S';
const ROW_INDEX: u8 = b'i';
const ROW_ENTRY: u8 = b'e';
const ROW_CHILD: u8 = b'n';
const ROW_TREE: u8 = b't';
const ROW_TEXT_NODE: u8 = b'g';
const ROW_TEXT_CHUNK: u8 = b'c';
/// Bytes before the child key in a child row key.
pub(crate) const CHILD_PREFIX_LEN: usize = 2 + 32;
/// Bytes of a tree node row key before the bound key: prefix, level, tag.
const TREE_BOUND_AT: usize = 2 + 32 + 2;

/// The key of an entity's index row.
pub fn index_key(id: &EntityId) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&[NAMESPACE, ROW_INDEX]);
    key.extend_from_slice(id.as_bytes());
    key
}

/// [`index_key`] without allocating.
pub(crate) fn index_key_array(id: &EntityId) -> [u8; 34] {
    let mut key = [0u8; 34];
    key[..2].copy_from_slice(&[NAMESPACE, ROW_INDEX]);
    key[2..].copy_from_slice(id.as_bytes());
    key
}

/// The key of an entity's entry row.
pub fn entry_key(id: &EntityId) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&[NAMESPACE, ROW_ENTRY]);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The key of node `node` of text `id`'s chunk tree.
pub fn text_node_key(id: &EntityId, node: &Hash) -> Vec<u8> {
    hashed_row_key(ROW_TEXT_NODE, id, node)
}

/// The key of chunk `chunk` of text `id`.
pub fn text_chunk_key(id: &EntityId, chunk: &Hash) -> Vec<u8> {
    hashed_row_key(ROW_TEXT_CHUNK, id, chunk)
}

fn hashed_row_key(tag: u8, id: &EntityId, hash: &Hash) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + 32 + 32);
    key.extend_from_slice(&[NAMESPACE, tag]);
    key.extend_from_slice(id.as_bytes());
    key.extend_from_slice(hash.as_bytes());
    key
}

/// The prefix of every child row of an entity.
pub fn child_prefix(id: &EntityId) -> Vec<u8> {
    child_key(id, &[])
}

/// The key of the row of child `child` of entity `id`.
pub fn child_key(id: &EntityId, child: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(CHILD_PREFIX_LEN + child.len());
    write_child_key(&mut key, id, child);
    key
}

/// Former name of [`child_prefix`].
pub fn node_prefix(id: &EntityId) -> Vec<u8> {
    child_prefix(id)
}

/// Former name of [`child_key`].
pub fn node_key(id: &EntityId, child: &[u8]) -> Vec<u8> {
    child_key(id, child)
}

/// [`child_key`] into a reused buffer.
pub(crate) fn write_child_key(out: &mut Vec<u8>, id: &EntityId, child: &[u8]) {
    out.clear();
    out.reserve(CHILD_PREFIX_LEN + child.len());
    out.extend_from_slice(&[NAMESPACE, ROW_CHILD]);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(child);
}

/// The prefix of every tree node row of an entity (the top node is in the
/// index row, not under this prefix).
pub fn tree_prefix(id: &EntityId) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&[NAMESPACE, ROW_TREE]);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The key of the tree node of entity `id` at `level` whose range starts
/// just after `bound` (`None`: at the lowest key).
pub fn tree_node_key(id: &EntityId, level: u8, bound: Option<&[u8]>) -> Vec<u8> {
    let mut key = Vec::new();
    write_tree_node_key(&mut key, id, level, bound);
    key
}

/// [`tree_node_key`] into a reused buffer.
pub(crate) fn write_tree_node_key(out: &mut Vec<u8>, id: &EntityId, level: u8, bound: Option<&[u8]>) {
    out.clear();
    out.reserve(TREE_BOUND_AT + bound.map_or(0, <[u8]>::len));
    out.extend_from_slice(&[NAMESPACE, ROW_TREE]);
    out.extend_from_slice(id.as_bytes());
    match bound {
        None => out.extend_from_slice(&[level, 0]),
        Some(bound) => {
            out.extend_from_slice(&[level, 1]);
            out.extend_from_slice(bound);
        }
    }
}

/// The lower bound named by a tree node row key (`None`: the lowest key).
pub(crate) fn tree_node_bound(row: &[u8]) -> Option<&[u8]> {
    match row.get(TREE_BOUND_AT - 1) {
        Some(1) => row.get(TREE_BOUND_AT..),
        _ => None,
    }
}

/// The prefix shared by every state row.
pub fn state_prefix() -> Vec<u8> {
    vec![NAMESPACE]
}

/// Where an entity hangs in its parent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ParentLink {
    /// The parent map.
    pub id: EntityId,
    /// The key in the parent.
    pub key: Vec<u8>,
}

/// An entity's metadata row.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Index {
    /// The entity's id.
    pub id: EntityId,
    /// Where it hangs (`None` for the root).
    pub parent: Option<ParentLink>,
    /// Nesting depth (root 0).
    pub depth: u32,
    /// Its CRDT kind.
    pub kind: CrdtKind,
    /// Who may write it.
    pub storage: StorageKind,
    /// The smallest stamp of the actions that created it.
    pub created: Stamp,
    /// The greatest stamp of the actions applied to it.
    pub updated: Stamp,
    /// Hash of its own bytes (entry row).
    pub entry_hash: Hash,
    /// Hash of kind, storage, stamps and entry.
    pub own_hash: Hash,
    /// Hash of own hash and children: the Merkle hash of the subtree.
    pub full_hash: Hash,
    /// The top node of its children tree (kept here because every change
    /// to a child rewrites both this row and that node).
    pub tree: Option<TreeNode>,
}

impl Index {
    /// The index of a brand-new entity, hashes computed.
    pub(crate) fn fresh(
        id: EntityId,
        parent: Option<ParentLink>,
        depth: u32,
        kind: CrdtKind,
        storage: StorageKind,
        created: Stamp,
    ) -> Index {
        let entry_hash = empty_entry_hash(kind);
        let own_hash = own_hash(kind, &storage, &created, &created, &entry_hash);
        let full_hash = full_hash(&id, &own_hash, None);
        Index {
            id,
            parent,
            depth,
            kind,
            storage,
            created,
            updated: created,
            entry_hash,
            own_hash,
            full_hash,
            tree: None,
        }
    }

    /// Decode an index row (its canonical encoding), reusing `bytes` for the
    /// top tree node instead of copying it out.
    pub(crate) fn from_row(mut bytes: Vec<u8>) -> Result<Index, String> {
        let mut reader: &[u8] = &bytes;
        let read = &mut reader;
        let error = |e: std::io::Error| e.to_string();
        let mut index = Index {
            id: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            parent: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            depth: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            kind: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            storage: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            created: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            updated: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            entry_hash: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            own_hash: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            full_hash: BorshDeserialize::deserialize_reader(read).map_err(error)?,
            tree: None,
        };
        // `Option<TreeNode>`: a tag, then the node's length-prefixed bytes.
        match reader {
            [0] => Ok(index),
            [1, len @ ..] if len.len() >= 4 => {
                let node_len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                if len.len() - 4 != node_len {
                    return Err("index row: tree node length disagrees with the row".into());
                }
                let node_at = bytes.len() - node_len;
                bytes.drain(..node_at);
                index.tree = Some(TreeNode::from_bytes(bytes)?);
                Ok(index)
            }
            _ => Err("index row: malformed or trailing bytes after the fields".into()),
        }
    }

    /// The root entity before anything was written.
    pub(crate) fn empty_root() -> Index {
        Index::fresh(crate::model::root_id(), None, 0, CrdtKind::Map, StorageKind::Public, Stamp::default())
    }
}

/// The current value of a child slot: what its latest write put there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub(crate) enum SlotValue {
    /// Plain bytes (map value, vector element).
    Bytes(Vec<u8>),
    /// A nested collection.
    Nested {
        /// Its id.
        id: EntityId,
        /// Its kind.
        kind: CrdtKind,
    },
    /// Set membership.
    Present,
}

/// The last-writer-wins write of a slot. Ordered by stamp, then value, so
/// even a (misbehaving) reuse of a stamp resolves the same everywhere.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub(crate) struct Winner {
    pub(crate) stamp: Stamp,
    pub(crate) value: SlotValue,
}

/// One child of a collection: an LWW write, a remove tombstone, and every
/// nested entity created at this key (kept even when hidden, so their
/// contents stay covered by the Merkle hash: the slot hash covers their
/// full hashes, read from their index rows).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Slot {
    pub(crate) winner: Option<Winner>,
    pub(crate) removed: Option<Stamp>,
    /// Sorted.
    pub(crate) nested: Vec<EntityId>,
}

impl Slot {
    /// The visibility rule: the latest write is newer than the latest remove.
    pub(crate) fn is_visible(&self) -> bool {
        match (&self.winner, &self.removed) {
            (Some(winner), Some(removed)) => winner.stamp > *removed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The visible value, if any.
    pub(crate) fn visible_value(&self) -> Option<&SlotValue> {
        if self.is_visible() { self.winner.as_ref().map(|w| &w.value) } else { None }
    }

    /// Merge a write: the greater (stamp, value) wins.
    pub(crate) fn merge_write(&mut self, write: Winner) {
        if self.winner.as_ref().is_none_or(|current| write > *current) {
            self.winner = Some(write);
        }
    }

    /// Merge a write-once write: the smaller (stamp, value) wins, so the
    /// first write stands whatever the delivery order.
    pub(crate) fn merge_first_write(&mut self, write: Winner) {
        if self.winner.as_ref().is_none_or(|current| write < *current) {
            self.winner = Some(write);
        }
    }

    /// Merge a remove: the greatest remove stamp is kept.
    pub(crate) fn merge_remove(&mut self, stamp: Stamp) {
        if self.removed.is_none_or(|current| stamp > current) {
            self.removed = Some(stamp);
        }
    }

    /// Record nested entity `id` if not yet known.
    pub(crate) fn add_nested(&mut self, id: EntityId) {
        if let Err(at) = self.nested.binary_search(&id) {
            self.nested.insert(at, id);
        }
    }

    /// The length of the plain bytes it holds (to size its encoding).
    pub(crate) fn value_len(&self) -> usize {
        let value = match self.winner.as_ref().map(|w| &w.value) {
            Some(SlotValue::Bytes(bytes)) => bytes.len(),
            _ => 0,
        };
        value + 32 * self.nested.len()
    }

    /// Whether nested entity `id` was created at this slot.
    pub(crate) fn lists_nested(&self, id: &EntityId) -> bool {
        self.nested.binary_search(id).is_ok()
    }

    /// The slot's Merkle hash at child key `key`, given the full hashes of
    /// its nested entities (in the order of `nested`).
    pub(crate) fn hash(&self, key: &[u8], nested_full_hashes: &[Hash]) -> Hash {
        digest(&digest::SLOT, |input| {
            input.push(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
            input.push(key);
            // Gathering the canonical encoding cannot fail.
            let _ = (&self.winner, &self.removed).serialize(input);
            for (id, full_hash) in self.nested.iter().zip(nested_full_hashes) {
                input.push(id.as_bytes());
                input.push(full_hash.as_bytes());
            }
        })
    }
}

/// The hash of an entity's own data.
pub(crate) fn own_hash(
    kind: CrdtKind,
    storage: &StorageKind,
    created: &Stamp,
    updated: &Stamp,
    entry_hash: &Hash,
) -> Hash {
    digest(&digest::OWN, |input| {
        input.push(&[kind.tag()]);
        // Gathering the canonical encoding cannot fail.
        let _ = (storage, created, updated).serialize(input);
        input.push(entry_hash.as_bytes());
    })
}

/// The Merkle hash of an entity and everything below it.
pub(crate) fn full_hash(id: &EntityId, own_hash: &Hash, tree_hash: Option<&Hash>) -> Hash {
    digest(&digest::ENTITY, |input| {
        input.push(id.as_bytes());
        input.push(own_hash.as_bytes());
        input.push(tree_hash.unwrap_or(&Hash::ZERO).as_bytes());
    })
}

/// The hash of an entry row's bytes (registers and counters).
pub(crate) fn entry_bytes_hash(bytes: &[u8]) -> Hash {
    digest::digest_bytes(&digest::ENTRY, bytes)
}

/// Per-author totals of a counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Totals {
    pub(crate) up: u64,
    pub(crate) down: u64,
}

/// A register's entry: the winning (stamp, value).
pub(crate) type RegisterEntry = Option<(Stamp, Vec<u8>)>;
/// A counter's entry: totals by author.
pub(crate) type CounterEntry = BTreeMap<PublicKey, Totals>;

/// The entry hash of an entity with nothing written yet.
pub(crate) fn empty_entry_hash(kind: CrdtKind) -> Hash {
    match kind {
        CrdtKind::LwwRegister => entry_bytes_hash(&encoding::encode(&RegisterEntry::None)),
        CrdtKind::GCounter | CrdtKind::PnCounter => entry_bytes_hash(&encoding::encode(&CounterEntry::new())),
        CrdtKind::Text => crate::text::empty_text_hash(),
        CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector => Hash::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use weft_primitives::{Hlc, PublicKey};

    use super::*;
    use crate::node::Link;

    fn index(tree: Option<TreeNode>) -> Index {
        let stamp = Stamp::new(Hlc::new(5, 1), PublicKey([3; 32]));
        let parent = ParentLink { id: Hash([1; 32]), key: b"key".to_vec() };
        let mut index = Index::fresh(
            Hash([2; 32]),
            Some(parent),
            1,
            CrdtKind::Map,
            StorageKind::UserOwned { owner: PublicKey([4; 32]) },
            stamp,
        );
        index.tree = tree;
        index
    }

    #[test]
    fn index_row_decoder_agrees_with_the_derived_one() {
        let link = Link { level: 0, hash: Hash([6; 32]), live: 2, stale: false };
        let mut node = TreeNode::single(1, b"k", &Hash([5; 32]), true, Some(link), None);
        let _ = node.hash();
        for index in [index(None), index(Some(node))] {
            let bytes = encoding::encode(&index);
            assert_eq!(Index::from_row(bytes.clone()), Ok(index.clone()));
            assert_eq!(encoding::decode::<Index>(&bytes), Ok(index));
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Index::from_row(longer.clone()).is_err());
            assert!(encoding::decode::<Index>(&longer).is_err());
            for cut in 0..bytes.len() {
                assert!(Index::from_row(bytes[..cut].to_vec()).is_err());
            }
        }
    }
}
