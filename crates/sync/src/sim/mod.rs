//! A deterministic simulator of N replicas on a faulty network (feature
//! `sim`).
//!
//! Everything runs on one thread in simulated time: a priority queue of
//! deliveries and timers ordered by `(time, sequence)`, a [`Network`] that
//! decides loss, duplication, delay and partitions with a [`SeededRng`], and
//! replicas over [`MemoryStore`]s. A crash drops the replica (memory lost)
//! and keeps its store; a restart rebuilds a replica from that store. The
//! same seed and the same calls give the same run, bit for bit:
//! [`Sim::trace_hash`] hashes every input delivered and every output
//! produced, so two runs can be compared.
//!
//! Oracles live in `oracle.rs` ([`Sim::check`]); the docs/testing.md S1 scenario
//! and the catch-up measurement in `scenario.rs`; membership changes and the
//! joiners scenario in `membership.rs`.

mod membership;
mod network;
mod oracle;
mod scenario;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use weft_primitives::{Hash, PublicKey, SigningKey};
use weft_state::{CrdtKind, StateError, StorageKind, root_id};

pub use membership::{JoinsConfig, JoinsReport, run_joins};
pub use network::Network;
pub use oracle::{AckedWrite, Ledger, OracleReport};
pub use scenario::{CatchUp, CatchUpRun, S1Config, S1Report, measure_catch_up, prepare_catch_up, run_s1};

use crate::config::Config;
use crate::delta::Event;
use crate::replica::{Input, Offense, Output, PeerId, Replica, ReplicaParams};
use crate::seeded_rng::SeededRng;
use crate::store::MemoryStore;
use network::StreamRoute;

/// Stream ordering state older than this is forgotten (no session lives
/// longer than the sync timeout).
const STREAM_STATE_HORIZON_MS: u64 = 120_000;

/// Offenses and divergences kept verbatim for the failure report.
const INCIDENTS_KEPT_MAX: usize = 16;

/// What a simulation is made of.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of replicas.
    pub nodes: usize,
    /// The seed of every random choice (network and replicas).
    pub seed: u64,
    /// The replicas' tunables.
    pub replica: Config,
    /// Simulated start time (wall clock of the run's first instant).
    pub start_ms: u64,
    /// The context's initial members: the first this-many nodes. The others
    /// can join by a member's `Add` ([`Sim::change_membership`]).
    pub initial_members: usize,
}

impl SimConfig {
    /// `nodes` replicas with default tunables.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig { nodes, seed, replica: Config::default(), start_ms: 1_700_000_000_000, initial_members: nodes }
    }
}

/// Counters over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Stream messages sent (before loss).
    pub stream_messages: u64,
    /// Bytes of stream messages sent, each with its 4-byte frame prefix.
    pub stream_bytes: u64,
    /// Stream bytes per `(sender, receiver)`.
    pub stream_bytes_by_link: BTreeMap<(usize, usize), u64>,
    /// Stream messages per `(sender, receiver)`.
    pub stream_messages_by_link: BTreeMap<(usize, usize), u64>,
    /// Gossip copies sent (one per peer, before loss).
    pub gossip_messages: u64,
    /// Bytes of gossip copies sent.
    pub gossip_bytes: u64,
    /// Deltas applied across all replicas.
    pub applied: u64,
    /// `Penalize` outputs (an honest run has none).
    pub penalties: u64,
    /// `Diverged` outputs (must be none).
    pub divergences: u64,
    /// `SnapshotNeeded` outputs.
    pub snapshots_needed: u64,
    /// Local writes refused.
    pub writes_refused: u64,
    /// Crashes and restarts.
    pub crashes: u64,
    /// `MembersChanged` outputs, across all replicas.
    pub membership_changes: u64,
    /// First offenses and divergences, for the report.
    pub incidents: Vec<String>,
}

enum NodeState {
    Up(Box<Replica<MemoryStore>>),
    Down(MemoryStore),
    /// Transient, while switching states.
    Gone,
}

struct SimNode {
    key: SigningKey,
    state: NodeState,
    incarnation: u64,
}

#[derive(Debug)]
struct Delivery {
    /// The sending node (`None` for connection events): a delivery across a
    /// link that is cut by then is dropped.
    from: Option<usize>,
    to: usize,
    input: Input,
}

#[derive(Debug)]
enum SimEvent {
    Deliver(Delivery),
    Timer { node: usize, at_ms: u64 },
}

/// The simulator. See the module doc.
pub struct Sim {
    /// The network and its verbs.
    pub net: Network,
    config: SimConfig,
    now_ms: u64,
    rng: SeededRng,
    nodes: Vec<SimNode>,
    members: Vec<PublicKey>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, SimEvent>,
    next_seq: u64,
    timer_at: Vec<Option<u64>>,
    trace: blake3::Hasher,
    /// Acknowledged writes.
    pub ledger: Ledger,
    /// Counters.
    pub counters: SimCounters,
    next_token: u64,
    next_message: u64,
}

/// The peer id of node `index`.
pub fn peer_of(index: usize) -> PeerId {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&(index as u64).to_le_bytes());
    PeerId(bytes)
}

fn index_of(peer: &PeerId) -> usize {
    let mut word = [0u8; 8];
    word.copy_from_slice(&peer.0[..8]);
    u64::from_le_bytes(word) as usize
}

/// The key of the ledger entry of write `token`.
pub fn ledger_key(token: u64) -> Vec<u8> {
    format!("op/{token:010}").into_bytes()
}

impl Sim {
    /// `config.nodes` fresh replicas, all connected.
    pub fn new(config: SimConfig) -> Sim {
        let mut rng = SeededRng::new(config.seed);
        let nodes: Vec<SimNode> = (0..config.nodes)
            .map(|_| {
                let mut seed = [0u8; 32];
                seed.iter_mut().for_each(|byte| *byte = rng.next_u64() as u8);
                SimNode { key: SigningKey::from_seed(seed), state: NodeState::Down(MemoryStore::new()), incarnation: 0 }
            })
            .collect();
        let members = nodes.iter().take(config.initial_members).map(|node| node.key.public_key()).collect();
        let mut sim = Sim {
            net: Network::new(config.nodes),
            now_ms: config.start_ms,
            rng,
            nodes,
            members,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            next_seq: 0,
            timer_at: vec![None; config.nodes],
            trace: blake3::Hasher::new(),
            ledger: Ledger::default(),
            counters: SimCounters::default(),
            next_token: 0,
            next_message: 0,
            config,
        };
        for node in 0..sim.nodes.len() {
            sim.start(node);
        }
        sim
    }

    /// The current simulated time.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The replica of `node`, if it is up.
    pub fn replica(&self, node: usize) -> Option<&Replica<MemoryStore>> {
        match self.nodes.get(node).map(|n| &n.state) {
            Some(NodeState::Up(replica)) => Some(replica),
            _ => None,
        }
    }

    /// Whether `node` is up.
    pub fn is_up(&self, node: usize) -> bool {
        self.replica(node).is_some()
    }

    /// The hash of everything delivered and produced so far.
    pub fn trace_hash(&self) -> Hash {
        Hash(*self.trace.clone().finalize().as_bytes())
    }

    /// Process every event up to `until_ms`; the clock ends at `until_ms`.
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some(Reverse((at_ms, seq))) = self.queue.peek().copied() {
            if at_ms > until_ms {
                break;
            }
            self.queue.pop();
            self.now_ms = self.now_ms.max(at_ms);
            if let Some(event) = self.events.remove(&seq) {
                self.process(event);
            }
        }
        self.now_ms = self.now_ms.max(until_ms);
        self.net.forget_streams_before(self.now_ms, STREAM_STATE_HORIZON_MS);
    }

    /// A client write at `node`: a ledger entry plus some contended
    /// updates. Returns its token if the write was acknowledged.
    pub fn write(&mut self, node: usize) -> Option<u64> {
        let token = self.next_token;
        self.next_token += 1;
        let shape = self.rng.next_u64();
        let now = self.now_ms;
        let Some(NodeState::Up(replica)) = self.nodes.get(node).map(|n| &n.state) else { return None };
        let prepared = replica.prepare_write(token, now, |txn| {
            txn.map_insert(root_id(), &ledger_key(token), &token.to_le_bytes())?;
            match shape % 4 {
                // Update vs delete on a small shared key space.
                0 => {
                    let shared = txn.create(root_id(), b"shared", CrdtKind::Map, StorageKind::Public)?;
                    let key = [(shape >> 8) as u8 % 8];
                    if shape & 0x10000 == 0 {
                        txn.map_insert(shared, &key, &token.to_le_bytes())?;
                    } else {
                        txn.map_remove(shared, &key)?;
                    }
                }
                1 => {
                    let counter = txn.create(root_id(), b"hits", CrdtKind::PnCounter, StorageKind::Public)?;
                    txn.counter_add(counter, (shape >> 8) as i64 % 7 - 3)?;
                }
                _ => {}
            }
            Ok::<_, StateError>(vec![Event {
                kind: "Wrote".into(),
                data: token.to_le_bytes().to_vec(),
                handler: Some("on_wrote".into()),
            }])
        });
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(_) => {
                self.counters.writes_refused += 1;
                return None;
            }
        };
        self.deliver(Delivery { from: None, to: node, input: Input::LocalWrite(prepared) });
        self.ledger.acked.last().filter(|write| write.token == token).map(|write| write.token)
    }

    /// Crash `node`: its replica (memory) is lost, its store is kept.
    pub fn crash(&mut self, node: usize) {
        let Some(slot) = self.nodes.get_mut(node) else { return };
        let NodeState::Up(replica) = std::mem::replace(&mut slot.state, NodeState::Gone) else {
            if let NodeState::Gone = slot.state {
                slot.state = NodeState::Down(MemoryStore::new());
            }
            return;
        };
        slot.state = NodeState::Down(replica.into_store());
        self.timer_at[node] = None;
        self.counters.crashes += 1;
        self.trace.update(&[0xc0]).update(&(node as u64).to_le_bytes()).update(&self.now_ms.to_le_bytes());
        for other in 0..self.nodes.len() {
            if other != node && self.is_up(other) && self.net.connected(node, other) {
                self.connection_event(other, node, false);
            }
        }
    }

    /// Restart `node` from its store.
    pub fn restart(&mut self, node: usize) {
        if self.is_up(node) {
            return;
        }
        self.start(node);
    }

    /// Split the nodes into `groups` (see [`Network::partition`]); cut
    /// connections are reported to both ends.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        for (a, b) in self.net.partition(groups) {
            self.connection_event(a, b, false);
            self.connection_event(b, a, false);
        }
    }

    /// Reconnect everyone; new connections are reported to both ends.
    pub fn heal(&mut self) {
        for (a, b) in self.net.heal() {
            self.connection_event(a, b, true);
            self.connection_event(b, a, true);
        }
    }

    fn start(&mut self, node: usize) {
        let Some(slot) = self.nodes.get_mut(node) else { return };
        let store = match std::mem::replace(&mut slot.state, NodeState::Gone) {
            NodeState::Down(store) => store,
            other => {
                slot.state = other;
                return;
            }
        };
        slot.incarnation += 1;
        let params = ReplicaParams {
            context: Hash::of(b"weft sim context"),
            genesis: Hash::of(b"weft sim genesis"),
            local_peer: peer_of(node),
            identity: slot.key.clone(),
            members: self.members.clone(),
            config: self.config.replica.clone(),
            rng_seed: self.config.seed ^ ((node as u64) << 32) ^ slot.incarnation,
            store,
        };
        match Replica::new(params, self.now_ms) {
            Ok(replica) => slot.state = NodeState::Up(Box::new(replica)),
            Err(error) => {
                // A store the replica cannot restore from is a bug; keep the
                // node down and make the run fail loudly.
                self.counters.incidents.push(format!("node {node} failed to restart: {error}"));
                self.counters.divergences += 1;
                slot.state = NodeState::Down(MemoryStore::new());
                return;
            }
        }
        self.trace.update(&[0xc1]).update(&(node as u64).to_le_bytes()).update(&self.now_ms.to_le_bytes());
        self.refresh_timer(node);
        for other in 0..self.nodes.len() {
            if other != node && self.is_up(other) && self.net.connected(node, other) {
                self.connection_event(node, other, true);
                self.connection_event(other, node, true);
            }
        }
    }

    /// Tell `node` that `peer` connected or disconnected (now).
    fn connection_event(&mut self, node: usize, peer: usize, up: bool) {
        let peer = peer_of(peer);
        let input = if up { Input::PeerUp { peer } } else { Input::PeerDown { peer } };
        self.schedule(self.now_ms, SimEvent::Deliver(Delivery { from: None, to: node, input }));
    }

    fn schedule(&mut self, at_ms: u64, event: SimEvent) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse((at_ms, seq)));
        self.events.insert(seq, event);
    }

    fn process(&mut self, event: SimEvent) {
        match event {
            SimEvent::Timer { node, at_ms } => {
                if self.timer_at[node] == Some(at_ms) {
                    self.timer_at[node] = None;
                    self.deliver(Delivery { from: None, to: node, input: Input::Tick });
                }
            }
            SimEvent::Deliver(delivery) => {
                if let Some(from) = delivery.from
                    && !self.net.connected(from, delivery.to)
                {
                    return;
                }
                self.deliver(delivery);
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Delivery { to, input, .. } = delivery;
        let now = self.now_ms;
        trace_input(&mut self.trace, now, to, &input);
        let Some(NodeState::Up(replica)) = self.nodes.get_mut(to).map(|n| &mut n.state) else { return };
        let outputs = replica.handle(input, now);
        for output in outputs {
            self.dispatch(to, output);
        }
        self.refresh_timer(to);
    }

    fn refresh_timer(&mut self, node: usize) {
        let Some(replica) = self.replica(node) else { return };
        let at_ms = replica.next_timer_ms().max(self.now_ms);
        if self.timer_at[node] != Some(at_ms) {
            self.timer_at[node] = Some(at_ms);
            self.schedule(at_ms, SimEvent::Timer { node, at_ms });
        }
    }

    fn dispatch(&mut self, from: usize, output: Output) {
        trace_output(&mut self.trace, &output);
        let now = self.now_ms;
        match output {
            Output::Publish { bytes, .. } => {
                for to in 0..self.nodes.len() {
                    if to == from {
                        continue;
                    }
                    self.counters.gossip_messages += 1;
                    self.counters.gossip_bytes += bytes.len() as u64;
                    for at_ms in self.net.route_gossip(&mut self.rng, from, to, now) {
                        let message = self.next_message;
                        self.next_message += 1;
                        let input = Input::GossipReceived { from: peer_of(from), message, bytes: bytes.clone() };
                        self.schedule(at_ms, SimEvent::Deliver(Delivery { from: Some(from), to, input }));
                    }
                }
            }
            Output::Send { to, session, bytes } => {
                let to = index_of(&to);
                self.counters.stream_messages += 1;
                self.counters.stream_bytes += bytes.len() as u64 + 4;
                *self.counters.stream_bytes_by_link.entry((from, to)).or_default() += bytes.len() as u64 + 4;
                *self.counters.stream_messages_by_link.entry((from, to)).or_default() += 1;
                match self.net.route_stream(&mut self.rng, from, to, session, now) {
                    StreamRoute::Deliver(times) => {
                        for at_ms in times {
                            let input = Input::StreamMessage { from: peer_of(from), session, bytes: bytes.clone() };
                            self.schedule(at_ms, SimEvent::Deliver(Delivery { from: Some(from), to, input }));
                        }
                    }
                    StreamRoute::Break(at_ms) => {
                        for (node, peer) in [(to, from), (from, to)] {
                            let input = Input::StreamClosed { peer: peer_of(peer), session };
                            self.schedule(at_ms, SimEvent::Deliver(Delivery { from: None, to: node, input }));
                        }
                    }
                    StreamRoute::Drop => {}
                }
            }
            Output::Penalize { peer, offense } => {
                self.counters.penalties += 1;
                self.incident(format!("node {from} penalized node {}: {}", index_of(&peer), describe(&offense)));
            }
            Output::Diverged { peer, ours, theirs, ours_recomputed, .. } => {
                self.counters.divergences += 1;
                self.incident(format!(
                    "node {from} diverged from node {}: ours {ours:?} (recomputed {ours_recomputed:?}), theirs {theirs:?}",
                    index_of(&peer)
                ));
            }
            Output::WriteCommitted { token, id } => {
                self.ledger.acked.push(AckedWrite { token, node: from, id, at_ms: now });
            }
            Output::WriteRejected { .. } => self.counters.writes_refused += 1,
            Output::SnapshotNeeded { .. } => self.counters.snapshots_needed += 1,
            Output::Applied { deltas } => self.counters.applied += deltas.len() as u64,
            Output::MembersChanged { .. } => self.counters.membership_changes += 1,
            Output::GossipVerdict { .. } | Output::CloseSession { .. } | Output::InSync { .. } => {}
        }
    }

    fn incident(&mut self, text: String) {
        if self.counters.incidents.len() < INCIDENTS_KEPT_MAX {
            self.counters.incidents.push(text);
        }
    }
}

fn describe(offense: &Offense) -> String {
    match offense {
        Offense::BadDelta(rejection) => format!("bad delta: {rejection}"),
        Offense::BadMessage(error) => format!("bad message: {error}"),
    }
}

fn trace_input(trace: &mut blake3::Hasher, now: u64, node: usize, input: &Input) {
    trace.update(&now.to_le_bytes()).update(&(node as u64).to_le_bytes());
    match input {
        Input::LocalWrite(write) => trace.update(&[0]).update(&write.token.to_le_bytes()),
        Input::GossipReceived { from, bytes, .. } => trace.update(&[1]).update(&from.0).update(bytes),
        Input::StreamMessage { from, session, bytes } => {
            trace.update(&[2]).update(&from.0).update(&session.n.to_le_bytes()).update(bytes)
        }
        Input::StreamClosed { peer, session } => trace.update(&[3]).update(&peer.0).update(&session.n.to_le_bytes()),
        Input::Tick => trace.update(&[4]),
        Input::PeerUp { peer } => trace.update(&[5]).update(&peer.0),
        Input::PeerDown { peer } => trace.update(&[6]).update(&peer.0),
        Input::SyncNow { .. } => trace.update(&[7]),
    };
}

fn trace_output(trace: &mut blake3::Hasher, output: &Output) {
    match output {
        Output::Publish { id, .. } => trace.update(&[10]).update(id.as_bytes()),
        Output::Send { to, session, bytes } => {
            trace.update(&[11]).update(&to.0).update(&session.n.to_le_bytes()).update(bytes)
        }
        Output::Applied { deltas } => {
            trace.update(&[12]);
            deltas.iter().for_each(|delta| {
                trace.update(delta.id.as_bytes());
            });
            trace
        }
        Output::WriteCommitted { token, id } => trace.update(&[13]).update(&token.to_le_bytes()).update(id.as_bytes()),
        other => trace.update(format!("{other:?}").as_bytes()),
    };
}
