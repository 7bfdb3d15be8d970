//! [`Vector`]: an ordered list of JSON values.

use std::borrow::Borrow;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_abi::{CollectionId, CrdtKind, StateCall};

use super::{from_json, handle, host_bytes, host_u64, host_unit, to_json};

/// A list of `T`; concurrent pushes are ordered by their stamps.
pub struct Vector<T> {
    id: CollectionId,
    _types: PhantomData<fn() -> T>,
}

handle!(Vector<T>, CrdtKind::Vector);

impl<T: Serialize + DeserializeOwned> Vector<T> {
    /// Append `value`.
    pub fn push<W: Serialize + ?Sized>(&mut self, value: &W)
    where
        T: Borrow<W>,
    {
        host_unit(StateCall::VectorPush { vector: self.id, value: to_json(value) });
    }

    /// The value at `index`.
    pub fn get(&self, index: u64) -> Option<T> {
        host_bytes(StateCall::VectorGet { vector: self.id, index }).map(|bytes| from_json(&bytes))
    }

    /// Replace the value at `index` (aborts the call past the end).
    pub fn set<W: Serialize + ?Sized>(&mut self, index: u64, value: &W)
    where
        T: Borrow<W>,
    {
        host_unit(StateCall::VectorSet { vector: self.id, index, value: to_json(value) });
    }

    /// Remove the value at `index` (aborts the call past the end).
    pub fn remove(&mut self, index: u64) {
        host_unit(StateCall::VectorRemove { vector: self.id, index });
    }

    /// Remove and return the last value.
    pub fn pop(&mut self) -> Option<T> {
        let last = self.len().checked_sub(1)?;
        let value = self.get(last);
        self.remove(last);
        value
    }

    /// The number of values.
    pub fn len(&self) -> u64 {
        host_u64(StateCall::VectorLen { vector: self.id })
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values in order (one host call each).
    pub fn iter(&self) -> VectorIter<'_, T> {
        VectorIter { vector: self, next: 0, len: self.len() }
    }

    /// Every value, in order.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }
}

/// The values of a [`Vector`], in order.
pub struct VectorIter<'a, T> {
    vector: &'a Vector<T>,
    next: u64,
    len: u64,
}

impl<T: Serialize + DeserializeOwned> Iterator for VectorIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next >= self.len {
            return None;
        }
        self.next += 1;
        self.vector.get(self.next - 1)
    }
}
