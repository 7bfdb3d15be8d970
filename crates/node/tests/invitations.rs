//! Invitations over real nodes: one admits one identity, and a revoked one
//! admits nobody. Before, an open invitation was a reusable bearer
//! credential that could not be withdrawn.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{CONVERGE_TIMEOUT, Cluster, eventually};
use weft_node::NodeError;

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
