//! The node's one error type: every way a request to the node can fail, each
//! with enough context to be one clear line for a user.

use weft_primitives::Hash;

/// Why a node operation failed. Nothing was changed unless the variant says so.
/// [`NodeError::code`] gives each a stable machine-readable name for APIs.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node's configuration is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] weft_store::StoreError),
    /// The network failed.
    #[error("network: {0}")]
    Net(#[from] weft_net::NetError),
    /// The WASM runtime refused or failed the call.
    #[error("runtime: {0}")]
    Runtime(#[from] weft_runtime::RuntimeError),
    /// A persisted replica could not be rebuilt.
    #[error("restoring context {context}: {reason}")]
    Restore {
        /// The context.
        context: Hash,
        /// What went wrong.
        reason: String,
    },
    /// No context with this id on this node.
    #[error("unknown context {0}")]
    UnknownContext(Hash),
    /// No application with this id is installed.
    #[error("unknown application {0}")]
    UnknownApplication(Hash),
    /// The application is run by a context and cannot be removed.
    #[error("application {application} is used by context {context}")]
    ApplicationInUse {
        /// The application.
        application: Hash,
        /// A context that runs it.
        context: Hash,
    },
    /// The application has no method of that name.
    #[error("application has no method {0:?}")]
    UnknownMethod(String),
    /// Clients may call views and mutations only (not init or handlers).
    #[error("method {method:?} is a {kind} method and cannot be called directly")]
    NotCallable {
        /// The method.
        method: String,
        /// Its kind.
        kind: String,
    },
    /// The application's method returned its own error (JSON).
    #[error("application error: {}", String::from_utf8_lossy(.0))]
    App(Vec<u8>),
    /// An application emitted an event kind reserved for the system.
    #[error("event kind {0:?} is reserved for the system")]
    ReservedEvent(String),
    /// The write was not committed.
    #[error("write refused: {0}")]
    Write(#[from] weft_sync::WriteError),
    /// The invitation is invalid, expired or not for us.
    #[error("invitation: {0}")]
    Invitation(#[from] weft_membership::MembershipError),
    /// The inviter's node refused to admit us.
    #[error("join refused: {0}")]
    JoinRefused(String),
    /// The identity named is not a member (nothing to remove).
    #[error("{0:?} is not a member of the context")]
    NotAMember(weft_primitives::PublicKey),
    /// We are already a member of the context on this node.
    #[error("already a member of context {0}")]
    AlreadyJoined(Hash),
    /// A peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Something did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A view could not read its context's state, or its thread failed.
    #[error("view: {0}")]
    View(String),
    /// The node is shutting down or stopped.
    #[error("the node is stopped")]
    Stopped,
}

impl NodeError {
    /// A stable, machine-readable name for the error (API error `code`s).
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::Config(_) => "bad_config",
            NodeError::Store(_) => "store_failure",
            NodeError::Net(_) => "network_failure",
            NodeError::Runtime(_) => "runtime_error",
            NodeError::Restore { .. } => "restore_failure",
            NodeError::UnknownContext(_) => "unknown_context",
            NodeError::UnknownApplication(_) => "unknown_application",
            NodeError::ApplicationInUse { .. } => "application_in_use",
            NodeError::UnknownMethod(_) => "unknown_method",
            NodeError::NotCallable { .. } => "not_callable",
            NodeError::App(_) => "app_error",
            NodeError::ReservedEvent(_) => "reserved_event",
            // The disk failed: the write is not acknowledged, and whether it
            // reached the disk is unknown.
            NodeError::Write(weft_sync::WriteError::Store(_)) => "store_failure",
            NodeError::Write(_) => "write_refused",
            NodeError::Invitation(_) => "bad_invitation",
            NodeError::JoinRefused(_) => "join_refused",
            NodeError::AlreadyJoined(_) => "already_joined",
            NodeError::NotAMember(_) => "not_a_member",
            NodeError::Protocol(_) => "protocol_error",
            NodeError::Timeout(_) => "timeout",
            NodeError::View(_) => "view_failure",
            NodeError::Stopped => "node_stopped",
        }
    }
}
