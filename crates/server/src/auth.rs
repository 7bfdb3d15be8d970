//! Bearer-token authentication.
//!
//! When a token is configured (`weft init` always writes one), every route
//! but `/health` needs `Authorization: Bearer <token>`, on loopback too: a
//! local process or page that does not hold the token drives nothing.
//! Only a loopback server started without a token (tests, `weft demo`)
//! lets requests through without one. Browsers cannot set headers on
//! WebSocket or EventSource connections, so `/ws` and `/events` also take
//! `?ticket=<ticket>` (see [`crate::tickets`]); the token itself is never
//! accepted in a URL.
//!
//! Tokens are compared as BLAKE3 digests, byte by byte without an early
//! exit: the time taken does not depend on where a guess first differs,
//! nor on its length.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use weft_primitives::Hash;

use crate::ServerConfig;
use crate::errors::ApiError;
use crate::state::ApiState;

/// The route that never needs a token.
const OPEN_PATH: &str = "/health";
/// The routes that also accept a ticket as a query parameter.
const TICKET_PATHS: [&str; 2] = ["/ws", "/events"];
/// The query parameter carrying the ticket there.
pub(crate) const TICKET_PARAM: &str = "ticket";
/// The query parameter older clients put the token in: refused by name.
const TOKEN_IN_URL_PARAM: &str = "access_token";

/// The policy and the digest of the configured token.
pub(crate) struct Auth {
    digest: Option<Hash>,
    required: bool,
}

impl Auth {
    pub(crate) fn new(config: &ServerConfig) -> Auth {
        Auth { digest: config.token.as_deref().map(|t| Hash::of(t.as_bytes())), required: config.requires_token() }
    }

    /// Whether a request presenting `presented` (if anything) may pass.
    fn check(&self, presented: Option<&str>) -> Result<(), ApiError> {
        match (presented, &self.digest) {
            (Some(token), Some(digest)) if digests_equal(&Hash::of(token.as_bytes()), digest) => Ok(()),
            (Some(_), Some(_)) => Err(ApiError::unauthorized("wrong API token")),
            // No token configured (loopback only): nothing to check against.
            (_, None) if !self.required => Ok(()),
            // Required but none configured: refuse everything (fail closed).
            (_, None) => Err(ApiError::unauthorized("this API requires a token and none is configured")),
            (None, Some(_)) => Err(ApiError::unauthorized(
                "missing API token: send `Authorization: Bearer <token>` (see <home>/api.token)",
            )),
        }
    }

    /// Whether requests pass without presenting anything.
    fn open(&self) -> bool {
        self.digest.is_none() && !self.required
    }
}

fn digests_equal(a: &Hash, b: &Hash) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.0.iter().zip(b.0.iter()) {
        diff |= x ^ y;
    }
    diff == 0
}

/// The middleware: runs before every route (and the fallbacks).
pub(crate) async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == OPEN_PATH {
        return next.run(request).await;
    }
    match admit(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn admit(state: &ApiState, request: &Request) -> Result<(), ApiError> {
    let query = request.uri().query().unwrap_or("");
    if query_param(query, TOKEN_IN_URL_PARAM).is_some() {
        return Err(ApiError::unauthorized(
            "the API token is never accepted in a URL; get a ticket from POST /admin/tickets and pass `?ticket=`",
        ));
    }
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        return state.auth().check(Some(token.trim()));
    }
    if TICKET_PATHS.contains(&request.uri().path())
        && let Some(ticket) = query_param(query, TICKET_PARAM)
    {
        // A ticket is spent even where the server is open: it was asked
        // for this connection and must not serve another.
        return if state.tickets().redeem(ticket, Instant::now()) || state.auth().open() {
            Ok(())
        } else {
            Err(ApiError::unauthorized("unknown, used or expired ticket: get a new one from POST /admin/tickets"))
        };
    }
    state.auth().check(None)
}

/// The value of the first `name=value` pair of `query`.
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(listen: &str, token: Option<&str>) -> Auth {
        let mut config = ServerConfig::loopback(0);
        config.listen = listen.parse().unwrap();
        config.token = token.map(str::to_owned);
        Auth::new(&config)
    }

    #[test]
    fn off_loopback_the_token_is_required_and_must_match() {
        let auth = auth("0.0.0.0:1", Some("secret"));
        assert!(auth.check(Some("secret")).is_ok());
        assert!(auth.check(Some("secreT")).is_err());
        assert!(auth.check(Some("secret2")).is_err());
        assert!(auth.check(None).is_err());
    }

    #[test]
    fn on_loopback_a_configured_token_is_required_too() {
        let auth = auth("127.0.0.1:1", Some("secret"));
        assert!(auth.check(None).is_err());
        assert!(auth.check(Some("secret")).is_ok());
        assert!(auth.check(Some("nope")).is_err());
        assert!(!auth.open());
        let open = self::auth("127.0.0.1:1", None);
        assert!(open.open() && open.check(None).is_ok() && open.check(Some("anything")).is_ok());
    }

    #[test]
    fn query_params_are_matched_by_whole_name() {
        assert_eq!(query_param("context=a&ticket=t1", "ticket"), Some("t1"));
        assert_eq!(query_param("xticket=t1", "ticket"), None);
        assert_eq!(query_param("", "ticket"), None);
    }

    #[test]
    fn off_loopback_without_a_configured_token_everything_is_refused() {
        let auth = auth("0.0.0.0:1", None);
        assert!(auth.check(None).is_err());
        assert!(auth.check(Some("")).is_err());
    }
}
