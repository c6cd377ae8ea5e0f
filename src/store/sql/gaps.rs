//! [`Store::expire_gaps`](crate::store::Store::expire_gaps): messages that
//! waited too long for a missing earlier sequence (ICD §5).
//!
//! A message accepted past a gap waits, unrouted and without a status, for
//! its predecessors. When it has waited longer than its court's gap timeout
//! it is given up: its `ACCEPTED` (routed to no partner) and a
//! `DEAD_LETTERED` status with `SEQUENCE_GAP` go to the court, with a dead
//! letter at stage `sequence`; its outcome becomes `EXPIRED`, which frees
//! its sequence, so the court can send it again (under a new `message_id`)
//! once the missing message is in. Nothing of it was applied or sent to a
//! partner.

use sqlx::AnyConnection;
use sqlx::Row;

use super::rows::{DeadLetterDraft, StatusDraft, Stream, insert_dead_letter, insert_status, to_u32};
use crate::model::{ErrorCode, FieldError, StatusKind};
use crate::store::{DeadLetterStage, Produced, StoreResult};

/// Gives up every message of `court_ori` that has waited behind a gap since
/// before `cutoff_ms`.
pub(super) async fn expire(conn: &mut AnyConnection, court_ori: &str, cutoff_ms: i64) -> StoreResult<Produced> {
    let rows = sqlx::query(
        "SELECT i.id, i.message_id, i.order_number, i.sequence, i.body, i.content_type, o.applied_sequence \
         FROM inbound_messages i \
         JOIN orders o ON o.court_ori = i.court_ori AND o.order_number = i.order_number \
         WHERE i.court_ori = $1 AND i.outcome = 'ACCEPTED' AND i.sequence > o.applied_sequence \
           AND i.received_at < $2 \
         ORDER BY i.id",
    )
    .bind(court_ori.to_string())
    .bind(cutoff_ms)
    .fetch_all(&mut *conn)
    .await?;
    let mut produced = Produced::default();
    for row in &rows {
        let inbound_id: i64 = row.try_get("id")?;
        let message_id: String = row.try_get("message_id")?;
        let order_number: Option<String> = row.try_get("order_number")?;
        let sequence = row
            .try_get::<Option<i64>, _>("sequence")?
            .map(|s| to_u32(s, "sequence"))
            .transpose()?;
        let applied: i64 = row.try_get("applied_sequence")?;
        sqlx::query("UPDATE inbound_messages SET outcome = 'EXPIRED' WHERE id = $1")
            .bind(inbound_id)
            .execute(&mut *conn)
            .await?;
        let draft = |kind| StatusDraft::new(court_ori, &message_id, order_number.as_deref(), sequence, kind);
        produced
            .statuses
            .push(insert_status(conn, Stream::Next(inbound_id), draft(StatusKind::Accepted)).await?);
        let error = FieldError::new(
            ErrorCode::SequenceGap,
            "sequence",
            format!(
                "sequence {} of order {} waited for sequence {} longer than the court's gap timeout; \
                 it was not applied: send it again after the missing message",
                sequence.unwrap_or_default(),
                order_number.as_deref().unwrap_or(""),
                applied + 1
            ),
        );
        let mut dead = draft(StatusKind::DeadLettered);
        dead.errors = vec![error.clone()];
        produced
            .statuses
            .push(insert_status(conn, Stream::Next(inbound_id), dead).await?);
        let dead_letter = DeadLetterDraft {
            inbound_id: Some(inbound_id),
            delivery_id: None,
            court_ori: court_ori.to_string(),
            message_id: message_id.clone(),
            order_number: order_number.clone(),
            sequence,
            stage: DeadLetterStage::Sequence,
            partner: None,
            reason: ErrorCode::SequenceGap.as_str().to_string(),
            errors: vec![error],
            body: row.try_get("body")?,
            content_type: row.try_get("content_type")?,
            attempts: 0,
        };
        produced.dead_letters.push(insert_dead_letter(conn, dead_letter).await?);
    }
    Ok(produced)
}
