//! `propagation`: the latency of one write reaching all of 5 nodes.
//!
//! Every node's event bus is watched by its own task, which timestamps each
//! `StateMutation` as it arrives (not when the measuring loop gets to it).
//! Writes go round-robin over the nodes, one at a time: a write starts only
//! once the previous one reached everybody, so this is latency, not
//! queueing. For each write, t0 is taken just before `call`; its latency is
//! the last arrival of its delta id on the 4 other nodes minus t0 (it thus
//! includes the author's durable commit, gossip, and each receiver's
//! verification and durable apply). The ack latency is `call`'s return.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use weft_node::{NodeEvent, NodeHandle};
use weft_primitives::Hash;

use crate::harness::{Cluster, set};
use crate::report::{Percentiles, emit, ms, per_second, round3};

const NODES: usize = 5;
/// Unmeasured writes first: the gossip mesh and every connection settle.
const WARMUP_WRITES: usize = 20;
/// Arrivals buffered between the watchers and the measuring loop.
const ARRIVALS_MAX: usize = 4_096;
/// Delta ids seen arriving but not (yet) matched to a write; far more than
/// one write's worth, which is all there should ever be.
const UNMATCHED_IDS_MAX: usize = 1_024;
/// A write that takes longer has not reached everybody by gossip nor by a
/// few anti-entropy rounds: something is broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The target for p99.
const TARGET_P99_MS: f64 = 20.0;
/// Slower than this means the write missed the gossip fast path.
const SLOW: Duration = Duration::from_millis(100);
/// Slowest writes listed for diagnosis.
const SLOWEST_LISTED_MAX: usize = 5;

/// A remote delta applied on a node, timestamped by its watcher.
enum Arrival {
    Applied { node: usize, id: Hash, at: Instant },
    Lagged { node: usize, missed: u64 },
}

/// One measured write.
struct Sample {
    writer: usize,
    latency: Duration,
    ack: Duration,
    /// The node the delta reached last.
    last_node: usize,
}

pub async fn run(writes: usize) -> anyhow::Result<()> {
    let cluster = Cluster::start(NODES).await?;
    let context = cluster.shared_kv_context().await?;
    cluster.wait_for_peers(NODES as u64 - 1).await?;
    let mut meter = Meter::start(&cluster, context).await?;
    let samples = meter.writes(&cluster, context, writes, "key").await?;
    meter.stop();
    cluster.shutdown().await?;
    report("propagation", &samples, json!({}));
    Ok(())
}

/// `propagation_loaded`: the same measurement while one client per node
/// writes back to back in a second context all 5 nodes share (every node
/// gossips, verifies and applies that load too). The idle figure is measured
/// first in the same run, on the same cluster, as the baseline.
pub async fn run_loaded(writes: usize) -> anyhow::Result<()> {
    let cluster = Cluster::start(NODES).await?;
    let context = cluster.shared_kv_context().await?;
    let busy = cluster.shared_kv_context().await?;
    cluster.wait_for_peers(NODES as u64 - 1).await?;
    let mut meter = Meter::start(&cluster, context).await?;
    let idle = meter.writes(&cluster, context, writes, "idle").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> =
        (0..NODES).map(|node| tokio::spawn(load(cluster.node(node).clone(), busy, node, Arc::clone(&stop)))).collect();
    let loaded_from = Instant::now();
    let loaded = meter.writes(&cluster, context, writes, "loaded").await?;
    let loaded_for = loaded_from.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut background = 0;
    for loader in loaders {
        background += loader.await.context("a load task failed")??;
    }
    meter.stop();
    cluster.shutdown().await?;
    let idle_p99 = Percentiles::new(idle.iter().map(|s| s.latency).collect()).ms(0.99);
    let loaded_p99 = Percentiles::new(loaded.iter().map(|s| s.latency).collect()).ms(0.99);
    let extra = json!({
        "background_writes_per_s": round3(per_second(background, loaded_for)),
        "background": "one client per node writing back to back in a second context all 5 nodes share",
        "baseline": "the same cluster idle, measured first in the same run",
        "baseline_p99_ms": idle_p99,
        "ratio_p99_to_idle": round3(loaded_p99 / idle_p99.max(1e-9)),
    });
    report("propagation_loaded", &loaded, extra);
    Ok(())
}

/// `set` distinct keys on `node` in `context` until `stop`; how many were
/// acknowledged (a failure fails the figure).
async fn load(node: NodeHandle, context: Hash, index: usize, stop: Arc<AtomicBool>) -> anyhow::Result<u64> {
    let mut acked = 0;
    while !stop.load(Ordering::Relaxed) {
        set(&node, context, &format!("load-{index}-{acked}"), "v").await?;
        acked += 1;
    }
    Ok(acked)
}

/// Forward every remote delta applied in `context` on `node`.
async fn watch(node: usize, context: Hash, mut events: broadcast::Receiver<NodeEvent>, out: mpsc::Sender<Arrival>) {
    loop {
        match events.recv().await {
            Ok(NodeEvent::StateMutation { context: c, deltas, .. }) if c == context => {
                let at = Instant::now();
                for delta in deltas.into_iter().filter(|d| !d.local) {
                    if out.send(Arrival::Applied { node, id: delta.id, at }).await.is_err() {
                        return;
                    }
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                if out.send(Arrival::Lagged { node, missed }).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct Meter {
    arrivals: mpsc::Receiver<Arrival>,
    /// The tasks watching each node's event bus.
    watchers: Vec<JoinHandle<()>>,
    /// Arrivals of ids not matched to a write yet (a delta may arrive
    /// before its author's `call` returns).
    unmatched: HashMap<Hash, Vec<(usize, Instant)>>,
}

impl Meter {
    /// Watch `context` on every node of `cluster`, then make the unmeasured
    /// warm-up writes.
    async fn start(cluster: &Cluster, context: Hash) -> anyhow::Result<Meter> {
        let (arrivals_tx, arrivals) = mpsc::channel(ARRIVALS_MAX);
        let watchers = (0..NODES)
            .map(|node| tokio::spawn(watch(node, context, cluster.node(node).subscribe(), arrivals_tx.clone())))
            .collect();
        let mut meter = Meter { arrivals, watchers, unmatched: HashMap::new() };
        for n in 0..WARMUP_WRITES {
            meter.write(cluster, context, n % NODES, &format!("warmup-{n}")).await?;
        }
        Ok(meter)
    }

    /// `count` measured writes, round-robin over the nodes, keys `<label>-<n>`.
    async fn writes(
        &mut self,
        cluster: &Cluster,
        context: Hash,
        count: usize,
        label: &str,
    ) -> anyhow::Result<Vec<Sample>> {
        let mut samples = Vec::with_capacity(count);
        for n in 0..count {
            samples.push(self.write(cluster, context, n % NODES, &format!("{label}-{n}")).await?);
        }
        Ok(samples)
    }

    /// Stop watching.
    fn stop(self) {
        for watcher in self.watchers {
            watcher.abort();
        }
    }

    /// One write on `writer`, timed until it applied on every other node.
    async fn write(&mut self, cluster: &Cluster, context: Hash, writer: usize, key: &str) -> anyhow::Result<Sample> {
        let t0 = Instant::now();
        let (_, id) = set(cluster.node(writer), context, key, "v").await?;
        let ack = t0.elapsed();
        let mut reached: Vec<(usize, Instant)> = self.unmatched.remove(&id).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        while reached.len() < NODES - 1 {
            let arrival = tokio::time::timeout_at(deadline, self.arrivals.recv())
                .await
                .with_context(|| {
                    format!("write {key:?} reached {} of {} nodes in {WRITE_TIMEOUT:?}", reached.len(), NODES - 1)
                })?
                .context("the event watchers stopped")?;
            match arrival {
                Arrival::Applied { node, id: got, at } if got == id => {
                    if node != writer && !reached.iter().any(|(n, _)| *n == node) {
                        reached.push((node, at));
                    }
                }
                Arrival::Applied { node, id: got, at } => {
                    if self.unmatched.len() >= UNMATCHED_IDS_MAX {
                        bail!("{UNMATCHED_IDS_MAX} delta ids arrived that no write of ours committed");
                    }
                    self.unmatched.entry(got).or_default().push((node, at));
                }
                Arrival::Lagged { node, missed } => {
                    // The bus dropped events: this write's arrival may be lost.
                    bail!("node {node}'s event watcher lagged by {missed} events");
                }
            }
        }
        let (last_node, last_at) = reached.iter().copied().max_by_key(|(_, at)| *at).context("no arrivals")?;
        Ok(Sample { writer, latency: last_at.saturating_duration_since(t0), ack, last_node })
    }
}

/// Print the figures of `samples` as `<prefix>_…`, each with `extra`'s fields.
fn report(prefix: &str, samples: &[Sample], extra: serde_json::Value) {
    let writes = samples.len();
    let latency = Percentiles::new(samples.iter().map(|s| s.latency).collect());
    let ack = Percentiles::new(samples.iter().map(|s| s.ack).collect());
    let how = "5 nodes, full mesh, node defaults; writes round-robin, one at a time; \
               latency = last StateMutation of the delta on the 4 other nodes - t0 before call";
    let common = |more: serde_json::Value| {
        let mut fields = json!({ "nodes": NODES, "writes": writes, "warmup_writes": WARMUP_WRITES });
        for more in [extra.clone(), more] {
            if let (Some(fields), serde_json::Value::Object(more)) = (fields.as_object_mut(), more) {
                fields.extend(more);
            }
        }
        fields
    };
    let name = |figure: &str| format!("{prefix}_{figure}");
    emit(&name("write_to_all_p50"), latency.ms(0.50), "ms", common(json!({ "how": how })));
    emit(&name("write_to_all_p90"), latency.ms(0.90), "ms", common(json!({})));
    let p99 = latency.ms(0.99);
    emit(
        &name("write_to_all_p99"),
        p99,
        "ms",
        common(json!({ "target_ms": TARGET_P99_MS, "meets_target": p99 <= TARGET_P99_MS })),
    );
    let mut slowest: Vec<&Sample> = samples.iter().collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.latency));
    let slowest: Vec<_> = slowest
        .iter()
        .take(SLOWEST_LISTED_MAX)
        .map(|s| json!({ "ms": ms(s.latency), "ack_ms": ms(s.ack), "writer": s.writer, "last_node": s.last_node }))
        .collect();
    emit(&name("write_to_all_max"), latency.max_ms(), "ms", common(json!({ "slowest": slowest })));
    emit(&name("write_to_all_mean"), latency.mean_ms(), "ms", common(json!({})));
    emit(&name("ack_p50"), ack.ms(0.50), "ms", common(json!({ "how": "call() return - t0: durable on the author" })));
    emit(&name("ack_p99"), ack.ms(0.99), "ms", common(json!({})));
    // Latency after the ack: gossip plus the receivers' verify + durable apply.
    let after_ack = Percentiles::new(samples.iter().map(|s| s.latency.saturating_sub(s.ack)).collect());
    emit(&name("after_ack_p50"), after_ack.ms(0.50), "ms", common(json!({})));
    emit(&name("after_ack_p99"), after_ack.ms(0.99), "ms", common(json!({})));
    emit(&name("writes_over_100ms"), latency.over(SLOW) as u64, "writes", common(json!({})));
}
