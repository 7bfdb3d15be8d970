//! Event handler jobs: at-least-once, retried with backoff, never dropped.
//!
//! A job is created in the same store transaction that applies the remote
//! delta whose event names a handler (see `replica_store`), so it survives
//! any crash. The driver runs due jobs after every turn; a job leaves the
//! table only after its handler's own delta (if any) is durable. A crash in
//! between runs the handler again: handlers must be idempotent, as in the
//! seeds. A failing handler is logged, counted, reported on the event bus
//! and retried with exponential backoff up to `handler_retry_max_ms`; after
//! `handler_attempts_max` failed attempts it moves, in one transaction, to
//! the dead letters (`DEAD_JOBS`), listed by the API and counted in the
//! metrics: never silently lost, never retried forever.
//!
//! Memory is bounded: a context holds at most
//! [`NodeConfig::handler_jobs_held_max`](crate::NodeConfig::handler_jobs_held_max)
//! jobs (see [`JobQueue`]); a catch-up that owes a million jobs leaves the
//! rest on disk until these ran.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tracing::warn;
use weft_primitives::Hash;
use weft_runtime::MethodKind;

use super::{Driver, now_ms};
use crate::events::{Counters, NodeEvent};
use crate::replica_store::{DeadJob, DiskReplicaStore, HandlerJob, JobInbox, OwedJobs};

/// Jobs run per driver turn, so a flood of handlers cannot starve the
/// network and the clients.
const JOBS_PER_TURN_MAX: usize = 64;

#[derive(Debug)]
struct JobState {
    job: HandlerJob,
    attempts: u32,
    next_try_ms: u64,
}

/// One context's owed handler runs.
///
/// At most `held_max` are held in memory, in a heap by due time; jobs
/// beyond the bound stay on disk only and are read back, in sequence order,
/// once the held ones drop to half the bound. Invariant: every owed job
/// whose sequence is below `on_disk_from` is held; those at or above it may
/// be on disk only. (Sequences only grow, so a job arriving while jobs wait
/// on disk waits there too: arrival order is kept.)
#[derive(Debug)]
pub(crate) struct JobQueue {
    held: HashMap<u64, JobState>,
    /// (due time, sequence). An entry whose time no longer matches its
    /// job's (it was retried, or finished) is skipped when it surfaces.
    due: BinaryHeap<Reverse<(u64, u64)>>,
    held_max: usize,
    on_disk_from: Option<u64>,
    /// Owed in all, held or not.
    owed: u64,
}

impl JobQueue {
    /// A queue of the jobs a context owed when it was opened, due now.
    pub(crate) fn new(owed: OwedJobs, held_max: usize, now_ms: u64) -> JobQueue {
        let mut queue = JobQueue {
            held: HashMap::new(),
            due: BinaryHeap::new(),
            held_max: held_max.max(1),
            on_disk_from: None,
            owed: owed.total,
        };
        let held = owed.first.len() as u64;
        let next_unread = owed.first.last().map(|(sequence, _)| sequence + 1);
        queue.admit(owed.first, now_ms);
        if held < owed.total {
            queue.on_disk_from = next_unread.or(Some(0));
        }
        queue
    }

    /// Hold `jobs` (in sequence order) as far as the bound allows; the rest
    /// wait on disk.
    fn admit(&mut self, jobs: Vec<(u64, HandlerJob)>, now_ms: u64) {
        for (sequence, job) in jobs {
            if self.held.contains_key(&sequence) {
                continue;
            }
            if self.on_disk_from.is_some() || self.held.len() >= self.held_max {
                self.on_disk_from = Some(self.on_disk_from.map_or(sequence, |from| from.min(sequence)));
                continue;
            }
            self.held.insert(sequence, JobState { job, attempts: 0, next_try_ms: now_ms });
            self.due.push(Reverse((now_ms, sequence)));
        }
    }

    /// Move the jobs committed since the last call into the queue.
    pub(crate) fn take_inbox(&mut self, inbox: &JobInbox, now_ms: u64) {
        let fresh = std::mem::take(&mut *inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.owed += fresh.len() as u64;
        self.admit(fresh, now_ms);
    }

    /// Read jobs waiting on disk back once half the bound is free.
    pub(crate) fn refill(&mut self, store: &DiskReplicaStore, now_ms: u64) -> Result<(), weft_store::StoreError> {
        let Some(from) = self.on_disk_from else { return Ok(()) };
        if self.held.len() > self.held_max / 2 {
            return Ok(());
        }
        let room = self.held_max - self.held.len();
        let rows = store.load_jobs(from, room)?;
        self.on_disk_from = match rows.last() {
            Some((last, _)) if rows.len() >= room => Some(last + 1),
            _ => None,
        };
        let on_disk_from = self.on_disk_from.take();
        self.admit(rows, now_ms);
        self.on_disk_from = on_disk_from;
        Ok(())
    }

    /// When the next held job is due (`u64::MAX` if none). May be early
    /// (a stale heap entry): the caller then finds nothing due.
    pub(crate) fn next_due_ms(&self) -> u64 {
        self.due.peek().map_or(u64::MAX, |Reverse((due, _))| *due)
    }

    /// Jobs owed, held in memory or not.
    pub(crate) fn len(&self) -> u64 {
        self.owed
    }

    /// Jobs held in memory.
    #[cfg(test)]
    fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Take the earliest job due at `now_ms`, if any.
    fn pop_due(&mut self, now_ms: u64) -> Option<u64> {
        while let Some(Reverse((due, sequence))) = self.due.peek().copied() {
            if due > now_ms {
                return None;
            }
            self.due.pop();
            if self.held.get(&sequence).is_some_and(|state| state.next_try_ms == due) {
                return Some(sequence);
            }
        }
        None
    }

    /// Try a job again at `at_ms`.
    fn retry_at(&mut self, sequence: u64, at_ms: u64) {
        if let Some(state) = self.held.get_mut(&sequence) {
            state.next_try_ms = at_ms;
            self.due.push(Reverse((at_ms, sequence)));
        }
    }

    /// A job is no longer owed (it ran, or is a dead letter now).
    fn finish(&mut self, sequence: u64) {
        if self.held.remove(&sequence).is_some() {
            self.owed = self.owed.saturating_sub(1);
        }
    }
}

impl Driver {
    /// Run the jobs that are due, a bounded number per turn, taking one
    /// job per context in turn (starting after the context served first
    /// last time), so a context with a flood of jobs starves no other.
    pub(super) async fn run_due_jobs(&mut self) {
        let now = now_ms();
        // Only contexts whose wake-up is due can have due jobs.
        let mut order: Vec<Hash> = self
            .wakeups_due(now)
            .into_iter()
            .filter(|id| self.contexts.get(id).is_some_and(|slot| slot.jobs.next_due_ms() <= now))
            .collect();
        order.sort_unstable();
        if let Some(cursor) = self.jobs_cursor {
            let split = order.partition_point(|id| *id <= cursor);
            order.rotate_left(split);
        }
        let visited = order.clone();
        let mut due: Vec<(Hash, u64)> = Vec::new();
        while due.len() < JOBS_PER_TURN_MAX && !order.is_empty() {
            order.retain(|context| {
                if due.len() >= JOBS_PER_TURN_MAX {
                    return true;
                }
                let popped = self.contexts.get_mut(context).and_then(|slot| slot.jobs.pop_due(now));
                if let Some(sequence) = popped {
                    due.push((*context, sequence));
                }
                popped.is_some()
            });
        }
        if let Some((first, _)) = due.first() {
            self.jobs_cursor = Some(*first);
        }
        for (context, sequence) in due {
            self.run_job(context, sequence).await;
        }
        for context in visited {
            self.refill_jobs(context);
            self.reschedule(context);
        }
    }

    /// Read a context's jobs waiting on disk back if there is room.
    pub(super) fn refill_jobs(&mut self, context: Hash) {
        let Some(slot) = self.contexts.get_mut(&context) else { return };
        let now = now_ms();
        slot.jobs.take_inbox(&slot.inbox, now);
        if let Err(error) = slot.jobs.refill(slot.replica.store(), now) {
            // They stay on disk; the next finished job tries again.
            warn!(%context, %error, "could not read owed handler jobs back from disk");
        }
    }

    async fn run_job(&mut self, context: Hash, sequence: u64) {
        let Some(job) =
            self.contexts.get(&context).and_then(|slot| slot.jobs.held.get(&sequence)).map(|s| s.job.clone())
        else {
            return;
        };
        let outcome = self.execute(context, &job.handler, &job.data, MethodKind::Handler, job.author).await;
        let Some(slot) = self.contexts.get_mut(&context) else { return };
        match outcome {
            Ok(_) => {
                if let Err(error) = slot.replica.store().finish_job(sequence) {
                    // Still owed on disk: after a restart it runs again
                    // (at-least-once); in memory it is done.
                    warn!(%context, %error, "could not clear a finished handler job");
                }
                slot.jobs.finish(sequence);
                Counters::bump(&self.counters.handler_runs, 1);
            }
            Err(error) => {
                Counters::bump(&self.counters.handler_failures, 1);
                let (base, max) = (self.config.handler_retry_base_ms, self.config.handler_retry_max_ms);
                let Some(state) = slot.jobs.held.get_mut(&sequence) else { return };
                state.attempts = state.attempts.saturating_add(1);
                let attempts = state.attempts;
                let backoff = base.saturating_mul(1u64 << attempts.min(20)).min(max);
                if attempts >= self.config.handler_attempts_max {
                    let dead = DeadJob { job: job.clone(), attempts, last_error: error.to_string() };
                    if let Err(store_error) = slot.replica.store().bury_job(sequence, &dead) {
                        // Still owed on disk and in memory: retried, and
                        // buried after its next failure.
                        warn!(%context, %store_error, "could not move a failing handler job to the dead letters");
                        slot.jobs.retry_at(sequence, now_ms().saturating_add(backoff));
                    } else {
                        slot.jobs.finish(sequence);
                        Counters::bump(&self.counters.handler_jobs_dead, 1);
                        warn!(
                            %context, handler = %job.handler, attempts = dead.attempts, %error,
                            "event handler keeps failing; moved to the dead letters"
                        );
                    }
                    let _ = self.events.send(NodeEvent::HandlerFailed {
                        context,
                        handler: job.handler.clone(),
                        error: error.to_string(),
                        attempts: dead.attempts,
                    });
                    return;
                }
                slot.jobs.retry_at(sequence, now_ms().saturating_add(backoff));
                warn!(
                    %context, handler = %job.handler, attempts, retry_in_ms = backoff, %error,
                    "event handler failed; will retry"
                );
                let _ = self.events.send(NodeEvent::HandlerFailed {
                    context,
                    handler: job.handler.clone(),
                    error: error.to_string(),
                    attempts,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use weft_primitives::SigningKey;
    use weft_store::{JOBS, Store};

    use super::*;

    fn job(n: u64) -> HandlerJob {
        HandlerJob {
            delta: Hash::of(&n.to_le_bytes()),
            event: 0,
            handler: "on_event".into(),
            data: Vec::new(),
            author: None,
        }
    }

    /// A store owing `count` jobs of `context` (sequences 0..count), and
    /// the replica store over it with `held_max`.
    fn owing(count: u64, held_max: usize) -> (DiskReplicaStore, OwedJobs) {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let context = Hash::of(b"context");
        store
            .write(|txn| {
                for n in 0..count {
                    txn.put(JOBS, &(context, n), &weft_primitives::encoding::encode(&job(n)))?;
                }
                Ok(())
            })
            .unwrap();
        let author = SigningKey::from_seed([1; 32]).public_key();
        let cache = crate::StateCache::new(0);
        DiskReplicaStore::open(
            store,
            context,
            author,
            JobInbox::default(),
            Default::default(),
            held_max,
            cache,
            crate::CommitTurn::default(),
        )
        .unwrap()
    }

    fn drain(queue: &mut JobQueue, store: &DiskReplicaStore, now: u64) -> Vec<u64> {
        let mut ran = Vec::new();
        while let Some(sequence) = queue.pop_due(now) {
            queue.finish(sequence);
            ran.push(sequence);
            queue.refill(store, now).unwrap();
        }
        ran
    }

    #[test]
    fn a_context_owing_more_than_the_bound_holds_only_the_bound_and_runs_every_job_in_order() {
        let (store, owed) = owing(23, 4);
        assert_eq!((owed.first.len(), owed.total), (4, 23));
        let mut queue = JobQueue::new(owed, 4, 10);
        assert_eq!((queue.held_len(), queue.len()), (4, 23));
        let mut max_held = 0;
        let mut ran = Vec::new();
        while let Some(sequence) = queue.pop_due(10) {
            queue.finish(sequence);
            ran.push(sequence);
            queue.refill(&store, 10).unwrap();
            max_held = max_held.max(queue.held_len());
        }
        assert_eq!(ran, (0..23).collect::<Vec<_>>());
        assert!(max_held <= 4, "held {max_held} jobs at once");
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn jobs_arriving_beyond_the_bound_wait_on_disk_and_keep_their_order() {
        let (store, owed) = owing(0, 3);
        let mut queue = JobQueue::new(owed, 3, 0);
        // Ten jobs committed (on disk, as the apply transaction writes
        // them) and handed over through the inbox.
        let context = Hash::of(b"context");
        let inbox = JobInbox::default();
        let raw = store.store_for_tests();
        raw.write(|txn| {
            for n in 0..10 {
                txn.put(JOBS, &(context, n), &weft_primitives::encoding::encode(&job(n)))?;
            }
            Ok(())
        })
        .unwrap();
        inbox.lock().unwrap().extend((0..10).map(|n| (n, job(n))));
        queue.take_inbox(&inbox, 0);
        assert_eq!((queue.held_len(), queue.len()), (3, 10));
        // A job that fails is retried later; the others go on.
        let first = queue.pop_due(0).unwrap();
        assert_eq!(first, 0);
        queue.retry_at(first, 100);
        let ran = drain(&mut queue, &store, 0);
        assert_eq!(ran, (1..10).collect::<Vec<_>>());
        assert_eq!(queue.next_due_ms(), 100);
        assert_eq!(queue.pop_due(99), None);
        assert_eq!(queue.pop_due(100), Some(0));
    }
}
