//! Intake: from a court's queue to a durable decision.
//!
//! # Design note
//! The intake takes deliveries from every court consumer, in batches of up
//! to `intake.batch_size`. For each batch it:
//! 1. examines every delivery ([`examine_batch`]): properties, parse,
//!    validate, route, and a trial translation for each partner, giving a
//!    verdict. The batch goes through these stage by stage (every delivery
//!    read, then every one validated, then every one translated), which
//!    keeps each stage's code in the CPU's caches;
//! 2. commits the whole batch to the store in one transaction (group
//!    commit), where deduplication and the sequence rules are applied;
//! 3. hands the statuses and dead letters the batch produced to the
//!    [`Relay`], and only when RabbitMQ has confirmed every one of them
//!    acknowledges the batch's deliveries.
//!
//! Step 3 runs in its own task, so the next batch is examined and committed
//! while the previous one's confirms are in flight. If the store fails, the
//! deliveries are returned to the queue (nack with requeue); if a publish
//! fails, likewise: the redelivery is a duplicate to the store, which
//! re-sends the statuses.

pub mod examine;
pub mod gap_timeout;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::CourtConfig;
use crate::status::Relay;
use crate::store::{IntakeItem, IntakeOutcome, Store};
use crate::transport::consumer::InboundDelivery;

pub use examine::{Delivered, Formats, InboundProperties, examine, examine_batch, receive};

/// The intake loop's parts.
pub struct Intake {
    pub store: Arc<dyn Store>,
    pub formats: Arc<Formats>,
    pub courts: Arc<HashMap<String, CourtConfig>>,
    pub relay: Relay,
    pub batch_size: usize,
    /// Woken after each commit, so partner deliveries start at once.
    pub deliveries_due: Arc<Notify>,
}

/// How long shutdown waits for committed batches' confirms before leaving
/// them to redelivery (RabbitMQ may be down).
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl Intake {
    /// Runs until `stop` fires, then waits (bounded) for the
    /// acknowledgements of batches already committed.
    pub async fn run(self, mut rx: mpsc::Receiver<InboundDelivery>, stop: CancellationToken) {
        let mut acks = JoinSet::new();
        loop {
            let first = tokio::select! {
                d = rx.recv() => d,
                _ = stop.cancelled() => None,
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            while batch.len() < self.batch_size {
                match rx.try_recv() {
                    Ok(d) => batch.push(d),
                    Err(_) => break,
                }
            }
            self.process(batch, &mut acks, &stop).await;
            while acks.try_join_next().is_some() {}
        }
        let drained = tokio::time::timeout(DRAIN_LIMIT, async { while acks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                pending = acks.len(),
                "Statuses not confirmed before shutdown; their messages will be redelivered and answered again."
            );
            acks.abort_all();
        }
    }

    async fn process(&self, batch: Vec<InboundDelivery>, acks: &mut JoinSet<()>, stop: &CancellationToken) {
        let formats = self.formats.clone();
        let courts = self.courts.clone();
        let examined = tokio::task::spawn_blocking(move || {
            let delivered: Vec<Delivered<'_>> = batch
                .iter()
                .map(|d| Delivered {
                    court: &courts[&d.court_ori],
                    props: InboundProperties::from_amqp(&d.delivery.properties),
                    body: &d.delivery.data,
                })
                .collect();
            let items = examine_batch(&delivered, &formats);
            drop(delivered);
            (batch, items)
        })
        .await;
        let Ok((batch, items)) = examined else {
            // examine_batch catches panics; this is the blocking pool failing.
            tracing::error!("Intake examination could not run; the batch will be redelivered.");
            return;
        };
        let Some(outcomes) = self.commit(items, stop).await else {
            return;
        };
        metrics::counter!("porter_intake_committed_total").increment(batch.len() as u64);
        crate::failpoint::hit(crate::failpoint::AFTER_STORE_COMMIT);
        self.deliveries_due.notify_waiters();
        acks.spawn(confirm_then_ack(self.relay.clone(), batch, outcomes));
    }

    /// Commits a batch, retrying with backoff while the store is failing
    /// (the deliveries stay unacknowledged and are not requeued, so they do
    /// not count against RabbitMQ's delivery limit). After three failures a
    /// batch is committed one item at a time, so a single item the store
    /// cannot take does not hold back the others. Returns `None` only when
    /// stopped first; those deliveries are redelivered at the next start.
    async fn commit(&self, items: Vec<IntakeItem>, stop: &CancellationToken) -> Option<Vec<IntakeOutcome>> {
        let mut delay = Duration::from_millis(100);
        for attempt in 1.. {
            if attempt > 3 && items.len() > 1 {
                let mut outcomes = Vec::with_capacity(items.len());
                for item in &items {
                    outcomes.extend(Box::pin(self.commit(vec![item.clone()], stop)).await?);
                }
                return Some(outcomes);
            }
            match self.store.intake(items.clone()).await {
                Ok(outcomes) => return Some(outcomes),
                Err(e) => {
                    tracing::error!(error = %e, batch = items.len(), attempt, "Store commit failed; holding the batch and retrying.");
                    metrics::counter!("porter_intake_store_errors_total").increment(1);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return None,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        None
    }
}

/// Publishes what a committed batch produced, then acknowledges it.
async fn confirm_then_ack(relay: Relay, batch: Vec<InboundDelivery>, outcomes: Vec<IntakeOutcome>) {
    let mut statuses = Vec::new();
    let mut dead = Vec::new();
    for outcome in outcomes {
        match outcome {
            IntakeOutcome::Stored {
                statuses: s,
                dead_letters,
            } => {
                statuses.extend(s);
                dead.extend(dead_letters);
            }
            IntakeOutcome::Duplicate { statuses: s } => statuses.extend(s),
            IntakeOutcome::Conflict { status } => statuses.push(status),
        }
    }
    match relay.send(&statuses, &dead).await {
        Ok(()) => {
            for d in &batch {
                match d.delivery.acker.ack(BasicAckOptions::default()).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => {
                        metrics::counter!("porter_intake_ack_lost_total").increment(1);
                        tracing::warn!(court = %d.court_ori, "Ack not delivered (channel gone); the message will come again and be answered as a duplicate.");
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "Statuses not confirmed; returning deliveries to their queues.");
            for d in &batch {
                requeue(d).await;
            }
        }
    }
}

async fn requeue(d: &InboundDelivery) {
    let options = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    if let Err(e) = d.delivery.acker.nack(options).await {
        tracing::warn!(court = %d.court_ori, error = %e, "Nack failed; RabbitMQ will redeliver when the channel closes.");
    }
}
