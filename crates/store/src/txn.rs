//! Read and write transactions with typed access.
//!
//! A [`ReadTxn`] is an MVCC snapshot: it sees exactly the transactions
//! committed before it began, however long it lives (a long-lived snapshot
//! keeps the pages it sees from being reused, so do not hold one forever).
//! A [`WriteTxn`] sees its own uncommitted writes; it is only handed out
//! inside [`crate::Store::write`], which commits it durably or aborts it.
//!
//! Reading a table that does not exist is [`StoreError::MissingTable`] in a
//! snapshot (all built-in tables exist from creation, so this only happens
//! for a table defined elsewhere and never written); a write transaction
//! creates it, empty, instead.

use std::ops::Bound;

use borsh::{BorshDeserialize, BorshSerialize};
use redb::ReadableTable;
use weft_primitives::Hash;
use weft_primitives::kv::WriteSet;

use crate::batch::{BatchOp, WriteBatch};
use crate::error::StoreError;
use crate::key::StoreKey;
use crate::state_view::{ReadStateView, StateView, WriteStateView};
use crate::state_view::{encode_state_value, scoped_key};
use crate::table::{RawTable, STATE, Table};

/// The most entries one scan returns. A scan asked for more than this that
/// would return more is [`StoreError::ScanTooLarge`], never a silently short page.
pub const SCAN_PAGE_MAX: usize = 1 << 20;

/// One stored key and value, raw.
pub(crate) type RawEntry = (Vec<u8>, Vec<u8>);

/// The raw value at `key`, if any.
pub(crate) fn get_raw<T>(table: &T, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let found = table.get(key).map_err(StoreError::backend("reading a key"))?;
    Ok(found.map(|guard| guard.value().to_vec()))
}

/// Up to `limit` raw entries with keys in `(start, end)` that start with
/// `prefix`, in key order.
pub(crate) fn scan_raw<T>(
    table: &T,
    name: &str,
    prefix: &[u8],
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    limit: usize,
) -> Result<Vec<RawEntry>, StoreError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    if limit == 0 || range_is_empty(start, end) {
        return Ok(Vec::new());
    }
    let page_max = limit.min(SCAN_PAGE_MAX);
    let range = table.range::<&[u8]>((start, end)).map_err(StoreError::backend("scanning a table"))?;
    let mut out = Vec::new();
    for entry in range {
        let (key, value) = entry.map_err(StoreError::backend("scanning a table"))?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        if out.len() == page_max {
            if limit > SCAN_PAGE_MAX {
                return Err(StoreError::ScanTooLarge { table: name.to_owned(), max: SCAN_PAGE_MAX });
            }
            break;
        }
        out.push((key.to_vec(), value.value().to_vec()));
    }
    Ok(out)
}

/// Where a prefix scan starts: at the prefix, or just after `after` when
/// that lies inside or beyond the prefix (an `after` below the prefix must
/// not make the scan start outside it and stop at once).
pub(crate) fn prefix_start<'a>(prefix: &'a [u8], after: Option<&'a [u8]>) -> Bound<&'a [u8]> {
    match after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    }
}

/// True when no key can lie in `(start, end)`; redb would reject such a range.
fn range_is_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

fn encode_bound<K: StoreKey + ?Sized>(bound: Bound<&K>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(key) => Bound::Included(key.key_bytes()),
        Bound::Excluded(key) => Bound::Excluded(key.key_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn decode_entries<K, V>(table: Table<K, V>, raw: Vec<RawEntry>) -> Result<Vec<(K::Owned, V)>, StoreError>
where
    K: StoreKey + ?Sized,
    V: BorshDeserialize,
{
    raw.into_iter().map(|(key, value)| Ok((table.decode_key(&key)?, table.decode_value(&key, &value)?))).collect()
}

/// Typed reads shared by both transaction kinds, over any readable redb table.
fn typed_get<T, K, V>(raw: &T, table: Table<K, V>, key: &K) -> Result<Option<V>, StoreError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
    K: StoreKey + ?Sized,
    V: BorshDeserialize,
{
    let key = key.key_bytes();
    get_raw(raw, &key)?.map(|value| table.decode_value(&key, &value)).transpose()
}

fn typed_scan<T, K, V>(
    raw: &T,
    table: Table<K, V>,
    prefix: &[u8],
    after: Option<&K>,
    limit: usize,
) -> Result<Vec<(K::Owned, V)>, StoreError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
    K: StoreKey + ?Sized,
    V: BorshDeserialize,
{
    let after = after.map(|key| key.key_bytes());
    let start = prefix_start(prefix, after.as_deref());
    let entries = scan_raw(raw, table.name(), prefix, start, Bound::Unbounded, limit)?;
    decode_entries(table, entries)
}

fn typed_scan_range<T, K, V>(
    raw: &T,
    table: Table<K, V>,
    start: Bound<&K>,
    end: Bound<&K>,
    limit: usize,
) -> Result<Vec<(K::Owned, V)>, StoreError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
    K: StoreKey + ?Sized,
    V: BorshDeserialize,
{
    let start = encode_bound(start);
    let end = encode_bound(end);
    let entries = scan_raw(raw, table.name(), &[], bound_ref(&start), bound_ref(&end), limit)?;
    decode_entries(table, entries)
}

fn bound_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A consistent read-only snapshot of the whole store.
pub struct ReadTxn {
    txn: redb::ReadTransaction,
}

impl ReadTxn {
    pub(crate) fn new(txn: redb::ReadTransaction) -> ReadTxn {
        ReadTxn { txn }
    }

    fn open<K: ?Sized, V>(
        &self,
        table: Table<K, V>,
    ) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
        self.txn.open_table(table.raw()).map_err(StoreError::open_table(table.name()))
    }

    /// The value at `key` in `table`.
    pub fn get<K, V>(&self, table: Table<K, V>, key: &K) -> Result<Option<V>, StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshDeserialize,
    {
        typed_get(&self.open(table)?, table, key)
    }

    /// Up to `limit` entries of `table` whose encoded key starts with
    /// `prefix` (e.g. a context id's 32 bytes), in key order, strictly after
    /// `after` when given: pass the last key of a page to get the next one.
    pub fn scan<K, V>(
        &self,
        table: Table<K, V>,
        prefix: &[u8],
        after: Option<&K>,
        limit: usize,
    ) -> Result<Vec<(K::Owned, V)>, StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshDeserialize,
    {
        typed_scan(&self.open(table)?, table, prefix, after, limit)
    }

    /// Up to `limit` entries of `table` with keys between `start` and `end`,
    /// in key order; page by passing `Bound::Excluded(last key)` as `start`.
    pub fn scan_range<K, V>(
        &self,
        table: Table<K, V>,
        start: Bound<&K>,
        end: Bound<&K>,
        limit: usize,
    ) -> Result<Vec<(K::Owned, V)>, StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshDeserialize,
    {
        typed_scan_range(&self.open(table)?, table, start, end, limit)
    }

    /// Number of entries in `table`.
    pub fn len<K: ?Sized, V>(&self, table: Table<K, V>) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        self.open(table)?.len().map_err(StoreError::backend("counting a table"))
    }

    /// The [`STATE`] keys of `context` as a [`weft_primitives::kv::KvRead`],
    /// as of this snapshot.
    pub fn state_view(&self, context: Hash) -> Result<ReadStateView, StoreError> {
        Ok(StateView::new(self.open(STATE)?, context))
    }
}

/// An open write transaction. Nothing it does is visible to others, or
/// durable, until [`crate::Store::write`] commits it.
///
/// Reading a table that does not exist yet creates it (empty) inside this
/// transaction; all built-in tables exist from the store's creation.
pub struct WriteTxn {
    txn: redb::WriteTransaction,
}

impl WriteTxn {
    pub(crate) fn new(txn: redb::WriteTransaction) -> WriteTxn {
        WriteTxn { txn }
    }

    pub(crate) fn into_inner(self) -> redb::WriteTransaction {
        self.txn
    }

    fn open<K: ?Sized, V>(
        &self,
        table: Table<K, V>,
    ) -> Result<redb::Table<'_, &'static [u8], &'static [u8]>, StoreError> {
        self.txn.open_table(table.raw()).map_err(StoreError::open_table(table.name()))
    }

    /// Create `table` if it does not exist.
    pub(crate) fn create_table(&mut self, table: RawTable) -> Result<(), StoreError> {
        use redb::TableHandle;
        self.txn.open_table(table).map_err(StoreError::open_table(table.name()))?;
        Ok(())
    }

    /// The value at `key` in `table`, including this transaction's writes.
    pub fn get<K, V>(&self, table: Table<K, V>, key: &K) -> Result<Option<V>, StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshDeserialize,
    {
        typed_get(&self.open(table)?, table, key)
    }

    /// As [`ReadTxn::scan`], including this transaction's writes.
    pub fn scan<K, V>(
        &self,
        table: Table<K, V>,
        prefix: &[u8],
        after: Option<&K>,
        limit: usize,
    ) -> Result<Vec<(K::Owned, V)>, StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshDeserialize,
    {
        typed_scan(&self.open(table)?, table, prefix, after, limit)
    }

    /// As [`ReadTxn::scan_range`], including this transaction's writes.
    pub fn scan_range<K, V>(
        &self,
        table: Table<K, V>,
        start: Bound<&K>,
        end: Bound<&K>,
        limit: usize,
    ) -> Result<Vec<(K::Owned, V)>, StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshDeserialize,
    {
        typed_scan_range(&self.open(table)?, table, start, end, limit)
    }

    /// Set `key` in `table` to `value`.
    pub fn put<K, V>(&mut self, table: Table<K, V>, key: &K, value: &V) -> Result<(), StoreError>
    where
        K: StoreKey + ?Sized,
        V: BorshSerialize,
    {
        let value = table.encode_value(value);
        let mut raw = self.open(table)?;
        raw.insert(key.key_bytes().as_slice(), value.as_slice()).map_err(StoreError::backend("writing a key"))?;
        Ok(())
    }

    /// Remove `key` from `table`; true when it was present.
    pub fn delete<K, V>(&mut self, table: Table<K, V>, key: &K) -> Result<bool, StoreError>
    where
        K: StoreKey + ?Sized,
    {
        let mut raw = self.open(table)?;
        let removed = raw.remove(key.key_bytes().as_slice()).map_err(StoreError::backend("deleting a key"))?;
        Ok(removed.is_some())
    }

    /// The [`STATE`] keys of `context` as a [`weft_primitives::kv::KvRead`],
    /// including this transaction's writes. It borrows the transaction
    /// mutably: drop it before writing.
    pub fn state_view(&mut self, context: Hash) -> Result<WriteStateView<'_>, StoreError> {
        Ok(StateView::new(self.open(STATE)?, context))
    }

    /// Apply the CRDT engine's `writes` to `context`'s [`STATE`] keys.
    pub fn apply_state_writes(&mut self, context: Hash, writes: &WriteSet) -> Result<(), StoreError> {
        let mut raw = self.open(STATE)?;
        for (state_key, value) in writes.iter() {
            let key = scoped_key(context, state_key);
            match value {
                Some(value) => {
                    let value = encode_state_value(value);
                    raw.insert(key.as_slice(), value.as_slice()).map_err(StoreError::backend("writing state"))?;
                }
                None => {
                    raw.remove(key.as_slice()).map_err(StoreError::backend("deleting state"))?;
                }
            }
        }
        Ok(())
    }

    /// Apply every write of `batch`, in order.
    pub fn apply(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.apply_batches(&[batch])
    }

    /// Apply `batches` in order: for a key written by several, the last write wins.
    pub(crate) fn apply_batches(&mut self, batches: &[&WriteBatch]) -> Result<(), StoreError> {
        // Grouping by table (stably, so per-key order is kept) opens each
        // table once per group instead of once per write.
        let mut ops: Vec<&BatchOp> = batches.iter().flat_map(|batch| batch.ops()).collect();
        ops.sort_by_key(|op| op.table);
        let mut ops = ops.into_iter().peekable();
        while let Some(first) = ops.peek() {
            let name = first.table;
            let mut raw = self.txn.open_table(RawTable::new(name)).map_err(StoreError::open_table(name))?;
            while let Some(op) = ops.next_if(|op| op.table == name) {
                match &op.value {
                    Some(value) => {
                        raw.insert(op.key.as_slice(), value.as_slice())
                            .map_err(StoreError::backend("writing a key"))?;
                    }
                    None => {
                        raw.remove(op.key.as_slice()).map_err(StoreError::backend("deleting a key"))?;
                    }
                }
            }
        }
        Ok(())
    }
}
