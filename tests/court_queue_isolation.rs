//! A bad court queue stays its own (ICD §1, §9): a court queue deleted, or
//! redeclared as a classic queue, while the broker runs stops only that
//! court. The broker names the queue (an ERROR log and
//! `porter_court_queue_errors_total{court}`) and tries the court's queues
//! again on their own channel until they can be used, and the other courts
//! go on consuming all the while.
//!
//! Queues are deleted and redeclared on a private RabbitMQ node, never on
//! the shared one.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::rabbit::PrivateRabbit;
use common::*;
use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use porter::model::StatusKind;

/// Every log line of the process (the broker runs in-process), also copied
/// to stderr.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,porter=info")
            .with_ansi(false)
            .with_writer(move || Tee(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

struct Tee(Arc<Mutex<Vec<u8>>>);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The captured ERROR lines that hold every one of `needles`.
fn error_lines(logs: &Mutex<Vec<u8>>, needles: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&logs.lock().unwrap())
        .lines()
        .filter(|l| l.contains(" ERROR ") && needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// A counter's value in the Prometheus text (0 when absent).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn court_errors(metrics: &str, court: &str) -> u64 {
    counter(
        metrics,
        &format!("porter_court_queue_errors_total{{court=\"{court}\"}}"),
    )
}

fn issue(court: &str, order: &str) -> Vec<u8> {
    replace(&for_court(&fixture("xml/issue-sample.xml"), court), "24DV01234", order)
}

/// Publishes `n` new orders for `court`; returns their message ids.
async fn publish_orders(h: &Harness, court: &str, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = unique_id(tag);
        let order = format!("24DV{}{i:03}", &tag[..1].to_uppercase());
        h.publish(court, Some(&id), "application/xml", &issue(court, &order))
            .await;
        ids.push(id);
    }
    ids
}

async fn all_delivered(watch: &StatusWatcher, ids: &[String]) {
    for id in ids {
        watch.wait(id, Duration::from_secs(60), has("PARTNER_ACCEPTED")).await;
    }
}

/// Waits until `queue` exists and has a consumer (the broker's).
async fn wait_consumed(admin: &Connection, queue: &str) {
    let started = Instant::now();
    loop {
        // A passive declare of a missing queue closes its channel: one each.
        let ch = admin.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if let Ok(q) = ch.queue_declare(queue.into(), passive, FieldTable::default()).await {
            if q.consumer_count() > 0 {
                let _ = ch.close(200, "checked".into()).await;
                return;
            }
            let _ = ch.close(200, "checked".into()).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{queue} was not consumed again within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Replaces the court's quorum queue by a classic one bound the same way,
/// as an operator's mistake would. The broker may declare its quorum queue
/// again between the delete and the declare; then this tries again.
async fn make_classic(admin: &Connection, court: &str) {
    let queue = format!("por.inbound.{court}");
    for _ in 0..20 {
        let ch = admin.create_channel().await.unwrap();
        ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        let classic = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        if ch
            .queue_declare(queue.as_str().into(), classic, FieldTable::default())
            .await
            .is_ok()
        {
            ch.queue_bind(
                queue.as_str().into(),
                "por.inbound".into(),
                court.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
            let _ = ch.close(200, "classic".into()).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not replace {queue} by a classic queue");
}

/// Proves, on a private RabbitMQ node and three courts, that:
/// - after one court's inbound queue is deleted and another's is replaced
///   by a classic queue while the broker runs, the third court's ten new
///   messages each get one `ACCEPTED` and reach CLETS (`PARTNER_ACCEPTED`),
///   and the AMQP session never ends (`porter_amqp_reconnects_total` does
///   not grow);
/// - the broker names each bad queue in an ERROR log, the classic one with
///   `PRECONDITION_FAILED` from its declare, and counts
///   `porter_court_queue_errors_total{court}` for both, the classic court's
///   at least twice (it is tried again);
/// - the deleted queue is declared again and consumed with no one's help,
///   and the classic court resumes by itself once an operator deletes the
///   classic queue: new messages of both courts reach CLETS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_court_queue_stops_only_its_court_and_resumes_once_fixed() {
    let logs = captured_logs();
    let rabbit = tokio::task::spawn_blocking(PrivateRabbit::start).await.unwrap();
    let (flowing, deleted, classic) = (unique_ori(), unique_ori(), unique_ori());
    let h = Harness::start_with(&[&flowing, &deleted, &classic], &rabbit.url, Setup::default()).await;
    let watch_flowing = h.watch(&flowing).await;
    let watch_deleted = h.watch(&deleted).await;
    let watch_classic = h.watch(&classic).await;
    let admin = Connection::connect(&rabbit.url, ConnectionProperties::default())
        .await
        .unwrap();

    // Every court works at first.
    let first_flowing = publish_orders(&h, &flowing, "first", 1).await;
    let first_deleted = publish_orders(&h, &deleted, "first", 1).await;
    let first_classic = publish_orders(&h, &classic, "first", 1).await;
    all_delivered(&watch_flowing, &first_flowing).await;
    all_delivered(&watch_deleted, &first_deleted).await;
    all_delivered(&watch_classic, &first_classic).await;
    let reconnects_before = counter(&h.metrics().await, "porter_amqp_reconnects_total");

    // An operator deletes one court's queue and replaces another's.
    let ch = admin.create_channel().await.unwrap();
    ch.queue_delete(
        format!("por.inbound.{deleted}").as_str().into(),
        QueueDeleteOptions::default(),
    )
    .await
    .unwrap();
    let _ = ch.close(200, "deleted".into()).await;
    make_classic(&admin, &classic).await;

    // The other court goes on.
    let during = publish_orders(&h, &flowing, "during", 10).await;
    all_delivered(&watch_flowing, &during).await;

    // The broker says which queues are wrong, and keeps trying the classic one.
    let deleted_queue = format!("por.inbound.{deleted}");
    let classic_queue = format!("por.inbound.{classic}");
    let started = Instant::now();
    loop {
        let metrics = h.metrics().await;
        let named = !error_lines(&logs, &[&deleted_queue]).is_empty()
            && !error_lines(&logs, &[&classic_queue, "PRECONDITION_FAILED"]).is_empty();
        if named && court_errors(&metrics, &deleted) >= 1 && court_errors(&metrics, &classic) >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the bad queues were not reported: deleted {} errors, classic {} errors; logs:\n{}",
            court_errors(&metrics, &deleted),
            court_errors(&metrics, &classic),
            error_lines(&logs, &[]).join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        counter(&h.metrics().await, "porter_amqp_reconnects_total"),
        reconnects_before,
        "the AMQP session ended"
    );

    // The deleted queue is back by itself.
    wait_consumed(&admin, &deleted_queue).await;
    let after_deleted = publish_orders(&h, &deleted, "after", 2).await;
    all_delivered(&watch_deleted, &after_deleted).await;

    // The operator removes the classic queue; the court resumes by itself.
    let ch = admin.create_channel().await.unwrap();
    ch.queue_delete(classic_queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = ch.close(200, "fixed".into()).await;
    wait_consumed(&admin, &classic_queue).await;
    let after_classic = publish_orders(&h, &classic, "after", 2).await;
    all_delivered(&watch_classic, &after_classic).await;

    // And the other court was never held up nor answered twice.
    let last = publish_orders(&h, &flowing, "last", 2).await;
    all_delivered(&watch_flowing, &last).await;
    for id in first_flowing.iter().chain(&during).chain(&last) {
        let s = watch_flowing.for_message(id);
        let accepted = s.iter().filter(|x| x.status == StatusKind::Accepted).count();
        assert_eq!(accepted, 1, "{id}: {s:#?}");
    }
    assert_eq!(
        counter(&h.metrics().await, "porter_amqp_reconnects_total"),
        reconnects_before,
        "the AMQP session ended"
    );

    h.stop().await;
    let _ = admin.close(200, "done".into()).await;
    drop(rabbit);
}
