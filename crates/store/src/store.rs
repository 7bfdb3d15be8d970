//! [`Store`]: opening the database, checking its schema, and the two ways
//! to commit (a closure over a [`WriteTxn`], or a [`WriteBatch`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::ReadableDatabase;

use crate::batch::{WRITE_BATCH_BYTES_MAX, WriteBatch};
use crate::error::StoreError;
use crate::group_commit::{CommitInfo, GroupCommitter};
use crate::table::{BUILTIN_TABLES, META, RawTable, SCHEMA_VERSION_KEY};
use crate::txn::{ReadTxn, WriteTxn};

/// The layout version this build writes and reads. Bump it whenever a table
/// is added or renamed or a key or value encoding changes.
/// Version 5: delta ids and owners' action signatures hash the context id
/// in, so the deltas a version 3 or 4 store holds no longer verify.
/// Version 6: a text's content hash is a Merkle digest over content-defined
/// chunks (`weft_text`), so the state hashes a version 5 store holds for
/// its texts no longer match the ones its peers compute.
/// Version 7: forgotten history ([`crate::FORGOTTEN`],
/// [`crate::MEMBER_SETS`], [`crate::FORGOTTEN_HISTORY`]); tables only.
pub const SCHEMA_VERSION: u32 = 7;

/// Older schema versions this build opens by creating the tables added
/// since (a step that only added tables): version 6, which lacks only the
/// forgotten-history tables. Every store older than 6 holds state hashes
/// of another text digest and is refused.
pub const SCHEMA_VERSIONS_UPGRADABLE: [u32; 1] = [6];

/// The node's database. Cheap to clone: clones share one redb database.
///
/// Guarantees: a write ([`Store::write`], [`Store::commit`], a
/// [`GroupCommitter`] ticket) that returns `Ok` is durable (fsynced); one
/// that returns `Err` changed nothing visible, and after a crash it is
/// either entirely present or entirely absent.
///
/// **Recovery from I/O failures.** After a failed write (a full disk, an
/// I/O error) redb refuses every later operation until the database is
/// closed and opened again. A store opened from a file does that by
/// itself: the failed operation returns its error, the database is closed,
/// and the first operation after [`REOPEN_PAUSE`] opens it again (with the
/// integrity check, so redb's recovery finds the last committed
/// transaction); operations in the pause fail with [`StoreError::Closed`]. Until the cause
/// is gone each attempt fails with an error; once it is, the store works
/// again without a restart. [`Store::reopens`] counts the reopenings, so an
/// owner that caches what it read can reload: an operation that failed is
/// not acknowledged, but after a failed fsync its transaction may still be
/// on disk.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// The database, open or closed since an instant.
enum Slot {
    Open(Arc<redb::Database>),
    Closed(Instant),
}

/// After an I/O failure closed the database, the next reopening waits this
/// long: the cause (a full disk) rarely goes away at once, and each
/// reopening reads the whole file and makes owners reload.
pub const REOPEN_PAUSE: Duration = Duration::from_millis(1_000);

/// Opens the database again after an I/O failure.
type Reopen = Box<dyn Fn() -> Result<redb::Database, StoreError> + Send + Sync>;

struct Shared {
    /// The open database, or when an I/O failure closed it.
    db: RwLock<Slot>,
    /// How to open it again (a store over a file, or a test backend).
    reopen: Option<Reopen>,
    /// Durable commits made through this handle, for [`CommitInfo::sequence`].
    commits: AtomicU64,
    /// Times the database was opened again after an I/O failure.
    reopens: AtomicU64,
    /// Write transactions committed, durable or deferred (shared, so an
    /// observer can count without holding the database open).
    transactions: Arc<AtomicU64>,
    /// Between [`Store::defer_durability`] and [`Store::flush`]:
    /// [`Store::write`] commits without an fsync.
    deferring: AtomicBool,
    /// A deferred commit was made since the last durable one.
    unflushed: AtomicBool,
    /// While anything deferred is not durable yet (deferring, or a group
    /// waiting for its [`Store::land`]): a snapshot of the last durable
    /// commit, for [`Store::read_durable`]. The lock also orders a
    /// `read_durable` that begins a fresh snapshot before the deferring
    /// starts, so it never sees a deferred commit, and guards the changes
    /// of `deferring`.
    durable_snapshot: Mutex<Option<Arc<ReadTxn>>>,
    /// From [`Store::end_deferring`] until the landing after it ended: a
    /// deferred commit of the next group waits meanwhile (`landed`
    /// wakes it). So commits reach the file in group order (a crash never
    /// keeps a later group's commit without an earlier group's), and the
    /// snapshot a landing takes right after its commit holds exactly the
    /// durable commits, even while the writer defers its next group.
    landing_owed: Mutex<bool>,
    landed: Condvar,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("commits", &self.shared.commits.load(Ordering::Relaxed)).finish()
    }
}

impl Store {
    /// Open the database file at `path`, creating it (and its tables) if it
    /// does not exist or is empty.
    ///
    /// Creation is atomic: the database is built and made durable under a
    /// temporary name (`<name>.creating`) and renamed into place, so a crash
    /// while creating leaves either no database (the next open starts over)
    /// or a complete one, never a half-initialized file redb cannot open.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with_cache(path, CACHE_BYTES_DEFAULT)
    }

    /// [`Store::open`], with redb's page cache bounded to `cache_bytes`
    /// (the database's share of the process's memory).
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let exists_with_content = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len() > 0,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(io_error("reading the database file's metadata")(error)),
        };
        if !exists_with_content {
            create_file(path)?;
        }
        // It holds identity seeds and group keys: the owner's alone, also
        // when an older version (or a copy) left it readable by others.
        owner_only(path)?;
        let db = builder()
            .set_cache_size(cache_bytes)
            .open(path)
            .map_err(StoreError::backend("opening the database file"))?;
        let path: PathBuf = path.to_owned();
        let reopen: Reopen = Box::new(move || {
            builder().set_cache_size(cache_bytes).open(&path).map_err(StoreError::backend("opening the database again"))
        });
        Store::from_database(db, Some(reopen))
    }

    /// A fresh database held in memory, for tests and ephemeral nodes.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::open_with_backend(redb::backends::InMemoryBackend::new())
    }

    /// Open (or create) a database over any redb storage backend, e.g.
    /// [`crate::crash::CrashingBackend`] in crash tests.
    ///
    /// Unlike [`Store::open`], creation here is not atomic: redb writes its
    /// magic number last, so a crash while a fresh backend is being
    /// initialized can leave one it refuses as "not a redb database".
    /// Nothing was ever acknowledged in such a backend; start it over.
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<Store, StoreError> {
        let db = builder().create_with_backend(backend).map_err(StoreError::backend("opening the database"))?;
        Store::from_database(db, None)
    }

    /// Like [`Store::open_with_backend`], and after an I/O failure the
    /// database is opened again over the backend `reopen` returns (a test
    /// seam for the recovery a file-backed store does by itself).
    pub fn open_with_backend_reopening<B: redb::StorageBackend>(
        backend: B,
        reopen: impl Fn() -> B + Send + Sync + 'static,
    ) -> Result<Store, StoreError> {
        let db = builder().create_with_backend(backend).map_err(StoreError::backend("opening the database"))?;
        let reopen: Reopen = Box::new(move || {
            builder().create_with_backend(reopen()).map_err(StoreError::backend("opening the database again"))
        });
        Store::from_database(db, Some(reopen))
    }

    fn from_database(db: redb::Database, reopen: Option<Reopen>) -> Result<Store, StoreError> {
        let shared = Shared {
            db: RwLock::new(Slot::Open(Arc::new(db))),
            reopen,
            commits: AtomicU64::new(0),
            reopens: AtomicU64::new(0),
            transactions: Arc::default(),
            deferring: AtomicBool::new(false),
            unflushed: AtomicBool::new(false),
            durable_snapshot: Mutex::new(None),
            landing_owed: Mutex::new(false),
            landed: Condvar::new(),
        };
        let store = Store { shared: Arc::new(shared) };
        store.init_or_check_schema()?;
        Ok(store)
    }

    /// Times the database was closed after an I/O failure and opened again.
    pub fn reopens(&self) -> u64 {
        self.shared.reopens.load(Ordering::SeqCst)
    }

    /// A live count of the write transactions committed through this store
    /// (every [`Store::write`], [`Store::flush_with`] and group commit):
    /// what batching saves shows in it.
    pub fn transaction_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.shared.transactions)
    }

    /// The open database, opening it again if an I/O failure closed it.
    fn database(&self) -> Result<Arc<redb::Database>, StoreError> {
        if let Slot::Open(db) = &*self.shared.db.read().unwrap_or_else(PoisonError::into_inner) {
            return Ok(Arc::clone(db));
        }
        let mut slot = self.shared.db.write().unwrap_or_else(PoisonError::into_inner);
        let closed_at = match &*slot {
            Slot::Open(db) => return Ok(Arc::clone(db)),
            Slot::Closed(at) => *at,
        };
        let Some(reopen) = &self.shared.reopen else {
            return Err(StoreError::Closed);
        };
        if closed_at.elapsed() < REOPEN_PAUSE {
            return Err(StoreError::Closed);
        }
        let db = match reopen() {
            Ok(db) => Arc::new(db),
            Err(error) => {
                *slot = Slot::Closed(Instant::now());
                return Err(error);
            }
        };
        *slot = Slot::Open(Arc::clone(&db));
        self.shared.reopens.fetch_add(1, Ordering::SeqCst);
        Ok(db)
    }

    /// Close the database after `error` if it was an I/O failure (redb
    /// refuses everything after one until it is reopened), then hand the
    /// error back. Only a store with a file to reopen closes.
    fn after_failure(&self, db: &Arc<redb::Database>, error: StoreError) -> StoreError {
        if self.shared.reopen.is_some() && error.is_io_failure() {
            let mut slot = self.shared.db.write().unwrap_or_else(PoisonError::into_inner);
            // Only the database that failed: another thread may have reopened it already.
            if matches!(&*slot, Slot::Open(current) if Arc::ptr_eq(current, db)) {
                *slot = Slot::Closed(Instant::now());
            }
        }
        error
    }

    /// A fresh database gets every table and the schema version in one
    /// transaction; an existing one must carry this build's version and
    /// every built-in table.
    fn init_or_check_schema(&self) -> Result<(), StoreError> {
        let snapshot = self.database()?.begin_read().map_err(StoreError::backend("beginning a read"))?;
        let existing: Vec<String> = {
            use redb::TableHandle;
            snapshot
                .list_tables()
                .map_err(StoreError::backend("listing tables"))?
                .map(|table| table.name().to_owned())
                .collect()
        };
        drop(snapshot);
        if existing.is_empty() {
            return self.write(|txn| {
                for name in BUILTIN_TABLES {
                    txn.create_table(RawTable::new(name))?;
                }
                txn.put(META, SCHEMA_VERSION_KEY, &weft_primitives::encoding::encode(&SCHEMA_VERSION))
            });
        }
        if !existing.iter().any(|name| name == META.name()) {
            return Err(StoreError::SchemaVersionMissing);
        }
        let stored = self.read()?.get(META, SCHEMA_VERSION_KEY)?.ok_or(StoreError::SchemaVersionMissing)?;
        let found: u32 = weft_primitives::encoding::decode(&stored)
            .map_err(|e| StoreError::corrupt(META.name(), SCHEMA_VERSION_KEY.as_bytes(), e.to_string()))?;
        if SCHEMA_VERSIONS_UPGRADABLE.contains(&found) {
            // Additive upgrade, atomic: the new tables and the new version
            // commit together or not at all.
            self.write(|txn| {
                for name in BUILTIN_TABLES.iter().filter(|name| !existing.iter().any(|e| e == *name)) {
                    txn.create_table(RawTable::new(name))?;
                }
                txn.put(META, SCHEMA_VERSION_KEY, &weft_primitives::encoding::encode(&SCHEMA_VERSION))
            })?;
            return Ok(());
        } else if found != SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion { found, expected: SCHEMA_VERSION });
        }
        match BUILTIN_TABLES.iter().find(|name| !existing.iter().any(|e| e == *name)) {
            Some(missing) => Err(StoreError::MissingTable { table: (*missing).to_owned() }),
            None => Ok(()),
        }
    }

    /// A consistent snapshot: it sees every transaction committed before
    /// this call and none committed after.
    pub fn read(&self) -> Result<ReadTxn, StoreError> {
        let db = self.database()?;
        let txn = db.begin_read().map_err(|e| self.after_failure(&db, StoreError::backend("beginning a read")(e)))?;
        Ok(ReadTxn::new(txn))
    }

    /// Run `body` in a write transaction and commit it durably.
    ///
    /// Atomic across tables: if `body` returns `Err` (or panics) nothing it
    /// wrote is kept; if it returns `Ok`, this call returns only after the
    /// commit is on disk. Write transactions run one at a time (callers
    /// queue on redb's writer lock); a [`GroupCommitter`] shares one fsync
    /// among many writers instead.
    ///
    /// Between [`Store::defer_durability`] and [`Store::flush`] the commit
    /// skips the fsync instead (see there).
    pub fn write<T>(&self, body: impl FnOnce(&mut WriteTxn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let deferred = self.shared.deferring.load(Ordering::SeqCst);
        let durability = if deferred { redb::Durability::None } else { redb::Durability::Immediate };
        self.write_with(durability, body)
    }

    /// [`Store::write`] with the durability given.
    fn write_with<T>(
        &self,
        durability: redb::Durability,
        body: impl FnOnce(&mut WriteTxn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deferred = matches!(durability, redb::Durability::None);
        if deferred {
            self.wait_for_landing();
        }
        let (db, mut txn) = self.begin_write(durability)?;
        match body(&mut txn) {
            Ok(value) => {
                if deferred {
                    txn.into_inner()
                        .commit()
                        .map_err(|e| self.after_failure(&db, StoreError::backend("committing")(e)))?;
                    self.shared.unflushed.store(true, Ordering::SeqCst);
                    self.shared.transactions.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.commit_txn(&db, txn)?;
                }
                Ok(value)
            }
            Err(error) => {
                // Dropping an uncommitted transaction also aborts it; aborting
                // explicitly surfaces (and here ignores) the engine's cleanup error
                // so the caller sees its own error, the one that matters.
                let _ = txn.into_inner().abort();
                Err(self.after_failure(&db, error))
            }
        }
    }

    /// Group commit for a single writer: until [`Store::flush`], every
    /// [`Store::write`] commits atomically and is visible at once, but
    /// without an fsync, so one fsync at the flush makes them all durable.
    ///
    /// The caller must be the only one to call [`Store::write`] meanwhile
    /// and must acknowledge nothing written until `flush` returns `Ok`:
    /// a crash before it loses the deferred commits (the database recovers
    /// to the last durable commit, so what survives is still a prefix of
    /// the commits, each whole). [`Store::commit`] and [`GroupCommitter`]
    /// tickets stay durable, and a durable commit also makes the deferred
    /// ones before it durable.
    ///
    /// A group may also end in two steps ([`Store::end_deferring`], then
    /// [`Store::land`] on another thread), so that the writer defers its
    /// next group while the last one's fsync runs.
    pub fn defer_durability(&self) {
        let mut durable = self.shared.durable_snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        // A group still landing keeps the snapshot it began with. Without
        // a snapshot (the database is closed) readers get the error the
        // database gives them.
        if durable.is_none() {
            *durable = self.read().ok().map(Arc::new);
        }
        self.shared.deferring.store(true, Ordering::SeqCst);
    }

    /// End [`Store::defer_durability`] without making anything durable:
    /// [`Store::write`] is durable again, and the commits deferred so far
    /// wait for the [`Store::land`] that ends their group (readers of
    /// [`Store::read_durable`] do not see them until then). The writer may
    /// begin deferring its next group before that landing returns; it
    /// must acknowledge nothing of it before its own landing, which must
    /// come after this one.
    ///
    /// Every `end_deferring` must be followed by a landing ([`Store::land`]
    /// or [`Store::land_deferred`]): until it ended, a deferred commit of
    /// the next group waits (so commits reach the file in group order).
    pub fn end_deferring(&self) {
        let _durable = self.shared.durable_snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.deferring.store(false, Ordering::SeqCst);
        *self.shared.landing_owed.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Wait until no group ended by [`Store::end_deferring`] waits for its
    /// landing.
    fn wait_for_landing(&self) {
        let owed = self.shared.landing_owed.lock().unwrap_or_else(PoisonError::into_inner);
        let _owed = self.shared.landed.wait_while(owed, |owed| *owed).unwrap_or_else(PoisonError::into_inner);
    }

    /// A landing ended (landed or failed): deferred commits may go on.
    fn landing_ended(&self) {
        *self.shared.landing_owed.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.shared.landed.notify_all();
    }

    /// Commit `body`'s writes durably, and with them every deferred commit
    /// before it (one fsync for all): how a group ended by
    /// [`Store::end_deferring`] lands. Callable from any thread, also while
    /// the writer defers its next group. If `body` fails nothing it wrote
    /// is kept, the deferred commits are still made durable, and `body`'s
    /// error is returned; if the commit fails none of them is acknowledged
    /// (the store reopens at its last durable commit, see [`Store`]).
    /// Afterwards [`Store::read_durable`] sees this commit, and nothing
    /// deferred after it.
    pub fn land<T>(&self, body: impl FnOnce(&mut WriteTxn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _ended = LandingEnds(self);
        let result = self.write_with(redb::Durability::Immediate, body);
        if result.is_ok() {
            // A durable commit makes every deferred one before it durable.
            self.shared.unflushed.store(false, Ordering::SeqCst);
        } else if self.shared.unflushed.load(Ordering::SeqCst)
            && self.write_with(redb::Durability::Immediate, |_| Ok(())).is_ok()
        {
            self.shared.unflushed.store(false, Ordering::SeqCst);
        }
        self.snapshot_landed();
        result
    }

    /// After a landing, before deferred commits may go on: the durable
    /// snapshot becomes a fresh one (exactly the durable commits), or none
    /// when nothing waits for a landing.
    fn snapshot_landed(&self) {
        let unflushed = self.shared.unflushed.load(Ordering::SeqCst);
        let mut durable = self.shared.durable_snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        *durable = match self.shared.deferring.load(Ordering::SeqCst) || unflushed {
            true => self.read().ok().map(Arc::new),
            false => None,
        };
    }

    /// A snapshot of what is durable: the latest commit, or while commits
    /// are deferred the state when that began. Readers that answer clients
    /// (views) use it, so they never show a write a crash could still
    /// undo; between groups it is as fresh as [`Store::read`].
    pub fn read_durable(&self) -> Result<Arc<ReadTxn>, StoreError> {
        let durable = self.shared.durable_snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        match &*durable {
            Some(snapshot) => Ok(snapshot.clone()),
            None => Ok(Arc::new(self.read()?)),
        }
    }

    /// End [`Store::defer_durability`]: make every commit since durable
    /// with one fsync (none when nothing was written). On `Err` none of
    /// them is acknowledged: after an I/O failure the store reopens at the
    /// last durable commit ([`Store::reopens`] tells cached readers to
    /// reload), so they may be gone.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.end_deferring();
        self.land_deferred()
    }

    /// [`Store::land`] with nothing of its own to write: make the deferred
    /// commits durable (no fsync when there is none).
    pub fn land_deferred(&self) -> Result<(), StoreError> {
        let _ended = LandingEnds(self);
        let flushed = match self.shared.unflushed.load(Ordering::SeqCst) {
            true => self.write_with(redb::Durability::Immediate, |_| Ok(())),
            false => Ok(()),
        };
        if flushed.is_ok() {
            self.shared.unflushed.store(false, Ordering::SeqCst);
        }
        // Only now may readers see the group: it is durable (or, after a
        // failure, the database reopens at its last durable commit).
        self.snapshot_landed();
        flushed
    }

    /// End [`Store::defer_durability`] with one last transaction: `body`'s
    /// writes commit durably, and with them every deferred commit before
    /// (one fsync for all). This is how a writer that staged a group's
    /// writes in memory lands them: the whole group is one atomic
    /// transaction. If `body` fails nothing it wrote is kept, the deferred
    /// commits are still flushed ([`Store::flush`]) and `body`'s error is
    /// returned; if the commit fails, as for `flush`, none is acknowledged.
    /// The same as [`Store::end_deferring`] then [`Store::land`].
    pub fn flush_with<T>(&self, body: impl FnOnce(&mut WriteTxn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.end_deferring();
        self.land(body)
    }

    /// Commit one batch durably, on the calling thread.
    pub fn commit(&self, batch: &WriteBatch) -> Result<CommitInfo, StoreError> {
        self.commit_group(&[batch])
    }

    /// Start a [`GroupCommitter`] thread writing to this store.
    pub fn group_committer(&self) -> Result<GroupCommitter, StoreError> {
        GroupCommitter::new(self)
    }

    /// Apply `batches` in order in one transaction and commit it durably.
    pub(crate) fn commit_group(&self, batches: &[&WriteBatch]) -> Result<CommitInfo, StoreError> {
        if let Some(big) = batches.iter().find(|batch| batch.byte_len() > WRITE_BATCH_BYTES_MAX) {
            return Err(StoreError::BatchTooLarge { bytes: big.byte_len(), max: WRITE_BATCH_BYTES_MAX });
        }
        let (db, mut txn) = self.begin_write(redb::Durability::Immediate)?;
        txn.apply_batches(batches).map_err(|e| self.after_failure(&db, e))?;
        let sequence = self.commit_txn(&db, txn)?;
        Ok(CommitInfo { sequence, batches: batches.len() })
    }

    fn begin_write(&self, durability: redb::Durability) -> Result<(Arc<redb::Database>, WriteTxn), StoreError> {
        let db = self.database()?;
        let mut txn =
            db.begin_write().map_err(|e| self.after_failure(&db, StoreError::backend("beginning a write")(e)))?;
        // Immediate is redb's default; set it always so that no future
        // default can weaken "acknowledged means durable".
        txn.set_durability(durability).map_err(StoreError::backend("setting durability"))?;
        Ok((db, WriteTxn::new(txn)))
    }

    /// Commit durably; returns this commit's sequence number.
    fn commit_txn(&self, db: &Arc<redb::Database>, txn: WriteTxn) -> Result<u64, StoreError> {
        txn.into_inner().commit().map_err(|e| self.after_failure(db, StoreError::backend("committing")(e)))?;
        self.shared.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(self.shared.commits.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// Ends a landing when dropped, however it ended (even by a panic in its
/// body): a deferred commit waiting for it must never wait forever.
struct LandingEnds<'a>(&'a Store);

impl Drop for LandingEnds<'_> {
    fn drop(&mut self) {
        self.0.landing_ended();
    }
}

/// redb configured for this store: every page checksum is verified when the
/// database opens. redb trusts a cleanly closed file otherwise, and a file
/// damaged at rest can then make it panic or return damaged pages; with the
/// check such a file fails to open with an error. The cost is one read of
/// the file per open (about 0.15 s for 570 MB from the page cache here).
/// redb's page cache unless the caller says otherwise: bounded well below
/// redb's own default (1 GiB), which a node would reach on any large
/// database.
pub const CACHE_BYTES_DEFAULT: usize = 256 * 1024 * 1024;

fn builder() -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_check_integrity_on_open(true);
    builder
}

fn io_error(during: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::backend(during)(redb::Error::Io(error))
}

/// Build a fresh database at `path` atomically: initialize it under a
/// temporary name, make it durable, rename it into place, and make the
/// rename durable.
fn create_file(path: &Path) -> Result<(), StoreError> {
    let name = path.file_name().ok_or_else(|| {
        io_error("naming the database file")(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the database path does not name a file",
        ))
    })?;
    let mut temporary_name = name.to_os_string();
    temporary_name.push(".creating");
    let temporary = path.with_file_name(temporary_name);
    // A leftover from a creation that crashed: it never held acknowledged data.
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("removing an interrupted creation")(error)),
    }
    {
        let db = builder().create(&temporary).map_err(StoreError::backend("creating the database file"))?;
        // Initializes the schema with a durable commit; dropping closes the file.
        drop(Store::from_database(db, None)?);
    }
    owner_only(&temporary)?;
    std::fs::File::open(&temporary).and_then(|file| file.sync_all()).map_err(io_error("syncing the new database"))?;
    std::fs::rename(&temporary, path).map_err(io_error("moving the new database into place"))?;
    sync_parent_directory(path)
}

/// Give the file at `path` mode 0600 unless it has it already.
#[cfg(unix)]
fn owner_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(io_error("reading the database file's mode"))?.permissions().mode();
    if mode & 0o777 != 0o600 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("making the database file private (mode 0600)"))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Make a rename in `path`'s directory durable: without this, a crash could
/// lose the directory entry while later commits to the file were durable.
#[cfg(unix)]
fn sync_parent_directory(path: &Path) -> Result<(), StoreError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_error("syncing the database directory"))
}

#[cfg(not(unix))]
fn sync_parent_directory(_path: &Path) -> Result<(), StoreError> {
    // Directories cannot be opened for syncing here; the rename's durability is the platform's.
    Ok(())
}
