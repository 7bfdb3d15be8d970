//! Weft's causal delta DAG: pure logic, generic over the payload, no I/O.
//!
//! Every write in a context is a [`CausalDelta`] naming the heads it was built
//! on as parents. A [`DagStore`] receives deltas in any order, from any number
//! of peers, with duplicates, and hands each one to a [`DeltaApplier`] in a
//! causal order. Time is always an input (`now_ms`), never read.
//!
//! # Guarantees
//!
//! - **Validation before state.** A malformed delta (root id, no parents, more
//!   than [`DagLimits::parents_max`] parents, itself as parent, a repeated
//!   parent) is rejected with its own [`DagError`] variant and changes nothing.
//!   Ids and signatures are the caller's to verify.
//! - **Causal, exactly-once delivery.** The applier sees a delta only after all
//!   its parents were applied (the root and pruned deltas count as applied),
//!   and never sees an applied delta twice. Re-adding an applied or pending
//!   delta returns [`AddOutcome::Duplicate`] and changes nothing.
//! - **Cascade.** Applying a delta applies every pending delta it made ready,
//!   transitively, with an explicit worklist (no recursion). Cost per delta is
//!   O(parents + children), never a scan of the pending buffer.
//! - **Bounded buffer.** At most [`DagLimits::pending_max`] deltas wait; the
//!   oldest arrival (ties by id) is evicted first and reported. Deltas waiting
//!   longer than [`DagLimits::pending_stale_ms`] are evicted by
//!   [`DagStore::cleanup_stale`]. An evicted delta is forgotten: `has` is false
//!   and it may be added again.
//! - **Applier failure.** The failing delta is not applied and stays pending;
//!   deltas applied earlier in the same call stay applied;
//!   [`DagStore::retry_pending`] re-attempts the ready ones.
//! - **Heads** (applied deltas no applied delta names as parent) are kept
//!   incrementally and returned sorted, so two replicas that applied the same
//!   set report the same heads. Before any delta, the only head is the root.
//! - **Pruning.** [`DagStore::prune_below`] drops the payloads of the applied
//!   ancestors of a checkpoint; their ids and parent links stay. Pruned ids
//!   stay applied forever: they satisfy parents, are duplicates when re-sent,
//!   are never reported missing and never become heads again. A peer that
//!   needs pruned history gets [`DagError::PrunedHistory`] from
//!   [`DagStore::deltas_missing_for`], the cue to offer it a snapshot.
//! - **Forgetting.** [`DagStore::forget_below`] drops a prefix of the apply
//!   order entirely but its maximal deltas' ids; the caller's store answers
//!   for the rest ([`DeltaApplier::is_forgotten`]), and every outcome stays
//!   what it would have been without forgetting (see `forget.rs`).
//! - **Sync.** [`DagStore::deltas_missing_for`] lists, in apply order and in
//!   pages, the applied deltas that are not ancestors of a peer's heads; fed to
//!   the peer in page order they never leave a delta pending there.
//!
//! # Costs
//!
//! Adding a delta whose parents are applied costs one hash lookup per parent
//! plus one for the delta (ids hash by their first eight bytes, see
//! [`id_map`]). A delta that waits costs the same plus a slot per missing
//! parent; applying it later in a cascade costs no lookup at all, because
//! every delta is written once to an arena on arrival and never moves. Memory
//! is the applied history (payloads until pruned) plus the pending buffer.
//!
//! # Driver loop
//!
//! ```
//! use std::collections::HashMap;
//! use weft_dag::{AddOutcome, CausalDelta, DagLimits, DagStore, DeltaApplier};
//! use weft_primitives::{Hash, Hlc};
//!
//! /// Applies payloads by appending them to a log (a real node writes state).
//! struct Log(Vec<&'static str>);
//! impl DeltaApplier<&'static str> for Log {
//!     type Error = std::convert::Infallible;
//!     fn apply(&mut self, delta: &CausalDelta<&'static str>) -> Result<(), Self::Error> {
//!         self.0.push(delta.payload);
//!         Ok(())
//!     }
//! }
//!
//! let root = Hash::of(b"genesis");
//! let d1 = CausalDelta { id: Hash::of(b"d1"), parents: vec![root], hlc: Hlc::new(1, 0), payload: "one" };
//! let d2 = CausalDelta { id: Hash::of(b"d2"), parents: vec![d1.id], hlc: Hlc::new(2, 0), payload: "two" };
//! let d3 = CausalDelta { id: Hash::of(b"d3"), parents: vec![d2.id], hlc: Hlc::new(3, 0), payload: "three" };
//! // What the network would answer to "send me delta X".
//! let network: HashMap<Hash, CausalDelta<&str>> =
//!     [d1.clone(), d2.clone(), d3.clone()].into_iter().map(|d| (d.id, d)).collect();
//!
//! let mut dag = DagStore::new(root, DagLimits::default());
//! let mut log = Log(Vec::new());
//! let now_ms = 1_000;
//!
//! // Gossip delivers d3 first: it waits, naming the parent to request.
//! let mut inbox = vec![d3.clone()];
//! while let Some(delta) = inbox.pop() {
//!     match dag.add(delta, now_ms, &mut log)? {
//!         AddOutcome::Pending { missing, .. } => {
//!             inbox.extend(missing.iter().filter_map(|id| network.get(id).cloned()));
//!         }
//!         AddOutcome::Applied { applied } => println!("applied {} deltas", applied.len()),
//!         AddOutcome::Duplicate => {}
//!     }
//! }
//! // d1 arrived last and its cascade applied d2 and d3, in causal order.
//! assert_eq!(log.0, ["one", "two", "three"]);
//! assert_eq!(dag.heads(), vec![d3.id]);
//! assert!(dag.missing_parents().is_empty());
//! # Ok::<(), weft_dag::DagError>(())
//! ```

#[cfg(test)]
mod consistency_tests;
mod error;
mod forget;
mod history;
pub mod id_map;
mod log;
mod pending;
mod store;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, Hlc};

pub use error::DagError;
pub use forget::ForgottenPrefix;
pub use history::{DeltaPage, HistoryDelta, HistoryPage, PAGE_DELTAS_MAX};
pub use store::DagStore;

/// A delta's id: BLAKE3 of its canonical encoding (computed by the caller).
pub type DeltaId = Hash;

/// One write: a payload, the deltas it was built on, and when.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CausalDelta<P> {
    /// The delta's id.
    pub id: DeltaId,
    /// The heads the author saw when writing (at least one; the root for the
    /// first delta of a context).
    pub parents: Vec<DeltaId>,
    /// The author's hybrid logical timestamp.
    pub hlc: Hlc,
    /// What the delta does; opaque to the DAG.
    pub payload: P,
}

/// Applies deltas to whatever state the DAG orders (the CRDT tree in a node,
/// a log in tests).
pub trait DeltaApplier<P> {
    /// Why a delta could not be applied.
    type Error;

    /// Apply `delta`. Called once per delta, after all its parents. On error
    /// the DAG keeps the delta pending and does not count it as applied.
    fn apply(&mut self, delta: &CausalDelta<P>) -> Result<(), Self::Error>;

    /// Whether `id` was applied and then forgotten by the DAG
    /// ([`DagStore::forget_below`]): the DAG no longer holds it, the
    /// caller's store does. Asked only by a DAG that forgot something, and
    /// only about ids it holds nothing about. The default: nothing is
    /// forgotten.
    fn is_forgotten(&mut self, id: &DeltaId) -> bool {
        let _ = id;
        false
    }
}

/// Default for [`DagLimits::parents_max`].
pub const PARENTS_MAX_DEFAULT: usize = 64;
/// Default for [`DagLimits::pending_max`] (docs/design.md: 10 000 per context).
pub const PENDING_MAX_DEFAULT: usize = 10_000;
/// Default for [`DagLimits::pending_stale_ms`] (docs/design.md: 300 s).
pub const PENDING_STALE_MS_DEFAULT: u64 = 300_000;

/// The bounds a [`DagStore`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DagLimits {
    /// Most parents a delta may name.
    pub parents_max: usize,
    /// Most deltas the pending buffer holds; the oldest is evicted beyond it.
    pub pending_max: usize,
    /// A pending delta older than this is evicted by `cleanup_stale`.
    pub pending_stale_ms: u64,
}

impl Default for DagLimits {
    fn default() -> Self {
        DagLimits {
            parents_max: PARENTS_MAX_DEFAULT,
            pending_max: PENDING_MAX_DEFAULT,
            pending_stale_ms: PENDING_STALE_MS_DEFAULT,
        }
    }
}

/// What [`DagStore::add`] did with a well-formed delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The delta was applied, and so were the pending deltas it made ready.
    Applied {
        /// The delta first, then the cascade, in apply order.
        applied: Vec<DeltaId>,
    },
    /// The delta waits for parents that are not applied yet.
    Pending {
        /// Its parents that are neither applied nor pending: request these.
        /// (Parents that are pending wait on their own missing ancestors,
        /// which [`DagStore::missing_parents`] lists.) Sorted.
        missing: Vec<DeltaId>,
        /// Deltas evicted to keep the buffer within
        /// [`DagLimits::pending_max`], oldest first (may include this delta).
        evicted: Vec<DeltaId>,
    },
    /// The delta is already applied (or pruned) or pending; nothing changed.
    Duplicate,
}

/// A snapshot of the pending buffer, for metrics and sync scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingStats {
    /// Deltas waiting.
    pub count: usize,
    /// How long the oldest has waited, if any waits.
    pub oldest_age_ms: Option<u64>,
    /// Distinct parents named by pending deltas that are neither applied nor
    /// pending (the length of [`DagStore::missing_parents`]).
    pub missing_count: usize,
    /// Deltas evicted since the store was created (bound or staleness).
    pub evicted_total: u64,
}
