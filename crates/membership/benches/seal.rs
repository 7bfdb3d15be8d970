//! Micro-benchmark: gossip seal+open at 1 KiB and 64 KiB, key wrap+unwrap, and
//! invitation create+verify. One JSON line per figure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use weft_membership::{GroupKey, Invitation, open_gossip, seal_gossip, unwrap_group_key, wrap_group_key};
use weft_primitives::{Hash, SigningKey};

/// How long each figure is measured for.
const MEASURE_FOR: Duration = Duration::from_millis(1500);
/// Iterations between clock reads.
const BATCH: u64 = 16;

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = GroupKey::generate()?;
    let context = Hash::of(b"bench context");

    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let id = Hash::of(&plaintext);
        let ops = ops_per_second(|| {
            let sealed = seal_gossip(&key, &context, &id, black_box(&plaintext)).unwrap_or_default();
            black_box(open_gossip(&key, &context, &sealed).is_ok());
        });
        emit(&format!("seal_open_{label}_ops"), ops, "ops/s");
        emit(&format!("seal_open_{label}_throughput"), ops * size as f64 / 1e6, "MB/s");
    }

    let member = SigningKey::from_seed([7; 32]);
    let public = member.public_key();
    let ops = ops_per_second(|| {
        if let Ok(wrapped) = wrap_group_key(&key, &context, black_box(&public)) {
            black_box(unwrap_group_key(&wrapped, &context, &member).is_ok());
        }
    });
    emit("wrap_unwrap_ops", ops, "ops/s");

    let inviter = SigningKey::from_seed([8; 32]);
    let addrs = vec!["/ip4/127.0.0.1/tcp/4001".to_owned()];
    let ops = ops_per_second(|| {
        if let Ok(invitation) = Invitation::create(&inviter, context, None, u64::MAX, [1; 32], addrs.clone()) {
            black_box(invitation.verify(0, &public).is_ok());
        }
    });
    emit("invitation_create_verify_ops", ops, "ops/s");
    Ok(())
}
