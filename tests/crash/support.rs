//! Shared machinery of the crash tests: the partner simulators in-process,
//! the broker as a child process that can be killed and restarted, and the
//! court simulator as the load that checks every status.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use porter_simulators::court::{CourtFormat, CourtSimConfig, CourtSimReport, SimCourt};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::common::{DOJ_TOKEN, LEA_SECRET, amqp_url, repo, unique_ori};

/// Which store the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// One crash test: simulators, a config file, and the broker's runs.
pub struct CrashRun {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub http: String,
    pub clets_control: String,
    pub doj: String,
    pub lea: String,
    pub courts: Vec<String>,
    stop: CancellationToken,
    pg_schema: Option<String>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl CrashRun {
    pub async fn new(store: Store) -> CrashRun {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let clets_tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clets_ctl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clets_addr = clets_tcp.local_addr().unwrap();
        let clets_control = format!("http://{}", clets_ctl.local_addr().unwrap());
        let s = stop.clone();
        tokio::spawn(porter_simulators::clets::run(
            clets_tcp,
            clets_ctl,
            Default::default(),
            async move { s.cancelled().await },
        ));
        let doj_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let doj = format!("http://{}", doj_listener.local_addr().unwrap());
        let s = stop.clone();
        let doj_config = porter_simulators::doj::DojSimConfig {
            tokens: vec![DOJ_TOKEN.into()],
            ..Default::default()
        };
        tokio::spawn(porter_simulators::doj::run(doj_listener, doj_config, async move {
            s.cancelled().await
        }));
        let lea_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lea = format!("http://{}", lea_listener.local_addr().unwrap());
        let s = stop.clone();
        let lea_config = porter_simulators::lea::LeaSimConfig {
            default_secret: Some(LEA_SECRET.into()),
            ..Default::default()
        };
        tokio::spawn(porter_simulators::lea::run(lea_listener, lea_config, async move {
            s.cancelled().await
        }));

        let (store_url, pg_schema) = match store {
            Store::Sqlite => (format!("sqlite://{}", dir.path().join("porter.db").display()), None),
            Store::Postgres => {
                let (url, schema) = pg_schema().await;
                (url, Some(schema))
            }
        };
        let http_port = free_port();
        let courts = vec![unique_ori(), unique_ori()];
        let mut toml = format!(
            "[amqp]\nurl = {:?}\nreconnect_ms = 200\n[store]\nurl = {:?}\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\
             [paths]\nschemas = {:?}\nmappings = {:?}\n\
             [partners.clets]\naddress = \"{clets_addr}\"\n[partners.clets.retry]\nmin_ms = 200\nmax_ms = 2000\n\
             [partners.doj]\nurl = \"{doj}\"\ntoken = \"{DOJ_TOKEN}\"\n[partners.doj.retry]\nmin_ms = 200\nmax_ms = 2000\n\
             [partners.lea]\nbase_url = \"{lea}\"\ndefault_secret = \"{LEA_SECRET}\"\n[partners.lea.retry]\nmin_ms = 200\nmax_ms = 2000\n",
            amqp_url(),
            store_url,
            repo().join("schemas").display().to_string(),
            repo().join("mappings").display().to_string(),
        );
        for c in &courts {
            toml.push_str(&format!(
                "[[courts]]\nori = \"{c}\"\nsheriff_ori = \"CA0340000\"\nlayouts = [\"cms-a/1\"]\n"
            ));
        }
        let config = dir.path().join("porter.toml");
        std::fs::write(&config, toml).unwrap();
        CrashRun {
            dir,
            config,
            http: format!("http://127.0.0.1:{http_port}"),
            clets_control,
            doj,
            lea,
            courts,
            stop,
            pg_schema,
        }
    }

    /// Starts the broker; `failpoints` goes to `PORTER_FAILPOINTS`. Its
    /// stderr is kept in `run-<n>.log`.
    fn start_broker(&self, n: usize, failpoints: &str, seed: u64) -> Child {
        let log = std::fs::File::create(self.log(n)).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_porter"));
        cmd.arg("broker")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env("PORTER_FAILPOINT_SEED", seed.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if !failpoints.is_empty() {
            cmd.env("PORTER_FAILPOINTS", failpoints);
        }
        cmd.spawn().expect("start porter broker")
    }

    fn log(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("run-{n}.log"))
    }

    /// The load: both courts' lifecycles through the court simulator, with
    /// the default `order_window` (8 orders of a court in flight together,
    /// so an order's later messages arrive while its earlier ones are still
    /// being delivered).
    fn load(&self, orders: u32) -> CourtSimConfig {
        let per_court = orders.div_ceil(self.courts.len() as u32);
        CourtSimConfig {
            amqp_url: amqp_url(),
            courts: self
                .courts
                .iter()
                .enumerate()
                .map(|(i, ori)| SimCourt {
                    ori: ori.clone(),
                    name: format!("crash court {i}"),
                    format: if i % 2 == 0 {
                        CourtFormat::Xml
                    } else {
                        CourtFormat::Fixed
                    },
                })
                .collect(),
            orders_per_court: per_court,
            rate_per_sec: 0.0,
            lifecycle: true,
            close: true,
            status_timeout_secs: 600,
            ..CourtSimConfig::default()
        }
    }

    /// Runs the whole crash test and checks its outcome.
    pub async fn run_with_kills(self) {
        let orders: u32 = env_or("PORTER_CRASH_ORDERS", 2_000);
        let seed: u64 = env_or("PORTER_CRASH_SEED", 20261126);
        let mut rng = StdRng::seed_from_u64(seed);
        let started = Instant::now();
        let failpoints = [
            porter::failpoint::AFTER_STORE_COMMIT,
            porter::failpoint::AFTER_PARTNER_SEND,
            porter::failpoint::AFTER_STATUS_PUBLISH,
        ];
        // The first run declares the queues before the courts publish.
        let mut first = Some(self.start_broker(0, &format!("{}=0.02", failpoints[0]), rng.random()));
        self.wait_ready().await;
        let load = self.load(orders);
        let court_stop = self.stop.clone();
        let court = tokio::spawn(porter_simulators::court::run_with_printer(
            load,
            async move { court_stop.cancelled().await },
            |_| {},
        ));

        let mut run = 0;
        for name in failpoints {
            let mut child = match first.take() {
                Some(child) => child,
                None => self.start_broker(run, &format!("{name}=0.02"), rng.random()),
            };
            let exited = wait_exit(&mut child, Duration::from_secs(60)).await;
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
            let log = std::fs::read_to_string(self.log(run)).unwrap_or_default();
            assert!(
                log.contains(&format!("FAILPOINT {name}")),
                "failpoint {name} did not fire within 60 s; broker log:\n{log}"
            );
            println!(
                "run {run}: failpoint {name} fired ({:.1} s in)",
                started.elapsed().as_secs_f64()
            );
            run += 1;
        }
        for _ in 0..3 {
            let mut child = self.start_broker(run, "", 0);
            let after = Duration::from_millis(rng.random_range(1_000..5_000));
            tokio::time::sleep(after).await;
            child.kill().expect("SIGKILL the broker");
            let _ = child.wait();
            println!(
                "run {run}: SIGKILLed after {after:?} ({:.1} s in)",
                started.elapsed().as_secs_f64()
            );
            run += 1;
        }
        let mut last = self.start_broker(run, "", 0);
        let report = court.await.unwrap().expect("court simulator");
        let elapsed = started.elapsed();
        let states = self.partner_states().await;
        let _ = last.kill();
        let _ = last.wait();
        let last_log = std::fs::read_to_string(self.log(run)).unwrap_or_default();
        let tail: Vec<&str> = last_log.lines().rev().take(40).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        self.check(&report, &states, elapsed, &tail);
        self.stop.cancel();
        if let Some(schema) = &self.pg_schema {
            drop_pg_schema(schema).await;
        }
    }

    /// Waits until the broker answers `/readyz` (RabbitMQ connected,
    /// topology declared).
    async fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.http)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the broker was not ready within 60 s");
    }

    async fn partner_states(&self) -> [(String, Value); 3] {
        let get = |url: String| async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() };
        [
            ("CLETS".into(), get(format!("{}/_sim/state", self.clets_control)).await),
            ("DOJ".into(), get(format!("{}/_sim/state", self.doj)).await),
            ("LEA".into(), get(format!("{}/_sim/state", self.lea)).await),
        ]
    }

    /// `log_tail`: the end of the last broker run's log, shown when the
    /// outcome is wrong.
    fn check(&self, report: &CourtSimReport, states: &[(String, Value); 3], elapsed: Duration, log_tail: &str) {
        println!("{}", report.summary());
        let mut duplicates = 0;
        for (name, state) in states {
            let c = &state["counters"];
            println!(
                "{name}: received {}, accepted {}, duplicates {}, double_records {}, out_of_order {}, gaps {}",
                c["received"], c["accepted"], c["duplicates"], c["double_records"], c["out_of_order"], c["gaps"]
            );
            assert_eq!(c["double_records"], 0, "{name} applied a message twice");
            assert_eq!(
                c["out_of_order"], 0,
                "{name} received an order's messages out of sequence"
            );
            duplicates += c["duplicates"].as_u64().unwrap_or(0);
        }
        println!(
            "crash test: {} messages in {:.1} s ({:.0} messages/s)",
            report.sent,
            elapsed.as_secs_f64(),
            report.sent as f64 / elapsed.as_secs_f64()
        );
        assert!(report.sent > 0, "{}", report.summary());
        // Clean, not merely complete: no partner injects faults here, so a
        // message REJECTED, PARTNER_REJECTED or DEAD_LETTERED, a publish
        // failure or an anomaly is something a crash broke.
        assert!(
            report.is_clean(),
            "every message complete and accepted by every partner: {}\nlast broker log lines:\n{log_tail}",
            report.summary()
        );
        assert!(duplicates > 0, "resends happened and were answered from memory");
    }
}

/// Waits up to `limit` for the child to exit on its own.
async fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pg_base() -> String {
    std::env::var("PORTER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh schema on the test database, and a URL that uses it.
async fn pg_schema() -> (String, String) {
    use sqlx::{Connection as _, Executor as _};
    sqlx::any::install_default_drivers();
    let base = pg_base();
    let mut admin = sqlx::AnyConnection::connect(&base).await.expect("PostgreSQL reachable");
    let schema = format!("crash_{}", uuid::Uuid::new_v4().simple());
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    (format!("{base}{sep}options=-c%20search_path%3D{schema}"), schema)
}

async fn drop_pg_schema(schema: &str) {
    use sqlx::{Connection as _, Executor as _};
    if let Ok(mut admin) = sqlx::AnyConnection::connect(&pg_base()).await {
        let _ = admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
    }
}
