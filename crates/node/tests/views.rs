//! Views run off the driver, on the store's durable snapshot: they answer
//! while the driver is busy, and an acknowledged write is visible to every
//! view that starts after its acknowledgement.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Cluster, call, set};
use serde_json::json;
use tokio::sync::oneshot;

/// Far above any view's time here; only a view stuck behind the held
/// driver reaches it.
const VIEW_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_answers_while_the_driver_is_held_and_a_mutation_waits_for_it() {
    let cluster = Cluster::start(1).await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;
    set(cluster.node(0), context, "a", "1").await;

    let (release, hold) = oneshot::channel();
    cluster.node(0).hold_driver(hold).await.unwrap();
    let node = cluster.node(0).clone();
    let args = serde_json::to_vec(&json!({ "key": "b", "value": "2" })).unwrap();
    let mutation = tokio::spawn(async move { node.call(context, "set", args).await });

    let view = tokio::time::timeout(VIEW_TIMEOUT, call(cluster.node(0), context, "get", json!({ "key": "a" })));
    let Ok(value) = view.await else { panic!("a view waited for the held driver") };
    assert_eq!(value, json!("1"));
    assert!(!mutation.is_finished(), "a mutation ran while the driver was held");

    release.send(()).unwrap();
    assert!(mutation.await.unwrap().unwrap().delta.is_some());
    assert_eq!(call(cluster.node(0), context, "get", json!({ "key": "b" })).await, json!("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_is_visible_to_the_next_view() {
    const CLIENTS: usize = 8;
    const WRITES: usize = 40;
    let cluster = Cluster::start(1).await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let node = cluster.node(0).clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    let key = format!("c{client}-{i}");
                    set(&node, context, &key, &i.to_string()).await;
                    let seen = call(&node, context, "get", json!({ "key": key })).await;
                    assert_eq!(seen, json!(i.to_string()), "a view missed the write acknowledged before it");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let stats = cluster.node(0).stats().await.unwrap();
    assert!(stats.call_groups < (CLIENTS * WRITES) as u64, "the writes never shared a group");
    assert_eq!(call(cluster.node(0), context, "len", json!({})).await, json!(CLIENTS * WRITES));
}
