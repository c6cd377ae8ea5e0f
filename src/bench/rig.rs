//! What one bench run stands on: a run folder, the three partner simulators
//! in the bench process, a fresh store, fresh courts, and the broker
//! configuration file that ties them together.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use porter_simulators::court::{CourtFormat, SimCourt};
use rand::Rng as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `[amqp] prefetch` of the brokers, as in `deploy/local/porter.toml`; the
/// raw relay uses the same.
pub const PREFETCH: u16 = 64;

/// `[amqp] confirm_window` of the brokers, as in `deploy/local/porter.toml`.
pub const CONFIRM_WINDOW: usize = 512;

/// The store a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl StoreKind {
    /// The kind of a store URL, or a usage error.
    pub fn of(url: &str) -> anyhow::Result<StoreKind> {
        if url.starts_with("sqlite://") {
            Ok(StoreKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreKind::Postgres)
        } else {
            anyhow::bail!("--store {url:?}: expected sqlite://PATH or postgres://…")
        }
    }

    /// `sqlite` or `postgresql`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgresql",
        }
    }
}

/// The settings a rig is built from.
pub struct RigSettings<'a> {
    /// RabbitMQ.
    pub amqp_url: &'a str,
    /// `--store`, or `None` for a SQLite file in the run folder.
    pub store: Option<&'a str>,
    /// How many fresh courts.
    pub courts: usize,
    /// `[paths] schemas`.
    pub schemas: &'a Path,
    /// `[paths] mappings`.
    pub mappings: &'a Path,
}

/// The partner simulators, store, courts and configuration of one run.
pub struct Rig {
    /// The run folder: configuration, SQLite store, broker logs.
    pub dir: PathBuf,
    /// The broker configuration file.
    pub config: PathBuf,
    /// The simulated courts (fresh ORIs).
    pub courts: Vec<SimCourt>,
    /// The store's kind.
    pub store: StoreKind,
    pg_schema: Option<(String, String)>,
    amqp_url: String,
    stop: CancellationToken,
}

impl Rig {
    /// Starts the simulators on loopback ports of their own, prepares the
    /// store and writes the configuration.
    pub async fn start(settings: &RigSettings<'_>) -> anyhow::Result<Rig> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("porter-bench-{}", &tag[..12]));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stop = CancellationToken::new();
        let partners = match start_partners(&stop).await {
            Ok(partners) => partners,
            Err(e) => {
                stop.cancel();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let (store_url, store, pg_schema) = match settings.store {
            None => (
                format!("sqlite://{}", dir.join("porter.db").display()),
                StoreKind::Sqlite,
                None,
            ),
            Some(url) => match StoreKind::of(url)? {
                StoreKind::Sqlite => (url.to_string(), StoreKind::Sqlite, None),
                StoreKind::Postgres => {
                    let schema = format!("porter_bench_{}", &tag[..16]);
                    let scoped = create_schema(url, &schema).await?;
                    (scoped, StoreKind::Postgres, Some((url.to_string(), schema)))
                }
            },
        };
        let courts = fresh_courts(settings.courts);
        let toml = config_toml(settings, &store_url, &partners, &courts)?;
        let config = dir.join("porter.toml");
        std::fs::write(&config, toml).with_context(|| format!("writing {}", config.display()))?;
        Ok(Rig {
            dir,
            config,
            courts,
            store,
            pg_schema,
            amqp_url: settings.amqp_url.to_string(),
            stop,
        })
    }

    /// Where broker `n`'s standard error goes.
    pub fn broker_log(&self, n: usize) -> PathBuf {
        self.dir.join(format!("broker-{n}.log"))
    }

    /// Stops the simulators and drops the PostgreSQL schema. When `keep`
    /// is false (a clean run) the run folder and the courts' queues are
    /// removed too; otherwise they stay for a look (each run has fresh
    /// courts, so a kept queue never mixes with another run's).
    pub async fn finish(self, keep: bool) {
        self.stop.cancel();
        if let Some((base, schema)) = &self.pg_schema {
            drop_schema(base, schema).await;
        }
        if keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Err(e) = delete_court_queues(&self.amqp_url, &self.courts).await {
            eprintln!("porter bench: could not delete the run's court queues: {e:#}");
        }
    }
}

/// The partner simulators' addresses and credentials.
struct Partners {
    clets: String,
    doj: String,
    doj_token: String,
    lea: String,
    lea_secret: String,
}

async fn start_partners(stop: &CancellationToken) -> anyhow::Result<Partners> {
    let clets_tcp = TcpListener::bind("127.0.0.1:0").await?;
    let clets_control = TcpListener::bind("127.0.0.1:0").await?;
    let clets = clets_tcp.local_addr()?.to_string();
    let s = stop.clone();
    tokio::spawn(porter_simulators::clets::run(
        clets_tcp,
        clets_control,
        Default::default(),
        async move { s.cancelled().await },
    ));
    let doj_token = random_secret();
    let doj_listener = TcpListener::bind("127.0.0.1:0").await?;
    let doj = format!("http://{}", doj_listener.local_addr()?);
    let doj_config = porter_simulators::doj::DojSimConfig {
        tokens: vec![doj_token.clone()],
        ..Default::default()
    };
    let s = stop.clone();
    let doj_task = tokio::spawn(porter_simulators::doj::run(doj_listener, doj_config, async move {
        s.cancelled().await
    }));
    serving("DOJ", &doj, doj_task).await?;
    let lea_secret = random_secret();
    let lea_listener = TcpListener::bind("127.0.0.1:0").await?;
    let lea = format!("http://{}", lea_listener.local_addr()?);
    let lea_config = porter_simulators::lea::LeaSimConfig {
        default_secret: Some(lea_secret.clone()),
        ..Default::default()
    };
    let s = stop.clone();
    let lea_task = tokio::spawn(porter_simulators::lea::run(lea_listener, lea_config, async move {
        s.cancelled().await
    }));
    serving("LEA", &lea, lea_task).await?;
    Ok(Partners {
        clets,
        doj,
        doj_token,
        lea,
        lea_secret,
    })
}

/// Waits until the HTTP simulator at `url` answers (any status will do),
/// and fails with its own error if it stopped instead: the DOJ simulator
/// does not start without `xmllint`, and a run against a simulator that
/// is not there would only end at `--timeout`, unclean, with no reason.
async fn serving(name: &str, url: &str, task: tokio::task::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    loop {
        if task.is_finished() {
            return match task.await {
                Ok(Err(e)) => Err(e.context(format!("the {name} simulator did not start"))),
                _ => Err(anyhow::anyhow!("the {name} simulator stopped at once")),
            };
        }
        let probe = client.get(url).timeout(std::time::Duration::from_secs(1)).send().await;
        if probe.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the {name} simulator did not answer on {url} within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// 32 random bytes in hex: a throw-away partner secret for one run.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    hex::encode(bytes)
}

/// `n` courts with fresh ORIs (`ZB` and 7 random characters), XML and
/// fixed-width alternating, so that no run reads another's queues.
fn fresh_courts(n: usize) -> Vec<SimCourt> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|i| {
            let tail: String = (0..7)
                .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
                .collect();
            SimCourt {
                ori: format!("ZB{tail}"),
                name: format!("bench court {i}"),
                format: if i % 2 == 0 {
                    CourtFormat::Xml
                } else {
                    CourtFormat::Fixed
                },
            }
        })
        .collect()
}

/// The brokers' configuration: the demo's AMQP settings, the partners of
/// this run, its store and courts. Secrets are written as literal values:
/// they live only as long as the run folder.
fn config_toml(
    settings: &RigSettings<'_>,
    store_url: &str,
    partners: &Partners,
    courts: &[SimCourt],
) -> anyhow::Result<String> {
    let absolute = |p: &Path| -> anyhow::Result<String> {
        let full = std::fs::canonicalize(p).with_context(|| format!("{}: no such folder", p.display()))?;
        Ok(full.display().to_string())
    };
    let mut toml = format!(
        "[amqp]\nurl = {amqp:?}\nprefetch = {PREFETCH}\nconfirm_window = {CONFIRM_WINDOW}\n\
         [store]\nurl = {store_url:?}\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [paths]\nschemas = {schemas:?}\nmappings = {mappings:?}\n\
         [partners.clets]\naddress = {clets:?}\nconnections = 4\n\
         [partners.doj]\nurl = {doj:?}\ntoken = {doj_token:?}\n\
         [partners.lea]\nbase_url = {lea:?}\ndefault_secret = {lea_secret:?}\n",
        amqp = settings.amqp_url,
        schemas = absolute(settings.schemas)?,
        mappings = absolute(settings.mappings)?,
        clets = partners.clets,
        doj = partners.doj,
        doj_token = partners.doj_token,
        lea = partners.lea,
        lea_secret = partners.lea_secret,
    );
    for court in courts {
        toml.push_str(&format!(
            "[[courts]]\nori = {:?}\nname = {:?}\nsheriff_ori = \"CA0340000\"\nlayouts = [\"cms-a/1\"]\n",
            court.ori, court.name
        ));
    }
    Ok(toml)
}

/// Creates `schema` in the database of `base` and returns a URL whose
/// connections use it.
async fn create_schema(base: &str, schema: &str) -> anyhow::Result<String> {
    use sqlx::{Connection as _, Executor as _};
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(base)
        .await
        .context("--store: cannot connect to PostgreSQL")?;
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .with_context(|| format!("--store: cannot create schema {schema}"))?;
    let _ = admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// Deletes each court's `por.inbound.<ORI>` and `por.responses.<ORI>`:
/// without it every run would leave six quorum queues behind on RabbitMQ.
async fn delete_court_queues(amqp_url: &str, courts: &[SimCourt]) -> anyhow::Result<()> {
    let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    for court in courts {
        for queue in [
            format!("por.inbound.{}", court.ori),
            format!("por.responses.{}", court.ori),
        ] {
            channel
                .queue_delete(queue.as_str().into(), lapin::options::QueueDeleteOptions::default())
                .await
                .with_context(|| format!("deleting {queue}"))?;
        }
    }
    let _ = connection.close(200, "OK".into()).await;
    Ok(())
}

async fn drop_schema(base: &str, schema: &str) {
    use sqlx::{Connection as _, Executor as _};
    if let Ok(mut admin) = sqlx::AnyConnection::connect(base).await {
        let _ = admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
        let _ = admin.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Store URLs name their kind; anything else is a usage error.
    #[test]
    fn store_kinds() {
        assert_eq!(StoreKind::of("sqlite:///tmp/x.db").unwrap(), StoreKind::Sqlite);
        assert_eq!(StoreKind::of("postgres://u@h/db").unwrap(), StoreKind::Postgres);
        assert_eq!(StoreKind::of("postgresql://u@h/db").unwrap(), StoreKind::Postgres);
        assert!(StoreKind::of("mysql://h/db").is_err());
    }

    /// Fresh courts have valid, distinct ORIs and alternate formats.
    #[test]
    fn fresh_courts_are_valid_and_distinct() {
        let courts = fresh_courts(3);
        assert_eq!(courts.len(), 3);
        for c in &courts {
            assert_eq!(c.ori.len(), 9);
            assert!(c.ori.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        assert_ne!(courts[0].ori, courts[1].ori);
        assert_eq!(courts[1].format, CourtFormat::Fixed);
    }
}
