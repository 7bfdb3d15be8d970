//! `GET /ws`: live events over a WebSocket.
//!
//! Each client has two tasks. The forwarder reads the node's event bus,
//! keeps what the client subscribed to, and pushes it onto the client's
//! queue of [`WS_QUEUE_MAX`] messages without ever waiting: if the bus
//! overflows for this client (`Lagged`) the client is told in an `error`
//! message and the stream goes on; if the client's own queue is full, the
//! client is disconnected (close code 1008) — never does the node or another
//! client wait for it. The connection task writes the queue to the socket
//! and answers the client's messages (`subscribe`, `unsubscribe`, `ping`).
//!
//! Keep-alive: the server sends a protocol Ping every [`WS_PING_INTERVAL`]
//! and closes a client it has not heard from (a Pong counts) for
//! [`WS_SILENCE_MAX`]; client Pings are answered with Pongs by the
//! protocol layer, and `{"type": "ping"}` with `{"type": "pong"}`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use weft_node::NodeEvent;
use weft_primitives::Hash;

use crate::WS_QUEUE_MAX;
use crate::errors::ApiError;
use crate::live::{Filter, error_message, lagged_message, message};
use crate::state::ApiState;

/// How often the server pings each client.
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(20);
/// A client silent for this long (no message, no Pong) is closed.
pub const WS_SILENCE_MAX: Duration = Duration::from_secs(60);
/// The largest message a client may send.
pub const WS_CLIENT_MESSAGE_MAX: usize = 64 * 1024;

/// `GET /ws`.
pub(crate) async fn upgrade(
    State(state): State<ApiState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade
            .max_message_size(WS_CLIENT_MESSAGE_MAX)
            .max_frame_size(WS_CLIENT_MESSAGE_MAX)
            .on_upgrade(move |socket| client(socket, state))
            .into_response(),
        Err(rejection) => {
            ApiError::bad_request(format!("not a WebSocket upgrade: {}", rejection.body_text())).into_response()
        }
    }
}

type SharedFilter = Arc<Mutex<Filter>>;

fn lock(filter: &SharedFilter) -> MutexGuard<'_, Filter> {
    // A filter is valid in every state a panicking holder could leave.
    filter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Aborts the forwarder when the connection ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

async fn client(mut socket: WebSocket, state: ApiState) {
    let filter = SharedFilter::default();
    let (queue, mut outgoing) = mpsc::channel(WS_QUEUE_MAX);
    let (overflow_tx, mut overflow) = oneshot::channel();
    let _forwarder = AbortOnDrop(tokio::spawn(forward(state.node().subscribe(), filter.clone(), queue, overflow_tx)));
    let stopped = state.stopped();
    tokio::pin!(stopped);
    let mut pings = tokio::time::interval_at(Instant::now() + WS_PING_INTERVAL, WS_PING_INTERVAL);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            biased;
            overflowed = &mut overflow => {
                if overflowed.is_ok() {
                    let reason = format!("too slow: {WS_QUEUE_MAX} messages queued");
                    close(&mut socket, close_code::POLICY, reason).await;
                }
                return;
            }
            () = &mut stopped => {
                close(&mut socket, close_code::AWAY, "the server is shutting down".into()).await;
                return;
            }
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else { return };
                last_heard = Instant::now();
                let reply = match incoming {
                    Message::Text(text) => Some(answer(&text, &filter)),
                    Message::Binary(_) => Some(error_message("binary messages are not supported; send JSON text")),
                    // Pings are answered by the protocol layer; Pongs only prove life.
                    Message::Ping(_) | Message::Pong(_) => None,
                    Message::Close(_) => return,
                };
                if let Some(reply) = reply
                    && socket.send(text(&reply)).await.is_err()
                {
                    return;
                }
            }
            Some(message) = outgoing.recv() => {
                if socket.send(message).await.is_err() {
                    return;
                }
            }
            _ = pings.tick() => {
                if last_heard.elapsed() > WS_SILENCE_MAX {
                    close(&mut socket, close_code::AWAY, "no pong from the client".into()).await;
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// The forwarder: bus → filter → the client's queue, never waiting.
async fn forward(
    mut events: broadcast::Receiver<NodeEvent>,
    filter: SharedFilter,
    queue: mpsc::Sender<Message>,
    overflow: oneshot::Sender<()>,
) {
    loop {
        let next = match events.recv().await {
            Ok(event) => {
                let live = message(&event);
                if !lock(&filter).admits(&live.context) {
                    continue;
                }
                text(&live.body)
            }
            Err(RecvError::Lagged(missed)) => text(&lagged_message(missed)),
            Err(RecvError::Closed) => return,
        };
        match queue.try_send(next) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = overflow.send(());
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// A client message.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    /// Without `contexts`: every context.
    Subscribe {
        #[serde(default)]
        contexts: Option<Vec<String>>,
    },
    /// Without `contexts`: everything.
    Unsubscribe {
        #[serde(default)]
        contexts: Option<Vec<String>>,
    },
    Ping,
}

/// The replies to client text messages sent in turn on a new connection
/// (for [`crate::fuzzing`]).
pub(crate) fn answers<'t>(texts: impl IntoIterator<Item = &'t str>) -> Vec<Value> {
    let filter = SharedFilter::default();
    texts.into_iter().map(|text| answer(text, &filter)).collect()
}

/// The reply to one client text message.
fn answer(text: &str, filter: &SharedFilter) -> Value {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => return error_message(&format!("bad message: {e}")),
    };
    match message {
        ClientMessage::Ping => json!({ "type": "pong" }),
        ClientMessage::Subscribe { contexts } => {
            let mut filter = lock(filter);
            let Some(contexts) = contexts else {
                filter.all = true;
                return filter.subscribed_message();
            };
            match parse_contexts(&contexts).and_then(|ids| filter.subscribe(ids)) {
                Ok(()) => filter.subscribed_message(),
                Err(why) => error_message(&why),
            }
        }
        ClientMessage::Unsubscribe { contexts } => {
            let mut filter = lock(filter);
            let Some(contexts) = contexts else {
                *filter = Filter::default();
                return filter.subscribed_message();
            };
            match parse_contexts(&contexts) {
                Ok(ids) => {
                    for id in ids {
                        filter.contexts.remove(&id);
                    }
                    filter.subscribed_message()
                }
                Err(why) => error_message(&why),
            }
        }
    }
}

fn parse_contexts(contexts: &[String]) -> Result<Vec<Hash>, String> {
    contexts
        .iter()
        .map(|id| id.parse::<Hash>().map_err(|_| format!("`contexts`: {id:?} is not 64 hex digits")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_unsubscribe_and_ping_get_their_replies() {
        let filter = SharedFilter::default();
        let id = Hash([7; 32]).to_hex();
        let reply = answer(&json!({ "type": "subscribe", "contexts": [id] }).to_string(), &filter);
        assert_eq!(reply["type"], "subscribed");
        assert_eq!(reply["contexts"], json!([id]));
        assert!(lock(&filter).admits(&Hash([7; 32])));
        let reply = answer(&json!({ "type": "unsubscribe", "contexts": [id] }).to_string(), &filter);
        assert_eq!(reply["contexts"], json!([]));
        assert_eq!(answer(r#"{"type":"ping"}"#, &filter), json!({ "type": "pong" }));
    }

    #[test]
    fn bad_client_messages_get_an_error_message() {
        let filter = SharedFilter::default();
        for bad in ["nope", r#"{"type":"dance"}"#, r#"{"type":"subscribe","contexts":["xyz"]}"#] {
            assert_eq!(answer(bad, &filter)["type"], "error", "{bad}");
        }
    }

    fn all() -> SharedFilter {
        Arc::new(Mutex::new(Filter { all: true, ..Filter::default() }))
    }

    fn snapshot_needed(i: u8) -> NodeEvent {
        NodeEvent::SnapshotNeeded { context: Hash([i; 32]) }
    }

    #[tokio::test]
    async fn a_client_whose_queue_is_full_is_cut_off_never_waited_for() {
        let (bus, events) = broadcast::channel(16);
        let (queue, mut outgoing) = mpsc::channel(2);
        let (overflow_tx, overflow) = oneshot::channel();
        for i in 0..3 {
            bus.send(snapshot_needed(i)).unwrap();
        }
        forward(events, all(), queue, overflow_tx).await;
        assert!(overflow.await.is_ok(), "the overflow was signalled");
        assert!(outgoing.recv().await.is_some());
        assert!(outgoing.recv().await.is_some());
        assert!(outgoing.recv().await.is_none(), "the forwarder stopped");
    }

    #[tokio::test]
    async fn a_lagging_client_is_told_and_goes_on() {
        let (bus, events) = broadcast::channel(2);
        let (queue, mut outgoing) = mpsc::channel(16);
        let (overflow_tx, _overflow) = oneshot::channel();
        for i in 0..5 {
            bus.send(snapshot_needed(i)).unwrap();
        }
        let forwarder = tokio::spawn(forward(events, all(), queue, overflow_tx));
        let first = outgoing.recv().await.unwrap();
        let Message::Text(first) = first else { panic!("{first:?}") };
        let first: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["type"], "error");
        assert!(first["message"].as_str().unwrap().contains("missed 3"), "{first}");
        for i in 3..5 {
            let Some(Message::Text(next)) = outgoing.recv().await else { panic!() };
            let next: Value = serde_json::from_str(&next).unwrap();
            assert_eq!(next["context"], json!(Hash([i; 32]).to_hex()));
        }
        forwarder.abort();
    }
}
