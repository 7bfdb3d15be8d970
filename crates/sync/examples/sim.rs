//! The long simulation runs (`scripts/sim` calls this in release).
//!
//! ```text
//! sim [--seed N | --seeds FROM..TO] [--ci] [--nodes N] [--ops N] [--ops-per-s N]
//!     [--loss PCT] [--dup PCT] [--reorder MS] [--partitions N] [--crashes N]
//!     [--periods N] [--catch-up MISSING] [--joins]
//! ```
//! Runs docs/testing.md S1 (default: 20 nodes, 10 000 ops, seed 1; `--ci`: the CI
//! slice's shape) for each seed and prints a report per seed; a failing
//! seed prints `SEED=…` and the command that replays it exactly, and the
//! exit status is 1. `--catch-up` instead measures the catch-up of a
//! replica that missed MISSING deltas; `--joins` runs the membership
//! scenario (nodes joining and leaving mid-run, CI shape) for each seed.

use std::process::ExitCode;
use std::time::Instant;

use weft_sync::sim::{JoinsConfig, S1Config, measure_catch_up, run_joins, run_s1};

struct Args {
    seeds: Vec<u64>,
    base: fn(u64) -> S1Config,
    overrides: Vec<(String, u64)>,
    catch_up: Option<usize>,
    joins: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args { seeds: vec![1], base: S1Config::full, overrides: Vec::new(), catch_up: None, joins: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--ci" {
            args.base = S1Config::ci;
            continue;
        }
        if flag == "--joins" {
            args.joins = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--seed" => args.seeds = vec![number(&value)?],
            "--seeds" => {
                let (from, to) = value.split_once("..").ok_or("--seeds wants FROM..TO")?;
                args.seeds = (number(from)?..number(to)?).collect();
            }
            "--catch-up" => args.catch_up = Some(number(&value)? as usize),
            "--nodes" | "--ops" | "--ops-per-s" | "--loss" | "--dup" | "--reorder" | "--partitions" | "--crashes"
            | "--periods" | "--remember" => args.overrides.push((flag.clone(), number(&value)?)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn config(args: &Args, seed: u64) -> S1Config {
    let mut config = (args.base)(seed);
    for (flag, value) in &args.overrides {
        let value = *value;
        match flag.as_str() {
            "--nodes" => config.nodes = value as usize,
            "--ops" => config.ops = value as usize,
            "--ops-per-s" => config.ops_per_s = value,
            "--loss" => config.loss_pct = value as u32,
            "--dup" => config.dup_pct = value as u32,
            "--reorder" => config.reorder_ms = value,
            "--partitions" => config.partitions = value as usize,
            "--crashes" => config.crashes = value as usize,
            "--remember" => config.remembered = value,
            _ => config.periods_allowed = value,
        }
    }
    config
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(missing) = args.catch_up {
        let started = Instant::now();
        let catch_up = measure_catch_up(missing, args.seeds[0]);
        println!(
            "catch-up of {} missed deltas ({} bytes): {:.2} round trips, {} wire bytes in {} messages, ratio {:.4} ({:.1}s wall, setup included)",
            catch_up.missing,
            catch_up.missing_bytes,
            catch_up.round_trips,
            catch_up.wire_bytes,
            catch_up.wire_messages,
            catch_up.ratio(),
            started.elapsed().as_secs_f64()
        );
        return ExitCode::SUCCESS;
    }
    let mut failed = Vec::new();
    if args.joins {
        for seed in &args.seeds {
            let report = run_joins(&JoinsConfig::ci(*seed));
            println!("{report}");
            if !report.passed() {
                failed.push(format!("sim --joins --seed {seed}"));
            }
        }
    }
    for seed in args.seeds.iter().filter(|_| !args.joins) {
        let started = Instant::now();
        let report = run_s1(&config(&args, *seed));
        println!("{report}\n  wall_s={:.1}", started.elapsed().as_secs_f64());
        if !report.passed() {
            failed.push(report.replay_command());
        }
    }
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("{} seed(s) failed; replay with:", failed.len());
    for command in failed {
        eprintln!("  {command}");
    }
    ExitCode::FAILURE
}
