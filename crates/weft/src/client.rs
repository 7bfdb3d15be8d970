//! A small client of the node's HTTP API (docs/api.md): admin REST,
//! JSON-RPC and the SSE event stream.
//!
//! Guarantees: every failure is a [`ClientError`] whose message is one
//! line: the server's own error message and code when it sent one, "no node
//! answers at …" when nothing listens. Requests never use a system proxy
//! (the API is addressed directly) and time out after
//! [`REQUEST_TIMEOUT`]; the event stream does not time out.

use std::time::Duration;

use serde_json::{Value, json};

/// A request (but not the event stream) fails after this long. Joining a
/// context waits up to 30 s on the node, so this is longer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Giving up on connecting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest error body read for its message.
const ERROR_LINE_CHARS_MAX: usize = 300;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepted the connection.
    #[error("no node answers at {url}; is `weft run` running?")]
    Unreachable {
        /// The API's base URL.
        url: String,
    },
    /// The server answered with a REST error.
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The server's one-line message.
        message: String,
    },
    /// The server answered with a JSON-RPC error.
    #[error("{message}{}", rpc_data_suffix(.data))]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The message.
        message: String,
        /// Extra data (an application's JSON error).
        data: Option<Value>,
    },
    /// The base URL is not usable.
    #[error("bad API URL {0:?}: expected http://host:port")]
    BadUrl(String),
    /// Any other transport failure (timeout, reset …).
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The request URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer {
        /// The request URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn rpc_data_suffix(data: &Option<Value>) -> String {
    match data {
        None | Some(Value::Null) => String::new(),
        // The server's own error code, as REST errors show it.
        Some(Value::Object(fields)) if fields.len() == 1 && fields.get("code").is_some_and(Value::is_string) => {
            format!(" ({})", fields.get("code").and_then(Value::as_str).unwrap_or_default())
        }
        Some(value) if value.to_string().len() > ERROR_LINE_CHARS_MAX => String::new(),
        Some(value) => format!(": {value}"),
    }
}

/// A client of one node's API.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `base` (`http://127.0.0.1:2528`), sending
    /// `token` as a bearer token if given.
    pub fn new(base: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) || reqwest::Url::parse(&base).is_err() {
            return Err(ClientError::BadUrl(base));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Transport { url: base.clone(), reason: e.to_string() })?;
        Ok(ApiClient { base, token, http })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn transport(&self, url: &str, error: &reqwest::Error) -> ClientError {
        if error.is_connect() {
            return ClientError::Unreachable { url: self.base.clone() };
        }
        let reason = if error.is_timeout() { "timed out".to_owned() } else { one_line(&error.to_string()) };
        ClientError::Transport { url: url.to_owned(), reason }
    }

    async fn send(&self, builder: reqwest::RequestBuilder, timeout: bool) -> Result<reqwest::Response, ClientError> {
        let builder = if timeout { builder.timeout(REQUEST_TIMEOUT) } else { builder };
        let request = builder.build().map_err(|e| ClientError::BadUrl(e.to_string()))?;
        let url = request.url().to_string();
        let response = self.http.execute(request).await.map_err(|e| self.transport(&url, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.rest_error(&url, response).await)
    }

    async fn rest_error(&self, url: &str, response: reqwest::Response) -> ClientError {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let code = error.and_then(|e| e.get("code")).and_then(Value::as_str);
        let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
        match (code, message) {
            (Some(code), Some(message)) => {
                ClientError::Api { status: status.as_u16(), code: code.to_owned(), message: one_line(message) }
            }
            _ => ClientError::BadAnswer { url: url.to_owned(), reason: format!("HTTP {status}: {}", one_line(&body)) },
        }
    }

    async fn json_of(&self, response: reqwest::Response) -> Result<Value, ClientError> {
        let url = response.url().to_string();
        let bytes = response.bytes().await.map_err(|e| self.transport(&url, &e))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer { url, reason: e.to_string() })
    }

    /// `GET path` → JSON.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let response = self.send(self.request(reqwest::Method::GET, path), true).await?;
        self.json_of(response).await
    }

    /// `POST path` with a JSON body → JSON (`null` for an empty answer).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let response = self.send(self.request(reqwest::Method::POST, path).json(body), true).await?;
        self.json_of(response).await
    }

    /// `POST path` with raw bytes → JSON.
    pub async fn post_bytes(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> Result<Value, ClientError> {
        let builder =
            self.request(reqwest::Method::POST, path).header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        let response = self.send(builder, true).await?;
        self.json_of(response).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::DELETE, path), true).await.map(drop)
    }

    /// A JSON-RPC 2.0 call on `/jsonrpc` → its `result`.
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let builder = self.request(reqwest::Method::POST, "/jsonrpc").json(&body).timeout(REQUEST_TIMEOUT);
        let request = builder.build().map_err(|e| ClientError::BadUrl(e.to_string()))?;
        let url = request.url().to_string();
        let response = self.http.execute(request).await.map_err(|e| self.transport(&url, &e))?;
        // JSON-RPC errors may come with any HTTP status; a REST-shaped
        // error (401) is reported as such.
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport(&url, &e))?;
        let Ok(answer) = serde_json::from_slice::<Value>(&body) else {
            return Err(ClientError::BadAnswer {
                url,
                reason: format!("HTTP {status}: {}", one_line(&String::from_utf8_lossy(&body))),
            });
        };
        if let Some(error) = answer.get("error") {
            if let (Some(code), Some(message)) = (error.get("code").and_then(Value::as_i64), error.get("message")) {
                return Err(ClientError::Rpc {
                    code,
                    message: one_line(message.as_str().unwrap_or("JSON-RPC error")),
                    data: error.get("data").cloned(),
                });
            }
            if let (Some(code), Some(message)) = (error.get("code").and_then(Value::as_str), error.get("message")) {
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    code: code.to_owned(),
                    message: one_line(message.as_str().unwrap_or("error")),
                });
            }
        }
        match answer.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(ClientError::BadAnswer { url, reason: "neither result nor error".into() }),
        }
    }

    /// Open the SSE event stream (`GET /events`), for `contexts` or all.
    pub async fn events(&self, contexts: &[String]) -> Result<reqwest::Response, ClientError> {
        let query: Vec<(&str, &str)> = contexts.iter().map(|c| ("context", c.as_str())).collect();
        let builder = self
            .request(reqwest::Method::GET, "/events")
            .query(&query)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        self.send(builder, false).await
    }

    /// Wait for the next chunk of a streaming response.
    pub async fn next_chunk(&self, response: &mut reqwest::Response) -> Result<Option<Vec<u8>>, ClientError> {
        let url = response.url().to_string();
        match response.chunk().await {
            Ok(chunk) => Ok(chunk.map(|bytes| bytes.to_vec())),
            Err(error) => Err(self.transport(&url, &error)),
        }
    }
}

/// `text` on one line, at most [`ERROR_LINE_CHARS_MAX`] characters.
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= ERROR_LINE_CHARS_MAX {
        return joined;
    }
    let mut cut: String = joined.chars().take(ERROR_LINE_CHARS_MAX).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_http() {
        assert!(ApiClient::new("http://127.0.0.1:2528/", None).is_ok());
        assert_eq!(ApiClient::new("http://127.0.0.1:2528/", None).unwrap().base(), "http://127.0.0.1:2528");
        assert!(matches!(ApiClient::new("127.0.0.1:2528", None), Err(ClientError::BadUrl(_))));
    }

    #[test]
    fn errors_are_one_line() {
        let error = ClientError::Rpc { code: -32000, message: "application error".into(), data: Some(json!({"a": 1})) };
        assert_eq!(error.to_string(), r#"application error: {"a":1}"#);
        let error = ClientError::Rpc {
            code: -32603,
            message: "runtime: x".into(),
            data: Some(json!({"code": "runtime_error"})),
        };
        assert_eq!(error.to_string(), "runtime: x (runtime_error)");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert!(one_line(&"x ".repeat(1000)).chars().count() <= ERROR_LINE_CHARS_MAX + 1);
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = ApiClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let error = client.get("/admin/peers").await.unwrap_err();
        assert!(matches!(error, ClientError::Unreachable { .. }), "{error}");
        assert!(error.to_string().contains("is `weft run` running?"));
    }
}
