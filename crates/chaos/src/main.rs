//! `weft-chaos`: run the chaos harness once and print its JSON summary.
//! Exits 0 when nothing was lost, every node agreed and no daemon died on
//! its own; 1 otherwise (the summary's `failures` say why, and `replay`
//! is the command that runs the same schedule again); 2 on bad flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use weft_chaos::run::{Options, run};
use weft_chaos::schedule::FaultKind;

#[derive(Debug, Parser)]
#[command(name = "weft-chaos", about = "Real weft daemons under seeded faults, with a write ledger")]
struct Cli {
    /// Daemons to run.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Minutes of workload and faults (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// Seed of the workload and the fault schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Calls per second over all nodes.
    #[arg(long, default_value_t = 60)]
    ops_per_s: u64,
    /// Fault kinds to draw from (repeatable; default: all).
    #[arg(long, value_enum)]
    fault: Vec<FaultKind>,
    /// The `weft` binary (default: next to this one).
    #[arg(long)]
    weft: Option<PathBuf>,
    /// Seconds to wait for convergence once the faults stop.
    #[arg(long, default_value_t = 120)]
    converge_timeout_secs: u64,
    /// Keep homes and logs here (default: a temporary directory, removed).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Each daemon remembers only this many deltas per context and forgets
    /// older ones (`[sync] history_remembered`; default: all).
    #[arg(long)]
    remember: Option<usize>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match main_inner(cli) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn main_inner(cli: Cli) -> anyhow::Result<bool> {
    if cli.nodes < 2 {
        anyhow::bail!("--nodes must be at least 2");
    }
    let weft = match cli.weft.clone() {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("weft"),
    };
    if !weft.exists() {
        anyhow::bail!("no weft binary at {} (build it, or pass --weft)", weft.display());
    }
    let kinds = if cli.fault.is_empty() {
        vec![
            FaultKind::Kill,
            FaultKind::Pause,
            FaultKind::Partition,
            FaultKind::Stall,
            FaultKind::Flaky,
            FaultKind::DiskFull,
        ]
    } else {
        cli.fault.clone()
    };
    let replay = format!(
        "scripts/chaos --nodes {} --minutes {} --seed {} --ops-per-s {}{}{}",
        cli.nodes,
        cli.minutes,
        cli.seed,
        cli.ops_per_s,
        cli.fault.iter().map(|k| format!(" --fault {}", kind_flag(*k))).collect::<String>(),
        cli.remember.map(|n| format!(" --remember {n}")).unwrap_or_default()
    );
    let options = Options {
        nodes: cli.nodes,
        duration: Duration::from_secs_f64(cli.minutes.max(0.05) * 60.0),
        seed: cli.seed,
        ops_per_s: cli.ops_per_s,
        kinds,
        weft,
        converge_timeout: Duration::from_secs(cli.converge_timeout_secs),
        workdir: cli.workdir.clone(),
        replay,
        remembered: cli.remember,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    let mut summary = runtime.block_on(run(options))?;
    summary.ok = summary.failures.is_empty();
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if !summary.ok {
        eprintln!("SEED={} failed; replay with: {}", summary.seed, summary.replay);
    }
    Ok(summary.ok)
}

fn kind_flag(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Kill => "kill",
        FaultKind::Pause => "pause",
        FaultKind::Partition => "partition",
        FaultKind::Stall => "stall",
        FaultKind::Flaky => "flaky",
        FaultKind::DiskFull => "disk-full",
    }
}
