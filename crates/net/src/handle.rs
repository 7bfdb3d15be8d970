//! The node's one handle on the network: commands go to the swarm task over a
//! bounded channel and come back on one-shot replies; streams are opened and
//! accepted directly, without a round trip through the swarm task.
//!
//! Guarantees: every method fails with [`NetError::Stopped`] once the swarm
//! task has ended, never hangs on a dead task; [`NetHandle::publish`] never
//! silently drops a message: "nobody to send to" is a distinct
//! [`PublishOutcome`], not an error and not a success.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::{Semaphore, mpsc, oneshot};
use weft_primitives::Hash;

use crate::{FramedStream, NetError, SYNC_PROTOCOL};

/// What the caller decided about a received gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Valid: forward it to the mesh.
    Accept,
    /// Invalid: drop it and penalize the peer that sent it (and every peer
    /// that also delivered it).
    Reject,
    /// Not forwarded, no penalty (e.g. not yet checkable, or a duplicate).
    Ignore,
}

/// How a publish went. Only [`PublishOutcome::Sent`] put the message on the
/// wire; with every other outcome the repair path (parent requests,
/// anti-entropy) must carry it to the other members.
#[must_use = "a message that reached nobody must be left to the repair path"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Handed to at least one subscribed peer.
    Sent(Hash),
    /// No connected peer is subscribed to the topic: nothing was sent.
    NoPeers(Hash),
    /// A message with the same id (the same delta id prefix, or the same
    /// short bytes) was published or received recently; gossipsub does not
    /// send this one.
    Duplicate(Hash),
    /// Every subscribed peer's send queue was full: nothing was sent.
    QueuesFull(Hash),
}

impl PublishOutcome {
    /// The message id, [`crate::message_id`] of the published bytes: the
    /// delta id prefix of `delta id || ciphertext` (which the publishing
    /// node vouches for), or BLAKE3 of a payload too short to carry one.
    pub fn msg_id(&self) -> Hash {
        match self {
            PublishOutcome::Sent(id)
            | PublishOutcome::NoPeers(id)
            | PublishOutcome::Duplicate(id)
            | PublishOutcome::QueuesFull(id) => *id,
        }
    }

    /// Whether this publish put the message on the wire.
    pub fn was_sent(&self) -> bool {
        matches!(self, PublishOutcome::Sent(_))
    }
}

/// What the network reports to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A gossip message waiting for [`NetHandle::report_validation`]; it is
    /// forwarded to other peers only after an `Accept`.
    Message {
        /// The topic it was published on.
        topic: String,
        /// The published bytes.
        data: Vec<u8>,
        /// [`crate::message_id`] of `data`, which the network has NOT
        /// checked: for `delta id || ciphertext` it is the claimed delta id
        /// in clear. The node must verify, after decrypting, that it is the
        /// id of the delta inside and report [`Validation::Reject`] if not
        /// (the message is dropped and the sender penalized). Pass it back
        /// to `report_validation`.
        msg_id: Hash,
        /// The peer that forwarded it to us; pass it back to `report_validation`.
        propagation_source: PeerId,
    },
    /// The first connection to a peer was established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address on that connection: the address dialed when
        /// `outbound`, else where the connection came from (for TCP often
        /// an ephemeral port, not an address to dial back).
        addr: Multiaddr,
        /// Whether this node dialed it.
        outbound: bool,
    },
    /// A connected peer told us (identify) the addresses it can be reached
    /// at: its announced addresses, or its listen addresses. Claims of the
    /// peer, not verified; at most [`crate::PEER_ADDRS_MAX`].
    PeerIdentified {
        /// The peer.
        peer: PeerId,
        /// The addresses it gave.
        listen_addrs: Vec<Multiaddr>,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A connected peer subscribed to a topic.
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
    /// A connected peer unsubscribed from a topic.
    Unsubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
    /// The node listens on a new address.
    ListenAddr(Multiaddr),
    /// Every topic a connected peer subscribes to now. Sent instead of
    /// [`NetEvent::Subscribed`] / [`NetEvent::Unsubscribed`] events that
    /// arrived while the event queue was full (a peer sharing thousands of
    /// topics announces them all at once on connecting): it replaces what
    /// the consumer knew of that peer's topics.
    PeerTopics {
        /// The peer.
        peer: PeerId,
        /// Its topics (empty if it disconnected meanwhile).
        topics: Vec<String>,
    },
}

/// A connected peer as the swarm sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// The peer.
    pub peer: PeerId,
    /// The remote address of each open connection.
    pub addrs: Vec<Multiaddr>,
    /// The agent it announced through identify, once known.
    pub agent: Option<String>,
    /// The last ping round trip, once measured.
    pub rtt: Option<Duration>,
    /// The gossip topics it is subscribed to.
    pub topics: Vec<String>,
}

/// Counters of what the network had to drop to stay bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Gossip messages dropped because the event channel and its backlog
    /// were full (no other event is dropped).
    pub events_dropped: u64,
    /// Subscription changes that met a full backlog and were folded into a
    /// later [`NetEvent::PeerTopics`].
    pub subscription_events_coalesced: u64,
    /// Inbound streams refused because the incoming-stream queue was full.
    pub incoming_streams_dropped: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) events_dropped: AtomicU64,
    pub(crate) subscription_events_coalesced: AtomicU64,
    pub(crate) incoming_streams_dropped: AtomicU64,
}

/// Requests from handles to the swarm task.
pub(crate) enum Command {
    Subscribe { topic: String, reply: oneshot::Sender<Result<bool, NetError>> },
    Unsubscribe { topic: String, reply: oneshot::Sender<bool> },
    Publish { topic: String, data: Vec<u8>, reply: oneshot::Sender<Result<PublishOutcome, NetError>> },
    ReportValidation { msg_id: Hash, source: PeerId, validation: Validation, reply: oneshot::Sender<bool> },
    Dial { addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NetError>> },
    DialPeer { peer: PeerId, addrs: Vec<Multiaddr>, reply: oneshot::Sender<Result<bool, NetError>> },
    AdvertisedAddrs { reply: oneshot::Sender<Vec<Multiaddr>> },
    Peers { reply: oneshot::Sender<Vec<PeerInfo>> },
    ListenAddrs { reply: oneshot::Sender<Vec<Multiaddr>> },
    MeshPeers { topic: String, reply: oneshot::Sender<Vec<PeerId>> },
    PeerScore { peer: PeerId, reply: oneshot::Sender<Option<f64>> },
    Disconnect { peer: PeerId, reply: oneshot::Sender<bool> },
    Shutdown { reply: oneshot::Sender<()> },
}

/// Timeouts every stream opened or accepted through this network carries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamTimeouts {
    pub(crate) open: Duration,
    pub(crate) read: Duration,
    pub(crate) write: Duration,
}

/// Inbound `/weft/sync/1` streams, in arrival order. At most
/// [`crate::INCOMING_STREAMS_MAX`] wait here; more are refused (the opener
/// sees its stream reset) and counted in [`NetStats::incoming_streams_dropped`].
#[derive(Debug)]
pub struct IncomingStreams {
    pub(crate) receiver: mpsc::Receiver<FramedStream>,
}

impl IncomingStreams {
    /// The next inbound stream, or `None` once the network has stopped.
    pub async fn next(&mut self) -> Option<FramedStream> {
        self.receiver.recv().await
    }

    /// The next inbound stream if one is waiting now, without waiting.
    pub fn try_next(&mut self) -> Option<FramedStream> {
        self.receiver.try_recv().ok()
    }
}

/// The handle on a running network; clone it freely.
#[derive(Clone)]
pub struct NetHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) control: libp2p_stream::Control,
    pub(crate) local_peer: PeerId,
    pub(crate) open_slots: Arc<Semaphore>,
    pub(crate) incoming: Arc<Mutex<Option<IncomingStreams>>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) timeouts: StreamTimeouts,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle").field("local_peer", &self.local_peer).finish_non_exhaustive()
    }
}

impl NetHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer
    }

    /// Subscribe to `topic`; `Ok(false)` if already subscribed.
    pub async fn subscribe(&self, topic: &str) -> Result<bool, NetError> {
        check_topic(topic)?;
        self.request(|reply| Command::Subscribe { topic: topic.to_owned(), reply }).await?
    }

    /// Unsubscribe from `topic`; `Ok(false)` if not subscribed.
    pub async fn unsubscribe(&self, topic: &str) -> Result<bool, NetError> {
        check_topic(topic)?;
        self.request(|reply| Command::Unsubscribe { topic: topic.to_owned(), reply }).await
    }

    /// Publish `data` on `topic`, signed by this node. Never gated on the
    /// mesh: with flood publishing it goes to every subscribed peer; when
    /// there is none the outcome says so (see [`PublishOutcome`]).
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<PublishOutcome, NetError> {
        check_topic(topic)?;
        self.request(|reply| Command::Publish { topic: topic.to_owned(), data, reply }).await?
    }

    /// Report the caller's verdict on a [`NetEvent::Message`]. Returns
    /// whether gossipsub still held the message (a message validated after
    /// it left the cache is neither forwarded nor scored).
    pub async fn report_validation(
        &self,
        msg_id: Hash,
        propagation_source: PeerId,
        validation: Validation,
    ) -> Result<bool, NetError> {
        self.request(|reply| Command::ReportValidation { msg_id, source: propagation_source, validation, reply }).await
    }

    /// Dial `addr` and wait for the connection; returns the peer reached.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    /// Start dialing `peer` at `addrs` (and any address the swarm already
    /// knows for it) without waiting for the outcome, which arrives as
    /// [`NetEvent::PeerConnected`] or not at all. `Ok(false)` when it is
    /// already connected or being dialed, so calling this again is cheap.
    pub async fn dial_peer(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<bool, NetError> {
        self.request(|reply| Command::DialPeer { peer, addrs, reply }).await?
    }

    /// The addresses other nodes should dial to reach this one: the
    /// configured announce addresses if any, else the listen addresses.
    pub async fn advertised_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.request(|reply| Command::AdvertisedAddrs { reply }).await
    }

    /// The peers with at least one open connection.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.request(|reply| Command::Peers { reply }).await
    }

    /// The addresses this node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.request(|reply| Command::ListenAddrs { reply }).await
    }

    /// The peers in this node's gossip mesh for `topic`.
    pub async fn mesh_peers(&self, topic: &str) -> Result<Vec<PeerId>, NetError> {
        check_topic(topic)?;
        self.request(|reply| Command::MeshPeers { topic: topic.to_owned(), reply }).await
    }

    /// This node's gossip score of `peer` (negative after rejected messages),
    /// or `None` if the peer is unknown to the scorer.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetError> {
        self.request(|reply| Command::PeerScore { peer, reply }).await
    }

    /// Close every connection to `peer` at once (not gracefully: its open
    /// streams fail on both sides). Returns whether it was connected. This
    /// is not a ban: nothing stops the peer (or discovery) from connecting
    /// again, so a caller punishing a peer also stops serving it.
    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, NetError> {
        self.request(|reply| Command::Disconnect { peer, reply }).await
    }

    /// Open a `/weft/sync/1` stream to `peer`, dialing it first if needed
    /// (with an address the swarm already knows), within the open timeout.
    pub async fn open_stream(&self, peer: PeerId) -> Result<FramedStream, NetError> {
        let after = self.timeouts.open;
        let open = async {
            // Bounded concurrency: each open holds a slot until it resolves.
            let _slot = self.open_slots.acquire().await.map_err(|_| NetError::Stopped)?;
            let mut control = self.control.clone();
            control.open_stream(peer, StreamProtocol::new(SYNC_PROTOCOL)).await.map_err(|e| match e {
                libp2p_stream::OpenStreamError::UnsupportedProtocol(_) => {
                    NetError::UnsupportedProtocol { peer, protocol: SYNC_PROTOCOL }
                }
                other => NetError::OpenStream { peer, reason: other.to_string() },
            })
        };
        let stream =
            tokio::time::timeout(after, open).await.map_err(|_| NetError::Timeout { what: "stream open", after })??;
        Ok(FramedStream::new(stream, peer, self.timeouts.read, self.timeouts.write))
    }

    /// The receiver of inbound `/weft/sync/1` streams. It exists once per
    /// network: the second call is [`NetError::IncomingStreamsTaken`].
    /// Dropping it stops accepting (peers then see the protocol unsupported).
    pub fn incoming_streams(&self) -> Result<IncomingStreams, NetError> {
        let mut slot = self.incoming.lock().map_err(|_| NetError::IncomingStreamsTaken)?;
        slot.take().ok_or(NetError::IncomingStreamsTaken)
    }

    /// What the network has dropped so far to stay bounded.
    pub fn stats(&self) -> NetStats {
        NetStats {
            events_dropped: self.counters.events_dropped.load(Ordering::Relaxed),
            subscription_events_coalesced: self.counters.subscription_events_coalesced.load(Ordering::Relaxed),
            incoming_streams_dropped: self.counters.incoming_streams_dropped.load(Ordering::Relaxed),
        }
    }

    /// Stop the swarm: close every connection and listener. Every handle
    /// then answers [`NetError::Stopped`]; the event receiver ends.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        self.request(|reply| Command::Shutdown { reply }).await
    }

    async fn request<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| NetError::Stopped)?;
        answer.await.map_err(|_| NetError::Stopped)
    }
}

fn check_topic(topic: &str) -> Result<(), NetError> {
    if topic.len() > crate::TOPIC_BYTES_MAX {
        return Err(NetError::TopicTooLong { len: topic.len(), max: crate::TOPIC_BYTES_MAX });
    }
    Ok(())
}
