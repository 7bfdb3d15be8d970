//! Connecting nodes over real loopback sockets, and refusing bad starts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Transport, node};
use weft_net::{NetConfig, NetError, NetEvent, Network, peer_id_from_seed};

async fn dialing_connects_both_sides(transport: Transport) {
    let a = node(1, transport).await;
    let mut b = node(2, transport).await;
    let reached = a.net.dial(b.addr.clone()).await.expect("dial");
    assert_eq!(reached, b.peer());
    let a_peer = a.peer();
    b.wait_for("PeerConnected", |e| matches!(e, NetEvent::PeerConnected { peer, .. } if *peer == a_peer).then_some(()))
        .await;
    let on_a: Vec<_> = a.net.peers().await.unwrap().into_iter().map(|p| p.peer).collect();
    let on_b: Vec<_> = b.net.peers().await.unwrap().into_iter().map(|p| p.peer).collect();
    assert_eq!(on_a, vec![b.peer()]);
    assert_eq!(on_b, vec![a.peer()]);
    // Dialing a connected peer again answers at once with the same peer.
    assert_eq!(a.net.dial(b.addr.clone()).await.unwrap(), b.peer());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_connects_both_sides_over_tcp() {
    dialing_connects_both_sides(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_connects_both_sides_over_quic() {
    dialing_connects_both_sides(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_list_each_other_as_peers() {
    let a = node(11, Transport::Tcp).await;
    let b = node(12, Transport::Quic).await;
    let c = node(13, Transport::Tcp).await;
    // a reaches b over QUIC and c over TCP; b reaches c over TCP.
    a.net.dial(b.addr.clone()).await.unwrap();
    a.net.dial(c.addr.clone()).await.unwrap();
    b.net.dial(c.addr.clone()).await.unwrap();
    for (node, others) in [(&a, [&b, &c]), (&b, [&a, &c]), (&c, [&a, &b])] {
        let want: std::collections::BTreeSet<_> = others.iter().map(|n| n.peer()).collect();
        common::eventually("peers() lists both others", || async {
            let got: std::collections::BTreeSet<_> =
                node.net.peers().await.unwrap().into_iter().map(|p| p.peer).collect();
            got == want
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_stable_for_a_seed() {
    let a = node(21, Transport::Tcp).await;
    assert_eq!(a.peer(), peer_id_from_seed(&[21; 32]).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_a_wrong_peer_id_fails() {
    let a = node(31, Transport::Tcp).await;
    let b = node(32, Transport::Tcp).await;
    let wrong = peer_id_from_seed(&[99; 32]).unwrap();
    let listen = b.net.listen_addrs().await.unwrap().remove(0);
    let addr = format!("{listen}/p2p/{wrong}").parse().unwrap();
    assert!(matches!(a.net.dial(addr).await, Err(NetError::Dial { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_listen_addr_is_a_clear_error() {
    let mut config = NetConfig::loopback([41; 32]);
    config.listen_addrs = vec!["127.0.0.1:2428".into()];
    let err = Network::spawn(config).await.unwrap_err();
    assert!(matches!(&err, NetError::BadListenAddr { addr, .. } if addr == "127.0.0.1:2428"), "{err}");
    assert!(err.to_string().contains("127.0.0.1:2428"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_listen_transport_is_a_listen_error() {
    let mut config = NetConfig::loopback([42; 32]);
    config.listen_addrs = vec!["/ip4/127.0.0.1/udp/0".into()];
    assert!(matches!(Network::spawn(config).await, Err(NetError::Listen { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_port_in_use_fails_the_start() {
    let a = node(43, Transport::Quic).await;
    let taken = a.net.listen_addrs().await.unwrap().remove(0);
    let mut config = NetConfig::loopback([44; 32]);
    config.listen_addrs = vec![taken.to_string()];
    assert!(matches!(Network::spawn(config).await, Err(NetError::Listen { .. })));
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let result = poll_without_runtime(Network::spawn(NetConfig::loopback([45; 32])));
    assert!(matches!(result, Err(NetError::NoRuntime)));
}

/// Poll a future to completion on the current thread, outside any tokio runtime.
fn poll_without_runtime<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_network_answers_stopped() {
    let mut a = node(51, Transport::Tcp).await;
    a.net.shutdown().await.unwrap();
    assert!(matches!(a.net.peers().await, Err(NetError::Stopped)));
    // The event stream ends once the swarm task is gone.
    let ended = tokio::time::timeout(common::LIVENESS, async { while a.events.recv().await.is_some() {} }).await;
    assert!(ended.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_port_in_use_fails_the_start() {
    let a = node(46, Transport::Tcp).await;
    let taken = a.net.listen_addrs().await.unwrap().remove(0);
    let mut config = NetConfig::loopback([47; 32]);
    config.listen_addrs = vec![taken.to_string()];
    assert!(matches!(Network::spawn(config).await, Err(NetError::Listen { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_peer_is_dialed_and_kademlia_finds_the_rest() {
    let a = node(61, Transport::Tcp).await;
    let b = node(62, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut c_config = common::config(63, Transport::Tcp);
    c_config.bootstrap_peers = vec![b.addr.to_string()];
    let c = common::start(c_config, Transport::Tcp).await;
    let (a_peer, b_peer) = (a.peer(), b.peer());
    // c was told only of b; the DHT walk through b leads it to a.
    common::eventually("c connects to b and, through the DHT, to a", || async {
        let peers: Vec<_> = c.net.peers().await.unwrap().into_iter().map(|p| p.peer).collect();
        peers.contains(&b_peer) && peers.contains(&a_peer)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_enabled_node_starts() {
    let mut config = common::config(71, Transport::Tcp);
    config.mdns = true;
    let a = common::start(config, Transport::Tcp).await;
    assert!(a.net.peers().await.unwrap().is_empty());
}
