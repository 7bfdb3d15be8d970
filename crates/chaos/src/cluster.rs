//! Real `weft run` daemons, each in its own home, set up as the README
//! tells a user to: `weft init`, then invitations and joins. No bootstrap
//! list, ever: nodes find each other through the invitation and their own
//! address books.
//!
//! The only departure from a plain setup is the network path: each daemon
//! listens on loopback TCP only (QUIC would bypass the TCP proxy) and
//! announces its fault proxy's port, so every connection another daemon
//! makes to it crosses [`crate::proxy::FaultProxy`].

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::api::Api;
use crate::ports::free_port;

/// How long a daemon has to answer `/health` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of a daemon's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 20;
/// Timeout of every API request the harness makes.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// How a daemon is, as the harness left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Running.
    Up,
    /// Stopped with SIGSTOP.
    Paused,
    /// Killed, not restarted yet.
    Down,
}

/// One daemon.
pub struct Daemon {
    /// Its index in the cluster.
    pub index: usize,
    /// Its home directory.
    pub home: PathBuf,
    /// The port its swarm listens on.
    pub swarm_port: u16,
    /// The port of its API.
    pub api_port: u16,
    /// Its API client.
    pub api: Api,
    /// Its log file (stdout and stderr of every run, appended).
    pub log: PathBuf,
    /// How it is.
    pub state: RunState,
    /// Times it was started.
    pub starts: u32,
    weft: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// `weft init` a home under `root` for node `index`, listening on
    /// `swarm_port` and announcing `proxy_port`.
    pub fn init(
        weft: &Path,
        root: &Path,
        index: usize,
        swarm_port: u16,
        proxy_port: u16,
        remembered: Option<usize>,
    ) -> anyhow::Result<Daemon> {
        let home = root.join(format!("node{index}"));
        let api_port = free_port()?;
        let status = std::process::Command::new(weft)
            .arg("init")
            .arg("--home")
            .arg(&home)
            .arg("--swarm-listen")
            .arg(format!("/ip4/127.0.0.1/tcp/{swarm_port}"))
            .arg("--api-port")
            .arg(api_port.to_string())
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {} init", weft.display()))?;
        if !status.success() {
            bail!("weft init for node {index} failed: {status}");
        }
        let config_path = home.join("config.toml");
        let config = std::fs::read_to_string(&config_path)?;
        let announced = format!("announce = [\"/ip4/127.0.0.1/tcp/{proxy_port}\"]");
        if !config.contains("announce = []") {
            bail!("{} has no `announce = []` line to replace", config_path.display());
        }
        let mut config = config.replacen("announce = []", &announced, 1);
        if let Some(remembered) = remembered {
            let commented = "# history_remembered = 1000000";
            if !config.contains(commented) {
                bail!("{} has no `{commented}` line to replace", config_path.display());
            }
            config = config.replacen(commented, &format!("history_remembered = {remembered}"), 1);
        }
        std::fs::write(&config_path, config)?;
        let token = std::fs::read_to_string(home.join("api.token"))?.trim().to_owned();
        let api = Api::new(api_port, token, API_TIMEOUT)?;
        let log = root.join(format!("node{index}.log"));
        Ok(Daemon {
            index,
            home,
            swarm_port,
            api_port,
            api,
            log,
            state: RunState::Down,
            starts: 0,
            weft: weft.to_owned(),
            child: None,
        })
    }

    /// Start `weft run` and wait until its API answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.weft)
            .arg("run")
            .arg("--home")
            .arg(&self.home)
            .env("RUST_LOG", "info,libp2p=warn")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {}", self.index))?;
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.api.healthy().await {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                // CI keeps only the harness's output, not the workdir: say why here.
                bail!(
                    "node {} exited at start ({status}); the end of {}:\n{}",
                    self.index,
                    self.log.display(),
                    log_tail(&self.log, LOG_TAIL_LINES)
                );
            }
            if Instant::now() > deadline {
                bail!("node {} did not answer within {START_TIMEOUT:?}; see {}", self.index, self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.state = RunState::Up;
        Ok(())
    }

    /// `kill -9`.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if self.state == RunState::Paused {
            // A stopped process dies from SIGKILL too; resume nothing.
            self.state = RunState::Up;
        }
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            let _ = child.wait().await;
        }
        self.state = RunState::Down;
        Ok(())
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub fn signal_pause(&mut self, pause: bool) -> anyhow::Result<()> {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else { return Ok(()) };
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill").arg(signal).arg(pid.to_string()).status()?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        self.state = if pause { RunState::Paused } else { RunState::Up };
        Ok(())
    }

    /// Whether the process exited without being killed by the harness.
    pub fn died(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// SIGTERM and wait (the clean stop at the end).
    pub async fn stop(&mut self) {
        if self.state == RunState::Paused {
            let _ = self.signal_pause(false);
        }
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
            }
            if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
        self.state = RunState::Down;
    }
}

/// The last `lines` lines of the log at `path` (or why it cannot be read).
fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(unreadable: {error})"),
    }
}
