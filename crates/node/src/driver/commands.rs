//! Requests from [`NodeHandle`](crate::NodeHandle)s, each answered on its
//! reply channel. Calls of a context are batched in `calls`; everything
//! else is answered here, one at a time, in arrival order.

use weft_primitives::Hash;
use weft_sync::Input;

use super::{DEAD_JOBS_LISTED_MAX, Driver};
use crate::command::Command;
use crate::events::Counters;

impl Driver {
    pub(super) async fn on_command(&mut self, command: Command) {
        match command {
            Command::InstallApp { module, reply } => {
                let _ = reply.send(self.install_app(&module));
            }
            Command::Apps { reply } => {
                let _ = reply.send(self.list_apps());
            }
            Command::RemoveApp { application, reply } => {
                let _ = reply.send(self.remove_app(application));
            }
            Command::CreateContext { application, init_args, reply } => {
                let _ = reply.send(self.create_context(application, init_args).await);
            }
            Command::Invite { context, invitee, valid_for_ms, reply } => {
                let _ = reply.send(self.invite(context, invitee, valid_for_ms).await);
            }
            Command::Joined { invitation, inviter, accepted, reply } => {
                let _ = reply.send(self.install_joined(*invitation, inviter, *accepted).await);
            }
            Command::Leave { context, reply } => {
                let _ = reply.send(self.leave(context).await);
            }
            Command::RevokeInvitation { context, invitation, reply } => {
                let _ = reply.send(self.revoke_invitation(context, invitation).await);
            }
            Command::RemoveMember { context, member, reply } => {
                let _ = reply.send(self.remove_member(context, member).await);
            }
            Command::KeyEpochs { context, reply } => {
                let _ = reply.send(self.key_epochs(context));
            }
            Command::Call { context, method, args, reply } => {
                Counters::bump(&self.counters.calls, 1);
                let _ = reply.send(self.call(context, &method, &args).await);
            }
            Command::Contexts { reply } => {
                let infos = self.contexts.keys().copied().collect::<Vec<_>>();
                let _ = reply.send(infos.into_iter().map(|id| self.context_info(id)).collect());
            }
            Command::Context { context, reply } => {
                let _ = reply.send(self.context_info(context));
            }
            Command::SyncNow { context, reply } => {
                let targets: Vec<Hash> = match context {
                    Some(id) if !self.contexts.contains_key(&id) => {
                        let _ = reply.send(Err(crate::NodeError::UnknownContext(id)));
                        return;
                    }
                    Some(id) => vec![id],
                    None => self.contexts.keys().copied().collect(),
                };
                let mut outcomes = Vec::with_capacity(targets.len());
                for id in targets {
                    let before = self.contexts.get(&id).map_or(0, |slot| slot.replica.stats().syncs_started);
                    self.feed(id, Input::SyncNow { peer: None }).await;
                    let Some(slot) = self.contexts.get(&id) else { continue };
                    outcomes.push(crate::SyncNowOutcome {
                        context: id,
                        started: slot.replica.stats().syncs_started > before,
                        peers: slot.replica.peers().count(),
                        member_nodes_known: self.book.count_serving(&id),
                    });
                }
                let _ = reply.send(Ok(outcomes));
            }
            Command::DeadJobs { context, reply } => {
                let answer = match self.contexts.get(&context) {
                    Some(slot) => slot.replica.store().dead_jobs(DEAD_JOBS_LISTED_MAX).map_err(crate::NodeError::from),
                    None => Err(crate::NodeError::UnknownContext(context)),
                };
                let _ = reply.send(answer);
            }
            Command::Delta { context, id, reply } => {
                let answer = self
                    .contexts
                    .get(&context)
                    .ok_or(crate::NodeError::UnknownContext(context))
                    .map(|slot| slot.replica.applied_delta_bytes(&id));
                let _ = reply.send(answer);
            }
            Command::PublishRaw { context, id, bytes, reply } => {
                if !self.contexts.contains_key(&context) {
                    let _ = reply.send(Err(crate::NodeError::UnknownContext(context)));
                    return;
                }
                self.publish(context, id, &bytes).await;
                let _ = reply.send(Ok(()));
            }
            Command::Hold { release, reply } => {
                let _ = reply.send(Ok(()));
                // Fired or dropped: either way the hold ends.
                let _ = release.await;
            }
            Command::DeliverRaw { context, from, bytes, reply } => {
                let (Some(_), Some(from)) = (self.contexts.get(&context), Self::sync_peer(&from)) else {
                    let _ = reply.send(Err(crate::NodeError::UnknownContext(context)));
                    return;
                };
                // No gossip message to validate: the verdict is dropped.
                self.next_message += 1;
                let message = self.next_message;
                self.feed(context, Input::GossipReceived { from, message, bytes }).await;
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown { reply } => {
                // Handled in `run`; kept for exhaustiveness.
                let _ = reply.send(Ok(()));
            }
        }
    }
}
