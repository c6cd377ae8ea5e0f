//! `[amqp] heartbeat_secs`: the broker's RabbitMQ connection runs with a
//! heartbeat of at most 10 s (ICD §12), on a private node with the
//! management plugin, which shows each connection's negotiated heartbeat.

mod common;

use std::time::{Duration, Instant};

use common::rabbit::PrivateRabbit;
use common::*;

/// The broker's connection name (`supervisor.rs`).
const BROKER_CONNECTION: &str = "porter-broker";

/// The negotiated heartbeat (`timeout`, in seconds) of every connection
/// named `name`, from the management API (its statistics lag a few
/// seconds behind, so it is asked until the connection shows).
async fn heartbeats_of(management: &str, name: &str) -> Vec<u64> {
    let started = Instant::now();
    loop {
        let connections: serde_json::Value = reqwest::Client::new()
            .get(format!("{management}/api/connections"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found: Vec<u64> = connections
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["client_properties"]["connection_name"] == name)
            .filter_map(|c| c["timeout"].as_u64())
            .collect();
        if !found.is_empty() || started.elapsed() > Duration::from_secs(30) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Proves that the broker asks RabbitMQ for a heartbeat of 10 s by default
/// (RabbitMQ's own default, which a client that asks nothing gets, is
/// 60 s), so that RabbitMQ closes a frozen broker's connection after two
/// missed heartbeats (about 20 s) and its unacknowledged deliveries go back
/// to their queues within 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_connection_heartbeat_is_ten_seconds() {
    let rabbit = tokio::task::spawn_blocking(PrivateRabbit::start_with_management)
        .await
        .unwrap();
    let management = rabbit.management_url.clone().unwrap();
    let court = unique_ori();
    let h = Harness::start_with(&[&court], &rabbit.url, Setup::default()).await;
    let heartbeats = heartbeats_of(&management, BROKER_CONNECTION).await;
    assert_eq!(heartbeats, vec![10], "the broker's connection and its heartbeat");
    h.stop().await;
}
