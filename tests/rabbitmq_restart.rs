//! Crash test (b): RabbitMQ restarted mid-flow, on a private node (the
//! shared one is never touched): lapin's auto-recovery plus Porter's
//! supervisor bring the broker back, and nothing is lost or applied twice,
//! at CLETS, DOJ and the LEA agencies alike.

mod common;

use std::time::Duration;

use common::rabbit::PrivateRabbit;
use common::*;
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};

/// Orders in the load: ISSUE, MODIFY and SERVICE each, 240 messages.
const ORDERS: u32 = 80;
/// Messages per second: publishing takes about 8 s, so it spans the restart.
const RATE: f64 = 30.0;
/// When RabbitMQ is restarted, after publishing started, and how long it
/// stays down.
const RESTART_AFTER: Duration = Duration::from_secs(3);
const DOWN_FOR: Duration = Duration::from_secs(2);

/// Proves that when RabbitMQ restarts in the middle of a flow of order
/// lifecycles (published interleaved, `order_window`, by the court
/// simulator, whose connection recovers and resends what was not
/// confirmed), every message reaches CLETS, DOJ and the LEA agency and is
/// accepted, and every status reaches the court (the court simulator's
/// report is clean: nothing incomplete, rejected, dead-lettered or failed to
/// publish); every order becomes exactly one CARPOS record; no partner
/// applies a message twice or out of sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_mid_flow_loses_nothing_and_applies_nothing_twice() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,porter=info".into()))
        .try_init();
    let rabbit = std::sync::Arc::new(tokio::task::spawn_blocking(PrivateRabbit::start).await.unwrap());
    let court = unique_ori();
    let h = Harness::start_with(&[&court], &rabbit.url, Setup::ALL_PARTNERS).await;
    let load = CourtSimConfig {
        amqp_url: rabbit.url.clone(),
        courts: vec![SimCourt {
            ori: court.clone(),
            name: "restart court".into(),
            format: CourtFormat::Fixed,
        }],
        orders_per_court: ORDERS,
        rate_per_sec: RATE,
        lifecycle: true,
        status_timeout_secs: 300,
        ..CourtSimConfig::default()
    };
    let started = std::time::Instant::now();
    let simulation = tokio::spawn(porter_simulators::court::run_with_printer(
        load,
        std::future::pending::<()>(),
        |_| {},
    ));
    tokio::time::sleep(RESTART_AFTER).await;
    let r = rabbit.clone();
    tokio::task::spawn_blocking(move || r.restart(DOWN_FOR)).await.unwrap();
    let report = simulation.await.unwrap().expect("court simulator");
    println!("{}", report.summary());

    let state = h.sim_state().await;
    let metrics = h.metrics().await;
    let reconnects = metrics
        .lines()
        .find(|l| l.starts_with("porter_amqp_reconnects_total"))
        .unwrap_or("porter_amqp_reconnects_total 0");
    println!("{reconnects}");
    println!(
        "restart test: {} messages, {:.1} s, CARPOS received {} (duplicates {}), records {}",
        report.sent,
        started.elapsed().as_secs_f64(),
        state["counters"]["received"],
        state["counters"]["duplicates"],
        state["records"].as_array().unwrap().len()
    );
    assert_eq!(report.sent, 3 * ORDERS as usize, "{}", report.summary());
    assert!(report.is_clean(), "{}", report.summary());
    assert_eq!(
        state["records"].as_array().unwrap().len(),
        ORDERS as usize,
        "one record per order"
    );
    assert_eq!(state["counters"]["double_records"], 0);
    for partner in [h.doj.as_deref().unwrap(), h.lea.as_deref().unwrap()] {
        let state = Harness::http_sim_state(partner).await;
        assert_eq!(state["counters"]["double_records"], 0, "{partner}");
        assert_eq!(state["counters"]["out_of_order"], 0, "{partner}: out of sequence");
    }
    h.stop().await;
}
