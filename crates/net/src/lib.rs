//! Weft's network: one libp2p swarm per node, driven on a tokio task, seen
//! by the rest of the node through one cloneable [`NetHandle`] and one
//! bounded stream of [`NetEvent`]s.
//!
//! What runs: TCP and QUIC (Noise + Yamux on TCP), gossipsub (anonymous
//! messages: no origin, sequence number or signature, since the payload is
//! a delta its author signed; message id from [`message_id`], nothing
//! forwarded before the caller's [`Validation`], rejected senders lose
//! score), identify, ping, Kademlia in server mode with bootstrap peers,
//! mDNS when enabled, relay client + DCUtR + AutoNAT for nodes behind NAT,
//! connection limits, and the `/weft/sync/1` stream protocol carrying
//! length-framed messages ([`FramedStream`], splittable into a
//! [`FramedReader`] and a [`FramedWriter`] for full-duplex sessions).
//!
//! Gossip message ids: the id of a message is the BLAKE3 hash of its whole
//! payload (see [`message_id`]). The node seals each delta
//! deterministically (the nonce derives from the context and the delta id),
//! so one delta is one gossip message whichever route it came by, and a
//! payload nobody sealed under the group key — `delta id || garbage` sent
//! first by a stranger — has an id of its own and cannot suppress the
//! genuine message as a duplicate.
//!
//! Guarantees:
//! - every queue is bounded by a named `*_MAX` constant; a slow event
//!   consumer never blocks the swarm (see the `driver` module for the
//!   backlog-then-drop policy and [`NetStats`] for the counters);
//! - publishing is never gated on gossip mesh peers, and a message that
//!   reached nobody is reported as such ([`PublishOutcome`]): gossip is the
//!   fast path, correctness lives in the repair path;
//! - a bad configuration is refused with an error naming the field before
//!   any socket opens; a port in use fails the start, not later.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_net::NetError> {
//! use weft_net::{NetConfig, NetEvent, Network, Validation};
//! let (net, mut events) = Network::spawn(NetConfig::loopback([7; 32])).await?;
//! net.subscribe("context/abc").await?;
//! while let Some(event) = events.recv().await {
//!     if let NetEvent::Message { msg_id, propagation_source, .. } = event {
//!         net.report_validation(msg_id, propagation_source, Validation::Accept).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

mod behaviour;
mod config;
mod driver;
mod error;
mod handle;
mod identity;
mod inbound;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

pub use behaviour::{GOSSIP_CONTROL_BYTES_MAX, GOSSIP_TOPICS_PER_PEER_MAX, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};
pub use config::{CheckedAddrs, GossipParams, NetConfig, SWARM_PORT_DEFAULT, peer_of_addr};
pub use error::NetError;
pub use handle::{IncomingStreams, NetEvent, NetHandle, NetStats, PeerInfo, PublishOutcome, Validation};
pub use identity::{peer_id_from_seed, peer_id_of, peer_public_key};
pub use libp2p::{Multiaddr, PeerId, multiaddr};
pub use stream::{FramedReader, FramedStream, FramedWriter, read_frames};

use handle::{Counters, StreamTimeouts};

/// The sync stream protocol (versioned: a new wire format gets a new id).
pub const SYNC_PROTOCOL: &str = "/weft/sync/1";

/// Commands waiting for the swarm task; callers wait when it is full.
pub const COMMANDS_MAX: usize = 256;
/// Events waiting in the channel to the node.
pub const EVENTS_MAX: usize = 1024;
/// Events waiting inside the swarm task while the channel is full; beyond
/// this, gossip messages are dropped and counted, and subscription changes
/// are folded into a [`NetEvent::PeerTopics`] (connection events are kept).
pub const EVENT_BACKLOG_MAX: usize = 4096;
/// Inbound streams waiting to be accepted; beyond this they are refused.
/// Holds the bursts of a few peers each opening
/// [`STREAM_OPENS_IN_FLIGHT_MAX`] at once.
pub const INCOMING_STREAMS_MAX: usize = 256;
/// Outbound stream opens in flight at once (more wait for a slot).
pub const STREAM_OPENS_IN_FLIGHT_MAX: usize = 64;
/// Addresses taken from one peer's identify message or one mDNS
/// announcement, and given to one dial.
pub const PEER_ADDRS_MAX: usize = 16;
/// Dials waiting for their outcome at once.
pub const PENDING_DIALS_MAX: usize = 64;
/// The longest topic name.
pub const TOPIC_BYTES_MAX: usize = 256;
/// Bytes of a gossip RPC reserved for the envelope (the topic and the
/// protobuf framing; anonymous messages carry no signature, key or
/// sequence number): the largest publishable payload is the transmit size
/// minus this.
pub const GOSSIP_ENVELOPE_BYTES_MAX: usize = 4096;
/// How long the start waits for every listener to report an address.
pub const LISTEN_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The message id gossipsub gives `data`: the BLAKE3 hash of all of it.
///
/// Two payloads are one message to gossipsub only when they are the same
/// bytes, so nobody can make a genuine message look like a duplicate of
/// theirs without sending exactly it. Deduplication of one delta relies on
/// the sender sealing it deterministically (the node does: see
/// `weft_membership::seal_gossip`).
pub fn message_id(data: &[u8]) -> weft_primitives::Hash {
    weft_primitives::Hash::of(data)
}

/// Starts the network.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Check `config`, build the swarm, listen on every configured address
    /// (waiting until each has bound, within [`LISTEN_READY_TIMEOUT`]), dial
    /// the bootstrap peers, and run the swarm on a tokio task. Must be called
    /// inside a tokio runtime. The task ends on [`NetHandle::shutdown`] or
    /// when every handle is dropped.
    pub async fn spawn(config: NetConfig) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
        tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
        let addrs = config.check()?;
        let keypair = identity::keypair_from_seed(&config.identity_seed)?;
        let local_peer = keypair.public().to_peer_id();
        let counters = Arc::new(Counters::default());
        let timeouts = StreamTimeouts {
            open: config.stream_open_timeout,
            read: config.stream_read_timeout,
            write: config.stream_write_timeout,
        };
        // The swarm's connections hold the only senders: the queue ends when
        // the swarm stops.
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_STREAMS_MAX);
        let inbox = inbound::StreamInbox { queue: incoming_tx, counters: counters.clone(), timeouts };
        let mut swarm = behaviour::build_swarm(&config, keypair, &addrs, inbox)?;
        let control = swarm.behaviour().stream.new_control();

        let mut waiting = HashMap::new();
        for addr in &addrs.listen {
            ensure_tcp_port_free(addr)?;
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
            // A relayed address binds nothing locally; its reservation may take
            // long and is not a reason to fail the start.
            if !config::is_relayed(addr) {
                waiting.insert(id, addr.clone());
            }
        }

        let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_MAX);
        let (events_tx, events_rx) = mpsc::channel(EVENTS_MAX);
        for addr in &addrs.announce {
            swarm.add_external_address(addr.clone());
        }
        let mut driver = driver::Driver::new(
            swarm,
            commands_rx,
            events_tx,
            counters.clone(),
            config.gossip.max_transmit_bytes,
            addrs.announce.clone(),
        );
        driver.wait_listening(waiting, LISTEN_READY_TIMEOUT).await?;

        for (_, addr) in &addrs.bootstrap {
            // Unreachable bootstrap peers are not fatal: Kademlia and the
            // node's own redials keep trying.
            let _ = driver.swarm.dial(addr.clone());
        }
        if !addrs.bootstrap.is_empty()
            && let Some(kad) = driver.swarm.behaviour_mut().kad.as_mut()
        {
            let _ = kad.bootstrap();
        }

        tokio::spawn(async move { driver.run().await });

        let handle = NetHandle {
            commands: commands_tx,
            control,
            local_peer,
            open_slots: Arc::new(Semaphore::new(STREAM_OPENS_IN_FLIGHT_MAX)),
            incoming: Arc::new(Mutex::new(Some(IncomingStreams { receiver: incoming_rx }))),
            counters,
            timeouts,
        };
        Ok((handle, events_rx))
    }
}

/// libp2p binds TCP listeners with `SO_REUSEPORT`, so a second node on the
/// same port would start "successfully" and split the port's connections with
/// the first. A plain bind (no `SO_REUSEPORT`) fails on a taken port: probe
/// with one first. A port of 0 (the OS picks) needs no probe.
fn ensure_tcp_port_free(addr: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match (parts.next(), parts.next()) {
        (Some(Protocol::Tcp(port)), None) if port != 0 => port,
        _ => return Ok(()),
    };
    match std::net::TcpListener::bind((ip, port)) {
        // Dropped at once: libp2p binds it next.
        Ok(_) => Ok(()),
        Err(e) => Err(NetError::Listen { addr: addr.to_string(), reason: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_primitives::Hash;

    #[test]
    fn message_id_is_the_hash_of_the_whole_payload() {
        let genuine = [[7u8; 32].as_slice(), &[1; 40]].concat();
        let forged = [[7u8; 32].as_slice(), &[2; 40]].concat();
        assert_eq!(message_id(&genuine), Hash::of(&genuine));
        assert_ne!(message_id(&genuine), message_id(&forged), "a shared prefix is not a shared id");
        assert_eq!(message_id(b""), Hash::of(b""));
    }
}
