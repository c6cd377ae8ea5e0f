//! `porter bench`: Porter's throughput, latency, CPU and memory end to end,
//! against a raw AMQP relay measured in the same run (ICD §10).
//!
//! # Design note
//!
//! **What runs where.** The bench process runs the three partner simulators
//! (CLETS/CARPOS, DOJ, LEA) on loopback ports of their own and the court
//! simulator ([`porter_simulators::court`]). The brokers run as child
//! processes, `porter broker --config <run folder>/porter.toml` of the
//! current executable, each with its own `PORTER_HTTP_LISTEN`, so that the
//! CPU time and peak RSS read from `/proc/<pid>` are the broker's alone
//! ([`brokers`]). `--brokers N` starts N of them on the same store; a
//! SQLite store serves one broker (ICD §12), so N > 1 with SQLite is a usage
//! error (exit 2).
//!
//! **Isolation.** Every run has fresh courts (`ZB` + 7 random characters,
//! see [`rig`]), hence its own `por.inbound.<ORI>` and `por.responses.<ORI>`
//! queues, and a fresh store: a SQLite file in the run folder by default,
//! or, for `--store postgres://…`, a new schema `porter_bench_…` in that
//! database, dropped at the end. A `--store sqlite://PATH` is used as given.
//! The run folder (configuration, store, broker logs) and the courts'
//! queues are removed after a clean run and kept, and named, otherwise.
//!
//! **Load.** Each court publishes `--orders` orders, each an ISSUE, a MODIFY
//! and a SERVICE, XML and fixed-width alternating by court, with the court
//! simulator's usual window of orders in flight.
//! - `backlog`: a broker is started once to declare the topology and
//!   create the store, then stopped; the courts publish everything (as fast
//!   as confirms allow) while no broker runs; once every message is on its
//!   court queue, the brokers start. The drain is timed from their start to
//!   the last status the courts receive; msgs/s = messages / drain seconds.
//!   Broker CPU counts from process start, so it includes start-up (loading
//!   mappings and schemas, opening the store: well under a second).
//! - `live`: the brokers start and are ready first; the courts then publish
//!   at `--rate` messages per second. msgs/s is the court simulator's
//!   completed rate (first publish to last completion); CPU counts from
//!   the moment all brokers are ready.
//!
//! In both modes latency is the court simulator's publish → last
//! `PARTNER_ACCEPTED` (p50/p95/p99/max); in backlog it includes the time a
//! message waited on its queue before any broker ran, so it mostly says
//! how long the drain took.
//!
//! **The relay** ([`relay`]) then carries the same message count with the
//! same bodies (the same generator and seed), in the same mode, publishing
//! as many outputs as Porter published statuses, while no broker runs; the
//! report gives Porter's msgs/s as a share of the relay's.
//!
//! **Bounds.** Every wait is bounded: a broker must be ready within 60 s
//! and stop within 30 s of SIGTERM; the court simulator waits at most
//! `--timeout` seconds for statuses after its last publish; the relay has
//! `--timeout` seconds. The exit code is 0 for a clean run (the court
//! report is clean, every broker stayed up, the relay finished), 1
//! otherwise, 2 for a usage error.

pub mod brokers;
pub mod relay;
pub mod report;
pub mod rig;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use porter_simulators::court::{CourtSimConfig, CourtSimReport};
use tokio_util::sync::CancellationToken;

use brokers::{BrokerProcess, Usage};
use relay::{Arrival, RelayReport};
use report::{BenchReport, BrokerFigures};
use rig::{Rig, RigSettings, StoreKind};

/// `porter bench`: what to run and how to report it.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// backlog: the orders are queued first, then drained; live: they are
    /// published at --rate while the brokers run.
    #[arg(long, value_enum, default_value = "backlog")]
    pub mode: Mode,
    /// Orders per court; each is an ISSUE, a MODIFY and a SERVICE (3 messages).
    #[arg(long, default_value_t = 100)]
    pub orders: u32,
    /// live: offered messages per second over all courts.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How many courts (fresh ORIs), 1 to 100.
    #[arg(long, default_value_t = 3)]
    pub courts: usize,
    /// The store: sqlite://PATH, or postgres://… (a fresh schema is created
    /// in that database and dropped at the end). Default: a temporary SQLite
    /// file.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Broker processes on the same store (more than one needs PostgreSQL).
    #[arg(long, default_value_t = 1)]
    pub brokers: usize,
    /// RabbitMQ.
    #[arg(
        long,
        env = "PORTER_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Porter's schemas folder.
    #[arg(long, default_value = "schemas")]
    pub schemas: PathBuf,
    /// Porter's mappings folder.
    #[arg(long, default_value = "mappings")]
    pub mappings: PathBuf,
    /// Seconds to wait at most for the statuses after the last publish, and
    /// for the relay.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,
    /// Seed of the order generator (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON document instead of human lines.
    #[arg(long)]
    pub json: bool,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// N orders queued first, then drained.
    Backlog,
    /// A set offered rate.
    Live,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Backlog => "backlog",
            Mode::Live => "live",
        }
    }
}

/// Runs `porter bench` and returns its exit code: 0 clean, 1 not clean or
/// failed, 2 usage error.
pub async fn run(args: BenchArgs) -> u8 {
    if let Err(e) = check(&args) {
        eprintln!("porter bench: {e}");
        return 2;
    }
    match bench(&args).await {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("{}", report.summary());
            }
            if report.clean { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("porter bench: {e:#}");
            1
        }
    }
}

/// Usage errors, found before anything starts.
fn check(args: &BenchArgs) -> anyhow::Result<()> {
    let store = args.store.as_deref().map_or(Ok(StoreKind::Sqlite), StoreKind::of)?;
    anyhow::ensure!(args.brokers >= 1, "--brokers must be at least 1");
    anyhow::ensure!(
        args.brokers == 1 || store == StoreKind::Postgres,
        "--brokers {} needs a PostgreSQL store: a SQLite store serves one broker (ICD §12)",
        args.brokers
    );
    anyhow::ensure!((1..=100).contains(&args.courts), "--courts must be 1 to 100");
    anyhow::ensure!(args.orders >= 1, "--orders must be at least 1");
    anyhow::ensure!(
        args.mode == Mode::Backlog || (args.rate.is_finite() && args.rate > 0.0),
        "--rate must be a positive number"
    );
    anyhow::ensure!(args.timeout >= 1, "--timeout must be at least 1 second");
    Ok(())
}

/// Sets up the rig, measures, and tears the rig down (keeping the run
/// folder when something went wrong).
async fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let settings = RigSettings {
        amqp_url: &args.amqp_url,
        store: args.store.as_deref(),
        courts: args.courts,
        schemas: &args.schemas,
        mappings: &args.mappings,
    };
    let rig = Rig::start(&settings).await?;
    eprintln!("porter bench: run folder {}", rig.dir.display());
    let oris: Vec<&str> = rig.courts.iter().map(|c| c.ori.as_str()).collect();
    eprintln!("porter bench: courts {}", oris.join(" "));
    let result = measure(args, &rig).await;
    let keep = !result.as_ref().is_ok_and(|r| r.clean);
    if keep {
        eprintln!("porter bench: broker logs kept in {}", rig.dir.display());
    }
    rig.finish(keep).await;
    result
}

/// Statuses the courts received, and when the last one came.
#[derive(Default)]
struct StatusCount {
    count: AtomicUsize,
    last: Mutex<Option<Instant>>,
}

impl StatusCount {
    fn last(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the Porter side of a run measured.
struct PorterRun {
    court: CourtSimReport,
    secs: f64,
    msgs_per_sec: f64,
    brokers: Vec<BrokerFigures>,
    problems: Vec<String>,
}

async fn measure(args: &BenchArgs, rig: &Rig) -> anyhow::Result<BenchReport> {
    let sim = court_config(args, rig);
    let statuses = Arc::new(StatusCount::default());
    let porter = match args.mode {
        Mode::Backlog => backlog(args, rig, sim.clone(), statuses.clone()).await?,
        Mode::Live => live(args, rig, sim.clone(), statuses.clone()).await?,
    };
    let messages = porter.court.sent;
    let status_count = statuses.count.load(Ordering::SeqCst);
    let mut problems = porter.problems;
    let relay = run_relay(args, &sim, messages, status_count).await;
    let relay = match relay {
        Ok(r) => Some(r),
        Err(e) => {
            problems.push(format!("{e:#}"));
            None
        }
    };
    let broker_cpu_secs: f64 = porter.brokers.iter().map(|b| b.cpu_secs).sum();
    let share = relay
        .as_ref()
        .filter(|r| r.msgs_per_sec > 0.0)
        .map(|r| porter.msgs_per_sec / r.msgs_per_sec);
    Ok(BenchReport {
        mode: args.mode.name(),
        store: rig.store.name(),
        brokers: args.brokers,
        courts: args.courts,
        orders_per_court: args.orders,
        offered_rate: (args.mode == Mode::Live).then_some(args.rate),
        messages,
        statuses: status_count,
        secs: round3(porter.secs),
        msgs_per_sec: round3(porter.msgs_per_sec),
        latency: porter.court.timings.partner_accepted,
        broker_cpu_secs: round3(broker_cpu_secs),
        cpu_secs_per_1000_messages: round3(broker_cpu_secs * 1000.0 / messages.max(1) as f64),
        broker_peak_rss_bytes: porter.brokers.iter().map(|b| b.peak_rss_bytes).max().unwrap_or(0),
        broker_processes: porter.brokers,
        relay,
        porter_share_of_relay: share.map(round3),
        clean: porter.court.is_clean() && problems.is_empty() && messages > 0,
        problems,
        court: porter.court,
    })
}

/// The court simulator's configuration: the rig's courts, full lifecycles
/// (ISSUE, MODIFY, SERVICE), unthrottled in backlog, `--rate` live.
fn court_config(args: &BenchArgs, rig: &Rig) -> CourtSimConfig {
    let defaults = CourtSimConfig::default();
    CourtSimConfig {
        amqp_url: args.amqp_url.clone(),
        courts: rig.courts.clone(),
        orders_per_court: args.orders,
        lifecycle: true,
        rate_per_sec: match args.mode {
            Mode::Backlog => 0.0,
            Mode::Live => args.rate,
        },
        status_timeout_secs: args.timeout,
        seed: args.seed.unwrap_or(defaults.seed),
        ..defaults
    }
}

/// Backlog: declare, queue everything, then time the brokers' drain.
async fn backlog(
    args: &BenchArgs,
    rig: &Rig,
    sim: CourtSimConfig,
    statuses: Arc<StatusCount>,
) -> anyhow::Result<PorterRun> {
    let exe = std::env::current_exe().context("finding the porter executable")?;
    let mut declaring = BrokerProcess::spawn(&exe, &rig.config, free_port()?, rig.broker_log(0))?;
    declaring.wait_ready().await?;
    let status = declaring.stop().await?;
    anyhow::ensure!(status.success(), "the declaring broker exited with {status}");

    let planned = rig.courts.len() * args.orders as usize * 3;
    let stop = CancellationToken::new();
    let mut court = start_court(sim, &stop, statuses.clone());
    let queues: Vec<String> = rig.courts.iter().map(|c| format!("por.inbound.{}", c.ori)).collect();
    if let Err(e) = wait_queued(
        &args.amqp_url,
        &queues,
        planned,
        &court,
        Duration::from_secs(args.timeout),
    )
    .await
    {
        stop.cancel();
        let _ = court.await;
        return Err(e);
    }
    let started = Instant::now();
    let mut brokers = spawn_brokers(&exe, rig, args.brokers)?;
    let base = vec![Usage::default(); brokers.len()];
    let (report, mut problems) = await_court(&mut court, &mut brokers, &stop).await?;
    let end = statuses.last().unwrap_or_else(Instant::now);
    let secs = end.saturating_duration_since(started).as_secs_f64();
    let figures = stop_brokers(brokers, &base, &mut problems).await;
    let msgs_per_sec = if secs > 0.0 { report.complete as f64 / secs } else { 0.0 };
    Ok(PorterRun {
        court: report,
        secs,
        msgs_per_sec,
        brokers: figures,
        problems,
    })
}

/// Live: brokers ready first, then the courts publish at `--rate`.
async fn live(
    args: &BenchArgs,
    rig: &Rig,
    sim: CourtSimConfig,
    statuses: Arc<StatusCount>,
) -> anyhow::Result<PorterRun> {
    let exe = std::env::current_exe().context("finding the porter executable")?;
    let mut brokers = spawn_brokers(&exe, rig, args.brokers)?;
    for broker in &mut brokers {
        broker.wait_ready().await?;
    }
    let base = brokers
        .iter()
        .map(BrokerProcess::usage)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stop = CancellationToken::new();
    let mut court = start_court(sim, &stop, statuses);
    let (report, mut problems) = await_court(&mut court, &mut brokers, &stop).await?;
    let figures = stop_brokers(brokers, &base, &mut problems).await;
    Ok(PorterRun {
        secs: report.timings.complete_secs,
        msgs_per_sec: report.timings.completed_per_sec.unwrap_or(0.0),
        court: report,
        brokers: figures,
        problems,
    })
}

type CourtTask = tokio::task::JoinHandle<anyhow::Result<CourtSimReport>>;

/// Starts the court simulator; each status it records is counted.
fn start_court(sim: CourtSimConfig, stop: &CancellationToken, statuses: Arc<StatusCount>) -> CourtTask {
    let stop = stop.clone();
    let printer = move |_line: &str| {
        statuses.count.fetch_add(1, Ordering::SeqCst);
        *statuses.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    };
    tokio::spawn(porter_simulators::court::run_with_printer(
        sim,
        async move { stop.cancelled().await },
        printer,
    ))
}

/// Waits until the court queues hold `planned` messages: everything is
/// published and no broker has taken any.
async fn wait_queued(
    amqp_url: &str,
    queues: &[String],
    planned: usize,
    court: &CourtTask,
    limit: Duration,
) -> anyhow::Result<()> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("cannot connect to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    let started = Instant::now();
    let mut queued = 0;
    while started.elapsed() < limit {
        anyhow::ensure!(
            !court.is_finished(),
            "the court simulator stopped before publishing everything"
        );
        queued = 0;
        for queue in queues {
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .with_context(|| format!("court queue {queue} is missing"))?;
            queued += declared.message_count() as usize;
        }
        if queued >= planned {
            let _ = connection.close(200, "OK".into()).await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = connection.close(200, "OK".into()).await;
    anyhow::bail!("only {queued} of {planned} messages queued after {} s", limit.as_secs())
}

fn spawn_brokers(exe: &std::path::Path, rig: &Rig, n: usize) -> anyhow::Result<Vec<BrokerProcess>> {
    (1..=n)
        .map(|i| BrokerProcess::spawn(exe, &rig.config, free_port()?, rig.broker_log(i)))
        .collect()
}

/// Waits for the court simulator, checking every second that every broker
/// still runs (a broker that exits ends the run, with the problem noted).
async fn await_court(
    court: &mut CourtTask,
    brokers: &mut [BrokerProcess],
    stop: &CancellationToken,
) -> anyhow::Result<(CourtSimReport, Vec<String>)> {
    let mut problems = Vec::new();
    loop {
        tokio::select! {
            joined = &mut *court => {
                let report = joined.context("the court simulator panicked")??;
                return Ok((report, problems));
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                for broker in brokers.iter_mut() {
                    if let Err(e) = broker.ensure_running()
                        && !stop.is_cancelled()
                    {
                        problems.push(format!("{e:#}"));
                        stop.cancel();
                    }
                }
            }
        }
    }
}

/// Reads each broker's usage, then stops it.
async fn stop_brokers(brokers: Vec<BrokerProcess>, base: &[Usage], problems: &mut Vec<String>) -> Vec<BrokerFigures> {
    let mut figures = Vec::new();
    for (broker, base) in brokers.into_iter().zip(base) {
        let pid = broker.pid();
        match broker.usage() {
            Ok(usage) => figures.push(BrokerFigures {
                pid,
                cpu_secs: round3(usage.cpu_secs - base.cpu_secs),
                peak_rss_bytes: usage.peak_rss_bytes,
            }),
            Err(e) => problems.push(format!("broker {pid}: {e:#}")),
        }
        match broker.stop().await {
            Ok(status) if status.success() => {}
            Ok(status) => problems.push(format!("broker {pid} exited with {status}")),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    figures
}

/// The relay over the run's bodies (regenerated from the same seed).
async fn run_relay(
    args: &BenchArgs,
    sim: &CourtSimConfig,
    messages: usize,
    statuses: usize,
) -> anyhow::Result<RelayReport> {
    let orders = porter_simulators::court::plan(sim, porter_simulators::court::orders::now_pacific(), "bench");
    let bodies: Vec<Vec<u8>> = orders
        .iter()
        .flatten()
        .take(messages)
        .map(porter_simulators::court::publisher::body)
        .collect();
    let arrival = match args.mode {
        Mode::Backlog => Arrival::Backlog,
        Mode::Live => Arrival::Rate(args.rate),
    };
    relay::run(
        &args.amqp_url,
        &bodies,
        statuses,
        arrival,
        rig::PREFETCH,
        Duration::from_secs(args.timeout),
    )
    .await
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> BenchArgs {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    /// Several brokers need PostgreSQL; the default store is SQLite.
    #[test]
    fn several_brokers_need_postgres() {
        assert!(check(&parse(&[])).is_ok());
        let e = check(&parse(&["--brokers", "2"])).unwrap_err().to_string();
        assert!(e.contains("PostgreSQL"), "{e}");
        assert!(check(&parse(&["--brokers", "2", "--store", "sqlite:///tmp/x.db"])).is_err());
        assert!(check(&parse(&["--brokers", "2", "--store", "postgres://u@h/db"])).is_ok());
        assert!(check(&parse(&["--brokers", "0", "--store", "postgres://u@h/db"])).is_err());
    }

    /// Live mode needs a positive rate; counts must be in range.
    #[test]
    fn counts_and_rate_are_checked() {
        assert!(check(&parse(&["--mode", "live", "--rate", "0"])).is_err());
        assert!(check(&parse(&["--mode", "live", "--rate", "50"])).is_ok());
        assert!(check(&parse(&["--courts", "0"])).is_err());
        assert!(check(&parse(&["--orders", "0"])).is_err());
        assert!(check(&parse(&["--store", "mysql://h/db"])).is_err());
    }
}
