//! Real nodes (own redb in a temp dir, own libp2p swarm on loopback, the
//! real WASM runtime) each served by a real API server on 127.0.0.1:0, and
//! a small HTTP client for them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use weft_node::{Node, NodeConfig, NodeHandle};
use weft_server::{ServerConfig, ServerHandle, serve};

/// Generous: CI machines are slow and share cores.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// One node and the API in front of it.
pub struct Api {
    pub node: NodeHandle,
    pub server: Option<ServerHandle>,
    pub base: String,
    pub client: reqwest::Client,
    pub token: Option<String>,
    _dir: TempDir,
}

pub fn node_config(dir: &std::path::Path, seed: u8) -> NodeConfig {
    let mut config = NodeConfig::loopback(dir, [seed; 32]);
    let mut member = [seed; 32];
    member[0] ^= 0x80;
    config.identity_seed = Some(member);
    // Faster anti-entropy than production so tests finish quickly.
    config.sync.sync_frequency_ms = 1_000;
    config.sync.sync_interval_ms = 500;
    config.handler_retry_base_ms = 100;
    config
}

/// An HTTP client that opens a connection per request. A request the API
/// refuses before reading its body (a wrong content type, an oversized
/// upload) ends with the server closing the connection; a pooled client
/// may already have picked that connection for its next request, whose body
/// write then fails with a broken pipe (seen once in CI). The tests check
/// the API's answers, not connection reuse.
pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

pub async fn start_node(seed: u8) -> (NodeHandle, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(node_config(dir.path(), seed)).await.unwrap();
    (node, dir)
}

impl Api {
    /// A node with seed `seed` and its API on a free loopback port.
    pub async fn start(seed: u8) -> Api {
        Api::start_with(seed, ServerConfig::loopback(0)).await
    }

    pub async fn start_with(seed: u8, config: ServerConfig) -> Api {
        let (node, dir) = start_node(seed).await;
        let token = config.token.clone();
        let server = serve(node.clone(), config).await.unwrap();
        let base = format!("http://127.0.0.1:{}", server.local_addr().port());
        Api { node, server: Some(server), base, client: test_client(), token, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.base.trim_start_matches("http://"))
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Send and read the answer as (status, JSON or Null if no body).
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = builder.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path).header("content-type", "application/json").body(body)).await
    }

    /// Install `module`; its id.
    pub async fn install(&self, module: &[u8]) -> String {
        let request = self.request(Method::POST, "/admin/applications").header("content-type", "application/wasm");
        let (status, body) = self.send(request.body(module.to_vec())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Create a context of `application`; its id.
    pub async fn create_context(&self, application: &str) -> String {
        let (status, body) = self.post("/admin/contexts", json!({ "application": application })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// A JSON-RPC call with id 1; the whole response.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let (status, body) =
            self.post("/jsonrpc", json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `execute` that must succeed; its result.
    pub async fn execute(&self, context: &str, method: &str, args: Value) -> Value {
        let body = self.rpc("execute", json!({ "context": context, "method": method, "args": args })).await;
        assert!(body.get("error").is_none(), "{body}");
        body["result"].clone()
    }

    /// `query` that must succeed; its output.
    pub async fn query(&self, context: &str, method: &str, args: Value) -> Value {
        let body = self.rpc("query", json!({ "context": context, "method": method, "args": args })).await;
        assert!(body.get("error").is_none(), "{body}");
        body["result"]["output"].clone()
    }
}

/// Two APIs whose nodes are connected.
pub async fn pair() -> (Api, Api) {
    let a = Api::start(1).await;
    let b = Api::start(2).await;
    let addr = a.node.listen_addrs().await.unwrap()[0].clone();
    b.node.dial(addr).await.unwrap();
    (a, b)
}

/// Install `module` on both, create a context on `a`, and have `b` join it,
/// all through the API; the context id.
pub async fn shared_context(a: &Api, b: &Api, module: &[u8]) -> String {
    let app = a.install(module).await;
    b.install(module).await;
    let context = a.create_context(&app).await;
    let b_key = b.get("/admin/identities").await.1[0]["public_key"].as_str().unwrap().to_owned();
    let (status, body) = a
        .post(&format!("/admin/contexts/{context}/invitations"), json!({ "invitee": b_key, "valid_for_secs": 600 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = b.post("/admin/contexts/join", json!({ "invitation": body["invitation"] })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], json!(context));
    context
}

/// Poll `check` until it returns `Some`, or give up after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The error code of a REST error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// 64 hex digits that name nothing.
pub const NOWHERE: &str = "abababababababababababababababababababababababababababababababab";
