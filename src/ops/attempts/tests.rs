//! The attempt download and the image link over the real router, a real
//! SQLite store, the real DOJ and LEA adapters and a mock DOJ (wiremock).

use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::config::{DojConfig, LeaAgencyConfig, LeaConfig, RetryConfig, Secret};
use crate::delivery::PartnerAdapter;
use crate::delivery::doj::DojPartner;
use crate::delivery::lea::{LeaBody, LinkParams};
use crate::delivery::retry::RetryPolicy;
use crate::formats::xml::{XmlLimits, read_order, write_order};
use crate::model::{OrderImage, PartnerId};
use crate::ops::http::{OpsState, router};
use crate::store::{InboundMessage, IntakeItem, SqlStore, Store, Verdict};

const AGENCY: &str = "CA0341100";
const SECRET: &str = "agency-secret";

/// A store with the ICD sample ISSUE plus a 1 MiB image accepted for DOJ,
/// and the router in front of it.
struct Setup {
    base: String,
    store: SqlStore,
    image: OrderImage,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("porter.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let image = OrderImage::new("application/pdf", hex::encode(Sha256::digest(&data)), data);
    let sample = include_bytes!("../../../schemas/samples/issue.xml");
    let mut order = read_order(sample, &XmlLimits::default()).message;
    order.image = Some(image.clone());
    let body = write_order(&order);
    let inbound = InboundMessage {
        court_ori: order.court_ori.to_string(),
        message_id: "m-image".into(),
        body_sha256: hex::encode(Sha256::digest(&body)),
        body,
        content_type: "application/xml".into(),
        layout: None,
        received_at: Utc::now(),
    };
    let verdict = Verdict::Accepted {
        canonical_sha256: crate::intake::examine::canonical_sha256(&order),
        order: Box::new(order),
        partners: vec![PartnerId::Doj, PartnerId::Lea(AGENCY.into())],
        warnings: Vec::new(),
    };
    store.intake(vec![IntakeItem { inbound, verdict }]).await.unwrap();

    let lea = LeaConfig {
        base_url: "http://127.0.0.1:9".into(),
        default_secret: None,
        agencies: vec![LeaAgencyConfig {
            ori: AGENCY.into(),
            name: "Police".into(),
            endpoint: None,
            secret: Some(Secret::literal(SECRET)),
        }],
        concurrency: 1,
        per_agency: 1,
        timeout_ms: 1000,
        batch: 1,
        image_link_days: 7,
        retry: RetryConfig::default(),
    };
    let state = OpsState {
        store: Arc::new(store.clone()),
        amqp_connected: watch::channel(true).1,
        metrics: crate::ops::metrics::handle(),
        lea: Some(Arc::new(lea)),
        relay: None,
        wake: None,
        formats: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Setup {
        base,
        store,
        image,
        _dir: dir,
    }
}

/// Proves the whole DOJ path keeps the image once and loses nothing: the
/// stored job refers to the image, DOJ receives it inline (bytes identical,
/// SHA-256 correct), the stored attempt is kilobytes, and the attempt
/// download rebuilds exactly the request DOJ received.
#[tokio::test]
async fn attempt_download_rebuilds_the_doj_request_with_its_image() {
    let s = setup().await;
    let far = Utc::now() + chrono::Duration::days(1);
    let job = s
        .store
        .due_deliveries(&PartnerId::Doj, far, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(job.state.image.as_ref().and_then(|i| i.data.as_ref()), None);
    let doj = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"tracking_id":"T1"}"#))
        .mount(&doj)
        .await;
    let config = DojConfig {
        url: doj.uri(),
        token: Secret::literal("doj-token"),
        concurrency: 1,
        timeout_ms: 5000,
        batch: 1,
        retry: RetryConfig::default(),
    };
    let adapter = DojPartner::new(&config, RetryPolicy::new("DOJ", &config.retry))
        .unwrap()
        .with_images(Arc::new(s.store.clone()));
    let delivery = job.id;
    let result = adapter.attempt(job).await;
    s.store.record_deliveries(vec![result]).await.unwrap();

    let sent = doj.received_requests().await.unwrap()[0].body.clone();
    let inline = read_order(&sent, &XmlLimits::default())
        .message
        .image
        .expect("inline image");
    assert_eq!(inline.data, s.image.data, "DOJ receives the bytes");
    assert_eq!(inline.sha256, hex::encode(Sha256::digest(inline.data.unwrap())));

    let recorded: Vec<u8> = sqlx::query_scalar("SELECT request FROM partner_attempts WHERE delivery_id = $1")
        .bind(delivery)
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    assert!(recorded.len() < 16 * 1024, "the record is {} bytes", recorded.len());

    let http = reqwest::Client::new();
    let list: serde_json::Value = http
        .get(format!("{}/api/v1/deliveries/{delivery}/attempts", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["n"], 1);
    assert_eq!(list[0]["image_sha256"], s.image.sha256);
    let download = http
        .get(format!("{}/api/v1/deliveries/{delivery}/attempts/1/request", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap(), sent, "the exact request");
    let missing = http
        .get(format!("{}/api/v1/deliveries/{delivery}/attempts/2/request", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Proves an agency gets the image through its signed link: the LEA body
/// built from the stored job links to `/images/<sha256>`, and that link
/// serves the image's bytes from the store.
#[tokio::test]
async fn lea_link_serves_the_stored_image() {
    let s = setup().await;
    let far = Utc::now() + chrono::Duration::days(1);
    let job = s
        .store
        .due_deliveries(&PartnerId::Lea(AGENCY.into()), far, 10)
        .await
        .unwrap()
        .remove(0);
    let link = LinkParams {
        public_base_url: &s.base,
        secret: SECRET,
        ori: AGENCY,
        days: 7,
    };
    let body = LeaBody::new(&job, &link);
    let image = body.image.expect("the body links the image");
    assert_eq!(image.sha256, s.image.sha256);
    assert!(!String::from_utf8_lossy(&body_bytes(&job, &link)).contains("\"data\""));
    let served = reqwest::get(&image.url).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"].to_str().unwrap(), "application/pdf");
    assert_eq!(served.bytes().await.unwrap().to_vec(), s.image.data.clone().unwrap());
}

fn body_bytes(job: &crate::store::DeliveryJob, link: &LinkParams<'_>) -> Vec<u8> {
    LeaBody::new(job, link).to_bytes()
}
