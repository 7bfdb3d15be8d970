//! One chaos run, start to verdict: set the cluster up as a user would,
//! drive the workload while the schedule's faults strike, stop both, wait
//! for convergence, then check everything the ledger and the logs can
//! tell.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::sync::{Mutex as AsyncMutex, watch};

use crate::cluster::{Daemon, RunState};
use crate::disk::SmallDisk;
use crate::ledger::{Ledger, Outcome};
use crate::ports::free_port;
use crate::proxy::{FaultProxy, Faults};
use crate::report::{HandlerCheck, Summary};
use crate::schedule::{Fault, FaultKind, Shape, schedule};
use crate::workload::{Writer, acked_triggers, handled_notes};

/// Writers per node (calls to a paused node wait for their timeout; the
/// other lanes keep the rate up).
const LANES_PER_NODE: usize = 2;
/// How often convergence is polled.
const CONVERGENCE_POLL: Duration = Duration::from_millis(250);
/// How often the harness looks for daemons that died on their own.
const DEATH_POLL: Duration = Duration::from_millis(500);

/// What a run is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Daemons.
    pub nodes: usize,
    /// How long the workload and the faults run.
    pub duration: Duration,
    /// The seed of the workload and of the fault schedule.
    pub seed: u64,
    /// Calls per second, over all nodes.
    pub ops_per_s: u64,
    /// Fault kinds drawn.
    pub kinds: Vec<FaultKind>,
    /// The `weft` binary.
    pub weft: PathBuf,
    /// The longest wait for convergence once faults stop.
    pub converge_timeout: Duration,
    /// Where the homes and logs go (a temporary directory if `None`; kept
    /// when given).
    pub workdir: Option<PathBuf>,
    /// The flags that replay this run (printed on failure).
    pub replay: String,
    /// Each daemon's `[sync] history_remembered` (`None`: the default,
    /// remember everything).
    pub remembered: Option<usize>,
}

/// Shared by the fault executor and the death monitor.
type Daemons = Arc<AsyncMutex<Vec<Daemon>>>;

/// Run and judge.
pub async fn run(options: Options) -> anyhow::Result<Summary> {
    let temp;
    let root = match &options.workdir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("weft-chaos-").tempdir()?;
            temp.path().to_owned()
        }
    };
    let n = options.nodes;
    let swarm_ports = (0..n).map(|_| free_port()).collect::<std::io::Result<Vec<u16>>>()?;
    let (proxy, proxy_ports) = FaultProxy::start(swarm_ports.clone(), options.seed).await?;
    let mut daemons = Vec::with_capacity(n);
    for (index, (swarm, proxied)) in swarm_ports.iter().zip(&proxy_ports).enumerate() {
        daemons.push(Daemon::init(&options.weft, &root, index, *swarm, *proxied, options.remembered)?);
    }
    // The last node's data lives on a small disk that can fill up.
    let disk = match options.kinds.contains(&FaultKind::DiskFull) {
        true => SmallDisk::mount(&daemons[n - 1].home.join("data")).ok(),
        false => None,
    };
    for daemon in &mut daemons {
        daemon.start().await?;
    }
    let apis: Vec<crate::api::Api> = daemons.iter().map(|d| d.api.clone()).collect();
    let daemons: Daemons = Arc::new(AsyncMutex::new(daemons));
    let outcome = drive(&options, &apis, &daemons, &proxy, disk.as_ref()).await;
    // Whatever happened, stop every daemon and free the small disk.
    for daemon in daemons.lock().await.iter_mut() {
        daemon.stop().await;
    }
    if let Some(disk) = disk {
        disk.unmount();
    }
    let mut summary = outcome?;
    summary.workdir = options.workdir.as_ref().map(|d| d.display().to_string());
    Ok(summary)
}

async fn drive(
    options: &Options,
    apis: &[crate::api::Api],
    daemons: &Daemons,
    proxy: &FaultProxy,
    disk: Option<&SmallDisk>,
) -> anyhow::Result<Summary> {
    let n = options.nodes;
    let (kv, counter) = set_up(options.seed, apis).await?;
    let shape = Shape {
        nodes: n,
        duration_ms: u64::try_from(options.duration.as_millis()).unwrap_or(u64::MAX),
        kinds: options.kinds.clone(),
        disk_full_node: disk.map(|_| n - 1),
    };
    let faults = schedule(options.seed, &shape);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (stop_tx, stop) = watch::channel(false);
    let lanes = n * LANES_PER_NODE;
    let period = Duration::from_secs_f64(lanes as f64 / options.ops_per_s.max(1) as f64);
    let mut writers = Vec::new();
    for (node, api) in apis.iter().enumerate() {
        for lane in 0..LANES_PER_NODE {
            let writer = Writer {
                node,
                lane,
                api: api.clone(),
                kv: kv.clone(),
                counter: counter.clone(),
                period,
                seed: options.seed ^ ((node * LANES_PER_NODE + lane) as u64 + 1).wrapping_mul(0x9e37_79b9),
            };
            writers.push(tokio::spawn(writer.run(ledger.clone(), stop.clone())));
        }
    }
    let deaths = Arc::new(Mutex::new(Vec::<String>::new()));
    let monitor = tokio::spawn(watch_deaths(daemons.clone(), deaths.clone(), stop.clone()));

    let started = Instant::now();
    let (executed, fault_errors) = inject(&faults, started, daemons, proxy, disk).await;
    let sleep_left = options.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(sleep_left).await;
    let _ = stop_tx.send(true);
    for writer in writers {
        let _ = writer.await;
    }
    let run_secs = started.elapsed().as_secs_f64();
    // Every fault has ended by now (the schedule keeps them inside the run);
    // make sure nothing is left held.
    heal_everything(daemons, proxy, disk).await?;
    let faults_stopped = Instant::now();
    let converged = wait_converged(apis, &[&kv, &counter], options.converge_timeout).await;
    let converge_ms = converged.as_ref().ok().map(|()| faults_stopped.elapsed().as_millis() as u64);
    let _ = monitor.await;

    let mut summary = Summary::new(options, &faults, &executed);
    summary.run_secs = run_secs;
    summary.converge_ms = converge_ms;
    if let Err(error) = converged {
        summary.failures.push(format!("no convergence: {error}"));
    }
    // What forgetting did (`--remember`): the most deltas a node forgot in
    // a context, proof that the run exercised it.
    for api in apis {
        if let Ok(Value::Array(contexts)) = api.sync_status().await {
            let forgotten = contexts.iter().filter_map(|c| c["stats"]["history_forgotten"].as_u64()).max();
            summary.history_forgotten_max = summary.history_forgotten_max.max(forgotten.unwrap_or(0));
        }
    }
    summary.fault_errors = fault_errors;
    // The writers are done: the ledger is whole. Kept beside the homes, so a
    // verdict can be checked again by hand.
    let ledger = std::mem::take(&mut *ledger.lock().unwrap_or_else(PoisonError::into_inner));
    if let Some(dir) = &options.workdir
        && let Err(error) = ledger.write_jsonl(&dir.join("ledger.jsonl"))
    {
        summary.failures.push(format!("writing the ledger: {error}"));
    }
    summary.ops_attempted = ledger.records().len() as u64;
    summary.ops_acked = ledger.count(Outcome::Acked);
    summary.ops_failed = ledger.count(Outcome::Failed);
    summary.ops_unknown = ledger.count(Outcome::Unknown);
    summary.ops_per_s = summary.ops_attempted as f64 / run_secs.max(f64::EPSILON);

    // The ledger, against the state every node holds.
    match agreed_entries(apis, &kv).await {
        Ok(entries) => {
            let verdict = ledger.check(&entries);
            if verdict.lost > 0 || verdict.unexpected_keys > 0 {
                summary.failures.push(format!(
                    "{} key(s) lost acknowledged writes, {} unexpected key(s): {:?}",
                    verdict.lost, verdict.unexpected_keys, verdict.lost_examples
                ));
            }
            summary.ledger = Some(verdict);
        }
        Err(error) => summary.failures.push(format!("reading the final state: {error}")),
    }
    match check_handlers(apis, &counter, &ledger, daemons).await {
        Ok(check) => {
            summary.failures.extend(check.problems.iter().cloned());
            summary.handlers = Some(check);
        }
        Err(error) => summary.failures.push(format!("checking handlers: {error}")),
    }
    for death in deaths.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        summary.failures.push(death.clone());
    }
    for daemon in daemons.lock().await.iter() {
        let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
            summary.failures.push(format!("node {} panicked: {line}", daemon.index));
        }
        summary.restarts.push(daemon.starts.saturating_sub(1));
    }
    let counters = proxy.counters();
    summary.proxy = json!({
        "connections": counters.connections.load(std::sync::atomic::Ordering::Relaxed),
        "unattributed": counters.unattributed.load(std::sync::atomic::Ordering::Relaxed),
        "partitioned": counters.partitioned.load(std::sync::atomic::Ordering::Relaxed),
        "dropped": counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
        "duplicated": counters.duplicated.load(std::sync::atomic::Ordering::Relaxed),
        "bytes": counters.bytes.load(std::sync::atomic::Ordering::Relaxed),
    });
    Ok(summary)
}

/// Install both apps on node 0, create a context of each, and have every
/// other node join both through an invitation from a node that joined
/// before it (seeded), so nodes must find the members they were not
/// invited by. Returns (kv context, counter context).
async fn set_up(seed: u64, apis: &[crate::api::Api]) -> anyhow::Result<(String, String)> {
    let first = &apis[0];
    let kv_app = first.install(weft_apps::KV_STORE).await.context("installing kv-store")?;
    let counter_app = first.install(weft_apps::COUNTER_HANDLERS).await.context("installing counter-handlers")?;
    let kv = first.create_context(&kv_app).await?;
    let counter = first.create_context(&counter_app).await?;
    for (index, api) in apis.iter().enumerate().skip(1) {
        let inviter = &apis[(seed as usize).wrapping_add(index * 7) % index];
        let identity = api.identity().await?;
        for context in [&kv, &counter] {
            let invitation = inviter.invite(context, &identity).await?;
            api.join(&invitation).await.with_context(|| format!("node {index} joining {context}"))?;
        }
    }
    // Everyone must see everyone as a member before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut ready = true;
        for api in apis {
            let status = api.sync_status().await.unwrap_or(Value::Null);
            let contexts = status.as_array().cloned().unwrap_or_default();
            ready &=
                contexts.len() == 2 && contexts.iter().all(|c| c["peers"].as_array().is_some_and(|p| !p.is_empty()));
        }
        if ready {
            return Ok((kv, counter));
        }
        if Instant::now() > deadline {
            bail!("the cluster did not form within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fault that started and whose end is due.
struct Active {
    fault: Fault,
    ends: Instant,
}

/// Carry out the schedule: start each fault at its time and end it after
/// its span. Returns the faults carried out, and the ones the harness could
/// not carry out (with why: the run goes on without them).
async fn inject(
    faults: &[Fault],
    started: Instant,
    daemons: &Daemons,
    proxy: &FaultProxy,
    disk: Option<&SmallDisk>,
) -> (Vec<Fault>, Vec<String>) {
    let mut pending: Vec<&Fault> = faults.iter().collect();
    pending.reverse();
    let mut active: Vec<Active> = Vec::new();
    let mut done = Vec::new();
    let mut errors = Vec::new();
    loop {
        let next_start = pending.last().map(|f| started + Duration::from_millis(f.at_ms));
        let next_end = active.iter().map(|a| a.ends).min();
        let Some(next) = [next_start, next_end].into_iter().flatten().min() else { return (done, errors) };
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let mut index = 0;
        while index < active.len() {
            if active[index].ends <= now {
                let ended = active.swap_remove(index);
                match end_fault(&ended.fault, daemons, proxy, disk).await {
                    Ok(()) => done.push(ended.fault),
                    Err(error) => errors.push(format!("ending {:?}: {error:#}", ended.fault)),
                }
            } else {
                index += 1;
            }
        }
        while let Some(fault) = pending.last().copied().filter(|f| started + Duration::from_millis(f.at_ms) <= now) {
            pending.pop();
            match start_fault(fault, daemons, proxy, disk).await {
                Ok(()) => {
                    active.push(Active { fault: fault.clone(), ends: now + Duration::from_millis(fault.span_ms) })
                }
                Err(error) => errors.push(format!("starting {fault:?}: {error:#}")),
            }
        }
    }
}

async fn start_fault(
    fault: &Fault,
    daemons: &Daemons,
    proxy: &FaultProxy,
    disk: Option<&SmallDisk>,
) -> anyhow::Result<()> {
    let mut faults = proxy.faults();
    match (fault.kind, fault.node) {
        (FaultKind::Kill, Some(node)) => daemons.lock().await[node].kill().await?,
        (FaultKind::Pause, Some(node)) => daemons.lock().await[node].signal_pause(true)?,
        (FaultKind::Stall, Some(node)) => {
            faults.stalled.insert(node);
            proxy.set(faults);
        }
        (FaultKind::Partition, _) => {
            faults.groups = fault.groups.clone();
            proxy.set(faults);
        }
        (FaultKind::Flaky, _) => {
            faults.delay_ms = 20;
            faults.drop_per_mille = 2;
            faults.duplicate_per_mille = 100;
            proxy.set(faults);
        }
        (FaultKind::DiskFull, Some(_)) => {
            if let Some(disk) = disk {
                disk.fill()?;
            }
        }
        _ => {}
    }
    Ok(())
}

async fn end_fault(
    fault: &Fault,
    daemons: &Daemons,
    proxy: &FaultProxy,
    disk: Option<&SmallDisk>,
) -> anyhow::Result<()> {
    let mut faults = proxy.faults();
    match (fault.kind, fault.node) {
        (FaultKind::Kill, Some(node)) => daemons.lock().await[node].start().await?,
        (FaultKind::Pause, Some(node)) => daemons.lock().await[node].signal_pause(false)?,
        (FaultKind::Stall, Some(node)) => {
            faults.stalled.remove(&node);
            proxy.set(faults);
        }
        (FaultKind::Partition, _) => {
            faults.groups.clear();
            proxy.set(faults);
        }
        (FaultKind::Flaky, _) => {
            faults.delay_ms = 0;
            faults.drop_per_mille = 0;
            faults.duplicate_per_mille = 0;
            proxy.set(faults);
        }
        (FaultKind::DiskFull, Some(_)) => {
            if let Some(disk) = disk {
                disk.free()?;
            }
        }
        _ => {}
    }
    Ok(())
}

async fn heal_everything(daemons: &Daemons, proxy: &FaultProxy, disk: Option<&SmallDisk>) -> anyhow::Result<()> {
    proxy.set(Faults::default());
    if let Some(disk) = disk {
        disk.free()?;
    }
    for daemon in daemons.lock().await.iter_mut() {
        match daemon.state {
            RunState::Paused => daemon.signal_pause(false)?,
            RunState::Down => daemon.start().await?,
            RunState::Up => {}
        }
    }
    Ok(())
}

/// Note daemons that exit while the harness thinks they run.
async fn watch_deaths(daemons: Daemons, deaths: Arc<Mutex<Vec<String>>>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(DEATH_POLL) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        for daemon in daemons.lock().await.iter_mut() {
            if daemon.state == RunState::Up
                && let Some(status) = daemon.died()
            {
                deaths.lock().unwrap_or_else(PoisonError::into_inner).push(format!(
                    "node {} died on its own ({status}); see {}",
                    daemon.index,
                    daemon.log.display()
                ));
                daemon.state = RunState::Down;
            }
        }
    }
}

/// Wait until every node reports, for every context, the same heads, root
/// hash and count of applied deltas (a delta applied twice anywhere would
/// leave the counts apart), nothing pending and no handler job owed.
async fn wait_converged(apis: &[crate::api::Api], contexts: &[&str], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match snapshot(apis).await {
            Ok(views) => {
                let agreed = contexts.iter().all(|context| {
                    let of_context: Vec<&Value> = views.iter().filter_map(|v| v.get(*context)).collect();
                    of_context.len() == apis.len()
                        && of_context.windows(2).all(|w| {
                            w[0]["root_hash"] == w[1]["root_hash"]
                                && w[0]["heads"] == w[1]["heads"]
                                && w[0]["applied"] == w[1]["applied"]
                        })
                        && of_context.iter().all(|c| c["pending"] == 0 && c["handler_jobs"] == 0)
                });
                if agreed {
                    return Ok(());
                }
                views.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(" | ")
            }
            Err(error) => error.to_string(),
        };
        if Instant::now() > deadline {
            bail!("not converged after {timeout:?}; last view: {}", last.chars().take(2000).collect::<String>());
        }
        tokio::time::sleep(CONVERGENCE_POLL).await;
    }
}

/// Each node's contexts, by id: root hash, heads, pending, handler jobs.
async fn snapshot(apis: &[crate::api::Api]) -> anyhow::Result<Vec<Value>> {
    let mut views = Vec::with_capacity(apis.len());
    for api in apis {
        let contexts = api.contexts().await?;
        let mut view = serde_json::Map::new();
        for context in contexts.as_array().cloned().unwrap_or_default() {
            let id = context["id"].as_str().unwrap_or_default().to_owned();
            view.insert(
                id,
                json!({"root_hash": context["root_hash"], "heads": context["heads"], "applied": context["applied"],
                       "pending": context["pending"], "handler_jobs": context["handler_jobs"]}),
            );
        }
        views.push(Value::Object(view));
    }
    Ok(views)
}

/// Entries read per `page` call.
const PAGE_ENTRIES: u32 = 1_000;

/// The kv entries every node holds, which must be the same everywhere.
/// Read a page at a time: one `entries` call runs out of fuel on a store
/// of a long run.
async fn agreed_entries(apis: &[crate::api::Api], kv: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for (index, api) in apis.iter().enumerate() {
        let mut entries = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let output = api.query(kv, "page", json!({"after": after, "limit": PAGE_ENTRIES})).await?;
            let page: Vec<(String, String)> = serde_json::from_value(output)?;
            let Some((last, _)) = page.last().cloned() else { break };
            entries.extend(page);
            after = Some(last);
        }
        match &agreed {
            None => agreed = Some(entries),
            Some(first) if *first != entries => bail!("node {index}'s entries differ from node 0's"),
            Some(_) => {}
        }
    }
    agreed.context("no nodes")
}

/// Handlers: every acknowledged trigger ran on every node but its author
/// (the daemons' logs), never on the author, and the shared counts add up.
async fn check_handlers(
    apis: &[crate::api::Api],
    counter: &str,
    ledger: &Ledger,
    daemons: &Daemons,
) -> anyhow::Result<HandlerCheck> {
    let n = apis.len() as i64;
    let triggers = apis[0].query(counter, "triggers", json!({})).await?.as_i64().unwrap_or(-1);
    let handled = apis[0].query(counter, "count", json!({})).await?.as_i64().unwrap_or(-1);
    let acked = acked_triggers(ledger);
    let unknown = ledger
        .records()
        .iter()
        .filter(|r| r.outcome == Outcome::Unknown && matches!(r.op, crate::ledger::Op::Trigger { .. }))
        .count() as i64;
    let mut check = HandlerCheck {
        triggers_acked: acked.len() as u64,
        triggers_committed: triggers,
        handler_runs_committed: handled,
        ..HandlerCheck::default()
    };
    if triggers < acked.len() as i64 || triggers > acked.len() as i64 + unknown {
        check
            .problems
            .push(format!("{triggers} triggers committed, {} acknowledged, {unknown} unanswered", acked.len()));
    }
    if handled < triggers * (n - 1) {
        check.problems.push(format!("{handled} handler runs for {triggers} triggers on {n} nodes: some never ran"));
    }
    check.duplicate_runs = (handled - triggers * (n - 1)).max(0) as u64;
    let logs: Vec<BTreeSet<String>> = daemons
        .lock()
        .await
        .iter()
        .map(|d| handled_notes(&std::fs::read_to_string(&d.log).unwrap_or_default()))
        .collect();
    for (author, note) in &acked {
        for (node, handled) in logs.iter().enumerate() {
            let ran = handled.contains(note);
            if node == *author && ran {
                check.ran_on_author += 1;
            } else if node != *author && !ran {
                check.missing_runs += 1;
            }
        }
    }
    if check.ran_on_author > 0 {
        check.problems.push(format!("{} handler runs on the trigger's author", check.ran_on_author));
    }
    if check.missing_runs > 0 {
        check.problems.push(format!("{} (trigger, node) handler runs missing from the logs", check.missing_runs));
    }
    Ok(check)
}
