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
//!
//! **Landing off the driver.** The transaction is written and fsynced on a
//! blocking thread ([`Driver::launch_landing`]: the turn's staged commits
//! are sealed, [`weft_store::Store::end_deferring`], then
//! [`weft_store::Store::land`]), never on the async runtime's workers.
//! [`Driver::end_unflushed`] waits for it at once; a group of calls does
//! not: the next group runs and stages on top of the sealed commits while
//! they land, and is itself launched only after the landing before it was
//! settled ([`Driver::settle_landing`]) — so what waits is released in
//! turn order, and a failed landing takes the turn staged on it down too
//! ([`Driver::abandon_turn`]).

use std::sync::Arc;

use tracing::warn;
use weft_primitives::Hash;
use weft_store::StoreError;

use super::Driver;
use crate::events::{AppliedInfo, NodeEvent};
use crate::replica_store::SealedCommits;

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

/// A turn whose commits land on a blocking thread while the driver goes
/// on: what it owes the world once durable.
pub(crate) struct LandingTurn {
    /// The contexts whose sealed commits it writes.
    contexts: Vec<Hash>,
    waiting: Unflushed,
    landing: tokio::task::JoinHandle<Result<(), StoreError>>,
    /// How the landing ended, once it did.
    ended: Option<Result<(), StoreError>>,
}

impl LandingTurn {
    /// Wait until the landing ended. Cancel-safe: dropped before it
    /// returned, it may be called again.
    pub(crate) async fn wait(&mut self) {
        if self.ended.is_none() {
            self.ended = Some((&mut self.landing).await.unwrap_or(Err(StoreError::LandingLost)));
        }
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
        let landing = self.launch_landing();
        self.settle_landing(landing).await
    }

    /// End the turn without waiting for its fsync: its staged commits are
    /// sealed and land in one transaction on a blocking thread, and the
    /// caller may open its next turn at once, staging on top of them. The
    /// landing must be settled ([`Driver::settle_landing`]) before any
    /// other turn ends; nothing of it is acknowledged before.
    pub(crate) fn launch_landing(&mut self) -> LandingTurn {
        let waiting = self.unflushed.take().unwrap_or_default();
        let contexts: Vec<Hash> = self.turn.end().into_iter().collect();
        self.store.end_deferring();
        let mut sealed: Vec<SealedCommits> = Vec::with_capacity(contexts.len());
        for id in &contexts {
            if let Some(slot) = self.contexts.get_mut(id) {
                sealed.push(slot.replica.store_mut().seal());
            }
        }
        let store = Arc::clone(&self.store);
        let landing = tokio::task::spawn_blocking(move || match sealed.is_empty() {
            true => store.land_deferred(),
            false => store.land(|txn| sealed.iter().try_for_each(|commits| commits.write(txn))),
        });
        LandingTurn { contexts, waiting, landing, ended: None }
    }

    /// Wait for a launched turn to land, then publish and announce it. If
    /// it failed, nothing of it is acknowledged: its contexts drop what
    /// they staged (also on top of it) and reload from the store; the
    /// caller fails whatever it staged since ([`Driver::abandon_turn`]).
    pub(crate) async fn settle_landing(&mut self, turn: LandingTurn) -> Result<(), StoreError> {
        let mut turn = turn;
        turn.wait().await;
        let LandingTurn { contexts, waiting, ended, .. } = turn;
        let landed = ended.unwrap_or(Err(StoreError::LandingLost));
        for id in &contexts {
            let Some(slot) = self.contexts.get_mut(id) else { continue };
            if landed.is_ok() {
                slot.replica.store_mut().sealed_landed();
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

    /// Give up the open turn because the one it staged on failed to land:
    /// nothing of it is acknowledged, its contexts drop what they staged
    /// and reload from the store.
    pub(crate) fn abandon_turn(&mut self) {
        self.unflushed = None;
        // Its other writes (pending rows, records) are plain commits that
        // need no acknowledgment; the store wants every group to end in
        // a landing.
        let _ = self.store.flush();
        for id in self.turn.end() {
            let Some(slot) = self.contexts.get_mut(&id) else { continue };
            slot.replica.store_mut().drop_staged();
            self.reload_waiting.insert(id);
            self.next_reload_ms = 0;
        }
    }
}
