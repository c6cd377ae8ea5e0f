//! The training run of the profile-guided release build
//! (`scripts/release.sh`): it drives the broker's intake over every sample
//! and fixture message the repository holds, so that the compiler learns
//! which code is hot from the work production does, not from a benchmark.
//!
//! Each round examines one batch of all the messages stage by stage, as the
//! intake does (`porter::intake::examine_batch`): XML, `cms-a/1` and
//! `cms-b/2`, all five actions, valid and invalid (bad dates, short records,
//! bytes a record may not hold, DTDs, wrong namespaces, unknown layouts and
//! content types). Every accepted order is then translated to its CLETS
//! request with a NIC, as delivery does, and read back with the CLETS reader,
//! as the simulator does.
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

/// Every message file of `dir` with extension `ext`.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found
}

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
            all.push((props(content_type, layout), body));
        }
    }
    // What the intake refuses before parsing.
    let issue = std::fs::read(repo.join("schemas/samples/issue.txt")).expect("the ISSUE sample");
    all.push((props("text/plain", Some("cms-z/9")), issue.clone()));
    all.push((props("application/json", None), issue));
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
