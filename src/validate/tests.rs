//! Validator tests: the ICD sample is valid, and each error code is raised
//! where the ICD says, with the field and location it should name.

use chrono::NaiveDate;

use super::{ValidationContext, locate, merge, validate};
use crate::formats::Parsed;
use crate::formats::fixed::Layout;
use crate::mapping::codes::CodeLists;
use crate::model::{Action, ErrorCode, FieldError, Locations, OrderMessage, PersonName, ProtectedPerson, Service};

use crate::formats::fixed::fixtures::{BAD_FEB_30, CANCEL, CMS_A, CODES, ISSUE, SERVICE, TERMINATE};

fn codes() -> CodeLists {
    CodeLists::from_toml_str("codes.toml", CODES).unwrap()
}

fn read(body: &[u8]) -> Parsed {
    Layout::from_toml_str("cms-a-1.toml", CMS_A).unwrap().read_order(body)
}

/// Validates with the sample court's queue and users.
fn check(msg: &OrderMessage, locations: &Locations) -> Vec<FieldError> {
    check_as(msg, locations, "CA034025J", None)
}

fn check_as(msg: &OrderMessage, locations: &Locations, queue: &str, user: Option<&str>) -> Vec<FieldError> {
    let codes = codes();
    let users = vec!["court-ca034025j".to_string()];
    let ctx = ValidationContext {
        queue_court_ori: queue,
        user_id: user,
        amqp_users: &users,
        codes: &codes,
    };
    validate(msg, locations, &ctx)
}

fn sample() -> Parsed {
    let p = read(ISSUE);
    assert!(p.is_ok());
    p
}

/// (code, field, location) of every error.
fn errs(errors: &[FieldError]) -> Vec<(ErrorCode, String, Option<String>)> {
    errors
        .iter()
        .map(|e| (e.code, e.field.clone(), e.location.clone()))
        .collect()
}

fn one(code: ErrorCode, field: &str, location: Option<&str>) -> Vec<(ErrorCode, String, Option<String>)> {
    vec![(code, field.to_string(), location.map(str::to_string))]
}

/// The ICD §3 sample, and the TERMINATE, CANCEL and SERVICE fixtures, are valid.
#[test]
fn samples_are_valid() {
    for body in [ISSUE, TERMINATE, CANCEL, SERVICE] {
        let p = read(body);
        assert!(p.is_ok(), "{:?}", p.errors);
        let e = check(&p.message, &p.locations);
        assert!(e.is_empty(), "{e:?}");
    }
}

/// A driver license number without its state is MISSING on the state, at
/// the state's columns (found by fuzzing: CARPOS refuses OLN without OLS).
#[test]
fn license_number_needs_its_state() {
    let body = String::from_utf8(ISSUE.to_vec())
        .unwrap()
        .replace("D1234567            CA", "D1234567              ");
    let p = read(body.as_bytes());
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(
        errs(&check(&p.message, &p.locations)),
        one(
            ErrorCode::Missing,
            "restrained_person.driver_license.state",
            Some("2:184")
        )
    );
    let mut m = p.message.clone();
    m.restrained_person.as_mut().unwrap().driver_license = None;
    assert!(check(&m, &p.locations).is_empty());
}

/// MISSING per action, located at the field or its nearest enclosing part.
#[test]
fn missing_per_action() {
    let p = sample();
    let mut m = p.message.clone();
    m.restrained_person.as_mut().unwrap().sex = None;
    m.protected_persons[0].name.last = Some("  ".into());
    m.order.condition_codes.clear();
    m.order.issue_date = None;
    let e = check(&m, &p.locations);
    assert_eq!(
        errs(&e),
        vec![
            (ErrorCode::Missing, "order.issue_date".into(), Some("1:63".into())),
            (ErrorCode::Missing, "restrained_person.sex".into(), Some("2:75".into())),
            (
                ErrorCode::Missing,
                "protected_persons[0].name.last".into(),
                Some("3:2".into())
            ),
            (ErrorCode::Missing, "order.condition_codes".into(), Some("1:84".into())),
        ]
    );

    let mut m = p.message.clone();
    m.restrained_person = None;
    m.protected_persons.clear();
    let e = check(&m, &Locations::default());
    assert_eq!(
        errs(&e),
        vec![
            (ErrorCode::Missing, "restrained_person".into(), None),
            (ErrorCode::Missing, "protected_persons".into(), None),
        ]
    );

    let mut m = OrderMessage {
        action: Some(Action::Terminate),
        sequence: Some(2),
        ..Default::default()
    };
    let mut l = Locations::default();
    l.insert("message", "1:1");
    let fields: Vec<String> = check(&m, &l).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "court_ori",
            "order.termination_date",
            "order.order_number",
            "order.order_type"
        ]
    );
    m.action = Some(Action::Cancel);
    assert!(
        check(&m, &l)
            .iter()
            .any(|e| e.field == "order.cancel_reason" && e.location.as_deref() == Some("1:1"))
    );
    m.action = Some(Action::Service);
    assert!(check(&m, &l).iter().any(|e| e.field == "order.service"));
    m.order.service = Some(Service::default());
    let fields: Vec<String> = check(&m, &l).into_iter().map(|e| e.field).collect();
    for f in ["served_at", "served_by", "serving_agency_ori", "method"] {
        assert!(fields.contains(&format!("order.service.{f}")), "{f}");
    }
    m.action = None;
    m.sequence = None;
    let fields: Vec<String> = check(&m, &l).into_iter().map(|e| e.field).collect();
    assert!(fields.contains(&"action".to_string()) && fields.contains(&"sequence".to_string()));
}

/// INVALID_FORMAT: ORIs, order number, height, weight, ZIP, state, counts over 9.
#[test]
fn invalid_format() {
    let p = sample();
    let mut m = p.message.clone();
    m.order.order_number = Some("24DV_01234".into());
    let rp = m.restrained_person.as_mut().unwrap();
    rp.height = Some("5100".into());
    rp.weight = Some("18O".into());
    rp.residence.as_mut().unwrap().zip = Some("9581".into());
    rp.driver_license.as_mut().unwrap().state = Some("C1".into());
    let e = check(&m, &p.locations);
    assert_eq!(
        errs(&e),
        vec![
            (
                ErrorCode::InvalidFormat,
                "order.order_number".into(),
                Some("1:31".into())
            ),
            (
                ErrorCode::InvalidFormat,
                "restrained_person.height".into(),
                Some("2:85".into())
            ),
            (
                ErrorCode::InvalidFormat,
                "restrained_person.weight".into(),
                Some("2:88".into())
            ),
            (
                ErrorCode::InvalidFormat,
                "restrained_person.residence.zip".into(),
                Some("2:159".into())
            ),
            (
                ErrorCode::InvalidFormat,
                "restrained_person.driver_license.state".into(),
                Some("2:184".into())
            ),
        ]
    );
    let mut m = p.message.clone();
    m.restrained_person.as_mut().unwrap().height = Some("512".into());
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::InvalidFormat, "restrained_person.height", Some("2:85"))
    );

    let mut m = p.message.clone();
    m.court_ori = "CA03402".into();
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::InvalidFormat, "court_ori", Some("1:2"))
    );

    let p = read(SERVICE);
    let mut m = p.message.clone();
    m.order.service.as_mut().unwrap().serving_agency_ori = Some("ca0340000".into());
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(
            ErrorCode::InvalidFormat,
            "order.service.serving_agency_ori",
            Some("2:44")
        )
    );

    let p = sample();
    let mut m = p.message.clone();
    m.protected_persons = vec![m.protected_persons[0].clone(); 10];
    m.order.condition_codes = vec!["01".into(); 10];
    let e = check(&m, &p.locations);
    assert_eq!(
        errs(&e),
        vec![
            (
                ErrorCode::InvalidFormat,
                "order.condition_codes".into(),
                Some("1:84".into())
            ),
            (ErrorCode::InvalidFormat, "protected_persons".into(), Some("3:1".into())),
        ]
    );
}

/// INVALID_CODE against every code list.
#[test]
fn invalid_code() {
    let p = sample();
    let mut m = p.message.clone();
    m.order.order_type = Some("XX".into());
    m.order.brady = Some("Q".into());
    m.order.condition_codes = vec!["01".into(), "10".into()];
    let rp = m.restrained_person.as_mut().unwrap();
    rp.sex = Some("m".into());
    rp.race = Some("Z".into());
    rp.eye = Some("RED".into());
    rp.hair = Some("BRN".into());
    let pp = &mut m.protected_persons[0];
    pp.sex = Some("Q".into());
    pp.race = Some("Q".into());
    pp.relationship = Some("ZZ".into());
    let fields: Vec<(ErrorCode, String)> = check(&m, &p.locations).into_iter().map(|e| (e.code, e.field)).collect();
    let want = [
        "order.order_type",
        "order.brady",
        "order.condition_codes[1]",
        "restrained_person.sex",
        "restrained_person.race",
        "restrained_person.eye",
        "restrained_person.hair",
        "protected_persons[0].sex",
        "protected_persons[0].race",
        "protected_persons[0].relationship",
    ];
    assert_eq!(fields, want.map(|f| (ErrorCode::InvalidCode, f.to_string())));
    let e = check(&m, &p.locations);
    assert_eq!(e[2].location.as_deref(), Some("1:86"));
    assert!(e[3].text.contains("'m' is not a sex code (F M U X)"), "{}", e[3].text);

    let p = read(SERVICE);
    let mut m = p.message.clone();
    m.order.service.as_mut().unwrap().method = Some("E".into());
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::InvalidCode, "order.service.method", Some("2:53"))
    );
}

/// TOO_LONG at each ICD maximum, and not at the maximum itself.
#[test]
fn too_long() {
    let p = sample();
    let at_max = |n: usize| crate::model::Text::from("A".repeat(n));
    let mut m = p.message.clone();
    m.order.order_number = Some(at_max(15));
    m.order.case_number = Some(at_max(20));
    m.order.form_id = Some(at_max(8));
    m.order.judicial_officer = Some(at_max(30));
    m.order.condition_text = Some("É".repeat(500).into());
    let rp = m.restrained_person.as_mut().unwrap();
    rp.name = PersonName {
        last: Some(at_max(30)),
        first: Some(at_max(20)),
        middle: Some(at_max(20)),
        suffix: Some(at_max(3)),
    };
    assert!(check(&m, &p.locations).is_empty(), "{:?}", check(&m, &p.locations));

    let over = |n: usize| Some("A".repeat(n + 1).into());
    m.order.order_number = over(15);
    m.order.case_number = over(20);
    m.order.form_id = over(8);
    m.order.judicial_officer = over(30);
    m.order.condition_text = Some("É".repeat(501).into());
    let rp = m.restrained_person.as_mut().unwrap();
    rp.name = PersonName {
        last: over(30),
        first: over(20),
        middle: over(20),
        suffix: over(3),
    };
    rp.weight = Some("1850".into());
    let r = rp.residence.as_mut().unwrap();
    r.street = over(40);
    r.city = over(20);
    rp.driver_license.as_mut().unwrap().number = over(20);
    m.protected_persons[0].name.first = over(20);
    let fields: Vec<String> = check(&m, &p.locations)
        .into_iter()
        .inspect(|e| assert_eq!(e.code, ErrorCode::TooLong, "{e}"))
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "order.order_number",
            "order.case_number",
            "order.form_id",
            "order.judicial_officer",
            "order.condition_text",
            "restrained_person.name.last",
            "restrained_person.name.first",
            "restrained_person.name.middle",
            "restrained_person.name.suffix",
            "restrained_person.weight",
            "restrained_person.residence.street",
            "restrained_person.residence.city",
            "restrained_person.driver_license.number",
            "protected_persons[0].name.first",
        ]
    );

    let p = read(CANCEL);
    let mut m = p.message.clone();
    m.order.cancel_reason = over(60);
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::TooLong, "order.cancel_reason", Some("1:141"))
    );
    let p = read(SERVICE);
    let mut m = p.message.clone();
    m.order.service.as_mut().unwrap().served_by = over(30);
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::TooLong, "order.service.served_by", Some("2:14"))
    );
}

/// INVALID_DATE: expiration before issue; a birth date after the issue date.
#[test]
fn invalid_date() {
    let p = sample();
    let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    let mut m = p.message.clone();
    m.order.expiration = Some(d(2026, 11, 24).and_hms_opt(23, 59, 0).unwrap());
    m.restrained_person.as_mut().unwrap().birth_date = Some(d(2026, 11, 26));
    m.protected_persons.push(ProtectedPerson {
        name: PersonName {
            last: Some("DOE".into()),
            ..Default::default()
        },
        sex: Some("F".into()),
        birth_date: Some(d(2027, 1, 1)),
        ..Default::default()
    });
    assert_eq!(
        errs(&check(&m, &p.locations)),
        vec![
            (ErrorCode::InvalidDate, "order.expiration".into(), Some("1:71".into())),
            (
                ErrorCode::InvalidDate,
                "restrained_person.birth_date".into(),
                Some("2:77".into())
            ),
            // No P record for the second person: the `protected_persons` location.
            (
                ErrorCode::InvalidDate,
                "protected_persons[1].birth_date".into(),
                Some("3:1".into())
            ),
        ]
    );
    // Expiring on the issue day itself is fine.
    m = p.message.clone();
    m.order.expiration = Some(d(2026, 11, 25).and_hms_opt(0, 0, 0).unwrap());
    assert!(check(&m, &p.locations).is_empty());
}

/// INVALID_SEQUENCE: sequence 0, and sequence 1 on anything but ISSUE.
#[test]
fn invalid_sequence() {
    let p = sample();
    let mut m = p.message.clone();
    m.sequence = Some(0);
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::InvalidSequence, "sequence", Some("1:48"))
    );
    let p = read(TERMINATE);
    let mut m = p.message.clone();
    m.sequence = Some(1);
    assert_eq!(
        errs(&check(&m, &p.locations)),
        one(ErrorCode::InvalidSequence, "sequence", Some("1:48"))
    );
    m.action = Some(Action::Issue);
    m.sequence = Some(7);
    // A re-entry ISSUE after a CANCEL has a later sequence: not an error here
    // (the ISSUE's own requirements are, though).
    assert!(check(&m, &p.locations).iter().all(|e| e.code == ErrorCode::Missing));
}

/// ORI_MISMATCH: another court's queue, and an AMQP user not configured for the court.
#[test]
fn ori_mismatch() {
    let p = sample();
    let e = check_as(&p.message, &p.locations, "CA0190000", None);
    assert_eq!(errs(&e), one(ErrorCode::OriMismatch, "court_ori", Some("1:2")));
    assert!(check_as(&p.message, &p.locations, "CA034025J", Some("court-ca034025j")).is_empty());
    let e = check_as(&p.message, &p.locations, "CA034025J", Some("court-ca0190000"));
    assert_eq!(errs(&e), one(ErrorCode::OriMismatch, "user_id", None));
}

/// `locate` falls back from a field to its enclosing parts, then `message`.
#[test]
fn locate_falls_back() {
    let mut l = Locations::default();
    assert_eq!(locate(&l, "protected_persons[3].name.last"), None);
    l.insert("message", "1:1");
    assert_eq!(locate(&l, "protected_persons[3].name.last").as_deref(), Some("1:1"));
    l.insert("protected_persons", "3:1");
    assert_eq!(locate(&l, "protected_persons[3].name.last").as_deref(), Some("3:1"));
    l.insert("protected_persons[3]", "6:1");
    assert_eq!(locate(&l, "protected_persons[3].name.last").as_deref(), Some("6:1"));
}

/// `merge` keeps the reader's error and drops the validator's echo of it.
#[test]
fn merge_drops_echoes() {
    let p = read(BAD_FEB_30);
    let v = check(&p.message, &p.locations);
    assert_eq!(errs(&v), one(ErrorCode::Missing, "order.issue_date", Some("1:63")));
    let all = merge(p.errors.clone(), v);
    assert_eq!(
        errs(&all),
        one(ErrorCode::InvalidDate, "order.issue_date", Some("1:63"))
    );

    let parse = vec![FieldError::new(ErrorCode::InvalidFormat, "restrained_person", "short")];
    let v = vec![
        FieldError::new(ErrorCode::Missing, "restrained_person.sex", "x"),
        FieldError::new(ErrorCode::Missing, "restrained_person_extra", "x"),
        FieldError::new(ErrorCode::Missing, "order.issue_date", "x"),
    ];
    let fields: Vec<String> = merge(parse, v).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        ["restrained_person", "restrained_person_extra", "order.issue_date"]
    );
}
