//! Event handlers on real nodes: only non-authors run them, at least once,
//! and a failing handler is retried, never lost.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{CONVERGE_TIMEOUT, Cluster, call, eventually, member_key};
use serde_json::json;
use weft_primitives::Hlc;
use weft_sync::{Event, SignedDelta};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_from_one_node_run_the_handler_on_every_other_node_never_on_the_author() {
    const N: u64 = 20;
    let cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    for n in 0..N {
        call(cluster.node(0), context, "trigger", json!({ "note": format!("t{n}") })).await;
    }
    // Each of the two other nodes handles each trigger once; the shared
    // counter therefore reaches 2N everywhere.
    let counted = eventually(CONVERGE_TIMEOUT, || async {
        for i in 0..3 {
            if call(cluster.node(i), context, "count", json!({})).await != json!(2 * N) {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(counted.is_some(), "handlers did not all run");
    cluster.converged(context).await;
    let runs: Vec<u64> = futures_runs(&cluster).await;
    assert_eq!(runs, vec![0, N, N], "handler runs per node (author first)");
    for i in 0..3 {
        assert_eq!(call(cluster.node(i), context, "triggers", json!({})).await, json!(N));
    }
    // The handlers learned who triggered (`env::event_author`).
    let author: String = cluster.node(0).identity().0.iter().map(|byte| format!("{byte:02x}")).collect();
    for i in 0..3 {
        assert_eq!(call(cluster.node(i), context, "last_triggered_by", json!({})).await, json!(author), "node {i}");
    }
}

/// A delta that owes a handler job is, from the moment it is applied, either
/// owed (counted in the context's `handler_jobs`) or already handled: a job
/// must never sit unseen until some later delta happens to arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_applied_trigger_is_owed_or_handled_at_once() {
    let cluster = Cluster::start_with(2, common::without_anti_entropy).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    cluster.converged(context).await;
    let before = cluster.node(1).context(context).await.unwrap().applied;
    call(cluster.node(0), context, "trigger", json!({ "note": "once" })).await;
    // The first look at node 1 that shows the delta applied must show its
    // job owed or run (one driver answer: applied and owed are consistent).
    let seen = eventually(CONVERGE_TIMEOUT, || async {
        let info = cluster.node(1).context(context).await.unwrap();
        (info.applied > before).then_some(info.handler_jobs)
    })
    .await;
    let Some(owed) = seen else { panic!("node 1 never applied the trigger") };
    let ran = cluster.node(1).stats().await.unwrap().handler_runs;
    assert!(owed + ran >= 1, "the trigger was applied on node 1 but its handler job is neither owed nor run");
}

async fn futures_runs(cluster: &Cluster) -> Vec<u64> {
    let mut runs = Vec::new();
    for i in 0..cluster.nodes.len() {
        runs.push(cluster.node(i).stats().await.unwrap().handler_runs);
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handlers_owed_at_a_restart_run_after_it() {
    const N: u64 = 30;
    let mut cluster = Cluster::start(3).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    for n in 0..N {
        call(cluster.node(0), context, "trigger", json!({ "note": format!("t{n}") })).await;
        if n == 5 {
            // Node 2 goes down while events keep coming: some jobs are owed
            // on its disk, others arrive with catch-up after the restart.
            cluster.stop(2).await;
        }
    }
    cluster.restart(2).await;
    let counted = eventually(CONVERGE_TIMEOUT, || async {
        let count = call(cluster.node(2), context, "count", json!({})).await;
        (count == json!(2 * N)).then_some(())
    })
    .await;
    assert!(counted.is_some(), "node 2's handlers did not all run after its restart");
    cluster.converged(context).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_owing_more_jobs_than_it_holds_runs_every_one() {
    const N: u64 = 60;
    let mut cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    cluster.stop(1).await;
    for n in 0..N {
        call(cluster.node(0), context, "trigger", json!({ "note": format!("t{n}") })).await;
    }
    // Node 1 catches up on all N at once but holds at most 4 jobs in
    // memory: the rest wait on disk and are read back as these run.
    cluster.restart_with(1, |config| config.handler_jobs_held_max = 4).await;
    let counted = eventually(CONVERGE_TIMEOUT, || async {
        let count = call(cluster.node(1), context, "count", json!({})).await;
        (count == json!(N)).then_some(())
    })
    .await;
    assert!(counted.is_some(), "node 1 did not run every handler: {:?}", cluster.node(1).stats().await);
    // The run counter moves just after a run's commit, which a view (the
    // count above) may already see: wait for it, then check it exactly.
    let stats = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(1).stats().await.unwrap();
        (stats.handler_runs >= N).then_some(stats)
    })
    .await
    .expect("the run counter catches up with the runs the count saw");
    assert_eq!((stats.handler_runs, stats.handler_jobs_owed), (N, 0), "{stats:?}");
}

/// Publish, from node 0, a valid delta by member 0 whose event gives the
/// app's handler an argument of the wrong type: every other node owes a
/// handler run that cannot succeed. Returns the delta's id.
async fn publish_a_trigger_that_cannot_be_handled(
    cluster: &Cluster,
    context: weft_primitives::Hash,
) -> weft_primitives::Hash {
    let info = cluster.node(0).context(context).await.unwrap();
    let now = common::wall_ms();
    let event = Event { kind: "Triggered".into(), data: br#"{"note":5}"#.to_vec(), handler: Some("on_event".into()) };
    let delta =
        SignedDelta::sign(&member_key(cluster, 0), &context, info.heads, Hlc::new(now, 0), Vec::new(), vec![event]);
    cluster.node(0).publish_unchecked(context, delta.id, delta.encode()).await.unwrap();
    delta.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_handler_is_counted_and_retried_never_dropped() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    publish_a_trigger_that_cannot_be_handled(&cluster, context).await;
    let failing = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(1).stats().await.unwrap();
        (stats.handler_failures >= 3 && stats.handler_jobs_owed == 1).then_some(stats)
    })
    .await;
    assert!(failing.is_some(), "the failing handler was not retried: {:?}", cluster.node(1).stats().await);
    // Still owed, backing off: it is neither run successfully nor dropped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = cluster.node(1).stats().await.unwrap();
    assert_eq!(stats.handler_jobs_owed, 1);
    assert_eq!(stats.handler_runs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_naming_no_handler_of_the_app_owes_no_job() {
    let cluster = Cluster::start(2).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    let info = cluster.node(0).context(context).await.unwrap();
    let now = common::wall_ms();
    // `count` is a view, `nowhere` nothing: neither may run as a handler.
    let events = ["count", "nowhere"]
        .map(|name| Event { kind: "Triggered".into(), data: b"{}".to_vec(), handler: Some(name.into()) })
        .to_vec();
    let delta =
        SignedDelta::sign(&member_key(&cluster, 0), &context, info.heads.clone(), Hlc::new(now, 0), Vec::new(), events);
    cluster.node(0).publish_unchecked(context, delta.id, delta.encode()).await.unwrap();
    let applied =
        eventually(CONVERGE_TIMEOUT, || async { cluster.node(1).delta(context, delta.id).await.unwrap() }).await;
    assert!(applied.is_some(), "node 1 never applied the delta: the test would prove nothing");
    // Jobs are created in the transaction that applies the delta, so none
    // can appear later; give a retry a chance to show anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = cluster.node(1).stats().await.unwrap();
    assert_eq!((stats.handler_jobs_owed, stats.handler_failures), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_keeps_failing_becomes_a_dead_letter_and_stays_one_across_a_restart() {
    let tweak = |config: &mut weft_node::NodeConfig| {
        config.handler_attempts_max = 3;
        config.handler_retry_max_ms = 200;
    };
    let mut cluster = Cluster::start_with(2, tweak).await;
    let context = cluster.shared_context(weft_apps::COUNTER_HANDLERS).await;
    let delta = publish_a_trigger_that_cannot_be_handled(&cluster, context).await;
    let buried = eventually(CONVERGE_TIMEOUT, || async {
        let stats = cluster.node(1).stats().await.unwrap();
        (stats.handler_jobs_dead == 1).then_some(stats)
    })
    .await;
    let Some(stats) = buried else { panic!("never buried: {:?}", cluster.node(1).stats().await) };
    assert_eq!((stats.handler_failures, stats.handler_jobs_owed, stats.handler_runs), (3, 0, 0), "{stats:?}");
    let dead = cluster.node(1).dead_jobs(context).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].1.job.delta, dead[0].1.job.handler.as_str(), dead[0].1.attempts), (delta, "on_event", 3));
    assert!(!dead[0].1.last_error.is_empty());

    // A restart neither revives it nor forgets it.
    cluster.stop(1).await;
    cluster.restart_with(1, tweak).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = cluster.node(1).stats().await.unwrap();
    assert_eq!((stats.handler_failures, stats.handler_jobs_owed), (0, 0), "{stats:?}");
    assert_eq!(cluster.node(1).dead_jobs(context).await.unwrap(), dead);
}
