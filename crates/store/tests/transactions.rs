//! Transactions: typed get/put/delete, scans and pagination, atomicity,
//! snapshot isolation, durability across reopen, and the state port.

// Helpers outside #[test] functions: an unwrap or panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::ops::Bound;

use weft_primitives::Hash;
use weft_primitives::kv::{KvRead, WriteSet};
use weft_store::{CONTEXTS, DELTAS, HEADS, META, STATE, Store, StoreError, WriteBatch};

fn h(n: u8) -> Hash {
    Hash([n; 32])
}

#[test]
fn put_get_delete_round_trip_typed_values() {
    let store = Store::open_in_memory().unwrap();
    store
        .write(|txn| {
            txn.put(HEADS, &h(1), &vec![h(2), h(3)])?;
            txn.put(DELTAS, &(h(1), h(2)), &b"delta".to_vec())?;
            txn.put(META, "node_name", &b"alice".to_vec())
        })
        .unwrap();
    let read = store.read().unwrap();
    assert_eq!(read.get(HEADS, &h(1)).unwrap(), Some(vec![h(2), h(3)]));
    assert_eq!(read.get(DELTAS, &(h(1), h(2))).unwrap(), Some(b"delta".to_vec()));
    assert_eq!(read.get(META, "node_name").unwrap(), Some(b"alice".to_vec()));
    assert_eq!(read.get(HEADS, &h(9)).unwrap(), None);

    let existed = store.write(|txn| txn.delete(HEADS, &h(1))).unwrap();
    assert!(existed);
    assert!(!store.write(|txn| txn.delete(HEADS, &h(1))).unwrap());
    assert_eq!(store.read().unwrap().get(HEADS, &h(1)).unwrap(), None);
}

#[test]
fn closure_error_aborts_every_table() {
    let store = Store::open_in_memory().unwrap();
    store.write(|txn| txn.put(CONTEXTS, &h(1), &vec![1])).unwrap();
    let result: Result<(), StoreError> = store.write(|txn| {
        txn.put(CONTEXTS, &h(1), &vec![2])?;
        txn.put(HEADS, &h(1), &vec![h(7)])?;
        txn.delete(CONTEXTS, &h(1))?;
        Err(StoreError::CommitterClosed)
    });
    assert!(matches!(result, Err(StoreError::CommitterClosed)));
    let read = store.read().unwrap();
    assert_eq!(read.get(CONTEXTS, &h(1)).unwrap(), Some(vec![1]));
    assert_eq!(read.get(HEADS, &h(1)).unwrap(), None);
}

#[test]
fn write_txn_reads_its_own_writes() {
    let store = Store::open_in_memory().unwrap();
    store
        .write(|txn| {
            txn.put(CONTEXTS, &h(1), &vec![5])?;
            assert_eq!(txn.get(CONTEXTS, &h(1))?, Some(vec![5]));
            assert_eq!(txn.scan(CONTEXTS, &[], None, 10)?.len(), 1);
            Ok(())
        })
        .unwrap();
}

#[test]
fn snapshot_does_not_see_later_commits() {
    let store = Store::open_in_memory().unwrap();
    store.write(|txn| txn.put(CONTEXTS, &h(1), &vec![1])).unwrap();
    let snapshot = store.read().unwrap();
    store
        .write(|txn| {
            txn.put(CONTEXTS, &h(1), &vec![2])?;
            txn.put(CONTEXTS, &h(2), &vec![2])
        })
        .unwrap();
    assert_eq!(snapshot.get(CONTEXTS, &h(1)).unwrap(), Some(vec![1]));
    assert_eq!(snapshot.get(CONTEXTS, &h(2)).unwrap(), None);
    assert_eq!(snapshot.len(CONTEXTS).unwrap(), 1);
    let fresh = store.read().unwrap();
    assert_eq!(fresh.get(CONTEXTS, &h(1)).unwrap(), Some(vec![2]));
    assert_eq!(fresh.len(CONTEXTS).unwrap(), 2);
}

#[test]
fn prefix_scan_pages_through_one_context_only() {
    let store = Store::open_in_memory().unwrap();
    store
        .write(|txn| {
            for context in [h(1), h(2), h(3)] {
                for d in 0..10u8 {
                    txn.put(DELTAS, &(context, h(d)), &vec![d])?;
                }
            }
            Ok(())
        })
        .unwrap();
    let read = store.read().unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = read.scan(DELTAS, h(2).as_bytes(), after.as_ref(), 3).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|(key, _)| *key);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|((context, _), _)| *context == h(2)));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    // An `after` below the prefix starts at the prefix instead of ending the scan.
    assert_eq!(read.scan(DELTAS, h(2).as_bytes(), Some(&(h(0), h(0))), 100).unwrap().len(), 10);
    assert_eq!(read.scan(DELTAS, h(2).as_bytes(), Some(&(h(9), h(0))), 100).unwrap().len(), 0);
    assert_eq!(read.scan(DELTAS, &[], None, usize::MAX).unwrap().len(), 30);
    assert_eq!(read.scan(DELTAS, &[], None, 0).unwrap().len(), 0);
}

#[test]
fn range_scan_respects_bounds_and_pages() {
    let store = Store::open_in_memory().unwrap();
    store
        .write(|txn| {
            for n in 0..20u8 {
                txn.put(CONTEXTS, &h(n), &vec![n])?;
            }
            Ok(())
        })
        .unwrap();
    let read = store.read().unwrap();
    let page = read.scan_range(CONTEXTS, Bound::Included(&h(5)), Bound::Excluded(&h(9)), 100).unwrap();
    assert_eq!(page.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(), vec![5, 6, 7, 8]);
    let page = read.scan_range(CONTEXTS, Bound::Excluded(&h(5)), Bound::Included(&h(9)), 2).unwrap();
    assert_eq!(page.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(), vec![6, 7]);
    let next = read.scan_range(CONTEXTS, Bound::Excluded(&page[1].0), Bound::Included(&h(9)), 2).unwrap();
    assert_eq!(next.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(), vec![8, 9]);
    // Inverted or empty ranges are empty, not a panic.
    assert!(read.scan_range(CONTEXTS, Bound::Included(&h(9)), Bound::Included(&h(5)), 10).unwrap().is_empty());
    assert!(read.scan_range(CONTEXTS, Bound::Excluded(&h(5)), Bound::Excluded(&h(5)), 10).unwrap().is_empty());
    assert_eq!(read.scan_range(CONTEXTS, Bound::Unbounded, Bound::Unbounded, 100).unwrap().len(), 20);
}

#[test]
fn committed_writes_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    {
        let store = Store::open(&path).unwrap();
        store.write(|txn| txn.put(HEADS, &h(1), &vec![h(4)])).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(CONTEXTS, &h(1), &vec![9]);
        store.commit(&batch).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let read = store.read().unwrap();
    assert_eq!(read.get(HEADS, &h(1)).unwrap(), Some(vec![h(4)]));
    assert_eq!(read.get(CONTEXTS, &h(1)).unwrap(), Some(vec![9]));
}

#[test]
fn state_view_sees_only_its_context_without_the_prefix() {
    let store = Store::open_in_memory().unwrap();
    let mut first = WriteSet::new();
    first.put(b"a/1".to_vec(), b"one".to_vec());
    first.put(b"a/2".to_vec(), b"two".to_vec());
    first.put(b"b".to_vec(), b"bee".to_vec());
    let mut other = WriteSet::new();
    other.put(b"a/1".to_vec(), b"other".to_vec());
    store
        .write(|txn| {
            txn.apply_state_writes(h(1), &first)?;
            txn.apply_state_writes(h(2), &other)
        })
        .unwrap();
    let read = store.read().unwrap();
    let view = read.state_view(h(1)).unwrap();
    assert_eq!(view.get(b"a/1").unwrap(), Some(b"one".to_vec()));
    assert_eq!(view.get(b"zzz").unwrap(), None);
    let page = view.scan(b"a/", None, 10).unwrap();
    assert_eq!(page, vec![(b"a/1".to_vec(), b"one".to_vec()), (b"a/2".to_vec(), b"two".to_vec())]);
    assert_eq!(view.scan(b"a/", Some(b"a/1"), 10).unwrap().len(), 1);
    assert_eq!(view.scan(b"", None, 10).unwrap().len(), 3);
    assert_eq!(read.state_view(h(2)).unwrap().scan(b"", None, 10).unwrap().len(), 1);
    // The typed table sees the same rows under their full keys.
    assert_eq!(read.get(STATE, &(h(2), b"a/1".to_vec())).unwrap(), Some(b"other".to_vec()));
}

#[test]
fn state_writes_delta_and_heads_commit_in_one_transaction() {
    let store = Store::open_in_memory().unwrap();
    let context = h(1);
    let delta = h(42);
    let result = store.write(|txn| {
        // The engine reads through the write view (seeing earlier writes of
        // this transaction), returns its WriteSet, and the caller commits it
        // together with the delta row and the heads.
        let mut writes = WriteSet::new();
        {
            let view = txn.state_view(context)?;
            assert_eq!(view.get(b"counter").unwrap(), None);
            writes.put(b"counter".to_vec(), vec![1]);
        }
        txn.apply_state_writes(context, &writes)?;
        assert_eq!(txn.state_view(context)?.get(b"counter").unwrap(), Some(vec![1]));
        txn.put(DELTAS, &(context, delta), &b"signed delta".to_vec())?;
        txn.put(HEADS, &context, &vec![delta])?;
        Ok(())
    });
    result.unwrap();
    let read = store.read().unwrap();
    assert_eq!(read.state_view(context).unwrap().get(b"counter").unwrap(), Some(vec![1]));
    assert_eq!(read.get(HEADS, &context).unwrap(), Some(vec![delta]));
    assert!(read.get(DELTAS, &(context, delta)).unwrap().is_some());
}

#[test]
fn state_deletes_remove_keys() {
    let store = Store::open_in_memory().unwrap();
    let mut writes = WriteSet::new();
    writes.put(b"k".to_vec(), b"v".to_vec());
    let mut batch = WriteBatch::new();
    batch.apply_state_writes(h(1), writes);
    store.commit(&batch).unwrap();
    let mut writes = WriteSet::new();
    writes.delete(b"k".to_vec());
    store.write(|txn| txn.apply_state_writes(h(1), &writes)).unwrap();
    assert_eq!(store.read().unwrap().state_view(h(1)).unwrap().get(b"k").unwrap(), None);
}

#[test]
fn batch_writes_apply_in_order_last_write_wins() {
    let store = Store::open_in_memory().unwrap();
    let mut batch = WriteBatch::new();
    batch.put(CONTEXTS, &h(1), &vec![1]).put(HEADS, &h(1), &vec![h(1)]).put(CONTEXTS, &h(1), &vec![2]);
    batch.delete(HEADS, &h(1)).put(CONTEXTS, &h(2), &vec![3]).delete(CONTEXTS, &h(2));
    assert_eq!(batch.len(), 6);
    store.commit(&batch).unwrap();
    let read = store.read().unwrap();
    assert_eq!(read.get(CONTEXTS, &h(1)).unwrap(), Some(vec![2]));
    assert_eq!(read.get(HEADS, &h(1)).unwrap(), None);
    assert_eq!(read.get(CONTEXTS, &h(2)).unwrap(), None);
}

#[test]
fn scan_over_the_page_maximum_is_an_error_not_a_short_page() {
    let store = Store::open_in_memory().unwrap();
    let total = weft_store::SCAN_PAGE_MAX + 1;
    let mut batch = WriteBatch::new();
    for n in 0..total as u32 {
        batch.put(META, &format!("k{n:08}"), &Vec::new());
    }
    store.commit(&batch).unwrap();
    let read = store.read().unwrap();
    assert!(matches!(read.scan(META, b"k", None, usize::MAX), Err(StoreError::ScanTooLarge { .. })));
    // Asking for at most the maximum is a normal (full) page.
    assert_eq!(read.scan(META, b"k", None, weft_store::SCAN_PAGE_MAX).unwrap().len(), weft_store::SCAN_PAGE_MAX);
}

#[test]
fn read_durable_sees_a_deferred_group_only_once_it_is_flushed() {
    let store = Store::open_in_memory().unwrap();
    store.write(|txn| txn.put(META, "a", &b"durable".to_vec())).unwrap();
    store.defer_durability();
    store.write(|txn| txn.put(META, "b", &b"deferred".to_vec())).unwrap();
    // The write is committed (a plain read sees it)…
    assert_eq!(store.read().unwrap().get(META, "b").unwrap(), Some(b"deferred".to_vec()));
    // …but not durable, so a durable read does not, and still sees the rest.
    let durable = store.read_durable().unwrap();
    assert_eq!(durable.get(META, "b").unwrap(), None);
    assert_eq!(durable.get(META, "a").unwrap(), Some(b"durable".to_vec()));
    store.flush().unwrap();
    assert_eq!(store.read_durable().unwrap().get(META, "b").unwrap(), Some(b"deferred".to_vec()));
    // Outside a group every write is durable at once, and seen at once.
    store.write(|txn| txn.put(META, "c", &b"immediate".to_vec())).unwrap();
    assert_eq!(store.read_durable().unwrap().get(META, "c").unwrap(), Some(b"immediate".to_vec()));
}

/// A group ended by `end_deferring` lands on another thread while the
/// writer defers its next one: the next group's deferred commit waits for
/// that landing (commits reach the file in group order), and durable reads
/// show each group only once it landed.
#[test]
fn a_group_landing_on_another_thread_keeps_the_next_group_behind_it() {
    let store = Store::open_in_memory().unwrap();
    store.defer_durability();
    store.write(|txn| txn.put(META, "first", &b"deferred".to_vec())).unwrap();
    store.end_deferring();
    // The next group begins before the first one landed.
    store.defer_durability();
    let (started, writing) = std::sync::mpsc::sync_channel(1);
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            started.send(()).unwrap();
            // What this deferred commit saw of the landing's write.
            store.write(|txn| {
                let seen = txn.get(META, "landed")?;
                txn.put(META, "second", &b"deferred".to_vec())?;
                Ok(seen)
            })
        })
    };
    // The writer reached its commit; give it every chance to go through
    // if nothing held it.
    writing.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!writer.is_finished(), "the next group's deferred commit did not wait for the landing");
    let durable = store.read_durable().unwrap();
    assert_eq!(durable.get(META, "first").unwrap(), None, "not landed yet");
    store.land(|txn| txn.put(META, "landed", &b"yes".to_vec())).unwrap();
    let seen = writer.join().unwrap().unwrap();
    assert_eq!(seen, Some(b"yes".to_vec()), "the next group committed before the landing");
    // The first group is durable; the second group's commit is not yet.
    let durable = store.read_durable().unwrap();
    assert_eq!(durable.get(META, "first").unwrap(), Some(b"deferred".to_vec()));
    assert_eq!(durable.get(META, "landed").unwrap(), Some(b"yes".to_vec()));
    assert_eq!(durable.get(META, "second").unwrap(), None, "a deferred commit shown before its landing");
    store.end_deferring();
    store.land_deferred().unwrap();
    assert_eq!(store.read_durable().unwrap().get(META, "second").unwrap(), Some(b"deferred".to_vec()));
}
