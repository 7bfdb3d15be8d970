//! The write ledger (Jepsen's "set-full", adapted to a key-value store):
//! every write the harness attempts is recorded with its outcome, and at
//! the end the state every node holds must be explained by that history.
//!
//! Each key is written by one writer only, one call at a time, so its
//! history is a sequence. Replaying the sequence gives the set of values
//! the key may end with: an acknowledged set makes it exactly that value,
//! an acknowledged remove makes it absent, a refused call changes nothing,
//! and a call that got no answer may or may not have happened (the set
//! grows). A key whose final value is outside its set has **lost** an
//! acknowledged write (or shows one that never happened). A write is
//! **stable** when the value it wrote is what every node holds (or it was
//! superseded by a later write of the same writer that is).
//!
//! Handler triggers are recorded too; the check is in `crate::run`
//! (counts and the daemons' logs).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::api::CallOutcome;

/// What a call tried to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// kv-store `set`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// kv-store `remove`.
    Remove {
        /// The key.
        key: String,
    },
    /// counter-handlers `trigger` (every other node must run the handler).
    Trigger {
        /// The note passed to the handlers (unique per call).
        note: String,
    },
}

/// How a call ended, as far as the ledger cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Acknowledged: durable on the node.
    Acked,
    /// Refused: nothing written.
    Failed,
    /// No answer: maybe written.
    Unknown,
}

impl From<&CallOutcome> for Outcome {
    fn from(outcome: &CallOutcome) -> Outcome {
        match outcome {
            CallOutcome::Acked(_) => Outcome::Acked,
            CallOutcome::Failed(_) => Outcome::Failed,
            CallOutcome::Unknown(_) => Outcome::Unknown,
        }
    }
}

/// One call.
#[derive(Clone, Debug)]
pub struct Record {
    /// The node it was sent to.
    pub node: usize,
    /// What it did.
    pub op: Op,
    /// How it ended.
    pub outcome: Outcome,
}

/// Every call, in the order each writer made them.
#[derive(Debug, Default)]
pub struct Ledger {
    records: Vec<Record>,
}

/// What the check found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    /// Acknowledged writes (sets and removes).
    pub writes_acked: u64,
    /// Acknowledged writes whose effect every node shows.
    pub stable: u64,
    /// Keys whose final value no history explains.
    pub lost: u64,
    /// A few of them, for the report.
    pub lost_examples: Vec<String>,
    /// Keys the ledger tracked.
    pub keys: u64,
    /// Keys present on the nodes that no call ever wrote.
    pub unexpected_keys: u64,
}

impl Ledger {
    /// Record a call.
    pub fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    /// Every call.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Write every call as one JSON line (`node`, `op`, `key`/`value` or
    /// `note`, `outcome`).
    pub fn write_jsonl(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for record in &self.records {
            let line = match &record.op {
                Op::Set { key, value } => {
                    serde_json::json!({"node": record.node, "op": "set", "key": key, "value": value, "outcome": record.outcome})
                }
                Op::Remove { key } => {
                    serde_json::json!({"node": record.node, "op": "remove", "key": key, "outcome": record.outcome})
                }
                Op::Trigger { note } => {
                    serde_json::json!({"node": record.node, "op": "trigger", "note": note, "outcome": record.outcome})
                }
            };
            writeln!(out, "{line}")?;
        }
        out.flush()
    }

    /// Calls with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.records.iter().filter(|r| r.outcome == outcome).count() as u64
    }

    /// Check the kv state every node agreed on (`entries`) against the history.
    pub fn check(&self, entries: &BTreeMap<String, String>) -> Verdict {
        let mut histories: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for record in &self.records {
            match &record.op {
                Op::Set { key, .. } | Op::Remove { key } => histories.entry(key).or_default().push(record),
                Op::Trigger { .. } => {}
            }
        }
        let mut verdict = Verdict { keys: histories.len() as u64, ..Verdict::default() };
        for (key, history) in &histories {
            let observed = entries.get(*key).cloned();
            let mut possible: BTreeSet<Option<String>> = BTreeSet::from([None]);
            let mut acked = 0;
            for record in history {
                let effect = match &record.op {
                    Op::Set { value, .. } => Some(value.clone()),
                    _ => None,
                };
                match record.outcome {
                    Outcome::Acked => {
                        acked += 1;
                        possible = BTreeSet::from([effect]);
                    }
                    Outcome::Unknown => {
                        possible.insert(effect);
                    }
                    Outcome::Failed => {}
                }
            }
            verdict.writes_acked += acked;
            if possible.contains(&observed) {
                verdict.stable += acked;
            } else {
                verdict.lost += 1;
                if verdict.lost_examples.len() < 10 {
                    verdict.lost_examples.push(format!("{key}: holds {observed:?}, history allows {possible:?}"));
                }
            }
        }
        verdict.unexpected_keys = entries.keys().filter(|k| !histories.contains_key(k.as_str())).count() as u64;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str, outcome: Outcome) -> Record {
        Record { node: 0, op: Op::Set { key: key.into(), value: value.into() }, outcome }
    }

    fn remove(key: &str, outcome: Outcome) -> Record {
        Record { node: 0, op: Op::Remove { key: key.into() }, outcome }
    }

    fn ledger(records: Vec<Record>) -> Ledger {
        let mut ledger = Ledger::default();
        for record in records {
            ledger.push(record);
        }
        ledger
    }

    fn state(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn acknowledged_writes_that_every_node_shows_are_stable() {
        let ledger =
            ledger(vec![set("a", "1", Outcome::Acked), set("a", "2", Outcome::Acked), set("b", "1", Outcome::Acked)]);
        let verdict = ledger.check(&state(&[("a", "2"), ("b", "1")]));
        assert_eq!((verdict.writes_acked, verdict.stable, verdict.lost), (3, 3, 0));
    }

    #[test]
    fn a_missing_or_stale_acknowledged_write_is_lost() {
        let ledger =
            ledger(vec![set("a", "1", Outcome::Acked), set("a", "2", Outcome::Acked), set("b", "1", Outcome::Acked)]);
        let verdict = ledger.check(&state(&[("a", "1")]));
        assert_eq!(verdict.lost, 2, "{verdict:?}");
    }

    #[test]
    fn an_unanswered_write_may_or_may_not_show_a_refused_one_must_not() {
        let maybe = ledger(vec![set("a", "1", Outcome::Acked), set("a", "2", Outcome::Unknown)]);
        assert_eq!(maybe.check(&state(&[("a", "1")])).lost, 0);
        assert_eq!(maybe.check(&state(&[("a", "2")])).lost, 0);
        assert_eq!(maybe.check(&state(&[])).lost, 1, "the acknowledged 1 cannot vanish");
        let refused = ledger(vec![set("a", "1", Outcome::Acked), set("a", "2", Outcome::Failed)]);
        assert_eq!(refused.check(&state(&[("a", "2")])).lost, 1, "a refused write must not show");
    }

    #[test]
    fn an_acknowledged_remove_must_leave_the_key_absent() {
        let removed = ledger(vec![set("a", "1", Outcome::Acked), remove("a", Outcome::Acked)]);
        assert_eq!(removed.check(&state(&[])).lost, 0);
        assert_eq!(removed.check(&state(&[("a", "1")])).lost, 1);
        let maybe = ledger(vec![set("a", "1", Outcome::Acked), remove("a", Outcome::Unknown)]);
        assert_eq!(maybe.check(&state(&[])).lost + maybe.check(&state(&[("a", "1")])).lost, 0);
    }

    #[test]
    fn keys_nobody_wrote_are_counted() {
        let verdict = ledger(vec![]).check(&state(&[("ghost", "1")]));
        assert_eq!(verdict.unexpected_keys, 1);
    }
}
