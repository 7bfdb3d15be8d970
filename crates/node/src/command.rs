//! The messages the [`NodeHandle`](crate::NodeHandle) and the node's own
//! tasks send to the driver, and the answers they get back.

use tokio::sync::{mpsc, oneshot};
use weft_dag::DeltaId;
use weft_membership::Invitation;
use weft_net::PeerId as NetPeer;
use weft_primitives::{Hash, PublicKey};
use weft_sync::SessionId;

use crate::NodeError;
use crate::replica_store::DeadJob;
use crate::wire::{DirectoryReply, JoinAccepted, JoinReply};

/// A reply slot.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// An installed application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// Its id: BLAKE3 of the module.
    pub id: Hash,
    /// The manifest's name.
    pub name: String,
    /// Its methods: (name, kind).
    pub methods: Vec<(String, String)>,
    /// The module's size in bytes.
    pub size: usize,
}

/// One key epoch of a context, as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEpochInfo {
    /// 0 for the first key, one more per rotation.
    pub number: u64,
    /// The delta that rotated to it (the zero hash for epoch 0).
    pub rotation: Hash,
    /// How many members the key was wrapped for (1 for epoch 0: its creator).
    pub recipients: u64,
    /// Whether this node holds the key.
    pub held: bool,
    /// Whether it is the current epoch at our heads.
    pub current: bool,
}

/// A context as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextInfo {
    /// Its id.
    pub id: Hash,
    /// The application it runs.
    pub application: Hash,
    /// The identity this node writes as.
    pub identity: PublicKey,
    /// The current members.
    pub members: Vec<PublicKey>,
    /// The root hash of the state.
    pub root_hash: Hash,
    /// The heads of the DAG.
    pub heads: Vec<DeltaId>,
    /// Deltas applied.
    pub applied: u64,
    /// Deltas waiting for parents.
    pub pending: u64,
    /// Handler jobs owed.
    pub handler_jobs: u64,
    /// Member nodes connected (by node key).
    pub peers: Vec<[u8; 32]>,
    /// Member nodes this node knows how to reach (its address book),
    /// connected or not.
    pub member_nodes_known: usize,
    /// The replica's counters since the node started.
    pub stats: weft_sync::ReplicaStats,
}

/// What `sync now` did in one context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncNowOutcome {
    /// The context.
    pub context: Hash,
    /// Whether a session with a member's node started.
    pub started: bool,
    /// Member nodes connected: 0 means no member is reachable now.
    pub peers: usize,
    /// Member nodes known (redialed until they answer).
    pub member_nodes_known: usize,
}

/// The answer to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallReply {
    /// The method's result (JSON; empty if it returned nothing).
    pub result: Vec<u8>,
    /// The delta the call committed, if it changed anything.
    pub delta: Option<DeltaId>,
    /// The root hash after the call.
    pub root_hash: Hash,
}

/// Requests from the handle.
pub(crate) enum Command {
    InstallApp { module: Vec<u8>, reply: Reply<AppInfo> },
    Apps { reply: Reply<Vec<AppInfo>> },
    RemoveApp { application: Hash, reply: Reply<()> },
    CreateContext { application: Hash, init_args: Vec<u8>, reply: Reply<ContextInfo> },
    Invite { context: Hash, invitee: Option<PublicKey>, valid_for_ms: u64, reply: Reply<String> },
    Joined { invitation: Box<Invitation>, inviter: NetPeer, accepted: Box<JoinAccepted>, reply: Reply<ContextInfo> },
    Leave { context: Hash, reply: Reply<()> },
    RevokeInvitation { context: Hash, invitation: Hash, reply: Reply<()> },
    RemoveMember { context: Hash, member: PublicKey, reply: Reply<Hash> },
    KeyEpochs { context: Hash, reply: Reply<Vec<KeyEpochInfo>> },
    Call { context: Hash, method: String, args: Vec<u8>, reply: Reply<CallReply> },
    Contexts { reply: Reply<Vec<ContextInfo>> },
    Context { context: Hash, reply: Reply<ContextInfo> },
    SyncNow { context: Option<Hash>, reply: Reply<Vec<SyncNowOutcome>> },
    Delta { context: Hash, id: DeltaId, reply: Reply<Option<Vec<u8>>> },
    DeadJobs { context: Hash, reply: Reply<Vec<(u64, DeadJob)>> },
    PublishRaw { context: Hash, id: DeltaId, bytes: Vec<u8>, reply: Reply<()> },
    DeliverRaw { context: Hash, from: NetPeer, bytes: Vec<u8>, reply: Reply<()> },
    Hold { release: oneshot::Receiver<()>, reply: Reply<()> },
    Shutdown { reply: Reply<()> },
}

/// Frames queued for one stream's writer task.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame(Vec<u8>),
    Close,
}

/// Reports from stream tasks.
pub(crate) enum Internal {
    /// An inbound sync stream's hello; `verdict` says whether it is served
    /// (nothing more is read from the stream until it does).
    InboundSession {
        context: Hash,
        peer: NetPeer,
        session: SessionId,
        member: PublicKey,
        signature: weft_primitives::Signature,
        outbox: mpsc::Sender<Outbound>,
        verdict: oneshot::Sender<bool>,
    },
    /// The first frame the responder of a session we opened sent: it must
    /// be its `SyncAccept`.
    SessionAccept {
        peer: NetPeer,
        session: SessionId,
        bytes: Vec<u8>,
    },
    Frame {
        peer: NetPeer,
        session: SessionId,
        bytes: Vec<u8>,
    },
    Closed {
        peer: NetPeer,
        session: SessionId,
    },
    JoinRequest {
        peer: NetPeer,
        request: Box<JoinRequest>,
        reply: oneshot::Sender<JoinReply>,
    },
    DirectoryRequest {
        peer: NetPeer,
        context: Hash,
        n: u64,
        member: PublicKey,
        signature: weft_primitives::Signature,
        reply: oneshot::Sender<DirectoryReply>,
    },
    /// The answer to a directory request we made with number `n`.
    Directory {
        peer: NetPeer,
        context: Hash,
        n: u64,
        reply: DirectoryReply,
    },
    /// A directory request we made got no answer (the stream could not be
    /// opened, or broke): it may be asked again soon.
    DirectoryFailed {
        peer: NetPeer,
        context: Hash,
    },
}

/// A challenged join, as the stream task that ran the exchange hands it to
/// the driver: the invitation, the joiner's proof, and what the proof must
/// be bound to (our challenge and both nodes' keys).
#[derive(Debug)]
pub(crate) struct JoinRequest {
    pub(crate) invitation: weft_membership::Invitation,
    pub(crate) proof: weft_membership::JoinProof,
    pub(crate) binding: weft_membership::JoinBinding,
}
