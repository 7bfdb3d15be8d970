//! History queries over the applied deltas: what a peer is missing, and
//! pruning old payloads.
//!
//! Both walk parent links from a frontier and stop as early as the DAG allows,
//! so their cost follows the part of the DAG they concern (the difference with
//! the peer; the newly pruned deltas), not the whole history.

use std::collections::BinaryHeap;

use crate::id_map::{IdMap, IdSet};
use crate::log::{LogEntry, Node};
use crate::store::DagStore;
use crate::{CausalDelta, DagError, DeltaId};

/// Most deltas one [`DagStore::deltas_missing_for`] page returns, whatever
/// limit the caller asks for.
pub const PAGE_DELTAS_MAX: usize = 10_000;

/// One page of deltas a peer is missing, in causal (apply) order.
#[derive(Debug)]
pub struct DeltaPage<'a, P> {
    /// The deltas, each after all of its parents that the peer lacks.
    pub deltas: Vec<&'a CausalDelta<P>>,
    /// Pass this back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<u64>,
}

/// One delta of a [`HistoryPage`].
#[derive(Debug)]
pub enum HistoryDelta<'a, P> {
    /// Its payload is held.
    Held(&'a CausalDelta<P>),
    /// Its payload was pruned: the caller reads it from its own store by
    /// its apply position.
    Pruned {
        /// Its id.
        id: DeltaId,
        /// Its apply position.
        position: u64,
    },
}

/// One page of deltas a peer is missing, pruned ones included, in causal
/// (apply) order.
#[derive(Debug)]
pub struct HistoryPage<'a, P> {
    /// The deltas, each after all of its parents that the peer lacks.
    pub deltas: Vec<HistoryDelta<'a, P>>,
    /// Pass this back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<u64>,
}

impl<P> DagStore<P> {
    /// As [`DagStore::deltas_missing_for`], but a pruned delta the peer
    /// lacks is no error: it is listed by id and apply position, for a
    /// caller that keeps every payload on disk and only some in memory.
    pub fn history_missing_for(
        &self,
        peer_heads: &[DeltaId],
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage<'_, P>, DagError> {
        let limit = limit.clamp(1, PAGE_DELTAS_MAX);
        let mut missing = self.missing_orders(peer_heads, true)?;
        missing.sort_unstable();
        let from = cursor.map_or(0, |cursor| usize::try_from(cursor).unwrap_or(usize::MAX));
        let start = missing.partition_point(|order| *order < from);
        let page = missing.get(start..).unwrap_or_default();
        let deltas = page
            .iter()
            .take(limit)
            .filter_map(|order| {
                let entry = self.applied_entry(*order)?;
                match entry.delta() {
                    Some(delta) => Some(HistoryDelta::Held(delta)),
                    None => Some(HistoryDelta::Pruned { id: entry.id()?, position: *order as u64 }),
                }
            })
            .collect();
        let next_cursor = page.get(limit).map(|order| *order as u64);
        Ok(HistoryPage { deltas, next_cursor })
    }

    /// The deltas we applied that are neither in `peer_heads` nor ancestors
    /// of them, in apply order (a causal order), one page at a time.
    ///
    /// `cursor` is `None` for the first page, then the previous page's
    /// `next_cursor`; pages stay consistent if deltas are applied in between
    /// (newer deltas come later). `limit` is clamped to `1..=PAGE_DELTAS_MAX`.
    /// Peer heads we do not know are ignored: the peer may then receive some
    /// deltas it already has (duplicates are harmless).
    ///
    /// Delivering the pages in order to a peer that has every ancestor of its
    /// heads never leaves a delta pending there.
    ///
    /// Errors with [`DagError::PrunedHistory`] if the peer lacks a pruned
    /// delta: it needs a snapshot. Cost: O(d log d) per page, where d is the
    /// part of our DAG above the peer's heads.
    pub fn deltas_missing_for(
        &self,
        peer_heads: &[DeltaId],
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<DeltaPage<'_, P>, DagError> {
        let limit = limit.clamp(1, PAGE_DELTAS_MAX);
        let mut missing = self.missing_orders(peer_heads, false)?;
        missing.sort_unstable();
        let from = cursor.map_or(0, |cursor| usize::try_from(cursor).unwrap_or(usize::MAX));
        let start = missing.partition_point(|order| *order < from);
        let page = missing.get(start..).unwrap_or_default();
        let deltas = page.iter().take(limit).filter_map(|order| self.applied_entry(*order)?.delta()).collect();
        let next_cursor = page.get(limit).map(|order| *order as u64);
        Ok(DeltaPage { deltas, next_cursor })
    }

    /// The apply position of `id`, if applied (pruned included; the root is
    /// not in the log).
    fn applied_at(&self, id: &DeltaId) -> Option<usize> {
        self.held(id).and_then(LogEntry::applied_at)
    }

    /// The log entry of applied delta `id`.
    fn applied_log_entry(&self, id: &DeltaId) -> Option<&LogEntry<P>> {
        self.held(id).filter(|entry| entry.is_applied())
    }

    /// The apply positions of every applied delta that is not in `peer_heads`
    /// or an ancestor of them, unordered.
    ///
    /// Walks down from both frontiers at once in decreasing apply order: since
    /// a parent is always applied before its child, a delta's mark ("the peer
    /// has it" or not) is final when it is popped. The walk stops as soon as
    /// every delta left to visit is one the peer has. A pruned delta the
    /// peer lacks is an error unless `pruned_ok`.
    ///
    /// A forgotten frontier delta the peer lacks is always an error when we
    /// know every head of the peer: the peer lacks forgotten history. If a
    /// peer head is unknown to us, the peer may hold that frontier delta
    /// below it, so it is left out instead; should the peer lack it after
    /// all, the deltas above it stay pending there and the peer's parent
    /// request is what learns that the history is forgotten.
    fn missing_orders(&self, peer_heads: &[DeltaId], pruned_ok: bool) -> Result<Vec<usize>, DagError> {
        // Mark per visited delta: true when the peer has it.
        let mut peer_has: IdMap<bool> = IdMap::default();
        let mut frontier: BinaryHeap<usize> = BinaryHeap::new();
        let mut ours_in_frontier = 0usize;
        let mut knows_peer_heads = true;
        for head in peer_heads {
            match self.applied_at(head) {
                Some(order) => {
                    if peer_has.insert(*head, true).is_none() {
                        frontier.push(order);
                    }
                }
                None => knows_peer_heads &= *head == self.root,
            }
        }
        for head in &self.heads {
            if let Some(order) = self.applied_at(head)
                && !peer_has.contains_key(head)
            {
                peer_has.insert(*head, false);
                frontier.push(order);
                ours_in_frontier += 1;
            }
        }
        let mut missing = Vec::new();
        // Bounded by the applied set: each delta enters the frontier once.
        while ours_in_frontier > 0 {
            let Some(order) = frontier.pop() else { break };
            let Some(entry) = self.applied_entry(order) else { continue };
            let Some(id) = entry.id() else { continue };
            let has = peer_has.get(&id).copied().unwrap_or(true);
            if !has {
                ours_in_frontier -= 1;
                if entry.is_forgotten() {
                    if knows_peer_heads {
                        return Err(DagError::PrunedHistory { id });
                    }
                    continue;
                }
                if entry.is_pruned() && !pruned_ok {
                    return Err(DagError::PrunedHistory { id });
                }
                missing.push(order);
            }
            for parent in entry.parents() {
                let Some(parent_order) = self.applied_at(parent) else { continue };
                match peer_has.get_mut(parent) {
                    None => {
                        peer_has.insert(*parent, has);
                        frontier.push(parent_order);
                        if !has {
                            ours_in_frontier += 1;
                        }
                    }
                    Some(parent_has) => {
                        // Still in the frontier: its position is below `order`.
                        if has && !*parent_has {
                            *parent_has = true;
                            ours_in_frontier -= 1;
                        }
                    }
                }
            }
        }
        Ok(missing)
    }

    /// Drop the payloads of every applied ancestor of `checkpoint` (the
    /// checkpoint deltas themselves stay). A pruned delta keeps only its id,
    /// apply position and parent links, which sync needs to tell what a peer
    /// already has. Ids in `checkpoint` that are not
    /// applied are ignored. Returns how many deltas this call pruned.
    ///
    /// Pruned ids stay applied: they satisfy parents, are duplicates if sent
    /// again, are never reported missing and never become heads. The pruned
    /// set stays closed under ancestry, so the walk stops at the first pruned
    /// delta on each path.
    pub fn prune_below(&mut self, checkpoint: &[DeltaId]) -> usize {
        let keep: IdSet = checkpoint
            .iter()
            .filter(|id| self.applied_log_entry(id).is_some_and(|entry| !entry.is_pruned()))
            .copied()
            .collect();
        let mut walk: Vec<DeltaId> = Vec::new();
        for id in &keep {
            if let Some(entry) = self.applied_log_entry(id) {
                walk.extend_from_slice(entry.parents());
            }
        }
        let mut pruned = 0;
        // Bounded by the applied set: each delta is pruned (and expanded) once.
        while let Some(id) = walk.pop() {
            if keep.contains(&id) {
                // Already expanded above; it keeps its payload.
                continue;
            }
            let Some(Node::Held(index)) = self.nodes.get(&id) else { continue };
            let Some(entry) = self.log.get_mut(*index).filter(|entry| entry.is_applied()) else { continue };
            if !entry.prune() {
                continue;
            }
            walk.extend_from_slice(entry.parents());
            pruned += 1;
        }
        self.pruned_count += pruned;
        pruned
    }
}
