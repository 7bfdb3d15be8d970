//! Bad deltas from the network are rejected before they touch anything,
//! and a node that receives a delta whose parents it lacks fetches them.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{CONVERGE_TIMEOUT, Cluster, eventually, member_key, set, wall_ms, without_anti_entropy};
use weft_primitives::{Hash, Hlc, Signature, SigningKey};
use weft_sync::SignedDelta;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_member_forged_and_misidentified_deltas_are_rejected_and_their_sender_penalized() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    set(cluster.node(0), context, "a", "1").await;
    cluster.converged(context).await;
    let before = cluster.fingerprint(1, context).await;
    let heads = before.1.clone();
    let member = member_key(&cluster, 0);
    let stranger = SigningKey::from_seed([99; 32]);

    // A non-member's delta on applied parents.
    let non_member =
        SignedDelta::sign(&stranger, &context, heads.clone(), Hlc::new(wall_ms(), 0), Vec::new(), Vec::new());
    // A member's delta with a signature that does not verify.
    let mut forged =
        SignedDelta::sign(&member, &context, heads.clone(), Hlc::new(wall_ms(), 1), Vec::new(), Vec::new());
    forged.signature = Signature([7; 64]);
    // A delta whose id is not its content hash.
    let mut misidentified =
        SignedDelta::sign(&member, &context, heads.clone(), Hlc::new(wall_ms(), 2), Vec::new(), Vec::new());
    misidentified.hlc = Hlc::new(wall_ms(), 3);

    let rejected_before = cluster.node(1).stats().await.unwrap().deltas_rejected;
    for delta in [&non_member, &forged, &misidentified] {
        cluster.node(0).publish_unchecked(context, delta.id, delta.encode()).await.unwrap();
    }
    let rejected = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(1).stats().await.unwrap();
        (stats.deltas_rejected >= rejected_before + 3).then_some(stats)
    })
    .await;
    assert!(rejected.is_some(), "node 1 did not reject all three: {:?}", cluster.node(1).stats().await);
    assert_eq!(cluster.fingerprint(1, context).await, before, "a rejected delta changed the state");
    for delta in [&non_member, &forged, &misidentified] {
        assert_eq!(cluster.node(1).delta(context, delta.id).await.unwrap(), None);
    }
    // The forwarder's gossip score went negative on the receiver.
    let score = eventually(CONVERGE_TIMEOUT, || async {
        let score = cluster.node(1).peer_score(cluster.node(0).peer_id()).await.unwrap()?;
        (score < 0.0).then_some(score)
    })
    .await;
    assert!(score.is_some(), "sender not penalized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_on_the_topic_changes_nothing() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    let before = cluster.fingerprint(1, context).await;
    for garbage in [vec![], vec![0u8; 3], vec![0xff; 100], vec![1u8; 100_000]] {
        cluster.node(0).publish_unchecked(context, Hash::of(&garbage), garbage).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.fingerprint(1, context).await, before);
    set(cluster.node(0), context, "after", "ok").await;
    cluster.converged(context).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delta_with_missing_parents_makes_the_receiver_fetch_them_from_the_sender() {
    // Only parent requests can repair.
    let cluster = Cluster::start_with(2, without_anti_entropy).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    let before = cluster.node(1).context(context).await.unwrap().stats;
    // A chain of three deltas by member 0 that node 0 holds (delivered to
    // it directly, so nothing is gossiped)...
    let key = member_key(&cluster, 0);
    let mut parents = cluster.node(0).context(context).await.unwrap().heads;
    let mut chain = Vec::new();
    for n in 0..3 {
        let delta = SignedDelta::sign(&key, &context, parents.clone(), Hlc::new(wall_ms(), n), Vec::new(), Vec::new());
        parents = vec![delta.id];
        cluster.node(0).deliver_unchecked(context, cluster.node(1).peer_id(), delta.encode()).await.unwrap();
        chain.push(delta);
    }
    // ...and node 1 hears of the newest only, from node 0.
    let newest = chain.last().unwrap();
    cluster.node(1).deliver_unchecked(context, cluster.node(0).peer_id(), newest.encode()).await.unwrap();
    let infos = cluster.converged(context).await;
    for delta in &chain {
        assert!(cluster.node(1).delta(context, delta.id).await.unwrap().is_some());
    }
    assert_eq!(infos[0].heads, vec![newest.id]);
    let after = infos[1].stats;
    assert!(after.parent_requests > before.parent_requests, "no parent request: {after:?}");
    assert_eq!(after.syncs_started, before.syncs_started, "anti-entropy ran: the test would prove nothing");
}

/// A member's genuine delta gets through gossip even after someone sent
/// `its id || garbage` first: gossip ids are hashes of the sealed bytes, so
/// the forgery does not occupy the genuine message's id. (Before, the id was
/// the clear prefix and the genuine delta was dropped as a duplicate.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_message_with_a_genuine_id_does_not_suppress_the_genuine_delta() {
    // Only gossip can deliver.
    let cluster = Cluster::start_with(2, without_anti_entropy).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    cluster.converged(context).await;
    let before = cluster.node(1).context(context).await.unwrap().stats;
    let heads = cluster.node(1).context(context).await.unwrap().heads;
    let genuine =
        SignedDelta::sign(&member_key(&cluster, 0), &context, heads, Hlc::new(wall_ms(), 0), Vec::new(), Vec::new());

    cluster.node(0).publish_unchecked(context, genuine.id, b"not the delta".to_vec()).await.unwrap();
    let arrived = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(1).stats().await.unwrap();
        (stats.deltas_rejected > 0).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "the forgery never reached node 1: the test would prove nothing");

    cluster.node(0).publish_unchecked(context, genuine.id, genuine.encode()).await.unwrap();
    let applied = eventually(CONVERGE_TIMEOUT, || async {
        cluster.node(1).delta(context, genuine.id).await.unwrap().map(|_| ())
    })
    .await;
    assert!(applied.is_some(), "the genuine delta was suppressed by the forgery");
    let after = cluster.node(1).context(context).await.unwrap().stats;
    assert_eq!(after.syncs_started, before.syncs_started, "anti-entropy ran: the test would prove nothing");
}
