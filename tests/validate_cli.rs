//! `porter validate` as vendors run it: the real binary, offline (no
//! RabbitMQ, no store), its output and its exit codes (ICD §10: 0 valid,
//! 1 invalid, 2 usage or configuration error).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(path: &str) -> String {
    repo().join("tests/fixtures").join(path).display().to_string()
}

/// A configuration over the shipped schemas and mappings: Sacramento sends
/// cms-a/1 (default) and cms-b/2; Los Angeles cms-b/2 only.
fn site() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[paths]
schemas = "{0}/schemas"
mappings = "{0}/mappings"

[[courts]]
ori = "CA034025J"
sheriff_ori = "CA0340000"
layouts = ["cms-a/1", "cms-b/2"]

[[courts]]
ori = "CA019015J"
sheriff_ori = "CA0190000"
layouts = ["cms-b/2"]
"#,
        repo().display()
    );
    std::fs::write(dir.path().join("porter.toml"), text).unwrap();
    dir
}

fn config(site: &TempDir) -> String {
    site.path().join("porter.toml").display().to_string()
}

/// Runs `porter validate ARGS` in `dir`; returns the exit code and stdout.
fn porter_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_porter"))
        .arg("validate")
        .args(args)
        .current_dir(dir)
        .env_remove("PORTER_CONFIG")
        .output()
        .expect("porter runs");
    let out = String::from_utf8_lossy(&stdout).into_owned();
    let code = status.code().expect("porter exits");
    if code == 2 && out.is_empty() {
        eprintln!("stderr: {}", String::from_utf8_lossy(&stderr));
    }
    (code, out)
}

fn porter(args: &[&str]) -> (i32, String) {
    porter_in(&repo(), args)
}

/// Valid files — XML, cms-a/1, and cms-b/2 with `--layout` — exit 0.
#[test]
fn valid_files_exit_0() {
    let s = site();
    let (code, out) = porter(&[
        "--court",
        "CA034025J",
        "--config",
        &config(&s),
        &fixture("fixed/issue-sample.txt"),
        &fixture("fixed/terminate-sample.txt"),
        &fixture("xml/issue-sample.xml"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 file(s): 3 valid, 0 invalid"), "{out}");
    let (code, out) = porter(&[
        "--court",
        "CA034025J",
        "--layout",
        "cms-b/2",
        "--config",
        &config(&s),
        &fixture("cms-b/issue.txt"),
        &fixture("cms-b/modify.txt"),
        &fixture("cms-b/terminate.txt"),
        &fixture("cms-b/cancel.txt"),
        &fixture("cms-b/service.txt"),
    ]);
    assert_eq!(code, 0, "{out}");
}

/// An invalid file exits 1 and prints each error with code, field,
/// location and text.
#[test]
fn invalid_file_exits_1_with_located_errors() {
    let s = site();
    let (code, out) = porter(&[
        "--court",
        "CA034025J",
        "--config",
        &config(&s),
        &fixture("fixed/bad-feb-30.txt"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad-feb-30.txt: INVALID"), "{out}");
    assert!(
        out.contains("INVALID_DATE order.issue_date at 1:63: '20260230' is not a calendar date (CCYYMMDD)"),
        "{out}"
    );
    let (code, out) = porter(&[
        "--court",
        "CA019015J",
        "--config",
        &config(&s),
        &fixture("cms-b/issue.txt"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ORI_MISMATCH court_ori at 1:27"), "{out}");
}

/// `--json` prints one document: files, their messages with errors and
/// warnings, and framing errors.
#[test]
fn json_report() {
    let s = site();
    let (code, out) = porter(&[
        "--court",
        "CA034025J",
        "--config",
        &config(&s),
        "--json",
        &fixture("fixed/bad-byte-0x80.txt"),
        &fixture("batch/good-3-orders.txt"),
    ]);
    assert_eq!(code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["valid"], false);
    let e = &files[0]["messages"][0]["errors"][0];
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str(), e["location"].as_str()),
        (Some("INVALID_FORMAT"), Some("restrained_person.name.last"), Some("2:3"))
    );
    assert_eq!(files[1]["valid"], true);
    assert_eq!(files[1]["messages"].as_array().unwrap().len(), 3);
    assert_eq!(files[1]["messages"][2]["message_id"], "CA034025J-B0000000042-3");
    assert!(files[1]["framing_errors"].as_array().unwrap().is_empty());
}

/// A batch file with framing errors is invalid, each error at its record
/// and column.
#[test]
fn batch_framing_errors() {
    let s = site();
    let (code, out) = porter(&[
        "--court",
        "CA034025J",
        "--config",
        &config(&s),
        &fixture("batch/bad-trailer-short-record.txt"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("framing: INVALID_FORMAT batch.record at 3:200"), "{out}");
    assert!(
        out.contains("framing: INVALID_FORMAT batch.trailer.order_count at 10:2"),
        "{out}"
    );
}

/// Usage and configuration errors exit 2: an unknown court is
/// UNKNOWN_COURT; an unknown layout, a missing configuration, an unreadable
/// file and missing arguments are errors too.
#[test]
fn usage_errors_exit_2() {
    let s = site();
    let sample = fixture("fixed/issue-sample.txt");
    let (code, out) = porter(&["--court", "CA000000J", "--config", &config(&s), &sample]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("UNKNOWN_COURT"), "{out}");
    let (code, _) = porter(&[
        "--court",
        "CA019015J",
        "--layout",
        "cms-a/1",
        "--config",
        &config(&s),
        &sample,
    ]);
    assert_eq!(code, 2);
    let (code, _) = porter(&["--court", "CA034025J", "--config", "/nonexistent/porter.toml", &sample]);
    assert_eq!(code, 2);
    let (code, _) = porter(&[
        "--court",
        "CA034025J",
        "--config",
        &config(&s),
        "/nonexistent/order.txt",
    ]);
    assert_eq!(code, 2);
    let (code, _) = porter(&["--court", "CA034025J"]);
    assert_eq!(code, 2);
}

/// Without `--config`, the local deployment's configuration
/// (`deploy/local/porter.toml`) is used.
#[test]
fn default_config() {
    let (code, out) = porter_in(&repo(), &["--court", "CA034025J", &fixture("fixed/issue-sample.txt")]);
    assert_eq!(code, 0, "{out}");
}
