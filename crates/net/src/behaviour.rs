//! The composed libp2p behaviour and the swarm built from a [`NetConfig`].
//!
//! Transports: TCP (Noise + Yamux), QUIC, and the relay client transport
//! (Noise + Yamux over a relayed circuit). Behaviours: connection limits
//! (first, so a denied connection is refused before any other protocol sees
//! it), gossipsub (anonymous messages, caller-side acceptance, peer
//! scoring so a rejected message costs its sender), identify, ping,
//! Kademlia in server mode (optional), mDNS (opt-in), relay client, DCUtR,
//! AutoNAT, and `/weft/sync/1`: the generic stream behaviour opens its
//! streams, [`SyncInbound`] accepts them.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, Swarm, SwarmBuilder, autonat, connection_limits, dcutr, gossipsub, identify, identity, kad,
    mdns, noise, ping, relay, tcp, yamux,
};

use crate::config::CheckedAddrs;
use crate::inbound::{StreamInbox, SyncInbound};
use crate::{NetConfig, NetError};

/// The Kademlia protocol of Weft's own DHT (not the public IPFS one).
pub const KAD_PROTOCOL: &str = "/weft/kad/1";

/// The identify protocol version Weft nodes announce.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/weft/1";

/// Weight of one invalid message in a topic's peer score (P4, squared): one
/// rejected message costs -10 (the gossip threshold), two -40, three -90,
/// below the graylist threshold (-80), after which the sender is ignored.
const INVALID_MESSAGE_WEIGHT: f64 = -10.0;

/// How long a rejected message keeps weighing on its sender's score (decays
/// to 10% over this span).
const INVALID_MESSAGE_MEMORY: Duration = Duration::from_secs(600);

/// Topics one peer may be subscribed to as far as gossipsub keeps track
/// (and subscriptions in one of its RPCs). gossipsub's default is 100, and a
/// peer over it has *every* RPC ignored, messages included: two nodes that
/// share more than 100 contexts stopped gossiping altogether. The bound
/// stays, at twice the 10,000 contexts a node is built to hold, because
/// each tracked subscription of a peer costs memory (a few hundred bytes).
pub const GOSSIP_TOPICS_PER_PEER_MAX: usize = 20_000;

/// Bytes of subscriptions and control messages gossipsub accepts in one
/// RPC. A node sends every topic it subscribes to in one RPC when a peer
/// connects, and gossipsub's default (16 KiB) holds about 200 of our
/// context topics: the RPC of a node in more contexts was dropped whole,
/// so its peer never learned any of its subscriptions, no context got a
/// sync peer, and nothing was repaired. Sized for the most subscriptions
/// a peer may hold, each a topic of the longest allowed name with its
/// protobuf framing; a whole RPC is still bounded by `max_transmit_size`.
pub const GOSSIP_CONTROL_BYTES_MAX: usize = GOSSIP_TOPICS_PER_PEER_MAX * (crate::TOPIC_BYTES_MAX + 8);

/// Every libp2p protocol a Weft node runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) autonat: autonat::Behaviour,
    /// Opens outbound `/weft/sync/1` streams (it accepts none).
    pub(crate) stream: libp2p_stream::Behaviour,
    /// Accepts inbound `/weft/sync/1` streams into the node's queue.
    pub(crate) sync_inbound: SyncInbound,
}

/// The swarm for `config`, not yet listening.
pub(crate) fn build_swarm(
    config: &NetConfig,
    keypair: identity::Keypair,
    addrs: &CheckedAddrs,
    inbox: StreamInbox,
) -> Result<Swarm<Behaviour>, NetError> {
    let gossip_config = gossip_config(config)?;
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
            let peer = key.public().to_peer_id();
            let topics = gossipsub::MaxCountSubscriptionFilter {
                filter: gossipsub::AllowAllSubscriptionFilter {},
                max_subscribed_topics: GOSSIP_TOPICS_PER_PEER_MAX,
                max_subscriptions_per_request: GOSSIP_TOPICS_PER_PEER_MAX,
            };
            let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
                // No gossip-level signature: what a message carries is a
                // delta its author signed and sealed under the group key,
                // checked by the node whatever route it came by, and
                // scoring uses the peer that forwarded it, not an origin.
                // Signing it again cost one Ed25519 signature per publish
                // and one verification per message received, and told
                // every forwarder which peer wrote it.
                gossipsub::MessageAuthenticity::Anonymous,
                gossip_config,
                topics,
            )?;
            gossipsub.with_peer_score(peer_score_params(), gossipsub::PeerScoreThresholds::default())?;
            let mdns = match config.mdns {
                true => Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?),
                false => None,
            };
            let kad = config.kademlia.then(|| kademlia(peer, addrs));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(config.max_established))
                        .with_max_established_per_peer(Some(config.max_established_per_peer))
                        .with_max_pending_incoming(Some(config.max_pending))
                        .with_max_pending_outgoing(Some(config.max_pending)),
                ),
                gossipsub,
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), key.public())
                        .with_agent_version(format!("weft/{}", env!("CARGO_PKG_VERSION")))
                        // Announced addresses replace the listen addresses:
                        // peers must dial those (a proxy, a forwarded port).
                        .with_hide_listen_addrs(!addrs.announce.is_empty()),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad: Toggle::from(kad),
                mdns: Toggle::from(mdns),
                relay_client,
                dcutr: dcutr::Behaviour::new(peer),
                autonat: autonat::Behaviour::new(peer, autonat::Config::default()),
                stream: libp2p_stream::Behaviour::new(),
                sync_inbound: SyncInbound::new(inbox),
            })
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}

fn kademlia(peer: PeerId, addrs: &CheckedAddrs) -> kad::Behaviour<kad::store::MemoryStore> {
    let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_config.set_query_timeout(Duration::from_secs(30));
    let mut kad = kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), kad_config);
    // Server mode: answer DHT queries even before an external address is
    // confirmed, so a handful of nodes on one LAN can find each other.
    kad.set_mode(Some(kad::Mode::Server));
    for (peer, addr) in &addrs.bootstrap {
        kad.add_address(peer, addr.clone());
    }
    kad
}

fn gossip_config(config: &NetConfig) -> Result<gossipsub::Config, NetError> {
    let g = &config.gossip;
    gossipsub::ConfigBuilder::default()
        .mesh_n_low(g.mesh_n_low)
        .mesh_n(g.mesh_n)
        .mesh_n_high(g.mesh_n_high)
        // At most half the mesh must be outbound, and never more than D_low.
        .mesh_outbound_min((g.mesh_n / 2).min(g.mesh_n_low))
        .heartbeat_interval(g.heartbeat_interval)
        // The first heartbeat builds the mesh: don't wait the default 5 s.
        .heartbeat_initial_delay(g.heartbeat_interval)
        .flood_publish(g.flood_publish)
        .max_transmit_size(g.max_transmit_bytes)
        .max_control_message_size(GOSSIP_CONTROL_BYTES_MAX)
        .history_length(g.history_length)
        .history_gossip(3)
        .duplicate_cache_time(g.duplicate_cache_time)
        // Anonymous: a message with an origin, sequence number or signature
        // is refused (and its forwarder scored), so every accepted message
        // has one shape and its id depends on its payload alone.
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        // Nothing is forwarded until the caller reports it valid.
        .validate_messages()
        // Delta ids (the clear prefix): the same delta from two routes, or
        // encrypted twice, is one message. The node checks the prefix.
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::new(crate::message_id(&message.data).as_bytes())
        })
        .build()
        .map_err(|e| NetError::BadConfig(format!("gossipsub: {e}")))
}

fn peer_score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        // Members of one context often share a NAT or a machine; a signed
        // delta's author is checked anyway, so co-location is no penalty.
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    }
}

/// Score parameters for one subscribed topic: only the signals that hold in
/// a small group with sparse traffic. Mesh delivery deficits (P3, P3b) are
/// off because a quiet context would penalize every honest peer; invalid
/// messages (P4) weigh heavily.
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 60.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(60)),
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(INVALID_MESSAGE_MEMORY),
        ..gossipsub::TopicScoreParams::default()
    }
}
