//! The ordered list of runs, as a two-level structure.
//!
//! Runs sit in blocks (document order), each caching its visible length, so a
//! visible position is found by summing block lengths and scanning one block.
//! Blocks have stable ids; a per-author ordered map from each run's first seq to
//! its block id finds any item by id. Invariants kept by every method here:
//! each run has exactly one index entry, pointing at the block that holds it;
//! `block_pos[id]` is the position of block `id`; cached visible lengths are
//! exact; only an empty document has an empty block.

use std::collections::BTreeMap;

use crate::BLOCK_RUNS_MAX;
use crate::run::{Iid, Run};

/// Where an item is (or, for insertion, a slot before the item at `off`).
/// Ordered by document position while the sequence is not modified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Loc {
    pub(crate) block: usize,
    pub(crate) run: usize,
    pub(crate) off: u32,
}

#[derive(Clone, Debug)]
struct Block {
    id: u32,
    visible: u64,
    runs: Vec<Run>,
}

/// Runs in document order plus the character arena they point into.
#[derive(Clone, Debug)]
pub(crate) struct RunSequence {
    blocks: Vec<Block>,
    /// Block id -> position in `blocks`.
    block_pos: Vec<u32>,
    /// Per interned author: first seq of each run -> block id.
    index: Vec<BTreeMap<u64, u32>>,
    /// Every character ever inserted, in arrival order; runs point into it.
    chars: Vec<char>,
    visible: u64,
    runs: usize,
}

impl Default for RunSequence {
    fn default() -> Self {
        RunSequence {
            blocks: vec![Block { id: 0, visible: 0, runs: Vec::new() }],
            block_pos: vec![0],
            index: Vec::new(),
            chars: Vec::new(),
            visible: 0,
            runs: 0,
        }
    }
}

impl RunSequence {
    /// Visible characters.
    pub(crate) fn visible(&self) -> u64 {
        self.visible
    }

    /// Items held (visible and tombstoned).
    pub(crate) fn items(&self) -> usize {
        self.chars.len()
    }

    /// Runs held.
    pub(crate) fn run_count(&self) -> usize {
        self.runs
    }

    /// The run at `loc` (which must point at a run).
    pub(crate) fn run(&self, loc: Loc) -> Option<&Run> {
        self.blocks.get(loc.block)?.runs.get(loc.run)
    }

    /// The characters of `len` items starting `off` into `run`.
    pub(crate) fn text_of(&self, run: &Run, off: u32, len: u32) -> &[char] {
        let start = run.text_at as usize + off as usize;
        self.chars.get(start..start + len as usize).unwrap_or(&[])
    }

    /// Append characters to the arena; returns the offset of the first.
    pub(crate) fn push_chars(&mut self, text: &str) -> u32 {
        let at = self.chars.len() as u32;
        self.chars.extend(text.chars());
        at
    }

    /// All runs in document order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Run> {
        self.blocks.iter().flat_map(|b| b.runs.iter())
    }

    /// The start of the document (the end when it is empty).
    pub(crate) fn start(&self) -> Loc {
        Loc { block: 0, run: 0, off: 0 }
    }

    /// The first item of the run after the one at `loc`, or the end.
    pub(crate) fn next_run(&self, loc: Loc) -> Loc {
        let Some(block) = self.blocks.get(loc.block) else { return loc };
        if loc.run + 1 < block.runs.len() || loc.block + 1 >= self.blocks.len() {
            Loc { block: loc.block, run: loc.run + 1, off: 0 }
        } else {
            Loc { block: loc.block + 1, run: 0, off: 0 }
        }
    }

    /// The item after the item at `loc`, or the end.
    pub(crate) fn next_item(&self, loc: Loc) -> Loc {
        match self.run(loc) {
            Some(run) if loc.off + 1 < run.len => Loc { off: loc.off + 1, ..loc },
            _ => self.next_run(loc),
        }
    }

    /// The item before the item at `loc`, or `None` at the start.
    pub(crate) fn prev_item(&self, loc: Loc) -> Option<Loc> {
        if loc.off > 0 { Some(Loc { off: loc.off - 1, ..loc }) } else { self.prev_run_end(loc) }
    }

    /// The last item of the run before the one at `loc`, or `None` at the start.
    pub(crate) fn prev_run_end(&self, loc: Loc) -> Option<Loc> {
        let (block, run) = if loc.run > 0 {
            (loc.block, loc.run - 1)
        } else {
            let block = (0..loc.block).rev().find(|&b| !self.blocks[b].runs.is_empty())?;
            (block, self.blocks[block].runs.len() - 1)
        };
        let len = self.blocks.get(block)?.runs.get(run)?.len;
        Some(Loc { block, run, off: len.saturating_sub(1) })
    }

    /// The id of the item at `loc`, if `loc` is not the end.
    pub(crate) fn id_at(&self, loc: Loc) -> Option<Iid> {
        self.run(loc).map(|r| r.id_at(loc.off))
    }

    /// The visible character number `pos` (0-based, `pos < visible`).
    pub(crate) fn locate_visible(&self, pos: u64) -> Option<Loc> {
        let mut rest = pos;
        for (bi, block) in self.blocks.iter().enumerate() {
            if rest >= block.visible {
                rest -= block.visible;
                continue;
            }
            for (ri, run) in block.runs.iter().enumerate() {
                let len = run.visible_len();
                if rest < len {
                    return Some(Loc { block: bi, run: ri, off: rest as u32 });
                }
                rest -= len;
            }
            return None;
        }
        None
    }

    /// Where item `id` is.
    pub(crate) fn locate_id(&self, id: Iid) -> Option<Loc> {
        let map = self.index.get(id.author as usize)?;
        let (&start, &block_id) = map.range(..=id.seq).next_back()?;
        let bi = *self.block_pos.get(block_id as usize)? as usize;
        let block = self.blocks.get(bi)?;
        let ri = block.runs.iter().position(|r| r.author == id.author && r.seq == start)?;
        let run = &block.runs[ri];
        run.contains(id).then(|| Loc { block: bi, run: ri, off: (id.seq - start) as u32 })
    }

    /// Insert `new` in the slot before the item at `slot` (or at the end),
    /// splitting the run there if needed and merging `new` into the run before
    /// it when it continues it.
    pub(crate) fn insert(&mut self, slot: Loc, new: Run) {
        let mut slot = slot;
        if slot.off > 0 {
            self.split(slot);
            slot = Loc { block: slot.block, run: slot.run + 1, off: 0 };
        }
        // Prefer the end of the previous block to the start of this one, so the
        // run before the slot is in the same block and can absorb `new`.
        if slot.run == 0 && slot.block > 0 {
            let prev = slot.block - 1;
            slot = Loc { block: prev, run: self.blocks[prev].runs.len(), off: 0 };
        }
        let Some(block) = self.blocks.get_mut(slot.block) else { return };
        let added = new.visible_len();
        block.visible += added;
        self.visible += added;
        if slot.run > 0
            && let Some(prev) = block.runs.get_mut(slot.run - 1)
            && prev.can_absorb(&new)
        {
            // Typing at the end of one's own run: no new run, no index change.
            prev.len += new.len;
        } else {
            let (author, seq, block_id) = (new.author, new.seq, block.id);
            block.runs.insert(slot.run.min(block.runs.len()), new);
            self.runs += 1;
            self.index_set(author, seq, block_id);
        }
        self.rebalance(slot.block);
    }

    /// Tombstone items `seq .. seq + len` of `author` (all must exist).
    /// Returns how many items changed from visible to deleted.
    pub(crate) fn delete_ids(&mut self, author: u32, seq: u64, len: u64) -> u64 {
        let mut next = seq;
        let end = seq.saturating_add(len);
        let mut removed = 0;
        while next < end {
            let Some(loc) = self.locate_id(Iid { author, seq: next }) else { break };
            let run = &self.blocks[loc.block].runs[loc.run];
            let take = (run.end_seq() - next).min(end - next);
            if !run.deleted {
                removed += take;
                self.tombstone(loc, take as u32);
            }
            next += take;
        }
        removed
    }

    /// Tombstone `len` items of the live run at `loc`, starting at `loc.off`.
    fn tombstone(&mut self, loc: Loc, len: u32) {
        let mut ri = loc.run;
        if loc.off > 0 {
            self.split(loc);
            ri += 1;
        }
        if len < self.blocks[loc.block].runs[ri].len {
            self.split(Loc { block: loc.block, run: ri, off: len });
        }
        let block = &mut self.blocks[loc.block];
        block.runs[ri].deleted = true;
        block.visible -= u64::from(len);
        self.visible -= u64::from(len);
        // Backspacing leaves neighbouring tombstones that continue each other.
        self.merge_with_next(loc.block, ri);
        if ri > 0 {
            self.merge_with_next(loc.block, ri - 1);
        }
        self.rebalance(loc.block);
    }

    /// Merge run `ri + 1` into run `ri` of block `bi` if it continues it.
    fn merge_with_next(&mut self, bi: usize, ri: usize) -> bool {
        let block = &mut self.blocks[bi];
        let Some(next) = block.runs.get(ri + 1) else { return false };
        if !block.runs[ri].can_absorb(next) {
            return false;
        }
        let (author, seq, len) = (next.author, next.seq, next.len);
        block.runs.remove(ri + 1);
        block.runs[ri].len += len;
        self.runs -= 1;
        if let Some(map) = self.index.get_mut(author as usize) {
            map.remove(&seq);
        }
        true
    }

    /// Split the run at `loc` before `loc.off` (0 < off < len).
    fn split(&mut self, loc: Loc) {
        let block = &mut self.blocks[loc.block];
        let tail = block.runs[loc.run].split_off(loc.off);
        let (author, seq, block_id) = (tail.author, tail.seq, block.id);
        block.runs.insert(loc.run + 1, tail);
        self.runs += 1;
        self.index_set(author, seq, block_id);
    }

    /// Split block `bi` in two when it holds more than [`BLOCK_RUNS_MAX`] runs.
    fn rebalance(&mut self, bi: usize) {
        let block = &mut self.blocks[bi];
        if block.runs.len() <= BLOCK_RUNS_MAX {
            return;
        }
        let tail_runs = block.runs.split_off(block.runs.len() / 2);
        let tail_visible: u64 = tail_runs.iter().map(Run::visible_len).sum();
        block.visible -= tail_visible;
        let new_id = self.block_pos.len() as u32;
        for run in &tail_runs {
            self.index_set(run.author, run.seq, new_id);
        }
        self.blocks.insert(bi + 1, Block { id: new_id, visible: tail_visible, runs: tail_runs });
        self.block_pos.push(0);
        for (pos, block) in self.blocks.iter().enumerate().skip(bi + 1) {
            self.block_pos[block.id as usize] = pos as u32;
        }
    }

    fn index_set(&mut self, author: u32, seq: u64, block_id: u32) {
        let author = author as usize;
        if self.index.len() <= author {
            self.index.resize_with(author + 1, BTreeMap::new);
        }
        self.index[author].insert(seq, block_id);
    }

    /// Build a sequence from runs in document order (used by decoding; the runs
    /// must already satisfy the document invariants).
    pub(crate) fn from_runs(runs: Vec<Run>, chars: Vec<char>) -> RunSequence {
        let mut seq = RunSequence { chars, ..RunSequence::default() };
        if runs.is_empty() {
            return seq;
        }
        seq.blocks.clear();
        seq.block_pos.clear();
        // Leave room in every block so the first edits do not split at once.
        let fill = BLOCK_RUNS_MAX * 3 / 4;
        let mut runs = runs.into_iter().peekable();
        while runs.peek().is_some() {
            let id = seq.blocks.len() as u32;
            let chunk: Vec<Run> = runs.by_ref().take(fill).collect();
            let visible: u64 = chunk.iter().map(Run::visible_len).sum();
            for run in &chunk {
                seq.index_set(run.author, run.seq, id);
            }
            seq.runs += chunk.len();
            seq.visible += visible;
            seq.block_pos.push(id);
            seq.blocks.push(Block { id, visible, runs: chunk });
        }
        seq
    }
}
