//! Why loading a module or executing a call failed. Each cause has its own
//! variant, so a caller (and a test) can tell fuel exhaustion from a memory
//! bomb from a bad pointer. Whatever the variant, a failed call commits
//! nothing: no actions, no events, the root hash unchanged.

use weft_abi::{ManifestError, MethodKind};
use weft_state::StateError;

use crate::limits::Limit;

/// A failed load or call.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// The engine could not be built from the configuration.
    #[error("engine configuration: {reason}")]
    Config {
        /// What wasmtime objected to.
        reason: String,
    },
    /// The bytes are not a well-formed wasm module (header or section framing).
    #[error("malformed wasm module: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The module has no `weft_manifest` custom section.
    #[error("module has no `{}` custom section", weft_abi::MANIFEST_SECTION)]
    MissingManifest,
    /// The manifest section does not decode (including an unknown ABI version).
    #[error("bad manifest: {0}")]
    BadManifest(ManifestError),
    /// wasmtime refused to compile the module (invalid wasm, unsupported feature).
    #[error("compile: {reason}")]
    Compile {
        /// wasmtime's message.
        reason: String,
    },
    /// The module imports something the host does not provide, or with the
    /// wrong signature.
    #[error("link: {reason}")]
    Link {
        /// wasmtime's message.
        reason: String,
    },
    /// The module does not export its linear memory as `memory`.
    #[error("module does not export a memory named `{}`", weft_abi::GUEST_MEMORY)]
    MissingMemory,
    /// The called method is not in the manifest.
    #[error("app `{app}` has no method `{method}`")]
    UnknownMethod {
        /// The app's name, from its manifest.
        app: String,
        /// The method asked for.
        method: String,
    },
    /// The manifest lists the method but the module does not export it as a
    /// function taking and returning nothing.
    #[error("method `{method}` is in the manifest but not exported as `fn()`")]
    MissingExport {
        /// The method.
        method: String,
    },
    /// The call's kind differs from the kind the manifest declares.
    #[error("method `{method}` is declared {declared:?}, called as {requested:?}")]
    KindMismatch {
        /// The method.
        method: String,
        /// Its kind in the manifest.
        declared: MethodKind,
        /// The kind of the request.
        requested: MethodKind,
    },
    /// The call used up its fuel (an infinite loop ends here).
    #[error("out of fuel after {fuel} units")]
    FuelExhausted {
        /// The call's fuel budget.
        fuel: u64,
    },
    /// The guest tried to grow its memory (or a table) past the limit.
    #[error("memory limit: {requested} bytes requested, limit {limit}")]
    MemoryLimit {
        /// The size asked for.
        requested: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The guest's wasm stack overflowed.
    #[error("wasm stack overflow")]
    StackOverflow,
    /// The guest aborted through `panic_utf8`.
    #[error("guest panicked: {message}")]
    GuestPanic {
        /// The guest's message (lossy UTF-8, truncated to the log-line limit).
        message: String,
    },
    /// The guest trapped (unreachable, division by zero, bad memory access…).
    #[error("guest trapped: {reason}")]
    Trap {
        /// wasmtime's description of the trap.
        reason: String,
    },
    /// A host function got a `(ptr, len)` outside the guest's memory.
    #[error("{function}: range {ptr}+{len} is outside guest memory of {memory} bytes")]
    OutOfBounds {
        /// The host function.
        function: &'static str,
        /// The pointer the guest passed.
        ptr: u64,
        /// The length the guest passed (or the length to write).
        len: u64,
        /// The guest memory's size.
        memory: u64,
    },
    /// A per-call bound was exceeded.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// Which bound.
        what: Limit,
        /// Its configured value.
        limit: u64,
    },
    /// `value_return` was called a second time.
    #[error("value_return called twice")]
    ValueReturnedTwice,
    /// `value_return` got a status other than 0 (ok) or 1 (app error).
    #[error("value_return with unknown status {0}")]
    BadReturnStatus(u64),
    /// `emit` got an event that cannot be delivered: a kind or handler name
    /// that is not UTF-8, or a handler the manifest does not list as one.
    #[error("bad event: {reason}")]
    BadEvent {
        /// What was wrong.
        reason: String,
    },
    /// A view (read-only) call tried to write state or emit an event.
    #[error("a view call tried to {what}")]
    ReadOnly {
        /// What it tried.
        what: &'static str,
    },
    /// The state engine failed: a store error while reading, or the commit
    /// of the call's transaction (e.g. poisoned by an earlier failed write).
    #[error("state: {0}")]
    State(StateError),
    /// The app was loaded by another [`crate::Runtime`] (another engine).
    #[error("app was compiled by another runtime")]
    ForeignApp,
    /// Every instance slot of the pooling allocator is in use.
    #[error("too many calls in flight (instance pool exhausted)")]
    Busy,
    /// The operating system's random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// Something that should not happen did (a wasmtime error of no known kind).
    #[error("internal: {0}")]
    Internal(String),
}
