//! Bearer-token authentication.
//!
//! Off loopback every route but `/health` needs `Authorization: Bearer
//! <token>`; on loopback the token is optional, but a token that is sent
//! must be the right one (a wrong token is a client bug worth reporting).
//! Browsers cannot set headers on WebSocket or EventSource connections, so
//! `/ws` and `/events` also take `?access_token=<token>`.
//!
//! Tokens are compared as BLAKE3 digests, byte by byte without an early
//! exit: the time taken does not depend on where a guess first differs,
//! nor on its length.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use weft_primitives::Hash;

use crate::ServerConfig;
use crate::errors::ApiError;
use crate::state::ApiState;

/// The route that never needs a token.
const OPEN_PATH: &str = "/health";
/// The routes that also accept the token as a query parameter.
const QUERY_TOKEN_PATHS: [&str; 2] = ["/ws", "/events"];
/// The query parameter carrying the token there.
pub(crate) const QUERY_TOKEN_PARAM: &str = "access_token";

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
            (None, Some(_)) if self.required => Err(ApiError::unauthorized(
                "missing API token: send `Authorization: Bearer <token>` (see <home>/api.token)",
            )),
            (None, Some(_)) => Ok(()),
        }
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
    let presented = match presented_token(&request) {
        Ok(presented) => presented,
        Err(error) => return error.into_response(),
    };
    match state.auth().check(presented.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn presented_token(request: &Request) -> Result<Option<String>, ApiError> {
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        return Ok(Some(token.trim().to_owned()));
    }
    if QUERY_TOKEN_PATHS.contains(&request.uri().path()) {
        let query = request.uri().query().unwrap_or("");
        let token = query.split('&').find_map(|pair| pair.strip_prefix(QUERY_TOKEN_PARAM)?.strip_prefix('='));
        return Ok(token.map(str::to_owned));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(listen: &str, token: Option<&str>) -> Auth {
        Auth::new(&ServerConfig { listen: listen.parse().unwrap(), token: token.map(str::to_owned) })
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
    fn on_loopback_the_token_is_optional_but_a_wrong_one_is_refused() {
        let auth = auth("127.0.0.1:1", Some("secret"));
        assert!(auth.check(None).is_ok());
        assert!(auth.check(Some("secret")).is_ok());
        assert!(auth.check(Some("nope")).is_err());
        assert!(self::auth("127.0.0.1:1", None).check(Some("anything")).is_ok());
    }

    #[test]
    fn off_loopback_without_a_configured_token_everything_is_refused() {
        let auth = auth("0.0.0.0:1", None);
        assert!(auth.check(None).is_err());
        assert!(auth.check(Some("")).is_err());
    }
}
