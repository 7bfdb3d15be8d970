//! [`DiskReplicaStore`]: a context's replica persisted in `weft-store`.
//!
//! Guarantees:
//! - [`ReplicaStore::commit_applied`] writes the delta's state rows, its
//!   row at its apply position, the removal of its pending row **and the
//!   handler jobs its events owe** in one redb write transaction, durable
//!   before it returns. So a crash leaves all or none of it, and a handler
//!   owed by an applied delta is never lost: it is either still owed or
//!   the delta was never applied.
//! - During a driver turn ([`CommitTurn`] open) a commit is **staged**
//!   instead: kept in memory, read back by the replica (state, applied
//!   rows) as if committed, and written with every other staged commit of
//!   the turn, of every context, in the turn's one transaction
//!   ([`DiskReplicaStore::seal`] then [`SealedCommits::write`], landed by
//!   [`weft_store::Store::land`] on a blocking thread). A crash keeps the whole turn or
//!   none of it; the driver acknowledges nothing of it before, and if the
//!   transaction fails it drops the staged commits and reloads the
//!   contexts from the store. Handler jobs reach the driver's inbox only
//!   once their transaction landed.
//! - [`ReplicaStore::forget`] steps are staged and land the same way,
//!   after the turn's rows (see `forgotten_store.rs`).
//! - State is read from the store through the node's bounded row cache
//!   ([`DiskStateKv`]), which a commit updates only after it succeeded: the
//!   replica reads exactly the persisted state, and no copy of the state is
//!   held in memory.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use borsh::{BorshDeserialize, BorshSerialize};
use weft_dag::DeltaId;
use weft_primitives::{Hash, PublicKey};
use weft_store::{APPLIED, DEAD_JOBS, JOBS, PENDING, Store};
use weft_sync::{AppliedRow, ForgetStep, ForgottenHistory, ReplicaStore, SignedDelta, StoreError};

use crate::disk_state::{DiskStateKv, StateCache};
use crate::forgotten_store::{ForgetLayers, SealedForgets};

/// Owed jobs read per page when counting them at open.
const JOBS_PAGE_MAX: usize = 4096;

/// A handler run owed to an applied delta's event.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HandlerJob {
    /// The delta whose event asks for it.
    pub delta: DeltaId,
    /// The event's index in the delta.
    pub event: u32,
    /// The handler method.
    pub handler: String,
    /// The event's data: the handler's arguments.
    pub data: Vec<u8>,
    /// The delta's author, which the handler can ask for (`event_author`).
    /// `None` only for a job stored before this field existed.
    pub author: Option<PublicKey>,
}

/// A job as stored before [`HandlerJob::author`] existed.
#[derive(BorshDeserialize)]
struct HandlerJobWithoutAuthor {
    delta: DeltaId,
    event: u32,
    handler: String,
    data: Vec<u8>,
}

impl HandlerJob {
    /// Decode a stored job, of this version or the one before.
    fn decode_stored(bytes: &[u8]) -> Result<HandlerJob, weft_primitives::encoding::DecodeError> {
        weft_primitives::encoding::decode(bytes).or_else(|error| {
            let old: HandlerJobWithoutAuthor = weft_primitives::encoding::decode(bytes).map_err(|_| error)?;
            Ok(HandlerJob { delta: old.delta, event: old.event, handler: old.handler, data: old.data, author: None })
        })
    }
}

/// A handler job given up on: what it was, how often it failed, and why
/// the last time.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeadJob {
    /// The job.
    pub job: HandlerJob,
    /// Failed attempts.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: String,
}

/// The handler jobs a context owes when it is opened.
#[derive(Debug, Default)]
pub struct OwedJobs {
    /// The first of them, in sequence order (at most the bound asked for).
    pub first: Vec<(u64, HandlerJob)>,
    /// How many are owed in all.
    pub total: u64,
}

/// Up to `limit` of `context`'s owed jobs after sequence `after` (from the
/// first when `None`).
fn scan_jobs(
    read: &weft_store::ReadTxn,
    context: Hash,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, HandlerJob)>, weft_store::StoreError> {
    let after = after.map(|sequence| (context, sequence));
    let rows = read.scan(JOBS, context.as_bytes(), after.as_ref(), limit)?;
    rows.into_iter()
        .map(|((_, sequence), bytes)| {
            let job = HandlerJob::decode_stored(&bytes).map_err(|e| weft_store::StoreError::Corrupt {
                table: JOBS.name().into(),
                key: sequence.to_string(),
                reason: e.to_string(),
            })?;
            Ok((sequence, job))
        })
        .collect()
}

/// Jobs committed since the driver last looked: (sequence, job).
pub type JobInbox = Arc<Mutex<Vec<(u64, HandlerJob)>>>;

/// The driver's turn, shared with every context's store: while it is open
/// commits are staged and land together at its end (see the module doc).
/// Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct CommitTurn {
    inner: Arc<Mutex<TurnInner>>,
}

#[derive(Debug, Default)]
struct TurnInner {
    open: bool,
    /// The contexts that staged commits in this turn.
    staged: BTreeSet<Hash>,
}

impl CommitTurn {
    fn lock(&self) -> std::sync::MutexGuard<'_, TurnInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stage commits from now on.
    pub fn begin(&self) {
        self.lock().open = true;
    }

    /// Commit directly again; the contexts that staged commits meanwhile.
    pub fn end(&self) -> BTreeSet<Hash> {
        let mut inner = self.lock();
        inner.open = false;
        std::mem::take(&mut inner.staged)
    }

    fn is_open(&self) -> bool {
        self.lock().open
    }

    fn staged_by(&self, context: Hash) {
        self.lock().staged.insert(context);
    }
}

/// A staged applied row: (position, id, canonical bytes).
type StagedRow = (u64, DeltaId, Vec<u8>);

/// See the module doc.
pub struct DiskReplicaStore {
    store: Arc<Store>,
    context: Hash,
    local_author: PublicKey,
    state: DiskStateKv,
    next_job: u64,
    inbox: JobInbox,
    /// The handler methods of the context's application: an event naming
    /// anything else owes no job (only a forged delta names one).
    handlers: BTreeSet<String>,
    turn: CommitTurn,
    /// Commits staged in the open turn, in apply order, and the jobs they
    /// owe (their state writes are staged in `state`).
    staged_rows: Vec<StagedRow>,
    staged_jobs: Vec<(u64, HandlerJob)>,
    /// The previous turn's commits, sealed and landing on another thread
    /// ([`DiskReplicaStore::seal`]): read back like staged ones until
    /// they landed or were dropped.
    landing_rows: Arc<[StagedRow]>,
    landing_jobs: Vec<(u64, HandlerJob)>,
    /// Forget steps staged and landing like the rows.
    forgets: ForgetLayers,
}

/// A context's staged commits, sealed for a transaction that lands on
/// another thread while the next turn stages on top of them.
#[derive(Debug)]
pub struct SealedCommits {
    context: Hash,
    writes: Arc<weft_primitives::kv::WriteSet>,
    rows: Arc<[StagedRow]>,
    /// (sequence, encoded job).
    jobs: Vec<(u64, Vec<u8>)>,
    forgets: SealedForgets,
}

impl SealedCommits {
    /// Write the sealed commits into the landing transaction.
    pub fn write(&self, txn: &mut weft_store::WriteTxn) -> Result<(), weft_store::StoreError> {
        let context = self.context;
        txn.apply_state_writes(context, &self.writes)?;
        for (position, id, bytes) in self.rows.iter() {
            txn.put(APPLIED, &(context, *position), bytes)?;
            txn.delete(PENDING, &(context, *id))?;
        }
        for (sequence, job) in &self.jobs {
            txn.put(JOBS, &(context, *sequence), job)?;
        }
        // After the rows: a step may delete rows this turn wrote.
        self.forgets.write(txn, context)
    }
}

impl std::fmt::Debug for DiskReplicaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskReplicaStore").field("context", &self.context).finish_non_exhaustive()
    }
}

fn backend(error: weft_store::StoreError) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl DiskReplicaStore {
    /// Open the context's persisted replica (empty for a new context), with
    /// what it owes in handler jobs: the first `jobs_held_max` of them in
    /// sequence order, and how many are owed in all. State rows are read
    /// through `cache`; commits are staged while `turn` is open.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        store: Arc<Store>,
        context: Hash,
        local_author: PublicKey,
        inbox: JobInbox,
        handlers: BTreeSet<String>,
        jobs_held_max: usize,
        cache: StateCache,
        turn: CommitTurn,
    ) -> Result<(DiskReplicaStore, OwedJobs), weft_store::StoreError> {
        let read = store.read()?;
        // Count every owed job (paging, so memory stays bounded) and keep
        // the first ones.
        let mut owed = OwedJobs { first: Vec::new(), total: 0 };
        let mut last_job = None;
        loop {
            let rows = scan_jobs(&read, context, last_job, JOBS_PAGE_MAX)?;
            let Some((last, _)) = rows.last() else { break };
            last_job = Some(*last);
            owed.total += rows.len() as u64;
            let room = jobs_held_max.saturating_sub(owed.first.len());
            owed.first.extend(rows.into_iter().take(room));
        }
        let next_job = last_job.map_or(0, |sequence| sequence + 1);
        let state = DiskStateKv::new(store.clone(), context, cache);
        let disk = DiskReplicaStore {
            store,
            context,
            local_author,
            state,
            next_job,
            inbox,
            handlers,
            turn,
            staged_rows: Vec::new(),
            staged_jobs: Vec::new(),
            landing_rows: Arc::new([]),
            landing_jobs: Vec::new(),
            forgets: ForgetLayers::default(),
        };
        Ok((disk, owed))
    }

    /// Whether commits wait in memory for the turn's transaction.
    pub fn has_staged(&self) -> bool {
        !self.staged_rows.is_empty() || self.forgets.has_staged()
    }

    /// Seal the staged commits for a transaction that lands on another
    /// thread ([`SealedCommits::write`]); the next turn stages on top of
    /// them. Those sealed before must have landed or been dropped.
    pub fn seal(&mut self) -> SealedCommits {
        debug_assert!(self.landing_rows.is_empty(), "a turn sealed while the previous one is landing");
        self.landing_rows = std::mem::take(&mut self.staged_rows).into();
        self.landing_jobs = std::mem::take(&mut self.staged_jobs);
        let jobs = self.landing_jobs.iter().map(|(sequence, job)| (*sequence, weft_primitives::encoding::encode(job)));
        SealedCommits {
            context: self.context,
            writes: self.state.seal(),
            rows: Arc::clone(&self.landing_rows),
            jobs: jobs.collect(),
            forgets: SealedForgets { layer: self.forgets.seal() },
        }
    }

    /// The sealed commits' transaction landed: they are in the store.
    pub fn sealed_landed(&mut self) {
        self.state.sealed_landed();
        self.forgets.landed();
        self.landing_rows = Arc::new([]);
        let jobs = std::mem::take(&mut self.landing_jobs);
        if !jobs.is_empty() {
            self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(jobs);
        }
    }

    /// The turn's transaction failed: forget the staged commits, and the
    /// sealed ones still landing under them (the driver reloads the
    /// context from the store).
    pub fn drop_staged(&mut self) {
        self.state.drop_staged();
        self.forgets.drop_all();
        self.staged_rows.clear();
        self.landing_rows = Arc::new([]);
        if let Some((first, _)) = self.landing_jobs.first().or(self.staged_jobs.first()) {
            self.next_job = *first;
        }
        self.staged_jobs.clear();
        self.landing_jobs.clear();
    }

    /// Up to `limit` owed jobs with a sequence of `from` or more, in
    /// sequence order.
    pub fn load_jobs(&self, from: u64, limit: usize) -> Result<Vec<(u64, HandlerJob)>, weft_store::StoreError> {
        scan_jobs(&self.store.read()?, self.context, from.checked_sub(1), limit)
    }

    /// The store underneath (tests).
    #[cfg(test)]
    pub(crate) fn store_for_tests(&self) -> &Arc<Store> {
        &self.store
    }

    /// Forget a job once its handler ran (or gave a final answer).
    pub fn finish_job(&self, sequence: u64) -> Result<(), weft_store::StoreError> {
        self.store.write(|txn| txn.delete(JOBS, &(self.context, sequence)).map(|_| ()))
    }

    /// Move a job that kept failing to the dead letters, in one transaction.
    pub fn bury_job(&self, sequence: u64, dead: &DeadJob) -> Result<(), weft_store::StoreError> {
        let bytes = weft_primitives::encoding::encode(dead);
        self.store.write(|txn| {
            txn.delete(JOBS, &(self.context, sequence))?;
            txn.put(DEAD_JOBS, &(self.context, sequence), &bytes)
        })
    }

    /// The context's dead letters, by sequence (at most `limit`).
    pub fn dead_jobs(&self, limit: usize) -> Result<Vec<(u64, DeadJob)>, weft_store::StoreError> {
        let read = self.store.read()?;
        let rows = read.scan(DEAD_JOBS, self.context.as_bytes(), None, limit)?;
        rows.into_iter()
            .map(|((_, sequence), bytes)| {
                weft_primitives::encoding::decode(&bytes).map(|dead| (sequence, dead)).map_err(|e| {
                    weft_store::StoreError::Corrupt {
                        table: DEAD_JOBS.name().into(),
                        key: sequence.to_string(),
                        reason: e.to_string(),
                    }
                })
            })
            .collect()
    }

    /// The jobs `bytes` (an applied delta) owes: one per event naming a
    /// handler of the application, unless this node wrote it (authors never
    /// run their own handlers). A name the manifest does not list as a
    /// handler owes nothing: such a job could only fail, forever.
    fn jobs_of(&self, bytes: &[u8]) -> Vec<HandlerJob> {
        let Ok(delta) = SignedDelta::decode(bytes) else { return Vec::new() };
        if delta.author == self.local_author {
            return Vec::new();
        }
        let (id, author) = (delta.id, delta.author);
        delta
            .events
            .into_iter()
            .enumerate()
            .filter_map(|(index, event)| {
                let handler = event.handler?;
                if !self.handlers.contains(&handler) {
                    tracing::debug!(context = %self.context, %handler, "event names no handler of the application: no job");
                    return None;
                }
                Some(HandlerJob {
                    delta: id,
                    event: u32::try_from(index).ok()?,
                    handler,
                    data: event.data,
                    author: Some(author),
                })
            })
            .collect()
    }
}

impl ReplicaStore for DiskReplicaStore {
    type Kv = DiskStateKv;

    fn state(&self) -> &DiskStateKv {
        &self.state
    }

    fn commit_applied(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError> {
        let jobs = self.jobs_of(row.bytes);
        let context = self.context;
        let first_job = self.next_job;
        if self.turn.is_open() {
            self.turn.staged_by(context);
            self.next_job = first_job + jobs.len() as u64;
            self.staged_jobs.extend(jobs.into_iter().enumerate().map(|(offset, job)| (first_job + offset as u64, job)));
            self.staged_rows.push((row.position, row.id, row.bytes.to_vec()));
            self.state.stage(row.writes);
            return Ok(());
        }
        self.store
            .write(|txn| {
                txn.apply_state_writes(context, &row.writes)?;
                txn.put(APPLIED, &(context, row.position), &row.bytes.to_vec())?;
                txn.delete(PENDING, &(context, row.id))?;
                for (offset, job) in jobs.iter().enumerate() {
                    let sequence = first_job + offset as u64;
                    txn.put(JOBS, &(context, sequence), &weft_primitives::encoding::encode(job))?;
                }
                Ok(())
            })
            .map_err(backend)?;
        self.state.committed(&row.writes);
        if !jobs.is_empty() {
            self.next_job = first_job + jobs.len() as u64;
            let mut inbox = self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            inbox.extend(jobs.into_iter().enumerate().map(|(offset, job)| (first_job + offset as u64, job)));
        }
        Ok(())
    }

    fn put_pending(&mut self, id: DeltaId, bytes: &[u8]) -> Result<(), StoreError> {
        let context = self.context;
        self.store.write(|txn| txn.put(PENDING, &(context, id), &bytes.to_vec())).map_err(backend)
    }

    fn remove_pending(&mut self, ids: &[DeltaId]) -> Result<(), StoreError> {
        let context = self.context;
        self.store
            .write(|txn| {
                for id in ids {
                    txn.delete(PENDING, &(context, *id))?;
                }
                Ok(())
            })
            .map_err(backend)
    }

    fn load_applied(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let after = after.map(|position| (self.context, position));
        let rows = self
            .store
            .read()
            .and_then(|read| read.scan(APPLIED, self.context.as_bytes(), after.as_ref(), limit))
            .map_err(backend)?;
        let mut rows: Vec<(u64, Vec<u8>)> = rows.into_iter().map(|((_, position), bytes)| (position, bytes)).collect();
        // Landing and staged rows follow every stored one (they are the
        // latest applied); a landing row may be stored already.
        let from = rows.last().map(|(position, _)| *position).or(after.map(|(_, position)| position));
        let staged = (self.landing_rows.iter().chain(&self.staged_rows))
            .filter(|(position, _, _)| from.is_none_or(|from| *position > from));
        rows.extend(staged.take(limit - rows.len()).map(|(position, _, bytes)| (*position, bytes.clone())));
        Ok(rows)
    }

    fn load_pending(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = self
            .store
            .read()
            .and_then(|read| read.scan(PENDING, self.context.as_bytes(), None, limit))
            .map_err(backend)?;
        Ok(rows.into_iter().map(|(_, bytes)| bytes).collect())
    }

    fn forget(&mut self, step: ForgetStep) -> Result<(), StoreError> {
        let context = self.context;
        if self.turn.is_open() {
            self.turn.staged_by(context);
            self.forgets.stage(step);
            return Ok(());
        }
        self.store.write(|txn| crate::forgotten_store::write_steps(txn, context, &[step])).map_err(backend)
    }

    fn forgotten_point(&self, id: &DeltaId) -> Result<Option<Hash>, StoreError> {
        self.forgets.point(&self.store, self.context, id).map_err(backend)
    }

    fn member_set(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.forgets.set(&self.store, self.context, hash).map_err(backend)
    }

    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError> {
        self.forgets.history(&self.store, self.context).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weft_primitives::kv::KvRead;

    use super::*;

    fn commit_row(store: &mut DiskReplicaStore, position: u64) {
        let mut writes = weft_primitives::kv::WriteSet::new();
        writes.put(position.to_be_bytes().to_vec(), b"v".to_vec());
        let bytes = format!("row {position}").into_bytes();
        let id = Hash::of(&bytes);
        let row = AppliedRow { position, id, bytes: &bytes, writes, root_hash: Hash::of(b"root") };
        store.commit_applied(row).unwrap();
    }

    fn positions(store: &DiskReplicaStore) -> Vec<u64> {
        store.load_applied(None, 100).unwrap().into_iter().map(|(position, _)| position).collect()
    }

    #[test]
    fn a_turn_staged_on_a_landing_one_reads_both_and_a_failed_landing_drops_both() {
        let raw = Arc::new(Store::open_in_memory().unwrap());
        let author = weft_primitives::SigningKey::from_seed([1; 32]).public_key();
        let turn = CommitTurn::default();
        let cache = crate::StateCache::new(1 << 20);
        let open = |turn: &CommitTurn| {
            let inbox = JobInbox::default();
            DiskReplicaStore::open(
                raw.clone(),
                Hash::of(b"c"),
                author,
                inbox,
                BTreeSet::new(),
                8,
                cache.clone(),
                turn.clone(),
            )
        };
        let (mut store, _) = open(&turn).unwrap();
        turn.begin();
        commit_row(&mut store, 0);
        commit_row(&mut store, 1);
        turn.end();
        let sealed = store.seal();
        // The next turn stages on top while the first lands.
        turn.begin();
        commit_row(&mut store, 2);
        assert_eq!(positions(&store), [0, 1, 2]);
        raw.land(|txn| sealed.write(txn)).unwrap();
        assert_eq!(positions(&store), [0, 1, 2], "a landed row read twice");
        store.sealed_landed();
        assert_eq!(positions(&store), [0, 1, 2]);
        turn.end();
        let _second = store.seal();
        turn.begin();
        commit_row(&mut store, 3);
        // The second landing fails: what was staged on it goes with it.
        store.drop_staged();
        turn.end();
        assert_eq!(positions(&store), [0, 1]);
        assert_eq!(store.state().get(&2u64.to_be_bytes()).unwrap(), None);
        assert_eq!(store.state().get(&1u64.to_be_bytes()).unwrap(), Some(b"v".to_vec()));
        // What the store holds is exactly what a reopening reads.
        let (reopened, _) = open(&CommitTurn::default()).unwrap();
        assert_eq!(positions(&reopened), [0, 1]);
    }

    #[test]
    fn a_job_stored_before_authors_were_kept_still_decodes() {
        let old = weft_primitives::encoding::encode(&(Hash::of(b"d"), 3u32, "on_event".to_owned(), b"{}".to_vec()));
        let job = HandlerJob::decode_stored(&old).unwrap();
        assert_eq!((job.delta, job.event, job.handler.as_str(), job.author), (Hash::of(b"d"), 3, "on_event", None));
        let author = weft_primitives::SigningKey::from_seed([1; 32]).public_key();
        let new = HandlerJob { author: Some(author), ..job };
        assert_eq!(HandlerJob::decode_stored(&weft_primitives::encoding::encode(&new)).unwrap(), new);
        assert!(HandlerJob::decode_stored(b"garbage").is_err());
    }
}
