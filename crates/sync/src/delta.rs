//! The signed delta of a context: the unit of replication on the wire and on
//! disk.
//!
//! A [`SignedDelta`] is one write: the heads it was built on (`parents`),
//! its author's identity key, a hybrid logical timestamp, the state
//! [`Action`]s and the [`Event`]s the write emitted. Its `id` is
//! [`Hash::derive`] under [`DELTA_ID_DOMAIN`] of the context id followed by
//! the canonical borsh encoding of everything except `id` and `signature`;
//! the signature is the author's Ed25519 signature over the id's 32 bytes.
//! The context id is not on the wire (the receiver knows it), but it is in
//! the id, so a delta signed for one context fails the id check in any other.
//!
//! Guarantees:
//! - [`SignedDelta::decode`] accepts exactly the bytes [`SignedDelta::encode`]
//!   produces (no trailing bytes, no unknown tags) and refuses more than
//!   [`DELTA_BYTES_MAX`] bytes before decoding anything.
//! - [`SignedDelta::verify`] checks, cheapest first, the size bound, the
//!   parent list, that the id is the content hash, and the signature; every
//!   failure is its own [`DeltaRejection`] variant, so a driver can penalize a
//!   peer by variant. Membership and clock drift need the replica's context
//!   and are checked there, with the same error type
//!   ([`membership`](crate::membership) for the rules).
//! - Borsh is canonical for these types, so re-encoding a decoded delta gives
//!   back the same bytes: a delta can be stored decoded and served encoded.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_dag::{CausalDelta, DeltaId};
use weft_primitives::encoding::{self, DecodeError};
use weft_primitives::{Hash, Hlc, KeyError, PublicKey, Signature, SigningKey};
use weft_state::Action;

use crate::membership::MembershipError;

/// The largest encoded delta: 1 MiB of plaintext (docs/design.md defaults).
pub const DELTA_BYTES_MAX: usize = 1024 * 1024;

/// The most parents a delta may name (the DAG's default bound).
pub const PARENTS_MAX: usize = weft_dag::PARENTS_MAX_DEFAULT;
/// Events one delta may carry: what one call may emit in the runtime
/// (`weft_abi::limits::EVENTS_MAX`), so only a forged delta exceeds it,
/// and each event can become a handler job on every other member.
pub const EVENTS_PER_DELTA_MAX: usize = 1024;

/// The key-derivation context of delta ids: separates them from every other
/// BLAKE3 use (entity hashes, action signatures) over the same bytes.
pub const DELTA_ID_DOMAIN: &str = "weft sync delta id v2";

/// An event a write emitted: delivered to subscribers on every node, and
/// handled (if `handler` names a method) on every node but the author's.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Event {
    /// The event kind (the application's event variant name).
    pub kind: String,
    /// Its data (JSON from the SDK; opaque here).
    pub data: Vec<u8>,
    /// The handler method other nodes run with `data`, if any.
    pub handler: Option<String>,
}

/// One signed write of a context. Field order is the wire order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedDelta {
    /// The content hash (see the module doc).
    pub id: DeltaId,
    /// The heads the author saw: at least one (the genesis for the first
    /// delta), at most [`PARENTS_MAX`], no repeats.
    pub parents: Vec<DeltaId>,
    /// The member identity that wrote and signed it.
    pub author: PublicKey,
    /// The author's hybrid logical timestamp of the write.
    pub hlc: Hlc,
    /// The state changes, merged natively on every replica.
    pub actions: Vec<Action>,
    /// The events the write emitted.
    pub events: Vec<Event>,
    /// The author's Ed25519 signature over `id`.
    pub signature: Signature,
}

/// What the DAG carries for a delta besides id, parents and timestamp: enough
/// to apply it and to re-encode it byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaPayload {
    /// The author.
    pub author: PublicKey,
    /// The state changes.
    pub actions: Vec<Action>,
    /// The events.
    pub events: Vec<Event>,
    /// The author's signature over the id.
    pub signature: Signature,
}

/// Why a delta from a peer was refused. Nothing was changed; the driver may
/// penalize the sender by variant.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DeltaRejection {
    /// More bytes than [`DELTA_BYTES_MAX`].
    #[error("delta of {len} bytes exceeds the {max}-byte limit")]
    Oversize {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a canonical encoding of a delta (truncated, trailing bytes,
    /// unknown tag, bad UTF-8, …).
    #[error("malformed delta: {reason}")]
    Malformed {
        /// What the decoder objected to.
        reason: String,
    },
    /// The id is not the content hash.
    #[error("delta claims id {claimed:?} but its content hashes to {computed:?}")]
    IdMismatch {
        /// The id on the wire.
        claimed: DeltaId,
        /// The hash of the content.
        computed: DeltaId,
    },
    /// No parents (only the genesis has none, and it is not a delta).
    #[error("delta names no parents")]
    NoParents,
    /// More than [`PARENTS_MAX`] parents.
    #[error("delta names {count} parents (max {max})")]
    TooManyParents {
        /// How many it names.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`EVENTS_PER_DELTA_MAX`] events.
    #[error("delta carries {count} events (max {max})")]
    TooManyEvents {
        /// How many it carries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A parent named twice.
    #[error("delta names parent {parent:?} twice")]
    DuplicateParent {
        /// The repeated parent.
        parent: DeltaId,
    },
    /// The delta names itself as a parent.
    #[error("delta names itself as a parent")]
    SelfParent,
    /// The author key is not a valid Ed25519 point.
    #[error("author {author:?} is not a valid Ed25519 key")]
    InvalidAuthorKey {
        /// The author.
        author: PublicKey,
    },
    /// The signature does not verify for the author and id.
    #[error("bad signature by {author:?}")]
    BadSignature {
        /// The claimed author.
        author: PublicKey,
    },
    /// The author is not a member of the context at the delta's causal
    /// point (see [`membership`](crate::membership)).
    #[error("author {author:?} is not a member of the context")]
    NonMember {
        /// The author.
        author: PublicKey,
    },
    /// A membership event's data is not a canonical
    /// [`MembershipChange`](crate::MembershipChange).
    #[error("membership event {index} is malformed: {reason}")]
    MalformedMembership {
        /// Its index among the delta's events.
        index: usize,
        /// What the decoder objected to.
        reason: String,
    },
    /// A membership `Leave` names someone other than the author.
    #[error("{author:?} cannot make {member:?} leave: a member only leaves by itself")]
    LeaveOfOther {
        /// The author.
        author: PublicKey,
        /// The member it tried to remove.
        member: PublicKey,
    },
    /// Another membership rule (a removal by a non-admin, a rotation with
    /// the wrong epoch or recipients).
    #[error(transparent)]
    Membership(MembershipError),
    /// The timestamp's logical counter is above [`Hlc::COUNTER_MAX`]: no
    /// honest clock gets there, and absorbing it would exhaust ours.
    #[error("timestamp counter {counter} above the maximum {max}")]
    ClockCounter {
        /// The counter.
        counter: u32,
        /// [`Hlc::COUNTER_MAX`].
        max: u32,
    },
    /// The timestamp runs further ahead of local time than the allowed drift.
    #[error("timestamp {ahead_ms} ms ahead of local time (max drift {max_drift_ms} ms)")]
    TooFarInFuture {
        /// How far ahead.
        ahead_ms: u64,
        /// The bound.
        max_drift_ms: u64,
    },
    /// The DAG refused the delta's shape (should be unreachable after
    /// [`SignedDelta::verify`]; kept so no DAG error is ever swallowed).
    #[error("DAG refused the delta: {reason}")]
    Dag {
        /// The DAG's reason.
        reason: String,
    },
}

impl DeltaRejection {
    /// Every [`DeltaRejection::reason`], in variant order: the label values
    /// of the node's per-reason rejection counters.
    pub const REASONS: [&'static str; 17] = [
        "oversize",
        "malformed",
        "id_mismatch",
        "no_parents",
        "too_many_parents",
        "too_many_events",
        "duplicate_parent",
        "self_parent",
        "invalid_author_key",
        "bad_signature",
        "non_member",
        "malformed_membership",
        "leave_of_other",
        "membership",
        "clock_counter",
        "too_far_in_future",
        "dag",
    ];

    /// A stable snake_case name of the variant (one of [`Self::REASONS`]).
    pub fn reason(&self) -> &'static str {
        Self::REASONS[self.reason_index()]
    }

    /// The index of [`Self::reason`] in [`Self::REASONS`].
    pub fn reason_index(&self) -> usize {
        match self {
            DeltaRejection::Oversize { .. } => 0,
            DeltaRejection::Malformed { .. } => 1,
            DeltaRejection::IdMismatch { .. } => 2,
            DeltaRejection::NoParents => 3,
            DeltaRejection::TooManyParents { .. } => 4,
            DeltaRejection::TooManyEvents { .. } => 5,
            DeltaRejection::DuplicateParent { .. } => 6,
            DeltaRejection::SelfParent => 7,
            DeltaRejection::InvalidAuthorKey { .. } => 8,
            DeltaRejection::BadSignature { .. } => 9,
            DeltaRejection::NonMember { .. } => 10,
            DeltaRejection::MalformedMembership { .. } => 11,
            DeltaRejection::LeaveOfOther { .. } => 12,
            DeltaRejection::Membership(_) => 13,
            DeltaRejection::ClockCounter { .. } => 14,
            DeltaRejection::TooFarInFuture { .. } => 15,
            DeltaRejection::Dag { .. } => 16,
        }
    }
}

impl From<MembershipError> for DeltaRejection {
    fn from(error: MembershipError) -> Self {
        match error {
            MembershipError::Malformed { index, reason } => DeltaRejection::MalformedMembership { index, reason },
            MembershipError::LeaveOfOther { author, member } => DeltaRejection::LeaveOfOther { author, member },
            MembershipError::NotMember { author } => DeltaRejection::NonMember { author },
            other => DeltaRejection::Membership(other),
        }
    }
}

impl From<DecodeError> for DeltaRejection {
    fn from(error: DecodeError) -> Self {
        DeltaRejection::Malformed { reason: error.to_string() }
    }
}

/// The id of a delta of `context` with this content.
fn content_id(
    context: &Hash,
    parents: &[DeltaId],
    author: &PublicKey,
    hlc: &Hlc,
    actions: &[Action],
    events: &[Event],
) -> DeltaId {
    let body = encoding::encode(&(parents, author, hlc, actions, events));
    Hash::derive(DELTA_ID_DOMAIN, &[context.as_bytes(), &body])
}

impl SignedDelta {
    /// A delta of `context` by `signer`, with its id computed and signed.
    pub fn sign(
        signer: &SigningKey,
        context: &Hash,
        parents: Vec<DeltaId>,
        hlc: Hlc,
        actions: Vec<Action>,
        events: Vec<Event>,
    ) -> SignedDelta {
        let author = signer.public_key();
        let id = content_id(context, &parents, &author, &hlc, &actions, &events);
        let signature = signer.sign(id.as_bytes());
        SignedDelta { id, parents, author, hlc, actions, events, signature }
    }

    /// The hash of this delta's content as a delta of `context` (what `id`
    /// must be).
    pub fn content_id(&self, context: &Hash) -> DeltaId {
        content_id(context, &self.parents, &self.author, &self.hlc, &self.actions, &self.events)
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode one delta, refusing oversize input before looking at it, and
    /// anything that is not a canonical encoding. Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<SignedDelta, DeltaRejection> {
        if bytes.len() > DELTA_BYTES_MAX {
            return Err(DeltaRejection::Oversize { len: bytes.len(), max: DELTA_BYTES_MAX });
        }
        Ok(encoding::decode(bytes)?)
    }

    /// Every check a delta of `context` passes on its own: size, parents, id,
    /// signature.
    pub fn verify(&self, context: &Hash) -> Result<(), DeltaRejection> {
        self.check_shape()?;
        self.check_id(context)?;
        self.check_signature()
    }

    /// The size bound and the parent list.
    pub fn check_shape(&self) -> Result<(), DeltaRejection> {
        let len = borsh::object_length(self).unwrap_or(usize::MAX);
        if len > DELTA_BYTES_MAX {
            return Err(DeltaRejection::Oversize { len, max: DELTA_BYTES_MAX });
        }
        if self.parents.is_empty() {
            return Err(DeltaRejection::NoParents);
        }
        if self.hlc.counter > Hlc::COUNTER_MAX {
            return Err(DeltaRejection::ClockCounter { counter: self.hlc.counter, max: Hlc::COUNTER_MAX });
        }
        if self.parents.len() > PARENTS_MAX {
            return Err(DeltaRejection::TooManyParents { count: self.parents.len(), max: PARENTS_MAX });
        }
        if self.events.len() > EVENTS_PER_DELTA_MAX {
            return Err(DeltaRejection::TooManyEvents { count: self.events.len(), max: EVENTS_PER_DELTA_MAX });
        }
        if self.parents.contains(&self.id) {
            return Err(DeltaRejection::SelfParent);
        }
        // At most PARENTS_MAX (64) parents: the pairwise scan is cheap.
        if let Some((_, parent)) =
            self.parents.iter().enumerate().find(|(i, parent)| self.parents[..*i].contains(parent))
        {
            return Err(DeltaRejection::DuplicateParent { parent: *parent });
        }
        Ok(())
    }

    /// That `id` is the content hash for `context`.
    pub fn check_id(&self, context: &Hash) -> Result<(), DeltaRejection> {
        let computed = self.content_id(context);
        if computed != self.id {
            return Err(DeltaRejection::IdMismatch { claimed: self.id, computed });
        }
        Ok(())
    }

    /// That the author signed the id.
    pub fn check_signature(&self) -> Result<(), DeltaRejection> {
        self.author.verify(self.id.as_bytes(), &self.signature).map_err(|error| match error {
            KeyError::InvalidPublicKey(author) => DeltaRejection::InvalidAuthorKey { author },
            KeyError::BadSignature(_) | KeyError::Random(_) => DeltaRejection::BadSignature { author: self.author },
        })
    }

    /// The DAG's view of this delta.
    pub fn into_causal(self) -> CausalDelta<DeltaPayload> {
        CausalDelta {
            id: self.id,
            parents: self.parents,
            hlc: self.hlc,
            payload: DeltaPayload {
                author: self.author,
                actions: self.actions,
                events: self.events,
                signature: self.signature,
            },
        }
    }

    /// The signed delta a DAG entry holds (cloned).
    pub fn from_causal(delta: &CausalDelta<DeltaPayload>) -> SignedDelta {
        SignedDelta {
            id: delta.id,
            parents: delta.parents.clone(),
            author: delta.payload.author,
            hlc: delta.hlc,
            actions: delta.payload.actions.clone(),
            events: delta.payload.events.clone(),
            signature: delta.payload.signature,
        }
    }
}

/// The canonical bytes of the delta a DAG entry holds, without cloning it:
/// the same bytes as [`SignedDelta::encode`] (borsh encodes a struct as the
/// tuple of its fields in order).
pub fn encode_causal(delta: &CausalDelta<DeltaPayload>) -> Vec<u8> {
    let payload = &delta.payload;
    encoding::encode(&(
        &delta.id,
        &delta.parents,
        &payload.author,
        &delta.hlc,
        &payload.actions,
        &payload.events,
        &payload.signature,
    ))
}

#[cfg(test)]
mod tests {
    use weft_primitives::kv::MemoryKv;
    use weft_state::{StateTxn, root_id};

    use super::*;

    /// The context the sample deltas are written in.
    const CTX: Hash = Hash([9; 32]);

    fn signer() -> SigningKey {
        SigningKey::from_seed([3; 32])
    }

    fn sample() -> SignedDelta {
        let kv = MemoryKv::new();
        let key = signer();
        let mut txn = StateTxn::new(&kv, CTX, &key, Hlc::new(10, 0));
        txn.map_insert(root_id(), b"k", b"v").unwrap();
        let commit = txn.commit().unwrap();
        let event = Event { kind: "Added".into(), data: b"{}".to_vec(), handler: Some("on_added".into()) };
        SignedDelta::sign(&key, &CTX, vec![Hash::of(b"genesis")], Hlc::new(10, 0), commit.actions, vec![event])
    }

    #[test]
    fn a_signed_delta_verifies_and_round_trips() {
        let delta = sample();
        assert_eq!(delta.verify(&CTX), Ok(()));
        let bytes = delta.encode();
        assert_eq!(SignedDelta::decode(&bytes), Ok(delta.clone()));
        assert_eq!(encode_causal(&delta.clone().into_causal()), bytes, "served bytes equal the received bytes");
        assert_eq!(SignedDelta::from_causal(&delta.clone().into_causal()), delta);
    }

    #[test]
    fn forged_signature_is_bad_signature() {
        let mut delta = sample();
        delta.signature = SigningKey::from_seed([4; 32]).sign(delta.id.as_bytes());
        assert_eq!(delta.verify(&CTX), Err(DeltaRejection::BadSignature { author: delta.author }));
    }

    #[test]
    fn another_authors_claim_is_bad_signature() {
        let mut delta = sample();
        delta.author = SigningKey::from_seed([5; 32]).public_key();
        delta.id = delta.content_id(&CTX);
        assert_eq!(delta.verify(&CTX), Err(DeltaRejection::BadSignature { author: delta.author }));
    }

    #[test]
    fn a_delta_of_one_context_is_id_mismatch_in_another() {
        let delta = sample();
        let other = Hash([10; 32]);
        assert_eq!(
            delta.verify(&other),
            Err(DeltaRejection::IdMismatch { claimed: delta.id, computed: delta.content_id(&other) })
        );
    }

    #[test]
    fn id_that_is_not_the_content_hash_is_id_mismatch() {
        let mut delta = sample();
        delta.hlc = Hlc::new(11, 0);
        assert!(matches!(delta.verify(&CTX), Err(DeltaRejection::IdMismatch { .. })));
    }

    #[test]
    fn parent_list_rules_have_their_own_variants() {
        let key = signer();
        let none = SignedDelta::sign(&key, &CTX, vec![], Hlc::new(1, 0), vec![], vec![]);
        assert_eq!(none.verify(&CTX), Err(DeltaRejection::NoParents));
        let p = Hash::of(b"p");
        let twice = SignedDelta::sign(&key, &CTX, vec![p, p], Hlc::new(1, 0), vec![], vec![]);
        assert_eq!(twice.verify(&CTX), Err(DeltaRejection::DuplicateParent { parent: p }));
        let many: Vec<DeltaId> = (0..=PARENTS_MAX as u32).map(|i| Hash::of(&i.to_le_bytes())).collect();
        let wide = SignedDelta::sign(&key, &CTX, many, Hlc::new(1, 0), vec![], vec![]);
        assert_eq!(wide.verify(&CTX), Err(DeltaRejection::TooManyParents { count: PARENTS_MAX + 1, max: PARENTS_MAX }));
    }

    #[test]
    fn more_events_than_one_call_may_emit_are_refused() {
        let key = signer();
        let event = Event { kind: "e".into(), data: vec![], handler: Some("on_e".into()) };
        let at_max = SignedDelta::sign(
            &key,
            &CTX,
            vec![Hash::of(b"p")],
            Hlc::new(1, 0),
            vec![],
            vec![event.clone(); EVENTS_PER_DELTA_MAX],
        );
        assert_eq!(at_max.verify(&CTX), Ok(()));
        let over = SignedDelta::sign(
            &key,
            &CTX,
            vec![Hash::of(b"p")],
            Hlc::new(1, 0),
            vec![],
            vec![event; EVENTS_PER_DELTA_MAX + 1],
        );
        assert_eq!(
            over.verify(&CTX),
            Err(DeltaRejection::TooManyEvents { count: EVENTS_PER_DELTA_MAX + 1, max: EVENTS_PER_DELTA_MAX })
        );
    }

    #[test]
    fn oversize_is_refused_before_decoding() {
        let bytes = vec![0u8; DELTA_BYTES_MAX + 1];
        assert_eq!(
            SignedDelta::decode(&bytes),
            Err(DeltaRejection::Oversize { len: DELTA_BYTES_MAX + 1, max: DELTA_BYTES_MAX })
        );
        let key = signer();
        let event = Event { kind: "big".into(), data: vec![7; DELTA_BYTES_MAX], handler: None };
        let big = SignedDelta::sign(&key, &CTX, vec![Hash::of(b"g")], Hlc::new(1, 0), vec![], vec![event]);
        assert!(matches!(big.verify(&CTX), Err(DeltaRejection::Oversize { .. })));
    }

    #[test]
    fn truncated_or_padded_bytes_are_malformed() {
        let bytes = sample().encode();
        for cut in [0, 1, 31, bytes.len() - 1] {
            assert!(matches!(SignedDelta::decode(&bytes[..cut]), Err(DeltaRejection::Malformed { .. })), "cut {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(SignedDelta::decode(&padded), Err(DeltaRejection::Malformed { .. })));
    }
}
