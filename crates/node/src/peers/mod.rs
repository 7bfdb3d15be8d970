//! Where the other members' nodes are: the node's persisted address book,
//! so a node finds its contexts' members again by itself after any restart,
//! with no bootstrap list.
//!
//! A [`PeerBook`] entry is a node (keyed by the Ed25519 key behind its
//! libp2p peer id) with the contexts it is known to serve and the addresses
//! learned for it. A node enters a context's entries only on evidence that
//! it serves a member of that context:
//! - the inviter's node named in an invitation we used to join;
//! - the node of a joiner we admitted;
//! - a node that opened a sync session or a directory request with a hello
//!   signed by a current member;
//! - an entry of the directory a member's node gave us (hearsay from a
//!   member: its addresses are tried, never trusted for anything else).
//!
//! Addresses come from invitations, from identify (what the node says it
//! can be reached at), from dials that succeeded, and from directories.
//! Confirmed addresses (a dial that worked, identify) go to the front;
//! hearsay goes to the back; each entry keeps at most
//! [`PEER_ADDRS_KEPT_MAX`]. Only dialable addresses are kept: no
//! unspecified IPs (`0.0.0.0`), nothing that is not IP or DNS, no
//! `/p2p/<id>` suffix (the entry's key names the peer).
//!
//! The book is plain data (no I/O); [`PeerBook::load`] and
//! [`PeerBook::flush`] move it to and from the store's `PEERS` table.
//! [`redial::RedialSchedule`] decides when to dial whom, and
//! [`refresh::DirectoryRefresh`] when to ask for each context's directory.

pub mod redial;
pub mod refresh;

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use weft_net::Multiaddr;
use weft_net::multiaddr::Protocol;
use weft_primitives::{Hash, PublicKey};
use weft_store::{PEERS, Store, StoreError};

use crate::NodeError;

/// Addresses kept per node.
pub const PEER_ADDRS_KEPT_MAX: usize = 8;
/// Nodes kept in the book; beyond this the least recently connected goes.
pub const PEERS_KEPT_MAX: usize = 1024;
/// Contexts remembered per node.
pub const PEER_CONTEXTS_MAX: usize = 256;
/// The longest address kept (text form).
pub const PEER_ADDR_BYTES_MAX: usize = 256;
/// Entries in one directory a node gives or takes.
pub const DIRECTORY_ENTRIES_MAX: usize = 64;

/// A node's key (the Ed25519 key behind its peer id).
pub type NodeKey = [u8; 32];

/// What the book holds about one node (the stored row, borsh).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PeerRecord {
    /// Dialable addresses, most trusted first.
    pub addrs: Vec<String>,
    /// The contexts it serves a member of.
    pub contexts: BTreeSet<Hash>,
    /// When it was last connected (ms since the epoch; 0 = never).
    pub last_connected_ms: u64,
}

/// One node in a directory given to another member's node.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DirectoryEntry {
    /// The node's key.
    pub node: NodeKey,
    /// Where it can be reached.
    pub addrs: Vec<String>,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct PeerBook {
    records: BTreeMap<NodeKey, PeerRecord>,
    /// Entries changed since the last flush (written or deleted).
    dirty: BTreeSet<NodeKey>,
}

impl PeerBook {
    /// The book as stored; a row that does not decode is skipped (it is
    /// only a hint) and deleted at the next flush.
    pub fn load(store: &Store) -> Result<PeerBook, NodeError> {
        let mut book = PeerBook::default();
        let mut after: Option<PublicKey> = None;
        loop {
            let rows = store.read()?.scan(PEERS, &[], after.as_ref(), PEERS_KEPT_MAX)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(*last);
            for (key, bytes) in rows {
                match weft_primitives::encoding::decode::<PeerRecord>(&bytes) {
                    Ok(record) => {
                        book.records.insert(key.0, record);
                    }
                    Err(error) => {
                        tracing::warn!(node = ?key, %error, "unreadable peer record dropped");
                        book.dirty.insert(key.0);
                    }
                }
            }
        }
        Ok(book)
    }

    /// Write every changed entry in one transaction.
    pub fn flush(&mut self, store: &Store) -> Result<(), NodeError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let dirty = std::mem::take(&mut self.dirty);
        let records = &self.records;
        let written = store.write(|txn| -> Result<(), StoreError> {
            for node in &dirty {
                match records.get(node) {
                    Some(record) => txn.put(PEERS, &PublicKey(*node), &weft_primitives::encoding::encode(record))?,
                    None => {
                        txn.delete(PEERS, &PublicKey(*node))?;
                    }
                }
            }
            Ok(())
        });
        if written.is_err() {
            // Try again at the next flush.
            self.dirty.extend(dirty);
        }
        Ok(written?)
    }

    /// The entry of `node`.
    pub fn get(&self, node: &NodeKey) -> Option<&PeerRecord> {
        self.records.get(node)
    }

    /// Whether `node` is known to serve a member of `context`.
    pub fn serves(&self, node: &NodeKey, context: &Hash) -> bool {
        self.records.get(node).is_some_and(|r| r.contexts.contains(context))
    }

    /// Every node known to serve a member of one of `contexts`, with its entry.
    pub fn serving<'a>(&'a self, contexts: &'a BTreeSet<Hash>) -> impl Iterator<Item = (&'a NodeKey, &'a PeerRecord)> {
        self.records.iter().filter(|(_, r)| r.contexts.iter().any(|c| contexts.contains(c)))
    }

    /// How many nodes are known to serve a member of `context`.
    pub fn count_serving(&self, context: &Hash) -> usize {
        self.records.values().filter(|r| r.contexts.contains(context)).count()
    }

    /// Record that `node` serves a member of `context`; returns whether
    /// that is news.
    pub fn add_member_node(&mut self, node: NodeKey, context: Hash) -> bool {
        let record = self.records.entry(node).or_default();
        if record.contexts.contains(&context) {
            return false;
        }
        if record.contexts.len() >= PEER_CONTEXTS_MAX {
            return false;
        }
        record.contexts.insert(context);
        self.dirty.insert(node);
        self.evict_beyond_bound(node);
        true
    }

    /// Learn addresses of a node already in the book (others are ignored:
    /// the book holds members' nodes only). `confirmed` addresses (a dial
    /// that worked, the node's own identify) go first, others last.
    /// Returns whether the entry changed.
    pub fn learn_addrs<I, A>(&mut self, node: &NodeKey, addrs: I, confirmed: bool) -> bool
    where
        I: IntoIterator<Item = A>,
        A: AsRef<str>,
    {
        let Some(record) = self.records.get_mut(node) else { return false };
        let before = record.addrs.clone();
        let fresh: Vec<String> = addrs.into_iter().filter_map(|a| dialable(a.as_ref())).collect();
        if confirmed {
            let mut merged = Vec::with_capacity(PEER_ADDRS_KEPT_MAX);
            for addr in fresh.into_iter().chain(before.iter().cloned()) {
                if !merged.contains(&addr) {
                    merged.push(addr);
                }
            }
            record.addrs = merged;
        } else {
            for addr in fresh {
                if !record.addrs.contains(&addr) {
                    record.addrs.push(addr);
                }
            }
        }
        record.addrs.truncate(PEER_ADDRS_KEPT_MAX);
        let changed = record.addrs != before;
        if changed {
            self.dirty.insert(*node);
        }
        changed
    }

    /// Note that `node` is connected now (only for nodes in the book).
    pub fn connected(&mut self, node: &NodeKey, now_ms: u64) {
        if let Some(record) = self.records.get_mut(node) {
            record.last_connected_ms = now_ms;
            self.dirty.insert(*node);
        }
    }

    /// Forget `context` (we left it); nodes that serve nothing else go.
    pub fn forget_context(&mut self, context: &Hash) {
        let mut gone = Vec::new();
        for (node, record) in &mut self.records {
            if record.contexts.remove(context) {
                self.dirty.insert(*node);
                if record.contexts.is_empty() {
                    gone.push(*node);
                }
            }
        }
        for node in gone {
            self.records.remove(&node);
        }
    }

    /// The directory of `context` to give a member's node: every node
    /// known to serve it, with addresses, but `except` (the asker) —
    /// most recently connected first, at most [`DIRECTORY_ENTRIES_MAX`].
    pub fn directory(&self, context: &Hash, except: &NodeKey) -> Vec<DirectoryEntry> {
        let mut entries: Vec<(&NodeKey, &PeerRecord)> = self
            .records
            .iter()
            .filter(|(node, r)| *node != except && r.contexts.contains(context) && !r.addrs.is_empty())
            .collect();
        entries.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_connected_ms));
        entries
            .into_iter()
            .take(DIRECTORY_ENTRIES_MAX)
            .map(|(node, r)| DirectoryEntry { node: *node, addrs: r.addrs.clone() })
            .collect()
    }

    /// Take in a directory a member's node gave for `context`: each entry
    /// becomes a node serving it, its addresses hearsay. `me` is skipped.
    pub fn merge_directory(&mut self, context: Hash, entries: &[DirectoryEntry], me: &NodeKey) -> MergedDirectory {
        let mut merged = MergedDirectory::default();
        for entry in entries.iter().take(DIRECTORY_ENTRIES_MAX) {
            if entry.node == *me || entry.addrs.iter().all(|a| dialable(a).is_none()) {
                continue;
            }
            if self.add_member_node(entry.node, context) {
                merged.fresh.push(entry.node);
            }
            merged.addrs_learned |= self.learn_addrs(&entry.node, entry.addrs.iter().take(PEER_ADDRS_KEPT_MAX), false);
        }
        merged
    }

    /// Keep the book within [`PEERS_KEPT_MAX`]: drop the least recently
    /// connected entry other than `keep`.
    fn evict_beyond_bound(&mut self, keep: NodeKey) {
        while self.records.len() > PEERS_KEPT_MAX {
            let victim = self
                .records
                .iter()
                .filter(|(node, _)| **node != keep)
                .min_by_key(|(_, r)| r.last_connected_ms)
                .map(|(node, _)| *node);
            let Some(victim) = victim else { return };
            self.records.remove(&victim);
            self.dirty.insert(victim);
        }
    }
}

/// What [`PeerBook::merge_directory`] learned from one directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergedDirectory {
    /// The nodes that were new to the context.
    pub fresh: Vec<NodeKey>,
    /// Whether a node already known got an address it did not have.
    pub addrs_learned: bool,
}

/// The form of `text` worth keeping and dialing, if any: a parseable
/// multiaddr starting with a specified IP or a DNS name, at most
/// [`PEER_ADDR_BYTES_MAX`] long, without its `/p2p/<id>` suffix.
pub fn dialable(text: &str) -> Option<String> {
    if text.len() > PEER_ADDR_BYTES_MAX {
        return None;
    }
    let mut addr: Multiaddr = text.parse().ok()?;
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    match addr.iter().next()? {
        Protocol::Ip4(ip) if !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast() => {}
        Protocol::Ip6(ip) if !ip.is_unspecified() && !ip.is_multicast() => {}
        Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => {}
        _ => return None,
    }
    // An IP alone names no transport to dial.
    addr.iter().nth(1)?;
    Some(addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeKey = [1; 32];
    const B: NodeKey = [2; 32];
    const ME: NodeKey = [9; 32];

    fn context(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn only_dialable_addresses_are_kept() {
        assert_eq!(dialable("/ip4/127.0.0.1/tcp/4001").as_deref(), Some("/ip4/127.0.0.1/tcp/4001"));
        assert_eq!(dialable("/ip4/0.0.0.0/tcp/4001"), None);
        assert_eq!(dialable("/ip6/::/tcp/4001"), None);
        assert_eq!(dialable("/ip4/10.0.0.1"), None);
        assert_eq!(dialable("/tcp/4001"), None);
        assert_eq!(dialable("not an address"), None);
        assert_eq!(dialable(&format!("/dns4/{}/tcp/1", "a".repeat(PEER_ADDR_BYTES_MAX))), None);
        let peer = weft_net::peer_id_from_seed(&[3; 32]).unwrap();
        assert_eq!(
            dialable(&format!("/ip4/10.0.0.1/udp/2428/quic-v1/p2p/{peer}")).as_deref(),
            Some("/ip4/10.0.0.1/udp/2428/quic-v1")
        );
        assert_eq!(dialable("/dns4/node.example/tcp/2428").as_deref(), Some("/dns4/node.example/tcp/2428"));
    }

    #[test]
    fn addresses_are_learned_only_for_member_nodes() {
        let mut book = PeerBook::default();
        assert!(!book.learn_addrs(&A, ["/ip4/127.0.0.1/tcp/1"], true));
        assert!(book.get(&A).is_none());
        assert!(book.add_member_node(A, context(1)));
        assert!(!book.add_member_node(A, context(1)));
        assert!(book.learn_addrs(&A, ["/ip4/127.0.0.1/tcp/1"], true));
        assert!(!book.learn_addrs(&A, ["/ip4/127.0.0.1/tcp/1"], true));
        assert_eq!(book.get(&A).unwrap().addrs, vec!["/ip4/127.0.0.1/tcp/1".to_owned()]);
    }

    #[test]
    fn confirmed_addresses_go_first_hearsay_last_and_the_list_is_bounded() {
        let mut book = PeerBook::default();
        book.add_member_node(A, context(1));
        book.learn_addrs(&A, ["/ip4/10.0.0.1/tcp/1"], false);
        book.learn_addrs(&A, ["/ip4/10.0.0.2/tcp/1"], true);
        book.learn_addrs(&A, ["/ip4/10.0.0.3/tcp/1"], false);
        assert_eq!(book.get(&A).unwrap().addrs, ["/ip4/10.0.0.2/tcp/1", "/ip4/10.0.0.1/tcp/1", "/ip4/10.0.0.3/tcp/1"]);
        let many: Vec<String> = (0..20).map(|i| format!("/ip4/10.1.0.{i}/tcp/1")).collect();
        book.learn_addrs(&A, &many, true);
        let kept = &book.get(&A).unwrap().addrs;
        assert_eq!(kept.len(), PEER_ADDRS_KEPT_MAX);
        assert_eq!(kept[0], many[0]);
    }

    #[test]
    fn a_directory_names_the_context_nodes_but_the_asker_and_merging_it_skips_me() {
        let mut book = PeerBook::default();
        for (node, ctx) in [(A, 1), (B, 1), (ME, 2)] {
            book.add_member_node(node, context(ctx));
            book.learn_addrs(&node, [format!("/ip4/10.0.0.{}/tcp/1", node[0])], true);
        }
        let directory = book.directory(&context(1), &A);
        assert_eq!(directory.iter().map(|e| e.node).collect::<Vec<_>>(), vec![B]);

        let mut other = PeerBook::default();
        let given = vec![
            DirectoryEntry { node: A, addrs: vec!["/ip4/10.0.0.1/tcp/1".into()] },
            DirectoryEntry { node: ME, addrs: vec!["/ip4/10.0.0.9/tcp/1".into()] },
            DirectoryEntry { node: B, addrs: vec!["/ip4/0.0.0.0/tcp/1".into()] },
        ];
        assert_eq!(other.merge_directory(context(1), &given, &ME).fresh, vec![A]);
        assert!(other.get(&ME).is_none(), "never an entry for ourselves");
        assert!(other.get(&B).is_none(), "an entry with nothing to dial is dropped");
        assert!(other.serves(&A, &context(1)));

        // The same answer again teaches nothing; a new address for A does.
        assert_eq!(other.merge_directory(context(1), &given, &ME), MergedDirectory::default());
        let moved = vec![DirectoryEntry { node: A, addrs: vec!["/ip4/10.0.0.7/tcp/1".into()] }];
        assert_eq!(
            other.merge_directory(context(1), &moved, &ME),
            MergedDirectory { fresh: vec![], addrs_learned: true }
        );
    }

    #[test]
    fn leaving_a_context_forgets_nodes_that_served_only_it() {
        let mut book = PeerBook::default();
        book.add_member_node(A, context(1));
        book.add_member_node(B, context(1));
        book.add_member_node(B, context(2));
        book.forget_context(&context(1));
        assert!(book.get(&A).is_none());
        assert_eq!(book.get(&B).unwrap().contexts, BTreeSet::from([context(2)]));
    }

    #[test]
    fn the_book_is_bounded_and_evicts_the_least_recently_connected() {
        let mut book = PeerBook::default();
        for i in 0..PEERS_KEPT_MAX as u32 {
            let mut node = [0u8; 32];
            node[..4].copy_from_slice(&i.to_be_bytes());
            book.add_member_node(node, context(1));
            book.connected(&node, 1_000 + u64::from(i));
        }
        book.add_member_node(A, context(1));
        assert_eq!(book.records.len(), PEERS_KEPT_MAX);
        assert!(book.get(&A).is_some(), "the newcomer stays");
        assert!(book.get(&[0; 32]).is_none(), "the least recently connected went");
    }

    #[test]
    fn the_book_survives_a_reopen_and_a_corrupt_row_is_skipped() {
        let store = Store::open_in_memory().unwrap();
        let mut book = PeerBook::default();
        book.add_member_node(A, context(1));
        book.learn_addrs(&A, ["/ip4/127.0.0.1/tcp/7"], true);
        book.connected(&A, 42);
        book.flush(&store).unwrap();
        store.write(|txn| txn.put(PEERS, &PublicKey(B), &vec![0xff; 3])).unwrap();

        let mut reopened = PeerBook::load(&store).unwrap();
        assert_eq!(reopened.get(&A), book.get(&A));
        assert!(reopened.get(&B).is_none());
        reopened.flush(&store).unwrap();
        assert!(store.read().unwrap().get(PEERS, &PublicKey(B)).unwrap().is_none(), "the corrupt row is deleted");
    }
}
