//! One transaction and one fsync for many commits: a driver turn that
//! commits several deltas (a group of clients' calls, a sync page, a
//! gossiped delta and the pending children it releases) runs between
//! [`Driver::begin_unflushed`] and [`Driver::end_unflushed`]. While it
//! runs, every context's applied deltas (rows, state writes, handler jobs)
//! are staged in memory by its [`crate::DiskReplicaStore`] (the shared
//! [`crate::CommitTurn`] is open) and read back as if committed; the end
//! writes all of them in one redb transaction and commits it durably
//! ([`weft_store::Store::flush_with`]). The other writes of the turn
//! (pending deltas, records) commit as they happen without an fsync
//! ([`weft_store::Store::defer_durability`]) and become durable with that
//! last commit. So a crash keeps the turn whole or loses all of it, and a
//! turn costs one transaction of applied rows and one fsync however many
//! deltas it applies.
//!
//! What must never get ahead of the disk waits for that fsync: gossip of
//! our own deltas (a peer must not hold a delta of ours that a crash could
//! make us forget: we would write other deltas under the same clock and
//! text lane) and `StateMutation` events, one per context for the whole
//! turn (so a page or a burst never floods the bus). Answers to clients wait too
//! (their callers hold them until `end_unflushed` returns `Ok`). If the
//! transaction or its fsync fails, what waited is dropped, the staged
//! commits are forgotten and the contexts that staged them are reloaded
//! from the store (`reload_after_store_reopen`, which also reloads every
//! context when the store reopened at its last durable commit); remote
//! deltas come back through sync.

use tracing::warn;
use weft_primitives::Hash;
use weft_store::StoreError;

use super::Driver;
use crate::events::{AppliedInfo, NodeEvent};

/// What the commits of an unflushed turn owe the world once durable.
#[derive(Default)]
pub(crate) struct Unflushed {
    /// Our deltas to gossip: (context, id, bytes).
    pub(crate) publishes: Vec<(Hash, Hash, Vec<u8>)>,
    /// Events for the bus.
    pub(crate) events: Vec<NodeEvent>,
}

impl Unflushed {
    /// Announce `deltas` applied to `context` once durable, in the turn's
    /// one `StateMutation` of the context.
    pub(crate) fn add_mutation(&mut self, context: Hash, root_hash: Hash, deltas: Vec<AppliedInfo>) {
        for event in &mut self.events {
            if let NodeEvent::StateMutation { context: of, root_hash: root, deltas: listed } = event
                && *of == context
            {
                *root = root_hash;
                listed.extend(deltas);
                return;
            }
        }
        self.events.push(NodeEvent::StateMutation { context, root_hash, deltas });
    }
}

impl Driver {
    /// Start deferring the store's fsyncs (see the module doc).
    pub(crate) fn begin_unflushed(&mut self) {
        self.store.defer_durability();
        self.turn.begin();
        self.unflushed = Some(Unflushed::default());
    }

    /// Make the turn's commits durable with one fsync, then publish and
    /// announce them; on `Err` nothing of the turn is acknowledged.
    pub(crate) async fn end_unflushed(&mut self) -> Result<(), StoreError> {
        let waiting = self.unflushed.take().unwrap_or_default();
        let staged = self.turn.end();
        let landed = if staged.is_empty() {
            self.store.flush()
        } else {
            let contexts = &self.contexts;
            self.store.flush_with(|txn| {
                for id in &staged {
                    if let Some(slot) = contexts.get(id) {
                        slot.replica.store().write_staged(txn)?;
                    }
                }
                Ok(())
            })
        };
        for id in &staged {
            let Some(slot) = self.contexts.get_mut(id) else { continue };
            if landed.is_ok() {
                slot.replica.store_mut().staged_landed();
                // The jobs the turn's deltas owe are in the inbox only now:
                // take them, or they would wait for the context's next apply.
                self.refill_jobs(*id);
                self.reschedule(*id);
            } else {
                // The replica holds what the store does not: rebuild it.
                slot.replica.store_mut().drop_staged();
                self.reload_waiting.insert(*id);
                self.next_reload_ms = 0;
            }
        }
        if let Err(error) = landed {
            warn!(%error, "making a turn's commits durable failed; none of them is acknowledged");
            return Err(error);
        }
        for (context, id, bytes) in waiting.publishes {
            self.publish(context, id, &bytes).await;
        }
        for event in waiting.events {
            let _ = self.events.send(event);
        }
        Ok(())
    }
}
