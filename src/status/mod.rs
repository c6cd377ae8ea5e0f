//! Statuses back to courts, and dead letters to `por.dead`.
//!
//! Both are rows in the store first (outboxes). The [`Relay`] turns rows
//! into AMQP messages, publishes them with confirms, and marks the rows
//! once confirmed. A sweep re-publishes rows left unconfirmed by a crash or
//! an outage, so a status is sent at least once (ICD §4). Each status keeps
//! its own stable `message_id` (`por-status-<id>`) across re-sends.
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
use tokio_util::sync::CancellationToken;

use crate::formats::xml::write_status;
use crate::store::{Produced, Store, StoredDeadLetter, StoredStatus};
use crate::transport::topology::{DEAD_QUEUE, RESPONSES_EXCHANGE};
use crate::transport::{Outgoing, PublishError, Publisher};

/// How old an unconfirmed row must be before the sweep re-sends it; younger
/// rows are still on their first way out.
const SWEEP_AGE: Duration = Duration::from_secs(10);

/// Publishes statuses and dead letters and marks them confirmed.
#[derive(Clone)]
pub struct Relay {
    pub store: Arc<dyn Store>,
    pub publisher: Publisher,
}

impl Relay {
    /// Publishes all, waits for every confirm, then marks the rows.
    pub async fn send(&self, statuses: &[StoredStatus], dead: &[StoredDeadLetter]) -> Result<(), PublishError> {
        let group = Produced {
            statuses: statuses.to_vec(),
            dead_letters: dead.to_vec(),
        };
        self.send_each(std::slice::from_ref(&group))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Publishes every group (the statuses and dead letters of one inbound
    /// delivery, say), all in flight together, then marks the rows of the
    /// groups RabbitMQ confirmed whole, in one store call for all of them.
    /// Returns one result per group: one group's failure is not another's.
    pub async fn send_each(&self, groups: &[Produced]) -> Vec<Result<(), PublishError>> {
        let messages = groups
            .iter()
            .map(|g| {
                g.statuses
                    .iter()
                    .map(status_message)
                    .chain(g.dead_letters.iter().map(dead_letter_message))
                    .collect()
            })
            .collect();
        let results = self.publisher.publish_each(messages).await;
        let confirmed = || groups.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(g, _)| g);
        let status_ids: Vec<i64> = confirmed().flat_map(|g| g.statuses.iter().map(|s| s.id)).collect();
        let dead_ids: Vec<i64> = confirmed().flat_map(|g| g.dead_letters.iter().map(|d| d.id)).collect();
        metrics::counter!("porter_statuses_published_total").increment(status_ids.len() as u64);
        if !status_ids.is_empty()
            && let Err(e) = self.store.mark_statuses_published(&status_ids).await
        {
            tracing::warn!(error = %e, "Could not mark statuses confirmed; they will be sent again.");
        }
        if !dead_ids.is_empty()
            && let Err(e) = self.store.mark_dead_letters_published(&dead_ids).await
        {
            tracing::warn!(error = %e, "Could not mark dead letters confirmed; they will be sent again.");
        }
        results
    }

    /// Re-sends rows left unconfirmed, every few seconds, until `stop`.
    pub async fn sweep(self, stop: CancellationToken) {
        loop {
            let swept = tokio::select! {
                r = self.sweep_once() => r,
                _ = stop.cancelled() => return,
            };
            if let Err(e) = swept {
                tracing::warn!(error = %e, "Outbox sweep failed; will try again.");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn sweep_once(&self) -> anyhow::Result<()> {
        let cutoff = Utc::now() - SWEEP_AGE;
        let statuses: Vec<_> = self
            .store
            .pending_statuses(1000)
            .await?
            .into_iter()
            .filter(|s| s.message.status_at.with_timezone(&Utc) < cutoff)
            .collect();
        let dead: Vec<_> = self
            .store
            .pending_dead_letters(1000)
            .await?
            .into_iter()
            .filter(|d| d.created_at < cutoff)
            .collect();
        self.send(&statuses, &dead).await?;
        Ok(())
    }
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
