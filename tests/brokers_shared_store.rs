//! Several brokers on one PostgreSQL store (ICD §12, issue 15 items 2 and 3).
//!
//! Each test starts real `porter broker` processes (this build's binary)
//! on a fresh schema of the test database (`PORTER_TEST_PG_URL`) and the
//! shared RabbitMQ, each broker with its own HTTP port
//! (`PORTER_HTTP_LISTEN`), beside the CLETS, DOJ and LEA simulators run
//! in-process and the court simulator as the load: fresh courts (`ZT…`)
//! publishing interleaved ISSUE/MODIFY/SERVICE lifecycles. Every test ends
//! with the court simulator's report clean (every message
//! `PARTNER_ACCEPTED` at every partner it was routed to), and every
//! simulator with `double_records` 0 and `out_of_order` 0 (and no `gaps` at
//! DOJ and LEA: each order arrived in sequence).
//!
//! What the brokers hold is read from the store itself: a broker's lease
//! owner name is `host:pid:started` (`delivery::Lease::for_this_process`),
//! so `deliveries.lease_owner LIKE '%:<pid>:%'` are its claims, and
//! `partner_attempts.attempted_at` is when an attempt was sent.
//!
//! The tests run one at a time (each starts up to three brokers on a
//! two-core machine), and every broker process is killed when its test
//! ends, however it ends.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lapin::options::QueueDeleteOptions;
use lapin::{Connection as AmqpConnection, ConnectionProperties};
use porter_simulators::court::{CourtFormat, CourtSimConfig, CourtSimReport, SimCourt};
use serde_json::Value;
use sqlx::{AnyConnection, Connection as _, Row as _};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

use common::postgres::in_fresh_schema;
use common::{DOJ_TOKEN, LEA_SECRET, amqp_url, assert_in_order, repo, unique_ori};

/// One test at a time in this binary: each starts its own brokers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How the brokers of a test are configured.
struct Settings {
    /// `[store] lease_secs`; `None`: the broker's default (20).
    lease_secs: Option<u64>,
    /// `[partners.clets] connections` (attempts in flight per broker).
    clets_connections: usize,
}

/// The simulators, the brokers' shared configuration, and the brokers.
struct Cluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    clets_control: String,
    doj: String,
    lea: String,
    courts: Vec<String>,
    brokers: Vec<Broker>,
    /// Stops the in-process simulators when the test ends.
    _simulators: DropGuard,
}

impl Cluster {
    /// Starts the partner simulators and writes the brokers' configuration
    /// for `store_url`; no broker runs yet.
    async fn new(store_url: &str, settings: Settings) -> Cluster {
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
        let doj_config = porter_simulators::doj::DojSimConfig {
            tokens: vec![DOJ_TOKEN.into()],
            ..Default::default()
        };
        let s = stop.clone();
        tokio::spawn(porter_simulators::doj::run(doj_listener, doj_config, async move {
            s.cancelled().await
        }));
        let lea_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lea = format!("http://{}", lea_listener.local_addr().unwrap());
        let lea_config = porter_simulators::lea::LeaSimConfig {
            default_secret: Some(LEA_SECRET.into()),
            ..Default::default()
        };
        let s = stop.clone();
        tokio::spawn(porter_simulators::lea::run(lea_listener, lea_config, async move {
            s.cancelled().await
        }));

        let courts = vec![unique_ori(), unique_ori(), unique_ori()];
        let mut toml = format!(
            "[amqp]\nurl = {:?}\nreconnect_ms = 200\n[store]\nurl = {store_url:?}\n",
            amqp_url()
        );
        if let Some(secs) = settings.lease_secs {
            toml.push_str(&format!("lease_secs = {secs}\n"));
        }
        toml.push_str(&format!(
            "[paths]\nschemas = {:?}\nmappings = {:?}\n\
             [partners.clets]\naddress = \"{clets_addr}\"\nconnections = {}\n\
             [partners.clets.retry]\nmin_ms = 200\nmax_ms = 2000\n\
             [partners.doj]\nurl = \"{doj}\"\ntoken = \"{DOJ_TOKEN}\"\n[partners.doj.retry]\nmin_ms = 200\nmax_ms = 2000\n\
             [partners.lea]\nbase_url = \"{lea}\"\ndefault_secret = \"{LEA_SECRET}\"\n\
             [partners.lea.retry]\nmin_ms = 200\nmax_ms = 2000\n",
            repo().join("schemas").display().to_string(),
            repo().join("mappings").display().to_string(),
            settings.clets_connections,
        ));
        for c in &courts {
            toml.push_str(&format!(
                "[[courts]]\nori = \"{c}\"\nsheriff_ori = \"CA0340000\"\nlayouts = [\"cms-a/1\"]\n"
            ));
        }
        let config = dir.path().join("porter.toml");
        std::fs::write(&config, toml).unwrap();
        Cluster {
            dir,
            config,
            clets_control,
            doj,
            lea,
            courts,
            brokers: Vec::new(),
            _simulators: stop.drop_guard(),
        }
    }

    /// Starts `n` brokers on the store. The first one creates the schema
    /// and declares the topology before the others start; all are ready
    /// when this returns.
    async fn start_brokers(&mut self, n: usize) {
        for i in 0..n {
            let name = ["A", "B", "C", "D"][i];
            let broker = Broker::spawn(name, &self.config, self.dir.path().join(format!("broker-{name}.log")));
            self.brokers.push(broker);
            if i == 0 {
                self.brokers[0].wait_ready().await;
            }
        }
        for b in &mut self.brokers[1..] {
            b.wait_ready().await;
        }
    }

    /// Sets the CLETS simulator's faults (ICD §11).
    async fn clets_faults(&self, faults: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_sim/faults", self.clets_control))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "CLETS faults refused: {}", r.status());
    }

    /// The load: every court publishes `orders_per_court` lifecycles
    /// (ISSUE, MODIFY, SERVICE), XML and fixed-width by court, with the
    /// court simulator's window of 8 orders in flight, so an order's later
    /// messages arrive while its earlier ones are still being delivered.
    fn load(&self, orders_per_court: u32, status_timeout_secs: u64) -> CourtSimConfig {
        CourtSimConfig {
            amqp_url: amqp_url(),
            courts: self
                .courts
                .iter()
                .enumerate()
                .map(|(i, ori)| SimCourt {
                    ori: ori.clone(),
                    name: format!("shared-store court {i}"),
                    format: if i % 2 == 0 {
                        CourtFormat::Xml
                    } else {
                        CourtFormat::Fixed
                    },
                })
                .collect(),
            orders_per_court,
            rate_per_sec: 0.0,
            lifecycle: true,
            close: false,
            status_timeout_secs,
            ..CourtSimConfig::default()
        }
    }

    /// Starts the court simulator in a task of its own.
    fn start_load(
        &self,
        orders_per_court: u32,
        status_timeout_secs: u64,
    ) -> tokio::task::JoinHandle<anyhow::Result<CourtSimReport>> {
        tokio::spawn(porter_simulators::court::run_with_printer(
            self.load(orders_per_court, status_timeout_secs),
            std::future::pending(),
            |_| {},
        ))
    }

    async fn partner_states(&self) -> [(&'static str, Value); 3] {
        let get = |url: String| async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() };
        [
            ("CLETS", get(format!("{}/_sim/state", self.clets_control)).await),
            ("DOJ", get(format!("{}/_sim/state", self.doj)).await),
            ("LEA", get(format!("{}/_sim/state", self.lea)).await),
        ]
    }

    /// Checks the court report and every simulator: clean, nothing applied
    /// twice, everything in sequence. Returns the `duplicates` counter of
    /// each simulator.
    async fn check_outcome(&self, report: &CourtSimReport) -> BTreeMap<&'static str, u64> {
        println!("{}", report.summary());
        let mut duplicates = BTreeMap::new();
        for (name, state) in self.partner_states().await {
            let c = &state["counters"];
            println!(
                "{name}: received {}, accepted {}, duplicates {}, double_records {}, out_of_order {}, gaps {}",
                c["received"], c["accepted"], c["duplicates"], c["double_records"], c["out_of_order"], c["gaps"]
            );
            assert_eq!(c["double_records"], 0, "{name} applied a message twice: {c}");
            assert_eq!(c["out_of_order"], 0, "{name} received an order out of sequence: {c}");
            if name != "CLETS" {
                assert_in_order(c, name);
            }
            duplicates.insert(name, c["duplicates"].as_u64().unwrap_or(0));
        }
        assert!(report.sent > 0, "{}", report.summary());
        assert!(
            report.is_clean(),
            "every message complete and PARTNER_ACCEPTED: {}\n{}",
            report.summary(),
            self.log_tails()
        );
        duplicates
    }

    /// Asserts that no broker log says `deadlock detected`.
    fn assert_no_deadlock(&self) {
        for b in &self.brokers {
            let log = b.log_text();
            let deadlocks = log.matches("deadlock detected").count();
            assert_eq!(deadlocks, 0, "broker {} logged {deadlocks} deadlocks:\n{log}", b.name);
        }
    }

    /// Each running broker's share of the work, from its `/metrics`, by
    /// name: (inbound messages committed, partner requests sent). Printed.
    async fn work_shares(&self) -> BTreeMap<&'static str, (f64, f64)> {
        let mut shares = BTreeMap::new();
        for b in self.brokers.iter().filter(|b| b.running()) {
            let metrics = b.metrics().await.unwrap_or_default();
            let share = (
                metric_sum(&metrics, "porter_intake_committed_total"),
                metric_sum(&metrics, "porter_partner_request_seconds_count"),
            );
            println!(
                "broker {}: {} inbound messages committed, {} partner requests",
                b.name, share.0, share.1
            );
            shares.insert(b.name, share);
        }
        shares
    }

    /// Stops every broker still running with SIGTERM and asserts that each
    /// exits 0 within 30 s.
    async fn stop_brokers(&mut self) {
        let running: Vec<usize> = (0..self.brokers.len()).filter(|&i| self.brokers[i].running()).collect();
        for &i in &running {
            self.brokers[i].signal("TERM");
        }
        for i in running {
            let b = &mut self.brokers[i];
            let status = b.wait_exit(Duration::from_secs(30)).await;
            assert!(
                status.is_some_and(|s| s.success()),
                "broker {} did not exit 0 within 30 s of SIGTERM: {status:?}\n{}",
                b.name,
                b.log_text()
            );
        }
    }

    /// The last lines of every broker's log, for a failure message.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for b in &self.brokers {
            let log = b.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            out.push_str(&format!("--- broker {} (pid {}) ---\n{tail}\n", b.name, b.pid()));
        }
        out
    }

    /// Ends a test: stops the brokers (each must exit 0), checks their
    /// logs for deadlocks and deletes the courts' queues.
    async fn finish(&mut self) {
        self.stop_brokers().await;
        self.assert_no_deadlock();
        self.delete_queues().await;
    }

    /// Waits (up to 30 s) until the broker whose owner pattern is `owner`
    /// holds a live CLETS lease: it has CLETS attempts in flight.
    async fn wait_for_clets_lease(&self, db: &mut Db, owner: &str) {
        let waiting = Instant::now();
        while db.live_leases(owner, "CLETS").await.is_empty() {
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "the broker held no CLETS lease within 30 s\n{}",
                self.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes the test courts' queues.
    async fn delete_queues(&self) {
        let Ok(conn) = AmqpConnection::connect(&amqp_url(), ConnectionProperties::default()).await else {
            return;
        };
        for c in &self.courts {
            for q in [format!("por.inbound.{c}"), format!("por.responses.{c}")] {
                if let Ok(ch) = conn.create_channel().await {
                    let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
                }
            }
        }
        let _ = conn.close(200, "test done".into()).await;
    }
}

/// One `porter broker` child process.
struct Broker {
    name: &'static str,
    child: Child,
    http: String,
    log: PathBuf,
    /// SIGKILLed by the test on purpose.
    killed: bool,
    /// How it exited, once the test saw it exit.
    exited: Option<ExitStatus>,
}

impl Broker {
    fn spawn(name: &'static str, config: &std::path::Path, log: PathBuf) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_porter"))
            .arg("broker")
            .arg("--config")
            .arg(config)
            .env("PORTER_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("PORTER_STORE_URL")
            .env_remove("PORTER_AMQP_URL")
            .env("RUST_LOG", "warn,porter::delivery=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start porter broker");
        Broker {
            name,
            child,
            http: format!("http://127.0.0.1:{port}"),
            log,
            killed: false,
            exited: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `LIKE` pattern of this broker's lease owner name.
    fn owner_pattern(&self) -> String {
        format!("%:{}:%", self.pid())
    }

    /// Still to be stopped by the test: neither killed nor seen to exit
    /// (a reaped process's PID must never be signalled again).
    fn running(&self) -> bool {
        !self.killed && self.exited.is_none()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the broker");
        let _ = self.child.wait();
        self.killed = true;
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("broker {} exited with {status}:\n{}", self.name, self.log_text());
            }
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.http)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("broker {} was not ready within 60 s:\n{}", self.name, self.log_text());
    }

    /// Waits up to `limit` for the process to exit, looking every 10 ms.
    async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn metrics(&self) -> Option<String> {
        reqwest::get(format!("{}/metrics", self.http))
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    /// A broker is never left running, whatever ended the test.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The sum of every sample of `name` in a Prometheus text.
fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One delivery as the tests read it from the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    id: i64,
    court_ori: String,
    order_number: String,
    partner: String,
    sequence: i64,
}

impl Delivery {
    /// Its lane: one order at one partner.
    fn lane(&self) -> (String, String, String) {
        (self.court_ori.clone(), self.order_number.clone(), self.partner.clone())
    }
}

/// Reads the shared store.
struct Db(AnyConnection);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Db {
    async fn connect(url: &str) -> Db {
        sqlx::any::install_default_drivers();
        Db(AnyConnection::connect(url).await.expect("PostgreSQL reachable"))
    }

    fn delivery(row: &sqlx::any::AnyRow) -> Delivery {
        Delivery {
            id: row.get("id"),
            court_ori: row.get("court_ori"),
            order_number: row.get("order_number"),
            partner: row.get("partner"),
            sequence: row.get("sequence"),
        }
    }

    /// The pending deliveries whose lease `pattern` holds now, and whose
    /// partner is `LIKE partner`.
    async fn live_leases(&mut self, pattern: &str, partner: &str) -> Vec<Delivery> {
        sqlx::query(
            "SELECT id, court_ori, order_number, partner, sequence FROM deliveries \
             WHERE state = 'PENDING' AND lease_owner LIKE $1 AND lease_until > $2 AND partner LIKE $3 ORDER BY id",
        )
        .bind(pattern.to_string())
        .bind(now_ms())
        .bind(partner.to_string())
        .fetch_all(&mut self.0)
        .await
        .unwrap()
        .iter()
        .map(Db::delivery)
        .collect()
    }

    /// How many pending deliveries still name `pattern` as their lease
    /// owner, live or run out.
    async fn owned_pending(&mut self, pattern: &str) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'PENDING' AND lease_owner LIKE $1")
            .bind(pattern.to_string())
            .fetch_one(&mut self.0)
            .await
            .unwrap()
            .get("n")
    }

    /// The pending deliveries that are due now (not waiting for a retry).
    async fn pending_due(&mut self) -> Vec<Delivery> {
        sqlx::query(
            "SELECT id, court_ori, order_number, partner, sequence FROM deliveries \
             WHERE state = 'PENDING' AND next_attempt_at <= $1 ORDER BY id",
        )
        .bind(now_ms())
        .fetch_all(&mut self.0)
        .await
        .unwrap()
        .iter()
        .map(Db::delivery)
        .collect()
    }

    async fn attempts_total(&mut self) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM partner_attempts")
            .fetch_one(&mut self.0)
            .await
            .unwrap()
            .get("n")
    }

    /// A delivery's attempts, oldest first: (sent at, outcome).
    async fn attempts(&mut self, delivery_id: i64) -> Vec<(i64, String)> {
        sqlx::query("SELECT attempted_at, outcome FROM partner_attempts WHERE delivery_id = $1 ORDER BY id")
            .bind(delivery_id)
            .fetch_all(&mut self.0)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("attempted_at"), r.get("outcome")))
            .collect()
    }

    /// Every delivery attempted more than once, with its attempts: (sent
    /// at, outcome), oldest first.
    async fn repeated(&mut self) -> BTreeMap<(i64, String), Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT d.id, d.partner, a.attempted_at, a.outcome FROM partner_attempts a \
             JOIN deliveries d ON d.id = a.delivery_id \
             WHERE a.delivery_id IN (SELECT delivery_id FROM partner_attempts GROUP BY delivery_id HAVING COUNT(*) > 1) \
             ORDER BY a.id",
        )
        .fetch_all(&mut self.0)
        .await
        .unwrap();
        let mut repeated: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for r in &rows {
            repeated
                .entry((r.get("id"), r.get("partner")))
                .or_default()
                .push((r.get("attempted_at"), r.get("outcome")));
        }
        repeated
    }

    async fn state(&mut self, delivery_id: i64) -> String {
        sqlx::query("SELECT state FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_one(&mut self.0)
            .await
            .unwrap()
            .get("state")
    }
}

/// Proves ICD §12's "without a failure, no partner receives the same MCN
/// or Idempotency-Key twice" for three brokers sharing one PostgreSQL
/// store: 60 orders (3 courts × 20, ISSUE/MODIFY/SERVICE interleaved;
/// `PORTER_SHARED_STORE_ORDERS` sets the orders per court)
/// reach CLETS, DOJ and the LEA agencies, every message PARTNER_ACCEPTED,
/// every simulator's `duplicates` 0 (no request sent twice), nothing
/// applied twice or out of sequence, and no broker logs `deadlock
/// detected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_no_failure_send_no_duplicate() {
    let _one = ONE_AT_A_TIME.lock().await;
    in_fresh_schema(|store_url| async move {
        let mut cluster = Cluster::new(
            &store_url,
            Settings {
                lease_secs: None,
                clets_connections: 4,
            },
        )
        .await;
        cluster.start_brokers(3).await;
        let started = Instant::now();
        let orders: u32 = std::env::var("PORTER_SHARED_STORE_ORDERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let report = cluster.start_load(orders, 90).await.unwrap().expect("court simulator");
        let elapsed = started.elapsed();
        let duplicates = cluster.check_outcome(&report).await;
        let shares = cluster.work_shares().await;
        println!(
            "three brokers: {} messages in {:.1} s, duplicates {duplicates:?}",
            report.sent,
            elapsed.as_secs_f64()
        );
        assert_eq!(
            report.sent,
            9 * orders as usize,
            "3 courts × {orders} orders × 3 messages"
        );
        for (name, (committed, requests)) in &shares {
            assert!(
                *committed > 0.0 && *requests > 0.0,
                "broker {name} took no part: {shares:?}"
            );
        }
        for (name, n) in &duplicates {
            assert_eq!(*n, 0, "{name} received {n} requests twice without any failure");
        }
        cluster.finish().await;
    })
    .await;
}

/// Proves ICD §12's "a broker stopped with SIGTERM hands its work over at
/// once": two brokers, CLETS answering in 1 s so attempts are in flight
/// (the lease is the default 20 s, so nothing is taken over by expiry).
/// Broker A is sent SIGTERM while it holds CLETS leases. It exits 0, having
/// sent and recorded every attempt it had in flight (each one's first
/// attempt is A's and is not `STALE`); when it has exited it holds no lease
/// at all in the store; broker B starts the due deliveries of A's lanes
/// within 2 s of A's exit; nothing is sent twice (`duplicates` 0
/// everywhere) and the run ends clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_leases_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    in_fresh_schema(|store_url| async move {
        let mut cluster = Cluster::new(
            &store_url,
            Settings {
                lease_secs: None,
                clets_connections: 16,
            },
        )
        .await;
        cluster.start_brokers(2).await;
        cluster.clets_faults(serde_json::json!({"latency_ms": 1000})).await;
        let mut db = Db::connect(&store_url).await;
        let court = cluster.start_load(5, 60);

        // Mid-flow: A has CLETS attempts in flight.
        let a = cluster.brokers[0].owner_pattern();
        cluster.wait_for_clets_lease(&mut db, &a).await;
        // Let every claimed attempt start before the signal.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let held = db.live_leases(&a, "%").await;
        cluster.brokers[0].signal("TERM");
        let term_at = now_ms();
        let status = cluster.brokers[0].wait_exit(Duration::from_secs(30)).await;
        let exit_at = now_ms();
        // Right after A exits: none of its claims is left in the store.
        let left = db.owned_pending(&a).await;
        let due_at_exit = db.pending_due().await;
        assert!(
            status.is_some_and(|s| s.success()),
            "broker A did not exit 0 within 30 s of SIGTERM: {status:?}\n{}",
            cluster.brokers[0].log_text()
        );
        println!(
            "broker A: SIGTERM with {} leases held ({} CLETS), exited 0 after {} ms",
            held.len(),
            held.iter().filter(|d| d.partner == "CLETS").count(),
            exit_at - term_at
        );
        assert_eq!(left, 0, "deliveries still leased to broker A after it exited");

        let report = court.await.unwrap().expect("court simulator");
        let duplicates = cluster.check_outcome(&report).await;

        // A finished what it had in flight: it sent each attempt (before
        // SIGTERM) and recorded its outcome under its own token.
        for d in &held {
            let attempts = db.attempts(d.id).await;
            let first = attempts
                .first()
                .unwrap_or_else(|| panic!("delivery {d:?} held by A was never attempted"));
            assert!(first.0 <= term_at, "{d:?}: first attempt {first:?} is not A's");
            assert_ne!(
                first.1,
                "STALE",
                "{d:?}: A's result was fenced off (SIGTERM at {term_at}, A exited at {exit_at}): {attempts:?}\n{}",
                cluster.log_tails()
            );
        }
        // B took A's lanes: the head of each lane A held that was due when
        // A exited went out within 2 s (or had already, while A was
        // stopping).
        let lanes: BTreeSet<_> = held.iter().map(Delivery::lane).collect();
        let mut heads: BTreeMap<_, Delivery> = BTreeMap::new();
        for d in due_at_exit.into_iter().filter(|d| lanes.contains(&d.lane())) {
            heads
                .entry(d.lane())
                .and_modify(|h: &mut Delivery| {
                    if d.sequence < h.sequence {
                        *h = d.clone();
                    }
                })
                .or_insert(d);
        }
        let mut delays = Vec::new();
        for head in heads.values() {
            let attempts = db.attempts(head.id).await;
            let first = attempts
                .first()
                .unwrap_or_else(|| panic!("{head:?} was never attempted"))
                .0;
            delays.push((first - exit_at).max(0));
        }
        let worst = delays.iter().copied().max();
        println!(
            "takeover: {} of A's {} lanes had work due at its exit; B sent it {delays:?} ms after A exited",
            heads.len(),
            lanes.len()
        );
        assert!(
            worst.is_none_or(|ms| ms <= 2_000),
            "B took A's lanes {worst:?} ms after A exited (ICD §12: at once, within 2 s)"
        );
        let repeated = db.repeated().await;
        for (name, n) in &duplicates {
            assert_eq!(
                *n,
                0,
                "{name} received {n} requests twice around a graceful stop (SIGTERM at {term_at}, A exited at \
                 {exit_at}); deliveries attempted more than once: {repeated:#?}\n{}",
                cluster.log_tails()
            );
        }
        cluster.finish().await;
    })
    .await;
}

/// Proves ICD §12's "when a broker dies, the others take over its work
/// within 30 seconds, and nothing is lost or applied twice": three brokers
/// with 3 s leases, CLETS answering in 300 ms; once the work is flowing,
/// the broker holding the most leases is SIGKILLed and not restarted. Every
/// delivery it had leased is claimed by another broker (or finished) within
/// 30 s of the kill, and the court simulator's run, which waits at most 60 s
/// after its last publish, ends clean: every message PARTNER_ACCEPTED,
/// nothing applied twice, everything in sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_broker_lanes_are_taken_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    in_fresh_schema(|store_url| async move {
        let mut cluster = Cluster::new(
            &store_url,
            Settings {
                lease_secs: Some(3),
                clets_connections: 4,
            },
        )
        .await;
        cluster.start_brokers(3).await;
        cluster.clets_faults(serde_json::json!({"latency_ms": 300})).await;
        let mut db = Db::connect(&store_url).await;
        let court = cluster.start_load(15, 60);

        // Mid-flow: some work done, and the victim holds leases.
        let waiting = Instant::now();
        let (victim, held) = loop {
            if db.attempts_total().await >= 30 {
                let mut best: Option<(usize, Vec<Delivery>)> = None;
                for (i, b) in cluster.brokers.iter().enumerate() {
                    let held = db.live_leases(&b.owner_pattern(), "%").await;
                    if !held.is_empty() && best.as_ref().is_none_or(|(_, h)| held.len() > h.len()) {
                        best = Some((i, held));
                    }
                }
                if let Some(found) = best {
                    break found;
                }
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "no broker held a lease after 30 attempts within 60 s\n{}",
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let pattern = cluster.brokers[victim].owner_pattern();
        cluster.brokers[victim].sigkill();
        let killed = Instant::now();
        let killed_at = now_ms();
        println!(
            "broker {} SIGKILLed holding {} leases ({} CLETS)",
            cluster.brokers[victim].name,
            held.len(),
            held.iter().filter(|d| d.partner == "CLETS").count()
        );
        // Its claims end with their leases and are taken by the others.
        let taken_over = loop {
            if db.owned_pending(&pattern).await == 0 {
                break killed.elapsed();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "the killed broker's deliveries were not taken over within 30 s\n{}",
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "the killed broker's leases were all taken over {:.1} s after the kill",
            taken_over.as_secs_f64()
        );

        let report = tokio::time::timeout(Duration::from_secs(90), court)
            .await
            .expect("the court simulator ends within 90 s of the kill")
            .unwrap()
            .expect("court simulator");
        let finished = killed.elapsed();
        let duplicates = cluster.check_outcome(&report).await;
        // The killed broker recorded nothing of what it had in flight: the
        // others sent each of those deliveries after the kill.
        let mut sent_by_others = 0;
        for d in &held {
            assert_eq!(db.state(d.id).await, "ACCEPTED", "{d:?}, held by the killed broker");
            let attempts = db.attempts(d.id).await;
            if attempts.iter().any(|(at, _)| *at >= killed_at) {
                sent_by_others += 1;
            }
        }
        cluster.work_shares().await;
        println!(
            "after the kill: all {} messages complete in {:.1} s; {sent_by_others} of the killed broker's {} leased \
             deliveries sent again by the others; duplicates {duplicates:?}",
            report.sent,
            finished.as_secs_f64(),
            held.len()
        );
        assert!(
            finished <= Duration::from_secs(60),
            "the other brokers finished {:.1} s after the kill",
            finished.as_secs_f64()
        );
        cluster.finish().await;
    })
    .await;
}

/// Proves ICD §12's fencing for a frozen broker: two brokers with 3 s
/// leases, CLETS answering in 1 s. Broker A is frozen with SIGSTOP while
/// it has CLETS attempts in flight, stays frozen until broker B has taken
/// every lane A held (A's leases ran out; a transaction A was in is ended
/// by PostgreSQL after 5 s idle), and is then resumed. The results
/// A brings back late are refused by the fencing token (kept as `STALE`
/// attempts, nothing else changed), every delivery A held ends `ACCEPTED`
/// once, and the partners see no more duplicates than there were claims of
/// lanes taken over (a delivery's token past 1: a resend under the same key
/// is allowed only there); the run ends clean:
/// every message PARTNER_ACCEPTED, nothing applied twice or out of sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_brokers_late_results_are_fenced_off() {
    let _one = ONE_AT_A_TIME.lock().await;
    in_fresh_schema(|store_url| async move {
        let mut cluster = Cluster::new(
            &store_url,
            Settings {
                lease_secs: Some(3),
                clets_connections: 8,
            },
        )
        .await;
        cluster.start_brokers(2).await;
        cluster.clets_faults(serde_json::json!({"latency_ms": 1000})).await;
        let mut db = Db::connect(&store_url).await;
        let court = cluster.start_load(5, 90);

        // Mid-flow: A has CLETS attempts in flight (claimed, and sent: the
        // simulator answers only after 1 s).
        let a = cluster.brokers[0].owner_pattern();
        cluster.wait_for_clets_lease(&mut db, &a).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Everything A holds at the freeze, at every partner.
        let held = db.live_leases(&a, "%").await;
        cluster.brokers[0].signal("STOP");
        let stopped = Instant::now();
        // Frozen past its leases: B takes every lane A held.
        loop {
            let mut all_taken = true;
            for d in &held {
                let state = db.state(d.id).await;
                let owner: Option<String> = sqlx::query("SELECT lease_owner FROM deliveries WHERE id = $1")
                    .bind(d.id)
                    .fetch_one(&mut db.0)
                    .await
                    .unwrap()
                    .get("lease_owner");
                let still_a = owner.is_some_and(|o| o.contains(&format!(":{}:", cluster.brokers[0].pid())));
                if state == "PENDING" && still_a {
                    all_taken = false;
                }
            }
            if all_taken {
                break;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(60),
                "B did not take A's lanes within 60 s of A freezing\n{}",
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let frozen_for = stopped.elapsed();
        cluster.brokers[0].signal("CONT");

        let report = court.await.unwrap().expect("court simulator");
        let duplicates = cluster.check_outcome(&report).await;
        // Let A record what it brought back after it woke.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut stale = 0;
        for d in &held {
            assert_eq!(db.state(d.id).await, "ACCEPTED", "{d:?}, held by the frozen broker");
            let attempts = db.attempts(d.id).await;
            stale += attempts.iter().filter(|(_, o)| o == "STALE").count();
            let accepted = attempts.iter().filter(|(_, o)| o == "ACCEPTED").count();
            assert_eq!(accepted, 1, "{d:?} accepted once under the current token: {attempts:?}");
        }
        let total: u64 = duplicates.values().sum();
        println!(
            "broker A frozen {:.1} s holding {} leases; {stale} late results fenced off; duplicates {duplicates:?}",
            frozen_for.as_secs_f64(),
            held.len()
        );
        assert!(
            stale >= 1,
            "none of A's late results came back as STALE\n{}",
            cluster.log_tails()
        );
        // Every claim after a delivery's first (its token past 1) is a lane
        // taken over, the only place a resend under the same key may come
        // from; everything else reaches its partner once.
        let taken_over: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(lease_token - 1), 0) AS BIGINT) AS n FROM deliveries WHERE lease_token > 1",
        )
        .fetch_one(&mut db.0)
        .await
        .unwrap()
        .get("n");
        println!("claims of lanes taken over: {taken_over}");
        assert!(
            total <= taken_over as u64,
            "{total} duplicate requests, more than the {taken_over} claims of lanes taken over: {duplicates:?}"
        );
        cluster.finish().await;
    })
    .await;
}
