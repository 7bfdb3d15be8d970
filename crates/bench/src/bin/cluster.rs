//! `weft-cluster-bench`: real Weft nodes on loopback (own redb file, own
//! libp2p swarm, the real WASM runtime running `kv-store`), measured from
//! the outside through their public handles.
//!
//! Prints one JSON line per figure: `{"name": ..., "value": ..., "unit": ...}`
//! plus fields that say how it was measured. Figures:
//! - `propagation`: how long a write takes to reach all of 5 nodes;
//! - `catch_up`: a node that missed many deltas, restarted: wall time,
//!   sessions and frames, bytes on the wire against the deltas' own size;
//! - `sustained`: committed writes/s across 3 nodes, converged at the end;
//! - `local_writes`: durable writes/s on one node through its handle with
//!   1, 8 and 64 clients, against one fsync per call in the same run.
//!
//! Usage: `weft-cluster-bench [--only propagation|catch_up|sustained|local_writes]
//! [--writes N] [--missed N] [--seconds N] [--clients N] [--quick]`.
//! Bad arguments: one line on stderr, exit code 2. A figure that fails
//! (no convergence in time, a wrong count): exit code 1.

// A binary's root resolves modules beside it, not in a directory named
// after it: point at `cluster/` explicitly.
#[path = "cluster/catch_up.rs"]
mod catch_up;
#[path = "cluster/harness.rs"]
mod harness;
#[path = "cluster/local_writes.rs"]
mod local_writes;
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
/// `--quick`: a smoke run.
const QUICK_WRITES: usize = 50;
const QUICK_MISSED: usize = 1_000;
const QUICK_SECONDS: u64 = 2;

/// Upper bounds on the options, so a typo cannot run for a day.
const WRITES_MAX: usize = 100_000;
const MISSED_MAX: usize = 1_000_000;
const SECONDS_MAX: u64 = 3_600;
const CLIENTS_MAX: usize = 256;

/// Tokio worker threads. Each node would have its own runtime in its own
/// process; the driver does its fsyncs on a worker thread, so with only as
/// many workers as cores one node's fsync would stall the others' network
/// tasks, a contention real deployments do not have.
const WORKER_THREADS: usize = 8;

/// Which figures to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Only {
    Propagation,
    CatchUp,
    Sustained,
    LocalWrites,
}

/// The parsed command line.
#[derive(Clone, Copy, Debug)]
struct Options {
    only: Option<Only>,
    writes: usize,
    missed: usize,
    seconds: u64,
    clients: usize,
}

const USAGE: &str = "usage: weft-cluster-bench [--only propagation|catch_up|sustained|local_writes] [--writes N] \
                     [--missed N] [--seconds N] [--clients N] [--quick]";

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
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                only = Some(match args.next().as_deref() {
                    Some("propagation") => Only::Propagation,
                    Some("catch_up") => Only::CatchUp,
                    Some("sustained") => Only::Sustained,
                    Some("local_writes") => Only::LocalWrites,
                    Some(other) => {
                        return Err(format!(
                            "--only: unknown figure {other:?} (propagation, catch_up, sustained, local_writes)"
                        ));
                    }
                    None => return Err("--only needs a figure (propagation, catch_up, sustained, local_writes)".into()),
                });
            }
            "--writes" => writes = Some(number("--writes", args.next(), WRITES_MAX)?),
            "--missed" => missed = Some(number("--missed", args.next(), MISSED_MAX)?),
            "--seconds" => seconds = Some(number("--seconds", args.next(), SECONDS_MAX)?),
            "--clients" => clients = Some(number("--clients", args.next(), CLIENTS_MAX)?),
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
    }))
}

async fn run(options: Options) -> anyhow::Result<()> {
    let runs = |figure| options.only.is_none_or(|only| only == figure);
    if runs(Only::Propagation) {
        propagation::run(options.writes).await?;
    }
    if runs(Only::CatchUp) {
        catch_up::run(options.missed).await?;
    }
    if runs(Only::Sustained) {
        sustained::run(options.seconds, options.clients).await?;
    }
    if runs(Only::LocalWrites) {
        local_writes::run(options.seconds).await?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
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
    match runtime.block_on(run(options)) {
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
        assert_eq!((quick.writes, quick.missed, quick.seconds), (50, 1_000, 2));
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
