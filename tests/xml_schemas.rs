//! The XSDs in `schemas/` (ICD §2 and §4) against the samples, the fixtures,
//! what Porter writes, and Porter's own XML reader.
//!
//! Every check that calls `xmllint --schema schemas/por.xsd` needs
//! libxml2-utils. The verdict fixtures live in `tests/fixtures/xml/verdict/`:
//! `valid/` and `invalid/` must get the same verdict from `xmllint` and from
//! [`read_order`]; `stricter/` holds the documents the XSD accepts and Porter
//! refuses on purpose (see `schemas/README.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::DateTime;
use porter::formats::Parsed;
use porter::formats::fixed::Layout;
use porter::formats::xml::{XmlLimits, read_order, read_status, write_order, write_status};
use porter::mapping::codes::CodeLists;
use porter::model::{ErrorCode, FieldError, PartnerId, PartnerRecordId, StatusKind, StatusMessage};
use porter::validate::{ValidationContext, validate};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.xml` (or other `ext`) files directly in `dir`, sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no .{ext} files in {dir}");
    found
}

fn name(path: &Path) -> String {
    path.strip_prefix(repo()).unwrap_or(path).display().to_string()
}

/// `xmllint --schema schemas/por.xsd` on a document: `Ok` when it is valid,
/// `Err(xmllint's report)` when it is not well formed or not valid. Panics
/// when xmllint cannot run or the schema does not compile.
fn xmllint(document: &[u8]) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(repo().join("schemas/por.xsd"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint runs (install libxml2-utils)");
    child.stdin.take().unwrap().write_all(document).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        // 1: not well formed; 3: not valid against the schema.
        Some(1 | 3) => Err(report),
        other => panic!("xmllint failed ({other:?}): {report}"),
    }
}

fn xmllint_file(path: &Path) -> Result<(), String> {
    xmllint(&std::fs::read(path).unwrap())
}

fn read(body: &[u8]) -> Parsed {
    read_order(body, &XmlLimits::default())
}

fn codes() -> CodeLists {
    CodeLists::load(repo().join("mappings/codes.toml")).expect("mappings/codes.toml loads")
}

/// Porter's stateless validation of a parsed message, for court CA034025J.
fn porter_errors(parsed: &Parsed, codes: &CodeLists) -> Vec<FieldError> {
    let ctx = ValidationContext {
        queue_court_ori: "CA034025J",
        user_id: None,
        amqp_users: &[],
        codes,
    };
    let mut errors = parsed.errors.clone();
    errors.extend(validate(&parsed.message, &parsed.locations, &ctx));
    errors
}

const ACTIONS: [&str; 5] = ["issue", "modify", "service", "terminate", "cancel"];

/// Every XML sample in `schemas/samples/` is valid against the XSD, reads
/// without a format error, and passes Porter's validation: the samples are
/// normative, so they must be right by every check there is.
#[test]
fn samples_are_valid_by_every_check() {
    let codes = codes();
    for path in files("schemas/samples", "xml") {
        if let Err(report) = xmllint_file(&path) {
            panic!("{}: {report}", name(&path));
        }
        let parsed = read(&std::fs::read(&path).unwrap());
        let errors = porter_errors(&parsed, &codes);
        assert!(errors.is_empty(), "{}: {errors:#?}", name(&path));
    }
    for action in ACTIONS {
        assert!(
            repo().join(format!("schemas/samples/{action}.xml")).is_file(),
            "{action}.xml"
        );
    }
}

/// Every XML fixture meant to be valid (the ICD §2 sample fixture and
/// `verdict/valid/`) is valid against the XSD and passes Porter's
/// validation, so that `porter validate` must accept them too.
#[test]
fn valid_fixtures_are_valid() {
    let codes = codes();
    let mut paths = vec![repo().join("tests/fixtures/xml/issue-sample.xml")];
    paths.extend(files("tests/fixtures/xml/verdict/valid", "xml"));
    for path in paths {
        if let Err(report) = xmllint_file(&path) {
            panic!("{}: {report}", name(&path));
        }
        let errors = porter_errors(&read(&std::fs::read(&path).unwrap()), &codes);
        assert!(errors.is_empty(), "{}: {errors:#?}", name(&path));
    }
}

/// The ICD's own samples, taken from `../shared/ICD.md` when it is there:
/// the §2 order sample with `por:OrderImage` removed, and the §4 status
/// sample, are valid; the §2 sample without its image is exactly the
/// fixture `tests/fixtures/xml/issue-sample.xml`.
#[test]
fn icd_samples_validate() {
    let icd = repo().join("../shared/ICD.md");
    let Ok(text) = std::fs::read_to_string(&icd) else {
        eprintln!(
            "{} not found; the fixture copy of the §2 sample is checked elsewhere",
            icd.display()
        );
        return;
    };
    let blocks: Vec<&str> = text
        .split("```xml\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("closed block")])
        .collect();
    let order = blocks
        .iter()
        .find(|b| b.contains("<por:ProtectiveOrderMessage"))
        .expect("§2 sample");
    let without_image: String = order
        .lines()
        .filter(|l| !l.contains("<por:OrderImage"))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Err(report) = xmllint(without_image.as_bytes()) {
        panic!("ICD §2 sample without its image: {report}");
    }
    let fixture = std::fs::read_to_string(repo().join("tests/fixtures/xml/issue-sample.xml")).unwrap();
    assert_eq!(without_image, fixture);
    let status = blocks
        .iter()
        .find(|b| b.contains("<por:OrderStatusMessage"))
        .expect("§4 sample");
    if let Err(report) = xmllint(status.as_bytes()) {
        panic!("ICD §4 sample: {report}");
    }
    assert!(read_status(status.as_bytes()).is_ok());
}

/// A status of every kind, the way the broker writes it (with routed
/// partners, a partner, record ids, errors and warnings with and without
/// a location, text that needs escaping, offsets east and west of UTC), is
/// valid against the XSD and reads back unchanged.
#[test]
fn emitted_statuses_validate() {
    let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap();
    let base = StatusMessage {
        court_ori: "CA034025J".into(),
        order_number: Some("24DV01234".into()),
        sequence: Some(1),
        correlates_to: "cms-000123".into(),
        status_sequence: 1,
        status_at: at("2026-11-25T10:15:01.250-08:00"),
        status: StatusKind::Accepted,
        partner: None,
        routed_partners: vec![],
        partner_record_ids: vec![],
        errors: vec![],
        warnings: vec![],
    };
    let errors = vec![
        FieldError::new(
            ErrorCode::InvalidDate,
            "order.issue_date",
            "\"2026-02-30\" <is> & not a real date",
        )
        .at("15:30"),
        FieldError::new(
            ErrorCode::Missing,
            "protected_persons",
            "at least one protected person is required",
        ),
        FieldError::new(
            ErrorCode::TooLong,
            "restrained_person.name.last",
            "31 characters; at most 30",
        )
        .at("2:2"),
    ];
    // Every code Porter writes today (the XSD takes any upper-case code, so
    // a new one needs no schema change).
    let all_codes = [
        ErrorCode::Missing,
        ErrorCode::InvalidFormat,
        ErrorCode::InvalidCode,
        ErrorCode::TooLong,
        ErrorCode::InvalidDate,
        ErrorCode::InvalidSequence,
        ErrorCode::OriMismatch,
        ErrorCode::DuplicateConflict,
        ErrorCode::SequenceConflict,
        ErrorCode::OrderClosed,
        ErrorCode::SequenceGap,
        ErrorCode::UnknownOrder,
        ErrorCode::UnknownCourt,
        ErrorCode::PartnerRejected,
        ErrorCode::RetriesExhausted,
        ErrorCode::Shortened,
        ErrorCode::Sanitized,
    ];
    let statuses = vec![
        StatusMessage {
            routed_partners: vec![PartnerId::Clets, PartnerId::Doj, PartnerId::Lea("CA0341100".into())],
            warnings: vec![FieldError::new(ErrorCode::Shortened, "restrained_person.name", "NAM shortened").at("26:5")],
            ..base.clone()
        },
        StatusMessage {
            order_number: None,
            sequence: None,
            status: StatusKind::Rejected,
            errors: errors.clone(),
            ..base.clone()
        },
        StatusMessage {
            // A rejected message's order number is echoed as it came.
            order_number: Some("24dv 0123456789012".into()),
            status: StatusKind::Rejected,
            errors: all_codes
                .iter()
                .map(|&c| FieldError::new(c, "message", c.as_str()))
                .collect(),
            ..base.clone()
        },
        StatusMessage {
            status: StatusKind::ConflictRejected,
            correlates_to: "a message id with spaces & <symbols>".into(),
            errors: vec![FieldError::new(
                ErrorCode::DuplicateConflict,
                "message_id",
                "different body",
            )],
            ..base.clone()
        },
        StatusMessage {
            status_sequence: 2,
            status_at: at("2026-11-25T18:15:01.250+00:00"),
            status: StatusKind::PartnerAccepted,
            partner: Some(PartnerId::Clets),
            partner_record_ids: vec![
                PartnerRecordId {
                    scheme: "NIC".into(),
                    id: "H123456789".into(),
                },
                PartnerRecordId {
                    scheme: "FCN".into(),
                    id: "0340000012345".into(),
                },
            ],
            ..base.clone()
        },
        StatusMessage {
            status_sequence: 3,
            status: StatusKind::PartnerAccepted,
            partner: Some(PartnerId::Doj),
            partner_record_ids: vec![PartnerRecordId {
                scheme: "tracking_id".into(),
                id: "DOJ-2026-000042".into(),
            }],
            ..base.clone()
        },
        StatusMessage {
            status_sequence: 2,
            status_at: at("2026-11-26T05:45:00.000+13:45"),
            status: StatusKind::PartnerRejected,
            partner: Some(PartnerId::Clets),
            errors: vec![FieldError::new(
                ErrorCode::PartnerRejected,
                "order",
                "E05 duplicate active order",
            )],
            ..base.clone()
        },
        StatusMessage {
            status_sequence: 4,
            status: StatusKind::DeadLettered,
            partner: Some(PartnerId::Lea("CA0341100".into())),
            errors: vec![FieldError::new(
                ErrorCode::SequenceGap,
                "sequence",
                "sequence 2 did not arrive within 1 h",
            )],
            warnings: vec![FieldError::new(
                ErrorCode::Sanitized,
                "order.condition_text",
                "'.' replaced",
            )],
            ..base.clone()
        },
    ];
    let kinds: Vec<StatusKind> = statuses.iter().map(|s| s.status).collect();
    for kind in [
        StatusKind::Accepted,
        StatusKind::Rejected,
        StatusKind::ConflictRejected,
        StatusKind::PartnerAccepted,
        StatusKind::PartnerRejected,
        StatusKind::DeadLettered,
    ] {
        assert!(kinds.contains(&kind), "{kind} is covered");
    }
    for status in statuses {
        let body = write_status(&status);
        if let Err(report) = xmllint(&body) {
            panic!("{}\n{report}", String::from_utf8_lossy(&body));
        }
        assert_eq!(read_status(&body).unwrap(), status);
    }
}

/// What Porter writes for an order (`write_order`) is valid against the
/// XSD, for every XML sample and valid fixture read back, and for every
/// fixed-width sample once its `sent_at` (the AMQP timestamp) is set.
#[test]
fn emitted_orders_validate() {
    let mut paths = files("schemas/samples", "xml");
    paths.extend(files("tests/fixtures/xml/verdict/valid", "xml"));
    for path in paths {
        let parsed = read(&std::fs::read(&path).unwrap());
        assert!(parsed.is_ok(), "{}: {:#?}", name(&path), parsed.errors);
        let body = write_order(&parsed.message);
        if let Err(report) = xmllint(&body) {
            panic!(
                "write_order of {}:\n{}\n{report}",
                name(&path),
                String::from_utf8_lossy(&body)
            );
        }
        assert_eq!(read(&body).message, parsed.message, "{}", name(&path));
    }
    let layout = cms_a();
    for action in ACTIONS {
        let mut parsed = layout.read_order(&sample(&format!("{action}.txt")));
        assert!(parsed.is_ok(), "{action}.txt: {:#?}", parsed.errors);
        parsed.message.sent_at = Some(DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap());
        let body = write_order(&parsed.message);
        if let Err(report) = xmllint(&body) {
            panic!(
                "write_order of {action}.txt:\n{}\n{report}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

fn cms_a() -> Layout {
    Layout::load(repo().join("schemas/layouts/cms-a-1.toml")).expect("cms-a/1 loads")
}

fn sample(file: &str) -> Vec<u8> {
    std::fs::read(repo().join("schemas/samples").join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Each fixed-width sample is fully padded `cms-a/1` (every record exactly
/// 200 ASCII bytes and LF), parses without errors, and gives the same
/// canonical order as the XML sample of the same action, apart from
/// `sent_at` (which fixed-width takes from the AMQP timestamp). Together
/// the samples are one lifecycle of order 24DV01234 of court CA034025J.
#[test]
fn fixed_width_samples_match_the_xml_ones() {
    let layout = cms_a();
    let mut sequences = Vec::new();
    for action in ACTIONS {
        let fixed = sample(&format!("{action}.txt"));
        assert!(fixed.ends_with(b"\n"), "{action}.txt ends with LF");
        for (i, record) in fixed[..fixed.len() - 1].split(|&b| b == b'\n').enumerate() {
            assert_eq!(record.len(), 200, "{action}.txt record {}", i + 1);
            assert!(
                record.iter().all(|b| (0x20..0x7F).contains(b)),
                "{action}.txt record {} is printable ASCII",
                i + 1
            );
        }
        let from_fixed = layout.read_order(&fixed);
        assert!(from_fixed.is_ok(), "{action}.txt: {:#?}", from_fixed.errors);
        let from_xml = read(&sample(&format!("{action}.xml")));
        assert!(from_xml.is_ok(), "{action}.xml: {:#?}", from_xml.errors);
        let mut xml = from_xml.message;
        assert!(xml.sent_at.is_some(), "{action}.xml has its SentDateTime");
        xml.sent_at = None;
        assert_eq!(from_fixed.message, xml, "{action}: fixed-width and XML differ");
        assert_eq!(
            (xml.court_ori.as_str(), xml.order_number()),
            ("CA034025J", Some("24DV01234"))
        );
        sequences.push((action, xml.action.unwrap().name(), xml.sequence.unwrap()));
    }
    assert_eq!(
        sequences,
        [
            ("issue", "ISSUE", 1),
            ("modify", "MODIFY", 2),
            ("service", "SERVICE", 3),
            ("terminate", "TERMINATE", 4),
            // The alternative end of the same lifecycle (schemas/README.md).
            ("cancel", "CANCEL", 4),
        ]
    );
}

/// Porter's verdict on an XML order: its reader's format errors, each
/// checked to carry a `line:column` location.
fn reader_verdict(path: &Path, body: &[u8]) -> Result<(), Vec<FieldError>> {
    let parsed = read(body);
    for error in &parsed.errors {
        let located = error.location.as_deref().is_some_and(|l| {
            l.split_once(':').is_some_and(|(line, column)| {
                line.parse::<u32>().is_ok_and(|n| n > 0) && column.parse::<u32>().is_ok_and(|n| n > 0)
            })
        });
        assert!(located, "{}: error without line:column: {error}", name(path));
    }
    if parsed.errors.is_empty() {
        Ok(())
    } else {
        Err(parsed.errors)
    }
}

/// The verdict fixtures get the same verdict from `xmllint --schema` and
/// from Porter's reader (`read_order` with format errors = invalid), and
/// the verdict their folder names: `valid/` valid, `invalid/` invalid (each
/// of Porter's errors located at `line:column`). The older fixtures
/// `broken.xml`, `dtd.xml` and `wrong-ns.xml` are run as invalid too.
#[test]
fn xmllint_and_the_reader_agree() {
    let mut cases: Vec<(PathBuf, bool)> = Vec::new();
    cases.extend(
        files("tests/fixtures/xml/verdict/valid", "xml")
            .into_iter()
            .map(|p| (p, true)),
    );
    cases.extend(
        files("tests/fixtures/xml/verdict/invalid", "xml")
            .into_iter()
            .map(|p| (p, false)),
    );
    for old in ["broken.xml", "dtd.xml", "wrong-ns.xml"] {
        cases.push((repo().join("tests/fixtures/xml").join(old), false));
    }
    cases.push((repo().join("tests/fixtures/xml/issue-sample.xml"), true));
    let mut disagreements = Vec::new();
    for (path, expected) in &cases {
        let body = std::fs::read(path).unwrap();
        let xsd = xmllint(&body);
        let porter = reader_verdict(path, &body);
        if xsd.is_ok() != *expected || porter.is_ok() != *expected {
            disagreements.push(format!(
                "{}: expected {}; xmllint: {:?}; reader: {:?}",
                name(path),
                if *expected { "valid" } else { "invalid" },
                xsd.err(),
                porter.err()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} fixtures disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// For every length or pattern the XSD fixes, a value at the bound and one
/// past it get the same verdict from `xmllint` and from the reader (valid,
/// then invalid with `TOO_LONG` or `INVALID_FORMAT` on the field), and so do
/// values whose white-space runs only fit once collapsed (`xs:token`).
#[test]
fn bounds_agree_with_the_xsd() {
    let sample = std::fs::read_to_string(repo().join("tests/fixtures/xml/issue-sample.xml")).unwrap();
    let cancel = std::fs::read_to_string(repo().join("schemas/samples/cancel.xml")).unwrap();
    let service = std::fs::read_to_string(repo().join("schemas/samples/service.xml")).unwrap();
    // (document, value, what follows it, field, maximum, error code past it)
    let bounds: [(&str, &str, &str, &str, usize, ErrorCode); 9] = [
        (&sample, "24DV01234", "<", "order.order_number", 15, ErrorCode::TooLong),
        (&sample, "24FL001234", "<", "order.case_number", 20, ErrorCode::TooLong),
        (
            &sample,
            "DOE",
            "</nc:PersonSurName>",
            "restrained_person.name.last",
            30,
            ErrorCode::TooLong,
        ),
        (
            &sample,
            "JOHN",
            "<",
            "restrained_person.name.first",
            20,
            ErrorCode::TooLong,
        ),
        (
            &sample,
            "ALLEN",
            "<",
            "restrained_person.name.middle",
            20,
            ErrorCode::TooLong,
        ),
        (
            &sample,
            "D1234567",
            "<",
            "restrained_person.driver_license.number",
            20,
            ErrorCode::TooLong,
        ),
        (
            &sample,
            "STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.",
            "<",
            "order.condition_text",
            500,
            ErrorCode::TooLong,
        ),
        (
            &cancel,
            "ENTERED IN ERROR - WRONG CASE NUMBER",
            "<",
            "order.cancel_reason",
            60,
            ErrorCode::TooLong,
        ),
        (
            &service,
            "DEP R SMITH 4411",
            "<",
            "order.service.served_by",
            30,
            ErrorCode::TooLong,
        ),
    ];
    let mut problems = Vec::new();
    for (document, value, closing, field, max, code) in bounds {
        let target = format!(">{value}{closing}");
        let fill = |len: usize| -> String {
            // Upper-case letters and digits fit every pattern here.
            (0..len)
                .map(|i| {
                    if i % 7 == 3 {
                        '7'
                    } else {
                        (b'A' + (i % 26) as u8) as char
                    }
                })
                .collect()
        };
        let at_max = fill(max);
        // Longer as written, but a run of spaces counts once.
        let spaced = format!("{}    {}", &at_max[..max / 2], &at_max[max / 2 + 1..]);
        let cases = [
            (format!(">{at_max}{closing}"), None),
            (format!(">  {at_max}\n  {closing}"), None),
            (format!(">{}{closing}", fill(max + 1)), Some(code)),
        ];
        let spaced_case = (
            format!(">{spaced}{closing}"),
            if field == "order.order_number" {
                Some(ErrorCode::InvalidFormat)
            } else {
                None
            },
        );
        for (replacement, expected) in cases.into_iter().chain([spaced_case]) {
            let body = document.replacen(&target, &replacement, 1);
            assert_ne!(body, *document, "{target}");
            let xsd_ok = xmllint(body.as_bytes()).is_ok();
            let parsed = read(body.as_bytes());
            let found: Vec<(ErrorCode, &str)> = parsed.errors.iter().map(|e| (e.code, e.field.as_str())).collect();
            let want: Vec<(ErrorCode, &str)> = expected.map(|c| (c, field)).into_iter().collect();
            if xsd_ok != expected.is_none() || found != want {
                problems.push(format!(
                    "{field} = {replacement:?}: xmllint valid: {xsd_ok}; reader: {found:?}; expected {want:?}"
                ));
            }
        }
    }
    // Patterns: ORIs and the order-number alphabet.
    for (document, target, replacement, field) in [
        (&sample, ">CA034025J<", ">CA034025<", "court_ori"),
        (&sample, ">CA034025J<", ">CA034025JX<", "court_ori"),
        (&sample, ">CA034025J<", ">CA03402SJ<", ""),
        (&sample, ">CA034025J<", ">ca034025j<", "court_ori"),
        (&sample, ">24DV01234<", ">24DV_01234<", "order.order_number"),
        (&sample, ">24DV01234<", ">24DV 01234<", "order.order_number"),
        (&sample, ">24DV01234<", ">-<", ""),
        (
            &service,
            ">CA0340000<",
            ">CA034000<",
            "order.service.serving_agency_ori",
        ),
        (&service, ">CA0340000<", ">CA0340000 <", ""),
    ] {
        let body = document.replacen(target, replacement, 1);
        let xsd_ok = xmllint(body.as_bytes()).is_ok();
        let parsed = read(body.as_bytes());
        let found: Vec<(ErrorCode, &str)> = parsed.errors.iter().map(|e| (e.code, e.field.as_str())).collect();
        let want: Vec<(ErrorCode, &str)> = if field.is_empty() {
            vec![]
        } else {
            vec![(ErrorCode::InvalidFormat, field)]
        };
        if xsd_ok != field.is_empty() || found != want {
            problems.push(format!(
                "{replacement:?}: xmllint valid: {xsd_ok}; reader: {found:?}; expected {want:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The documents in `verdict/stricter/` are valid against the XSD, and
/// Porter refuses them on purpose: a DOCTYPE or processing instruction
/// (ICD §2), `xsi:type`, a document element other than
/// `por:ProtectiveOrderMessage` (an XSD cannot fix the root), base64 with a
/// stray character, an image whose digest does not match. If one of these
/// starts failing, either the XSD or the reader changed: update
/// `schemas/README.md`.
#[test]
fn porter_is_stricter_only_where_documented() {
    let paths = files("tests/fixtures/xml/verdict/stricter", "xml");
    assert_eq!(paths.len(), 7);
    for path in paths {
        let body = std::fs::read(&path).unwrap();
        if let Err(report) = xmllint(&body) {
            panic!("{}: the XSD refuses it now: {report}", name(&path));
        }
        assert!(!read(&body).errors.is_empty(), "{}: Porter accepts it", name(&path));
    }
}

/// `porter validate` (the broker's own stateless verdict, offline) agrees
/// with `xmllint` on every verdict fixture: exit code 0 for `valid/`, 1 for
/// `invalid/`; and it accepts every normative sample, XML and fixed-width.
/// Skipped, with a note on stderr, while the binary has no `validate`
/// subcommand.
#[test]
fn porter_validate_agrees_with_xmllint() {
    let porter = env!("CARGO_BIN_EXE_porter");
    let help = Command::new(porter)
        .args(["validate", "--help"])
        .output()
        .expect("porter runs");
    if !help.status.success() {
        eprintln!("SKIPPED: the porter binary has no `validate` subcommand yet");
        return;
    }
    let validate = |path: &Path| -> Option<i32> {
        let out = Command::new(porter)
            .current_dir(repo())
            .args([
                "validate",
                "--court",
                "CA034025J",
                "--config",
                "deploy/local/porter.toml",
            ])
            .arg(path)
            .output()
            .expect("porter runs");
        out.status.code()
    };
    let mut cases: Vec<(PathBuf, i32)> = Vec::new();
    cases.extend(
        files("tests/fixtures/xml/verdict/valid", "xml")
            .into_iter()
            .map(|p| (p, 0)),
    );
    cases.extend(
        files("tests/fixtures/xml/verdict/invalid", "xml")
            .into_iter()
            .map(|p| (p, 1)),
    );
    let mut disagreements = Vec::new();
    for (path, expected) in &cases {
        let xsd = if xmllint_file(path).is_ok() { 0 } else { 1 };
        let code = validate(path);
        if code != Some(*expected) || xsd != *expected {
            disagreements.push(format!(
                "{}: expected exit {expected}; porter validate: {code:?}; xmllint: {xsd}",
                name(path)
            ));
        }
    }
    for path in files("schemas/samples", "xml")
        .into_iter()
        .chain(files("schemas/samples", "txt"))
    {
        if validate(&path) != Some(0) {
            disagreements.push(format!("{}: porter validate refuses a normative sample", name(&path)));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// The court simulator's XML (what `porter sim court` publishes) is valid
/// against the XSD and reads without a format error, over many generated
/// orders and every action.
#[test]
fn simulated_court_xml_validates() {
    use porter_simulators::court::orders::OrderGenerator;
    use porter_simulators::court::{CourtFormat, SimCourt, to_xml};

    let court = SimCourt {
        ori: "CA034025J".into(),
        name: String::new(),
        format: CourtFormat::Xml,
    };
    let now = DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap();
    let mut generator = OrderGenerator::new(&court, 7, now, "xsd");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 0..60 {
        let mut messages = generator.next_order(true, false);
        let last = messages.last().unwrap().clone();
        messages.push(if i % 2 == 0 {
            generator.terminate(&last)
        } else {
            generator.cancel(&last)
        });
        for (j, message) in messages.iter().enumerate() {
            let body = to_xml(message);
            let parsed = read(&body);
            assert!(
                parsed.is_ok(),
                "{:#?}\n{}",
                parsed.errors,
                String::from_utf8_lossy(&body)
            );
            let path = dir.path().join(format!("{i:03}-{j}.xml"));
            std::fs::write(&path, body).unwrap();
            paths.push(path);
        }
    }
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(repo().join("schemas/por.xsd"))
        .args(&paths)
        .output()
        .expect("xmllint runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
