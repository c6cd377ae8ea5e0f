//! What the HTTP partners (DOJ, ICD §7; LEA, ICD §8) have in common: the
//! classification of an answer, the Idempotency-Key, the HTTP client and how
//! an attempt is recorded.
//!
//! # Design note
//! One classification serves both partners (ICD §8, "the same
//! classification applies to DOJ"):
//!
//! | answer | [`HttpClass`] | outcome | circuit [`Signal`] |
//! |---|---|---|---|
//! | 2xx, 409 | `Done` | accepted | `Success` |
//! | 408, 425, 429, 5xx, timeout, connection error | `Transient` | [`RetryPolicy::after_transient`] (honouring `Retry-After`) | `Transient` |
//! | 401, 403 | `Credentials` | `Retry` at the credentials cool-down, ERROR log, never a dead letter | `Credentials` |
//! | other 4xx (and 1xx/3xx, which a partner must not send) | `Permanent` | `Rejected` (dead letter) | `Success` |
//!
//! A permanent rejection counts as a success for the circuit: the partner is
//! up and answering; it is the message that is wrong.
//!
//! **How the circuit signal reaches the loop.** The adapters hold an
//! `Arc<`[`Circuits`]`>` and record each attempt's [`Signal`] into it
//! themselves (they know the HTTP status; a [`DeliveryResult`] does not carry
//! it, and the shared store types stay unchanged). The loop only asks
//! [`Circuits::allow`] before it attempts a job for a partner (and may skip
//! fetching work for [`Circuits::open_partners`]). The adapters' `circuits()`
//! returns the registry; `with_circuits` makes several adapters share one.
//!
//! **Recording.** Every attempt keeps the request bytes and the answer as
//! `"<status> <body, at most MAX_RECORDED_RESPONSE bytes>"`. A request that
//! inlines the order's image (DOJ, ICD §7) is kept without the image's
//! base64 text, with the image's SHA-256 and the offset where the text
//! stood ([`attempt_record_inlining`]); the image itself is in the store
//! once, so a 10 MiB image retried for a day costs a few kilobytes per
//! attempt, and [`rebuild_request`] gives the exact request back for the
//! attempt download. Any other body over [`MAX_RECORDED_REQUEST`] is cut,
//! with its size and SHA-256.
//!
//! [`RetryPolicy::after_transient`]: super::retry::RetryPolicy::after_transient
//! [`Circuits`]: super::circuit::Circuits
//! [`Circuits::allow`]: super::circuit::Circuits::allow
//! [`Circuits::open_partners`]: super::circuit::Circuits::open_partners
//! [`DeliveryResult`]: crate::store::DeliveryResult

use std::ops::Range;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use sha2::{Digest, Sha256};

use super::circuit::{CREDENTIALS_COOL_DOWN, Signal};
use super::retry::RetryPolicy;
use crate::formats::xml::image_base64;
use crate::model::PartnerRecordId;
use crate::store::{AttemptImage, DeliveryJob, DeliveryOutcome, PartnerAttempt};

/// The longest `Retry-After` honoured; a partner asking for more is retried
/// after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The longest partner reason kept from a rejection, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest response body kept with an attempt, in bytes.
pub const MAX_RECORDED_RESPONSE: usize = 4096;
/// The longest request body kept with an attempt, in bytes.
pub const MAX_RECORDED_REQUEST: usize = 64 * 1024;

/// What an HTTP answer (or the lack of one) means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpClass {
    /// 2xx or 409: the partner has the message.
    Done,
    /// Try again later, not before `retry_after` when the partner said so.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 401 or 403: Porter's credentials for this partner are wrong.
    Credentials { status: u16 },
    /// Any other 4xx: the partner refuses this message for good.
    Permanent { reason: String },
}

impl HttpClass {
    /// The signal this answer gives the partner's circuit.
    pub fn signal(&self) -> Signal {
        match self {
            HttpClass::Done | HttpClass::Permanent { .. } => Signal::Success,
            HttpClass::Transient { .. } => Signal::Transient,
            HttpClass::Credentials { .. } => Signal::Credentials,
        }
    }
}

/// Classifies an answer per ICD §8. `now` is only used to turn an HTTP-date
/// `Retry-After` into a delay.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> HttpClass {
    let code = status.as_u16();
    if status.is_success() || code == 409 {
        return HttpClass::Done;
    }
    if matches!(code, 401 | 403) {
        return HttpClass::Credentials { status: code };
    }
    if matches!(code, 408 | 425 | 429) || status.is_server_error() {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        return HttpClass::Transient {
            reason: format!("HTTP {code}"),
            retry_after,
        };
    }
    let reason = match partner_reason(body) {
        Some(reason) => format!("HTTP {code}: {reason}"),
        None => format!("HTTP {code}"),
    };
    HttpClass::Permanent { reason }
}

/// Classifies a request that got no answer: always transient.
pub fn classify_error(error: &reqwest::Error) -> HttpClass {
    let what = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection error"
    } else {
        "request failed"
    };
    HttpClass::Transient {
        reason: format!("{what}: {}", error_chain(error)),
        retry_after: None,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// `Retry-After` in delay-seconds or as an HTTP-date (IMF-fixdate), capped at
/// [`MAX_RETRY_AFTER`]. A date in the past is zero; anything unreadable is
/// `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        let at = SystemTime::from(at.with_timezone(&Utc));
        at.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The partner's `reason` from a JSON error body, single-line and at most
/// [`MAX_REASON_CHARS`] characters.
pub fn partner_reason(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let reason = value.get("reason")?;
    let text = match reason {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

/// A string field of a JSON answer (`tracking_id`, `record_id`), when
/// present and not empty.
pub fn json_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get(field)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The Idempotency-Key of ICD §5:
/// `por:<court ORI>:<order number>:<sequence>:<partner>:<revision>`, with the
/// partner as `DOJ` or `LEA-<ORI>`. Deterministic, so a resend carries the
/// same key; an edit-and-replay (a new revision) gets a new one.
pub fn idempotency_key(job: &DeliveryJob) -> String {
    format!(
        "por:{}:{}:{}:{}:{}",
        job.court_ori,
        job.order_number,
        job.sequence,
        job.partner.key_name(),
        job.revision
    )
}

/// An HTTP client for one partner adapter, with the configured timeout for
/// a whole request (connect, send, answer).
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("porter/", env!("CARGO_PKG_VERSION")))
        .build()?;
    Ok(client)
}

/// The answer as recorded: `"<status> <body, cut to MAX_RECORDED_RESPONSE bytes>"`.
pub fn response_text(status: StatusCode, body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_RECORDED_RESPONSE)];
    let text = String::from_utf8_lossy(cut);
    let mut out = format!("{} {}", status.as_u16(), text.trim_end_matches('\u{FFFD}'));
    if body.len() > MAX_RECORDED_RESPONSE {
        out.push_str(&format!(" …[{} bytes in all]", body.len()));
    }
    out
}

/// The request as recorded: the body itself, or, over
/// [`MAX_RECORDED_REQUEST`], its start and a note of its size and SHA-256.
pub fn recorded_request(body: &[u8]) -> Vec<u8> {
    if body.len() <= MAX_RECORDED_REQUEST {
        return body.to_vec();
    }
    let mut out = body[..MAX_RECORDED_REQUEST].to_vec();
    let note = format!(
        "\n…[cut: {} bytes in all, sha256 {}]",
        body.len(),
        hex::encode(Sha256::digest(body))
    );
    out.extend_from_slice(note.as_bytes());
    out
}

/// An attempt as recorded.
pub fn attempt_record(
    at: DateTime<Utc>,
    request: &[u8],
    response: Option<String>,
    error: Option<String>,
) -> PartnerAttempt {
    PartnerAttempt {
        at,
        request: recorded_request(request),
        image: None,
        response,
        error,
    }
}

/// An order image inlined in a request body: its SHA-256 and where its
/// base64 text is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinedImage<'a> {
    pub sha256: &'a str,
    pub span: Range<usize>,
}

/// An attempt as recorded, for a request that may inline an order image:
/// the body without the image's base64 text, and the image's SHA-256 and
/// offset, so that [`rebuild_request`] gives the exact request back. What is
/// left is bounded like any request (then the image is not referred to).
pub fn attempt_record_inlining(
    at: DateTime<Utc>,
    request: &[u8],
    image: Option<InlinedImage<'_>>,
    response: Option<String>,
    error: Option<String>,
) -> PartnerAttempt {
    let Some(InlinedImage { sha256, span }) = image.filter(|i| i.span.end <= request.len() && !i.span.is_empty())
    else {
        return attempt_record(at, request, response, error);
    };
    let mut rest = Vec::with_capacity(request.len() - span.len());
    rest.extend_from_slice(&request[..span.start]);
    rest.extend_from_slice(&request[span.end..]);
    if rest.len() > MAX_RECORDED_REQUEST {
        return attempt_record(at, request, response, error);
    }
    PartnerAttempt {
        at,
        request: rest,
        image: Some(AttemptImage {
            sha256: sha256.to_string(),
            offset: span.start,
        }),
        response,
        error,
    }
}

/// The request an attempt sent: its recorded request with `image` (the
/// bytes of `attempt.image`) put back as base64 text where it was cut out.
/// An attempt without an image is its recorded request. `None` when the
/// recorded offset is past the request (a corrupt record).
pub fn rebuild_request(attempt: &PartnerAttempt, image: &[u8]) -> Option<Vec<u8>> {
    let Some(reference) = &attempt.image else {
        return Some(attempt.request.clone());
    };
    let (before, after) = attempt.request.split_at_checked(reference.offset)?;
    let text = image_base64(image);
    let mut out = Vec::with_capacity(attempt.request.len() + text.len());
    out.extend_from_slice(before);
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(after);
    Some(out)
}

/// The job's outcome when the partner refused Porter's credentials (401,
/// 403), or Porter has none for it: an ERROR naming the partner (ids only),
/// and a `Retry` after the credentials cool-down. Never a dead letter, and
/// not counted as a transient failure: the message is fine, the
/// configuration is not. (The store still counts the attempt.)
pub fn credentials_outcome(job: &DeliveryJob, what: &str) -> DeliveryOutcome {
    tracing::error!(
        partner = %job.partner,
        court = %job.court_ori,
        order = %job.order_number,
        delivery = job.id,
        problem = what,
        "Partner refused Porter's credentials; its circuit opens and the message waits. Fix the token or secret."
    );
    let wait = chrono::Duration::from_std(CREDENTIALS_COOL_DOWN).unwrap_or(chrono::Duration::seconds(60));
    DeliveryOutcome::Retry {
        next_attempt_at: Utc::now() + wait,
        reason: format!("credentials refused: {what}"),
    }
}

/// What came of one request: its classification, and the answer or the
/// transport error as recorded.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub class: HttpClass,
    /// The answer's body (empty when there was none).
    pub body: Vec<u8>,
    /// `"<status> <body>"`, when there was an answer.
    pub response: Option<String>,
    /// The transport problem, when there was no answer.
    pub error: Option<String>,
}

/// Sends a request and classifies what comes back. A body that cannot be
/// read to its end is a transient failure (a resend with the same key is
/// safe). Records `porter_partner_request_seconds{partner}`.
pub async fn send(request: reqwest::RequestBuilder, label: &'static str) -> Exchange {
    let started = std::time::Instant::now();
    let answer = match request.send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            response.bytes().await.map(|body| (status, headers, body))
        }
        Err(e) => Err(e),
    };
    metrics::histogram!("porter_partner_request_seconds", "partner" => label).record(started.elapsed().as_secs_f64());
    match answer {
        Ok((status, headers, body)) => Exchange {
            class: classify(status, &headers, &body, SystemTime::now()),
            response: Some(response_text(status, &body)),
            body: body.to_vec(),
            error: None,
        },
        Err(e) => {
            let class = classify_error(&e);
            let error = match &class {
                HttpClass::Transient { reason, .. } => reason.clone(),
                _ => e.to_string(),
            };
            Exchange {
                class,
                body: Vec::new(),
                response: None,
                error: Some(error),
            }
        }
    }
}

/// The job's outcome for an exchange. `Done` is accepted, with the record
/// id from the JSON answer's `id_field` under `scheme` when there is one (a
/// 2xx without it is still accepted: the partner has the message, and a
/// resend would only be answered the same way; a WARN says so). The rest
/// follows the table in the module note.
pub fn outcome(job: &DeliveryJob, exchange: &Exchange, retry: &RetryPolicy, id_field: &str) -> DeliveryOutcome {
    match &exchange.class {
        HttpClass::Done => {
            let id = json_field(&exchange.body, id_field);
            if id.is_none() {
                tracing::warn!(partner = %job.partner, court = %job.court_ori, order = %job.order_number, delivery = job.id, "Partner accepted the message without a record id.");
            }
            DeliveryOutcome::Accepted {
                record_ids: id
                    .map(|id| PartnerRecordId {
                        scheme: id_field.to_string(),
                        id,
                    })
                    .into_iter()
                    .collect(),
                nic: None,
                warnings: Vec::new(),
            }
        }
        HttpClass::Transient { reason, retry_after } => retry.after_transient(job, reason.clone(), *retry_after),
        HttpClass::Credentials { status } => credentials_outcome(job, &format!("HTTP {status}")),
        HttpClass::Permanent { reason } => {
            tracing::error!(partner = %job.partner, court = %job.court_ori, order = %job.order_number, sequence = job.sequence, delivery = job.id, "Partner rejected the message permanently; it is now a dead letter for operators.");
            DeliveryOutcome::Rejected {
                reason: reason.clone(),
                warnings: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, OrderMessage, PartnerId};

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, retry_after.parse().unwrap());
        h
    }

    fn class(code: u16, body: &[u8]) -> HttpClass {
        classify(
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
            body,
            SystemTime::now(),
        )
    }

    /// Every status class of ICD §8 maps to its class and circuit signal.
    #[test]
    fn statuses_are_classified_per_icd() {
        for code in [200, 201, 202, 204, 409] {
            assert_eq!(class(code, b""), HttpClass::Done, "{code}");
        }
        for code in [408, 425, 429, 500, 502, 503, 504] {
            assert!(matches!(class(code, b""), HttpClass::Transient { .. }), "{code}");
            assert_eq!(class(code, b"").signal(), Signal::Transient);
        }
        for code in [401, 403] {
            assert_eq!(class(code, b""), HttpClass::Credentials { status: code });
            assert_eq!(class(code, b"").signal(), Signal::Credentials);
        }
        for code in [400, 404, 410, 413, 422] {
            assert!(matches!(class(code, b""), HttpClass::Permanent { .. }), "{code}");
            assert_eq!(class(code, b"").signal(), Signal::Success);
        }
    }

    /// A permanent rejection's reason comes from the JSON `reason`, single
    /// line and bounded; without one it is just the status.
    #[test]
    fn permanent_reason_is_taken_from_json_and_bounded() {
        let HttpClass::Permanent { reason } = class(422, br#"{"reason":"bad\nORI"}"#) else {
            panic!()
        };
        assert_eq!(reason, "HTTP 422: bad ORI");
        let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(5000));
        let HttpClass::Permanent { reason } = class(400, long.as_bytes()) else {
            panic!()
        };
        assert_eq!(reason.chars().count(), "HTTP 400: ".len() + MAX_REASON_CHARS);
        assert_eq!(
            class(400, b"<html>"),
            HttpClass::Permanent {
                reason: "HTTP 400".into()
            }
        );
    }

    /// `Retry-After` is read as seconds or as an HTTP-date, capped at an
    /// hour; garbage is ignored.
    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        let at = DateTime::<Utc>::from(now + Duration::from_secs(120));
        let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let c = classify(StatusCode::TOO_MANY_REQUESTS, &headers("7"), b"", now);
        assert_eq!(
            c,
            HttpClass::Transient {
                reason: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    /// The Idempotency-Key has the ICD §5 shape, with `LEA-<ORI>` for an
    /// agency.
    #[test]
    fn idempotency_key_shape() {
        let mut job = DeliveryJob {
            id: 1,
            lease_token: 0,
            partner: PartnerId::Doj,
            court_ori: "CA034025J".into(),
            message_id: "m".into(),
            order_number: "24DV01234".into(),
            sequence: 3,
            action: Action::Modify,
            revision: 1,
            order: OrderMessage::default(),
            state: OrderMessage::default(),
            nic: None,
            attempts: 0,
            first_attempt_at: None,
            created_at: Utc::now(),
            key_created_at: Utc::now(),
        };
        assert_eq!(idempotency_key(&job), "por:CA034025J:24DV01234:3:DOJ:1");
        job.partner = PartnerId::Lea("CA0341100".into());
        assert_eq!(idempotency_key(&job), "por:CA034025J:24DV01234:3:LEA-CA0341100:1");
    }

    /// Long requests and answers are cut when recorded, saying how long
    /// they were.
    #[test]
    fn records_are_bounded() {
        let big = vec![b'a'; MAX_RECORDED_REQUEST + 10];
        let kept = recorded_request(&big);
        assert!(kept.len() < MAX_RECORDED_REQUEST + 200);
        assert!(String::from_utf8_lossy(&kept).contains(&format!("{} bytes in all", big.len())));
        let text = response_text(StatusCode::OK, &vec![b'b'; 10_000]);
        assert!(text.starts_with("200 bbb") && text.ends_with("[10000 bytes in all]"));
        assert_eq!(response_text(StatusCode::CREATED, b"{}"), "201 {}");
    }

    /// A request that inlines an image is recorded without the image's
    /// text and rebuilt exactly; a span outside the body records the body
    /// as is, and a corrupt offset rebuilds nothing.
    #[test]
    fn inlined_images_are_cut_out_and_put_back() {
        let image = vec![7u8; 100_000];
        let text = image_base64(&image);
        let body = format!("<x><i>{text}</i></x>").into_bytes();
        let span = 6..6 + text.len();
        let inlined = InlinedImage {
            sha256: "ab",
            span: span.clone(),
        };
        let record = attempt_record_inlining(Utc::now(), &body, Some(inlined), None, None);
        assert_eq!(record.request, b"<x><i></i></x>");
        assert_eq!(
            record.image,
            Some(AttemptImage {
                sha256: "ab".into(),
                offset: 6
            })
        );
        assert_eq!(rebuild_request(&record, &image), Some(body.clone()));

        let outside = InlinedImage {
            sha256: "ab",
            span: 6..body.len() + 1,
        };
        let record = attempt_record_inlining(Utc::now(), b"<x/>", Some(outside), None, None);
        assert_eq!((record.request.as_slice(), record.image), (&b"<x/>"[..], None));

        let mut corrupt =
            attempt_record_inlining(Utc::now(), &body, Some(InlinedImage { sha256: "ab", span }), None, None);
        corrupt.image.as_mut().unwrap().offset = 999;
        assert_eq!(rebuild_request(&corrupt, &image), None);
    }
}
