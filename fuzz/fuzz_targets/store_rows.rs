//! Rows as the node reads them back from its database: the store's key
//! decoders (`weft_store::StoreKey::decode_key` of every key type), its
//! value encodings (borsh `Vec<u8>`, heads, the schema version), and the
//! node's records (contexts, applications, identities, the peer book,
//! handler jobs and dead letters, a context's forgotten history and member
//! sets) read through a real (in-memory) store by the node's own loaders. Asserts: no panic, a corrupt row is an error;
//! every key and value decoder is canonical (an accepted input re-encodes
//! to itself), but for the peer record, whose value round-trips.
#![no_main]

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use weft_node::peers::{PeerBook, PeerRecord};
use weft_node::records::{AppRecord, ContextRecord, NODE_SCOPE, get_identity, list_applications, list_contexts};
use weft_node::{DeadJob, DiskReplicaStore, HandlerJob};
use weft_primitives::{Hash, PublicKey, encoding};
use weft_store::{
    APPLICATIONS, CONTEXTS, DEAD_JOBS, FORGOTTEN_HISTORY, IDENTITIES, JOBS, MEMBER_SETS, PEERS, Store,
    StoreError, StoreKey, WriteTxn,
};
use weft_sync::{ForgottenHistory, MemberSet};

const CONTEXT: Hash = Hash([3; 32]);

fn key<K: StoreKey + ?Sized>(what: &str, data: &[u8])
where
    K::Owned: std::borrow::Borrow<K> + Debug,
{
    if let Ok(key) = K::decode_key(data) {
        let again = std::borrow::Borrow::<K>::borrow(&key).key_bytes();
        weft_fuzz::canonical(what, data, &key, &again);
    }
}

fn value<V: borsh::BorshDeserialize + borsh::BorshSerialize + Debug>(what: &str, data: &[u8]) {
    if let Ok(value) = encoding::decode::<V>(data) {
        weft_fuzz::canonical(what, data, &value, &encoding::encode(&value));
    }
}

fn store() -> &'static Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE.get_or_init(|| match Store::open_in_memory() {
        Ok(store) => Arc::new(store),
        Err(error) => panic!("opening an in-memory store: {error}"),
    })
}

/// The rows one input becomes: its bytes under one key of each table.
fn rows(txn: &mut WriteTxn, data: &[u8], put: bool) -> Result<(), StoreError> {
    let public = identity_key(data);
    if put {
        let bytes = data.to_vec();
        txn.put(CONTEXTS, &CONTEXT, &bytes)?;
        txn.put(APPLICATIONS, &Hash([4; 32]), &bytes)?;
        txn.put(PEERS, &PublicKey([5; 32]), &bytes)?;
        txn.put(IDENTITIES, &(NODE_SCOPE, public), &bytes)?;
        txn.put(JOBS, &(CONTEXT, 0), &bytes)?;
        txn.put(DEAD_JOBS, &(CONTEXT, 0), &bytes)?;
        txn.put(FORGOTTEN_HISTORY, &CONTEXT, &bytes)?;
        txn.put(MEMBER_SETS, &(CONTEXT, Hash::of(data)), &bytes)?;
    } else {
        txn.delete(CONTEXTS, &CONTEXT)?;
        txn.delete(APPLICATIONS, &Hash([4; 32]))?;
        txn.delete(PEERS, &PublicKey([5; 32]))?;
        txn.delete(IDENTITIES, &(NODE_SCOPE, public))?;
        txn.delete(JOBS, &(CONTEXT, 0))?;
        txn.delete(DEAD_JOBS, &(CONTEXT, 0))?;
        txn.delete(FORGOTTEN_HISTORY, &CONTEXT)?;
        txn.delete(MEMBER_SETS, &(CONTEXT, Hash::of(data)))?;
    }
    Ok(())
}

fn identity_key(data: &[u8]) -> PublicKey {
    PublicKey(data.get(..32).and_then(|b| <[u8; 32]>::try_from(b).ok()).unwrap_or([6; 32]))
}

fuzz_target!(|data: &[u8]| {
    key::<Hash>("Hash key", data);
    key::<PublicKey>("PublicKey key", data);
    key::<(Hash, Hash)>("(Hash, Hash) key", data);
    key::<(Hash, PublicKey)>("(Hash, PublicKey) key", data);
    key::<(Hash, Vec<u8>)>("(Hash, bytes) key", data);
    key::<(Hash, u64)>("(Hash, u64) key", data);
    key::<str>("str key", data);

    value::<Vec<u8>>("bytes row", data);
    value::<Vec<Hash>>("heads row", data);
    value::<u32>("schema version row", data);
    // Not canonical, and not promised to be: borsh (without its
    // `de_strict_order` feature) accepts a set's elements in any order and
    // sorts them, so only the value round-trips. A peer record is a local
    // hint, never hashed or signed. (Seed `peer_record_unsorted_contexts`.)
    if let Ok(record) = encoding::decode::<PeerRecord>(data) {
        assert_eq!(encoding::decode::<PeerRecord>(&encoding::encode(&record)).as_ref(), Ok(&record));
    }
    value::<HandlerJob>("HandlerJob", data);
    value::<ForgottenHistory>("ForgottenHistory", data);
    // Maps and sets inside: borsh accepts their elements in any order, so
    // only the value round-trips (as for the peer record).
    if let Ok(set) = MemberSet::decode(data) {
        assert_eq!(MemberSet::decode(&set.encode()).as_ref(), Ok(&set));
    }
    value::<DeadJob>("DeadJob", data);
    if let Ok(record) = encoding::decode::<ContextRecord>(data) {
        weft_fuzz::canonical("ContextRecord", data, &record, &encoding::encode(&record));
    }
    if let Ok(record) = encoding::decode::<AppRecord>(data) {
        weft_fuzz::canonical("AppRecord", data, &record, &encoding::encode(&record));
    }

    // The node's loaders over a store holding these bytes as rows.
    let store = store();
    if store.write(|txn| rows(txn, data, true)).is_err() {
        return;
    }
    let _ = list_contexts(store);
    let _ = list_applications(store);
    let _ = get_identity(store, NODE_SCOPE, &identity_key(data));
    if let Ok(mut book) = PeerBook::load(store) {
        let _ = book.flush(store);
    }
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let cache = weft_node::StateCache::new(1 << 20);
    if let Ok((replica_store, _jobs)) =
        DiskReplicaStore::open(
        Arc::clone(store),
        CONTEXT,
        PublicKey([1; 32]),
        inbox,
        BTreeSet::new(),
        4,
        cache,
        weft_node::CommitTurn::default(),
    )
    {
        let _ = replica_store.dead_jobs(10);
        let _ = replica_store.load_jobs(0, 10);
        {
            use weft_sync::ReplicaStore;
            let _ = replica_store.load_forgotten();
            let _ = replica_store.member_set(&Hash::of(data));
            let _ = replica_store.forgotten_point(&Hash::of(data));
        }
        // The state is read on demand now: read it through the replica's
        // view (a scan, and a get of each key found, the second one cached).
        use weft_primitives::kv::KvRead;
        use weft_sync::ReplicaStore;
        if let Ok(rows) = replica_store.state().scan(b"", None, 64) {
            for (key, _) in rows {
                let _ = replica_store.state().get(&key);
                let _ = replica_store.state().get(&key);
            }
        }
    }
    if let Err(error) = store.write(|txn| rows(txn, data, false)) {
        panic!("clearing the rows: {error}");
    }
});
