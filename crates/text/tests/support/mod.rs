//! Loading the recorded editing traces kept in this crate at
//! `tests/data/editing-traces` (see the README there for their source and
//! licence) and replaying them as local edits (shared by the trace tests and
//! the bench).

// Test and bench support: a missing or broken trace must stop the run loudly,
// and each includer uses a different subset of these functions.
#![allow(dead_code, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;
use weft_primitives::PublicKey;
use weft_text::{TextDoc, TextOp};

/// One trace file: `{ startContent, endContent, txns: [{ time, patches }] }`.
#[derive(Deserialize)]
pub struct Trace {
    #[serde(rename = "startContent")]
    pub start_content: String,
    #[serde(rename = "endContent")]
    pub end_content: String,
    pub txns: Vec<Txn>,
}

/// One transaction: patches `(pos, del_len, ins_text)`, positions in code points.
#[derive(Deserialize)]
pub struct Txn {
    pub patches: Vec<(usize, usize, String)>,
}

/// Where trace `name` (e.g. `automerge-paper`) is expected.
pub fn trace_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/editing-traces/{name}.json.gz"))
}

/// Load trace `name`; panics with the expected location if it is missing.
pub fn load_trace(name: &str) -> Trace {
    let path = trace_path(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("editing trace {name} not found: expected it at {} ({e})", path.display()));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut json).expect("trace is not valid gzip/UTF-8");
    serde_json::from_str(&json).expect("trace is not valid JSON in the expected format")
}

/// The single author of a replayed trace.
pub const TRACE_AUTHOR: PublicKey = PublicKey([7; 32]);

/// Replay `trace` as local edits (each patch: delete, then insert), returning the
/// document and every op it produced.
pub fn replay_local(trace: &Trace) -> (TextDoc, Vec<TextOp>) {
    let mut doc = TextDoc::new();
    let mut ops = Vec::new();
    if !trace.start_content.is_empty() {
        ops.push(doc.insert(TRACE_AUTHOR, 0, &trace.start_content).expect("start content"));
    }
    for txn in &trace.txns {
        for (pos, del, ins) in &txn.patches {
            if *del > 0 {
                ops.push(doc.delete(TRACE_AUTHOR, *pos, *del).expect("trace delete"));
            }
            if !ins.is_empty() {
                ops.push(doc.insert(TRACE_AUTHOR, *pos, ins).expect("trace insert"));
            }
        }
    }
    (doc, ops)
}

/// Apply `ops` to a fresh replica.
pub fn apply_remote(ops: &[TextOp]) -> TextDoc {
    let mut doc = TextDoc::new();
    for op in ops {
        doc.apply(op).expect("replayed op applies remotely");
    }
    doc
}
