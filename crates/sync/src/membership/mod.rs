//! Membership carried by deltas: who may write to a context, who may
//! remove whom, and which group-key epoch is current, decided from the
//! context's own history.
//!
//! A membership change is an [`Event`] of kind [`MEMBERSHIP_EVENT_KIND`]
//! whose data is a borsh [`MembershipChange`]; a delta's membership changes
//! are its events of that kind, in order. So a change is signed, ordered and
//! replicated exactly like any other write (the node builds it as a
//! [`PreparedWrite`](crate::PreparedWrite) with no actions and one event).
//! Event kinds starting with [`RESERVED_EVENT_KIND_PREFIX`] (`"weft."`) are
//! reserved for the system: the node refuses application calls that emit
//! them ([`is_reserved_event_kind`]). Only [`MEMBERSHIP_EVENT_KIND`] means
//! anything to a replica; other reserved kinds travel as opaque events.
//!
//! # Rules
//!
//! Checked when a delta is applied (and, where the answer cannot change,
//! already when it is received), with the same result on every replica:
//!
//! - The author must be a member **at the delta's causal point**: in the
//!   member set made of the delta's causal past alone (its ancestors'
//!   changes), never of what else a replica happened to apply first. A
//!   replica keeps, for every applied delta, the member set after it
//!   ([`MemberSet::join`] of its parents' sets, then its own changes); the
//!   set at a new delta's causal point is the join of its parents' sets.
//!   The set is a state-based CRDT (last writer wins per identity, sets of
//!   used and revoked invitations, departures and key epochs), so the join
//!   of two points is the set made of the union of their histories, the
//!   same on every replica. A delta concurrent with its author's `Leave` or
//!   `Remove` is therefore *valid* everywhere: its author was a member where
//!   it was written. What bounds such deltas is the node's, not the
//!   replica's: see "Removal" below.
//! - [`MembershipChange::Add`] by a member admits `member`. Any member may
//!   admit, with an invitation; the invitation id is kept for audit only
//!   (verifying invitations is the node's job, before it writes the Add).
//! - [`MembershipChange::Leave`] is valid only when `member` is the author:
//!   a member leaves by itself ([`MembershipError::LeaveOfOther`]).
//! - [`MembershipChange::Remove`] removes another member. Only an **admin**
//!   may: an initial member (the context's creator) that is a member at the
//!   causal point ([`MembershipError::NotAdmin`]). An initial member cannot
//!   be removed by anyone but itself, with `Leave`
//!   ([`MembershipError::RemoveOfInitialMember`]), so no admin can take a
//!   context from its creator.
//! - [`MembershipChange::Rotate`] starts a new **key epoch**: a fresh group
//!   key, wrapped for each member. Any member may rotate. Its `epoch` must
//!   be the current epoch's number plus one at that point of the delta
//!   (after the delta's earlier changes), the wraps must name exactly the
//!   members at that point, in key order, the author among them, and a
//!   delta rotates at most once ([`MembershipError::Rotation`]). The replica
//!   checks who a key is wrapped for, not the ciphertexts: a member that
//!   cannot open its wrap rotates again (a member could leak the key
//!   anyway).
//! - [`MembershipChange::Revoke`] by a member records an invitation id as
//!   revoked (a grow-only set: order-independent). Replicas also record,
//!   for every invitation an Add used, the identity of the Add with the
//!   smallest stamp ([`MemberSet::invitation_use`]); a node admitting a
//!   joiner refuses an invitation that is revoked or already admitted
//!   someone else. That check is the admitting node's, on its history: two
//!   nodes admitting with one invitation before they synced can both succeed
//!   (the second Add is valid; a replica does not re-judge admissions).
//! - A membership event whose data is not a canonical `MembershipChange`
//!   refuses the delta as a whole ([`MembershipError::Malformed`]).
//! - The initial members (`ReplicaParams::members`, the context's creator)
//!   are members from the start; they must be the same on every replica.
//!
//! # Concurrent changes
//!
//! Changes to one member that are concurrent (an Add and the member's own
//! Leave, a Remove and an Add) are resolved last-writer-wins on `(hlc, delta
//! id, event index)`, not by arrival: the member set is then a function of
//! the *set* of accepted changes, the same on every replica whatever the
//! order. A causally later change always wins, since an honest author stamps
//! a delta after every delta it has seen. A member that left or was removed
//! can be admitted again by a later Add.
//!
//! # Key epochs
//!
//! Epoch 0 is the context's first key ([`KeyEpoch::GENESIS`]); each Rotate
//! names epoch `(number, rotating delta)`. The current epoch at a point is
//! the greatest one in its past (by number, then delta id), so two
//! concurrent rotations resolve alike everywhere. Every Leave and Remove is
//! recorded as a *departure*; a point **needs a rotation**
//! ([`MemberSet::rotation_needed`]) while some departed identity (not a
//! member again) is not covered by the current epoch, that is, the rotation
//! that made it did not have the departure in its past. So two concurrent
//! removals, each rotating for a set that still holds the other removed
//! member, leave a point that needs one more rotation; the node makes it.
//!
//! # Removal
//!
//! A removed member keeps every key it held, so it reads gossip until a
//! rotation; it never receives the new key. Its deltas on a causal point
//! before its removal stay valid (rule above); what bounds them is the
//! transport: once a node knows of the removal it opens no sync session
//! with it, and gossip sealed by it under an old epoch by an author that is
//! no longer a member is dropped. Such a delta can still reach the context
//! through a member that had not yet learnt of the removal; it is then
//! accepted everywhere alike.
//!
//! Guarantees: [`MembershipChange::decode`] accepts exactly the bytes
//! [`MembershipChange::encode`] produces; [`MemberSet::check`] never changes
//! the set, so a refused delta leaves it untouched.

mod set;
#[cfg(test)]
mod tests;

use std::borrow::Borrow;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::encoding;
use weft_primitives::{Hash, PublicKey};

pub use set::{InvitationUse, KeyEpoch, MemberSet};

use crate::delta::Event;

/// The largest wrapped key a [`MembershipChange::Rotate`] may carry for one
/// member (a wrap is 84 bytes today).
pub const ROTATION_WRAP_BYTES_MAX: usize = 128;

/// The event kind of a membership change.
pub const MEMBERSHIP_EVENT_KIND: &str = "weft.membership";

/// Event kinds with this prefix are reserved for the system.
pub const RESERVED_EVENT_KIND_PREFIX: &str = "weft.";

/// Whether `kind` is reserved for the system (applications may not emit it).
pub fn is_reserved_event_kind(kind: &str) -> bool {
    kind.starts_with(RESERVED_EVENT_KIND_PREFIX)
}

/// One change to a context's member set. The wire form of a membership
/// event's data (borsh; variant order is the wire tag).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum MembershipChange {
    /// Admit `member`, on the strength of invitation `invitation`.
    Add {
        /// The identity admitted.
        member: PublicKey,
        /// The invitation it presented (its id, for audit).
        invitation: Hash,
    },
    /// `member` leaves the context; valid only when `member` is the author.
    Leave {
        /// The identity leaving (the delta's author).
        member: PublicKey,
    },
    /// The invitation `invitation` (its id) admits nobody from now on. Any
    /// member may revoke; replicas only record it (a grow-only set), and
    /// nodes refuse joins with it.
    Revoke {
        /// The invitation's id.
        invitation: Hash,
    },
    /// An admin removes `member` (never an initial member).
    Remove {
        /// The identity removed.
        member: PublicKey,
    },
    /// A fresh group key for key epoch `epoch`, wrapped for every member.
    Rotate {
        /// The new epoch's number: the current one's plus one.
        epoch: u64,
        /// `(member, wrapped key)` for every member, in key order. The wrap
        /// is opaque here (the node's key-wrap encoding).
        wrapped: Vec<(PublicKey, Vec<u8>)>,
    },
}

impl MembershipChange {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode one change; refuses anything but a canonical encoding
    /// (trailing bytes, unknown tag, truncation).
    pub fn decode(bytes: &[u8]) -> Result<MembershipChange, encoding::DecodeError> {
        encoding::decode(bytes)
    }

    /// The identity the change is about (`None` for a revocation).
    pub fn member(&self) -> Option<PublicKey> {
        match self {
            MembershipChange::Add { member, .. }
            | MembershipChange::Leave { member }
            | MembershipChange::Remove { member } => Some(*member),
            MembershipChange::Revoke { .. } | MembershipChange::Rotate { .. } => None,
        }
    }
}

impl Event {
    /// The event that carries `change` (no handler: replicas act on it
    /// natively).
    pub fn membership(change: impl Borrow<MembershipChange>) -> Event {
        Event { kind: MEMBERSHIP_EVENT_KIND.to_owned(), data: change.borrow().encode(), handler: None }
    }

    /// Whether this is a membership change.
    pub fn is_membership(&self) -> bool {
        self.kind == MEMBERSHIP_EVENT_KIND
    }
}

/// Why a delta's membership changes are refused. The delta is refused as a
/// whole; nothing changes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MembershipError {
    /// A membership event's data is not a canonical [`MembershipChange`].
    #[error("membership event {index} is malformed: {reason}")]
    Malformed {
        /// Its index among the delta's events.
        index: usize,
        /// What the decoder objected to.
        reason: String,
    },
    /// A `Leave` names someone other than the author (removing another
    /// member is a `Remove`).
    #[error("{author:?} cannot make {member:?} leave: a member only leaves by itself")]
    LeaveOfOther {
        /// The delta's author.
        author: PublicKey,
        /// The member it tried to remove.
        member: PublicKey,
    },
    /// The author is not a member at the delta's causal point.
    #[error("author {author:?} is not a member at the delta's causal point")]
    NotMember {
        /// The author.
        author: PublicKey,
    },
    /// A `Remove` by an author that is not an admin at the causal point.
    #[error("{author:?} is not an admin: only the context's creator removes members")]
    NotAdmin {
        /// The delta's author.
        author: PublicKey,
    },
    /// A `Remove` of an initial member (the creator only leaves by itself).
    #[error("{member:?} is an initial member: it cannot be removed, only leave")]
    RemoveOfInitialMember {
        /// The member named.
        member: PublicKey,
    },
    /// A `Rotate` that breaks a rule (epoch number, recipients, wrap size,
    /// more than one per delta).
    #[error("key rotation refused: {reason}")]
    Rotation {
        /// Which rule.
        reason: String,
    },
}

/// The membership changes of a delta by `author` with `events`, in order,
/// checked for everything that does not depend on the member set: each
/// decodes, each `Leave` is the author's own, a `Remove` names someone else,
/// and at most one `Rotate` with wraps in strict key order, none oversize.
pub fn membership_changes(author: &PublicKey, events: &[Event]) -> Result<Vec<MembershipChange>, MembershipError> {
    let mut changes = Vec::new();
    let mut rotations = 0;
    for (index, event) in events.iter().enumerate().filter(|(_, event)| event.is_membership()) {
        let change = MembershipChange::decode(&event.data)
            .map_err(|error| MembershipError::Malformed { index, reason: error.to_string() })?;
        match &change {
            MembershipChange::Leave { member } if member != author => {
                return Err(MembershipError::LeaveOfOther { author: *author, member: *member });
            }
            MembershipChange::Remove { member } if member == author => {
                return Err(MembershipError::Malformed { index, reason: "a member removes itself with Leave".into() });
            }
            MembershipChange::Rotate { wrapped, .. } => {
                rotations += 1;
                if rotations > 1 {
                    return Err(rotation("more than one rotation in a delta"));
                }
                if !wrapped.windows(2).all(|pair| pair[0].0 < pair[1].0) {
                    return Err(rotation("recipients are not in strict key order"));
                }
                if wrapped.iter().any(|(_, wrap)| wrap.len() > ROTATION_WRAP_BYTES_MAX) {
                    return Err(rotation("a wrapped key is larger than ROTATION_WRAP_BYTES_MAX"));
                }
            }
            _ => {}
        }
        changes.push(change);
    }
    Ok(changes)
}

fn rotation(reason: &str) -> MembershipError {
    MembershipError::Rotation { reason: reason.to_owned() }
}
