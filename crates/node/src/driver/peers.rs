//! Reaching the other members' nodes: the driver's side of the address book
//! ([`PeerBook`](crate::peers::PeerBook)), the redial schedule and the
//! directory exchange.
//!
//! - Network events feed the book: a dial that connected confirms its
//!   address, identify gives the addresses a node announces, and every
//!   connect or loss updates the redial schedule.
//! - Evidence that a node serves a member (a join, an admission, a hello
//!   signed by a member, a member's directory) puts it in the book.
//! - After every driver turn, due nodes are dialed ([`Driver::redial_due`]).
//! - When a member's node connects we ask it for the directory of each
//!   context it serves, and each context asks one connected member's node
//!   again on its own schedule ([`crate::peers::refresh`]: every minute,
//!   doubling up to 16 minutes while answers teach nothing), so members
//!   that joined through someone else, or moved, are found too.
//! - **Proof.** A node becomes one of a context's sync peers (`PeerUp`)
//!   only once it proved, on this connection, that it speaks for a member:
//!   a sync hello or a sync accept, or a granted directory, each signed by a
//!   current member over the context, a number and both nodes. A node that
//!   subscribes to the topic without proof is asked for the directory (at
//!   most every [`DIRECTORY_ASK_MIN_MS`]); a stranger can only refuse, and
//!   gets nothing but our question.
//!
//! The book is flushed to the store whenever it changed: an acknowledged
//! address survives a `kill -9`.

use std::collections::BTreeSet;

use tracing::{debug, warn};
use weft_net::{Multiaddr, PeerId as NetPeer};
use weft_primitives::{Hash, PublicKey, Signature};

use weft_sync::{Input, PeerId as SyncPeer, SessionId};

use super::{Driver, now_ms, random_u64};
use crate::peers::NodeKey;
use crate::wire::{
    DirectoryReply, NODE_WIRE_VERSION, StreamHello, SyncAccept, directory_answer_digest, directory_hello_digest,
    sync_accept_digest,
};

/// How often the driver looks for nodes due for a redial.
const REDIAL_CHECK_MS: u64 = 250;
/// The shortest pause between two directory requests to one node for one context.
pub(crate) const DIRECTORY_ASK_MIN_MS: u64 = 10_000;
/// The pause after a directory request that got no answer (the stream
/// failed to open or broke, as when two connections race at a restart).
pub(crate) const DIRECTORY_RETRY_MS: u64 = 1_000;
/// Directory requests remembered for rate limiting; the oldest are forgotten.
const DIRECTORY_ASKS_KEPT_MAX: usize = 4096;

/// The key behind a libp2p peer id, if it is an Ed25519 one.
pub(crate) fn node_key(peer: &NetPeer) -> Option<NodeKey> {
    weft_net::peer_public_key(peer).map(|key| key.0)
}

impl Driver {
    pub(super) fn on_peer_connected(&mut self, peer: NetPeer, addr: &Multiaddr, outbound: bool) {
        let Some(node) = node_key(&peer) else { return };
        self.redial.on_connected(node);
        // Only an address we dialed is one to dial again: an inbound
        // connection's remote address is usually an ephemeral port.
        if outbound {
            self.book.learn_addrs(&node, [addr.to_string()], true);
        }
        self.book.connected(&node, now_ms());
        self.flush_book();
        let serving: Vec<Hash> =
            self.contexts.keys().copied().filter(|context| self.book.serves(&node, context)).collect();
        for context in serving {
            self.ask_directory(peer, context);
        }
    }

    pub(super) fn on_peer_identified(&mut self, peer: NetPeer, listen_addrs: Vec<Multiaddr>) {
        let Some(node) = node_key(&peer) else { return };
        let texts: Vec<String> = listen_addrs.iter().map(ToString::to_string).collect();
        if self.book.learn_addrs(&node, &texts, true) {
            self.flush_book();
        }
        self.identified.insert(peer, texts);
    }

    pub(super) fn on_peer_lost(&mut self, peer: NetPeer) {
        self.identified.remove(&peer);
        if let Some(node) = node_key(&peer) {
            self.redial.on_disconnected(node, now_ms(), random_u64());
            // Proof holds for a connection: the next one proves again, at
            // once. The ask limit is per connection too: a node that comes
            // back within DIRECTORY_ASK_MIN_MS of our last ask (a restart)
            // would otherwise stay unproven, so no sync peer, until it ran out.
            self.proven.retain(|(proven, _)| *proven != node);
            self.directory_asked.retain(|(asked, _), _| *asked != node);
        }
    }

    /// `peer` subscribes to `context`'s topic: a sync peer if proven, else
    /// asked to prove it (the directory request).
    pub(super) async fn subscriber_seen(&mut self, context: Hash, peer: NetPeer) {
        let Some(node) = node_key(&peer) else { return };
        if self.proven.contains(&(node, context)) {
            self.feed(context, Input::PeerUp { peer: SyncPeer(node) }).await;
        } else {
            self.ask_directory(peer, context);
        }
    }

    /// `peer` proved on this connection that it speaks for a member of
    /// `context`: keep it in the book, and make it a sync peer if it is
    /// subscribed to the context's topic.
    pub(crate) async fn member_node_proven(&mut self, context: Hash, peer: NetPeer) {
        let Some(node) = node_key(&peer) else { return };
        self.note_member_node(context, peer);
        if self.proven.insert((node, context)) && self.subscribed(&context, &peer) {
            self.feed(context, Input::PeerUp { peer: SyncPeer(node) }).await;
        }
    }

    /// Whether `member`, whose key `node` used, is one we accept as a
    /// member of `context`: a member in our history, or — until our
    /// history shows it — the inviter we joined through, on the node that
    /// admitted us (it gave us the group key; a fresh joiner knows no other
    /// member but the creator yet).
    fn speaks_for_member(
        &self,
        context: Hash,
        replica: &weft_sync::Replica<crate::DiskReplicaStore>,
        node: NodeKey,
        member: &PublicKey,
    ) -> bool {
        replica.is_member(member) || self.joined_through.get(&context) == Some(&(node, *member))
    }

    /// The first frame of a session we opened: the responder's
    /// [`SyncAccept`]. Only if it checks out do our frames flow.
    pub(super) async fn on_session_accept(&mut self, peer: NetPeer, session: SessionId, bytes: &[u8]) {
        let Some(context) = self.sessions.get(&session).map(|link| link.context) else { return };
        let proved = match (SyncAccept::decode(bytes), node_key(&peer), self.contexts.get(&context)) {
            (Ok(accept), Some(node), Some(slot)) => {
                let digest = sync_accept_digest(&context, session.n, &self.local_peer.0, &node);
                self.speaks_for_member(context, &slot.replica, node, &accept.member)
                    && accept.member.verify(digest.as_bytes(), &accept.signature).is_ok()
            }
            _ => false,
        };
        if !proved {
            debug!(%context, %peer, "sync responder did not prove it speaks for a member: closed");
            if self.sessions.remove(&session).is_some()
                && let Some(node) = node_key(&peer)
            {
                self.feed(context, Input::StreamClosed { peer: SyncPeer(node), session }).await;
            }
            return;
        }
        if let Some(go) = self.sessions.get_mut(&session).and_then(|link| link.proven.take()) {
            let _ = go.send(());
        }
        self.member_node_proven(context, peer).await;
    }

    /// `peer` serves a member of `context` (see the module doc for the
    /// evidence that counts). Its identify addresses, if any, are kept.
    pub(crate) fn note_member_node(&mut self, context: Hash, peer: NetPeer) {
        let Some(node) = node_key(&peer) else { return };
        if node == self.local_peer.0 || !self.book.add_member_node(node, context) {
            return;
        }
        if let Some(addrs) = self.identified.get(&peer) {
            self.book.learn_addrs(&node, addrs, true);
        }
        self.flush_book();
    }

    /// Addresses for a member's node that someone told us (an invitation).
    pub(crate) fn note_member_addrs(&mut self, peer: NetPeer, addrs: &[String]) {
        if let Some(node) = node_key(&peer)
            && self.book.learn_addrs(&node, addrs, false)
        {
            self.flush_book();
        }
    }

    pub(super) fn forget_context_peers(&mut self, context: &Hash) {
        self.book.forget_context(context);
        self.flush_book();
        let ours: BTreeSet<Hash> = self.contexts.keys().copied().collect();
        let book = &self.book;
        self.redial.retain(|node| book.get(node).is_some_and(|r| r.contexts.iter().any(|c| ours.contains(c))));
    }

    fn flush_book(&mut self) {
        if let Err(error) = self.book.flush(&self.store) {
            // Only a hint is lost; it is retried at the next change.
            warn!(%error, "saving the peer address book failed");
        }
    }

    /// Dial the member nodes that are due (see `peers::redial`); at most
    /// every [`REDIAL_CHECK_MS`].
    pub(super) async fn redial_due(&mut self) {
        let now = now_ms();
        if now < self.next_redial_check_ms {
            return;
        }
        self.next_redial_check_ms = now + REDIAL_CHECK_MS;
        let ours: BTreeSet<Hash> = self.contexts.keys().copied().collect();
        let candidates: Vec<NodeKey> = self.book.serving(&ours).map(|(node, _)| *node).collect();
        let due = self.redial.due(candidates.iter(), now, random_u64);
        for node in due {
            let Some(record) = self.book.get(&node) else { continue };
            let addrs: Vec<Multiaddr> = record.addrs.iter().filter_map(|a| a.parse().ok()).collect();
            let Ok(peer) = weft_net::peer_id_of(&PublicKey(node)) else { continue };
            match self.net.dial_peer(peer, addrs).await {
                Ok(true) => {
                    crate::events::Counters::bump(&self.counters.redials, 1);
                    debug!(%peer, "redialing a member's node");
                }
                Ok(false) => {}
                Err(error) => debug!(%peer, %error, "redial not started"),
            }
        }
        self.refresh_directories(now);
        self.ask_unproven_subscribers();
    }

    /// Subscribers of a context's topic that have not proven membership are
    /// asked (again) to, within the per-node rate limit.
    fn ask_unproven_subscribers(&mut self) {
        let mut asks = Vec::new();
        for (context, slot) in &self.contexts {
            for peer in self.topics.subscribers(&slot.topic) {
                if let Some(node) = node_key(peer)
                    && !self.proven.contains(&(node, *context))
                {
                    asks.push((*peer, *context));
                }
            }
        }
        for (peer, context) in asks {
            self.ask_directory(peer, context);
        }
    }

    /// Ask one connected member's node for the directory of each context
    /// due for a refresh (see [`crate::peers::refresh`]).
    fn refresh_directories(&mut self, now: u64) {
        let mut asks = Vec::new();
        for context in self.directory_refresh.take_due(now) {
            let Some(slot) = self.contexts.get(&context) else {
                self.directory_refresh.forget(&context);
                continue;
            };
            let connected: Vec<NodeKey> = slot
                .replica
                .peers()
                .map(|p| p.0)
                .filter(|node| self.redial.is_connected(node) && self.book.serves(node, &context))
                .collect();
            if connected.is_empty() {
                continue;
            }
            let pick = connected[(random_u64() % connected.len() as u64) as usize];
            if let Ok(peer) = weft_net::peer_id_of(&PublicKey(pick)) {
                asks.push((peer, context));
            }
        }
        for (peer, context) in asks {
            self.ask_directory(peer, context);
        }
    }

    /// Ask `peer` (a member's node) which nodes serve `context`, unless we
    /// asked it recently.
    pub(crate) fn ask_directory(&mut self, peer: NetPeer, context: Hash) {
        let (Some(node), Some(slot)) = (node_key(&peer), self.contexts.get(&context)) else { return };
        let now = now_ms();
        if self.directory_asked.get(&(node, context)).is_some_and(|at| now < at + DIRECTORY_ASK_MIN_MS) {
            return;
        }
        if self.directory_asked.len() >= DIRECTORY_ASKS_KEPT_MAX {
            self.directory_asked.retain(|_, at| now < *at + DIRECTORY_ASK_MIN_MS);
        }
        self.directory_asked.insert((node, context), now);
        let n = random_u64();
        let digest = directory_hello_digest(&context, n, &self.local_peer.0, &node);
        let hello = StreamHello::Directory {
            version: NODE_WIRE_VERSION,
            context,
            n,
            member: slot.identity.public_key(),
            signature: slot.identity.sign(digest.as_bytes()),
        };
        tokio::spawn(super::streams::request_directory(
            self.net.clone(),
            peer,
            context,
            n,
            hello,
            self.internal_tx.clone(),
            self.counters.clone(),
        ));
    }

    /// A directory request to `peer` got no answer. Until this node is
    /// proven it is no sync peer of the context, so waiting the whole
    /// DIRECTORY_ASK_MIN_MS would stall the context's anti-entropy with it:
    /// ask again after DIRECTORY_RETRY_MS instead (a peer that never answers
    /// is asked once a second per context it subscribes to, at most).
    pub(super) fn directory_ask_failed(&mut self, peer: NetPeer, context: Hash) {
        let Some(node) = node_key(&peer) else { return };
        if let Some(at) = self.directory_asked.get_mut(&(node, context)) {
            *at = at.saturating_sub(DIRECTORY_ASK_MIN_MS.saturating_sub(DIRECTORY_RETRY_MS));
        }
    }

    /// Answer a directory request: the context's member nodes we know and
    /// our own proof, but only to a node speaking for a current member.
    pub(super) async fn answer_directory(
        &mut self,
        peer: NetPeer,
        context: Hash,
        n: u64,
        member: PublicKey,
        signature: Signature,
    ) -> DirectoryReply {
        let Some(node) = node_key(&peer) else { return DirectoryReply::Refused };
        let Some(slot) = self.contexts.get(&context) else { return DirectoryReply::Refused };
        let digest = directory_hello_digest(&context, n, &node, &self.local_peer.0);
        if !slot.replica.is_member(&member) || member.verify(digest.as_bytes(), &signature).is_err() {
            debug!(%context, %peer, "directory request from a node that does not speak for a member");
            return DirectoryReply::Refused;
        }
        let answer = directory_answer_digest(&context, n, &node, &self.local_peer.0);
        let (member, signature) = (slot.identity.public_key(), slot.identity.sign(answer.as_bytes()));
        self.member_node_proven(context, peer).await;
        DirectoryReply::Granted { member, signature, entries: self.book.directory(&context, &node) }
    }

    /// Take in the answer to our directory request `n`: a granted one
    /// proves the node speaks for a member, and names other members' nodes.
    pub(super) async fn on_directory(&mut self, peer: NetPeer, context: Hash, n: u64, reply: DirectoryReply) {
        let (Some(node), Some(slot)) = (node_key(&peer), self.contexts.get(&context)) else { return };
        let DirectoryReply::Granted { member, signature, entries } = reply else {
            debug!(%context, %peer, "directory refused");
            return;
        };
        let digest = directory_answer_digest(&context, n, &self.local_peer.0, &node);
        if !self.speaks_for_member(context, &slot.replica, node, &member)
            || member.verify(digest.as_bytes(), &signature).is_err()
        {
            debug!(%context, %peer, "a directory not signed by a member: ignored");
            return;
        }
        self.member_node_proven(context, peer).await;
        let merged = self.book.merge_directory(context, &entries, &self.local_peer.0);
        if !merged.fresh.is_empty() {
            debug!(%context, %peer, new = merged.fresh.len(), "learned member nodes from a directory");
        }
        let news = !merged.fresh.is_empty() || merged.addrs_learned;
        self.directory_refresh.answered(&context, news, now_ms());
        self.flush_book();
    }
}
