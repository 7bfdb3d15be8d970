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
//! [`NodeConfig::call_group_max`]: crate::NodeConfig::call_group_max

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use weft_runtime::{CallResult, ExecuteRequest, MethodKind};
use weft_sync::{Event, Input, PreparedWrite, ReplicaStore, WriteError};

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

impl Driver {
    /// Run `first` and every call queued behind it (up to the group bound)
    /// as one group commit; see the module doc. Returns the first command
    /// taken off the queue that is not a call, for the caller to run next.
    pub(super) async fn on_calls(
        &mut self,
        first: CallRequest,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Option<Command> {
        self.begin_unflushed();
        let mut answers = Vec::new();
        let mut next = Some(first);
        let mut other = None;
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
                Ok(command) => other = Some(command),
                Err(_) => {}
            }
        }
        match self.end_unflushed().await {
            Ok(()) => {
                crate::events::Counters::bump(&self.counters.call_groups, 1);
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                for (reply, _) in answers {
                    let reason = weft_sync::StoreError::Backend(format!("making the call durable: {error}"));
                    let _ = reply.send(Err(NodeError::Write(WriteError::Store(reason))));
                }
            }
        }
        other
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
