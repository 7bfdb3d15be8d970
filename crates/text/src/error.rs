//! Why a text operation, a position or an encoding was refused.

use weft_primitives::PublicKey;
use weft_primitives::encoding::DecodeError;

use crate::ItemId;

/// Every way a [`crate::TextDoc`] call can refuse its input. A refused call
/// leaves the document unchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    /// An insert position beyond the end of the text.
    #[error("position {pos} is beyond the text length {len}")]
    PositionOutOfBounds {
        /// The requested position, in chars.
        pos: usize,
        /// The text length, in chars.
        len: usize,
    },
    /// A delete or slice range that reaches beyond the end of the text.
    #[error("range {pos}+{len} reaches beyond the text length {doc_len}")]
    RangeOutOfBounds {
        /// Start of the range, in chars.
        pos: usize,
        /// Length of the range, in chars.
        len: usize,
        /// The text length, in chars.
        doc_len: usize,
    },
    /// An insert with no characters.
    #[error("an insert must carry at least one character")]
    EmptyText,
    /// An insert with more than [`crate::TEXT_OP_CHARS_MAX`] characters.
    #[error("insert of {chars} chars exceeds the {max}-char limit")]
    TextTooLong {
        /// Characters in the insert.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A delete with more than [`crate::DELETE_RANGES_MAX`] ranges.
    #[error("delete of {ranges} id ranges exceeds the {max}-range limit")]
    TooManyDeleteRanges {
        /// Ranges in the delete.
        ranges: usize,
        /// The limit.
        max: usize,
    },
    /// A delete range of length zero.
    #[error("delete range starting at {0:?} is empty")]
    EmptyDeleteRange(ItemId),
    /// The document would hold more than [`crate::DOC_CHARS_MAX`] items.
    #[error("document would hold {chars} items, over the {max}-item limit")]
    DocumentTooLarge {
        /// Items the document would hold.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// An operation names an id this replica has not seen (as an origin or in a delete range).
    #[error("unknown item id {0:?}")]
    UnknownId(ItemId),
    /// An insert whose first seq is beyond its author's next seq: an earlier insert of the
    /// same author is missing (causal delivery was broken).
    #[error("insert by {author:?} starts at seq {got}, expected {expected}")]
    SeqGap {
        /// The author.
        author: PublicKey,
        /// The author's next seq on this replica.
        expected: u64,
        /// The seq the insert starts at.
        got: u64,
    },
    /// An insert reuses ids that are already present for different content or origins
    /// (e.g. one key editing on two replicas at once).
    #[error("insert at {0:?} reuses ids already present with different content")]
    IdConflict(ItemId),
    /// An insert whose `origin_right` is not right of its `origin_left`.
    #[error("origin_right {right:?} is not right of origin_left {left:?}")]
    OriginsOutOfOrder {
        /// The insert's left origin.
        left: ItemId,
        /// The insert's right origin.
        right: ItemId,
    },
    /// An author's sequence numbers would overflow `u64`.
    #[error("sequence numbers of the insert at {0:?} overflow")]
    SeqOverflow(ItemId),
    /// Bytes that are not a borsh encoding of a document.
    #[error("malformed text document: {0}")]
    Malformed(#[from] DecodeError),
    /// An encoding with a version this code does not know.
    #[error("unsupported text document encoding version {0}")]
    UnsupportedVersion(u8),
    /// A well-formed encoding of something that is not a canonical document state.
    #[error("invalid text document encoding: {0}")]
    InvalidEncoding(&'static str),
}
