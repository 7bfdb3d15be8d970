//! `catch_up`: a node that missed many deltas, restarted.
//!
//! Two nodes A and B share a kv-store context. B stops; A commits the
//! missed deltas; B restarts on its directory and seed and dials A. The
//! clock runs from just before `Node::start` until B's heads and root hash
//! equal A's, polled every 2 ms. A poll is a request to B's driver, so it
//! waits while the driver applies a page and returns as soon as that turn
//! ends: the timeline of polls shows when each page finished applying.
//!
//! Wire figures are B's sync counters (they restart at zero with B, so they
//! cover exactly this catch-up) plus A's differences over it; gossip is not
//! in them. The deltas' own size is the sum of their encodings as A serves
//! them (`NodeHandle::delta`), which is what a sync page carries.
//!
//! The baseline is the raw store: the rows the catch-up left in B's
//! database, committed straight into a fresh store in as many durable
//! transactions as the catch-up had pages, in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use tokio::sync::Notify;
use weft_node::{ContextInfo, Node, NodeHandle, NodeStats};
use weft_primitives::{Hash, SigningKey};
use weft_sync::protocol::PAGE_BYTES_MAX;

use crate::harness::{Cluster, config, kv_len, same_state, set};
use crate::report::{emit, ms, per_second, round3};

/// A is node 0, B is node 1.
const A: usize = 0;
const B: usize = 1;
/// Client tasks writing the missed deltas on A (only to get the setup
/// done sooner: A is the only writer, so they form one chain anyway).
const SETUP_WRITERS: usize = 8;
/// Time allowed for the join's convergence and for the catch-up itself.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often B's state is polled during the catch-up.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// After convergence, frames still in flight (closing pages) settle before
/// the byte counters are read.
const SETTLE: Duration = Duration::from_millis(300);
/// Changes of B's counters recorded while it catches up.
const TIMELINE_MAX: usize = 1_024;
/// A's counters are polled this often (A's driver is idle, so these polls
/// are not held up like B's).
const A_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// The targets.
const TARGET_ROUND_TRIPS: f64 = 3.0;
const TARGET_BYTES_RATIO: f64 = 1.2;
const TARGET_RAW_RATIO: f64 = 0.5;
/// Rows read per scan of B's database.
const SCAN_ROWS: usize = 4_096;
/// How long to wait for B's database to be closed by its last owner.
const REOPEN_WAIT: Duration = Duration::from_secs(10);

/// What the raw store ingest of B's rows measured.
struct RawIngest {
    applied_rows: usize,
    state_rows: usize,
    elapsed: Duration,
}

/// The baseline: the rows B's catch-up left in its database (the
/// context's applied delta rows and its final state rows), committed into a
/// fresh store in `pages` durable transactions, as straight as the store
/// allows. Only the commits are timed.
async fn raw_ingest(b_dir: &std::path::Path, context: Hash, pages: usize) -> anyhow::Result<RawIngest> {
    let path = b_dir.join(weft_node::DATABASE_FILE);
    // B's driver drops the database as it winds down: wait for it.
    let deadline = Instant::now() + REOPEN_WAIT;
    let source = loop {
        match weft_store::Store::open(&path) {
            Ok(store) => break store,
            Err(error) if Instant::now() >= deadline => bail!("reopening B's database: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let read = source.read()?;
    let mut applied: Vec<((Hash, u64), Vec<u8>)> = Vec::new();
    loop {
        let after = applied.last().map(|(key, _)| *key);
        let page = read.scan(weft_store::APPLIED, context.as_bytes(), after.as_ref(), SCAN_ROWS)?;
        let done = page.len() < SCAN_ROWS;
        applied.extend(page);
        if done {
            break;
        }
    }
    let view = read.state_view(context)?;
    let mut state: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        use weft_primitives::kv::KvRead;
        let after = state.last().map(|(key, _)| key.clone());
        let page = view.scan(b"", after.as_deref(), SCAN_ROWS).map_err(|e| anyhow::anyhow!("{e}"))?;
        let done = page.len() < SCAN_ROWS;
        state.extend(page);
        if done {
            break;
        }
    }
    drop((view, read, source));
    let target_dir = tempfile::TempDir::new().context("a directory for the raw ingest")?;
    let target = weft_store::Store::open(target_dir.path().join("raw.redb"))?;
    let (applied_per, state_per) = (applied.len().div_ceil(pages).max(1), state.len().div_ceil(pages).max(1));
    let started = Instant::now();
    for page in 0..pages {
        let rows = applied.iter().skip(page * applied_per).take(applied_per);
        let mut writes = weft_primitives::kv::WriteSet::new();
        for (key, value) in state.iter().skip(page * state_per).take(state_per) {
            writes.put(key.clone(), value.clone());
        }
        target.write(|txn| {
            for (key, bytes) in rows {
                txn.put(weft_store::APPLIED, key, bytes)?;
            }
            txn.apply_state_writes(context, &writes)
        })?;
    }
    let elapsed = started.elapsed();
    Ok(RawIngest { applied_rows: applied.len(), state_rows: state.len(), elapsed })
}

/// B's counters at one poll.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Step {
    opened: u64,
    accepted: u64,
    frames_sent: u64,
    frames_received: u64,
    applied: u64,
}

pub async fn run(missed: usize) -> anyhow::Result<()> {
    let mut cluster = Cluster::start(2).await?;
    let context = cluster.shared_kv_context().await?;
    cluster.converged(context, CONVERGE_TIMEOUT).await?.context("A and B did not converge after the join")?;
    cluster.node(B).shutdown().await.context("stopping B")?;

    let setup = Instant::now();
    let ids = write_missed(cluster.node(A), context, missed).await?;
    let setup = setup.elapsed();
    let target = cluster.node(A).context(context).await?;
    let mut delta_bytes = 0u64;
    for id in &ids {
        let bytes = cluster.node(A).delta(context, *id).await?.with_context(|| format!("A does not hold {id}"))?;
        delta_bytes += bytes.len() as u64;
    }
    let a_before = cluster.node(A).stats().await?;

    let a_is_smaller = node_key(cluster.nodes[A].seed) < node_key(cluster.nodes[B].seed);
    let b_config = config(&cluster.nodes[B].dir, cluster.nodes[B].seed);
    let burst_pages_max = b_config.sync.burst_pages_max.max(1) as u64;
    let stop = Arc::new(Notify::new());
    let a_watch = tokio::spawn(watch_a(cluster.node(A).clone(), a_before, stop.clone()));
    let t0 = Instant::now();
    cluster.nodes[B].handle = Node::start(b_config).await.context("restarting B")?;
    let started = t0.elapsed();
    cluster.connect(B, A).await?;
    let dialed = t0.elapsed();
    let (wall, at_catch_up, timeline) = wait_for(cluster.node(B), context, &target, t0).await?;
    stop.notify_one();
    let a_timeline = a_watch.await.context("A's watcher failed")??;
    tokio::time::sleep(SETTLE).await;
    let b = cluster.node(B).stats().await?;
    let a = diff(&cluster.node(A).stats().await?, &a_before);
    let len = kv_len(cluster.node(B), context).await?;
    let after = cluster.infos(context).await?;
    cluster.node(B).shutdown().await.context("stopping B")?;
    let pages = delta_bytes.div_ceil(PAGE_BYTES_MAX as u64).max(1) as usize;
    let raw = raw_ingest(&cluster.nodes[B].dir, context, pages).await;
    cluster.shutdown().await?;
    let raw = raw?;
    ensure!(len == missed as u64, "B's kv len is {len}, expected {missed}");
    ensure!(after[A].applied == after[B].applied, "A applied {}, B {}", after[A].applied, after[B].applied);

    emit(
        "catch_up_wall_time",
        ms(wall),
        "ms",
        json!({
            "missed": missed,
            "how": "Node::start of B on its old dir -> B's heads and root hash equal A's (polled every 2 ms)",
            "node_start_ms": ms(started),
            "dialed_ms": ms(dialed),
            "setup_writes_on_a_per_s": round3(per_second(missed as u64, setup)),
            "timeline_columns": ["ms", "b_sessions_opened", "b_sessions_accepted", "b_frames_sent", "b_frames_received", "b_applied"],
            "timeline": timeline.iter().map(|(at, s)| json!([at, s.opened, s.accepted, s.frames_sent, s.frames_received, s.applied])).collect::<Vec<_>>(),
        }),
    );
    emit(
        "catch_up_apply_rate",
        round3(per_second(missed as u64, wall.saturating_sub(dialed))),
        "deltas/s",
        json!({ "how": "missed / (caught up - dialed): the network part is a few ms of it, see the timeline" }),
    );
    let apply_rate = per_second(missed as u64, wall.saturating_sub(dialed));
    let raw_rate = per_second(raw.applied_rows as u64, raw.elapsed);
    emit(
        "catch_up_ratio_to_raw_store_ingest",
        round3(apply_rate / raw_rate.max(f64::MIN_POSITIVE)),
        "ratio",
        json!({
            "how": "catch_up_apply_rate / the raw store's ingest rate of the same rows in the same run",
            "baseline": "B's applied rows of the context and the context's final state rows, read back from B's database after it stopped, committed into a fresh store in as many durable transactions as the catch-up had pages",
            "raw_applied_rows": raw.applied_rows, "raw_state_rows": raw.state_rows, "raw_transactions": pages,
            "raw_ms": ms(raw.elapsed), "raw_rows_per_s": round3(raw_rate),
            "target": TARGET_RAW_RATIO, "meets_target": apply_rate / raw_rate.max(f64::MIN_POSITIVE) >= TARGET_RAW_RATIO,
        }),
    );
    let wire = b.sync_bytes_sent + b.sync_bytes_received;
    emit(
        "catch_up_delta_bytes",
        delta_bytes,
        "bytes",
        json!({ "missed": missed, "mean_delta_bytes": round3(delta_bytes as f64 / missed.max(1) as f64) }),
    );
    emit(
        "catch_up_wire_bytes",
        wire,
        "bytes",
        json!({
            "how": "B's sync frames both directions, payload + 4-byte length prefix each, read 300 ms after catching up (gossip not included)",
            "b_sent": b.sync_bytes_sent, "b_received": b.sync_bytes_received,
            "a_sent": a.sync_bytes_sent, "a_received": a.sync_bytes_received,
            "b_gossip_received": b.gossip_received,
        }),
    );
    let ratio = wire as f64 / delta_bytes.max(1) as f64;
    emit(
        "catch_up_bytes_ratio",
        round3(ratio),
        "ratio",
        json!({ "how": "catch_up_wire_bytes / catch_up_delta_bytes", "target": TARGET_BYTES_RATIO, "meets_target": ratio <= TARGET_BYTES_RATIO }),
    );
    let trips = RoundTrips::derive(&a_timeline, a_is_smaller, delta_bytes, burst_pages_max);
    emit(
        "catch_up_round_trips",
        trips.value,
        "round trips",
        json!({
            "derivation": trips.derivation,
            "data_session_opened_by": trips.initiator,
            "a_node_key_is_smaller": a_is_smaller,
            "continues": trips.continues,
            "b_frames_sent_beyond_openings": at_catch_up.frames_sent.saturating_sub(2 * at_catch_up.opened + at_catch_up.accepted),
            "pages_expected": trips.pages_expected,
            "target": TARGET_ROUND_TRIPS,
            "meets_target": trips.value <= TARGET_ROUND_TRIPS,
            "a_when_bulk_sent": trips.a_step.map(|s| json!({ "a_sessions_opened": s.sync_sessions_opened, "a_sessions_accepted": s.sync_sessions_accepted, "a_bytes_sent": s.sync_bytes_sent })),
            "at_catch_up": { "b_sessions_opened": at_catch_up.opened, "b_sessions_accepted": at_catch_up.accepted,
                             "b_frames_sent": at_catch_up.frames_sent, "b_frames_received": at_catch_up.frames_received },
            "after_settle": { "b_sessions_opened": b.sync_sessions_opened, "b_sessions_accepted": b.sync_sessions_accepted,
                              "a_sessions_opened": a.sync_sessions_opened, "a_sessions_accepted": a.sync_sessions_accepted,
                              "b_frames_sent": b.sync_frames_sent, "b_frames_received": b.sync_frames_received,
                              "a_frames_sent": a.sync_frames_sent, "a_frames_received": a.sync_frames_received },
        }),
    );
    Ok(())
}

/// Commit `missed` writes on A; their delta ids.
async fn write_missed(a: &NodeHandle, context: Hash, missed: usize) -> anyhow::Result<Vec<Hash>> {
    let mut tasks = Vec::with_capacity(SETUP_WRITERS);
    for writer in 0..SETUP_WRITERS {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(missed / SETUP_WRITERS + 1);
            for n in (writer..missed).step_by(SETUP_WRITERS) {
                ids.push(set(&a, context, &format!("missed-{n}"), "v").await?.1);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::with_capacity(missed);
    for task in tasks {
        ids.extend(task.await.context("a writer task failed")??);
    }
    Ok(ids)
}

/// Poll B until its heads and root hash are `target`'s. Returns the time
/// from `t0`, B's counters at that poll, and every change seen on the way.
async fn wait_for(
    b: &NodeHandle,
    context: Hash,
    target: &ContextInfo,
    t0: Instant,
) -> anyhow::Result<(Duration, Step, Vec<(f64, Step)>)> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut timeline: Vec<(f64, Step)> = Vec::new();
    loop {
        let info = b.context(context).await?;
        let stats = b.stats().await?;
        let at = t0.elapsed();
        let step = Step {
            opened: stats.sync_sessions_opened,
            accepted: stats.sync_sessions_accepted,
            frames_sent: stats.sync_frames_sent,
            frames_received: stats.sync_frames_received,
            applied: info.applied,
        };
        if timeline.last().is_none_or(|(_, last)| *last != step) && timeline.len() < TIMELINE_MAX {
            timeline.push((ms(at), step));
        }
        if same_state(&info, target) {
            return Ok((at, step, timeline));
        }
        if Instant::now() >= deadline {
            bail!("B did not catch up in {CONVERGE_TIMEOUT:?}: applied {}, pending {}", info.applied, info.pending);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A node's key as the sync protocol orders peers.
fn node_key(seed: [u8; 32]) -> [u8; 32] {
    SigningKey::from_seed(seed).public_key().0
}

/// A's counters (since `before`) whenever they change, until `stop`.
async fn watch_a(a: NodeHandle, before: NodeStats, stop: Arc<Notify>) -> anyhow::Result<Vec<NodeStats>> {
    let mut steps: Vec<NodeStats> = Vec::new();
    loop {
        let step = diff(&a.stats().await?, &before);
        if steps.last() != Some(&step) && steps.len() < TIMELINE_MAX {
            steps.push(step);
        }
        tokio::select! {
            () = stop.notified() => return Ok(steps),
            () = tokio::time::sleep(A_POLL_INTERVAL) => {}
        }
    }
}

fn diff(after: &NodeStats, before: &NodeStats) -> NodeStats {
    NodeStats {
        sync_sessions_opened: after.sync_sessions_opened.saturating_sub(before.sync_sessions_opened),
        sync_sessions_accepted: after.sync_sessions_accepted.saturating_sub(before.sync_sessions_accepted),
        sync_bytes_sent: after.sync_bytes_sent.saturating_sub(before.sync_bytes_sent),
        sync_bytes_received: after.sync_bytes_received.saturating_sub(before.sync_bytes_received),
        sync_frames_sent: after.sync_frames_sent.saturating_sub(before.sync_frames_sent),
        sync_frames_received: after.sync_frames_received.saturating_sub(before.sync_frames_received),
        gossip_received: after.gossip_received.saturating_sub(before.gossip_received),
        ..NodeStats::default()
    }
}

/// Round trips on the catch-up's critical path, derived from counters and
/// the protocol (the node counts frames, not message kinds).
struct RoundTrips {
    value: f64,
    initiator: &'static str,
    continues: u64,
    pages_expected: u64,
    /// A's counters when the bulk of the deltas had left it.
    a_step: Option<NodeStats>,
    derivation: &'static str,
}

impl RoundTrips {
    const DERIVATION: &'static str = "The deltas reach B on one anti-entropy session (a behind replica refuses a second bulk \
        inflow as Busy). Which side opened it: A's counters, polled every 1 ms, at the first poll where A had sent half a \
        page's worth of bytes (or all the deltas): opened 0 and accepted >= 1 means B opened it, request -> reply + pages = 1 \
        round trip; accepted 0 and opened >= 1 means A did, request -> reply -> pages = 1.5; both nonzero: the sessions \
        crossed and the one opened by the smaller node key survives (the protocol's crossing rule). \
        Plus 1 per Continue, i.e. per burst of burst_pages_max pages after the first; pages_expected = ceil(delta bytes / \
        PAGE_BYTES_MAX). Sessions refused as Busy run beside it and add no wait. Check: B's frames sent beyond hello + \
        request per session it opened and one answer per session it accepted bound the Continues it sent.";

    fn derive(a_timeline: &[NodeStats], a_is_smaller: bool, delta_bytes: u64, burst_pages_max: u64) -> RoundTrips {
        let bulk = delta_bytes.min(PAGE_BYTES_MAX as u64) / 2;
        let a_step = a_timeline.iter().find(|s| s.sync_bytes_sent >= bulk).copied();
        let (initiator, base) = match a_step {
            Some(s) if s.sync_sessions_opened == 0 && s.sync_sessions_accepted > 0 => ("B", 1.0),
            Some(s) if s.sync_sessions_accepted == 0 && s.sync_sessions_opened > 0 => ("A", 1.5),
            Some(s) if s.sync_sessions_accepted > 0 && a_is_smaller => {
                ("A (crossing sessions, A's key is smaller)", 1.5)
            }
            Some(s) if s.sync_sessions_accepted > 0 => ("B (crossing sessions, B's key is smaller)", 1.0),
            _ => ("unknown (counted as A)", 1.5),
        };
        let pages_expected = delta_bytes.div_ceil(PAGE_BYTES_MAX as u64).max(1);
        let continues = pages_expected.div_ceil(burst_pages_max) - 1;
        RoundTrips {
            value: base + continues as f64,
            initiator,
            continues,
            pages_expected,
            a_step,
            derivation: Self::DERIVATION,
        }
    }
}
