//! The host functions of native builds, served from the thread's test
//! [`World`]. Each test thread has its own world, so tests run in parallel
//! without sharing state.

use std::cell::RefCell;

use weft_abi::{StateCall, StateReply, Timestamp};

use super::world::{EmittedEvent, World};
use crate::sys::HostError;

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::new());
}

/// Run `f` on this thread's world. Never nest: app code calls the host
/// functions below, which each borrow the world for their own duration only.
pub(crate) fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|world| f(&mut world.borrow_mut()))
}

/// Replace this thread's world with a fresh one.
pub(crate) fn reset_world() {
    WORLD.with(|world| *world.borrow_mut() = World::new());
}

pub(crate) fn input() -> Vec<u8> {
    with_world(|world| world.node().scope.input.clone())
}

pub(crate) fn value_return(status: u64, bytes: &[u8]) {
    with_world(|world| world.node().scope.returned = Some((status, bytes.to_vec())));
}

pub(crate) fn log(line: &str) {
    with_world(|world| world.node().logs.push(line.to_owned()));
}

pub(crate) fn report_panic(message: &str) {
    log(message);
}

pub(crate) fn emit(kind: &str, data: &[u8], handler: Option<&str>) {
    let event = EmittedEvent { kind: kind.to_owned(), data: data.to_vec(), handler: handler.map(str::to_owned) };
    if let Err(message) = with_world(|world| world.emit(event)) {
        crate::export::abort(&message);
    }
}

pub(crate) fn context_id() -> [u8; 32] {
    with_world(|world| world.context_id)
}

pub(crate) fn executor_id() -> [u8; 32] {
    with_world(|world| world.node().key.public_key().0)
}

pub(crate) fn event_author() -> Option<[u8; 32]> {
    with_world(|world| world.event_author)
}

pub(crate) fn time_now() -> Timestamp {
    with_world(World::time_now)
}

pub(crate) fn random_bytes(buf: &mut [u8]) {
    with_world(|world| world.random_bytes(buf));
}

pub(crate) fn state_call(call: &StateCall) -> Result<StateReply, HostError> {
    with_world(|world| world.state_call(call.clone())).map_err(|(status, message)| HostError {
        status: Some(status),
        code: status.code(),
        message,
    })
}
