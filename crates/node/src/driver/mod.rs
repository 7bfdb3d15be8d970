//! The driver: one tokio task that owns every replica of the node and is the
//! only thing that touches them.
//!
//! It waits on four things at once: requests from [`NodeHandle`](crate::NodeHandle)s,
//! reports from stream tasks, network events, and the earliest replica timer
//! or handler retry of any context (from an index, not a walk over them).
//! Each is turned into replica [`Input`]s; the replica's [`Output`]s are
//! carried out right away (publish, send a frame, report a gossip verdict,
//! acknowledge a write, enqueue handler jobs, tell subscribers). Because one
//! task does all of it, a local write is prepared and committed in the same
//! turn and can never be stale, and no replica needs a lock.
//!
//! Submodules: `commands` (requests from handles), `contexts` (create,
//! open, leave, describe), `calls` (WASM calls and local writes),
//! `handlers` (event handler jobs), `gossip` (network events, publishing),
//! `reports` (sync stream reports, opening our streams), `join` (the
//! inviter's side of admission), `peers` (the address book, redials and
//! directory exchange), `streams` (sync stream tasks), `topics` (who
//! subscribes to what), `durable` (one fsync per turn), `keys` (group
//! keys), `wakeups` (when each context next needs the driver).

mod calls;
mod commands;
mod contexts;
mod durable;
mod gossip;
mod handlers;
pub(crate) mod join;
mod keys;

pub(crate) use keys::GroupKeys;
mod peers;
mod reports;
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
use crate::peers::refresh::DirectoryRefresh;
use crate::records::ContextRecord;
use crate::replica_store::{DiskReplicaStore, JobInbox};
use topics::TopicDirectory;

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
    /// When each context next asks for its directory.
    directory_refresh: DirectoryRefresh,
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
        let directory_refresh = DirectoryRefresh::new(config.directory_refresh_ms, config.directory_refresh_max_ms);
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
            directory_refresh,
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
                                next = self.on_calls(first, &mut commands, &mut net_events).await;
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
            // A new member's node is most likely in a directory.
            self.directory_refresh.hurry(&context, now_ms());
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
}
