//! Where deltas meet the state: the DAG's [`DeltaApplier`] for a replica.
//!
//! The DAG calls [`StateApplier::apply`] once per delta, in causal order.
//! In [`ApplyMode::Apply`] the delta's actions are merged natively
//! ([`weft_state::apply_actions`], no WASM) and the writes are committed with
//! the delta row in one [`ReplicaStore::commit_applied`]; only then does the
//! DAG count the delta as applied. In [`ApplyMode::Record`] the state already
//! holds the delta (a restart replaying persisted rows, or a local write
//! committed just before) and only the apply order is recorded.
//!
//! [`ApplyCore`] is the part of the replica the applier needs: it is a field
//! of its own so the DAG and the core can be borrowed mutably at once.

use weft_dag::id_map::IdMap;
use weft_dag::{CausalDelta, DeltaApplier, DeltaId};
use weft_primitives::{Hash, PublicKey};
use weft_state::StateError;

use crate::delta::{DeltaPayload, encode_causal};
use crate::replica::interface::AppliedDelta;
use crate::store::{AppliedRow, ReplicaStore, StoreError};

/// The store and what the replica knows about the apply order.
#[derive(Debug)]
pub(crate) struct ApplyCore<S> {
    pub(crate) store: S,
    /// Applied ids in apply order (the DAG's order; pruned ones included).
    pub(crate) apply_log: Vec<DeltaId>,
    /// Apply position of every applied id.
    pub(crate) positions: IdMap<u64>,
    /// Bumped on every state change: a prepared write is stale once it moves.
    pub(crate) version: u64,
    /// The root hash of the persisted state.
    pub(crate) root_hash: Hash,
}

impl<S: ReplicaStore> ApplyCore<S> {
    /// Commit a delta's row and state writes, and account for it.
    pub(crate) fn commit(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError> {
        let root_hash = row.root_hash;
        self.store.commit_applied(row)?;
        self.version += 1;
        self.root_hash = root_hash;
        Ok(())
    }

    /// Record `id` as the next applied delta.
    fn record(&mut self, id: DeltaId) {
        self.positions.insert(id, self.apply_log.len() as u64);
        self.apply_log.push(id);
    }
}

/// Why a delta could not be applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// Its actions are invalid against the state (or the state is unreadable).
    #[error(transparent)]
    State(#[from] StateError),
    /// The store refused the commit.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApplyError {
    /// Whether retrying later may succeed (storage trouble), as opposed to a
    /// delta that no replica will ever apply.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Store(_) | ApplyError::State(StateError::Kv(_)))
    }
}

/// See the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApplyMode {
    /// Merge and commit.
    Apply,
    /// The state already has it: record the order only.
    Record,
}

/// The DAG's applier for one call into the DAG.
pub(crate) struct StateApplier<'a, S> {
    core: &'a mut ApplyCore<S>,
    mode: ApplyMode,
    local_author: PublicKey,
    /// What this call applied, for [`Output::Applied`](crate::Output::Applied).
    pub(crate) applied: Vec<AppliedDelta>,
}

impl<'a, S: ReplicaStore> StateApplier<'a, S> {
    pub(crate) fn new(core: &'a mut ApplyCore<S>, mode: ApplyMode, local_author: PublicKey) -> Self {
        StateApplier { core, mode, local_author, applied: Vec::new() }
    }
}

impl<S: ReplicaStore> DeltaApplier<DeltaPayload> for StateApplier<'_, S> {
    type Error = ApplyError;

    fn apply(&mut self, delta: &CausalDelta<DeltaPayload>) -> Result<(), ApplyError> {
        let payload = &delta.payload;
        if self.mode == ApplyMode::Apply {
            let merged = weft_state::apply_actions(self.core.store.state(), &payload.author, &payload.actions)?;
            let bytes = encode_causal(delta);
            self.core.commit(AppliedRow {
                position: self.core.apply_log.len() as u64,
                id: delta.id,
                bytes: &bytes,
                writes: merged.writes,
                root_hash: merged.root_hash,
            })?;
        }
        self.core.record(delta.id);
        // A restart discards this list: restored deltas are not news.
        self.applied.push(AppliedDelta {
            id: delta.id,
            author: payload.author,
            local: payload.author == self.local_author,
            events: payload.events.clone(),
        });
        Ok(())
    }
}
