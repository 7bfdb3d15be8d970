//! Weft's replicated text: a sequence CRDT of the RGA family, pure logic, no I/O.
//!
//! A [`TextDoc`] is a list of items, one per Unicode scalar value, each named by
//! an [`ItemId`] `(author, seq)`, numbered per author *lane* (one lane per
//! device of an identity: see [`ItemId`]). Items are never removed: deleting text turns its
//! items into tombstones, so every later operation can still name them. Local
//! edits ([`TextDoc::insert`], [`TextDoc::delete`]) are applied at once and
//! return the [`TextOp`] to replicate; remote operations go through
//! [`TextDoc::apply`].
//!
//! # Guarantees
//!
//! - **Convergence.** Replicas that applied the same set of operations, in any
//!   causally consistent order and with any duplicates, hold the same items in the
//!   same order with the same tombstones: the same text and the same
//!   [`TextDoc::content_hash`].
//! - **Idempotence.** Re-applying an insert whose ids are already present (with the
//!   same content and origins) or any delete is a no-op.
//! - **Atomic rejection.** An operation that names an unknown id, skips ahead in
//!   its author's sequence numbers, reuses ids for different content, or breaks a
//!   bound ([`TEXT_OP_CHARS_MAX`], [`DELETE_RANGES_MAX`], [`DOC_CHARS_MAX`]) is
//!   rejected with its own [`TextError`] variant and changes nothing.
//! - **Canonical state.** [`TextDoc::encode`] writes maximal runs and a sorted author
//!   table, so it does not depend on how this replica happened to split its runs or
//!   in which order it met the authors. [`TextDoc::decode`] accepts exactly the
//!   canonical encodings of well-formed states and returns an error (never
//!   panics) on anything else.
//! - **Content hash.** [`TextDoc::content_hash`] is a Merkle tree over
//!   content-defined chunks of the items (whether an item starts a chunk depends
//!   on its id alone), so it too depends only on the state; kept up to date by
//!   [`TextDoc::update_content_hash`], an edit rehashes one chunk and one node
//!   of each level above it, not the document.
//!
//! # Integration rule (YjsMod / FugueMax)
//!
//! An insert carries `origin_left` and `origin_right`: the items that were
//! immediately left and right of the insertion point (tombstones included) where it
//! was made; `None` stands for the start and the end of the document. A remote
//! insert `N` is placed by scanning the items strictly between its origins, left to
//! right, keeping a tentative destination (initially right after `origin_left`) and
//! a `scanning` flag (initially false). For each scanned item `o`, with `L` = position
//! of `N.origin_left` and `R` = position of `N.origin_right` (start = -∞, end = +∞):
//!
//! 1. if `scanning` is false, the tentative destination moves to just before `o`;
//! 2. if `o.origin_left` is left of `L`, stop: `o` belongs to an enclosing insertion;
//! 3. if `o.origin_left` is `L` (a sibling of `N`):
//!    - `o.origin_right` left of `R`: `N` might go after `o`, but only once
//!      something beyond proves it; set `scanning`;
//!    - `o.origin_right` is `R` (a true tie): if `N.id < o.id` stop, else clear
//!      `scanning` and go on. **Ties between concurrent inserts at the same place
//!      are broken by [`ItemId`] order (author key bytes, then seq): the smaller id
//!      goes left.**
//!    - `o.origin_right` right of `R`: clear `scanning` and go on;
//! 4. if `o.origin_left` is right of `L` (inside the scanned region), go on.
//!
//! The scan ends at `origin_right` or at the end of the document; `N` goes at the
//! tentative destination. This is Yjs's YATA rule with Joseph Gentle's
//! modification (the `scanning` flag), which orders concurrent inserts like
//! FugueMax and avoids interleaving runs typed backwards. It is well founded:
//! every decision depends only on items that exist on every replica once `N`'s
//! causal past has been applied, and on their relative order, which never changes.
//! A local insert is placed directly between its origins, which is where the scan
//! would put it.
//!
//! A local insert at visible position `p` goes immediately after the visible
//! character `p - 1` (before any tombstones that follow it), or at the very start
//! when `p = 0`.
//!
//! # Representation
//!
//! Items live in *runs* (consecutive seqs of one author, each item's `origin_left`
//! the previous item, one shared `origin_right`, one deleted flag, contiguous text
//! in an append-only character arena), split on demand. Runs sit in blocks of at
//! most [`BLOCK_RUNS_MAX`] runs, each block caching its visible length, so finding a
//! visible position costs a scan over block lengths plus one block. A per-author
//! ordered map from run start to block finds an id. Authors are interned as `u32`.

mod chunk;
mod codec;
mod digest;
mod doc;
mod error;
mod integrate;
mod run;
mod sequence;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::PublicKey;

pub use doc::TextDoc;
pub use error::TextError;
use weft_primitives::Hash;

/// A document kept as rows: the list of its top nodes' hashes, a row per
/// node of the chunk tree (its children's hashes) and a row per chunk (the
/// chunk's canonical encoding), each named by its hash (see
/// [`TEXT_NODE_LEVELS`]). [`TextDoc::take_rows`] returns what changed since
/// it was last called; [`TextDoc::from_rows`] loads a document back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextRows {
    /// The top level's node hashes, in document order (the content hash is their hash).
    pub top: Vec<Hash>,
    /// Node rows to write (`Some`: the node's children's hashes in order) or to delete (`None`).
    pub node_rows: Vec<(Hash, Option<Vec<Hash>>)>,
    /// Chunk rows to write (`Some`: the chunk's encoding) or to delete (`None`).
    pub chunk_rows: Vec<(Hash, Option<Vec<u8>>)>,
}

/// Levels of nodes between a document's top list and its chunks: a loader
/// reads the top list's nodes, their children's nodes, and so on this many
/// times, and then the chunks the last level names.
pub use digest::NODE_LEVELS as TEXT_NODE_LEVELS;

/// The most characters one insert may carry (local or remote).
pub const TEXT_OP_CHARS_MAX: usize = 1 << 20;

/// The most id ranges one delete may carry. A local delete that would need more
/// (a very fragmented selection) is refused; delete it in pieces.
pub const DELETE_RANGES_MAX: usize = 16_384;

/// The most items (live and tombstoned characters) one document may hold; keeps
/// arena offsets within `u32`.
pub const DOC_CHARS_MAX: usize = (1 << 31) - 1;

/// The most runs a block holds before it is split in two: small enough that a
/// scan of one block is cheap, large enough that the block list stays short.
/// Unit tests use tiny blocks so that every property test splits blocks often.
pub(crate) const BLOCK_RUNS_MAX: usize = if cfg!(test) { 4 } else { 128 };

/// How far an item's seq is shifted to hold its lane: the high 32 bits of a
/// seq name the lane, the low 32 bits number the items within it.
pub const LANE_SHIFT: u32 = 32;

/// The first seq of `lane`.
pub fn lane_start(lane: u32) -> u64 {
    u64::from(lane) << LANE_SHIFT
}

/// The lane a device writes in, derived from a stable device id (a node's
/// network identity): two devices of one identity get different lanes but
/// for a 2^-32 chance, and a device keeps its lane across restarts.
pub fn device_lane(device: &[u8]) -> u32 {
    let hash = weft_primitives::Hash::derive("weft text device lane", &[device]);
    let bytes = hash.as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The name of one character: its author and the author's sequence number.
///
/// An author's seqs are split into *lanes* (the high 32 bits of the seq,
/// see [`ItemId::lane`]): each lane is numbered on its own from
/// [`lane_start`], so one identity writing from several devices at once
/// (each device with its own lane) never names two characters alike. A
/// lane holds 2^32 items.
///
/// Ordered by author key bytes, then seq; this order breaks ties between
/// concurrent inserts at the same place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct ItemId {
    /// The member who inserted the character.
    pub author: PublicKey,
    /// The author's sequence number for it: the items of an author's lane
    /// are numbered `lane_start(lane)`, `+1`, `+2`, … per document.
    pub seq: u64,
}

impl ItemId {
    /// The lane of this item (the high 32 bits of its seq).
    pub fn lane(&self) -> u32 {
        (self.seq >> LANE_SHIFT) as u32
    }
}

/// One replicated text operation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum TextOp {
    /// `text` (non-empty) gets ids (author, seq), (author, seq+1), … one per char (Unicode scalar value).
    Insert {
        /// The id of the first character.
        id: ItemId,
        /// The item immediately left of the insertion point when it was made; `None` = document start.
        origin_left: Option<ItemId>,
        /// The item immediately right of the insertion point when it was made; `None` = document end.
        origin_right: Option<ItemId>,
        /// The inserted characters.
        text: String,
    },
    /// Tombstones each range of ids `(start, len)`: start.seq .. start.seq+len of start.author.
    Delete {
        /// The ranges to tombstone, each `(first id, number of ids)`.
        ranges: Vec<(ItemId, u64)>,
    },
}

#[cfg(test)]
mod tests;
