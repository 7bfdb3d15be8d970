//! The key-value port between pure logic and storage.
//!
//! Pure layers (`state`, later `sync`) read persisted bytes through [`KvRead`]
//! and never write: they return a [`WriteSet`] that the caller commits
//! atomically, together with whatever else belongs in the same transaction
//! (the delta row, the new heads). [`MemoryKv`] is the in-memory
//! implementation for tests; `weft-store` implements [`KvRead`] over redb.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Why a read failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The storage engine failed (I/O, corruption it detected itself).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored value could not be decoded.
    #[error("corrupt value at key {key}: {reason}")]
    Corrupt {
        /// The key, hex-encoded.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl KvError {
    /// A [`KvError::Corrupt`] naming `key`.
    pub fn corrupt(key: &[u8], reason: impl Into<String>) -> KvError {
        KvError::Corrupt { key: key.iter().map(|b| format!("{b:02x}")).collect(), reason: reason.into() }
    }
}

/// One stored key and its value.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// Read access to one ordered keyspace.
pub trait KvRead {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// strictly after `after` when given (for pagination).
    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError>;
}

impl<T: KvRead + ?Sized> KvRead for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        (**self).get(key)
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError> {
        (**self).scan(prefix, after, limit)
    }
}

/// Puts and deletes to commit atomically. Later writes to a key replace
/// earlier ones; `None` is a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    ops: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl WriteSet {
    /// An empty write set.
    pub fn new() -> WriteSet {
        WriteSet::default()
    }

    /// Set `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.insert(key, Some(value));
    }

    /// Remove `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.insert(key, None);
    }

    /// The pending write for `key`: `Some(None)` is a pending delete.
    pub fn pending(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.ops.get(key).map(|v| v.as_deref())
    }

    /// Fold `other` into `self`; `other`'s writes win.
    pub fn extend(&mut self, other: WriteSet) {
        self.ops.extend(other.ops);
    }

    /// The writes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// Pending writes whose key starts with `prefix`, from `start` (inclusive) on.
    pub fn range_from<'a>(
        &'a self,
        prefix: &'a [u8],
        start: Bound<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        self.ops
            .range::<[u8], _>((start, Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing is written.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total bytes of keys and values, for sizing transactions.
    pub fn byte_len(&self) -> usize {
        self.ops.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum()
    }

    /// Consume into the writes in key order.
    pub fn into_ops(self) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> {
        self.ops.into_iter()
    }
}

/// An in-memory ordered keyspace, for tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryKv {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryKv {
    /// An empty keyspace.
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// Apply every write in `writes`.
    pub fn apply(&mut self, writes: WriteSet) {
        for (key, value) in writes.into_ops() {
            match value {
                Some(value) => {
                    self.map.insert(key, value);
                }
                None => {
                    self.map.remove(&key);
                }
            }
        }
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl KvRead for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.map.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError> {
        // A cursor below the prefix means "from the start of the prefix".
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        Ok(self
            .map
            .range::<[u8], _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_pages_through_a_prefix() {
        let mut kv = MemoryKv::new();
        let mut ws = WriteSet::new();
        for i in 0u8..10 {
            ws.put(vec![1, i], vec![i]);
        }
        ws.put(vec![2, 0], vec![0]);
        ws.put(vec![0, 9], vec![0]);
        kv.apply(ws);
        let first = kv.scan(&[1], None, 4).unwrap();
        assert_eq!(first.len(), 4);
        let rest = kv.scan(&[1], Some(&first[3].0), 100).unwrap();
        assert_eq!(rest.len(), 6);
        assert!(rest.iter().all(|(k, _)| k[0] == 1));
        assert_eq!(
            kv.scan(&[1], Some(&[0, 200]), 100).unwrap().len(),
            10,
            "a cursor below the prefix starts at the prefix"
        );
    }

    #[test]
    fn later_writes_win_and_deletes_apply() {
        let mut kv = MemoryKv::new();
        let mut ws = WriteSet::new();
        ws.put(b"a".to_vec(), b"1".to_vec());
        ws.put(b"a".to_vec(), b"2".to_vec());
        ws.put(b"b".to_vec(), b"x".to_vec());
        kv.apply(ws);
        let mut ws = WriteSet::new();
        ws.delete(b"b".to_vec());
        kv.apply(ws);
        assert_eq!(kv.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(kv.get(b"b").unwrap(), None);
    }
}
