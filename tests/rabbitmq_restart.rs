//! Crash test (b): RabbitMQ restarted mid-flow, on a private node (the
//! shared one is never touched): lapin's auto-recovery plus Porter's
//! supervisor bring the broker back, and nothing is lost or applied twice,
//! at CLETS, DOJ and the LEA agencies alike.

mod common;

use std::time::Duration;

use common::rabbit::PrivateRabbit;
use common::*;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use porter::model::StatusKind;

/// Every partner the message was routed to has accepted it.
fn all_delivered(view: &serde_json::Value) -> bool {
    view["deliveries"]
        .as_array()
        .is_some_and(|d| !d.is_empty() && d.iter().all(|x| x["state"] == "ACCEPTED"))
}

/// Publishes one message on a fresh connection, retrying until RabbitMQ
/// confirms it (the node may be coming back).
async fn publish_on(url: &str, court: &str, id: &str, body: &[u8]) {
    for _ in 0..100 {
        if let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await {
            let ch = conn.create_channel().await.unwrap();
            ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
            let props = BasicProperties::default()
                .with_message_id(id.into())
                .with_content_type("application/xml".into())
                .with_delivery_mode(2);
            let options = BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            let confirm = match ch
                .basic_publish("por.inbound".into(), court.into(), options, body, props)
                .await
            {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            };
            if let Ok(Confirmation::Ack(None)) = confirm {
                let _ = conn.close(200, "sent".into()).await;
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("could not publish {id}");
}

/// Proves that when RabbitMQ restarts in the middle of a flow of orders,
/// every order still becomes exactly one CARPOS record, every court gets
/// PARTNER_ACCEPTED for every message, no record is applied twice, and DOJ
/// and LEA receive each order in sequence (`out_of_order` stays 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_mid_flow_loses_nothing_and_applies_nothing_twice() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,porter=info".into()))
        .try_init();
    const BEFORE: usize = 200;
    const AFTER: usize = 40;
    let rabbit = tokio::task::spawn_blocking(PrivateRabbit::start).await.unwrap();
    let court = unique_ori();
    let h = Harness::start_with(&[&court], &rabbit.url, Setup::ALL_PARTNERS).await;
    let sample = for_court(&fixture("xml/issue-sample.xml"), &court);
    let body = |i: usize| replace(&sample, "24DV01234", &format!("R{i:08}"));
    let id = |i: usize| format!("restart-{court}-{i}");

    // A burst on one channel, then the restart while it is being worked on.
    for i in 0..BEFORE {
        h.publish(&court, Some(&id(i)), "application/xml", &body(i)).await;
    }
    let started = std::time::Instant::now();
    let r = std::sync::Arc::new(rabbit);
    let r2 = r.clone();
    tokio::task::spawn_blocking(move || r2.restart(Duration::from_secs(2)))
        .await
        .unwrap();
    for i in BEFORE..BEFORE + AFTER {
        publish_on(&r.url, &court, &id(i), &body(i)).await;
    }

    // Statuses are durable in the court's quorum queue and in the store:
    // read them on a fresh connection, after the restart.
    let conn = Connection::connect(&r.url, ConnectionProperties::default())
        .await
        .unwrap();
    let watch = StatusWatcher::start(&conn, &court).await;
    for i in 0..BEFORE + AFTER {
        let (_, view) = {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            loop {
                let (code, view) = h.api(&format!("/api/v1/courts/{court}/messages/{}", id(i))).await;
                let done = all_delivered(&view);
                if done || std::time::Instant::now() > deadline {
                    break (code, view);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        assert!(
            all_delivered(&view),
            "message {} did not reach all its partners: {view:#}",
            id(i)
        );
    }
    // The court receives the final status of every message on its queue.
    for i in 0..BEFORE + AFTER {
        watch
            .wait(&id(i), Duration::from_secs(60), |s| {
                s.iter().any(|x| x.status == StatusKind::PartnerAccepted)
            })
            .await;
    }
    let state = h.sim_state().await;
    let metrics = h.metrics().await;
    let reconnects = metrics
        .lines()
        .find(|l| l.starts_with("porter_amqp_reconnects_total"))
        .unwrap_or("porter_amqp_reconnects_total 0");
    println!("{reconnects}");
    println!(
        "restart test: {} messages, {:.1} s, CARPOS received {} (duplicates {}), records {}",
        BEFORE + AFTER,
        started.elapsed().as_secs_f64(),
        state["counters"]["received"],
        state["counters"]["duplicates"],
        state["records"].as_array().unwrap().len()
    );
    assert_eq!(
        state["records"].as_array().unwrap().len(),
        BEFORE + AFTER,
        "one record per order"
    );
    assert_eq!(state["counters"]["double_records"], 0);
    for partner in [h.doj.as_deref().unwrap(), h.lea.as_deref().unwrap()] {
        let state = Harness::http_sim_state(partner).await;
        assert_eq!(state["counters"]["double_records"], 0, "{partner}");
        assert_eq!(state["counters"]["out_of_order"], 0, "{partner}: out of sequence");
        assert!(
            state["counters"]["accepted"].as_u64().unwrap() > 0,
            "{partner} received the orders"
        );
    }
    let _ = conn.close(200, "done".into()).await;
    h.stop().await;
}
