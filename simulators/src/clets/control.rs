//! The simulator's HTTP control API (ICD §11), for testers and test harnesses:
//! - `GET /_sim/state`: counters, faults and records;
//! - `GET /_sim/messages`: every request received, in order, with its reply;
//! - `GET /_sim/faults`, `POST /_sim/faults`: read or replace the injected faults;
//! - `POST /_sim/reset`: forget records, messages, counters and faults.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use super::{Faults, MessageEntry, Simulator, StateView};

/// The control API's routes over a simulator.
pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/messages", get(messages))
        .route("/_sim/faults", get(faults).post(set_faults))
        .route("/_sim/reset", post(reset))
        .with_state(sim)
}

/// Serves the control API until `stop` turns true.
pub async fn serve(listener: TcpListener, sim: Arc<Simulator>, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
}

async fn state(State(sim): State<Arc<Simulator>>) -> Json<StateView> {
    Json(sim.state())
}

async fn messages(State(sim): State<Arc<Simulator>>) -> Json<Vec<MessageEntry>> {
    Json(sim.messages())
}

async fn faults(State(sim): State<Arc<Simulator>>) -> Json<Faults> {
    Json(sim.faults())
}

async fn set_faults(State(sim): State<Arc<Simulator>>, Json(faults): Json<Faults>) -> Response {
    if let Err(reason) = faults.validate() {
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": reason }))).into_response();
    }
    info!(
        latency_ms = faults.latency_ms,
        busy_rate = faults.busy_rate,
        reject_rate = faults.reject_rate,
        disconnect_rate = faults.disconnect_rate,
        down = faults.down,
        "CLETS simulator faults set."
    );
    sim.set_faults(faults.clone());
    Json(faults).into_response()
}

async fn reset(State(sim): State<Arc<Simulator>>) -> StatusCode {
    sim.reset();
    info!("CLETS simulator reset.");
    StatusCode::NO_CONTENT
}
