//! `local_writes`: one node, one context, `kv-store` `set` calls through
//! the in-process `NodeHandle`, each counted once `call` returns (durable).
//!
//! Measured twice in the same run at each client count: with the node's
//! default group commit, and with `call_group_max = 1` (one fsync per
//! call, what the node did before group commit) as the baseline; the
//! figure is the ratio. Afterwards the node's kv `len` must equal the
//! acknowledged writes.
//!
//! `local_views`: `get` views with 8 clients while 8 clients write, against
//! the same views with 1 client on an idle node in the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tempfile::TempDir;
use weft_node::{Node, NodeHandle};
use weft_primitives::Hash;

use crate::harness::{config, kv_len, set};
use crate::report::{emit, ms, per_second, round3};

/// Client counts measured.
const CLIENT_COUNTS: [usize; 3] = [1, 8, 64];

/// Bytes this process has caused to be written to storage so far
/// (`write_bytes` of `/proc/self/io`); `None` where that is not available.
fn process_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|line| line.strip_prefix("write_bytes: ")).and_then(|n| n.trim().parse().ok())
}

/// What one measurement found.
pub struct Measured {
    pub writes_per_s: f64,
    pub acked: u64,
    /// Bytes written to storage during the writes, per acknowledged write.
    disk_written_per_write: Option<f64>,
    /// The database file's size after shutdown, per key.
    file_bytes_per_key: Option<f64>,
    /// Write transactions committed to the database, per acknowledged write.
    transactions_per_write: f64,
    /// Calls per group commit (calls / groups).
    mean_group: f64,
}

/// One measurement: acknowledged writes/s, and whether the store holds them all.
pub async fn measure(call_group_max: usize, clients: usize, seconds: u64) -> anyhow::Result<Measured> {
    let dir = TempDir::new().context("temporary data directory")?;
    let mut node_config = config(dir.path(), [1; 32]);
    node_config.call_group_max = call_group_max;
    let node = Node::start(node_config).await.context("starting the node")?;
    let app = node.install_application(weft_apps::KV_STORE.to_vec()).await?.id;
    let context = node.create_context(app, b"{}".to_vec()).await?.id;
    let stats_before = node.stats().await?;
    let written_before = process_write_bytes();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> =
        (0..clients).map(|client| tokio::spawn(write_until(node.clone(), context, client, deadline))).collect();
    let mut acked = 0;
    for task in tasks {
        acked += task.await.context("a client task failed")??;
    }
    let elapsed = started.elapsed();
    let written = process_write_bytes().zip(written_before).map(|(after, before)| after.saturating_sub(before));
    let stats = node.stats().await?;
    let transactions = stats.store_transactions.saturating_sub(stats_before.store_transactions);
    let groups = stats.call_groups.saturating_sub(stats_before.call_groups);
    let len = kv_len(&node, context).await?;
    node.shutdown().await?;
    if len != acked {
        bail!("kv len {len} differs from the {acked} acknowledged writes");
    }
    let file = std::fs::metadata(dir.path().join(weft_node::DATABASE_FILE)).ok().map(|m| m.len());
    let per_write = |bytes: u64| round3(bytes as f64 / acked.max(1) as f64);
    Ok(Measured {
        writes_per_s: per_second(acked, elapsed),
        acked,
        disk_written_per_write: written.map(per_write),
        file_bytes_per_key: file.map(per_write),
        transactions_per_write: per_write(transactions),
        mean_group: round3(acked as f64 / groups.max(1) as f64),
    })
}

/// Views/s of `readers` clients calling `get` while `writers` clients
/// write; (views/s, writes/s).
async fn measure_views(writers: usize, readers: usize, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let dir = TempDir::new().context("temporary data directory")?;
    let node = Node::start(config(dir.path(), [1; 32])).await.context("starting the node")?;
    let app = node.install_application(weft_apps::KV_STORE.to_vec()).await?.id;
    let context = node.create_context(app, b"{}".to_vec()).await?.id;
    set(&node, context, "read-me", "v").await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let write_tasks: Vec<_> =
        (0..writers).map(|client| tokio::spawn(write_until(node.clone(), context, client, deadline))).collect();
    let read_tasks: Vec<_> = (0..readers).map(|_| tokio::spawn(read_until(node.clone(), context, deadline))).collect();
    let (mut writes, mut reads) = (0, 0);
    for task in write_tasks {
        writes += task.await.context("a writer failed")??;
    }
    for task in read_tasks {
        reads += task.await.context("a reader failed")??;
    }
    let elapsed = started.elapsed();
    node.shutdown().await?;
    Ok((per_second(reads, elapsed), per_second(writes, elapsed)))
}

async fn read_until(node: NodeHandle, context: Hash, deadline: Instant) -> anyhow::Result<u64> {
    let args = serde_json::to_vec(&json!({ "key": "read-me" }))?;
    let mut reads = 0;
    while Instant::now() < deadline {
        let reply = node.call(context, "get", args.clone()).await?;
        if reply.result != b"\"v\"" {
            bail!("get returned {:?}", String::from_utf8_lossy(&reply.result));
        }
        reads += 1;
    }
    Ok(reads)
}

async fn write_until(node: NodeHandle, context: Hash, client: usize, deadline: Instant) -> anyhow::Result<u64> {
    let mut acked = 0;
    while Instant::now() < deadline {
        set(&node, context, &format!("c{client}-{acked}"), "v").await?;
        acked += 1;
    }
    Ok(acked)
}

pub async fn run(seconds: u64) -> anyhow::Result<()> {
    for clients in CLIENT_COUNTS {
        let started = Instant::now();
        let baseline = measure(1, clients, seconds).await?;
        let grouped = measure(weft_node::CALL_GROUP_MAX_DEFAULT, clients, seconds).await?;
        emit(
            &format!("local_writes_{clients}_clients"),
            round3(grouped.writes_per_s),
            "writes/s",
            json!({
                "how": "acknowledged (durable) kv-store set calls through NodeHandle, one node, one context",
                "clients": clients, "seconds": seconds, "acked": grouped.acked,
                "call_group_max": weft_node::CALL_GROUP_MAX_DEFAULT,
                "disk_written_per_write_bytes": grouped.disk_written_per_write,
                "file_bytes_per_key": grouped.file_bytes_per_key,
                "store_transactions_per_write": grouped.transactions_per_write,
                "mean_calls_per_group": grouped.mean_group,
                "disk_how": "write_bytes of /proc/self/io during the writes / acked; database file size after shutdown / keys",
                "baseline_writes_per_s": round3(baseline.writes_per_s), "baseline_acked": baseline.acked,
                "baseline_disk_written_per_write_bytes": baseline.disk_written_per_write,
                "baseline": "the same run with call_group_max = 1 (an fsync per call)",
                "ratio_to_baseline": round3(grouped.writes_per_s / baseline.writes_per_s.max(f64::MIN_POSITIVE)),
                "both_runs_ms": ms(started.elapsed()),
            }),
        );
    }
    let (idle_views, _) = measure_views(0, 1, seconds).await?;
    let (views, writes) = measure_views(8, 8, seconds).await?;
    emit(
        "local_views_8_clients_under_writes",
        round3(views),
        "views/s",
        json!({
            "how": "kv-store get calls through NodeHandle by 8 clients while 8 clients write set calls",
            "seconds": seconds, "writes_per_s_meanwhile": round3(writes),
            "baseline_views_per_s": round3(idle_views),
            "baseline": "the same node code, 1 client, no writes, in the same run",
            "ratio_to_baseline": round3(views / idle_views.max(f64::MIN_POSITIVE)),
        }),
    );
    Ok(())
}
