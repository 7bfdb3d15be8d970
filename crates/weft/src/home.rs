//! A node's home directory: `config.toml`, `node.key` (the network
//! identity seed, hex), `api.token` (the API bearer token) and the data
//! directory.
//!
//! Guarantees: [`init`] never overwrites an existing home unless told to
//! (`force`), and then rewrites the three files but never touches the data
//! directory; the home and data directories are created with mode 0700 and
//! the key and token files with mode 0600 on unix
//! (removed and re-created, so an older file's looser mode does not
//! survive). Every failure names the file.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{self, CONFIG_FILE, ConfigError, ConfigFile};

/// The network identity seed file.
pub const NODE_KEY_FILE: &str = "node.key";
/// The API token file.
pub const API_TOKEN_FILE: &str = "api.token";
/// The environment variable naming the home directory.
pub const HOME_ENV: &str = "WEFT_HOME";
/// The largest key or token file read (both are 64 hex digits).
const SECRET_FILE_BYTES_MAX: u64 = 4096;

/// Why a home could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// No `--home`, no `$WEFT_HOME` and no `$HOME`.
    #[error("no home directory: pass --home or set WEFT_HOME")]
    NoHome,
    /// `init` found an existing home.
    #[error("{0} already holds a weft home; pass --force to overwrite its config, key and token")]
    Exists(PathBuf),
    /// A file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The home has no config file.
    #[error("{0} has no config.toml; create the home with `weft init`")]
    NotInitialized(PathBuf),
    /// The key file is not 64 hex digits.
    #[error("{0}: expected 64 hex digits")]
    BadKey(PathBuf),
    /// The config file is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |error| HomeError::Io { path: path.to_owned(), error }
}

/// The home directory: `flag` if given, else `$WEFT_HOME`, else `~/.weft`.
pub fn resolve_home(flag: Option<&Path>) -> Result<PathBuf, HomeError> {
    if let Some(path) = flag {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os(HOME_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|p| !p.is_empty())
        .map(|home| Path::new(&home).join(".weft"))
        .ok_or(HomeError::NoHome)
}

/// What `weft init` is asked for.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Swarm listen multiaddrs.
    pub swarm_listen: Vec<String>,
    /// Bootstrap multiaddrs.
    pub bootstrap: Vec<String>,
    /// Where the API listens.
    pub api_listen: SocketAddr,
    /// Overwrite an existing home's files.
    pub force: bool,
}

/// What `weft init` made.
#[derive(Clone, Debug)]
pub struct Initialized {
    /// The home.
    pub home: PathBuf,
    /// The node's libp2p peer id.
    pub peer_id: String,
    /// The config written.
    pub config: ConfigFile,
}

/// Create a home: config, key, token, data directory. The config is
/// checked (as `weft run` would) before anything is written.
pub fn init(home: &Path, options: &InitOptions) -> Result<Initialized, HomeError> {
    let config_path = home.join(CONFIG_FILE);
    let key_path = home.join(NODE_KEY_FILE);
    let token_path = home.join(API_TOKEN_FILE);
    let exists = [&config_path, &key_path, &token_path].iter().any(|path| path.exists());
    if exists && !options.force {
        return Err(HomeError::Exists(home.to_owned()));
    }
    let text = config::render_config(&options.swarm_listen, &options.bootstrap, options.api_listen);
    let parsed = ConfigFile::parse(&text, CONFIG_FILE)?;
    let seed = random_32()?;
    let node_config = parsed.node_config(home, seed, CONFIG_FILE)?;
    let peer_id = weft_net::peer_id_from_seed(&seed).map_err(|e| HomeError::Random(e.to_string()))?.to_string();
    private_dir(home)?;
    private_dir(&node_config.data_dir)?;
    write_file(&config_path, text.as_bytes(), false)?;
    write_file(&key_path, format!("{}\n", hex(&seed)).as_bytes(), true)?;
    write_file(&token_path, format!("{}\n", hex(&random_32()?)).as_bytes(), true)?;
    Ok(Initialized { home: home.to_owned(), peer_id, config: parsed })
}

/// The home's config file, parsed (errors name the key).
pub fn load_config(home: &Path) -> Result<ConfigFile, HomeError> {
    let path = home.join(CONFIG_FILE);
    if !path.exists() {
        return Err(HomeError::NotInitialized(home.to_owned()));
    }
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    Ok(ConfigFile::parse(&text, &path.display().to_string())?)
}

/// The network identity seed from `node.key`.
pub fn read_node_key(home: &Path) -> Result<[u8; 32], HomeError> {
    let path = home.join(NODE_KEY_FILE);
    let text = read_small(&path)?;
    parse_hex_32(text.trim()).ok_or(HomeError::BadKey(path))
}

/// The API token from `api.token`, if the file exists.
pub fn read_token(home: &Path) -> Result<Option<String>, HomeError> {
    let path = home.join(API_TOKEN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let token = read_small(&path)?.trim().to_owned();
    Ok((!token.is_empty()).then_some(token))
}

fn read_small(path: &Path) -> Result<String, HomeError> {
    let file = fs::File::open(path).map_err(io(path))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, SECRET_FILE_BYTES_MAX), &mut text)
        .map_err(io(path))?;
    Ok(text)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), HomeError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(HomeError::Io { path: path.to_owned(), error }),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Create `dir` with mode 0700 if it is missing (an existing home keeps
/// its mode; the node makes the data directory private when it starts).
fn private_dir(dir: &Path) -> Result<(), HomeError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

fn random_32() -> Result<[u8; 32], HomeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| HomeError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex_32(text: &str) -> Option<[u8; 32]> {
    text.parse::<weft_primitives::Hash>().ok().map(|hash| hash.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> InitOptions {
        InitOptions {
            swarm_listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap: Vec::new(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            force: false,
        }
    }

    #[test]
    fn init_writes_config_key_token_and_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let made = init(&home, &options()).unwrap();
        assert!(made.peer_id.starts_with("12D3"));
        assert!(home.join("data").is_dir());
        let seed = read_node_key(&home).unwrap();
        assert_eq!(weft_net::peer_id_from_seed(&seed).unwrap().to_string(), made.peer_id);
        assert_eq!(read_token(&home).unwrap().unwrap().len(), 64);
        assert_eq!(load_config(&home).unwrap(), made.config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: PathBuf| fs::metadata(path).unwrap().permissions().mode() & 0o777;
            for file in [NODE_KEY_FILE, API_TOKEN_FILE] {
                assert_eq!(mode(home.join(file)), 0o600, "{file}");
            }
            assert_eq!(mode(home.clone()), 0o700);
            assert_eq!(mode(home.join("data")), 0o700);
        }
    }

    #[test]
    fn init_refuses_an_existing_home_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &options()).unwrap();
        let key = read_node_key(dir.path()).unwrap();
        assert!(matches!(init(dir.path(), &options()), Err(HomeError::Exists(_))));
        assert_eq!(read_node_key(dir.path()).unwrap(), key);
        init(dir.path(), &InitOptions { force: true, ..options() }).unwrap();
        assert_ne!(read_node_key(dir.path()).unwrap(), key);
    }

    #[test]
    fn init_checks_bootstrap_addresses_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let bad = InitOptions { bootstrap: vec!["/ip4/127.0.0.1/tcp/9".into()], ..options() };
        let error = init(dir.path(), &bad).unwrap_err().to_string();
        assert!(error.contains("bootstrap"), "{error}");
        assert!(!dir.path().join(CONFIG_FILE).exists());
    }

    #[test]
    fn a_garbled_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(NODE_KEY_FILE), "xyz").unwrap();
        assert!(matches!(read_node_key(dir.path()), Err(HomeError::BadKey(_))));
    }
}
