//! Unit tests of local edits, reads, errors and the encoding; property tests
//! of convergence and of local edits against a model live in the submodules.
//! Unit tests run with tiny blocks (see `BLOCK_RUNS_MAX`), so they split blocks often.

mod convergence;
mod model;

use weft_primitives::PublicKey;

use crate::{DELETE_RANGES_MAX, ItemId, TEXT_OP_CHARS_MAX, TextDoc, TextError, TextOp};

const ALICE: PublicKey = PublicKey([1; 32]);
const BOB: PublicKey = PublicKey([2; 32]);

fn doc_with(text: &str) -> TextDoc {
    let mut doc = TextDoc::new();
    doc.insert(ALICE, 0, text).unwrap();
    doc
}

#[test]
fn local_inserts_build_the_text() {
    let mut doc = TextDoc::new();
    doc.insert(ALICE, 0, "held").unwrap();
    doc.insert(ALICE, 0, "¡").unwrap();
    doc.insert(ALICE, 5, " wörld").unwrap();
    doc.insert(ALICE, 3, "l").unwrap();
    assert_eq!(doc.to_string(), "¡helld wörld");
    assert_eq!(doc.len_chars(), doc.to_string().chars().count());
    assert_eq!(format!("{doc}"), doc.to_string());
}

#[test]
fn typing_forward_keeps_one_run() {
    let mut doc = TextDoc::new();
    for (i, c) in "hello world".chars().enumerate() {
        doc.insert(ALICE, i, &c.to_string()).unwrap();
    }
    assert_eq!(doc.to_string(), "hello world");
    assert_eq!(doc.run_count(), 1);
    assert_eq!(doc.next_seq(&ALICE), 11);
    assert_eq!(doc.next_seq(&BOB), 0);
}

#[test]
fn insert_ops_name_ids_and_origins() {
    let mut doc = TextDoc::new();
    let first = doc.insert(ALICE, 0, "ac").unwrap();
    assert_eq!(
        first,
        TextOp::Insert {
            id: ItemId { author: ALICE, seq: 0 },
            origin_left: None,
            origin_right: None,
            text: "ac".into()
        }
    );
    let middle = doc.insert(BOB, 1, "b").unwrap();
    assert_eq!(
        middle,
        TextOp::Insert {
            id: ItemId { author: BOB, seq: 0 },
            origin_left: Some(ItemId { author: ALICE, seq: 0 }),
            origin_right: Some(ItemId { author: ALICE, seq: 1 }),
            text: "b".into()
        }
    );
    assert_eq!(doc.to_string(), "abc");
}

#[test]
fn delete_removes_chars_and_names_id_ranges() {
    let mut doc = doc_with("hello world");
    let op = doc.delete(BOB, 2, 5).unwrap();
    assert_eq!(doc.to_string(), "heorld");
    assert_eq!(op, TextOp::Delete { ranges: vec![(ItemId { author: ALICE, seq: 2 }, 5)] });
    // A range over a tombstone gap still yields one range per contiguous id run.
    let op = doc.delete(BOB, 1, 2).unwrap();
    assert_eq!(
        op,
        TextOp::Delete { ranges: vec![(ItemId { author: ALICE, seq: 1 }, 1), (ItemId { author: ALICE, seq: 7 }, 1)] }
    );
    assert_eq!(doc.to_string(), "hrld");
    assert_eq!(doc.delete(BOB, 4, 0).unwrap(), TextOp::Delete { ranges: vec![] });
}

#[test]
fn slice_reads_visible_chars() {
    let mut doc = doc_with("abcdefgh");
    doc.delete(ALICE, 2, 2).unwrap();
    assert_eq!(doc.slice(0, 6).unwrap(), "abefgh");
    assert_eq!(doc.slice(1, 3).unwrap(), "bef");
    assert_eq!(doc.slice(6, 0).unwrap(), "");
    assert_eq!(doc.slice(5, 2), Err(TextError::RangeOutOfBounds { pos: 5, len: 2, doc_len: 6 }));
    assert_eq!(doc.slice(usize::MAX, 2), Err(TextError::RangeOutOfBounds { pos: usize::MAX, len: 2, doc_len: 6 }));
}

#[test]
fn bad_local_edits_are_refused_without_change() {
    let mut doc = doc_with("abc");
    let hash = doc.content_hash();
    assert_eq!(doc.insert(ALICE, 4, "x"), Err(TextError::PositionOutOfBounds { pos: 4, len: 3 }));
    assert_eq!(doc.insert(ALICE, 0, ""), Err(TextError::EmptyText));
    let long = "x".repeat(TEXT_OP_CHARS_MAX + 1);
    assert_eq!(
        doc.insert(ALICE, 0, &long),
        Err(TextError::TextTooLong { chars: TEXT_OP_CHARS_MAX + 1, max: TEXT_OP_CHARS_MAX })
    );
    assert_eq!(doc.delete(ALICE, 2, 2), Err(TextError::RangeOutOfBounds { pos: 2, len: 2, doc_len: 3 }));
    assert_eq!(
        doc.delete(ALICE, usize::MAX, 2),
        Err(TextError::RangeOutOfBounds { pos: usize::MAX, len: 2, doc_len: 3 })
    );
    assert_eq!(doc.to_string(), "abc");
    assert_eq!(doc.content_hash(), hash);
    assert_eq!(doc.next_seq(&ALICE), 3);
}

#[test]
fn fragmented_delete_over_the_range_limit_is_refused() {
    let mut doc = TextDoc::new();
    // Alternate authors so no two neighbouring chars have contiguous ids.
    for i in 0..=DELETE_RANGES_MAX {
        let author = if i % 2 == 0 { ALICE } else { BOB };
        doc.insert(author, i, "x").unwrap();
    }
    let len = doc.len_chars();
    assert_eq!(
        doc.delete(ALICE, 0, len),
        Err(TextError::TooManyDeleteRanges { ranges: DELETE_RANGES_MAX + 1, max: DELETE_RANGES_MAX })
    );
    assert_eq!(doc.len_chars(), len);
    doc.delete(ALICE, 0, len - 1).unwrap();
    assert_eq!(doc.to_string(), "x");
}

#[test]
fn remote_ops_naming_unknown_ids_are_refused_without_change() {
    let mut doc = doc_with("abc");
    let hash = doc.content_hash();
    let ghost = ItemId { author: BOB, seq: 0 };
    let insert = |origin_left, origin_right| TextOp::Insert {
        id: ItemId { author: BOB, seq: 0 },
        origin_left,
        origin_right,
        text: "x".into(),
    };
    assert_eq!(doc.apply(&insert(Some(ghost), None)), Err(TextError::UnknownId(ghost)));
    let past_end = ItemId { author: ALICE, seq: 3 };
    assert_eq!(doc.apply(&insert(None, Some(past_end))), Err(TextError::UnknownId(past_end)));
    assert_eq!(doc.apply(&TextOp::Delete { ranges: vec![(ghost, 1)] }), Err(TextError::UnknownId(ghost)));
    let overlong =
        TextOp::Delete { ranges: vec![(ItemId { author: ALICE, seq: 0 }, 1), (ItemId { author: ALICE, seq: 1 }, 5)] };
    assert_eq!(doc.apply(&overlong), Err(TextError::UnknownId(past_end)));
    let empty = ItemId { author: ALICE, seq: 1 };
    assert_eq!(doc.apply(&TextOp::Delete { ranges: vec![(empty, 0)] }), Err(TextError::EmptyDeleteRange(empty)));
    let many = vec![(ItemId { author: ALICE, seq: 0 }, 1); DELETE_RANGES_MAX + 1];
    assert_eq!(
        doc.apply(&TextOp::Delete { ranges: many }),
        Err(TextError::TooManyDeleteRanges { ranges: DELETE_RANGES_MAX + 1, max: DELETE_RANGES_MAX })
    );
    let gap =
        TextOp::Insert { id: ItemId { author: BOB, seq: 4 }, origin_left: None, origin_right: None, text: "x".into() };
    assert_eq!(doc.apply(&gap), Err(TextError::SeqGap { author: BOB, expected: 0, got: 4 }));
    let overflow = TextOp::Insert {
        id: ItemId { author: BOB, seq: u64::MAX },
        origin_left: None,
        origin_right: None,
        text: "xy".into(),
    };
    assert_eq!(doc.apply(&overflow), Err(TextError::SeqOverflow(ItemId { author: BOB, seq: u64::MAX })));
    let empty_text = TextOp::Insert {
        id: ItemId { author: BOB, seq: 0 },
        origin_left: None,
        origin_right: None,
        text: String::new(),
    };
    assert_eq!(doc.apply(&empty_text), Err(TextError::EmptyText));
    assert_eq!(doc.to_string(), "abc");
    assert_eq!(doc.content_hash(), hash);
    assert_eq!(doc.next_seq(&BOB), 0);
}

#[test]
fn origins_in_the_wrong_order_are_refused() {
    let mut doc = doc_with("abc");
    let a = ItemId { author: ALICE, seq: 0 };
    let c = ItemId { author: ALICE, seq: 2 };
    let op = TextOp::Insert {
        id: ItemId { author: BOB, seq: 0 },
        origin_left: Some(c),
        origin_right: Some(a),
        text: "x".into(),
    };
    assert_eq!(doc.apply(&op), Err(TextError::OriginsOutOfOrder { left: c, right: a }));
    let same = TextOp::Insert {
        id: ItemId { author: BOB, seq: 0 },
        origin_left: Some(a),
        origin_right: Some(a),
        text: "x".into(),
    };
    assert_eq!(doc.apply(&same), Err(TextError::OriginsOutOfOrder { left: a, right: a }));
    assert_eq!(doc.to_string(), "abc");
}

#[test]
fn reapplying_an_insert_is_a_no_op_and_reusing_its_ids_is_a_conflict() {
    let mut source = TextDoc::new();
    let first = source.insert(ALICE, 0, "hello").unwrap();
    let second = source.insert(ALICE, 5, "!").unwrap();
    let mut doc = TextDoc::new();
    doc.apply(&first).unwrap();
    doc.apply(&second).unwrap();
    let hash = doc.content_hash();
    // The two inserts merged into one run here; re-applying either is still recognised.
    doc.apply(&first).unwrap();
    doc.apply(&second).unwrap();
    assert_eq!(doc.to_string(), "hello!");
    assert_eq!(doc.content_hash(), hash);

    let TextOp::Insert { id, origin_left, origin_right, .. } = first.clone() else { unreachable!() };
    let forged = TextOp::Insert { id, origin_left, origin_right, text: "jello".into() };
    assert_eq!(doc.apply(&forged), Err(TextError::IdConflict(id)));
    let overlapping = TextOp::Insert {
        id: ItemId { author: ALICE, seq: 4 },
        origin_left: None,
        origin_right: None,
        text: "o!?".into(),
    };
    assert_eq!(doc.apply(&overlapping), Err(TextError::IdConflict(ItemId { author: ALICE, seq: 4 })));
    assert_eq!(doc.to_string(), "hello!");
}

#[test]
fn deletes_are_idempotent() {
    let mut source = doc_with("abcdef");
    let op = source.delete(BOB, 1, 3).unwrap();
    let mut doc = doc_with("abcdef");
    doc.apply(&op).unwrap();
    let hash = doc.content_hash();
    doc.apply(&op).unwrap();
    assert_eq!(doc.to_string(), "aef");
    assert_eq!(doc.content_hash(), hash);
    assert_eq!(source.content_hash(), hash);
}

#[test]
fn concurrent_inserts_at_one_place_order_by_item_id() {
    let mut base = doc_with("ac");
    let mut alice = base.clone();
    let mut bob = base.clone();
    let from_bob = bob.insert(BOB, 1, "B").unwrap();
    let from_alice = alice.insert(ALICE, 1, "A").unwrap();
    alice.apply(&from_bob).unwrap();
    bob.apply(&from_alice).unwrap();
    base.apply(&from_bob).unwrap();
    base.apply(&from_alice).unwrap();
    // ALICE's key sorts before BOB's: her insert goes left.
    for doc in [&alice, &bob, &base] {
        assert_eq!(doc.to_string(), "aABc");
    }
    assert_eq!(alice.content_hash(), bob.content_hash());
    assert_eq!(alice.content_hash(), base.content_hash());
}

#[test]
fn hash_ignores_run_splitting() {
    // Same ops, but one replica split runs by deleting and the other saw them whole.
    let mut doc = TextDoc::new();
    let op = doc.insert(ALICE, 0, "abcdef").unwrap();
    let mut split = TextDoc::new();
    split.apply(&op).unwrap();
    // Splitting via slice-free deletes of nothing does not happen; force splits with a
    // delete that is then compared against the same delete applied elsewhere.
    let del = split.delete(BOB, 2, 1).unwrap();
    doc.apply(&del).unwrap();
    assert_eq!(doc.content_hash(), split.content_hash());
    assert_eq!(doc.encode(), split.encode());
    let mut fresh = TextDoc::new();
    fresh.apply(&op).unwrap();
    assert_ne!(fresh.content_hash(), doc.content_hash());
}

#[test]
fn encode_decode_round_trips() {
    let mut doc = TextDoc::new();
    doc.insert(ALICE, 0, "hello wörld").unwrap();
    doc.insert(BOB, 5, ",").unwrap();
    doc.delete(BOB, 0, 1).unwrap();
    doc.insert(BOB, 0, "H").unwrap();
    let bytes = doc.encode();
    let back = TextDoc::decode(&bytes).unwrap();
    assert_eq!(back.to_string(), doc.to_string());
    assert_eq!(back.content_hash(), doc.content_hash());
    assert_eq!(back.encode(), bytes);
    assert_eq!(back.next_seq(&ALICE), doc.next_seq(&ALICE));
    assert_eq!(back.next_seq(&BOB), doc.next_seq(&BOB));
    let empty = TextDoc::new();
    assert_eq!(TextDoc::decode(&empty.encode()).unwrap().to_string(), "");
    // The decoded document keeps working.
    let mut back = back;
    back.insert(ALICE, 3, "p").unwrap();
    doc.insert(ALICE, 3, "p").unwrap();
    assert_eq!(back.content_hash(), doc.content_hash());
}

#[test]
fn decode_rejects_truncated_and_garbage_bytes() {
    let mut doc = TextDoc::new();
    doc.insert(ALICE, 0, "hello").unwrap();
    doc.insert(BOB, 2, "XY").unwrap();
    doc.delete(ALICE, 1, 2).unwrap();
    let bytes = doc.encode();
    for cut in 0..bytes.len() {
        assert!(TextDoc::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(TextDoc::decode(&trailing), Err(TextError::Malformed(_))));
    let mut version = bytes.clone();
    version[0] = 9;
    assert_eq!(TextDoc::decode(&version).err(), Some(TextError::UnsupportedVersion(9)));
    // Flip every byte in turn: each result is an error or a valid document, never a panic.
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x5a;
        if let Ok(decoded) = TextDoc::decode(&flipped) {
            assert_eq!(decoded.encode(), flipped);
        }
    }
    assert!(TextDoc::decode(&[0xff; 64]).is_err());
}

#[test]
fn decode_rejects_non_canonical_states() {
    use borsh::BorshSerialize;
    #[derive(BorshSerialize)]
    struct Doc(u8, Vec<PublicKey>, Vec<RunRow>);
    #[derive(BorshSerialize)]
    struct RunRow(u32, u64, Option<(u32, u64)>, Option<(u32, u64)>, bool, String);
    let bytes = |authors: Vec<PublicKey>, runs: Vec<RunRow>| borsh::to_vec(&Doc(1, authors, runs)).unwrap();
    let invalid = |b: Vec<u8>| matches!(TextDoc::decode(&b), Err(TextError::InvalidEncoding(_)));

    assert!(TextDoc::decode(&bytes(vec![ALICE], vec![RunRow(0, 0, None, None, false, "ab".into())])).is_ok());
    // Unsorted authors, unused author, author out of range.
    assert!(invalid(bytes(
        vec![BOB, ALICE],
        vec![RunRow(0, 0, None, None, false, "a".into()), RunRow(1, 0, None, None, false, "b".into())]
    )));
    assert!(invalid(bytes(vec![ALICE, BOB], vec![RunRow(0, 0, None, None, false, "a".into())])));
    assert!(invalid(bytes(vec![ALICE], vec![RunRow(1, 0, None, None, false, "a".into())])));
    // Empty run; seq gap; overlap.
    assert!(invalid(bytes(vec![ALICE], vec![RunRow(0, 0, None, None, false, String::new())])));
    assert!(invalid(bytes(vec![ALICE], vec![RunRow(0, 1, None, None, false, "a".into())])));
    assert!(invalid(bytes(
        vec![ALICE],
        vec![RunRow(0, 0, None, None, false, "ab".into()), RunRow(0, 1, None, None, true, "b".into())]
    )));
    // Two runs that should have been one.
    assert!(invalid(bytes(
        vec![ALICE],
        vec![RunRow(0, 0, None, None, false, "a".into()), RunRow(0, 1, Some((0, 0)), None, false, "b".into())]
    )));
    // Origins: missing item, left origin to the right, right origin to the left.
    assert!(invalid(bytes(vec![ALICE], vec![RunRow(0, 0, Some((0, 5)), None, false, "a".into())])));
    assert!(invalid(bytes(
        vec![ALICE],
        vec![RunRow(0, 1, Some((0, 0)), None, false, "b".into()), RunRow(0, 0, None, None, false, "a".into())]
    )));
    assert!(invalid(bytes(
        vec![ALICE],
        vec![RunRow(0, 0, None, None, false, "a".into()), RunRow(0, 1, None, Some((0, 0)), false, "b".into())]
    )));
}

#[test]
fn documents_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TextDoc>();
    assert_eq!(TextDoc::default().content_hash(), TextDoc::new().content_hash());
    assert_eq!(format!("{:?}", doc_with("abc")), "TextDoc { chars: 3, items: 3, runs: 1, authors: 1 }");
}

#[test]
fn one_identity_in_two_lanes_never_names_two_chars_alike() {
    // A laptop (lane 0) and a phone (lane 9) of one identity type at the
    // same place before hearing of each other.
    let (mut laptop, mut phone) = (doc_with("ab"), TextDoc::new());
    phone.apply(&base_op(&laptop)).unwrap();
    let from_laptop = laptop.insert_in_lane(ALICE, 0, 1, "L").unwrap();
    let from_phone = phone.insert_in_lane(ALICE, 9, 1, "P").unwrap();
    let (TextOp::Insert { id: l, .. }, TextOp::Insert { id: p, .. }) = (&from_laptop, &from_phone) else {
        unreachable!()
    };
    assert_eq!((l.lane(), p.lane()), (0, 9));
    assert_ne!(l, p);
    assert_eq!(p.seq, crate::lane_start(9));
    laptop.apply(&from_phone).unwrap();
    phone.apply(&from_laptop).unwrap();
    assert_eq!(laptop.to_string(), phone.to_string());
    assert_eq!(laptop.encode(), phone.encode());
    assert_eq!(TextDoc::decode(&laptop.encode()).unwrap().content_hash(), laptop.content_hash());
    assert_eq!(laptop.next_seq_in_lane(&ALICE, 9), crate::lane_start(9) + 1);
    assert_eq!(laptop.next_seq(&ALICE), 3);
}

/// The op that builds `base` (one insert by ALICE in lane 0).
fn base_op(base: &TextDoc) -> TextOp {
    TextOp::Insert {
        id: ItemId { author: ALICE, seq: 0 },
        origin_left: None,
        origin_right: None,
        text: base.to_string(),
    }
}

#[test]
fn a_lane_starts_at_its_own_first_seq_and_holds_its_items() {
    let mut doc = TextDoc::new();
    let early = ItemId { author: BOB, seq: crate::lane_start(3) + 1 };
    let op = TextOp::Insert { id: early, origin_left: None, origin_right: None, text: "x".into() };
    assert_eq!(doc.apply(&op), Err(TextError::SeqGap { author: BOB, expected: crate::lane_start(3), got: early.seq }));
    let last = ItemId { author: BOB, seq: crate::lane_start(4) - 1 };
    let spill = TextOp::Insert { id: last, origin_left: None, origin_right: None, text: "xy".into() };
    assert_eq!(doc.apply(&spill), Err(TextError::SeqOverflow(last)));
    assert!(doc.is_empty(), "refused ops change nothing");
}

#[test]
fn documents_without_lanes_keep_the_first_encoding_and_lanes_need_the_second() {
    let mut doc = doc_with("abc");
    assert_eq!(doc.encode()[0], 1);
    doc.insert_in_lane(BOB, 2, 0, "z").unwrap();
    let bytes = doc.encode();
    assert_eq!(bytes[0], 2);
    assert_eq!(TextDoc::decode(&bytes).unwrap().to_string(), "zabc");
    // The same table written as version 2 with every lane 0 is not canonical.
    let single = doc_with("abc").encode();
    let mut as_two = vec![2];
    let count = u32::from_le_bytes([single[1], single[2], single[3], single[4]]);
    as_two.extend_from_slice(&single[1..5]);
    for i in 0..count as usize {
        as_two.extend_from_slice(&single[5 + 32 * i..5 + 32 * (i + 1)]);
        as_two.extend_from_slice(&0u32.to_le_bytes());
    }
    as_two.extend_from_slice(&single[5 + 32 * count as usize..]);
    assert!(matches!(TextDoc::decode(&as_two), Err(TextError::InvalidEncoding(_))));
}

/// A document's rows, taken whole: its top list, node lists and chunks.
fn all_rows(doc: &TextDoc) -> (Vec<weft_primitives::Hash>, Vec<Vec<weft_primitives::Hash>>, Vec<Vec<u8>>) {
    let mut copy = TextDoc::decode(&doc.encode()).unwrap();
    copy.track_rows();
    let rows = copy.take_rows();
    let nodes: std::collections::HashMap<_, _> = rows.node_rows.into_iter().collect();
    let chunks: std::collections::HashMap<_, _> = rows.chunk_rows.into_iter().collect();
    let (lists, bytes) =
        convergence::read_rows(&rows.top, |h| nodes.get(h).cloned().flatten(), |h| chunks.get(h).cloned().flatten());
    (rows.top, lists, bytes)
}

#[test]
fn rows_load_back_and_rows_cut_elsewhere_are_refused() {
    let mut doc = TextDoc::new();
    for i in 0..200 {
        doc.insert(ALICE, i / 2, "ab").unwrap();
    }
    doc.delete(BOB, 10, 50).unwrap();
    let (top, lists, chunks) = all_rows(&doc);
    assert!(chunks.len() > 10, "the test needs many chunks, got {}", chunks.len());
    let loaded = TextDoc::from_rows(&top, &lists, &chunks).unwrap();
    assert_eq!(loaded.to_string(), doc.to_string());
    assert_eq!(loaded.content_hash(), doc.content_hash());

    // The same items cut into other chunks: one chunk's items split over two rows.
    let mut other = chunks.clone();
    let last = other.pop().unwrap();
    let joined = [other.pop().unwrap(), last];
    assert!(TextDoc::from_rows(&top, &lists, &other).is_err(), "a missing chunk is refused");
    other.extend(joined);
    let mut lists_short = lists.clone();
    lists_short.last_mut().unwrap().pop();
    assert!(matches!(TextDoc::from_rows(&top, &lists_short, &other), Err(TextError::InvalidEncoding(_))));
    // Garbage is an error, never a panic.
    assert!(TextDoc::from_rows(&top, &lists, &[vec![0xff; 40]]).is_err());
    assert!(TextDoc::from_rows(&[], &[], &[]).is_err());
}
