//! The HTTP server: `run(listener, state, shutdown)`, testable on a
//! listener bound to port 0.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::config::LeaConfig;
use crate::intake::Formats;
use crate::status::Relay;
use crate::store::Store;

/// What the handlers need.
#[derive(Clone)]
pub struct OpsState {
    pub store: Arc<dyn Store>,
    /// `true` while RabbitMQ is connected.
    pub amqp_connected: watch::Receiver<bool>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The LEA settings (signing secrets resolved), for the image links.
    pub lea: Option<Arc<LeaConfig>>,
    /// Publishes what operator actions produce (none in tests: the outbox
    /// keeps the rows).
    pub relay: Option<Relay>,
    /// Wakes the delivery loops after a replay.
    pub wake: Option<Arc<Notify>>,
    /// The code lists, to validate an operator's edit.
    pub formats: Option<Arc<Formats>>,
}

/// The router, for tests and for [`run`].
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/images/{sha256}", get(super::images::image))
        .nest("/api/v1", super::api::router())
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    state: OpsState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(s): State<OpsState>) -> (StatusCode, &'static str) {
    let store_ok = s.store.pending_statuses(1).await.is_ok();
    match (*s.amqp_connected.borrow(), store_ok) {
        (true, true) => (StatusCode::OK, "ready\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "RabbitMQ not connected\n"),
        (_, false) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

async fn metrics(State(s): State<OpsState>) -> String {
    s.metrics.render()
}
