//! Member removal with key rotation, over real nodes on loopback (issue 10
//! item 4, docs/testing.md S4): a removed member can neither read what is
//! gossiped after its removal nor write; a non-admin cannot remove; a
//! departure makes the remaining members rotate by themselves.

#![allow(clippy::unwrap_used)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, call, entries, eventually, set};
use serde_json::json;
use weft_primitives::Hash;

/// The current epoch number at node `i`, if it holds its key.
async fn held_epoch(cluster: &Cluster, i: usize, context: Hash) -> Option<u64> {
    let epochs = cluster.node(i).key_epochs(context).await.unwrap();
    epochs.iter().find(|e| e.current).filter(|e| e.held).map(|e| e.number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_member_cannot_read_new_gossip_nor_write() {
    let cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    set(cluster.node(2), context, "before", "2").await;
    cluster.converged(context).await;
    let removed = cluster.node(2).identity();

    // Only an admin (the creator) removes.
    let refused = cluster.node(1).remove_member(context, removed).await.unwrap_err();
    assert_eq!(refused.code(), "write_refused", "{refused}");

    cluster.node(0).remove_member(context, removed).await.unwrap();
    assert_eq!(held_epoch(&cluster, 0, context).await, Some(1));
    // The removal reaches both others (node 2 learns it was removed, so the
    // delta arrived), and node 1 holds the new key.
    let arrived = eventually(CONVERGE_TIMEOUT, || async {
        let at_1 = held_epoch(&cluster, 1, context).await == Some(1);
        let at_2 = !cluster.node(2).context(context).await.unwrap().members.contains(&removed);
        (at_1 && at_2).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "the removal and the new key reached the members");
    let epochs_2 = cluster.node(2).key_epochs(context).await.unwrap();
    assert!(epochs_2.iter().any(|e| e.number == 1 && !e.held), "no key for the removed member: {epochs_2:?}");

    // Node 0 writes: node 1 reads it; node 2 receives the gossip but cannot
    // open it (proved by its counter), and nobody syncs with it any more.
    let unknown_before = cluster.node(2).stats().await.unwrap().gossip_unknown_key;
    set(cluster.node(0), context, "after", "0").await;
    let seen = eventually(CONVERGE_TIMEOUT, || async {
        let at_1 = entries(cluster.node(1), context).await.get("after").is_some();
        let sealed_arrived = cluster.node(2).stats().await.unwrap().gossip_unknown_key > unknown_before;
        (at_1 && sealed_arrived).then_some(())
    })
    .await;
    assert!(seen.is_some(), "node 1 read the write and node 2 got gossip it cannot open");
    cluster.node(2).sync_now(Some(context)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(entries(cluster.node(2), context).await.get("after"), None, "the removed member read a later write");

    // The removed member's own writes are refused at once.
    let error = cluster.node(2).call(context, "set", br#"{"key":"x","value":"1"}"#.to_vec()).await.unwrap_err();
    assert_eq!(error.code(), "write_refused", "{error}");
    let value = call(cluster.node(1), context, "get", json!({"key": "x"})).await;
    assert_eq!(value, serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_leaves_makes_the_others_rotate() {
    let cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    assert_eq!(held_epoch(&cluster, 0, context).await, Some(0));
    cluster.node(2).leave(context).await.unwrap();
    let rotated = eventually(CONVERGE_TIMEOUT, || async {
        let a = held_epoch(&cluster, 0, context).await;
        let b = held_epoch(&cluster, 1, context).await;
        (a == Some(1) && b == Some(1)).then_some(())
    })
    .await;
    assert!(rotated.is_some(), "both remaining members hold a key of epoch 1");
    // One epoch 1 wins on both, whoever rotated.
    let current = |epochs: Vec<weft_node::KeyEpochInfo>| epochs.into_iter().find(|e| e.current).unwrap().rotation;
    let agreed = eventually(CONVERGE_TIMEOUT, || async {
        let a = current(cluster.node(0).key_epochs(context).await.unwrap());
        let b = current(cluster.node(1).key_epochs(context).await.unwrap());
        (a == b).then_some(())
    })
    .await;
    assert!(agreed.is_some());
    set(cluster.node(0), context, "k", "v").await;
    let read = eventually(CONVERGE_TIMEOUT, || async {
        entries(cluster.node(1), context).await.get("k").is_some().then_some(())
    })
    .await;
    assert!(read.is_some(), "gossip and sync carry on under the new epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leave_made_while_no_member_is_reachable_is_delivered_later() {
    let mut cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    let leaver = cluster.node(1).identity();
    cluster.stop(0).await;
    cluster.node(1).leave(context).await.unwrap();
    // Nobody holds the Leave: node 1 still serves the context.
    assert!(cluster.node(1).context(context).await.is_ok(), "the Leave would be lost");
    cluster.restart(0).await;
    let delivered = eventually(CONVERGE_TIMEOUT, || async {
        let gone_at_0 = !cluster.node(0).context(context).await.unwrap().members.contains(&leaver);
        let closed_at_1 = cluster.node(1).context(context).await.is_err();
        (gone_at_0 && closed_at_1).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "the Leave reached node 0 and node 1 stopped serving the context");
}
