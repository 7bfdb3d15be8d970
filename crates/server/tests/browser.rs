//! A web page in the operator's browser against a real node's API over
//! real sockets: a rebound Host (DNS rebinding), a cross-site `text/plain`
//! or form POST, a foreign Origin on the WebSocket handshake and on JSON
//! requests. Each is refused with a 4xx and changes nothing; each test
//! first shows the same request *with* the right headers does change
//! something, so "nothing changed" means the input arrived and was refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Api, code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn kv_context(api: &Api) -> (String, String) {
    let app = api.install(weft_apps::KV_STORE).await;
    let context = api.create_context(&app).await;
    (app, context)
}

fn set_call(context: &str, key: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "execute",
            "params": { "context": context, "method": "set", "args": { "key": key, "value": "v" } } })
    .to_string()
}

async fn len(api: &Api, context: &str) -> Value {
    api.query(context, "len", json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_is_refused_and_reads_and_writes_nothing() {
    let api = Api::start(1).await;
    let (app, _context) = kv_context(&api).await;
    let before = api.get("/admin/contexts").await.1;
    assert_eq!(before.as_array().unwrap().len(), 1);
    for host in ["evil.example:2528", "localhost.evil.example", "127.0.0.1.nip.io:80"] {
        let read = api.request(Method::GET, "/admin/contexts").header("host", host);
        let (status, body) = api.send(read).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "host_not_allowed"), "{host}: {body}");
        let write =
            api.request(Method::POST, "/admin/contexts").header("host", host).json(&json!({ "application": app }));
        let (status, body) = api.send(write).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "host_not_allowed"), "{host}: {body}");
    }
    assert_eq!(api.get("/admin/contexts").await.1, before, "no context was created");
    // The names that do name the node pass.
    for host in ["localhost:2528", "127.0.0.1", "[::1]:2528"] {
        let (status, _) = api.send(api.request(Method::GET, "/admin/contexts").header("host", host)).await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_plain_or_form_post_is_a_415_and_writes_nothing() {
    let api = Api::start(1).await;
    let (app, context) = kv_context(&api).await;
    // Control: the same call sent as JSON writes.
    let json_call = api.request(Method::POST, "/jsonrpc").header("content-type", "application/json");
    let (status, body) = api.send(json_call.body(set_call(&context, "control"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(len(&api, &context).await, json!(1));
    let root = api.get(&format!("/admin/contexts/{context}")).await.1["root_hash"].clone();

    // What a cross-site <form> or fetch(no-cors) can send without a preflight.
    for content_type in
        [Some("text/plain"), Some("text/plain;charset=UTF-8"), Some("application/x-www-form-urlencoded"), None]
    {
        let mut request = api.request(Method::POST, "/jsonrpc");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, body) = api.send(request.body(set_call(&context, "forged"))).await;
        assert_eq!((status, code(&body)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"), "{body}");

        let mut request = api.request(Method::POST, "/admin/contexts");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, body) = api.send(request.body(json!({ "application": app }).to_string())).await;
        assert_eq!((status, code(&body)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"), "{body}");

        let mut request = api.request(Method::POST, "/admin/applications");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, body) = api.send(request.body(weft_apps::KV_STORE.to_vec())).await;
        assert_eq!((status, code(&body)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"), "{body}");
    }
    assert_eq!(len(&api, &context).await, json!(1), "no forged key was written");
    assert_eq!(api.get(&format!("/admin/contexts/{context}")).await.1["root_hash"], root);
    assert_eq!(api.get("/admin/contexts").await.1.as_array().unwrap().len(), 1, "no context was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_on_json_routes_and_the_websocket() {
    let api = Api::start(1).await;
    let (_app, context) = kv_context(&api).await;
    let own_origin = api.base.clone();
    // Control: a page the API itself serves (same origin) may write.
    let request = api.request(Method::POST, "/jsonrpc").header("origin", &own_origin);
    let (status, body) =
        api.send(request.header("content-type", "application/json").body(set_call(&context, "own"))).await;
    assert!(status == StatusCode::OK && body.get("error").is_none(), "{status} {body}");
    assert_eq!(len(&api, &context).await, json!(1));

    for origin in ["https://evil.example", "null", "http://localhost:1"] {
        let request = api.request(Method::POST, "/jsonrpc").header("origin", origin);
        let request = request.header("content-type", "application/json").body(set_call(&context, "foreign"));
        let (status, body) = api.send(request).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "origin_not_allowed"), "{origin}: {body}");
        let (status, body) = api.send(api.request(Method::GET, "/admin/contexts").header("origin", origin)).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "origin_not_allowed"), "{origin}: {body}");
    }
    assert_eq!(len(&api, &context).await, json!(1), "no foreign write");

    let handshake = |origin: &str| {
        let mut request = api.ws_url("/ws").into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(handshake("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN.as_u16());
        }
        other => panic!("a foreign page opened the WebSocket: {:?}", other.map(|(_, response)| response.status())),
    }
    assert!(tokio_tungstenite::connect_async(handshake(&own_origin)).await.is_ok(), "our own console may");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_hosts_and_origins_are_served() {
    let mut config = weft_server::ServerConfig::loopback(0);
    config.allowed_hosts = vec!["weft.lan".into()];
    config.allowed_origins = vec!["https://console.example".into()];
    let api = Api::start_with(1, config).await;
    let request = api.request(Method::GET, "/admin/contexts").header("host", "weft.lan:2528");
    assert_eq!(api.send(request.header("origin", "https://console.example")).await.0, StatusCode::OK);
    let request = api.request(Method::GET, "/admin/contexts").header("host", "other.lan");
    assert_eq!(api.send(request).await.0, StatusCode::FORBIDDEN);

    let mut bad = weft_server::ServerConfig::loopback(0);
    bad.allowed_origins = vec!["console.example".into()];
    assert!(bad.check().is_err(), "an origin needs its scheme");
    let mut bad = weft_server::ServerConfig::loopback(0);
    bad.allowed_hosts = vec!["weft.lan:80".into()];
    assert!(bad.check().is_err(), "a host is a bare name");
}
