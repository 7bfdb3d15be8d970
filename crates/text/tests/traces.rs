//! The recorded editing traces replay exactly, locally and on a remote replica.

// `check_trace` is a helper, not a `#[test]`, so clippy's test exemption does not reach it.
#![allow(clippy::expect_used)]

mod support;

use support::{apply_remote, load_trace, replay_local};
use weft_text::TextDoc;

fn check_trace(name: &str) {
    let trace = load_trace(name);
    let (doc, ops) = replay_local(&trace);
    assert!(doc.to_string() == trace.end_content, "{name}: local replay differs from endContent");
    assert_eq!(doc.len_chars(), trace.end_content.chars().count());

    let remote = apply_remote(&ops);
    assert!(remote.to_string() == trace.end_content, "{name}: remote replay differs from endContent");
    assert_eq!(remote.content_hash(), doc.content_hash(), "{name}: remote replica hash differs");

    let bytes = doc.encode();
    assert_eq!(remote.encode(), bytes, "{name}: canonical encodings differ");
    let decoded = TextDoc::decode(&bytes).expect("decode");
    assert_eq!(decoded.content_hash(), doc.content_hash());
    assert!(decoded.to_string() == trace.end_content);
    // Re-applying everything to the decoded copy changes nothing.
    let mut again = decoded;
    for op in &ops {
        again.apply(op).expect("re-apply");
    }
    assert_eq!(again.content_hash(), doc.content_hash());
}

#[test]
fn automerge_paper_trace_replays_exactly() {
    check_trace("automerge-paper");
}

#[test]
fn seph_blog1_trace_replays_exactly() {
    check_trace("seph-blog1");
}
