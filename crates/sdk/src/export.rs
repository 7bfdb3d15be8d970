//! The glue generated exports call: read JSON arguments, return JSON results,
//! and turn failures into an aborted call with a clear message.

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_abi::{RETURN_APP_ERROR, RETURN_OK};

use crate::sys;

/// Start an export: on wasm32, install (once) the panic hook that reports
/// the panic message to the host before the call traps.
pub fn begin() {
    #[cfg(target_arch = "wasm32")]
    {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| std::panic::set_hook(Box::new(report_panic)));
    }
}

#[cfg(target_arch = "wasm32")]
fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info.payload_as_str().unwrap_or("panic");
    let message = match info.location() {
        Some(at) => format!("{payload} (at {}:{})", at.file(), at.line()),
        None => payload.to_owned(),
    };
    sys::report_panic(truncated(&message, weft_abi::limits::LOG_LINE_BYTES_MAX));
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    // A UTF-8 character is at most 4 bytes: at most 3 steps back.
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Abort the call with `message` (a panic: reported to the host on wasm32,
/// caught by `testing::call` natively). Nothing the call did is committed.
#[allow(clippy::panic)]
pub fn abort(message: &str) -> ! {
    panic!("{message}")
}

/// The call's arguments: a JSON object keyed by argument name (empty input
/// counts as `{}`).
pub fn args<T: DeserializeOwned>(method: &str) -> T {
    let input = sys::input();
    let input: &[u8] = if input.is_empty() { b"{}" } else { &input };
    match serde_json::from_slice(input) {
        Ok(args) => args,
        Err(error) => abort(&format!("invalid arguments for `{method}`: {error}")),
    }
}

fn json<T: Serialize + ?Sized>(value: &T, what: &str) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(error) => abort(&format!("cannot serialize {what}: {error}")),
    }
}

/// Return `value` as the call's JSON result.
pub fn return_value<T: Serialize + ?Sized>(value: &T) {
    sys::value_return(RETURN_OK, &json(value, "the result"));
}

/// Return `Ok` as the result, `Err` as the app's typed error.
pub fn return_result<T: Serialize, E: Serialize>(result: &Result<T, E>) {
    match result {
        Ok(value) => return_value(value),
        Err(error) => sys::value_return(RETURN_APP_ERROR, &json(error, "the app error")),
    }
}
