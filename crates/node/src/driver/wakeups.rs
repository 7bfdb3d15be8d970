//! When each context next needs the driver: the earliest of its replica's
//! timers and its handler jobs' due times, indexed so that a turn costs
//! O(log contexts), not a walk over every context of the node.
//!
//! The driver updates a context's entry after every call into its replica
//! and every change to its jobs ([`Driver::reschedule`]); an entry can only
//! be early, never late, because a full rescan every
//! [`WAKEUPS_RESCAN_MS`] puts back any entry a missed update left stale.

use std::collections::{BTreeSet, HashMap};

use weft_primitives::Hash;

use super::Driver;

/// How often every context's wake-up time is recomputed from scratch (a
/// safety net; each costs O(contexts)).
pub(crate) const WAKEUPS_RESCAN_MS: u64 = 10_000;

/// See the module doc.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    order: BTreeSet<(u64, Hash)>,
    at: HashMap<Hash, u64>,
}

impl Wakeups {
    /// `context` next needs the driver at `at_ms` (`u64::MAX`: never).
    pub(crate) fn set(&mut self, context: Hash, at_ms: u64) {
        if let Some(old) = self.at.insert(context, at_ms) {
            self.order.remove(&(old, context));
        }
        self.order.insert((at_ms, context));
    }

    /// Forget a context that closed.
    pub(crate) fn remove(&mut self, context: &Hash) {
        if let Some(old) = self.at.remove(context) {
            self.order.remove(&(old, *context));
        }
    }

    /// The earliest wake-up (`u64::MAX` if none).
    pub(crate) fn next_ms(&self) -> u64 {
        self.order.first().map_or(u64::MAX, |(at, _)| *at)
    }

    /// Contexts due at `now_ms`, earliest first.
    pub(crate) fn due(&self, now_ms: u64) -> Vec<Hash> {
        self.order.iter().take_while(|(at, _)| *at <= now_ms).map(|(_, context)| *context).collect()
    }
}

impl Driver {
    /// Recompute when `context` next needs the driver.
    pub(crate) fn reschedule(&mut self, context: Hash) {
        match self.contexts.get(&context) {
            Some(slot) => {
                let at = slot.replica.next_timer_ms().min(slot.jobs.next_due_ms());
                self.wakeups.set(context, at);
            }
            None => self.wakeups.remove(&context),
        }
    }

    /// Contexts whose wake-up is due at `now_ms`.
    pub(crate) fn wakeups_due(&self, now_ms: u64) -> Vec<Hash> {
        self.wakeups.due(now_ms)
    }

    /// Forget a context that closes.
    pub(crate) fn wakeups_forget(&mut self, context: Hash) {
        self.wakeups.remove(&context);
    }

    /// Debug builds (the tests) check at every turn that each context's
    /// entry is exactly what recomputing it gives: a missed update fails
    /// the tests instead of hiding behind the rescan.
    #[cfg(debug_assertions)]
    pub(crate) fn check_wakeups(&self) {
        for (context, slot) in &self.contexts {
            let at = slot.replica.next_timer_ms().min(slot.jobs.next_due_ms());
            let indexed = self.wakeups.at.get(context).copied();
            assert_eq!(indexed, Some(at), "context {context}: stale wake-up entry");
        }
        assert_eq!(self.wakeups.at.len(), self.contexts.len(), "wake-up entries of closed contexts");
    }

    /// Recompute every context's wake-up if the last rescan is old enough.
    pub(crate) fn rescan_wakeups(&mut self, now_ms: u64) {
        if now_ms < self.next_wakeups_rescan_ms {
            return;
        }
        self.next_wakeups_rescan_ms = now_ms.saturating_add(WAKEUPS_RESCAN_MS);
        let contexts: Vec<Hash> = self.contexts.keys().copied().collect();
        for context in contexts {
            self.reschedule(context);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_wakeup_comes_first_and_updates_replace_entries() {
        let (a, b, c) = (Hash::of(b"a"), Hash::of(b"b"), Hash::of(b"c"));
        let mut wakeups = Wakeups::default();
        assert_eq!(wakeups.next_ms(), u64::MAX);
        wakeups.set(a, 30);
        wakeups.set(b, 10);
        wakeups.set(c, u64::MAX);
        assert_eq!(wakeups.next_ms(), 10);
        assert_eq!(wakeups.due(30), vec![b, a]);
        wakeups.set(b, 50);
        assert_eq!(wakeups.due(30), vec![a]);
        wakeups.remove(&a);
        assert_eq!((wakeups.next_ms(), wakeups.due(49)), (50, vec![]));
        assert_eq!(wakeups.due(u64::MAX).len(), 2);
    }
}
