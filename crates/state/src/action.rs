//! Actions: the unit of replication of the state tree.
//!
//! A transaction's actions form the payload of one causal delta. Each action
//! names its target entity, what to do, and its [`Stamp`]; actions on
//! user-owned entities also carry the owner's signature over
//! [`Action::signing_digest`]. Borsh-encoded; decoding rejects unknown tags,
//! truncation and trailing bytes.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, Signature, encoding};
use weft_text::TextOp;

use crate::model::{CrdtKind, EntityId, Stamp, StorageKind};

/// The key-derivation context of owners' action signatures (v2: the
/// context id is hashed in).
pub const ACTION_SIGNATURE_DOMAIN: &str = "weft state action signature v2";

/// One replicated change.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Action {
    /// The entity the op applies to (for [`Op::Create`], the parent).
    pub target: EntityId,
    /// What to do.
    pub op: Op,
    /// When and by whom; the order of last-writer-wins.
    pub stamp: Stamp,
    /// The owner's signature over [`Action::signing_digest`]; present exactly
    /// when the action touches a user-owned entity.
    pub signature: Option<Signature>,
}

/// What an action does to its target.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Op {
    /// Create (or re-assert, making it visible again) the nested collection at
    /// `key` of the target map. Its id is [`crate::child_id`].
    Create {
        /// The key in the target map.
        key: Vec<u8>,
        /// The kind of the new collection.
        kind: CrdtKind,
        /// Who may write it.
        storage: StorageKind,
    },
    /// Set `key` of the target map to plain bytes.
    MapInsert {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` from the target map (a tombstone carrying the stamp).
    MapRemove {
        /// The key.
        key: Vec<u8>,
    },
    /// Set the target register.
    RegisterSet {
        /// The value.
        value: Vec<u8>,
    },
    /// The author's new absolute totals in the target counter. Merge keeps the
    /// per-author maximum, so applying it twice or out of order is harmless.
    CounterTotals {
        /// Sum of the author's increments.
        up: u64,
        /// Sum of the author's decrements (always 0 for a G-counter).
        down: u64,
    },
    /// Add `element` to the target set.
    SetAdd {
        /// The element.
        element: Vec<u8>,
    },
    /// Remove `element` from the target set.
    SetRemove {
        /// The element.
        element: Vec<u8>,
    },
    /// Append `value` to the target vector. The new element's id is the
    /// action's stamp, so concurrent pushes order by stamp on every replica.
    VectorPush {
        /// The value.
        value: Vec<u8>,
    },
    /// Overwrite the element pushed with stamp `element`.
    VectorSet {
        /// The element's id (its push stamp).
        element: Stamp,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove the element pushed with stamp `element`.
    VectorRemove {
        /// The element's id (its push stamp).
        element: Stamp,
    },
    /// An edit of the target text.
    Text(TextOp),
}

impl Op {
    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::MapInsert { .. } => "map insert",
            Op::MapRemove { .. } => "map remove",
            Op::RegisterSet { .. } => "register set",
            Op::CounterTotals { .. } => "counter totals",
            Op::SetAdd { .. } => "set add",
            Op::SetRemove { .. } => "set remove",
            Op::VectorPush { .. } => "vector push",
            Op::VectorSet { .. } => "vector set",
            Op::VectorRemove { .. } => "vector remove",
            Op::Text(_) => "text edit",
        }
    }
}

impl Action {
    /// What the owner signs: a domain-separated digest of the context id and
    /// the canonical encoding of everything but the signature. The context
    /// is in it so a member of two contexts cannot replay an owner's signed
    /// action from one into the other.
    pub fn signing_digest(&self, context: &Hash) -> Hash {
        let body = encoding::encode(&(&self.target, &self.op, &self.stamp));
        Hash::derive(ACTION_SIGNATURE_DOMAIN, &[context.as_bytes(), &body])
    }

    /// The canonical bytes of this action.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decode one action, rejecting anything [`Action::encode`] cannot produce.
    pub fn decode(bytes: &[u8]) -> Result<Action, encoding::DecodeError> {
        encoding::decode(bytes)
    }
}
