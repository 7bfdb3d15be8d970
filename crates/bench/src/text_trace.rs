//! The automerge-paper editing trace through the state layer, one
//! transaction (one delta's worth of work) per edit.
//!
//! Each edit of the trace is a `StateTxn` over an in-memory key-value store
//! that deletes and inserts through `text_delete`/`text_insert`, commits, and
//! applies its writes: what a node does for each keystroke of the
//! collab-text app, without the signing and the disk. The baseline, in the
//! same run, is the text crate replaying the same edits on a bare
//! `TextDoc`. Then the same edits through redb with group commit, as the
//! node commits local calls. Every replay must end with the same text.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, ensure};
use serde::Deserialize;
use weft_primitives::kv::{KvRead, MemoryKv, WriteSet};
use weft_primitives::{Hash, Hlc, PublicKey, SigningKey};
use weft_state::{CrdtKind, EntityId, StateTxn, StorageKind, root_id};
use weft_store::Store;
use weft_text::TextDoc;

use crate::figure::{emit, per_second};
use crate::state_store::commit_grouped;

/// `{ startContent, endContent, txns: [{ patches: [[pos, del, ins]] }] }`.
#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "startContent")]
    start_content: String,
    #[serde(rename = "endContent")]
    end_content: String,
    txns: Vec<TraceTxn>,
}

#[derive(Deserialize)]
struct TraceTxn {
    patches: Vec<(usize, usize, String)>,
}

fn trace_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../text/tests/data/editing-traces/automerge-paper.json.gz")
}

fn load_trace() -> anyhow::Result<Trace> {
    let path = trace_path();
    let file = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut json).context("trace is not gzip'd UTF-8")?;
    serde_json::from_str(&json).context("trace JSON")
}

fn text_id() -> EntityId {
    weft_state::child_id(&root_id(), b"doc", CrdtKind::Text, &StorageKind::Public)
}

/// Replay the first `edits` edits (all when `None`) both ways and print the figures.
pub fn run(edits: Option<usize>) -> anyhow::Result<()> {
    let trace = load_trace()?;
    ensure!(trace.start_content.is_empty(), "the trace starts from an empty document");
    let patches: Vec<&(usize, usize, String)> = trace.txns.iter().flat_map(|t| t.patches.iter()).collect();
    let count = edits.unwrap_or(patches.len()).min(patches.len());
    let patches = &patches[..count];
    emit("text_trace_edits", count as f64, "edits");

    let started = Instant::now();
    let bare_doc = bare_replay(patches)?;
    let bare_rate = per_second(count, started.elapsed());
    let bare = bare_doc.to_string();
    emit("text_trace_bare_doc", bare_rate, "edits/s");
    emit("text_trace_whole_doc_encoding_bytes", bare_doc.encode().len() as f64, "bytes");

    let started = Instant::now();
    let (through_state, written, at_rest) = state_replay(patches)?;
    let elapsed = started.elapsed();
    let state_rate = per_second(count, elapsed);
    ensure!(through_state == bare, "the state layer's text differs from the bare replay");
    if count == trace.txns.iter().map(|t| t.patches.len()).sum::<usize>() {
        ensure!(through_state == trace.end_content, "the replay does not end with the trace's text");
    }
    emit("text_trace_state_txn_per_edit", state_rate, "edits/s");
    emit("text_trace_state_txn_total", elapsed.as_secs_f64(), "s");
    emit("text_trace_state_vs_bare_doc", state_rate / bare_rate, "ratio");
    emit("text_trace_state_bytes_written_per_edit", written as f64 / count as f64, "bytes");
    emit("text_trace_state_bytes_at_rest", at_rest as f64, "bytes");

    // The same through redb, the node's way: many edits share one durable
    // commit (group commit), later edits reading earlier ones before they
    // are durable.
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = Store::open(dir.path().join("text.redb"))?;
    let started = Instant::now();
    let through_store = store_replay(&store, patches)?;
    let elapsed = started.elapsed();
    ensure!(through_store == bare, "the store's text differs from the bare replay");
    emit("text_trace_store_group_commit", per_second(count, elapsed), "edits/s");
    emit("text_trace_store_group_commit_total", elapsed.as_secs_f64(), "s");
    emit("text_trace_store_vs_state_in_memory", per_second(count, elapsed) / state_rate, "ratio");
    Ok(())
}

const CONTEXT: Hash = Hash([9; 32]);

fn store_replay(store: &Store, patches: &[&(usize, usize, String)]) -> anyhow::Result<String> {
    let signer = SigningKey::from_seed([1; 32]);
    let text = text_id();
    // Transaction 0 creates the text; transaction i > 0 is patch i - 1.
    commit_grouped(store, CONTEXT, patches.len() + 1, |kv, i| {
        let mut txn = StateTxn::new(kv, Hash::default(), &signer, Hlc::new(2_000 + i as u64, 0));
        match i.checked_sub(1).and_then(|at| patches.get(at)) {
            None => {
                txn.create(root_id(), b"doc", CrdtKind::Text, StorageKind::Public)?;
            }
            Some(patch) => apply_patch(&mut txn, text, patch)?,
        }
        Ok(txn.commit()?.writes)
    })?;
    let snapshot = store.read()?;
    let view = snapshot.state_view(CONTEXT)?;
    let mut txn = StateTxn::read_only(&view);
    Ok(txn.text_read(text)?)
}

/// One edit of the trace: delete, then insert, at the patch's position.
fn apply_patch<K: KvRead + ?Sized>(
    txn: &mut StateTxn<'_, K>,
    text: EntityId,
    patch: &(usize, usize, String),
) -> Result<(), weft_state::StateError> {
    let (pos, del, ins) = (patch.0 as u64, patch.1 as u64, &patch.2);
    if del > 0 {
        txn.text_delete(text, pos, del)?;
    }
    if !ins.is_empty() {
        txn.text_insert(text, pos, ins)?;
    }
    Ok(())
}

/// The document after the edits (its whole encoding is what a commit wrote
/// per edit while a text was one row).
fn bare_replay(patches: &[&(usize, usize, String)]) -> anyhow::Result<TextDoc> {
    let author = PublicKey([7; 32]);
    let mut doc = TextDoc::new();
    for (pos, del, ins) in patches.iter().map(|p| (p.0, p.1, &p.2)) {
        if del > 0 {
            doc.delete(author, pos, del)?;
        }
        if !ins.is_empty() {
            doc.insert(author, pos, ins)?;
        }
    }
    Ok(doc)
}

/// The final text, the bytes the edits' write sets carried in all, and the
/// bytes of every state row at the end.
fn state_replay(patches: &[&(usize, usize, String)]) -> anyhow::Result<(String, usize, usize)> {
    let signer = SigningKey::from_seed([1; 32]);
    let text = text_id();
    let mut kv = MemoryKv::new();
    let create = {
        let mut txn = StateTxn::new(&kv, Hash::default(), &signer, Hlc::new(1_000, 0));
        txn.create(root_id(), b"doc", CrdtKind::Text, StorageKind::Public)?;
        txn.commit()?.writes
    };
    kv.apply(create);
    let mut written = 0;
    for (i, patch) in patches.iter().enumerate() {
        let writes: WriteSet = {
            let mut txn = StateTxn::new(&kv, Hash::default(), &signer, Hlc::new(2_000 + i as u64, 0));
            apply_patch(&mut txn, text, patch)?;
            txn.commit()?.writes
        };
        written += writes.byte_len();
        kv.apply(writes);
    }
    let at_rest: usize =
        kv.scan(&weft_state::state_prefix(), None, usize::MAX)?.iter().map(|(k, v)| k.len() + v.len()).sum();
    let mut txn = StateTxn::read_only(&kv);
    Ok((txn.text_read(text)?, written, at_rest))
}
