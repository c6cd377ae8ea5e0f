//! The raw relay: the least any broker must do with RabbitMQ for Porter's
//! traffic, written directly on lapin, as the yardstick of a bench run.
//!
//! For each court message: one persistent message published, with
//! publisher confirms, to an input queue. A relay consumer (manual acks,
//! the brokers' prefetch) takes each delivery, publishes `k` persistent
//! messages with confirms to an output queue, waits for their confirms and
//! acknowledges the delivery; deliveries are handled concurrently, up to the
//! prefetch. A "court" consumer on the output queue counts each message's
//! `k` outputs; the message is complete when all arrived. `k` spreads
//! Porter's own status count of the run over the messages, so that the
//! relay publishes exactly as many messages as Porter published statuses.
//! Both queues are quorum queues, as Porter's court queues are, and are
//! deleted at the end.
//!
//! The input bodies are the run's court messages (the same generator and
//! seed); each output body is [`STATUS_BODY_BYTES`] long, about the size of
//! a Porter status. Nothing is parsed, stored or sent to a partner: the
//! relay's rate is what RabbitMQ, persistence and confirms allow on this
//! machine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use porter_simulators::court::LatencyStats;
use serde::Serialize;
use tokio::sync::Notify;

/// Length of each output ("status") body, in bytes.
pub const STATUS_BODY_BYTES: usize = 900;

/// How many input publishes wait for their confirms together while the
/// input is preloaded.
const PRELOAD_WINDOW: usize = 64;

/// How the relay's input arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// All input is queued first, then the relay starts and drains it.
    Backlog,
    /// The input is published at this many messages per second while the
    /// relay runs.
    Rate(f64),
}

/// What one relay run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    /// Input messages relayed.
    pub messages: usize,
    /// Output messages published (and received).
    pub statuses: usize,
    /// Seconds measured: from the relay's start (backlog) or the first
    /// input publish (rate) to the last output received.
    pub secs: f64,
    /// `messages / secs`.
    pub msgs_per_sec: f64,
    /// Input publish → last of its outputs received.
    pub latency: Option<LatencyStats>,
}

/// The relay's shared counters.
struct Progress {
    /// Per message: its output count, and how many arrived.
    expected: Vec<usize>,
    arrived: Vec<AtomicUsize>,
    published_at: Mutex<Vec<Option<Instant>>>,
    latencies: Mutex<Vec<Duration>>,
    complete: AtomicUsize,
    last_complete: Mutex<Option<Instant>>,
    done: Notify,
}

/// Relays `bodies` with `statuses` outputs in all, within `limit`.
pub async fn run(
    amqp_url: &str,
    bodies: &[Vec<u8>],
    statuses: usize,
    arrival: Arrival,
    prefetch: u16,
    limit: Duration,
) -> anyhow::Result<RelayReport> {
    anyhow::ensure!(!bodies.is_empty(), "the relay has no message to carry");
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("relay: cannot connect to RabbitMQ")?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let input = format!("porter-bench.{}.in", &tag[..12]);
    let output = format!("porter-bench.{}.out", &tag[..12]);
    let admin = connection.create_channel().await?;
    for queue in [&input, &output] {
        admin
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                crate::transport::topology::quorum_arguments(),
            )
            .await
            .with_context(|| format!("relay: cannot declare {queue}"))?;
    }
    let result = relay(&connection, &input, &output, bodies, statuses, arrival, prefetch, limit).await;
    for queue in [&input, &output] {
        let _ = admin
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn relay(
    connection: &Connection,
    input: &str,
    output: &str,
    bodies: &[Vec<u8>],
    statuses: usize,
    arrival: Arrival,
    prefetch: u16,
    limit: Duration,
) -> anyhow::Result<RelayReport> {
    let progress = Arc::new(Progress {
        expected: spread(statuses, bodies.len()),
        arrived: (0..bodies.len()).map(|_| AtomicUsize::new(0)).collect(),
        published_at: Mutex::new(vec![None; bodies.len()]),
        latencies: Mutex::new(Vec::with_capacity(bodies.len())),
        complete: AtomicUsize::new(0),
        last_complete: Mutex::new(None),
        done: Notify::new(),
    });
    let court = count_outputs(connection, output, progress.clone()).await?;
    let publisher = connection.create_channel().await?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await?;
    let relay_channel = connection.create_channel().await?;
    relay_channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    relay_channel.confirm_select(ConfirmSelectOptions::default()).await?;

    let started = match arrival {
        Arrival::Backlog => {
            preload(&publisher, input, bodies, &progress).await?;
            let started = Instant::now();
            start_relay(&relay_channel, input, output, progress.clone()).await?;
            started
        }
        Arrival::Rate(rate) => {
            start_relay(&relay_channel, input, output, progress.clone()).await?;
            let started = Instant::now();
            let feeder = publish_at_rate(
                publisher.clone(),
                input.to_string(),
                bodies.to_vec(),
                rate,
                progress.clone(),
            );
            tokio::spawn(feeder);
            started
        }
    };
    let finished = tokio::time::timeout(limit, wait_complete(&progress)).await;
    court.abort();
    anyhow::ensure!(
        finished.is_ok(),
        "relay: {} of {} messages complete after {} s",
        progress.complete.load(Ordering::SeqCst),
        bodies.len(),
        limit.as_secs()
    );
    let end = lock(&progress.last_complete).unwrap_or_else(Instant::now);
    let secs = end.saturating_duration_since(started).as_secs_f64();
    let latency = LatencyStats::of(&lock(&progress.latencies));
    Ok(RelayReport {
        messages: bodies.len(),
        statuses,
        secs: (secs * 1e3).round() / 1e3,
        msgs_per_sec: if secs > 0.0 {
            (bodies.len() as f64 / secs * 1e3).round() / 1e3
        } else {
            0.0
        },
        latency,
    })
}

/// `total` outputs spread over `messages` as evenly as integers allow,
/// summing to `total`.
pub fn spread(total: usize, messages: usize) -> Vec<usize> {
    (0..messages)
        .map(|i| total * (i + 1) / messages - total * i / messages)
        .collect()
}

/// Properties of input message `i`: persistent, its index as message id.
fn input_properties(i: usize) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(i.to_string().as_str().into())
        .with_delivery_mode(2)
}

/// Publishes every input before the relay starts, with confirms.
async fn preload(channel: &Channel, input: &str, bodies: &[Vec<u8>], progress: &Progress) -> anyhow::Result<()> {
    for (chunk_start, chunk) in (0..).step_by(PRELOAD_WINDOW).zip(bodies.chunks(PRELOAD_WINDOW)) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for (offset, body) in chunk.iter().enumerate() {
            let i = chunk_start + offset;
            lock(&progress.published_at)[i] = Some(Instant::now());
            confirms.push(
                channel
                    .basic_publish(
                        "".into(),
                        input.into(),
                        BasicPublishOptions::default(),
                        body,
                        input_properties(i),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            ensure_acked(confirm.await?)?;
        }
    }
    Ok(())
}

/// Publishes input `i` at `i / rate` seconds from now.
async fn publish_at_rate(channel: Channel, input: String, bodies: Vec<Vec<u8>>, rate: f64, progress: Arc<Progress>) {
    let start = tokio::time::Instant::now();
    let mut confirms = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        lock(&progress.published_at)[i] = Some(Instant::now());
        match channel
            .basic_publish(
                "".into(),
                input.as_str().into(),
                BasicPublishOptions::default(),
                body,
                input_properties(i),
            )
            .await
        {
            Ok(confirm) => confirms.push(tokio::spawn(confirm)),
            Err(error) => {
                tracing::warn!(%error, "relay: an input publish failed");
                return;
            }
        }
    }
    for confirm in confirms {
        let _ = confirm.await;
    }
}

/// The relay consumer: for each delivery, `k` confirmed outputs, then the ack.
async fn start_relay(channel: &Channel, input: &str, output: &str, progress: Arc<Progress>) -> anyhow::Result<()> {
    let mut consumer = channel
        .basic_consume(
            input.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let channel = channel.clone();
    let output = output.to_string();
    tokio::spawn(async move {
        let status_body = Arc::new(vec![b's'; STATUS_BODY_BYTES]);
        while let Some(Ok(delivery)) = consumer.next().await {
            let channel = channel.clone();
            let output = output.clone();
            let status_body = status_body.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let Some(i) = message_index(&delivery.properties) else {
                    return;
                };
                let k = progress.expected.get(i).copied().unwrap_or(0);
                if let Err(error) = relay_one(&channel, &output, i, k, &status_body).await {
                    tracing::warn!(%error, message = i, "relay: an output publish failed");
                    return;
                }
                let _ = delivery.ack(BasicAckOptions::default()).await;
            });
        }
    });
    Ok(())
}

/// Publishes message `i`'s `k` outputs and waits for their confirms.
async fn relay_one(channel: &Channel, output: &str, i: usize, k: usize, body: &[u8]) -> anyhow::Result<()> {
    let mut confirms = Vec::with_capacity(k);
    for _ in 0..k {
        let properties = BasicProperties::default()
            .with_correlation_id(i.to_string().as_str().into())
            .with_delivery_mode(2);
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    output.into(),
                    BasicPublishOptions::default(),
                    body,
                    properties,
                )
                .await?,
        );
    }
    for confirm in confirms {
        ensure_acked(confirm.await?)?;
    }
    Ok(())
}

/// The "court" side: counts each message's outputs; a message with no
/// output is complete as soon as the relay acknowledged it, so such
/// messages are counted here at start.
async fn count_outputs(
    connection: &Connection,
    output: &str,
    progress: Arc<Progress>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let channel = connection.create_channel().await?;
    channel.basic_qos(256, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            output.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let _channel = channel;
        while let Some(Ok(delivery)) = consumer.next().await {
            let index = delivery
                .properties
                .correlation_id()
                .as_ref()
                .and_then(|c| c.as_str().parse::<usize>().ok());
            if let Some(i) = index
                && let Some(arrived) = progress.arrived.get(i)
                && arrived.fetch_add(1, Ordering::SeqCst) + 1 == progress.expected[i]
            {
                complete(&progress, i);
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
    }))
}

/// Records message `i` as complete now.
fn complete(progress: &Progress, i: usize) {
    let now = Instant::now();
    if let Some(Some(at)) = lock(&progress.published_at).get(i) {
        lock(&progress.latencies).push(now.saturating_duration_since(*at));
    }
    *lock(&progress.last_complete) = Some(now);
    progress.complete.fetch_add(1, Ordering::SeqCst);
    progress.done.notify_one();
}

async fn wait_complete(progress: &Progress) {
    let total = progress.expected.len();
    let silent = progress.expected.iter().filter(|k| **k == 0).count();
    progress.complete.fetch_add(silent, Ordering::SeqCst);
    while progress.complete.load(Ordering::SeqCst) < total {
        progress.done.notified().await;
    }
}

fn message_index(properties: &BasicProperties) -> Option<usize> {
    properties.message_id().as_ref()?.as_str().parse().ok()
}

fn ensure_acked(confirmation: Confirmation) -> anyhow::Result<()> {
    match confirmation {
        Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        Confirmation::Nack(_) => anyhow::bail!("RabbitMQ nacked a publish"),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spread sums to the total, and no message differs from another by
    /// more than one output.
    #[test]
    fn spread_is_even_and_exact() {
        let ks = spread(10, 3);
        assert_eq!(ks.iter().sum::<usize>(), 10);
        assert!(ks.iter().all(|k| *k == 3 || *k == 4), "{ks:?}");
        assert_eq!(spread(12, 3), [4, 4, 4]);
        assert_eq!(spread(0, 2), [0, 0]);
    }
}
