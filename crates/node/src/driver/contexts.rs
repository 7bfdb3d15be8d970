//! Contexts on this node: install applications, create a context, open a
//! persisted one (at start, after create or join), invite, leave, describe.

use std::sync::Arc;

use tracing::{info, warn};
use weft_membership::{GroupKey, Invitation};
use weft_primitives::{Hash, PublicKey};
use weft_runtime::MethodKind;
use weft_store::{CONTEXTS, META};
use weft_sync::{Event, KeyEpoch, MembershipChange, Replica, ReplicaParams};

use super::{ContextSlot, Driver, GroupKeys, JobQueue, now_ms, random_u64};
use crate::NodeError;
use crate::command::{AppInfo, ContextInfo};
use crate::records::{self, AppRecord, ContextRecord, context_id, genesis_of, topic_of};
use crate::replica_store::{DiskReplicaStore, JobInbox};

impl Driver {
    pub(super) fn install_app(&mut self, module: &[u8]) -> Result<AppInfo, NodeError> {
        let app = self.runtime.load(module)?;
        let id = app.id();
        let record = AppRecord { name: app.manifest().name.clone(), module: module.to_vec() };
        self.store.write(|txn| records::put_application(txn, id, &record))?;
        info!(application = %id, name = %record.name, "application installed");
        Ok(app_info(id, &app, module.len()))
    }

    pub(super) fn list_apps(&self) -> Result<Vec<AppInfo>, NodeError> {
        records::list_applications(&self.store)?
            .into_iter()
            .map(|(id, record)| {
                let app = self.runtime.load(&record.module)?;
                Ok(app_info(id, &app, record.module.len()))
            })
            .collect()
    }

    /// Uninstall an application no open context runs.
    pub(super) fn remove_app(&mut self, application: Hash) -> Result<(), NodeError> {
        if records::get_application(&self.store, &application)?.is_none() {
            return Err(NodeError::UnknownApplication(application));
        }
        if let Some(slot) = self.contexts.values().find(|slot| slot.record.application == application) {
            return Err(NodeError::ApplicationInUse { application, context: slot.record.id });
        }
        self.store.write(|txn| txn.delete(weft_store::APPLICATIONS, &application).map(|_| ()))?;
        info!(%application, "application removed");
        Ok(())
    }

    /// Create a context of an installed application: we are its first
    /// member; `init` runs and commits the first delta.
    pub(super) async fn create_context(
        &mut self,
        application: Hash,
        init_args: Vec<u8>,
    ) -> Result<ContextInfo, NodeError> {
        let module = records::get_application(&self.store, &application)?
            .ok_or(NodeError::UnknownApplication(application))?
            .module;
        let app = self.runtime.load(&module)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| NodeError::Config(format!("no randomness: {e}")))?;
        let creator = self.identity.public_key();
        let id = context_id(&creator, &application, &nonce);
        let group_key = GroupKey::generate()?;
        let record = ContextRecord {
            id,
            application,
            creator,
            nonce,
            identity: creator,
            group_key: *group_key.as_bytes(),
            since_ms: now_ms(),
        };
        let identity = self.identity.clone();
        self.store.write(|txn| {
            records::put_identity(txn, id, &identity)?;
            records::put_group_key(txn, id, KeyEpoch::GENESIS, group_key.as_bytes())?;
            records::put_context(txn, &record)
        })?;
        self.open_context(record).await?;
        if let Some(init) = app.manifest().init().map(|spec| spec.name.clone())
            && let Err(error) = self.execute(id, &init, &init_args, MethodKind::Init, None).await
        {
            // A context whose init failed is not created.
            self.close_context(id).await;
            let _ = self.store.write(|txn| txn.delete(CONTEXTS, &id).map(|_| ()));
            return Err(error);
        }
        info!(context = %id, %application, "context created");
        self.context_info(id)
    }

    /// Start serving a persisted context.
    pub(crate) async fn open_context(&mut self, record: ContextRecord) -> Result<(), NodeError> {
        let id = record.id;
        let slot = self.load_context(record)?;
        let topic = slot.topic.clone();
        self.net.subscribe(&topic).await?;
        let view = crate::views::ViewTarget {
            app: slot.app.clone(),
            identity: slot.identity.clone(),
            text_lane: slot.replica.text_lane(),
        };
        self.contexts.insert(id, slot);
        self.reschedule(id);
        self.directory_refresh.track(id, now_ms(), random_u64());
        self.views.insert(id, view);
        // Rotations applied before a restart may still owe us a key.
        self.keys_dirty.insert(id);
        self.resume_leaving(id)?;
        self.attach_topic(id, topic).await;
        Ok(())
    }

    /// Build a context's slot from the store: its replica (applied and
    /// pending deltas, members) and its owed handler jobs.
    pub(crate) fn load_context(&self, record: ContextRecord) -> Result<ContextSlot, NodeError> {
        let id = record.id;
        let module = records::get_application(&self.store, &record.application)?
            .ok_or(NodeError::UnknownApplication(record.application))?
            .module;
        let app = self.runtime.load(&module)?;
        let identity = records::get_identity(&self.store, id, &record.identity)?;
        let inbox = JobInbox::default();
        let handlers = app
            .manifest()
            .methods
            .iter()
            .filter(|method| method.kind == MethodKind::Handler)
            .map(|method| method.name.clone())
            .collect();
        let (disk, owed) = DiskReplicaStore::open(
            self.store.clone(),
            id,
            identity.public_key(),
            inbox.clone(),
            handlers,
            self.config.handler_jobs_held_max,
            self.state_cache.clone(),
            self.turn.clone(),
        )?;
        let now = now_ms();
        let replica = Replica::new(
            ReplicaParams {
                context: id,
                genesis: genesis_of(&id),
                local_peer: self.local_peer,
                identity: identity.clone(),
                members: vec![record.creator],
                config: self.config.sync.clone(),
                rng_seed: random_u64(),
                store: disk,
            },
            now,
        )
        .map_err(|e| NodeError::Restore { context: id, reason: e.to_string() })?;
        if owed.total > 0 {
            info!(context = %id, jobs = owed.total, "resuming handler jobs owed before the restart");
        }
        let jobs = JobQueue::new(owed, self.config.handler_jobs_held_max, now);
        let keys = GroupKeys::restore(records::group_keys(&self.store, id)?, record.group_key);
        Ok(ContextSlot { record, identity, app: Arc::clone(&app), replica, keys, topic: topic_of(&id), jobs, inbox })
    }

    /// Open every persisted context (at start). A context that cannot be
    /// opened is logged and skipped, so one corrupt context does not take
    /// the node down.
    pub(crate) async fn open_all(&mut self) -> Result<(), NodeError> {
        for record in records::list_contexts(&self.store)? {
            let id = record.id;
            if let Err(error) = self.open_context(record).await {
                warn!(context = %id, %error, "could not open a persisted context; skipped");
            }
        }
        Ok(())
    }

    async fn close_context(&mut self, context: Hash) {
        self.views.remove(&context);
        self.wakeups_forget(context);
        self.directory_refresh.forget(&context);
        if let Some(mut slot) = self.contexts.remove(&context) {
            // Commits staged in the open turn land now: the turn's end
            // no longer finds the context.
            if slot.replica.store().has_staged() {
                let sealed = slot.replica.store_mut().seal();
                match self.store.write(|txn| sealed.write(txn)) {
                    Ok(()) => slot.replica.store_mut().sealed_landed(),
                    Err(error) => warn!(%context, %error, "writing a closing context's last commits failed"),
                }
            }
            self.detach_topic(&slot.topic);
            let _ = self.net.unsubscribe(&slot.topic).await;
        }
    }

    pub(super) async fn invite(
        &mut self,
        context: Hash,
        invitee: Option<PublicKey>,
        valid_for_ms: u64,
    ) -> Result<String, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let identity = slot.identity.clone();
        // Where the joiner should dial: announced addresses when configured.
        let addrs = self
            .net
            .advertised_addrs()
            .await?
            .iter()
            .filter_map(|a| crate::peers::dialable(&a.to_string()))
            .take(weft_membership::INVITATION_ADDRS_MAX)
            .collect();
        let expires_ms = now_ms().saturating_add(valid_for_ms);
        let invitation = Invitation::create(&identity, context, invitee, expires_ms, self.local_peer.0, addrs)?;
        Ok(invitation.to_text())
    }

    /// Revoke an invitation: a signed delta records its id, after which no
    /// member's node admits anyone with it.
    pub(super) async fn revoke_invitation(&mut self, context: Hash, invitation: Hash) -> Result<(), NodeError> {
        if !self.contexts.contains_key(&context) {
            return Err(NodeError::UnknownContext(context));
        }
        self.commit_events(context, vec![Event::membership(MembershipChange::Revoke { invitation })]).await?;
        info!(%context, %invitation, "invitation revoked");
        Ok(())
    }

    /// Leave: a signed delta says so. The node keeps serving the context
    /// (syncing with members' nodes every [`LEAVE_RETRY_MS`]) until a
    /// member's node holds the `Leave`, then stops serving it (its data
    /// stays on disk): a `Leave` made while no member is reachable is not
    /// lost. The state survives a restart (a `META` marker).
    pub(super) async fn leave(&mut self, context: Hash) -> Result<(), NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let member = slot.identity.public_key();
        // The Leave travels by sync only, not gossip: a member's node that
        // got it by gossip would refuse our next session (we are no longer
        // a member there), and the session that delivers it is our proof.
        self.unpublished = Some(context);
        let committed = self.commit_events(context, vec![Event::membership(MembershipChange::Leave { member })]).await;
        self.unpublished = None;
        let delta = committed?;
        self.store.write(|txn| txn.put(META, &leaving_key(&context), &delta.0.to_vec()))?;
        self.leaving.insert(context, (delta, 0, now_ms()));
        info!(%context, "left the context; serving it until a member's node holds the Leave");
        self.continue_leaving().await;
        Ok(())
    }

    /// Resume a leave interrupted by a restart.
    fn resume_leaving(&mut self, context: Hash) -> Result<(), NodeError> {
        if let Some(bytes) = self.store.read()?.get(META, &leaving_key(&context))? {
            let delta = <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| NodeError::Restore { context, reason: "leaving marker is not 32 bytes".into() })?;
            self.leaving.insert(context, (Hash(delta), 0, now_ms()));
        }
        Ok(())
    }

    /// Finish the leaves a member's node now holds; sync the others again.
    pub(super) async fn continue_leaving(&mut self) {
        let now = now_ms();
        let leaving: Vec<(Hash, (Hash, u64, u64))> = self.leaving.iter().map(|(c, s)| (*c, *s)).collect();
        for (context, (delta, next_try_ms, since_ms)) in leaving {
            let Some(slot) = self.contexts.get(&context) else {
                self.leaving.remove(&context);
                continue;
            };
            // With nobody left to tell, the Leave is done once durable.
            let alone = slot.replica.members().next().is_none();
            // A member's node that got the Leave some other way refuses our
            // sessions (we are no longer a member there), so no proof ever
            // comes: with members' nodes connected for a grace period, stop.
            // The grace period counts from when a member's node is reachable.
            let reachable = slot.replica.peers().next().is_some();
            let since_ms = if reachable { since_ms } else { now };
            let graced = reachable && now.saturating_sub(since_ms) >= LEAVE_GRACE_MS;
            if alone || graced || slot.replica.held_by_a_peer(&delta) {
                if let Err(error) = self.finish_leave(context).await {
                    warn!(%context, %error, "could not finish leaving; retrying");
                }
                continue;
            }
            let due = now >= next_try_ms;
            let next_try_ms = if due { now.saturating_add(LEAVE_RETRY_MS) } else { next_try_ms };
            self.leaving.insert(context, (delta, next_try_ms, since_ms));
            if due {
                self.feed(context, weft_sync::Input::SyncNow { peer: None }).await;
            }
        }
    }

    async fn finish_leave(&mut self, context: Hash) -> Result<(), NodeError> {
        self.store.write(|txn| {
            txn.delete(CONTEXTS, &context)?;
            txn.delete(META, &leaving_key(&context)).map(|_| ())
        })?;
        self.leaving.remove(&context);
        self.close_context(context).await;
        self.forget_context_peers(&context);
        info!(%context, "a member's node holds our Leave; stopped serving the context");
        Ok(())
    }

    pub(crate) fn context_info(&self, context: Hash) -> Result<ContextInfo, NodeError> {
        let slot = self.contexts.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let replica = &slot.replica;
        Ok(ContextInfo {
            id: context,
            application: slot.record.application,
            identity: slot.identity.public_key(),
            members: replica.members().copied().collect(),
            root_hash: replica.root_hash(),
            heads: replica.heads(),
            applied: replica.applied_count(),
            pending: replica.dag().pending_count() as u64,
            handler_jobs: slot.jobs.len(),
            peers: replica.peers().map(|p| p.0).collect(),
            member_nodes_known: self.book.count_serving(&context),
            stats: replica.stats(),
        })
    }
}

fn app_info(id: Hash, app: &weft_runtime::App, size: usize) -> AppInfo {
    let manifest = app.manifest();
    AppInfo {
        id,
        name: manifest.name.clone(),
        methods: manifest.methods.iter().map(|m| (m.name.clone(), format!("{:?}", m.kind).to_lowercase())).collect(),
        size,
    }
}

/// How often a leaving node syncs again until a member's node holds its
/// `Leave`.
pub(crate) const LEAVE_RETRY_MS: u64 = 2_000;

/// How long a leaving node with members' nodes connected waits for the
/// proof before it stops serving anyway (less than `LEAVE_WAIT`).
pub(crate) const LEAVE_GRACE_MS: u64 = 6_000;

/// The `META` key marking a context we are leaving (value: the `Leave`).
fn leaving_key(context: &Hash) -> String {
    format!("node.leaving.{}", context.to_hex())
}
