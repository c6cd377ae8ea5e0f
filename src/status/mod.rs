//! Statuses back to courts, and dead letters to `por.dead`.
//!
//! Both are rows in the store first (outboxes). The [`Relay`] turns rows
//! into AMQP messages, publishes them with confirms, and marks the rows
//! once confirmed. A sweep re-publishes rows left unconfirmed by a crash or
//! an outage, so a status is sent at least once (ICD §4). Each status keeps
//! its own stable `message_id` (`por-status-<id>`) across re-sends.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use tokio_util::sync::CancellationToken;

use crate::formats::xml::write_status;
use crate::store::{Store, StoredDeadLetter, StoredStatus};
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
        if statuses.is_empty() && dead.is_empty() {
            return Ok(());
        }
        let messages = statuses
            .iter()
            .map(status_message)
            .chain(dead.iter().map(dead_letter_message))
            .collect();
        self.publisher.publish_all(messages).await?;
        metrics::counter!("porter_statuses_published_total").increment(statuses.len() as u64);
        let status_ids: Vec<i64> = statuses.iter().map(|s| s.id).collect();
        let dead_ids: Vec<i64> = dead.iter().map(|d| d.id).collect();
        if let Err(e) = self.store.mark_statuses_published(&status_ids).await {
            tracing::warn!(error = %e, "Could not mark statuses confirmed; they will be sent again.");
        }
        if let Err(e) = self.store.mark_dead_letters_published(&dead_ids).await {
            tracing::warn!(error = %e, "Could not mark dead letters confirmed; they will be sent again.");
        }
        Ok(())
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
        .with_correlation_id(m.correlates_to.as_str().into())
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
        .with_correlation_id(d.message_id.as_str().into())
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
