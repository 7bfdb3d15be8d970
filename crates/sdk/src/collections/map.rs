//! [`Map`]: keys (see [`crate::Key`]) to plain JSON values or nested collections.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_abi::limits::PAGE_ITEMS_MAX;
use weft_abi::{CollectionId, CrdtKind, StateCall, StateReply, StateValue, Storage};

use super::{Collection, EMPTY_PAGES_MAX, MapValue, handle, host, host_bool, host_id, host_u64, to_json, unexpected};
use crate::export::abort;
use crate::key::{EncodeKey, Key};

/// A map from `K` to `V`, iterated in key order. `V` is a plain value
/// (`insert`) or a nested collection (`entry`).
pub struct Map<K, V> {
    id: CollectionId,
    _types: PhantomData<fn() -> (K, V)>,
}

handle!(Map<K, V>, CrdtKind::Map);

fn decode<V: MapValue>(value: StateValue) -> V {
    match V::from_state(value) {
        Ok(value) => value,
        Err(error) => abort(&format!("map value: {error}")),
    }
}

impl<K: Key, V: MapValue> Map<K, V> {
    /// The value at `key`.
    pub fn get<Q: EncodeKey + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        match host(StateCall::MapGet { map: self.id, key: key.encode_key() }) {
            StateReply::Value(value) => value.map(decode),
            other => unexpected(&other, "a map value"),
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: EncodeKey + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        matches!(host(StateCall::MapGet { map: self.id, key: key.encode_key() }), StateReply::Value(Some(_)))
    }

    /// Remove `key`; whether it had a value.
    pub fn remove<Q: EncodeKey + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        host_bool(StateCall::MapRemove { map: self.id, key: key.encode_key() })
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        host_u64(StateCall::MapLen { map: self.id })
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in key order, fetched a page at a time.
    pub fn iter(&self) -> MapIter<K, V> {
        MapIter { map: self.id, after: None, buffer: VecDeque::new(), done: false, _types: PhantomData }
    }

    /// The entries after `key` (not including it), in key order, fetched a
    /// page at a time: how a view reads a large map in slices.
    pub fn iter_after<Q: EncodeKey + ?Sized>(&self, key: &Q) -> MapIter<K, V>
    where
        K: Borrow<Q>,
    {
        MapIter {
            map: self.id,
            after: Some(key.encode_key()),
            buffer: VecDeque::new(),
            done: false,
            _types: PhantomData,
        }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = K> {
        self.iter().map(|(key, _)| key)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Vec<(K, V)> {
        self.iter().collect()
    }
}

impl<K: Key, V: Serialize + DeserializeOwned> Map<K, V> {
    /// Set `key` to `value`.
    pub fn insert<Q, W>(&mut self, key: &Q, value: &W)
    where
        Q: EncodeKey + ?Sized,
        W: Serialize + ?Sized,
        K: Borrow<Q>,
        V: Borrow<W>,
    {
        super::host_unit(StateCall::MapInsert { map: self.id, key: key.encode_key(), value: to_json(value) });
    }
}

impl<K: Key, V: Collection + MapValue> Map<K, V> {
    /// The collection at `key`, created if absent.
    pub fn entry<Q: EncodeKey + ?Sized>(&mut self, key: &Q) -> V
    where
        K: Borrow<Q>,
    {
        let key = key.encode_key();
        if let StateReply::Value(Some(StateValue::Collection { id, kind })) =
            host(StateCall::MapGet { map: self.id, key: key.clone() })
            && kind == V::KIND
        {
            return V::from_id(id);
        }
        V::from_id(host_id(StateCall::Create { parent: self.id, key, kind: V::KIND, storage: Storage::Public }))
    }
}

/// The entries of a [`Map`], in key order.
pub struct MapIter<K, V> {
    map: CollectionId,
    after: Option<Vec<u8>>,
    buffer: VecDeque<(Vec<u8>, StateValue)>,
    done: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Key, V: MapValue> Iterator for MapIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        for _ in 0..EMPTY_PAGES_MAX {
            if let Some((key, value)) = self.buffer.pop_front() {
                let Some(key) = K::decode_key(&key) else {
                    abort(&format!("map key does not decode as {}", std::any::type_name::<K>()))
                };
                return Some((key, decode(value)));
            }
            if self.done {
                return None;
            }
            let call = StateCall::MapEntries { map: self.map, after: self.after.take(), limit: PAGE_ITEMS_MAX };
            match host(call) {
                StateReply::Entries { items, next } => {
                    self.buffer.extend(items);
                    self.done = next.is_none();
                    self.after = next;
                }
                other => unexpected(&other, "map entries"),
            }
        }
        abort("map iteration made no progress")
    }
}
