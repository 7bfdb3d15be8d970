//! The canonical encoding of a document's full state (tombstones included).
//!
//! Layout (borsh): `version: u8`, the author keys sorted ascending, then the
//! runs in document order, each `(author index, seq, origin_left, origin_right,
//! deleted, text)` with origins as `(author index, seq)`. Runs are maximal: two
//! neighbours where the second continues the first are always written as one.
//! Neither the in-memory splitting nor the order in which a replica met its
//! authors shows through, so equal states encode to equal bytes.
//!
//! [`decode`] accepts exactly such encodings of well-formed states: sorted,
//! used authors; maximal runs; each author's seqs covering `0..n` once; every
//! origin an existing item, left origins before and right origins after their
//! run. It cannot check that the order is the one the integration rule would
//! have produced: a snapshot is trusted for that (its hash is checked by the
//! layer above).

use std::collections::HashMap;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::PublicKey;
use weft_primitives::encoding;

use crate::DOC_CHARS_MAX;
use crate::doc::{Authors, TextDoc};
use crate::error::TextError;
use crate::run::{Iid, Run};
use crate::sequence::RunSequence;

/// The encoding version written by [`encode`].
const ENCODING_VERSION: u8 = 1;

#[derive(BorshSerialize, BorshDeserialize)]
struct EncodedDoc {
    version: u8,
    authors: Vec<PublicKey>,
    runs: Vec<EncodedRun>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct EncodedRun {
    author: u32,
    seq: u64,
    origin_left: Option<(u32, u64)>,
    origin_right: Option<(u32, u64)>,
    deleted: bool,
    text: String,
}

/// The canonical bytes of `doc`.
pub(crate) fn encode(doc: &TextDoc) -> Vec<u8> {
    let keys = &doc.authors.keys;
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_by_key(|&i| keys[i as usize]);
    let mut canonical = vec![0u32; keys.len()];
    for (pos, &local) in order.iter().enumerate() {
        canonical[local as usize] = pos as u32;
    }
    let map = |id: Option<Iid>| id.map(|id| (canonical[id.author as usize], id.seq));

    let mut runs: Vec<EncodedRun> = Vec::new();
    let mut prev: Option<&Run> = None;
    for run in doc.seq.iter() {
        let text = doc.seq.text_of(run, 0, run.len);
        match (prev, runs.last_mut()) {
            (Some(p), Some(last)) if p.continues_into(run) => last.text.extend(text),
            _ => runs.push(EncodedRun {
                author: canonical[run.author as usize],
                seq: run.seq,
                origin_left: map(run.origin_left()),
                origin_right: map(run.origin_right()),
                deleted: run.deleted,
                text: text.iter().collect(),
            }),
        }
        prev = Some(run);
    }
    let authors = order.iter().map(|&i| keys[i as usize]).collect();
    encoding::encode(&EncodedDoc { version: ENCODING_VERSION, authors, runs })
}

/// A document from its canonical bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<TextDoc, TextError> {
    let encoded: EncodedDoc = encoding::decode(bytes)?;
    if encoded.version != ENCODING_VERSION {
        return Err(TextError::UnsupportedVersion(encoded.version));
    }
    let keys = encoded.authors;
    if keys.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(TextError::InvalidEncoding("authors are not sorted and unique"));
    }
    let author_count = keys.len();
    let check_id = |id: Option<(u32, u64)>| -> Result<Option<Iid>, TextError> {
        match id {
            Some((author, _)) if author as usize >= author_count => {
                Err(TextError::InvalidEncoding("origin names an author beyond the table"))
            }
            Some((author, seq)) => Ok(Some(Iid { author, seq })),
            None => Ok(None),
        }
    };

    let mut chars: Vec<char> = Vec::new();
    let mut runs: Vec<Run> = Vec::with_capacity(encoded.runs.len());
    // Per author: (first seq, run number), for coverage and origin checks.
    let mut by_author: Vec<Vec<(u64, usize)>> = vec![Vec::new(); author_count];
    for encoded_run in encoded.runs {
        if encoded_run.author as usize >= author_count {
            return Err(TextError::InvalidEncoding("run names an author beyond the table"));
        }
        let text_at = chars.len();
        chars.extend(encoded_run.text.chars());
        let len = chars.len() - text_at;
        if len == 0 {
            return Err(TextError::InvalidEncoding("empty run"));
        }
        if chars.len() > DOC_CHARS_MAX {
            return Err(TextError::DocumentTooLarge { chars: chars.len(), max: DOC_CHARS_MAX });
        }
        if encoded_run.seq.checked_add(len as u64).is_none() {
            return Err(TextError::InvalidEncoding("run seqs overflow"));
        }
        let id = Iid { author: encoded_run.author, seq: encoded_run.seq };
        let left = check_id(encoded_run.origin_left)?;
        let right = check_id(encoded_run.origin_right)?;
        let run = Run::new(id, len as u32, text_at as u32, left, right, encoded_run.deleted);
        if runs.last().is_some_and(|prev| prev.continues_into(&run)) {
            return Err(TextError::InvalidEncoding("runs are not maximal"));
        }
        by_author[id.author as usize].push((id.seq, runs.len()));
        runs.push(run);
    }

    // Each author's seqs must be exactly 0..next_seq, each once.
    let mut next_seq = Vec::with_capacity(author_count);
    for starts in &mut by_author {
        starts.sort_unstable();
        let mut expected = 0u64;
        for &(seq, number) in starts.iter() {
            if seq != expected {
                return Err(TextError::InvalidEncoding("an author's seqs have a gap or an overlap"));
            }
            expected = runs[number].end_seq();
        }
        if expected == 0 {
            return Err(TextError::InvalidEncoding("author without items"));
        }
        next_seq.push(expected);
    }

    check_origins(&runs, &by_author)?;

    let by_key: HashMap<PublicKey, u32> = keys.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
    let authors = Authors { keys, by_key, next_seq };
    Ok(TextDoc::from_parts(authors, RunSequence::from_runs(runs, chars)))
}

/// Every origin names an existing item, left origins lie before their run and
/// right origins after it (the order the integration scan relies on).
fn check_origins(runs: &[Run], by_author: &[Vec<(u64, usize)>]) -> Result<(), TextError> {
    let mut first_item = Vec::with_capacity(runs.len());
    let mut position = 0u64;
    for run in runs {
        first_item.push(position);
        position += u64::from(run.len);
    }
    let position_of = |id: Iid| -> Option<u64> {
        let starts = by_author.get(id.author as usize)?;
        let at = starts.partition_point(|&(seq, _)| seq <= id.seq).checked_sub(1)?;
        let number = starts[at].1;
        runs[number].contains(id).then(|| first_item[number] + (id.seq - runs[number].seq))
    };
    for (number, run) in runs.iter().enumerate() {
        let start = first_item[number];
        if let Some(left) = run.origin_left() {
            match position_of(left) {
                Some(p) if p < start => {}
                Some(_) => return Err(TextError::InvalidEncoding("origin_left is not left of its run")),
                None => return Err(TextError::InvalidEncoding("origin_left names a missing item")),
            }
        }
        if let Some(right) = run.origin_right() {
            match position_of(right) {
                Some(p) if p >= start + u64::from(run.len) => {}
                Some(_) => return Err(TextError::InvalidEncoding("origin_right is not right of its run")),
                None => return Err(TextError::InvalidEncoding("origin_right names a missing item")),
            }
        }
    }
    Ok(())
}
