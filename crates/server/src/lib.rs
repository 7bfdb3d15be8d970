//! Weft's HTTP API over one running node: admin REST (`/admin/…`),
//! JSON-RPC 2.0 (`/jsonrpc`), live events over WebSocket (`/ws`) and
//! Server-Sent Events (`/events`), Prometheus metrics (`/metrics`), a health
//! probe and the OpenAPI document of all of it. `docs/api.md` is the
//! contract; this crate implements it.
//!
//! What the server guarantees:
//! - **One route list.** [`routes::ROUTES`] builds both the router and the
//!   OpenAPI document, so the document cannot name a route the server does
//!   not serve, nor miss one it does (a test probes every entry).
//! - **Closed by default off loopback.** A non-loopback `listen` without a
//!   token is refused at start; with a token (on loopback too), every route
//!   but `/health` needs `Authorization: Bearer <token>`, compared in
//!   constant time. The token never travels in a URL: live streams take a
//!   short-lived single-use ticket ([`tickets`]).
//! - **Web pages drive nothing.** A Host allow-list defeats DNS rebinding,
//!   an Origin check refuses other sites' pages (WebSocket handshakes
//!   included), and JSON routes take only `application/json`, so a form
//!   POST is refused before any handler runs ([`browser`]).
//! - **Bounded everywhere.** Request bodies (a module ≤ [`MODULE_BODY_MAX`],
//!   anything else ≤ [`JSON_BODY_MAX`]), each WebSocket client's queue
//!   ([`WS_QUEUE_MAX`]; a client that falls behind is disconnected, the
//!   node never waits), the metrics series.
//! - **Every error is JSON** with a stable code: `{"error": {"code",
//!   "message"}}` for REST (unknown routes and methods included), JSON-RPC
//!   error objects for `/jsonrpc`.
//! - **Graceful shutdown** ends live streams, lets in-flight requests
//!   finish, and gives up after [`SHUTDOWN_GRACE_MAX`].

mod auth;
mod browser;
mod errors;
#[doc(hidden)]
pub mod fuzzing;
mod live;
mod metrics;
mod openapi;
mod rest;
mod routes;
mod rpc;
mod shapes;
mod sse;
mod state;
pub mod tickets;
mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::watch;
use weft_node::NodeHandle;

pub use openapi::openapi;

/// Largest WASM module `POST /admin/applications` accepts.
pub const MODULE_BODY_MAX: usize = 16 * 1024 * 1024;
/// Largest body any other route accepts.
pub const JSON_BODY_MAX: usize = 1024 * 1024;
/// Messages queued for one WebSocket client before it is disconnected.
pub const WS_QUEUE_MAX: usize = 256;
/// How long [`ServerHandle::shutdown`] waits for connections to finish.
pub const SHUTDOWN_GRACE_MAX: Duration = Duration::from_secs(10);
/// The API's default port (on loopback).
pub const API_PORT_DEFAULT: u16 = 2528;

/// Where and how the API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The bearer token. Mandatory when `listen` is not a loopback address;
    /// when set, required on every route but `/health`, loopback or not.
    pub token: Option<String>,
    /// Host names accepted in the `Host` header beside IP literals and
    /// `localhost` (e.g. the name a reverse proxy forwards).
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may call the API beside
    /// the API's own.
    pub allowed_origins: Vec<String>,
}

impl ServerConfig {
    /// `127.0.0.1:port`, no token, no extra hosts or origins.
    pub fn loopback(port: u16) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            token: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }

    /// `listen` with `token`, no extra hosts or origins.
    pub fn new(listen: SocketAddr, token: Option<String>) -> ServerConfig {
        ServerConfig { listen, token, ..ServerConfig::loopback(0) }
    }

    /// Whether a token must be configured (any address but loopback).
    pub fn requires_token(&self) -> bool {
        !self.listen.ip().is_loopback()
    }

    /// Refuse a configuration that would expose the node without a token.
    pub fn check(&self) -> Result<(), ServerError> {
        if let Some(token) = &self.token
            && token.trim().is_empty()
        {
            return Err(ServerError::Config("the API token is empty".into()));
        }
        if self.requires_token() && self.token.is_none() {
            return Err(ServerError::Config(format!(
                "listening on {} (not loopback) requires an API token",
                self.listen
            )));
        }
        for host in &self.allowed_hosts {
            let host = host.trim();
            if host.is_empty() || host.contains([':', '/', '[', ']']) || host.contains(char::is_whitespace) {
                return Err(ServerError::Config(format!("allowed host {host:?} must be a bare host name")));
            }
        }
        for origin in &self.allowed_origins {
            let rest = origin.trim().strip_prefix("http://").or_else(|| origin.trim().strip_prefix("https://"));
            if rest.is_none_or(|rest| rest.trim_end_matches('/').is_empty() || rest.trim_end_matches('/').contains('/'))
            {
                return Err(ServerError::Config(format!(
                    "allowed origin {origin:?} must be scheme://host[:port] (http or https)"
                )));
            }
        }
        Ok(())
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unsafe or unusable.
    #[error("bad API configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: String,
    },
}

/// The router for `node` (all routes, auth, limits and metrics), without a
/// listener: for tests and for embedding. Live streams end only when their
/// clients leave. A non-loopback `config` without a token refuses every
/// request but `/health` (fail closed) instead of failing here.
pub fn router(node: NodeHandle, config: &ServerConfig) -> axum::Router {
    let (_never, stopping) = watch::channel(false);
    routes::build(state::ApiState::new(node, config, stopping))
}

/// Check `config`, bind it and serve the API in a background task.
pub async fn serve(node: NodeHandle, config: ServerConfig) -> Result<ServerHandle, ServerError> {
    config.check()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Bind { addr: config.listen, reason: e.to_string() })?;
    let local_addr =
        listener.local_addr().map_err(|e| ServerError::Bind { addr: config.listen, reason: e.to_string() })?;
    let (stop, stopping) = watch::channel(false);
    let app = routes::build(state::ApiState::new(node, &config, stopping.clone()));
    let mut signal = stopping;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            // A dropped handle detaches the server: only `shutdown` stops it.
            if signal.wait_for(|stopping| *stopping).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "API server failed");
        }
    });
    tracing::info!(addr = %local_addr, "API listening");
    Ok(ServerHandle { local_addr, stop, task })
}

/// A running server. Dropping it leaves the server running (until the
/// runtime ends); [`ServerHandle::shutdown`] stops it.
#[derive(Debug)]
#[must_use = "the server runs until `shutdown` is called"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting connections, end WebSocket and SSE streams, let
    /// in-flight requests finish; abort whatever is left after
    /// [`SHUTDOWN_GRACE_MAX`]. Does not stop the node.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE_MAX, &mut task).await.is_err() {
            tracing::warn!("API connections still open after the shutdown grace period; aborting them");
            task.abort();
        }
    }
}
