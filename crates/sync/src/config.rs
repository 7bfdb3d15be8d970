//! The tunables of a [`Replica`](crate::Replica), with the docs/design.md
//! defaults. All times are milliseconds of the `now_ms` the driver passes in.

use weft_dag::DagLimits;
use weft_primitives::HlcClock;

/// Default [`Config::sync_frequency_ms`]: anti-entropy every 10 s.
pub const SYNC_FREQUENCY_MS_DEFAULT: u64 = 10_000;
/// Default [`Config::sync_idle_max_ms`]: an idle context's anti-entropy
/// period grows from 10 s to at most 160 s (four doublings).
pub const SYNC_IDLE_MAX_MS_DEFAULT: u64 = 160_000;
/// Default [`Config::sync_interval_ms`]: at most one session per peer per 5 s.
pub const SYNC_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// Default [`Config::sync_timeout_ms`]: a session ends after 30 s.
pub const SYNC_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Default [`Config::session_idle_ms`].
pub const SESSION_IDLE_MS_DEFAULT: u64 = 5_000;
/// Default [`Config::parent_request_timeout_ms`].
pub const PARENT_REQUEST_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Default [`Config::parent_request_attempts_max`].
pub const PARENT_REQUEST_ATTEMPTS_MAX_DEFAULT: usize = 3;
/// Default [`Config::parent_request_depth_max`].
pub const PARENT_REQUEST_DEPTH_MAX_DEFAULT: u32 = 3;
/// Default [`Config::parent_requests_in_flight_max`].
pub const PARENT_REQUESTS_IN_FLIGHT_MAX_DEFAULT: usize = 8;
/// Default [`Config::pending_sweep_ms`].
pub const PENDING_SWEEP_MS_DEFAULT: u64 = 5_000;
/// Default [`Config::inbound_sessions_max`].
pub const INBOUND_SESSIONS_MAX_DEFAULT: usize = 16;
/// Default [`Config::outbound_syncs_max`].
pub const OUTBOUND_SYNCS_MAX_DEFAULT: usize = 1;
/// Default [`Config::history_kept_max`]: payloads of the last this-many
/// applied deltas held in memory; older ones are read back from the store.
pub const HISTORY_KEPT_MAX_DEFAULT: usize = 10_000;
/// Default [`Config::burst_pages_max`].
pub const BURST_PAGES_MAX_DEFAULT: usize = 8;

/// Default [`Config::verify_threads`]: the calling thread only (the node
/// sets what its machine offers).
pub const VERIFY_THREADS_DEFAULT: usize = 1;

/// How a replica replicates. `Config::default()` is docs/design.md's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Start an anti-entropy session with a random connected member this
    /// often.
    pub sync_frequency_ms: u64,
    /// The longest anti-entropy period of an idle replica: while every
    /// connected peer has matched our heads and root hash since we last
    /// applied anything, each period is twice the last, up to this (never
    /// below `sync_frequency_ms`). Anything applied, here or by a peer that
    /// then syncs with us, brings the period back to `sync_frequency_ms`.
    pub sync_idle_max_ms: u64,
    /// Never start two sessions with one peer closer together than this.
    pub sync_interval_ms: u64,
    /// A session (anti-entropy or parent request answer stream) still open
    /// after this long is dropped.
    pub sync_timeout_ms: u64,
    /// A session on which the peer sent nothing for this long is dropped
    /// (a vanished or stalling peer must not hold a session slot, or the
    /// one bulk-inflow slot, for the whole `sync_timeout_ms`).
    pub session_idle_ms: u64,
    /// A parent request unanswered after this long is retried elsewhere.
    pub parent_request_timeout_ms: u64,
    /// Peers asked for one missing parent before escalating to anti-entropy.
    pub parent_request_attempts_max: usize,
    /// Rounds of "the parents we got have missing parents too" before
    /// escalating to an anti-entropy session with that peer (which fetches
    /// any gap in one round trip).
    pub parent_request_depth_max: u32,
    /// Parent requests in flight at once.
    pub parent_requests_in_flight_max: usize,
    /// Sweep the pending buffer this often: evict stale deltas, retry
    /// stalled ones, re-request parents nobody is fetching.
    pub pending_sweep_ms: u64,
    /// Sessions peers opened with us at once (more are refused with `Busy`).
    pub inbound_sessions_max: usize,
    /// Anti-entropy sessions we run at once.
    pub outbound_syncs_max: usize,
    /// Pages sent before waiting for the receiver's `Continue`.
    pub burst_pages_max: usize,
    /// How far a remote timestamp may run ahead of local time.
    pub max_drift_ms: u64,
    /// Keep the payloads of the last this-many deltas in memory, pruning
    /// older ones (their ids and links stay; a peer that needs them is
    /// served from the store). `None` keeps everything in memory.
    pub history_kept_max: Option<usize>,
    /// Remember the last this-many applied deltas; forget older ones
    /// entirely: their ids and links leave memory and their rows leave the
    /// store, which keeps only each one's id and member point
    /// ([`crate::ReplicaStore::forget`]). A restart resumes from the
    /// forgotten part instead of replaying it. A peer that lacks forgotten
    /// deltas is answered `PrunedHistory` and needs a snapshot. `None`
    /// (the default) remembers everything.
    pub history_remembered_max: Option<usize>,
    /// Bounds of the DAG (parents, pending buffer size and staleness).
    pub dag_limits: DagLimits,
    /// Threads that check the signatures of a sync page at once before it
    /// is applied (1: each on the calling thread as it is received). Every
    /// delta gets the verdict a lone check gives, whatever the count.
    pub verify_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sync_frequency_ms: SYNC_FREQUENCY_MS_DEFAULT,
            sync_idle_max_ms: SYNC_IDLE_MAX_MS_DEFAULT,
            sync_interval_ms: SYNC_INTERVAL_MS_DEFAULT,
            sync_timeout_ms: SYNC_TIMEOUT_MS_DEFAULT,
            session_idle_ms: SESSION_IDLE_MS_DEFAULT,
            parent_request_timeout_ms: PARENT_REQUEST_TIMEOUT_MS_DEFAULT,
            parent_request_attempts_max: PARENT_REQUEST_ATTEMPTS_MAX_DEFAULT,
            parent_request_depth_max: PARENT_REQUEST_DEPTH_MAX_DEFAULT,
            parent_requests_in_flight_max: PARENT_REQUESTS_IN_FLIGHT_MAX_DEFAULT,
            pending_sweep_ms: PENDING_SWEEP_MS_DEFAULT,
            inbound_sessions_max: INBOUND_SESSIONS_MAX_DEFAULT,
            outbound_syncs_max: OUTBOUND_SYNCS_MAX_DEFAULT,
            burst_pages_max: BURST_PAGES_MAX_DEFAULT,
            max_drift_ms: HlcClock::MAX_DRIFT_MS_DEFAULT,
            history_kept_max: Some(HISTORY_KEPT_MAX_DEFAULT),
            history_remembered_max: None,
            dag_limits: DagLimits::default(),
            verify_threads: VERIFY_THREADS_DEFAULT,
        }
    }
}
