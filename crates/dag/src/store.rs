//! [`DagStore`]: validation, add, cascade, heads and the pending buffer's
//! public face. History queries and pruning live in `history.rs`.

use std::collections::{BTreeMap, VecDeque};

use crate::id_map::{IdMap, IdSet};
use crate::log::{LogEntry, LogState, Node};
use crate::pending::{Eviction, PendingBuffer, SlotRef};
use crate::{AddOutcome, CausalDelta, DagError, DagLimits, DeltaApplier, DeltaId, PendingStats};

/// Up to this many parents, duplicate parents are found by comparing pairs;
/// beyond it, by sorting a copy (keeps the check O(p log p) for large limits).
const PARENTS_PAIRWISE_CHECK_MAX: usize = 16;

/// The causal DAG of one context. See the crate doc for the guarantees.
///
/// Every delta the store holds, pending or applied, lives in one log (an
/// arena, see `log.rs`). One id table (`nodes`) maps each known id to its log
/// entry, or to a pending slot if the id is only waited on. Adding a delta
/// whose parents are applied costs one lookup per parent and one for the
/// delta; applying a pending delta in a cascade costs no lookup at all.
#[derive(Debug)]
pub struct DagStore<P> {
    pub(crate) root: DeltaId,
    pub(crate) limits: DagLimits,
    pub(crate) nodes: IdMap<Node>,
    pub(crate) log: Vec<LogEntry<P>>,
    /// Vacant log entries, reused before the log grows.
    pub(crate) log_free: Vec<usize>,
    /// Log indices of applied deltas in apply order (a causal order), from
    /// position `forgotten_len` on.
    pub(crate) apply_order: Vec<usize>,
    /// How many deltas, from position 0, were forgotten (`forget.rs`).
    pub(crate) forgotten_len: usize,
    /// The forgotten frontier's log entries by apply position.
    pub(crate) frontier: BTreeMap<usize, usize>,
    pub(crate) heads: IdSet,
    pending: PendingBuffer,
    pub(crate) pruned_count: usize,
}

impl<P> DagStore<P> {
    /// An empty DAG whose genesis is `root`. The root counts as applied and is
    /// the only head until a delta names it.
    pub fn new(root: DeltaId, limits: DagLimits) -> Self {
        let mut heads = IdSet::default();
        heads.insert(root);
        DagStore {
            root,
            limits,
            nodes: IdMap::default(),
            log: Vec::new(),
            log_free: Vec::new(),
            apply_order: Vec::new(),
            forgotten_len: 0,
            frontier: BTreeMap::new(),
            heads,
            pending: PendingBuffer::new(),
            pruned_count: 0,
        }
    }

    /// The genesis id.
    pub fn root(&self) -> DeltaId {
        self.root
    }

    /// The limits this store enforces.
    pub fn limits(&self) -> DagLimits {
        self.limits
    }

    /// Add a delta received from anywhere (local write, gossip, sync).
    ///
    /// Malformed deltas are rejected before any state changes. If all parents
    /// are applied, the delta is applied and so is every pending delta it made
    /// ready; otherwise it waits, and the outcome names the parents to request.
    /// `now_ms` is the arrival time used for eviction order and staleness.
    pub fn add<A: DeltaApplier<P>>(
        &mut self,
        delta: CausalDelta<P>,
        now_ms: u64,
        applier: &mut A,
    ) -> Result<AddOutcome, DagError<A::Error>> {
        self.validate(&delta)?;
        let awaited = match self.nodes.get(&delta.id) {
            Some(Node::Held(_)) => return Ok(AddOutcome::Duplicate),
            Some(Node::Awaited(slot)) => Some(*slot),
            None => None,
        };
        if awaited.is_none() && self.is_forgotten_delta(&delta, applier) {
            return Ok(AddOutcome::Duplicate);
        }
        if delta.parents.iter().all(|parent| self.is_applied(parent)) {
            return self.apply_ready(delta, awaited, now_ms, applier).map(|applied| AddOutcome::Applied { applied });
        }
        let mut forgotten_parents = Vec::new();
        if self.forgotten_len > 0 {
            forgotten_parents = self.forgotten_parents(&delta, applier);
            if forgotten_parents.len() + delta.parents.iter().filter(|parent| self.is_applied(parent)).count()
                == delta.parents.len()
            {
                return self
                    .apply_ready(delta, awaited, now_ms, applier)
                    .map(|applied| AddOutcome::Applied { applied });
            }
        }
        let mut evicted = Vec::new();
        let missing = self.buffer(delta, awaited, &forgotten_parents, now_ms, &mut evicted);
        Ok(AddOutcome::Pending { missing, evicted })
    }

    /// Re-attempt the pending deltas whose parents are all applied but whose
    /// application failed (or was cut short by another delta's failure), and
    /// cascade from them. Returns the deltas applied, in apply order. On a new
    /// failure the failing delta and the untried ones stay pending.
    ///
    /// Unlike the cascade of [`DagStore::add`], a retry does not stop at the
    /// first failure: each stalled delta is tried on its own, so one delta
    /// that never applies cannot hold back siblings that would. The error
    /// names the first failure; `applied_before` then lists everything the
    /// retry applied.
    pub fn retry_pending<A: DeltaApplier<P>>(&mut self, applier: &mut A) -> Result<Vec<DeltaId>, DagError<A::Error>> {
        let stalled = self.pending.take_stalled();
        let mut applied = Vec::new();
        let mut first_failure = None;
        for slot_ref in stalled {
            let mut ready = VecDeque::from([slot_ref]);
            if let Err(DagError::Apply { id, applied_before, source }) =
                self.drain_ready(&mut ready, applier, &mut applied)
            {
                applied = applied_before;
                first_failure.get_or_insert((id, source));
            }
        }
        self.settle_pending();
        match first_failure {
            None => Ok(applied),
            Some((id, source)) => Err(DagError::Apply { id, applied_before: applied, source }),
        }
    }

    /// The applied deltas no applied delta names as parent, sorted. The root
    /// alone before the first delta.
    pub fn heads(&self) -> Vec<DeltaId> {
        let mut heads: Vec<DeltaId> = self.heads.iter().copied().collect();
        heads.sort_unstable();
        heads
    }

    /// Parents named by pending deltas that are neither applied (nor pruned,
    /// nor the root) nor pending: what to request from peers. Sorted.
    /// Costs O(pending buffer).
    pub fn missing_parents(&self) -> Vec<DeltaId> {
        self.pending.missing_parents()
    }

    /// An applied delta that was not pruned.
    pub fn get(&self, id: &DeltaId) -> Option<&CausalDelta<P>> {
        self.held(id).filter(|entry| entry.is_applied()).and_then(LogEntry::delta)
    }

    /// A delta waiting in the pending buffer.
    pub fn get_pending(&self, id: &DeltaId) -> Option<&CausalDelta<P>> {
        self.held(id).filter(|entry| !entry.is_applied()).and_then(LogEntry::delta)
    }

    /// Whether `id` is applied (or pruned, or the root) or pending. A
    /// forgotten delta is not held: ask the store that forgot it.
    pub fn has(&self, id: &DeltaId) -> bool {
        *id == self.root || matches!(self.nodes.get(id), Some(Node::Held(_)))
    }

    /// Whether `id` is applied, pruned or the root: a satisfied parent. A
    /// forgotten delta is too, but only the store that forgot it knows it.
    pub fn is_applied(&self, id: &DeltaId) -> bool {
        *id == self.root || self.held(id).is_some_and(LogEntry::is_applied)
    }

    /// The parents of applied delta `id`, pruned or not (pruning keeps the
    /// links); `None` if it is not applied here.
    pub fn applied_parents(&self, id: &DeltaId) -> Option<&[DeltaId]> {
        self.held(id).filter(|entry| entry.is_applied()).map(LogEntry::parents)
    }

    /// The apply position of applied delta `id` (0 for the first applied
    /// after the root; pruned ones included); `None` if it is not applied
    /// here or is the root.
    pub fn applied_position(&self, id: &DeltaId) -> Option<u64> {
        self.held(id).and_then(LogEntry::applied_at).map(|order| order as u64)
    }

    /// The id of the delta applied at `position` (pruned ones and the
    /// forgotten frontier included, other forgotten ones not).
    pub fn applied_id(&self, position: u64) -> Option<DeltaId> {
        let order = usize::try_from(position).ok()?;
        self.applied_entry(order).and_then(LogEntry::id)
    }

    /// Whether `id` was applied and then pruned.
    pub fn is_pruned(&self, id: &DeltaId) -> bool {
        self.held(id).is_some_and(LogEntry::is_pruned)
    }

    /// Deltas applied (pruned and forgotten ones included, the root
    /// excluded): the next delta's apply position.
    pub fn applied_count(&self) -> usize {
        self.forgotten_len + self.apply_order.len()
    }

    /// Applied deltas whose payload was pruned.
    pub fn pruned_count(&self) -> usize {
        self.pruned_count
    }

    /// Deltas waiting in the pending buffer.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The pending buffer at `now_ms`. Costs O(pending buffer) (for
    /// `missing_count`).
    pub fn pending_stats(&self, now_ms: u64) -> PendingStats {
        PendingStats {
            count: self.pending.len(),
            oldest_age_ms: self.pending.oldest_arrival_ms().map(|arrival| now_ms.saturating_sub(arrival)),
            missing_count: self.pending.missing_parents().len(),
            evicted_total: self.pending.evicted_total(),
        }
    }

    /// Evict the pending deltas that have waited longer than
    /// [`DagLimits::pending_stale_ms`] at `now_ms`; returns them, oldest first.
    pub fn cleanup_stale(&mut self, now_ms: u64) -> Vec<DeltaId> {
        let mut evicted = Vec::new();
        self.pending.evict_stale(now_ms, self.limits.pending_stale_ms, &mut evicted);
        let evicted = self.vacate(evicted);
        self.settle_pending();
        evicted
    }

    /// The log entry of the delta applied at position `order` (a forgotten
    /// one only if it is on the frontier).
    pub(crate) fn applied_entry(&self, order: usize) -> Option<&LogEntry<P>> {
        let index = match order.checked_sub(self.forgotten_len) {
            Some(kept) => self.apply_order.get(kept),
            None => self.frontier.get(&order),
        };
        index.and_then(|index| self.log.get(*index))
    }

    /// The log entry of a received id (pending or applied).
    pub(crate) fn held(&self, id: &DeltaId) -> Option<&LogEntry<P>> {
        match self.nodes.get(id) {
            Some(Node::Held(index)) => self.log.get(*index),
            _ => None,
        }
    }

    /// Reject a malformed delta, touching nothing.
    fn validate<E>(&self, delta: &CausalDelta<P>) -> Result<(), DagError<E>> {
        let id = delta.id;
        let parents = &delta.parents;
        if id == self.root {
            return Err(DagError::RootId { id });
        }
        if parents.is_empty() {
            return Err(DagError::EmptyParents { id });
        }
        if parents.len() > self.limits.parents_max {
            return Err(DagError::TooManyParents { id, count: parents.len(), max: self.limits.parents_max });
        }
        if parents.contains(&id) {
            return Err(DagError::SelfParent { id });
        }
        let repeated = if parents.len() <= PARENTS_PAIRWISE_CHECK_MAX {
            parents.iter().enumerate().find(|(i, parent)| parents[..*i].contains(parent)).map(|(_, parent)| *parent)
        } else {
            let mut sorted = parents.clone();
            sorted.sort_unstable();
            sorted.windows(2).find(|pair| pair[0] == pair[1]).map(|pair| pair[0])
        };
        match repeated {
            Some(parent) => Err(DagError::DuplicateParent { id, parent }),
            None => Ok(()),
        }
    }

    /// Hold `delta` in the log and buffer it until its parents are applied
    /// (or as stalled if they already are). `awaited` is the pending slot of
    /// its id, if deltas wait on it; `forgotten` are parents the applier
    /// said were forgotten (applied). Returns its missing parents, sorted;
    /// pushes the ids evicted to respect the bound onto `evicted`.
    fn buffer(
        &mut self,
        delta: CausalDelta<P>,
        awaited: Option<usize>,
        forgotten: &[DeltaId],
        now_ms: u64,
        evicted: &mut Vec<DeltaId>,
    ) -> Vec<DeltaId> {
        let id = delta.id;
        let index = self.hold(delta, LogState::Pending { slot: usize::MAX });
        let child = self.pending.begin_insert(id, index, awaited, now_ms);
        self.nodes.insert(id, Node::Held(index));
        let mut missing = Vec::new();
        if let Some(entry) = self.log.get_mut(index) {
            entry.state = LogState::Pending { slot: child.0 };
        }
        let parents = self.log.get(index).map(LogEntry::parents).unwrap_or_default();
        for parent in parents {
            if *parent == self.root || forgotten.contains(parent) {
                continue;
            }
            let parent_slot = match self.nodes.get(parent) {
                Some(Node::Held(parent_index)) => match self.log.get(*parent_index).map(|entry| entry.state) {
                    Some(LogState::Pending { slot }) => slot,
                    _ => continue,
                },
                Some(Node::Awaited(slot)) => {
                    missing.push(*parent);
                    *slot
                }
                None => {
                    missing.push(*parent);
                    let slot = self.pending.alloc_awaited(*parent);
                    self.nodes.insert(*parent, Node::Awaited(slot));
                    slot
                }
            };
            self.pending.add_waiter(parent_slot, child);
        }
        self.pending.finish_insert(child);
        let mut out = Vec::new();
        self.pending.evict_over(self.limits.pending_max, &mut out);
        evicted.extend(self.vacate(out));
        self.settle_pending();
        missing.sort_unstable();
        missing
    }

    /// Put `delta` in the log (reusing a vacant entry if any).
    fn hold(&mut self, delta: CausalDelta<P>, state: LogState) -> usize {
        self.hold_entry(LogEntry::new(delta, state))
    }

    /// Put `entry` in the log (reusing a vacant entry if any).
    pub(crate) fn hold_entry(&mut self, entry: LogEntry<P>) -> usize {
        if let Some(index) = self.log_free.pop()
            && let Some(vacant) = self.log.get_mut(index)
        {
            *vacant = entry;
            return index;
        }
        self.log.push(entry);
        self.log.len() - 1
    }

    /// Drop the log entries of evicted deltas and update the id table;
    /// returns their ids.
    fn vacate(&mut self, evicted: Vec<Eviction>) -> Vec<DeltaId> {
        evicted
            .into_iter()
            .map(|eviction| {
                if let Some(entry) = self.log.get_mut(eviction.log) {
                    entry.vacate();
                    self.log_free.push(eviction.log);
                }
                match eviction.awaited_slot {
                    Some(slot) => self.nodes.insert(eviction.id, Node::Awaited(slot)),
                    None => self.nodes.remove(&eviction.id),
                };
                eviction.id
            })
            .collect()
    }

    /// Let the pending buffer drop stale records, and forget the ids whose
    /// awaited slots it freed.
    fn settle_pending(&mut self) {
        let mut forgotten = Vec::new();
        self.pending.settle(&mut forgotten);
        for id in forgotten {
            if let Some(Node::Awaited(_)) = self.nodes.get(&id) {
                self.nodes.remove(&id);
            }
        }
    }

    /// Apply a new delta whose parents are all applied, then cascade. On
    /// failure the delta joins the pending buffer as ready-but-stalled.
    fn apply_ready<A: DeltaApplier<P>>(
        &mut self,
        delta: CausalDelta<P>,
        awaited: Option<usize>,
        now_ms: u64,
        applier: &mut A,
    ) -> Result<Vec<DeltaId>, DagError<A::Error>> {
        let id = delta.id;
        if let Err(source) = applier.apply(&delta) {
            // Evictions here are counted in `PendingStats::evicted_total`.
            let forgotten = self.forgotten_parents(&delta, applier);
            self.buffer(delta, awaited, &forgotten, now_ms, &mut Vec::new());
            return Err(DagError::Apply { id, applied_before: Vec::new(), source });
        }
        let mut applied = vec![id];
        let index = self.hold(delta, LogState::Applied { order: self.applied_count() });
        self.nodes.insert(id, Node::Held(index));
        self.mark_applied(index);
        let Some(waited_slot) = awaited else { return Ok(applied) };
        let mut ready = VecDeque::new();
        self.pending.release(waited_slot, &mut ready);
        let result = self.drain_ready(&mut ready, applier, &mut applied);
        self.settle_pending();
        result.map(|()| applied)
    }

    /// Apply the ready pending deltas in `ready` and those they make ready.
    /// The loop is bounded by the pending buffer: each delta is pushed at most
    /// once (when its last parent is applied) and leaves when applied.
    fn drain_ready<A: DeltaApplier<P>>(
        &mut self,
        ready: &mut VecDeque<SlotRef>,
        applier: &mut A,
        applied: &mut Vec<DeltaId>,
    ) -> Result<(), DagError<A::Error>> {
        while let Some(slot_ref) = ready.pop_front() {
            let Some(index) = self.pending.ready_log_index(slot_ref) else { continue };
            let Some(delta) = self.log.get(index).and_then(LogEntry::delta) else { continue };
            let id = delta.id;
            if let Err(source) = applier.apply(delta) {
                self.pending.stall(std::iter::once(slot_ref).chain(ready.drain(..)));
                return Err(DagError::Apply { id, applied_before: std::mem::take(applied), source });
            }
            let (slot, _) = slot_ref;
            self.pending.take_applied(slot);
            self.mark_applied(index);
            applied.push(id);
            self.pending.release(slot, ready);
        }
        Ok(())
    }

    /// Record the delta at log `index` as applied: next in apply order, and
    /// the new head in place of its parents. Its id already maps to `index`.
    fn mark_applied(&mut self, index: usize) {
        let order = self.applied_count();
        let Some(entry) = self.log.get_mut(index) else { return };
        entry.state = LogState::Applied { order };
        let Some(delta) = entry.delta() else { return };
        for parent in &delta.parents {
            self.heads.remove(parent);
        }
        self.heads.insert(delta.id);
        self.apply_order.push(index);
    }
}

#[cfg(test)]
impl<P> DagStore<P> {
    /// Every internal invariant linking the id table, the log, the apply
    /// order, the heads and the pending buffer.
    pub(crate) fn check_consistency(&self) -> Result<(), String> {
        let slots = self.pending.check()?;
        for (slot, id, log) in &slots {
            match (self.nodes.get(id), log) {
                (Some(Node::Awaited(s)), None) if s == slot => {}
                (Some(Node::Held(index)), Some(log)) if index == log => {
                    let state = self.log.get(*index).map(|entry| entry.state);
                    if state != Some(LogState::Pending { slot: *slot }) {
                        return Err(format!("{id:?}: pending in slot {slot} but log state {state:?}"));
                    }
                }
                (node, log) => return Err(format!("{id:?}: slot {slot} (log {log:?}) but node {node:?}")),
            }
        }
        let mut applied = IdSet::default();
        for (order, index) in &self.frontier {
            let entry = self.log.get(*index).ok_or("frontier points past the log")?;
            let id = entry.id().ok_or("frontier entry is vacant")?;
            if !entry.is_forgotten() || entry.applied_at() != Some(*order) || *order >= self.forgotten_len {
                return Err(format!("frontier {id:?} at {order}: {:?}", entry.state));
            }
            if self.nodes.get(&id) != Some(&Node::Held(*index)) {
                return Err(format!("frontier {id:?} at log {index} but node {:?}", self.nodes.get(&id)));
            }
            applied.insert(id);
        }
        for (offset, index) in self.apply_order.iter().enumerate() {
            let order = self.forgotten_len + offset;
            let entry = self.log.get(*index).ok_or("apply order points past the log")?;
            if entry.applied_at() != Some(order) {
                return Err(format!("log {index} at order {order} says {:?}", entry.state));
            }
            let id = entry.id().ok_or("applied entry is vacant")?;
            if self.nodes.get(&id) != Some(&Node::Held(*index)) {
                return Err(format!("{id:?} applied at log {index} but node {:?}", self.nodes.get(&id)));
            }
            for parent in entry.parents() {
                // A parent the DAG holds nothing about may be forgotten.
                let forgotten = self.forgotten_len > 0 && !self.nodes.contains_key(parent);
                if *parent != self.root && !applied.contains(parent) && !forgotten {
                    return Err(format!("{id:?} applied before its parent {parent:?}"));
                }
            }
            applied.insert(id);
        }
        let held_pending = slots.iter().filter(|(_, _, log)| log.is_some()).count();
        let held = self.nodes.values().filter(|node| matches!(node, Node::Held(_))).count();
        if held != applied.len() + held_pending {
            return Err(format!("{held} held ids, {} applied, {held_pending} pending", applied.len()));
        }
        if self.nodes.len() != held + slots.iter().filter(|(_, _, log)| log.is_none()).count() {
            return Err("id table has entries for nothing".into());
        }
        let named: IdSet = self
            .apply_order
            .iter()
            .filter_map(|index| self.log.get(*index))
            .flat_map(|entry| entry.parents().iter().copied())
            .collect();
        let mut heads: IdSet = applied.iter().filter(|id| !named.contains(*id)).copied().collect();
        if heads.is_empty() {
            heads.insert(self.root);
        }
        if heads != self.heads {
            return Err(format!("heads {:?}, expected {heads:?}", self.heads));
        }
        Ok(())
    }
}
