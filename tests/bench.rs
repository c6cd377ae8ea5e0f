//! `porter bench` as a real process against the real services: a small
//! backlog run on each store reports every figure with a sane value and
//! leaves no court queue behind, and several brokers on a SQLite store are
//! refused as a usage error. No assertion depends on how fast this machine
//! is.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

fn bench(extra: &[&str]) -> Output {
    let schemas = repo().join("schemas");
    let mappings = repo().join("mappings");
    Command::new(env!("CARGO_BIN_EXE_porter"))
        .arg("bench")
        .arg("--schemas")
        .arg(&schemas)
        .arg("--mappings")
        .arg(&mappings)
        .args(extra)
        .env("PORTER_AMQP_URL", amqp_url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("porter bench runs")
}

fn pg_url() -> String {
    std::env::var("PORTER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A positive number at `pointer` in `json`.
fn positive(json: &Value, pointer: &str) -> f64 {
    let v = json
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing in {json}"));
    assert!(v > 0.0, "{pointer} = {v}");
    v
}

/// Runs a small backlog bench and checks its JSON document.
fn small_backlog(store: &[&str], store_name: &str) {
    let mut args = vec![
        "--mode",
        "backlog",
        "--orders",
        "5",
        "--courts",
        "3",
        "--timeout",
        "120",
        "--json",
    ];
    args.extend_from_slice(store);
    let out = bench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(json["mode"], "backlog");
    assert_eq!(json["store"], store_name);
    assert_eq!(json["brokers"], 1);
    assert_eq!(json["clean"], true, "{json}");
    assert_eq!(json["messages"], 45, "3 courts × 5 orders × 3 messages");
    assert!(positive(&json, "/statuses") >= 45.0, "at least an ACCEPTED per message");
    positive(&json, "/secs");
    positive(&json, "/msgs_per_sec");
    for p in ["p50_ms", "p95_ms", "p99_ms"] {
        positive(&json, &format!("/latency/{p}"));
    }
    positive(&json, "/broker_cpu_secs");
    positive(&json, "/cpu_secs_per_1000_messages");
    positive(&json, "/broker_peak_rss_bytes");
    assert_eq!(json["broker_processes"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["relay"]["messages"], 45);
    assert_eq!(
        json["relay"]["statuses"], json["statuses"],
        "the relay carries as many outputs"
    );
    positive(&json, "/relay/msgs_per_sec");
    positive(&json, "/porter_share_of_relay");
    assert_eq!(json["court"]["clean"], true);
    let courts: Vec<&str> = stderr
        .lines()
        .find_map(|l| l.strip_prefix("porter bench: courts "))
        .expect("the run names its courts")
        .split(' ')
        .collect();
    assert_eq!(courts.len(), 3, "{stderr}");
    for ori in courts {
        for queue in [format!("por.inbound.{ori}"), format!("por.responses.{ori}")] {
            assert!(!queue_exists(&queue), "{queue} was left behind by a clean run");
        }
    }
}

/// Whether `queue` exists on the test RabbitMQ (a passive declare).
fn queue_exists(queue: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connection = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("RabbitMQ");
        let channel = connection.create_channel().await.unwrap();
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let found = channel
            .queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
            .await
            .is_ok();
        let _ = connection.close(200, "checked".into()).await;
        found
    })
}

/// Proves a small backlog run on the default (SQLite) store completes
/// cleanly and reports messages, statuses, rates, latency percentiles,
/// broker CPU and peak RSS, and the relay's rate and Porter's share of it.
#[test]
fn backlog_run_on_sqlite_reports_every_figure() {
    small_backlog(&[], "sqlite");
}

/// Proves the same on PostgreSQL (a fresh schema of the test database).
#[test]
fn backlog_run_on_postgres_reports_every_figure() {
    let url = pg_url();
    small_backlog(&["--store", &url], "postgresql");
}

/// Proves `--brokers 2` with a SQLite store (the default, or given) exits 2
/// with a message naming PostgreSQL, before starting anything.
#[test]
fn several_brokers_on_sqlite_exit_2() {
    for extra in [
        &["--brokers", "2"][..],
        &["--brokers", "2", "--store", "sqlite:///tmp/porter-bench-x.db"],
    ] {
        let out = bench(extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
        assert!(stderr.contains("PostgreSQL"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// Proves that without `xmllint` (which the DOJ simulator validates notices
/// with) the bench stops at once with a message that names the DOJ
/// simulator and xmllint, instead of running against a simulator that never
/// started until `--timeout` and reporting an unclean run with no reason.
#[test]
fn a_doj_simulator_that_cannot_start_stops_the_bench() {
    let empty = tempfile::tempdir().unwrap();
    let schemas = repo().join("schemas");
    let mappings = repo().join("mappings");
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["bench", "--orders", "1", "--timeout", "600", "--schemas"])
        .arg(&schemas)
        .arg("--mappings")
        .arg(&mappings)
        .env("PATH", empty.path())
        .env("PORTER_AMQP_URL", amqp_url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("porter bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("DOJ simulator did not start"), "{stderr}");
    assert!(stderr.contains("xmllint"), "{stderr}");
    assert!(out.stdout.is_empty());
}
