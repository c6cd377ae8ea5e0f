//! Operations surface (ICD §10): health, readiness, Prometheus metrics and
//! the JSON API under `/api/v1`, and `porter dlq` (a client of that API).

pub mod api;
pub mod attempts;
pub mod dead_letters;
pub mod dlq_api;
pub mod dlq_cli;
pub mod http;
pub mod images;
pub mod metrics;
