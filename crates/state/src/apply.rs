//! Applying actions: validation, merge, and hash propagation.
//!
//! Every action, local or remote, goes through [`check`] (reads only: target,
//! kind, access rules, signature, frozen rules) and then [`merge`]
//! (commutative, idempotent). [`finalize`] then rehashes the changed entities
//! deepest first and carries each new full hash into its parent's slot, up
//! to the root.
//!
//! Merge rules (the reason every causally consistent delivery order of the
//! same actions reaches the same state):
//! - a slot keeps the greatest write `(stamp, value)` and, separately, the
//!   greatest remove stamp; it is visible iff its write's stamp is greater
//!   than its remove's. Both are max-merged, so an older write arriving after
//!   a newer remove cannot resurrect the entry, and a newer write arriving
//!   after an older remove does;
//! - a frozen map keeps the *smallest* write (write-once: the first stands);
//! - a register keeps the greatest `(stamp, value)`;
//! - a counter keeps, per author, the greatest up and down totals;
//! - a nested collection is never deleted: removing its key hides it, ops
//!   inside it keep applying to its hidden contents (so hashes converge), and
//!   a later create with a greater stamp shows it again, contents included;
//! - an entity's `created` is the smallest create stamp and `updated` the
//!   greatest stamp applied to it.

use weft_primitives::kv::{KvRead, WriteSet};
use weft_primitives::{Hash, PublicKey, encoding};

use crate::action::{Action, Op};
use crate::error::StateError;
use crate::model::{CrdtKind, EntityId, StorageKind, child_id, root_id};
use crate::overlay::{Entry, Overlay};
use crate::rows::{self, Index, ParentLink, SlotValue, Winner};
use crate::tree;
use crate::{ACTIONS_PER_BATCH_MAX, KEY_BYTES_MAX, NESTING_DEPTH_MAX, VALUE_BYTES_MAX};

/// What [`check`] learned about the target, for [`merge`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) kind: CrdtKind,
    pub(crate) storage: StorageKind,
    pub(crate) depth: u32,
}

/// Validate `action` against the current state without changing anything.
pub(crate) fn check<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    action: &Action,
    verify_in: Option<&Hash>,
) -> Result<Target, StateError> {
    check_sizes(&action.op)?;
    let index = ov.index(&action.target)?.ok_or(StateError::UnknownTarget(action.target))?;
    let target = Target { kind: index.kind, storage: index.storage, depth: index.depth };
    check_access(action, &target, verify_in)?;
    let wrong_kind = || StateError::WrongKind { target: action.target, op: action.op.name(), found: target.kind };
    let frozen = target.storage == StorageKind::Frozen;
    match &action.op {
        Op::Create { kind, storage, .. } => {
            if target.kind != CrdtKind::Map {
                return Err(wrong_kind());
            }
            if frozen {
                return Err(StateError::FrozenUnsupported("no collections inside frozen storage"));
            }
            if *storage == StorageKind::Frozen && *kind != CrdtKind::Map {
                return Err(StateError::FrozenUnsupported("only maps can be frozen"));
            }
            if target.depth >= NESTING_DEPTH_MAX {
                return Err(StateError::NestingTooDeep);
            }
        }
        Op::MapInsert { key, value } => {
            if target.kind != CrdtKind::Map {
                return Err(wrong_kind());
            }
            if frozen && key.as_slice() != Hash::of(value).as_bytes() {
                return Err(StateError::FrozenKeyMismatch);
            }
        }
        Op::MapRemove { .. } => {
            if target.kind != CrdtKind::Map {
                return Err(wrong_kind());
            }
            if frozen {
                return Err(StateError::FrozenRemove);
            }
        }
        Op::RegisterSet { .. } if target.kind != CrdtKind::LwwRegister => return Err(wrong_kind()),
        Op::CounterTotals { down, .. } => match target.kind {
            CrdtKind::GCounter if *down != 0 => return Err(StateError::CounterDecrement),
            CrdtKind::GCounter | CrdtKind::PnCounter => {}
            _ => return Err(wrong_kind()),
        },
        Op::SetAdd { .. } | Op::SetRemove { .. } if target.kind != CrdtKind::Set => return Err(wrong_kind()),
        Op::VectorPush { .. } if target.kind != CrdtKind::Vector => return Err(wrong_kind()),
        Op::VectorSet { element, .. } | Op::VectorRemove { element } => {
            if target.kind != CrdtKind::Vector {
                return Err(wrong_kind());
            }
            // Causal delivery guarantees the push arrived first.
            if ov.slot(&action.target, &element.to_key())?.is_none() {
                return Err(StateError::UnknownElement);
            }
        }
        Op::Text(op) => {
            if target.kind != CrdtKind::Text {
                return Err(wrong_kind());
            }
            crate::text::check_op(op, &action.stamp)?;
        }
        Op::RegisterSet { .. } | Op::SetAdd { .. } | Op::SetRemove { .. } | Op::VectorPush { .. } => {}
    }
    Ok(target)
}

fn check_sizes(op: &Op) -> Result<(), StateError> {
    let (key, value): (&[u8], &[u8]) = match op {
        Op::Create { key, .. } | Op::MapRemove { key } => (key, &[]),
        Op::MapInsert { key, value } => (key, value),
        Op::SetAdd { element } | Op::SetRemove { element } => (element, &[]),
        Op::RegisterSet { value } | Op::VectorPush { value } | Op::VectorSet { value, .. } => (&[], value),
        Op::CounterTotals { .. } | Op::VectorRemove { .. } | Op::Text(_) => (&[], &[]),
    };
    if key.len() > KEY_BYTES_MAX {
        return Err(StateError::KeyTooLong(key.len()));
    }
    if value.len() > VALUE_BYTES_MAX {
        return Err(StateError::ValueTooLarge(value.len()));
    }
    Ok(())
}

/// The owner rules: a user-owned target, or a user-owned collection being
/// created, must be written by its owner with a valid signature; anything
/// else must carry no signature. `verify_in` is the context the signature
/// must have been made for (`None`: our own fresh signature, not re-checked).
fn check_access(action: &Action, target: &Target, verify_in: Option<&Hash>) -> Result<(), StateError> {
    let author = action.stamp.author;
    let target_owner = match target.storage {
        StorageKind::UserOwned { owner } => Some(owner),
        StorageKind::Public | StorageKind::Frozen => None,
    };
    let created_owner = match &action.op {
        Op::Create { storage: StorageKind::UserOwned { owner }, .. } => Some(*owner),
        _ => None,
    };
    for owner in [target_owner, created_owner].into_iter().flatten() {
        if author != owner {
            return Err(StateError::NotOwner { target: action.target, owner, author });
        }
    }
    let needs_signature = target_owner.is_some() || created_owner.is_some();
    match (&action.signature, needs_signature) {
        (None, true) => Err(StateError::MissingSignature(action.target)),
        (Some(_), false) => Err(StateError::UnexpectedSignature(action.target)),
        (Some(signature), true) => match verify_in {
            Some(context) => author
                .verify(action.signing_digest(context).as_bytes(), signature)
                .map_err(|_| StateError::BadSignature(action.target)),
            None => Ok(()),
        },
        (None, false) => Ok(()),
    }
}

/// Merge a checked action into the overlay.
pub(crate) fn merge<K: KvRead + ?Sized>(
    ov: &mut Overlay<'_, K>,
    action: &Action,
    target: Target,
) -> Result<(), StateError> {
    let entity = &action.target;
    let stamp = action.stamp;
    match &action.op {
        Op::Create { key, kind, storage } => {
            let id = child_id(entity, key, *kind, storage);
            match ov.index(&id)?.is_some() {
                true => {
                    let child = ov.index_mut(&id)?;
                    child.created = child.created.min(stamp);
                    child.updated = child.updated.max(stamp);
                    let depth = child.depth;
                    ov.mark_changed(id, depth);
                }
                false => {
                    let link = ParentLink { id: *entity, key: key.clone() };
                    ov.insert_index(Index::fresh(id, Some(link), target.depth + 1, *kind, *storage, stamp));
                }
            }
            // The child's index exists now: the slot hash reads its full hash.
            let write = Winner { stamp, value: SlotValue::Nested { id, kind: *kind } };
            tree::update_slot(ov, entity, key, |slot| {
                slot.add_nested(id);
                slot.merge_write(write);
            })?;
        }
        Op::MapInsert { key, value } => {
            let write = Winner { stamp, value: SlotValue::Bytes(value.clone()) };
            let frozen = target.storage == StorageKind::Frozen;
            tree::update_slot(ov, entity, key, |slot| match frozen {
                true => slot.merge_first_write(write),
                false => slot.merge_write(write),
            })?;
        }
        Op::MapRemove { key } | Op::SetRemove { element: key } => {
            tree::update_slot(ov, entity, key, |slot| slot.merge_remove(stamp))?;
        }
        Op::SetAdd { element } => {
            let write = Winner { stamp, value: SlotValue::Present };
            tree::update_slot(ov, entity, element, |slot| slot.merge_write(write))?;
        }
        Op::VectorPush { value } => {
            let write = Winner { stamp, value: SlotValue::Bytes(value.clone()) };
            tree::update_slot(ov, entity, &stamp.to_key(), |slot| slot.merge_write(write))?;
        }
        Op::VectorSet { element, value } => {
            let write = Winner { stamp, value: SlotValue::Bytes(value.clone()) };
            tree::update_slot(ov, entity, &element.to_key(), |slot| slot.merge_write(write))?;
        }
        Op::VectorRemove { element } => {
            tree::update_slot(ov, entity, &element.to_key(), |slot| slot.merge_remove(stamp))?;
        }
        Op::RegisterSet { value } => {
            if let Entry::Register(current) = ov.entry_mut(entity, target.kind)? {
                let newer = current.as_ref().is_none_or(|(s, v)| (stamp, value) > (*s, v));
                if newer {
                    *current = Some((stamp, value.clone()));
                }
            }
        }
        Op::CounterTotals { up, down } => {
            if let Entry::Counter(totals) = ov.entry_mut(entity, target.kind)? {
                let mine = totals.entry(stamp.author).or_default();
                mine.up = mine.up.max(*up);
                mine.down = mine.down.max(*down);
            }
        }
        Op::Text(op) => {
            if let Entry::Text(text) = ov.entry_mut(entity, target.kind)? {
                text.apply(op)?;
            }
        }
    }
    let index = ov.index_mut(entity)?;
    index.updated = index.updated.max(stamp);
    ov.mark_changed(*entity, target.depth);
    Ok(())
}

/// Rehash every changed entity, deepest first, carrying new full hashes up
/// into parent slots; returns the new root hash.
pub(crate) fn finalize<K: KvRead + ?Sized>(ov: &mut Overlay<'_, K>) -> Result<Hash, StateError> {
    while let Some(id) = ov.pop_changed() {
        let tree_hash = tree::rehash(ov, &id)?;
        let kind = ov.index(&id)?.ok_or(StateError::UnknownTarget(id))?.kind;
        let entry_hash = match ov.entry_is_dirty(&id) {
            true => Some(entry_hash(ov.entry_mut(&id, kind)?)),
            false => None,
        };
        if let Some(entry_hash) = entry_hash {
            ov.index_mut(&id)?.entry_hash = entry_hash;
        }
        let own_stale = ov.own_hash_stale(&id);
        let index = ov.index_mut(&id)?;
        if own_stale {
            index.own_hash =
                rows::own_hash(index.kind, &index.storage, &index.created, &index.updated, &index.entry_hash);
        }
        let full = rows::full_hash(&id, &index.own_hash, tree_hash.as_ref());
        if full == index.full_hash {
            continue;
        }
        index.full_hash = full;
        let Some(parent) = index.parent.as_ref() else { continue };
        let (parent_id, parent_depth) = (parent.id, index.depth.saturating_sub(1));
        let mut parent_key = ov.take_buffer();
        if let Some(parent) = ov.index(&id)?.and_then(|index| index.parent.as_ref()) {
            parent_key.extend_from_slice(&parent.key);
        }
        tree::refresh_nested(ov, &parent_id, &parent_key, &id)?;
        ov.give_buffer(parent_key);
        ov.mark_changed(parent_id, parent_depth);
    }
    Ok(ov.index(&root_id())?.map_or_else(|| Index::empty_root().full_hash, |i| i.full_hash))
}

fn entry_hash(entry: &mut Entry) -> Hash {
    match entry {
        Entry::Register(register) => rows::entry_bytes_hash(&encoding::encode(register)),
        Entry::Counter(counter) => rows::entry_bytes_hash(&encoding::encode(counter)),
        Entry::Text(text) => text.content_hash(),
        Entry::Nothing => Hash::ZERO,
    }
}

/// The result of applying a remote batch.
#[derive(Debug)]
pub struct Applied {
    /// The rows to write, atomically with the delta row and heads.
    pub writes: WriteSet,
    /// The root hash once `writes` are applied.
    pub root_hash: Hash,
}

/// Merge the actions of one delta by `author`, natively and
/// deterministically. Any invalid action (foreign author, bad signature,
/// non-owner write, frozen violation, unknown target, …) rejects the whole
/// batch and nothing is written.
///
/// The caller has already checked the delta's own signature and that
/// `author` is a member; this checks that every action is by that author
/// and that owners' signatures were made for `context`.
pub fn apply_actions<K: KvRead + ?Sized>(
    kv: &K,
    context: &Hash,
    author: &PublicKey,
    actions: &[Action],
) -> Result<Applied, StateError> {
    if actions.len() > ACTIONS_PER_BATCH_MAX {
        return Err(StateError::TooManyActions);
    }
    let mut ov = Overlay::new(kv);
    for action in actions {
        if action.stamp.author != *author {
            return Err(StateError::ForeignAuthor { expected: *author, found: action.stamp.author });
        }
        let target = check(&mut ov, action, Some(context))?;
        merge(&mut ov, action, target)?;
    }
    let root_hash = finalize(&mut ov)?;
    let writes = ov.into_writes();
    #[cfg(feature = "slow-reference")]
    crate::reference::verify_against_reference(kv, &writes, root_hash)?;
    Ok(Applied { writes, root_hash })
}

/// The current root hash of the state in `kv` (O(1)).
pub fn root_hash<K: KvRead + ?Sized>(kv: &K) -> Result<Hash, StateError> {
    let mut ov = Overlay::new(kv);
    Ok(ov.index(&root_id())?.map_or_else(|| Index::empty_root().full_hash, |i| i.full_hash))
}

/// The stored index of entity `id`, if it exists.
pub fn entity_index<K: KvRead + ?Sized>(kv: &K, id: &EntityId) -> Result<Option<Index>, StateError> {
    crate::overlay::read_index(kv, id)
}
