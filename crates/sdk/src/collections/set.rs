//! [`Set`]: elements (see [`crate::Key`]), iterated in order.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::marker::PhantomData;

use weft_abi::limits::PAGE_ITEMS_MAX;
use weft_abi::{CollectionId, CrdtKind, StateCall, StateReply};

use super::{EMPTY_PAGES_MAX, handle, host, host_bool, host_u64, unexpected};
use crate::export::abort;
use crate::key::{EncodeKey, Key};

/// A set of `T` (add/remove, last writer wins per element).
pub struct Set<T> {
    id: CollectionId,
    _types: PhantomData<fn() -> T>,
}

handle!(Set<T>, CrdtKind::Set);

impl<T: Key> Set<T> {
    /// Add `element`; whether it was absent.
    pub fn insert<Q: EncodeKey + ?Sized>(&mut self, element: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        host_bool(StateCall::SetAdd { set: self.id, element: element.encode_key() })
    }

    /// Remove `element`; whether it was present.
    pub fn remove<Q: EncodeKey + ?Sized>(&mut self, element: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        host_bool(StateCall::SetRemove { set: self.id, element: element.encode_key() })
    }

    /// Whether `element` is present.
    pub fn contains<Q: EncodeKey + ?Sized>(&self, element: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        host_bool(StateCall::SetContains { set: self.id, element: element.encode_key() })
    }

    /// The number of elements.
    pub fn len(&self) -> u64 {
        host_u64(StateCall::SetLen { set: self.id })
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in order, fetched a page at a time.
    pub fn iter(&self) -> SetIter<T> {
        SetIter { set: self.id, after: None, buffer: VecDeque::new(), done: false, _types: PhantomData }
    }

    /// Every element, in order.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }
}

/// The elements of a [`Set`], in order.
pub struct SetIter<T> {
    set: CollectionId,
    after: Option<Vec<u8>>,
    buffer: VecDeque<Vec<u8>>,
    done: bool,
    _types: PhantomData<fn() -> T>,
}

impl<T: Key> Iterator for SetIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        for _ in 0..EMPTY_PAGES_MAX {
            if let Some(element) = self.buffer.pop_front() {
                let Some(element) = T::decode_key(&element) else {
                    abort(&format!("set element does not decode as {}", std::any::type_name::<T>()))
                };
                return Some(element);
            }
            if self.done {
                return None;
            }
            match host(StateCall::SetIter { set: self.set, after: self.after.take(), limit: PAGE_ITEMS_MAX }) {
                StateReply::Elements { items, next } => {
                    self.buffer.extend(items);
                    self.done = next.is_none();
                    self.after = next;
                }
                other => unexpected(&other, "set elements"),
            }
        }
        abort("set iteration made no progress")
    }
}
