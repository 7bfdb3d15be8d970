//! The one list of routes. [`build`] turns it into the router and
//! [`crate::openapi`] into the OpenAPI document, so the two cannot drift:
//! each entry's handler is chosen by its [`Endpoint`] and mounted under its
//! own method and path, and the document describes exactly these entries.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::state::ApiState;
use crate::{JSON_BODY_MAX, MODULE_BODY_MAX, auth, browser, errors, metrics, rest, rpc, sse, ws};

/// An HTTP method the API serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Which handler serves a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Health,
    Metrics,
    OpenApi,
    InstallApplication,
    ListApplications,
    GetApplication,
    RemoveApplication,
    CreateContext,
    ListContexts,
    GetContext,
    LeaveContext,
    ContextMembers,
    DeadJobs,
    Invite,
    Revoke,
    RemoveMember,
    KeyEpochs,
    Join,
    Identities,
    Peers,
    SyncStatus,
    SyncNow,
    Ticket,
    JsonRpc,
    WebSocket,
    Events,
}

/// What a route takes as its body, for the document.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Body {
    None,
    /// A JSON object: the name of its schema in `components.schemas`.
    Json(&'static str),
    /// A WASM module.
    Module,
}

/// What a route answers on success, for the document.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Answer {
    /// JSON: the schema's name, or `[Name]` for an array of them.
    Json(u16, &'static str),
    /// No body.
    Empty(u16),
    /// Prometheus text.
    Text,
    /// A Server-Sent Events stream.
    EventStream,
    /// `101 Switching Protocols` to a WebSocket.
    Upgrade,
}

/// One route.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route {
    pub(crate) verb: Verb,
    pub(crate) path: &'static str,
    pub(crate) endpoint: Endpoint,
    pub(crate) tag: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) body: Body,
    pub(crate) answer: Answer,
}

const fn route(
    verb: Verb,
    path: &'static str,
    endpoint: Endpoint,
    tag: &'static str,
    summary: &'static str,
    body: Body,
    answer: Answer,
) -> Route {
    Route { verb, path, endpoint, tag, summary, body, answer }
}

use Answer::{Empty, EventStream, Json, Text, Upgrade};
use Verb::{Delete, Get, Post};

/// Every route the server serves.
pub(crate) const ROUTES: [Route; 26] = [
    route(Get, "/health", Endpoint::Health, "ops", "Liveness (never needs a token)", Body::None, Json(200, "Health")),
    route(Get, "/metrics", Endpoint::Metrics, "ops", "Prometheus metrics", Body::None, Text),
    route(Get, "/admin/openapi.json", Endpoint::OpenApi, "admin", "This document", Body::None, Json(200, "Object")),
    route(
        Post,
        "/admin/applications",
        Endpoint::InstallApplication,
        "applications",
        "Install a WASM application",
        Body::Module,
        Json(201, "AppInfo"),
    ),
    route(
        Get,
        "/admin/applications",
        Endpoint::ListApplications,
        "applications",
        "Installed applications",
        Body::None,
        Json(200, "[AppInfo]"),
    ),
    route(
        Get,
        "/admin/applications/{id}",
        Endpoint::GetApplication,
        "applications",
        "One application",
        Body::None,
        Json(200, "AppInfo"),
    ),
    route(
        Delete,
        "/admin/applications/{id}",
        Endpoint::RemoveApplication,
        "applications",
        "Uninstall an application no context runs",
        Body::None,
        Empty(204),
    ),
    route(
        Post,
        "/admin/contexts",
        Endpoint::CreateContext,
        "contexts",
        "Create a context of an installed application",
        Body::Json("CreateContext"),
        Json(201, "ContextInfo"),
    ),
    route(
        Get,
        "/admin/contexts",
        Endpoint::ListContexts,
        "contexts",
        "Contexts this node is in",
        Body::None,
        Json(200, "[ContextInfo]"),
    ),
    route(
        Get,
        "/admin/contexts/{id}",
        Endpoint::GetContext,
        "contexts",
        "One context",
        Body::None,
        Json(200, "ContextInfo"),
    ),
    route(
        Delete,
        "/admin/contexts/{id}",
        Endpoint::LeaveContext,
        "contexts",
        "Leave a context",
        Body::None,
        Empty(204),
    ),
    route(
        Get,
        "/admin/contexts/{id}/members",
        Endpoint::ContextMembers,
        "contexts",
        "A context's members (public keys)",
        Body::None,
        Json(200, "[Key]"),
    ),
    route(
        Get,
        "/admin/contexts/{id}/dead-jobs",
        Endpoint::DeadJobs,
        "contexts",
        "Handler jobs given up on after repeated failures (oldest first, at most 1000)",
        Body::None,
        Json(200, "[DeadJob]"),
    ),
    route(
        Post,
        "/admin/contexts/{id}/invitations",
        Endpoint::Invite,
        "contexts",
        "Invite an identity (or anyone holding the invitation)",
        Body::Json("Invite"),
        Json(201, "Invitation"),
    ),
    route(
        Post,
        "/admin/contexts/{id}/invitations/revoke",
        Endpoint::Revoke,
        "contexts",
        "Revoke an invitation (its text or id): nobody is admitted with it afterwards",
        Body::Json("Revoke"),
        Json(200, "Revoked"),
    ),
    route(
        Post,
        "/admin/contexts/{id}/members/remove",
        Endpoint::RemoveMember,
        "contexts",
        "Remove a member (this node's identity must be the creator) and rotate the group key",
        Body::Json("RemoveMember"),
        Json(200, "MemberRemoved"),
    ),
    route(
        Get,
        "/admin/contexts/{id}/key-epochs",
        Endpoint::KeyEpochs,
        "contexts",
        "The context's group-key epochs, oldest first",
        Body::None,
        Json(200, "[KeyEpoch]"),
    ),
    route(
        Post,
        "/admin/contexts/join",
        Endpoint::Join,
        "contexts",
        "Join a context with an invitation",
        Body::Json("Join"),
        Json(201, "ContextInfo"),
    ),
    route(
        Get,
        "/admin/identities",
        Endpoint::Identities,
        "node",
        "This node's member identities",
        Body::None,
        Json(200, "[Identity]"),
    ),
    route(Get, "/admin/peers", Endpoint::Peers, "node", "Connected peers", Body::None, Json(200, "[Peer]")),
    route(
        Get,
        "/admin/sync",
        Endpoint::SyncStatus,
        "sync",
        "Sync status per context",
        Body::None,
        Json(200, "[SyncStatus]"),
    ),
    route(
        Post,
        "/admin/sync",
        Endpoint::SyncNow,
        "sync",
        "Start anti-entropy now",
        Body::Json("SyncNow"),
        Json(202, "SyncStarted"),
    ),
    route(
        Post,
        "/admin/tickets",
        Endpoint::Ticket,
        "events",
        "A single-use ticket for /ws or /events (valid 30 s)",
        Body::None,
        Json(201, "Ticket"),
    ),
    route(
        Post,
        "/jsonrpc",
        Endpoint::JsonRpc,
        "rpc",
        "JSON-RPC 2.0: execute, query, sync_status",
        Body::Json("RpcRequest"),
        Json(200, "RpcResponse"),
    ),
    route(Get, "/ws", Endpoint::WebSocket, "events", "Live events over a WebSocket", Body::None, Upgrade),
    route(Get, "/events", Endpoint::Events, "events", "Live events as Server-Sent Events", Body::None, EventStream),
];

/// The handler of `route`, mounted for its method only.
fn method_router(route: &Route) -> MethodRouter<ApiState> {
    let filter = route.verb.filter();
    match route.endpoint {
        Endpoint::Health => on(filter, rest::ops::health),
        Endpoint::Metrics => on(filter, metrics::metrics),
        Endpoint::OpenApi => on(filter, rest::ops::openapi_document),
        // Modules are the one large body.
        Endpoint::InstallApplication => on(filter, rest::apps::install).layer(DefaultBodyLimit::max(MODULE_BODY_MAX)),
        Endpoint::ListApplications => on(filter, rest::apps::list),
        Endpoint::GetApplication => on(filter, rest::apps::get),
        Endpoint::RemoveApplication => on(filter, rest::apps::remove),
        Endpoint::CreateContext => on(filter, rest::contexts::create),
        Endpoint::ListContexts => on(filter, rest::contexts::list),
        Endpoint::GetContext => on(filter, rest::contexts::get),
        Endpoint::LeaveContext => on(filter, rest::contexts::leave),
        Endpoint::ContextMembers => on(filter, rest::contexts::members),
        Endpoint::DeadJobs => on(filter, rest::contexts::dead_jobs),
        Endpoint::Invite => on(filter, rest::contexts::invite),
        Endpoint::Revoke => on(filter, rest::contexts::revoke),
        Endpoint::RemoveMember => on(filter, rest::contexts::remove_member),
        Endpoint::KeyEpochs => on(filter, rest::contexts::key_epochs),
        Endpoint::Join => on(filter, rest::contexts::join),
        Endpoint::Identities => on(filter, rest::ops::identities),
        Endpoint::Peers => on(filter, rest::ops::peers),
        Endpoint::SyncStatus => on(filter, rest::ops::sync_status),
        Endpoint::SyncNow => on(filter, rest::ops::sync_now),
        Endpoint::Ticket => on(filter, rest::ops::ticket),
        Endpoint::JsonRpc => on(filter, rpc::handle),
        Endpoint::WebSocket => on(filter, ws::upgrade),
        Endpoint::Events => on(filter, sse::events),
    }
}

/// The router: every route of [`ROUTES`], JSON fallbacks, the body limit,
/// auth, the browser checks before it, and metrics outermost (so 401s,
/// 403s and unknown paths are counted).
pub(crate) fn build(state: ApiState) -> Router {
    let mut router = Router::new();
    for route in &ROUTES {
        router = router.route(route.path, method_router(route));
    }
    router
        .fallback(errors::no_route)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_MAX))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .layer(axum::middleware::from_fn_with_state(state.clone(), browser::refuse_foreign_pages))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_is_listed_twice() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.verb == b.verb && a.path == b.path), "{:?} {} twice", a.verb, a.path);
                assert_ne!(a.endpoint, b.endpoint, "one endpoint mounted twice");
            }
        }
    }
}
