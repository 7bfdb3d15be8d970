//! The fault schedule: a pure function of the seed and the run's shape, so
//! a failing run is replayed by running the same command again.
//!
//! Faults start every few seconds (a random gap), each on a node that no
//! other fault holds at that moment (a node is not killed while it is
//! paused), and each ends after its own random span; a partition or a
//! flaky-link period holds the network. The last fault ends before the run
//! does: the convergence clock starts when it ends.

use std::collections::BTreeSet;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9`, then restart.
    Kill,
    /// SIGSTOP, then SIGCONT (a laptop lid closed).
    Pause,
    /// The nodes split in two groups that cannot reach each other; heals.
    Partition,
    /// One node's traffic stops moving in the proxy; resumes.
    Stall,
    /// Every link is slow and drops and duplicates connections.
    Flaky,
    /// One node's disk is full (its home on a small tmpfs); space returns.
    DiskFull,
}

/// One fault, from `at_ms` for `span_ms` (ms since the workload started).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// When it starts.
    pub at_ms: u64,
    /// How long it lasts.
    pub span_ms: u64,
    /// What it is.
    pub kind: FaultKind,
    /// The node it hits (kill, pause, stall, disk full).
    pub node: Option<usize>,
    /// The partition's groups, one per node.
    pub groups: Vec<u8>,
}

/// The shape of a run the schedule depends on.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Nodes.
    pub nodes: usize,
    /// How long faults are injected.
    pub duration_ms: u64,
    /// The kinds to draw from.
    pub kinds: Vec<FaultKind>,
    /// The node that can run out of disk, if any.
    pub disk_full_node: Option<usize>,
}

/// Shortest and longest gap between two fault starts.
const GAP_MS: (u64, u64) = (2_000, 7_000);

/// The schedule of `shape` for `seed`.
pub fn schedule(seed: u64, shape: &Shape) -> Vec<Fault> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    let kinds: Vec<FaultKind> =
        shape.kinds.iter().copied().filter(|k| *k != FaultKind::DiskFull || shape.disk_full_node.is_some()).collect();
    if kinds.is_empty() || shape.nodes == 0 {
        return faults;
    }
    // When each node, and the network, is free again.
    let mut node_free = vec![0u64; shape.nodes];
    let mut network_free = 0u64;
    let mut at = rng.random_range(GAP_MS.0..=GAP_MS.1);
    while at < shape.duration_ms {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let span = match kind {
            FaultKind::Kill => rng.random_range(500..=6_000),
            FaultKind::Pause => rng.random_range(1_000..=10_000),
            FaultKind::Partition => rng.random_range(3_000..=20_000),
            FaultKind::Stall => rng.random_range(2_000..=10_000),
            FaultKind::Flaky => rng.random_range(5_000..=15_000),
            FaultKind::DiskFull => rng.random_range(3_000..=10_000),
        };
        let end = at + span;
        let fits = end <= shape.duration_ms;
        match kind {
            FaultKind::Partition | FaultKind::Flaky if fits && network_free <= at => {
                let groups = if kind == FaultKind::Partition { split(&mut rng, shape.nodes) } else { Vec::new() };
                faults.push(Fault { at_ms: at, span_ms: span, kind, node: None, groups });
                network_free = end;
            }
            FaultKind::Kill | FaultKind::Pause | FaultKind::Stall | FaultKind::DiskFull if fits => {
                let free: Vec<usize> = match (kind, shape.disk_full_node) {
                    (FaultKind::DiskFull, Some(node)) => vec![node],
                    _ => (0..shape.nodes).collect(),
                };
                let free: Vec<usize> = free.into_iter().filter(|n| node_free[*n] <= at).collect();
                if let Some(node) = free.get(rng.random_range(0..free.len().max(1))).copied() {
                    faults.push(Fault { at_ms: at, span_ms: span, kind, node: Some(node), groups: Vec::new() });
                    node_free[node] = end;
                }
            }
            _ => {}
        }
        at += rng.random_range(GAP_MS.0..=GAP_MS.1);
    }
    faults
}

/// Two non-empty groups (for 2+ nodes).
fn split(rng: &mut SmallRng, nodes: usize) -> Vec<u8> {
    let mut order: Vec<usize> = (0..nodes).collect();
    order.shuffle(rng);
    let cut = rng.random_range(1..nodes.max(2));
    let minority: BTreeSet<usize> = order[..cut].iter().copied().collect();
    (0..nodes).map(|n| u8::from(minority.contains(&n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            nodes: 5,
            duration_ms: 600_000,
            kinds: vec![FaultKind::Kill, FaultKind::Pause, FaultKind::Partition, FaultKind::Stall, FaultKind::Flaky],
            disk_full_node: None,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        assert_eq!(schedule(7, &shape()), schedule(7, &shape()));
        assert_ne!(schedule(7, &shape()), schedule(8, &shape()));
    }

    #[test]
    fn faults_on_one_node_never_overlap_and_all_end_within_the_run() {
        let faults = schedule(3, &shape());
        assert!(faults.len() > 50, "{}", faults.len());
        for kind in [FaultKind::Kill, FaultKind::Pause, FaultKind::Partition, FaultKind::Stall, FaultKind::Flaky] {
            assert!(faults.iter().any(|f| f.kind == kind), "{kind:?} never drawn");
        }
        for fault in &faults {
            assert!(fault.at_ms + fault.span_ms <= 600_000);
        }
        for node in 0..5 {
            let mut mine: Vec<&Fault> = faults.iter().filter(|f| f.node == Some(node)).collect();
            mine.sort_by_key(|f| f.at_ms);
            for pair in mine.windows(2) {
                assert!(pair[0].at_ms + pair[0].span_ms <= pair[1].at_ms, "{pair:?}");
            }
        }
        for fault in faults.iter().filter(|f| f.kind == FaultKind::Partition) {
            assert!(fault.groups.contains(&0) && fault.groups.contains(&1), "{fault:?}");
        }
    }

    #[test]
    fn disk_full_hits_only_the_node_on_a_small_disk() {
        let shape = Shape { kinds: vec![FaultKind::DiskFull], disk_full_node: Some(2), ..shape() };
        let faults = schedule(1, &shape);
        assert!(!faults.is_empty());
        assert!(faults.iter().all(|f| f.node == Some(2)));
        let without = Shape { disk_full_node: None, ..shape };
        assert!(schedule(1, &without).is_empty());
    }
}
