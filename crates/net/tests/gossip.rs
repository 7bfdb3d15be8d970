//! Gossip over real loopback sockets: delivery to subscribers, publishing
//! with nobody to send to, and validation before forwarding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{LIVENESS, Node, Transport, config, node, start};
use weft_net::{NetEvent, PublishOutcome, Validation, message_id};
use weft_primitives::Hash;

const TOPIC: &str = "weft/context/test";

/// Publish until gossipsub has a subscribed peer to hand the message to
/// (the subscription may still be in flight), bounded by [`LIVENESS`].
async fn publish_until_sent(node: &Node, data: &[u8]) -> PublishOutcome {
    let deadline = tokio::time::Instant::now() + LIVENESS;
    loop {
        let outcome = node.net.publish(TOPIC, data.to_vec()).await.expect("publish");
        if outcome.was_sent() || tokio::time::Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish_reaches_the_subscriber(transport: Transport) {
    let mut a = node(1, transport).await;
    let mut b = node(2, transport).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    assert!(a.net.subscribe(TOPIC).await.unwrap());
    assert!(b.net.subscribe(TOPIC).await.unwrap());
    a.wait_subscribed(b.peer(), TOPIC).await;

    let outcome = publish_until_sent(&a, b"delta-1").await;
    assert_eq!(outcome, PublishOutcome::Sent(message_id(b"delta-1")));
    let (data, msg_id, via) = b.next_message().await;
    assert_eq!((data.as_slice(), msg_id, via), (&b"delta-1"[..], message_id(b"delta-1"), a.peer()));
    assert!(b.net.report_validation(msg_id, via, Validation::Accept).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_the_subscriber_over_tcp() {
    publish_reaches_the_subscriber(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_the_subscriber_over_quic() {
    publish_reaches_the_subscriber(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_every_subscriber_of_three() {
    let a = node(11, Transport::Tcp).await;
    let mut b = node(12, Transport::Quic).await;
    let mut c = node(13, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    a.net.dial(c.addr.clone()).await.unwrap();
    for n in [&a, &b, &c] {
        n.net.subscribe(TOPIC).await.unwrap();
    }
    // Flood publishing reaches every subscribed peer: wait until a knows both.
    common::eventually("a sees both subscriptions", || async {
        let peers = a.net.peers().await.unwrap();
        peers.len() == 2 && peers.iter().all(|p| p.topics.iter().any(|t| t == TOPIC))
    })
    .await;
    assert!(publish_until_sent(&a, b"to-all").await.was_sent());
    for n in [&mut b, &mut c] {
        let (data, _, via) = n.next_message().await;
        assert_eq!((data.as_slice(), via), (&b"to-all"[..], a.peer()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_no_subscribed_peer_says_so() {
    let a = node(21, Transport::Tcp).await;
    let b = node(22, Transport::Tcp).await;
    a.net.subscribe(TOPIC).await.unwrap();
    // Alone: nothing sent, and the caller is told, not silently dropped.
    let outcome = a.net.publish(TOPIC, b"lonely".to_vec()).await.unwrap();
    assert_eq!(outcome, PublishOutcome::NoPeers(message_id(b"lonely")));
    // Connected to a peer that is not subscribed: still nobody to send to.
    a.net.dial(b.addr.clone()).await.unwrap();
    let outcome = a.net.publish(TOPIC, b"still lonely".to_vec()).await.unwrap();
    assert!(!outcome.was_sent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_gossip_message_is_refused_before_sending() {
    let a = node(23, Transport::Tcp).await;
    let err = a.net.publish(TOPIC, vec![0; weft_primitives::encoding::FRAME_BYTES_MAX]).await.unwrap_err();
    assert!(matches!(err, weft_net::NetError::MessageTooLarge { .. }), "{err}");
}

/// a — b — c in a line (Kademlia off so a and c never meet): b rejects a's
/// first message, accepts the second. c must see the second and never the
/// first; b's score of a must have dropped below zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_message_is_not_forwarded_and_costs_the_sender() {
    let line = |seed| {
        let mut c = config(seed, Transport::Tcp);
        c.kademlia = false;
        c
    };
    let a = start(line(31), Transport::Tcp).await;
    let mut b = start(line(32), Transport::Tcp).await;
    let mut c = start(line(33), Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    c.net.dial(b.addr.clone()).await.unwrap();
    for n in [&a, &b, &c] {
        n.net.subscribe(TOPIC).await.unwrap();
    }
    // b forwards only to its mesh: wait until a and c are both in it.
    let (a_peer, c_peer) = (a.peer(), c.peer());
    common::eventually("b's mesh holds a and c", || async {
        let mesh = b.net.mesh_peers(TOPIC).await.unwrap();
        mesh.contains(&a_peer) && mesh.contains(&c_peer)
    })
    .await;

    assert!(publish_until_sent(&a, b"invalid").await.was_sent());
    let (data, msg_id, via) = b.next_message().await;
    assert_eq!((data.as_slice(), via), (&b"invalid"[..], a_peer));
    assert!(b.net.report_validation(msg_id, via, Validation::Reject).await.unwrap());

    assert!(publish_until_sent(&a, b"valid").await.was_sent());
    let (data, msg_id, via) = b.next_message().await;
    assert_eq!(data, b"valid");
    assert!(b.net.report_validation(msg_id, via, Validation::Accept).await.unwrap());

    // b forwards in order on one connection: had it forwarded "invalid", c
    // would see it before "valid".
    let (data, _, via) = c.next_message().await;
    assert_eq!((data.as_slice(), via), (&b"valid"[..], b.peer()));

    let score = b.net.peer_score(a_peer).await.unwrap().expect("a is scored");
    assert!(score < 0.0, "a's score after a rejected message: {score}");
    let c_score = b.net.peer_score(c_peer).await.unwrap().expect("c is scored");
    assert!(c_score >= 0.0, "an innocent peer keeps a non-negative score: {c_score}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_message_is_not_forwarded_and_costs_nothing() {
    let line = |seed| {
        let mut c = config(seed, Transport::Quic);
        c.kademlia = false;
        c
    };
    let a = start(line(41), Transport::Quic).await;
    let mut b = start(line(42), Transport::Quic).await;
    let mut c = start(line(43), Transport::Quic).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    c.net.dial(b.addr.clone()).await.unwrap();
    for n in [&a, &b, &c] {
        n.net.subscribe(TOPIC).await.unwrap();
    }
    let (a_peer, c_peer) = (a.peer(), c.peer());
    common::eventually("b's mesh holds a and c", || async {
        let mesh = b.net.mesh_peers(TOPIC).await.unwrap();
        mesh.contains(&a_peer) && mesh.contains(&c_peer)
    })
    .await;
    assert!(publish_until_sent(&a, b"not yet checkable").await.was_sent());
    let (_, msg_id, via) = b.next_message().await;
    assert!(b.net.report_validation(msg_id, via, Validation::Ignore).await.unwrap());
    assert!(publish_until_sent(&a, b"fine").await.was_sent());
    let (_, msg_id, via) = b.next_message().await;
    assert!(b.net.report_validation(msg_id, via, Validation::Accept).await.unwrap());
    let (data, _, via) = c.next_message().await;
    assert_eq!((data.as_slice(), via), (&b"fine"[..], b.peer()));
    let score = b.net.peer_score(a_peer).await.unwrap().expect("a is scored");
    assert!(score >= 0.0, "ignore is no penalty: {score}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_publishable_message_arrives_and_a_repeat_is_a_duplicate() {
    let a = node(51, Transport::Quic).await;
    let mut b = node(52, Transport::Quic).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    a.net.subscribe(TOPIC).await.unwrap();
    b.net.subscribe(TOPIC).await.unwrap();
    let largest: Vec<u8> = (0..weft_primitives::encoding::FRAME_BYTES_MAX - weft_net::GOSSIP_ENVELOPE_BYTES_MAX)
        .map(|i| i as u8)
        .collect();
    let outcome = publish_until_sent(&a, &largest).await;
    assert_eq!(outcome, PublishOutcome::Sent(message_id(&largest)));
    let (data, msg_id, _) = b.next_message().await;
    assert_eq!((data.len(), msg_id), (largest.len(), message_id(&largest)));
    // Same bytes, same id: gossipsub does not send them twice.
    let again = a.net.publish(TOPIC, largest).await.unwrap();
    assert_eq!(again, PublishOutcome::Duplicate(msg_id));
}

/// A consumer that never reads events must not stall the swarm: events
/// overflow the channel and the backlog, are dropped and counted, and the
/// node keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_event_consumer_never_blocks_the_swarm() {
    let mut a = node(61, Transport::Tcp).await;
    let b = node(62, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    a.net.subscribe(TOPIC).await.unwrap();
    b.net.subscribe(TOPIC).await.unwrap();
    a.wait_subscribed(b.peer(), TOPIC).await;
    // b's events are never read from here on.
    let flood = weft_net::EVENTS_MAX + weft_net::EVENT_BACKLOG_MAX + 200;
    let mut sent = 0;
    let mut i = 0u64;
    let deadline = tokio::time::Instant::now() + LIVENESS;
    while sent < flood && tokio::time::Instant::now() < deadline {
        i += 1;
        match a.net.publish(TOPIC, i.to_be_bytes().to_vec()).await.unwrap() {
            PublishOutcome::Sent(_) => sent += 1,
            // The peer's send queue is full: give it a moment to drain.
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert_eq!(sent, flood, "a could publish the flood");
    common::eventually("b counts dropped events", || async { b.net.stats().events_dropped > 0 }).await;
    assert_eq!(b.net.peers().await.unwrap().len(), 1, "b's swarm still answers");
}

/// The message id is the hash of the whole payload: the same bytes again
/// are a duplicate, while a payload that only shares a genuine message's
/// 32-byte prefix (a forgery sent first) is a message of its own and does
/// not suppress the genuine one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_identical_payloads_are_one_message() {
    let a = node(71, Transport::Tcp).await;
    let mut b = node(72, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    a.net.subscribe(TOPIC).await.unwrap();
    b.net.subscribe(TOPIC).await.unwrap();

    let delta_id = [0xd7; 32];
    let with_prefix = |ciphertext: &[u8]| [&delta_id[..], ciphertext].concat();
    let forged = with_prefix(&[1; 40]);
    let genuine = with_prefix(&[2; 57]);

    let outcome = publish_until_sent(&a, &forged).await;
    assert_eq!(outcome, PublishOutcome::Sent(Hash::of(&forged)));
    let (data, msg_id, via) = b.next_message().await;
    assert_eq!((data, msg_id), (forged.clone(), Hash::of(&forged)));
    assert!(b.net.report_validation(msg_id, via, Validation::Reject).await.unwrap());

    let outcome = a.net.publish(TOPIC, genuine.clone()).await.unwrap();
    assert_eq!(outcome, PublishOutcome::Sent(Hash::of(&genuine)));
    let (data, msg_id, _) = b.next_message().await;
    assert_eq!((data, msg_id), (genuine.clone(), Hash::of(&genuine)), "the genuine message got through");

    let again = a.net.publish(TOPIC, genuine.clone()).await.unwrap();
    assert_eq!(again, PublishOutcome::Duplicate(Hash::of(&genuine)));
}

/// Topics both nodes subscribe to in the many-topics test: over gossipsub's
/// default per-peer limit of 100, and each of the longest allowed name, so
/// the subscriptions sent on connecting (150 × 256 bytes) are far over
/// gossipsub's default 16 KiB of control data per RPC too.
const SHARED_TOPICS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_more_than_a_hundred_topics_still_gossip() {
    let a = node(31, Transport::Tcp).await;
    let mut b = node(32, Transport::Tcp).await;
    let topics: Vec<String> = (0..SHARED_TOPICS)
        .map(|n| format!("weft/context/{n:0>width$}", width = weft_net::TOPIC_BYTES_MAX - 13))
        .collect();
    assert!(topics.iter().all(|t| t.len() == weft_net::TOPIC_BYTES_MAX));
    for topic in &topics {
        assert!(a.net.subscribe(topic).await.unwrap());
        assert!(b.net.subscribe(topic).await.unwrap());
    }
    a.net.dial(b.addr.clone()).await.unwrap();
    let last = topics.last().unwrap();
    // B must have accepted A's subscriptions (with the old limit it ignored
    // every RPC of A's, this one included).
    common::eventually("b sees a in the last topic", || async {
        b.net.peers().await.unwrap().iter().any(|p| p.peer == a.peer() && p.topics.iter().any(|t| t == last))
    })
    .await;
    let deadline = tokio::time::Instant::now() + LIVENESS;
    loop {
        let outcome = a.net.publish(last, b"many".to_vec()).await.expect("publish");
        if outcome.was_sent() || tokio::time::Instant::now() > deadline {
            assert!(outcome.was_sent(), "a never had a subscribed peer for {last}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (data, _, via) = b.next_message().await;
    assert_eq!((data.as_slice(), via), (&b"many"[..], a.peer()));
}

/// Topics a peer announces at once in the overflow test: more than the
/// event channel and the swarm's backlog hold together.
const FLOOD_TOPICS: usize = weft_net::EVENTS_MAX + weft_net::EVENT_BACKLOG_MAX + 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_announcing_more_topics_than_the_event_queue_holds_is_known_in_all_of_them() {
    let mut a = node(35, Transport::Tcp).await;
    let b = node(36, Transport::Tcp).await;
    let topics: BTreeSet<String> = (0..FLOOD_TOPICS).map(|n| format!("flood-{n}")).collect();
    for topic in &topics {
        assert!(b.net.subscribe(topic).await.unwrap());
    }
    // A reads no event until gossipsub holds all of B's subscriptions (they
    // arrive in one RPC on connecting) and they overflowed A's event queue.
    a.net.dial(b.addr.clone()).await.unwrap();
    common::eventually("a's swarm knows every topic of b", || async {
        a.net.peers().await.unwrap().iter().any(|p| p.peer == b.peer() && p.topics.len() == FLOOD_TOPICS)
    })
    .await;
    common::eventually("a's event queue overflowed", || async { a.net.stats().subscription_events_coalesced > 0 })
        .await;
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut snapshots = 0;
    let outcome = tokio::time::timeout(LIVENESS, async {
        while known.len() < FLOOD_TOPICS || snapshots == 0 {
            match a.events.recv().await.expect("event stream open") {
                NetEvent::Subscribed { peer, topic } if peer == b.peer() => {
                    known.insert(topic);
                }
                NetEvent::Unsubscribed { peer, topic } if peer == b.peer() => {
                    known.remove(&topic);
                }
                NetEvent::PeerTopics { peer, topics } if peer == b.peer() => {
                    snapshots += 1;
                    known = topics.into_iter().collect();
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "a learned {} of b's {FLOOD_TOPICS} topics from its events ({snapshots} snapshots)",
        known.len()
    );
    assert_eq!(known, topics);
}
