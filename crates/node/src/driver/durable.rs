//! One fsync for many commits: a driver turn that commits several deltas
//! (a group of clients' calls, a sync page, a gossiped delta and the
//! pending children it releases) runs between [`Driver::begin_unflushed`]
//! and [`Driver::end_unflushed`]. Each delta still commits in its own redb
//! transaction, atomically, but without an fsync
//! ([`weft_store::Store::defer_durability`]); the end makes them all
//! durable with one ([`weft_store::Store::flush`]).
//!
//! What must never get ahead of the disk waits for that fsync: gossip of
//! our own deltas (a peer must not hold a delta of ours that a crash could
//! make us forget: we would write other deltas under the same clock and
//! text lane) and `StateMutation` events, one per context for the whole
//! turn (so a page or a burst never floods the bus). Answers to clients wait too
//! (their callers hold them until `end_unflushed` returns `Ok`). If the
//! fsync fails, what waited is dropped: the store reopens at its last
//! durable commit and the driver reloads its replicas from it
//! (`reload_after_store_reopen`); remote deltas come back through sync.

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
        self.unflushed = Some(Unflushed::default());
    }

    /// Make the turn's commits durable with one fsync, then publish and
    /// announce them; on `Err` nothing of the turn is acknowledged.
    pub(crate) async fn end_unflushed(&mut self) -> Result<(), StoreError> {
        let waiting = self.unflushed.take().unwrap_or_default();
        if let Err(error) = self.store.flush() {
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
