//! A delivery's partner attempts in the JSON API (`/api/v1`):
//!
//! - `GET /deliveries/{id}/attempts`: every attempt, oldest first, without
//!   the request: `[{"n", "at", "recorded_bytes", "image_sha256", "response",
//!   "error"}]` (`n` counts from 1; `recorded_bytes` is the size of the request
//!   as kept, without an inlined image's text).
//! - `GET /deliveries/{id}/attempts/{n}/request`: the request attempt `n`
//!   sent, byte for byte (`application/octet-stream`).
//!
//! # Design note
//! A recorded request that inlined an order image (DOJ) is kept without the
//! image's base64 text, with the image's SHA-256 and offset (see
//! [`crate::delivery::http`]). The download loads the image from the store
//! and puts its text back ([`rebuild_request`]), so it is the exact request.
//! An image no longer kept is `404` with a JSON reason; nothing is logged
//! but ids.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::http::OpsState;
use crate::delivery::http::rebuild_request;
use crate::store::PartnerAttempt;

/// The routes, merged into `/api/v1`.
pub fn router() -> Router<OpsState> {
    Router::new()
        .route("/deliveries/{id}/attempts", get(list))
        .route("/deliveries/{id}/attempts/{n}/request", get(request))
}

type ApiError = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
    (status, Json(json!({ "error": message.to_string() })))
}

/// One attempt, without its request.
#[derive(Serialize)]
struct AttemptJson {
    n: usize,
    at: DateTime<Utc>,
    /// The size of the request as kept (without an inlined image's text).
    recorded_bytes: usize,
    /// The order image the request inlined, if any.
    image_sha256: Option<String>,
    response: Option<String>,
    error: Option<String>,
}

async fn attempts(s: &OpsState, delivery_id: i64) -> Result<Vec<PartnerAttempt>, ApiError> {
    s.store.partner_attempts(delivery_id).await.map_err(|e| {
        tracing::warn!(delivery = delivery_id, error = %e, "Could not read partner attempts.");
        error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    })
}

async fn list(State(s): State<OpsState>, Path(id): Path<i64>) -> Result<Json<Vec<AttemptJson>>, ApiError> {
    let list = attempts(&s, id).await?;
    let out = list.into_iter().enumerate().map(|(i, a)| AttemptJson {
        n: i + 1,
        at: a.at,
        recorded_bytes: a.request.len(),
        image_sha256: a.image.map(|i| i.sha256),
        response: a.response,
        error: a.error,
    });
    Ok(Json(out.collect()))
}

async fn request(State(s): State<OpsState>, Path((id, n)): Path<(i64, usize)>) -> Result<Response, ApiError> {
    let all = attempts(&s, id).await?;
    let Some(attempt) = n.checked_sub(1).and_then(|i| all.get(i)) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("delivery {id} has no attempt {n}"),
        ));
    };
    let image = match &attempt.image {
        None => Vec::new(),
        Some(reference) => match s.store.image(&reference.sha256).await {
            Ok(Some((_, data))) => data,
            Ok(None) => {
                let why = format!("the image {} this request inlined is no longer kept", reference.sha256);
                return Err(error(StatusCode::NOT_FOUND, why));
            }
            Err(e) => {
                tracing::warn!(image = %reference.sha256, error = %e, "Could not read an image.");
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"));
            }
        },
    };
    let Some(bytes) = rebuild_request(attempt, &image) else {
        tracing::warn!(
            delivery = id,
            attempt = n,
            "A recorded request's image offset is out of range."
        );
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the recorded request is corrupt",
        ));
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// The OpenAPI paths of these routes.
pub fn openapi_paths() -> Value {
    let id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } });
    let n = json!({ "name": "n", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } });
    json!({
        "/api/v1/deliveries/{id}/attempts": { "get": {
            "summary": "A delivery's partner attempts, oldest first, without their requests",
            "parameters": [id],
            "responses": { "200": { "description": "attempts (n, at, recorded_bytes, image_sha256, response, error)" } }
        }},
        "/api/v1/deliveries/{id}/attempts/{n}/request": { "get": {
            "summary": "The request attempt n sent, byte for byte (an inlined image put back)",
            "parameters": [id, n],
            "responses": {
                "200": { "description": "the request bytes", "content": { "application/octet-stream": {} } },
                "404": { "description": "no such attempt, or its image is no longer kept" }
            }
        }}
    })
}

#[cfg(test)]
mod tests;
