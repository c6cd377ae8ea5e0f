//! End-to-end tests of the LEA RMS simulator: `run` on an ephemeral port, driven over real HTTP with
//! reqwest, requests signed as ICD §8 says (computed here with `hmac`, independently of the simulator).

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac as _};
use porter_simulators::common::Counters;
use porter_simulators::lea::{LeaSimAgency, LeaSimConfig, LeaStateView, run};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Sim, status_and_json, unpooled_client};

/// The police department (secret `police-secret`).
const POLICE: &str = "CA0341100";
/// The sheriff (secret `sheriff-secret`).
const SHERIFF: &str = "CA0340000";

fn secret(ori: &str) -> &'static str {
    match ori {
        POLICE => "police-secret",
        SHERIFF => "sheriff-secret",
        _ => "default-secret",
    }
}

fn key(agency: &str, sequence: u32) -> String {
    format!("por:CA034025J:24DV01234:{sequence}:LEA-{agency}:0")
}

/// The ICD §8 sample body (`schemas/samples/lea-order.json`, valid against
/// `schemas/lea-order.schema.json`) with this action and sequence.
fn value(action: &str, sequence: u32) -> Value {
    let mut value: Value =
        serde_json::from_str(include_str!("../../schemas/samples/lea-order.json")).expect("the LEA sample is JSON");
    for at in ["", "/order"] {
        let message = value.pointer_mut(at).expect("the sample's message");
        message["action"] = action.into();
        message["sequence"] = sequence.into();
    }
    value
}

/// [`value`] as text.
fn body(action: &str, sequence: u32) -> String {
    value(action, sequence).to_string()
}

/// `received` = `accepted` + `rejected` + `busy` + `duplicates`: out-of-order answers are inside
/// `rejected`, gaps inside `accepted`.
fn assert_balanced(c: &Counters) {
    assert_eq!(c.received, c.accepted + c.rejected + c.busy + c.duplicates, "{c:?}");
}

fn unix_now() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    i64::try_from(secs).unwrap()
}

/// `X-POR-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn config() -> LeaSimConfig {
    LeaSimConfig {
        agencies: [POLICE, SHERIFF]
            .into_iter()
            .map(|ori| LeaSimAgency {
                ori: ori.into(),
                secret: secret(ori).into(),
            })
            .collect(),
        ..LeaSimConfig::default()
    }
}

async fn start() -> Sim {
    start_with(config()).await
}

async fn start_with(config: LeaSimConfig) -> Sim {
    Sim::start(|listener, shutdown| run(listener, config, shutdown)).await
}

/// Posts a correctly signed body to an agency.
async fn post(sim: &Sim, agency: &str, key: &str, body: &str) -> reqwest::Response {
    let signature = signature(secret(agency), unix_now(), body);
    post_with(&sim.http, sim, agency, Some(&signature), Some(key), body)
        .await
        .unwrap()
}

async fn post_with(
    client: &reqwest::Client,
    sim: &Sim,
    agency: &str,
    signature: Option<&str>,
    key: Option<&str>,
    body: &str,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client
        .post(sim.url(&format!("/{agency}/orders")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("x-por-signature", signature);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await
}

/// The first signed order under a key is accepted (201, `{"record_id": "<ORI>-1"}`, a record kept for
/// that agency); the same key and body is answered 200 with the same JSON, counted as a duplicate
/// globally and for the agency, and not applied again.
#[tokio::test]
async fn first_order_is_created_and_a_repeat_is_answered_from_memory() {
    let sim = start().await;
    let (status, first) = status_and_json(post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await).await;
    assert_eq!(
        (status, first.clone()),
        (StatusCode::CREATED, json!({"record_id": "CA0341100-1"}))
    );
    let (status, again) = status_and_json(post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await).await;
    assert_eq!((status, again), (StatusCode::OK, first));

    let state: LeaStateView = sim.state().await;
    let c = state.counters;
    assert_eq!((c.received, c.accepted, c.duplicates, c.rejected), (2, 1, 1, 0));
    let police = &state.agencies[POLICE];
    assert_eq!(
        (
            police.counters.received,
            police.counters.accepted,
            police.counters.duplicates
        ),
        (2, 1, 1)
    );
    assert_eq!(police.records.len(), 1);
    let record = &police.records[0];
    assert_eq!(
        (
            record.record_id.as_str(),
            record.idempotency_key.as_str(),
            record.court_ori.as_str(),
            record.order_number.as_str(),
            record.sequence,
            record.action.as_str()
        ),
        (
            "CA0341100-1",
            key(POLICE, 1).as_str(),
            "CA034025J",
            "24DV01234",
            1,
            "ISSUE"
        )
    );
    assert!(state.agencies[SHERIFF].records.is_empty());
    sim.stop().await;
}

/// The same key with a different body is a permanent 422 with a JSON reason, and changes nothing.
#[tokio::test]
async fn same_key_with_a_changed_body_is_422() {
    let sim = start().await;
    let k = key(POLICE, 1);
    assert_eq!(
        post(&sim, POLICE, &k, &body("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    let changed = body("ISSUE", 1).replace("\"DV\"", "\"CH\"");
    let (status, json) = status_and_json(post(&sim, POLICE, &k, &changed).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json["reason"].as_str().unwrap().contains("different body"));
    let state: LeaStateView = sim.state().await;
    assert_eq!((state.counters.rejected, state.agencies[POLICE].records.len()), (1, 1));
    sim.stop().await;
}

/// A missing, malformed or wrong signature (another agency's secret, or a MAC over another body) is 401
/// and applies nothing.
#[tokio::test]
async fn bad_signature_is_401() {
    let sim = start().await;
    let b = body("ISSUE", 1);
    let now = unix_now();
    let signatures = [
        None,
        Some("garbage".to_owned()),
        Some(format!("t={now}")),
        Some(format!("t={now},v1=not-hex")),
        Some(signature(secret(SHERIFF), now, &b)),
        Some(signature(secret(POLICE), now, &body("ISSUE", 2))),
    ];
    for signature in &signatures {
        let response = post_with(&sim.http, &sim, POLICE, signature.as_deref(), Some(&key(POLICE, 1)), &b)
            .await
            .unwrap();
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}");
        assert!(json["reason"].is_string());
    }
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.rejected, 6);
    assert!(state.agencies[POLICE].records.is_empty());
    sim.stop().await;
}

/// A timestamp more than `max_clock_skew_secs` (300 s by default) before or after the simulator's clock
/// is 401 even with a correct MAC; one within it is accepted.
#[tokio::test]
async fn stale_timestamp_is_401() {
    let sim = start().await;
    let b = body("ISSUE", 1);
    let k = key(POLICE, 1);
    for t in [unix_now() - 301, unix_now() + 400] {
        let signature = signature(secret(POLICE), t, &b);
        let response = post_with(&sim.http, &sim, POLICE, Some(&signature), Some(&k), &b)
            .await
            .unwrap();
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "t={t}");
        assert!(json["reason"].as_str().unwrap().contains("clock"));
    }
    let signature = signature(secret(POLICE), unix_now() - 200, &b);
    let response = post_with(&sim.http, &sim, POLICE, Some(&signature), Some(&k), &b)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    sim.stop().await;
}

/// A request without an Idempotency-Key is 400 with a reason.
#[tokio::test]
async fn missing_idempotency_key_is_400() {
    let sim = start().await;
    let b = body("ISSUE", 1);
    let signature = signature(secret(POLICE), unix_now(), &b);
    let response = post_with(&sim.http, &sim, POLICE, Some(&signature), None, &b)
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["reason"].as_str().unwrap().contains("Idempotency-Key"));
    sim.stop().await;
}

/// A body that is not JSON, not an object, or whose action, court ORI, order number, sequence or order
/// is missing or of the wrong kind, is invalid content: 422 with a reason naming the field, not its
/// value, counted in `rejected`; nothing is applied.
#[tokio::test]
async fn bad_body_is_422() {
    let sim = start().await;
    let good = value("ISSUE", 1);
    let mut bodies = vec!["not json".to_owned(), "[]".to_owned()];
    for (field, value) in [
        ("action", json!("ENTER")),
        ("court_ori", Value::Null),
        ("order_number", json!(1234)),
        ("sequence", json!(0)),
        ("sequence", json!("1")),
        ("order", json!("DOE")),
    ] {
        let mut v = good.clone();
        if value.is_null() {
            v.as_object_mut().unwrap().remove(field);
        } else {
            v[field] = value;
        }
        bodies.push(v.to_string());
    }
    for (i, b) in bodies.iter().enumerate() {
        let (status, json) = status_and_json(post(&sim, POLICE, &format!("bad-{i}"), b).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "body {i}: {json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(!reason.contains("DOE") && !reason.contains("ENTER"), "{reason}");
    }
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.rejected, 8);
    assert!(state.agencies[POLICE].records.is_empty() && state.agencies[POLICE].orders.is_empty());
    sim.stop().await;
}

/// Each kind of schema violation is caught against `lea-order.schema.json` and answered 422 with the
/// validator's reason (instance path and keyword), never the offending value: a wrong-typed field, a
/// missing required field, an unknown action. Each counts in `rejected` for the agency and globally,
/// none is applied or remembered: the corrected body under the same key is accepted.
#[tokio::test]
async fn each_schema_violation_is_422_with_the_validators_reason() {
    let sim = start().await;
    type Change = fn(&mut Value);
    let cases: [(Change, &str, &str, &str); 5] = [
        (|v| v["sequence"] = json!("one"), "at /sequence:", "(type)", "one"),
        (
            |v| v["order"]["order"]["firearm_relinquishment"] = json!("YES"),
            "at /order/order/firearm_relinquishment:",
            "(type)",
            "YES",
        ),
        (
            |v| {
                v["order"]["order"].as_object_mut().unwrap().remove("order_number");
            },
            "at /order/order:",
            "\"order_number\" is a required property",
            "24DV01234",
        ),
        (
            |v| {
                v.as_object_mut().unwrap().remove("sent_at");
            },
            "at /:",
            "(required)",
            "2026-11-25",
        ),
        (|v| v["action"] = json!("DELETE"), "at /action:", "(enum)", "DELETE"),
    ];
    let k = key(POLICE, 1);
    for (i, (change, path, kind, bad_value)) in cases.into_iter().enumerate() {
        let mut v = value("ISSUE", 1);
        change(&mut v);
        let (status, json) = status_and_json(post(&sim, POLICE, &k, &v.to_string()).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "case {i}: {json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("not valid against lea-order.schema.json: "),
            "{reason}"
        );
        assert!(reason.contains(path) && reason.contains(kind), "case {i}: {reason}");
        assert!(
            !reason.contains(bad_value) && !reason.contains("DOE"),
            "case {i}: {reason}"
        );
    }
    let state: LeaStateView = sim.state().await;
    assert_eq!(
        (state.counters.rejected, state.agencies[POLICE].counters.rejected),
        (5, 5)
    );
    assert!(state.agencies[POLICE].records.is_empty());
    assert_eq!(
        post(&sim, POLICE, &k, &body("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    sim.stop().await;
}

/// An order's first message at an agency may carry any sequence; a sequence more than one past the last
/// applied is accepted and counted in `gaps` (for the agency and globally, and inside `accepted`); the
/// agency's state shows the order's last sequence.
#[tokio::test]
async fn first_message_takes_any_sequence_and_a_gap_is_counted() {
    let sim = start().await;
    for sequence in [4, 5, 8] {
        let response = post(&sim, POLICE, &key(POLICE, sequence), &body("MODIFY", sequence)).await;
        assert_eq!(response.status(), StatusCode::CREATED, "sequence {sequence}");
    }
    let state: LeaStateView = sim.state().await;
    let c = state.counters;
    assert_eq!((c.accepted, c.gaps, c.out_of_order), (3, 1, 0));
    assert_balanced(&c);
    let police = &state.agencies[POLICE];
    assert_eq!((police.counters.accepted, police.counters.gaps), (3, 1));
    assert_eq!(police.orders.len(), 1);
    let order = &police.orders[0];
    assert_eq!(
        (
            order.court_ori.as_str(),
            order.order_number.as_str(),
            order.last_sequence
        ),
        ("CA034025J", "24DV01234", 8)
    );
    sim.stop().await;
}

/// The order state is kept per agency: after the police department applied sequence 5, the sheriff may
/// still receive sequence 3 as its first message; at the police department, sequence 3 (an older one) and
/// sequence 5 again (the same one) under new keys are 422, counted in `out_of_order` and `rejected` for
/// that agency only; `double_records` stays 0.
#[tokio::test]
async fn order_state_is_per_agency_and_out_of_order_is_422() {
    let sim = start().await;
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 5), &body("MODIFY", 5)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&sim, SHERIFF, &key(SHERIFF, 3), &body("MODIFY", 3)).await.status(),
        StatusCode::CREATED
    );
    let (status, json) = status_and_json(post(&sim, POLICE, &key(POLICE, 3), &body("MODIFY", 3)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let reason = json["reason"].as_str().unwrap();
    assert!(
        reason.contains("out of order") && reason.contains("sequence 5"),
        "{reason}"
    );
    let (status, _) = status_and_json(post(&sim, POLICE, "another-key", &body("MODIFY", 5)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let state: LeaStateView = sim.state().await;
    let (police, sheriff) = (&state.agencies[POLICE].counters, &state.agencies[SHERIFF].counters);
    assert_eq!((police.accepted, police.rejected, police.out_of_order), (1, 2, 2));
    assert_eq!((sheriff.accepted, sheriff.rejected, sheriff.out_of_order), (1, 0, 0));
    assert_eq!((state.counters.out_of_order, state.counters.double_records), (2, 0));
    assert_balanced(&state.counters);
    assert_eq!(state.agencies[SHERIFF].orders[0].last_sequence, 3);
    assert_eq!(state.agencies[POLICE].records.len(), 1);
    sim.stop().await;
}

/// A repeated key keeps its behaviour whatever the order's state: after the order moved on, the same key
/// and body is answered 200 from memory (a duplicate, not out of order), and a changed body 422 as a
/// conflict (not counted out of order).
#[tokio::test]
async fn repeated_key_is_answered_before_the_order_state() {
    let sim = start().await;
    let k1 = key(POLICE, 1);
    let (_, first) = status_and_json(post(&sim, POLICE, &k1, &body("ISSUE", 1)).await).await;
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 2), &body("MODIFY", 2)).await.status(),
        StatusCode::CREATED
    );
    let (status, again) = status_and_json(post(&sim, POLICE, &k1, &body("ISSUE", 1)).await).await;
    assert_eq!((status, again), (StatusCode::OK, first));
    let changed = body("ISSUE", 1).replace("\"DV\"", "\"CH\"");
    let (status, json) = status_and_json(post(&sim, POLICE, &k1, &changed).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json["reason"].as_str().unwrap().contains("different body"), "{json}");
    let c = sim.state::<LeaStateView>().await.counters;
    assert_eq!((c.accepted, c.duplicates, c.rejected, c.out_of_order), (2, 1, 1, 0));
    assert_balanced(&c);
    sim.stop().await;
}

/// Reset forgets every agency's order state: after sequence 5 was applied and the simulator reset,
/// sequence 3 of the same order is a first message again and is accepted.
#[tokio::test]
async fn reset_forgets_the_order_state() {
    let sim = start().await;
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 5), &body("MODIFY", 5)).await.status(),
        StatusCode::CREATED
    );
    sim.reset().await;
    assert!(sim.state::<LeaStateView>().await.agencies[POLICE].orders.is_empty());
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 3), &body("MODIFY", 3)).await.status(),
        StatusCode::CREATED
    );
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.agencies[POLICE].orders[0].last_sequence, 3);
    assert_eq!(state.counters.out_of_order, 0);
    sim.stop().await;
}

/// An ORI that is not configured (and no default secret), or a path segment that is not an ORI, is 404;
/// it counts globally but creates no agency.
#[tokio::test]
async fn unknown_agency_is_404() {
    let sim = start().await;
    let b = body("ISSUE", 1);
    for agency in ["CA0349999", "not-an-ori"] {
        let signature = signature("anything", unix_now(), &b);
        let response = post_with(&sim.http, &sim, agency, Some(&signature), Some("k"), &b)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{agency}");
    }
    let state: LeaStateView = sim.state().await;
    assert_eq!((state.counters.received, state.counters.rejected), (2, 2));
    assert_eq!(
        state.agencies.keys().map(String::as_str).collect::<Vec<_>>(),
        [SHERIFF, POLICE]
    );
    sim.stop().await;
}

/// With `default_secret`, an agency that is not listed is served with that secret, and shows up in the
/// state once it received a request.
#[tokio::test]
async fn default_secret_serves_unlisted_agencies() {
    let sim = start_with(LeaSimConfig {
        default_secret: Some(secret("any").into()),
        ..config()
    })
    .await;
    let other = "CA0019999";
    let (status, json) = status_and_json(post(&sim, other, &key(other, 1), &body("ISSUE", 1)).await).await;
    assert_eq!(
        (status, json),
        (StatusCode::CREATED, json!({"record_id": "CA0019999-1"}))
    );
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.agencies[other].records.len(), 1);
    assert_eq!(state.agencies[other].counters.accepted, 1);
    sim.stop().await;
}

/// Faults posted with `agency` apply to that agency only and replace the global ones for it: a busy
/// police department leaves the sheriff served; with the whole simulator down, an agency given its own
/// (empty) faults is still served. `GET /_sim/faults` shows both levels.
#[tokio::test]
async fn faults_are_scoped_to_one_agency() {
    let sim = start().await;
    assert!(
        sim.set_faults(json!({"busy_rate": 1.0, "agency": POLICE}))
            .await
            .is_success()
    );
    let busy = post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(
        post(&sim, SHERIFF, &key(SHERIFF, 1), &body("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    let faults: Value = sim.get_json("/_sim/faults").await;
    assert_eq!(faults["global"]["busy_rate"], 0.0);
    assert_eq!(faults["agencies"][POLICE]["busy_rate"], 1.0);

    assert!(sim.set_faults(json!({"down": true})).await.is_success());
    assert!(sim.set_faults(json!({"agency": POLICE})).await.is_success());
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&sim, SHERIFF, &key(SHERIFF, 2), &body("MODIFY", 2)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let state: LeaStateView = sim.state().await;
    assert!(state.faults.global.down && !state.faults.agencies[POLICE].down);
    assert_eq!(
        (
            state.agencies[POLICE].counters.busy,
            state.agencies[SHERIFF].counters.busy
        ),
        (1, 1)
    );
    assert_eq!(state.counters.busy, 2);

    // An agency the simulator does not serve, or a rate outside 0..1, is refused.
    assert_eq!(
        sim.set_faults(json!({"down": true, "agency": "CA0349999"})).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        sim.set_faults(json!({"disconnect_rate": 1.5})).await,
        StatusCode::BAD_REQUEST
    );
    sim.stop().await;
}

/// `latency_ms` delays every answer by at least that long.
#[tokio::test]
async fn latency_fault_delays_answers() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"latency_ms": 300})).await.is_success());
    let started = Instant::now();
    let response = post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.stop().await;
}

/// `busy_rate` 1.0 answers 503 with `Retry-After: 1`, counted as busy, applying nothing.
#[tokio::test]
async fn busy_fault_is_503_with_retry_after() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"busy_rate": 1.0})).await.is_success());
    let response = post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.busy, 1);
    assert!(state.agencies[POLICE].records.is_empty());
    sim.stop().await;
}

/// `reject_rate` 1.0 answers 400 with a JSON reason, counted as rejected, applying nothing.
#[tokio::test]
async fn reject_fault_is_400_with_a_reason() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"reject_rate": 1.0})).await.is_success());
    let (status, json) = status_and_json(post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["reason"].as_str().unwrap().contains("simulated"));
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.rejected, 1);
    assert!(state.agencies[POLICE].records.is_empty());
    sim.stop().await;
}

/// `disconnect_rate` 1.0 applies the order and then drops the connection: the client sees a transport
/// error and no status, the record exists, and a resend under the same key gets the lost answer (200).
#[tokio::test]
async fn disconnect_fault_loses_the_reply_but_applies_the_record() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"disconnect_rate": 1.0})).await.is_success());
    let b = body("ISSUE", 1);
    let signature = signature(secret(POLICE), unix_now(), &b);
    let client = reqwest::Client::new();
    let err = post_with(&client, &sim, POLICE, Some(&signature), Some(&key(POLICE, 1)), &b)
        .await
        .expect_err("the reply is lost");
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.agencies[POLICE].records.len(), 1);
    assert_eq!(state.counters.accepted, 1);
    let last = sim.messages().await.pop().unwrap();
    assert!(last.disconnected && last.status == 201, "{last:?}");

    assert!(sim.set_faults(json!({})).await.is_success());
    let (status, json) = status_and_json(post(&sim, POLICE, &key(POLICE, 1), &b).await).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"record_id": "CA0341100-1"})));
    sim.stop().await;
}

/// `down` answers every order 503, counted as busy, while the control API keeps working.
#[tokio::test]
async fn down_fault_is_503() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"down": true})).await.is_success());
    for agency in [POLICE, SHERIFF] {
        let response = post(&sim, agency, &key(agency, 1), &body("ISSUE", 1)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.busy, 2);
    sim.stop().await;
}

/// Reset forgets records, keys, counters (global and per agency), messages and all faults; the same key
/// is accepted anew with the first record id.
#[tokio::test]
async fn reset_forgets_everything() {
    let sim = start().await;
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    assert!(sim.set_faults(json!({"latency_ms": 5})).await.is_success());
    assert!(
        sim.set_faults(json!({"latency_ms": 5, "agency": SHERIFF}))
            .await
            .is_success()
    );
    sim.reset().await;
    let state: LeaStateView = sim.state().await;
    assert_eq!(
        Counters {
            connections: 0,
            ..state.counters
        },
        Counters::default()
    );
    assert!(
        state
            .agencies
            .values()
            .all(|a| a.records.is_empty() && a.counters == Counters::default())
    );
    assert!(state.faults.agencies.is_empty() && state.faults.global == Default::default());
    assert!(sim.messages().await.is_empty());
    let (status, json) = status_and_json(post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await).await;
    assert_eq!(
        (status, json),
        (StatusCode::CREATED, json!({"record_id": "CA0341100-1"}))
    );
    sim.stop().await;
}

/// `connections` counts TCP connections, not requests: three requests on one keep-alive connection
/// count once, two requests without keep-alive count twice.
#[tokio::test]
async fn connections_counter_counts_tcp_connections() {
    let sim = start().await;
    let observer = unpooled_client();
    let connections = |client: reqwest::Client| {
        let url = sim.url("/_sim/state");
        async move {
            let state: LeaStateView = client.get(url).send().await.unwrap().json().await.unwrap();
            state.counters.connections
        }
    };
    let before = connections(observer.clone()).await;
    let pooled = reqwest::Client::new();
    let unpooled = unpooled_client();
    for (client, sequences) in [(&pooled, 1..=3), (&unpooled, 4..=5)] {
        for sequence in sequences {
            let b = body("ISSUE", sequence);
            let signature = signature(secret(POLICE), unix_now(), &b);
            let k = key(POLICE, sequence);
            let response = post_with(client, &sim, POLICE, Some(&signature), Some(&k), &b).await;
            assert!(response.unwrap().status().is_success());
        }
    }
    // One pooled, two unpooled, and the observer's own new connection.
    assert_eq!(connections(observer).await - before, 4);
    sim.stop().await;
}

/// `GET /_sim/messages` lists each request with its time, path, key and status, and no body content.
#[tokio::test]
async fn messages_log_requests_without_bodies() {
    let sim = start().await;
    post(&sim, POLICE, &key(POLICE, 1), &body("ISSUE", 1)).await;
    post(&sim, SHERIFF, &key(SHERIFF, 1), &body("ISSUE", 1)).await;
    post(&sim, SHERIFF, &key(SHERIFF, 1), &body("ISSUE", 1)).await;
    let messages = sim.messages().await;
    let summary: Vec<(&str, Option<&str>, u16)> = messages
        .iter()
        .map(|m| (m.path.as_str(), m.idempotency_key.as_deref(), m.status))
        .collect();
    let (kp, ks) = (key(POLICE, 1), key(SHERIFF, 1));
    assert_eq!(
        summary,
        vec![
            ("/CA0341100/orders", Some(kp.as_str()), 201),
            ("/CA0340000/orders", Some(ks.as_str()), 201),
            ("/CA0340000/orders", Some(ks.as_str()), 200),
        ]
    );
    let raw = serde_json::to_string(&messages).unwrap();
    assert!(!raw.contains("DOE") && !raw.contains("1985-02-14"), "{raw}");
    sim.stop().await;
}

/// `run` refuses a configuration with neither agencies nor a default secret.
#[tokio::test]
async fn run_refuses_a_config_without_agencies() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = run(listener, LeaSimConfig::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("agency"), "{err:#}");
}
