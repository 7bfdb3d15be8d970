//! Local transactions: the operation API the WASM host functions call.
//!
//! A [`StateTxn`] reads through its overlay into the store and writes only
//! into the overlay. Each mutating call becomes one [`Action`] with the next
//! stamp, signed when it touches user-owned storage, and goes through the
//! same check and merge as a remote action. [`StateTxn::commit`] returns the
//! actions (the delta payload), the writes to commit atomically, and the new
//! root hash. Dropping the transaction, or any error, changes nothing in the
//! store; an error after a change started poisons the transaction (every
//! later call, including commit, fails).

use weft_primitives::kv::{KvRead, WriteSet};
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_text::TextOp;

use crate::action::{Action, Op};
use crate::apply::{self, Target};
use crate::error::StateError;
use crate::model::{CrdtKind, EntityId, Page, Stamp, StorageKind, Value, child_id};
use crate::overlay::{Entry, Overlay};
use crate::rows::SlotValue;
use crate::text::text_error;
use crate::{ACTIONS_PER_BATCH_MAX, LIST_LIMIT_MAX, SCAN_ROWS_MAX, tree};

/// The result of a committed transaction.
#[derive(Debug)]
pub struct Commit {
    /// The actions, in order: the payload of the delta.
    pub actions: Vec<Action>,
    /// The rows to write, atomically with the delta row and heads.
    pub writes: WriteSet,
    /// The root hash once `writes` are applied.
    pub root_hash: Hash,
    /// The last stamp used (feed it to the node's `HlcClock::observe`).
    pub last_hlc: Option<Hlc>,
}

/// A local transaction over one context's state.
pub struct StateTxn<'k, K: KvRead + ?Sized> {
    ov: Overlay<'k, K>,
    /// The context owners sign their actions for.
    context: Hash,
    signer: Option<&'k SigningKey>,
    author: PublicKey,
    next_hlc: Hlc,
    last_hlc: Option<Hlc>,
    actions: Vec<Action>,
    poisoned: Option<String>,
    /// The lane this device numbers its text items in (see [`weft_text::ItemId`]).
    text_lane: u32,
}

impl<'k, K: KvRead + ?Sized> StateTxn<'k, K> {
    /// A transaction in `context` writing as `signer`, stamping its actions
    /// from `start` on (each action takes the next logical tick).
    pub fn new(kv: &'k K, context: Hash, signer: &'k SigningKey, start: Hlc) -> StateTxn<'k, K> {
        StateTxn {
            ov: Overlay::new(kv),
            context,
            signer: Some(signer),
            author: signer.public_key(),
            next_hlc: start,
            last_hlc: None,
            // Most transactions hold one action; Action is a few hundred bytes.
            actions: Vec::with_capacity(1),
            poisoned: None,
            text_lane: 0,
        }
    }

    /// Number this transaction's text items in `lane`: each device writing
    /// as one identity needs its own ([`weft_text::device_lane`]), or two
    /// of them typing at once would name two characters alike.
    pub fn with_text_lane(mut self, lane: u32) -> StateTxn<'k, K> {
        self.text_lane = lane;
        self
    }

    /// A transaction that can only read.
    pub fn read_only(kv: &'k K) -> StateTxn<'k, K> {
        StateTxn {
            ov: Overlay::new(kv),
            context: Hash::default(),
            signer: None,
            author: PublicKey::default(),
            next_hlc: Hlc::default(),
            last_hlc: None,
            actions: Vec::new(),
            poisoned: None,
            text_lane: 0,
        }
    }

    /// The actions so far.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Finish: rehash, and return the actions, the writes and the root hash.
    pub fn commit(mut self) -> Result<Commit, StateError> {
        self.usable()?;
        let root_hash = apply::finalize(&mut self.ov)?;
        #[cfg(feature = "slow-reference")]
        let kv = self.ov.kv();
        let writes = self.ov.into_writes();
        #[cfg(feature = "slow-reference")]
        crate::reference::verify_against_reference(kv, &writes, root_hash)?;
        Ok(Commit { actions: self.actions, writes, root_hash, last_hlc: self.last_hlc })
    }

    fn usable(&self) -> Result<(), StateError> {
        match &self.poisoned {
            Some(reason) => Err(StateError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    fn next_stamp(&mut self) -> Result<Stamp, StateError> {
        let hlc = self.next_hlc;
        self.next_hlc = match hlc.counter.checked_add(1) {
            Some(counter) => Hlc::new(hlc.wall_ms, counter),
            None => Hlc::new(hlc.wall_ms.checked_add(1).ok_or(StateError::StampOverflow)?, 0),
        };
        self.last_hlc = Some(hlc);
        Ok(Stamp::new(hlc, self.author))
    }

    /// Stamp, sign, check and merge one op.
    fn submit(&mut self, target: EntityId, op: Op) -> Result<(), StateError> {
        self.usable()?;
        let signer = self.signer.ok_or(StateError::ReadOnly)?;
        if self.actions.len() >= ACTIONS_PER_BATCH_MAX {
            return Err(StateError::TooManyActions);
        }
        let saved_hlc = (self.next_hlc, self.last_hlc);
        let stamp = self.next_stamp()?;
        let mut action = Action { target, op, stamp, signature: None };
        if self.needs_signature(&action)? {
            action.signature = Some(signer.sign(action.signing_digest(&self.context).as_bytes()));
        }
        // Our own fresh signature needs no verifying; the owner check still runs.
        let checked = match apply::check(&mut self.ov, &action, None) {
            Ok(checked) => checked,
            Err(error) => {
                (self.next_hlc, self.last_hlc) = saved_hlc;
                return Err(error);
            }
        };
        self.merge_or_poison(&action, checked)?;
        self.actions.push(action);
        Ok(())
    }

    fn merge_or_poison(&mut self, action: &Action, checked: Target) -> Result<(), StateError> {
        apply::merge(&mut self.ov, action, checked).map_err(|error| self.poison(error))
    }

    fn poison(&mut self, error: StateError) -> StateError {
        self.poisoned = Some(error.to_string());
        error
    }

    fn needs_signature(&mut self, action: &Action) -> Result<bool, StateError> {
        let target_owned =
            matches!(self.ov.index(&action.target)?.map(|i| i.storage), Some(StorageKind::UserOwned { .. }));
        let creates_owned = matches!(action.op, Op::Create { storage: StorageKind::UserOwned { .. }, .. });
        Ok(target_owned || creates_owned)
    }

    /// The target's kind and storage, checking it exists and is `kind`.
    fn target(&mut self, id: &EntityId, op: &'static str, kinds: &[CrdtKind]) -> Result<Target, StateError> {
        self.usable()?;
        let index = self.ov.index(id)?.ok_or(StateError::UnknownTarget(*id))?;
        if !kinds.contains(&index.kind) {
            return Err(StateError::WrongKind { target: *id, op, found: index.kind });
        }
        Ok(Target { kind: index.kind, storage: index.storage, depth: index.depth })
    }

    fn visible_slot_value(&mut self, entity: &EntityId, key: &[u8]) -> Result<Option<SlotValue>, StateError> {
        Ok(self.ov.slot(entity, key)?.and_then(|slot| slot.visible_value().cloned()))
    }

    /// Visible children of `entity` after `after`, converted by `convert`.
    fn list<T>(
        &mut self,
        entity: &EntityId,
        after: Option<&[u8]>,
        limit: usize,
        convert: impl Fn(&[u8], &SlotValue) -> T,
    ) -> Result<Page<T>, StateError> {
        let limit = limit.min(LIST_LIMIT_MAX);
        let mut items = Vec::new();
        if limit == 0 {
            return Ok(Page { items, next_after: after.map(<[u8]>::to_vec) });
        }
        let mut last: Option<Vec<u8>> = None;
        let more = self.ov.scan_children(entity, after, SCAN_ROWS_MAX, |key, slot| {
            if let Some(value) = slot.visible_value() {
                items.push(convert(key, value));
            }
            last = Some(key.to_vec());
            items.len() < limit
        })?;
        Ok(Page { items, next_after: if more { last } else { None } })
    }

    // ---- maps ----

    /// Set `key` of `map` to plain bytes. In a frozen map, `key` must be
    /// `Hash::of(value)` and inserting existing content does nothing.
    pub fn map_insert(&mut self, map: EntityId, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        let target = self.target(&map, "map insert", &[CrdtKind::Map])?;
        if target.storage == StorageKind::Frozen
            && self.ov.slot(&map, key)?.is_some_and(|slot| slot.winner.is_some())
            && key == Hash::of(value).as_bytes()
        {
            return Ok(());
        }
        self.submit(map, Op::MapInsert { key: key.to_vec(), value: value.to_vec() })
    }

    /// The visible value at `key` of `map`.
    pub fn map_get(&mut self, map: EntityId, key: &[u8]) -> Result<Option<Value>, StateError> {
        self.target(&map, "map get", &[CrdtKind::Map])?;
        Ok(self.visible_slot_value(&map, key)?.and_then(to_value))
    }

    /// Remove `key` from `map`; false (and no action) if it was not visible.
    pub fn map_remove(&mut self, map: EntityId, key: &[u8]) -> Result<bool, StateError> {
        self.target(&map, "map remove", &[CrdtKind::Map])?;
        if self.visible_slot_value(&map, key)?.is_none() {
            return Ok(false);
        }
        self.submit(map, Op::MapRemove { key: key.to_vec() })?;
        Ok(true)
    }

    /// Up to `limit` (at most [`LIST_LIMIT_MAX`]) visible entries of `map`
    /// after key `after`, in key order.
    pub fn map_entries(
        &mut self,
        map: EntityId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page<(Vec<u8>, Value)>, StateError> {
        self.target(&map, "map entries", &[CrdtKind::Map])?;
        let page = self.list(&map, after, limit, |key, value| (key.to_vec(), to_value(value.clone())))?;
        let items = page.items.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        Ok(Page { items, next_after: page.next_after })
    }

    /// The number of visible entries of `map` (from the top tree node: one row, no walk).
    pub fn map_len(&mut self, map: EntityId) -> Result<u64, StateError> {
        self.target(&map, "map len", &[CrdtKind::Map])?;
        tree::live_len(&mut self.ov, &map)
    }

    /// Create (or make visible again) the collection at `key` of `map`;
    /// returns its id.
    pub fn create(
        &mut self,
        map: EntityId,
        key: &[u8],
        kind: CrdtKind,
        storage: StorageKind,
    ) -> Result<EntityId, StateError> {
        self.submit(map, Op::Create { key: key.to_vec(), kind, storage })?;
        Ok(child_id(&map, key, kind, &storage))
    }

    // ---- registers ----

    /// Set the register.
    pub fn register_set(&mut self, register: EntityId, value: &[u8]) -> Result<(), StateError> {
        self.submit(register, Op::RegisterSet { value: value.to_vec() })
    }

    /// The register's value.
    pub fn register_get(&mut self, register: EntityId) -> Result<Option<Vec<u8>>, StateError> {
        let target = self.target(&register, "register get", &[CrdtKind::LwwRegister])?;
        match self.ov.entry(&register, target.kind)? {
            Entry::Register(value) => Ok(value.as_ref().map(|(_, v)| v.clone())),
            _ => Ok(None),
        }
    }

    // ---- counters ----

    /// Add `delta` (negative only for a PN-counter) as this author.
    pub fn counter_add(&mut self, counter: EntityId, delta: i64) -> Result<(), StateError> {
        let target = self.target(&counter, "counter add", &[CrdtKind::GCounter, CrdtKind::PnCounter])?;
        if delta == 0 {
            return Ok(());
        }
        if delta < 0 && target.kind == CrdtKind::GCounter {
            return Err(StateError::CounterDecrement);
        }
        let author = self.author;
        let mine = match self.ov.entry(&counter, target.kind)? {
            Entry::Counter(totals) => totals.get(&author).copied().unwrap_or_default(),
            _ => Default::default(),
        };
        let (mut up, mut down) = (mine.up, mine.down);
        if delta > 0 {
            up = up.checked_add(delta.unsigned_abs()).ok_or(StateError::CounterOverflow)?;
        } else {
            down = down.checked_add(delta.unsigned_abs()).ok_or(StateError::CounterOverflow)?;
        }
        self.submit(counter, Op::CounterTotals { up, down })
    }

    /// The counter's value: all increments minus all decrements.
    pub fn counter_value(&mut self, counter: EntityId) -> Result<i128, StateError> {
        let target = self.target(&counter, "counter value", &[CrdtKind::GCounter, CrdtKind::PnCounter])?;
        match self.ov.entry(&counter, target.kind)? {
            Entry::Counter(totals) => Ok(totals.values().map(|t| i128::from(t.up) - i128::from(t.down)).sum()),
            _ => Ok(0),
        }
    }

    // ---- sets ----

    /// Add `element`; false (and no action) if it was already present.
    pub fn set_add(&mut self, set: EntityId, element: &[u8]) -> Result<bool, StateError> {
        self.target(&set, "set add", &[CrdtKind::Set])?;
        if self.visible_slot_value(&set, element)?.is_some() {
            return Ok(false);
        }
        self.submit(set, Op::SetAdd { element: element.to_vec() })?;
        Ok(true)
    }

    /// Remove `element`; false (and no action) if it was not present.
    pub fn set_remove(&mut self, set: EntityId, element: &[u8]) -> Result<bool, StateError> {
        self.target(&set, "set remove", &[CrdtKind::Set])?;
        if self.visible_slot_value(&set, element)?.is_none() {
            return Ok(false);
        }
        self.submit(set, Op::SetRemove { element: element.to_vec() })?;
        Ok(true)
    }

    /// Whether `element` is present.
    pub fn set_contains(&mut self, set: EntityId, element: &[u8]) -> Result<bool, StateError> {
        self.target(&set, "set contains", &[CrdtKind::Set])?;
        Ok(self.visible_slot_value(&set, element)?.is_some())
    }

    /// Up to `limit` elements after `after`, in byte order.
    pub fn set_iter(&mut self, set: EntityId, after: Option<&[u8]>, limit: usize) -> Result<Page<Vec<u8>>, StateError> {
        self.target(&set, "set iter", &[CrdtKind::Set])?;
        self.list(&set, after, limit, |key, _| key.to_vec())
    }

    /// The number of elements (from the top tree node: one row, no walk).
    pub fn set_len(&mut self, set: EntityId) -> Result<u64, StateError> {
        self.target(&set, "set len", &[CrdtKind::Set])?;
        tree::live_len(&mut self.ov, &set)
    }

    // ---- vectors ----

    /// Append `value`; returns the new element's id (its stamp).
    pub fn vector_push(&mut self, vector: EntityId, value: &[u8]) -> Result<Stamp, StateError> {
        self.submit(vector, Op::VectorPush { value: value.to_vec() })?;
        self.actions.last().map(|a| a.stamp).ok_or(StateError::ReadOnly)
    }

    /// The element at `index` (one path down the tree: O(log n) rows).
    pub fn vector_get(&mut self, vector: EntityId, index: u64) -> Result<Option<Vec<u8>>, StateError> {
        self.target(&vector, "vector get", &[CrdtKind::Vector])?;
        let Some(key) = tree::select(&mut self.ov, &vector, index)? else { return Ok(None) };
        Ok(match self.visible_slot_value(&vector, &key)? {
            Some(SlotValue::Bytes(bytes)) => Some(bytes),
            _ => None,
        })
    }

    /// The number of elements (from the top tree node: one row, no walk).
    pub fn vector_len(&mut self, vector: EntityId) -> Result<u64, StateError> {
        self.target(&vector, "vector len", &[CrdtKind::Vector])?;
        tree::live_len(&mut self.ov, &vector)
    }

    fn element_at(&mut self, vector: &EntityId, index: u64, op: &'static str) -> Result<Stamp, StateError> {
        self.target(vector, op, &[CrdtKind::Vector])?;
        let len = tree::live_len(&mut self.ov, vector)?;
        let key = tree::select(&mut self.ov, vector, index)?.ok_or(StateError::IndexOutOfRange { index, len })?;
        Stamp::from_key(&key).ok_or_else(|| StateError::corrupt("vector element key", "not a stamp"))
    }

    /// Overwrite the element at `index`.
    pub fn vector_set(&mut self, vector: EntityId, index: u64, value: &[u8]) -> Result<(), StateError> {
        let element = self.element_at(&vector, index, "vector set")?;
        self.submit(vector, Op::VectorSet { element, value: value.to_vec() })
    }

    /// Remove the element at `index`.
    pub fn vector_remove(&mut self, vector: EntityId, index: u64) -> Result<(), StateError> {
        let element = self.element_at(&vector, index, "vector remove")?;
        self.submit(vector, Op::VectorRemove { element })
    }

    // ---- text ----

    /// Run a local text edit: check access first (the document changes
    /// before the action exists), then record the op as an action.
    fn text_edit(
        &mut self,
        text: EntityId,
        edit: impl FnOnce(&mut weft_text::TextDoc, PublicKey, u32) -> Result<TextOp, weft_text::TextError>,
    ) -> Result<(), StateError> {
        let target = self.target(&text, "text edit", &[CrdtKind::Text])?;
        self.signer.ok_or(StateError::ReadOnly)?;
        if let StorageKind::UserOwned { owner } = target.storage
            && owner != self.author
        {
            return Err(StateError::NotOwner { target: text, owner, author: self.author });
        }
        let (author, lane) = (self.author, self.text_lane);
        let op = match self.ov.entry_mut(&text, target.kind)? {
            Entry::Text(entry) => edit(&mut entry.doc, author, lane).map_err(text_error)?,
            _ => return Err(StateError::WrongKind { target: text, op: "text edit", found: target.kind }),
        };
        if matches!(&op, TextOp::Delete { ranges } if ranges.is_empty()) {
            return Ok(());
        }
        // The document already changed: any failure from here on poisons.
        self.submit(text, Op::Text(op)).map_err(|error| self.poison(error))
    }

    /// Insert `s` at char position `pos`.
    pub fn text_insert(&mut self, text: EntityId, pos: u64, s: &str) -> Result<(), StateError> {
        let pos = usize::try_from(pos).map_err(|_| StateError::IndexOutOfRange { index: pos, len: 0 })?;
        self.text_edit(text, |doc, author, lane| doc.insert_in_lane(author, lane, pos, s))
    }

    /// Delete `len` chars from char position `pos`.
    pub fn text_delete(&mut self, text: EntityId, pos: u64, len: u64) -> Result<(), StateError> {
        let out_of_range = StateError::IndexOutOfRange { index: pos, len };
        let pos = usize::try_from(pos).map_err(|_| out_of_range.clone())?;
        let len = usize::try_from(len).map_err(|_| out_of_range)?;
        self.text_edit(text, |doc, author, _| doc.delete(author, pos, len))
    }

    /// The visible text.
    pub fn text_read(&mut self, text: EntityId) -> Result<String, StateError> {
        let target = self.target(&text, "text read", &[CrdtKind::Text])?;
        match self.ov.entry(&text, target.kind)? {
            Entry::Text(entry) => Ok(entry.doc.to_string()),
            _ => Ok(String::new()),
        }
    }

    /// The visible length in chars.
    pub fn text_len(&mut self, text: EntityId) -> Result<u64, StateError> {
        let target = self.target(&text, "text len", &[CrdtKind::Text])?;
        match self.ov.entry(&text, target.kind)? {
            Entry::Text(entry) => Ok(entry.doc.len_chars() as u64),
            _ => Ok(0),
        }
    }
}

fn to_value(value: SlotValue) -> Option<Value> {
    match value {
        SlotValue::Bytes(bytes) => Some(Value::Bytes(bytes)),
        SlotValue::Nested { id, kind } => Some(Value::Collection { id, kind }),
        SlotValue::Present => None,
    }
}
