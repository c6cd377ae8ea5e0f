//! One court's queues, kept on a channel of their own.
//!
//! # Design note: a bad court queue stays its own
//! Each court has its own task ([`keep`]) on its own channel. The task
//! declares the court's queues (`por.inbound.<ORI>` and
//! `por.responses.<ORI>`, with their bindings) and consumes the inbound one.
//! Such a failure can belong to the court alone:
//! - a declare is refused (`PRECONDITION_FAILED`: the queue exists with
//!   other arguments, say as a classic queue);
//! - RabbitMQ cancels the consumer (the queue was deleted);
//! - the server closes the channel.
//!
//! Then the task reports it ([`CourtQueueError`]: an ERROR that names the
//! queue, and `porter_court_queue_errors_total{court}`). It waits (backoff
//! from `reconnect_ms`, doubling to 30 s) and tries again, on a fresh
//! channel when the old one is closed. The other courts' tasks never notice.
//! The court resumes by itself once the queue can be declared again: a
//! deleted queue is simply declared again, and a wrong one after an operator
//! deletes it. While a court's inbound queue is missing, RabbitMQ returns
//! that court's publishes to it (`mandatory`, ICD §1), so nothing is taken
//! in silently.
//!
//! A failure while the connection itself is down is not the court's. The
//! task returns it, and the supervisor rebuilds the whole session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::{Channel, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::consumer::{InboundDelivery, consume};
use super::topology;
use crate::config::CourtConfig;

/// The longest wait between two tries of one court's queues.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// A court's queues that served this long before failing start their
/// backoff from the beginning again.
const STEADY: Duration = Duration::from_secs(60);

/// A court's queue could not be declared or consumed; the court waits and
/// its queues are tried again. Emitting it logs one ERROR and counts one
/// `porter_court_queue_errors_total{court}`.
pub struct CourtQueueError<'a> {
    pub court: &'a str,
    /// The queue that failed.
    pub queue: &'a str,
    pub error: &'a anyhow::Error,
    /// When the court's queues are tried again.
    pub retry_in: Duration,
}

impl CourtQueueError<'_> {
    pub fn emit(&self) {
        tracing::error!(
            court = %self.court,
            queue = %self.queue,
            error = %self.error,
            retry_in_ms = self.retry_in.as_millis() as u64,
            "Court queue cannot be consumed; the other courts go on, and this one is tried again."
        );
        metrics::counter!("porter_court_queue_errors_total", "court" => self.court.to_string()).increment(1);
    }
}

/// What one court's task needs.
pub struct CourtQueue {
    pub court: CourtConfig,
    /// `basic.qos` of the court's channel.
    pub prefetch: u16,
    /// The first wait after a failure; it doubles up to 30 s.
    pub retry_base: Duration,
    pub intake: mpsc::Sender<InboundDelivery>,
    /// Told (or dropped) once the court's queues have been declared for
    /// the first time, or that first declare failed: the broker reports
    /// itself connected only after every court got that far.
    pub first_declare: Option<oneshot::Sender<()>>,
}

/// Declares the court's queues and consumes its inbound queue, on a
/// channel of `conn` of its own, until `stop` fires; tries again after each
/// failure that is the court's own. Returns `Ok` once stopped; an error only when the connection
/// failed.
///
/// After `stop`, the channel stays open until `close`, so that deliveries
/// already handed to the intake can still be acknowledged on it.
pub async fn keep(
    conn: Arc<Connection>,
    mut queue: CourtQueue,
    stop: CancellationToken,
    close: CancellationToken,
) -> anyhow::Result<()> {
    let mut first_declare = queue.first_declare.take();
    let court = &queue.court;
    let mut delay = queue.retry_base;
    let mut channel: Option<Channel> = None;
    loop {
        let ch = match channel.take() {
            Some(ch) if ch.status().connected() => ch,
            _ => conn.create_channel().await?,
        };
        let started = Instant::now();
        let (failed_queue, error) = match serve(&ch, &queue, &mut first_declare, &stop, &close).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if !conn.status().connected() {
            anyhow::bail!("{failed_queue} failed with the connection: {error}");
        }
        if started.elapsed() > STEADY {
            delay = queue.retry_base;
        }
        CourtQueueError {
            court: &court.ori,
            queue: &failed_queue,
            error: &error,
            retry_in: delay,
        }
        .emit();
        // Kept, when still open, for the acknowledgements of deliveries the
        // intake holds.
        channel = Some(ch);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => {
                close.cancelled().await;
                return Ok(());
            }
        }
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// One try: declare the court's queues, then consume until stopped or
/// failed. A failure names the queue it concerns.
async fn serve(
    channel: &Channel,
    queue: &CourtQueue,
    first_declare: &mut Option<oneshot::Sender<()>>,
    stop: &CancellationToken,
    close: &CancellationToken,
) -> Result<(), (String, anyhow::Error)> {
    let court = &queue.court;
    let declared = topology::declare_court(channel, court).await;
    if let Some(told) = first_declare.take() {
        let _ = told.send(());
    }
    declared.map_err(|e| (e.queue.clone(), anyhow::Error::from(e)))?;
    consume(
        channel.clone(),
        court.ori.clone(),
        court.inbound_queue(),
        queue.prefetch,
        queue.intake.clone(),
        stop.clone(),
        close.clone(),
    )
    .await
    .map_err(|e| (court.inbound_queue(), e))
}
