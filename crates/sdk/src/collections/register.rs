//! [`LwwRegister`]: one JSON value, last writer wins.

use std::borrow::Borrow;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_abi::{CollectionId, CrdtKind, StateCall};

use super::{from_json, handle, host_bytes, host_unit, to_json};

/// One value of type `T`; of concurrent writes, the one with the greatest
/// (HLC, author) stamp wins.
pub struct LwwRegister<T> {
    id: CollectionId,
    _types: PhantomData<fn() -> T>,
}

handle!(LwwRegister<T>, CrdtKind::LwwRegister);

impl<T: Serialize + DeserializeOwned> LwwRegister<T> {
    /// Set the value.
    pub fn set<W: Serialize + ?Sized>(&mut self, value: &W)
    where
        T: Borrow<W>,
    {
        host_unit(StateCall::RegisterSet { register: self.id, value: to_json(value) });
    }

    /// The value, if ever set.
    pub fn get(&self) -> Option<T> {
        host_bytes(StateCall::RegisterGet { register: self.id }).map(|bytes| from_json(&bytes))
    }
}
