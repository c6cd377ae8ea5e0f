//! The DOJ firearms partner (ICD §7): `POST <url>/doj/firearms/v1/notices`.
//!
//! # Design note
//! - **Body.** The normalized ICD §2 XML ([`write_order`]) of the whole
//!   order as it stands after this message (`job.state`), with the header
//!   of this message (`action`, `sequence`, `sent_at` from `job.order`), and
//!   the image inline when the order has one (the writer emits
//!   `por:OrderImage` itself). The body is a pure function of the job and
//!   the image's bytes, so a resend is byte-identical and DOJ answers it
//!   `200` with its first answer instead of `422` ("repeated key with a
//!   different body").
//! - **Image.** A job's orders hold the image by reference (the store keeps
//!   the bytes once). Just before building the body, outside any
//!   transaction, the adapter loads the bytes by SHA-256 from the store it
//!   was given ([`DojPartner::with_images`]) and checks them against the
//!   reference. When they cannot be had (no such image, a store error, a
//!   mismatch) nothing is sent: the attempt is recorded with the reason and
//!   retried like a transient failure, with an ERROR naming the image.
//! - **Record.** The attempt keeps the request without the image's base64
//!   text, with the image's SHA-256 and where the text stood
//!   ([`http::attempt_record_inlining`]); the attempt download rebuilds it.
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
use sha2::{Digest, Sha256};

use super::PartnerAdapter;
use super::circuit::Circuits;
use super::http::{self, idempotency_key};
use super::retry::RetryPolicy;
use crate::config::DojConfig;
use crate::formats::xml::write_order_marking_image;
use crate::model::{OrderImage, PartnerId};
use crate::store::{DeliveryJob, DeliveryResult, Store};

/// The path notices are posted to, under the configured base URL.
pub const NOTICES_PATH: &str = "/doj/firearms/v1/notices";

/// Porter's DOJ adapter.
pub struct DojPartner {
    client: reqwest::Client,
    url: String,
    token: String,
    retry: RetryPolicy,
    circuits: Arc<Circuits>,
    /// Where the orders' image bytes are loaded from.
    images: Option<Arc<dyn Store>>,
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
            images: None,
        })
    }

    /// Loads the orders' image bytes from `store` (without it, an order
    /// with an image cannot be sent).
    pub fn with_images(mut self, store: Arc<dyn Store>) -> Self {
        self.images = Some(store);
        self
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

/// The notice body: the current order with this message's header, the
/// image inline when its bytes are in hand.
pub fn notice_body(job: &DeliveryJob) -> Vec<u8> {
    notice_body_marking_image(job).0
}

/// [`notice_body`], and the span of the image's base64 text when the order
/// has an image with its bytes in hand.
pub fn notice_body_marking_image(job: &DeliveryJob) -> (Vec<u8>, Option<std::ops::Range<usize>>) {
    let mut msg = job.state.clone();
    msg.action = job.order.action.or(Some(job.action));
    msg.sequence = job.order.sequence.or(Some(job.sequence));
    msg.sent_at = job.order.sent_at;
    write_order_marking_image(&msg)
}

impl DojPartner {
    /// Puts the bytes of the job's image (if any) into its order state,
    /// loaded from the store by SHA-256 and checked against the reference.
    /// `Err` says why they cannot be had.
    async fn load_image(&self, job: &mut DeliveryJob) -> Result<(), String> {
        let Some(image) = job.state.image.as_mut() else {
            return Ok(());
        };
        if image.data.is_some() {
            return Ok(());
        }
        let store = self
            .images
            .as_ref()
            .ok_or_else(|| format!("image {} cannot be loaded: the adapter has no store", image.sha256))?;
        match store.image(&image.sha256).await {
            Ok(Some((_, data))) => {
                check_image(image, &data)?;
                image.data = Some(data);
                Ok(())
            }
            Ok(None) => Err(format!("image {} is missing from the store", image.sha256)),
            Err(e) => Err(format!("image {} could not be read: {e}", image.sha256)),
        }
    }
}

/// Checks loaded bytes against the order's image reference.
fn check_image(image: &OrderImage, data: &[u8]) -> Result<(), String> {
    let sha256 = hex::encode(Sha256::digest(data));
    if sha256 != image.sha256 || data.len() as u64 != image.size {
        return Err(format!(
            "image {} in the store does not match the order's reference ({} bytes, sha256 {sha256})",
            image.sha256,
            data.len()
        ));
    }
    Ok(())
}

impl PartnerAdapter for DojPartner {
    fn partner(&self) -> PartnerId {
        PartnerId::Doj
    }

    async fn attempt(&self, mut job: DeliveryJob) -> DeliveryResult {
        let at = Utc::now();
        if let Err(reason) = self.load_image(&mut job).await {
            tracing::error!(
                partner = %job.partner,
                court = %job.court_ori,
                order = %job.order_number,
                delivery = job.id,
                problem = %reason,
                "The order's image cannot be inlined; nothing was sent to DOJ."
            );
            let outcome = self.retry.after_transient(&job, reason.clone(), None);
            return DeliveryResult {
                delivery_id: job.id,
                lease_token: job.lease_token,
                attempt: http::attempt_record(at, &[], None, Some(reason)),
                outcome,
            };
        }
        let (body, span) = notice_body_marking_image(&job);
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
            lease_token: job.lease_token,
            attempt: http::attempt_record_inlining(at, &body, inlined(&job, span), exchange.response, exchange.error),
            outcome,
        }
    }
}

/// The inlined image of the job's body, for the attempt record.
fn inlined(job: &DeliveryJob, span: Option<std::ops::Range<usize>>) -> Option<http::InlinedImage<'_>> {
    Some(http::InlinedImage {
        sha256: &job.state.image.as_ref()?.sha256,
        span: span?,
    })
}

#[cfg(test)]
mod tests;
