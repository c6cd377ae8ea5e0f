//! One broker per SQLite store (ICD §12), with the real `porter` binary.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{amqp_url, repo, unique_ori};
use porter::store::{SqlStore, Store};

/// Writes a broker configuration on the SQLite file `db` with its HTTP
/// surface on `port`; returns its path.
fn write_config(dir: &Path, db: &Path, port: u16) -> std::path::PathBuf {
    let store_url = format!("sqlite://{}", db.display());
    let toml = format!(
        "[amqp]\nurl = {:?}\nreconnect_ms = 200\n[store]\nurl = {:?}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [paths]\nschemas = {:?}\nmappings = {:?}\n[partners.clets]\naddress = \"127.0.0.1:9\"\n\
         [[courts]]\nori = \"{}\"\nsheriff_ori = \"CA0340000\"\nlayouts = [\"cms-a/1\"]\n",
        amqp_url(),
        store_url,
        repo().join("schemas").display().to_string(),
        repo().join("mappings").display().to_string(),
        unique_ori(),
    );
    let path = dir.join("porter.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_broker(config: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_porter"))
        .arg("broker")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("start porter broker")
}

/// Waits until the broker on `port` answers `/readyz`, failing if it exits.
async fn wait_ready(child: &mut Child, port: u16, log: &Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "broker exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("broker not ready within 30 s");
}

/// Starts a second broker with the same configuration and checks that it
/// exits non-zero within 5 s, saying another broker holds the SQLite file.
fn assert_refused(config: &Path, db: &Path, log: &Path) {
    let mut second = start_broker(config, log);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(5) {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second broker on the same SQLite file still runs after 5 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(log).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&db.display().to_string()) && stderr.contains("another Porter broker holds"),
        "the refusal names the SQLite file and the other broker: {stderr}"
    );
}

/// Proves the broker lock of a SQLite store: while one broker runs, a
/// second `porter broker` on the same file (with the same configuration, so
/// even the same HTTP port, and with a port of its own) exits non-zero
/// within 5 s with a message that names the SQLite file and says another
/// broker holds it, and the first keeps serving; the store can still be opened and read by another process
/// (here the test) meanwhile; after the first broker is SIGKILLed a new one
/// starts at once and serves, and it holds the lock in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_serves_one_broker() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("porter.db");
    let port = free_port();
    let config = write_config(dir.path(), &db, port);
    let log = |n: usize| dir.path().join(format!("run-{n}.log"));

    let mut first = start_broker(&config, &log(1));
    wait_ready(&mut first, port, &log(1)).await;
    assert_refused(&config, &db, &log(2));
    // On its own HTTP port too: it is the store that is refused.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    assert_refused(&write_config(&elsewhere, &db, free_port()), &db, &log(5));
    assert!(first.try_wait().unwrap().is_none(), "the first broker keeps running");
    wait_ready(&mut first, port, &log(1)).await;

    let store = SqlStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("the store opens while a broker runs");
    store.pending_statuses(1).await.expect("and can be read");

    first.kill().expect("SIGKILL the broker");
    let _ = first.wait();
    let mut next = start_broker(&config, &log(3));
    wait_ready(&mut next, port, &log(3)).await;
    assert_refused(&config, &db, &log(4));
    let _ = next.kill();
    let _ = next.wait();
}
