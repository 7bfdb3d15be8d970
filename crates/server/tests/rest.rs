//! The admin REST routes over real HTTP against real nodes: each route's
//! happy path and its errors (unknown ids, bad hex, bad JSON, conflicts).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Api, NOWHERE, TIMEOUT, code, eventually, pair, shared_context};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_install_list_get_and_remove() {
    let api = Api::start(1).await;
    let request = api.request(Method::POST, "/admin/applications").header("content-type", "application/wasm");
    let (status, app) = api.send(request.body(weft_apps::KV_STORE.to_vec())).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let id = app["id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert_eq!(app["size"], json!(weft_apps::KV_STORE.len()));
    let methods = app["methods"].as_array().unwrap();
    assert!(methods.contains(&json!({ "name": "set", "kind": "mutate" })), "{app}");
    assert!(methods.contains(&json!({ "name": "get", "kind": "view" })), "{app}");
    assert!(methods.contains(&json!({ "name": "init", "kind": "init" })), "{app}");

    let (status, list) = api.get("/admin/applications").await;
    assert_eq!((status, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    assert_eq!(list[0], app);
    let (status, one) = api.get(&format!("/admin/applications/{id}")).await;
    assert_eq!((status, &one), (StatusCode::OK, &app));

    // Octet-stream is accepted too (same module: same id).
    let request = api.request(Method::POST, "/admin/applications").header("content-type", "application/octet-stream");
    assert_eq!(api.send(request.body(weft_apps::KV_STORE.to_vec())).await.1["id"], app["id"]);

    let (status, body) = api.delete(&format!("/admin/applications/{id}")).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, serde_json::Value::Null));
    let (status, body) = api.get(&format!("/admin/applications/{id}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_application"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_errors_are_json_with_stable_codes() {
    let api = Api::start(1).await;
    let (status, body) = api.get("/admin/applications/not-hex").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("`id`"), "{body}");
    let (status, body) = api.get(&format!("/admin/applications/{NOWHERE}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_application"));
    let (status, body) = api.delete(&format!("/admin/applications/{NOWHERE}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_application"));

    let request = api.request(Method::POST, "/admin/applications").header("content-type", "application/wasm");
    let (status, body) = api.send(request.body(b"definitely not wasm".to_vec())).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "runtime_error"), "{body}");
    let request = api.request(Method::POST, "/admin/applications").header("content-type", "application/wasm");
    let (status, body) = api.send(request).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let request = api.request(Method::POST, "/admin/applications").header("content-type", "text/plain");
    let (status, body) = api.send(request.body(weft_apps::KV_STORE.to_vec())).await;
    assert_eq!((status, code(&body)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));

    // An application a context runs cannot be removed.
    let app = api.install(weft_apps::KV_STORE).await;
    let context = api.create_context(&app).await;
    let (status, body) = api.delete(&format!("/admin/applications/{app}")).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "application_in_use"));
    assert_eq!(api.delete(&format!("/admin/contexts/{context}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.delete(&format!("/admin/applications/{app}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_create_list_get_members_and_leave() {
    let api = Api::start(1).await;
    let app = api.install(weft_apps::KV_STORE).await;
    let (status, info) = api.post("/admin/contexts", json!({ "application": app, "init_args": {} })).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    let id = info["id"].as_str().unwrap();
    let me = api.get("/admin/identities").await.1[0]["public_key"].clone();
    assert_eq!(info["application"], json!(app));
    assert_eq!(info["identity"], me);
    assert_eq!(info["members"], json!([me]));
    assert_eq!(info["applied"], json!(1), "init commits the first delta: {info}");
    assert_eq!(info["heads"].as_array().unwrap().len(), 1);
    for field in ["root_hash", "pending", "handler_jobs", "peers"] {
        assert!(info.get(field).is_some(), "{field} missing: {info}");
    }

    let (status, list) = api.get("/admin/contexts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().iter().map(|c| &c["id"]).collect::<Vec<_>>(), vec![&info["id"]]);
    let (status, one) = api.get(&format!("/admin/contexts/{id}")).await;
    assert_eq!((status, &one["root_hash"]), (StatusCode::OK, &info["root_hash"]));
    let (status, members) = api.get(&format!("/admin/contexts/{id}/members")).await;
    assert_eq!((status, members), (StatusCode::OK, json!([me])));

    let (status, _) = api.delete(&format!("/admin/contexts/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get(&format!("/admin/contexts/{id}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_context"));
    assert_eq!(api.get("/admin/contexts").await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_errors_name_the_field_and_keep_the_node_codes() {
    let api = Api::start(1).await;
    let (status, body) = api.post("/admin/contexts", json!({ "application": "12ab" })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("`application`"), "{body}");
    let (status, body) = api.post("/admin/contexts", json!({ "application": NOWHERE })).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_application"));
    let (status, body) = api.post_raw("/admin/contexts", "{\"application\": ").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("bad JSON"), "{body}");
    let (status, body) = api.post("/admin/contexts", json!({ "application": NOWHERE, "colour": 1 })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"), "unknown fields are refused");
    let (status, body) = api.post("/admin/contexts", json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));

    for path in ["/admin/contexts/nope", "/admin/contexts/nope/members"] {
        let (status, body) = api.get(path).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"), "{path}");
    }
    for path in [format!("/admin/contexts/{NOWHERE}"), format!("/admin/contexts/{NOWHERE}/members")] {
        let (status, body) = api.get(&path).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_context"), "{path}");
    }
    let (status, body) = api.delete(&format!("/admin/contexts/{NOWHERE}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_context"));
    let (status, body) = api.post(&format!("/admin/contexts/{NOWHERE}/invitations"), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_context"));

    let app = api.install(weft_apps::KV_STORE).await;
    let context = api.create_context(&app).await;
    let path = format!("/admin/contexts/{context}/invitations");
    let (status, body) = api.post(&path, json!({ "invitee": "zz" })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("`invitee`"), "{body}");
    let (status, body) = api.post(&path, json!({ "valid_for_secs": 0 })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    // An open invitation with the default validity: an empty body will do.
    let (status, body) = api.post_raw(&path, "").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["invitation"].as_str().unwrap().starts_with("weft-invite1:"), "{body}");

    let (status, body) = api.post("/admin/contexts/join", json!({ "invitation": "weft-invite1:garbage" })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_invitation"), "{body}");
    let (status, body) = api.post("/admin/contexts/join", json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_joins_through_the_api_and_sees_members_peers_and_sync_status() {
    let (a, b) = pair().await;
    let context = shared_context(&a, &b, weft_apps::KV_STORE).await;
    let (status, members) = b.get(&format!("/admin/contexts/{context}/members")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");

    // Joining twice is a conflict.
    let invitation = a.post(&format!("/admin/contexts/{context}/invitations"), json!({})).await.1;
    let (status, body) = b.post("/admin/contexts/join", invitation).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_joined"), "{body}");

    let (status, peers) = a.get("/admin/peers").await;
    assert_eq!(status, StatusCode::OK);
    let peer = &peers.as_array().unwrap()[0];
    assert_eq!(peer["peer_id"], json!(b.node.peer_id().to_string()));
    assert!(peer["addrs"][0].as_str().unwrap().starts_with("/ip"), "{peer}");

    // A write on A reaches B; B's sync status shows the same root hash.
    a.execute(&context, "set", json!({ "key": "k", "value": "v" })).await;
    let converged = eventually(TIMEOUT, || async {
        let a_status = a.get("/admin/sync").await.1;
        let b_status = b.get("/admin/sync").await.1;
        let same = a_status[0]["root_hash"] == b_status[0]["root_hash"] && a_status[0]["heads"] == b_status[0]["heads"];
        let has_write = b.query(&context, "get", json!({ "key": "k" })).await == json!("v");
        (same && has_write).then_some(b_status)
    })
    .await
    .expect("B did not catch up");
    let status = &converged[0];
    assert_eq!(status["id"], json!(context));
    for field in ["syncs_started", "parent_requests", "duplicates", "rejected", "divergences"] {
        assert!(status["stats"][field].is_u64(), "{field}: {status}");
    }

    assert_eq!((status["reachable"].clone(), status["member_nodes_known"].clone()), (json!(true), json!(1)));
    // A session starts at most once per peer and interval, so `started`
    // may be 0 or 1; the per-context outcome says the member is reachable.
    for body in [json!({ "context": context }), json!({ "context": null })] {
        let (code_, answer) = b.post("/admin/sync", body).await;
        assert_eq!(code_, StatusCode::ACCEPTED);
        assert!(answer["started"].as_u64().is_some_and(|n| n <= 1), "{answer}");
        let outcome = &answer["contexts"][0];
        assert_eq!((outcome["context"].clone(), outcome["reachable"].clone()), (json!(context), json!(true)));
        assert_eq!((outcome["peers"].clone(), outcome["member_nodes_known"].clone()), (json!(1), json!(1)));
    }
    let (code_, body) = b.post_raw("/admin/sync", "").await;
    assert_eq!((code_, body["contexts"].as_array().map(Vec::len)), (StatusCode::ACCEPTED, Some(1)));
    let (code_, body) = b.post("/admin/sync", json!({ "context": NOWHERE })).await;
    assert_eq!((code_, code(&body)), (StatusCode::NOT_FOUND, "unknown_context"));
    let (code_, body) = b.post("/admin/sync", json!({ "context": "x" })).await;
    assert_eq!((code_, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_list_the_node_identity_as_default() {
    let api = Api::start(3).await;
    let (status, body) = api.get("/admin/identities").await;
    assert_eq!(status, StatusCode::OK);
    let expected = weft_primitives::Hash(api.node.identity().0).to_hex();
    assert_eq!(body, json!([{ "public_key": expected, "default": true }]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_answers_503_node_stopped() {
    let api = Api::start(1).await;
    api.node.shutdown().await.unwrap();
    let stopped = eventually(TIMEOUT, || async {
        let (status, body) = api.get("/admin/contexts").await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    })
    .await
    .expect("no 503 after the node stopped");
    assert_eq!(code(&stopped), "node_stopped");
    assert_eq!(api.get("/health").await.0, StatusCode::OK, "the API itself stays up");
}
