//! Crash test (c): partner trouble. CLETS is down for 60 s, DOJ answers 503
//! to 30 % of requests, and the LEA agency every order goes to (the court's
//! sheriff) takes 2 s per request. Everything still arrives once, and while
//! CLETS is down the other partners' deliveries go on.

mod common;

use std::time::{Duration, Instant};

use common::*;
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};
use serde_json::Value;

async fn post(url: String, body: &'static str) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
}

fn counter(state: &Value, name: &str) -> u64 {
    state["counters"][name].as_u64().unwrap_or(0)
}

/// Connections the CLETS simulator refused because it was down: every
/// reconnection attempt Porter made meanwhile (the simulator accepts the
/// socket and closes it at once; `connections` does not count these).
fn refused(clets: &Value) -> u64 {
    clets["refused_connections"].as_u64().unwrap_or(0)
}

/// Most connection attempts CLETS may see in its 60 s down. The circuit
/// opens after 5 consecutive failures (plus the few attempts already under
/// way), then lets one probe through after 1, 2, 4, 8, 16 and 32 s: about a
/// dozen in all. Without the circuit every pending ISSUE (20 at CI load)
/// would retry on its own backoff (200 ms doubling to 2 s): about 30
/// attempts each in 60 s, some 600 in all. So the bound tells a working
/// circuit from a missing one with a wide margin either way.
const MAX_ATTEMPTS_WHILE_DOWN: u64 = 40;

/// Proves crash test (c): with CLETS down for 60 s (its circuit opens, and
/// its simulator sees at most [`MAX_ATTEMPTS_WHILE_DOWN`] connection
/// attempts in that time), DOJ busy
/// for 30 % of requests and the sheriff's RMS slow, DOJ and LEA deliveries
/// keep going while CLETS is down; once CLETS is back every message reaches
/// every partner and is accepted (the court simulator's report is clean),
/// every court status arrives, and nothing is applied twice. The orders are
/// published interleaved (`order_window`), not one lifecycle at a time.
/// CI load: 20 orders (ISSUE, MODIFY, SERVICE), `PORTER_TROUBLE_ORDERS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_down_busy_and_slow_lose_nothing_and_do_not_hold_each_other_up() {
    let orders: u32 = std::env::var("PORTER_TROUBLE_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let court = unique_ori();
    let h = Harness::start_with_setup(&[&court], Setup::ALL_PARTNERS).await;
    let (doj, lea) = (h.doj.clone().unwrap(), h.lea.clone().unwrap());
    post(format!("{}/_sim/faults", h.clets_control), r#"{"down": true}"#).await;
    post(format!("{doj}/_sim/faults"), r#"{"busy_rate": 0.3}"#).await;
    post(
        format!("{lea}/_sim/faults"),
        r#"{"latency_ms": 2000, "agency": "CA0340000"}"#,
    )
    .await;
    let started = Instant::now();
    let refused_before = refused(&h.sim_state().await);

    let load = CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![SimCourt {
            ori: court.clone(),
            name: "trouble court".into(),
            format: CourtFormat::Xml,
        }],
        orders_per_court: orders,
        rate_per_sec: 0.0,
        lifecycle: true,
        status_timeout_secs: 300,
        ..CourtSimConfig::default()
    };
    let simulation = tokio::spawn(porter_simulators::court::run_with_printer(
        load,
        std::future::pending::<()>(),
        |_| {},
    ));

    tokio::time::sleep(Duration::from_secs(5)).await;
    let doj_early = counter(&Harness::http_sim_state(&doj).await, "accepted");
    let lea_early = counter(&Harness::http_sim_state(&lea).await, "accepted");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("porter_partner_circuit_open{partner=\"CLETS\"} 1"),
        "CLETS's circuit is open while it is down"
    );
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(started.elapsed())).await;
    let doj_late = counter(&Harness::http_sim_state(&doj).await, "accepted");
    let lea_late = counter(&Harness::http_sim_state(&lea).await, "accepted");
    let clets = h.sim_state().await;
    assert_eq!(counter(&clets, "accepted"), 0, "CLETS was down");
    let attempts = refused(&clets) - refused_before;
    println!("partner trouble: {attempts} connection attempts while CLETS was down");
    assert!(
        attempts > 0,
        "Porter tried CLETS while it was down (so the count can rise)"
    );
    assert!(
        attempts <= MAX_ATTEMPTS_WHILE_DOWN,
        "the open circuit keeps reconnection attempts few: {attempts} in 60 s"
    );
    assert!(
        doj_early > 0,
        "DOJ received orders while CLETS was down (by 5 s: {doj_early}, by 60 s: {doj_late})"
    );
    assert!(
        lea_early > 0 && lea_late > lea_early,
        "the slow agency kept its own pace while CLETS was down: {lea_early} by 5 s, {lea_late} by 60 s"
    );
    post(format!("{}/_sim/faults", h.clets_control), "{}").await;

    let report = simulation.await.unwrap().expect("court simulator");
    println!("{}", report.summary());
    println!(
        "partner trouble: {} messages in {:.1} s",
        report.sent,
        started.elapsed().as_secs_f64()
    );
    // Every fault here is transient (down, busy, slow), so every message
    // must end accepted by every partner: not rejected, not dead-lettered.
    assert!(report.is_clean(), "{}", report.summary());
    for state in [
        h.sim_state().await,
        Harness::http_sim_state(&doj).await,
        Harness::http_sim_state(&lea).await,
    ] {
        assert_eq!(state["counters"]["double_records"], 0);
        assert_eq!(state["counters"]["out_of_order"], 0, "an order out of sequence");
    }
    h.stop().await;
}
