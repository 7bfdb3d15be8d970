//! Convergence: replicas that apply the same ops in different causally
//! consistent orders, with duplicates, end up identical — two of them one
//! identity writing from two devices at once (two lanes).

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weft_primitives::PublicKey;

use std::collections::HashMap;

use weft_primitives::Hash;

use crate::{TextDoc, TextOp, TextRows};

const REPLICAS: usize = 3;
/// Replicas 0 and 1 are one identity on two devices (two lanes, one of them
/// high enough to use every bit of the lane); replica 2 is another identity.
const KEYS: [PublicKey; REPLICAS] = [PublicKey([3; 32]), PublicKey([3; 32]), PublicKey([2; 32])];
const LANES: [u32; REPLICAS] = [0, u32::MAX - 1, 5];

#[derive(Clone, Debug)]
enum Step {
    /// Replica inserts `text` at `pos % (len + 1)`.
    Insert { replica: usize, pos: usize, text: String },
    /// Replica deletes up to `len` chars at `pos % len`.
    Delete { replica: usize, pos: usize, len: usize },
    /// Replica receives one op it can causally accept, chosen by `pick`.
    Deliver { replica: usize, pick: usize },
    /// Replica receives again an op it already applied.
    Redeliver { replica: usize, pick: usize },
    /// Replica brings its content hash up to date incrementally.
    Hash { replica: usize },
    /// Replica writes the rows that changed to its row store.
    Persist { replica: usize },
}

fn step() -> impl Strategy<Value = Step> {
    let text = prop::collection::vec(prop::sample::select(vec!['a', 'b', 'c', 'é', '🦀']), 1..4)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![
        4 => (0..REPLICAS, 0..6usize, text).prop_map(|(replica, pos, text)| Step::Insert { replica, pos, text }),
        2 => (0..REPLICAS, 0..6usize, 1..4usize).prop_map(|(replica, pos, len)| Step::Delete { replica, pos, len }),
        4 => (0..REPLICAS, any::<usize>()).prop_map(|(replica, pick)| Step::Deliver { replica, pick }),
        1 => (0..REPLICAS, any::<usize>()).prop_map(|(replica, pick)| Step::Redeliver { replica, pick }),
        2 => (0..REPLICAS).prop_map(|replica| Step::Hash { replica }),
        2 => (0..REPLICAS).prop_map(|replica| Step::Persist { replica }),
    ]
}

/// An op and the ops its author had applied when making it (its causal past).
struct Logged {
    op: TextOp,
    deps: Vec<usize>,
}

struct Replica {
    doc: TextDoc,
    applied: Vec<bool>,
    rows: RowStore,
}

/// A document's rows as a key-value store would hold them.
#[derive(Default)]
struct RowStore {
    top: Vec<Hash>,
    node_rows: HashMap<Hash, Vec<Hash>>,
    chunk_rows: HashMap<Hash, Vec<u8>>,
}

impl RowStore {
    fn write(&mut self, rows: TextRows) {
        self.top = rows.top;
        for (hash, row) in rows.node_rows {
            match row {
                Some(children) => self.node_rows.insert(hash, children),
                None => self.node_rows.remove(&hash),
            };
        }
        for (hash, row) in rows.chunk_rows {
            match row {
                Some(bytes) => self.chunk_rows.insert(hash, bytes),
                None => self.chunk_rows.remove(&hash),
            };
        }
    }

    /// Load the document as a store's reader would: the top list, each
    /// level of nodes, then the chunks.
    fn load(&self) -> TextDoc {
        let (nodes, chunks) =
            read_rows(&self.top, |h| self.node_rows.get(h).cloned(), |h| self.chunk_rows.get(h).cloned());
        TextDoc::from_rows(&self.top, &nodes, &chunks).unwrap()
    }
}

/// The node lists and chunks under `top`, read level by level.
pub(crate) fn read_rows(
    top: &[Hash],
    node: impl Fn(&Hash) -> Option<Vec<Hash>>,
    chunk: impl Fn(&Hash) -> Option<Vec<u8>>,
) -> (Vec<Vec<Hash>>, Vec<Vec<u8>>) {
    let mut level = top.to_vec();
    let mut nodes = Vec::new();
    for _ in 0..crate::TEXT_NODE_LEVELS {
        let mut next = Vec::new();
        for hash in &level {
            let children = node(hash).unwrap();
            next.extend(children.iter().copied());
            nodes.push(children);
        }
        level = next;
    }
    (nodes, level.iter().map(|hash| chunk(hash).unwrap()).collect())
}

fn new_replica() -> Replica {
    let mut doc = TextDoc::new();
    doc.track_rows();
    Replica { doc, applied: Vec::new(), rows: RowStore::default() }
}

/// Rows written incrementally are exactly the document's rows: it loads back
/// whole, and nothing stale is left beside them.
fn check_rows(replica: &mut Replica) -> Result<(), TestCaseError> {
    replica.rows.write(replica.doc.take_rows());
    for bytes in replica.rows.chunk_rows.values() {
        prop_assert_eq!(&crate::chunk::reencode(bytes), bytes, "a chunk is not written as borsh would");
    }
    let loaded = replica.rows.load();
    prop_assert_eq!(loaded.to_string(), replica.doc.to_string());
    prop_assert_eq!(loaded.content_hash(), replica.doc.content_hash());
    let mut fresh = TextDoc::decode(&replica.doc.encode()).unwrap();
    fresh.track_rows();
    let mut all = RowStore::default();
    all.write(fresh.take_rows());
    let keys = |m: &HashMap<Hash, Vec<u8>>| m.keys().copied().collect::<std::collections::BTreeSet<_>>();
    prop_assert_eq!(keys(&replica.rows.chunk_rows), keys(&all.chunk_rows), "stale or missing chunk rows");
    prop_assert_eq!(replica.rows.node_rows.len(), all.node_rows.len(), "stale or missing node rows");
    Ok(())
}

impl Replica {
    fn has(&self, op: usize) -> bool {
        self.applied.get(op).copied().unwrap_or(false)
    }

    fn mark(&mut self, op: usize) {
        if self.applied.len() <= op {
            self.applied.resize(op + 1, false);
        }
        self.applied[op] = true;
    }

    fn deliverable(&self, log: &[Logged]) -> Vec<usize> {
        (0..log.len()).filter(|&i| !self.has(i) && log[i].deps.iter().all(|&d| self.has(d))).collect()
    }

    fn receive(&mut self, log: &[Logged], op: usize) {
        self.doc.apply(&log[op].op).unwrap_or_else(|e| panic!("op {op} refused: {e}"));
        self.mark(op);
    }
}

/// Play `steps` on fresh replicas; returns the replicas and the op log.
fn run_history(steps: &[Step]) -> (Vec<Replica>, Vec<Logged>) {
    let mut replicas: Vec<Replica> = (0..REPLICAS).map(|_| new_replica()).collect();
    let mut log: Vec<Logged> = Vec::new();
    for step in steps {
        match step {
            Step::Insert { replica, pos, text } => {
                let r = &mut replicas[*replica];
                let pos = pos % (r.doc.len_chars() + 1);
                let op = r.doc.insert_in_lane(KEYS[*replica], LANES[*replica], pos, text).unwrap();
                let deps = (0..log.len()).filter(|&i| r.has(i)).collect();
                r.mark(log.len());
                log.push(Logged { op, deps });
            }
            Step::Delete { replica, pos, len } => {
                let r = &mut replicas[*replica];
                let doc_len = r.doc.len_chars();
                if doc_len == 0 {
                    continue;
                }
                let pos = pos % doc_len;
                let len = (*len).min(doc_len - pos);
                let op = r.doc.delete(KEYS[*replica], pos, len).unwrap();
                let deps = (0..log.len()).filter(|&i| r.has(i)).collect();
                r.mark(log.len());
                log.push(Logged { op, deps });
            }
            Step::Deliver { replica, pick } => {
                let r = &mut replicas[*replica];
                let ready = r.deliverable(&log);
                if !ready.is_empty() {
                    r.receive(&log, ready[pick % ready.len()]);
                }
            }
            Step::Redeliver { replica, pick } => {
                let r = &mut replicas[*replica];
                let done: Vec<usize> = (0..log.len()).filter(|&i| r.has(i)).collect();
                if !done.is_empty() {
                    let before = (r.doc.to_string(), r.doc.content_hash());
                    r.doc.apply(&log[done[pick % done.len()]].op).unwrap();
                    assert_eq!((r.doc.to_string(), r.doc.content_hash()), before, "duplicate changed the state");
                }
            }
            Step::Hash { replica } => check_incremental_hash(&mut replicas[*replica].doc),
            Step::Persist { replica } => {
                let r = &mut replicas[*replica];
                r.rows.write(r.doc.take_rows());
            }
        }
    }
    (replicas, log)
}

/// Deliver everything still missing, in a random causal order with random duplicates.
fn deliver_rest(replica: &mut Replica, log: &[Logged], rng: &mut SmallRng) {
    loop {
        let ready = replica.deliverable(log);
        if ready.is_empty() {
            break;
        }
        let op = ready[rng.random_range(0..ready.len())];
        replica.receive(log, op);
        if rng.random_bool(0.2) {
            replica.receive(log, op);
        }
        if rng.random_bool(0.3) {
            check_incremental_hash(&mut replica.doc);
        }
    }
    assert!(replica.applied.iter().filter(|a| **a).count() == log.len(), "not every op was delivered");
}

/// The incrementally kept content hash equals the one computed from scratch.
fn check_incremental_hash(doc: &mut TextDoc) {
    let incremental = doc.update_content_hash();
    let scratch = crate::digest::Digest::compute(&doc.authors, &doc.seq);
    assert_eq!(incremental, scratch, "the incremental content hash drifted from the full one");
    assert_eq!(doc.content_hash(), scratch);
}

fn assert_identical(docs: &[&TextDoc]) -> Result<(), TestCaseError> {
    let text = docs[0].to_string();
    let hash = docs[0].content_hash();
    let bytes = docs[0].encode();
    for doc in &docs[1..] {
        prop_assert_eq!(doc.to_string(), text.clone());
        prop_assert_eq!(doc.content_hash(), hash);
        prop_assert_eq!(doc.encode(), bytes.clone());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Three replicas edit concurrently (often at the same positions) and exchange
    /// ops in random causal orders with duplicates: all end with the same text,
    /// hash and encoding.
    #[test]
    fn replicas_converge_under_any_causal_delivery(steps in prop::collection::vec(step(), 1..100), seed in any::<u64>()) {
        let (mut replicas, log) = run_history(&steps);
        let mut rng = SmallRng::seed_from_u64(seed);
        for replica in &mut replicas {
            deliver_rest(replica, &log, &mut rng);
        }
        for replica in &mut replicas {
            check_incremental_hash(&mut replica.doc);
            check_rows(replica)?;
        }
        let docs: Vec<&TextDoc> = replicas.iter().map(|r| &r.doc).collect();
        assert_identical(&docs)?;
        // The canonical state survives a round trip.
        let decoded = TextDoc::decode(&docs[0].encode()).unwrap();
        prop_assert_eq!(decoded.content_hash(), docs[0].content_hash());
    }

    /// The same op set applied to fresh replicas in three different causal orders
    /// gives one hash (and one text).
    #[test]
    fn same_ops_in_three_causal_orders_give_one_hash(steps in prop::collection::vec(step(), 1..100), seed in any::<u64>()) {
        let (_, log) = run_history(&steps);
        let mut rng = SmallRng::seed_from_u64(seed);
        let fresh: Vec<Replica> = (0..3)
            .map(|_| {
                let mut replica = new_replica();
                deliver_rest(&mut replica, &log, &mut rng);
                replica
            })
            .collect();
        let docs: Vec<&TextDoc> = fresh.iter().map(|r| &r.doc).collect();
        assert_identical(&docs)?;
    }
}
