//! One chunk's canonical encoding (see the `digest` module for what a
//! chunk is), and a document rebuilt from the encodings of its chunks.

use std::collections::{BTreeSet, HashMap};

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{PublicKey, encoding};

use crate::codec::EncodedRun;
use crate::digest::{ChunkKey, starts_chunk};
use crate::doc::{Authors, TextDoc};
use crate::error::TextError;
use crate::run::{Iid, Run};
use crate::sequence::RunSequence;

/// The canonical encoding of one chunk (borsh).
#[derive(BorshSerialize, BorshDeserialize)]
struct EncodedChunk {
    /// `(key, lane)` of every author lane its items and origins name, sorted ascending.
    authors: Vec<(PublicKey, u32)>,
    /// Its items as maximal runs in document order.
    runs: Vec<EncodedRun>,
}

/// The canonical encoding of chunk `key`: it depends only on the chunk's
/// items, not on how this replica split its runs or numbered its authors.
pub(crate) fn encode_chunk(authors: &Authors, seq: &RunSequence, key: ChunkKey) -> Vec<u8> {
    let pieces = chunk_pieces(&authors.keys, seq, key);
    let mut named: Vec<u32> = Vec::new();
    for (piece, _) in &pieces {
        named.push(piece.author);
        named.extend(piece.origin_left().map(|id| id.author));
        named.extend(piece.origin_right().map(|id| id.author));
    }
    named.sort_unstable();
    named.dedup();
    let entry = |author: u32| {
        let key = authors.keys.get(author as usize).copied().unwrap_or(PublicKey([0; 32]));
        (key, authors.lanes.get(author as usize).copied().unwrap_or(0))
    };
    let mut table: Vec<((PublicKey, u32), u32)> = named.iter().map(|&author| (entry(author), author)).collect();
    table.sort_unstable();
    let local: HashMap<u32, u32> = table.iter().enumerate().map(|(i, (_, author))| (*author, i as u32)).collect();
    let local_of = |author: u32| local.get(&author).copied().unwrap_or(0);
    let map = |id: Option<Iid>| id.map(|id| (local_of(id.author), id.seq));
    let runs = pieces
        .into_iter()
        .map(|(piece, text)| EncodedRun {
            author: local_of(piece.author),
            seq: piece.seq,
            origin_left: map(piece.origin_left()),
            origin_right: map(piece.origin_right()),
            deleted: piece.deleted,
            text,
        })
        .collect();
    encoding::encode(&EncodedChunk { authors: table.into_iter().map(|(entry, _)| entry).collect(), runs })
}

/// The chunk's items as maximal runs, each with its text.
fn chunk_pieces(keys: &[PublicKey], seq: &RunSequence, key: ChunkKey) -> Vec<(Run, String)> {
    let mut pieces: Vec<(Run, String)> = Vec::new();
    let mut loc = match key {
        None => seq.start(),
        Some(id) => match seq.locate_id(id) {
            Some(loc) => loc,
            None => return pieces,
        },
    };
    // The chunk's own start item is a start item too: do not stop at it.
    let mut at_own_start = key.is_some();
    while let Some(run) = seq.run(loc) {
        let mut end = loc.off;
        while end < run.len {
            if !at_own_start && starts_chunk(keys, run.id_at(end)) {
                break;
            }
            at_own_start = false;
            end += 1;
        }
        if end > loc.off {
            let piece = run.slice(loc.off, end - loc.off);
            let text = seq.text_of(&piece, 0, piece.len);
            match pieces.last_mut() {
                Some((last, last_text)) if last.continues_into(&piece) => {
                    last.len += piece.len;
                    last_text.extend(text);
                }
                _ => pieces.push((piece, text.iter().collect())),
            }
        }
        if end < run.len {
            break;
        }
        loc = seq.next_run(loc);
    }
    pieces
}

/// The document whose chunks, in document order, are `chunks`.
///
/// The chunks are joined into the document's canonical encoding and that is
/// decoded, so every rule of [`TextDoc::decode`] holds. Whether they were cut
/// where the document's own chunking would cut them is for the caller to
/// check (by comparing content hashes).
pub(crate) fn decode_chunks(chunks: &[Vec<u8>]) -> Result<TextDoc, TextError> {
    let decoded: Vec<EncodedChunk> =
        chunks.iter().map(|bytes| encoding::decode::<EncodedChunk>(bytes)).collect::<Result<_, _>>()?;
    let table: BTreeSet<(PublicKey, u32)> = decoded.iter().flat_map(|chunk| chunk.authors.iter().copied()).collect();
    let global: HashMap<(PublicKey, u32), u32> =
        table.iter().enumerate().map(|(i, entry)| (*entry, i as u32)).collect();
    let mut runs: Vec<EncodedRun> = Vec::new();
    for chunk in decoded {
        let to_global = |local: u32| -> Result<u32, TextError> {
            chunk
                .authors
                .get(local as usize)
                .and_then(|entry| global.get(entry).copied())
                .ok_or(TextError::InvalidEncoding("a chunk names an author beyond its table"))
        };
        let map = |id: Option<(u32, u64)>| -> Result<Option<(u32, u64)>, TextError> {
            id.map(|(author, seq)| Ok((to_global(author)?, seq))).transpose()
        };
        for run in chunk.runs {
            let run = EncodedRun {
                author: to_global(run.author)?,
                seq: run.seq,
                origin_left: map(run.origin_left)?,
                origin_right: map(run.origin_right)?,
                deleted: run.deleted,
                text: run.text,
            };
            // A run cut by a chunk boundary is one run of the document.
            match runs.last_mut() {
                Some(last) if continues(last, &run) => last.text.push_str(&run.text),
                _ => runs.push(run),
            }
        }
    }
    let bytes = crate::codec::encode_parts(table.into_iter().collect(), runs);
    TextDoc::decode(&bytes)
}

/// Whether `next` continues `last` as one run of the document.
fn continues(last: &EncodedRun, next: &EncodedRun) -> bool {
    let len = last.text.chars().count() as u64;
    next.author == last.author
        && last.seq.checked_add(len) == Some(next.seq)
        && len > 0
        && next.origin_left == Some((last.author, next.seq - 1))
        && next.origin_right == last.origin_right
        && next.deleted == last.deleted
}
