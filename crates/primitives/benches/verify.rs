//! Micro-benchmark: a signature check through `PublicKey::verify` (the
//! decompressed key cached per thread) against the same check decompressing
//! the key every time (the baseline, in the same run). One JSON line per
//! figure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use weft_primitives::SigningKey;

/// How long each figure is measured for.
const MEASURE_FOR: Duration = Duration::from_millis(1500);
/// Iterations between clock reads.
const BATCH: u64 = 16;

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.3}, \"unit\": \"{unit}\"}}");
}

/// Operations per second of `op`, run in batches until `MEASURE_FOR` elapses.
fn ops_per_second(mut op: impl FnMut()) -> f64 {
    for _ in 0..BATCH {
        op();
    }
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < MEASURE_FOR {
        for _ in 0..BATCH {
            op();
        }
        done += BATCH;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let signer = SigningKey::from_seed([5; 32]);
    let key = signer.public_key();
    let message = [7u8; 32];
    let signature = signer.sign(&message);
    let baseline = ops_per_second(|| {
        let point = ed25519_dalek::VerifyingKey::from_bytes(black_box(&key.0))
            .map(|point| point.verify_strict(black_box(&message), &ed25519_dalek::Signature::from_bytes(&signature.0)));
        black_box(point.is_ok_and(|checked| checked.is_ok()));
    });
    let cached = ops_per_second(|| {
        black_box(key.verify(black_box(&message), &signature).is_ok());
    });
    emit("verify_decompressing_each_time_ops", baseline, "checks/s");
    emit("verify_cached_key_ops", cached, "checks/s");
    emit("verify_cached_ratio_to_baseline", cached / baseline, "ratio");
}
