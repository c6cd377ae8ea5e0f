//! The DOJ client against a mock DOJ (wiremock): what it sends and how it
//! reads each answer.

use std::time::Duration;

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::config::{RetryConfig, Secret};
use crate::delivery::circuit::CircuitState;
use crate::delivery::testing::{image, job, retry};
use crate::formats::xml::{XmlLimits, read_order};
use crate::model::{Action, PartnerRecordId};
use crate::store::DeliveryOutcome;

const TOKEN: &str = "doj-test-token";

fn config(url: &str, timeout_ms: u64) -> DojConfig {
    DojConfig {
        url: url.to_string(),
        token: Secret::literal(TOKEN),
        concurrency: 4,
        timeout_ms,
        batch: 16,
        retry: RetryConfig::default(),
    }
}

async fn adapter(server: &MockServer) -> DojPartner {
    DojPartner::new(&config(&server.uri(), 2_000), retry("DOJ")).unwrap()
}

async fn answer(server: &MockServer, response: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(NOTICES_PATH))
        .respond_with(response)
        .mount(server)
        .await;
}

/// The request goes to the notices path with `Content-Type:
/// application/xml`, the ICD §5 Idempotency-Key and the bearer token, and
/// a 201's `tracking_id` becomes the record id.
#[tokio::test]
async fn sends_headers_and_reads_tracking_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(NOTICES_PATH))
        .and(header("content-type", "application/xml"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("idempotency-key", "por:CA034025J:24DV01234:1:DOJ:0"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"tracking_id":"DOJ-000123"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let result = adapter(&server).await.attempt(job(PartnerId::Doj, Action::Issue)).await;
    let DeliveryOutcome::Accepted { record_ids, nic, .. } = result.outcome else {
        panic!("{:?}", result.outcome)
    };
    assert_eq!(
        record_ids,
        vec![PartnerRecordId {
            scheme: "tracking_id".into(),
            id: "DOJ-000123".into()
        }]
    );
    assert_eq!(nic, None);
    assert_eq!(
        result.attempt.response.as_deref(),
        Some(r#"201 {"tracking_id":"DOJ-000123"}"#)
    );
    assert!(result.attempt.request.starts_with(b"<por:ProtectiveOrderMessage"));
}

/// The body is the whole current order under this message's header: a
/// SERVICE notice says SERVICE and its own sequence, and still carries the
/// restrained person and conditions of the order.
#[tokio::test]
async fn body_is_current_order_with_this_messages_header() {
    let server = MockServer::start().await;
    answer(
        &server,
        ResponseTemplate::new(201).set_body_string(r#"{"tracking_id":"T"}"#),
    )
    .await;
    let mut service = job(PartnerId::Doj, Action::Service);
    // Even if the stored state's header were stale, the notice says SERVICE.
    service.state.action = Some(Action::Modify);
    service.state.sequence = Some(2);
    adapter(&server).await.attempt(service.clone()).await;
    let sent = &server.received_requests().await.unwrap()[0];
    let parsed = read_order(&sent.body, &XmlLimits::default());
    assert!(parsed.is_ok(), "{:?}", parsed.errors);
    let msg = parsed.message;
    assert_eq!(msg.action, Some(Action::Service));
    assert_eq!(msg.sequence, Some(service.sequence));
    assert_eq!(msg.sent_at, service.order.sent_at);
    assert!(msg.order.service.is_some());
    assert_eq!(msg.restrained_person, service.state.restrained_person);
    assert_eq!(msg.order.condition_codes, service.state.order.condition_codes);
}

/// When the order has a signed image, it travels inline (`por:OrderImage`)
/// and reads back byte for byte.
#[tokio::test]
async fn image_is_inline() {
    let server = MockServer::start().await;
    answer(
        &server,
        ResponseTemplate::new(201).set_body_string(r#"{"tracking_id":"T"}"#),
    )
    .await;
    let mut issue = job(PartnerId::Doj, Action::Issue);
    issue.state.image = Some(image());
    adapter(&server).await.attempt(issue).await;
    let sent = &server.received_requests().await.unwrap()[0];
    let parsed = read_order(&sent.body, &XmlLimits::default());
    assert!(parsed.is_ok(), "{:?}", parsed.errors);
    assert_eq!(parsed.message.image, Some(image()));
}

/// 200 (a repeated key) and 409 are done; a 2xx without `tracking_id` is
/// accepted without a record id.
#[tokio::test]
async fn repeats_and_conflicts_are_accepted() {
    let server = MockServer::start().await;
    let partner = adapter(&server).await;
    for (status, body, ids) in [
        (200, r#"{"tracking_id":"DOJ-1"}"#, 1),
        (409, r#"{"tracking_id":"DOJ-1"}"#, 1),
        (409, "", 0),
        (204, "", 0),
    ] {
        answer(&server, ResponseTemplate::new(status).set_body_string(body)).await;
        let result = partner.attempt(job(PartnerId::Doj, Action::Issue)).await;
        match result.outcome {
            DeliveryOutcome::Accepted { record_ids, .. } => assert_eq!(record_ids.len(), ids, "{status}"),
            other => panic!("{status}: {other:?}"),
        }
    }
}

/// 400 and 422 are permanent: `Rejected`, with DOJ's JSON reason.
#[tokio::test]
async fn bad_requests_are_rejected_with_reason() {
    let server = MockServer::start().await;
    let partner = adapter(&server).await;
    for status in [400, 422] {
        answer(
            &server,
            ResponseTemplate::new(status).set_body_string(r#"{"reason":"order_type missing"}"#),
        )
        .await;
        let result = partner.attempt(job(PartnerId::Doj, Action::Issue)).await;
        let DeliveryOutcome::Rejected { reason, .. } = result.outcome else {
            panic!("{status}: {:?}", result.outcome)
        };
        assert_eq!(reason, format!("HTTP {status}: order_type missing"));
    }
    assert_eq!(
        partner.circuits().state(&PartnerId::Doj, Instant::now()),
        CircuitState::Closed
    );
}

/// 429 and 503 are transient, and the next attempt is not before the
/// partner's `Retry-After` (the policy's own backoff here is ≤ 1 s).
#[tokio::test]
async fn busy_answers_retry_after_the_partners_delay() {
    let server = MockServer::start().await;
    let partner = adapter(&server).await;
    for status in [429, 503] {
        answer(
            &server,
            ResponseTemplate::new(status).insert_header("Retry-After", "120"),
        )
        .await;
        let before = chrono::Utc::now();
        let result = partner.attempt(job(PartnerId::Doj, Action::Issue)).await;
        let DeliveryOutcome::Retry { next_attempt_at, .. } = result.outcome else {
            panic!("{status}: {:?}", result.outcome)
        };
        assert!(next_attempt_at >= before + chrono::Duration::seconds(120), "{status}");
        assert!(next_attempt_at < before + chrono::Duration::seconds(130), "{status}");
    }
}

/// 401 and 403 are a credentials problem: the job is retried (not
/// rejected, not dead-lettered) and DOJ's circuit opens at once.
#[tokio::test]
async fn refused_credentials_retry_and_open_the_circuit() {
    for status in [401, 403] {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(status)).await;
        let partner = adapter(&server).await;
        let before = chrono::Utc::now();
        let result = partner.attempt(job(PartnerId::Doj, Action::Issue)).await;
        let DeliveryOutcome::Retry {
            next_attempt_at,
            reason,
        } = result.outcome
        else {
            panic!("{status}: {:?}", result.outcome)
        };
        assert!(reason.contains("credentials"), "{reason}");
        assert!(next_attempt_at >= before + chrono::Duration::seconds(60));
        assert!(matches!(
            partner.circuits().state(&PartnerId::Doj, Instant::now()),
            CircuitState::Open { .. }
        ));
    }
}

/// A DOJ slower than the configured timeout is a transient failure.
#[tokio::test]
async fn timeout_is_retried() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(201).set_delay(Duration::from_secs(3))).await;
    let partner = DojPartner::new(&config(&server.uri(), 200), retry("DOJ")).unwrap();
    let result = partner.attempt(job(PartnerId::Doj, Action::Issue)).await;
    assert!(
        matches!(result.outcome, DeliveryOutcome::Retry { .. }),
        "{:?}",
        result.outcome
    );
    assert!(
        result.attempt.error.as_deref().unwrap_or("").starts_with("timeout"),
        "{:?}",
        result.attempt.error
    );
    assert!(result.attempt.response.is_none());
}

/// Nobody listening is a transient failure (connection error).
#[tokio::test]
async fn connection_refused_is_retried() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let partner = DojPartner::new(&config(&format!("http://127.0.0.1:{port}"), 1_000), retry("DOJ")).unwrap();
    let result = partner.attempt(job(PartnerId::Doj, Action::Issue)).await;
    assert!(
        matches!(result.outcome, DeliveryOutcome::Retry { .. }),
        "{:?}",
        result.outcome
    );
    assert!(result.attempt.error.is_some());
}

/// The notice body is a pure function of the job: a resend is
/// byte-identical (so DOJ answers it 200, not 422).
#[test]
fn resend_body_is_identical() {
    let j = job(PartnerId::Doj, Action::Modify);
    assert_eq!(notice_body(&j), notice_body(&j.clone()));
}

/// A SQLite store holding `image`, as the intake leaves it.
async fn store_with(image: &crate::model::OrderImage) -> (tempfile::TempDir, crate::store::SqlStore) {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("porter.db").display());
    let store = crate::store::SqlStore::connect(&url).await.unwrap();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO images (sha256, mime_type, size, data, created_at) VALUES ($1, $2, $3, $4, 0)")
        .bind(image.sha256.clone())
        .bind(image.mime_type.clone())
        .bind(image.size as i64)
        .bind(image.data.clone().unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    (dir, store)
}

/// An ISSUE job whose order holds the image by reference, as the store
/// gives it.
fn job_referring_to(image: &crate::model::OrderImage) -> DeliveryJob {
    let mut issue = job(PartnerId::Doj, Action::Issue);
    let mut reference = image.clone();
    reference.data = None;
    issue.state.image = Some(reference);
    issue
}

/// A job whose order refers to its image gets the bytes from the store:
/// DOJ receives them inline, byte for byte with the right SHA-256; the
/// attempt keeps the request without the base64 text but with the image's
/// SHA-256, and rebuilding it gives exactly what DOJ received.
#[tokio::test]
async fn image_is_loaded_by_reference_and_kept_out_of_the_record() {
    let server = MockServer::start().await;
    answer(
        &server,
        ResponseTemplate::new(201).set_body_string(r#"{"tracking_id":"T"}"#),
    )
    .await;
    let image = image();
    let (_dir, store) = store_with(&image).await;
    let partner = adapter(&server).await.with_images(Arc::new(store));
    let result = partner.attempt(job_referring_to(&image)).await;
    assert!(
        matches!(result.outcome, DeliveryOutcome::Accepted { .. }),
        "{:?}",
        result.outcome
    );

    let sent = server.received_requests().await.unwrap()[0].body.clone();
    let parsed = read_order(&sent, &XmlLimits::default());
    assert!(parsed.is_ok(), "{:?}", parsed.errors);
    let inline = parsed.message.image.expect("the image is inline");
    assert_eq!(inline.data, image.data);
    assert_eq!(
        inline.sha256,
        hex::encode(Sha256::digest(inline.data.as_deref().unwrap()))
    );

    let text = crate::formats::xml::image_base64(image.data.as_deref().unwrap());
    let record = &result.attempt;
    let kept = record.image.as_ref().expect("the record refers to the image");
    assert_eq!(kept.sha256, image.sha256);
    assert_eq!(record.request.len() + text.len(), sent.len());
    assert!(!String::from_utf8_lossy(&record.request).contains(&text));
    assert_eq!(
        http::rebuild_request(record, image.data.as_deref().unwrap()),
        Some(sent.to_vec())
    );
}

/// When the image's bytes cannot be had (no store given, or the store does
/// not have them), nothing is sent: the attempt names the image and the
/// delivery is retried.
#[tokio::test]
async fn missing_image_sends_nothing() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(201)).await;
    let image = image();
    let other = crate::model::OrderImage::new("application/pdf", "0".repeat(64), b"x".to_vec());
    let (_dir, store) = store_with(&other).await;
    let without_store = adapter(&server).await;
    let with_other = adapter(&server).await.with_images(Arc::new(store));
    for (partner, why) in [(without_store, "no store"), (with_other, "missing from the store")] {
        let result = partner.attempt(job_referring_to(&image)).await;
        let error = result.attempt.error.clone().unwrap_or_default();
        assert!(error.contains(&image.sha256) && error.contains(why), "{error}");
        assert!(result.attempt.request.is_empty());
        assert!(
            matches!(result.outcome, DeliveryOutcome::Retry { .. }),
            "{:?}",
            result.outcome
        );
    }
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing reached DOJ"
    );
}
