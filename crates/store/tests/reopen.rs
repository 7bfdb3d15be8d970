//! After an I/O failure (a full disk, a failed write) redb refuses every
//! later operation until it is reopened. A store with a way to reopen
//! (every file-backed store; here a crash backend standing in) does so by
//! itself: the failed write is not there, what was acknowledged before is,
//! and writes work again once the cause is gone.

#![allow(clippy::unwrap_used)]

use weft_primitives::Hash;
use weft_store::crash::{CrashPoint, CrashingBackend};
use weft_store::{CONTEXTS, Store};

fn put(store: &Store, n: u8) -> Result<(), weft_store::StoreError> {
    store.write(|txn| txn.put(CONTEXTS, &Hash([n; 32]), &vec![n]))
}

fn has(store: &Store, n: u8) -> bool {
    store.read().unwrap().get(CONTEXTS, &Hash([n; 32])).unwrap().is_some()
}

#[test]
fn a_store_reopens_itself_after_an_io_failure_and_keeps_what_was_acknowledged() {
    let backend = CrashingBackend::new();
    let disk = backend.clone();
    let store = Store::open_with_backend_reopening(backend.clone(), move || disk.recover()).unwrap();
    put(&store, 1).unwrap();

    backend.arm(CrashPoint::Write(1));
    let failed = put(&store, 2).unwrap_err();
    assert!(failed.is_io_failure(), "{failed}");
    assert_eq!(store.reopens(), 0);
    let closed = put(&store, 3).unwrap_err();
    assert!(matches!(closed, weft_store::StoreError::Closed), "no reopening within the pause: {closed}");

    std::thread::sleep(weft_store::REOPEN_PAUSE);
    put(&store, 3).unwrap();
    assert_eq!(store.reopens(), 1, "the next operation reopened the database");
    assert!(has(&store, 1), "acknowledged before the failure");
    assert!(!has(&store, 2), "the failed write is not there");
    assert!(has(&store, 3), "writes work again");
}

#[test]
fn a_store_without_a_way_to_reopen_keeps_refusing() {
    let backend = CrashingBackend::new();
    let store = Store::open_with_backend(backend.clone()).unwrap();
    put(&store, 1).unwrap();
    backend.arm(CrashPoint::Write(1));
    assert!(put(&store, 2).is_err());
    assert!(put(&store, 3).is_err());
    assert_eq!(store.reopens(), 0);
}
