//! Store throughput on a real file: one durable transaction per write vs.
//! group commit from 8 threads, and scans. One JSON line per figure.
//!
//! Run: `cargo bench -j2 -p weft-store`. The whole run stays under a minute:
//! if single durable transactions are slow on this disk (fsync-bound), the
//! single-transaction and closed-loop figures use 5,000 writes instead of
//! 100,000, and the `*_count` lines say which.

use std::time::Instant;

use weft_primitives::Hash;
use weft_store::{CONTEXTS, DELTAS, Store, StoreError, WriteBatch};

const WRITES: usize = 100_000;
const SLOW_DISK_WRITES: usize = 5_000;
const THREADS: usize = 8;
const VALUE_BYTES: usize = 64;
const SCAN_PAGE: usize = 10_000;
/// If single durable transactions would take longer than this, measure fewer.
const SINGLE_BUDGET_SECS: f64 = 30.0;

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

fn key(i: usize) -> Hash {
    Hash::of(&(i as u64).to_le_bytes())
}

fn single_write(store: &Store, i: usize) -> Result<(), StoreError> {
    store.write(|txn| txn.put(CONTEXTS, &key(i), &vec![7u8; VALUE_BYTES]))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // 1. One durable transaction per write.
    let store = Store::open(dir.path().join("single.redb"))?;
    let probe = 500;
    let start = Instant::now();
    for i in 0..probe {
        single_write(&store, i)?;
    }
    let projected = start.elapsed().as_secs_f64() / probe as f64 * WRITES as f64;
    let single_count = if projected <= SINGLE_BUDGET_SECS { WRITES } else { SLOW_DISK_WRITES };
    let start = Instant::now();
    for i in probe..probe + single_count {
        single_write(&store, i)?;
    }
    let single_rate = single_count as f64 / start.elapsed().as_secs_f64();
    drop(store);
    emit("single_txn_count", single_count as f64, "writes");
    emit("single_txn_durable", single_rate, "writes/s");

    // 2. The same writes through one GroupCommitter, 8 threads submitting
    //    without waiting in between (they wait for all their tickets at the end).
    let store = Store::open(dir.path().join("group.redb"))?;
    let committer = store.group_committer()?;
    let start = Instant::now();
    let sequences = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let committer = &committer;
                scope.spawn(move || -> Result<Vec<u64>, StoreError> {
                    let tickets = (t..WRITES)
                        .step_by(THREADS)
                        .map(|i| {
                            let mut batch = WriteBatch::new();
                            batch.put(CONTEXTS, &key(i), &vec![7u8; VALUE_BYTES]);
                            committer.submit(batch)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    tickets.into_iter().map(|ticket| ticket.wait().map(|info| info.sequence)).collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(Err(StoreError::CommitterGone)))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let group_rate = WRITES as f64 / start.elapsed().as_secs_f64();
    let commits = sequences.iter().flatten().collect::<std::collections::BTreeSet<_>>().len();
    emit("group_commit_8_threads_pipelined", group_rate, "writes/s");
    emit("group_commit_8_threads_pipelined_vs_single_txn", group_rate / single_rate, "ratio");
    emit("group_commit_8_threads_pipelined_batches_per_commit", WRITES as f64 / commits as f64, "batches");

    // 3. Closed loop: 8 writers that each wait for their acknowledgement
    //    before the next write (an API server with 8 callers in flight).
    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let committer = &committer;
                scope.spawn(move || -> Result<(), StoreError> {
                    for i in (t..single_count).step_by(THREADS) {
                        let mut batch = WriteBatch::new();
                        batch.put(DELTAS, &(Hash::ZERO, key(i)), &vec![7u8; VALUE_BYTES]);
                        committer.submit(batch)?.wait()?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|handle| handle.join().unwrap_or(Err(StoreError::CommitterGone)))
    })?;
    let closed_rate = single_count as f64 / start.elapsed().as_secs_f64();
    committer.close()?;
    emit("group_commit_8_threads_closed_loop", closed_rate, "writes/s");
    emit("group_commit_8_threads_closed_loop_vs_single_txn", closed_rate / single_rate, "ratio");

    // 4. Scan the 100k keys written in step 2, in pages, and read each once.
    let read = store.read()?;
    let start = Instant::now();
    let mut scanned = 0usize;
    let mut after = None;
    loop {
        let page = read.scan(CONTEXTS, &[], after.as_ref(), SCAN_PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        scanned += page.len();
    }
    let scan_rate = scanned as f64 / start.elapsed().as_secs_f64();
    emit("scan_keys", scanned as f64, "keys");
    emit("scan_100k_keys_paged", scan_rate, "keys/s");
    let start = Instant::now();
    for i in 0..WRITES {
        if read.get(CONTEXTS, &key(i))?.is_none() {
            return Err(format!("key {i} written in step 2 is missing").into());
        }
    }
    emit("get_100k_keys", WRITES as f64 / start.elapsed().as_secs_f64(), "keys/s");
    Ok(())
}
