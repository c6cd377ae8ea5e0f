//! The control API every partner simulator serves (ICD §11), for testers and test harnesses:
//! - `GET /_sim/state`: counters, faults and records;
//! - `GET /_sim/messages`: the recent requests, oldest first;
//! - `GET /_sim/faults`: the faults in force; `POST /_sim/faults`: replace them (the ICD faults body; a
//!   body that does not parse, or a rate outside 0..1, is `400` with `{"reason": ...}`);
//! - `POST /_sim/reset`: forget records, messages, counters and faults (`204`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize as _, Serialize};
use tracing::info;

use super::Faults;
use super::http::reason;

/// What a simulator offers its control API.
pub trait SimControl: Send + Sync + 'static {
    /// The simulator's name in log lines ("CLETS", "DOJ", "LEA").
    const NAME: &'static str;
    /// The body of `GET /_sim/state`.
    type State: Serialize;
    /// One entry of `GET /_sim/messages`.
    type Message: Serialize;
    /// The body of `GET /_sim/faults` (and of the answer to `POST /_sim/faults`).
    type FaultsView: Serialize;

    /// Counters, faults and records.
    fn state(&self) -> Self::State;
    /// The logged requests, oldest first.
    fn messages(&self) -> Vec<Self::Message>;
    /// The faults in force.
    fn faults(&self) -> Self::FaultsView;
    /// Replaces faults that [`Faults::validate`] accepted; an `Err` is answered `400` with its reason.
    fn set_faults(&self, faults: Faults) -> Result<(), String>;
    /// Forgets records, messages, counters and faults.
    fn reset(&self);
}

/// The control API's routes over a simulator.
pub fn router<S: SimControl>(sim: Arc<S>) -> Router {
    Router::new()
        .route("/_sim/state", get(state::<S>))
        .route("/_sim/messages", get(messages::<S>))
        .route("/_sim/faults", get(faults::<S>).post(set_faults::<S>))
        .route("/_sim/reset", post(reset::<S>))
        .with_state(sim)
}

async fn state<S: SimControl>(State(sim): State<Arc<S>>) -> Json<S::State> {
    Json(sim.state())
}

async fn messages<S: SimControl>(State(sim): State<Arc<S>>) -> Json<Vec<S::Message>> {
    Json(sim.messages())
}

async fn faults<S: SimControl>(State(sim): State<Arc<S>>) -> Json<S::FaultsView> {
    Json(sim.faults())
}

async fn set_faults<S: SimControl>(State(sim): State<Arc<S>>, body: Bytes) -> Response {
    // Through a `Value`, so that only an object is taken (serde would also read a struct from an array).
    let parsed = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|value| match value {
            serde_json::Value::Object(_) => Faults::deserialize(value).map_err(|e| e.to_string()),
            _ => Err("the faults body must be a JSON object".into()),
        });
    let faults = match parsed {
        Ok(faults) => faults,
        Err(e) => return reason(StatusCode::BAD_REQUEST, format!("invalid faults body: {e}")),
    };
    if let Err(why) = faults.validate().and_then(|()| sim.set_faults(faults.clone())) {
        return reason(StatusCode::BAD_REQUEST, why);
    }
    info!(
        latency_ms = faults.latency_ms,
        busy_rate = faults.busy_rate,
        reject_rate = faults.reject_rate,
        disconnect_rate = faults.disconnect_rate,
        down = faults.down,
        agency = faults.agency.as_deref(),
        "{} simulator faults set.",
        S::NAME
    );
    Json(sim.faults()).into_response()
}

async fn reset<S: SimControl>(State(sim): State<Arc<S>>) -> StatusCode {
    sim.reset();
    info!("{} simulator reset.", S::NAME);
    StatusCode::NO_CONTENT
}
