//! Text entities: a [`TextDoc`] kept as the entity's entry.
//!
//! Persistence is the simplest that is correct: the whole canonical encoding
//! of the document is the entry row, so a commit that touches a text costs
//! O(document) to decode and encode (once per transaction, however many text
//! ops it holds: the decoded document stays in the transaction's overlay).
//! The entity's own hash covers the document's `content_hash`, a Merkle
//! digest over content-defined chunks that is equal on every replica that
//! applied the same text ops; a document kept decoded rehashes only the
//! chunks an edit touched.

use weft_primitives::Hash;
use weft_text::{TextDoc, TextError, TextOp};

use crate::error::StateError;
use crate::model::Stamp;

/// A decoded text document.
pub(crate) struct TextEntry {
    // Boxed: a document is large, and the other entries are small.
    pub(crate) doc: Box<TextDoc>,
}

impl TextEntry {
    pub(crate) fn new() -> TextEntry {
        TextEntry { doc: Box::new(TextDoc::new()) }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<TextEntry, TextError> {
        Ok(TextEntry { doc: Box::new(TextDoc::decode(bytes)?) })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        self.doc.encode()
    }

    /// The document's content hash, brought up to date incrementally (the
    /// first call on a freshly decoded document costs O(items)).
    pub(crate) fn content_hash(&mut self) -> Hash {
        self.doc.update_content_hash()
    }

    /// Apply a (local or remote) op; idempotent.
    pub(crate) fn apply(&mut self, op: &TextOp) -> Result<(), StateError> {
        self.doc.apply(op).map_err(text_error)
    }
}

/// The entry hash of an empty text.
pub(crate) fn empty_text_hash() -> Hash {
    TextDoc::new().content_hash()
}

/// An insert may only name items of the action's author: otherwise one
/// member could claim ids another member will use, and the two inserts
/// would conflict.
pub(crate) fn check_op(op: &TextOp, stamp: &Stamp) -> Result<(), StateError> {
    match op {
        TextOp::Insert { id, .. } if id.author != stamp.author => Err(StateError::ForeignTextItem),
        TextOp::Insert { .. } | TextOp::Delete { .. } => Ok(()),
    }
}

/// A text error as a state error; an item not present yet is told apart
/// (see [`StateError::may_apply_later`]).
pub(crate) fn text_error(error: TextError) -> StateError {
    match error {
        TextError::UnknownId(_) | TextError::SeqGap { .. } => StateError::TextItemMissing(error.to_string()),
        other => StateError::Text(other.to_string()),
    }
}
