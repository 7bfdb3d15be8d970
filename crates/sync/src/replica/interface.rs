//! What goes into a [`Replica`](crate::Replica) and what comes out.

use weft_dag::DeltaId;
use weft_primitives::kv::WriteSet;
use weft_primitives::{Hash, Hlc, PublicKey};
use weft_state::{Action, StateError};

use crate::delta::{DeltaRejection, Event};
use crate::membership::MembershipError;
use crate::protocol::ProtocolError;
use crate::store::StoreError;

/// A network peer (a node), as the driver names it: the node's Ed25519 key
/// bytes. Distinct from member identities, which sign deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PeerId(pub [u8; 32]);

/// One sync stream. The opener numbers its sessions; with the opener's id
/// the number is unique, so both ends use the same `SessionId`. (A driver
/// maps an inbound stream to `SessionId { opener: remote, n: its own
/// counter }`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId {
    /// The peer that opened the stream.
    pub opener: PeerId,
    /// The opener's number for it.
    pub n: u64,
}

/// Something that happened to the replica.
#[derive(Clone, Debug)]
pub enum Input {
    /// Commit a write prepared with [`Replica::prepare_write`](crate::Replica::prepare_write)
    /// (or built from a runtime call over [`Replica::write_base`](crate::Replica::write_base)).
    LocalWrite(PreparedWrite),
    /// A gossip message on the context topic. `message` is the driver's
    /// handle, echoed in [`Output::GossipVerdict`].
    GossipReceived {
        /// The peer that forwarded it.
        from: PeerId,
        /// The driver's handle for the message.
        message: u64,
        /// The payload: an encoded delta.
        bytes: Vec<u8>,
    },
    /// A message on a sync stream (frame payload).
    StreamMessage {
        /// The peer at the other end.
        from: PeerId,
        /// The stream.
        session: SessionId,
        /// The frame payload.
        bytes: Vec<u8>,
    },
    /// A sync stream broke or was closed by the peer.
    StreamClosed {
        /// The peer at the other end.
        peer: PeerId,
        /// The stream.
        session: SessionId,
    },
    /// Time passed; run due timers (see [`Replica::next_timer_ms`](crate::Replica::next_timer_ms)).
    Tick,
    /// Start an anti-entropy session now (an operator's "sync now"), with
    /// `peer` if given and allowed, else a random connected member. Still
    /// subject to the per-peer interval and the session bounds.
    SyncNow {
        /// The preferred peer.
        peer: Option<PeerId>,
    },
    /// A member's node is connected.
    PeerUp {
        /// The peer.
        peer: PeerId,
    },
    /// A member's node disconnected.
    PeerDown {
        /// The peer.
        peer: PeerId,
    },
}

/// A local write, ready to commit: what a [`weft_state::StateTxn`] (or the
/// runtime) produced against the state at `base_version`.
#[derive(Clone, Debug)]
pub struct PreparedWrite {
    /// The caller's handle, echoed in [`Output::WriteCommitted`] or
    /// [`Output::WriteRejected`].
    pub token: u64,
    /// The state version the writes were computed against; the commit is
    /// refused as stale if the state changed since.
    pub base_version: u64,
    /// The delta's timestamp (the transaction's start stamp).
    pub hlc: Hlc,
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// The events.
    pub events: Vec<Event>,
    /// The state writes.
    pub writes: WriteSet,
    /// The root hash once `writes` are applied.
    pub root_hash: Hash,
    /// The last stamp the actions used.
    pub last_hlc: Option<Hlc>,
}

/// The base of a local write: run a transaction from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBase {
    /// The state version to put in [`PreparedWrite::base_version`].
    pub version: u64,
    /// The transaction's start stamp (and the delta's timestamp).
    pub start_hlc: Hlc,
}

/// Why a local write was not committed. Nothing changed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The state changed between prepare and commit: prepare again.
    #[error("the state changed since version {base}; now {current}")]
    Stale {
        /// The version the write was prepared against.
        base: u64,
        /// The current version.
        current: u64,
    },
    /// The transaction failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The delta would exceed the size bound.
    #[error("delta of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This replica's identity is not a member (now).
    #[error("the local identity is not a member of the context")]
    NotMember,
    /// The write's membership changes break a rule (a malformed change, or
    /// a `Leave` of another member).
    #[error(transparent)]
    Membership(MembershipError),
}

/// What a gossip message deserves (gossipsub's accept/reject/ignore).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: forward it.
    Accept,
    /// Valid but already known (or not worth forwarding): drop quietly.
    Ignore,
    /// Invalid: drop and penalize the forwarder.
    Reject,
}

/// Why a peer is penalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offense {
    /// It sent a delta that fails verification.
    BadDelta(DeltaRejection),
    /// It sent a message that breaks the protocol.
    BadMessage(ProtocolError),
}

/// A delta this replica applied, for subscribers and handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedDelta {
    /// Its id.
    pub id: DeltaId,
    /// Its author.
    pub author: PublicKey,
    /// Whether the author is this replica's identity (handlers run only on
    /// the other nodes).
    pub local: bool,
    /// Its events.
    pub events: Vec<Event>,
    /// Its timestamp.
    pub hlc: Hlc,
}

/// Something the driver must do or know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Publish on the context's gossip topic (message id = delta id).
    /// Emitted for every local write, whether or not any peer is in the
    /// mesh: repair does not depend on it.
    Publish {
        /// The delta id.
        id: DeltaId,
        /// The encoded delta.
        bytes: Vec<u8>,
    },
    /// The verdict on a gossip message.
    GossipVerdict {
        /// The driver's handle from [`Input::GossipReceived`].
        message: u64,
        /// The verdict.
        verdict: Verdict,
    },
    /// Send a frame on a sync stream (open it first if we are the opener
    /// and it is new).
    Send {
        /// The peer.
        to: PeerId,
        /// The stream.
        session: SessionId,
        /// The frame payload (an encoded [`SyncMessage`](crate::protocol::SyncMessage)).
        bytes: Vec<u8>,
    },
    /// This side is done with a stream: close it.
    CloseSession {
        /// The peer.
        peer: PeerId,
        /// The stream.
        session: SessionId,
    },
    /// Lower the peer's score.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// Why.
        offense: Offense,
    },
    /// Deltas were applied, in apply order.
    Applied {
        /// The deltas.
        deltas: Vec<AppliedDelta>,
    },
    /// A local write is durable and published: acknowledge it.
    WriteCommitted {
        /// The write's token.
        token: u64,
        /// Its delta.
        id: DeltaId,
    },
    /// A local write was refused.
    WriteRejected {
        /// The write's token.
        token: u64,
        /// Why.
        reason: WriteError,
    },
    /// A peer with the same heads reported a different root hash: a bug in
    /// merge or hashing. Log loudly; the peer's hash is never adopted.
    Diverged {
        /// The peer.
        peer: PeerId,
        /// The common heads.
        heads: Vec<DeltaId>,
        /// Our incremental root hash.
        ours: Hash,
        /// Our root hash recomputed from scratch (tells which side is off).
        ours_recomputed: Option<Hash>,
        /// The peer's root hash.
        theirs: Hash,
    },
    /// A peer has the same heads and the same root hash as we computed.
    InSync {
        /// The peer.
        peer: PeerId,
        /// The common root hash.
        root_hash: Hash,
    },
    /// Applying deltas (not restoring them) changed the member set: the
    /// net change over one call into the DAG, right after the
    /// [`Output::Applied`] that made it. Sorted by key.
    MembersChanged {
        /// Identities that became members.
        added: Vec<PublicKey>,
        /// Identities that stopped being members.
        left: Vec<PublicKey>,
    },
    /// A peer cannot serve history we need (it was pruned): bootstrap from
    /// a snapshot.
    SnapshotNeeded {
        /// The peer.
        peer: PeerId,
        /// The pruned deltas it named.
        ids: Vec<DeltaId>,
    },
}
