//! Executing one method call.
//!
//! A call gets a fresh wasmtime store (its own fuel, memory limiter,
//! registers and counters) and a fresh [`StateTxn`] over the caller's state
//! reader: a write overlay that nothing outside sees until the caller
//! commits the returned writes. The guest runs on a wasmtime fiber; each
//! `state_call` suspends it, and [`drive`] (on the caller's stack, which
//! owns the transaction) executes the request and resumes the guest. That is
//! how a borrowed transaction serves a store whose data must be `'static`,
//! without unsafe code.
//!
//! Guarantees: `Ok(Outcome)` with [`CallResult::Ok`] carries the whole
//! commit (actions, events, writes, new root hash); with
//! [`CallResult::AppError`] (the method returned its typed error) and for
//! views it carries nothing to commit and the current root hash. Any `Err`
//! (trap, panic, fuel, limits, bad pointers, store failure) returns nothing
//! to commit: the transaction is dropped.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use wasmtime::{Engine, Store, Trap};
use weft_abi::{GUEST_MEMORY, MethodKind, RETURN_APP_ERROR, Timestamp};
use weft_primitives::kv::{KvRead, WriteSet};
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_state::{Action, StateTxn};

use crate::app::App;
use crate::call_data::{CallData, CallFacts, Event, Mailbox, SharedMailbox};
use crate::engine::TABLE_ELEMENTS_MAX;
use crate::error::RuntimeError;
use crate::limits::{Limit, Limits};
use crate::state_ops::StateOps;

/// Polls in a row that bring no state request before a suspended call is
/// declared stuck (nothing but `state_call` ever suspends a guest).
const IDLE_POLLS_MAX: u32 = 16;

/// One method call to execute.
pub struct ExecuteRequest<'a, K: KvRead + ?Sized> {
    /// The context the call runs in (the guest's `context_id`).
    pub context_id: Hash,
    /// The identity executing the call: it signs user-owned writes, and its
    /// public key is the guest's `executor_id`.
    pub executor: &'a SigningKey,
    /// The call's time (the guest's `time_now`); the call's actions are
    /// stamped from it on, one logical tick each.
    pub start_hlc: Hlc,
    /// The context's state as of the call's start.
    pub kv: &'a K,
    /// The method to call; it must be in the manifest.
    pub method: &'a str,
    /// The input (JSON arguments).
    pub input: &'a [u8],
    /// The kind of call; it must match the manifest.
    pub kind: MethodKind,
    /// For a [`MethodKind::Handler`] call, the author of the delta whose
    /// event it handles (the guest's `event_author`); `None` otherwise.
    pub event_author: Option<PublicKey>,
    /// The lane the executing node numbers its text items in
    /// ([`weft_state::device_lane`] of its peer id).
    pub text_lane: u32,
}

/// What the method returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// Its result (JSON; empty when it returned nothing).
    Ok(Vec<u8>),
    /// Its typed error, as JSON. Nothing of the call is committed.
    AppError(Vec<u8>),
}

/// A finished call: what to commit, and what it returned.
#[derive(Debug)]
pub struct Outcome {
    /// The method's result.
    pub result: CallResult,
    /// The actions to put in the delta (empty for views and app errors).
    pub actions: Vec<Action>,
    /// The events to put in the delta (empty for views and app errors).
    pub events: Vec<Event>,
    /// The root hash once `writes` are applied (the current one when there
    /// is nothing to commit).
    pub root_hash: Hash,
    /// The state rows to commit atomically with the delta.
    pub writes: WriteSet,
    /// The last stamp the actions used (feed it to the node's clock).
    pub last_hlc: Option<Hlc>,
    /// The guest's log lines.
    pub logs: Vec<String>,
    /// Fuel the call burned (instantiation included).
    pub fuel_used: u64,
}

impl Outcome {
    /// Whether there is anything to commit.
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty() || !self.events.is_empty()
    }
}

/// Run `request` on `app`.
pub(crate) fn execute<K: KvRead + ?Sized>(
    engine: &Engine,
    limits: &Limits,
    app: &App,
    request: ExecuteRequest<'_, K>,
) -> Result<Outcome, RuntimeError> {
    let manifest = app.manifest();
    let method = manifest
        .method(request.method)
        .ok_or_else(|| RuntimeError::UnknownMethod { app: manifest.name.clone(), method: request.method.to_owned() })?;
    if method.kind != request.kind {
        return Err(RuntimeError::KindMismatch {
            method: method.name.clone(),
            declared: method.kind,
            requested: request.kind,
        });
    }
    if request.input.len() > limits.input_bytes {
        return Err(RuntimeError::LimitExceeded { what: Limit::InputBytes, limit: limits.input_bytes as u64 });
    }
    let writes_allowed = request.kind.writes();
    let facts = CallFacts {
        context_id: request.context_id,
        executor: request.executor.public_key().0,
        event_author: request.event_author.filter(|_| request.kind == MethodKind::Handler).map(|key| key.0),
        now: Timestamp { wall_ms: request.start_hlc.wall_ms, counter: request.start_hlc.counter },
        writes_allowed,
    };
    let mailbox: SharedMailbox = Arc::new(Mutex::new(Mailbox::default()));
    let data = CallData::new(
        limits.clone(),
        facts,
        app.shared_manifest(),
        request.input.to_vec(),
        Arc::clone(&mailbox),
        TABLE_ELEMENTS_MAX,
    );
    let mut store = Store::new(engine, data);
    store.limiter(|data| &mut data.limiter);
    store.set_fuel(limits.fuel).map_err(|e| call_error(e, limits))?;

    let mut txn = if writes_allowed {
        StateTxn::new(request.kv, request.context_id, request.executor, request.start_hlc)
            .with_text_lane(request.text_lane)
    } else {
        StateTxn::read_only(request.kv)
    };
    let mut ops = StateOps::new(&mut txn, writes_allowed);
    let instance =
        drive(app.pre().instantiate_async(&mut store), &mailbox, &mut ops).map_err(|e| call_error(e, limits))?;
    let memory = instance.get_memory(&mut store, GUEST_MEMORY).ok_or(RuntimeError::MissingMemory)?;
    store.data_mut().memory = Some(memory);
    let func = instance
        .get_typed_func::<(), ()>(&mut store, request.method)
        .map_err(|_| RuntimeError::MissingExport { method: request.method.to_owned() })?;
    drive(func.call_async(&mut store, ()), &mailbox, &mut ops).map_err(|e| call_error(e, limits))?;
    if ops.write_refused {
        return Err(RuntimeError::ReadOnly { what: "write state" });
    }
    let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let data = store.into_data();
    let (status, value) = data.result.unwrap_or((weft_abi::RETURN_OK, Vec::new()));
    let unchanged = |result: CallResult, logs: Vec<String>| -> Result<Outcome, RuntimeError> {
        Ok(Outcome {
            result,
            actions: Vec::new(),
            events: Vec::new(),
            root_hash: weft_state::root_hash(request.kv).map_err(RuntimeError::State)?,
            writes: WriteSet::new(),
            last_hlc: None,
            logs,
            fuel_used,
        })
    };
    if status == RETURN_APP_ERROR {
        return unchanged(CallResult::AppError(value), data.logs);
    }
    if !writes_allowed {
        return unchanged(CallResult::Ok(value), data.logs);
    }
    let commit = txn.commit().map_err(RuntimeError::State)?;
    Ok(Outcome {
        result: CallResult::Ok(value),
        actions: commit.actions,
        events: data.events,
        root_hash: commit.root_hash,
        writes: commit.writes,
        last_hlc: commit.last_hlc,
        logs: data.logs,
        fuel_used,
    })
}

/// Poll `future` (an instantiation or a call) to completion, executing each
/// state request it suspends on.
fn drive<T, K: KvRead + ?Sized>(
    future: impl Future<Output = wasmtime::Result<T>>,
    mailbox: &SharedMailbox,
    ops: &mut StateOps<'_, '_, K>,
) -> wasmtime::Result<T> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut idle = 0;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let request = lock(mailbox)?.request.take();
        match request {
            Some(call) => {
                let outcome = ops.execute(call);
                lock(mailbox)?.reply = Some(outcome);
                idle = 0;
            }
            None => {
                idle += 1;
                if idle >= IDLE_POLLS_MAX {
                    return Err(wasmtime::Error::new(RuntimeError::Internal(
                        "guest suspended without a state request".into(),
                    )));
                }
            }
        }
    }
}

fn lock(mailbox: &SharedMailbox) -> wasmtime::Result<std::sync::MutexGuard<'_, Mailbox>> {
    mailbox.lock().map_err(|_| wasmtime::Error::new(RuntimeError::Internal("state mailbox poisoned".into())))
}

/// The typed cause of a failed instantiation or call.
fn call_error(error: wasmtime::Error, limits: &Limits) -> RuntimeError {
    if let Some(ours) = error.downcast_ref::<RuntimeError>() {
        return ours.clone();
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => RuntimeError::FuelExhausted { fuel: limits.fuel },
            Trap::StackOverflow => RuntimeError::StackOverflow,
            other => RuntimeError::Trap { reason: other.to_string() },
        };
    }
    if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return RuntimeError::Busy;
    }
    RuntimeError::Internal(format!("{error:#}"))
}
