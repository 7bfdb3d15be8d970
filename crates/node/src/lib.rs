//! A Weft node: the contexts this node is in, replicated over the network.
//!
//! [`Node::start`] opens the database, starts the libp2p swarm
//! (`weft-net`) and the WASM runtime, reopens every persisted context, and
//! runs the driver: one task that owns a `weft_sync::Replica` per context
//! over a [`DiskReplicaStore`] and carries out everything the replicas ask
//! for. The rest of the world holds a [`NodeHandle`].
//!
//! What a node guarantees:
//! - **Durable before acknowledged.** A call's reply, a membership change
//!   and an applied remote delta are each one redb write transaction (state
//!   rows, delta row, pending removal, owed handler jobs) that is durable
//!   before anything is acknowledged, published or announced.
//! - **Verified before applied.** Gossip must open under the context's group
//!   key (XChaCha20-Poly1305) and its message id must be the delta's content
//!   hash; then the replica checks shape, author membership at the delta's
//!   causal point, signature and clock drift. Failures are rejected
//!   (gossipsub penalizes the forwarder) and change nothing.
//! - **Repair does not depend on gossip.** Missing parents are requested at
//!   once from the sender and then from other members; anti-entropy runs
//!   every `sync_frequency_ms` with a random member and whenever a member
//!   connects; a restarted node catches up from its peers.
//! - **Handlers at least once.** Events that name a handler are run on every
//!   node but the author's; the job is persisted with the delta and retried
//!   with backoff until it succeeds.
//! - **Restart rebuilds everything** from the store: applied deltas, pending
//!   deltas, membership, owed handler jobs. State is not loaded: it is read
//!   from the store through a bounded row cache.
//!
//! Contexts and membership: a context is created from an installed
//! application (its creator is the first member; `init` commits the first
//! delta); members invite with signed, expiring invitations; a joiner asks
//! the inviter's node over a stream, which commits a signed membership
//! delta and returns the group key wrapped for the joiner's identity.

mod command;
mod config;
mod disk_state;
mod driver;
mod error;
mod events;
mod forgotten_store;
mod handle;
pub mod peers;
pub mod records;
mod replica_store;
mod views;
pub mod wire;

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use weft_net::Network;
use weft_primitives::SigningKey;
use weft_runtime::Runtime;
use weft_store::Store;

pub use command::{AppInfo, CallReply, ContextInfo, KeyEpochInfo, SyncNowOutcome};
pub use config::*;
pub use disk_state::{DiskStateKv, STATE_CACHE_BYTES_DEFAULT, StateCache};
pub use error::NodeError;
pub use events::{AppliedInfo, NodeEvent, NodeStats, REJECTION_REASONS};
pub use handle::NodeHandle;
pub use replica_store::{CommitTurn, DeadJob, DiskReplicaStore, HandlerJob, SealedCommits};
pub use views::VIEWS_DRAIN_MAX;
/// redb's page cache by default (`NodeConfig::db_cache_bytes`).
pub use weft_runtime::DiskCache;
pub use weft_state::TEXT_CACHE_ITEMS_MAX as TEXT_CACHE_ITEMS_DEFAULT;
pub use weft_store::CACHE_BYTES_DEFAULT as DB_CACHE_BYTES_DEFAULT;

/// Requests waiting for the driver.
pub const COMMANDS_MAX: usize = 256;
/// Reports from stream tasks waiting for the driver.
pub const INTERNAL_MAX: usize = 1024;
/// Network events (gossip above all) the driver handles in one turn, whose
/// commits share one fsync.
pub const NET_EVENTS_PER_TURN_MAX: usize = 256;
/// Reports of sync sessions (pages of deltas, openings, closings, of any
/// contexts) the driver handles in one turn, whose commits share one fsync.
pub const SYNC_REPORTS_PER_TURN_MAX: usize = 256;

/// The name of the database file in the data directory.
pub const DATABASE_FILE: &str = "weft.redb";

/// Starts nodes.
#[derive(Debug)]
pub struct Node;

/// Create `dir` (and its parents) if missing and make it the owner's alone
/// (mode 0700): the database in it holds identity seeds and group keys.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        if std::fs::metadata(dir)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

impl Node {
    /// Open (or create) the node's database in `config.data_dir`, start the
    /// network and the driver, and reopen every persisted context. Must run
    /// inside a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        config.check()?;
        private_dir(&config.data_dir)
            .map_err(|e| NodeError::Config(format!("data_dir {}: {e}", config.data_dir.display())))?;
        let store = Arc::new(Store::open_with_cache(config.data_dir.join(DATABASE_FILE), config.db_cache_bytes)?);
        weft_state::set_text_cache_items_max(config.text_cache_items);
        let identity = records::default_identity(&store, config.identity_seed)?;
        let runtime = Arc::new(Runtime::new(config.runtime.clone())?);
        let node_key = SigningKey::from_seed(config.net.identity_seed);
        let (net, net_events) = Network::spawn(config.net.clone()).await?;
        let incoming = net.incoming_streams()?;
        let (commands_tx, commands) = mpsc::channel(COMMANDS_MAX);
        let (internal_tx, internal) = mpsc::channel(INTERNAL_MAX);
        let (events, _) = broadcast::channel(config.event_bus_capacity);
        let counters = Arc::new(events::Counters::default());
        let store_transactions = store.transaction_counter();
        let join_timeout_ms = config.join_timeout_ms;
        let book = peers::PeerBook::load(&store)?;
        let views = views::ViewTargets::default();
        views.open(store.clone(), runtime.clone());
        let mut driver = driver::Driver::new(
            config,
            store,
            runtime,
            net.clone(),
            weft_sync::PeerId(node_key.public_key().0),
            identity.clone(),
            internal_tx.clone(),
            events.clone(),
            counters.clone(),
            book,
            views.clone(),
        );
        if let Err(error) = driver.open_all().await {
            let _ = net.shutdown().await;
            return Err(error);
        }
        tokio::spawn(driver::streams::accept_streams(incoming, internal_tx, counters.clone()));
        tokio::spawn(driver.run(commands, internal, net_events));
        Ok(NodeHandle {
            commands: commands_tx,
            events,
            counters,
            store_transactions,
            net,
            identity,
            join_timeout_ms,
            views,
        })
    }
}

#[cfg(all(test, unix))]
mod private_dir_tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_dir_is_created_private_and_an_open_one_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        super::private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(mode(&data), 0o755, "the test opened it");
        super::private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
    }
}
