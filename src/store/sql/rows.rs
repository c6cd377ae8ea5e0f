//! Conversions between rows and model types, and the inserts that several
//! operations share (statuses and dead letters).

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::{FieldError, PartnerId, PartnerRecordId, StatusKind, StatusMessage, now_pacific};
use crate::store::{DeadLetterStage, Resolution, StoreError, StoreResult, StoredDeadLetter, StoredStatus};

/// A time as stored: unix milliseconds.
pub(super) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time out of range: {ms} ms")))
}

/// Now, at the millisecond precision the store keeps.
pub(super) fn now_ms() -> i64 {
    to_ms(Utc::now())
}

/// A text value as the store keeps it: NUL becomes U+FFFD. PostgreSQL
/// refuses NUL in `TEXT`, and one refused value would fail the whole batch,
/// so every text that comes from a court or a partner passes through here
/// before it is written or looked up (JSON documents need not: serde writes
/// NUL as `\u0000`).
pub(super) fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// [`text`] in place, allocating only when there is a NUL.
pub(super) fn clean(s: &mut String) {
    if s.contains('\0') {
        *s = text(s);
    }
}

/// [`text`] for an optional value.
pub(super) fn text_opt(s: Option<&str>) -> Option<String> {
    s.map(text)
}

pub(super) fn to_u32(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

pub(super) fn parse_partner(s: &str) -> StoreResult<PartnerId> {
    PartnerId::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown partner {s:?}")))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot serialise: {e}")))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad {what} JSON: {e}")))
}

/// A status about to be stored; the store assigns its sequence and time.
pub(super) struct StatusDraft {
    pub court_ori: String,
    pub order_number: Option<String>,
    pub sequence: Option<u32>,
    pub correlates_to: String,
    pub kind: StatusKind,
    pub partner: Option<PartnerId>,
    pub routed_partners: Vec<PartnerId>,
    pub partner_record_ids: Vec<PartnerRecordId>,
    pub errors: Vec<FieldError>,
    pub warnings: Vec<FieldError>,
}

impl StatusDraft {
    pub fn new(
        court_ori: &str,
        correlates_to: &str,
        order_number: Option<&str>,
        sequence: Option<u32>,
        kind: StatusKind,
    ) -> StatusDraft {
        StatusDraft {
            court_ori: text(court_ori),
            order_number: text_opt(order_number),
            sequence,
            correlates_to: text(correlates_to),
            kind,
            partner: None,
            routed_partners: Vec::new(),
            partner_record_ids: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Which status stream a new status joins. Every stream is numbered by
/// the counter of one `inbound_messages` row, so all the statuses under one
/// correlation id are totally ordered by `StatusSequence`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stream {
    /// The first status of a message inserted by this transaction with
    /// `status_count = 1`: number 1, no counter round trip.
    First(i64),
    /// The next status of a stored message: numbered from its counter.
    Next(i64),
    /// The next status of a stored message whose counter the caller has
    /// already taken (in a statement that did more than that): this number.
    Counted(i64, u32),
    /// A `CONFLICT_REJECTED` answering a newcomer that shares this stored
    /// message's `message_id`: numbered from the original's counter, but not
    /// linked to it (`inbound_id` NULL), so a duplicate of the original does
    /// not send it again.
    Beside(i64),
}

/// Stores a status in `stream`. `StatusSequence` comes from the message
/// row's counter (`UPDATE … RETURNING`), so concurrent writers never hand
/// out the same number.
pub(super) async fn insert_status(
    conn: &mut AnyConnection,
    stream: Stream,
    draft: StatusDraft,
) -> StoreResult<StoredStatus> {
    let (inbound_id, status_sequence) = match stream {
        Stream::First(id) => (Some(id), 1),
        Stream::Next(id) => (Some(id), next_status_sequence(conn, id).await?),
        Stream::Counted(id, n) => (Some(id), n),
        Stream::Beside(id) => (None, next_status_sequence(conn, id).await?),
    };
    let message = status_message(draft, status_sequence);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO statuses (court_ori, correlates_to, inbound_id, status_sequence, kind, \
         partner, message_json, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(message.court_ori.clone())
    .bind(message.correlates_to.clone())
    .bind(inbound_id)
    .bind(i64::from(status_sequence))
    .bind(message.status.as_str())
    .bind(message.partner.as_ref().map(|p| text(&p.wire_name())))
    .bind(to_json(&message)?)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await?;
    Ok(StoredStatus { id, message })
}

/// The status message a draft becomes under `status_sequence`, stamped now.
pub(super) fn status_message(draft: StatusDraft, status_sequence: u32) -> StatusMessage {
    StatusMessage {
        court_ori: draft.court_ori,
        order_number: draft.order_number,
        sequence: draft.sequence,
        correlates_to: draft.correlates_to,
        status_sequence,
        status_at: now_pacific().trunc_subsecs(3),
        status: draft.kind,
        partner: draft.partner,
        routed_partners: draft.routed_partners,
        partner_record_ids: draft.partner_record_ids,
        errors: draft.errors,
        warnings: draft.warnings,
    }
}

/// Takes the next number from an inbound message's status counter.
async fn next_status_sequence(conn: &mut AnyConnection, inbound_id: i64) -> StoreResult<u32> {
    let n: i64 = sqlx::query_scalar(
        "UPDATE inbound_messages SET status_count = status_count + 1 \
         WHERE id = $1 RETURNING status_count",
    )
    .bind(inbound_id)
    .fetch_one(&mut *conn)
    .await?;
    to_u32(n, "status_count")
}

/// Reads a status row (`id`, `message_json`).
pub(super) fn status_from_row(row: &AnyRow) -> StoreResult<StoredStatus> {
    let json: String = row.try_get("message_json")?;
    Ok(StoredStatus {
        id: row.try_get("id")?,
        message: from_json(&json, "status")?,
    })
}

/// A dead letter about to be stored.
pub(super) struct DeadLetterDraft {
    pub inbound_id: Option<i64>,
    pub delivery_id: Option<i64>,
    pub court_ori: String,
    pub message_id: String,
    pub order_number: Option<String>,
    pub sequence: Option<u32>,
    pub stage: DeadLetterStage,
    pub partner: Option<PartnerId>,
    pub reason: String,
    pub errors: Vec<FieldError>,
    pub body: Vec<u8>,
    pub content_type: String,
    pub attempts: u32,
}

pub(super) async fn insert_dead_letter(
    conn: &mut AnyConnection,
    mut d: DeadLetterDraft,
) -> StoreResult<StoredDeadLetter> {
    for s in [&mut d.court_ori, &mut d.message_id, &mut d.reason, &mut d.content_type] {
        clean(s);
    }
    if let Some(number) = d.order_number.as_mut() {
        clean(number);
    }
    let created_at = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dead_letters (inbound_id, delivery_id, court_ori, message_id, order_number, \
         sequence, stage, partner, reason, errors_json, body, content_type, attempts, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(d.inbound_id)
    .bind(d.delivery_id)
    .bind(d.court_ori.clone())
    .bind(d.message_id.clone())
    .bind(d.order_number.clone())
    .bind(d.sequence.map(i64::from))
    .bind(d.stage.as_str())
    .bind(d.partner.as_ref().map(|p| text(&p.wire_name())))
    .bind(d.reason.clone())
    .bind(to_json(&d.errors)?)
    .bind(d.body.clone())
    .bind(d.content_type.clone())
    .bind(i64::from(d.attempts))
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(StoredDeadLetter {
        id,
        court_ori: d.court_ori,
        message_id: d.message_id,
        order_number: d.order_number,
        sequence: d.sequence,
        stage: d.stage.as_str().to_string(),
        partner: d.partner,
        reason: d.reason,
        errors: d.errors,
        body_bytes: d.body.len() as u64,
        body: d.body,
        content_type: d.content_type,
        attempts: d.attempts,
        created_at: from_ms(created_at)?,
        resolution: None,
    })
}

/// The columns [`dead_letter_from_row`] reads: the whole dead letter, its
/// original bytes included.
pub(super) const DEAD_LETTER_COLUMNS: &str = "id, court_ori, message_id, order_number, sequence, \
     stage, partner, reason, errors_json, body, CAST(length(body) AS BIGINT) AS body_bytes, \
     content_type, attempts, created_at, resolved_at, resolution, resolved_by";

/// The columns [`dead_letter_summary_from_row`] reads: everything but the
/// original bytes (up to 16 MiB each), of which only the length is read.
/// Lists use these.
pub(super) const DEAD_LETTER_SUMMARY_COLUMNS: &str = "id, court_ori, message_id, order_number, sequence, \
     stage, partner, reason, errors_json, CAST(length(body) AS BIGINT) AS body_bytes, \
     content_type, attempts, created_at, resolved_at, resolution, resolved_by";

/// A dead letter read with [`DEAD_LETTER_COLUMNS`], its body included.
pub(super) fn dead_letter_from_row(row: &AnyRow) -> StoreResult<StoredDeadLetter> {
    Ok(StoredDeadLetter {
        body: row.try_get("body")?,
        ..dead_letter_summary_from_row(row)?
    })
}

/// A dead letter read with [`DEAD_LETTER_SUMMARY_COLUMNS`]: its `body` is
/// empty, `body_bytes` says how long it is.
pub(super) fn dead_letter_summary_from_row(row: &AnyRow) -> StoreResult<StoredDeadLetter> {
    let sequence: Option<i64> = row.try_get("sequence")?;
    let partner: Option<String> = row.try_get("partner")?;
    let errors: String = row.try_get("errors_json")?;
    Ok(StoredDeadLetter {
        id: row.try_get("id")?,
        court_ori: row.try_get("court_ori")?,
        message_id: row.try_get("message_id")?,
        order_number: row.try_get("order_number")?,
        sequence: sequence.map(|s| to_u32(s, "sequence")).transpose()?,
        stage: row.try_get("stage")?,
        partner: partner.as_deref().map(parse_partner).transpose()?,
        reason: row.try_get("reason")?,
        errors: from_json(&errors, "dead letter errors")?,
        body: Vec::new(),
        body_bytes: u64::try_from(row.try_get::<i64, _>("body_bytes")?).unwrap_or_default(),
        content_type: row.try_get("content_type")?,
        attempts: to_u32(row.try_get("attempts")?, "attempts")?,
        created_at: from_ms(row.try_get("created_at")?)?,
        resolution: resolution_from_row(row)?,
    })
}

fn resolution_from_row(row: &AnyRow) -> StoreResult<Option<Resolution>> {
    let at: Option<i64> = row.try_get("resolved_at")?;
    let Some(at) = at else { return Ok(None) };
    Ok(Some(Resolution {
        kind: row.try_get::<Option<String>, _>("resolution")?.unwrap_or_default(),
        at: from_ms(at)?,
        by: row.try_get::<Option<String>, _>("resolved_by")?.unwrap_or_default(),
    }))
}

/// A bind value for SQL built at run time (text passes through [`text`]).
pub(super) enum Value {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// NULL of an integer column.
    NoInt,
    /// NULL of a text column.
    NoText,
}

impl Value {
    pub fn int_opt(v: Option<i64>) -> Value {
        v.map_or(Value::NoInt, Value::Int)
    }

    pub fn text_opt(v: Option<&str>) -> Value {
        v.map_or(Value::NoText, |s| Value::Text(s.to_string()))
    }
}

/// Builds `$n` placeholders and their values in step, for SQL built at run
/// time (id lists, optional filters, multi-row inserts).
#[derive(Default)]
pub(super) struct Params(Vec<Value>);

impl Params {
    /// Adds a value; returns its placeholder.
    pub fn push(&mut self, v: Value) -> String {
        self.0.push(v);
        format!("${}", self.0.len())
    }

    pub fn bind(self, sql: &str) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        self.0.into_iter().fold(sqlx::query(sql), |q, v| match v {
            Value::Int(i) => q.bind(i),
            Value::Text(mut s) => {
                clean(&mut s);
                q.bind(s)
            }
            Value::Bytes(b) => q.bind(b),
            Value::NoInt => q.bind(None::<i64>),
            Value::NoText => q.bind(None::<String>),
        })
    }
}
