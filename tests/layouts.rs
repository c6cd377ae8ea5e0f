//! Declarative layouts and code-map sets as configuration, end to end
//! through the broker's own loading (`porter::broker::load_formats`) and
//! intake (`porter::intake::examine`), with no RabbitMQ and no store:
//!
//! - the shipped `cms-b/2` layout and its `cms-b` code-map set read the same
//!   canonical orders as `cms-a/1`;
//! - a layout and a code-map set written at run time onboard a court with no
//!   rebuild, and a court may name its own code-map set;
//! - broken code-map sets stop the start with file, line and entry;
//! - every stateless ICD §4 error code, through `examine`, for XML,
//!   `cms-a/1` and `cms-b/2`, with the field and location the court sees;
//! - a batch examined stage by stage (`examine_batch`, as the intake does)
//!   gets each message exactly the verdict `examine` gives it alone.

use std::path::{Path, PathBuf};

use porter::broker::load_formats;
use porter::config::{Config, CourtConfig};
use porter::intake::{Delivered, Formats, InboundProperties, examine, examine_batch};
use porter::model::{Action, ErrorCode, FieldError, OrderMessage};
use porter::store::Verdict;
use tempfile::TempDir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures").join(path)).expect("fixture exists")
}

/// The two test courts: Sacramento sends cms-a/1 (default) and cms-b/2, and
/// XML; Los Angeles sends cms-b/2 only.
const COURTS: &str = r#"
[[courts]]
ori = "CA034025J"
sheriff_ori = "CA0340000"
layouts = ["cms-a/1", "cms-b/2"]
amqp_users = ["court-ca034025j"]

[[courts]]
ori = "CA019015J"
sheriff_ori = "CA0190000"
layouts = ["cms-b/2"]
"#;

/// A configuration folder made at run time: copies of the shipped layouts
/// and mappings, plus `extra` files (path relative to the folder, contents),
/// and a `porter.toml` holding `courts`.
struct Site {
    dir: TempDir,
}

impl Site {
    fn new(extra: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let copy = |from: &Path, to: &Path| {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
                }
            }
        };
        copy(&repo().join("schemas/layouts"), &dir.path().join("schemas/layouts"));
        copy(&repo().join("mappings"), &dir.path().join("mappings"));
        copy(
            &repo().join("mappings/code-maps"),
            &dir.path().join("mappings/code-maps"),
        );
        for (path, text) in extra {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Site { dir }
    }

    /// The broker configuration for `courts`, read as the broker reads it.
    fn config(&self, courts: &str) -> Config {
        let text = format!("[paths]\nschemas = \"schemas\"\nmappings = \"mappings\"\n{courts}");
        let path = self.dir.path().join("porter.toml");
        std::fs::write(&path, &text).unwrap();
        let config = Config::from_toml_str(&text, &path).unwrap();
        config.validate().unwrap();
        config
    }

    fn formats(&self, courts: &str) -> (Config, Formats) {
        let config = self.config(courts);
        let formats = load_formats(&config).unwrap_or_else(|e| panic!("{e:#}"));
        (config, formats)
    }

    /// The start's error for `courts`, as the operator reads it.
    fn start_error(&self, courts: &str) -> String {
        match load_formats(&self.config(courts)) {
            Ok(_) => panic!("the start should fail"),
            Err(e) => format!("{e:#}"),
        }
    }
}

/// The shipped site and its two courts.
fn shipped() -> (Site, Config, Formats) {
    let site = Site::new(&[]);
    let (config, formats) = site.formats(COURTS);
    (site, config, formats)
}

fn court<'c>(config: &'c Config, ori: &str) -> &'c CourtConfig {
    config.court(ori).unwrap()
}

fn props(content_type: &str, layout: Option<&str>) -> InboundProperties {
    InboundProperties {
        message_id: Some("test-1".into()),
        content_type: Some(content_type.into()),
        delivery_mode: Some(2),
        layout: layout.map(str::to_string),
        ..Default::default()
    }
}

/// The broker's verdict on a fixed-width body in `layout` from `ori`'s queue.
fn fixed(f: &Formats, config: &Config, ori: &str, layout: &str, body: &[u8]) -> Verdict {
    examine(court(config, ori), &props("text/plain", Some(layout)), body, f).verdict
}

fn xml(f: &Formats, config: &Config, ori: &str, body: &str) -> Verdict {
    examine(court(config, ori), &props("application/xml", None), body.as_bytes(), f).verdict
}

fn accepted(v: Verdict) -> OrderMessage {
    match v {
        Verdict::Accepted { order, .. } => *order,
        Verdict::Rejected { errors, .. } => panic!("rejected: {errors:#?}"),
    }
}

fn rejected(v: Verdict) -> Vec<FieldError> {
    match v {
        Verdict::Rejected { errors, .. } => errors,
        Verdict::Accepted { order, .. } => panic!("accepted: {order:#?}"),
    }
}

/// (code, field, location) of each error.
fn errs(errors: &[FieldError]) -> Vec<(ErrorCode, String, Option<String>)> {
    errors
        .iter()
        .map(|e| (e.code, e.field.clone(), e.location.clone()))
        .collect()
}

/// The errors are exactly one, with this code, field and location.
#[track_caller]
fn only(errors: &[FieldError], code: ErrorCode, field: &str, location: Option<&str>) {
    assert_eq!(
        errs(errors),
        vec![(code, field.to_string(), location.map(str::to_string))],
        "{errors:#?}"
    );
}

/// Replaces the bytes at 1-based `record` and `column` of a fixed-width body.
fn patch(body: &[u8], record: usize, column: usize, text: &str) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines[record - 1][column - 1..column - 1 + text.len()].copy_from_slice(text.as_bytes());
    lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
}

/// Removes a record (1-based) from a fixed-width body.
fn without(body: &[u8], record: usize) -> Vec<u8> {
    body.split_inclusive(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, _)| i + 1 != record)
        .flat_map(|(_, r)| r.iter().copied())
        .collect()
}

fn xml_sample() -> String {
    String::from_utf8(fixture("xml/issue-sample.xml")).unwrap()
}

/// The intake examines a batch stage by stage (`examine_batch`: every
/// message read, then every one validated, then every one translated).
/// Each message must get exactly the verdict and record it gets examined
/// alone, in the batch's order, whatever its neighbours: valid and invalid
/// messages, both layouts, XML, unknown layouts and content types, a
/// stranger's `user_id`.
#[test]
fn a_batch_examined_in_stages_gets_each_message_its_own_verdict() {
    let (_site, config, f) = shipped();
    let sacramento = court(&config, "CA034025J");
    let los_angeles = court(&config, "CA019015J");
    let stranger = InboundProperties {
        user_id: Some("court-someone-else".into()),
        ..props("text/plain", Some("cms-a/1"))
    };
    let bodies: Vec<(&CourtConfig, InboundProperties, Vec<u8>)> = vec![
        (
            sacramento,
            props("text/plain", Some("cms-a/1")),
            fixture("fixed/issue-sample.txt"),
        ),
        (
            sacramento,
            props("application/xml", None),
            fixture("xml/issue-sample.xml"),
        ),
        (
            sacramento,
            props("text/plain", Some("cms-a/1")),
            fixture("fixed/bad-feb-30.txt"),
        ),
        (
            sacramento,
            props("text/plain", None),
            fixture("fixed/bad-short-record.txt"),
        ),
        (
            sacramento,
            props("text/plain", Some("cms-b/2")),
            fixture("cms-b/issue.txt"),
        ),
        (
            los_angeles,
            props("text/plain", Some("cms-a/1")),
            fixture("fixed/issue-sample.txt"),
        ),
        (sacramento, props("application/xml", None), fixture("xml/dtd.xml")),
        (
            sacramento,
            props("application/json", None),
            fixture("xml/issue-sample.xml"),
        ),
        (sacramento, stranger, fixture("fixed/cancel-sample.txt")),
        (
            sacramento,
            props("text/plain", Some("cms-a/1")),
            fixture("fixed/service-sample.txt"),
        ),
    ];
    let batch: Vec<Delivered<'_>> = bodies
        .iter()
        .map(|(court, props, body)| Delivered {
            court,
            props: props.clone(),
            body,
        })
        .collect();
    let staged = examine_batch(&batch, &f);
    assert_eq!(staged.len(), batch.len());
    let mut accepted = 0;
    for (i, (d, item)) in batch.iter().zip(&staged).enumerate() {
        let alone = examine(d.court, &d.props, d.body, &f);
        assert_eq!(
            format!("{:?}", item.verdict),
            format!("{:?}", alone.verdict),
            "message {i}"
        );
        let (a, b) = (&item.inbound, &alone.inbound);
        assert_eq!(
            (
                &a.court_ori,
                &a.message_id,
                &a.body,
                &a.body_sha256,
                &a.content_type,
                &a.layout
            ),
            (
                &b.court_ori,
                &b.message_id,
                &b.body,
                &b.body_sha256,
                &b.content_type,
                &b.layout
            ),
            "message {i}"
        );
        accepted += usize::from(matches!(item.verdict, Verdict::Accepted { .. }));
    }
    // The batch mixes both outcomes: 1, 2, 5 and 10 are accepted.
    assert_eq!(accepted, 4, "{staged:#?}");
}

// ---------------------------------------------------------------------------
// cms-b/2 and its code-map set
// ---------------------------------------------------------------------------

/// A cms-b/2 ISSUE (other columns, MMDDYYYY dates, CMS B's own sex, race,
/// eye, hair and order-type codes) is accepted and parses to the same
/// canonical order as the cms-a/1 sample of ICD §3, apart from the fields
/// only one of the layouts has columns for (cms-b/2's protected-party
/// suffix, blank here).
#[test]
fn cms_b_issue_is_the_cms_a_sample() {
    let (_site, config, f) = shipped();
    let a = accepted(fixed(
        &f,
        &config,
        "CA034025J",
        "cms-a/1",
        &fixture("fixed/issue-sample.txt"),
    ));
    let b = accepted(fixed(&f, &config, "CA034025J", "cms-b/2", &fixture("cms-b/issue.txt")));
    let layout_specific = |mut m: OrderMessage| {
        for p in &mut m.protected_persons {
            p.name.suffix = None;
        }
        m
    };
    assert_eq!(layout_specific(b.clone()), layout_specific(a.clone()));
    // The codes really were CMS B's: sex 1, race WHITE, order type DVRO.
    let body = fixture("cms-b/issue.txt");
    assert_eq!(&body[241 + 84..241 + 95], b"1WHITE     ");
    assert_eq!(&body[55..59], b"DVRO");
    assert_eq!(b.restrained_person.unwrap().sex.as_deref(), Some("M"));
    assert_eq!(b.order.order_type.as_deref(), Some("DV"));
}

/// Every cms-b/2 fixture (ISSUE, MODIFY, TERMINATE, CANCEL, SERVICE) is
/// accepted and reads as the same canonical order as its cms-a/1 sibling.
#[test]
fn cms_b_fixtures_match_cms_a() {
    let (_site, config, f) = shipped();
    for (b, a, action) in [
        ("issue", "issue-sample", Action::Issue),
        ("modify", "modify-sample", Action::Modify),
        ("terminate", "terminate-sample", Action::Terminate),
        ("cancel", "cancel-sample", Action::Cancel),
        ("service", "service-sample", Action::Service),
    ] {
        let ob = accepted(fixed(
            &f,
            &config,
            "CA034025J",
            "cms-b/2",
            &fixture(&format!("cms-b/{b}.txt")),
        ));
        let oa = accepted(fixed(
            &f,
            &config,
            "CA034025J",
            "cms-a/1",
            &fixture(&format!("fixed/{a}.txt")),
        ));
        assert_eq!(ob.action, Some(action));
        assert_eq!(ob, oa, "{b}");
    }
}

/// A court that names no layout in its messages gets its first configured
/// layout: cms-b/2 for Los Angeles, with the layout's default code map.
#[test]
fn court_default_layout_and_code_map() {
    let (_site, config, f) = shipped();
    let v = examine(
        court(&config, "CA019015J"),
        &props("text/plain", None),
        &patch(&fixture("cms-b/issue.txt"), 1, 27, "CA019015J"),
        &f,
    );
    assert_eq!(v.inbound.layout.as_deref(), Some("cms-b/2"));
    assert_eq!(
        accepted(v.verdict).restrained_person.unwrap().race.as_deref(),
        Some("W")
    );
    // Sacramento's default layout is cms-a/1: the same body without
    // `x-por-layout` is read as cms-a/1, and rejected.
    let v = examine(
        court(&config, "CA034025J"),
        &props("text/plain", None),
        &fixture("cms-b/issue.txt"),
        &f,
    );
    assert!(!rejected(v.verdict).is_empty());
}

/// A court code not in the court's code-map set is INVALID_CODE at that
/// field's record:column, for every mapped list; canonical codes where CMS
/// B writes its own are not accepted either.
#[test]
fn unmapped_court_code_is_invalid_code_at_its_column() {
    let (_site, config, f) = shipped();
    let body = fixture("cms-b/issue.txt");
    let e = rejected(fixed(&f, &config, "CA034025J", "cms-b/2", &patch(&body, 2, 85, "M")));
    only(&e, ErrorCode::InvalidCode, "restrained_person.sex", Some("2:85"));
    assert!(
        e[0].text
            .contains("'M' is not a court sex code of code map cms-b (1 2 3 9)"),
        "{}",
        e[0].text
    );

    let body = patch(&body, 1, 56, "DV  ");
    let body = patch(&body, 2, 86, "CAUCASIAN ");
    let body = patch(&body, 2, 96, "BRN     ");
    let body = patch(&body, 3, 85, "7");
    let e = rejected(fixed(&f, &config, "CA034025J", "cms-b/2", &body));
    assert_eq!(
        errs(&e),
        [
            ("order.order_type", "1:56"),
            ("restrained_person.race", "2:86"),
            ("restrained_person.eye", "2:96"),
            ("protected_persons[0].sex", "3:85"),
        ]
        .map(|(f, l)| (ErrorCode::InvalidCode, f.to_string(), Some(l.to_string())))
    );
}

// ---------------------------------------------------------------------------
// Onboarding at run time
// ---------------------------------------------------------------------------

/// A made-up CMS C: 120-byte CRLF records with the record type in the last
/// column, ISO-like dates, and sex written as words through its own
/// code-map set. Nothing about it exists in the code.
const CMS_C_LAYOUT: &str = r#"
name = "cms-c/1"
description = "CMS C: 120-byte records, type in column 120, CCYY-MM-DD dates."
record_length = 120
terminators = ["CRLF"]
record_type = { start = 120, length = 1 }
code_map = "cms-c"

[[record_order]]
actions = ["ISSUE", "MODIFY"]
records = [
    { type = "A", min = 1, max = 1 },
    { type = "B", min = 1, max = 1 },
    { type = "C", min = 1, max = 9 },
    { type = "D", min = 0, max = 9 },
]

[[record_order]]
actions = ["TERMINATE"]
records = [{ type = "A", min = 1, max = 1 }]

[[records]]
type = "A"
container = "order"
fields = [
    { field = "court_ori", start = 1, length = 9, type = "text" },
    { field = "order.order_number", start = 10, length = 15, type = "text" },
    { field = "action", start = 25, length = 1, type = "action", codes = { I = "ISSUE", M = "MODIFY", T = "TERMINATE" } },
    { field = "sequence", start = 26, length = 3, type = "number" },
    { field = "order.case_number", start = 29, length = 20, type = "text" },
    { field = "order.order_type", start = 49, length = 3, type = "code" },
    { field = "order.issue_date", start = 52, length = 10, type = "date", pattern = "CCYY-MM-DD" },
    { field = "order.expiration", start = 62, length = 12, type = "datetime", pattern = "CCYYMMDDHHMM" },
    { field = "order.brady", start = 74, length = 1, type = "code" },
    { field = "order.condition_codes", start = 75, length = 27, type = "codes", width = 3 },
    { field = "order.termination_date", start = 102, length = 10, type = "date", pattern = "CCYY-MM-DD" },
]

[[records]]
type = "B"
container = "restrained_person"
fields = [
    { field = "restrained_person.name.last", start = 1, length = 30, type = "text" },
    { field = "restrained_person.name.first", start = 31, length = 20, type = "text" },
    { field = "restrained_person.sex", start = 51, length = 6, type = "code" },
    { field = "restrained_person.race", start = 57, length = 1, type = "code" },
    { field = "restrained_person.birth_date", start = 58, length = 10, type = "date", pattern = "CCYY-MM-DD" },
]

[[records]]
type = "C"
container = "protected_persons[]"
fields = [
    { field = "protected_persons[].name.last", start = 1, length = 30, type = "text" },
    { field = "protected_persons[].sex", start = 31, length = 6, type = "code" },
]

[[records]]
type = "D"
fields = [
    { field = "order.condition_text", start = 1, length = 60, type = "text", join = " ", max_length = 500 },
]
"#;

const CMS_C_MAP: &str = r#"
name = "cms-c"
[sex]
MALE = "M"
FEMALE = "F"
OTHER = "X"
UNK = "U"
"#;

/// A CRLF record of `len` bytes with `parts` at their 1-based columns.
fn rec(len: usize, parts: &[(usize, &str)]) -> Vec<u8> {
    let mut r = vec![b' '; len];
    for (start, text) in parts {
        r[start - 1..start - 1 + text.len()].copy_from_slice(text.as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// A court is onboarded with a layout file and a code-map set written at
/// run time, next to copies of the shipped ones, and a configuration naming
/// them: the broker's own loading and intake read that court's orders in
/// the new columns, with no rebuild — valid orders are accepted, and errors
/// point at the new layout's record:column.
#[test]
fn new_layout_written_at_run_time_onboards_a_court() {
    let site = Site::new(&[
        ("schemas/layouts/cms-c-1.toml", CMS_C_LAYOUT),
        ("mappings/code-maps/cms-c.toml", CMS_C_MAP),
    ]);
    let (config, f) = site.formats(
        r#"
[[courts]]
ori = "CA0570001"
sheriff_ori = "CA0570000"
layouts = ["cms-c/1"]
"#,
    );
    assert!(f.layouts.contains_key("cms-a/1") && f.layouts.contains_key("cms-b/2"));
    let body = [
        rec(
            120,
            &[
                (1, "CA0570001"),
                (10, "25CH00077"),
                (25, "I"),
                (26, "1"),
                (29, "25CV000077"),
                (49, "CH"),
                (52, "2026-01-15"),
                (62, "202801151700"),
                (74, "N"),
                (75, "01 02 06"),
                (120, "A"),
            ],
        ),
        rec(
            120,
            &[
                (1, "ROE"),
                (31, "RICHARD"),
                (51, "MALE"),
                (57, "U"),
                (58, "1970-07-04"),
                (120, "B"),
            ],
        ),
        rec(120, &[(1, "ROE"), (31, "FEMALE"), (120, "C")]),
        rec(120, &[(1, "NO CONTACT."), (120, "D")]),
    ]
    .concat();
    let v = examine(court(&config, "CA0570001"), &props("text/plain", None), &body, &f);
    assert_eq!(v.inbound.layout.as_deref(), Some("cms-c/1"));
    let m = accepted(v.verdict);
    assert_eq!(m.order.order_number.as_deref(), Some("25CH00077"));
    assert_eq!(m.order.issue_date, chrono::NaiveDate::from_ymd_opt(2026, 1, 15));
    assert_eq!(m.order.condition_codes, ["01", "02", "06"]);
    let rp = m.restrained_person.as_ref().unwrap();
    assert_eq!((rp.sex.as_deref(), rp.race.as_deref()), (Some("M"), Some("U")));
    assert_eq!(m.protected_persons[0].sex.as_deref(), Some("F"));
    assert_eq!(m.order.condition_text.as_deref(), Some("NO CONTACT."));

    // Errors are located in the new columns.
    let mut bad = body.clone();
    bad[122 + 50..122 + 56].copy_from_slice(b"M     ");
    bad[51..61].copy_from_slice(b"2026-02-30");
    let e = rejected(examine(court(&config, "CA0570001"), &props("text/plain", None), &bad, &f).verdict);
    assert_eq!(
        errs(&e),
        [
            (ErrorCode::InvalidDate, "order.issue_date".into(), Some("1:52".into())),
            (
                ErrorCode::InvalidCode,
                "restrained_person.sex".into(),
                Some("2:51".into())
            ),
        ]
    );

    // The loaded layout also writes the court's orders: what it writes, the
    // broker accepts as the same order.
    let layout = &f.layouts["cms-c/1"];
    let written = layout.write_order(&m).unwrap();
    assert!(written.starts_with(b"CA057000125CH00077      I001"));
    let again = accepted(examine(court(&config, "CA0570001"), &props("text/plain", None), &written, &f).verdict);
    assert_eq!(again, m);
}

/// A court's configuration may name its own code-map set instead of its
/// layout's: the same cms-b/2 columns then carry that court's codes.
#[test]
fn court_names_its_own_code_map() {
    let letters = std::fs::read_to_string(repo().join("mappings/code-maps/cms-b.toml"))
        .unwrap()
        .replace("name = \"cms-b\"", "name = \"cms-b-letters\"")
        .replace(
            "\"1\" = \"M\"\n\"2\" = \"F\"\n\"3\" = \"X\"\n\"9\" = \"U\"",
            "M = \"M\"\nF = \"F\"\nX = \"X\"\nU = \"U\"",
        );
    assert!(letters.contains("M = \"M\""));
    let site = Site::new(&[("mappings/code-maps/cms-b-letters.toml", &letters)]);
    let (config, f) = site.formats(
        r#"
[[courts]]
ori = "CA034025J"
sheriff_ori = "CA0340000"
layouts = ["cms-b/2"]
code_map = "cms-b-letters"
"#,
    );
    let body = fixture("cms-b/issue.txt");
    let e = rejected(fixed(&f, &config, "CA034025J", "cms-b/2", &body));
    assert!(
        e.iter()
            .any(|e| e.code == ErrorCode::InvalidCode && e.field == "restrained_person.sex"),
        "{e:#?}"
    );
    let body = patch(&patch(&body, 2, 85, "M"), 3, 85, "F");
    let m = accepted(fixed(&f, &config, "CA034025J", "cms-b/2", &body));
    assert_eq!(m.restrained_person.unwrap().sex.as_deref(), Some("M"));
}

/// Code-map sets are checked at start: a broken file stops the broker with
/// a message naming the file, the line and the entry; so does a set that a
/// layout or court names but that does not exist, and a court code wider
/// than the layout's columns for it.
#[test]
fn broken_code_maps_stop_the_start() {
    let shipped = std::fs::read_to_string(repo().join("mappings/code-maps/cms-b.toml")).unwrap();
    let bad = shipped.replace("HAZEL = \"HAZ\"", "HAZEL = \"HZL\"");
    let line = bad.lines().position(|l| l.starts_with("HAZEL")).unwrap() + 1;
    let site = Site::new(&[("mappings/code-maps/cms-b.toml", &bad)]);
    let e = site.start_error(COURTS);
    assert!(e.contains("mappings/code-maps/cms-b.toml"), "{e}");
    assert!(
        e.contains(&format!("line {line}: eye.HAZEL: 'HZL' is not a canonical eye code")),
        "{e}"
    );

    let site = Site::new(&[(
        "mappings/code-maps/cms-b.toml",
        "name = \"cms-b\"\n[sex]\n\"1\" = \"M\"\n\"1\" = \"F\"\n",
    )]);
    let e = site.start_error(COURTS);
    assert!(e.contains("cms-b.toml: line 4"), "{e}");

    let site = Site::new(&[]);
    let e = site.start_error("[[courts]]\nori = \"CA034025J\"\nsheriff_ori = \"CA0340000\"\ncode_map = \"cms-z\"\n");
    assert!(e.contains("court CA034025J: code_map \"cms-z\" is not in"), "{e}");

    let site = Site::new(&[("schemas/layouts/cms-c-1.toml", CMS_C_LAYOUT)]);
    let e = site.start_error(COURTS);
    assert!(e.contains("cms-c-1.toml: code_map \"cms-c\" is not in"), "{e}");

    let wide = shipped.replace("\"9\" = \"U\"", "\"99\" = \"U\"");
    let site = Site::new(&[("mappings/code-maps/cms-b.toml", &wide)]);
    let e = site.start_error(COURTS);
    assert!(
        e.contains("sex.99") && e.contains("wider than field restrained_person.sex"),
        "{e}"
    );

    let twin = shipped.clone();
    let site = Site::new(&[("mappings/code-maps/cms-b-copy.toml", &twin)]);
    let e = site.start_error(COURTS);
    assert!(e.contains("name \"cms-b\" is also the name of"), "{e}");
}

// ---------------------------------------------------------------------------
// Every stateless error code, through the broker's intake
// ---------------------------------------------------------------------------

/// MISSING, per action, in each format: ISSUE and MODIFY (the restrained
/// person's sex, the protected persons), TERMINATE (termination date),
/// CANCEL (cancel reason), SERVICE (served by), located at the field's
/// columns or element, or the enclosing part when the field is absent.
#[test]
fn missing_per_action() {
    let (_site, config, f) = shipped();
    let a = |body: &[u8]| rejected(fixed(&f, &config, "CA034025J", "cms-a/1", body));
    let b = |body: &[u8]| rejected(fixed(&f, &config, "CA034025J", "cms-b/2", body));

    // ISSUE.
    only(
        &a(&patch(&fixture("fixed/issue-sample.txt"), 2, 75, " ")),
        ErrorCode::Missing,
        "restrained_person.sex",
        Some("2:75"),
    );
    only(
        &b(&patch(&fixture("cms-b/issue.txt"), 2, 85, " ")),
        ErrorCode::Missing,
        "restrained_person.sex",
        Some("2:85"),
    );
    let e = rejected(xml(
        &f,
        &config,
        "CA034025J",
        &xml_sample().replace("<por:SexCode>M</por:SexCode>", ""),
    ));
    assert_eq!(
        errs(&e).iter().map(|(c, f, _)| (*c, f.as_str())).collect::<Vec<_>>(),
        [(ErrorCode::Missing, "restrained_person.sex")]
    );
    // MODIFY: no condition code; no issue date.
    only(
        &a(&patch(&fixture("fixed/modify-sample.txt"), 1, 84, &" ".repeat(18))),
        ErrorCode::Missing,
        "order.condition_codes",
        Some("1:84"),
    );
    only(
        &b(&patch(&fixture("cms-b/modify.txt"), 1, 68, "        ")),
        ErrorCode::Missing,
        "order.issue_date",
        Some("1:68"),
    );
    // TERMINATE.
    only(
        &a(&patch(&fixture("fixed/terminate-sample.txt"), 1, 133, "        ")),
        ErrorCode::Missing,
        "order.termination_date",
        Some("1:133"),
    );
    only(
        &b(&patch(&fixture("cms-b/terminate.txt"), 1, 149, "        ")),
        ErrorCode::Missing,
        "order.termination_date",
        Some("1:149"),
    );
    // CANCEL.
    only(
        &a(&patch(&fixture("fixed/cancel-sample.txt"), 1, 141, &" ".repeat(60))),
        ErrorCode::Missing,
        "order.cancel_reason",
        Some("1:141"),
    );
    only(
        &b(&patch(&fixture("cms-b/cancel.txt"), 1, 157, &" ".repeat(60))),
        ErrorCode::Missing,
        "order.cancel_reason",
        Some("1:157"),
    );
    // SERVICE.
    only(
        &a(&patch(&fixture("fixed/service-sample.txt"), 2, 14, &" ".repeat(30))),
        ErrorCode::Missing,
        "order.service.served_by",
        Some("2:14"),
    );
    only(
        &b(&patch(&fixture("cms-b/service.txt"), 2, 24, &" ".repeat(30))),
        ErrorCode::Missing,
        "order.service.served_by",
        Some("2:24"),
    );
}

/// INVALID_FORMAT: a byte above 0x7F, a record of the wrong length, a
/// malformed ORI, in each layout; broken XML.
#[test]
fn invalid_format() {
    let (_site, config, f) = shipped();
    let a = |body: &[u8]| rejected(fixed(&f, &config, "CA034025J", "cms-a/1", body));
    let b = |body: &[u8]| rejected(fixed(&f, &config, "CA034025J", "cms-b/2", body));
    only(
        &a(&fixture("fixed/bad-byte-0x80.txt")),
        ErrorCode::InvalidFormat,
        "restrained_person.name.last",
        Some("2:3"),
    );
    let mut body = fixture("cms-b/issue.txt");
    body[241 + 44] = 0xC9;
    only(
        &b(&body),
        ErrorCode::InvalidFormat,
        "restrained_person.name.last",
        Some("2:45"),
    );
    only(
        &a(&fixture("fixed/bad-short-record.txt")),
        ErrorCode::InvalidFormat,
        "restrained_person",
        Some("2:200"),
    );
    // A cms-a/1 message (200-byte records) read as cms-b/2 (240).
    // Nothing of it can be read, so the validator finds the required
    // fields missing too.
    let e = b(&fixture("fixed/issue-sample.txt"));
    assert_eq!(
        errs(&e[..1]),
        [(ErrorCode::InvalidFormat, "message".into(), Some("1:201".into()))]
    );
    only(
        &b(&patch(&fixture("cms-b/issue.txt"), 1, 27, "CA03402-J")),
        ErrorCode::InvalidFormat,
        "court_ori",
        Some("1:27"),
    );
    let e = rejected(xml(&f, &config, "CA034025J", &fixture_text("xml/broken.xml")));
    assert_eq!(
        (e[0].code, e[0].field.as_str()),
        (ErrorCode::InvalidFormat, "message"),
        "{e:#?}"
    );
    assert!(e[0].location.is_some(), "{e:#?}");
}

fn fixture_text(path: &str) -> String {
    String::from_utf8_lossy(&fixture(path)).into_owned()
}

/// INVALID_CODE: a canonical list's unknown code in cms-a/1 and XML, and an
/// unknown court code in cms-b/2, each at its field.
#[test]
fn invalid_code() {
    let (_site, config, f) = shipped();
    let e = rejected(fixed(
        &f,
        &config,
        "CA034025J",
        "cms-a/1",
        &patch(&fixture("fixed/issue-sample.txt"), 3, 82, "ZZ"),
    ));
    only(
        &e,
        ErrorCode::InvalidCode,
        "protected_persons[0].relationship",
        Some("3:82"),
    );
    let e = rejected(fixed(
        &f,
        &config,
        "CA034025J",
        "cms-b/2",
        &patch(&fixture("cms-b/service.txt"), 2, 54, "HAND"),
    ));
    only(&e, ErrorCode::InvalidCode, "order.service.method", Some("2:54"));
    let e = rejected(xml(&f, &config, "CA034025J", &xml_sample().replace(">BRO<", ">BRN<")));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        (e[0].code, e[0].field.as_str()),
        (ErrorCode::InvalidCode, "restrained_person.eye")
    );
    assert!(e[0].location.is_some());
}

/// TOO_LONG: condition text joined over 500 characters (cms-a/1 M lines,
/// cms-b/2 lines), and an XML case number over 20.
#[test]
fn too_long() {
    let (_site, config, f) = shipped();
    let mut body = without(&fixture("fixed/issue-sample.txt"), 4);
    for n in 1..=5 {
        let mut line = vec![b' '; 200];
        line[..3].copy_from_slice(format!("M0{n}").as_bytes());
        line[3..103].copy_from_slice(&[b'X'; 100]);
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    let e = rejected(fixed(&f, &config, "CA034025J", "cms-a/1", &body));
    only(&e, ErrorCode::TooLong, "order.condition_text", Some("8:4"));

    let mut body = without(&fixture("cms-b/issue.txt"), 4);
    for n in 1..=3 {
        let mut line = vec![b' '; 240];
        line[..5].copy_from_slice(format!("4000{n}").as_bytes());
        line[5..205].copy_from_slice(&[b'Y'; 200]);
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    let e = rejected(fixed(&f, &config, "CA034025J", "cms-b/2", &body));
    only(&e, ErrorCode::TooLong, "order.condition_text", Some("6:6"));

    let e = rejected(xml(
        &f,
        &config,
        "CA034025J",
        &xml_sample().replace("24FL001234", "24FL001234-0000000000"),
    ));
    assert_eq!(
        errs(&e).iter().map(|(c, f, _)| (*c, f.as_str())).collect::<Vec<_>>(),
        [(ErrorCode::TooLong, "order.case_number")]
    );
}

/// INVALID_DATE: February 30 and an expiration before the issue date, in
/// both layouts and in XML.
#[test]
fn invalid_date() {
    let (_site, config, f) = shipped();
    let a = |body: &[u8]| rejected(fixed(&f, &config, "CA034025J", "cms-a/1", body));
    let b = |body: &[u8]| rejected(fixed(&f, &config, "CA034025J", "cms-b/2", body));
    only(
        &a(&fixture("fixed/bad-feb-30.txt")),
        ErrorCode::InvalidDate,
        "order.issue_date",
        Some("1:63"),
    );
    only(
        &b(&patch(&fixture("cms-b/issue.txt"), 1, 68, "02302026")),
        ErrorCode::InvalidDate,
        "order.issue_date",
        Some("1:68"),
    );
    only(
        &a(&patch(&fixture("fixed/issue-sample.txt"), 1, 71, "20261124")),
        ErrorCode::InvalidDate,
        "order.expiration",
        Some("1:71"),
    );
    only(
        &b(&patch(&fixture("cms-b/issue.txt"), 1, 76, "11242026")),
        ErrorCode::InvalidDate,
        "order.expiration",
        Some("1:76"),
    );
    let e = rejected(xml(
        &f,
        &config,
        "CA034025J",
        &xml_sample().replace("2031-11-25T23:59:00", "2026-11-24T23:59:00"),
    ));
    assert_eq!(
        errs(&e).iter().map(|(c, f, _)| (*c, f.as_str())).collect::<Vec<_>>(),
        [(ErrorCode::InvalidDate, "order.expiration")]
    );
    let e = rejected(xml(
        &f,
        &config,
        "CA034025J",
        &xml_sample().replace("1985-02-14", "1985-02-30"),
    ));
    assert!(
        e.iter().all(|e| e.field == "restrained_person.birth_date") && !e.is_empty(),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|e| matches!(e.code, ErrorCode::InvalidDate | ErrorCode::InvalidFormat)),
        "{e:#?}"
    );
}

/// INVALID_SEQUENCE: sequence 0, and sequence 1 on a message that is not an
/// ISSUE, in both layouts and XML.
#[test]
fn invalid_sequence() {
    let (_site, config, f) = shipped();
    let e = rejected(fixed(
        &f,
        &config,
        "CA034025J",
        "cms-a/1",
        &patch(&fixture("fixed/issue-sample.txt"), 1, 48, "0000"),
    ));
    only(&e, ErrorCode::InvalidSequence, "sequence", Some("1:48"));
    let e = rejected(fixed(
        &f,
        &config,
        "CA034025J",
        "cms-b/2",
        &patch(&fixture("cms-b/terminate.txt"), 1, 22, "00001"),
    ));
    only(&e, ErrorCode::InvalidSequence, "sequence", Some("1:22"));
    let e = rejected(xml(
        &f,
        &config,
        "CA034025J",
        &xml_sample().replace("<por:Sequence>1<", "<por:Sequence>0<"),
    ));
    assert_eq!(
        errs(&e).iter().map(|(c, f, _)| (*c, f.as_str())).collect::<Vec<_>>(),
        [(ErrorCode::InvalidSequence, "sequence")]
    );
}

/// ORI_MISMATCH: the body's court ORI is not the queue's court (XML,
/// cms-a/1, cms-b/2, located at the ORI), and an AMQP `user_id` that is not
/// one of the court's `amqp_users` (on `user_id`, without location); a
/// configured user passes.
#[test]
fn ori_mismatch() {
    let (_site, config, f) = shipped();
    // Los Angeles' queue receives Sacramento's orders.
    let la = court(&config, "CA019015J");
    let mut la_all = la.clone();
    la_all.layouts = vec!["cms-a/1".into(), "cms-b/2".into()];
    let v = |c: &CourtConfig, ct: &str, layout: Option<&str>, body: &[u8]| {
        rejected(examine(c, &props(ct, layout), body, &f).verdict)
    };
    only(
        &v(
            &la_all,
            "text/plain",
            Some("cms-a/1"),
            &fixture("fixed/issue-sample.txt"),
        ),
        ErrorCode::OriMismatch,
        "court_ori",
        Some("1:2"),
    );
    only(
        &v(la, "text/plain", Some("cms-b/2"), &fixture("cms-b/issue.txt")),
        ErrorCode::OriMismatch,
        "court_ori",
        Some("1:27"),
    );
    let e = v(la, "application/xml", None, xml_sample().as_bytes());
    assert_eq!(
        errs(&e).iter().map(|(c, f, _)| (*c, f.as_str())).collect::<Vec<_>>(),
        [(ErrorCode::OriMismatch, "court_ori")]
    );
    assert!(e[0].location.as_deref().is_some_and(|l| l.contains(':')), "{e:#?}");

    // The AMQP user.
    let sac = court(&config, "CA034025J");
    let with_user = |user: &str| InboundProperties {
        user_id: Some(user.into()),
        ..props("text/plain", Some("cms-b/2"))
    };
    let e = rejected(examine(sac, &with_user("court-ca019015j"), &fixture("cms-b/issue.txt"), &f).verdict);
    only(&e, ErrorCode::OriMismatch, "user_id", None);
    accepted(examine(sac, &with_user("court-ca034025j"), &fixture("cms-b/issue.txt"), &f).verdict);
    let xml_user = InboundProperties {
        user_id: Some("guest".into()),
        ..props("application/xml", None)
    };
    let e = rejected(examine(sac, &xml_user, xml_sample().as_bytes(), &f).verdict);
    only(&e, ErrorCode::OriMismatch, "user_id", None);
}
