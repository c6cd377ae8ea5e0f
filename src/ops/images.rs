//! `GET /images/<sha256>?agency=<ORI>&exp=<unix>&sig=<hex>`: the signed
//! order images the LEA bodies link to (ICD §8).
//!
//! The link is checked against the agency's signing secret and its expiry
//! before anything is read; a bad or expired link is `403`, an unknown
//! image `404`. Only ids are logged.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::http::OpsState;
use crate::delivery::image_link;

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    agency: String,
    exp: i64,
    sig: String,
}

pub async fn image(State(s): State<OpsState>, Path(sha256): Path<String>, Query(q): Query<LinkQuery>) -> Response {
    let Some(secret) = s.lea.as_ref().and_then(|lea| lea.secret(&q.agency)) else {
        return (StatusCode::FORBIDDEN, "unknown agency\n").into_response();
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = image_link::verify(secret, &sha256, &q.agency, q.exp, &q.sig, now) {
        tracing::warn!(agency = %q.agency, image = %sha256, reason = %e, "Refused an image link.");
        return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
    }
    match s.store.image(&sha256).await {
        Ok(Some((mime_type, data))) => ([(header::CONTENT_TYPE, mime_type)], data).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such image\n").into_response(),
        Err(e) => {
            tracing::warn!(image = %sha256, error = %e, "Could not read an image.");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}
