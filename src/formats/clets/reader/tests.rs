//! Reader tests: every request the translator writes for the shipped samples
//! and a hand-built order of each action reads back unchanged; every rule of
//! the reader refuses what it should, with the tag and column.

use std::path::Path;

use chrono::NaiveDate;

use crate::formats::clets::{CletsRequest, MAX_REQUEST_BYTES};
use crate::formats::fixed::Layout;
use crate::formats::xml::{XmlLimits, read_order};
use crate::mapping::clets::CletsTables;
use crate::mapping::codes::CodeLists;
use crate::model::{
    Action, DriverLicense, ErrorCode, FieldError, OrderMessage, PersonName, ProtectedPerson, RestrainedPerson, Service,
};
use crate::translate::clets::translate;
use crate::validate::{ValidationContext, validate};

const CLETS: &str = include_str!("../../../../mappings/clets.toml");
use crate::formats::fixed::fixtures::{CMS_A, CODES};
const NIC: &str = "H000000001";
const MCN: &str = "00010ABCDEFGHIJKLMNO";

fn tables() -> CletsTables {
    CletsTables::from_toml_str(CLETS, Path::new("mappings/clets.toml")).unwrap()
}

fn read(text: &str) -> Result<CletsRequest, Vec<FieldError>> {
    CletsRequest::read(text.as_bytes(), &tables())
}

/// The errors of `text`, as `(code, field, location)`.
fn errors(text: &str) -> Vec<(ErrorCode, String, Option<String>)> {
    match read(text) {
        Ok(r) => panic!("{text:?} read as {r:?}"),
        Err(e) => e.into_iter().map(|e| (e.code, e.field, e.location)).collect(),
    }
}

fn has(text: &str, code: ErrorCode, field: &str) {
    let e = errors(text);
    assert!(
        e.iter().any(|(c, f, _)| *c == code && f == field),
        "{text:?}: expected {code} {field}, got {e:?}"
    );
}

fn name(last: &str, first: &str, middle: &str) -> PersonName {
    let opt = |s: &str| (!s.is_empty()).then(|| s.into());
    PersonName {
        last: opt(last),
        first: opt(first),
        middle: opt(middle),
        suffix: None,
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A full ISSUE with every optional CLETS field filled.
fn issue() -> OrderMessage {
    let mut m = OrderMessage {
        court_ori: "CA034025J".into(),
        action: Some(Action::Issue),
        sequence: Some(1),
        ..Default::default()
    };
    let o = &mut m.order;
    o.order_number = Some("24DV01234".into());
    o.case_number = Some("24FL001234".into());
    o.order_type = Some("DV".into());
    o.issue_date = Some(date(2026, 11, 25));
    o.expiration = date(2031, 11, 25).and_hms_opt(23, 59, 0);
    o.brady = Some("Y".into());
    o.condition_codes = vec!["01".into(), "05".into(), "07".into()];
    o.condition_text = Some("Stay away. 100 yards".into());
    m.restrained_person = Some(RestrainedPerson {
        name: name("Doe", "John", "Allen"),
        birth_date: Some(date(1985, 2, 14)),
        sex: Some("M".into()),
        race: Some("W".into()),
        height: Some("510".into()),
        weight: Some("185".into()),
        eye: Some("BRO".into()),
        hair: Some("BLK".into()),
        driver_license: Some(DriverLicense {
            number: Some("D1234567".into()),
            state: Some("CA".into()),
        }),
        ..Default::default()
    });
    m.protected_persons = vec![
        ProtectedPerson {
            name: name("DOE", "JANE", "B"),
            sex: Some("F".into()),
            race: Some("W".into()),
            birth_date: Some(date(1987, 3, 2)),
            ..Default::default()
        },
        ProtectedPerson {
            name: name("DOE", "JIM", ""),
            sex: Some("M".into()),
            ..Default::default()
        },
    ];
    m
}

fn of_action(action: Action) -> OrderMessage {
    let mut m = issue();
    m.action = Some(action);
    m.sequence = Some(2);
    if !action.carries_full_order() {
        m.restrained_person = None;
        m.protected_persons.clear();
        m.order = crate::model::ProtectionOrder {
            order_number: m.order.order_number.clone(),
            order_type: Some("DV".into()),
            ..Default::default()
        };
    }
    match action {
        Action::Terminate => m.order.termination_date = Some(date(2027, 3, 1)),
        Action::Cancel => m.order.cancel_reason = Some("Entered in error".into()),
        Action::Service => {
            m.order.service = Some(Service {
                served_at: date(2026, 11, 26).and_hms_opt(14, 30, 0),
                served_by: Some("DEP R SMITH 4411".into()),
                serving_agency_ori: Some("CA0340000".into()),
                method: Some("P".into()),
            })
        }
        _ => {}
    }
    m
}

/// Translates, writes and reads back; the request must come back unchanged.
fn round_trip(m: &OrderMessage, what: &str) -> CletsRequest {
    let nic = (m.action != Some(Action::Issue)).then_some(NIC);
    let t = translate(m, nic, 0, &tables()).unwrap_or_else(|e| panic!("{what}: translate: {e:?}"));
    let text = t.request.to_text();
    let back = CletsRequest::read(text.as_bytes(), &tables()).unwrap_or_else(|e| panic!("{what}: {text}\n{e:#?}"));
    assert_eq!(back, t.request, "{what}");
    back
}

/// A hand-built order of every action translates to a request that reads back.
#[test]
fn every_action_reads_back() {
    for a in Action::ALL {
        let r = round_trip(&of_action(a), a.name());
        assert_eq!(r.mke(), tables().message_key(a));
    }
    let r = round_trip(&issue(), "issue");
    assert_eq!(r.get_all("PCO").collect::<Vec<_>>(), ["01", "05", "07"]);
    assert_eq!(r.get_all("PPN").count(), 2);
    assert_eq!(r.get("OLS"), Some("CA"));
    let mut nonexp = issue();
    nonexp.order.expiration = None;
    assert_eq!(round_trip(&nonexp, "no expiration").get("EXP"), Some("NONEXP"));
}

/// The fixtures (and `schemas/samples/`, when present), parsed, valid and
/// translated, read back unchanged.
#[test]
fn samples_read_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let codes = CodeLists::from_toml_str("codes.toml", CODES).unwrap();
    let layout = Layout::from_toml_str("cms-a-1.toml", CMS_A).unwrap();
    let mut files = Vec::new();
    for dir in [
        "tests/fixtures/xml",
        "tests/fixtures/fixed",
        "schemas/samples",
        "schemas/samples/xml",
        "schemas/samples/fixed",
    ] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    let mut checked = 0;
    for path in files {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        let body = std::fs::read(&path).unwrap();
        let parsed = match ext {
            "xml" => read_order(&body, &XmlLimits::default()),
            "txt" if !path.to_string_lossy().contains("cms-b") => layout.read_order(&body),
            _ => continue,
        };
        let ctx = ValidationContext {
            queue_court_ori: &parsed.message.court_ori,
            user_id: None,
            amqp_users: &[],
            codes: &codes,
        };
        if !parsed.is_ok() || !validate(&parsed.message, &parsed.locations, &ctx).is_empty() {
            continue;
        }
        round_trip(&parsed.message, &path.display().to_string());
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} valid samples found");
}

const EPO: &str = "EPO.CA034025J.00010ABCDEFGHIJKLMNO.NAM/DOE, JOHN.SEX/M.RAC/W.DOB/19850214.PNO/24DV01234.\
OCA/24FL001234.TYP/DV.ISD/20261125.EXP/20311125.EXT/2359.BRD/Y.PCO/01.PCO/07.PPN/DOE, JANE.PSX/F.";

/// The minimal EPO above is clean; the shape of each kind of value is checked.
#[test]
fn minimal_epo_reads() {
    let r = read(EPO).unwrap();
    assert_eq!((r.mke(), r.ori(), r.mcn()), ("EPO", "CA034025J", MCN));
    assert_eq!(r.field_count(), 15);
}

/// Size, bytes and the final '.' stop reading.
#[test]
fn frame_level_refusals() {
    let big = format!("{EPO}MIS/{}.", "A".repeat(MAX_REQUEST_BYTES));
    assert_eq!(
        errors(&big),
        [(ErrorCode::TooLong, "request".into(), Some("1:1".into()))]
    );
    let e = CletsRequest::read(b"EPO.CA034025J.\x80", &tables()).unwrap_err();
    assert_eq!(
        (e[0].code, e[0].location.as_deref()),
        (ErrorCode::InvalidFormat, Some("1:15"))
    );
    assert_eq!(errors("EPO.CA034025J\t.")[0].2.as_deref(), Some("1:14"));
    assert_eq!(errors(&EPO[..EPO.len() - 1])[0].1, "request");
    assert_eq!(errors("")[0].1, "request");
    assert_eq!(errors(".")[0], (ErrorCode::Missing, "ORI".into(), Some("1:2".into())));
}

/// The header: known key, ORI, MCN.
#[test]
fn header_is_checked() {
    has(&EPO.replacen("EPO.", "ZPO.", 1), ErrorCode::InvalidCode, "MKE");
    has(
        &EPO.replacen("CA034025J", "CA03402", 1),
        ErrorCode::InvalidFormat,
        "ORI",
    );
    has(
        &EPO.replacen("CA034025J", "ca034025j", 1),
        ErrorCode::InvalidFormat,
        "ORI",
    );
    has(
        &EPO.replacen(MCN, "00010ABCDEFGHIJKLMN", 1),
        ErrorCode::InvalidFormat,
        "MCN",
    );
    has(
        &EPO.replacen(MCN, "0001XABCDEFGHIJKLMNO", 1),
        ErrorCode::InvalidFormat,
        "MCN",
    );
    has(
        &EPO.replacen(MCN, "00010ABCDEFGHIJKLMN1", 1),
        ErrorCode::InvalidFormat,
        "MCN",
    );
    assert_eq!(errors("EPO.CA034025J.")[0].1, "MCN");
    let e = errors(&EPO.replacen(MCN, "X", 1));
    assert_eq!(e[0].2.as_deref(), Some("1:15"), "{e:?}");
}

/// Unknown tags, tags the key does not carry and fields without '/'.
#[test]
fn tags_are_checked() {
    has(&format!("{EPO}XYZ/1."), ErrorCode::InvalidFormat, "XYZ");
    has(
        &EPO.replacen(".NAM/", ".NIC/H000000001.NAM/", 1),
        ErrorCode::InvalidFormat,
        "NIC",
    );
    has(&format!("{EPO}DOC/20270101."), ErrorCode::InvalidFormat, "DOC");
    has(&format!("{EPO}MIS."), ErrorCode::InvalidFormat, "request");
    has(&format!("{EPO}/X."), ErrorCode::InvalidFormat, "request");
    let e = errors(&format!("{EPO}XYZ/1."));
    assert_eq!(e[0].2.as_deref(), Some(format!("1:{}", EPO.len() + 1).as_str()));
}

/// Fields out of table order are refused (E01), including a group member
/// before any PPN and a PPN after MIS.
#[test]
fn order_is_checked() {
    has(
        &EPO.replacen("SEX/M.RAC/W.", "RAC/W.SEX/M.", 1),
        ErrorCode::InvalidFormat,
        "SEX",
    );
    has(
        &EPO.replacen("PNO/24DV01234.OCA/24FL001234.", "OCA/24FL001234.PNO/24DV01234.", 1),
        ErrorCode::InvalidFormat,
        "PNO",
    );
    has(
        &EPO.replacen("PCO/01.PCO/07.", "PCO/01.BRD/Y.PCO/07.", 1),
        ErrorCode::InvalidFormat,
        "BRD",
    );
    has(
        &EPO.replacen("PPN/DOE, JANE.PSX/F.", "PSX/F.PPN/DOE, JANE.PSX/F.", 1),
        ErrorCode::InvalidFormat,
        "PSX",
    );
    has(
        &format!("{EPO}MIS/X.PPN/DOE, JIM.PSX/M."),
        ErrorCode::InvalidFormat,
        "PPN",
    );
    has(&format!("{EPO}PPB/19800101.PSX/M."), ErrorCode::InvalidFormat, "PSX");
    let cpo = format!("CPO.CA034025J.{MCN}.PNO/24DV01234.NIC/{NIC}.DOC/20270301.");
    has(&cpo, ErrorCode::InvalidFormat, "NIC");
}

/// Only PCO and the protected-person group repeat, at most 9 times each.
#[test]
fn repeats_are_checked() {
    has(
        &EPO.replacen("SEX/M.", "SEX/M.SEX/M.", 1),
        ErrorCode::InvalidFormat,
        "SEX",
    );
    has(&format!("{EPO}PSX/F."), ErrorCode::InvalidFormat, "PSX");
    let pcos: String = (1..=10).map(|i| format!("PCO/0{}.", i.min(9))).collect();
    has(
        &EPO.replacen("PCO/01.PCO/07.", &pcos, 1),
        ErrorCode::InvalidFormat,
        "PCO[9]",
    );
    let nine: String = (1..=9).map(|_| "PPN/A.PSX/F.").collect();
    read(&format!("{EPO}{nine}").replacen("PPN/DOE, JANE.PSX/F.", "", 1)).unwrap();
    let ten: String = (1..=10).map(|_| "PPN/A.PSX/F.").collect();
    let e = errors(&format!("{EPO}{ten}").replacen("PPN/DOE, JANE.PSX/F.", "", 1));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "PPN[9]");
    // Groups may skip optional members and PPN may directly follow PPN.
    let r = read(&format!("{EPO}PPN/B.PSX/M.PPB/20000101.PPN/C.PSX/U.PPR/W.")).unwrap();
    assert_eq!(r.get_all("PPN").collect::<Vec<_>>(), ["DOE, JANE", "B", "C"]);
}

/// Required fields per key, per group, and OLS with OLN.
#[test]
fn required_fields_are_checked() {
    has(&EPO.replacen("DOB/19850214.", "", 1), ErrorCode::Missing, "DOB");
    has(&EPO.replacen("PCO/01.PCO/07.", "", 1), ErrorCode::Missing, "PCO");
    has(&EPO.replacen("PPN/DOE, JANE.PSX/F.", "", 1), ErrorCode::Missing, "PPN");
    has(&format!("{EPO}PPN/B.PPR/W."), ErrorCode::Missing, "PSX[1]");
    has(
        &EPO.replacen("DOB/19850214.", "DOB/19850214.OLN/D1234567.", 1),
        ErrorCode::Missing,
        "OLS",
    );
    read(&EPO.replacen("DOB/19850214.", "DOB/19850214.OLN/D1234567.OLS/CA.", 1)).unwrap();
    let mpo = EPO.replacen(
        "EPO.CA034025J.00010ABCDEFGHIJKLMNO.",
        &format!("MPO.CA034025J.{MCN}."),
        1,
    );
    has(&mpo, ErrorCode::Missing, "NIC");
    read(&mpo.replacen("NAM/", &format!("NIC/{NIC}.NAM/"), 1)).unwrap();
    for (key, text) in [
        (
            "CPO",
            format!("CPO.CA034025J.{MCN}.NIC/{NIC}.PNO/24DV01234.DOC/20270301."),
        ),
        (
            "XPO",
            format!("XPO.CA034025J.{MCN}.NIC/{NIC}.PNO/24DV01234.REA/ENTERED IN ERROR."),
        ),
        (
            "SPO",
            format!(
                "SPO.CA034025J.{MCN}.NIC/{NIC}.PNO/24DV01234.SVD/20261126.SVT/1430.SVB/DEP R SMITH.SVA/CA0340000.SVM/P."
            ),
        ),
    ] {
        read(&text).unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let without_last = text[..text.len() - 1].rsplit_once('.').unwrap().0.to_string() + ".";
        assert!(
            errors(&without_last).iter().any(|(c, ..)| *c == ErrorCode::Missing),
            "{key}"
        );
    }
}

/// Empty values, maxima, lowercase, shapes, dates and codes.
#[test]
fn values_are_checked() {
    has(&format!("{EPO}MIS/."), ErrorCode::InvalidFormat, "MIS");
    has(&format!("{EPO}MIS/{}.", "A".repeat(501)), ErrorCode::TooLong, "MIS");
    read(&format!("{EPO}MIS/{}.", "A".repeat(500))).unwrap();
    has(
        &EPO.replacen("NAM/DOE, JOHN", &format!("NAM/{}", "A".repeat(31)), 1),
        ErrorCode::TooLong,
        "NAM",
    );
    has(
        &EPO.replacen("PNO/24DV01234", "PNO/24DV0123456789XY", 1),
        ErrorCode::TooLong,
        "PNO",
    );
    has(
        &EPO.replacen("PNO/24DV01234", "PNO/24DV 1234", 1),
        ErrorCode::InvalidFormat,
        "PNO",
    );
    has(
        &EPO.replacen("DOE, JOHN", "Doe, John", 1),
        ErrorCode::InvalidFormat,
        "NAM",
    );
    has(
        &EPO.replacen("DOB/19850214", "DOB/1985021", 1),
        ErrorCode::InvalidFormat,
        "DOB",
    );
    has(
        &EPO.replacen("ISD/20261125", "ISD/20260230", 1),
        ErrorCode::InvalidDate,
        "ISD",
    );
    has(
        &EPO.replacen("EXT/2359", "EXT/2460", 1),
        ErrorCode::InvalidFormat,
        "EXT",
    );
    has(
        &EPO.replacen("EXP/20311125.EXT/2359", "EXP/NONEXP.EXT/2359", 1),
        ErrorCode::InvalidFormat,
        "EXT",
    );
    read(&EPO.replacen("EXP/20311125.EXT/2359", "EXP/NONEXP", 1)).unwrap();
    has(&EPO.replacen("SEX/M", "SEX/Q", 1), ErrorCode::InvalidCode, "SEX");
    has(&EPO.replacen("TYP/DV", "TYP/XX", 1), ErrorCode::InvalidCode, "TYP");
    has(&EPO.replacen("PCO/07", "PCO/10", 1), ErrorCode::InvalidCode, "PCO[1]");
    has(&EPO.replacen("PSX/F", "PSX/Q", 1), ErrorCode::InvalidCode, "PSX[0]");
    has(
        &EPO.replacen("DOB/19850214.", "DOB/19850214.HGT/5X0.", 1),
        ErrorCode::InvalidFormat,
        "HGT",
    );
    let spo = format!("SPO.CA034025J.{MCN}.NIC/H00000001.PNO/24DV01234.SVD/20261126.SVT/1430.SVB/X.SVA/CA03.SVM/Z.");
    has(&spo, ErrorCode::InvalidFormat, "NIC");
    has(&spo, ErrorCode::InvalidFormat, "SVA");
    has(&spo, ErrorCode::InvalidCode, "SVM");
    // A value may carry '/', since only the first one ends the tag.
    assert_eq!(read(&format!("{EPO}MIS/A/B.")).unwrap().get("MIS"), Some("A/B"));
}

/// Every problem is reported, each with its column, in one pass.
#[test]
fn every_problem_is_reported() {
    let text = EPO.replacen("SEX/M", "SEX/Q", 1).replacen("DOB/19850214", "DOB/X", 1);
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    let col = text.find("SEX/").unwrap() + 1;
    assert_eq!(e[0].2, Some(format!("1:{col}")));
}
