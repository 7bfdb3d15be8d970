//! When to ask for each context's directory again: pure logic, time and
//! randomness are inputs.
//!
//! A directory refresh finds member nodes we learned of no other way (a
//! member invited by someone else, a node that moved). Asking for every
//! context's directory every minute costs a stream and four signature
//! operations per context per minute whatever happens: at 10,000 quiet
//! contexts, more than the anti-entropy of all of them. So each context has
//! its own period:
//!
//! - it starts at `base_ms`, at a random phase, so contexts opened together
//!   do not ask together;
//! - an answer that taught us nothing doubles it, up to `max_ms`;
//! - an answer that taught us something (a new node, new addresses) brings
//!   it back to `base_ms`;
//! - a membership change brings it back to `base_ms` and makes the context
//!   due at once: a new member's node is most likely named in a directory.
//!
//! The guarantee: a context is due at least every `max_ms`, and at most
//! once per `base_ms` unless its membership changes. (Asks on connect and
//! to unproven subscribers are separate; the driver limits every ask to one
//! node for one context to one per 10 s, whatever its cause.)

use std::collections::{BTreeSet, HashMap};

use weft_primitives::Hash;

/// The first refresh period of a context, by default.
pub const DIRECTORY_REFRESH_MS_DEFAULT: u64 = 60_000;
/// The longest refresh period of a context that learns nothing, by default.
pub const DIRECTORY_REFRESH_MAX_MS_DEFAULT: u64 = 960_000;
/// Contexts one call of [`DirectoryRefresh::take_due`] returns; the rest
/// stay due for the next call, so a round is never a burst of thousands of
/// streams.
pub const DIRECTORY_REFRESHES_PER_ROUND_MAX: usize = 64;

/// One context's place in the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    due_ms: u64,
    period_ms: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct DirectoryRefresh {
    base_ms: u64,
    max_ms: u64,
    entries: HashMap<Hash, Entry>,
    /// The same entries ordered by due time.
    queue: BTreeSet<(u64, Hash)>,
}

impl DirectoryRefresh {
    /// A schedule with these periods (`base_ms` ≥ 1, `max_ms` ≥ `base_ms`).
    pub fn new(base_ms: u64, max_ms: u64) -> DirectoryRefresh {
        let base_ms = base_ms.max(1);
        DirectoryRefresh { base_ms, max_ms: max_ms.max(base_ms), entries: HashMap::new(), queue: BTreeSet::new() }
    }

    /// Start refreshing `context` (opened, created or joined): first due at
    /// a random point of the base period. Tracking it again changes nothing.
    pub fn track(&mut self, context: Hash, now_ms: u64, random: u64) {
        if self.entries.contains_key(&context) {
            return;
        }
        let due_ms = now_ms.saturating_add(random % self.base_ms);
        self.set(context, Entry { due_ms, period_ms: self.base_ms });
    }

    /// Stop refreshing `context` (left).
    pub fn forget(&mut self, context: &Hash) {
        if let Some(entry) = self.entries.remove(context) {
            self.queue.remove(&(entry.due_ms, *context));
        }
    }

    /// The contexts due at `now_ms`, earliest first, at most
    /// [`DIRECTORY_REFRESHES_PER_ROUND_MAX`]. Each is due again one period
    /// later unless an answer reschedules it, so an ask that is never
    /// answered (or a context with no member's node connected) is retried at
    /// the same pace without growing.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Hash> {
        let due: Vec<Hash> = self
            .queue
            .iter()
            .take_while(|(due_ms, _)| *due_ms <= now_ms)
            .take(DIRECTORY_REFRESHES_PER_ROUND_MAX)
            .map(|(_, context)| *context)
            .collect();
        for context in &due {
            if let Some(mut entry) = self.entries.get(context).copied() {
                entry.due_ms = now_ms.saturating_add(entry.period_ms);
                self.set(*context, entry);
            }
        }
        due
    }

    /// A member's node answered our directory request for `context`;
    /// `news` says whether the answer taught us anything.
    pub fn answered(&mut self, context: &Hash, news: bool, now_ms: u64) {
        let Some(mut entry) = self.entries.get(context).copied() else { return };
        entry.period_ms = if news { self.base_ms } else { entry.period_ms.saturating_mul(2).min(self.max_ms) };
        entry.due_ms = now_ms.saturating_add(entry.period_ms);
        self.set(*context, entry);
    }

    /// `context`'s membership changed: ask at once, then at the base pace.
    pub fn hurry(&mut self, context: &Hash, now_ms: u64) {
        let Some(mut entry) = self.entries.get(context).copied() else { return };
        entry.period_ms = self.base_ms;
        entry.due_ms = entry.due_ms.min(now_ms);
        self.set(*context, entry);
    }

    /// The current period of `context`, if it is tracked.
    #[cfg(test)]
    fn period_ms(&self, context: &Hash) -> Option<u64> {
        self.entries.get(context).map(|entry| entry.period_ms)
    }

    fn set(&mut self, context: Hash, entry: Entry) {
        if let Some(old) = self.entries.insert(context, entry) {
            self.queue.remove(&(old.due_ms, context));
        }
        self.queue.insert((entry.due_ms, context));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: u64 = 60_000;
    const MAX: u64 = 960_000;

    fn context(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn a_quiet_context_is_asked_ever_less_often_up_to_the_longest_period() {
        let mut refresh = DirectoryRefresh::new(BASE, MAX);
        refresh.track(context(1), 0, 0);
        let mut now = 0;
        let mut asks = Vec::new();
        while now <= 4 * MAX {
            if refresh.take_due(now) == vec![context(1)] {
                asks.push(now);
                refresh.answered(&context(1), false, now);
            }
            now += 1_000;
        }
        let gaps: Vec<u64> = asks.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(&gaps[..4], &[120_000, 240_000, 480_000, 960_000], "asks at {asks:?}");
        assert!(gaps[4..].iter().all(|gap| *gap == MAX), "gaps {gaps:?}");
    }

    #[test]
    fn news_or_a_membership_change_brings_the_base_period_back() {
        let mut refresh = DirectoryRefresh::new(BASE, MAX);
        refresh.track(context(1), 0, 0);
        for _ in 0..10 {
            refresh.answered(&context(1), false, 0);
        }
        assert_eq!(refresh.period_ms(&context(1)), Some(MAX));
        refresh.answered(&context(1), true, 0);
        assert_eq!(refresh.period_ms(&context(1)), Some(BASE));
        for _ in 0..10 {
            refresh.answered(&context(1), false, 0);
        }
        // Due far ahead; a membership change makes it due now.
        assert!(refresh.take_due(1_000).is_empty());
        refresh.hurry(&context(1), 1_000);
        assert_eq!(refresh.take_due(1_000), vec![context(1)]);
        assert_eq!(refresh.period_ms(&context(1)), Some(BASE));
    }

    #[test]
    fn a_round_is_bounded_and_the_rest_stay_due() {
        let mut refresh = DirectoryRefresh::new(BASE, MAX);
        for n in 0..=200u8 {
            refresh.track(context(n), 0, 0);
        }
        let mut seen = BTreeSet::new();
        for _ in 0..4 {
            let round = refresh.take_due(0);
            assert!(round.len() <= DIRECTORY_REFRESHES_PER_ROUND_MAX);
            seen.extend(round);
        }
        assert_eq!(seen.len(), 201, "every due context is returned within four rounds");
        assert!(refresh.take_due(BASE - 1).is_empty(), "none is due again before a period");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Track(u8, u64),
        Forget(u8),
        Take,
        Answered(u8, bool),
        Hurry(u8),
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few contexts, and answers often, so periods reach the cap.
        prop_oneof![
            2 => (0u8..3, any::<u64>()).prop_map(|(c, r)| Op::Track(c, r)),
            1 => (0u8..3).prop_map(Op::Forget),
            2 => Just(Op::Take),
            6 => (0u8..3, proptest::bool::weighted(0.8)).prop_map(|(c, quiet)| Op::Answered(c, !quiet)),
            1 => (0u8..3).prop_map(Op::Hurry),
            2 => (0u64..2 * MAX).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever happens: the index matches the entries, every period
        /// stays within [base, max], a context returned by `take_due` was
        /// due, and no tracked context waits longer than its period (plus
        /// the time since it became due, for one that was not taken).
        #[test]
        fn the_schedule_stays_consistent(ops in proptest::collection::vec(op(), 1..300)) {
            let mut refresh = DirectoryRefresh::new(BASE, MAX);
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Track(c, r) => refresh.track(context(c), now, r),
                    Op::Forget(c) => refresh.forget(&context(c)),
                    Op::Take => {
                        let before = refresh.entries.clone();
                        for taken in refresh.take_due(now) {
                            prop_assert!(before[&taken].due_ms <= now);
                        }
                    }
                    Op::Answered(c, news) => refresh.answered(&context(c), news, now),
                    Op::Hurry(c) => refresh.hurry(&context(c), now),
                    Op::Wait(ms) => now += ms,
                }
                prop_assert_eq!(refresh.queue.len(), refresh.entries.len());
                for (context, entry) in &refresh.entries {
                    prop_assert!(refresh.queue.contains(&(entry.due_ms, *context)));
                    prop_assert!((BASE..=MAX).contains(&entry.period_ms));
                    // Never scheduled further out than one longest period
                    // from the last time it was touched.
                    prop_assert!(entry.due_ms <= now + MAX);
                }
            }
        }
    }
}
