//! The pending buffer's bookkeeping: which received deltas wait, on which
//! parents, since when.
//!
//! The deltas themselves stay in the store's log; this module keeps a slab of
//! [`PendingSlot`]s, one per id that is either a pending delta or a parent
//! some pending delta waits on (or both). The store's id table and log point
//! at slots by index; slots refer to each other by index, without hashing.
//! This module never touches the id table: it reports what the store must
//! change there.
//!
//! Per slot:
//! - `waiters`: the pending children waiting on this id. Applying the id walks
//!   only that list.
//! - `unsatisfied`: how many of the slot's delta's parents are not applied
//!   yet; the delta is ready when it reaches zero.
//!
//! Removal is lazy: a delta that leaves the buffer leaves stale records in its
//! parents' `waiters`. Each record carries the delta's insertion `seq`, so a
//! stale record is recognised even after its slot is reused; records are
//! compacted when stale ones outnumber live ones, so memory stays proportional
//! to the buffer and costs stay amortised O(1).
//!
//! Eviction order (oldest arrival, ties by id) uses a min-heap that is built
//! only when the buffer first overflows and kept while it is in use, so adds
//! below the bound pay nothing for it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::DeltaId;

/// Stale records tolerated in `waiters`, the eviction heap or `stalled`
/// beyond the number of live ones before a compaction pass (keeps compaction
/// amortised O(1) and avoids thrashing on small buffers).
/// Unit tests use a tiny slack so that every compaction path runs often.
const STALE_RECORDS_SLACK_MAX: usize = if cfg!(test) { 4 } else { 1024 };

/// "The delta inserted as `seq` into slot `.0`": a reference that goes stale
/// when that delta leaves the buffer, even if the slot is reused.
pub(crate) type SlotRef = (usize, u64);

/// A delta that left the buffer without being applied.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Eviction {
    pub(crate) id: DeltaId,
    /// Its log entry, which the store must vacate.
    pub(crate) log: usize,
    /// The slot, kept because pending deltas still wait on the id (the store
    /// marks the id awaited); `None` if the slot was freed (the store forgets
    /// the id).
    pub(crate) awaited_slot: Option<usize>,
}

/// One id the buffer tracks: a pending delta, a parent pending deltas wait
/// on, or both. A free slot has no delta and no waiters.
#[derive(Debug)]
struct PendingSlot {
    id: DeltaId,
    /// The delta's index in the store's log; `None`: not received (or
    /// evicted), only waited on.
    log: Option<usize>,
    /// Identifies the current delta in records; unique per insertion.
    seq: u64,
    arrival_ms: u64,
    /// Parents of the delta not applied yet.
    unsatisfied: usize,
    /// Pending children waiting on `id` (possibly stale).
    waiters: Waiters,
}

/// Most ids have at most one pending child: the first waiter is inline, and
/// `Vec::new` does not allocate.
#[derive(Debug, Default)]
struct Waiters {
    first: Option<SlotRef>,
    rest: Vec<SlotRef>,
}

impl Waiters {
    fn push(&mut self, waiter: SlotRef) {
        if self.first.is_none() {
            self.first = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &SlotRef> {
        self.first.iter().chain(self.rest.iter())
    }
}

/// Eviction order: oldest arrival first, ties by id; then the slot reference
/// (only separates a stale record from a live one).
type EvictionKey = Reverse<(u64, DeltaId, u64, usize)>;

/// The pending buffer's bookkeeping. See the module doc for the invariants.
#[derive(Debug)]
pub(crate) struct PendingBuffer {
    slots: Vec<PendingSlot>,
    free: Vec<usize>,
    /// Slots holding a delta.
    len: usize,
    /// Built on the first overflow; `None` until then, and again after it
    /// grew too stale (rebuilt on the next overflow).
    eviction_heap: Option<BinaryHeap<EvictionKey>>,
    /// Ready deltas whose application failed, in the order they stalled.
    stalled: Vec<SlotRef>,
    next_seq: u64,
    /// Records in all `waiters`, live or stale.
    waiter_records: usize,
    /// Sum of `unsatisfied` over held deltas: the live waiter records.
    live_waiter_records: usize,
    evicted_total: u64,
}

impl PendingBuffer {
    pub(crate) fn new() -> Self {
        PendingBuffer {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            eviction_heap: None,
            stalled: Vec::new(),
            next_seq: 0,
            waiter_records: 0,
            live_waiter_records: 0,
            evicted_total: 0,
        }
    }

    /// Pending deltas.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn evicted_total(&self) -> u64 {
        self.evicted_total
    }

    /// The earliest arrival among pending deltas. Costs O(slots).
    pub(crate) fn oldest_arrival_ms(&self) -> Option<u64> {
        self.slots.iter().filter(|entry| entry.log.is_some()).map(|entry| entry.arrival_ms).min()
    }

    /// Start buffering delta `id`, held at `log` in the store's log, in
    /// `awaited` (the slot of its id, if pending deltas already wait on it) or
    /// a new slot. Register its unapplied parents with [`Self::add_waiter`],
    /// then call [`Self::finish_insert`].
    pub(crate) fn begin_insert(&mut self, id: DeltaId, log: usize, awaited: Option<usize>, arrival_ms: u64) -> SlotRef {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match awaited {
            Some(slot) if self.slots.get(slot).is_some_and(|entry| entry.id == id && entry.log.is_none()) => slot,
            _ => self.alloc(id),
        };
        if let Some(entry) = self.slots.get_mut(slot) {
            entry.log = Some(log);
            entry.seq = seq;
            entry.arrival_ms = arrival_ms;
            entry.unsatisfied = 0;
        }
        self.len += 1;
        (slot, seq)
    }

    /// A slot for `id`, which is not received but which a pending delta is
    /// about to wait on.
    pub(crate) fn alloc_awaited(&mut self, id: DeltaId) -> usize {
        self.alloc(id)
    }

    /// Record that `child` waits on the id of `parent_slot`.
    pub(crate) fn add_waiter(&mut self, parent_slot: usize, child: SlotRef) {
        if let Some(parent) = self.slots.get_mut(parent_slot) {
            parent.waiters.push(child);
            self.waiter_records += 1;
            self.live_waiter_records += 1;
            if let Some(entry) = self.slots.get_mut(child.0) {
                entry.unsatisfied += 1;
            }
        }
    }

    /// Finish buffering `child`. If it waits on nothing (its application
    /// failed), it is stalled until [`Self::take_stalled`].
    pub(crate) fn finish_insert(&mut self, child: SlotRef) {
        let (slot, seq) = child;
        let Some(entry) = self.slots.get(slot) else { return };
        let key = Reverse((entry.arrival_ms, entry.id, seq, slot));
        if entry.unsatisfied == 0 {
            self.stall([child]);
        }
        if let Some(heap) = &mut self.eviction_heap {
            heap.push(key);
        }
    }

    /// The id of `slot` was applied: count it off for every pending child
    /// waiting on it, push the children that became ready onto `ready`, and
    /// free the slot.
    pub(crate) fn release(&mut self, slot: usize, ready: &mut VecDeque<SlotRef>) {
        let Some(entry) = self.slots.get_mut(slot) else { return };
        let waiters = std::mem::take(&mut entry.waiters);
        self.waiter_records -= waiters.len();
        for &(child, seq) in waiters.iter() {
            let Some(child_entry) = self.slots.get_mut(child) else { continue };
            if child_entry.log.is_none() || child_entry.seq != seq {
                continue;
            }
            child_entry.unsatisfied -= 1;
            self.live_waiter_records -= 1;
            if child_entry.unsatisfied == 0 {
                ready.push_back((child, seq));
            }
        }
        self.free.push(slot);
    }

    /// The log index of the delta `slot_ref` names, if it is still pending
    /// and ready.
    pub(crate) fn ready_log_index(&self, (slot, seq): SlotRef) -> Option<usize> {
        let entry = self.slots.get(slot)?;
        if entry.seq != seq || entry.unsatisfied != 0 {
            return None;
        }
        entry.log
    }

    /// The delta in `slot` is being applied: it leaves the buffer; the slot
    /// keeps its waiters until [`Self::release`].
    pub(crate) fn take_applied(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot)
            && entry.log.take().is_some()
        {
            // Its `unsatisfied` is zero, so no live waiter record goes with it.
            self.len -= 1;
        }
    }

    /// Mark ready deltas as stalled: their application failed or was cut
    /// short, and they wait for [`Self::take_stalled`].
    pub(crate) fn stall(&mut self, refs: impl IntoIterator<Item = SlotRef>) {
        self.stalled.extend(refs);
        if self.stalled.len() > self.len + STALE_RECORDS_SLACK_MAX {
            // No duplicates to drop: a delta stalls once per failure, and the
            // retry takes it out of `stalled` before it can fail again.
            let mut stalled = std::mem::take(&mut self.stalled);
            stalled.retain(|slot_ref| self.ready_log_index(*slot_ref).is_some());
            self.stalled = stalled;
        }
    }

    /// The stalled deltas still pending, in the order they stalled; they are
    /// no longer marked stalled (stall them again on failure).
    pub(crate) fn take_stalled(&mut self) -> VecDeque<SlotRef> {
        let stalled = std::mem::take(&mut self.stalled);
        stalled.into_iter().filter(|slot_ref| self.ready_log_index(*slot_ref).is_some()).collect()
    }

    /// Evict the oldest deltas until at most `max` remain.
    pub(crate) fn evict_over(&mut self, max: usize, evicted: &mut Vec<Eviction>) {
        if self.len <= max {
            return;
        }
        let mut heap = match self.eviction_heap.take() {
            Some(heap) => heap,
            None => self.live_eviction_keys().collect(),
        };
        while self.len > max {
            let Some(Reverse((_, _, seq, slot))) = heap.pop() else { break };
            self.evict((slot, seq), evicted);
        }
        if heap.len() <= 2 * self.len + STALE_RECORDS_SLACK_MAX {
            self.eviction_heap = Some(heap);
        }
    }

    /// Evict every delta that has waited more than `stale_ms` at `now_ms`,
    /// oldest first. Costs O(slots).
    pub(crate) fn evict_stale(&mut self, now_ms: u64, stale_ms: u64, evicted: &mut Vec<Eviction>) {
        let mut stale: Vec<EvictionKey> = self
            .live_eviction_keys()
            .filter(|Reverse((arrival_ms, ..))| now_ms.saturating_sub(*arrival_ms) > stale_ms)
            .collect();
        stale.sort_unstable_by_key(|Reverse(key)| *key);
        for Reverse((_, _, seq, slot)) in stale {
            self.evict((slot, seq), evicted);
        }
    }

    /// Ids that pending deltas wait on but that are neither applied nor
    /// pending, sorted. (A slot's id is never applied: applying it frees the
    /// slot.) Costs O(slots).
    pub(crate) fn missing_parents(&self) -> Vec<DeltaId> {
        let mut missing: Vec<DeltaId> = self
            .slots
            .iter()
            .filter(|entry| entry.log.is_none() && entry.waiters.iter().any(|waiter| self.is_live(*waiter)))
            .map(|entry| entry.id)
            .collect();
        missing.sort_unstable();
        missing
    }

    /// Drop stale records once they outnumber live ones by more than the
    /// slack; forget everything once the buffer is empty. Pushes the ids of
    /// awaited slots it frees onto `forgotten` (the store forgets them).
    pub(crate) fn settle(&mut self, forgotten: &mut Vec<DeltaId>) {
        if self.len == 0 {
            // Every slot left is waited on only by stale records: drop all.
            forgotten.extend(self.slots.iter().filter(|entry| !entry.waiters.is_empty()).map(|entry| entry.id));
            self.slots.clear();
            self.free.clear();
            self.eviction_heap = None;
            self.stalled.clear();
            self.waiter_records = 0;
            return;
        }
        if self.eviction_heap.as_ref().is_some_and(|heap| heap.len() > 2 * self.len + STALE_RECORDS_SLACK_MAX) {
            self.eviction_heap = None;
        }
        if self.waiter_records > 2 * self.live_waiter_records + STALE_RECORDS_SLACK_MAX {
            self.compact_waiters(forgotten);
        }
    }

    fn is_live(&self, (slot, seq): SlotRef) -> bool {
        self.slots.get(slot).is_some_and(|entry| entry.log.is_some() && entry.seq == seq)
    }

    fn live_eviction_keys(&self) -> impl Iterator<Item = EvictionKey> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.log.is_some())
            .map(|(slot, entry)| Reverse((entry.arrival_ms, entry.id, entry.seq, slot)))
    }

    fn alloc(&mut self, id: DeltaId) -> usize {
        let fresh = PendingSlot { id, log: None, seq: 0, arrival_ms: 0, unsatisfied: 0, waiters: Waiters::default() };
        match self.free.pop() {
            Some(slot) => {
                if let Some(entry) = self.slots.get_mut(slot) {
                    *entry = fresh;
                }
                slot
            }
            None => {
                self.slots.push(fresh);
                self.slots.len() - 1
            }
        }
    }

    /// Evict the delta `slot_ref` names, if it is still pending.
    fn evict(&mut self, slot_ref: SlotRef, evicted: &mut Vec<Eviction>) {
        if !self.is_live(slot_ref) {
            return;
        }
        let (slot, _) = slot_ref;
        let Some(entry) = self.slots.get(slot) else { return };
        let waited_on = entry.waiters.iter().any(|waiter| self.is_live(*waiter));
        let (id, unsatisfied) = (entry.id, entry.unsatisfied);
        let Some(entry) = self.slots.get_mut(slot) else { return };
        let Some(log) = entry.log.take() else { return };
        entry.unsatisfied = 0;
        // Its records in its parents' waiters go stale; compaction drops them.
        self.live_waiter_records -= unsatisfied;
        self.len -= 1;
        self.evicted_total += 1;
        let awaited_slot = if waited_on {
            Some(slot)
        } else {
            self.free_slot(slot);
            None
        };
        evicted.push(Eviction { id, log, awaited_slot });
    }

    /// Free a slot that holds no delta and no live waiter.
    fn free_slot(&mut self, slot: usize) {
        let Some(entry) = self.slots.get_mut(slot) else { return };
        self.waiter_records -= entry.waiters.len();
        entry.waiters = Waiters::default();
        self.free.push(slot);
    }

    fn compact_waiters(&mut self, forgotten: &mut Vec<DeltaId>) {
        let mut records = 0;
        let mut unused = Vec::new();
        for slot in 0..self.slots.len() {
            let Some(entry) = self.slots.get(slot) else { continue };
            if entry.waiters.is_empty() {
                continue;
            }
            let mut waiters = Waiters::default();
            for waiter in entry.waiters.iter().filter(|waiter| self.is_live(**waiter)) {
                waiters.push(*waiter);
            }
            records += waiters.len();
            let Some(entry) = self.slots.get_mut(slot) else { continue };
            if entry.log.is_none() && waiters.is_empty() {
                unused.push(slot);
            }
            entry.waiters = waiters;
        }
        self.waiter_records = records;
        for slot in unused {
            if let Some(entry) = self.slots.get(slot) {
                forgotten.push(entry.id);
            }
            self.free_slot(slot);
        }
    }
}

#[cfg(test)]
impl PendingBuffer {
    /// The buffer's internal invariants, for consistency tests. Returns, per
    /// slot in use, `(slot, id, log index)`.
    pub(crate) fn check(&self) -> Result<Vec<(usize, DeltaId, Option<usize>)>, String> {
        let held = self.slots.iter().filter(|entry| entry.log.is_some()).count();
        if held != self.len {
            return Err(format!("len {} but {held} slots hold a delta", self.len));
        }
        let records: usize = self.slots.iter().map(|entry| entry.waiters.len()).sum();
        if records != self.waiter_records {
            return Err(format!("waiter_records {} but {records} records", self.waiter_records));
        }
        let live: usize =
            self.slots.iter().map(|entry| entry.waiters.iter().filter(|w| self.is_live(**w)).count()).sum();
        let unsatisfied: usize =
            self.slots.iter().filter(|entry| entry.log.is_some()).map(|entry| entry.unsatisfied).sum();
        if live != self.live_waiter_records || unsatisfied != live {
            return Err(format!(
                "live records {live}, counter {}, unsatisfied sum {unsatisfied}",
                self.live_waiter_records
            ));
        }
        if self.waiter_records > 2 * self.live_waiter_records + STALE_RECORDS_SLACK_MAX {
            return Err(format!("{} waiter records for {} live", self.waiter_records, self.live_waiter_records));
        }
        if let Some(heap) = &self.eviction_heap {
            let live_keys = heap.iter().filter(|Reverse((_, _, seq, slot))| self.is_live((*slot, *seq))).count();
            if live_keys != self.len {
                return Err(format!("eviction heap has {live_keys} live keys for {} deltas", self.len));
            }
        }
        let mut in_use = Vec::new();
        for (slot, entry) in self.slots.iter().enumerate() {
            let free = self.free.contains(&slot);
            let used = entry.log.is_some() || !entry.waiters.is_empty();
            if free == used {
                return Err(format!("slot {slot}: free {free} but in use {used}"));
            }
            if used {
                in_use.push((slot, entry.id, entry.log));
            }
        }
        Ok(in_use)
    }
}
