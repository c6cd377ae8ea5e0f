//! The request pipeline shared by the HTTP partner simulators (DOJ §7, LEA §8).
//!
//! Each request goes through these steps; the simulator supplies the ones marked *own*:
//! 1. The body is read (at most [`MAX_BODY_BYTES`], else `413`) and the request counts as `received`.
//! 2. The faults in force are rolled ([`Faults::roll`]).
//! 3. [`transient_faults`]: the `latency_ms` delay, then `down` and `busy_rate`, both `503` with
//!    `Retry-After: 1`, counted as `busy`.
//! 4. *own*: authentication (`401`).
//! 5. [`idempotency_key`]: the `Idempotency-Key` header is required (`400`).
//! 6. [`IdempotencyStore::lookup`]: a known key with a byte-identical body (SHA-256) gets the first answer
//!    again, `200`, counted as a `duplicate`; with a different body `422`. A repeated key is answered
//!    here, before the content and the order's state are looked at.
//! 7. The `reject_rate` fault: `400` with a reason.
//! 8. *own*: the content is validated against the ICD's schema, then the identifying fields are read:
//!    invalid content is `422` with the validator's reason ([`Outcome::Invalid`]), counted in `rejected`.
//! 9. [`OrderSequences::check`]: the order's state (ICD §11). The first message of an order may carry any
//!    sequence; after that, a sequence at or below the last one applied is `422`
//!    ([`Outcome::OutOfOrder`], counted in `out_of_order` and `rejected`), and one more than one past
//!    the last is accepted and counted in `gaps` ([`Outcome::CreatedAfterGap`], also `accepted`).
//! 10. *own*: the message is applied: `201`, the answer remembered under the key, the sequence recorded
//!     as its order's last ([`OrderSequences::record`]).
//! 11. [`respond`]: when `disconnect_rate` hit, the answer is replaced by a connection abort, so the
//!     request has had its effect but the client never sees the reply (a lost reply).
//!
//! Refusals (steps 7 to 9) are not remembered under the key, so a plain replay of a refused message (same
//! key) is processed afresh, for instance after the content or the order's state was fixed. Each
//! [`Outcome`] knows its status code and which counters it moves.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

use super::{Counters, FaultRoll, Faults, OrderStep};

/// The largest request body accepted (the AMQP message limit of ICD §0).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The longest `Idempotency-Key` accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A JSON error answer: `{"reason": "..."}`.
pub fn reason(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({ "reason": reason.into() }))).into_response()
}

/// How a request was answered, and so which counter it moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied for the first time: `201` with this body; `accepted`.
    Created(Value),
    /// Applied for the first time, more than one past its order's last sequence: `201` with this body;
    /// `accepted` and `gaps`.
    CreatedAfterGap(Value),
    /// A repeated key with the same body: `200` with the first answer; `duplicates`.
    Repeated(Value),
    /// A repeated key with a different body: `422`; `rejected`.
    Conflict(String),
    /// Content the schema (or the identifying fields' check) refuses: `422` with the reason; `rejected`.
    Invalid(String),
    /// A sequence at or below its order's last one applied, under a new key: `422`; `rejected` and
    /// `out_of_order`.
    OutOfOrder(String),
    /// Refused for good (`400`, `401`, `404`, `413`): `rejected`.
    Refused(StatusCode, String),
    /// Transient (`503` with `Retry-After: 1`): `busy`.
    Busy(String),
}

impl Outcome {
    /// A `400` with this reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::Refused(StatusCode::BAD_REQUEST, reason.into())
    }

    /// A `401` with this reason.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::Refused(StatusCode::UNAUTHORIZED, reason.into())
    }

    /// The status code answered.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Created(_) | Self::CreatedAfterGap(_) => StatusCode::CREATED,
            Self::Repeated(_) => StatusCode::OK,
            Self::Conflict(_) | Self::Invalid(_) | Self::OutOfOrder(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Refused(status, _) => *status,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The reason of an error answer, for the message log.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Created(_) | Self::CreatedAfterGap(_) | Self::Repeated(_) => None,
            Self::Conflict(r) | Self::Invalid(r) | Self::OutOfOrder(r) | Self::Refused(_, r) | Self::Busy(r) => Some(r),
        }
    }

    /// Moves the counters this outcome belongs to (not `received`, counted on arrival).
    pub fn count(&self, counters: &mut Counters) {
        match self {
            Self::Created(_) => counters.accepted += 1,
            Self::CreatedAfterGap(_) => {
                counters.accepted += 1;
                counters.gaps += 1;
            }
            Self::Repeated(_) => counters.duplicates += 1,
            Self::Conflict(_) | Self::Invalid(_) | Self::Refused(..) => counters.rejected += 1,
            Self::OutOfOrder(_) => {
                counters.rejected += 1;
                counters.out_of_order += 1;
            }
            Self::Busy(_) => counters.busy += 1,
        }
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Self::Created(body) | Self::CreatedAfterGap(body) | Self::Repeated(body) => {
                (status, axum::Json(body)).into_response()
            }
            Self::Conflict(r) | Self::Invalid(r) | Self::OutOfOrder(r) | Self::Refused(_, r) => reason(status, r),
            Self::Busy(r) => {
                let mut response = reason(status, r);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    }
}

/// The answer to send: the outcome's, or, when the `disconnect` fault hit, a response whose body fails at
/// once, so hyper aborts the connection before anything of it is written.
pub fn respond(outcome: Outcome, disconnect: bool) -> Response {
    if !disconnect {
        return outcome.into_response();
    }
    let lost = futures::stream::once(async { Err::<Bytes, _>(std::io::Error::other("simulated lost reply")) });
    (outcome.status(), Body::from_stream(lost)).into_response()
}

/// One entry of `GET /_sim/messages` for an HTTP simulator. Bodies are not logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpMessageEntry {
    /// When the request was answered (RFC 3339, UTC).
    pub at: String,
    /// The request path.
    pub path: String,
    /// The `Idempotency-Key` header, when there was a readable one.
    pub idempotency_key: Option<String>,
    /// The status code answered (or that would have been, when the connection was dropped).
    pub status: u16,
    /// The reason of an error answer (the simulator's own words; never field values).
    pub reason: Option<String>,
    /// Whether the connection was dropped instead of answering (`disconnect_rate`).
    pub disconnected: bool,
}

impl HttpMessageEntry {
    /// The log entry of a request answered now.
    pub fn new(path: &str, key: Option<&str>, outcome: &Outcome, disconnected: bool) -> Self {
        Self {
            at: super::now_rfc3339(),
            path: path.to_owned(),
            idempotency_key: key.map(str::to_owned),
            status: outcome.status().as_u16(),
            reason: outcome.reason().map(str::to_owned),
            disconnected,
        }
    }
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]; a longer one is `413`.
pub async fn read_body(body: Body) -> Result<Bytes, Outcome> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Outcome::bad_request(format!("the body could not be read: {e}")))?;
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Outcome::Refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// The `Idempotency-Key` header's value, as text. The key is required: without one, or with one that is
/// empty, over [`MAX_KEY_LEN`] or not visible ASCII, the request is `400`.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, Outcome> {
    let Some(value) = headers.get("idempotency-key") else {
        return Err(Outcome::bad_request("the Idempotency-Key header is required"));
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(key.to_owned())
        }
        _ => Err(Outcome::bad_request(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        ))),
    }
}

/// The key as it can be logged: the header's text when it is printable ASCII, else nothing.
pub fn loggable_key(headers: &HeaderMap) -> Option<String> {
    let key = headers.get("idempotency-key")?.to_str().ok()?;
    (key.len() <= MAX_KEY_LEN).then(|| key.to_owned())
}

/// The SHA-256 of a body, to tell a repeat from a changed body under the same key.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// The answers given under each idempotency key, with the digest of the body that got them.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyStore {
    answers: HashMap<String, ([u8; 32], Value)>,
}

impl IdempotencyStore {
    /// `Some(Repeated)` for a known key and the same body, `Some(Conflict)` for a known key and another
    /// body, `None` for a new key.
    pub fn lookup(&self, key: &str, digest: &[u8; 32]) -> Option<Outcome> {
        let (known, answer) = self.answers.get(key)?;
        Some(if known == digest {
            Outcome::Repeated(answer.clone())
        } else {
            Outcome::Conflict("the Idempotency-Key was used before with a different body".into())
        })
    }

    /// Remembers the answer given to a new key.
    pub fn remember(&mut self, key: String, digest: [u8; 32], answer: Value) {
        self.answers.insert(key, (digest, answer));
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.answers.clear();
    }
}

/// Where a new message's sequence falls against its order's state (step 9 of the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The order's first message here: any sequence is taken (DOJ and a newly routed agency join an order
    /// part way through, ICD §7, §8).
    First,
    /// One past the last sequence applied.
    Next,
    /// More than one past the last sequence applied: taken, and counted in `gaps`.
    Gap {
        /// The last sequence applied for the order.
        last: u32,
    },
    /// At or below the last sequence applied: refused (`422`), and counted in `out_of_order`.
    OutOfOrder {
        /// The last sequence applied for the order.
        last: u32,
    },
}

/// The state a partner keeps of each order: the last sequence applied, by (court ORI, order number).
///
/// DOJ keeps one; LEA one per agency, so its orders are keyed by (agency ORI, court ORI, order number).
/// Only applied messages are recorded, never refused ones.
#[derive(Debug, Clone, Default)]
pub struct OrderSequences {
    last: HashMap<(String, String), u32>,
}

/// One order in `GET /_sim/state`: its ids and the last sequence applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSequenceView {
    /// The issuing court's ORI.
    pub court_ori: String,
    /// The order number.
    pub order_number: String,
    /// The last sequence applied for the order.
    pub last_sequence: u32,
}

impl OrderSequences {
    /// Where `step`'s sequence falls against its order's last applied sequence.
    pub fn check(&self, step: &OrderStep) -> SequenceCheck {
        let key = (step.court_ori.clone(), step.order_number.clone());
        match self.last.get(&key) {
            None => SequenceCheck::First,
            Some(&last) if step.sequence <= last => SequenceCheck::OutOfOrder { last },
            Some(&last) if step.sequence == last + 1 => SequenceCheck::Next,
            Some(&last) => SequenceCheck::Gap { last },
        }
    }

    /// Records `step` as its order's last applied message. The caller has checked it is not out of order.
    pub fn record(&mut self, step: &OrderStep) {
        let key = (step.court_ori.clone(), step.order_number.clone());
        let last = self.last.entry(key).or_insert(step.sequence);
        *last = (*last).max(step.sequence);
    }

    /// The reason answered with an out-of-order `422`: ids and sequences only.
    pub fn out_of_order_reason(step: &OrderStep, last: u32) -> String {
        format!(
            "sequence {} of order {} {} is out of order: sequence {last} was already applied",
            step.sequence, step.court_ori, step.order_number
        )
    }

    /// Every order, sorted by court ORI then order number.
    pub fn view(&self) -> Vec<OrderSequenceView> {
        let mut orders: Vec<OrderSequenceView> = self
            .last
            .iter()
            .map(|((court_ori, order_number), &last_sequence)| OrderSequenceView {
                court_ori: court_ori.clone(),
                order_number: order_number.clone(),
                last_sequence,
            })
            .collect();
        orders.sort_by(|a, b| (&a.court_ori, &a.order_number).cmp(&(&b.court_ori, &b.order_number)));
        orders
    }
}

/// Step 3 of the module doc: waits out `latency_ms`, then answers `503` when `down` or when the busy roll
/// hit.
pub async fn transient_faults(faults: &Faults, roll: &FaultRoll) -> Option<Outcome> {
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.down {
        return Some(Outcome::Busy("the service is down (simulated)".into()));
    }
    if roll.busy {
        return Some(Outcome::Busy("the service is busy, retry later (simulated)".into()));
    }
    None
}

/// The injected rejection of step 7.
pub fn injected_rejection() -> Outcome {
    Outcome::bad_request("rejected (simulated fault)")
}

/// Serves `app` on `listener` until `shutdown` completes, calling `on_connection` for every TCP connection
/// accepted. On shutdown it stops accepting and waits for the open requests to be answered.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    on_connection: impl Fn() + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        on_connection();
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key answers its first answer again for the same body, and conflicts for another body.
    #[test]
    fn idempotency_store_tells_repeats_from_conflicts() {
        let mut store = IdempotencyStore::default();
        let digest = body_digest(b"one");
        assert_eq!(store.lookup("k", &digest), None);
        store.remember("k".into(), digest, serde_json::json!({"id": 1}));
        assert_eq!(
            store.lookup("k", &digest),
            Some(Outcome::Repeated(serde_json::json!({"id": 1})))
        );
        assert!(matches!(
            store.lookup("k", &body_digest(b"two")),
            Some(Outcome::Conflict(_))
        ));
    }

    /// A body up to 16 MiB is read whole; one byte more is `413`.
    #[tokio::test]
    async fn body_limit_is_16_mib() {
        let at_limit = read_body(Body::from(vec![b'x'; MAX_BODY_BYTES])).await.unwrap();
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        let over = read_body(Body::from(vec![b'x'; MAX_BODY_BYTES + 1])).await.unwrap_err();
        assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// The key header is required and must be visible ASCII.
    #[test]
    fn idempotency_key_header_is_checked() {
        let mut headers = HeaderMap::new();
        assert!(idempotency_key(&headers).is_err());
        headers.insert("idempotency-key", HeaderValue::from_static("has space"));
        assert!(idempotency_key(&headers).is_err());
        headers.insert(
            "idempotency-key",
            HeaderValue::from_static("por:CA034025J:24DV01234:1:DOJ:0"),
        );
        assert_eq!(idempotency_key(&headers).unwrap(), "por:CA034025J:24DV01234:1:DOJ:0");
    }

    fn step(order_number: &str, sequence: u32) -> OrderStep {
        OrderStep {
            court_ori: "CA034025J".into(),
            order_number: order_number.into(),
            sequence,
            action: "MODIFY".into(),
        }
    }

    /// The first message of an order may carry any sequence; then the next one is `Next`, one further on
    /// is a `Gap`, and one at or below the last is `OutOfOrder`. Orders are kept apart.
    #[test]
    fn order_sequences_classify_each_sequence() {
        let mut orders = OrderSequences::default();
        assert_eq!(orders.check(&step("A", 5)), SequenceCheck::First);
        orders.record(&step("A", 5));
        assert_eq!(orders.check(&step("A", 6)), SequenceCheck::Next);
        assert_eq!(orders.check(&step("A", 8)), SequenceCheck::Gap { last: 5 });
        assert_eq!(orders.check(&step("A", 5)), SequenceCheck::OutOfOrder { last: 5 });
        assert_eq!(orders.check(&step("A", 1)), SequenceCheck::OutOfOrder { last: 5 });
        assert_eq!(orders.check(&step("B", 1)), SequenceCheck::First);
        orders.record(&step("A", 8));
        orders.record(&step("B", 2));
        let view: Vec<(String, u32)> = orders
            .view()
            .into_iter()
            .map(|o| (o.order_number, o.last_sequence))
            .collect();
        assert_eq!(view, [("A".to_owned(), 8), ("B".to_owned(), 2)]);
    }

    /// Each outcome has its status and counter, and busy answers carry `Retry-After: 1`.
    #[test]
    fn outcomes_map_to_status_and_counters() {
        let mut counters = Counters::default();
        for outcome in [
            Outcome::Created(Value::Null),
            Outcome::CreatedAfterGap(Value::Null),
            Outcome::Repeated(Value::Null),
            Outcome::Conflict(String::new()),
            Outcome::Invalid(String::new()),
            Outcome::OutOfOrder(String::new()),
            Outcome::unauthorized(""),
            Outcome::Busy(String::new()),
        ] {
            outcome.count(&mut counters);
        }
        assert_eq!(
            (counters.accepted, counters.duplicates, counters.rejected, counters.busy),
            (2, 1, 4, 1)
        );
        assert_eq!((counters.gaps, counters.out_of_order), (1, 1));
        assert_eq!(
            Outcome::Invalid(String::new()).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            Outcome::OutOfOrder(String::new()).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(Outcome::CreatedAfterGap(Value::Null).status(), StatusCode::CREATED);
        let busy = Outcome::Busy("x".into()).into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
    }
}
