//! The canonical encoding of a document's full state (tombstones included).
//!
//! Layout (borsh): `version: u8`, the author table sorted ascending, then the
//! runs in document order, each `(author index, seq, origin_left, origin_right,
//! deleted, text)` with origins as `(author index, seq)`. The table lists the
//! author lanes that hold items: version 1 (every item in lane 0, the only
//! form before lanes existed) lists keys; version 2 (some item outside lane 0)
//! lists `(key, lane)` pairs. A document is written in version 1 whenever it
//! can be, so documents without lanes keep their bytes and their hash. Runs are maximal: two
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

use crate::doc::{Authors, TextDoc};
use crate::error::TextError;
use crate::run::{Iid, Run};
use crate::sequence::RunSequence;
use crate::{DOC_CHARS_MAX, lane_start};

/// The encoding of a document whose items are all in lane 0.
const VERSION_SINGLE_LANE: u8 = 1;
/// The encoding of a document with items outside lane 0.
const VERSION_LANES: u8 = 2;

#[derive(BorshSerialize, BorshDeserialize)]
struct EncodedDoc<A> {
    version: u8,
    authors: Vec<A>,
    runs: Vec<EncodedRun>,
}

/// One run of an encoding: authors are indices into the encoding's table.
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct EncodedRun {
    pub(crate) author: u32,
    pub(crate) seq: u64,
    pub(crate) origin_left: Option<(u32, u64)>,
    pub(crate) origin_right: Option<(u32, u64)>,
    pub(crate) deleted: bool,
    pub(crate) text: String,
}

/// The canonical bytes of `doc`.
pub(crate) fn encode(doc: &TextDoc) -> Vec<u8> {
    let (keys, lanes) = (&doc.authors.keys, &doc.authors.lanes);
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_by_key(|&i| (keys[i as usize], lanes[i as usize]));
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
    encode_parts(order.iter().map(|&i| (keys[i as usize], lanes[i as usize])).collect(), runs)
}

/// The bytes of a document with author table `authors` (sorted) and `runs`
/// (maximal, in document order), in the version its lanes call for.
pub(crate) fn encode_parts(authors: Vec<(PublicKey, u32)>, runs: Vec<EncodedRun>) -> Vec<u8> {
    match authors.iter().all(|&(_, lane)| lane == 0) {
        true => {
            let authors = authors.into_iter().map(|(key, _)| key).collect();
            encoding::encode(&EncodedDoc::<PublicKey> { version: VERSION_SINGLE_LANE, authors, runs })
        }
        false => encoding::encode(&EncodedDoc::<(PublicKey, u32)> { version: VERSION_LANES, authors, runs }),
    }
}

/// A document from its canonical bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<TextDoc, TextError> {
    let (table, encoded_runs): (Vec<(PublicKey, u32)>, Vec<EncodedRun>) = match bytes.first() {
        Some(&VERSION_SINGLE_LANE) => {
            let encoded: EncodedDoc<PublicKey> = encoding::decode(bytes)?;
            (encoded.authors.into_iter().map(|key| (key, 0)).collect(), encoded.runs)
        }
        Some(&VERSION_LANES) => {
            let encoded: EncodedDoc<(PublicKey, u32)> = encoding::decode(bytes)?;
            if encoded.authors.iter().all(|(_, lane)| *lane == 0) {
                return Err(TextError::InvalidEncoding("a document without lanes is written in version 1"));
            }
            (encoded.authors, encoded.runs)
        }
        Some(&version) => return Err(TextError::UnsupportedVersion(version)),
        None => return Err(TextError::InvalidEncoding("empty encoding")),
    };
    if table.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(TextError::InvalidEncoding("authors are not sorted and unique"));
    }
    let author_count = table.len();
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
    let mut runs: Vec<Run> = Vec::with_capacity(encoded_runs.len());
    // Per author: (first seq, run number), for coverage and origin checks.
    let mut by_author: Vec<Vec<(u64, usize)>> = vec![Vec::new(); author_count];
    for encoded_run in encoded_runs {
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

    // Each lane's seqs must be exactly lane_start(lane)..next_seq, each once,
    // and stay in the lane.
    let mut next_seq = Vec::with_capacity(author_count);
    for (starts, (_, lane)) in by_author.iter_mut().zip(&table) {
        starts.sort_unstable();
        let first = lane_start(*lane);
        let mut expected = first;
        for &(seq, number) in starts.iter() {
            if seq != expected {
                return Err(TextError::InvalidEncoding("an author's seqs have a gap or an overlap"));
            }
            expected = runs[number].end_seq();
        }
        if expected == first {
            return Err(TextError::InvalidEncoding("author without items"));
        }
        if expected - first > 1 << crate::LANE_SHIFT {
            return Err(TextError::InvalidEncoding("an author's seqs leave its lane"));
        }
        next_seq.push(expected);
    }

    check_origins(&runs, &by_author)?;

    let by_key: HashMap<(PublicKey, u32), u32> =
        table.iter().enumerate().map(|(i, entry)| (*entry, i as u32)).collect();
    let (keys, lanes) = table.into_iter().unzip();
    let authors = Authors { keys, lanes, by_key, next_seq };
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
