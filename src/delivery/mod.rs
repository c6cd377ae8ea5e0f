//! Delivery: taking accepted messages to their partners, once and in order.
//!
//! # Design note
//! Work waiting for a partner lives in the store's `deliveries` table, not in
//! RabbitMQ. One loop per partner:
//! 1. asks the store for due deliveries ([`Store::due_deliveries`]): at most
//!    one per order, and only when every earlier sequence of that order has
//!    been accepted by this partner — so each order's messages go out in
//!    sequence order, while different orders proceed in parallel;
//! 2. attempts them concurrently (bounded by the partner's connections),
//!    never two of the same order at once;
//! 3. records each attempt and outcome as soon as it is in — with any
//!    others finished at the same moment, in one transaction
//!    ([`Store::record_deliveries`]) — with the statuses and dead letters
//!    they produce, and hands those to the [`Relay`]. A slow order never
//!    holds back another's results.
//!
//! A crash between a send and its record means the send is repeated. That
//! is safe: the request carries the same MCN (CLETS) or Idempotency-Key,
//! and the partner answers a repeat with its first answer (ICD §5, §6).
//! Under one key the content is byte-identical too (DOJ answers a repeated
//! key with another body `422`, ICD §7): every request is a pure function
//! of stored data and never reads the clock, so a resend, however late, and
//! a plain replay send the same bytes. Where a request needs a time (the
//! LEA image link's expiry) it counts from the job's `key_created_at`, the
//! instant the content under the key was made.
//! Transient failures are retried with exponential backoff and jitter
//! ([`retry`]) until the maximum age has passed since the delivery's first
//! attempt and it had at least three attempts, then dead-lettered.
//!
//! The HTTP partners ([`doj`], [`lea`]) share one answer classification
//! ([`http`]) and report each attempt to a per-partner circuit breaker
//! ([`circuit`]); LEA bodies carry the signed image as a link
//! ([`image_link`]).

pub mod circuit;
pub mod clets;
pub mod doj;
pub mod http;
pub mod image_link;
pub mod lea;
pub mod partners;
pub mod retry;
#[cfg(test)]
mod testing;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::model::PartnerId;
use crate::status::Relay;
use crate::store::{DeliveryJob, DeliveryResult, PartnerSet, Store};
use circuit::{CircuitState, Circuits};

/// The partners one delivery loop serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serves {
    One(PartnerId),
    /// Every LEA agency (each job names its agency).
    AllLea,
}

/// One partner's adapter, as the delivery loop sees it.
pub trait PartnerAdapter: Send + Sync + 'static {
    fn partner(&self) -> PartnerId;
    /// The partners whose deliveries this adapter takes.
    fn serves(&self) -> Serves {
        Serves::One(self.partner())
    }
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
    /// The partners' circuit breakers, which the adapter records into.
    pub circuits: Arc<Circuits>,
}

impl<A: PartnerAdapter> DeliveryLoop<A> {
    /// Runs until `stop`; attempts in flight are finished and recorded
    /// first.
    ///
    /// Attempts run concurrently, up to `concurrency`, and each result is
    /// recorded as soon as it is in (with any others that finished at the
    /// same moment, in one transaction), so a slow order never holds back
    /// the others' results or the next work.
    pub async fn run(self, stop: CancellationToken) {
        let partner = self.adapter.partner();
        let cap = self.concurrency.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut flying: HashSet<i64> = HashSet::new();
        loop {
            if stop.is_cancelled() && in_flight.is_empty() {
                break;
            }
            if !stop.is_cancelled() && flying.len() < cap {
                let want = (cap + flying.len()).min(self.batch.max(1) as usize + flying.len()) as u32;
                let due = match self.wanted() {
                    Some(set) => self.store.due_deliveries_in(&set, Utc::now(), want).await,
                    None => Ok(Vec::new()),
                };
                match due {
                    Ok(jobs) => {
                        for job in jobs {
                            if flying.len() >= cap {
                                break;
                            }
                            if flying.contains(&job.id) || !self.circuits.allow(&job.partner, Instant::now()) {
                                continue;
                            }
                            if flying.insert(job.id) {
                                let adapter = self.adapter.clone();
                                in_flight.push(async move { adapter.attempt(job).await });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(partner = %partner, error = %e, "Could not read due deliveries; will try again.")
                    }
                }
            }
            let first = tokio::select! {
                Some(result) = in_flight.next(), if !in_flight.is_empty() => Some(result),
                _ = self.wake.notified() => None,
                _ = tokio::time::sleep(Duration::from_millis(250)) => None,
                _ = stop.cancelled(), if in_flight.is_empty() => None,
            };
            let Some(first) = first else { continue };
            crate::failpoint::hit(crate::failpoint::AFTER_PARTNER_SEND);
            let mut results = vec![first];
            while let Some(Some(more)) = in_flight.next().now_or_never() {
                results.push(more);
            }
            for r in &results {
                flying.remove(&r.delivery_id);
            }
            self.record(&partner, results).await;
        }
    }

    /// The partners to take work for now: not those whose circuit is open
    /// (`None`: nothing to ask for).
    fn wanted(&self) -> Option<PartnerSet> {
        let now = Instant::now();
        match self.adapter.serves() {
            Serves::One(partner) => {
                let blocked = matches!(
                    self.circuits.state(&partner, now),
                    CircuitState::Open { .. } | CircuitState::HalfOpen { probing: true }
                );
                (!blocked).then_some(PartnerSet::One(partner))
            }
            Serves::AllLea => {
                let except = self.circuits.open_partners(now).into_iter().filter_map(|p| match p {
                    PartnerId::Lea(ori) => Some(ori),
                    _ => None,
                });
                Some(PartnerSet::Lea {
                    except: except.collect(),
                })
            }
        }
    }

    /// Records results; if the store is failing they are dropped, which is
    /// safe: the deliveries are still pending and will be attempted again
    /// with the same MCN or Idempotency-Key.
    async fn record(&self, partner: &PartnerId, results: Vec<DeliveryResult>) {
        match self.store.record_deliveries(results).await {
            Ok(produced) => {
                let relay = self.relay.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay.send(&produced.statuses, &produced.dead_letters).await {
                        tracing::warn!(error = %e, "Partner statuses not confirmed yet; the outbox sweep will resend them.");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(partner = %partner, error = %e, "Could not record partner results; the deliveries will be attempted again.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
