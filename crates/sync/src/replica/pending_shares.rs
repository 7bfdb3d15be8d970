//! How much of the pending buffer each author holds, in deltas and bytes.
//!
//! The DAG bounds its pending buffer by count ([`weft_dag::DagLimits`]);
//! deltas are up to 1 MiB each, so that alone would let the buffer of one
//! context grow to gigabytes, and one member's flood of deltas on a parent
//! nobody has would crowd every other member's deltas out. This ledger adds
//! three bounds, checked before a delta that cannot apply yet is buffered:
//! all pending bytes ([`PENDING_BYTES_MAX`]), and one author's pending deltas
//! and bytes ([`PENDING_AUTHOR_DELTAS_MAX`], [`PENDING_AUTHOR_BYTES_MAX`]).
//! A delta over a bound is dropped unjudged, never penalized: an honest
//! delta comes back through anti-entropy, in causal order, when it can be
//! applied at once. Dropping is a local resource decision; it never changes
//! whether a delta is valid, so it cannot make replicas disagree.
//!
//! Deltas leave the buffer in the DAG (applied, evicted, stale) without
//! telling this ledger; it forgets them lazily, in one pass, when it holds
//! more ids than the DAG has pending and a bound is hit, so a refusal costs
//! O(1) once the ledger is settled.

use std::collections::BTreeMap;

use weft_dag::DeltaId;
use weft_primitives::PublicKey;

/// Encoded bytes of pending deltas one replica holds at once.
pub const PENDING_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Encoded bytes of one author's pending deltas.
pub const PENDING_AUTHOR_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Pending deltas of one author (a quarter of the DAG's default bound).
pub const PENDING_AUTHOR_DELTAS_MAX: usize = 2_500;

/// Which bound a delta was dropped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingBound {
    /// [`PENDING_BYTES_MAX`].
    Bytes,
    /// [`PENDING_AUTHOR_BYTES_MAX`].
    AuthorBytes,
    /// [`PENDING_AUTHOR_DELTAS_MAX`].
    AuthorDeltas,
}

#[derive(Clone, Copy, Debug, Default)]
struct Share {
    deltas: usize,
    bytes: usize,
}

/// The ledger. See the module doc.
#[derive(Debug, Default)]
pub(crate) struct PendingShares {
    held: BTreeMap<DeltaId, (PublicKey, usize)>,
    authors: BTreeMap<PublicKey, Share>,
    bytes: usize,
}

impl PendingShares {
    /// Record that `id` by `author`, `bytes` long, waits in the buffer.
    pub(crate) fn insert(&mut self, id: DeltaId, author: PublicKey, bytes: usize) {
        if self.held.insert(id, (author, bytes)).is_some() {
            // Already counted (held again after an eviction we had not
            // settled; one id is one content, so one author and length).
            return;
        }
        let share = self.authors.entry(author).or_default();
        share.deltas += 1;
        share.bytes += bytes;
        self.bytes += bytes;
    }

    /// Whether one more delta by `author`, `bytes` long, may wait. When a
    /// bound is hit and the ledger holds more ids than the DAG has pending
    /// (`pending_count`), it first forgets the ids `is_pending` denies.
    pub(crate) fn admit(
        &mut self,
        author: &PublicKey,
        bytes: usize,
        pending_count: usize,
        is_pending: impl Fn(&DeltaId) -> bool,
    ) -> Result<(), PendingBound> {
        match self.check(author, bytes) {
            Err(_) if self.held.len() > pending_count => {
                self.settle(is_pending);
                self.check(author, bytes)
            }
            outcome => outcome,
        }
    }

    /// Pending bytes counted (ids not yet settled included).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn check(&self, author: &PublicKey, bytes: usize) -> Result<(), PendingBound> {
        if self.bytes.saturating_add(bytes) > PENDING_BYTES_MAX {
            return Err(PendingBound::Bytes);
        }
        let share = self.authors.get(author).copied().unwrap_or_default();
        if share.deltas >= PENDING_AUTHOR_DELTAS_MAX {
            return Err(PendingBound::AuthorDeltas);
        }
        if share.bytes.saturating_add(bytes) > PENDING_AUTHOR_BYTES_MAX {
            return Err(PendingBound::AuthorBytes);
        }
        Ok(())
    }

    /// Forget every id that is no longer pending.
    fn settle(&mut self, is_pending: impl Fn(&DeltaId) -> bool) {
        let (authors, bytes) = (&mut self.authors, &mut self.bytes);
        self.held.retain(|id, (author, len)| {
            if is_pending(id) {
                return true;
            }
            if let Some(share) = authors.get_mut(author) {
                share.deltas -= 1;
                share.bytes -= *len;
                if share.deltas == 0 {
                    authors.remove(author);
                }
            }
            *bytes -= *len;
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use weft_primitives::Hash;

    use super::*;

    fn id(n: u32) -> DeltaId {
        Hash::of(&n.to_le_bytes())
    }

    const A: PublicKey = PublicKey([1; 32]);
    const B: PublicKey = PublicKey([2; 32]);

    #[test]
    fn one_author_is_held_to_its_share_and_others_still_get_in() {
        let mut shares = PendingShares::default();
        for n in 0..PENDING_AUTHOR_DELTAS_MAX as u32 {
            assert_eq!(shares.admit(&A, 10, n as usize, |_| true), Ok(()));
            shares.insert(id(n), A, 10);
        }
        let held = PENDING_AUTHOR_DELTAS_MAX;
        assert_eq!(shares.admit(&A, 10, held, |_| true), Err(PendingBound::AuthorDeltas));
        assert_eq!(shares.admit(&B, 10, held, |_| true), Ok(()));
        // Once the DAG has applied some of A's deltas, A may add more.
        assert_eq!(shares.admit(&A, 10, held - 2, |d| *d != id(0) && *d != id(1)), Ok(()));
        assert_eq!(shares.bytes(), (held - 2) * 10);
    }

    #[test]
    fn bytes_are_bounded_per_author_and_in_total() {
        let mut shares = PendingShares::default();
        let big = PENDING_AUTHOR_BYTES_MAX / 2;
        shares.insert(id(0), A, big);
        shares.insert(id(1), A, big);
        assert_eq!(shares.admit(&A, 1, 2, |_| true), Err(PendingBound::AuthorBytes));
        for (n, author) in [(2, B), (3, B), (4, PublicKey([3; 32])), (5, PublicKey([3; 32]))] {
            shares.insert(id(n), author, big);
        }
        shares.insert(id(6), PublicKey([4; 32]), big);
        shares.insert(id(7), PublicKey([4; 32]), big);
        assert_eq!(shares.bytes(), PENDING_BYTES_MAX);
        assert_eq!(shares.admit(&PublicKey([5; 32]), 1, 8, |_| true), Err(PendingBound::Bytes));
        // A settled ledger does not rescan: the DAG says all 8 still wait.
        assert_eq!(shares.admit(&PublicKey([5; 32]), 1, 8, |_| panic!("rescanned")), Err(PendingBound::Bytes));
    }

    #[test]
    fn an_id_counted_twice_is_one_delta() {
        let mut shares = PendingShares::default();
        shares.insert(id(0), A, 10);
        shares.insert(id(0), A, 10);
        assert_eq!(shares.bytes(), 10);
        assert_eq!(shares.admit(&A, PENDING_AUTHOR_BYTES_MAX - 10, 1, |_| true), Ok(()));
    }
}
