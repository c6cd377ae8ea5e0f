//! The training run of the profile-guided release build
//! (`scripts/release.sh`): it drives the broker's intake over every sample
//! and fixture message the repository holds, so that the compiler learns
//! which code is hot from the work production does, not from a benchmark.
//!
//! Each round examines one batch of all the messages stage by stage, as the
//! intake does (`porter::intake::examine_batch`): the order messages under
//! `schemas/samples/` and `tests/fixtures/{xml,fixed,cms-b}/` (subfolders
//! included): XML, `cms-a/1` and `cms-b/2`, all five actions, valid and
//! invalid (bad dates, short records, bytes a record may not hold, DTDs,
//! wrong namespaces, the XML verdict cases), plus an unknown layout and an
//! unknown content type. Every accepted order is then translated to its
//! CLETS request with a NIC, as delivery does, and read back with the CLETS
//! reader, as the simulator does.
//!
//! The benchmark's two inputs (`tests/fixtures/fixed/issue-sample.txt` and
//! `tests/fixtures/xml/issue-sample.xml`), and any file with the same bytes,
//! are left out, so that the benchmark built with this profile measures
//! code trained on other messages. Not trained: the store, the transport,
//! partner delivery, statuses, HTTP and the court-side file drop; the
//! compiler optimises that code as if it were rarely run.
//!
//! `cargo run --release --example pgo_training -- [ROUNDS]` (default 20,000).

use std::path::{Path, PathBuf};

use porter::broker::load_formats;
use porter::config::Config;
use porter::formats::clets::CletsRequest;
use porter::intake::{Delivered, InboundProperties, examine_batch};
use porter::store::Verdict;
use porter::translate::clets::translate;

/// One court sending both layouts and XML.
fn config(repo: &Path) -> Config {
    let text = format!(
        r#"
[paths]
schemas = "{schemas}"
mappings = "{mappings}"

[[courts]]
ori = "CA034025J"
sheriff_ori = "CA0340000"
layouts = ["cms-a/1", "cms-b/2"]
amqp_users = ["court-ca034025j"]
"#,
        schemas = repo.join("schemas").display(),
        mappings = repo.join("mappings").display(),
    );
    let config = Config::from_toml_str(&text, &repo.join("porter.toml")).expect("the training configuration");
    config.validate().expect("the training configuration is valid");
    config
}

/// Every file of `dir` and its subfolders with extension `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(files(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The benchmark's inputs (`benches/pipeline.rs`), which training leaves out.
const BENCH_INPUTS: [&str; 2] = [
    "tests/fixtures/fixed/issue-sample.txt",
    "tests/fixtures/xml/issue-sample.xml",
];

/// The messages, with the content type and layout each is sent with.
fn messages(repo: &Path) -> Vec<(InboundProperties, Vec<u8>)> {
    let props = |content_type: &str, layout: Option<&str>| InboundProperties {
        message_id: Some("training".into()),
        content_type: Some(content_type.into()),
        delivery_mode: Some(2),
        user_id: Some("court-ca034025j".into()),
        timestamp: Some(1_764_000_000),
        layout: layout.map(str::to_string),
    };
    let bench: Vec<Vec<u8>> = BENCH_INPUTS
        .iter()
        .map(|p| std::fs::read(repo.join(p)).expect("a bench input"))
        .collect();
    let mut all = Vec::new();
    for (dir, ext, content_type, layout) in [
        ("schemas/samples", "xml", "application/xml", None),
        ("schemas/samples", "txt", "text/plain", Some("cms-a/1")),
        ("tests/fixtures/xml", "xml", "application/xml", None),
        ("tests/fixtures/fixed", "txt", "text/plain", Some("cms-a/1")),
        ("tests/fixtures/cms-b", "txt", "text/plain", Some("cms-b/2")),
    ] {
        for path in files(&repo.join(dir), ext) {
            let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if !bench.contains(&body) {
                all.push((props(content_type, layout), body));
            }
        }
    }
    // What the intake refuses before parsing.
    let modify = std::fs::read(repo.join("schemas/samples/modify.txt")).expect("the MODIFY sample");
    all.push((props("text/plain", Some("cms-z/9")), modify.clone()));
    all.push((props("application/json", None), modify));
    all
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("ROUNDS is a number"))
        .unwrap_or(20_000);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = config(&repo);
    let formats = load_formats(&config).expect("the shipped formats load");
    let court = config.court("CA034025J").expect("the training court");
    let messages = messages(&repo);
    let batch: Vec<Delivered<'_>> = messages
        .iter()
        .map(|(props, body)| Delivered {
            court,
            props: props.clone(),
            body,
        })
        .collect();
    let (mut accepted, mut requests) = (0usize, 0usize);
    for _ in 0..rounds {
        for item in examine_batch(&batch, &formats) {
            let Verdict::Accepted { order, .. } = item.verdict else {
                continue;
            };
            accepted += 1;
            if let Ok(t) = translate(&order, Some("X000000001"), 1, &formats.clets)
                && CletsRequest::read(t.request.as_text().as_bytes(), &formats.clets).is_ok()
            {
                requests += 1;
            }
        }
    }
    println!(
        "trained on {} messages x {rounds} rounds: {accepted} accepted, {requests} CLETS requests read back",
        messages.len()
    );
}
