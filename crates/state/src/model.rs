//! The nouns of the entity tree: ids, stamps, collection kinds, storage kinds.
//!
//! Guarantees: [`Stamp`] is a total order (HLC, then author key), so every
//! last-writer-wins decision is the same on every replica; [`child_id`] names
//! a nested collection from its position and type only, so replicas that
//! create "the same" collection concurrently create one entity.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, Hlc, PublicKey};

/// The id of an entity (a node of the state tree).
pub type EntityId = Hash;

/// The id of the root entity, a [`CrdtKind::Map`] of the application's
/// top-level fields. The same in every context.
pub fn root_id() -> EntityId {
    Hash::derive("weft state root", &[])
}

/// The id of the collection created at `key` of `parent` with this kind and
/// storage.
///
/// Kind and storage are part of the id: two replicas that concurrently create
/// different kinds of collection under one key create two entities (the key
/// shows the last-writer's), instead of one entity whose kind would depend on
/// delivery order.
pub fn child_id(parent: &EntityId, key: &[u8], kind: CrdtKind, storage: &StorageKind) -> EntityId {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes();
    let storage_bytes = weft_primitives::encoding::encode(storage);
    Hash::derive("weft state child", &[parent.as_bytes(), &key_len, key, &[kind.tag()], &storage_bytes])
}

/// The total order of writes: hybrid logical time, then author.
///
/// Field order matters: the derived `Ord` compares `hlc` first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Stamp {
    /// When the author wrote it.
    pub hlc: Hlc,
    /// Who wrote it; breaks ties between equal clocks.
    pub author: PublicKey,
}

/// Length of [`Stamp::to_key`].
pub const STAMP_KEY_LEN: usize = 8 + 4 + 32;

impl Stamp {
    /// A stamp from its parts.
    pub const fn new(hlc: Hlc, author: PublicKey) -> Stamp {
        Stamp { hlc, author }
    }

    /// Big-endian bytes whose bytewise order is the stamp order (vector
    /// element keys sort by the stamp of their push).
    pub fn to_key(&self) -> [u8; STAMP_KEY_LEN] {
        let mut out = [0u8; STAMP_KEY_LEN];
        out[..8].copy_from_slice(&self.hlc.wall_ms.to_be_bytes());
        out[8..12].copy_from_slice(&self.hlc.counter.to_be_bytes());
        out[12..].copy_from_slice(&self.author.0);
        out
    }

    /// The inverse of [`Stamp::to_key`].
    pub fn from_key(bytes: &[u8]) -> Option<Stamp> {
        if bytes.len() != STAMP_KEY_LEN {
            return None;
        }
        let mut wall = [0u8; 8];
        wall.copy_from_slice(&bytes[..8]);
        let mut counter = [0u8; 4];
        counter.copy_from_slice(&bytes[8..12]);
        let mut author = [0u8; 32];
        author.copy_from_slice(&bytes[12..]);
        Some(Stamp::new(Hlc::new(u64::from_be_bytes(wall), u32::from_be_bytes(counter)), PublicKey(author)))
    }
}

/// What kind of CRDT an entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum CrdtKind {
    /// One value; the write with the greatest stamp wins.
    LwwRegister,
    /// A grow-only counter: per-author totals, merged by max.
    GCounter,
    /// An increment/decrement counter: per-author (up, down) totals.
    PnCounter,
    /// Keys to plain bytes or nested collections.
    Map,
    /// A set of byte strings (add/remove, last writer wins per element).
    Set,
    /// A list of byte strings, ordered by the stamp of each push.
    Vector,
    /// Collaborative text (RGA, see `weft-text`).
    Text,
}

impl CrdtKind {
    /// A stable one-byte tag, used in ids and hashes.
    pub const fn tag(self) -> u8 {
        match self {
            CrdtKind::LwwRegister => 0,
            CrdtKind::GCounter => 1,
            CrdtKind::PnCounter => 2,
            CrdtKind::Map => 3,
            CrdtKind::Set => 4,
            CrdtKind::Vector => 5,
            CrdtKind::Text => 6,
        }
    }

    /// True for the kinds whose children live in a Merkle search tree.
    pub const fn has_children(self) -> bool {
        matches!(self, CrdtKind::Map | CrdtKind::Set | CrdtKind::Vector)
    }
}

/// Who may write an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum StorageKind {
    /// Any member.
    Public,
    /// Only `owner`, and every action on it carries the owner's signature.
    UserOwned {
        /// The only key allowed to write.
        owner: PublicKey,
    },
    /// Write-once, content-addressed map: the key of every entry is the
    /// BLAKE3 hash of its value; entries can never change or go away.
    Frozen,
}

/// A visible value of a map entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Plain bytes (an LWW register leaf).
    Bytes(Vec<u8>),
    /// A nested collection.
    Collection {
        /// Its id, to address it in later calls.
        id: EntityId,
        /// Its kind.
        kind: CrdtKind,
    },
}

/// One page of a collection listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The visible items, in key order.
    pub items: Vec<T>,
    /// When `Some`, more rows may follow: pass it as `after` to continue.
    /// (A page can hold fewer than `limit` items when it skipped many
    /// removed entries; it never scans more than a bounded number of rows.)
    pub next_after: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_key_order_is_stamp_order() {
        let a = Stamp::new(Hlc::new(5, 9), PublicKey([9; 32]));
        let b = Stamp::new(Hlc::new(6, 0), PublicKey([0; 32]));
        let c = Stamp::new(Hlc::new(6, 0), PublicKey([1; 32]));
        assert!(a < b && b < c);
        assert!(a.to_key() < b.to_key() && b.to_key() < c.to_key());
        assert_eq!(Stamp::from_key(&c.to_key()), Some(c));
        assert_eq!(Stamp::from_key(&[0; 3]), None);
    }

    #[test]
    fn child_id_depends_on_kind_and_storage() {
        let root = root_id();
        let map = child_id(&root, b"k", CrdtKind::Map, &StorageKind::Public);
        assert_eq!(map, child_id(&root, b"k", CrdtKind::Map, &StorageKind::Public));
        assert_ne!(map, child_id(&root, b"k", CrdtKind::Set, &StorageKind::Public));
        assert_ne!(map, child_id(&root, b"k", CrdtKind::Map, &StorageKind::Frozen));
        assert_ne!(map, child_id(&root, b"k2", CrdtKind::Map, &StorageKind::Public));
    }
}
