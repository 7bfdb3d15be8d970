//! The host functions of ABI v1 (module [`weft_abi::HOST_MODULE`]), as
//! wasmtime linker definitions.
//!
//! Guarantees, for every function and whatever the guest passes:
//!
//! - every `(ptr, len)` is checked against the guest's current memory with
//!   overflow-checked arithmetic before any byte is touched; out of range is
//!   [`RuntimeError::OutOfBounds`] (a trap), never a host panic;
//! - every length is checked against its [`Limits`](crate::Limits) bound
//!   *before* the host allocates or copies anything;
//! - every call is counted against the host-call limit and charged fuel
//!   ([`HOST_CALL_FUEL`] plus [`HOST_BYTE_FUEL`] per byte moved), so no
//!   storm of host calls outlives the call's fuel;
//! - a failure is a trap carrying a [`RuntimeError`]; the call then ends and
//!   nothing of it is committed.
//!
//! `state_call` is the one asynchronous function: it posts the decoded
//! request to the call's mailbox and suspends the guest until the caller's
//! thread, which owns the state transaction, has put the reply there (see
//! the `call` module).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use wasmtime::{Caller, Linker, Memory};
use weft_abi::{GUEST_MEMORY, HOST_MODULE, RETURN_APP_ERROR, RETURN_OK, StateCall, StatusCode, host_fn};

use crate::call_data::{CallData, Event, StateOutcome};
use crate::error::RuntimeError;
use crate::limits::{HOST_BYTE_FUEL, HOST_CALL_FUEL, Limit, STATE_CALL_FUEL};

type HostResult<T> = Result<T, wasmtime::Error>;

/// A [`RuntimeError`] as a trap.
fn trap(error: RuntimeError) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

/// Define every host function in `linker`.
pub(crate) fn define(linker: &mut Linker<CallData>) -> Result<(), wasmtime::Error> {
    linker.func_wrap(HOST_MODULE, host_fn::INPUT, |mut caller: Caller<'_, CallData>, register: i64| {
        let len = caller.data().input.len();
        enter(&mut caller, len)?;
        let input = caller.data().input.clone();
        caller.data_mut().set_register(register as u64, input).map_err(trap)
    })?;
    linker.func_wrap(HOST_MODULE, host_fn::REGISTER_LEN, |mut caller: Caller<'_, CallData>, register: i64| {
        enter(&mut caller, 0)?;
        Ok(caller.data().register(register as u64).map_or(weft_abi::REGISTER_EMPTY, |bytes| bytes.len() as i64))
    })?;
    linker.func_wrap(HOST_MODULE, host_fn::READ_REGISTER, read_register)?;
    linker.func_wrap(HOST_MODULE, host_fn::VALUE_RETURN, value_return)?;
    linker.func_wrap(HOST_MODULE, host_fn::LOG_UTF8, log_utf8)?;
    linker.func_wrap(HOST_MODULE, host_fn::PANIC_UTF8, panic_utf8)?;
    linker.func_wrap(HOST_MODULE, host_fn::EMIT, emit)?;
    linker.func_wrap(HOST_MODULE, host_fn::CONTEXT_ID, |mut caller: Caller<'_, CallData>, register: i64| {
        enter(&mut caller, 32)?;
        let id = caller.data().facts.context_id.0.to_vec();
        caller.data_mut().set_register(register as u64, id).map_err(trap)
    })?;
    linker.func_wrap(HOST_MODULE, host_fn::EXECUTOR_ID, |mut caller: Caller<'_, CallData>, register: i64| {
        enter(&mut caller, 32)?;
        let key = caller.data().facts.executor.to_vec();
        caller.data_mut().set_register(register as u64, key).map_err(trap)
    })?;
    linker.func_wrap(HOST_MODULE, host_fn::EVENT_AUTHOR, |mut caller: Caller<'_, CallData>, register: i64| {
        enter(&mut caller, 32)?;
        let Some(author) = caller.data().facts.event_author else { return Ok(0i32) };
        caller.data_mut().set_register(register as u64, author.to_vec()).map_err(trap)?;
        Ok(1i32)
    })?;
    linker.func_wrap(HOST_MODULE, host_fn::TIME_NOW, |mut caller: Caller<'_, CallData>, register: i64| {
        enter(&mut caller, 12)?;
        let now = borsh::to_vec(&caller.data().facts.now).map_err(|e| trap(RuntimeError::Internal(e.to_string())))?;
        caller.data_mut().set_register(register as u64, now).map_err(trap)
    })?;
    linker.func_wrap(HOST_MODULE, host_fn::RANDOM_BYTES, random_bytes)?;
    linker.func_wrap_async(
        HOST_MODULE,
        host_fn::STATE_CALL,
        |caller: Caller<'_, CallData>, (ptr, len, register): (i64, i64, i64)| {
            Box::new(state_call(caller, ptr, len, register))
        },
    )?;
    Ok(())
}

/// Count a host call and charge its fuel for `bytes` moved.
fn enter(caller: &mut Caller<'_, CallData>, bytes: usize) -> HostResult<()> {
    caller.data_mut().count_host_call().map_err(trap)?;
    charge(caller, HOST_CALL_FUEL.saturating_add((bytes as u64).saturating_mul(HOST_BYTE_FUEL)))
}

fn charge(caller: &mut Caller<'_, CallData>, cost: u64) -> HostResult<()> {
    let fuel = caller.get_fuel()?;
    if fuel < cost {
        caller.set_fuel(0)?;
        return Err(trap(RuntimeError::FuelExhausted { fuel: caller.data().limits.fuel }));
    }
    caller.set_fuel(fuel - cost)?;
    Ok(())
}

/// The guest's exported memory.
fn memory(caller: &mut Caller<'_, CallData>) -> HostResult<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    // Only reached from a start function, before the call cached it.
    caller
        .get_export(GUEST_MEMORY)
        .and_then(|export| export.into_memory())
        .ok_or_else(|| trap(RuntimeError::MissingMemory))
}

/// The byte range `ptr..ptr + len` if it lies inside a memory of `size` bytes.
fn guest_range(
    function: &'static str,
    ptr: i64,
    len: i64,
    size: usize,
) -> Result<std::ops::Range<usize>, RuntimeError> {
    let (ptr, len) = (ptr as u64, len as u64);
    let out_of_bounds = RuntimeError::OutOfBounds { function, ptr, len, memory: size as u64 };
    let end = ptr.checked_add(len).ok_or_else(|| out_of_bounds.clone())?;
    if end > size as u64 {
        return Err(out_of_bounds);
    }
    // Both fit in usize: they are at most `size`.
    Ok(ptr as usize..end as usize)
}

/// Copy `len` bytes at `ptr` out of guest memory.
fn read_guest(caller: &mut Caller<'_, CallData>, function: &'static str, ptr: i64, len: i64) -> HostResult<Vec<u8>> {
    let memory = memory(caller)?;
    let data = memory.data(&*caller);
    let range = guest_range(function, ptr, len, data.len()).map_err(trap)?;
    Ok(data[range].to_vec())
}

/// Copy `bytes` into guest memory at `ptr`.
fn write_guest(caller: &mut Caller<'_, CallData>, function: &'static str, ptr: i64, bytes: &[u8]) -> HostResult<()> {
    let memory = memory(caller)?;
    let data = memory.data_mut(&mut *caller);
    let range = guest_range(function, ptr, bytes.len() as i64, data.len()).map_err(trap)?;
    data[range].copy_from_slice(bytes);
    Ok(())
}

/// Fail with `what` when the guest's `len` is negative or over its bound.
fn check_len(caller: &Caller<'_, CallData>, what: Limit, len: i64) -> HostResult<()> {
    caller.data().check_len(what, len as u64).map_err(trap)
}

fn read_register(mut caller: Caller<'_, CallData>, register: i64, ptr: i64) -> HostResult<i32> {
    let len = caller.data().register(register as u64).map_or(0, <[u8]>::len);
    enter(&mut caller, len)?;
    let memory = memory(&mut caller)?;
    let (data, call) = memory.data_and_store_mut(&mut caller);
    let Some(bytes) = call.register(register as u64) else { return Ok(0) };
    let range = guest_range(host_fn::READ_REGISTER, ptr, bytes.len() as i64, data.len()).map_err(trap)?;
    data[range].copy_from_slice(bytes);
    Ok(1)
}

fn value_return(mut caller: Caller<'_, CallData>, status: i64, ptr: i64, len: i64) -> HostResult<()> {
    enter(&mut caller, 0)?;
    let status = status as u64;
    if status != RETURN_OK && status != RETURN_APP_ERROR {
        return Err(trap(RuntimeError::BadReturnStatus(status)));
    }
    if caller.data().result.is_some() {
        return Err(trap(RuntimeError::ValueReturnedTwice));
    }
    check_len(&caller, Limit::OutputBytes, len)?;
    charge(&mut caller, (len as u64).saturating_mul(HOST_BYTE_FUEL))?;
    let bytes = read_guest(&mut caller, host_fn::VALUE_RETURN, ptr, len)?;
    caller.data_mut().set_result(status, bytes).map_err(trap)
}

fn log_utf8(mut caller: Caller<'_, CallData>, ptr: i64, len: i64) -> HostResult<()> {
    enter(&mut caller, 0)?;
    check_len(&caller, Limit::LogLineBytes, len)?;
    charge(&mut caller, (len as u64).saturating_mul(HOST_BYTE_FUEL))?;
    let bytes = read_guest(&mut caller, host_fn::LOG_UTF8, ptr, len)?;
    let line = String::from_utf8_lossy(&bytes).into_owned();
    caller.data_mut().push_log(line).map_err(trap)
}

fn panic_utf8(mut caller: Caller<'_, CallData>, ptr: i64, len: i64) -> HostResult<()> {
    enter(&mut caller, 0)?;
    let memory = memory(&mut caller)?;
    let data = memory.data(&caller);
    // The whole message must be in bounds; only its head is kept.
    let range = guest_range(host_fn::PANIC_UTF8, ptr, len, data.len()).map_err(trap)?;
    let keep = range.len().min(caller.data().limits.log_line_bytes);
    let message = String::from_utf8_lossy(&data[range.start..range.start + keep]).into_owned();
    Err(trap(RuntimeError::GuestPanic { message }))
}

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn emit(
    mut caller: Caller<'_, CallData>,
    kind_ptr: i64,
    kind_len: i64,
    data_ptr: i64,
    data_len: i64,
    handler_ptr: i64,
    handler_len: i64,
) -> HostResult<()> {
    enter(&mut caller, 0)?;
    let total = [kind_len, data_len, handler_len].iter().fold(0u64, |sum, len| sum.saturating_add(*len as u64));
    caller.data().check_event(total).map_err(trap)?;
    charge(&mut caller, total.saturating_mul(HOST_BYTE_FUEL))?;
    let kind = read_guest(&mut caller, host_fn::EMIT, kind_ptr, kind_len)?;
    let data = read_guest(&mut caller, host_fn::EMIT, data_ptr, data_len)?;
    let handler =
        if handler_len == 0 { None } else { Some(read_guest(&mut caller, host_fn::EMIT, handler_ptr, handler_len)?) };
    let kind =
        String::from_utf8(kind).map_err(|_| trap(RuntimeError::BadEvent { reason: "kind is not UTF-8".into() }))?;
    let handler = handler
        .map(|name| {
            let name = String::from_utf8(name)
                .map_err(|_| RuntimeError::BadEvent { reason: "handler name is not UTF-8".into() })?;
            // Other nodes will run it: it must be a handler of this app.
            match caller.data().manifest.method(&name) {
                Some(method) if method.kind == weft_abi::MethodKind::Handler => Ok(name),
                _ => Err(RuntimeError::BadEvent { reason: format!("`{name}` is not a handler of this app") }),
            }
        })
        .transpose()
        .map_err(trap)?;
    caller.data_mut().push_event(Event { kind, data, handler });
    Ok(())
}

fn random_bytes(mut caller: Caller<'_, CallData>, ptr: i64, len: i64) -> HostResult<()> {
    enter(&mut caller, 0)?;
    check_len(&caller, Limit::RandomBytes, len)?;
    charge(&mut caller, (len as u64).saturating_mul(HOST_BYTE_FUEL))?;
    // Bounds first, so a bad pointer costs no randomness.
    let memory = memory(&mut caller)?;
    guest_range(host_fn::RANDOM_BYTES, ptr, len, memory.data_size(&caller)).map_err(trap)?;
    let mut bytes = vec![0u8; len as usize];
    getrandom::fill(&mut bytes).map_err(|e| trap(RuntimeError::Random(e.to_string())))?;
    write_guest(&mut caller, host_fn::RANDOM_BYTES, ptr, &bytes)
}

async fn state_call(mut caller: Caller<'_, CallData>, ptr: i64, len: i64, register: i64) -> HostResult<i32> {
    enter(&mut caller, 0)?;
    caller.data_mut().count_state_call().map_err(trap)?;
    check_len(&caller, Limit::StateRequestBytes, len)?;
    charge(&mut caller, STATE_CALL_FUEL.saturating_add((len as u64).saturating_mul(HOST_BYTE_FUEL)))?;
    let bytes = read_guest(&mut caller, host_fn::STATE_CALL, ptr, len)?;
    let (status, reply) = match borsh::from_slice::<StateCall>(&bytes) {
        Err(error) => (StatusCode::BadRequest, format!("undecodable state call: {error}").into_bytes()),
        Ok(request) => {
            let mailbox = caller.data().mailbox.clone();
            post(&mailbox, request)?;
            match (ReplyWait { mailbox }).await? {
                StateOutcome::Reply(reply) => {
                    let bytes = borsh::to_vec(&reply).map_err(|e| trap(RuntimeError::Internal(e.to_string())))?;
                    (StatusCode::Ok, bytes)
                }
                StateOutcome::Refused(status, message) => (status, message.into_bytes()),
                StateOutcome::Fatal(error) => return Err(trap(error)),
            }
        }
    };
    caller.data().check_len(Limit::RegisterBytes, reply.len() as u64).map_err(trap)?;
    charge(&mut caller, (reply.len() as u64).saturating_mul(HOST_BYTE_FUEL))?;
    caller.data_mut().set_register(register as u64, reply).map_err(trap)?;
    Ok(status.code())
}

fn post(mailbox: &crate::call_data::SharedMailbox, request: StateCall) -> HostResult<()> {
    let mut slot = mailbox.lock().map_err(|_| trap(RuntimeError::Internal("state mailbox poisoned".into())))?;
    slot.reply = None;
    slot.request = Some(request);
    Ok(())
}

/// Resolves once the caller's thread has answered the posted request.
struct ReplyWait {
    mailbox: crate::call_data::SharedMailbox,
}

impl Future for ReplyWait {
    type Output = HostResult<StateOutcome>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        // No waker is needed: the caller's loop polls the call again right
        // after it has answered (see `call::drive`).
        match self.mailbox.lock() {
            Err(_) => Poll::Ready(Err(trap(RuntimeError::Internal("state mailbox poisoned".into())))),
            Ok(mut slot) => match slot.reply.take() {
                Some(outcome) => Poll::Ready(Ok(outcome)),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_range_rejects_overflow_negative_and_past_end() {
        assert_eq!(guest_range("f", 0, 10, 10), Ok(0..10));
        assert_eq!(guest_range("f", 10, 0, 10), Ok(10..10));
        assert!(guest_range("f", 11, 0, 10).is_err());
        assert!(guest_range("f", 5, 6, 10).is_err());
        assert!(guest_range("f", -1, 1, 10).is_err(), "negative ptr is a huge u64");
        assert!(guest_range("f", 1, -1, 10).is_err(), "negative len is a huge u64");
        assert!(guest_range("f", -1, -1, usize::MAX).is_err(), "ptr + len overflows u64");
    }
}
