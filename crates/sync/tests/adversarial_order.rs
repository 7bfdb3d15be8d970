//! The validity rule, property-tested against adversarial histories
//! (docs/testing.md S4, ARCHITECTURE.md "Validity"): whether a delta applies
//! is a function of the set of deltas, never of the order they arrive in.
//!
//! Three identities write to one context; identity 0 writes from two nodes
//! at once (its laptop and its phone: two peer ids, two text lanes);
//! identities 0 and 1 are its creators (admins); identity 2, admitted by the
//! first delta, is hostile. The history mixes honest writes (nested maps
//! created by several members at once, puts racing removes of the same key
//! and of the map itself, text typed at the same place by every device),
//! membership changes (identity 2 leaves, is removed by either admin with a
//! key rotation, is admitted again; any member rotates the key), and deltas
//! that identity 2 signs by hand:
//! - writes into a map that a concurrent delta creates (its target is not in
//!   its causal past);
//! - text inserts in a lane of its own whose left origin is a character a
//!   concurrent delta types;
//! - writes on the causal point it had before its own `Leave`, signed after
//!   it (concurrent with the `Leave`), and writes on its own view while an
//!   admin removes it (concurrent with the `Remove`).
//!
//! Every delta is delivered to fresh replicas in three random causal
//! orders: they must end with one root hash, one member set, one key epoch
//! (and the same verdict on whether another rotation is needed), the same heads,
//! the same number of applied deltas and the same deltas still waiting, and
//! no delta may be penalized.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{START_MS, key, params, peer};
use proptest::prelude::*;
use weft_dag::DeltaId;
use weft_primitives::{Hash, Hlc, PublicKey};
use weft_state::{Action, CrdtKind, EntityId, Op as StateOp, Stamp, StorageKind, child_id, root_id};
use weft_sync::{
    Config, Event, Input, KeyEpoch, MembershipChange, MemoryStore, Output, Replica, ReplicaStore, SeededRng,
    SignedDelta,
};
use weft_text::{ItemId, TextOp, lane_start};

/// Identities 0, 1 and 2; 0 and 1 are the initial members.
const IDENTITIES: usize = 3;
const INITIAL: usize = 2;
/// Devices: identity 0, 1, 2 on their nodes, and identity 0's second node.
const DEVICES: usize = 4;
const HOSTILE: usize = 2;
/// The lane identity 2 forges its text inserts in.
const FORGED_LANE: u32 = 77;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Create (again) nested map `name` at the root.
    Create { name: u8 },
    /// Put `key` in map `name`, if this device has it.
    Put { name: u8, key: u8 },
    /// Remove `key` from map `name`, if this device has it.
    Remove { name: u8, key: u8 },
    /// Remove map `name` from the root (hides it; writes inside go on).
    RemoveMap { name: u8 },
    /// Type `c` at `pos` in the shared text (created on first use).
    Type { pos: u8, c: char },
    /// This device's applied deltas reach device `to`.
    Sync { to: usize },
    /// Identity 2 signs a put into map `name` on its own causal point,
    /// whether or not it has the map.
    ForgePut { name: u8, key: u8 },
    /// Identity 2 signs a text insert after the first character device
    /// `of` typed, whether or not it has seen it.
    ForgeText { of: usize },
    /// Identity 2 leaves, remembering its heads.
    Leave,
    /// Identity 2 signs a put at the root on the heads it had before leaving.
    WriteBeforeLeave { key: u8 },
    /// The device admits identity 2 again.
    Readmit,
    /// The device (an admin's) removes identity 2 and rotates the key.
    Evict,
    /// The device rotates the key (whether or not one is needed).
    Rotate,
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let honest = prop_oneof![
        3 => (0u8..3).prop_map(|name| Op::Create { name }),
        4 => (0u8..3, 0u8..3).prop_map(|(name, key)| Op::Put { name, key }),
        2 => (0u8..3, 0u8..3).prop_map(|(name, key)| Op::Remove { name, key }),
        1 => (0u8..3).prop_map(|name| Op::RemoveMap { name }),
        4 => (0u8..4, prop::sample::select(vec!['a', 'b', 'é'])).prop_map(|(pos, c)| Op::Type { pos, c }),
        4 => (0..DEVICES).prop_map(|to| Op::Sync { to }),
        1 => Just(Op::Readmit),
        1 => Just(Op::Evict),
        1 => Just(Op::Rotate),
    ];
    let hostile = prop_oneof![
        3 => (0u8..3, 0u8..3).prop_map(|(name, key)| Op::ForgePut { name, key }),
        2 => (0..DEVICES).prop_map(|of| Op::ForgeText { of }),
        1 => Just(Op::Leave),
        2 => (0u8..3).prop_map(|key| Op::WriteBeforeLeave { key }),
    ];
    prop_oneof![4 => (0..DEVICES, honest), 2 => hostile.prop_map(|op| (HOSTILE, op))]
}

fn identity(device: usize) -> usize {
    if device == 3 { 0 } else { device }
}

fn device(i: usize, now: u64) -> Replica<MemoryStore> {
    let mut p = params(identity(i), INITIAL, Config::default(), MemoryStore::new());
    p.local_peer = peer(i);
    p.rng_seed = i as u64;
    Replica::new(p, now).unwrap()
}

fn map_id(name: u8) -> EntityId {
    child_id(&root_id(), &[b'm', name], CrdtKind::Map, &StorageKind::Public)
}

fn text_id() -> EntityId {
    child_id(&root_id(), b"t", CrdtKind::Text, &StorageKind::Public)
}

fn exists(replica: &Replica<MemoryStore>, id: &EntityId) -> bool {
    weft_state::entity_index(replica.store().state(), id).unwrap().is_some()
}

/// Deliver `bytes` to `to` as gossip; panics on any penalty.
fn deliver(to: &mut Replica<MemoryStore>, bytes: &[u8], now: u64) {
    let outputs = to.handle(Input::GossipReceived { from: peer(9), message: 0, bytes: bytes.to_vec() }, now);
    let penalties: Vec<&Output> = outputs.iter().filter(|o| matches!(o, Output::Penalize { .. })).collect();
    assert!(penalties.is_empty(), "a delta valid at its causal point was refused: {penalties:?}");
}

/// Every delta `replica` holds (applied or waiting).
fn known_bytes(replica: &Replica<MemoryStore>, all: &[(DeltaId, Vec<u8>)]) -> Vec<Vec<u8>> {
    all.iter().filter(|(id, _)| replica.dag().has(id)).map(|(_, bytes)| bytes.clone()).collect()
}

struct History {
    deltas: Vec<(DeltaId, Vec<u8>)>,
    now: u64,
}

fn history(ops: &[(usize, Op)]) -> History {
    let mut now = START_MS;
    let mut devices: Vec<Replica<MemoryStore>> = (0..DEVICES).map(|i| device(i, now)).collect();
    let mut deltas: Vec<(DeltaId, Vec<u8>)> = Vec::new();
    let hostile = key(HOSTILE);
    let mut forged_text = 0u64;
    let mut before_leave: Option<Vec<DeltaId>> = None;
    // The first delta: identity 0 admits identity 2; every device has it.
    let admit = vec![Event::membership(MembershipChange::Add { member: hostile.public_key(), invitation: Hash::ZERO })];
    let write = devices[0].prepare_write(u64::MAX, now, |_| Ok(admit)).unwrap();
    let outputs = devices[0].handle(Input::LocalWrite(write), now);
    let admission = outputs
        .iter()
        .find_map(|o| match o {
            Output::Publish { id, bytes } => Some((*id, bytes.clone())),
            _ => None,
        })
        .expect("the admission is written");
    for device in &mut devices[1..] {
        deliver(device, &admission.1, now);
    }
    deltas.push(admission);
    for (step, (d, op)) in ops.iter().enumerate() {
        now += 1;
        let hlc = Hlc::new(now, 0);
        let stamp = Stamp { hlc, author: hostile.public_key() };
        let forged = |parents: Vec<DeltaId>, op: StateOp, target: EntityId| {
            let action = Action { target, op, stamp, signature: None };
            let delta = SignedDelta::sign(&hostile, &common::context(), parents, hlc, vec![action], Vec::new());
            (delta.id, delta.encode())
        };
        let me = key(identity(*d)).public_key();
        let member = devices[*d].is_member(&me);
        // Forged deltas are signed on a point where their author is a
        // member (one where it is not is refused alike everywhere, which
        // `sync/tests/membership.rs` covers).
        let hostile_member = devices[HOSTILE].is_member(&hostile.public_key());
        let events: Vec<Event> = match op {
            Op::ForgePut { .. } | Op::ForgeText { .. } if !hostile_member => continue,
            Op::Sync { to } => {
                if to != d {
                    for bytes in known_bytes(&devices[*d], &deltas) {
                        deliver(&mut devices[*to], &bytes, now);
                    }
                }
                continue;
            }
            Op::ForgePut { name, key } => {
                let value = (step as u64).to_le_bytes().to_vec();
                let op = StateOp::MapInsert { key: vec![*key], value };
                deltas.push(forged(devices[HOSTILE].heads(), op, map_id(*name)));
                continue;
            }
            Op::ForgeText { of } => {
                let lane = devices[*of].text_lane();
                let left = ItemId { author: key(identity(*of)).public_key(), seq: lane_start(lane) };
                let id = ItemId { author: hostile.public_key(), seq: lane_start(FORGED_LANE) + forged_text };
                forged_text += 1;
                let op = TextOp::Insert { id, origin_left: Some(left), origin_right: None, text: "x".into() };
                deltas.push(forged(devices[HOSTILE].heads(), StateOp::Text(op), text_id()));
                continue;
            }
            Op::WriteBeforeLeave { key } => {
                if let Some(parents) = &before_leave {
                    let op = StateOp::MapInsert { key: vec![b'r', *key], value: vec![step as u8] };
                    deltas.push(forged(parents.clone(), op, root_id()));
                }
                continue;
            }
            _ if !member => continue,
            Op::Leave if devices[*d].members().count() > 1 => {
                before_leave = Some(devices[*d].heads());
                vec![Event::membership(MembershipChange::Leave { member: me })]
            }
            Op::Readmit if !devices[*d].is_member(&hostile.public_key()) => {
                let invitation = Hash::of(&(step as u64).to_le_bytes());
                vec![Event::membership(MembershipChange::Add { member: hostile.public_key(), invitation })]
            }
            Op::Evict if devices[*d].member_set().is_admin(&me) && devices[*d].is_member(&hostile.public_key()) => {
                let rest: Vec<PublicKey> =
                    devices[*d].members().copied().filter(|m| *m != hostile.public_key()).collect();
                vec![
                    Event::membership(MembershipChange::Remove { member: hostile.public_key() }),
                    Event::membership(rotation(&devices[*d], rest)),
                ]
            }
            Op::Rotate => vec![Event::membership(rotation(&devices[*d], devices[*d].members().copied().collect()))],
            Op::Leave | Op::Readmit | Op::Evict => continue,
            _ => Vec::new(),
        };
        let has = |id: &EntityId| exists(&devices[*d], id);
        let (has_map, has_text) = match op {
            Op::Put { name, .. } | Op::Remove { name, .. } => (has(&map_id(*name)), false),
            Op::Type { .. } => (false, has(&text_id())),
            _ => (false, false),
        };
        if matches!(op, Op::Put { .. } | Op::Remove { .. }) && !has_map {
            continue;
        }
        let value = (step as u64).to_le_bytes();
        let write = devices[*d]
            .prepare_write(step as u64, now, |txn| {
                match op {
                    Op::Create { name } => {
                        txn.create(root_id(), &[b'm', *name], CrdtKind::Map, StorageKind::Public)?;
                    }
                    Op::Put { name, key } => txn.map_insert(map_id(*name), &[*key], &value)?,
                    Op::Remove { name, key } => {
                        txn.map_remove(map_id(*name), &[*key])?;
                    }
                    Op::RemoveMap { name } => {
                        txn.map_remove(root_id(), &[b'm', *name])?;
                    }
                    Op::Type { pos, c } => {
                        if !has_text {
                            txn.create(root_id(), b"t", CrdtKind::Text, StorageKind::Public)?;
                        }
                        let len = txn.text_len(text_id())?;
                        txn.text_insert(text_id(), u64::from(*pos).min(len), &c.to_string())?;
                    }
                    _ => {}
                }
                Ok(events)
            })
            .unwrap();
        let outputs = devices[*d].handle(Input::LocalWrite(write), now);
        let published = outputs.iter().find_map(|o| match o {
            Output::Publish { id, bytes } => Some((*id, bytes.clone())),
            _ => None,
        });
        if let Some(delta) = published {
            deltas.push(delta);
        }
    }
    History { deltas, now }
}

/// A rotation to the next epoch at `replica`'s heads, for `members` (the
/// replica checks who a key is wrapped for, not the ciphertext).
fn rotation(replica: &Replica<MemoryStore>, members: Vec<PublicKey>) -> MembershipChange {
    let epoch = replica.member_set().current_epoch().number + 1;
    MembershipChange::Rotate { epoch, wrapped: members.into_iter().map(|m| (m, vec![7; 84])).collect() }
}

/// A random order of `deltas` in which every delta comes after its parents.
fn causal_order(deltas: &[(DeltaId, Vec<u8>)], rng: &mut SeededRng) -> Vec<usize> {
    common::causal_order_by(deltas, |ready| rng.index(ready))
}

type Outcome = (Hash, Vec<PublicKey>, Vec<DeltaId>, usize, usize, (KeyEpoch, bool));

fn outcome(replica: &Replica<MemoryStore>) -> Outcome {
    let members = replica.member_set();
    (
        replica.root_hash(),
        replica.members().copied().collect(),
        replica.heads(),
        replica.applied_count() as usize,
        replica.dag().pending_count(),
        (members.current_epoch(), members.rotation_needed()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn adversarial_concurrent_deltas_in_three_causal_orders_give_one_outcome(
        ops in proptest::collection::vec(op(), 1..60),
        seed in any::<u64>(),
    ) {
        let History { deltas, now } = history(&ops);
        let mut rng = SeededRng::new(seed);
        let mut outcomes: Vec<Outcome> = Vec::new();
        for k in 0..3 {
            let order = causal_order(&deltas, &mut rng);
            let mut observer = device(k % IDENTITIES, now);
            for i in order {
                deliver(&mut observer, &deltas[i].1, now);
            }
            outcomes.push(outcome(&observer));
        }
        for other in &outcomes[1..] {
            prop_assert_eq!(other, &outcomes[0]);
        }
    }
}

/// The cases the property mixes, one at a time and in both orders, so a
/// failure names its rule.
mod cases {
    use super::*;

    fn both_orders(ops: &[(usize, Op)]) -> [Outcome; 2] {
        let History { deltas, now } = history(ops);
        let mut outcomes = Vec::new();
        for reversed in [false, true] {
            let mut order: Vec<usize> = (0..deltas.len()).collect();
            if reversed {
                // Reverse the concurrent tail: still causal (checked).
                order = causal_order_reversed(&deltas);
            }
            let mut observer = device(1, now);
            for i in order {
                deliver(&mut observer, &deltas[i].1, now);
            }
            outcomes.push(outcome(&observer));
        }
        [outcomes[0].clone(), outcomes[1].clone()]
    }

    /// A causal order that takes, at each step, the *last* ready delta.
    fn causal_order_reversed(deltas: &[(DeltaId, Vec<u8>)]) -> Vec<usize> {
        common::causal_order_by(deltas, |ready| ready - 1)
    }

    #[test]
    fn a_write_into_a_map_a_concurrent_delta_creates_applies_whatever_the_order() {
        let [first, second] = both_orders(&[(0, Op::Create { name: 1 }), (HOSTILE, Op::ForgePut { name: 1, key: 0 })]);
        assert_eq!(first, second);
        assert_eq!(first.3, 3, "both deltas applied (and the admission)");
        assert_eq!(first.4, 0, "nothing waits");
    }

    #[test]
    fn a_text_insert_after_a_concurrent_character_applies_whatever_the_order() {
        let [first, second] = both_orders(&[(0, Op::Type { pos: 0, c: 'a' }), (HOSTILE, Op::ForgeText { of: 0 })]);
        assert_eq!(first, second);
        assert_eq!(first.3, 3, "both deltas applied (and the admission)");
    }

    #[test]
    fn one_identity_typing_on_two_nodes_at_once_converges() {
        let [first, second] = both_orders(&[
            (0, Op::Type { pos: 0, c: 'a' }),
            (0, Op::Sync { to: 3 }),
            (0, Op::Type { pos: 1, c: 'b' }),
            (3, Op::Type { pos: 1, c: 'é' }),
        ]);
        assert_eq!(first, second);
        assert_eq!(first.3, 4, "every delta applied (and the admission)");
    }

    #[test]
    fn a_write_concurrent_with_its_authors_leave_is_valid_everywhere() {
        let [first, second] = both_orders(&[(HOSTILE, Op::Leave), (HOSTILE, Op::WriteBeforeLeave { key: 1 })]);
        assert_eq!(first, second);
        assert_eq!(first.3, 3, "valid at its causal point, where its author was a member");
        assert!(!first.1.contains(&key(HOSTILE).public_key()));
        assert!(first.5.1, "the leaver held the first key: a rotation is needed");
    }

    #[test]
    fn a_write_concurrent_with_its_authors_removal_is_valid_everywhere() {
        let [first, second] = both_orders(&[
            (0, Op::Create { name: 0 }),
            (0, Op::Sync { to: HOSTILE }),
            (0, Op::Evict),
            (HOSTILE, Op::ForgePut { name: 0, key: 1 }),
        ]);
        assert_eq!(first, second);
        assert_eq!(first.3, 4, "valid at its causal point, where its author was a member");
        assert!(!first.1.contains(&key(HOSTILE).public_key()));
        assert_eq!(first.5.0.number, 1);
        assert!(!first.5.1, "the rotation covers the removal");
    }

    #[test]
    fn concurrent_removals_by_two_admins_converge_and_ask_for_one_more_rotation() {
        let [first, second] = both_orders(&[
            (0, Op::Evict),
            (1, Op::Evict),
            (0, Op::Sync { to: 1 }),
            (1, Op::Sync { to: 0 }),
            (0, Op::Readmit),
        ]);
        assert_eq!(first, second);
        assert!(first.1.contains(&key(HOSTILE).public_key()), "the later Add wins");
        assert_eq!(first.5.0.number, 1, "two rotations to epoch 1; one wins alike everywhere");
        assert!(!first.5.1, "a member again: nothing to hide from it");
    }

    #[test]
    fn a_removal_racing_a_readmission_is_decided_by_stamp_alike_everywhere() {
        let [first, second] =
            both_orders(&[(HOSTILE, Op::Leave), (HOSTILE, Op::Sync { to: 0 }), (0, Op::Readmit), (1, Op::Evict)]);
        assert_eq!(first, second);
        assert_eq!(first.3, 4);
    }
}
