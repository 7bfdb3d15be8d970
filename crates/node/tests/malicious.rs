//! docs/testing.md S4 at the node: a hostile member's node sends one bad
//! delta of each kind. Each is refused under its own reason (the node's
//! per-reason counter, `weft_deltas_rejected_by_reason_total` in
//! `/metrics`), and only under it; the root hash, heads and applied count do
//! not move and nothing is stored; every one costs the sender a penalty;
//! and honest writes carry on afterwards. Gossip that does not even open
//! under the context's key is sent by a stranger over real libp2p.
//!
//! The other deltas enter through `deliver_unchecked`, the node's receive
//! path without the gossip transport: gossipsub graylists a sender after
//! three invalid messages, so one sender could not show a dozen reasons over
//! the wire. The wire path itself is covered by `verification.rs` (bad
//! signature, wrong id, non-member, forged message id over real gossip).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{CONVERGE_TIMEOUT, Cluster, eventually, member_key, set, wall_ms};
use weft_membership::gossip_key_tag;
use weft_net::{NetConfig, NetEvent, Network};
use weft_node::REJECTION_REASONS;
use weft_node::records::topic_of;
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_sync::delta::EVENTS_PER_DELTA_MAX;
use weft_sync::{DELTA_BYTES_MAX, Event, MembershipChange, SignedDelta};

fn reason_index(reason: &str) -> usize {
    REJECTION_REASONS.iter().position(|r| *r == reason).unwrap()
}

/// Wait until node 1 counted one more rejection for `reason` than
/// `before`, and check that no other reason moved.
async fn rejected_once_for(cluster: &Cluster, before: &[u64], reason: &str) -> Vec<u64> {
    let index = reason_index(reason);
    let counted = eventually(CONVERGE_TIMEOUT, || async {
        let now = cluster.node(1).stats().await.unwrap().deltas_rejected_by;
        (now[index] > before[index]).then_some(now)
    })
    .await;
    let Some(now) = counted else { panic!("node 1 never refused the {reason} case") };
    for (i, (was, is)) in before.iter().zip(now.iter()).enumerate() {
        let expected = if i == index { was + 1 } else { *was };
        assert_eq!(*is, expected, "case {reason}: counter {} moved wrongly", REJECTION_REASONS[i]);
    }
    now.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_malicious_delta_is_refused_under_its_own_reason_and_changes_nothing() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    set(cluster.node(0), context, "a", "1").await;
    cluster.converged(context).await;
    let before = cluster.fingerprint(1, context).await;
    let heads = before.1.clone();
    let member = member_key(&cluster, 0);
    let other_member = cluster.node(1).identity();
    let stranger = SigningKey::from_seed([99; 32]);
    let sign = |key: &SigningKey, parents: Vec<Hash>, hlc: Hlc, events: Vec<Event>| {
        SignedDelta::sign(key, &context, parents, hlc, Vec::new(), events)
    };
    let hlc = |n: u32| Hlc::new(wall_ms(), n);

    let mut cases: Vec<(&str, Vec<u8>, Option<Hash>)> = Vec::new();
    let mut forged = sign(&member, heads.clone(), hlc(1), Vec::new());
    forged.signature = stranger.sign(forged.id.as_bytes());
    cases.push(("bad_signature", forged.encode(), Some(forged.id)));
    let mut misidentified = sign(&member, heads.clone(), hlc(2), Vec::new());
    misidentified.hlc = hlc(3);
    cases.push(("id_mismatch", misidentified.encode(), Some(misidentified.id)));
    let other_context = SignedDelta::sign(&member, &Hash([1; 32]), heads.clone(), hlc(4), Vec::new(), Vec::new());
    cases.push(("id_mismatch", other_context.encode(), Some(other_context.id)));
    let non_member = sign(&stranger, heads.clone(), hlc(5), Vec::new());
    cases.push(("non_member", non_member.encode(), Some(non_member.id)));
    let orphan = sign(&member, Vec::new(), hlc(6), Vec::new());
    cases.push(("no_parents", orphan.encode(), Some(orphan.id)));
    let twice = sign(&member, vec![heads[0], heads[0]], hlc(7), Vec::new());
    cases.push(("duplicate_parent", twice.encode(), Some(twice.id)));
    // A delta naming itself: its id cannot be its content hash (that would
    // be a fixed point of BLAKE3), so the id check, which runs first, refuses
    // it.
    let mut cyclic = sign(&member, heads.clone(), hlc(8), Vec::new());
    cyclic.parents.push(cyclic.id);
    cases.push(("id_mismatch", cyclic.encode(), Some(cyclic.id)));
    let ahead = sign(&member, heads.clone(), Hlc::new(wall_ms() + 3_600_000, 0), Vec::new());
    cases.push(("too_far_in_future", ahead.encode(), Some(ahead.id)));
    let frozen_clock = sign(&member, heads.clone(), Hlc::new(wall_ms(), u32::MAX), Vec::new());
    cases.push(("clock_counter", frozen_clock.encode(), Some(frozen_clock.id)));
    let event = Event { kind: "e".into(), data: Vec::new(), handler: None };
    let noisy = sign(&member, heads.clone(), hlc(9), vec![event; EVENTS_PER_DELTA_MAX + 1]);
    cases.push(("too_many_events", noisy.encode(), Some(noisy.id)));
    let eviction = sign(
        &member,
        heads.clone(),
        hlc(10),
        vec![Event::membership(MembershipChange::Leave { member: other_member })],
    );
    cases.push(("leave_of_other", eviction.encode(), Some(eviction.id)));
    let bad_change = Event { kind: weft_sync::MEMBERSHIP_EVENT_KIND.into(), data: vec![0xff; 9], handler: None };
    let garbled = sign(&member, heads.clone(), hlc(11), vec![bad_change]);
    cases.push(("malformed_membership", garbled.encode(), Some(garbled.id)));
    let valid = sign(&member, heads.clone(), hlc(12), Vec::new()).encode();
    cases.push(("malformed", valid[..valid.len() - 1].to_vec(), None));
    let mut unknown_tag = valid.clone();
    unknown_tag.push(0);
    cases.push(("malformed", unknown_tag, None));
    // A 4 GiB length prefix inside the delta.
    cases.push(("malformed", [valid[..32].to_vec(), u32::MAX.to_le_bytes().to_vec()].concat(), None));
    cases.push(("oversize", vec![0; DELTA_BYTES_MAX + 1], None));

    let penalties_before = cluster.node(1).stats().await.unwrap().penalties;
    let mut counts = cluster.node(1).stats().await.unwrap().deltas_rejected_by.to_vec();
    for (reason, bytes, id) in &cases {
        cluster.node(1).deliver_unchecked(context, cluster.node(0).peer_id(), bytes.clone()).await.unwrap();
        counts = rejected_once_for(&cluster, &counts, reason).await;
        assert_eq!(cluster.fingerprint(1, context).await, before, "case {reason} changed node 1");
        if let Some(id) = id {
            assert_eq!(cluster.node(1).delta(context, *id).await.unwrap(), None, "case {reason} was stored");
        }
    }
    let penalties = cluster.node(1).stats().await.unwrap().penalties;
    assert_eq!(penalties, penalties_before + cases.len() as u64, "one penalty per bad delta");

    // Gossip that names the context's key but does not open under it, from
    // a stranger on the topic, over real libp2p. The stranger learns the
    // key's tag (it is in clear) from the members' own gossip first; a tag
    // it made up would only be ignored as a key not held yet.
    let (outsider, mut events) = Network::spawn(NetConfig::loopback([88; 32])).await.unwrap();
    outsider.dial(cluster.node(1).listen_addrs().await.unwrap()[0].clone()).await.unwrap();
    outsider.subscribe(&topic_of(&context)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    let tag = loop {
        n += 1;
        set(cluster.node(1), context, &format!("seen-{n}"), "v").await;
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match events.recv().await {
                    Some(NetEvent::Message { data, .. }) => break gossip_key_tag(&data),
                    Some(_) => {}
                    None => break None,
                }
            }
        })
        .await;
        if let Ok(Some(tag)) = heard {
            break tag;
        }
        assert!(Instant::now() < deadline, "the stranger never heard the members' gossip");
    };
    cluster.converged(context).await;
    let before = cluster.fingerprint(1, context).await;
    let counts = cluster.node(1).stats().await.unwrap().deltas_rejected_by.to_vec();
    let unopened = reason_index("unopened_gossip");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0u32;
    loop {
        n += 1;
        let garbage = [tag.as_slice(), &[7; 32], &n.to_le_bytes(), &[9; 60]].concat();
        let _ = outsider.publish(&topic_of(&context), garbage).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = cluster.node(1).stats().await.unwrap().deltas_rejected_by;
        if now[unopened] > counts[unopened] {
            let others_moved = (0..now.len()).any(|i| i != unopened && now[i] != counts[i]);
            assert!(!others_moved, "unopened gossip was counted under another reason");
            break;
        }
        assert!(Instant::now() < deadline, "node 1 never got the stranger's gossip");
    }
    assert_eq!(cluster.fingerprint(1, context).await, before, "unopened gossip changed node 1");

    // The honest nodes are unaffected.
    set(cluster.node(0), context, "after", "ok").await;
    set(cluster.node(1), context, "also", "ok").await;
    cluster.converged(context).await;
}
