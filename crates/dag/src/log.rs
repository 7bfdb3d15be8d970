//! Where the store keeps deltas: one log (an arena) of every delta it holds,
//! pending or applied, and the id table's view of it.
//!
//! A delta is written to the log once, on arrival, and never moves: applying
//! a pending delta only flips its [`LogState`] and appends its index to the
//! apply order, so the cascade touches no hash table for the applied delta.

use crate::{CausalDelta, DeltaId};

/// What the id table knows about an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// Received (pending or applied, possibly pruned): its log index.
    Held(usize),
    /// Not received, but pending deltas wait on it: its pending slot.
    Awaited(usize),
}

/// Whether a held delta is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogState {
    /// Waiting; its bookkeeping is in this pending slot.
    Pending { slot: usize },
    /// Applied at this position of the apply order.
    Applied { order: usize },
}

/// A delta held by the store, a pruned one's id and parent links, or a vacant
/// entry left by an evicted delta (reused by the next arrival).
#[derive(Debug)]
pub(crate) struct LogEntry<P> {
    body: LogBody<P>,
    pub(crate) state: LogState,
}

#[derive(Debug)]
enum LogBody<P> {
    Kept(CausalDelta<P>),
    /// Payload and timestamp dropped; the parent links stay so that history
    /// walks can tell which pruned deltas a peer already has.
    Pruned {
        id: DeltaId,
        parents: Vec<DeltaId>,
    },
    Vacant,
}

impl<P> LogEntry<P> {
    /// A newly received delta.
    pub(crate) fn new(delta: CausalDelta<P>, state: LogState) -> Self {
        LogEntry { body: LogBody::Kept(delta), state }
    }

    /// The delta, unless pruned or vacant.
    pub(crate) fn delta(&self) -> Option<&CausalDelta<P>> {
        match &self.body {
            LogBody::Kept(delta) => Some(delta),
            LogBody::Pruned { .. } | LogBody::Vacant => None,
        }
    }

    pub(crate) fn id(&self) -> Option<DeltaId> {
        match &self.body {
            LogBody::Kept(delta) => Some(delta.id),
            LogBody::Pruned { id, .. } => Some(*id),
            LogBody::Vacant => None,
        }
    }

    pub(crate) fn parents(&self) -> &[DeltaId] {
        match &self.body {
            LogBody::Kept(delta) => &delta.parents,
            LogBody::Pruned { parents, .. } => parents,
            LogBody::Vacant => &[],
        }
    }

    /// The apply position, if applied.
    pub(crate) fn applied_at(&self) -> Option<usize> {
        match self.state {
            LogState::Applied { order } => Some(order),
            LogState::Pending { .. } => None,
        }
    }

    pub(crate) fn is_applied(&self) -> bool {
        matches!(self.state, LogState::Applied { .. })
    }

    pub(crate) fn is_pruned(&self) -> bool {
        matches!(self.body, LogBody::Pruned { .. })
    }

    /// Drop the payload; false if there was none to drop.
    pub(crate) fn prune(&mut self) -> bool {
        match std::mem::replace(&mut self.body, LogBody::Vacant) {
            LogBody::Kept(delta) => {
                self.body = LogBody::Pruned { id: delta.id, parents: delta.parents };
                true
            }
            other => {
                self.body = other;
                false
            }
        }
    }

    /// Drop the delta of an evicted entry.
    pub(crate) fn vacate(&mut self) {
        self.body = LogBody::Vacant;
    }
}
