//! The node encoding: round trips, one encoding per node, and corrupt bytes
//! are errors, never panics.

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weft_primitives::Hash;

use super::{Link, TreeNode};
use crate::TREE_LEVEL_MAX;

fn node(keys: &[Vec<u8>], level: u8, seed: u64) -> TreeNode {
    let mut rng = SmallRng::seed_from_u64(seed);
    let hashes: Vec<Hash> = (0..keys.len()).map(|_| Hash(rng.random())).collect();
    let entries: Vec<(&[u8], &Hash, bool)> =
        keys.iter().zip(&hashes).map(|(key, hash)| (key.as_slice(), hash, rng.random())).collect();
    let gaps: Vec<Option<Link>> = (0..=keys.len())
        .map(|_| {
            rng.random::<bool>().then(|| Link {
                level: rng.random_range(0..level),
                hash: Hash(rng.random()),
                live: rng.random_range(0..1_000),
                stale: false,
            })
        })
        .collect();
    TreeNode::from_entries(level, &entries, &gaps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn node_encoding_round_trips_and_corruption_is_an_error_not_a_panic(
        keys in prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..8), 1..20),
        level in 1..=TREE_LEVEL_MAX,
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let keys: Vec<Vec<u8>> = keys.into_iter().collect();
        let mut built = node(&keys, level, seed);
        let hash = built.hash();
        let bytes = built.clone().into_bytes();
        let mut decoded = TreeNode::from_bytes(bytes.clone()).map_err(TestCaseError::fail)?;
        prop_assert!(decoded.same_shape(&built));
        prop_assert_eq!(decoded.hash(), hash);
        prop_assert_eq!(decoded.clone().into_bytes(), bytes.clone());
        for (i, key) in keys.iter().enumerate() {
            prop_assert_eq!(decoded.key(i), key.as_slice());
            prop_assert_eq!(decoded.search(key), Ok(i));
        }
        // Inside an index row: length-prefixed.
        let framed = borsh::to_vec(&Some(decoded.clone())).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(weft_primitives::encoding::decode::<Option<TreeNode>>(&framed), Ok(Some(decoded)));
        // Truncation and trailing bytes are errors; a flipped byte or noise
        // is an error or some valid node, never a panic.
        prop_assert!(TreeNode::from_bytes(bytes[..cut.index(bytes.len())].to_vec()).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(TreeNode::from_bytes(longer).is_err());
        let mut flipped = bytes.clone();
        let at = flip.index(flipped.len());
        flipped[at] ^= 0x5a;
        let _ = TreeNode::from_bytes(flipped);
        let _ = TreeNode::from_bytes(noise);
    }

    /// Inserting an entry or splitting a node gives the node built directly
    /// from the resulting entries and gaps.
    #[test]
    fn insert_and_split_equal_nodes_built_from_their_parts(
        keys in prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..8), 2..20),
        level in 1..=TREE_LEVEL_MAX,
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
    ) {
        let keys: Vec<Vec<u8>> = keys.into_iter().collect();
        let whole = node(&keys, level, seed);
        let i = at.index(keys.len());
        let entry = |j: usize| (keys[j].as_slice(), slot_hash(&whole, j), whole.is_live(j));
        let gaps: Vec<Option<Link>> = (0..=keys.len()).map(|j| whole.child(j)).collect();
        let build = |range: std::ops::Range<usize>, gaps: &[Option<Link>]| {
            let owned: Vec<(&[u8], Hash, bool)> = range.map(entry).collect();
            let entries: Vec<(&[u8], &Hash, bool)> = owned.iter().map(|(k, h, l)| (*k, h, *l)).collect();
            TreeNode::from_entries(level, &entries, gaps)
        };

        // Without key i (its two gaps merged into one, here empty), then
        // key i inserted back with its two gaps: the whole node again.
        let owned: Vec<(&[u8], Hash, bool)> = (0..keys.len()).filter(|j| *j != i).map(entry).collect();
        let entries: Vec<(&[u8], &Hash, bool)> = owned.iter().map(|(k, h, l)| (*k, h, *l)).collect();
        let merged: Vec<Option<Link>> =
            gaps[..i].iter().cloned().chain([None]).chain(gaps[i + 2..].iter().cloned()).collect();
        let mut rebuilt = TreeNode::from_entries(level, &entries, &merged);
        rebuilt.insert_entry(i, &keys[i], &slot_hash(&whole, i), whole.is_live(i), gaps[i].clone(), gaps[i + 1].clone());
        prop_assert_eq!(rebuilt.into_bytes(), whole.clone().into_bytes());

        // Split at gap i, whose subtree became `below` and `above`.
        let below = Some(Link { level: 0, hash: Hash([1; 32]), live: 3, stale: false });
        let above = Some(Link { level: 0, hash: Hash([2; 32]), live: 4, stale: false });
        let mut lower = whole.clone();
        let upper = lower.split_off(i, below.clone(), above.clone());
        let lower_gaps: Vec<Option<Link>> = gaps[..i].iter().cloned().chain([below]).collect();
        let upper_gaps: Vec<Option<Link>> = [above].into_iter().chain(gaps[i + 1..].iter().cloned()).collect();
        prop_assert_eq!(upper.into_bytes(), build(i..keys.len(), &upper_gaps).into_bytes());
        if i > 0 {
            prop_assert_eq!(lower.into_bytes(), build(0..i, &lower_gaps).into_bytes());
        } else {
            prop_assert!(lower.is_empty());
        }
    }
}

fn slot_hash(node: &TreeNode, i: usize) -> Hash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&node.hashes_bytes()[32 * i..32 * (i + 1)]);
    Hash(hash)
}
