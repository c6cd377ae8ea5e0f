//! Crash test (e): PostgreSQL restarted mid-flow — stopped the way a crash
//! stops it (`pg_ctl stop -m immediate`) — on a private instance (the
//! shared server is never touched). The broker waits for its store and
//! goes on; nothing is lost or applied twice.

mod common;

use std::time::Duration;

use common::postgres::PrivatePostgres;
use common::*;
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};

/// Orders in the load: ISSUE, MODIFY and SERVICE each, 240 messages.
const ORDERS: u32 = 80;
/// Messages per second: publishing takes about 8 s, so it spans the crash.
const RATE: f64 = 30.0;
/// When PostgreSQL is crashed, after publishing started, and for how long.
const CRASH_AFTER: Duration = Duration::from_secs(3);
const DOWN_FOR: Duration = Duration::from_secs(3);

/// Proves crash test (e): a court's order lifecycles, published interleaved
/// (`order_window`) before, while and after PostgreSQL is crashed for 3 s,
/// all reach CLETS, DOJ and the LEA agency and are accepted (the court
/// simulator's report is clean: every status arrived, nothing rejected,
/// dead-lettered or failed); CLETS holds one record per order; no
/// simulator applies a message twice or out of sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_flow_loses_nothing_and_applies_nothing_twice() {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PrivatePostgres::start).await.unwrap());
    let court = unique_ori();
    let setup = Setup {
        store_url: Some(pg.url.clone()),
        ..Setup::ALL_PARTNERS
    };
    let h = Harness::start_with_setup(&[&court], setup).await;
    let load = CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![SimCourt {
            ori: court.clone(),
            name: "restart court".into(),
            format: CourtFormat::Xml,
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
    tokio::time::sleep(CRASH_AFTER).await;
    let restarting = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || pg.restart(DOWN_FOR))
    };
    restarting.await.unwrap();
    let report = simulation.await.unwrap().expect("court simulator");
    println!("{}", report.summary());
    println!(
        "postgres restart test: {} messages in {:.1} s",
        report.sent,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.sent, 3 * ORDERS as usize, "{}", report.summary());
    assert!(report.is_clean(), "{}", report.summary());
    let clets = h.sim_state().await;
    assert_eq!(
        clets["records"].as_array().unwrap().len(),
        ORDERS as usize,
        "one CARPOS record per order"
    );
    for state in [
        clets,
        Harness::http_sim_state(h.doj.as_deref().unwrap()).await,
        Harness::http_sim_state(h.lea.as_deref().unwrap()).await,
    ] {
        assert_eq!(state["counters"]["double_records"], 0);
        assert_eq!(state["counters"]["out_of_order"], 0, "an order out of sequence");
    }
    h.stop().await;
}
