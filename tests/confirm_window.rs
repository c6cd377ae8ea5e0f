//! Publisher confirms are windowed, not awaited one at a time.

mod common;

use std::time::Duration;

use common::*;

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Proves that during a burst of more than 1,000 statuses the gauge of
/// unconfirmed publishes, read while the burst runs, shows more than one
/// publish in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_one_publish_is_unconfirmed_during_a_burst_of_statuses() {
    const ORDERS: usize = 600; // ACCEPTED + PARTNER_ACCEPTED each: 1,200 statuses
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let sample = for_court(&fixture("xml/issue-sample.xml"), &court);
    for i in 0..ORDERS {
        let body = replace(&sample, "24DV01234", &format!("B{i:08}"));
        h.publish(&court, Some(&format!("burst-{court}-{i}")), "application/xml", &body)
            .await;
    }
    let mut max_seen: f64 = 0.0;
    let started = std::time::Instant::now();
    while watch.all().len() < 2 * ORDERS {
        let m = h.metrics().await;
        max_seen = max_seen.max(gauge(&m, "porter_amqp_publish_unconfirmed"));
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "burst did not finish: {} statuses",
            watch.all().len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let high_water = gauge(&h.metrics().await, "porter_amqp_publish_unconfirmed_max");
    println!(
        "statuses: {}, unconfirmed seen while reading: {max_seen}, high-water: {high_water}",
        watch.all().len()
    );
    assert!(
        max_seen > 1.0,
        "read during the burst, the gauge never showed more than one publish in flight"
    );
    assert!(high_water >= max_seen);
    h.stop().await;
}
