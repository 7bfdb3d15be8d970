//! What the node keeps about itself on disk, besides replicas: installed
//! applications, the contexts it is in, and its identities' secret keys.
//!
//! All records are strict borsh in `weft-store` tables, so a corrupt row is
//! an error naming its table and key, never a panic. Context and genesis
//! ids are derived, so a joiner can check that what an inviter tells it
//! about a context is what the context id commits to.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_primitives::{Hash, PublicKey, SigningKey};
use weft_store::{APPLICATIONS, CONTEXTS, IDENTITIES, META, Store, StoreError, Table, WriteTxn};
use weft_sync::KeyEpoch;

use crate::NodeError;

/// The `IDENTITIES` scope of identities that belong to the node rather than
/// to one context.
pub const NODE_SCOPE: Hash = Hash([0; 32]);

/// The `META` key of the node's default member identity.
const DEFAULT_IDENTITY_KEY: &str = "node.default_identity";

/// The contexts read per page at start.
const CONTEXTS_PAGE_MAX: usize = 1024;

/// An installed application.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct AppRecord {
    /// The manifest's name.
    pub name: String,
    /// The module's bytes (its id is their BLAKE3 hash).
    pub module: Vec<u8>,
}

/// A context this node is in.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ContextRecord {
    /// Its id: [`context_id`] of the next three fields.
    pub id: Hash,
    /// The application it runs.
    pub application: Hash,
    /// The member who created it: the first member and its admin.
    pub creator: PublicKey,
    /// The creator's random nonce.
    pub nonce: [u8; 16],
    /// The identity this node writes as in the context.
    pub identity: PublicKey,
    /// The first group key this node held (epoch 0 for the creator, the
    /// epoch it joined at for a joiner). Every key it holds, this one
    /// included, is in [`GROUP_KEYS`] from schema 5 on; a context written
    /// before has only this one, of epoch 0. Kept in clear on the node's own
    /// disk, like the identity seeds.
    pub group_key: [u8; 32],
    /// When this node created or joined it (ms since the epoch).
    pub since_ms: u64,
}

/// A context's id: it commits to its creator, application and nonce.
pub fn context_id(creator: &PublicKey, application: &Hash, nonce: &[u8; 16]) -> Hash {
    Hash::derive("weft context id v1", &[&creator.0, application.as_bytes(), nonce])
}

/// The DAG root of a context: the parent of its first delta.
pub fn genesis_of(context: &Hash) -> Hash {
    Hash::derive("weft context genesis v1", &[context.as_bytes()])
}

/// The gossip topic of a context.
pub fn topic_of(context: &Hash) -> String {
    format!("/weft/context/{}", context.to_hex())
}

/// A stored secret key.
#[derive(BorshSerialize, BorshDeserialize)]
struct IdentityRecord {
    seed: [u8; 32],
}

/// Store an identity's secret key under `scope` (a context, or
/// [`NODE_SCOPE`]).
pub fn put_identity(txn: &mut WriteTxn, scope: Hash, key: &SigningKey) -> Result<(), StoreError> {
    let record = weft_primitives::encoding::encode(&IdentityRecord { seed: key.to_seed() });
    txn.put(IDENTITIES, &(scope, key.public_key()), &record)
}

/// The secret key of `public` under `scope`.
pub fn get_identity(store: &Store, scope: Hash, public: &PublicKey) -> Result<SigningKey, NodeError> {
    let bytes = store.read()?.get(IDENTITIES, &(scope, *public))?.ok_or_else(|| NodeError::Restore {
        context: scope,
        reason: format!("no secret key stored for identity {public:?}"),
    })?;
    let record: IdentityRecord = weft_primitives::encoding::decode(&bytes)
        .map_err(|e| NodeError::Restore { context: scope, reason: format!("identity record: {e}") })?;
    Ok(SigningKey::from_seed(record.seed))
}

/// The node's default member identity: the stored one, else `import` if
/// given, else a fresh random key (stored on first use).
pub fn default_identity(store: &Store, import: Option<[u8; 32]>) -> Result<SigningKey, NodeError> {
    if let Some(bytes) = store.read()?.get(META, DEFAULT_IDENTITY_KEY)? {
        let public = PublicKey(
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| NodeError::Config("default identity row is not 32 bytes".into()))?,
        );
        return get_identity(store, NODE_SCOPE, &public);
    }
    let key = match import {
        Some(seed) => SigningKey::from_seed(seed),
        None => SigningKey::generate().map_err(|e| NodeError::Config(format!("generating an identity: {e}")))?,
    };
    store.write(|txn| {
        let record = weft_primitives::encoding::encode(&IdentityRecord { seed: key.to_seed() });
        txn.put(IDENTITIES, &(NODE_SCOPE, key.public_key()), &record)?;
        txn.put(META, DEFAULT_IDENTITY_KEY, &key.public_key().0.to_vec())
    })?;
    Ok(key)
}

/// Store an application (idempotent).
pub fn put_application(txn: &mut WriteTxn, id: Hash, record: &AppRecord) -> Result<(), StoreError> {
    txn.put(APPLICATIONS, &id, &weft_primitives::encoding::encode(record))
}

/// An installed application.
pub fn get_application(store: &Store, id: &Hash) -> Result<Option<AppRecord>, NodeError> {
    let Some(bytes) = store.read()?.get(APPLICATIONS, id)? else { return Ok(None) };
    let record = weft_primitives::encoding::decode(&bytes)
        .map_err(|e| NodeError::Config(format!("application record {id}: {e}")))?;
    Ok(Some(record))
}

/// Every installed application.
pub fn list_applications(store: &Store) -> Result<Vec<(Hash, AppRecord)>, NodeError> {
    let rows = store.read()?.scan(APPLICATIONS, &[], None, CONTEXTS_PAGE_MAX)?;
    rows.into_iter()
        .map(|(id, bytes)| {
            let record = weft_primitives::encoding::decode(&bytes)
                .map_err(|e| NodeError::Config(format!("application record {id}: {e}")))?;
            Ok((id, record))
        })
        .collect()
}

/// Store a context record.
pub fn put_context(txn: &mut WriteTxn, record: &ContextRecord) -> Result<(), StoreError> {
    txn.put(CONTEXTS, &record.id, &weft_primitives::encoding::encode(record))
}

/// Every context this node is in.
pub fn list_contexts(store: &Store) -> Result<Vec<ContextRecord>, NodeError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = store.read()?.scan(CONTEXTS, &[], after.as_ref(), CONTEXTS_PAGE_MAX)?;
        let Some((last, _)) = rows.last() else { return Ok(out) };
        after = Some(*last);
        for (id, bytes) in rows {
            let record = weft_primitives::encoding::decode(&bytes)
                .map_err(|e| NodeError::Restore { context: id, reason: format!("context record: {e}") })?;
            out.push(record);
        }
    }
}

/// The group keys this node holds: (context, the epoch's rotating delta) ->
/// borsh [`GroupKeyRecord`]. Created with the first key written to it.
pub const GROUP_KEYS: Table<(Hash, Hash), Vec<u8>> = Table::new("group_keys");

/// The most key epochs read per context at start.
const GROUP_KEYS_MAX: usize = 1 << 16;

/// One stored group key.
#[derive(BorshSerialize, BorshDeserialize)]
struct GroupKeyRecord {
    number: u64,
    key: [u8; 32],
}

/// Store the key of `epoch` in `context`.
pub fn put_group_key(txn: &mut WriteTxn, context: Hash, epoch: KeyEpoch, key: &[u8; 32]) -> Result<(), StoreError> {
    let record = weft_primitives::encoding::encode(&GroupKeyRecord { number: epoch.number, key: *key });
    txn.put(GROUP_KEYS, &(context, epoch.rotation), &record)
}

/// Every key this node holds in `context`, by epoch (none for a context
/// written before schema 5: its record's key is epoch 0's).
pub fn group_keys(store: &Store, context: Hash) -> Result<Vec<(KeyEpoch, [u8; 32])>, NodeError> {
    let rows = match store.read()?.scan(GROUP_KEYS, context.as_bytes(), None, GROUP_KEYS_MAX) {
        Ok(rows) => rows,
        Err(StoreError::MissingTable { .. }) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    rows.into_iter()
        .map(|((_, rotation), bytes)| {
            let record: GroupKeyRecord = weft_primitives::encoding::decode(&bytes)
                .map_err(|e| NodeError::Restore { context, reason: format!("group key record: {e}") })?;
            Ok((KeyEpoch { number: record.number, rotation }, record.key))
        })
        .collect()
}
