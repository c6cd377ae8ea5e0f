//! Dead-letter operations as the running broker performs them (ICD §9): the
//! store's actions, then what the broker does about them. The HTTP API
//! (and, through it, `porter dlq`) calls these.
//!
//! # Design note
//! - **After an action**, the statuses and dead letters it produced (a
//!   discarded EPO's later CLETS messages) go to the [`Relay`] in the
//!   background (the outbox sweep re-sends them if that fails), and the
//!   delivery loops are woken, so a replay goes out at once.
//! - **Edits** are checked by the stateless validator the intake uses
//!   ([`crate::validate::validate`]) against the dead letter's court, without
//!   the AMQP user check (there is no AMQP message); then the store checks
//!   that the message's identity is unchanged. Only stage `deliver` dead
//!   letters are validated; the store refuses the others.
//! - **Bulk replay** takes the open dead letters at stage `deliver` matching
//!   the filter (at most `limit`: 100 by default, 1000 at most), oldest first,
//!   and replays them at `rate_per_sec`, each audited as `BULK_REPLAY`. It
//!   returns when done, with what was replayed and what was refused.
//! - **Operator identity** comes from the request until bearer tokens exist.

use std::time::Duration;

use crate::model::{FieldError, Locations, OrderMessage};
use crate::ops::http::OpsState;
use crate::status::Relay;
use crate::store::{ActionDone, ActionError, DeadLetterFilter, DeadLetterStage, OperatorAction, Refusal};
use crate::validate::{ValidationContext, validate};

/// Most dead letters one bulk replay takes.
pub const BULK_MAX: u32 = 1000;

/// What a bulk replay did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BulkReport {
    pub replayed: Vec<i64>,
    pub refused: Vec<BulkRefusal>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BulkRefusal {
    pub id: i64,
    pub error: String,
}

pub async fn replay(s: &OpsState, id: i64, by: &OperatorAction) -> Result<ActionDone, ActionError> {
    let done = s.store.replay_dead_letter(id, by, false).await?;
    after(s, &done);
    Ok(done)
}

pub async fn edit(s: &OpsState, id: i64, by: &OperatorAction, order: OrderMessage) -> Result<ActionDone, ActionError> {
    let dead_letter = s.store.dead_letter(id).await?.ok_or(Refusal::NotFound(id))?;
    if dead_letter.stage == DeadLetterStage::Deliver.as_str() {
        let errors = validation_errors(s, &dead_letter.court_ori, &order)?;
        if !errors.is_empty() {
            return Err(Refusal::InvalidEdit(errors).into());
        }
    }
    let done = s.store.edit_and_replay(id, by, order).await?;
    after(s, &done);
    Ok(done)
}

pub async fn discard(s: &OpsState, id: i64, by: &OperatorAction) -> Result<ActionDone, ActionError> {
    let done = s.store.discard_dead_letter(id, by).await?;
    after(s, &done);
    Ok(done)
}

/// Replays the open `deliver` dead letters matching `filter`, at most
/// `rate_per_sec` a second.
pub async fn replay_matching(
    s: &OpsState,
    mut filter: DeadLetterFilter,
    by: &OperatorAction,
    rate_per_sec: f64,
) -> Result<BulkReport, ActionError> {
    if by.operator.trim().is_empty() || by.reason.trim().is_empty() {
        return Err(Refusal::ReasonRequired.into());
    }
    if !(rate_per_sec.is_finite() && rate_per_sec > 0.0 && rate_per_sec <= 1000.0) {
        return Err(Refusal::Invalid("rate_per_sec must be above 0 and at most 1000".into()).into());
    }
    let deliver = DeadLetterStage::Deliver.as_str();
    if filter.stage.as_deref().is_some_and(|stage| stage != deliver) {
        return Err(Refusal::Invalid("bulk replay replays stage deliver only".into()).into());
    }
    filter.stage = Some(deliver.to_string());
    filter.open = Some(true);
    filter.limit = Some(filter.limit.unwrap_or(100).min(BULK_MAX));
    let mut list = s.store.dead_letters(&filter).await?;
    list.reverse();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate_per_sec));
    let mut report = BulkReport::default();
    for dead_letter in list {
        ticker.tick().await;
        match s.store.replay_dead_letter(dead_letter.id, by, true).await {
            Ok(done) => {
                after(s, &done);
                report.replayed.push(dead_letter.id);
            }
            Err(ActionError::Refused(r)) => report.refused.push(BulkRefusal {
                id: dead_letter.id,
                error: r.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    tracing::info!(
        replayed = report.replayed.len(),
        refused = report.refused.len(),
        "Bulk replay of dead letters done."
    );
    Ok(report)
}

fn validation_errors(s: &OpsState, court_ori: &str, order: &OrderMessage) -> Result<Vec<FieldError>, Refusal> {
    let Some(formats) = &s.formats else {
        return Err(Refusal::Invalid(
            "edits need the code lists, which this server has not loaded".into(),
        ));
    };
    let ctx = ValidationContext {
        queue_court_ori: court_ori,
        user_id: None,
        amqp_users: &[],
        codes: &formats.codes,
    };
    Ok(validate(order, &Locations::default(), &ctx))
}

/// Publishes what the action produced and wakes the delivery loops.
fn after(s: &OpsState, done: &ActionDone) {
    tracing::info!(
        dead_letter = done.dead_letter_id,
        delivery = done.delivery_id,
        audit = done.audit_id,
        "Operator action on a dead letter done."
    );
    if let Some(relay) = s.relay.clone() {
        publish(relay, done);
    }
    if let Some(wake) = &s.wake {
        wake.notify_waiters();
    }
}

fn publish(relay: Relay, done: &ActionDone) {
    let statuses = done.produced.statuses.clone();
    let dead = done.produced.dead_letters.clone();
    if statuses.is_empty() && dead.is_empty() {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = relay.send(&statuses, &dead).await {
            tracing::warn!(error = %e, "Publishing after an operator action failed; the sweep will re-send.");
        }
    });
}
