//! Simulated nodes of one context, for native tests.
//!
//! Each node has its own state (`MemoryKv`), test identity and clock, and an
//! open *scope*: the writes, actions and events of the transaction in
//! progress. A scope becomes a delta when it is flushed (at the end of a
//! `testing::call`, or when a test syncs, switches node or reads events);
//! `sync` delivers every delta to every node that lacks it, merging natively
//! with `weft_state::apply_actions`, as a node does with remote deltas.
//!
//! Guarantees: a node applies deltas in creation order, which is a causal
//! order (every delta is created after the deltas its author had applied);
//! a discarded scope leaves the node's state as it was.

use std::collections::BTreeSet;

use weft_abi::{StateCall, StateReply, StatusCode, Timestamp};
use weft_primitives::kv::{MemoryKv, WriteSet};
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_state::{Action, LayeredKv, StateTxn, apply_actions};

use super::ops;

/// The wall clock every test world starts at (2023-11-14).
pub(crate) const START_WALL_MS: u64 = 1_700_000_000_000;

/// The most nodes one test world simulates.
pub(crate) const NODES_MAX: usize = 64;

/// The most deltas one test world records.
pub(crate) const DELTAS_MAX: usize = 1_000_000;

/// The test context id: the same in every test.
pub(crate) fn test_context_id() -> [u8; 32] {
    Hash::derive("weft sdk test context", &[]).0
}

/// The test identity of node `index`.
pub(crate) fn test_key(index: usize) -> SigningKey {
    SigningKey::from_seed(Hash::derive("weft sdk test identity", &[&(index as u64).to_le_bytes()]).0)
}

/// An event as emitted, data still JSON bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EmittedEvent {
    pub kind: String,
    pub data: Vec<u8>,
    pub handler: Option<String>,
}

/// The transaction a node has open.
#[derive(Default)]
pub(crate) struct Scope {
    pub pending: WriteSet,
    pub actions: Vec<Action>,
    pub events: Vec<EmittedEvent>,
    pub read_only: bool,
    pub input: Vec<u8>,
    pub returned: Option<(u64, Vec<u8>)>,
}

/// One simulated node.
pub(crate) struct Node {
    pub kv: MemoryKv,
    pub key: SigningKey,
    pub next_hlc: Hlc,
    pub applied: BTreeSet<usize>,
    pub scope: Scope,
    /// Events of this node's committed scopes, until a test takes them.
    pub emitted: Vec<EmittedEvent>,
    pub logs: Vec<String>,
}

impl Node {
    fn new(index: usize) -> Node {
        Node {
            kv: MemoryKv::new(),
            key: test_key(index),
            next_hlc: Hlc::default(),
            applied: BTreeSet::new(),
            scope: Scope::default(),
            emitted: Vec::new(),
            logs: Vec::new(),
        }
    }
}

/// A committed scope.
pub(crate) struct Delta {
    pub author_node: usize,
    pub author: PublicKey,
    pub actions: Vec<Action>,
    pub events: Vec<EmittedEvent>,
    pub last_hlc: Option<Hlc>,
}

/// Every node of the test context.
pub(crate) struct World {
    pub nodes: Vec<Node>,
    pub current: usize,
    pub deltas: Vec<Delta>,
    pub context_id: [u8; 32],
    pub wall_ms: u64,
    pub random_counter: u64,
    /// While a handler runs in [`crate::testing::deliver`]: the author of the
    /// delta whose event it handles.
    pub event_author: Option<[u8; 32]>,
}

/// The tick after `hlc`.
fn after(hlc: Hlc) -> Hlc {
    match hlc.counter.checked_add(1) {
        Some(counter) => Hlc::new(hlc.wall_ms, counter),
        None => Hlc::new(hlc.wall_ms.saturating_add(1), 0),
    }
}

impl World {
    /// One node, nothing written.
    pub fn new() -> World {
        World {
            nodes: vec![Node::new(0)],
            current: 0,
            deltas: Vec::new(),
            context_id: test_context_id(),
            wall_ms: START_WALL_MS,
            random_counter: 0,
            event_author: None,
        }
    }

    /// The current node.
    pub fn node(&mut self) -> &mut Node {
        &mut self.nodes[self.current]
    }

    /// Add a node (it has applied nothing yet); returns its index.
    pub fn add_node(&mut self) -> Result<usize, String> {
        if self.nodes.len() >= NODES_MAX {
            return Err(format!("a test world simulates at most {NODES_MAX} nodes"));
        }
        self.nodes.push(Node::new(self.nodes.len()));
        Ok(self.nodes.len() - 1)
    }

    /// The clock reading a call on the current node sees.
    pub fn now(&mut self) -> Hlc {
        let wall = Hlc::new(self.wall_ms, 0);
        let node = self.node();
        node.next_hlc.max(wall)
    }

    /// Run one state call in the current node's open scope.
    pub fn state_call(&mut self, call: StateCall) -> Result<StateReply, (StatusCode, String)> {
        let start = self.now();
        let node = &mut self.nodes[self.current];
        let failed = |error: weft_state::StateError| (ops::status_of(&error), error.to_string());
        if !call.is_write() {
            let layered = LayeredKv::new(&node.kv, &node.scope.pending);
            let mut txn = StateTxn::read_only(&layered);
            return ops::run(&mut txn, call).map_err(failed);
        }
        if node.scope.read_only {
            return Err((StatusCode::ReadOnly, "a view method cannot write".to_owned()));
        }
        let layered = LayeredKv::new(&node.kv, &node.scope.pending);
        let mut txn = StateTxn::new(&layered, Hash(self.context_id), &node.key, start);
        let reply = ops::run(&mut txn, call).map_err(failed)?;
        let commit = txn.commit().map_err(failed)?;
        node.scope.pending.extend(commit.writes);
        node.scope.actions.extend(commit.actions);
        if let Some(last) = commit.last_hlc {
            node.next_hlc = after(last);
        }
        Ok(reply)
    }

    /// Record an event in the current node's open scope.
    pub fn emit(&mut self, event: EmittedEvent) -> Result<(), String> {
        let node = self.node();
        if node.scope.read_only {
            return Err("a view method cannot emit events".to_owned());
        }
        node.scope.events.push(event);
        Ok(())
    }

    /// The current node's clock reading, as the ABI carries it.
    pub fn time_now(&mut self) -> Timestamp {
        let now = self.now();
        Timestamp { wall_ms: now.wall_ms, counter: now.counter }
    }

    /// Deterministic "random" bytes.
    pub fn random_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            self.random_counter += 1;
            let block = Hash::derive("weft sdk test random", &[&self.random_counter.to_le_bytes()]);
            chunk.copy_from_slice(&block.0[..chunk.len()]);
        }
    }

    /// Drop `node`'s open scope: its state is as before the scope began.
    pub fn discard(&mut self, node: usize) {
        self.nodes[node].scope = Scope::default();
    }

    /// Commit `node`'s open scope as a delta, if it wrote or emitted anything.
    pub fn flush(&mut self, node: usize) -> Result<(), String> {
        let scope = std::mem::take(&mut self.nodes[node].scope);
        if scope.actions.is_empty() && scope.events.is_empty() {
            return Ok(());
        }
        if self.deltas.len() >= DELTAS_MAX {
            return Err(format!("a test world records at most {DELTAS_MAX} deltas"));
        }
        let author_node = &mut self.nodes[node];
        author_node.kv.apply(scope.pending);
        author_node.emitted.extend(scope.events.iter().cloned());
        author_node.applied.insert(self.deltas.len());
        let last_hlc = scope.actions.iter().map(|action| action.stamp.hlc).max();
        self.deltas.push(Delta {
            author_node: node,
            author: author_node.key.public_key(),
            actions: scope.actions,
            events: scope.events,
            last_hlc,
        });
        Ok(())
    }

    /// Flush every node, then give every node the deltas it lacks. Returns
    /// the `(node, delta)` pairs applied, in order.
    pub fn sync(&mut self) -> Result<Vec<(usize, usize)>, String> {
        for node in 0..self.nodes.len() {
            self.flush(node)?;
        }
        let mut delivered = Vec::new();
        for (index, node) in self.nodes.iter_mut().enumerate() {
            for (number, delta) in self.deltas.iter().enumerate() {
                if node.applied.contains(&number) {
                    continue;
                }
                let applied = apply_actions(&node.kv, &Hash(self.context_id), &delta.author, &delta.actions)
                    .map_err(|error| format!("node {index} rejected delta {number}: {error}"))?;
                node.kv.apply(applied.writes);
                node.applied.insert(number);
                if let Some(last) = delta.last_hlc {
                    node.next_hlc = node.next_hlc.max(after(last));
                }
                delivered.push((index, number));
            }
        }
        Ok(delivered)
    }
}
