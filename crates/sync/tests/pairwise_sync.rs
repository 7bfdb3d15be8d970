//! docs/testing.md S6, "pairwise sync terminates": two replicas with a random
//! common history, random concurrent writes on each side and random partial
//! gossip between them run one anti-entropy session on a clean network. It
//! must end, leave both with the same heads and root hash, and — when one
//! side simply lagged — send it nothing twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Cluster;
use proptest::prelude::*;
use weft_state::{CrdtKind, StorageKind, root_id};
use weft_sync::{Config, Input};

#[derive(Clone, Debug)]
enum Step {
    /// A write on `side` touching shared key `key` (a remove when `remove`).
    Write { side: usize, key: u8, remove: bool },
    /// Gossip the oldest delta `side` wrote that the other side has not seen.
    Gossip { side: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize, 0..4u8, any::<bool>()).prop_map(|(side, key, remove)| Step::Write { side, key, remove }),
        2 => (0..2usize).prop_map(|side| Step::Gossip { side }),
    ]
}

fn quiet() -> Config {
    Config { sync_frequency_ms: 3_600_000, ..Config::default() }
}

fn write(cluster: &mut Cluster, side: usize, key: u8, remove: bool) -> Vec<u8> {
    cluster.now += 1;
    let now = cluster.now;
    let prepared = cluster.replicas[side]
        .prepare_write(now, now, |txn| {
            let shared = txn.create(root_id(), b"shared", CrdtKind::Map, StorageKind::Public)?;
            if remove {
                txn.map_remove(shared, &[key])?;
            } else {
                txn.map_insert(shared, &[key], &now.to_le_bytes())?;
            }
            Ok(Vec::new())
        })
        .unwrap();
    let outputs = cluster.replicas[side].handle(Input::LocalWrite(prepared), now);
    outputs
        .into_iter()
        .find_map(|o| match o {
            weft_sync::Output::Publish { bytes, .. } => Some(bytes),
            _ => None,
        })
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn pairwise_sync_terminates_with_equal_heads_and_root(
        prefix in 0..6usize,
        steps in proptest::collection::vec(step(), 0..24),
        initiator in 0..2usize,
    ) {
        let mut cluster = Cluster::connected(2, quiet());
        for i in 0..prefix {
            let bytes = write(&mut cluster, i % 2, (i % 4) as u8, false);
            cluster.gossip(i % 2, 1 - i % 2, &bytes);
        }
        let mut unsent: [std::collections::VecDeque<Vec<u8>>; 2] = Default::default();
        let mut wrote = [false; 2];
        for step in steps {
            match step {
                Step::Write { side, key, remove } => {
                    let bytes = write(&mut cluster, side, key, remove);
                    unsent[side].push_back(bytes);
                    wrote[side] = true;
                }
                Step::Gossip { side } => {
                    if let Some(bytes) = unsent[side].pop_front() {
                        cluster.gossip(side, 1 - side, &bytes);
                    }
                }
            }
        }
        let duplicates_before = [cluster.replicas[0].stats().duplicates, cluster.replicas[1].stats().duplicates];
        cluster.now += 6_000; // past the interval of the connect-time sessions
        let traffic = cluster.input(initiator, Input::SyncNow { peer: None });
        prop_assert!(traffic.messages <= 12, "{} messages", traffic.messages);
        prop_assert!(traffic.penalties().is_empty());
        prop_assert_eq!(cluster.replicas[0].heads(), cluster.replicas[1].heads());
        prop_assert_eq!(cluster.replicas[0].root_hash(), cluster.replicas[1].root_hash());
        prop_assert_eq!(cluster.replicas[0].session_count() + cluster.replicas[1].session_count(), 0);
        if !(wrote[0] && wrote[1]) {
            // One side only lagged: the exchange is exact.
            let duplicates = [cluster.replicas[0].stats().duplicates, cluster.replicas[1].stats().duplicates];
            prop_assert_eq!(duplicates, duplicates_before);
        }
    }
}
