//! `api_writes`: one node, one context, `kv-store` `set` calls through the
//! node's real HTTP API (`weft-server` on loopback, JSON-RPC `execute` with
//! the bearer token, one keep-alive connection per client), each counted
//! once its response arrives (the write is durable by then).
//!
//! This is the path the "393 calls/s with one client, 560/s with 8"
//! was measured on. The baseline is the same node code called in process
//! (`NodeHandle::call`, as `local_writes` does) with the same client count,
//! in the same run; the ratio is what HTTP, JSON and auth cost. Afterwards
//! the node's kv `len` must equal the acknowledged writes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tempfile::TempDir;
use weft_node::Node;
use weft_primitives::Hash;

use crate::harness::{config, kv_len};
use crate::local_writes;
use crate::report::{emit, ms, per_second, round3};

/// Client counts measured.
const CLIENT_COUNTS: [usize; 3] = [1, 8, 64];
/// The token the bench's server requires (any non-empty string).
const TOKEN: &str = "bench-token";
/// Timeout of one request: far above any expected latency, so a stuck
/// server fails the bench instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Acknowledged writes/s over HTTP with `clients` clients; (writes/s, acked).
async fn measure(clients: usize, seconds: u64) -> anyhow::Result<(f64, u64)> {
    let dir = TempDir::new().context("temporary data directory")?;
    let node = Node::start(config(dir.path(), [1; 32])).await.context("starting the node")?;
    let app = node.install_application(weft_apps::KV_STORE.to_vec()).await?.id;
    let context = node.create_context(app, b"{}".to_vec()).await?.id;
    let server_config =
        weft_server::ServerConfig { token: Some(TOKEN.to_owned()), ..weft_server::ServerConfig::loopback(0) };
    let server = weft_server::serve(node.clone(), server_config).await.context("starting the API")?;
    let url = format!("http://{}/jsonrpc", server.local_addr());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().context("HTTP client")?;
        tasks.push(tokio::spawn(write_until(http, url.clone(), context, client, deadline)));
    }
    let mut acked = 0;
    for task in tasks {
        acked += task.await.context("a client task failed")??;
    }
    let elapsed = started.elapsed();
    server.shutdown().await;
    let len = kv_len(&node, context).await?;
    node.shutdown().await?;
    if len != acked {
        bail!("kv len {len} differs from the {acked} acknowledged writes");
    }
    Ok((per_second(acked, elapsed), acked))
}

async fn write_until(
    http: reqwest::Client,
    url: String,
    context: Hash,
    client: usize,
    deadline: Instant,
) -> anyhow::Result<u64> {
    let context = context.to_string();
    let mut acked = 0u64;
    while Instant::now() < deadline {
        let body = json!({
            "jsonrpc": "2.0", "id": acked, "method": "execute",
            "params": { "context": context, "method": "set", "args": { "key": format!("c{client}-{acked}"), "value": "v" } },
        });
        let response = http.post(&url).bearer_auth(TOKEN).json(&body).send().await.context("POST /jsonrpc")?;
        let status = response.status();
        let reply: Value = response.json().await.context("the JSON-RPC reply")?;
        if !status.is_success() || reply.get("error").is_some() {
            bail!("set failed ({status}): {reply}");
        }
        acked += 1;
    }
    Ok(acked)
}

pub async fn run(seconds: u64) -> anyhow::Result<()> {
    for clients in CLIENT_COUNTS {
        let started = Instant::now();
        let baseline = local_writes::measure(weft_node::CALL_GROUP_MAX_DEFAULT, clients, seconds).await?;
        let (writes_per_s, acked) = measure(clients, seconds).await?;
        emit(
            &format!("api_writes_{clients}_clients"),
            round3(writes_per_s),
            "writes/s",
            json!({
                "how": "acknowledged kv-store set calls as JSON-RPC execute over the HTTP API on loopback, one keep-alive connection per client, one node, one context",
                "clients": clients, "seconds": seconds, "acked": acked,
                "baseline_writes_per_s": round3(baseline.writes_per_s), "baseline_acked": baseline.acked,
                "baseline": "the same node code called in process (NodeHandle::call), same clients, same run",
                "ratio_to_baseline": round3(writes_per_s / baseline.writes_per_s.max(f64::MIN_POSITIVE)),
                "both_runs_ms": ms(started.elapsed()),
            }),
        );
    }
    Ok(())
}
