//! Which peers subscribe to which gossip topic, and which topics we serve.
//!
//! A peer's subscriptions arrive before, with or after the context they
//! belong to is opened here: subscribers of a topic we do not serve are
//! remembered, so a context joined later finds its subscribers at once.
//! Any stranger may announce any number of topic names, so only
//! `unserved_max` unserved topics are remembered; announcements of further
//! ones are ignored.
//!
//! Guarantees: every operation costs O(log n) in the topics and peers it
//! touches, except [`TopicDirectory::forget_peer`] and
//! [`TopicDirectory::topics_of`], which scan (once per disconnect or per
//! coalesced subscription snapshot). The unserved topics are a running
//! count, never a scan: a peer announcing thousands of topics costs
//! thousands of steps, not thousands of scans.

use std::collections::{BTreeSet, HashMap};

use weft_net::PeerId as NetPeer;
use weft_primitives::Hash;

/// What a subscription announcement changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subscription {
    /// The topic is served by this context: the peer is a subscriber of it.
    Served(Hash),
    /// Remembered for a context opened later.
    Unserved,
    /// A new unserved topic past the bound: nothing was recorded.
    Ignored,
}

/// Subscribers per topic, and the topics we serve with their contexts.
#[derive(Debug)]
pub(crate) struct TopicDirectory {
    served: HashMap<String, Hash>,
    subscribers: HashMap<String, BTreeSet<NetPeer>>,
    /// Keys of `subscribers` that are not in `served`.
    unserved: usize,
    unserved_max: usize,
}

impl TopicDirectory {
    pub(crate) fn new(unserved_max: usize) -> TopicDirectory {
        TopicDirectory { served: HashMap::new(), subscribers: HashMap::new(), unserved: 0, unserved_max }
    }

    /// The context whose topic this is, if we serve it.
    pub(crate) fn context_of(&self, topic: &str) -> Option<Hash> {
        self.served.get(topic).copied()
    }

    /// Serve `topic` for `context`; returns who already subscribes to it.
    pub(crate) fn serve(&mut self, topic: String, context: Hash) -> Vec<NetPeer> {
        let peers: Vec<NetPeer> = self.subscribers.get(&topic).map(|p| p.iter().copied().collect()).unwrap_or_default();
        if self.served.insert(topic, context).is_none() && !peers.is_empty() {
            self.unserved -= 1;
        }
        peers
    }

    /// Stop serving `topic`; its subscribers are remembered as unserved
    /// (which may briefly exceed the bound: nothing known is dropped).
    pub(crate) fn stop_serving(&mut self, topic: &str) {
        if self.served.remove(topic).is_some() && self.subscribers.contains_key(topic) {
            self.unserved += 1;
        }
    }

    /// `peer` announced that it subscribes to `topic`.
    pub(crate) fn subscribe(&mut self, peer: NetPeer, topic: String) -> Subscription {
        let served = self.context_of(&topic);
        match self.subscribers.get_mut(&topic) {
            Some(peers) => {
                peers.insert(peer);
            }
            None => {
                if served.is_none() {
                    if self.unserved >= self.unserved_max {
                        return Subscription::Ignored;
                    }
                    self.unserved += 1;
                }
                self.subscribers.insert(topic, BTreeSet::from([peer]));
            }
        }
        served.map_or(Subscription::Unserved, Subscription::Served)
    }

    /// `peer` announced that it left `topic`; returns the topic's context
    /// if we serve it.
    pub(crate) fn unsubscribe(&mut self, peer: NetPeer, topic: &str) -> Option<Hash> {
        let served = self.context_of(topic);
        if let Some(peers) = self.subscribers.get_mut(topic) {
            peers.remove(&peer);
            if peers.is_empty() {
                self.drop_topic(topic, served.is_some());
            }
        }
        served
    }

    /// Whether `peer` subscribes to `topic`.
    pub(crate) fn subscribes(&self, topic: &str, peer: &NetPeer) -> bool {
        self.subscribers.get(topic).is_some_and(|peers| peers.contains(peer))
    }

    /// Who subscribes to `topic`.
    pub(crate) fn subscribers(&self, topic: &str) -> impl Iterator<Item = &NetPeer> {
        self.subscribers.get(topic).into_iter().flatten()
    }

    /// Every topic `peer` is known to subscribe to (a scan).
    pub(crate) fn topics_of(&self, peer: &NetPeer) -> Vec<String> {
        self.subscribers.iter().filter(|(_, peers)| peers.contains(peer)).map(|(topic, _)| topic.clone()).collect()
    }

    /// `peer` disconnected: it subscribes to nothing any more (a scan).
    pub(crate) fn forget_peer(&mut self, peer: &NetPeer) {
        let emptied: Vec<String> = self
            .subscribers
            .iter_mut()
            .filter_map(|(topic, peers)| (peers.remove(peer) && peers.is_empty()).then(|| topic.clone()))
            .collect();
        for topic in emptied {
            let served = self.served.contains_key(&topic);
            self.drop_topic(&topic, served);
        }
    }

    fn drop_topic(&mut self, topic: &str, served: bool) {
        if self.subscribers.remove(topic).is_some() && !served {
            self.unserved -= 1;
        }
    }

    /// Unserved topics remembered (the running count).
    #[cfg(test)]
    fn unserved_count(&self) -> usize {
        self.unserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(n: u8) -> NetPeer {
        weft_net::peer_id_from_seed(&[n.max(1); 32]).expect("a peer id from a seed")
    }

    fn topic(n: u8) -> String {
        format!("/t/{n}")
    }

    #[derive(Clone, Debug)]
    enum Op {
        Subscribe(u8, u8),
        Unsubscribe(u8, u8),
        Serve(u8),
        StopServing(u8),
        ForgetPeer(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..4u8, 0..12u8).prop_map(|(p, t)| Op::Subscribe(p, t)),
            2 => (0..4u8, 0..12u8).prop_map(|(p, t)| Op::Unsubscribe(p, t)),
            1 => (0..12u8).prop_map(Op::Serve),
            1 => (0..12u8).prop_map(Op::StopServing),
            1 => (0..4u8).prop_map(Op::ForgetPeer),
        ]
    }

    proptest! {
        /// The running count always equals a scan, the bound holds for new
        /// unserved topics, and an ignored announcement records nothing.
        #[test]
        fn the_unserved_count_matches_a_scan_after_any_operations(ops in prop::collection::vec(op(), 0..200)) {
            const MAX: usize = 4;
            let mut directory = TopicDirectory::new(MAX);
            for op in ops {
                let before = directory.unserved_count();
                match op {
                    Op::Subscribe(p, t) => {
                        let outcome = directory.subscribe(peer(p), topic(t));
                        if outcome == Subscription::Ignored {
                            prop_assert!(before >= MAX);
                            prop_assert!(!directory.subscribes(&topic(t), &peer(p)));
                        } else {
                            prop_assert!(directory.subscribes(&topic(t), &peer(p)));
                        }
                        prop_assert!(directory.unserved_count() <= before.max(MAX));
                    }
                    Op::Unsubscribe(p, t) => {
                        directory.unsubscribe(peer(p), &topic(t));
                        prop_assert!(!directory.subscribes(&topic(t), &peer(p)));
                    }
                    Op::Serve(t) => {
                        let known: Vec<NetPeer> = directory.subscribers(&topic(t)).copied().collect();
                        prop_assert_eq!(directory.serve(topic(t), Hash::of(&[t])), known);
                    }
                    Op::StopServing(t) => directory.stop_serving(&topic(t)),
                    Op::ForgetPeer(p) => {
                        directory.forget_peer(&peer(p));
                        prop_assert!(directory.topics_of(&peer(p)).is_empty());
                    }
                }
                let scanned = directory.subscribers.keys().filter(|t| !directory.served.contains_key(*t)).count();
                prop_assert_eq!(directory.unserved_count(), scanned);
                prop_assert!(directory.subscribers.values().all(|peers| !peers.is_empty()));
            }
        }
    }

    #[test]
    fn a_served_topic_is_never_ignored_and_a_later_served_one_finds_its_subscribers() {
        let mut directory = TopicDirectory::new(1);
        assert_eq!(directory.subscribe(peer(1), topic(1)), Subscription::Unserved);
        assert_eq!(directory.subscribe(peer(1), topic(2)), Subscription::Ignored);
        let context = Hash::of(b"c");
        assert_eq!(directory.serve(topic(2), context), Vec::<NetPeer>::new());
        assert_eq!(directory.subscribe(peer(2), topic(2)), Subscription::Served(context));
        assert_eq!(directory.serve(topic(1), Hash::of(b"d")), vec![peer(1)]);
        // Serving topic 1 freed its unserved place.
        assert_eq!(directory.subscribe(peer(1), topic(3)), Subscription::Unserved);
    }
}
