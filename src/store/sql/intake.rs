//! [`Store::intake`](crate::store::Store::intake): deduplication, ICD §5's
//! sequence rules, the order row, deliveries and the first status.
//!
//! Per item, in order:
//! 1. **Same `(court, message_id)`.** Same body SHA-256: `Duplicate` with
//!    every status of the earlier message, nothing else changes. Different
//!    body: a `CONFLICT_REJECTED` status (error `DUPLICATE_CONFLICT`, field
//!    `message_id`) outside the original's stream; the original is untouched.
//! 2. **Rejected verdict.** The message is stored (outcome `REJECTED`), with a
//!    `REJECTED` status and a dead letter at stage `validate` whose reason is
//!    the first error's code. Its sequence stays free.
//! 3. **Accepted verdict**, checked against the order, first match wins:
//!    - (a) an accepted message has the same `(court, order, sequence)`: the
//!      same canonical content makes this one a duplicate (outcome
//!      `DUPLICATE`): an `ACCEPTED` status with no routed partners and a
//!      `DUPLICATE_CONFLICT` warning (field `sequence`) naming the message it
//!      repeats, and no second effect. Different content is `REJECTED` with
//!      `SEQUENCE_CONFLICT`. A sequence inside the order's applied prefix
//!      whose message was purged is also `SEQUENCE_CONFLICT`.
//!    - (b) the order's latest ISSUE, TERMINATE or CANCEL before this
//!      sequence is a TERMINATE, or a CANCEL: `REJECTED` with `ORDER_CLOSED`,
//!      except an ISSUE with the sequence right after the CANCEL (re-entry).
//!    - (c) that latest one is an ISSUE and this is an ISSUE too: `REJECTED`
//!      with `SEQUENCE_CONFLICT` (the order exists and is active).
//!    - (d) otherwise it is accepted: stored (outcome `ACCEPTED`), applied to
//!      the order row when no gap precedes it, one `PENDING` delivery per
//!      routed partner, and an `ACCEPTED` status listing them.
//!
//!    Rules (b) and (c) look at the order's sequence history, not only at its
//!    latest state, so a corrected message that fills a gap below a TERMINATE
//!    is still accepted. Rejections under (a)–(c) also leave a dead letter
//!    at stage `validate`.

use sqlx::AnyConnection;
use sqlx::Row;

use super::Backend;
use super::rows::{
    DeadLetterDraft, Params, StatusDraft, Stream, Value, from_json, insert_dead_letter,
    insert_status, now_ms, status_from_row, to_json,
};
use crate::model::{Action, ErrorCode, FieldError, OrderMessage, PartnerId, StatusKind};
use crate::store::{
    DeadLetterStage, InboundMessage, IntakeItem, IntakeOutcome, StoreResult, StoredStatus, Verdict,
};

/// The `orders.state` values.
const NEW: &str = "NEW";
const ACTIVE: &str = "ACTIVE";
const TERMINATED: &str = "TERMINATED";
const CANCELLED: &str = "CANCELLED";

/// Applies one intake item inside the caller's transaction.
pub(super) async fn intake_one(
    conn: &mut AnyConnection,
    backend: Backend,
    item: IntakeItem,
) -> StoreResult<IntakeOutcome> {
    let IntakeItem { inbound, verdict } = item;
    backend.lock_key(conn, &["message", &inbound.court_ori, &inbound.message_id]).await?;

    let earlier = sqlx::query(
        "SELECT id, body_sha256 FROM inbound_messages WHERE court_ori = $1 AND message_id = $2",
    )
    .bind(inbound.court_ori.clone())
    .bind(inbound.message_id.clone())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = earlier {
        let id: i64 = row.try_get("id")?;
        let sha: String = row.try_get("body_sha256")?;
        if sha == inbound.body_sha256 {
            return Ok(IntakeOutcome::Duplicate { statuses: statuses_of(conn, id).await? });
        }
        let (order_number, sequence) = match &verdict {
            Verdict::Accepted { order, .. } => (order.order_number(), order.sequence),
            Verdict::Rejected { order_number, sequence, .. } => {
                (order_number.as_deref(), *sequence)
            }
        };
        let mut draft = StatusDraft::new(
            &inbound.court_ori,
            &inbound.message_id,
            order_number,
            sequence,
            StatusKind::ConflictRejected,
        );
        draft.errors.push(FieldError::new(
            ErrorCode::DuplicateConflict,
            "message_id",
            format!(
                "message_id {} was already received with a different body; the original stands",
                inbound.message_id
            ),
        ));
        let status = insert_status(conn, Stream::Alone, draft).await?;
        return Ok(IntakeOutcome::Conflict { status });
    }

    match verdict {
        Verdict::Rejected { order_number, sequence, errors } => {
            let facts = Facts { order_number, sequence, action: None, canonical: None };
            reject(conn, &inbound, facts, errors, Vec::new()).await
        }
        Verdict::Accepted { order, canonical_sha256, partners, warnings } => {
            let (Some(order_number), Some(sequence), Some(action)) =
                (order.order_number().map(str::to_string), order.sequence, order.action)
            else {
                // The validator guarantees these; refuse rather than guess.
                let errors = vec![FieldError::new(
                    ErrorCode::Missing,
                    "order.order_number",
                    "an accepted message needs its order number, sequence and action",
                )];
                let facts = Facts {
                    order_number: order.order_number().map(str::to_string),
                    sequence: order.sequence,
                    action: order.action,
                    canonical: None,
                };
                return reject(conn, &inbound, facts, errors, warnings).await;
            };
            backend.lock_key(conn, &["order", &inbound.court_ori, &order_number]).await?;
            let key = OrderKey { court_ori: &inbound.court_ori, order_number: &order_number };
            let canonical = Canonical { json: to_json(&*order)?, sha256: canonical_sha256 };
            let facts = Facts {
                order_number: Some(order_number.clone()),
                sequence: Some(sequence),
                action: Some(action),
                canonical: Some(canonical),
            };
            let row = OrderRow::load(conn, &key).await?;
            match decide(conn, &key, row.as_ref(), sequence, action, facts.canonical_sha()).await? {
                Decision::Reject(error) => {
                    reject(conn, &inbound, facts, vec![error], warnings).await
                }
                Decision::SameContent { original_id, original_message_id } => {
                    let id = insert_inbound(conn, &inbound, "DUPLICATE", &facts, Some(original_id))
                        .await?;
                    let mut draft = facts.status(&inbound, StatusKind::Accepted);
                    draft.warnings = warnings;
                    draft.warnings.push(FieldError::new(
                        ErrorCode::DuplicateConflict,
                        "sequence",
                        format!(
                            "sequence {sequence} of order {order_number} was already accepted \
                             as message {original_message_id} with the same content; this \
                             message has no second effect"
                        ),
                    ));
                    let status = insert_status(conn, Stream::First(id), draft).await?;
                    Ok(IntakeOutcome::Stored { statuses: vec![status], dead_letter: None })
                }
                Decision::Accept => {
                    let id = insert_inbound(conn, &inbound, "ACCEPTED", &facts, None).await?;
                    apply_to_order(conn, &key, row, sequence, action, *order).await?;
                    let mut routed: Vec<PartnerId> = Vec::with_capacity(partners.len());
                    for partner in partners {
                        if !routed.contains(&partner) {
                            routed.push(partner);
                        }
                    }
                    insert_deliveries(conn, id, &key, sequence, &routed).await?;
                    let mut draft = facts.status(&inbound, StatusKind::Accepted);
                    draft.routed_partners = routed;
                    draft.warnings = warnings;
                    let status = insert_status(conn, Stream::First(id), draft).await?;
                    Ok(IntakeOutcome::Stored { statuses: vec![status], dead_letter: None })
                }
            }
        }
    }
}

/// One `PENDING` delivery per routed partner, due now, in one statement.
async fn insert_deliveries(
    conn: &mut AnyConnection,
    inbound_id: i64,
    key: &OrderKey<'_>,
    sequence: u32,
    partners: &[PartnerId],
) -> StoreResult<()> {
    if partners.is_empty() {
        return Ok(());
    }
    let mut params = Params::default();
    let id = params.push(Value::Int(inbound_id));
    let court = params.push(Value::Text(key.court_ori.to_string()));
    let number = params.push(Value::Text(key.order_number.to_string()));
    let seq = params.push(Value::Int(i64::from(sequence)));
    let now = params.push(Value::Int(now_ms()));
    let rows: Vec<String> = partners
        .iter()
        .map(|p| {
            let partner = params.push(Value::Text(p.wire_name()));
            format!(
                "({id}, {court}, {number}, {seq}, {partner}, 'PENDING', 0, 0, {now}, {now}, {now})"
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO deliveries (inbound_id, court_ori, order_number, sequence, partner, state, \
         attempts, revision, next_attempt_at, created_at, updated_at) VALUES {}",
        rows.join(", ")
    );
    params.bind(&sql).execute(&mut *conn).await?;
    Ok(())
}

/// An order key, borrowed.
struct OrderKey<'a> {
    court_ori: &'a str,
    order_number: &'a str,
}

/// The order row as read before deciding (its JSON is read only when needed).
struct OrderRow {
    state: String,
    applied: i64,
    last: i64,
}

impl OrderRow {
    async fn load(conn: &mut AnyConnection, key: &OrderKey<'_>) -> StoreResult<Option<OrderRow>> {
        let row = sqlx::query(
            "SELECT state, applied_sequence, last_sequence FROM orders \
             WHERE court_ori = $1 AND order_number = $2",
        )
        .bind(key.court_ori.to_string())
        .bind(key.order_number.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|row| {
            Ok(OrderRow {
                state: row.try_get("state")?,
                applied: row.try_get("applied_sequence")?,
                last: row.try_get("last_sequence")?,
            })
        })
        .transpose()
    }
}

/// The canonical form of a valid message.
struct Canonical {
    json: String,
    sha256: String,
}

/// What is known about an inbound message's order, for its row and statuses.
struct Facts {
    order_number: Option<String>,
    sequence: Option<u32>,
    action: Option<Action>,
    canonical: Option<Canonical>,
}

impl Facts {
    fn canonical_sha(&self) -> &str {
        self.canonical.as_ref().map_or("", |c| c.sha256.as_str())
    }

    fn status(&self, inbound: &InboundMessage, kind: StatusKind) -> StatusDraft {
        StatusDraft::new(
            &inbound.court_ori,
            &inbound.message_id,
            self.order_number.as_deref(),
            self.sequence,
            kind,
        )
    }
}

/// What ICD §5 says about an accepted verdict.
enum Decision {
    Accept,
    SameContent { original_id: i64, original_message_id: String },
    Reject(FieldError),
}

async fn decide(
    conn: &mut AnyConnection,
    key: &OrderKey<'_>,
    order: Option<&OrderRow>,
    sequence: u32,
    action: Action,
    canonical_sha256: &str,
) -> StoreResult<Decision> {
    let seq = i64::from(sequence);
    let (court, number) = (key.court_ori, key.order_number);

    // (a) The same sequence already accepted.
    let same = sqlx::query(
        "SELECT id, message_id, canonical_sha256 FROM inbound_messages \
         WHERE court_ori = $1 AND order_number = $2 AND sequence = $3 AND outcome = 'ACCEPTED'",
    )
    .bind(court.to_string())
    .bind(number.to_string())
    .bind(seq)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = same {
        let original_message_id: String = row.try_get("message_id")?;
        let sha: Option<String> = row.try_get("canonical_sha256")?;
        if sha.as_deref() == Some(canonical_sha256) {
            return Ok(Decision::SameContent {
                original_id: row.try_get("id")?,
                original_message_id,
            });
        }
        return Ok(Decision::Reject(FieldError::new(
            ErrorCode::SequenceConflict,
            "sequence",
            format!(
                "sequence {sequence} of order {number} was already accepted as message \
                 {original_message_id} with different content"
            ),
        )));
    }

    let (state, applied) = order.map_or((NEW, 0), |o| (o.state.as_str(), o.applied));
    if seq <= applied {
        // Inside the applied prefix but no accepted row: it was purged.
        return Ok(Decision::Reject(FieldError::new(
            ErrorCode::SequenceConflict,
            "sequence",
            format!("sequence {sequence} of order {number} was already used"),
        )));
    }

    // The latest ISSUE/TERMINATE/CANCEL before this sequence: among the
    // messages waiting past a gap (if there is a gap), or else the applied
    // prefix's state.
    let waiting = if seq == applied + 1 {
        None
    } else {
        sqlx::query(
            "SELECT action, sequence FROM inbound_messages \
         WHERE court_ori = $1 AND order_number = $2 AND outcome = 'ACCEPTED' \
           AND sequence > $3 AND sequence < $4 AND action IN ('ISSUE', 'TERMINATE', 'CANCEL') \
         ORDER BY sequence DESC LIMIT 1",
        )
        .bind(court.to_string())
        .bind(number.to_string())
        .bind(applied)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?
    };
    let latest: Option<(Action, i64)> = match waiting {
        Some(row) => {
            let name: String = row.try_get("action")?;
            let action = Action::from_name(&name).unwrap_or(Action::Issue);
            Some((action, row.try_get("sequence")?))
        }
        None => match state {
            ACTIVE => Some((Action::Issue, applied)),
            TERMINATED => Some((Action::Terminate, applied)),
            CANCELLED => Some((Action::Cancel, applied)),
            _ => None,
        },
    };
    Ok(match latest {
        None => Decision::Accept,
        Some((Action::Terminate, at)) => Decision::Reject(closed(number, "terminated", at)),
        Some((Action::Cancel, at)) if action == Action::Issue && seq == at + 1 => Decision::Accept,
        Some((Action::Cancel, at)) => Decision::Reject(closed(number, "cancelled", at)),
        Some((_, at)) if action == Action::Issue => Decision::Reject(FieldError::new(
            ErrorCode::SequenceConflict,
            "sequence",
            format!(
                "order {number} was already issued (by sequence {at} or earlier) and is active"
            ),
        )),
        Some(_) => Decision::Accept,
    })
}

fn closed(number: &str, how: &str, at: i64) -> FieldError {
    FieldError::new(
        ErrorCode::OrderClosed,
        "order.order_number",
        format!("order {number} was {how} (by sequence {at} or earlier)"),
    )
}

/// Stores a rejected message: its row, a `REJECTED` status and a dead letter.
async fn reject(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    facts: Facts,
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
) -> StoreResult<IntakeOutcome> {
    let id = insert_inbound(conn, inbound, "REJECTED", &facts, None).await?;
    let reason = errors.first().map_or(ErrorCode::InvalidFormat, |e| e.code).as_str();
    let mut draft = facts.status(inbound, StatusKind::Rejected);
    draft.errors = errors.clone();
    draft.warnings = warnings;
    let status = insert_status(conn, Stream::First(id), draft).await?;
    let dead_letter = insert_dead_letter(
        conn,
        DeadLetterDraft {
            inbound_id: Some(id),
            delivery_id: None,
            court_ori: inbound.court_ori.clone(),
            message_id: inbound.message_id.clone(),
            order_number: facts.order_number,
            sequence: facts.sequence,
            stage: DeadLetterStage::Validate,
            partner: None,
            reason: reason.to_string(),
            errors,
            body: inbound.body.clone(),
            content_type: inbound.content_type.clone(),
            attempts: 0,
        },
    )
    .await?;
    Ok(IntakeOutcome::Stored { statuses: vec![status], dead_letter: Some(dead_letter) })
}

/// Stores an inbound message with its outcome. Its first status is issued in
/// the same breath (`status_count` starts at 1; see [`Stream::First`]).
async fn insert_inbound(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    outcome: &'static str,
    facts: &Facts,
    duplicate_of: Option<i64>,
) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO inbound_messages (court_ori, message_id, body_sha256, body, content_type, \
         layout, received_at, outcome, order_number, sequence, action, canonical_json, \
         canonical_sha256, duplicate_of, status_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1) RETURNING id",
    )
    .bind(inbound.court_ori.clone())
    .bind(inbound.message_id.clone())
    .bind(inbound.body_sha256.clone())
    .bind(inbound.body.clone())
    .bind(inbound.content_type.clone())
    .bind(inbound.layout.clone())
    .bind(inbound.received_at.timestamp_millis())
    .bind(outcome)
    .bind(facts.order_number.clone())
    .bind(facts.sequence.map(i64::from))
    .bind(facts.action.map(Action::name))
    .bind(facts.canonical.as_ref().map(|c| c.json.clone()))
    .bind(facts.canonical.as_ref().map(|c| c.sha256.clone()))
    .bind(duplicate_of)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Every status of one stored inbound message, by status sequence.
async fn statuses_of(conn: &mut AnyConnection, inbound_id: i64) -> StoreResult<Vec<StoredStatus>> {
    let rows = sqlx::query(
        "SELECT id, message_json FROM statuses WHERE inbound_id = $1 \
         ORDER BY status_sequence, id",
    )
    .bind(inbound_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(status_from_row).collect()
}

/// Records a newly accepted sequence on its order row (`row`, as read
/// before deciding), and applies every accepted message that no longer
/// waits behind a gap, in sequence order.
async fn apply_to_order(
    conn: &mut AnyConnection,
    key: &OrderKey<'_>,
    row: Option<OrderRow>,
    sequence: u32,
    action: Action,
    message: OrderMessage,
) -> StoreResult<()> {
    let now = now_ms();
    let seq = i64::from(sequence);
    let exists = row.is_some();
    let OrderRow { mut state, mut applied, last } =
        row.unwrap_or(OrderRow { state: NEW.to_string(), applied: 0, last: 0 });
    let mut current: Option<OrderMessage> = None;
    if seq == applied + 1 {
        if exists && !action.carries_full_order() {
            let json: Option<String> = sqlx::query_scalar(
                "SELECT order_json FROM orders WHERE court_ori = $1 AND order_number = $2",
            )
            .bind(key.court_ori.to_string())
            .bind(key.order_number.to_string())
            .fetch_one(&mut *conn)
            .await?;
            current = json.as_deref().map(|j| from_json(j, "order")).transpose()?;
        }
        apply(&mut state, &mut current, action, message);
        applied = seq;
        if last > seq {
            // Messages that waited behind this one.
            let waiting = sqlx::query(
                "SELECT sequence, action, canonical_json FROM inbound_messages \
                 WHERE court_ori = $1 AND order_number = $2 AND outcome = 'ACCEPTED' \
                   AND sequence > $3 ORDER BY sequence",
            )
            .bind(key.court_ori.to_string())
            .bind(key.order_number.to_string())
            .bind(seq)
            .fetch_all(&mut *conn)
            .await?;
            for row in &waiting {
                let s: i64 = row.try_get("sequence")?;
                if s != applied + 1 {
                    break;
                }
                let name: String = row.try_get("action")?;
                let json: String = row.try_get("canonical_json")?;
                let action = Action::from_name(&name).unwrap_or(Action::Modify);
                apply(&mut state, &mut current, action, from_json(&json, "canonical order")?);
                applied = s;
            }
        }
    }
    let order_json = current.as_ref().map(to_json).transpose()?;
    let sql = if exists {
        "UPDATE orders SET state = $3, applied_sequence = $4, last_sequence = $5, \
         order_json = COALESCE($6, order_json), updated_at = $7 \
         WHERE court_ori = $1 AND order_number = $2"
    } else {
        "INSERT INTO orders (court_ori, order_number, state, applied_sequence, last_sequence, \
         order_json, clets_nic, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)"
    };
    sqlx::query(sql)
        .bind(key.court_ori.to_string())
        .bind(key.order_number.to_string())
        .bind(state)
        .bind(applied)
        .bind(last.max(seq))
        .bind(order_json)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One message's effect on the order: ISSUE and MODIFY replace the order;
/// TERMINATE, CANCEL and SERVICE keep it and add their own fields.
fn apply(
    state: &mut String,
    current: &mut Option<OrderMessage>,
    action: Action,
    message: OrderMessage,
) {
    match action {
        Action::Issue | Action::Modify => {
            if action == Action::Issue || state == NEW {
                *state = ACTIVE.to_string();
            }
            *current = Some(message);
        }
        Action::Terminate | Action::Cancel | Action::Service => {
            match action {
                Action::Terminate => *state = TERMINATED.to_string(),
                Action::Cancel => *state = CANCELLED.to_string(),
                _ if state == NEW => *state = ACTIVE.to_string(),
                _ => {}
            }
            let order = current.get_or_insert_with(|| message.clone());
            order.action = message.action;
            order.sequence = message.sequence;
            order.sent_at = message.sent_at;
            let from = message.order;
            let to = &mut order.order;
            to.termination_date = from.termination_date.or(to.termination_date);
            to.cancel_reason = from.cancel_reason.or(to.cancel_reason.take());
            to.service = from.service.or(to.service.take());
        }
    }
}
