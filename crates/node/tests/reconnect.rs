//! docs/testing.md S11: with the README's setup (invitations, no bootstrap
//! list, no test-made dials) nodes find their contexts' members by
//! themselves, and find them again after a restart — the restarted node by
//! its persisted address book, the nodes that stayed up by redialing.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{CONVERGE_TIMEOUT, Cluster, config, entries, eventually, set};
use weft_node::{Node, NodeHandle};
use weft_primitives::Hash;

/// A free loopback port, so a restarted node comes back where it was.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// Nodes on fixed TCP ports, meeting only through invitations: node 0
/// invites node 1, node 1 invites node 2, so node 2 is told of node 0 by
/// nobody but node 1's directory.
async fn chain(n: usize) -> (Cluster, Vec<u16>, Hash) {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let cluster = Cluster::start_unconnected(n, |i, config| {
        config.net.listen_addrs = vec![format!("/ip4/127.0.0.1/tcp/{}", ports[i])];
        // Kademlia finds peers in a small network too; these tests check
        // the node's own mechanism (address book, redials, directories).
        config.net.kademlia = false;
        config.redial_max_ms = 1_000;
    })
    .await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;
    for i in 1..n {
        let invitation = cluster.node(i - 1).invite(context, Some(cluster.node(i).identity()), None).await.unwrap();
        cluster.node(i).join(&invitation).await.unwrap();
    }
    (cluster, ports, context)
}

async fn connected_to(node: &NodeHandle, other: &NodeHandle) -> bool {
    node.peers().await.unwrap().iter().any(|p| p.peer == other.peer_id())
}

async fn start_again(cluster: &mut Cluster, i: usize, port: u16) {
    let mut config = config(&cluster.nodes[i].dir, cluster.nodes[i].seed);
    config.net.listen_addrs = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
    config.net.kademlia = false;
    config.redial_max_ms = 1_000;
    cluster.nodes[i].handle = Node::start(config).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_finds_the_members_it_was_not_invited_by() {
    let (cluster, _, context) = chain(3).await;
    // Node 2 joined through node 1 only; node 1's directory names node 0.
    let found =
        eventually(CONVERGE_TIMEOUT, || async { connected_to(cluster.node(2), cluster.node(0)).await.then_some(()) })
            .await;
    assert!(found.is_some(), "node 2 never connected to node 0");
    let info = cluster.node(2).context(context).await.unwrap();
    assert_eq!(info.member_nodes_known, 2, "{info:?}");
    assert!(cluster.node(2).stats().await.unwrap().directories_received >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_redials_its_members_and_catches_up_by_itself() {
    let (mut cluster, ports, context) = chain(3).await;
    cluster.stop(2).await;
    for i in 0..20 {
        set(cluster.node(i % 2), context, &format!("while-down-{i}"), "v").await;
    }
    // Restarted on its data, with no dial from the test and no bootstrap.
    start_again(&mut cluster, 2, ports[2]).await;
    let caught_up = eventually(CONVERGE_TIMEOUT, || async {
        let all = entries(cluster.node(2), context).await;
        (all.as_object().map_or(0, |m| m.len()) == 20).then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "node 2 did not catch up: {}", entries(cluster.node(2), context).await);
    cluster.converged(context).await;
    assert!(cluster.node(2).stats().await.unwrap().redials >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_that_stayed_up_redial_a_restarted_node() {
    let (mut cluster, ports, context) = chain(3).await;
    let everyone_connected =
        eventually(CONVERGE_TIMEOUT, || async { connected_to(cluster.node(0), cluster.node(2)).await.then_some(()) })
            .await;
    assert!(everyone_connected.is_some());
    cluster.stop(2).await;
    // Forget everything node 2 knew of other nodes: it cannot dial anyone,
    // so only the others' redials can bring it back.
    {
        let store = weft_store::Store::open(cluster.nodes[2].dir.join(weft_node::DATABASE_FILE)).unwrap();
        let rows = store.read().unwrap().scan(weft_store::PEERS, &[], None, 1024).unwrap();
        assert!(!rows.is_empty(), "node 2 had persisted its peers");
        store
            .write(|txn| {
                for (key, _) in &rows {
                    txn.delete(weft_store::PEERS, key)?;
                }
                Ok::<(), weft_store::StoreError>(())
            })
            .unwrap();
    }
    set(cluster.node(0), context, "after", "restart").await;
    start_again(&mut cluster, 2, ports[2]).await;
    assert_eq!(cluster.node(2).context(context).await.unwrap().member_nodes_known, 0);
    let outcome = cluster.node(2).sync_now(Some(context)).await.unwrap();
    assert_eq!((outcome[0].started, outcome[0].peers), (false, 0), "no member is reachable yet: {outcome:?}");

    let back = eventually(CONVERGE_TIMEOUT, || async {
        let value = common::call(cluster.node(2), context, "get", serde_json::json!({"key": "after"})).await;
        (value == "restart").then_some(())
    })
    .await;
    assert!(back.is_some(), "the others never redialed node 2");
    cluster.converged(context).await;
    // Node 2 learned its members back from the nodes that dialed it.
    let relearned = eventually(Duration::from_secs(30), || async {
        (cluster.node(2).context(context).await.unwrap().member_nodes_known == 2).then_some(())
    })
    .await;
    assert!(relearned.is_some());
}
