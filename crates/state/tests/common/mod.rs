//! Test replicas: a store, a signing key, and a clock.

#![allow(dead_code)]
// Helpers outside #[test] fns are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use weft_primitives::kv::MemoryKv;
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_state::{Action, Commit, StateError, StateTxn, apply_actions, recompute_root_hash, root_hash};

/// The context every test replica writes in (owners sign for it).
pub const CONTEXT: Hash = Hash([7; 32]);

/// One replica of a context's state.
pub struct Replica {
    pub kv: MemoryKv,
    pub key: SigningKey,
    pub next: Hlc,
}

impl Replica {
    pub fn new(seed: u8) -> Replica {
        Replica { kv: MemoryKv::new(), key: SigningKey::from_seed([seed; 32]), next: Hlc::new(1, 0) }
    }

    pub fn author(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Run a local transaction at wall time `wall_ms` (or later, if the
    /// clock is ahead), commit its writes, return its actions.
    pub fn txn_at<R>(
        &mut self,
        wall_ms: u64,
        f: impl FnOnce(&mut StateTxn<'_, MemoryKv>) -> Result<R, StateError>,
    ) -> Result<(R, Vec<Action>), StateError> {
        let start = if wall_ms > self.next.wall_ms { Hlc::new(wall_ms, 0) } else { self.next };
        let mut txn = StateTxn::new(&self.kv, CONTEXT, &self.key, start);
        let out = f(&mut txn)?;
        let Commit { actions, writes, root_hash: root, last_hlc } = txn.commit()?;
        self.kv.apply(writes);
        if let Some(last) = last_hlc {
            self.observe(last);
        }
        assert_eq!(root, root_hash(&self.kv).unwrap());
        Ok((out, actions))
    }

    pub fn txn<R>(
        &mut self,
        f: impl FnOnce(&mut StateTxn<'_, MemoryKv>) -> Result<R, StateError>,
    ) -> Result<(R, Vec<Action>), StateError> {
        self.txn_at(0, f)
    }

    /// Read without writing.
    pub fn read<R>(&self, f: impl FnOnce(&mut StateTxn<'_, MemoryKv>) -> Result<R, StateError>) -> R {
        let mut txn = StateTxn::read_only(&self.kv);
        f(&mut txn).unwrap()
    }

    /// Apply a remote delta's actions; commits on success.
    pub fn receive(&mut self, author: &PublicKey, actions: &[Action]) -> Result<Hash, StateError> {
        let applied = apply_actions(&self.kv, &CONTEXT, author, actions)?;
        self.kv.apply(applied.writes);
        if let Some(last) = actions.iter().map(|a| a.stamp.hlc).max() {
            self.observe(last);
        }
        Ok(applied.root_hash)
    }

    fn observe(&mut self, hlc: Hlc) {
        if hlc >= self.next {
            self.next = Hlc::new(hlc.wall_ms, hlc.counter.saturating_add(1));
        }
    }

    pub fn root(&self) -> Hash {
        root_hash(&self.kv).unwrap()
    }

    /// The incremental root, checked against the full recomputation.
    pub fn checked_root(&self) -> Hash {
        let root = self.root();
        assert_eq!(root, recompute_root_hash(&self.kv).unwrap(), "incremental root differs from recomputation");
        root
    }
}
