//! Crash test (e): PostgreSQL restarted mid-flow — stopped the way a crash
//! stops it (`pg_ctl stop -m immediate`) — on a private instance (the
//! shared server is never touched). The broker waits for its store and
//! goes on; nothing is lost or applied twice.

mod common;

use std::time::Duration;

use common::postgres::PrivatePostgres;
use common::*;

/// Every partner the message was routed to has accepted it.
fn all_delivered(view: &serde_json::Value) -> bool {
    view["deliveries"]
        .as_array()
        .is_some_and(|d| !d.is_empty() && d.iter().all(|x| x["state"] == "ACCEPTED"))
}

/// Proves crash test (e): 200 orders published before PostgreSQL is
/// crashed for 3 s and 40 while it comes back all reach CLETS, DOJ and
/// the LEA agencies; every court status arrives; no simulator applies a
/// message twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_flow_loses_nothing_and_applies_nothing_twice() {
    const BEFORE: usize = 200;
    const AFTER: usize = 40;
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PrivatePostgres::start).await.unwrap());
    let court = unique_ori();
    let setup = Setup {
        store_url: Some(pg.url.clone()),
        ..Setup::ALL_PARTNERS
    };
    let h = Harness::start_with_setup(&[&court], setup).await;
    let watch = h.watch(&court).await;
    let sample = for_court(&fixture("xml/issue-sample.xml"), &court);
    let body = |i: usize| replace(&sample, "24DV01234", &format!("P{i:08}"));
    let id = |i: usize| format!("pgrestart-{court}-{i}");
    let started = std::time::Instant::now();
    for i in 0..BEFORE {
        h.publish(&court, Some(&id(i)), "application/xml", &body(i)).await;
    }
    let restarting = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || pg.restart(Duration::from_secs(3)))
    };
    for i in BEFORE..BEFORE + AFTER {
        h.publish(&court, Some(&id(i)), "application/xml", &body(i)).await;
    }
    restarting.await.unwrap();
    for i in 0..BEFORE + AFTER {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (_, view) = h.api(&format!("/api/v1/courts/{court}/messages/{}", id(i))).await;
            if all_delivered(&view) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "message {} not delivered: {view:#}",
                id(i)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        watch
            .wait(&id(i), Duration::from_secs(60), has("PARTNER_ACCEPTED"))
            .await;
    }
    println!(
        "postgres restart test: {} messages in {:.1} s",
        BEFORE + AFTER,
        started.elapsed().as_secs_f64()
    );
    let clets = h.sim_state().await;
    assert_eq!(
        clets["records"].as_array().unwrap().len(),
        BEFORE + AFTER,
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
