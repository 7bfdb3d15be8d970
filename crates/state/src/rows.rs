//! The persisted rows of the state tree, their key layout, and their hashes.
//!
//! Key layout (every state key starts with the namespace byte `b'S'`, so
//! state rows can share a keyspace with other rows of the context):
//!
//! | key | value |
//! |---|---|
//! | `S i <entity id:32>` | [`Index`]: position, kind, storage, stamps, hashes, treap root |
//! | `S e <entity id:32>` | the entity's own bytes: register value, counter totals, encoded text |
//! | `S n <entity id:32> <child key>` | one node of the entity's Merkle treap of children |
//!
//! Node rows sort by child key, so listing a collection in key order is a
//! prefix scan, and a child is found by one `get` without walking the tree.
//!
//! Hashes (all BLAKE3 in derive mode, one context string per kind of hash):
//! - slot hash: the slot's LWW winner, remove stamp and nested entities' full hashes;
//! - node hash: `H(left node hash, key, slot hash, right node hash)`;
//! - own hash: `H(kind, storage, created, updated, entry hash)`;
//! - full hash: `H(id, own hash, treap root hash)` — the root entity's is the root hash.
//!
//! The treap is a BST by key and a max-heap by `(priority(key), key)`, so
//! its shape, and with it every hash, depends only on the set of keys.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, PublicKey, encoding};

use crate::model::{CrdtKind, EntityId, Stamp, StorageKind};

const NAMESPACE: u8 = b'S';
const ROW_INDEX: u8 = b'i';
const ROW_ENTRY: u8 = b'e';
const ROW_NODE: u8 = b'n';
/// Bytes before the child key in a node row key.
pub(crate) const NODE_PREFIX_LEN: usize = 2 + 32;

/// The key of an entity's index row.
pub fn index_key(id: &EntityId) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&[NAMESPACE, ROW_INDEX]);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The key of an entity's entry row.
pub fn entry_key(id: &EntityId) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&[NAMESPACE, ROW_ENTRY]);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every treap node row of an entity.
pub fn node_prefix(id: &EntityId) -> Vec<u8> {
    node_key(id, &[])
}

/// The key of the treap node for child `child` of entity `id`.
pub fn node_key(id: &EntityId, child: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(NODE_PREFIX_LEN + child.len());
    write_node_key(&mut key, id, child);
    key
}

/// [`node_key`] into a reused buffer.
pub(crate) fn write_node_key(out: &mut Vec<u8>, id: &EntityId, child: &[u8]) {
    out.clear();
    out.extend_from_slice(&[NAMESPACE, ROW_NODE]);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(child);
}

/// The prefix shared by every state row.
pub fn state_prefix() -> Vec<u8> {
    vec![NAMESPACE]
}

/// A hash domain: BLAKE3 in derive-key mode with its context key computed
/// once (the same digests as `Hash::derive(context, ..)`, one compression
/// cheaper per hash — these run once per treap node on every write path).
type Domain = LazyLock<blake3::Hasher>;

static SLOT_DOMAIN: Domain = LazyLock::new(|| blake3::Hasher::new_derive_key("weft state slot"));
static NODE_DOMAIN: Domain = LazyLock::new(|| blake3::Hasher::new_derive_key("weft state treap node"));
static PRIORITY_DOMAIN: Domain = LazyLock::new(|| blake3::Hasher::new_derive_key("weft state treap priority"));
static OWN_DOMAIN: Domain = LazyLock::new(|| blake3::Hasher::new_derive_key("weft state own"));
static ENTITY_DOMAIN: Domain = LazyLock::new(|| blake3::Hasher::new_derive_key("weft state entity"));
static ENTRY_DOMAIN: Domain = LazyLock::new(|| blake3::Hasher::new_derive_key("weft state entry"));

fn derive(domain: &Domain, parts: &[&[u8]]) -> Hash {
    let mut hasher = (**domain).clone();
    for part in parts {
        hasher.update(part);
    }
    Hash(*hasher.finalize().as_bytes())
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
    /// The root of its children treap.
    pub tree_root: Option<Link>,
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
            tree_root: None,
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

/// A nested entity ever created under a slot, with its current full hash.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct NestedRef {
    pub(crate) id: EntityId,
    pub(crate) full_hash: Hash,
}

/// One child of a collection: an LWW write, a remove tombstone, and every
/// nested entity created at this key (kept even when hidden, so their
/// contents stay covered by the Merkle hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Slot {
    pub(crate) winner: Option<Winner>,
    pub(crate) removed: Option<Stamp>,
    /// Sorted by id.
    pub(crate) nested: Vec<NestedRef>,
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

    /// 1 when visible, for live counts.
    pub(crate) fn live(&self) -> u64 {
        u64::from(self.is_visible())
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

    /// Record nested entity `id` (full hash `full_hash`) if not yet known.
    pub(crate) fn add_nested(&mut self, id: EntityId, full_hash: Hash) {
        if let Err(at) = self.nested.binary_search_by(|r| r.id.cmp(&id)) {
            self.nested.insert(at, NestedRef { id, full_hash });
        }
    }

    /// Update the recorded full hash of nested entity `id`; false if unknown.
    pub(crate) fn set_nested_hash(&mut self, id: &EntityId, full_hash: Hash) -> bool {
        match self.nested.binary_search_by(|r| r.id.cmp(id)) {
            Ok(at) => {
                self.nested[at].full_hash = full_hash;
                true
            }
            Err(_) => false,
        }
    }

    /// The slot's Merkle hash.
    pub(crate) fn hash(&self) -> Hash {
        let head = encoding::encode(&(&self.winner, &self.removed));
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * self.nested.len());
        parts.push(&head);
        for nested in &self.nested {
            parts.push(nested.id.as_bytes());
            parts.push(nested.full_hash.as_bytes());
        }
        derive(&SLOT_DOMAIN, &parts)
    }
}

/// A link to a treap node, carrying what the parent needs about the subtree
/// so that rehashing and counting never read the untouched side of a path.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Link {
    /// The child key of the linked node.
    pub key: Vec<u8>,
    /// Merkle hash of the linked subtree.
    pub hash: Hash,
    /// Visible slots in the linked subtree (map len, vector index lookups).
    pub live: u64,
}

/// One node of a Merkle treap: a child slot plus links to its subtrees.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Node {
    /// `priority(key)`, stored to save a hash per visited node.
    pub(crate) priority: u64,
    pub(crate) left: Option<Link>,
    pub(crate) right: Option<Link>,
    pub(crate) slot: Slot,
    /// `slot.hash()`, so rehashing a path never re-encodes unchanged slots.
    pub(crate) slot_hash: Hash,
}

impl Node {
    /// Visible slots in this node's subtree.
    pub(crate) fn subtree_live(&self) -> u64 {
        let side = |link: &Option<Link>| link.as_ref().map_or(0, |l| l.live);
        side(&self.left).saturating_add(side(&self.right)).saturating_add(self.slot.live())
    }

    /// This subtree's hash, from the hashes in its links.
    pub(crate) fn subtree_hash(&self, key: &[u8]) -> Hash {
        node_hash(self.left.as_ref().map(|l| &l.hash), key, &self.slot_hash, self.right.as_ref().map(|l| &l.hash))
    }
}

/// The heap priority of a treap key.
pub(crate) fn priority(key: &[u8]) -> u64 {
    let digest = derive(&PRIORITY_DOMAIN, &[key]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_be_bytes(first)
}

/// Whether node `(a_priority, a_key)` sits above `(b_priority, b_key)`:
/// higher priority first, ties (astronomically rare) broken by key.
pub(crate) fn outranks(a_priority: u64, a_key: &[u8], b_priority: u64, b_key: &[u8]) -> bool {
    (a_priority, a_key) > (b_priority, b_key)
}

/// The Merkle hash of a treap node.
pub(crate) fn node_hash(left: Option<&Hash>, key: &[u8], slot_hash: &Hash, right: Option<&Hash>) -> Hash {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes();
    derive(
        &NODE_DOMAIN,
        &[
            left.unwrap_or(&Hash::ZERO).as_bytes(),
            &key_len,
            key,
            slot_hash.as_bytes(),
            right.unwrap_or(&Hash::ZERO).as_bytes(),
        ],
    )
}

/// The hash of an entity's own data.
pub(crate) fn own_hash(
    kind: CrdtKind,
    storage: &StorageKind,
    created: &Stamp,
    updated: &Stamp,
    entry_hash: &Hash,
) -> Hash {
    let meta = encoding::encode(&(storage, created, updated));
    derive(&OWN_DOMAIN, &[&[kind.tag()], &meta, entry_hash.as_bytes()])
}

/// The Merkle hash of an entity and everything below it.
pub(crate) fn full_hash(id: &EntityId, own_hash: &Hash, tree_hash: Option<&Hash>) -> Hash {
    derive(&ENTITY_DOMAIN, &[id.as_bytes(), own_hash.as_bytes(), tree_hash.unwrap_or(&Hash::ZERO).as_bytes()])
}

/// The hash of an entry row's bytes (registers and counters).
pub(crate) fn entry_bytes_hash(bytes: &[u8]) -> Hash {
    derive(&ENTRY_DOMAIN, &[bytes])
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
    use super::*;

    #[test]
    fn precomputed_domains_equal_hash_derive() {
        let parts: [&[u8]; 2] = [b"abc", &[7; 100]];
        for (domain, context) in [
            (&SLOT_DOMAIN, "weft state slot"),
            (&NODE_DOMAIN, "weft state treap node"),
            (&PRIORITY_DOMAIN, "weft state treap priority"),
            (&OWN_DOMAIN, "weft state own"),
            (&ENTITY_DOMAIN, "weft state entity"),
            (&ENTRY_DOMAIN, "weft state entry"),
        ] {
            assert_eq!(derive(domain, &parts), Hash::derive(context, &parts));
        }
    }
}
