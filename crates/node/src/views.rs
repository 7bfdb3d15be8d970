//! Views off the driver: a client's call of a view method runs on a
//! blocking thread against the store's durable snapshot
//! ([`weft_store::Store::read_durable`]), never in the driver's queue, so
//! reads do not wait behind writes, applies or other contexts, and run in
//! parallel with each other and with the driver.
//!
//! Guarantees: a view sees one consistent snapshot of its context's state
//! (redb MVCC), and only what is durable: an acknowledged write is visible
//! to every view that starts after its acknowledgement (the durable
//! snapshot moves on before a group's calls are answered), and a write a
//! crash could still undo (a group not yet flushed) is visible to none.
//! A view changes nothing, so it needs neither the replica nor the driver.
//!
//! The driver owns the [`ViewTargets`]: it adds a context once it is open,
//! removes it when it leaves, and closes them all at shutdown, after which
//! every view goes to the driver (and fails with `Stopped`) and shutdown
//! waits for views already running, so the database can close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tracing::info;
use weft_primitives::{Hash, Hlc, SigningKey};
use weft_runtime::{App, CallResult, ExecuteRequest, MethodKind, Runtime};
use weft_store::Store;

use crate::NodeError;
use crate::command::CallReply;

/// How long shutdown waits for views still running.
pub const VIEWS_DRAIN_MAX: Duration = Duration::from_secs(5);

/// What a view of one context runs with.
#[derive(Clone)]
pub(crate) struct ViewTarget {
    pub(crate) app: Arc<App>,
    pub(crate) identity: SigningKey,
    pub(crate) text_lane: u32,
}

struct Open {
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    contexts: HashMap<Hash, ViewTarget>,
}

/// The contexts whose views run off the driver (see the module doc).
#[derive(Clone, Default)]
pub(crate) struct ViewTargets {
    open: Arc<RwLock<Option<Open>>>,
    running: Arc<AtomicUsize>,
}

/// Counts a running view until dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ViewTargets {
    /// Start serving views from `store` with `runtime`.
    pub(crate) fn open(&self, store: Arc<Store>, runtime: Arc<Runtime>) {
        *self.open.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Open { store, runtime, contexts: HashMap::new() });
    }

    pub(crate) fn insert(&self, context: Hash, target: ViewTarget) {
        if let Some(open) = self.open.write().unwrap_or_else(PoisonError::into_inner).as_mut() {
            open.contexts.insert(context, target);
        }
    }

    pub(crate) fn remove(&self, context: &Hash) {
        if let Some(open) = self.open.write().unwrap_or_else(PoisonError::into_inner).as_mut() {
            open.contexts.remove(context);
        }
    }

    /// Stop serving views and wait (at most [`VIEWS_DRAIN_MAX`]) for the
    /// running ones, which hold the store.
    pub(crate) async fn close(&self) {
        let _ = self.open.write().unwrap_or_else(PoisonError::into_inner).take();
        let deadline = Instant::now() + VIEWS_DRAIN_MAX;
        while self.running.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Run `method` off the driver if it is a view of an open context;
    /// `None` sends the call to the driver (mutations, unknown contexts and
    /// methods, which the driver answers with the right error).
    pub(crate) async fn call(&self, context: Hash, method: &str, args: &[u8]) -> Option<Result<CallReply, NodeError>> {
        let (store, runtime, target, running) = {
            let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
            let open = open.as_ref()?;
            let target = open.contexts.get(&context)?;
            let spec = target.app.manifest().method(method)?;
            if spec.kind != MethodKind::View {
                return None;
            }
            // Counted before the lock is released, so `close` waits for it.
            self.running.fetch_add(1, Ordering::SeqCst);
            (open.store.clone(), open.runtime.clone(), target.clone(), Running(self.running.clone()))
        };
        let method = method.to_owned();
        let args = args.to_vec();
        let run = tokio::task::spawn_blocking(move || {
            let _running = running;
            run_view(&store, &runtime, &target, context, &method, &args)
        });
        Some(run.await.unwrap_or_else(|error| Err(NodeError::View(format!("its thread failed: {error}")))))
    }
}

fn run_view(
    store: &Store,
    runtime: &Runtime,
    target: &ViewTarget,
    context: Hash,
    method: &str,
    args: &[u8],
) -> Result<CallReply, NodeError> {
    let snapshot = store.read_durable()?;
    let kv = snapshot.state_view(context)?;
    let now = crate::driver::now_ms();
    let outcome = runtime.execute(
        &target.app,
        ExecuteRequest {
            context_id: context,
            executor: &target.identity,
            start_hlc: Hlc::new(now, 0),
            kv: &kv,
            method,
            input: args,
            kind: MethodKind::View,
            event_author: None,
            text_lane: target.text_lane,
        },
    )?;
    for line in &outcome.logs {
        info!(target: "weft::app", %context, method, "{line}");
    }
    let root_hash = weft_state::root_hash(&kv)
        .map_err(|error| NodeError::View(format!("reading the root hash of {context}: {error}")))?;
    match outcome.result {
        CallResult::Ok(result) => Ok(CallReply { result, delta: None, root_hash }),
        CallResult::AppError(error) => Err(NodeError::App(error)),
    }
}
