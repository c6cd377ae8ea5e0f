//! `porter demo`: the whole system in one process, for a first look.
//!
//! It starts the partner simulators (CLETS/CARPOS, and DOJ and LEA when the
//! configuration has their sections), the broker with
//! `deploy/local/porter.toml`, and a court simulator that publishes a few
//! realistic orders for the demo courts (Sacramento, Los Angeles and a
//! tribal court) and prints every status that comes back. Everything then
//! keeps running, so you can publish orders of your own, until Ctrl-C.
//! Each run starts from an empty store, as the simulators start empty.
//! The demo's partner secrets are generated on first use into the
//! configuration's `var/secrets/` (never part of the repository).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use porter_simulators::clets::CletsSimConfig;
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Runs the demo until `shutdown` resolves.
pub async fn run(config_path: &Path, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let folder = config_path.parent().unwrap_or(Path::new("."));
    ensure_secrets(&folder.join("var/secrets"), &["doj-token", "lea-secret"])?;
    let config = Config::load(config_path)?;
    fresh_store(&config.store.url)?;
    let stop = CancellationToken::new();
    // Ctrl-C is honoured at every stage, including start-up.
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_signal.cancel();
    });
    let result = start_and_publish(&config, &stop).await;
    if let Err(e) = &result {
        eprintln!("porter demo: {e:#}");
        stop.cancel();
    }
    result
}

async fn start_and_publish(config: &Config, stop: &CancellationToken) -> anyhow::Result<()> {
    let clets_addr = config.partners.clets.address.clone();
    let clets_tcp = TcpListener::bind(&clets_addr)
        .await
        .with_context(|| format!("binding the CLETS simulator to {clets_addr}"))?;
    let clets_control = TcpListener::bind("127.0.0.1:7101")
        .await
        .context("binding the CLETS simulator's control port 127.0.0.1:7101")?;
    let sim_stop = stop.clone();
    let clets_sim = tokio::spawn(porter_simulators::clets::run(
        clets_tcp,
        clets_control,
        CletsSimConfig::default(),
        async move { sim_stop.cancelled().await },
    ));
    println!("CLETS/CARPOS simulator: TCP {clets_addr}, page http://127.0.0.1:7101/");
    let mut sims = vec![clets_sim];
    if let Some(doj) = &config.partners.doj {
        let addr = host_port(&doj.url)?;
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding the DOJ simulator to {addr}"))?;
        let sim_stop = stop.clone();
        let sim = crate::simulate::doj(config)?;
        sims.push(tokio::spawn(porter_simulators::doj::run(listener, sim, async move {
            sim_stop.cancelled().await
        })));
        println!("DOJ firearms simulator: http://{addr}/");
    }
    if let Some(lea) = &config.partners.lea {
        let addr = host_port(&lea.base_url)?;
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding the LEA simulator to {addr}"))?;
        let sim_stop = stop.clone();
        let sim = crate::simulate::lea(config)?;
        sims.push(tokio::spawn(porter_simulators::lea::run(listener, sim, async move {
            sim_stop.cancelled().await
        })));
        println!("LEA RMS simulator (every agency): http://{addr}/");
    }

    let http = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP {}", config.http.listen))?;
    let broker_stop = stop.clone();
    let broker = tokio::spawn(crate::broker::run(config.clone(), http, async move {
        broker_stop.cancelled().await
    }));
    let ready_url = format!("http://{}/readyz", config.http.listen);
    tokio::select! {
        ready = wait_ready(&ready_url, Duration::from_secs(60)) => ready?,
        _ = stop.cancelled() => return finish(broker, sims).await,
    }
    println!(
        "Porter broker: http://{} (metrics at /metrics, API at /api/v1)",
        config.http.listen
    );

    let courts = config
        .courts
        .iter()
        .enumerate()
        .map(|(i, c)| SimCourt {
            ori: c.ori.clone(),
            name: c.name.clone(),
            format: if i % 2 == 0 {
                CourtFormat::Xml
            } else {
                CourtFormat::Fixed
            },
        })
        .collect();
    let sim_config = CourtSimConfig {
        amqp_url: config.amqp.url.clone(),
        courts,
        orders_per_court: 2,
        lifecycle: true,
        ..CourtSimConfig::default()
    };
    println!("Court simulator: publishing orders for {} courts…", config.courts.len());
    let court_stop = stop.clone();
    let report = porter_simulators::court::run(sim_config, async move { court_stop.cancelled().await }).await?;
    if !stop.is_cancelled() {
        println!("{}", report.summary());
        println!("Porter is running. Publish your own orders (see README), or press Ctrl-C to stop.");
    }
    stop.cancelled().await;
    finish(broker, sims).await
}

type Task = tokio::task::JoinHandle<anyhow::Result<()>>;

async fn finish(broker: Task, sims: Vec<Task>) -> anyhow::Result<()> {
    broker.await??;
    for sim in sims {
        sim.await??;
    }
    println!("Demo stopped.");
    Ok(())
}

/// `host:port` of an `http://host:port[/…]` URL.
fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    anyhow::ensure!(authority.contains(':'), "{url}: the demo needs an explicit port");
    Ok(authority.to_string())
}

/// Creates each missing secret file in `folder` with 32 random bytes in
/// hex, readable by the owner only.
fn ensure_secrets(folder: &Path, names: &[&str]) -> anyhow::Result<()> {
    use rand::RngCore as _;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    for name in names {
        let path = folder.join(name);
        if path.exists() {
            continue;
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        std::fs::write(&path, hex::encode(bytes)).with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// The simulators keep their records in memory, so the demo starts from an
/// empty store too: otherwise work left from an earlier run would go to a
/// CARPOS that never saw its orders. Only a SQLite file is removed.
fn fresh_store(url: &str) -> anyhow::Result<()> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("cannot remove the demo store {file}: {e}")),
        }
    }
    Ok(())
}

async fn wait_ready(url: &str, limit: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!(
        "the broker was not ready within {} s ({url}); is RabbitMQ running?",
        limit.as_secs()
    )
}
