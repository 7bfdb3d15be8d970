//! Group commit: tickets resolve only after their batch is committed, many
//! writers share commits, queue order decides conflicts, closing drains the
//! queue, and tickets work from async code.

// Helpers outside #[test] functions: an unwrap or panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use weft_primitives::Hash;
use weft_primitives::kv::{KvRead, WriteSet};
use weft_store::{CONTEXTS, DELTAS, HEADS, Store, StoreError, WRITE_BATCH_BYTES_MAX, WriteBatch};

fn h(n: u32) -> Hash {
    Hash::of(&n.to_le_bytes())
}

/// Drive a future to completion on this thread (the crate has no runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn ticket_resolves_after_commit_and_data_is_visible() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let mut batch = WriteBatch::new();
    batch.put(CONTEXTS, &h(1), &vec![1]);
    let info = committer.submit(batch).unwrap().wait().unwrap();
    assert!(info.sequence >= 1);
    assert_eq!(info.batches, 1);
    assert_eq!(store.read().unwrap().get(CONTEXTS, &h(1)).unwrap(), Some(vec![1]));
}

#[test]
fn ticket_can_be_awaited() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let mut writes = WriteSet::new();
    writes.put(b"k".to_vec(), b"v".to_vec());
    let mut batch = WriteBatch::new();
    batch.apply_state_writes(h(1), writes).put(HEADS, &h(1), &vec![h(2)]);
    let ticket = committer.submit(batch).unwrap();
    let info = block_on(async move {
        let info = ticket.await?;
        Ok::<_, StoreError>(info)
    })
    .unwrap();
    assert_eq!(info.batches, 1);
    let read = store.read().unwrap();
    assert_eq!(read.state_view(h(1)).unwrap().get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(read.get(HEADS, &h(1)).unwrap(), Some(vec![h(2)]));
}

#[test]
fn many_writers_share_commits_and_every_ticket_is_durable() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let threads = 8u32;
    let per_thread = 200u32;
    let infos: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let committer = &committer;
                scope.spawn(move || {
                    let tickets: Vec<_> = (0..per_thread)
                        .map(|i| {
                            let mut batch = WriteBatch::new();
                            batch.put(DELTAS, &(h(t), h(i)), &vec![t as u8]);
                            committer.submit(batch).unwrap()
                        })
                        .collect();
                    tickets.into_iter().map(|ticket| ticket.wait().unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|handle| handle.join().unwrap()).collect()
    });
    assert_eq!(infos.len(), (threads * per_thread) as usize);
    let commits: std::collections::BTreeSet<u64> = infos.iter().map(|info| info.sequence).collect();
    assert!(commits.len() < infos.len(), "no two batches shared a commit");
    let read = store.read().unwrap();
    for t in 0..threads {
        assert_eq!(read.scan(DELTAS, h(t).as_bytes(), None, 1000).unwrap().len(), per_thread as usize);
    }
}

#[test]
fn later_batches_win_on_the_same_key() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let tickets: Vec<_> = (0..100u8)
        .map(|n| {
            let mut batch = WriteBatch::new();
            batch.put(CONTEXTS, &h(0), &vec![n]);
            committer.submit(batch).unwrap()
        })
        .collect();
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    assert_eq!(store.read().unwrap().get(CONTEXTS, &h(0)).unwrap(), Some(vec![99]));
}

#[test]
fn closing_drains_the_queue() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let tickets: Vec<_> = (0..500u32)
        .map(|n| {
            let mut batch = WriteBatch::new();
            batch.put(CONTEXTS, &h(n), &vec![1]);
            committer.submit(batch).unwrap()
        })
        .collect();
    committer.close().unwrap();
    for mut ticket in tickets {
        assert!(matches!(ticket.try_result(), Some(Ok(_))));
    }
    assert_eq!(store.read().unwrap().len(CONTEXTS).unwrap(), 500);
}

#[test]
fn dropping_the_committer_also_drains_and_resolves() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let mut batch = WriteBatch::new();
    batch.put(CONTEXTS, &h(7), &vec![7]);
    let ticket = committer.submit(batch).unwrap();
    drop(committer);
    ticket.wait().unwrap();
    assert_eq!(store.read().unwrap().get(CONTEXTS, &h(7)).unwrap(), Some(vec![7]));
}

#[test]
fn oversize_batch_is_refused_before_queueing() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    let mut batch = WriteBatch::new();
    batch.put(CONTEXTS, &h(1), &vec![0u8; WRITE_BATCH_BYTES_MAX]);
    assert!(matches!(committer.submit(batch.clone()), Err(StoreError::BatchTooLarge { .. })));
    assert!(matches!(store.commit(&batch), Err(StoreError::BatchTooLarge { .. })));
}

#[test]
fn an_empty_batch_commits() {
    let store = Store::open_in_memory().unwrap();
    let committer = store.group_committer().unwrap();
    committer.submit(WriteBatch::new()).unwrap().wait().unwrap();
}
