//! The receive path: a delta from gossip, a sync page or a parent answer.
//!
//! Order of checks (cheapest first, all before the DAG sees the delta):
//! size bound, strict decode, id = content hash; then a known id is a
//! duplicate and costs nothing more (same hash, same content, already
//! verified); then parents, the membership changes it carries (well formed,
//! a `Leave` only by the leaver), the author's membership, signature, clock
//! drift (the signatures of a sync page may have been checked beforehand on
//! several threads: `signatures`, same verdicts). A verified delta goes to the DAG, which applies it (and cascades)
//! through the [`StateApplier`](super::apply::StateApplier) or buffers it;
//! a buffered delta's missing parents are wanted **at once**, from the peer
//! that sent it first (it built on them, or forwarded a delta that names
//! them).
//!
//! Membership at the causal point: when every parent is applied, the causal
//! point is known (see [`crate::membership`]) and a non-member author is
//! refused at once, penalizing the sender. When a parent is missing, the
//! author may be admitted by a delta we have not seen yet: the delta is
//! buffered (signature checked first) and the applier decides when its
//! parents are in. At most [`UNVETTED_PENDING_MAX`] such deltas wait at
//! once; beyond that they are dropped unjudged, without penalty.

use weft_dag::{AddOutcome, DagError};

use super::apply::{ApplyError, ApplyMode, StateApplier};
use super::interface::{Offense, Output, PeerId, Verdict};
use super::signatures::ValidSignatures;
use super::{Replica, ReplicaStore, UNVETTED_PENDING_MAX};
use crate::delta::{DeltaRejection, SignedDelta};
use crate::membership::membership_changes;

/// Where a delta came from; decides how its missing parents are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Gossip (the fast path).
    Gossip,
    /// A page of an anti-entropy session.
    Sync,
    /// An answer to a parent request that was `depth` rounds deep.
    Parent { depth: u32 },
    /// The persisted pending buffer, at restart.
    Restore,
}

/// What happened to a verified delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Applied (with its cascade).
    Applied,
    /// Buffered until its parents arrive.
    Pending,
    /// Already known.
    Duplicate,
    /// Verified, but applying it (or a delta of its cascade) failed.
    Stalled,
    /// Its author is not a member yet, its causal point is unknown, and too
    /// many such deltas wait already: dropped without a verdict.
    Dropped,
}

/// What the receive checks know about a delta's author.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vetting {
    /// A member (at the causal point, or at least now).
    Member,
    /// Not a member now, and the causal point is unknown: the applier
    /// decides.
    Unknown,
}

impl<S: ReplicaStore> Replica<S> {
    pub(super) fn on_gossip(&mut self, from: PeerId, message: u64, bytes: &[u8], now_ms: u64) {
        let verdict = match self.accept_delta(Some(from), bytes, Origin::Gossip, now_ms, &ValidSignatures::new()) {
            Ok(Received::Duplicate | Received::Dropped) => Verdict::Ignore,
            Ok(_) => Verdict::Accept,
            Err(rejection) => {
                self.penalize(from, Offense::BadDelta(rejection));
                Verdict::Reject
            }
        };
        self.out.push(Output::GossipVerdict { message, verdict });
    }

    /// Verify `bytes` and hand the delta to the DAG. `from` is the peer it
    /// came from (`None` when restoring); a delta whose exact (author, id,
    /// signature) is in `valid` had its signature checked already.
    pub(super) fn accept_delta(
        &mut self,
        from: Option<PeerId>,
        bytes: &[u8],
        origin: Origin,
        now_ms: u64,
        valid: &ValidSignatures,
    ) -> Result<Received, DeltaRejection> {
        let delta = SignedDelta::decode(bytes).inspect_err(|_| self.stats.rejected += 1)?;
        delta.check_id(&self.context).inspect_err(|_| self.stats.rejected += 1)?;
        if self.holds_delta(&delta.id, &delta.parents) || self.core.rejected.contains(&delta.id) {
            self.stats.duplicates += 1;
            return Ok(Received::Duplicate);
        }
        let vetting = self.verify_new(&delta, now_ms, valid).inspect_err(|_| self.stats.rejected += 1)?;
        if vetting == Vetting::Unknown && !self.make_unvetted_room() {
            return Ok(Received::Dropped);
        }
        let (id, author) = (delta.id, delta.author);
        if !delta.parents.iter().all(|parent| self.is_applied(parent)) {
            // It will wait: within the byte and per-author bounds only.
            let dag = &self.dag;
            let room = self
                .pending_shares
                .admit(&author, bytes.len(), dag.pending_count(), |id| dag.get_pending(id).is_some());
            if room.is_err() {
                self.stats.pending_refused += 1;
                return Ok(Received::Dropped);
            }
        }
        let mut applier = StateApplier::new(&mut self.core, ApplyMode::Apply, self.author);
        let result = self.dag.add(delta.into_causal(), now_ms, &mut applier);
        let report = applier.take_report();
        let applied_any = !report.0.is_empty();
        self.emit_applied(report);
        if applied_any && self.core.items_awaited && !matches!(result, Err(DagError::Apply { .. })) {
            // What a stalled delta waits for may have just arrived.
            self.retry_stalled();
        }
        match result {
            Ok(AddOutcome::Applied { .. }) => Ok(Received::Applied),
            Ok(AddOutcome::Duplicate) => Ok(Received::Duplicate),
            Ok(AddOutcome::Pending { missing, evicted }) => {
                if vetting == Vetting::Unknown {
                    self.unvetted.insert(id);
                    self.stats.unvetted += 1;
                }
                self.pending_shares.insert(id, author, bytes.len());
                if origin != Origin::Restore && self.core.store.put_pending(id, bytes).is_err() {
                    // Still pending in memory; only a restart would lose it.
                    self.stats.store_failures += 1;
                }
                self.forget_pending(&evicted);
                let depth = match origin {
                    Origin::Parent { depth } => depth + 1,
                    Origin::Gossip | Origin::Sync | Origin::Restore => 0,
                };
                self.want_parents(&missing, from, depth);
                Ok(Received::Pending)
            }
            Err(DagError::Apply { id: failed, source, .. }) => {
                self.on_apply_failure(failed, &source);
                if applied_any && self.core.items_awaited {
                    self.retry_stalled();
                }
                Ok(Received::Stalled)
            }
            Err(error) => Err(DeltaRejection::Dag { reason: error.to_string() }),
        }
    }

    /// The checks a delta we do not hold yet must pass.
    fn verify_new(
        &mut self,
        delta: &SignedDelta,
        now_ms: u64,
        valid: &ValidSignatures,
    ) -> Result<Vetting, DeltaRejection> {
        delta.check_shape()?;
        // Well-formed changes and self-only leaves do not depend on the
        // causal point: refuse at once.
        membership_changes(&delta.author, &delta.events)?;
        let vetting = if self.core.members.contains(&delta.author) {
            Vetting::Member
        } else if delta.parents.iter().all(|parent| self.is_applied(parent)) {
            // The causal point is known: decide there, not by the current set
            // (a member that left since is still a member at an old point).
            match self.core.members_at(&delta.parents) {
                Some(point) if point.contains(&delta.author) => Vetting::Member,
                _ => return Err(DeltaRejection::NonMember { author: delta.author }),
            }
        } else {
            Vetting::Unknown
        };
        if !valid.contains(&(delta.author, delta.id, delta.signature.0)) {
            delta.check_signature()?;
        }
        let ahead_ms = delta.hlc.wall_ms.saturating_sub(now_ms);
        if ahead_ms > self.config.max_drift_ms {
            return Err(DeltaRejection::TooFarInFuture { ahead_ms, max_drift_ms: self.config.max_drift_ms });
        }
        // The clock absorbs the delta's stamp only once it is applied (see
        // `emit_applied`): a delta whose author is not vetted yet must not
        // move our clock.
        Ok(vetting)
    }

    /// Whether one more unvetted delta may wait, forgetting those that left
    /// the buffer first if needed.
    fn make_unvetted_room(&mut self) -> bool {
        if self.unvetted.len() >= UNVETTED_PENDING_MAX {
            let dag = &self.dag;
            self.unvetted.retain(|id| dag.get_pending(id).is_some());
        }
        self.unvetted.len() < UNVETTED_PENDING_MAX
    }

    /// A delta (ours to apply, or one of its cascade) failed to apply. It
    /// stays in the DAG's buffer as stalled: storage trouble is retried by
    /// the sweep; a delta whose actions no replica can apply is remembered so
    /// it is not fetched and retried forever (the stale sweep evicts it).
    pub(super) fn on_apply_failure(&mut self, id: weft_dag::DeltaId, error: &ApplyError) {
        self.stats.apply_failures += 1;
        if error.may_apply_later() {
            self.stats.awaited_items += 1;
        } else if !error.is_transient() {
            self.core.rejected.insert(id);
        }
    }

    /// Drop the persisted rows of deltas that left the buffer unapplied.
    pub(super) fn forget_pending(&mut self, ids: &[weft_dag::DeltaId]) {
        if !ids.is_empty() && self.core.store.remove_pending(ids).is_err() {
            self.stats.store_failures += 1;
        }
    }

    /// Retry the stalled deltas and emit what applies. While a pass
    /// applies something and a delta still waits for an item, pass again:
    /// a stalled delta may wait for one stalled before it in the same pass.
    /// (Each pass but the last applies at least one delta, so this ends.)
    pub(super) fn retry_stalled(&mut self) {
        loop {
            // Set again by any retry that still waits.
            self.core.items_awaited = false;
            let mut applier = StateApplier::new(&mut self.core, ApplyMode::Apply, self.author);
            let result = self.dag.retry_pending(&mut applier);
            let report = applier.take_report();
            let applied_any = !report.0.is_empty();
            self.emit_applied(report);
            if let Err(DagError::Apply { id, source, .. }) = result {
                self.on_apply_failure(id, &source);
            }
            if !(applied_any && self.core.items_awaited) {
                break;
            }
        }
    }
}
