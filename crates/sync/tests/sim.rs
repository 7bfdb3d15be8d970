//! docs/testing.md S1 through the deterministic simulator: the CI slice (a few
//! seeds, fewer nodes and ops) and the full run (`#[ignore]`; `scripts/sim`
//! runs it in release). Set `SIM_SEED=<n>` to run one seed of the slice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use weft_sync::sim::{JoinsConfig, S1Config, S1Report, run_joins, run_s1};

/// Seeds of the CI slice. A seed that ever failed joins this list.
const CI_SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 0xdead_beef];

fn assert_passed(report: &S1Report) {
    println!("{report}");
    assert!(report.passed(), "S1 failed\nSEED={}\nreplay: {}\n{report}", report.config.seed, report.replay_command());
}

fn seeds() -> Vec<u64> {
    match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => CI_SEEDS.to_vec(),
    }
}

#[test]
fn s1_slice_converges_with_no_lost_writes() {
    for seed in seeds() {
        assert_passed(&run_s1(&S1Config::ci(seed)));
    }
}

/// The slice again, slower (2 writes/s, so no replica falls more than ~70
/// writes behind in a crash or a partition), with each replica forgetting
/// all but its last 120 applied deltas: crashes restart from the forgotten
/// history, late deltas name forgotten parents, and everything converges
/// with nothing lost. (A peer that forgot more than a lagging replica needs
/// answers `PrunedHistory`; the replica catches up from another one.)
#[test]
fn s1_slice_converges_while_replicas_forget_history() {
    for seed in seeds().into_iter().take(3) {
        let report = run_s1(&S1Config { remembered: 120, ops_per_s: 2, ..S1Config::ci(seed) });
        assert_passed(&report);
        assert!(report.forgotten_max >= 300, "replicas forgot only {} deltas", report.forgotten_max);
        // A forgotten hint in a peer's summary is no reason to refuse it.
        assert_eq!(report.counters.snapshots_needed, 0);
    }
}

#[test]
fn s1_same_seed_gives_the_same_trace() {
    let config = S1Config { ops: 80, ..S1Config::ci(7) };
    let first = run_s1(&config);
    let second = run_s1(&config);
    assert_eq!(first.trace_hash, second.trace_hash, "same seed, different trace");
    let other = run_s1(&S1Config { seed: 8, ..config });
    assert_ne!(first.trace_hash, other.trace_hash, "the trace must depend on the seed");
}

#[test]
fn s1_twenty_nodes_slice() {
    let config = S1Config { nodes: 20, ops: 300, ..S1Config::ci(11) };
    assert_passed(&run_s1(&config));
}

#[test]
fn membership_converges_in_the_sim() {
    let mut buffered = 0;
    for seed in seeds() {
        let report = run_joins(&JoinsConfig::ci(seed));
        println!("{report}");
        assert!(report.passed(), "joins scenario failed\nSEED={seed}\n{report}");
        buffered += report.unvetted_buffered;
    }
    assert!(buffered > 0, "no replica ever got a joiner's write before its Add");
}

#[test]
#[ignore = "long: 20 nodes, 10 000 ops; run with scripts/sim"]
fn s1_full() {
    let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    assert_passed(&run_s1(&S1Config::full(seed)));
}
