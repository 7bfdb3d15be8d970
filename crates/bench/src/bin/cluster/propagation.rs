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
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use weft_node::NodeEvent;
use weft_primitives::Hash;

use crate::harness::{Cluster, set};
use crate::report::{Percentiles, emit, ms};

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
    let (arrivals_tx, mut arrivals) = mpsc::channel(ARRIVALS_MAX);
    let watchers: Vec<JoinHandle<()>> = (0..NODES)
        .map(|node| tokio::spawn(watch(node, context, cluster.node(node).subscribe(), arrivals_tx.clone())))
        .collect();
    drop(arrivals_tx);

    let mut meter = Meter { arrivals: &mut arrivals, unmatched: HashMap::new() };
    for n in 0..WARMUP_WRITES {
        meter.write(&cluster, context, n % NODES, &format!("warmup-{n}")).await?;
    }
    let mut samples = Vec::with_capacity(writes);
    for n in 0..writes {
        samples.push(meter.write(&cluster, context, n % NODES, &format!("key-{n}")).await?);
    }
    for watcher in watchers {
        watcher.abort();
    }
    cluster.shutdown().await?;
    report(&samples);
    Ok(())
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

struct Meter<'a> {
    arrivals: &'a mut mpsc::Receiver<Arrival>,
    /// Arrivals of ids not matched to a write yet (a delta may arrive
    /// before its author's `call` returns).
    unmatched: HashMap<Hash, Vec<(usize, Instant)>>,
}

impl Meter<'_> {
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

fn report(samples: &[Sample]) {
    let writes = samples.len();
    let latency = Percentiles::new(samples.iter().map(|s| s.latency).collect());
    let ack = Percentiles::new(samples.iter().map(|s| s.ack).collect());
    let how = "5 nodes, full mesh, node defaults; writes round-robin, one at a time; \
               latency = last StateMutation of the delta on the 4 other nodes - t0 before call";
    let common = |extra: serde_json::Value| {
        let mut fields = json!({ "nodes": NODES, "writes": writes, "warmup_writes": WARMUP_WRITES });
        if let (Some(fields), serde_json::Value::Object(extra)) = (fields.as_object_mut(), extra) {
            fields.extend(extra);
        }
        fields
    };
    emit("propagation_write_to_all_p50", latency.ms(0.50), "ms", common(json!({ "how": how })));
    emit("propagation_write_to_all_p90", latency.ms(0.90), "ms", common(json!({})));
    let p99 = latency.ms(0.99);
    emit(
        "propagation_write_to_all_p99",
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
    emit("propagation_write_to_all_max", latency.max_ms(), "ms", common(json!({ "slowest": slowest })));
    emit("propagation_write_to_all_mean", latency.mean_ms(), "ms", common(json!({})));
    emit(
        "propagation_ack_p50",
        ack.ms(0.50),
        "ms",
        common(json!({ "how": "call() return - t0: durable on the author" })),
    );
    emit("propagation_ack_p99", ack.ms(0.99), "ms", common(json!({})));
    // Latency after the ack: gossip plus the receivers' verify + durable apply.
    let after_ack = Percentiles::new(samples.iter().map(|s| s.latency.saturating_sub(s.ack)).collect());
    emit("propagation_after_ack_p50", after_ack.ms(0.50), "ms", common(json!({})));
    emit("propagation_after_ack_p99", after_ack.ms(0.99), "ms", common(json!({})));
    emit("propagation_writes_over_100ms", latency.over(SLOW) as u64, "writes", common(json!({})));
}
