//! `/admin/contexts`: create, list, get, leave, members, dead jobs,
//! invitations, join.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiResult, created, ok};
use crate::errors::{ApiError, IdPath, JsonBody, parse_id, parse_key};
use crate::shapes::{context_info, key_hex};
use crate::state::ApiState;

/// The longest invitation validity accepted (a year): beyond is a typo.
pub const INVITATION_VALID_SECS_MAX: u64 = 365 * 24 * 60 * 60;
/// The longest invitation string accepted by `join`.
pub const INVITATION_LEN_MAX: usize = 64 * 1024;

/// `POST /admin/contexts` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateContext {
    application: String,
    #[serde(default)]
    init_args: Option<Value>,
}

/// The JSON bytes of `args`, `{}` when absent or null.
pub(crate) fn args_bytes(args: Option<Value>) -> Vec<u8> {
    match args {
        None | Some(Value::Null) => b"{}".to_vec(),
        Some(args) => args.to_string().into_bytes(),
    }
}

/// `POST /admin/contexts`.
pub(crate) async fn create(State(state): State<ApiState>, JsonBody(body): JsonBody<CreateContext>) -> ApiResult {
    let application = parse_id("application", &body.application)?;
    created(context_info(&state.node().create_context(application, args_bytes(body.init_args)).await?))
}

/// `GET /admin/contexts`.
pub(crate) async fn list(State(state): State<ApiState>) -> ApiResult {
    let contexts = state.node().contexts().await?;
    ok(Value::Array(contexts.iter().map(context_info).collect()))
}

/// `GET /admin/contexts/{id}`.
pub(crate) async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    ok(context_info(&state.node().context(id).await?))
}

/// `DELETE /admin/contexts/{id}`.
pub(crate) async fn leave(State(state): State<ApiState>, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    state.node().leave(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/contexts/{id}/members`.
pub(crate) async fn members(State(state): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let info = state.node().context(id).await?;
    ok(json!(info.members.iter().map(key_hex).collect::<Vec<_>>()))
}

/// `POST /admin/contexts/{id}/invitations/revoke` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revoke {
    invitation: String,
}

/// `POST /admin/contexts/{id}/invitations/revoke`.
pub(crate) async fn revoke(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<Revoke>,
) -> ApiResult {
    if body.invitation.len() > INVITATION_LEN_MAX {
        return Err(ApiError::bad_request(format!("`invitation` is longer than {INVITATION_LEN_MAX} bytes")));
    }
    let revoked = state.node().revoke_invitation(id, &body.invitation).await?;
    ok(json!({ "revoked": revoked.to_hex() }))
}

/// `POST /admin/contexts/{id}/members/remove` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveMember {
    member: String,
}

/// `POST /admin/contexts/{id}/members/remove`: remove a member and rotate
/// the group key (one delta).
pub(crate) async fn remove_member(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<RemoveMember>,
) -> ApiResult {
    let member = parse_key("member", &body.member)?;
    let delta = state.node().remove_member(id, member).await?;
    ok(json!({ "removed": key_hex(&member), "delta": delta.to_hex() }))
}

/// `GET /admin/contexts/{id}/key-epochs`.
pub(crate) async fn key_epochs(State(state): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let epochs = state.node().key_epochs(id).await?;
    ok(json!(
        epochs
            .iter()
            .map(|e| json!({
                "number": e.number,
                "rotation": e.rotation.to_hex(),
                "recipients": e.recipients,
                "held": e.held,
                "current": e.current,
            }))
            .collect::<Vec<_>>()
    ))
}

/// `GET /admin/contexts/{id}/dead-jobs`: handler jobs given up on.
pub(crate) async fn dead_jobs(State(state): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let dead = state.node().dead_jobs(id).await?;
    ok(json!(
        dead.iter()
            .map(|(sequence, dead)| json!({
                "sequence": sequence,
                "delta": dead.job.delta.to_hex(),
                "event": dead.job.event,
                "handler": dead.job.handler,
                "attempts": dead.attempts,
                "last_error": dead.last_error,
            }))
            .collect::<Vec<_>>()
    ))
}

/// `POST /admin/contexts/{id}/invitations` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Invite {
    #[serde(default)]
    invitee: Option<String>,
    #[serde(default)]
    valid_for_secs: Option<u64>,
}

/// `POST /admin/contexts/{id}/invitations`.
pub(crate) async fn invite(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<Invite>,
) -> ApiResult {
    let invitee = body.invitee.as_deref().map(|key| parse_key("invitee", key)).transpose()?;
    let valid_for = match body.valid_for_secs {
        None => None,
        Some(0) => return Err(ApiError::bad_request("`valid_for_secs` must be positive")),
        Some(secs) if secs > INVITATION_VALID_SECS_MAX => {
            return Err(ApiError::bad_request(format!("`valid_for_secs` must be at most {INVITATION_VALID_SECS_MAX}")));
        }
        Some(secs) => Some(Duration::from_secs(secs)),
    };
    let invitation = state.node().invite(id, invitee, valid_for).await?;
    created(json!({ "invitation": invitation }))
}

/// `POST /admin/contexts/join` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Join {
    invitation: String,
}

/// `POST /admin/contexts/join`.
pub(crate) async fn join(State(state): State<ApiState>, JsonBody(body): JsonBody<Join>) -> ApiResult {
    let invitation = body.invitation.trim();
    if invitation.len() > INVITATION_LEN_MAX {
        return Err(ApiError::bad_request(format!("`invitation` is longer than {INVITATION_LEN_MAX} bytes")));
    }
    created(context_info(&state.node().join(invitation).await?))
}
