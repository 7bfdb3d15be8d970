//! docs/testing.md S12, the sync part: a node that was never invited
//! subscribes to a context's topic and plays along with every stream a
//! member's node opens to it. It receives none of the context's deltas,
//! never becomes a sync peer, and only ever sees our question.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, set};
use weft_net::{NetConfig, Network};
use weft_node::records::topic_of;
use weft_node::wire::{DirectoryReply, StreamHello, SyncAccept};
use weft_primitives::SigningKey;
use weft_sync::protocol::{Summary, SyncMessage, SyncReply};

/// What the stranger got from the member's node.
#[derive(Debug, Default)]
struct Haul {
    sync_hellos: u32,
    directory_hellos: u32,
    delta_pages: u32,
    delta_bytes: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_on_the_topic_receives_no_delta() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    for i in 0..20 {
        set(cluster.node(0), context, &format!("secret-{i}"), "v").await;
    }

    let (stranger, _events) = Network::spawn(NetConfig::loopback([88; 32])).await.unwrap();
    let mut incoming = stranger.incoming_streams().unwrap();
    let target = cluster.node(0).listen_addrs().await.unwrap()[0].clone();
    stranger.dial(target).await.unwrap();
    stranger.subscribe(&topic_of(&context)).await.unwrap();
    let impostor = SigningKey::from_seed([66; 32]);

    // Serve whatever node 0 opens to us as a hostile node would, until a few
    // seconds after the first stream (which proves node 0 saw us).
    let mut haul = Haul::default();
    let mut first_seen: Option<Instant> = None;
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let left = match first_seen {
            Some(at) => (at + Duration::from_secs(5)).saturating_duration_since(Instant::now()),
            None => give_up.saturating_duration_since(Instant::now()),
        };
        if left.is_zero() {
            break;
        }
        let Ok(Some(mut stream)) = tokio::time::timeout(left, incoming.next()).await else { continue };
        first_seen.get_or_insert_with(Instant::now);
        let Ok(first) = stream.recv().await else { continue };
        match StreamHello::decode(&first) {
            Ok(StreamHello::Sync { .. }) => {
                haul.sync_hellos += 1;
                // Claim to be a member and to hold nothing.
                let accept = SyncAccept { member: impostor.public_key(), signature: impostor.sign(b"anything") };
                let _ = stream.send(&accept.encode()).await;
                let reply = SyncMessage::SyncReply(SyncReply { summary: Summary::default(), has_your_heads: false });
                let _ = stream.send(&reply.encode()).await;
                while let Ok(Ok(bytes)) = tokio::time::timeout(Duration::from_secs(3), stream.recv()).await {
                    if let Ok(SyncMessage::Deltas(page)) = SyncMessage::decode(&bytes) {
                        haul.delta_pages += 1;
                        haul.delta_bytes += page.deltas.iter().map(Vec::len).sum::<usize>();
                    }
                }
            }
            Ok(StreamHello::Directory { .. }) => {
                haul.directory_hellos += 1;
                let forged = DirectoryReply::Granted {
                    member: impostor.public_key(),
                    signature: impostor.sign(b"anything"),
                    entries: Vec::new(),
                };
                let _ = stream.send(&forged.encode()).await;
            }
            _ => {}
        }
    }
    assert!(first_seen.is_some(), "node 0 never opened a stream to the subscriber: the test proves nothing");
    assert_eq!((haul.delta_pages, haul.delta_bytes), (0, 0), "the stranger received deltas: {haul:?}");
    assert_eq!(haul.sync_hellos, 0, "node 0 treated the stranger as a sync peer: {haul:?}");
    let stranger_key = weft_net::peer_public_key(&stranger.local_peer_id()).unwrap().0;
    let info = cluster.node(0).context(context).await.unwrap();
    assert!(!info.peers.contains(&stranger_key), "the stranger became a sync peer");
    assert!(info.peers.contains(&weft_net::peer_public_key(&cluster.node(1).peer_id()).unwrap().0));
    let _ = stranger.shutdown().await;
}
