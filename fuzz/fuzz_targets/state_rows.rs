//! A context's state rows as read back from the disk (`weft_state` over
//! `KvRead`: index, entry, child and Merkle tree rows). A small state with
//! one collection of every kind is built once; each input damages its rows
//! (u32-BE frames: `[op, row, bytes…]` replaces, deletes or adds a row), then
//! the root hash, the from-scratch recomputation, the materialized tree,
//! reads, a new write and the re-application of the original actions run
//! over it. Asserts: no panic, only errors; the undamaged state's hashes
//! agree.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weft_primitives::encoding::{FRAME_BYTES_MAX, split_frame};
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};
use weft_primitives::{Hlc, SigningKey};
use weft_state::{
    Action, CrdtKind, EntityId, StateTxn, StorageKind, apply_actions, materialize, recompute_root_hash, root_hash,
    root_id,
};

struct Base {
    kv: MemoryKv,
    keys: Vec<Vec<u8>>,
    actions: Vec<Action>,
    collections: Vec<(EntityId, CrdtKind)>,
}

fn signer() -> SigningKey {
    SigningKey::from_seed([1; 32])
}

fn build() -> Result<Base, weft_state::StateError> {
    let signer = signer();
    let empty = MemoryKv::new();
    let mut txn = StateTxn::new(&empty, weft_primitives::Hash::ZERO, &signer, Hlc { wall_ms: 1, counter: 0 });
    let root = root_id();
    txn.map_insert(root, b"name", b"weft")?;
    let mut collections = vec![(root, CrdtKind::Map)];
    for kind in [
        CrdtKind::LwwRegister,
        CrdtKind::GCounter,
        CrdtKind::PnCounter,
        CrdtKind::Map,
        CrdtKind::Set,
        CrdtKind::Vector,
        CrdtKind::Text,
    ] {
        let id = txn.create(root, &[kind.tag()], kind, StorageKind::Public)?;
        collections.push((id, kind));
        match kind {
            CrdtKind::LwwRegister => txn.register_set(id, b"value")?,
            CrdtKind::GCounter | CrdtKind::PnCounter => txn.counter_add(id, 3)?,
            CrdtKind::Map => {
                // Enough entries for a Merkle tree of more than one node.
                for i in 0u8..40 {
                    txn.map_insert(id, &[i], &[i; 3])?;
                }
            }
            CrdtKind::Set => {
                txn.set_add(id, b"a")?;
                txn.set_add(id, b"b")?;
            }
            CrdtKind::Vector => {
                txn.vector_push(id, b"x")?;
                txn.vector_push(id, b"y")?;
            }
            CrdtKind::Text => txn.text_insert(id, 0, "hello")?,
        }
    }
    let commit = txn.commit()?;
    let mut kv = MemoryKv::new();
    kv.apply(commit.writes);
    let keys =
        kv.scan(&[], None, usize::MAX).map_err(weft_state::StateError::from)?.into_iter().map(|(k, _)| k).collect();
    assert_eq!(root_hash(&kv).ok(), Some(commit.root_hash));
    assert_eq!(recompute_root_hash(&kv).ok(), Some(commit.root_hash));
    Ok(Base { kv, keys, actions: commit.actions, collections })
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| match build() {
        Ok(base) => base,
        Err(error) => panic!("building the base state: {error}"),
    })
}

fn reads(kv: &MemoryKv, collections: &[(EntityId, CrdtKind)]) {
    let mut txn = StateTxn::read_only(kv);
    for (id, kind) in collections {
        let id = *id;
        let _ = match kind {
            CrdtKind::LwwRegister => txn.register_get(id).map(drop),
            CrdtKind::GCounter | CrdtKind::PnCounter => txn.counter_value(id).map(drop),
            CrdtKind::Map => txn.map_entries(id, None, 100).map(drop).and(txn.map_len(id).map(drop)),
            CrdtKind::Set => txn.set_iter(id, None, 100).map(drop).and(txn.set_contains(id, b"a").map(drop)),
            CrdtKind::Vector => txn.vector_get(id, 1).map(drop).and(txn.vector_len(id).map(drop)),
            CrdtKind::Text => txn.text_read(id).map(drop),
        };
    }
}

fuzz_target!(|data: &[u8]| {
    weft_fuzz::init();
    let base = base();
    let mut damage = WriteSet::new();
    let mut rest = data;
    while let Ok(Some((frame, after))) = split_frame(rest, FRAME_BYTES_MAX) {
        rest = after;
        let [op, row, bytes @ ..] = frame else { continue };
        let key = base.keys[usize::from(*row) % base.keys.len()].clone();
        match op % 3 {
            0 => damage.put(key, bytes.to_vec()),
            1 => damage.delete(key),
            _ => damage.put([&key[..], bytes].concat(), bytes.to_vec()),
        }
    }
    let mut kv = base.kv.clone();
    kv.apply(damage);
    let _ = root_hash(&kv);
    let _ = recompute_root_hash(&kv);
    let _ = materialize(&kv);
    reads(&kv, &base.collections);
    let _ = apply_actions(&kv, &weft_primitives::Hash::ZERO, &signer().public_key(), &base.actions);
    let signer = signer();
    let mut txn = StateTxn::new(&kv, weft_primitives::Hash::ZERO, &signer, Hlc { wall_ms: 2, counter: 0 });
    for (id, kind) in &base.collections {
        let _ = match kind {
            CrdtKind::Map => txn.map_insert(*id, b"new", b"row"),
            CrdtKind::Text => txn.text_insert(*id, 1, "!"),
            CrdtKind::Vector => txn.vector_set(*id, 0, b"z"),
            _ => Ok(()),
        };
    }
    let _ = txn.commit();
});
