//! Operator actions on dead letters (ICD §5, §9): replay, edit-and-replay
//! and discard, each with its audit row in the same transaction.
//!
//! # Design note
//! - **What can be replayed.** Only an open dead letter at stage `deliver`
//!   whose delivery is `REJECTED` or `DEAD`. Stage `validate` (rejected at
//!   intake) cannot: it would be rejected again, and ICD §5 has the court
//!   resend the corrected message with a new `message_id` and the same
//!   sequence. An edit of it is refused too, for now: the court resends.
//!   Stage `sequence` (refused when applied: the order was closed or already
//!   issued) cannot either: the order would refuse it again. Both can be
//!   discarded (closed) with a reason.
//! - **Already accepted.** A replay is refused when the partner accepted the
//!   message: the delivery is `ACCEPTED`, or one of its attempts was answered
//!   with an acceptance after it was given up (a late answer).
//! - **Replay** sets the delivery `PENDING`, due now, attempts 0,
//!   `first_attempt_at` cleared (so the retry max age counts from its next
//!   attempt, and it gets three attempts again) and `replayed_at` now, and
//!   keeps its revision, so the partner sees the same MCN or
//!   Idempotency-Key. That is what a `DEAD` delivery needs (retries ran
//!   out); after a permanent rejection, CARPOS answers the repeated MCN with
//!   its remembered `REJ` (ICD §6), so the fix for a rejection is an edit.
//! - **Edit-and-replay** stores the edited canonical order as the next
//!   revision (table `revisions`: who, when, why, and the order state with the
//!   edit applied, for the HTTP partners) and points the delivery's
//!   `revision` at it; the original stays in `inbound_messages`. An edit
//!   cannot change the court, order number, sequence or action. The revision
//!   is one MCN digit, so there are at most 9 edits. An edit is per delivery
//!   (one partner); other partners keep their revision. It does not change
//!   `orders.order_json` nor the state later messages carry.
//! - **Images.** An edit refers to the order's image like every stored
//!   order (`mime_type`, `sha256`, `size`); it must name an image the store
//!   keeps, as kept, or it is refused. An edit cannot bring new bytes.
//! - **Discard** sets a `REJECTED` or `DEAD` delivery `DISCARDED`, which, like
//!   `ACCEPTED`, releases the later sequences. A discarded CLETS EPO (ISSUE)
//!   leaves CARPOS without the record, so each later `PENDING` CLETS delivery
//!   of the order, up to the next ISSUE (a re-entry), becomes `DEAD` with a
//!   `DEAD_LETTERED` status (`UNKNOWN_ORDER`) and a dead letter. Later
//!   arrivals go out without a NIC, and the CLETS adapter dead-letters them
//!   the same way.
//! - **Resolution.** The dead letter acted on, and any other open one of the
//!   same delivery, is resolved (`resolved_at`, `resolution`, `resolved_by`)
//!   and cannot be acted on again. A replay that fails again makes a new one.
//! - **Races.** Every change is conditional on what was read (`… AND state
//!   IN ('REJECTED', 'DEAD')`, `… AND resolved_at IS NULL`); when a concurrent
//!   action won, this one is refused and its transaction rolled back.

use serde_json::{Value as Json, json};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::intake::apply_edit;
use super::rows::{
    DeadLetterDraft, Params, StatusDraft, Stream, Value, from_json, from_ms, insert_dead_letter, insert_status, now_ms,
    parse_partner, text, to_json, to_ms, to_u32,
};
use crate::model::{Action, ErrorCode, FieldError, OrderMessage, PartnerId, StatusKind};
use crate::store::{
    ActionDone, ActionError, AuditAction, AuditEntry, AuditFilter, DeadLetterStage, OperatorAction, Produced, Refusal,
    StoreError, StoreResult,
};

/// The MCN keeps the revision in one digit (ICD §5).
const MAX_REVISION: u32 = 9;

/// An open dead letter, as an action needs it.
struct Open {
    id: i64,
    stage: String,
    delivery_id: Option<i64>,
}

/// The delivery of a dead letter, with what the actions decide on.
struct Target {
    id: i64,
    partner: PartnerId,
    state: String,
    revision: u32,
    court_ori: String,
    order_number: String,
    sequence: u32,
    action: String,
    /// Attempts answered with an acceptance (late ones included).
    accepted_attempts: i64,
}

/// Replays dead letter `id` (see the module note).
pub(super) async fn replay(
    conn: &mut AnyConnection,
    id: i64,
    by: &OperatorAction,
    bulk: bool,
) -> Result<ActionDone, ActionError> {
    check_operator(by)?;
    let open = open_dead_letter(conn, id).await?;
    let t = replayable(conn, &open).await?;
    let now = now_ms();
    requeue(conn, &t, t.revision, now).await?;
    resolve(conn, &open, "REPLAYED", by, now).await?;
    let action = if bulk {
        AuditAction::BulkReplay
    } else {
        AuditAction::Replay
    };
    let details = json!({
        "delivery_id": t.id, "partner": t.partner.wire_name(), "revision": t.revision, "previous_state": t.state,
    });
    let audit_id = write_audit(conn, action, id, by, &details, now).await?;
    Ok(ActionDone {
        dead_letter_id: id,
        delivery_id: Some(t.id),
        revision: Some(t.revision),
        produced: Produced::default(),
        audit_id,
    })
}

/// Replays dead letter `id` with `order` as the next revision.
pub(super) async fn edit_and_replay(
    conn: &mut AnyConnection,
    id: i64,
    by: &OperatorAction,
    order: OrderMessage,
) -> Result<ActionDone, ActionError> {
    check_operator(by)?;
    let open = open_dead_letter(conn, id).await?;
    let t = replayable(conn, &open).await?;
    let mut errors = identity_errors(&t, &order);
    errors.extend(image_errors(conn, &order).await?);
    if !errors.is_empty() {
        return Err(Refusal::InvalidEdit(errors).into());
    }
    if t.revision >= MAX_REVISION {
        let why = format!("the message is at revision {MAX_REVISION}, the last an MCN can carry");
        return Err(Refusal::NotReplayable(why).into());
    }
    let revision = t.revision + 1;
    let action = Action::from_name(&t.action).ok_or_else(|| StoreError::Corrupt(format!("action {:?}", t.action)))?;
    let state = apply_edit(current_state(conn, t.id).await?, action, order.clone());
    let now = now_ms();
    sqlx::query(
        "INSERT INTO revisions (delivery_id, revision, canonical_json, state_json, dead_letter_id, edited_by, \
         edited_at, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.id)
    .bind(i64::from(revision))
    .bind(to_json(&order)?)
    .bind(to_json(&state)?)
    .bind(id)
    .bind(text(&by.operator))
    .bind(now)
    .bind(text(&by.reason))
    .execute(&mut *conn)
    .await?;
    requeue(conn, &t, revision, now).await?;
    resolve(conn, &open, "EDIT_REPLAYED", by, now).await?;
    let details = json!({
        "delivery_id": t.id, "partner": t.partner.wire_name(), "revision": revision,
        "previous_revision": t.revision, "previous_state": t.state,
    });
    let audit_id = write_audit(conn, AuditAction::EditReplay, id, by, &details, now).await?;
    Ok(ActionDone {
        dead_letter_id: id,
        delivery_id: Some(t.id),
        revision: Some(revision),
        produced: Produced::default(),
        audit_id,
    })
}

/// Discards dead letter `id` (see the module note).
pub(super) async fn discard(conn: &mut AnyConnection, id: i64, by: &OperatorAction) -> Result<ActionDone, ActionError> {
    check_operator(by)?;
    let open = open_dead_letter(conn, id).await?;
    let now = now_ms();
    let mut done = ActionDone {
        dead_letter_id: id,
        ..ActionDone::default()
    };
    let mut details = json!({});
    if let Some(t) = discardable(conn, &open).await? {
        let changed = sqlx::query(
            "UPDATE deliveries SET state = 'DISCARDED', updated_at = $2 \
             WHERE id = $1 AND state IN ('REJECTED', 'DEAD')",
        )
        .bind(t.id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if changed.rows_affected() == 0 {
            return Err(Refusal::NotReplayable("its delivery changed meanwhile".into()).into());
        }
        super::deliveries::pass_turn(conn, &t.court_ori, &t.order_number, &t.partner).await?;
        details = json!({ "delivery_id": t.id, "partner": t.partner.wire_name(), "previous_state": t.state });
        done.delivery_id = Some(t.id);
        done.revision = Some(t.revision);
        if t.partner == PartnerId::Clets && t.action == Action::Issue.name() {
            unknown_order_after(conn, &t, &mut done.produced).await?;
            let ids: Vec<i64> = done.produced.dead_letters.iter().map(|d| d.id).collect();
            details["unknown_order_dead_letters"] = json!(ids);
        }
    }
    resolve(conn, &open, "DISCARDED", by, now).await?;
    done.audit_id = write_audit(conn, AuditAction::Discard, id, by, &details, now).await?;
    Ok(done)
}

fn check_operator(by: &OperatorAction) -> Result<(), Refusal> {
    if by.operator.trim().is_empty() || by.reason.trim().is_empty() {
        return Err(Refusal::ReasonRequired);
    }
    Ok(())
}

async fn open_dead_letter(conn: &mut AnyConnection, id: i64) -> Result<Open, ActionError> {
    let row = sqlx::query("SELECT stage, delivery_id, resolution FROM dead_letters WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Err(Refusal::NotFound(id).into());
    };
    if let Some(kind) = row.try_get::<Option<String>, _>("resolution")? {
        return Err(Refusal::Resolved { id, kind }.into());
    }
    Ok(Open {
        id,
        stage: row.try_get("stage")?,
        delivery_id: row.try_get("delivery_id")?,
    })
}

/// The delivery of `open` when it may be replayed; else why not.
async fn replayable(conn: &mut AnyConnection, open: &Open) -> Result<Target, ActionError> {
    let refuse = |why: &str| -> Result<Target, ActionError> { Err(Refusal::NotReplayable(why.to_string()).into()) };
    if open.stage == DeadLetterStage::Validate.as_str() {
        return refuse(
            "the message was rejected at validation and would be rejected again; the court resends it \
             corrected, with a new message_id and the same sequence (ICD §5)",
        );
    }
    if open.stage == DeadLetterStage::Sequence.as_str() {
        return refuse(
            "the order refused the message when its turn came (closed or already issued) and would refuse \
             it again; discard it",
        );
    }
    let Some(delivery_id) = open.delivery_id else {
        return refuse("it has no delivery");
    };
    let Some(t) = target(conn, delivery_id).await? else {
        return refuse("its delivery was purged");
    };
    if t.state == "ACCEPTED" || t.accepted_attempts > 0 {
        return Err(Refusal::AlreadyAccepted(t.partner.wire_name()).into());
    }
    if t.state != "REJECTED" && t.state != "DEAD" {
        return refuse(&format!("its delivery is {}, not REJECTED or DEAD", t.state));
    }
    Ok(t)
}

/// The delivery of `open` when discarding changes it (`REJECTED` or `DEAD`).
async fn discardable(conn: &mut AnyConnection, open: &Open) -> Result<Option<Target>, ActionError> {
    let Some(delivery_id) = open.delivery_id else {
        return Ok(None);
    };
    Ok(target(conn, delivery_id)
        .await?
        .filter(|t| t.state == "REJECTED" || t.state == "DEAD"))
}

async fn target(conn: &mut AnyConnection, delivery_id: i64) -> StoreResult<Option<Target>> {
    let row = sqlx::query(
        "SELECT d.id, d.partner, d.state, d.revision, d.court_ori, d.order_number, d.sequence, i.action, \
                (SELECT COUNT(*) FROM partner_attempts a \
                 WHERE a.delivery_id = d.id AND a.outcome = 'ACCEPTED') AS accepted_attempts \
         FROM deliveries d JOIN inbound_messages i ON i.id = d.inbound_id WHERE d.id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(target_from_row).transpose()
}

fn target_from_row(row: &AnyRow) -> StoreResult<Target> {
    Ok(Target {
        id: row.try_get("id")?,
        partner: parse_partner(&row.try_get::<String, _>("partner")?)?,
        state: row.try_get("state")?,
        revision: to_u32(row.try_get("revision")?, "revision")?,
        court_ori: row.try_get("court_ori")?,
        order_number: row.try_get("order_number")?,
        sequence: to_u32(row.try_get("sequence")?, "sequence")?,
        action: row.try_get::<Option<String>, _>("action")?.unwrap_or_default(),
        accepted_attempts: row.try_get("accepted_attempts")?,
    })
}

/// An edit refers to its image (`mime_type`, `sha256`, `size`): it must be
/// one the store keeps, as kept. An edit cannot bring new image bytes.
async fn image_errors(conn: &mut AnyConnection, order: &OrderMessage) -> StoreResult<Vec<FieldError>> {
    let Some(image) = &order.image else {
        return Ok(Vec::new());
    };
    let row = sqlx::query("SELECT size FROM images WHERE sha256 = $1")
        .bind(text(&image.sha256))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        let why = format!("image {} is not one the store keeps", image.sha256);
        return Ok(vec![FieldError::new(ErrorCode::InvalidFormat, "image.sha256", why)]);
    };
    // The bytes are known by their SHA-256, so only the size is checked: two
    // orders may declare the same bytes with their own media type, and each
    // keeps its own declaration.
    let size: i64 = row.try_get("size")?;
    if u64::try_from(size).ok() != Some(image.size) {
        let why = format!("image {} is kept with {size} bytes", image.sha256);
        return Ok(vec![FieldError::new(ErrorCode::InvalidFormat, "image", why)]);
    }
    Ok(Vec::new())
}

/// What an edit may not change: the message's identity.
fn identity_errors(t: &Target, order: &OrderMessage) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |same: bool, field: &str, what: &str| {
        if !same {
            let why = format!("an edit cannot change the {what}");
            errors.push(FieldError::new(ErrorCode::InvalidFormat, field, why));
        }
    };
    check(order.court_ori == t.court_ori, "court_ori", "court ORI");
    check(
        order.order_number() == Some(t.order_number.as_str()),
        "order.order_number",
        "order number",
    );
    check(order.sequence == Some(t.sequence), "sequence", "sequence");
    check(
        order.action.map(Action::name) == Some(t.action.as_str()),
        "action",
        "action",
    );
    errors
}

/// The whole order as the delivery's current revision leaves it.
async fn current_state(conn: &mut AnyConnection, delivery_id: i64) -> StoreResult<OrderMessage> {
    let json: String = sqlx::query_scalar(
        "SELECT COALESCE(r.state_json, i.state_json, i.canonical_json) FROM deliveries d \
         JOIN inbound_messages i ON i.id = d.inbound_id \
         LEFT JOIN revisions r ON r.delivery_id = d.id AND r.revision = d.revision WHERE d.id = $1",
    )
    .bind(delivery_id)
    .fetch_one(&mut *conn)
    .await?;
    from_json(&json, "order state")
}

/// Puts a given-up delivery back in line at `revision`, due now.
async fn requeue(conn: &mut AnyConnection, t: &Target, revision: u32, now: i64) -> Result<(), ActionError> {
    let changed = sqlx::query(
        "UPDATE deliveries SET state = 'PENDING', attempts = 0, first_attempt_at = NULL, revision = $2, \
         next_attempt_at = $3, replayed_at = $3, last_error = NULL, updated_at = $3 \
         WHERE id = $1 AND state IN ('REJECTED', 'DEAD')",
    )
    .bind(t.id)
    .bind(i64::from(revision))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(Refusal::NotReplayable("its delivery changed meanwhile".into()).into());
    }
    Ok(())
}

/// Resolves `open`, and any other open dead letter of its delivery.
async fn resolve(
    conn: &mut AnyConnection,
    open: &Open,
    kind: &str,
    by: &OperatorAction,
    now: i64,
) -> Result<(), ActionError> {
    let set = "UPDATE dead_letters SET resolved_at = $2, resolution = $3, resolved_by = $4";
    let changed = sqlx::query(&format!("{set} WHERE id = $1 AND resolved_at IS NULL"))
        .bind(open.id)
        .bind(now)
        .bind(kind.to_string())
        .bind(text(&by.operator))
        .execute(&mut *conn)
        .await?;
    if changed.rows_affected() == 0 {
        let kind = "by a concurrent action".to_string();
        return Err(Refusal::Resolved { id: open.id, kind }.into());
    }
    if let Some(delivery_id) = open.delivery_id {
        sqlx::query(&format!("{set} WHERE delivery_id = $1 AND resolved_at IS NULL"))
            .bind(delivery_id)
            .bind(now)
            .bind(kind.to_string())
            .bind(text(&by.operator))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn write_audit(
    conn: &mut AnyConnection,
    action: AuditAction,
    dead_letter_id: i64,
    by: &OperatorAction,
    details: &Json,
    now: i64,
) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit (at, operator, action, dead_letter_id, reason, details_json) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(now)
    .bind(text(&by.operator))
    .bind(action.as_str())
    .bind(dead_letter_id)
    .bind(text(&by.reason))
    .bind(to_json(details)?)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// A discarded EPO: the order's later pending CLETS deliveries, up to the
/// next ISSUE, are dead-lettered `UNKNOWN_ORDER`.
async fn unknown_order_after(conn: &mut AnyConnection, epo: &Target, produced: &mut Produced) -> StoreResult<()> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT d.id FROM deliveries d \
         WHERE d.court_ori = $1 AND d.order_number = $2 AND d.partner = $3 AND d.sequence > $4 \
           AND d.state = 'PENDING' \
           AND NOT EXISTS (SELECT 1 FROM inbound_messages j \
                           WHERE j.court_ori = $1 AND j.order_number = $2 AND j.outcome = 'ACCEPTED' \
                             AND j.action = 'ISSUE' AND j.sequence > $4 AND j.sequence <= d.sequence) \
         ORDER BY d.sequence",
    )
    .bind(epo.court_ori.clone())
    .bind(epo.order_number.clone())
    .bind(epo.partner.wire_name())
    .bind(i64::from(epo.sequence))
    .fetch_all(&mut *conn)
    .await?;
    let reason = format!(
        "the order's EPO (sequence {}) was discarded by an operator: CARPOS has no record of order {}",
        epo.sequence, epo.order_number
    );
    for id in ids {
        give_up(conn, id, ErrorCode::UnknownOrder, &reason, produced).await?;
    }
    Ok(())
}

/// Makes a pending delivery `DEAD`: a `DEAD_LETTERED` status with `code`
/// and a dead letter at stage `deliver`.
async fn give_up(
    conn: &mut AnyConnection,
    delivery_id: i64,
    code: ErrorCode,
    reason: &str,
    produced: &mut Produced,
) -> StoreResult<()> {
    let changed = sqlx::query(
        "UPDATE deliveries SET state = 'DEAD', last_error = $2, updated_at = $3 WHERE id = $1 AND state = 'PENDING'",
    )
    .bind(delivery_id)
    .bind(text(reason))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    if changed.rows_affected() == 0 {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT d.inbound_id, d.partner, d.attempts, d.court_ori, d.order_number, d.sequence, \
                i.message_id, i.body, i.content_type \
         FROM deliveries d JOIN inbound_messages i ON i.id = d.inbound_id WHERE d.id = $1",
    )
    .bind(delivery_id)
    .fetch_one(&mut *conn)
    .await?;
    let inbound_id: i64 = row.try_get("inbound_id")?;
    let partner = parse_partner(&row.try_get::<String, _>("partner")?)?;
    let court_ori: String = row.try_get("court_ori")?;
    let message_id: String = row.try_get("message_id")?;
    let order_number: String = row.try_get("order_number")?;
    let sequence = to_u32(row.try_get("sequence")?, "sequence")?;
    let error = FieldError::new(code, "order.order_number", reason);
    let mut status = StatusDraft::new(
        &court_ori,
        &message_id,
        Some(&order_number),
        Some(sequence),
        StatusKind::DeadLettered,
    );
    status.partner = Some(partner.clone());
    status.errors = vec![error.clone()];
    produced
        .statuses
        .push(insert_status(conn, Stream::Next(inbound_id), status).await?);
    let dead_letter = DeadLetterDraft {
        inbound_id: Some(inbound_id),
        delivery_id: Some(delivery_id),
        court_ori,
        message_id,
        order_number: Some(order_number),
        sequence: Some(sequence),
        stage: DeadLetterStage::Deliver,
        partner: Some(partner),
        reason: code.as_str().to_string(),
        errors: vec![error],
        body: row.try_get("body")?,
        content_type: row.try_get("content_type")?,
        attempts: to_u32(row.try_get("attempts")?, "attempts")?,
    };
    produced.dead_letters.push(insert_dead_letter(conn, dead_letter).await?);
    Ok(())
}

/// Audit rows matching every given filter, newest first (100 by default).
pub(super) async fn audit(conn: &mut AnyConnection, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
    let mut params = Params::default();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(id) = filter.dead_letter_id {
        conditions.push(format!("dead_letter_id = {}", params.push(Value::Int(id))));
    }
    if let Some(operator) = &filter.operator {
        conditions.push(format!("operator = {}", params.push(Value::Text(operator.clone()))));
    }
    if let Some(since) = filter.since {
        conditions.push(format!("at >= {}", params.push(Value::Int(to_ms(since)))));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("at < {}", params.push(Value::Int(to_ms(until)))));
    }
    let limit = params.push(Value::Int(i64::from(filter.limit.unwrap_or(100))));
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT id, at, operator, action, dead_letter_id, reason, details_json FROM audit {filter_sql} \
         ORDER BY id DESC LIMIT {limit}"
    );
    let rows = params.bind(&sql).fetch_all(&mut *conn).await?;
    rows.iter().map(audit_from_row).collect()
}

fn audit_from_row(row: &AnyRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: from_ms(row.try_get("at")?)?,
        operator: row.try_get("operator")?,
        action: row.try_get("action")?,
        dead_letter_id: row.try_get("dead_letter_id")?,
        reason: row.try_get("reason")?,
        details: from_json(&row.try_get::<String, _>("details_json")?, "audit details")?,
    })
}
