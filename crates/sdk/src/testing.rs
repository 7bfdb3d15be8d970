//! Testing apps natively: the in-memory host's controls (native builds only).
//!
//! Every test thread has its own simulated context with one node (node 0)
//! at first; calling app methods directly (`app.set(..)`) runs them against
//! that node's open transaction. [`call`] runs a method through its export
//! instead — JSON arguments, JSON result, view enforcement, and all-or-nothing
//! commit — like the node's runtime does. More nodes ([`add_node`],
//! [`switch_node`]) replicate through [`sync`]; [`deliver`] also runs event
//! handlers on every node but the author, as nodes do.
//!
//! ```ignore
//! use weft_sdk::testing;
//!
//! #[test]
//! fn set_then_get() {
//!     testing::reset();
//!     let mut app = KvStore::init();
//!     app.set("a".into(), "1".into());
//!     assert_eq!(app.get("a".into()), Some("1".into()));
//!     assert_eq!(testing::take_events()[0].kind, "Inserted");
//!     let got = testing::call::<KvStore>("get", testing::json!({ "key": "a" })).unwrap();
//!     assert_eq!(got, testing::json!("1"));
//! }
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use serde_json::{Value, json};
use weft_abi::{MethodKind, RETURN_APP_ERROR, RETURN_OK};

use crate::App;
use crate::native::host::{reset_world, with_world};
use crate::native::world::EmittedEvent;

/// The most rounds of handler execution [`deliver`] runs (a handler may
/// emit events whose handlers emit events…).
pub const DELIVERY_ROUNDS_MAX: usize = 64;

/// An event an app emitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The event kind (variant name).
    pub kind: String,
    /// Its data (the variant's fields).
    pub data: Value,
    /// The handler other nodes run, if any.
    pub handler: Option<String>,
}

impl From<EmittedEvent> for Event {
    fn from(event: EmittedEvent) -> Event {
        let data = serde_json::from_slice(&event.data).unwrap_or(Value::Null);
        Event { kind: event.kind, data, handler: event.handler }
    }
}

/// Why a [`call`] failed. Whatever the variant, it committed nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// The app exports no method of that name.
    UnknownMethod(String),
    /// The method returned its typed error (this JSON).
    App(Value),
    /// The method panicked (or was aborted by a host error) with this message.
    Panic(String),
    /// The method's result is not JSON.
    BadResult(String),
}

/// Forget everything: one fresh node, the start clock, the test context.
pub fn reset() {
    reset_world();
}

/// Add a node to the context (it has seen nothing until [`sync`]); returns its index.
pub fn add_node() -> usize {
    match with_world(|world| world.add_node()) {
        Ok(index) => index,
        Err(message) => crate::export::abort(&message),
    }
}

/// Make `node` the one app code runs on. Commits the current node's open writes first.
pub fn switch_node(node: usize) {
    with_world(|world| {
        if node >= world.nodes.len() {
            return Err(format!("no node {node}: the world has {}", world.nodes.len()));
        }
        world.flush(world.current)?;
        world.current = node;
        Ok(())
    })
    .unwrap_or_else(|message| crate::export::abort(&message));
}

/// The node app code runs on.
pub fn current_node() -> usize {
    with_world(|world| world.current)
}

/// Run `f` on `node`, then switch back.
pub fn on_node<R>(node: usize, f: impl FnOnce() -> R) -> R {
    let previous = current_node();
    switch_node(node);
    let result = f();
    switch_node(previous);
    result
}

/// The current node's identity becomes the key with this seed.
pub fn set_executor_seed(seed: [u8; 32]) {
    with_world(|world| world.node().key = weft_primitives::SigningKey::from_seed(seed));
}

/// The public key of the current node's identity (what `env::executor_id` returns).
pub fn executor_id() -> [u8; 32] {
    with_world(|world| world.node().key.public_key().0)
}

/// Set the context id apps see.
pub fn set_context_id(id: [u8; 32]) {
    with_world(|world| world.context_id = id);
}

/// Move the wall clock forward.
pub fn advance_time(ms: u64) {
    with_world(|world| world.wall_ms = world.wall_ms.saturating_add(ms));
}

/// Commit the current node's open writes and events as one delta.
pub fn commit() {
    with_world(|world| world.flush(world.current)).unwrap_or_else(|message| crate::export::abort(&message));
}

/// The events the current node emitted (in committed calls) since the last take.
pub fn take_events() -> Vec<Event> {
    commit();
    with_world(|world| std::mem::take(&mut world.node().emitted)).into_iter().map(Event::from).collect()
}

/// The lines the current node logged since the last take.
pub fn take_logs() -> Vec<String> {
    with_world(|world| std::mem::take(&mut world.node().logs))
}

/// The current node's state root hash (after committing its open writes).
pub fn root_hash() -> [u8; 32] {
    commit();
    with_world(|world| weft_state::root_hash(&world.node().kv).map(|hash| hash.0))
        .unwrap_or_else(|error| crate::export::abort(&error.to_string()))
}

/// Give every node every delta it lacks (no handlers run).
pub fn sync() {
    with_world(|world| world.sync().map(|_| ())).unwrap_or_else(|message| crate::export::abort(&message));
}

/// What [`deliver`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    /// `(node, handler)` of every handler run, in order.
    pub handlers_run: Vec<(usize, String)>,
    /// `(node, handler, error)` of every handler that failed (its event is lost).
    pub failures: Vec<(usize, String, CallError)>,
}

/// [`sync`], and on every node other than an event's author run the event's
/// handler (through [`call`]), repeating until no new deltas appear.
pub fn deliver<A: App>() -> Delivery {
    let previous = current_node();
    let mut delivery = Delivery::default();
    for _ in 0..DELIVERY_ROUNDS_MAX {
        let applied = with_world(|world| world.sync()).unwrap_or_else(|message| crate::export::abort(&message));
        let jobs: Vec<(usize, String, Value, [u8; 32])> = with_world(|world| {
            let mut jobs = Vec::new();
            for (node, number) in applied {
                let delta = &world.deltas[number];
                if delta.author_node == node {
                    continue;
                }
                for event in &delta.events {
                    if let Some(handler) = &event.handler {
                        let data = serde_json::from_slice(&event.data).unwrap_or(Value::Null);
                        jobs.push((node, handler.clone(), data, delta.author.0));
                    }
                }
            }
            jobs
        });
        if jobs.is_empty() {
            break;
        }
        for (node, handler, data, author) in jobs {
            switch_node(node);
            with_world(|world| world.event_author = Some(author));
            let outcome = call::<A>(&handler, data);
            with_world(|world| world.event_author = None);
            match outcome {
                Ok(_) => delivery.handlers_run.push((node, handler)),
                Err(error) => delivery.failures.push((node, handler, error)),
            }
        }
    }
    switch_node(previous);
    delivery
}

/// Run `method` through its export on the current node, as the runtime
/// would: `args` is the JSON object of arguments; views cannot write; the
/// call commits as one delta only if it returns `Ok`.
pub fn call<A: App>(method: &str, args: Value) -> Result<Value, CallError> {
    let Some(export) = A::EXPORTS.iter().find(|export| export.name == method) else {
        return Err(CallError::UnknownMethod(method.to_owned()));
    };
    let input = serde_json::to_vec(&args).unwrap_or_default();
    with_world(|world| {
        world.flush(world.current)?;
        let scope = &mut world.node().scope;
        scope.read_only = export.kind == MethodKind::View;
        scope.input = input;
        Ok::<(), String>(())
    })
    .unwrap_or_else(|message| crate::export::abort(&message));
    let outcome = catch_unwind(AssertUnwindSafe(export.run));
    let returned = with_world(|world| {
        let returned = world.node().scope.returned.take();
        world.node().scope.read_only = false;
        world.node().scope.input.clear();
        returned
    });
    let result = match outcome {
        Err(payload) => Err(CallError::Panic(panic_message(payload.as_ref()))),
        Ok(()) => match returned {
            None => Ok(Value::Null),
            Some((status, bytes)) => match serde_json::from_slice::<Value>(&bytes) {
                Err(error) => Err(CallError::BadResult(error.to_string())),
                Ok(value) if status == RETURN_OK => Ok(value),
                Ok(value) if status == RETURN_APP_ERROR => Err(CallError::App(value)),
                Ok(_) => Err(CallError::BadResult(format!("unknown return status {status}"))),
            },
        },
    };
    with_world(|world| match &result {
        Ok(_) => world.flush(world.current),
        Err(_) => {
            world.discard(world.current);
            Ok(())
        }
    })
    .unwrap_or_else(|message| crate::export::abort(&message));
    result
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic".to_owned()
    }
}
