//! Two real `weft run` daemons on loopback, driven only through the CLI:
//! install, create, invite, join, call, replicate, inspect, watch, leave,
//! and a clean SIGTERM exit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use common::{Daemon, KillOnDrop, eventually, free_port, init_home, weft};
use serde_json::Value;

/// Run `weft --home home args…`, assert success, return stdout.
fn cli(home: &Path, args: &[&str]) -> String {
    let output = weft().arg("--home").arg(home).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "weft {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Same with `--json`, parsed.
fn cli_json(home: &Path, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = cli(home, &with_json);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("weft {args:?} --json printed non-JSON ({e}): {out}"))
}

#[test]
fn two_daemons_replicate_a_context_driven_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let (swarm_a, api_a, swarm_b, api_b) = (free_port(), free_port(), free_port(), free_port());
    let peer_a = init_home(&home_a, swarm_a, api_a, None);
    let peer_b = init_home(&home_b, swarm_b, api_b, Some(format!("/ip4/127.0.0.1/tcp/{swarm_a}/p2p/{peer_a}")));
    let mut daemon_a = Daemon::start(&home_a, api_a);
    let mut daemon_b = Daemon::start(&home_b, api_b);
    assert!(daemon_a.log().contains(&peer_a), "{}", daemon_a.log());

    // Install and create on A.
    let module = dir.path().join("kv_store.wasm");
    std::fs::write(&module, weft_apps::KV_STORE).unwrap();
    let app = cli_json(&home_a, &["app", "install", module.to_str().unwrap()]);
    let app_id = app["id"].as_str().unwrap().to_owned();
    assert_eq!(app["name"], "kv-store");
    assert!(cli(&home_a, &["app", "list"]).contains(&app_id));
    assert!(cli(&home_a, &["app", "show", &app_id]).contains("mutate"));
    let context = cli_json(&home_a, &["context", "create", &app_id, "--init-args", "{}"]);
    let context = context["id"].as_str().unwrap().to_owned();
    assert!(cli(&home_a, &["context", "list"]).contains(&context));

    // Invite, install and join on B.
    let invitation = cli(&home_a, &["context", "invite", &context, "--valid-for", "600"]).trim().to_owned();
    assert!(invitation.starts_with("weft-invite1:"), "{invitation}");
    cli(&home_b, &["app", "install", module.to_str().unwrap()]);
    let joined = cli(&home_b, &["context", "join", &invitation]);
    assert!(joined.contains(&context), "{joined}");

    // Watch B's events while A writes.
    let watch_log = dir.path().join("watch.log");
    let watcher = StdCommand::new(common::WEFT)
        .args(["watch", &context, "--home"])
        .arg(&home_b)
        .stdout(std::fs::File::create(&watch_log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watcher = KillOnDrop(watcher);
    // The watcher subscribes asynchronously: write until its output shows it.
    let args = r#"{"key":"greeting","value":"hello"}"#;
    cli(&home_a, &["call", &context, "set", "--args", args]);
    eventually(Duration::from_secs(60), "B reads A's write", || {
        let out = cli(&home_b, &["call", &context, "get", "--args", r#"{"key":"greeting"}"#]);
        (out.trim() == "hello").then_some(())
    });
    eventually(Duration::from_secs(30), "watch prints a replicated write", || {
        cli(&home_a, &["call", &context, "set", "--args", r#"{"key":"watched","value":"yes"}"#]);
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(&watch_log).unwrap().contains("watched").then_some(())
    });
    drop(watcher);
    let watched = std::fs::read_to_string(&watch_log).unwrap();
    assert!(watched.contains(&context[..8]) && watched.contains("delta"), "{watched}");

    // JSON call output and the view/mutation split.
    let got = cli_json(&home_b, &["call", &context, "get", "--args", r#"{"key":"greeting"}"#]);
    assert_eq!(got["output"], "hello");
    let set = cli_json(&home_b, &["call", &context, "set", "--args", r#"{"key":"from_b","value":"1"}"#]);
    assert!(set["delta"].is_string(), "{set}");

    // Members, peers, sync.
    for home in [&home_a, &home_b] {
        let members = cli_json(home, &["context", "members", &context]);
        assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
        assert_eq!(cli(home, &["context", "members", &context]).lines().count(), 2);
    }
    let peers = cli(&home_a, &["peers"]);
    assert!(peers.contains(&peer_b), "{peers}");
    let peers = cli_json(&home_a, &["peers"]);
    assert!(peers.as_array().unwrap().iter().any(|p| p["peer_id"] == peer_b.as_str()));
    assert!(cli(&home_b, &["sync", "status"]).contains(&context));
    let status = cli_json(&home_b, &["sync", "status", &context]);
    assert_eq!(status[0]["id"], context.as_str());
    assert!(cli(&home_b, &["sync", "now"]).starts_with("started "));
    assert!(cli_json(&home_b, &["sync", "now", &context])["started"].is_u64());
    let shown = cli_json(&home_a, &["context", "show", &context]);
    assert_eq!(shown["application"], app_id.as_str());
    assert!(cli(&home_a, &["context", "show", &context]).contains("root hash"));
    assert!(cli_json(&home_a, &["context", "list"]).is_array());
    assert!(cli_json(&home_a, &["app", "list"]).is_array());

    // Errors: one line, the server's message, exit 1.
    let unknown = "ab".repeat(32);
    let output = weft().arg("--home").arg(&home_a).args(["call", &unknown, "get"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("unknown context"), "{stderr}");
    let output = weft().arg("--home").arg(&home_a).args(["call", &context, "no_such_method"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("no method \"no_such_method\"") && stderr.contains("set"), "{stderr}");
    let output = weft().arg("--home").arg(&home_a).args(["app", "remove", &app_id]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "removing an app in use must fail");
    assert!(String::from_utf8(output.stderr).unwrap().contains("application_in_use"));

    // A wrong token is refused even on loopback.
    let output = weft().arg("--home").arg(&home_a).args(["--token", "wrong", "peers"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr).unwrap().contains("unauthorized"));

    // Leave on B.
    cli(&home_b, &["context", "leave", &context]);
    assert!(!cli(&home_b, &["context", "list"]).contains(&context));

    #[cfg(unix)]
    for daemon in [&mut daemon_a, &mut daemon_b] {
        let status = daemon.terminate();
        assert!(status.success(), "weft run exited with {status}:\n{}", daemon.log());
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    init_home(dir.path(), free_port(), api, None);
    let mut daemon = Daemon::start(dir.path(), api);
    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(daemon.log().contains("shutting down"), "{}", daemon.log());
    assert!(!common::health(api), "the API still answers after exit");
}
