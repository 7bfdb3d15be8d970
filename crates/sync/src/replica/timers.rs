//! Timers: session deadlines, the pending sweep, and anti-entropy
//! scheduling. Run after every input, so a driver only has to call
//! [`Input::Tick`](super::Input::Tick) at [`Replica::next_timer_ms`].
//!
//! Anti-entropy starts every `sync_frequency_ms` with a random connected
//! member, and sooner when asked (a peer connected, a restart, parent
//! requests escalated); never twice within `sync_interval_ms` with a peer
//! that answered (a refused or broken attempt is retried after a short
//! random backoff instead), never more than `outbound_syncs_max` at once.

use std::collections::BTreeSet;

use super::interface::{PeerId, SessionId};
use super::session::SessionKind;
use super::{Replica, ReplicaStore, SyncSoon};

/// When every peer is busy or synced too recently, look again this much
/// later at the earliest.
pub const SYNC_RETRY_MS: u64 = 500;

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
        if now_ms >= self.next_sync_ms {
            self.next_sync_ms = now_ms.saturating_add(self.config.sync_frequency_ms);
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
        Ok(match preferred.filter(|peer| candidates.contains(peer)) {
            Some(peer) => peer,
            None => candidates[self.rng.index(candidates.len())],
        })
    }

    /// Evict stale pending deltas, retry stalled ones, re-want missing
    /// parents nobody fetches, prune old history.
    fn sweep(&mut self, now_ms: u64) {
        let evicted = self.dag.cleanup_stale(now_ms);
        self.forget_pending(&evicted);
        self.retry_stalled();
        self.rewant_missing_parents();
        self.prune_history();
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
