//! Operations over real HTTP: health, metrics, auth off loopback, body
//! limits, JSON 404/405, and the OpenAPI document kept true by probing
//! every path and method it names against the live server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use common::{Api, NOWHERE, code, start_node};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weft_server::{JSON_BODY_MAX, MODULE_BODY_MAX, ServerConfig, ServerError, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_ok() {
    let api = Api::start(1).await;
    assert_eq!(api.get("/health").await, (StatusCode::OK, json!({ "status": "ok" })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_and_status_and_time_them() {
    let api = Api::start(1).await;
    let app = api.install(weft_apps::KV_STORE).await;
    let context = api.create_context(&app).await;
    api.execute(&context, "set", json!({ "key": "m", "value": "1" })).await;
    api.get(&format!("/admin/contexts/{context}")).await;
    api.get(&format!("/admin/contexts/{NOWHERE}")).await;
    api.get("/nowhere").await;
    let response = api.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let expect = [
        "weft_node_up 1",
        "weft_api_requests_total{method=\"POST\",route=\"/admin/applications\",status=\"201\"} 1",
        "weft_api_requests_total{method=\"POST\",route=\"/jsonrpc\",status=\"200\"} 1",
        "weft_api_requests_total{method=\"GET\",route=\"/admin/contexts/{id}\",status=\"200\"} 1",
        "weft_api_requests_total{method=\"GET\",route=\"/admin/contexts/{id}\",status=\"404\"} 1",
        "weft_api_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "weft_api_request_duration_seconds_count{route=\"/admin/contexts/{id}\"} 2",
        "weft_api_request_duration_seconds_bucket{route=\"/jsonrpc\",le=\"+Inf\"} 1",
        "# TYPE weft_api_request_duration_seconds histogram",
        "weft_sync_bytes_total{direction=\"sent\"}",
        "weft_gossip_messages_total{direction=\"received\"}",
        "weft_net_dropped_total{what=\"gossip\"} 0",
        "weft_net_dropped_total{what=\"stream\"} 0",
        "weft_net_subscriptions_coalesced_total 0",
    ];
    for line in expect {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let value = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("weft_deltas_applied_total"), 2, "init and set");
    for name in [
        "weft_deltas_pending",
        "weft_deltas_rejected_total",
        "weft_handler_runs_total",
        "weft_handler_failures_total",
        "weft_handler_jobs_owed",
        "weft_sync_sessions_total",
        "weft_peers",
    ] {
        value(name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_every_route_but_health_needs_the_token() {
    let (node, _dir) = start_node(1).await;
    let refused = serve(node.clone(), ServerConfig::new("0.0.0.0:0".parse().unwrap(), None)).await;
    assert!(matches!(refused, Err(ServerError::Config(_))), "{refused:?}");
    let empty = ServerConfig::new("127.0.0.1:0".parse().unwrap(), Some(" ".into()));
    assert!(matches!(serve(node.clone(), empty).await, Err(ServerError::Config(_))));

    let config = ServerConfig::new("0.0.0.0:0".parse().unwrap(), Some("s3cret".into()));
    let server = serve(node.clone(), config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.local_addr().port());
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(get("/health", None).await.0, StatusCode::OK);
    for path in ["/admin/contexts", "/metrics", "/admin/openapi.json", "/nowhere", "/events"] {
        let (status, body) = get(path, None).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{path}");
        let (status, body) = get(path, Some("wrong")).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{path}");
    }
    let (status, body) = get("/admin/contexts", None).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"), "{status} {body}");
    assert_eq!(get("/admin/contexts", Some("s3cret")).await, (StatusCode::OK, json!([])));
    let (status, body) = get("/nowhere", Some("s3cret")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // The token never travels in a URL, not even where it would be right.
    let response = client.get(format!("{base}/events?access_token=s3cret")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let message = response.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("ticket"), "{message}");
    // Browsers' WebSocket and EventSource use a single-use ticket instead.
    let ticket = |client: reqwest::Client, base: String| async move {
        let response = client.post(format!("{base}/admin/tickets")).bearer_auth("s3cret").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["ticket"].as_str().unwrap().to_owned()
    };
    let events_ticket = ticket(client.clone(), base.clone()).await;
    let response = client.get(format!("{base}/events?ticket={events_ticket}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let again = client.get(format!("{base}/events?ticket={events_ticket}")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "a ticket is spent by its first use");
    assert_eq!(client.post(format!("{base}/admin/tickets")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let ws = format!("ws://127.0.0.1:{}/ws", server.local_addr().port());
    assert!(tokio_tungstenite::connect_async(&ws).await.is_err(), "no token, no WebSocket");
    assert!(tokio_tungstenite::connect_async(format!("{ws}?access_token=s3cret")).await.is_err());
    let ws_ticket = ticket(client.clone(), base.clone()).await;
    assert!(tokio_tungstenite::connect_async(format!("{ws}?ticket={ws_ticket}")).await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_a_configured_token_is_required_too() {
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), Some("tok".into()));
    let mut api = Api::start_with(1, config).await;
    assert_eq!(api.get("/admin/contexts").await.0, StatusCode::OK);
    api.token = None;
    let (status, body) = api.post("/admin/contexts", json!({ "application": "00".repeat(32) })).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert_eq!(api.get("/admin/contexts").await.0, StatusCode::UNAUTHORIZED);
    api.token = Some("bad".into());
    assert_eq!(api.get("/admin/contexts").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/health").await.0, StatusCode::OK, "the probe stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_with_an_exposed_config_refuses_without_the_token() {
    let (node, _dir) = start_node(1).await;
    let config = ServerConfig::new("0.0.0.0:2528".parse().unwrap(), Some("t".into()));
    let app = weft_server::router(node, &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let response = reqwest::get(format!("http://{addr}/admin/peers")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_with_json_413s() {
    let api = Api::start(1).await;
    let big_json = format!("{{\"application\": \"{}\"}}", "a".repeat(JSON_BODY_MAX));
    let (status, body) = api.post_raw("/admin/contexts", big_json).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let (status, body) = api.post_raw("/jsonrpc", vec![b' '; JSON_BODY_MAX + 1]).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    // A module may be larger than a JSON body...
    let request = api.request(Method::POST, "/admin/applications").header("content-type", "application/wasm");
    let (status, body) = api.send(request.body(vec![0u8; 2 * JSON_BODY_MAX])).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "runtime_error"), "read, then refused as wasm");
    // ...but not larger than its own bound.
    let request = api.request(Method::POST, "/admin/applications").header("content-type", "application/wasm");
    let (status, body) = api.send(request.body(vec![0u8; MODULE_BODY_MAX + 1])).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_json_errors() {
    let api = Api::start(1).await;
    let (status, body) = api.get("/admin/nothing").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = api.send(api.request(Method::PUT, "/admin/contexts")).await;
    assert_eq!((status, code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let (status, body) = api.get("/ws").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"), "a plain GET is no upgrade");
}

/// The document's paths with `{id}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", NOWHERE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_exactly_the_routes_the_server_serves() {
    let api = Api::start(1).await;
    let (status, doc) = api.get("/admin/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, weft_server::openapi());
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let documented: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        for method in ["get", "post", "delete", "put", "patch"] {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = api.request(verb, &concrete(path));
            if method == "post" {
                request = request.header("content-type", "application/json").body("{}");
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            // Streams stay open: read the body only of finite answers.
            let body: Value = if path == "/events" && status == StatusCode::OK {
                Value::Null
            } else {
                response.json().await.unwrap_or(Value::Null)
            };
            if documented.contains(&method) {
                operations += 1;
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not served");
                let unrouted = status == StatusCode::NOT_FOUND && body["error"]["code"] == "not_found";
                assert!(!unrouted, "{method} {path} is documented but not routed: {body}");
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is served but not documented");
                assert_eq!(body["error"]["code"], "method_not_allowed");
            }
        }
    }
    assert!(operations >= 21, "every route was probed: {operations}");
    // Every documented path with an id is a template, and every template's
    // schema references resolve.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for reference in doc.to_string().split("#/components/schemas/").skip(1) {
        let name: String = reference.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert!(schemas.contains_key(&name), "dangling {name}");
    }
}
