//! Helpers for the loopback tests: start nodes on one transport, wait for
//! events with a generous liveness bound (never a timing assertion).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::sync::mpsc;
use weft_net::{Multiaddr, NetConfig, NetEvent, NetHandle, Network, PeerId};

/// Upper bound for anything a test waits for; only liveness, never timing.
pub const LIVENESS: Duration = Duration::from_secs(30);

/// Which transport a node listens on.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    pub fn listen_addr(self) -> &'static str {
        match self {
            Transport::Tcp => "/ip4/127.0.0.1/tcp/0",
            Transport::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        }
    }

    fn matches(self, addr: &Multiaddr) -> bool {
        let text = addr.to_string();
        match self {
            Transport::Tcp => text.contains("/tcp/"),
            Transport::Quic => text.contains("/quic-v1"),
        }
    }
}

pub struct Node {
    pub net: NetHandle,
    pub events: mpsc::Receiver<NetEvent>,
    /// Where to dial this node, with `/p2p/<peer id>`.
    pub addr: Multiaddr,
}

impl Node {
    pub fn peer(&self) -> PeerId {
        self.net.local_peer_id()
    }

    /// Wait until `pick` returns `Some` for an event; other events are skipped.
    pub async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&NetEvent) -> Option<T>) -> T {
        let wait = async {
            while let Some(event) = self.events.recv().await {
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
            panic!("event stream ended while waiting for {what}");
        };
        match tokio::time::timeout(LIVENESS, wait).await {
            Ok(found) => found,
            Err(_) => panic!("no {what} within {LIVENESS:?}"),
        }
    }

    pub async fn wait_subscribed(&mut self, peer: PeerId, topic: &str) {
        let topic = topic.to_owned();
        self.wait_for("subscription", |e| match e {
            NetEvent::Subscribed { peer: p, topic: t } if *p == peer && *t == topic => Some(()),
            _ => None,
        })
        .await
    }

    /// The next gossip message: (data, msg_id, propagation_source).
    pub async fn next_message(&mut self) -> (Vec<u8>, weft_primitives::Hash, PeerId) {
        self.wait_for("gossip message", |e| match e {
            NetEvent::Message { data, msg_id, propagation_source, .. } => {
                Some((data.clone(), *msg_id, *propagation_source))
            }
            _ => None,
        })
        .await
    }
}

pub fn config(seed: u8, transport: Transport) -> NetConfig {
    let mut config = NetConfig::loopback([seed; 32]);
    config.listen_addrs = vec![transport.listen_addr().into()];
    config
}

pub async fn start(config: NetConfig, transport: Transport) -> Node {
    let (net, events) = Network::spawn(config).await.expect("network starts");
    let addrs = net.listen_addrs().await.expect("listen addrs");
    let listen = addrs.into_iter().find(|a| transport.matches(a)).expect("an address on the transport");
    let addr: Multiaddr = format!("{listen}/p2p/{}", net.local_peer_id()).parse().expect("p2p address");
    Node { net, events, addr }
}

pub async fn node(seed: u8, transport: Transport) -> Node {
    start(config(seed, transport), transport).await
}

/// Poll `check` every 50 ms until it holds, within [`LIVENESS`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let poll = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(LIVENESS, poll).await.is_err() {
        panic!("{what} did not happen within {LIVENESS:?}");
    }
}
