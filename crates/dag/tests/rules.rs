//! One test per DAG rule: fork/merge heads, out-of-order cascade, malformed
//! deltas, duplicates, the pending bound, staleness, pruning, sync pages and
//! applier failures.

// Test helpers outside `#[test]` functions unwrap too; a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{FailingApplier, RecordingApplier, StorageDown, delta, id, root};
use weft_dag::{AddOutcome, DagError, DagLimits, DagStore, DeltaId};

fn store() -> DagStore<String> {
    DagStore::new(root(), DagLimits::default())
}

fn sorted(mut ids: Vec<DeltaId>) -> Vec<DeltaId> {
    ids.sort_unstable();
    ids
}

fn applied(ids: &[DeltaId]) -> AddOutcome {
    AddOutcome::Applied { applied: ids.to_vec() }
}

fn pending(missing: &[DeltaId]) -> AddOutcome {
    AddOutcome::Pending { missing: sorted(missing.to_vec()), evicted: Vec::new() }
}

#[test]
fn causal_delta_round_trips_through_the_canonical_encoding() {
    let original = delta("D1", &[root(), id("other")]);
    let bytes = weft_primitives::encoding::encode(&original);
    assert_eq!(weft_primitives::encoding::decode::<weft_dag::CausalDelta<String>>(&bytes), Ok(original));
}

#[test]
fn root_is_the_only_head_of_an_empty_dag_and_counts_as_applied() {
    let dag = store();
    assert_eq!(dag.heads(), vec![root()]);
    assert!(dag.is_applied(&root()));
    assert!(dag.has(&root()));
    assert_eq!(dag.applied_count(), 0);
    assert!(dag.get(&root()).is_none());
}

#[test]
fn fork_then_merge_moves_heads_from_both_branches_to_the_merge() {
    let mut dag = store();
    let mut log = RecordingApplier::default();
    assert_eq!(dag.add(delta("D0", &[root()]), 0, &mut log), Ok(applied(&[id("D0")])));
    assert_eq!(dag.heads(), vec![id("D0")]);
    dag.add(delta("D1A", &[id("D0")]), 0, &mut log).unwrap();
    dag.add(delta("D1B", &[id("D0")]), 0, &mut log).unwrap();
    assert_eq!(dag.heads(), sorted(vec![id("D1A"), id("D1B")]));
    assert_eq!(dag.add(delta("D2", &[id("D1A"), id("D1B")]), 0, &mut log), Ok(applied(&[id("D2")])));
    assert_eq!(dag.heads(), vec![id("D2")]);
    assert_eq!(log.applied, vec![id("D0"), id("D1A"), id("D1B"), id("D2")]);
}

#[test]
fn out_of_order_child_waits_then_cascades_when_its_parent_arrives() {
    let mut dag = store();
    let mut log = RecordingApplier::default();
    dag.add(delta("D1", &[root()]), 0, &mut log).unwrap();
    assert_eq!(dag.add(delta("D3", &[id("D2")]), 0, &mut log), Ok(pending(&[id("D2")])));
    assert_eq!(dag.heads(), vec![id("D1")]);
    assert!(dag.has(&id("D3")) && !dag.is_applied(&id("D3")));
    assert_eq!(dag.missing_parents(), vec![id("D2")]);
    assert_eq!(dag.add(delta("D2", &[id("D1")]), 0, &mut log), Ok(applied(&[id("D2"), id("D3")])));
    assert_eq!(dag.heads(), vec![id("D3")]);
    assert_eq!(dag.pending_count(), 0);
    assert!(dag.missing_parents().is_empty());
    assert_eq!(log.applied, vec![id("D1"), id("D2"), id("D3")]);
}

#[test]
fn pending_outcome_names_only_parents_that_are_neither_applied_nor_pending() {
    let mut dag = store();
    let mut log = RecordingApplier::default();
    dag.add(delta("A", &[root()]), 0, &mut log).unwrap();
    assert_eq!(dag.add(delta("C", &[id("B")]), 0, &mut log), Ok(pending(&[id("B")])));
    // D waits on applied A, pending C and unknown X: only X is worth requesting.
    assert_eq!(dag.add(delta("D", &[id("A"), id("C"), id("X")]), 0, &mut log), Ok(pending(&[id("X")])));
    assert_eq!(dag.missing_parents(), sorted(vec![id("B"), id("X")]));
    assert_eq!(dag.pending_stats(0).missing_count, 2);
}

#[test]
fn deep_reverse_chain_cascades_without_recursion() {
    const LEN: usize = 20_000;
    let mut dag = DagStore::new(root(), DagLimits { pending_max: LEN, ..DagLimits::default() });
    let mut log = RecordingApplier::default();
    let ids: Vec<DeltaId> = (0..LEN).map(|i| id(&format!("n{i}"))).collect();
    for i in (1..LEN).rev() {
        let outcome = dag.add(delta(&format!("n{i}"), &[ids[i - 1]]), 0, &mut log).unwrap();
        assert!(matches!(outcome, AddOutcome::Pending { .. }));
    }
    let AddOutcome::Applied { applied } = dag.add(delta("n0", &[root()]), 0, &mut log).unwrap() else {
        panic!("the first delta applies");
    };
    assert_eq!(applied, ids);
    assert_eq!(dag.heads(), vec![ids[LEN - 1]]);
    assert_eq!(dag.pending_count(), 0);
}

fn assert_rejected_without_change(dag: &mut DagStore<String>, bad: weft_dag::CausalDelta<String>, want: DagError) {
    let before = (dag.heads(), dag.applied_count(), dag.pending_count(), dag.missing_parents());
    let bad_id = bad.id;
    let mut log = RecordingApplier::default();
    assert_eq!(dag.add(bad, 0, &mut log), Err(want));
    assert_eq!((dag.heads(), dag.applied_count(), dag.pending_count(), dag.missing_parents()), before);
    assert!(log.applied.is_empty());
    if bad_id != root() {
        assert!(!dag.has(&bad_id));
    }
}

fn store_with_a_pending_delta() -> DagStore<String> {
    let mut dag = store();
    let mut log = RecordingApplier::default();
    dag.add(delta("A", &[root()]), 0, &mut log).unwrap();
    dag.add(delta("P", &[id("missing")]), 0, &mut log).unwrap();
    dag
}

#[test]
fn delta_naming_itself_as_parent_is_rejected_as_self_parent() {
    let mut dag = store_with_a_pending_delta();
    let bad = delta("S", &[id("A"), id("S")]);
    assert_rejected_without_change(&mut dag, bad, DagError::SelfParent { id: id("S") });
}

#[test]
fn delta_naming_a_parent_twice_is_rejected_as_duplicate_parent() {
    let mut dag = store_with_a_pending_delta();
    let bad = delta("S", &[id("A"), id("missing"), id("A")]);
    assert_rejected_without_change(&mut dag, bad, DagError::DuplicateParent { id: id("S"), parent: id("A") });
    // The sorted check used for long parent lists finds repeats too.
    let mut dag = DagStore::new(root(), DagLimits { parents_max: 100, ..DagLimits::default() });
    let mut parents: Vec<DeltaId> = (0..40).map(|i| id(&format!("p{i}"))).collect();
    parents.push(id("p7"));
    assert_rejected_without_change(
        &mut dag,
        delta("S", &parents),
        DagError::DuplicateParent { id: id("S"), parent: id("p7") },
    );
}

#[test]
fn delta_over_the_parent_limit_is_rejected_as_too_many_parents() {
    let mut dag = store_with_a_pending_delta();
    let parents: Vec<DeltaId> = (0..65).map(|i| id(&format!("p{i}"))).collect();
    assert_rejected_without_change(
        &mut dag,
        delta("S", &parents),
        DagError::TooManyParents { id: id("S"), count: 65, max: 64 },
    );
    // Exactly at the limit is fine.
    let mut log = RecordingApplier::default();
    assert!(matches!(dag.add(delta("S", &parents[..64]), 0, &mut log), Ok(AddOutcome::Pending { .. })));
}

#[test]
fn delta_without_parents_is_rejected_as_empty_parents() {
    let mut dag = store_with_a_pending_delta();
    assert_rejected_without_change(&mut dag, delta("S", &[]), DagError::EmptyParents { id: id("S") });
}

#[test]
fn delta_claiming_the_root_id_is_rejected_as_root_id() {
    let mut dag = store_with_a_pending_delta();
    let bad = delta("root", &[id("A")]);
    assert_rejected_without_change(&mut dag, bad, DagError::RootId { id: root() });
}

#[test]
fn re_adding_an_applied_or_pending_delta_is_a_duplicate_that_changes_nothing() {
    let mut dag = store();
    let mut log = RecordingApplier::default();
    dag.add(delta("A", &[root()]), 0, &mut log).unwrap();
    dag.add(delta("C", &[id("B")]), 5, &mut log).unwrap();
    let stats = dag.pending_stats(10);
    assert_eq!(dag.add(delta("A", &[root()]), 9, &mut log), Ok(AddOutcome::Duplicate));
    assert_eq!(dag.add(delta("C", &[id("B")]), 9, &mut log), Ok(AddOutcome::Duplicate));
    // The duplicate does not refresh C's arrival time.
    assert_eq!(dag.pending_stats(10), stats);
    assert_eq!(log.applied, vec![id("A")]);
    assert_eq!(dag.add(delta("B", &[id("A")]), 9, &mut log), Ok(applied(&[id("B"), id("C")])));
    assert_eq!(log.applied, vec![id("A"), id("B"), id("C")]);
}

#[test]
fn pending_over_the_bound_evicts_the_oldest_arrival_first() {
    let limits = DagLimits { pending_max: 2, ..DagLimits::default() };
    let mut dag: DagStore<String> = DagStore::new(root(), limits);
    let mut log = RecordingApplier::default();
    dag.add(delta("a", &[id("x")]), 10, &mut log).unwrap();
    dag.add(delta("b", &[id("x")]), 20, &mut log).unwrap();
    let outcome = dag.add(delta("c", &[id("x")]), 30, &mut log).unwrap();
    assert_eq!(outcome, AddOutcome::Pending { missing: vec![id("x")], evicted: vec![id("a")] });
    assert!(!dag.has(&id("a")));
    assert_eq!(dag.pending_count(), 2);
    let stats = dag.pending_stats(40);
    assert_eq!((stats.count, stats.oldest_age_ms, stats.evicted_total), (2, Some(20), 1));
    // The evicted delta is forgotten, so it can be added again (and is now the newest).
    let outcome = dag.add(delta("a", &[id("x")]), 40, &mut log).unwrap();
    assert_eq!(outcome, AddOutcome::Pending { missing: vec![id("x")], evicted: vec![id("b")] });
    // When x arrives, only the deltas still pending cascade, each once.
    let AddOutcome::Applied { applied } = dag.add(delta("x", &[root()]), 50, &mut log).unwrap() else {
        panic!("x applies");
    };
    assert_eq!(sorted(applied), sorted(vec![id("x"), id("a"), id("c")]));
    assert_eq!(log.applied.len(), 3);
}

#[test]
fn eviction_ties_on_arrival_time_are_broken_by_smallest_id() {
    let limits = DagLimits { pending_max: 3, ..DagLimits::default() };
    let mut dag: DagStore<String> = DagStore::new(root(), limits);
    let mut log = RecordingApplier::default();
    let labels = ["p", "q", "r", "s"];
    let mut evicted = Vec::new();
    for label in labels {
        if let AddOutcome::Pending { evicted: out, .. } = dag.add(delta(label, &[id("x")]), 7, &mut log).unwrap() {
            evicted.extend(out);
        }
    }
    let smallest = labels.iter().map(|l| id(l)).min().unwrap();
    assert_eq!(evicted, vec![smallest]);
}

#[test]
fn zero_pending_bound_evicts_every_waiting_delta_at_once() {
    let limits = DagLimits { pending_max: 0, ..DagLimits::default() };
    let mut dag: DagStore<String> = DagStore::new(root(), limits);
    let mut log = RecordingApplier::default();
    let outcome = dag.add(delta("a", &[id("x")]), 0, &mut log).unwrap();
    assert_eq!(outcome, AddOutcome::Pending { missing: vec![id("x")], evicted: vec![id("a")] });
    assert_eq!(dag.pending_count(), 0);
    assert!(dag.missing_parents().is_empty());
}

#[test]
fn cleanup_stale_evicts_only_deltas_older_than_the_stale_limit() {
    let limits = DagLimits { pending_stale_ms: 100, ..DagLimits::default() };
    let mut dag: DagStore<String> = DagStore::new(root(), limits);
    let mut log = RecordingApplier::default();
    dag.add(delta("old", &[id("x")]), 0, &mut log).unwrap();
    dag.add(delta("new", &[id("y")]), 50, &mut log).unwrap();
    assert_eq!(dag.pending_stats(120).oldest_age_ms, Some(120));
    assert!(dag.cleanup_stale(100).is_empty(), "exactly the limit is not stale yet");
    assert_eq!(dag.cleanup_stale(120), vec![id("old")]);
    assert!(!dag.has(&id("old")));
    // x is no longer named by any pending delta.
    assert_eq!(dag.missing_parents(), vec![id("y")]);
    assert_eq!(dag.cleanup_stale(151), vec![id("new")]);
    let stats = dag.pending_stats(151);
    assert_eq!((stats.count, stats.oldest_age_ms, stats.missing_count, stats.evicted_total), (0, None, 0, 2));
}

#[test]
fn evicting_a_pending_parent_makes_it_missing_again() {
    let limits = DagLimits { pending_stale_ms: 10, ..DagLimits::default() };
    let mut dag: DagStore<String> = DagStore::new(root(), limits);
    let mut log = RecordingApplier::default();
    dag.add(delta("B", &[id("A")]), 0, &mut log).unwrap();
    dag.add(delta("C", &[id("B")]), 20, &mut log).unwrap();
    assert_eq!(dag.missing_parents(), vec![id("A")]);
    assert_eq!(dag.cleanup_stale(25), vec![id("B")]);
    assert_eq!(dag.missing_parents(), vec![id("B")]);
    // Re-delivering the chain still cascades C exactly once.
    dag.add(delta("B", &[id("A")]), 26, &mut log).unwrap();
    assert_eq!(dag.add(delta("A", &[root()]), 27, &mut log), Ok(applied(&[id("A"), id("B"), id("C")])));
    assert_eq!(log.applied, vec![id("A"), id("B"), id("C")]);
}

/// root <- D1 <- D2 <- D3 <- D4 <- D5, all applied.
fn chain_of_five() -> DagStore<String> {
    let mut dag = store();
    let mut log = RecordingApplier::default();
    let mut parent = root();
    for i in 1..=5 {
        dag.add(delta(&format!("D{i}"), &[parent]), 0, &mut log).unwrap();
        parent = id(&format!("D{i}"));
    }
    dag
}

#[test]
fn prune_below_drops_ancestor_payloads_but_keeps_them_satisfied_forever() {
    let mut dag = chain_of_five();
    assert_eq!(dag.prune_below(&[id("D3")]), 2);
    assert_eq!(dag.prune_below(&[id("D3")]), 0, "pruning is idempotent");
    assert_eq!(dag.pruned_count(), 2);
    assert!(dag.get(&id("D1")).is_none() && dag.get(&id("D2")).is_none());
    assert!(dag.get(&id("D3")).is_some(), "the checkpoint keeps its payload");
    assert!(dag.is_pruned(&id("D1")) && dag.is_applied(&id("D1")) && dag.has(&id("D1")));
    assert_eq!(dag.heads(), vec![id("D5")]);
    let mut log = RecordingApplier::default();
    // A pruned id is a duplicate, and a satisfied parent.
    assert_eq!(dag.add(delta("D1", &[root()]), 0, &mut log), Ok(AddOutcome::Duplicate));
    assert_eq!(dag.add(delta("late", &[id("D1")]), 0, &mut log), Ok(applied(&[id("late")])));
    // A pruned parent next to a missing one: only the missing one is reported.
    assert_eq!(dag.add(delta("W", &[id("D2"), id("gone")]), 0, &mut log), Ok(pending(&[id("gone")])));
    assert_eq!(dag.missing_parents(), vec![id("gone")]);
    // The pruned ancestor never comes back as a head.
    assert_eq!(dag.heads(), sorted(vec![id("D5"), id("late")]));
}

#[test]
fn deltas_missing_for_reports_pruned_history_when_the_peer_needs_it() {
    let mut dag = chain_of_five();
    dag.prune_below(&[id("D3")]);
    assert_eq!(dag.deltas_missing_for(&[root()], None, 100).err(), Some(DagError::PrunedHistory { id: id("D2") }));
    assert!(matches!(dag.deltas_missing_for(&[id("D1")], None, 100), Err(DagError::PrunedHistory { .. })));
    // A peer at D2 (pruned here, but it has it) or later can still be served.
    for (peer_head, want) in [("D2", vec!["D3", "D4", "D5"]), ("D3", vec!["D4", "D5"]), ("D5", vec![])] {
        let page = dag.deltas_missing_for(&[id(peer_head)], None, 100).unwrap();
        let got: Vec<DeltaId> = page.deltas.iter().map(|d| d.id).collect();
        assert_eq!(got, want.iter().map(|l| id(l)).collect::<Vec<_>>(), "peer at {peer_head}");
        assert_eq!(page.next_cursor, None);
    }
}

#[test]
fn deltas_missing_for_sees_through_pruned_deltas_the_peer_has() {
    // L merges D4 and D5, so the walk from L reaches D4 before D5 (which the
    // peer has) proves the peer has D4 too; D5 is pruned, so that proof needs
    // the parent links kept by pruning.
    let mut dag = chain_of_five();
    let mut log = RecordingApplier::default();
    dag.add(delta("L", &[id("D4"), id("D5")]), 0, &mut log).unwrap();
    assert_eq!(dag.prune_below(&[id("L")]), 5);
    let page = dag.deltas_missing_for(&[id("D5")], None, 100).unwrap();
    assert_eq!(page.deltas.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id("L")]);
    assert_eq!(dag.deltas_missing_for(&[id("D3")], None, 100).err(), Some(DagError::PrunedHistory { id: id("D5") }));
}

#[test]
fn deltas_missing_for_pages_in_apply_order_with_a_cursor() {
    let dag = chain_of_five();
    let mut cursor = None;
    let mut got = Vec::new();
    loop {
        let page = dag.deltas_missing_for(&[id("D1")], cursor, 2).unwrap();
        assert!(page.deltas.len() <= 2);
        got.extend(page.deltas.iter().map(|d| d.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(got, vec![id("D2"), id("D3"), id("D4"), id("D5")]);
    // Unknown peer heads are ignored: the peer gets everything.
    let page = dag.deltas_missing_for(&[id("stranger")], None, 0).unwrap();
    assert_eq!(page.deltas.len(), 1, "limit 0 is clamped to 1");
    assert!(page.next_cursor.is_some());
}

#[test]
fn applier_failure_mid_cascade_keeps_earlier_deltas_applied_and_the_failed_one_pending() {
    let mut dag = store();
    let mut app = FailingApplier { failing: vec![id("D3")], applied: Vec::new() };
    dag.add(delta("D1", &[root()]), 0, &mut app).unwrap();
    dag.add(delta("D4", &[id("D3")]), 0, &mut app).unwrap();
    dag.add(delta("D3", &[id("D2")]), 0, &mut app).unwrap();
    let err = dag.add(delta("D2", &[id("D1")]), 0, &mut app).unwrap_err();
    assert_eq!(err, DagError::Apply { id: id("D3"), applied_before: vec![id("D2")], source: StorageDown });
    assert!(dag.is_applied(&id("D2")));
    assert!(!dag.is_applied(&id("D3")) && dag.has(&id("D3")));
    assert!(!dag.is_applied(&id("D4")) && dag.has(&id("D4")));
    assert_eq!(dag.heads(), vec![id("D2")]);
    assert!(dag.missing_parents().is_empty(), "D3 is pending, not missing");
    // Still failing: nothing changes.
    assert!(matches!(dag.retry_pending(&mut app), Err(DagError::Apply { .. })));
    assert_eq!(dag.pending_count(), 2);
    // Storage is back: the retry applies D3 and cascades to D4.
    app.failing.clear();
    assert_eq!(dag.retry_pending(&mut app), Ok(vec![id("D3"), id("D4")]));
    assert_eq!(dag.retry_pending(&mut app), Ok(vec![]));
    assert_eq!(dag.heads(), vec![id("D4")]);
    assert_eq!(app.applied, vec![id("D1"), id("D2"), id("D3"), id("D4")]);
}

#[test]
fn applier_failure_on_a_ready_delta_leaves_it_pending_for_retry() {
    let mut dag = store();
    let mut app = FailingApplier { failing: vec![id("A")], applied: Vec::new() };
    let err = dag.add(delta("A", &[root()]), 0, &mut app).unwrap_err();
    assert_eq!(err, DagError::Apply { id: id("A"), applied_before: vec![], source: StorageDown });
    assert!(dag.has(&id("A")) && !dag.is_applied(&id("A")));
    assert_eq!(dag.heads(), vec![root()]);
    assert_eq!(dag.add(delta("A", &[root()]), 0, &mut app), Ok(AddOutcome::Duplicate));
    // A child of the stalled delta waits on it without marking it missing.
    assert_eq!(dag.add(delta("B", &[id("A")]), 0, &mut app), Ok(pending(&[])));
    app.failing.clear();
    assert_eq!(dag.retry_pending(&mut app), Ok(vec![id("A"), id("B")]));
    assert_eq!(dag.heads(), vec![id("B")]);
}

#[test]
fn applier_failure_stalls_the_rest_of_the_cascade_for_retry() {
    let mut dag = store();
    let mut app = FailingApplier { failing: vec![id("B1")], applied: Vec::new() };
    // B1, B2, B3 all wait on A; the cascade from A stops at the first failure.
    for label in ["B1", "B2", "B3"] {
        dag.add(delta(label, &[id("A")]), 0, &mut app).unwrap();
    }
    let err = dag.add(delta("A", &[root()]), 0, &mut app).unwrap_err();
    let DagError::Apply { id: failed, applied_before, .. } = err else { panic!("apply error") };
    assert_eq!(failed, id("B1"));
    assert!(applied_before.contains(&id("A")));
    assert!(!dag.is_applied(&id("B1")));
    app.failing.clear();
    let retried = dag.retry_pending(&mut app).unwrap();
    assert!(retried.contains(&id("B1")));
    for label in ["A", "B1", "B2", "B3"] {
        assert!(dag.is_applied(&id(label)), "{label} applied");
    }
    assert_eq!(app.applied.len(), 4, "each applied exactly once");
    assert_eq!(dag.pending_count(), 0);
}

#[test]
fn a_retry_is_not_held_back_by_a_sibling_that_keeps_failing() {
    let mut dag = store();
    let mut app = FailingApplier { failing: vec![id("B1")], applied: Vec::new() };
    for label in ["B1", "B2", "B3"] {
        dag.add(delta(label, &[id("A")]), 0, &mut app).unwrap();
    }
    // The cascade from A stops at B1 and stalls B2 and B3 behind it.
    assert!(dag.add(delta("A", &[root()]), 0, &mut app).is_err());
    // B1 never applies; the retry still applies its siblings.
    let err = dag.retry_pending(&mut app).unwrap_err();
    match err {
        DagError::Apply { id: failed, applied_before, .. } => {
            assert_eq!(failed, id("B1"));
            assert_eq!(applied_before, vec![id("B2"), id("B3")]);
        }
        other => panic!("expected Apply, got {other:?}"),
    }
    assert!(dag.is_applied(&id("B2")) && dag.is_applied(&id("B3")));
    assert!(dag.has(&id("B1")) && !dag.is_applied(&id("B1")));
    assert_eq!(dag.pending_count(), 1);
}

#[test]
fn pruned_deltas_keep_their_parent_links() {
    let mut dag = chain_of_five();
    dag.prune_below(&[id("D4")]);
    assert!(dag.is_pruned(&id("D2")) && dag.get(&id("D2")).is_none());
    // The links stay walkable across pruned deltas, held ones too.
    assert_eq!(dag.applied_parents(&id("D2")), Some(&[id("D1")][..]));
    assert_eq!(dag.applied_parents(&id("D5")), Some(&[id("D4")][..]));
    assert_eq!(dag.applied_parents(&id("unknown")), None);
}
