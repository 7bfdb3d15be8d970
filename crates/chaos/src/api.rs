//! A daemon's HTTP API, as the harness uses it: the admin routes to set a
//! cluster up, JSON-RPC `execute`/`query` for the workload, sync status for
//! convergence. Every request has a timeout; a call's outcome says whether
//! the write certainly did not happen ([`CallOutcome::Failed`]) or might
//! have ([`CallOutcome::Unknown`]), which the ledger needs.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// The outcome of a mutating call.
#[derive(Clone, Debug, PartialEq)]
pub enum CallOutcome {
    /// Acknowledged: durable on the node.
    Acked(Value),
    /// Refused with an answer: nothing was written.
    Failed(String),
    /// No answer (timeout, connection lost mid-request): it may or may not
    /// have been written.
    Unknown(String),
}

/// One daemon's API.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// The API at `port` on loopback, with the home's bearer token.
    pub fn new(port: u16, token: String, timeout: Duration) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Api { base: format!("http://127.0.0.1:{port}"), token, http })
    }

    /// Whether `/health` answers.
    pub async fn healthy(&self) -> bool {
        self.http.get(format!("{}/health", self.base)).send().await.is_ok_and(|r| r.status().is_success())
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| path.to_owned())?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    /// Install a module; its application id.
    pub async fn install(&self, module: &[u8]) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/admin/applications", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(module.to_vec())
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("install: {status} {body}");
        }
        string(&body, "id")
    }

    /// Create a context of `application`; its id.
    pub async fn create_context(&self, application: &str) -> anyhow::Result<String> {
        let body =
            self.admin(reqwest::Method::POST, "/admin/contexts", Some(json!({"application": application}))).await?;
        string(&body, "id")
    }

    /// The node's member identity (hex).
    pub async fn identity(&self) -> anyhow::Result<String> {
        let body = self.admin(reqwest::Method::GET, "/admin/identities", None).await?;
        body.as_array().and_then(|ids| ids.first()).map_or_else(|| bail!("no identity"), |id| string(id, "public_key"))
    }

    /// An invitation to `context` for `invitee`.
    pub async fn invite(&self, context: &str, invitee: &str) -> anyhow::Result<String> {
        let path = format!("/admin/contexts/{context}/invitations");
        let body = self.admin(reqwest::Method::POST, &path, Some(json!({"invitee": invitee}))).await?;
        string(&body, "invitation")
    }

    /// Join with an invitation.
    pub async fn join(&self, invitation: &str) -> anyhow::Result<()> {
        self.admin(reqwest::Method::POST, "/admin/contexts/join", Some(json!({"invitation": invitation}))).await?;
        Ok(())
    }

    /// Every context (ContextInfo: root hash, heads, pending, handler jobs…).
    pub async fn contexts(&self) -> anyhow::Result<Value> {
        self.admin(reqwest::Method::GET, "/admin/contexts", None).await
    }

    /// Every context's sync status.
    pub async fn sync_status(&self) -> anyhow::Result<Value> {
        self.admin(reqwest::Method::GET, "/admin/sync", None).await
    }

    /// A mutating call.
    pub async fn execute(&self, context: &str, method: &str, args: Value) -> CallOutcome {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
            "params": {"context": context, "method": method, "args": args}});
        let sent =
            self.http.post(format!("{}/jsonrpc", self.base)).bearer_auth(&self.token).json(&request).send().await;
        let response = match sent {
            Ok(response) => response,
            // Refused before anything was sent: certainly not written.
            Err(error) if error.is_connect() => return CallOutcome::Failed(format!("connect: {error}")),
            Err(error) => return CallOutcome::Unknown(error.to_string()),
        };
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(error) => return CallOutcome::Unknown(format!("{status}: {error}")),
        };
        if let Some(result) = body.get("result") {
            return CallOutcome::Acked(result.clone());
        }
        let error = body.get("error").map_or_else(|| body.to_string(), Value::to_string);
        // A failed disk leaves it unknown whether the write reached it;
        // any other JSON-RPC error is an answer: the node wrote nothing.
        if body["error"]["data"]["code"] == "store_failure" {
            return CallOutcome::Unknown(error);
        }
        CallOutcome::Failed(error)
    }

    /// A view's output.
    pub async fn query(&self, context: &str, method: &str, args: Value) -> anyhow::Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "query",
            "params": {"context": context, "method": method, "args": args}});
        let response =
            self.http.post(format!("{}/jsonrpc", self.base)).bearer_auth(&self.token).json(&request).send().await?;
        let body: Value = response.json().await?;
        match body.get("result") {
            Some(result) => Ok(result.get("output").cloned().unwrap_or(Value::Null)),
            None => bail!("query {method}: {body}"),
        }
    }
}

fn string(value: &Value, key: &str) -> anyhow::Result<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no {key:?} in {value}"))
}
