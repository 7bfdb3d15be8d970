//! Text CRDT figures on the automerge-paper editing trace (259,778 edits), one
//! JSON line per figure. Each timing is the best of `ROUNDS` runs.

// A bench that diverges or cannot read its trace must abort loudly.
#![allow(clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use support::{apply_remote, load_trace, replay_local};
use weft_text::TextDoc;

/// Runs per timing; the best is reported (the machine is shared).
const ROUNDS: usize = 5;

fn figure(name: &str, value: f64, unit: &str) {
    println!("{}", serde_json::json!({ "name": name, "value": (value * 1000.0).round() / 1000.0, "unit": unit }));
}

/// Best wall time of `ROUNDS` runs of `f`, in ms, and the last result.
fn best_ms<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
        last = Some(out);
    }
    (best, last.expect("ROUNDS > 0"))
}

fn main() {
    for name in ["automerge-paper", "seph-blog1"] {
        let trace = load_trace(name);
        let edits: usize = trace.txns.iter().map(|t| t.patches.len()).sum();
        figure(&format!("{name}.edits"), edits as f64, "count");

        let (local_ms, (doc, ops)) = best_ms(|| replay_local(&trace));
        assert!(doc.to_string() == trace.end_content, "local replay diverged");
        figure(&format!("{name}.replay_local"), local_ms, "ms");
        figure(&format!("{name}.replay_local_per_edit"), local_ms * 1e6 / edits as f64, "ns");

        // What a replica that commits every edit pays: the content hash
        // brought up to date after each op (the state layer's path).
        let (hashed_ms, hashed) = best_ms(|| {
            let mut doc = TextDoc::new();
            for op in &ops {
                doc.apply(op).expect("replayed op applies");
                doc.update_content_hash();
            }
            doc
        });
        assert_eq!(hashed.content_hash(), doc.content_hash(), "incremental hash diverged");
        figure(&format!("{name}.apply_remote_hash_each"), hashed_ms, "ms");
        figure(&format!("{name}.apply_remote_hash_each_per_op"), hashed_ms * 1e6 / ops.len() as f64, "ns");

        let (remote_ms, remote) = best_ms(|| apply_remote(&ops));
        assert!(remote.to_string() == trace.end_content, "remote replay diverged");
        figure(&format!("{name}.apply_remote"), remote_ms, "ms");
        figure(&format!("{name}.hash_each_vs_apply_remote"), hashed_ms / remote_ms, "ratio");

        // A clone taken before any hash was computed has a cold cache.
        let (hash_ms, hash) = best_ms(|| doc.clone().content_hash());
        assert_eq!(hash, remote.content_hash());
        figure(&format!("{name}.content_hash"), hash_ms, "ms");

        let (codec_ms, bytes) = best_ms(|| {
            let bytes = doc.encode();
            let back = TextDoc::decode(&bytes).expect("decode");
            assert_eq!(back.len_chars(), doc.len_chars());
            bytes.len()
        });
        figure(&format!("{name}.encode_decode"), codec_ms, "ms");
        figure(&format!("{name}.encoded_size"), bytes as f64, "bytes");
        figure(&format!("{name}.runs_in_memory"), doc.run_count() as f64, "count");
        figure(&format!("{name}.runs_in_memory_remote"), remote.run_count() as f64, "count");
        figure(&format!("{name}.ops"), ops.len() as f64, "count");
    }
}
