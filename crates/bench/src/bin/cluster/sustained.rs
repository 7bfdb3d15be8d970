//! `sustained`: committed writes/s across 3 nodes, all converged at the end.
//!
//! Each node has `clients` tasks calling `set` with keys no other task uses,
//! back to back, for the given seconds. A write counts once `call` returns
//! it (durable on its author). Then the clock runs until all 3 nodes have
//! the same heads and root hash, and every node's kv `len` must equal the
//! number of acknowledged writes: nothing acknowledged was lost anywhere.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use weft_node::NodeHandle;
use weft_primitives::Hash;

use crate::harness::{Cluster, kv_len, set};
use crate::report::{emit, ms, per_second, round3};

const NODES: usize = 3;
/// The writers stop; if the nodes have not converged this long after, the
/// run fails.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);
/// No client writes more than this, whatever the duration (a bound, far
/// above what a node commits in an hour).
const WRITES_PER_CLIENT_MAX: u64 = 10_000_000;

/// What one client did.
struct ClientResult {
    node: usize,
    acked: u64,
    failed: u64,
    first_error: Option<String>,
}

pub async fn run(seconds: u64, clients: usize) -> anyhow::Result<()> {
    let cluster = Cluster::start(NODES).await?;
    let context = cluster.shared_kv_context().await?;
    cluster.wait_for_peers(NODES as u64 - 1).await?;
    cluster.converged(context, CONVERGE_TIMEOUT).await?.context("no convergence after the joins")?;
    let before: Vec<u64> = cluster.infos(context).await?.iter().map(|i| i.applied).collect();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(NODES * clients);
    for node in 0..NODES {
        for client in 0..clients {
            let handle = cluster.node(node).clone();
            tasks.push(tokio::spawn(write_until(handle, context, node, client, deadline)));
        }
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.context("a client task failed")?);
    }
    let writing = started.elapsed();
    let stopped = Instant::now();
    let at_stop = cluster.infos(context).await?;
    let converged = cluster.converged(context, CONVERGE_TIMEOUT).await?;
    let converge_time = stopped.elapsed();
    let mut stats = Vec::with_capacity(NODES);
    for node in 0..NODES {
        stats.push(cluster.node(node).stats().await?);
    }

    let acked: u64 = results.iter().map(|r| r.acked).sum();
    let failed: u64 = results.iter().map(|r| r.failed).sum();
    let first_error = results.iter().find_map(|r| r.first_error.clone());
    let mut lens = Vec::with_capacity(NODES);
    for node in 0..NODES {
        lens.push(kv_len(cluster.node(node), context).await?);
    }
    let infos = cluster.infos(context).await?;
    cluster.shutdown().await?;

    let per_node: Vec<f64> = (0..NODES)
        .map(|node| round3(per_second(results.iter().filter(|r| r.node == node).map(|r| r.acked).sum(), writing)))
        .collect();
    let lens_match = lens.iter().all(|len| *len == acked);
    emit(
        "sustained_committed_writes",
        round3(per_second(acked, writing)),
        "writes/s",
        json!({
            "how": "acknowledged set calls on all nodes / time until the last client stopped",
            "nodes": NODES, "clients_per_node": clients, "seconds": seconds,
            "writing_ms": ms(writing), "acked": acked, "failed": failed, "first_error": first_error,
            "per_node_writes_per_s": per_node,
        }),
    );
    emit(
        "sustained_converged_writes",
        round3(per_second(acked, writing + converge_time)),
        "writes/s",
        json!({
            "how": "acknowledged writes / (writing time + time to converge after): the rate every node kept up with",
            "converged": converged.is_some(),
        }),
    );
    let applied: Vec<u64> =
        infos.iter().zip(&before).map(|(info, before)| info.applied.saturating_sub(*before)).collect();
    emit(
        "sustained_converge_after_stop",
        ms(converge_time),
        "ms",
        json!({
            "how": "last writer stopped -> same heads and root hash on all nodes (polled every 5 ms)",
            "converged": converged.is_some(),
            "kv_len": lens, "acked": acked, "kv_len_equals_acked": lens_match,
            "deltas_applied_during_run": applied,
            "heads": infos.iter().map(|i| i.heads.len()).collect::<Vec<_>>(),
            "at_stop": at_stop.iter().map(|i| json!({ "applied": i.applied, "pending": i.pending, "heads": i.heads.len() })).collect::<Vec<_>>(),
            "node_stats": stats.iter().map(|s| json!({
                "gossip_published": s.gossip_published, "gossip_received": s.gossip_received,
                "deltas_rejected": s.deltas_rejected, "sync_sessions_opened": s.sync_sessions_opened,
                "sync_sessions_accepted": s.sync_sessions_accepted, "sync_bytes_received": s.sync_bytes_received,
            })).collect::<Vec<_>>(),
        }),
    );
    if converged.is_none() {
        bail!("the {NODES} nodes did not converge within {CONVERGE_TIMEOUT:?} after the writers stopped");
    }
    if !lens_match {
        bail!("kv len per node {lens:?} differs from the {acked} acknowledged writes");
    }
    Ok(())
}

/// `set` distinct keys on `node` until `deadline`.
async fn write_until(node: NodeHandle, context: Hash, index: usize, client: usize, deadline: Instant) -> ClientResult {
    let mut result = ClientResult { node: index, acked: 0, failed: 0, first_error: None };
    let mut seq = 0u64;
    while Instant::now() < deadline && seq < WRITES_PER_CLIENT_MAX {
        match set(&node, context, &format!("n{index}-c{client}-{seq}"), "v").await {
            Ok(_) => result.acked += 1,
            Err(error) => {
                result.failed += 1;
                result.first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
        seq += 1;
    }
    result
}
