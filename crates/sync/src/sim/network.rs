//! The simulated network: who can reach whom, and what happens to each
//! message on the way.
//!
//! Verbs (docs/style.md item 10): [`Network::drop_link`] (loss on one directed
//! link), [`Network::set_loss`], [`Network::duplicate`], [`Network::delay`],
//! [`Network::reorder`], [`Network::partition`], [`Network::heal`]. Crash
//! and restart are node verbs of [`Sim`](super::Sim).
//!
//! Gossip behaves like datagrams: each copy to each peer is lost, duplicated
//! and delayed independently, so deltas arrive out of order. Streams behave
//! like TCP/QUIC: messages of one direction of one session arrive in order,
//! a duplicate arrives right after its original, and a loss breaks the
//! stream: that message and every later one in that direction are dropped
//! and both ends are told the stream closed. A message in flight across a
//! link that a partition cuts is dropped on arrival.

use std::collections::{BTreeMap, BTreeSet};

use crate::replica::SessionId;
use crate::seeded_rng::SeededRng;

/// What became of a stream message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamRoute {
    /// Delivered at these times (two when duplicated).
    Deliver(Vec<u64>),
    /// Lost: the stream breaks; both ends learn at this time.
    Break(u64),
    /// The stream was already broken, or the link is cut.
    Drop,
}

/// Link rules and per-stream ordering. See the module doc.
#[derive(Clone, Debug)]
pub struct Network {
    loss_pct: u32,
    dup_pct: u32,
    latency_ms: (u64, u64),
    reorder_ms: u64,
    link_loss: BTreeMap<(usize, usize), u32>,
    /// Partition group of each node; all equal when healed.
    groups: Vec<usize>,
    /// Last delivery time per stream direction (keeps streams in order).
    stream_tail: BTreeMap<(usize, usize, SessionId), u64>,
    broken: BTreeSet<(usize, usize, SessionId)>,
}

impl Network {
    /// A clean network of `nodes` nodes: no loss, 10–30 ms one way.
    pub fn new(nodes: usize) -> Network {
        Network {
            loss_pct: 0,
            dup_pct: 0,
            latency_ms: (10, 30),
            reorder_ms: 0,
            link_loss: BTreeMap::new(),
            groups: vec![0; nodes],
            stream_tail: BTreeMap::new(),
            broken: BTreeSet::new(),
        }
    }

    /// Lose `pct` percent of the messages from `from` to `to` (overrides the
    /// global loss on that link).
    pub fn drop_link(&mut self, from: usize, to: usize, pct: u32) {
        self.link_loss.insert((from, to), pct.min(100));
    }

    /// Lose `pct` percent of all messages.
    pub fn set_loss(&mut self, pct: u32) {
        self.loss_pct = pct.min(100);
    }

    /// Deliver `pct` percent of messages twice.
    pub fn duplicate(&mut self, pct: u32) {
        self.dup_pct = pct.min(100);
    }

    /// One-way latency, uniform in `min_ms..=max_ms`.
    pub fn delay(&mut self, min_ms: u64, max_ms: u64) {
        self.latency_ms = (min_ms, max_ms.max(min_ms));
    }

    /// Extra random delay of up to `jitter_ms` on gossip: reorders deltas.
    pub fn reorder(&mut self, jitter_ms: u64) {
        self.reorder_ms = jitter_ms;
    }

    /// Split the nodes into `groups`; a node in none is alone. Returns the
    /// pairs `(a, b)` with `a < b` that could talk before and cannot now.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Vec<(usize, usize)> {
        let before = self.groups.clone();
        let nodes = self.groups.len();
        self.groups = (0..nodes).map(|node| groups.len() + node).collect();
        for (index, group) in groups.iter().enumerate() {
            for node in group {
                if let Some(slot) = self.groups.get_mut(*node) {
                    *slot = index;
                }
            }
        }
        self.changed_pairs(&before, true)
    }

    /// Reconnect everyone. Returns the pairs `(a, b)` with `a < b` that
    /// could not talk before.
    pub fn heal(&mut self) -> Vec<(usize, usize)> {
        let before = self.groups.clone();
        self.groups.iter_mut().for_each(|group| *group = 0);
        self.changed_pairs(&before, false)
    }

    /// Whether `a` and `b` can reach each other.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.groups.get(a).is_some() && self.groups.get(a) == self.groups.get(b)
    }

    /// Whether any partition is in force.
    pub fn is_partitioned(&self) -> bool {
        self.groups.iter().any(|group| *group != self.groups[0])
    }

    fn changed_pairs(&self, before: &[usize], were_connected: bool) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for a in 0..before.len() {
            for b in a + 1..before.len() {
                let was = before[a] == before[b];
                if was == were_connected && self.connected(a, b) != was {
                    pairs.push((a, b));
                }
            }
        }
        pairs
    }

    fn lost(&self, rng: &mut SeededRng, from: usize, to: usize) -> bool {
        let pct = self.link_loss.get(&(from, to)).copied().unwrap_or(self.loss_pct);
        rng.percent(pct)
    }

    fn latency(&self, rng: &mut SeededRng) -> u64 {
        let (min, max) = self.latency_ms;
        min + rng.below(max - min + 1)
    }

    /// Delivery times of one gossip copy from `from` to `to` sent at `now`.
    pub(crate) fn route_gossip(&self, rng: &mut SeededRng, from: usize, to: usize, now: u64) -> Vec<u64> {
        if !self.connected(from, to) || self.lost(rng, from, to) {
            return Vec::new();
        }
        let mut times = vec![now + self.latency(rng) + rng.below(self.reorder_ms + 1)];
        if rng.percent(self.dup_pct) {
            times.push(now + self.latency(rng) + rng.below(self.reorder_ms + 1));
        }
        times
    }

    /// What becomes of a stream message from `from` to `to` sent at `now`.
    pub(crate) fn route_stream(
        &mut self,
        rng: &mut SeededRng,
        from: usize,
        to: usize,
        session: SessionId,
        now: u64,
    ) -> StreamRoute {
        let direction = (from, to, session);
        if !self.connected(from, to) || self.broken.contains(&direction) {
            return StreamRoute::Drop;
        }
        let arrival = now + self.latency(rng);
        if self.lost(rng, from, to) {
            self.broken.insert(direction);
            return StreamRoute::Break(arrival);
        }
        let at = self.stream_tail.get(&direction).map_or(arrival, |tail| arrival.max(*tail));
        self.stream_tail.insert(direction, at);
        let mut times = vec![at];
        if rng.percent(self.dup_pct) {
            times.push(at);
        }
        StreamRoute::Deliver(times)
    }

    /// Forget the ordering state of streams that cannot have traffic left
    /// (bounds memory over long runs).
    pub(crate) fn forget_streams_before(&mut self, now: u64, horizon_ms: u64) {
        let cutoff = now.saturating_sub(horizon_ms);
        self.stream_tail.retain(|_, tail| *tail >= cutoff);
        if self.broken.len() > BROKEN_STREAMS_MAX {
            self.broken.clear();
        }
    }
}

/// Broken stream directions remembered before the set is reset (a stream
/// is never reused after it breaks, so forgetting old ones is harmless).
const BROKEN_STREAMS_MAX: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::PeerId;

    #[test]
    fn partition_reports_cut_pairs_and_heal_restores_them() {
        let mut net = Network::new(4);
        let cut = net.partition(&[vec![0, 1], vec![2, 3]]);
        assert_eq!(cut, vec![(0, 2), (0, 3), (1, 2), (1, 3)]);
        assert!(net.connected(0, 1) && !net.connected(1, 2));
        assert_eq!(net.heal(), cut);
        assert!(net.connected(1, 2));
    }

    #[test]
    fn streams_stay_in_order_and_break_on_loss() {
        let mut net = Network::new(2);
        net.delay(1, 100);
        let mut rng = SeededRng::new(9);
        let session = SessionId { opener: PeerId::default(), n: 0 };
        let mut last = 0;
        for now in 0..50 {
            let StreamRoute::Deliver(times) = net.route_stream(&mut rng, 0, 1, session, now) else { panic!() };
            assert!(times[0] >= last);
            last = times[0];
        }
        net.set_loss(100);
        assert!(matches!(net.route_stream(&mut rng, 0, 1, session, 60), StreamRoute::Break(_)));
        net.set_loss(0);
        assert_eq!(net.route_stream(&mut rng, 0, 1, session, 61), StreamRoute::Drop);
    }
}
