//! Runs: consecutive items of one author stored as one record.
//!
//! A run holds items `(author, seq) .. (author, seq + len)` where every item after
//! the first has the previous item as `origin_left`, all share one
//! `origin_right` and one deleted flag, and their characters are contiguous in
//! the document's character arena. Splitting a run anywhere yields two runs with
//! the same meaning, so runs can be split on demand and merged back when adjacent.

/// An interned item id: an index into the document's author table and a seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Iid {
    pub(crate) author: u32,
    pub(crate) seq: u64,
}

/// Marks an absent origin in [`Run`]'s packed fields (never a real author index:
/// the author table is smaller than this).
const NO_AUTHOR: u32 = u32::MAX;

/// One run. Fields are packed by hand (absent origins as [`NO_AUTHOR`]) so that a
/// run is 48 bytes: blocks are scanned run by run on every edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) author: u32,
    pub(crate) len: u32,
    /// Offset of the first character in the arena.
    pub(crate) text_at: u32,
    left_author: u32,
    right_author: u32,
    pub(crate) deleted: bool,
    pub(crate) seq: u64,
    left_seq: u64,
    right_seq: u64,
}

impl Run {
    pub(crate) fn new(
        id: Iid,
        len: u32,
        text_at: u32,
        origin_left: Option<Iid>,
        origin_right: Option<Iid>,
        deleted: bool,
    ) -> Run {
        let (left_author, left_seq) = pack(origin_left);
        let (right_author, right_seq) = pack(origin_right);
        Run { author: id.author, len, text_at, left_author, right_author, deleted, seq: id.seq, left_seq, right_seq }
    }

    /// The id of the item at `offset` within the run.
    pub(crate) fn id_at(&self, offset: u32) -> Iid {
        Iid { author: self.author, seq: self.seq + u64::from(offset) }
    }

    /// The id of the last item.
    pub(crate) fn last_id(&self) -> Iid {
        self.id_at(self.len.saturating_sub(1))
    }

    /// The seq one past the last item.
    pub(crate) fn end_seq(&self) -> u64 {
        self.seq + u64::from(self.len)
    }

    /// Whether `id` is one of this run's items.
    pub(crate) fn contains(&self, id: Iid) -> bool {
        id.author == self.author && id.seq >= self.seq && id.seq < self.end_seq()
    }

    /// The `origin_left` of the first item.
    pub(crate) fn origin_left(&self) -> Option<Iid> {
        unpack(self.left_author, self.left_seq)
    }

    /// The `origin_right` shared by all items.
    pub(crate) fn origin_right(&self) -> Option<Iid> {
        unpack(self.right_author, self.right_seq)
    }

    /// The `origin_left` of the item at `offset`.
    pub(crate) fn origin_left_at(&self, offset: u32) -> Option<Iid> {
        if offset == 0 { self.origin_left() } else { Some(self.id_at(offset - 1)) }
    }

    /// Characters that count towards the visible text.
    pub(crate) fn visible_len(&self) -> u64 {
        if self.deleted { 0 } else { u64::from(self.len) }
    }

    /// Items `offset .. offset + len` as a run of their own (same meaning).
    pub(crate) fn slice(&self, offset: u32, len: u32) -> Run {
        Run::new(
            self.id_at(offset),
            len,
            self.text_at + offset,
            self.origin_left_at(offset),
            self.origin_right(),
            self.deleted,
        )
    }

    /// Cut the run before `offset` (0 < offset < len): `self` keeps the items
    /// before, the returned run holds the rest.
    pub(crate) fn split_off(&mut self, offset: u32) -> Run {
        let tail = Run::new(
            self.id_at(offset),
            self.len - offset,
            self.text_at + offset,
            Some(self.id_at(offset - 1)),
            self.origin_right(),
            self.deleted,
        );
        self.len = offset;
        tail
    }

    /// Whether `next`, placed right after `self`, continues it as one run (same
    /// meaning; the arena condition is checked separately where it matters).
    pub(crate) fn continues_into(&self, next: &Run) -> bool {
        next.author == self.author
            && next.seq == self.end_seq()
            && next.origin_left() == Some(self.last_id())
            && next.right_author == self.right_author
            && next.right_seq == self.right_seq
            && next.deleted == self.deleted
    }

    /// Whether `next` can be stored merged into `self`: it continues it and its
    /// characters follow in the arena.
    pub(crate) fn can_absorb(&self, next: &Run) -> bool {
        self.continues_into(next) && u64::from(self.text_at) + u64::from(self.len) == u64::from(next.text_at)
    }
}

fn pack(id: Option<Iid>) -> (u32, u64) {
    match id {
        Some(id) => (id.author, id.seq),
        None => (NO_AUTHOR, 0),
    }
}

fn unpack(author: u32, seq: u64) -> Option<Iid> {
    if author == NO_AUTHOR { None } else { Some(Iid { author, seq }) }
}
