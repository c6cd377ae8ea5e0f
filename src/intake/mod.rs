//! Intake: from a court's queue to a durable decision.
//!
//! # Design note
//! The intake takes deliveries from every court consumer, in batches of up
//! to `intake.batch_size`. For each batch it:
//! 1. examines every delivery ([`examine`]): properties, parse, validate,
//!    route, and a trial translation for each partner, giving a verdict;
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::CourtConfig;
use crate::status::Relay;
use crate::store::{IntakeOutcome, Store};
use crate::transport::consumer::InboundDelivery;

pub use examine::{Formats, InboundProperties, examine};

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

impl Intake {
    /// Runs until `stop` fires, then waits for the acknowledgements of
    /// batches already committed.
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
            self.process(batch, &mut acks).await;
            while acks.try_join_next().is_some() {}
        }
        while acks.join_next().await.is_some() {}
    }

    async fn process(&self, batch: Vec<InboundDelivery>, acks: &mut JoinSet<()>) {
        let formats = self.formats.clone();
        let courts = self.courts.clone();
        let examined = tokio::task::spawn_blocking(move || {
            let items = batch
                .iter()
                .map(|d| {
                    let props = InboundProperties::from_amqp(&d.delivery.properties);
                    examine(&courts[&d.court_ori], &props, &d.delivery.data, &formats)
                })
                .collect::<Vec<_>>();
            (batch, items)
        })
        .await;
        let (batch, items) = match examined {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "Intake examination panicked; deliveries will be redelivered.");
                return;
            }
        };
        let size = batch.len();
        match self.store.intake(items).await {
            Ok(outcomes) => {
                metrics::counter!("porter_intake_committed_total").increment(size as u64);
                self.deliveries_due.notify_waiters();
                let relay = self.relay.clone();
                acks.spawn(confirm_then_ack(relay, batch, outcomes));
            }
            Err(e) => {
                tracing::error!(error = %e, batch = size, "Store commit failed; returning deliveries to their queues.");
                metrics::counter!("porter_intake_store_errors_total").increment(1);
                for d in batch {
                    requeue(&d).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Publishes what a committed batch produced, then acknowledges it.
async fn confirm_then_ack(relay: Relay, batch: Vec<InboundDelivery>, outcomes: Vec<IntakeOutcome>) {
    let mut statuses = Vec::new();
    let mut dead = Vec::new();
    for outcome in outcomes {
        match outcome {
            IntakeOutcome::Stored { statuses: s, dead_letter } => {
                statuses.extend(s);
                dead.extend(dead_letter);
            }
            IntakeOutcome::Duplicate { statuses: s } => statuses.extend(s),
            IntakeOutcome::Conflict { status } => statuses.push(status),
        }
    }
    match relay.send(&statuses, &dead).await {
        Ok(()) => {
            for d in &batch {
                if let Err(e) = d.delivery.acker.ack(BasicAckOptions::default()).await {
                    tracing::warn!(court = %d.court_ori, error = %e, "Ack failed; the delivery will come again and be recognised as a duplicate.");
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
    let options = BasicNackOptions { requeue: true, ..Default::default() };
    if let Err(e) = d.delivery.acker.nack(options).await {
        tracing::warn!(court = %d.court_ori, error = %e, "Nack failed; RabbitMQ will redeliver when the channel closes.");
    }
}
