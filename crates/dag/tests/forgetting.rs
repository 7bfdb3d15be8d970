//! Property tests for forgetting history (`DagStore::forget_below`): a DAG
//! that forgets (and restarts from what it forgot) decides everything as a
//! DAG that never forgets, fed the same deltas in the same order.

// Test helpers outside `#[test]` functions unwrap too; a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};

use common::{closed_subset, root};
use proptest::prelude::*;
use proptest::sample::Index;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use weft_dag::{AddOutcome, CausalDelta, DagError, DagLimits, DagStore, DeltaApplier, DeltaId, ForgottenPrefix};
use weft_primitives::{Hash, Hlc};

/// Applies anything; knows which ids its DAG forgot, as a store would.
#[derive(Default)]
struct ForgettingApplier {
    applied: Vec<DeltaId>,
    forgotten: HashSet<DeltaId>,
    /// Ids asked about through `is_forgotten`.
    asked: usize,
}

impl DeltaApplier<u32> for ForgettingApplier {
    type Error = std::convert::Infallible;

    fn apply(&mut self, delta: &CausalDelta<u32>) -> Result<(), Self::Error> {
        self.applied.push(delta.id);
        Ok(())
    }

    fn is_forgotten(&mut self, id: &DeltaId) -> bool {
        self.asked += 1;
        self.forgotten.contains(id)
    }
}

/// Deltas in a topological order; each names 1–4 parents among the 8
/// latest, or, now and then, one far older (a late branch).
fn build(shape: &[(Vec<Index>, Option<Index>)]) -> Vec<CausalDelta<u32>> {
    let mut ids = vec![root()];
    let mut deltas = Vec::with_capacity(shape.len());
    for (i, (picks, old)) in shape.iter().enumerate() {
        let mut parents: Vec<DeltaId> = Vec::new();
        let olds = old.iter().map(|old| ids[old.index(ids.len())]);
        let recents = picks.iter().map(|pick| ids[ids.len() - 1 - pick.index(ids.len().min(8))]);
        for candidate in olds.chain(recents) {
            if !parents.contains(&candidate) {
                parents.push(candidate);
            }
        }
        let id = Hash::of(&(i as u64 | 0xf0 << 56).to_le_bytes());
        deltas.push(CausalDelta { id, parents, hlc: Hlc::new(i as u64, 0), payload: i as u32 });
        ids.push(id);
    }
    deltas
}

fn shape() -> impl Strategy<Value = Vec<(Vec<Index>, Option<Index>)>> {
    prop::collection::vec(
        (prop::collection::vec(any::<Index>(), 1..=4), prop::option::weighted(0.15, any::<Index>())),
        1..=80,
    )
}

/// Mostly causal order with local shuffles and duplicates, so deltas wait
/// and late ones name forgotten parents.
fn delivery(deltas: &[CausalDelta<u32>], rng: &mut SmallRng) -> Vec<CausalDelta<u32>> {
    let mut out: Vec<CausalDelta<u32>> = Vec::new();
    for delta in deltas {
        out.push(delta.clone());
        if rng.random_bool(0.2) {
            let again = &deltas[rng.random_range(0..deltas.len())];
            out.push(again.clone());
        }
    }
    for window in out.chunks_mut(6) {
        if rng.random_bool(0.5) {
            window.shuffle(rng);
        }
    }
    // A few deltas held back to the end: they arrive after their parents
    // were forgotten.
    for _ in 0..rng.random_range(0..4) {
        let at = rng.random_range(0..out.len());
        let late = out.remove(at);
        out.push(late);
    }
    out
}

/// The heads of the subset `keep` of `deltas` (the root if empty).
fn subset_heads(deltas: &[CausalDelta<u32>], keep: &[bool]) -> Vec<DeltaId> {
    let kept: Vec<&CausalDelta<u32>> = deltas.iter().zip(keep).filter(|(_, k)| **k).map(|(d, _)| d).collect();
    let named: HashSet<DeltaId> = kept.iter().flat_map(|d| d.parents.iter().copied()).collect();
    let heads: Vec<DeltaId> = kept.iter().map(|d| d.id).filter(|id| !named.contains(id)).collect();
    if heads.is_empty() { vec![root()] } else { heads }
}

/// A restart: a DAG resumed from what was forgotten, then the kept applied
/// deltas replayed in apply order and the pending ones re-added.
fn restart(
    prefix: &ForgottenPrefix,
    order: &[DeltaId],
    pending: &[DeltaId],
    by_id: &HashMap<DeltaId, CausalDelta<u32>>,
    applier: &mut ForgettingApplier,
) -> DagStore<u32> {
    let mut dag = DagStore::resume(root(), DagLimits::default(), prefix.len, &prefix.frontier);
    for id in &order[prefix.len as usize..] {
        let outcome = dag.add(by_id[id].clone(), 0, applier).unwrap();
        assert!(matches!(outcome, AddOutcome::Applied { ref applied } if applied.len() == 1), "{outcome:?}");
    }
    for id in pending {
        let outcome = dag.add(by_id[id].clone(), 0, applier).unwrap();
        assert!(matches!(outcome, AddOutcome::Pending { .. }), "{outcome:?}");
    }
    dag
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn a_forgetting_dag_decides_every_delta_as_one_that_never_forgets(shape in shape(), seed in any::<u64>()) {
        let deltas = build(&shape);
        let by_id: HashMap<DeltaId, CausalDelta<u32>> = deltas.iter().map(|d| (d.id, d.clone())).collect();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut plain = DagStore::new(root(), DagLimits::default());
        let mut plain_applier = ForgettingApplier::default();
        let mut dag = DagStore::new(root(), DagLimits::default());
        let mut applier = ForgettingApplier::default();
        let mut prefix = ForgottenPrefix::default();
        // Apply order and pending set, as a store would persist them.
        let mut order: Vec<DeltaId> = Vec::new();
        let mut pending: Vec<DeltaId> = Vec::new();
        for delta in delivery(&deltas, &mut rng) {
            let id = delta.id;
            let want = plain.add(delta.clone(), 0, &mut plain_applier).unwrap();
            let got = dag.add(delta, 0, &mut applier).unwrap();
            prop_assert_eq!(&got, &want);
            match got {
                AddOutcome::Applied { applied } => {
                    pending.retain(|p| !applied.contains(p));
                    order.extend(applied);
                }
                AddOutcome::Pending { .. } => pending.push(id),
                AddOutcome::Duplicate => {}
            }
            prop_assert_eq!(dag.heads(), plain.heads());
            prop_assert_eq!(dag.applied_count(), plain.applied_count());
            prop_assert_eq!(dag.missing_parents(), plain.missing_parents());
            prop_assert_eq!(dag.pending_count(), plain.pending_count());
            if rng.random_bool(0.3) {
                let keep = rng.random_range(0..6);
                let position = dag.applied_count().saturating_sub(keep) as u64;
                let plan = dag.forget_plan(position);
                let step = dag.forget_below(position);
                prop_assert_eq!(&plan, &step, "the plan is what forgetting does");
                for (id, position) in &step.forgotten {
                    prop_assert_eq!(order[*position as usize], *id);
                    prop_assert!(!dag.has(id) || dag.is_forgotten_frontier(id));
                }
                applier.forgotten.extend(step.forgotten.iter().map(|(id, _)| *id));
                prefix = step;
            }
            if rng.random_bool(0.05) {
                dag = restart(&prefix, &order, &pending, &by_id, &mut ForgettingApplier {
                    forgotten: applier.forgotten.clone(),
                    ..Default::default()
                });
                prop_assert_eq!(dag.heads(), plain.heads());
                prop_assert_eq!(dag.forgotten_frontier(), prefix.frontier.clone());
            }
        }
        prop_assert_eq!(&applier.applied.len(), &plain_applier.applied.len());
        prop_assert_eq!(plain_applier.asked, 0, "a DAG that forgot nothing never asks");
        // The frontier is the forgotten part's maximal deltas.
        let forgotten: HashSet<DeltaId> = order[..prefix.len as usize].iter().copied().collect();
        let named: HashSet<DeltaId> =
            forgotten.iter().flat_map(|id| by_id[id].parents.iter().copied()).collect();
        let mut maximal: Vec<DeltaId> = forgotten.iter().filter(|id| !named.contains(*id)).copied().collect();
        maximal.sort_unstable();
        let mut frontier: Vec<DeltaId> = prefix.frontier.iter().map(|(id, _)| *id).collect();
        frontier.sort_unstable();
        prop_assert_eq!(frontier, maximal);

        // The history walk: the same deltas, or `PrunedHistory` exactly when
        // a peer whose heads we all know lacks forgotten history.
        let applied: Vec<CausalDelta<u32>> = order.iter().map(|id| by_id[id].clone()).collect();
        for _ in 0..4 {
            let keep = closed_subset(&applied, &mut rng);
            let peer_heads = subset_heads(&applied, &keep);
            let peer_has: HashSet<DeltaId> =
                applied.iter().zip(&keep).filter(|(_, k)| **k).map(|(d, _)| d.id).collect();
            let lacks_forgotten = forgotten.iter().any(|id| !peer_has.contains(id));
            let heads_known = peer_heads.iter().all(|head| *head == root() || dag.is_applied(head));
            let want: Vec<DeltaId> = plain
                .deltas_missing_for(&peer_heads, None, 10_000)
                .unwrap()
                .deltas
                .iter()
                .map(|d| d.id)
                .filter(|id| !forgotten.contains(id))
                .collect();
            match dag.history_missing_for(&peer_heads, None, 10_000) {
                Err(DagError::PrunedHistory { id }) => {
                    prop_assert!(heads_known && lacks_forgotten);
                    prop_assert!(forgotten.contains(&id) && !peer_has.contains(&id));
                }
                Ok(page) => {
                    prop_assert!(!(heads_known && lacks_forgotten), "a peer lacking forgotten history is served");
                    let got: Vec<DeltaId> = page.deltas.iter().map(|item| match item {
                        weft_dag::HistoryDelta::Held(delta) => delta.id,
                        weft_dag::HistoryDelta::Pruned { id, .. } => *id,
                    }).collect();
                    prop_assert_eq!(got, want);
                }
                Err(err) => prop_assert!(false, "unexpected {err:?}"),
            }
        }
    }
}
