//! `[amqp] urls`: the broker and the court simulator move past a RabbitMQ
//! node that does not answer to the next one in the list (ICD §12).

mod common;

use common::*;
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};

/// A node where nothing listens: connecting to it is refused at once.
const DEAD_NODE: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

/// Proves that a broker whose `[amqp] urls` lists first a node where
/// nothing listens and then the real RabbitMQ connects to the second node
/// and serves: a court simulator given the same two nodes (`amqp_urls`)
/// also moves past the dead one, publishes its orders, and every order is
/// accepted by every partner (the simulator's report is clean).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_court_simulator_move_past_a_dead_node() {
    let court = unique_ori();
    let nodes = vec![DEAD_NODE.to_string(), amqp_url()];
    let setup = Setup {
        amqp_urls: Some(nodes.clone()),
        ..Setup::ALL_PARTNERS
    };
    let _h = Harness::start_with(&[&court], &amqp_url(), setup).await;
    let load = CourtSimConfig {
        amqp_url: "amqp://guest:guest@127.0.0.1:2/%2f".into(),
        amqp_urls: nodes,
        courts: vec![SimCourt {
            ori: court.clone(),
            name: "cluster court".into(),
            format: CourtFormat::Xml,
        }],
        orders_per_court: 3,
        rate_per_sec: 0.0,
        status_timeout_secs: 60,
        ..CourtSimConfig::default()
    };
    let report = porter_simulators::court::run_with_printer(load, std::future::pending::<()>(), |_| {})
        .await
        .expect("the court simulator connects to the second node");
    assert_eq!(report.sent, 3, "{}", report.summary());
    assert!(report.is_clean(), "{}", report.summary());
}
