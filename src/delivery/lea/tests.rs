//! The LEA client against a mock agency (wiremock), and the body against
//! `schemas/lea-order.schema.json`.

use std::time::Duration;

use serde_json::Value;
use sha2::Digest as _;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::config::{LeaAgencyConfig, RetryConfig, Secret};
use crate::delivery::circuit::CircuitState;
use crate::delivery::testing::{image, job, retry};
use crate::formats::xml::{XmlLimits, read_order, write_order};
use crate::mapping::clets::CletsTables;
use crate::model::{ErrorCode, PartnerRecordId};
use crate::store::{
    DeliveryOutcome, InboundMessage, IntakeItem, OperatorAction, PartnerAttempt, SqlStore, Store, Verdict,
};
use crate::translate::clets::translate;

const AGENCY: &str = "CA0341100";
const SHERIFF: &str = "CA0340000";
const SECRET: &str = "agency-secret";
const BASE: &str = "https://porter.example";

fn config(base_url: &str) -> LeaConfig {
    LeaConfig {
        base_url: base_url.to_string(),
        default_secret: None,
        agencies: vec![
            LeaAgencyConfig {
                ori: AGENCY.into(),
                name: "Police".into(),
                endpoint: None,
                secret: Some(Secret::literal(SECRET)),
            },
            LeaAgencyConfig {
                ori: SHERIFF.into(),
                name: "Sheriff".into(),
                endpoint: None,
                secret: Some(Secret::literal("sheriff-secret")),
            },
        ],
        concurrency: 8,
        per_agency: 4,
        timeout_ms: 2_000,
        batch: 16,
        image_link_days: 7,
        retry: RetryConfig::default(),
    }
}

fn adapter(config: &LeaConfig) -> LeaPartner {
    LeaPartner::new(config, format!("{BASE}/"), retry("LEA")).unwrap()
}

fn lea() -> PartnerId {
    PartnerId::Lea(AGENCY.into())
}

async fn answer(server: &MockServer, response: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(format!("/{AGENCY}/orders")))
        .respond_with(response)
        .mount(server)
        .await;
}

fn header_value<'a>(request: &'a Request, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The request goes to `<endpoint>/orders` with `Content-Type:
/// application/json`, the ICD §5 Idempotency-Key (`LEA-<ORI>`) and an
/// `X-POR-Signature` that verifies with the agency's secret over the exact
/// body and a current `t` (and not with another agency's); the answer's
/// `record_id` becomes the record id.
#[tokio::test]
async fn sends_signed_json_with_key_and_reads_record_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{AGENCY}/orders")))
        .and(header("content-type", "application/json"))
        .and(header("idempotency-key", "por:CA034025J:24DV01234:1:LEA-CA0341100:0"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"record_id":"RMS-42"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let result = adapter(&config(&server.uri())).attempt(job(lea(), Action::Issue)).await;
    let DeliveryOutcome::Accepted { record_ids, .. } = result.outcome else {
        panic!("{:?}", result.outcome)
    };
    assert_eq!(
        record_ids,
        vec![PartnerRecordId {
            scheme: "record_id".into(),
            id: "RMS-42".into()
        }]
    );
    let sent = &server.received_requests().await.unwrap()[0];
    let signature = header_value(sent, SIGNATURE_HEADER);
    let now = Utc::now().timestamp();
    assert_eq!(verify_signature(SECRET, signature, &sent.body, now), Ok(()));
    assert_eq!(
        verify_signature("sheriff-secret", signature, &sent.body, now),
        Err(SignatureError::Mismatch)
    );
    let t: i64 = signature
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((now - t).abs() <= 5);
    assert_eq!(result.attempt.request, sent.body);
}

/// The body carries this message's header and the whole current order;
/// the image is a signed link for this agency (verifiable with its secret,
/// valid `image_link_days`), and its bytes appear nowhere in the body.
#[tokio::test]
async fn image_is_a_signed_link_never_inline() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(201)).await;
    let mut issue = job(lea(), Action::Issue);
    issue.state.image = Some(image());
    adapter(&config(&server.uri())).attempt(issue.clone()).await;
    let sent = &server.received_requests().await.unwrap()[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["action"], "ISSUE");
    assert_eq!(body["sequence"], 1);
    assert_eq!(body["order"]["order"]["order_number"], "24DV01234");
    assert!(body["order"].get("image").is_none());
    let encoded = data_encoding::BASE64.encode(image().data.as_deref().unwrap());
    assert!(!String::from_utf8_lossy(&sent.body).contains(&encoded));
    let link = &body["image"];
    let sha = image().sha256;
    assert_eq!(link["sha256"], sha.as_str());
    assert_eq!(link["mime_type"], "application/pdf");
    let url = link["url"].as_str().unwrap();
    let prefix = format!("{BASE}/images/{sha}?agency={AGENCY}&exp=");
    let rest = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    let (exp, sig) = rest.split_once("&sig=").unwrap();
    let exp: i64 = exp.parse().unwrap();
    let week = (issue.key_created_at + chrono::Duration::days(7)).timestamp();
    assert_eq!(exp, week);
    let now = Utc::now().timestamp();
    assert_eq!(image_link::verify(SECRET, &sha, AGENCY, exp, sig, now), Ok(()));
    assert!(image_link::verify("sheriff-secret", &sha, AGENCY, exp, sig, now).is_err());
}

/// Every ICD §8 status class maps to its outcome: 2xx/409 accepted, other
/// 4xx rejected, 408/425/429/5xx retried, 401/403 retried with the
/// agency's circuit opened.
#[tokio::test]
async fn each_status_class_maps_to_its_outcome() {
    let server = MockServer::start().await;
    for status in [
        200, 201, 202, 204, 409, 400, 404, 410, 422, 408, 425, 429, 500, 502, 503, 401, 403,
    ] {
        answer(&server, ResponseTemplate::new(status)).await;
        let partner = adapter(&config(&server.uri()));
        let result = partner.attempt(job(lea(), Action::Modify)).await;
        let circuit = partner.circuits().state(&lea(), Instant::now());
        match (status, &result.outcome) {
            (200..=299 | 409, DeliveryOutcome::Accepted { .. }) => {}
            (400 | 404 | 410 | 422, DeliveryOutcome::Rejected { .. }) => {}
            (408 | 425 | 429 | 500..=599, DeliveryOutcome::Retry { reason, .. }) => {
                assert_eq!(reason, &format!("HTTP {status}"));
                assert_eq!(circuit, CircuitState::Closed, "one failure does not open it");
            }
            (401 | 403, DeliveryOutcome::Retry { reason, .. }) => {
                assert!(reason.contains("credentials"), "{reason}");
                assert!(matches!(circuit, CircuitState::Open { .. }), "{status}");
            }
            (status, outcome) => panic!("{status}: {outcome:?}"),
        }
        assert_eq!(
            result.attempt.response.as_deref().map(|r| &r[..3]),
            Some(status.to_string().as_str())
        );
    }
}

/// A `Retry-After` given as an HTTP-date is honoured too.
#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let server = MockServer::start().await;
    let at = Utc::now() + chrono::Duration::seconds(300);
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    answer(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", date.as_str()),
    )
    .await;
    let result = adapter(&config(&server.uri())).attempt(job(lea(), Action::Issue)).await;
    let DeliveryOutcome::Retry { next_attempt_at, .. } = result.outcome else {
        panic!("{:?}", result.outcome)
    };
    assert!(
        next_attempt_at >= at - chrono::Duration::seconds(1),
        "{next_attempt_at} < {at}"
    );
}

/// An agency slower than the timeout is retried.
#[tokio::test]
async fn timeout_is_retried() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(201).set_delay(Duration::from_secs(3))).await;
    let mut cfg = config(&server.uri());
    cfg.timeout_ms = 200;
    let result = adapter(&cfg).attempt(job(lea(), Action::Issue)).await;
    assert!(
        matches!(result.outcome, DeliveryOutcome::Retry { .. }),
        "{:?}",
        result.outcome
    );
    assert!(result.attempt.error.as_deref().unwrap_or("").starts_with("timeout"));
}

/// An agency without a signing secret gets nothing: the job waits (Retry)
/// and the agency's circuit opens as for refused credentials.
#[tokio::test]
async fn agency_without_secret_is_a_credentials_problem() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(201)).await;
    let mut cfg = config(&server.uri());
    cfg.agencies[0].secret = None;
    let partner = adapter(&cfg);
    let result = partner.attempt(job(lea(), Action::Issue)).await;
    assert!(
        matches!(result.outcome, DeliveryOutcome::Retry { .. }),
        "{:?}",
        result.outcome
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(matches!(
        partner.circuits().state(&lea(), Instant::now()),
        CircuitState::Open { .. }
    ));
}

/// `for_agency` binds the adapter's partner id; the unbound one is `LEA:`.
#[test]
fn for_agency_names_the_partner() {
    let partner = adapter(&config("http://127.0.0.1:9"));
    assert_eq!(partner.for_agency(AGENCY).partner(), lea());
    assert_eq!(partner.partner(), PartnerId::Lea(String::new()));
}

/// Proves a resend carries the byte-identical body under the same key even
/// when the job's content is nearly `image_link_days` old: two attempts of
/// the job, more than a second apart, send the same bytes, with the link's
/// expiry at `key_created_at + 7 days`; only the signature's `t` may change.
/// (Before, the expiry was recomputed from the clock once less than a day
/// of it was left, so the two bodies differed and DOJ-style receivers
/// answered `422`.)
#[tokio::test]
async fn resends_carry_the_same_body_whatever_the_clock() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(503)).await;
    let mut issue = job(lea(), Action::Issue);
    issue.state.image = Some(image());
    issue.key_created_at = Utc::now() - chrono::Duration::days(7) + chrono::Duration::hours(1);
    issue.created_at = issue.key_created_at;
    let partner = adapter(&config(&server.uri()));
    partner.attempt(issue.clone()).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    issue.attempts = 1;
    partner.attempt(issue.clone()).await;
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        String::from_utf8_lossy(&sent[1].body),
        String::from_utf8_lossy(&sent[0].body),
        "the resend's body changed"
    );
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    let week = (issue.key_created_at + chrono::Duration::days(7)).timestamp();
    assert!(
        body["image"]["url"]
            .as_str()
            .unwrap()
            .contains(&format!("&exp={week}&")),
        "{body}"
    );
}

/// Proves the body depends on the content's instant (`key_created_at`), not
/// on the retry age: a plain replay, which restarts `created_at` and the
/// attempts but keeps the key, gets the same bytes; an edit's fresh
/// `key_created_at` (a new revision, a new key) gets a fresh link.
#[test]
fn a_plain_replay_keeps_the_body_an_edit_renews_the_link() {
    let mut issue = job(lea(), Action::Issue);
    issue.state.image = Some(image());
    issue.key_created_at -= chrono::Duration::days(3);
    issue.created_at = issue.key_created_at;
    let params = LinkParams {
        public_base_url: BASE,
        secret: SECRET,
        ori: AGENCY,
        days: 7,
    };
    let first = String::from_utf8(LeaBody::new(&issue, &params).to_bytes()).unwrap();
    let mut replayed = issue.clone();
    replayed.created_at = Utc::now();
    replayed.attempts = 0;
    let again = String::from_utf8(LeaBody::new(&replayed, &params).to_bytes()).unwrap();
    assert_eq!(again, first);
    let mut edited = replayed.clone();
    edited.revision = 1;
    edited.key_created_at = replayed.created_at;
    assert_eq!(
        link_expiry(&edited, 7),
        (edited.key_created_at + chrono::Duration::days(7)).timestamp()
    );
    assert_ne!(LeaBody::new(&edited, &params).to_bytes(), first.as_bytes());
}

/// A SQLite store with the ICD sample ISSUE, carrying an image, accepted
/// for CLETS, DOJ and the agency, its deliveries created two days ago.
async fn stored_issue() -> (tempfile::TempDir, SqlStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("porter.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let sample = include_bytes!("../../../schemas/samples/issue.xml");
    let mut order = read_order(sample, &XmlLimits::default()).message;
    order.image = Some(image());
    let body = write_order(&order);
    let inbound = InboundMessage {
        court_ori: order.court_ori.to_string(),
        message_id: "m-resend".into(),
        body_sha256: hex::encode(Sha256::digest(&body)),
        body,
        content_type: "application/xml".into(),
        layout: None,
        received_at: Utc::now(),
    };
    let verdict = Verdict::Accepted {
        canonical_sha256: crate::intake::examine::canonical_sha256(&order),
        order: Box::new(order),
        partners: vec![PartnerId::Clets, PartnerId::Doj, lea()],
        warnings: Vec::new(),
    };
    store.intake(vec![IntakeItem { inbound, verdict }]).await.unwrap();
    sqlx::query("UPDATE deliveries SET created_at = created_at - $1")
        .bind(chrono::Duration::days(2).num_milliseconds())
        .execute(store.pool())
        .await
        .unwrap();
    (dir, store)
}

/// The partner's due job, as the delivery loop gets it.
async fn due_job(store: &SqlStore, partner: &PartnerId) -> DeliveryJob {
    let far = Utc::now() + chrono::Duration::days(30);
    store.due_deliveries(partner, far, 10).await.unwrap().remove(0)
}

/// What `job`'s partner is sent: the CLETS request, the DOJ notice with
/// the image inline (loaded from the store as the DOJ adapter does), or the
/// LEA body.
async fn request_for(store: &SqlStore, job: &DeliveryJob) -> Vec<u8> {
    match &job.partner {
        PartnerId::Clets => {
            let tables =
                CletsTables::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/clets.toml"))
                    .unwrap();
            let translation = translate(&job.order, job.nic.as_deref(), job.revision, &tables).unwrap();
            translation.request.into_text().into_bytes()
        }
        PartnerId::Doj => {
            let mut job = job.clone();
            let image = job.state.image.as_mut().unwrap();
            image.data = Some(store.image(&image.sha256).await.unwrap().unwrap().1);
            crate::delivery::doj::notice_body(&job)
        }
        PartnerId::Lea(ori) => {
            let link = LinkParams {
                public_base_url: BASE,
                secret: SECRET,
                ori,
                days: 7,
            };
            LeaBody::new(job, &link).to_bytes()
        }
    }
}

/// Gives `job` up (retries ran out) and replays its dead letter, as an
/// operator does.
async fn give_up_and_replay(store: &SqlStore, job: &DeliveryJob) {
    let result = DeliveryResult {
        delivery_id: job.id,
        lease_token: job.lease_token,
        attempt: PartnerAttempt {
            at: Utc::now(),
            request: Vec::new(),
            image: None,
            response: None,
            error: Some("timeout".into()),
        },
        outcome: DeliveryOutcome::DeadLettered {
            code: ErrorCode::RetriesExhausted,
            reason: "retries ran out".into(),
        },
    };
    let produced = store.record_deliveries(vec![result]).await.unwrap();
    let dead = produced.dead_letters[0].id;
    let by = OperatorAction {
        operator: "alice".into(),
        reason: "the partner is back".into(),
    };
    store.replay_dead_letter(dead, &by, false).await.unwrap();
}

/// Proves a plain replay (same revision, so the same MCN or
/// Idempotency-Key) sends every partner the byte-identical request it was
/// sent before, through a real store: CLETS, DOJ (image inline) and LEA
/// (image link). The replay restarts the retry age two days after the
/// delivery's creation; before, the LEA link's expiry counted from that
/// restart, so the agency got another body under the same key (`422`).
#[tokio::test]
async fn a_plain_replay_sends_every_partner_the_same_request() {
    let (_dir, store) = stored_issue().await;
    for partner in [PartnerId::Clets, PartnerId::Doj, lea()] {
        let first = due_job(&store, &partner).await;
        let before = request_for(&store, &first).await;
        give_up_and_replay(&store, &first).await;
        let replayed = due_job(&store, &partner).await;
        assert_eq!(replayed.id, first.id);
        assert_eq!(
            http::idempotency_key(&replayed),
            http::idempotency_key(&first),
            "{partner}"
        );
        assert_eq!(
            String::from_utf8_lossy(&request_for(&store, &replayed).await),
            String::from_utf8_lossy(&before),
            "{partner}: the replay's request changed"
        );
    }
}

/// A receiver refuses a stale `t`, a changed body and a malformed header.
#[test]
fn signature_checks() {
    let header = signature_header(SECRET, 1_800_000_000, b"{}");
    assert_eq!(verify_signature(SECRET, &header, b"{}", 1_800_000_300), Ok(()));
    assert_eq!(
        verify_signature(SECRET, &header, b"{}", 1_800_000_301),
        Err(SignatureError::Stale)
    );
    assert_eq!(
        verify_signature(SECRET, &header, b"{ }", 1_800_000_000),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(SECRET, "v1=00", b"{}", 1_800_000_000),
        Err(SignatureError::Malformed)
    );
    let expected = image_link::hmac_hex(SECRET.as_bytes(), &[b"1800000000.{}"]);
    assert_eq!(header, format!("t=1800000000,v1={expected}"));
}

/// Breaks one thing in a body.
type Breaker = fn(&mut Value);

fn schema() -> jsonschema::Validator {
    let text = include_str!("../../../schemas/lea-order.schema.json");
    let schema: Value = serde_json::from_str(text).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn errors(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The bodies emitted for every action of the sample lifecycle (and an
/// ISSUE with an image link) are valid against the shipped JSON Schema.
#[test]
fn bodies_of_every_action_match_the_schema() {
    let validator = schema();
    let mut jobs: Vec<DeliveryJob> = Action::ALL.into_iter().map(|a| job(lea(), a)).collect();
    let mut with_image = job(lea(), Action::Issue);
    with_image.state.image = Some(image());
    jobs.push(with_image);
    for j in &jobs {
        let params = LinkParams {
            public_base_url: BASE,
            secret: SECRET,
            ori: AGENCY,
            days: 7,
        };
        let body: Value = serde_json::from_slice(&LeaBody::new(j, &params).to_bytes()).unwrap();
        assert_eq!(body["action"], j.action.name());
        let problems = errors(&validator, &body);
        assert!(problems.is_empty(), "{}: {problems:#?}", j.action.name());
    }
}

/// The schema is not a rubber stamp: a body without `order_number`, with
/// an unknown action, sequence 0, a bad ORI or an inline image is refused.
#[test]
fn schema_refuses_broken_bodies() {
    let validator = schema();
    let params = LinkParams {
        public_base_url: BASE,
        secret: SECRET,
        ori: AGENCY,
        days: 7,
    };
    let good: Value = serde_json::from_slice(&LeaBody::new(&job(lea(), Action::Issue), &params).to_bytes()).unwrap();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("order_number");
    assert!(
        !errors(&validator, &missing).is_empty(),
        "missing order_number accepted"
    );
    let broken: [(&str, Breaker); 4] = [
        ("action", |b| b["action"] = "ENTER".into()),
        ("sequence", |b| b["sequence"] = 0.into()),
        ("court_ori", |b| b["court_ori"] = "ca034025j".into()),
        ("inline image", |b| {
            b["order"]["image"] = serde_json::json!({"data": "AAAA"})
        }),
    ];
    for (what, breaks) in broken {
        let mut body = good.clone();
        breaks(&mut body);
        assert!(!errors(&validator, &body).is_empty(), "{what} accepted");
    }
}
