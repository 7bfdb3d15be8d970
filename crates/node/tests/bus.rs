//! The event bus under a batch: a sync page or a burst of gossip applies
//! many deltas and the bus carries them in one `StateMutation` per context
//! and turn, so a catch-up never floods it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, eventually, set};
use weft_node::NodeEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catch_up_of_hundreds_of_deltas_is_announced_in_a_few_events() {
    const N: u64 = 400;
    let cluster = Cluster::start(2).await;
    let app = cluster.node(0).install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id;
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;
    for n in 0..N {
        set(cluster.node(0), context, &format!("k{n}"), "v").await;
    }
    let mut events = cluster.node(1).subscribe();
    let invitation = cluster.node(0).invite(context, None, None).await.unwrap();
    cluster.node(1).join(&invitation).await.unwrap();
    let applied = cluster.node(0).context(context).await.unwrap().applied;
    let mut announced = 0u64;
    let mut mutations = 0u64;
    let all = eventually(CONVERGE_TIMEOUT, || {
        while let Ok(event) = events.try_recv() {
            if let NodeEvent::StateMutation { context: of, deltas, .. } = event
                && of == context
            {
                mutations += 1;
                announced += deltas.len() as u64;
            }
        }
        let done = announced >= applied;
        async move { done.then_some(()) }
    })
    .await;
    // Every applied delta was announced (the input arrived)...
    assert!(all.is_some(), "{announced} of {applied} deltas announced");
    assert_eq!(announced, applied);
    // ...in far fewer events than deltas: one per page, not one per delta.
    assert!(mutations * 20 <= applied, "{mutations} StateMutation events for {applied} deltas");
}
