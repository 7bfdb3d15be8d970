//! The command line: every command, flag and argument, with clap's derive.
//! Parsing only; `main.rs` dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

/// Weft: run a peer-to-peer node and talk to it.
#[derive(Debug, Parser)]
#[command(name = "weft", version, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    /// The node's home directory [default: $WEFT_HOME, else ~/.weft].
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The node's API [default: http://<[api] listen of the home's config>].
    #[arg(long, global = true, value_name = "URL")]
    pub api: Option<String>,
    /// The API bearer token [default: the home's api.token].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node home: config, identity key, API token, data directory.
    Init(InitArgs),
    /// Run the node (and its API) until SIGINT or SIGTERM.
    Run,
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Installed applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Contexts: create, invite, join, leave, inspect.
    #[command(subcommand)]
    Context(ContextCommand),
    /// Call a method of a context's application.
    Call(CallArgs),
    /// Print a context's live events until Ctrl-C.
    Watch {
        /// The context id (all contexts if absent).
        context: Option<String>,
    },
    /// Connected peers.
    Peers,
    /// Anti-entropy: status and manual runs.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Three nodes on loopback in this process, writing and converging.
    Demo(DemoArgs),
}

/// `weft init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The swarm port (TCP and QUIC, all interfaces).
    #[arg(long, value_name = "N", default_value_t = weft_net::SWARM_PORT_DEFAULT)]
    pub swarm_port: u16,
    /// Swarm listen multiaddrs instead of the ones --swarm-port makes
    /// (e.g. /ip4/127.0.0.1/tcp/4001). Repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub swarm_listen: Vec<String>,
    /// The API port (on 127.0.0.1).
    #[arg(long, value_name = "N", default_value_t = weft::config::API_PORT_DEFAULT)]
    pub api_port: u16,
    /// Peers to dial at start (multiaddrs ending in /p2p/<peer id>).
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub bootstrap: Vec<String>,
    /// Overwrite an existing home's config, key and token (its data stays).
    #[arg(long)]
    pub force: bool,
}

/// `weft config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the default config file, every key documented.
    Default,
    /// Check the home's config file as `weft run` would.
    Check,
}

/// `weft app …`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Install a WASM application from a file.
    Install {
        /// The .wasm module.
        file: PathBuf,
    },
    /// List installed applications.
    List,
    /// Show an application and its methods.
    Show {
        /// The application id.
        id: String,
    },
    /// Uninstall an application no context uses.
    Remove {
        /// The application id.
        id: String,
    },
}

/// `weft context …`.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Create a context of an installed application.
    Create {
        /// The application id.
        app_id: String,
        /// JSON arguments of the application's init method.
        #[arg(long, value_name = "JSON", value_parser = parse_json)]
        init_args: Option<Value>,
    },
    /// List this node's contexts.
    List,
    /// Show one context.
    Show {
        /// The context id.
        id: String,
    },
    /// Make an invitation (printed on stdout).
    Invite {
        /// The context id.
        id: String,
        /// Only this member key (hex) may use it [default: anyone holding it].
        #[arg(long, value_name = "KEY")]
        invitee: Option<String>,
        /// How long it is valid [default: a day].
        #[arg(long, value_name = "SECS")]
        valid_for: Option<u64>,
    },
    /// Revoke an invitation: no member's node admits anyone with it.
    Revoke {
        /// The context id.
        id: String,
        /// The invitation (weft-invite1:…) or its id (hex).
        invitation: String,
    },
    /// Remove a member (you must be the context's creator); the group key
    /// rotates so it cannot read what is written next.
    RemoveMember {
        /// The context id.
        id: String,
        /// The member's public key (hex).
        member: String,
    },
    /// List the context's group-key epochs.
    Epochs {
        /// The context id.
        id: String,
    },
    /// Join a context with an invitation.
    Join {
        /// The invitation (weft-invite1:…).
        invitation: String,
    },
    /// Leave a context.
    Leave {
        /// The context id.
        id: String,
    },
    /// A context's members.
    Members {
        /// The context id.
        id: String,
    },
}

/// `weft call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The context id.
    pub context: String,
    /// The method.
    pub method: String,
    /// JSON arguments.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub args: Option<Value>,
}

/// `weft sync …`.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Replication status, per context.
    Status {
        /// Only this context.
        context: Option<String>,
    },
    /// Start anti-entropy now.
    Now {
        /// Only this context.
        context: Option<String>,
    },
}

/// `weft demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop writing after this many seconds [default: run until Ctrl-C].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_after_subcommands() {
        let cli = Cli::try_parse_from(["weft", "context", "list", "--json", "--api", "http://x:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.api.as_deref(), Some("http://x:1"));
    }

    #[test]
    fn bad_json_arguments_are_usage_errors() {
        let error = Cli::try_parse_from(["weft", "call", "c", "m", "--args", "{nope"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }
}
