//! The one JSON summary a run prints, and whether it passed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::ledger::Verdict;
use crate::run::Options;
use crate::schedule::{Fault, FaultKind};

/// Handler runs, checked against the triggers and the daemons' logs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HandlerCheck {
    /// Triggers acknowledged to the harness.
    pub triggers_acked: u64,
    /// Triggers in the final state (acknowledged plus unanswered that committed).
    pub triggers_committed: i64,
    /// Handler runs in the final state.
    pub handler_runs_committed: i64,
    /// Runs beyond one per (trigger, other node): at-least-once allows them.
    pub duplicate_runs: u64,
    /// (trigger, node) pairs whose run is missing from the node's log.
    pub missing_runs: u64,
    /// Runs on the trigger's own author (must be 0).
    pub ran_on_author: u64,
    /// What is wrong, if anything.
    pub problems: Vec<String>,
}

/// The summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Passed: no lost write, no divergence, no unexpected death.
    pub ok: bool,
    /// The seed.
    pub seed: u64,
    /// Daemons.
    pub nodes: usize,
    /// Seconds the workload ran.
    pub run_secs: f64,
    /// Calls attempted.
    pub ops_attempted: u64,
    /// … acknowledged.
    pub ops_acked: u64,
    /// … refused with an answer.
    pub ops_failed: u64,
    /// … with no answer.
    pub ops_unknown: u64,
    /// Attempted calls per second.
    pub ops_per_s: f64,
    /// From the end of the last fault until every node agreed (ms).
    pub converge_ms: Option<u64>,
    /// The ledger's verdict.
    pub ledger: Option<Verdict>,
    /// The handlers' verdict.
    pub handlers: Option<HandlerCheck>,
    /// Faults carried out, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// Restarts of each daemon.
    pub restarts: Vec<u32>,
    /// What the proxy did.
    pub proxy: Value,
    /// Faults the harness could not carry out (the run went on without them).
    pub fault_errors: Vec<String>,
    /// What failed.
    pub failures: Vec<String>,
    /// The command that replays this run.
    pub replay: String,
    /// Where homes and logs were kept, if asked.
    pub workdir: Option<String>,
    /// The most deltas one node forgot in one context (`--remember`).
    pub history_forgotten_max: u64,
}

impl Summary {
    /// An empty summary of `options` with the faults carried out.
    pub fn new(options: &Options, _scheduled: &[Fault], executed: &[Fault]) -> Summary {
        let mut faults = BTreeMap::new();
        for fault in executed {
            *faults.entry(fault.kind).or_insert(0) += 1;
        }
        Summary {
            ok: false,
            seed: options.seed,
            nodes: options.nodes,
            run_secs: 0.0,
            ops_attempted: 0,
            ops_acked: 0,
            ops_failed: 0,
            ops_unknown: 0,
            ops_per_s: 0.0,
            converge_ms: None,
            ledger: None,
            handlers: None,
            faults,
            restarts: Vec::new(),
            proxy: Value::Null,
            fault_errors: Vec::new(),
            failures: Vec::new(),
            replay: options.replay.clone(),
            workdir: None,
            history_forgotten_max: 0,
        }
    }
}
