//! The court-side file-drop adapter (`porter court file-drop`, ICD §3 batch
//! files) end to end, on the real RabbitMQ with the real broker and CLETS
//! simulator: a batch file dropped in a directory becomes one published
//! order message per order, the file ends in `done/` or, with a report, in
//! `error/`, and killing the adapter half-way through a file has no
//! duplicate effect.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use porter::court::file_drop::{FileDropArgs, run};
use porter::model::StatusKind;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn pad(line: &str) -> Vec<u8> {
    let mut v = format!("{line:<200}").into_bytes();
    v.push(b'\n');
    v
}

/// A batch for `court`: header, one ICD §3 sample order per order number
/// (each 9 characters, so the columns hold), trailer with the right counts.
fn batch(court: &str, number: &str, order_numbers: &[&str]) -> Vec<u8> {
    let sample = for_court(&fixture("fixed/issue-sample.txt"), court);
    let mut b = pad(&format!("H{court}20261125101500{number}cms-a/1"));
    let mut records = 2;
    for pno in order_numbers {
        assert_eq!(pno.len(), 9);
        let order = replace(&sample, "24DV01234", pno);
        records += order.iter().filter(|&&c| c == b'\n').count();
        b.extend(order);
    }
    b.extend(pad(&format!("T{:06}{records:08}", order_numbers.len())));
    b
}

/// Order numbers `<prefix>0001` … for `n` orders.
fn order_numbers(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:04}")).collect()
}

fn ids(court: &str, number: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{court}-B{number}-{i}")).collect()
}

/// The file drop's own configuration: the harness's court, the repository's
/// layouts and mappings, the test RabbitMQ.
fn drop_config(dir: &Path, court: &str) -> PathBuf {
    let repo = repo();
    let text = format!(
        "[amqp]\nurl = {:?}\n[paths]\nschemas = {:?}\nmappings = {:?}\n\
         [[courts]]\nori = \"{court}\"\nsheriff_ori = \"CA0340000\"\nlayouts = [\"cms-a/1\"]\n",
        amqp_url(),
        repo.join("schemas").display().to_string(),
        repo.join("mappings").display().to_string(),
    );
    let path = dir.join("file-drop.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn args(court: &str, dir: &Path, config: &Path) -> FileDropArgs {
    FileDropArgs {
        court: court.to_string(),
        dir: dir.to_path_buf(),
        config: config.to_path_buf(),
        amqp_url: Some(amqp_url()),
        once: false,
        poll_ms: 100,
        confirm_window: None,
        publish_pause_ms: 0,
    }
}

/// Drops a file as a CMS does: written under a `.part` name, then renamed.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let part = dir.join(format!("{name}.part"));
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, dir.join(name)).unwrap();
}

/// Runs the adapter in-process until the returned token is cancelled.
fn start_in_process(args: FileDropArgs) -> (JoinHandle<anyhow::Result<()>>, CancellationToken) {
    let stop = CancellationToken::new();
    let s = stop.clone();
    (tokio::spawn(run(args, async move { s.cancelled().await })), stop)
}

async fn wait_for_file(path: &Path, limit: Duration) {
    let started = Instant::now();
    while !path.is_file() {
        assert!(
            started.elapsed() < limit,
            "{} did not appear within {limit:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn records_for<'a>(state: &'a Value, court: &str, pno: &str) -> Vec<&'a Value> {
    state["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ori"] == court && r["pno"] == pno)
        .collect()
}

/// Waits for PARTNER_ACCEPTED on every id, checks each was ACCEPTED for its
/// own order and never CONFLICT_REJECTED (a re-publish is byte-identical).
async fn expect_all_delivered(watch: &StatusWatcher, ids: &[String], pnos: &[String]) {
    for (id, pno) in ids.iter().zip(pnos) {
        let statuses = watch.wait(id, WAIT, has("PARTNER_ACCEPTED")).await;
        let accepted = statuses
            .iter()
            .find(|s| s.status == StatusKind::Accepted)
            .expect("ACCEPTED");
        assert_eq!(accepted.order_number.as_deref(), Some(pno.as_str()), "{id}");
        assert!(
            statuses
                .iter()
                .all(|s| !matches!(s.status, StatusKind::ConflictRejected | StatusKind::Rejected)),
            "{id}: {statuses:#?}"
        );
    }
}

fn child(court: &str, dir: &Path, config: &Path, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_porter"));
    cmd.args(["court", "file-drop", "--court", court, "--dir"])
        .arg(dir)
        .arg("--config")
        .arg(config)
        .args(["--amqp-url", &amqp_url(), "--poll-ms", "100"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    cmd
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Proves a good batch of three orders dropped in the directory is
/// published one message per order with the ICD message ids
/// `<ORI>-B<batch>-<n>`, each reaches PARTNER_ACCEPTED with its own CARPOS
/// record, and the file lands in `done/` (nothing left in the directory or
/// `work/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_batch_is_published_per_order_and_lands_in_done() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = drop_config(conf.path(), &court);
    let (task, stop) = start_in_process(args(&court, dir.path(), &config));

    let number = "0000000007";
    let pnos = order_numbers("FDA00", 3);
    let refs: Vec<&str> = pnos.iter().map(String::as_str).collect();
    drop_file(dir.path(), "batch-7.txt", &batch(&court, number, &refs));

    let ids = ids(&court, number, 3);
    expect_all_delivered(&watch, &ids, &pnos).await;
    wait_for_file(&dir.path().join("done/batch-7.txt"), WAIT).await;
    assert!(files_in(dir.path()).is_empty(), "nothing left in the drop directory");
    assert!(files_in(&dir.path().join("work")).is_empty());
    assert!(files_in(&dir.path().join("error")).is_empty());

    let state = h.sim_state().await;
    for pno in &pnos {
        assert_eq!(records_for(&state, &court, pno).len(), 1, "one CARPOS record for {pno}");
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop().await;
}

/// Proves a batch with a short record and a trailer count that does not add
/// up is refused as a whole: the file goes to `error/` with a report naming
/// each bad record and column, and none of its orders is published (no
/// status for its message ids, no CARPOS record, after a wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_framing_goes_to_error_with_a_report_and_nothing_is_published() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = drop_config(conf.path(), &court);

    let bad = for_court(&fixture("batch/bad-trailer-short-record.txt"), &court);
    drop_file(dir.path(), "batch-43.txt", &bad);
    let mut once = args(&court, dir.path(), &config);
    once.once = true;
    run(once, std::future::pending()).await.unwrap();

    assert_eq!(
        files_in(&dir.path().join("error")),
        ["batch-43.txt", "batch-43.txt.report.txt"]
    );
    assert!(files_in(dir.path()).is_empty() && files_in(&dir.path().join("done")).is_empty());
    let report = std::fs::read_to_string(dir.path().join("error/batch-43.txt.report.txt")).unwrap();
    let lines: Vec<&str> = report.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "one line per error:\n{report}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("INVALID_FORMAT batch.record 3:200 ")),
        "{report}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("INVALID_FORMAT batch.trailer.order_count 10:2 ")),
        "{report}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("error/batch-43.txt")).unwrap(),
        bad,
        "the file is kept as dropped"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in ids(&court, "0000000043", 2) {
        assert!(watch.for_message(&id).is_empty(), "{id} was published");
    }
    assert!(watch.all().is_empty(), "no status at all for this court");
    let state = h.sim_state().await;
    assert!(
        state["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ori"] != court.as_str())
    );
    h.stop().await;
}

/// Proves a batch whose header names another court, or a layout the court
/// is not configured for, is refused with ORI_MISMATCH / INVALID_CODE
/// located in the header, before any connection is made (the AMQP URL
/// points at a closed port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_of_another_court_or_layout_is_refused_without_connecting() {
    let court = unique_ori();
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = drop_config(conf.path(), &court);
    let other = batch("CA019015J", "0000000001", &["24DV00001"]);
    drop_file(dir.path(), "a-other-court.txt", &other);
    let layout = replace(&batch(&court, "0000000002", &["24DV00002"]), "cms-a/1", "cms-z/9");
    drop_file(dir.path(), "b-other-layout.txt", &layout);

    let mut once = args(&court, dir.path(), &config);
    once.once = true;
    once.amqp_url = Some("amqp://guest:guest@127.0.0.1:9/%2f".into());
    run(once, std::future::pending()).await.unwrap();

    let report =
        |name: &str| std::fs::read_to_string(dir.path().join("error").join(format!("{name}.report.txt"))).unwrap();
    assert!(report("a-other-court.txt").contains("\nORI_MISMATCH batch.header.court_ori 1:2 "));
    assert!(report("b-other-layout.txt").contains("\nINVALID_CODE batch.header.layout 1:35 "));
}

/// Proves crash safety: the adapter is killed after the first message of a
/// file was published and confirmed, with the file still in `work/`; started
/// again, it re-publishes the unfinished file and the end state is as if
/// nothing had happened: every order reaches PARTNER_ACCEPTED (none
/// CONFLICT_REJECTED: the re-publish is byte-identical), the CLETS simulator
/// holds exactly one record per order and `double_records` is 0, and the
/// file ends in `done/`.
///
/// The adapter runs as a real child process, killed with SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_file_and_restarted_has_no_duplicate_effect() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = drop_config(conf.path(), &court);
    let number = "0000000011";
    let n = 8;
    let pnos = order_numbers("FDC00", n);
    let refs: Vec<&str> = pnos.iter().map(String::as_str).collect();
    let ids = ids(&court, number, n);
    drop_file(dir.path(), "batch-11.txt", &batch(&court, number, &refs));
    // One message a second: the kill lands well inside the file.
    let pause = 1000;

    let mut first = child(&court, dir.path(), &config, &["--publish-pause-ms", &pause.to_string()])
        .spawn()
        .expect("porter runs");
    watch.wait(&ids[0], WAIT, has("ACCEPTED")).await;
    first.kill().await.unwrap(); // SIGKILL
    assert!(
        dir.path().join("work/batch-11.txt").is_file(),
        "killed mid-file, the file is in work/"
    );
    let status = child(&court, dir.path(), &config, &["--once"]).status().await.unwrap();
    assert!(status.success(), "the restarted adapter finishes the file: {status}");

    assert_eq!(files_in(&dir.path().join("done")), ["batch-11.txt"]);
    assert!(files_in(&dir.path().join("work")).is_empty());
    expect_all_delivered(&watch, &ids, &pnos).await;
    // Give any late duplicate a moment to show up before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let state = h.sim_state().await;
    for pno in &pnos {
        assert_eq!(
            records_for(&state, &court, pno).len(),
            1,
            "exactly one CARPOS record for {pno}"
        );
    }
    assert_eq!(state["counters"]["double_records"], 0);
    h.stop().await;
}

/// Proves recovery from the exact state a crash leaves: a file found in
/// `work/` at start, one of whose messages RabbitMQ already took, is
/// published again in full; the repeat is recognised by the broker (no
/// second record, no CONFLICT_REJECTED) and the file ends in `done/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_file_in_work_is_republished_without_duplicates() {
    let court = unique_ori();
    let h = Harness::start(&[&court]).await;
    let watch = h.watch(&court).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = drop_config(conf.path(), &court);
    let number = "0000000012";
    let pnos = order_numbers("FDD00", 2);
    let refs: Vec<&str> = pnos.iter().map(String::as_str).collect();
    let ids = ids(&court, number, 2);
    let bytes = batch(&court, number, &refs);

    // The state a crash after the first publish leaves behind.
    std::fs::create_dir(dir.path().join("work")).unwrap();
    std::fs::write(dir.path().join("work/batch-12.txt"), &bytes).unwrap();
    let first = porter::formats::batch::read_batch(&bytes, 200, b'O').unwrap().messages[0]
        .body
        .clone();
    h.publish(&court, Some(&ids[0]), "text/plain", &first).await;
    watch.wait(&ids[0], WAIT, has("PARTNER_ACCEPTED")).await;

    let mut once = args(&court, dir.path(), &config);
    once.once = true;
    run(once, std::future::pending()).await.unwrap();
    assert_eq!(files_in(&dir.path().join("done")), ["batch-12.txt"]);
    expect_all_delivered(&watch, &ids, &pnos).await;
    // The repeat of message 1 is answered by re-sending its statuses.
    watch
        .wait(&ids[0], WAIT, |s| {
            s.iter().filter(|x| x.status == StatusKind::PartnerAccepted).count() == 2
        })
        .await;
    let state = h.sim_state().await;
    for pno in &pnos {
        assert_eq!(
            records_for(&state, &court, pno).len(),
            1,
            "exactly one CARPOS record for {pno}"
        );
    }
    assert_eq!(state["counters"]["double_records"], 0);
    h.stop().await;
}
