//! Why a state operation was refused. Every rejection has its own variant so
//! callers (and tests) can tell a forged signature from a frozen violation.

use weft_primitives::kv::KvError;
use weft_primitives::{Hash, PublicKey};

use crate::model::{CrdtKind, EntityId};

/// A refused state operation. Whatever the variant, nothing was changed:
/// a failed local operation leaves its transaction as it was (or poisons it,
/// see [`StateError::Poisoned`]), a failed remote batch writes nothing.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Reading the key-value store failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored row could not be decoded or contradicts the tree structure.
    #[error("corrupt state row {what}: {reason}")]
    Corrupt {
        /// Which row.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The action's target entity does not exist.
    #[error("unknown target entity {0:?}")]
    UnknownTarget(EntityId),
    /// The op does not apply to the target's kind.
    #[error("{op} does not apply to {target:?}, a {found:?}")]
    WrongKind {
        /// The target.
        target: EntityId,
        /// The op.
        op: &'static str,
        /// The target's kind.
        found: CrdtKind,
    },
    /// A user-owned entity was written by someone other than its owner.
    #[error("{author:?} may not write {target:?}, owned by {owner:?}")]
    NotOwner {
        /// The entity.
        target: EntityId,
        /// Its owner.
        owner: PublicKey,
        /// The action's author.
        author: PublicKey,
    },
    /// An action on a user-owned entity carries no signature.
    #[error("action on user-owned {0:?} is not signed")]
    MissingSignature(EntityId),
    /// The owner's signature does not verify.
    #[error("action on user-owned {0:?} has a bad signature")]
    BadSignature(EntityId),
    /// An action that needs no signature carries one (one action, one encoding).
    #[error("action on {0:?} carries a signature it must not have")]
    UnexpectedSignature(EntityId),
    /// An action in a remote batch is not by the delta's author.
    #[error("action by {found:?} in a delta by {expected:?}")]
    ForeignAuthor {
        /// The delta's author.
        expected: PublicKey,
        /// The action's author.
        found: PublicKey,
    },
    /// A frozen entry's key is not the hash of its value.
    #[error("frozen entry key is not the BLAKE3 hash of its value")]
    FrozenKeyMismatch,
    /// Frozen entries can never be removed.
    #[error("frozen entries cannot be removed")]
    FrozenRemove,
    /// Frozen storage holds plain content-addressed bytes only: no nested
    /// collections inside it, and only maps can be frozen.
    #[error("frozen storage holds plain content-addressed bytes only ({0})")]
    FrozenUnsupported(&'static str),
    /// A vector op names an element that was never pushed.
    #[error("unknown vector element")]
    UnknownElement,
    /// A local vector op names an index past the end.
    #[error("index {index} out of range (length {len})")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The visible length.
        len: u64,
    },
    /// A key (or set element) is longer than [`crate::KEY_BYTES_MAX`].
    #[error("key of {0} bytes exceeds the limit")]
    KeyTooLong(usize),
    /// A value is larger than [`crate::VALUE_BYTES_MAX`].
    #[error("value of {0} bytes exceeds the limit")]
    ValueTooLarge(usize),
    /// Collections nest deeper than [`crate::NESTING_DEPTH_MAX`].
    #[error("collections nest deeper than the limit")]
    NestingTooDeep,
    /// A batch or transaction holds more than [`crate::ACTIONS_PER_BATCH_MAX`] actions.
    #[error("more than the allowed number of actions in one batch")]
    TooManyActions,
    /// A counter total would overflow 64 bits.
    #[error("counter overflow")]
    CounterOverflow,
    /// A grow-only counter was asked to decrease.
    #[error("a grow-only counter cannot decrease")]
    CounterDecrement,
    /// A text op was refused by the text CRDT.
    #[error("text: {0}")]
    Text(String),
    /// A text op names an item that is not (yet) in the document: an origin
    /// or a deleted item never inserted here, or an insert that skips ahead
    /// in its lane's sequence. Items only ever appear, so the op may apply
    /// once a concurrent delta brings the item (see [`StateError::may_apply_later`]).
    #[error("text: {0}")]
    TextItemMissing(String),
    /// A text insert names an item id of another author.
    #[error("text item ids must be the action author's")]
    ForeignTextItem,
    /// The transaction's clock cannot issue another stamp.
    #[error("stamp clock overflow")]
    StampOverflow,
    /// A walk of a collection's Merkle search tree went deeper than
    /// [`crate::TREE_LEVEL_MAX`] levels (only a corrupt tree can).
    #[error("merkle search tree deeper than the limit")]
    TreeTooDeep,
    /// A mutating call on a read-only transaction.
    #[error("read-only transaction")]
    ReadOnly,
    /// A transaction hit an error halfway through a change; it can only be dropped.
    #[error("transaction poisoned by an earlier error: {0}")]
    Poisoned(String),
    /// (`slow-reference`) The incremental root hash differs from a full recomputation.
    #[error("incremental root {incremental:?} differs from recomputed {recomputed:?}")]
    ReferenceMismatch {
        /// The root the incremental code produced.
        incremental: Hash,
        /// The root recomputed from every row.
        recomputed: Hash,
    },
}

impl StateError {
    /// Whether the refusal names something that does not exist *yet*: an
    /// entity, a vector element or a text item. Entities, elements and text
    /// items are never removed (removal leaves a tombstone), so the same
    /// action may apply once a concurrent delta creates what it names; a
    /// replica must wait for it instead of refusing the delta for good,
    /// or replicas would decide differently depending on arrival order.
    pub fn may_apply_later(&self) -> bool {
        matches!(self, StateError::UnknownTarget(_) | StateError::UnknownElement | StateError::TextItemMissing(_))
    }

    /// A [`StateError::Corrupt`] for a row that failed to decode.
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl ToString) -> StateError {
        StateError::Corrupt { what: what.into(), reason: reason.to_string() }
    }
}
