//! Parent requests: fetching the missing parents of pending deltas.
//!
//! A pending delta's missing parents become *wants*, each remembering the
//! peer to ask first (the one that sent the child), how deep the chain of
//! requests is, and which peers already failed. Idle wants are batched per
//! peer into `GetDeltas` requests of at most [`REQUEST_IDS_MAX`] ids, with at
//! most `parent_requests_in_flight_max` requests open. A request answered
//! with `NotFound`, left unanswered past `parent_request_timeout_ms`, or cut
//! by a disconnect, sends its ids back to idle, marked as failed by that
//! peer; the next attempt goes to another connected member.
//!
//! Escalation: a want that failed `parent_request_attempts_max` times, or a
//! chain of answers whose own parents are missing more than
//! `parent_request_depth_max` rounds deep, turns into an anti-entropy session
//! (with the peer that was being asked), which fetches any gap in one round
//! trip. The pending sweep re-wants any missing parent nobody is fetching, so
//! a pending delta is never a dead end: it is fetched, or evicted as stale.

use std::collections::{BTreeMap, BTreeSet};

use weft_dag::DeltaId;

use super::interface::{Output, PeerId, SessionId};
use super::session::{Session, SessionKind};
use super::{Replica, ReplicaStore};
use crate::protocol::{GetDeltas, PROTOCOL_VERSION, REQUEST_IDS_MAX, SyncMessage};

/// One missing parent being fetched.
#[derive(Clone, Debug, Default)]
struct Want {
    preferred: Option<PeerId>,
    depth: u32,
    /// Peers that failed to deliver it (bounded by the attempts limit).
    failed_by: Vec<PeerId>,
    /// The request it is in, if any.
    in_flight: Option<SessionId>,
}

/// The wanted ids. At most the DAG's pending bound of them.
#[derive(Debug, Default)]
pub(crate) struct Wants {
    entries: BTreeMap<DeltaId, Want>,
    /// Wanted and not in a request.
    idle: BTreeSet<DeltaId>,
    /// Parent requests open.
    in_flight: usize,
    /// Something changed since the last scheduling pass.
    dirty: bool,
}

impl Wants {
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub(crate) fn contains(&self, id: &DeltaId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<S: ReplicaStore> Replica<S> {
    /// Want `ids` (missing parents of a delta that came from `from`).
    pub(super) fn want_parents(&mut self, ids: &[DeltaId], from: Option<PeerId>, depth: u32) {
        if ids.is_empty() {
            return;
        }
        if depth > self.config.parent_request_depth_max {
            // A long gap: one anti-entropy round trip beats many requests.
            self.stats.escalations += 1;
            self.request_sync_soon(from, 0);
            return;
        }
        let bound = self.config.dag_limits.pending_max;
        for id in ids {
            if self.wants.entries.len() >= bound {
                break;
            }
            if self.wants.entries.contains_key(id) || self.core.rejected.contains(id) {
                continue;
            }
            self.wants.entries.insert(*id, Want { preferred: from, depth, failed_by: Vec::new(), in_flight: None });
            self.wants.idle.insert(*id);
            self.wants.dirty = true;
        }
    }

    /// Ids that request `session` to `peer` did not deliver: back to idle
    /// (unless a newer request already carries them).
    pub(super) fn parents_not_delivered(&mut self, ids: &[DeltaId], peer: PeerId, session: SessionId) {
        for id in ids {
            if self.holds(id) {
                self.wants.entries.remove(id);
                self.wants.idle.remove(id);
                continue;
            }
            if let Some(want) = self.wants.entries.get_mut(id)
                && want.in_flight == Some(session)
            {
                want.in_flight = None;
                if !want.failed_by.contains(&peer) {
                    want.failed_by.push(peer);
                }
                self.wants.idle.insert(*id);
                self.wants.dirty = true;
            }
        }
    }

    /// A parent request session ended (answered, failed or cut).
    pub(super) fn parent_request_ended(&mut self, ids: &[DeltaId], peer: PeerId, session: SessionId) {
        self.wants.in_flight = self.wants.in_flight.saturating_sub(1);
        self.wants.dirty = true;
        self.parents_not_delivered(ids, peer, session);
    }

    /// Send requests for idle wants, escalate the hopeless ones.
    pub(super) fn schedule_wants(&mut self, now_ms: u64) {
        if !self.wants.dirty {
            return;
        }
        self.wants.dirty = false;
        let peers: Vec<PeerId> = self.peers.iter().copied().collect();
        let mut batches: BTreeMap<PeerId, (Vec<DeltaId>, u32)> = BTreeMap::new();
        let mut escalate: Option<Option<PeerId>> = None;
        // Look at no more idle wants than the free request slots can carry.
        let free_slots = self.config.parent_requests_in_flight_max.saturating_sub(self.wants.in_flight);
        let capacity = free_slots.saturating_mul(REQUEST_IDS_MAX);
        let mut assigned = 0usize;
        let idle: Vec<DeltaId> = self.wants.idle.iter().copied().collect();
        for id in idle {
            if assigned >= capacity {
                break;
            }
            if self.holds(&id) || self.core.rejected.contains(&id) {
                self.wants.entries.remove(&id);
                self.wants.idle.remove(&id);
                continue;
            }
            let Some(want) = self.wants.entries.get(&id) else {
                self.wants.idle.remove(&id);
                continue;
            };
            if peers.is_empty() {
                // Nobody to ask; PeerUp marks the wants dirty again.
                break;
            }
            let exhausted = want.failed_by.len() >= self.config.parent_request_attempts_max;
            let candidates: Vec<PeerId> = peers.iter().filter(|p| !want.failed_by.contains(p)).copied().collect();
            if exhausted || candidates.is_empty() {
                escalate = Some(want.preferred.or_else(|| want.failed_by.last().copied()));
                self.stats.escalations += 1;
                self.wants.entries.remove(&id);
                self.wants.idle.remove(&id);
                continue;
            }
            let target = match want.preferred.filter(|p| candidates.contains(p)) {
                Some(preferred) => preferred,
                None => candidates[self.rng.index(candidates.len())],
            };
            let batch = batches.entry(target).or_default();
            assigned += 1;
            batch.0.push(id);
            batch.1 = batch.1.max(want.depth);
        }
        for (peer, (ids, depth)) in batches {
            for chunk in ids.chunks(REQUEST_IDS_MAX) {
                if self.wants.in_flight >= self.config.parent_requests_in_flight_max {
                    // The rest stays idle until a request ends.
                    return self.finish_schedule(escalate, now_ms);
                }
                self.send_parent_request(peer, chunk.to_vec(), depth, now_ms);
            }
        }
        self.finish_schedule(escalate, now_ms);
    }

    fn finish_schedule(&mut self, escalate: Option<Option<PeerId>>, now_ms: u64) {
        if let Some(preferred) = escalate {
            self.request_sync_soon(preferred, now_ms);
        }
    }

    fn send_parent_request(&mut self, peer: PeerId, ids: Vec<DeltaId>, depth: u32, now_ms: u64) {
        let session = self.new_session_id();
        for id in &ids {
            self.wants.idle.remove(id);
            if let Some(want) = self.wants.entries.get_mut(id) {
                want.in_flight = Some(session);
            }
        }
        self.wants.in_flight += 1;
        self.stats.parent_requests += 1;
        let kind = SessionKind::ParentRequest { ids: ids.clone(), depth };
        let request = SyncMessage::GetDeltas(GetDeltas { version: PROTOCOL_VERSION, context: self.context, ids });
        self.out.push(Output::Send { to: peer, session, bytes: request.encode() });
        let deadline_ms = now_ms.saturating_add(self.config.parent_request_timeout_ms);
        self.sessions.insert(session, Session::new(peer, now_ms, deadline_ms, kind));
    }

    /// Re-want every missing parent that nobody is fetching.
    pub(super) fn rewant_missing_parents(&mut self) {
        let missing: Vec<DeltaId> =
            self.dag.missing_parents().into_iter().filter(|id| !self.wants.contains(id)).collect();
        self.want_parents(&missing, None, 0);
    }

    /// Wanted ids (for tests and metrics).
    pub fn wanted_count(&self) -> usize {
        self.wants.len()
    }
}
