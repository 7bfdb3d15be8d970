//! `state_call` requests executed against the call's [`StateTxn`].
//!
//! Translates the ABI's [`StateCall`] into `weft-state` operations and their
//! results into [`StateReply`]s; a refused operation becomes a
//! [`StatusCode`] with the state engine's message, while a failure of the
//! store itself (not the guest's fault) ends the call. In a view call every
//! write is refused with [`StatusCode::ReadOnly`] and remembered, so the
//! call fails even if the guest ignores the status.

use weft_abi::limits::PAGE_ITEMS_MAX;
use weft_abi::{CrdtKind as AbiKind, StateCall, StateReply, StateValue, StatusCode, Storage};
use weft_primitives::kv::KvRead;
use weft_primitives::{Hash, PublicKey};
use weft_state::{CrdtKind, StateError, StateTxn, StorageKind, Value, child_id, root_id};

use crate::call_data::StateOutcome;
use crate::error::RuntimeError;

/// The state side of one call.
pub(crate) struct StateOps<'t, 'k, K: KvRead + ?Sized> {
    txn: &'t mut StateTxn<'k, K>,
    writes_allowed: bool,
    /// Set when a view call attempted a write.
    pub(crate) write_refused: bool,
}

impl<'t, 'k, K: KvRead + ?Sized> StateOps<'t, 'k, K> {
    pub(crate) fn new(txn: &'t mut StateTxn<'k, K>, writes_allowed: bool) -> Self {
        StateOps { txn, writes_allowed, write_refused: false }
    }

    /// Execute one request.
    pub(crate) fn execute(&mut self, call: StateCall) -> StateOutcome {
        if call.is_write() && !self.writes_allowed && !self.is_existing_collection(&call) {
            self.write_refused = true;
            return StateOutcome::Refused(StatusCode::ReadOnly, "a view method cannot write state".into());
        }
        match self.run(call) {
            Ok(reply) => StateOutcome::Reply(reply),
            Err(error) => outcome_of(error),
        }
    }

    /// A `Create` of a collection that already exists writes nothing, so a
    /// view may make it (the SDK resolves nested collections that way).
    fn is_existing_collection(&mut self, call: &StateCall) -> bool {
        let StateCall::Create { parent, key, kind, storage } = call else { return false };
        let id = child_id(&Hash(*parent), key, state_kind(*kind), &storage_kind(*storage));
        matches!(self.txn.map_get(Hash(*parent), key), Ok(Some(Value::Collection { id: found, .. })) if found == id)
    }

    fn run(&mut self, call: StateCall) -> Result<StateReply, StateError> {
        let txn = &mut *self.txn;
        Ok(match call {
            StateCall::RootId => StateReply::Id(root_id().0),
            StateCall::ChildId { parent, key, kind, storage } => {
                StateReply::Id(child_id(&Hash(parent), &key, state_kind(kind), &storage_kind(storage)).0)
            }
            StateCall::Create { parent, key, kind, storage } => {
                let (kind, storage) = (state_kind(kind), storage_kind(storage));
                let id = child_id(&Hash(parent), &key, kind, &storage);
                // Create-if-absent: re-asserting a visible collection would
                // cost an action (and a delta) per access.
                match txn.map_get(Hash(parent), &key)? {
                    Some(Value::Collection { id: found, .. }) if found == id => StateReply::Id(id.0),
                    _ => StateReply::Id(txn.create(Hash(parent), &key, kind, storage)?.0),
                }
            }
            StateCall::MapInsert { map, key, value } => {
                txn.map_insert(Hash(map), &key, &value)?;
                StateReply::Unit
            }
            StateCall::MapGet { map, key } => StateReply::Value(txn.map_get(Hash(map), &key)?.map(state_value)),
            StateCall::MapRemove { map, key } => StateReply::Bool(txn.map_remove(Hash(map), &key)?),
            StateCall::MapEntries { map, after, limit } => {
                let page = txn.map_entries(Hash(map), after.as_deref(), page_limit(limit))?;
                StateReply::Entries {
                    items: page.items.into_iter().map(|(key, value)| (key, state_value(value))).collect(),
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
                let page = txn.set_iter(Hash(set), after.as_deref(), page_limit(limit))?;
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
}

fn page_limit(limit: u32) -> usize {
    limit.min(PAGE_ITEMS_MAX) as usize
}

/// A refused or failed state operation, for the guest or for the caller.
fn outcome_of(error: StateError) -> StateOutcome {
    let status = match &error {
        // Not the guest's doing: the store failed or holds bad rows. The
        // call cannot meaningfully go on.
        StateError::Kv(_) | StateError::Corrupt { .. } | StateError::ReferenceMismatch { .. } => {
            return StateOutcome::Fatal(RuntimeError::State(error));
        }
        // An earlier failure left the transaction unusable; it can never commit.
        StateError::Poisoned(_) => return StateOutcome::Fatal(RuntimeError::State(error)),
        StateError::UnknownTarget(_) | StateError::UnknownElement | StateError::IndexOutOfRange { .. } => {
            StatusCode::NotFound
        }
        StateError::WrongKind { .. } => StatusCode::WrongKind,
        StateError::NotOwner { .. }
        | StateError::MissingSignature(_)
        | StateError::BadSignature(_)
        | StateError::UnexpectedSignature(_)
        | StateError::ForeignAuthor { .. }
        | StateError::FrozenKeyMismatch
        | StateError::FrozenRemove
        | StateError::FrozenUnsupported(_)
        | StateError::CounterDecrement
        | StateError::ForeignTextItem => StatusCode::Denied,
        StateError::KeyTooLong(_)
        | StateError::ValueTooLarge(_)
        | StateError::NestingTooDeep
        | StateError::TooManyActions
        | StateError::CounterOverflow
        | StateError::StampOverflow
        | StateError::TreeTooDeep => StatusCode::LimitExceeded,
        // Text positions out of range, empty inserts: a malformed request.
        StateError::Text(_) | StateError::TextItemMissing(_) => StatusCode::BadRequest,
        StateError::ReadOnly => StatusCode::ReadOnly,
    };
    StateOutcome::Refused(status, error.to_string())
}

fn state_kind(kind: AbiKind) -> CrdtKind {
    match kind {
        AbiKind::LwwRegister => CrdtKind::LwwRegister,
        AbiKind::GCounter => CrdtKind::GCounter,
        AbiKind::PnCounter => CrdtKind::PnCounter,
        AbiKind::Map => CrdtKind::Map,
        AbiKind::Set => CrdtKind::Set,
        AbiKind::Vector => CrdtKind::Vector,
        AbiKind::Text => CrdtKind::Text,
    }
}

fn abi_kind(kind: CrdtKind) -> AbiKind {
    match kind {
        CrdtKind::LwwRegister => AbiKind::LwwRegister,
        CrdtKind::GCounter => AbiKind::GCounter,
        CrdtKind::PnCounter => AbiKind::PnCounter,
        CrdtKind::Map => AbiKind::Map,
        CrdtKind::Set => AbiKind::Set,
        CrdtKind::Vector => AbiKind::Vector,
        CrdtKind::Text => AbiKind::Text,
    }
}

fn storage_kind(storage: Storage) -> StorageKind {
    match storage {
        Storage::Public => StorageKind::Public,
        Storage::UserOwned { owner } => StorageKind::UserOwned { owner: PublicKey(owner) },
        Storage::Frozen => StorageKind::Frozen,
    }
}

fn state_value(value: Value) -> StateValue {
    match value {
        Value::Bytes(bytes) => StateValue::Bytes(bytes),
        Value::Collection { id, kind } => StateValue::Collection { id: id.0, kind: abi_kind(kind) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_primitives::kv::MemoryKv;
    use weft_primitives::{Hlc, SigningKey};

    #[test]
    fn kinds_map_both_ways_with_the_same_tags() {
        for kind in [
            AbiKind::LwwRegister,
            AbiKind::GCounter,
            AbiKind::PnCounter,
            AbiKind::Map,
            AbiKind::Set,
            AbiKind::Vector,
            AbiKind::Text,
        ] {
            let state = state_kind(kind);
            assert_eq!(abi_kind(state), kind);
            assert_eq!(borsh::to_vec(&kind).ok(), Some(vec![state.tag()]), "borsh tag = state tag for {kind:?}");
        }
    }

    #[test]
    fn view_writes_are_refused_and_remembered() {
        let kv = MemoryKv::new();
        let mut txn = StateTxn::read_only(&kv);
        let mut ops = StateOps::new(&mut txn, false);
        let root = root_id().0;
        let outcome = ops.execute(StateCall::MapInsert { map: root, key: b"k".to_vec(), value: b"v".to_vec() });
        assert!(matches!(outcome, StateOutcome::Refused(StatusCode::ReadOnly, _)));
        assert!(ops.write_refused);
        assert!(matches!(ops.execute(StateCall::MapLen { map: root }), StateOutcome::Reply(StateReply::U64(0))));
    }

    #[test]
    fn create_is_create_if_absent() {
        let kv = MemoryKv::new();
        let key = SigningKey::from_seed([1; 32]);
        let mut txn = StateTxn::new(&kv, Hash::default(), &key, Hlc::new(1, 0));
        let root = root_id().0;
        let create =
            StateCall::Create { parent: root, key: b"m".to_vec(), kind: AbiKind::Map, storage: Storage::Public };
        let mut ops = StateOps::new(&mut txn, true);
        let StateOutcome::Reply(first) = ops.execute(create.clone()) else { panic!("create failed") };
        let StateOutcome::Reply(second) = ops.execute(create) else { panic!("second create failed") };
        assert_eq!(first, second);
        assert_eq!(txn.actions().len(), 1, "the second create wrote nothing");
    }

    #[test]
    fn refusals_carry_their_status() {
        let kv = MemoryKv::new();
        let key = SigningKey::from_seed([1; 32]);
        let mut txn = StateTxn::new(&kv, Hash::default(), &key, Hlc::new(1, 0));
        let mut ops = StateOps::new(&mut txn, true);
        let missing = StateCall::MapLen { map: [9; 32] };
        assert!(matches!(ops.execute(missing), StateOutcome::Refused(StatusCode::NotFound, _)));
        let root = root_id().0;
        let wrong = StateCall::CounterValue { counter: root };
        assert!(matches!(ops.execute(wrong), StateOutcome::Refused(StatusCode::WrongKind, _)));
        let long_key = StateCall::MapInsert { map: root, key: vec![0; weft_state::KEY_BYTES_MAX + 1], value: vec![] };
        assert!(matches!(ops.execute(long_key), StateOutcome::Refused(StatusCode::LimitExceeded, _)));
    }
}
