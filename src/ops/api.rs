//! The JSON API under `/api/v1`: statuses and deliveries of a message, and
//! dead letters (their actions and the audit log are in [`super::dlq_api`],
//! a delivery's attempts and their requests in [`super::attempts`]).
//! Its OpenAPI document is at `/api/v1/openapi.json`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::OpsState;
use crate::model::{PartnerId, StatusMessage};
use crate::store::{DeadLetterFilter, StoredDeadLetter};

pub fn router() -> Router<OpsState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/courts/{ori}/messages/{message_id}", get(message))
        .route("/dead-letters", get(dead_letters))
        .route("/dead-letters/{id}", get(dead_letter))
        .merge(super::dlq_api::router())
        .merge(super::attempts::router())
}

type ApiError = (StatusCode, Json<Value>);

fn internal(e: impl std::fmt::Display) -> ApiError {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": e.to_string() })),
    )
}

#[derive(Serialize)]
struct MessageView {
    court_ori: String,
    message_id: String,
    statuses: Vec<StatusMessage>,
    deliveries: Vec<DeliveryJson>,
}

#[derive(Serialize)]
struct DeliveryJson {
    /// For `/deliveries/{id}/attempts`.
    id: i64,
    partner: String,
    state: String,
    attempts: u32,
}

async fn message(
    State(s): State<OpsState>,
    Path((ori, message_id)): Path<(String, String)>,
) -> Result<Json<MessageView>, ApiError> {
    let statuses = s
        .store
        .statuses_for_message(&ori, &message_id)
        .await
        .map_err(internal)?;
    if statuses.is_empty() {
        return Err((StatusCode::NOT_FOUND, Json(json!({ "error": "no such message" }))));
    }
    let deliveries = s
        .store
        .deliveries_for_message(&ori, &message_id)
        .await
        .map_err(internal)?;
    Ok(Json(MessageView {
        court_ori: ori,
        message_id,
        statuses: statuses.into_iter().map(|s| s.message).collect(),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryJson {
                id: d.id,
                partner: d.partner.wire_name(),
                state: d.state,
                attempts: d.attempts,
            })
            .collect(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeadLetterQuery {
    court: Option<String>,
    stage: Option<String>,
    partner: Option<String>,
    reason: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// `true`: only open ones; `false`: only resolved ones.
    open: Option<bool>,
    limit: Option<u32>,
}

/// A dead letter without its body, for lists.
#[derive(Serialize)]
struct DeadLetterJson {
    id: i64,
    court_ori: String,
    message_id: String,
    order_number: Option<String>,
    sequence: Option<u32>,
    stage: String,
    partner: Option<String>,
    reason: String,
    errors: Vec<crate::model::FieldError>,
    attempts: u32,
    created_at: DateTime<Utc>,
    content_type: String,
    body_bytes: u64,
    /// `REPLAYED`, `EDIT_REPLAYED` or `DISCARDED`; absent while open.
    resolution: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
}

impl From<StoredDeadLetter> for DeadLetterJson {
    fn from(d: StoredDeadLetter) -> Self {
        DeadLetterJson {
            id: d.id,
            court_ori: d.court_ori,
            message_id: d.message_id,
            order_number: d.order_number,
            sequence: d.sequence,
            stage: d.stage,
            partner: d.partner.map(|p| p.wire_name()),
            reason: d.reason,
            errors: d.errors,
            attempts: d.attempts,
            created_at: d.created_at,
            content_type: d.content_type,
            body_bytes: d.body_bytes,
            resolution: d.resolution.as_ref().map(|r| r.kind.clone()),
            resolved_at: d.resolution.as_ref().map(|r| r.at),
            resolved_by: d.resolution.map(|r| r.by),
        }
    }
}

async fn dead_letters(
    State(s): State<OpsState>,
    Query(q): Query<DeadLetterQuery>,
) -> Result<Json<Vec<DeadLetterJson>>, ApiError> {
    let partner = match q.partner.as_deref().map(PartnerId::parse) {
        Some(None) => return Err((StatusCode::BAD_REQUEST, Json(json!({ "error": "unknown partner" })))),
        Some(p) => p,
        None => None,
    };
    let filter = DeadLetterFilter {
        court_ori: q.court,
        stage: q.stage,
        partner,
        reason: q.reason,
        since: q.since,
        until: q.until,
        open: q.open,
        limit: q.limit,
    };
    let list = s.store.dead_letters(&filter).await.map_err(internal)?;
    Ok(Json(list.into_iter().map(DeadLetterJson::from).collect()))
}

async fn dead_letter(State(s): State<OpsState>, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    match s.store.dead_letter(id).await.map_err(internal)? {
        None => Err((StatusCode::NOT_FOUND, Json(json!({ "error": "no such dead letter" })))),
        Some(d) => {
            let body = String::from_utf8_lossy(&d.body).into_owned();
            let mut v = serde_json::to_value(DeadLetterJson::from(d)).map_err(internal)?;
            v["body"] = Value::String(body);
            Ok(Json(v))
        }
    }
}

async fn openapi() -> Json<Value> {
    let filters: Vec<Value> = ["court", "stage", "partner", "reason", "since", "until", "open", "limit"]
        .iter()
        .map(|n| json!({ "name": n, "in": "query", "required": false, "schema": { "type": "string" } }))
        .collect();
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "Porter operations API", "version": "1" },
        "paths": {
            "/api/v1/courts/{ori}/messages/{message_id}": { "get": {
                "summary": "Every status of one inbound message, and its deliveries",
                "parameters": [
                    { "name": "ori", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "message_id", "in": "path", "required": true, "schema": { "type": "string" } }
                ],
                "responses": { "200": { "description": "statuses and deliveries" }, "404": { "description": "unknown message" } }
            }},
            "/api/v1/dead-letters": { "get": {
                "summary": "Dead letters, newest first, filtered",
                "parameters": filters,
                "responses": { "200": { "description": "dead letters without bodies" } }
            }},
            "/api/v1/dead-letters/{id}": { "get": {
                "summary": "One dead letter with its original body",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }],
                "responses": { "200": { "description": "the dead letter" }, "404": { "description": "unknown id" } }
            }}
        }
    });
    for more in [super::dlq_api::openapi_paths(), super::attempts::openapi_paths()] {
        if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    Json(doc)
}
