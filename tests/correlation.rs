//! ICD §4 (version 1.1): a status's AMQP `correlation_id` is the inbound
//! `message_id` exactly as it came, even one that breaks ICD §1 (over 64
//! characters, control characters) and is `REJECTED` for it; and such an id
//! is never deduplicated against another id's message.
//!
//! The statuses are read straight off `por.responses.<ORI>` here, because
//! [`StatusWatcher`](common::StatusWatcher) keys them by the body's
//! `por:CorrelatesTo`, which renders control characters (see
//! `porter::status`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use porter::formats::xml::read_status;
use porter::model::{ErrorCode, StatusKind, StatusMessage};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A status as it came off the court's response queue: its AMQP
/// `correlation_id` and its body.
#[derive(Debug, Clone)]
struct Received {
    correlation_id: Option<String>,
    status: StatusMessage,
}

/// Every status published to one court, unfiltered.
struct Responses {
    seen: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Responses {
    async fn start(h: &Harness, court: &str) -> Responses {
        let channel = h.conn.create_channel().await.unwrap();
        let mut consumer = channel
            .basic_consume(
                format!("por.responses.{court}").as_str().into(),
                unique_id("test-correlation").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let _channel = channel;
            while let Some(Ok(d)) = consumer.next().await {
                let _ = d.ack(BasicAckOptions::default()).await;
                let status = read_status(&d.data).expect("a readable status");
                let correlation_id = d.properties.correlation_id().as_ref().map(|c| c.as_str().to_string());
                sink.lock().unwrap().push(Received { correlation_id, status });
            }
        });
        Responses { seen, _task: task }
    }

    /// Waits until `count` statuses with this exact `correlation_id` came,
    /// and returns them; panics with everything seen after [`WAIT`].
    async fn wait(&self, correlation_id: &str, count: usize) -> Vec<StatusMessage> {
        let started = Instant::now();
        loop {
            let matching: Vec<StatusMessage> = {
                let seen = self.seen.lock().unwrap();
                seen.iter()
                    .filter(|r| r.correlation_id.as_deref() == Some(correlation_id))
                    .map(|r| r.status.clone())
                    .collect()
            };
            if matching.len() >= count {
                return matching;
            }
            if started.elapsed() > WAIT {
                let seen = self.seen.lock().unwrap().clone();
                panic!("no {count} statuses with correlation_id {correlation_id:?} in {WAIT:?}; seen: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Asserts `statuses` is one `REJECTED` with `code` on field `message_id`.
fn assert_rejected_for_id(statuses: &[StatusMessage], code: ErrorCode) {
    assert_eq!(statuses.len(), 1, "{statuses:#?}");
    let s = &statuses[0];
    assert_eq!(s.status, StatusKind::Rejected, "{s:#?}");
    assert!(
        s.errors.iter().any(|e| e.code == code && e.field == "message_id"),
        "expected {code} on message_id: {:#?}",
        s.errors
    );
}

/// `GET /api/v1/courts/{ori}/messages/{message_id}`, the id as one
/// percent-encoded path segment. Encoded here byte by byte: the `url`
/// crate drops tabs and line breaks from what it is given.
async fn message_view(h: &Harness, court: &str, message_id: &str) -> (u16, Value) {
    let segment: String = message_id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}/api/v1/courts/{court}/messages/{segment}", h.http);
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The scenario, on the store at `store_url` (a fresh SQLite file when
/// `None`).
async fn exact_correlation(store_url: Option<String>) {
    let court = unique_ori();
    let setup = Setup {
        store_url,
        ..Default::default()
    };
    let h = Harness::start_with_setup(&[&court], setup).await;
    let responses = Responses::start(&h, &court).await;
    let xml = for_court(&fixture("xml/issue-sample.xml"), &court);

    // A valid id of exactly 64 characters, accepted.
    let valid = format!("c64-{}", "0".repeat(28)) + &uuid::Uuid::new_v4().simple().to_string();
    assert_eq!(valid.chars().count(), 64);
    h.publish(&court, Some(&valid), "application/xml", &xml).await;
    let first = responses.wait(&valid, 1).await;
    assert_eq!(first[0].status, StatusKind::Accepted, "{first:#?}");

    // (a) 100 characters whose first 64 are the valid id, same body: its
    // own REJECTED (TOO_LONG), never a duplicate of the valid one.
    let long = format!("{valid}{}", "-too-long".repeat(4));
    assert_eq!(long.chars().count(), 100);
    h.publish(&court, Some(&long), "application/xml", &xml).await;
    assert_rejected_for_id(&responses.wait(&long, 1).await, ErrorCode::TooLong);

    // (b) control characters, two ids with the same body: each its own
    // REJECTED (INVALID_FORMAT) under its exact id.
    let tab = format!("tab\there-{}", uuid::Uuid::new_v4().simple());
    let soh = format!("soh\u{1}here-{}", uuid::Uuid::new_v4().simple());
    for id in [&tab, &soh] {
        h.publish(&court, Some(id), "application/xml", &xml).await;
    }
    for id in [&tab, &soh] {
        assert_rejected_for_id(&responses.wait(id, 1).await, ErrorCode::InvalidFormat);
    }

    // Within one such id, ICD §5 as for any id: the same bytes again are a
    // duplicate (the same status again, no second dead letter), another
    // body a conflict.
    h.publish(&court, Some(&soh), "application/xml", &xml).await;
    let again = responses.wait(&soh, 2).await;
    assert_eq!(again[0], again[1], "the recorded status, sent again");
    let mut other = xml.clone();
    other.extend_from_slice(b"\n");
    h.publish(&court, Some(&soh), "application/xml", &other).await;
    let conflicted = responses.wait(&soh, 3).await;
    assert_eq!(conflicted[2].status, StatusKind::ConflictRejected, "{conflicted:#?}");

    // The valid message was answered once, with its own ACCEPTED.
    let valid_statuses: Vec<_> = responses
        .wait(&valid, 1)
        .await
        .into_iter()
        .filter(|s| {
            matches!(
                s.status,
                StatusKind::Accepted | StatusKind::Rejected | StatusKind::ConflictRejected
            )
        })
        .collect();
    assert_eq!(valid_statuses.len(), 1, "{valid_statuses:#?}");

    // One dead letter per rule-breaking message, keeping its id as it came.
    let (_, dead) = h
        .api(&format!("/api/v1/dead-letters?court={court}&stage=validate"))
        .await;
    let mut ids: Vec<&str> = dead
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![long.as_str(), soh.as_str(), tab.as_str()];
    expected.sort();
    assert_eq!(ids, expected);

    // The API finds each message's statuses by the id as it came.
    for (id, count) in [(&long, 1), (&tab, 1), (&soh, 2)] {
        let (code, view) = message_view(&h, &court, id).await;
        assert_eq!(code, 200, "{id:?}: {view}");
        assert_eq!(view["statuses"].as_array().unwrap().len(), count, "{id:?}: {view}");
        assert_eq!(view["statuses"][0]["status"], "REJECTED", "{id:?}: {view}");
    }
    h.stop().await;
}

/// Proves, on SQLite, that a status's AMQP `correlation_id` is the inbound
/// `message_id` exactly: for a 100-character id (not cut to 64, and not
/// taken for the valid message its first 64 characters name) and for ids
/// with a tab and with U+0001 (not replaced by a made-up id, and not taken
/// for one another though their bodies are equal). Each is `REJECTED` with
/// the right code on field `message_id`, keeps its id in its dead letter,
/// and is found by the API under that id; under one such id the same bytes
/// again are a duplicate and another body a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_carry_the_exact_message_id_on_sqlite() {
    exact_correlation(None).await;
}

/// The same on PostgreSQL, in a fresh schema of `PORTER_TEST_PG_URL`
/// (which must be reachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_carry_the_exact_message_id_on_postgres() {
    postgres::in_fresh_schema(|url| exact_correlation(Some(url))).await;
}
