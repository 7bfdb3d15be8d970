//! A lossless, instantaneous harness for a few replicas: tests decide what
//! is delivered; stream messages are routed until the network is quiet.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use weft_dag::DeltaId;
use weft_primitives::{Hash, SigningKey};
use weft_state::root_id;
use weft_sync::{
    Config, Event, Input, MembershipChange, MemoryStore, Output, PeerId, Replica, ReplicaParams, ReplicaStore,
};

pub const START_MS: u64 = 1_700_000_000_000;

pub fn peer(i: usize) -> PeerId {
    PeerId([i as u8 + 1; 32])
}

pub fn index(peer: &PeerId) -> usize {
    usize::from(peer.0[0]) - 1
}

pub fn key(i: usize) -> SigningKey {
    SigningKey::from_seed([i as u8 + 100; 32])
}

/// The context every test replica belongs to.
pub fn context() -> Hash {
    Hash::of(b"test context")
}

pub fn params<S: ReplicaStore>(i: usize, members: usize, config: Config, store: S) -> ReplicaParams<S> {
    ReplicaParams {
        context: context(),
        genesis: Hash::of(b"test genesis"),
        local_peer: peer(i),
        identity: key(i),
        members: (0..members).map(|m| key(m).public_key()).collect(),
        config,
        rng_seed: i as u64,
        store,
    }
}

/// What crossed the wire while routing.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Every output, with the replica that produced it.
    pub outputs: Vec<(usize, Output)>,
    /// Stream messages delivered.
    pub messages: usize,
    /// Stream bytes delivered (frame prefix included).
    pub bytes: usize,
}

pub struct Cluster {
    pub replicas: Vec<Replica<MemoryStore>>,
    pub now: u64,
}

impl Cluster {
    /// `n` replicas, all members, not yet connected to each other.
    pub fn new(n: usize, config: Config) -> Cluster {
        let replicas =
            (0..n).map(|i| Replica::new(params(i, n, config.clone(), MemoryStore::new()), START_MS).unwrap()).collect();
        Cluster { replicas, now: START_MS }
    }

    /// `n` replicas of which the first `members` are the initial members,
    /// not yet connected to each other.
    pub fn with_members(n: usize, members: usize, config: Config) -> Cluster {
        let replicas = (0..n)
            .map(|i| Replica::new(params(i, members, config.clone(), MemoryStore::new()), START_MS).unwrap())
            .collect();
        Cluster { replicas, now: START_MS }
    }

    /// A local write at `i` of `events` only (no actions): the outputs of
    /// the commit, and the published delta if it was committed.
    pub fn write_events(&mut self, i: usize, events: Vec<Event>) -> (Vec<Output>, Option<(DeltaId, Vec<u8>)>) {
        self.now += 1;
        let write = self.replicas[i].prepare_write(self.now, self.now, |_| Ok(events)).unwrap();
        let outputs = self.replicas[i].handle(Input::LocalWrite(write), self.now);
        let published = outputs.iter().find_map(|o| match o {
            Output::Publish { id, bytes } => Some((*id, bytes.clone())),
            _ => None,
        });
        (outputs, published)
    }

    /// A committed membership change at `i`; returns its delta id and bytes.
    pub fn change(&mut self, i: usize, change: MembershipChange) -> (DeltaId, Vec<u8>) {
        let (outputs, published) = self.write_events(i, vec![Event::membership(change)]);
        published.unwrap_or_else(|| panic!("membership change refused: {outputs:?}"))
    }

    /// `n` replicas, all connected; the sessions connecting opens are run
    /// to completion.
    pub fn connected(n: usize, config: Config) -> Cluster {
        let mut cluster = Cluster::new(n, config);
        for i in 0..n {
            cluster.connect(i);
        }
        cluster
    }

    /// Tell `i` that every other replica is connected, routing what follows.
    pub fn connect(&mut self, i: usize) -> Traffic {
        let mut traffic = Traffic::default();
        for j in 0..self.replicas.len() {
            if i != j {
                let outputs = self.replicas[i].handle(Input::PeerUp { peer: peer(j) }, self.now);
                self.route(i, outputs, &mut traffic);
            }
        }
        traffic
    }

    /// A local write at `i` of `key = value`; returns the delta id and its
    /// published bytes (not delivered anywhere).
    pub fn write(&mut self, i: usize, key: &[u8], value: &[u8]) -> (DeltaId, Vec<u8>) {
        self.now += 1;
        let token = self.now;
        let write = self.replicas[i]
            .prepare_write(token, self.now, |txn| {
                txn.map_insert(root_id(), key, value)?;
                Ok(Vec::new())
            })
            .unwrap();
        let outputs = self.replicas[i].handle(Input::LocalWrite(write), self.now);
        let mut published = None;
        for output in outputs {
            match output {
                Output::Publish { id, bytes } => published = Some((id, bytes)),
                Output::WriteCommitted { token: t, .. } => assert_eq!(t, token),
                Output::WriteRejected { reason, .. } => panic!("write refused: {reason}"),
                _ => {}
            }
        }
        published.expect("a committed write is published")
    }

    /// Feed `input` to `i` and route every stream message until quiet.
    pub fn input(&mut self, i: usize, input: Input) -> Traffic {
        let mut traffic = Traffic::default();
        let outputs = self.replicas[i].handle(input, self.now);
        self.route(i, outputs, &mut traffic);
        traffic
    }

    /// Deliver gossip `bytes` from `from` to `to`, then route until quiet.
    pub fn gossip(&mut self, from: usize, to: usize, bytes: &[u8]) -> Traffic {
        self.input(to, Input::GossipReceived { from: peer(from), message: 0, bytes: bytes.to_vec() })
    }

    fn route(&mut self, from: usize, outputs: Vec<Output>, traffic: &mut Traffic) {
        let mut queue: std::collections::VecDeque<(usize, Output)> = outputs.into_iter().map(|o| (from, o)).collect();
        let mut steps = 0;
        while let Some((sender, output)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 1_000_000, "routing does not terminate");
            if let Output::Send { to, session, bytes } = &output {
                let to = index(to);
                if to < self.replicas.len() {
                    traffic.messages += 1;
                    traffic.bytes += bytes.len() + 4;
                    let input = Input::StreamMessage { from: peer(sender), session: *session, bytes: bytes.clone() };
                    let more = self.replicas[to].handle(input, self.now);
                    queue.extend(more.into_iter().map(|o| (to, o)));
                }
            }
            traffic.outputs.push((sender, output));
        }
    }

    /// Advance time by `ms` and tick everyone, routing until quiet.
    pub fn advance(&mut self, ms: u64) -> Traffic {
        self.now += ms;
        let mut traffic = Traffic::default();
        for i in 0..self.replicas.len() {
            let outputs = self.replicas[i].handle(Input::Tick, self.now);
            self.route(i, outputs, &mut traffic);
        }
        traffic
    }

    pub fn same(&self, a: usize, b: usize) -> bool {
        self.replicas[a].heads() == self.replicas[b].heads()
            && self.replicas[a].root_hash() == self.replicas[b].root_hash()
    }
}

impl Traffic {
    pub fn penalties(&self) -> Vec<&Output> {
        self.outputs.iter().map(|(_, o)| o).filter(|o| matches!(o, Output::Penalize { .. })).collect()
    }

    pub fn sent_by(&self, i: usize) -> Vec<&Output> {
        self.outputs.iter().filter(|(s, _)| *s == i).map(|(_, o)| o).collect()
    }

    /// The decoded stream messages replica `i` sent.
    pub fn messages_from(&self, i: usize) -> Vec<weft_sync::protocol::SyncMessage> {
        self.sent_by(i)
            .into_iter()
            .filter_map(|o| match o {
                Output::Send { bytes, .. } => weft_sync::protocol::SyncMessage::decode(bytes).ok(),
                _ => None,
            })
            .collect()
    }

    /// Every `Applied` delta output by replica `i`.
    pub fn applied_by(&self, i: usize) -> Vec<weft_sync::AppliedDelta> {
        self.sent_by(i)
            .into_iter()
            .filter_map(|o| match o {
                Output::Applied { deltas } => Some(deltas.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// A random causal order of `deltas` (each after its parents among them):
/// at each step a ready delta picked by `pick(ready count)`.
pub fn causal_order_by(deltas: &[(DeltaId, Vec<u8>)], mut pick: impl FnMut(usize) -> usize) -> Vec<usize> {
    let parents: Vec<Vec<DeltaId>> =
        deltas.iter().map(|(_, b)| weft_sync::SignedDelta::decode(b).unwrap().parents).collect();
    let index: std::collections::BTreeMap<DeltaId, usize> =
        deltas.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    let mut placed = vec![false; deltas.len()];
    let mut order = Vec::new();
    while order.len() < deltas.len() {
        let ready: Vec<usize> = (0..deltas.len())
            .filter(|i| !placed[*i])
            .filter(|i| parents[*i].iter().all(|p| index.get(p).is_none_or(|j| placed[*j])))
            .collect();
        let chosen = ready[pick(ready.len())];
        placed[chosen] = true;
        order.push(chosen);
    }
    order
}
