//! Typed collections. Each is a thin handle holding a [`CollectionId`];
//! every operation is one `state_call` to the host, where the CRDT lives
//! (`weft-state`). Handles nest: a map's values may themselves be
//! collections (`Map<String, Counter>`, `Map<String, Map<u64, String>>`).
//!
//! Writes take `&mut self`, so a view (`&self`) cannot write through its
//! fields; a handle obtained from a view (say from `Map::get`) can still ask
//! to write, and the host refuses it (`ReadOnly`), aborting the call.

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_abi::{CollectionId, CrdtKind, StateCall, StateReply, StateValue, Storage};

use crate::export::abort;
use crate::sys;

mod counter;
mod map;
mod register;
mod set;
mod text;
mod vector;

pub use counter::Counter;
pub use map::{Map, MapIter};
pub use register::LwwRegister;
pub use set::{Set, SetIter};
pub use text::Text;
pub use vector::{Vector, VectorIter};

/// The most consecutive empty pages an iterator follows (a page can be
/// empty yet not last when the host skipped many removed entries).
pub const EMPTY_PAGES_MAX: usize = 4096;

/// A collection handle.
pub trait Collection: Sized {
    /// The CRDT behind it.
    const KIND: CrdtKind;
    /// The handle of the collection with this id.
    fn from_id(id: CollectionId) -> Self;
    /// Its id.
    fn id(&self) -> CollectionId;
}

/// A type a [`Map`] can hold: a plain value (JSON) or a nested collection.
pub trait MapValue: Sized {
    /// The value from what the host holds at a key.
    fn from_state(value: StateValue) -> Result<Self, String>;
}

impl<T: Serialize + DeserializeOwned> MapValue for T {
    fn from_state(value: StateValue) -> Result<Self, String> {
        match value {
            StateValue::Bytes(bytes) => serde_json::from_slice(&bytes).map_err(|error| error.to_string()),
            StateValue::Collection { kind, .. } => Err(format!("expected a plain value, found a {kind:?} collection")),
        }
    }
}

/// Implement the handle boilerplate for a collection type.
macro_rules! handle {
    ($name:ident $(<$($param:ident),*>)?, $kind:expr) => {
        impl$(<$($param),*>)? $crate::collections::Collection for $name$(<$($param),*>)? {
            const KIND: weft_abi::CrdtKind = $kind;
            fn from_id(id: weft_abi::CollectionId) -> Self {
                $name { id, _types: ::core::marker::PhantomData }
            }
            fn id(&self) -> weft_abi::CollectionId {
                self.id
            }
        }

        impl$(<$($param),*>)? $crate::collections::MapValue for $name$(<$($param),*>)? {
            fn from_state(value: weft_abi::StateValue) -> Result<Self, String> {
                $crate::collections::nested(value, $kind).map(<Self as $crate::collections::Collection>::from_id)
            }
        }

        impl$(<$($param),*>)? Clone for $name$(<$($param),*>)? {
            fn clone(&self) -> Self {
                $name { id: self.id, _types: ::core::marker::PhantomData }
            }
        }

        impl$(<$($param),*>)? ::core::fmt::Debug for $name$(<$($param),*>)? {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for byte in &self.id[..8] {
                    write!(f, "{byte:02x}")?;
                }
                write!(f, "…)")
            }
        }
    };
}
pub(crate) use handle;

/// The id of a nested collection of `kind`, from a map value.
pub(crate) fn nested(value: StateValue, kind: CrdtKind) -> Result<CollectionId, String> {
    match value {
        StateValue::Collection { id, kind: found } if found == kind => Ok(id),
        StateValue::Collection { kind: found, .. } => Err(format!("expected a {kind:?} collection, found a {found:?}")),
        StateValue::Bytes(_) => Err(format!("expected a {kind:?} collection, found a plain value")),
    }
}

/// Run a state call; a host error aborts the call with the host's message.
pub(crate) fn host(call: StateCall) -> StateReply {
    match sys::state_call(&call) {
        Ok(reply) => reply,
        Err(error) => {
            let status = error.status.map_or("unknown status", |status| status.name());
            abort(&format!("state error ({status}, {}): {}", error.code, error.message))
        }
    }
}

fn unexpected(reply: &StateReply, wanted: &str) -> ! {
    // Named by hand: a `Debug` of the reply would pull its formatting code
    // into every app for a message that only a broken host produces.
    let found = match reply {
        StateReply::Unit => "nothing",
        StateReply::Id(_) => "an id",
        StateReply::Bool(_) => "a bool",
        StateReply::U64(_) => "a count",
        StateReply::I128(_) => "a counter value",
        StateReply::Bytes(_) => "bytes",
        StateReply::Value(_) => "a map value",
        StateReply::Entries { .. } => "map entries",
        StateReply::Elements { .. } => "set elements",
        StateReply::Text(_) => "text",
    };
    abort(&format!("host replied with {found} where {wanted} was expected"))
}

pub(crate) fn host_unit(call: StateCall) {
    match host(call) {
        StateReply::Unit => {}
        other => unexpected(&other, "nothing"),
    }
}

pub(crate) fn host_id(call: StateCall) -> CollectionId {
    match host(call) {
        StateReply::Id(id) => id,
        other => unexpected(&other, "an id"),
    }
}

pub(crate) fn host_bool(call: StateCall) -> bool {
    match host(call) {
        StateReply::Bool(answer) => answer,
        other => unexpected(&other, "a bool"),
    }
}

pub(crate) fn host_u64(call: StateCall) -> u64 {
    match host(call) {
        StateReply::U64(count) => count,
        other => unexpected(&other, "a count"),
    }
}

pub(crate) fn host_bytes(call: StateCall) -> Option<Vec<u8>> {
    match host(call) {
        StateReply::Bytes(bytes) => bytes,
        other => unexpected(&other, "bytes"),
    }
}

/// `value` as the JSON the host stores.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(error) => abort(&format!("cannot serialize a value: {error}")),
    }
}

/// A stored JSON value.
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> T {
    match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => abort(&format!("stored value does not decode as {}: {error}", std::any::type_name::<T>())),
    }
}

/// The root map's id.
pub fn root_id() -> CollectionId {
    host_id(StateCall::RootId)
}

/// The `T` collection at `parent[key]` (public storage): created if absent
/// when `create`, else only located (no write).
pub fn child<T: Collection>(parent: CollectionId, key: &[u8], create: bool) -> T {
    let (key, kind, storage) = (key.to_vec(), T::KIND, Storage::Public);
    let call = if create {
        StateCall::Create { parent, key, kind, storage }
    } else {
        StateCall::ChildId { parent, key, kind, storage }
    };
    T::from_id(host_id(call))
}
