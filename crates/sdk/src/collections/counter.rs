//! [`Counter`]: a positive-negative counter.

use std::marker::PhantomData;

use weft_abi::{CollectionId, CrdtKind, StateCall, StateReply};

use super::{handle, host, host_unit, unexpected};

/// A counter every node can increment and decrement concurrently; its value
/// is the sum of everyone's changes.
pub struct Counter {
    id: CollectionId,
    _types: PhantomData<()>,
}

handle!(Counter, CrdtKind::PnCounter);

impl Counter {
    /// Add `delta` (negative to decrease).
    pub fn add(&mut self, delta: i64) {
        host_unit(StateCall::CounterAdd { counter: self.id, delta });
    }

    /// Add one.
    pub fn increment(&mut self) {
        self.add(1);
    }

    /// Subtract one.
    pub fn decrement(&mut self) {
        self.add(-1);
    }

    /// The current value.
    pub fn value(&self) -> i128 {
        match host(StateCall::CounterValue { counter: self.id }) {
            StateReply::I128(value) => value,
            other => unexpected(&other, "a counter value"),
        }
    }
}
