//! Where deltas meet the state: the DAG's [`DeltaApplier`] for a replica.
//!
//! The DAG calls [`StateApplier::apply`] once per delta, in causal order.
//! In [`ApplyMode::Apply`] the delta's actions are merged natively
//! ([`weft_state::apply_actions`], no WASM) and the writes are committed with
//! the delta row in one [`ReplicaStore::commit_applied`]; only then does the
//! DAG count the delta as applied. In [`ApplyMode::Record`] the state already
//! holds the delta (a restart replaying persisted rows, or a local write
//! committed just before) and only the apply order is recorded.
//!
//! Both modes enforce the membership rules ([`crate::membership`]) against
//! the member set at the delta's causal point (the join of its parents'
//! points) *before* anything is committed, then record the delta's own
//! point and apply its changes to the current set: a restart replaying the
//! persisted rows in apply order rebuilds exactly the points and the set the
//! replica had. A delta refused before (its id in `rejected`) is refused
//! again without work.
//!
//! A delta whose actions name an entity, a vector element or a text item
//! that is not here yet ([`StateError::may_apply_later`]) is neither applied
//! nor refused: it stalls in the DAG's buffer and is retried after the next
//! delta applies (and by the pending sweep), so it applies on every replica
//! once the delta that creates what it names is in, whatever the order.
//!
//! [`ApplyCore`] is the part of the replica the applier needs: it is a field
//! of its own so the DAG and the core can be borrowed mutably at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_dag::id_map::IdMap;
use weft_dag::{CausalDelta, DeltaApplier, DeltaId};
use weft_primitives::{Hash, PublicKey};
use weft_state::StateError;

use super::RecentSet;
use crate::delta::{DeltaPayload, encode_causal};
use crate::membership::{MemberSet, MembershipChange, MembershipError};
use crate::replica::interface::AppliedDelta;
use crate::store::{AppliedRow, ReplicaStore, StoreError};

/// The store and what the replica knows about the apply order.
#[derive(Debug)]
pub(crate) struct ApplyCore<S> {
    /// The context: owners' action signatures must be made for it.
    pub(crate) context: Hash,
    pub(crate) store: S,
    /// How many deltas are applied: the next one's apply position. The
    /// DAG keeps the order itself (`DagStore::applied_position`); this
    /// count is what the applier can read while the DAG is mid-cascade.
    pub(crate) applied_len: u64,
    /// Bumped on every state change: a prepared write is stale once it moves.
    pub(crate) version: u64,
    /// The root hash of the persisted state.
    pub(crate) root_hash: Hash,
    /// The member set after the last applied delta.
    pub(crate) members: MemberSet,
    /// The member set at every applied delta (its causal past and its own
    /// changes), and the initial set at the genesis. Few distinct sets
    /// exist: deltas without membership changes share their parents'.
    pub(crate) member_points: IdMap<Arc<MemberSet>>,
    /// How many applied deltas are forgotten (`forgotten.rs`): their
    /// points are in the store, not in `member_points`.
    pub(crate) forgotten_len: u64,
    /// A delta stalled waiting for something a concurrent delta may create
    /// (set by the applier on every such failure): retry the stalled ones
    /// after the next delta applies.
    pub(crate) items_awaited: bool,
    /// Ids of verified deltas that can never apply (invalid actions,
    /// membership refused): not fetched, not retried.
    pub(crate) rejected: RecentSet<DeltaId>,
}

impl<S: ReplicaStore> ApplyCore<S> {
    /// Commit a delta's row and state writes, and account for it.
    pub(crate) fn commit(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError> {
        let root_hash = row.root_hash;
        self.store.commit_applied(row)?;
        self.version += 1;
        self.root_hash = root_hash;
        Ok(())
    }

    /// The member set at the causal point of a delta with `parents` (the
    /// join of the parents' points), or `None` if a parent is not applied.
    pub(crate) fn members_at(&self, parents: &[DeltaId]) -> Option<Arc<MemberSet>> {
        let (first, rest) = parents.split_first()?;
        let first = self.point_of(first)?;
        let mut joined: Option<MemberSet> = None;
        for parent in rest {
            let point = self.point_of(parent)?;
            if Arc::ptr_eq(&point, &first) {
                continue;
            }
            joined.get_or_insert_with(|| MemberSet::clone(&first)).join(&point);
        }
        Some(match joined {
            Some(joined) if joined != *first => Arc::new(joined),
            _ => first,
        })
    }

    /// Count the next applied delta (the DAG records its position once the
    /// applier returns).
    fn record(&mut self) {
        self.applied_len += 1;
    }
}

/// Why a delta could not be applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// Its actions are invalid against the state (or the state is unreadable).
    #[error(transparent)]
    State(#[from] StateError),
    /// The store refused the commit.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The author is not a member at the delta's causal point.
    #[error("author {author:?} is not a member at the delta's causal point")]
    NotMember {
        /// The author.
        author: PublicKey,
    },
    /// The delta's membership changes break a rule.
    #[error(transparent)]
    Membership(MembershipError),
    /// The delta was refused before (see `ApplyCore::rejected`).
    #[error("delta refused earlier")]
    RefusedBefore,
}

impl From<MembershipError> for ApplyError {
    fn from(error: MembershipError) -> Self {
        match error {
            MembershipError::NotMember { author } => ApplyError::NotMember { author },
            other => ApplyError::Membership(other),
        }
    }
}

impl ApplyError {
    /// Whether retrying later may succeed (storage trouble), as opposed to a
    /// delta that no replica will ever apply.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Store(_) | ApplyError::State(StateError::Kv(_)))
    }

    /// Whether the delta names something a concurrent delta may still
    /// create (see the module doc): it waits, it is not refused.
    pub(crate) fn may_apply_later(&self) -> bool {
        matches!(self, ApplyError::State(error) if error.may_apply_later())
    }
}

/// The net change of the member set over one call into the DAG.
#[derive(Debug, Default)]
pub(crate) struct MembersChange {
    pub(crate) added: Vec<PublicKey>,
    pub(crate) left: Vec<PublicKey>,
}

/// See the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApplyMode {
    /// Merge and commit.
    Apply,
    /// The state already has it: record the order only.
    Record,
}

/// The DAG's applier for one call into the DAG.
pub(crate) struct StateApplier<'a, S> {
    core: &'a mut ApplyCore<S>,
    mode: ApplyMode,
    local_author: PublicKey,
    /// What this call applied, for [`Output::Applied`](crate::Output::Applied).
    applied: Vec<AppliedDelta>,
    /// Whether each identity whose membership flipped during this call was
    /// a member before it.
    members_before: BTreeMap<PublicKey, bool>,
}

impl<'a, S: ReplicaStore> StateApplier<'a, S> {
    pub(crate) fn new(core: &'a mut ApplyCore<S>, mode: ApplyMode, local_author: PublicKey) -> Self {
        StateApplier { core, mode, local_author, applied: Vec::new(), members_before: BTreeMap::new() }
    }

    /// What this call applied so far, and the net change of the member set
    /// (for [`Output::Applied`](crate::Output::Applied) and
    /// [`Output::MembersChanged`](crate::Output::MembersChanged)).
    pub(crate) fn take_report(&mut self) -> (Vec<AppliedDelta>, MembersChange) {
        let mut change = MembersChange::default();
        for (member, was) in std::mem::take(&mut self.members_before) {
            match (was, self.core.members.contains(&member)) {
                (false, true) => change.added.push(member),
                (true, false) => change.left.push(member),
                _ => {}
            }
        }
        (std::mem::take(&mut self.applied), change)
    }
}

impl<S: ReplicaStore> DeltaApplier<DeltaPayload> for StateApplier<'_, S> {
    type Error = ApplyError;

    fn apply(&mut self, delta: &CausalDelta<DeltaPayload>) -> Result<(), ApplyError> {
        let result = self.apply_one(delta);
        if result.as_ref().is_err_and(ApplyError::may_apply_later) {
            self.core.items_awaited = true;
        }
        result
    }

    fn is_forgotten(&mut self, id: &DeltaId) -> bool {
        self.core.is_forgotten(id)
    }
}

impl<S: ReplicaStore> StateApplier<'_, S> {
    fn apply_one(&mut self, delta: &CausalDelta<DeltaPayload>) -> Result<(), ApplyError> {
        if self.core.rejected.contains(&delta.id) {
            // Refusals that depend on the causal past alone stay refused: a
            // retry would decide the same.
            return Err(ApplyError::RefusedBefore);
        }
        let payload = &delta.payload;
        // Every parent was applied first, so each has its point, in memory
        // or, forgotten, in the store. A point the store cannot give back
        // is a transient failure: the delta waits rather than being judged
        // at another point than every other replica judges it.
        let Some(point) = self.core.members_at(&delta.parents) else {
            return Err(ApplyError::Store(StoreError::Backend(format!(
                "the member point of a parent of {:?} is unreadable",
                delta.id
            ))));
        };
        let changes = point.check(&payload.author, delta.id, delta.hlc, &payload.events)?;
        if self.mode == ApplyMode::Apply {
            let merged = weft_state::apply_actions(
                self.core.store.state(),
                &self.core.context,
                &payload.author,
                &payload.actions,
            )?;
            let bytes = encode_causal(delta);
            self.core.commit(AppliedRow {
                position: self.core.applied_len,
                id: delta.id,
                bytes: &bytes,
                writes: merged.writes,
                root_hash: merged.root_hash,
            })?;
        }
        self.core.record();
        let after = match changes.is_empty() {
            true => point,
            false => {
                let mut after = MemberSet::clone(&point);
                after.apply(delta.id, delta.hlc, &changes);
                Arc::new(after)
            }
        };
        // The set at the heads is the join of every point (not the changes
        // replayed in apply order: a rotation records the departures of its
        // own causal past, which the apply order would not give).
        if !changes.is_empty() {
            let touched: Vec<(PublicKey, bool)> = changes
                .iter()
                .filter_map(MembershipChange::member)
                .map(|member| (member, self.core.members.contains(&member)))
                .collect();
            self.core.members.join(&after);
            for (member, was) in touched {
                if was != self.core.members.contains(&member) {
                    self.members_before.entry(member).or_insert(was);
                }
            }
        }
        self.core.member_points.insert(delta.id, after);
        // A restart discards this report: restored deltas are not news.
        self.applied.push(AppliedDelta {
            id: delta.id,
            author: payload.author,
            local: payload.author == self.local_author,
            events: payload.events.clone(),
            hlc: delta.hlc,
        });
        Ok(())
    }
}
