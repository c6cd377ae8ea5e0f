//! The walking skeleton end to end, on the real RabbitMQ with the real
//! CLETS simulator: court queue → parse → validate → translate → CLETS →
//! CARPOS record → status back on `por.responses.<ORI>`.

mod common;

use std::time::Duration;

use common::*;
use porter::model::{ErrorCode, StatusKind};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn record_for<'a>(state: &'a Value, pno: &str) -> Vec<&'a Value> {
    state["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pno"] == pno)
        .collect()
}

fn field<'a>(record: &'a Value, tag: &str) -> Vec<&'a str> {
    record["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f[0] == tag)
        .map(|f| f[1].as_str().unwrap())
        .collect()
}

/// Proves the ICD §2 XML sample and the ICD §3 fixed-width sample each
/// become a CARPOS record with the expected EPO fields, and that a
/// PARTNER_ACCEPTED carrying that record's NIC reaches por.responses.CA034025J.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_and_fixed_width_orders_become_carpos_records_with_nic_status_to_the_court() {
    let court = "CA034025J";
    let h = Harness::start(&[court]).await;
    let watch = h.watch(court).await;
    let xml_id = unique_id("skeleton-xml");
    let fixed_id = unique_id("skeleton-fixed");
    h.publish(
        court,
        Some(&xml_id),
        "application/xml",
        &fixture("xml/issue-sample.xml"),
    )
    .await;
    // Same order, another order number (both 9 characters: columns hold).
    let fixed = replace(&fixture("fixed/issue-sample.txt"), "24DV01234", "24DV05678");
    h.publish(court, Some(&fixed_id), "text/plain", &fixed).await;

    for (id, pno) in [(&xml_id, "24DV01234"), (&fixed_id, "24DV05678")] {
        let statuses = watch.wait(id, WAIT, has("PARTNER_ACCEPTED")).await;
        let accepted = statuses
            .iter()
            .find(|s| s.status == StatusKind::Accepted)
            .expect("ACCEPTED first");
        assert_eq!(
            accepted
                .routed_partners
                .iter()
                .map(|p| p.wire_name())
                .collect::<Vec<_>>(),
            ["CLETS"]
        );
        assert_eq!(accepted.order_number.as_deref(), Some(pno));
        let done = statuses
            .iter()
            .find(|s| s.status == StatusKind::PartnerAccepted)
            .unwrap();
        assert_eq!(done.partner.as_ref().unwrap().wire_name(), "CLETS");
        assert!(done.status_sequence > accepted.status_sequence);
        let nic = done
            .partner_record_ids
            .iter()
            .find(|r| r.scheme == "NIC")
            .expect("NIC")
            .id
            .clone();
        assert!(done.partner_record_ids.iter().any(|r| r.scheme == "FCN"));

        let state = h.sim_state().await;
        let records = record_for(&state, pno);
        assert_eq!(records.len(), 1, "one CARPOS record for {pno}");
        let r = records[0];
        assert_eq!(r["nic"], nic.as_str(), "the status carries the record's NIC");
        assert_eq!(field(r, "NAM"), ["DOE, JOHN ALLEN"]);
        assert_eq!(field(r, "DOB"), ["19850214"]);
        assert_eq!(field(r, "PCO"), ["01", "05", "07"]);
        assert_eq!(field(r, "PPN"), ["DOE, JANE B"]);
        assert_eq!(field(r, "PSX"), ["F"]);
        assert_eq!(field(r, "TYP"), ["DV"]);
    }
    h.stop().await;
}

/// Proves a malformed message gets one REJECTED with field-level errors and
/// a dead letter, and a valid message published right behind it is still
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_is_rejected_and_dead_lettered_and_the_next_still_flows() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let bad_id = unique_id("malformed");
    let good_id = unique_id("valid-behind");
    let sample = for_court(&fixture("fixed/issue-sample.txt"), &court);
    let truncated = &sample[..150];
    h.publish(&court, Some(&bad_id), "text/plain", truncated).await;
    h.publish(&court, Some(&good_id), "text/plain", &sample).await;

    watch.wait(&bad_id, WAIT, has("REJECTED")).await;
    watch.wait(&good_id, WAIT, has("PARTNER_ACCEPTED")).await;
    // By now the valid message behind it went all the way to CARPOS and back.
    let bad = watch.for_message(&bad_id);
    assert_eq!(bad.len(), 1, "exactly one status for a rejected message: {bad:#?}");
    let e = &bad[0].errors[0];
    assert_eq!(e.code, ErrorCode::InvalidFormat);
    assert!(
        e.location.as_deref().is_some_and(|l| l.starts_with("1:")),
        "located at record:column: {e:?}"
    );

    let (code, dead) = h.api(&format!("/api/v1/dead-letters?court={court}")).await;
    assert_eq!(code, 200);
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["message_id"], bad_id.as_str());
    assert_eq!(dead[0]["stage"], "validate");
    assert_eq!(dead[0]["body_bytes"], 150);
    let published = h.take_dead_letters(&court, 1, WAIT).await;
    assert_eq!(published.len(), 1, "the dead letter is published on por.dead");
    assert_eq!(published[0].data, truncated, "with the original bytes");
    h.stop().await;
}

/// Proves a repeated message_id with the same body creates no second CARPOS
/// record and its statuses are sent again; the same message_id with another
/// body gets CONFLICT_REJECTED and leaves the original's record untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_message_id_is_deduplicated_and_a_different_body_is_conflict_rejected() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let id = unique_id("dedup");
    let body = for_court(&fixture("xml/issue-sample.xml"), &court);
    h.publish(&court, Some(&id), "application/xml", &body).await;
    let first = watch.wait(&id, WAIT, has("PARTNER_ACCEPTED")).await;
    let record_before = h.sim_state().await["records"].clone();
    assert_eq!(record_before.as_array().unwrap().len(), 1);

    h.publish(&court, Some(&id), "application/xml", &body).await;
    // Every status already sent is sent again: each status sequence twice.
    watch
        .wait(&id, WAIT, |s| {
            s.iter().filter(|x| x.status == StatusKind::PartnerAccepted).count() == 2
        })
        .await;

    let other = replace(&body, "HON MARIA LOPEZ", "HON MARIA LOPES");
    h.publish(&court, Some(&id), "application/xml", &other).await;
    let all = watch.wait(&id, WAIT, has("CONFLICT_REJECTED")).await;
    let conflict = all.iter().find(|s| s.status == StatusKind::ConflictRejected).unwrap();
    assert_eq!(conflict.errors[0].code, ErrorCode::DuplicateConflict);

    let (_, view) = h.api(&format!("/api/v1/courts/{court}/messages/{id}")).await;
    // The store decides once per arrival: one delivery means no second send was ever queued.
    assert_eq!(
        view["deliveries"].as_array().unwrap().len(),
        1,
        "one delivery for the message: {view:#}"
    );
    assert_eq!(view["deliveries"][0]["state"], "ACCEPTED");
    let state = h.sim_state().await;
    assert_eq!(
        state["records"], record_before,
        "no second record; the original is untouched"
    );
    assert_eq!(state["counters"]["double_records"], 0);
    assert_eq!(state["counters"]["received"], 1, "CARPOS saw exactly one request");
    let listed = view["statuses"].as_array().unwrap();
    let original: Vec<_> = listed.iter().filter(|s| s["status"] != "CONFLICT_REJECTED").collect();
    assert_eq!(original.len(), first.len(), "the original's statuses are unchanged");
    assert_eq!(
        listed.last().unwrap()["status"],
        "CONFLICT_REJECTED",
        "the API lists the conflict after them"
    );
    h.stop().await;
}

/// Proves every kind of bad input ends as a REJECTED status with a
/// field-level error and a dead letter, never a stuck queue: a message
/// published after all of them is still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_of_every_kind_is_rejected_and_never_blocks_the_queue() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let fixed = for_court(&fixture("fixed/issue-sample.txt"), &court);
    let xml = for_court(&fixture("xml/issue-sample.xml"), &court);
    let mut high_byte = fixed.clone();
    high_byte[40] = 0x80;
    let mut wrong_length = fixed.clone();
    wrong_length.remove(10);
    let mut bad_utf8 = xml.clone();
    let pos = bad_utf8.windows(4).position(|w| w == b"JOHN").unwrap();
    bad_utf8[pos] = 0xff;
    let dtd = for_court(&fixture("xml/dtd.xml"), &court);
    let broken = xml[..xml.len() / 2].to_vec();
    let oversized = vec![b' '; 16 * 1024 * 1024 + 1];
    let cases: Vec<(&str, &str, Vec<u8>, ErrorCode)> = vec![
        (
            "truncated",
            "text/plain",
            fixed[..120].to_vec(),
            ErrorCode::InvalidFormat,
        ),
        ("wrong-length", "text/plain", wrong_length, ErrorCode::InvalidFormat),
        ("high-byte", "text/plain", high_byte, ErrorCode::InvalidFormat),
        ("invalid-utf8", "application/xml", bad_utf8, ErrorCode::InvalidFormat),
        ("broken-xml", "application/xml", broken, ErrorCode::InvalidFormat),
        ("dtd", "application/xml", dtd, ErrorCode::InvalidFormat),
        ("oversized", "application/xml", oversized, ErrorCode::TooLong),
        (
            "wrong-content-type",
            "application/json",
            b"{}".to_vec(),
            ErrorCode::InvalidFormat,
        ),
    ];
    let mut ids = Vec::new();
    for (name, ct, body, code) in &cases {
        let id = unique_id(name);
        h.publish(&court, Some(&id), ct, body).await;
        ids.push((id, *code));
    }
    let good = unique_id("after-bad");
    h.publish(&court, Some(&good), "application/xml", &xml).await;
    for (id, code) in &ids {
        let s = watch.wait(id, WAIT, has("REJECTED")).await;
        assert_eq!(s.len(), 1, "{id}: one status");
        assert!(
            s[0].errors.iter().any(|e| e.code == *code),
            "{id}: expected {code}: {:#?}",
            s[0].errors
        );
        assert!(
            s[0].errors.iter().all(|e| !e.field.is_empty() && !e.text.is_empty()),
            "{id}: field-level errors"
        );
    }
    watch.wait(&good, WAIT, has("PARTNER_ACCEPTED")).await;
    let (_, dead) = h.api(&format!("/api/v1/dead-letters?court={court}")).await;
    assert_eq!(
        dead.as_array().unwrap().len(),
        cases.len(),
        "one dead letter per bad input"
    );
    h.stop().await;
}

/// Proves the broker declares the ICD §1 topology for each configured court,
/// idempotently (a second broker start declares it again without error),
/// with durable quorum queues and no other argument: redeclaring with
/// exactly `x-queue-type=quorum` succeeds, and any other arguments fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_is_declared_idempotently_with_quorum_queues_only() {
    use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};

    let court = unique_ori();
    let first = Harness::start(&[&court]).await;
    let second = Harness::start(&[&court]).await; // declares the same topology again
    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    for q in [
        format!("por.inbound.{court}"),
        format!("por.responses.{court}"),
        "por.dead".to_string(),
    ] {
        let ch = conn.create_channel().await.unwrap();
        let same = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(q.as_str().into(), same, quorum.clone())
            .await
            .expect("identical redeclare succeeds");
        let mut other = quorum.clone();
        other.insert("x-max-length".into(), AMQPValue::LongLongInt(10));
        let ch = conn.create_channel().await.unwrap();
        assert!(
            ch.queue_declare(q.as_str().into(), same, other).await.is_err(),
            "{q}: extra arguments are refused"
        );
    }
    let ch = conn.create_channel().await.unwrap();
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.exchange_declare(
        "por.inbound".into(),
        lapin::ExchangeKind::Topic,
        passive,
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        "por.responses".into(),
        lapin::ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    )
    .await
    .unwrap();
    let _ = conn.close(200, "done".into()).await;
    second.stop().await;
    first.stop().await;
}
