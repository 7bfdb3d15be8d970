//! `many_contexts_sync`: anti-entropy across many contexts at once.
//!
//! Nodes A and B share `contexts` kv-store contexts (A creates each and
//! invites B). B stops; A writes one key in every context; B restarts on
//! its directory and seed and dials A. Gossip cannot help (the writes
//! happened while B was down): each context must be repaired by its own
//! anti-entropy session, all of them due at once. The clock runs from just
//! before B's `Node::start`; each context counts as caught up when B's
//! event bus announces A's root hash for it (a poll stands in when events
//! were missed), and at the end every context's heads and root hash must
//! equal A's. The figure is when the last one
//! got there, with the spread (p50 / p99) that shows whether some contexts
//! wait while others are served; the baseline is the same with one shared
//! context, in the same run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::broadcast;
use weft_node::{ContextInfo, Node, NodeEvent};
use weft_primitives::Hash;

use crate::harness::{Cluster, config, same_state, set};
use crate::report::{Percentiles, emit, ms, round3};

const A: usize = 0;
const B: usize = 1;
/// How long B may take to catch up in every context.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);
/// Pause between two polls of the contexts not caught up yet (each poll
/// is a request per context to B's driver: polling too often would slow
/// the catch-up it measures).
const POLL_PAUSE: Duration = Duration::from_millis(100);

/// What one run showed.
struct Measured {
    /// Per context: time from B's start until it matched A.
    caught_up: Percentiles,
    /// Time from B's start until the last context matched A.
    all: Duration,
    /// Time to share the contexts (create, invite, join).
    setup: Duration,
    /// B's sync sessions opened and accepted during the catch-up.
    sessions: u64,
    /// Inbound streams either node's network layer reset (accept queue full).
    streams_dropped: u64,
    /// B's write transactions (each one fsync) from its start to the end.
    transactions: u64,
}

async fn measure(contexts: usize) -> anyhow::Result<Measured> {
    let mut cluster = Cluster::start(2).await?;
    let setup_started = Instant::now();
    let shared = cluster.share_contexts(A, B, contexts).await?;
    let setup = setup_started.elapsed();
    cluster.node(B).shutdown().await.context("stopping B")?;
    let mut targets: BTreeMap<Hash, ContextInfo> = BTreeMap::new();
    for (n, context) in shared.iter().enumerate() {
        set(cluster.node(A), *context, &format!("missed-{n}"), "v").await?;
        targets.insert(*context, cluster.node(A).context(*context).await?);
    }

    let b_config = config(&cluster.nodes[B].dir, cluster.nodes[B].seed);
    let t0 = Instant::now();
    cluster.nodes[B].handle = Node::start(b_config).await.context("restarting B")?;
    // Timed by B's own events, not by polling: a poll of every context
    // through B's busy driver took longer than the catch-up it measured.
    let mut bus = cluster.node(B).subscribe();
    cluster.connect(B, A).await?;
    let mut samples = Vec::with_capacity(contexts);
    let mut left: BTreeMap<Hash, Hash> = targets.iter().map(|(context, info)| (*context, info.root_hash)).collect();
    while !left.is_empty() {
        if t0.elapsed() > CATCH_UP_TIMEOUT {
            bail!("{} of {contexts} contexts not caught up after {CATCH_UP_TIMEOUT:?}", left.len());
        }
        match tokio::time::timeout(POLL_PAUSE, bus.recv()).await {
            Ok(Ok(NodeEvent::StateMutation { context, root_hash, .. })) => {
                if left.get(&context) == Some(&root_hash) {
                    left.remove(&context);
                    samples.push(t0.elapsed());
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("B's event bus closed"),
            // Events were missed, or none came for a while: ask.
            Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {
                let mut done = Vec::new();
                for context in left.keys() {
                    if same_state(&cluster.node(B).context(*context).await?, &targets[context]) {
                        done.push(*context);
                    }
                }
                let at = t0.elapsed();
                for context in done {
                    left.remove(&context);
                    samples.push(at);
                }
            }
        }
    }
    let all = t0.elapsed();
    // Heads too, not only the root: every context must equal A's.
    for (context, target) in &targets {
        if !same_state(&cluster.node(B).context(*context).await?, target) {
            bail!("context {context} reached A's root hash but not its heads");
        }
    }
    let stats = cluster.node(B).stats().await?;
    let a_stats = cluster.node(A).stats().await?;
    cluster.shutdown().await?;
    Ok(Measured {
        caught_up: Percentiles::new(samples),
        all,
        setup,
        sessions: stats.sync_sessions_opened + stats.sync_sessions_accepted,
        streams_dropped: stats.net_streams_dropped + a_stats.net_streams_dropped,
        transactions: stats.store_transactions,
    })
}

pub async fn run(contexts: usize) -> anyhow::Result<()> {
    let one = measure(1).await?;
    let many = measure(contexts).await?;
    emit(
        "many_contexts_sync_all_caught_up",
        ms(many.all),
        "ms",
        json!({
            "how": "B, down while A wrote one key in each shared context, restarts and dials A: time until B's events announce A's root hash in every context (heads and roots checked after)",
            "contexts": contexts,
            "p50_ms": many.caught_up.ms(0.5), "p99_ms": many.caught_up.ms(0.99),
            "b_sync_sessions": many.sessions,
            "streams_dropped": many.streams_dropped,
            "b_store_transactions": many.transactions,
            "setup_s": round3(many.setup.as_secs_f64()),
            "baseline_ms": ms(one.all), "baseline": "the same with 1 shared context, in the same run",
            "ratio_to_baseline": round3(ms(many.all) / ms(one.all).max(f64::MIN_POSITIVE)),
        }),
    );
    Ok(())
}
