//! `weft-bench`: benchmarks that cross crate boundaries, run on the real
//! parts (redb on disk, the CRDT engine, group commit).
//!
//! Prints one JSON line per figure: `{"name": ..., "value": ..., "unit": ...}`.
//! Every ratio is taken against a baseline measured in the same invocation.
//!
//! Usage: `cargo run --release -p weft-bench -- [--inserts N]`

mod figure;
mod state_store;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut inserts = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--inserts" => {
                let value = args.next().context("--inserts needs a number")?;
                inserts = value.parse().with_context(|| format!("--inserts: {value:?} is not a number"))?;
                if inserts == 0 {
                    bail!("--inserts must be at least 1");
                }
            }
            "-h" | "--help" => {
                println!("usage: weft-bench [--inserts N]   (default 100000)");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    state_store::run(inserts)
}
