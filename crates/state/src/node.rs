//! The nodes of a collection's Merkle search tree, their encoding and hash.
//!
//! Every child key of a collection has a *level*, derived from a hash of the
//! key alone ([`key_level`]): level `l` with probability `15/16 · 16^-l`.
//! The tree over a set of keys is defined by the set alone: its top node
//! holds every key of the highest level present, in key order; between two
//! neighbouring keys of that node (and before the first, after the last)
//! hangs the tree of the keys in that range, built the same way. So a node
//! holds about 15 keys, the tree is about `log16 n` nodes deep, and equal
//! key sets give equal trees and equal hashes whatever the insertion order.
//!
//! A node carries, per key, the slot hash (which covers the key) and a
//! visibility bit; per gap between keys, an optional [`Link`] to the subtree
//! there, with that subtree's level, Merkle hash and visible count.
//!
//! A node is kept in memory as its row encoding, so reading one is a
//! validation pass over the fetched bytes (sizes, key order, child levels
//! below the node's: a corrupt row is an error, never a panic) and writing
//! one is a move. Layout, integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | level |
//! | 4 | key count `c` (at least 1) |
//! | 32 | entries hash: the hash of the slot hashes below |
//! | 4·c | where each key ends in the key bytes |
//! | 4 + K | the key bytes' length `K`, then the keys, concatenated in increasing order |
//! | 32·c | each key's slot hash |
//! | c | each key's visibility, 0 or 1 |
//! | per gap (c + 1) | 0 (no subtree), or 1 then the link's level (1), hash (32) and visible count (8) |

use std::io::{self, Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::Hash;

use crate::digest::{self, digest, digest_bytes};
use crate::{KEY_BYTES_MAX, TREE_LEVEL_MAX};

/// Bits of the level hash per level: the tree's expected fanout is `2^4`.
const LEVEL_BITS: u32 = 4;

/// The level of a child key in its collection's tree: the number of leading
/// zero 4-bit digits of a hash of the key (at most [`TREE_LEVEL_MAX`]).
pub(crate) fn key_level(key: &[u8]) -> u8 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest_bytes(&digest::TREE_LEVEL, key).as_bytes()[..8]);
    let zeros = u64::from_be_bytes(first).leading_zeros() / LEVEL_BITS;
    // At most 64 / 4 = 16, which is TREE_LEVEL_MAX.
    u8::try_from(zeros).unwrap_or(TREE_LEVEL_MAX).min(TREE_LEVEL_MAX)
}

/// A link from a tree node to the subtree in one of its gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The level of the subtree's top node (below the linking node's).
    pub level: u8,
    /// The Merkle hash of the subtree.
    pub hash: Hash,
    /// Visible slots in the subtree (collection lengths, vector positions).
    pub live: u64,
    /// Changed in this transaction: `hash` is recomputed before use.
    pub(crate) stale: bool,
}

impl Link {
    /// A link to a subtree changed in this transaction.
    pub(crate) fn changed(level: u8, live: u64) -> Link {
        Link { level, hash: Hash::ZERO, live, stale: true }
    }
}

const HEAD_BYTES: usize = 1 + 4 + 32;
const ENTRIES_HASH_AT: usize = 5;
/// A present gap: tag, level, hash, visible count.
const LINK_BYTES: usize = 1 + 1 + 32 + 8;
const GAP_ABSENT: u8 = 0;
const GAP_PRESENT: u8 = 1;
/// In memory only: a present link whose hash is stale.
const GAP_STALE: u8 = 2;

/// One node of a collection's Merkle search tree (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// The encoding (see the module docs).
    bytes: Vec<u8>,
    count: usize,
    keys_at: usize,
    hashes_at: usize,
    live_at: usize,
    gaps_at: usize,
    /// The entries hash in `bytes` is out of date.
    entries_stale: bool,
}

/// The pieces of a node being assembled.
struct Parts<'a> {
    level: u8,
    /// Key ends, relative to the first key.
    key_count: usize,
    ends: &'a mut dyn Iterator<Item = u32>,
    keys: &'a [&'a [u8]],
    hashes: &'a [&'a [u8]],
    live: &'a [&'a [u8]],
    gaps: &'a [GapBytes<'a>],
}

/// Encoded gaps to copy, or one gap to encode.
enum GapBytes<'a> {
    Copy(&'a [u8]),
    Link(Option<&'a Link>),
}

impl TreeNode {
    fn assemble(parts: Parts<'_>) -> TreeNode {
        let keys_len: usize = parts.keys.iter().map(|k| k.len()).sum();
        let gaps_len: usize = parts
            .gaps
            .iter()
            .map(|g| match g {
                GapBytes::Copy(bytes) => bytes.len(),
                GapBytes::Link(link) => gap_len(link.is_some()),
            })
            .sum();
        let count = parts.key_count;
        let mut bytes = Vec::with_capacity(HEAD_BYTES + 4 * count + 4 + keys_len + 33 * count + gaps_len);
        bytes.push(parts.level);
        bytes.extend_from_slice(&offset_u32(count).to_le_bytes());
        bytes.extend_from_slice(&[0; 32]);
        for end in parts.ends {
            bytes.extend_from_slice(&end.to_le_bytes());
        }
        bytes.extend_from_slice(&offset_u32(keys_len).to_le_bytes());
        for piece in parts.keys.iter().chain(parts.hashes).chain(parts.live) {
            bytes.extend_from_slice(piece);
        }
        for gap in parts.gaps {
            match gap {
                GapBytes::Copy(piece) => bytes.extend_from_slice(piece),
                GapBytes::Link(link) => write_gap(&mut bytes, *link),
            }
        }
        let keys_at = HEAD_BYTES + 4 * count + 4;
        let hashes_at = keys_at + keys_len;
        TreeNode {
            bytes,
            count,
            keys_at,
            hashes_at,
            live_at: hashes_at + 32 * count,
            gaps_at: hashes_at + 33 * count,
            entries_stale: true,
        }
    }

    /// A node holding one key, with the subtrees below and above it.
    pub(crate) fn single(
        level: u8,
        key: &[u8],
        slot_hash: &Hash,
        live: bool,
        below: Option<Link>,
        above: Option<Link>,
    ) -> TreeNode {
        TreeNode::assemble(Parts {
            level,
            key_count: 1,
            ends: &mut std::iter::once(offset_u32(key.len())),
            keys: &[key],
            hashes: &[slot_hash.as_bytes()],
            live: &[&[u8::from(live)]],
            gaps: &[GapBytes::Link(below.as_ref()), GapBytes::Link(above.as_ref())],
        })
    }

    /// A node from its keys in increasing order, with their slot hashes and
    /// visibility, and its `keys + 1` gaps.
    pub(crate) fn from_entries(level: u8, entries: &[(&[u8], &Hash, bool)], gaps: &[Option<Link>]) -> TreeNode {
        let keys: Vec<&[u8]> = entries.iter().map(|e| e.0).collect();
        let hashes: Vec<&[u8]> = entries.iter().map(|e| e.1.as_bytes().as_slice()).collect();
        let live: Vec<u8> = entries.iter().map(|e| u8::from(e.2)).collect();
        let gaps: Vec<GapBytes<'_>> = gaps.iter().map(|g| GapBytes::Link(g.as_ref())).collect();
        let mut end = 0u32;
        TreeNode::assemble(Parts {
            level,
            key_count: entries.len(),
            ends: &mut keys.iter().map(|k| {
                end += offset_u32(k.len());
                end
            }),
            keys: &keys,
            hashes: &hashes,
            live: &[live.as_slice()],
            gaps: &gaps,
        })
    }

    /// A node from its row encoding, validated.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<TreeNode, &'static str> {
        let head = bytes.get(..HEAD_BYTES).ok_or("tree node too short")?;
        let level = head[0];
        let count = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if count == 0 {
            return Err("a tree node without keys");
        }
        if level > TREE_LEVEL_MAX {
            return Err("tree level above the limit");
        }
        let too_short = "tree node too short";
        let ends_len = count.checked_mul(4).ok_or(too_short)?;
        let keys_len_at = HEAD_BYTES.checked_add(ends_len).ok_or(too_short)?;
        let keys_len = read_u32(&bytes, keys_len_at).ok_or(too_short)? as usize;
        let keys_at = keys_len_at + 4;
        let hashes_at = keys_at.checked_add(keys_len).ok_or(too_short)?;
        let live_at = hashes_at.checked_add(32 * count).ok_or(too_short)?;
        let gaps_at = live_at.checked_add(count).ok_or(too_short)?;
        if bytes.len() < gaps_at {
            return Err(too_short);
        }
        let node = TreeNode { bytes, count, keys_at, hashes_at, live_at, gaps_at, entries_stale: false };
        node.check(keys_len)?;
        Ok(node)
    }

    /// The rest of [`TreeNode::from_bytes`]'s checks, once the regions fit.
    fn check(&self, keys_len: usize) -> Result<(), &'static str> {
        let mut start = 0usize;
        let mut previous: Option<&[u8]> = None;
        for i in 0..self.count {
            let end = self.end(i);
            if end < start || end - start > KEY_BYTES_MAX || end > keys_len {
                return Err("tree node key out of range");
            }
            let key = &self.bytes[self.keys_at + start..self.keys_at + end];
            if previous.is_some_and(|p| p >= key) {
                return Err("tree node keys out of order");
            }
            previous = Some(key);
            start = end;
        }
        if start != keys_len {
            return Err("tree node key lengths disagree");
        }
        if self.bytes[self.live_at..self.gaps_at].iter().any(|b| *b > 1) {
            return Err("tree node visibility byte not 0 or 1");
        }
        let mut at = self.gaps_at;
        for _ in 0..=self.count {
            match self.bytes.get(at) {
                Some(&GAP_ABSENT) => at += 1,
                Some(&GAP_PRESENT) => {
                    match self.bytes.get(at + 1) {
                        Some(level) if *level < self.level() => {}
                        _ => return Err("tree link to a level not below the node's"),
                    }
                    at += LINK_BYTES;
                }
                _ => return Err("tree node gap malformed"),
            }
        }
        if at != self.bytes.len() {
            return Err("tree node length disagrees with its contents");
        }
        Ok(())
    }

    /// The row encoding (entries hash brought up to date).
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        self.refresh_entries_hash();
        self.bytes
    }

    /// The node's level.
    pub fn level(&self) -> u8 {
        self.bytes[0]
    }

    /// The number of keys in the node.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the node holds no key (only transiently, while splitting).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Where key `i` ends in the key bytes.
    fn end(&self, i: usize) -> usize {
        read_u32(&self.bytes, HEAD_BYTES + 4 * i).unwrap_or(0) as usize
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.end(i - 1) }
    }

    /// Key `i` (`i < len()`).
    pub fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.keys_at + self.start(i)..self.keys_at + self.end(i)]
    }

    /// `Ok(i)` if key `i` is `key`, else `Err(i)`: `key` falls in gap `i`.
    pub(crate) fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    /// Whether key `i`'s slot is visible.
    pub fn is_live(&self, i: usize) -> bool {
        self.bytes[self.live_at + i] == 1
    }

    /// Where gap `i` starts in `bytes`.
    fn gap_at(&self, i: usize) -> usize {
        let mut at = self.gaps_at;
        for _ in 0..i {
            at += gap_len(self.bytes[at] != GAP_ABSENT);
        }
        at
    }

    /// The link in gap `i` (`i <= len()`).
    pub fn child(&self, i: usize) -> Option<Link> {
        read_gap(&self.bytes, self.gap_at(i))
    }

    /// Change the (present) link in gap `i` in place; false if it is absent.
    pub(crate) fn update_child(&mut self, i: usize, change: impl FnOnce(&mut Link)) -> bool {
        let at = self.gap_at(i);
        let Some(mut link) = read_gap(&self.bytes, at) else { return false };
        change(&mut link);
        write_link(&mut self.bytes[at..at + LINK_BYTES], &link);
        true
    }

    /// Set gap `i` to `link`.
    pub(crate) fn set_child(&mut self, i: usize, link: Option<Link>) {
        let at = self.gap_at(i);
        let old_len = gap_len(self.bytes[at] != GAP_ABSENT);
        let mut gap = Vec::with_capacity(LINK_BYTES);
        write_gap(&mut gap, link.as_ref());
        self.bytes.splice(at..at + old_len, gap);
    }

    /// Take the link out of gap `i`.
    pub(crate) fn take_child(&mut self, i: usize) -> Option<Link> {
        let link = self.child(i);
        if link.is_some() {
            self.set_child(i, None);
        }
        link
    }

    /// The first gap at or after `from` whose link is stale, with its level.
    pub(crate) fn next_stale_child(&self, from: usize) -> Option<(usize, u8)> {
        let mut at = self.gap_at(from);
        for i in from..=self.count {
            let tag = self.bytes[at];
            if tag == GAP_STALE {
                return Some((i, self.bytes[at + 1]));
            }
            at += gap_len(tag != GAP_ABSENT);
        }
        None
    }

    /// Set key `i`'s slot hash and visibility.
    pub(crate) fn set_entry(&mut self, i: usize, slot_hash: &Hash, live: bool) {
        let at = self.hashes_at + 32 * i;
        self.bytes[at..at + 32].copy_from_slice(slot_hash.as_bytes());
        self.bytes[self.live_at + i] = u8::from(live);
        self.entries_stale = true;
    }

    /// Put `key` into gap `i`, whose subtree was split into `below` and `above` it.
    pub(crate) fn insert_entry(
        &mut self,
        i: usize,
        key: &[u8],
        slot_hash: &Hash,
        live: bool,
        below: Option<Link>,
        above: Option<Link>,
    ) {
        let (start, key_len) = (offset_u32(self.start(i)), offset_u32(key.len()));
        let ends = (0..self.count).map(|j| offset_u32(self.end(j)));
        let mut ends =
            ends.clone().take(i).chain(std::iter::once(start + key_len)).chain(ends.skip(i).map(|e| e + key_len));
        let (keys, hashes, live_bytes) = (self.keys_bytes(), self.hashes_bytes(), self.live_bytes());
        let cut = self.start(i);
        let (gap, next_gap) = (self.gap_at(i), self.gap_at(i + 1));
        let node = TreeNode::assemble(Parts {
            level: self.level(),
            key_count: self.count + 1,
            ends: &mut ends,
            keys: &[&keys[..cut], key, &keys[cut..]],
            hashes: &[&hashes[..32 * i], slot_hash.as_bytes(), &hashes[32 * i..]],
            live: &[&live_bytes[..i], &[u8::from(live)], &live_bytes[i..]],
            gaps: &[
                GapBytes::Copy(&self.bytes[self.gaps_at..gap]),
                GapBytes::Link(below.as_ref()),
                GapBytes::Link(above.as_ref()),
                GapBytes::Copy(&self.bytes[next_gap..]),
            ],
        });
        *self = node;
    }

    /// Split at gap `i`, whose subtree was split into `below` and `above` a
    /// key that is absent: `self` keeps the keys before the gap (ending with
    /// `below`), the returned node holds the rest (starting with `above`).
    /// Either side may be left without keys; the caller then drops it.
    pub(crate) fn split_off(&mut self, i: usize, below: Option<Link>, above: Option<Link>) -> TreeNode {
        let cut = offset_u32(self.start(i));
        let (keys, hashes, live) = (self.keys_bytes(), self.hashes_bytes(), self.live_bytes());
        let (gap, next_gap) = (self.gap_at(i), self.gap_at(i + 1));
        let upper = TreeNode::assemble(Parts {
            level: self.level(),
            key_count: self.count - i,
            ends: &mut (i..self.count).map(|j| offset_u32(self.end(j)) - cut),
            keys: &[&keys[cut as usize..]],
            hashes: &[&hashes[32 * i..]],
            live: &[&live[i..]],
            gaps: &[GapBytes::Link(above.as_ref()), GapBytes::Copy(&self.bytes[next_gap..])],
        });
        let lower = TreeNode::assemble(Parts {
            level: self.level(),
            key_count: i,
            ends: &mut (0..i).map(|j| offset_u32(self.end(j))),
            keys: &[&keys[..cut as usize]],
            hashes: &[&hashes[..32 * i]],
            live: &[&live[..i]],
            gaps: &[GapBytes::Copy(&self.bytes[self.gaps_at..gap]), GapBytes::Link(below.as_ref())],
        });
        *self = lower;
        upper
    }

    fn keys_bytes(&self) -> &[u8] {
        &self.bytes[self.keys_at..self.hashes_at]
    }

    fn hashes_bytes(&self) -> &[u8] {
        &self.bytes[self.hashes_at..self.live_at]
    }

    fn live_bytes(&self) -> &[u8] {
        &self.bytes[self.live_at..self.gaps_at]
    }

    /// Visible slots in this node's subtree.
    pub fn live_total(&self) -> u64 {
        let own = self.live_bytes().iter().map(|b| u64::from(*b)).sum::<u64>();
        let mut at = self.gaps_at;
        let mut total = own;
        for _ in 0..=self.count {
            if let Some(link) = read_gap(&self.bytes, at) {
                total = total.saturating_add(link.live);
            }
            at += gap_len(self.bytes[at] != GAP_ABSENT);
        }
        total
    }

    /// Bring the stored entries hash up to date.
    pub(crate) fn refresh_entries_hash(&mut self) {
        if self.entries_stale {
            let entries = digest_bytes(&digest::TREE_ENTRIES, self.hashes_bytes());
            self.bytes[ENTRIES_HASH_AT..HEAD_BYTES].copy_from_slice(entries.as_bytes());
            self.entries_stale = false;
        }
    }

    /// The node's Merkle hash: its level, its key count, the hash of its
    /// keys' slot hashes (each covers its key), which gaps hold a subtree,
    /// and those subtrees' hashes. Links must not be stale.
    pub(crate) fn hash(&mut self) -> Hash {
        self.refresh_entries_hash();
        let bytes = &self.bytes;
        let (count, gaps_at) = (self.count, self.gaps_at);
        digest(&digest::TREE_NODE, |input| {
            input.push(&bytes[..HEAD_BYTES]);
            // One presence bit per gap, 64 to a word.
            let mut at = gaps_at;
            let mut gap = 0;
            while gap <= count {
                let mut bits = 0u64;
                let mut scan = at;
                for j in 0..64.min(count + 1 - gap) {
                    let present = bytes[scan] != GAP_ABSENT;
                    bits |= u64::from(present) << j;
                    scan += gap_len(present);
                }
                input.push(&bits.to_le_bytes());
                gap += 64;
                at = scan;
            }
            let mut at = gaps_at;
            for _ in 0..=count {
                let present = bytes[at] != GAP_ABSENT;
                if present {
                    input.push(&bytes[at + 2..at + 34]);
                }
                at += gap_len(present);
            }
        })
    }

    /// The length of [`TreeNode::into_bytes`].
    pub(crate) fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether `other` has the same level, keys, visibility and links
    /// (levels and counts), whatever the hashes.
    pub(crate) fn same_shape(&self, other: &TreeNode) -> bool {
        let link_shape = |link: Option<Link>| link.map(|l| (l.level, l.live));
        self.level() == other.level()
            && self.count == other.count
            && (0..self.count).all(|i| self.end(i) == other.end(i))
            && self.keys_bytes() == other.keys_bytes()
            && self.live_bytes() == other.live_bytes()
            && (0..=self.count).all(|i| link_shape(self.child(i)) == link_shape(other.child(i)))
    }
}

/// A length or offset as a `u32`: keys are at most [`KEY_BYTES_MAX`] bytes
/// and a node's keys fit in a row, far below `u32::MAX`.
fn offset_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn gap_len(present: bool) -> usize {
    if present { LINK_BYTES } else { 1 }
}

fn read_gap(bytes: &[u8], at: usize) -> Option<Link> {
    let gap = bytes.get(at..at + LINK_BYTES).filter(|g| g[0] != GAP_ABSENT)?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&gap[2..34]);
    let mut live = [0u8; 8];
    live.copy_from_slice(&gap[34..42]);
    Some(Link { level: gap[1], hash: Hash(hash), live: u64::from_le_bytes(live), stale: gap[0] == GAP_STALE })
}

fn write_link(out: &mut [u8], link: &Link) {
    out[0] = if link.stale { GAP_STALE } else { GAP_PRESENT };
    out[1] = link.level;
    out[2..34].copy_from_slice(link.hash.as_bytes());
    out[34..42].copy_from_slice(&link.live.to_le_bytes());
}

fn write_gap(out: &mut Vec<u8>, link: Option<&Link>) {
    match link {
        None => out.push(GAP_ABSENT),
        Some(link) => {
            let at = out.len();
            out.resize(at + LINK_BYTES, 0);
            write_link(&mut out[at..], link);
        }
    }
}

/// Inside an index row: the row encoding, length-prefixed.
impl BorshSerialize for TreeNode {
    fn serialize<W: Write>(&self, writer: &mut W) -> io::Result<()> {
        if !self.entries_stale {
            return self.bytes.serialize(writer);
        }
        let mut fresh = self.clone();
        fresh.refresh_entries_hash();
        fresh.bytes.serialize(writer)
    }
}

impl BorshDeserialize for TreeNode {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        TreeNode::from_bytes(Vec::deserialize_reader(reader)?)
            .map_err(|reason| io::Error::new(io::ErrorKind::InvalidData, reason))
    }
}

#[cfg(test)]
mod tests;
