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

/// An ICD §8 body: the action and the full current order, snake_case.
fn body(action: &str, sequence: u32) -> String {
    json!({
        "action": action,
        "court_ori": "CA034025J",
        "order_number": "24DV01234",
        "sequence": sequence,
        "order": {
            "order_type": "DV",
            "case_number": "24FL001234",
            "restrained_person": {"name": {"first": "JOHN", "last": "DOE"}, "birth_date": "1985-02-14"},
            "conditions": ["01", "07"]
        }
    })
    .to_string()
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

/// A body that is not a JSON object, or whose action, court ORI, order number, sequence or order is
/// missing or of the wrong kind, is 400 with a reason naming the field, not its value.
#[tokio::test]
async fn bad_body_is_400() {
    let sim = start().await;
    let good: Value = serde_json::from_str(&body("ISSUE", 1)).unwrap();
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
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {i}: {json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(!reason.contains("DOE"), "{reason}");
    }
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.rejected, 8);
    assert!(state.agencies[POLICE].records.is_empty());
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

/// The same (court ORI, order number, sequence) applied at one agency under a second key counts in
/// `double_records`, for the agency and globally; the same step at another agency does not.
#[tokio::test]
async fn double_records_are_counted_per_agency() {
    let sim = start().await;
    let b = body("ISSUE", 1);
    assert_eq!(
        post(&sim, POLICE, &key(POLICE, 1), &b).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&sim, SHERIFF, &key(SHERIFF, 1), &b).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&sim, POLICE, "a-second-key", &b).await.status(),
        StatusCode::CREATED
    );
    let state: LeaStateView = sim.state().await;
    assert_eq!(state.counters.double_records, 1);
    assert_eq!(state.agencies[POLICE].counters.double_records, 1);
    assert_eq!(state.agencies[SHERIFF].counters.double_records, 0);
    assert_eq!(state.agencies[POLICE].records[1].record_id, "CA0341100-2");
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
