//! The admin REST routes (`/admin/…`) and the operational ones (`/health`,
//! identities, peers, sync). Each handler parses its input (ids naming
//! their field on error), asks the node, and answers in the shapes of
//! [`crate::shapes`]; node errors become JSON errors with the node's codes.

pub(crate) mod apps;
pub(crate) mod contexts;
pub(crate) mod ops;

use axum::Json;
use axum::http::StatusCode;
use serde_json::Value;

use crate::errors::ApiError;

/// What REST handlers return.
pub(crate) type ApiResult = Result<(StatusCode, Json<Value>), ApiError>;

/// `200` with `body`.
pub(crate) fn ok(body: Value) -> ApiResult {
    Ok((StatusCode::OK, Json(body)))
}

/// `201` with `body`.
pub(crate) fn created(body: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(body)))
}
