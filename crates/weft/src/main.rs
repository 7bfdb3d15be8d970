//! `weft`: the one command-line tool of Weft. `init` makes a node home,
//! `run` is the daemon, `demo` runs three nodes in-process, and the other
//! commands are clients of a running node's HTTP API.
//!
//! Exit codes: 0 success; 1 an operational error, printed as one
//! `error: …` line on stderr; 2 a usage error (clap's), also one line.

mod cli;
mod commands;
mod daemon;
mod demo;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::anyhow!("starting the async runtime: {error}")),
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => fail(&error),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(ref args) => commands::init(&cli, args).map(|()| ExitCode::SUCCESS),
        Command::Run => daemon::run(cli.home.as_deref()).await.map(|()| ExitCode::SUCCESS),
        Command::Config(ref command) => commands::config(&cli, command).map(|()| ExitCode::SUCCESS),
        Command::Demo(ref args) => demo::run(args.duration).await,
        _ => commands::client_command(&cli).await.map(|()| ExitCode::SUCCESS),
    }
}

/// Help and version go to stdout with exit 0; any other parse error is one
/// line (clap's first) on stderr and exit 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(2)
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().find(|line| !line.trim().is_empty()).unwrap_or("error: bad usage");
            eprintln!("{} (see --help)", first.trim_end());
            ExitCode::from(2)
        }
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", weft::client::one_line(&format!("{error:#}")));
    ExitCode::FAILURE
}
