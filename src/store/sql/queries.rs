//! Reads for the API and the outbox publisher, outbox marking, and purge.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::Row;

use super::rows::{
    DEAD_LETTER_COLUMNS, DEAD_LETTER_SUMMARY_COLUMNS, Params, Value, dead_letter_from_row,
    dead_letter_summary_from_row, from_ms, now_ms, parse_partner, status_from_row, text, to_ms, to_u32,
};
use crate::store::{
    AttemptImage, DeadLetterFilter, DeliveryView, PartnerAttempt, StoreError, StoreResult, StoredDeadLetter,
    StoredStatus,
};

/// How many ids go into one `IN (…)` list.
const ID_CHUNK: usize = 500;

/// Unpublished statuses with an id above `after`, by id: one page of the
/// outbox (`after` 0 is the first).
pub(super) async fn pending_statuses(
    conn: &mut AnyConnection,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<StoredStatus>> {
    let rows = sqlx::query(
        "SELECT id, message_json FROM statuses WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(status_from_row).collect()
}

/// Unpublished dead letters with an id above `after`, by id: one page of
/// the outbox (`after` 0 is the first).
pub(super) async fn pending_dead_letters(
    conn: &mut AnyConnection,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<StoredDeadLetter>> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE published_at IS NULL AND id > $1 \
         ORDER BY id LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(dead_letter_from_row).collect()
}

/// Marks outbox rows of `table` (`statuses` or `dead_letters`) published.
/// Rows already marked keep their first time.
pub(super) async fn mark_published(conn: &mut AnyConnection, table: &'static str, ids: &[i64]) -> StoreResult<()> {
    let now = now_ms();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut params = Params::default();
        let at = params.push(Value::Int(now));
        let list: Vec<String> = chunk.iter().map(|id| params.push(Value::Int(*id))).collect();
        let sql = format!(
            "UPDATE {table} SET published_at = {at} \
             WHERE published_at IS NULL AND id IN ({})",
            list.join(", ")
        );
        params.bind(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn statuses_for_message(
    conn: &mut AnyConnection,
    court_ori: &str,
    message_id: &str,
) -> StoreResult<Vec<StoredStatus>> {
    // One counter numbers them all, CONFLICT_REJECTED included (see `rows::Stream`).
    let rows = sqlx::query(
        "SELECT s.id, s.message_json FROM statuses s \
         WHERE s.court_ori = $1 AND s.correlates_to = $2 \
         ORDER BY s.status_sequence, s.id",
    )
    .bind(text(court_ori))
    .bind(text(message_id))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(status_from_row).collect()
}

pub(super) async fn deliveries_for_message(
    conn: &mut AnyConnection,
    court_ori: &str,
    message_id: &str,
) -> StoreResult<Vec<DeliveryView>> {
    let rows = sqlx::query(
        "SELECT d.id, d.partner, d.state, d.attempts FROM deliveries d \
         JOIN inbound_messages i ON i.id = d.inbound_id \
         WHERE i.court_ori = $1 AND i.message_id = $2 ORDER BY d.id",
    )
    .bind(text(court_ori))
    .bind(text(message_id))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryView {
                id: row.try_get("id")?,
                partner: parse_partner(&row.try_get::<String, _>("partner")?)?,
                state: row.try_get("state")?,
                attempts: to_u32(row.try_get("attempts")?, "attempts")?,
            })
        })
        .collect()
}

/// Dead letters matching every given filter, newest first (100 by default).
pub(super) async fn dead_letters(
    conn: &mut AnyConnection,
    filter: &DeadLetterFilter,
) -> StoreResult<Vec<StoredDeadLetter>> {
    let mut params = Params::default();
    let mut conditions: Vec<String> = Vec::new();
    let text_filters = [
        ("court_ori", filter.court_ori.clone()),
        ("stage", filter.stage.clone()),
        ("partner", filter.partner.as_ref().map(|p| p.wire_name())),
        ("reason", filter.reason.clone()),
    ];
    for (column, value) in text_filters {
        if let Some(value) = value {
            conditions.push(format!("{column} = {}", params.push(Value::Text(value))));
        }
    }
    if let Some(since) = filter.since {
        conditions.push(format!("created_at >= {}", params.push(Value::Int(to_ms(since)))));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("created_at < {}", params.push(Value::Int(to_ms(until)))));
    }
    match filter.open {
        Some(true) => conditions.push("resolved_at IS NULL".into()),
        Some(false) => conditions.push("resolved_at IS NOT NULL".into()),
        None => {}
    }
    let limit = params.push(Value::Int(i64::from(filter.limit.unwrap_or(100))));
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {DEAD_LETTER_SUMMARY_COLUMNS} FROM dead_letters {filter_sql} \
         ORDER BY created_at DESC, id DESC LIMIT {limit}"
    );
    let rows = params.bind(&sql).fetch_all(&mut *conn).await?;
    rows.iter().map(dead_letter_summary_from_row).collect()
}

pub(super) async fn dead_letter(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<StoredDeadLetter>> {
    let sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(dead_letter_from_row).transpose()
}

pub(super) async fn partner_attempts(conn: &mut AnyConnection, delivery_id: i64) -> StoreResult<Vec<PartnerAttempt>> {
    let rows = sqlx::query(
        "SELECT attempted_at, request, image_sha256, image_offset, response, error FROM partner_attempts \
         WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(delivery_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let sha256: Option<String> = row.try_get("image_sha256")?;
            let offset: Option<i64> = row.try_get("image_offset")?;
            let image = match (sha256, offset) {
                (Some(sha256), Some(offset)) => Some(AttemptImage {
                    sha256,
                    offset: usize::try_from(offset)
                        .map_err(|_| StoreError::Corrupt(format!("image offset out of range: {offset}")))?,
                }),
                _ => None,
            };
            Ok(PartnerAttempt {
                at: from_ms(row.try_get("attempted_at")?)?,
                request: row.try_get("request")?,
                image,
                response: row.try_get("response")?,
                error: row.try_get("error")?,
            })
        })
        .collect()
}

/// Forgets inbound messages received before `cutoff` whose work is over:
/// every status published, every delivery `ACCEPTED` or `DISCARDED`. Their
/// statuses, deliveries and attempts go with them; dead letters and orders
/// stay. Conflicting arrivals received before `cutoff` whose
/// `CONFLICT_REJECTED` is published go too, with that status.
pub(super) async fn purge_before(conn: &mut AnyConnection, cutoff: DateTime<Utc>) -> StoreResult<u64> {
    let cutoff = to_ms(cutoff);
    let ids: Vec<i64> = sqlx::query(
        "SELECT i.id FROM inbound_messages i WHERE i.received_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.inbound_id = i.id \
                           AND d.state NOT IN ('ACCEPTED', 'DISCARDED')) \
           AND NOT EXISTS (SELECT 1 FROM statuses s WHERE s.inbound_id = i.id \
                           AND s.published_at IS NULL)",
    )
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;

    let statements = [
        "DELETE FROM partner_attempts WHERE delivery_id IN \
         (SELECT id FROM deliveries WHERE inbound_id IN ({ids}))",
        "DELETE FROM revisions WHERE delivery_id IN \
         (SELECT id FROM deliveries WHERE inbound_id IN ({ids}))",
        "DELETE FROM deliveries WHERE inbound_id IN ({ids})",
        "DELETE FROM statuses WHERE inbound_id IN ({ids})",
        "DELETE FROM inbound_messages WHERE id IN ({ids})",
    ];
    for chunk in ids.chunks(ID_CHUNK) {
        for statement in statements {
            let mut params = Params::default();
            let list: Vec<String> = chunk.iter().map(|id| params.push(Value::Int(*id))).collect();
            let sql = statement.replace("{ids}", &list.join(", "));
            params.bind(&sql).execute(&mut *conn).await?;
        }
    }
    sqlx::query(
        "DELETE FROM conflicts WHERE received_at < $1 \
         AND status_id IN (SELECT id FROM statuses WHERE published_at IS NOT NULL)",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM statuses WHERE inbound_id IS NULL AND published_at IS NOT NULL \
         AND created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM conflicts c WHERE c.status_id = statuses.id)",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?;
    Ok(ids.len() as u64)
}
