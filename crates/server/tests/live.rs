//! Live events over real sockets: a WebSocket subscriber on node B sees
//! the `state_mutation` (with the event data) of a write made through node
//! A's API; an SSE reader sees events; pings both ways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Api, TIMEOUT, pair, shared_context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(api: &Api) -> Socket {
    tokio_tungstenite::connect_async(api.ws_url("/ws")).await.unwrap().0
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// The next JSON text message that satisfies `wanted`, skipping others.
async fn next_json(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await.unwrap().unwrap() {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if wanted(&value) {
                        return value;
                    }
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    })
    .await;
    found.expect("no such message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_b_sees_the_state_mutation_of_a_write_made_through_a() {
    let (a, b) = pair().await;
    let context = shared_context(&a, &b, weft_apps::KV_STORE).await;
    let mut socket = connect(&b).await;
    send(&mut socket, json!({ "type": "subscribe", "contexts": [context] })).await;
    let subscribed = next_json(&mut socket, |m| m["type"] == "subscribed").await;
    assert_eq!(subscribed["contexts"], json!([context]));

    let result = a.execute(&context, "set", json!({ "key": "colour", "value": "blue" })).await;
    let delta = result["delta"].clone();
    let mutation = next_json(&mut socket, |m| {
        m["type"] == "state_mutation" && m["deltas"].as_array().unwrap().iter().any(|d| d["id"] == delta)
    })
    .await;
    assert_eq!(mutation["context"], json!(context));
    assert_eq!(mutation["root_hash"].as_str().unwrap().len(), 64);
    let applied = mutation["deltas"].as_array().unwrap().iter().find(|d| d["id"] == delta).unwrap();
    assert_eq!(applied["local"], json!(false), "written on A, applied on B");
    let a_key = a.get("/admin/identities").await.1[0]["public_key"].clone();
    assert_eq!(applied["author"], a_key);
    let event = mutation["events"].as_array().unwrap().iter().find(|e| e["delta"] == delta).unwrap();
    assert_eq!(event["kind"], "Inserted");
    assert_eq!(event["data"], json!({ "key": "colour", "value": "blue" }));
    assert_eq!(event["handler"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_filter_contexts_and_pings_are_answered() {
    let api = Api::start(1).await;
    let app = api.install(weft_apps::KV_STORE).await;
    let watched = api.create_context(&app).await;
    let ignored = api.create_context(&app).await;
    let mut socket = connect(&api).await;

    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next_json(&mut socket, |_| true).await, json!({ "type": "pong" }));
    socket.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Message::Pong(payload) = socket.next().await.unwrap().unwrap() {
                return payload;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&pong[..], b"are you there");

    send(&mut socket, json!({ "type": "subscribe", "contexts": ["nothex"] })).await;
    assert_eq!(next_json(&mut socket, |_| true).await["type"], "error");
    send(&mut socket, json!({ "type": "subscribe", "contexts": [watched] })).await;
    next_json(&mut socket, |m| m["type"] == "subscribed").await;
    api.execute(&ignored, "set", json!({ "key": "i", "value": "1" })).await;
    api.execute(&watched, "set", json!({ "key": "w", "value": "1" })).await;
    let mutation = next_json(&mut socket, |m| m["type"] == "state_mutation").await;
    assert_eq!(mutation["context"], json!(watched), "the unsubscribed context's write was filtered out");
    assert_eq!(mutation["deltas"][0]["local"], json!(true));

    send(&mut socket, json!({ "type": "unsubscribe" })).await;
    let now = next_json(&mut socket, |m| m["type"] == "subscribed").await;
    assert_eq!(now["contexts"], json!([]));
    api.execute(&watched, "set", json!({ "key": "w", "value": "2" })).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    // Nothing but the pong arrives before it…
    assert_eq!(next_json(&mut socket, |_| true).await, json!({ "type": "pong" }));
    // …nor after it: the bus is ordered, so once a later write of the other
    // context arrives, the write made while unsubscribed was judged (and
    // not sent). Only then may a subscription to everything begin.
    send(&mut socket, json!({ "type": "subscribe", "contexts": [ignored] })).await;
    next_json(&mut socket, |m| m["type"] == "subscribed").await;
    api.execute(&ignored, "set", json!({ "key": "i", "value": "1b" })).await;
    let next = next_json(&mut socket, |_| true).await;
    assert_eq!(next["type"], "state_mutation");
    assert_eq!(next["context"], json!(ignored), "the write made while unsubscribed was sent");

    // Subscribing without a list follows every context.
    send(&mut socket, json!({ "type": "subscribe" })).await;
    assert_eq!(next_json(&mut socket, |m| m["type"] == "subscribed").await["all"], json!(true));
    api.execute(&ignored, "set", json!({ "key": "i", "value": "2" })).await;
    let mutation = next_json(&mut socket, |m| m["type"] == "state_mutation").await;
    assert_eq!(mutation["context"], json!(ignored));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_reader_sees_state_mutations_of_its_context() {
    let api = Api::start(1).await;
    let app = api.install(weft_apps::KV_STORE).await;
    let context = api.create_context(&app).await;
    let mut response = api.request(reqwest::Method::GET, &format!("/events?context={context}")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    api.execute(&context, "set", json!({ "key": "sse", "value": "yes" })).await;
    let mut text = String::new();
    let seen = tokio::time::timeout(TIMEOUT, async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(start) = text.find("event: state_mutation\ndata: ") {
                let rest = &text[start + "event: state_mutation\ndata: ".len()..];
                if let Some(end) = rest.find('\n') {
                    return serde_json::from_str::<Value>(&rest[..end]).unwrap();
                }
            }
        }
        panic!("stream ended: {text}");
    })
    .await
    .expect("no SSE event in time");
    assert_eq!(seen["type"], "state_mutation");
    assert_eq!(seen["context"], json!(context));
    assert_eq!(seen["events"][0]["data"], json!({ "key": "sse", "value": "yes" }));

    let (status, body) = api.get("/events?context=nothex").await;
    assert_eq!((status, common::code(&body)), (reqwest::StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_streams_and_returns() {
    let mut api = Api::start(1).await;
    let mut socket = connect(&api).await;
    send(&mut socket, json!({ "type": "subscribe" })).await;
    next_json(&mut socket, |m| m["type"] == "subscribed").await;
    let mut events = api.request(reqwest::Method::GET, "/events").send().await.unwrap();
    let server = api.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await.expect("shutdown waited on live streams");
    let closed = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1001), "going away");
    let ended = tokio::time::timeout(TIMEOUT, async { while let Ok(Some(_)) = events.chunk().await {} }).await;
    assert!(ended.is_ok(), "the SSE stream ended");
}
