//! Only a member's node is served a context's history: a sync stream must
//! open with a hello signed by a current member for this very session and
//! pair of nodes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Cluster, member_key, set};
use weft_net::{NetConfig, Network};
use weft_node::wire::{NODE_WIRE_VERSION, StreamHello, SyncAccept, sync_accept_digest, sync_hello_digest};
use weft_primitives::{Hash, SigningKey};
use weft_sync::protocol::{PROTOCOL_VERSION, Summary, SyncMessage, SyncRequest};

/// Open a sync stream to node 0 as `signer` and ask for everything; the
/// first answer, or the error that ended the stream.
async fn ask_as(
    cluster: &Cluster,
    context: Hash,
    signer: &SigningKey,
    n: u64,
    digest_n: u64,
) -> Result<SyncMessage, String> {
    let (raw, _events) = Network::spawn(NetConfig::loopback([77; 32])).await.unwrap();
    let target = cluster.node(0).listen_addrs().await.unwrap()[0].clone();
    let peer = raw.dial(target).await.unwrap();
    let opener = weft_net::peer_public_key(&raw.local_peer_id()).unwrap().0;
    let responder = weft_net::peer_public_key(&peer).unwrap().0;
    let digest = sync_hello_digest(&context, digest_n, &opener, &responder);
    let hello = StreamHello::Sync {
        version: NODE_WIRE_VERSION,
        context,
        n,
        member: signer.public_key(),
        signature: signer.sign(digest.as_bytes()),
    };
    let mut stream = raw.open_stream(peer).await.unwrap();
    stream.send(&hello.encode()).await.unwrap();
    let request =
        SyncMessage::SyncRequest(SyncRequest { version: PROTOCOL_VERSION, context, summary: Summary::default() });
    stream.send(&request.encode()).await.unwrap();
    // A served session opens with the responder's proof that it speaks
    // for a member, bound to this session and both nodes.
    let answer = async {
        let accept = SyncAccept::decode(&stream.recv().await.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let digest = sync_accept_digest(&context, n, &opener, &responder);
        accept.member.verify(digest.as_bytes(), &accept.signature).map_err(|e| format!("bad accept: {e}"))?;
        let bytes = stream.recv().await.map_err(|e| e.to_string())?;
        SyncMessage::decode(&bytes).map_err(|e| e.to_string())
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), answer).await;
    let _ = raw.shutdown().await;
    answer.unwrap_or_else(|_| Err("no answer".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_stream_is_served_only_to_a_node_that_speaks_for_a_member() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    set(cluster.node(0), context, "secret", "v").await;
    // A member's signature for this session: served.
    let served = ask_as(&cluster, context, &member_key(&cluster, 1), 5, 5).await;
    assert!(matches!(served, Ok(SyncMessage::SyncReply(_))), "{served:?}");
    // A stranger: closed without a word.
    let stranger = ask_as(&cluster, context, &SigningKey::from_seed([42; 32]), 6, 6).await;
    assert!(stranger.is_err(), "a non-member was served: {stranger:?}");
    // A member's signature replayed for another session: closed.
    let replayed = ask_as(&cluster, context, &member_key(&cluster, 1), 7, 8).await;
    assert!(replayed.is_err(), "a replayed hello was served: {replayed:?}");
    // An unknown context: closed.
    let unknown = ask_as(&cluster, Hash::of(b"no such context"), &member_key(&cluster, 1), 9, 9).await;
    assert!(unknown.is_err(), "{unknown:?}");
}
