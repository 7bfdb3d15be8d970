//! `idle_contexts`: what quiet shared contexts cost.
//!
//! Nodes A and B share `contexts` kv-store contexts in which nothing
//! happens. Each replica still runs anti-entropy; once every peer matched
//! it, its period doubles from 10 s to 160 s. Measured over one whole
//! longest period after the back-off has settled (10 + 20 + 40 + 80 + 160 s
//! plus a margin): sync sessions per second at A (opened and accepted) and
//! the CPU the process (both nodes) used. Directory refreshes back off the
//! same way (60 s doubling to 16 min); A's directory answers received per
//! second are reported too. The baseline is the same pair with both
//! back-offs off (`sync_idle_max_ms` = `sync_frequency_ms`: every 10 s;
//! `directory_refresh_max_ms` = `directory_refresh_ms`: every 60 s, as
//! before), in the same run, measured after a short settling.

use std::time::Duration;

use serde_json::json;
use weft_node::NodeHandle;

use crate::harness::Cluster;
use crate::report::{emit, round3};

const A: usize = 0;
const B: usize = 1;
/// Until every period has doubled four times, with a margin.
const SETTLE_IDLE: Duration = Duration::from_secs(330);
/// The baseline has no back-off to settle: past the first random phases.
const SETTLE_BASELINE: Duration = Duration::from_secs(20);
/// One longest idle period: every context syncs about once from each side.
const WINDOW: Duration = Duration::from_secs(160);
/// Linux reports process CPU time in ticks of 1/100 s to user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// What one pair showed over the window.
struct Measured {
    sessions_per_s: f64,
    directories_per_s: f64,
    cpu_cores: Option<f64>,
    setup_s: f64,
}

/// User plus system CPU ticks of this process so far.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; count from after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Sync sessions (opened and accepted) and directories received so far.
async fn exchanges(node: &NodeHandle) -> anyhow::Result<(u64, u64)> {
    let stats = node.stats().await?;
    Ok((stats.sync_sessions_opened + stats.sync_sessions_accepted, stats.directories_received))
}

async fn measure(contexts: usize, back_off: bool, settle: Duration) -> anyhow::Result<Measured> {
    let cluster = Cluster::start_with(2, |config| {
        if !back_off {
            config.sync.sync_idle_max_ms = config.sync.sync_frequency_ms;
            config.directory_refresh_max_ms = config.directory_refresh_ms;
        }
    })
    .await?;
    let setup = std::time::Instant::now();
    cluster.share_contexts(A, B, contexts).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let ((sessions_before, directories_before), ticks_before) = (exchanges(cluster.node(A)).await?, cpu_ticks());
    tokio::time::sleep(WINDOW).await;
    let ((sessions_after, directories_after), ticks_after) = (exchanges(cluster.node(A)).await?, cpu_ticks());
    cluster.shutdown().await?;
    let window_s = WINDOW.as_secs_f64();
    let cpu_cores = match (ticks_before, ticks_after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before) as f64 / TICKS_PER_SECOND / window_s),
        _ => None,
    };
    Ok(Measured {
        sessions_per_s: sessions_after.saturating_sub(sessions_before) as f64 / window_s,
        directories_per_s: directories_after.saturating_sub(directories_before) as f64 / window_s,
        cpu_cores,
        setup_s,
    })
}

pub async fn run(contexts: usize) -> anyhow::Result<()> {
    let baseline = measure(contexts, false, SETTLE_BASELINE).await?;
    let idle = measure(contexts, true, SETTLE_IDLE).await?;
    emit(
        "idle_contexts_sync_sessions",
        round3(idle.sessions_per_s),
        "sessions/s",
        json!({
            "how": "A and B share N quiet contexts; A's sync sessions (opened + accepted) and directory answers per second over 160 s once the sync back-off settled (330 s; the directory back-off is then at 4-8 min of its 16)",
            "contexts": contexts,
            "cpu_cores": idle.cpu_cores.map(round3),
            "directories_per_s": round3(idle.directories_per_s),
            "baseline_sessions_per_s": round3(baseline.sessions_per_s),
            "baseline_directories_per_s": round3(baseline.directories_per_s),
            "baseline_cpu_cores": baseline.cpu_cores.map(round3),
            "baseline": "the same pair with both back-offs off (sync every 10 s, directories every 60 s), in the same run",
            "ratio_to_baseline": round3(idle.sessions_per_s / baseline.sessions_per_s.max(f64::MIN_POSITIVE)),
            "setup_s": round3(idle.setup_s + baseline.setup_s),
        }),
    );
    Ok(())
}
