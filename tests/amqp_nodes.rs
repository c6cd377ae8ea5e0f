//! `[amqp] urls`: the broker and the court simulator move past a RabbitMQ
//! node that cannot be used to the next one in the list (ICD §12), on two
//! private nodes (independent, not a cluster: enough to show the
//! connection moving; the broker declares its topology on each node it
//! connects to).

mod common;

use std::time::{Duration, Instant};

use common::rabbit::PrivateRabbit;
use common::*;
use porter_simulators::court::{CourtFormat, CourtSimConfig, CourtSimReport, SimCourt};

/// A node where nothing listens: connecting to it is refused at once.
const DEAD_NODE: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

/// The broker's `porter_amqp_reconnects_total`.
async fn reconnects(h: &Harness) -> u64 {
    let metrics = h.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("porter_amqp_reconnects_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Runs the court simulator for `court` on `nodes` (tried in order) with
/// `orders` ISSUE orders, until every status is back.
async fn publish_orders(court: &str, nodes: Vec<String>, orders: u32) -> CourtSimReport {
    let load = CourtSimConfig {
        amqp_url: "amqp://guest:guest@127.0.0.1:2/%2f".into(),
        amqp_urls: nodes,
        courts: vec![SimCourt {
            ori: court.to_string(),
            name: "cluster court".into(),
            format: CourtFormat::Xml,
        }],
        orders_per_court: orders,
        rate_per_sec: 0.0,
        status_timeout_secs: 60,
        ..CourtSimConfig::default()
    };
    porter_simulators::court::run_with_printer(load, std::future::pending::<()>(), |_| {})
        .await
        .expect("the court simulator connects to a live node")
}

/// Proves that a broker whose `[amqp] urls` lists first a node where
/// nothing listens, then node A, then node B connects to A (the first live
/// one) and serves: a court simulator given the same list also moves past
/// the dead node, and its orders are all accepted by every partner. Then A
/// is stopped: the broker moves to B by itself (declaring the court's
/// queues there), and orders the court publishes through B (the simulator
/// moving past the dead node and the stopped A) are all accepted too.
/// Without the move, the broker keeps retrying A and B's court queue does
/// not even exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_moves_past_a_dead_node_and_to_the_next_when_its_node_stops() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,porter=info".into()))
        .try_init();
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(PrivateRabbit::start),
        tokio::task::spawn_blocking(PrivateRabbit::start)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let nodes = vec![DEAD_NODE.to_string(), a.url.clone(), b.url.clone()];
    let court = unique_ori();
    let setup = Setup {
        amqp_urls: Some(nodes.clone()),
        ..Setup::ALL_PARTNERS
    };
    let h = Harness::start_with(&[&court], &a.url, setup).await;

    let first = publish_orders(&court, nodes.clone(), 3).await;
    assert_eq!(first.sent, 3, "{}", first.summary());
    assert!(first.is_clean(), "on node A: {}", first.summary());
    let before = reconnects(&h).await;

    let stopped = Instant::now();
    tokio::task::spawn_blocking(move || drop(a)).await.unwrap();
    // The broker notices, moves to B and is ready there again.
    loop {
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "the broker did not move to node B within 60 s"
        );
        let ready = reqwest::get(format!("{}/readyz", h.http))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready && reconnects(&h).await > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("moved to node B in {:.1} s", stopped.elapsed().as_secs_f64());

    let second = publish_orders(&court, nodes, 3).await;
    assert_eq!(second.sent, 3, "{}", second.summary());
    assert!(second.is_clean(), "on node B: {}", second.summary());
    h.stop().await;
    drop(b);
}
