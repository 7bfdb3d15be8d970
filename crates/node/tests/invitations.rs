//! Invitations over real nodes: one admits one identity, and a revoked one
//! admits nobody. Before, an open invitation was a reusable bearer
//! credential that could not be withdrawn. A join proof counts only in the
//! exchange whose fresh challenge it signs, between the two nodes it names:
//! before, a recorded join could be replayed.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, eventually};
use weft_membership::{Invitation, JoinBinding, JoinProof};
use weft_net::{NetConfig, Network};
use weft_node::NodeError;
use weft_node::wire::{JoinChallenge, JoinHello, JoinReply, NODE_WIRE_VERSION, StreamHello};
use weft_primitives::SigningKey;

fn refused_because(result: Result<weft_node::ContextInfo, NodeError>, why: &str) {
    match result {
        Err(NodeError::JoinRefused(reason)) => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected a refusal ({why}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_invitation_admits_one_identity_and_a_revoked_one_nobody() {
    let cluster = Cluster::start(3).await;
    let app = {
        let mut app = None;
        for node in &cluster.nodes {
            app = Some(node.handle.install_application(weft_apps::KV_STORE.to_vec()).await.unwrap().id);
        }
        app.unwrap()
    };
    let context = cluster.node(0).create_context(app, b"{}".to_vec()).await.unwrap().id;

    // Anyone holding it may use it: node 1 does first.
    let open = cluster.node(0).invite(context, None, None).await.unwrap();
    assert_eq!(cluster.node(1).join(&open).await.unwrap().id, context);
    // Node 2's identity is refused with the same one.
    refused_because(cluster.node(2).join(&open).await, "already used");
    assert!(!cluster.node(0).context(context).await.unwrap().members.contains(&cluster.node(2).identity()));

    // A fresh invitation for node 2, revoked (by its text) before use.
    let revoked = cluster.node(0).invite(context, Some(cluster.node(2).identity()), None).await.unwrap();
    cluster.node(0).revoke_invitation(context, &revoked).await.unwrap();
    refused_because(cluster.node(2).join(&revoked).await, "revoked");

    // The revocation travels with the history: node 0 revokes an invitation
    // node 1 signed, and node 1 (whom the joiner asks) refuses it.
    let by_other = cluster.node(1).invite(context, Some(cluster.node(2).identity()), None).await.unwrap();
    cluster.node(0).revoke_invitation(context, &by_other).await.unwrap();
    let seen = eventually(CONVERGE_TIMEOUT, || async {
        let (a, b) = (cluster.node(0).context(context).await.unwrap(), cluster.node(1).context(context).await.unwrap());
        (a.root_hash == b.root_hash && a.heads == b.heads).then_some(())
    })
    .await;
    assert!(seen.is_some(), "node 1 never received node 0's revocation");
    refused_because(cluster.node(2).join(&by_other).await, "revoked");

    // A fresh one still works: the refusals were about those invitations.
    let fresh = cluster.node(0).invite(context, Some(cluster.node(2).identity()), None).await.unwrap();
    assert_eq!(cluster.node(2).join(&fresh).await.unwrap().id, context);
}

/// One join exchange with node 0 over a raw stream: send the hello, take
/// the challenge, send what `prove` makes of it, return the reply.
async fn exchange(
    joiner: &weft_net::NetHandle,
    inviter: weft_net::PeerId,
    invitation: &Invitation,
    prove: impl FnOnce(JoinChallenge) -> JoinProof,
) -> (JoinChallenge, JoinReply) {
    let mut stream = joiner.open_stream(inviter).await.unwrap();
    let hello = StreamHello::Join(Box::new(JoinHello { version: NODE_WIRE_VERSION, invitation: invitation.clone() }));
    stream.send(&hello.encode()).await.unwrap();
    let challenge = JoinChallenge::decode(&stream.recv().await.unwrap()).unwrap();
    stream.send(&prove(challenge).encode()).await.unwrap();
    (challenge, JoinReply::decode(&stream.recv().await.unwrap()).unwrap())
}

fn refused_as_bad_proof(reply: &JoinReply, case: &str) {
    match reply {
        JoinReply::Refused { reason } => assert!(reason.contains("join proof"), "{case}: {reason}"),
        JoinReply::Accepted(_) => panic!("{case}: a join proof outside its exchange was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_proof_counts_in_its_own_exchange_only() {
    let cluster = Cluster::start(1).await;
    let context = cluster.shared_context(weft_apps::KV_STORE).await;
    let text = cluster.node(0).invite(context, None, None).await.unwrap();
    let invitation = Invitation::from_text(&text).unwrap();

    let (joiner, _events) = Network::spawn(NetConfig::loopback([77; 32])).await.unwrap();
    let joiner_node = weft_net::peer_public_key(&joiner.local_peer_id()).unwrap().0;
    let inviter = joiner.dial(cluster.node(0).listen_addrs().await.unwrap()[0].clone()).await.unwrap();
    let identity = SigningKey::from_seed([55; 32]);
    let bound = |challenge: [u8; 32], joiner_node: [u8; 32]| JoinBinding {
        challenge,
        joiner_node,
        inviter_node: invitation.inviter_node,
    };

    // A proof made for another challenge (a recorded exchange) is refused.
    let (_, reply) = exchange(&joiner, inviter, &invitation, |_| {
        JoinProof::create(&identity, &invitation, &bound([1; 32], joiner_node))
    })
    .await;
    refused_as_bad_proof(&reply, "another challenge");
    // So is one for this challenge made by (or for) another node.
    let (_, reply) = exchange(&joiner, inviter, &invitation, |c| {
        JoinProof::create(&identity, &invitation, &bound(c.challenge, [9; 32]))
    })
    .await;
    refused_as_bad_proof(&reply, "another joining node");
    assert!(!cluster.node(0).context(context).await.unwrap().members.contains(&identity.public_key()));

    // The genuine exchange admits the identity...
    let mut accepted_proof = None;
    let (first, reply) = exchange(&joiner, inviter, &invitation, |c| {
        let proof = JoinProof::create(&identity, &invitation, &bound(c.challenge, joiner_node));
        accepted_proof = Some(proof.clone());
        proof
    })
    .await;
    assert!(matches!(reply, JoinReply::Accepted(_)), "the genuine join was refused: {reply:?}");
    assert!(cluster.node(0).context(context).await.unwrap().members.contains(&identity.public_key()));
    // ...and replaying its proof in a new exchange is refused: the challenge is fresh.
    let (second, reply) = exchange(&joiner, inviter, &invitation, |_| accepted_proof.clone().unwrap()).await;
    assert_ne!(first, second, "two exchanges got the same challenge");
    refused_as_bad_proof(&reply, "a replayed proof");
}
