//! The oracles of docs/testing.md, checked over a [`Sim`]:
//!
//! - **Root hash**: every up replica reports the same root hash, heads and
//!   member set.
//! - **Op ledger** ("set-full"): every acknowledged write is visible on every
//!   replica (its delta applied and its ledger key holding its value), else
//!   it is *lost*. Replicas agreeing is not enough. Acknowledged membership
//!   changes must be applied everywhere too.
//! - **DAG invariants**: [`Replica::check_invariants`](crate::Replica::check_invariants)
//!   on every replica (parents applied before children, ids are content
//!   hashes, the pending buffer within its bound).
//! - **Honesty**: no replica penalized another and none reported divergence
//!   (every node in the simulation is honest).

use weft_dag::DeltaId;
use weft_primitives::{Hash, PublicKey};
use weft_state::{StateTxn, Value, root_id};

use super::{Sim, ledger_key};
use crate::store::ReplicaStore;

/// One acknowledged write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedWrite {
    /// The client's token.
    pub token: u64,
    /// The node that acknowledged it.
    pub node: usize,
    /// Its delta.
    pub id: DeltaId,
    /// When.
    pub at_ms: u64,
}

/// Every acknowledged write of a run.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// In acknowledgement order.
    pub acked: Vec<AckedWrite>,
    /// Acknowledged membership changes (no ledger key: only their deltas
    /// are checked).
    pub membership: Vec<AckedWrite>,
}

/// What the oracles found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OracleReport {
    /// Replicas up.
    pub up: usize,
    /// Distinct root hashes among the up replicas.
    pub distinct_roots: usize,
    /// Distinct head sets among the up replicas.
    pub distinct_heads: usize,
    /// Distinct member sets among the up replicas.
    pub distinct_member_sets: usize,
    /// Acknowledged writes.
    pub acked: usize,
    /// Acknowledged writes missing on at least one replica (must be 0).
    pub lost: usize,
    /// The first lost writes, as `(token, node missing it)`.
    pub lost_examples: Vec<(u64, usize)>,
    /// Invariant violations.
    pub invariant_errors: Vec<String>,
    /// Penalties and divergences seen during the run.
    pub penalties: u64,
    /// Divergences seen during the run.
    pub divergences: u64,
}

impl OracleReport {
    /// Whether every oracle passed (all nodes must be up).
    pub fn passed(&self, nodes: usize) -> bool {
        self.up == nodes
            && self.distinct_roots == 1
            && self.distinct_heads == 1
            && self.distinct_member_sets == 1
            && self.lost == 0
            && self.invariant_errors.is_empty()
            && self.penalties == 0
            && self.divergences == 0
    }
}

/// Lost-write examples kept in a report.
const LOST_EXAMPLES_MAX: usize = 8;

impl Sim {
    /// Whether every up replica has the same heads, root hash and members.
    pub fn converged(&self) -> bool {
        let mut summaries = (0..self.len())
            .filter_map(|node| self.replica(node))
            .map(|r| (r.root_hash(), r.heads(), r.members().copied().collect::<Vec<_>>()));
        let Some(first) = summaries.next() else { return true };
        summaries.all(|other| other == first)
    }

    /// Run every oracle. Costs O(nodes × (history + ledger)).
    pub fn check(&self) -> OracleReport {
        let replicas: Vec<_> = (0..self.len()).filter_map(|node| self.replica(node).map(|r| (node, r))).collect();
        let mut roots: Vec<Hash> = replicas.iter().map(|(_, r)| r.root_hash()).collect();
        roots.sort_unstable();
        roots.dedup();
        let mut heads: Vec<Vec<DeltaId>> = replicas.iter().map(|(_, r)| r.heads()).collect();
        heads.sort_unstable();
        heads.dedup();
        let mut member_sets: Vec<Vec<PublicKey>> =
            replicas.iter().map(|(_, r)| r.members().copied().collect()).collect();
        member_sets.sort_unstable();
        member_sets.dedup();
        let mut report = OracleReport {
            up: replicas.len(),
            distinct_roots: roots.len(),
            distinct_heads: heads.len(),
            distinct_member_sets: member_sets.len(),
            acked: self.ledger.acked.len(),
            penalties: self.counters.penalties,
            divergences: self.counters.divergences,
            ..OracleReport::default()
        };
        for (node, replica) in &replicas {
            if let Err(error) = replica.check_invariants() {
                report.invariant_errors.push(format!("node {node}: {error}"));
            }
        }
        for change in &self.ledger.membership {
            if let Some((node, _)) = replicas.iter().find(|(_, replica)| !replica.is_applied(&change.id)) {
                report.lost += 1;
                if report.lost_examples.len() < LOST_EXAMPLES_MAX {
                    report.lost_examples.push((change.token, *node));
                }
            }
        }
        for write in &self.ledger.acked {
            let missing: Vec<usize> = replicas
                .iter()
                .filter(|(_, replica)| {
                    let applied = replica.is_applied(&write.id);
                    let mut txn = StateTxn::read_only(replica.store().state());
                    let value = txn.map_get(root_id(), &ledger_key(write.token));
                    !(applied && value == Ok(Some(Value::Bytes(write.token.to_le_bytes().to_vec()))))
                })
                .map(|(node, _)| *node)
                .collect();
            if !missing.is_empty() {
                report.lost += 1;
                if report.lost_examples.len() < LOST_EXAMPLES_MAX {
                    report.lost_examples.push((write.token, missing[0]));
                }
            }
        }
        report
    }
}
