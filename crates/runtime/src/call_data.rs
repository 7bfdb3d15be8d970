//! What one call's wasmtime store holds: its inputs, its registers, what the
//! guest produced so far, its counters against [`Limits`], and the mailbox
//! through which `state_call` reaches the state transaction.
//!
//! Every mutation here checks its bound first, so the host never allocates
//! more than the limits allow on behalf of a guest.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use weft_abi::{Manifest, StateCall, StateReply, StatusCode, Timestamp};
use weft_primitives::Hash;

use crate::error::RuntimeError;
use crate::limits::{Limit, Limits};

/// An event a call emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event kind (the event enum's variant name).
    pub kind: String,
    /// Its data (JSON of the variant's fields, from the SDK).
    pub data: Vec<u8>,
    /// The handler method other nodes run with `data`, if any.
    pub handler: Option<String>,
}

/// How a state operation ended, as the state side reports it to the guest side.
#[derive(Debug)]
pub(crate) enum StateOutcome {
    /// Success: the reply goes into the guest's register.
    Reply(StateReply),
    /// A refusal the guest may handle: the status is returned and the message
    /// goes into the register.
    Refused(StatusCode, String),
    /// A host-side failure (the store): the call ends with this error.
    Fatal(RuntimeError),
}

/// The hand-over point between the guest's `state_call` (on the call's
/// fiber) and the state transaction (on the caller's stack). At most one
/// request is in flight: the guest is suspended until its reply arrives.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    pub(crate) request: Option<StateCall>,
    pub(crate) reply: Option<StateOutcome>,
}

/// A shared [`Mailbox`].
pub(crate) type SharedMailbox = Arc<Mutex<Mailbox>>;

/// The fixed facts of a call the guest can ask for.
#[derive(Clone, Debug)]
pub(crate) struct CallFacts {
    pub(crate) context_id: Hash,
    pub(crate) executor: [u8; 32],
    /// In a handler call, the author of the delta whose event it handles.
    pub(crate) event_author: Option<[u8; 32]>,
    pub(crate) now: Timestamp,
    pub(crate) writes_allowed: bool,
}

/// Enforces the memory and table bounds of one store.
#[derive(Debug)]
pub(crate) struct GrowthLimiter {
    pub(crate) memory_bytes: usize,
    pub(crate) table_elements: usize,
}

impl wasmtime::ResourceLimiter for GrowthLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // Trapping (rather than failing the grow with -1) ends the call
            // at once with a typed error: a guest cannot usefully recover
            // from running out of memory, and a grow loop would otherwise
            // spin until its fuel runs out.
            return Err(wasmtime::Error::new(RuntimeError::MemoryLimit {
                requested: desired as u64,
                limit: self.memory_bytes as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
}

/// The data of one call's store.
pub(crate) struct CallData {
    pub(crate) limits: Limits,
    pub(crate) facts: CallFacts,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) input: Vec<u8>,
    /// The guest's exported memory, looked up once after instantiation.
    pub(crate) memory: Option<wasmtime::Memory>,
    pub(crate) limiter: GrowthLimiter,
    pub(crate) mailbox: SharedMailbox,
    registers: BTreeMap<u64, Vec<u8>>,
    register_bytes: usize,
    pub(crate) result: Option<(u64, Vec<u8>)>,
    pub(crate) logs: Vec<String>,
    pub(crate) events: Vec<Event>,
    events_bytes: usize,
    host_calls: usize,
    state_calls: usize,
}

impl CallData {
    pub(crate) fn new(
        limits: Limits,
        facts: CallFacts,
        manifest: Arc<Manifest>,
        input: Vec<u8>,
        mailbox: SharedMailbox,
        table_elements: usize,
    ) -> CallData {
        let limiter = GrowthLimiter { memory_bytes: limits.memory_bytes, table_elements };
        CallData {
            limits,
            facts,
            manifest,
            input,
            memory: None,
            limiter,
            mailbox,
            registers: BTreeMap::new(),
            register_bytes: 0,
            result: None,
            logs: Vec::new(),
            events: Vec::new(),
            events_bytes: 0,
            host_calls: 0,
            state_calls: 0,
        }
    }

    fn exceeded(&self, what: Limit) -> RuntimeError {
        RuntimeError::LimitExceeded { what, limit: what.bound(&self.limits) }
    }

    /// Count one host call against [`Limits::host_calls`].
    pub(crate) fn count_host_call(&mut self) -> Result<(), RuntimeError> {
        if self.host_calls >= self.limits.host_calls {
            return Err(self.exceeded(Limit::HostCalls));
        }
        self.host_calls += 1;
        Ok(())
    }

    /// Count one `state_call` against [`Limits::state_calls`].
    pub(crate) fn count_state_call(&mut self) -> Result<(), RuntimeError> {
        if self.state_calls >= self.limits.state_calls {
            return Err(self.exceeded(Limit::StateCalls));
        }
        self.state_calls += 1;
        Ok(())
    }

    /// Fail with `what` when `len` is over its bound.
    pub(crate) fn check_len(&self, what: Limit, len: u64) -> Result<(), RuntimeError> {
        if len > what.bound(&self.limits) { Err(self.exceeded(what)) } else { Ok(()) }
    }

    /// The bytes of `register`, if set.
    pub(crate) fn register(&self, register: u64) -> Option<&[u8]> {
        self.registers.get(&register).map(Vec::as_slice)
    }

    /// Put `bytes` into `register`, replacing what it held.
    pub(crate) fn set_register(&mut self, register: u64, bytes: Vec<u8>) -> Result<(), RuntimeError> {
        let old = self.registers.get(&register).map_or(0, Vec::len);
        if old == 0 && !self.registers.contains_key(&register) && self.registers.len() >= self.limits.registers {
            return Err(self.exceeded(Limit::Registers));
        }
        let total = self.register_bytes - old + bytes.len();
        if total > self.limits.register_bytes {
            return Err(self.exceeded(Limit::RegisterBytes));
        }
        self.register_bytes = total;
        self.registers.insert(register, bytes);
        Ok(())
    }

    /// Record the call's result; only once.
    pub(crate) fn set_result(&mut self, status: u64, bytes: Vec<u8>) -> Result<(), RuntimeError> {
        if self.result.is_some() {
            return Err(RuntimeError::ValueReturnedTwice);
        }
        self.result = Some((status, bytes));
        Ok(())
    }

    /// Record a log line (its length was checked before it was read).
    pub(crate) fn push_log(&mut self, line: String) -> Result<(), RuntimeError> {
        if self.logs.len() >= self.limits.log_lines {
            return Err(self.exceeded(Limit::LogLines));
        }
        self.logs.push(line);
        Ok(())
    }

    /// Check that one more event of `bytes` bytes fits.
    pub(crate) fn check_event(&self, bytes: u64) -> Result<(), RuntimeError> {
        if !self.facts.writes_allowed {
            return Err(RuntimeError::ReadOnly { what: "emit an event" });
        }
        if self.events.len() >= self.limits.events {
            return Err(self.exceeded(Limit::Events));
        }
        self.check_len(Limit::EventBytes, bytes)?;
        self.check_len(Limit::EventsTotalBytes, (self.events_bytes as u64).saturating_add(bytes))
    }

    /// Record an event whose size [`CallData::check_event`] accepted.
    pub(crate) fn push_event(&mut self, event: Event) {
        self.events_bytes += event.kind.len() + event.data.len() + event.handler.as_ref().map_or(0, String::len);
        self.events.push(event);
    }
}
