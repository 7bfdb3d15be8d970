//! [`TextDoc`]: local edits, remote operations and reads over the run sequence.
//!
//! Every mutating call validates its whole input before it changes anything, so
//! a refused call leaves the document as it was.

use std::collections::HashMap;
use std::fmt;

use weft_primitives::{Hash, PublicKey};

use crate::digest::Digest;
use crate::error::TextError;
use crate::integrate::{find_slot, item_id};
use crate::run::{Iid, Run};
use crate::sequence::RunSequence;
use crate::{DELETE_RANGES_MAX, DOC_CHARS_MAX, ItemId, TEXT_OP_CHARS_MAX, TextOp, TextRows, lane_start};

/// The interned table of author lanes: index -> (key, lane), (key, lane) ->
/// index, and each lane's next seq. Within the document an "author" index
/// names one lane of one author: runs never span lanes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Authors {
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) lanes: Vec<u32>,
    pub(crate) by_key: HashMap<(PublicKey, u32), u32>,
    pub(crate) next_seq: Vec<u64>,
}

impl Authors {
    fn index_of(&self, key: &PublicKey, lane: u32) -> Option<u32> {
        self.by_key.get(&(*key, lane)).copied()
    }

    fn next_seq_of(&self, index: u32) -> u64 {
        self.next_seq.get(index as usize).copied().unwrap_or(0)
    }

    fn intern(&mut self, key: PublicKey, lane: u32) -> u32 {
        if let Some(index) = self.index_of(&key, lane) {
            return index;
        }
        // Fewer lanes than items, and items are bounded by DOC_CHARS_MAX < u32::MAX.
        let index = self.keys.len() as u32;
        self.keys.push(key);
        self.lanes.push(lane);
        self.by_key.insert((key, lane), index);
        self.next_seq.push(lane_start(lane));
        index
    }

    /// The interned form of `id`, if every seq of its lane up to it has been seen.
    fn resolve(&self, id: ItemId) -> Option<Iid> {
        let author = self.index_of(&id.author, id.lane())?;
        (id.seq < self.next_seq_of(author)).then_some(Iid { author, seq: id.seq })
    }

    fn resolve_origin(&self, id: Option<ItemId>) -> Result<Option<Iid>, TextError> {
        match id {
            Some(id) => self.resolve(id).map(Some).ok_or(TextError::UnknownId(id)),
            None => Ok(None),
        }
    }
}

/// The seq after the last of `chars` items from `id`, which must all lie in
/// `id`'s lane.
fn lane_end(id: ItemId, chars: usize) -> Result<u64, TextError> {
    let lane_end = lane_start(id.lane()).saturating_add(1 << crate::LANE_SHIFT);
    match id.seq.checked_add(chars as u64) {
        Some(end) if end <= lane_end => Ok(end),
        _ => Err(TextError::SeqOverflow(id)),
    }
}

/// A replicated text document. See the crate docs for the guarantees.
#[derive(Clone, Default)]
pub struct TextDoc {
    pub(crate) authors: Authors,
    pub(crate) seq: RunSequence,
    /// The chunked content hash, updated by [`TextDoc::update_content_hash`].
    digest: Digest,
}

impl TextDoc {
    /// An empty document.
    pub fn new() -> TextDoc {
        TextDoc::default()
    }

    pub(crate) fn from_parts(authors: Authors, seq: RunSequence) -> TextDoc {
        TextDoc { authors, seq, digest: Digest::default() }
    }

    /// Insert `text` at char position `pos` as `author` in lane 0; returns
    /// the op to replicate.
    pub fn insert(&mut self, author: PublicKey, pos: usize, text: &str) -> Result<TextOp, TextError> {
        self.insert_in_lane(author, 0, pos, text)
    }

    /// Insert `text` at char position `pos` as `author`, numbering its items
    /// in `lane` (a device's own lane: see [`ItemId`]); returns the op to
    /// replicate.
    pub fn insert_in_lane(
        &mut self,
        author: PublicKey,
        lane: u32,
        pos: usize,
        text: &str,
    ) -> Result<TextOp, TextError> {
        let chars = check_text(text)?;
        let len = self.len_chars();
        if pos > len {
            return Err(TextError::PositionOutOfBounds { pos, len });
        }
        self.check_room(chars)?;
        let first = self.next_seq_in_lane(&author, lane);
        let id = ItemId { author, seq: first };
        let end = lane_end(id, chars)?;

        // Immediately after the visible char `pos - 1`, before any tombstones after it.
        let (slot, left) = if pos == 0 {
            (self.seq.start(), None)
        } else {
            let loc = self.seq.locate_visible(pos as u64 - 1).ok_or(TextError::PositionOutOfBounds { pos, len })?;
            (self.seq.next_item(loc), self.seq.id_at(loc))
        };
        let right = self.seq.id_at(slot);
        let origin_left = self.public_id(left)?;
        let origin_right = self.public_id(right)?;

        let index = self.authors.intern(author, lane);
        let text_at = self.seq.push_chars(text);
        self.seq.insert(slot, Run::new(Iid { author: index, seq: first }, chars as u32, text_at, left, right, false));
        self.authors.next_seq[index as usize] = end;
        self.digest.note(index, first, chars as u64, true);
        Ok(TextOp::Insert { id, origin_left, origin_right, text: text.to_owned() })
    }

    /// Delete `len` chars from char position `pos`; returns the op to replicate.
    ///
    /// `_author` is the deleting member; it is not recorded, since a delete only
    /// names the items it removes. Deleting nothing (`len == 0`) returns an empty
    /// delete. A selection so fragmented that it needs more than
    /// [`DELETE_RANGES_MAX`] id ranges is refused.
    pub fn delete(&mut self, _author: PublicKey, pos: usize, len: usize) -> Result<TextOp, TextError> {
        let doc_len = self.len_chars();
        if pos.checked_add(len).is_none_or(|end| end > doc_len) {
            return Err(TextError::RangeOutOfBounds { pos, len, doc_len });
        }
        if len == 0 {
            return Ok(TextOp::Delete { ranges: Vec::new() });
        }
        let ranges = self.visible_ranges(pos, len).ok_or(TextError::RangeOutOfBounds { pos, len, doc_len })?;
        if ranges.len() > DELETE_RANGES_MAX {
            return Err(TextError::TooManyDeleteRanges { ranges: ranges.len(), max: DELETE_RANGES_MAX });
        }
        let mut public = Vec::with_capacity(ranges.len());
        for &(start, count) in &ranges {
            public.push((item_id(&self.authors.keys, start)?, count));
        }
        for &(start, count) in &ranges {
            self.seq.delete_ids(start.author, start.seq, count);
            self.digest.note(start.author, start.seq, count, false);
        }
        Ok(TextOp::Delete { ranges: public })
    }

    /// Apply a remote op. Ops must arrive in causal order; re-applying an applied
    /// op is a no-op; an op naming an unknown id is refused and changes nothing.
    pub fn apply(&mut self, op: &TextOp) -> Result<(), TextError> {
        match op {
            TextOp::Insert { id, origin_left, origin_right, text } => {
                self.apply_insert(*id, *origin_left, *origin_right, text)
            }
            TextOp::Delete { ranges } => self.apply_delete(ranges),
        }
    }

    fn apply_insert(
        &mut self,
        id: ItemId,
        origin_left: Option<ItemId>,
        origin_right: Option<ItemId>,
        text: &str,
    ) -> Result<(), TextError> {
        let chars = check_text(text)?;
        let end = lane_end(id, chars)?;
        let author = self.authors.index_of(&id.author, id.lane());
        let next = author.map_or(lane_start(id.lane()), |a| self.authors.next_seq_of(a));
        if id.seq < next {
            return match author {
                Some(a) if end <= next && self.is_present(a, id.seq, end, (origin_left, origin_right), text) => Ok(()),
                _ => Err(TextError::IdConflict(id)),
            };
        }
        if id.seq > next {
            return Err(TextError::SeqGap { author: id.author, expected: next, got: id.seq });
        }
        let left = self.authors.resolve_origin(origin_left)?;
        let right = self.authors.resolve_origin(origin_right)?;
        self.check_room(chars)?;
        let slot = find_slot(&self.seq, &self.authors.keys, id, left, right)?;

        let index = self.authors.intern(id.author, id.lane());
        let text_at = self.seq.push_chars(text);
        self.seq.insert(slot, Run::new(Iid { author: index, seq: id.seq }, chars as u32, text_at, left, right, false));
        self.authors.next_seq[index as usize] = end;
        self.digest.note(index, id.seq, chars as u64, true);
        Ok(())
    }

    /// Whether items `seq .. end` of `author` already hold exactly this insert.
    fn is_present(
        &self,
        author: u32,
        seq: u64,
        end: u64,
        origins: (Option<ItemId>, Option<ItemId>),
        text: &str,
    ) -> bool {
        let (Ok(mut expected_left), Ok(right)) =
            (self.authors.resolve_origin(origins.0), self.authors.resolve_origin(origins.1))
        else {
            return false;
        };
        let mut chars = text.chars();
        let mut next = seq;
        // Each pass covers at least one id of a range of at most TEXT_OP_CHARS_MAX.
        while next < end {
            let Some(loc) = self.seq.locate_id(Iid { author, seq: next }) else { return false };
            let Some(run) = self.seq.run(loc) else { return false };
            if run.origin_left_at(loc.off) != expected_left || run.origin_right() != right {
                return false;
            }
            let take = (run.len - loc.off).min((end - next) as u32);
            if self.seq.text_of(run, loc.off, take).iter().any(|stored| chars.next() != Some(*stored)) {
                return false;
            }
            next += u64::from(take);
            expected_left = Some(Iid { author, seq: next - 1 });
        }
        true
    }

    fn apply_delete(&mut self, ranges: &[(ItemId, u64)]) -> Result<(), TextError> {
        if ranges.len() > DELETE_RANGES_MAX {
            return Err(TextError::TooManyDeleteRanges { ranges: ranges.len(), max: DELETE_RANGES_MAX });
        }
        let mut resolved = Vec::with_capacity(ranges.len());
        for &(start, count) in ranges {
            if count == 0 {
                return Err(TextError::EmptyDeleteRange(start));
            }
            let author = self.authors.index_of(&start.author, start.lane()).ok_or(TextError::UnknownId(start))?;
            let next = self.authors.next_seq_of(author);
            if start.seq.checked_add(count).is_none_or(|end| end > next) {
                let first_unknown = ItemId { author: start.author, seq: next.max(start.seq) };
                return Err(TextError::UnknownId(first_unknown));
            }
            resolved.push((author, start.seq, count));
        }
        for (author, seq, count) in resolved {
            if self.seq.delete_ids(author, seq, count) > 0 {
                self.digest.note(author, seq, count, false);
            }
        }
        Ok(())
    }

    /// Visible characters.
    pub fn len_chars(&self) -> usize {
        self.seq.visible() as usize
    }

    /// Whether there are no visible characters.
    pub fn is_empty(&self) -> bool {
        self.seq.visible() == 0
    }

    /// Items held: every character ever inserted, tombstones included.
    pub fn item_count(&self) -> usize {
        self.seq.items()
    }

    /// Runs currently stored (after on-demand splitting; for diagnostics).
    pub fn run_count(&self) -> usize {
        self.seq.run_count()
    }

    /// The visible text.
    // The inherent method is part of the API weft-state builds on; it also
    // sizes the string up front, which the `Display` path cannot.
    #[allow(clippy::inherent_to_string_shadow_display)]
    pub fn to_string(&self) -> String {
        let mut out = String::with_capacity(self.len_chars());
        for run in self.seq.iter().filter(|r| !r.deleted) {
            out.extend(self.seq.text_of(run, 0, run.len));
        }
        out
    }

    /// `len` visible chars from char position `pos`.
    pub fn slice(&self, pos: usize, len: usize) -> Result<String, TextError> {
        let doc_len = self.len_chars();
        if pos.checked_add(len).is_none_or(|end| end > doc_len) {
            return Err(TextError::RangeOutOfBounds { pos, len, doc_len });
        }
        let mut out = String::with_capacity(len);
        if len == 0 {
            return Ok(out);
        }
        let mut cur = self.seq.locate_visible(pos as u64).ok_or(TextError::RangeOutOfBounds { pos, len, doc_len })?;
        let mut remaining = len as u64;
        while remaining > 0 {
            let Some(run) = self.seq.run(cur) else { break };
            if !run.deleted {
                let take = u64::from(run.len - cur.off).min(remaining);
                out.extend(self.seq.text_of(run, cur.off, take as u32));
                remaining -= take;
            }
            cur = self.seq.next_run(cur);
        }
        Ok(out)
    }

    /// The content hash: a Merkle digest over the document's content-defined
    /// chunks (see the `digest` module), equal on every replica that applied
    /// the same set of ops, whatever the order and however runs were split.
    ///
    /// Free when [`TextDoc::update_content_hash`] ran since the last change;
    /// otherwise computed from scratch in O(items), leaving the document alone.
    pub fn content_hash(&self) -> Hash {
        self.digest.current().unwrap_or_else(|| Digest::compute(&self.authors, &self.seq))
    }

    /// [`TextDoc::content_hash`], kept up to date incrementally: the first
    /// call costs O(items), each later one rehashes only the chunks and groups
    /// the edits since the previous call touched.
    pub fn update_content_hash(&mut self) -> Hash {
        self.digest.refresh(&self.authors, &self.seq)
    }

    /// Log the rows that change from now on, for [`TextDoc::take_rows`].
    pub fn track_rows(&mut self) {
        self.digest.track_rows();
    }

    /// The document's top list, and the node and chunk rows that changed
    /// since the last call (or, the first time after [`TextDoc::track_rows`]
    /// on a document whose hash was not yet computed, all of them). Brings
    /// the content hash up to date.
    pub fn take_rows(&mut self) -> TextRows {
        self.update_content_hash();
        let log = self.digest.take_rows();
        TextRows {
            top: self.digest.top(),
            node_rows: log.nodes.into_iter().collect(),
            chunk_rows: log.chunks.into_iter().collect(),
        }
    }

    /// Load a document kept as rows: `top` its top list; `nodes` the
    /// children of every node, level by level from the top, each level in
    /// order (as a loader reads them: see [`crate::TEXT_NODE_LEVELS`]);
    /// `chunks` every chunk's encoding in order. The rows must be exactly the
    /// ones this document's own chunking gives (checked), so a later
    /// [`TextDoc::take_rows`] names the rows to delete correctly. Returns the
    /// document with row logging on and nothing logged.
    pub fn from_rows(top: &[Hash], nodes: &[Vec<Hash>], chunks: &[Vec<u8>]) -> Result<TextDoc, TextError> {
        let mut doc = crate::chunk::decode_chunks(chunks)?;
        doc.track_rows();
        doc.update_content_hash();
        let _ = doc.digest.take_rows();
        if doc.digest.top() != top || doc.digest.tree() != nodes {
            return Err(TextError::InvalidEncoding("stored rows are not the chunks of the document they hold"));
        }
        Ok(doc)
    }

    /// The canonical encoding of the full state, tombstones included.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    /// Decode a canonical encoding; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<TextDoc, TextError> {
        crate::codec::decode(bytes)
    }

    /// The seq `author`'s next inserted char will get (0 for an unknown author).
    pub fn next_seq(&self, author: &PublicKey) -> u64 {
        self.next_seq_in_lane(author, 0)
    }

    /// The seq `author`'s next insert in `lane` gets.
    pub fn next_seq_in_lane(&self, author: &PublicKey, lane: u32) -> u64 {
        self.authors.index_of(author, lane).map_or(lane_start(lane), |a| self.authors.next_seq_of(a))
    }

    /// The id ranges of the visible chars `pos .. pos + len`, merged where ids run on.
    fn visible_ranges(&self, pos: usize, len: usize) -> Option<Vec<(Iid, u64)>> {
        let mut cur = self.seq.locate_visible(pos as u64)?;
        let mut remaining = len as u64;
        let mut ranges: Vec<(Iid, u64)> = Vec::new();
        while remaining > 0 {
            let run = self.seq.run(cur)?;
            if !run.deleted {
                let take = u64::from(run.len - cur.off).min(remaining);
                let start = run.id_at(cur.off);
                match ranges.last_mut() {
                    Some((prev, count)) if prev.author == start.author && prev.seq + *count == start.seq => {
                        *count += take;
                    }
                    _ => ranges.push((start, take)),
                }
                remaining -= take;
            }
            cur = self.seq.next_run(cur);
        }
        Some(ranges)
    }

    fn public_id(&self, id: Option<Iid>) -> Result<Option<ItemId>, TextError> {
        id.map(|id| item_id(&self.authors.keys, id)).transpose()
    }

    fn check_room(&self, chars: usize) -> Result<(), TextError> {
        let total = self.seq.items().saturating_add(chars);
        if total > DOC_CHARS_MAX {
            return Err(TextError::DocumentTooLarge { chars: total, max: DOC_CHARS_MAX });
        }
        Ok(())
    }
}

/// The char count of an insert's text, within bounds.
fn check_text(text: &str) -> Result<usize, TextError> {
    // A char is at most 4 bytes: refuse huge strings before counting them.
    if text.len() / 4 > TEXT_OP_CHARS_MAX {
        return Err(TextError::TextTooLong { chars: text.len() / 4, max: TEXT_OP_CHARS_MAX });
    }
    let chars = text.chars().count();
    if chars == 0 {
        return Err(TextError::EmptyText);
    }
    if chars > TEXT_OP_CHARS_MAX {
        return Err(TextError::TextTooLong { chars, max: TEXT_OP_CHARS_MAX });
    }
    Ok(chars)
}

impl fmt::Display for TextDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for run in self.seq.iter().filter(|r| !r.deleted) {
            for c in self.seq.text_of(run, 0, run.len) {
                fmt::Write::write_char(f, *c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TextDoc {
    // A summary: a document can hold megabytes of text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextDoc")
            .field("chars", &self.len_chars())
            .field("items", &self.seq.items())
            .field("runs", &self.seq.run_count())
            .field("authors", &self.authors.keys.len())
            .finish()
    }
}
