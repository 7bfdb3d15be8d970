//! `weft demo`: three real nodes on loopback in this process, one shared
//! kv-store context, a write every second from each node in turn, every
//! node's events as they arrive, and the root hashes converging.
//!
//! The flow: start and connect the nodes (each with its API server, so the
//! user can curl them) → install the bundled kv-store on `n1`, create a
//! context, invite and join `n2` and `n3` → write until `--duration` or
//! Ctrl-C, printing events and, every [`ROOTS_EVERY`] writes, the root
//! hashes → wait at most [`CONVERGE_WAIT_MAX`] for every replica to reach
//! the same heads and root hash (a second Ctrl-C stops waiting) → summary.
//! Exit code 0 if the replicas converged, 1 otherwise.

mod cluster;
mod events;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use weft::output::{short, short_peer};
use weft_primitives::Hash;

use self::cluster::DemoCluster;
use self::events::Printer;

/// Time between two writes.
pub const WRITE_EVERY: Duration = Duration::from_secs(1);
/// Print the root hashes every this many writes.
pub const ROOTS_EVERY: u64 = 5;
/// How long the demo waits for convergence after the last write.
pub const CONVERGE_WAIT_MAX: Duration = Duration::from_secs(30);
/// How often the convergence wait polls the replicas.
const CONVERGE_POLL: Duration = Duration::from_millis(200);
/// How often the convergence wait asks every node for anti-entropy.
const CONVERGE_SYNC_EVERY: Duration = Duration::from_secs(2);

/// Run the demo; see the module doc.
pub async fn run(duration_secs: Option<u64>) -> anyhow::Result<ExitCode> {
    // The demo prints its own story; node logs only for warnings unless
    // RUST_LOG says otherwise.
    crate::daemon::init_logs("warn");
    let interrupts = watch_interrupts();
    let start = Instant::now();
    println!(
        "weft demo: {} nodes on loopback in this process, each with its own database and API",
        cluster::DEMO_NODES
    );
    let mut cluster = DemoCluster::start().await?;
    let outcome = drive(&cluster, start, duration_secs, interrupts).await;
    cluster.shutdown().await;
    outcome
}

async fn drive(
    cluster: &DemoCluster,
    start: Instant,
    duration_secs: Option<u64>,
    mut interrupts: watch::Receiver<u32>,
) -> anyhow::Result<ExitCode> {
    println!();
    println!("  node  peer        member    api");
    for node in &cluster.nodes {
        let member = weft::home::hex(&node.handle.identity().0);
        println!(
            "  {:<4}  {:<10}  {}  http://{}",
            node.name,
            short_peer(&node.handle.peer_id().to_string()),
            short(&member),
            node.api
        );
    }
    let (app, context) = cluster.shared_kv_context().await?;
    println!();
    println!(
        "kv-store (app {}) installed on n1; context {} created on n1;",
        short(&app.to_hex()),
        short(&context.to_hex())
    );
    println!("n2 and n3 joined it with invitations from n1.");
    println!();
    println!("try, while it runs:");
    let api = |i: usize| cluster.nodes.get(i).map_or_else(String::new, |n| format!("http://{}", n.api));
    println!("  curl -s {}/admin/contexts/{context}", api(0));
    println!("  curl -sN '{}/events?context={context}'", api(1));
    println!("  weft --api {} call {context} entries", api(2));
    println!();
    println!(
        "writing a key every second, n1 → n2 → n3 → n1 …, {}",
        match duration_secs {
            Some(secs) => format!("for {secs} s (Ctrl-C stops early)"),
            None => "until Ctrl-C".to_owned(),
        }
    );
    println!();
    let printer = Printer { start, context, names: Arc::new(cluster.member_names()) };
    let followers: Vec<_> = cluster
        .nodes
        .iter()
        .map(|node| tokio::spawn(printer.clone().follow(node.name.clone(), node.handle.subscribe())))
        .collect();
    let writes = write_loop(cluster, &printer, duration_secs.map(Duration::from_secs), &mut interrupts).await;
    println!();
    println!(
        "{} writes done; waiting (at most {} s) for the replicas to converge",
        writes.total,
        CONVERGE_WAIT_MAX.as_secs()
    );
    let waited = Instant::now();
    let converged = wait_for_convergence(cluster, context, &mut interrupts).await;
    let waited = waited.elapsed();
    // Let the last event lines through before the summary.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for follower in followers {
        follower.abort();
    }
    summary(cluster, context, start, &writes, converged, waited).await;
    Ok(if converged.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Counts Ctrl-C presses (the first stops writing, the second stops waiting).
fn watch_interrupts() -> watch::Receiver<u32> {
    let (presses, receiver) = watch::channel(0u32);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            presses.send_modify(|n| *n += 1);
        }
    });
    receiver
}

/// Successful writes, per node.
struct Writes {
    total: u64,
    by_node: Vec<u64>,
}

async fn write_loop(
    cluster: &DemoCluster,
    printer: &Printer,
    duration: Option<Duration>,
    interrupts: &mut watch::Receiver<u32>,
) -> Writes {
    let mut writes = Writes { total: 0, by_node: vec![0; cluster.nodes.len()] };
    let began = Instant::now();
    let mut ticker = tokio::time::interval(WRITE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = interrupts.changed() => {
                println!();
                printer.line("Ctrl-C: stopping the writes");
                return writes;
            }
        }
        if duration.is_some_and(|limit| began.elapsed() >= limit) {
            return writes;
        }
        n += 1;
        let index = usize::try_from(n - 1).unwrap_or(0) % cluster.nodes.len();
        let node = &cluster.nodes[index];
        let args = json!({"key": format!("key-{n:03}"), "value": format!("{} #{n}", node.name)});
        match node.handle.call(printer.context, "set", args.to_string().into_bytes()).await {
            Ok(_) => {
                writes.total += 1;
                writes.by_node[index] += 1;
            }
            Err(error) => printer.line(&format!("{:<3} write failed: {error}", node.name)),
        }
        if n.is_multiple_of(ROOTS_EVERY) {
            print_roots(cluster, printer).await;
        }
    }
}

async fn print_roots(cluster: &DemoCluster, printer: &Printer) {
    let mut roots = Vec::new();
    for node in &cluster.nodes {
        roots.push(node.handle.context(printer.context).await.ok().map(|info| info.root_hash));
    }
    let cells: Vec<String> = cluster
        .nodes
        .iter()
        .zip(&roots)
        .map(|(node, root)| {
            format!("{} {}", node.name, root.map_or_else(|| "?".repeat(8), |r| short(&r.to_hex()).to_owned()))
        })
        .collect();
    let equal = roots.windows(2).all(|w| w[0].is_some() && w[0] == w[1]);
    let verdict = if equal { "all equal" } else { "not yet equal (deltas in flight)" };
    printer.line(&format!("roots    {}   {verdict}", cells.join("  ")));
}

/// Wait until every node has the same heads and root hash; `Some(root)`
/// if they did within [`CONVERGE_WAIT_MAX`].
async fn wait_for_convergence(
    cluster: &DemoCluster,
    context: Hash,
    interrupts: &mut watch::Receiver<u32>,
) -> Option<Hash> {
    let deadline = Instant::now() + CONVERGE_WAIT_MAX;
    let mut last_sync: Option<Instant> = None;
    loop {
        let mut infos = Vec::new();
        for node in &cluster.nodes {
            match node.handle.context(context).await {
                Ok(info) => infos.push(info),
                Err(_) => return None,
            }
        }
        let same = infos.windows(2).all(|w| w[0].root_hash == w[1].root_hash && w[0].heads == w[1].heads);
        if same && let Some(first) = infos.first() {
            return Some(first.root_hash);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // Gossip has normally delivered everything already; anti-entropy
        // repairs whatever it dropped without waiting for the next round.
        if last_sync.is_none_or(|at| at.elapsed() >= CONVERGE_SYNC_EVERY) {
            for node in &cluster.nodes {
                let _ = node.handle.sync_now(Some(context)).await;
            }
            last_sync = Some(Instant::now());
        }
        tokio::select! {
            _ = tokio::time::sleep(CONVERGE_POLL) => {}
            _ = interrupts.changed() => {
                println!("Ctrl-C: not waiting any longer");
                return None;
            }
        }
    }
}

async fn summary(
    cluster: &DemoCluster,
    context: Hash,
    start: Instant,
    writes: &Writes,
    converged: Option<Hash>,
    waited: Duration,
) {
    println!();
    println!("summary after {:.1} s", start.elapsed().as_secs_f64());
    let per_node: Vec<String> =
        cluster.nodes.iter().zip(&writes.by_node).map(|(node, n)| format!("{} {n}", node.name)).collect();
    println!("  writes  {}  ({})", writes.total, per_node.join(", "));
    println!("  node  applied  pending  heads  root hash");
    for node in &cluster.nodes {
        match node.handle.context(context).await {
            Ok(info) => println!(
                "  {:<4}  {:>7}  {:>7}  {:>5}  {}",
                node.name,
                info.applied,
                info.pending,
                info.heads.len(),
                &info.root_hash.to_hex()[..16]
            ),
            Err(error) => println!("  {:<4}  unavailable: {error}", node.name),
        }
    }
    match converged {
        Some(root) => println!(
            "converged: all {} root hashes equal ({}) after waiting {:.1} s",
            cluster.nodes.len(),
            short(&root.to_hex()),
            waited.as_secs_f64()
        ),
        None => println!("NOT converged: the root hashes still differ after {:.1} s", waited.as_secs_f64()),
    }
}
