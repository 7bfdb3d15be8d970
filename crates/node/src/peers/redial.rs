//! When to dial which member's node: pure logic, time and randomness are
//! inputs.
//!
//! Every node in the book that serves one of our contexts and is not
//! connected is dialed, at once the first time (a restart redials everyone
//! immediately), then with exponential backoff from `base_ms` up to
//! `max_ms`, forever: a member's laptop that comes back after a week is
//! found within `max_ms`. A connection resets the node's backoff; losing
//! it schedules a redial after `base_ms`. Each delay gets up to 25 % of
//! random jitter, so nodes that lost each other at the same moment do not
//! dial in lockstep.

use std::collections::{BTreeSet, HashMap};

use super::NodeKey;

/// The first redial after a disconnect, by default.
pub const REDIAL_BASE_MS_DEFAULT: u64 = 500;
/// The longest pause between two dials of an unreachable member's node, by default.
pub const REDIAL_MAX_MS_DEFAULT: u64 = 10_000;
/// Dials started in one call of [`RedialSchedule::due`]; the rest wait a turn.
pub const DIALS_PER_ROUND_MAX: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Backoff {
    /// When the next dial may start.
    next_ms: u64,
    /// The pause after that dial, if it does not connect.
    delay_ms: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct RedialSchedule {
    base_ms: u64,
    max_ms: u64,
    connected: BTreeSet<NodeKey>,
    backoff: HashMap<NodeKey, Backoff>,
}

impl RedialSchedule {
    /// A schedule with these delays (`base_ms` ≥ 1, `max_ms` ≥ `base_ms`).
    pub fn new(base_ms: u64, max_ms: u64) -> RedialSchedule {
        let base_ms = base_ms.max(1);
        RedialSchedule { base_ms, max_ms: max_ms.max(base_ms), connected: BTreeSet::new(), backoff: HashMap::new() }
    }

    /// `node` is connected: no dial until it is lost, then a fresh backoff.
    pub fn on_connected(&mut self, node: NodeKey) {
        self.connected.insert(node);
        self.backoff.remove(&node);
    }

    /// `node`'s last connection closed: dial it again after the base delay.
    pub fn on_disconnected(&mut self, node: NodeKey, now_ms: u64, random: u64) {
        self.connected.remove(&node);
        let delay_ms = self.base_ms;
        self.backoff.insert(node, Backoff { next_ms: now_ms + jitter(delay_ms, random), delay_ms });
    }

    /// Whether `node` is connected.
    pub fn is_connected(&self, node: &NodeKey) -> bool {
        self.connected.contains(node)
    }

    /// The nodes of `candidates` to dial now (at most
    /// [`DIALS_PER_ROUND_MAX`]); each is rescheduled with a doubled pause.
    /// `random` gives a fresh random number per call.
    pub fn due<'a>(
        &mut self,
        candidates: impl IntoIterator<Item = &'a NodeKey>,
        now_ms: u64,
        mut random: impl FnMut() -> u64,
    ) -> Vec<NodeKey> {
        let mut dial = Vec::new();
        for node in candidates {
            if dial.len() >= DIALS_PER_ROUND_MAX {
                break;
            }
            if self.connected.contains(node) {
                continue;
            }
            let base_ms = self.base_ms;
            let entry = self.backoff.entry(*node).or_insert(Backoff { next_ms: 0, delay_ms: base_ms });
            if entry.next_ms > now_ms {
                continue;
            }
            entry.next_ms = now_ms + jitter(entry.delay_ms, random());
            entry.delay_ms = entry.delay_ms.saturating_mul(2).min(self.max_ms);
            dial.push(*node);
        }
        dial
    }

    /// Forget nodes that are no longer candidates (left contexts).
    pub fn retain(&mut self, keep: impl Fn(&NodeKey) -> bool) {
        self.backoff.retain(|node, _| keep(node));
    }
}

/// `delay_ms` plus up to a quarter of it, chosen by `random`.
fn jitter(delay_ms: u64, random: u64) -> u64 {
    let spread = delay_ms / 4;
    delay_ms + if spread == 0 { 0 } else { random % (spread + 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeKey = [1; 32];
    const B: NodeKey = [2; 32];

    fn due_at(schedule: &mut RedialSchedule, nodes: &[NodeKey], now: u64) -> Vec<NodeKey> {
        schedule.due(nodes.iter(), now, || 0)
    }

    #[test]
    fn unknown_nodes_are_dialed_at_once_then_with_doubling_pauses_up_to_the_cap() {
        let mut schedule = RedialSchedule::new(500, 4_000);
        let mut dialed_at = Vec::new();
        for now in (0..20_000).step_by(100) {
            if !due_at(&mut schedule, &[A], now).is_empty() {
                dialed_at.push(now);
            }
        }
        assert_eq!(dialed_at[..6], [0, 500, 1_500, 3_500, 7_500, 11_500]);
        assert!(dialed_at.windows(2).all(|w| w[1] - w[0] <= 4_000), "never slower than the cap: {dialed_at:?}");
        assert!(dialed_at.len() > 6, "redialing never stops");
    }

    #[test]
    fn connected_nodes_are_not_dialed_and_a_loss_restarts_the_backoff() {
        let mut schedule = RedialSchedule::new(500, 10_000);
        for now in [0, 500, 1_500, 3_500] {
            assert_eq!(due_at(&mut schedule, &[A, B], now).len(), 2);
        }
        schedule.on_connected(A);
        assert_eq!(due_at(&mut schedule, &[A, B], 100_000), vec![B]);
        schedule.on_disconnected(A, 200_000, 0);
        assert!(due_at(&mut schedule, &[A], 200_100).is_empty());
        assert_eq!(due_at(&mut schedule, &[A], 200_500), vec![A], "the base delay, not the old backoff");
    }

    #[test]
    fn jitter_stays_within_a_quarter_of_the_delay() {
        for random in [0, 1, 99, u64::MAX] {
            let j = jitter(1_000, random);
            assert!((1_000..=1_250).contains(&j), "{j}");
        }
        assert_eq!(jitter(3, u64::MAX), 3);
    }

    #[test]
    fn one_round_dials_a_bounded_number_of_nodes() {
        let mut schedule = RedialSchedule::new(500, 10_000);
        let nodes: Vec<NodeKey> = (0..100u8).map(|i| [i; 32]).collect();
        assert_eq!(due_at(&mut schedule, &nodes, 0).len(), DIALS_PER_ROUND_MAX);
        assert_eq!(due_at(&mut schedule, &nodes, 0).len(), DIALS_PER_ROUND_MAX, "the next round takes the next ones");
    }
}
