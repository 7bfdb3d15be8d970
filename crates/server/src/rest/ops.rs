//! `/health`, the OpenAPI document, identities, peers, sync and stream
//! tickets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiResult, created, ok};
use crate::errors::{ApiError, JsonBody, parse_id};
use crate::shapes::{self, key_hex};
use crate::state::ApiState;
use crate::tickets::{TICKET_TTL, TicketError};

/// `GET /health`.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /admin/openapi.json`.
pub(crate) async fn openapi_document() -> Json<Value> {
    Json(crate::openapi())
}

/// `GET /admin/identities`: the node writes as one identity, its default.
pub(crate) async fn identities(State(state): State<ApiState>) -> ApiResult {
    ok(json!([{ "public_key": key_hex(&state.node().identity()), "default": true }]))
}

/// `GET /admin/peers`.
pub(crate) async fn peers(State(state): State<ApiState>) -> ApiResult {
    let peers = state.node().peers().await?;
    let peers: Vec<Value> = peers
        .iter()
        .map(|peer| {
            json!({
                "peer_id": peer.peer.to_string(),
                "addrs": peer.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "agent": peer.agent,
                "rtt_ms": peer.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            })
        })
        .collect();
    ok(Value::Array(peers))
}

/// Every context's SyncStatus (shared with JSON-RPC `sync_status`).
pub(crate) async fn sync_status_all(state: &ApiState) -> Result<Value, weft_node::NodeError> {
    let contexts = state.node().contexts().await?;
    Ok(Value::Array(contexts.iter().map(shapes::sync_status).collect()))
}

/// `GET /admin/sync`.
pub(crate) async fn sync_status(State(state): State<ApiState>) -> ApiResult {
    ok(sync_status_all(&state).await?)
}

/// `POST /admin/sync` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncNow {
    #[serde(default)]
    context: Option<String>,
}

/// `POST /admin/sync`.
pub(crate) async fn sync_now(State(state): State<ApiState>, JsonBody(body): JsonBody<SyncNow>) -> ApiResult {
    let context = body.context.as_deref().map(|id| parse_id("context", id)).transpose()?;
    let outcomes = state.node().sync_now(context).await?;
    let started = outcomes.iter().filter(|o| o.started).count();
    let contexts: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({
                "context": o.context.to_hex(),
                "started": o.started,
                "peers": o.peers,
                "member_nodes_known": o.member_nodes_known,
                "reachable": o.peers > 0,
            })
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "started": started, "contexts": contexts }))))
}

/// `POST /admin/tickets`.
pub(crate) async fn ticket(State(state): State<ApiState>) -> ApiResult {
    let ticket = state.tickets().issue(std::time::Instant::now()).map_err(|error| match error {
        TicketError::Full => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "tickets_exhausted", error.to_string()),
        TicketError::Random(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string()),
    })?;
    let expires_in_ms = u64::try_from(TICKET_TTL.as_millis()).unwrap_or(u64::MAX);
    created(json!({ "ticket": ticket, "expires_in_ms": expires_in_ms }))
}
