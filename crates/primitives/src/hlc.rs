//! Hybrid logical clocks.
//!
//! An [`Hlc`] orders events like a Lamport clock while staying close to wall
//! time. The clock never reads the system time itself: callers pass the
//! physical time in, so every use is deterministic under test.

use borsh::{BorshDeserialize, BorshSerialize};

/// A hybrid logical timestamp: physical milliseconds, then a logical counter.
///
/// Ordering is lexicographic on `(wall_ms, counter)`. Ties between different
/// authors are broken by the author key wherever a total order is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch, as the author's clock saw it.
    pub wall_ms: u64,
    /// Logical counter disambiguating events within one millisecond.
    pub counter: u32,
}

impl Hlc {
    /// The largest logical counter a timestamp may carry. Far below
    /// `u32::MAX`, so that the stamps a write derives from its start stamp
    /// (one per action) never overflow, and a remote timestamp with a
    /// counter near the maximum is refused rather than absorbed.
    pub const COUNTER_MAX: u32 = 1 << 31;

    /// A timestamp from its parts.
    pub const fn new(wall_ms: u64, counter: u32) -> Hlc {
        Hlc { wall_ms, counter }
    }
}

/// A remote timestamp too far ahead of local time to accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HlcError {
    /// The remote clock is ahead of ours by more than the allowed drift.
    #[error("timestamp {remote_ms} ms is {ahead_ms} ms ahead of local time (max drift {max_drift_ms} ms)")]
    TooFarInFuture {
        /// The remote wall time.
        remote_ms: u64,
        /// How far ahead of local physical time it is.
        ahead_ms: u64,
        /// The configured bound.
        max_drift_ms: u64,
    },
    /// The remote counter is above [`Hlc::COUNTER_MAX`].
    #[error("timestamp counter {counter} is above the maximum {max}")]
    CounterTooLarge {
        /// The remote counter.
        counter: u32,
        /// [`Hlc::COUNTER_MAX`].
        max: u32,
    },
}

/// A hybrid logical clock: issues strictly increasing timestamps and absorbs
/// remote ones.
#[derive(Clone, Debug)]
pub struct HlcClock {
    last: Hlc,
    max_drift_ms: u64,
}

impl HlcClock {
    /// Default bound on how far a remote timestamp may run ahead of ours.
    pub const MAX_DRIFT_MS_DEFAULT: u64 = 60_000;

    /// A clock that accepts remote timestamps up to `max_drift_ms` in the future.
    pub fn new(max_drift_ms: u64) -> HlcClock {
        HlcClock { last: Hlc::default(), max_drift_ms }
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new timestamp, strictly greater than every one issued or observed.
    /// Never fails: when the counter reaches [`Hlc::COUNTER_MAX`] the wall
    /// part moves one millisecond forward instead.
    pub fn tick(&mut self, physical_ms: u64) -> Hlc {
        let next = if physical_ms > self.last.wall_ms {
            Hlc::new(physical_ms, 0)
        } else if self.last.counter < Hlc::COUNTER_MAX {
            Hlc::new(self.last.wall_ms, self.last.counter + 1)
        } else {
            Hlc::new(self.last.wall_ms.saturating_add(1), 0)
        };
        self.last = next;
        next
    }

    /// Absorb a remote timestamp so later local ones order after it.
    /// Rejects (and ignores) one that runs too far ahead of `physical_ms`
    /// or whose counter is above [`Hlc::COUNTER_MAX`].
    pub fn observe(&mut self, remote: Hlc, physical_ms: u64) -> Result<(), HlcError> {
        if remote.counter > Hlc::COUNTER_MAX {
            return Err(HlcError::CounterTooLarge { counter: remote.counter, max: Hlc::COUNTER_MAX });
        }
        let ahead_ms = remote.wall_ms.saturating_sub(physical_ms);
        if ahead_ms > self.max_drift_ms {
            return Err(HlcError::TooFarInFuture {
                remote_ms: remote.wall_ms,
                ahead_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        if remote > self.last {
            self.last = remote;
        }
        Ok(())
    }
}

impl Default for HlcClock {
    fn default() -> Self {
        HlcClock::new(Self::MAX_DRIFT_MS_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn far_future_is_rejected_and_not_absorbed() {
        let mut clock = HlcClock::new(1_000);
        let before = clock.tick(10);
        assert!(matches!(clock.observe(Hlc::new(5_000, 0), 10), Err(HlcError::TooFarInFuture { .. })));
        assert_eq!(clock.last(), before);
    }

    proptest! {
        #[test]
        fn ticks_strictly_increase_across_observations(
            steps in proptest::collection::vec((0u64..1_000, any::<bool>(), 0u64..1_000, 0u32..4), 1..200)
        ) {
            let mut clock = HlcClock::new(u64::MAX);
            let mut prev = Hlc::default();
            for (physical, is_observe, remote_ms, remote_counter) in steps {
                if is_observe {
                    let remote = Hlc::new(remote_ms, remote_counter);
                    clock.observe(remote, physical).unwrap();
                    let next = clock.tick(physical);
                    prop_assert!(next > remote);
                    prop_assert!(next > prev);
                    prev = next;
                } else {
                    let next = clock.tick(physical);
                    prop_assert!(next > prev);
                    prev = next;
                }
            }
        }
    }

    #[test]
    fn a_counter_at_its_maximum_moves_the_wall_forward_instead_of_failing() {
        let mut clock = HlcClock::new(u64::MAX);
        clock.observe(Hlc::new(1_000, Hlc::COUNTER_MAX), 0).unwrap();
        let next = clock.tick(0);
        assert_eq!(next, Hlc::new(1_001, 0));
        assert!(next > Hlc::new(1_000, Hlc::COUNTER_MAX));
        assert_eq!(clock.tick(0), Hlc::new(1_001, 1));
    }

    #[test]
    fn a_counter_above_the_maximum_is_refused_and_not_absorbed() {
        let mut clock = HlcClock::new(u64::MAX);
        let before = clock.tick(10);
        let refused = clock.observe(Hlc::new(20, u32::MAX), 10);
        assert_eq!(refused, Err(HlcError::CounterTooLarge { counter: u32::MAX, max: Hlc::COUNTER_MAX }));
        assert_eq!(clock.last(), before);
    }
}
