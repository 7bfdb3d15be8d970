//! Group commit of clients' calls: calls that wait together share one
//! fsync, each is answered only once its delta is durable, every grouped
//! delta is gossiped after the fsync, and a restart finds every
//! acknowledged one. (Crashes inside a group are swept at the store level:
//! `crates/store/tests/crash.rs`, `crash_during_group_commit_…`.)

#![allow(clippy::unwrap_used)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, call, eventually, without_anti_entropy};
use serde_json::json;

/// Concurrent clients of node 0.
const CALLS: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_share_fsyncs_are_gossiped_and_survive_a_restart() {
    let mut cluster = Cluster::start_with(2, without_anti_entropy).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    let before = cluster.node(0).stats().await.unwrap();

    let tasks: Vec<_> = (0..CALLS)
        .map(|i| {
            let node = cluster.node(0).clone();
            let args = serde_json::to_vec(&json!({ "key": format!("k{i}"), "value": "v" })).unwrap();
            tokio::spawn(async move { node.call(context, "set", args).await })
        })
        .collect();
    for task in tasks {
        let reply = task.await.unwrap().unwrap();
        assert!(reply.delta.is_some(), "an acknowledged set without its delta");
    }
    let after = cluster.node(0).stats().await.unwrap();
    let (calls, groups) = (after.calls - before.calls, after.call_groups - before.call_groups);
    assert_eq!(calls, CALLS, "every call counted once");
    assert!(groups < calls, "{calls} concurrent calls took {groups} fsyncs: none shared one");

    // Gossip alone carries them to node 1.
    let len = eventually(CONVERGE_TIMEOUT, || async {
        let len = call(cluster.node(1), context, "len", json!({})).await;
        (len == json!(CALLS)).then_some(len)
    })
    .await;
    assert!(len.is_some(), "node 1 did not get the grouped writes by gossip");

    // The app was compiled once and its code kept for the restart.
    let cached = std::fs::read_dir(cluster.nodes[0].dir.join(weft_node::CODE_CACHE_DIR)).map(|dir| dir.count());
    assert!(cached.as_ref().is_ok_and(|entries| *entries > 0), "no compiled code cached: {cached:?}");
    cluster.stop(0).await;
    cluster.restart_with(0, without_anti_entropy).await;
    assert_eq!(call(cluster.node(0), context, "len", json!({})).await, json!(CALLS));
}
