//! `burst`: 1,000 quick writes on node A, and how long after the last one
//! node B holds them all (the "1,000 quick writes on A → B in sync").
//!
//! Two nodes share a kv-store context. Eight clients on A write 1,000
//! distinct keys between them as fast as A acknowledges them; the figure
//! is the time from the last acknowledgement to B's kv `len` counting all
//! of them and B's root hash equal to A's (polled every 2 ms). The time A
//! took to acknowledge the burst is printed beside it, measured in the
//! same run, as the baseline: the lag is what B adds to it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use weft_node::NodeHandle;
use weft_primitives::Hash;

use crate::harness::{Cluster, kv_len, same_state, set};
use crate::report::{emit, ms, per_second, round3};

const CLIENTS: usize = 8;
/// B has not caught up this long after the burst: the run fails.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(2);

pub async fn run(writes: usize) -> anyhow::Result<()> {
    let cluster = Cluster::start(2).await?;
    let context = cluster.shared_kv_context().await?;
    cluster.wait_for_peers(1).await?;
    cluster.converged(context, CATCH_UP_TIMEOUT).await?.context("no convergence after the join")?;
    let before = kv_len(cluster.node(1), context).await?;

    let started = Instant::now();
    let per_client = writes.div_ceil(CLIENTS);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let node = cluster.node(0).clone();
            let count = per_client.min(writes.saturating_sub(client * per_client));
            tokio::spawn(write_keys(node, context, client, count))
        })
        .collect();
    let mut acked = 0;
    for task in tasks {
        acked += task.await.context("a client task failed")??;
    }
    let last_ack = Instant::now();
    let writing = last_ack - started;

    let target = before + acked;
    let caught_up = loop {
        let len = kv_len(cluster.node(1), context).await?;
        if len >= target {
            let infos = cluster.infos(context).await?;
            if infos.first().zip(infos.get(1)).is_some_and(|(a, b)| same_state(a, b)) {
                break Some(last_ack.elapsed());
            }
        }
        if last_ack.elapsed() > CATCH_UP_TIMEOUT {
            break None;
        }
        tokio::time::sleep(POLL).await;
    };
    let stats = cluster.node(1).stats().await?;
    cluster.shutdown().await?;

    let Some(lag) = caught_up else {
        bail!("node B did not hold the {acked} writes {CATCH_UP_TIMEOUT:?} after the last one");
    };
    emit(
        "burst_b_in_sync_after_last_write",
        ms(lag),
        "ms",
        json!({
            "how": "2 nodes; 8 clients on A write distinct keys as fast as A acknowledges; last ack -> B's len counts them all and B's heads and root hash equal A's (polled every 2 ms)",
            "writes": acked,
            "baseline": "A acknowledging the whole burst, in the same run",
            "baseline_writing_ms": ms(writing),
            "baseline_writes_per_s": round3(per_second(acked, writing)),
            "ratio_lag_to_writing": round3(lag.as_secs_f64() / writing.as_secs_f64().max(1e-9)),
            "b_gossip_received": stats.gossip_received,
            "b_sync_sessions_opened": stats.sync_sessions_opened,
            "b_sync_sessions_accepted": stats.sync_sessions_accepted,
        }),
    );
    Ok(())
}

/// `count` distinct `set` calls on `node`, one after another; how many were
/// acknowledged (a failure fails the figure).
async fn write_keys(node: NodeHandle, context: Hash, client: usize, count: usize) -> anyhow::Result<u64> {
    for seq in 0..count {
        set(&node, context, &format!("burst-{client}-{seq}"), "v").await?;
    }
    Ok(count as u64)
}
