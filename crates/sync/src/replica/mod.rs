//! [`Replica`]: the replication logic of one context on one node, as a pure
//! state machine.
//!
//! One entry point, [`Replica::handle`]`(input, now_ms) -> Vec<Output>`:
//! time is an input, timers are [`Replica::next_timer_ms`], and every effect
//! on the world (publish, send, close, penalize, acknowledge) is an
//! [`Output`]. State changes go through the [`ReplicaStore`] seam, one
//! atomic commit per applied delta. The only randomness is a seeded
//! [`SeededRng`] (peer choice), so a driver that replays the same inputs
//! gets the same outputs.
//!
//! Submodules: `receive` (the receive path), `write` (local writes),
//! `parents` (parent requests), `session` and `outflow` (anti-entropy and
//! page streams), `apply` (the DAG's applier), `timers` (sweeps and
//! scheduling).

mod apply;
mod forgotten;
mod interface;
mod outflow;
mod parents;
mod pending_shares;
mod receive;
mod session;
mod signatures;
mod timers;
mod write;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use weft_dag::id_map::IdMap;
use weft_dag::{AddOutcome, DagStore, DeltaId};
use weft_primitives::{Hash, HlcClock, PublicKey, SigningKey};

pub use interface::{
    AppliedDelta, Input, Offense, Output, PeerId, PreparedWrite, SessionId, Verdict, WriteBase, WriteError,
};
pub use pending_shares::{PENDING_AUTHOR_BYTES_MAX, PENDING_AUTHOR_DELTAS_MAX, PENDING_BYTES_MAX};
pub use session::{RETRY_BACKOFF_MIN_MS, RETRY_BACKOFF_SPREAD_MS};
pub use signatures::PARALLEL_VERIFY_MIN;
pub use timers::SYNC_RETRY_MS;

use crate::config::Config;
use crate::delta::{DeltaPayload, SignedDelta};
use crate::membership::MemberSet;
use crate::protocol::{HEADS_MAX, Summary, have_hints_by};
use crate::seeded_rng::SeededRng;
use crate::store::{ReplicaStore, StoreError};
use apply::{ApplyCore, ApplyMode, MembersChange, StateApplier};
use parents::Wants;
use pending_shares::PendingShares;
use session::Session;

/// Rows read per call while restoring from the store.
pub const RESTORE_PAGE_MAX: usize = 4096;

/// Ids of deltas remembered as unappliable (valid signature, invalid
/// actions or membership), so they are not fetched and retried again and
/// again.
pub const REJECTED_IDS_MAX: usize = 1024;

/// Pending deltas by authors that are not members (yet) that the buffer
/// holds at once: such a delta may be admitted by a delta we have not seen,
/// but must not crowd members' deltas out of the pending buffer. Beyond it
/// they are dropped unjudged (anti-entropy brings them back in causal
/// order).
pub const UNVETTED_PENDING_MAX: usize = 1024;

/// Everything a replica is made of.
#[derive(Debug)]
pub struct ReplicaParams<S> {
    /// The context id.
    pub context: Hash,
    /// The context's genesis: the DAG root that first deltas name.
    pub genesis: DeltaId,
    /// This node's peer id (the opener of its sessions).
    pub local_peer: PeerId,
    /// The member identity this node writes as.
    pub identity: SigningKey,
    /// The context's initial members (its creator): members from the
    /// start, the same on every replica. Later changes come from deltas
    /// ([`crate::membership`]); a restart rebuilds them from the store.
    pub members: Vec<PublicKey>,
    /// Tunables.
    pub config: Config,
    /// Seed of the replica's random choices (peer picks, backoffs). A
    /// driver seeds it afresh on every start (from the OS); the simulator
    /// from its seed, the node and the incarnation.
    pub rng_seed: u64,
    /// The persisted state and deltas (empty for a new replica).
    pub store: S,
}

/// Why a replica could not be rebuilt from its store.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The persisted deltas do not form the history they claim.
    #[error("persisted delta at position {position}: {reason}")]
    Corrupt {
        /// The apply position.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Deltas applied since start (restored ones excluded).
    pub applied: u64,
    /// Deltas that arrived again.
    pub duplicates: u64,
    /// Deltas refused by verification.
    pub rejected: u64,
    /// Deltas buffered while their author was not a member and their
    /// causal point unknown (judged when they apply).
    pub unvetted: u64,
    /// Deltas whose application failed (transient or not).
    pub apply_failures: u64,
    /// Deltas that waited for an entity, element or text item a concurrent
    /// delta creates (counted per attempt; they are retried, not refused).
    pub awaited_items: u64,
    /// Anti-entropy sessions started.
    pub syncs_started: u64,
    /// Sessions dropped at their deadline.
    pub sessions_timed_out: u64,
    /// Parent requests sent.
    pub parent_requests: u64,
    /// Times parent requests gave up and asked for anti-entropy.
    pub escalations: u64,
    /// Divergences detected.
    pub divergences: u64,
    /// Deltas dropped unjudged because buffering them would pass a bound of
    /// the pending buffer in bytes or per author (see
    /// [`PENDING_BYTES_MAX`]); anti-entropy brings honest ones back.
    pub pending_refused: u64,
    /// Storage operations that failed outside a commit.
    pub store_failures: u64,
    /// Applied deltas whose payload is pruned from memory (served from the
    /// store when a peer needs them).
    pub history_pruned: u64,
    /// Applied deltas forgotten entirely (their rows deleted; see
    /// [`Config::history_remembered_max`]).
    pub history_forgotten: u64,
}

/// Ids of sessions peers opened that ended, remembered so that a late or
/// repeated opening request does not start them again.
pub const ENDED_SESSIONS_MAX: usize = 1024;

/// A set that forgets its oldest member beyond `max`.
#[derive(Debug)]
pub(crate) struct RecentSet<T> {
    order: VecDeque<T>,
    set: BTreeSet<T>,
    max: usize,
}

impl<T: Ord + Copy> RecentSet<T> {
    pub(crate) fn new(max: usize) -> Self {
        RecentSet { order: VecDeque::new(), set: BTreeSet::new(), max }
    }

    pub(crate) fn insert(&mut self, item: T) {
        if self.set.insert(item) {
            self.order.push_back(item);
            if self.order.len() > self.max
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    pub(crate) fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }
}

/// When the next unscheduled anti-entropy session should start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyncSoon {
    pub(crate) preferred: Option<PeerId>,
    pub(crate) not_before_ms: u64,
}

/// The replication state machine of one context. See the crate doc.
#[derive(Debug)]
pub struct Replica<S: ReplicaStore> {
    context: Hash,
    local_peer: PeerId,
    identity: SigningKey,
    author: PublicKey,
    config: Config,
    dag: DagStore<DeltaPayload>,
    core: ApplyCore<S>,
    clock: HlcClock,
    rng: SeededRng,
    /// Connected member nodes.
    peers: BTreeSet<PeerId>,
    /// When each peer last answered an anti-entropy session we opened
    /// (refused or broken attempts are not counted).
    last_sync_ms: BTreeMap<PeerId, u64>,
    sessions: BTreeMap<SessionId, Session>,
    next_session: u64,
    wants: Wants,
    next_sync_ms: u64,
    /// Which peers matched us lately: how far the anti-entropy period grew.
    idle: timers::IdleSync,
    sync_soon: Option<SyncSoon>,
    next_sweep_ms: u64,
    pruned_below: usize,
    /// Pending deltas whose authors were not members when they arrived
    /// (at most [`UNVETTED_PENDING_MAX`]; ids no longer pending are
    /// dropped lazily).
    unvetted: BTreeSet<DeltaId>,
    /// What each author holds of the pending buffer.
    pending_shares: PendingShares,
    ended_sessions: RecentSet<SessionId>,
    /// How many of our first applied deltas some peer is known to hold (a
    /// completed anti-entropy session we opened): what a leaving node waits
    /// for.
    held_by_a_peer: u64,
    stats: ReplicaStats,
    out: Vec<Output>,
}

impl<S: ReplicaStore> Replica<S> {
    /// A replica over `params.store`: empty for a new context member, or the
    /// store a crashed or stopped replica left, from which the DAG, the apply
    /// order, the clock and the pending buffer are rebuilt (the state itself
    /// is already persisted, consistent with the applied rows).
    pub fn new(params: ReplicaParams<S>, now_ms: u64) -> Result<Replica<S>, RestoreError> {
        let ReplicaParams { context, genesis, local_peer, identity, members, config, rng_seed, store } = params;
        let root_hash = weft_state::root_hash(store.state())
            .map_err(|error| RestoreError::Corrupt { position: 0, reason: error.to_string() })?;
        let mut rng = SeededRng::new(rng_seed);
        // A random phase, so replicas started together do not all open
        // their periodic sessions at the same instants.
        let first_sync_ms = now_ms.saturating_add(rng.below(config.sync_frequency_ms.max(1)));
        // Session numbers start at random and at the start time, so a
        // restarted replica does not reuse the numbers of its previous life
        // (peers remember ended ones), even if given the same seed.
        let first_session = (rng.next_u64() ^ now_ms.rotate_left(32)) >> 1;
        let mut replica = Replica {
            context,
            local_peer,
            author: identity.public_key(),
            identity,
            dag: DagStore::new(genesis, config.dag_limits),
            core: ApplyCore {
                context,
                store,
                applied_len: 0,
                version: 0,
                root_hash,
                members: MemberSet::new(members.clone()),
                member_points: IdMap::default(),
                forgotten_len: 0,
                items_awaited: false,
                rejected: RecentSet::new(REJECTED_IDS_MAX),
            },
            clock: HlcClock::new(config.max_drift_ms),
            rng,
            peers: BTreeSet::new(),
            last_sync_ms: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_session: first_session,
            wants: Wants::default(),
            next_sync_ms: first_sync_ms,
            idle: timers::IdleSync::default(),
            sync_soon: Some(SyncSoon { preferred: None, not_before_ms: now_ms }),
            next_sweep_ms: now_ms.saturating_add(config.pending_sweep_ms),
            pruned_below: 0,
            unvetted: BTreeSet::new(),
            pending_shares: PendingShares::default(),
            ended_sessions: RecentSet::new(ENDED_SESSIONS_MAX),
            held_by_a_peer: 0,
            stats: ReplicaStats::default(),
            out: Vec::new(),
            config,
        };
        replica.core.member_points.insert(genesis, Arc::new(MemberSet::new(members)));
        let forgotten = replica.core.store.load_forgotten()?;
        replica.resume_forgotten(&forgotten)?;
        replica.restore_applied(now_ms)?;
        replica.restore_pending(now_ms)?;
        replica.prune_history();
        replica.out.clear();
        Ok(replica)
    }

    /// Replay the persisted applied rows into the DAG (state untouched),
    /// from the first one not forgotten.
    fn restore_applied(&mut self, now_ms: u64) -> Result<(), RestoreError> {
        let mut after = self.core.applied_len.checked_sub(1);
        loop {
            let rows = self.core.store.load_applied(after, RESTORE_PAGE_MAX)?;
            if rows.is_empty() {
                return Ok(());
            }
            for (position, bytes) in rows {
                let corrupt = |reason: String| RestoreError::Corrupt { position, reason };
                if position != self.core.applied_len {
                    return Err(corrupt(format!("expected position {}", self.core.applied_len)));
                }
                let delta = SignedDelta::decode(&bytes).map_err(|e| corrupt(e.to_string()))?;
                // Our own disk: the content hash catches corruption; the
                // signature was checked when the delta arrived.
                delta.check_id(&self.context).map_err(|e| corrupt(e.to_string()))?;
                let _ = self.clock.observe(delta.hlc, u64::MAX);
                // Record mode re-runs the membership rules and changes, so
                // the member set is rebuilt in apply order.
                let mut applier = StateApplier::new(&mut self.core, ApplyMode::Record, self.author);
                match self.dag.add(delta.into_causal(), now_ms, &mut applier) {
                    Ok(AddOutcome::Applied { .. }) => {}
                    Ok(outcome) => return Err(corrupt(format!("out of causal order: {outcome:?}"))),
                    Err(error) => return Err(corrupt(error.to_string())),
                }
                after = Some(position);
            }
            // Prune and forget as we go: a restart's memory peak is the
            // kept window, not the whole history.
            self.prune_history();
            self.forget_history();
        }
    }

    /// Put the persisted pending deltas back in the buffer.
    fn restore_pending(&mut self, now_ms: u64) -> Result<(), RestoreError> {
        let rows = self.core.store.load_pending(self.config.dag_limits.pending_max)?;
        for bytes in rows {
            // A row that no longer verifies (or no longer fits the bound on
            // non-members' deltas) is dropped, not fatal: it is fetched
            // again if still needed.
            let outcome = self.accept_delta(None, &bytes, receive::Origin::Restore, now_ms, &Default::default());
            if matches!(outcome, Err(_) | Ok(receive::Received::Dropped))
                && let Ok(delta) = SignedDelta::decode(&bytes)
            {
                self.forget_pending(&[delta.id]);
            }
        }
        Ok(())
    }

    /// Feed one input; returns what the driver must do, in order.
    pub fn handle(&mut self, input: Input, now_ms: u64) -> Vec<Output> {
        match input {
            Input::LocalWrite(write) => self.commit_local(write, now_ms),
            Input::GossipReceived { from, message, bytes } => self.on_gossip(from, message, &bytes, now_ms),
            Input::StreamMessage { from, session, bytes } => self.on_stream_message(from, session, &bytes, now_ms),
            Input::StreamClosed { peer, session } => self.on_stream_closed(peer, session, now_ms),
            Input::Tick => {}
            Input::SyncNow { peer } => self.request_sync_soon(peer, now_ms),
            Input::PeerUp { peer } => self.on_peer_up(peer, now_ms),
            Input::PeerDown { peer } => self.on_peer_down(peer),
        }
        self.run_timers(now_ms);
        self.schedule_wants(now_ms);
        std::mem::take(&mut self.out)
    }

    /// The earliest time at which [`Input::Tick`] has work to do.
    pub fn next_timer_ms(&self) -> u64 {
        let mut next = self.next_sweep_ms.min(self.next_sync_ms);
        if let Some(soon) = self.sync_soon {
            next = next.min(soon.not_before_ms);
        }
        let idle_ms = self.config.session_idle_ms;
        self.sessions.values().map(|session| session.expires_ms(idle_ms)).fold(next, u64::min)
    }

    /// The context id.
    pub fn context(&self) -> Hash {
        self.context
    }

    /// The lane this node numbers its text items in, derived from its peer
    /// id: one identity on two nodes writes in two lanes (see
    /// [`weft_state::StateTxn::with_text_lane`]).
    pub fn text_lane(&self) -> u32 {
        weft_state::device_lane(&self.local_peer.0)
    }

    /// This node's peer id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// The identity this replica writes as.
    pub fn author(&self) -> PublicKey {
        self.author
    }

    /// The current members (after the last applied delta), in key order.
    pub fn members(&self) -> impl Iterator<Item = &PublicKey> {
        self.core.members.iter()
    }

    /// Whether some peer is known to hold applied delta `id`: an
    /// anti-entropy session we opened after applying it completed (the
    /// responder then holds everything we had).
    pub fn held_by_a_peer(&self, id: &DeltaId) -> bool {
        self.dag.applied_position(id).is_some_and(|position| position < self.held_by_a_peer)
    }

    /// Whether `key` is currently a member.
    pub fn is_member(&self, key: &PublicKey) -> bool {
        self.core.members.contains(key)
    }

    /// The current member set, with its audit data.
    pub fn member_set(&self) -> &MemberSet {
        &self.core.members
    }

    /// The current heads, sorted.
    pub fn heads(&self) -> Vec<DeltaId> {
        self.dag.heads()
    }

    /// The root hash of the persisted state.
    pub fn root_hash(&self) -> Hash {
        self.core.root_hash
    }

    /// The state version ([`PreparedWrite::base_version`]).
    pub fn state_version(&self) -> u64 {
        self.core.version
    }

    /// The DAG (read-only).
    pub fn dag(&self) -> &DagStore<DeltaPayload> {
        &self.dag
    }

    /// The signed encoding of applied delta `id`: from memory, or read back
    /// from the store if its payload was pruned from memory. `None` if it is
    /// not applied here (or the store lost it).
    pub fn applied_delta_bytes(&self, id: &DeltaId) -> Option<Vec<u8>> {
        match self.dag.get(id) {
            Some(delta) => Some(crate::delta::encode_causal(delta)),
            None => self.dag.applied_position(id).and_then(|position| self.stored_delta(*id, position)),
        }
    }

    /// How many deltas are applied (pruned ones included).
    pub fn applied_count(&self) -> u64 {
        self.core.applied_len
    }

    /// Applied ids in apply order (pruned ones included, forgotten ones
    /// not). Builds the list: O(history), for tests and tools.
    pub fn applied_ids(&self) -> Vec<DeltaId> {
        (self.dag.forgotten_len()..self.core.applied_len).filter_map(|position| self.dag.applied_id(position)).collect()
    }

    /// The store (read-only).
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// The store, for its owner's bookkeeping of what the store has made
    /// durable (the node lands a turn's staged commits through it). What
    /// the store holds must not change behind the replica's back.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.core.store
    }

    /// Give the store back (a stop or a simulated crash: everything else is
    /// memory and is lost).
    pub fn into_store(self) -> S {
        self.core.store
    }

    /// The counters.
    pub fn stats(&self) -> ReplicaStats {
        self.stats
    }

    /// Connected member peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.iter()
    }

    /// Open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// What this replica has, as sent in a sync request.
    pub fn summary(&self) -> Summary {
        let mut heads = self.dag.heads();
        heads.truncate(HEADS_MAX);
        Summary {
            root_hash: self.core.root_hash,
            heads,
            hints: have_hints_by(self.core.applied_len, |position| self.dag.applied_id(position)),
        }
    }

    /// Check the invariants linking the DAG, the apply order and the ids:
    /// every applied delta's parents were applied before it, every kept
    /// delta's id is its content hash, the pending buffer is within bounds.
    /// Costs O(history); for tests and simulations.
    pub fn check_invariants(&self) -> Result<(), String> {
        let log = self.applied_ids();
        let forgotten = self.dag.forgotten_len();
        if log.len() as u64 + forgotten != self.core.applied_len
            || self.core.applied_len != self.dag.applied_count() as u64
        {
            return Err(format!(
                "{} applied ids listed after {forgotten} forgotten, {} counted, DAG {} applied",
                log.len(),
                self.core.applied_len,
                self.dag.applied_count()
            ));
        }
        for (offset, id) in log.iter().enumerate() {
            let position = forgotten as usize + offset;
            if self.dag.applied_position(id) != Some(position as u64) {
                return Err(format!("{id:?} at {position} but indexed at {:?}", self.dag.applied_position(id)));
            }
            let Some(delta) = self.dag.get(id) else {
                if self.dag.is_pruned(id) {
                    continue;
                }
                return Err(format!("{id:?} applied but not held"));
            };
            for parent in &delta.parents {
                let ok = *parent == self.dag.root()
                    || self.dag.applied_position(parent).is_some_and(|p| (p as usize) < position)
                    || self.core.is_forgotten(parent);
                if !ok {
                    return Err(format!("{id:?} applied before its parent {parent:?}"));
                }
            }
            let signed = SignedDelta::from_causal(delta);
            if signed.content_id(&self.context) != *id {
                return Err(format!("{id:?} is not its content hash"));
            }
        }
        if self.dag.pending_count() > self.config.dag_limits.pending_max {
            return Err(format!("{} pending deltas over the bound", self.dag.pending_count()));
        }
        Ok(())
    }

    fn on_peer_up(&mut self, peer: PeerId, now_ms: u64) {
        if peer == self.local_peer || !self.peers.insert(peer) {
            return;
        }
        // A (re)connected peer may have missed our writes or hold new ones.
        self.request_sync_soon(Some(peer), now_ms);
        self.wants.mark_dirty();
    }

    fn on_peer_down(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
        self.idle.forget(&peer);
        let gone: Vec<SessionId> =
            self.sessions.iter().filter(|(_, session)| session.peer == peer).map(|(id, _)| *id).collect();
        for id in gone {
            self.end_session(id, false);
        }
    }

    fn penalize(&mut self, peer: PeerId, offense: Offense) {
        self.out.push(Output::Penalize { peer, offense });
    }

    /// Emit what one call into the DAG applied, then the net change of the
    /// member set it made, if any.
    fn emit_applied(&mut self, (deltas, members): (Vec<AppliedDelta>, MembersChange)) {
        // Applied deltas passed every check (their drift when received):
        // later local writes stamp after them.
        for delta in &deltas {
            let _ = self.clock.observe(delta.hlc, u64::MAX);
        }
        if !deltas.is_empty() {
            self.stats.applied += deltas.len() as u64;
            self.out.push(Output::Applied { deltas });
        }
        if !members.added.is_empty() || !members.left.is_empty() {
            self.out.push(Output::MembersChanged { added: members.added, left: members.left });
        }
    }

    fn new_session_id(&mut self) -> SessionId {
        let n = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        SessionId { opener: self.local_peer, n }
    }
}
