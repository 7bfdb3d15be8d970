//! `weft demo --duration 20`: three in-process nodes write, replicate and
//! converge; the run ends by itself with exit 0 and says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

#[test]
fn demo_runs_to_completion_and_converges() {
    let started = Instant::now();
    let output = common::weft().args(["demo", "--duration", "20"]).timeout(Duration::from_secs(120)).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("converged: all 3 root hashes equal"), "{stdout}");
    // Every node saw writes from the others.
    for node in ["n1", "n2", "n3"] {
        assert!(stdout.contains(&format!("from {node}")), "no write from {node} replicated:\n{stdout}");
    }
    assert!(stdout.contains("http://127.0.0.1:"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(60), "the demo took {:?}", started.elapsed());
}
