//! An LEA records-management (RMS) simulator for testers (ICD §8 and §11): one HTTP endpoint standing in
//! for many agencies, each at `POST /<ORI>/orders`, each keeping its own records, plus the control API
//! under `/_sim/` on the same port.
//!
//! Design note:
//! - [`run`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and run it
//!   in-process; the default address is [`DEFAULT_ADDR`].
//! - Agencies and their secrets come from [`LeaSimConfig`]. An ORI not listed uses `default_secret` when
//!   one is set, and is `404` otherwise (as is a path segment that is not an ORI).
//! - A request goes through the steps of [`crate::common::http`]; authentication is the
//!   `X-POR-Signature` HMAC of the agency's secret ([`signature`]), with a timestamp at most
//!   `max_clock_skew_secs` from the simulator's clock (else `401`).
//! - The first request under an `Idempotency-Key` (per agency) is applied:
//!   `201 {"record_id": "<ORI>-<n>"}`, `n` counting per agency from 1. The same key with a byte-identical
//!   body gets the same answer with `200` (a `duplicate`); with another body `422`. A repeated key is
//!   answered before the content or the order's state is looked at.
//! - Content: the body is the ICD §8 JSON. It is validated against `schemas/lea-order.schema.json` (built
//!   in, compiled once at start) with the `jsonschema` crate, then the fields that identify the message
//!   are read (`action`, `court_ori`, `order_number`, `sequence`: [`order`]). Invalid content is `422`
//!   with the validator's reason (instance path and keyword, never the value), counted in `rejected`.
//! - Order state (ICD §11), per agency: the last sequence applied per (agency ORI, court ORI, order
//!   number). An order's first message at an agency may carry any sequence (a newly routed agency joins
//!   an order part way through). After that, a sequence at or below the last one, under a new key, is
//!   `422` with a JSON reason, counted in `out_of_order` (and `rejected`); one more than one past the
//!   last is accepted and counted in `gaps` (and `accepted`). Each agency's state lists its orders' last
//!   sequences under `orders`.
//! - Refusals (`400`, `422`) are not remembered under the key, so a plain replay after a fix is
//!   processed afresh.
//! - `double_records` (an (agency, court ORI, order number, sequence) applied twice under different
//!   keys) stays 0 by construction: such a message is out of order.
//! - `POST /_sim/reset` forgets records, keys, order state, messages, counters and faults; the configured
//!   agencies stay, empty.
//! - Faults: `POST /_sim/faults` with `agency` sets that agency's faults, which replace the global ones
//!   for it (as a whole, not field by field) until the next reset; without `agency` it sets the global
//!   faults.
//! - Counters are kept globally and per agency; `connections` only globally (every TCP connection
//!   accepted on the port, the control API's included), and a request to an unknown agency only
//!   globally.
//!
//! Trying it by hand (the signature is `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`):
//! ```text
//! body='{"action":"ISSUE","court_ori":"CA034025J","order_number":"24DV01234","sequence":1,"order":{}}'
//! t=$(date +%s)
//! v1=$(printf '%s' "$t.$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
//! curl -i -X POST http://127.0.0.1:7003/CA0341100/orders -H "X-POR-Signature: t=$t,v1=$v1" \
//!      -H 'Idempotency-Key: por:CA034025J:24DV01234:1:LEA-CA0341100:0' -d "$body"
//! curl -s -X POST http://127.0.0.1:7003/_sim/faults -d '{"busy_rate": 0.5, "agency": "CA0341100"}'
//! curl -s http://127.0.0.1:7003/_sim/faults
//! ```
//! - Logs carry ORIs, order numbers, sequences, keys and record ids, never names, dates of birth or
//!   addresses; bodies are neither logged nor kept.

#![warn(missing_docs)]

pub mod order;
pub mod signature;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{debug, info};

use crate::common::control::{self, SimControl};
use crate::common::http::{
    self, HttpMessageEntry, IdempotencyStore, OrderSequenceView, OrderSequences, Outcome, SequenceCheck,
};
use crate::common::{Counters, FaultRoll, Faults, MessageLog, OrderStep, default_message_log_capacity, is_ori};
use order::OrderSchema;

/// The simulator's default address (ICD §11).
pub const DEFAULT_ADDR: &str = "127.0.0.1:7003";

/// Configuration of the LEA simulator (a section of the broker's `--config` file).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaSimConfig {
    /// The agencies served, each with its signing secret.
    #[serde(default)]
    pub agencies: Vec<LeaSimAgency>,
    /// The secret of any other well-formed ORI; without it, an unlisted ORI is `404`.
    #[serde(default)]
    pub default_secret: Option<String>,
    /// How far the signature's `t` may be from the simulator's clock, in seconds (ICD §8: 300).
    #[serde(default = "default_max_clock_skew_secs")]
    pub max_clock_skew_secs: u64,
    /// How many requests `GET /_sim/messages` keeps (the oldest are dropped first).
    #[serde(default = "default_message_log_capacity")]
    pub message_log_capacity: usize,
}

/// One agency the LEA simulator serves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaSimAgency {
    /// The agency's ORI: its path prefix, `/<ORI>/orders`.
    pub ori: String,
    /// The secret requests to it are signed with.
    pub secret: String,
}

fn default_max_clock_skew_secs() -> u64 {
    300
}

impl Default for LeaSimConfig {
    /// No agencies and no default secret (which [`LeaSimConfig::validate`] refuses: set at least one).
    fn default() -> Self {
        Self {
            agencies: Vec::new(),
            default_secret: None,
            max_clock_skew_secs: default_max_clock_skew_secs(),
            message_log_capacity: default_message_log_capacity(),
        }
    }
}

impl fmt::Debug for LeaSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaSimConfig")
            .field("agencies", &self.agencies)
            .field("default_secret", &self.default_secret.as_ref().map(|_| "(redacted)"))
            .field("max_clock_skew_secs", &self.max_clock_skew_secs)
            .field("message_log_capacity", &self.message_log_capacity)
            .finish()
    }
}

impl fmt::Debug for LeaSimAgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaSimAgency")
            .field("ori", &self.ori)
            .field("secret", &"(redacted)")
            .finish()
    }
}

impl LeaSimConfig {
    /// Checks the values serde cannot: ORI shapes, no ORI twice, non-empty secrets, and at least one
    /// agency or a default secret.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.agencies.is_empty() || self.default_secret.is_some(),
            "at least one agency or a default_secret is required"
        );
        let mut seen = HashSet::new();
        for agency in &self.agencies {
            anyhow::ensure!(
                is_ori(&agency.ori),
                "agencies: {:?} is not 9 characters [A-Z0-9]",
                agency.ori
            );
            anyhow::ensure!(seen.insert(&agency.ori), "agencies: {} is listed twice", agency.ori);
            anyhow::ensure!(
                !agency.secret.is_empty(),
                "agencies: the secret of {} is empty",
                agency.ori
            );
        }
        anyhow::ensure!(
            self.default_secret.as_ref().is_none_or(|s| !s.is_empty()),
            "default_secret must not be empty"
        );
        Ok(())
    }

    /// The secret an agency's requests are signed with; `None` for an agency not served.
    pub fn secret_for(&self, ori: &str) -> Option<&str> {
        if !is_ori(ori) {
            return None;
        }
        self.agencies
            .iter()
            .find(|a| a.ori == ori)
            .map(|a| a.secret.as_str())
            .or(self.default_secret.as_deref())
    }
}

/// One applied order message as `GET /_sim/state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaRecord {
    /// The id the agency gave it: `<ORI>-<n>`.
    pub record_id: String,
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

/// One agency in `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaAgencyView {
    /// The agency's counters (`connections` is counted globally only).
    pub counters: Counters,
    /// The agency's records, oldest first.
    pub records: Vec<LeaRecord>,
    /// The agency's orders with their last applied sequence, by court ORI then order number.
    pub orders: Vec<OrderSequenceView>,
}

/// The body of `GET /_sim/faults`: the global faults and the agencies' own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaFaultsView {
    /// The faults of every agency without faults of its own.
    pub global: Faults,
    /// Faults set for one agency, by ORI; they replace the global ones for it.
    pub agencies: BTreeMap<String, Faults>,
}

/// The body of `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaStateView {
    /// The ICD §11 counters over all agencies.
    pub counters: Counters,
    /// The faults in force.
    pub faults: LeaFaultsView,
    /// The configured agencies and any other that received a request, by ORI.
    pub agencies: BTreeMap<String, LeaAgencyView>,
}

/// The simulator's shared state, used by the orders endpoint and the control API.
#[derive(Debug)]
pub struct LeaSimulator {
    config: LeaSimConfig,
    schema: OrderSchema,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    counters: Counters,
    faults: Faults,
    agency_faults: BTreeMap<String, Faults>,
    agencies: BTreeMap<String, Agency>,
    messages: MessageLog<HttpMessageEntry>,
}

#[derive(Debug, Default)]
struct Agency {
    counters: Counters,
    records: Vec<LeaRecord>,
    keys: IdempotencyStore,
    /// The last sequence applied per order at this agency.
    orders: OrderSequences,
    /// The number in the last record id given out.
    last_record: u64,
}

impl State {
    fn new(config: &LeaSimConfig) -> Self {
        Self {
            counters: Counters::default(),
            faults: Faults::default(),
            agency_faults: BTreeMap::new(),
            agencies: config
                .agencies
                .iter()
                .map(|a| (a.ori.clone(), Agency::default()))
                .collect(),
            messages: MessageLog::new(config.message_log_capacity),
        }
    }
}

impl Agency {
    /// Applies a new message whose content is valid, unless it is out of order for its order here: a
    /// record, a record id, the answer remembered under the key, the sequence recorded as the order's last.
    fn apply(&mut self, ori: &str, key: String, digest: [u8; 32], step: OrderStep) -> Outcome {
        let gap = match self.orders.check(&step) {
            SequenceCheck::OutOfOrder { last } => {
                return Outcome::OutOfOrder(OrderSequences::out_of_order_reason(&step, last));
            }
            SequenceCheck::Gap { last } => Some(last),
            SequenceCheck::First | SequenceCheck::Next => None,
        };
        self.last_record += 1;
        let record_id = format!("{ori}-{}", self.last_record);
        self.orders.record(&step);
        if let Some(last) = gap {
            info!(
                agency = ori, court_ori = %step.court_ori, order_number = %step.order_number,
                sequence = step.sequence, last_sequence = last, idempotency_key = %key,
                "LEA order message after a gap in its order's sequences."
            );
        }
        info!(
            agency = ori, court_ori = %step.court_ori, order_number = %step.order_number,
            sequence = step.sequence, action = %step.action, idempotency_key = %key, %record_id,
            "LEA order message accepted."
        );
        let answer = json!({ "record_id": record_id });
        self.records.push(LeaRecord {
            record_id,
            idempotency_key: key.clone(),
            court_ori: step.court_ori,
            order_number: step.order_number,
            sequence: step.sequence,
            action: step.action,
            received_at: crate::common::now_rfc3339(),
        });
        self.keys.remember(key, digest, answer.clone());
        match gap {
            Some(_) => Outcome::CreatedAfterGap(answer),
            None => Outcome::Created(answer),
        }
    }
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

impl LeaSimulator {
    /// A simulator with empty state, validating with `schema`. The configuration should have been
    /// validated.
    pub fn new(config: LeaSimConfig, schema: OrderSchema) -> Self {
        let state = State::new(&config);
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

    /// Answers one request to `POST /<ori>/orders` (the steps of [`crate::common::http`]).
    pub async fn answer(&self, ori: &str, headers: &HeaderMap, body: Body) -> Response {
        let path = format!("/{ori}/orders");
        let body = http::read_body(body).await;
        let secret = self.config.secret_for(ori);
        let faults = {
            let mut state = self.lock();
            state.counters.received += 1;
            if secret.is_some() {
                state.agencies.entry(ori.to_owned()).or_default().counters.received += 1;
            }
            state.agency_faults.get(ori).unwrap_or(&state.faults).clone()
        };
        let roll = faults.roll();
        let (outcome, disconnect) = match (secret, body) {
            (None, _) => (Outcome::Refused(StatusCode::NOT_FOUND, "no such agency".into()), false),
            (Some(_), Err(too_long)) => (too_long, false),
            (Some(secret), Ok(body)) => match http::transient_faults(&faults, &roll).await {
                Some(busy) => (busy, false),
                None => (self.process(ori, secret, headers, &body, roll), roll.disconnect),
            },
        };
        let key = http::loggable_key(headers);
        {
            let mut state = self.lock();
            outcome.count(&mut state.counters);
            if secret.is_some() {
                outcome.count(&mut state.agencies.entry(ori.to_owned()).or_default().counters);
            }
            let entry = HttpMessageEntry::new(&path, key.as_deref(), &outcome, disconnect);
            state.messages.push(entry);
        }
        // The path segment is logged only when it is an ORI: it is the client's text.
        let agency = is_ori(ori).then_some(ori);
        match &outcome {
            Outcome::Created(_) | Outcome::CreatedAfterGap(_) => {}
            Outcome::Repeated(_) | Outcome::Busy(_) => {
                debug!(
                    agency,
                    idempotency_key = key.as_deref(),
                    status = outcome.status().as_u16(),
                    "LEA request answered."
                );
            }
            Outcome::Conflict(why) | Outcome::Invalid(why) | Outcome::OutOfOrder(why) | Outcome::Refused(_, why) => {
                info!(
                    agency, idempotency_key = key.as_deref(), status = outcome.status().as_u16(), reason = %why,
                    "LEA request refused."
                );
            }
        }
        if disconnect {
            info!(
                agency,
                idempotency_key = key.as_deref(),
                "LEA reply dropped (simulated disconnect)."
            );
        }
        http::respond(outcome, disconnect)
    }

    /// Steps 4 to 10 of [`crate::common::http`] for a served agency.
    fn process(&self, ori: &str, secret: &str, headers: &HeaderMap, body: &Bytes, roll: FaultRoll) -> Outcome {
        let header = headers.get(signature::HEADER).map(|v| v.as_bytes());
        if let Err(e) = signature::verify(
            header,
            secret.as_bytes(),
            body,
            unix_now(),
            self.config.max_clock_skew_secs,
        ) {
            return Outcome::unauthorized(e.to_string());
        }
        let key = match http::idempotency_key(headers) {
            Ok(key) => key,
            Err(refused) => return refused,
        };
        let digest = http::body_digest(body);
        // Validated before taking the lock: a large body takes a while; a repeat is still answered first.
        let step = self.schema.read(body);
        let mut state = self.lock();
        let agency = state.agencies.entry(ori.to_owned()).or_default();
        if let Some(repeat) = agency.keys.lookup(&key, &digest) {
            return repeat;
        }
        if roll.reject {
            return http::injected_rejection();
        }
        match step {
            Ok(step) => agency.apply(ori, key, digest, step),
            Err(why) => Outcome::Invalid(why),
        }
    }
}

impl SimControl for LeaSimulator {
    const NAME: &'static str = "LEA";
    type State = LeaStateView;
    type Message = HttpMessageEntry;
    type FaultsView = LeaFaultsView;

    fn state(&self) -> LeaStateView {
        let state = self.lock();
        LeaStateView {
            counters: state.counters,
            faults: LeaFaultsView {
                global: state.faults.clone(),
                agencies: state.agency_faults.clone(),
            },
            agencies: state
                .agencies
                .iter()
                .map(|(ori, agency)| {
                    let view = LeaAgencyView {
                        counters: agency.counters,
                        records: agency.records.clone(),
                        orders: agency.orders.view(),
                    };
                    (ori.clone(), view)
                })
                .collect(),
        }
    }

    fn messages(&self) -> Vec<HttpMessageEntry> {
        self.lock().messages.to_vec()
    }

    fn faults(&self) -> LeaFaultsView {
        let state = self.lock();
        LeaFaultsView {
            global: state.faults.clone(),
            agencies: state.agency_faults.clone(),
        }
    }

    /// Sets the global faults, or with `agency` that agency's, which must be one the simulator serves.
    fn set_faults(&self, faults: Faults) -> Result<(), String> {
        match faults.agency.clone() {
            None => self.lock().faults = faults,
            Some(ori) => {
                if self.config.secret_for(&ori).is_none() {
                    return Err(format!("agency {ori} is not served by this simulator"));
                }
                let faults = Faults { agency: None, ..faults };
                self.lock().agency_faults.insert(ori, faults);
            }
        }
        Ok(())
    }

    fn reset(&self) {
        *self.lock() = State::new(&self.config);
    }
}

async fn orders(
    AxumState(sim): AxumState<Arc<LeaSimulator>>,
    Path(ori): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    sim.answer(&ori, &headers, body).await
}

/// The simulator's routes: `POST /<ORI>/orders` and the control API.
pub fn router(sim: Arc<LeaSimulator>) -> Router {
    Router::new()
        .route("/{ori}/orders", post(orders))
        .with_state(sim.clone())
        .merge(control::router(sim))
}

/// Runs the simulator on `listener` until `shutdown` completes.
///
/// On shutdown it stops accepting, lets the open requests finish, then returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: LeaSimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().context("invalid LEA simulator configuration")?;
    let addr = listener.local_addr()?;
    let agencies = config.agencies.len();
    let schema = OrderSchema::compile().context("the LEA simulator cannot validate order messages")?;
    let sim = Arc::new(LeaSimulator::new(config, schema));
    let counted = sim.clone();
    info!(%addr, agencies, "LEA simulator started.");
    http::serve(listener, router(sim), move || counted.connection_opened(), shutdown)
        .await
        .context("LEA simulator failed")?;
    info!("LEA simulator stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const AGENCY: &str = "CA0341100";

    fn config() -> LeaSimConfig {
        LeaSimConfig {
            agencies: vec![LeaSimAgency {
                ori: AGENCY.into(),
                secret: "s3cret".into(),
            }],
            ..LeaSimConfig::default()
        }
    }

    fn signed(body: &str, key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let header = signature::sign(b"s3cret", unix_now(), body.as_bytes());
        headers.insert(signature::HEADER, HeaderValue::from_str(&header).unwrap());
        headers.insert("idempotency-key", HeaderValue::from_str(key).unwrap());
        headers
    }

    /// The configuration reads with defaults, refuses unknown fields, bad ORIs and duplicates, and does
    /// not print secrets.
    #[test]
    fn config_validation_and_redaction() {
        let config: LeaSimConfig =
            serde_json::from_str(r#"{"agencies":[{"ori":"CA0341100","secret":"s3cret"}]}"#).unwrap();
        config.validate().unwrap();
        assert_eq!((config.max_clock_skew_secs, config.message_log_capacity), (300, 10_000));
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(LeaSimConfig::default().validate().is_err());
        assert!(serde_json::from_str::<LeaSimConfig>(r#"{"agency":[]}"#).is_err());
        let mut twice = config.clone();
        twice.agencies.push(twice.agencies[0].clone());
        assert!(twice.validate().is_err());
        let mut bad = config.clone();
        bad.agencies[0].ori = "CA034".into();
        assert!(bad.validate().is_err());
        let defaulted = LeaSimConfig {
            default_secret: Some("d".into()),
            ..LeaSimConfig::default()
        };
        defaulted.validate().unwrap();
        assert_eq!(defaulted.secret_for("CA0340000"), Some("d"));
        assert_eq!(defaulted.secret_for("../x"), None);
        assert_eq!(config.secret_for("CA0340000"), None);
    }

    /// Record ids count per agency from 1, and a reset keeps the configured agencies, empty.
    #[tokio::test]
    async fn record_ids_per_agency_and_reset() {
        let sim = LeaSimulator::new(config(), OrderSchema::compile().unwrap());
        for (seq, key) in [(1, "k1"), (2, "k2")] {
            let body = order::tests::body("ISSUE", seq);
            let response = sim.answer(AGENCY, &signed(&body, key), Body::from(body)).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        let state = SimControl::state(&sim);
        assert_eq!(state.agencies[AGENCY].records[1].record_id, "CA0341100-2");
        SimControl::reset(&sim);
        let state = SimControl::state(&sim);
        assert!(state.agencies[AGENCY].records.is_empty());
        assert_eq!(state.counters, Counters::default());
    }

    /// Agency faults can only name an agency the simulator serves.
    #[test]
    fn agency_faults_need_a_served_agency() {
        let sim = LeaSimulator::new(config(), OrderSchema::compile().unwrap());
        let faults = |agency: &str| Faults {
            down: true,
            agency: Some(agency.into()),
            ..Faults::default()
        };
        assert!(SimControl::set_faults(&sim, faults("CA0340000")).is_err());
        SimControl::set_faults(&sim, faults(AGENCY)).unwrap();
        let view = SimControl::faults(&sim);
        assert!(view.agencies[AGENCY].down && !view.global.down);
        assert_eq!(view.agencies[AGENCY].agency, None);
    }
}
