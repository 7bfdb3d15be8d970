//! The driver: one tokio task that owns every replica of the node and is the
//! only thing that touches them.
//!
//! It waits on four things at once: requests from [`NodeHandle`](crate::NodeHandle)s,
//! reports from stream tasks, network events, and the earliest replica timer
//! or handler retry of any context (from an index, not a walk over them).
//! Each is turned into replica [`Input`]s; the replica's [`Output`]s are
//! carried out right away (publish, send a frame, report a gossip verdict,
//! acknowledge a write, enqueue handler jobs, tell subscribers). Because one task does all of it, a local write is prepared
//! and committed in the same turn and can never be stale, and no replica
//! needs a lock.
//!
//! Submodules: `contexts` (create, open, leave, describe), `calls` (WASM
//! calls and local writes), `handlers` (event handler jobs), `join` (the
//! inviter's side of admission), `peers` (the address book, redials and
//! directory exchange), `streams` (sync stream tasks), `durable` (one fsync
//! per turn), `keys` (group keys), `wakeups` (when each context next needs
//! the driver).

mod calls;
mod contexts;
mod durable;
mod handlers;
pub(crate) mod join;
mod keys;

pub(crate) use keys::GroupKeys;
mod peers;
pub(crate) mod streams;
mod topics;
mod wakeups;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tracing::{debug, error, info, warn};
use weft_net::{NetEvent, NetHandle, PeerId as NetPeer, Validation};
use weft_primitives::{Hash, PublicKey, SigningKey};
use weft_runtime::{App, Runtime};
use weft_store::Store;
use weft_sync::{Input, Offense, Output, PeerId as SyncPeer, Replica, SessionId, Verdict, WriteError};

use crate::command::{Command, Internal, Outbound};
use crate::config::NodeConfig;
use crate::events::{AppliedInfo, Counters, NodeEvent};
use crate::peers::PeerBook;
use crate::peers::redial::RedialSchedule;
use crate::records::ContextRecord;
use crate::replica_store::{DiskReplicaStore, JobInbox};
use topics::{Subscription, TopicDirectory};

pub(crate) use handlers::JobQueue;

/// The longest the driver sleeps without looking at its timers.
const IDLE_WAKEUP_MS: u64 = 1_000;
/// Follow-up inputs (closed sessions found while carrying out outputs)
/// processed in one turn; the rest wait for the next turn.
const DEFERRED_INPUTS_MAX: usize = 1024;

/// Dead letters one listing returns (oldest first).
pub(crate) const DEAD_JOBS_LISTED_MAX: usize = 1000;

/// Topics we do not serve whose subscribers are remembered (for a context
/// joined later); announcements of further topic names are ignored.
pub(crate) const UNSERVED_TOPICS_MAX: usize = 1024;

/// Milliseconds since the Unix epoch: the replicas' and clocks' time.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random u64 from the OS (replica seeds, tokens); 0 if it is unavailable.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// One context the node is in.
pub(crate) struct ContextSlot {
    pub(crate) record: ContextRecord,
    pub(crate) identity: SigningKey,
    pub(crate) app: Arc<App>,
    pub(crate) replica: Replica<DiskReplicaStore>,
    pub(crate) keys: GroupKeys,
    pub(crate) topic: String,
    pub(crate) jobs: JobQueue,
    pub(crate) inbox: JobInbox,
}

/// One open sync stream.
struct SessionLink {
    context: Hash,
    outbox: mpsc::Sender<Outbound>,
    /// For a session we opened: fired once the responder proved it speaks
    /// for a member; until then our frames wait in the outbox.
    proven: Option<tokio::sync::oneshot::Sender<()>>,
}

/// See the module doc.
pub(crate) struct Driver {
    pub(crate) config: NodeConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) net: NetHandle,
    pub(crate) local_peer: SyncPeer,
    pub(crate) identity: SigningKey,
    pub(crate) contexts: BTreeMap<Hash, ContextSlot>,
    /// Who subscribes to which topic; the topics we serve.
    pub(crate) topics: TopicDirectory,
    net_peers: HashMap<SyncPeer, NetPeer>,
    gossip_waiting: HashMap<u64, (Hash, NetPeer)>,
    next_message: u64,
    sessions: HashMap<SessionId, SessionLink>,
    deferred: Vec<(Hash, Input)>,
    pub(crate) internal_tx: mpsc::Sender<Internal>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) counters: Arc<Counters>,
    next_token: u64,
    /// Where the members' nodes are (persisted).
    pub(crate) book: PeerBook,
    /// When to dial which of them.
    redial: RedialSchedule,
    /// What identify said of each connected peer, so a peer that later
    /// proves to serve a member enters the book with its addresses.
    identified: HashMap<NetPeer, Vec<String>>,
    /// When we last asked a node for a context's directory.
    directory_asked: HashMap<([u8; 32], Hash), u64>,
    /// (node, context) pairs whose node proved, while connected, that it
    /// speaks for a member: only these are the context's sync peers.
    proven: std::collections::HashSet<([u8; 32], Hash)>,
    /// The inviter (its node and identity) each context was joined through
    /// in this run, trusted as a member until our history knows it.
    pub(crate) joined_through: HashMap<Hash, ([u8; 32], PublicKey)>,
    next_redial_check_ms: u64,
    next_directory_round_ms: u64,
    /// The store's reopen count the replicas were loaded at.
    store_reopens: u64,
    /// Contexts still to rebuild from the store after it reopened or a
    /// turn's commit failed. Their replicas may hold what the store does
    /// not, so nothing is fed to them and no call runs on them meanwhile.
    reload_waiting: BTreeSet<Hash>,
    next_reload_ms: u64,
    /// Contexts whose applied membership changes may bring us a key or ask
    /// for a rotation.
    pub(crate) keys_dirty: BTreeSet<Hash>,
    /// Contexts we left whose `Leave` no member's node is known to hold
    /// yet: (the `Leave`, when to sync again, since when).
    pub(crate) leaving: BTreeMap<Hash, (Hash, u64, u64)>,
    /// A context whose write being committed is not gossiped (a `Leave`).
    pub(crate) unpublished: Option<Hash>,
    /// During an unflushed turn: what waits for its fsync.
    pub(crate) unflushed: Option<durable::Unflushed>,
    /// Shared with every context's store: open during an unflushed turn,
    /// when their commits are staged for the turn's one transaction.
    pub(crate) turn: crate::CommitTurn,
    /// The open contexts whose views run off the driver.
    pub(crate) views: crate::views::ViewTargets,
    /// The context whose handler job ran first in the last turn: the next
    /// turn starts after it.
    jobs_cursor: Option<Hash>,
    /// The state rows of every context recently read or written.
    pub(crate) state_cache: crate::StateCache,
    /// When each context next needs the driver.
    wakeups: wakeups::Wakeups,
    next_wakeups_rescan_ms: u64,
}

/// What a turn of the replica said about local writes.
pub(crate) type WriteResults = Vec<(u64, Result<Hash, WriteError>)>;

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: NodeConfig,
        store: Arc<Store>,
        runtime: Arc<Runtime>,
        net: NetHandle,
        local_peer: SyncPeer,
        identity: SigningKey,
        internal_tx: mpsc::Sender<Internal>,
        events: broadcast::Sender<NodeEvent>,
        counters: Arc<Counters>,
        book: PeerBook,
        views: crate::views::ViewTargets,
    ) -> Driver {
        let redial = RedialSchedule::new(config.redial_base_ms, config.redial_max_ms);
        let state_cache = crate::StateCache::new(config.state_cache_bytes);
        Driver {
            config,
            store,
            runtime,
            net,
            local_peer,
            identity,
            contexts: BTreeMap::new(),
            topics: TopicDirectory::new(UNSERVED_TOPICS_MAX),
            net_peers: HashMap::new(),
            gossip_waiting: HashMap::new(),
            next_message: 0,
            sessions: HashMap::new(),
            deferred: Vec::new(),
            internal_tx,
            events,
            counters,
            next_token: 0,
            book,
            redial,
            identified: HashMap::new(),
            directory_asked: HashMap::new(),
            proven: std::collections::HashSet::new(),
            joined_through: HashMap::new(),
            next_redial_check_ms: 0,
            next_directory_round_ms: now_ms() + peers::DIRECTORY_REFRESH_MS,
            store_reopens: 0,
            reload_waiting: BTreeSet::new(),
            next_reload_ms: 0,
            keys_dirty: BTreeSet::new(),
            leaving: BTreeMap::new(),
            unpublished: None,
            unflushed: None,
            turn: crate::CommitTurn::default(),
            views,
            jobs_cursor: None,
            state_cache,
            wakeups: wakeups::Wakeups::default(),
            next_wakeups_rescan_ms: 0,
        }
    }

    /// Serve until shut down or every handle is dropped.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::Receiver<Internal>,
        mut net_events: mpsc::Receiver<NetEvent>,
    ) {
        let mut net_alive = true;
        loop {
            #[cfg(debug_assertions)]
            self.check_wakeups();
            let wait_ms = self.next_wakeup_ms().saturating_sub(now_ms()).min(IDLE_WAKEUP_MS);
            let sleep = tokio::time::sleep(Duration::from_millis(wait_ms));
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else {
                        self.shutdown().await;
                        return;
                    };
                    let mut next = Some(command);
                    while let Some(command) = next.take() {
                        match command {
                            Command::Shutdown { reply } => {
                                self.shutdown().await;
                                // Close the database before answering, so
                                // the caller may reopen it at once.
                                drop(self);
                                let _ = reply.send(Ok(()));
                                return;
                            }
                            Command::Call { context, method, args, reply } => {
                                let first = calls::CallRequest { context, method, args, reply };
                                next = self.on_calls(first, &mut commands).await;
                            }
                            command => self.on_command(command).await,
                        }
                    }
                }
                Some(message) = internal.recv() => self.on_internal_burst(message, &mut internal).await,
                event = net_events.recv(), if net_alive => match event {
                    Some(event) => {
                        // A burst of gossip (and the pending deltas it
                        // releases) commits with one fsync.
                        self.begin_unflushed();
                        self.on_net_event(event).await;
                        for _ in 1..crate::NET_EVENTS_PER_TURN_MAX {
                            let Ok(event) = net_events.try_recv() else { break };
                            self.on_net_event(event).await;
                        }
                        let _ = self.end_unflushed().await;
                    }
                    None => {
                        warn!("the network stopped; the node keeps serving local calls");
                        net_alive = false;
                    }
                },
                () = sleep => self.on_tick().await,
            }
            self.run_deferred().await;
            self.refresh_keys().await;
            self.continue_leaving().await;
            self.reload_after_store_reopen().await;
            self.run_due_jobs().await;
            self.redial_due().await;
        }
    }

    /// After an I/O failure (a full disk) the store closed and reopened its
    /// database. A commit that failed is not acknowledged, but after a
    /// failed sync it may still be on disk: rebuild every replica from the
    /// store so memory holds exactly what the disk does. A context whose
    /// rebuild fails (the disk failed again) keeps its slot and is tried
    /// again at the next reopening or after [`weft_store::REOPEN_PAUSE`].
    async fn reload_after_store_reopen(&mut self) {
        let reopens = self.store.reopens();
        let retry_due = !self.reload_waiting.is_empty() && now_ms() >= self.next_reload_ms;
        if reopens != self.store_reopens {
            self.store_reopens = reopens;
            self.reload_waiting = self.contexts.keys().copied().collect();
            warn!(
                contexts = self.reload_waiting.len(),
                "the database was reopened after an I/O failure; reloading contexts from disk"
            );
        } else if !retry_due {
            return;
        }
        let waiting: Vec<Hash> = self.reload_waiting.iter().copied().collect();
        for id in waiting {
            let Some(record) = self.contexts.get(&id).map(|slot| slot.record.clone()) else {
                self.reload_waiting.remove(&id);
                continue;
            };
            let fresh = match self.load_context(record) {
                Ok(fresh) => fresh,
                Err(error) => {
                    warn!(context = %id, %error, "reloading a context from disk failed; will retry");
                    continue;
                }
            };
            self.reload_waiting.remove(&id);
            let stale: Vec<SessionId> =
                self.sessions.iter().filter(|(_, link)| link.context == id).map(|(session, _)| *session).collect();
            for session in stale {
                if let Some(link) = self.sessions.remove(&session) {
                    let _ = link.outbox.try_send(Outbound::Close);
                }
            }
            let topic = fresh.topic.clone();
            self.contexts.insert(id, fresh);
            self.reschedule(id);
            // The new replica learns the connected members again.
            self.attach_topic(id, topic).await;
        }
        let pause = u64::try_from(weft_store::REOPEN_PAUSE.as_millis()).unwrap_or(u64::MAX);
        self.next_reload_ms = now_ms().saturating_add(pause);
    }

    async fn shutdown(&mut self) {
        info!("node shutting down");
        self.views.close().await;
        for link in self.sessions.values() {
            let _ = link.outbox.try_send(Outbound::Close);
        }
        self.sessions.clear();
        let _ = self.net.shutdown().await;
    }

    fn next_wakeup_ms(&self) -> u64 {
        self.wakeups.next_ms()
    }

    async fn on_tick(&mut self) {
        let now = now_ms();
        self.rescan_wakeups(now);
        for context in self.wakeups.due(now) {
            let timer_due = self.contexts.get(&context).is_some_and(|slot| slot.replica.next_timer_ms() <= now);
            if timer_due {
                // `feed` reschedules the context.
                self.feed(context, Input::Tick).await;
            } else {
                // Due for a handler job (run after this turn), or early.
                self.reschedule(context);
            }
        }
    }

    pub(crate) fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Give `input` to the context's replica and carry out what it says.
    pub(crate) async fn feed(&mut self, context: Hash, input: Input) -> WriteResults {
        if self.reload_waiting.contains(&context) {
            // The replica may hold what the store lost (a failed commit):
            // it must not build on it. Gossip is let go (sync brings it
            // back); everything else waits for the reload.
            if let Input::GossipReceived { message, .. } = input {
                let verdict = Output::GossipVerdict { message, verdict: weft_sync::Verdict::Ignore };
                return self.carry_out(context, vec![verdict]).await;
            }
            return Vec::new();
        }
        let Some(slot) = self.contexts.get_mut(&context) else { return Vec::new() };
        let outputs = slot.replica.handle(input, now_ms());
        let writes = self.carry_out(context, outputs).await;
        self.reschedule(context);
        writes
    }

    async fn run_deferred(&mut self) {
        let mut budget = DEFERRED_INPUTS_MAX;
        while budget > 0 && !self.deferred.is_empty() {
            let batch = std::mem::take(&mut self.deferred);
            for (context, input) in batch {
                budget = budget.saturating_sub(1);
                self.feed(context, input).await;
            }
        }
    }

    async fn carry_out(&mut self, context: Hash, outputs: Vec<Output>) -> WriteResults {
        let mut writes = Vec::new();
        let mut applied = Vec::new();
        for output in outputs {
            match output {
                Output::Publish { id, bytes } => match &mut self.unflushed {
                    // Gossip only what is durable: a peer must never hold a
                    // delta of ours that a crash could make us forget.
                    Some(group) => group.publishes.push((context, id, bytes)),
                    None => self.publish(context, id, &bytes).await,
                },
                Output::GossipVerdict { message, verdict } => {
                    if let Some((msg_id, source)) = self.gossip_waiting.remove(&message) {
                        let validation = match verdict {
                            Verdict::Accept => Validation::Accept,
                            Verdict::Ignore => Validation::Ignore,
                            Verdict::Reject => Validation::Reject,
                        };
                        let _ = self.net.report_validation(msg_id, source, validation).await;
                    }
                }
                Output::Send { to, session, bytes } => self.send_frame(context, to, session, bytes),
                Output::CloseSession { session, .. } => {
                    if let Some(link) = self.sessions.remove(&session) {
                        let _ = link.outbox.try_send(Outbound::Close);
                    }
                }
                Output::Penalize { peer, offense } => self.penalize(context, peer, offense).await,
                // One event per call, however many deltas it applied.
                Output::Applied { deltas } => applied.extend(deltas),
                Output::WriteCommitted { token, id } => {
                    Counters::bump(&self.counters.writes_committed, 1);
                    writes.push((token, Ok(id)));
                }
                Output::WriteRejected { token, reason } => writes.push((token, Err(reason))),
                Output::Diverged { peer, heads, ours, ours_recomputed, theirs } => {
                    Counters::bump(&self.counters.divergences, 1);
                    error!(
                        %context, peer = ?peer, heads = heads.len(), %ours, ?ours_recomputed, %theirs,
                        "DIVERGENCE: same heads, different root hash"
                    );
                    let _ = self.events.send(NodeEvent::Diverged { context, peer: peer.0 });
                }
                Output::InSync { peer, root_hash } => {
                    debug!(%context, ?peer, %root_hash, "in sync");
                    let _ = self.events.send(NodeEvent::InSync { context, peer: peer.0, root_hash });
                }
                Output::SnapshotNeeded { peer, ids } => {
                    warn!(%context, ?peer, pruned = ids.len(), "history we need was pruned: a snapshot is needed");
                    let _ = self.events.send(NodeEvent::SnapshotNeeded { context });
                }
                Output::MembersChanged { added, left } => {
                    info!(%context, added = added.len(), left = left.len(), "membership changed");
                    let _ = self.events.send(NodeEvent::MembersChanged { context, added, left });
                }
            }
        }
        if !applied.is_empty() {
            self.on_applied(context, applied);
        }
        self.refill_jobs(context);
        writes
    }

    fn on_applied(&mut self, context: Hash, deltas: Vec<weft_sync::AppliedDelta>) {
        Counters::bump(&self.counters.deltas_applied, deltas.len() as u64);
        if deltas.iter().any(|d| d.events.iter().any(weft_sync::Event::is_membership)) {
            self.keys_dirty.insert(context);
        }
        let Some(slot) = self.contexts.get(&context) else { return };
        let root_hash = slot.replica.root_hash();
        if self.events.receiver_count() == 0 {
            return;
        }
        let deltas = deltas
            .into_iter()
            .map(|d| AppliedInfo { id: d.id, author: d.author, local: d.local, events: d.events })
            .collect();
        match &mut self.unflushed {
            Some(group) => group.add_mutation(context, root_hash, deltas),
            None => {
                let _ = self.events.send(NodeEvent::StateMutation { context, root_hash, deltas });
            }
        }
    }

    pub(crate) async fn publish(&mut self, context: Hash, id: Hash, bytes: &[u8]) {
        if self.unpublished == Some(context) {
            return;
        }
        let Some(slot) = self.contexts.get(&context) else { return };
        let Some((_, key)) = slot.keys.newest() else {
            error!(%context, "no group key held; anti-entropy will carry the delta");
            return;
        };
        let sealed = match weft_membership::seal_gossip(key, &context, &id, bytes) {
            Ok(sealed) => sealed,
            Err(error) => {
                error!(%context, %error, "sealing a delta for gossip failed; anti-entropy will carry it");
                return;
            }
        };
        let topic = slot.topic.clone();
        Counters::bump(&self.counters.gossip_published, 1);
        // Whatever the outcome (no mesh peers, queues full), the repair path
        // carries the delta: gossip is only the fast path.
        if let Err(error) = self.net.publish(&topic, sealed).await {
            debug!(%context, %error, "publish failed");
        }
    }

    async fn penalize(&mut self, context: Hash, peer: SyncPeer, offense: Offense) {
        Counters::bump(&self.counters.penalties, 1);
        if let Offense::BadDelta(rejection) = &offense {
            Counters::bump(&self.counters.deltas_rejected, 1);
            Counters::bump(&self.counters.deltas_rejected_by[rejection.reason_index()], 1);
        }
        warn!(%context, ?peer, ?offense, "peer penalized");
        if let (Offense::BadMessage(_), Some(net_peer)) = (&offense, self.net_peer(peer)) {
            // A peer that breaks the stream protocol loses its connection;
            // gossip offenses are scored by gossipsub through the verdict.
            let _ = self.net.disconnect(net_peer).await;
        }
    }

    pub(crate) fn net_peer(&mut self, peer: SyncPeer) -> Option<NetPeer> {
        if let Some(found) = self.net_peers.get(&peer) {
            return Some(*found);
        }
        let net_peer = weft_net::peer_id_of(&PublicKey(peer.0)).ok()?;
        self.net_peers.insert(peer, net_peer);
        Some(net_peer)
    }

    fn sync_peer(peer: &NetPeer) -> Option<SyncPeer> {
        weft_net::peer_public_key(peer).map(|key| SyncPeer(key.0))
    }

    fn send_frame(&mut self, context: Hash, to: SyncPeer, session: SessionId, bytes: Vec<u8>) {
        if let Some(link) = self.sessions.get(&session) {
            if link.outbox.try_send(Outbound::Frame(bytes)).is_err() {
                // The writer fell behind its bound or is gone: end the
                // session; the replica retries with backoff.
                self.sessions.remove(&session);
                self.deferred.push((context, Input::StreamClosed { peer: to, session }));
            }
            return;
        }
        if session.opener != self.local_peer {
            return; // a session the peer opened and that ended
        }
        let Some(net_peer) = self.net_peer(to) else {
            self.deferred.push((context, Input::StreamClosed { peer: to, session }));
            return;
        };
        let Some(slot) = self.contexts.get(&context) else { return };
        let digest = crate::wire::sync_hello_digest(&context, session.n, &self.local_peer.0, &to.0);
        let hello = crate::wire::StreamHello::Sync {
            version: crate::wire::NODE_WIRE_VERSION,
            context,
            n: session.n,
            member: slot.identity.public_key(),
            signature: slot.identity.sign(digest.as_bytes()),
        };
        let (outbox, frames) = mpsc::channel(streams::SESSION_OUTBOX_MAX);
        let _ = outbox.try_send(Outbound::Frame(bytes));
        let (proven, proof) = tokio::sync::oneshot::channel();
        self.sessions.insert(session, SessionLink { context, outbox, proven: Some(proven) });
        Counters::bump(&self.counters.sync_sessions_opened, 1);
        tokio::spawn(streams::open_session(
            self.net.clone(),
            net_peer,
            session,
            hello,
            frames,
            proof,
            self.internal_tx.clone(),
            self.counters.clone(),
        ));
    }

    /// Handle `first` and the reports already waiting behind it. Sync
    /// frames, session openings and closings, of whatever sessions and
    /// contexts (a reconnect catching up many contexts at once), share one
    /// turn and one fsync, up to [`crate::SYNC_REPORTS_PER_TURN_MAX`]; any
    /// other report (a join, a directory) ends the turn and is handled
    /// alone, in arrival order.
    async fn on_internal_burst(&mut self, first: Internal, internal: &mut mpsc::Receiver<Internal>) {
        if !Self::turn_safe(&first) {
            return self.on_internal(first).await;
        }
        self.begin_unflushed();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(message) = next.take() {
            if !Self::turn_safe(&message) {
                let _ = self.end_unflushed().await;
                return self.on_internal(message).await;
            }
            match message {
                Internal::Frame { peer, session, bytes } => self.on_frame(peer, session, bytes).await,
                other => self.on_internal(other).await,
            }
            handled += 1;
            if handled < crate::SYNC_REPORTS_PER_TURN_MAX {
                next = internal.try_recv().ok();
            }
        }
        let _ = self.end_unflushed().await;
    }

    /// Reports about sync sessions: they feed replicas and answer nothing
    /// that must wait for the disk, so they may share an unflushed turn.
    fn turn_safe(message: &Internal) -> bool {
        matches!(
            message,
            Internal::Frame { .. }
                | Internal::SessionAccept { .. }
                | Internal::Closed { .. }
                | Internal::InboundSession { .. }
        )
    }

    /// One frame of a sync session, inside an unflushed turn.
    async fn on_frame(&mut self, peer: NetPeer, session: SessionId, bytes: Vec<u8>) {
        let Some(context) = self.sessions.get(&session).map(|link| link.context) else { return };
        let Some(from) = Self::sync_peer(&peer) else { return };
        self.feed(context, Input::StreamMessage { from, session, bytes }).await;
    }

    async fn on_internal(&mut self, message: Internal) {
        match message {
            Internal::InboundSession { context, peer, session, member, signature, outbox, verdict } => {
                let Some(slot) = self.contexts.get(&context) else {
                    debug!(%context, %peer, "sync stream for a context we are not in: closed");
                    let _ = verdict.send(false);
                    return;
                };
                // Only a member's node is served the context's history.
                let digest = crate::wire::sync_hello_digest(&context, session.n, &session.opener.0, &self.local_peer.0);
                if !slot.replica.is_member(&member) || member.verify(digest.as_bytes(), &signature).is_err() {
                    debug!(%context, %peer, "sync stream from a node that does not speak for a member: closed");
                    let _ = verdict.send(false);
                    return;
                }
                // Our proof first: the opener sends nothing until it has it.
                let accept_digest =
                    crate::wire::sync_accept_digest(&context, session.n, &session.opener.0, &self.local_peer.0);
                let accept = crate::wire::SyncAccept {
                    member: slot.identity.public_key(),
                    signature: slot.identity.sign(accept_digest.as_bytes()),
                };
                if outbox.try_send(Outbound::Frame(accept.encode())).is_err() || verdict.send(true).is_err() {
                    return;
                }
                Counters::bump(&self.counters.sync_sessions_accepted, 1);
                self.sessions.insert(session, SessionLink { context, outbox, proven: None });
                self.member_node_proven(context, peer).await;
            }
            Internal::SessionAccept { peer, session, bytes } => self.on_session_accept(peer, session, &bytes).await,
            Internal::Frame { peer, session, bytes } => {
                // A page of deltas (and the pending ones it releases): one fsync.
                self.begin_unflushed();
                self.on_frame(peer, session, bytes).await;
                let _ = self.end_unflushed().await;
            }
            Internal::Closed { peer, session } => {
                let Some(link) = self.sessions.remove(&session) else { return };
                let Some(from) = Self::sync_peer(&peer) else { return };
                self.feed(link.context, Input::StreamClosed { peer: from, session }).await;
            }
            Internal::JoinRequest { peer, request, reply } => {
                let answer = self.admit(peer, *request).await;
                let _ = reply.send(answer);
            }
            Internal::DirectoryRequest { peer, context, n, member, signature, reply } => {
                let _ = reply.send(self.answer_directory(peer, context, n, member, signature).await);
            }
            Internal::Directory { peer, context, n, reply } => self.on_directory(peer, context, n, reply).await,
            Internal::DirectoryFailed { peer, context } => self.directory_ask_failed(peer, context),
        }
    }

    async fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Message { topic, data, msg_id, propagation_source, .. } => {
                Counters::bump(&self.counters.gossip_received, 1);
                self.on_gossip(&topic, &data, msg_id, propagation_source).await;
            }
            NetEvent::Subscribed { peer, topic } => self.on_subscribed(peer, topic).await,
            NetEvent::Unsubscribed { peer, topic } => self.on_unsubscribed(peer, &topic).await,
            NetEvent::PeerTopics { peer, topics } => {
                let now: BTreeSet<String> = topics.into_iter().collect();
                for topic in self.topics.topics_of(&peer) {
                    if !now.contains(&topic) {
                        self.on_unsubscribed(peer, &topic).await;
                    }
                }
                for topic in now {
                    if !self.topics.subscribes(&topic, &peer) {
                        self.on_subscribed(peer, topic).await;
                    }
                }
            }
            NetEvent::PeerDisconnected { peer } => {
                self.on_peer_lost(peer);
                self.topics.forget_peer(&peer);
                if let Some(sync_peer) = Self::sync_peer(&peer) {
                    let contexts: Vec<Hash> = self.contexts.keys().copied().collect();
                    for context in contexts {
                        self.feed(context, Input::PeerDown { peer: sync_peer }).await;
                    }
                }
            }
            NetEvent::PeerConnected { peer, addr, outbound } => self.on_peer_connected(peer, &addr, outbound),
            NetEvent::PeerIdentified { peer, listen_addrs } => self.on_peer_identified(peer, listen_addrs),
            NetEvent::ListenAddr(_) => {}
        }
    }

    async fn on_gossip(&mut self, topic: &str, data: &[u8], msg_id: Hash, source: NetPeer) {
        let Some(context) = self.topics.context_of(topic) else {
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
            return;
        };
        let (Some(slot), Some(from)) = (self.contexts.get(&context), Self::sync_peer(&source)) else { return };
        // The key tag names the epoch's key; one we do not hold is a newer
        // epoch we have not learnt yet (sync brings the delta) or noise.
        let Some((_, key)) = weft_membership::gossip_key_tag(data).and_then(|tag| slot.keys.by_tag(&tag)) else {
            Counters::bump(&self.counters.gossip_unknown_key, 1);
            debug!(%context, %source, "gossip sealed under a key we do not hold");
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
            return;
        };
        let opened = weft_membership::open_gossip(key, &context, data);
        let (plain, author) = match opened {
            // The message id is the claimed delta id: it must be the real one.
            Ok((claimed, plain)) => match weft_sync::SignedDelta::decode(&plain) {
                Ok(delta) if delta.id == claimed => (plain, delta.author),
                _ => {
                    self.reject_gossip(context, msg_id, source).await;
                    return;
                }
            },
            Err(_) => {
                self.reject_gossip(context, msg_id, source).await;
                return;
            }
        };
        // A member that left or was removed reaches us through members
        // only (its deltas on an old causal point stay valid, see
        // `weft_sync::membership`); its own gossip is dropped.
        if slot.replica.member_set().has_departed(&author) {
            debug!(%context, %source, ?author, "gossip by a departed member dropped");
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
            return;
        }
        self.next_message += 1;
        let message = self.next_message;
        self.gossip_waiting.insert(message, (msg_id, source));
        self.feed(context, Input::GossipReceived { from, message, bytes: plain }).await;
        // The replica always answers in the same turn; never leak a slot.
        if self.gossip_waiting.remove(&message).is_some() {
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
        }
    }

    async fn reject_gossip(&mut self, context: Hash, msg_id: Hash, source: NetPeer) {
        Counters::bump(&self.counters.deltas_rejected, 1);
        Counters::bump(&self.counters.deltas_rejected_by[crate::events::UNOPENED_GOSSIP], 1);
        Counters::bump(&self.counters.penalties, 1);
        debug!(%context, %source, "gossip that does not open under its key or lies about its id");
        let _ = self.net.report_validation(msg_id, source, Validation::Reject).await;
    }

    async fn on_subscribed(&mut self, peer: NetPeer, topic: String) {
        if let Subscription::Served(context) = self.topics.subscribe(peer, topic) {
            self.subscriber_seen(context, peer).await;
        }
    }

    async fn on_unsubscribed(&mut self, peer: NetPeer, topic: &str) {
        if let (Some(context), Some(peer)) = (self.topics.unsubscribe(peer, topic), Self::sync_peer(&peer)) {
            self.feed(context, Input::PeerDown { peer }).await;
        }
    }

    /// Register an opened context's topic and tell its replica about the
    /// member nodes already subscribed (proven ones at once, the others
    /// once they prove it).
    pub(crate) async fn attach_topic(&mut self, context: Hash, topic: String) {
        for peer in self.topics.serve(topic, context) {
            self.subscriber_seen(context, peer).await;
        }
    }

    /// Whether `peer` is subscribed to `context`'s topic.
    pub(crate) fn subscribed(&self, context: &Hash, peer: &NetPeer) -> bool {
        self.contexts.get(context).is_some_and(|slot| self.topics.subscribes(&slot.topic, peer))
    }

    pub(crate) fn detach_topic(&mut self, topic: &str) {
        self.topics.stop_serving(topic);
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::InstallApp { module, reply } => {
                let _ = reply.send(self.install_app(&module));
            }
            Command::Apps { reply } => {
                let _ = reply.send(self.list_apps());
            }
            Command::RemoveApp { application, reply } => {
                let _ = reply.send(self.remove_app(application));
            }
            Command::CreateContext { application, init_args, reply } => {
                let _ = reply.send(self.create_context(application, init_args).await);
            }
            Command::Invite { context, invitee, valid_for_ms, reply } => {
                let _ = reply.send(self.invite(context, invitee, valid_for_ms).await);
            }
            Command::Joined { invitation, inviter, accepted, reply } => {
                let _ = reply.send(self.install_joined(*invitation, inviter, *accepted).await);
            }
            Command::Leave { context, reply } => {
                let _ = reply.send(self.leave(context).await);
            }
            Command::RevokeInvitation { context, invitation, reply } => {
                let _ = reply.send(self.revoke_invitation(context, invitation).await);
            }
            Command::RemoveMember { context, member, reply } => {
                let _ = reply.send(self.remove_member(context, member).await);
            }
            Command::KeyEpochs { context, reply } => {
                let _ = reply.send(self.key_epochs(context));
            }
            Command::Call { context, method, args, reply } => {
                Counters::bump(&self.counters.calls, 1);
                let _ = reply.send(self.call(context, &method, &args).await);
            }
            Command::Contexts { reply } => {
                let infos = self.contexts.keys().copied().collect::<Vec<_>>();
                let _ = reply.send(infos.into_iter().map(|id| self.context_info(id)).collect());
            }
            Command::Context { context, reply } => {
                let _ = reply.send(self.context_info(context));
            }
            Command::SyncNow { context, reply } => {
                let targets: Vec<Hash> = match context {
                    Some(id) if !self.contexts.contains_key(&id) => {
                        let _ = reply.send(Err(crate::NodeError::UnknownContext(id)));
                        return;
                    }
                    Some(id) => vec![id],
                    None => self.contexts.keys().copied().collect(),
                };
                let mut outcomes = Vec::with_capacity(targets.len());
                for id in targets {
                    let before = self.contexts.get(&id).map_or(0, |slot| slot.replica.stats().syncs_started);
                    self.feed(id, Input::SyncNow { peer: None }).await;
                    let Some(slot) = self.contexts.get(&id) else { continue };
                    outcomes.push(crate::SyncNowOutcome {
                        context: id,
                        started: slot.replica.stats().syncs_started > before,
                        peers: slot.replica.peers().count(),
                        member_nodes_known: self.book.count_serving(&id),
                    });
                }
                let _ = reply.send(Ok(outcomes));
            }
            Command::DeadJobs { context, reply } => {
                let answer = match self.contexts.get(&context) {
                    Some(slot) => slot.replica.store().dead_jobs(DEAD_JOBS_LISTED_MAX).map_err(crate::NodeError::from),
                    None => Err(crate::NodeError::UnknownContext(context)),
                };
                let _ = reply.send(answer);
            }
            Command::Delta { context, id, reply } => {
                let answer = self
                    .contexts
                    .get(&context)
                    .ok_or(crate::NodeError::UnknownContext(context))
                    .map(|slot| slot.replica.applied_delta_bytes(&id));
                let _ = reply.send(answer);
            }
            Command::PublishRaw { context, id, bytes, reply } => {
                if !self.contexts.contains_key(&context) {
                    let _ = reply.send(Err(crate::NodeError::UnknownContext(context)));
                    return;
                }
                self.publish(context, id, &bytes).await;
                let _ = reply.send(Ok(()));
            }
            Command::Hold { release, reply } => {
                let _ = reply.send(Ok(()));
                // Fired or dropped: either way the hold ends.
                let _ = release.await;
            }
            Command::DeliverRaw { context, from, bytes, reply } => {
                let (Some(_), Some(from)) = (self.contexts.get(&context), Self::sync_peer(&from)) else {
                    let _ = reply.send(Err(crate::NodeError::UnknownContext(context)));
                    return;
                };
                // No gossip message to validate: the verdict is dropped.
                self.next_message += 1;
                let message = self.next_message;
                self.feed(context, Input::GossipReceived { from, message, bytes }).await;
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown { reply } => {
                // Handled in `run`; kept for exhaustiveness.
                let _ = reply.send(Ok(()));
            }
        }
    }
}
