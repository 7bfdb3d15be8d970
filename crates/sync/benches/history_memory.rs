//! Memory a replica keeps per applied delta once the delta's payload is
//! pruned from memory, and once the delta is forgotten entirely (issue 11,
//! item 5): the resident set grown per delta over 100 000 local writes with
//! `history_kept_max` = 1 000, then the same with `history_remembered_max`
//! = 1 000 too, against the bytes of what a pruned delta must still answer
//! for in memory, its id and its one parent link (64 bytes, the baseline).
//! Prints one JSON line per figure.
//!
//! The store keeps no rows and no forgotten points (they would be on disk
//! in a node), and every write sets the same key, so the state does not
//! grow: what grows is the replica's own bookkeeping. Run with
//! `cargo bench -p weft-sync --bench history_memory`.

use weft_primitives::kv::MemoryKv;
use weft_primitives::{Hash, SigningKey};
use weft_state::root_id;
use weft_sync::{
    AppliedRow, Config, ForgetStep, ForgottenHistory, Input, Output, PeerId, Replica, ReplicaParams, ReplicaStore,
    StoreError,
};

/// A store that keeps the state and forgets every row: the replica's
/// memory is all that grows.
#[derive(Default)]
struct StateOnly {
    kv: MemoryKv,
}

impl ReplicaStore for StateOnly {
    type Kv = MemoryKv;

    fn state(&self) -> &MemoryKv {
        &self.kv
    }

    fn commit_applied(&mut self, row: AppliedRow<'_>) -> Result<(), StoreError> {
        self.kv.apply(row.writes);
        Ok(())
    }

    fn put_pending(&mut self, _: weft_dag::DeltaId, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }

    fn remove_pending(&mut self, _: &[weft_dag::DeltaId]) -> Result<(), StoreError> {
        Ok(())
    }

    fn load_applied(&self, _: Option<u64>, _: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }

    fn load_pending(&self, _: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(Vec::new())
    }

    fn forget(&mut self, _: ForgetStep) -> Result<(), StoreError> {
        Ok(())
    }

    fn forgotten_point(&self, _: &Hash) -> Result<Option<Hash>, StoreError> {
        Ok(None)
    }

    fn member_set(&self, _: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn load_forgotten(&self) -> Result<ForgottenHistory, StoreError> {
        Ok(ForgottenHistory::default())
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().strip_suffix("kB").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

fn write(replica: &mut Replica<StateOnly>, token: u64) -> Result<(), String> {
    let now = 1_000 + token;
    let prepared = replica
        .prepare_write(token, now, |txn| {
            txn.map_insert(root_id(), b"key", &token.to_le_bytes())?;
            Ok(Vec::new())
        })
        .map_err(|error| error.to_string())?;
    let outputs = replica.handle(Input::LocalWrite(prepared), now);
    match outputs.iter().any(|output| matches!(output, Output::WriteCommitted { .. })) {
        true => Ok(()),
        false => Err(format!("write {token} not committed: {outputs:?}")),
    }
}

const WARM_UP: u64 = 10_000;
const WRITES: u64 = 100_000;
const KEPT: usize = 1_000;

/// Bytes of resident memory grown per write after the warm-up, with
/// `config`; the replica is dropped before returning.
fn rss_per_write(config: Config) -> Result<(f64, Replica<StateOnly>), String> {
    let key = SigningKey::from_seed([7; 32]);
    let params = ReplicaParams {
        context: Hash::of(b"history memory"),
        genesis: Hash::of(b"history memory genesis"),
        local_peer: PeerId([1; 32]),
        identity: key.clone(),
        members: vec![key.public_key()],
        config,
        rng_seed: 1,
        store: StateOnly::default(),
    };
    let mut replica = Replica::new(params, 0).map_err(|error| error.to_string())?;
    for token in 0..WARM_UP {
        write(&mut replica, token)?;
    }
    let warm_kib = rss_kib();
    for token in WARM_UP..WRITES {
        write(&mut replica, token)?;
    }
    let end_kib = rss_kib();
    Ok(((end_kib.saturating_sub(warm_kib) * 1024) as f64 / (WRITES - WARM_UP) as f64, replica))
}

fn main() -> Result<(), String> {
    // Forgetting first: its run frees little for the second to reuse.
    let remembered = Config { history_kept_max: Some(KEPT), history_remembered_max: Some(KEPT), ..Config::default() };
    let (forgotten_per_delta, replica) = rss_per_write(remembered)?;
    if replica.forgotten_count() + KEPT as u64 * 2 < WRITES {
        return Err(format!("only {} of {WRITES} deltas forgotten", replica.forgotten_count()));
    }
    drop(replica);
    let (per_delta, replica) = rss_per_write(Config { history_kept_max: Some(KEPT), ..Config::default() })?;
    if replica.dag().pruned_count() as u64 + KEPT as u64 * 2 < WRITES {
        return Err(format!("only {} of {WRITES} deltas pruned", replica.dag().pruned_count()));
    }
    figure("history_memory_pruned_deltas", replica.dag().pruned_count() as f64, "deltas");
    figure("history_memory_rss_per_pruned_delta", per_delta, "bytes");
    figure("history_memory_rss_per_forgotten_delta", forgotten_per_delta, "bytes");
    figure("history_memory_baseline_id_and_link", 64.0, "bytes");
    figure("history_memory_ratio_to_baseline", per_delta / 64.0, "ratio");
    figure("history_memory_forgotten_ratio_to_baseline", forgotten_per_delta / 64.0, "ratio");
    Ok(())
}
