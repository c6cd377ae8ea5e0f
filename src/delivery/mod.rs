//! Delivery: taking accepted messages to their partners, once and in order.
//!
//! # Design note
//! Work waiting for a partner lives in the store's `deliveries` table, not in
//! RabbitMQ. One loop per partner:
//! 1. asks the store for due deliveries ([`Store::due_deliveries`]): at most
//!    one per order, and only when every earlier sequence of that order has
//!    been accepted by this partner — so each order's messages go out in
//!    sequence order, while different orders proceed in parallel;
//! 2. attempts them concurrently (bounded by the partner's connections);
//! 3. records every attempt and outcome in one transaction
//!    ([`Store::record_deliveries`]), with the statuses and dead letters
//!    they produce, and hands those to the [`Relay`].
//!
//! A crash between a send and its record means the send is repeated. That
//! is safe: the request carries the same MCN (CLETS) or Idempotency-Key,
//! and the partner answers a repeat with its first answer (ICD §5, §6).
//! Transient failures are retried with exponential backoff and jitter
//! ([`retry`]) until the message's maximum age, then dead-lettered.

pub mod clets;
pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::model::PartnerId;
use crate::status::Relay;
use crate::store::{DeliveryJob, DeliveryResult, Store};

/// One partner's adapter, as the delivery loop sees it.
pub trait PartnerAdapter: Send + Sync + 'static {
    fn partner(&self) -> PartnerId;
    /// Attempts one delivery and classifies the answer.
    fn attempt(&self, job: DeliveryJob) -> impl Future<Output = DeliveryResult> + Send;
}

/// The delivery loop for one partner.
pub struct DeliveryLoop<A> {
    pub store: Arc<dyn Store>,
    pub adapter: Arc<A>,
    pub relay: Relay,
    /// Deliveries taken per round.
    pub batch: u32,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Woken when new work is committed.
    pub wake: Arc<Notify>,
}

impl<A: PartnerAdapter> DeliveryLoop<A> {
    /// Runs rounds until `stop`; a round in progress is finished first.
    pub async fn run(self, stop: CancellationToken) {
        let partner = self.adapter.partner();
        while !stop.is_cancelled() {
            let worked = match self.round(&partner).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(partner = %partner, error = %e, "Delivery round failed; will try again.");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }

    async fn round(&self, partner: &PartnerId) -> anyhow::Result<usize> {
        let jobs = self.store.due_deliveries(partner, Utc::now(), self.batch).await?;
        let n = jobs.len();
        if n == 0 {
            return Ok(0);
        }
        let results: Vec<DeliveryResult> = futures::stream::iter(jobs)
            .map(|job| self.adapter.attempt(job))
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let produced = self.store.record_deliveries(results).await?;
        let relay = self.relay.clone();
        tokio::spawn(async move {
            if let Err(e) = relay.send(&produced.statuses, &produced.dead_letters).await {
                tracing::warn!(error = %e, "Partner statuses not confirmed yet; the outbox sweep will resend them.");
            }
        });
        Ok(n)
    }
}
