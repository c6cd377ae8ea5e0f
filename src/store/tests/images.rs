//! Signed-order images are stored once (by SHA-256, in `images`); the JSON
//! columns hold a reference. Run on both backends by `store_tests!`.

use super::*;
use crate::formats::xml::write_order;
use crate::model::OrderImage;

/// `len` bytes that do not compress (so neither backend's storage could
/// hide a copy): a SHA-256 chain.
fn incompressible(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(b"porter image");
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

/// A PDF image of `len` bytes whose hash matches, as the intake reads it.
fn pdf(len: usize) -> OrderImage {
    let data = incompressible(len);
    OrderImage::new("application/pdf", sha256_hex(&data), data)
}

/// An accepted item whose body is the normalized XML of `order` (the
/// image inline, as a court sends it), made unique by a comment.
fn accepted_xml(message_id: &str, order: OrderMessage, partners: &[PartnerId]) -> IntakeItem {
    let mut body = write_order(&order);
    body.extend_from_slice(format!("<!-- {message_id} -->").as_bytes());
    let canonical_sha256 = crate::intake::examine::canonical_sha256(&order);
    IntakeItem {
        inbound: inbound(&order.court_ori.clone(), message_id, body),
        verdict: Verdict::Accepted {
            canonical_sha256,
            order: Box::new(order),
            partners: partners.to_vec(),
            warnings: Vec::new(),
        },
    }
}

/// The sum of the lengths, in bytes, of every text and byte column of every
/// table of the store's schema.
async fn column_bytes(store: &SqlStore) -> i64 {
    let pool = store.pool();
    let postgres = store.backend() == sql::Backend::Postgres;
    let columns: Vec<(String, String)> = if postgres {
        sqlx::query(
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea', 'character varying')",
        )
        .fetch_all(pool)
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get("t"), r.get("c")))
        .collect()
    } else {
        sqlx::query(
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.type IN ('TEXT', 'BLOB')",
        )
        .fetch_all(pool)
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get("t"), r.get("c")))
        .collect()
    };
    assert!(columns.len() > 20, "the schema's columns: {columns:?}");
    let mut total = 0;
    for (table, column) in columns {
        let length = if postgres {
            format!("octet_length(\"{column}\")")
        } else {
            format!("length(CAST(\"{column}\" AS BLOB))")
        };
        let sql = format!("SELECT CAST(COALESCE(SUM({length}), 0) AS BIGINT) FROM \"{table}\"");
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(pool).await.expect("sum");
        total += n;
    }
    total
}

/// Proves the image is stored once: an ISSUE with a 5 MiB image and nine
/// later messages without one (SERVICE, whose order state keeps the image)
/// grow the store's text and byte columns by at most 1.2 × (the raw bodies
/// plus one image). Before images were stored once, every JSON column
/// (canonical, state, the order row) held the image again, in base64.
pub(super) async fn image_is_stored_once(store: SqlStore) {
    let s: &dyn Store = &store;
    let before = column_bytes(&store).await;
    let mut issue = message("24DV09001", Action::Issue, 1, "001");
    let image = pdf(5 * 1024 * 1024);
    let image_len = image.size as i64;
    issue.image = Some(image);
    let mut items = vec![accepted_xml("img-1", issue, &both())];
    for n in 2..=10 {
        items.push(accepted_xml(
            &format!("img-{n}"),
            message("24DV09001", Action::Service, n, "001"),
            &both(),
        ));
    }
    let bodies: i64 = items.iter().map(|i| i.inbound.body.len() as i64).sum();
    for item in items {
        accept(s, item).await;
    }
    let growth = column_bytes(&store).await - before;
    let bound = (bodies + image_len) * 12 / 10;
    eprintln!(
        "column bytes grew by {growth} (raw bodies {bodies}, image {image_len}, bound {bound}) on {:?}",
        store.backend()
    );
    assert!(
        growth <= bound,
        "the store grew by {growth} bytes; at most {bound} (1.2 × (bodies {bodies} + image {image_len}))"
    );
}

/// The image row of `sha256`: (mime type, size, length of the data).
async fn image_row(store: &SqlStore, sha256: &str) -> Option<(String, i64, i64)> {
    let row = sqlx::query("SELECT mime_type, size, data FROM images WHERE sha256 = $1")
        .bind(sha256.to_string())
        .fetch_optional(store.pool())
        .await
        .expect("images");
    row.map(|r| {
        let data: Vec<u8> = r.get("data");
        (r.get("mime_type"), r.get("size"), data.len() as i64)
    })
}

/// Proves what every copy of an order holds: the image's bytes once in
/// `images` (one row for two orders with the same image), and in the
/// canonical JSON, the state JSON, the order row and the jobs a reference
/// (media type, SHA-256, size) without the bytes; the raw body keeps the
/// court's bytes.
pub(super) async fn stored_orders_refer_to_their_image(store: SqlStore) {
    let s: &dyn Store = &store;
    let image = pdf(100_000);
    let sha = image.sha256.clone();
    let base64 = crate::formats::xml::image_base64(image.data.as_deref().unwrap());
    for number in ["24DV09101", "24DV09102"] {
        let mut issue = message(number, Action::Issue, 1, "001");
        issue.image = Some(image.clone());
        accept(s, accepted_xml(&format!("ref-{number}"), issue, &both())).await;
        accept(
            s,
            accepted_xml(
                &format!("ref-{number}-2"),
                message(number, Action::Service, 2, "001"),
                &both(),
            ),
        )
        .await;
    }
    let images: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(images, 1, "one row for one image");
    assert_eq!(
        image_row(&store, &sha).await,
        Some(("application/pdf".into(), 100_000, 100_000))
    );
    let reference = format!("\"image\":{{\"mime_type\":\"application/pdf\",\"sha256\":\"{sha}\",\"size\":100000}}");
    let rows = sqlx::query(
        "SELECT canonical_json, state_json, body FROM inbound_messages WHERE order_number = '24DV09101' \
         ORDER BY sequence",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let (canonical, state): (String, String) = (rows[0].get("canonical_json"), rows[0].get("state_json"));
    let later: String = rows[1].get("state_json");
    for json in [&canonical, &state, &later] {
        assert!(json.contains(&reference), "{json}");
        assert!(json.len() < 4096, "a reference, not the bytes: {} bytes", json.len());
    }
    let body: Vec<u8> = rows[0].get("body");
    assert!(
        body.windows(64).any(|w| w == &base64.as_bytes()[..64]),
        "the raw body keeps the court's bytes"
    );
    let order_json: String = sqlx::query_scalar("SELECT order_json FROM orders WHERE order_number = '24DV09101'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(order_json.contains(&reference), "{order_json}");

    let job = due_for(s, &PartnerId::Doj, "24DV09101").await.expect("a DOJ job");
    let held = job.state.image.expect("the state keeps the image");
    assert_eq!(
        (held.sha256.as_str(), held.size, held.data),
        (sha.as_str(), 100_000, None)
    );
    assert_eq!(
        s.image(&sha).await.unwrap(),
        Some(("application/pdf".into(), image.data.unwrap()))
    );
}

/// Proves ICD §5's same-sequence rule still compares the image: the same
/// order and image under a new message_id is a duplicate; the same order
/// with another image is a `SEQUENCE_CONFLICT`.
pub(super) async fn same_sequence_compares_the_image(store: SqlStore) {
    let s: &dyn Store = &store;
    let mut issue = message("24DV09201", Action::Issue, 1, "001");
    issue.image = Some(pdf(1000));
    accept(s, accepted_xml("cmp-1", issue.clone(), &both())).await;

    let status = accept(s, accepted_xml("cmp-2", issue.clone(), &both())).await;
    assert!(
        status.warnings.iter().any(|w| w.code == ErrorCode::Duplicate),
        "the same content is a duplicate: {status:?}"
    );

    let mut other = issue.clone();
    let mut data = incompressible(1000);
    data[0] ^= 1;
    let image = OrderImage::new("application/pdf", sha256_hex(&data), data);
    assert_ne!(image.sha256, issue.image.as_ref().unwrap().sha256);
    other.image = Some(image);
    let (statuses, _) = stored(intake_one(s, accepted_xml("cmp-3", other, &both())).await);
    assert_eq!(statuses[0].message.status, StatusKind::Rejected, "{statuses:?}");
    assert_eq!(statuses[0].message.errors[0].code, ErrorCode::SequenceConflict);
}

/// Proves due-deliveries never reads an image: with the image's bytes gone
/// from the store, the DOJ job is still due (its order refers to the image),
/// and the DOJ send then fails clearly: nothing reaches DOJ, the attempt
/// says which image is missing, and the delivery waits for a retry.
pub(super) async fn due_deliveries_do_not_read_images(store: SqlStore) {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

    let s: &dyn Store = &store;
    let mut issue = message("24DV09301", Action::Issue, 1, "001");
    let image = pdf(2000);
    let sha = image.sha256.clone();
    issue.image = Some(image);
    accept(s, accepted_xml("gone-1", issue, &both())).await;
    sqlx::query("DELETE FROM images").execute(store.pool()).await.unwrap();

    let job = due_for(s, &PartnerId::Doj, "24DV09301")
        .await
        .expect("still due without the bytes");
    assert_eq!(job.state.image.as_ref().map(|i| i.sha256.as_str()), Some(sha.as_str()));

    let doj = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&doj)
        .await;
    let config = crate::config::DojConfig {
        url: doj.uri(),
        token: crate::config::Secret::literal("t"),
        concurrency: 1,
        timeout_ms: 2000,
        batch: 1,
        retry: crate::config::RetryConfig::default(),
    };
    let retry = crate::delivery::retry::RetryPolicy::new("DOJ", &config.retry);
    let adapter = crate::delivery::doj::DojPartner::new(&config, retry)
        .unwrap()
        .with_images(std::sync::Arc::new(store.clone()));
    let result = crate::delivery::PartnerAdapter::attempt(&adapter, job).await;
    let error = result.attempt.error.clone().unwrap_or_default();
    assert!(error.contains(&sha) && error.contains("missing"), "{error}");
    assert!(result.attempt.request.is_empty(), "nothing was sent");
    assert!(
        matches!(result.outcome, DeliveryOutcome::Retry { .. }),
        "{:?}",
        result.outcome
    );
    let id = result.delivery_id;
    s.record_deliveries(vec![result]).await.unwrap();
    let attempts = s.partner_attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error.as_deref(), Some(error.as_str()));
}

/// Proves a partner attempt keeps its image by reference: the recorded
/// request, image SHA-256 and offset come back as stored.
pub(super) async fn attempts_keep_their_image_by_reference(store: SqlStore) {
    let s: &dyn Store = &store;
    let mut issue = message("24DV09401", Action::Issue, 1, "001");
    let image = pdf(3000);
    let sha = image.sha256.clone();
    issue.image = Some(image);
    accept(s, accepted_xml("att-1", issue, &both())).await;
    let job = due_for(s, &PartnerId::Doj, "24DV09401").await.expect("a DOJ job");
    let mut attempt = attempt();
    attempt.request = b"<x><por:OrderImage sha256=\"..\"></por:OrderImage></x>".to_vec();
    attempt.image = Some(AttemptImage {
        sha256: sha.clone(),
        offset: 33,
    });
    s.record_deliveries(vec![DeliveryResult {
        delivery_id: job.id,
        lease_token: job.lease_token,
        attempt: attempt.clone(),
        outcome: accepted_with_nic(None),
    }])
    .await
    .unwrap();
    let back = s.partner_attempts(job.id).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].request, attempt.request);
    assert_eq!(back[0].image, attempt.image);
}

/// Proves an operator's edit refers to the image like every stored order:
/// the edit of an order with an image, keeping its reference, is replayed
/// with the image (the job's state refers to it); an edit naming an image
/// the store does not keep is refused and changes nothing.
pub(super) async fn edits_refer_to_a_kept_image(store: SqlStore) {
    let s: &dyn Store = &store;
    let n = "24DV09501";
    let mut issue = message(n, Action::Issue, 1, "001");
    let image = pdf(4000);
    issue.image = Some(image.clone());
    accept(s, accepted_xml("edit-1", issue, &both())).await;
    let job = due_for(s, &PartnerId::Doj, n).await.expect("a DOJ job");
    let rejected = DeliveryOutcome::Rejected {
        reason: "HTTP 422".into(),
        warnings: Vec::new(),
    };
    let produced = s.record_deliveries(vec![result(job.id, rejected)]).await.unwrap();
    let dead_letter = produced.dead_letters[0].id;
    let by = OperatorAction {
        operator: "alice".into(),
        reason: "fix case number".into(),
    };

    let mut unknown = job.order.clone();
    let mut other = unknown.image.clone().expect("the order refers to its image");
    other.sha256 = "ab".repeat(32);
    unknown.image = Some(other);
    match s.edit_and_replay(dead_letter, &by, unknown).await {
        Err(ActionError::Refused(Refusal::InvalidEdit(errors))) => {
            assert_eq!(errors[0].field, "image.sha256", "{errors:?}")
        }
        other => panic!("expected an invalid edit, got {other:?}"),
    }

    let mut edited = job.order.clone();
    edited.order.case_number = Some("24FLEDIT".into());
    s.edit_and_replay(dead_letter, &by, edited)
        .await
        .expect("the edit is taken");
    let again = due_for(s, &PartnerId::Doj, n).await.expect("due again");
    assert_eq!(again.revision, 1);
    let held = again.state.image.expect("the edited state keeps the image");
    assert_eq!((held.sha256, held.size, held.data), (image.sha256, 4000, None));
}

/// The image reference in the stored state of each message of `order`, in
/// sequence order.
async fn state_images(store: &SqlStore, order: &str) -> Vec<Option<String>> {
    let states: Vec<String> =
        sqlx::query_scalar("SELECT state_json FROM inbound_messages WHERE order_number = $1 ORDER BY sequence")
            .bind(order.to_string())
            .fetch_all(store.pool())
            .await
            .unwrap();
    states
        .iter()
        .map(|json| {
            let state: serde_json::Value = serde_json::from_str(json).unwrap();
            state["image"]["sha256"].as_str().map(str::to_owned)
        })
        .collect()
}

/// Proves that a MODIFY without `por:OrderImage` keeps the order's signed
/// image (the partners go on receiving the latest one the court sent),
/// and that a MODIFY with an image replaces it.
pub(super) async fn a_modify_without_an_image_keeps_the_orders_image(store: SqlStore) {
    let s: &dyn Store = &store;
    let (first, second) = (pdf(2_000), pdf(3_000));
    let mut issue = message("24DV09301", Action::Issue, 1, "001");
    issue.image = Some(first.clone());
    let plain = message("24DV09301", Action::Modify, 2, "001");
    let mut replaced = message("24DV09301", Action::Modify, 3, "001");
    replaced.image = Some(second.clone());
    for (id, m) in [("keep-1", issue), ("keep-2", plain), ("keep-3", replaced)] {
        accept(s, accepted_xml(id, m, &both())).await;
    }
    assert_eq!(
        state_images(&store, "24DV09301").await,
        [Some(first.sha256.clone()), Some(first.sha256), Some(second.sha256)]
    );
}
