//! Group commit: many writers share one durable transaction.
//!
//! A [`GroupCommitter`] owns a dedicated thread. Writers [`submit`] a
//! [`WriteBatch`] and get a [`CommitTicket`]; the thread takes everything
//! queued (up to [`GROUP_COMMIT_BATCH_MAX`] batches), applies the batches in
//! queue order in one write transaction, commits it durably, and only then
//! resolves every ticket of the group. So:
//!
//! - a ticket resolves `Ok` only once its batch is on disk (acknowledged =
//!   durable), and a crash can never lose an acknowledged batch;
//! - each batch is atomic (it shares a transaction, so it is all-or-nothing
//!   together with the rest of its group);
//! - if the commit fails, every ticket of the group gets the same error and
//!   none of the group's writes are visible;
//! - later batches win over earlier ones on the same key (queue order);
//! - after a storage failure redb refuses further writes, so every later
//!   ticket fails too until the store is reopened.
//!
//! The queue is a bounded `sync_channel` of [`GROUP_COMMIT_QUEUE_MAX`]
//! batches: [`submit`] **blocks** while it is full (backpressure on the
//! writers instead of unbounded memory). Closing or dropping the committer
//! stops accepting batches, commits everything already queued, and joins the
//! thread.
//!
//! [`submit`]: GroupCommitter::submit

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::batch::{WRITE_BATCH_BYTES_MAX, WriteBatch};
use crate::error::StoreError;
use crate::store::Store;

/// Batches that may wait in the queue; [`GroupCommitter::submit`] blocks beyond this.
pub const GROUP_COMMIT_QUEUE_MAX: usize = 1024;

/// The most batches one durable transaction carries.
pub const GROUP_COMMIT_BATCH_MAX: usize = 256;

/// What a resolved ticket reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The durable commit that carried the batch: increasing with every
    /// commit made through this [`Store`] (and its clones) since it opened;
    /// two batches shared a commit exactly when their sequences are equal.
    pub sequence: u64,
    /// How many batches shared that commit.
    pub batches: usize,
}

type Reply = Result<CommitInfo, StoreError>;

struct Queued {
    batch: WriteBatch,
    reply: oneshot::Sender<Reply>,
}

/// The commit thread and the sending end of its queue. `Sync`: share it
/// (e.g. in an `Arc`) among every writer.
#[derive(Debug)]
pub struct GroupCommitter {
    queue: Option<SyncSender<Queued>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommitter {
    /// Start the commit thread for `store`.
    pub fn new(store: &Store) -> Result<GroupCommitter, StoreError> {
        let (queue, incoming) = sync_channel(GROUP_COMMIT_QUEUE_MAX);
        let store = store.clone();
        let thread = std::thread::Builder::new()
            .name("weft-group-commit".into())
            .spawn(move || commit_loop(&store, &incoming))
            .map_err(|e| StoreError::CommitterSpawn { reason: e.to_string() })?;
        Ok(GroupCommitter { queue: Some(queue), thread: Some(thread) })
    }

    /// Queue `batch` for the next group commit. Blocks while
    /// [`GROUP_COMMIT_QUEUE_MAX`] batches are already waiting (from async
    /// code, that blocks the task's thread for at most about one commit).
    ///
    /// Fails with [`StoreError::BatchTooLarge`] for a batch over
    /// [`WRITE_BATCH_BYTES_MAX`] and [`StoreError::CommitterClosed`] once the
    /// thread has stopped.
    pub fn submit(&self, batch: WriteBatch) -> Result<CommitTicket, StoreError> {
        if batch.byte_len() > WRITE_BATCH_BYTES_MAX {
            return Err(StoreError::BatchTooLarge { bytes: batch.byte_len(), max: WRITE_BATCH_BYTES_MAX });
        }
        let queue = self.queue.as_ref().ok_or(StoreError::CommitterClosed)?;
        let (reply, ticket) = oneshot::channel();
        queue.send(Queued { batch, reply }).map_err(|_| StoreError::CommitterClosed)?;
        Ok(CommitTicket { reply: ticket })
    }

    /// Stop accepting batches, commit everything queued, and join the thread.
    /// [`StoreError::CommitterGone`] if the thread had died.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), StoreError> {
        // Dropping the only sender ends the thread's loop once the queue is drained.
        drop(self.queue.take());
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| StoreError::CommitterGone),
            None => Ok(()),
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        // A dead thread has already failed its tickets with CommitterGone;
        // there is no one left to tell here.
        let _ = self.shut_down();
    }
}

fn commit_loop(store: &Store, incoming: &Receiver<Queued>) {
    let mut group: Vec<Queued> = Vec::with_capacity(GROUP_COMMIT_BATCH_MAX);
    // `recv` fails only when every sender is gone and the queue is empty,
    // so closing drains the queue first.
    while let Ok(first) = incoming.recv() {
        group.push(first);
        while group.len() < GROUP_COMMIT_BATCH_MAX {
            match incoming.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let batches: Vec<&WriteBatch> = group.iter().map(|queued| &queued.batch).collect();
        let result = store.commit_group(&batches);
        for queued in group.drain(..) {
            // A writer that stopped waiting dropped its ticket; its batch is
            // committed all the same.
            let _ = queued.reply.send(result.clone());
        }
    }
}

/// The promise of one submitted batch: resolves `Ok` once the batch is
/// durable, or with the error that failed its group's commit.
///
/// Wait for it with [`CommitTicket::wait`] on a thread, or `.await` it in
/// async code (it is a `Future`, hence also `IntoFuture`).
#[derive(Debug)]
#[must_use = "a batch is only known to be durable once its ticket resolves Ok"]
pub struct CommitTicket {
    reply: oneshot::Receiver<Reply>,
}

impl CommitTicket {
    /// Block the calling thread until the batch's group has committed (or failed).
    ///
    /// Not for async code: inside a tokio runtime, `.await` the ticket instead
    /// (tokio refuses to block a runtime thread).
    pub fn wait(self) -> Result<CommitInfo, StoreError> {
        self.reply.blocking_recv().unwrap_or(Err(StoreError::CommitterGone))
    }

    /// The outcome if the group has already committed, without waiting.
    pub fn try_result(&mut self) -> Option<Result<CommitInfo, StoreError>> {
        match self.reply.try_recv() {
            Ok(reply) => Some(reply),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(StoreError::CommitterGone)),
        }
    }
}

impl Future for CommitTicket {
    type Output = Result<CommitInfo, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.reply).poll(cx) {
            Poll::Ready(Ok(reply)) => Poll::Ready(reply),
            Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::CommitterGone)),
            Poll::Pending => Poll::Pending,
        }
    }
}
