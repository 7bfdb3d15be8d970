//! `/admin/applications`: install (the module as the raw body), list, get,
//! remove.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::{ApiResult, created, ok};
use crate::errors::{ApiError, IdPath, body_bytes, media_type, unsupported_media_type};
use crate::shapes::app_info;
use crate::state::ApiState;

/// The content types a module may be sent as. One is required: a browser
/// sends a body without one, or as a form, cross-site without asking.
const MODULE_CONTENT_TYPES: [&str; 2] = ["application/wasm", "application/octet-stream"];

/// `POST /admin/applications`.
pub(crate) async fn install(State(state): State<ApiState>, request: Request) -> ApiResult {
    let essence = media_type(&request);
    if !essence.as_deref().is_some_and(|essence| MODULE_CONTENT_TYPES.contains(&essence)) {
        return Err(unsupported_media_type(&format!(
            "send the module as {} (got {:?})",
            MODULE_CONTENT_TYPES.join(" or "),
            essence.unwrap_or_default()
        )));
    }
    let module = body_bytes(request, &state).await?;
    if module.is_empty() {
        return Err(ApiError::bad_request("the body must be the WASM module; it is empty"));
    }
    created(app_info(&state.node().install_application(module.to_vec()).await?))
}

/// `GET /admin/applications`.
pub(crate) async fn list(State(state): State<ApiState>) -> ApiResult {
    let apps = state.node().applications().await?;
    ok(Value::Array(apps.iter().map(app_info).collect()))
}

/// `GET /admin/applications/{id}`.
pub(crate) async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let apps = state.node().applications().await?;
    let app = apps.iter().find(|app| app.id == id).ok_or(weft_node::NodeError::UnknownApplication(id))?;
    ok(app_info(app))
}

/// `DELETE /admin/applications/{id}`.
pub(crate) async fn remove(State(state): State<ApiState>, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    state.node().remove_application(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
