//! Scenarios: docs/testing.md S1, and the catch-up measurement.
//!
//! **S1**: N replicas, a stream of client writes at random live nodes, a
//! lossy, duplicating, reordering network, partition episodes that heal and
//! crash-restart episodes, all generated from the seed. Once the last heal,
//! restart and write are behind us, every replica must reach the same heads
//! and root hash within `periods_allowed` sync periods, with every
//! acknowledged write visible everywhere.
//!
//! **Catch-up**: a replica crashes, misses `missing` deltas written by two
//! others, restarts; on a clean network with a fixed latency we measure the
//! round trips until it has them all and the stream bytes exchanged with it,
//! against the missing deltas' own encoded size.

use std::collections::BTreeSet;
use std::fmt;

use weft_dag::DeltaId;
use weft_primitives::Hash;

use super::{OracleReport, Sim, SimConfig};
use crate::delta::encode_causal;
use crate::seeded_rng::SeededRng;

/// Simulated step at which convergence is checked after the last fault.
const CONVERGENCE_CHECK_STEP_MS: u64 = 1_000;

/// The knobs of an S1 run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S1Config {
    /// The seed of everything.
    pub seed: u64,
    /// Replicas.
    pub nodes: usize,
    /// Client writes.
    pub ops: usize,
    /// Client writes per simulated second.
    pub ops_per_s: u64,
    /// Message loss, percent.
    pub loss_pct: u32,
    /// Duplicated messages, percent.
    pub dup_pct: u32,
    /// Extra random gossip delay (reordering), ms.
    pub reorder_ms: u64,
    /// Partition episodes.
    pub partitions: usize,
    /// Crash-restart episodes.
    pub crashes: usize,
    /// Sync periods allowed for convergence after the last heal.
    pub periods_allowed: u64,
    /// Each replica's `history_remembered_max` (0: remember everything).
    pub remembered: u64,
}

impl S1Config {
    /// docs/testing.md S1: 20 nodes, 10 000 ops, 10 % loss, 5 % duplicates.
    pub fn full(seed: u64) -> S1Config {
        S1Config {
            seed,
            nodes: 20,
            ops: 10_000,
            ops_per_s: 25,
            loss_pct: 10,
            dup_pct: 5,
            reorder_ms: 300,
            partitions: 6,
            crashes: 8,
            periods_allowed: 6,
            remembered: 0,
        }
    }

    /// The CI slice: the same faults, fewer nodes and ops.
    pub fn ci(seed: u64) -> S1Config {
        S1Config { nodes: 10, ops: 500, ops_per_s: 10, partitions: 3, crashes: 4, ..S1Config::full(seed) }
    }
}

/// What an S1 run found.
#[derive(Clone, Debug)]
pub struct S1Report {
    /// The run's knobs.
    pub config: S1Config,
    /// The oracles at the end.
    pub oracle: OracleReport,
    /// Time from the last heal, restart or write to convergence; `None` if
    /// not converged within the allowance.
    pub converged_after_ms: Option<u64>,
    /// The allowance.
    pub allowed_ms: u64,
    /// The trace hash (same seed ⇒ same hash).
    pub trace_hash: Hash,
    /// Counters.
    pub counters: super::SimCounters,
    /// Simulated duration of the whole run.
    pub simulated_ms: u64,
    /// The most deltas any replica had forgotten at the end.
    pub forgotten_max: u64,
}

impl S1Report {
    /// Whether every pass criterion of S1 holds.
    pub fn passed(&self) -> bool {
        self.oracle.passed(self.config.nodes) && self.converged_after_ms.is_some()
    }

    /// The command that replays this run exactly.
    pub fn replay_command(&self) -> String {
        let c = &self.config;
        format!(
            "scripts/sim --seed {} --nodes {} --ops {} --ops-per-s {} --loss {} --dup {} --reorder {} --partitions {} --crashes {} --periods {} --remember {}",
            c.seed,
            c.nodes,
            c.ops,
            c.ops_per_s,
            c.loss_pct,
            c.dup_pct,
            c.reorder_ms,
            c.partitions,
            c.crashes,
            c.periods_allowed,
            c.remembered
        )
    }
}

impl fmt::Display for S1Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let o = &self.oracle;
        writeln!(
            f,
            "SEED={} nodes={} ops={} result={}",
            c.seed,
            c.nodes,
            c.ops,
            if self.passed() { "PASS" } else { "FAIL" }
        )?;
        writeln!(
            f,
            "  converged_after_ms={:?} (allowed {}) acked={} lost={} up={} distinct_roots={} distinct_heads={} distinct_member_sets={}",
            self.converged_after_ms,
            self.allowed_ms,
            o.acked,
            o.lost,
            o.up,
            o.distinct_roots,
            o.distinct_heads,
            o.distinct_member_sets
        )?;
        writeln!(
            f,
            "  penalties={} divergences={} crashes={} snapshots_needed={} forgotten_max={} gossip_msgs={} stream_msgs={} stream_bytes={} simulated_s={}",
            o.penalties,
            o.divergences,
            self.counters.crashes,
            self.counters.snapshots_needed,
            self.forgotten_max,
            self.counters.gossip_messages,
            self.counters.stream_messages,
            self.counters.stream_bytes,
            self.simulated_ms / 1000
        )?;
        for error in o.invariant_errors.iter().chain(self.counters.incidents.iter()) {
            writeln!(f, "  ! {error}")?;
        }
        if !o.lost_examples.is_empty() {
            writeln!(f, "  lost (token, node): {:?}", o.lost_examples)?;
        }
        write!(f, "  trace={}", self.trace_hash)?;
        if !self.passed() {
            write!(f, "\n  replay: {}", self.replay_command())?;
        }
        Ok(())
    }
}

/// A step of an S1 timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Write,
    Partition(Vec<Vec<usize>>),
    Heal,
    Crash(usize),
    Restart(usize),
}

/// The seeded timeline of an S1 run, sorted by time.
fn timeline(config: &S1Config, start_ms: u64, rng: &mut SeededRng) -> Vec<(u64, Step)> {
    let per_op_ms = 1_000 / config.ops_per_s.max(1);
    let duration_ms = config.ops as u64 * per_op_ms;
    let mut steps: Vec<(u64, Step)> =
        (0..config.ops as u64).map(|i| (start_ms + i * per_op_ms + rng.below(per_op_ms), Step::Write)).collect();
    // Partitions: one per slot of the first 85 % of the run, never overlapping.
    let active_ms = duration_ms * 85 / 100;
    let slot_ms = active_ms / config.partitions.max(1) as u64;
    for slot in 0..config.partitions as u64 {
        let begin = start_ms + slot * slot_ms + rng.below(slot_ms / 3 + 1);
        let length = slot_ms / 4 + rng.below(slot_ms / 4 + 1);
        let mut order: Vec<usize> = (0..config.nodes).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.index(i + 1));
        }
        let parts = 2 + rng.index(2);
        let groups: Vec<Vec<usize>> =
            (0..parts).map(|p| order.iter().copied().skip(p).step_by(parts).collect()).collect();
        steps.push((begin, Step::Partition(groups)));
        steps.push((begin + length, Step::Heal));
    }
    for _ in 0..config.crashes {
        let node = rng.index(config.nodes);
        let at = start_ms + rng.below(active_ms + 1);
        let down_ms = 2_000 + rng.below(28_000);
        steps.push((at, Step::Crash(node)));
        steps.push(((at + down_ms).min(start_ms + duration_ms), Step::Restart(node)));
    }
    // Stable: equal times keep generation order, so the run is reproducible.
    steps.sort_by_key(|(at, _)| *at);
    steps
}

/// Run S1 with `config`; see the module doc.
pub fn run_s1(config: &S1Config) -> S1Report {
    let mut sim_config = SimConfig::new(config.nodes, config.seed);
    if config.remembered > 0 {
        sim_config.replica.history_remembered_max = usize::try_from(config.remembered).ok();
    }
    let mut sim = Sim::new(sim_config);
    sim.net.set_loss(config.loss_pct);
    sim.net.duplicate(config.dup_pct);
    sim.net.reorder(config.reorder_ms);
    let mut rng = SeededRng::new(config.seed.rotate_left(17) ^ 0x51);
    let start_ms = sim.now_ms() + 1_000;
    let steps = timeline(config, start_ms, &mut rng);
    let mut crashed = BTreeSet::new();
    let mut quiet_from = start_ms;
    for (at_ms, step) in steps {
        sim.run_until(at_ms);
        match step {
            Step::Write => {
                let up: Vec<usize> = (0..sim.len()).filter(|node| sim.is_up(*node)).collect();
                if !up.is_empty() {
                    sim.write(up[rng.index(up.len())]);
                }
            }
            Step::Partition(groups) => sim.partition(&groups),
            Step::Heal => sim.heal(),
            Step::Crash(node) => {
                if sim.is_up(node) && crashed.insert(node) {
                    sim.crash(node);
                }
            }
            Step::Restart(node) => {
                if crashed.remove(&node) {
                    sim.restart(node);
                }
            }
        }
        quiet_from = at_ms;
    }
    let allowed_ms = config.periods_allowed * SimConfig::new(0, 0).replica.sync_frequency_ms;
    let mut converged_after_ms = None;
    let mut checked = quiet_from;
    while checked < quiet_from + allowed_ms {
        checked += CONVERGENCE_CHECK_STEP_MS;
        sim.run_until(checked);
        if sim.converged() {
            converged_after_ms = Some(checked - quiet_from);
            break;
        }
    }
    S1Report {
        config: config.clone(),
        oracle: sim.check(),
        converged_after_ms,
        allowed_ms,
        trace_hash: sim.trace_hash(),
        counters: sim.counters.clone(),
        simulated_ms: sim.now_ms() - (start_ms - 1_000),
        forgotten_max: (0..sim.len())
            .filter_map(|node| sim.replica(node))
            .map(|r| r.forgotten_count())
            .max()
            .unwrap_or(0),
    }
}

/// The catch-up figures.
#[derive(Clone, Debug, PartialEq)]
pub struct CatchUp {
    /// Deltas the lagging replica missed.
    pub missing: usize,
    /// Their total encoded size.
    pub missing_bytes: u64,
    /// Stream bytes exchanged with the lagging replica until caught up
    /// (frames included, both directions, every session).
    pub wire_bytes: u64,
    /// Stream messages exchanged with it.
    pub wire_messages: u64,
    /// Time from restart to caught up, in round trips (the network has a
    /// fixed latency and processing takes no simulated time).
    pub round_trips: f64,
}

impl CatchUp {
    /// `wire_bytes / missing_bytes`.
    pub fn ratio(&self) -> f64 {
        self.wire_bytes as f64 / self.missing_bytes.max(1) as f64
    }
}

/// A simulation ready for the catch-up measurement: node 2 of 3 crashed,
/// then missed deltas written by nodes 0 and 1.
pub struct CatchUpRun {
    sim: Sim,
    missing: usize,
    missing_bytes: u64,
}

/// One-way latency of the catch-up measurement's network.
const CATCH_UP_ONE_WAY_MS: u64 = 20;

/// Set up the catch-up measurement (see the module doc): node 2 crashes and
/// misses `missing` deltas.
pub fn prepare_catch_up(missing: usize, seed: u64) -> CatchUpRun {
    let mut sim = Sim::new(SimConfig::new(3, seed));
    sim.net.delay(CATCH_UP_ONE_WAY_MS, CATCH_UP_ONE_WAY_MS);
    for i in 0..30 {
        sim.write(i % 3);
        let now = sim.now_ms();
        sim.run_until(now + 50);
    }
    let now = sim.now_ms();
    sim.run_until(now + 1_000);
    let known: BTreeSet<DeltaId> = sim.replica(2).map(|r| r.applied_ids().into_iter().collect()).unwrap_or_default();
    sim.crash(2);
    for i in 0..missing {
        sim.write(i % 2);
        let now = sim.now_ms();
        sim.run_until(now + 5);
    }
    let now = sim.now_ms();
    sim.run_until(now + 30_000);
    let (missing, missing_bytes) = match sim.replica(0) {
        Some(replica) => replica
            .applied_ids()
            .iter()
            .filter(|id| !known.contains(id))
            .filter_map(|id| replica.dag().get(id))
            .fold((0, 0u64), |(n, bytes), delta| (n + 1, bytes + encode_causal(delta).len() as u64)),
        None => (0, 0),
    };
    CatchUpRun { sim, missing, missing_bytes }
}

impl CatchUpRun {
    /// Restart node 2 and run until it holds everything node 0 holds.
    pub fn run(mut self) -> CatchUp {
        let sim = &mut self.sim;
        let link_totals = |sim: &Sim| -> (u64, u64) {
            let on_link = |((a, b), _): &(&(usize, usize), &u64)| *a == 2 || *b == 2;
            let bytes = sim.counters.stream_bytes_by_link.iter().filter(on_link).map(|(_, v)| v).sum();
            let messages = sim.counters.stream_messages_by_link.iter().filter(on_link).map(|(_, v)| v).sum();
            (bytes, messages)
        };
        let (bytes_before, messages_before) = link_totals(sim);
        let restarted_at = sim.now_ms();
        sim.restart(2);
        let target = sim.replica(0).map(|r| r.heads()).unwrap_or_default();
        let mut now = restarted_at;
        while sim.replica(2).map(|r| r.heads()) != Some(target.clone()) && now < restarted_at + 60_000 {
            now += 1;
            sim.run_until(now);
        }
        let (bytes_after, messages_after) = link_totals(sim);
        CatchUp {
            missing: self.missing,
            missing_bytes: self.missing_bytes,
            wire_bytes: bytes_after - bytes_before,
            wire_messages: messages_after - messages_before,
            round_trips: (now - restarted_at) as f64 / (2 * CATCH_UP_ONE_WAY_MS) as f64,
        }
    }
}

/// [`prepare_catch_up`] then [`CatchUpRun::run`].
pub fn measure_catch_up(missing: usize, seed: u64) -> CatchUp {
    prepare_catch_up(missing, seed).run()
}
