//! The decoded-text memo across transactions. Its own test binary: the
//! memo is process-wide, so no other test may run beside this one.

mod common;

use common::Replica;
use weft_state::{CrdtKind, EntityId, StateError, StorageKind, cached_texts, child_id, forget_cached_texts, root_id};

fn doc_id() -> EntityId {
    child_id(&root_id(), b"doc", CrdtKind::Text, &StorageKind::Public)
}

#[test]
fn a_text_stays_kept_through_a_refused_edit_and_goes_with_an_applied_one() {
    let mut a = Replica::new(1);
    let (_, create) = a
        .txn(|t| {
            let doc = t.create(root_id(), b"doc", CrdtKind::Text, StorageKind::Public)?;
            t.text_insert(doc, 0, "hello")
        })
        .unwrap();
    let (_, first) = a.txn(|t| t.text_insert(doc_id(), 5, " wor")).unwrap();
    let (_, second) = a.txn(|t| t.text_insert(doc_id(), 9, "ld")).unwrap();

    forget_cached_texts();
    let mut b = Replica::new(2);
    b.receive(&a.author(), &create).unwrap();
    assert_eq!(cached_texts(), 1, "an applied edit keeps the document decoded");

    // `second` names items of `first`, which B lacks: refused, and the
    // document B loaded for it is as it was.
    let refused = b.receive(&a.author(), &second).unwrap_err();
    assert!(matches!(refused, StateError::TextItemMissing(_)), "{refused:?}");
    assert_eq!(cached_texts(), 1, "a refused edit leaves the document kept");

    b.receive(&a.author(), &first).unwrap();
    b.receive(&a.author(), &second).unwrap();
    assert_eq!(cached_texts(), 1);
    assert_eq!(b.read(|t| t.text_read(doc_id())), "hello world");
    assert_eq!(b.checked_root(), a.checked_root());
}
