//! [`Text`]: collaborative text (RGA), addressed by character position.

use std::marker::PhantomData;

use weft_abi::{CollectionId, CrdtKind, StateCall, StateReply};

use super::{handle, host, host_u64, host_unit, unexpected};

/// A shared document. Positions and lengths count characters (Unicode
/// scalar values), not bytes.
pub struct Text {
    id: CollectionId,
    _types: PhantomData<()>,
}

handle!(Text, CrdtKind::Text);

impl Text {
    /// Insert `value` before character `pos` (`pos == len` appends; past the
    /// end aborts the call).
    pub fn insert(&mut self, pos: u64, value: &str) {
        host_unit(StateCall::TextInsert { text: self.id, pos, value: value.to_owned() });
    }

    /// Append `value`.
    pub fn push_str(&mut self, value: &str) {
        let end = self.len();
        self.insert(end, value);
    }

    /// Delete `len` characters from `pos` (past the end aborts the call).
    pub fn delete(&mut self, pos: u64, len: u64) {
        host_unit(StateCall::TextDelete { text: self.id, pos, len });
    }

    /// The whole text.
    pub fn read(&self) -> String {
        match host(StateCall::TextRead { text: self.id }) {
            StateReply::Text(text) => text,
            other => unexpected(&other, "text"),
        }
    }

    /// The length in characters.
    pub fn len(&self) -> u64 {
        host_u64(StateCall::TextLen { text: self.id })
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
