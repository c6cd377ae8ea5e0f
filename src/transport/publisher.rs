//! Publishing with `mandatory=true` and a window of publisher confirms.
//!
//! Callers hand messages to a [`Publisher`] and await their confirmation;
//! they never talk to a channel. One pump task per connection owns the
//! channel: it keeps up to `window` publishes unconfirmed at once and
//! resolves each caller's future when RabbitMQ confirms it. A message that
//! comes back (`basic.return`: no queue for its routing key) or is nacked is
//! a failure for its caller, never a silent success.
//!
//! # Design note: a new channel after a nack
//! RabbitMQ 3.10 can refuse every publish of a channel to a quorum queue
//! for as long as the channel lives: when the channel's first publish to
//! that queue comes while the queue has no leader (its leader's node has
//! just died and the survivors are electing a new one), the channel keeps
//! the dead leader and nacks every later publish to that queue, although
//! the queue has a new leader within a second and a new channel is
//! accepted (seen in `tests/rabbitmq_cluster.rs`: the broker reconnects to
//! another node at once, during the election, and its statuses were
//! nacked for good). So [`Publisher::pump_renewing`], which the supervisor
//! runs, moves to a new channel of the same connection after a nack: it
//! stops taking new messages, lets the confirms in flight settle, closes
//! the old channel and opens a new one, at most once per
//! [`RENEW_EVERY`]. The nacked message is still a failure for its caller,
//! which sends it again as it would after any nack. A nack for another
//! reason (a queue that refuses publishes by policy) costs a new channel
//! at most once per [`RENEW_EVERY`] and nothing else.
//!
//! Depth is measured as a pair of counters, `porter_amqp_published_total`
//! and `porter_amqp_confirmed_total` (their difference is what is in
//! flight). For operators and tests the pump also keeps the gauge
//! `porter_amqp_publish_unconfirmed` and its high-water mark
//! `porter_amqp_publish_unconfirmed_max`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a publish may wait for RabbitMQ's confirm before the channel is
/// given up on.
pub const CONFIRM_LIMIT: Duration = Duration::from_secs(30);

/// The least time between two moves of the pump to a new channel after a
/// nack (see the design note above).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

/// Why a publish was not confirmed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("message returned by RabbitMQ ({code} {text}): no queue for routing key {routing_key:?}")]
    Returned {
        code: u16,
        text: String,
        routing_key: String,
    },
    #[error("message nacked by RabbitMQ")]
    Nacked,
    #[error("channel failed: {0}")]
    Channel(String),
    #[error("publisher is not running")]
    Closed,
}

struct Request {
    message: Outgoing,
    done: oneshot::Sender<Result<(), PublishError>>,
}

/// Counters the pump keeps, readable without a metrics recorder.
#[derive(Debug, Default)]
pub struct PublishStats {
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

/// A cloneable handle for publishing with confirms.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Request>,
    rx: Arc<Mutex<mpsc::Receiver<Request>>>,
    stats: Arc<PublishStats>,
}

impl Publisher {
    /// A publisher whose queue holds up to `capacity` waiting messages.
    pub fn new(capacity: usize) -> Publisher {
        let (tx, rx) = mpsc::channel(capacity);
        Publisher {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> &PublishStats {
        &self.stats
    }

    /// Publishes every message and resolves once all are confirmed, or with
    /// the first failure. The messages are all in flight together.
    pub async fn publish_all(&self, messages: Vec<Outgoing>) -> Result<(), PublishError> {
        let mut results = self.publish_each(vec![messages]).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// Publishes every group's messages, all in flight together, and
    /// resolves with one result per group: `Ok` once all its messages are
    /// confirmed, else its first failure. One group's failure is its own.
    pub async fn publish_each(&self, groups: Vec<Vec<Outgoing>>) -> Vec<Result<(), PublishError>> {
        let mut waits = Vec::with_capacity(groups.len());
        for group in groups {
            let mut group_waits = Vec::with_capacity(group.len());
            for message in group {
                group_waits.push(self.submit(message).await);
            }
            waits.push(group_waits);
        }
        let mut results = Vec::with_capacity(waits.len());
        for group_waits in waits {
            let mut first_error = None;
            for wait in group_waits {
                let result = wait.await.unwrap_or(Err(PublishError::Closed));
                if let (Err(e), None) = (result, &first_error) {
                    first_error = Some(e);
                }
            }
            results.push(first_error.map_or(Ok(()), Err));
        }
        results
    }

    /// Hands one message to the pump; the receiver gives its confirmation
    /// (a closed receiver means the pump is gone). The keyed failpoint
    /// [`PUBLISH_REFUSED`](crate::failpoint::PUBLISH_REFUSED) answers it as
    /// nacked without sending it.
    async fn submit(&self, message: Outgoing) -> oneshot::Receiver<Result<(), PublishError>> {
        let (done, wait) = oneshot::channel();
        if crate::failpoint::fails(crate::failpoint::PUBLISH_REFUSED, &message.routing_key) {
            let _ = done.send(Err(PublishError::Nacked));
            return wait;
        }
        // On failure the request, and with it `done`, is dropped: `wait`
        // then resolves as closed.
        let _ = self.tx.send(Request { message, done }).await;
        wait
    }

    /// Runs the pump on `channel` until `stop` fires with nothing in flight,
    /// or the channel fails.
    ///
    /// A confirm that has not come within [`CONFIRM_LIMIT`] fails the
    /// channel: with auto-recovery a confirm can be lost for good, and its
    /// caller (and the inbound deliveries waiting on it) would wait forever.
    pub async fn pump(&self, channel: Channel, window: usize, stop: CancellationToken) -> Result<(), PublishError> {
        self.run_pump(channel, None, window, stop).await
    }

    /// Like [`Publisher::pump`], and after a nack moves to a new channel of
    /// `connection` (see the design note on channels after a nack).
    pub async fn pump_renewing(
        &self,
        channel: Channel,
        connection: Arc<Connection>,
        window: usize,
        stop: CancellationToken,
    ) -> Result<(), PublishError> {
        self.run_pump(channel, Some(connection), window, stop).await
    }

    async fn run_pump(
        &self,
        mut channel: Channel,
        connection: Option<Arc<Connection>>,
        window: usize,
        stop: CancellationToken,
    ) -> Result<(), PublishError> {
        let failed = |e: lapin::Error| PublishError::Channel(e.to_string());
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(failed)?;
        let mut rx = self.rx.lock().await;
        let mut in_flight = FuturesUnordered::new();
        let mut opened = Instant::now();
        // When the channel is to be replaced after a nack; from then on no
        // new message goes out until it has been.
        let mut renew_at: Option<tokio::time::Instant> = None;
        let mut draining = false;
        loop {
            tokio::select! {
                biased;
                Some((result, done)) = in_flight.next(), if !in_flight.is_empty() => {
                    let Ok(result) = result else {
                        let e = PublishError::Channel(format!("no confirm within {} s", CONFIRM_LIMIT.as_secs()));
                        let _ = <oneshot::Sender<_>>::send(done, Err(e.clone()));
                        self.set_in_flight(0);
                        return Err(e);
                    };
                    metrics::counter!("porter_amqp_confirmed_total").increment(1);
                    let nacked = matches!(result, Ok((Confirmation::Nack(_), _)));
                    let _ = <oneshot::Sender<_>>::send(done, confirmation(result));
                    self.set_in_flight(in_flight.len());
                    if nacked && connection.is_some() && renew_at.is_none() {
                        renew_at = Some((opened + RENEW_EVERY).max(Instant::now()).into());
                    }
                }
                _ = tokio::time::sleep_until(renew_at.unwrap_or_else(tokio::time::Instant::now)),
                    if renew_at.is_some() && !draining => {
                    draining = true;
                }
                _ = std::future::ready(()), if draining && in_flight.is_empty() && !stop.is_cancelled() => {
                    if let Some(connection) = &connection {
                        let _ = tokio::time::timeout(Duration::from_secs(5), channel.close(200, "OK".into())).await;
                        channel = connection.create_channel().await.map_err(failed)?;
                        channel
                            .confirm_select(ConfirmSelectOptions::default())
                            .await
                            .map_err(failed)?;
                        tracing::info!("Publishing on a new channel after a nack.");
                    }
                    opened = Instant::now();
                    renew_at = None;
                    draining = false;
                }
                request = rx.recv(), if in_flight.len() < window && !stop.is_cancelled() && !draining => {
                    let Some(Request { message, done }) = request else { break };
                    let routing_key = message.routing_key.clone();
                    let options = BasicPublishOptions { mandatory: true, ..Default::default() };
                    let published = channel
                        .basic_publish(
                            message.exchange.as_str().into(),
                            message.routing_key.as_str().into(),
                            options,
                            &message.body,
                            message.properties,
                        )
                        .await;
                    match published {
                        Ok(confirm) => {
                            metrics::counter!("porter_amqp_published_total").increment(1);
                            crate::failpoint::hit(crate::failpoint::AFTER_STATUS_PUBLISH);
                            let confirmed = tokio::time::timeout(CONFIRM_LIMIT, confirm);
                            in_flight.push(async move { (confirmed.await.map(|r| r.map(|c| (c, routing_key))), done) });
                            self.set_in_flight(in_flight.len());
                        }
                        Err(e) => {
                            let e = failed(e);
                            let _ = done.send(Err(e.clone()));
                            self.set_in_flight(0);
                            return Err(e);
                        }
                    }
                }
                _ = stop.cancelled(), if in_flight.is_empty() => break,
            }
        }
        self.set_in_flight(0);
        Ok(())
    }

    fn set_in_flight(&self, n: usize) {
        self.stats.in_flight.store(n, Ordering::Relaxed);
        let max = self.stats.max_in_flight.fetch_max(n, Ordering::Relaxed).max(n);
        metrics::gauge!("porter_amqp_publish_unconfirmed").set(n as f64);
        metrics::gauge!("porter_amqp_publish_unconfirmed_max").set(max as f64);
    }
}

fn confirmation(result: lapin::Result<(Confirmation, String)>) -> Result<(), PublishError> {
    match result {
        Ok((Confirmation::Ack(None), _)) => Ok(()),
        Ok((Confirmation::NotRequested, _)) => Err(PublishError::Channel(
            "publisher confirms are not enabled on the channel".into(),
        )),
        Ok((Confirmation::Ack(Some(returned)), routing_key)) => Err(PublishError::Returned {
            code: returned.reply_code,
            text: returned.reply_text.to_string(),
            routing_key,
        }),
        Ok((Confirmation::Nack(_), _)) => Err(PublishError::Nacked),
        Err(e) => Err(PublishError::Channel(e.to_string())),
    }
}
