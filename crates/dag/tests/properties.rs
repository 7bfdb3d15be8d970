//! Property tests for the DAG's ordering rules, on random DAGs (forks, merges,
//! 1–8 parents, up to 60 deltas) delivered in random orders.

// Test helpers outside `#[test]` functions unwrap too; a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{closed_subset, root};
use proptest::prelude::*;
use proptest::sample::Index;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use weft_dag::{AddOutcome, CausalDelta, DagError, DagLimits, DagStore, DeltaApplier, DeltaId, HistoryDelta};
use weft_primitives::{Hash, Hlc};

const CASES: u32 = 1000;

/// A random DAG's shape: per delta, picks among the root and earlier deltas.
fn dag_shape() -> impl Strategy<Value = Vec<Vec<Index>>> {
    prop::collection::vec(prop::collection::vec(any::<Index>(), 1..=8), 1..=60)
}

/// The deltas of `shape`, in a topological order (index order).
fn build(shape: &[Vec<Index>]) -> Vec<CausalDelta<u32>> {
    let mut ids = vec![root()];
    let mut deltas = Vec::with_capacity(shape.len());
    for (i, picks) in shape.iter().enumerate() {
        let mut parents: Vec<DeltaId> = Vec::new();
        for pick in picks {
            // Favour recent deltas so chains are long and merges local.
            let candidate = ids[ids.len() - 1 - pick.index(ids.len().min(6))];
            if !parents.contains(&candidate) {
                parents.push(candidate);
            }
        }
        let id = Hash::of(&(i as u64).to_le_bytes());
        deltas.push(CausalDelta { id, parents, hlc: Hlc::new(i as u64, 0), payload: i as u32 });
        ids.push(id);
    }
    deltas
}

/// Heads of the whole DAG: deltas no delta names as parent.
fn expected_heads(deltas: &[CausalDelta<u32>]) -> Vec<DeltaId> {
    let named: HashSet<DeltaId> = deltas.iter().flat_map(|d| d.parents.iter().copied()).collect();
    let mut heads: Vec<DeltaId> = deltas.iter().map(|d| d.id).filter(|id| !named.contains(id)).collect();
    heads.sort_unstable();
    heads
}

/// Every delta once, plus random duplicates, shuffled.
fn delivery(deltas: &[CausalDelta<u32>], rng: &mut SmallRng) -> Vec<CausalDelta<u32>> {
    let mut out: Vec<CausalDelta<u32>> = deltas.to_vec();
    for delta in deltas {
        if rng.random_bool(0.3) {
            out.push(delta.clone());
        }
    }
    out.shuffle(rng);
    out
}

/// Records applications and checks, as they happen, that each delta is applied
/// once and after its parents.
#[derive(Default)]
struct CheckingApplier {
    applied: HashSet<DeltaId>,
    order: Vec<DeltaId>,
    violations: Vec<String>,
    /// Fail with this probability (seeded), to exercise the error path.
    fail_rate: f64,
    rng: Option<SmallRng>,
}

impl CheckingApplier {
    fn seeded(seed: u64) -> Self {
        let mut applier = CheckingApplier::default();
        applier.applied.insert(root());
        applier.rng = Some(SmallRng::seed_from_u64(seed));
        applier
    }
}

impl DeltaApplier<u32> for CheckingApplier {
    type Error = &'static str;

    fn apply(&mut self, delta: &CausalDelta<u32>) -> Result<(), Self::Error> {
        if let Some(rng) = self.rng.as_mut()
            && self.fail_rate > 0.0
            && rng.random_bool(self.fail_rate)
        {
            return Err("flaky storage");
        }
        if self.applied.contains(&delta.id) {
            self.violations.push(format!("{:?} applied twice", delta.id));
        }
        for parent in &delta.parents {
            if !self.applied.contains(parent) {
                self.violations.push(format!("{:?} applied before parent {parent:?}", delta.id));
            }
        }
        self.applied.insert(delta.id);
        self.order.push(delta.id);
        Ok(())
    }
}

fn new_store(pending_max: usize) -> DagStore<u32> {
    DagStore::new(root(), DagLimits { pending_max, ..DagLimits::default() })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn replicas_in_any_order_apply_each_delta_once_after_parents_with_identical_heads(
        shape in dag_shape(), seed in any::<u64>()
    ) {
        let deltas = build(&shape);
        let want_heads = expected_heads(&deltas);
        let mut rng = SmallRng::seed_from_u64(seed);
        for replica in 0..3u64 {
            let mut dag = new_store(10_000);
            let mut applier = CheckingApplier::seeded(replica);
            let mut reported = Vec::new();
            for (now_ms, delta) in delivery(&deltas, &mut rng).into_iter().enumerate() {
                match dag.add(delta, now_ms as u64, &mut applier) {
                    Ok(AddOutcome::Applied { applied }) => reported.extend(applied),
                    Ok(AddOutcome::Pending { evicted, .. }) => prop_assert!(evicted.is_empty()),
                    Ok(AddOutcome::Duplicate) => {}
                    Err(err) => prop_assert!(false, "unexpected error {err:?}"),
                }
            }
            prop_assert!(applier.violations.is_empty(), "{:?}", applier.violations);
            prop_assert_eq!(&reported, &applier.order, "outcomes report exactly what was applied, in order");
            prop_assert_eq!(applier.order.len(), deltas.len());
            prop_assert_eq!(dag.applied_count(), deltas.len());
            prop_assert_eq!(dag.pending_count(), 0);
            prop_assert!(dag.missing_parents().is_empty());
            prop_assert_eq!(dag.heads(), want_heads.clone());
        }
    }

    #[test]
    fn pages_of_deltas_missing_for_bring_each_peer_to_identical_heads_and_applied_set(
        shape in dag_shape(), seed in any::<u64>()
    ) {
        let deltas = build(&shape);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut replicas = Vec::new();
        for replica in 0..2u64 {
            let keep = closed_subset(&deltas, &mut rng);
            let mut dag = new_store(10_000);
            let mut applier = CheckingApplier::seeded(replica);
            for (delta, _) in deltas.iter().zip(&keep).filter(|(_, keep)| **keep) {
                dag.add(delta.clone(), 0, &mut applier).unwrap();
            }
            replicas.push((dag, applier));
        }
        // A serves B, then B serves A, one random-sized page at a time.
        for (from, to) in [(0usize, 1usize), (1, 0)] {
            let peer_heads = replicas[to].0.heads();
            let limit = rng.random_range(1..8);
            let mut cursor = None;
            loop {
                let (page_deltas, next) = {
                    let page = replicas[from].0.deltas_missing_for(&peer_heads, cursor, limit).unwrap();
                    prop_assert!(page.deltas.len() <= limit);
                    (page.deltas.into_iter().cloned().collect::<Vec<_>>(), page.next_cursor)
                };
                let (peer, applier) = &mut replicas[to];
                for delta in page_deltas {
                    let outcome = peer.add(delta, 0, applier).unwrap();
                    prop_assert!(!matches!(outcome, AddOutcome::Pending { .. }), "page order is causal");
                }
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        let (a, b) = (&replicas[0].0, &replicas[1].0);
        prop_assert_eq!(a.heads(), b.heads());
        prop_assert_eq!(a.applied_count(), b.applied_count());
        prop_assert_eq!(&replicas[0].1.applied, &replicas[1].1.applied);
        for (_, applier) in &replicas {
            prop_assert!(applier.violations.is_empty(), "{:?}", applier.violations);
        }
        // Both are now in sync: nothing left to send either way.
        prop_assert!(a.deltas_missing_for(&b.heads(), None, 100).unwrap().deltas.is_empty());
    }

    #[test]
    fn pending_never_exceeds_its_bound_and_redelivery_still_applies_everything_once(
        shape in dag_shape(), seed in any::<u64>(), pending_max in 0usize..12
    ) {
        let deltas = build(&shape);
        let mut rng = SmallRng::seed_from_u64(seed);
        let limits = DagLimits { pending_max, pending_stale_ms: 20, ..DagLimits::default() };
        let mut dag = DagStore::new(root(), limits);
        let mut applier = CheckingApplier::seeded(seed);
        let mut now_ms = 0u64;
        for delta in delivery(&deltas, &mut rng) {
            now_ms += rng.random_range(0..3);
            let outcome = dag.add(delta, now_ms, &mut applier).unwrap();
            prop_assert!(dag.pending_count() <= pending_max);
            if let AddOutcome::Pending { evicted, .. } = outcome {
                for id in evicted {
                    prop_assert!(!dag.has(&id), "evicted deltas are forgotten");
                }
            }
            if rng.random_bool(0.1) {
                for id in dag.cleanup_stale(now_ms) {
                    prop_assert!(!dag.has(&id));
                }
                if let Some(age) = dag.pending_stats(now_ms).oldest_age_ms {
                    prop_assert!(age <= 20);
                }
            }
        }
        let missing = dag.missing_parents();
        for id in &missing {
            prop_assert!(!dag.has(id));
        }
        // Whatever was evicted comes again, in causal order.
        for delta in &deltas {
            let outcome = dag.add(delta.clone(), now_ms, &mut applier).unwrap();
            prop_assert!(dag.pending_count() <= pending_max);
            prop_assert!(!matches!(outcome, AddOutcome::Pending { .. }), "causal order never waits");
        }
        prop_assert!(applier.violations.is_empty(), "{:?}", applier.violations);
        prop_assert_eq!(applier.order.len(), deltas.len());
        prop_assert_eq!(dag.heads(), expected_heads(&deltas));
    }

    #[test]
    fn applier_failures_and_retries_still_apply_each_delta_once_after_parents(
        shape in dag_shape(), seed in any::<u64>()
    ) {
        let deltas = build(&shape);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut dag = new_store(10_000);
        let mut applier = CheckingApplier::seeded(seed);
        applier.fail_rate = 0.2;
        for delta in delivery(&deltas, &mut rng) {
            let id = delta.id;
            match dag.add(delta, 0, &mut applier) {
                Ok(_) => {}
                Err(DagError::Apply { id: failed, applied_before, .. }) => {
                    prop_assert!(!dag.is_applied(&failed) && dag.has(&failed));
                    prop_assert!(dag.has(&id));
                    for done in applied_before {
                        prop_assert!(dag.is_applied(&done));
                    }
                }
                Err(err) => prop_assert!(false, "unexpected error {err:?}"),
            }
            if rng.random_bool(0.2) {
                let _ = dag.retry_pending(&mut applier);
            }
        }
        applier.fail_rate = 0.0;
        dag.retry_pending(&mut applier).unwrap();
        prop_assert!(applier.violations.is_empty(), "{:?}", applier.violations);
        prop_assert_eq!(applier.order.len(), deltas.len());
        prop_assert_eq!(dag.pending_count(), 0);
        prop_assert_eq!(dag.heads(), expected_heads(&deltas));
    }

    #[test]
    fn pruned_ids_are_never_missing_and_peers_needing_them_get_pruned_history(
        shape in dag_shape(), seed in any::<u64>()
    ) {
        let deltas = build(&shape);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut dag = new_store(10_000);
        let mut applier = CheckingApplier::seeded(seed);
        for delta in &deltas {
            dag.add(delta.clone(), 0, &mut applier).unwrap();
        }
        let checkpoint = deltas[rng.random_range(0..deltas.len())].id;
        dag.prune_below(&[checkpoint]);
        let pruned: Vec<DeltaId> = deltas.iter().map(|d| d.id).filter(|id| dag.is_pruned(id)).collect();
        prop_assert_eq!(pruned.len(), dag.pruned_count());
        prop_assert!(!dag.is_pruned(&checkpoint));
        for id in &pruned {
            prop_assert!(!dag.heads().contains(id));
        }
        // New deltas naming pruned and unknown parents: only the unknown are missing.
        for (i, id) in pruned.iter().enumerate().take(5) {
            let unknown = Hash::of(&[i as u8, 0xee]);
            let orphan = CausalDelta { id: Hash::of(&[i as u8, 0xaa]), parents: vec![*id, unknown], hlc: Hlc::default(), payload: 0 };
            dag.add(orphan, 0, &mut applier).unwrap();
            prop_assert!(dag.missing_parents().iter().all(|m| !dag.is_pruned(m)));
        }
        // A peer with an ancestor-closed subset is served iff it has every pruned delta.
        let keep = closed_subset(&deltas, &mut rng);
        let mut peer = new_store(10_000);
        let mut peer_applier = CheckingApplier::seeded(seed);
        for (delta, _) in deltas.iter().zip(&keep).filter(|(_, keep)| **keep) {
            peer.add(delta.clone(), 0, &mut peer_applier).unwrap();
        }
        let peer_lacks_pruned = pruned.iter().any(|id| !peer.is_applied(id));
        match dag.deltas_missing_for(&peer.heads(), None, 10_000) {
            Err(DagError::PrunedHistory { id }) => {
                prop_assert!(peer_lacks_pruned);
                prop_assert!(dag.is_pruned(&id) && !peer.is_applied(&id));
            }
            Ok(page) => {
                prop_assert!(!peer_lacks_pruned);
                for delta in page.deltas {
                    let outcome = peer.add(delta.clone(), 0, &mut peer_applier).unwrap();
                    prop_assert!(!matches!(outcome, AddOutcome::Pending { .. }), "causal order never waits");
                }
                prop_assert_eq!(peer.heads(), dag.heads());
                prop_assert_eq!(peer.applied_count(), deltas.len());
            }
            Err(err) => prop_assert!(false, "unexpected error {err:?}"),
        }
        // With payloads kept elsewhere (a store), every peer is served: the
        // page lists each pruned delta by id and position, in causal order.
        let page = dag.history_missing_for(&peer.heads(), None, 10_000).unwrap();
        let by_id: std::collections::HashMap<DeltaId, &CausalDelta<u32>> = deltas.iter().map(|d| (d.id, d)).collect();
        let mut positions = std::collections::BTreeSet::new();
        for item in page.deltas {
            let delta = match item {
                HistoryDelta::Held(delta) => delta.clone(),
                HistoryDelta::Pruned { id, position } => {
                    prop_assert!(dag.is_pruned(&id));
                    prop_assert!(positions.insert(position), "position {} listed twice", position);
                    (*by_id[&id]).clone()
                }
            };
            let outcome = peer.add(delta, 0, &mut peer_applier).unwrap();
            prop_assert!(!matches!(outcome, AddOutcome::Pending { .. }), "causal order never waits");
        }
        prop_assert_eq!(peer.heads(), dag.heads());
        prop_assert_eq!(peer.applied_count(), dag.applied_count());
    }
}
