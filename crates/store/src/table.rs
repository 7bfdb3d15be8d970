//! Typed table handles and the tables the node keeps.
//!
//! Every table is stored in redb as raw bytes to raw bytes; the typed layer
//! encodes keys with [`StoreKey`] and values with borsh, and decodes them
//! strictly on the way out, so a damaged value is a [`crate::StoreError::Corrupt`]
//! naming the table and key rather than a panic or a wrong value.

use std::fmt;
use std::marker::PhantomData;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, PublicKey};

use crate::error::StoreError;
use crate::key::StoreKey;

/// The redb definition every typed table maps onto.
pub(crate) type RawTable = redb::TableDefinition<'static, &'static [u8], &'static [u8]>;

/// A typed handle on one table: its name and, in the type, its key and value
/// types. Cheap to copy; build new ones with [`Table::new`] in a `const`.
///
/// The built-in tables below are created with the store. A table defined
/// elsewhere comes into existence with its first committed write; reading it
/// before that is [`StoreError::MissingTable`].
pub struct Table<K: ?Sized, V> {
    name: &'static str,
    types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> Table<K, V> {
    /// A handle on the table called `name`.
    pub const fn new(name: &'static str) -> Table<K, V> {
        Table { name, types: PhantomData }
    }

    /// The table's name in the database.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) const fn raw(&self) -> RawTable {
        redb::TableDefinition::new(self.name)
    }
}

impl<K: ?Sized + StoreKey, V> Table<K, V> {
    /// Decode a stored key of this table.
    pub(crate) fn decode_key(&self, bytes: &[u8]) -> Result<K::Owned, StoreError> {
        K::decode_key(bytes).map_err(|reason| StoreError::corrupt(self.name, bytes, reason))
    }
}

impl<K: ?Sized, V: BorshSerialize> Table<K, V> {
    /// The stored form of `value`.
    pub(crate) fn encode_value(&self, value: &V) -> Vec<u8> {
        weft_primitives::encoding::encode(value)
    }
}

impl<K: ?Sized, V: BorshDeserialize> Table<K, V> {
    /// Decode the stored value at raw key `key`, rejecting trailing bytes.
    pub(crate) fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<V, StoreError> {
        weft_primitives::encoding::decode(bytes).map_err(|e| StoreError::corrupt(self.name, key, e.to_string()))
    }
}

impl<K: ?Sized, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: ?Sized, V> Copy for Table<K, V> {}

impl<K: ?Sized, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Table({})", self.name)
    }
}

/// The per-context keyspace the CRDT engine sees through
/// [`weft_primitives::kv::KvRead`]: context id ++ state key bytes -> the
/// engine's raw value bytes. Written only through
/// [`crate::WriteTxn::apply_state_writes`] / [`crate::WriteBatch::apply_state_writes`].
pub const STATE: Table<(Hash, Vec<u8>), Vec<u8>> = Table::new("state");

/// Applied deltas: (context id, delta id) -> the delta's canonical encoding
/// (signed `CausalDelta`, plus whatever the node keeps with it, e.g. events
/// still owed to handlers).
pub const DELTAS: Table<(Hash, Hash), Vec<u8>> = Table::new("deltas");

/// The current heads of each context's DAG: context id -> delta ids, sorted.
pub const HEADS: Table<Hash, Vec<Hash>> = Table::new("heads");

/// Deltas received but not yet applied because a parent is missing:
/// (context id, delta id) -> the delta's encoding (and receipt metadata),
/// so a restart does not lose them.
pub const PENDING: Table<(Hash, Hash), Vec<u8>> = Table::new("pending");

/// Applied deltas in apply order: (context id, apply position) -> the
/// delta's canonical encoding. Restart replays them in order; the position
/// is dense from 0 for each context.
pub const APPLIED: Table<(Hash, u64), Vec<u8>> = Table::new("applied");

/// Applied deltas a context's replica forgot (their [`APPLIED`] rows are
/// deleted): (context id, delta id) -> the hash of the member set at the
/// delta's causal point, a key of [`MEMBER_SETS`].
pub const FORGOTTEN: Table<(Hash, Hash), Hash> = Table::new("forgotten");

/// Member sets the forgotten deltas' points name: (context id, BLAKE3 of
/// the encoded set) -> the encoded set. Few per context: deltas that change
/// no membership share their parents' set.
pub const MEMBER_SETS: Table<(Hash, Hash), Vec<u8>> = Table::new("member_sets");

/// The forgotten part of each context's history: context id -> the
/// replica's borsh-encoded record (how many deltas, from apply position 0,
/// the frontier's ids and positions, the member set when it forgot).
pub const FORGOTTEN_HISTORY: Table<Hash, Vec<u8>> = Table::new("forgotten_history");

/// Work owed to applied deltas that must survive a restart (event handlers
/// not yet run): (context id, sequence) -> the owner's borsh-encoded job.
/// Written in the same transaction as the delta that caused it.
pub const JOBS: Table<(Hash, u64), Vec<u8>> = Table::new("jobs");

/// Handler jobs given up on after the configured number of failed
/// attempts (the dead letters): (context id, sequence) -> the owner's
/// borsh-encoded record of the job, its attempts and its last error. Kept
/// for the operator to see; nothing runs them again.
pub const DEAD_JOBS: Table<(Hash, u64), Vec<u8>> = Table::new("dead_jobs");

/// Contexts this node is part of: context id -> the node's borsh-encoded
/// context record (application, configuration, root hash, sync markers).
pub const CONTEXTS: Table<Hash, Vec<u8>> = Table::new("contexts");

/// Identities known in a context: (context id, member public key) -> the
/// node's borsh-encoded identity record (membership, and for this node's own
/// identities the wrapped secret material).
pub const IDENTITIES: Table<(Hash, PublicKey), Vec<u8>> = Table::new("identities");

/// Installed applications: application id (BLAKE3 of the module) -> the
/// borsh-encoded manifest and where the module's bytes are.
pub const APPLICATIONS: Table<Hash, Vec<u8>> = Table::new("applications");

/// Other nodes this node knows how to reach: node key (the Ed25519 key
/// behind its libp2p peer id) -> the node's borsh-encoded peer record (the
/// addresses learned for it, the contexts it serves). Read at start to
/// redial the members' nodes without any bootstrap list.
pub const PEERS: Table<PublicKey, Vec<u8>> = Table::new("peers");

/// Blob metadata: blob hash -> borsh-encoded size, chunking and the state of
/// a partial download. Chunk bytes live in the blob store, not here.
pub const BLOB_META: Table<Hash, Vec<u8>> = Table::new("blob_meta");

/// String-keyed values about the database itself: the schema version (key
/// [`SCHEMA_VERSION_KEY`]) and other node-wide settings, each borsh-encoded by
/// its owner.
pub const META: Table<str, Vec<u8>> = Table::new("meta");

/// The [`META`] key holding the schema version, as `borsh(u32)` bytes.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// The names of every built-in table, created together with the store.
pub const BUILTIN_TABLES: [&str; 16] = [
    STATE.name(),
    APPLIED.name(),
    FORGOTTEN.name(),
    MEMBER_SETS.name(),
    FORGOTTEN_HISTORY.name(),
    JOBS.name(),
    DEAD_JOBS.name(),
    DELTAS.name(),
    HEADS.name(),
    PENDING.name(),
    CONTEXTS.name(),
    IDENTITIES.name(),
    APPLICATIONS.name(),
    PEERS.name(),
    BLOB_META.name(),
    META.name(),
];
