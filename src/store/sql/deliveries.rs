//! Delivery work: which deliveries are due ([`due`]), claims and leases;
//! what an attempt's outcome does is recorded by [`super::results`].
//!
//! `deliveries.state` is `PENDING` until an outcome finishes it: `ACCEPTED`,
//! `REJECTED` (a permanent partner rejection) or `DEAD` (given up). A
//! `DISCARDED` state is reserved for an operator's discard of a dead letter;
//! like `ACCEPTED`, it no longer holds back later sequences. A message that
//! intake refuses when its turn comes in sequence (`ORDER_CLOSED`,
//! `SEQUENCE_CONFLICT`) is answered `REJECTED` and has no deliveries: it was
//! never routed.
//!
//! A job carries the delivery's current revision: the original canonical
//! message at revision 0, else the operator's edit in `revisions`. Its
//! `created_at` is the latest operator replay when there was one. Its
//! `attempts` and `first_attempt_at` count from the delivery's creation or
//! its latest replay: every recorded outcome of a `PENDING` delivery sets
//! `first_attempt_at` to the attempt's time unless already set, and a replay
//! clears it; the retry max age counts from it (`delivery::retry`). Its
//! `key_created_at` is the delivery's creation, or the edit that made its
//! revision: a plain replay keeps it, as it keeps the key.
//!
//! Neither query reads an image or a raw body: a job's orders hold their
//! image by reference (the DOJ adapter loads the bytes with
//! [`Store::image`](crate::store::Store::image)), and the original bytes
//! are read only when an outcome makes a dead letter. An attempt that
//! inlined an image is stored with the image's SHA-256 and offset instead of
//! its text.
//!
//! Partner answers, transport errors, reasons and NICs are partner input:
//! they are written through `rows::text` (no NUL).
//!
//! # Leases and fencing
//! A broker takes work with [`claim`]: in one statement it picks the due
//! deliveries nobody holds a live lease on (oldest first, at most so many
//! per partner) and sets `lease_owner`, `lease_until` and
//! `lease_token = lease_token + 1` on them. On PostgreSQL the picked rows
//! are locked `FOR UPDATE SKIP LOCKED` and checked again once locked, so
//! two brokers claiming at once never take the same row and never wait on
//! each other; SQLite has one writer. A lane (one order at one partner) is
//! claimable only through its lowest unfinished sequence (`in_turn`, set
//! when the delivery is made after finished ones, or by [`pass_turn`] when
//! the one before it is accepted or discarded; the index
//! `deliveries_claimable` holds exactly the pending deliveries in turn, so a
//! claim walks the oldest of them and stops), and a leased
//! delivery is still `PENDING`, so a lane has at most one message in
//! flight across all brokers. [`super::results`] applies an outcome only when
//! the result's token is the delivery's current one: a broker whose lease
//! ran out and was claimed by another (it froze, say) has its late result
//! kept in the attempt history (`STALE`) and nothing else. Every outcome
//! ends the lease.
//!
//! The claim returns only ids and tokens; the jobs (order JSON and all) are
//! read by [`claimed_jobs`] after its commit, on a connection of the pool,
//! so the writer (SQLite) and the claim's row locks (PostgreSQL) are not
//! held for that read.

use sqlx::AnyConnection;
use sqlx::Row;

use super::Backend;
use super::rows::{Params, Value, from_json, from_ms, now_ms, parse_partner, to_ms, to_u32};
use crate::model::{Action, PartnerId};
use crate::store::{ClaimRequest, DeliveryJob, PartnerSet, StoreError, StoreResult};

/// The SQL condition for the deliveries of `partners`.
fn partner_clause(partners: &PartnerSet, params: &mut Params) -> String {
    match partners {
        PartnerSet::One(partner) => format!("d.partner = {}", params.push(Value::Text(partner.wire_name()))),
        PartnerSet::Lea { except } => {
            let mut clause = "d.partner LIKE 'LEA:%'".to_string();
            for ori in except {
                let p = params.push(Value::Text(PartnerId::Lea(ori.clone()).wire_name()));
                clause.push_str(&format!(" AND d.partner <> {p}"));
            }
            clause
        }
    }
}

/// The conditions that make delivery `d` of order `o` due at `now`: pending,
/// its turn come (every earlier sequence of its lane finished, kept in
/// `in_turn`), its time come, no lease in force, and no gap below it in
/// its order.
///
/// The unary `+` keeps SQLite's planner (which has no statistics) from
/// reading `deliveries_pending_due` for the time test and sorting every
/// pending delivery, instead of walking `deliveries_claimable` oldest first
/// and stopping at the claim's size; PostgreSQL reads it as the same value.
fn due_clause(now: &str) -> String {
    format!(
        "d.state = 'PENDING' AND d.in_turn = 1 AND +d.next_attempt_at <= {now} \
         AND (d.lease_until IS NULL OR d.lease_until <= {now}) \
         AND d.sequence <= o.applied_sequence"
    )
}

/// Passes the turn in a lane whose delivery was just finished for good
/// (`ACCEPTED` or `DISCARDED`): its lowest unfinished delivery, if any, is
/// now in turn. `in_turn` only ever goes from 0 to 1, because a finished
/// delivery never becomes unfinished again, and a delivery is only made for
/// the next sequence of its order.
pub(super) async fn pass_turn(
    conn: &mut AnyConnection,
    court_ori: &str,
    order_number: &str,
    partner: &PartnerId,
) -> StoreResult<()> {
    let lane = (court_ori.to_string(), order_number.to_string(), partner.clone());
    pass_turns(conn, &[lane], 1).await
}

/// [`pass_turn`] for many lanes, one statement per `per_statement` lanes.
pub(super) async fn pass_turns(
    conn: &mut AnyConnection,
    lanes: &[(String, String, PartnerId)],
    per_statement: usize,
) -> StoreResult<()> {
    for chunk in lanes.chunks(per_statement.max(1)) {
        if chunk.is_empty() {
            continue;
        }
        let mut params = Params::default();
        let rows: Vec<String> = chunk
            .iter()
            .map(|(court, order, partner)| {
                format!(
                    "SELECT {} AS court_ori, {} AS order_number, {} AS partner",
                    params.push(Value::Text(court.clone())),
                    params.push(Value::Text(order.clone())),
                    params.push(Value::Text(partner.wire_name())),
                )
            })
            .collect();
        let sql = format!(
            "UPDATE deliveries SET in_turn = 1 WHERE in_turn = 0 AND id IN \
               (SELECT (SELECT e.id FROM deliveries e \
                        WHERE e.court_ori = l.court_ori AND e.order_number = l.order_number \
                          AND e.partner = l.partner AND e.state NOT IN ('ACCEPTED', 'DISCARDED') \
                        ORDER BY e.sequence LIMIT 1) \
                FROM ({}) AS l)",
            rows.join(" UNION ALL ")
        );
        params.bind(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deliveries for `partners` that may go now; see the module note of `sql`.
pub(super) async fn due(
    conn: &mut AnyConnection,
    partners: &PartnerSet,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> StoreResult<Vec<DeliveryJob>> {
    let mut params = Params::default();
    let which = partner_clause(partners, &mut params);
    let now = params.push(Value::Int(to_ms(now)));
    let limit = params.push(Value::Int(i64::from(limit)));
    let due = due_clause(&now);
    let sql = format!("{JOB_SELECT} WHERE {which} AND {due} ORDER BY d.created_at, d.id LIMIT {limit}");
    let rows = params.bind(&sql).fetch_all(&mut *conn).await?;
    rows.iter().map(job_from_row).collect()
}

/// A delivery just leased, under this fencing token.
pub(super) type Leased = (i64, i64);

/// Leases due deliveries to one broker (see the module note) and returns
/// them with their new fencing tokens; [`claimed_jobs`] reads their jobs
/// once the claim is committed.
pub(super) async fn claim(
    conn: &mut AnyConnection,
    backend: Backend,
    request: &ClaimRequest,
) -> StoreResult<Vec<Leased>> {
    let mut params = Params::default();
    let which = partner_clause(&request.partners, &mut params);
    let now = params.push(Value::Int(to_ms(request.now)));
    let until = params.push(Value::Int(to_ms(request.until)));
    let owner = params.push(Value::Text(request.owner.clone()));
    let limit = params.push(Value::Int(i64::from(request.limit)));
    // Enough oldest due rows to fill the claim when a few partners have
    // little room; partners with none are left out before.
    let scan = params.push(Value::Int(i64::from(request.limit.saturating_mul(8).max(64))));
    let mut cases = String::new();
    let mut full = String::new();
    for (partner, left) in &request.room {
        let p = params.push(Value::Text(partner.wire_name()));
        if *left == 0 {
            full.push_str(&format!(" AND d.partner <> {p}"));
        } else {
            let n = params.push(Value::Int(i64::from(*left)));
            cases.push_str(&format!(" WHEN {p} THEN {n}"));
        }
    }
    let per_partner = params.push(Value::Int(i64::from(request.per_partner)));
    let room = if cases.is_empty() {
        per_partner
    } else {
        format!("CASE d.partner{cases} ELSE {per_partner} END")
    };
    let due = due_clause(&now);
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "WITH due AS (SELECT d.id, d.created_at, d.partner, {room} AS room \
                      FROM deliveries d \
                      JOIN orders o ON o.court_ori = d.court_ori AND o.order_number = d.order_number \
                      WHERE {which}{full} AND {due} \
                      ORDER BY d.created_at, d.id LIMIT {scan}), \
              ranked AS (SELECT id, created_at, room, \
                                ROW_NUMBER() OVER (PARTITION BY partner ORDER BY created_at, id) AS rn \
                         FROM due), \
              picked AS (SELECT id FROM ranked WHERE rn <= room ORDER BY created_at, id LIMIT {limit}) \
         UPDATE deliveries SET lease_owner = {owner}, lease_until = {until}, lease_token = lease_token + 1 \
         WHERE id IN (SELECT x.id FROM deliveries x WHERE x.id IN (SELECT id FROM picked) \
                        AND x.state = 'PENDING' AND (x.lease_until IS NULL OR x.lease_until <= {now}) {lock}) \
         RETURNING id, lease_token"
    );
    let rows = params.bind(&sql).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("lease_token")?)))
        .collect()
}

/// The jobs of deliveries this broker has just leased, read after the
/// claim's commit (outside the writer: a job does not change while it is
/// leased). A delivery whose token is no longer the one leased (another
/// broker took it meanwhile) is left out.
pub(super) async fn claimed_jobs(conn: &mut AnyConnection, leased: &[Leased]) -> StoreResult<Vec<DeliveryJob>> {
    let ids: Vec<i64> = leased.iter().map(|(id, _)| *id).collect();
    let tokens: std::collections::HashMap<i64, i64> = leased.iter().copied().collect();
    let mut jobs = jobs_by_id(conn, &ids).await?;
    jobs.retain(|job| tokens.get(&job.id) == Some(&job.lease_token));
    Ok(jobs)
}

/// The jobs of these deliveries, oldest first.
async fn jobs_by_id(conn: &mut AnyConnection, ids: &[i64]) -> StoreResult<Vec<DeliveryJob>> {
    let mut jobs = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut params = Params::default();
        let list: Vec<String> = chunk.iter().map(|id| params.push(Value::Int(*id))).collect();
        let sql = format!(
            "{JOB_SELECT} WHERE d.id IN ({}) ORDER BY d.created_at, d.id",
            list.join(", ")
        );
        let rows = params.bind(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            // One delivery whose stored data cannot make a job must not stop
            // its partner's other lanes: it is left out (its lease runs out)
            // and said so.
            match job_from_row(row) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    // The error may quote stored content: only its kind is logged.
                    let id: Option<i64> = row.try_get("id").ok();
                    let kind = match e {
                        StoreError::Corrupt(_) => "corrupt stored value",
                        _ => "database error",
                    };
                    metrics::counter!("porter_delivery_jobs_unreadable_total").increment(1);
                    tracing::error!(delivery_id = ?id, kind, "A claimed delivery cannot be read; left out.");
                }
            }
        }
    }
    Ok(jobs)
}

/// Extends `owner`'s leases on `held` to `until`; returns the ids it lost.
pub(super) async fn renew(
    conn: &mut AnyConnection,
    owner: &str,
    held: &[(i64, i64)],
    until: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Vec<i64>> {
    let mut lost = Vec::new();
    for &(id, token) in held {
        // Only a live lease is renewed: one ended early (set to end now)
        // stays ended.
        let renewed = sqlx::query(
            "UPDATE deliveries SET lease_until = $4 \
             WHERE id = $1 AND lease_token = $2 AND lease_owner = $3 AND state = 'PENDING' \
               AND lease_until > $5",
        )
        .bind(id)
        .bind(token)
        .bind(owner.to_string())
        .bind(to_ms(until))
        .bind(now_ms())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if renewed == 0 {
            lost.push(id);
        }
    }
    Ok(lost)
}

/// Ends every lease of `owner`.
pub(super) async fn release(conn: &mut AnyConnection, owner: &str) -> StoreResult<u64> {
    let released = sqlx::query(
        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
         WHERE lease_owner = $1 AND state = 'PENDING'",
    )
    .bind(owner.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(released)
}

/// The earliest future time at which a delivery of `partners` falls due
/// (an index range on `deliveries_pending_due`).
pub(super) async fn next_due_at(
    conn: &mut AnyConnection,
    partners: &PartnerSet,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
    let mut params = Params::default();
    let which = partner_clause(partners, &mut params);
    let now = params.push(Value::Int(to_ms(now)));
    let sql = format!(
        "SELECT MIN(d.next_attempt_at) AS at FROM deliveries d \
         WHERE {which} AND d.state = 'PENDING' AND d.next_attempt_at > {now}"
    );
    let row = params.bind(&sql).fetch_one(&mut *conn).await?;
    row.try_get::<Option<i64>, _>("at")?.map(from_ms).transpose()
}

/// Selects what a [`DeliveryJob`] needs, for [`job_from_row`].
const JOB_SELECT: &str = "SELECT d.id, d.lease_token, d.partner, d.court_ori, d.order_number, d.sequence, d.revision, \
                d.attempts, d.first_attempt_at, COALESCE(d.replayed_at, d.created_at) AS since, \
                COALESCE(r.edited_at, d.created_at) AS key_since, i.message_id, i.action, \
                COALESCE(r.canonical_json, i.canonical_json) AS canonical_json, \
                COALESCE(r.state_json, i.state_json, i.canonical_json) AS state_json, \
                CASE WHEN i.action = 'ISSUE' THEN NULL ELSE o.clets_nic END AS nic \
         FROM deliveries d \
         JOIN inbound_messages i ON i.id = d.inbound_id \
         LEFT JOIN revisions r ON r.delivery_id = d.id AND r.revision = d.revision \
         JOIN orders o ON o.court_ori = d.court_ori AND o.order_number = d.order_number ";

fn job_from_row(row: &sqlx::any::AnyRow) -> StoreResult<DeliveryJob> {
    let action: String = row.try_get("action")?;
    let json: String = row.try_get("canonical_json")?;
    let partner: String = row.try_get("partner")?;
    Ok(DeliveryJob {
        id: row.try_get("id")?,
        lease_token: row.try_get("lease_token")?,
        partner: parse_partner(&partner)?,
        court_ori: row.try_get("court_ori")?,
        message_id: row.try_get("message_id")?,
        order_number: row.try_get("order_number")?,
        sequence: to_u32(row.try_get("sequence")?, "sequence")?,
        action: Action::from_name(&action).ok_or_else(|| StoreError::Corrupt(format!("unknown action {action:?}")))?,
        revision: to_u32(row.try_get("revision")?, "revision")?,
        order: from_json(&json, "canonical order")?,
        state: from_json(&row.try_get::<String, _>("state_json")?, "order state")?,
        nic: row.try_get("nic")?,
        attempts: to_u32(row.try_get("attempts")?, "attempts")?,
        first_attempt_at: row
            .try_get::<Option<i64>, _>("first_attempt_at")?
            .map(from_ms)
            .transpose()?,
        created_at: from_ms(row.try_get("since")?)?,
        key_created_at: from_ms(row.try_get("key_since")?)?,
    })
}
