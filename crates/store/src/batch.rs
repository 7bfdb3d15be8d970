//! [`WriteBatch`]: writes as plain data, to hand to a
//! [`crate::GroupCommitter`] (or [`crate::WriteTxn::apply`]).
//!
//! Values are encoded when they are added, so applying a batch cannot fail
//! on the caller's data: only the storage engine can fail a commit.

use weft_primitives::Hash;
use weft_primitives::kv::WriteSet;

use borsh::BorshSerialize;

use crate::key::StoreKey;
use crate::state_view::{encode_state_value, scoped_key};
use crate::table::{STATE, Table};

/// The largest batch [`crate::GroupCommitter::submit`] accepts, in key and
/// value bytes: 64 MiB, far above one delta (1 MiB) and its state writes,
/// so that one batch cannot hold the commit thread's memory hostage.
pub const WRITE_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One encoded write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BatchOp {
    pub(crate) table: &'static str,
    pub(crate) key: Vec<u8>,
    /// `None` deletes the key.
    pub(crate) value: Option<Vec<u8>>,
}

/// Puts and deletes across any tables, committed atomically as one unit.
/// Writes apply in the order they were added; the last write to a key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    bytes: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    fn push(&mut self, table: &'static str, key: Vec<u8>, value: Option<Vec<u8>>) -> &mut WriteBatch {
        self.bytes = self.bytes.saturating_add(key.len() + value.as_ref().map_or(0, Vec::len));
        self.ops.push(BatchOp { table, key, value });
        self
    }

    /// Set `key` in `table` to `value`.
    pub fn put<K, V>(&mut self, table: Table<K, V>, key: &K, value: &V) -> &mut WriteBatch
    where
        K: StoreKey + ?Sized,
        V: BorshSerialize,
    {
        self.push(table.name(), key.key_bytes(), Some(table.encode_value(value)))
    }

    /// Remove `key` from `table`.
    pub fn delete<K, V>(&mut self, table: Table<K, V>, key: &K) -> &mut WriteBatch
    where
        K: StoreKey + ?Sized,
    {
        self.push(table.name(), key.key_bytes(), None)
    }

    /// Apply the CRDT engine's `writes` to `context`'s [`STATE`] keys.
    pub fn apply_state_writes(&mut self, context: Hash, writes: WriteSet) -> &mut WriteBatch {
        self.ops.reserve(writes.len());
        for (state_key, value) in writes.into_ops() {
            let value = value.map(|value| encode_state_value(&value));
            self.push(STATE.name(), scoped_key(context, &state_key), value);
        }
        self
    }

    /// Append every write of `other` after this batch's.
    pub fn extend(&mut self, other: WriteBatch) -> &mut WriteBatch {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.ops.extend(other.ops);
        self
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total encoded key and value bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes
    }

    pub(crate) fn ops(&self) -> impl Iterator<Item = &BatchOp> {
        self.ops.iter()
    }
}
