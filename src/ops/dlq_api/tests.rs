//! The dead-letter API with the real router over a real SQLite store (no
//! RabbitMQ: no relay; the outbox keeps what actions produce).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::formats::xml::{XmlLimits, read_order};
use crate::intake::Formats;
use crate::mapping::clets::CletsTables;
use crate::mapping::codes::CodeLists;
use crate::model::{OrderMessage, PartnerId};
use crate::ops::http::{OpsState, router};
use crate::store::{
    DeliveryOutcome, DeliveryResult, InboundMessage, IntakeItem, PartnerAttempt, SqlStore, Store, Verdict,
};

struct Api {
    base: String,
    store: SqlStore,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("porter.db").display());
        let store = SqlStore::connect(&url).await.unwrap();
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let formats = Formats {
            layouts: HashMap::new(),
            code_maps: HashMap::new(),
            codes: CodeLists::load(repo.join("mappings/codes.toml")).unwrap(),
            clets: CletsTables::load(&repo.join("mappings/clets.toml")).unwrap(),
            xml_limits: XmlLimits::default(),
        };
        let state = OpsState {
            store: Arc::new(store.clone()),
            amqp_connected: watch::channel(true).1,
            metrics: crate::ops::metrics::handle(),
            lea: None,
            relay: None,
            wake: None,
            formats: Some(Arc::new(formats)),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Api {
            base,
            store,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Intake of the ICD sample ISSUE as order `number` to CLETS, and a
    /// dead letter from `outcome`; returns the dead letter's and delivery's ids.
    async fn dead_letter(&self, number: &str, outcome: DeliveryOutcome) -> (i64, i64) {
        let order = sample(number);
        let canonical = serde_json::to_string(&order).unwrap();
        let body = format!("<{number}>{canonical}").into_bytes();
        let inbound = InboundMessage {
            court_ori: order.court_ori.to_string(),
            message_id: format!("m-{number}"),
            body_sha256: hex::encode(Sha256::digest(&body)),
            body,
            content_type: "application/xml".into(),
            layout: None,
            received_at: Utc::now(),
        };
        let verdict = Verdict::Accepted {
            canonical_sha256: hex::encode(Sha256::digest(canonical.as_bytes())),
            order: Box::new(order),
            partners: vec![PartnerId::Clets],
            warnings: Vec::new(),
        };
        self.store.intake(vec![IntakeItem { inbound, verdict }]).await.unwrap();
        let far = Utc::now() + chrono::Duration::days(1);
        let jobs = self.store.due_deliveries(&PartnerId::Clets, far, 100).await.unwrap();
        let job = jobs.iter().find(|j| j.order_number == number).unwrap();
        let produced = self
            .store
            .record_deliveries(vec![result(job.id, outcome)])
            .await
            .unwrap();
        (produced.dead_letters[0].id, job.id)
    }
}

fn result(delivery_id: i64, outcome: DeliveryOutcome) -> DeliveryResult {
    DeliveryResult {
        delivery_id,
        lease_token: 0,
        attempt: PartnerAttempt {
            at: Utc::now(),
            request: b"EPO".to_vec(),
            image: None,
            response: Some("REJ".into()),
            error: None,
        },
        outcome,
    }
}

/// The ICD §2 sample ISSUE, as order `number`.
fn sample(number: &str) -> OrderMessage {
    let body = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/samples/issue.xml")).unwrap();
    let mut order = read_order(&body, &XmlLimits::default()).message;
    order.order.order_number = Some(number.into());
    order
}

fn rejected() -> DeliveryOutcome {
    DeliveryOutcome::Rejected {
        reason: "E03 rejected".into(),
        warnings: Vec::new(),
    }
}

fn who(reason: &str) -> Value {
    json!({ "operator": "alice", "reason": reason })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_is_validated_then_replayed_as_the_next_revision() {
    let api = Api::start().await;
    let (id, delivery) = api.dead_letter("24DV00101", rejected()).await;
    let mut bad = sample("24DV00101");
    bad.restrained_person.as_mut().unwrap().sex = Some("Q".into());
    let (code, err) = api
        .post(
            &format!("/api/v1/dead-letters/{id}/edit"),
            json!({ "operator": "alice", "reason": "fix", "order": bad }),
        )
        .await;
    assert_eq!(code, 400, "{err}");
    assert_eq!(err["errors"][0]["field"], "restrained_person.sex", "{err}");

    let mut good = sample("24DV00101");
    good.order.case_number = Some("24FL99999".into());
    let (code, done) = api
        .post(
            &format!("/api/v1/dead-letters/{id}/edit"),
            json!({ "operator": "alice", "reason": "fix", "order": good }),
        )
        .await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(
        (done["delivery_id"].as_i64(), done["revision"].as_u64()),
        (Some(delivery), Some(1))
    );
    let far = Utc::now() + chrono::Duration::days(1);
    let jobs = api.store.due_deliveries(&PartnerId::Clets, far, 10).await.unwrap();
    assert_eq!(jobs[0].order.order.case_number.as_deref(), Some("24FL99999"));

    let (code, audit) = api.get(&format!("/api/v1/audit?dead_letter={id}")).await;
    assert_eq!(code, 200);
    assert_eq!(audit[0]["action"], "EDIT_REPLAY");
    assert_eq!(audit[0]["details"]["revision"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_map_to_400_404_and_409() {
    let api = Api::start().await;
    let (id, delivery) = api.dead_letter("24DV00201", rejected()).await;
    let late = DeliveryOutcome::Accepted {
        record_ids: Vec::new(),
        nic: None,
        warnings: Vec::new(),
    };
    api.store.record_deliveries(vec![result(delivery, late)]).await.unwrap();
    let (code, err) = api
        .post(&format!("/api/v1/dead-letters/{id}/replay"), who("again"))
        .await;
    assert_eq!(code, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("already accepted"), "{err}");

    let (code, _) = api.post("/api/v1/dead-letters/424242/replay", who("x")).await;
    assert_eq!(code, 404);
    let (code, err) = api.post(&format!("/api/v1/dead-letters/{id}/discard"), who(" ")).await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = api
        .post(&format!("/api/v1/dead-letters/{id}/replay"), json!({ "reason": "x" }))
        .await;
    assert_eq!(code, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("operator"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_replay_takes_the_open_deliver_dead_letters_matching_the_filter() {
    let api = Api::start().await;
    let (a, _) = api.dead_letter("24DV00301", rejected()).await;
    let (b, _) = api.dead_letter("24DV00302", rejected()).await;
    let (code, err) = api
        .post(
            "/api/v1/dead-letters/replay",
            json!({ "operator": "alice", "reason": "x", "rate_per_sec": 0 }),
        )
        .await;
    assert_eq!(code, 400, "{err}");
    let body = json!({
        "operator": "alice", "reason": "CARPOS back", "rate_per_sec": 20,
        "filter": { "partner": "CLETS", "reason": "PARTNER_REJECTED" }
    });
    let (code, report) = api.post("/api/v1/dead-letters/replay", body.clone()).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["replayed"], json!([a, b]), "oldest first");
    let (_, again) = api.post("/api/v1/dead-letters/replay", body).await;
    assert_eq!(again["replayed"], json!([]), "resolved ones are not taken again");
    let (_, audit) = api.get("/api/v1/audit?operator=alice").await;
    let actions: Vec<_> = audit.as_array().unwrap().iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, [json!("BULK_REPLAY"), json!("BULK_REPLAY")]);
    let (_, open) = api.get("/api/v1/dead-letters?open=true").await;
    assert_eq!(open, json!([]));
}
