//! The one error type of the DAG.

use crate::DeltaId;

/// Why the DAG refused a delta, why an applier failed, or why a peer cannot be
/// served from history.
///
/// `E` is the applier's error type; operations that never call an applier use
/// the default, [`std::convert::Infallible`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DagError<E = std::convert::Infallible> {
    /// The delta claims the id of the virtual root, which is never a delta.
    #[error("delta {id:?} has the root id")]
    RootId {
        /// The offending id.
        id: DeltaId,
    },
    /// The delta names no parent; only the virtual root has none.
    #[error("delta {id:?} has no parents")]
    EmptyParents {
        /// The offending delta.
        id: DeltaId,
    },
    /// The delta names more parents than [`DagLimits::parents_max`](crate::DagLimits::parents_max).
    #[error("delta {id:?} names {count} parents (max {max})")]
    TooManyParents {
        /// The offending delta.
        id: DeltaId,
        /// How many parents it names.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The delta names itself as a parent.
    #[error("delta {id:?} names itself as a parent")]
    SelfParent {
        /// The offending delta.
        id: DeltaId,
    },
    /// The delta names the same parent twice.
    #[error("delta {id:?} names parent {parent:?} more than once")]
    DuplicateParent {
        /// The offending delta.
        id: DeltaId,
        /// The repeated parent.
        parent: DeltaId,
    },
    /// The applier failed on `id`. That delta stays pending (retry with
    /// [`DagStore::retry_pending`](crate::DagStore::retry_pending)); the deltas
    /// in `applied_before` were applied by the same call and stay applied.
    #[error("applying delta {id:?} failed after {} deltas were applied", applied_before.len())]
    Apply {
        /// The delta the applier failed on.
        id: DeltaId,
        /// The deltas this call applied before the failure, in apply order.
        applied_before: Vec<DeltaId>,
        /// The applier's error.
        #[source]
        source: E,
    },
    /// A peer needs a delta whose payload was pruned: it must bootstrap from a
    /// snapshot instead of from history.
    #[error("peer needs delta {id:?}, whose history was pruned")]
    PrunedHistory {
        /// The first pruned delta found that the peer lacks.
        id: DeltaId,
    },
}
