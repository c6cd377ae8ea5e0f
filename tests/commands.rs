//! The `porter` binary's long-running commands, run as real processes:
//! `porter sim clets` and `porter broker --config FILE` work on their own,
//! carry an order end to end, and stop cleanly on Ctrl-C (SIGINT).

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
