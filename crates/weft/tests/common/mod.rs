//! Helpers for the tests that run the real `weft` binary: a command
//! builder, free ports, and a guard around a `weft run` child process that
//! kills it on drop (a failing test never leaves a daemon behind).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// The `weft` binary under test.
pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// `weft` with no inherited `WEFT_HOME`.
pub fn weft() -> Command {
    let mut command = Command::new(WEFT);
    command.env_remove("WEFT_HOME").env("RUST_LOG", "warn");
    command
}

/// A TCP port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `weft init` a loopback-only home (swarm on `127.0.0.1:swarm_port`
/// TCP, API on `api_port`) with faster anti-entropy than the defaults;
/// returns the node's peer id.
pub fn init_home(home: &Path, swarm_port: u16, api_port: u16, bootstrap: Option<String>) -> String {
    let mut command = weft();
    command.args(["init", "--json", "--home"]).arg(home);
    command.args(["--swarm-listen", &format!("/ip4/127.0.0.1/tcp/{swarm_port}")]);
    command.args(["--api-port", &api_port.to_string()]);
    if let Some(addr) = bootstrap {
        command.args(["--bootstrap", &addr]);
    }
    let output = command.assert().success().get_output().stdout.clone();
    let answer: serde_json::Value = serde_json::from_slice(&output).unwrap();
    // Tests should not wait 10 s for a round of anti-entropy.
    let config = home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text =
        text.replace("frequency_ms = 10000", "frequency_ms = 1000").replace("interval_ms = 5000", "interval_ms = 500");
    std::fs::write(&config, text).unwrap();
    answer["peer_id"].as_str().unwrap().to_owned()
}

/// A running `weft run`; killed when dropped.
pub struct Daemon {
    child: Child,
    /// Its API base URL.
    pub api: String,
    api_port: u16,
    log: PathBuf,
}

impl Daemon {
    /// Start `weft run --home home` (its output goes to `home/run.log`)
    /// and wait until its API answers `/health`.
    pub fn start(home: &Path, api_port: u16) -> Daemon {
        let log = home.join("run.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = StdCommand::new(WEFT)
            .args(["run", "--home"])
            .arg(home)
            .env_remove("WEFT_HOME")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let mut daemon = Daemon { child, api: format!("http://127.0.0.1:{api_port}"), api_port, log };
        daemon.wait_healthy(Duration::from_secs(60));
        daemon
    }

    /// What the daemon printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("weft run exited with {status} before answering:\n{}", self.log());
            }
            if health(self.api_port) {
                return;
            }
            if Instant::now() > deadline {
                panic!("weft run did not answer /health within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Send SIGTERM and wait (at most 30 s) for the exit status.
    #[cfg(unix)]
    pub fn terminate(&mut self) -> ExitStatus {
        let status =
            StdCommand::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("running kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!("weft run did not stop within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Any child process, killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `GET /health` on the loopback port answers 200.
pub fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Poll `check` every 200 ms until it returns `Some`, or panic after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
