//! The demo's three nodes: each a real node (own redb database in a
//! temporary directory, own libp2p swarm on loopback) with its own API
//! server on a free loopback port, all in this process.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context as _;
use tempfile::TempDir;
use weft_node::{Node, NodeConfig, NodeHandle};
use weft_primitives::{Hash, PublicKey};
use weft_server::{ServerConfig, ServerHandle};

/// Nodes in the demo.
pub const DEMO_NODES: usize = 3;

/// One node of the demo.
pub struct DemoNode {
    /// `n1`, `n2`, `n3`.
    pub name: String,
    /// The node.
    pub handle: NodeHandle,
    /// Where its API listens.
    pub api: SocketAddr,
    server: Option<ServerHandle>,
    // Removed (with the database) when the demo ends.
    _dir: TempDir,
}

/// The demo's nodes, connected in a full mesh.
pub struct DemoCluster {
    /// The nodes, `n1` first.
    pub nodes: Vec<DemoNode>,
}

impl DemoCluster {
    /// Start [`DEMO_NODES`] nodes and connect each to every other.
    pub async fn start() -> anyhow::Result<DemoCluster> {
        let mut cluster = DemoCluster { nodes: Vec::with_capacity(DEMO_NODES) };
        for i in 1..=DEMO_NODES {
            match start_node(i).await {
                Ok(node) => cluster.nodes.push(node),
                Err(error) => {
                    cluster.shutdown().await;
                    return Err(error);
                }
            }
        }
        if let Err(error) = cluster.connect().await {
            cluster.shutdown().await;
            return Err(error);
        }
        Ok(cluster)
    }

    async fn connect(&self) -> anyhow::Result<()> {
        for (i, node) in self.nodes.iter().enumerate() {
            for other in &self.nodes[..i] {
                let addrs = other.handle.listen_addrs().await?;
                let addr = addrs.first().cloned().context("a demo node listens nowhere")?;
                node.handle.dial(addr).await.with_context(|| format!("{} dialing {}", node.name, other.name))?;
            }
        }
        Ok(())
    }

    /// The display name of each node's member identity.
    pub fn member_names(&self) -> HashMap<PublicKey, String> {
        self.nodes.iter().map(|node| (node.handle.identity(), node.name.clone())).collect()
    }

    /// Install the kv-store on `n1`, create a context there, and have every
    /// other node join it with an invitation made for its identity.
    pub async fn shared_kv_context(&self) -> anyhow::Result<(Hash, Hash)> {
        let first = &self.nodes[0];
        let app =
            first.handle.install_application(weft_apps::KV_STORE.to_vec()).await.context("installing kv-store")?;
        let context = first.handle.create_context(app.id, b"{}".to_vec()).await.context("creating the context")?.id;
        for node in &self.nodes[1..] {
            let invitation = first
                .handle
                .invite(context, Some(node.handle.identity()), None)
                .await
                .with_context(|| format!("inviting {}", node.name))?;
            node.handle.join(&invitation).await.with_context(|| format!("{} joining", node.name))?;
        }
        Ok((app.id, context))
    }

    /// Stop every API server, then every node.
    pub async fn shutdown(&mut self) {
        for node in &mut self.nodes {
            if let Some(server) = node.server.take() {
                server.shutdown().await;
            }
        }
        for node in &self.nodes {
            let _ = node.handle.shutdown().await;
        }
    }
}

async fn start_node(i: usize) -> anyhow::Result<DemoNode> {
    let name = format!("n{i}");
    let dir = tempfile::Builder::new().prefix("weft-demo-").tempdir().context("creating a temporary directory")?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("random source failed: {e}"))?;
    let handle =
        Node::start(NodeConfig::loopback(dir.path(), seed)).await.with_context(|| format!("starting {name}"))?;
    let server = match weft_server::serve(handle.clone(), ServerConfig::loopback(0)).await {
        Ok(server) => server,
        Err(error) => {
            let _ = handle.shutdown().await;
            return Err(anyhow::anyhow!("starting the API of {name}: {error}"));
        }
    };
    Ok(DemoNode { name, handle, api: server.local_addr(), server: Some(server), _dir: dir })
}
