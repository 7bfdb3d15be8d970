//! Weft's typed key-value layer over [redb](https://docs.rs/redb): the only
//! place the node's durable state is read and written.
//!
//! - [`Store`] opens a database (a file, memory, or any
//!   [`redb::StorageBackend`]), creates the built-in [tables](STATE) on
//!   first use and refuses a database of another [`SCHEMA_VERSION`].
//! - [`Table`] handles give every table a key type ([`StoreKey`]) and a
//!   borsh value type; stored bytes that do not decode are
//!   [`StoreError::Corrupt`], never a panic.
//! - [`Store::read`] gives a [`ReadTxn`] snapshot; [`Store::write`] runs a
//!   closure over a [`WriteTxn`] and commits it.
//! - The state port: [`ReadTxn::state_view`] / [`WriteTxn::state_view`]
//!   implement [`weft_primitives::kv::KvRead`] over one context's [`STATE`]
//!   keys, and [`WriteTxn::apply_state_writes`] /
//!   [`WriteBatch::apply_state_writes`] commit the engine's
//!   [`weft_primitives::kv::WriteSet`] together with the delta row and heads.
//! - [`GroupCommitter`] shares one fsync among many writers.
//! - [`crash::CrashingBackend`] is the test seam that crashes the real
//!   database at any write.
//!
//! # Guarantees
//!
//! - **Atomicity.** A write transaction (a [`Store::write`] closure, a
//!   [`WriteBatch`], a group of batches) is applied entirely or not at all,
//!   across all tables, including across a crash at any point: after
//!   recovery the database equals the state after some prefix of the
//!   committed transactions.
//! - **Durability.** Every commit uses redb's `Durability::Immediate`: it is
//!   on disk (fsynced) before the call returns or the ticket resolves;
//!   except [`Store::write`] between [`Store::defer_durability`] and
//!   [`Store::flush`] (group commit for a single writer), whose commits are
//!   atomic and visible at once and durable when the flush returns `Ok`. A
//!   group may also land on another thread ([`Store::end_deferring`], then
//!   [`Store::land`]) while the writer defers the next one; that group's
//!   deferred commits wait for the landing, so groups reach the file in
//!   order.
//! - **Acknowledged = durable.** `Ok` from [`Store::write`] (outside a
//!   deferred group), [`Store::flush`], [`Store::commit`] or a
//!   [`CommitTicket`] means the writes survive any later crash. `Err` means they are not visible now; after a crash, a
//!   transaction whose commit failed may or may not be present (its fsync
//!   may have completed before the failure was seen), but never in part.
//! - **Snapshot isolation.** A [`ReadTxn`] sees exactly the transactions
//!   committed before it began; later commits are invisible to it. Write
//!   transactions are serialized (one at a time).
//! - **No panics on stored bytes.** Wrong-width keys, undecodable values,
//!   missing tables and foreign schema versions are errors. Every page
//!   checksum is verified when a database opens (redb alone would trust a
//!   cleanly closed file, and can panic on one damaged at rest), so a
//!   damaged file fails to open instead.
//! - **After a storage failure** (an I/O error in a commit) redb refuses
//!   every further write until the store is reopened; reopening recovers to
//!   the last durable commit.

mod batch;
pub mod crash;
mod error;
mod group_commit;
mod key;
mod state_view;
mod store;
mod table;
mod txn;

pub use batch::{WRITE_BATCH_BYTES_MAX, WriteBatch};
pub use error::StoreError;
pub use group_commit::{CommitInfo, CommitTicket, GROUP_COMMIT_BATCH_MAX, GROUP_COMMIT_QUEUE_MAX, GroupCommitter};
pub use key::StoreKey;
pub use state_view::{ReadStateView, StateView, WriteStateView};
pub use store::{CACHE_BYTES_DEFAULT, REOPEN_PAUSE, SCHEMA_VERSION, Store};
pub use table::{
    APPLICATIONS, APPLIED, BLOB_META, BUILTIN_TABLES, CONTEXTS, DEAD_JOBS, DELTAS, FORGOTTEN, FORGOTTEN_HISTORY, HEADS,
    IDENTITIES, JOBS, MEMBER_SETS, META, PEERS, PENDING, SCHEMA_VERSION_KEY, STATE, Table,
};
pub use txn::{ReadTxn, SCAN_PAGE_MAX, WriteTxn};
