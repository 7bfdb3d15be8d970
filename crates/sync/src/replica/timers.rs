//! Timers: session deadlines, the pending sweep, and anti-entropy
//! scheduling. Run after every input, so a driver only has to call
//! [`Input::Tick`](super::Input::Tick) at [`Replica::next_timer_ms`].
//!
//! Anti-entropy starts every `sync_frequency_ms` with a random connected
//! member, and sooner when asked (a peer connected, a restart, parent
//! requests escalated); never twice within `sync_interval_ms` with a peer
//! that answered (a refused or broken attempt is retried after a short
//! random backoff instead), never more than `outbound_syncs_max` at once.
//!
//! An idle replica syncs less often. A session's two ends compare heads
//! and root hashes, and each remembers which peers matched it at which
//! applied length. The periodic pick prefers a peer that has not matched
//! us since we last applied something; a period that starts with every
//! connected peer matched at our current length is twice the last one, up
//! to `sync_idle_max_ms`. Applying anything (a local write, gossip, a page)
//! brings the next session back within `sync_frequency_ms`. Why this never
//! delays repair for long: a replica that holds something a peer lacks has
//! applied it since that peer last matched it, so it is not idle and picks
//! that peer within a few base periods. So two nodes sharing 10,000 quiet
//! contexts run one session per context every 160 s, not every 10 s.

use std::collections::{BTreeMap, BTreeSet};

use super::interface::{PeerId, SessionId};
use super::session::SessionKind;
use super::{Replica, ReplicaStore, SyncSoon};

/// When every peer is busy or synced too recently, look again this much
/// later at the earliest.
pub const SYNC_RETRY_MS: u64 = 500;

/// Doublings of the anti-entropy period at most (the period is also capped
/// by `sync_idle_max_ms`; this only keeps the shift in range).
const IDLE_DOUBLINGS_MAX: u32 = 16;

/// Which peers matched our heads and root hash, and how long the replica
/// has been idle (see the module doc).
#[derive(Debug, Default)]
pub(super) struct IdleSync {
    /// Our applied length when each connected peer last matched us.
    matched_at: BTreeMap<PeerId, u64>,
    /// Consecutive periods that started with every peer matched.
    streak: u32,
    /// Our applied length when the streak last grew.
    streak_len: u64,
}

impl IdleSync {
    pub(super) fn matched(&mut self, peer: PeerId, applied_len: u64) {
        self.matched_at.insert(peer, applied_len);
    }

    pub(super) fn differed(&mut self, peer: &PeerId) {
        self.matched_at.remove(peer);
    }

    pub(super) fn forget(&mut self, peer: &PeerId) {
        self.matched_at.remove(peer);
    }

    fn has_matched(&self, peer: &PeerId, applied_len: u64) -> bool {
        self.matched_at.get(peer) == Some(&applied_len)
    }
}

impl<S: ReplicaStore> Replica<S> {
    pub(super) fn run_timers(&mut self, now_ms: u64) {
        let idle_ms = self.config.session_idle_ms;
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.expires_ms(idle_ms) <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.stats.sessions_timed_out += 1;
            self.session_failed(id, true, now_ms);
        }
        if now_ms >= self.next_sweep_ms {
            self.next_sweep_ms = now_ms.saturating_add(self.config.pending_sweep_ms);
            self.sweep(now_ms);
        }
        let base_ms = self.config.sync_frequency_ms;
        if self.idle.streak > 0 && self.idle.streak_len != self.core.applied_len {
            // Something was applied: not idle any more.
            self.idle.streak = 0;
            self.next_sync_ms = self.next_sync_ms.min(now_ms.saturating_add(base_ms));
        }
        if now_ms >= self.next_sync_ms {
            let len = self.core.applied_len;
            if !self.peers.is_empty() && self.peers.iter().all(|peer| self.idle.has_matched(peer, len)) {
                self.idle.streak = (self.idle.streak + 1).min(IDLE_DOUBLINGS_MAX);
                self.idle.streak_len = len;
            } else {
                self.idle.streak = 0;
            }
            self.next_sync_ms = now_ms.saturating_add(self.sync_period_ms());
            if let Ok(peer) = self.pick_sync_peer(None, now_ms) {
                self.start_sync(peer, now_ms);
            }
        }
        if let Some(soon) = self.sync_soon
            && now_ms >= soon.not_before_ms
        {
            self.sync_soon = None;
            match self.pick_sync_peer(soon.preferred, now_ms) {
                Ok(peer) => self.start_sync(peer, now_ms),
                Err(Some(retry_ms)) => {
                    self.sync_soon = Some(SyncSoon { preferred: soon.preferred, not_before_ms: retry_ms });
                }
                Err(None) => {}
            }
        }
    }

    /// The current anti-entropy period: `sync_frequency_ms`, doubled per
    /// idle period in a row, at most `sync_idle_max_ms`.
    pub(super) fn sync_period_ms(&self) -> u64 {
        let base_ms = self.config.sync_frequency_ms;
        let cap_ms = self.config.sync_idle_max_ms.max(base_ms);
        base_ms.saturating_mul(1u64 << self.idle.streak).min(cap_ms)
    }

    /// Ask for an anti-entropy session soon, preferably with `preferred`.
    pub(super) fn request_sync_soon(&mut self, preferred: Option<PeerId>, not_before_ms: u64) {
        match &mut self.sync_soon {
            Some(soon) => {
                soon.preferred = soon.preferred.or(preferred);
                soon.not_before_ms = soon.not_before_ms.min(not_before_ms);
            }
            None => self.sync_soon = Some(SyncSoon { preferred, not_before_ms }),
        }
    }

    /// A peer to sync with now, or when to look again (`None`: no peers).
    fn pick_sync_peer(&mut self, preferred: Option<PeerId>, now_ms: u64) -> Result<PeerId, Option<u64>> {
        if self.peers.is_empty() {
            return Err(None);
        }
        let syncing: BTreeSet<PeerId> = self
            .sessions
            .iter()
            .filter(|(id, session)| {
                id.opener == self.local_peer && matches!(session.kind, SessionKind::SyncInitiator { .. })
            })
            .map(|(_, session)| session.peer)
            .collect();
        let retry_ms = now_ms.saturating_add(SYNC_RETRY_MS);
        // One bulk inflow at a time (see `admit_sync`).
        if syncing.len() >= self.config.outbound_syncs_max || self.is_receiving() {
            return Err(Some(retry_ms));
        }
        let interval = self.config.sync_interval_ms;
        let allowed_from = |peer: &PeerId| self.last_sync_ms.get(peer).map_or(0, |last| last.saturating_add(interval));
        let candidates: Vec<PeerId> =
            self.peers.iter().filter(|peer| !syncing.contains(peer) && allowed_from(peer) <= now_ms).copied().collect();
        if candidates.is_empty() {
            let earliest = self.peers.iter().map(allowed_from).min().unwrap_or(retry_ms);
            return Err(Some(earliest.max(retry_ms)));
        }
        if let Some(peer) = preferred.filter(|peer| candidates.contains(peer)) {
            return Ok(peer);
        }
        // A peer that has not matched us since we last applied something
        // first: it may lack what we applied, or hold what we lack.
        let len = self.core.applied_len;
        let unmatched: Vec<PeerId> =
            candidates.iter().filter(|peer| !self.idle.has_matched(peer, len)).copied().collect();
        let pool = if unmatched.is_empty() { &candidates } else { &unmatched };
        Ok(pool[self.rng.index(pool.len())])
    }

    /// Evict stale pending deltas, retry stalled ones, re-want missing
    /// parents nobody fetches, prune and forget old history.
    fn sweep(&mut self, now_ms: u64) {
        let evicted = self.dag.cleanup_stale(now_ms);
        self.forget_pending(&evicted);
        self.retry_stalled();
        self.rewant_missing_parents();
        self.prune_history();
        self.forget_history();
    }

    /// Drop the payloads of deltas older than the last `history_kept_max`
    /// from memory. The store keeps their rows: they are read back when a
    /// peer needs them, and a restart prunes again as it replays.
    pub(super) fn prune_history(&mut self) {
        let Some(keep) = self.config.history_kept_max else { return };
        let len = self.dag.applied_count();
        let Some(cut) = len.checked_sub(keep.max(1)) else { return };
        // Prune in steps of a quarter of the kept window, not on every delta.
        if cut <= self.pruned_below + keep / 4 {
            return;
        }
        let Some(checkpoint) = self.dag.applied_id(cut as u64) else { return };
        self.dag.prune_below(&[checkpoint]);
        self.pruned_below = cut;
        self.stats.history_pruned = self.dag.pruned_count() as u64;
    }
}
