//! Model-based properties: the store behaves like an ordered map per table
//! under random commits and aborts, snapshots never change, paged scans
//! add up to the whole, the state view scans exactly like `MemoryKv`, and a
//! group commit equals applying its batches one after another.

// Helpers outside #[test] functions: an unwrap or panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{Model, apply_txn, dump, random_txn, to_batch};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use weft_primitives::Hash;
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};
use weft_store::{STATE, Store, StoreError};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn committed_txns_apply_aborted_txns_vanish_and_snapshots_never_change(
        seed in any::<u64>(),
        plan in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..12),
    ) {
        let store = Store::open_in_memory().unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut model = Model::default();
        let mut snapshots = Vec::new();
        for (commit, take_snapshot) in plan {
            let txn = random_txn(&mut rng);
            let result = store.write(|w| {
                apply_txn(w, &txn)?;
                if commit { Ok(()) } else { Err(StoreError::CommitterClosed) }
            });
            prop_assert_eq!(result.is_ok(), commit);
            if commit {
                model.apply(&txn);
            }
            if take_snapshot {
                snapshots.push((store.read().unwrap(), model.clone()));
            }
            prop_assert_eq!(&dump(&store).unwrap(), &model);
        }
        for (snapshot, expected) in snapshots {
            let seen = Model {
                contexts: snapshot.scan(weft_store::CONTEXTS, &[], None, usize::MAX).unwrap().into_iter().collect(),
                heads: snapshot.scan(weft_store::HEADS, &[], None, usize::MAX).unwrap().into_iter().collect(),
                state: snapshot.scan(STATE, &[], None, usize::MAX).unwrap().into_iter().collect(),
            };
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn paged_prefix_scans_concatenate_to_the_whole_prefix(
        rows in proptest::collection::btree_map((0u8..3, proptest::collection::vec(0u8..4, 0..4)), any::<u8>(), 0..40),
        context in 0u8..3,
        page in 1usize..8,
    ) {
        let store = Store::open_in_memory().unwrap();
        let mut writes: BTreeMap<u8, WriteSet> = BTreeMap::new();
        for ((c, key), value) in &rows {
            writes.entry(*c).or_default().put(key.clone(), vec![*value]);
        }
        store.write(|txn| {
            for (c, ws) in &writes {
                txn.apply_state_writes(Hash([*c; 32]), ws)?;
            }
            Ok(())
        }).unwrap();
        let read = store.read().unwrap();
        let mut collected = Vec::new();
        let mut after: Option<(Hash, Vec<u8>)> = None;
        loop {
            let got = read.scan(STATE, &[context; 32], after.as_ref(), page).unwrap();
            prop_assert!(got.len() <= page);
            let Some(last) = got.last() else { break };
            after = Some(last.0.clone());
            collected.extend(got);
        }
        let expected: Vec<_> = rows
            .iter()
            .filter(|((c, _), _)| *c == context)
            .map(|((c, key), value)| ((Hash([*c; 32]), key.clone()), vec![*value]))
            .collect();
        prop_assert_eq!(collected, expected);
    }

    #[test]
    fn state_view_reads_exactly_like_memory_kv(
        rows in proptest::collection::btree_map(proptest::collection::vec(0u8..4, 0..4), proptest::collection::vec(any::<u8>(), 0..4), 0..30),
        other_context_rows in proptest::collection::btree_map(proptest::collection::vec(0u8..4, 0..4), proptest::collection::vec(any::<u8>(), 0..4), 0..10),
        queries in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..3), proptest::option::of(proptest::collection::vec(0u8..4, 0..4)), 0usize..6), 1..8),
        deletes in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..4), 0..5),
    ) {
        let context = Hash([1; 32]);
        let mut writes = WriteSet::new();
        for (key, value) in &rows {
            writes.put(key.clone(), value.clone());
        }
        for key in &deletes {
            writes.delete(key.clone());
        }
        let mut others = WriteSet::new();
        for (key, value) in &other_context_rows {
            others.put(key.clone(), value.clone());
        }
        let mut memory = MemoryKv::new();
        memory.apply(writes.clone());

        let store = Store::open_in_memory().unwrap();
        store.write(|txn| {
            txn.apply_state_writes(Hash([0; 32]), &others)?;
            txn.apply_state_writes(Hash([2; 32]), &others)?;
            txn.apply_state_writes(context, &writes)?;
            // The write view agrees before commit...
            let view = txn.state_view(context)?;
            for (prefix, after, limit) in &queries {
                assert_eq!(view.scan(prefix, after.as_deref(), *limit).unwrap(), documented_scan(&memory, prefix, after.as_deref(), *limit));
            }
            Ok(())
        }).unwrap();
        // ...and the snapshot view after.
        let read = store.read().unwrap();
        let view = read.state_view(context).unwrap();
        for (prefix, after, limit) in &queries {
            let got = view.scan(prefix, after.as_deref(), *limit).unwrap();
            prop_assert_eq!(&got, &documented_scan(&memory, prefix, after.as_deref(), *limit));
            prop_assert_eq!(&got, &memory.scan(prefix, after.as_deref(), *limit).unwrap());
            prop_assert_eq!(view.get(prefix).unwrap(), memory.get(prefix).unwrap());
        }
    }
}

/// The `KvRead::scan` contract, literally: keys starting with `prefix`,
/// strictly after `after`, in order, at most `limit`.
fn documented_scan(kv: &MemoryKv, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.scan(prefix, None, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|(key, _)| after.is_none_or(|after| key.as_slice() > after))
        .take(limit)
        .collect()
}

/// A cursor that sorts below the prefix scans the whole prefix (the
/// `KvRead::scan` contract; `MemoryKv` once got this wrong).
#[test]
fn an_after_key_below_the_prefix_still_scans_the_prefix() {
    let context = Hash([1; 32]);
    let mut writes = WriteSet::new();
    writes.put(vec![0], vec![0]);
    writes.put(vec![2], vec![2]);
    let store = Store::open_in_memory().unwrap();
    store.write(|txn| txn.apply_state_writes(context, &writes)).unwrap();
    let read = store.read().unwrap();
    let view = read.state_view(context).unwrap();
    assert_eq!(view.scan(&[2], Some(&[]), 10).unwrap(), vec![(vec![2], vec![2])]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn group_commit_equals_applying_batches_in_submission_order(seed in any::<u64>(), count in 1usize..20) {
        let store = Store::open_in_memory().unwrap();
        let committer = store.group_committer().unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut model = Model::default();
        let mut tickets = Vec::new();
        for _ in 0..count {
            let txn = random_txn(&mut rng);
            model.apply(&txn);
            tickets.push(committer.submit(to_batch(&txn)).unwrap());
        }
        for ticket in tickets {
            prop_assert!(ticket.wait().is_ok());
        }
        prop_assert_eq!(dump(&store).unwrap(), model);
    }
}
