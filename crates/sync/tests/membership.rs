//! Membership carried by deltas: each rule of `weft_sync::membership`, on
//! the receive path, the local write path and across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, START_MS, key, params, peer};
use weft_dag::DeltaId;
use weft_primitives::kv::WriteSet;
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_state::root_id;
use weft_sync::protocol::SyncMessage;
use weft_sync::{
    Config, DeltaRejection, Event, Input, MEMBERSHIP_EVENT_KIND, MembershipChange, MembershipError, MemoryStore,
    Offense, Output, PreparedWrite, Replica, SignedDelta, Verdict, WriteError,
};

fn genesis() -> Hash {
    Hash::of(b"test genesis")
}

fn pk(i: usize) -> PublicKey {
    key(i).public_key()
}

fn add(i: usize) -> MembershipChange {
    MembershipChange::Add { member: pk(i), invitation: Hash::of(&[i as u8]) }
}

fn leave(i: usize) -> MembershipChange {
    MembershipChange::Leave { member: pk(i) }
}

/// A delta by `signer` on `parents` with one plain event and `extra` events.
fn delta_by(signer: &SigningKey, parents: Vec<DeltaId>, hlc: Hlc, extra: Vec<Event>) -> SignedDelta {
    let mut events = vec![Event { kind: "Ping".into(), data: b"{}".to_vec(), handler: None }];
    events.extend(extra);
    SignedDelta::sign(signer, &common::context(), parents, hlc, Vec::new(), events)
}

fn gossip(cluster: &mut Cluster, from: usize, to: usize, bytes: &[u8]) -> Vec<Output> {
    cluster.gossip(from, to, bytes).outputs.into_iter().map(|(_, o)| o).collect()
}

fn rejection(outputs: &[Output]) -> Option<DeltaRejection> {
    outputs.iter().find_map(|o| match o {
        Output::Penalize { offense: Offense::BadDelta(rejection), .. } => Some(rejection.clone()),
        _ => None,
    })
}

fn applied_ids(outputs: &[Output]) -> Vec<DeltaId> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Applied { deltas } => Some(deltas.iter().map(|d| d.id)),
            _ => None,
        })
        .flatten()
        .collect()
}

fn members_changed(outputs: &[Output]) -> Vec<(Vec<PublicKey>, Vec<PublicKey>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::MembersChanged { added, left } => Some((added.clone(), left.clone())),
            _ => None,
        })
        .collect()
}

fn members(replica: &Replica<MemoryStore>) -> Vec<PublicKey> {
    replica.members().copied().collect()
}

fn sorted(mut keys: Vec<PublicKey>) -> Vec<PublicKey> {
    keys.sort();
    keys
}

#[test]
fn non_members_delta_with_applied_parents_is_rejected_and_penalized_state_unchanged() {
    let mut cluster = Cluster::with_members(3, 2, Config::default());
    let (head, _) = cluster.write(0, b"k", b"v");
    let before = (cluster.replicas[0].heads(), cluster.replicas[0].root_hash(), members(&cluster.replicas[0]));
    for parents in [vec![genesis()], vec![head]] {
        let delta = delta_by(&key(2), parents, Hlc::new(START_MS + 5, 0), Vec::new());
        let outputs = gossip(&mut cluster, 2, 0, &delta.encode());
        assert_eq!(rejection(&outputs), Some(DeltaRejection::NonMember { author: pk(2) }));
        assert!(outputs.contains(&Output::GossipVerdict { message: 0, verdict: Verdict::Reject }));
        let after = (cluster.replicas[0].heads(), cluster.replicas[0].root_hash(), members(&cluster.replicas[0]));
        assert_eq!(after, before, "state unchanged");
        assert!(!cluster.replicas[0].dag().has(&delta.id), "the DAG never saw it");
    }
    assert_eq!(cluster.replicas[0].stats().unvetted, 0);
}

#[test]
fn local_write_by_a_non_member_is_refused() {
    let mut cluster = Cluster::with_members(3, 2, Config::default());
    let (outputs, published) = cluster.write_events(2, vec![Event { kind: "X".into(), data: vec![], handler: None }]);
    assert!(published.is_none());
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteRejected { reason: WriteError::NotMember, .. })));
    assert!(!cluster.replicas[2].is_member(&pk(2)));
}

#[test]
fn membership_write_with_no_actions_commits_and_applies_locally() {
    let mut cluster = Cluster::with_members(3, 2, Config::default());
    let (outputs, published) = cluster.write_events(0, vec![Event::membership(add(2))]);
    let (id, bytes) = published.expect("committed");
    let delta = SignedDelta::decode(&bytes).unwrap();
    assert!(delta.actions.is_empty());
    assert_eq!(delta.events[0].kind, MEMBERSHIP_EVENT_KIND);
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteCommitted { id: i, .. } if *i == id)));
    assert_eq!(members_changed(&outputs), vec![(vec![pk(2)], vec![])]);
    assert!(cluster.replicas[0].is_member(&pk(2)));
    assert_eq!(cluster.replicas[0].member_set().invitation(&pk(2)), Some(Hash::of(&[2])));

    // A write built by hand, as the node does: no actions, one event.
    let now = cluster.now + 1;
    let base = cluster.replicas[0].write_base(now).unwrap();
    let write = PreparedWrite {
        token: 99,
        base_version: base.version,
        hlc: base.start_hlc,
        actions: Vec::new(),
        events: vec![Event::membership(add(3))],
        writes: WriteSet::default(),
        root_hash: cluster.replicas[0].root_hash(),
        last_hlc: None,
    };
    let root = cluster.replicas[0].root_hash();
    let outputs = cluster.replicas[0].handle(Input::LocalWrite(write), now);
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteCommitted { token: 99, .. })), "{outputs:?}");
    assert!(cluster.replicas[0].is_member(&pk(3)));
    assert_eq!(cluster.replicas[0].root_hash(), root, "no actions, same state");

    // Peers apply the change too.
    let outputs = gossip(&mut cluster, 0, 1, &bytes);
    assert_eq!(applied_ids(&outputs), vec![id]);
    assert_eq!(members_changed(&outputs), vec![(vec![pk(2)], vec![])]);
    assert!(cluster.replicas[1].is_member(&pk(2)));
}

#[test]
fn joiners_delta_arriving_before_its_add_is_buffered_then_applied() {
    // Not connected: nothing is fetched behind the test's back.
    let mut cluster = Cluster::with_members(3, 2, Config::default());
    let (add_id, add_bytes) = cluster.change(0, add(2));
    let outputs = gossip(&mut cluster, 0, 2, &add_bytes);
    assert_eq!(members_changed(&outputs), vec![(vec![pk(2)], vec![])], "the joiner learns it is in");
    let (write_id, write_bytes) = cluster.write(2, b"joiner", b"hello");

    // Replica 1 gets the joiner's write first: parents missing, author not
    // a member yet — buffered, not judged, nobody penalized.
    let outputs = gossip(&mut cluster, 2, 1, &write_bytes);
    assert_eq!(rejection(&outputs), None, "{outputs:?}");
    assert!(outputs.contains(&Output::GossipVerdict { message: 0, verdict: Verdict::Accept }));
    assert!(applied_ids(&outputs).is_empty());
    assert!(cluster.replicas[1].dag().get_pending(&write_id).is_some());
    assert_eq!(cluster.replicas[1].stats().unvetted, 1);
    assert!(!cluster.replicas[1].is_member(&pk(2)));

    // The Add arrives: both apply, in causal order.
    let outputs = gossip(&mut cluster, 0, 1, &add_bytes);
    assert_eq!(applied_ids(&outputs), vec![add_id, write_id]);
    assert_eq!(members_changed(&outputs), vec![(vec![pk(2)], vec![])]);
    gossip(&mut cluster, 2, 0, &write_bytes);
    for i in [0, 1] {
        assert!(cluster.same(i, 2), "replica {i} converged with the joiner");
        assert_eq!(members(&cluster.replicas[i]), members(&cluster.replicas[2]));
    }
}

#[test]
fn joiners_delta_before_its_add_fetches_the_add_from_the_sender() {
    let mut cluster = Cluster::with_members(3, 2, Config::default());
    let (_, add_bytes) = cluster.change(0, add(2));
    gossip(&mut cluster, 0, 2, &add_bytes);
    let (write_id, write_bytes) = cluster.write(2, b"joiner", b"hello");
    let traffic = cluster.gossip(2, 1, &write_bytes);
    assert!(traffic.penalties().is_empty());
    assert!(!cluster.replicas[1].dag().is_applied(&write_id));
    // Replica 1 connects to the joiner only: it asks it for the missing Add.
    let traffic = cluster.input(1, Input::PeerUp { peer: peer(2) });
    assert!(traffic.penalties().is_empty());
    assert!(traffic.messages_from(1).iter().any(|m| matches!(m, SyncMessage::GetDeltas(_))));
    assert!(cluster.replicas[1].dag().is_applied(&write_id));
    assert!(cluster.replicas[1].is_member(&pk(2)));
    assert!(cluster.same(1, 2));
}

#[test]
fn leave_by_someone_else_refuses_the_delta() {
    let mut cluster = Cluster::with_members(3, 3, Config::default());
    let before = (cluster.replicas[0].heads(), cluster.replicas[0].root_hash(), members(&cluster.replicas[0]));
    // Received: applied parents, or a missing one (the rule does not depend
    // on the causal point, so it is refused at once either way).
    for parents in [vec![genesis()], vec![Hash::of(b"unseen parent")]] {
        let delta = delta_by(&key(1), parents, Hlc::new(START_MS, 0), vec![Event::membership(leave(0))]);
        let outputs = gossip(&mut cluster, 1, 0, &delta.encode());
        assert_eq!(rejection(&outputs), Some(DeltaRejection::LeaveOfOther { author: pk(1), member: pk(0) }));
        let after = (cluster.replicas[0].heads(), cluster.replicas[0].root_hash(), members(&cluster.replicas[0]));
        assert_eq!(after, before, "state untouched");
        assert!(!cluster.replicas[0].dag().has(&delta.id));
    }
    // Written locally: refused before anything is committed.
    let (outputs, published) = cluster.write_events(1, vec![Event::membership(leave(0))]);
    assert!(published.is_none());
    let expected = WriteError::Membership(MembershipError::LeaveOfOther { author: pk(1), member: pk(0) });
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteRejected { reason, .. } if *reason == expected)));
    assert_eq!(cluster.replicas[1].applied_count() as usize, 0);
    assert_eq!(members(&cluster.replicas[1]).len(), 3);
}

#[test]
fn malformed_membership_event_refuses_the_delta() {
    let mut cluster = Cluster::with_members(2, 2, Config::default());
    let bad = Event { kind: MEMBERSHIP_EVENT_KIND.into(), data: vec![0, 1, 2], handler: None };
    let delta = delta_by(&key(1), vec![genesis()], Hlc::new(START_MS, 0), vec![bad.clone()]);
    let outputs = gossip(&mut cluster, 1, 0, &delta.encode());
    assert!(matches!(rejection(&outputs), Some(DeltaRejection::MalformedMembership { index: 1, .. })));
    assert!(cluster.replicas[0].applied_count() == 0);
    let (outputs, published) = cluster.write_events(0, vec![bad]);
    assert!(published.is_none());
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::WriteRejected { reason: WriteError::Membership(MembershipError::Malformed { .. }), .. }
    )));
}

#[test]
fn after_leave_the_leavers_later_deltas_are_rejected() {
    let mut cluster = Cluster::with_members(3, 3, Config::default());
    let (leave_id, leave_bytes) = cluster.change(1, leave(1));
    assert!(!cluster.replicas[1].is_member(&pk(1)));
    let (outputs, _) = cluster.write_events(1, vec![Event { kind: "X".into(), data: vec![], handler: None }]);
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteRejected { reason: WriteError::NotMember, .. })));

    // A later delta signed by the leaver anyway (a forged or stale client).
    let later = delta_by(&key(1), vec![leave_id], Hlc::new(START_MS + 10, 0), Vec::new());

    // Replica 0 has the Leave: causal point known, refused at once.
    let outputs = gossip(&mut cluster, 1, 0, &leave_bytes);
    assert_eq!(members_changed(&outputs), vec![(vec![], vec![pk(1)])]);
    let outputs = gossip(&mut cluster, 1, 0, &later.encode());
    assert_eq!(rejection(&outputs), Some(DeltaRejection::NonMember { author: pk(1) }));

    // Replica 2 gets the later delta first: the leaver is still a member
    // there, the parent is missing, so it waits; once the Leave applies the
    // delta is refused for good (non-transient, never retried).
    let outputs = gossip(&mut cluster, 1, 2, &later.encode());
    assert_eq!(rejection(&outputs), None);
    let outputs = gossip(&mut cluster, 1, 2, &leave_bytes);
    assert_eq!(applied_ids(&outputs), vec![leave_id]);
    assert!(!cluster.replicas[2].dag().is_applied(&later.id));
    assert_eq!(cluster.replicas[2].stats().apply_failures, 1);
    cluster.advance(Config::default().pending_sweep_ms * 3);
    assert!(!cluster.replicas[2].dag().is_applied(&later.id), "never applied by a retry");
    assert_eq!(cluster.replicas[2].heads(), vec![leave_id]);
    assert!(cluster.same(0, 2));
    assert_eq!(members(&cluster.replicas[0]), members(&cluster.replicas[2]));
    // Delivered again: a free duplicate, not a second judgement.
    let outputs = gossip(&mut cluster, 1, 2, &later.encode());
    assert!(outputs.contains(&Output::GossipVerdict { message: 0, verdict: Verdict::Ignore }));
}

#[test]
fn restart_rebuilds_the_member_set() {
    // Replica 0 alone founds the context; 2 and 3 are admitted, 3 leaves.
    let mut cluster = Cluster::with_members(1, 1, Config::default());
    cluster.change(0, add(2));
    let (add3, _) = cluster.change(0, add(3));
    let leave3 = delta_by(&key(3), vec![add3], Hlc::new(cluster.now + 1, 0), vec![Event::membership(leave(3))]);
    gossip(&mut cluster, 3, 0, &leave3.encode());
    cluster.write(0, b"k", b"v");
    let replica = &cluster.replicas[0];
    let expected = sorted(vec![pk(0), pk(2)]);
    assert_eq!(members(replica), expected);
    let heads = replica.heads();
    let invitation = replica.member_set().invitation(&pk(2));

    let store = cluster.replicas.remove(0).into_store();
    let mut restarted = Replica::new(params(0, 1, Config::default(), store), cluster.now).unwrap();
    assert_eq!(members(&restarted), expected);
    assert_eq!(restarted.heads(), heads);
    assert_eq!(restarted.member_set().invitation(&pk(2)), invitation);
    assert!(!restarted.is_member(&pk(3)));
    let outputs = restarted.handle(Input::Tick, cluster.now + 1);
    assert!(members_changed(&outputs).is_empty(), "restoring is not news");
}

#[test]
fn restart_keeps_a_joiners_buffered_delta_until_its_add_arrives() {
    let mut cluster = Cluster::with_members(3, 2, Config::default());
    let (add_id, add_bytes) = cluster.change(0, add(2));
    gossip(&mut cluster, 0, 2, &add_bytes);
    let (write_id, write_bytes) = cluster.write(2, b"joiner", b"hello");
    gossip(&mut cluster, 2, 1, &write_bytes);
    assert_eq!(cluster.replicas[1].store().pending_len(), 1);

    let store = std::mem::replace(
        &mut cluster.replicas[1],
        Replica::new(params(1, 2, Config::default(), MemoryStore::new()), START_MS).unwrap(),
    )
    .into_store();
    cluster.replicas[1] = Replica::new(params(1, 2, Config::default(), store), cluster.now).unwrap();
    assert!(cluster.replicas[1].dag().get_pending(&write_id).is_some(), "buffered again");
    let outputs = gossip(&mut cluster, 0, 1, &add_bytes);
    assert_eq!(applied_ids(&outputs), vec![add_id, write_id]);
    assert!(cluster.same(1, 2));
}

#[test]
fn a_joiner_admits_another_member() {
    let mut cluster = Cluster::with_members(4, 1, Config::default());
    let (_, add2) = cluster.change(0, add(2));
    gossip(&mut cluster, 0, 2, &add2);
    let (_, add3) = cluster.change(2, add(3));
    let (w, write3) = {
        gossip(&mut cluster, 2, 3, &add2);
        gossip(&mut cluster, 2, 3, &add3);
        cluster.write(3, b"k", b"v")
    };
    // Replica 1 sees everything backwards: each waits for its parent.
    for bytes in [&write3, &add3, &add2] {
        let outputs = gossip(&mut cluster, 3, 1, bytes);
        assert_eq!(rejection(&outputs), None);
    }
    assert!(cluster.replicas[1].dag().is_applied(&w));
    assert_eq!(members(&cluster.replicas[1]), sorted(vec![pk(0), pk(2), pk(3)]));
    assert!(cluster.same(1, 3));
}

#[test]
fn a_member_that_left_can_be_admitted_again() {
    let mut cluster = Cluster::with_members(2, 2, Config::default());
    let (_, leave_bytes) = cluster.change(1, leave(1));
    gossip(&mut cluster, 1, 0, &leave_bytes);
    let (_, readd) = cluster.change(0, add(1));
    let outputs = gossip(&mut cluster, 0, 1, &readd);
    assert_eq!(members_changed(&outputs), vec![(vec![pk(1)], vec![])]);
    let (id, bytes) = cluster.write(1, b"back", b"again");
    gossip(&mut cluster, 1, 0, &bytes);
    assert!(cluster.replicas[0].dag().is_applied(&id));
    assert!(cluster.same(0, 1));
}

#[test]
fn local_state_write_after_joining_reaches_the_state() {
    let mut cluster = Cluster::with_members(2, 1, Config::default());
    let (_, add_bytes) = cluster.change(0, add(1));
    gossip(&mut cluster, 0, 1, &add_bytes);
    let write = cluster.replicas[1]
        .prepare_write(1, cluster.now, |txn| {
            txn.map_insert(root_id(), b"k", b"v")?;
            Ok(vec![Event::membership(leave(1))])
        })
        .unwrap();
    // Actions and a membership change in one delta: both apply.
    let outputs = cluster.replicas[1].handle(Input::LocalWrite(write), cluster.now);
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteCommitted { .. })), "{outputs:?}");
    assert!(!cluster.replicas[1].is_member(&pk(1)));
    assert_eq!(members_changed(&outputs), vec![(vec![], vec![pk(1)])]);
}

#[test]
fn joiners_write_with_more_heads_than_parents_keeps_its_admission_in_the_causal_past() {
    let config = Config::default();
    let bound = config.dag_limits.parents_max;
    let mut cluster = Cluster::with_members(3, 1, config);
    let now = cluster.now;
    // Many concurrent founder deltas: the joiner will see more heads than a
    // delta may name.
    let mut history: Vec<SignedDelta> =
        (0..bound as u32 + 6).map(|i| delta_by(&key(0), vec![genesis()], Hlc::new(now, i), Vec::new())).collect();
    let add_delta = delta_by(&key(0), vec![genesis()], Hlc::new(now, 1_000), vec![Event::membership(add(1))]);
    // A founder delta on top of the Add whose id sorts past the bound: the
    // Add is then covered only by a head that truncation would drop.
    let mut others: Vec<DeltaId> = history.iter().map(|d| d.id).collect();
    others.sort();
    let on_top = (0..)
        .map(|n| delta_by(&key(0), vec![add_delta.id], Hlc::new(now, 2_000 + n), Vec::new()))
        .find(|d| d.id > others[bound - 1])
        .unwrap();
    history.push(add_delta.clone());
    history.push(on_top.clone());
    for delta in &history {
        let outputs = gossip(&mut cluster, 0, 1, &delta.encode());
        assert_eq!(rejection(&outputs), None);
    }
    assert!(cluster.replicas[1].is_member(&pk(1)));
    assert!(cluster.replicas[1].heads().len() > bound);
    let (write_id, write_bytes) = cluster.write(1, b"joiner", b"hello");
    let written = SignedDelta::decode(&write_bytes).unwrap();
    assert_eq!(written.parents.len(), bound);
    assert!(written.parents.contains(&on_top.id), "the head covering the admission is kept");
    // A replica that has exactly the write's causal past accepts it.
    let mut ancestry = vec![add_delta, on_top];
    ancestry.extend(history.iter().filter(|d| written.parents.contains(&d.id)).cloned());
    for delta in &ancestry {
        gossip(&mut cluster, 0, 2, &delta.encode());
    }
    let outputs = gossip(&mut cluster, 1, 2, &write_bytes);
    assert_eq!(rejection(&outputs), None, "{outputs:?}");
    assert!(cluster.replicas[2].dag().is_applied(&write_id));
}

#[test]
fn the_head_covering_an_admission_is_found_across_pruned_history() {
    // As above, with the path from the covering head down to the Add pruned
    // from memory: the walk must cross pruned deltas, which keep their links.
    let config = Config { history_kept_max: Some(1), ..Config::default() };
    let bound = config.dag_limits.parents_max;
    let sweep_ms = config.pending_sweep_ms;
    let mut cluster = Cluster::with_members(2, 1, config);
    let now = cluster.now;
    let mut history: Vec<SignedDelta> =
        (0..bound as u32 + 6).map(|i| delta_by(&key(0), vec![genesis()], Hlc::new(now, i), Vec::new())).collect();
    let add_delta = delta_by(&key(0), vec![genesis()], Hlc::new(now, 1_000), vec![Event::membership(add(1))]);
    let between = delta_by(&key(0), vec![add_delta.id], Hlc::new(now, 1_500), Vec::new());
    let mut others: Vec<DeltaId> = history.iter().map(|d| d.id).collect();
    others.sort();
    let on_top = (0..)
        .map(|n| delta_by(&key(0), vec![between.id], Hlc::new(now, 2_000 + n), Vec::new()))
        .find(|d| d.id > others[bound - 1])
        .unwrap();
    history.extend([add_delta.clone(), between.clone(), on_top.clone()]);
    for delta in &history {
        let outputs = gossip(&mut cluster, 0, 1, &delta.encode());
        assert_eq!(rejection(&outputs), None);
    }
    // A sweep prunes everything below the last applied delta (`on_top`).
    cluster.replicas[1].handle(Input::Tick, now + sweep_ms);
    let dag = cluster.replicas[1].dag();
    assert!(dag.is_pruned(&between.id) && dag.is_pruned(&add_delta.id), "the path to the Add is pruned");
    assert!(cluster.replicas[1].heads().len() > bound);
    let (_, write_bytes) = cluster.write(1, b"joiner", b"hello");
    let written = SignedDelta::decode(&write_bytes).unwrap();
    assert_eq!(written.parents.len(), bound);
    assert!(written.parents.contains(&on_top.id), "the head covering the admission is kept");
}

#[test]
fn non_members_deltas_waiting_for_parents_are_bounded() {
    use weft_sync::replica::UNVETTED_PENDING_MAX;
    let mut cluster = Cluster::with_members(2, 1, Config::default());
    let outsider = SigningKey::from_seed([77; 32]);
    for i in 0..=UNVETTED_PENDING_MAX as u32 {
        let parents = vec![Hash::of(&i.to_le_bytes())];
        let delta = delta_by(&outsider, parents, Hlc::new(START_MS, i), Vec::new());
        let outputs = cluster.replicas[0]
            .handle(Input::GossipReceived { from: peer(1), message: 1, bytes: delta.encode() }, cluster.now);
        assert_eq!(rejection(&outputs), None, "no penalty: the author may be admitted later");
        let verdict = if (i as usize) < UNVETTED_PENDING_MAX { Verdict::Accept } else { Verdict::Ignore };
        assert!(outputs.contains(&Output::GossipVerdict { message: 1, verdict }), "delta {i}: {outputs:?}");
    }
    assert_eq!(cluster.replicas[0].dag().pending_count(), UNVETTED_PENDING_MAX);
    assert_eq!(cluster.replicas[0].stats().unvetted, UNVETTED_PENDING_MAX as u64);
    // Members' deltas still get in.
    let member = delta_by(&key(0), vec![Hash::of(b"missing")], Hlc::new(START_MS, 0), Vec::new());
    let outputs = cluster.replicas[0]
        .handle(Input::GossipReceived { from: peer(1), message: 2, bytes: member.encode() }, cluster.now);
    assert!(outputs.contains(&Output::GossipVerdict { message: 2, verdict: Verdict::Accept }));
}
