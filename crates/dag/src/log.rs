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

/// A delta held by the store, a pruned one's id and parent links, a
/// forgotten frontier delta's id, or a vacant entry left by an evicted or
/// forgotten delta (reused by the next arrival).
#[derive(Debug)]
pub(crate) struct LogEntry<P> {
    body: LogBody<P>,
    pub(crate) state: LogState,
}

///
/// A kept delta is boxed so that the log's slots are as small as a pruned
/// entry: most of a long history is pruned, and an inline delta would make
/// every slot ~3× larger (`log_entry_is_small` pins the size).
#[derive(Debug)]
enum LogBody<P> {
    Kept(Box<CausalDelta<P>>),
    /// Payload and timestamp dropped; the parent links stay so that history
    /// walks can tell which pruned deltas a peer already has.
    Pruned {
        id: DeltaId,
        parents: Box<[DeltaId]>,
    },
    /// A delta of the forgotten frontier (see `forget.rs`): only its id and
    /// apply position stay, so the history walk can tell whether a peer
    /// has it. Its parents are forgotten.
    Frontier {
        id: DeltaId,
    },
    Vacant,
}

impl<P> LogEntry<P> {
    /// A newly received delta.
    pub(crate) fn new(delta: CausalDelta<P>, state: LogState) -> Self {
        LogEntry { body: LogBody::Kept(Box::new(delta)), state }
    }

    /// A forgotten frontier delta's entry.
    pub(crate) fn frontier(id: DeltaId, state: LogState) -> Self {
        LogEntry { body: LogBody::Frontier { id }, state }
    }

    /// The delta, unless pruned, forgotten or vacant.
    pub(crate) fn delta(&self) -> Option<&CausalDelta<P>> {
        match &self.body {
            LogBody::Kept(delta) => Some(delta),
            LogBody::Pruned { .. } | LogBody::Frontier { .. } | LogBody::Vacant => None,
        }
    }

    pub(crate) fn id(&self) -> Option<DeltaId> {
        match &self.body {
            LogBody::Kept(delta) => Some(delta.id),
            LogBody::Pruned { id, .. } | LogBody::Frontier { id } => Some(*id),
            LogBody::Vacant => None,
        }
    }

    pub(crate) fn parents(&self) -> &[DeltaId] {
        match &self.body {
            LogBody::Kept(delta) => &delta.parents,
            LogBody::Pruned { parents, .. } => parents,
            LogBody::Frontier { .. } | LogBody::Vacant => &[],
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

    /// Whether this is a forgotten frontier delta.
    pub(crate) fn is_forgotten(&self) -> bool {
        matches!(self.body, LogBody::Frontier { .. })
    }

    /// Keep only the id (the delta joins the forgotten frontier). Returns
    /// whether it was pruned before.
    pub(crate) fn forget_to_frontier(&mut self) -> bool {
        let was_pruned = self.is_pruned();
        if let Some(id) = self.id() {
            self.body = LogBody::Frontier { id };
        }
        was_pruned
    }

    /// Drop the payload; false if there was none to drop.
    pub(crate) fn prune(&mut self) -> bool {
        match std::mem::replace(&mut self.body, LogBody::Vacant) {
            LogBody::Kept(delta) => {
                let CausalDelta { id, parents, .. } = *delta;
                self.body = LogBody::Pruned { id, parents: parents.into_boxed_slice() };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A pruned delta costs its slot; keep the slot small (a 32-byte id,
    /// a boxed parent list and the state), whatever the payload type.
    #[test]
    fn log_entry_is_small() {
        assert!(std::mem::size_of::<LogEntry<[u8; 512]>>() <= 80, "{}", std::mem::size_of::<LogEntry<[u8; 512]>>());
    }
}
