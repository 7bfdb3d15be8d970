//! The membership ordering rule, property-tested: an honest history of
//! writes, `Add`s and `Leave`s by various authors (two founders, two
//! joiners that may be admitted, leave and be admitted again), built by
//! authors that each write on their own replica and sync now and then,
//! delivered to fresh replicas in any causal order — or in any order at
//! all, buffering what comes early — gives every replica the same member
//! set, heads and root hash, with every delta accepted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{START_MS, key, params, peer};
use proptest::prelude::*;
use weft_dag::DeltaId;
use weft_primitives::{Hash, PublicKey};
use weft_state::root_id;
use weft_sync::{Config, Event, Input, MembershipChange, MemoryStore, Output, Replica, SeededRng, SignedDelta};

const AUTHORS: usize = 4;
const FOUNDERS: usize = 2;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The actor writes a small contended key.
    Write { key: u8 },
    /// The actor admits `target`.
    Add { target: usize },
    /// The actor leaves.
    Leave,
    /// The actor's applied deltas reach `to`.
    Sync { to: usize },
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let kind = prop_oneof![
        6 => (0u8..4).prop_map(|key| Op::Write { key }),
        4 => (0..AUTHORS).prop_map(|target| Op::Add { target }),
        1 => Just(Op::Leave),
        4 => (0..AUTHORS).prop_map(|to| Op::Sync { to }),
    ];
    (0..AUTHORS, kind)
}

fn replica(i: usize, now: u64) -> Replica<MemoryStore> {
    Replica::new(params(i, FOUNDERS, Config::default(), MemoryStore::new()), now).unwrap()
}

fn published(outputs: &[Output]) -> Option<(DeltaId, Vec<u8>)> {
    outputs.iter().find_map(|o| match o {
        Output::Publish { id, bytes } => Some((*id, bytes.clone())),
        _ => None,
    })
}

/// Every delta `replica` applied, in apply order (a causal order).
fn applied_bytes(replica: &Replica<MemoryStore>) -> Vec<Vec<u8>> {
    replica.applied_ids().iter().map(|id| SignedDelta::from_causal(replica.dag().get(id).unwrap()).encode()).collect()
}

/// Deliver `bytes` to `to` as gossip; panics on any penalty.
fn deliver(to: &mut Replica<MemoryStore>, from: usize, bytes: &[u8], now: u64) {
    let outputs = to.handle(Input::GossipReceived { from: peer(from), message: 0, bytes: bytes.to_vec() }, now);
    let penalties: Vec<&Output> = outputs.iter().filter(|o| matches!(o, Output::Penalize { .. })).collect();
    assert!(penalties.is_empty(), "an honest delta was refused: {penalties:?}");
}

/// The authors' replicas, every delta they wrote (id and bytes, in creation
/// order), and the time reached.
struct History {
    authors: Vec<Replica<MemoryStore>>,
    deltas: Vec<(DeltaId, Vec<u8>)>,
    now: u64,
}

/// Run `ops` on the authors' replicas.
fn author_history(ops: &[(usize, Op)]) -> History {
    let mut now = START_MS;
    let mut authors: Vec<Replica<MemoryStore>> = (0..AUTHORS).map(|i| replica(i, now)).collect();
    let mut deltas: Vec<(DeltaId, Vec<u8>)> = Vec::new();
    for (step, (actor, op)) in ops.iter().enumerate() {
        now += 1 + (step as u64 % 3);
        let me = key(*actor).public_key();
        let events = match op {
            Op::Sync { to } if to != actor => {
                let log = applied_bytes(&authors[*actor]);
                for bytes in log {
                    deliver(&mut authors[*to], *actor, &bytes, now);
                }
                continue;
            }
            Op::Sync { .. } => continue,
            _ if !authors[*actor].is_member(&me) => {
                // Not a member (yet, or any more): catch up from another
                // author instead, perhaps learning of an Add.
                let from = (actor + 1 + step) % AUTHORS;
                let log = applied_bytes(&authors[from]);
                for bytes in log {
                    deliver(&mut authors[*actor], from, &bytes, now);
                }
                continue;
            }
            Op::Write { .. } => Vec::new(),
            Op::Add { target } => {
                let change = MembershipChange::Add {
                    member: key(*target).public_key(),
                    invitation: Hash::of(&(step as u64).to_le_bytes()),
                };
                vec![Event::membership(change)]
            }
            // The last member (as far as it knows) stays: a context nobody
            // can write to ends the interesting part of the history.
            Op::Leave if authors[*actor].members().count() == 1 => continue,
            Op::Leave => vec![Event::membership(MembershipChange::Leave { member: me })],
        };
        let value = (step as u64).to_le_bytes();
        let write = authors[*actor]
            .prepare_write(step as u64, now, |txn| {
                if let Op::Write { key } = op {
                    txn.map_insert(root_id(), &[*key], &value)?;
                }
                Ok(events)
            })
            .unwrap();
        let outputs = authors[*actor].handle(Input::LocalWrite(write), now);
        let delta = published(&outputs).unwrap_or_else(|| panic!("write by a member refused: {outputs:?}"));
        deltas.push(delta);
    }
    History { authors, deltas, now }
}

/// A random order of `deltas` in which every delta comes after its parents.
fn causal_order(deltas: &[(DeltaId, Vec<u8>)], rng: &mut SeededRng) -> Vec<usize> {
    common::causal_order_by(deltas, |ready| rng.index(ready))
}

/// Any order at all.
fn shuffled(len: usize, rng: &mut SeededRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        order.swap(i, rng.index(i + 1));
    }
    order
}

type Outcome = (Vec<PublicKey>, Vec<DeltaId>, Hash, usize);

fn outcome(replica: &Replica<MemoryStore>) -> Outcome {
    (replica.members().copied().collect(), replica.heads(), replica.root_hash(), replica.applied_count() as usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_delivery_order_gives_the_same_members_and_root_hash(
        ops in proptest::collection::vec(op(), 1..80),
        seed in any::<u64>(),
    ) {
        let History { mut authors, deltas, now } = author_history(&ops);
        let mut rng = SeededRng::new(seed);
        let orders = [
            causal_order(&deltas, &mut rng),
            causal_order(&deltas, &mut rng),
            shuffled(deltas.len(), &mut rng),
            (0..deltas.len()).rev().collect(),
        ];
        let mut outcomes: Vec<Outcome> = Vec::new();
        for (k, order) in orders.iter().enumerate() {
            let mut observer = replica(AUTHORS + k, now);
            for i in order {
                deliver(&mut observer, 0, &deltas[*i].1, now);
            }
            prop_assert_eq!(observer.dag().pending_count(), 0, "every delta applied");
            outcomes.push(outcome(&observer));
        }
        // The authors, once they have everything, agree too.
        for author in authors.iter_mut() {
            for (_, bytes) in &deltas {
                deliver(author, 0, bytes, now);
            }
            outcomes.push(outcome(author));
        }
        for other in &outcomes[1..] {
            prop_assert_eq!(other, &outcomes[0]);
        }
        prop_assert_eq!(outcomes[0].3, deltas.len());
    }
}
