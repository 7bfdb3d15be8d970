//! What a node's network is told at start: where to listen, who it is, whom
//! to meet first, how many connections to keep, and how gossip behaves.
//!
//! Guarantees: [`NetConfig::check`] turns every malformed value (an address
//! that does not parse, a bootstrap address without a peer id, inconsistent
//! mesh sizes, a zero timeout) into a [`NetError`] naming the field, before
//! any socket is opened. The identity seed never appears in `Debug` output.

use std::fmt;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use weft_primitives::encoding::FRAME_BYTES_MAX;

use crate::NetError;

/// The default swarm port (docs/design.md defaults).
pub const SWARM_PORT_DEFAULT: u16 = 2428;

/// Gossipsub parameters. The defaults suit small groups (a context has a
/// handful of members): a mesh of 1..3..6 peers, own messages flooded to every
/// subscribed peer, a 500 ms heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipParams {
    /// Below this many mesh peers a topic grafts more (D_low).
    pub mesh_n_low: usize,
    /// The mesh size aimed at (D).
    pub mesh_n: usize,
    /// Above this many mesh peers a topic prunes some (D_high).
    pub mesh_n_high: usize,
    /// How often the mesh is maintained and gossip emitted.
    pub heartbeat_interval: Duration,
    /// Send own messages to every subscribed peer, not only mesh peers: a
    /// small group's mesh may not have formed yet when a node publishes.
    pub flood_publish: bool,
    /// The largest gossip RPC accepted or sent, envelope included; at
    /// least [`GOSSIP_CONTROL_BYTES_MAX`](crate::GOSSIP_CONTROL_BYTES_MAX).
    pub max_transmit_bytes: usize,
    /// Heartbeats a received message stays in the cache: a message must be
    /// validated within `history_length × heartbeat_interval` to be forwarded.
    pub history_length: usize,
    /// How long a message id is remembered to drop duplicates.
    pub duplicate_cache_time: Duration,
}

impl Default for GossipParams {
    fn default() -> Self {
        GossipParams {
            mesh_n_low: 1,
            mesh_n: 3,
            mesh_n_high: 6,
            heartbeat_interval: Duration::from_millis(500),
            flood_publish: true,
            max_transmit_bytes: FRAME_BYTES_MAX,
            // 12 heartbeats of 500 ms: six seconds to validate a delta.
            history_length: 12,
            duplicate_cache_time: Duration::from_secs(120),
        }
    }
}

/// Everything [`crate::Network::spawn`] needs.
#[derive(Clone)]
pub struct NetConfig {
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/2428` and
    /// `/ip4/0.0.0.0/udp/2428/quic-v1`. A relayed address
    /// (`…/p2p/<relay>/p2p-circuit`) asks the relay for a reservation.
    pub listen_addrs: Vec<String>,
    /// The Ed25519 seed of the node's identity: the same seed, the same peer id.
    pub identity_seed: [u8; 32],
    /// Peers dialed at start and added to Kademlia; each must end in
    /// `/p2p/<peer id>`.
    pub bootstrap_peers: Vec<String>,
    /// The addresses other nodes should dial to reach this one, when they are
    /// not the listen addresses (a port forwarded by a NAT, a proxy in front
    /// of the node). When set, only these are announced (identify,
    /// invitations, peer exchange) and no other external address is kept.
    pub announce_addrs: Vec<String>,
    /// Discover peers on the local network with mDNS (off by default: it
    /// announces the node to everyone on the LAN).
    pub mdns: bool,
    /// Run the Kademlia DHT (server mode) for discovery beyond the bootstrap
    /// peers. On by default.
    pub kademlia: bool,
    /// At most this many established connections in total.
    pub max_established: u32,
    /// At most this many established connections to one peer.
    pub max_established_per_peer: u32,
    /// At most this many connections being set up at once, each direction.
    pub max_pending: u32,
    /// A connection no protocol uses is closed after this long.
    pub idle_connection_timeout: Duration,
    /// Gossipsub parameters.
    pub gossip: GossipParams,
    /// Every [`crate::FramedStream::recv`] must complete a whole frame within this.
    pub stream_read_timeout: Duration,
    /// Every [`crate::FramedStream::send`] must complete within this.
    pub stream_write_timeout: Duration,
    /// Opening a stream (dialing first if needed) must complete within this.
    pub stream_open_timeout: Duration,
}

impl NetConfig {
    /// Defaults for a node with identity `seed`: TCP and QUIC on all
    /// interfaces at [`SWARM_PORT_DEFAULT`], Kademlia on, mDNS off.
    pub fn new(identity_seed: [u8; 32]) -> NetConfig {
        NetConfig {
            listen_addrs: vec![
                format!("/ip4/0.0.0.0/tcp/{SWARM_PORT_DEFAULT}"),
                format!("/ip4/0.0.0.0/udp/{SWARM_PORT_DEFAULT}/quic-v1"),
            ],
            identity_seed,
            bootstrap_peers: Vec::new(),
            announce_addrs: Vec::new(),
            mdns: false,
            kademlia: true,
            max_established: 256,
            max_established_per_peer: 2,
            max_pending: 64,
            idle_connection_timeout: Duration::from_secs(120),
            gossip: GossipParams::default(),
            stream_read_timeout: Duration::from_secs(30),
            stream_write_timeout: Duration::from_secs(30),
            stream_open_timeout: Duration::from_secs(30),
        }
    }

    /// Defaults, listening on loopback only, on ports the OS picks (tests,
    /// several nodes on one machine).
    pub fn loopback(identity_seed: [u8; 32]) -> NetConfig {
        NetConfig {
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/0".into(), "/ip4/127.0.0.1/udp/0/quic-v1".into()],
            ..NetConfig::new(identity_seed)
        }
    }

    /// Parse and check every field; see the module guarantees.
    pub fn check(&self) -> Result<CheckedAddrs, NetError> {
        let mut listen = Vec::with_capacity(self.listen_addrs.len());
        for text in &self.listen_addrs {
            let addr = parse_addr(text).map_err(|reason| NetError::BadListenAddr { addr: text.clone(), reason })?;
            listen.push(addr);
        }
        let mut bootstrap = Vec::with_capacity(self.bootstrap_peers.len());
        for text in &self.bootstrap_peers {
            let addr = parse_addr(text).map_err(|reason| NetError::BadBootstrapAddr { addr: text.clone(), reason })?;
            let Some(peer) = peer_of_addr(&addr) else {
                return Err(NetError::BadBootstrapAddr {
                    addr: text.clone(),
                    reason: "no /p2p/<peer id> at the end".into(),
                });
            };
            bootstrap.push((peer, addr));
        }
        let mut announce = Vec::with_capacity(self.announce_addrs.len());
        for text in &self.announce_addrs {
            let addr = parse_addr(text).map_err(|reason| NetError::BadAnnounceAddr { addr: text.clone(), reason })?;
            if addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
                return Err(NetError::BadAnnounceAddr {
                    addr: text.clone(),
                    reason: "an announced address names no peer id (/p2p/…): it is this node's".into(),
                });
            }
            announce.push(addr);
        }
        let g = &self.gossip;
        if !(1 <= g.mesh_n_low && g.mesh_n_low <= g.mesh_n && g.mesh_n <= g.mesh_n_high) {
            return Err(NetError::BadConfig(format!(
                "gossip mesh sizes must satisfy 1 <= mesh_n_low ({}) <= mesh_n ({}) <= mesh_n_high ({})",
                g.mesh_n_low, g.mesh_n, g.mesh_n_high
            )));
        }
        // One RPC carries every subscription of a node when a peer connects.
        let least = (crate::GOSSIP_ENVELOPE_BYTES_MAX * 2).max(crate::GOSSIP_CONTROL_BYTES_MAX);
        if g.max_transmit_bytes < least {
            return Err(NetError::BadConfig(format!(
                "gossip max_transmit_bytes {} is too small: at least {least} (one RPC must hold every topic subscription)",
                g.max_transmit_bytes
            )));
        }
        if g.history_length < 3 {
            return Err(NetError::BadConfig("gossip history_length must be at least 3".into()));
        }
        let durations = [
            ("gossip.heartbeat_interval", g.heartbeat_interval),
            ("gossip.duplicate_cache_time", g.duplicate_cache_time),
            ("idle_connection_timeout", self.idle_connection_timeout),
            ("stream_read_timeout", self.stream_read_timeout),
            ("stream_write_timeout", self.stream_write_timeout),
            ("stream_open_timeout", self.stream_open_timeout),
        ];
        for (name, value) in durations {
            if value.is_zero() {
                return Err(NetError::BadConfig(format!("{name} must not be zero")));
            }
        }
        if self.max_established == 0 || self.max_established_per_peer == 0 || self.max_pending == 0 {
            return Err(NetError::BadConfig("connection limits must be at least 1".into()));
        }
        Ok(CheckedAddrs { listen, bootstrap, announce })
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("listen_addrs", &self.listen_addrs)
            .field("identity_seed", &"<secret>")
            .field("bootstrap_peers", &self.bootstrap_peers)
            .field("announce_addrs", &self.announce_addrs)
            .field("mdns", &self.mdns)
            .field("kademlia", &self.kademlia)
            .field("max_established", &self.max_established)
            .field("max_established_per_peer", &self.max_established_per_peer)
            .field("max_pending", &self.max_pending)
            .field("idle_connection_timeout", &self.idle_connection_timeout)
            .field("gossip", &self.gossip)
            .field("stream_read_timeout", &self.stream_read_timeout)
            .field("stream_write_timeout", &self.stream_write_timeout)
            .field("stream_open_timeout", &self.stream_open_timeout)
            .finish()
    }
}

/// The parsed addresses of a checked [`NetConfig`].
#[derive(Clone, Debug)]
pub struct CheckedAddrs {
    /// Where to listen.
    pub listen: Vec<Multiaddr>,
    /// The bootstrap peers and their full addresses.
    pub bootstrap: Vec<(PeerId, Multiaddr)>,
    /// The addresses announced instead of the listen addresses (empty: the
    /// listen addresses are announced).
    pub announce: Vec<Multiaddr>,
}

fn parse_addr(text: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr = text.parse().map_err(|e: libp2p::multiaddr::Error| e.to_string())?;
    if addr.is_empty() {
        return Err("empty address".into());
    }
    Ok(addr)
}

/// The peer id at the end of `addr` (`…/p2p/<peer id>`), if any.
pub fn peer_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// Whether `addr` asks a relay for a reservation rather than binding a socket.
pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_check() {
        let checked = NetConfig::new([1; 32]).check().unwrap();
        assert_eq!(checked.listen.len(), 2);
        assert!(NetConfig::loopback([1; 32]).check().is_ok());
    }

    #[test]
    fn unparseable_listen_addr_is_named_in_the_error() {
        let mut config = NetConfig::loopback([1; 32]);
        config.listen_addrs.push("tcp://127.0.0.1:80".into());
        let err = config.check().unwrap_err();
        assert!(matches!(&err, NetError::BadListenAddr { addr, .. } if addr == "tcp://127.0.0.1:80"), "{err}");
    }

    #[test]
    fn bootstrap_addr_needs_a_peer_id() {
        let mut config = NetConfig::loopback([1; 32]);
        config.bootstrap_peers.push("/ip4/127.0.0.1/tcp/4001".into());
        assert!(matches!(config.check(), Err(NetError::BadBootstrapAddr { .. })));
        let peer = crate::peer_id_from_seed(&[2; 32]).unwrap();
        config.bootstrap_peers = vec![format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}")];
        assert_eq!(config.check().unwrap().bootstrap[0].0, peer);
    }

    #[test]
    fn announce_addrs_are_parsed_and_name_no_peer() {
        let mut config = NetConfig::loopback([1; 32]);
        config.announce_addrs = vec!["/ip4/127.0.0.1/tcp/9000".into()];
        assert_eq!(config.check().unwrap().announce.len(), 1);
        config.announce_addrs.push("not an address".into());
        assert!(matches!(config.check(), Err(NetError::BadAnnounceAddr { addr, .. }) if addr == "not an address"));
        let peer = crate::peer_id_from_seed(&[2; 32]).unwrap();
        config.announce_addrs = vec![format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}")];
        assert!(matches!(config.check(), Err(NetError::BadAnnounceAddr { .. })));
    }

    #[test]
    fn inconsistent_mesh_sizes_are_refused() {
        let mut config = NetConfig::loopback([1; 32]);
        config.gossip.mesh_n_low = 4;
        assert!(matches!(config.check(), Err(NetError::BadConfig(_))));
        config.gossip = GossipParams { mesh_n_low: 0, ..GossipParams::default() };
        assert!(matches!(config.check(), Err(NetError::BadConfig(_))));
    }

    #[test]
    fn zero_timeouts_and_limits_are_refused() {
        let mut config = NetConfig::loopback([1; 32]);
        config.stream_read_timeout = Duration::ZERO;
        assert!(matches!(config.check(), Err(NetError::BadConfig(m)) if m.contains("stream_read_timeout")));
        let mut config = NetConfig::loopback([1; 32]);
        config.max_established_per_peer = 0;
        assert!(matches!(config.check(), Err(NetError::BadConfig(_))));
    }

    #[test]
    fn debug_hides_the_seed() {
        let text = format!("{:?}", NetConfig::loopback([0xab; 32]));
        assert!(text.contains("<secret>"));
        assert!(!text.contains("171"));
    }
}
