//! Property tests for the format layer.
//!
//! The generators produce only contract-conforming canonical orders (ICD §0,
//! §2, §3): all five actions, every length within its maximum, codes drawn
//! from `mappings/codes.toml`, real dates in order (birth ≤ issue ≤
//! expiration), ORIs, order numbers `[A-Z0-9-]`, heights as FII, five-digit
//! ZIPs. Every generated order passes [`validate`]; that is checked first in
//! each property, so a generator drifting out of the contract fails loudly.
//!
//! What each format can represent decides the generator's *profile*:
//!
//! - **XML** carries everything: any text XML 1.0 allows (non-ASCII, `&`,
//!   `<`, tabs and newlines inside a value), seconds and fractions in
//!   date-times, `SentDateTime` with an offset, a protected person's suffix,
//!   and the signed image. Normalisation: a value never starts or ends with
//!   XML white space (the reader trims it, as the XSD's token types do), and
//!   a present text is never empty (empty means absent).
//! - **Fixed-width** (`cms-a/1`, `cms-b/2`, written with
//!   `Layout::write_order`) carries printable ASCII only, left-justified and
//!   space-padded, so values do not start or end with a space; times to the
//!   minute; no `SentDateTime` (the AMQP timestamp stands in) and no image.
//!   `cms-a/1` has no suffix for protected persons; `cms-b/2` has one, and
//!   maps codes through `cms-b`. Sequences stay within 1–9999 (ICD §5 MCN). The
//!   condition text is words one space apart in lines of at most 100
//!   (`cms-a/1`, 5 lines) or 200 (`cms-b/2`, 3 lines) characters, at most
//!   500 in all, so that it fits the text records and a line break is never
//!   ambiguous (lines are trimmed and joined with one space). An address or
//!   licence with no field set is absent.
//! - **CLETS** is reached through `translate`, which uppercases, replaces
//!   `.` and shortens composite names; text here is printable ASCII, and the
//!   property compares each field with what the ICD §6 rules make of the
//!   canonical value, with names of any length the contract allows (the
//!   translator shortens composite names, never refuses them).
//!
//! Case counts stay modest (64–256) so the suite runs in seconds.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use porter::formats::clets::CletsRequest;
use porter::formats::fixed::Layout;
use porter::formats::xml::{XmlLimits, read_order, write_order};
use porter::mapping::clets::CletsTables;
use porter::mapping::code_map::CodeMap;
use porter::mapping::codes::{CodeList, CodeLists};
use porter::model::{
    Action, Address, DriverLicense, ErrorCode, FieldError, Locations, OrderImage, OrderMessage, PersonName,
    ProtectedPerson, ProtectionOrder, RestrainedPerson, Service, Text,
};
use porter::translate::clets::translate;
use porter::translate::text::to_clets_text;
use porter::validate::{ValidationContext, merge, validate};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static CODES: LazyLock<CodeLists> =
    LazyLock::new(|| CodeLists::load(repo().join("mappings/codes.toml")).expect("mappings/codes.toml loads"));
static TABLES: LazyLock<CletsTables> =
    LazyLock::new(|| CletsTables::load(&repo().join("mappings/clets.toml")).expect("mappings/clets.toml loads"));

/// What the target format can carry (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Xml,
    /// Fixed-width `cms-a/1`.
    CmsA,
    /// Fixed-width `cms-b/2`.
    CmsB,
    Clets,
}

impl Profile {
    /// Whether a protected person's name has a suffix in this format.
    fn protected_suffix(self) -> bool {
        matches!(self, Profile::Xml | Profile::CmsB)
    }
}

// ---------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------

fn code(list: CodeList) -> impl Strategy<Value = Text> {
    let codes: Vec<Text> = CODES.codes(list).map(Text::from).collect();
    select(codes)
}

/// Text matching `regex`.
fn code_text(regex: &'static str) -> impl Strategy<Value = Text> {
    regex.prop_map(Text::from)
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn text_char(p: Profile) -> BoxedStrategy<char> {
    match p {
        Profile::Xml => prop_oneof![
            12 => proptest::char::range(' ', '~'),
            4 => proptest::char::range('\u{C0}', '\u{17F}'),
            2 => any::<char>().prop_filter("XML 1.0 character", |c| is_xml_char(*c)),
            1 => select(vec!['\t', '\n', '\r', '&', '<', '>', '"', '\'', ']']),
        ]
        .boxed(),
        _ => proptest::char::range(' ', '~').boxed(),
    }
}

fn is_edge_space(p: Profile, c: char) -> bool {
    match p {
        Profile::Xml => matches!(c, ' ' | '\t' | '\r' | '\n'),
        _ => c == ' ',
    }
}

/// Free text of `min..=max` characters that does not start or end with
/// white space the format would trim.
fn text(p: Profile, min: usize, max: usize) -> BoxedStrategy<Text> {
    proptest::collection::vec(text_char(p), min.max(1)..=max)
        .prop_map(move |mut chars| {
            for i in [0, chars.len() - 1] {
                if is_edge_space(p, chars[i]) {
                    chars[i] = 'X';
                }
            }
            chars.into_iter().collect()
        })
        .boxed()
}

fn opt_text(p: Profile, max: usize) -> BoxedStrategy<Option<Text>> {
    proptest::option::of(text(p, 1, max)).boxed()
}

/// Words of printable ASCII, one space apart, in 1–`lines` lines of at
/// most `width` characters, at most 500 in all: exactly what the condition
/// text records carry (cms-a/1: 5 × 100, cms-b/2: 3 × 200).
fn condition_lines(lines: usize, width: usize) -> BoxedStrategy<Text> {
    let word = "[!-~]{1,12}";
    let line = proptest::collection::vec(word, 1..=width / 5).prop_map(move |w| {
        let mut line = String::new();
        for word in w {
            if line.len() + 1 + word.len() > width {
                break;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        line
    });
    proptest::collection::vec(line, 1..=lines)
        .prop_map(|lines| {
            let mut text = lines.join(" ");
            // Drop last words down to the ICD's 500 (over 100 characters
            // there are always several lines, so always a space).
            while text.len() > 500 {
                let cut = text.rfind(' ').expect("several lines");
                text.truncate(cut);
            }
            Text::from(text)
        })
        .boxed()
}

fn condition_text(p: Profile) -> BoxedStrategy<Option<Text>> {
    match p {
        Profile::CmsA => proptest::option::of(condition_lines(5, 100)).boxed(),
        Profile::CmsB => proptest::option::of(condition_lines(3, 200)).boxed(),
        _ => opt_text(p, 500),
    }
}

fn ori() -> impl Strategy<Value = Text> {
    "[A-Z0-9]{9}".prop_map(Text::from)
}

fn date_in(from: NaiveDate, days: i64) -> impl Strategy<Value = NaiveDate> {
    (0..=days.max(0)).prop_map(move |d| from + Duration::days(d))
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
}

/// A time of day: to the minute for fixed-width and CLETS; XML also
/// carries seconds and milliseconds.
fn time_of_day(p: Profile) -> BoxedStrategy<NaiveTime> {
    match p {
        Profile::Xml => (
            0u32..24,
            0u32..60,
            0u32..60,
            prop_oneof![3 => Just(0u32), 1 => 0u32..1000],
        )
            .prop_map(|(h, m, s, ms)| NaiveTime::from_hms_milli_opt(h, m, s, ms).expect("a real time"))
            .boxed(),
        _ => (0u32..24, 0u32..60)
            .prop_map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).expect("a real time"))
            .boxed(),
    }
}

fn date_time_after(p: Profile, from: NaiveDate, days: i64) -> impl Strategy<Value = NaiveDateTime> {
    (date_in(from, days), time_of_day(p)).prop_map(|(d, t)| d.and_time(t))
}

fn sent_at() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (
        date_time_after(Profile::Xml, ymd(2020, 1, 1), 3650),
        -12 * 60..=14 * 60i32,
    )
        .prop_map(|(at, minutes)| {
            let offset = FixedOffset::east_opt(minutes * 60).expect("offset within a day");
            at.and_local_timezone(offset)
                .single()
                .expect("a fixed offset is unambiguous")
        })
}

fn image() -> impl Strategy<Value = OrderImage> {
    (
        select(vec!["application/pdf", "image/tiff"]),
        proptest::collection::vec(any::<u8>(), 1..64),
    )
        .prop_map(|(mime, data)| OrderImage::new(mime, hex::encode(Sha256::digest(&data)), data))
}

// ---------------------------------------------------------------------------
// Parties
// ---------------------------------------------------------------------------

fn person_name(p: Profile, first_required: bool, with_suffix: bool) -> BoxedStrategy<PersonName> {
    let first = if first_required {
        text(p, 1, 20).prop_map(Some).boxed()
    } else {
        opt_text(p, 20)
    };
    let suffix = if with_suffix {
        opt_text(p, 3)
    } else {
        Just(None).boxed()
    };
    (text(p, 1, 30), first, opt_text(p, 20), suffix)
        .prop_map(|(last, first, middle, suffix)| PersonName {
            last: Some(last),
            first,
            middle,
            suffix,
        })
        .boxed()
}

fn height() -> impl Strategy<Value = Text> {
    (3u32..=8, 0u32..=11).prop_map(|(f, i)| Text::from(format!("{f}{i:02}")))
}

fn address(p: Profile) -> impl Strategy<Value = Option<Address>> {
    (
        opt_text(p, 40),
        opt_text(p, 20),
        proptest::option::of(code_text("[A-Z]{2}")),
        proptest::option::of(code_text("[0-9]{5}")),
    )
        .prop_map(|(street, city, state, zip)| {
            let a = Address {
                street,
                city,
                state,
                zip,
            };
            (a != Address::default()).then_some(a)
        })
}

fn driver_license(p: Profile) -> impl Strategy<Value = Option<DriverLicense>> {
    // OLS is required with OLN on the way to CLETS, so a number has a state.
    (opt_text(p, 20), proptest::option::of(code_text("[A-Z]{2}"))).prop_map(|(number, state)| {
        let state = if number.is_some() {
            state.or_else(|| Some("CA".into()))
        } else {
            state
        };
        let dl = DriverLicense { number, state };
        (dl != DriverLicense::default()).then_some(dl)
    })
}

fn restrained(p: Profile, issue: NaiveDate) -> impl Strategy<Value = RestrainedPerson> {
    (
        person_name(p, true, true),
        date_in(ymd(1900, 1, 1), (issue - ymd(1900, 1, 1)).num_days()),
        code(CodeList::Sex),
        code(CodeList::Race),
        proptest::option::of(height()),
        proptest::option::of((1u32..=999).prop_map(|w| Text::from(w.to_string()))),
        proptest::option::of(code(CodeList::Eye)),
        proptest::option::of(code(CodeList::Hair)),
        address(p),
        driver_license(p),
    )
        .prop_map(
            |(name, dob, sex, race, height, weight, eye, hair, residence, driver_license)| RestrainedPerson {
                name,
                birth_date: Some(dob),
                sex: Some(sex),
                race: Some(race),
                height,
                weight,
                eye,
                hair,
                residence,
                driver_license,
            },
        )
}

fn protected(p: Profile, issue: NaiveDate) -> impl Strategy<Value = ProtectedPerson> {
    (
        person_name(p, false, p.protected_suffix()),
        proptest::option::of(date_in(ymd(1900, 1, 1), (issue - ymd(1900, 1, 1)).num_days())),
        code(CodeList::Sex),
        proptest::option::of(code(CodeList::Race)),
        proptest::option::of(code(CodeList::Relationship)),
    )
        .prop_map(|(name, birth_date, sex, race, relationship)| ProtectedPerson {
            name,
            birth_date,
            sex: Some(sex),
            race,
            relationship,
        })
}

// ---------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------

fn header(p: Profile, action: Action) -> impl Strategy<Value = (Text, u32, Option<DateTime<FixedOffset>>, Text, Text)> {
    let first = if action == Action::Issue { 1u32 } else { 2 };
    // XML requires por:SentDateTime; fixed-width has none (the AMQP
    // timestamp stands in).
    let sent = if p == Profile::Xml {
        sent_at().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (
        ori(),
        first..=9_999u32,
        sent,
        code_text("[A-Z0-9-]{1,15}"),
        code(CodeList::OrderType),
    )
        .prop_map(|(ori, seq, sent, number, typ)| (ori, seq, sent, number, typ))
}

/// A full ISSUE or MODIFY.
fn full_order(p: Profile, action: Action) -> BoxedStrategy<OrderMessage> {
    (header(p, action), date_in(ymd(2000, 1, 1), 36_000))
        .prop_flat_map(move |(h, issue)| {
            let pcos: Vec<Text> = CODES.codes(CodeList::Condition).map(Text::from).collect();
            let terms = (
                text(p, 1, 20),
                opt_text(p, 8),
                proptest::option::of(date_time_after(p, issue, 3650)),
                opt_text(p, 30),
                code(CodeList::Brady),
                condition_text(p),
                subsequence(pcos, 1..=9),
                proptest::option::of(any::<bool>()),
            );
            let image = if p == Profile::Xml {
                proptest::option::of(image()).boxed()
            } else {
                Just(None).boxed()
            };
            (
                Just(h),
                Just(issue),
                terms,
                restrained(p, issue),
                proptest::collection::vec(protected(p, issue), 1..=9),
                image,
            )
        })
        .prop_map(move |((ori, seq, sent, number, typ), issue, terms, rp, pps, image)| {
            let (case, form, expiration, judge, brady, cond_text, pcos, firearm) = terms;
            OrderMessage {
                court_ori: ori,
                action: Some(action),
                sequence: Some(seq),
                sent_at: sent,
                order: ProtectionOrder {
                    order_number: Some(number),
                    case_number: Some(case),
                    order_type: Some(typ),
                    form_id: form,
                    issue_date: Some(issue),
                    expiration,
                    judicial_officer: judge,
                    brady: Some(brady),
                    condition_text: cond_text,
                    condition_codes: pcos,
                    firearm_relinquishment: firearm,
                    ..Default::default()
                },
                restrained_person: Some(rp),
                protected_persons: pps,
                image,
            }
        })
        .boxed()
}

/// A TERMINATE, CANCEL or SERVICE: the order key and the action's own part.
fn short_order(p: Profile, action: Action) -> BoxedStrategy<OrderMessage> {
    let part = (
        date_in(ymd(2000, 1, 1), 36_000),
        text(p, 1, 60),
        date_time_after(p, ymd(2000, 1, 1), 36_000),
        text(p, 1, 30),
        ori(),
        code(CodeList::ServiceMethod),
        opt_text(p, 20),
    );
    (header(p, action), part)
        .prop_map(
            move |((ori, seq, sent, number, typ), (end, reason, served, by, agency, method, case))| {
                let mut order = ProtectionOrder {
                    order_number: Some(number),
                    order_type: Some(typ),
                    case_number: case,
                    ..Default::default()
                };
                match action {
                    Action::Terminate => order.termination_date = Some(end),
                    Action::Cancel => order.cancel_reason = Some(reason),
                    _ => {
                        order.service = Some(Service {
                            served_at: Some(served),
                            served_by: Some(by),
                            serving_agency_ori: Some(agency),
                            method: Some(method),
                        })
                    }
                }
                OrderMessage {
                    court_ori: ori,
                    action: Some(action),
                    sequence: Some(seq),
                    sent_at: sent,
                    order,
                    ..Default::default()
                }
            },
        )
        .boxed()
}

/// A contract-conforming order of any action for the profile.
fn order(p: Profile) -> BoxedStrategy<OrderMessage> {
    prop_oneof![
        3 => full_order(p, Action::Issue),
        2 => full_order(p, Action::Modify),
        1 => short_order(p, Action::Terminate),
        1 => short_order(p, Action::Cancel),
        1 => short_order(p, Action::Service),
    ]
    .boxed()
}

fn validation_errors(m: &OrderMessage) -> Vec<FieldError> {
    let ctx = ValidationContext {
        queue_court_ori: &m.court_ori,
        user_id: None,
        amqp_users: &[],
        codes: &CODES,
    };
    validate(m, &Locations::default(), &ctx)
}

/// `cases` per property, or `PROPTEST_CASES` when set (for a deeper run).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Any conforming order written as XML reads back as the same order.
    #[test]
    fn xml_round_trip(m in order(Profile::Xml)) {
        prop_assert_eq!(validation_errors(&m), vec![]);
        let body = write_order(&m);
        let parsed = read_order(&body, &XmlLimits::default());
        prop_assert!(parsed.errors.is_empty(), "{:?}\n{}", parsed.errors, String::from_utf8_lossy(&body));
        prop_assert_eq!(parsed.message, m);
    }

    /// Any conforming order's CLETS request, written and read back, gives
    /// the same fields, and those fields say what the order says.
    #[test]
    fn clets_round_trip(m in order(Profile::Clets), nic in "[A-Z][0-9]{9}", revision in 0u32..10) {
        prop_assert_eq!(validation_errors(&m), vec![]);
        let action = m.action.expect("generated with an action");
        let nic = (action != Action::Issue).then_some(nic.as_str());
        let t = translate(&m, nic, revision, &TABLES);
        prop_assert!(t.is_ok(), "{:?}", t);
        let request = t.expect("checked").request;
        let text = request.to_text();
        let back = CletsRequest::read(text.as_bytes(), &TABLES);
        prop_assert!(back.is_ok(), "{}\n{:?}", text, back);
        let back = back.expect("checked");
        prop_assert_eq!(&back, &request);
        check_clets_fields(&m, nic, &back)?;
    }
}

static CMS_A: LazyLock<Layout> =
    LazyLock::new(|| Layout::load(repo().join("schemas/layouts/cms-a-1.toml")).expect("cms-a/1 loads"));
static CMS_B: LazyLock<Layout> = LazyLock::new(|| {
    let map = CodeMap::load(repo().join("mappings/code-maps/cms-b.toml"), &CODES).expect("code map cms-b loads");
    Layout::load(repo().join("schemas/layouts/cms-b-2.toml"))
        .and_then(|l| l.with_code_map(Arc::new(map)))
        .expect("cms-b/2 loads with its code map")
});

/// Writes `m` in `layout` and reads it back: the same order.
fn fixed_round_trip(layout: &Layout, m: &OrderMessage) -> Result<(), TestCaseError> {
    prop_assert_eq!(validation_errors(m), vec![]);
    let body = layout.write_order(m);
    prop_assert!(body.is_ok(), "{}: {:?}", layout.name(), body);
    let body = body.expect("checked");
    let parsed = layout.read_order(&body);
    prop_assert!(
        parsed.errors.is_empty(),
        "{:?}\n{}",
        parsed.errors,
        String::from_utf8_lossy(&body)
    );
    prop_assert_eq!(&parsed.message, m);
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// Any conforming order written in `cms-a/1` reads back as the same order.
    #[test]
    fn cms_a_round_trip(m in order(Profile::CmsA)) {
        fixed_round_trip(&CMS_A, &m)?;
    }

    /// Any conforming order written in `cms-b/2` (codes through the `cms-b`
    /// code map) reads back as the same canonical order.
    #[test]
    fn cms_b_round_trip(m in order(Profile::CmsB)) {
        fixed_round_trip(&CMS_B, &m)?;
    }
}

/// A `cms-a/1` condition text of five full `M` lines joins to 504
/// characters: `TOO_LONG` from the reader, nothing cut.
#[test]
fn over_long_fixed_condition_text_is_too_long() {
    let body = std::fs::read(repo().join("tests/fixtures/fixed/issue-sample.txt")).expect("fixture");
    let mut records: Vec<Vec<u8>> = body
        .split(|&b| b == b'\n')
        .filter(|r| !r.is_empty() && r[0] != b'M')
        .map(<[u8]>::to_vec)
        .collect();
    for line in 1..=5 {
        let mut r = format!("M{line:02}{}", "W".repeat(100)).into_bytes();
        r.resize(200, b' ');
        records.push(r);
    }
    let body: Vec<u8> = records.iter().flat_map(|r| r.iter().copied().chain([b'\n'])).collect();
    let parsed = CMS_A.read_order(&body);
    assert!(
        parsed
            .errors
            .iter()
            .any(|e| e.code == ErrorCode::TooLong && e.field == "order.condition_text"),
        "{:?}",
        parsed.errors
    );
}

/// CLETS text for a canonical value: what ICD §0/§6 make of it.
fn clets(v: &str) -> String {
    to_clets_text(v).expect("printable ASCII always has a CLETS form").0
}

fn ccyymmdd(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// A composite name (`NAM`, `PPN`): `LAST[ SUFFIX][, FIRST[ MIDDLE]]` when
/// that fits 30 characters; otherwise at most 30, the last name whole.
fn check_composite(value: &str, name: &PersonName, with_suffix: bool) -> Result<(), TestCaseError> {
    let last = clets(name.last.as_deref().expect("a last name"));
    let mut full = last.clone();
    if let Some(suffix) = name.suffix.as_deref().filter(|_| with_suffix) {
        full = format!("{full} {}", clets(suffix));
    }
    let given: Vec<String> = [&name.first, &name.middle]
        .into_iter()
        .flatten()
        .map(|g| clets(g))
        .collect();
    if !given.is_empty() {
        full = format!("{full}, {}", given.join(" "));
    }
    if full.len() <= 30 {
        prop_assert_eq!(value, full.as_str());
    } else {
        prop_assert!(value.len() <= 30 && value.starts_with(&last), "{} from {}", value, full);
    }
    Ok(())
}

/// Each field of the request read back against the canonical order.
fn check_clets_fields(m: &OrderMessage, nic: Option<&str>, r: &CletsRequest) -> Result<(), TestCaseError> {
    let o = &m.order;
    prop_assert_eq!(r.ori(), m.court_ori.as_str());
    prop_assert_eq!(r.mke(), TABLES.message_key(m.action.expect("action")));
    let sequence = format!("{:04}", m.sequence.expect("sequence"));
    prop_assert_eq!(&r.mcn()[..4], sequence.as_str());
    prop_assert_eq!(r.get("NIC"), nic);
    prop_assert_eq!(r.get("PNO"), o.order_number.as_deref());
    match m.action.expect("action") {
        Action::Issue | Action::Modify => {
            let rp = m.restrained_person.as_ref().expect("full order");
            check_composite(r.get("NAM").expect("NAM"), &rp.name, true)?;
            prop_assert_eq!(r.get("SEX"), rp.sex.as_deref());
            prop_assert_eq!(r.get("RAC"), rp.race.as_deref());
            prop_assert_eq!(r.get("DOB").map(str::to_string), rp.birth_date.map(ccyymmdd));
            prop_assert_eq!(r.get("HGT"), rp.height.as_deref());
            prop_assert_eq!(r.get("WGT"), rp.weight.as_deref());
            prop_assert_eq!(r.get("EYE"), rp.eye.as_deref());
            prop_assert_eq!(r.get("HAI"), rp.hair.as_deref());
            let dl = rp.driver_license.as_ref();
            let oln = dl.and_then(|d| d.number.as_deref()).map(clets);
            prop_assert_eq!(r.get("OLN").map(str::to_string), oln.clone());
            if oln.is_some() {
                prop_assert_eq!(r.get("OLS"), dl.and_then(|d| d.state.as_deref()));
            }
            prop_assert_eq!(r.get("OCA").map(str::to_string), o.case_number.as_deref().map(clets));
            prop_assert_eq!(r.get("TYP"), o.order_type.as_deref());
            prop_assert_eq!(r.get("ISD").map(str::to_string), o.issue_date.map(ccyymmdd));
            match o.expiration {
                Some(e) => {
                    prop_assert_eq!(r.get("EXP").map(str::to_string), Some(ccyymmdd(e.date())));
                    prop_assert_eq!(r.get("EXT").map(str::to_string), Some(e.format("%H%M").to_string()));
                }
                None => {
                    prop_assert_eq!(r.get("EXP"), Some("NONEXP"));
                    prop_assert_eq!(r.get("EXT"), None);
                }
            }
            prop_assert_eq!(r.get("BRD"), o.brady.as_deref());
            prop_assert_eq!(
                r.get_all("PCO").collect::<Vec<_>>(),
                o.condition_codes.iter().map(Text::as_str).collect::<Vec<_>>()
            );
            prop_assert_eq!(r.get_all("PPN").count(), m.protected_persons.len());
            for (ppn, p) in r.get_all("PPN").zip(&m.protected_persons) {
                check_composite(ppn, &p.name, false)?;
            }
            let psx: Vec<&str> = m.protected_persons.iter().filter_map(|p| p.sex.as_deref()).collect();
            prop_assert_eq!(r.get_all("PSX").collect::<Vec<_>>(), psx);
            let ppb: Vec<String> = m
                .protected_persons
                .iter()
                .filter_map(|p| p.birth_date)
                .map(ccyymmdd)
                .collect();
            prop_assert_eq!(r.get_all("PPB").map(str::to_string).collect::<Vec<_>>(), ppb);
            prop_assert_eq!(r.get("MIS").map(str::to_string), o.condition_text.as_deref().map(clets));
        }
        Action::Terminate => {
            prop_assert_eq!(r.get("DOC").map(str::to_string), o.termination_date.map(ccyymmdd));
            prop_assert_eq!(r.field_count(), 3);
        }
        Action::Cancel => {
            prop_assert_eq!(r.get("REA").map(str::to_string), o.cancel_reason.as_deref().map(clets));
            prop_assert_eq!(r.field_count(), 3);
        }
        Action::Service => {
            let s = o.service.as_ref().expect("service");
            let at = s.served_at.expect("served_at");
            prop_assert_eq!(r.get("SVD").map(str::to_string), Some(ccyymmdd(at.date())));
            prop_assert_eq!(r.get("SVT").map(str::to_string), Some(at.format("%H%M").to_string()));
            prop_assert_eq!(r.get("SVB").map(str::to_string), s.served_by.as_deref().map(clets));
            prop_assert_eq!(r.get("SVA"), s.serving_agency_ori.as_deref());
            prop_assert_eq!(r.get("SVM"), s.method.as_deref());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Over-long values
// ---------------------------------------------------------------------------

/// Which value to lengthen, its canonical path, and its maximum.
#[derive(Debug, Clone, Copy)]
enum Long {
    OrderNumber,
    Last,
    First,
    Middle,
    ConditionText,
    CancelReason,
}

impl Long {
    const ALL: [Long; 6] = [
        Long::OrderNumber,
        Long::Last,
        Long::First,
        Long::Middle,
        Long::ConditionText,
        Long::CancelReason,
    ];

    fn field(self) -> &'static str {
        match self {
            Long::OrderNumber => "order.order_number",
            Long::Last => "restrained_person.name.last",
            Long::First => "restrained_person.name.first",
            Long::Middle => "restrained_person.name.middle",
            Long::ConditionText => "order.condition_text",
            Long::CancelReason => "order.cancel_reason",
        }
    }

    fn max(self) -> usize {
        match self {
            Long::OrderNumber => 15,
            Long::Last => 30,
            Long::First | Long::Middle => 20,
            Long::ConditionText => 500,
            Long::CancelReason => 60,
        }
    }

    /// Puts `value` where this field goes, on an order of the right action.
    fn apply(self, m: &mut OrderMessage, value: String) {
        let value = Text::from(value);
        let name = m.restrained_person.as_mut().map(|r| &mut r.name);
        match (self, name) {
            (Long::OrderNumber, _) => m.order.order_number = Some(value),
            (Long::Last, Some(n)) => n.last = Some(value),
            (Long::First, Some(n)) => n.first = Some(value),
            (Long::Middle, Some(n)) => n.middle = Some(value),
            (Long::ConditionText, _) => m.order.condition_text = Some(value),
            (Long::CancelReason, _) => {
                m.action = Some(Action::Cancel);
                m.sequence = m.sequence.map(|s| s.max(2));
                m.order.cancel_reason = Some(value);
            }
            _ => unreachable!("names are lengthened on full orders"),
        }
    }
}

/// An over-long value for `which`: 1–200 characters over its maximum, of
/// characters the field allows.
fn over_long(which: Long) -> BoxedStrategy<String> {
    let max = which.max();
    match which {
        Long::OrderNumber => proptest::string::string_regex(&format!("[A-Z0-9-]{{{},{}}}", max + 1, max + 40))
            .expect("regex")
            .boxed(),
        _ => text(Profile::CmsA, max + 1, max + 200).prop_map(String::from).boxed(),
    }
}

fn long_case() -> impl Strategy<Value = (Long, OrderMessage, String)> {
    (select(Long::ALL.to_vec()), full_order(Profile::Xml, Action::Issue))
        .prop_flat_map(|(which, m)| (Just(which), Just(m), over_long(which)))
}

proptest! {
    #![proptest_config(config(96))]

    /// Order number > 15, names > 30/20/20, condition text > 500 and cancel
    /// reason > 60 are `TOO_LONG`: from the validator on the canonical
    /// order, and again (from the reader, the validator or both, merged as
    /// intake merges them) after an XML write and read: nothing is cut on
    /// the way. Nothing else is reported about the order.
    #[test]
    fn over_long_values_are_too_long((which, mut m, value) in long_case()) {
        which.apply(&mut m, value);
        let too_long = |errors: &[FieldError]| {
            errors.iter().any(|e| e.code == ErrorCode::TooLong && e.field == which.field())
                && errors.iter().all(|e| e.field == which.field())
        };
        let errors = validation_errors(&m);
        prop_assert!(too_long(&errors), "{:?}", errors);
        let parsed = read_order(&write_order(&m), &XmlLimits::default());
        let ctx = ValidationContext { queue_court_ori: &m.court_ori, user_id: None, amqp_users: &[], codes: &CODES };
        let again = merge(parsed.errors.clone(), validate(&parsed.message, &parsed.locations, &ctx));
        prop_assert!(too_long(&again), "{:?}", again);
    }

    /// A CLETS request whose value is over the field's maximum is `TOO_LONG`
    /// from the reader (PNO 15, NAM and PPN 30, MIS 500, REA 60).
    #[test]
    fn over_long_clets_values_are_too_long(
        (tag, value) in prop_oneof![
            proptest::string::string_regex("[A-Z0-9-]{16,40}").expect("regex").prop_map(|v| ("PNO", v)),
            "[A-Z ,]{31,60}".prop_map(|v| ("NAM", v)),
            "[A-Z ,]{31,60}".prop_map(|v| ("PPN", v)),
            "[A-Z0-9 ]{501,700}".prop_map(|v| ("MIS", v)),
        ]
    ) {
        let base = "EPO.CA034025J.00010ABCDEFGHIJKLMNO.NAM/DOE, JOHN.SEX/M.RAC/W.DOB/19850214.PNO/24DV01234.\
            OCA/24FL001234.TYP/DV.ISD/20261125.EXP/NONEXP.BRD/Y.PCO/01.PPN/DOE, JANE.PSX/F.MIS/STAY AWAY.";
        let text = match tag {
            "MIS" => base.replacen("MIS/STAY AWAY", &format!("MIS/{value}"), 1),
            "NAM" => base.replacen("NAM/DOE, JOHN", &format!("NAM/{value}"), 1),
            "PPN" => base.replacen("PPN/DOE, JANE", &format!("PPN/{value}"), 1),
            _ => base.replacen("PNO/24DV01234", &format!("PNO/{value}"), 1),
        };
        let errors = CletsRequest::read(text.as_bytes(), &TABLES).expect_err("over-long value");
        prop_assert!(errors.iter().any(|e| e.code == ErrorCode::TooLong && e.field.starts_with(tag)), "{:?}", errors);
    }
}

/// The same holds for the cancel reason in a CLETS XPO.
#[test]
fn over_long_clets_cancel_reason_is_too_long() {
    let text = format!(
        "XPO.CA034025J.00020ABCDEFGHIJKLMNO.NIC/H000000001.PNO/24DV01234.REA/{}.",
        "X".repeat(61)
    );
    let errors = CletsRequest::read(text.as_bytes(), &TABLES).expect_err("over-long REA");
    assert_eq!(errors[0].code, ErrorCode::TooLong);
    assert_eq!(errors[0].field, "REA");
}

/// ICD §0 allows a 30-character last name, and `NAM` holds 30 characters:
/// the translator gives way with the given names (then the suffix), with
/// `SHORTENED` warnings, rather than refusing a valid order.
#[test]
fn long_last_name_fits_clets() {
    let mut runner = proptest::test_runner::TestRunner::new(config(1));
    let m = full_order(Profile::Clets, Action::Issue)
        .new_tree(&mut runner)
        .expect("an order")
        .current();
    let mut m = m;
    if let Some(rp) = m.restrained_person.as_mut() {
        rp.name.last = Some("A".repeat(30).into());
        rp.name.suffix = None;
    }
    assert_eq!(validation_errors(&m), vec![]);
    let t = translate(&m, None, 0, &TABLES).expect("a valid order translates");
    assert!(t.warnings.iter().any(|w| w.code == ErrorCode::Shortened));
}
