//! The `porter` binary's long-running commands, run as real processes:
//! `porter sim clets` and `porter broker --config FILE` work on their own,
//! carry an order end to end, and stop cleanly on Ctrl-C (SIGINT); `porter sim
//! court` takes its options, prints its report as JSON, and exits 0 only
//! for a clean run.

mod common;

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn porter(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("porter starts")
}

/// Sends SIGINT (Ctrl-C) and waits for a clean exit.
fn interrupt(mut child: Child, what: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} exited with {status} after Ctrl-C");
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{what} did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn wait_http(url: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{url} did not answer within 60 s");
}

/// Proves `porter sim clets` and `porter broker --config FILE` run as their
/// own processes, carry an order from the court queue to a CARPOS record and
/// back as PARTNER_ACCEPTED, and both exit cleanly on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_clets_simulator_run_as_processes_and_stop_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (clets, control, http) = (free_port(), free_port(), free_port());
    let court = unique_ori();
    let config = format!(
        "[amqp]\nurl = {:?}\n[store]\nurl = \"sqlite://porter.db\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
         [paths]\nschemas = {:?}\nmappings = {:?}\n[partners.clets]\naddress = \"127.0.0.1:{clets}\"\n\
         [[courts]]\nori = \"{court}\"\nsheriff_ori = \"CA0340000\"\n",
        amqp_url(),
        repo().join("schemas").display().to_string(),
        repo().join("mappings").display().to_string(),
    );
    let config_path = dir.path().join("porter.toml");
    std::fs::write(&config_path, config).unwrap();

    let sim = porter(&[
        "sim",
        "clets",
        "--listen",
        &format!("127.0.0.1:{clets}"),
        "--control",
        &format!("127.0.0.1:{control}"),
    ]);
    let broker = porter(&["broker", "--config", config_path.to_str().unwrap()]);
    wait_http(&format!("http://127.0.0.1:{control}/_sim/state")).await;
    wait_http(&format!("http://127.0.0.1:{http}/readyz")).await;

    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    let watch = StatusWatcher::start(&conn, &court).await;
    let id = unique_id("process");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let props = lapin::BasicProperties::default()
        .with_message_id(id.as_str().into())
        .with_content_type("application/xml".into())
        .with_delivery_mode(2);
    let options = lapin::options::BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let body = for_court(&fixture("xml/issue-sample.xml"), &court);
    let confirm = ch
        .basic_publish("por.inbound".into(), court.as_str().into(), options, &body, props)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(confirm, lapin::Confirmation::Ack(None)));
    let statuses = watch.wait(&id, Duration::from_secs(30), has("PARTNER_ACCEPTED")).await;
    let nic = statuses
        .iter()
        .flat_map(|s| &s.partner_record_ids)
        .find(|r| r.scheme == "NIC")
        .unwrap()
        .id
        .clone();
    let state: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{control}/_sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["records"][0]["nic"], nic.as_str());

    interrupt(broker, "porter broker");
    interrupt(sim, "porter sim clets");
    for q in [format!("por.inbound.{court}"), format!("por.responses.{court}")] {
        let ch = conn.create_channel().await.unwrap();
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    let _ = conn.close(200, "done".into()).await;
}

/// A broker configuration naming `court`, for `porter sim court` (which reads
/// only the courts and the RabbitMQ URL).
fn court_sim_config(dir: &std::path::Path, court: &str) -> std::path::PathBuf {
    let config = format!(
        "[amqp]\nurl = {:?}\n[store]\nurl = \"sqlite://porter.db\"\n[paths]\nschemas = {:?}\nmappings = {:?}\n\
         [partners.clets]\naddress = \"127.0.0.1:7001\"\n[[courts]]\nori = \"{court}\"\nsheriff_ori = \"CA0340000\"\n",
        amqp_url(),
        repo().join("schemas").display().to_string(),
        repo().join("mappings").display().to_string(),
    );
    let path = dir.join("porter.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs `porter sim court` to its end: exit code, stdout, stderr.
async fn sim_court(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["sim", "court"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("porter runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Proves `porter sim court` lists its options, and refuses bad values with
/// clap's usage error 2: an unknown close mode or format, `--close` without
/// `--lifecycle`, a wait that is not a number.
#[tokio::test]
async fn court_simulator_options_and_usage_errors() {
    let (code, help, _) = sim_court(&["--help"]).await;
    assert_eq!(code, Some(0));
    for option in [
        "--close",
        "--seed",
        "--format",
        "--images",
        "--wait",
        "--json",
        "--orders",
        "--lifecycle",
        "--rate",
    ] {
        assert!(help.contains(option), "{option} missing from --help:\n{help}");
    }
    assert!(help.contains("terminate") && help.contains("cancel") && help.contains("mixed"));
    for bad in [
        &["--lifecycle", "--close", "sometimes"][..],
        &["--close", "mixed"],
        &["--format", "json"],
        &["--wait", "soon"],
        &["--seed", "-1"],
    ] {
        let (code, _, stderr) = sim_court(bad).await;
        assert_eq!(code, Some(2), "{bad:?}: {stderr}");
    }
}

/// Proves a run that is not clean exits 1 with its report as one JSON
/// document on stdout: a court without a queue gets its ISSUE back
/// (`NO_ROUTE`), and every new option is accepted along the way.
#[tokio::test]
async fn court_simulator_unclean_run_exits_1_with_json() {
    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    // As the broker declares it, so that the simulator's passive check passes.
    ch.exchange_declare(
        "por.inbound".into(),
        lapin::ExchangeKind::Topic,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = court_sim_config(dir.path(), &unique_ori());
    let (code, stdout, stderr) = sim_court(&[
        "--config",
        config.to_str().unwrap(),
        "--orders",
        "1",
        "--lifecycle",
        "--close",
        "cancel",
        "--seed",
        "9",
        "--format",
        "mixed",
        "--images",
        "--wait",
        "1",
        "--rate",
        "0",
        "--json",
    ])
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(report["clean"], false);
    assert_eq!(report["seed"], 9);
    assert_eq!(report["sent"], 0);
    assert_eq!(report["not_sent"], 3, "the rest of the order is not sent");
    let failed = report["publish_failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["reason"].as_str().unwrap().contains("NO_ROUTE"));
    assert!(report["timings"]["accepted"].is_null());
    let _ = conn.close(200, "done".into()).await;
}

/// Proves a clean run through a real broker and CLETS simulator exits 0 and
/// reports, as JSON, every message complete with its latencies: two closed
/// lifecycles, with mixed formats and images switched on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn court_simulator_clean_run_exits_0_with_latencies() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = court_sim_config(dir.path(), &court);
    let (code, stdout, stderr) = sim_court(&[
        "--config",
        config.to_str().unwrap(),
        "--orders",
        "2",
        "--lifecycle",
        "--close",
        "terminate",
        "--seed",
        "4",
        "--format",
        "mixed",
        "--images",
        "--wait",
        "120",
        "--rate",
        "0",
        "--json",
    ])
    .await;
    h.stop().await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(report["clean"], true);
    assert_eq!(
        (report["sent"].as_u64(), report["complete"].as_u64()),
        (Some(8), Some(8))
    );
    for latency in ["accepted", "partner_accepted"] {
        let stats = &report["timings"][latency];
        assert_eq!(stats["count"], 8, "{latency}: {report}");
        assert!(stats["p50_ms"].as_f64().unwrap() <= stats["max_ms"].as_f64().unwrap());
    }
    assert!(report["timings"]["published_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["timings"]["completed_per_sec"].as_f64().unwrap() > 0.0);
    // Status lines went to stderr, not into the JSON.
    assert!(stderr.contains("PARTNER_ACCEPTED CLETS"), "{stderr}");
}
