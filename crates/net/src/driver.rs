//! The swarm task: owns the libp2p swarm, executes handle commands, turns
//! swarm events into [`NetEvent`]s.
//!
//! Event policy (the swarm is never blocked by a slow consumer): events go
//! into the bounded channel ([`crate::EVENTS_MAX`]); while it is full they wait
//! in a bounded backlog ([`crate::EVENT_BACKLOG_MAX`]) that drains, in order,
//! as the consumer catches up; when the backlog is full too, new events are
//! dropped and counted in [`crate::NetStats::events_dropped`]. A dropped gossip
//! message is reported `Ignore` to gossipsub (no forwarding, no penalty):
//! like any missed gossip, the repair path fetches it later.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, PublishError, TopicHash};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, core::transport::ListenerId, identify, mdns, ping};
use tokio::sync::{mpsc, oneshot};
use weft_primitives::Hash;

use crate::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL, topic_score_params};
use crate::handle::{Command, Counters, NetEvent, PeerInfo, PublishOutcome, Validation};
use crate::{EVENT_BACKLOG_MAX, GOSSIP_ENVELOPE_BYTES_MAX, NetError, PENDING_DIALS_MAX};

use crate::PEER_ADDRS_MAX;

#[derive(Default)]
struct PeerState {
    connections: HashMap<ConnectionId, Multiaddr>,
    agent: Option<String>,
    rtt: Option<Duration>,
}

/// Whether the loop goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(crate) struct Driver {
    pub(crate) swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    backlog: VecDeque<NetEvent>,
    /// Peers whose subscription events met a full backlog: each gets one
    /// [`NetEvent::PeerTopics`] once there is room (bounded by the
    /// connected peers).
    stale_topics: HashSet<PeerId>,
    counters: Arc<Counters>,
    peers: HashMap<PeerId, PeerState>,
    listen_addrs: Vec<Multiaddr>,
    pending_dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, NetError>>)>,
    max_transmit_bytes: usize,
    /// Configured announce addresses: when set, the only external addresses.
    announce: Vec<Multiaddr>,
}

impl Driver {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
        counters: Arc<Counters>,
        max_transmit_bytes: usize,
        announce: Vec<Multiaddr>,
    ) -> Driver {
        Driver {
            swarm,
            commands,
            events,
            backlog: VecDeque::new(),
            stale_topics: HashSet::new(),
            counters,
            peers: HashMap::new(),
            listen_addrs: Vec::new(),
            pending_dials: HashMap::new(),
            max_transmit_bytes,
            announce,
        }
    }

    /// Drive the swarm until every listener in `waiting` has an address;
    /// a listener that closes or errors first fails the start.
    pub(crate) async fn wait_listening(
        &mut self,
        mut waiting: HashMap<ListenerId, Multiaddr>,
        bound: Duration,
    ) -> Result<(), NetError> {
        let deadline = tokio::time::Instant::now() + bound;
        while !waiting.is_empty() {
            let event = match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(event) => event,
                Err(_) => {
                    let addr = waiting.values().next().map(|a| a.to_string()).unwrap_or_default();
                    return Err(NetError::Listen { addr, reason: format!("no address after {bound:?}") });
                }
            };
            match &event {
                SwarmEvent::NewListenAddr { listener_id, .. } => {
                    waiting.remove(listener_id);
                }
                SwarmEvent::ListenerClosed { listener_id, reason, .. } if waiting.contains_key(listener_id) => {
                    let addr = waiting.get(listener_id).map(|a| a.to_string()).unwrap_or_default();
                    let reason = match reason {
                        Err(e) => e.to_string(),
                        Ok(()) => "listener closed".into(),
                    };
                    return Err(NetError::Listen { addr, reason });
                }
                SwarmEvent::ListenerError { listener_id, error } if waiting.contains_key(listener_id) => {
                    let addr = waiting.get(listener_id).map(|a| a.to_string()).unwrap_or_default();
                    return Err(NetError::Listen { addr, reason: error.to_string() });
                }
                _ => {}
            }
            self.on_swarm_event(event);
        }
        Ok(())
    }

    /// The task body: runs until shutdown or until every handle is gone.
    pub(crate) async fn run(mut self) {
        // A second sender, so a pending reservation does not borrow `self`.
        let events = self.events.clone();
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => if self.on_command(command) == Flow::Stop { break },
                    None => break,
                },
                permit = events.reserve(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.backlog.pop_front() {
                            permit.send(event);
                        }
                        self.drain_backlog();
                        self.queue_stale_topics();
                    }
                    // Nobody listens any more: nothing to keep.
                    Err(_) => {
                        self.backlog.clear();
                        self.stale_topics.clear();
                    }
                },
            }
        }
    }

    fn drain_backlog(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            if let Err(e) = self.events.try_send(event) {
                match e {
                    mpsc::error::TrySendError::Full(event) => self.backlog.push_front(event),
                    mpsc::error::TrySendError::Closed(_) => self.backlog.clear(),
                }
                return;
            }
        }
    }

    /// While the backlog has room, queue the current topics of each peer
    /// whose subscription events were coalesced. Taken now, after every
    /// event already queued, so applying it last leaves the consumer with
    /// gossipsub's view of the peer.
    fn queue_stale_topics(&mut self) {
        while self.backlog.len() < EVENT_BACKLOG_MAX {
            let Some(peer) = self.stale_topics.iter().next().copied() else { return };
            self.stale_topics.remove(&peer);
            let topics = self
                .swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .find(|(p, _)| **p == peer)
                .map(|(_, topics)| topics.into_iter().map(|t| t.as_str().to_owned()).collect())
                .unwrap_or_default();
            self.backlog.push_back(NetEvent::PeerTopics { peer, topics });
        }
    }

    /// Queue `event` for the consumer; false if it had to be dropped.
    ///
    /// Over [`EVENT_BACKLOG_MAX`] queued, a gossip message is dropped (the
    /// sender is not penalized; another route or anti-entropy brings it),
    /// a subscription change is coalesced into a later
    /// [`NetEvent::PeerTopics`] (a lost one would leave a context without
    /// its sync peer for the whole connection), and a connection event is
    /// queued anyway: those come at most a few per connection.
    fn emit(&mut self, event: NetEvent) -> bool {
        let event = match self.backlog.is_empty() {
            true => match self.events.try_send(event) {
                Ok(()) => return true,
                // No consumer: the event is moot, not a loss to count.
                Err(mpsc::error::TrySendError::Closed(_)) => return true,
                Err(mpsc::error::TrySendError::Full(event)) => event,
            },
            false => event,
        };
        match event {
            NetEvent::Subscribed { peer, .. } | NetEvent::Unsubscribed { peer, .. }
                if self.backlog.len() >= EVENT_BACKLOG_MAX || self.stale_topics.contains(&peer) =>
            {
                // Once stale, later changes of the peer ride on the snapshot too.
                self.stale_topics.insert(peer);
                self.counters.subscription_events_coalesced.fetch_add(1, Ordering::Relaxed);
                true
            }
            NetEvent::Message { .. } if self.backlog.len() >= EVENT_BACKLOG_MAX => {
                self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            event => {
                self.backlog.push_back(event);
                true
            }
        }
    }

    fn on_command(&mut self, command: Command) -> Flow {
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        match command {
            Command::Subscribe { topic, reply } => {
                let ident = IdentTopic::new(topic.clone());
                let result = gossip
                    .subscribe(&ident)
                    .map_err(|e| NetError::Subscribe { topic: topic.clone(), reason: e.to_string() })
                    .and_then(|fresh| {
                        // Scoring must know the topic for rejections to count.
                        gossip
                            .set_topic_params(ident, topic_score_params())
                            .map_err(|e| NetError::Subscribe { topic, reason: e.to_string() })?;
                        Ok(fresh)
                    });
                let _ = reply.send(result);
            }
            Command::Unsubscribe { topic, reply } => {
                let _ = reply.send(gossip.unsubscribe(&IdentTopic::new(topic)));
            }
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::ReportValidation { msg_id, source, validation, reply } => {
                let acceptance = match validation {
                    Validation::Accept => MessageAcceptance::Accept,
                    Validation::Reject => MessageAcceptance::Reject,
                    Validation::Ignore => MessageAcceptance::Ignore,
                };
                let found =
                    gossip.report_message_validation_result(&MessageId::new(msg_id.as_bytes()), &source, acceptance);
                let _ = reply.send(found);
            }
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::DialPeer { peer, addrs, reply } => {
                let _ = reply.send(self.dial_peer(peer, addrs));
            }
            Command::AdvertisedAddrs { reply } => {
                let addrs = match self.announce.is_empty() {
                    true => self.listen_addrs.clone(),
                    false => self.announce.clone(),
                };
                let _ = reply.send(addrs);
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::MeshPeers { topic, reply } => {
                let peers = gossip.mesh_peers(&TopicHash::from_raw(topic)).copied().collect();
                let _ = reply.send(peers);
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(gossip.peer_score(&peer));
            }
            Command::Disconnect { peer, reply } => {
                // Err only means "not connected"; ConnectionClosed events
                // update the peer table and report PeerDisconnected.
                let _ = reply.send(self.swarm.disconnect_peer_id(peer).is_ok());
            }
            Command::Shutdown { reply } => {
                let _ = reply.send(());
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<PublishOutcome, NetError> {
        // Leave room for the envelope (topic, framing) so the receiver's limit, which
        // covers the whole RPC, accepts what we send.
        let max = self.max_transmit_bytes.saturating_sub(GOSSIP_ENVELOPE_BYTES_MAX);
        let len = data.len();
        if len > max {
            return Err(NetError::MessageTooLarge { len, max });
        }
        let msg_id = crate::message_id(&data);
        match self.swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(topic), data) {
            Ok(_) => Ok(PublishOutcome::Sent(msg_id)),
            Err(PublishError::NoPeersSubscribedToTopic) => Ok(PublishOutcome::NoPeers(msg_id)),
            Err(PublishError::Duplicate) => Ok(PublishOutcome::Duplicate(msg_id)),
            Err(PublishError::AllQueuesFull(_)) => Ok(PublishOutcome::QueuesFull(msg_id)),
            Err(PublishError::MessageTooLarge) => Err(NetError::MessageTooLarge { len, max }),
            Err(other) => Err(NetError::Publish(other.to_string())),
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NetError>>) {
        if let Some(peer) = crate::peer_of_addr(&addr)
            && self.peers.contains_key(&peer)
        {
            let _ = reply.send(Ok(peer));
            return;
        }
        if self.pending_dials.len() >= PENDING_DIALS_MAX {
            let _ = reply.send(Err(NetError::TooManyDials { max: PENDING_DIALS_MAX }));
            return;
        }
        // The address may name the peer (`…/p2p/<id>`); the swarm then checks
        // that whoever answers is that peer.
        let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
        let connection = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dials.insert(connection, (addr, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Dial { addr: addr.to_string(), reason: e.to_string() }));
            }
        }
    }

    fn dial_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<bool, NetError> {
        if peer == *self.swarm.local_peer_id() || self.peers.contains_key(&peer) {
            return Ok(false);
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs.into_iter().take(PEER_ADDRS_MAX).collect())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => Ok(true),
            Err(DialError::DialPeerConditionFalse(_)) => Ok(false),
            Err(e) => Err(NetError::Dial { addr: peer.to_string(), reason: e.to_string() }),
        }
    }

    fn peer_infos(&mut self) -> Vec<PeerInfo> {
        let mut topics: HashMap<PeerId, Vec<String>> = HashMap::new();
        for (peer, peer_topics) in self.swarm.behaviour().gossipsub.all_peers() {
            topics.insert(*peer, peer_topics.into_iter().map(|t| t.as_str().to_owned()).collect());
        }
        self.peers
            .iter()
            .map(|(peer, state)| PeerInfo {
                peer: *peer,
                addrs: state.connections.values().cloned().collect(),
                agent: state.agent.clone(),
                rtt: state.rtt,
                topics: topics.remove(peer).unwrap_or_default(),
            })
            .collect()
    }

    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                self.peers.entry(peer_id).or_default().connections.insert(connection_id, addr.clone());
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if num_established.get() == 1 {
                    self.emit(NetEvent::PeerConnected { peer: peer_id, addr, outbound: endpoint.is_dialer() });
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connections.remove(&connection_id);
                }
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    self.emit(NetEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some((addr, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial { addr: addr.to_string(), reason: error.to_string() }));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address.clone());
                }
                self.emit(NetEvent::ListenAddr(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => self.listen_addrs.retain(|a| a != &address),
            // With announce addresses configured, an address AutoNAT or a
            // peer's observation confirms (e.g. the port behind the proxy)
            // must not be announced: peers would bypass what stands in front.
            SwarmEvent::ExternalAddrConfirmed { address }
                if !self.announce.is_empty() && !self.announce.contains(&address) =>
            {
                self.swarm.remove_external_address(&address);
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.on_gossip_event(event),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let listen_addrs: Vec<Multiaddr> = info.listen_addrs.into_iter().take(PEER_ADDRS_MAX).collect();
                let kad_protocol = libp2p::StreamProtocol::new(KAD_PROTOCOL);
                if info.protocols.contains(&kad_protocol)
                    && let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
                {
                    for addr in &listen_addrs {
                        kad.add_address(&peer_id, addr.clone());
                    }
                }
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version);
                }
                self.emit(NetEvent::PeerIdentified { peer: peer_id, listen_addrs });
            }
            BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. }) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.rtt = Some(rtt);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                let mut dialed = HashSet::new();
                for (peer, addr) in found.into_iter().take(PEER_ADDRS_MAX) {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.add_address(&peer, addr.clone());
                    }
                    if !self.peers.contains_key(&peer) && dialed.insert(peer) {
                        // Best effort: a failed dial is retried at the next announcement.
                        let _ = self.swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            // Kademlia routing updates, identify pushes, DCUtR, AutoNAT, relay
            // reservations and the stream behaviour need no reaction here.
            _ => {}
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { propagation_source, message_id, message } => {
                let msg_id = hash_of_id(&message_id).unwrap_or_else(|| crate::message_id(&message.data));
                let event = NetEvent::Message {
                    topic: message.topic.into_string(),
                    data: message.data,
                    msg_id,
                    propagation_source,
                };
                if !self.emit(event) {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.emit(NetEvent::Subscribed { peer: peer_id, topic: topic.into_string() });
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                self.emit(NetEvent::Unsubscribed { peer: peer_id, topic: topic.into_string() });
            }
            _ => {}
        }
    }
}

fn hash_of_id(id: &MessageId) -> Option<Hash> {
    <[u8; 32]>::try_from(id.0.as_slice()).ok().map(Hash)
}
