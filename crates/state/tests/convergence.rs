//! The core guarantee, property-tested: replicas that make random local
//! changes to nested collections and receive every delta exactly once, in any
//! causally consistent order, end with the same root hash and the same
//! materialized state; the incremental root always equals a full
//! recomputation; replaying the deltas in other causal orders gives the same
//! root; actions survive encode/decode.

// Helpers outside #[test] fns are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::Replica;
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weft_primitives::kv::MemoryKv;
use weft_primitives::{Hash, PublicKey};
use weft_state::{
    Action, CrdtKind, EntityId, StateError, StateTxn, StorageKind, apply_actions, child_id, materialize, root_id,
};

const REPLICAS: usize = 3;

/// One random local operation; keys and values come from tiny alphabets so
/// that replicas collide often.
#[derive(Clone, Debug)]
enum LocalOp {
    RootInsert(u8, u8),
    RootRemove(u8),
    MapInsert(u8, u8),
    MapRemove(u8),
    MapCreateSet(u8),
    MapNestedSetAdd(u8, u8),
    CounterMapAdd(u8, i8),
    CounterMapRemove(u8),
    MapOfMapsCreate(u8),
    MapOfMapsInsert(u8, u8, u8),
    MapOfMapsRemove(u8),
    MapOfMapsInnerRemove(u8, u8),
    CounterAdd(i8),
    GrowOnlyAdd(u8),
    SetAdd(u8),
    SetRemove(u8),
    VectorPush(u8),
    VectorSet(u8, u8),
    VectorRemove(u8),
    RegisterSet(u8),
    TextInsert(u8, char),
    TextDelete(u8, u8),
    FrozenInsert(u8),
    OwnInsert(u8, u8),
    OwnRemove(u8),
}

fn local_op() -> impl Strategy<Value = LocalOp> {
    let k = 0u8..3;
    let v = 0u8..4;
    prop_oneof![
        (k.clone(), v.clone()).prop_map(|(k, v)| LocalOp::RootInsert(k, v)),
        k.clone().prop_map(LocalOp::RootRemove),
        (k.clone(), v.clone()).prop_map(|(k, v)| LocalOp::MapInsert(k, v)),
        k.clone().prop_map(LocalOp::MapRemove),
        k.clone().prop_map(LocalOp::MapCreateSet),
        (k.clone(), v.clone()).prop_map(|(k, v)| LocalOp::MapNestedSetAdd(k, v)),
        (k.clone(), -3i8..4).prop_map(|(k, d)| LocalOp::CounterMapAdd(k, d)),
        k.clone().prop_map(LocalOp::CounterMapRemove),
        k.clone().prop_map(LocalOp::MapOfMapsCreate),
        (k.clone(), k.clone(), v.clone()).prop_map(|(k, i, v)| LocalOp::MapOfMapsInsert(k, i, v)),
        k.clone().prop_map(LocalOp::MapOfMapsRemove),
        (k.clone(), k.clone()).prop_map(|(k, i)| LocalOp::MapOfMapsInnerRemove(k, i)),
        (-3i8..4).prop_map(LocalOp::CounterAdd),
        (0u8..4).prop_map(LocalOp::GrowOnlyAdd),
        v.clone().prop_map(LocalOp::SetAdd),
        v.clone().prop_map(LocalOp::SetRemove),
        v.clone().prop_map(LocalOp::VectorPush),
        (any::<u8>(), v.clone()).prop_map(|(i, v)| LocalOp::VectorSet(i, v)),
        any::<u8>().prop_map(LocalOp::VectorRemove),
        v.clone().prop_map(LocalOp::RegisterSet),
        (any::<u8>(), prop::sample::select(vec!['a', 'b', 'é', '字'])).prop_map(|(p, c)| LocalOp::TextInsert(p, c)),
        (any::<u8>(), 1u8..3).prop_map(|(p, l)| LocalOp::TextDelete(p, l)),
        v.clone().prop_map(LocalOp::FrozenInsert),
        (k.clone(), v.clone()).prop_map(|(k, v)| LocalOp::OwnInsert(k, v)),
        k.clone().prop_map(LocalOp::OwnRemove),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    /// Replica runs one transaction after its clock advanced by `advance` ms.
    Local { replica: usize, advance: u8, ops: Vec<LocalOp> },
    /// Replica receives one of the deltas it can receive (picked by `pick`).
    Deliver { replica: usize, pick: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..REPLICAS, 0u8..3, prop::collection::vec(local_op(), 1..6))
            .prop_map(|(replica, advance, ops)| Step::Local { replica, advance, ops }),
        (0..REPLICAS, any::<u16>()).prop_map(|(replica, pick)| Step::Deliver { replica, pick }),
    ]
}

struct Schema {
    map: EntityId,
    counters: EntityId,
    maps: EntityId,
    counter: EntityId,
    grow: EntityId,
    set: EntityId,
    vector: EntityId,
    register: EntityId,
    text: EntityId,
    frozen: EntityId,
}

const FIELDS: [(&[u8], CrdtKind); 9] = [
    (b"m", CrdtKind::Map),
    (b"mc", CrdtKind::Map),
    (b"mm", CrdtKind::Map),
    (b"c", CrdtKind::PnCounter),
    (b"g", CrdtKind::GCounter),
    (b"s", CrdtKind::Set),
    (b"v", CrdtKind::Vector),
    (b"r", CrdtKind::LwwRegister),
    (b"t", CrdtKind::Text),
];

fn schema() -> Schema {
    let field = |i: usize| child_id(&root_id(), FIELDS[i].0, FIELDS[i].1, &StorageKind::Public);
    Schema {
        map: field(0),
        counters: field(1),
        maps: field(2),
        counter: field(3),
        grow: field(4),
        set: field(5),
        vector: field(6),
        register: field(7),
        text: field(8),
        frozen: child_id(&root_id(), b"f", CrdtKind::Map, &StorageKind::Frozen),
    }
}

/// Every replica's own user-owned map, all under the root key "own": the
/// key shows the last creator's, each owner writes only its own.
fn own_map(owner: PublicKey) -> (EntityId, StorageKind) {
    let storage = StorageKind::UserOwned { owner };
    (child_id(&root_id(), b"own", CrdtKind::Map, &storage), storage)
}

fn key(k: u8) -> [u8; 1] {
    [b'a' + k]
}

/// Run one op; errors a random op can legitimately hit are skipped.
fn run_op(t: &mut StateTxn<'_, MemoryKv>, s: &Schema, me: PublicKey, op: &LocalOp) -> Result<(), StateError> {
    let public = StorageKind::Public;
    let result = match op {
        LocalOp::RootInsert(k, v) => t.map_insert(root_id(), &[b'x', *k], &[*v]),
        LocalOp::RootRemove(k) => t.map_remove(root_id(), &[b'x', *k]).map(drop),
        LocalOp::MapInsert(k, v) => t.map_insert(s.map, &key(*k), &[*v]),
        LocalOp::MapRemove(k) => t.map_remove(s.map, &key(*k)).map(drop),
        LocalOp::MapCreateSet(k) => t.create(s.map, &key(*k), CrdtKind::Set, public).map(drop),
        LocalOp::MapNestedSetAdd(k, v) => {
            t.set_add(child_id(&s.map, &key(*k), CrdtKind::Set, &public), &[*v]).map(drop)
        }
        LocalOp::CounterMapAdd(k, d) => {
            let id = child_id(&s.counters, &key(*k), CrdtKind::PnCounter, &public);
            if t.map_get(s.counters, &key(*k))?.is_none() {
                t.create(s.counters, &key(*k), CrdtKind::PnCounter, public)?;
            }
            t.counter_add(id, i64::from(*d))
        }
        LocalOp::CounterMapRemove(k) => t.map_remove(s.counters, &key(*k)).map(drop),
        LocalOp::MapOfMapsCreate(k) => t.create(s.maps, &key(*k), CrdtKind::Map, public).map(drop),
        LocalOp::MapOfMapsInsert(k, i, v) => {
            t.map_insert(child_id(&s.maps, &key(*k), CrdtKind::Map, &public), &key(*i), &[*v])
        }
        LocalOp::MapOfMapsRemove(k) => t.map_remove(s.maps, &key(*k)).map(drop),
        LocalOp::MapOfMapsInnerRemove(k, i) => {
            t.map_remove(child_id(&s.maps, &key(*k), CrdtKind::Map, &public), &key(*i)).map(drop)
        }
        LocalOp::CounterAdd(d) => t.counter_add(s.counter, i64::from(*d)),
        LocalOp::GrowOnlyAdd(d) => t.counter_add(s.grow, i64::from(*d)),
        LocalOp::SetAdd(v) => t.set_add(s.set, &[*v]).map(drop),
        LocalOp::SetRemove(v) => t.set_remove(s.set, &[*v]).map(drop),
        LocalOp::VectorPush(v) => t.vector_push(s.vector, &[*v]).map(drop),
        LocalOp::VectorSet(i, v) => {
            let len = t.vector_len(s.vector)?;
            if len == 0 { Ok(()) } else { t.vector_set(s.vector, u64::from(*i) % len, &[*v]) }
        }
        LocalOp::VectorRemove(i) => {
            let len = t.vector_len(s.vector)?;
            if len == 0 { Ok(()) } else { t.vector_remove(s.vector, u64::from(*i) % len) }
        }
        LocalOp::RegisterSet(v) => t.register_set(s.register, &[*v]),
        LocalOp::TextInsert(p, c) => {
            let len = t.text_len(s.text)?;
            t.text_insert(s.text, u64::from(*p) % (len + 1), &c.to_string())
        }
        LocalOp::TextDelete(p, l) => {
            let len = t.text_len(s.text)?;
            if len == 0 {
                Ok(())
            } else {
                let pos = u64::from(*p) % len;
                t.text_delete(s.text, pos, u64::from(*l).min(len - pos))
            }
        }
        LocalOp::FrozenInsert(v) => t.map_insert(s.frozen, Hash::of(&[*v]).as_bytes(), &[*v]),
        LocalOp::OwnInsert(k, v) => t.map_insert(own_map(me).0, &key(*k), &[*v]),
        LocalOp::OwnRemove(k) => t.map_remove(own_map(me).0, &key(*k)).map(drop),
    };
    match result {
        // Ops on a nested collection this replica has not seen created.
        Err(StateError::UnknownTarget(_)) => Ok(()),
        other => other,
    }
}

struct Delta {
    author: PublicKey,
    actions: Vec<Action>,
    /// Deltas the author had applied when it made this one.
    deps: BTreeSet<usize>,
}

fn deliverable(deltas: &[Delta], applied: &BTreeSet<usize>) -> Vec<usize> {
    (0..deltas.len()).filter(|d| !applied.contains(d) && deltas[*d].deps.is_subset(applied)).collect()
}

/// Apply every delta to a fresh store in a random causal order; return the root.
fn replay(deltas: &[Delta], rng: &mut SmallRng) -> MemoryKv {
    let mut kv = MemoryKv::new();
    let mut applied = BTreeSet::new();
    while applied.len() < deltas.len() {
        let ready = deliverable(deltas, &applied);
        let d = ready[rng.random_range(0..ready.len())];
        let result = apply_actions(&kv, &common::CONTEXT, &deltas[d].author, &deltas[d].actions).unwrap();
        kv.apply(result.writes);
        applied.insert(d);
    }
    kv
}

fn converge(steps: Vec<Step>, seed: u64) {
    let s = schema();
    let mut replicas: Vec<Replica> = (0..REPLICAS).map(|i| Replica::new(i as u8 + 1)).collect();
    let mut wall: Vec<u64> = vec![10; REPLICAS];
    let mut applied: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); REPLICAS];
    let mut deltas: Vec<Delta> = Vec::new();
    // Every replica declares the schema concurrently: the same ids result.
    let mut all_steps: Vec<Step> =
        (0..REPLICAS).map(|replica| Step::Local { replica, advance: 0, ops: vec![] }).collect();
    all_steps.extend(steps);
    for (n, step) in all_steps.into_iter().enumerate() {
        match step {
            Step::Local { replica, advance, ops } => {
                wall[replica] += u64::from(advance);
                let schema_txn = n < REPLICAS;
                let me = replicas[replica].author();
                let (_, actions) = replicas[replica]
                    .txn_at(wall[replica], |t| {
                        if schema_txn {
                            for (name, kind) in FIELDS {
                                t.create(root_id(), name, kind, StorageKind::Public)?;
                            }
                            t.create(root_id(), b"f", CrdtKind::Map, StorageKind::Frozen)?;
                            t.create(root_id(), b"own", CrdtKind::Map, own_map(me).1)?;
                        }
                        for op in &ops {
                            run_op(t, &s, me, op)?;
                        }
                        Ok(())
                    })
                    .unwrap();
                for action in &actions {
                    assert_eq!(&Action::decode(&action.encode()).unwrap(), action);
                }
                if !actions.is_empty() {
                    let deps = applied[replica].clone();
                    applied[replica].insert(deltas.len());
                    deltas.push(Delta { author: replicas[replica].author(), actions, deps });
                }
                replicas[replica].checked_root();
            }
            Step::Deliver { replica, pick } => {
                let ready = deliverable(&deltas, &applied[replica]);
                if ready.is_empty() {
                    continue;
                }
                let d = ready[usize::from(pick) % ready.len()];
                replicas[replica].receive(&deltas[d].author, &deltas[d].actions).unwrap();
                applied[replica].insert(d);
                replicas[replica].checked_root();
            }
        }
    }
    // Deliver everything left, in a random causal order per replica.
    let mut rng = SmallRng::seed_from_u64(seed);
    for r in 0..REPLICAS {
        loop {
            let ready = deliverable(&deltas, &applied[r]);
            if ready.is_empty() {
                break;
            }
            let d = ready[rng.random_range(0..ready.len())];
            replicas[r].receive(&deltas[d].author, &deltas[d].actions).unwrap();
            applied[r].insert(d);
        }
        assert_eq!(applied[r].len(), deltas.len());
    }
    let root = replicas[0].checked_root();
    let view = materialize(&replicas[0].kv).unwrap();
    for replica in &replicas[1..] {
        assert_eq!(replica.checked_root(), root, "replicas diverged");
        assert_eq!(materialize(&replica.kv).unwrap(), view, "materialized states differ");
    }
    // The same deltas in other causal orders, on fresh stores.
    for _ in 0..3 {
        let kv = replay(&deltas, &mut rng);
        assert_eq!(weft_state::root_hash(&kv).unwrap(), root, "replay order changed the root");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_causal_delivery_order_converges_to_one_root_and_one_value(
        steps in prop::collection::vec(step(), 0..48),
        seed in any::<u64>(),
    ) {
        converge(steps, seed);
    }
}
