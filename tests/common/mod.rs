//! Test harness: a real broker, a real CLETS simulator and real RabbitMQ.
//!
//! Each harness runs the broker in-process with its own SQLite store (or
//! the PostgreSQL URL in `PORTER_TEST_STORE_URL`), its own HTTP port and its
//! own simulator, for courts the test names. Tests that can use a unique
//! court ORI ([`unique_ori`]) do, so they never share queues; the harness
//! deletes those queues when it stops.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use porter::config::Config;
use porter::formats::xml::read_status;
use porter::model::StatusMessage;
pub mod order_keeping;
pub mod postgres;
pub mod rabbit;
pub mod rabbit_cluster;

#[allow(unused_imports)] // not every test binary reads the partners' order
pub use order_keeping::{applied_sequences, assert_in_order};

use rand::Rng;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn amqp_url() -> String {
    std::env::var("PORTER_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures").join(path)).expect("fixture exists")
}

/// A fresh, valid ORI no other test uses: `ZT` + 7 random characters.
pub fn unique_ori() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..7)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("ZT{tail}")
}

/// A unique message id for this run.
pub fn unique_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Replaces the sample's court ORI (same length, so fixed-width columns hold).
pub fn for_court(body: &[u8], ori: &str) -> Vec<u8> {
    replace(body, "CA034025J", ori)
}

pub fn replace(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(body.to_vec())
        .expect("fixture is UTF-8")
        .replace(from, to)
        .into_bytes()
}

/// What a harness runs beside the broker and CLETS: the DOJ and LEA
/// simulators, and the courts' gap timeout.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub doj: bool,
    pub lea: bool,
    /// Every court's `gap_timeout_secs` (default: the broker's, 1 h).
    pub gap_timeout_secs: Option<u64>,
    /// The store URL (default: `PORTER_TEST_STORE_URL`, else a SQLite file).
    pub store_url: Option<String>,
    /// The LEA image links' `image_link_days` (default: the broker's, 7).
    pub image_link_days: Option<u32>,
    /// `[partners.lea] per_agency`: attempts in flight per agency (default:
    /// the broker's, 4).
    pub lea_per_agency: Option<usize>,
    /// The broker's `[amqp] urls`, the nodes it tries in order (default:
    /// `url` = the RabbitMQ the harness is started on).
    pub amqp_urls: Option<Vec<String>>,
}

impl Setup {
    pub const ALL_PARTNERS: Setup = Setup {
        doj: true,
        lea: true,
        gap_timeout_secs: None,
        store_url: None,
        image_link_days: None,
        lea_per_agency: None,
        amqp_urls: None,
    };
}

/// The DOJ token and LEA secret the harness's broker and simulators share.
pub const DOJ_TOKEN: &str = "harness-doj-token";
pub const LEA_SECRET: &str = "harness-lea-secret";

pub struct Harness {
    pub courts: Vec<String>,
    pub http: String,
    pub clets_control: String,
    /// `http://host:port` of the DOJ simulator, when it runs.
    pub doj: Option<String>,
    /// `http://host:port` of the LEA simulator, when it runs.
    pub lea: Option<String>,
    http_sims: Vec<JoinHandle<anyhow::Result<()>>>,
    pub conn: Connection,
    pub channel: Channel,
    stop: CancellationToken,
    broker: JoinHandle<anyhow::Result<()>>,
    sim: JoinHandle<anyhow::Result<()>>,
    delete_queues: bool,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Starts a simulator and a broker serving `courts`. The queues of a
    /// real court ORI (not from [`unique_ori`]) are purged first, so
    /// leftovers of a demo or an earlier run cannot interfere.
    pub async fn start(courts: &[&str]) -> Harness {
        purge_real_court_queues(courts).await;
        Harness::start_on(courts, &amqp_url()).await
    }

    /// Like [`Harness::start`], on the RabbitMQ at `amqp`.
    pub async fn start_on(courts: &[&str], amqp: &str) -> Harness {
        Harness::start_with(courts, amqp, Setup::default()).await
    }

    /// Like [`Harness::start`], with the DOJ and LEA simulators `partners` names.
    pub async fn start_with_setup(courts: &[&str], partners: Setup) -> Harness {
        purge_real_court_queues(courts).await;
        Harness::start_with(courts, &amqp_url(), partners).await
    }

    /// Starts the simulators `partners` names and a broker for `courts` on `amqp`.
    pub async fn start_with(courts: &[&str], amqp: &str, partners: Setup) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let sim_tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_control = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clets_addr = sim_tcp.local_addr().unwrap();
        let clets_control = format!("http://{}", sim_control.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s = stop.clone();
        let sim = tokio::spawn(porter_simulators::clets::run(
            sim_tcp,
            sim_control,
            Default::default(),
            async move { s.cancelled().await },
        ));

        let store_url = partners
            .store_url
            .clone()
            .or_else(|| std::env::var("PORTER_TEST_STORE_URL").ok())
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("porter.db").display()));
        let mut toml = format!(
            "[amqp]\n{}\nreconnect_ms = 200\n[store]\nurl = {:?}\n[paths]\nschemas = {:?}\nmappings = {:?}\n\
             [partners.clets]\naddress = \"{clets_addr}\"\n[partners.clets.retry]\nmin_ms = 200\nmax_ms = 2000\n",
            match &partners.amqp_urls {
                Some(urls) => format!("urls = {urls:?}"),
                None => format!("url = {amqp:?}"),
            },
            store_url,
            repo().join("schemas").display().to_string(),
            repo().join("mappings").display().to_string(),
        );
        let mut http_sims = Vec::new();
        let (mut doj, mut lea) = (None, None);
        if partners.doj {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let sim = porter_simulators::doj::DojSimConfig {
                tokens: vec![DOJ_TOKEN.into()],
                ..Default::default()
            };
            let s = stop.clone();
            http_sims.push(tokio::spawn(porter_simulators::doj::run(listener, sim, async move {
                s.cancelled().await
            })));
            toml.push_str(&format!(
                "[partners.doj]\nurl = \"{url}\"\ntoken = \"{DOJ_TOKEN}\"\n[partners.doj.retry]\nmin_ms = 200\nmax_ms = 2000\n"
            ));
            doj = Some(url);
        }
        if partners.lea {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let sim = porter_simulators::lea::LeaSimConfig {
                default_secret: Some(LEA_SECRET.into()),
                ..Default::default()
            };
            let s = stop.clone();
            http_sims.push(tokio::spawn(porter_simulators::lea::run(listener, sim, async move {
                s.cancelled().await
            })));
            toml.push_str(&format!(
                "[partners.lea]\nbase_url = \"{url}\"\ndefault_secret = \"{LEA_SECRET}\"\n"
            ));
            if let Some(days) = partners.image_link_days {
                toml.push_str(&format!("image_link_days = {days}\n"));
            }
            if let Some(n) = partners.lea_per_agency {
                toml.push_str(&format!("per_agency = {n}\n"));
            }
            toml.push_str("[partners.lea.retry]\nmin_ms = 200\nmax_ms = 2000\n");
            lea = Some(url);
        }
        for c in courts {
            toml.push_str(&format!(
                "[[courts]]\nori = \"{c}\"\nsheriff_ori = \"CA0340000\"\nlayouts = [\"cms-a/1\"]\n"
            ));
            if let Some(secs) = partners.gap_timeout_secs {
                toml.push_str(&format!("gap_timeout_secs = {secs}\n"));
            }
        }
        let config = Config::from_toml_str(&toml, &dir.path().join("porter.toml")).unwrap();
        config.validate().unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = format!("http://{}", http.local_addr().unwrap());
        let s = stop.clone();
        let broker = tokio::spawn(porter::broker::run(config, http, async move { s.cancelled().await }));

        let conn = Connection::connect(amqp, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        let h = Harness {
            courts: courts.iter().map(|c| c.to_string()).collect(),
            http: http_addr,
            clets_control,
            doj,
            lea,
            http_sims,
            conn,
            channel,
            stop,
            broker,
            sim,
            delete_queues: courts.iter().all(|c| c.starts_with("ZT")),
            _dir: dir,
        };
        h.wait_ready().await;
        h
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.http)).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("broker not ready within 30 s");
    }

    /// Publishes as a court does: persistent, confirmed, mandatory.
    pub async fn publish(&self, court: &str, message_id: Option<&str>, content_type: &str, body: &[u8]) {
        let mut props = BasicProperties::default()
            .with_content_type(content_type.into())
            .with_delivery_mode(2)
            .with_timestamp(chrono::Utc::now().timestamp() as u64);
        if let Some(id) = message_id {
            props = props.with_message_id(id.into());
        }
        let confirm = self
            .channel
            .basic_publish(
                "por.inbound".into(),
                court.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(
            matches!(confirm, Confirmation::Ack(None)),
            "publish not confirmed: {confirm:?}"
        );
    }

    /// Starts collecting the statuses on `por.responses.<court>`.
    pub async fn watch(&self, court: &str) -> StatusWatcher {
        StatusWatcher::start(&self.conn, court).await
    }

    /// Takes this court's dead letters off `por.dead` (others are left
    /// there), waiting until `expected` have been seen or `limit` passes.
    pub async fn take_dead_letters(
        &self,
        court: &str,
        expected: usize,
        limit: Duration,
    ) -> Vec<lapin::message::Delivery> {
        let channel = self.conn.create_channel().await.unwrap();
        let mut consumer = channel
            .basic_consume(
                "por.dead".into(),
                unique_id("test-dead").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut ours = Vec::new();
        let started = Instant::now();
        while ours.len() < expected && started.elapsed() < limit {
            let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await else {
                continue;
            };
            let header = d
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-por-court").cloned());
            let is_ours =
                matches!(header, Some(lapin::types::AMQPValue::LongString(ref s)) if s.as_bytes() == court.as_bytes());
            if is_ours {
                d.ack(BasicAckOptions::default()).await.unwrap();
                ours.push(d);
            }
        }
        let _ = channel.close(200, "done".into()).await;
        ours
    }

    /// `GET /_sim/state` of the DOJ or LEA simulator at `base`.
    pub async fn http_sim_state(base: &str) -> Value {
        reqwest::get(format!("{base}/_sim/state"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn sim_state(&self) -> Value {
        reqwest::get(format!("{}/_sim/state", self.clets_control))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn api(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{}{path}", self.http)).await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Like [`Harness::stop`], but leaves the courts' queues: for a private
    /// RabbitMQ that goes away with them (deleting a quorum queue while one
    /// of its members is down takes seconds per queue).
    pub async fn stop_leaving_queues(mut self) {
        self.delete_queues = false;
        self.stop().await;
    }

    /// Stops broker and simulator and removes the test courts' queues.
    pub async fn stop(self) {
        self.stop.cancel();
        self.broker.await.unwrap().unwrap();
        self.sim.await.unwrap().unwrap();
        for sim in self.http_sims {
            sim.await.unwrap().unwrap();
        }
        if self.delete_queues {
            for c in &self.courts {
                for q in [format!("por.inbound.{c}"), format!("por.responses.{c}")] {
                    let _ = self
                        .channel
                        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
            }
        }
        let _ = self.conn.close(200, "test done".into()).await;
    }
}

async fn purge_real_court_queues(courts: &[&str]) {
    let real: Vec<&&str> = courts.iter().filter(|c| !c.starts_with("ZT")).collect();
    if real.is_empty() {
        return;
    }
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    for c in real {
        for q in [format!("por.inbound.{c}"), format!("por.responses.{c}")] {
            // A queue that does not exist yet closes this channel: use one each.
            let ch = conn.create_channel().await.unwrap();
            let _ = ch
                .queue_purge(q.as_str().into(), lapin::options::QueuePurgeOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "purged".into()).await;
}

/// Collects statuses from a court's response queue.
pub struct StatusWatcher {
    statuses: Arc<Mutex<Vec<StatusMessage>>>,
    problems: Arc<Mutex<Vec<String>>>,
    _task: JoinHandle<()>,
}

impl StatusWatcher {
    pub async fn start(conn: &Connection, court: &str) -> StatusWatcher {
        let channel = conn.create_channel().await.unwrap();
        let mut consumer = channel
            .basic_consume(
                format!("por.responses.{court}").as_str().into(),
                unique_id("test-watch").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (sink, complain) = (statuses.clone(), problems.clone());
        let task = tokio::spawn(async move {
            let _channel = channel;
            while let Some(Ok(d)) = consumer.next().await {
                let _ = d.ack(BasicAckOptions::default()).await;
                let kind = d.properties.kind().as_ref().map(|k| k.as_str().to_string());
                if kind.as_deref() != Some("order-status") {
                    complain.lock().unwrap().push(format!("status with type {kind:?}"));
                }
                match read_status(&d.data) {
                    Ok(status) => {
                        let correlation = d.properties.correlation_id().as_ref().map(|c| c.as_str().to_string());
                        if correlation.as_deref() != Some(status.correlates_to.as_str()) {
                            complain.lock().unwrap().push(format!(
                                "correlation_id {correlation:?} ≠ CorrelatesTo {}",
                                status.correlates_to
                            ));
                        }
                        sink.lock().unwrap().push(status);
                    }
                    Err(e) => complain.lock().unwrap().push(format!("unreadable status: {e}")),
                }
            }
        });
        StatusWatcher {
            statuses,
            problems,
            _task: task,
        }
    }

    fn check(&self) {
        let problems = self.problems.lock().unwrap();
        assert!(problems.is_empty(), "statuses that break ICD §4: {problems:#?}");
    }

    /// Statuses seen so far for `message_id`, by status sequence.
    pub fn for_message(&self, message_id: &str) -> Vec<StatusMessage> {
        let mut v: Vec<_> = self
            .statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.correlates_to == message_id)
            .cloned()
            .collect();
        v.sort_by_key(|s| s.status_sequence);
        v
    }

    pub fn all(&self) -> Vec<StatusMessage> {
        self.statuses.lock().unwrap().clone()
    }

    /// Waits until `done` holds for `message_id`'s statuses, or panics.
    pub async fn wait(
        &self,
        message_id: &str,
        limit: Duration,
        done: impl Fn(&[StatusMessage]) -> bool,
    ) -> Vec<StatusMessage> {
        let started = Instant::now();
        loop {
            self.check();
            let seen = self.for_message(message_id);
            if done(&seen) {
                return seen;
            }
            if started.elapsed() > limit {
                panic!("statuses for {message_id} did not arrive in {limit:?}; seen: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// True once some status has `kind`.
pub fn has(kind: &str) -> impl Fn(&[StatusMessage]) -> bool + '_ {
    move |s: &[StatusMessage]| s.iter().any(|x| x.status.as_str() == kind)
}
