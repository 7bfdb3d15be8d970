//! History pruning: a node keeps the last N deltas; a peer that needs older
//! history is told so explicitly instead of waiting forever.

#![allow(clippy::unwrap_used)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, eventually, set};
use weft_node::NodeEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joiner_that_needs_pruned_history_is_told_a_snapshot_is_needed() {
    let cluster = Cluster::start_with(2, |config| {
        config.sync.history_kept_max = Some(40);
        // Pruning runs with the pending sweep.
        config.sync.pending_sweep_ms = 100;
        config.join_timeout_ms = 3_000;
    })
    .await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;
    for n in 0..200 {
        set(cluster.node(0), context, &format!("k{n}"), "v").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut events = cluster.node(1).subscribe();
    let invitation = cluster.node(0).invite(context, None, None).await.unwrap();
    // Admission is committed on node 0, but node 1 cannot get the history
    // that leads to it: the join times out...
    let joined = cluster.node(1).join(&invitation).await;
    assert!(joined.is_err(), "join cannot complete without the pruned history");
    // ...and node 1 was told why.
    let told = eventually(CONVERGE_TIMEOUT, || {
        let received = events.try_recv();
        async move {
            match received {
                Ok(NodeEvent::SnapshotNeeded { context: c }) if c == context => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert!(told.is_some(), "no SnapshotNeeded event");
    // The pruning node itself still serves reads and writes.
    set(cluster.node(0), context, "after", "v").await;
    assert!(cluster.node(0).context(context).await.unwrap().applied >= 201);
}
