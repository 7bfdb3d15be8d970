//! `many_contexts`: one node in many small contexts.
//!
//! The node creates `contexts` kv-store contexts and writes 3 keys in each,
//! then measures, against the same node code holding 1 context in the same
//! run: resident memory, the latency of `set` calls on one context while
//! every other context sits idle (a driver turn that walks every context
//! shows here), and start-up time and memory when the node is reopened in a
//! fresh process.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tempfile::TempDir;
use weft_node::{Node, NodeHandle};
use weft_primitives::Hash;

use crate::big_state::{SEED, reopen_in_a_fresh_process, rss_kib};
use crate::harness::{config, set};
use crate::report::{Percentiles, emit, round3};

/// Keys written in each context.
const KEYS_PER_CONTEXT: u64 = 3;
/// `set` calls timed on one context.
const TIMED_SETS: usize = 300;

/// What one node with `contexts` contexts showed.
struct Measured {
    create_s: f64,
    rss_kib: Option<u64>,
    set_latency: Percentiles,
    dir: TempDir,
}

async fn timed_sets(node: &NodeHandle, context: Hash) -> anyhow::Result<Percentiles> {
    let mut samples = Vec::with_capacity(TIMED_SETS);
    for n in 0..TIMED_SETS {
        let started = Instant::now();
        set(node, context, &format!("timed-{n}"), "v").await?;
        samples.push(started.elapsed());
    }
    Ok(Percentiles::new(samples))
}

async fn measure(contexts: usize) -> anyhow::Result<Measured> {
    let dir = TempDir::new().context("temporary data directory")?;
    let node = Node::start(config(dir.path(), SEED)).await.context("starting the node")?;
    let app = node.install_application(weft_apps::KV_STORE.to_vec()).await?.id;
    let started = Instant::now();
    let mut first = None;
    for c in 0..contexts {
        let context = node.create_context(app, b"{}".to_vec()).await?.id;
        for k in 0..KEYS_PER_CONTEXT {
            set(&node, context, &format!("key-{k:09}"), &format!("{c}")).await?;
        }
        first.get_or_insert(context);
    }
    let create_s = started.elapsed().as_secs_f64();
    // Let timers and sweeps settle before timing calls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let set_latency = timed_sets(&node, first.context("no context")?).await?;
    let rss_kib = rss_kib();
    node.shutdown().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(Measured { create_s, rss_kib, set_latency, dir })
}

pub async fn run(contexts: usize) -> anyhow::Result<()> {
    let one = measure(1).await?;
    // Which context the reopened node lists first is not known: no count.
    let one_reopened = reopen_in_a_fresh_process(one.dir.path(), None)?;
    let many = measure(contexts).await?;
    let reopened = reopen_in_a_fresh_process(many.dir.path(), None)?;
    if reopened.contexts != contexts as u64 {
        anyhow::bail!("reopened with {} contexts, not {contexts}", reopened.contexts);
    }
    let ratio = |a: f64, b: f64| round3(a / b.max(f64::MIN_POSITIVE));
    emit(
        "many_contexts_set_p50",
        many.set_latency.ms(0.5),
        "ms",
        json!({
            "how": "durable kv-store set on one context, one client, while every other context of the node is idle",
            "contexts": contexts, "p99_ms": many.set_latency.ms(0.99), "max_ms": many.set_latency.max_ms(),
            "baseline_p50_ms": one.set_latency.ms(0.5), "baseline_p99_ms": one.set_latency.ms(0.99),
            "baseline": "the same node code holding 1 context, in the same run",
            "ratio_to_baseline": ratio(many.set_latency.ms(0.5), one.set_latency.ms(0.5)),
            "created_in_s": round3(many.create_s),
            "rss_kib": many.rss_kib, "baseline_rss_kib": one.rss_kib,
        }),
    );
    emit(
        "many_contexts_reopen_start",
        reopened.start_ms,
        "ms",
        json!({
            "how": "Node::start on the node's data directory in a fresh process, then one get",
            "contexts": contexts, "rss_kib_after_start": reopened.rss_kib,
            "rss_kib_per_context": reopened.rss_kib.zip(one_reopened.rss_kib)
                .map(|(many, one)| round3(many.saturating_sub(one) as f64 / contexts.saturating_sub(1).max(1) as f64)),
            "first_get_ms": reopened.first_get_ms,
            "baseline_start_ms": one_reopened.start_ms, "baseline_rss_kib_after_start": one_reopened.rss_kib,
            "baseline": "the same for a node holding 1 context, in the same run",
            "ratio_to_baseline": ratio(reopened.start_ms, one_reopened.start_ms),
        }),
    );
    Ok(())
}
