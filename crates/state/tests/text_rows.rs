//! Texts kept as rows of chunks: an edit writes a chunk, not the document;
//! the rows at rest depend only on the content; a text loads back from its
//! rows alone, and damaged rows are an error, never a wrong text.

// Helpers outside #[test] fns are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::Replica;
use weft_primitives::kv::{KvRead, MemoryKv};
use weft_state::{CrdtKind, EntityId, StateError, StorageKind, child_id, forget_cached_texts, root_id};

fn doc_id() -> EntityId {
    child_id(&root_id(), b"doc", CrdtKind::Text, &StorageKind::Public)
}

/// A replica holding a text of `chars` characters typed in pieces of 100.
fn replica_with_text(seed: u8, chars: usize) -> Replica {
    let mut replica = Replica::new(seed);
    replica.txn(|t| t.create(root_id(), b"doc", CrdtKind::Text, StorageKind::Public).map(|_| ())).unwrap();
    let line: String = "the quick brown fox jumps over the lazy dog ".chars().cycle().take(100).collect();
    for i in 0..chars / 100 {
        replica.txn(|t| t.text_insert(doc_id(), (i * 100) as u64, &line)).unwrap();
    }
    replica
}

/// Every state row of text `id`'s chunks and groups, with its value.
fn text_rows(kv: &MemoryKv, id: &EntityId) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for tag in [b'c', b'g'] {
        let mut prefix = vec![b'S', tag];
        prefix.extend_from_slice(id.as_bytes());
        rows.extend(kv.scan(&prefix, None, 1 << 20).unwrap());
    }
    rows
}

#[test]
fn an_edit_in_a_long_text_writes_a_chunk_not_the_document() {
    let mut replica = replica_with_text(1, 20_000);
    let whole: usize = text_rows(&replica.kv, &doc_id()).iter().map(|(_, v)| v.len()).sum();
    assert!(whole > 20_000, "the text's rows hold {whole} bytes");

    let mut txn = weft_state::StateTxn::new(&replica.kv, common::CONTEXT, &replica.key, replica.next);
    txn.text_insert(doc_id(), 10_000, "x").unwrap();
    let commit = txn.commit().unwrap();
    let written = commit.writes.byte_len();
    // One chunk (about 128 items), its group (about 32 hashes), the group
    // list, the index rows on the way to the root: a few KiB, whatever the
    // document's size.
    assert!(written < 8 * 1024, "one keystroke wrote {written} bytes of a {whole}-byte text");
    replica.kv.apply(commit.writes);
    assert_eq!(replica.read(|t| t.text_len(doc_id())), 20_001);
    replica.checked_root();
}

#[test]
fn rows_at_rest_depend_only_on_the_content() {
    // A types in many small commits, in several places, then deletes.
    let mut a = Replica::new(1);
    let mut actions = Vec::new();
    let (_, create) = a.txn(|t| t.create(root_id(), b"doc", CrdtKind::Text, StorageKind::Public).map(|_| ())).unwrap();
    actions.extend(create);
    let mut len = 0u64;
    for i in 0..300u64 {
        let (_, edit) = a.txn(|t| t.text_insert(doc_id(), (i * 37) % (len + 1), "lorem ipsum ")).unwrap();
        actions.extend(edit);
        len += 12;
    }
    let (_, delete) = a.txn(|t| t.text_delete(doc_id(), 500, 900)).unwrap();
    actions.extend(delete);

    // B applies the same actions as one remote batch: another history, the same content.
    forget_cached_texts();
    let mut b = Replica::new(2);
    b.receive(&a.author(), &actions).unwrap();
    assert_eq!(b.read(|t| t.text_read(doc_id())), a.read(|t| t.text_read(doc_id())));
    let rows = text_rows(&a.kv, &doc_id());
    assert!(rows.len() > 10, "the text has {} rows", rows.len());
    assert_eq!(text_rows(&b.kv, &doc_id()), rows, "the same text, other rows");
    assert_eq!(a.checked_root(), b.checked_root());
}

#[test]
fn a_text_loads_from_its_rows_and_damaged_rows_are_an_error() {
    let mut replica = replica_with_text(3, 2_000);
    replica.txn(|t| t.text_delete(doc_id(), 10, 30)).unwrap();
    let text = replica.read(|t| t.text_read(doc_id()));
    forget_cached_texts();
    assert_eq!(replica.read(|t| t.text_read(doc_id())), text, "the text read back from its rows alone");

    let rows = text_rows(&replica.kv, &doc_id());
    let (chunk_key, chunk) = rows.iter().find(|(key, _)| key[1] == b'c').cloned().unwrap();

    // A chunk row whose bytes changed.
    let mut damaged = replica.kv.clone();
    let mut flipped = chunk.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut writes = weft_primitives::kv::WriteSet::new();
    writes.put(chunk_key.clone(), flipped);
    damaged.apply(writes);
    forget_cached_texts();
    let mut txn = weft_state::StateTxn::read_only(&damaged);
    assert!(matches!(txn.text_read(doc_id()), Err(StateError::Corrupt { .. })), "a flipped chunk is corrupt");

    // A chunk row gone.
    let mut missing = replica.kv.clone();
    let mut writes = weft_primitives::kv::WriteSet::new();
    writes.delete(chunk_key);
    missing.apply(writes);
    forget_cached_texts();
    let mut txn = weft_state::StateTxn::read_only(&missing);
    assert!(matches!(txn.text_read(doc_id()), Err(StateError::Corrupt { .. })), "a missing chunk is corrupt");

    // The undamaged store still reads.
    forget_cached_texts();
    assert_eq!(replica.read(|t| t.text_read(doc_id())), text);
}
