//! The host functions as safe Rust calls. On wasm32 they are the `weft`
//! imports (module [`wasm`], the only `unsafe` code of the SDK); natively they
//! are served by the in-memory test host (`crate::native`).

use weft_abi::{StateCall, StateReply, StatusCode, Timestamp};

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::native::host::*;

/// A refused `state_call`: the host's status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostError {
    /// The status the host returned (`None` for a code this SDK does not know).
    pub status: Option<StatusCode>,
    /// The raw status code.
    pub code: i32,
    /// The host's message.
    pub message: String,
}

/// Signatures every implementation provides (checked at compile time by
/// this function never being called).
#[allow(dead_code)]
fn implementations_match() {
    let _: fn() -> Vec<u8> = input;
    let _: fn(u64, &[u8]) = value_return;
    let _: fn(&str) = log;
    let _: fn(&str) = report_panic;
    let _: fn(&str, &[u8], Option<&str>) = emit;
    let _: fn() -> [u8; 32] = context_id;
    let _: fn() -> [u8; 32] = executor_id;
    let _: fn() -> Option<[u8; 32]> = event_author;
    let _: fn() -> Timestamp = time_now;
    let _: fn(&mut [u8]) = random_bytes;
    let _: fn(&StateCall) -> Result<StateReply, HostError> = state_call;
}
