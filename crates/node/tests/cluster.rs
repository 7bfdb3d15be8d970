//! Three and more real nodes on loopback: create, invite, join, concurrent
//! writes, convergence, catch-up after a restart, restarts mid-traffic.

#![allow(clippy::unwrap_used)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, call, entries, eventually, set};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_create_invite_join_and_converge_under_concurrent_writes() {
    let cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    let infos = cluster.infos(context).await;
    for info in &infos {
        assert_eq!(info.members.len(), 3, "every node sees three members: {info:?}");
    }
    // Concurrent writes on all three, including to the same keys.
    let mut tasks = Vec::new();
    for i in 0..3 {
        let node = cluster.node(i).clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..30 {
                set(&node, context, &format!("k{n}"), &format!("node{i}-{n}")).await;
                set(&node, context, &format!("own-{i}-{n}"), "x").await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let infos = cluster.converged(context).await;
    let reference = entries(cluster.node(0), context).await;
    assert_eq!(reference.as_object().unwrap().len(), 30 + 90);
    for i in 1..3 {
        assert_eq!(entries(cluster.node(i), context).await, reference, "node {i}");
    }
    // 1 init + 2 admissions + 180 writes.
    assert!(infos.iter().all(|info| info.applied == 183), "{infos:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_while_1000_deltas_happen_catches_up_after_restart() {
    let mut cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    cluster.stop(2).await;
    for n in 0..1000 {
        let writer = cluster.node(n % 2);
        set(writer, context, &format!("key-{n}"), &n.to_string()).await;
    }
    cluster.restart(2).await;
    let infos = cluster.converged(context).await;
    assert!(infos.iter().all(|info| info.applied == 1003), "{:?}", infos.iter().map(|i| i.applied).collect::<Vec<_>>());
    // The catch-up came in pages, and each page (with what it released)
    // was one write transaction, not one per delta.
    let stats = cluster.node(2).stats().await.unwrap();
    assert!(stats.deltas_applied >= 1000, "node 2 applied {} deltas after its restart", stats.deltas_applied);
    assert!(
        stats.store_transactions * 4 <= stats.deltas_applied,
        "{} deltas applied in {} write transactions",
        stats.deltas_applied,
        stats.store_transactions
    );
    assert_eq!(entries(cluster.node(2), context).await, entries(cluster.node(0), context).await);
    assert_eq!(call(cluster.node(2), context, "len", json!({})).await, json!(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarts_in_the_middle_of_traffic_lose_no_acknowledged_write() {
    let mut cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    let mut acknowledged = Vec::new();
    for round in 0..4 {
        // Node 0 writes while node 1 restarts; then node 0 itself restarts.
        for n in 0..50 {
            let key = format!("r{round}-{n}");
            set(cluster.node(0), context, &key, "v").await;
            acknowledged.push(key);
            if n == 10 {
                cluster.stop(1).await;
            }
            if n == 30 {
                cluster.restart(1).await;
            }
        }
        cluster.stop(0).await;
        cluster.restart(0).await;
    }
    cluster.converged(context).await;
    for i in 0..3 {
        let entries = entries(cluster.node(i), context).await;
        for key in &acknowledged {
            assert!(entries.get(key).is_some(), "node {i} lost acknowledged write {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_joins_late_receives_the_whole_history() {
    let cluster = Cluster::start(2).await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;
    for n in 0..200 {
        set(cluster.node(0), context, &format!("k{n}"), "v").await;
    }
    // An open invitation (no invitee), used by node 1.
    let invitation = cluster.node(0).invite(context, None, None).await.unwrap();
    cluster.node(1).join(&invitation).await.unwrap();
    cluster.converged(context).await;
    assert_eq!(call(cluster.node(1), context, "len", json!({})).await, json!(200));
    let ok = eventually(CONVERGE_TIMEOUT, || async {
        let info = cluster.node(1).context(context).await.unwrap();
        (info.members.len() == 2).then_some(())
    })
    .await;
    assert!(ok.is_some());
}
