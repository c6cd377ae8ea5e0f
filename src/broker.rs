//! The broker: wires intake, delivery, statuses, transport and the HTTP
//! surface together, and shuts them down in the right order.
//!
//! Shutdown order: stop consuming → let the intake finish and acknowledge
//! what it committed → stop the delivery loops after their current round →
//! close the AMQP connection → stop HTTP. Whatever was not acknowledged is
//! redelivered by RabbitMQ at the next start.
//!
//! A SQLite store serves one broker: the broker holds an OS lock on
//! `<db>.broker-lock` beside the database while it runs ([`lock`]).

pub mod lock;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::delivery::partners;
use crate::formats::fixed::Layout;
use crate::formats::xml::XmlLimits;
use crate::intake::{Formats, Intake};
use crate::mapping::clets::CletsTables;
use crate::mapping::code_map::CodeMap;
use crate::mapping::codes::CodeLists;
use crate::ops::http::{OpsState, run as serve_http};
use crate::routing::Router;
use crate::status::Relay;
use crate::store::{Lead, SqlStore, Store};
use crate::transport::Publisher;
use crate::transport::supervisor::Supervisor;
use lock::BrokerLock;

/// Loads and checks every layout, code table and CLETS table the
/// configuration needs. Any problem stops the broker before it starts.
pub fn load_formats(config: &Config) -> anyhow::Result<Formats> {
    let codes = CodeLists::load(config.paths.mappings.join("codes.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let maps_dir = config.paths.mappings.join("code-maps");
    let code_maps = load_code_maps(&maps_dir, &codes)?;
    let mut layouts = HashMap::new();
    let dir = config.paths.schemas.join("layouts");
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading layouts in {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let mut layout = Layout::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(name) = layout.code_map_name() {
                let map = code_maps.get(name).with_context(|| {
                    format!(
                        "layout {}: code_map {name:?} is not in {}",
                        path.display(),
                        maps_dir.display()
                    )
                })?;
                layout = layout.with_code_map(map.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            layouts.insert(layout.name().to_string(), layout);
        }
    }
    for court in &config.courts {
        for name in &court.layouts {
            anyhow::ensure!(
                layouts.contains_key(name),
                "court {}: layout {name:?} is not in {}",
                court.ori,
                dir.display()
            );
        }
        if let Some(name) = &court.code_map {
            let map = code_maps.get(name).with_context(|| {
                format!(
                    "court {}: code_map {name:?} is not in {}",
                    court.ori,
                    maps_dir.display()
                )
            })?;
            for layout in &court.layouts {
                layouts[layout]
                    .check_code_map(map)
                    .map_err(|e| anyhow::anyhow!("court {}: {e}", court.ori))?;
            }
        }
    }
    let clets = CletsTables::load(&config.paths.mappings.join("clets.toml"))?;
    Ok(Formats {
        layouts,
        code_maps,
        codes,
        clets,
        xml_limits: XmlLimits::default(),
    })
}

/// Loads and checks every code-map set in `dir` (`mappings/code-maps/*.toml`),
/// by name. No such folder: no sets.
fn load_code_maps(dir: &Path, codes: &CodeLists) -> anyhow::Result<HashMap<String, Arc<CodeMap>>> {
    let mut maps: HashMap<String, Arc<CodeMap>> = HashMap::new();
    if !dir.exists() {
        return Ok(maps);
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading code maps in {}", dir.display()))?;
    let mut paths: Vec<_> = entries.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let map = CodeMap::load(&path, codes).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(other) = maps.get(map.name()) {
            anyhow::bail!(
                "code map {}: name {:?} is also the name of {}",
                path.display(),
                map.name(),
                other.file()
            );
        }
        maps.insert(map.name().to_string(), Arc::new(map));
    }
    Ok(maps)
}

/// Runs the broker until `shutdown` resolves. It first takes the SQLite
/// store's broker lock ([`BrokerLock`]); another broker holding it is an
/// error.
pub async fn run(config: Config, http: TcpListener, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let lock = BrokerLock::take(&config.store.url)?;
    run_locked(config, http, lock, shutdown).await
}

/// Like [`run`], with the store's broker lock already taken (`porter broker`
/// takes it before it binds the HTTP port, so that a second broker on the
/// same store is told about the store, not about the port). `lock` is held
/// until the broker stops.
pub async fn run_locked(
    config: Config,
    http: TcpListener,
    lock: Option<BrokerLock>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let _lock = lock;
    let mut config = config;
    config.resolve_secrets()?;
    let formats = Arc::new(load_formats(&config)?);
    prepare_sqlite_dir(&config.store.url);
    let router = Router::from_config(&config)?;
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&config.store.url)
            .await
            .context("opening the store")?
            .with_router(Arc::new(router)),
    );
    let publisher = Publisher::new(config.amqp.confirm_window * 2);
    let relay = Relay {
        store: store.clone(),
        publisher: publisher.clone(),
    };
    let (connected_tx, connected_rx) = watch::channel(false);
    let (intake_tx, intake_rx) = mpsc::channel(4096);
    let courts = Arc::new(config.courts.clone());
    let deliveries_due = Arc::new(Notify::new());

    let stop_consuming = CancellationToken::new();
    let stop_work = CancellationToken::new();
    let close_amqp = CancellationToken::new();
    let stop_http = CancellationToken::new();

    let supervisor = Supervisor {
        amqp: config.amqp.clone(),
        courts: courts.clone(),
        publisher: publisher.clone(),
        intake: intake_tx,
        connected: connected_tx,
    };
    let amqp_task = tokio::spawn(supervisor.run(stop_consuming.clone(), close_amqp.clone()));

    let intake = Intake {
        store: store.clone(),
        formats: formats.clone(),
        courts: Arc::new(config.courts.iter().map(|c| (c.ori.clone(), c.clone())).collect()),
        relay: relay.clone(),
        batch_size: config.intake.batch_size,
        deliveries_due: deliveries_due.clone(),
    };
    let intake_task = tokio::spawn(intake.run(intake_rx, stop_consuming.clone()));

    let lease = crate::delivery::Lease::for_this_process(Duration::from_secs(config.store.lease_secs));
    let lead = Lead {
        store: store.clone(),
        owner: lease.owner.clone(),
    };
    let shared = partners::Shared {
        store: store.clone(),
        relay: relay.clone(),
        wake: deliveries_due.clone(),
        stop: stop_work.clone(),
        lease: lease.clone(),
    };
    let partner_tasks = partners::spawn(&config, formats.clets.clone(), &shared)?;
    let gap_task = tokio::spawn(crate::intake::gap_timeout::run(
        store.clone(),
        lead.clone(),
        relay.clone(),
        config.courts.clone(),
        stop_work.clone(),
    ));
    let sweep_task = tokio::spawn(relay.clone().sweep(Some(lead.clone()), stop_work.clone()));
    let retention = chrono::Duration::days(i64::from(config.store.dedup_retention_days));
    let purge_task = tokio::spawn(purge_loop(store.clone(), lead.clone(), retention, stop_work.clone()));

    let ops = OpsState {
        store: store.clone(),
        amqp_connected: connected_rx,
        metrics: crate::ops::metrics::handle(),
        lea: config.partners.lea.clone().map(Arc::new),
        relay: Some(relay.clone()),
        wake: Some(deliveries_due.clone()),
        formats: Some(formats.clone()),
    };
    let http_stop = stop_http.clone();
    let http_task = tokio::spawn(serve_http(http, ops, async move { http_stop.cancelled().await }));
    tracing::info!(courts = config.courts.len(), store = %redact(&config.store.url), "Porter broker started.");

    shutdown.await;
    tracing::info!("Porter broker stopping.");
    stop_consuming.cancel();
    let _ = intake_task.await;
    stop_work.cancel();
    for task in partner_tasks {
        let _ = task.await;
    }
    let _ = sweep_task.await;
    let _ = gap_task.await;
    let _ = purge_task.await;
    close_amqp.cancel();
    let _ = amqp_task.await;
    stop_http.cancel();
    let _ = http_task.await;
    tracing::info!("Porter broker stopped.");
    Ok(())
}

/// Forgets deduplication records past the retention period (ICD §5), at
/// start and then hourly.
/// Forgets old deduplication records once an hour, on the broker that
/// leads the task `purge`.
async fn purge_loop(store: Arc<dyn Store>, lead: Lead, retention: chrono::Duration, stop: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(3600);
    loop {
        let round = match lead.leads("purge", EVERY).await {
            true => store.purge_before(chrono::Utc::now() - retention).await,
            false => Ok(0),
        };
        match round {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "Forgot deduplication records past their retention."),
            Err(e) => tracing::warn!(error = %e, "Purging old deduplication records failed; will try again."),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The store URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

fn prepare_sqlite_dir(url: &str) {
    if let Some(parent) = url.strip_prefix("sqlite://").and_then(|p| Path::new(p).parent()) {
        let _ = std::fs::create_dir_all(parent);
    }
}
