//! [`MemberSet`]: the member set, admins, departures and key epochs at one
//! point of a context's history, as a state-based CRDT (see the parent
//! module for the rules it enforces).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};

use weft_dag::DeltaId;
use weft_primitives::{Hash, Hlc, PublicKey};

use super::{MembershipChange, MembershipError, membership_changes, rotation};
use crate::delta::Event;

/// The order of concurrent changes to one member (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
struct ChangeStamp {
    hlc: Hlc,
    delta: DeltaId,
    index: u32,
}

/// What the set knows about one identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct MemberEntry {
    present: bool,
    /// The winning change so far (`None`: an initial member, untouched).
    last: Option<ChangeStamp>,
    /// The invitation of the Add that admitted it, if any.
    invitation: Option<Hash>,
}

/// A group-key epoch: its number and the delta that rotated to it
/// ([`KeyEpoch::GENESIS`] for the context's first key). Ordered by number,
/// then delta id: the greatest epoch in a point's past is its current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct KeyEpoch {
    /// 0 for the first key, then one more per rotation in the causal chain.
    pub number: u64,
    /// The rotating delta (the zero hash for epoch 0).
    pub rotation: DeltaId,
}

impl KeyEpoch {
    /// The context's first key, made by its creator.
    pub const GENESIS: KeyEpoch = KeyEpoch { number: 0, rotation: Hash::ZERO };
}

/// One rotation as the replica records it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct EpochEntry {
    /// `(member, wrapped key)` in key order.
    wrapped: Arc<Vec<(PublicKey, Vec<u8>)>>,
    /// The departures in the rotation's past (their keys are not wrapped).
    covered: Arc<BTreeSet<Departure>>,
}

/// One Leave or Remove: who, and the stamp of the change.
type Departure = (PublicKey, ChangeStamp);

/// A context's member set as of some point of its history. Its borsh
/// encoding ([`MemberSet::encode`]) is what a store keeps for the points of
/// forgotten deltas.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MemberSet {
    /// Every identity ever a member (absent ones keep their last stamp, so
    /// an older concurrent Add cannot bring them back).
    entries: BTreeMap<PublicKey, MemberEntry>,
    present: usize,
    /// The initial members: the admins while they are members.
    initial: Arc<BTreeSet<PublicKey>>,
    /// Every invitation an Add used, with the identity of the Add with the
    /// smallest stamp (the same on every replica whatever the order).
    used: BTreeMap<Hash, (ChangeStamp, PublicKey)>,
    /// Revoked invitations.
    revoked: BTreeSet<Hash>,
    /// Every Leave and Remove (a grow-only set).
    departures: BTreeSet<Departure>,
    /// Every rotation (a grow-only map).
    epochs: BTreeMap<KeyEpoch, EpochEntry>,
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
    /// The set's canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        weft_primitives::encoding::encode(self)
    }

    /// A set from [`MemberSet::encode`]'s bytes (from our own store: the
    /// caller checks them against the hash it keeps them under).
    pub fn decode(bytes: &[u8]) -> Result<MemberSet, weft_primitives::encoding::DecodeError> {
        weft_primitives::encoding::decode(bytes)
    }

    /// The set of the initial members.
    pub fn new(initial: impl IntoIterator<Item = PublicKey>) -> MemberSet {
        let initial: BTreeSet<PublicKey> = initial.into_iter().collect();
        let entries: BTreeMap<PublicKey, MemberEntry> = initial
            .iter()
            .map(|member| (*member, MemberEntry { present: true, last: None, invitation: None }))
            .collect();
        MemberSet { present: entries.len(), entries, initial: Arc::new(initial), ..MemberSet::default() }
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

    /// Whether `key` is an admin: an initial member that is a member.
    pub fn is_admin(&self, key: &PublicKey) -> bool {
        self.initial.contains(key) && self.contains(key)
    }

    /// Whether `key` left or was removed and is not a member again.
    pub fn has_departed(&self, key: &PublicKey) -> bool {
        !self.contains(key) && self.departures.iter().any(|(who, _)| who == key)
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

    /// The current key epoch: the greatest rotation in this set's history.
    pub fn current_epoch(&self) -> KeyEpoch {
        self.epochs.keys().next_back().copied().unwrap_or(KeyEpoch::GENESIS)
    }

    /// Every key epoch after the first, oldest first, with how many members
    /// its key was wrapped for.
    pub fn epochs(&self) -> impl Iterator<Item = (KeyEpoch, usize)> + '_ {
        self.epochs.iter().map(|(epoch, entry)| (*epoch, entry.wrapped.len()))
    }

    /// The key of `epoch` wrapped for `member`, if that rotation wrapped it
    /// for `member`.
    pub fn wrapped_key(&self, epoch: &KeyEpoch, member: &PublicKey) -> Option<&[u8]> {
        let entry = self.epochs.get(epoch)?;
        let at = entry.wrapped.binary_search_by(|(key, _)| key.cmp(member)).ok()?;
        Some(&entry.wrapped[at].1)
    }

    /// Whether someone who left or was removed (and is not a member again)
    /// may hold the current key: the current epoch's rotation did not have
    /// the departure in its past.
    pub fn rotation_needed(&self) -> bool {
        let covered = self.epochs.values().next_back().map(|entry| &*entry.covered);
        self.departures
            .iter()
            .any(|departure| !self.contains(&departure.0) && covered.is_none_or(|covered| !covered.contains(departure)))
    }

    /// Every rule a delta `delta` stamped `hlc` by `author` with `events`
    /// must pass against this set (its causal point); returns its
    /// membership changes. Changes nothing.
    pub fn check(
        &self,
        author: &PublicKey,
        delta: DeltaId,
        hlc: Hlc,
        events: &[Event],
    ) -> Result<Vec<MembershipChange>, MembershipError> {
        if !self.contains(author) {
            return Err(MembershipError::NotMember { author: *author });
        }
        let changes = membership_changes(author, events)?;
        for change in &changes {
            if let MembershipChange::Remove { member } = change {
                if !self.is_admin(author) {
                    return Err(MembershipError::NotAdmin { author: *author });
                }
                if self.initial.contains(member) {
                    return Err(MembershipError::RemoveOfInitialMember { member: *member });
                }
            }
        }
        // A rotation is judged against the set after the delta's earlier
        // changes, so simulate them (only deltas that rotate pay for it).
        for (at, change) in changes.iter().enumerate() {
            let MembershipChange::Rotate { epoch, wrapped } = change else { continue };
            let mut before = self.clone();
            before.apply(delta, hlc, &changes[..at]);
            let expected = before.current_epoch().number.saturating_add(1);
            if *epoch != expected {
                return Err(rotation(&format!("epoch {epoch}, expected {expected}")));
            }
            if !wrapped.iter().map(|(key, _)| key).eq(before.iter()) {
                return Err(rotation("the keys are not wrapped for exactly the members"));
            }
            if !before.contains(author) {
                return Err(rotation("the author is not among the members it wraps for"));
            }
        }
        Ok(changes)
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
        self.departures.extend(other.departures.iter().copied());
        for (epoch, entry) in &other.epochs {
            self.epochs.entry(*epoch).or_insert_with(|| entry.clone());
        }
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
                MembershipChange::Leave { member } | MembershipChange::Remove { member } => {
                    self.departures.insert((*member, stamp));
                    (*member, false, None)
                }
                MembershipChange::Revoke { invitation } => {
                    self.revoked.insert(*invitation);
                    continue;
                }
                MembershipChange::Rotate { epoch, wrapped } => {
                    let entry =
                        EpochEntry { wrapped: Arc::new(wrapped.clone()), covered: Arc::new(self.departures.clone()) };
                    self.epochs.insert(KeyEpoch { number: *epoch, rotation: delta }, entry);
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
