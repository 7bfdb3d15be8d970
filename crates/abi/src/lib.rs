//! The Weft guest/host ABI, version 1: the one written-down contract between an
//! application compiled to WebAssembly (the guest, built with `weft-sdk`) and the
//! node that runs it (the host, `weft-runtime`). Both sides use these types and
//! names, so they cannot drift.
//!
//! # Calling convention
//!
//! - Host functions are imported from the wasm module [`HOST_MODULE`] (`"weft"`);
//!   their names are the constants in [`host_fn`].
//! - Every pointer, length, register id and status in an import signature is an
//!   `i64` (a `u64` on the guest; wasm32 guests zero-extend their `u32`
//!   addresses), so the ABI is ready for wasm64. The host bounds-checks every
//!   `(ptr, len)` against the guest's exported memory `memory` ([`GUEST_MEMORY`]);
//!   out of bounds is a trap with a typed error, never a host panic.
//! - Data flows host→guest through **registers**: the host stores bytes under a
//!   numbered register (`u64` id), the guest asks `register_len(id)` (`-1` =
//!   empty) and copies them with `read_register(id, ptr)` (`1` = copied, `0` =
//!   empty). The guest allocates its own buffers; the host never calls into the
//!   guest allocator. Registers live for one call; writing a register replaces
//!   its bytes. See [`limits`] for the default bounds.
//! - Each exported app method is `extern "C" fn <name>()` with no parameters and
//!   no result. The guest reads its input (a JSON object keyed by argument
//!   name; empty input means no arguments, as `{}` does)
//!   with `input(register)` and finishes with `value_return(status, ptr, len)`,
//!   status [`RETURN_OK`] (`0`, the JSON result) or [`RETURN_APP_ERROR`] (`1`, the
//!   JSON of the app's typed error). A method that returns without calling
//!   `value_return` returned nothing (the host treats it as `Ok` with no bytes).
//!   A call commits its writes and events only when it returns [`RETURN_OK`];
//!   an app error, like a trap, commits nothing (an early `?` return must not
//!   leave half a change behind).
//!
//! # Host functions (module `weft`)
//!
//! | name | wasm signature | meaning |
//! |---|---|---|
//! | `input` | `(register: i64)` | the call's input bytes (JSON args) into `register` |
//! | `register_len` | `(register: i64) -> i64` | length of `register`, or `-1` if empty |
//! | `read_register` | `(register: i64, ptr: i64) -> i32` | copy `register` to guest memory; `1` ok, `0` empty |
//! | `value_return` | `(status: i64, ptr: i64, len: i64)` | the call's result; at most once per call |
//! | `log_utf8` | `(ptr: i64, len: i64)` | log one line (bounded count and size per call) |
//! | `panic_utf8` | `(ptr: i64, len: i64)` | abort the call with a message (traps; nothing is committed) |
//! | `emit` | `(kind_ptr, kind_len, data_ptr, data_len, handler_ptr, handler_len: i64)` | emit an event; `handler_len = 0` means no handler |
//! | `context_id` | `(register: i64)` | the 32-byte context id into `register` |
//! | `executor_id` | `(register: i64)` | the 32-byte public key of the executing identity into `register` |
//! | `event_author` | `(register: i64) -> i32` | in a handler call: the 32-byte public key of the author of the delta whose event it handles into `register`, returns `1`; in any other call returns `0` and leaves `register` alone |
//! | `time_now` | `(register: i64)` | borsh [`Timestamp`] (12 bytes) of this call into `register` |
//! | `random_bytes` | `(ptr: i64, len: i64)` | fill guest memory with random bytes (at most [`limits::RANDOM_BYTES_MAX`]) |
//! | `state_call` | `(req_ptr: i64, req_len: i64, register: i64) -> i32` | borsh [`StateCall`] in; on `0` the borsh [`StateReply`] is in `register`; on a negative [`StatusCode`] a UTF-8 error message is in `register` |
//!
//! # State
//!
//! Collections live in the host (`weft-state`); the guest holds only their
//! [`CollectionId`]s. The root collection is a [`CrdtKind::Map`] whose id
//! [`StateCall::RootId`] returns; nested collections are created with
//! [`StateCall::Create`] at `parent[key]` and found again, without a write, with
//! [`StateCall::ChildId`] (the id is a pure function of parent, key and kind).
//! Keys and elements are opaque bytes to the host (the SDK uses borsh); values
//! are opaque bytes too (the SDK uses JSON). Which reply each request gets is
//! written next to each [`StateCall`] variant; a write from a view method fails
//! with [`StatusCode::ReadOnly`].
//!
//! # Events
//!
//! An event is `(kind, data, handler)`: `kind` is the event enum's variant name,
//! `data` the JSON of the variant's fields, `handler` the optional name of a
//! [`MethodKind::Handler`] method that every other node runs with `data` as
//! its input when it applies the delta carrying the event.
//!
//! # Manifest
//!
//! Every app carries a custom section named [`MANIFEST_SECTION`]: a sequence of
//! records described in [`manifest`], decoded by [`Manifest::decode_section`].
//! The host rejects modules without one or with an `abi_version` other than
//! [`ABI_VERSION`], and rejects calls to methods the manifest does not list.
//! The [`MethodKind::Init`] method (at most one, found with [`Manifest::init`];
//! the SDK names it after the app's constructor, `init` by default) runs once
//! when a context is created; [`MethodKind::View`] methods run read-only.

#![no_std]

extern crate alloc;

pub mod manifest;
mod state;

pub use borsh;
pub use manifest::{EventSpec, Manifest, ManifestError, ManifestRecord, MethodKind, MethodSpec};
pub use state::{CollectionId, CrdtKind, StateCall, StateReply, StateValue, StatusCode, Storage, Timestamp};

/// The ABI version this crate describes; carried in every manifest.
pub const ABI_VERSION: u32 = 1;

/// The wasm module name the guest imports host functions from.
pub const HOST_MODULE: &str = "weft";

/// The name of the linear memory the guest must export.
pub const GUEST_MEMORY: &str = "memory";

/// The name of the custom section holding the app manifest.
pub const MANIFEST_SECTION: &str = "weft_manifest";

/// `value_return` status: the bytes are the method's JSON result.
pub const RETURN_OK: u64 = 0;

/// `value_return` status: the bytes are the JSON of the app's typed error.
pub const RETURN_APP_ERROR: u64 = 1;

/// `register_len` result for an empty register.
pub const REGISTER_EMPTY: i64 = -1;

/// Names of the host functions in module [`HOST_MODULE`].
pub mod host_fn {
    /// `(register: i64)`: the call's input into `register`.
    pub const INPUT: &str = "input";
    /// `(register: i64) -> i64`: a register's length or `-1`.
    pub const REGISTER_LEN: &str = "register_len";
    /// `(register: i64, ptr: i64) -> i32`: copy a register into guest memory.
    pub const READ_REGISTER: &str = "read_register";
    /// `(status: i64, ptr: i64, len: i64)`: the call's result.
    pub const VALUE_RETURN: &str = "value_return";
    /// `(ptr: i64, len: i64)`: log a UTF-8 line.
    pub const LOG_UTF8: &str = "log_utf8";
    /// `(ptr: i64, len: i64)`: abort the call with a UTF-8 message.
    pub const PANIC_UTF8: &str = "panic_utf8";
    /// `(kind_ptr, kind_len, data_ptr, data_len, handler_ptr, handler_len: i64)`: emit an event.
    pub const EMIT: &str = "emit";
    /// `(register: i64)`: the 32-byte context id into `register`.
    pub const CONTEXT_ID: &str = "context_id";
    /// `(register: i64)`: the executor's 32-byte public key into `register`.
    pub const EXECUTOR_ID: &str = "executor_id";
    /// `(register: i64) -> i32`: in a handler, the triggering delta's author
    /// (32 bytes) into `register` and `1`; elsewhere `0`.
    pub const EVENT_AUTHOR: &str = "event_author";
    /// `(register: i64)`: the borsh `Timestamp` of this call into `register`.
    pub const TIME_NOW: &str = "time_now";
    /// `(ptr: i64, len: i64)`: fill guest memory with random bytes.
    pub const RANDOM_BYTES: &str = "random_bytes";
    /// `(req_ptr: i64, req_len: i64, register: i64) -> i32`: a state operation.
    pub const STATE_CALL: &str = "state_call";

    /// Every host function name, for hosts that check a module's imports.
    pub const ALL: [&str; 13] = [
        INPUT,
        REGISTER_LEN,
        READ_REGISTER,
        VALUE_RETURN,
        LOG_UTF8,
        PANIC_UTF8,
        EMIT,
        CONTEXT_ID,
        EXECUTOR_ID,
        EVENT_AUTHOR,
        TIME_NOW,
        RANDOM_BYTES,
        STATE_CALL,
    ];
}

/// Default per-call bounds both sides agree on. A host may be configured with
/// other values; guests built with the SDK stay within these defaults.
pub mod limits {
    /// Distinct registers a call may hold at once.
    pub const REGISTERS_MAX: usize = 64;
    /// Total bytes held in all registers of a call at once.
    pub const REGISTER_BYTES_MAX: usize = 16 * 1024 * 1024;
    /// Bytes of input a call may receive.
    pub const INPUT_BYTES_MAX: usize = 4 * 1024 * 1024;
    /// Bytes a call may return through `value_return`.
    pub const OUTPUT_BYTES_MAX: usize = 4 * 1024 * 1024;
    /// Log lines per call.
    pub const LOG_LINES_MAX: usize = 256;
    /// Bytes per log line (and per panic message).
    pub const LOG_LINE_BYTES_MAX: usize = 4 * 1024;
    /// Events per call.
    pub const EVENTS_MAX: usize = 1024;
    /// Bytes per event (kind + data + handler).
    pub const EVENT_BYTES_MAX: usize = 256 * 1024;
    /// Bytes one `random_bytes` call may request.
    pub const RANDOM_BYTES_MAX: usize = 64 * 1024;
    /// Items per `MapEntries`/`SetIter` page; larger `limit`s are clamped to this.
    pub const PAGE_ITEMS_MAX: u32 = 1024;
    /// Bytes of a manifest section [`crate::Manifest::decode_section`] accepts.
    pub const MANIFEST_BYTES_MAX: usize = 1024 * 1024;
    /// Records in a manifest section.
    pub const MANIFEST_RECORDS_MAX: usize = 4096;
}
