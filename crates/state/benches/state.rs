//! State benchmarks: map insert throughput in memory, how the cost of an
//! insert grows with the map (1k vs 1M entries), and the cost of an insert
//! read through a `LayeredKv` while earlier inserts are still in flight (how
//! the node pipelines group commit). One JSON line per figure.
//!
//! Every commit's writes are applied to the `MemoryKv` (or, pipelined,
//! folded into the in-flight `WriteSet`), as a node would commit them, so the
//! figures include encoding and storing rows.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};
use weft_primitives::{Hlc, SigningKey};
use weft_state::{CrdtKind, EntityId, LayeredKv, StateTxn, StorageKind, root_id};

const THROUGHPUT_INSERTS: usize = 100_000;
const SMALL_MAP: usize = 1_000;
const LARGE_MAP: usize = 1_000_000;
const BUILD_BATCH: usize = 10_000;
const MEASURED_INSERTS: usize = 10_000;
const SMALL_ROUND: usize = 100;
/// Inserts submitted to the group committer but not yet durable, as in
/// `weft-bench`'s group-commit figure.
const IN_FLIGHT_INSERTS: usize = 512;

#[derive(Clone)]
struct Bench {
    kv: MemoryKv,
    key: SigningKey,
    wall_ms: u64,
    map: EntityId,
    rng: SmallRng,
    /// Rows written by all commits so far.
    rows_written: usize,
}

impl Bench {
    fn new(seed: u64) -> Bench {
        let mut bench = Bench {
            kv: MemoryKv::new(),
            key: SigningKey::from_seed([7; 32]),
            wall_ms: 1,
            map: root_id(),
            rng: SmallRng::seed_from_u64(seed),
            rows_written: 0,
        };
        bench.map = bench.commit(|t| t.create(root_id(), b"map", CrdtKind::Map, StorageKind::Public));
        bench
    }

    fn commit<R>(&mut self, f: impl FnOnce(&mut StateTxn<'_, MemoryKv>) -> Result<R, weft_state::StateError>) -> R {
        self.wall_ms += 1;
        let mut txn = StateTxn::new(&self.kv, weft_primitives::Hash::default(), &self.key, Hlc::new(self.wall_ms, 0));
        let out = f(&mut txn).unwrap();
        let commit = txn.commit().unwrap();
        self.rows_written += commit.writes.len();
        self.kv.apply(commit.writes);
        out
    }

    /// One single-insert transaction over `kv`; returns its writes.
    fn insert_over<K: KvRead + ?Sized>(&mut self, kv: &K) -> WriteSet {
        self.wall_ms += 1;
        let key: [u8; 16] = self.rng.random();
        let mut txn = StateTxn::new(kv, weft_primitives::Hash::default(), &self.key, Hlc::new(self.wall_ms, 0));
        txn.map_insert(self.map, &key, &[0xabu8; 32]).unwrap();
        txn.commit().unwrap().writes
    }

    /// Insert `count` random keys, `batch` per commit; returns seconds.
    fn insert(&mut self, count: usize, batch: usize) -> f64 {
        let map = self.map;
        let keys: Vec<[u8; 16]> = (0..count).map(|_| self.rng.random()).collect();
        let value = [0xabu8; 32];
        let start = Instant::now();
        for chunk in keys.chunks(batch) {
            self.commit(|t| {
                for key in chunk {
                    t.map_insert(map, key, &value)?;
                }
                Ok(())
            });
        }
        start.elapsed().as_secs_f64()
    }
}

/// Seconds for `MEASURED_INSERTS` single-insert commits into copies of
/// `base`, each read through a `LayeredKv` whose write set already holds
/// `IN_FLIGHT_INSERTS` earlier inserts; each commit's writes join the set,
/// as the node's pipeline does.
fn pipelined_secs(base: &Bench) -> f64 {
    let mut secs = 0.0;
    for round in 0..MEASURED_INSERTS / SMALL_ROUND {
        let mut bench = base.clone();
        bench.rng = SmallRng::seed_from_u64(5_000 + round as u64);
        let kv = bench.kv.clone();
        let mut in_flight = WriteSet::new();
        for _ in 0..IN_FLIGHT_INSERTS {
            let writes = bench.insert_over(&LayeredKv::new(&kv, &in_flight));
            in_flight.extend(writes);
        }
        let start = Instant::now();
        for _ in 0..SMALL_ROUND {
            let writes = bench.insert_over(&LayeredKv::new(&kv, &in_flight));
            in_flight.extend(writes);
        }
        secs += start.elapsed().as_secs_f64();
    }
    secs
}

fn report(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.2}, \"unit\": \"{unit}\"}}");
}

fn main() {
    for batch in [100, 1] {
        let mut bench = Bench::new(1);
        let secs = bench.insert(THROUGHPUT_INSERTS, batch);
        report(&format!("map_insert_100k_commit_per_{batch}"), THROUGHPUT_INSERTS as f64 / secs, "inserts/s");
    }

    let mut small_base = Bench::new(2);
    small_base.insert(SMALL_MAP, BUILD_BATCH);
    let pipelined_ns = pipelined_secs(&small_base) * 1e9 / MEASURED_INSERTS as f64;
    report("map_insert_into_1k_layered_512_in_flight_commit_per_1", pipelined_ns, "ns/insert");

    let mut large = Bench::new(3);
    let build = Instant::now();
    for _ in 0..LARGE_MAP / BUILD_BATCH {
        large.insert(BUILD_BATCH, BUILD_BATCH);
    }
    report("map_build_1m_batches_of_10k", LARGE_MAP as f64 / build.elapsed().as_secs_f64(), "inserts/s");

    for batch in [1, 100] {
        // The 1k map would grow to 11k over 10k inserts; keep it at ~1k by
        // measuring rounds of SMALL_ROUND inserts, each into a fresh copy.
        let mut small_secs = 0.0;
        let mut small_rows = 0;
        for round in 0..MEASURED_INSERTS / SMALL_ROUND {
            let mut small = small_base.clone();
            small.rng = SmallRng::seed_from_u64(1_000 + round as u64);
            small.rows_written = 0;
            small_secs += small.insert(SMALL_ROUND, batch);
            small_rows += small.rows_written;
        }
        let small_ns = small_secs * 1e9 / MEASURED_INSERTS as f64;
        large.rows_written = 0;
        let large_ns = large.insert(MEASURED_INSERTS, batch) * 1e9 / MEASURED_INSERTS as f64;
        let per_insert = |rows: usize| rows as f64 / MEASURED_INSERTS as f64;
        report(&format!("rows_written_per_insert_1k_commit_per_{batch}"), per_insert(small_rows), "rows");
        report(&format!("rows_written_per_insert_1m_commit_per_{batch}"), per_insert(large.rows_written), "rows");
        report(&format!("map_insert_into_1k_commit_per_{batch}"), small_ns, "ns/insert");
        report(&format!("map_insert_into_1m_commit_per_{batch}"), large_ns, "ns/insert");
        report(&format!("map_insert_cost_ratio_1m_over_1k_commit_per_{batch}"), large_ns / small_ns, "x");
    }
}
