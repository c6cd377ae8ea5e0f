//! Statuses back to courts, and dead letters to `por.dead`.
//!
//! # Design note
//! Both are rows in the store first (outboxes), written in the same
//! transaction as what caused them. The [`Relay`] turns rows into AMQP
//! messages, publishes them with confirms, and marks each row once *its own*
//! publish is confirmed: a row is never held back, nor re-sent, because
//! another one failed. Each status keeps its own stable `message_id`
//! (`por-status-<id>`), each dead letter `por-dl-<id>`, across re-sends.
//!
//! - **Statuses and dead letters go out separately.** `por.dead` is bounded
//!   by policy with `overflow = reject-publish` (ICD §1), so once it is full
//!   RabbitMQ refuses (nacks) every dead letter. That refusal touches dead
//!   letters only: statuses are published, confirmed and marked on their
//!   own, and the intake acknowledges an inbound delivery once *its
//!   statuses* are confirmed ([`Relay::send_statuses_each`]). Its dead
//!   letters are already durable in the outbox, so they are published
//!   beside the acknowledgement, never before it ([`Relay::send_dead_letters`]).
//! - **The sweep** ([`Relay::sweep`]) re-publishes rows left unconfirmed by
//!   a crash, an outage or a refusal, once they are [`SWEEP_AGE`] old
//!   (younger ones are still on their first way out). It reads each outbox
//!   page by page by id ([`Store::pending_statuses_after`]), so every
//!   unpublished row is reached, however many rows before it keep failing.
//!   Statuses are swept every [`SWEEP_INTERVAL`]; a status is published
//!   once when things work, and again only if it was not confirmed.
//! - **Dead letters back off.** While `por.dead` refuses, the sweep tries
//!   again after 1 s, doubling to 30 s ([`DeadLetterRetry`]); each round
//!   first sends the oldest unpublished dead letter alone, and the others
//!   only once that one is confirmed, so a full `por.dead` costs one refused
//!   publish per round, not one per dead letter. Once `por.dead` has room,
//!   the next round (at most 30 s later) publishes them all. Nothing is
//!   lost meanwhile: the store is the record (ICD §9).
//!
//! Events: `porter_statuses_published_total` and
//! `porter_dead_letters_published_total` (confirmed rows);
//! `porter_dead_letters_refused_total` (dead-letter publishes not
//! confirmed, from any caller); the gauge `porter_dead_letters_unpublished`
//! (dead letters past [`SWEEP_AGE`] still unpublished after the sweep's
//! last round); an ERROR each round that leaves dead letters unpublished
//! (their ids, never their content: an operator must make room on
//! `por.dead`), and an INFO once they go out again.
//!
//! # Correlation
//! A status's AMQP `correlation_id` is the inbound `message_id` exactly as
//! it came (ICD §4, version 1.1), even one that breaks ICD §1 (over 64
//! characters, control characters) and is `REJECTED` for it; an absent one
//! is answered with an empty `correlation_id`. The store keeps it in the
//! status row (see `crate::store::sql::intake`), exactly but for NUL,
//! which it keeps as U+FFFD like every text. The XML body's
//! `por:CorrelatesTo` carries the same text where XML 1.0 can: the
//! characters it cannot carry at all (C0 controls other than tab, line
//! feed and carriage return; U+FFFE and U+FFFF) are written as U+FFFD,
//! and a carriage return as `&#13;`. So a court matches
//! a status to its message by the AMQP property; the body's value is a
//! readable rendering that equals it whenever the id is valid.
//!
//! AMQP carries the property as a short string, at most 255 bytes. An id
//! that came over AMQP always fits; a longer one (only possible from
//! elsewhere) is cut at the last whole character within 255 bytes rather
//! than failing the publish.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::formats::xml::write_status;
use crate::store::{Lead, Store, StoredDeadLetter, StoredStatus};
use crate::transport::topology::{DEAD_QUEUE, RESPONSES_EXCHANGE};
use crate::transport::{Outgoing, PublishError, Publisher};

/// How old an unconfirmed row must be before the sweep re-sends it; younger
/// rows are still on their first way out.
pub const SWEEP_AGE: Duration = Duration::from_secs(10);

/// How often the sweep looks for unconfirmed statuses, and for dead
/// letters while `por.dead` takes them.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The background task's name for [`Lead`].
pub const SWEEP_TASK: &str = "outbox_sweep";

/// The first wait after `por.dead` refused a dead letter (then doubled).
pub const DEAD_LETTER_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two tries while `por.dead` refuses.
pub const DEAD_LETTER_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Statuses read per page of the outbox (a few KiB each).
const STATUS_PAGE: u32 = 500;

/// Dead letters read per page (each holds its original bytes, up to 16 MiB).
const DEAD_LETTER_PAGE: u32 = 50;

/// How many dead-letter ids an ERROR names (the gauge gives the count).
const IDS_LOGGED: usize = 10;

/// Publishes statuses and dead letters and marks them confirmed.
#[derive(Clone)]
pub struct Relay {
    pub store: Arc<dyn Store>,
    pub publisher: Publisher,
}

impl Relay {
    /// Publishes statuses and dead letters, all in flight together, each
    /// row marked once its own publish is confirmed. The first failure is
    /// returned (a status's before a dead letter's); the rows it concerns
    /// stay in the outbox for the sweep.
    pub async fn send(&self, statuses: &[StoredStatus], dead: &[StoredDeadLetter]) -> Result<(), PublishError> {
        let statuses: Vec<&StoredStatus> = statuses.iter().collect();
        let (statuses, dead) = tokio::join!(self.publish_statuses(&statuses), self.send_dead_letters(dead));
        statuses.into_iter().find(Result::is_err).unwrap_or(Ok(())).and(dead)
    }

    /// Publishes every group's statuses (those of one inbound delivery,
    /// say), all in flight together, and marks each status RabbitMQ
    /// confirmed, in one store call. Returns one result per group: `Ok` once
    /// all its statuses are confirmed, else its first failure; one group's
    /// failure is not another's.
    pub async fn send_statuses_each(&self, groups: &[Vec<StoredStatus>]) -> Vec<Result<(), PublishError>> {
        let all: Vec<&StoredStatus> = groups.iter().flatten().collect();
        let mut results = self.publish_statuses(&all).await.into_iter();
        groups
            .iter()
            .map(|g| {
                let mut first = Ok(());
                for result in results.by_ref().take(g.len()) {
                    first = first.and(result);
                }
                first
            })
            .collect()
    }

    /// Publishes dead letters to `por.dead`, all in flight together, and
    /// marks each one confirmed. One that is not (a full `por.dead` nacks
    /// it) stays in the outbox, counted in
    /// `porter_dead_letters_refused_total`, and the sweep sends it later
    /// with backoff. Returns the first failure.
    pub async fn send_dead_letters(&self, dead: &[StoredDeadLetter]) -> Result<(), PublishError> {
        let all: Vec<&StoredDeadLetter> = dead.iter().collect();
        self.publish_dead_letters(&all)
            .await
            .into_iter()
            .find(Result::is_err)
            .unwrap_or(Ok(()))
    }

    /// Publishes each status as its own message, marks the confirmed ones,
    /// and returns one result per status.
    async fn publish_statuses(&self, statuses: &[&StoredStatus]) -> Vec<Result<(), PublishError>> {
        if statuses.is_empty() {
            return Vec::new();
        }
        let messages = statuses.iter().map(|s| vec![status_message(s)]).collect();
        let results = self.publisher.publish_each(messages).await;
        let ids = confirmed_ids(statuses.iter().map(|s| s.id), &results);
        metrics::counter!("porter_statuses_published_total").increment(ids.len() as u64);
        if let Err(e) = self.store.mark_statuses_published(&ids).await {
            tracing::warn!(error = %e, "Could not mark statuses confirmed; they will be sent again.");
        }
        results
    }

    /// Publishes each dead letter as its own message, marks the confirmed
    /// ones, counts the others, and returns one result per dead letter.
    async fn publish_dead_letters(&self, dead: &[&StoredDeadLetter]) -> Vec<Result<(), PublishError>> {
        if dead.is_empty() {
            return Vec::new();
        }
        let messages = dead.iter().map(|d| vec![dead_letter_message(d)]).collect();
        let results = self.publisher.publish_each(messages).await;
        let ids = confirmed_ids(dead.iter().map(|d| d.id), &results);
        metrics::counter!("porter_dead_letters_published_total").increment(ids.len() as u64);
        metrics::counter!("porter_dead_letters_refused_total").increment((results.len() - ids.len()) as u64);
        if let Err(e) = self.store.mark_dead_letters_published(&ids).await {
            tracing::warn!(error = %e, "Could not mark dead letters confirmed; they will be sent again.");
        }
        results
    }

    /// Re-sends rows left unconfirmed until `stop`: statuses every
    /// [`SWEEP_INTERVAL`], dead letters as [`DeadLetterRetry`] says.
    ///
    /// With `lead`, a round runs only on the broker that leads the task
    /// `outbox_sweep` among those sharing the store ([`Lead`]), so rows
    /// left unconfirmed are re-sent by one broker, not by each.
    pub async fn sweep(self, lead: Option<Lead>, stop: CancellationToken) {
        let mut next_statuses = Instant::now();
        let mut dead = DeadLetterRetry::new(Instant::now());
        loop {
            let leading = match &lead {
                Some(lead) => lead.leads(SWEEP_TASK, SWEEP_INTERVAL).await,
                None => true,
            };
            if !leading {
                next_statuses = Instant::now() + SWEEP_INTERVAL;
                dead.next = dead.next.max(next_statuses);
            }
            if leading && Instant::now() >= next_statuses {
                let swept = tokio::select! {
                    r = self.sweep_statuses() => r,
                    _ = stop.cancelled() => return,
                };
                if let Err(e) = swept {
                    tracing::warn!(error = %e, "Status outbox sweep failed; will try again.");
                }
                next_statuses = Instant::now() + SWEEP_INTERVAL;
            }
            if leading && Instant::now() >= dead.next {
                let swept = tokio::select! {
                    r = self.sweep_dead_letters(&mut dead) => r,
                    _ = stop.cancelled() => return,
                };
                if let Err(e) = swept {
                    tracing::warn!(error = %e, "Dead-letter outbox sweep failed; will try again.");
                    dead.next = Instant::now() + SWEEP_INTERVAL;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next_statuses.min(dead.next)) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// One round over the status outbox, page by page, up to the first row
    /// younger than [`SWEEP_AGE`]: each page is published and each
    /// confirmed row marked.
    async fn sweep_statuses(&self) -> anyhow::Result<()> {
        let cutoff = Utc::now() - SWEEP_AGE;
        let (mut after, mut failed, mut first_error) = (0, 0usize, None);
        loop {
            let page = self.store.pending_statuses_after(after, STATUS_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let whole = page.len() == STATUS_PAGE as usize;
            let due: Vec<&StoredStatus> = page
                .iter()
                .take_while(|s| s.message.status_at.with_timezone(&Utc) < cutoff)
                .collect();
            let reached_young = due.len() < page.len();
            for result in self.publish_statuses(&due).await {
                if let Err(e) = result {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
            if reached_young || !whole {
                break;
            }
        }
        if let Some(e) = first_error {
            tracing::warn!(statuses = failed, error = %e, "Statuses not confirmed by the outbox sweep; it will try again.");
        }
        Ok(())
    }

    /// One round over the dead-letter outbox (see the module note), then
    /// schedules the next in `retry`.
    async fn sweep_dead_letters(&self, retry: &mut DeadLetterRetry) -> anyhow::Result<()> {
        let cutoff = Utc::now() - SWEEP_AGE;
        let mut after = 0;
        let (mut published, mut unpublished) = (0usize, 0usize);
        let mut unpublished_ids = Vec::new();
        let mut refusal: Option<PublishError> = None;
        loop {
            let page = self.store.pending_dead_letters_after(after, DEAD_LETTER_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let whole = page.len() == DEAD_LETTER_PAGE as usize;
            let due: Vec<&StoredDeadLetter> = page.iter().take_while(|d| d.created_at < cutoff).collect();
            let reached_young = due.len() < page.len();
            // The first of the round goes alone; the rest only once it is
            // confirmed, and none after a refusal.
            let mut rest = due.as_slice();
            while !rest.is_empty() && refusal.is_none() {
                let take = if published == 0 { 1 } else { rest.len() };
                let (now, later) = rest.split_at(take);
                rest = later;
                for (d, result) in now.iter().zip(self.publish_dead_letters(now).await) {
                    match result {
                        Ok(()) => published += 1,
                        Err(e) => {
                            refusal.get_or_insert(e);
                            unpublished += 1;
                            if unpublished_ids.len() < IDS_LOGGED {
                                unpublished_ids.push(d.id);
                            }
                        }
                    }
                }
            }
            unpublished += rest.len();
            let room = IDS_LOGGED.saturating_sub(unpublished_ids.len());
            unpublished_ids.extend(rest.iter().take(room).map(|d| d.id));
            if reached_young || !whole {
                break;
            }
        }
        metrics::gauge!("porter_dead_letters_unpublished").set(unpublished as f64);
        match refusal {
            Some(e) => {
                let wait = retry.refused(Instant::now());
                tracing::error!(
                    dead_letters = unpublished,
                    ids = ?unpublished_ids,
                    error = %e,
                    retry_in_secs = wait.as_secs(),
                    "Dead letters could not be published to por.dead (full or refusing); they stay in the store and will be sent again with backoff. Make room on por.dead."
                );
            }
            None => {
                if retry.cleared(Instant::now()) {
                    tracing::info!(
                        dead_letters = published,
                        "por.dead takes dead letters again; the unpublished ones were sent."
                    );
                }
            }
        }
        Ok(())
    }
}

/// When the sweep next tries the dead-letter outbox: every
/// [`SWEEP_INTERVAL`] while `por.dead` takes dead letters; after a refusal
/// [`DEAD_LETTER_BACKOFF`], doubling each refused round up to
/// [`DEAD_LETTER_BACKOFF_MAX`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRetry {
    /// When the next round is due.
    pub next: Instant,
    /// The last wait after a refusal; `None` while `por.dead` takes them.
    pub backoff: Option<Duration>,
}

impl DeadLetterRetry {
    /// Due at `now`, with no refusal seen.
    pub fn new(now: Instant) -> DeadLetterRetry {
        DeadLetterRetry {
            next: now,
            backoff: None,
        }
    }

    /// A round was refused at `now`: the next waits longer. Returns the wait.
    pub fn refused(&mut self, now: Instant) -> Duration {
        let wait = match self.backoff {
            None => DEAD_LETTER_BACKOFF,
            Some(last) => (last * 2).min(DEAD_LETTER_BACKOFF_MAX),
        };
        self.backoff = Some(wait);
        self.next = now + wait;
        wait
    }

    /// A round went through at `now`. True if it ends a run of refusals.
    pub fn cleared(&mut self, now: Instant) -> bool {
        self.next = now + SWEEP_INTERVAL;
        self.backoff.take().is_some()
    }
}

/// The ids whose publish `results` confirmed, in order.
fn confirmed_ids(ids: impl Iterator<Item = i64>, results: &[Result<(), PublishError>]) -> Vec<i64> {
    ids.zip(results).filter(|(_, r)| r.is_ok()).map(|(id, _)| id).collect()
}

/// A status as the AMQP message of ICD §4.
pub fn status_message(s: &StoredStatus) -> Outgoing {
    let m = &s.message;
    let properties = BasicProperties::default()
        .with_content_type("application/xml".into())
        .with_type("order-status".into())
        .with_correlation_id(short_string(&m.correlates_to).into())
        .with_message_id(format!("por-status-{}", s.id).into())
        .with_delivery_mode(2)
        .with_timestamp(m.status_at.timestamp().max(0) as u64)
        .with_app_id("porter".into());
    Outgoing {
        exchange: RESPONSES_EXCHANGE.into(),
        routing_key: m.court_ori.clone(),
        body: write_status(m),
        properties,
    }
}

/// The most of `s` an AMQP short string holds: all of it up to 255 bytes,
/// else cut at the last character boundary within 255 bytes.
fn short_string(s: &str) -> &str {
    const MAX: usize = u8::MAX as usize;
    if s.len() <= MAX {
        return s;
    }
    let end = (0..=MAX).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[..end]
}

/// A dead letter on `por.dead`: the original bytes, described in headers.
pub fn dead_letter_message(d: &StoredDeadLetter) -> Outgoing {
    let mut headers = FieldTable::default();
    let mut put = |k: &str, v: String| {
        headers.insert(k.into(), AMQPValue::LongString(v.into()));
    };
    put("x-por-dead-letter-id", d.id.to_string());
    put("x-por-court", d.court_ori.clone());
    put("x-por-message-id", d.message_id.clone());
    put("x-por-stage", d.stage.clone());
    put("x-por-reason", d.reason.clone());
    if let Some(p) = &d.partner {
        put("x-por-partner", p.wire_name());
    }
    put("x-por-errors", serde_json::to_string(&d.errors).unwrap_or_default());
    let properties = BasicProperties::default()
        .with_content_type(d.content_type.as_str().into())
        .with_message_id(format!("por-dl-{}", d.id).into())
        .with_correlation_id(short_string(&d.message_id).into())
        .with_delivery_mode(2)
        .with_timestamp(d.created_at.timestamp().max(0) as u64)
        .with_headers(headers);
    Outgoing {
        exchange: String::new(),
        routing_key: DEAD_QUEUE.into(),
        body: d.body.clone(),
        properties,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::formats::xml::read_status;
    use crate::model::{ErrorCode, FieldError, StatusKind, StatusMessage};

    fn rejected(correlates_to: &str) -> StoredStatus {
        StoredStatus {
            id: 7,
            message: StatusMessage {
                court_ori: "CA034025J".into(),
                order_number: None,
                sequence: None,
                correlates_to: correlates_to.into(),
                status_sequence: 1,
                status_at: chrono::FixedOffset::west_opt(8 * 3600)
                    .unwrap()
                    .with_ymd_and_hms(2026, 11, 25, 10, 15, 1)
                    .unwrap(),
                status: StatusKind::Rejected,
                partner: None,
                routed_partners: vec![],
                partner_record_ids: vec![],
                errors: vec![FieldError::new(ErrorCode::TooLong, "message_id", "too long")],
                warnings: vec![],
            },
        }
    }

    fn correlation_id(out: &Outgoing) -> Option<String> {
        out.properties.correlation_id().as_ref().map(|c| c.as_str().to_string())
    }

    /// The status's AMQP `correlation_id` is the inbound `message_id`
    /// exactly, for a valid id, one over 64 characters and one with control
    /// characters (NUL included); the body's `por:CorrelatesTo` equals it
    /// for the first two, and renders the characters XML 1.0 cannot carry
    /// as U+FFFD for the third, which still reads back.
    #[test]
    fn correlation_id_is_the_inbound_message_id_exactly() {
        let long = "L".repeat(100);
        let control = "a\u{1}b\0c";
        for (id, in_body) in [
            ("cms-000123", "cms-000123"),
            (long.as_str(), long.as_str()),
            (control, "a\u{FFFD}b\u{FFFD}c"),
        ] {
            let out = status_message(&rejected(id));
            assert_eq!(correlation_id(&out).as_deref(), Some(id));
            assert_eq!(out.properties.kind().as_ref().map(|k| k.as_str()), Some("order-status"));
            let body = read_status(&out.body).expect("the body is well-formed XML");
            assert_eq!(body.correlates_to, in_body);
        }
    }

    /// After a refusal the dead-letter sweep waits 1 s, doubling each
    /// refused round up to 30 s; a round that goes through ends the backoff
    /// (and says so once) and the next round is a normal interval away.
    #[test]
    fn dead_letter_retry_backs_off_doubling_to_30_s_and_resets() {
        let start = Instant::now();
        let mut retry = DeadLetterRetry::new(start);
        assert_eq!(retry.next, start);
        let waits: Vec<u64> = (0..8).map(|_| retry.refused(start).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry.next, start + DEAD_LETTER_BACKOFF_MAX);
        assert!(retry.cleared(start), "the first clean round ends the backoff");
        assert_eq!(retry.next, start + SWEEP_INTERVAL);
        assert!(!retry.cleared(start));
        assert_eq!(retry.refused(start), DEAD_LETTER_BACKOFF);
    }

    /// A value over 255 bytes (which cannot come over AMQP, but a NUL
    /// stored as U+FFFD triples) is cut at a character boundary within an
    /// AMQP short string's 255 bytes instead of breaking the publish.
    #[test]
    fn short_string_fits_255_bytes_on_a_character_boundary() {
        assert_eq!(short_string("m-1"), "m-1");
        let exact = "x".repeat(255);
        assert_eq!(short_string(&exact), exact);
        let wide = "\u{FFFD}".repeat(255);
        let cut = short_string(&wide);
        assert_eq!(cut.len(), 255);
        assert_eq!(cut.chars().count(), 85);
        let out = status_message(&rejected(&wide));
        assert_eq!(correlation_id(&out).as_deref(), Some(cut));
    }
}
