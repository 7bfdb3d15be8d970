//! Membership in the simulator: membership changes written by a node, and
//! the joiners scenario.
//!
//! **Joiners**: the first `founders` nodes are the initial members and
//! write; the other nodes start as non-members (connected and replicating,
//! but their writes are refused) and are admitted one by one at spread
//! times, each by a random member — often an earlier joiner — and then
//! write too. At each admission the admitter's link to one other node drops
//! every message for a few seconds, so that node gets the joiner's first
//! writes before the `Add`: it must buffer them (their author is not a
//! member yet and their parents are missing), fetch the `Add` and apply
//! both. Near the end one founder leaves. The network loses, duplicates and
//! reorders throughout. Pass: every node ends with the same heads, root hash
//! and member set (the expected one), every acknowledged write — the
//! joiners' included — and every acknowledged membership change is applied
//! everywhere, nobody was penalized, and joiners' writes were accepted.

use std::collections::BTreeSet;
use std::fmt;

use weft_dag::DeltaId;
use weft_primitives::{Hash, PublicKey};
use weft_state::StateError;

use super::{Delivery, NodeState, OracleReport, Sim, SimConfig, SimCounters};
use crate::delta::Event;
use crate::membership::MembershipChange;
use crate::replica::Input;
use crate::seeded_rng::SeededRng;

/// Simulated step at which convergence is checked after the last step.
const CONVERGENCE_CHECK_STEP_MS: u64 = 1_000;
/// How long the admitter's link to the chosen node drops everything.
const LINK_CUT_MS: u64 = 3_000;
/// When a joiner writes after its admission (twice).
const JOINER_FIRST_WRITES_MS: [u64; 2] = [400, 900];

/// The knobs of a joiners run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinsConfig {
    /// The seed of everything.
    pub seed: u64,
    /// Nodes (at least `founders + 1`, and at least 3).
    pub nodes: usize,
    /// Initial members (at least 2: one of them leaves).
    pub founders: usize,
    /// Client writes at random member nodes.
    pub ops: usize,
    /// Client writes per simulated second.
    pub ops_per_s: u64,
    /// Message loss, percent.
    pub loss_pct: u32,
    /// Duplicated messages, percent.
    pub dup_pct: u32,
    /// Extra random gossip delay (reordering), ms.
    pub reorder_ms: u64,
    /// Sync periods allowed for convergence after the last step.
    pub periods_allowed: u64,
}

impl JoinsConfig {
    /// The CI shape: 6 nodes, 3 founders, 3 joiners, 240 writes.
    pub fn ci(seed: u64) -> JoinsConfig {
        JoinsConfig {
            seed,
            nodes: 6,
            founders: 3,
            ops: 240,
            ops_per_s: 10,
            loss_pct: 10,
            dup_pct: 5,
            reorder_ms: 300,
            periods_allowed: 6,
        }
    }
}

/// What a joiners run found.
#[derive(Clone, Debug)]
pub struct JoinsReport {
    /// The run's knobs.
    pub config: JoinsConfig,
    /// The oracles at the end.
    pub oracle: OracleReport,
    /// Time from the last step to convergence, if within the allowance.
    pub converged_after_ms: Option<u64>,
    /// The allowance.
    pub allowed_ms: u64,
    /// Acknowledged writes by nodes that joined during the run.
    pub joiner_writes: usize,
    /// Deltas buffered, across replicas, while their author was not a
    /// member yet (the joiner's writes that overtook its `Add`).
    pub unvetted_buffered: u64,
    /// Whether every replica's member set is the expected one (founders,
    /// plus acknowledged joiners, minus the leaver).
    pub members_as_expected: bool,
    /// Counters.
    pub counters: SimCounters,
    /// The trace hash (same seed ⇒ same hash).
    pub trace_hash: Hash,
}

impl JoinsReport {
    /// Whether every pass criterion holds.
    pub fn passed(&self) -> bool {
        self.oracle.passed(self.config.nodes)
            && self.converged_after_ms.is_some()
            && self.members_as_expected
            && self.joiner_writes > 0
    }
}

impl fmt::Display for JoinsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, o) = (&self.config, &self.oracle);
        writeln!(
            f,
            "JOINS SEED={} nodes={} founders={} ops={} result={}",
            c.seed,
            c.nodes,
            c.founders,
            c.ops,
            if self.passed() { "PASS" } else { "FAIL" }
        )?;
        writeln!(
            f,
            "  converged_after_ms={:?} (allowed {}) acked={} lost={} joiner_writes={} unvetted_buffered={} members_as_expected={}",
            self.converged_after_ms,
            self.allowed_ms,
            o.acked,
            o.lost,
            self.joiner_writes,
            self.unvetted_buffered,
            self.members_as_expected
        )?;
        writeln!(
            f,
            "  distinct_roots={} distinct_heads={} distinct_member_sets={} penalties={} divergences={} membership_outputs={}",
            o.distinct_roots,
            o.distinct_heads,
            o.distinct_member_sets,
            o.penalties,
            o.divergences,
            self.counters.membership_changes
        )?;
        for error in o.invariant_errors.iter().chain(self.counters.incidents.iter()) {
            writeln!(f, "  ! {error}")?;
        }
        write!(f, "  trace={}", self.trace_hash)
    }
}

impl Sim {
    /// The identity `node` writes as.
    pub fn key_of(&self, node: usize) -> Option<PublicKey> {
        self.nodes.get(node).map(|n| n.key.public_key())
    }

    /// Whether `node` is up and a member in its own replica's view (so its
    /// writes are not refused).
    pub fn is_member_here(&self, node: usize) -> bool {
        match (self.replica(node), self.key_of(node)) {
            (Some(replica), Some(key)) => replica.is_member(&key),
            _ => false,
        }
    }

    /// Write `change` at `node`, as a delta with no actions and one
    /// membership event. Returns its delta if acknowledged; it is then
    /// recorded in [`Ledger::membership`](super::Ledger::membership).
    pub fn change_membership(&mut self, node: usize, change: MembershipChange) -> Option<DeltaId> {
        let token = self.next_token;
        self.next_token += 1;
        let now = self.now_ms;
        let Some(NodeState::Up(replica)) = self.nodes.get(node).map(|n| &n.state) else { return None };
        let Ok(prepared) = replica.prepare_write(token, now, |_| Ok::<_, StateError>(vec![Event::membership(change)]))
        else {
            self.counters.writes_refused += 1;
            return None;
        };
        self.deliver(Delivery { from: None, to: node, input: Input::LocalWrite(prepared) });
        if self.ledger.acked.last().is_some_and(|write| write.token == token) {
            let acked = self.ledger.acked.pop()?;
            let id = acked.id;
            self.ledger.membership.push(acked);
            return Some(id);
        }
        None
    }
}

/// A step of a joiners timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// A write at a random member node.
    Write,
    /// A write at this node.
    WriteBy(usize),
    /// Admit this node.
    Join(usize),
    /// This node leaves.
    Leave(usize),
    /// Give this directed link the run's loss again.
    RestoreLink(usize, usize),
}

fn timeline(config: &JoinsConfig, start_ms: u64, rng: &mut SeededRng) -> Vec<(u64, Step)> {
    let per_op_ms = 1_000 / config.ops_per_s.max(1);
    let duration_ms = config.ops as u64 * per_op_ms;
    let mut steps: Vec<(u64, Step)> =
        (0..config.ops as u64).map(|i| (start_ms + i * per_op_ms + rng.below(per_op_ms), Step::Write)).collect();
    let joiners: Vec<usize> = (config.founders..config.nodes).collect();
    let slots = joiners.len() as u64 + 2;
    for (k, joiner) in joiners.iter().enumerate() {
        let at = start_ms + (k as u64 + 1) * duration_ms / slots;
        steps.push((at, Step::Join(*joiner)));
        for after in JOINER_FIRST_WRITES_MS {
            steps.push((at + after, Step::WriteBy(*joiner)));
        }
    }
    steps.push((start_ms + duration_ms * 9 / 10, Step::Leave(1)));
    steps.sort_by_key(|(at, _)| *at);
    steps
}

/// Run the joiners scenario (see the module doc).
pub fn run_joins(config: &JoinsConfig) -> JoinsReport {
    let sim_config = SimConfig { initial_members: config.founders, ..SimConfig::new(config.nodes, config.seed) };
    let mut sim = Sim::new(sim_config);
    sim.net.set_loss(config.loss_pct);
    sim.net.duplicate(config.dup_pct);
    sim.net.reorder(config.reorder_ms);
    let mut rng = SeededRng::new(config.seed.rotate_left(23) ^ 0x10);
    let start_ms = sim.now_ms() + 1_000;
    let mut steps = timeline(config, start_ms, &mut rng);
    let mut expected: BTreeSet<PublicKey> = (0..config.founders).filter_map(|node| sim.key_of(node)).collect();
    let mut joined: BTreeSet<usize> = BTreeSet::new();
    let mut joiner_tokens: BTreeSet<u64> = BTreeSet::new();
    let mut quiet_from = start_ms;
    let mut index = 0;
    while let Some((at_ms, step)) = steps.get(index).copied() {
        index += 1;
        sim.run_until(at_ms);
        quiet_from = at_ms;
        let writers: Vec<usize> = (0..sim.len()).filter(|node| sim.is_member_here(*node)).collect();
        match step {
            Step::Write | Step::WriteBy(_) => {
                let node = match step {
                    Step::WriteBy(node) => node,
                    _ if writers.is_empty() => continue,
                    _ => writers[rng.index(writers.len())],
                };
                if let Some(token) = sim.write(node)
                    && joined.contains(&node)
                {
                    joiner_tokens.insert(token);
                }
            }
            Step::Join(joiner) => {
                let Some(member) = sim.key_of(joiner) else { continue };
                if writers.is_empty() {
                    continue;
                }
                let admitter = writers[rng.index(writers.len())];
                let others: Vec<usize> = (0..sim.len()).filter(|n| *n != admitter && *n != joiner).collect();
                if !others.is_empty() {
                    let cut = others[rng.index(others.len())];
                    sim.net.drop_link(admitter, cut, 100);
                    let restore = (at_ms + LINK_CUT_MS, Step::RestoreLink(admitter, cut));
                    let at = steps.partition_point(|(t, _)| *t <= restore.0);
                    steps.insert(at.max(index), restore);
                }
                let invitation = Hash::of(&(joiner as u64).to_le_bytes());
                if sim.change_membership(admitter, MembershipChange::Add { member, invitation }).is_some() {
                    expected.insert(member);
                    joined.insert(joiner);
                }
            }
            Step::Leave(node) => {
                let Some(member) = sim.key_of(node) else { continue };
                if sim.change_membership(node, MembershipChange::Leave { member }).is_some() {
                    expected.remove(&member);
                }
            }
            Step::RestoreLink(from, to) => sim.net.drop_link(from, to, config.loss_pct),
        }
    }
    let allowed_ms = config.periods_allowed * sim.config.replica.sync_frequency_ms;
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
    let replicas: Vec<_> = (0..sim.len()).filter_map(|node| sim.replica(node)).collect();
    let members_as_expected = replicas.iter().all(|r| r.members().copied().collect::<BTreeSet<_>>() == expected);
    let unvetted_buffered = replicas.iter().map(|r| r.stats().unvetted).sum();
    let joiner_writes = sim.ledger.acked.iter().filter(|write| joiner_tokens.contains(&write.token)).count();
    JoinsReport {
        config: config.clone(),
        oracle: sim.check(),
        converged_after_ms,
        allowed_ms,
        joiner_writes,
        unvetted_buffered,
        members_as_expected,
        counters: sim.counters.clone(),
        trace_hash: sim.trace_hash(),
    }
}
