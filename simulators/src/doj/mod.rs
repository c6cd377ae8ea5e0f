//! A DOJ firearms simulator for testers (ICD §7 and §11): an HTTP endpoint that takes firearms notices
//! (`POST /doj/firearms/v1/notices`), validates them, keeps the state of each order and the notices it
//! accepted, and serves the control API under `/_sim/` on the same port.
//!
//! Design note:
//! - [`run`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and run it
//!   in-process; the default address is [`DEFAULT_ADDR`].
//! - A request goes through the steps of [`crate::common::http`]; authentication is
//!   `Authorization: Bearer <token>` with one of the configured tokens (else `401`).
//! - The first request under an `Idempotency-Key` is applied: `201 {"tracking_id": "DOJ" + 12 digits}`.
//!   The same key with a byte-identical body gets the same answer with `200` (a `duplicate`); with another
//!   body `422`. A repeated key is answered before the content or the order's state is looked at.
//! - Content: a notice is the ICD §2 order message. It is validated against `schemas/por.xsd` by libxml2's
//!   `xmllint`, independently of Porter's reader ([`schema`]); then the simulator reads what identifies it
//!   (court ORI, order number, sequence, action: [`notice`]). Invalid content is `422` with the
//!   validator's reason (quoted values redacted), counted in `rejected`. A body with a DOCTYPE, an entity declaration or a
//!   processing instruction past the XML declaration is refused from its bytes first
//!   ([`notice::refuse_markup`]), so it never reaches xmllint. `xmllint` must be installed: without it the simulator
//!   does not start.
//! - Order state (ICD §11): the last sequence applied per (court ORI, order number). An order's first
//!   notice may carry any sequence (DOJ joins an order once it prohibits firearms). After that, a
//!   sequence at or below the last one, under a new key, is `422` with a JSON reason, counted in
//!   `out_of_order` (and `rejected`); one more than one past the last is accepted and counted in `gaps`
//!   (and `accepted`). The state shows each order's last sequence under `orders`.
//! - Refusals (`400`, `422`) are not remembered under the key, so a plain replay after a fix is
//!   processed afresh.
//! - `double_records` (a (court ORI, order number, sequence) applied twice under different keys) stays 0
//!   by construction: such a notice is out of order.
//! - `connections` counts every TCP connection accepted on the port, the control API's included.
//! - `POST /_sim/reset` forgets records, keys, order state, messages, counters and faults.
//! - All state sits behind one mutex, never held across an `.await` (xmllint runs without it).
//!
//! Trying it by hand (with `tokens = ["t0ken"]`):
//! ```text
//! curl -i -X POST http://127.0.0.1:7002/doj/firearms/v1/notices -H 'Authorization: Bearer t0ken' \
//!      -H 'Idempotency-Key: por:CA034025J:24DV01234:1:DOJ:0' --data-binary @schemas/samples/issue.xml
//! curl -s http://127.0.0.1:7002/_sim/state
//! curl -s -X POST http://127.0.0.1:7002/_sim/faults -d '{"disconnect_rate": 0.2, "latency_ms": 50}'
//! ```
//! - Logs carry the court ORI, order number, sequence, action, key and tracking id, never names, dates of
//!   birth or addresses; bodies are neither logged nor kept.

#![warn(missing_docs)]

pub mod notice;
pub mod schema;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::common::control::{self, SimControl};
use crate::common::http::{
    self, HttpMessageEntry, IdempotencyStore, OrderSequenceView, OrderSequences, Outcome, SequenceCheck,
};
use crate::common::{Counters, FaultRoll, Faults, MessageLog, OrderStep, default_message_log_capacity};
use notice::{NoticeError, read_notice, refuse_markup};
use schema::{NoticeSchema, Verdict};

/// The simulator's default address (ICD §11).
pub const DEFAULT_ADDR: &str = "127.0.0.1:7002";

/// The notices endpoint (ICD §7).
pub const NOTICES_PATH: &str = "/doj/firearms/v1/notices";

/// Configuration of the DOJ simulator (a section of the broker's `--config` file).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DojSimConfig {
    /// Bearer tokens accepted in `Authorization: Bearer <token>`. At least one is required.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// How many requests `GET /_sim/messages` keeps (the oldest are dropped first).
    #[serde(default = "default_message_log_capacity")]
    pub message_log_capacity: usize,
    /// The libxml2 `xmllint` program notices are validated with: a name looked up on `PATH` (the
    /// default, `xmllint`) or a path.
    #[serde(default = "default_xmllint")]
    pub xmllint: PathBuf,
}

fn default_xmllint() -> PathBuf {
    PathBuf::from("xmllint")
}

impl Default for DojSimConfig {
    /// No tokens (which [`DojSimConfig::validate`] refuses: set at least one), the default log size and
    /// `xmllint` from `PATH`.
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            message_log_capacity: default_message_log_capacity(),
            xmllint: default_xmllint(),
        }
    }
}

impl fmt::Debug for DojSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DojSimConfig")
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("message_log_capacity", &self.message_log_capacity)
            .field("xmllint", &self.xmllint)
            .finish()
    }
}

impl DojSimConfig {
    /// Checks the values serde cannot: at least one token, each usable in an HTTP header.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.tokens.is_empty(), "tokens: at least one bearer token is required");
        for (i, token) in self.tokens.iter().enumerate() {
            anyhow::ensure!(
                !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()),
                "tokens[{i}] must be visible ASCII characters without spaces"
            );
        }
        Ok(())
    }
}

/// One accepted notice as `GET /_sim/state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DojRecord {
    /// The id DOJ gave it: `DOJ` and 12 digits.
    pub tracking_id: String,
    /// The `Idempotency-Key` it came with.
    pub idempotency_key: String,
    /// The issuing court's ORI.
    pub court_ori: String,
    /// The order number.
    pub order_number: String,
    /// The message's sequence within the order.
    pub sequence: u32,
    /// `ISSUE`, `MODIFY`, `TERMINATE`, `CANCEL` or `SERVICE`.
    pub action: String,
    /// When it was accepted (RFC 3339, UTC).
    pub received_at: String,
}

/// The body of `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DojStateView {
    /// The ICD §11 counters.
    pub counters: Counters,
    /// The faults in force.
    pub faults: Faults,
    /// The accepted notices, oldest first.
    pub records: Vec<DojRecord>,
    /// Each order's last applied sequence, by court ORI then order number.
    pub orders: Vec<OrderSequenceView>,
}

/// The simulator's shared state, used by the notices endpoint and the control API.
#[derive(Debug)]
pub struct DojSimulator {
    config: DojSimConfig,
    schema: NoticeSchema,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    counters: Counters,
    faults: Faults,
    records: Vec<DojRecord>,
    keys: IdempotencyStore,
    /// The last sequence applied per order.
    orders: OrderSequences,
    messages: MessageLog<HttpMessageEntry>,
    /// The number in the last tracking id given out.
    last_tracking: u64,
}

impl State {
    fn new(capacity: usize) -> Self {
        Self {
            counters: Counters::default(),
            faults: Faults::default(),
            records: Vec::new(),
            keys: IdempotencyStore::default(),
            orders: OrderSequences::default(),
            messages: MessageLog::new(capacity),
            last_tracking: 0,
        }
    }

    /// Applies a new notice whose content is valid, unless it is out of order for its order: a record, a
    /// tracking id, the answer remembered under the key, the sequence recorded as the order's last.
    fn apply(&mut self, key: String, digest: [u8; 32], id: OrderStep) -> Outcome {
        let gap = match self.orders.check(&id) {
            SequenceCheck::OutOfOrder { last } => {
                return Outcome::OutOfOrder(OrderSequences::out_of_order_reason(&id, last));
            }
            SequenceCheck::Gap { last } => Some(last),
            SequenceCheck::First | SequenceCheck::Next => None,
        };
        self.last_tracking += 1;
        let tracking_id = format!("DOJ{:012}", self.last_tracking);
        self.orders.record(&id);
        if let Some(last) = gap {
            info!(
                court_ori = %id.court_ori, order_number = %id.order_number, sequence = id.sequence,
                last_sequence = last, idempotency_key = %key,
                "DOJ notice after a gap in its order's sequences."
            );
        }
        info!(
            court_ori = %id.court_ori, order_number = %id.order_number, sequence = id.sequence,
            action = %id.action, idempotency_key = %key, %tracking_id,
            "DOJ notice accepted."
        );
        let answer = json!({ "tracking_id": tracking_id });
        self.records.push(DojRecord {
            tracking_id,
            idempotency_key: key.clone(),
            court_ori: id.court_ori,
            order_number: id.order_number,
            sequence: id.sequence,
            action: id.action,
            received_at: crate::common::now_rfc3339(),
        });
        self.keys.remember(key, digest, answer.clone());
        match gap {
            Some(_) => Outcome::CreatedAfterGap(answer),
            None => Outcome::Created(answer),
        }
    }
}

impl DojSimulator {
    /// A simulator with empty state, validating with `schema`. The configuration should have been
    /// validated.
    pub fn new(config: DojSimConfig, schema: NoticeSchema) -> Self {
        let state = State::new(config.message_log_capacity);
        Self {
            config,
            schema,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters to a
        // test tool, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a TCP connection accepted.
    pub fn connection_opened(&self) {
        self.lock().counters.connections += 1;
    }

    /// Answers one notice request (the steps of [`crate::common::http`]).
    pub async fn answer(&self, headers: &HeaderMap, body: Body) -> Response {
        let body = http::read_body(body).await;
        let faults = {
            let mut state = self.lock();
            state.counters.received += 1;
            state.faults.clone()
        };
        let roll = faults.roll();
        let (outcome, disconnect) = match body {
            Err(too_long) => (too_long, false),
            Ok(body) => match http::transient_faults(&faults, &roll).await {
                Some(busy) => (busy, false),
                None => (self.process(headers, &body, roll).await, roll.disconnect),
            },
        };
        let key = http::loggable_key(headers);
        {
            let mut state = self.lock();
            outcome.count(&mut state.counters);
            let entry = HttpMessageEntry::new(NOTICES_PATH, key.as_deref(), &outcome, disconnect);
            state.messages.push(entry);
        }
        match &outcome {
            Outcome::Created(_) | Outcome::CreatedAfterGap(_) => {}
            Outcome::Repeated(_) | Outcome::Busy(_) => {
                debug!(
                    idempotency_key = key.as_deref(),
                    status = outcome.status().as_u16(),
                    disconnect,
                    "DOJ request answered."
                );
            }
            Outcome::Conflict(why) | Outcome::Invalid(why) | Outcome::OutOfOrder(why) | Outcome::Refused(_, why) => {
                info!(
                    idempotency_key = key.as_deref(), status = outcome.status().as_u16(), reason = %why,
                    "DOJ request refused."
                );
            }
        }
        if disconnect {
            info!(
                idempotency_key = key.as_deref(),
                "DOJ reply dropped (simulated disconnect)."
            );
        }
        http::respond(outcome, disconnect)
    }

    /// Steps 4 to 10 of [`crate::common::http`].
    async fn process(&self, headers: &HeaderMap, body: &Bytes, roll: FaultRoll) -> Outcome {
        if let Err(why) = self.authorize(headers) {
            return Outcome::unauthorized(why);
        }
        let key = match http::idempotency_key(headers) {
            Ok(key) => key,
            Err(refused) => return refused,
        };
        let digest = http::body_digest(body);
        if let Some(repeat) = self.lock().keys.lookup(&key, &digest) {
            return repeat;
        }
        if roll.reject {
            return http::injected_rejection();
        }
        let id = match self.check_content(body).await {
            Ok(id) => id,
            Err(refused) => return refused,
        };
        let mut state = self.lock();
        // A request under the same key may have been applied while this one was being validated.
        if let Some(repeat) = state.keys.lookup(&key, &digest) {
            return repeat;
        }
        state.apply(key, digest, id)
    }

    /// Step 8: the reader's safety checks, then xmllint against `por.xsd`, then the identifying fields.
    /// Invalid content is `422`; a validator that cannot answer is `503`.
    async fn check_content(&self, body: &[u8]) -> Result<OrderStep, Outcome> {
        if let Err(refused) = refuse_markup(body) {
            return Err(Outcome::Invalid(refused.reason().to_owned()));
        }
        let read = read_notice(body);
        if let Err(NoticeError::Refused(why)) = read {
            return Err(Outcome::Invalid(why));
        }
        match self.schema.validate(body).await {
            Verdict::Valid => read.map_err(|e| Outcome::Invalid(e.reason().to_owned())),
            Verdict::Invalid(why) => Err(Outcome::Invalid(why)),
            Verdict::Unavailable(why) => Err(Outcome::Busy(why)),
        }
    }

    /// Checks `Authorization: Bearer <token>` against the configured tokens.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or("the Authorization header is required")?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, token)| token.trim())
            .ok_or("the Authorization header must be Bearer <token>")?;
        // Every token is compared in full, so the time taken does not tell which one nearly matched.
        let matched = self.config.tokens.iter().fold(false, |found, known| {
            found | constant_time_eq(known.as_bytes(), token.as_bytes())
        });
        if matched {
            Ok(())
        } else {
            Err("the bearer token is not valid")
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl SimControl for DojSimulator {
    const NAME: &'static str = "DOJ";
    type State = DojStateView;
    type Message = HttpMessageEntry;
    type FaultsView = Faults;

    fn state(&self) -> DojStateView {
        let state = self.lock();
        DojStateView {
            counters: state.counters,
            faults: state.faults.clone(),
            records: state.records.clone(),
            orders: state.orders.view(),
        }
    }

    fn messages(&self) -> Vec<HttpMessageEntry> {
        self.lock().messages.to_vec()
    }

    fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the faults; `agency` means nothing to DOJ and is dropped.
    fn set_faults(&self, faults: Faults) -> Result<(), String> {
        self.lock().faults = Faults { agency: None, ..faults };
        Ok(())
    }

    fn reset(&self) {
        *self.lock() = State::new(self.config.message_log_capacity);
    }
}

async fn notices(AxumState(sim): AxumState<Arc<DojSimulator>>, headers: HeaderMap, body: Body) -> Response {
    sim.answer(&headers, body).await
}

/// The simulator's routes: the notices endpoint and the control API.
pub fn router(sim: Arc<DojSimulator>) -> Router {
    Router::new()
        .route(NOTICES_PATH, post(notices))
        .with_state(sim.clone())
        .merge(control::router(sim))
}

/// Runs the simulator on `listener` until `shutdown` completes.
///
/// On shutdown it stops accepting, lets the open requests finish, then returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: DojSimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().context("invalid DOJ simulator configuration")?;
    let addr = listener.local_addr()?;
    let schema = NoticeSchema::install(&config.xmllint)
        .await
        .context("the DOJ simulator cannot validate notices against schemas/por.xsd")?;
    let validators = schema.permits();
    let sim = Arc::new(DojSimulator::new(config, schema));
    let counted = sim.clone();
    info!(%addr, validators, "DOJ simulator started.");
    http::serve(listener, router(sim), move || counted.connection_opened(), shutdown)
        .await
        .context("DOJ simulator failed")?;
    info!("DOJ simulator stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::notice::tests::notice;
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    async fn sim() -> DojSimulator {
        let config = DojSimConfig {
            tokens: vec!["secret-token".into()],
            ..DojSimConfig::default()
        };
        let schema = NoticeSchema::install(&config.xmllint).await.unwrap();
        DojSimulator::new(config, schema)
    }

    fn headers(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret-token"));
        headers.insert("idempotency-key", HeaderValue::from_str(key).unwrap());
        headers
    }

    /// The configuration needs a token, refuses unknown fields, and does not print its tokens.
    #[test]
    fn config_validation_and_redaction() {
        assert!(DojSimConfig::default().validate().is_err());
        let config: DojSimConfig = serde_json::from_str(r#"{"tokens":["abc"]}"#).unwrap();
        config.validate().unwrap();
        assert_eq!(config.message_log_capacity, 10_000);
        assert!(!format!("{config:?}").contains("abc"));
        assert_eq!(config.xmllint, PathBuf::from("xmllint"));
        assert!(serde_json::from_str::<DojSimConfig>(r#"{"token":["abc"]}"#).is_err());
        let spaced = DojSimConfig {
            tokens: vec!["a b".into()],
            ..DojSimConfig::default()
        };
        assert!(spaced.validate().is_err());
    }

    /// Tracking ids count up from DOJ000000000001, and a reset starts them again.
    #[tokio::test]
    async fn tracking_ids_count_up() {
        let sim = sim().await;
        for (i, key) in ["k1", "k2"].into_iter().enumerate() {
            let body = notice("ISSUE", u32::try_from(i).unwrap() + 1);
            let response = sim.answer(&headers(key), Body::from(body)).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        let records = SimControl::state(&sim).records;
        assert_eq!(records[1].tracking_id, "DOJ000000000002");
        SimControl::reset(&sim);
        let response = sim.answer(&headers("k1"), Body::from(notice("ISSUE", 1))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(SimControl::state(&sim).records[0].tracking_id, "DOJ000000000001");
    }

    /// The bearer scheme is case-insensitive; other schemes and tokens are refused.
    #[tokio::test]
    async fn authorization_header_forms() {
        let sim = sim().await;
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            sim.authorize(&headers)
        };
        assert!(with("bearer secret-token").is_ok());
        assert!(with("Basic secret-token").is_err());
        assert!(with("Bearer secret-tokeN").is_err());
        assert!(with("Bearer").is_err());
        assert!(sim.authorize(&HeaderMap::new()).is_err());
    }

    /// An out-of-order notice is not remembered under its key: once a reset has cleared the order's
    /// state, a plain replay under the same key is applied.
    #[tokio::test]
    async fn out_of_order_is_not_remembered_under_its_key() {
        let sim = sim().await;
        let created = sim.answer(&headers("k5"), Body::from(notice("MODIFY", 5))).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let late = sim.answer(&headers("k4"), Body::from(notice("MODIFY", 4))).await;
        assert_eq!(late.status(), StatusCode::UNPROCESSABLE_ENTITY);
        SimControl::reset(&sim);
        let replay = sim.answer(&headers("k4"), Body::from(notice("MODIFY", 4))).await;
        assert_eq!(replay.status(), StatusCode::CREATED);
        assert_eq!(SimControl::state(&sim).orders[0].last_sequence, 4);
    }
}
