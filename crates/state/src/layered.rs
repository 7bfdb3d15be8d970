//! A [`KvRead`] view of a store with a [`WriteSet`] laid over it: what the
//! store will read like once the writes are committed.

use std::ops::Bound;

use weft_primitives::kv::{KvError, KvPair, KvRead, WriteSet};

/// `base` as it will be after committing `writes`.
pub struct LayeredKv<'a, K: KvRead + ?Sized> {
    base: &'a K,
    writes: &'a WriteSet,
}

impl<'a, K: KvRead + ?Sized> LayeredKv<'a, K> {
    /// The view of `base` with `writes` applied.
    pub fn new(base: &'a K, writes: &'a WriteSet) -> LayeredKv<'a, K> {
        LayeredKv { base, writes }
    }
}

impl<K: KvRead + ?Sized> KvRead for LayeredKv<'_, K> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self.writes.pending(key) {
            Some(value) => Ok(value.map(<[u8]>::to_vec)),
            None => self.base.get(key),
        }
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<KvPair>, KvError> {
        let mut out: Vec<KvPair> = Vec::new();
        let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        let page_rows = limit.max(1);
        // Each round advances the cursor past one full page of the base (or
        // ends), so the loop runs at most once per page of the prefix.
        while out.len() < limit {
            let base = self.base.scan(prefix, cursor.as_deref(), page_rows)?;
            let base_done = base.len() < page_rows;
            let upper = if base_done { None } else { base.last().map(|(k, _)| k.clone()) };
            let start = match &cursor {
                Some(c) => Bound::Excluded(c.as_slice()),
                None => Bound::Included(prefix),
            };
            let mut pending = self
                .writes
                .range_from(prefix, start)
                .take_while(|(k, _)| upper.as_ref().is_none_or(|u| *k <= u.as_slice()))
                .peekable();
            let mut base_iter = base.into_iter().peekable();
            loop {
                let take_pending = match (pending.peek(), base_iter.peek()) {
                    (None, None) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some((pk, _)), Some((bk, _))) => *pk <= bk.as_slice(),
                };
                if take_pending {
                    let Some((key, value)) = pending.next() else { break };
                    if base_iter.peek().is_some_and(|(bk, _)| bk.as_slice() == key) {
                        base_iter.next();
                    }
                    if let Some(value) = value {
                        out.push((key.to_vec(), value.to_vec()));
                    }
                } else if let Some(pair) = base_iter.next() {
                    out.push(pair);
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            drop(pending);
            if base_done {
                break;
            }
            cursor = upper;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use weft_primitives::kv::MemoryKv;

    use super::*;

    #[test]
    fn layered_scan_equals_scan_after_commit() {
        let mut kv = MemoryKv::new();
        let mut ws = WriteSet::new();
        for i in 0u8..40 {
            ws.put(vec![1, i], vec![i]);
        }
        kv.apply(ws);
        let mut writes = WriteSet::new();
        for i in (0u8..40).step_by(3) {
            writes.delete(vec![1, i]);
        }
        for i in 40u8..45 {
            writes.put(vec![1, i], vec![i]);
        }
        writes.put(vec![1, 7], vec![70]);
        writes.put(vec![2, 0], vec![0]);
        let layered = LayeredKv::new(&kv, &writes);
        let mut committed = kv.clone();
        committed.apply(writes.clone());
        for limit in [1, 2, 5, 100] {
            let mut after: Option<Vec<u8>> = None;
            let mut got = Vec::new();
            loop {
                let page = layered.scan(&[1], after.as_deref(), limit).unwrap();
                if page.is_empty() {
                    break;
                }
                after = page.last().map(|(k, _)| k.clone());
                got.extend(page);
            }
            assert_eq!(got, committed.scan(&[1], None, 1000).unwrap());
        }
        assert_eq!(layered.get(&[1, 7]).unwrap(), Some(vec![70]));
        assert_eq!(layered.get(&[1, 3]).unwrap(), None);
    }
}
