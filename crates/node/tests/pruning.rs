//! History pruned from memory: a node keeps the payloads of its last N
//! deltas in memory and reads older ones back from disk when a peer needs
//! them, so a late joiner still gets the whole history. History forgotten:
//! a node that remembers only its last N deltas deletes the older rows,
//! restarts from what it forgot, and keeps converging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, entries, eventually, set};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joiner_gets_history_pruned_from_memory_read_back_from_disk() {
    let pruning = |config: &mut weft_node::NodeConfig| {
        config.sync.history_kept_max = Some(40);
        // Pruning runs with the pending sweep.
        config.sync.pending_sweep_ms = 100;
    };
    let mut cluster = Cluster::start_with(2, pruning).await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let created = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap();
    let (context, init) = (created.id, created.heads[0]);
    for n in 0..200 {
        set(cluster.node(0), context, &format!("k{n}"), "v").await;
    }
    // Node 0 pruned the payloads of all but its last deltas from memory
    // (the input the test needs: without it, nothing is read from disk).
    let first = cluster.node(0).context(context).await.unwrap();
    let pruned = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(0).context(context).await.unwrap().stats;
        (stats.history_pruned >= 100).then_some(stats.history_pruned)
    })
    .await;
    assert!(pruned.is_some(), "node 0 never pruned its history: {:?}", first.stats);
    // The first delta's payload is gone from memory, yet it is served by id.
    let bytes = cluster.node(0).delta(context, init).await.unwrap().expect("a pruned delta is read back from disk");
    assert_eq!(weft_sync::SignedDelta::decode(&bytes).unwrap().id, init);
    let invitation = cluster.node(0).invite(context, None, None).await.unwrap();
    cluster.node(1).join(&invitation).await.unwrap();
    let infos = cluster.converged(context).await;
    assert_eq!(infos[1].applied, infos[0].applied);
    assert_eq!(entries(cluster.node(1), context).await, entries(cluster.node(0), context).await);
    // A restart prunes again while it replays, and still serves it all.
    cluster.stop(0).await;
    cluster.restart_with(0, pruning).await;
    let restarted = cluster.node(0).context(context).await.unwrap().stats.history_pruned;
    assert!(restarted >= 100, "the restart kept {restarted} pruned payloads out of memory");
    let bytes = cluster.node(0).delta(context, init).await.unwrap().expect("still served after the restart");
    assert_eq!(weft_sync::SignedDelta::decode(&bytes).unwrap().id, init);
    set(cluster.node(0), context, "after", "v").await;
    cluster.converged(context).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_forgets_old_history_on_disk_restarts_from_it_and_keeps_converging() {
    let forgetting = |config: &mut weft_node::NodeConfig| {
        config.sync.history_kept_max = Some(20);
        config.sync.history_remembered_max = Some(40);
        // Forgetting runs with the pending sweep.
        config.sync.pending_sweep_ms = 100;
    };
    let mut cluster = Cluster::start_with(2, forgetting).await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let created = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap();
    let (context, init) = (created.id, created.heads[0]);
    let invitation = cluster.node(0).invite(context, None, None).await.unwrap();
    cluster.node(1).join(&invitation).await.unwrap();
    for n in 0..200 {
        set(cluster.node(n % 2), context, &format!("k{n}"), "v").await;
    }
    cluster.converged(context).await;
    let forgotten = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(0).context(context).await.unwrap().stats;
        (stats.history_forgotten >= 100).then_some(stats.history_forgotten)
    })
    .await;
    let forgotten = forgotten.expect("node 0 never forgot its old history");
    // The first delta's row is gone: it is no longer served.
    assert_eq!(cluster.node(0).delta(context, init).await.unwrap(), None);
    let before = entries(cluster.node(0), context).await;
    let applied = cluster.node(0).context(context).await.unwrap().applied;
    cluster.stop(0).await;
    cluster.restart_with(0, forgetting).await;
    let info = cluster.node(0).context(context).await.unwrap();
    assert!(info.stats.history_forgotten >= forgotten, "restarted with {} forgotten", info.stats.history_forgotten);
    assert_eq!(info.applied, applied, "the forgotten deltas still count as applied");
    assert_eq!(entries(cluster.node(0), context).await, before);
    for n in 0..20 {
        set(cluster.node(n % 2), context, &format!("after{n}"), "v").await;
    }
    let infos = cluster.converged(context).await;
    assert_eq!(infos[0].applied, infos[1].applied);
    assert_eq!(entries(cluster.node(1), context).await, entries(cluster.node(0), context).await);
}
