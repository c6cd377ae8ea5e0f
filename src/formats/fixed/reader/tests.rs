//! Reader tests: the ICD sample and its siblings, every rule of the reader,
//! a layout written at run time, and inputs meant to break it.

use chrono::{NaiveDate, NaiveDateTime};

use crate::formats::Parsed;
use crate::formats::fixed::Layout;
use crate::model::{Action, ErrorCode, OrderMessage, Service};

use crate::formats::fixed::fixtures::{
    BAD_BYTE, BAD_FEB_30, BAD_SHORT, CANCEL, CMS_A, CMS_B, CMS_B_CANCEL, CMS_B_ISSUE, CMS_B_MODIFY, CMS_B_SERVICE,
    CMS_B_TERMINATE, ISSUE, SERVICE, TERMINATE,
};

fn cms_a() -> Layout {
    Layout::from_toml_str("cms-a-1.toml", CMS_A).expect("cms-a/1 loads")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn datetime(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, mi, 0).unwrap()
}

fn s(v: &str) -> Option<crate::model::Text> {
    Some(v.into())
}

/// The sample's records, terminators removed.
fn records(body: &[u8]) -> Vec<Vec<u8>> {
    body.split(|&b| b == b'\n')
        .filter(|r| !r.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(recs: &[Vec<u8>]) -> Vec<u8> {
    recs.iter().flat_map(|r| r.iter().copied().chain([b'\n'])).collect()
}

/// A 200-byte record with `text` written at 1-based `column`s.
fn rec(parts: &[(usize, &str)]) -> Vec<u8> {
    let mut r = vec![b' '; 200];
    for (start, text) in parts {
        r[start - 1..start - 1 + text.len()].copy_from_slice(text.as_bytes());
    }
    r
}

/// Replaces columns of record `i` (0-based) of `recs`.
fn patch(recs: &mut [Vec<u8>], i: usize, column: usize, text: &str) {
    recs[i][column - 1..column - 1 + text.len()].copy_from_slice(text.as_bytes());
}

/// The (code, field, location) of every error.
fn errs(p: &Parsed) -> Vec<(ErrorCode, String, String)> {
    p.errors
        .iter()
        .map(|e| (e.code, e.field.clone(), e.location.clone().unwrap_or_default()))
        .collect()
}

fn has(p: &Parsed, code: ErrorCode, field: &str, location: &str) -> bool {
    errs(p)
        .iter()
        .any(|(c, f, l)| *c == code && f == field && l == location)
}

fn expected_issue() -> OrderMessage {
    crate::model::samples::icd_issue()
}

/// The ICD §3 sample parses, without errors, to exactly the expected canonical order.
#[test]
fn sample_parses_to_expected_model() {
    let p = cms_a().read_order(ISSUE);
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message, expected_issue());
}

/// The sample records each field's and container's `record:column` location.
#[test]
fn sample_records_locations() {
    let p = cms_a().read_order(ISSUE);
    let l = &p.locations;
    for (field, loc) in [
        ("message", "1:1"),
        ("court_ori", "1:2"),
        ("action", "1:46"),
        ("sequence", "1:48"),
        ("order", "1:1"),
        ("order.expiration", "1:71"),
        ("order.condition_codes", "1:84"),
        ("order.condition_codes[2]", "1:88"),
        ("order.termination_date", "1:133"),
        ("restrained_person", "2:1"),
        ("restrained_person.sex", "2:75"),
        ("restrained_person.residence.zip", "2:159"),
        ("protected_persons", "3:1"),
        ("protected_persons[0]", "3:1"),
        ("protected_persons[0].relationship", "3:82"),
        ("order.condition_text", "4:4"),
    ] {
        assert_eq!(l.get(field).as_deref(), Some(loc), "{field}");
    }
}

/// CRLF terminators and a last record without terminator read the same as LF.
#[test]
fn crlf_and_missing_last_terminator() {
    let recs = records(ISSUE);
    let crlf: Vec<u8> = recs.iter().flat_map(|r| r.iter().copied().chain(*b"\r\n")).collect();
    let p = cms_a().read_order(&crlf);
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message, expected_issue());
    let bare = &ISSUE[..ISSUE.len() - 1];
    let p = cms_a().read_order(bare);
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message, expected_issue());
}

/// The TERMINATE, CANCEL and SERVICE fixtures parse to their canonical fields.
#[test]
fn other_actions_parse() {
    let l = cms_a();
    let p = l.read_order(TERMINATE);
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message.action, Some(Action::Terminate));
    assert_eq!(p.message.sequence, Some(2));
    assert_eq!(p.message.order.termination_date, Some(date(2027, 3, 1)));
    assert_eq!(p.message.restrained_person, None);

    let p = l.read_order(CANCEL);
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message.action, Some(Action::Cancel));
    assert_eq!(p.message.order.cancel_reason, s("ENTERED IN ERROR - WRONG CASE NUMBER"));

    let p = l.read_order(SERVICE);
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message.action, Some(Action::Service));
    assert_eq!(
        p.message.order.service,
        Some(Service {
            served_at: Some(datetime(2026, 11, 26, 14, 30)),
            served_by: s("DEP R SMITH 4411"),
            serving_agency_ori: s("CA0340000"),
            method: s("P"),
        })
    );
    assert_eq!(p.locations.get("order.service").as_deref(), Some("2:1"));
    assert_eq!(p.locations.get("order.service.served_at").as_deref(), Some("2:2"));
}

/// A record one byte short is INVALID_FORMAT at the first missing column; the
/// rest of the message is still read.
#[test]
fn short_record_is_invalid_format() {
    let p = cms_a().read_order(BAD_SHORT);
    assert!(
        has(&p, ErrorCode::InvalidFormat, "restrained_person", "2:200"),
        "{:?}",
        errs(&p)
    );
    assert_eq!(p.errors.len(), 1, "{:?}", errs(&p));
    assert_eq!(p.message.order.order_number, s("24DV01234"));
    let mut recs = records(ISSUE);
    recs[0].push(b' ');
    let p = cms_a().read_order(&join(&recs));
    assert!(has(&p, ErrorCode::InvalidFormat, "order", "1:201"), "{:?}", errs(&p));
}

/// Byte 0x80 is INVALID_FORMAT at its exact record and column.
#[test]
fn non_ascii_byte_is_invalid_format_at_its_column() {
    let p = cms_a().read_order(BAD_BYTE);
    assert_eq!(
        errs(&p),
        vec![(
            ErrorCode::InvalidFormat,
            "restrained_person.name.last".into(),
            "2:3".into()
        )]
    );
    assert_eq!(p.message.restrained_person.as_ref().unwrap().name.last, None);
}

/// Every single byte of the sample replaced by a byte above 0x7F is reported
/// at exactly that `record:column`.
#[test]
fn every_high_byte_is_located() {
    let l = cms_a();
    for (i, &b) in ISSUE.iter().enumerate() {
        if b == b'\n' {
            continue;
        }
        let mut body = ISSUE.to_vec();
        body[i] = 0x80 + (i % 128) as u8;
        let record = ISSUE[..i].iter().filter(|&&c| c == b'\n').count() + 1;
        let column = i - ISSUE[..i].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1) + 1;
        let p = l.read_order(&body);
        let want = format!("{record}:{column}");
        assert!(
            p.errors
                .iter()
                .any(|e| e.code == ErrorCode::InvalidFormat && e.location.as_deref() == Some(want.as_str())),
            "byte {i} ({want}): {:?}",
            errs(&p)
        );
    }
}

/// February 30 is INVALID_DATE; a badly shaped date is INVALID_FORMAT.
#[test]
fn dates_impossible_and_misshapen() {
    let p = cms_a().read_order(BAD_FEB_30);
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::InvalidDate, "order.issue_date".into(), "1:63".into())]
    );
    assert_eq!(p.message.order.issue_date, None);

    let mut recs = records(ISSUE);
    patch(&mut recs, 1, 77, "1985-2-1");
    patch(&mut recs, 2, 74, "19870231");
    let p = cms_a().read_order(&join(&recs));
    assert!(has(
        &p,
        ErrorCode::InvalidFormat,
        "restrained_person.birth_date",
        "2:77"
    ));
    assert!(has(
        &p,
        ErrorCode::InvalidDate,
        "protected_persons[0].birth_date",
        "3:74"
    ));
}

/// A blank expiration date means none; a blank expiration time means 23:59;
/// a bad time is INVALID_DATE.
#[test]
fn expiration_defaults() {
    let l = cms_a();
    let mut recs = records(ISSUE);
    patch(&mut recs, 0, 71, "            ");
    let p = l.read_order(&join(&recs));
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(p.message.order.expiration, None);

    let mut recs = records(ISSUE);
    patch(&mut recs, 0, 79, "    ");
    assert_eq!(
        l.read_order(&join(&recs)).message.order.expiration,
        Some(datetime(2031, 11, 25, 23, 59))
    );

    patch(&mut recs, 0, 79, "1200");
    assert_eq!(
        l.read_order(&join(&recs)).message.order.expiration,
        Some(datetime(2031, 11, 25, 12, 0))
    );

    patch(&mut recs, 0, 79, "2575");
    let p = l.read_order(&join(&recs));
    assert!(
        has(&p, ErrorCode::InvalidDate, "order.expiration", "1:79"),
        "{:?}",
        errs(&p)
    );
    assert_eq!(p.message.order.expiration, None);
}

/// A served date without its time is MISSING at the time's column (no default).
#[test]
fn service_time_required() {
    let mut recs = records(SERVICE);
    patch(&mut recs, 1, 10, "    ");
    let p = cms_a().read_order(&join(&recs));
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::Missing, "order.service.served_at".into(), "2:10".into())]
    );
}

/// An unknown action code is INVALID_CODE on `action`; the order check is skipped.
#[test]
fn unknown_action_code() {
    let mut recs = records(ISSUE);
    patch(&mut recs, 0, 46, "XX");
    let p = cms_a().read_order(&join(&recs));
    assert_eq!(errs(&p), vec![(ErrorCode::InvalidCode, "action".into(), "1:46".into())]);
    assert_eq!(p.message.action, None);
}

/// The sequence must be four zero-padded digits; digits fields must be digits;
/// flags must be Y or N.
#[test]
fn digits_numbers_and_flags() {
    let l = cms_a();
    for bad in ["  01", "1   ", "00A1"] {
        let mut recs = records(ISSUE);
        patch(&mut recs, 0, 48, bad);
        let p = l.read_order(&join(&recs));
        assert_eq!(
            errs(&p),
            vec![(ErrorCode::InvalidFormat, "sequence".into(), "1:48".into())]
        );
    }
    let mut recs = records(ISSUE);
    patch(&mut recs, 1, 85, "5'1");
    patch(&mut recs, 1, 159, "9581A");
    patch(&mut recs, 0, 102, "X");
    let p = l.read_order(&join(&recs));
    assert!(has(&p, ErrorCode::InvalidFormat, "restrained_person.height", "2:85"));
    assert!(has(
        &p,
        ErrorCode::InvalidFormat,
        "restrained_person.residence.zip",
        "2:159"
    ));
    assert!(has(&p, ErrorCode::InvalidCode, "order.firearm_relinquishment", "1:102"));
    assert_eq!(p.errors.len(), 3, "{:?}", errs(&p));
}

/// Text is trimmed and blank is none; codes skip blank slots.
#[test]
fn blanks_are_none() {
    let mut recs = records(ISSUE);
    patch(&mut recs, 1, 52, "                    ");
    patch(&mut recs, 0, 84, "01    07          ");
    let p = cms_a().read_order(&join(&recs));
    assert!(p.is_ok());
    assert_eq!(p.message.restrained_person.unwrap().name.middle, None);
    assert_eq!(p.message.order.condition_codes, vec!["01", "07"]);
    assert_eq!(p.locations.get("order.condition_codes[1]").as_deref(), Some("1:90"));
}

/// An unknown record type is INVALID_FORMAT at the record's type column.
#[test]
fn unknown_record_type() {
    let mut recs = records(ISSUE);
    recs.insert(3, rec(&[(1, "Z"), (2, "WHATEVER")]));
    let p = cms_a().read_order(&join(&recs));
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::InvalidFormat, "message".into(), "4:1".into())]
    );
}

/// Records out of order, missing or too many for the action are INVALID_FORMAT
/// naming the record.
#[test]
fn record_order_per_action() {
    let l = cms_a();
    // ISSUE without its P record.
    let mut recs = records(ISSUE);
    recs.remove(2);
    let p = l.read_order(&join(&recs));
    assert!(
        has(&p, ErrorCode::InvalidFormat, "protected_persons", "3:1"),
        "{:?}",
        errs(&p)
    );
    // ISSUE ending after O.
    let recs = records(ISSUE);
    let p = l.read_order(&join(&recs[..1]));
    assert!(
        has(&p, ErrorCode::InvalidFormat, "restrained_person", "2:1"),
        "{:?}",
        errs(&p)
    );
    // R and P swapped.
    let mut recs = records(ISSUE);
    recs.swap(1, 2);
    let p = l.read_order(&join(&recs));
    assert!(!p.is_ok());
    assert!(p.errors.iter().all(|e| e.code == ErrorCode::InvalidFormat));
    // TERMINATE with an R record.
    let mut recs = records(TERMINATE);
    recs.push(records(ISSUE)[1].clone());
    let p = l.read_order(&join(&recs));
    assert!(
        has(&p, ErrorCode::InvalidFormat, "restrained_person", "2:1"),
        "{:?}",
        errs(&p)
    );
    // Ten P records.
    let mut recs = records(ISSUE);
    let person = recs[2].clone();
    for _ in 0..9 {
        recs.insert(2, person.clone());
    }
    let p = l.read_order(&join(&recs));
    assert!(
        has(&p, ErrorCode::InvalidFormat, "protected_persons", "12:1"),
        "{:?}",
        errs(&p)
    );
    assert_eq!(p.message.protected_persons.len(), 10);
    // SERVICE without S.
    let recs = records(SERVICE);
    let p = l.read_order(&join(&recs[..1]));
    assert!(
        has(&p, ErrorCode::InvalidFormat, "order.service", "2:1"),
        "{:?}",
        errs(&p)
    );
}

/// M lines are trimmed and joined with one space, must count 01, 02, … and
/// over 500 characters joined is TOO_LONG.
#[test]
fn condition_lines() {
    let l = cms_a();
    let mut recs = records(ISSUE);
    recs.push(rec(&[(1, "M02"), (4, "  AND NO CONTACT.   ")]));
    let p = l.read_order(&join(&recs));
    assert!(p.is_ok(), "{:?}", errs(&p));
    assert_eq!(
        p.message.order.condition_text,
        s("STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE. AND NO CONTACT.")
    );

    let mut recs = records(ISSUE);
    recs.push(rec(&[(1, "M03"), (4, "X")]));
    let p = l.read_order(&join(&recs));
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::InvalidFormat, "order.condition_text".into(), "5:2".into())]
    );

    let mut recs = records(ISSUE);
    recs.truncate(3);
    let line = "A".repeat(100);
    for i in 1..=5 {
        recs.push(rec(&[(1, &format!("M{i:02}")), (4, &line)]));
    }
    let p = l.read_order(&join(&recs));
    // 5 × 100 + 4 separators = 504 characters; line 5 passes 500.
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::TooLong, "order.condition_text".into(), "8:4".into())]
    );
    assert_eq!(p.message.order.condition_text.map(|t| t.len()), Some(504));
}

/// More records than any action allows stops reading early with INVALID_FORMAT.
#[test]
fn too_many_records_stop_early() {
    let body: Vec<u8> = ISSUE.iter().copied().cycle().take(ISSUE.len() * 1000).collect();
    let p = cms_a().read_order(&body);
    assert!(has(&p, ErrorCode::InvalidFormat, "message", "17:1"), "{:?}", errs(&p));
}

/// Empty input is one INVALID_FORMAT on `message`.
#[test]
fn empty_input() {
    let p = cms_a().read_order(b"");
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::InvalidFormat, "message".into(), "1:1".into())]
    );
    let p = cms_a().read_order(b"\n");
    assert!(has(&p, ErrorCode::InvalidFormat, "message", "1:1"), "{:?}", errs(&p));
}

/// Tiny xorshift generator, so the fuzz tests need no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// No input panics: every truncation of each fixture, random bytes, random
/// mutations of the sample, and bytes above 0x7F everywhere.
#[test]
fn never_panics() {
    let l = cms_a();
    for body in [ISSUE, TERMINATE, CANCEL, SERVICE, BAD_SHORT, BAD_BYTE, BAD_FEB_30] {
        for k in 0..=body.len() {
            let _ = l.read_order(&body[..k]);
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let len = (rng.next() % 1200) as usize;
        let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = l.read_order(&body);
        let mut body = ISSUE.to_vec();
        for _ in 0..(round % 20 + 1) {
            let i = (rng.next() as usize) % body.len();
            body[i] = match rng.next() % 4 {
                0 => b'\n',
                1 => b'\r',
                2 => b' ',
                _ => rng.next() as u8,
            };
        }
        let _ = l.read_order(&body);
    }
    let high = vec![0xFFu8; 201 * 3];
    assert!(!l.read_order(&high).is_ok());
    let lines: Vec<u8> = std::iter::repeat_n(b'\n', 5000).collect();
    assert!(!l.read_order(&lines).is_ok());
}

/// A layout written at run time — other columns, widths, record codes, date
/// patterns, CRLF only — reads its own input with no code change.
#[test]
fn run_time_layout_reads_its_own_input() {
    let toml = r#"
name = "cms-b/2"
description = "A made-up CMS: 80-byte records, type in the last two columns."
record_length = 80
terminators = ["CRLF"]
record_type = { start = 79, length = 2 }

[[record_order]]
actions = ["ISSUE"]
records = [
    { type = "HD", min = 1, max = 1 },
    { type = "DF", min = 1, max = 1 },
    { type = "VI", min = 1, max = 3 },
    { type = "TX", min = 0, max = 2 },
]

[[record_order]]
actions = ["TERMINATE"]
records = [{ type = "HD", min = 1, max = 1 }]

[[records]]
type = "HD"
container = "order"
fields = [
    { field = "action", start = 1, length = 1, type = "action", codes = { N = "ISSUE", T = "TERMINATE" } },
    { field = "court_ori", start = 2, length = 9, type = "text" },
    { field = "order.order_number", start = 11, length = 12, type = "text" },
    { field = "sequence", start = 23, length = 3, type = "number" },
    { field = "order.order_type", start = 26, length = 3, type = "code" },
    { field = "order.issue_date", start = 29, length = 10, type = "date", pattern = "MM/DD/CCYY" },
    { field = "order.expiration", start = 39, length = 12, type = "datetime", pattern = "MMDDYYYYHHMM" },
    { field = "order.condition_codes", start = 51, length = 6, type = "codes", width = 3 },
    { field = "order.firearm_relinquishment", start = 57, length = 1, type = "flag", yes = "1", no = "0" },
    { field = "order.termination_date", start = 58, length = 8, type = "date", pattern = "MMDDYYYY" },
]

[[records]]
type = "DF"
container = "restrained_person"
fields = [
    { field = "restrained_person.name.last", start = 1, length = 20, type = "text" },
    { field = "restrained_person.name.first", start = 21, length = 15, type = "text" },
    { field = "restrained_person.sex", start = 36, length = 1, type = "code" },
    { field = "restrained_person.race", start = 37, length = 1, type = "code" },
    { field = "restrained_person.birth_date", start = 38, length = 8, type = "date", pattern = "MMDDYYYY" },
]

[[records]]
type = "VI"
container = "protected_persons[]"
fields = [
    { field = "protected_persons[].name.last", start = 1, length = 20, type = "text" },
    { field = "protected_persons[].name.first", start = 21, length = 15, type = "text" },
    { field = "protected_persons[].sex", start = 36, length = 1, type = "code" },
    { field = "protected_persons[].relationship", start = 37, length = 2, type = "code" },
]

[[records]]
type = "TX"
fields = [
    { name = "line", start = 1, length = 1, type = "line_number" },
    { field = "order.condition_text", start = 2, length = 60, type = "text", join = " ", max_length = 500 },
]
"#;
    let layout = Layout::from_toml_str("cms-b-2.toml", toml).expect("layout loads");
    assert_eq!(layout.name(), "cms-b/2");
    assert_eq!(layout.max_records(), 7);

    let line = |parts: &[(usize, &str)]| {
        let mut r = vec![b' '; 80];
        for (start, text) in parts {
            r[start - 1..start - 1 + text.len()].copy_from_slice(text.as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    let body: Vec<u8> = [
        line(&[
            (1, "N"),
            (2, "CA034025J"),
            (11, "24DV01234"),
            (23, "1"),
            (26, "DV"),
            (29, "11/25/2026"),
            (39, "112520311200"),
            (51, "01 07"),
            (57, "1"),
            (79, "HD"),
        ]),
        line(&[(1, "DOE"), (21, "JOHN"), (36, "MW"), (38, "02141985"), (79, "DF")]),
        line(&[(1, "DOE"), (21, "JANE"), (36, "FSP"), (79, "VI")]),
        line(&[(1, "ROE"), (21, "JUNE"), (36, "FCH"), (79, "VI")]),
        line(&[(1, "1"), (2, "NO CONTACT"), (79, "TX")]),
        line(&[(1, "2"), (2, "STAY 100 YARDS AWAY"), (79, "TX")]),
    ]
    .concat();
    let p = layout.read_order(&body);
    assert!(p.is_ok(), "{:?}", errs(&p));
    let m = &p.message;
    assert_eq!(m.court_ori, "CA034025J");
    assert_eq!(m.action, Some(Action::Issue));
    assert_eq!(m.sequence, Some(1));
    assert_eq!(m.order.issue_date, Some(date(2026, 11, 25)));
    assert_eq!(m.order.expiration, Some(datetime(2031, 11, 25, 12, 0)));
    assert_eq!(m.order.condition_codes, vec!["01", "07"]);
    assert_eq!(m.order.firearm_relinquishment, Some(true));
    assert_eq!(m.order.condition_text, s("NO CONTACT STAY 100 YARDS AWAY"));
    let rp = m.restrained_person.as_ref().unwrap();
    assert_eq!(rp.birth_date, Some(date(1985, 2, 14)));
    assert_eq!(rp.sex, s("M"));
    assert_eq!(m.protected_persons.len(), 2);
    assert_eq!(m.protected_persons[1].name.last, s("ROE"));
    assert_eq!(m.protected_persons[1].relationship, s("CH"));
    assert_eq!(
        p.locations.get("protected_persons[1].relationship").as_deref(),
        Some("4:37")
    );
    assert_eq!(p.locations.get("restrained_person.birth_date").as_deref(), Some("2:38"));

    // The cms-b/2 rules are its own: a bare LF is refused, as is an
    // ISO date where MM/DD/CCYY is expected.
    let lf: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    assert!(
        errs(&layout.read_order(&lf))
            .iter()
            .any(|(c, _, l)| *c == ErrorCode::InvalidFormat && l == "1:81")
    );
    let mut iso = body.clone();
    iso[28..38].copy_from_slice(b"2026-11-25");
    let p = layout.read_order(&iso);
    assert_eq!(
        errs(&p),
        vec![(ErrorCode::InvalidFormat, "order.issue_date".into(), "1:29".into())]
    );
}

/// Trimming by blocks gives what trimming byte by byte gives, for every
/// length and every place of the value inside its padding.
#[test]
fn trimming_by_blocks_matches_trimming_by_bytes() {
    for len in 0..48 {
        for start in 0..=len {
            for end in start..=len {
                let mut field = vec![b' '; len];
                for b in &mut field[start..end] {
                    *b = b'X';
                }
                // A space inside the value is kept.
                if end - start > 2 {
                    field[start + 1] = b' ';
                }
                let naive_start = field.iter().position(|&b| b != b' ').unwrap_or(len);
                let naive_end = field.iter().rposition(|&b| b != b' ').map_or(naive_start, |e| e + 1);
                let range = super::trimmed_range(&field);
                if naive_start == naive_end {
                    assert!(range.is_empty(), "{len} {start} {end}: blank gives {range:?}");
                } else {
                    assert_eq!(range, naive_start..naive_end, "{len} {start} {end}");
                }
            }
        }
    }
}

/// `layout` with every record read field by field: one general step per
/// field, fillers included, which is what [`super::Reader::fields`] does
/// with a clean record of the full length.
fn field_by_field(layout: &Layout) -> Layout {
    use crate::formats::fixed::layout::{Op, Step};
    let mut general = layout.clone();
    for record in &mut general.records {
        record.steps = record
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| Step {
                start: (f.start - 1) as u32,
                end: (f.start - 1 + f.length) as u32,
                field: i as u32,
                op: Op::General,
            })
            .collect();
    }
    general
}

/// Reading clean records through their compiled steps gives exactly what
/// the general, field-by-field reader gives: the same order and the same
/// errors, for every sample of both layouts, with LF and CRLF, and for the
/// values the steps hand on to the general reader (over a maximum, digits
/// that are not, an impossible date).
#[test]
fn steps_read_what_the_general_reader_reads() {
    use crate::formats::fixed::layout::Op;
    // A layout with a maximum shorter than its field, so that a value can
    // be too long.
    let text = CMS_A.replace(
        r#"{ field = "order.case_number", start = 11, length = 20, type = "text" }"#,
        r#"{ field = "order.case_number", start = 11, length = 20, type = "text", max_length = 8 }"#,
    );
    assert_ne!(text, CMS_A, "the case number line is in the layout");
    let cms_a = Layout::from_toml_str("cms-a-1.toml", &text).expect("layout loads");
    let cms_b = Layout::from_toml_str("cms-b-2.toml", CMS_B).expect("cms-b/2 loads");
    for layout in [&cms_a, &cms_b] {
        let compiled = layout.records.iter().flat_map(|r| &r.steps);
        assert!(
            compiled.clone().any(|s| s.op != Op::General),
            "{} has steps of its own",
            layout.name()
        );
        assert!(
            compiled.count() < layout.records.iter().map(|r| r.fields.len()).sum(),
            "{}: fillers have no step",
            layout.name()
        );
    }
    let mut bodies: Vec<Vec<u8>> = [ISSUE, TERMINATE, CANCEL, SERVICE, BAD_FEB_30, BAD_SHORT, BAD_BYTE]
        .map(<[u8]>::to_vec)
        .into();
    let mut recs = records(ISSUE);
    patch(&mut recs, 0, 11, "24DV01234567");
    patch(&mut recs, 1, 85, "5X0");
    patch(&mut recs, 1, 159, "958 4");
    bodies.push(join(&recs));
    let crlf: Vec<u8> = records(ISSUE)
        .iter()
        .flat_map(|r| r.iter().copied().chain(*b"\r\n"))
        .collect();
    bodies.push(crlf);
    let b_bodies = [CMS_B_ISSUE, CMS_B_TERMINATE, CMS_B_CANCEL, CMS_B_SERVICE, CMS_B_MODIFY].map(<[u8]>::to_vec);
    for (layout, bodies) in [(&cms_a, &bodies[..]), (&cms_b, &b_bodies[..])] {
        let general = field_by_field(layout);
        for body in bodies {
            let (a, b) = (layout.read_order(body), general.read_order(body));
            assert_eq!(a.message, b.message, "{}", String::from_utf8_lossy(body));
            assert_eq!(a.errors, b.errors, "{}", String::from_utf8_lossy(body));
            assert!(a.message.action.is_some(), "{}", String::from_utf8_lossy(body));
        }
    }
    let patched = cms_a.read_order(&bodies[bodies.len() - 2]);
    let codes: Vec<_> = patched.errors.iter().map(|e| (e.code, e.field.as_str())).collect();
    assert!(codes.contains(&(ErrorCode::TooLong, "order.case_number")), "{codes:?}");
    assert!(
        codes.contains(&(ErrorCode::InvalidFormat, "restrained_person.height")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(ErrorCode::InvalidFormat, "restrained_person.residence.zip")),
        "{codes:?}"
    );
}

/// Every byte `is_bad_byte` lets through is ASCII, so `clean_text` gives
/// text for it; every other byte makes `clean_text` refuse the field. This
/// holds for all 256 byte values.
#[test]
fn clean_bytes_are_ascii() {
    for b in 0..=u8::MAX {
        if !super::is_bad_byte(b) {
            assert!(b.is_ascii(), "byte 0x{b:02X}");
            assert!(super::clean_text(&[b]).is_some());
        } else {
            assert!(super::clean_text(&[b' ', b]).is_none(), "byte 0x{b:02X}");
        }
    }
}
