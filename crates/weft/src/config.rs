//! The node's configuration file, `<home>/config.toml`.
//!
//! [`DEFAULT_CONFIG_TOML`] is the documented file with every key at its
//! default; `weft init` writes it (with the chosen ports and bootstrap
//! peers filled in) and `weft config default` prints it.
//!
//! Guarantees: every key is optional (a missing key takes the default shown
//! in [`DEFAULT_CONFIG_TOML`]); an unknown key, a value of the wrong type or
//! a value the node cannot run with is refused with a [`ConfigError`] whose
//! one-line message names the key (`[sync] frequency_ms: …`).

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use weft_net::{NetConfig, SWARM_PORT_DEFAULT};
use weft_node::NodeConfig;

/// The config file's name inside a home directory.
pub const CONFIG_FILE: &str = "config.toml";

/// The default API port (docs/design.md defaults), on loopback.
pub const API_PORT_DEFAULT: u16 = 2528;

/// The config file with every key at its default, each documented. Keep in
/// step with the `*_DEFAULT` values in the `Default` impls below (a test
/// checks they agree).
pub const DEFAULT_CONFIG_TOML: &str = r#"# Weft node configuration: <home>/config.toml
#
# Every key is optional: a missing key takes the default shown here.
# Unknown keys are errors. Times are in milliseconds.

[node]
# Where the node keeps its database. A relative path is relative to the
# home directory.
data_dir = "data"
# Most client calls that share one fsync (group commit); 1 makes every
# call wait for its own.
call_group_max = 256
# Bytes of state rows cached in memory, for all contexts together (the state
# itself is read from the database).
state_cache_bytes = 67108864
# Bytes of database pages cached in memory.
db_cache_bytes = 268435456
# Characters (deleted ones included) of text documents kept decoded between
# edits, for all contexts together: about 8 bytes each (64 MiB).
text_cache_items = 8388608

[swarm]
# Multiaddrs the libp2p swarm listens on: TCP and QUIC on every interface,
# port 2428.
listen = ["/ip4/0.0.0.0/tcp/2428", "/ip4/0.0.0.0/udp/2428/quic-v1"]
# Peers to dial at start, each ending in /p2p/<peer id>, for example
# "/ip4/192.0.2.7/tcp/2428/p2p/12D3KooW...". `weft init` prints a node's id.
bootstrap = []
# The addresses other nodes should dial to reach this node, when they are
# not the listen addresses (a forwarded port, a proxy in front of the node).
# When set, only these are announced; no /p2p/ suffix.
announce = []
# A member's node that went away is redialed after redial_base_ms, then
# with exponential backoff up to redial_max_ms between dials, forever.
# Nodes find their contexts' members again by themselves: addresses learned
# from joins, identify and other members are kept on disk.
redial_base_ms = 500
redial_max_ms = 10000
# Discover peers on the local network with mDNS. Off: it announces the node
# to everyone on the LAN.
mdns = false
# Run the Kademlia DHT to find peers beyond the bootstrap list.
kademlia = true
# At most this many established connections in total.
max_connections = 256

[api]
# Where the HTTP API listens (REST, JSON-RPC, WebSocket and SSE events).
# Every request except /health needs the bearer token in <home>/api.token
# (loopback too); off loopback a token is mandatory.
listen = "127.0.0.1:2528"
# Host names the API answers to beside IP literals and localhost (a name
# that resolves to this machine, e.g. behind a reverse proxy). Any other
# Host is refused: a web page cannot rebind its own name to this node.
allowed_hosts = []
# Origins (scheme://host[:port]) whose web pages may call the API beside
# the API's own. Pages from any other site are refused.
allowed_origins = []

[sync]
# Per context, start anti-entropy with a random member peer this often.
frequency_ms = 10000
# While every member peer matches a context and nothing new was applied,
# its period doubles up to this (anything new brings it back).
idle_max_ms = 160000
# Never start two sync sessions with one peer closer together than this.
interval_ms = 5000
# A sync session still open after this long is dropped.
timeout_ms = 30000
# At most this many deltas per context wait for missing parents; beyond
# it the oldest is dropped (and fetched again later).
pending_max = 10000
# A delta still waiting for its parents after this long is dropped.
pending_stale_ms = 300000
# Keep in memory the payloads of only the last this-many deltas of each
# context; older ones are read back from disk when a peer needs them.
history_kept = 10000
# Remember only the last this-many deltas of each context: older ones are
# forgotten entirely (memory and disk keep a few bytes each instead of the
# delta), and a restart does not replay them. A peer that lacks forgotten
# deltas then needs a snapshot. Unset (the default): remember everything.
# history_remembered = 1000000

[handlers]
# A failed event handler is retried after retry_base_ms, then with
# exponential backoff up to retry_max_ms between attempts.
retry_base_ms = 500
retry_max_ms = 60000
# After this many failed attempts a job moves to the context's dead letters
# (GET /admin/contexts/<id>/dead-jobs, weft_handler_jobs_dead_total): kept
# for you to look at, never run again.
attempts_max = 20
# Owed jobs of one context held in memory; more wait on disk until these ran.
held_max = 4096

[runtime]
# WASM fuel (about one unit per instruction) one method call may burn.
fuel_per_call = 100000000
# The largest linear memory of an application instance, in bytes (64 MiB).
memory_bytes = 67108864
# Keep compiled apps in <data_dir>/code-cache (wasmtime's cache), so a
# restart does not compile them again. Whoever can write the data directory
# can change the code the node runs; delete the directory at any time.
code_cache = true
"#;

/// Why a config file was refused. Each message is one line naming the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not valid TOML, has an unknown key or a badly typed value.
    #[error("{file}: {location}{message}")]
    Syntax {
        /// The file.
        file: String,
        /// `line N, [section] key: ` when known.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A value parses but the node cannot run with it.
    #[error("{file}: [{section}] {key}: {reason}")]
    Value {
        /// The file.
        file: String,
        /// The table.
        section: &'static str,
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `[node]`.
    pub node: NodeSection,
    /// `[swarm]`.
    pub swarm: SwarmSection,
    /// `[api]`.
    pub api: ApiSection,
    /// `[sync]`.
    pub sync: SyncSection,
    /// `[handlers]`.
    pub handlers: HandlersSection,
    /// `[runtime]`.
    pub runtime: RuntimeSection,
}

/// `[node]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// The database directory (relative: to the home directory).
    pub data_dir: String,
    /// Most client calls sharing one fsync.
    pub call_group_max: usize,
    /// Bytes of state rows cached.
    pub state_cache_bytes: usize,
    /// Bytes of database pages cached.
    pub db_cache_bytes: usize,
    /// Items of decoded text documents kept.
    pub text_cache_items: usize,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            data_dir: "data".into(),
            call_group_max: weft_node::CALL_GROUP_MAX_DEFAULT,
            state_cache_bytes: weft_node::STATE_CACHE_BYTES_DEFAULT,
            db_cache_bytes: weft_node::DB_CACHE_BYTES_DEFAULT,
            text_cache_items: weft_node::TEXT_CACHE_ITEMS_DEFAULT,
        }
    }
}

/// `[swarm]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmSection {
    /// Listen multiaddrs.
    pub listen: Vec<String>,
    /// Bootstrap multiaddrs (with `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Addresses announced instead of the listen addresses.
    pub announce: Vec<String>,
    /// First redial of a lost member's node.
    pub redial_base_ms: u64,
    /// Longest pause between redials.
    pub redial_max_ms: u64,
    /// mDNS discovery.
    pub mdns: bool,
    /// Kademlia DHT.
    pub kademlia: bool,
    /// Connection limit.
    pub max_connections: u32,
}

impl Default for SwarmSection {
    fn default() -> Self {
        let net = NetConfig::new([0; 32]);
        SwarmSection {
            listen: swarm_listen_for_port(SWARM_PORT_DEFAULT),
            bootstrap: Vec::new(),
            announce: Vec::new(),
            redial_base_ms: weft_node::peers::redial::REDIAL_BASE_MS_DEFAULT,
            redial_max_ms: weft_node::peers::redial::REDIAL_MAX_MS_DEFAULT,
            mdns: net.mdns,
            kademlia: net.kademlia,
            max_connections: net.max_established,
        }
    }
}

/// TCP and QUIC on every interface at `port`.
pub fn swarm_listen_for_port(port: u16) -> Vec<String> {
    vec![format!("/ip4/0.0.0.0/tcp/{port}"), format!("/ip4/0.0.0.0/udp/{port}/quic-v1")]
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Host names accepted beside IP literals and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// Origins whose pages may call the API beside its own.
    pub allowed_origins: Vec<String>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: SocketAddr::from(([127, 0, 0, 1], API_PORT_DEFAULT)),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// `[sync]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    /// Anti-entropy frequency.
    pub frequency_ms: u64,
    /// The longest anti-entropy period of an idle context.
    pub idle_max_ms: u64,
    /// Minimum interval between sessions with one peer.
    pub interval_ms: u64,
    /// Session timeout.
    pub timeout_ms: u64,
    /// Pending buffer bound per context.
    pub pending_max: usize,
    /// Pending staleness.
    pub pending_stale_ms: u64,
    /// Delta payloads kept in memory (`None`: all).
    pub history_kept: Option<usize>,
    /// Deltas remembered at all (`None`: all).
    pub history_remembered: Option<usize>,
}

impl Default for SyncSection {
    fn default() -> Self {
        let sync = NodeConfig::loopback("", [0; 32]).sync;
        SyncSection {
            frequency_ms: sync.sync_frequency_ms,
            idle_max_ms: sync.sync_idle_max_ms,
            interval_ms: sync.sync_interval_ms,
            timeout_ms: sync.sync_timeout_ms,
            pending_max: sync.dag_limits.pending_max,
            pending_stale_ms: sync.dag_limits.pending_stale_ms,
            history_kept: sync.history_kept_max,
            history_remembered: sync.history_remembered_max,
        }
    }
}

/// `[handlers]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HandlersSection {
    /// First retry delay.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Failed attempts before a job becomes a dead letter.
    pub attempts_max: u32,
    /// Owed jobs of one context held in memory.
    pub held_max: usize,
}

impl Default for HandlersSection {
    fn default() -> Self {
        HandlersSection {
            retry_base_ms: weft_node::HANDLER_RETRY_BASE_MS_DEFAULT,
            retry_max_ms: weft_node::HANDLER_RETRY_MAX_MS_DEFAULT,
            attempts_max: weft_node::HANDLER_ATTEMPTS_MAX_DEFAULT,
            held_max: weft_node::HANDLER_JOBS_HELD_MAX_DEFAULT,
        }
    }
}

/// `[runtime]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Fuel per call.
    pub fuel_per_call: u64,
    /// Largest linear memory.
    pub memory_bytes: usize,
    /// Keep compiled apps in `<data_dir>/code-cache` so a restart does not
    /// compile them again.
    pub code_cache: bool,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        let limits = NodeConfig::loopback("", [0; 32]).runtime.limits;
        RuntimeSection { fuel_per_call: limits.fuel, memory_bytes: limits.memory_bytes, code_cache: true }
    }
}

impl ConfigFile {
    /// Parse `text` (read from `file`, named in errors).
    pub fn parse(text: &str, file: &str) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|error| syntax_error(text, file, &error))
    }

    /// The node configuration this file describes, for a node whose home
    /// is `home` and whose network identity seed is `seed`. Checks every
    /// value the node would refuse, naming the key.
    pub fn node_config(&self, home: &Path, seed: [u8; 32], file: &str) -> Result<NodeConfig, ConfigError> {
        let bad = |section: &'static str, key: &'static str, reason: String| ConfigError::Value {
            file: file.to_owned(),
            section,
            key,
            reason,
        };
        let data_dir = home.join(&self.node.data_dir);
        if self.node.data_dir.trim().is_empty() {
            return Err(bad("node", "data_dir", "must not be empty".into()));
        }
        let mut config = NodeConfig::loopback(data_dir, seed);
        if self.node.call_group_max == 0 {
            return Err(bad("node", "call_group_max", "must be positive".into()));
        }
        config.call_group_max = self.node.call_group_max;
        config.state_cache_bytes = self.node.state_cache_bytes;
        config.db_cache_bytes = self.node.db_cache_bytes;
        config.text_cache_items = self.node.text_cache_items;
        let net = &mut config.net;
        net.listen_addrs = self.swarm.listen.clone();
        net.bootstrap_peers = self.swarm.bootstrap.clone();
        net.announce_addrs = self.swarm.announce.clone();
        net.mdns = self.swarm.mdns;
        net.kademlia = self.swarm.kademlia;
        net.max_established = self.swarm.max_connections;
        if self.swarm.listen.is_empty() {
            return Err(bad("swarm", "listen", "needs at least one address".into()));
        }
        if self.swarm.redial_base_ms == 0 {
            return Err(bad("swarm", "redial_base_ms", "must be positive".into()));
        }
        if self.swarm.redial_max_ms < self.swarm.redial_base_ms {
            return Err(bad("swarm", "redial_max_ms", "must be at least redial_base_ms".into()));
        }
        config.redial_base_ms = self.swarm.redial_base_ms;
        config.redial_max_ms = self.swarm.redial_max_ms;
        if self.swarm.max_connections == 0 {
            return Err(bad("swarm", "max_connections", "must be at least 1".into()));
        }
        if let Err(error) = net.check() {
            let key = match error {
                weft_net::NetError::BadListenAddr { .. } => "listen",
                weft_net::NetError::BadBootstrapAddr { .. } => "bootstrap",
                weft_net::NetError::BadAnnounceAddr { .. } => "announce",
                _ => "listen",
            };
            return Err(bad("swarm", key, error.to_string()));
        }
        let sync = &mut config.sync;
        sync.sync_frequency_ms = self.sync.frequency_ms;
        sync.sync_idle_max_ms = self.sync.idle_max_ms;
        sync.sync_interval_ms = self.sync.interval_ms;
        sync.sync_timeout_ms = self.sync.timeout_ms;
        sync.dag_limits.pending_max = self.sync.pending_max;
        sync.dag_limits.pending_stale_ms = self.sync.pending_stale_ms;
        sync.history_kept_max = self.sync.history_kept;
        sync.history_remembered_max = self.sync.history_remembered;
        let positive = [
            ("frequency_ms", self.sync.frequency_ms),
            ("idle_max_ms", self.sync.idle_max_ms),
            ("interval_ms", self.sync.interval_ms),
            ("timeout_ms", self.sync.timeout_ms),
            ("pending_max", self.sync.pending_max as u64),
            ("pending_stale_ms", self.sync.pending_stale_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(bad("sync", key, "must be positive".into()));
            }
        }
        if self.sync.history_kept == Some(0) {
            return Err(bad("sync", "history_kept", "must be positive".into()));
        }
        if self.sync.history_remembered == Some(0) {
            return Err(bad("sync", "history_remembered", "must be positive".into()));
        }
        config.handler_retry_base_ms = self.handlers.retry_base_ms;
        config.handler_retry_max_ms = self.handlers.retry_max_ms;
        config.handler_attempts_max = self.handlers.attempts_max;
        if self.handlers.attempts_max == 0 {
            return Err(bad("handlers", "attempts_max", "must be positive".into()));
        }
        if self.handlers.held_max == 0 {
            return Err(bad("handlers", "held_max", "must be positive".into()));
        }
        config.handler_jobs_held_max = self.handlers.held_max;
        if self.handlers.retry_base_ms == 0 {
            return Err(bad("handlers", "retry_base_ms", "must be positive".into()));
        }
        if self.handlers.retry_max_ms < self.handlers.retry_base_ms {
            return Err(bad("handlers", "retry_max_ms", "must be at least retry_base_ms".into()));
        }
        config.runtime.limits.fuel = self.runtime.fuel_per_call;
        config.runtime.limits.memory_bytes = self.runtime.memory_bytes;
        if !self.runtime.code_cache {
            config.runtime.disk_cache = weft_node::DiskCache::Off;
        }
        if self.runtime.fuel_per_call == 0 {
            return Err(bad("runtime", "fuel_per_call", "must be positive".into()));
        }
        // One 64 KiB WASM page at least; the engine refuses less anyway.
        if self.runtime.memory_bytes < 65_536 {
            return Err(bad("runtime", "memory_bytes", "must be at least 65536 (one WASM page)".into()));
        }
        config.check().map_err(|error| ConfigError::Syntax {
            file: file.to_owned(),
            location: String::new(),
            message: error.to_string(),
        })?;
        Ok(config)
    }
}

/// `DEFAULT_CONFIG_TOML` with the given swarm listen addresses, bootstrap
/// peers and API address in place of the defaults (comments kept).
pub fn render_config(swarm_listen: &[String], bootstrap: &[String], api_listen: SocketAddr) -> String {
    DEFAULT_CONFIG_TOML
        .replacen(DEFAULT_LISTEN_LINE, &format!("listen = {}", toml_string_list(swarm_listen)), 1)
        .replacen(DEFAULT_BOOTSTRAP_LINE, &format!("bootstrap = {}", toml_string_list(bootstrap)), 1)
        .replacen(DEFAULT_API_LINE, &format!("listen = \"{api_listen}\""), 1)
}

const DEFAULT_LISTEN_LINE: &str = r#"listen = ["/ip4/0.0.0.0/tcp/2428", "/ip4/0.0.0.0/udp/2428/quic-v1"]"#;
const DEFAULT_BOOTSTRAP_LINE: &str = "bootstrap = []";
const DEFAULT_API_LINE: &str = r#"listen = "127.0.0.1:2528""#;

/// A TOML array of basic strings. JSON string escapes are valid TOML
/// basic-string escapes, so serde_json does the quoting.
fn toml_string_list(items: &[String]) -> String {
    let quoted: Vec<String> =
        items.iter().map(|item| serde_json::to_string(item).unwrap_or_else(|_| "\"\"".into())).collect();
    format!("[{}]", quoted.join(", "))
}

/// One line naming where the TOML error is: the line number, the table and
/// the key of the line the error's span starts on (or the nearest
/// `key =` line above it, for values spanning lines).
fn syntax_error(text: &str, file: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().lines().next().unwrap_or("invalid TOML").trim().to_owned();
    let Some(span) = error.span() else {
        return ConfigError::Syntax { file: file.to_owned(), location: String::new(), message };
    };
    let start = span.start.min(text.len());
    let line_index = text[..start].matches('\n').count();
    let lines: Vec<&str> = text.lines().collect();
    let mut section = String::new();
    let mut key = None;
    for line in lines.iter().take(line_index + 1).rev() {
        let line = line.trim();
        if key.is_none()
            && let Some((name, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            key = Some(name.trim().trim_matches('"').to_owned());
        }
        if line.starts_with('[') {
            section = line.to_owned();
            break;
        }
    }
    let mut location = format!("line {}", line_index + 1);
    match (section.is_empty(), key) {
        (false, Some(key)) => location.push_str(&format!(", {section} {key}")),
        (true, Some(key)) => location.push_str(&format!(", {key}")),
        (false, None) => location.push_str(&format!(", {section}")),
        (true, None) => {}
    }
    location.push_str(": ");
    ConfigError::Syntax { file: file.to_owned(), location, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_parses_to_the_code_defaults() {
        let parsed = ConfigFile::parse(DEFAULT_CONFIG_TOML, "config.toml").unwrap();
        assert_eq!(parsed, ConfigFile::default());
        assert_eq!(ConfigFile::parse("", "config.toml").unwrap(), ConfigFile::default());
    }

    #[test]
    fn default_node_config_matches_the_node_defaults() {
        let seed = [7; 32];
        let config = ConfigFile::default().node_config(Path::new("/h"), seed, "config.toml").unwrap();
        let reference = NodeConfig::loopback("/h/data", seed);
        assert_eq!(config.data_dir, reference.data_dir);
        assert_eq!(config.call_group_max, reference.call_group_max);
        assert_eq!(config.state_cache_bytes, reference.state_cache_bytes);
        assert_eq!(config.db_cache_bytes, reference.db_cache_bytes);
        assert_eq!(config.text_cache_items, reference.text_cache_items);
        assert_eq!(config.sync, reference.sync);
        assert_eq!(config.net.listen_addrs, NetConfig::new(seed).listen_addrs);
        assert_eq!(config.net.mdns, NetConfig::new(seed).mdns);
        assert_eq!(config.handler_retry_base_ms, reference.handler_retry_base_ms);
        assert_eq!(config.handler_retry_max_ms, reference.handler_retry_max_ms);
        assert_eq!(config.handler_attempts_max, reference.handler_attempts_max);
        assert_eq!(config.handler_jobs_held_max, reference.handler_jobs_held_max);
        assert_eq!(config.runtime.limits, reference.runtime.limits);
        assert_eq!(config.runtime.disk_cache, reference.runtime.disk_cache);
        assert_eq!(config.runtime.disk_cache, weft_node::DiskCache::Directory("/h/data/code-cache".into()));
        let off = ConfigFile::parse("[runtime]\ncode_cache = false\n", "config.toml").unwrap();
        let off = off.node_config(Path::new("/h"), seed, "config.toml").unwrap();
        assert_eq!(off.runtime.disk_cache, weft_node::DiskCache::Off);
    }

    #[test]
    fn every_default_key_is_documented_in_the_default_text() {
        for key in [
            "data_dir",
            "call_group_max",
            "state_cache_bytes",
            "db_cache_bytes",
            "text_cache_items",
            "listen",
            "bootstrap",
            "announce",
            "redial_base_ms",
            "redial_max_ms",
            "mdns",
            "kademlia",
            "max_connections",
            "frequency_ms",
            "idle_max_ms",
            "interval_ms",
            "timeout_ms",
            "pending_max",
            "pending_stale_ms",
            "history_kept",
            "history_remembered",
            "retry_base_ms",
            "retry_max_ms",
            "attempts_max",
            "held_max",
            "fuel_per_call",
            "memory_bytes",
            "code_cache",
        ] {
            assert!(DEFAULT_CONFIG_TOML.contains(&format!("{key} = ")), "{key} undocumented");
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_table_and_line() {
        let text = "[sync]\nfrequency_ms = 1000\nfrequncy = 5\n";
        let error = ConfigFile::parse(text, "c.toml").unwrap_err().to_string();
        assert!(error.contains("line 3, [sync] frequncy"), "{error}");
        assert!(error.contains("unknown field"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn unknown_table_is_named() {
        let error = ConfigFile::parse("[nodes]\ndata_dir = \"x\"\n", "c.toml").unwrap_err().to_string();
        assert!(error.contains("nodes"), "{error}");
    }

    #[test]
    fn badly_typed_value_names_the_key() {
        let error = ConfigFile::parse("[sync]\ninterval_ms = \"fast\"\n", "c.toml").unwrap_err().to_string();
        assert!(error.contains("[sync] interval_ms"), "{error}");
        let error = ConfigFile::parse("[api]\nlisten = \"nowhere\"\n", "c.toml").unwrap_err().to_string();
        assert!(error.contains("[api] listen"), "{error}");
    }

    #[test]
    fn multi_line_array_errors_name_the_array_key() {
        let text = "[swarm]\nlisten = [\n  \"/ip4/127.0.0.1/tcp/1\",\n  3,\n]\n";
        let error = ConfigFile::parse(text, "c.toml").unwrap_err().to_string();
        assert!(error.contains("[swarm] listen"), "{error}");
    }

    #[test]
    fn unusable_values_name_the_key() {
        let home = Path::new("/h");
        let cases = [
            ("[sync]\nfrequency_ms = 0\n", "[sync] frequency_ms"),
            ("[handlers]\nretry_base_ms = 10\nretry_max_ms = 5\n", "[handlers] retry_max_ms"),
            ("[node]\ncall_group_max = 0\n", "[node] call_group_max"),
            ("[handlers]\nheld_max = 0\n", "[handlers] held_max"),
            ("[swarm]\nlisten = [\"not an address\"]\n", "[swarm] listen"),
            ("[swarm]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]\n", "[swarm] bootstrap"),
            ("[sync]\nhistory_kept = 0\n", "[sync] history_kept"),
            ("[sync]\nhistory_remembered = 0\n", "[sync] history_remembered"),
            ("[runtime]\nmemory_bytes = 10\n", "[runtime] memory_bytes"),
        ];
        for (text, named) in cases {
            let parsed = ConfigFile::parse(text, "c.toml").unwrap();
            let Err(error) = parsed.node_config(home, [1; 32], "c.toml") else { panic!("{text} accepted") };
            let error = error.to_string();
            assert!(error.contains(named), "{text}: {error}");
        }
    }

    #[test]
    fn rendered_config_carries_the_chosen_values_and_the_comments() {
        let listen = vec!["/ip4/127.0.0.1/tcp/4000".to_owned()];
        let bootstrap = vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWabc".to_owned()];
        let api: SocketAddr = "127.0.0.1:4100".parse().unwrap();
        let text = render_config(&listen, &bootstrap, api);
        let parsed = ConfigFile::parse(&text, "c.toml").unwrap();
        assert_eq!(parsed.swarm.listen, listen);
        assert_eq!(parsed.swarm.bootstrap, bootstrap);
        assert_eq!(parsed.api.listen, api);
        assert!(text.contains("# Per context, start anti-entropy"));
    }

    #[test]
    fn replaced_default_lines_occur_exactly_once() {
        for line in [DEFAULT_LISTEN_LINE, DEFAULT_BOOTSTRAP_LINE, DEFAULT_API_LINE] {
            assert_eq!(DEFAULT_CONFIG_TOML.matches(line).count(), 1, "{line}");
        }
    }
}
