//! A cluster of real nodes for the integration tests: each with its own
//! redb file in a temporary directory, its own libp2p swarm on loopback
//! TCP/QUIC, and the real WASM runtime running the example apps.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use weft_node::{ContextInfo, Node, NodeConfig, NodeHandle};
use weft_primitives::Hash;

/// Generous: CI machines are slow and share cores.
/// The wall clock in milliseconds, for the HLCs of hand-made deltas.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// One node and what it needs to restart.
pub struct TestNode {
    pub handle: NodeHandle,
    pub dir: PathBuf,
    pub seed: [u8; 32],
}

/// Nodes with their temporary directories (removed at drop).
pub struct Cluster {
    pub nodes: Vec<TestNode>,
    _dirs: Vec<TempDir>,
}

pub fn config(dir: &std::path::Path, seed: [u8; 32]) -> NodeConfig {
    let mut config = NodeConfig::loopback(dir, seed);
    config.identity_seed = Some(member_seed(seed));
    // Faster anti-entropy than production, so tests finish quickly; the
    // logic is the same.
    config.sync.sync_frequency_ms = 1_000;
    config.sync.sync_interval_ms = 500;
    config.handler_retry_base_ms = 100;
    config
}

/// Anti-entropy only every 10 minutes: nothing a test waits for comes
/// from it (a test of gossip, or of what one session carries).
pub fn without_anti_entropy(config: &mut NodeConfig) {
    config.sync.sync_frequency_ms = 600_000;
    config.sync.sync_interval_ms = 600_000;
}

/// The member identity seed of the node with network seed `seed`.
pub fn member_seed(seed: [u8; 32]) -> [u8; 32] {
    let mut member = seed;
    member[0] ^= 0x80;
    member
}

/// The member signing key of node `i` of a cluster.
pub fn member_key(cluster: &Cluster, i: usize) -> weft_primitives::SigningKey {
    weft_primitives::SigningKey::from_seed(member_seed(cluster.nodes[i].seed))
}

impl Cluster {
    /// `n` nodes, connected in a full mesh.
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| {}).await
    }

    /// `n` nodes that know nothing of each other: they meet only through
    /// invitations, as with the README's setup.
    pub async fn start_unconnected(n: usize, tweak: impl Fn(usize, &mut NodeConfig)) -> Cluster {
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let seed = [i as u8 + 1; 32];
            let mut config = config(dir.path(), seed);
            tweak(i, &mut config);
            let handle = Node::start(config).await.unwrap();
            nodes.push(TestNode { handle, dir: dir.path().to_path_buf(), seed });
            dirs.push(dir);
        }
        Cluster { nodes, _dirs: dirs }
    }

    pub async fn start_with(n: usize, tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        let cluster = Cluster::start_unconnected(n, |_, config| tweak(config)).await;
        cluster.connect_all().await;
        cluster
    }

    pub async fn connect_all(&self) {
        for i in 0..self.nodes.len() {
            for j in 0..i {
                self.connect(i, j).await;
            }
        }
    }

    pub async fn connect(&self, from: usize, to: usize) {
        let addr = self.nodes[to].handle.listen_addrs().await.unwrap()[0].clone();
        self.nodes[from].handle.dial(addr).await.unwrap();
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        &self.nodes[i].handle
    }

    /// Stop node `i` (its directory stays).
    pub async fn stop(&mut self, i: usize) {
        self.nodes[i].handle.shutdown().await.unwrap();
    }

    /// Start node `i` again on its directory and seed, and reconnect it.
    pub async fn restart(&mut self, i: usize) {
        self.restart_with(i, |_| {}).await;
    }

    pub async fn restart_with(&mut self, i: usize, tweak: impl Fn(&mut NodeConfig)) {
        let mut config = config(&self.nodes[i].dir, self.nodes[i].seed);
        tweak(&mut config);
        self.nodes[i].handle = Node::start(config).await.unwrap();
        for j in 0..self.nodes.len() {
            if j != i {
                self.connect(i, j).await;
            }
        }
    }

    /// Install `module` everywhere, create a context on node 0, invite and
    /// join every other node.
    pub async fn shared_context(&self, module: &[u8]) -> Hash {
        let mut app = None;
        for node in &self.nodes {
            app = Some(node.handle.install_application(module.to_vec()).await.unwrap().id);
        }
        let context = self.node(0).create_context(app.unwrap(), b"{}".to_vec()).await.unwrap().id;
        for i in 1..self.nodes.len() {
            let invitation = self.node(0).invite(context, Some(self.node(i).identity()), None).await.unwrap();
            let info = self.node(i).join(&invitation).await.unwrap();
            assert_eq!(info.id, context);
        }
        context
    }

    pub async fn infos(&self, context: Hash) -> Vec<ContextInfo> {
        let mut out = Vec::new();
        for node in &self.nodes {
            out.push(node.handle.context(context).await.unwrap());
        }
        out
    }

    /// Wait until every node has the same heads and the same root hash.
    /// What node `i` holds of `context` (root hash, heads, applied count),
    /// to show that a refused input changed nothing.
    pub async fn fingerprint(&self, i: usize, context: Hash) -> (Hash, Vec<Hash>, u64) {
        let info = self.node(i).context(context).await.unwrap();
        (info.root_hash, info.heads, info.applied)
    }

    pub async fn converged(&self, context: Hash) -> Vec<ContextInfo> {
        eventually(CONVERGE_TIMEOUT, || async {
            let infos = self.infos(context).await;
            let same = infos.windows(2).all(|w| w[0].root_hash == w[1].root_hash && w[0].heads == w[1].heads);
            same.then_some(infos)
        })
        .await
        .unwrap_or_else(|| panic!("no convergence: {:#?}", summary(&futures_block(self.infos(context)))))
    }
}

fn futures_block<F: Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn summary(infos: &[ContextInfo]) -> Vec<(Hash, usize, u64, u64)> {
    infos.iter().map(|i| (i.root_hash, i.heads.len(), i.applied, i.pending)).collect()
}

/// Poll `check` until it returns `Some`, or give up after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Call a method with JSON args; the JSON result.
pub async fn call(node: &NodeHandle, context: Hash, method: &str, args: Value) -> Value {
    let reply = node.call(context, method, serde_json::to_vec(&args).unwrap()).await.unwrap();
    if reply.result.is_empty() { Value::Null } else { serde_json::from_slice(&reply.result).unwrap() }
}

pub async fn set(node: &NodeHandle, context: Hash, key: &str, value: &str) {
    call(node, context, "set", json!({ "key": key, "value": value })).await;
}

pub async fn entries(node: &NodeHandle, context: Hash) -> Value {
    call(node, context, "entries", json!({})).await
}
