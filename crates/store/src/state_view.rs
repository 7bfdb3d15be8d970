//! The state port: one context's slice of the [`STATE`] table seen as the
//! ordered keyspace [`KvRead`] that the pure CRDT engine reads.
//!
//! Keys the engine sees are the state keys without the context prefix; the
//! view adds and strips the 32-byte context id, so a view can never read
//! another context's keys. Values are exactly the bytes the engine wrote.
//!
//! `scan` follows the [`KvRead`] contract literally: keys starting with the
//! prefix, strictly after `after`, even when `after` sorts below the prefix.
//! Store failures map to [`KvError::Backend`] (including a scan that would
//! exceed [`crate::SCAN_PAGE_MAX`]); undecodable values to [`KvError::Corrupt`].

use std::ops::Bound;

use redb::ReadableTable;
use weft_primitives::Hash;
use weft_primitives::kv::{KvError, KvPair, KvRead};

use crate::error::StoreError;
use crate::table::STATE;
use crate::txn::{get_raw, prefix_start, scan_raw};

/// One context's [`STATE`] keys over an open redb table: a snapshot's
/// ([`ReadStateView`]) or a write transaction's ([`WriteStateView`]).
pub struct StateView<T> {
    table: T,
    context: Hash,
}

/// A context's state as of a [`crate::ReadTxn`] snapshot.
pub type ReadStateView = StateView<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>;

/// A context's state inside a [`crate::WriteTxn`], including its uncommitted writes.
pub type WriteStateView<'txn> = StateView<redb::Table<'txn, &'static [u8], &'static [u8]>>;

impl<T> StateView<T> {
    pub(crate) fn new(table: T, context: Hash) -> StateView<T> {
        StateView { table, context }
    }

    /// The context this view reads.
    pub fn context(&self) -> Hash {
        self.context
    }
}

/// The stored key of `state_key` in `context`.
pub(crate) fn scoped_key(context: Hash, state_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(32 + state_key.len());
    key.extend_from_slice(context.as_bytes());
    key.extend_from_slice(state_key);
    key
}

/// The stored form of a state value: borsh of the bytes, like every table's
/// values, so a truncated value is detected on read.
pub(crate) fn encode_state_value(value: &[u8]) -> Vec<u8> {
    weft_primitives::encoding::encode(&value)
}

fn kv_error(error: StoreError) -> KvError {
    match error {
        StoreError::Corrupt { table, key, reason } => {
            KvError::Corrupt { key, reason: format!("table {table}: {reason}") }
        }
        other => KvError::Backend(other.to_string()),
    }
}

impl<T> StateView<T>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    fn read(&self, state_key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = scoped_key(self.context, state_key);
        get_raw(&self.table, &key)?.map(|value| STATE.decode_value(&key, &value)).transpose()
    }

    fn read_page(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, StoreError> {
        let prefix = scoped_key(self.context, prefix);
        let after = after.map(|after| scoped_key(self.context, after));
        let start = prefix_start(&prefix, after.as_deref());
        let raw = scan_raw(&self.table, STATE.name(), &prefix, start, Bound::Unbounded, limit)?;
        raw.into_iter()
            .map(|(key, value)| {
                let value = STATE.decode_value(&key, &value)?;
                // Every key in the page starts with the context prefix (scan_raw checks it).
                let state_key = key.get(32..).map(<[u8]>::to_vec).unwrap_or_default();
                Ok((state_key, value))
            })
            .collect()
    }
}

impl<T> KvRead for StateView<T>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.read(key).map_err(kv_error)
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError> {
        self.read_page(prefix, after, limit).map_err(kv_error)
    }
}
