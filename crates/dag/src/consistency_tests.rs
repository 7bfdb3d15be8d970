//! Internal-consistency property test: random operation sequences (adds in any
//! order with duplicates, a tiny pending bound, staleness, failing appliers,
//! retries, pruning, forgetting) with every internal invariant checked after each step.
//! Unit tests build the pending buffer with a tiny compaction slack, so the
//! compaction paths run constantly here.

use proptest::prelude::*;
use weft_primitives::{Hash, Hlc};

use crate::{CausalDelta, DagError, DagLimits, DagStore, DeltaApplier, DeltaId};

/// Fails on the ids in `failing`; knows the ids the DAG forgot.
struct SwitchableApplier {
    failing: Vec<DeltaId>,
    forgotten: std::collections::HashSet<DeltaId>,
}

impl DeltaApplier<u8> for SwitchableApplier {
    type Error = ();

    fn apply(&mut self, delta: &CausalDelta<u8>) -> Result<(), Self::Error> {
        if self.failing.contains(&delta.id) { Err(()) } else { Ok(()) }
    }

    fn is_forgotten(&mut self, id: &DeltaId) -> bool {
        self.forgotten.contains(id)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add { delta: usize, advance_ms: u64 },
    CleanupStale,
    Retry,
    ToggleFailure { delta: usize },
    Forget { keep: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<prop::sample::Index>(), 0u64..4)
            .prop_map(|(index, advance_ms)| Op::Add { delta: index.index(usize::MAX), advance_ms }),
        1 => Just(Op::CleanupStale),
        1 => Just(Op::Retry),
        1 => any::<prop::sample::Index>().prop_map(|index| Op::ToggleFailure { delta: index.index(usize::MAX) }),
        1 => (0usize..6).prop_map(|keep| Op::Forget { keep }),
    ]
}

fn root() -> DeltaId {
    Hash::of(b"consistency root")
}

/// Deltas in topological order; each picks 1–3 parents among the 5 latest.
fn build(picks: &[Vec<prop::sample::Index>]) -> Vec<CausalDelta<u8>> {
    let mut ids = vec![root()];
    let mut deltas = Vec::new();
    for (i, choice) in picks.iter().enumerate() {
        let mut parents = Vec::new();
        for pick in choice {
            let parent = ids[ids.len() - 1 - pick.index(ids.len().min(5))];
            if !parents.contains(&parent) {
                parents.push(parent);
            }
        }
        let id = Hash::of(&[i as u8, 0x5a]);
        deltas.push(CausalDelta { id, parents, hlc: Hlc::new(i as u64, 0), payload: i as u8 });
        ids.push(id);
    }
    deltas
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn internal_invariants_hold_after_every_operation(
        picks in prop::collection::vec(prop::collection::vec(any::<prop::sample::Index>(), 1..=3), 1..40),
        ops in prop::collection::vec(op(), 1..120),
        pending_max in 0usize..8,
    ) {
        let deltas = build(&picks);
        let limits = DagLimits { pending_max, pending_stale_ms: 6, ..DagLimits::default() };
        let mut dag = DagStore::new(root(), limits);
        let mut applier = SwitchableApplier { failing: Vec::new(), forgotten: Default::default() };
        let mut now_ms = 0;
        for op in ops {
            match op {
                Op::Add { delta, advance_ms } => {
                    now_ms += advance_ms;
                    let delta = deltas[delta % deltas.len()].clone();
                    match dag.add(delta, now_ms, &mut applier) {
                        Ok(_) | Err(DagError::Apply { .. }) => {}
                        Err(err) => prop_assert!(false, "unexpected {err:?}"),
                    }
                }
                Op::CleanupStale => {
                    dag.cleanup_stale(now_ms);
                }
                Op::Retry => {
                    let _ = dag.retry_pending(&mut applier);
                }
                Op::Forget { keep } => {
                    let prefix = dag.forget_below(dag.applied_count().saturating_sub(keep) as u64);
                    applier.forgotten.extend(prefix.forgotten.iter().map(|(id, _)| *id));
                    prop_assert_eq!(prefix.frontier, dag.forgotten_frontier());
                }
                Op::ToggleFailure { delta } => {
                    let id = deltas[delta % deltas.len()].id;
                    match applier.failing.iter().position(|failing| *failing == id) {
                        Some(at) => {
                            applier.failing.swap_remove(at);
                        }
                        None => applier.failing.push(id),
                    }
                }
            }
            prop_assert!(dag.pending_count() <= pending_max);
            if let Err(broken) = dag.check_consistency() {
                prop_assert!(false, "{}", broken);
            }
            for id in dag.missing_parents() {
                prop_assert!(!dag.has(&id));
            }
        }
        // Heal: everything arrives in causal order, then retries succeed.
        applier.failing.clear();
        dag.retry_pending(&mut applier).map_err(|err| TestCaseError::fail(format!("{err:?}")))?;
        for delta in &deltas {
            dag.add(delta.clone(), now_ms, &mut applier).map_err(|err| TestCaseError::fail(format!("{err:?}")))?;
            if let Err(broken) = dag.check_consistency() {
                prop_assert!(false, "{}", broken);
            }
        }
        prop_assert_eq!(dag.applied_count(), deltas.len());
        prop_assert_eq!(dag.pending_count(), 0);
        // Pruning keeps everything consistent too.
        let checkpoint = deltas[deltas.len() / 2].id;
        dag.prune_below(&[checkpoint]);
        if let Err(broken) = dag.check_consistency() {
            prop_assert!(false, "{}", broken);
        }
    }
}
