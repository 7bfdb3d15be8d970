//! The content hash of a document: a Merkle tree over content-defined
//! chunks, kept up to date edit by edit.
//!
//! # Chunks and nodes
//!
//! Whether an item *starts a chunk* depends on its id alone: a mix of the
//! author key and the seq, true for one item in [`CHUNK_ITEMS_MEAN`] on
//! average. A chunk holds its start item and the items after it up to the
//! next start item; the *head* chunk holds the items before the first start
//! item (possibly none).
//!
//! Each chunk also has a *height*, read from the same mix: a chunk start
//! reaches height 1 with odds 1 in [`NODE_FANOUT_MEAN`], height 2 with odds 1
//! in its square, up to [`NODE_LEVELS`]; the head has the full height. A
//! chunk of height at least `l` starts a node of level `l`, which holds the
//! nodes of level `l - 1` (the chunks, at level 1) from it up to the next
//! chunk of height at least `l`. The nodes of the top level are the roots.
//!
//! Since items are never removed and starts and heights are properties of
//! the items, an edit changes only the chunk it lands in, plus the new
//! chunks its own start items open (splitting the chunk they land in), and
//! the nodes above those. Chunks never merge.
//!
//! # Hashes
//!
//! - chunk hash: `H(chunk encoding)`, where the encoding is the canonical
//!   form of the chunk's items alone (see `chunk::encode_chunk`);
//! - node hash: `H(level, its children's hashes, in order)`;
//! - content hash: `H(the top level's node hashes, in order)`.
//!
//! All of it depends only on the document's items and their order, so
//! replicas holding the same state agree on it whatever the edit history.
//! An edit rehashes one chunk (about [`CHUNK_ITEMS_MEAN`] items), one node of
//! each level (about [`NODE_FANOUT_MEAN`] hashes each) and the top list.
//!
//! The mix is not a cryptographic hash: a member choosing its key can only
//! bias how its own items are cut into chunks, which changes how much is
//! rehashed per edit, never what the hash commits to.

use std::collections::{BTreeSet, HashMap};

use weft_primitives::{Hash, PublicKey};

use crate::chunk::encode_chunk;
use crate::doc::Authors;
use crate::run::Iid;
use crate::sequence::{Loc, RunSequence};

/// The mean number of items per chunk. Unit tests use tiny chunks and nodes
/// so that every property test cuts many of them.
pub(crate) const CHUNK_ITEMS_MEAN: u64 = if cfg!(test) { 4 } else { 128 };

/// The mean number of children of a node.
pub(crate) const NODE_FANOUT_MEAN: u64 = if cfg!(test) { 3 } else { 16 };

/// Levels of nodes above the chunks.
pub const NODE_LEVELS: usize = 2;

/// Changes noted since the last refresh beyond which the next refresh
/// rebuilds the digest from scratch instead (bounds the memory a document
/// edited many times without asking its hash holds).
const PENDING_MAX: usize = 4_096;

const CHUNK_CONTEXT: &str = "weft-text 2026 chunk v1";
const NODE_CONTEXT: &str = "weft-text 2026 chunk tree node v1";
const ROOT_CONTEXT: &str = "weft-text 2026 content root v1";

/// A chunk's name: `None` for the head, else its start item.
pub(crate) type ChunkKey = Option<Iid>;

#[derive(Clone, Debug)]
struct Slot {
    key: ChunkKey,
    hash: Hash,
    /// Levels of the nodes this chunk starts (0 ..= NODE_LEVELS).
    height: usize,
    /// `nodes[l - 1]`: the hash of the level `l` node it starts, for `l <= height`.
    nodes: [Hash; NODE_LEVELS],
}

impl Slot {
    fn new(keys: &[PublicKey], key: ChunkKey) -> Slot {
        Slot { key, hash: Hash::ZERO, height: height_of(keys, key), nodes: [Hash::ZERO; NODE_LEVELS] }
    }

    /// The hash this slot contributes to a node of level `level + 1`.
    fn hash_at(&self, level: usize) -> Hash {
        match level {
            0 => self.hash,
            l => self.nodes[l - 1],
        }
    }
}

/// Items changed since the last refresh.
#[derive(Clone, Copy, Debug)]
struct Change {
    author: u32,
    seq: u64,
    len: u64,
    /// New items (which may start new chunks), not tombstoned ones.
    inserted: bool,
}

/// Rows changed since they were last taken, by hash: `Some` to write,
/// `None` to delete. The last change of a hash wins: a row deleted and then
/// written again (unchanged by a rebuild) is written.
#[derive(Clone, Debug, Default)]
pub(crate) struct RowLog {
    pub(crate) chunks: HashMap<Hash, Option<Vec<u8>>>,
    pub(crate) nodes: HashMap<Hash, Option<Vec<Hash>>>,
}

/// The chunked digest of one document. Empty ("not built") until the first
/// refresh; edits note what they touched and the next refresh rehashes that.
#[derive(Clone, Debug, Default)]
pub(crate) struct Digest {
    built: bool,
    /// Chunks in document order; the head first.
    slots: Vec<Slot>,
    position: HashMap<ChunkKey, usize>,
    pending: Vec<Change>,
    /// The content hash, while nothing is pending.
    root: Option<Hash>,
    /// Whether changed rows are logged (for a document kept as rows).
    tracking: bool,
    rows: RowLog,
}

/// The mixed id of an item: chunk starts and heights are read from it.
fn mix(key: &PublicKey, seq: u64) -> u64 {
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&key.0[..8]);
    // The splitmix64 finaliser: a bijection that spreads every input bit.
    let mut z = u64::from_le_bytes(salt) ^ seq;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether the item starts a chunk.
pub(crate) fn starts_chunk(keys: &[PublicKey], id: Iid) -> bool {
    keys.get(id.author as usize).is_some_and(|key| mix(key, id.seq).is_multiple_of(CHUNK_ITEMS_MEAN))
}

/// The height of the chunk named `key`.
fn height_of(keys: &[PublicKey], key: ChunkKey) -> usize {
    let Some(id) = key else { return NODE_LEVELS };
    let Some(author) = keys.get(id.author as usize) else { return 0 };
    let mut rest = mix(author, id.seq) / CHUNK_ITEMS_MEAN;
    let mut height = 0;
    while height < NODE_LEVELS && rest.is_multiple_of(NODE_FANOUT_MEAN) {
        rest /= NODE_FANOUT_MEAN;
        height += 1;
    }
    height
}

impl Digest {
    /// Note that items `seq .. seq + len` of `author` were inserted
    /// (`inserted`) or tombstoned.
    pub(crate) fn note(&mut self, author: u32, seq: u64, len: u64, inserted: bool) {
        self.root = None;
        if !self.built {
            return;
        }
        if self.pending.len() >= PENDING_MAX {
            self.reset();
            return;
        }
        self.pending.push(Change { author, seq, len, inserted });
    }

    /// The content hash if nothing changed since the last refresh.
    pub(crate) fn current(&self) -> Option<Hash> {
        self.root
    }

    /// Bring the digest up to date with `seq` and return the content hash.
    pub(crate) fn refresh(&mut self, authors: &Authors, seq: &RunSequence) -> Hash {
        if let Some(root) = self.root {
            return root;
        }
        if self.built && !self.apply_pending(authors, seq) {
            self.reset();
        }
        if !self.built {
            self.rebuild(authors, seq);
        }
        let root = root_of(&self.slots);
        self.root = Some(root);
        root
    }

    /// Log changed rows from now on.
    pub(crate) fn track_rows(&mut self) {
        self.tracking = true;
    }

    /// The rows changed since the last call (the digest must be fresh).
    pub(crate) fn take_rows(&mut self) -> RowLog {
        std::mem::take(&mut self.rows)
    }

    /// The top level's node hashes, in order.
    pub(crate) fn top(&self) -> Vec<Hash> {
        self.slots.iter().filter(|slot| slot.height == NODE_LEVELS).map(|slot| slot.nodes[NODE_LEVELS - 1]).collect()
    }

    /// Every node's children, level by level from the top, each level in
    /// document order.
    pub(crate) fn tree(&self) -> Vec<Vec<Hash>> {
        let mut nodes: Vec<Vec<Hash>> = Vec::new();
        for level in (1..=NODE_LEVELS).rev() {
            let mut current: Option<Vec<Hash>> = None;
            for slot in self.slots.iter().filter(|slot| slot.height >= level - 1) {
                if slot.height >= level {
                    nodes.extend(current.take());
                    current = Some(Vec::new());
                }
                if let Some(children) = current.as_mut() {
                    children.push(slot.hash_at(level - 1));
                }
            }
            nodes.extend(current);
        }
        nodes
    }

    /// Forget the structure (it is rebuilt at the next refresh), logging its
    /// rows as deleted: the rebuild writes back those that still hold.
    fn reset(&mut self) {
        if self.tracking {
            for slot in std::mem::take(&mut self.slots) {
                self.rows.chunks.insert(slot.hash, None);
                for node in &slot.nodes[..slot.height] {
                    self.rows.nodes.insert(*node, None);
                }
            }
        }
        let (tracking, rows) = (self.tracking, std::mem::take(&mut self.rows));
        *self = Digest { tracking, rows, ..Digest::default() };
    }

    /// The content hash computed from scratch, leaving `self` alone.
    pub(crate) fn compute(authors: &Authors, seq: &RunSequence) -> Hash {
        let mut digest = Digest::default();
        digest.refresh(authors, seq)
    }

    fn rebuild(&mut self, authors: &Authors, seq: &RunSequence) {
        let keys = &authors.keys;
        let mut chunks: Vec<ChunkKey> = vec![None];
        for run in seq.iter() {
            for off in 0..run.len {
                let id = run.id_at(off);
                if starts_chunk(keys, id) {
                    chunks.push(Some(id));
                }
            }
        }
        self.slots = chunks.into_iter().map(|key| Slot::new(keys, key)).collect();
        for at in 0..self.slots.len() {
            self.rehash_chunk(authors, seq, at);
        }
        self.position = self.slots.iter().enumerate().map(|(i, slot)| (slot.key, i)).collect();
        for level in 1..=NODE_LEVELS {
            let starts: Vec<usize> = (0..self.slots.len()).filter(|&i| self.slots[i].height >= level).collect();
            for start in starts {
                self.rehash_node(level, start);
            }
        }
        self.pending.clear();
        self.built = true;
    }

    /// Rehash what the pending changes touched; false if the structure has
    /// to be rebuilt instead.
    fn apply_pending(&mut self, authors: &Authors, seq: &RunSequence) -> bool {
        let keys = &authors.keys;
        let pending = std::mem::take(&mut self.pending);
        let mut dirty: BTreeSet<usize> = BTreeSet::new();
        let mut dirty_keys: Vec<ChunkKey> = Vec::new();
        // New start items open chunks first, so that every start item is in
        // `position` before chunks are looked up.
        for change in pending.iter().filter(|c| c.inserted) {
            for s in change.seq..change.seq.saturating_add(change.len) {
                let id = Iid { author: change.author, seq: s };
                if starts_chunk(keys, id)
                    && !self.position.contains_key(&Some(id))
                    && !self.open_chunk(keys, seq, id, &mut dirty_keys)
                {
                    return false;
                }
            }
        }
        for change in &pending {
            // A range of ids may lie in several places of the document: walk
            // it run by run; each piece changes the chunk it starts in and
            // every chunk a start item inside it opens.
            let end = change.seq.saturating_add(change.len);
            let mut next = change.seq;
            while next < end {
                let Some(loc) = seq.locate_id(Iid { author: change.author, seq: next }) else { break };
                let Some(run) = seq.run(loc) else { break };
                dirty_keys.push(chunk_of(keys, seq, loc));
                let take = (run.end_seq() - next).min(end - next);
                for s in next + 1..next + take {
                    let id = Iid { author: change.author, seq: s };
                    if starts_chunk(keys, id) {
                        dirty_keys.push(Some(id));
                    }
                }
                next += take;
            }
        }
        for key in dirty_keys {
            let Some(&at) = self.position.get(&key) else { continue };
            if dirty.insert(at) {
                self.rehash_chunk(authors, seq, at);
            }
        }
        for level in 1..=NODE_LEVELS {
            dirty = dirty.into_iter().map(|at| self.node_start(level, at)).collect();
            for &start in &dirty {
                self.rehash_node(level, start);
            }
        }
        true
    }

    fn rehash_chunk(&mut self, authors: &Authors, seq: &RunSequence, at: usize) {
        let bytes = encode_chunk(authors, seq, self.slots[at].key);
        let hash = Hash::derive(CHUNK_CONTEXT, &[&bytes]);
        let old = std::mem::replace(&mut self.slots[at].hash, hash);
        if self.tracking && old != hash {
            if old != Hash::ZERO {
                self.rows.chunks.insert(old, None);
            }
            self.rows.chunks.insert(hash, Some(bytes));
        }
    }

    /// Add the chunk started by the new item `id` after the chunk before it
    /// (opening that one first if it is new too); both are dirty. False if
    /// the structure does not hold the chunk before.
    fn open_chunk(&mut self, keys: &[PublicKey], seq: &RunSequence, id: Iid, dirty: &mut Vec<ChunkKey>) -> bool {
        let mut waiting = vec![id];
        while let Some(&next) = waiting.last() {
            let Some(loc) = seq.locate_id(next) else {
                waiting.pop();
                continue;
            };
            let before = seq.prev_item(loc).and_then(|prev| chunk_of(keys, seq, prev));
            match self.position.get(&before) {
                Some(&at) => {
                    waiting.pop();
                    let key = Some(next);
                    self.slots.insert(at + 1, Slot::new(keys, key));
                    for (i, slot) in self.slots.iter().enumerate().skip(at + 1) {
                        self.position.insert(slot.key, i);
                    }
                    dirty.push(before);
                    dirty.push(key);
                }
                // The chunk before is new as well: open it first.
                None => match before {
                    Some(prev) if !waiting.contains(&prev) => waiting.push(prev),
                    // Cannot happen (the head is always there): rebuild rather than guess.
                    _ => return false,
                },
            }
        }
        true
    }

    /// The slot that starts the node of `level` holding slot `at`.
    fn node_start(&self, level: usize, at: usize) -> usize {
        (0..=at).rev().find(|&i| self.slots[i].height >= level).unwrap_or(0)
    }

    /// Rehash the node of `level` that slot `start` starts.
    fn rehash_node(&mut self, level: usize, start: usize) {
        let end = (start + 1..self.slots.len()).find(|&i| self.slots[i].height >= level).unwrap_or(self.slots.len());
        let children: Vec<Hash> = self.slots[start..end]
            .iter()
            .filter(|slot| slot.height >= level - 1)
            .map(|slot| slot.hash_at(level - 1))
            .collect();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(children.len() + 1);
        let tag = [level as u8];
        parts.push(&tag);
        parts.extend(children.iter().map(|hash| hash.as_bytes().as_slice()));
        let hash = Hash::derive(NODE_CONTEXT, &parts);
        let old = std::mem::replace(&mut self.slots[start].nodes[level - 1], hash);
        if self.tracking && old != hash {
            if old != Hash::ZERO {
                self.rows.nodes.insert(old, None);
            }
            self.rows.nodes.insert(hash, Some(children));
        }
    }
}

fn root_of(slots: &[Slot]) -> Hash {
    let top: Vec<&[u8]> = slots
        .iter()
        .filter(|slot| slot.height == NODE_LEVELS)
        .map(|slot| slot.nodes[NODE_LEVELS - 1].as_bytes().as_slice())
        .collect();
    Hash::derive(ROOT_CONTEXT, &top)
}

/// The chunk holding the item at `loc`: the nearest start item at or before it.
fn chunk_of(keys: &[PublicKey], seq: &RunSequence, loc: Loc) -> ChunkKey {
    let mut at = Some(loc);
    while let Some(loc) = at {
        let run = seq.run(loc)?;
        for off in (0..=loc.off).rev() {
            let id = run.id_at(off);
            if starts_chunk(keys, id) {
                return Some(id);
            }
        }
        at = seq.prev_run_end(loc);
    }
    None
}
