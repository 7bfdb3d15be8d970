//! `weft run`: the node and its API server in one process, until SIGINT or
//! SIGTERM.
//!
//! Shutdown order: the API server first (no new requests), then the node
//! (streams and swarm). Every write the node acknowledged is already
//! durable, so a clean exit loses nothing; the exit code is 0.

use std::path::Path;

use anyhow::Context as _;
use tracing::info;
use weft::config::CONFIG_FILE;
use weft::home;
use weft_node::Node;
use weft_server::ServerConfig;

/// Run the daemon of the home `home` (see `home::resolve_home`).
pub async fn run(home: Option<&Path>) -> anyhow::Result<()> {
    let home = home::resolve_home(home)?;
    let config = home::load_config(&home)?;
    let seed = home::read_node_key(&home)?;
    let token = home::read_token(&home)?;
    let node_config = config.node_config(&home, seed, &home.join(CONFIG_FILE).display().to_string())?;
    init_logs("info");
    let node = Node::start(node_config).await.context("starting the node")?;
    let server_config = ServerConfig {
        allowed_hosts: config.api.allowed_hosts.clone(),
        allowed_origins: config.api.allowed_origins.clone(),
        ..ServerConfig::new(config.api.listen, token)
    };
    let server = match weft_server::serve(node.clone(), server_config).await {
        Ok(server) => server,
        Err(error) => {
            let _ = node.shutdown().await;
            return Err(anyhow::anyhow!("starting the API on {}: {error}", config.api.listen));
        }
    };
    let listen = node.listen_addrs().await.unwrap_or_default();
    println!("weft node {}", node.peer_id());
    println!("  member   {}", weft::home::hex(&node.identity().0));
    println!("  api      {}", crate::commands::api_url(server.local_addr()));
    for addr in &listen {
        println!("  swarm    {addr}/p2p/{}", node.peer_id());
    }
    println!("  home     {}", home.display());
    info!(peer = %node.peer_id(), api = %server.local_addr(), "node running");
    let signal = wait_for_signal().await;
    info!(signal, "shutting down");
    server.shutdown().await;
    node.shutdown().await.context("stopping the node")?;
    info!("stopped");
    Ok(())
}

/// Logs to stderr, filtered by `RUST_LOG` (else `default`). Safe to call
/// twice (the second call changes nothing).
pub fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The name of the first of SIGINT / SIGTERM to arrive.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                // A failed SIGINT handler disables this branch only.
                Ok(()) = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
