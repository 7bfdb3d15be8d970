//! The repair paths: parent requests (from the sender, then from others,
//! recursive, escalating), pruned history, restarts, stale writes, storage
//! faults, and divergence detection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, START_MS, index, key, params, peer};
use weft_primitives::kv::WriteSet;
use weft_primitives::{Hash, Hlc};
use weft_state::root_id;
use weft_sync::protocol::SyncMessage;
use weft_sync::{
    AppliedRow, Config, Event, ForgetStep, ForgottenHistory, Input, MemoryStore, Output, Replica, ReplicaStore,
    SignedDelta, StoreError, WriteError,
};

/// Default tunables, but no periodic anti-entropy getting in the way of
/// what a test provokes.
fn quiet() -> Config {
    Config { sync_frequency_ms: 3_600_000, ..Config::default() }
}

fn requested_ids(messages: &[SyncMessage]) -> Vec<Vec<Hash>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SyncMessage::GetDeltas(request) => Some(request.ids.clone()),
            _ => None,
        })
        .collect()
}

fn sync_requests(messages: &[SyncMessage]) -> usize {
    messages.iter().filter(|m| matches!(m, SyncMessage::SyncRequest(_))).count()
}

#[test]
fn missing_parents_are_requested_from_the_sender_at_once() {
    let mut cluster = Cluster::connected(2, quiet());
    let (d1, _) = cluster.write(0, b"a", b"1");
    let (d2, _) = cluster.write(0, b"b", b"2");
    let (d3, d3_bytes) = cluster.write(0, b"c", b"3");
    let outputs = cluster.replicas[1]
        .handle(Input::GossipReceived { from: peer(0), message: 1, bytes: d3_bytes.clone() }, cluster.now);
    // In the same step: a request to the sender, for the missing parent.
    let request = outputs.iter().find_map(|o| match o {
        Output::Send { to, bytes, .. } if *to == peer(0) => SyncMessage::decode(bytes).ok(),
        _ => None,
    });
    assert!(matches!(&request, Some(SyncMessage::GetDeltas(r)) if r.ids == vec![d2]), "{request:?}");
    // Routed this time: one request per missing generation, then the
    // cascade applies everything in causal order.
    let mut cluster = Cluster::connected(2, quiet());
    let (c1, _) = cluster.write(0, b"a", b"1");
    let (c2, _) = cluster.write(0, b"b", b"2");
    let (c3, c3_bytes) = cluster.write(0, b"c", b"3");
    let traffic = cluster.gossip(0, 1, &c3_bytes);
    assert_eq!(requested_ids(&traffic.messages_from(1)), vec![vec![c2], vec![c1]]);
    assert!(cluster.same(0, 1));
    assert!(traffic.penalties().is_empty());
    let applied: Vec<Hash> = traffic.applied_by(1).iter().map(|d| d.id).collect();
    assert_eq!(applied, vec![c1, c2, c3]);
    let _ = (d1, d3);
}

#[test]
fn a_sender_without_the_parent_answers_not_found_and_another_member_is_asked() {
    let mut cluster = Cluster::connected(4, quiet());
    let (d1, d1_bytes) = cluster.write(0, b"a", b"1");
    cluster.gossip(0, 2, &d1_bytes);
    let (_, d2_bytes) = cluster.write(2, b"b", b"2");
    // Replica 3 holds d2 pending, without d1 (its own request is dropped).
    let _ = cluster.replicas[3]
        .handle(Input::GossipReceived { from: peer(2), message: 0, bytes: d2_bytes.clone() }, cluster.now);
    assert_eq!(cluster.replicas[3].dag().pending_count(), 1);
    // Replica 1 gets d2 from replica 3, which cannot serve d1.
    let traffic = cluster.gossip(3, 1, &d2_bytes);
    let from_3 = traffic.messages_from(3);
    assert!(from_3.iter().any(|m| matches!(m, SyncMessage::NotFound { ids } if *ids == vec![d1])), "{from_3:?}");
    let requests: Vec<(usize, Vec<Hash>)> = traffic
        .sent_by(1)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { to, bytes, .. } => match SyncMessage::decode(bytes) {
                Ok(SyncMessage::GetDeltas(r)) => Some((index(to), r.ids)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].0, 3, "first the sender");
    assert_ne!(requests[1].0, 3, "then another member");
    assert!(cluster.replicas[1].dag().is_applied(&d1));
    assert_eq!(cluster.replicas[1].dag().pending_count(), 0);
}

#[test]
fn a_parent_nobody_has_escalates_to_anti_entropy() {
    let config = Config { parent_request_attempts_max: 2, ..quiet() };
    let mut cluster = Cluster::connected(3, config);
    let orphan = SignedDelta::sign(
        &key(0),
        &common::context(),
        vec![Hash::of(b"nowhere")],
        Hlc::new(START_MS, 0),
        Vec::new(),
        Vec::new(),
    );
    cluster.now += 6_000; // past the interval of the connect-time sessions
    let traffic = cluster.gossip(0, 1, &orphan.encode());
    let messages = traffic.messages_from(1);
    let asked = requested_ids(&messages);
    assert_eq!(asked.len(), 2, "the sender, then the one other member: {asked:?}");
    assert_eq!(sync_requests(&messages), 1, "then one anti-entropy session");
    assert!(cluster.replicas[1].stats().escalations >= 1);
    assert_eq!(cluster.replicas[1].dag().pending_count(), 1, "the orphan waits until it goes stale");
    // It goes stale, is evicted, and is forgotten everywhere.
    cluster.advance(Config::default().dag_limits.pending_stale_ms + 10_000);
    cluster.advance(10_000);
    assert_eq!(cluster.replicas[1].dag().pending_count(), 0);
    assert_eq!(cluster.replicas[1].store().pending_len(), 0);
}

#[test]
fn a_deep_gap_escalates_to_one_anti_entropy_round() {
    let mut cluster = Cluster::connected(2, quiet());
    let mut last = Vec::new();
    for i in 0..50u32 {
        last = cluster.write(0, &i.to_le_bytes(), b"v").1;
    }
    cluster.now += 6_000;
    let traffic = cluster.gossip(0, 1, &last);
    let messages = traffic.messages_from(1);
    let rounds = requested_ids(&messages).len() as u32;
    assert_eq!(rounds, Config::default().parent_request_depth_max + 1, "bounded request depth");
    assert_eq!(sync_requests(&messages), 1);
    assert!(cluster.same(0, 1), "one anti-entropy session fetched the rest");
}

#[test]
fn history_pruned_from_memory_is_served_from_the_store() {
    let config = Config { history_kept_max: Some(10), ..Config::default() };
    let mut cluster = Cluster::new(2, config);
    let mut first = None;
    for i in 0..60u32 {
        let (id, _) = cluster.write(0, &i.to_le_bytes(), b"v");
        first.get_or_insert(id);
    }
    cluster.advance(6_000); // the sweep prunes
    assert!(cluster.replicas[0].dag().pruned_count() > 40);
    assert_eq!(cluster.replicas[0].stats().history_pruned, cluster.replicas[0].dag().pruned_count() as u64);
    // A fresh replica's anti-entropy gets the whole history, old payloads
    // read back from replica 0's store.
    let traffic = cluster.connect(1);
    assert!(!traffic.outputs.iter().any(|(_, o)| matches!(o, Output::SnapshotNeeded { .. })), "{:?}", traffic.outputs);
    assert_eq!(cluster.replicas[1].heads(), cluster.replicas[0].heads());
    assert_eq!(cluster.replicas[1].root_hash(), cluster.replicas[0].root_hash());
    let first = first.unwrap();
    let bytes = cluster.replicas[0].applied_delta_bytes(&first).expect("served by id");
    assert_eq!(SignedDelta::decode(&bytes).unwrap().id, first);
}

/// A store whose applied rows can go missing or rot, as after a persisted
/// prune or damage at rest.
#[derive(Default)]
struct DecayingStore {
    inner: MemoryStore,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rotten: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ReplicaStore for DecayingStore {
    type Kv = <MemoryStore as ReplicaStore>::Kv;

    fn state(&self) -> &Self::Kv {
        self.inner.state()
    }

    fn commit_applied(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError> {
        self.inner.commit_applied(row)
    }

    fn put_pending(&mut self, id: Hash, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put_pending(id, bytes)
    }

    fn remove_pending(&mut self, ids: &[Hash]) -> Result<(), StoreError> {
        self.inner.remove_pending(ids)
    }

    fn load_applied(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        use std::sync::atomic::Ordering;
        if self.lost.load(Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        let mut rows = self.inner.load_applied(after, limit)?;
        if self.rotten.load(Ordering::Relaxed) {
            for (_, bytes) in &mut rows {
                if let Some(last) = bytes.last_mut() {
                    *last ^= 1;
                }
            }
        }
        Ok(rows)
    }

    fn load_pending(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.load_pending(limit)
    }

    fn forget(&mut self, step: ForgetStep) -> Result<(), StoreError> {
        self.inner.forget(step)
    }

    fn forgotten_point(&self, id: &Hash) -> Result<Option<Hash>, StoreError> {
        self.inner.forgotten_point(id)
    }

    fn member_set(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.member_set(hash)
    }

    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError> {
        self.inner.load_forgotten()
    }
}

#[test]
fn a_pruned_delta_the_store_lost_or_damaged_is_reported_as_pruned_never_sent() {
    use std::sync::atomic::Ordering;
    let config = Config { history_kept_max: Some(10), ..quiet() };
    let store = DecayingStore::default();
    let (lost, rotten) = (store.lost.clone(), store.rotten.clone());
    let mut replica = Replica::new(params(0, 2, config, store), START_MS).unwrap();
    let mut now = START_MS;
    let mut first = None;
    for i in 0..60u32 {
        now += 1;
        let write = replica
            .prepare_write(now, now, |txn| {
                txn.map_insert(root_id(), &i.to_le_bytes(), b"v")?;
                Ok(Vec::new())
            })
            .unwrap();
        let outputs = replica.handle(Input::LocalWrite(write), now);
        let id = outputs.iter().find_map(|o| match o {
            Output::WriteCommitted { id, .. } => Some(*id),
            _ => None,
        });
        first = first.or(id);
    }
    now += 6_000;
    replica.handle(Input::Tick, now); // the sweep prunes
    let first = first.unwrap();
    assert!(replica.dag().is_pruned(&first));
    let mut ask = |replica: &mut Replica<DecayingStore>, n: u64| -> Vec<SyncMessage> {
        let request = SyncMessage::GetDeltas(weft_sync::protocol::GetDeltas {
            version: weft_sync::protocol::PROTOCOL_VERSION,
            context: replica.context(),
            ids: vec![first],
        });
        let session = weft_sync::SessionId { opener: peer(1), n };
        now += 1;
        let outputs = replica.handle(Input::StreamMessage { from: peer(1), session, bytes: request.encode() }, now);
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { bytes, .. } => SyncMessage::decode(bytes).ok(),
                _ => None,
            })
            .collect()
    };
    let served = |answers: &[SyncMessage]| {
        answers.iter().any(|m| {
            matches!(m, SyncMessage::Deltas(page)
                if page.deltas.iter().any(|d| SignedDelta::decode(d).is_ok_and(|d| d.id == first)))
        })
    };
    let pruned = |answers: &[SyncMessage]| {
        answers.iter().any(|m| matches!(m, SyncMessage::PrunedHistory { ids } if *ids == vec![first]))
    };
    // Intact on disk: served.
    let answers = ask(&mut replica, 900);
    assert!(served(&answers) && !pruned(&answers), "{answers:?}");
    // Damaged on disk: never sent, reported as pruned.
    rotten.store(true, Ordering::Relaxed);
    let answers = ask(&mut replica, 901);
    assert!(!served(&answers) && pruned(&answers), "{answers:?}");
    assert!(replica.applied_delta_bytes(&first).is_none());
    rotten.store(false, Ordering::Relaxed);
    // Gone from disk: reported as pruned.
    lost.store(true, Ordering::Relaxed);
    let answers = ask(&mut replica, 902);
    assert!(!served(&answers) && pruned(&answers), "{answers:?}");
}

#[test]
fn restart_rebuilds_heads_state_and_pending_from_the_store() {
    let mut cluster = Cluster::connected(2, quiet());
    let mut gossip = Vec::new();
    for i in 0..20u32 {
        gossip.push(cluster.write(0, &i.to_le_bytes(), b"v").1);
    }
    for bytes in &gossip[..10] {
        cluster.gossip(0, 1, bytes);
    }
    // The last one arrives without its parents; its requests are dropped.
    let _ = cluster.replicas[1]
        .handle(Input::GossipReceived { from: peer(0), message: 0, bytes: gossip[19].clone() }, cluster.now);
    let before = (cluster.replicas[1].heads(), cluster.replicas[1].root_hash(), cluster.replicas[1].applied_ids());
    assert_eq!(cluster.replicas[1].dag().pending_count(), 1);
    // Crash: only the store survives.
    let store = std::mem::replace(
        &mut cluster.replicas[1],
        Replica::new(params(9, 2, Config::default(), MemoryStore::new()), START_MS).unwrap(),
    )
    .into_store();
    cluster.replicas[1] = Replica::new(params(1, 2, Config::default(), store), cluster.now).unwrap();
    let restored = &cluster.replicas[1];
    assert_eq!((restored.heads(), restored.root_hash(), restored.applied_ids()), before);
    assert_eq!(restored.dag().pending_count(), 1, "pending deltas survive a restart");
    restored.check_invariants().unwrap();
    // Reconnected, it catches up.
    cluster.now += 6_000;
    cluster.connect(1);
    assert!(cluster.same(0, 1));
    // A later local write stamps after everything it restored.
    let (id, _) = cluster.write(1, b"after", b"restart");
    let mine = cluster.replicas[1].dag().get(&id).unwrap().hlc;
    let theirs = cluster.replicas[1].dag().get(&cluster.replicas[0].heads()[0]).map(|d| d.hlc);
    assert!(theirs.is_none_or(|h| mine > h));
}

#[test]
fn a_write_prepared_before_a_remote_delta_is_refused_as_stale() {
    let mut cluster = Cluster::connected(2, quiet());
    let write = cluster.replicas[0]
        .prepare_write(1, cluster.now, |txn| {
            txn.map_insert(root_id(), b"mine", b"x")?;
            Ok(Vec::new())
        })
        .unwrap();
    let (_, bytes) = cluster.write(1, b"theirs", b"y");
    cluster.gossip(1, 0, &bytes);
    let root = cluster.replicas[0].root_hash();
    let outputs = cluster.replicas[0].handle(Input::LocalWrite(write), cluster.now);
    assert!(outputs.iter().any(|o| matches!(o, Output::WriteRejected { token: 1, reason: WriteError::Stale { .. } })));
    assert!(!outputs.iter().any(|o| matches!(o, Output::Publish { .. })));
    assert_eq!(cluster.replicas[0].root_hash(), root);
}

#[test]
fn applied_events_reach_subscribers_with_the_author_flag() {
    let mut cluster = Cluster::connected(2, quiet());
    let event = Event { kind: "Added".into(), data: b"{\"n\":1}".to_vec(), handler: Some("on_added".into()) };
    let write = cluster.replicas[0]
        .prepare_write(1, cluster.now, |txn| {
            txn.map_insert(root_id(), b"k", b"v")?;
            Ok(vec![event.clone()])
        })
        .unwrap();
    let traffic = cluster.input(0, Input::LocalWrite(write));
    let local = traffic.applied_by(0);
    assert_eq!(local.len(), 1);
    assert!(local[0].local && local[0].events == vec![event.clone()]);
    let bytes = traffic
        .sent_by(0)
        .into_iter()
        .find_map(|o| match o {
            Output::Publish { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    let remote = cluster.gossip(0, 1, &bytes).applied_by(1);
    assert_eq!(remote.len(), 1);
    assert!(!remote[0].local, "handlers run on the other nodes");
    assert_eq!(remote[0].author, key(0).public_key());
    assert_eq!(remote[0].events, vec![event]);
}

#[test]
fn a_storage_fault_keeps_the_delta_and_the_sweep_retries_it() {
    let mut store = MemoryStore::new();
    store.fail_next_commits(1);
    let mut cluster = Cluster::connected(2, quiet());
    cluster.replicas[1] = Replica::new(params(1, 2, Config::default(), store), cluster.now).unwrap();
    let (id, bytes) = cluster.write(0, b"k", b"v");
    cluster.gossip(0, 1, &bytes);
    assert!(!cluster.replicas[1].dag().is_applied(&id));
    assert_eq!(cluster.replicas[1].stats().apply_failures, 1);
    let traffic = cluster.advance(Config::default().pending_sweep_ms + 1);
    assert!(cluster.replicas[1].dag().is_applied(&id));
    assert_eq!(traffic.applied_by(1).len(), 1);
    assert!(cluster.same(0, 1));
}

/// A store that silently loses the state writes of its first commit: the
/// kind of bug the divergence check exists for.
#[derive(Default)]
struct ForgetfulStore {
    inner: MemoryStore,
    commits: u32,
}

impl ReplicaStore for ForgetfulStore {
    type Kv = <MemoryStore as ReplicaStore>::Kv;

    fn state(&self) -> &Self::Kv {
        self.inner.state()
    }

    fn commit_applied(&mut self, mut row: AppliedRow<'_>) -> Result<(), StoreError> {
        self.commits += 1;
        if self.commits == 1 {
            row.writes = WriteSet::new();
        }
        self.inner.commit_applied(row)
    }

    fn put_pending(&mut self, id: Hash, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put_pending(id, bytes)
    }

    fn remove_pending(&mut self, ids: &[Hash]) -> Result<(), StoreError> {
        self.inner.remove_pending(ids)
    }

    fn load_applied(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.load_applied(after, limit)
    }

    fn load_pending(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.load_pending(limit)
    }

    fn forget(&mut self, step: ForgetStep) -> Result<(), StoreError> {
        self.inner.forget(step)
    }

    fn forgotten_point(&self, id: &Hash) -> Result<Option<Hash>, StoreError> {
        self.inner.forgotten_point(id)
    }

    fn member_set(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.member_set(hash)
    }

    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError> {
        self.inner.load_forgotten()
    }
}

#[test]
fn same_heads_with_a_different_root_is_reported_as_divergence_and_never_adopted() {
    let mut honest = Cluster::new(1, Config::default());
    let mut buggy = Replica::new(params(1, 2, Config::default(), ForgetfulStore::default()), START_MS).unwrap();
    let members = |i| params::<MemoryStore>(i, 2, Config::default(), MemoryStore::new());
    honest.replicas[0] = Replica::new(members(0), START_MS).unwrap();
    for i in 0..2u32 {
        let (_, bytes) = honest.write(0, &i.to_le_bytes(), b"v");
        buggy.handle(Input::GossipReceived { from: peer(0), message: 0, bytes }, honest.now);
    }
    assert_eq!(buggy.heads(), honest.replicas[0].heads());
    assert_ne!(buggy.root_hash(), honest.replicas[0].root_hash());
    let honest_root = honest.replicas[0].root_hash();
    // The buggy replica opens a session: the honest one sees equal heads and
    // a different root.
    let outputs = buggy.handle(Input::PeerUp { peer: peer(0) }, honest.now);
    let request = outputs
        .iter()
        .find_map(|o| match o {
            Output::Send { session, bytes, .. } => Some((*session, bytes.clone())),
            _ => None,
        })
        .unwrap();
    let answers = honest.replicas[0]
        .handle(Input::StreamMessage { from: peer(1), session: request.0, bytes: request.1 }, honest.now);
    let diverged = answers.iter().find_map(|o| match o {
        Output::Diverged { ours, ours_recomputed, theirs, .. } => Some((*ours, *ours_recomputed, *theirs)),
        _ => None,
    });
    assert_eq!(diverged, Some((honest_root, Some(honest_root), buggy.root_hash())));
    assert_eq!(honest.replicas[0].root_hash(), honest_root, "a peer's root hash is never adopted");
    assert_eq!(honest.replicas[0].stats().divergences, 1);
    // The buggy side learns it too, and its recomputation shows it is the
    // one that is off.
    let mut buggy_outputs = Vec::new();
    for answer in answers {
        if let Output::Send { session, bytes, .. } = answer {
            buggy_outputs.extend(buggy.handle(Input::StreamMessage { from: peer(0), session, bytes }, honest.now));
        }
    }
    let buggy_root = buggy.root_hash();
    assert!(
        buggy_outputs.iter().any(|o| matches!(
            o,
            Output::Diverged { ours, theirs, .. } if *ours == buggy_root && *theirs == honest_root
        )),
        "{buggy_outputs:?}"
    );
    assert_eq!(buggy.root_hash(), buggy_root, "not adopted on the buggy side either");
    assert!(!buggy_outputs.iter().any(|o| matches!(o, Output::InSync { .. })));
}
