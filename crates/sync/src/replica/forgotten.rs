//! Forgotten history: what a replica knows about the deltas its DAG forgot
//! ([`Config::history_remembered_max`](crate::Config::history_remembered_max)),
//! through its store.
//!
//! The DAG forgets a prefix of the apply order in steps of a quarter of the
//! remembered window. Each step is persisted first ([`ReplicaStore::forget`]:
//! each forgotten delta's id with the member set at its causal point, the
//! prefix's length, frontier and the current member set, the old rows
//! deleted), and only then dropped from memory, so memory never forgets
//! what the store cannot answer. A store failure leaves both as they were.
//!
//! A forgotten delta still decides like an applied one everywhere: as a
//! parent it is satisfied and has its member point (read back from the
//! store), sent again it is a duplicate, asked for it is `PrunedHistory`.
//! Store lookups happen only for ids the DAG holds nothing about, and only
//! once something was forgotten.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_dag::DeltaId;
use weft_primitives::Hash;

use super::Replica;
use super::apply::ApplyCore;
use crate::membership::MemberSet;
use crate::store::{ForgetStep, ForgottenHistory, ReplicaStore, StoreError};

impl<S: ReplicaStore> ApplyCore<S> {
    /// Whether `id` was applied and then forgotten here.
    ///
    /// A store error answers yes, the side that never decides wrongly: a
    /// delta taken for a forgotten one is dropped as a duplicate (anti-
    /// entropy brings it back once the store answers), and a parent taken
    /// for one leaves its child stalled, since the child's member point
    /// cannot be read either. Answering no could apply a delta twice.
    pub(crate) fn is_forgotten(&self, id: &DeltaId) -> bool {
        self.forgotten_len > 0 && !matches!(self.store.forgotten_point(id), Ok(None))
    }

    /// The member set at applied delta `id`: from memory, or from the
    /// store if it was forgotten.
    pub(crate) fn point_of(&self, id: &DeltaId) -> Option<Arc<MemberSet>> {
        if let Some(point) = self.member_points.get(id) {
            return Some(Arc::clone(point));
        }
        if self.forgotten_len == 0 {
            return None;
        }
        let hash = self.store.forgotten_point(id).ok()??;
        self.stored_set(&hash).ok()
    }

    /// A member set the store keeps, checked against its hash.
    pub(crate) fn stored_set(&self, hash: &Hash) -> Result<Arc<MemberSet>, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { position: None, reason };
        let bytes = self.store.member_set(hash)?.ok_or_else(|| corrupt(format!("member set {hash:?} missing")))?;
        if Hash::of(&bytes) != *hash {
            return Err(corrupt(format!("member set {hash:?} does not match its hash")));
        }
        MemberSet::decode(&bytes).map(Arc::new).map_err(|error| corrupt(error.to_string()))
    }
}

impl<S: ReplicaStore> Replica<S> {
    /// Whether `id` is held here: applied (forgotten included) or pending.
    pub(super) fn holds(&self, id: &DeltaId) -> bool {
        self.dag.has(id) || self.core.is_forgotten(id)
    }

    /// [`Replica::holds`] for a delta whose `parents` are known: the store
    /// is asked only if the DAG holds none of them (a forgotten delta's
    /// parents are forgotten too, and not on the frontier), so a new delta
    /// arriving in the usual way costs no store read.
    pub(super) fn holds_delta(&self, id: &DeltaId, parents: &[DeltaId]) -> bool {
        if self.dag.has(id) {
            return true;
        }
        let root = self.dag.root();
        let parent_held = parents.iter().any(|parent| *parent != root && self.dag.has(parent));
        !parent_held && self.core.is_forgotten(id)
    }

    /// Whether `id` is applied here (pruned and forgotten included).
    pub fn is_applied(&self, id: &DeltaId) -> bool {
        self.dag.is_applied(id) || self.core.is_forgotten(id)
    }

    /// How many applied deltas are forgotten (their rows deleted).
    pub fn forgotten_count(&self) -> u64 {
        self.dag.forgotten_len()
    }

    /// Start from the store's forgotten history: the DAG resumes from its
    /// frontier, the member set from the one stored with it.
    pub(super) fn resume_forgotten(&mut self, history: &ForgottenHistory) -> Result<(), StoreError> {
        if history.len == 0 {
            return Ok(());
        }
        self.dag = weft_dag::DagStore::resume(self.dag.root(), self.config.dag_limits, history.len, &history.frontier);
        self.core.forgotten_len = history.len;
        self.core.applied_len = history.len;
        self.stats.history_forgotten = history.len;
        self.core.members = MemberSet::clone(&*self.core.stored_set(&history.members)?);
        Ok(())
    }

    /// Forget the deltas older than the last `history_remembered_max`, in
    /// steps of a quarter of that window: persist the step, then drop it
    /// from memory.
    pub(super) fn forget_history(&mut self) {
        let Some(remember) = self.config.history_remembered_max else { return };
        let remember = remember.max(1);
        let Some(cut) = self.dag.applied_count().checked_sub(remember) else { return };
        if cut as u64 <= self.dag.forgotten_len() + (remember / 4) as u64 {
            return;
        }
        let plan = self.dag.forget_plan(cut as u64);
        let Some(step) = self.forget_step(&plan) else {
            self.stats.store_failures += 1;
            return;
        };
        if self.core.store.forget(step).is_err() {
            self.stats.store_failures += 1;
            return;
        }
        let forgotten = self.dag.forget_below(cut as u64);
        debug_assert_eq!(forgotten, plan);
        for (id, _) in &forgotten.forgotten {
            self.core.member_points.remove(id);
        }
        self.core.forgotten_len = forgotten.len;
        self.stats.history_pruned = self.dag.pruned_count() as u64;
        self.stats.history_forgotten = forgotten.len;
    }

    /// The store's record of `plan`: each delta's member point by the
    /// hash of its encoding, each distinct set encoded once. `None` if a
    /// point is missing (a bug: every applied delta has one).
    fn forget_step(&self, plan: &weft_dag::ForgottenPrefix) -> Option<ForgetStep> {
        // Points are shared between deltas: encode each shared set once.
        let mut by_pointer: BTreeMap<*const MemberSet, Hash> = BTreeMap::new();
        let mut sets: BTreeMap<Hash, Vec<u8>> = BTreeMap::new();
        let mut hash_of = |set: &Arc<MemberSet>| {
            *by_pointer.entry(Arc::as_ptr(set)).or_insert_with(|| {
                let bytes = set.encode();
                let hash = Hash::of(&bytes);
                sets.entry(hash).or_insert(bytes);
                hash
            })
        };
        let mut points = Vec::with_capacity(plan.forgotten.len());
        for (id, _) in &plan.forgotten {
            let point = self.core.member_points.get(id)?;
            points.push((*id, hash_of(point)));
        }
        let members = hash_of(&Arc::new(self.core.members.clone()));
        Some(ForgetStep {
            history: ForgottenHistory { len: plan.len, frontier: plan.frontier.clone(), members },
            points,
            sets: sets.into_iter().collect(),
        })
    }
}
