//! Isolation from a full `por.dead` (ICD §9; issue 15 item 4): `por.dead`
//! is bounded by policy with `overflow = reject-publish`, so once it is
//! full RabbitMQ refuses every dead letter. That must hold back neither
//! statuses nor the intake's acknowledgements; the dead letters wait in the
//! store's outbox and go out, with backoff, once there is room. And the
//! outbox sweep reaches every unpublished row, however many rows before it
//! keep failing.
//!
//! Both tests run on a private RabbitMQ node (`common::rabbit`), never the
//! shared one: the first shrinks `por.dead` with a policy, the second sends
//! statuses nowhere on purpose.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::rabbit::PrivateRabbit;
use common::*;
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use porter::config::Config;
use porter::intake::{InboundProperties, examine};
use porter::model::StatusKind;
use porter::status::{Relay, SWEEP_AGE};
use porter::store::{SqlStore, Store};
use porter::transport::Publisher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// One test at a time: the metrics and the captured log are per process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Everything the process logged, as text.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Captures the broker's log (INFO and above) into [`LOG`], and to stderr.
fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,porter=info,lapin::returned_messages=error")
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// Personal data in every message these tests publish; never to be logged.
const RESPONDENT_MIDDLE_NAME: &str = "PRIVATEMARKER";
const RESPONDENT_STREET: &str = "1200 J ST APT 4";

fn issue(court: &str, order: &str) -> Vec<u8> {
    let body = replace(&for_court(&fixture("xml/issue-sample.xml"), court), "24DV01234", order);
    replace(&body, "ALLEN", RESPONDENT_MIDDLE_NAME)
}

/// An ISSUE with an unknown sex code: `REJECTED` (`INVALID_CODE`) and a dead
/// letter at stage `validate`.
fn invalid_issue(court: &str, order: &str) -> Vec<u8> {
    replace(
        &issue(court, order),
        "<por:SexCode>M</por:SexCode>",
        "<por:SexCode>Q</por:SexCode>",
    )
}

/// Sets (or changes) the test's policy on `por.dead`: at most `max_length`
/// messages, refusing publishes beyond (as `porter topology` bounds it).
/// Priority 20, above Porter's own `por-dead` policy should that be applied.
async fn bound_por_dead(node: &PrivateRabbit, max_length: u64) {
    let url = format!(
        "{}/api/policies/%2F/test-por-dead",
        node.management_url.as_deref().unwrap()
    );
    let response = reqwest::Client::new()
        .put(&url)
        .basic_auth("guest", Some("guest"))
        .json(&json!({
            "pattern": r"^por\.dead$",
            "apply-to": "queues",
            "priority": 20,
            "definition": {"max-length": max_length, "overflow": "reject-publish"},
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "PUT {url}: {}", response.status());
}

/// The management API's view of a queue.
async fn queue_info(node: &PrivateRabbit, queue: &str) -> serde_json::Value {
    let url = format!("{}/api/queues/%2F/{queue}", node.management_url.as_deref().unwrap());
    reqwest::Client::new()
        .get(&url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn confirmed_channel(conn: &Connection) -> Channel {
    let channel = conn.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
}

/// Publishes fillers to `por.dead` until RabbitMQ refuses one (the policy
/// takes a moment to apply). Returns how many it took.
async fn fill_por_dead(conn: &Connection) -> u64 {
    let channel = confirmed_channel(conn).await;
    let started = Instant::now();
    let mut taken = 0;
    loop {
        let confirm = channel
            .basic_publish(
                "".into(),
                "por.dead".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                b"filler",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        match confirm {
            Confirmation::Ack(None) => taken += 1,
            Confirmation::Nack(_) => break,
            other => panic!("filler not routed: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30) && taken < 100,
            "por.dead never refused a publish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = channel.close(200, "filled".into()).await;
    taken
}

/// Messages ready on `queue`, by a passive declare.
async fn ready(conn: &Connection, queue: &str) -> u32 {
    let channel = conn.create_channel().await.unwrap();
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = channel.close(200, "done".into()).await;
    q.message_count()
}

/// The value of an unlabelled metric in a Prometheus text page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn header(d: &lapin::message::Delivery, name: &str) -> Option<String> {
    match d.properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

fn count(s: &[porter::model::StatusMessage], kind: StatusKind) -> usize {
    s.iter().filter(|x| x.status == kind).count()
}

/// Proves that with `por.dead` full (a `max-length` 1 `reject-publish`
/// policy, a filler in it), ten invalid messages interleaved with five
/// valid ones of the same court:
/// - are all answered: one `REJECTED` each, one `ACCEPTED` and one
///   `PARTNER_ACCEPTED` for each valid one, and each exactly once, also
///   20 s later (nothing is re-sent: no requeue, no sweep re-publishing);
/// - are all acknowledged at once: none is returned to its queue
///   (`porter_intake_requeued_total`), and the inbound queue holds nothing,
///   ready or unacknowledged;
/// - leave their ten dead letters unpublished in the store, counted by the
///   gauge `porter_dead_letters_unpublished`, with an ERROR that names their
///   ids and no personal data; refused publishes grow by one per sweep
///   round at most (backoff, one probe per round), not by ten;
/// - and once `por.dead` has room, all ten reach it within 60 s, and the
///   gauge falls to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_por_dead_holds_back_no_status_and_no_ack() {
    const INVALID: usize = 10;
    const VALID: usize = 5;
    let _serial = SERIAL.lock().await;
    capture_logs();
    let node = tokio::task::spawn_blocking(PrivateRabbit::start_with_management)
        .await
        .unwrap();
    let court = unique_ori();
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("porter.db").display());
    let setup = Setup {
        store_url: Some(store_url.clone()),
        ..Setup::default()
    };
    let h = Harness::start_with(&[&court], &node.url, setup).await;
    let watch = h.watch(&court).await;
    bound_por_dead(&node, 1).await;
    let fillers = fill_por_dead(&h.conn).await;
    let requeued_before = metric(&h.metrics().await, "porter_intake_requeued_total").unwrap_or(0.0);

    let (mut invalid, mut valid) = (Vec::new(), Vec::new());
    for i in 0..INVALID {
        let id = unique_id("dead-full-invalid");
        let body = invalid_issue(&court, &format!("24DVX{i:04}"));
        h.publish(&court, Some(&id), "application/xml", &body).await;
        invalid.push(id);
        if i < VALID {
            let id = unique_id("dead-full-valid");
            h.publish(
                &court,
                Some(&id),
                "application/xml",
                &issue(&court, &format!("24DVV{i:04}")),
            )
            .await;
            valid.push(id);
        }
    }
    for id in &invalid {
        watch.wait(id, Duration::from_secs(60), has("REJECTED")).await;
    }
    for id in &valid {
        watch.wait(id, Duration::from_secs(60), has("PARTNER_ACCEPTED")).await;
    }

    // Acknowledged the first time (none returned to the queue to be
    // answered again as a duplicate), and nothing left on the court queue,
    // ready or unacked (the management API's figures lag by a few seconds).
    assert_eq!(
        metric(&h.metrics().await, "porter_intake_requeued_total").unwrap_or(0.0),
        requeued_before,
        "inbound deliveries were returned to their queue"
    );
    let inbound = format!("por.inbound.{court}");
    let started = Instant::now();
    loop {
        let q = queue_info(&node, &inbound).await;
        if q["messages"] == 0 && q["messages_unacknowledged"] == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "inbound deliveries not acknowledged: {q}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Quiet for more than the sweep's age and two of its rounds: nothing
    // is sent again, and por.dead is refused one probe per round at most.
    let refused_before = metric(&h.metrics().await, "porter_dead_letters_refused_total").unwrap_or(0.0);
    tokio::time::sleep(SWEEP_AGE + Duration::from_secs(10)).await;
    for id in &invalid {
        let s = watch.for_message(id);
        assert_eq!(s.len(), 1, "{id}: one REJECTED and nothing else: {s:#?}");
        assert_eq!(count(&s, StatusKind::Rejected), 1);
    }
    for id in &valid {
        let s = watch.for_message(id);
        assert_eq!(count(&s, StatusKind::Accepted), 1, "{id}: {s:#?}");
        assert_eq!(count(&s, StatusKind::PartnerAccepted), 1, "{id}: {s:#?}");
    }
    assert_eq!(
        u64::from(ready(&h.conn, "por.dead").await),
        fillers,
        "por.dead holds only the fillers"
    );
    let page = h.metrics().await;
    let refused = metric(&page, "porter_dead_letters_refused_total").unwrap_or(0.0) - refused_before;
    assert!(
        (1.0..=8.0).contains(&refused),
        "{refused} refused dead-letter publishes in 20 s (one per backoff round expected)"
    );

    // The dead letters are in the store, unpublished, and said so.
    let store = SqlStore::connect(&store_url).await.unwrap();
    let pending: Vec<_> = store
        .pending_dead_letters(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.court_ori == court)
        .collect();
    let mut pending_ids: Vec<&str> = pending.iter().map(|d| d.message_id.as_str()).collect();
    pending_ids.sort();
    let mut expected: Vec<&str> = invalid.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(pending_ids, expected, "the dead letters wait in the outbox");
    assert_eq!(
        metric(&page, "porter_dead_letters_unpublished"),
        Some(INVALID as f64),
        "{page}"
    );
    let log = log_text();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("por.dead"))
        .collect();
    assert!(!errors.is_empty(), "no ERROR says por.dead refuses dead letters");
    assert!(
        errors.iter().any(|l| l.contains(&format!("ids=[{}", pending[0].id))),
        "the ERROR names the dead letters' ids: {errors:#?}"
    );
    for secret in [RESPONDENT_MIDDLE_NAME, RESPONDENT_STREET] {
        assert!(!log.contains(secret), "personal data logged: {secret}");
    }

    // Room again: every dead letter reaches por.dead, once, within 60 s.
    bound_por_dead(&node, 10_000).await;
    let drain = h.conn.create_channel().await.unwrap();
    for _ in 0..fillers {
        let filler = drain
            .basic_get("por.dead".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("a filler");
        assert_eq!(filler.delivery.data, b"filler");
    }
    let letters = h.take_dead_letters(&court, INVALID, Duration::from_secs(60)).await;
    let mut got: Vec<String> = letters.iter().map(|d| header(d, "x-por-message-id").unwrap()).collect();
    got.sort();
    assert_eq!(got, expected, "every dead letter reached por.dead once there was room");
    let started = Instant::now();
    loop {
        let page = h.metrics().await;
        if metric(&page, "porter_dead_letters_unpublished") == Some(0.0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        store
            .pending_dead_letters(1000)
            .await
            .unwrap()
            .iter()
            .all(|d| d.court_ori != court)
    );
    for id in &invalid {
        assert_eq!(watch.for_message(id).len(), 1, "{id} answered again");
    }
    h.stop().await;
}

/// Proves the outbox sweep reaches every unpublished status, not only the
/// first 1,000: 1,001 statuses to a court whose status queue does not exist
/// (each publish is returned, so they stay unpublished), then one status to
/// a court whose queue does. The sweep, run alone, delivers the last one
/// and marks it; the 1,001 stay unpublished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_reaches_rows_past_a_thousand_failing_ones() {
    const STUCK: usize = 1001;
    let _serial = SERIAL.lock().await;
    capture_logs();
    let node = tokio::task::spawn_blocking(PrivateRabbit::start).await.unwrap();
    let (stuck, open) = (unique_ori(), unique_ori());
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("porter.db").display());
    let mut toml = format!(
        "[amqp]\nurl = {:?}\n[store]\nurl = {store_url:?}\n[paths]\nschemas = {:?}\nmappings = {:?}\n\
         [partners.clets]\naddress = \"127.0.0.1:9\"\n",
        node.url,
        repo().join("schemas").display().to_string(),
        repo().join("mappings").display().to_string(),
    );
    for c in [&stuck, &open] {
        toml.push_str(&format!("[[courts]]\nori = \"{c}\"\nsheriff_ori = \"CA0340000\"\n"));
    }
    let config = Config::from_toml_str(&toml, &dir.path().join("porter.toml")).unwrap();
    config.validate().unwrap();
    let formats = porter::broker::load_formats(&config).unwrap();
    let router = porter::routing::Router::from_config(&config).unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&store_url)
            .await
            .unwrap()
            .with_router(Arc::new(router)),
    );

    let item = |court: &str, id: &str, body: &[u8]| {
        let court = config.courts.iter().find(|c| c.ori == court).unwrap();
        let props = InboundProperties {
            message_id: Some(id.to_string()),
            content_type: Some("application/xml".into()),
            delivery_mode: Some(2),
            ..Default::default()
        };
        examine(court, &props, body, &formats)
    };
    let items: Vec<_> = (0..STUCK)
        .map(|i| item(&stuck, &unique_id("stuck"), &issue(&stuck, &format!("24DVS{i:05}"))))
        .collect();
    for chunk in items.chunks(200) {
        store.intake(chunk.to_vec()).await.unwrap();
    }
    let last = unique_id("after-the-stuck");
    store
        .intake(vec![item(&open, &last, &issue(&open, "24DVO00001"))])
        .await
        .unwrap();
    assert_eq!(store.pending_statuses(5000).await.unwrap().len(), STUCK + 1);

    // Only the open court has queues: every status to `stuck` is returned.
    let conn = Connection::connect(&node.url, ConnectionProperties::default())
        .await
        .unwrap();
    let declare = conn.create_channel().await.unwrap();
    let open_court = config.courts.iter().find(|c| c.ori == open).unwrap().clone();
    porter::transport::topology::declare(&declare, &[open_court])
        .await
        .unwrap();
    let watch = StatusWatcher::start(&conn, &open).await;

    // The sweep only re-sends rows past its age.
    tokio::time::sleep(SWEEP_AGE + Duration::from_secs(1)).await;
    let stop = CancellationToken::new();
    let publisher = Publisher::new(512);
    let pump = {
        let (publisher, channel, stop) = (publisher.clone(), conn.create_channel().await.unwrap(), stop.clone());
        tokio::spawn(async move { publisher.pump(channel, 256, stop).await })
    };
    let relay = Relay {
        store: store.clone(),
        publisher,
    };
    let sweep = tokio::spawn(relay.sweep(None, stop.clone()));

    let s = watch.wait(&last, Duration::from_secs(60), has("ACCEPTED")).await;
    assert_eq!(s.len(), 1, "{s:#?}");
    let started = Instant::now();
    loop {
        let pending = store.pending_statuses(5000).await.unwrap();
        if pending.iter().all(|s| s.message.court_ori == stuck) {
            assert_eq!(pending.len(), STUCK, "the stuck court's statuses stay in the outbox");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the delivered status is not marked"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    sweep.await.unwrap();
    let _ = pump.await;
    let _ = conn.close(200, "done".into()).await;
}
