//! The seeded workload: writers that call the daemons' APIs at a steady
//! rate, each owning its keys (so every key's history is one sequence the
//! ledger can replay), and recording every call in the [`Ledger`].
//!
//! A writer's mix: 60 % `set` of a new key, 10 % `set` of one of its keys
//! (an update), 10 % `remove` of one of its keys, 20 % `trigger` of the
//! counter-handlers app (every other node must run the handler).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::watch;

use crate::api::{Api, CallOutcome};
use crate::ledger::{Ledger, Op, Outcome, Record};

/// What a writer needs.
#[derive(Clone)]
pub struct Writer {
    /// The node it writes to.
    pub node: usize,
    /// Its number on that node.
    pub lane: usize,
    /// The node's API.
    pub api: Api,
    /// The kv-store context.
    pub kv: String,
    /// The counter-handlers context.
    pub counter: String,
    /// Pause between calls.
    pub period: Duration,
    /// Its own seed.
    pub seed: u64,
}

/// The note a trigger carries: unique per call, found in the handlers' logs.
pub fn trigger_note(node: usize, lane: usize, seq: u64) -> String {
    format!("t{node}l{lane}s{seq}")
}

impl Writer {
    /// Call until `stop` turns true; every call goes into `ledger`.
    pub async fn run(self, ledger: Arc<Mutex<Ledger>>, mut stop: watch::Receiver<bool>) {
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let mut live: Vec<String> = Vec::new();
        let mut ticker = tokio::time::interval(self.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for seq in 0u64.. {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let roll = rng.random_range(0..100);
            let op = match roll {
                0..60 => Op::Set { key: format!("k{}l{}s{seq}", self.node, self.lane), value: format!("v{seq}") },
                60..70 if !live.is_empty() => {
                    let key = live[rng.random_range(0..live.len())].clone();
                    Op::Set { key, value: format!("u{seq}") }
                }
                70..80 if !live.is_empty() => Op::Remove { key: live.swap_remove(rng.random_range(0..live.len())) },
                _ => Op::Trigger { note: trigger_note(self.node, self.lane, seq) },
            };
            let outcome = match &op {
                Op::Set { key, value } => self.api.execute(&self.kv, "set", json!({"key": key, "value": value})).await,
                Op::Remove { key } => self.api.execute(&self.kv, "remove", json!({"key": key})).await,
                Op::Trigger { note } => self.api.execute(&self.counter, "trigger", json!({"note": note})).await,
            };
            if let (Op::Set { key, .. }, CallOutcome::Acked(_)) = (&op, &outcome)
                && !live.contains(key)
            {
                live.push(key.clone());
            }
            let outcome = Outcome::from(&outcome);
            ledger.lock().unwrap_or_else(PoisonError::into_inner).push(Record { node: self.node, op, outcome });
        }
    }
}

/// The notes of acknowledged triggers, by author node.
pub fn acked_triggers(ledger: &Ledger) -> Vec<(usize, String)> {
    ledger
        .records()
        .iter()
        .filter(|r| r.outcome == Outcome::Acked)
        .filter_map(|r| match &r.op {
            Op::Trigger { note } => Some((r.node, note.clone())),
            _ => None,
        })
        .collect()
}

/// The trigger notes a daemon's log shows it handled ("handling trigger:
/// <note>", logged by the app), as a set.
pub fn handled_notes(log: &str) -> BTreeSet<String> {
    const MARK: &str = "handling trigger: ";
    log.lines()
        .filter_map(|line| line.find(MARK).map(|at| &line[at + MARK.len()..]))
        .map(|rest| rest.chars().take_while(char::is_ascii_alphanumeric).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_notes_are_read_from_log_lines() {
        let log = "2026 INFO weft::app: handling trigger: t1l0s5 context=ab method=\"on_event\"\n\
                   other line\n\
                   INFO weft::app: handling trigger: t2l1s9\n";
        assert_eq!(handled_notes(log), BTreeSet::from(["t1l0s5".to_owned(), "t2l1s9".to_owned()]));
    }
}
