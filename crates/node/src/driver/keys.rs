//! Key epochs on this node: the group keys it holds, one per epoch; taking
//! its own key out of every applied rotation; rotating when a departure asks
//! for it; removing a member (a `Remove` and a `Rotate` in one delta).
//!
//! Guarantees: a key is stored before it is used to seal; gossip is sealed
//! with the newest key held, so after a rotation reaches a node nothing it
//! seals opens with an older key; a rotation this node committed is picked
//! up from its own wrap in the replica, so a crash between the commit and
//! storing the key loses nothing.

use std::collections::BTreeMap;

use tracing::{info, warn};
use weft_membership::{GroupKey, KEY_TAG_BYTES, WrappedKey, unwrap_group_key, wrap_group_key};
use weft_primitives::{Hash, PublicKey};
use weft_sync::{Event, KeyEpoch, MembershipChange};

use super::Driver;
use crate::NodeError;
use crate::command::KeyEpochInfo;
use crate::records;

/// The group keys of one context this node holds, by epoch.
#[derive(Default)]
pub(crate) struct GroupKeys {
    keys: BTreeMap<KeyEpoch, GroupKey>,
}

impl GroupKeys {
    /// The keys read from the store, or the record's single key as epoch 0
    /// for a context written before keys had epochs.
    pub(crate) fn restore(stored: Vec<(KeyEpoch, [u8; 32])>, record_key: [u8; 32]) -> GroupKeys {
        let mut keys = GroupKeys::default();
        if stored.is_empty() {
            keys.insert(KeyEpoch::GENESIS, GroupKey::from_bytes(record_key));
        }
        for (epoch, bytes) in stored {
            keys.insert(epoch, GroupKey::from_bytes(bytes));
        }
        keys
    }

    pub(crate) fn insert(&mut self, epoch: KeyEpoch, key: GroupKey) {
        self.keys.insert(epoch, key);
    }

    pub(crate) fn contains(&self, epoch: &KeyEpoch) -> bool {
        self.keys.contains_key(epoch)
    }

    /// The newest key held: the one to seal with.
    pub(crate) fn newest(&self) -> Option<(KeyEpoch, &GroupKey)> {
        self.keys.iter().next_back().map(|(epoch, key)| (*epoch, key))
    }

    /// The key whose tag leads a sealed message (newest first).
    pub(crate) fn by_tag(&self, tag: &[u8; KEY_TAG_BYTES]) -> Option<(KeyEpoch, &GroupKey)> {
        self.keys.iter().rev().find(|(_, key)| key.tag() == *tag).map(|(epoch, key)| (*epoch, key))
    }
}

impl Driver {
    /// Take our keys out of the rotations applied since the last call, and
    /// rotate where a departure needs it (see `weft_sync::membership`).
    pub(super) async fn refresh_keys(&mut self) {
        for context in std::mem::take(&mut self.keys_dirty) {
            if let Err(error) = self.refresh_context_keys(context).await {
                warn!(%context, %error, "could not bring the group keys up to date");
            }
        }
    }

    async fn refresh_context_keys(&mut self, context: Hash) -> Result<(), NodeError> {
        let Some(slot) = self.contexts.get_mut(&context) else { return Ok(()) };
        let me = slot.identity.public_key();
        let members = slot.replica.member_set();
        let mut fresh = Vec::new();
        for (epoch, _) in members.epochs() {
            if slot.keys.contains(&epoch) {
                continue;
            }
            let Some(wrapped) = members.wrapped_key(&epoch, &me) else { continue };
            let key = WrappedKey::decode(wrapped)
                .map_err(NodeError::from)
                .and_then(|wrapped| Ok(unwrap_group_key(&wrapped, &context, &slot.identity)?));
            match key {
                Ok(key) => fresh.push((epoch, key)),
                // A member that wrapped garbage for us: the next rotation
                // (ours, when one is needed) replaces it.
                Err(error) => warn!(%context, ?epoch, %error, "our wrap of a key epoch does not open"),
            }
        }
        let needed = members.rotation_needed() && members.contains(&me);
        if !fresh.is_empty() {
            self.store.write(|txn| {
                fresh.iter().try_for_each(|(epoch, key)| records::put_group_key(txn, context, *epoch, key.as_bytes()))
            })?;
            for (epoch, key) in fresh {
                info!(%context, epoch = epoch.number, "holding a new group key");
                slot.keys.insert(epoch, key);
            }
        }
        if needed {
            let id = self.rotate(context, None).await?;
            info!(%context, rotation = %id, "rotated the group key after a departure");
        }
        Ok(())
    }

    /// Commit a rotation to the next epoch, wrapped for every member at our
    /// heads (but `remove`, which the same delta removes).
    async fn rotate(&mut self, context: Hash, remove: Option<PublicKey>) -> Result<Hash, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let members = slot.replica.member_set();
        let key = GroupKey::generate()?;
        let wrapped = members
            .iter()
            .filter(|member| Some(**member) != remove)
            .map(|member| Ok((*member, wrap_group_key(&key, &context, member)?.encode())))
            .collect::<Result<Vec<_>, NodeError>>()?;
        let epoch = members.current_epoch().number.saturating_add(1);
        let mut events = Vec::new();
        if let Some(member) = remove {
            events.push(Event::membership(MembershipChange::Remove { member }));
        }
        events.push(Event::membership(MembershipChange::Rotate { epoch, wrapped }));
        let id = self.commit_events(context, events).await?;
        // Hold the key at once (a crash before this line loses nothing: our
        // own wrap is in the delta and the next refresh takes it).
        let epoch = KeyEpoch { number: epoch, rotation: id };
        self.store.write(|txn| records::put_group_key(txn, context, epoch, key.as_bytes()))?;
        if let Some(slot) = self.contexts.get_mut(&context) {
            slot.keys.insert(epoch, key);
        }
        Ok(id)
    }

    /// Remove `member` (we must be an admin) and rotate the key, in one
    /// delta; returns its id.
    pub(super) async fn remove_member(&mut self, context: Hash, member: PublicKey) -> Result<Hash, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        if !slot.replica.is_member(&member) {
            return Err(NodeError::NotAMember(member));
        }
        let id = self.rotate(context, Some(member)).await?;
        info!(%context, ?member, delta = %id, "member removed; group key rotated");
        Ok(id)
    }

    /// Every key epoch of `context`, oldest first.
    pub(super) fn key_epochs(&self, context: Hash) -> Result<Vec<KeyEpochInfo>, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let members = slot.replica.member_set();
        let current = members.current_epoch();
        // Epoch 0's key was made by the creator and handed to each joiner.
        let genesis = (KeyEpoch::GENESIS, 1);
        Ok(std::iter::once(genesis)
            .chain(members.epochs())
            .map(|(epoch, recipients)| KeyEpochInfo {
                number: epoch.number,
                rotation: epoch.rotation,
                recipients: recipients as u64,
                held: slot.keys.contains(&epoch),
                current: epoch == current,
            })
            .collect())
    }
}
