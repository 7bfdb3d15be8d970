//! Membership carried by deltas: who may write to a context, decided from
//! the context's own history.
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
//!   used and revoked invitations), so the join of two points is the set
//!   made of the union of their histories, the same on every replica. A
//!   delta concurrent with its author's `Leave` (or signed by a member on an
//!   old causal point after it left) is therefore *valid* everywhere: its
//!   author was a member where it was written. Limit: nothing bounds how old
//!   that point may be, so a member that left can still sign deltas on its
//!   pre-`Leave` history (key epochs that would bound it are not built).
//! - [`MembershipChange::Add`] by a member admits `member`. Any member may
//!   admit, with an invitation; the invitation id is kept for audit only
//!   (verifying invitations is the node's job, before it writes the Add).
//! - [`MembershipChange::Leave`] is valid only when `member` is the author:
//!   a member leaves by itself. Removing *another* member needs a group-key
//!   rotation, which is not implemented, so such a delta is refused as a
//!   whole ([`MembershipError::LeaveOfOther`]).
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
//! Leave, two Adds) are resolved last-writer-wins on `(hlc, delta id, event
//! index)`, not by arrival: the member set is then a function of the *set*
//! of accepted changes, the same on every replica whatever the order. A
//! causally later change always wins, since an honest author stamps a delta
//! after every delta it has seen. A member that left can be admitted again
//! by a later Add.
//!
//! Guarantees: [`MembershipChange::decode`] accepts exactly the bytes
//! [`MembershipChange::encode`] produces; [`MemberSet::check`] never changes
//! the set, so a refused delta leaves it untouched.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_dag::DeltaId;
use weft_primitives::encoding;
use weft_primitives::{Hash, Hlc, PublicKey};

use crate::delta::Event;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
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
            MembershipChange::Add { member, .. } | MembershipChange::Leave { member } => Some(*member),
            MembershipChange::Revoke { .. } => None,
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
    /// A `Leave` names someone other than the author (removing others needs
    /// group-key rotation, not implemented).
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
}

/// The membership changes of a delta by `author` with `events`, in order,
/// checked for everything that does not depend on the member set: each
/// decodes, and each `Leave` is the author's own.
pub fn membership_changes(author: &PublicKey, events: &[Event]) -> Result<Vec<MembershipChange>, MembershipError> {
    let mut changes = Vec::new();
    for (index, event) in events.iter().enumerate().filter(|(_, event)| event.is_membership()) {
        let change = MembershipChange::decode(&event.data)
            .map_err(|error| MembershipError::Malformed { index, reason: error.to_string() })?;
        if let MembershipChange::Leave { member } = &change
            && member != author
        {
            return Err(MembershipError::LeaveOfOther { author: *author, member: *member });
        }
        changes.push(change);
    }
    Ok(changes)
}

/// The order of concurrent changes to one member (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ChangeStamp {
    hlc: Hlc,
    delta: DeltaId,
    index: u32,
}

/// What the set knows about one identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MemberEntry {
    present: bool,
    /// The winning change so far (`None`: an initial member, untouched).
    last: Option<ChangeStamp>,
    /// The invitation of the Add that admitted it, if any.
    invitation: Option<Hash>,
}

/// A context's member set as of some point of a replica's apply order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSet {
    /// Every identity ever a member (absent ones keep their last stamp, so
    /// an older concurrent Add cannot bring them back).
    entries: BTreeMap<PublicKey, MemberEntry>,
    present: usize,
    /// Every invitation an Add used, with the identity of the Add with the
    /// smallest stamp (the same on every replica whatever the order).
    used: BTreeMap<Hash, (ChangeStamp, PublicKey)>,
    /// Revoked invitations.
    revoked: std::collections::BTreeSet<Hash>,
}

/// What a node may still do with an invitation, by the applied history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationUse {
    /// No Add used it and nobody revoked it.
    Unused,
    /// An Add admitted this identity with it (invitations admit one
    /// identity: the same one may present it again, nobody else).
    UsedBy(PublicKey),
    /// A member revoked it.
    Revoked,
}

impl MemberSet {
    /// The set of the initial members.
    pub fn new(initial: impl IntoIterator<Item = PublicKey>) -> MemberSet {
        let entries: BTreeMap<PublicKey, MemberEntry> = initial
            .into_iter()
            .map(|member| (member, MemberEntry { present: true, last: None, invitation: None }))
            .collect();
        MemberSet { present: entries.len(), entries, used: BTreeMap::new(), revoked: Default::default() }
    }

    /// What the history says about invitation `id`.
    pub fn invitation_use(&self, id: &Hash) -> InvitationUse {
        if self.revoked.contains(id) {
            InvitationUse::Revoked
        } else if let Some((_, member)) = self.used.get(id) {
            InvitationUse::UsedBy(*member)
        } else {
            InvitationUse::Unused
        }
    }

    /// Whether `key` is a member.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.entries.get(key).is_some_and(|entry| entry.present)
    }

    /// The members, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.entries.iter().filter(|(_, entry)| entry.present).map(|(key, _)| key)
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.present
    }

    /// Whether nobody is a member.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// The invitation a member was admitted with (`None` for initial
    /// members and non-members).
    pub fn invitation(&self, member: &PublicKey) -> Option<Hash> {
        self.entries.get(member).filter(|entry| entry.present).and_then(|entry| entry.invitation)
    }

    /// The delta whose Add admitted `member` (`None` for initial members and
    /// non-members): a write by `member` must have it in its causal past.
    pub fn admitted_by(&self, member: &PublicKey) -> Option<DeltaId> {
        let entry = self.entries.get(member).filter(|entry| entry.present && entry.invitation.is_some())?;
        entry.last.map(|stamp| stamp.delta)
    }

    /// Every rule a delta by `author` with `events` must pass against this
    /// set; returns its membership changes. Changes nothing.
    pub fn check(&self, author: &PublicKey, events: &[Event]) -> Result<Vec<MembershipChange>, MembershipError> {
        if !self.contains(author) {
            return Err(MembershipError::NotMember { author: *author });
        }
        membership_changes(author, events)
    }

    /// Merge `other` into this set: the set made of the changes of both
    /// histories (commutative, associative, idempotent). Both must start
    /// from the same initial members.
    pub fn join(&mut self, other: &MemberSet) {
        for (member, theirs) in &other.entries {
            match self.entries.get_mut(member) {
                // An initial member (no stamp) yields to any change.
                Some(mine) if mine.last >= theirs.last => {}
                Some(mine) => *mine = *theirs,
                None => {
                    self.entries.insert(*member, *theirs);
                }
            }
        }
        for (invitation, theirs) in &other.used {
            let first = self.used.entry(*invitation).or_insert(*theirs);
            if theirs.0 < first.0 {
                *first = *theirs;
            }
        }
        self.revoked.extend(other.revoked.iter().copied());
        self.present = self.entries.values().filter(|entry| entry.present).count();
    }

    /// Apply the (checked) `changes` of delta `delta` stamped `hlc`. Returns
    /// each identity whose membership flipped, with whether it was a member
    /// before.
    pub fn apply(&mut self, delta: DeltaId, hlc: Hlc, changes: &[MembershipChange]) -> Vec<(PublicKey, bool)> {
        let mut flipped = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            let stamp = ChangeStamp { hlc, delta, index: u32::try_from(index).unwrap_or(u32::MAX) };
            let (member, present, invitation) = match change {
                MembershipChange::Add { member, invitation } => {
                    let first = self.used.entry(*invitation).or_insert((stamp, *member));
                    if stamp < first.0 {
                        *first = (stamp, *member);
                    }
                    (*member, true, Some(*invitation))
                }
                MembershipChange::Leave { member } => (*member, false, None),
                MembershipChange::Revoke { invitation } => {
                    self.revoked.insert(*invitation);
                    continue;
                }
            };
            let entry =
                self.entries.entry(member).or_insert(MemberEntry { present: false, last: None, invitation: None });
            // An initial member (no stamp) yields to any change.
            if entry.last.is_some_and(|last| last >= stamp) {
                continue;
            }
            let was = entry.present;
            *entry = MemberEntry { present, last: Some(stamp), invitation };
            if was != present {
                flipped.push((member, was));
                if present {
                    self.present += 1;
                } else {
                    self.present -= 1;
                }
            }
        }
        flipped
    }
}

#[cfg(test)]
mod tests {
    use weft_primitives::SigningKey;

    use super::*;

    fn key(i: u8) -> PublicKey {
        SigningKey::from_seed([i; 32]).public_key()
    }

    #[test]
    fn a_change_round_trips_and_refuses_non_canonical_bytes() {
        let change = MembershipChange::Add { member: key(1), invitation: Hash::of(b"inv") };
        let bytes = change.encode();
        assert_eq!(MembershipChange::decode(&bytes), Ok(change));
        assert!(MembershipChange::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(MembershipChange::decode(&padded).is_err());
        assert!(MembershipChange::decode(&[9]).is_err(), "unknown tag");
    }

    #[test]
    fn membership_event_has_the_reserved_kind_and_no_handler() {
        let change = MembershipChange::Leave { member: key(1) };
        let by_ref: &MembershipChange = &change;
        let event = Event::membership(by_ref);
        assert_eq!(event.kind, MEMBERSHIP_EVENT_KIND);
        assert!(is_reserved_event_kind(&event.kind));
        assert_eq!(event.handler, None);
        assert_eq!(Event::membership(change), event);
        assert!(!is_reserved_event_kind("Wrote"));
        assert!(!is_reserved_event_kind("weft"));
        assert!(is_reserved_event_kind("weft.anything"));
    }

    #[test]
    fn leave_of_another_member_is_refused() {
        let set = MemberSet::new([key(1), key(2)]);
        let events = vec![Event::membership(MembershipChange::Leave { member: key(2) })];
        assert_eq!(set.check(&key(1), &events), Err(MembershipError::LeaveOfOther { author: key(1), member: key(2) }));
    }

    #[test]
    fn malformed_membership_event_is_refused() {
        let set = MemberSet::new([key(1)]);
        let events = vec![
            Event { kind: "Other".into(), data: vec![1], handler: None },
            Event { kind: MEMBERSHIP_EVENT_KIND.into(), data: vec![7, 7], handler: None },
        ];
        assert!(matches!(set.check(&key(1), &events), Err(MembershipError::Malformed { index: 1, .. })));
    }

    #[test]
    fn non_member_author_is_refused() {
        let set = MemberSet::new([key(1)]);
        assert_eq!(set.check(&key(2), &[]), Err(MembershipError::NotMember { author: key(2) }));
    }

    #[test]
    fn concurrent_add_and_leave_resolve_by_stamp_not_by_arrival() {
        let add =
            (Hash::of(b"a"), Hlc::new(10, 0), vec![MembershipChange::Add { member: key(2), invitation: Hash::ZERO }]);
        let leave = (Hash::of(b"l"), Hlc::new(11, 0), vec![MembershipChange::Leave { member: key(2) }]);
        let mut one = MemberSet::new([key(1), key(2)]);
        let mut two = one.clone();
        one.apply(add.0, add.1, &add.2);
        one.apply(leave.0, leave.1, &leave.2);
        two.apply(leave.0, leave.1, &leave.2);
        two.apply(add.0, add.1, &add.2);
        assert_eq!(one, two);
        assert!(!one.contains(&key(2)));
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn a_later_add_readmits_and_reports_flips() {
        let mut set = MemberSet::new([key(1)]);
        let flips = set.apply(
            Hash::of(b"a"),
            Hlc::new(1, 0),
            &[MembershipChange::Add { member: key(2), invitation: Hash::of(b"i") }],
        );
        assert_eq!(flips, vec![(key(2), false)]);
        assert_eq!(set.invitation(&key(2)), Some(Hash::of(b"i")));
        assert_eq!(set.admitted_by(&key(2)), Some(Hash::of(b"a")));
        let flips = set.apply(Hash::of(b"l"), Hlc::new(2, 0), &[MembershipChange::Leave { member: key(2) }]);
        assert_eq!(flips, vec![(key(2), true)]);
        assert_eq!(set.admitted_by(&key(2)), None);
        set.apply(Hash::of(b"b"), Hlc::new(3, 0), &[MembershipChange::Add { member: key(2), invitation: Hash::ZERO }]);
        assert!(set.contains(&key(2)));
        assert_eq!(set.iter().count(), 2);
    }

    #[test]
    fn invitation_use_is_the_earliest_add_whatever_the_order_and_revocation_wins() {
        let invitation = Hash::of(b"inv");
        let add = |i: u8| [MembershipChange::Add { member: key(i), invitation }];
        let (early, late) = (Hlc::new(1, 0), Hlc::new(2, 0));
        let (d1, d2) = (Hash::of(b"d1"), Hash::of(b"d2"));
        let mut one = MemberSet::new([key(1)]);
        assert_eq!(one.invitation_use(&invitation), InvitationUse::Unused);
        one.apply(d1, early, &add(2));
        one.apply(d2, late, &add(3));
        let mut other = MemberSet::new([key(1)]);
        other.apply(d2, late, &add(3));
        other.apply(d1, early, &add(2));
        assert_eq!(one.invitation_use(&invitation), InvitationUse::UsedBy(key(2)));
        assert_eq!(other, one, "one set whatever the order");
        let revoke = [MembershipChange::Revoke { invitation }];
        one.apply(Hash::of(b"d3"), Hlc::new(3, 0), &revoke);
        assert_eq!(one.invitation_use(&invitation), InvitationUse::Revoked);
        assert!(one.contains(&key(2)), "revoking admits nobody and removes nobody");
        assert_eq!(MembershipChange::decode(&revoke[0].encode()), Ok(revoke[0]));
    }

    #[test]
    fn join_is_the_set_of_the_union_of_histories_in_any_order() {
        let changes = [
            (Hash::of(b"1"), Hlc::new(1, 0), MembershipChange::Add { member: key(3), invitation: Hash::of(b"i") }),
            (Hash::of(b"2"), Hlc::new(2, 0), MembershipChange::Leave { member: key(2) }),
            (Hash::of(b"3"), Hlc::new(3, 0), MembershipChange::Leave { member: key(3) }),
            (Hash::of(b"4"), Hlc::new(4, 0), MembershipChange::Add { member: key(4), invitation: Hash::of(b"i") }),
            (Hash::of(b"5"), Hlc::new(5, 0), MembershipChange::Revoke { invitation: Hash::of(b"j") }),
        ];
        let initial = MemberSet::new([key(1), key(2)]);
        let build = |subset: &[usize]| {
            let mut set = initial.clone();
            for &i in subset {
                let (delta, hlc, change) = changes[i];
                set.apply(delta, hlc, &[change]);
            }
            set
        };
        let all = build(&[0, 1, 2, 3, 4]);
        // Every split of the changes into two overlapping histories.
        for mask in 0u32..(1 << 5) {
            let left: Vec<usize> = (0..5).filter(|i| mask & (1 << i) != 0).collect();
            let right: Vec<usize> = (0..5).filter(|i| mask & (1 << i) == 0 || *i == 2).collect();
            let (a, b) = (build(&left), build(&right));
            let mut ab = a.clone();
            ab.join(&b);
            let mut ba = b.clone();
            ba.join(&a);
            assert_eq!(ab, all, "mask {mask:05b}");
            assert_eq!(ba, all, "mask {mask:05b}");
            let mut twice = ab.clone();
            twice.join(&a);
            assert_eq!(twice, all, "idempotent");
        }
        assert_eq!(all.len(), 2);
        assert_eq!(all.invitation_use(&Hash::of(b"i")), InvitationUse::UsedBy(key(3)));
    }
}
