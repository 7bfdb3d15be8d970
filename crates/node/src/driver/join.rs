//! Admission: the inviter's node checks a join request and commits the
//! membership delta; the joiner's node checks what it is told and installs
//! the context.
//!
//! The inviter's checks, all before anything is written: the wire version,
//! that we hold the context, the invitation's signature, expiry and
//! invitee, the joiner's proof of its key, and that the inviter is a member
//! *now*. The joiner's checks: the module hashes to the application id,
//! (creator, application, nonce) hash to the invited context id, and the
//! group key unwraps with its identity. A joiner already admitted is
//! answered again without a new delta, so a retried join is harmless.

use tokio::sync::{mpsc, oneshot};
use tracing::info;
use weft_membership::{Invitation, JoinBinding, JoinProof, unwrap_group_key, wrap_group_key};
use weft_net::{Multiaddr, NetHandle, PeerId as NetPeer};
use weft_primitives::{PublicKey, SigningKey};
use weft_store::StoreError;
use weft_sync::{Event, Input, InvitationUse, MembershipChange};

use super::{Driver, now_ms};
use crate::NodeError;
use crate::command::JoinRequest;
use crate::command::{Command, ContextInfo};
use crate::records::{self, AppRecord, ContextRecord, context_id};
use crate::wire::{JoinAccepted, JoinChallenge, JoinHello, JoinReply, NODE_WIRE_VERSION, StreamHello};

impl Driver {
    /// Answer a join request (inviter's side).
    pub(super) async fn admit(&mut self, peer: NetPeer, request: JoinRequest) -> JoinReply {
        let context = request.invitation.context;
        match self.try_admit(request).await {
            Ok(accepted) => {
                // The joiner's node serves a member now: keep its address.
                self.note_member_node(context, peer);
                JoinReply::Accepted(accepted)
            }
            Err(error) => {
                info!(%peer, %error, "join refused");
                JoinReply::Refused { reason: error.to_string() }
            }
        }
    }

    async fn try_admit(&mut self, request: JoinRequest) -> Result<JoinAccepted, NodeError> {
        let invitation = &request.invitation;
        let context = invitation.context;
        let joiner = request.proof.joiner;
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        invitation.verify(now_ms(), &joiner)?;
        // Bound to the challenge our stream task picked for this exchange
        // and to both nodes' transport keys: a recorded join is refused.
        if request.binding.inviter_node != self.local_peer.0 {
            return Err(NodeError::Protocol("a join exchange bound to another node".into()));
        }
        request.proof.verify(invitation, &request.binding)?;
        if !slot.replica.is_member(&invitation.inviter) {
            return Err(NodeError::JoinRefused("the inviter is not a member of the context".into()));
        }
        // One invitation admits one identity (which may present it again,
        // e.g. after a lost reply), and never once revoked.
        match slot.replica.member_set().invitation_use(&invitation.id()) {
            InvitationUse::Unused => {}
            InvitationUse::UsedBy(member) if member == joiner => {}
            InvitationUse::UsedBy(_) => {
                return Err(NodeError::JoinRefused("this invitation was already used by someone else".into()));
            }
            InvitationUse::Revoked => return Err(NodeError::JoinRefused("this invitation was revoked".into())),
        }
        let (epoch, key) = slot.keys.newest().ok_or_else(|| NodeError::JoinRefused("no group key held".into()))?;
        let (creator, application, nonce, key) =
            (slot.record.creator, slot.record.application, slot.record.nonce, key.clone());
        if !slot.replica.is_member(&joiner) {
            let change = MembershipChange::Add { member: joiner, invitation: invitation.id() };
            self.commit_events(context, vec![Event::membership(change)]).await?;
            info!(%context, ?joiner, "member admitted");
        }
        let group_key = wrap_group_key(&key, &context, &joiner)?;
        let module = records::get_application(&self.store, &application)?
            .ok_or(NodeError::UnknownApplication(application))?
            .module;
        Ok(JoinAccepted {
            creator,
            application,
            nonce,
            module,
            group_key,
            epoch_number: epoch.number,
            epoch_rotation: epoch.rotation,
        })
    }

    /// Install a context we were admitted to (joiner's side).
    pub(super) async fn install_joined(
        &mut self,
        invitation: Invitation,
        inviter: NetPeer,
        accepted: JoinAccepted,
    ) -> Result<ContextInfo, NodeError> {
        let context = invitation.context;
        if self.contexts.contains_key(&context) {
            return Err(NodeError::AlreadyJoined(context));
        }
        let app = self.runtime.load(&accepted.module)?;
        if app.id() != accepted.application {
            return Err(NodeError::Protocol("the inviter sent a module that is not the context's application".into()));
        }
        if context_id(&accepted.creator, &accepted.application, &accepted.nonce) != context {
            return Err(NodeError::Protocol(
                "the inviter's context description does not hash to the context id".into(),
            ));
        }
        let group_key = unwrap_group_key(&accepted.group_key, &context, &self.identity)?;
        let epoch = weft_sync::KeyEpoch { number: accepted.epoch_number, rotation: accepted.epoch_rotation };
        let record = ContextRecord {
            id: context,
            application: accepted.application,
            creator: accepted.creator,
            nonce: accepted.nonce,
            identity: self.identity.public_key(),
            group_key: *group_key.as_bytes(),
            since_ms: now_ms(),
        };
        let app_record = AppRecord { name: app.manifest().name.clone(), module: accepted.module };
        let identity = self.identity.clone();
        self.store.write(|txn| -> Result<(), StoreError> {
            records::put_application(txn, accepted.application, &app_record)?;
            records::put_identity(txn, context, &identity)?;
            records::put_group_key(txn, context, epoch, group_key.as_bytes())?;
            records::put_context(txn, &record)
        })?;
        self.open_context(record).await?;
        if let Some(node) = weft_net::peer_public_key(&inviter) {
            self.joined_through.insert(context, (node.0, invitation.inviter));
        }
        // The inviter's node is the first member's node we know; its
        // directory names the others.
        self.note_member_node(context, inviter);
        self.note_member_addrs(inviter, &invitation.addrs);
        self.ask_directory(inviter, context);
        // Fetch the history (our admission included) from the inviter now:
        // it answered for the member who signed our invitation.
        self.member_node_proven(context, inviter).await;
        if let Some(peer) = weft_net::peer_public_key(&inviter) {
            let peer = weft_sync::PeerId(peer.0);
            self.feed(context, Input::PeerUp { peer }).await;
            self.feed(context, Input::SyncNow { peer: Some(peer) }).await;
        }
        info!(%context, "joined");
        self.context_info(context)
    }
}

/// Attempts at the join exchange when its stream breaks before a reply.
const JOIN_ATTEMPTS_MAX: u32 = 3;
/// Pause before the second attempt (doubled before each next one).
const JOIN_RETRY_MS: u64 = 200;

/// [`ask_inviter`], again when the stream itself failed (a stream can be
/// dropped by a busy inviter before it reads a byte). Presenting an
/// invitation again is safe: it admits one identity, and the same one may
/// present it again. Refusals and protocol errors are final.
async fn ask_inviter_with_retries(
    net: &NetHandle,
    inviter: NetPeer,
    invitation: &Invitation,
    identity: &SigningKey,
) -> Result<JoinAccepted, NodeError> {
    let mut pause_ms = JOIN_RETRY_MS;
    let mut attempt = 1;
    loop {
        match ask_inviter(net, inviter, invitation, identity).await {
            Err(NodeError::Net(error)) if attempt < JOIN_ATTEMPTS_MAX && stream_broke(&error) => {
                tracing::debug!(%inviter, %error, attempt, "join stream failed; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
                pause_ms = pause_ms.saturating_mul(2);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Whether `error` is the stream failing rather than the inviter answering.
fn stream_broke(error: &weft_net::NetError) -> bool {
    use weft_net::NetError;
    matches!(
        error,
        NetError::OpenStream { .. } | NetError::Io(_) | NetError::StreamClosed | NetError::TruncatedFrame { .. }
    )
}

/// The join exchange on one stream: hello, challenge, proof, reply.
async fn ask_inviter(
    net: &NetHandle,
    inviter: NetPeer,
    invitation: &Invitation,
    identity: &SigningKey,
) -> Result<JoinAccepted, NodeError> {
    let mut stream = net.open_stream(inviter).await?;
    let hello = StreamHello::Join(Box::new(JoinHello { version: NODE_WIRE_VERSION, invitation: invitation.clone() }));
    stream.send(&hello.encode()).await?;
    let answer = stream.recv().await?;
    let challenge = match JoinChallenge::decode(&answer) {
        Ok(challenge) => challenge,
        // A node refusing at once (an unknown wire version) answers with its reply.
        Err(_) => match JoinReply::decode(&answer) {
            Ok(JoinReply::Refused { reason }) => return Err(NodeError::JoinRefused(reason)),
            _ => return Err(NodeError::Protocol("the inviter's node sent no join challenge".into())),
        },
    };
    let binding = JoinBinding {
        challenge: challenge.challenge,
        joiner_node: weft_net::peer_public_key(&net.local_peer_id())
            .ok_or_else(|| NodeError::Protocol("our node id is not an Ed25519 key".into()))?
            .0,
        inviter_node: invitation.inviter_node,
    };
    let proof = JoinProof::create(identity, invitation, &binding);
    stream.send(&proof.encode()).await?;
    let reply = JoinReply::decode(&stream.recv().await?).map_err(|e| NodeError::Protocol(e.to_string()))?;
    let _ = stream.close().await;
    match reply {
        JoinReply::Accepted(accepted) => Ok(accepted),
        JoinReply::Refused { reason } => Err(NodeError::JoinRefused(reason)),
    }
}

/// The joiner's side, run on the caller's task: reach the inviter, ask,
/// install, then wait until our own history shows us admitted.
pub(crate) async fn join(
    net: &NetHandle,
    commands: &mpsc::Sender<Command>,
    identity: &SigningKey,
    text: &str,
    timeout_ms: u64,
) -> Result<ContextInfo, NodeError> {
    let invitation = Invitation::from_text(text.trim())?;
    invitation.verify(now_ms(), &identity.public_key())?;
    let inviter = weft_net::peer_id_of(&PublicKey(invitation.inviter_node))?;
    let connected = net.peers().await?.iter().any(|info| info.peer == inviter);
    if !connected {
        let mut last_error = None;
        for addr in &invitation.addrs {
            let Ok(addr) = addr.parse::<Multiaddr>() else { continue };
            match net.dial(addr).await {
                Ok(peer) if peer == inviter => {
                    last_error = None;
                    break;
                }
                Ok(other) => last_error = Some(NodeError::Protocol(format!("{other} answered instead of the inviter"))),
                Err(error) => last_error = Some(error.into()),
            }
        }
        if let Some(error) = last_error {
            return Err(error);
        }
    }
    let accepted = ask_inviter_with_retries(net, inviter, &invitation, identity).await?;
    let context = invitation.context;
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::Joined { invitation: Box::new(invitation), inviter, accepted: Box::new(accepted), reply })
        .await
        .map_err(|_| NodeError::Stopped)?;
    answer.await.map_err(|_| NodeError::Stopped)??;
    // Admitted on the inviter's node; wait until the admission reached us,
    // so the caller can write at once.
    let me = identity.public_key();
    let deadline = now_ms().saturating_add(timeout_ms);
    loop {
        let (reply, answer) = oneshot::channel();
        commands.send(Command::Context { context, reply }).await.map_err(|_| NodeError::Stopped)?;
        let info = answer.await.map_err(|_| NodeError::Stopped)??;
        if info.members.contains(&me) {
            return Ok(info);
        }
        if now_ms() >= deadline {
            return Err(NodeError::Timeout(format!("admission to {context} did not arrive within {timeout_ms} ms")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
