//! A shared document on the RGA text CRDT: insert and delete by character
//! position, read the whole text. Concurrent edits on different nodes merge
//! without losing either side's characters.

use serde::Serialize;
use weft_sdk::prelude::*;

/// The app state: one document.
#[app::state]
pub struct CollabText {
    document: Text,
}

/// Edits, for subscribers.
#[app::event]
pub enum Event {
    /// Characters were inserted.
    Inserted {
        /// Character position.
        pos: u64,
        /// The inserted text.
        text: String,
    },
    /// Characters were deleted.
    Deleted {
        /// Character position.
        pos: u64,
        /// Number of characters.
        len: u64,
    },
}

/// Why an edit was refused.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub enum EditError {
    /// The position (or range) is past the end of the document.
    OutOfRange {
        /// The position asked for.
        pos: u64,
        /// The characters the edit spans (0 for an insert).
        len: u64,
        /// The document's length.
        document_len: u64,
    },
}

#[app::logic]
impl CollabText {
    /// An empty document.
    #[app::init]
    pub fn init() -> Self {
        Self::create()
    }

    /// Insert `text` before character `pos` (`pos == len()` appends).
    pub fn insert(&mut self, pos: u64, text: String) -> Result<(), EditError> {
        let document_len = self.document.len();
        if pos > document_len {
            return Err(EditError::OutOfRange { pos, len: 0, document_len });
        }
        self.document.insert(pos, &text);
        app::emit!(Event::Inserted { pos, text });
        Ok(())
    }

    /// Delete `len` characters from `pos`.
    pub fn delete(&mut self, pos: u64, len: u64) -> Result<(), EditError> {
        let document_len = self.document.len();
        if pos.checked_add(len).is_none_or(|end| end > document_len) {
            return Err(EditError::OutOfRange { pos, len, document_len });
        }
        self.document.delete(pos, len);
        app::emit!(Event::Deleted { pos, len });
        Ok(())
    }

    /// The whole document.
    pub fn read(&self) -> String {
        self.document.read()
    }

    /// The length in characters.
    #[allow(clippy::len_without_is_empty)] // `read` answers emptiness; one fewer export.
    pub fn len(&self) -> u64 {
        self.document.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::{self, CallError, json};

    #[test]
    fn edits_by_character_position() {
        testing::reset();
        let mut doc = CollabText::init();
        doc.insert(0, "héllo".into()).unwrap();
        doc.insert(5, " wörld".into()).unwrap();
        doc.delete(0, 1).unwrap();
        doc.insert(0, "H".into()).unwrap();
        assert_eq!(doc.read(), "Héllo wörld");
        assert_eq!(doc.len(), 11);
        let kinds: Vec<String> = testing::take_events().into_iter().map(|event| event.kind).collect();
        assert_eq!(kinds, ["Inserted", "Inserted", "Deleted", "Inserted"]);
    }

    #[test]
    fn out_of_range_edits_are_typed_errors() {
        testing::reset();
        let mut doc = CollabText::init();
        doc.insert(0, "abc".into()).unwrap();
        assert_eq!(doc.insert(4, "x".into()), Err(EditError::OutOfRange { pos: 4, len: 0, document_len: 3 }));
        assert_eq!(doc.delete(2, 2), Err(EditError::OutOfRange { pos: 2, len: 2, document_len: 3 }));
        assert_eq!(doc.delete(1, u64::MAX), Err(EditError::OutOfRange { pos: 1, len: u64::MAX, document_len: 3 }));
        assert_eq!(doc.read(), "abc");
    }

    #[test]
    fn calls_return_json_errors() {
        testing::reset();
        testing::call::<CollabText>("init", json!({})).unwrap();
        testing::call::<CollabText>("insert", json!({ "pos": 0, "text": "hi" })).unwrap();
        assert_eq!(testing::call::<CollabText>("read", json!({})), Ok(json!("hi")));
        assert_eq!(
            testing::call::<CollabText>("delete", json!({ "pos": 1, "len": 5 })),
            Err(CallError::App(json!({ "OutOfRange": { "pos": 1, "len": 5, "document_len": 2 } })))
        );
    }

    #[test]
    fn concurrent_edits_converge_and_keep_both_sides() {
        testing::reset();
        let mut doc = CollabText::init();
        doc.insert(0, "base".into()).unwrap();
        let other = testing::add_node();
        testing::sync();
        doc.insert(0, "left ".into()).unwrap();
        testing::on_node(other, || CollabText::load().insert(4, " right".into())).unwrap();
        testing::sync();
        let here = doc.read();
        let there = testing::on_node(other, || CollabText::load().read());
        assert_eq!(here, there);
        assert_eq!(here, "left base right");
    }

    #[test]
    fn read_and_len_are_views() {
        testing::reset();
        testing::call::<CollabText>("init", json!({})).unwrap();
        let exports = <CollabText as weft_sdk::App>::EXPORTS;
        for name in ["read", "len"] {
            assert!(exports.iter().any(|export| export.name == name && export.kind == weft_sdk::MethodKind::View));
        }
    }
}
