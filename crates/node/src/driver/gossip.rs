//! The driver's side of gossip: network events (messages, subscriptions,
//! connections) turned into replica inputs, and our own deltas sealed and
//! published on their context's topic.
//!
//! A gossip message is opened under the group key its tag names and must
//! carry the delta id it claims; one that does not is rejected (gossipsub
//! scores its sender). Every message gets exactly one validation verdict.

use std::collections::BTreeSet;

use tracing::{debug, error};
use weft_net::{NetEvent, PeerId as NetPeer, Validation};
use weft_primitives::Hash;
use weft_sync::Input;

use super::Driver;
use super::topics::Subscription;
use crate::events::Counters;

impl Driver {
    pub(super) async fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Message { topic, data, msg_id, propagation_source, .. } => {
                Counters::bump(&self.counters.gossip_received, 1);
                self.on_gossip(&topic, &data, msg_id, propagation_source).await;
            }
            NetEvent::Subscribed { peer, topic } => self.on_subscribed(peer, topic).await,
            NetEvent::Unsubscribed { peer, topic } => self.on_unsubscribed(peer, &topic).await,
            NetEvent::PeerTopics { peer, topics } => {
                let now: BTreeSet<String> = topics.into_iter().collect();
                for topic in self.topics.topics_of(&peer) {
                    if !now.contains(&topic) {
                        self.on_unsubscribed(peer, &topic).await;
                    }
                }
                for topic in now {
                    if !self.topics.subscribes(&topic, &peer) {
                        self.on_subscribed(peer, topic).await;
                    }
                }
            }
            NetEvent::PeerDisconnected { peer } => {
                self.on_peer_lost(peer);
                self.topics.forget_peer(&peer);
                if let Some(sync_peer) = Self::sync_peer(&peer) {
                    let contexts: Vec<Hash> = self.contexts.keys().copied().collect();
                    for context in contexts {
                        self.feed(context, Input::PeerDown { peer: sync_peer }).await;
                    }
                }
            }
            NetEvent::PeerConnected { peer, addr, outbound } => self.on_peer_connected(peer, &addr, outbound),
            NetEvent::PeerIdentified { peer, listen_addrs } => self.on_peer_identified(peer, listen_addrs),
            NetEvent::ListenAddr(_) => {}
        }
    }

    pub(super) async fn on_gossip(&mut self, topic: &str, data: &[u8], msg_id: Hash, source: NetPeer) {
        let Some(context) = self.topics.context_of(topic) else {
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
            return;
        };
        let (Some(slot), Some(from)) = (self.contexts.get(&context), Self::sync_peer(&source)) else { return };
        // The key tag names the epoch's key; one we do not hold is a newer
        // epoch we have not learnt yet (sync brings the delta) or noise.
        let Some((_, key)) = weft_membership::gossip_key_tag(data).and_then(|tag| slot.keys.by_tag(&tag)) else {
            Counters::bump(&self.counters.gossip_unknown_key, 1);
            debug!(%context, %source, "gossip sealed under a key we do not hold");
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
            return;
        };
        let opened = weft_membership::open_gossip(key, &context, data);
        let (plain, author) = match opened {
            // The message id is the claimed delta id: it must be the real one.
            Ok((claimed, plain)) => match weft_sync::SignedDelta::decode(&plain) {
                Ok(delta) if delta.id == claimed => (plain, delta.author),
                _ => {
                    self.reject_gossip(context, msg_id, source).await;
                    return;
                }
            },
            Err(_) => {
                self.reject_gossip(context, msg_id, source).await;
                return;
            }
        };
        // A member that left or was removed reaches us through members
        // only (its deltas on an old causal point stay valid, see
        // `weft_sync::membership`); its own gossip is dropped.
        if slot.replica.member_set().has_departed(&author) {
            debug!(%context, %source, ?author, "gossip by a departed member dropped");
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
            return;
        }
        self.next_message += 1;
        let message = self.next_message;
        self.gossip_waiting.insert(message, (msg_id, source));
        self.feed(context, Input::GossipReceived { from, message, bytes: plain }).await;
        // The replica always answers in the same turn; never leak a slot.
        if self.gossip_waiting.remove(&message).is_some() {
            let _ = self.net.report_validation(msg_id, source, Validation::Ignore).await;
        }
    }

    pub(super) async fn reject_gossip(&mut self, context: Hash, msg_id: Hash, source: NetPeer) {
        Counters::bump(&self.counters.deltas_rejected, 1);
        Counters::bump(&self.counters.deltas_rejected_by[crate::events::UNOPENED_GOSSIP], 1);
        Counters::bump(&self.counters.penalties, 1);
        debug!(%context, %source, "gossip that does not open under its key or lies about its id");
        let _ = self.net.report_validation(msg_id, source, Validation::Reject).await;
    }

    pub(super) async fn on_subscribed(&mut self, peer: NetPeer, topic: String) {
        if let Subscription::Served(context) = self.topics.subscribe(peer, topic) {
            self.subscriber_seen(context, peer).await;
        }
    }

    pub(super) async fn on_unsubscribed(&mut self, peer: NetPeer, topic: &str) {
        if let (Some(context), Some(peer)) = (self.topics.unsubscribe(peer, topic), Self::sync_peer(&peer)) {
            self.feed(context, Input::PeerDown { peer }).await;
        }
    }

    /// Register an opened context's topic and tell its replica about the
    /// member nodes already subscribed (proven ones at once, the others
    /// once they prove it).
    pub(crate) async fn attach_topic(&mut self, context: Hash, topic: String) {
        for peer in self.topics.serve(topic, context) {
            self.subscriber_seen(context, peer).await;
        }
    }

    /// Whether `peer` is subscribed to `context`'s topic.
    pub(crate) fn subscribed(&self, context: &Hash, peer: &NetPeer) -> bool {
        self.contexts.get(context).is_some_and(|slot| self.topics.subscribes(&slot.topic, peer))
    }

    pub(crate) fn detach_topic(&mut self, topic: &str) {
        self.topics.stop_serving(topic);
    }

    pub(crate) async fn publish(&mut self, context: Hash, id: Hash, bytes: &[u8]) {
        if self.unpublished == Some(context) {
            return;
        }
        let Some(slot) = self.contexts.get(&context) else { return };
        let Some((_, key)) = slot.keys.newest() else {
            error!(%context, "no group key held; anti-entropy will carry the delta");
            return;
        };
        let sealed = match weft_membership::seal_gossip(key, &context, &id, bytes) {
            Ok(sealed) => sealed,
            Err(error) => {
                error!(%context, %error, "sealing a delta for gossip failed; anti-entropy will carry it");
                return;
            }
        };
        let topic = slot.topic.clone();
        Counters::bump(&self.counters.gossip_published, 1);
        // Whatever the outcome (no mesh peers, queues full), the repair path
        // carries the delta: gossip is only the fast path.
        if let Err(error) = self.net.publish(&topic, sealed).await {
            debug!(%context, %error, "publish failed");
        }
    }
}
