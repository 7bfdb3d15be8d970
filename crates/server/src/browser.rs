//! Keeps web pages in the operator's browser away from the API.
//!
//! A page on any site can make the browser send requests to
//! `http://127.0.0.1:2528`: "simple" cross-origin POSTs (a `text/plain`
//! form) need no preflight, WebSockets have no CORS at all, and DNS
//! rebinding points a name the page controls at loopback so that even its
//! reads are same-origin. Three checks close those doors, before auth and
//! before any handler runs:
//!
//! - **Host allow-list.** The `Host` header must name this server: an IP
//!   literal, `localhost`, or a name the operator configured
//!   ([`ServerConfig::allowed_hosts`]). A rebound name is refused (403
//!   `host_not_allowed`), so a rebinding page reads and writes nothing.
//! - **Origin check.** A request carrying `Origin` (browsers send it on
//!   every cross-origin request, on every POST and on every WebSocket
//!   handshake) passes only if that origin is this server itself
//!   (`http://<Host>`, the console it serves) or one the operator
//!   configured ([`ServerConfig::allowed_origins`]); otherwise 403
//!   `origin_not_allowed`. Programs (the CLI, curl) send no `Origin`.
//! - **Media types** are checked where bodies are read
//!   ([`crate::errors::require_json`]): JSON routes take only
//!   `application/json`, so a form or `text/plain` POST is a 415.
//!
//! None of this replaces the token: it makes the token's absence on a
//! token-less loopback node (tests, `weft demo`) unexploitable from a
//! browser, and keeps a page from using the operator's session otherwise.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ServerConfig;
use crate::errors::ApiError;
use crate::state::ApiState;

/// The host and origin policy of one server.
pub(crate) struct BrowserPolicy {
    /// Lower-case host names accepted beside IP literals and `localhost`.
    hosts: Vec<String>,
    /// Lower-case origins (`scheme://host[:port]`) accepted beside our own.
    origins: Vec<String>,
}

impl BrowserPolicy {
    pub(crate) fn new(config: &ServerConfig) -> BrowserPolicy {
        BrowserPolicy {
            hosts: config.allowed_hosts.iter().map(|host| host.trim().to_ascii_lowercase()).collect(),
            origins: config
                .allowed_origins
                .iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host` (a `Host` header value, port included) names us.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name.is_empty() {
            return false;
        }
        // An IP literal cannot be rebound: whoever typed it meant this
        // machine (or a machine they can already reach).
        name.parse::<IpAddr>().is_ok() || name == "localhost" || self.hosts.contains(&name)
    }

    /// Whether a request to `host` may come from a page of `origin`.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let host = host.trim().to_ascii_lowercase();
        origin == format!("http://{host}") || origin == format!("https://{host}") || self.origins.contains(&origin)
    }

    /// The verdict on one request's headers.
    fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), ApiError> {
        let host = host.ok_or_else(|| forbidden("host_not_allowed", "the request has no Host header".into()))?;
        if !self.host_allowed(host) {
            return Err(forbidden(
                "host_not_allowed",
                format!("Host {:?} does not name this node; add it to [api] allowed_hosts to serve it", echo(host)),
            ));
        }
        match origin {
            None => Ok(()),
            Some(origin) if self.origin_allowed(origin, host) => Ok(()),
            Some(origin) => Err(forbidden(
                "origin_not_allowed",
                format!(
                    "requests from pages of {:?} are refused; add the origin to [api] allowed_origins to allow it",
                    echo(origin)
                ),
            )),
        }
    }
}

/// The host part of a `Host` value: `[::1]:80` → `::1`, `a:80` → `a`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or("", |(name, _)| name);
    }
    host.split(':').next().unwrap_or("")
}

fn forbidden(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

/// Hostile headers are echoed only in part.
fn echo(value: &str) -> String {
    const ECHO_MAX: usize = 80;
    value.chars().take(ECHO_MAX).collect()
}

/// The middleware: runs before auth on every request, `/health` included.
pub(crate) async fn refuse_foreign_pages(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let verdict = {
        // A header that is not visible ASCII cannot name us.
        let header = |name| request.headers().get(name).map(|value| value.to_str().unwrap_or("\u{fffd}"));
        state.browser().check(header(HOST), header(ORIGIN))
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], origins: &[&str]) -> BrowserPolicy {
        let mut config = ServerConfig::loopback(1);
        config.allowed_hosts = hosts.iter().map(|h| h.to_string()).collect();
        config.allowed_origins = origins.iter().map(|o| o.to_string()).collect();
        BrowserPolicy::new(&config)
    }

    #[test]
    fn ip_literals_localhost_and_configured_names_are_our_hosts() {
        let policy = policy(&["Weft.Lan"], &[]);
        for host in
            ["127.0.0.1:2528", "127.0.0.1", "[::1]:2528", "10.1.2.3:80", "localhost:2528", "LOCALHOST", "weft.lan:1"]
        {
            assert!(policy.check(Some(host), None).is_ok(), "{host}");
        }
        for host in ["evil.example:2528", "localhost.evil.example", "127.0.0.1.nip.io", "", "[::1", ":2528"] {
            let error = policy.check(Some(host), None).unwrap_err();
            assert_eq!((error.status, error.code), (StatusCode::FORBIDDEN, "host_not_allowed"), "{host}");
        }
        assert!(policy.check(None, None).is_err(), "no Host header");
    }

    #[test]
    fn only_our_own_or_configured_origins_pass() {
        let policy = policy(&[], &["https://console.example/"]);
        assert!(policy.check(Some("127.0.0.1:2528"), Some("http://127.0.0.1:2528")).is_ok());
        assert!(policy.check(Some("localhost:2528"), Some("http://LOCALHOST:2528")).is_ok());
        assert!(policy.check(Some("127.0.0.1:2528"), Some("https://console.example")).is_ok());
        for origin in ["https://evil.example", "null", "http://127.0.0.1:9999", "http://localhost:2528", ""] {
            let error = policy.check(Some("127.0.0.1:2528"), Some(origin)).unwrap_err();
            assert_eq!((error.status, error.code), (StatusCode::FORBIDDEN, "origin_not_allowed"), "{origin}");
        }
    }
}
