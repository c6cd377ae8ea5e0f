//! Writer tests: write then read gives the same order for both shipped
//! layouts and all five actions; the fixtures are exactly what the writer
//! writes; and what cannot be written faithfully is refused.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};

use super::wrap;
use crate::formats::fixed::Layout;
use crate::mapping::code_map::CodeMap;
use crate::mapping::codes::CodeLists;
use crate::model::{
    Action, Address, ErrorCode, FieldError, OrderImage, OrderMessage, PersonName, ProtectedPerson, ProtectionOrder,
    Service,
};

use crate::formats::fixed::fixtures::{
    CANCEL, CMS_A, CMS_B, CMS_B_CANCEL, CMS_B_ISSUE, CMS_B_MAP, CMS_B_MODIFY, CMS_B_SERVICE, CMS_B_TERMINATE, CODES,
    ISSUE, MODIFY, SERVICE, TERMINATE,
};

/// (layout, action, fixture) for every shipped fixture.
const FIXTURES: &[(&str, &str, &[u8])] = &[
    ("a", "issue", ISSUE),
    ("a", "modify", MODIFY),
    ("a", "terminate", TERMINATE),
    ("a", "cancel", CANCEL),
    ("a", "service", SERVICE),
    ("b", "issue", CMS_B_ISSUE),
    ("b", "modify", CMS_B_MODIFY),
    ("b", "terminate", CMS_B_TERMINATE),
    ("b", "cancel", CMS_B_CANCEL),
    ("b", "service", CMS_B_SERVICE),
];

fn cms_a() -> Layout {
    Layout::from_toml_str("cms-a-1.toml", CMS_A).unwrap()
}

fn cms_b_map() -> Arc<CodeMap> {
    let codes = CodeLists::from_toml_str("codes.toml", CODES).unwrap();
    Arc::new(CodeMap::from_toml_str("cms-b.toml", CMS_B_MAP, &codes).unwrap())
}

fn cms_b() -> Layout {
    Layout::from_toml_str("cms-b-2.toml", CMS_B)
        .unwrap()
        .with_code_map(cms_b_map())
        .unwrap()
}

fn layout(which: &str) -> Layout {
    if which == "a" { cms_a() } else { cms_b() }
}

fn s(v: &str) -> Option<crate::model::Text> {
    Some(v.into())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn datetime(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, mi, 0).unwrap()
}

/// The ICD sample order, canonical.
pub(crate) fn issue() -> OrderMessage {
    crate::model::samples::icd_issue()
}

/// A MODIFY of the sample: a second protected person, new residence, two
/// condition lines, no expiration.
pub(crate) fn modify() -> OrderMessage {
    let mut m = issue();
    m.action = Some(Action::Modify);
    m.sequence = Some(2);
    m.order.expiration = None;
    m.order.brady = s("N");
    m.order.firearm_relinquishment = Some(false);
    m.order.condition_codes = vec!["01".into(), "02".into(), "05".into(), "07".into()];
    m.order.condition_text = Some(format!(
        "{} {}",
        "STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSONS, THEIR HOME, WORK, SCHOOL AND VEHICLES.",
        "NO CONTACT BY PHONE, MAIL, E-MAIL, TEXT OR SOCIAL MEDIA, DIRECTLY OR THROUGH OTHERS, EXCEPT BRIEF AND PEACEFUL CONTACT AS NEEDED FOR COURT-ORDERED VISITATION OF CHILDREN."
    )
    .into());
    let rp = m.restrained_person.as_mut().unwrap();
    rp.hair = s("GRY");
    rp.residence = Some(Address {
        street: s("455 CAPITOL MALL STE 300"),
        city: s("SACRAMENTO"),
        state: s("CA"),
        zip: s("95814"),
    });
    m.protected_persons.push(ProtectedPerson {
        name: PersonName {
            last: s("DOE"),
            first: s("JOSEPH"),
            middle: None,
            suffix: None,
        },
        birth_date: Some(date(2015, 6, 30)),
        sex: s("M"),
        race: s("W"),
        relationship: s("CH"),
    });
    m
}

fn header(action: Action, sequence: u32) -> OrderMessage {
    OrderMessage {
        court_ori: "CA034025J".into(),
        action: Some(action),
        sequence: Some(sequence),
        order: ProtectionOrder {
            order_number: s("24DV01234"),
            case_number: s("24FL001234"),
            order_type: s("DV"),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(crate) fn terminate() -> OrderMessage {
    let mut m = header(Action::Terminate, 2);
    m.order.termination_date = Some(date(2027, 3, 1));
    m
}

pub(crate) fn cancel() -> OrderMessage {
    let mut m = header(Action::Cancel, 2);
    m.order.cancel_reason = s("ENTERED IN ERROR - WRONG CASE NUMBER");
    m
}

pub(crate) fn service() -> OrderMessage {
    let mut m = header(Action::Service, 2);
    m.order.service = Some(Service {
        served_at: Some(datetime(2026, 11, 26, 14, 30)),
        served_by: s("DEP R SMITH 4411"),
        serving_agency_ori: s("CA0340000"),
        method: s("P"),
    });
    m
}

fn canonical(action: &str) -> OrderMessage {
    match action {
        "issue" => issue(),
        "modify" => modify(),
        "terminate" => terminate(),
        "cancel" => cancel(),
        _ => service(),
    }
}

fn fields(errors: &[FieldError]) -> Vec<(ErrorCode, String)> {
    errors.iter().map(|e| (e.code, e.field.clone())).collect()
}

/// Write then read gives the same canonical order, without errors, for both
/// shipped layouts and all five actions; writing it again gives the same bytes.
#[test]
fn write_then_read_round_trips() {
    for which in ["a", "b"] {
        let l = layout(which);
        for action in ["issue", "modify", "terminate", "cancel", "service"] {
            let m = canonical(action);
            let bytes = l.write_order(&m).unwrap_or_else(|e| panic!("{which} {action}: {e:?}"));
            let p = l.read_order(&bytes);
            assert!(p.is_ok(), "{which} {action}: {:?}", p.errors);
            assert_eq!(p.message, m, "{which} {action}");
            assert_eq!(l.write_order(&p.message).unwrap(), bytes, "{which} {action}");
        }
    }
}

/// Each shipped fixture is exactly what the writer writes for the order it
/// reads as, and reads as the expected canonical order: the fixtures, the
/// reader and the writer agree byte for byte.
#[test]
fn fixtures_are_what_the_writer_writes() {
    for &(which, action, bytes) in FIXTURES {
        let l = layout(which);
        let p = l.read_order(bytes);
        assert!(p.is_ok(), "{which} {action}: {:?}", p.errors);
        assert_eq!(p.message, canonical(action), "{which} {action}");
        let written = l.write_order(&p.message).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(bytes),
            "{which} {action}"
        );
    }
}

/// cms-b/2 writes CMS B's own codes, MMDDYYYY dates and its own columns.
#[test]
fn cms_b_writes_its_own_codes_and_columns() {
    let bytes = cms_b().write_order(&issue()).unwrap();
    let recs: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|r| !r.is_empty()).collect();
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r.len() == 240));
    let at =
        |r: usize, start: usize, len: usize| String::from_utf8_lossy(&recs[r][start - 1..start - 1 + len]).to_string();
    assert_eq!(at(0, 1, 2), "10");
    assert_eq!(at(0, 3, 4), "NEW ");
    assert_eq!(at(0, 22, 5), "00001");
    assert_eq!(at(0, 56, 4), "DVRO");
    assert_eq!(at(0, 68, 8), "11252026");
    assert_eq!(at(0, 84, 5), "23:59");
    assert_eq!(at(0, 89, 1), "1");
    assert_eq!(at(1, 1, 2), "20");
    assert_eq!(at(1, 85, 11), "1WHITE     ");
    assert_eq!(at(1, 96, 16), "BROWN   BLACK   ");
    assert_eq!(at(2, 85, 1), "2");
    assert_eq!(at(3, 1, 5), "40001");
    // Without its code map the layout writes the canonical codes as they are.
    let plain = Layout::from_toml_str("cms-b-2.toml", CMS_B).unwrap();
    let bytes = plain.write_order(&issue()).unwrap();
    assert_eq!(&bytes[240 + 1 + 84..240 + 1 + 85], b"M");
}

/// A value wider than its columns, non-ASCII text and too many list
/// elements are refused, each naming its field; nothing is cut.
#[test]
fn refuses_what_does_not_fit() {
    let l = cms_a();
    let mut m = issue();
    let rp = m.restrained_person.as_mut().unwrap();
    rp.name.last = Some("A".repeat(31).into());
    rp.name.first = s("JOSÉ");
    m.order.condition_codes = vec!["01".into(); 10];
    m.sequence = Some(10_000);
    assert_eq!(
        fields(&l.write_order(&m).unwrap_err()),
        [
            (ErrorCode::TooLong, "sequence".into()),
            (ErrorCode::InvalidFormat, "order.condition_codes".into()),
            (ErrorCode::TooLong, "restrained_person.name.last".into()),
            (ErrorCode::InvalidFormat, "restrained_person.name.first".into()),
        ]
    );
    let mut m = issue();
    m.protected_persons = vec![m.protected_persons[0].clone(); 10];
    assert_eq!(
        fields(&l.write_order(&m).unwrap_err()),
        [(ErrorCode::InvalidFormat, "protected_persons".into())]
    );
}

/// Condition text is split at spaces into the layout's lines; text that
/// needs more lines than the layout holds, or has a word longer than a
/// line, is TOO_LONG.
#[test]
fn condition_text_lines() {
    let l = cms_a();
    let mut m = issue();
    // 5 lines of 100: "AAAA… " words of 49 fit two per line.
    let word = "A".repeat(49);
    m.order.condition_text = Some([word.as_str(); 10].join(" ").into());
    let bytes = l.write_order(&m).unwrap();
    assert_eq!(
        bytes
            .split(|&b| b == b'\n')
            .filter(|r| r.first() == Some(&b'M'))
            .count(),
        5
    );
    assert_eq!(l.read_order(&bytes).message, m);
    m.order.condition_text = Some([word.as_str(); 11].join(" ").into());
    assert_eq!(
        fields(&l.write_order(&m).unwrap_err()),
        [(ErrorCode::TooLong, "order.condition_text".into())]
    );
    m.order.condition_text = Some("B".repeat(101).into());
    assert_eq!(
        fields(&l.write_order(&m).unwrap_err()),
        [(ErrorCode::TooLong, "order.condition_text".into())]
    );
}

/// Values the action's records have no column for are refused, as is an
/// image; so is a canonical code the code map has no court code for, and a
/// time finer than the pattern.
#[test]
fn refuses_what_would_be_lost() {
    let mut m = issue();
    m.protected_persons[0].name.suffix = s("JR");
    assert_eq!(
        fields(&cms_a().write_order(&m).unwrap_err()),
        [(ErrorCode::InvalidFormat, "protected_persons[0].name.suffix".into())]
    );
    // cms-b/2 has a column for it.
    let bytes = cms_b().write_order(&m).unwrap();
    assert_eq!(cms_b().read_order(&bytes).message, m);

    let mut m = terminate();
    m.order.service = Some(Service {
        served_by: s("X"),
        ..Default::default()
    });
    m.image = Some(OrderImage::new("application/pdf", String::new(), Vec::new()));
    assert_eq!(
        fields(&cms_a().write_order(&m).unwrap_err()),
        [
            (ErrorCode::InvalidFormat, "order.service.served_by".into()),
            (ErrorCode::InvalidFormat, "image".into()),
        ]
    );

    let mut m = issue();
    m.restrained_person.as_mut().unwrap().sex = s("Q");
    m.order.expiration = Some(date(2031, 11, 25).and_hms_opt(23, 59, 30).unwrap());
    assert_eq!(
        fields(&cms_b().write_order(&m).unwrap_err()),
        [
            (ErrorCode::InvalidCode, "restrained_person.sex".into()),
            (ErrorCode::InvalidDate, "order.expiration".into()),
        ]
    );
    let mut m = issue();
    m.action = None;
    assert_eq!(
        fields(&cms_a().write_order(&m).unwrap_err()),
        [(ErrorCode::Missing, "action".into())]
    );
}

/// Missing parts are written as missing (the reader reports them), not
/// invented.
#[test]
fn writes_incomplete_messages_as_they_are() {
    let l = cms_a();
    let mut m = issue();
    m.restrained_person = None;
    m.order.issue_date = None;
    let bytes = l.write_order(&m).unwrap();
    assert_eq!(bytes.len(), 3 * 201);
    let p = l.read_order(&bytes);
    assert_eq!(p.message, m);
    assert!(p.errors.iter().any(|e| e.field == "restrained_person"));
}

/// `wrap` splits greedily at the separator so that trimming and joining
/// gives the text back; a word longer than a line cannot be split.
#[test]
fn wrap_splits_at_separators() {
    assert_eq!(wrap("AB CD EF", " ", 5).unwrap(), ["AB CD", "EF"]);
    assert_eq!(wrap("AB CD EF", " ", 8).unwrap(), ["AB CD EF"]);
    assert_eq!(wrap("", " ", 8).unwrap(), Vec::<String>::new());
    // A double space stays inside a line; it cannot be a cut, since
    // trimming would lose one of its spaces.
    assert_eq!(wrap("AB  CD EF GH", " ", 9).unwrap(), ["AB  CD EF", "GH"]);
    assert_eq!(wrap("AB  CD", " ", 3), None);
    assert_eq!(wrap("ABCDEF GH", " ", 5), None);
    assert_eq!(wrap("ABCDEF", "", 4).unwrap(), ["ABCD", "EF"]);
}
