//! What a node is started with. Every tunable has a named default; the
//! `weft` binary reads them from its TOML file.

use std::path::PathBuf;

use weft_net::NetConfig;
use weft_runtime::{DiskCache, RuntimeConfig};

/// The directory under `data_dir` where compiled apps are cached.
pub const CODE_CACHE_DIR: &str = "code-cache";

/// The first retry of a failed event handler waits this long.
pub const HANDLER_RETRY_BASE_MS_DEFAULT: u64 = 500;
/// Retries of a failed handler back off exponentially up to this.
pub const HANDLER_RETRY_MAX_MS_DEFAULT: u64 = 60_000;
/// Failed attempts after which a handler job becomes a dead letter (with
/// the default backoff, about a quarter of an hour of retries).
pub const HANDLER_ATTEMPTS_MAX_DEFAULT: u32 = 20;
/// Events kept for slow subscribers of the event bus before they lag.
pub const EVENT_BUS_CAPACITY_DEFAULT: usize = 4096;
/// How long `join` waits for the inviter's history to show us as a member.
pub const JOIN_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// How long an invitation is valid when the caller does not say.
pub const INVITATION_VALID_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;

/// Local calls run back to back and made durable by one fsync (group
/// commit); each is answered only after that fsync.
pub const CALL_GROUP_MAX_DEFAULT: usize = 256;

/// Owed handler jobs of one context held in memory (in a heap by due
/// time); the rest wait on disk and are read back as these run.
pub const HANDLER_JOBS_HELD_MAX_DEFAULT: usize = 4096;

/// Everything a node needs to start.
#[derive(Clone)]
pub struct NodeConfig {
    /// Where the database lives (created if missing).
    pub data_dir: PathBuf,
    /// The network: listen addresses, identity seed, bootstrap peers, gossip.
    pub net: NetConfig,
    /// Replication tunables (anti-entropy frequency, parent requests,
    /// pending bounds, history kept).
    pub sync: weft_sync::Config,
    /// The WASM engine's limits, and where compiled apps are cached
    /// ([`NodeConfig::loopback`]: `data_dir/`[`CODE_CACHE_DIR`], so a
    /// restart does not compile its apps again).
    pub runtime: RuntimeConfig,
    /// First handler retry delay.
    pub handler_retry_base_ms: u64,
    /// Longest handler retry delay.
    pub handler_retry_max_ms: u64,
    /// Failed attempts after which a handler job is moved to the dead
    /// letters (kept for the operator, never run again).
    pub handler_attempts_max: u32,
    /// Owed handler jobs of one context held in memory; the rest stay on
    /// disk until these have run.
    pub handler_jobs_held_max: usize,
    /// Bytes of state rows the node caches (all contexts together); the
    /// state itself stays on disk.
    pub state_cache_bytes: usize,
    /// Bytes of database pages redb caches.
    pub db_cache_bytes: usize,
    /// Items (characters, tombstones included) of decoded text documents
    /// kept between edits (`weft_state::set_text_cache_items_max`, about 8
    /// bytes each). The memo is process-wide: a process running several
    /// nodes keeps the bound of the last one started.
    pub text_cache_items: usize,
    /// Capacity of the in-process event bus.
    pub event_bus_capacity: usize,
    /// Most local calls that share one durable commit; 1 commits (and
    /// fsyncs) every call on its own.
    pub call_group_max: usize,
    /// How long `join` waits to see itself admitted.
    pub join_timeout_ms: u64,
    /// The first redial of a member's node after its connection was lost.
    pub redial_base_ms: u64,
    /// The longest pause between dials of an unreachable member's node.
    pub redial_max_ms: u64,
    /// How often a context asks a member's node for its directory at
    /// first, and again after an answer that taught it something.
    pub directory_refresh_ms: u64,
    /// The longest pause between two directory refreshes of a context
    /// whose answers teach it nothing (the period doubles up to it).
    pub directory_refresh_max_ms: u64,
    /// The seed of the member identity to use when the database has none
    /// yet (importing a key); `None` generates one. Ignored once stored.
    pub identity_seed: Option<[u8; 32]>,
}

impl NodeConfig {
    /// Defaults for a node whose data lives in `data_dir`, with network
    /// identity `identity_seed`, on loopback (tests and the demo).
    pub fn loopback(data_dir: impl Into<PathBuf>, identity_seed: [u8; 32]) -> NodeConfig {
        let data_dir = data_dir.into();
        // Compiling an app is most of a node's start (~150 ms for kv-store);
        // wasmtime's cache keys the code by module bytes, engine version and
        // settings. It lives in the node's private data directory, which the
        // node trusts as it trusts its database.
        let runtime = RuntimeConfig {
            disk_cache: DiskCache::Directory(data_dir.join(CODE_CACHE_DIR)),
            ..RuntimeConfig::default()
        };
        NodeConfig {
            data_dir,
            net: NetConfig::loopback(identity_seed),
            sync: weft_sync::Config {
                // A sync page's signatures are checked on every core.
                verify_threads: std::thread::available_parallelism().map_or(1, usize::from),
                ..weft_sync::Config::default()
            },
            runtime,
            handler_retry_base_ms: HANDLER_RETRY_BASE_MS_DEFAULT,
            handler_retry_max_ms: HANDLER_RETRY_MAX_MS_DEFAULT,
            handler_attempts_max: HANDLER_ATTEMPTS_MAX_DEFAULT,
            handler_jobs_held_max: HANDLER_JOBS_HELD_MAX_DEFAULT,
            state_cache_bytes: crate::STATE_CACHE_BYTES_DEFAULT,
            db_cache_bytes: crate::DB_CACHE_BYTES_DEFAULT,
            text_cache_items: weft_state::TEXT_CACHE_ITEMS_MAX,
            event_bus_capacity: EVENT_BUS_CAPACITY_DEFAULT,
            call_group_max: CALL_GROUP_MAX_DEFAULT,
            join_timeout_ms: JOIN_TIMEOUT_MS_DEFAULT,
            redial_base_ms: crate::peers::redial::REDIAL_BASE_MS_DEFAULT,
            redial_max_ms: crate::peers::redial::REDIAL_MAX_MS_DEFAULT,
            directory_refresh_ms: crate::peers::refresh::DIRECTORY_REFRESH_MS_DEFAULT,
            directory_refresh_max_ms: crate::peers::refresh::DIRECTORY_REFRESH_MAX_MS_DEFAULT,
            identity_seed: None,
        }
    }

    /// Refuse values the node cannot run with, naming the field.
    pub fn check(&self) -> Result<(), crate::NodeError> {
        let bad = |field: &str, why: &str| Err(crate::NodeError::Config(format!("{field}: {why}")));
        if self.handler_retry_base_ms == 0 {
            return bad("handler_retry_base_ms", "must be positive");
        }
        if self.handler_retry_max_ms < self.handler_retry_base_ms {
            return bad("handler_retry_max_ms", "must be at least handler_retry_base_ms");
        }
        if self.handler_jobs_held_max == 0 {
            return bad("handler_jobs_held_max", "must be positive");
        }
        if self.handler_attempts_max == 0 {
            return bad("handler_attempts_max", "must be positive");
        }
        if self.event_bus_capacity == 0 {
            return bad("event_bus_capacity", "must be positive");
        }
        if self.call_group_max == 0 {
            return bad("call_group_max", "must be positive");
        }
        if self.sync.sync_frequency_ms == 0 {
            return bad("sync.sync_frequency_ms", "must be positive");
        }
        if self.redial_base_ms == 0 {
            return bad("redial_base_ms", "must be positive");
        }
        if self.redial_max_ms < self.redial_base_ms {
            return bad("redial_max_ms", "must be at least redial_base_ms");
        }
        if self.directory_refresh_ms == 0 {
            return bad("directory_refresh_ms", "must be positive");
        }
        if self.directory_refresh_max_ms < self.directory_refresh_ms {
            return bad("directory_refresh_max_ms", "must be at least directory_refresh_ms");
        }
        if self.join_timeout_ms == 0 {
            return bad("join_timeout_ms", "must be positive");
        }
        Ok(())
    }
}
