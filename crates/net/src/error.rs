//! The one error type of the network crate: each refusal its own variant, so
//! callers can tell a bad configuration from a dead peer from a malformed
//! frame.

use std::time::Duration;

use libp2p::PeerId;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// [`crate::Network::spawn`] was called outside a tokio runtime.
    #[error("the network must be started inside a tokio runtime")]
    NoRuntime,
    /// A listen address in the configuration does not parse.
    #[error("listen address {addr:?} is invalid: {reason}")]
    BadListenAddr {
        /// The address as configured.
        addr: String,
        /// What the parser objected to.
        reason: String,
    },
    /// A bootstrap peer address in the configuration is unusable.
    #[error("bootstrap address {addr:?} is invalid: {reason}")]
    BadBootstrapAddr {
        /// The address as configured.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An announced address in the configuration is unusable.
    #[error("announce address {addr:?} is invalid: {reason}")]
    BadAnnounceAddr {
        /// The address as configured.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Some other configuration value is out of range.
    #[error("invalid network configuration: {0}")]
    BadConfig(String),
    /// An identity seed or key is not a valid Ed25519 key.
    #[error("invalid identity key: {0}")]
    BadIdentity(String),
    /// The transport stack could not be built.
    #[error("cannot build the transport: {0}")]
    Transport(String),
    /// Listening on a configured address failed (e.g. the port is taken).
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// The operating system's or transport's reason.
        reason: String,
    },
    /// Dialing an address failed.
    #[error("dialing {addr} failed: {reason}")]
    Dial {
        /// The address dialed.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Too many dials are waiting for their outcome.
    #[error("too many dials in flight (at most {max})")]
    TooManyDials {
        /// The limit.
        max: usize,
    },
    /// A topic name is longer than [`crate::TOPIC_BYTES_MAX`].
    #[error("topic of {len} bytes exceeds the {max}-byte limit")]
    TopicTooLong {
        /// The topic's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Subscribing to a topic failed.
    #[error("cannot subscribe to {topic:?}: {reason}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A gossip message is larger than the configured transmit size allows.
    #[error("message of {len} bytes exceeds the {max}-byte gossip limit")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Gossipsub refused a message for a reason other than the non-fatal
    /// outcomes of [`crate::PublishOutcome`] (e.g. signing failed).
    #[error("publishing failed: {0}")]
    Publish(String),
    /// The swarm task has stopped (shut down or crashed); the handle is dead.
    #[error("the network task has stopped")]
    Stopped,
    /// The inbound stream receiver was already handed out.
    #[error("incoming streams were already taken by another caller")]
    IncomingStreamsTaken,
    /// The peer does not speak the stream protocol.
    #[error("peer {peer} does not support {protocol}")]
    UnsupportedProtocol {
        /// The peer.
        peer: PeerId,
        /// The protocol asked for.
        protocol: &'static str,
    },
    /// Opening a stream failed.
    #[error("opening a stream to {peer} failed: {reason}")]
    OpenStream {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// An operation did not complete in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The bound that expired.
        after: Duration,
    },
    /// A frame's length prefix announces more than the limit; nothing was
    /// allocated for it and the stream is unusable afterwards.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("truncated frame: announced {announced} bytes, {received} received")]
    TruncatedFrame {
        /// The announced length (0 when the length prefix itself was cut).
        announced: usize,
        /// The payload bytes received (or prefix bytes, when it was cut).
        received: usize,
    },
    /// The peer closed the stream cleanly, between frames.
    #[error("stream closed by the peer")]
    StreamClosed,
    /// A stream read or write failed.
    #[error("stream i/o failed: {0}")]
    Io(String),
}
