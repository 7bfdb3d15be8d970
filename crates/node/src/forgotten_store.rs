//! The forgotten history of one context on disk, for [`crate::DiskReplicaStore`].
//!
//! A forget step ([`weft_sync::ReplicaStore::forget`]) writes, in one
//! transaction: each forgotten delta's member point ([`FORGOTTEN`]), the
//! member sets they name ([`MEMBER_SETS`]), the new [`FORGOTTEN_HISTORY`]
//! record, and the deletion of the context's [`APPLIED`] rows below the new
//! length. During a driver turn the step is staged like a commit and lands
//! in the turn's transaction, after the turn's rows, so a crash keeps the
//! step with every row before it or none of it; until it landed, lookups
//! answer from the staged and landing steps first.

use std::collections::HashMap;
use std::sync::Arc;

use weft_dag::DeltaId;
use weft_primitives::Hash;
use weft_store::{APPLIED, FORGOTTEN, FORGOTTEN_HISTORY, MEMBER_SETS, Store, StoreError, WriteTxn};
use weft_sync::{ForgetStep, ForgottenHistory};

/// Forget steps not yet in the store: their points and sets by key, and
/// the history record the last one leaves.
#[derive(Debug, Default)]
pub(crate) struct ForgetLayer {
    steps: Vec<ForgetStep>,
    points: HashMap<DeltaId, Hash>,
    sets: HashMap<Hash, Vec<u8>>,
}

impl ForgetLayer {
    fn push(&mut self, step: ForgetStep) {
        self.points.extend(step.points.iter().copied());
        self.sets.extend(step.sets.iter().cloned());
        self.steps.push(step);
    }

    fn history(&self) -> Option<&ForgottenHistory> {
        self.steps.last().map(|step| &step.history)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// A context's forget steps: staged in the open turn, and landing with the
/// previous turn's transaction (read like staged ones until they landed).
#[derive(Debug, Default)]
pub(crate) struct ForgetLayers {
    staged: ForgetLayer,
    landing: Arc<ForgetLayer>,
}

impl ForgetLayers {
    /// Whether steps wait for the turn's transaction.
    pub(crate) fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Stage `step` for the turn's transaction.
    pub(crate) fn stage(&mut self, step: ForgetStep) {
        self.staged.push(step);
    }

    /// The staged steps, now landing; the next turn stages on top.
    pub(crate) fn seal(&mut self) -> Arc<ForgetLayer> {
        self.landing = Arc::new(std::mem::take(&mut self.staged));
        Arc::clone(&self.landing)
    }

    /// The landing steps are in the store.
    pub(crate) fn landed(&mut self) {
        self.landing = Arc::default();
    }

    /// The turn failed: forget both layers.
    pub(crate) fn drop_all(&mut self) {
        self.staged = ForgetLayer::default();
        self.landing = Arc::default();
    }

    fn layers(&self) -> [&ForgetLayer; 2] {
        [&self.staged, &self.landing]
    }

    /// The member point of forgotten delta `id`.
    pub(crate) fn point(&self, store: &Store, context: Hash, id: &DeltaId) -> Result<Option<Hash>, StoreError> {
        if let Some(point) = self.layers().iter().find_map(|layer| layer.points.get(id)) {
            return Ok(Some(*point));
        }
        store.read()?.get(FORGOTTEN, &(context, *id))
    }

    /// A stored member set.
    pub(crate) fn set(&self, store: &Store, context: Hash, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(set) = self.layers().iter().find_map(|layer| layer.sets.get(hash)) {
            return Ok(Some(set.clone()));
        }
        store.read()?.get(MEMBER_SETS, &(context, *hash))
    }

    /// The forgotten history: the latest step's, or the stored one.
    pub(crate) fn history(&self, store: &Store, context: Hash) -> Result<ForgottenHistory, StoreError> {
        if let Some(history) = self.layers().iter().find_map(|layer| layer.history()) {
            return Ok(history.clone());
        }
        read_history(store, context)
    }
}

/// The stored forgotten history of `context` (the default if none).
fn read_history(store: &Store, context: Hash) -> Result<ForgottenHistory, StoreError> {
    let Some(bytes) = store.read()?.get(FORGOTTEN_HISTORY, &context)? else {
        return Ok(ForgottenHistory::default());
    };
    weft_primitives::encoding::decode(&bytes).map_err(|error| StoreError::Corrupt {
        table: FORGOTTEN_HISTORY.name().into(),
        key: context.to_string(),
        reason: error.to_string(),
    })
}

/// Write `steps` of `context` into `txn`, in order. The rows each deletes
/// start where the history before it ended (`from`, the stored length).
pub(crate) fn write_steps(txn: &mut WriteTxn, context: Hash, steps: &[ForgetStep]) -> Result<(), StoreError> {
    let Some(last) = steps.last() else { return Ok(()) };
    let from = match txn.get(FORGOTTEN_HISTORY, &context)? {
        Some(bytes) => weft_primitives::encoding::decode::<ForgottenHistory>(&bytes).map(|h| h.len).map_err(|e| {
            StoreError::Corrupt {
                table: FORGOTTEN_HISTORY.name().into(),
                key: context.to_string(),
                reason: e.to_string(),
            }
        })?,
        None => 0,
    };
    for step in steps {
        for (id, point) in &step.points {
            txn.put(FORGOTTEN, &(context, *id), point)?;
        }
        for (hash, bytes) in &step.sets {
            txn.put(MEMBER_SETS, &(context, *hash), bytes)?;
        }
    }
    // Rows are deleted once, for the whole range the steps forget.
    for position in from..last.history.len {
        txn.delete(APPLIED, &(context, position))?;
    }
    txn.put(FORGOTTEN_HISTORY, &context, &weft_primitives::encoding::encode(&last.history))
}

/// The sealed steps of one context, written by [`crate::SealedCommits`].
#[derive(Debug, Default)]
pub(crate) struct SealedForgets {
    pub(crate) layer: Arc<ForgetLayer>,
}

impl SealedForgets {
    pub(crate) fn write(&self, txn: &mut WriteTxn, context: Hash) -> Result<(), StoreError> {
        write_steps(txn, context, &self.layer.steps)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use weft_store::Store;
    use weft_sync::{AppliedRow, ReplicaStore};

    use super::*;
    use crate::replica_store::{CommitTurn, DiskReplicaStore, JobInbox};

    fn id(position: u64) -> DeltaId {
        Hash::of(format!("row {position}").as_bytes())
    }

    fn commit_row(store: &mut DiskReplicaStore, position: u64) {
        let bytes = format!("row {position}").into_bytes();
        let mut writes = weft_primitives::kv::WriteSet::new();
        writes.put(position.to_be_bytes().to_vec(), b"v".to_vec());
        let row = AppliedRow { position, id: id(position), bytes: &bytes, writes, root_hash: Hash::of(b"root") };
        store.commit_applied(row).unwrap();
    }

    fn positions(store: &DiskReplicaStore) -> Vec<u64> {
        store.load_applied(None, 100).unwrap().into_iter().map(|(position, _)| position).collect()
    }

    fn step(len: u64, set: &[u8]) -> ForgetStep {
        let hash = Hash::of(set);
        ForgetStep {
            history: ForgottenHistory { len, frontier: vec![(id(len - 1), len - 1)], members: hash },
            points: (0..len).map(|position| (id(position), hash)).collect(),
            sets: vec![(hash, set.to_vec())],
        }
    }

    #[test]
    fn a_forget_step_lands_with_its_turn_and_a_failed_turn_leaves_nothing_of_it() {
        let raw = Arc::new(Store::open_in_memory().unwrap());
        let author = weft_primitives::SigningKey::from_seed([1; 32]).public_key();
        let cache = crate::StateCache::new(1 << 20);
        let open = |turn: &CommitTurn| {
            DiskReplicaStore::open(
                raw.clone(),
                Hash::of(b"c"),
                author,
                JobInbox::default(),
                BTreeSet::new(),
                8,
                cache.clone(),
                turn.clone(),
            )
            .unwrap()
            .0
        };
        let turn = CommitTurn::default();
        let mut store = open(&turn);
        for position in 0..10 {
            commit_row(&mut store, position);
        }
        // Staged: read back at once, nothing on disk yet.
        turn.begin();
        store.forget(step(6, b"set")).unwrap();
        assert!(store.has_staged());
        assert_eq!(store.forgotten_point(&id(3)).unwrap(), Some(Hash::of(b"set")));
        assert_eq!(store.load_forgotten().unwrap().len, 6);
        assert_eq!(open(&CommitTurn::default()).load_forgotten().unwrap(), ForgottenHistory::default());
        turn.end();
        let sealed = store.seal();
        raw.land(|txn| sealed.write(txn)).unwrap();
        store.sealed_landed();
        // Landed: the rows below it are gone, its records are on disk.
        assert_eq!(positions(&store), [6, 7, 8, 9]);
        let reopened = open(&CommitTurn::default());
        assert_eq!(reopened.load_forgotten().unwrap(), step(6, b"set").history);
        assert_eq!(reopened.forgotten_point(&id(5)).unwrap(), Some(Hash::of(b"set")));
        assert_eq!(reopened.forgotten_point(&id(6)).unwrap(), None);
        assert_eq!(reopened.member_set(&Hash::of(b"set")).unwrap(), Some(b"set".to_vec()));
        // A turn whose transaction fails takes its forget step with it.
        turn.begin();
        store.forget(step(8, b"other")).unwrap();
        turn.end();
        let _failed = store.seal();
        store.drop_staged();
        assert_eq!(store.load_forgotten().unwrap().len, 6);
        assert_eq!(store.forgotten_point(&id(7)).unwrap(), None);
        assert_eq!(positions(&open(&CommitTurn::default())), [6, 7, 8, 9]);
    }
}
