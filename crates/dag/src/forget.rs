//! Forgetting old history: the DAG lets go of a prefix of its apply order
//! entirely, so its memory follows the kept window, not the whole history.
//!
//! Pruning ([`DagStore::prune_below`]) drops payloads but keeps every id and
//! parent link. Forgetting drops those too, for every delta applied before
//! a position. Any prefix of the apply order is closed under ancestry (a
//! parent is applied before its child), so the forgotten deltas are exactly
//! the ancestors of the prefix's maximal deltas, its **frontier**. The DAG
//! keeps only the frontier (each delta's id and apply position), which is
//! what the history walk needs to tell whether a peer has all of the
//! forgotten part: it does exactly when it has every frontier delta.
//!
//! A forgotten delta still counts as applied, but only the caller's store
//! knows its id. The DAG asks it through [`DeltaApplier::is_forgotten`],
//! and only when it must: for a parent it holds nothing about, and for a
//! delta none of whose parents it holds (a delta with a parent held in
//! memory cannot be forgotten: a forgotten delta's parents are forgotten
//! and not on the frontier, since the frontier's deltas are maximal).
//! So a DAG that forgot nothing never asks, and one that did asks only
//! about deltas that name history older than its window.
//!
//! Guarantees (checked by the property tests against a DAG that never
//! forgets, fed the same deltas in the same order):
//! - the same outcome for every add, the same apply order and the same heads;
//! - the history walk answers the same deltas, or
//!   [`DagError::PrunedHistory`](crate::DagError::PrunedHistory) exactly when
//!   the peer (whose heads are all known) lacks a forgotten delta.

use crate::log::{LogState, Node};
use crate::store::DagStore;
use crate::{CausalDelta, DeltaApplier, DeltaId};

/// What one [`DagStore::forget_below`] let go of, for the caller to
/// persist: it must be able to answer [`DeltaApplier::is_forgotten`] for
/// every id in `forgotten`, and to restart from `frontier` with
/// [`DagStore::resume`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForgottenPrefix {
    /// The deltas forgotten by this call, with their apply positions, in
    /// apply order (frontier ones included).
    pub forgotten: Vec<(DeltaId, u64)>,
    /// How many deltas are now forgotten, from position 0.
    pub len: u64,
    /// The forgotten part's maximal deltas, with their apply positions,
    /// in apply order.
    pub frontier: Vec<(DeltaId, u64)>,
}

impl<P> DagStore<P> {
    /// A DAG that forgot the first `len` applied deltas, whose maximal
    /// deltas are `frontier` (as a [`ForgottenPrefix`] reported): what a
    /// restart builds before replaying the kept deltas. The heads are the
    /// frontier until a delta names them. Frontier entries at positions at
    /// or past `len` are ignored.
    pub fn resume(root: DeltaId, limits: crate::DagLimits, len: u64, frontier: &[(DeltaId, u64)]) -> DagStore<P> {
        let mut dag = DagStore::new(root, limits);
        let Ok(len) = usize::try_from(len) else { return dag };
        let frontier: Vec<(DeltaId, usize)> = frontier
            .iter()
            .filter(|(id, _)| *id != root)
            .filter_map(|(id, position)| Some((*id, usize::try_from(*position).ok().filter(|p| *p < len)?)))
            .collect();
        if len == 0 {
            return dag;
        }
        dag.forgotten_len = len;
        dag.heads.clear();
        for (id, order) in frontier {
            if dag.nodes.contains_key(&id) || dag.frontier.contains_key(&order) {
                continue;
            }
            let index = dag.hold_forgotten(id, order);
            dag.nodes.insert(id, Node::Held(index));
            dag.frontier.insert(order, index);
            dag.heads.insert(id);
        }
        if dag.heads.is_empty() {
            // A prefix has at least one maximal delta; with none given, the
            // root stands in so that the heads are never empty.
            dag.heads.insert(root);
        }
        dag
    }

    /// How many deltas, from apply position 0, this DAG forgot.
    pub fn forgotten_len(&self) -> u64 {
        self.forgotten_len as u64
    }

    /// The forgotten part's maximal deltas with their apply positions, in
    /// apply order.
    pub fn forgotten_frontier(&self) -> Vec<(DeltaId, u64)> {
        self.frontier.iter().filter_map(|(order, index)| Some((self.log.get(*index)?.id()?, *order as u64))).collect()
    }

    /// Whether `id` is on the forgotten frontier.
    pub fn is_forgotten_frontier(&self, id: &DeltaId) -> bool {
        self.held(id).is_some_and(|entry| entry.is_forgotten())
    }

    /// What [`DagStore::forget_below`] with `position` would forget,
    /// without forgetting it: persist this first, then forget.
    pub fn forget_plan(&self, position: u64) -> ForgottenPrefix {
        let end = usize::try_from(position).unwrap_or(usize::MAX).min(self.applied_count());
        let start = self.forgotten_len;
        let kept = self.apply_order.get(..end.saturating_sub(start)).unwrap_or_default();
        let (forgotten, named) = self.forgotten_and_named(start, kept);
        let mut frontier: Vec<(DeltaId, u64)> =
            self.forgotten_frontier().into_iter().filter(|(id, _)| !named.contains(id)).collect();
        frontier.extend(forgotten.iter().filter(|(id, _)| !named.contains(id)).copied());
        ForgottenPrefix { forgotten, len: end.max(start) as u64, frontier }
    }

    /// The ids (with positions) of the applied deltas at log `indices`,
    /// applied from position `start` on, and every parent they name.
    fn forgotten_and_named(&self, start: usize, indices: &[usize]) -> (Vec<(DeltaId, u64)>, crate::id_map::IdSet) {
        let mut named = crate::id_map::IdSet::default();
        let mut forgotten = Vec::with_capacity(indices.len());
        for (offset, index) in indices.iter().enumerate() {
            let Some(entry) = self.log.get(*index) else { continue };
            let Some(id) = entry.id() else { continue };
            named.extend(entry.parents().iter().copied());
            forgotten.push((id, (start + offset) as u64));
        }
        (forgotten, named)
    }

    /// Forget every delta applied before `position` (clamped to the applied
    /// count): drop its log entry and id, keeping only the frontier's ids
    /// and positions. Returns what was forgotten (as
    /// [`DagStore::forget_plan`] said), which the caller must have
    /// persisted: from now on the DAG asks [`DeltaApplier::is_forgotten`]
    /// about those ids. Nothing if `position` is not past what is already
    /// forgotten.
    ///
    /// Pending deltas are untouched: they wait only on parents that are not
    /// applied, so none waits on a forgotten one.
    pub fn forget_below(&mut self, position: u64) -> ForgottenPrefix {
        let end = usize::try_from(position).unwrap_or(usize::MAX).min(self.applied_count());
        let Some(count) = end.checked_sub(self.forgotten_len).filter(|count| *count > 0) else {
            return ForgottenPrefix {
                forgotten: Vec::new(),
                len: self.forgotten_len as u64,
                frontier: self.forgotten_frontier(),
            };
        };
        let start = self.forgotten_len;
        let indices: Vec<usize> = self.apply_order.drain(..count).collect();
        self.forgotten_len = end;
        // Every delta named as a parent inside the prefix is not maximal.
        // The old frontier's deltas name no kept parents (theirs are gone).
        let (forgotten, named) = self.forgotten_and_named(start, &indices);
        // The old frontier's deltas that a newly forgotten one names leave it.
        let leaving: Vec<(usize, usize)> = self
            .frontier
            .iter()
            .filter(|(_, index)| {
                self.log.get(**index).and_then(|entry| entry.id()).is_some_and(|id| named.contains(&id))
            })
            .map(|(order, index)| (*order, *index))
            .collect();
        for (order, index) in leaving {
            self.frontier.remove(&order);
            self.drop_entry(index);
        }
        for (offset, index) in indices.into_iter().enumerate() {
            let Some(entry) = self.log.get_mut(index) else { continue };
            let Some(id) = entry.id() else { continue };
            if named.contains(&id) {
                if entry.is_pruned() {
                    self.pruned_count = self.pruned_count.saturating_sub(1);
                }
                self.drop_entry(index);
            } else {
                if entry.forget_to_frontier() {
                    self.pruned_count = self.pruned_count.saturating_sub(1);
                }
                self.frontier.insert(start + offset, index);
            }
        }
        ForgottenPrefix { forgotten, len: end as u64, frontier: self.forgotten_frontier() }
    }

    /// Whether `delta`, which the DAG does not hold, is a forgotten one.
    /// Only a delta none of whose parents the DAG holds can be: asking the
    /// applier is skipped otherwise.
    pub(crate) fn is_forgotten_delta<A: DeltaApplier<P>>(&self, delta: &CausalDelta<P>, applier: &mut A) -> bool {
        self.forgotten_len > 0
            && !delta.parents.iter().any(|parent| self.nodes.contains_key(parent))
            && applier.is_forgotten(&delta.id)
    }

    /// The parents of `delta` that the DAG holds nothing about and the
    /// applier knows as forgotten.
    pub(crate) fn forgotten_parents<A: DeltaApplier<P>>(
        &self,
        delta: &CausalDelta<P>,
        applier: &mut A,
    ) -> Vec<DeltaId> {
        if self.forgotten_len == 0 {
            return Vec::new();
        }
        delta
            .parents
            .iter()
            .filter(|parent| **parent != self.root && !self.nodes.contains_key(*parent) && applier.is_forgotten(parent))
            .copied()
            .collect()
    }

    /// Free the log entry at `index` and its id.
    fn drop_entry(&mut self, index: usize) {
        let Some(entry) = self.log.get_mut(index) else { return };
        if let Some(id) = entry.id() {
            self.nodes.remove(&id);
        }
        entry.vacate();
        self.log_free.push(index);
    }

    /// A log entry for a frontier delta at apply position `order`.
    fn hold_forgotten(&mut self, id: DeltaId, order: usize) -> usize {
        self.hold_entry(crate::log::LogEntry::frontier(id, LogState::Applied { order }))
    }
}
