//! The `weft` imports (see `weft_abi`) and their safe wrappers. The only
//! `unsafe` code of the SDK: each call passes pointers into buffers this
//! module owns for the duration of the call, with their exact lengths.

#![allow(unsafe_code)]

use weft_abi::borsh;
use weft_abi::{StateCall, StateReply, StatusCode, Timestamp};

use super::HostError;

/// The register every wrapper uses; it is read right after each host call.
const REGISTER: u64 = 0;

mod raw {
    #[link(wasm_import_module = "weft")]
    unsafe extern "C" {
        pub fn input(register: u64);
        pub fn register_len(register: u64) -> i64;
        pub fn read_register(register: u64, ptr: u64) -> i32;
        pub fn value_return(status: u64, ptr: u64, len: u64);
        pub fn log_utf8(ptr: u64, len: u64);
        pub fn panic_utf8(ptr: u64, len: u64);
        pub fn emit(kind_ptr: u64, kind_len: u64, data_ptr: u64, data_len: u64, handler_ptr: u64, handler_len: u64);
        pub fn context_id(register: u64);
        pub fn executor_id(register: u64);
        pub fn event_author(register: u64) -> i32;
        pub fn time_now(register: u64);
        pub fn random_bytes(ptr: u64, len: u64);
        pub fn state_call(req_ptr: u64, req_len: u64, register: u64) -> i32;
    }
}

fn ptr(bytes: &[u8]) -> u64 {
    bytes.as_ptr() as usize as u64
}

fn len(bytes: &[u8]) -> u64 {
    bytes.len() as u64
}

/// The bytes of `register`, if it holds any.
fn read(register: u64) -> Option<Vec<u8>> {
    // SAFETY: takes no pointer.
    let len = unsafe { raw::register_len(register) };
    let len = usize::try_from(len).ok()?;
    let mut buf = vec![0u8; len];
    if len == 0 {
        return Some(buf);
    }
    // SAFETY: `buf` is writable for exactly the register's length.
    let copied = unsafe { raw::read_register(register, buf.as_mut_ptr() as usize as u64) };
    (copied == 1).then_some(buf)
}

fn read_id(fill: unsafe extern "C" fn(u64)) -> [u8; 32] {
    // SAFETY: takes no pointer.
    unsafe { fill(REGISTER) };
    let mut id = [0u8; 32];
    if let Some(bytes) = read(REGISTER)
        && bytes.len() == 32
    {
        id.copy_from_slice(&bytes);
    }
    id
}

pub(crate) fn input() -> Vec<u8> {
    // SAFETY: takes no pointer.
    unsafe { raw::input(REGISTER) };
    read(REGISTER).unwrap_or_default()
}

pub(crate) fn value_return(status: u64, bytes: &[u8]) {
    // SAFETY: `bytes` is readable for its length.
    unsafe { raw::value_return(status, ptr(bytes), len(bytes)) }
}

pub(crate) fn log(line: &str) {
    // SAFETY: `line` is readable for its length.
    unsafe { raw::log_utf8(ptr(line.as_bytes()), len(line.as_bytes())) }
}

pub(crate) fn report_panic(message: &str) {
    // SAFETY: `message` is readable for its length. The host traps.
    unsafe { raw::panic_utf8(ptr(message.as_bytes()), len(message.as_bytes())) }
}

pub(crate) fn emit(kind: &str, data: &[u8], handler: Option<&str>) {
    let handler = handler.unwrap_or("").as_bytes();
    let kind = kind.as_bytes();
    // SAFETY: all three buffers are readable for their lengths.
    unsafe { raw::emit(ptr(kind), len(kind), ptr(data), len(data), ptr(handler), len(handler)) }
}

pub(crate) fn context_id() -> [u8; 32] {
    read_id(raw::context_id)
}

pub(crate) fn executor_id() -> [u8; 32] {
    read_id(raw::executor_id)
}

pub(crate) fn event_author() -> Option<[u8; 32]> {
    // SAFETY: takes no pointer.
    if unsafe { raw::event_author(REGISTER) } != 1 {
        return None;
    }
    let bytes = read(REGISTER)?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

pub(crate) fn time_now() -> Timestamp {
    // SAFETY: takes no pointer.
    unsafe { raw::time_now(REGISTER) };
    read(REGISTER).and_then(|bytes| borsh::from_slice(&bytes).ok()).unwrap_or_default()
}

pub(crate) fn random_bytes(buf: &mut [u8]) {
    // The host bounds one request; ask in pieces.
    for chunk in buf.chunks_mut(weft_abi::limits::RANDOM_BYTES_MAX) {
        // SAFETY: `chunk` is writable for its length.
        unsafe { raw::random_bytes(chunk.as_mut_ptr() as usize as u64, chunk.len() as u64) }
    }
}

pub(crate) fn state_call(call: &StateCall) -> Result<StateReply, HostError> {
    let request = borsh::to_vec(call).unwrap_or_default();
    // SAFETY: `request` is readable for its length.
    let code = unsafe { raw::state_call(ptr(&request), len(&request), REGISTER) };
    let reply = read(REGISTER).unwrap_or_default();
    if code == StatusCode::Ok.code() {
        return borsh::from_slice(&reply).map_err(|error| HostError {
            status: None,
            code,
            message: format!("undecodable state reply: {error}"),
        });
    }
    Err(HostError { status: StatusCode::from_code(code), code, message: String::from_utf8_lossy(&reply).into_owned() })
}
