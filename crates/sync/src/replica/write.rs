//! Local writes: prepare against the current state, then commit as a delta.
//!
//! Preparing is a pure read ([`Replica::prepare_write`] runs a
//! [`StateTxn`] over the persisted state, or the node runs the WASM runtime
//! over [`Replica::write_base`]); committing is the [`Input::LocalWrite`]
//! input. Between the two the state may move (a remote delta applied): the
//! commit then refuses the write as [`WriteError::Stale`] and the caller
//! prepares again, so a local delta's writes are always computed against
//! exactly the state of its parents.
//!
//! The commit persists state writes and delta row in one
//! [`ReplicaStore::commit_applied`] **before** the DAG records the delta, so
//! a refused commit changes nothing, and only then acknowledges and
//! publishes. Publishing never waits for mesh peers: repair does not rely on
//! gossip.
//!
//! Membership: a write is refused ([`WriteError::NotMember`]) unless our
//! identity is a member now, and ([`WriteError::Membership`]) if the
//! membership changes among its events break a rule
//! ([`crate::membership`]), both before anything is committed. A write may
//! have no actions at all: a membership change is such a write, with one
//! membership event (`prepare_write(token, now, |_| Ok(vec![Event::membership(change)]))`).
//! Its change applies locally when it commits. When the heads outnumber
//! the parent bound, the head that descends from our own admission is kept,
//! so that every receiver sees us admitted at the delta's causal point.
//!
//! [`Input::LocalWrite`]: super::Input::LocalWrite

use std::collections::BTreeSet;
use std::sync::Arc;

use weft_dag::{AddOutcome, DeltaId};
use weft_state::{StateError, StateTxn};

use super::apply::{ApplyMode, StateApplier};
use super::interface::{Output, PreparedWrite, WriteBase, WriteError};
use super::{Replica, ReplicaStore};
use crate::delta::{DELTA_BYTES_MAX, Event, SignedDelta};
use crate::store::AppliedRow;

impl<S: ReplicaStore> Replica<S> {
    /// The state version and start stamp for a write prepared now.
    pub fn write_base(&self, now_ms: u64) -> Result<WriteBase, WriteError> {
        // Ticking a copy keeps preparing a pure read; the commit advances
        // the real clock past the write's last stamp.
        let mut clock = self.clock.clone();
        Ok(WriteBase { version: self.core.version, start_hlc: clock.tick(now_ms) })
    }

    /// Run `write` in a transaction over the current state and return the
    /// write ready to commit with [`Input::LocalWrite`](super::Input::LocalWrite).
    /// `write` returns the events to emit.
    pub fn prepare_write<F>(&self, token: u64, now_ms: u64, write: F) -> Result<PreparedWrite, WriteError>
    where
        F: FnOnce(&mut StateTxn<'_, S::Kv>) -> Result<Vec<Event>, StateError>,
    {
        let base = self.write_base(now_ms)?;
        let mut txn = StateTxn::new(self.core.store.state(), self.context, &self.identity, base.start_hlc)
            .with_text_lane(self.text_lane());
        let events = write(&mut txn)?;
        let commit = txn.commit()?;
        Ok(PreparedWrite {
            token,
            base_version: base.version,
            hlc: base.start_hlc,
            actions: commit.actions,
            events,
            writes: commit.writes,
            root_hash: commit.root_hash,
            last_hlc: commit.last_hlc,
        })
    }

    pub(super) fn commit_local(&mut self, write: PreparedWrite, now_ms: u64) {
        let token = write.token;
        let output = match self.try_commit_local(write, now_ms) {
            Ok(id) => Output::WriteCommitted { token, id },
            Err(reason) => Output::WriteRejected { token, reason },
        };
        self.out.push(output);
    }

    fn try_commit_local(&mut self, write: PreparedWrite, now_ms: u64) -> Result<DeltaId, WriteError> {
        if !self.core.members.contains(&self.author) {
            return Err(WriteError::NotMember);
        }
        if write.base_version != self.core.version {
            return Err(WriteError::Stale { base: write.base_version, current: self.core.version });
        }
        let parents = self.write_parents();
        let delta = SignedDelta::sign(&self.identity, &self.context, parents, write.hlc, write.actions, write.events);
        // The rules at the write's own causal point, as every replica will
        // judge it (a rotation's are judged with the delta's id and stamp).
        let point = self.core.members_at(&delta.parents).unwrap_or_else(|| Arc::new(self.core.members.clone()));
        point.check(&self.author, delta.id, delta.hlc, &delta.events).map_err(WriteError::Membership)?;
        let bytes = delta.encode();
        if bytes.len() > DELTA_BYTES_MAX {
            return Err(WriteError::TooLarge { len: bytes.len(), max: DELTA_BYTES_MAX });
        }
        let id = delta.id;
        // Parents are distinct applied heads and the id is fresh, so the DAG
        // will apply it at once: commit the state first, record it after.
        self.core.commit(AppliedRow {
            position: self.core.applied_len,
            id,
            bytes: &bytes,
            writes: write.writes,
            root_hash: write.root_hash,
        })?;
        let last = write.last_hlc.map_or(write.hlc, |last| last.max(write.hlc));
        let _ = self.clock.observe(last, u64::MAX);
        // Record mode applies the write's membership changes (checked above).
        let mut applier = StateApplier::new(&mut self.core, ApplyMode::Record, self.author);
        let outcome = self.dag.add(delta.into_causal(), now_ms, &mut applier);
        let report = applier.take_report();
        debug_assert!(matches!(outcome, Ok(AddOutcome::Applied { .. })), "local delta not applied: {outcome:?}");
        self.out.push(Output::Publish { id, bytes });
        self.emit_applied(report);
        Ok(id)
    }

    /// The parents of a local write: the heads, at most the parent bound of
    /// them. Heads beyond the bound stay heads; a later write names them.
    /// The head that descends from our admission (if we were admitted by a
    /// delta) is always kept: receivers check our membership at the causal
    /// point.
    fn write_parents(&self) -> Vec<DeltaId> {
        let mut heads = self.dag.heads();
        let max = self.config.dag_limits.parents_max;
        if heads.len() > max
            && let Some(admission) = self.core.members.admitted_by(&self.author)
            && let Some(at) = self.head_descending_from(admission, &heads)
        {
            heads.swap(0, at);
        }
        heads.truncate(max);
        heads
    }

    /// The index in `heads` of a head that is `target` or descends from it.
    /// Walks down from the heads through deltas applied after `target` only
    /// (its descendants all were), each at most once: O(deltas applied since
    /// `target`), on the rare path of more heads than the parent bound.
    fn head_descending_from(&self, target: DeltaId, heads: &[DeltaId]) -> Option<usize> {
        let since = self.dag.applied_position(&target)?;
        let mut seen: BTreeSet<DeltaId> = BTreeSet::new();
        for (at, head) in heads.iter().enumerate() {
            let mut stack = vec![*head];
            while let Some(id) = stack.pop() {
                if id == target {
                    return Some(at);
                }
                let after_target = self.dag.applied_position(&id).is_some_and(|position| position > since);
                if !after_target || !seen.insert(id) {
                    continue;
                }
                // Pruned deltas keep their links: the walk crosses them.
                if let Some(parents) = self.dag.applied_parents(&id) {
                    stack.extend(parents.iter().copied());
                }
            }
        }
        None
    }
}
