//! One [`StateCall`] run against a `weft-state` transaction, and the mapping
//! of state errors to ABI status codes (the same mapping the runtime uses).

use weft_abi::{CrdtKind, StateCall, StateReply, StateValue, StatusCode, Storage};
use weft_primitives::kv::KvRead;
use weft_primitives::{Hash, PublicKey};
use weft_state::{StateError, StateTxn, StorageKind, Value, child_id, root_id};

/// `weft-abi`'s kind as `weft-state`'s.
pub(crate) fn state_kind(kind: CrdtKind) -> weft_state::CrdtKind {
    match kind {
        CrdtKind::LwwRegister => weft_state::CrdtKind::LwwRegister,
        CrdtKind::GCounter => weft_state::CrdtKind::GCounter,
        CrdtKind::PnCounter => weft_state::CrdtKind::PnCounter,
        CrdtKind::Map => weft_state::CrdtKind::Map,
        CrdtKind::Set => weft_state::CrdtKind::Set,
        CrdtKind::Vector => weft_state::CrdtKind::Vector,
        CrdtKind::Text => weft_state::CrdtKind::Text,
    }
}

fn abi_kind(kind: weft_state::CrdtKind) -> CrdtKind {
    match kind {
        weft_state::CrdtKind::LwwRegister => CrdtKind::LwwRegister,
        weft_state::CrdtKind::GCounter => CrdtKind::GCounter,
        weft_state::CrdtKind::PnCounter => CrdtKind::PnCounter,
        weft_state::CrdtKind::Map => CrdtKind::Map,
        weft_state::CrdtKind::Set => CrdtKind::Set,
        weft_state::CrdtKind::Vector => CrdtKind::Vector,
        weft_state::CrdtKind::Text => CrdtKind::Text,
    }
}

fn storage_kind(storage: Storage) -> StorageKind {
    match storage {
        Storage::Public => StorageKind::Public,
        Storage::UserOwned { owner } => StorageKind::UserOwned { owner: PublicKey(owner) },
        Storage::Frozen => StorageKind::Frozen,
    }
}

fn abi_value(value: Value) -> StateValue {
    match value {
        Value::Bytes(bytes) => StateValue::Bytes(bytes),
        Value::Collection { id, kind } => StateValue::Collection { id: id.0, kind: abi_kind(kind) },
    }
}

/// The status a state error is reported with.
pub(crate) fn status_of(error: &StateError) -> StatusCode {
    match error {
        StateError::UnknownTarget(_) | StateError::UnknownElement | StateError::IndexOutOfRange { .. } => {
            StatusCode::NotFound
        }
        StateError::WrongKind { .. } => StatusCode::WrongKind,
        StateError::ReadOnly => StatusCode::ReadOnly,
        StateError::NotOwner { .. }
        | StateError::FrozenKeyMismatch
        | StateError::FrozenRemove
        | StateError::FrozenUnsupported(_)
        | StateError::CounterDecrement => StatusCode::Denied,
        StateError::KeyTooLong(_)
        | StateError::ValueTooLarge(_)
        | StateError::NestingTooDeep
        | StateError::TooManyActions
        | StateError::CounterOverflow
        | StateError::TreeTooDeep => StatusCode::LimitExceeded,
        StateError::Text(_) | StateError::TextItemMissing(_) => StatusCode::BadRequest,
        _ => StatusCode::Internal,
    }
}

fn clamp(limit: u32) -> usize {
    limit.min(weft_abi::limits::PAGE_ITEMS_MAX) as usize
}

/// Run `call` in `txn`.
pub(crate) fn run<K: KvRead + ?Sized>(txn: &mut StateTxn<'_, K>, call: StateCall) -> Result<StateReply, StateError> {
    Ok(match call {
        StateCall::RootId => StateReply::Id(root_id().0),
        StateCall::ChildId { parent, key, kind, storage } => {
            StateReply::Id(child_id(&Hash(parent), &key, state_kind(kind), &storage_kind(storage)).0)
        }
        StateCall::Create { parent, key, kind, storage } => {
            StateReply::Id(txn.create(Hash(parent), &key, state_kind(kind), storage_kind(storage))?.0)
        }
        StateCall::MapInsert { map, key, value } => {
            txn.map_insert(Hash(map), &key, &value)?;
            StateReply::Unit
        }
        StateCall::MapGet { map, key } => StateReply::Value(txn.map_get(Hash(map), &key)?.map(abi_value)),
        StateCall::MapRemove { map, key } => StateReply::Bool(txn.map_remove(Hash(map), &key)?),
        StateCall::MapEntries { map, after, limit } => {
            let page = txn.map_entries(Hash(map), after.as_deref(), clamp(limit))?;
            StateReply::Entries {
                items: page.items.into_iter().map(|(key, value)| (key, abi_value(value))).collect(),
                next: page.next_after,
            }
        }
        StateCall::MapLen { map } => StateReply::U64(txn.map_len(Hash(map))?),
        StateCall::RegisterSet { register, value } => {
            txn.register_set(Hash(register), &value)?;
            StateReply::Unit
        }
        StateCall::RegisterGet { register } => StateReply::Bytes(txn.register_get(Hash(register))?),
        StateCall::CounterAdd { counter, delta } => {
            txn.counter_add(Hash(counter), delta)?;
            StateReply::Unit
        }
        StateCall::CounterValue { counter } => StateReply::I128(txn.counter_value(Hash(counter))?),
        StateCall::SetAdd { set, element } => StateReply::Bool(txn.set_add(Hash(set), &element)?),
        StateCall::SetRemove { set, element } => StateReply::Bool(txn.set_remove(Hash(set), &element)?),
        StateCall::SetContains { set, element } => StateReply::Bool(txn.set_contains(Hash(set), &element)?),
        StateCall::SetIter { set, after, limit } => {
            let page = txn.set_iter(Hash(set), after.as_deref(), clamp(limit))?;
            StateReply::Elements { items: page.items, next: page.next_after }
        }
        StateCall::SetLen { set } => StateReply::U64(txn.set_len(Hash(set))?),
        StateCall::VectorPush { vector, value } => {
            txn.vector_push(Hash(vector), &value)?;
            StateReply::Unit
        }
        StateCall::VectorGet { vector, index } => StateReply::Bytes(txn.vector_get(Hash(vector), index)?),
        StateCall::VectorLen { vector } => StateReply::U64(txn.vector_len(Hash(vector))?),
        StateCall::VectorSet { vector, index, value } => {
            txn.vector_set(Hash(vector), index, &value)?;
            StateReply::Unit
        }
        StateCall::VectorRemove { vector, index } => {
            txn.vector_remove(Hash(vector), index)?;
            StateReply::Unit
        }
        StateCall::TextInsert { text, pos, value } => {
            txn.text_insert(Hash(text), pos, &value)?;
            StateReply::Unit
        }
        StateCall::TextDelete { text, pos, len } => {
            txn.text_delete(Hash(text), pos, len)?;
            StateReply::Unit
        }
        StateCall::TextRead { text } => StateReply::Text(txn.text_read(Hash(text))?),
        StateCall::TextLen { text } => StateReply::U64(txn.text_len(Hash(text))?),
    })
}
