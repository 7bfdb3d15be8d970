//! Per-call bounds and the engine-wide settings derived from them.
//!
//! Every bound a guest can push against is a named constant here with its
//! default, and a field of [`Limits`] so a node can tune it. Exceeding any of
//! them ends the call with an error and commits nothing. The defaults of the
//! bounds both sides know about come from [`weft_abi::limits`], so an SDK-built
//! guest stays within them.

use weft_abi::limits as abi;

/// Default fuel (roughly: wasm instructions) one call may burn: about a
/// tenth of a second of compute on this class of machine.
pub const FUEL_PER_CALL_DEFAULT: u64 = 100_000_000;

/// Default size a guest's linear memory may reach (docs/design.md: 64 MiB).
pub const MEMORY_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// Default native stack wasm code may use before it traps with a stack
/// overflow.
pub const STACK_BYTES_DEFAULT: usize = 512 * 1024;

/// Default bytes of input (JSON arguments) one call may receive.
pub const INPUT_BYTES_DEFAULT: usize = abi::INPUT_BYTES_MAX;

/// Default bytes one call may return through `value_return`.
pub const OUTPUT_BYTES_DEFAULT: usize = abi::OUTPUT_BYTES_MAX;

/// Default log lines per call.
pub const LOG_LINES_DEFAULT: usize = abi::LOG_LINES_MAX;

/// Default bytes per log line and per panic message; longer ones are an error
/// (a panic message is truncated instead, so the panic itself is reported).
pub const LOG_LINE_BYTES_DEFAULT: usize = abi::LOG_LINE_BYTES_MAX;

/// Default events per call.
pub const EVENTS_DEFAULT: usize = abi::EVENTS_MAX;

/// Default bytes per event (kind + data + handler).
pub const EVENT_BYTES_DEFAULT: usize = abi::EVENT_BYTES_MAX;

/// Default total bytes of all events of one call (they travel in one delta,
/// whose plaintext is bounded at 1 MiB).
pub const EVENTS_TOTAL_BYTES_DEFAULT: usize = 1024 * 1024;

/// Default number of registers a call may hold at once.
pub const REGISTERS_DEFAULT: usize = abi::REGISTERS_MAX;

/// Default total bytes of all registers of a call at once.
pub const REGISTER_BYTES_DEFAULT: usize = abi::REGISTER_BYTES_MAX;

/// Default `state_call`s one call may make.
pub const STATE_CALLS_DEFAULT: usize = 10_000;

/// Default bytes of one borsh `StateCall` request (a value of up to
/// `weft_state::VALUE_BYTES_MAX`, a key, and framing).
pub const STATE_REQUEST_BYTES_DEFAULT: usize = 2 * 1024 * 1024;

/// Default host-function calls of any kind one call may make.
pub const HOST_CALLS_DEFAULT: usize = 100_000;

/// Default bytes one `random_bytes` call may fill.
pub const RANDOM_BYTES_DEFAULT: usize = abi::RANDOM_BYTES_MAX;

/// Fuel every host-function call costs on top of the guest's own
/// instructions, so a storm of cheap host calls still runs out of fuel.
pub const HOST_CALL_FUEL: u64 = 200;

/// Extra fuel every `state_call` costs (it reads the store).
pub const STATE_CALL_FUEL: u64 = 2_000;

/// Fuel per byte a host call moves across the boundary (either way).
pub const HOST_BYTE_FUEL: u64 = 1;

/// The bounds of one call. [`Limits::default`] uses the `*_DEFAULT` constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call; running out is [`crate::RuntimeError::FuelExhausted`].
    pub fuel: u64,
    /// Largest linear memory, in bytes (engine-wide with the pooling
    /// allocator: its slots are sized from it). Tables are bounded by
    /// [`crate::TABLE_ELEMENTS_MAX`].
    pub memory_bytes: usize,
    /// Largest wasm stack, in bytes (engine-wide: fixed when the
    /// [`crate::Runtime`] is built).
    pub stack_bytes: usize,
    /// Largest input.
    pub input_bytes: usize,
    /// Largest returned value.
    pub output_bytes: usize,
    /// Most log lines.
    pub log_lines: usize,
    /// Largest log line or panic message.
    pub log_line_bytes: usize,
    /// Most events.
    pub events: usize,
    /// Largest event.
    pub event_bytes: usize,
    /// Largest total of all events.
    pub events_total_bytes: usize,
    /// Most registers held at once.
    pub registers: usize,
    /// Largest total of all registers held at once.
    pub register_bytes: usize,
    /// Most `state_call`s.
    pub state_calls: usize,
    /// Largest `state_call` request.
    pub state_request_bytes: usize,
    /// Most host-function calls of any kind.
    pub host_calls: usize,
    /// Largest `random_bytes` request.
    pub random_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: FUEL_PER_CALL_DEFAULT,
            memory_bytes: MEMORY_BYTES_DEFAULT,
            stack_bytes: STACK_BYTES_DEFAULT,
            input_bytes: INPUT_BYTES_DEFAULT,
            output_bytes: OUTPUT_BYTES_DEFAULT,
            log_lines: LOG_LINES_DEFAULT,
            log_line_bytes: LOG_LINE_BYTES_DEFAULT,
            events: EVENTS_DEFAULT,
            event_bytes: EVENT_BYTES_DEFAULT,
            events_total_bytes: EVENTS_TOTAL_BYTES_DEFAULT,
            registers: REGISTERS_DEFAULT,
            register_bytes: REGISTER_BYTES_DEFAULT,
            state_calls: STATE_CALLS_DEFAULT,
            state_request_bytes: STATE_REQUEST_BYTES_DEFAULT,
            host_calls: HOST_CALLS_DEFAULT,
            random_bytes: RANDOM_BYTES_DEFAULT,
        }
    }
}

/// Which per-call bound was hit, for [`crate::RuntimeError::LimitExceeded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// [`Limits::input_bytes`].
    InputBytes,
    /// [`Limits::output_bytes`].
    OutputBytes,
    /// [`Limits::log_lines`].
    LogLines,
    /// [`Limits::log_line_bytes`].
    LogLineBytes,
    /// [`Limits::events`].
    Events,
    /// [`Limits::event_bytes`].
    EventBytes,
    /// [`Limits::events_total_bytes`].
    EventsTotalBytes,
    /// [`Limits::registers`].
    Registers,
    /// [`Limits::register_bytes`].
    RegisterBytes,
    /// [`Limits::state_calls`].
    StateCalls,
    /// [`Limits::state_request_bytes`].
    StateRequestBytes,
    /// [`Limits::host_calls`].
    HostCalls,
    /// [`Limits::random_bytes`].
    RandomBytes,
}

impl Limit {
    /// A short name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Limit::InputBytes => "input bytes",
            Limit::OutputBytes => "output bytes",
            Limit::LogLines => "log lines",
            Limit::LogLineBytes => "log line bytes",
            Limit::Events => "events",
            Limit::EventBytes => "event bytes",
            Limit::EventsTotalBytes => "total event bytes",
            Limit::Registers => "registers",
            Limit::RegisterBytes => "register bytes",
            Limit::StateCalls => "state calls",
            Limit::StateRequestBytes => "state request bytes",
            Limit::HostCalls => "host calls",
            Limit::RandomBytes => "random bytes",
        }
    }

    /// The configured bound of this kind in `limits`.
    pub fn bound(self, limits: &Limits) -> u64 {
        let bound = match self {
            Limit::InputBytes => limits.input_bytes,
            Limit::OutputBytes => limits.output_bytes,
            Limit::LogLines => limits.log_lines,
            Limit::LogLineBytes => limits.log_line_bytes,
            Limit::Events => limits.events,
            Limit::EventBytes => limits.event_bytes,
            Limit::EventsTotalBytes => limits.events_total_bytes,
            Limit::Registers => limits.registers,
            Limit::RegisterBytes => limits.register_bytes,
            Limit::StateCalls => limits.state_calls,
            Limit::StateRequestBytes => limits.state_request_bytes,
            Limit::HostCalls => limits.host_calls,
            Limit::RandomBytes => limits.random_bytes,
        };
        bound as u64
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
