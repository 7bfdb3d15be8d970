//! A random workload over three tables and its in-memory model, shared by the
//! crash and property tests.

// Helpers outside #[test] functions: an unwrap or panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(dead_code)]

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weft_primitives::Hash;
use weft_primitives::kv::WriteSet;
use weft_store::{CONTEXTS, HEADS, STATE, Store, StoreError, WriteBatch, WriteTxn};

/// One write of a transaction.
#[derive(Clone, Debug)]
pub enum Op {
    PutContext(Hash, Vec<u8>),
    DeleteContext(Hash),
    PutHeads(Hash, Vec<Hash>),
    DeleteHeads(Hash),
    State(Hash, WriteSet),
}

pub type Txn = Vec<Op>;

/// The whole content of the three tables the workload touches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub contexts: BTreeMap<Hash, Vec<u8>>,
    pub heads: BTreeMap<Hash, Vec<Hash>>,
    pub state: BTreeMap<(Hash, Vec<u8>), Vec<u8>>,
}

impl Model {
    pub fn apply(&mut self, txn: &Txn) {
        for op in txn {
            match op {
                Op::PutContext(key, value) => {
                    self.contexts.insert(*key, value.clone());
                }
                Op::DeleteContext(key) => {
                    self.contexts.remove(key);
                }
                Op::PutHeads(key, value) => {
                    self.heads.insert(*key, value.clone());
                }
                Op::DeleteHeads(key) => {
                    self.heads.remove(key);
                }
                Op::State(context, writes) => {
                    for (key, value) in writes.iter() {
                        match value {
                            Some(value) => self.state.insert((*context, key.to_vec()), value.to_vec()),
                            None => self.state.remove(&(*context, key.to_vec())),
                        };
                    }
                }
            }
        }
    }

    /// The model after each prefix of `txns`: `states[k]` is after `k` transactions.
    pub fn prefixes(txns: &[Txn]) -> Vec<Model> {
        let mut model = Model::default();
        let mut states = vec![model.clone()];
        for txn in txns {
            model.apply(txn);
            states.push(model.clone());
        }
        states
    }
}

pub fn key(n: u8) -> Hash {
    Hash::of(&[n])
}

/// A transaction of 1..=6 writes over small key spaces (so keys are
/// overwritten and deleted), with the occasional multi-page value.
pub fn random_txn(rng: &mut SmallRng) -> Txn {
    let ops = rng.random_range(1..=6);
    (0..ops)
        .map(|_| {
            let k = key(rng.random_range(0..12));
            match rng.random_range(0..6) {
                0 | 1 => PutContext(k, random_value(rng)),
                2 => DeleteContext(k),
                3 => PutHeads(k, (0..rng.random_range(0..4)).map(|_| key(rng.random())).collect()),
                4 => DeleteHeads(k),
                _ => {
                    let mut writes = WriteSet::new();
                    for _ in 0..rng.random_range(1..5) {
                        let state_key = vec![rng.random_range(0..20u8)];
                        if rng.random_bool(0.25) {
                            writes.delete(state_key);
                        } else {
                            writes.put(state_key, random_value(rng));
                        }
                    }
                    State(key(rng.random_range(0..2)), writes)
                }
            }
        })
        .collect()
}

use Op::{DeleteContext, DeleteHeads, PutContext, PutHeads, State};

fn random_value(rng: &mut SmallRng) -> Vec<u8> {
    let len = if rng.random_bool(0.1) { rng.random_range(3000..9000) } else { rng.random_range(0..200) };
    let fill: u8 = rng.random();
    vec![fill; len]
}

pub fn workload(seed: u64, txns: usize) -> Vec<Txn> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..txns).map(|_| random_txn(&mut rng)).collect()
}

pub fn apply_txn(txn: &mut WriteTxn, ops: &Txn) -> Result<(), StoreError> {
    for op in ops {
        match op {
            PutContext(key, value) => txn.put(CONTEXTS, key, value)?,
            DeleteContext(key) => {
                txn.delete(CONTEXTS, key)?;
            }
            PutHeads(key, value) => txn.put(HEADS, key, value)?,
            DeleteHeads(key) => {
                txn.delete(HEADS, key)?;
            }
            State(context, writes) => txn.apply_state_writes(*context, writes)?,
        }
    }
    Ok(())
}

pub fn to_batch(ops: &Txn) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for op in ops {
        match op {
            PutContext(key, value) => batch.put(CONTEXTS, key, value),
            DeleteContext(key) => batch.delete(CONTEXTS, key),
            PutHeads(key, value) => batch.put(HEADS, key, value),
            DeleteHeads(key) => batch.delete(HEADS, key),
            State(context, writes) => batch.apply_state_writes(*context, writes.clone()),
        };
    }
    batch
}

/// Run `txns` one durable transaction each until the first failure; the
/// number that committed Ok.
pub fn run_until_failure(store: &Store, txns: &[Txn]) -> usize {
    for (done, txn) in txns.iter().enumerate() {
        if store.write(|w| apply_txn(w, txn)).is_err() {
            return done;
        }
    }
    txns.len()
}

/// Run `txns` in groups of `group` deferred commits, each group made
/// durable by one [`Store::flush`], until the first failure. Returns
/// (acknowledged, attempted): the transactions of the groups whose flush
/// returned Ok, and every transaction whose deferred commit returned Ok
/// plus the one that failed (any of them may have reached the disk).
pub fn run_grouped_until_failure(store: &Store, txns: &[Txn], group: usize) -> (usize, usize) {
    let mut acked = 0;
    for (start, chunk) in txns.chunks(group).enumerate().map(|(i, c)| (i * group, c)) {
        store.defer_durability();
        for (i, txn) in chunk.iter().enumerate() {
            if store.write(|w| apply_txn(w, txn)).is_err() {
                let _ = store.flush();
                return (acked, start + i + 1);
            }
        }
        if store.flush().is_err() {
            return (acked, start + chunk.len());
        }
        acked = start + chunk.len();
    }
    (acked, txns.len())
}

/// Run `txns` in groups of `group`: each group's first transaction is a
/// deferred commit, the rest are staged and land in the one transaction of
/// [`Store::flush_with`], until the first failure. Returns (acknowledged,
/// attempted) as [`run_grouped_until_failure`] does; a crash may leave only
/// the acknowledged prefix, the group's deferred first transaction, or the
/// whole group (never a part of the staged rest).
pub fn run_staged_until_failure(store: &Store, txns: &[Txn], group: usize) -> (usize, usize) {
    let mut acked = 0;
    for (start, chunk) in txns.chunks(group).enumerate().map(|(i, c)| (i * group, c)) {
        store.defer_durability();
        if store.write(|w| apply_txn(w, &chunk[0])).is_err() {
            let _ = store.flush();
            return (acked, start + 1);
        }
        let staged = store.flush_with(|w| {
            for txn in &chunk[1..] {
                apply_txn(w, txn)?;
            }
            Ok(())
        });
        if staged.is_err() {
            return (acked, start + chunk.len());
        }
        acked = start + chunk.len();
    }
    (acked, txns.len())
}

/// Everything the workload's tables hold.
pub fn dump(store: &Store) -> Result<Model, StoreError> {
    let read = store.read()?;
    Ok(Model {
        contexts: read.scan(CONTEXTS, &[], None, usize::MAX)?.into_iter().collect(),
        heads: read.scan(HEADS, &[], None, usize::MAX)?.into_iter().collect(),
        state: read.scan(STATE, &[], None, usize::MAX)?.into_iter().collect(),
    })
}

/// Run `txns` in groups of `group` as a pipelined writer does: each
/// group's first transaction is a deferred commit, the rest land in one
/// transaction ([`Store::land`]) on another thread while the next group
/// begins (its deferred commit waits for that landing), until the first
/// failure. Returns (acknowledged, attempted): the groups whose landing
/// returned Ok, and everything up to the group in flight when it failed
/// (with the next group's first transaction if that was attempted).
pub fn run_pipelined_until_failure(store: &Store, txns: &[Txn], group: usize) -> (usize, usize) {
    let mut acked = 0;
    let mut landing: Option<(usize, std::thread::JoinHandle<Result<(), weft_store::StoreError>>)> = None;
    for (start, chunk) in txns.chunks(group).enumerate().map(|(i, c)| (i * group, c)) {
        store.defer_durability();
        let first = store.write(|w| apply_txn(w, &chunk[0]));
        if let Some((end, previous)) = landing.take() {
            if !matches!(previous.join(), Ok(Ok(()))) {
                let _ = store.flush();
                return (acked, end + usize::from(first.is_ok()));
            }
            acked = end;
        }
        if first.is_err() {
            let _ = store.flush();
            return (acked, start + 1);
        }
        store.end_deferring();
        let (lander, rest) = (store.clone(), chunk[1..].to_vec());
        let handle = std::thread::spawn(move || {
            lander.land(|w| {
                for txn in &rest {
                    apply_txn(w, txn)?;
                }
                Ok(())
            })
        });
        landing = Some((start + chunk.len(), handle));
    }
    if let Some((end, last)) = landing {
        if !matches!(last.join(), Ok(Ok(()))) {
            return (acked, end);
        }
        acked = end;
    }
    (acked, txns.len())
}
