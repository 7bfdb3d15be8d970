//! `big_state`: memory and start-up of a node whose one context holds many
//! entries.
//!
//! One node writes `entries` kv-store keys (64 clients, group commit) and
//! samples its resident memory (VmRSS) at each quarter: the growth per
//! 1,000 entries says whether memory follows the state. Then the node stops
//! and a fresh process (this binary with `--reopen DIR`) starts it again and
//! reports its start-up time, its resident memory and its first `get`. The
//! baseline, in the same run and measured the same way, is a node whose
//! context holds 1 entry.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tempfile::TempDir;
use weft_node::{Node, NodeHandle};
use weft_primitives::Hash;

use crate::harness::{config, kv_len, set};
use crate::report::{emit, ms, per_second, round3};

/// Clients writing at once.
const CLIENTS: usize = 64;
/// The node's network seed (the reopening process must use the same).
pub const SEED: [u8; 32] = [1; 32];

/// This process's resident memory in KiB (`VmRSS`), if known.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB").and_then(|n| n.trim().parse().ok()))
}

/// Write keys `from..to` with [`CLIENTS`] clients.
async fn fill(node: &NodeHandle, context: Hash, from: u64, to: u64) -> anyhow::Result<()> {
    let clients = CLIENTS as u64;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let node = node.clone();
            tokio::spawn(async move {
                let mut n = from + client;
                while n < to {
                    set(&node, context, &format!("key-{n:09}"), "a value of some thirty bytes..").await?;
                    n += clients;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a writer failed")??;
    }
    Ok(())
}

/// What the reopening process reports.
pub struct Reopened {
    pub start_ms: f64,
    pub rss_kib: Option<u64>,
    pub first_get_ms: f64,
    pub contexts: u64,
}

/// Start this binary with `--reopen dir` and read its report; the first
/// context must hold `entries` keys, when given.
pub fn reopen_in_a_fresh_process(dir: &Path, entries: Option<u64>) -> anyhow::Result<Reopened> {
    let exe = std::env::current_exe().context("this binary's path")?;
    let output =
        std::process::Command::new(exe).arg("--reopen").arg(dir).output().context("starting the reopening process")?;
    if !output.status.success() {
        bail!("the reopening process failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("the reopening process's report")?;
    if let Some(entries) = entries
        && report["len"].as_u64() != Some(entries)
    {
        bail!("the reopened node holds {} entries, not {entries}", report["len"]);
    }
    Ok(Reopened {
        start_ms: report["start_ms"].as_f64().unwrap_or(f64::NAN),
        rss_kib: report["rss_kib"].as_u64(),
        first_get_ms: report["first_get_ms"].as_f64().unwrap_or(f64::NAN),
        contexts: report["contexts"].as_u64().unwrap_or(0),
    })
}

/// The `--reopen DIR` mode: start the node in `dir`, time it, read one
/// entry of its first context, print the report as JSON on stdout.
pub async fn reopen(dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let node = Node::start(config(dir, SEED)).await.context("reopening the node")?;
    let start_ms = ms(started.elapsed());
    let contexts = node.contexts().await?;
    let context = contexts.first().map(|info| info.id).context("no context")?;
    let asked = Instant::now();
    let reply = node.call(context, "get", serde_json::to_vec(&json!({ "key": "key-000000000" }))?).await?;
    let first_get_ms = ms(asked.elapsed());
    if reply.result == b"null" {
        bail!("the first entry is missing");
    }
    let len = kv_len(&node, context).await?;
    let report = json!({
        "start_ms": start_ms, "rss_kib": rss_kib(), "first_get_ms": first_get_ms, "len": len,
        "contexts": contexts.len(),
    });
    node.shutdown().await?;
    println!("{report}");
    Ok(())
}

/// Caches small enough that `entries` keys overflow them: what memory still
/// grows by beyond the caches shows.
const SMALL_CACHES: Caches = Caches { state_bytes: 8 << 20, db_bytes: 32 << 20 };

/// The node's two caches of state and pages.
#[derive(Clone, Copy)]
struct Caches {
    state_bytes: usize,
    db_bytes: usize,
}

/// Fill a node with `entries` keys; (RSS samples at each quarter, writes/s, the data directory).
async fn filled(entries: u64, caches: Option<Caches>) -> anyhow::Result<(Vec<(u64, Option<u64>)>, f64, TempDir)> {
    let dir = TempDir::new().context("temporary data directory")?;
    let mut node_config = config(dir.path(), SEED);
    if let Some(caches) = caches {
        node_config.state_cache_bytes = caches.state_bytes;
        node_config.db_cache_bytes = caches.db_bytes;
    }
    let node = Node::start(node_config).await.context("starting the node")?;
    let app = node.install_application(weft_apps::KV_STORE.to_vec()).await?.id;
    let context = node.create_context(app, b"{}".to_vec()).await?.id;
    let mut samples = vec![(0, rss_kib())];
    let started = Instant::now();
    let quarters: Vec<u64> = (1..=4).map(|q| entries * q / 4).collect();
    let mut from = 0;
    for to in quarters {
        fill(&node, context, from, to).await?;
        samples.push((to, rss_kib()));
        from = to;
    }
    let rate = per_second(entries, started.elapsed());
    let len = kv_len(&node, context).await?;
    node.shutdown().await?;
    if len != entries {
        bail!("kv len {len} after writing {entries} keys");
    }
    // Let the database file close before another process opens it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok((samples, rate, dir))
}

pub async fn run(entries: u64) -> anyhow::Result<()> {
    let (_, _, small) = filled(1, None).await?;
    let baseline = reopen_in_a_fresh_process(small.path(), Some(1))?;
    let (samples, writes_per_s, big) = filled(entries, None).await?;
    let reopened = reopen_in_a_fresh_process(big.path(), Some(entries))?;
    let file = std::fs::metadata(big.path().join(weft_node::DATABASE_FILE)).ok().map(|m| m.len());
    drop(big);
    let (small_samples, small_writes_per_s, _) = filled(entries, Some(SMALL_CACHES)).await?;
    emit(
        "big_state_reopen_start",
        reopened.start_ms,
        "ms",
        json!({
            "how": "Node::start on the data directory of a node whose one context holds `entries` kv-store keys, in a fresh process",
            "entries": entries, "database_file_bytes": file,
            "rss_kib_after_start": reopened.rss_kib, "first_get_ms": reopened.first_get_ms,
            "baseline_start_ms": baseline.start_ms, "baseline_rss_kib_after_start": baseline.rss_kib,
            "baseline_first_get_ms": baseline.first_get_ms,
            "baseline": "the same for a context with 1 entry, in the same run",
            "ratio_to_baseline": round3(reopened.start_ms / baseline.start_ms.max(f64::MIN_POSITIVE)),
            "rss_ratio_to_baseline": reopened.rss_kib.zip(baseline.rss_kib).map(|(a, b)| round3(a as f64 / b.max(1) as f64)),
        }),
    );
    emit(
        "big_state_rss_growth",
        growth(&samples, entries).map_or(Value::Null, Value::from),
        "KiB per 1,000 entries",
        json!({
            "how": "VmRSS of the writing process after each quarter of the entries; growth over the second half",
            "entries": entries, "clients": CLIENTS, "writes_per_s": round3(writes_per_s),
            "rss_kib_by_entries": samples.iter().map(|(n, rss)| json!([n, rss])).collect::<Vec<_>>(),
            "state_cache_bytes": weft_node::STATE_CACHE_BYTES_DEFAULT,
            "db_cache_bytes": weft_node::DB_CACHE_BYTES_DEFAULT,
        }),
    );
    emit(
        "big_state_rss_growth_small_caches",
        growth(&small_samples, entries).map_or(Value::Null, Value::from),
        "KiB per 1,000 entries",
        json!({
            "how": "as big_state_rss_growth, with caches the entries overflow: the growth left is what is not cached",
            "entries": entries, "writes_per_s": round3(small_writes_per_s),
            "rss_kib_by_entries": small_samples.iter().map(|(n, rss)| json!([n, rss])).collect::<Vec<_>>(),
            "state_cache_bytes": SMALL_CACHES.state_bytes, "db_cache_bytes": SMALL_CACHES.db_bytes,
        }),
    );
    Ok(())
}

/// KiB per 1,000 entries over the second half of the samples: the first
/// quarters include warm-up (the runtime's module cache, caches filling).
fn growth(samples: &[(u64, Option<u64>)], entries: u64) -> Option<f64> {
    let (half_at, half) = samples.get(2).copied()?;
    let full = samples.get(4)?.1?;
    let grown = full.saturating_sub(half?);
    Some(round3(grown as f64 * 1000.0 / entries.saturating_sub(half_at).max(1) as f64))
}
