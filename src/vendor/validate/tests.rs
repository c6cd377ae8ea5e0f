//! `porter validate` in process: verdicts, reports and exit codes for single
//! messages, batch files and usage errors.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use super::{EXIT_INVALID, EXIT_USAGE, EXIT_VALID, ValidateArgs, run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(path: &str) -> PathBuf {
    repo().join("tests/fixtures").join(path)
}

/// A configuration with Sacramento (cms-a/1 by default, and cms-b/2) and Los
/// Angeles (cms-b/2 only), over the shipped schemas and mappings.
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

fn args(site: &TempDir, court: &str, files: &[PathBuf]) -> ValidateArgs {
    ValidateArgs {
        court: court.into(),
        layout: None,
        config: site.path().join("porter.toml"),
        json: false,
        files: files.to_vec(),
    }
}

fn text(args: &ValidateArgs) -> (i32, String) {
    let mut out = Vec::new();
    let code = run(args, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn json(args: &ValidateArgs) -> (i32, Value) {
    let mut a = args.clone();
    a.json = true;
    let mut out = Vec::new();
    let code = run(&a, &mut out);
    let doc = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    (code, doc)
}

/// Writes `body` to `name` in the site's folder.
fn file(site: &TempDir, name: &str, body: &[u8]) -> PathBuf {
    let p = site.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Replaces bytes at a 1-based record and column.
fn patch(body: &[u8], record: usize, column: usize, text: &str) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines[record - 1][column - 1..column - 1 + text.len()].copy_from_slice(text.as_bytes());
    lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// A batch file of `messages` in a layout of `len`-byte records.
fn batch(ori: &str, number: &str, layout: &str, len: usize, messages: &[Vec<u8>]) -> Vec<u8> {
    let pad = |s: String| {
        let mut b = s.into_bytes();
        b.resize(len, b' ');
        b.push(b'\n');
        b
    };
    let mut out = pad(format!("H{ori}20261125101500{number}{layout:<10}"));
    let mut records = 2;
    for m in messages {
        out.extend_from_slice(m);
        records += m.iter().filter(|&&b| b == b'\n').count();
    }
    out.extend(pad(format!("T{:06}{records:08}", messages.len())));
    out
}

/// Valid single messages in XML, cms-a/1 and (with `--layout`) cms-b/2 give
/// exit 0 and say so per file.
#[test]
fn valid_messages_exit_0() {
    let s = site();
    let a = args(
        &s,
        "CA034025J",
        &[
            fixture("fixed/issue-sample.txt"),
            fixture("xml/issue-sample.xml"),
            fixture("fixed/service-sample.txt"),
        ],
    );
    let (code, out) = text(&a);
    assert_eq!(code, EXIT_VALID, "{out}");
    assert!(
        out.contains("issue-sample.txt: valid (order message, layout cms-a/1)"),
        "{out}"
    );
    assert!(out.contains("issue-sample.xml: valid (order message, XML)"), "{out}");
    assert!(out.contains("3 file(s): 3 valid, 0 invalid"), "{out}");

    let mut a = args(
        &s,
        "CA034025J",
        &[
            fixture("cms-b/issue.txt"),
            fixture("cms-b/modify.txt"),
            fixture("cms-b/service.txt"),
        ],
    );
    a.layout = Some("cms-b/2".into());
    let (code, out) = text(&a);
    assert_eq!(code, EXIT_VALID, "{out}");
}

/// An invalid message gives exit 1 and every error with code, field,
/// location and text; the JSON report holds the same.
#[test]
fn invalid_message_exit_1_with_every_error() {
    let s = site();
    let body = patch(&read(&fixture("cms-b/issue.txt")), 2, 85, "7");
    let body = patch(&body, 1, 68, "02302026");
    let bad = file(&s, "bad.txt", &body);
    let mut a = args(&s, "CA034025J", &[bad, fixture("cms-b/cancel.txt")]);
    a.layout = Some("cms-b/2".into());
    let (code, out) = text(&a);
    assert_eq!(code, EXIT_INVALID, "{out}");
    assert!(
        out.contains("bad.txt: INVALID (order message, layout cms-b/2)"),
        "{out}"
    );
    assert!(
        out.contains("  INVALID_DATE order.issue_date at 1:68: '02302026' is not a calendar date (MMDDYYYY)"),
        "{out}"
    );
    assert!(
        out.contains("  INVALID_CODE restrained_person.sex at 2:85: '7' is not a court sex code of code map cms-b"),
        "{out}"
    );
    assert!(out.contains("cancel.txt: valid"), "{out}");

    let (code, doc) = json(&a);
    assert_eq!(code, EXIT_INVALID);
    assert_eq!(doc["valid"], false);
    let f = &doc["files"][0];
    assert_eq!(f["valid"], false);
    assert_eq!(f["kind"], "message");
    assert_eq!(f["framing_errors"].as_array().unwrap().len(), 0);
    let m = &f["messages"][0];
    assert_eq!(m["position"], 1);
    assert_eq!(m["message_id"], "bad.txt");
    let errors = m["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[1]["code"], "INVALID_CODE");
    assert_eq!(errors[1]["field"], "restrained_person.sex");
    assert_eq!(errors[1]["location"], "2:85");
    assert!(errors[1]["text"].as_str().unwrap().contains("'7'"));
    assert_eq!(doc["files"][1]["valid"], true);
}

/// Usage and configuration errors exit 2: an unknown court (UNKNOWN_COURT),
/// a layout the court does not have, a configuration that does not load, an
/// unreadable file.
#[test]
fn usage_errors_exit_2() {
    let s = site();
    let (code, out) = text(&args(&s, "CA999999J", &[fixture("fixed/issue-sample.txt")]));
    assert_eq!(code, EXIT_USAGE);
    assert!(
        out.starts_with("porter validate: UNKNOWN_COURT: court CA999999J is not configured"),
        "{out}"
    );
    let (code, doc) = json(&args(&s, "CA999999J", &[fixture("fixed/issue-sample.txt")]));
    assert_eq!(code, EXIT_USAGE);
    assert_eq!(doc["error"]["code"], "UNKNOWN_COURT");

    let mut a = args(&s, "CA019015J", &[fixture("fixed/issue-sample.txt")]);
    a.layout = Some("cms-a/1".into());
    let (code, out) = text(&a);
    assert_eq!(code, EXIT_USAGE);
    assert!(
        out.contains("UNKNOWN_LAYOUT: layout \"cms-a/1\" is not configured for court CA019015J"),
        "{out}"
    );

    let mut a = args(&s, "CA034025J", &[fixture("fixed/issue-sample.txt")]);
    a.config = s.path().join("missing.toml");
    let (code, out) = text(&a);
    assert_eq!(code, EXIT_USAGE);
    assert!(
        out.contains("CONFIG: cannot load the configuration") && out.contains("missing.toml"),
        "{out}"
    );

    let a = args(
        &s,
        "CA034025J",
        &[fixture("fixed/issue-sample.txt"), s.path().join("nope.txt")],
    );
    let (code, out) = text(&a);
    assert_eq!(code, EXIT_USAGE, "{out}");
    assert!(out.contains("issue-sample.txt: valid"), "{out}");
    assert!(out.contains("nope.txt: ERROR cannot read"), "{out}");
    let (_, doc) = json(&a);
    assert_eq!(doc["files"][1]["error"]["code"], "UNREADABLE");
}

/// The verdict is the broker's: the body's ORI must be the court's
/// (ORI_MISMATCH), and the content type is sniffed for files without a
/// known extension.
#[test]
fn broker_verdict_and_sniffing() {
    let s = site();
    let (code, out) = text(&args(&s, "CA019015J", &[fixture("cms-b/issue.txt")]));
    assert_eq!(code, EXIT_INVALID);
    assert!(out.contains("ORI_MISMATCH court_ori at 1:27"), "{out}");
    // A cms-b/2 file checked in the court's default layout, cms-a/1: the
    // report says which of the court's layouts the records' length fits.
    let (code, out) = text(&args(&s, "CA034025J", &[fixture("cms-b/issue.txt")]));
    assert_eq!(code, EXIT_INVALID);
    assert!(
        out.contains(
            "  hint: the records are 240 bytes, as in layout cms-b/2 of court CA034025J: try --layout cms-b/2"
        ),
        "{out}"
    );
    let xml = file(&s, "order.dat", &read(&fixture("xml/issue-sample.xml")));
    let (code, out) = text(&args(&s, "CA034025J", &[xml]));
    assert_eq!(code, EXIT_VALID, "{out}");
    assert!(out.contains("order.dat: valid (order message, XML)"), "{out}");
}

/// A batch file is checked for framing and each of its order messages is
/// examined with its ICD message id; errors name the message, its records
/// and the file's record:column.
#[test]
fn batch_files() {
    let s = site();
    let (code, out) = text(&args(&s, "CA034025J", &[fixture("batch/good-3-orders.txt")]));
    assert_eq!(code, EXIT_VALID, "{out}");
    assert!(
        out.contains(
            "good-3-orders.txt: valid (batch 0000000042 of court CA034025J, layout cms-a/1, 3 order messages)"
        ),
        "{out}"
    );
    assert!(
        out.contains("  message 2 (records 6–9) CA034025J-B0000000042-2: valid"),
        "{out}"
    );

    // The second order's restrained person has sex Q: file record 7.
    let bad = file(
        &s,
        "bad-order.txt",
        &patch(&read(&fixture("batch/good-3-orders.txt")), 7, 75, "Q"),
    );
    let (code, out) = text(&args(&s, "CA034025J", std::slice::from_ref(&bad)));
    assert_eq!(code, EXIT_INVALID, "{out}");
    assert!(
        out.contains("  message 2 (records 6–9) CA034025J-B0000000042-2: INVALID"),
        "{out}"
    );
    assert!(
        out.contains("    INVALID_CODE restrained_person.sex at 2:75 (file record:column 7:75): 'Q' is not a sex code"),
        "{out}"
    );
    let (_, doc) = json(&args(&s, "CA034025J", &[bad]));
    let f = &doc["files"][0];
    assert_eq!(f["kind"], "batch");
    assert_eq!(f["batch"]["batch_number"], "0000000042");
    let m = &f["messages"][1];
    assert_eq!(
        (
            m["position"].as_u64(),
            m["first_record"].as_u64(),
            m["record_count"].as_u64()
        ),
        (Some(2), Some(6), Some(4))
    );
    assert_eq!(m["errors"][0]["location"], "2:75");
    assert_eq!(m["errors"][0]["file_location"], "7:75");
    assert_eq!(f["messages"][0]["valid"], true);

    // Framing errors: nothing is examined; each names record and column.
    let (code, out) = text(&args(&s, "CA034025J", &[fixture("batch/bad-trailer-short-record.txt")]));
    assert_eq!(code, EXIT_INVALID, "{out}");
    assert!(out.contains("  framing: INVALID_FORMAT batch.record at 3:200"), "{out}");
    assert!(
        out.contains("  framing: INVALID_FORMAT batch.trailer.order_count at 10:2"),
        "{out}"
    );
    let (_, doc) = json(&args(&s, "CA034025J", &[fixture("batch/bad-trailer-short-record.txt")]));
    assert_eq!(doc["files"][0]["framing_errors"].as_array().unwrap().len(), 2);
    assert_eq!(doc["files"][0]["messages"].as_array().unwrap().len(), 0);
}

/// A cms-b/2 batch is read in the layout its header names; a header naming
/// another court is ORI_MISMATCH.
#[test]
fn cms_b_batch_and_header_checks() {
    let s = site();
    let issue = read(&fixture("cms-b/issue.txt"));
    let terminate = read(&fixture("cms-b/terminate.txt"));
    let body = batch(
        "CA034025J",
        "0000000007",
        "cms-b/2",
        240,
        &[issue.clone(), terminate.clone()],
    );
    let p = file(&s, "b.txt", &body);
    let (code, out) = text(&args(&s, "CA034025J", &[p]));
    assert_eq!(code, EXIT_VALID, "{out}");
    assert!(out.contains("layout cms-b/2, 2 order messages"), "{out}");
    assert!(
        out.contains("message 2 (records 6–6) CA034025J-B0000000007-2: valid"),
        "{out}"
    );

    let body = batch("CA019015J", "0000000008", "cms-b/2", 240, &[issue]);
    let p = file(&s, "other-court.txt", &body);
    let (code, out) = text(&args(&s, "CA034025J", &[p]));
    assert_eq!(code, EXIT_INVALID, "{out}");
    assert!(
        out.contains("framing: ORI_MISMATCH batch.header.court_ori at 1:2"),
        "{out}"
    );
}

/// The arguments parse as documented: `--config` defaults to the local
/// deployment's configuration, which configures the sample court.
#[test]
fn arguments_and_default_config() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ValidateArgs,
    }
    let sample = fixture("fixed/issue-sample.txt");
    let cli = Cli::try_parse_from([
        "validate".as_ref(),
        "--court".as_ref(),
        "CA034025J".as_ref(),
        "--json".as_ref(),
        sample.as_os_str(),
    ])
    .unwrap();
    assert!(cli.args.json && cli.args.layout.is_none());
    if std::env::var_os("PORTER_CONFIG").is_none() {
        assert_eq!(cli.args.config, PathBuf::from("deploy/local/porter.toml"));
        let (code, out) = text(&ValidateArgs {
            json: false,
            ..cli.args
        });
        assert_eq!(code, EXIT_VALID, "{out}");
    }
    assert!(Cli::try_parse_from(["validate", "--court", "CA034025J"]).is_err());
}
