//! The one error type of the store.
//!
//! Every rejection is its own variant so callers can tell a corrupt disk
//! (`Corrupt`, `MissingTable`, `SchemaVersion*`) from an engine failure
//! (`Backend`) and from misuse (`ScanTooLarge`, `BatchTooLarge`, a closed
//! committer). The type is `Clone` because a failed group commit hands the
//! same error to every ticket in the group.

use std::sync::Arc;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The storage engine (redb) or the I/O beneath it failed while doing `during`.
    #[error("storage engine failed while {during}: {source}")]
    Backend {
        /// What the store was doing.
        during: &'static str,
        /// The engine's error.
        #[source]
        source: Arc<redb::Error>,
    },
    /// The database was written by another schema version of this crate.
    #[error(
        "database schema version {found}, this build reads version {expected}: the data directory was written by another weft release (move it aside and join its contexts again)"
    )]
    SchemaVersion {
        /// The version found in the `meta` table.
        found: u32,
        /// [`crate::SCHEMA_VERSION`].
        expected: u32,
    },
    /// The database holds tables but no schema version: it was not created by this crate.
    #[error("database has tables but no schema version: not a weft store")]
    SchemaVersionMissing,
    /// The database has a schema version but lacks a table this crate defines.
    #[error("table {table:?} is missing from the database")]
    MissingTable {
        /// The table's name.
        table: String,
    },
    /// A stored key or value could not be decoded as its table's type.
    #[error("corrupt entry in table {table:?} at key {key}: {reason}")]
    Corrupt {
        /// The table's name.
        table: String,
        /// The raw key, hex-encoded.
        key: String,
        /// What the decoder objected to.
        reason: String,
    },
    /// The database was closed by an I/O failure (a full disk, a failed
    /// write) and is not open again yet: it reopens after
    /// [`crate::REOPEN_PAUSE`] (a store with no file behind it never does).
    #[error("the database is closed after an I/O failure (a full disk?); it reopens by itself once it can")]
    Closed,
    /// A scan matched more entries than [`crate::SCAN_PAGE_MAX`] while asked for more
    /// than that: page with a smaller `limit` instead of receiving a silently cut list.
    #[error("scan of table {table:?} would return more than {max} entries; page with a smaller limit")]
    ScanTooLarge {
        /// The table's name.
        table: String,
        /// [`crate::SCAN_PAGE_MAX`].
        max: usize,
    },
    /// A write batch is larger than [`crate::WRITE_BATCH_BYTES_MAX`].
    #[error("write batch of {bytes} bytes exceeds the {max}-byte limit")]
    BatchTooLarge {
        /// The batch's size in key and value bytes.
        bytes: usize,
        /// [`crate::WRITE_BATCH_BYTES_MAX`].
        max: usize,
    },
    /// The group committer was closed (or its thread ended) before the batch was queued.
    #[error("group committer is closed")]
    CommitterClosed,
    /// The thread landing a group of commits ([`crate::Store::land`])
    /// stopped before it answered: nothing of the group is acknowledged.
    #[error("the thread landing a group of commits stopped before it answered")]
    LandingLost,
    /// The group committer's thread ended without answering this ticket.
    #[error("group committer ended without resolving the ticket")]
    CommitterGone,
    /// The operating system refused to start the group committer's thread.
    #[error("could not start the group commit thread: {reason}")]
    CommitterSpawn {
        /// The operating system's error.
        reason: String,
    },
}

impl StoreError {
    /// Whether this is an I/O failure of the engine (a full disk, a failed
    /// write or sync), after which redb must be reopened.
    pub fn is_io_failure(&self) -> bool {
        match self {
            StoreError::Backend { source, .. } => matches!(
                source.as_ref(),
                redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::Backend(_) | redb::Error::DatabaseClosed
            ),
            _ => false,
        }
    }

    /// A [`StoreError::Backend`] for anything redb can fail with.
    pub(crate) fn backend<E: Into<redb::Error>>(during: &'static str) -> impl FnOnce(E) -> StoreError {
        move |source| StoreError::Backend { during, source: Arc::new(source.into()) }
    }

    /// Map a failure to open `table`: a table that does not exist is
    /// [`StoreError::MissingTable`], anything else is the engine's.
    pub(crate) fn open_table(table: &str) -> impl FnOnce(redb::TableError) -> StoreError + '_ {
        move |error| match error {
            redb::TableError::TableDoesNotExist(_) => StoreError::MissingTable { table: table.to_owned() },
            other => StoreError::backend("opening a table")(other),
        }
    }

    /// A [`StoreError::Corrupt`] naming `table` and the raw `key`.
    pub(crate) fn corrupt(table: &str, key: &[u8], reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { table: table.to_owned(), key: hex(key), reason: reason.into() }
    }
}

/// Lower-case hex of `bytes`, for naming keys in errors.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
