//! End-to-end tests of the DOJ firearms simulator: `run` on an ephemeral port, driven over real HTTP
//! with reqwest (ICD §7 and §11).

mod support;

use std::time::{Duration, Instant};

use porter_simulators::common::Counters;
use porter_simulators::doj::{DojSimConfig, run};
use porter_simulators::doj::{DojStateView, NOTICES_PATH};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Sim, notice, status_and_json, unpooled_client};

const TOKEN: &str = "doj-test-token";

fn key(sequence: u32) -> String {
    format!("por:CA034025J:24DV01234:{sequence}:DOJ:0")
}

async fn start() -> Sim {
    let config = DojSimConfig {
        tokens: vec!["other-token".into(), TOKEN.into()],
        ..DojSimConfig::default()
    };
    Sim::start(|listener, shutdown| run(listener, config, shutdown)).await
}

/// Posts a notice with the test token and a key.
async fn post(sim: &Sim, key: &str, body: &str) -> reqwest::Response {
    post_with(&sim.http, sim, Some(&format!("Bearer {TOKEN}")), Some(key), body)
        .await
        .unwrap()
}

async fn post_with(
    client: &reqwest::Client,
    sim: &Sim,
    authorization: Option<&str>,
    key: Option<&str>,
    body: &str,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client
        .post(sim.url(NOTICES_PATH))
        .header("content-type", "application/xml")
        .body(body.to_owned());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await
}

fn tracking_id(body: &Value) -> String {
    let id = body["tracking_id"].as_str().expect("a tracking_id").to_owned();
    assert!(
        id.len() == 15 && id.starts_with("DOJ") && id[3..].bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    id
}

/// The first notice under a key is accepted (201, a `DOJ` + 12-digit tracking id, a record with its ids);
/// the same key and byte-identical body is answered 200 with the same JSON, counted as a duplicate and
/// not applied again.
#[tokio::test]
async fn first_notice_is_created_and_a_repeat_is_answered_from_memory() {
    let sim = start().await;
    let (status, first) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(tracking_id(&first), "DOJ000000000001");

    let (status, again) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);

    let state: DojStateView = sim.state().await;
    let c = state.counters;
    assert_eq!(
        (c.received, c.accepted, c.duplicates, c.rejected, c.double_records),
        (2, 1, 1, 0, 0)
    );
    assert_eq!(state.records.len(), 1);
    let record = &state.records[0];
    assert_eq!(
        (
            record.tracking_id.as_str(),
            record.idempotency_key.as_str(),
            record.court_ori.as_str(),
            record.order_number.as_str(),
            record.sequence,
            record.action.as_str()
        ),
        ("DOJ000000000001", key(1).as_str(), "CA034025J", "24DV01234", 1, "ISSUE")
    );
    chrono::DateTime::parse_from_rfc3339(&record.received_at).unwrap();
    sim.stop().await;
}

/// The same key with a different body is a permanent 422 with a JSON reason, and changes nothing.
#[tokio::test]
async fn same_key_with_a_changed_body_is_422() {
    let sim = start().await;
    assert_eq!(
        post(&sim, &key(1), &notice("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    let changed = notice("ISSUE", 1).replace("<por:BradyCode>Y", "<por:BradyCode>N");
    let (status, body) = status_and_json(post(&sim, &key(1), &changed).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["reason"].as_str().unwrap().contains("different body"), "{body}");
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.rejected, state.records.len()), (1, 1));
    sim.stop().await;
}

/// A missing Authorization header, another scheme, or a token not configured is 401, and applies
/// nothing; each configured token is accepted.
#[tokio::test]
async fn bad_or_missing_token_is_401() {
    let sim = start().await;
    let body = notice("ISSUE", 1);
    for authorization in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic ZG9qOnRva2Vu"),
        Some("Bearer"),
    ] {
        let response = post_with(&sim.http, &sim, authorization, Some(&key(1)), &body)
            .await
            .unwrap();
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert!(json["reason"].is_string());
    }
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.rejected, state.records.len()), (4, 0));
    let other = post_with(&sim.http, &sim, Some("Bearer other-token"), Some(&key(1)), &body)
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
    sim.stop().await;
}

/// A request without an Idempotency-Key is 400 with a reason.
#[tokio::test]
async fn missing_idempotency_key_is_400() {
    let sim = start().await;
    let response = post_with(
        &sim.http,
        &sim,
        Some(&format!("Bearer {TOKEN}")),
        None,
        &notice("ISSUE", 1),
    )
    .await
    .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["reason"].as_str().unwrap().contains("Idempotency-Key"));
    sim.stop().await;
}

/// A body that is not well-formed XML, carries a DTD, has another root or lacks an identifying field is
/// invalid content: 422 with a reason that quotes no personal data, counted in `rejected`, and nothing is
/// applied.
#[tokio::test]
async fn bad_body_is_422() {
    let sim = start().await;
    let good = notice("ISSUE", 1);
    let bodies = [
        "this is not XML".to_owned(),
        good.replace("</por:MessageHeader>", ""),
        good.replacen(
            "<por:ProtectiveOrderMessage",
            "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><por:ProtectiveOrderMessage",
            1,
        ),
        good.replace("ProtectiveOrderMessage", "OtherMessage"),
        good.replace("<por:Sequence>1</por:Sequence>", ""),
        good.replace("<nc:IdentificationID>24DV01234</nc:IdentificationID>", ""),
        good.replace("<por:CourtORI>CA034025J</por:CourtORI>", ""),
        good.replace(">ISSUE<", ">ENTER<"),
        good.replace("<por:Sequence>1<", "<por:Sequence>0<"),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let (status, json) = status_and_json(post(&sim, &format!("bad-{i}"), body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "body {i}: {json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(!reason.contains("DOE") && !reason.contains("1985"), "{reason}");
    }
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.rejected, state.records.len()), (9, 0));
    assert_eq!(state.counters.out_of_order, 0);
    assert!(state.orders.is_empty());
    sim.stop().await;
}

/// Each kind of schema violation is caught by xmllint against `por.xsd` and answered 422 with the
/// validator's reason (line, element, what is wrong) without the offending value: a wrong type (a
/// sequence or a birth date that is not one), a missing required field, an unknown action. Each counts in
/// `rejected`, none is applied, and none is remembered: the corrected notice under the same key is
/// accepted.
#[tokio::test]
async fn each_schema_violation_is_422_with_the_validators_reason() {
    let sim = start().await;
    let good = notice("ISSUE", 1);
    let cases = [
        (
            good.replace("<por:Sequence>1<", "<por:Sequence>ONE<"),
            ["Sequence", "not a valid value"],
            "ONE",
        ),
        (
            good.replace("1985-02-14", "1985-13-14"),
            ["Date", "not a valid value"],
            "1985-13-14",
        ),
        (
            good.replace("<por:SentDateTime>2026-11-25T10:15:00-08:00</por:SentDateTime>", ""),
            ["Missing child element", "SentDateTime"],
            "2026-11-25",
        ),
        (
            good.replace(
                "<por:CaseNumber>24FL001234</por:CaseNumber>\n    <por:OrderType>DV</por:OrderType>",
                "",
            ),
            ["element is not expected", "OrderType"],
            "24FL001234",
        ),
        (good.replace(">ISSUE<", ">DELETE<"), ["Action", "enumeration"], "DELETE"),
    ];
    for (i, (body, expected, value)) in cases.iter().enumerate() {
        assert_ne!(body, &good, "case {i} changes the notice");
        let (status, json) = status_and_json(post(&sim, &key(1), body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "case {i}: {json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(reason.starts_with("not valid against por.xsd: line "), "{reason}");
        for part in expected {
            assert!(reason.contains(part), "case {i}: {part:?} not in {reason:?}");
        }
        assert!(!reason.contains(value) && !reason.contains("DOE"), "case {i}: {reason}");
    }
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.rejected, state.records.len()), (5, 0));
    let (status, _) = status_and_json(post(&sim, &key(1), &good).await).await;
    assert_eq!(status, StatusCode::CREATED);
    sim.stop().await;
}

/// The first notice of an order may carry any sequence (DOJ joins an order part way through); a
/// sequence more than one past the last applied is accepted and counted in `gaps` (and `accepted`); the
/// state shows the order's last sequence.
#[tokio::test]
async fn first_notice_takes_any_sequence_and_a_gap_is_counted() {
    let sim = start().await;
    assert_eq!(
        post(&sim, &key(3), &notice("MODIFY", 3)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post(&sim, &key(4), &notice("MODIFY", 4)).await.status(),
        StatusCode::CREATED
    );
    let state: DojStateView = sim.state().await;
    assert_eq!(state.counters.gaps, 0);
    let (status, body) = status_and_json(post(&sim, &key(7), &notice("TERMINATE", 7)).await).await;
    assert_eq!(status, StatusCode::CREATED);
    tracking_id(&body);
    let state: DojStateView = sim.state().await;
    let c = state.counters;
    assert_eq!((c.accepted, c.gaps, c.rejected, c.out_of_order), (3, 1, 0, 0));
    assert_balanced(&c);
    assert_eq!(state.orders.len(), 1);
    let order = &state.orders[0];
    assert_eq!(
        (
            order.court_ori.as_str(),
            order.order_number.as_str(),
            order.last_sequence
        ),
        ("CA034025J", "24DV01234", 7)
    );
    sim.stop().await;
}

/// After a notice is applied, a sequence at or below it under another key (an older one, or the same
/// sequence again) is 422 with a JSON reason naming the sequences, counted in `out_of_order` and
/// `rejected`, and applies nothing (`double_records` stays 0). Another order is not affected.
#[tokio::test]
async fn out_of_order_sequence_is_422() {
    let sim = start().await;
    for sequence in [1, 2] {
        let action = if sequence == 1 { "ISSUE" } else { "MODIFY" };
        assert_eq!(
            post(&sim, &key(sequence), &notice(action, sequence)).await.status(),
            StatusCode::CREATED
        );
    }
    let (status, json) = status_and_json(post(&sim, "older-key", &notice("ISSUE", 1)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let reason = json["reason"].as_str().unwrap();
    assert!(
        reason.contains("out of order") && reason.contains("sequence 2"),
        "{reason}"
    );
    let (status, _) = status_and_json(post(&sim, "same-sequence-key", &notice("MODIFY", 2)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = notice("ISSUE", 1).replace("24DV01234", "24DV09999");
    assert_eq!(post(&sim, "other-order", &other).await.status(), StatusCode::CREATED);

    let state: DojStateView = sim.state().await;
    let c = state.counters;
    assert_eq!(
        (c.accepted, c.rejected, c.out_of_order, c.double_records, c.gaps),
        (3, 2, 2, 0, 0)
    );
    assert_balanced(&c);
    assert_eq!(state.records.len(), 3);
    sim.stop().await;
}

/// A repeated key keeps its behaviour whatever the order's state: after the order moved on, the same key
/// and body is answered 200 from memory (a duplicate, not out of order), and a changed body 422 as a
/// conflict (not counted out of order).
#[tokio::test]
async fn repeated_key_is_answered_before_the_order_state() {
    let sim = start().await;
    let (_, first) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!(
        post(&sim, &key(2), &notice("MODIFY", 2)).await.status(),
        StatusCode::CREATED
    );
    let (status, again) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!((status, again), (StatusCode::OK, first));
    let changed = notice("ISSUE", 1).replace("<por:BradyCode>Y", "<por:BradyCode>N");
    let (status, json) = status_and_json(post(&sim, &key(1), &changed).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json["reason"].as_str().unwrap().contains("different body"), "{json}");
    let c = sim.state::<DojStateView>().await.counters;
    assert_eq!((c.accepted, c.duplicates, c.rejected, c.out_of_order), (2, 1, 1, 0));
    assert_balanced(&c);
    sim.stop().await;
}

/// Reset forgets the orders' state: after sequence 5 was applied and the simulator reset, sequence 3 of
/// the same order is a first message again and is accepted.
#[tokio::test]
async fn reset_forgets_the_order_state() {
    let sim = start().await;
    assert_eq!(
        post(&sim, &key(5), &notice("MODIFY", 5)).await.status(),
        StatusCode::CREATED
    );
    sim.reset().await;
    assert!(sim.state::<DojStateView>().await.orders.is_empty());
    assert_eq!(
        post(&sim, &key(3), &notice("MODIFY", 3)).await.status(),
        StatusCode::CREATED
    );
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.out_of_order, state.orders[0].last_sequence), (0, 3));
    sim.stop().await;
}

/// `received` = `accepted` + `rejected` + `busy` + `duplicates`: out-of-order answers are inside
/// `rejected`, gaps inside `accepted`.
fn assert_balanced(c: &Counters) {
    assert_eq!(c.received, c.accepted + c.rejected + c.busy + c.duplicates, "{c:?}");
}

/// `latency_ms` delays every answer by at least that long.
#[tokio::test]
async fn latency_fault_delays_answers() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"latency_ms": 300})).await.is_success());
    let started = Instant::now();
    assert_eq!(
        post(&sim, &key(1), &notice("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.stop().await;
}

/// `busy_rate` 1.0 answers 503 with `Retry-After: 1`, counted as busy, applying nothing; once lifted,
/// the same key is processed afresh.
#[tokio::test]
async fn busy_fault_is_503_with_retry_after() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"busy_rate": 1.0})).await.is_success());
    let response = post(&sim, &key(1), &notice("ISSUE", 1)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.busy, state.records.len()), (1, 0));
    assert!(sim.set_faults(json!({})).await.is_success());
    assert_eq!(
        post(&sim, &key(1), &notice("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    sim.stop().await;
}

/// `reject_rate` 1.0 answers 400 with a JSON reason, counted as rejected; the rejection is not
/// remembered, so a plain replay under the same key is accepted once the fault is lifted.
#[tokio::test]
async fn reject_fault_is_400_with_a_reason() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"reject_rate": 1.0})).await.is_success());
    let (status, body) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["reason"].as_str().unwrap().contains("simulated"));
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.rejected, state.records.len()), (1, 0));
    assert!(sim.set_faults(json!({})).await.is_success());
    assert_eq!(
        post(&sim, &key(1), &notice("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    sim.stop().await;
}

/// `disconnect_rate` 1.0 applies the notice and then drops the connection: the client sees a transport
/// error and no status, the record exists, and a resend under the same key gets the lost answer (200).
#[tokio::test]
async fn disconnect_fault_loses_the_reply_but_applies_the_record() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"disconnect_rate": 1.0})).await.is_success());
    let client = reqwest::Client::new();
    let auth = format!("Bearer {TOKEN}");
    let err = post_with(&client, &sim, Some(&auth), Some(&key(1)), &notice("ISSUE", 1))
        .await
        .expect_err("the reply is lost");
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");

    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.accepted, state.records.len()), (1, 1));
    let lost_id = state.records[0].tracking_id.clone();
    let messages = sim.messages().await;
    let last = messages.last().unwrap();
    assert!(last.disconnected && last.status == 201, "{last:?}");

    assert!(sim.set_faults(json!({})).await.is_success());
    let (status, body) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!((status, tracking_id(&body)), (StatusCode::OK, lost_id));
    let state: DojStateView = sim.state().await;
    assert_eq!((state.counters.duplicates, state.counters.double_records), (1, 0));
    sim.stop().await;
}

/// `down` answers every notice 503 (counted as busy) while the control API keeps working.
#[tokio::test]
async fn down_fault_is_503_for_every_request() {
    let sim = start().await;
    assert!(sim.set_faults(json!({"down": true})).await.is_success());
    for sequence in 1..=2 {
        let response = post(&sim, &key(sequence), &notice("ISSUE", sequence)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let state: DojStateView = sim.state().await;
    assert!(state.faults.down);
    assert_eq!((state.counters.busy, state.records.len()), (2, 0));
    sim.stop().await;
}

/// The faults body follows ICD §11 (every field optional, `agency` ignored by DOJ); a rate outside 0..1,
/// an unknown field or a body that is not JSON is 400.
#[tokio::test]
async fn faults_body_is_validated() {
    let sim = start().await;
    let full = json!({"latency_ms": 0, "busy_rate": 0.0, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": false, "agency": "CA0341100"});
    assert!(sim.set_faults(full).await.is_success());
    let faults: Value = sim.get_json("/_sim/faults").await;
    assert_eq!(
        faults,
        json!({"latency_ms": 0, "busy_rate": 0.0, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": false})
    );
    for bad in [
        json!({"busy_rate": 2.0}),
        json!({"reject_rate": -0.1}),
        json!({"busy": 1.0}),
        json!([1]),
    ] {
        assert_eq!(sim.set_faults(bad.clone()).await, StatusCode::BAD_REQUEST, "{bad}");
    }
    sim.stop().await;
}

/// Reset forgets records, keys, counters, messages and faults: the same key is accepted anew with the
/// first tracking id.
#[tokio::test]
async fn reset_forgets_everything() {
    let sim = start().await;
    assert_eq!(
        post(&sim, &key(1), &notice("ISSUE", 1)).await.status(),
        StatusCode::CREATED
    );
    assert!(sim.set_faults(json!({"latency_ms": 5})).await.is_success());
    sim.reset().await;
    let state: DojStateView = sim.state().await;
    assert_eq!(
        Counters {
            connections: 0,
            ..state.counters
        },
        Counters::default()
    );
    assert!(state.records.is_empty() && sim.messages().await.is_empty());
    assert_eq!(state.faults, Default::default());
    let (status, body) = status_and_json(post(&sim, &key(1), &notice("ISSUE", 1)).await).await;
    assert_eq!(
        (status, tracking_id(&body).as_str()),
        (StatusCode::CREATED, "DOJ000000000001")
    );
    sim.stop().await;
}

/// `connections` counts TCP connections, not requests: three requests on one keep-alive connection
/// count once, two requests without keep-alive count twice.
#[tokio::test]
async fn connections_counter_counts_tcp_connections() {
    let sim = start().await;
    let observer = unpooled_client();
    let state = |client: reqwest::Client| {
        let url = sim.url("/_sim/state");
        async move {
            let state: DojStateView = client.get(url).send().await.unwrap().json().await.unwrap();
            state.counters.connections
        }
    };
    let before = state(observer.clone()).await;
    let pooled = reqwest::Client::new();
    let unpooled = unpooled_client();
    let auth = format!("Bearer {TOKEN}");
    for sequence in 1..=3 {
        let response = post_with(
            &pooled,
            &sim,
            Some(&auth),
            Some(&key(sequence)),
            &notice("ISSUE", sequence),
        )
        .await;
        assert!(response.unwrap().status().is_success());
    }
    for sequence in 4..=5 {
        let response = post_with(
            &unpooled,
            &sim,
            Some(&auth),
            Some(&key(sequence)),
            &notice("ISSUE", sequence),
        )
        .await;
        assert!(response.unwrap().status().is_success());
    }
    // One pooled, two unpooled, and the observer's own new connection.
    assert_eq!(state(observer).await - before, 4);
    sim.stop().await;
}

/// `GET /_sim/messages` lists each request with its time, path, key and status, and no body content.
#[tokio::test]
async fn messages_log_requests_without_bodies() {
    let sim = start().await;
    post(&sim, &key(1), &notice("ISSUE", 1)).await;
    post(&sim, &key(1), &notice("ISSUE", 1)).await;
    post(&sim, &key(2), "not xml").await;
    let messages = sim.messages().await;
    let summary: Vec<(&str, Option<&str>, u16)> = messages
        .iter()
        .map(|m| (m.path.as_str(), m.idempotency_key.as_deref(), m.status))
        .collect();
    let (k1, k2) = (key(1), key(2));
    assert_eq!(
        summary,
        vec![
            (NOTICES_PATH, Some(k1.as_str()), 201),
            (NOTICES_PATH, Some(k1.as_str()), 200),
            (NOTICES_PATH, Some(k2.as_str()), 422),
        ]
    );
    chrono::DateTime::parse_from_rfc3339(&messages[0].at).unwrap();
    let raw = serde_json::to_string(&messages).unwrap();
    assert!(!raw.contains("DOE") && !raw.contains("1985-02-14"), "{raw}");
    sim.stop().await;
}

/// `run` fails at start, with a message saying what to install, when `xmllint` cannot be found.
#[tokio::test]
async fn run_fails_without_xmllint() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = DojSimConfig {
        tokens: vec![TOKEN.into()],
        xmllint: "/nonexistent/bin/xmllint".into(),
        ..DojSimConfig::default()
    };
    let err = run(listener, config, std::future::pending()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("xmllint") && text.contains("not found"), "{text}");
}

/// `run` refuses a configuration without a token.
#[tokio::test]
async fn run_refuses_a_config_without_tokens() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = run(listener, DojSimConfig::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("token"), "{err:#}");
}
