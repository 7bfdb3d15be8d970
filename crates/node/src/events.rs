//! What the node tells in-process subscribers (the API streams it), and the
//! counters it keeps for metrics.
//!
//! The event bus is a bounded broadcast: a subscriber that falls more than
//! the bus capacity behind loses the oldest events and is told so (it
//! receives `Lagged`); the node never waits for a subscriber.

use std::sync::atomic::{AtomicU64, Ordering};

use weft_dag::DeltaId;
use weft_primitives::{Hash, PublicKey};
use weft_sync::Event;

/// Something that happened on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// Deltas were applied to a context's state (local writes included).
    StateMutation {
        /// The context.
        context: Hash,
        /// The root hash after them.
        root_hash: Hash,
        /// The applied deltas, in apply order.
        deltas: Vec<AppliedInfo>,
    },
    /// A peer has the same heads and the same root hash as we computed.
    InSync {
        /// The context.
        context: Hash,
        /// The peer's node key.
        peer: [u8; 32],
        /// The common root hash.
        root_hash: Hash,
    },
    /// A peer with the same heads has a different root hash: a bug.
    Diverged {
        /// The context.
        context: Hash,
        /// The peer's node key.
        peer: [u8; 32],
    },
    /// Members joined or left.
    MembersChanged {
        /// The context.
        context: Hash,
        /// Who joined.
        added: Vec<PublicKey>,
        /// Who left.
        left: Vec<PublicKey>,
    },
    /// A peer cannot serve history we need: a snapshot is required.
    SnapshotNeeded {
        /// The context.
        context: Hash,
    },
    /// An event handler failed; it will be retried.
    HandlerFailed {
        /// The context.
        context: Hash,
        /// The handler.
        handler: String,
        /// Why.
        error: String,
        /// Failed attempts so far.
        attempts: u32,
    },
}

/// One applied delta, as subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedInfo {
    /// Its id.
    pub id: DeltaId,
    /// Its author.
    pub author: PublicKey,
    /// Whether this node wrote it.
    pub local: bool,
    /// Its events.
    pub events: Vec<Event>,
}

/// The reasons a node counts rejections by: every
/// [`weft_sync::DeltaRejection::reason`], then `unopened_gossip` (gossip
/// that does not open under the context's key or lies about its delta id).
pub const REJECTION_REASONS: [&str; weft_sync::DeltaRejection::REASONS.len() + 1] = {
    let mut reasons = [""; weft_sync::DeltaRejection::REASONS.len() + 1];
    let mut i = 0;
    while i < weft_sync::DeltaRejection::REASONS.len() {
        reasons[i] = weft_sync::DeltaRejection::REASONS[i];
        i += 1;
    }
    reasons[i] = "unopened_gossip";
    reasons
};

/// The index of `unopened_gossip` in [`REJECTION_REASONS`].
pub(crate) const UNOPENED_GOSSIP: usize = weft_sync::DeltaRejection::REASONS.len();

/// Node-wide counters (monotonic since start).
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) writes_committed: AtomicU64,
    pub(crate) call_groups: AtomicU64,
    pub(crate) deltas_applied: AtomicU64,
    pub(crate) deltas_rejected: AtomicU64,
    pub(crate) deltas_rejected_by: [AtomicU64; REJECTION_REASONS.len()],
    pub(crate) gossip_published: AtomicU64,
    pub(crate) gossip_received: AtomicU64,
    pub(crate) gossip_unknown_key: AtomicU64,
    pub(crate) handler_runs: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
    pub(crate) penalties: AtomicU64,
    pub(crate) sync_sessions_opened: AtomicU64,
    pub(crate) sync_sessions_accepted: AtomicU64,
    pub(crate) sync_bytes_sent: AtomicU64,
    pub(crate) sync_bytes_received: AtomicU64,
    pub(crate) sync_frames_sent: AtomicU64,
    pub(crate) sync_frames_received: AtomicU64,
    pub(crate) divergences: AtomicU64,
    pub(crate) redials: AtomicU64,
    pub(crate) directories_received: AtomicU64,
    pub(crate) handler_jobs_dead: AtomicU64,
}

/// A snapshot of [`Counters`] plus gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Client calls served.
    pub calls: u64,
    /// Local writes committed (client calls and handlers).
    pub writes_committed: u64,
    /// Groups of client calls made durable by one fsync (group commit).
    /// Views run outside groups, so with only mutations
    /// `calls / call_groups` is the mean group size.
    pub call_groups: u64,
    /// Deltas applied (local and remote).
    pub deltas_applied: u64,
    /// Deltas refused by verification.
    pub deltas_rejected: u64,
    /// The same, by reason (indexed like [`REJECTION_REASONS`]).
    pub deltas_rejected_by: [u64; REJECTION_REASONS.len()],
    /// Deltas pending (waiting for parents), all contexts.
    pub deltas_pending: u64,
    /// Gossip messages published.
    pub gossip_published: u64,
    /// Gossip messages received.
    pub gossip_received: u64,
    /// Gossip messages sealed under a key this node does not hold (a newer
    /// epoch it has not learnt yet, or one it was removed from).
    pub gossip_unknown_key: u64,
    /// Event handler runs that succeeded.
    pub handler_runs: u64,
    /// Event handler runs that failed (each is retried).
    pub handler_failures: u64,
    /// Handler jobs still owed.
    pub handler_jobs_owed: u64,
    /// Times a peer was penalized.
    pub penalties: u64,
    /// Sync streams we opened.
    pub sync_sessions_opened: u64,
    /// Sync streams peers opened.
    pub sync_sessions_accepted: u64,
    /// Bytes of sync frames sent (payloads plus 4-byte length prefixes).
    pub sync_bytes_sent: u64,
    /// Bytes of sync frames received (same).
    pub sync_bytes_received: u64,
    /// Sync frames sent.
    pub sync_frames_sent: u64,
    /// Sync frames received.
    pub sync_frames_received: u64,
    /// Divergences detected.
    pub divergences: u64,
    /// Dials started to members' nodes that were not connected.
    pub redials: u64,
    /// Peer directories received from members' nodes.
    pub directories_received: u64,
    /// Handler jobs moved to the dead letters since start.
    pub handler_jobs_dead: u64,
    /// Write transactions committed to the node's database. A turn applies
    /// all its deltas in one, so this grows with turns, not with deltas.
    pub store_transactions: u64,
    /// Connected peers.
    pub peers: u64,
    /// Gossip messages the network layer dropped because the node fell
    /// behind reading its events (repaired later by anti-entropy).
    pub net_gossip_dropped: u64,
    /// Subscription changes the network layer folded into a peer's topic
    /// snapshot because the node fell behind (nothing is lost).
    pub net_subscriptions_coalesced: u64,
    /// Inbound streams the network layer reset because its accept queue
    /// was full (the opener retries).
    pub net_streams_dropped: u64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NodeStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NodeStats {
            calls: get(&self.calls),
            writes_committed: get(&self.writes_committed),
            call_groups: get(&self.call_groups),
            deltas_applied: get(&self.deltas_applied),
            deltas_rejected: get(&self.deltas_rejected),
            deltas_rejected_by: std::array::from_fn(|i| get(&self.deltas_rejected_by[i])),
            gossip_published: get(&self.gossip_published),
            gossip_received: get(&self.gossip_received),
            gossip_unknown_key: get(&self.gossip_unknown_key),
            handler_runs: get(&self.handler_runs),
            handler_failures: get(&self.handler_failures),
            penalties: get(&self.penalties),
            sync_sessions_opened: get(&self.sync_sessions_opened),
            sync_sessions_accepted: get(&self.sync_sessions_accepted),
            sync_bytes_sent: get(&self.sync_bytes_sent),
            sync_bytes_received: get(&self.sync_bytes_received),
            sync_frames_sent: get(&self.sync_frames_sent),
            sync_frames_received: get(&self.sync_frames_received),
            divergences: get(&self.divergences),
            redials: get(&self.redials),
            directories_received: get(&self.directories_received),
            handler_jobs_dead: get(&self.handler_jobs_dead),
            ..NodeStats::default()
        }
    }
}
