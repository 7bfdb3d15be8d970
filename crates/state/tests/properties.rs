//! Property tests of the encodings and of the children tree's history independence.

// Helpers outside #[test] fns are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use weft_primitives::kv::MemoryKv;
use weft_primitives::{Hash, Hlc, PublicKey, Signature, SigningKey};
use weft_state::{
    Action, CrdtKind, Op, Stamp, StorageKind, apply_actions, materialize, recompute_root_hash, root_hash, root_id,
};
use weft_text::{ItemId, TextOp};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (any::<u64>(), any::<u32>(), any::<[u8; 32]>()).prop_map(|(w, c, a)| Stamp::new(Hlc::new(w, c), PublicKey(a)))
}

fn kind() -> impl Strategy<Value = CrdtKind> {
    prop::sample::select(vec![
        CrdtKind::LwwRegister,
        CrdtKind::GCounter,
        CrdtKind::PnCounter,
        CrdtKind::Map,
        CrdtKind::Set,
        CrdtKind::Vector,
        CrdtKind::Text,
    ])
}

fn storage() -> impl Strategy<Value = StorageKind> {
    prop_oneof![
        Just(StorageKind::Public),
        Just(StorageKind::Frozen),
        any::<[u8; 32]>().prop_map(|o| StorageKind::UserOwned { owner: PublicKey(o) }),
    ]
}

fn text_op() -> impl Strategy<Value = TextOp> {
    let id = (any::<[u8; 32]>(), any::<u64>()).prop_map(|(a, seq)| ItemId { author: PublicKey(a), seq });
    prop_oneof![
        (id.clone(), prop::option::of(id.clone()), prop::option::of(id.clone()), "[a-z字]{1,8}")
            .prop_map(|(id, origin_left, origin_right, text)| TextOp::Insert { id, origin_left, origin_right, text }),
        prop::collection::vec((id, any::<u64>()), 0..4).prop_map(|ranges| TextOp::Delete { ranges }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (bytes(16), kind(), storage()).prop_map(|(key, kind, storage)| Op::Create { key, kind, storage }),
        (bytes(16), bytes(32)).prop_map(|(key, value)| Op::MapInsert { key, value }),
        bytes(16).prop_map(|key| Op::MapRemove { key }),
        bytes(32).prop_map(|value| Op::RegisterSet { value }),
        (any::<u64>(), any::<u64>()).prop_map(|(up, down)| Op::CounterTotals { up, down }),
        bytes(16).prop_map(|element| Op::SetAdd { element }),
        bytes(16).prop_map(|element| Op::SetRemove { element }),
        bytes(32).prop_map(|value| Op::VectorPush { value }),
        (stamp(), bytes(32)).prop_map(|(element, value)| Op::VectorSet { element, value }),
        stamp().prop_map(|element| Op::VectorRemove { element }),
        text_op().prop_map(Op::Text),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    (any::<[u8; 32]>(), op(), stamp(), prop::option::of(any::<[u8; 32]>())).prop_map(|(target, op, stamp, sig)| {
        let signature = sig.map(|half| {
            let mut full = [0u8; 64];
            full[..32].copy_from_slice(&half);
            Signature(full)
        });
        Action { target: Hash(target), op, stamp, signature }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn action_encode_then_decode_is_identity(action in action()) {
        let bytes = action.encode();
        prop_assert_eq!(Action::decode(&bytes).unwrap(), action);
    }

    #[test]
    fn action_decode_rejects_garbage_without_panicking(
        action in action(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        noise in bytes(64),
    ) {
        let bytes = action.encode();
        // Truncation and trailing bytes are always errors.
        prop_assert!(Action::decode(&bytes[..cut.index(bytes.len())]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Action::decode(&longer).is_err());
        // A flipped byte or pure noise: an error or some valid action, never a panic.
        let mut flipped = bytes;
        let at = flip.index(flipped.len());
        flipped[at] ^= 0x80;
        let _ = Action::decode(&flipped);
        let _ = Action::decode(&noise);
    }

    /// The children tree's shape depends only on its keys: the same entries inserted
    /// in any order and batching give the same root hash, equal to the
    /// from-scratch recomputation; removes and re-inserts do not disturb it.
    #[test]
    fn tree_hash_is_independent_of_insertion_order_and_batching(
        keys in prop::collection::btree_set(bytes(6), 0..80),
        removed in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        seed in any::<u64>(),
    ) {
        let author = SigningKey::from_seed([3; 32]).public_key();
        let keys: Vec<Vec<u8>> = keys.into_iter().collect();
        // One action per key with a fixed stamp, plus some removes after all inserts.
        let mut inserts: Vec<Action> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| Action {
                target: root_id(),
                op: Op::MapInsert { key: key.clone(), value: vec![i as u8] },
                stamp: Stamp::new(Hlc::new(10 + i as u64, 0), author),
                signature: None,
            })
            .collect();
        let removes: Vec<Action> = if keys.is_empty() { Vec::new() } else {
            removed
                .iter()
                .enumerate()
                .map(|(i, at)| Action {
                    target: root_id(),
                    op: Op::MapRemove { key: keys[at.index(keys.len())].clone() },
                    stamp: Stamp::new(Hlc::new(1_000 + i as u64, 0), author),
                    signature: None,
                })
                .collect()
        };
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut roots = Vec::new();
        let mut views = Vec::new();
        for _ in 0..2 {
            inserts.shuffle(&mut rng);
            let mut kv = MemoryKv::new();
            let mut rest: &[Action] = &inserts;
            while !rest.is_empty() {
                let n = rng.random_range(1..=rest.len());
                let applied = apply_actions(&kv, &Hash::default(), &author, &rest[..n]).unwrap();
                kv.apply(applied.writes);
                rest = &rest[n..];
            }
            let applied = apply_actions(&kv, &Hash::default(), &author, &removes).unwrap();
            kv.apply(applied.writes);
            let root = root_hash(&kv).unwrap();
            prop_assert_eq!(root, recompute_root_hash(&kv).unwrap());
            roots.push(root);
            views.push(materialize(&kv).unwrap());
        }
        prop_assert_eq!(roots[0], roots[1]);
        prop_assert_eq!(&views[0], &views[1]);
    }
}
