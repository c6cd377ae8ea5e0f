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
//! 3. hands the statuses each delivery produced to the [`Relay`], all in
//!    flight together, and acknowledges each delivery once RabbitMQ has
//!    confirmed every one of *its own* statuses. The batch's dead letters
//!    were committed in the same transaction (the store's outbox is their
//!    record); they are published to `por.dead` beside the
//!    acknowledgements, which never wait for them.
//!
//! Step 3 runs in its own task, so the next batch is examined and committed
//! while the previous one's confirms are in flight.
//!
//! # Isolation (ICD §9: a stuck order never blocks another court)
//! - **A full `por.dead`** (bounded with `reject-publish`, ICD §1) holds
//!   back nothing here: an inbound delivery's acknowledgement waits for its
//!   statuses only. A dead letter RabbitMQ refuses stays unpublished in the
//!   outbox (WARN here), and the relay's sweep sends it with backoff once
//!   `por.dead` has room (see [`crate::status`]).
//! - **A status that is not confirmed** (nacked, returned, the channel
//!   failed) holds back only the delivery it belongs to: that delivery is
//!   returned to its queue (nack with requeue, after [`REQUEUE_DELAY`] so a
//!   court whose responses cannot be routed does not spin), and every other
//!   delivery of the batch whose statuses were confirmed is acknowledged.
//!   The redelivery is a duplicate to the store, which sends its statuses
//!   again (ICD §4–§5: statuses are at-least-once); they were durable all
//!   along, and the relay's sweep re-sends them too.
//! - **The store failing** is one of two things ([`StoreError::is_outage`]).
//!   An *outage* (unreachable, restarting, busy, anything not known to be
//!   the data's fault) holds the batch and retries it with backoff for as
//!   long as it lasts; the deliveries stay unacknowledged and are not
//!   requeued, and nothing becomes a dead letter, since no court could be
//!   served anyway. A failure the *data* causes (a constraint, a value the
//!   database cannot hold, corrupt stored data) splits the batch: each item
//!   is committed alone, so the others go through at once, and an item that
//!   still fails is tried up to [`STORE_TRIES`] times in all (its batch's
//!   try included), [`ITEM_BACKOFF`] apart, doubling. Then it becomes a dead
//!   letter at stage `store` ([`Store::intake_unstorable`]): `REJECTED` to
//!   its court (`INVALID_FORMAT` on field `message`: the ICD has no code for
//!   an internal error), the original bytes on `por.dead`, and its delivery
//!   acknowledged once that status is confirmed. An outage met meanwhile does
//!   not count as a try. If even the dead letter cannot be stored, the
//!   delivery is returned to its queue (ERROR: an operator must look; the
//!   queue's delivery limit, when set by policy, ends the loop on
//!   `por.dead`). So an unstorable item holds the intake for well under a
//!   second, once, and never for good.
//!
//! Events: `porter_intake_store_errors_total` (outage, ERROR),
//! `porter_intake_batch_split_total` (WARN), `porter_intake_item_retries_total`
//! (WARN), `porter_intake_unstorable_total` (dead letter made, ERROR),
//! `porter_intake_unstorable_lost_total` (could not even be dead-lettered,
//! ERROR), `porter_intake_requeued_total` (statuses not confirmed, WARN),
//! `porter_intake_ack_lost_total` (WARN).

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
use crate::store::{IntakeItem, IntakeOutcome, Store, StoreError, StoredDeadLetter, StoredStatus};
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

/// How many times an item the store refuses for a reason of its data is
/// tried, in all, before it becomes a dead letter at stage `store`.
pub const STORE_TRIES: u32 = 3;

/// The wait before an unstorable item's second try (doubled for the next).
const ITEM_BACKOFF: Duration = Duration::from_millis(100);

/// The first wait while the store is out (doubled each time, up to 10 s).
const OUTAGE_BACKOFF: Duration = Duration::from_millis(100);

/// How long a delivery whose statuses were not confirmed waits before it is
/// returned to its queue, so that a court whose responses cannot be routed
/// costs a redelivery a second, not a busy loop. Only that delivery waits.
pub const REQUEUE_DELAY: Duration = Duration::from_secs(1);

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

    /// Commits a batch: in one transaction, or item by item when the data
    /// of some item makes it fail (see the module note). One entry per
    /// item, in order; `None` for an item that could not be stored even as
    /// a dead letter. Returns `None` only when stopped first; those
    /// deliveries are redelivered at the next start.
    async fn commit(&self, items: Vec<IntakeItem>, stop: &CancellationToken) -> Option<Vec<Option<IntakeOutcome>>> {
        if items.len() == 1 {
            let item = items.into_iter().next()?;
            return Some(vec![self.commit_one(item, 0, stop).await?]);
        }
        match self.store_waiting(&items, stop).await? {
            Ok(outcomes) => return Some(outcomes.into_iter().map(Some).collect()),
            Err(_) => {
                metrics::counter!("porter_intake_batch_split_total").increment(1);
                tracing::warn!(
                    batch = items.len(),
                    "An item of the batch could not be stored; storing them one at a time."
                );
            }
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            outcomes.push(self.commit_one(item, 1, stop).await?);
        }
        Some(outcomes)
    }

    /// Commits one item alone, `tried` tries having failed already; after
    /// [`STORE_TRIES`] in all, records it as a dead letter instead. The
    /// inner `None`: not even that could be stored.
    async fn commit_one(
        &self,
        item: IntakeItem,
        tried: u32,
        stop: &CancellationToken,
    ) -> Option<Option<IntakeOutcome>> {
        let mut tried = tried;
        let mut delay = ITEM_BACKOFF;
        while tried < STORE_TRIES {
            if tried > 0 {
                metrics::counter!("porter_intake_item_retries_total").increment(1);
                tracing::warn!(court = %item.inbound.court_ori, message_id = ?item.inbound.message_id, tried, "An item could not be stored; trying it again alone.");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return None,
                }
                delay *= 2;
            }
            match self.store_waiting(std::slice::from_ref(&item), stop).await? {
                Ok(mut outcomes) => return Some(outcomes.pop()),
                Err(_) => tried += 1,
            }
        }
        Some(self.dead_letter(item, stop).await?)
    }

    /// Records an item the store keeps refusing as a dead letter at stage
    /// `store`. The inner `None`: the store refused that too.
    async fn dead_letter(&self, item: IntakeItem, stop: &CancellationToken) -> Option<Option<IntakeOutcome>> {
        let (court, message_id) = (item.inbound.court_ori.clone(), item.inbound.message_id.clone());
        let mut delay = OUTAGE_BACKOFF;
        loop {
            match self.store.intake_unstorable(item.clone()).await {
                Ok(outcome) => {
                    metrics::counter!("porter_intake_unstorable_total").increment(1);
                    tracing::error!(court = %court, message_id = ?message_id, tries = STORE_TRIES, "An item could not be stored; it is a dead letter at stage store and its court was answered REJECTED.");
                    return Some(Some(outcome));
                }
                Err(e) if e.is_outage() => self.store_outage(&e, 1, &mut delay, stop).await?,
                Err(e) => {
                    metrics::counter!("porter_intake_unstorable_lost_total").increment(1);
                    tracing::error!(court = %court, message_id = ?message_id, error = %e, "An item could not be stored, nor its dead letter; returning it to its queue.");
                    return Some(None);
                }
            }
        }
    }

    /// One store call for `items`, repeated with backoff for as long as the
    /// store is out. `Err`: it failed for a reason of the data.
    async fn store_waiting(
        &self,
        items: &[IntakeItem],
        stop: &CancellationToken,
    ) -> Option<Result<Vec<IntakeOutcome>, StoreError>> {
        let mut delay = OUTAGE_BACKOFF;
        loop {
            match self.store.intake(items.to_vec()).await {
                Ok(outcomes) => return Some(Ok(outcomes)),
                Err(e) if e.is_outage() => self.store_outage(&e, items.len(), &mut delay, stop).await?,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Reports an outage and waits out `delay` (then doubled, up to 10 s).
    /// `None` when stopped first.
    async fn store_outage(
        &self,
        e: &StoreError,
        batch: usize,
        delay: &mut Duration,
        stop: &CancellationToken,
    ) -> Option<()> {
        metrics::counter!("porter_intake_store_errors_total").increment(1);
        tracing::error!(error = %e, batch, "Store unavailable; holding the batch and retrying.");
        tokio::select! {
            _ = tokio::time::sleep(*delay) => {}
            _ = stop.cancelled() => return None,
        }
        *delay = (*delay * 2).min(Duration::from_secs(10));
        Some(())
    }
}

/// Publishes what each delivery of a committed batch produced: acknowledges
/// each delivery whose statuses RabbitMQ confirmed and returns the others
/// to their queues, while the batch's dead letters go to `por.dead` beside
/// that, waited on by no acknowledgement (they are durable in the outbox,
/// and the sweep sends any that `por.dead` refuses).
async fn confirm_then_ack(relay: Relay, batch: Vec<InboundDelivery>, outcomes: Vec<Option<IntakeOutcome>>) {
    let statuses: Vec<Vec<StoredStatus>> = outcomes.iter().map(statuses).collect();
    let dead: Vec<StoredDeadLetter> = outcomes.iter().flat_map(dead_letters).cloned().collect();
    let acknowledged = async {
        let results = relay.send_statuses_each(&statuses).await;
        let mut unconfirmed = Vec::new();
        for ((d, outcome), result) in batch.iter().zip(&outcomes).zip(results) {
            match (outcome, result) {
                (Some(_), Ok(())) => ack(d).await,
                (None, _) => unconfirmed.push(d),
                (Some(_), Err(e)) => {
                    tracing::warn!(court = %d.court_ori, error = %e, "Statuses not confirmed; returning the delivery to its queue.");
                    unconfirmed.push(d);
                }
            }
        }
        if unconfirmed.is_empty() {
            return;
        }
        metrics::counter!("porter_intake_requeued_total").increment(unconfirmed.len() as u64);
        tokio::time::sleep(REQUEUE_DELAY).await;
        for d in unconfirmed {
            requeue(d).await;
        }
    };
    let dead_lettered = async {
        if let Err(e) = relay.send_dead_letters(&dead).await {
            let ids: Vec<i64> = dead.iter().map(|d| d.id).collect();
            tracing::warn!(dead_letters = ?ids, error = %e, "Dead letters not confirmed on por.dead; they stay in the store and the outbox sweep sends them later.");
        }
    };
    tokio::join!(acknowledged, dead_lettered);
}

/// The statuses one outcome is to publish.
fn statuses(outcome: &Option<IntakeOutcome>) -> Vec<StoredStatus> {
    match outcome {
        Some(IntakeOutcome::Stored { statuses, .. }) | Some(IntakeOutcome::Duplicate { statuses }) => statuses.clone(),
        Some(IntakeOutcome::Conflict { status }) => vec![status.clone()],
        None => Vec::new(),
    }
}

/// The dead letters one outcome made (a duplicate or a conflict makes none).
fn dead_letters(outcome: &Option<IntakeOutcome>) -> &[StoredDeadLetter] {
    match outcome {
        Some(IntakeOutcome::Stored { dead_letters, .. }) => dead_letters,
        _ => &[],
    }
}

async fn ack(d: &InboundDelivery) {
    match d.delivery.acker.ack(BasicAckOptions::default()).await {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            metrics::counter!("porter_intake_ack_lost_total").increment(1);
            tracing::warn!(court = %d.court_ori, "Ack not delivered (channel gone); the message will come again and be answered as a duplicate.");
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
