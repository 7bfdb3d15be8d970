//! Text entities: a [`TextDoc`] kept as rows of content-defined chunks.
//!
//! A text is stored as the list of its top nodes' hashes (the entity's entry
//! row), a row per node of its chunk tree (its children's hashes) and a row
//! per chunk (the canonical encoding of its items), each named by its hash
//! (see `weft_text::TextRows`). An edit rewrites the chunk it touched, one
//! node of each level above it and the top list, deleting the rows they
//! replace, so a commit writes and hashes a few KiB, not the document. The
//! rows depend only on the text's content, so replicas holding the same text
//! hold byte-identical rows.
//!
//! The entity's own hash covers the document's content hash (the hash of
//! the top list), equal on every replica that applied the same text ops.
//! A document loaded from its rows is checked to hash to what its index row
//! names, and decoded documents are kept between transactions by the
//! `text_cache` module.

use weft_primitives::kv::{KvRead, WriteSet};
use weft_primitives::{Hash, encoding};
use weft_text::{TEXT_NODE_LEVELS, TextDoc, TextError, TextOp};

use crate::error::StateError;
use crate::model::{EntityId, Stamp};
use crate::rows;
use crate::text_cache;

/// A decoded text document.
pub(crate) struct TextEntry {
    // Boxed: a document is large, and the other entries are small.
    pub(crate) doc: Box<TextDoc>,
    /// The content hash it was loaded under (`None` for a text with no rows).
    loaded: Option<Hash>,
}

impl TextEntry {
    /// An empty text, whose rows are all written at its first commit.
    pub(crate) fn new() -> TextEntry {
        let mut doc = Box::new(TextDoc::new());
        doc.track_rows();
        TextEntry { doc, loaded: None }
    }

    /// The text `id` whose content hash the index names as `expected`: from
    /// the cache, or else from its rows (an empty text if it has none yet).
    pub(crate) fn load<K: KvRead + ?Sized>(kv: &K, id: &EntityId, expected: &Hash) -> Result<TextEntry, StateError> {
        // An empty text may have no rows at all, so a cached empty document
        // (whose rows another store wrote) would not match this store's.
        if *expected != empty_text_hash()
            && let Some(doc) = text_cache::take(id, expected)
        {
            return Ok(TextEntry { doc, loaded: Some(*expected) });
        }
        let mut doc = match load_rows(kv, id)? {
            Some(doc) => doc,
            None => return Ok(TextEntry::new()),
        };
        if doc.update_content_hash() != *expected {
            return Err(StateError::corrupt(format!("text {id:?}"), "its rows do not hash to what its index names"));
        }
        Ok(TextEntry { doc: Box::new(doc), loaded: Some(*expected) })
    }

    /// Add the rows changed since the last write to `writes`.
    pub(crate) fn write_rows(&mut self, id: &EntityId, writes: &mut WriteSet) {
        let rows = self.doc.take_rows();
        writes.put(rows::entry_key(id), encoding::encode(&rows.top));
        for (hash, row) in rows.node_rows {
            match row {
                Some(children) => writes.put(rows::text_node_key(id, &hash), encoding::encode(&children)),
                None => writes.delete(rows::text_node_key(id, &hash)),
            }
        }
        for (hash, row) in rows.chunk_rows {
            match row {
                Some(bytes) => writes.put(rows::text_chunk_key(id, &hash), bytes),
                None => writes.delete(rows::text_chunk_key(id, &hash)),
            }
        }
    }

    /// Hand the document back to the cache if a failed transaction left it
    /// as it was loaded: a refused op changes nothing, so a delta that waits
    /// for an item and is retried does not cost a reload from the rows.
    pub(crate) fn keep_if_unchanged(mut self, id: &EntityId) {
        if self.loaded.is_some_and(|loaded| self.doc.update_content_hash() == loaded) {
            self.keep(id);
        }
    }

    /// Hand the document to the cache for the next transaction.
    pub(crate) fn keep(mut self, id: &EntityId) {
        let hash = self.doc.update_content_hash();
        if hash != empty_text_hash() {
            text_cache::put(id, hash, self.doc);
        }
    }

    /// The document's content hash, brought up to date incrementally.
    pub(crate) fn content_hash(&mut self) -> Hash {
        self.doc.update_content_hash()
    }

    /// Apply a (local or remote) op; idempotent.
    pub(crate) fn apply(&mut self, op: &TextOp) -> Result<(), StateError> {
        self.doc.apply(op).map_err(text_error)
    }
}

/// Text `id` read from its rows, not from the cache (`None` if it has no
/// entry row: a text never written is empty): the top list, each level of
/// nodes, then the chunks. The rows must be exactly the chunks of the
/// document they hold.
pub(crate) fn load_rows<K: KvRead + ?Sized>(kv: &K, id: &EntityId) -> Result<Option<TextDoc>, StateError> {
    let what = || format!("text {id:?}");
    let Some(list) = kv.get(&rows::entry_key(id))? else { return Ok(None) };
    let top: Vec<Hash> = encoding::decode(&list).map_err(|e| StateError::corrupt(what(), e))?;
    let mut level = top.clone();
    let mut nodes: Vec<Vec<Hash>> = Vec::new();
    for _ in 0..TEXT_NODE_LEVELS {
        let mut next = Vec::new();
        for node in &level {
            let row = kv
                .get(&rows::text_node_key(id, node))?
                .ok_or_else(|| StateError::corrupt(what(), "a node row is missing"))?;
            let children: Vec<Hash> = encoding::decode(&row).map_err(|e| StateError::corrupt(what(), e))?;
            next.extend_from_slice(&children);
            nodes.push(children);
        }
        level = next;
    }
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(level.len());
    for chunk in &level {
        chunks.push(
            kv.get(&rows::text_chunk_key(id, chunk))?
                .ok_or_else(|| StateError::corrupt(what(), "a chunk row is missing"))?,
        );
    }
    TextDoc::from_rows(&top, &nodes, &chunks).map(Some).map_err(|e| StateError::corrupt(what(), e))
}

/// The entry hash of an empty text.
pub(crate) fn empty_text_hash() -> Hash {
    static EMPTY: std::sync::LazyLock<Hash> = std::sync::LazyLock::new(|| TextDoc::new().content_hash());
    *EMPTY
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
