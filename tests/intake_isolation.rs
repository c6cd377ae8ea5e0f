//! Isolation in the intake (ICD §9: a stuck order never blocks another
//! court): a status RabbitMQ does not confirm holds back only the delivery
//! it belongs to, and an item the store cannot take becomes a dead letter
//! after a bounded number of tries while the other courts keep flowing.
//!
//! Both use the keyed failpoints of `porter::failpoint`, keyed to a court
//! or a message id only these tests use.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use porter::failpoint;
use porter::model::StatusKind;
use porter::model::StatusMessage;

fn issue(court: &str, order: &str) -> Vec<u8> {
    replace(&for_court(&fixture("xml/issue-sample.xml"), court), "24DV01234", order)
}

fn count(statuses: &[StatusMessage], kind: StatusKind) -> usize {
    statuses.iter().filter(|s| s.status == kind).count()
}

/// Declares the courts' inbound queues as the broker does, so messages can
/// wait in them before the broker starts.
async fn declare_inbound(channel: &lapin::Channel, courts: &[&str]) {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            "por.inbound".into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    for court in courts {
        let queue = format!("por.inbound.{court}");
        let options = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(
                queue.as_str().into(),
                options,
                porter::transport::topology::quorum_arguments(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                "por.inbound".into(),
                (*court).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
}

async fn publish(channel: &lapin::Channel, court: &str, message_id: &str, body: &[u8]) {
    let props = BasicProperties::default()
        .with_content_type("application/xml".into())
        .with_delivery_mode(2)
        .with_message_id(message_id.into());
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let confirm = channel
        .basic_publish("por.inbound".into(), court.into(), options, body, props)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(confirm, Confirmation::Ack(None)), "{confirm:?}");
}

/// Proves that when the statuses of one court's deliveries are refused
/// (nacked) in a batch shared with another court's, only those deliveries
/// are returned to their queue: every message of the other court is
/// acknowledged once and answered with exactly one `ACCEPTED` (a requeued
/// delivery would come back as a duplicate and be answered again), while
/// the refused court's messages keep coming back and are answered once
/// the refusal ends. The two courts' messages wait interleaved in their
/// queues before the broker starts, so the first batches hold both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_status_requeues_only_its_own_delivery() {
    const EACH: usize = 15;
    let refused = unique_ori();
    let flowing = unique_ori();
    failpoint::fail(failpoint::PUBLISH_REFUSED, &refused);
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_inbound(&channel, &[&refused, &flowing]).await;
    let mut refused_ids = Vec::new();
    let mut flowing_ids = Vec::new();
    for i in 0..EACH {
        let id = unique_id("refused");
        publish(&channel, &refused, &id, &issue(&refused, &format!("24DVR{i:04}"))).await;
        refused_ids.push(id);
        let id = unique_id("flowing");
        publish(&channel, &flowing, &id, &issue(&flowing, &format!("24DVF{i:04}"))).await;
        flowing_ids.push(id);
    }
    let h = Harness::start(&[&refused, &flowing]).await;
    let watch_flowing = h.watch(&flowing).await;
    let watch_refused = h.watch(&refused).await;

    for id in &flowing_ids {
        watch_flowing
            .wait(id, Duration::from_secs(60), has("PARTNER_ACCEPTED"))
            .await;
    }
    // Every refused delivery has come back at least twice: requeued, not lost.
    let started = Instant::now();
    while failpoint::hits(failpoint::PUBLISH_REFUSED, &refused) < 3 * EACH as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the refused court's deliveries were not tried again: {} refusals",
            failpoint::hits(failpoint::PUBLISH_REFUSED, &refused)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &flowing_ids {
        let s = watch_flowing.for_message(id);
        assert_eq!(
            count(&s, StatusKind::Accepted),
            1,
            "{id} was redelivered with the refused court's deliveries: {s:#?}"
        );
    }
    assert!(watch_refused.all().is_empty(), "refused statuses arrived");

    failpoint::clear(failpoint::PUBLISH_REFUSED, &refused);
    for id in &refused_ids {
        watch_refused.wait(id, Duration::from_secs(60), has("ACCEPTED")).await;
    }
    h.stop().await;
    let _ = conn.close(200, "done".into()).await;
}

/// The header `name` of a dead letter, as text.
fn header(d: &lapin::message::Delivery, name: &str) -> Option<String> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

/// One court's message the store refuses while another court's messages,
/// and the same court's next message, are published behind it.
async fn unstorable_item(store_url: Option<String>) {
    let bad_court = unique_ori();
    let good_court = unique_ori();
    let setup = Setup {
        store_url,
        ..Setup::default()
    };
    let h = Harness::start_with_setup(&[&bad_court, &good_court], setup).await;
    let watch_bad = h.watch(&bad_court).await;
    let watch_good = h.watch(&good_court).await;
    let bad = unique_id("unstorable");
    failpoint::fail(failpoint::STORE_ITEM, &bad);
    let bad_body = issue(&bad_court, "24DVU0001");
    h.publish(&bad_court, Some(&bad), "application/xml", &bad_body).await;
    let next = unique_id("after-unstorable");
    h.publish(
        &bad_court,
        Some(&next),
        "application/xml",
        &issue(&bad_court, "24DVU0002"),
    )
    .await;
    let mut good = Vec::new();
    for i in 0..10 {
        let id = unique_id("good");
        h.publish(
            &good_court,
            Some(&id),
            "application/xml",
            &issue(&good_court, &format!("24DVG{i:04}")),
        )
        .await;
        good.push(id);
    }

    for id in &good {
        watch_good
            .wait(id, Duration::from_secs(60), has("PARTNER_ACCEPTED"))
            .await;
    }
    watch_bad
        .wait(&next, Duration::from_secs(60), has("PARTNER_ACCEPTED"))
        .await;
    let s = watch_bad.wait(&bad, Duration::from_secs(30), has("REJECTED")).await;
    let rejected = s.iter().find(|x| x.status == StatusKind::Rejected).unwrap();
    assert_eq!(rejected.errors.len(), 1, "{rejected:#?}");
    assert_eq!(rejected.errors[0].code.as_str(), "INVALID_FORMAT");
    assert_eq!(rejected.errors[0].field, "message");

    let letters = h.take_dead_letters(&bad_court, 1, Duration::from_secs(20)).await;
    assert_eq!(letters.len(), 1, "one dead letter for the unstorable message");
    assert_eq!(header(&letters[0], "x-por-stage").as_deref(), Some("store"));
    assert_eq!(header(&letters[0], "x-por-message-id").as_deref(), Some(bad.as_str()));
    assert_eq!(letters[0].data, bad_body, "the dead letter keeps the original bytes");

    // Tried a bounded number of times, then never again.
    let tries = failpoint::hits(failpoint::STORE_ITEM, &bad);
    assert_eq!(tries, u64::from(porter::intake::STORE_TRIES));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(failpoint::hits(failpoint::STORE_ITEM, &bad), tries);
    let s = watch_bad.for_message(&bad);
    assert_eq!(s.len(), 1, "one REJECTED and nothing else: {s:#?}");
    failpoint::clear(failpoint::STORE_ITEM, &bad);
    h.stop().await;
}

/// Proves, on SQLite, that a message the store refuses for a reason of its
/// own (failpoint `store_item`) is tried exactly `STORE_TRIES` times, then
/// answered `REJECTED` (`INVALID_FORMAT` on field `message`) and published
/// to `por.dead` at stage `store` with its original bytes, and tried no
/// more; meanwhile another court's ten messages and the same court's next
/// message, published behind it, are accepted and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstorable_item_becomes_a_dead_letter_and_the_others_flow_on_sqlite() {
    unstorable_item(None).await;
}

/// The same on PostgreSQL, in a fresh schema of `PORTER_TEST_PG_URL`
/// (which must be reachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstorable_item_becomes_a_dead_letter_and_the_others_flow_on_postgres() {
    postgres::in_fresh_schema(|url| unstorable_item(Some(url))).await;
}
