//! The local law-enforcement RMS partners (ICD §8): `POST <endpoint>/orders`,
//! one endpoint and signing secret per agency.
//!
//! # Design note
//! - **Body** ([`LeaBody`], JSON, snake_case, schema
//!   `schemas/lea-order.schema.json`): this message's `action`,
//!   `court_ori`, `order_number`, `sequence` and `sent_at`, the whole current
//!   order (`job.state`, with this message's header) under `order`, and the
//!   image as a signed link under `image`, never inline (the `order` object
//!   has no `image` key).
//! - **Deterministic body.** Every attempt under one Idempotency-Key carries
//!   the same bytes (ICD §5; a receiver answers a repeated key with another
//!   body `422`), so the body is a pure function of the stored job and
//!   never reads the clock. The one time in it, the link's expiry, is
//!   `exp = key_created_at + image_link_days`: anchored at when the content
//!   under the key was made (the delivery's creation, or the edit that made
//!   its revision), which neither a resend nor a plain replay moves. Only
//!   the signature header's `t` changes between attempts. The price: a
//!   plain replay more than `image_link_days` after that instant carries
//!   the original, expired link; an edit-and-replay (a new revision, so a
//!   new key) makes a fresh one.
//! - **Headers.** `Content-Type: application/json`, `Idempotency-Key`,
//!   `X-POR-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!   ([`signature_header`]; [`verify_signature`] is the receiver's check).
//! - **Answers** as classified in [`super::http`]; 2xx/409 → accepted with
//!   the answer's `record_id` (scheme `record_id`) when present. An agency
//!   without a signing secret is treated like refused credentials: nothing
//!   is sent, the job is retried later, ERROR, circuit open.
//! - **Concurrency** is the delivery loop's: each agency is a partner of
//!   its own with `per_agency` attempts in flight at most, and the loop has
//!   `concurrency` in flight over all agencies (see [`super`]). A slow
//!   agency fills only its own `per_agency`.
//! - **One adapter, many agencies.** [`LeaPartner`] delivers any
//!   `PartnerId::Lea(ori)` job, dispatching on `job.partner`. The delivery
//!   loop fetches work per partner id, so the lead runs one loop per agency
//!   with [`LeaPartner::for_agency`]: cheap clones sharing the client, the
//!   semaphores and the circuits, whose `partner()` is that agency. The
//!   unbound adapter's `partner()` is `LEA:` with an empty ORI.
//! - **Circuit.** Each attempt's signal is recorded into the adapter's
//!   [`Circuits`] under the agency's `PartnerId` (see [`super::http`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use sha2::Sha256;

use super::circuit::{Circuits, Signal};
use super::http::{self, idempotency_key};
use super::image_link::{self, hmac_hex};
use super::retry::RetryPolicy;
use super::{PartnerAdapter, Serves};
use crate::config::LeaConfig;
use crate::model::{Action, OrderMessage, PartnerId};
use crate::store::{DeliveryJob, DeliveryResult};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-POR-Signature";
/// How far a receiver lets `t` be from its clock (ICD §8).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The JSON body of ICD §8.
#[derive(Debug, Clone, Serialize)]
pub struct LeaBody {
    pub action: Action,
    pub court_ori: String,
    pub order_number: String,
    pub sequence: u32,
    pub sent_at: Option<DateTime<FixedOffset>>,
    /// The whole current order, without its image.
    pub order: OrderMessage,
    pub image: Option<ImageLink>,
}

/// The signed image, by reference.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLink {
    pub mime_type: String,
    pub sha256: String,
    pub url: String,
}

/// Where and how long an image link is made for. There is no "now" here:
/// the link's expiry counts from the job (see [`link_expiry`]).
#[derive(Debug, Clone, Copy)]
pub struct LinkParams<'a> {
    pub public_base_url: &'a str,
    pub secret: &'a str,
    pub ori: &'a str,
    pub days: u32,
}

impl LeaBody {
    /// The body for `job`, with the image linked as `link` says: a pure
    /// function of both, so every attempt of the job gets the same bytes.
    pub fn new(job: &DeliveryJob, link: &LinkParams<'_>) -> LeaBody {
        let mut order = job.state.clone();
        let image = order.image.take().map(|image| {
            let exp = link_expiry(job, link.days);
            ImageLink {
                url: image_link::link(link.public_base_url, link.secret, &image.sha256, link.ori, exp),
                mime_type: image.mime_type,
                sha256: image.sha256,
            }
        });
        order.action = job.order.action.or(Some(job.action));
        order.sequence = job.order.sequence.or(Some(job.sequence));
        order.sent_at = job.order.sent_at;
        LeaBody {
            action: job.action,
            court_ori: job.court_ori.clone(),
            order_number: job.order_number.clone(),
            sequence: job.sequence,
            sent_at: job.order.sent_at,
            order,
            image,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).expect("LEA body serializes")
    }
}

/// The image link's expiry (unix seconds) in `job`'s body:
/// `key_created_at + days`, the same on every attempt under the job's key.
pub fn link_expiry(job: &DeliveryJob, days: u32) -> i64 {
    (job.key_created_at + chrono::Duration::days(i64::from(days))).timestamp()
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!("t={t},v1={}", hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", body]))
}

/// Why a receiver refuses a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature's time is more than {SIGNATURE_TOLERANCE_SECS} s from the receiver's clock")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The receiver's check of `X-POR-Signature` at `now` (unix seconds), in
/// constant time.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| SignatureError::Mismatch)
}

struct Shared {
    client: reqwest::Client,
    config: LeaConfig,
    public_base_url: String,
    retry: RetryPolicy,
}

/// Porter's LEA adapter (see the module note).
#[derive(Clone)]
pub struct LeaPartner {
    shared: Arc<Shared>,
    circuits: Arc<Circuits>,
    agency: Option<String>,
}

impl LeaPartner {
    /// Builds the adapter for every configured agency. Secrets are looked
    /// up per request, so an agency without one fails only its own jobs.
    pub fn new(config: &LeaConfig, public_base_url: String, retry: RetryPolicy) -> anyhow::Result<Self> {
        let shared = Shared {
            client: http::client(Duration::from_millis(config.timeout_ms))?,
            config: config.clone(),
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
            retry,
        };
        Ok(LeaPartner {
            shared: Arc::new(shared),
            circuits: Arc::new(Circuits::default()),
            agency: None,
        })
    }

    /// The same adapter, reporting `LEA:<ori>` as its partner (one delivery
    /// loop per agency).
    pub fn for_agency(&self, ori: &str) -> LeaPartner {
        LeaPartner {
            agency: Some(ori.to_string()),
            ..self.clone()
        }
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

    async fn deliver(&self, job: &DeliveryJob, ori: &str) -> DeliveryResult {
        let at = Utc::now();
        let shared = &*self.shared;
        let Some(secret) = shared.config.secret(ori) else {
            self.circuits.record(&job.partner, Signal::Credentials, Instant::now());
            return DeliveryResult {
                delivery_id: job.id,
                lease_token: job.lease_token,
                attempt: http::attempt_record(at, b"", None, Some("no signing secret configured".into())),
                outcome: http::credentials_outcome(job, "no signing secret configured for the agency"),
            };
        };
        let link = LinkParams {
            public_base_url: &shared.public_base_url,
            secret,
            ori,
            days: shared.config.image_link_days,
        };
        let body = LeaBody::new(job, &link).to_bytes();
        let request = shared
            .client
            .post(format!("{}/orders", shared.config.endpoint(ori)))
            .header(CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", idempotency_key(job))
            .header(
                SIGNATURE_HEADER,
                signature_header(secret, Utc::now().timestamp(), &body),
            )
            .body(body.clone());
        let exchange = http::send(request, "LEA").await;
        self.circuits
            .record(&job.partner, exchange.class.signal(), Instant::now());
        DeliveryResult {
            delivery_id: job.id,
            lease_token: job.lease_token,
            attempt: http::attempt_record(at, &body, exchange.response.clone(), exchange.error.clone()),
            outcome: http::outcome(job, &exchange, &shared.retry, "record_id"),
        }
    }
}

impl PartnerAdapter for LeaPartner {
    fn partner(&self) -> PartnerId {
        PartnerId::Lea(self.agency.clone().unwrap_or_default())
    }

    fn serves(&self) -> Serves {
        match &self.agency {
            Some(_) => Serves::One(self.partner()),
            None => Serves::AllLea,
        }
    }

    async fn attempt(&self, job: DeliveryJob) -> DeliveryResult {
        let PartnerId::Lea(ori) = job.partner.clone() else {
            // A routing bug, not a partner answer: keep the job and say so.
            tracing::error!(partner = %job.partner, delivery = job.id, "A non-LEA delivery reached the LEA adapter.");
            let outcome =
                self.shared
                    .retry
                    .after_transient(&job, "not an LEA delivery".into(), Some(Duration::from_secs(3600)));
            return DeliveryResult {
                delivery_id: job.id,
                lease_token: job.lease_token,
                attempt: http::attempt_record(Utc::now(), b"", None, Some("not an LEA delivery".into())),
                outcome,
            };
        };
        self.deliver(&job, &ori).await
    }
}

#[cfg(test)]
mod tests;
