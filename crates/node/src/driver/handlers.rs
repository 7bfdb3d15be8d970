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

use std::collections::BTreeMap;

use tracing::warn;
use weft_primitives::Hash;
use weft_runtime::MethodKind;

use super::{Driver, now_ms};
use crate::events::{Counters, NodeEvent};
use crate::replica_store::{DeadJob, HandlerJob, JobInbox};

/// Jobs run per driver turn, so a flood of handlers cannot starve the
/// network and the clients.
const JOBS_PER_TURN_MAX: usize = 64;

#[derive(Debug)]
struct JobState {
    job: HandlerJob,
    attempts: u32,
    next_try_ms: u64,
}

/// One context's owed handler runs, by sequence number (= arrival order).
#[derive(Debug, Default)]
pub(crate) struct JobQueue {
    jobs: BTreeMap<u64, JobState>,
}

impl JobQueue {
    /// Queue jobs restored from disk, due now.
    pub(crate) fn restore(&mut self, jobs: Vec<(u64, HandlerJob)>, now_ms: u64) {
        for (sequence, job) in jobs {
            self.jobs.insert(sequence, JobState { job, attempts: 0, next_try_ms: now_ms });
        }
    }

    /// Move the jobs committed since the last call into the queue.
    pub(crate) fn take_inbox(&mut self, inbox: &JobInbox, now_ms: u64) {
        let fresh = std::mem::take(&mut *inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.restore(fresh, now_ms);
    }

    /// When the next job is due (`u64::MAX` if none).
    pub(crate) fn next_due_ms(&self) -> u64 {
        self.jobs.values().map(|state| state.next_try_ms).min().unwrap_or(u64::MAX)
    }

    /// Jobs owed.
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    fn due(&self, now_ms: u64) -> impl Iterator<Item = u64> + '_ {
        self.jobs.iter().filter(move |(_, state)| state.next_try_ms <= now_ms).map(|(sequence, _)| *sequence)
    }
}

impl Driver {
    /// Run the jobs that are due, oldest first, a bounded number per turn.
    pub(super) async fn run_due_jobs(&mut self) {
        let now = now_ms();
        let due: Vec<(Hash, u64)> = self
            .contexts
            .iter()
            .flat_map(|(context, slot)| slot.jobs.due(now).map(move |sequence| (*context, sequence)))
            .take(JOBS_PER_TURN_MAX)
            .collect();
        for (context, sequence) in due {
            self.run_job(context, sequence).await;
        }
    }

    async fn run_job(&mut self, context: Hash, sequence: u64) {
        let Some(job) =
            self.contexts.get(&context).and_then(|slot| slot.jobs.jobs.get(&sequence)).map(|s| s.job.clone())
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
                slot.jobs.jobs.remove(&sequence);
                Counters::bump(&self.counters.handler_runs, 1);
            }
            Err(error) => {
                Counters::bump(&self.counters.handler_failures, 1);
                let (base, max) = (self.config.handler_retry_base_ms, self.config.handler_retry_max_ms);
                let Some(state) = slot.jobs.jobs.get_mut(&sequence) else { return };
                state.attempts = state.attempts.saturating_add(1);
                if state.attempts >= self.config.handler_attempts_max {
                    let dead = DeadJob { job: job.clone(), attempts: state.attempts, last_error: error.to_string() };
                    if let Err(store_error) = slot.replica.store().bury_job(sequence, &dead) {
                        // Still owed on disk and in memory: retried, and
                        // buried after its next failure.
                        warn!(%context, %store_error, "could not move a failing handler job to the dead letters");
                    } else {
                        slot.jobs.jobs.remove(&sequence);
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
                let backoff = base.saturating_mul(1u64 << state.attempts.min(20)).min(max);
                state.next_try_ms = now_ms().saturating_add(backoff);
                warn!(
                    %context, handler = %job.handler, attempts = state.attempts, retry_in_ms = backoff, %error,
                    "event handler failed; will retry"
                );
                let _ = self.events.send(NodeEvent::HandlerFailed {
                    context,
                    handler: job.handler.clone(),
                    error: error.to_string(),
                    attempts: state.attempts,
                });
            }
        }
    }
}
