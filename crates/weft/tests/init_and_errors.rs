//! `weft init`, the config file and the error conventions (one `error:`
//! line on stderr; exit 1 for operational errors, 2 for usage errors),
//! against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{free_port, weft};
use predicates::prelude::*;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn assert_one_error_line(stderr: &str) {
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
}

#[test]
fn init_creates_the_home_config_key_token_and_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("node");
    weft()
        .args(["init", "--home"])
        .arg(&home)
        .args(["--swarm-port", "4100", "--api-port", "4200"])
        .assert()
        .success()
        .stdout(predicate::str::contains("peer id  12D3KooW"));
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains(r#"listen = ["/ip4/0.0.0.0/tcp/4100", "/ip4/0.0.0.0/udp/4100/quic-v1"]"#), "{config}");
    assert!(config.contains(r#"listen = "127.0.0.1:4200""#), "{config}");
    assert_eq!(std::fs::read_to_string(home.join("node.key")).unwrap().trim().len(), 64);
    assert_eq!(std::fs::read_to_string(home.join("api.token")).unwrap().trim().len(), 64);
    assert!(home.join("data").is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["node.key", "api.token"] {
            let mode = std::fs::metadata(home.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }
    weft().args(["config", "check", "--home"]).arg(&home).assert().success();
}

#[test]
fn init_takes_the_home_from_weft_home() {
    let dir = tempfile::tempdir().unwrap();
    weft().env("WEFT_HOME", dir.path()).args(["init", "--json"]).assert().success();
    assert!(dir.path().join("config.toml").is_file());
}

#[test]
fn init_refuses_an_existing_home_without_force() {
    let dir = tempfile::tempdir().unwrap();
    weft().args(["init", "--home"]).arg(dir.path()).assert().success();
    let key = std::fs::read_to_string(dir.path().join("node.key")).unwrap();
    let output = weft().args(["init", "--home"]).arg(dir.path()).assert().code(1).get_output().clone();
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("node.key")).unwrap(), key);
    weft().args(["init", "--force", "--home"]).arg(dir.path()).assert().success();
    assert_ne!(std::fs::read_to_string(dir.path().join("node.key")).unwrap(), key);
}

#[test]
fn a_bad_flag_is_a_usage_error_on_one_line() {
    let output = weft().args(["init", "--no-such-flag"]).assert().code(2).get_output().clone();
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    let output = weft().args(["call", "c", "m", "--args", "{not json"]).assert().code(2).get_output().clone();
    assert_one_error_line(&stderr_of(&output));
}

#[test]
fn a_bad_bootstrap_address_is_refused_at_init() {
    let dir = tempfile::tempdir().unwrap();
    let output = weft()
        .args(["init", "--home"])
        .arg(dir.path())
        .args(["--bootstrap", "/ip4/127.0.0.1/tcp/4001"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr);
    assert!(stderr.contains("[swarm] bootstrap"), "{stderr}");
    assert!(!dir.path().join("config.toml").exists());
}

/// `weft run` on a home whose config was edited to `edit(text)` fails with
/// one line that contains `named`.
fn run_refuses_config(edit: impl Fn(String) -> String, named: &str) {
    let dir = tempfile::tempdir().unwrap();
    weft().args(["init", "--home"]).arg(dir.path()).args(["--api-port", &free_port().to_string()]).assert().success();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, edit(std::fs::read_to_string(&path).unwrap())).unwrap();
    let output = weft().args(["run", "--home"]).arg(dir.path()).assert().code(1).get_output().clone();
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr);
    assert!(stderr.contains(named), "{named:?} not in {stderr:?}");
}

#[test]
fn run_refuses_an_unknown_config_key_naming_it() {
    run_refuses_config(|text| text.replace("[sync]\n", "[sync]\nfrequency = 3\n"), "[sync] frequency");
}

#[test]
fn run_refuses_a_badly_typed_config_value_naming_the_key() {
    run_refuses_config(|text| text.replace("interval_ms = 5000", "interval_ms = \"soon\""), "[sync] interval_ms");
}

#[test]
fn run_refuses_an_unusable_config_value_naming_the_key() {
    run_refuses_config(|text| text.replace("retry_max_ms = 60000", "retry_max_ms = 1"), "[handlers] retry_max_ms");
}

#[test]
fn run_without_a_home_says_to_init() {
    let dir = tempfile::tempdir().unwrap();
    let output = weft().args(["run", "--home"]).arg(dir.path()).assert().code(1).get_output().clone();
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr);
    assert!(stderr.contains("weft init"), "{stderr}");
}

#[test]
fn client_commands_without_a_node_say_so() {
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let output = weft().args(["peers", "--api", &api]).assert().code(1).get_output().clone();
    let stderr = stderr_of(&output);
    assert_one_error_line(&stderr);
    assert_eq!(stderr.trim_end(), format!("error: no node answers at {api}; is `weft run` running?"));
}

#[test]
fn config_default_prints_every_section() {
    let output = weft().args(["config", "default"]).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(output).unwrap();
    for section in ["[node]", "[swarm]", "[api]", "[sync]", "[handlers]", "[runtime]"] {
        assert!(text.contains(section), "{section}");
    }
    assert!(text.contains("frequency_ms = 10000"));
}
