//! Schema version, missing tables and corrupt bytes: each is a typed error,
//! never a panic. Damage is made with a raw redb handle on the same file.

// Helpers outside #[test] functions: an unwrap or panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use weft_primitives::Hash;
use weft_primitives::kv::KvRead;
use weft_store::{
    BUILTIN_TABLES, CONTEXTS, DELTAS, FORGOTTEN, FORGOTTEN_HISTORY, HEADS, MEMBER_SETS, META, SCHEMA_VERSION,
    SCHEMA_VERSION_KEY, STATE, Store, StoreError,
};

type Raw = redb::TableDefinition<'static, &'static [u8], &'static [u8]>;

fn h(n: u8) -> Hash {
    Hash([n; 32])
}

/// Write `value` at `key` of table `table` in the file at `path`, bypassing the typed layer.
fn raw_put(path: &std::path::Path, table: &'static str, key: &[u8], value: &[u8]) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(Raw::new(table)).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

fn fresh_store_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    drop(Store::open(&path).unwrap());
    (dir, path)
}

#[test]
fn creation_writes_the_schema_version_and_every_table() {
    let (_dir, path) = fresh_store_file();
    let store = Store::open(&path).unwrap();
    let read = store.read().unwrap();
    let stored = read.get(META, SCHEMA_VERSION_KEY).unwrap().unwrap();
    assert_eq!(weft_primitives::encoding::decode::<u32>(&stored).unwrap(), SCHEMA_VERSION);
    for name in BUILTIN_TABLES {
        let table = weft_store::Table::<Hash, Vec<u8>>::new(name);
        read.len(table).unwrap();
    }
}

#[test]
fn another_schema_version_is_refused() {
    let (_dir, path) = fresh_store_file();
    raw_put(&path, META.name(), SCHEMA_VERSION_KEY.as_bytes(), &weft_primitives::encoding::encode(&vec![9u8, 0, 0, 0]));
    match Store::open(&path) {
        Err(StoreError::SchemaVersion { found, expected }) => {
            assert_eq!((found, expected), (9, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaVersion, got {other:?}"),
    }
}

#[test]
fn garbage_schema_version_is_corrupt() {
    let (_dir, path) = fresh_store_file();
    raw_put(&path, META.name(), SCHEMA_VERSION_KEY.as_bytes(), b"\xff\xff\xff\xff");
    assert!(matches!(Store::open(&path), Err(StoreError::Corrupt { table, .. }) if table == "meta"));
}

#[test]
fn a_redb_file_without_a_schema_version_is_not_a_weft_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    raw_put(&path, "something_else", b"k", b"v");
    assert!(matches!(Store::open(&path), Err(StoreError::SchemaVersionMissing)));
    // Tables present, `meta` present, version key absent.
    let path = dir.path().join("other2.redb");
    raw_put(&path, META.name(), b"unrelated", b"v");
    assert!(matches!(Store::open(&path), Err(StoreError::SchemaVersionMissing)));
}

#[test]
fn a_schema_without_a_builtin_table_names_the_missing_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.redb");
    raw_put(
        &path,
        META.name(),
        SCHEMA_VERSION_KEY.as_bytes(),
        &weft_primitives::encoding::encode(&weft_primitives::encoding::encode(&SCHEMA_VERSION)),
    );
    match Store::open(&path) {
        Err(StoreError::MissingTable { table }) => assert!(BUILTIN_TABLES.contains(&table.as_str())),
        other => panic!("expected MissingTable, got {other:?}"),
    }
}

#[test]
fn reading_a_table_that_was_never_created_is_missing_table() {
    let store = Store::open_in_memory().unwrap();
    const NEVER: weft_store::Table<Hash, Vec<u8>> = weft_store::Table::new("never_written");
    match store.read().unwrap().get(NEVER, &h(1)) {
        Err(StoreError::MissingTable { table }) => assert_eq!(table, "never_written"),
        other => panic!("expected MissingTable, got {other:?}"),
    }
    // A table defined outside the built-ins exists from its first write.
    store.write(|txn| txn.put(NEVER, &h(1), &vec![1])).unwrap();
    assert_eq!(store.read().unwrap().get(NEVER, &h(1)).unwrap(), Some(vec![1]));
}

#[test]
fn garbage_value_is_corrupt_naming_table_and_key() {
    let (_dir, path) = fresh_store_file();
    let mut key = h(1).as_bytes().to_vec();
    key.extend_from_slice(h(2).as_bytes());
    raw_put(&path, DELTAS.name(), &key, b"\x09\x00\x00\x00short");
    raw_put(&path, HEADS.name(), h(3).as_bytes(), b"\x01\x00\x00\x00\x07");
    let store = Store::open(&path).unwrap();
    let read = store.read().unwrap();
    match read.get(DELTAS, &(h(1), h(2))) {
        Err(StoreError::Corrupt { table, key: hex_key, reason }) => {
            assert_eq!(table, "deltas");
            assert_eq!(hex_key, format!("{}{}", h(1).to_hex(), h(2).to_hex()));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(read.get(HEADS, &h(3)), Err(StoreError::Corrupt { .. })));
    assert!(matches!(read.scan(DELTAS, &[], None, 10), Err(StoreError::Corrupt { .. })));
    // Inside a write transaction too.
    let result = store.write(|txn| txn.get(DELTAS, &(h(1), h(2))).map(|_| ()));
    assert!(matches!(result, Err(StoreError::Corrupt { .. })));
}

#[test]
fn wrong_width_key_is_corrupt_on_scan() {
    let (_dir, path) = fresh_store_file();
    raw_put(&path, CONTEXTS.name(), b"short key", &weft_primitives::encoding::encode(&vec![1u8]));
    raw_put(&path, META.name(), b"\xff\xfe", &weft_primitives::encoding::encode(&vec![1u8]));
    let store = Store::open(&path).unwrap();
    let read = store.read().unwrap();
    match read.scan(CONTEXTS, &[], None, 10) {
        Err(StoreError::Corrupt { table, key, .. }) => {
            assert_eq!(table, "contexts");
            assert_eq!(key, "73686f7274206b6579");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(read.scan(META, &[0xff], None, 10), Err(StoreError::Corrupt { .. })));
}

#[test]
fn corrupt_state_value_is_a_kv_error() {
    let (_dir, path) = fresh_store_file();
    let mut key = h(1).as_bytes().to_vec();
    key.extend_from_slice(b"k");
    raw_put(&path, STATE.name(), &key, b"\x05\x00");
    let store = Store::open(&path).unwrap();
    let read = store.read().unwrap();
    let view = read.state_view(h(1)).unwrap();
    assert!(matches!(view.get(b"k"), Err(weft_primitives::kv::KvError::Corrupt { .. })));
    assert!(matches!(view.scan(b"", None, 10), Err(weft_primitives::kv::KvError::Corrupt { .. })));
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.redb");
    std::fs::write(&path, vec![0xa5u8; 8192]).unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::Backend { .. })));
    let short = dir.path().join("short.redb");
    std::fs::write(&short, b"redb?").unwrap();
    assert!(Store::open(&short).is_err());
}

#[test]
fn a_table_of_another_type_is_a_backend_error() {
    let (_dir, path) = fresh_store_file();
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(Raw::new(CONTEXTS.name())).unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new(CONTEXTS.name())).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert!(matches!(store.read().unwrap().get(CONTEXTS, &h(1)), Err(StoreError::Backend { .. })));
}

#[test]
fn interrupted_file_creation_is_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    // What a crash during creation can leave: a stale temporary, an empty file.
    std::fs::write(dir.path().join("weft.redb.creating"), vec![0u8; 4096]).unwrap();
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    store.write(|txn| txn.put(CONTEXTS, &h(1), &vec![1])).unwrap();
    drop(store);
    assert!(!dir.path().join("weft.redb.creating").exists());
    let store = Store::open(&path).unwrap();
    assert_eq!(store.read().unwrap().get(CONTEXTS, &h(1)).unwrap(), Some(vec![1]));
}

#[test]
fn a_new_file_in_a_nested_directory_opens_and_a_directory_is_refused() {
    // Exercises the "no parent directory" branch of atomic creation.
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    std::fs::create_dir_all(&nested).unwrap();
    let path = nested.join("weft.redb");
    drop(Store::open(&path).unwrap());
    assert!(path.exists());
    assert!(Store::open(dir.path()).is_err(), "a directory is not a database");
}

/// Bit rot in a cleanly closed file: redb alone can panic on some of these;
/// the store verifies every page on open, so each is an error or a clean open.
#[test]
fn bit_flipped_file_is_an_error_or_opens_but_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    {
        let store = Store::open(&path).unwrap();
        for n in 0..60u8 {
            store.write(|txn| txn.put(CONTEXTS, &h(n), &vec![n; 300])).unwrap();
        }
    }
    let original = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.redb");
    let mut seed = 1u64;
    let mut refused = 0;
    for _ in 0..400 {
        let mut bytes = original.clone();
        for _ in 0..4 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let at = (seed >> 33) as usize % bytes.len();
            bytes[at] ^= 1 << ((seed >> 20) % 8);
        }
        std::fs::write(&damaged, &bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            let store = Store::open(&damaged)?;
            let read = store.read()?;
            read.scan(CONTEXTS, &[], None, usize::MAX).map(|_| ())
        });
        match outcome {
            Ok(result) => refused += usize::from(result.is_err()),
            Err(_) => panic!("opening a bit-flipped file panicked (seed {seed})"),
        }
    }
    assert!(refused > 0, "no damage was detected at all");
}

#[test]
fn a_store_from_before_context_bound_ids_is_refused_and_left_as_it_was() {
    for old in [3u32, 4] {
        let (_dir, path) = fresh_store_file();
        drop(Store::open(&path).unwrap());
        {
            // What versions 3 and 4 wrote: the same tables, an older number.
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            // META values are byte vectors: the version's borsh bytes, as a Vec.
            let version = weft_primitives::encoding::encode(&weft_primitives::encoding::encode(&old));
            txn.open_table(Raw::new(META.name()))
                .unwrap()
                .insert(SCHEMA_VERSION_KEY.as_bytes(), version.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::SchemaVersion { found, expected }) => assert_eq!((found, expected), (old, SCHEMA_VERSION)),
            other => panic!("version {old} store opened: {:?}", other.map(|_| ())),
        }
        // Refusing wrote nothing: the number on disk is still the old one.
        let db = redb::Database::create(&path).unwrap();
        let read = redb::ReadableDatabase::begin_read(&db).unwrap();
        let table = read.open_table(Raw::new(META.name())).unwrap();
        let stored = table.get(SCHEMA_VERSION_KEY.as_bytes()).unwrap().unwrap().value().to_vec();
        let stored: Vec<u8> = weft_primitives::encoding::decode(&stored).unwrap();
        assert_eq!(weft_primitives::encoding::decode::<u32>(&stored).unwrap(), old);
    }
}

#[test]
fn a_version_6_store_gains_the_forgotten_history_tables_and_keeps_its_rows() {
    let (_dir, path) = fresh_store_file();
    {
        let store = Store::open(&path).unwrap();
        store.write(|txn| txn.put(CONTEXTS, &h(1), &vec![1, 2, 3])).unwrap();
    }
    {
        // What version 6 wrote: every table but the three forgotten-history
        // ones, and the number 6.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        for table in [FORGOTTEN.name(), MEMBER_SETS.name(), FORGOTTEN_HISTORY.name()] {
            assert!(txn.delete_table(Raw::new(table)).unwrap());
        }
        let version = weft_primitives::encoding::encode(&weft_primitives::encoding::encode(&6u32));
        txn.open_table(Raw::new(META.name()))
            .unwrap()
            .insert(SCHEMA_VERSION_KEY.as_bytes(), version.as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let read = store.read().unwrap();
    assert_eq!(read.get(CONTEXTS, &h(1)).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(read.get(FORGOTTEN, &(h(1), h(2))).unwrap(), None, "the table exists and is empty");
    let stored = read.get(META, SCHEMA_VERSION_KEY).unwrap().unwrap();
    assert_eq!(weft_primitives::encoding::decode::<u32>(&stored).unwrap(), SCHEMA_VERSION);
}
