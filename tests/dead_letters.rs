//! Dead-letter operations end to end (ICD §5, §9, §10): a real broker on
//! RabbitMQ with the CLETS simulator, driven through `porter dlq` and the
//! HTTP API.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn sample(name: &str, court: &str) -> Vec<u8> {
    let body = std::fs::read(repo().join("schemas/samples").join(name)).unwrap();
    for_court(&body, court)
}

async fn set_faults(h: &Harness, faults: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", h.clets_control))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn post(h: &Harness, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", h.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn dlq(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_porter"))
        .arg("dlq")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

/// The court's dead letters at `stage`, from the API.
async fn dead_letters(h: &Harness, court: &str, stage: &str) -> Vec<Value> {
    let (code, list) = h
        .api(&format!("/api/v1/dead-letters?court={court}&stage={stage}"))
        .await;
    assert_eq!(code, 200, "{list}");
    list.as_array().unwrap().clone()
}

/// Proves that an edit-and-replay turns a CLETS rejection into
/// PARTNER_ACCEPTED (revision 1: a new MCN), that the later message held
/// behind it then flows, that the replayed dead letter cannot be replayed
/// again, and that the action is audited; the edit goes through `porter dlq
/// edit`, and `porter dlq list` shows the dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_replay_turns_a_rejected_epo_into_partner_accepted_and_releases_the_next() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    set_faults(&h, json!({ "reject_rate": 1.0 })).await;
    let issue = unique_id("dlq-issue");
    let modify = unique_id("dlq-modify");
    h.publish(&court, Some(&issue), "application/xml", &sample("issue.xml", &court))
        .await;
    watch.wait(&issue, WAIT, has("PARTNER_REJECTED")).await;
    h.publish(&court, Some(&modify), "application/xml", &sample("modify.xml", &court))
        .await;
    watch.wait(&modify, WAIT, has("ACCEPTED")).await;

    let list = dead_letters(&h, &court, "deliver").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["reason"], "PARTNER_REJECTED");
    let out = dlq(&["list", "--api", &h.http, "--court", &court]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("PARTNER_REJECTED") && table.contains("OPEN"), "{table}");

    // CARPOS answers a repeated MCN with its remembered REJ (ICD §6), so
    // the fix is an edit: a new revision, a new MCN.
    set_faults(&h, json!({})).await;
    let mut order = porter::formats::xml::read_order(&sample("issue.xml", &court), &Default::default()).message;
    order.order.case_number = Some("24FL00999".into());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("order.json");
    std::fs::write(&file, serde_json::to_vec(&order).unwrap()).unwrap();
    let id_text = id.to_string();
    let out = dlq(&[
        "edit",
        &id_text,
        "--file",
        file.to_str().unwrap(),
        "--reason",
        "CARPOS fixed",
        "--operator",
        "alice",
        "--api",
        &h.http,
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revision 1"));

    let statuses = watch.wait(&issue, WAIT, has("PARTNER_ACCEPTED")).await;
    let last = statuses.last().unwrap();
    assert_eq!(last.status.as_str(), "PARTNER_ACCEPTED", "the latest status counts");
    watch.wait(&modify, WAIT, has("PARTNER_ACCEPTED")).await;

    let body = json!({ "operator": "alice", "reason": "again" });
    let (code, err) = post(&h, &format!("/api/v1/dead-letters/{id}/replay"), body).await;
    assert_eq!(code, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("already resolved"), "{err}");
    let (code, audit) = h.api(&format!("/api/v1/audit?dead_letter={id}")).await;
    assert_eq!(code, 200);
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(
        (&rows[0]["action"], &rows[0]["operator"], &rows[0]["reason"]),
        (&json!("EDIT_REPLAY"), &json!("alice"), &json!("CARPOS fixed"))
    );
    assert_eq!(h.sim_state().await["counters"]["double_records"], 0);
    h.stop().await;
}

/// Proves the API's refusals: a validate-stage dead letter is not replayed
/// (409), a discard without a reason is 400, an unknown id is 404, and a
/// discard with a reason resolves it; `porter dlq` reports a broker it
/// cannot reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_what_it_must_and_discards_with_a_reason() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let bad = unique_id("dlq-bad");
    let body = replace(
        &sample("issue.xml", &court),
        "<j:CourtOrderIssuingDate><nc:Date>2026-11-25",
        "<j:CourtOrderIssuingDate><nc:Date>2026-13-45",
    );
    h.publish(&court, Some(&bad), "application/xml", &body).await;
    watch.wait(&bad, WAIT, has("REJECTED")).await;
    let list = dead_letters(&h, &court, "validate").await;
    let id = list[0]["id"].as_i64().unwrap();

    let who = json!({ "operator": "bob", "reason": "try" });
    let (code, err) = post(&h, &format!("/api/v1/dead-letters/{id}/replay"), who).await;
    assert_eq!(code, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("court resends"), "{err}");
    let no_reason = json!({ "operator": "bob", "reason": "" });
    let (code, _) = post(&h, &format!("/api/v1/dead-letters/{id}/discard"), no_reason).await;
    assert_eq!(code, 400);
    let (code, _) = post(&h, "/api/v1/dead-letters/999999999/discard", json!({})).await;
    assert_eq!(code, 400, "a body without operator and reason is a bad request");
    let who = json!({ "operator": "bob", "reason": "court will resend" });
    let (code, _) = post(&h, "/api/v1/dead-letters/999999999/discard", who.clone()).await;
    assert_eq!(code, 404);
    let (code, done) = post(&h, &format!("/api/v1/dead-letters/{id}/discard"), who).await;
    assert_eq!(code, 200, "{done}");
    let (_, one) = h.api(&format!("/api/v1/dead-letters/{id}")).await;
    assert_eq!(
        (&one["resolution"], &one["resolved_by"]),
        (&json!("DISCARDED"), &json!("bob"))
    );
    let (_, doc) = h.api("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/dead-letters/{id}/edit"]["post"].is_object());

    let out = dlq(&["list", "--api", "http://127.0.0.1:9"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Porter broker"));
    h.stop().await;
}
