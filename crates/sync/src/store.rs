//! The storage seam of a replica: what it reads and what it asks to be made
//! durable, without doing I/O itself.
//!
//! A [`ReplicaStore`] holds one context's persisted state keyspace, its
//! applied deltas in apply order, and its verified pending deltas. The
//! replica reads state through [`ReplicaStore::state`] (a
//! [`KvRead`]) and hands every change to one trait method:
//!
//! - [`ReplicaStore::commit_applied`]: the state writes of one applied
//!   delta, the delta row at its apply position, and the removal of its
//!   pending row, **in one atomic write**. This is the only way state
//!   changes, so after a crash the persisted state is always exactly the
//!   state of the persisted applied deltas. (Heads are not stored: they are
//!   recomputed from the delta rows on restart.)
//! - [`ReplicaStore::put_pending`] / [`ReplicaStore::remove_pending`]: the
//!   pending buffer, so a restart resumes waiting deltas instead of
//!   re-fetching them.
//! - [`ReplicaStore::forget`]: a prefix of the apply order leaves memory
//!   and its rows leave the store; what stays is each forgotten delta's
//!   id with the member set at its causal point, and the prefix's length,
//!   frontier and member set ([`ForgottenHistory`]), in one atomic write
//!   ordered after every commit before it. A restart resumes from there
//!   instead of replaying the forgotten rows.
//!
//! `weft-store` will implement this over redb for the node; [`MemoryStore`]
//! is the in-memory implementation the simulator crashes and restarts.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

use weft_dag::DeltaId;
use weft_primitives::Hash;
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};

/// A storage failure. The replica treats it as transient: the delta stays
/// pending and is retried.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The engine failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored row is unreadable.
    #[error("corrupt stored delta at {position:?}: {reason}")]
    Corrupt {
        /// The apply position, for an applied row.
        position: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

/// One applied delta to commit atomically.
#[derive(Debug)]
pub struct AppliedRow<'a> {
    /// Its apply position: 0 for the first delta, then consecutive.
    pub position: u64,
    /// Its id.
    pub id: DeltaId,
    /// Its canonical encoding.
    pub bytes: &'a [u8],
    /// The state writes applying it produced.
    pub writes: WriteSet,
    /// The root hash once `writes` are applied.
    pub root_hash: Hash,
}

/// The forgotten part of a replica's history, as persisted (see
/// [`weft_dag::DagStore::forget_below`]). The default: nothing forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ForgottenHistory {
    /// How many deltas are forgotten, from apply position 0.
    pub len: u64,
    /// The forgotten part's maximal deltas with their apply positions.
    pub frontier: Vec<(DeltaId, u64)>,
    /// The hash of the member set the replica held when it forgot (the join
    /// of every point up to then; see [`ReplicaStore::member_set`]); the
    /// zero hash when nothing is forgotten.
    pub members: Hash,
}

/// One forget step to persist atomically ([`ReplicaStore::forget`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForgetStep {
    /// The forgotten history after this step.
    pub history: ForgottenHistory,
    /// Each delta this step forgets, with the hash of the member set at its
    /// causal point.
    pub points: Vec<(DeltaId, Hash)>,
    /// The encoded member sets `points` and `history.members` name, by the
    /// hash of their encoding (the store may hold some already).
    pub sets: Vec<(Hash, Vec<u8>)>,
}

/// The persistence a [`Replica`](crate::Replica) needs (see the module doc).
pub trait ReplicaStore {
    /// The persisted state keyspace.
    type Kv: KvRead;

    /// Read access to the persisted state.
    fn state(&self) -> &Self::Kv;

    /// Atomically: apply `row.writes`, store the delta row at
    /// `row.position`, and remove any pending row of `row.id`. On error
    /// nothing may have changed.
    fn commit_applied(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError>;

    /// Store a verified delta that waits for parents.
    fn put_pending(&mut self, id: DeltaId, bytes: &[u8]) -> Result<(), StoreError>;

    /// Forget pending deltas (evicted, or rejected on apply).
    fn remove_pending(&mut self, ids: &[DeltaId]) -> Result<(), StoreError>;

    /// Up to `limit` applied rows after position `after` (from the start
    /// when `None`), in apply order.
    fn load_applied(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Up to `limit` pending rows.
    fn load_pending(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Atomically, and after every commit made before it: record
    /// `step.points` and `step.sets`, replace the forgotten history with
    /// `step.history`, and delete the applied rows below its `len`.
    fn forget(&mut self, step: ForgetStep) -> Result<(), StoreError>;

    /// The hash of the member set at forgotten delta `id`'s causal point;
    /// `None` if `id` was not forgotten here.
    fn forgotten_point(&self, id: &DeltaId) -> Result<Option<Hash>, StoreError>;

    /// The encoding of a member set [`ReplicaStore::forget`] stored.
    fn member_set(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError>;

    /// The forgotten history (the default if nothing was forgotten).
    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError>;
}

/// An in-memory [`ReplicaStore`]: "durable" means "survives dropping the
/// replica". The simulator's crash keeps exactly this.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    kv: MemoryKv,
    /// The applied rows from position `forgotten.len` on.
    applied: Vec<Vec<u8>>,
    forgotten: ForgottenHistory,
    points: BTreeMap<DeltaId, Hash>,
    sets: BTreeMap<Hash, Vec<u8>>,
    pending: BTreeMap<DeltaId, Vec<u8>>,
    commits_to_fail: u32,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Applied rows stored (forgotten ones are deleted).
    pub fn applied_len(&self) -> usize {
        self.applied.len()
    }

    /// Forgotten deltas whose points are stored.
    pub fn forgotten_len(&self) -> usize {
        self.points.len()
    }

    /// Pending deltas stored.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Make the next `count` commits fail (a storage fault, for tests).
    pub fn fail_next_commits(&mut self, count: u32) {
        self.commits_to_fail = count;
    }
}

impl ReplicaStore for MemoryStore {
    type Kv = MemoryKv;

    fn state(&self) -> &MemoryKv {
        &self.kv
    }

    fn commit_applied(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError> {
        if self.commits_to_fail > 0 {
            self.commits_to_fail -= 1;
            return Err(StoreError::Backend("injected commit failure".into()));
        }
        let next = self.forgotten.len + self.applied.len() as u64;
        if row.position != next {
            return Err(StoreError::Corrupt {
                position: Some(row.position),
                reason: format!("expected position {next}"),
            });
        }
        self.kv.apply(row.writes);
        self.applied.push(row.bytes.to_vec());
        self.pending.remove(&row.id);
        Ok(())
    }

    fn put_pending(&mut self, id: DeltaId, bytes: &[u8]) -> Result<(), StoreError> {
        self.pending.insert(id, bytes.to_vec());
        Ok(())
    }

    fn remove_pending(&mut self, ids: &[DeltaId]) -> Result<(), StoreError> {
        for id in ids {
            self.pending.remove(id);
        }
        Ok(())
    }

    fn load_applied(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = after.map_or(0, |after| after.saturating_add(1));
        let skip = usize::try_from(start.saturating_sub(self.forgotten.len)).unwrap_or(usize::MAX);
        Ok(self
            .applied
            .iter()
            .enumerate()
            .skip(skip)
            .take(limit)
            .map(|(offset, bytes)| (self.forgotten.len + offset as u64, bytes.clone()))
            .collect())
    }

    fn load_pending(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.pending.values().take(limit).cloned().collect())
    }

    fn forget(&mut self, step: ForgetStep) -> Result<(), StoreError> {
        let end = self.forgotten.len + self.applied.len() as u64;
        if step.history.len < self.forgotten.len || step.history.len > end {
            return Err(StoreError::Corrupt {
                position: Some(step.history.len),
                reason: format!("forgetting below {} with rows {}..{end}", step.history.len, self.forgotten.len),
            });
        }
        let drop = usize::try_from(step.history.len - self.forgotten.len).unwrap_or(usize::MAX);
        self.applied.drain(..drop.min(self.applied.len()));
        self.points.extend(step.points);
        self.sets.extend(step.sets);
        self.forgotten = step.history;
        Ok(())
    }

    fn forgotten_point(&self, id: &DeltaId) -> Result<Option<Hash>, StoreError> {
        Ok(self.points.get(id).copied())
    }

    fn member_set(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.sets.get(hash).cloned())
    }

    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError> {
        Ok(self.forgotten.clone())
    }
}
