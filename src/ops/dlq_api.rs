//! The dead-letter actions and the audit log of the JSON API (`/api/v1`):
//!
//! - `POST /dead-letters/{id}/replay` `{"operator", "reason"}`
//! - `POST /dead-letters/{id}/edit` `{"operator", "reason", "order": {…canonical order…}}`
//! - `POST /dead-letters/{id}/discard` `{"operator", "reason"}`
//! - `POST /dead-letters/replay` `{"operator", "reason", "rate_per_sec", "filter": {"court", "stage",
//!   "partner", "reason", "since", "until", "limit"}}` (bulk)
//! - `GET /audit?dead_letter=&operator=&since=&until=&limit=`
//!
//! Errors are `{"error": "…"}` (an invalid edit adds `"errors": [FieldError…]`):
//! 400 for a bad request or an invalid edit, 404 for an unknown dead letter,
//! 409 when the dead letter's state refuses the action (already accepted by
//! the partner, already resolved, not replayable at its stage).
//!
//! # Design note
//! Bodies are read as bytes and parsed here, so a malformed body is a JSON
//! 400 like every other error. `operator` is required in every body until
//! bearer tokens exist (ICD §10); it is what the audit records.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::dead_letters::{self, BulkReport};
use super::http::OpsState;
use crate::model::{OrderMessage, PartnerId};
use crate::store::{ActionDone, ActionError, AuditEntry, AuditFilter, DeadLetterFilter, OperatorAction, Refusal};

pub fn router() -> Router<OpsState> {
    Router::new()
        .route("/dead-letters/replay", post(bulk_replay))
        .route("/dead-letters/{id}/replay", post(replay))
        .route("/dead-letters/{id}/edit", post(edit))
        .route("/dead-letters/{id}/discard", post(discard))
        .route("/audit", get(audit))
}

type ApiError = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
    (status, Json(json!({ "error": message.to_string() })))
}

fn action_error(e: ActionError) -> ApiError {
    let status = match &e {
        ActionError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ActionError::Refused(r) => match r {
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::ReasonRequired | Refusal::Invalid(_) | Refusal::InvalidEdit(_) => StatusCode::BAD_REQUEST,
            Refusal::Resolved { .. } | Refusal::AlreadyAccepted(_) | Refusal::NotReplayable(_) => StatusCode::CONFLICT,
        },
    };
    let (status, Json(mut body)) = error(status, &e);
    if let ActionError::Refused(Refusal::InvalidEdit(errors)) = &e {
        body["errors"] = json!(errors);
    }
    (status, Json(body))
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    operator: String,
    reason: String,
}

impl ActionBody {
    fn by(self) -> OperatorAction {
        OperatorAction {
            operator: self.operator,
            reason: self.reason,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    operator: String,
    reason: String,
    order: OrderMessage,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FilterJson {
    court: Option<String>,
    stage: Option<String>,
    partner: Option<String>,
    reason: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    operator: String,
    reason: String,
    rate_per_sec: f64,
    #[serde(default)]
    filter: FilterJson,
}

/// What an action did.
#[derive(Serialize)]
struct DoneJson {
    dead_letter_id: i64,
    delivery_id: Option<i64>,
    revision: Option<u32>,
    audit_id: i64,
    /// Dead letters the action produced (a discarded EPO's later CLETS messages).
    dead_letters: Vec<i64>,
}

impl From<ActionDone> for DoneJson {
    fn from(d: ActionDone) -> Self {
        DoneJson {
            dead_letter_id: d.dead_letter_id,
            delivery_id: d.delivery_id,
            revision: d.revision,
            audit_id: d.audit_id,
            dead_letters: d.produced.dead_letters.iter().map(|d| d.id).collect(),
        }
    }
}

async fn replay(State(s): State<OpsState>, Path(id): Path<i64>, body: Bytes) -> Result<Json<DoneJson>, ApiError> {
    let by = parse::<ActionBody>(&body)?.by();
    let done = dead_letters::replay(&s, id, &by).await.map_err(action_error)?;
    Ok(Json(done.into()))
}

async fn edit(State(s): State<OpsState>, Path(id): Path<i64>, body: Bytes) -> Result<Json<DoneJson>, ApiError> {
    let EditBody {
        operator,
        reason,
        order,
    } = parse(&body)?;
    let by = OperatorAction { operator, reason };
    let done = dead_letters::edit(&s, id, &by, order).await.map_err(action_error)?;
    Ok(Json(done.into()))
}

async fn discard(State(s): State<OpsState>, Path(id): Path<i64>, body: Bytes) -> Result<Json<DoneJson>, ApiError> {
    let by = parse::<ActionBody>(&body)?.by();
    let done = dead_letters::discard(&s, id, &by).await.map_err(action_error)?;
    Ok(Json(done.into()))
}

async fn bulk_replay(State(s): State<OpsState>, body: Bytes) -> Result<Json<BulkReport>, ApiError> {
    let BulkBody {
        operator,
        reason,
        rate_per_sec,
        filter,
    } = parse(&body)?;
    let partner = match filter.partner.as_deref().map(PartnerId::parse) {
        Some(None) => return Err(error(StatusCode::BAD_REQUEST, "unknown partner")),
        Some(p) => p,
        None => None,
    };
    let filter = DeadLetterFilter {
        court_ori: filter.court,
        stage: filter.stage,
        partner,
        reason: filter.reason,
        since: filter.since,
        until: filter.until,
        open: Some(true),
        limit: filter.limit,
    };
    let by = OperatorAction { operator, reason };
    let report = dead_letters::replay_matching(&s, filter, &by, rate_per_sec)
        .await
        .map_err(action_error)?;
    Ok(Json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    dead_letter: Option<i64>,
    operator: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct AuditJson {
    id: i64,
    at: DateTime<Utc>,
    operator: String,
    action: String,
    dead_letter_id: i64,
    reason: String,
    details: Value,
}

impl From<AuditEntry> for AuditJson {
    fn from(a: AuditEntry) -> Self {
        AuditJson {
            id: a.id,
            at: a.at,
            operator: a.operator,
            action: a.action,
            dead_letter_id: a.dead_letter_id,
            reason: a.reason,
            details: a.details,
        }
    }
}

async fn audit(State(s): State<OpsState>, Query(q): Query<AuditQuery>) -> Result<Json<Vec<AuditJson>>, ApiError> {
    let filter = AuditFilter {
        dead_letter_id: q.dead_letter,
        operator: q.operator,
        since: q.since,
        until: q.until,
        limit: q.limit,
    };
    let rows = s
        .store
        .audit(&filter)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(rows.into_iter().map(AuditJson::from).collect()))
}

/// The OpenAPI paths of this router, for `/api/v1/openapi.json`.
pub fn openapi_paths() -> Value {
    let id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } });
    let action_body = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "required": ["operator", "reason"],
        "properties": { "operator": { "type": "string" }, "reason": { "type": "string" } }
    }}}});
    let edit_body = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "required": ["operator", "reason", "order"],
        "properties": {
            "operator": { "type": "string" }, "reason": { "type": "string" },
            "order": { "type": "object", "description": "the canonical order message (JSON of OrderMessage)" }
        }
    }}}});
    let bulk_body = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "required": ["operator", "reason", "rate_per_sec"],
        "properties": {
            "operator": { "type": "string" }, "reason": { "type": "string" },
            "rate_per_sec": { "type": "number" },
            "filter": { "type": "object", "properties": {
                "court": { "type": "string" }, "stage": { "type": "string" }, "partner": { "type": "string" },
                "reason": { "type": "string" }, "since": { "type": "string", "format": "date-time" },
                "until": { "type": "string", "format": "date-time" }, "limit": { "type": "integer" }
            }}
        }
    }}}});
    let refusals = json!({
        "200": { "description": "done: dead_letter_id, delivery_id, revision, audit_id, dead_letters" },
        "400": { "description": "bad body, missing operator or reason, or an invalid edit (errors)" },
        "404": { "description": "unknown dead letter" },
        "409": { "description": "partner already accepted, already resolved, or not replayable at its stage" }
    });
    let audit_params: Vec<Value> = ["dead_letter", "operator", "since", "until", "limit"]
        .iter()
        .map(|n| json!({ "name": n, "in": "query", "required": false, "schema": { "type": "string" } }))
        .collect();
    json!({
        "/api/v1/dead-letters/{id}/replay": { "post": {
            "summary": "Replay one dead letter (same revision)",
            "parameters": [id], "requestBody": action_body, "responses": refusals
        }},
        "/api/v1/dead-letters/{id}/edit": { "post": {
            "summary": "Edit the canonical order and replay it as the next revision",
            "parameters": [id], "requestBody": edit_body, "responses": refusals
        }},
        "/api/v1/dead-letters/{id}/discard": { "post": {
            "summary": "Discard one dead letter (releases later sequences)",
            "parameters": [id], "requestBody": action_body, "responses": refusals
        }},
        "/api/v1/dead-letters/replay": { "post": {
            "summary": "Replay the open deliver-stage dead letters matching a filter, at a limited rate",
            "requestBody": bulk_body,
            "responses": {
                "200": { "description": "replayed ids and refused ids with their errors" },
                "400": { "description": "bad body, missing operator or reason, bad rate or stage" }
            }
        }},
        "/api/v1/audit": { "get": {
            "summary": "Operator actions, newest first",
            "parameters": audit_params,
            "responses": { "200": { "description": "audit rows" } }
        }}
    })
}

#[cfg(test)]
mod tests;
