//! Short-lived, single-use tickets for live streams.
//!
//! Browsers cannot set `Authorization` on a WebSocket or an EventSource,
//! and a token in a URL ends up in histories, proxy logs and `Referer`
//! headers. So the token never travels in a URL: a client holding it asks
//! `POST /admin/tickets` for a ticket and opens `/ws?ticket=…` or
//! `/events?ticket=…` with that. A ticket is 32 random bytes, good for one
//! connection within [`TICKET_TTL`]; at most [`TICKETS_MAX`] are
//! outstanding (expired ones are swept first), and only their digests are
//! kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use weft_primitives::Hash;

/// How long a ticket stays usable.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding (unused, unexpired) tickets at most.
pub const TICKETS_MAX: usize = 256;

/// Why no ticket was issued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TicketError {
    /// [`TICKETS_MAX`] unused tickets are still valid.
    #[error("{TICKETS_MAX} tickets are outstanding; use or let them expire first")]
    Full,
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// The outstanding tickets, by digest.
#[derive(Default)]
pub(crate) struct TicketBook {
    outstanding: Mutex<HashMap<Hash, Instant>>,
}

impl TicketBook {
    /// A fresh ticket (hex), valid until `now + TICKET_TTL`.
    pub(crate) fn issue(&self, now: Instant) -> Result<String, TicketError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TicketError::Random(e.to_string()))?;
        let ticket = Hash(bytes).to_string();
        let mut outstanding = self.lock();
        if outstanding.len() >= TICKETS_MAX {
            outstanding.retain(|_, expiry| *expiry > now);
            if outstanding.len() >= TICKETS_MAX {
                return Err(TicketError::Full);
            }
        }
        outstanding.insert(Hash::of(ticket.as_bytes()), now + TICKET_TTL);
        Ok(ticket)
    }

    /// Spend `ticket`: true once if it was issued and has not expired.
    pub(crate) fn redeem(&self, ticket: &str, now: Instant) -> bool {
        let expiry = self.lock().remove(&Hash::of(ticket.as_bytes()));
        expiry.is_some_and(|expiry| expiry > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, Instant>> {
        // A map of expiries has no invariant a panicking holder could break.
        self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_and_only_before_it_expires() {
        let book = TicketBook::default();
        let now = Instant::now();
        let ticket = book.issue(now).unwrap();
        assert_eq!(ticket.len(), 64);
        assert!(!book.redeem("not-a-ticket", now));
        assert!(book.redeem(&ticket, now));
        assert!(!book.redeem(&ticket, now), "single use");
        let late = book.issue(now).unwrap();
        assert!(!book.redeem(&late, now + TICKET_TTL), "expired");
    }

    #[test]
    fn outstanding_tickets_are_bounded_and_expired_ones_make_room() {
        let book = TicketBook::default();
        let now = Instant::now();
        for _ in 0..TICKETS_MAX {
            book.issue(now).unwrap();
        }
        assert!(matches!(book.issue(now), Err(TicketError::Full)));
        assert!(book.issue(now + TICKET_TTL + Duration::from_millis(1)).is_ok());
    }
}
