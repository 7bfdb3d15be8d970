//! `weft-bench`: benchmarks that cross crate boundaries, run on the real
//! parts (redb on disk, the CRDT engine, group commit).
//!
//! Prints one JSON line per figure: `{"name": ..., "value": ..., "unit": ...}`.
//! Every ratio is taken against a baseline measured in the same invocation.
//!
//! Usage: `cargo run --release -p weft-bench -- [--inserts N] [--text-edits N | --text-edits all]`

mod figure;
mod state_store;
mod text_trace;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut inserts = 100_000usize;
    // The whole trace takes minutes while a text is stored whole; a prefix by default.
    let mut text_edits = Some(TEXT_EDITS_DEFAULT);
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
            "--text-edits" => {
                let value = args.next().context("--text-edits needs a number or `all`")?;
                text_edits = match value.as_str() {
                    "all" => None,
                    n => Some(n.parse().with_context(|| format!("--text-edits: {n:?} is not a number"))?),
                };
            }
            "-h" | "--help" => {
                println!(
                    "usage: weft-bench [--inserts N] [--text-edits N|all]   (defaults 100000, {TEXT_EDITS_DEFAULT})"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    state_store::run(inserts)?;
    text_trace::run(text_edits)
}

/// Edits of the automerge-paper trace replayed through the state layer by default.
const TEXT_EDITS_DEFAULT: usize = 20_000;
