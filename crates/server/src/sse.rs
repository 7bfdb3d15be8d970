//! `GET /events?context=<id>`: live events as Server-Sent Events
//! (`event: state_mutation` / `event: sync`, `data: <json>`), for every
//! context when no `context` is given (the parameter may repeat).
//!
//! The stream is pulled by the connection, so a slow reader holds nothing
//! but its place in the node's bounded event bus: if it falls behind it is
//! sent an `event: error` saying how many events it missed, and goes on. A
//! comment line every [`SSE_KEEP_ALIVE`] keeps proxies from closing an idle
//! stream; server shutdown ends the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use weft_node::NodeEvent;

use crate::auth::TICKET_PARAM;
use crate::errors::{ApiError, parse_id};
use crate::live::{Filter, lagged_message, message};
use crate::state::ApiState;

/// How often an idle stream gets a keep-alive comment.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The filter the query asks for; unknown parameters are refused so a
/// typo does not silently subscribe to everything.
fn filter_of(query: Option<&str>) -> Result<Filter, ApiError> {
    let mut contexts = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "context" => contexts.push(parse_id("context", value)?),
            TICKET_PARAM => {}
            other => return Err(ApiError::bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    let mut filter = Filter { all: contexts.is_empty(), ..Filter::default() };
    filter.subscribe(contexts).map_err(ApiError::bad_request)?;
    Ok(filter)
}

struct Reader {
    events: broadcast::Receiver<NodeEvent>,
    filter: Filter,
    state: ApiState,
}

/// `GET /events`.
pub(crate) async fn events(
    State(state): State<ApiState>,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = filter_of(uri.query())?;
    let reader = Reader { events: state.node().subscribe(), filter, state };
    let stream = stream::unfold(reader, |mut reader| async move {
        let event = tokio::select! {
            () = reader.state.stopped() => return None,
            event = next_event(&mut reader.events, &reader.filter) => event?,
        };
        Some((Ok(event), reader))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE)))
}

/// The next event this reader wants; `None` once the bus is gone.
async fn next_event(events: &mut broadcast::Receiver<NodeEvent>, filter: &Filter) -> Option<Event> {
    loop {
        match events.recv().await {
            Ok(event) => {
                let live = message(&event);
                if filter.admits(&live.context) {
                    return Some(Event::default().event(live.kind).data(live.body.to_string()));
                }
            }
            Err(RecvError::Lagged(missed)) => {
                return Some(Event::default().event("error").data(lagged_message(missed).to_string()));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_primitives::Hash;

    #[test]
    fn repeated_context_parameters_all_count_and_none_means_all() {
        let a = Hash([1; 32]).to_hex();
        let b = Hash([2; 32]).to_hex();
        let filter = filter_of(Some(&format!("context={a}&context={b}"))).unwrap();
        assert!(!filter.all);
        assert_eq!(filter.contexts.len(), 2);
        assert!(filter_of(None).unwrap().all);
        assert!(filter_of(Some("context=nothex")).is_err());
        assert!(filter_of(Some("contxt=1")).is_err());
    }
}
