//! Forgotten history (`Config::history_remembered_max`): a replica that
//! forgot old deltas and lost their rows decides every delta as one that
//! remembers everything, across restarts, and tells a peer that needs the
//! forgotten part that it needs a snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, START_MS, key, params, peer};
use weft_primitives::Hash;
use weft_sync::protocol::SyncMessage;
use weft_sync::{
    AppliedRow, Config, ForgetStep, ForgottenHistory, Input, MembershipChange, MemoryStore, Output, Replica,
    ReplicaStore, StoreError,
};

/// Default tunables without periodic anti-entropy, forgetting all but the
/// last `remembered` applied deltas.
fn forgetting(remembered: usize) -> Config {
    Config { sync_frequency_ms: u64::MAX / 4, history_remembered_max: Some(remembered), ..Config::default() }
}

/// Restart replica `i` of `cluster` from its store alone.
fn restart(cluster: &mut Cluster, i: usize, members: usize, config: Config) {
    let store = std::mem::replace(
        &mut cluster.replicas[i],
        Replica::new(params(9, members, Config::default(), MemoryStore::new()), START_MS).unwrap(),
    )
    .into_store();
    cluster.replicas[i] = Replica::new(params(i, members, config, store), cluster.now).unwrap();
}

/// A delta written at an old point by a member who has left since reaches a
/// replica that forgot that point (and restarted): it is judged at its own
/// causal point, read back from the store, and applied, as a replica that
/// remembers everything applies it. A forgotten delta sent again is a
/// duplicate.
#[test]
fn a_late_delta_naming_a_forgotten_parent_is_judged_at_its_own_point() {
    // 0 forgets, 1 remembers everything, 2 writes late and leaves.
    let mut cluster = Cluster::new(3, forgetting(20));
    cluster.replicas[1] = Replica::new(params(1, 3, Config::default(), MemoryStore::new()), START_MS).unwrap();
    let mut early = Vec::new();
    for i in 0..5u32 {
        let (_, bytes) = cluster.write(0, &i.to_le_bytes(), b"early");
        for to in [1, 2] {
            cluster.gossip(0, to, &bytes);
        }
        early.push(bytes);
    }
    // 2 writes `late` at that point, then loses it (its store as before)
    // and leaves: everyone learns that 2 left, nobody sees `late` yet.
    let before_late = cluster.replicas[2].store().clone();
    let (late_id, late) = cluster.write(2, b"late", b"from a member at its point");
    cluster.replicas[2] = Replica::new(params(2, 3, forgetting(20), before_late), cluster.now).unwrap();
    let (_, leave) = cluster.change(2, MembershipChange::Leave { member: key(2).public_key() });
    for to in [0, 1] {
        cluster.gossip(2, to, &leave);
    }
    assert!(!cluster.replicas[0].is_member(&key(2).public_key()));
    for i in 0..80u32 {
        let (_, bytes) = cluster.write(0, &i.to_le_bytes(), b"later");
        cluster.gossip(0, 1, &bytes);
    }
    cluster.advance(6_000); // the sweep forgets
    let forgotten = cluster.replicas[0].forgotten_count();
    assert!(forgotten >= 60, "forgot {forgotten}");
    assert!(cluster.replicas[0].store().applied_len() <= 30, "the forgotten rows left the store");
    restart(&mut cluster, 0, 3, forgetting(20));
    assert_eq!(cluster.replicas[0].forgotten_count(), forgotten);
    cluster.replicas[0].check_invariants().unwrap();
    assert!(cluster.same(0, 1));

    let applied_before = cluster.replicas[0].applied_count();
    let traffic = cluster.gossip(2, 0, &late);
    assert!(traffic.penalties().is_empty(), "{:?}", traffic.penalties());
    assert!(cluster.replicas[0].dag().is_applied(&late_id), "judged at its point, where 2 was a member");
    assert_eq!(cluster.replicas[0].applied_count(), applied_before + 1);
    cluster.gossip(2, 1, &late);
    assert!(cluster.replicas[1].dag().is_applied(&late_id));
    assert!(cluster.same(0, 1), "the replica that forgot decided as the one that remembers");

    // Sent again, a forgotten delta is a duplicate: nothing is applied twice.
    for bytes in &early {
        let outputs = cluster.replicas[0]
            .handle(Input::GossipReceived { from: peer(1), message: 0, bytes: bytes.clone() }, cluster.now);
        assert!(!outputs.iter().any(|o| matches!(o, Output::Applied { .. })), "{outputs:?}");
    }
    assert_eq!(cluster.replicas[0].applied_count(), applied_before + 1);
    assert!(cluster.replicas[0].dag().pending_count() == 0);
}

/// A fresh replica syncing from one that forgot the start of the history
/// is told it needs a snapshot, at once, with no penalty either way; asked
/// for a forgotten delta by id, the replica answers `PrunedHistory`, not
/// `NotFound`.
#[test]
fn a_peer_that_lacks_forgotten_history_is_told_it_needs_a_snapshot() {
    let mut cluster = Cluster::new(2, forgetting(10));
    let mut first = None;
    for i in 0..60u32 {
        let (id, _) = cluster.write(0, &i.to_le_bytes(), b"v");
        first.get_or_insert(id);
    }
    cluster.advance(6_000);
    assert!(cluster.replicas[0].forgotten_count() >= 40);
    let traffic = cluster.connect(1);
    assert!(traffic.penalties().is_empty(), "{:?}", traffic.penalties());
    assert!(
        traffic.outputs.iter().any(|(at, o)| *at == 1 && matches!(o, Output::SnapshotNeeded { .. })),
        "{:?}",
        traffic.outputs
    );
    assert_eq!(cluster.replicas[1].applied_count(), 0, "nothing is sent that cannot apply");

    let request = weft_sync::protocol::GetDeltas {
        version: weft_sync::protocol::PROTOCOL_VERSION,
        context: common::context(),
        ids: vec![first.unwrap()],
    };
    let session = weft_sync::SessionId { opener: peer(1), n: 77 };
    let outputs = cluster.replicas[0].handle(
        Input::StreamMessage { from: peer(1), session, bytes: SyncMessage::GetDeltas(request).encode() },
        cluster.now,
    );
    let answers: Vec<SyncMessage> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => SyncMessage::decode(bytes).ok(),
            _ => None,
        })
        .collect();
    assert!(answers.iter().any(|m| matches!(m, SyncMessage::PrunedHistory { .. })), "{answers:?}");
    assert!(!answers.iter().any(|m| matches!(m, SyncMessage::NotFound { .. })), "{answers:?}");
}

/// A store whose forgotten-delta lookups can fail (an I/O error).
struct FlakyStore {
    inner: MemoryStore,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        match self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            true => Err(StoreError::Backend("injected read failure".into())),
            false => Ok(()),
        }
    }
}

impl ReplicaStore for FlakyStore {
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
        self.inner.load_applied(after, limit)
    }

    fn load_pending(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.load_pending(limit)
    }

    fn forget(&mut self, step: ForgetStep) -> Result<(), StoreError> {
        self.inner.forget(step)
    }

    fn forgotten_point(&self, id: &Hash) -> Result<Option<Hash>, StoreError> {
        self.check()?;
        self.inner.forgotten_point(id)
    }

    fn member_set(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.member_set(hash)
    }

    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError> {
        self.inner.load_forgotten()
    }
}

/// While the store cannot say whether (or where) a delta was forgotten,
/// nothing that depends on it is decided: a late delta naming a forgotten
/// parent is neither applied nor refused, and applies once the store
/// answers again.
#[test]
fn nothing_is_decided_while_the_store_cannot_answer_for_forgotten_deltas() {
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = FlakyStore { inner: MemoryStore::new(), failing: failing.clone() };
    let mut forgetful = Replica::new(params(0, 2, forgetting(10), store), START_MS).unwrap();
    let mut cluster = Cluster::new(2, forgetting(10));
    let (first_id, first) = cluster.write(0, b"first", b"v");
    cluster.gossip(0, 1, &first);
    let (late_id, late) = cluster.write(1, b"late", b"v");
    let mut now = cluster.now;
    let feed = |replica: &mut Replica<FlakyStore>, bytes: &[u8], now: u64| {
        replica.handle(Input::GossipReceived { from: peer(1), message: 0, bytes: bytes.to_vec() }, now)
    };
    feed(&mut forgetful, &first, now);
    for i in 0..40u32 {
        let (_, bytes) = cluster.write(0, &i.to_le_bytes(), b"v");
        feed(&mut forgetful, &bytes, cluster.now);
    }
    now = cluster.now + 6_000;
    forgetful.handle(Input::Tick, now);
    assert!(forgetful.forgotten_count() > 0 && !forgetful.dag().is_applied(&first_id));

    failing.store(true, std::sync::atomic::Ordering::Relaxed);
    let applied = forgetful.applied_count();
    let outputs = feed(&mut forgetful, &late, now);
    assert!(!outputs.iter().any(|o| matches!(o, Output::Penalize { .. })), "{outputs:?}");
    assert_eq!(forgetful.applied_count(), applied, "not applied without its parent's point");
    assert!(!forgetful.dag().is_applied(&late_id));

    failing.store(false, std::sync::atomic::Ordering::Relaxed);
    feed(&mut forgetful, &late, now + 1);
    forgetful.handle(Input::Tick, now + 10_000); // a stalled one is retried by the sweep
    assert!(forgetful.dag().is_applied(&late_id), "applied once the store answers");
    assert_eq!(forgetful.applied_count(), applied + 1);
}
