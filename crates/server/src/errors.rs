//! The REST error shape, `{"error": {"code", "message"}}`, its HTTP
//! statuses, and the request decoding that produces it: JSON bodies
//! (bounded, with serde's message naming the field), hex ids (naming the
//! field), unknown routes and methods.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use weft_node::NodeError;
use weft_primitives::{Hash, PublicKey};

/// One REST error: an HTTP status, a stable code, one line for a human.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

/// The HTTP status of each node error (codes are the node's own).
fn status_of(error: &NodeError) -> StatusCode {
    match error {
        NodeError::UnknownContext(_)
        | NodeError::UnknownApplication(_)
        | NodeError::UnknownMethod(_)
        | NodeError::NotAMember(_) => StatusCode::NOT_FOUND,
        NodeError::ApplicationInUse { .. } | NodeError::AlreadyJoined(_) | NodeError::JoinRefused(_) => {
            StatusCode::CONFLICT
        }
        // The caller's input is at fault: a module that does not load, a
        // call that traps or panics on its arguments, a write too large.
        NodeError::Runtime(_)
        | NodeError::NotCallable { .. }
        | NodeError::App(_)
        | NodeError::ReservedEvent(_)
        | NodeError::Write(_)
        | NodeError::Invitation(_) => StatusCode::BAD_REQUEST,
        NodeError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        NodeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        NodeError::Config(_)
        | NodeError::Store(_)
        | NodeError::Net(_)
        | NodeError::Restore { .. }
        | NodeError::Protocol(_)
        | NodeError::View(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> ApiError {
        ApiError::new(status_of(&error), error.code(), one_line(&error.to_string()))
    }
}

/// Messages are one line: newlines from nested errors become spaces.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "API request failed");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

/// A hex id from the path or a body, or a 400 naming `field`.
pub(crate) fn parse_id(field: &str, value: &str) -> Result<Hash, ApiError> {
    value
        .parse::<Hash>()
        .map_err(|_| ApiError::bad_request(format!("`{field}` must be 64 hex digits, got {:?}", truncated(value))))
}

/// The `{id}` path segment, parsed as a hex id (a 400 naming `id` if not).
pub(crate) struct IdPath(pub(crate) Hash);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(format!("bad path: {}", rejection.body_text())))?;
        parse_id("id", &id).map(IdPath)
    }
}

/// A hex public key, or a 400 naming `field`.
pub(crate) fn parse_key(field: &str, value: &str) -> Result<PublicKey, ApiError> {
    parse_id(field, value).map(|hash| PublicKey(hash.0))
}

/// Echoing a whole hostile input back would make the message unbounded.
fn truncated(value: &str) -> String {
    const ECHO_MAX: usize = 80;
    value.chars().take(ECHO_MAX).collect()
}

/// The request body, buffered within the route's limit, or a JSON 413/400.
pub(crate) async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body exceeds this route's limit",
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })
}

/// The request's media type (`Content-Type` without parameters, lower
/// case), if it names one.
pub(crate) fn media_type(request: &Request) -> Option<String> {
    let value = request.headers().get(CONTENT_TYPE)?;
    Some(value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// Refuse a body sent as anything but `application/json`: browsers send
/// forms and `text/plain` cross-site without asking first, JSON never. A
/// request without a `Content-Type` passes only with an empty body.
pub(crate) fn require_json(request: &Request) -> Result<(), ApiError> {
    let essence = match media_type(request) {
        Some(essence) => essence,
        None => {
            let empty = request.headers().get(CONTENT_LENGTH).is_some_and(|length| length.as_bytes() == b"0")
                || (request.headers().get(CONTENT_LENGTH).is_none()
                    && request.headers().get(TRANSFER_ENCODING).is_none());
            return if empty {
                Ok(())
            } else {
                Err(unsupported_media_type("the body must be sent as application/json (no Content-Type given)"))
            };
        }
    };
    if essence == "application/json" {
        Ok(())
    } else {
        Err(unsupported_media_type(&format!(
            "the body must be sent as application/json, not {:?}",
            truncated(&essence)
        )))
    }
}

/// A 415.
pub(crate) fn unsupported_media_type(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
}

/// A JSON body decoded into `T`; an empty body decodes as `{}` (so routes
/// whose fields are all optional need none). Only `application/json`
/// ([`require_json`]).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&request)?;
        decode_json_body(&body_bytes(request, state).await?).map(JsonBody)
    }
}

/// A [`JsonBody`]'s bytes decoded into `T` (blank counts as `{}`), or a 400.
pub(crate) fn decode_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("bad JSON body: {}", one_line(&e.to_string()))))
}

/// The fallback for paths no route serves.
pub(crate) async fn no_route(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", request.method(), truncated(request.uri().path())),
    )
}

/// The fallback for a known path with a method it does not serve.
pub(crate) async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not served on {}", request.method(), truncated(request.uri().path())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_hex_names_the_field() {
        let error = parse_id("application", "xyz").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("`application`"), "{}", error.message);
    }

    #[test]
    fn node_errors_keep_their_codes_and_get_the_documented_statuses() {
        let cases = [
            (NodeError::UnknownContext(Hash::ZERO), StatusCode::NOT_FOUND, "unknown_context"),
            (NodeError::AlreadyJoined(Hash::ZERO), StatusCode::CONFLICT, "already_joined"),
            (NodeError::App(b"{}".to_vec()), StatusCode::BAD_REQUEST, "app_error"),
            (NodeError::Stopped, StatusCode::SERVICE_UNAVAILABLE, "node_stopped"),
            (NodeError::Protocol("x".into()), StatusCode::INTERNAL_SERVER_ERROR, "protocol_error"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!((api.status, api.code), (status, code));
        }
    }
}
