//! `chat-faults`: a randomized fault run with a checker (Jepsen's method, at
//! the scale of one machine). Starts several nodes on one PostgreSQL and one
//! Redis, runs simulated web clients on random nodes (some through nginx),
//! injects faults at times
//! drawn from a printed seed, heals, waits until the clients are quiet, and
//! checks what every client was given against the store. Prints the seed,
//! the faults, a table of what was checked, and `violations: N`; exits 0
//! only when N is 0.

mod args;
mod checker;
mod client;
mod cluster;
mod deletions;
mod gauges;
mod impostor;
mod nemesis;
mod proxy;
mod records;
mod trespass;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chat_shared::{ClientId, Nickname, RoomName};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use args::Args;
use client::{History, Phase, Plan, Status};
use cluster::Cluster;
use nemesis::FaultKind;

/// How long the healed cluster has to get every client joined with nothing
/// pending, before the run gives up waiting and checks what it has.
const QUIESCE_PATIENCE: Duration = Duration::from_secs(60);

/// How long it stays quiet after that, for the last deliveries (a gap in a
/// node's bus is read from the store after 200 ms) and the nodes' regular
/// member list checks (every 10 s by default), which correct lists that
/// lost presence events.
const SETTLE: Duration = Duration::from_secs(12);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    let duration = Duration::from_secs(args.duration);
    let overlap = if args.overlap { " --overlap" } else { "" };
    println!("seed {seed}  (replay: scripts/faults --duration {} --seed {seed}{overlap})", args.duration);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = vec![nemesis::schedule(&mut rng, duration, args.nodes)];
    if args.overlap {
        faults.push(nemesis::schedule(&mut rng, duration, args.nodes));
    }

    let mut cluster = Cluster::start(&args.server, args.nodes).await;
    println!(
        "{} nodes on {} and {}; logs in {}",
        args.nodes,
        cluster.postgres.database,
        cluster.redis.url(),
        cluster.dir.path().display()
    );
    // Where some clients connect, as browsers of a deployment would.
    let nginx = chat_e2e::Nginx::balancing(chat_e2e::free_port(), &cluster.addresses()).await;
    if args.nginx_every > 0 {
        println!("1 client in {} connects through nginx at {}", args.nginx_every, nginx.address);
    }
    let (phase, phases) = watch::channel(Phase::Chatting);
    let start = tokio::time::Instant::now();
    let mut clients = Vec::new();
    let mut statuses = Vec::new();
    let mut victims = Vec::new();
    for index in 0..args.clients {
        let plan = Plan {
            room: RoomName::parse(format!("room-{}", index % args.rooms.max(1))).expect("room name"),
            nick: Nickname::parse(format!("c{index}")).expect("nickname"),
            tab: ClientId::parse(format!("tab{index}x{}", rng.random::<u32>())).expect("tab"),
            seed: rng.random(),
            nodes: cluster.addresses(),
            nginx: (args.nginx_every > 0 && index % args.nginx_every == args.nginx_every - 1).then_some(nginx.address),
            start,
        };
        victims.push((plan.room.clone(), plan.nick.clone()));
        let status = Arc::new(Status::default());
        statuses.push(status.clone());
        clients.push(tokio::spawn(client::run(plan, status, phases.clone())));
    }
    let impostor = tokio::spawn(impostor::run(victims, cluster.addresses(), rng.random(), phases.clone()));
    // Private rooms and a ban, made before any fault; the ban at a seeded moment.
    let accounts = trespass::prepare(cluster.addresses()[0]).await;
    let ban_after = duration.mul_f64(rng.random_range(0.2..0.7));
    let trespassers =
        tokio::spawn(trespass::run(accounts, cluster.addresses(), rng.random(), ban_after, phases.clone()));
    // Deletions among the first room's messages.
    let edited = RoomName::parse("room-0").expect("room name");
    let editor = deletions::prepare(cluster.addresses()[0]).await;
    let editing =
        tokio::spawn(deletions::run(editor, edited.clone(), cluster.addresses(), rng.random(), phases.clone()));
    let sampler = tokio::spawn(gauges::sample(cluster.addresses(), phases.clone()));

    let injected = nemesis::inject(&mut cluster, &faults, start, duration).await;
    tokio::time::sleep_until(start + duration).await;
    cluster.heal().await;
    let _ = phase.send(Phase::Quiet);
    let quiet = quiesce(&statuses).await;
    tokio::time::sleep(SETTLE).await;
    let gauges_at_end = gauges::read_all(&cluster.addresses()).await;
    let _ = phase.send(Phase::Done);
    let mut histories: Vec<History> = Vec::new();
    for client in clients {
        histories.push(client.await.expect("a client task"));
    }
    let impostures = impostor.await.expect("the impostor task");
    let trespassed = trespassers.await.expect("the trespass task");
    println!(
        "private room: {} tries by a stranger; a ban after {:.1} s, then {} joins tried by the banned account; it heard {} messages of #{} in all",
        trespassed.probes,
        ban_after.as_secs_f64(),
        trespassed.knocks,
        trespassed.heard.len(),
        trespass::HALL
    );
    let edits = editing.await.expect("the editor task");
    println!("deletions: {} confirmed, {} unanswered by every node asked", edits.confirmed.len(), edits.unanswered);
    let peaks = sampler.await.expect("the gauge sampler");
    println!(
        "impostor: {} joins tried under others' names, {} got in (the name was free)",
        impostures.attempts, impostures.successes
    );

    let rows = cluster.postgres.messages().await;
    let end = nemesis::epoch_now();
    let windows = |kind: FaultKind| injected.windows.iter().filter(move |(fault, _, _)| fault.kind == kind);
    let frozen: Vec<(usize, f64, f64)> =
        windows(FaultKind::PauseNode).map(|(fault, from, until)| (fault.node, *from, *until)).collect();
    let mut holds = Vec::new();
    for node in &cluster.nodes {
        let deaths: Vec<f64> = windows(FaultKind::KillNode)
            .filter(|(fault, _, _)| fault.node == node.index)
            .map(|(_, at, _)| *at)
            .collect();
        holds.extend(records::read(&node.log, node.index, &deaths, end));
    }
    println!("holds of names in the servers' records: {}", holds.len());
    let evidence = checker::Evidence::new(&histories, rows).with_holds(holds, frozen).with_gauges(
        gauges_at_end,
        peaks,
        bounds(args.rooms),
    );
    let mut checked = checker::check(&evidence);
    checked.extend(trespass::check(&trespassed, &injected.windows));
    checked.push(deletions::check(&edits, &cluster.postgres.deletions(edited.as_str()).await));
    let violations = report(&injected, &histories, &evidence, &checked, quiet);
    println!("violations: {violations}");
    if violations == 0 {
        return ExitCode::SUCCESS;
    }
    let Cluster { dir, .. } = cluster;
    println!("node logs kept in {}", dir.keep().display());
    ExitCode::FAILURE
}

/// The bound of each gauge of what a node holds (README, Bounds): 10,000
/// messages ahead per room, 10,000 kept to publish, 20,000 waiting for the
/// store per shard (a node runs a shard per core), and no more acks awaited
/// than messages could be waiting.
fn bounds(rooms: usize) -> BTreeMap<&'static str, i64> {
    let shards = std::thread::available_parallelism().map_or(1, usize::from) as i64;
    BTreeMap::from([
        ("chat_bus_held_ahead", 10_000 * rooms.max(1) as i64),
        ("chat_bus_unpublished", 10_000),
        ("chat_store_waiting", 20_000 * shards),
        ("chat_awaited_acks", 20_000 * shards),
    ])
}

/// Waits until every client is joined with nothing pending; false if it
/// never happened within [`QUIESCE_PATIENCE`].
async fn quiesce(statuses: &[Arc<Status>]) -> bool {
    let deadline = tokio::time::Instant::now() + QUIESCE_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        let quiet = statuses
            .iter()
            .all(|status| status.joined.load(Ordering::Relaxed) && status.pending.load(Ordering::Relaxed) == 0);
        if quiet {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Prints the faults, the counts and every violation; returns how many.
fn report(
    injected: &nemesis::Injected,
    histories: &[History],
    evidence: &checker::Evidence<'_>,
    checked: &[checker::Checked],
    quiet: bool,
) -> usize {
    let mut by_kind: BTreeMap<FaultKind, usize> = FaultKind::ALL.iter().map(|kind| (*kind, 0)).collect();
    for fault in &injected.faults {
        *by_kind.entry(fault.kind).or_default() += 1;
    }
    println!("\nfaults injected: {}", injected.faults.len());
    for (kind, count) in &by_kind {
        println!("  {count:5}  {kind}");
    }
    println!(
        "commit replies lost: {}  pub/sub connections closed by redis: {}",
        injected.commit_replies_lost, injected.pubsub_clients_killed
    );
    let stored: usize = evidence.store.values().map(BTreeMap::len).sum();
    let acked: usize = histories.iter().map(|h| h.acks.len()).sum();
    let resent: usize = histories.iter().map(|h| h.sent.values().filter(|times| **times > 1).count()).sum();
    let delivered: usize = histories.iter().map(|h| h.received.len()).sum();
    let connections: u32 = histories.iter().map(|h| h.connections).sum();
    let resumes: u32 = histories.iter().map(|h| h.resumes).sum();
    let refused: u32 = histories.iter().map(|h| h.resume_refused).sum();
    let corrections: u32 = histories.iter().map(|h| h.corrections).sum();
    let mut errors: BTreeMap<&str, u32> = BTreeMap::new();
    for history in histories {
        for (code, count) in &history.errors {
            *errors.entry(code.as_str()).or_default() += count;
        }
    }
    println!("\nclients: {}  stored: {stored}  acknowledged: {acked}  resent: {resent}", histories.len());
    println!("delivered: {delivered}  connections: {connections}  resumes: {resumes} (refused {refused})");
    println!("member lists corrected by the server: {corrections}");
    println!("error frames: {errors:?}");
    println!("quiet after healing: {}", if quiet { "yes" } else { "no (checked anyway)" });
    let mut highest: BTreeMap<&str, i64> = gauges::HELD.iter().map(|gauge| (gauge.metric, 0)).collect();
    for ((_, metric), peak) in &evidence.peaks {
        let high = highest.entry(metric).or_default();
        *high = (*high).max(*peak);
    }
    println!("most any node held while chatting: {highest:?}");
    println!("\n| invariant | cases | violations |\n| --- | --- | --- |");
    for check in checked {
        println!("| {} | {} | {} |", check.name, check.cases, check.violations.len());
    }
    let mut total = 0;
    for check in checked {
        for violation in check.violations.iter().take(20) {
            println!("  {}: {violation}", check.name);
        }
        if check.violations.len() > 20 {
            println!("  {}: ... and {} more", check.name, check.violations.len() - 20);
        }
        total += check.violations.len();
    }
    total
}
