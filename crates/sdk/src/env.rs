//! What an app can ask its host besides state: who is calling, in which
//! context, when, randomness, logging and events.

use crate::{AppEvent, sys};

/// The 32-byte id of the context the app runs in.
pub fn context_id() -> [u8; 32] {
    sys::context_id()
}

/// The 32-byte public key of the identity executing this call.
pub fn executor_id() -> [u8; 32] {
    sys::executor_id()
}

/// In an event handler: the 32-byte public key of the member whose delta
/// emitted the event being handled, so the app can decide whom to trust.
/// `None` in any other call (a client's call, `init`, a view).
pub fn event_author() -> Option<[u8; 32]> {
    sys::event_author()
}

/// The hybrid logical time of this call.
pub fn time_now() -> crate::Timestamp {
    sys::time_now()
}

/// Fill `buf` with random bytes from the host.
pub fn random_bytes(buf: &mut [u8]) {
    sys::random_bytes(buf);
}

/// Log a line (the host bounds count and size per call).
pub fn log(line: &str) {
    sys::log(line);
}

/// Emit `event`; with `handler`, every other node runs that handler method
/// with the event's data as arguments when it applies this call's delta.
/// Prefer the `emit!` macro.
pub fn emit<E: AppEvent + ?Sized>(event: &E, handler: Option<&str>) {
    sys::emit(event.kind(), &event.data(), handler);
}
