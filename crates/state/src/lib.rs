//! The native CRDT entity tree of one context, with Merkle hashes.
//!
//! Pure logic, no I/O: state is read through [`KvRead`](weft_primitives::kv::KvRead)
//! (one context's ordered keyspace) and every change comes back as a
//! [`WriteSet`](weft_primitives::kv::WriteSet) that the caller commits
//! atomically with the delta row and the heads.
//!
//! # Model
//!
//! The state is a tree of *entities*. The root (id [`root_id`]) is a map of
//! the application's top-level fields. Collections nest: a map value is plain
//! bytes (an LWW register leaf) or a nested collection of any
//! [`CrdtKind`] — LWW register, G/PN counter, map, set, vector, text. A nested
//! collection's id is [`child_id`]`(parent, key, kind, storage)`, so every
//! replica names the same child the same way. Each entity has a
//! [`StorageKind`]: public; user-owned (only the owner writes, every action
//! signed by the owner and verified on apply, local and remote); frozen
//! (write-once, content-addressed map: key = `Hash::of(value)`).
//!
//! Local writes go through a [`StateTxn`], whose [`StateTxn::commit`] yields
//! the [`Action`]s (the delta payload), the writes and the new root hash.
//! Remote deltas are merged by [`apply_actions`], without WASM.
//!
//! # Merge rules
//!
//! Every write carries a [`Stamp`] `(HLC, author)`, a total order. A child
//! slot keeps its greatest write and, separately, its greatest remove stamp;
//! **an entry is visible iff its latest write's stamp is greater than its
//! latest remove's stamp**. Both are max-merged, so the outcome does not
//! depend on delivery order: a remove is never undone by a concurrent *older*
//! update, and a *newer* write (insert, or re-create of a collection) brings
//! the key back. A removed key that holds a nested collection hides it but
//! keeps it: ops inside it keep applying to its hidden contents (so replicas'
//! hashes converge whatever order the remove and the ops arrive in), and a
//! later create with a greater stamp shows it again with its contents.
//! Registers keep the greatest `(stamp, value)`; counters keep each author's
//! greatest totals; vector elements are ordered by the stamp of their push;
//! text is `weft-text`'s sequence CRDT. Details in the `apply` module.
//!
//! # Merkle hashes
//!
//! An entity's full hash covers its kind, storage, stamps, own bytes and its
//! children's hashes; the root entity's full hash is the context's root hash.
//! Each collection indexes its children with a persisted Merkle search tree
//! (fanout about 16; a key's level comes from a hash of the key) whose shape
//! depends only on the set of keys, so equal content gives equal rows and
//! equal hashes (replicas can diff top-down), and changing one child of `n`
//! rewrites its child row and about `log16 n` tree nodes: 5 rows for an
//! insert into a nested map of a thousand entries, 8 at a million. The tree's
//! top node is stored in the collection's index row. The row layout is in
//! the `rows` module, the node encoding in the `node` module.
//! [`recompute_root_hash`] recomputes everything from scratch and checks the
//! stored trees have the canonical shape (the feature `slow-reference` runs
//! it after every commit and apply).

mod action;
mod apply;
mod digest;
mod error;
mod layered;
mod model;
mod node;
mod overlay;
mod reference;
mod rows;
mod text;
mod text_cache;
mod tree;
mod txn;

pub use action::{ACTION_SIGNATURE_DOMAIN, Action, Op};
pub use apply::{Applied, apply_actions, entity_index, root_hash};
pub use error::StateError;
pub use layered::LayeredKv;
pub use model::{CrdtKind, EntityId, Page, STAMP_KEY_LEN, Stamp, StorageKind, Value, child_id, root_id};
pub use node::{Link, TreeNode};
pub use reference::{Materialized, materialize, recompute_root_hash};
pub use rows::{
    Index, ParentLink, child_key, child_prefix, entry_key, index_key, node_key, node_prefix, state_prefix,
    text_chunk_key, text_node_key, tree_node_key, tree_prefix,
};
pub use text_cache::{
    TEXT_CACHE_ITEMS_MAX, cached_text_items, cached_texts, forget_cached_texts, set_text_cache_items_max,
    text_cache_items_max,
};
pub use txn::{Commit, StateTxn};
pub use weft_text::device_lane;

/// The longest map key or set element, in bytes.
pub const KEY_BYTES_MAX: usize = 4 * 1024;

/// The largest plain value, in bytes (a delta's plaintext limit).
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// The deepest nesting of collections (root = 0).
pub const NESTING_DEPTH_MAX: u32 = 32;

/// The highest level of a key in a collection's Merkle search tree, and so
/// the most nodes on a path from its top node down (plus one). A key's level
/// is the number of leading zero 4-bit digits of a 64-bit hash of it, capped
/// here; a million children reach about level 5.
pub const TREE_LEVEL_MAX: u8 = 16;

/// The most actions in one transaction or one remote batch.
pub const ACTIONS_PER_BATCH_MAX: usize = 65_536;

/// The most items one listing call returns.
pub const LIST_LIMIT_MAX: usize = 1024;

/// The most rows one listing call scans (it skips removed entries, so a
/// page can come back short with a continuation cursor).
pub const SCAN_ROWS_MAX: usize = 4096;
