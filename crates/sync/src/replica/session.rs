//! Sync sessions: anti-entropy (both ends) and parent requests (both ends).
//!
//! Each session is one stream, keyed by [`SessionId`]. Who opened it tells
//! which side we are: a message on a session we opened is an answer, on a
//! session the sender opened a request or a continuation. A message for a
//! session we no longer hold (it ended, timed out) is dropped quietly: it is
//! late, not hostile. Every session has a deadline and is dropped when it
//! passes.
//!
//! The anti-entropy exchange, from the initiator's side:
//! 1. send `SyncRequest` (heads, hints, root hash);
//! 2. on `SyncReply`: compare root hashes if heads are equal; unless the
//!    responder holds all our heads (`has_your_heads`), stream the deltas
//!    it lacks (computed from its heads and hints);
//! 3. receive the responder's pages until `Done`.
//!
//! The responder answers `SyncReply` at once, then streams what the
//! initiator lacks **at once if it holds all the initiator's heads** (the
//! difference is then exact, and the initiator has nothing for it),
//! otherwise **after** the initiator's own pages are in (then it holds
//! them, and the difference is exact again). A replica that is simply
//! behind gets everything it lacks, and nothing twice, in one round trip.

use weft_dag::DeltaId;

use super::interface::{Offense, Output, PeerId, SessionId};
use super::outflow::{Outflow, OutflowSource, OutflowState};
use super::receive::Origin;
use super::{Replica, ReplicaStore};
use crate::protocol::{
    DeltaPage, ErrorCode, GetDeltas, PROTOCOL_VERSION, PageEnd, ProtocolError, Summary, SyncMessage, SyncReply,
    SyncRequest, error_reply,
};

/// Least wait before retrying anti-entropy after a `Busy` refusal, a
/// broken stream or a timeout.
pub const RETRY_BACKOFF_MIN_MS: u64 = 250;
/// Random spread added to [`RETRY_BACKOFF_MIN_MS`].
pub const RETRY_BACKOFF_SPREAD_MS: u64 = 2_000;

/// One open stream.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) peer: PeerId,
    pub(crate) deadline_ms: u64,
    /// When the peer last sent something on it (or it opened).
    pub(crate) active_ms: u64,
    pub(crate) kind: SessionKind,
}

/// What a stream is for.
#[derive(Debug)]
pub(crate) enum SessionKind {
    /// We opened an anti-entropy session.
    /// `covers`: how many deltas we had applied when we sent our summary,
    /// or when our stream of what the peer lacks ran out; once the session
    /// completes the peer holds all of them.
    SyncInitiator { replied: bool, inflow_done: bool, outflow: Option<Outflow>, covers: u64 },
    /// A peer opened one with us; `expects_push` when it holds deltas we
    /// lack (we did not know all its heads).
    SyncResponder { expects_push: bool, inflow_done: bool, outflow: Outflow },
    /// We asked for these parents.
    ParentRequest { ids: Vec<DeltaId>, depth: u32 },
    /// We answer a peer's parent request.
    ParentAnswer { outflow: Outflow },
}

impl Session {
    pub(crate) fn new(peer: PeerId, now_ms: u64, deadline_ms: u64, kind: SessionKind) -> Session {
        Session { peer, deadline_ms, active_ms: now_ms, kind }
    }

    /// When the session is dropped unless the peer speaks again.
    pub(crate) fn expires_ms(&self, idle_ms: u64) -> u64 {
        self.deadline_ms.min(self.active_ms.saturating_add(idle_ms))
    }

    fn outflow_mut(&mut self) -> Option<&mut Outflow> {
        match &mut self.kind {
            SessionKind::SyncInitiator { outflow, .. } => outflow.as_mut(),
            SessionKind::SyncResponder { outflow, .. } | SessionKind::ParentAnswer { outflow } => Some(outflow),
            SessionKind::ParentRequest { .. } => None,
        }
    }

    fn is_complete(&self) -> bool {
        let finished = |flow: &Outflow| flow.state == OutflowState::Finished;
        match &self.kind {
            SessionKind::SyncInitiator { replied, inflow_done, outflow, .. } => {
                *inflow_done && (!*replied || outflow.as_ref().is_some_and(finished))
            }
            SessionKind::SyncResponder { inflow_done, outflow, .. } => *inflow_done && finished(outflow),
            SessionKind::ParentAnswer { outflow } => finished(outflow),
            SessionKind::ParentRequest { .. } => false,
        }
    }

    fn is_inbound(&self) -> bool {
        matches!(self.kind, SessionKind::SyncResponder { .. } | SessionKind::ParentAnswer { .. })
    }

    /// Whether the peer may still stream a bulk of deltas to us here.
    pub(crate) fn is_receiving(&self) -> bool {
        match &self.kind {
            SessionKind::SyncInitiator { inflow_done, .. } => !*inflow_done,
            SessionKind::SyncResponder { expects_push, inflow_done, .. } => *expects_push && !*inflow_done,
            SessionKind::ParentRequest { .. } | SessionKind::ParentAnswer { .. } => false,
        }
    }
}

/// `heads` and `hints` together: ids the peer has with all their ancestors.
fn missing_for(summary: &Summary) -> OutflowSource {
    OutflowSource::Missing { heads: summary.heads.clone(), hints: summary.hints.clone(), cursor: None }
}

impl<S: ReplicaStore> Replica<S> {
    pub(super) fn on_stream_message(&mut self, from: PeerId, session: SessionId, bytes: &[u8], now_ms: u64) {
        let message = match SyncMessage::decode(bytes) {
            Ok(message) => message,
            Err(error) => return self.refuse(from, session, error, true),
        };
        if session.opener == self.local_peer {
            self.on_answer(from, session, message, now_ms);
        } else if session.opener == from {
            self.on_request(from, session, message, now_ms);
        }
    }

    pub(super) fn on_stream_closed(&mut self, peer: PeerId, session: SessionId, now_ms: u64) {
        if self.sessions.get(&session).is_some_and(|s| s.peer == peer) {
            self.session_failed(session, false, now_ms);
        }
    }

    /// A session broke or timed out. An anti-entropy session we opened is
    /// retried soon (with another peer if the interval forbids this one),
    /// rather than a whole period later.
    pub(super) fn session_failed(&mut self, id: SessionId, close: bool, now_ms: u64) {
        let retry = self.sessions.get(&id).is_some_and(|s| matches!(s.kind, SessionKind::SyncInitiator { .. }));
        self.end_session(id, close);
        if retry {
            self.retry_sync_later(now_ms);
        }
    }

    /// Ask for anti-entropy at a random moment a little later, so replicas
    /// that failed together do not retry together.
    fn retry_sync_later(&mut self, now_ms: u64) {
        let backoff_ms = RETRY_BACKOFF_MIN_MS + self.rng.below(RETRY_BACKOFF_SPREAD_MS);
        self.request_sync_soon(None, now_ms.saturating_add(backoff_ms));
    }

    /// Answer a bad message with an explicit error and end the session.
    fn refuse(&mut self, peer: PeerId, session: SessionId, error: ProtocolError, penalize: bool) {
        self.send_message(peer, session, &error_reply(error.code(), &error.to_string()));
        if penalize {
            self.penalize(peer, Offense::BadMessage(error));
        }
        self.end_session(session, true);
    }

    /// Drop a session; a parent request's undelivered ids go back to idle.
    pub(super) fn end_session(&mut self, id: SessionId, close: bool) {
        if id.opener != self.local_peer {
            self.ended_sessions.insert(id);
        }
        let Some(session) = self.sessions.remove(&id) else {
            if close {
                self.out.push(Output::CloseSession { peer: id.opener, session: id });
            }
            return;
        };
        if let SessionKind::ParentRequest { ids, .. } = &session.kind {
            self.parent_request_ended(ids, session.peer, id);
        }
        if close {
            self.out.push(Output::CloseSession { peer: session.peer, session: id });
        }
    }

    /// Open an anti-entropy session with `peer`.
    pub(super) fn start_sync(&mut self, peer: PeerId, now_ms: u64) {
        let session = self.new_session_id();
        self.stats.syncs_started += 1;
        let request = SyncMessage::SyncRequest(SyncRequest {
            version: PROTOCOL_VERSION,
            context: self.context,
            summary: self.summary(),
        });
        self.send_message(peer, session, &request);
        let covers = self.core.applied_len;
        let kind = SessionKind::SyncInitiator { replied: false, inflow_done: false, outflow: None, covers };
        let deadline_ms = now_ms.saturating_add(self.config.sync_timeout_ms);
        self.sessions.insert(session, Session::new(peer, now_ms, deadline_ms, kind));
    }

    /// A message on a session the sender opened.
    fn on_request(&mut self, from: PeerId, id: SessionId, message: SyncMessage, now_ms: u64) {
        if self.ended_sessions.contains(&id) {
            // Late or repeated: that session is over.
            return;
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            session.active_ms = now_ms;
        }
        match message {
            SyncMessage::SyncRequest(request) => self.open_responder(from, id, request, now_ms),
            SyncMessage::GetDeltas(request) => self.open_parent_answer(from, id, request, now_ms),
            message => {
                let Some(session) = self.sessions.get(&id) else { return };
                match (&session.kind, message) {
                    (SessionKind::SyncResponder { .. }, SyncMessage::Deltas(page)) => {
                        self.receive_page(from, id, page, now_ms);
                    }
                    // The initiator pushes what we lack, and may have
                    // forgotten some of it: as on the initiator's side.
                    (SessionKind::SyncResponder { .. }, SyncMessage::PrunedHistory { ids }) => {
                        self.out.push(Output::SnapshotNeeded { peer: from, ids });
                    }
                    (SessionKind::SyncResponder { .. } | SessionKind::ParentAnswer { .. }, SyncMessage::Continue) => {
                        self.resume(id);
                    }
                    (_, SyncMessage::Error(_)) => self.end_session(id, true),
                    (_, message) => {
                        self.refuse(from, id, ProtocolError::Unexpected { what: message.name() }, true);
                    }
                }
            }
        }
    }

    /// A message on a session we opened.
    fn on_answer(&mut self, from: PeerId, id: SessionId, message: SyncMessage, now_ms: u64) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        if session.peer != from {
            return;
        }
        session.active_ms = now_ms;
        match (&mut session.kind, message) {
            (SessionKind::SyncInitiator { replied, outflow, .. }, SyncMessage::SyncReply(reply)) => {
                if *replied {
                    return;
                }
                *replied = true;
                // The peer took the session: only now does it count against
                // `sync_interval_ms`. A refused or broken attempt does not,
                // so its retry waits for the backoff alone; with a single
                // peer it would otherwise wait the whole interval.
                self.last_sync_ms.insert(from, now_ms);
                // Nothing to push when the responder holds our heads; else
                // what it lacks, as far as its summary tells.
                let state = if reply.has_your_heads { OutflowState::Finished } else { OutflowState::Ready };
                let source = missing_for(&reply.summary);
                *outflow = Some(Outflow { source, state });
                self.compare_roots(from, &reply.summary);
                self.pump(id);
            }
            (SessionKind::SyncInitiator { .. } | SessionKind::ParentRequest { .. }, SyncMessage::Deltas(page)) => {
                self.receive_page(from, id, page, now_ms);
            }
            (SessionKind::SyncInitiator { .. }, SyncMessage::Continue) => self.resume(id),
            (SessionKind::SyncInitiator { .. }, SyncMessage::PrunedHistory { ids }) => {
                self.out.push(Output::SnapshotNeeded { peer: from, ids });
            }
            (SessionKind::ParentRequest { .. }, SyncMessage::NotFound { ids } | SyncMessage::PrunedHistory { ids }) => {
                self.parents_not_delivered(&ids, from, id);
            }
            (SessionKind::SyncInitiator { .. }, SyncMessage::Error(reply)) => {
                self.end_session(id, true);
                if reply.code == ErrorCode::Busy {
                    self.retry_sync_later(now_ms);
                }
            }
            (_, SyncMessage::Error(_)) => self.end_session(id, true),
            (_, message) => self.refuse(from, id, ProtocolError::Unexpected { what: message.name() }, true),
        }
    }

    /// Checks every session-opening request passes; refuses and returns
    /// `false` otherwise.
    fn admit(&mut self, from: PeerId, id: SessionId, version: u16, context: weft_primitives::Hash) -> bool {
        if self.sessions.contains_key(&id) {
            // A duplicated request: the session is already running.
            return false;
        }
        if version != PROTOCOL_VERSION {
            self.refuse(from, id, ProtocolError::UnsupportedVersion { version }, false);
            return false;
        }
        if context != self.context {
            self.refuse(from, id, ProtocolError::WrongContext { expected: self.context, got: context }, false);
            return false;
        }
        let inbound = self.sessions.values().filter(|session| session.is_inbound()).count();
        if inbound >= self.config.inbound_sessions_max {
            self.send_message(from, id, &error_reply(ErrorCode::Busy, "too many sessions"));
            self.out.push(Output::CloseSession { peer: from, session: id });
            return false;
        }
        true
    }

    fn open_responder(&mut self, from: PeerId, id: SessionId, request: SyncRequest, now_ms: u64) {
        if !self.admit(from, id, request.version, request.context) {
            return;
        }
        let knows_their_heads = request.summary.heads.iter().all(|head| self.is_applied(head));
        if !self.admit_sync(from, !knows_their_heads) {
            self.send_message(from, id, &error_reply(ErrorCode::Busy, "already syncing"));
            self.out.push(Output::CloseSession { peer: from, session: id });
            return;
        }
        let reply = SyncReply { summary: self.summary(), has_your_heads: knows_their_heads };
        self.send_message(from, id, &SyncMessage::SyncReply(reply));
        self.compare_roots(from, &request.summary);
        let state = if knows_their_heads { OutflowState::Ready } else { OutflowState::Deferred };
        let outflow = Outflow { source: missing_for(&request.summary), state };
        // Holding its heads, we expect nothing from the initiator.
        let kind =
            SessionKind::SyncResponder { expects_push: !knows_their_heads, inflow_done: knows_their_heads, outflow };
        let deadline_ms = now_ms.saturating_add(self.config.sync_timeout_ms);
        self.sessions.insert(id, Session::new(from, now_ms, deadline_ms, kind));
        self.pump(id);
    }

    /// Whether to accept a sync session from `from`.
    ///
    /// Two rules keep one delta from arriving twice:
    /// - **Crossing sessions.** If we opened a session with `from` too: when
    ///   ours is already answered it is doing the work, so theirs is
    ///   refused; when both are just opening (both ends saw each other
    ///   connect), the one opened by the smaller peer id survives (both ends
    ///   apply the same rule, so exactly one does).
    /// - **One bulk inflow at a time.** A session in which `from` will push
    ///   deltas to us (`pushes`: we do not hold all its heads) is refused
    ///   while another session may still stream deltas to us: a replica
    ///   catching up from one peer would otherwise receive the same deltas
    ///   from every peer that reconnects at once.
    fn admit_sync(&mut self, from: PeerId, pushes: bool) -> bool {
        let crossing = self.sessions.iter().find_map(|(id, session)| match session.kind {
            SessionKind::SyncInitiator { replied, .. } if id.opener == self.local_peer && session.peer == from => {
                Some((*id, replied))
            }
            _ => None,
        });
        if let Some((ours, replied)) = crossing {
            if replied || self.local_peer < from {
                return false;
            }
            self.end_session(ours, true);
        }
        !(pushes && self.is_receiving())
    }

    /// Whether some session may still stream a bulk of deltas to us.
    pub(super) fn is_receiving(&self) -> bool {
        self.sessions.values().any(Session::is_receiving)
    }

    fn open_parent_answer(&mut self, from: PeerId, id: SessionId, request: GetDeltas, now_ms: u64) {
        if !self.admit(from, id, request.version, request.context) {
            return;
        }
        let source = OutflowSource::Ids { ids: request.ids.into(), not_found: Vec::new(), pruned: Vec::new() };
        let kind = SessionKind::ParentAnswer { outflow: Outflow { source, state: OutflowState::Ready } };
        let deadline_ms = now_ms.saturating_add(self.config.sync_timeout_ms);
        self.sessions.insert(id, Session::new(from, now_ms, deadline_ms, kind));
        self.pump(id);
    }

    /// Apply a page from the peer; acknowledge a burst; note the end.
    fn receive_page(&mut self, from: PeerId, id: SessionId, page: DeltaPage, now_ms: u64) {
        let origin = match self.sessions.get(&id).map(|session| &session.kind) {
            Some(SessionKind::ParentRequest { depth, .. }) => Origin::Parent { depth: *depth },
            Some(_) => Origin::Sync,
            None => return,
        };
        // The page's signatures, checked at once on the configured threads.
        let (dag, rejected) = (&self.dag, &self.core.rejected);
        let valid = super::signatures::valid_signatures(&page.deltas, self.config.verify_threads, |id| {
            dag.has(id) || rejected.contains(id)
        });
        for bytes in &page.deltas {
            if let Err(rejection) = self.accept_delta(Some(from), bytes, origin, now_ms, &valid) {
                self.penalize(from, Offense::BadDelta(rejection));
                return self.end_session(id, true);
            }
        }
        match page.end {
            PageEnd::More => {}
            PageEnd::AwaitContinue => self.send_message(from, id, &SyncMessage::Continue),
            PageEnd::Done => self.inflow_done(id),
        }
    }

    /// The peer sent its last page on `id`.
    fn inflow_done(&mut self, id: SessionId) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        match &mut session.kind {
            SessionKind::SyncInitiator { inflow_done, .. } => *inflow_done = true,
            SessionKind::SyncResponder { inflow_done, outflow, .. } => {
                *inflow_done = true;
                if outflow.state == OutflowState::Deferred {
                    // We now hold the initiator's heads: the diff is exact.
                    outflow.state = OutflowState::Ready;
                }
            }
            SessionKind::ParentRequest { .. } => return self.end_session(id, true),
            SessionKind::ParentAnswer { .. } => {}
        }
        self.pump(id);
    }

    /// The peer asks for the next burst.
    fn resume(&mut self, id: SessionId) {
        if let Some(flow) = self.sessions.get_mut(&id).and_then(Session::outflow_mut)
            && flow.state == OutflowState::AwaitingContinue
        {
            flow.state = OutflowState::Ready;
        }
        self.pump(id);
    }

    /// Send what is ready on `id`; close it once both sides are done.
    fn pump(&mut self, id: SessionId) {
        let Some(mut session) = self.sessions.remove(&id) else { return };
        let peer = session.peer;
        let mut exhausted = false;
        if let Some(flow) = session.outflow_mut()
            && flow.state == OutflowState::Ready
        {
            self.send_burst(peer, id, flow);
            exhausted = flow.state == OutflowState::Finished;
        }
        // Our stream just sent the last delta the peer lacked, up to all we
        // have applied by now: that is what it holds once the session ends.
        if exhausted && let SessionKind::SyncInitiator { covers, .. } = &mut session.kind {
            *covers = self.core.applied_len;
        }
        if session.is_complete() {
            if id.opener != self.local_peer {
                self.ended_sessions.insert(id);
            }
            // The responder streams its pages only after ours are in (or
            // holds our heads): it now holds all we had when we opened.
            if let SessionKind::SyncInitiator { replied: true, covers, .. } = session.kind {
                self.held_by_a_peer = self.held_by_a_peer.max(covers);
            }
            self.out.push(Output::CloseSession { peer, session: id });
        } else {
            self.sessions.insert(id, session);
        }
    }

    /// Equal heads must mean equal root hashes; report either way.
    fn compare_roots(&mut self, peer: PeerId, theirs: &Summary) {
        let mut their_heads = theirs.heads.clone();
        their_heads.sort_unstable();
        let heads = self.dag.heads();
        if heads != their_heads {
            self.idle.differed(&peer);
            return;
        }
        let ours = self.core.root_hash;
        if ours == theirs.root_hash {
            self.idle.matched(peer, self.core.applied_len);
            self.out.push(Output::InSync { peer, root_hash: ours });
            return;
        }
        self.idle.differed(&peer);
        self.stats.divergences += 1;
        let ours_recomputed = weft_state::recompute_root_hash(self.core.store.state()).ok();
        self.out.push(Output::Diverged { peer, heads, ours, ours_recomputed, theirs: theirs.root_hash });
    }
}
