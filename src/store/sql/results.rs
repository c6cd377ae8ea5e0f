//! Recording partner results, many at a time ([`record`]).
//!
//! # Design note
//! What one result does comes from the pure rules
//! ([`record_outcome`]): record the attempt, finish or reschedule the
//! delivery, set the order's NIC, add a status, make a dead letter. This
//! module carries those effects out for a whole batch with a few
//! statements, not a few per result: on PostgreSQL each statement is a
//! round trip on the single writer's connection, and those round trips were
//! most of the writer's time.
//!
//! 1. **Read** every delivery of the batch in one query (locked
//!    `FOR UPDATE OF d` on PostgreSQL, so a claim cannot take it between
//!    this check of the fencing token and the update).
//! 2. **Plan**: for each result, in order, the rules' effects, gathered by
//!    kind. A result under an older fencing token (the lease was taken over)
//!    only records its attempt, as `STALE`.
//! 3. **Write**, in this order: every attempt (one multi-row insert), the
//!    finished and the rescheduled deliveries (one `UPDATE … FROM` each),
//!    the lanes' next turns ([`pass_turn`](super::deliveries) for all
//!    accepted ones, one statement), the NICs, the statuses (one counter
//!    update for all the messages concerned, numbering each message's new
//!    statuses in result order, then one multi-row insert), and the dead
//!    letters (rare; one by one, each needs the original bytes).
//!
//! A delivery reported twice in one batch (claimed again after its lease
//! ran out while the first attempt was still running) is recorded in
//! rounds: the second report is planned only after the first is written,
//! so it sees the delivery as the first left it, exactly as one by one.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;
use sqlx::Row;

use super::Backend;
use super::rows::{
    DeadLetterDraft, Params, StatusDraft, Value, insert_dead_letter, now_ms, parse_partner, status_message, text_opt,
    to_json, to_ms, to_u32,
};
use crate::model::{Action, PartnerId};
use crate::order::delivery::{DeliveryEffect, DeliveryReport, DeliveryState, record_outcome};
use crate::store::{
    DeadLetterStage, DeliveryOutcome, DeliveryResult, PartnerAttempt, Produced, StoreError, StoreResult, StoredStatus,
};

/// Rows per multi-row statement: well under both backends' limits on
/// bound values (about 10 values a row).
const ROWS_PER_STATEMENT: usize = 200;

/// Records `results` and adds what they produced; see the module note.
pub(super) async fn record(
    conn: &mut AnyConnection,
    backend: Backend,
    results: Vec<DeliveryResult>,
    produced: &mut Produced,
) -> StoreResult<()> {
    let mut rest = results;
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (round, later): (Vec<_>, Vec<_>) = rest.into_iter().partition(|r| seen.insert(r.delivery_id));
        record_round(conn, backend, round, produced).await?;
        rest = later;
    }
    Ok(())
}

/// Records results of distinct deliveries.
async fn record_round(
    conn: &mut AnyConnection,
    backend: Backend,
    results: Vec<DeliveryResult>,
    produced: &mut Produced,
) -> StoreResult<()> {
    let ids: Vec<i64> = results.iter().map(|r| r.delivery_id).collect();
    let stored = load(conn, backend, &ids).await?;
    let mut plan = Plan::default();
    for result in results {
        match stored.get(&result.delivery_id) {
            Some(d) => plan.add(d, result),
            None => tracing::warn!(
                delivery_id = result.delivery_id,
                "Delivery result for an unknown delivery; ignored."
            ),
        }
    }
    plan.write(conn, produced).await
}

/// A delivery row as recording reads it: typed, a corrupt value an error.
struct StoredDelivery {
    inbound_id: i64,
    partner: PartnerId,
    state: DeliveryState,
    attempts: u32,
    court_ori: String,
    order_number: String,
    sequence: u32,
    lease_token: i64,
    message_id: String,
    action: Action,
}

impl StoredDelivery {
    fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<(i64, StoredDelivery)> {
        let id: i64 = row.try_get("id")?;
        let state: String = row.try_get("state")?;
        let action: String = row.try_get("action")?;
        let d = StoredDelivery {
            inbound_id: row.try_get("inbound_id")?,
            partner: parse_partner(&row.try_get::<String, _>("partner")?)?,
            state: DeliveryState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery {id}: unknown state {state:?}")))?,
            attempts: to_u32(row.try_get("attempts")?, "attempts")?,
            court_ori: row.try_get("court_ori")?,
            order_number: row.try_get("order_number")?,
            sequence: to_u32(row.try_get("sequence")?, "sequence")?,
            lease_token: row.try_get("lease_token")?,
            message_id: row.try_get("message_id")?,
            action: Action::from_name(&action)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery {id}: unknown action {action:?}")))?,
        };
        Ok((id, d))
    }
}

/// Reads the deliveries `ids`, locked on PostgreSQL.
async fn load(conn: &mut AnyConnection, backend: Backend, ids: &[i64]) -> StoreResult<HashMap<i64, StoredDelivery>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF d",
        Backend::Sqlite => "",
    };
    let mut stored = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut params = Params::default();
        let list: Vec<String> = chunk.iter().map(|id| params.push(Value::Int(*id))).collect();
        let sql = format!(
            "SELECT d.id, d.inbound_id, d.partner, d.state, d.attempts, d.court_ori, d.order_number, \
                    d.sequence, d.lease_token, i.message_id, i.action \
             FROM deliveries d JOIN inbound_messages i ON i.id = d.inbound_id \
             WHERE d.id IN ({}) ORDER BY d.id{lock}",
            list.join(", ")
        );
        for row in params.bind(&sql).fetch_all(&mut *conn).await? {
            let (id, d) = StoredDelivery::from_row(&row)?;
            stored.insert(id, d);
        }
    }
    Ok(stored)
}

/// An attempt to insert.
struct AttemptRow {
    delivery_id: i64,
    attempt: PartnerAttempt,
    outcome: &'static str,
}

/// A delivery update: finished (`state` set) or rescheduled (`next_at` set).
struct DeliveryUpdate {
    id: i64,
    state: Option<DeliveryState>,
    next_at: Option<i64>,
    attempts: u32,
    last_error: Option<String>,
    attempted_at: i64,
}

/// The effects of a batch, gathered by kind.
#[derive(Default)]
struct Plan {
    attempts: Vec<AttemptRow>,
    finished: Vec<DeliveryUpdate>,
    rescheduled: Vec<DeliveryUpdate>,
    /// Lanes (court, order, partner) whose delivery was accepted.
    turns: Vec<(String, String, PartnerId)>,
    nics: Vec<(String, String, Option<String>)>,
    /// Statuses, in result order, with the message whose counter numbers them.
    statuses: Vec<(i64, StatusDraft)>,
    dead_letters: Vec<DeadLetterDraft>,
}

impl Plan {
    /// Plans one result for stored delivery `d`.
    fn add(&mut self, d: &StoredDelivery, result: DeliveryResult) {
        let DeliveryResult {
            delivery_id,
            lease_token,
            attempt,
            outcome,
        } = result;
        if d.lease_token != lease_token {
            metrics::counter!("porter_delivery_stale_results_total").increment(1);
            tracing::warn!(
                delivery_id,
                lease_token,
                current_token = d.lease_token,
                "Result under a lease another broker has taken since; recorded the attempt only."
            );
            self.attempts.push(AttemptRow {
                delivery_id,
                attempt,
                outcome: "STALE",
            });
            return;
        }
        let attempted_at = to_ms(attempt.at);
        let step = record_outcome(d.state, &d.partner, d.action, &DeliveryReport::from(&outcome));
        let mut attempt = Some(attempt);
        for effect in step.effects {
            match effect {
                DeliveryEffect::RecordAttempt { outcome } => {
                    if let Some(attempt) = attempt.take() {
                        self.attempts.push(AttemptRow {
                            delivery_id,
                            attempt,
                            outcome,
                        });
                    }
                }
                DeliveryEffect::IgnoreLate { state } => tracing::warn!(
                    delivery_id,
                    state = state.name(),
                    "Delivery result for a finished delivery; recorded the attempt only."
                ),
                DeliveryEffect::Finish { state, last_error } => {
                    if state == DeliveryState::Accepted {
                        self.turns
                            .push((d.court_ori.clone(), d.order_number.clone(), d.partner.clone()));
                    }
                    self.finished.push(DeliveryUpdate {
                        id: delivery_id,
                        state: Some(state),
                        next_at: None,
                        attempts: d.attempts + 1,
                        last_error,
                        attempted_at,
                    });
                }
                DeliveryEffect::Reschedule { last_error } => {
                    let next_at = match &outcome {
                        DeliveryOutcome::Retry { next_attempt_at, .. } => to_ms(*next_attempt_at),
                        // The rules reschedule only a retry; anything else
                        // is due at once rather than lost.
                        _ => now_ms(),
                    };
                    self.rescheduled.push(DeliveryUpdate {
                        id: delivery_id,
                        state: None,
                        next_at: Some(next_at),
                        attempts: d.attempts + 1,
                        last_error: Some(last_error),
                        attempted_at,
                    });
                }
                DeliveryEffect::SetNic(nic) => self.nics.push((d.court_ori.clone(), d.order_number.clone(), nic)),
                DeliveryEffect::Status { kind, errors } => {
                    let mut draft = StatusDraft::new(
                        &d.court_ori,
                        &d.message_id,
                        Some(&d.order_number),
                        Some(d.sequence),
                        kind,
                    );
                    draft.partner = Some(d.partner.clone());
                    draft.errors = errors;
                    match &outcome {
                        DeliveryOutcome::Accepted {
                            record_ids, warnings, ..
                        } => {
                            draft.partner_record_ids = record_ids.clone();
                            draft.warnings = warnings.clone();
                        }
                        DeliveryOutcome::Rejected { warnings, .. } => draft.warnings = warnings.clone(),
                        _ => {}
                    }
                    self.statuses.push((d.inbound_id, draft));
                }
                DeliveryEffect::DeadLetter { reason, errors } => self.dead_letters.push(DeadLetterDraft {
                    inbound_id: Some(d.inbound_id),
                    delivery_id: Some(delivery_id),
                    court_ori: d.court_ori.clone(),
                    message_id: d.message_id.clone(),
                    order_number: Some(d.order_number.clone()),
                    sequence: Some(d.sequence),
                    stage: DeadLetterStage::Deliver,
                    partner: Some(d.partner.clone()),
                    reason: reason.as_str().to_string(),
                    errors,
                    body: Vec::new(),
                    content_type: String::new(),
                    attempts: d.attempts + 1,
                }),
            }
        }
    }

    /// Carries the plan out; see the module note for the order.
    async fn write(self, conn: &mut AnyConnection, produced: &mut Produced) -> StoreResult<()> {
        insert_attempts(conn, &self.attempts).await?;
        update_deliveries(conn, &self.finished).await?;
        update_deliveries(conn, &self.rescheduled).await?;
        super::deliveries::pass_turns(conn, &self.turns, ROWS_PER_STATEMENT).await?;
        for (court_ori, order_number, nic) in &self.nics {
            set_nic(conn, court_ori, order_number, nic.as_deref()).await?;
        }
        produced.statuses.extend(insert_statuses(conn, self.statuses).await?);
        for mut dl in self.dead_letters {
            if let Some(inbound_id) = dl.inbound_id {
                (dl.body, dl.content_type) = original_body(conn, inbound_id).await?;
            }
            produced.dead_letters.push(insert_dead_letter(conn, dl).await?);
        }
        Ok(())
    }
}

/// Inserts every attempt, a multi-row statement per chunk.
async fn insert_attempts(conn: &mut AnyConnection, rows: &[AttemptRow]) -> StoreResult<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut params = Params::default();
        let values: Vec<String> = chunk
            .iter()
            .map(|r| {
                let a = &r.attempt;
                let cols = [
                    params.push(Value::Int(r.delivery_id)),
                    params.push(Value::Int(to_ms(a.at))),
                    params.push(Value::Bytes(a.request.clone())),
                    params.push(Value::text_opt(a.image.as_ref().map(|i| i.sha256.as_str()))),
                    params.push(Value::int_opt(
                        a.image.as_ref().map(|i| i64::try_from(i.offset).unwrap_or(i64::MAX)),
                    )),
                    params.push(Value::text_opt(a.response.as_deref())),
                    params.push(Value::text_opt(a.error.as_deref())),
                    params.push(Value::Text(r.outcome.to_string())),
                ];
                format!("({})", cols.join(", "))
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO partner_attempts (delivery_id, attempted_at, request, image_sha256, image_offset, \
             response, error, outcome) VALUES {}",
            values.join(", ")
        );
        params.bind(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Applies delivery updates that are all finishes or all reschedules: each
/// counts the attempt, keeps `last_error`, sets `first_attempt_at` unless
/// set, and ends the lease; a finish sets the state, a reschedule the next
/// attempt's time.
async fn update_deliveries(conn: &mut AnyConnection, updates: &[DeliveryUpdate]) -> StoreResult<()> {
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        let Some(first) = chunk.first() else { continue };
        let finishing = first.state.is_some();
        let mut params = Params::default();
        let now = params.push(Value::Int(now_ms()));
        let rows: Vec<String> = chunk
            .iter()
            .map(|u| {
                let changed = match (u.state, u.next_at) {
                    (Some(state), _) => params.push(Value::Text(state.name().to_string())),
                    (None, next_at) => params.push(Value::Int(next_at.unwrap_or_default())),
                };
                format!(
                    "SELECT {} AS id, {changed} AS changed, {} AS attempts, {} AS last_error, {} AS attempted_at",
                    params.push(Value::Int(u.id)),
                    params.push(Value::Int(i64::from(u.attempts))),
                    params.push(Value::text_opt(u.last_error.as_deref())),
                    params.push(Value::Int(u.attempted_at)),
                )
            })
            .collect();
        let set = match finishing {
            true => "state = v.changed",
            false => "next_attempt_at = v.changed",
        };
        let sql = format!(
            "UPDATE deliveries SET {set}, attempts = v.attempts, last_error = v.last_error, updated_at = {now}, \
             first_attempt_at = COALESCE(deliveries.first_attempt_at, v.attempted_at), \
             lease_owner = NULL, lease_until = NULL \
             FROM ({}) AS v WHERE deliveries.id = v.id",
            rows.join(" UNION ALL ")
        );
        params.bind(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stores the statuses, numbering each message's new ones from its counter
/// in the order given; returns them in that order.
async fn insert_statuses(conn: &mut AnyConnection, drafts: Vec<(i64, StatusDraft)>) -> StoreResult<Vec<StoredStatus>> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    // How many new statuses each message gets, in first-seen order.
    let mut counts: Vec<(i64, i64)> = Vec::new();
    for (inbound_id, _) in &drafts {
        match counts.iter_mut().find(|(id, _)| id == inbound_id) {
            Some((_, n)) => *n += 1,
            None => counts.push((*inbound_id, 1)),
        }
    }
    let mut next: HashMap<i64, u32> = HashMap::with_capacity(counts.len());
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut params = Params::default();
        let rows: Vec<String> = chunk
            .iter()
            .map(|(id, n)| {
                format!(
                    "SELECT {} AS message_row, {} AS n",
                    params.push(Value::Int(*id)),
                    params.push(Value::Int(*n))
                )
            })
            .collect();
        let sql = format!(
            "UPDATE inbound_messages SET status_count = status_count + v.n FROM ({}) AS v \
             WHERE inbound_messages.id = v.message_row RETURNING id, status_count",
            rows.join(" UNION ALL ")
        );
        for row in params.bind(&sql).fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get("id")?;
            let count: i64 = row.try_get("status_count")?;
            let n = chunk.iter().find(|(i, _)| *i == id).map_or(0, |(_, n)| *n);
            next.insert(id, to_u32(count - n + 1, "status_count")?);
        }
    }
    let mut statuses = Vec::with_capacity(drafts.len());
    for (inbound_id, draft) in drafts {
        let number = next
            .get_mut(&inbound_id)
            .ok_or_else(|| StoreError::Corrupt(format!("inbound message {inbound_id} is missing")))?;
        let status_sequence = *number;
        *number += 1;
        statuses.push((inbound_id, status_message(draft, status_sequence)));
    }
    let mut stored = Vec::with_capacity(statuses.len());
    for chunk in statuses.chunks(ROWS_PER_STATEMENT) {
        let mut params = Params::default();
        let created = params.push(Value::Int(now_ms()));
        let mut values = Vec::with_capacity(chunk.len());
        for (inbound_id, m) in chunk {
            let cols = [
                params.push(Value::Text(m.court_ori.clone())),
                params.push(Value::Text(m.correlates_to.clone())),
                params.push(Value::Int(*inbound_id)),
                params.push(Value::Int(i64::from(m.status_sequence))),
                params.push(Value::Text(m.status.as_str().to_string())),
                params.push(Value::text_opt(m.partner.as_ref().map(|p| p.wire_name()).as_deref())),
                params.push(Value::Text(to_json(m)?)),
            ];
            values.push(format!("({}, {created})", cols.join(", ")));
        }
        let sql = format!(
            "INSERT INTO statuses (court_ori, correlates_to, inbound_id, status_sequence, kind, partner, \
             message_json, created_at) VALUES {} RETURNING id, inbound_id, status_sequence",
            values.join(", ")
        );
        let mut ids = HashMap::with_capacity(chunk.len());
        for row in params.bind(&sql).fetch_all(&mut *conn).await? {
            let key: (i64, i64) = (row.try_get("inbound_id")?, row.try_get("status_sequence")?);
            ids.insert(key, row.try_get::<i64, _>("id")?);
        }
        for (inbound_id, message) in chunk {
            let id = ids
                .get(&(*inbound_id, i64::from(message.status_sequence)))
                .copied()
                .ok_or_else(|| StoreError::Corrupt("a stored status was not returned".into()))?;
            stored.push(StoredStatus {
                id,
                message: message.clone(),
            });
        }
    }
    Ok(stored)
}

/// The original bytes and content type of inbound message `inbound_id`,
/// for a dead letter: read only when one is made, never for a job or an
/// ordinary record.
async fn original_body(conn: &mut AnyConnection, inbound_id: i64) -> StoreResult<(Vec<u8>, String)> {
    let row = sqlx::query("SELECT body, content_type FROM inbound_messages WHERE id = $1")
        .bind(inbound_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok((row.try_get("body")?, row.try_get("content_type")?))
}

async fn set_nic(conn: &mut AnyConnection, court_ori: &str, order_number: &str, nic: Option<&str>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE orders SET clets_nic = $3, updated_at = $4 \
         WHERE court_ori = $1 AND order_number = $2",
    )
    .bind(court_ori.to_string())
    .bind(order_number.to_string())
    .bind(text_opt(nic))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
