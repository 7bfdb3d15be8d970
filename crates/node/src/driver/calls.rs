//! Method calls: views run against the persisted state; mutations, init and
//! handlers run in a write overlay and commit as one local delta in the
//! same driver turn (so they can never be stale).
//!
//! **Group commit.** Clients' calls that are waiting when the driver takes
//! one run back to back (at most [`NodeConfig::call_group_max`]) in one
//! unflushed turn ([`super::durable`]): one fsync makes all their deltas
//! durable, and only after it are the calls answered (and their deltas
//! gossiped, their events sent). So an answer still means "durable", and
//! the order of the calls is the order they were sent in. If the fsync
//! fails, every call of the group gets the error (none is acknowledged; as
//! with any failed commit, its delta may or may not survive).
//!
//! **Pipelined.** While a group's transaction lands on a blocking thread,
//! the next group runs (the calls queued, or the first to arrive before
//! the landing ends), staging on top of it; it is answered only after the
//! group before it, and fails with it if that landing fails. Network
//! events waiting meanwhile share the next group's turn (without that, a
//! run of groups held gossip back: 3 nodes took ~0.5 s instead of ~5 ms to
//! converge after their writers stopped). At most
//! [`CALL_GROUPS_PIPELINED_MAX`] groups run back to back before the driver
//! turns to its timers and other commands again.
//!
//! [`NodeConfig::call_group_max`]: crate::NodeConfig::call_group_max

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use weft_net::NetEvent;
use weft_runtime::{CallResult, ExecuteRequest, MethodKind};
use weft_sync::{Event, Input, PreparedWrite, ReplicaStore, WriteError};

use super::durable::LandingTurn;
use super::{Driver, now_ms};
use crate::NodeError;
use crate::command::{CallReply, Command};
use weft_primitives::{Hash, PublicKey};

/// A client's call, taken off the command queue.
pub(crate) struct CallRequest {
    pub(crate) context: Hash,
    pub(crate) method: String,
    pub(crate) args: Vec<u8>,
    pub(crate) reply: oneshot::Sender<Result<CallReply, NodeError>>,
}

/// A call's reply channel and its result, held until its group is durable.
type Answer = (oneshot::Sender<Result<CallReply, NodeError>>, Result<CallReply, NodeError>);

/// Groups of calls one [`Driver::on_calls`] runs back to back (each
/// staging while the one before lands) before the driver turns to its
/// timers and other commands again (network events waiting are taken into
/// each group's turn).
const CALL_GROUPS_PIPELINED_MAX: usize = 4;

/// Answer every call of a group whose commit failed: none is acknowledged.
fn fail_calls(answers: Vec<Answer>, why: &str) {
    for (reply, _) in answers {
        let reason = weft_sync::StoreError::Backend(format!("making the call durable: {why}"));
        let _ = reply.send(Err(NodeError::Write(WriteError::Store(reason))));
    }
}

impl Driver {
    /// Run `first` and every call queued behind it as group commits,
    /// pipelined; see the module doc. Returns the first command taken off
    /// the queue that is not run here, for the caller to run next.
    pub(super) async fn on_calls(
        &mut self,
        first: CallRequest,
        commands: &mut mpsc::Receiver<Command>,
        net_events: &mut mpsc::Receiver<NetEvent>,
    ) -> Option<Command> {
        let mut landing: Option<(LandingTurn, Vec<Answer>)> = None;
        let mut next = Some(first);
        let mut other = None;
        for group in 0..CALL_GROUPS_PIPELINED_MAX {
            let Some(first) = next.take() else { break };
            self.begin_unflushed();
            if group > 0 {
                // The network waits no longer than one group: what came
                // meanwhile (gossip, sync frames) shares this turn.
                for _ in 0..crate::NET_EVENTS_PER_TURN_MAX {
                    let Ok(event) = net_events.try_recv() else { break };
                    self.on_net_event(event).await;
                }
            }
            let answers = self.run_call_group(first, commands, &mut other).await;
            // The group before lands first: the order of the answers, and
            // the failure cascade (this group staged on top of it).
            if let Some((previous, previous_answers)) = landing.take()
                && !self.settle_calls(previous, previous_answers).await
            {
                self.abandon_turn();
                fail_calls(answers, "the commit it was built on failed");
                break;
            }
            landing = Some((self.launch_landing(), answers));
            if other.is_some() {
                break;
            }
            // Run the next calls while this group's fsync runs: those
            // waiting already, or the first to come before it landed (the
            // clients just answered send theirs now).
            let Some((turn, _)) = landing.as_mut() else { break };
            let command = tokio::select! {
                biased;
                command = commands.recv() => command,
                () = turn.wait() => None,
            };
            match command {
                Some(Command::Call { context, method, args, reply }) => {
                    next = Some(CallRequest { context, method, args, reply });
                }
                Some(command) => other = Some(command),
                None => {}
            }
        }
        if let Some((previous, answers)) = landing {
            self.settle_calls(previous, answers).await;
        }
        // A call taken off the queue but not run (the pipeline's bound):
        // it goes first in the next turn.
        match next {
            Some(CallRequest { context, method, args, reply }) => {
                debug_assert!(other.is_none());
                Some(Command::Call { context, method, args, reply })
            }
            None => other,
        }
    }

    /// Run `first` and the calls queued behind it, up to the group bound,
    /// in the open turn; a command that is not a call goes to `other`.
    async fn run_call_group(
        &mut self,
        first: CallRequest,
        commands: &mut mpsc::Receiver<Command>,
        other: &mut Option<Command>,
    ) -> Vec<Answer> {
        let mut answers = Vec::new();
        let mut next = Some(first);
        while let Some(request) = next.take() {
            crate::events::Counters::bump(&self.counters.calls, 1);
            let result = self.call(request.context, &request.method, &request.args).await;
            answers.push((request.reply, result));
            if answers.len() >= self.config.call_group_max {
                break;
            }
            match commands.try_recv() {
                Ok(Command::Call { context, method, args, reply }) => {
                    next = Some(CallRequest { context, method, args, reply });
                }
                Ok(command) => *other = Some(command),
                Err(_) => {}
            }
        }
        answers
    }

    /// Wait for a group's commit to land and answer its calls; whether it
    /// landed.
    async fn settle_calls(&mut self, landing: LandingTurn, answers: Vec<Answer>) -> bool {
        match self.settle_landing(landing).await {
            Ok(()) => {
                crate::events::Counters::bump(&self.counters.call_groups, 1);
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
                true
            }
            Err(error) => {
                fail_calls(answers, &error.to_string());
                false
            }
        }
    }

    /// A client's call: views and mutations only.
    pub(super) async fn call(&mut self, context: Hash, method: &str, args: &[u8]) -> Result<CallReply, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let spec = slot.app.manifest().method(method).ok_or_else(|| NodeError::UnknownMethod(method.to_owned()))?;
        match spec.kind {
            MethodKind::View | MethodKind::Mutate => self.execute(context, method, args, spec.kind, None).await,
            other => {
                Err(NodeError::NotCallable { method: method.to_owned(), kind: format!("{other:?}").to_lowercase() })
            }
        }
    }

    /// Run `method` and, if it changed anything, commit its delta.
    pub(super) async fn execute(
        &mut self,
        context: Hash,
        method: &str,
        input: &[u8],
        kind: MethodKind,
        event_author: Option<PublicKey>,
    ) -> Result<CallReply, NodeError> {
        let now = now_ms();
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        self.not_reloading(context)?;
        let base = slot.replica.write_base(now)?;
        let outcome = self.runtime.execute(
            &slot.app,
            ExecuteRequest {
                context_id: context,
                executor: &slot.identity,
                start_hlc: base.start_hlc,
                kv: slot.replica.store().state(),
                method,
                input,
                kind,
                event_author,
                text_lane: slot.replica.text_lane(),
            },
        )?;
        // What the app logged (`env::log`), for its developer and operators:
        // bounded per call by the runtime's log limits.
        for line in &outcome.logs {
            info!(target: "weft::app", %context, method, "{line}");
        }
        let has_changes = outcome.has_changes();
        let result = match outcome.result {
            CallResult::Ok(result) => result,
            CallResult::AppError(error) => return Err(NodeError::App(error)),
        };
        if !has_changes {
            return Ok(CallReply { result, delta: None, root_hash: slot.replica.root_hash() });
        }
        if let Some(event) = outcome.events.iter().find(|e| weft_sync::is_reserved_event_kind(&e.kind)) {
            return Err(NodeError::ReservedEvent(event.kind.clone()));
        }
        let events =
            outcome.events.into_iter().map(|e| Event { kind: e.kind, data: e.data, handler: e.handler }).collect();
        let write = PreparedWrite {
            token: 0,
            base_version: base.version,
            hlc: base.start_hlc,
            actions: outcome.actions,
            events,
            writes: outcome.writes,
            root_hash: outcome.root_hash,
            last_hlc: outcome.last_hlc,
        };
        let delta = self.commit_write(context, write).await?;
        let root_hash = self.contexts.get(&context).map_or(outcome.root_hash, |slot| slot.replica.root_hash());
        Ok(CallReply { result, delta: Some(delta), root_hash })
    }

    /// Refuse to write to a context quarantined until its reload (its
    /// replica may hold what the store lost).
    fn not_reloading(&self, context: Hash) -> Result<(), NodeError> {
        if !self.reload_waiting.contains(&context) {
            return Ok(());
        }
        let reason = "the context is reloading from disk after a failed commit; try again".to_owned();
        Err(NodeError::Write(WriteError::Store(weft_sync::StoreError::Backend(reason))))
    }

    /// Commit a prepared local write; returns its delta id once durable.
    pub(super) async fn commit_write(&mut self, context: Hash, mut write: PreparedWrite) -> Result<Hash, NodeError> {
        // Membership writes come here without `execute`.
        self.not_reloading(context)?;
        let token = self.next_token();
        write.token = token;
        let results = self.feed(context, Input::LocalWrite(write)).await;
        match results.into_iter().find(|(t, _)| *t == token) {
            Some((_, Ok(id))) => Ok(id),
            Some((_, Err(reason))) => {
                if let weft_sync::WriteError::Store(error) = &reason {
                    warn!(%context, %error, "a write failed on the disk; it is not acknowledged");
                }
                Err(NodeError::Write(reason))
            }
            None => Err(NodeError::UnknownContext(context)),
        }
    }

    /// Commit a write that only carries system events (membership).
    pub(super) async fn commit_events(&mut self, context: Hash, events: Vec<Event>) -> Result<Hash, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let base = slot.replica.write_base(now_ms())?;
        let write = PreparedWrite {
            token: 0,
            base_version: base.version,
            hlc: base.start_hlc,
            actions: Vec::new(),
            events,
            writes: weft_primitives::kv::WriteSet::new(),
            root_hash: slot.replica.root_hash(),
            last_hlc: None,
        };
        self.commit_write(context, write).await
    }
}
