//! DAG throughput: 100k deltas of a realistic shape (mostly linear chains,
//! occasional forks and merges, 1–3 parents) added in order, in reverse order
//! and in random order, plus "add with parents ready" on 1M deltas.
//!
//! Prints one JSON line per figure; ratios are against the in-order time
//! measured in the same run. Each figure is the best of `REPEATS` runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use weft_dag::{CausalDelta, DagLimits, DagStore, DeltaApplier, DeltaId};
use weft_primitives::{Hash, Hlc};

const DELTAS: usize = 100_000;
const PARENTS_READY_DELTAS: usize = 1_000_000;
const REPEATS: usize = 3;
/// Concurrent branches the generator allows before it only merges.
const TIPS_MAX: usize = 8;
const PAYLOAD_BYTES: usize = 16;

type Payload = Vec<u8>;

/// Counts applications; stands in for the state layer.
struct CountingApplier(u64);

impl DeltaApplier<Payload> for CountingApplier {
    type Error = std::convert::Infallible;

    fn apply(&mut self, delta: &CausalDelta<Payload>) -> Result<(), Self::Error> {
        self.0 += delta.payload.len() as u64;
        Ok(())
    }
}

/// `n` deltas in a topological order: 92% extend a tip, 4% fork a tip, 4%
/// merge 2–3 tips.
fn realistic_dag(n: usize, root: DeltaId, seed: u64) -> Vec<CausalDelta<Payload>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut tips = vec![root];
    let mut deltas = Vec::with_capacity(n);
    for i in 0..n {
        let id = Hash::derive("weft-dag bench delta", &[&(i as u64).to_le_bytes()]);
        let roll = rng.random_range(0..100);
        let parents = if roll < 4 && tips.len() < TIPS_MAX {
            let parent = tips[rng.random_range(0..tips.len())];
            tips.push(id);
            vec![parent]
        } else if (roll < 8 || tips.len() >= TIPS_MAX) && tips.len() >= 2 {
            tips.shuffle(&mut rng);
            let take = rng.random_range(2..=3).min(tips.len());
            let parents: Vec<DeltaId> = tips.drain(..take).collect();
            tips.push(id);
            parents
        } else {
            let slot = rng.random_range(0..tips.len());
            let parent = tips[slot];
            tips[slot] = id;
            vec![parent]
        };
        let payload = vec![(i % 251) as u8; PAYLOAD_BYTES];
        deltas.push(CausalDelta { id, parents, hlc: Hlc::new(i as u64, 0), payload });
    }
    deltas
}

/// Time to add `deltas` (in the given order) to a fresh store, best of
/// `REPEATS`. Cloning the input and dropping the store are not timed.
fn time_adds(root: DeltaId, deltas: &[CausalDelta<Payload>]) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..REPEATS {
        let input = deltas.to_vec();
        // A buffer large enough that reverse order never evicts.
        let limits = DagLimits { pending_max: deltas.len(), ..DagLimits::default() };
        let mut dag = DagStore::new(root, limits);
        let mut applier = CountingApplier(0);
        let start = Instant::now();
        for delta in input {
            if dag.add(delta, 0, &mut applier).is_err() {
                eprintln!("unexpected add error");
                std::process::exit(1);
            }
        }
        let elapsed = start.elapsed();
        if dag.applied_count() != deltas.len() || dag.pending_count() != 0 {
            eprintln!("bench input did not fully apply: {} applied", dag.applied_count());
            std::process::exit(1);
        }
        black_box(applier.0);
        best = best.min(elapsed);
        drop(dag);
    }
    best
}

fn print(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.3}, \"unit\": \"{unit}\"}}");
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let root = Hash::derive("weft-dag bench root", &[]);
    let in_order = realistic_dag(DELTAS, root, 7);
    let mut reversed = in_order.clone();
    reversed.reverse();
    let mut shuffled = in_order.clone();
    shuffled.shuffle(&mut SmallRng::seed_from_u64(11));

    let t_in_order = time_adds(root, &in_order);
    let t_reverse = time_adds(root, &reversed);
    let t_random = time_adds(root, &shuffled);
    print("dag_add_in_order_100k", per_second(DELTAS, t_in_order), "deltas/s");
    print("dag_add_reverse_order_100k", per_second(DELTAS, t_reverse), "deltas/s");
    print("dag_add_random_order_100k", per_second(DELTAS, t_random), "deltas/s");
    print("dag_reverse_vs_in_order_time", t_reverse.as_secs_f64() / t_in_order.as_secs_f64(), "ratio");
    print("dag_random_vs_in_order_time", t_random.as_secs_f64() / t_in_order.as_secs_f64(), "ratio");

    let ready = realistic_dag(PARENTS_READY_DELTAS, root, 13);
    let t_ready = time_adds(root, &ready);
    print("dag_add_parents_ready_1m", per_second(PARENTS_READY_DELTAS, t_ready), "deltas/s");
}
