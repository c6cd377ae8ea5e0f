//! Code-map set tests: the shipped `cms-b` set, both directions, and broken
//! files refused with file, line and entry.

use super::*;
use crate::model::{ProtectedPerson, RestrainedPerson, Service};

const CODES: &str = include_str!("../../../mappings/codes.toml");
const CMS_B: &str = include_str!("../../../mappings/code-maps/cms-b.toml");

fn canonical() -> CodeLists {
    CodeLists::from_toml_str("codes.toml", CODES).unwrap()
}

fn cms_b() -> CodeMap {
    CodeMap::from_toml_str("cms-b.toml", CMS_B, &canonical()).expect("cms-b loads")
}

fn err(text: &str) -> String {
    CodeMap::from_toml_str("x.toml", text, &canonical())
        .unwrap_err()
        .to_string()
}

/// The shipped set loads; it maps sex, race, eye, hair, order type and
/// service method, and passes Brady, conditions and relationships through.
#[test]
fn shipped_set_loads() {
    let m = cms_b();
    assert_eq!(m.name(), "cms-b");
    assert_eq!(m.file(), "cms-b.toml");
    for list in [
        CodeList::OrderType,
        CodeList::Sex,
        CodeList::Race,
        CodeList::Eye,
        CodeList::Hair,
        CodeList::ServiceMethod,
    ] {
        assert!(m.maps(list), "{list}");
    }
    for list in [CodeList::Brady, CodeList::Condition, CodeList::Relationship] {
        assert!(!m.maps(list), "{list}");
        assert_eq!(m.to_canonical(list, "Y"), Some("Y"));
        assert_eq!(m.to_court(list, "Y"), Some("Y"));
    }
    assert_eq!(m.court_codes(CodeList::Sex).collect::<Vec<_>>(), ["1", "2", "3", "9"]);
    assert_eq!(m.to_canonical(CodeList::Sex, "1"), Some("M"));
    assert_eq!(m.to_canonical(CodeList::Sex, "M"), None);
    assert_eq!(m.to_canonical(CodeList::Race, "WHITE"), Some("W"));
    assert_eq!(m.to_court(CodeList::OrderType, "DV"), Some("DVRO"));
    assert_eq!(m.to_court(CodeList::Sex, "Q"), None);
}

/// Every canonical sex, race, eye and hair code has a cms-b code, so any
/// canonical order can be written in cms-b.
#[test]
fn shipped_set_covers_every_canonical_code() {
    let m = cms_b();
    let c = canonical();
    for list in CodeList::ALL {
        for code in c.codes(list) {
            let court = m.to_court(list, code).unwrap_or_else(|| panic!("{list} {code}"));
            assert_eq!(m.to_canonical(list, court), Some(code), "{list} {code}");
        }
    }
}

/// Several court codes may share a canonical code: all read, and the first
/// in the file is the one written.
#[test]
fn shared_canonical_codes_write_the_first() {
    let m = cms_b();
    assert_eq!(m.to_canonical(CodeList::Eye, "GRAY"), Some("GRY"));
    assert_eq!(m.to_canonical(CodeList::Eye, "GREY"), Some("GRY"));
    assert_eq!(m.to_court(CodeList::Eye, "GRY"), Some("GRAY"));
    assert_eq!(m.to_canonical(CodeList::Hair, "AUBURN"), Some("RED"));
    assert_eq!(m.to_court(CodeList::Hair, "RED"), Some("RED"));
    // File order, not sort order: swapping the lines swaps the choice.
    let swapped = CMS_B.replace("GRAY = \"GRY\"\nGREY = \"GRY\"", "GREY = \"GRY\"\nGRAY = \"GRY\"");
    assert_ne!(swapped, CMS_B);
    let m = CodeMap::from_toml_str("x.toml", &swapped, &canonical()).unwrap();
    assert_eq!(m.to_court(CodeList::Eye, "GRY"), Some("GREY"));
}

fn coded_message() -> OrderMessage {
    let mut m = OrderMessage::default();
    m.order.order_type = Some("DVRO".into());
    m.order.brady = Some("Y".into());
    m.order.condition_codes = vec!["01".into(), "07".into()];
    m.order.service = Some(Service {
        method: Some("PERS".into()),
        ..Default::default()
    });
    m.restrained_person = Some(RestrainedPerson {
        sex: Some("1".into()),
        race: Some("HISPANIC".into()),
        eye: Some("GREY".into()),
        hair: Some("AUBURN".into()),
        ..Default::default()
    });
    m.protected_persons = vec![ProtectedPerson {
        sex: Some("2".into()),
        race: Some("WHITE".into()),
        relationship: Some("SP".into()),
        ..Default::default()
    }];
    m
}

/// `apply` turns court codes into canonical codes in place; `to_court_codes`
/// turns them back (shared codes as the first in the file).
#[test]
fn apply_and_reverse() {
    let m = cms_b();
    let mut msg = coded_message();
    assert!(m.apply(&mut msg, &Locations::default()).is_empty());
    let rp = msg.restrained_person.as_ref().unwrap();
    assert_eq!(msg.order.order_type.as_deref(), Some("DV"));
    assert_eq!(msg.order.brady.as_deref(), Some("Y"));
    assert_eq!(msg.order.condition_codes, ["01", "07"]);
    assert_eq!(msg.order.service.as_ref().unwrap().method.as_deref(), Some("P"));
    assert_eq!(
        (
            rp.sex.as_deref(),
            rp.race.as_deref(),
            rp.eye.as_deref(),
            rp.hair.as_deref()
        ),
        (Some("M"), Some("H"), Some("GRY"), Some("RED"))
    );
    let pp = &msg.protected_persons[0];
    assert_eq!((pp.sex.as_deref(), pp.race.as_deref()), (Some("F"), Some("W")));

    assert!(m.to_court_codes(&mut msg).is_empty());
    let mut want = coded_message();
    want.restrained_person.as_mut().unwrap().eye = Some("GRAY".into());
    want.restrained_person.as_mut().unwrap().hair = Some("RED".into());
    assert_eq!(msg, want);
}

/// An unmapped court code is INVALID_CODE at the field's location, and is
/// left as it was; a canonical code without court code cannot be written.
#[test]
fn unmapped_codes_are_invalid_code() {
    let m = cms_b();
    let mut msg = coded_message();
    msg.restrained_person.as_mut().unwrap().sex = Some("M".into());
    msg.protected_persons[0].race = Some("W".into());
    let mut l = Locations::default();
    l.insert("message", "1:1");
    l.insert("restrained_person.sex", "2:85");
    l.insert("protected_persons", "3:1");
    let e = m.apply(&mut msg, &l);
    let got: Vec<(ErrorCode, &str, Option<&str>)> = e
        .iter()
        .map(|e| (e.code, e.field.as_str(), e.location.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (ErrorCode::InvalidCode, "restrained_person.sex", Some("2:85")),
            (ErrorCode::InvalidCode, "protected_persons[0].race", Some("3:1")),
        ]
    );
    assert!(
        e[0].text
            .contains("'M' is not a court sex code of code map cms-b (1 2 3 9)"),
        "{}",
        e[0].text
    );
    assert_eq!(msg.restrained_person.as_ref().unwrap().sex.as_deref(), Some("M"));

    let mut msg = OrderMessage::default();
    msg.order.order_type = Some("XX".into());
    let e = m.to_court_codes(&mut msg);
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].code, e[0].field.as_str()),
        (ErrorCode::InvalidCode, "order.order_type")
    );
}

/// Broken files are refused, naming the file, the line and the entry.
#[test]
fn broken_files_name_file_line_and_entry() {
    // A canonical code that is not canonical.
    let e = err(&CMS_B.replace("\"9\" = \"U\"", "\"9\" = \"Q\""));
    let line = CMS_B.lines().position(|l| l.starts_with("\"9\" = ")).unwrap() + 1;
    assert!(
        e.starts_with(&format!(
            "code map x.toml: line {line}: sex.9: 'Q' is not a canonical sex code"
        )),
        "{e}"
    );
    // A court code that cannot be one.
    let e = err(&CMS_B.replace("\"9\" = \"U\"", "\" 9\" = \"U\""));
    assert!(e.contains(&format!("line {line}: sex.\" 9\": a court code")), "{e}");
    // An unknown list, a misspelt key, a duplicate court code: TOML errors with the line.
    let e = err(&format!("{CMS_B}\n[colour]\nRED = \"RED\"\n"));
    assert!(e.starts_with("code map x.toml: line "), "{e}");
    assert!(e.contains("colour"), "{e}");
    let e = err(&CMS_B.replace("description =", "descripton ="));
    let line = CMS_B.lines().position(|l| l.starts_with("description =")).unwrap() + 1;
    assert!(e.contains(&format!("line {line}:")) && e.contains("descripton"), "{e}");
    let e = err(&CMS_B.replace("\"3\" = \"X\"", "\"1\" = \"X\""));
    assert!(e.starts_with("code map x.toml: line "), "{e}");
    // An empty list, and a missing name.
    let e = err("name = \"x\"\n[sex]\n");
    assert!(e.contains("line 2: sex: the list maps no codes"), "{e}");
    let e = err("[sex]\n\"1\" = \"M\"\n");
    assert!(e.contains("name"), "{e}");
    // A missing file names it.
    let e = CodeMap::load("/nonexistent/cms-z.toml", &canonical())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/cms-z.toml"), "{e}");
}

/// Field paths name their code lists; other fields hold no code.
#[test]
fn fields_name_their_lists() {
    assert_eq!(list_of_field("protected_persons[].sex"), Some(CodeList::Sex));
    assert_eq!(list_of_field("order.condition_codes"), Some(CodeList::Condition));
    assert_eq!(list_of_field("restrained_person.name.last"), None);
}
