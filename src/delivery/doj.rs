//! The DOJ firearms partner (ICD §7): `POST <url>/doj/firearms/v1/notices`.
//!
//! # Design note
//! - **Body.** The normalized ICD §2 XML ([`write_order`]) of the whole
//!   order as it stands after this message (`job.state`), with the header
//!   of this message (`action`, `sequence`, `sent_at` from `job.order`), and
//!   the image inline when the order has one (the writer emits
//!   `por:OrderImage` itself). The body is a pure function of the job, so a
//!   resend is byte-identical and DOJ answers it `200` with its first answer
//!   instead of `422` ("repeated key with a different body").
//! - **Headers.** `Content-Type: application/xml`, `Idempotency-Key` (ICD §5),
//!   `Authorization: Bearer <token>`.
//! - **Answers** are classified by [`super::http`]: `201`/`200`/`409` →
//!   accepted with the `tracking_id` of the JSON answer (scheme
//!   `tracking_id`; a 2xx without one is still accepted, without an id,
//!   since a resend would only be answered the same way); `400`/`422` →
//!   rejected (dead letter); `429`/`503`/timeouts → retried, honouring
//!   `Retry-After`; `401`/`403` → retried after the credentials cool-down,
//!   ERROR logged, circuit opened.
//! - **Circuit.** Each attempt's [`Signal`](super::circuit::Signal) is
//!   recorded into the adapter's [`Circuits`] (see [`super::http`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use reqwest::header::CONTENT_TYPE;

use super::PartnerAdapter;
use super::circuit::Circuits;
use super::http::{self, idempotency_key};
use super::retry::RetryPolicy;
use crate::config::DojConfig;
use crate::formats::xml::write_order;
use crate::model::PartnerId;
use crate::store::{DeliveryJob, DeliveryResult};

/// The path notices are posted to, under the configured base URL.
pub const NOTICES_PATH: &str = "/doj/firearms/v1/notices";

/// Porter's DOJ adapter.
pub struct DojPartner {
    client: reqwest::Client,
    url: String,
    token: String,
    retry: RetryPolicy,
    circuits: Arc<Circuits>,
}

impl DojPartner {
    /// Builds the adapter; fails when the token was not resolved or the
    /// client cannot be built.
    pub fn new(config: &DojConfig, retry: RetryPolicy) -> anyhow::Result<Self> {
        let token = config
            .token
            .expose()
            .with_context(|| format!("partners.doj.token {} is not resolved", config.token.spec()))?
            .to_string();
        Ok(DojPartner {
            client: http::client(Duration::from_millis(config.timeout_ms))?,
            url: format!("{}{NOTICES_PATH}", config.url.trim_end_matches('/')),
            token,
            retry,
            circuits: Arc::new(Circuits::default()),
        })
    }

    /// Records circuit signals into `circuits` (shared with the loop and
    /// other adapters) instead of the adapter's own.
    pub fn with_circuits(mut self, circuits: Arc<Circuits>) -> Self {
        self.circuits = circuits;
        self
    }

    /// The circuits this adapter records into.
    pub fn circuits(&self) -> Arc<Circuits> {
        self.circuits.clone()
    }
}

/// The notice body: the current order with this message's header.
pub fn notice_body(job: &DeliveryJob) -> Vec<u8> {
    let mut msg = job.state.clone();
    msg.action = job.order.action.or(Some(job.action));
    msg.sequence = job.order.sequence.or(Some(job.sequence));
    msg.sent_at = job.order.sent_at;
    write_order(&msg)
}

impl PartnerAdapter for DojPartner {
    fn partner(&self) -> PartnerId {
        PartnerId::Doj
    }

    async fn attempt(&self, job: DeliveryJob) -> DeliveryResult {
        let at = Utc::now();
        let body = notice_body(&job);
        let request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/xml")
            .header("Idempotency-Key", idempotency_key(&job))
            .bearer_auth(&self.token)
            .body(body.clone());
        let exchange = http::send(request, "DOJ").await;
        self.circuits
            .record(&job.partner, exchange.class.signal(), Instant::now());
        let outcome = http::outcome(&job, &exchange, &self.retry, "tracking_id");
        DeliveryResult {
            delivery_id: job.id,
            attempt: http::attempt_record(at, &body, exchange.response, exchange.error),
            outcome,
        }
    }
}

#[cfg(test)]
mod tests;
