//! [`Store::intake`](crate::store::Store::intake): deduplication, ICD §5's
//! sequence rules, the order row, deliveries and the first status.
//!
//! **Rules and rows.** The rules are decided in [`crate::order::lifecycle`],
//! which has no I/O: [`lifecycle::repeated_message_id`] for a known
//! `message_id`, [`lifecycle::admit`] for an accepted verdict,
//! [`lifecycle::settle`] and [`lifecycle::apply_message`] for each message
//! whose turn comes. This module reads what they need into their types
//! (the `orders` row as a [`Progress`], the same sequence's message, the
//! messages waiting past a gap), calls them inside the item's transaction,
//! and writes what they decide. A stored value that does not read back as
//! its type (an unknown order state or action, a sequence out of range, a
//! held message without its candidate partners) is
//! [`StoreError::Corrupt`], never a default.
//!
//! **Key and correlation.** An item's `message_id` is the one that came
//! (see [`crate::intake::receive`]). A valid one (ICD §1: 1 to 64
//! characters, no control characters) is the deduplication key as it is.
//! One that breaks the rules (missing, too long, control characters; the
//! intake always rejects it) is keyed by [`rule_breaking_key`], a digest of
//! the whole id that is longer than 64 characters: it never equals a valid
//! id (a 100-character id is not taken for the valid one its first 64
//! characters spell) nor another rule-breaking id, and a NUL, which the
//! store keeps as U+FFFD, cannot make two ids one. Within one id the rules
//! below apply as to any id: the same body again is a duplicate, another
//! body a conflict. The statuses correlate to the id as it came, and the
//! dead letter keeps it; like every text the store keeps, with NUL as
//! U+FFFD.
//!
//! Per item, in order:
//! 1. **Same `(court, message_id)`.** Same body SHA-256: `Duplicate` with
//!    every status of the earlier message, nothing else changes. Different
//!    body: the arrival is kept in `conflicts` (bytes, SHA-256, time) and
//!    answered with a `CONFLICT_REJECTED` status (error `DUPLICATE_CONFLICT`,
//!    field `message_id`). That status takes its `StatusSequence` from the
//!    original's counter, so every status under one correlation id is
//!    totally ordered, but stays unlinked from the original (`inbound_id`
//!    NULL), so a duplicate of the original does not send it again. The same
//!    conflicting body again gets the same status back, with no new row. The
//!    original is untouched.
//! 2. **Rejected verdict.** The message is stored (outcome `REJECTED`), with a
//!    `REJECTED` status and a dead letter at stage `validate` whose reason is
//!    the first error's code. Its sequence stays free.
//! 3. **Accepted verdict**, checked against what is known of the order (the
//!    applied prefix `1..=applied_sequence` and the accepted messages waiting
//!    past a gap) by [`lifecycle::admit`], first match wins:
//!    - (a) an accepted message has the same `(court, order, sequence)`: the
//!      same canonical content makes this one a duplicate (outcome
//!      `DUPLICATE`): an `ACCEPTED` status with no routed partners and a
//!      `DUPLICATE` warning (field `sequence`) naming the message it repeats,
//!      and no second effect. Different content is `REJECTED` with
//!      `SEQUENCE_CONFLICT`. A sequence inside the order's applied prefix
//!      whose message was purged is also `SEQUENCE_CONFLICT`.
//!    - (b) the order's latest known ISSUE, TERMINATE or CANCEL before this
//!      sequence is a TERMINATE, or a CANCEL: `REJECTED` with `ORDER_CLOSED`,
//!      except an ISSUE with the sequence right after the CANCEL (re-entry),
//!      and except a message that a still-missing re-entry ISSUE right after
//!      the CANCEL could make valid: it is held (accepted, settled when the
//!      gap fills).
//!    - (c) an ISSUE (past sequence 1) whose predecessor is known and is not
//!      a CANCEL: `REJECTED` with `SEQUENCE_CONFLICT` (the order exists and
//!      is active), in particular when it would follow an applied, still
//!      active order. When its predecessor is still missing it may be a
//!      re-entry arriving before its CANCEL: it is held.
//!    - (d) otherwise it is accepted: stored (outcome `ACCEPTED`, with the
//!      verdict's candidate partners and warnings), and then applied to the
//!      order with every message that no longer waits behind a gap (see
//!      below). A message waiting behind a gap has no status yet.
//!
//!    Rules (b) and (c) look at the order's sequence history, not only at its
//!    latest state, so a corrected message that fills a gap below a TERMINATE
//!    is still accepted. They reject only what no missing sequence could make
//!    valid; the rest waits. Rejections under (a)–(c) also leave a dead letter
//!    at stage `validate`.
//!
//! **Applying in sequence.** Each message whose turn comes (the next
//! sequence after `applied_sequence`) is settled against the order as it is
//! then ([`lifecycle::settle`]):
//! - **Applied**: the order takes it, the store keeps the resulting order
//!   ([`lifecycle::apply_message`]) in `state_json`, the [`Route`] decides
//!   its partners from the order before and after and the order's routing
//!   memory (`orders.routing_json`, see [`crate::routing`]), one `PENDING`
//!   delivery is created per partner, and its `ACCEPTED` status lists them.
//!   Routing at this point, not on arrival, is what lets DOJ and the
//!   agencies follow the order's state.
//! - **Refused**: a TERMINATEd order, or a CANCELled one other than for the
//!   re-entry ISSUE right after the CANCEL, refuses it with `ORDER_CLOSED`;
//!   an active order refuses a (held) ISSUE with `SEQUENCE_CONFLICT`. The
//!   order is unchanged, but the sequence counts as settled
//!   (`applied_sequence` moves past it; its outcome stays `ACCEPTED`). It is
//!   answered `REJECTED` with the code and gets a dead letter at stage
//!   `sequence`, without a partner: it was never routed, so it has no
//!   deliveries and holds nothing back.
//!
//! These statuses and dead letters are returned in the `Stored` outcome of
//! the item whose arrival settled them.
//!
//! **Unstorable items.** An item this refuses for a reason of its own, try
//! after try (see [`crate::intake`]), is recorded by [`intake_unstorable`]
//! in a transaction of its own: the message as `REJECTED` (so a redelivery
//! is a duplicate), a `REJECTED` status with one `INVALID_FORMAT` error on
//! field `message` (the ICD has no code for an internal error; this is what
//! the intake answers to any) and a dead letter at stage `store` with the
//! original bytes. It never touches the order: its sequence stays free.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::Row;

use super::rows::{
    DeadLetterDraft, Params, StatusDraft, Stream, Value, clean, from_json, insert_dead_letter, insert_status, now_ms,
    parse_partner, status_from_row, text, text_opt, to_json, to_u32,
};
use crate::intake::examine::message_id_errors;
use crate::model::{Action, ErrorCode, FieldError, OrderMessage, PartnerId, StatusKind};
use crate::order::delivery::DeliveryState;
use crate::order::lifecycle::{self, Admission, OrderState, Position, Progress, Repeat, SameSequence, Turn, Waiting};
use crate::routing::{Applied as RoutedMessage, Route, Sticky};
use crate::store::{
    DeadLetterStage, InboundMessage, IntakeItem, IntakeOutcome, StoreError, StoreResult, StoredDeadLetter,
    StoredStatus, Verdict,
};

/// Applies one intake item inside the caller's transaction.
pub(super) async fn intake_one(
    conn: &mut AnyConnection,
    router: &dyn Route,
    item: IntakeItem,
) -> StoreResult<IntakeOutcome> {
    if crate::failpoint::fails(crate::failpoint::STORE_ITEM, &item.inbound.message_id) {
        return Err(StoreError::Corrupt(format!(
            "failpoint {} refused the item",
            crate::failpoint::STORE_ITEM
        )));
    }
    let IntakeItem { inbound, verdict } = item;
    let (inbound, correlation) = keyed(inbound);
    let correlation = correlation.as_str();
    if let Some(known) = known_arrival(conn, &inbound, correlation, &verdict).await? {
        return Ok(known);
    }

    match verdict {
        Verdict::Rejected {
            order_number,
            sequence,
            errors,
        } => {
            let order_number = text_opt(order_number.as_deref());
            let facts = Facts {
                order_number,
                sequence,
                action: None,
                canonical: None,
            };
            reject(conn, &inbound, correlation, facts, errors, Vec::new()).await
        }
        Verdict::Accepted {
            mut order,
            canonical_sha256,
            partners,
            warnings,
        } => {
            // The bytes go to `images` (once); every JSON copy of the order
            // keeps the reference only.
            let image = order.image.as_mut().and_then(|i| {
                let data = i.data.take()?;
                Some(ImageRow {
                    sha256: text(&i.sha256),
                    mime_type: text(&i.mime_type),
                    data,
                })
            });
            let (Some(order_number), Some(sequence), Some(action)) =
                (order.order_number().map(text), order.sequence, order.action)
            else {
                // The validator guarantees these; refuse rather than guess.
                let errors = vec![FieldError::new(
                    ErrorCode::Missing,
                    "order.order_number",
                    "an accepted message needs its order number, sequence and action",
                )];
                let facts = Facts {
                    order_number: order.order_number().map(text),
                    sequence: order.sequence,
                    action: order.action,
                    canonical: None,
                };
                return reject(conn, &inbound, correlation, facts, errors, warnings).await;
            };
            let key = OrderKey {
                court_ori: &inbound.court_ori,
                order_number: &order_number,
            };
            let canonical = Canonical {
                json: to_json(&*order)?,
                sha256: text(&canonical_sha256),
            };
            let facts = Facts {
                order_number: Some(order_number.clone()),
                sequence: Some(sequence),
                action: Some(action),
                canonical: Some(canonical),
            };
            let row = OrderRow::load(conn, &key).await?;
            let progress = row.as_ref().map_or(Progress::NEW, |r| r.progress);
            let arrival = lifecycle::Arrival {
                order_number: &order_number,
                sequence,
                action,
                canonical_sha256: facts.canonical_sha(),
            };
            match decide(conn, &key, &progress, &arrival).await? {
                Admission::Reject(error) => reject(conn, &inbound, correlation, facts, vec![error], warnings).await,
                Admission::Duplicate { original_id, warning } => {
                    let id = insert_inbound(conn, &inbound, "DUPLICATE", &facts, Some(original_id), None).await?;
                    let mut draft = facts.status(&inbound, correlation, StatusKind::Accepted);
                    draft.warnings = warnings;
                    draft.warnings.push(warning);
                    let status = insert_status(conn, Stream::First(id), draft).await?;
                    Ok(IntakeOutcome::Stored {
                        statuses: vec![status],
                        dead_letters: Vec::new(),
                    })
                }
                Admission::Accept => {
                    let held = Held {
                        candidates: &partners,
                        warnings: &warnings,
                        image,
                    };
                    let id = insert_held(conn, &inbound, &facts, held).await?;
                    let arrival = NewMessage {
                        inbound_id: id,
                        sequence,
                        action,
                        message: *order,
                        candidates: partners,
                    };
                    let mut produced = Settled::default();
                    for settlement in apply_to_order(conn, &key, row, arrival, router).await? {
                        match settlement {
                            Settlement::Applied(applied) => announce(conn, &key, applied, &mut produced).await?,
                            Settlement::Refused(refused) => refuse(conn, refused, &mut produced).await?,
                        }
                    }
                    Ok(IntakeOutcome::Stored {
                        statuses: produced.statuses,
                        dead_letters: produced.dead_letters,
                    })
                }
            }
        }
    }
}

/// Records an item [`intake_one`] refused for a reason of its own, inside
/// the caller's transaction (see `Store::intake_unstorable`): stored as
/// `REJECTED`, with its status and a dead letter at stage `store`, unless
/// its `message_id` is known by now (then as [`intake_one`] answers it).
pub(super) async fn intake_unstorable(conn: &mut AnyConnection, item: IntakeItem) -> StoreResult<IntakeOutcome> {
    let IntakeItem { inbound, verdict } = item;
    let (inbound, correlation) = keyed(inbound);
    let correlation = correlation.as_str();
    if let Some(known) = known_arrival(conn, &inbound, correlation, &verdict).await? {
        return Ok(known);
    }
    let (order_number, sequence) = order_facts(&verdict);
    let facts = Facts {
        order_number: text_opt(order_number),
        sequence,
        action: None,
        canonical: None,
    };
    let error = FieldError::new(
        ErrorCode::InvalidFormat,
        "message",
        "Porter could not store this message (internal error); it is kept as a dead letter and \
         operators have been alerted",
    );
    let rejection = Rejection {
        errors: vec![error],
        warnings: Vec::new(),
        stage: DeadLetterStage::Store,
    };
    reject_at(conn, &inbound, correlation, facts, rejection).await
}

/// The answer to an arrival whose `(court, message_id)` is stored already:
/// `Duplicate` for the same body, else a conflict (see the module note).
async fn known_arrival(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    correlation: &str,
    verdict: &Verdict,
) -> StoreResult<Option<IntakeOutcome>> {
    let earlier = sqlx::query(
        "SELECT id, body_sha256, received_at FROM inbound_messages \
         WHERE court_ori = $1 AND message_id = $2",
    )
    .bind(inbound.court_ori.clone())
    .bind(inbound.message_id.clone())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = earlier else { return Ok(None) };
    let id: i64 = row.try_get("id")?;
    let sha: String = row.try_get("body_sha256")?;
    if lifecycle::repeated_message_id(&sha, &inbound.body_sha256) == Repeat::Duplicate {
        return Ok(Some(IntakeOutcome::Duplicate {
            statuses: statuses_of(conn, id).await?,
        }));
    }
    let original = Original {
        id,
        received_at: row.try_get("received_at")?,
    };
    Ok(Some(conflict(conn, original, inbound, correlation, verdict).await?))
}

/// The order number and sequence of a verdict, where they could be read.
fn order_facts(verdict: &Verdict) -> (Option<&str>, Option<u32>) {
    match verdict {
        Verdict::Accepted { order, .. } => (order.order_number(), order.sequence),
        Verdict::Rejected {
            order_number, sequence, ..
        } => (order_number.as_deref(), *sequence),
    }
}

/// The inbound message as the store keeps it, with its `message_id`
/// replaced by the deduplication key (see the module note), and the id as
/// it came (NUL as U+FFFD), which its statuses correlate to.
fn keyed(mut inbound: InboundMessage) -> (InboundMessage, String) {
    let correlation = text(&inbound.message_id);
    if inbound.message_id.is_empty() {
        inbound.message_id = missing_id_key(&inbound.body_sha256);
    } else if !message_id_errors(&inbound.message_id).is_empty() {
        inbound.message_id = rule_breaking_key(&inbound.message_id);
    }
    (without_nul(inbound), correlation)
}

/// Marks the keys of messages whose `message_id` breaks ICD §1.
const RULE_BREAKING_PREFIX: &str = "rule-breaking-id:";

/// The deduplication key of a `message_id` that breaks ICD §1:
/// [`RULE_BREAKING_PREFIX`] and the hex SHA-256 of the id as it came. At
/// 81 characters it is longer than any valid id, and it differs for every
/// other id.
fn rule_breaking_key(message_id: &str) -> String {
    format!(
        "{RULE_BREAKING_PREFIX}{}",
        hex::encode(Sha256::digest(message_id.as_bytes()))
    )
}

/// Marks the keys of messages that came without a `message_id`.
const MISSING_ID_PREFIX: &str = "missing-id:";

/// The deduplication key of a message without a `message_id`:
/// [`MISSING_ID_PREFIX`] and the hex SHA-256 of its body (75 characters,
/// longer than any valid id). Such messages are told apart by their bodies:
/// the same bytes again are a duplicate, other bytes get their own
/// `REJECTED` (`MISSING`), never a `CONFLICT_REJECTED` against an unrelated
/// message that also lacked an id.
fn missing_id_key(body_sha256: &str) -> String {
    format!("{MISSING_ID_PREFIX}{body_sha256}")
}

/// The inbound message with NUL replaced in every text the store keeps.
fn without_nul(mut inbound: InboundMessage) -> InboundMessage {
    for s in [
        &mut inbound.court_ori,
        &mut inbound.message_id,
        &mut inbound.body_sha256,
        &mut inbound.content_type,
    ] {
        clean(s);
    }
    if let Some(layout) = inbound.layout.as_mut() {
        clean(layout);
    }
    inbound
}

/// The stored message an arrival conflicts with.
struct Original {
    id: i64,
    received_at: i64,
}

/// Answers an arrival whose `message_id` is stored (`original`) with a
/// different body: keeps it in `conflicts` with a `CONFLICT_REJECTED`
/// status numbered from the original's counter, or, when this very body
/// conflicted with this original before, returns that status again.
async fn conflict(
    conn: &mut AnyConnection,
    original: Original,
    inbound: &InboundMessage,
    correlation: &str,
    verdict: &Verdict,
) -> StoreResult<IntakeOutcome> {
    // Only conflicts since the original count: an older one may remain from
    // a purged message that had the same message_id.
    let before = sqlx::query(
        "SELECT s.id, s.message_json FROM conflicts c JOIN statuses s ON s.id = c.status_id \
         WHERE c.court_ori = $1 AND c.message_id = $2 AND c.body_sha256 = $3 \
           AND c.received_at >= $4",
    )
    .bind(inbound.court_ori.clone())
    .bind(inbound.message_id.clone())
    .bind(inbound.body_sha256.clone())
    .bind(original.received_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = before {
        return Ok(IntakeOutcome::Conflict {
            status: status_from_row(&row)?,
        });
    }
    let (order_number, sequence) = order_facts(verdict);
    let mut draft = StatusDraft::new(
        &inbound.court_ori,
        correlation,
        order_number,
        sequence,
        StatusKind::ConflictRejected,
    );
    draft.errors.push(lifecycle::conflict_error(correlation));
    let status = insert_status(conn, Stream::Beside(original.id), draft).await?;
    sqlx::query(
        "INSERT INTO conflicts (court_ori, message_id, body_sha256, body, content_type, \
         received_at, status_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(inbound.court_ori.clone())
    .bind(inbound.message_id.clone())
    .bind(inbound.body_sha256.clone())
    .bind(inbound.body.clone())
    .bind(inbound.content_type.clone())
    .bind(inbound.received_at.timestamp_millis())
    .bind(status.id)
    .execute(&mut *conn)
    .await?;
    Ok(IntakeOutcome::Conflict { status })
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
    let pending = params.push(Value::Text(DeliveryState::Pending.name().to_string()));
    let rows: Vec<String> = partners
        .iter()
        .map(|p| {
            let partner = params.push(Value::Text(p.wire_name()));
            // Its turn has come unless an earlier delivery of its lane is
            // still unfinished (see `deliveries::pass_turn`).
            let in_turn = format!(
                "CASE WHEN EXISTS (SELECT 1 FROM deliveries e WHERE e.court_ori = {court} \
                 AND e.order_number = {number} AND e.partner = {partner} AND e.sequence < {seq} \
                 AND e.state NOT IN ('ACCEPTED', 'DISCARDED')) THEN 0 ELSE 1 END"
            );
            format!("({id}, {court}, {number}, {seq}, {partner}, {pending}, 0, 0, {now}, {now}, {now}, {in_turn})")
        })
        .collect();
    let sql = format!(
        "INSERT INTO deliveries (inbound_id, court_ori, order_number, sequence, partner, state, \
         attempts, revision, next_attempt_at, created_at, updated_at, in_turn) VALUES {}",
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

/// The order row as read before deciding.
struct OrderRow {
    progress: Progress,
    last: u32,
    /// The order's routing memory.
    sticky: Sticky,
    /// The order as its applied prefix left it, unparsed (it is parsed only
    /// when a message is applied).
    order_json: Option<String>,
}

impl OrderRow {
    async fn load(conn: &mut AnyConnection, key: &OrderKey<'_>) -> StoreResult<Option<OrderRow>> {
        let row = sqlx::query(
            "SELECT state, applied_sequence, last_sequence, closed_sequence, routing_json, order_json FROM orders \
             WHERE court_ori = $1 AND order_number = $2",
        )
        .bind(key.court_ori.to_string())
        .bind(key.order_number.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|row| {
            let state: String = row.try_get("state")?;
            let closed: Option<i64> = row.try_get("closed_sequence")?;
            Ok(OrderRow {
                progress: Progress {
                    state: stored_order_state(&state)?,
                    applied: to_u32(row.try_get("applied_sequence")?, "applied_sequence")?,
                    closed: closed.map(|c| to_u32(c, "closed_sequence")).transpose()?,
                },
                last: to_u32(row.try_get("last_sequence")?, "last_sequence")?,
                sticky: row
                    .try_get::<Option<String>, _>("routing_json")?
                    .map(|j| from_json(&j, "routing"))
                    .transpose()?
                    .unwrap_or_default(),
                order_json: row.try_get("order_json")?,
            })
        })
        .transpose()
    }
}

/// A stored `orders.state`; any other value is corrupt.
fn stored_order_state(name: &str) -> StoreResult<OrderState> {
    OrderState::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown order state {name:?}")))
}

/// A stored `inbound_messages.action`; any other value is corrupt.
fn stored_action(name: &str) -> StoreResult<Action> {
    Action::from_name(name).ok_or_else(|| StoreError::Corrupt(format!("unknown action {name:?}")))
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

    /// A status of `inbound`, correlating to `correlation`, its id as it came.
    fn status(&self, inbound: &InboundMessage, correlation: &str, kind: StatusKind) -> StatusDraft {
        StatusDraft::new(
            &inbound.court_ori,
            correlation,
            self.order_number.as_deref(),
            self.sequence,
            kind,
        )
    }
}

/// Reads what ICD §5's rules need to know about `arrival`'s order
/// (its applied prefix is `progress`) and decides it
/// ([`lifecycle::admit`]): the accepted message with the same sequence, and,
/// only for an arrival past a gap with none, the accepted messages waiting
/// between the prefix and it.
async fn decide(
    conn: &mut AnyConnection,
    key: &OrderKey<'_>,
    progress: &Progress,
    arrival: &lifecycle::Arrival<'_>,
) -> StoreResult<Admission> {
    let seq = i64::from(arrival.sequence);
    let (court, number) = (key.court_ori, key.order_number);

    let same = sqlx::query(
        "SELECT id, message_id, canonical_sha256 FROM inbound_messages \
         WHERE court_ori = $1 AND order_number = $2 AND sequence = $3 AND outcome = 'ACCEPTED'",
    )
    .bind(court.to_string())
    .bind(number.to_string())
    .bind(seq)
    .fetch_optional(&mut *conn)
    .await?;
    let same = same
        .map(|row| -> StoreResult<(i64, String, Option<String>)> {
            Ok((
                row.try_get("id")?,
                row.try_get("message_id")?,
                row.try_get("canonical_sha256")?,
            ))
        })
        .transpose()?;
    let same = same.as_ref().map(|(id, message_id, sha)| SameSequence {
        id: *id,
        message_id,
        canonical_sha256: sha.as_deref(),
    });

    let mut waiting = Vec::new();
    if same.is_none() && progress.position(arrival.sequence) == Position::PastGap {
        let rows = sqlx::query(
            "SELECT sequence, action FROM inbound_messages \
             WHERE court_ori = $1 AND order_number = $2 AND outcome = 'ACCEPTED' \
               AND sequence > $3 AND sequence < $4 ORDER BY sequence",
        )
        .bind(court.to_string())
        .bind(number.to_string())
        .bind(i64::from(progress.applied))
        .bind(seq)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            waiting.push(Waiting {
                sequence: to_u32(row.try_get("sequence")?, "sequence")?,
                action: stored_action(&row.try_get::<String, _>("action")?)?,
            });
        }
    }
    Ok(lifecycle::admit(progress, same.as_ref(), &waiting, arrival))
}

/// Stores a rejected message: its row, a `REJECTED` status and a dead
/// letter at stage `validate`, both with the `message_id` as it came
/// (`correlation`).
async fn reject(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    correlation: &str,
    facts: Facts,
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
) -> StoreResult<IntakeOutcome> {
    let rejection = Rejection {
        errors,
        warnings,
        stage: DeadLetterStage::Validate,
    };
    reject_at(conn, inbound, correlation, facts, rejection).await
}

/// Why a message is stored as `REJECTED`, and at which stage its dead
/// letter stands.
struct Rejection {
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
    stage: DeadLetterStage,
}

/// Stores a rejected message: its row, a `REJECTED` status and a dead
/// letter at `rejection.stage`, whose reason is the first error's code.
async fn reject_at(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    correlation: &str,
    facts: Facts,
    rejection: Rejection,
) -> StoreResult<IntakeOutcome> {
    let Rejection {
        errors,
        warnings,
        stage,
    } = rejection;
    let id = insert_inbound(conn, inbound, "REJECTED", &facts, None, None).await?;
    let reason = errors.first().map_or(ErrorCode::InvalidFormat, |e| e.code).as_str();
    let mut draft = facts.status(inbound, correlation, StatusKind::Rejected);
    draft.errors = errors.clone();
    draft.warnings = warnings;
    let status = insert_status(conn, Stream::First(id), draft).await?;
    let dead_letter = insert_dead_letter(
        conn,
        DeadLetterDraft {
            inbound_id: Some(id),
            delivery_id: None,
            court_ori: inbound.court_ori.clone(),
            message_id: correlation.to_string(),
            order_number: facts.order_number,
            sequence: facts.sequence,
            stage,
            partner: None,
            reason: reason.to_string(),
            errors,
            body: inbound.body.clone(),
            content_type: inbound.content_type.clone(),
            attempts: 0,
        },
    )
    .await?;
    Ok(IntakeOutcome::Stored {
        statuses: vec![status],
        dead_letters: vec![dead_letter],
    })
}

/// Stores an inbound message with its outcome. Its first status is issued in
/// the same breath (`status_count` starts at 1; see [`Stream::First`]),
/// unless it is `held`: an accepted message has no status until it is
/// applied, and keeps its candidate partners and warnings until then.
async fn insert_inbound(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    outcome: &'static str,
    facts: &Facts,
    duplicate_of: Option<i64>,
    held: Option<HeldColumns>,
) -> StoreResult<i64> {
    let status_count: i64 = if held.is_some() { 0 } else { 1 };
    let (candidates_json, warnings_json) = held.map_or((None, None), |h| (Some(h.candidates), Some(h.warnings)));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO inbound_messages (court_ori, message_id, body_sha256, body, content_type, \
         layout, received_at, outcome, order_number, sequence, action, canonical_json, \
         canonical_sha256, duplicate_of, status_count, candidates_json, warnings_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
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
    .bind(status_count)
    .bind(candidates_json)
    .bind(warnings_json)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// The columns a held message keeps until it is applied, as JSON.
struct HeldColumns {
    candidates: String,
    warnings: String,
}

/// What an accepted message keeps until it is applied.
struct Held<'a> {
    candidates: &'a [PartnerId],
    warnings: &'a [FieldError],
    /// Its image's bytes, kept once per SHA-256.
    image: Option<ImageRow>,
}

/// An order image's row in `images`. The SHA-256 is the one the validator
/// checked the bytes against (a mismatch is `REJECTED`).
struct ImageRow {
    sha256: String,
    mime_type: String,
    data: Vec<u8>,
}

/// Stores an accepted message. It has no status yet: its `ACCEPTED`, which
/// lists its partners, is issued when it is applied ([`announce`]).
async fn insert_held(
    conn: &mut AnyConnection,
    inbound: &InboundMessage,
    facts: &Facts,
    held: Held<'_>,
) -> StoreResult<i64> {
    let names: Vec<String> = held.candidates.iter().map(PartnerId::wire_name).collect();
    let columns = HeldColumns {
        candidates: to_json(&names)?,
        warnings: to_json(&held.warnings)?,
    };
    let id = insert_inbound(conn, inbound, "ACCEPTED", facts, None, Some(columns)).await?;
    if let Some(image) = held.image {
        let known: Option<i64> = sqlx::query_scalar("SELECT size FROM images WHERE sha256 = $1")
            .bind(image.sha256.clone())
            .fetch_optional(&mut *conn)
            .await?;
        if known.is_none() {
            sqlx::query(
                "INSERT INTO images (sha256, mime_type, size, data, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(image.sha256)
            .bind(image.mime_type)
            .bind(i64::try_from(image.data.len()).unwrap_or(i64::MAX))
            .bind(image.data)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(id)
}

/// Issues the `ACCEPTED` status of a message just applied, with one
/// `PENDING` delivery per partner it was routed to.
async fn announce(
    conn: &mut AnyConnection,
    key: &OrderKey<'_>,
    applied: AppliedMessage,
    produced: &mut Settled,
) -> StoreResult<()> {
    let AppliedMessage {
        inbound_id,
        sequence,
        partners,
        state_json,
    } = applied;
    insert_deliveries(conn, inbound_id, key, sequence, &partners).await?;
    // The order as it left it, and the next number of its status counter,
    // in one statement.
    let row = sqlx::query(
        "UPDATE inbound_messages SET state_json = $1, status_count = status_count + 1 WHERE id = $2 \
         RETURNING status_count, message_id, warnings_json",
    )
    .bind(state_json)
    .bind(inbound_id)
    .fetch_one(&mut *conn)
    .await?;
    let status_sequence = to_u32(row.try_get("status_count")?, "status_count")?;
    let message_id: String = row.try_get("message_id")?;
    let warnings: Option<String> = row.try_get("warnings_json")?;
    let mut draft = StatusDraft::new(
        key.court_ori,
        &message_id,
        Some(key.order_number),
        Some(sequence),
        StatusKind::Accepted,
    );
    draft.routed_partners = partners;
    draft.warnings = warnings
        .map(|w| from_json(&w, "warnings"))
        .transpose()?
        .unwrap_or_default();
    produced
        .statuses
        .push(insert_status(conn, Stream::Counted(inbound_id, status_sequence), draft).await?);
    Ok(())
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

/// A newly accepted message, for [`apply_to_order`].
struct NewMessage {
    inbound_id: i64,
    sequence: u32,
    action: Action,
    message: OrderMessage,
    /// The intake verdict's partners.
    candidates: Vec<PartnerId>,
}

/// How a message was settled when its turn came.
enum Settlement {
    Applied(AppliedMessage),
    Refused(Refused),
}

/// A message applied to its order, and where it goes.
struct AppliedMessage {
    inbound_id: i64,
    sequence: u32,
    partners: Vec<PartnerId>,
    /// The order as this message left it (`inbound_messages.state_json`).
    state_json: String,
}

/// A message refused when its turn came to be applied, and why.
struct Refused {
    inbound_id: i64,
    error: FieldError,
}

/// The order as it is being brought forward, one sequence at a time.
struct Applying<'r> {
    progress: Progress,
    router: &'r dyn Route,
    sticky: Sticky,
    /// The current order, once parsed or replaced (`None` while it is
    /// still only in `stored`, or for a new order).
    current: Option<OrderMessage>,
    /// The order row's `order_json`, until it is parsed.
    stored: Option<String>,
    settled: Vec<Settlement>,
}

impl Applying<'_> {
    /// Settles the message at the next sequence ([`lifecycle::settle`]):
    /// applies it, or refuses it when the order no longer takes it.
    fn settle(
        &mut self,
        key: &OrderKey<'_>,
        inbound_id: i64,
        action: Action,
        message: OrderMessage,
        candidates: &[PartnerId],
    ) -> StoreResult<()> {
        let (progress, turn) = lifecycle::settle(self.progress, action, key.order_number);
        self.progress = progress;
        if let Turn::Refuse(error) = turn {
            self.settled.push(Settlement::Refused(Refused { inbound_id, error }));
            return Ok(());
        }
        if let Some(json) = self.stored.take() {
            self.current = Some(from_json(&json, "order")?);
        }
        let before = self.current.take();
        let after = lifecycle::apply_message(before.clone(), action, message);
        let (partners, sticky) = self.router.route(RoutedMessage {
            court_ori: key.court_ori,
            before: before.as_ref(),
            after: &after,
            candidates,
            sticky: &self.sticky,
        });
        self.sticky = sticky;
        let state_json = to_json(&after)?;
        self.current = Some(after);
        self.settled.push(Settlement::Applied(AppliedMessage {
            inbound_id,
            sequence: progress.applied,
            partners,
            state_json,
        }));
        Ok(())
    }
}

/// Records a newly accepted sequence on its order row (`row`, as read
/// before deciding), and settles every accepted message that no longer
/// waits behind a gap, in sequence order. Returns how each was settled.
async fn apply_to_order(
    conn: &mut AnyConnection,
    key: &OrderKey<'_>,
    row: Option<OrderRow>,
    arrival: NewMessage,
    router: &dyn Route,
) -> StoreResult<Vec<Settlement>> {
    let now = now_ms();
    let seq = arrival.sequence;
    let exists = row.is_some();
    let OrderRow {
        progress,
        last,
        sticky,
        order_json,
    } = row.unwrap_or(OrderRow {
        progress: Progress::NEW,
        last: 0,
        sticky: Sticky::default(),
        order_json: None,
    });
    let mut order = Applying {
        progress,
        router,
        sticky,
        current: None,
        stored: order_json,
        settled: Vec::new(),
    };
    if progress.position(seq) == Position::Next {
        let NewMessage {
            inbound_id,
            action,
            message,
            candidates,
            ..
        } = arrival;
        order.settle(key, inbound_id, action, message, &candidates)?;
        if last > seq {
            // Messages that waited behind this one.
            let waiting = sqlx::query(
                "SELECT id, sequence, action, canonical_json, candidates_json FROM inbound_messages \
                 WHERE court_ori = $1 AND order_number = $2 AND outcome = 'ACCEPTED' \
                   AND sequence > $3 ORDER BY sequence",
            )
            .bind(key.court_ori.to_string())
            .bind(key.order_number.to_string())
            .bind(i64::from(seq))
            .fetch_all(&mut *conn)
            .await?;
            for row in &waiting {
                let s = to_u32(row.try_get("sequence")?, "sequence")?;
                if order.progress.position(s) != Position::Next {
                    break;
                }
                let action = stored_action(&row.try_get::<String, _>("action")?)?;
                let json: String = row.try_get("canonical_json")?;
                let message = from_json(&json, "canonical order")?;
                let candidates: Option<String> = row.try_get("candidates_json")?;
                let candidates = candidates_from(candidates.as_deref())?;
                order.settle(key, row.try_get("id")?, action, message, &candidates)?;
            }
        }
    }
    let order_json = order.current.as_ref().map(to_json).transpose()?;
    let sql = if exists {
        "UPDATE orders SET state = $3, applied_sequence = $4, last_sequence = $5, \
         order_json = COALESCE($6, order_json), closed_sequence = $8, routing_json = $9, updated_at = $7 \
         WHERE court_ori = $1 AND order_number = $2"
    } else {
        "INSERT INTO orders (court_ori, order_number, state, applied_sequence, last_sequence, \
         order_json, clets_nic, closed_sequence, routing_json, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $8, $9, $7, $7)"
    };
    let progress = order.progress;
    sqlx::query(sql)
        .bind(key.court_ori.to_string())
        .bind(key.order_number.to_string())
        .bind(progress.state.name())
        .bind(i64::from(progress.applied))
        .bind(i64::from(last.max(seq)))
        .bind(order_json)
        .bind(now)
        .bind(progress.closed.map(i64::from))
        .bind(to_json(&order.sticky)?)
        .execute(&mut *conn)
        .await?;
    Ok(order.settled)
}

/// The intake verdict's partners, as kept with a held message (which
/// always has them: without them it is corrupt).
fn candidates_from(json: Option<&str>) -> StoreResult<Vec<PartnerId>> {
    let json = json.ok_or_else(|| StoreError::Corrupt("a held message without its candidate partners".into()))?;
    let names: Vec<String> = from_json(json, "candidates")?;
    names.iter().map(|n| parse_partner(n)).collect()
}

/// The statuses and dead letters one intake item produced.
#[derive(Default)]
struct Settled {
    statuses: Vec<StoredStatus>,
    dead_letters: Vec<StoredDeadLetter>,
}

/// Records a refusal (see the module note): the message, which had no
/// status yet, gets `REJECTED` with the error, and a dead letter at stage
/// `sequence` whose reason is the error's code. It was never routed, so it
/// has no deliveries.
async fn refuse(conn: &mut AnyConnection, refused: Refused, produced: &mut Settled) -> StoreResult<()> {
    let Refused { inbound_id, error } = refused;
    let message = sqlx::query(
        "SELECT court_ori, message_id, order_number, sequence, body, content_type \
         FROM inbound_messages WHERE id = $1",
    )
    .bind(inbound_id)
    .fetch_one(&mut *conn)
    .await?;
    let court_ori: String = message.try_get("court_ori")?;
    let message_id: String = message.try_get("message_id")?;
    let order_number: Option<String> = message.try_get("order_number")?;
    let sequence: Option<i64> = message.try_get("sequence")?;
    let sequence = sequence.map(|s| to_u32(s, "sequence")).transpose()?;
    let mut draft = StatusDraft::new(
        &court_ori,
        &message_id,
        order_number.as_deref(),
        sequence,
        StatusKind::Rejected,
    );
    draft.errors = vec![error.clone()];
    produced
        .statuses
        .push(insert_status(conn, Stream::Next(inbound_id), draft).await?);
    let dead_letter = DeadLetterDraft {
        inbound_id: Some(inbound_id),
        delivery_id: None,
        court_ori,
        message_id,
        order_number,
        sequence,
        stage: DeadLetterStage::Sequence,
        partner: None,
        reason: error.code.as_str().to_string(),
        errors: vec![error],
        body: message.try_get("body")?,
        content_type: message.try_get("content_type")?,
        attempts: 0,
    };
    produced.dead_letters.push(insert_dead_letter(conn, dead_letter).await?);
    Ok(())
}

/// The order `base` (the whole order as a message left it) with `edited`,
/// an operator's edit of that message, applied in its place
/// ([`lifecycle::apply_message`]): what HTTP partners receive for an
/// edit-and-replay.
pub(super) fn apply_edit(base: OrderMessage, action: Action, edited: OrderMessage) -> OrderMessage {
    lifecycle::apply_message(Some(base), action, edited)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn inbound(message_id: &str, body: &[u8]) -> InboundMessage {
        InboundMessage {
            court_ori: "CA034025J".into(),
            message_id: message_id.into(),
            body: body.to_vec(),
            body_sha256: hex::encode(Sha256::digest(body)),
            content_type: "application/xml".into(),
            layout: None,
            received_at: Utc::now(),
        }
    }

    /// A valid `message_id` is its own deduplication key, and its statuses
    /// correlate to it.
    #[test]
    fn a_valid_id_is_its_own_key() {
        let id = "x".repeat(64);
        let (stored, correlation) = keyed(inbound(&id, b"<a/>"));
        assert_eq!(
            (stored.message_id.as_str(), correlation.as_str()),
            (id.as_str(), id.as_str())
        );
    }

    /// A rule-breaking `message_id` (too long, control characters, NUL) is
    /// keyed apart: the key is not a valid id, so it never equals
    /// one (a 100-character id is not keyed by the valid id its first 64
    /// characters spell, an id with NUL not by the valid one with U+FFFD in
    /// its place); it differs for every other id, has no NUL, and is the
    /// same for the same id whatever the body (so the same body again is a
    /// duplicate, another a conflict). The statuses correlate to the id as
    /// it came, NUL as U+FFFD.
    #[test]
    fn a_rule_breaking_id_is_keyed_apart_and_correlates_to_the_id() {
        let long = "x".repeat(100);
        let ids = [long.as_str(), "a\tb", "a\u{1}b", "nul\0"];
        let mut keys = Vec::new();
        for id in ids {
            let (stored, correlation) = keyed(inbound(id, b"<a/>"));
            assert_eq!(correlation, id.replace('\0', "\u{FFFD}"), "the id as it came");
            assert!(!message_id_errors(&stored.message_id).is_empty(), "not a valid id");
            assert!(stored.message_id.starts_with(RULE_BREAKING_PREFIX));
            assert!(!stored.message_id.contains('\0'));
            let (other_body, _) = keyed(inbound(id, b"<b/>"));
            assert_eq!(other_body.message_id, stored.message_id, "keyed by the id alone");
            keys.push(stored.message_id);
        }
        keys.push(keyed(inbound(&long[..64], b"<a/>")).0.message_id);
        keys.push(keyed(inbound("nul\u{FFFD}", b"<a/>")).0.message_id);
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count, "every id its own key");
    }

    /// A message without a `message_id` is keyed by its body: the same body
    /// again is the same key (a duplicate), another body another key (its
    /// own `REJECTED`), and neither is a valid id; its statuses correlate to
    /// the empty id it came with.
    #[test]
    fn a_missing_id_is_keyed_by_the_body() {
        let (first, correlation) = keyed(inbound("", b"<a/>"));
        assert_eq!(correlation, "");
        assert!(first.message_id.starts_with(MISSING_ID_PREFIX));
        assert!(!message_id_errors(&first.message_id).is_empty(), "not a valid id");
        assert_eq!(keyed(inbound("", b"<a/>")).0.message_id, first.message_id);
        assert_ne!(keyed(inbound("", b"<b/>")).0.message_id, first.message_id);
    }
}
