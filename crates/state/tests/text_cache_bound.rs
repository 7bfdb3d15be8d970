//! The decoded-text memo's bound, set at run time. Its own test binary:
//! the memo and its bound are process-wide, so no other test may run
//! beside this one.

#![allow(clippy::unwrap_used)]

mod common;

use common::Replica;
use weft_state::{
    CrdtKind, StorageKind, TEXT_CACHE_ITEMS_MAX, cached_text_items, cached_texts, child_id, forget_cached_texts,
    root_id, set_text_cache_items_max, text_cache_items_max,
};

/// Create text `name` holding `len` characters.
fn write_text(replica: &mut Replica, name: &[u8], len: usize) {
    replica
        .txn(|t| {
            let doc = t.create(root_id(), name, CrdtKind::Text, StorageKind::Public)?;
            t.text_insert(doc, 0, &"x".repeat(len))
        })
        .unwrap();
}

#[test]
fn the_memo_keeps_within_the_bound_set_at_run_time() {
    assert_eq!(text_cache_items_max(), TEXT_CACHE_ITEMS_MAX, "the default bound");
    forget_cached_texts();
    let mut replica = Replica::new(1);
    for n in 0..8u8 {
        write_text(&mut replica, &[b'a', n], 100);
    }
    assert_eq!(cached_texts(), 8, "under the default bound every document is kept");
    let held = cached_text_items();
    assert!(held >= 800, "{held} items held");

    // Lowering the bound evicts at once, the least recently put first.
    set_text_cache_items_max(held / 2);
    assert!(cached_text_items() <= held / 2, "{} items held over a bound of {}", cached_text_items(), held / 2);
    assert!(cached_texts() > 0, "eviction went past the bound");
    // Later transactions keep within it too.
    for n in 0..8u8 {
        write_text(&mut replica, &[b'b', n], 100);
        assert!(cached_text_items() <= held / 2);
    }
    // A document larger than the whole bound is not kept at all; what is
    // read still comes from the rows.
    write_text(&mut replica, b"big", held);
    assert!(cached_text_items() <= held / 2);
    let big = child_id(&root_id(), b"big", CrdtKind::Text, &StorageKind::Public);
    assert_eq!(replica.read(|t| t.text_read(big)).len(), held);

    // Zero keeps nothing; the texts still read.
    set_text_cache_items_max(0);
    assert_eq!((cached_texts(), cached_text_items()), (0, 0));
    let first = child_id(&root_id(), &[b'a', 0], CrdtKind::Text, &StorageKind::Public);
    assert_eq!(replica.read(|t| t.text_read(first)), "x".repeat(100));
    assert_eq!(cached_texts(), 0);
    set_text_cache_items_max(TEXT_CACHE_ITEMS_MAX);
}
