//! The `porter` command (ICD §10).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use porter_simulators::court::{CloseMode, CourtFormat, CourtSimReport, FormatChoice};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "porter", version, about = "Porter: protective-order integration broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Broker {
        #[arg(long, env = "PORTER_CONFIG")]
        config: PathBuf,
    },
    /// Run the whole system locally: simulators, broker and demo courts.
    Demo {
        #[arg(long, default_value = "deploy/local/porter.toml")]
        config: PathBuf,
    },
    /// Check a vendor's files offline (stateless checks; exit 0 valid, 1 invalid, 2 usage error).
    Validate(porter::vendor::validate::ValidateArgs),
    /// Publish one order message as a court would.
    Publish(porter::publish::PublishArgs),
    /// Work on dead letters through the running broker's API: list, show, replay, edit, discard, audit.
    Dlq(porter::ops::dlq_cli::DlqArgs),
    /// Run a simulator.
    #[command(subcommand)]
    Sim(Sim),
    /// Court-side adapters.
    #[command(subcommand)]
    Court(CourtCmd),
    /// Print, and with --apply apply, the RabbitMQ definitions: topology, policies, court users.
    Topology(porter::transport::topology::command::TopologyArgs),
    /// Measure throughput, latency, CPU and memory end to end against a raw
    /// AMQP relay in the same run (exit 0 clean, 1 not clean, 2 usage error).
    Bench(porter::bench::BenchArgs),
}

#[derive(Subcommand)]
enum CourtCmd {
    /// Watch a directory for batch files and publish their orders.
    FileDrop(porter::court::file_drop::FileDropArgs),
}

#[derive(Subcommand)]
enum Sim {
    /// The CLETS/CARPOS simulator (framed TCP plus an HTTP control API).
    Clets {
        #[arg(long, default_value = "127.0.0.1:7001")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:7101")]
        control: SocketAddr,
        /// The broker configuration: only its courts' ORIs are accepted
        /// (`E06` otherwise). Without it, any well-formed ORI is.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The DOJ firearms simulator (HTTP; control API under `/_sim/`).
    Doj {
        #[arg(long, default_value = "127.0.0.1:7002")]
        listen: SocketAddr,
        /// The broker configuration: the simulator accepts its DOJ token.
        #[arg(long, default_value = "deploy/local/porter.toml")]
        config: PathBuf,
    },
    /// The LEA RMS simulator: many agencies under `/<ORI>/orders` (HTTP;
    /// control API under `/_sim/`).
    Lea {
        #[arg(long, default_value = "127.0.0.1:7003")]
        listen: SocketAddr,
        /// The broker configuration: its agencies and signing secrets.
        #[arg(long, default_value = "deploy/local/porter.toml")]
        config: PathBuf,
    },
    /// A court CMS simulator: publishes orders, checks their statuses and
    /// reports latencies (exit 0 when the run is clean, 1 otherwise).
    Court(SimCourtArgs),
}

/// `porter sim court`: which orders to publish, and how to report.
///
/// Each court of the configuration is simulated; courts alternate between
/// XML and fixed-width unless `--format` says otherwise. The report (counts,
/// publish-to-ACCEPTED and publish-to-last-PARTNER_ACCEPTED latencies with
/// p50/p95/p99/max, messages per second) goes to stdout; logs go to stderr.
/// Exit code: 0 when every message was sent, completed and accepted by every
/// partner with nothing odd on the way; 1 otherwise; 2 for a usage error.
#[derive(Args)]
struct SimCourtArgs {
    /// The broker configuration; its courts are simulated.
    #[arg(long, default_value = "deploy/local/porter.toml")]
    config: PathBuf,
    /// Orders per court.
    #[arg(long, default_value_t = 2)]
    orders: u32,
    /// Send MODIFY and SERVICE after each ISSUE.
    #[arg(long)]
    lifecycle: bool,
    /// With --lifecycle: close each order after its SERVICE with a TERMINATE,
    /// a CANCEL, or mixed (a CANCEL for about one order in ten).
    #[arg(long, value_enum, value_name = "HOW", requires = "lifecycle")]
    close: Option<CloseArg>,
    /// Messages per second over all courts; 0 publishes as fast as publisher
    /// confirms allow.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Seed of the order generator: the same seed generates the same orders
    /// (with new message ids). Default: taken from the clock; the report
    /// prints it.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Every court writes this format instead of its own: xml, fixed, or mixed
    /// (each order's format drawn from the seed).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Attach a signed-order image (a generated PDF of 20 KiB to 3 MiB, with
    /// its SHA-256) to every XML ISSUE and about one XML MODIFY in three.
    /// Fixed-width orders carry no image: the format has no image record.
    #[arg(long)]
    images: bool,
    /// After the last publish, wait at most SECS for outstanding statuses;
    /// the run ends as soon as every message is complete.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    wait: u64,
    /// Print the report as one JSON document on stdout (status lines then go
    /// to stderr).
    #[arg(long)]
    json: bool,
}

/// `--close`.
#[derive(Clone, Copy, ValueEnum)]
enum CloseArg {
    /// Always a TERMINATE (sequence 4).
    Terminate,
    /// Always a CANCEL (sequence 4).
    Cancel,
    /// A CANCEL for about one order in ten, a TERMINATE otherwise.
    Mixed,
}

/// `--format`.
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// XML (ICD §2).
    Xml,
    /// Fixed-width `cms-a/1` (ICD §3).
    Fixed,
    /// XML or fixed-width, drawn per order.
    Mixed,
}

/// The log directive that silences lapin's log line for returned messages.
const QUIET_RETURNS: &str = "lapin::returned_messages=error";

fn main() -> std::process::ExitCode {
    // lapin logs every message RabbitMQ returns (`basic.return`) at WARN with its
    // whole body, which holds personal data (and, with images, megabytes): those
    // lines are never wanted. Porter reports a return itself, by its ids.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(QUIET_RETURNS.parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::Validate(args) = &cli.command {
        // Offline and synchronous: no runtime, and its own exit codes.
        let code = porter::vendor::validate::run(args, &mut std::io::stdout().lock());
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("porter: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let command = match cli.command {
        // Its own exit codes: 2 for a usage error.
        Command::Bench(args) => return std::process::ExitCode::from(runtime.block_on(porter::bench::run(args))),
        command => command,
    };
    match runtime.block_on(run(command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porter: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Broker { config } => {
            let config = porter::config::Config::load(&config)?;
            let lock = porter::broker::lock::BrokerLock::take(&config.store.url)?;
            let http = TcpListener::bind(config.http.listen).await?;
            porter::broker::run_locked(config, http, lock, shutdown_signal()).await
        }
        Command::Demo { config } => porter::demo::run(&config, shutdown_signal()).await,
        Command::Validate(_) => unreachable!("handled before the runtime starts"),
        Command::Bench(_) => unreachable!("handled with its own exit codes"),
        Command::Publish(args) => porter::publish::publish(args).await,
        Command::Dlq(args) => porter::ops::dlq_cli::run(args).await,
        Command::Court(CourtCmd::FileDrop(args)) => porter::court::file_drop::run(args, shutdown_signal()).await,
        Command::Topology(args) => porter::transport::topology::command::run(args).await,
        Command::Sim(Sim::Clets {
            listen,
            control,
            config,
        }) => {
            let mut sim = porter_simulators::clets::CletsSimConfig::default();
            if let Some(path) = config {
                let config = porter::config::Config::load(&path)?;
                sim.valid_oris = config.courts.iter().map(|c| c.ori.clone()).collect();
            }
            let tcp = TcpListener::bind(listen).await?;
            let control_listener = TcpListener::bind(control).await?;
            eprintln!("CLETS simulator on {listen}, page http://{control}/, state http://{control}/_sim/state");
            porter_simulators::clets::run(tcp, control_listener, sim, shutdown_signal()).await
        }
        Command::Sim(Sim::Doj { listen, config }) => {
            let sim = porter::simulate::doj(&porter::config::Config::load(&config)?)?;
            let listener = TcpListener::bind(listen).await?;
            eprintln!(
                "DOJ simulator on http://{listen}/doj/firearms/v1/notices, page http://{listen}/, state http://{listen}/_sim/state"
            );
            porter_simulators::doj::run(listener, sim, shutdown_signal()).await
        }
        Command::Sim(Sim::Lea { listen, config }) => {
            let sim = porter::simulate::lea(&porter::config::Config::load(&config)?)?;
            let listener = TcpListener::bind(listen).await?;
            eprintln!(
                "LEA simulator on http://{listen}/<ORI>/orders, page http://{listen}/, state http://{listen}/_sim/state"
            );
            porter_simulators::lea::run(listener, sim, shutdown_signal()).await
        }
        Command::Sim(Sim::Court(args)) => sim_court(args).await,
    }
}

/// Runs `porter sim court`: an error (exit 1) unless the report is clean.
async fn sim_court(args: SimCourtArgs) -> anyhow::Result<()> {
    let config = porter::config::Config::load(&args.config)?;
    let courts = config
        .courts
        .iter()
        .enumerate()
        .map(|(i, c)| porter_simulators::court::SimCourt {
            ori: c.ori.clone(),
            name: c.name.clone(),
            format: if i % 2 == 0 {
                CourtFormat::Xml
            } else {
                CourtFormat::Fixed
            },
        })
        .collect();
    let defaults = porter_simulators::court::CourtSimConfig::default();
    let sim = porter_simulators::court::CourtSimConfig {
        amqp_url: config.amqp.url.clone(),
        amqp_urls: config.amqp.urls.clone(),
        courts,
        orders_per_court: args.orders,
        lifecycle: args.lifecycle,
        close: args.close.is_some(),
        close_mode: match args.close {
            Some(CloseArg::Terminate) => CloseMode::Terminate,
            Some(CloseArg::Cancel) => CloseMode::Cancel,
            Some(CloseArg::Mixed) | None => CloseMode::Mixed,
        },
        format_override: args.format.map(|f| match f {
            FormatArg::Xml => FormatChoice::Xml,
            FormatArg::Fixed => FormatChoice::Fixed,
            FormatArg::Mixed => FormatChoice::Mixed,
        }),
        images: args.images,
        rate_per_sec: args.rate,
        status_timeout_secs: args.wait,
        seed: args.seed.unwrap_or(defaults.seed),
        ..defaults
    };
    let report = if args.json {
        porter_simulators::court::run_with_printer(sim, ctrl_c(), |line| eprintln!("{line}")).await?
    } else {
        porter_simulators::court::run(sim, ctrl_c()).await?
    };
    print_report(&report, args.json);
    anyhow::ensure!(report.is_clean(), "the court simulator's run is not clean");
    Ok(())
}

/// The report on stdout: human lines, or one JSON document.
fn print_report(report: &CourtSimReport, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.summary());
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c().await,
        };
        tokio::select! {
            _ = ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await
}
