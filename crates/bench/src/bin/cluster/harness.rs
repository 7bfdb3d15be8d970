//! A cluster of real nodes on loopback, each with its own data directory
//! (removed when the cluster drops), started with the node's default
//! tunables: the figures are what a deployment gets, not a test setup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tempfile::TempDir;
use weft_node::{CallReply, ContextInfo, Node, NodeConfig, NodeHandle};
use weft_primitives::Hash;

/// How often convergence and peer counts are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long the mesh may take to connect.
const PEERS_TIMEOUT: Duration = Duration::from_secs(30);

/// One node and what it needs to restart.
pub struct BenchNode {
    pub handle: NodeHandle,
    pub dir: PathBuf,
    pub seed: [u8; 32],
}

/// Nodes connected in a full mesh.
pub struct Cluster {
    pub nodes: Vec<BenchNode>,
    _dirs: Vec<TempDir>,
}

/// The node's defaults, on loopback.
pub fn config(dir: &Path, seed: [u8; 32]) -> NodeConfig {
    NodeConfig::loopback(dir, seed)
}

impl Cluster {
    /// `n` nodes (seeds 1..=n), connected in a full mesh.
    pub async fn start(n: usize) -> anyhow::Result<Cluster> {
        Cluster::start_with(n, |_| {}).await
    }

    /// As [`Cluster::start`], each node's configuration changed by `tweak`.
    pub async fn start_with(n: usize, tweak: impl Fn(&mut NodeConfig)) -> anyhow::Result<Cluster> {
        let mut nodes = Vec::with_capacity(n);
        let mut dirs = Vec::with_capacity(n);
        for i in 0..n {
            let dir = tempfile::tempdir().context("temporary data directory")?;
            let seed = [u8::try_from(i + 1).context("too many nodes")?; 32];
            let mut node_config = config(dir.path(), seed);
            tweak(&mut node_config);
            let handle = Node::start(node_config).await.with_context(|| format!("starting node {i}"))?;
            nodes.push(BenchNode { handle, dir: dir.path().to_path_buf(), seed });
            dirs.push(dir);
        }
        let cluster = Cluster { nodes, _dirs: dirs };
        for i in 0..n {
            for j in 0..i {
                cluster.connect(i, j).await?;
            }
        }
        Ok(cluster)
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        &self.nodes[i].handle
    }

    /// Node `from` dials node `to`.
    pub async fn connect(&self, from: usize, to: usize) -> anyhow::Result<()> {
        let addrs = self.node(to).listen_addrs().await?;
        let addr = addrs.first().cloned().with_context(|| format!("node {to} listens nowhere"))?;
        self.node(from).dial(addr).await.with_context(|| format!("node {from} dialing node {to}"))?;
        Ok(())
    }

    /// `count` kv-store contexts created by `owner`, each with `joiner`
    /// invited and joined.
    pub async fn share_contexts(&self, owner: usize, joiner: usize, count: usize) -> anyhow::Result<Vec<Hash>> {
        let app = self.node(owner).install_application(weft_apps::KV_STORE.to_vec()).await?.id;
        self.node(joiner).install_application(weft_apps::KV_STORE.to_vec()).await?;
        let mut shared = Vec::with_capacity(count);
        for _ in 0..count {
            let context = self.node(owner).create_context(app, b"{}".to_vec()).await?.id;
            let invitation = self.node(owner).invite(context, Some(self.node(joiner).identity()), None).await?;
            let joined = self.node(joiner).join(&invitation).await.context("joining a shared context")?;
            anyhow::ensure!(joined.id == context, "joined {} instead of {context}", joined.id);
            shared.push(context);
        }
        Ok(shared)
    }

    /// Install `kv-store` everywhere, create a context on node 0, invite
    /// and join every other node.
    pub async fn shared_kv_context(&self) -> anyhow::Result<Hash> {
        let mut app = None;
        for node in &self.nodes {
            app = Some(node.handle.install_application(weft_apps::KV_STORE.to_vec()).await?.id);
        }
        let app = app.context("an empty cluster")?;
        let context = self.node(0).create_context(app, b"{}".to_vec()).await?.id;
        for i in 1..self.nodes.len() {
            let invitation = self.node(0).invite(context, Some(self.node(i).identity()), None).await?;
            let info = self.node(i).join(&invitation).await.with_context(|| format!("node {i} joining"))?;
            if info.id != context {
                bail!("node {i} joined {} instead of {context}", info.id);
            }
        }
        Ok(context)
    }

    pub async fn infos(&self, context: Hash) -> anyhow::Result<Vec<ContextInfo>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            out.push(node.handle.context(context).await?);
        }
        Ok(out)
    }

    /// Poll until every node has the same heads and root hash; `None` if
    /// that does not happen within `timeout`.
    pub async fn converged(&self, context: Hash, timeout: Duration) -> anyhow::Result<Option<Vec<ContextInfo>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let infos = self.infos(context).await?;
            if infos.windows(2).all(|w| same_state(&w[0], &w[1])) {
                return Ok(Some(infos));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Wait until every node counts at least `min` connected peers.
    pub async fn wait_for_peers(&self, min: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + PEERS_TIMEOUT;
        for (i, node) in self.nodes.iter().enumerate() {
            while node.handle.stats().await?.peers < min {
                if Instant::now() >= deadline {
                    bail!("node {i} has fewer than {min} peers after {PEERS_TIMEOUT:?}");
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        Ok(())
    }

    /// Stop every node (each reply comes once its database is closed).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        for node in &self.nodes {
            // A node already stopped answers `Stopped`: nothing to do.
            let _ = node.handle.shutdown().await;
        }
        Ok(())
    }
}

/// Same heads (as sets) and same root hash.
pub fn same_state(a: &ContextInfo, b: &ContextInfo) -> bool {
    let sorted = |info: &ContextInfo| {
        let mut heads = info.heads.clone();
        heads.sort_unstable();
        heads
    };
    a.root_hash == b.root_hash && sorted(a) == sorted(b)
}

/// `set(key, value)` on `node`; the reply must carry a delta.
pub async fn set(node: &NodeHandle, context: Hash, key: &str, value: &str) -> anyhow::Result<(CallReply, Hash)> {
    let args = serde_json::to_vec(&json!({ "key": key, "value": value }))?;
    let reply = node.call(context, "set", args).await?;
    let delta = reply.delta.with_context(|| format!("set {key:?} committed no delta"))?;
    Ok((reply, delta))
}

/// The kv store's `len` as `node` sees it.
pub async fn kv_len(node: &NodeHandle, context: Hash) -> anyhow::Result<u64> {
    let reply = node.call(context, "len", b"{}".to_vec()).await?;
    let value: serde_json::Value = serde_json::from_slice(&reply.result).context("len returned no JSON")?;
    value.as_u64().with_context(|| format!("len returned {value}"))
}
