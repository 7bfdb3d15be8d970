//! `weft-cluster-bench`: real Weft nodes on loopback (own redb file, own
//! libp2p swarm, the real WASM runtime running `kv-store`), measured from
//! the outside through their public handles.
//!
//! Prints one JSON line per figure: `{"name": ..., "value": ..., "unit": ...}`
//! plus fields that say how it was measured. Figures:
//! - `propagation`: how long a write takes to reach all of 5 nodes;
//! - `propagation_loaded`: the same while every node writes in a second
//!   context, against the idle figure on the same cluster;
//! - `catch_up`: a node that missed many deltas, restarted: wall time,
//!   sessions and frames, bytes on the wire against the deltas' own size;
//! - `sustained`: committed writes/s across 3 nodes, converged at the end;
//! - `burst`: 1,000 quick writes on one of 2 nodes: how long after the
//!   last one the other holds them all;
//! - `local_writes`: durable writes/s on one node through its handle with
//!   1, 8 and 64 clients, against one fsync per call in the same run;
//! - `api_writes`: the same writes as JSON-RPC over the node's HTTP API,
//!   against the in-process calls in the same run;
//! - `big_state`: a node whose context holds `--entries` keys: memory
//!   growth while writing them, start-up time and memory when reopened;
//! - `many_contexts`: a node in `--contexts` small contexts: call latency
//!   on one of them, memory, start-up time, against a node in 1 context;
//! - `many_contexts_sync`: two nodes sharing `--contexts` contexts, one
//!   restarted after missing a write in each: when every context has
//!   caught up through its own anti-entropy, against one shared context;
//! - `idle_contexts`: two nodes sharing `--contexts` quiet contexts: sync
//!   sessions, directory answers and CPU per second once the idle sync
//!   back-off settled (about 8 minutes plus twice the setup), against both
//!   back-offs off.
//!
//! Usage: `weft-cluster-bench [--only propagation|propagation_loaded|catch_up|sustained|burst|local_writes|api_writes|big_state|many_contexts|many_contexts_sync|idle_contexts]
//! [--writes N] [--missed N] [--seconds N] [--clients N] [--entries N] [--contexts N] [--quick]`.
//! (`--reopen DIR` is `big_state`'s own: it reopens a node in a fresh process.)
//! Bad arguments: one line on stderr, exit code 2. A figure that fails
//! (no convergence in time, a wrong count): exit code 1.

// A binary's root resolves modules beside it, not in a directory named
// after it: point at `cluster/` explicitly.
#[path = "cluster/api_writes.rs"]
mod api_writes;
#[path = "cluster/big_state.rs"]
mod big_state;
#[path = "cluster/burst.rs"]
mod burst;
#[path = "cluster/catch_up.rs"]
mod catch_up;
#[path = "cluster/harness.rs"]
mod harness;
#[path = "cluster/idle_contexts.rs"]
mod idle_contexts;
#[path = "cluster/local_writes.rs"]
mod local_writes;
#[path = "cluster/many_contexts.rs"]
mod many_contexts;
#[path = "cluster/many_contexts_sync.rs"]
mod many_contexts_sync;
#[path = "cluster/propagation.rs"]
mod propagation;
#[path = "cluster/report.rs"]
mod report;
#[path = "cluster/sustained.rs"]
mod sustained;

use std::process::ExitCode;

/// Writes measured by `propagation` unless `--writes` says otherwise.
const WRITES_DEFAULT: usize = 500;
/// Deltas the stopped node misses in `catch_up`.
const MISSED_DEFAULT: usize = 10_000;
/// How long `sustained` writes.
const SECONDS_DEFAULT: u64 = 10;
/// Client tasks per node in `sustained`.
const CLIENTS_DEFAULT: usize = 4;
/// Keys `big_state` writes.
const ENTRIES_DEFAULT: u64 = 100_000;
/// Contexts `many_contexts` creates.
const CONTEXTS_DEFAULT: usize = 10_000;
/// Writes `burst` makes on node A.
const BURST_WRITES: usize = 1_000;
/// `--quick`: a smoke run.
const QUICK_WRITES: usize = 50;
const QUICK_MISSED: usize = 1_000;
const QUICK_SECONDS: u64 = 2;
const QUICK_ENTRIES: u64 = 2_000;
const QUICK_CONTEXTS: usize = 100;
const QUICK_BURST_WRITES: usize = 100;

/// Upper bounds on the options, so a typo cannot run for a day.
const WRITES_MAX: usize = 100_000;
const MISSED_MAX: usize = 1_000_000;
const SECONDS_MAX: u64 = 3_600;
const CLIENTS_MAX: usize = 256;
const ENTRIES_MAX: u64 = 10_000_000;
const CONTEXTS_MAX: usize = 1_000_000;

/// Tokio worker threads. Each node would have its own runtime in its own
/// process; the driver does its fsyncs on a worker thread, so with only as
/// many workers as cores one node's fsync would stall the others' network
/// tasks, a contention real deployments do not have.
const WORKER_THREADS: usize = 8;

/// Which figures to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Only {
    Propagation,
    PropagationLoaded,
    CatchUp,
    Sustained,
    Burst,
    LocalWrites,
    ApiWrites,
    BigState,
    ManyContexts,
    ManyContextsSync,
    IdleContexts,
}

/// The parsed command line.
#[derive(Clone, Copy, Debug)]
struct Options {
    only: Option<Only>,
    writes: usize,
    missed: usize,
    seconds: u64,
    clients: usize,
    entries: u64,
    contexts: usize,
    burst_writes: usize,
}

const USAGE: &str = "usage: weft-cluster-bench [--only propagation|propagation_loaded|catch_up|sustained|burst|local_writes|api_writes|big_state|many_contexts|many_contexts_sync|idle_contexts] \
                     [--writes N] [--missed N] [--seconds N] [--clients N] [--entries N] [--contexts N] [--quick]\n\
                     the nodes' logs go to stderr, filtered by RUST_LOG (errors only by default)";
const FIGURES: &str = "propagation, propagation_loaded, catch_up, sustained, burst, local_writes, api_writes, big_state, many_contexts, many_contexts_sync, idle_contexts";

/// The number after `flag`, in `1..=max`.
fn number<T>(flag: &str, value: Option<String>, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Default,
{
    let value = value.ok_or_else(|| format!("{flag} needs a number"))?;
    let parsed: T = value.parse().map_err(|_| format!("{flag}: {value:?} is not a number"))?;
    if parsed <= T::default() || parsed > max {
        return Err(format!("{flag}: {value} is out of range 1..={max}"));
    }
    Ok(parsed)
}

/// `Ok(None)`: `--help` was asked for.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let (mut only, mut writes, mut missed, mut seconds, mut clients, mut quick) = (None, None, None, None, None, false);
    let (mut entries, mut contexts) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                only = Some(match args.next().as_deref() {
                    Some("propagation") => Only::Propagation,
                    Some("propagation_loaded") => Only::PropagationLoaded,
                    Some("catch_up") => Only::CatchUp,
                    Some("sustained") => Only::Sustained,
                    Some("burst") => Only::Burst,
                    Some("local_writes") => Only::LocalWrites,
                    Some("api_writes") => Only::ApiWrites,
                    Some("big_state") => Only::BigState,
                    Some("many_contexts") => Only::ManyContexts,
                    Some("many_contexts_sync") => Only::ManyContextsSync,
                    Some("idle_contexts") => Only::IdleContexts,
                    Some(other) => return Err(format!("--only: unknown figure {other:?} ({FIGURES})")),
                    None => return Err(format!("--only needs a figure ({FIGURES})")),
                });
            }
            "--writes" => writes = Some(number("--writes", args.next(), WRITES_MAX)?),
            "--missed" => missed = Some(number("--missed", args.next(), MISSED_MAX)?),
            "--seconds" => seconds = Some(number("--seconds", args.next(), SECONDS_MAX)?),
            "--clients" => clients = Some(number("--clients", args.next(), CLIENTS_MAX)?),
            "--entries" => entries = Some(number("--entries", args.next(), ENTRIES_MAX)?),
            "--contexts" => contexts = Some(number("--contexts", args.next(), CONTEXTS_MAX)?),
            "--quick" => quick = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    Ok(Some(Options {
        only,
        writes: writes.unwrap_or(if quick { QUICK_WRITES } else { WRITES_DEFAULT }),
        missed: missed.unwrap_or(if quick { QUICK_MISSED } else { MISSED_DEFAULT }),
        seconds: seconds.unwrap_or(if quick { QUICK_SECONDS } else { SECONDS_DEFAULT }),
        clients: clients.unwrap_or(CLIENTS_DEFAULT),
        entries: entries.unwrap_or(if quick { QUICK_ENTRIES } else { ENTRIES_DEFAULT }),
        contexts: contexts.unwrap_or(if quick { QUICK_CONTEXTS } else { CONTEXTS_DEFAULT }),
        burst_writes: if quick { QUICK_BURST_WRITES } else { BURST_WRITES },
    }))
}

async fn run(options: Options) -> anyhow::Result<()> {
    let runs = |figure| options.only.is_none_or(|only| only == figure);
    if runs(Only::Propagation) {
        propagation::run(options.writes).await?;
    }
    if runs(Only::PropagationLoaded) {
        propagation::run_loaded(options.writes).await?;
    }
    if runs(Only::CatchUp) {
        catch_up::run(options.missed).await?;
    }
    if runs(Only::Sustained) {
        sustained::run(options.seconds, options.clients).await?;
    }
    if runs(Only::Burst) {
        burst::run(options.burst_writes).await?;
    }
    if runs(Only::LocalWrites) {
        local_writes::run(options.seconds).await?;
    }
    if runs(Only::ApiWrites) {
        api_writes::run(options.seconds).await?;
    }
    if runs(Only::BigState) {
        big_state::run(options.entries).await?;
    }
    if runs(Only::ManyContexts) {
        many_contexts::run(options.contexts).await?;
    }
    if runs(Only::ManyContextsSync) {
        many_contexts_sync::run(options.contexts).await?;
    }
    if runs(Only::IdleContexts) {
        idle_contexts::run(options.contexts).await?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // The nodes' logs, for a figure that stalls: RUST_LOG=weft_node=debug.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut raw = std::env::args().skip(1);
    let reopen = match (raw.next().as_deref(), raw.next()) {
        (Some("--reopen"), Some(dir)) => Some(std::path::PathBuf::from(dir)),
        _ => None,
    };
    let options = match parse(std::env::args().skip(1)) {
        _ if reopen.is_some() => None,
        Ok(Some(options)) => Some(options),
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("weft-cluster-bench: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(WORKER_THREADS).enable_all().build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("weft-cluster-bench: starting the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match (reopen, options) {
        (Some(dir), _) => runtime.block_on(big_state::reopen(&dir)),
        (None, Some(options)) => runtime.block_on(run(options)),
        (None, None) => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-cluster-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Options>, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_are_the_issue_sizes_and_quick_shrinks_them() {
        let full = args(&[]).unwrap().unwrap();
        assert_eq!((full.only, full.writes, full.missed, full.seconds, full.clients), (None, 500, 10_000, 10, 4));
        let quick = args(&["--quick"]).unwrap().unwrap();
        assert_eq!((quick.writes, quick.missed, quick.seconds, quick.entries), (50, 1_000, 2, 2_000));
    }

    #[test]
    fn explicit_sizes_win_over_quick_in_any_order() {
        let options = args(&["--missed", "7", "--quick", "--only", "catch_up"]).unwrap().unwrap();
        assert_eq!((options.only, options.missed, options.writes), (Some(Only::CatchUp), 7, 50));
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        for bad in [&["--writes"][..], &["--writes", "x"], &["--seconds", "0"], &["--only", "all"], &["--nope"]] {
            let error = args(bad).unwrap_err();
            assert!(!error.is_empty(), "{bad:?}");
        }
        assert!(args(&["--missed", "1000001"]).is_err());
    }

    #[test]
    fn help_is_not_an_error() {
        assert!(args(&["--help"]).unwrap().is_none());
    }
}
