//! The court simulator: plays one or more court CMSs against Porter.
//!
//! # Design note
//!
//! A run goes through four steps, one module each:
//!
//! 1. **Generate** ([`orders`]): each configured court gets an
//!    [`OrderGenerator`] seeded from the run seed and its ORI, and generates
//!    `orders_per_court` orders: an ISSUE each, and with `lifecycle` also a
//!    MODIFY (sequence 2) and a SERVICE (sequence 3), and with `close` a
//!    TERMINATE or CANCEL (sequence 4, per `close_mode`). Generation is
//!    deterministic; only the send times and the run tag in the message ids
//!    differ between two runs with the same seed.
//! 2. **Write** ([`xml`], [`fixed`]): each court writes its own format, ICD §2
//!    XML or §3 `cms-a/1` fixed-width, unless `format_override` sets one for
//!    all (or draws one per order). With `images`, XML ISSUEs and some
//!    MODIFYs carry a generated PDF ([`image`]); fixed-width has no image
//!    record. The simulator is independent of Porter's code: it writes the
//!    ICD formats itself, as a vendor would.
//! 3. **Publish** ([`publisher`]): one connection, replaced whole when it
//!    fails ([`link`]), one confirm-mode channel, `por.inbound` with routing key = ORI, `mandatory`.
//!    Each court has `order_window` orders in flight together (default 8):
//!    the ISSUEs of its first window, then their MODIFYs, and so on, before
//!    its next window ([`publisher::schedule`]); the courts take turns. The
//!    overall rate is `rate_per_sec`; up to 64 confirms are in flight, but
//!    the messages of one order go strictly one after the other, each only
//!    once the previous one was confirmed. The status tracking is by message
//!    id and assumes nothing about what was published next to what.
//! 4. **Check statuses** ([`statuses`]): before publishing, a consumer is
//!    started on `por.responses.<ORI>` of every court whose queue exists
//!    (checked with a passive declare: courts declare nothing, ICD §1). Each
//!    status is printed as one line and recorded; the run waits until every
//!    sent message is complete, `status_timeout_secs` after the last publish,
//!    or shutdown, whichever comes first.
//!
//! The result is a [`CourtSimReport`]: counts, the incomplete message ids,
//! publish failures, anomalies, and the run's [`Timings`] (latencies from
//! publish to `ACCEPTED` and to the last `PARTNER_ACCEPTED`, messages per
//! second). It is serde-serialisable for `porter sim court --json`, and
//! [`CourtSimReport::is_clean`] decides the command's exit code. Logs carry
//! no personal data: names, addresses and dates of birth only ever appear in
//! the message bodies.
//!
//! Only one simulator should consume a court's status queue at a time: it
//! acknowledges (and drops) statuses of messages it did not send.
#![warn(missing_docs)]

pub mod config;
pub mod fixed;
pub mod image;
pub mod link;
pub mod orders;
pub mod publisher;
pub mod report;
pub mod statuses;
pub mod timings;
pub mod xml;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lapin::options::{BasicQosOptions, ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Notify;
use tracing::{info, warn};

pub use config::{CloseMode, CourtFormat, CourtSimConfig, FormatChoice, SimCourt};
pub use fixed::to_fixed;
pub use link::Link;
pub use orders::{GeneratedMessage, OrderGenerator};
pub use publisher::{INBOUND_EXCHANGE, PublishEvent, Publisher, publish_all};
pub use report::CourtSimReport;
pub use statuses::{OrderStatus, StatusKind, StatusTracker, parse_status, status_line};
pub use timings::{LatencyStats, Timings};
pub use xml::to_xml;

/// The status queue of a court (ICD §1).
pub fn response_queue(ori: &str) -> String {
    format!("por.responses.{ori}")
}

/// Runs the simulator, printing each status line to stdout.
pub async fn run(config: CourtSimConfig, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<CourtSimReport> {
    run_with_printer(config, shutdown, |line| println!("{line}")).await
}

/// Runs the simulator, handing each status line to `printer`.
pub async fn run_with_printer(
    config: CourtSimConfig,
    shutdown: impl Future<Output = ()> + Send,
    printer: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<CourtSimReport> {
    config.validate()?;
    let run_tag = run_tag();
    let orders = plan(&config, orders::now_pacific(), &run_tag);
    let planned: usize = orders.iter().map(Vec::len).sum();
    info!(
        courts = config.courts.len(),
        orders_per_court = config.orders_per_court,
        order_window = config.order_window,
        lifecycle = config.lifecycle,
        close = config.close,
        images = config.images,
        messages = planned,
        seed = config.seed,
        run_tag = %run_tag,
        "Court simulator starting."
    );

    let nodes = config.nodes();
    let connection = connect_first(&nodes).await?;

    let check = connection.create_channel().await?;
    check
        .exchange_declare(
            INBOUND_EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                passive: true,
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("court simulator: exchange por.inbound does not exist (the Porter broker declares it)")?;
    let _ = check.close(200, "OK".into()).await;

    let mut tracked_queues = Vec::new();
    let mut untracked_courts = Vec::new();
    for court in &config.courts {
        let queue = response_queue(&court.ori);
        if queue_exists(&connection, &queue).await {
            tracked_queues.push(queue);
        } else {
            warn!(court = %court.ori, queue = %queue, "Court has no status queue; its statuses cannot be checked.");
            untracked_courts.push(court.ori.clone());
        }
    }
    let _ = connection.close(200, "OK".into()).await;

    // Consumers start on each connection before anything is published on
    // it, so that no status is missed.
    let tracker = Arc::new(Mutex::new(StatusTracker::default()));
    let progress = Arc::new(Notify::new());
    let printer: statuses::Printer = Arc::new(printer);
    let on_connect = consumers_on_connect(tracked_queues, tracker.clone(), printer, progress.clone());
    let link = Arc::new(
        Link::open(nodes, publisher::APP_ID, on_connect)
            .await
            .context("court simulator: cannot connect to RabbitMQ")?,
    );
    let publisher = Publisher::on_link(link.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut untracked_sent = Vec::new();
    let mut samples = timings::TimingSamples::default();
    let summary = publish_all(
        &publisher,
        orders,
        config.order_window,
        config.rate_per_sec,
        |event| {
            let now = Instant::now();
            match event {
                PublishEvent::Publishing(m) => {
                    samples.first_publish.get_or_insert(now);
                    if !untracked_courts.contains(&m.court_ori) {
                        lock(&tracker).expect_at(m, now);
                    }
                }
                PublishEvent::Confirmed(m) => {
                    samples.last_confirm = Some(now);
                    if untracked_courts.contains(&m.court_ori) {
                        untracked_sent.push(m.message_id.clone());
                    } else {
                        lock(&tracker).mark_sent(&m.message_id);
                    }
                }
                PublishEvent::Failed(m, _) => lock(&tracker).forget(&m.message_id),
            }
        },
        shutdown.as_mut(),
    )
    .await;
    info!(
        sent = summary.confirmed.len(),
        failed = summary.failed.len(),
        not_sent = summary.not_sent,
        "Court simulator published its messages; waiting for statuses."
    );

    if !summary.interrupted {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(config.status_timeout_secs);
        loop {
            if lock(&tracker).all_complete() {
                break;
            }
            tokio::select! {
                () = progress.notified() => {}
                () = tokio::time::sleep_until(deadline) => break,
                () = &mut shutdown => break,
            }
        }
    }

    drop(publisher);
    if let Some(link) = Arc::into_inner(link) {
        link.close().await;
    }

    let totals = lock(&tracker).totals();
    samples.published = summary.confirmed.len();
    lock(&tracker).add_timings(&mut samples);
    let mut incomplete = totals.incomplete;
    incomplete.extend(untracked_sent.iter().cloned());
    let report = CourtSimReport {
        sent: totals.sent + untracked_sent.len(),
        complete: totals.complete,
        incomplete,
        rejected: totals.rejected,
        partner_accepted: totals.partner_accepted,
        partner_rejected: totals.partner_rejected,
        dead_lettered: totals.dead_lettered,
        publish_failed: summary.failed,
        not_sent: summary.not_sent,
        anomalies: totals.anomalies,
        seed: config.seed,
        timings: Timings::compute(&samples),
    };
    info!(
        sent = report.sent,
        complete = report.complete,
        incomplete = report.incomplete.len(),
        rejected = report.rejected,
        publish_failed = report.publish_failed.len(),
        anomalies = report.anomalies.len(),
        "Court simulator finished."
    );
    Ok(report)
}

/// Every court's orders, each order's messages in sequence order, with the
/// courts interleaved (court A's first order, court B's first order, …).
/// [`publisher::schedule`] decides the order in which their messages go.
pub fn plan(
    config: &CourtSimConfig,
    now: chrono::DateTime<chrono::FixedOffset>,
    run_tag: &str,
) -> Vec<Vec<GeneratedMessage>> {
    let mut generators: Vec<OrderGenerator> = config
        .courts
        .iter()
        .map(|c| {
            OrderGenerator::new(c, config.seed, now, run_tag)
                .with_format(config.format_override)
                .with_images(config.images)
                .with_close_mode(config.close_mode)
        })
        .collect();
    let mut orders = Vec::new();
    for _ in 0..config.orders_per_court {
        for g in &mut generators {
            orders.push(g.next_order(config.lifecycle, config.close));
        }
    }
    orders
}

/// A short tag unique to this run (base-36 milliseconds), for message ids.
fn run_tag() -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut tag = Vec::new();
    while n > 0 {
        tag.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    tag.reverse();
    String::from_utf8(tag).unwrap_or_default()
}

/// A connection to the first of `nodes` that accepts, for the checks
/// before the run; each node that does not is logged (without password).
async fn connect_first(nodes: &[String]) -> anyhow::Result<Connection> {
    let mut last_error = None;
    for url in nodes {
        let properties = ConnectionProperties::default().with_connection_name(publisher::APP_ID.into());
        match Connection::connect(url, properties).await {
            Ok(connection) => return Ok(connection),
            Err(error) => {
                warn!(node = %link::redact_url(url), %error, "Cannot connect to this RabbitMQ node; trying the next one.");
                last_error = Some(anyhow::Error::from(error));
            }
        }
    }
    let error = last_error.unwrap_or_else(|| anyhow::anyhow!("no RabbitMQ node configured"));
    Err(error.context("court simulator: cannot connect to RabbitMQ"))
}

/// Starts a status consumer on each of `queues` on a new connection.
fn consumers_on_connect(
    queues: Vec<String>,
    tracker: Arc<Mutex<StatusTracker>>,
    printer: statuses::Printer,
    progress: Arc<Notify>,
) -> link::OnConnect {
    Arc::new(move |channel: lapin::Channel| {
        let (queues, tracker, printer, progress) = (queues.clone(), tracker.clone(), printer.clone(), progress.clone());
        Box::pin(async move {
            channel.basic_qos(256, BasicQosOptions::default()).await?;
            let mut consumers = Vec::new();
            for queue in &queues {
                consumers.push(
                    statuses::consume(&channel, queue, tracker.clone(), printer.clone(), progress.clone())
                        .await
                        .with_context(|| format!("court simulator: cannot consume {queue}"))?,
                );
            }
            Ok(consumers)
        })
    })
}

/// Whether a queue exists, by a passive declare on a channel of its own (a
/// failed passive declare closes its channel).
async fn queue_exists(connection: &Connection, queue: &str) -> bool {
    let Ok(channel) = connection.create_channel().await else {
        return false;
    };
    let exists = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok();
    if exists {
        let _ = channel.close(200, "OK".into()).await;
    }
    exists
}

fn lock(tracker: &Mutex<StatusTracker>) -> MutexGuard<'_, StatusTracker> {
    tracker.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders are interleaved across courts and keep their lifecycle in sequence.
    #[test]
    fn plan_interleaves_courts() {
        let config = CourtSimConfig {
            orders_per_court: 2,
            lifecycle: true,
            seed: 9,
            ..Default::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap();
        let orders = plan(&config, now, "t");
        let courts: Vec<&str> = orders.iter().map(|o| o[0].court_ori.as_str()).collect();
        assert_eq!(courts, ["CA034025J", "CA019015J", "CA034025J", "CA019015J"]);
        assert!(orders.iter().all(|o| o.iter().map(|m| m.sequence).eq(1..=3)));
        assert_eq!(orders[1][0].format, CourtFormat::Fixed);
        assert!(run_tag().len() >= 8);
    }

    /// `(court, order number, sequence)` of each message, in publication order.
    fn published(orders: &[Vec<GeneratedMessage>], window: usize) -> Vec<(String, String, u32)> {
        let mut next = vec![0; orders.len()];
        publisher::schedule(orders, window)
            .into_iter()
            .map(|i| {
                let m = &orders[i][next[i]];
                next[i] += 1;
                (m.court_ori.clone(), m.order.order_number.clone(), m.sequence)
            })
            .collect()
    }

    /// The schedule publishes every message once, each order's in sequence
    /// order, with `order_window` orders of a court interleaved: the first
    /// messages of a window's orders, then their second ones, and so on,
    /// courts taking turns; a window of 1 publishes order after order. The
    /// same seed gives the same publication order.
    #[test]
    fn schedule_interleaves_a_window_of_orders_per_court() {
        let config = CourtSimConfig {
            orders_per_court: 5,
            lifecycle: true,
            close: true,
            seed: 9,
            ..Default::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap();
        let orders = plan(&config, now, "t");
        let sequence = published(&orders, 2);
        assert_eq!(sequence.len(), 40, "every message once");
        let mut last = std::collections::HashMap::new();
        for (court, order, seq) in &sequence {
            let before = last.insert((court.clone(), order.clone()), *seq).unwrap_or(0);
            assert_eq!(*seq, before + 1, "{court} {order}: sequence order");
        }
        let (a, b) = (&config.courts[0].ori, &config.courts[1].ori);
        let number = |court: &str, k: usize| {
            orders.iter().filter(|o| o[0].court_ori == court).nth(k).unwrap()[0]
                .order
                .order_number
                .clone()
        };
        // Window 1: round 1 of A's orders 1 and 2, of B's; then round 2 …
        let first: Vec<(String, String, u32)> = [(a, 0, 1), (a, 1, 1), (b, 0, 1), (b, 1, 1), (a, 0, 2), (a, 1, 2)]
            .into_iter()
            .map(|(court, k, seq)| (court.clone(), number(court, k), seq))
            .collect();
        assert_eq!(sequence[..6], first[..]);
        // The second window starts after the first window's closes.
        assert_eq!(sequence[16], (a.clone(), number(a, 2), 1));
        assert_eq!(sequence[15], (b.clone(), number(b, 1), 4));
        // The last window holds court A's fifth order and court B's.
        assert_eq!(
            sequence[32..34],
            [(a.clone(), number(a, 4), 1), (b.clone(), number(b, 4), 1)]
        );
        // A window of 1: each court's order complete before its next.
        let one = published(&orders, 1);
        assert_eq!(
            one[..8].iter().map(|m| m.2).collect::<Vec<_>>(),
            [1, 1, 2, 2, 3, 3, 4, 4]
        );
        assert_eq!(one[0].1, one[6].1);
        assert_eq!(published(&plan(&config, now, "t"), 2), sequence, "reproducible");
    }

    /// `run` can be spawned on a multi-threaded runtime.
    #[test]
    fn run_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let future = run(CourtSimConfig::default(), async {});
        assert_send(&future);
    }
}
