//! Reports from the sync stream tasks (frames, session openings and
//! closings, joins, directory exchanges) and the opening of our own sync
//! streams.
//!
//! Frames of many sessions share one unflushed turn (one fsync); an inbound
//! session is served only after its opener proved it speaks for a member,
//! and ours only after the responder did (see `crate::wire`).

use tokio::sync::mpsc;
use tracing::debug;
use weft_net::PeerId as NetPeer;
use weft_primitives::Hash;
use weft_sync::{Input, PeerId as SyncPeer, SessionId};

use super::{Driver, SessionLink, streams};
use crate::command::{Internal, Outbound};
use crate::events::Counters;

impl Driver {
    /// Handle `first` and the reports already waiting behind it. Sync
    /// frames, session openings and closings, of whatever sessions and
    /// contexts (a reconnect catching up many contexts at once), share one
    /// turn and one fsync, up to [`crate::SYNC_REPORTS_PER_TURN_MAX`]; any
    /// other report (a join, a directory) ends the turn and is handled
    /// alone, in arrival order.
    pub(super) async fn on_internal_burst(&mut self, first: Internal, internal: &mut mpsc::Receiver<Internal>) {
        if !Self::turn_safe(&first) {
            return self.on_internal(first).await;
        }
        self.begin_unflushed();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(message) = next.take() {
            if !Self::turn_safe(&message) {
                let _ = self.end_unflushed().await;
                return self.on_internal(message).await;
            }
            match message {
                Internal::Frame { peer, session, bytes } => self.on_frame(peer, session, bytes).await,
                other => self.on_internal(other).await,
            }
            handled += 1;
            if handled < crate::SYNC_REPORTS_PER_TURN_MAX {
                next = internal.try_recv().ok();
            }
        }
        let _ = self.end_unflushed().await;
    }

    /// Reports about sync sessions: they feed replicas and answer nothing
    /// that must wait for the disk, so they may share an unflushed turn.
    pub(super) fn turn_safe(message: &Internal) -> bool {
        matches!(
            message,
            Internal::Frame { .. }
                | Internal::SessionAccept { .. }
                | Internal::Closed { .. }
                | Internal::InboundSession { .. }
        )
    }

    /// One frame of a sync session, inside an unflushed turn.
    pub(super) async fn on_frame(&mut self, peer: NetPeer, session: SessionId, bytes: Vec<u8>) {
        let Some(context) = self.sessions.get(&session).map(|link| link.context) else { return };
        let Some(from) = Self::sync_peer(&peer) else { return };
        self.feed(context, Input::StreamMessage { from, session, bytes }).await;
    }

    pub(super) async fn on_internal(&mut self, message: Internal) {
        match message {
            Internal::InboundSession { context, peer, session, member, signature, outbox, verdict } => {
                let Some(slot) = self.contexts.get(&context) else {
                    debug!(%context, %peer, "sync stream for a context we are not in: closed");
                    let _ = verdict.send(false);
                    return;
                };
                // Only a member's node is served the context's history.
                let digest = crate::wire::sync_hello_digest(&context, session.n, &session.opener.0, &self.local_peer.0);
                if !slot.replica.is_member(&member) || member.verify(digest.as_bytes(), &signature).is_err() {
                    debug!(%context, %peer, "sync stream from a node that does not speak for a member: closed");
                    let _ = verdict.send(false);
                    return;
                }
                // Our proof first: the opener sends nothing until it has it.
                let accept_digest =
                    crate::wire::sync_accept_digest(&context, session.n, &session.opener.0, &self.local_peer.0);
                let accept = crate::wire::SyncAccept {
                    member: slot.identity.public_key(),
                    signature: slot.identity.sign(accept_digest.as_bytes()),
                };
                if outbox.try_send(Outbound::Frame(accept.encode())).is_err() || verdict.send(true).is_err() {
                    return;
                }
                Counters::bump(&self.counters.sync_sessions_accepted, 1);
                self.sessions.insert(session, SessionLink { context, outbox, proven: None });
                self.member_node_proven(context, peer).await;
            }
            Internal::SessionAccept { peer, session, bytes } => self.on_session_accept(peer, session, &bytes).await,
            Internal::Frame { peer, session, bytes } => {
                // A page of deltas (and the pending ones it releases): one fsync.
                self.begin_unflushed();
                self.on_frame(peer, session, bytes).await;
                let _ = self.end_unflushed().await;
            }
            Internal::Closed { peer, session } => {
                let Some(link) = self.sessions.remove(&session) else { return };
                let Some(from) = Self::sync_peer(&peer) else { return };
                self.feed(link.context, Input::StreamClosed { peer: from, session }).await;
            }
            Internal::JoinRequest { peer, request, reply } => {
                let answer = self.admit(peer, *request).await;
                let _ = reply.send(answer);
            }
            Internal::DirectoryRequest { peer, context, n, member, signature, reply } => {
                let _ = reply.send(self.answer_directory(peer, context, n, member, signature).await);
            }
            Internal::Directory { peer, context, n, reply } => self.on_directory(peer, context, n, reply).await,
            Internal::DirectoryFailed { peer, context } => self.directory_ask_failed(peer, context),
        }
    }

    pub(super) fn send_frame(&mut self, context: Hash, to: SyncPeer, session: SessionId, bytes: Vec<u8>) {
        if let Some(link) = self.sessions.get(&session) {
            if link.outbox.try_send(Outbound::Frame(bytes)).is_err() {
                // The writer fell behind its bound or is gone: end the
                // session; the replica retries with backoff.
                self.sessions.remove(&session);
                self.deferred.push((context, Input::StreamClosed { peer: to, session }));
            }
            return;
        }
        if session.opener != self.local_peer {
            return; // a session the peer opened and that ended
        }
        let Some(net_peer) = self.net_peer(to) else {
            self.deferred.push((context, Input::StreamClosed { peer: to, session }));
            return;
        };
        let Some(slot) = self.contexts.get(&context) else { return };
        let digest = crate::wire::sync_hello_digest(&context, session.n, &self.local_peer.0, &to.0);
        let hello = crate::wire::StreamHello::Sync {
            version: crate::wire::NODE_WIRE_VERSION,
            context,
            n: session.n,
            member: slot.identity.public_key(),
            signature: slot.identity.sign(digest.as_bytes()),
        };
        let (outbox, frames) = mpsc::channel(streams::SESSION_OUTBOX_MAX);
        let _ = outbox.try_send(Outbound::Frame(bytes));
        let (proven, proof) = tokio::sync::oneshot::channel();
        self.sessions.insert(session, SessionLink { context, outbox, proven: Some(proven) });
        Counters::bump(&self.counters.sync_sessions_opened, 1);
        tokio::spawn(streams::open_session(
            self.net.clone(),
            net_peer,
            session,
            hello,
            frames,
            proof,
            self.internal_tx.clone(),
            self.counters.clone(),
        ));
    }
}
