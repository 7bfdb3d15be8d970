//! Properties of the Merkle search tree, with keys of chosen levels (found
//! by search) so that every case splits subtrees over several levels and
//! replaces top nodes — rare with random keys.

use std::sync::LazyLock;

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use weft_primitives::kv::MemoryKv;
use weft_primitives::{Hlc, PublicKey};

use super::{live_len, select};
use crate::node::key_level;
use crate::overlay::Overlay;
use crate::{Action, Op, Stamp, apply_actions, recompute_root_hash, root_hash, root_id};

/// How many keys of each level (0 to 3) the pool holds.
const KEYS_PER_LEVEL: [usize; 4] = [40, 16, 8, 3];

/// Keys of level 0 to 3, in no particular order.
static KEYS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut pools: Vec<Vec<Vec<u8>>> = vec![Vec::new(); KEYS_PER_LEVEL.len()];
    // Level 3 takes about 4,000 tries a key; this stops well before 2^32.
    for i in 0u32.. {
        if pools.iter().zip(KEYS_PER_LEVEL).all(|(pool, wanted)| pool.len() >= wanted) {
            break;
        }
        let key = i.to_le_bytes().to_vec();
        let level = usize::from(key_level(&key));
        if let Some(pool) = pools.get_mut(level).filter(|pool| pool.len() < KEYS_PER_LEVEL[level]) {
            pool.push(key);
        }
    }
    pools.concat()
});

fn author() -> PublicKey {
    PublicKey([9; 32])
}

fn insert(key: &[u8], wall_ms: u64) -> Action {
    let op = Op::MapInsert { key: key.to_vec(), value: vec![key.len() as u8] };
    Action { target: root_id(), op, stamp: Stamp::new(Hlc::new(wall_ms, 0), author()), signature: None }
}

fn remove(key: &[u8], wall_ms: u64) -> Action {
    let op = Op::MapRemove { key: key.to_vec() };
    Action { target: root_id(), op, stamp: Stamp::new(Hlc::new(wall_ms, 0), author()), signature: None }
}

/// Apply `actions` in batches of random sizes drawn from `rng`.
fn apply_in_batches(kv: &mut MemoryKv, actions: &[Action], rng: &mut SmallRng) -> Result<(), TestCaseError> {
    let mut rest = actions;
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len());
        let applied = apply_actions(&*kv, &weft_primitives::Hash::default(), &author(), &rest[..n])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        kv.apply(applied.writes);
        rest = &rest[n..];
    }
    Ok(())
}

/// The pool keys picked by `picks`, each with a fixed stamp, and removes of
/// the picked keys picked by `removes` (stamped after every insert).
fn scenario(picks: &[bool], removes: &[bool]) -> (Vec<Action>, Vec<Action>, Vec<Vec<u8>>) {
    let keys: Vec<&Vec<u8>> = KEYS.iter().zip(picks).filter(|(_, pick)| **pick).map(|(key, _)| key).collect();
    let inserts = keys.iter().enumerate().map(|(i, key)| insert(key, 10 + i as u64)).collect();
    let mut removed = Vec::new();
    let mut visible = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match removes.get(i).copied().unwrap_or(false) {
            true => removed.push(remove(key, 1_000 + i as u64)),
            false => visible.push(key.to_vec()),
        }
    }
    visible.sort();
    (inserts, removed, visible)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// History independence, row for row: whatever the order and batching
    /// of the inserts, the stored tree is the canonical one (checked by the
    /// recomputation: shape, counts, no stray rows) and two replicas hold
    /// byte-identical rows and the same root.
    #[test]
    fn any_insertion_order_stores_the_canonical_tree_row_for_row(
        picks in prop::collection::vec(any::<bool>(), KEYS_PER_LEVEL.iter().sum::<usize>()),
        removes in prop::collection::vec(any::<bool>(), 0..20),
        seed in any::<u64>(),
    ) {
        let (mut inserts, removed, _) = scenario(&picks, &removes);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut replicas = Vec::new();
        for _ in 0..2 {
            inserts.shuffle(&mut rng);
            let mut kv = MemoryKv::new();
            apply_in_batches(&mut kv, &inserts, &mut rng)?;
            apply_in_batches(&mut kv, &removed, &mut rng)?;
            let root = root_hash(&kv).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(Ok(root), recompute_root_hash(&kv));
            replicas.push(kv);
        }
        prop_assert_eq!(&replicas[0], &replicas[1]);
    }

    /// Visible counts and ranks follow the visible keys in key order, after
    /// inserts and removes in any order.
    #[test]
    fn live_counts_and_ranks_follow_the_visible_keys(
        picks in prop::collection::vec(any::<bool>(), KEYS_PER_LEVEL.iter().sum::<usize>()),
        removes in prop::collection::vec(any::<bool>(), 0..20),
        seed in any::<u64>(),
    ) {
        let (mut inserts, removed, visible) = scenario(&picks, &removes);
        let mut rng = SmallRng::seed_from_u64(seed);
        inserts.shuffle(&mut rng);
        let mut kv = MemoryKv::new();
        apply_in_batches(&mut kv, &inserts, &mut rng)?;
        apply_in_batches(&mut kv, &removed, &mut rng)?;
        let mut ov = Overlay::new(&kv);
        prop_assert_eq!(live_len(&mut ov, &root_id()), Ok(visible.len() as u64));
        for (rank, key) in visible.iter().enumerate() {
            prop_assert_eq!(select(&mut ov, &root_id(), rank as u64), Ok(Some(key.clone())));
        }
        prop_assert_eq!(select(&mut ov, &root_id(), visible.len() as u64), Ok(None));
    }
}

#[test]
fn key_pool_spans_four_levels() {
    for (level, wanted) in KEYS_PER_LEVEL.iter().enumerate() {
        assert_eq!(KEYS.iter().filter(|key| usize::from(key_level(key)) == level).count(), *wanted);
    }
}
