//! Operations surface (ICD §10): health, readiness, Prometheus metrics and
//! the JSON API under `/api/v1`.

pub mod api;
pub mod http;
pub mod images;
pub mod metrics;
