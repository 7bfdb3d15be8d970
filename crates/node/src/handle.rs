//! [`NodeHandle`]: what the API server, the CLI and tests hold. Cheap to
//! clone; every method is a request to the driver over a bounded channel
//! and fails with [`NodeError::Stopped`] once the node is gone, never hangs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use weft_net::{Multiaddr, NetHandle, PeerId as NetPeer, PeerInfo};
use weft_primitives::{Hash, PublicKey, SigningKey};

use crate::command::{AppInfo, CallReply, Command, ContextInfo, KeyEpochInfo, Reply, SyncNowOutcome};
use crate::config::INVITATION_VALID_MS_DEFAULT;
use crate::events::{Counters, NodeEvent, NodeStats};
use crate::replica_store::DeadJob;
use crate::{NodeError, driver};

/// How long [`NodeHandle::leave`] waits for a member's node to hold the
/// `Leave` before it returns (the node keeps trying after).
pub const LEAVE_WAIT: Duration = Duration::from_secs(10);

/// See the module doc.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) counters: Arc<Counters>,
    /// The store's count of write transactions (not the store itself: a
    /// handle must not keep the database open after shutdown).
    pub(crate) store_transactions: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) net: NetHandle,
    pub(crate) identity: SigningKey,
    pub(crate) join_timeout_ms: u64,
    pub(crate) views: crate::views::ViewTargets,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle").field("peer", &self.net.local_peer_id()).finish_non_exhaustive()
    }
}

impl NodeHandle {
    async fn request<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    /// This node's network peer id.
    pub fn peer_id(&self) -> NetPeer {
        self.net.local_peer_id()
    }

    /// The member identity this node writes as in the contexts it creates or joins.
    pub fn identity(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// Where the node listens.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        Ok(self.net.listen_addrs().await?)
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        Ok(self.net.peers().await?)
    }

    /// Dial a peer (e.g. a bootstrap address).
    pub async fn dial(&self, addr: Multiaddr) -> Result<NetPeer, NodeError> {
        Ok(self.net.dial(addr).await?)
    }

    /// Install a WASM application; returns its description (id = BLAKE3 of the module).
    pub async fn install_application(&self, module: Vec<u8>) -> Result<AppInfo, NodeError> {
        self.request(|reply| Command::InstallApp { module, reply }).await
    }

    /// Installed applications.
    pub async fn applications(&self) -> Result<Vec<AppInfo>, NodeError> {
        self.request(|reply| Command::Apps { reply }).await
    }

    /// Uninstall an application that no context on this node runs.
    pub async fn remove_application(&self, application: Hash) -> Result<(), NodeError> {
        self.request(|reply| Command::RemoveApp { application, reply }).await
    }

    /// Create a context of an installed application (`init_args`: JSON for its init method).
    pub async fn create_context(&self, application: Hash, init_args: Vec<u8>) -> Result<ContextInfo, NodeError> {
        self.request(|reply| Command::CreateContext { application, init_args, reply }).await
    }

    /// An invitation to a context, for `invitee` only or (if `None`) for
    /// anyone who holds it, valid for `valid_for` (a day if `None`).
    pub async fn invite(
        &self,
        context: Hash,
        invitee: Option<PublicKey>,
        valid_for: Option<Duration>,
    ) -> Result<String, NodeError> {
        let valid_for_ms =
            valid_for.map_or(INVITATION_VALID_MS_DEFAULT, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.request(|reply| Command::Invite { context, invitee, valid_for_ms, reply }).await
    }

    /// Join a context with an invitation: reach the inviter, be admitted,
    /// and wait until the admission has reached this node.
    pub async fn join(&self, invitation: &str) -> Result<ContextInfo, NodeError> {
        driver::join::join(&self.net, &self.commands, &self.identity, invitation, self.join_timeout_ms).await
    }

    /// Revoke an invitation to `context`, given as its text
    /// (`weft-invite1:…`) or its id (64 hex digits): no member's node admits
    /// anyone with it afterwards. Returns the invitation's id.
    pub async fn revoke_invitation(&self, context: Hash, invitation: &str) -> Result<Hash, NodeError> {
        let text = invitation.trim();
        let id = match text.parse::<Hash>() {
            Ok(id) => id,
            Err(_) => {
                let parsed = weft_membership::Invitation::from_text(text)?;
                if parsed.context != context {
                    let wrong =
                        weft_membership::MembershipError::WrongContext { expected: context, found: parsed.context };
                    return Err(wrong.into());
                }
                parsed.id()
            }
        };
        self.request(|reply| Command::RevokeInvitation { context, invitation: id, reply }).await?;
        Ok(id)
    }

    /// Remove `member` from `context` (this node's identity must be an
    /// admin: the creator) and rotate the group key; returns the delta id.
    pub async fn remove_member(&self, context: Hash, member: PublicKey) -> Result<Hash, NodeError> {
        self.request(|reply| Command::RemoveMember { context, member, reply }).await
    }

    /// The key epochs of `context`, oldest first.
    pub async fn key_epochs(&self, context: Hash) -> Result<Vec<KeyEpochInfo>, NodeError> {
        self.request(|reply| Command::KeyEpochs { context, reply }).await
    }

    /// Leave a context: commit the `Leave`, then wait (at most
    /// [`LEAVE_WAIT`]) until a member's node holds it and this node stopped
    /// serving the context. Past the wait the node keeps trying in the
    /// background (across restarts too); the leave itself is already durable.
    pub async fn leave(&self, context: Hash) -> Result<(), NodeError> {
        self.request(|reply| Command::Leave { context, reply }).await?;
        let deadline = tokio::time::Instant::now() + LEAVE_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.context(context).await {
                Err(NodeError::UnknownContext(_)) => return Ok(()),
                Err(error) => return Err(error),
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Ok(())
    }

    /// Call a view or mutation (`args`: JSON). A view runs at once on its own
    /// thread, against the latest durable state (it never waits for the
    /// driver); a mutation's reply comes once its delta is durable.
    pub async fn call(&self, context: Hash, method: &str, args: Vec<u8>) -> Result<CallReply, NodeError> {
        // A view runs here, off the driver, on a durable snapshot.
        if let Some(answer) = self.views.call(context, method, &args).await {
            Counters::bump(&self.counters.calls, 1);
            return answer;
        }
        let method = method.to_owned();
        self.request(|reply| Command::Call { context, method, args, reply }).await
    }

    /// Every context this node is in.
    pub async fn contexts(&self) -> Result<Vec<ContextInfo>, NodeError> {
        self.request(|reply| Command::Contexts { reply }).await
    }

    /// One context.
    pub async fn context(&self, context: Hash) -> Result<ContextInfo, NodeError> {
        self.request(|reply| Command::Context { context, reply }).await
    }

    /// Start anti-entropy now, in one context or all; says per context
    /// whether a session started and how many member nodes are reachable.
    pub async fn sync_now(&self, context: Option<Hash>) -> Result<Vec<SyncNowOutcome>, NodeError> {
        self.request(|reply| Command::SyncNow { context, reply }).await
    }

    /// The encoded signed delta `id` of a context, if this node holds it
    /// (applied and not pruned, or pending).
    pub async fn delta(&self, context: Hash, id: Hash) -> Result<Option<Vec<u8>>, NodeError> {
        self.request(|reply| Command::Delta { context, id, reply }).await
    }

    /// The context's dead letters: handler jobs given up on after
    /// `handler_attempts_max` failed attempts, oldest first (at most 1 000).
    pub async fn dead_jobs(&self, context: Hash) -> Result<Vec<(u64, DeadJob)>, NodeError> {
        self.request(|reply| Command::DeadJobs { context, reply }).await
    }

    /// Publish `bytes` on the context's gossip topic as the delta `id`,
    /// sealed with the group key, without any check: what a faulty or
    /// malicious member can do. For tests and fault-injection tools; the
    /// receivers' verification is what is being exercised.
    pub async fn publish_unchecked(&self, context: Hash, id: Hash, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.request(|reply| Command::PublishRaw { context, id, bytes, reply }).await
    }

    /// Make the driver handle nothing (no write, no network event, no
    /// tick) until `release` fires or is dropped; returns once it holds.
    /// For tests and fault-injection tools: what does not need the driver
    /// (views) goes on meanwhile.
    pub async fn hold_driver(&self, release: oneshot::Receiver<()>) -> Result<(), NodeError> {
        self.request(|reply| Command::Hold { release, reply }).await
    }

    /// Hand `bytes` to this node's receive path as if `from` had gossiped
    /// them (no group-key sealing involved). For tests and fault-injection
    /// tools: the delta is verified exactly like any received delta.
    pub async fn deliver_unchecked(&self, context: Hash, from: NetPeer, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.request(|reply| Command::DeliverRaw { context, from, bytes, reply }).await
    }

    /// This node's gossip score of `peer` (negative once it sent invalid
    /// messages), if the scorer knows it.
    pub async fn peer_score(&self, peer: NetPeer) -> Result<Option<f64>, NodeError> {
        Ok(self.net.peer_score(peer).await?)
    }

    /// Subscribe to the event bus.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Counters and gauges.
    pub async fn stats(&self) -> Result<NodeStats, NodeError> {
        let mut stats = self.counters.snapshot();
        let contexts = self.contexts().await?;
        stats.deltas_pending = contexts.iter().map(|c| c.pending).sum();
        stats.handler_jobs_owed = contexts.iter().map(|c| c.handler_jobs).sum();
        stats.store_transactions = self.store_transactions.load(std::sync::atomic::Ordering::Relaxed);
        stats.peers = self.net.peers().await.map_or(0, |p| p.len() as u64);
        let net = self.net.stats();
        stats.net_gossip_dropped = net.events_dropped;
        stats.net_subscriptions_coalesced = net.subscription_events_coalesced;
        stats.net_streams_dropped = net.incoming_streams_dropped;
        Ok(stats)
    }

    /// Stop the node: close streams and the swarm. Every acknowledged write
    /// is already durable; the database closes when the last handle drops.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.request(|reply| Command::Shutdown { reply }).await
    }
}
