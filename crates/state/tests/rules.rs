//! One test per merge rule and per validation rule.

// Helpers outside #[test] fns are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::Replica;
use weft_primitives::Hash;
use weft_state::{
    Action, CrdtKind, Materialized, Op, StateError, StorageKind, Value, child_id, materialize, recompute_root_hash,
    root_id,
};

fn root() -> weft_state::EntityId {
    root_id()
}

fn bytes(value: &[u8]) -> Option<Value> {
    Some(Value::Bytes(value.to_vec()))
}

/// Exchange two replicas' deltas in both directions.
fn exchange(a: &mut Replica, a_actions: &[Action], b: &mut Replica, b_actions: &[Action]) {
    let (a_author, b_author) = (a.author(), b.author());
    b.receive(&a_author, a_actions).unwrap();
    a.receive(&b_author, b_actions).unwrap();
}

#[test]
fn empty_state_root_equals_recomputation() {
    let r = Replica::new(1);
    assert_eq!(r.checked_root(), recompute_root_hash(&r.kv).unwrap());
    assert_eq!(materialize(&r.kv).unwrap(), Materialized::Map(Default::default()));
}

#[test]
fn lww_register_greater_stamp_wins_ties_broken_by_author() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let reg = child_id(&root(), b"r", CrdtKind::LwwRegister, &StorageKind::Public);
    let (_, create_a) = a.txn_at(10, |t| t.create(root(), b"r", CrdtKind::LwwRegister, StorageKind::Public)).unwrap();
    b.receive(&a.author(), &create_a).unwrap();
    // Same wall time, same counter: only the author differs.
    let (_, set_a) = a.txn_at(100, |t| t.register_set(reg, b"from a")).unwrap();
    let (_, set_b) = b.txn_at(100, |t| t.register_set(reg, b"from b")).unwrap();
    assert_eq!(set_a[0].stamp.hlc, set_b[0].stamp.hlc);
    exchange(&mut a, &set_a, &mut b, &set_b);
    let winner: &[u8] = if a.author() > b.author() { b"from a" } else { b"from b" };
    assert_eq!(a.read(|t| t.register_get(reg)), Some(winner.to_vec()));
    assert_eq!(b.read(|t| t.register_get(reg)), Some(winner.to_vec()));
    assert_eq!(a.checked_root(), b.checked_root());
    // A later write wins over both.
    let (_, later) = b.txn_at(200, |t| t.register_set(reg, b"later")).unwrap();
    a.receive(&b.author(), &later).unwrap();
    assert_eq!(a.read(|t| t.register_get(reg)), Some(b"later".to_vec()));
}

#[test]
fn map_insert_ties_broken_by_author() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let (_, x) = a.txn_at(50, |t| t.map_insert(root(), b"k", b"a")).unwrap();
    let (_, y) = b.txn_at(50, |t| t.map_insert(root(), b"k", b"b")).unwrap();
    exchange(&mut a, &x, &mut b, &y);
    let winner: &[u8] = if a.author() > b.author() { b"a" } else { b"b" };
    assert_eq!(a.read(|t| t.map_get(root(), b"k")), bytes(winner));
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn counters_max_merge_per_author_and_ignore_duplicates() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let c = child_id(&root(), b"c", CrdtKind::PnCounter, &StorageKind::Public);
    let (_, create) = a.txn(|t| t.create(root(), b"c", CrdtKind::PnCounter, StorageKind::Public)).unwrap();
    b.receive(&a.author(), &create).unwrap();
    let (_, a1) = a.txn(|t| t.counter_add(c, 5)).unwrap();
    let (_, a2) = a.txn(|t| t.counter_add(c, -2)).unwrap();
    let (_, b1) = b.txn(|t| t.counter_add(c, 3)).unwrap();
    assert_eq!(a2[0].op, Op::CounterTotals { up: 5, down: 2 });
    b.receive(&a.author(), &a1).unwrap();
    b.receive(&a.author(), &a2).unwrap();
    // Duplicate and stale deliveries change nothing.
    let before = b.root();
    b.receive(&a.author(), &a2).unwrap();
    b.receive(&a.author(), &a1).unwrap();
    assert_eq!(b.root(), before);
    a.receive(&b.author(), &b1).unwrap();
    assert_eq!(a.read(|t| t.counter_value(c)), 6);
    assert_eq!(b.read(|t| t.counter_value(c)), 6);
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn grow_only_counter_refuses_decrements_local_and_remote() {
    let mut a = Replica::new(1);
    let c = child_id(&root(), b"g", CrdtKind::GCounter, &StorageKind::Public);
    a.txn(|t| t.create(root(), b"g", CrdtKind::GCounter, StorageKind::Public)).unwrap();
    assert_eq!(a.txn(|t| t.counter_add(c, -1)).unwrap_err(), StateError::CounterDecrement);
    let forged = Action {
        target: c,
        op: Op::CounterTotals { up: 0, down: 4 },
        stamp: weft_state::Stamp::new(weft_primitives::Hlc::new(99, 0), a.author()),
        signature: None,
    };
    let before = a.root();
    assert_eq!(a.receive(&a.author(), &[forged]).unwrap_err(), StateError::CounterDecrement);
    assert_eq!(a.root(), before);
}

#[test]
fn frozen_map_is_content_addressed_and_write_once() {
    let mut a = Replica::new(1);
    let f = child_id(&root(), b"blobs", CrdtKind::Map, &StorageKind::Frozen);
    a.txn(|t| t.create(root(), b"blobs", CrdtKind::Map, StorageKind::Frozen)).unwrap();
    let value = b"immutable".to_vec();
    let key = Hash::of(&value).0;
    let (_, first) = a.txn(|t| t.map_insert(f, &key, &value)).unwrap();
    assert_eq!(first.len(), 1);
    // Re-inserting the same content is a no-op: no action at all.
    let (_, again) = a.txn(|t| t.map_insert(f, &key, &value)).unwrap();
    assert!(again.is_empty());
    assert_eq!(a.txn(|t| t.map_insert(f, b"not-the-hash", &value)).unwrap_err(), StateError::FrozenKeyMismatch);
    assert_eq!(a.txn(|t| t.map_remove(f, &key)).unwrap_err(), StateError::FrozenRemove);
    assert!(matches!(
        a.txn(|t| t.create(f, b"x", CrdtKind::Map, StorageKind::Public)).unwrap_err(),
        StateError::FrozenUnsupported(_)
    ));
    assert!(matches!(
        a.txn(|t| t.create(root(), b"fs", CrdtKind::Set, StorageKind::Frozen)).unwrap_err(),
        StateError::FrozenUnsupported(_)
    ));
    assert_eq!(a.read(|t| t.map_get(f, &key)), bytes(&value));
    // Concurrent inserts of the same content keep the first write whatever the order.
    let mut b = Replica::new(2);
    let mut c = Replica::new(3);
    let (_, create) = b.txn(|t| t.create(root(), b"blobs", CrdtKind::Map, StorageKind::Frozen)).unwrap();
    c.receive(&b.author(), &create).unwrap();
    let (_, x) = b.txn_at(10, |t| t.map_insert(f, &key, &value)).unwrap();
    let (_, y) = c.txn_at(20, |t| t.map_insert(f, &key, &value)).unwrap();
    exchange(&mut b, &x, &mut c, &y);
    assert_eq!(b.checked_root(), c.checked_root());
}

#[test]
fn user_owned_accepts_the_owner_and_rejects_others() {
    let mut owner = Replica::new(1);
    let mut other = Replica::new(2);
    let storage = StorageKind::UserOwned { owner: owner.author() };
    let profile = child_id(&root(), b"profile", CrdtKind::Map, &storage);
    let (_, create) = owner.txn(|t| t.create(root(), b"profile", CrdtKind::Map, storage)).unwrap();
    assert!(create[0].signature.is_some(), "creating a user-owned collection is signed");
    let (_, write) = owner.txn(|t| t.map_insert(profile, b"name", b"ada")).unwrap();
    assert!(write[0].signature.is_some());
    other.receive(&owner.author(), &create).unwrap();
    other.receive(&owner.author(), &write).unwrap();
    assert_eq!(other.read(|t| t.map_get(profile, b"name")), bytes(b"ada"));

    // A non-owner's local write is refused and the transaction emits nothing.
    let err = other.txn(|t| t.map_insert(profile, b"name", b"eve")).unwrap_err();
    assert!(matches!(err, StateError::NotOwner { .. }));
    // Creating a user-owned collection for someone else is refused too.
    let err = other.txn(|t| t.create(root(), b"squat", CrdtKind::Map, storage)).unwrap_err();
    assert!(matches!(err, StateError::NotOwner { .. }));

    let before = other.root();
    let stamp = weft_state::Stamp::new(weft_primitives::Hlc::new(500, 0), other.author());
    let op = Op::MapInsert { key: b"name".to_vec(), value: b"eve".to_vec() };
    // Remote write by a non-owner, signed with its own key.
    let mut by_other = Action { target: profile, op: op.clone(), stamp, signature: None };
    by_other.signature = Some(other.key.sign(by_other.signing_digest(&common::CONTEXT).as_bytes()));
    assert!(matches!(other.receive(&other.author(), &[by_other]).unwrap_err(), StateError::NotOwner { .. }));
    // Claiming to be the owner, with a forged signature.
    let owner_stamp = weft_state::Stamp::new(stamp.hlc, owner.author());
    let mut forged = Action { target: profile, op: op.clone(), stamp: owner_stamp, signature: None };
    forged.signature = Some(other.key.sign(forged.signing_digest(&common::CONTEXT).as_bytes()));
    assert_eq!(other.receive(&owner.author(), &[forged]).unwrap_err(), StateError::BadSignature(profile));
    // A genuine signature over different content does not transfer.
    let mut replayed = write[0].clone();
    replayed.op = op.clone();
    assert_eq!(other.receive(&owner.author(), &[replayed]).unwrap_err(), StateError::BadSignature(profile));
    // The owner's own signature, made for another context, is replayed here.
    let mut elsewhere = Action { target: profile, op: op.clone(), stamp: owner_stamp, signature: None };
    elsewhere.signature = Some(owner.key.sign(elsewhere.signing_digest(&Hash([8; 32])).as_bytes()));
    assert_eq!(other.receive(&owner.author(), &[elsewhere.clone()]).unwrap_err(), StateError::BadSignature(profile));
    // Unsigned.
    let unsigned = Action { target: profile, op, stamp: owner_stamp, signature: None };
    assert_eq!(other.receive(&owner.author(), &[unsigned]).unwrap_err(), StateError::MissingSignature(profile));
    assert_eq!(other.root(), before, "rejected actions change nothing");
    assert_eq!(other.read(|t| t.map_get(profile, b"name")), bytes(b"ada"));
    // The same action signed for this context is accepted: only the context was wrong.
    elsewhere.signature = Some(owner.key.sign(elsewhere.signing_digest(&common::CONTEXT).as_bytes()));
    other.receive(&owner.author(), &[elsewhere]).unwrap();
    assert_eq!(other.read(|t| t.map_get(profile, b"name")), bytes(b"eve"));
}

#[test]
fn public_actions_carry_no_signature_and_batches_are_single_author() {
    let mut a = Replica::new(1);
    let b = Replica::new(2);
    let (_, mut actions) = a.txn(|t| t.map_insert(root(), b"k", b"v")).unwrap();
    let mut c = Replica::new(3);
    assert!(matches!(c.receive(&b.author(), &actions).unwrap_err(), StateError::ForeignAuthor { .. }));
    actions[0].signature = Some(a.key.sign(actions[0].signing_digest(&common::CONTEXT).as_bytes()));
    assert_eq!(c.receive(&a.author(), &actions).unwrap_err(), StateError::UnexpectedSignature(root()));
    assert_eq!(c.root(), Replica::new(3).root());
}

#[test]
fn a_batch_with_one_bad_action_writes_nothing() {
    let mut a = Replica::new(1);
    let (_, mut actions) = a
        .txn(|t| {
            t.map_insert(root(), b"k1", b"v")?;
            t.map_insert(root(), b"k2", b"v")
        })
        .unwrap();
    actions[1].target = Hash::of(b"nobody");
    let mut b = Replica::new(2);
    let before = b.root();
    assert_eq!(b.receive(&a.author(), &actions).unwrap_err(), StateError::UnknownTarget(Hash::of(b"nobody")));
    assert_eq!(b.root(), before);
    assert!(b.kv.is_empty());
}

/// The regression of the reference system: a tombstoned entry came back
/// when a concurrent *older* update arrived after the remove.
#[test]
fn removed_entry_stays_removed_under_a_concurrent_older_update_in_both_orders() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let (_, base) = a.txn_at(10, |t| t.map_insert(root(), b"k", b"v1")).unwrap();
    b.receive(&a.author(), &base).unwrap();
    // Concurrent: a updates at t=20, b removes at t=30.
    let (_, update) = a.txn_at(20, |t| t.map_insert(root(), b"k", b"v2")).unwrap();
    let (removed, remove) = b.txn_at(30, |t| t.map_remove(root(), b"k")).unwrap();
    assert!(removed);
    exchange(&mut a, &update, &mut b, &remove);
    assert_eq!(a.read(|t| t.map_get(root(), b"k")), None);
    assert_eq!(b.read(|t| t.map_get(root(), b"k")), None);
    assert_eq!(a.read(|t| t.map_len(root())), 0);
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn newer_update_beats_an_older_concurrent_remove_in_both_orders() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let (_, base) = a.txn_at(10, |t| t.map_insert(root(), b"k", b"v1")).unwrap();
    b.receive(&a.author(), &base).unwrap();
    let (_, remove) = b.txn_at(20, |t| t.map_remove(root(), b"k")).unwrap();
    let (_, update) = a.txn_at(30, |t| t.map_insert(root(), b"k", b"v2")).unwrap();
    exchange(&mut a, &update, &mut b, &remove);
    assert_eq!(a.read(|t| t.map_get(root(), b"k")), bytes(b"v2"));
    assert_eq!(b.read(|t| t.map_get(root(), b"k")), bytes(b"v2"));
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn removed_nested_collection_keeps_taking_ops_and_a_newer_create_shows_it_again() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let inner = child_id(&root(), b"m", CrdtKind::Map, &StorageKind::Public);
    let (_, create) = a.txn_at(10, |t| t.create(root(), b"m", CrdtKind::Map, StorageKind::Public)).unwrap();
    b.receive(&a.author(), &create).unwrap();
    // Concurrent: b removes the key, a writes inside the map.
    let (_, remove) = b.txn_at(20, |t| t.map_remove(root(), b"m")).unwrap();
    let (_, write) = a.txn_at(21, |t| t.map_insert(inner, b"x", b"1")).unwrap();
    exchange(&mut a, &write, &mut b, &remove);
    for r in [&a, &b] {
        assert_eq!(r.read(|t| t.map_get(root(), b"m")), None);
        assert_eq!(r.read(|t| t.map_get(inner, b"x")), bytes(b"1"), "hidden contents still applied");
    }
    assert_eq!(a.checked_root(), b.checked_root());
    // A newer create makes it visible again, contents included.
    let (_, recreate) = b.txn_at(40, |t| t.create(root(), b"m", CrdtKind::Map, StorageKind::Public)).unwrap();
    a.receive(&b.author(), &recreate).unwrap();
    for r in [&a, &b] {
        assert_eq!(r.read(|t| t.map_get(root(), b"m")), Some(Value::Collection { id: inner, kind: CrdtKind::Map }));
    }
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn concurrent_creates_of_one_collection_merge_and_kinds_never_mix() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let scores = child_id(&root(), b"scores", CrdtKind::Map, &StorageKind::Public);
    let alice = child_id(&scores, b"alice", CrdtKind::PnCounter, &StorageKind::Public);
    let (_, x) = a
        .txn_at(10, |t| {
            let s = t.create(root(), b"scores", CrdtKind::Map, StorageKind::Public)?;
            let c = t.create(s, b"alice", CrdtKind::PnCounter, StorageKind::Public)?;
            t.counter_add(c, 2)
        })
        .unwrap();
    let (_, y) = b
        .txn_at(11, |t| {
            let s = t.create(root(), b"scores", CrdtKind::Map, StorageKind::Public)?;
            let c = t.create(s, b"alice", CrdtKind::PnCounter, StorageKind::Public)?;
            t.counter_add(c, 3)?;
            // A different kind under another key.
            t.create(s, b"bob", CrdtKind::Set, StorageKind::Public).map(|_| ())
        })
        .unwrap();
    exchange(&mut a, &x, &mut b, &y);
    assert_eq!(a.read(|t| t.counter_value(alice)), 5);
    assert_eq!(b.read(|t| t.counter_value(alice)), 5);
    assert_eq!(a.read(|t| t.map_len(scores)), 2);
    assert_eq!(a.checked_root(), b.checked_root());
    // Concurrent creates of different kinds under one key: two entities, LWW picks the visible one.
    let (_, p) = a.txn_at(50, |t| t.create(scores, b"carol", CrdtKind::GCounter, StorageKind::Public)).unwrap();
    let (_, q) = b.txn_at(50, |t| t.create(scores, b"carol", CrdtKind::Set, StorageKind::Public)).unwrap();
    exchange(&mut a, &p, &mut b, &q);
    assert_eq!(a.read(|t| t.map_get(scores, b"carol")), b.read(|t| t.map_get(scores, b"carol")));
    assert_eq!(a.checked_root(), b.checked_root());
    assert_eq!(materialize(&a.kv).unwrap(), materialize(&b.kv).unwrap());
}

#[test]
fn vector_concurrent_pushes_order_by_stamp() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let v = child_id(&root(), b"v", CrdtKind::Vector, &StorageKind::Public);
    let (_, create) = a.txn_at(5, |t| t.create(root(), b"v", CrdtKind::Vector, StorageKind::Public)).unwrap();
    b.receive(&a.author(), &create).unwrap();
    let (_, x) = a
        .txn_at(10, |t| {
            t.vector_push(v, b"a1")?;
            t.vector_push(v, b"a2")
        })
        .unwrap();
    let (_, y) = b.txn_at(10, |t| t.vector_push(v, b"b1")).unwrap();
    exchange(&mut a, &x, &mut b, &y);
    // a1 has stamp (10,0,A), b1 (10,0,B), a2 (10,1,A).
    let first_two: Vec<&[u8]> = if a.author() < b.author() { vec![b"a1", b"b1"] } else { vec![b"b1", b"a1"] };
    let expected: Vec<Vec<u8>> = first_two.into_iter().chain([&b"a2"[..]]).map(<[u8]>::to_vec).collect();
    for r in [&a, &b] {
        let got: Vec<Vec<u8>> = (0..3).map(|i| r.read(|t| t.vector_get(v, i)).unwrap()).collect();
        assert_eq!(got, expected);
        assert_eq!(r.read(|t| t.vector_get(v, 3)), None);
    }
    // Set and remove by index, replicated.
    let (_, z) = a
        .txn_at(20, |t| {
            t.vector_set(v, 1, b"mid")?;
            t.vector_remove(v, 0)
        })
        .unwrap();
    b.receive(&a.author(), &z).unwrap();
    assert_eq!(b.read(|t| t.vector_len(v)), 2);
    assert_eq!(b.read(|t| t.vector_get(v, 0)), Some(b"mid".to_vec()));
    assert_eq!(a.txn(|t| t.vector_set(v, 7, b"x")).unwrap_err(), StateError::IndexOutOfRange { index: 7, len: 2 });
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn unknown_targets_kinds_and_elements_are_refused() {
    let mut a = Replica::new(1);
    let nobody = Hash::of(b"nobody");
    assert_eq!(a.txn(|t| t.map_insert(nobody, b"k", b"v")).unwrap_err(), StateError::UnknownTarget(nobody));
    assert!(matches!(a.txn(|t| t.counter_add(root(), 1)).unwrap_err(), StateError::WrongKind { .. }));
    let v = child_id(&root(), b"v", CrdtKind::Vector, &StorageKind::Public);
    a.txn(|t| t.create(root(), b"v", CrdtKind::Vector, StorageKind::Public)).unwrap();
    let ghost = weft_state::Stamp::new(weft_primitives::Hlc::new(1, 1), a.author());
    let action = Action { target: v, op: Op::VectorRemove { element: ghost }, stamp: ghost, signature: None };
    assert_eq!(a.receive(&a.author(), &[action]).unwrap_err(), StateError::UnknownElement);
    let long_key = vec![0u8; weft_state::KEY_BYTES_MAX + 1];
    assert!(matches!(a.txn(|t| t.map_insert(root(), &long_key, b"v")).unwrap_err(), StateError::KeyTooLong(_)));
}

#[test]
fn a_failed_call_leaves_the_transaction_usable() {
    let mut a = Replica::new(1);
    let (_, actions) = a
        .txn(|t| {
            assert!(t.counter_add(root(), 1).is_err());
            t.map_insert(root(), b"k", b"v")
        })
        .unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(a.read(|t| t.map_get(root(), b"k")), bytes(b"v"));
}

#[test]
fn dropping_a_transaction_changes_nothing() {
    let mut a = Replica::new(1);
    a.txn(|t| t.map_insert(root(), b"k", b"v")).unwrap();
    let before = a.kv.clone();
    {
        let mut txn = weft_state::StateTxn::new(&a.kv, common::CONTEXT, &a.key, weft_primitives::Hlc::new(100, 0));
        txn.map_insert(root(), b"k", b"other").unwrap();
        txn.map_insert(root(), b"k2", b"v").unwrap();
        assert_eq!(txn.map_get(root(), b"k").unwrap(), bytes(b"other"));
    }
    assert_eq!(a.kv, before);
}

#[test]
fn read_only_transactions_refuse_writes() {
    let a = Replica::new(1);
    let mut txn = weft_state::StateTxn::read_only(&a.kv);
    assert_eq!(txn.map_insert(root(), b"k", b"v").unwrap_err(), StateError::ReadOnly);
}

#[test]
fn maps_and_sets_list_in_pages_skipping_removed_entries() {
    let mut a = Replica::new(1);
    let s = child_id(&root(), b"s", CrdtKind::Set, &StorageKind::Public);
    a.txn(|t| {
        t.create(root(), b"s", CrdtKind::Set, StorageKind::Public)?;
        for i in 0u16..300 {
            t.map_insert(root(), &i.to_be_bytes(), b"v")?;
            t.set_add(s, &i.to_be_bytes())?;
        }
        Ok(())
    })
    .unwrap();
    // Remove the odd ones in a second transaction; add more in a third and list before committing.
    a.txn(|t| {
        for i in (1u16..300).step_by(2) {
            t.map_remove(root(), &i.to_be_bytes())?;
            t.set_remove(s, &i.to_be_bytes())?;
        }
        Ok(())
    })
    .unwrap();
    let (listed, _) = a
        .txn(|t| {
            t.map_insert(root(), &1000u16.to_be_bytes(), b"w")?;
            let mut keys = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = t.map_entries(root(), after.as_deref(), 7)?;
                keys.extend(page.items.into_iter().map(|(k, _)| k));
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(t.map_len(root())?, 152);
            Ok(keys)
        })
        .unwrap();
    let mut expected: Vec<Vec<u8>> = (0u16..300).step_by(2).map(|i| i.to_be_bytes().to_vec()).collect();
    expected.push(1000u16.to_be_bytes().to_vec());
    expected.retain(|k| k.as_slice() != b"s");
    assert_eq!(listed.len(), expected.len() + 1, "plus the set's own key");
    let page = a.read(|t| t.set_iter(s, Some(&10u16.to_be_bytes()), 3));
    assert_eq!(
        page.items,
        vec![12u16.to_be_bytes().to_vec(), 14u16.to_be_bytes().to_vec(), 16u16.to_be_bytes().to_vec()]
    );
    assert!(a.read(|t| t.set_contains(s, &2u16.to_be_bytes())));
    assert!(!a.read(|t| t.set_contains(s, &3u16.to_be_bytes())));
    assert_eq!(a.read(|t| t.set_len(s)), 150);
    a.checked_root();
}

#[test]
fn tree_shape_and_hash_do_not_depend_on_insertion_order() {
    let keys: Vec<Vec<u8>> = (0u32..200).map(|i| (i * 7919 % 1000).to_be_bytes().to_vec()).collect();
    let mut a = Replica::new(1);
    let mut b = Replica::new(1);
    // Same author and stamps, keys in opposite orders and different batching.
    let stamped: Vec<(u64, &Vec<u8>)> = keys.iter().enumerate().map(|(i, k)| (i as u64 + 10, k)).collect();
    for chunk in stamped.chunks(13) {
        let actions: Vec<Action> = chunk
            .iter()
            .map(|(wall, key)| Action {
                target: root(),
                op: Op::MapInsert { key: key.to_vec(), value: b"v".to_vec() },
                stamp: weft_state::Stamp::new(weft_primitives::Hlc::new(*wall, 0), a.author()),
                signature: None,
            })
            .collect();
        a.receive(&a.author(), &actions).unwrap();
        let reversed: Vec<Action> = actions.into_iter().rev().collect();
        b.receive(&b.author(), &reversed).unwrap();
    }
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn text_edits_replicate_and_converge() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    let doc = child_id(&root(), b"doc", CrdtKind::Text, &StorageKind::Public);
    let (_, create) = a
        .txn_at(10, |t| {
            let d = t.create(root(), b"doc", CrdtKind::Text, StorageKind::Public)?;
            t.text_insert(d, 0, "hello world")
        })
        .unwrap();
    b.receive(&a.author(), &create).unwrap();
    let (_, x) = a.txn_at(20, |t| t.text_insert(doc, 5, ",")).unwrap();
    let (_, y) = b
        .txn_at(20, |t| {
            t.text_delete(doc, 6, 5)?;
            t.text_insert(doc, 6, "there")
        })
        .unwrap();
    exchange(&mut a, &x, &mut b, &y);
    assert_eq!(a.read(|t| t.text_read(doc)), "hello, there");
    assert_eq!(b.read(|t| t.text_read(doc)), "hello, there");
    assert_eq!(a.read(|t| t.text_len(doc)), 12);
    assert_eq!(a.checked_root(), b.checked_root());
    // An insert naming another author's item ids is refused.
    let mut forged = x[0].clone();
    if let Op::Text(weft_text::TextOp::Insert { id, .. }) = &mut forged.op {
        id.author = b.author();
    }
    assert_eq!(a.receive(&a.author(), &[forged]).unwrap_err(), StateError::ForeignTextItem);
}

#[test]
fn actions_round_trip_and_garbage_is_rejected() {
    let mut a = Replica::new(1);
    let storage = StorageKind::UserOwned { owner: a.author() };
    let (_, actions) = a
        .txn(|t| {
            let m = t.create(root(), b"m", CrdtKind::Map, storage)?;
            t.map_insert(m, b"k", b"v")?;
            let d = t.create(root(), b"d", CrdtKind::Text, StorageKind::Public)?;
            t.text_insert(d, 0, "hi")
        })
        .unwrap();
    for action in &actions {
        let bytes = action.encode();
        assert_eq!(&Action::decode(&bytes).unwrap(), action);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Action::decode(&trailing).is_err());
        assert!(Action::decode(&bytes[..bytes.len() - 1]).is_err());
    }
    let mut bad_tag = actions[0].encode();
    bad_tag[32] = 200; // the op's variant tag follows the 32-byte target
    assert!(Action::decode(&bad_tag).is_err());
}

#[test]
fn user_owned_text_refuses_other_authors_before_touching_the_document() {
    let mut owner = Replica::new(1);
    let mut other = Replica::new(2);
    let storage = StorageKind::UserOwned { owner: owner.author() };
    let doc = child_id(&root(), b"notes", CrdtKind::Text, &storage);
    let (_, actions) = owner
        .txn(|t| {
            let d = t.create(root(), b"notes", CrdtKind::Text, storage)?;
            t.text_insert(d, 0, "mine")
        })
        .unwrap();
    other.receive(&owner.author(), &actions).unwrap();
    let (_, emitted) = other
        .txn(|t| {
            assert!(matches!(t.text_insert(doc, 0, "x"), Err(StateError::NotOwner { .. })));
            // The transaction is not poisoned and the document is untouched.
            assert_eq!(t.text_read(doc)?, "mine");
            t.map_insert(root(), b"k", b"v")
        })
        .unwrap();
    assert_eq!(emitted.len(), 1);
}

#[test]
fn recomputation_catches_a_tampered_row() {
    let mut a = Replica::new(1);
    let reg = child_id(&root(), b"r", CrdtKind::LwwRegister, &StorageKind::Public);
    a.txn(|t| {
        t.create(root(), b"r", CrdtKind::LwwRegister, StorageKind::Public)?;
        t.register_set(reg, b"honest")
    })
    .unwrap();
    let root_before = a.checked_root();
    let key = weft_state::entry_key(&reg);
    let mut bytes = weft_primitives::kv::KvRead::get(&a.kv, &key).unwrap().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut tamper = weft_primitives::kv::WriteSet::new();
    tamper.put(key, bytes);
    a.kv.apply(tamper);
    assert_eq!(a.root(), root_before, "the stored root does not see the change");
    assert_ne!(recompute_root_hash(&a.kv).unwrap(), root_before, "the recomputation does");
}
