//! Map inserts through the CRDT engine and into the real store.
//!
//! Each insert is its own `StateTxn` (one delta's worth of work) and is
//! acknowledged only once durable. Three ways are measured in one run:
//! in memory (the engine alone), one durable redb transaction per insert
//! (the baseline), and the node's way: the group committer shares one fsync
//! among many inserts while later inserts read earlier, not-yet-durable ones
//! through a `LayeredKv` over the last snapshot.

use std::time::Instant;

use anyhow::Context;
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_state::{CrdtKind, EntityId, LayeredKv, StateTxn, StorageKind, root_id};
use weft_store::{CommitTicket, Store, WriteBatch};

use crate::figure::{emit, per_second};

/// Inserts in flight before the writer waits for their acknowledgements.
const GROUP_WINDOW_MAX: usize = 512;

/// Durable single transactions are slow; this many are enough for a rate.
const SINGLE_TXN_INSERTS_MAX: usize = 5_000;

const CONTEXT: Hash = Hash([7; 32]);

pub fn run(inserts: usize) -> anyhow::Result<()> {
    let signer = SigningKey::from_seed([1; 32]);
    let map = map_id();

    let memory_rate = in_memory(&signer, map, inserts)?;
    emit("state_map_insert_memory", memory_rate, "inserts/s");

    let dir = tempfile::tempdir().context("temp dir")?;
    let single = inserts.min(SINGLE_TXN_INSERTS_MAX);
    let single_rate = single_durable_txns(&Store::open(dir.path().join("single.redb"))?, &signer, map, single)?;
    emit("state_map_insert_store_single_txn", single_rate, "inserts/s");

    let grouped_rate = group_committed(&Store::open(dir.path().join("grouped.redb"))?, &signer, map, inserts)?;
    emit("state_map_insert_store_group_commit", grouped_rate, "inserts/s");
    emit("state_map_insert_group_vs_single_txn", grouped_rate / single_rate, "ratio");
    emit("state_map_insert_group_vs_memory", grouped_rate / memory_rate, "ratio");
    Ok(())
}

/// Run `count` transactions (`txn(kv, i)` returns transaction `i`'s writes)
/// the node's way: up to [`GROUP_WINDOW_MAX`] share one durable commit
/// through the group committer, each reading the earlier ones, durable or
/// not, through a `LayeredKv` over the last snapshot. Returns once all are
/// durable.
pub fn commit_grouped(
    store: &Store,
    context: Hash,
    count: usize,
    mut txn: impl FnMut(&dyn KvRead, usize) -> anyhow::Result<WriteSet>,
) -> anyhow::Result<()> {
    let committer = store.group_committer()?;
    let mut i = 0;
    while i < count {
        // Writes submitted but not yet durable: later transactions must see them.
        let mut in_flight = WriteSet::new();
        let mut tickets: Vec<CommitTicket> = Vec::with_capacity(GROUP_WINDOW_MAX);
        let snapshot = store.read()?;
        let view = snapshot.state_view(context)?;
        while i < count && tickets.len() < GROUP_WINDOW_MAX {
            let writes = txn(&LayeredKv::new(&view, &in_flight), i)?;
            let mut batch = WriteBatch::new();
            batch.apply_state_writes(context, writes.clone());
            tickets.push(committer.submit(batch)?);
            in_flight.extend(writes);
            i += 1;
        }
        for ticket in tickets {
            ticket.wait()?;
        }
    }
    committer.close()?;
    Ok(())
}

fn map_id() -> EntityId {
    weft_state::child_id(&root_id(), b"items", CrdtKind::Map, &StorageKind::Public)
}

fn key(i: usize) -> Vec<u8> {
    // Spread keys like real ones would be: not in insertion order.
    Hash::of(&(i as u64).to_le_bytes()).0[..12].to_vec()
}

/// One insert as its own transaction over `kv`; the first also creates the map.
fn insert(kv: &dyn KvRead, signer: &SigningKey, map: EntityId, i: usize) -> anyhow::Result<WriteSet> {
    let mut txn = StateTxn::new(kv, weft_primitives::Hash::default(), signer, Hlc::new(1_000 + i as u64, 0));
    if i == 0 {
        txn.create(root_id(), b"items", CrdtKind::Map, StorageKind::Public)?;
    }
    txn.map_insert(map, &key(i), b"value")?;
    Ok(txn.commit()?.writes)
}

fn in_memory(signer: &SigningKey, map: EntityId, inserts: usize) -> anyhow::Result<f64> {
    let mut kv = MemoryKv::new();
    let started = Instant::now();
    for i in 0..inserts {
        let writes = insert(&kv, signer, map, i)?;
        kv.apply(writes);
    }
    Ok(per_second(inserts, started.elapsed()))
}

fn single_durable_txns(store: &Store, signer: &SigningKey, map: EntityId, inserts: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    for i in 0..inserts {
        let snapshot = store.read()?;
        let view = snapshot.state_view(CONTEXT)?;
        let writes = insert(&view, signer, map, i)?;
        let mut batch = WriteBatch::new();
        batch.apply_state_writes(CONTEXT, writes);
        store.commit(&batch)?;
    }
    Ok(per_second(inserts, started.elapsed()))
}

fn group_committed(store: &Store, signer: &SigningKey, map: EntityId, inserts: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    commit_grouped(store, CONTEXT, inserts, |kv, i| insert(kv, signer, map, i))?;
    let rate = per_second(inserts, started.elapsed());
    // The durable result must be the same map the engine built.
    let snapshot = store.read()?;
    let view = snapshot.state_view(CONTEXT)?;
    let mut txn = StateTxn::read_only(&view);
    let len = txn.map_len(map)?;
    anyhow::ensure!(len == inserts as u64, "store holds {len} entries, expected {inserts}");
    Ok(rate)
}
