//! Outgoing page streams: deltas a peer lacks, in causal order, in bursts.
//!
//! A stream is either "our deltas that are not ancestors of these ids"
//! (anti-entropy: the peer's heads and have hints) or "these requested ids"
//! (a parent request). Deltas are packed into pages of at most
//! [`PAGE_BYTES_MAX`] bytes (a page always carries at least one delta), and
//! at most `burst_pages_max` pages go out before the sender waits for the
//! receiver's `Continue`: the bytes a driver must buffer for one session are
//! bounded, and the receiver paces the sender.
//!
//! A delta whose payload was pruned from memory (`history_kept_max`) is
//! read back from the [`ReplicaStore`] by its apply position and verified
//! in full first, signature included (a damaged row is never sent: the
//! peer would reject it and penalize us). Only a delta the store cannot give
//! back is answered with `PrunedHistory`.

use std::collections::VecDeque;

use weft_dag::{DagError, DeltaId, HistoryDelta, PAGE_DELTAS_MAX};

use super::interface::{Output, PeerId, SessionId};
use super::{Replica, ReplicaStore};
use crate::delta::{SignedDelta, encode_causal};
use crate::protocol::{DeltaPage, PAGE_BYTES_MAX, PageEnd, SyncMessage};

/// What a stream sends.
#[derive(Debug)]
pub(crate) enum OutflowSource {
    /// Our applied deltas that are neither the peer's `heads` or `hints`
    /// (ids it has) nor ancestors of them, from apply position `cursor` on.
    Missing { heads: Vec<DeltaId>, hints: Vec<DeltaId>, cursor: Option<u64> },
    /// Requested deltas, in request order.
    Ids { ids: VecDeque<DeltaId>, not_found: Vec<DeltaId>, pruned: Vec<DeltaId> },
}

/// Where a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutflowState {
    /// Waiting for the peer's own deltas first (see the crate doc).
    Deferred,
    /// Send the next burst now.
    Ready,
    /// A burst went out; waiting for `Continue`.
    AwaitingContinue,
    /// The last page went out.
    Finished,
}

/// One outgoing stream.
#[derive(Debug)]
pub(crate) struct Outflow {
    pub(crate) source: OutflowSource,
    pub(crate) state: OutflowState,
}

/// Encoded deltas of one page.
type Page = Vec<Vec<u8>>;

/// Packs encoded deltas into pages until a burst is full.
struct Packer {
    pages: Vec<Page>,
    page: Page,
    page_bytes: usize,
    pages_max: usize,
}

impl Packer {
    fn new(pages_max: usize) -> Packer {
        Packer { pages: Vec::new(), page: Vec::new(), page_bytes: 0, pages_max: pages_max.max(1) }
    }

    /// Add a delta; `false` (and the delta is not taken) when the burst is
    /// full.
    fn push(&mut self, bytes: Vec<u8>) -> bool {
        if !self.page.is_empty() && self.page_bytes + bytes.len() > PAGE_BYTES_MAX {
            if self.pages.len() + 1 >= self.pages_max {
                return false;
            }
            self.pages.push(std::mem::take(&mut self.page));
            self.page_bytes = 0;
        }
        self.page_bytes += bytes.len();
        self.page.push(bytes);
        true
    }

    fn finish(mut self) -> Vec<Page> {
        if !self.page.is_empty() || self.pages.is_empty() {
            self.pages.push(self.page);
        }
        self.pages
    }
}

impl<S: ReplicaStore> Replica<S> {
    /// Send the next burst of `flow` on `session`.
    pub(super) fn send_burst(&mut self, peer: PeerId, session: SessionId, flow: &mut Outflow) {
        let mut packer = Packer::new(self.config.burst_pages_max);
        let exhausted = match &mut flow.source {
            OutflowSource::Missing { heads, hints, cursor } => {
                match self.pack_missing(heads, hints, cursor, &mut packer) {
                    Ok(exhausted) => exhausted,
                    Err(pruned) => {
                        // The peer needs history we no longer hold.
                        self.send_message(peer, session, &SyncMessage::PrunedHistory { ids: vec![pruned] });
                        packer = Packer::new(1);
                        true
                    }
                }
            }
            OutflowSource::Ids { ids, not_found, pruned } => {
                let exhausted = self.pack_ids(ids, not_found, pruned, &mut packer);
                if exhausted {
                    if !not_found.is_empty() {
                        let ids = std::mem::take(not_found);
                        self.send_message(peer, session, &SyncMessage::NotFound { ids });
                    }
                    if !pruned.is_empty() {
                        let ids = std::mem::take(pruned);
                        self.send_message(peer, session, &SyncMessage::PrunedHistory { ids });
                    }
                }
                exhausted
            }
        };
        let pages = packer.finish();
        let last = pages.len().saturating_sub(1);
        for (index, deltas) in pages.into_iter().enumerate() {
            let end = match (index == last, exhausted) {
                (false, _) => PageEnd::More,
                (true, true) => PageEnd::Done,
                (true, false) => PageEnd::AwaitContinue,
            };
            self.send_message(peer, session, &SyncMessage::Deltas(DeltaPage { deltas, end }));
        }
        flow.state = if exhausted { OutflowState::Finished } else { OutflowState::AwaitingContinue };
    }

    /// Pack our deltas not known to the peer; `Ok(true)` when none are left,
    /// `Err(id)` when the peer lacks pruned delta `id`.
    fn pack_missing(
        &self,
        heads: &[DeltaId],
        hints: &[DeltaId],
        cursor: &mut Option<u64>,
        packer: &mut Packer,
    ) -> Result<bool, DeltaId> {
        // A peer head we forgot lies below our frontier, so the peer lacks
        // a frontier delta: forgotten history. (A forgotten hint says
        // nothing: hints are old ancestors of the peer's heads.)
        if let Some(head) = heads.iter().find(|head| !self.dag.has(head) && self.core.is_forgotten(head)) {
            return Err(*head);
        }
        // The walk treats an id it does not hold as a head it cannot place
        // (see `DagStore::history_missing_for`): give it the heads as they
        // are, and only the hints it holds.
        let known: Vec<DeltaId> =
            heads.iter().copied().chain(hints.iter().filter(|hint| self.dag.is_applied(hint)).copied()).collect();
        let known = known.as_slice();
        // Each pass either ends or moves the cursor forward.
        loop {
            let page = match self.dag.history_missing_for(known, *cursor, PAGE_DELTAS_MAX) {
                Ok(page) => page,
                Err(DagError::PrunedHistory { id }) => return Err(id),
                Err(_) => return Ok(true),
            };
            for item in page.deltas {
                let (id, bytes) = match item {
                    HistoryDelta::Held(delta) => (delta.id, encode_causal(delta)),
                    HistoryDelta::Pruned { id, position } => match self.stored_delta(id, position) {
                        Some(bytes) => (id, bytes),
                        None => return Err(id),
                    },
                };
                if !packer.push(bytes) {
                    match self.dag.applied_position(&id) {
                        Some(position) => *cursor = Some(position),
                        None => return Ok(true),
                    }
                    return Ok(false);
                }
            }
            match page.next_cursor {
                Some(next) => *cursor = Some(next),
                None => return Ok(true),
            }
        }
    }

    /// Pack requested deltas (applied or pending); sort out the ones we
    /// cannot send. `true` when every id was handled.
    fn pack_ids(
        &self,
        ids: &mut VecDeque<DeltaId>,
        not_found: &mut Vec<DeltaId>,
        pruned: &mut Vec<DeltaId>,
        packer: &mut Packer,
    ) -> bool {
        while let Some(id) = ids.front().copied() {
            match self.dag.get(&id).or_else(|| self.dag.get_pending(&id)) {
                Some(delta) => {
                    if !packer.push(encode_causal(delta)) {
                        return false;
                    }
                }
                None if self.dag.is_pruned(&id)
                    || self.dag.is_forgotten_frontier(&id)
                    || self.core.is_forgotten(&id) =>
                {
                    let stored = self.dag.applied_position(&id).and_then(|position| self.stored_delta(id, position));
                    match stored {
                        Some(bytes) => {
                            if !packer.push(bytes) {
                                return false;
                            }
                        }
                        None => pruned.push(id),
                    }
                }
                None => not_found.push(id),
            }
            ids.pop_front();
        }
        true
    }

    /// The stored row of pruned delta `id`, applied at `position`, if the
    /// store still has it intact.
    pub(crate) fn stored_delta(&self, id: DeltaId, position: u64) -> Option<Vec<u8>> {
        let rows = self.core.store.load_applied(position.checked_sub(1), 1).ok()?;
        let (at, bytes) = rows.into_iter().next()?;
        let delta = SignedDelta::decode(&bytes).ok()?;
        // The full check, signature included: the id does not cover the
        // signature, and a peer penalizes a delta whose signature fails.
        (at == position && delta.id == id && delta.verify(&self.context).is_ok()).then_some(bytes)
    }

    pub(super) fn send_message(&mut self, to: PeerId, session: SessionId, message: &SyncMessage) {
        self.out.push(Output::Send { to, session, bytes: message.encode() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packer_bounds_pages_and_bursts() {
        let mut packer = Packer::new(2);
        let big = vec![0u8; PAGE_BYTES_MAX / 2 + 1];
        assert!(packer.push(big.clone()));
        assert!(packer.push(big.clone()), "second page opens");
        assert!(!packer.push(big.clone()), "a third page would exceed the burst");
        let pages = packer.finish();
        assert_eq!(pages.len(), 2);
        assert!(pages.iter().all(|page| page.len() == 1));
        assert_eq!(Packer::new(3).finish(), vec![Vec::<Vec<u8>>::new()], "an empty burst still carries its end");
    }
}
