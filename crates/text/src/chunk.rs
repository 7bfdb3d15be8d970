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
///
/// Written by hand, byte for byte the borsh encoding of [`EncodedChunk`]
/// (the decoder's type), without building the intermediate values: this
/// runs once per edit.
pub(crate) fn encode_chunk(authors: &Authors, seq: &RunSequence, key: ChunkKey) -> Vec<u8> {
    let pieces = chunk_pieces(&authors.keys, seq, key);
    let mut named: Vec<u32> = Vec::with_capacity(4);
    for piece in &pieces {
        for author in
            [Some(piece.author), piece.origin_left().map(|id| id.author), piece.origin_right().map(|id| id.author)]
                .into_iter()
                .flatten()
        {
            if !named.contains(&author) {
                named.push(author);
            }
        }
    }
    let entry = |author: u32| {
        let key = authors.keys.get(author as usize).copied().unwrap_or(PublicKey([0; 32]));
        (key, authors.lanes.get(author as usize).copied().unwrap_or(0))
    };
    let mut table: Vec<((PublicKey, u32), u32)> = named.iter().map(|&author| (entry(author), author)).collect();
    table.sort_unstable();
    // A chunk names few authors: a scan beats a map.
    let local_of = |author: u32| table.iter().position(|(_, a)| *a == author).map_or(0, |i| i as u32);

    let chars: usize = pieces.iter().map(|piece| piece.len as usize).sum();
    let mut out = Vec::with_capacity(8 + table.len() * 36 + pieces.len() * 40 + chars * 2);
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    for ((key, lane), _) in &table {
        out.extend_from_slice(&key.0);
        out.extend_from_slice(&lane.to_le_bytes());
    }
    // Pieces that continue each other are one run of the encoding.
    let runs = match pieces.len() {
        0 => 0,
        n => 1 + (1..n).filter(|&i| !pieces[i - 1].continues_into(&pieces[i])).count(),
    };
    out.extend_from_slice(&(runs as u32).to_le_bytes());
    let write_id = |out: &mut Vec<u8>, id: Option<Iid>| match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&local_of(id.author).to_le_bytes());
            out.extend_from_slice(&id.seq.to_le_bytes());
        }
    };
    let mut start = 0;
    while start < pieces.len() {
        let mut end = start + 1;
        while end < pieces.len() && pieces[end - 1].continues_into(&pieces[end]) {
            end += 1;
        }
        let first = &pieces[start];
        out.extend_from_slice(&local_of(first.author).to_le_bytes());
        out.extend_from_slice(&first.seq.to_le_bytes());
        write_id(&mut out, first.origin_left());
        write_id(&mut out, first.origin_right());
        out.push(u8::from(first.deleted));
        let text = || pieces[start..end].iter().flat_map(|piece| seq.text_of(piece, 0, piece.len).iter());
        let bytes: usize = text().map(|c| c.len_utf8()).sum();
        out.extend_from_slice(&(bytes as u32).to_le_bytes());
        let mut utf8 = [0u8; 4];
        for c in text() {
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
        start = end;
    }
    out
}

/// The chunk's items as pieces of the document's runs, in order.
fn chunk_pieces(keys: &[PublicKey], seq: &RunSequence, key: ChunkKey) -> Vec<Run> {
    let mut pieces: Vec<Run> = Vec::new();
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
            pieces.push(run.slice(loc.off, end - loc.off));
        }
        if end < run.len {
            break;
        }
        loc = seq.next_run(loc);
    }
    pieces
}

/// The bytes of a chunk encoding decoded and encoded again by borsh: equal
/// to the input for every encoding [`encode_chunk`] writes.
#[cfg(test)]
pub(crate) fn reencode(bytes: &[u8]) -> Vec<u8> {
    encoding::encode(&encoding::decode::<EncodedChunk>(bytes).unwrap())
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
