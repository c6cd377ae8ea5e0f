//! The CARPOS side of the simulator: the request grammar of ICD §6, its checks, and the record table.
//!
//! This is an independent reading of the ICD, written without the broker's code, so that the broker's
//! translator is checked against the contract and not against itself.
//!
//! **Grammar.** `MKE.ORI.MCN.` then `TAG/value.` fields; the text is split strictly on `.`, so a value can
//! never hold one. The header is checked first, then the fields, in this order of precedence (the first
//! failure found is the answer):
//! 1. `E01` header: an unknown message key; `E06` a malformed ORI or one not on the valid list;
//!    `E01` an MCN that is not 4 sequence digits, 1 revision digit and 15 base32 characters.
//! 2. `E01` fields: not `TAG/value`, an unknown tag, a tag the key does not carry, an empty value,
//!    a field out of the table's order, a repeated field other than `PCO` or the protected-person group,
//!    more than 9 `PCO`s or groups, a group member before its group's `PPN`.
//! 3. `E02` a required field absent (also `PSX` in each group, and `OLN`/`OLS` only as a pair).
//! 4. `E03` a value over its maximum length, off its code list, or malformed (dates, times, names...).
//! 5. `E04`/`E05` against the table, in [`RecordTable::apply`].
//!
//! **Record table.** Records are keyed by NIC. An `EPO` creates one (status active) with the next NIC
//! (prefix letter + 9 digits) and FCN (prefix + counter, 13 digits); numbers are never reused within a run,
//! even across a reset, so a broker holding an old NIC cannot silently hit a new record. Every other key
//! names the record by NIC, and the record must belong to the request's ORI and PNO, or it is `E04`:
//! - `MPO` replaces the entry fields whole (a field absent from it is cleared);
//! - `CPO` clears (inactive), `XPO` cancels (inactive; a cleared record may still be cancelled);
//! - `SPO` records service.
//!
//! `MPO`, `CPO` and `SPO` need an active record. Clear, cancel and service data are kept apart from the
//! entry fields, so a later `MPO` does not erase a service record.
//!
//! **Double records.** Every applied request adds `(ORI, PNO, sequence)` to a set, the sequence being the
//! MCN's first 4 digits. Applying a tuple already in the set is a double record: the broker sent the same
//! order message twice under different MCNs.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A `TAG/value` pair, as sent.
pub type Field = (String, String);

/// Length of an MCN (ICD §5).
pub const MCN_LEN: usize = 20;

/// The five CARPOS message keys of ICD §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKey {
    /// Enter (ISSUE).
    Epo,
    /// Modify (MODIFY).
    Mpo,
    /// Clear (TERMINATE).
    Cpo,
    /// Cancel (CANCEL).
    Xpo,
    /// Proof of service (SERVICE).
    Spo,
}

impl MessageKey {
    /// Parses a key as written on the wire.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EPO" => Self::Epo,
            "MPO" => Self::Mpo,
            "CPO" => Self::Cpo,
            "XPO" => Self::Xpo,
            "SPO" => Self::Spo,
            _ => return None,
        })
    }

    /// The key as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Epo => "EPO",
            Self::Mpo => "MPO",
            Self::Cpo => "CPO",
            Self::Xpo => "XPO",
            Self::Spo => "SPO",
        }
    }

    /// Column of this key in the field table.
    fn column(self) -> usize {
        self as usize
    }
}

/// CARPOS rejection codes (ICD §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// Format.
    E01,
    /// Missing field.
    E02,
    /// Invalid value.
    E03,
    /// Unknown NIC.
    E04,
    /// Duplicate active order.
    E05,
    /// Invalid ORI.
    E06,
}

impl RejectCode {
    /// The code as written in `ERR/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::E01 => "E01",
            Self::E02 => "E02",
            Self::E03 => "E03",
            Self::E04 => "E04",
            Self::E05 => "E05",
            Self::E06 => "E06",
        }
    }
}

/// Why CARPOS refuses a request: a code and an uppercase message that names tags, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The `ERR/` code.
    pub code: RejectCode,
    /// The `MSG/` text.
    pub message: String,
}

impl Rejection {
    fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A request that passed every check of the grammar and the field table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The message key.
    pub mke: MessageKey,
    /// The originating agency (the court).
    pub ori: String,
    /// The message control number.
    pub mcn: String,
    /// The fields, in request order.
    pub fields: Vec<Field>,
}

impl Request {
    /// The first value of `tag`, if present.
    pub fn value(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find(|(t, _)| t == tag).map(|(_, v)| v.as_str())
    }

    /// The order sequence: the MCN's first 4 digits.
    pub fn sequence(&self) -> &str {
        &self.mcn[..4]
    }
}

/// Whether a field is required, optional or absent for a message key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usage {
    Required,
    Optional,
    Absent,
}

/// How a field's value is checked (`E03`).
#[derive(Debug, Clone, Copy)]
enum Check {
    /// A letter then 9 digits.
    Nic,
    /// `LAST SUFFIX, FIRST MIDDLE`: letters, spaces, `-`, `'`, one comma, a last name before it.
    Name,
    /// One of a code list.
    Code(&'static [&'static str]),
    /// A valid `CCYYMMDD` date.
    Date,
    /// A valid `CCYYMMDD` date of birth: from 1900, not in the future.
    BirthDate,
    /// A date or `NONEXP`.
    Expiration,
    /// `HHMM`, 0000 to 2359.
    Time,
    /// Feet then inches: `FII`, inches 00 to 11.
    Height,
    /// Pounds, 1 to 3 digits, not zero.
    Weight,
    /// `[A-Z0-9]`.
    Alnum,
    /// Two letters.
    State,
    /// `[A-Z0-9-]`.
    OrderNumber,
    /// Printable ASCII without lowercase letters (CLETS text is uppercased).
    Text,
    /// 9 characters `[A-Z0-9]`.
    Ori,
}

/// Protected-person group membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    None,
    /// `PPN`: starts a group.
    Start,
    /// `PSX`, `PPR`, `PPB`.
    Member,
}

/// One row of the ICD §6 field table.
struct FieldSpec {
    tag: &'static str,
    max: usize,
    check: Check,
    /// Usage per key, in `MessageKey` order: EPO, MPO, CPO, XPO, SPO.
    usage: [Usage; 5],
    /// `PCO` may repeat 1–9 times in a row.
    repeats: bool,
    group: Group,
}

const SEX: &[&str] = &["M", "F", "X", "U"];
const RACE: &[&str] = &["A", "B", "H", "I", "P", "U", "W"];
const EYE: &[&str] = &["BLK", "BLU", "BRO", "GRN", "GRY", "HAZ", "MAR", "MUL", "PNK", "XXX"];
const HAIR: &[&str] = &[
    "BAL", "BLK", "BLN", "BLU", "BRO", "GRN", "GRY", "ONG", "PLE", "PNK", "RED", "SDY", "WHI", "XXX",
];
const BRADY: &[&str] = &["Y", "N", "U"];
const PCO: &[&str] = &["01", "02", "03", "04", "05", "06", "07", "08", "09"];
const ORDER_TYPES: &[&str] = &["DV", "CH", "EA", "WV", "SV", "CPO", "EPO", "GV", "JV"];
const SERVICE_METHODS: &[&str] = &["P", "S", "M", "C"];

/// Most repetitions of `PCO` and of the protected-person group.
const MAX_REPEATS: usize = 9;

const fn spec(tag: &'static str, max: usize, check: Check, usage: [Usage; 5]) -> FieldSpec {
    FieldSpec {
        tag,
        max,
        check,
        usage,
        repeats: false,
        group: Group::None,
    }
}

const fn group(tag: &'static str, max: usize, check: Check, usage: [Usage; 5], group: Group) -> FieldSpec {
    FieldSpec {
        tag,
        max,
        check,
        usage,
        repeats: false,
        group,
    }
}

use Usage::{Absent as A, Optional as O, Required as R};

/// Entry fields: EPO and MPO carry them.
const ENTRY_R: [Usage; 5] = [R, R, A, A, A];
const ENTRY_O: [Usage; 5] = [O, O, A, A, A];

/// The field table of ICD §6, in wire order.
static FIELDS: &[FieldSpec] = &[
    spec("NIC", 10, Check::Nic, [A, R, R, R, R]),
    spec("NAM", 30, Check::Name, ENTRY_R),
    spec("SEX", 1, Check::Code(SEX), ENTRY_R),
    spec("RAC", 1, Check::Code(RACE), ENTRY_R),
    spec("DOB", 8, Check::BirthDate, ENTRY_R),
    spec("HGT", 3, Check::Height, ENTRY_O),
    spec("WGT", 3, Check::Weight, ENTRY_O),
    spec("EYE", 3, Check::Code(EYE), ENTRY_O),
    spec("HAI", 3, Check::Code(HAIR), ENTRY_O),
    spec("OLN", 20, Check::Alnum, ENTRY_O),
    spec("OLS", 2, Check::State, ENTRY_O),
    spec("PNO", 15, Check::OrderNumber, [R, R, R, R, R]),
    spec("OCA", 20, Check::Text, ENTRY_R),
    spec("TYP", 3, Check::Code(ORDER_TYPES), ENTRY_R),
    spec("ISD", 8, Check::Date, ENTRY_R),
    spec("EXP", 8, Check::Expiration, ENTRY_R),
    spec("EXT", 4, Check::Time, ENTRY_O),
    spec("BRD", 1, Check::Code(BRADY), ENTRY_R),
    FieldSpec {
        tag: "PCO",
        max: 2,
        check: Check::Code(PCO),
        usage: ENTRY_R,
        repeats: true,
        group: Group::None,
    },
    group("PPN", 30, Check::Name, ENTRY_R, Group::Start),
    group("PSX", 1, Check::Code(SEX), ENTRY_R, Group::Member),
    group("PPR", 1, Check::Code(RACE), ENTRY_O, Group::Member),
    group("PPB", 8, Check::BirthDate, ENTRY_O, Group::Member),
    spec("MIS", 500, Check::Text, ENTRY_O),
    spec("DOC", 8, Check::Date, [A, A, R, A, A]),
    spec("REA", 60, Check::Text, [A, A, A, R, A]),
    spec("SVD", 8, Check::Date, [A, A, A, A, R]),
    spec("SVT", 4, Check::Time, [A, A, A, A, R]),
    spec("SVB", 30, Check::Text, [A, A, A, A, R]),
    spec("SVA", 9, Check::Ori, [A, A, A, A, R]),
    spec("SVM", 1, Check::Code(SERVICE_METHODS), [A, A, A, A, R]),
];

/// Position of `tag` in the field table, which is its wire order.
fn rank(tag: &str) -> Option<usize> {
    FIELDS.iter().position(|f| f.tag == tag)
}

pub use crate::common::is_ori;

/// Whether `s` is a well-formed MCN: 4 sequence digits, 1 revision digit, 15 base32 characters (`A-Z2-7`).
pub fn is_mcn(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == MCN_LEN
        && b[..5].iter().all(u8::is_ascii_digit)
        && b[5..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(c))
}

/// Parses and checks one request against the grammar and field table (checks 1 to 4 of the module doc).
///
/// `valid_oris` lists the ORIs allowed to send; empty allows any well-formed ORI.
pub fn parse_request(text: &str, valid_oris: &[String]) -> Result<Request, Rejection> {
    use RejectCode::*;
    let body = text
        .strip_suffix('.')
        .ok_or_else(|| Rejection::new(E01, "REQUEST MUST END WITH A PERIOD"))?;
    let parts: Vec<&str> = body.split('.').collect();
    let [mke, ori, mcn, ..] = parts[..] else {
        return Err(Rejection::new(E01, "HEADER MUST BE MKE, ORI AND MCN"));
    };
    let mke = MessageKey::parse(mke).ok_or_else(|| Rejection::new(E01, "UNKNOWN MESSAGE KEY"))?;
    if !is_ori(ori) {
        return Err(Rejection::new(E06, "ORI MUST BE 9 CHARACTERS A-Z 0-9"));
    }
    if !valid_oris.is_empty() && !valid_oris.iter().any(|v| v == ori) {
        return Err(Rejection::new(E06, "ORI NOT AUTHORIZED"));
    }
    if !is_mcn(mcn) {
        return Err(Rejection::new(
            E01,
            "MCN MUST BE 4 SEQUENCE DIGITS, 1 REVISION DIGIT, 15 BASE32 CHARACTERS",
        ));
    }

    let fields = check_structure(mke, &parts[3..])?;
    check_required(mke, &fields)?;
    check_values(&fields)?;
    Ok(Request {
        mke,
        ori: ori.to_owned(),
        mcn: mcn.to_owned(),
        fields: fields
            .into_iter()
            .map(|(spec, v)| (spec.tag.to_owned(), v.to_owned()))
            .collect(),
    })
}

/// Splits the fields and checks tags, presence per key, order and repetition (`E01`).
fn check_structure<'a>(mke: MessageKey, parts: &[&'a str]) -> Result<Vec<(&'static FieldSpec, &'a str)>, Rejection> {
    use RejectCode::E01;
    let ppn_rank = rank("PPN").unwrap_or_default();
    let mut fields = Vec::with_capacity(parts.len());
    let mut previous: Option<usize> = None;
    let (mut pcos, mut groups) = (0, 0);
    for (i, part) in parts.iter().enumerate() {
        let position = i + 1;
        let (tag, value) = part
            .split_once('/')
            .ok_or_else(|| Rejection::new(E01, format!("FIELD {position} IS NOT TAG/VALUE")))?;
        let r = rank(tag).ok_or_else(|| Rejection::new(E01, format!("FIELD {position} HAS AN UNKNOWN TAG")))?;
        let spec = &FIELDS[r];
        if spec.usage[mke.column()] == Usage::Absent {
            return Err(Rejection::new(E01, format!("{tag} IS NOT A FIELD OF {}", mke.as_str())));
        }
        if value.is_empty() {
            return Err(Rejection::new(
                E01,
                format!("{tag} IS EMPTY; OMIT AN EMPTY OPTIONAL FIELD"),
            ));
        }
        let in_order = match previous {
            None => true,
            Some(p) if r > p => true,
            Some(p) if r == p && spec.repeats => true,
            // A PPN after a group's fields (or after a lone PPN) starts the next group.
            Some(p) if spec.group == Group::Start && FIELDS[p].group != Group::None => true,
            Some(_) => false,
        };
        if !in_order {
            return Err(Rejection::new(E01, format!("{tag} OUT OF ORDER")));
        }
        if spec.group == Group::Member && previous.is_none_or(|p| p < ppn_rank) {
            return Err(Rejection::new(E01, format!("{tag} MUST FOLLOW PPN")));
        }
        if spec.repeats {
            pcos += 1;
        }
        if spec.group == Group::Start {
            groups += 1;
        }
        if pcos > MAX_REPEATS || groups > MAX_REPEATS {
            return Err(Rejection::new(
                E01,
                format!("{tag} REPEATED MORE THAN {MAX_REPEATS} TIMES"),
            ));
        }
        previous = Some(r);
        fields.push((spec, value));
    }
    Ok(fields)
}

/// Checks that every required field is present (`E02`).
fn check_required(mke: MessageKey, fields: &[(&'static FieldSpec, &str)]) -> Result<(), Rejection> {
    use RejectCode::E02;
    let has = |tag: &str| fields.iter().any(|(s, _)| s.tag == tag);
    for spec in FIELDS {
        if spec.usage[mke.column()] == Usage::Required && spec.group != Group::Member && !has(spec.tag) {
            return Err(Rejection::new(E02, format!("MISSING {}", spec.tag)));
        }
    }
    // Each protected-person group needs its own required members.
    let mut person = 0;
    let mut seen: Vec<&str> = Vec::new();
    let close_group = |person: usize, seen: &mut Vec<&str>| -> Result<(), Rejection> {
        if person > 0 {
            let required = FIELDS
                .iter()
                .filter(|s| s.group == Group::Member && s.usage[mke.column()] == Usage::Required);
            for spec in required {
                if !seen.contains(&spec.tag) {
                    return Err(Rejection::new(
                        E02,
                        format!("MISSING {} FOR PROTECTED PERSON {person}", spec.tag),
                    ));
                }
            }
        }
        seen.clear();
        Ok(())
    };
    for (spec, _) in fields {
        match spec.group {
            Group::Start => {
                close_group(person, &mut seen)?;
                person += 1;
            }
            Group::Member => seen.push(spec.tag),
            Group::None => {}
        }
    }
    close_group(person, &mut seen)?;
    match (has("OLN"), has("OLS")) {
        (true, false) => Err(Rejection::new(E02, "MISSING OLS, REQUIRED WITH OLN")),
        (false, true) => Err(Rejection::new(E02, "MISSING OLN, REQUIRED WITH OLS")),
        _ => Ok(()),
    }
}

/// Checks every value's length and form (`E03`), and that expiration does not precede issue.
fn check_values(fields: &[(&'static FieldSpec, &str)]) -> Result<(), Rejection> {
    use RejectCode::E03;
    for (spec, value) in fields {
        if value.len() > spec.max {
            return Err(Rejection::new(E03, format!("{} LONGER THAN {}", spec.tag, spec.max)));
        }
        if !value_is_valid(spec.check, value) {
            return Err(Rejection::new(E03, format!("INVALID {}", spec.tag)));
        }
    }
    let value = |tag: &str| fields.iter().find(|(s, _)| s.tag == tag).map(|(_, v)| *v);
    if let (Some(isd), Some(exp)) = (value("ISD").and_then(date), value("EXP").and_then(date))
        && exp < isd
    {
        return Err(Rejection::new(E03, "EXP BEFORE ISD"));
    }
    Ok(())
}

/// Parses `CCYYMMDD`.
fn date(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y%m%d").ok()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn value_is_valid(check: Check, v: &str) -> bool {
    match check {
        Check::Nic => porter_adapters::clets::reply::is_nic(v),
        Check::Name => is_name(v),
        Check::Code(list) => list.contains(&v),
        Check::Date => date(v).is_some(),
        Check::BirthDate => date(v).is_some_and(|d| {
            // A day of slack, since California's today may be UTC's yesterday or tomorrow.
            let latest = Utc::now().date_naive() + Days::new(1);
            d.year() >= 1900 && d <= latest
        }),
        Check::Expiration => v == "NONEXP" || date(v).is_some(),
        Check::Time => {
            digits(v)
                && v.len() == 4
                && v[..2].parse::<u8>().is_ok_and(|h| h < 24)
                && v[2..].parse::<u8>().is_ok_and(|m| m < 60)
        }
        Check::Height => {
            digits(v) && v.len() == 3 && v.as_bytes()[0] != b'0' && v[1..].parse::<u8>().is_ok_and(|i| i < 12)
        }
        Check::Weight => digits(v) && v.parse::<u16>().is_ok_and(|w| w > 0),
        Check::Alnum => v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        Check::State => v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()),
        Check::OrderNumber => v
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
        Check::Text => v.bytes().all(|b| (0x20..=0x7E).contains(&b) && !b.is_ascii_lowercase()),
        Check::Ori => is_ori(v),
    }
}

/// `LAST SUFFIX, FIRST MIDDLE`: uppercase letters, spaces, `-` and `'`, exactly one comma, a last name.
fn is_name(v: &str) -> bool {
    let allowed = v
        .bytes()
        .all(|b| b.is_ascii_uppercase() || matches!(b, b' ' | b',' | b'-' | b'\''));
    let Some((last, first)) = v.split_once(',') else {
        return false;
    };
    allowed && !first.contains(',') && last.trim().bytes().next().is_some_and(|b| b.is_ascii_uppercase())
}

/// Whether a CARPOS record is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Entered and in force.
    Active,
    /// Cleared by `CPO` (the order was terminated).
    Cleared,
    /// Cancelled by `XPO` (entered in error).
    Cancelled,
}

/// One CARPOS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// CARPOS record id.
    pub nic: String,
    /// File control number.
    pub fcn: String,
    /// The entering agency.
    pub ori: String,
    /// The order number.
    pub pno: String,
    /// Whether the record is in force.
    pub status: RecordStatus,
    /// Entry fields from the `EPO` or the latest `MPO`, without `NIC`.
    pub entry: Vec<Field>,
    /// Clear, cancel and service fields (`DOC`, `REA`, `SV*`), kept across `MPO`s.
    pub supplement: Vec<Field>,
    /// MCNs applied to this record, oldest first.
    pub mcns: Vec<String>,
}

impl Record {
    /// Entry fields then supplementary fields.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.entry.iter().chain(&self.supplement)
    }
}

/// What applying a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The record's NIC.
    pub nic: String,
    /// The record's FCN.
    pub fcn: String,
    /// The request's `(ORI, PNO, sequence)` had already been applied under another MCN.
    pub double_record: bool,
}

/// The CARPOS record table (see the module doc).
#[derive(Debug, Clone)]
pub struct RecordTable {
    /// Letter that starts every NIC.
    nic_prefix: char,
    /// Digits that start every FCN.
    fcn_prefix: String,
    /// Records by NIC; NICs are zero-padded, so this iterates in entry order.
    records: BTreeMap<String, Record>,
    /// NIC of the latest record of each `(ORI, PNO)`, for the duplicate-active-order check.
    latest_by_order: HashMap<(String, String), String>,
    /// Number of the last NIC and FCN given out; never reset.
    last_number: u64,
    /// Every `(ORI, PNO, sequence)` applied.
    applied: HashSet<(String, String, String)>,
}

impl RecordTable {
    /// An empty table numbering NICs from `nic_prefix` and FCNs from `fcn_prefix`.
    pub fn new(nic_prefix: char, fcn_prefix: impl Into<String>) -> Self {
        Self {
            nic_prefix,
            fcn_prefix: fcn_prefix.into(),
            records: BTreeMap::new(),
            latest_by_order: HashMap::new(),
            last_number: 0,
            applied: HashSet::new(),
        }
    }

    /// Forgets every record and applied sequence. Numbering continues, so NICs are not reused.
    pub fn clear(&mut self) {
        self.records.clear();
        self.latest_by_order.clear();
        self.applied.clear();
    }

    /// The records, in entry order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// The record with this NIC.
    pub fn get(&self, nic: &str) -> Option<&Record> {
        self.records.get(nic)
    }

    /// Applies a checked request (check 5 of the module doc: `E04`, `E05`).
    pub fn apply(&mut self, req: &Request) -> Result<Applied, Rejection> {
        let pno = req.value("PNO").unwrap_or_default().to_owned();
        let nic = match req.mke {
            MessageKey::Epo => self.enter(req, &pno)?,
            key => {
                let nic = req.value("NIC").unwrap_or_default();
                let record = self
                    .records
                    .get_mut(nic)
                    .filter(|r| r.ori == req.ori && r.pno == pno)
                    .ok_or_else(|| Rejection::new(RejectCode::E04, "NIC NOT ON FILE FOR THIS ORI AND PNO"))?;
                let usable = match key {
                    MessageKey::Xpo => record.status != RecordStatus::Cancelled,
                    _ => record.status == RecordStatus::Active,
                };
                if !usable {
                    return Err(Rejection::new(RejectCode::E04, "NIC NOT ACTIVE"));
                }
                let data = req.fields.iter().filter(|(t, _)| t != "NIC").cloned();
                match key {
                    MessageKey::Mpo => record.entry = data.collect(),
                    _ => {
                        let data: Vec<Field> = data.filter(|(t, _)| t != "PNO").collect();
                        record.supplement.retain(|(t, _)| !data.iter().any(|(d, _)| d == t));
                        record.supplement.extend(data);
                        record.supplement.sort_by_key(|(t, _)| rank(t));
                        match key {
                            MessageKey::Cpo => record.status = RecordStatus::Cleared,
                            MessageKey::Xpo => record.status = RecordStatus::Cancelled,
                            _ => {}
                        }
                    }
                }
                record.mcns.push(req.mcn.clone());
                nic.to_owned()
            }
        };
        let double_record = !self.applied.insert((req.ori.clone(), pno, req.sequence().to_owned()));
        let fcn = self.records[&nic].fcn.clone();
        Ok(Applied {
            nic,
            fcn,
            double_record,
        })
    }

    /// Creates the record of an `EPO` and returns its NIC.
    fn enter(&mut self, req: &Request, pno: &str) -> Result<String, Rejection> {
        let order = (req.ori.clone(), pno.to_owned());
        if let Some(nic) = self.latest_by_order.get(&order)
            && self.records.get(nic).is_some_and(|r| r.status == RecordStatus::Active)
        {
            return Err(Rejection::new(
                RejectCode::E05,
                format!("DUPLICATE ACTIVE ORDER, NIC {nic}"),
            ));
        }
        self.last_number += 1;
        let nic = format!("{}{:09}", self.nic_prefix, self.last_number % 1_000_000_000);
        let width = 13usize.saturating_sub(self.fcn_prefix.len());
        let fcn_number = self.last_number % 10u64.pow(width as u32);
        let fcn = format!("{}{:0width$}", self.fcn_prefix, fcn_number);
        self.records.insert(
            nic.clone(),
            Record {
                nic: nic.clone(),
                fcn,
                ori: req.ori.clone(),
                pno: pno.to_owned(),
                status: RecordStatus::Active,
                entry: req.fields.clone(),
                supplement: Vec::new(),
                mcns: vec![req.mcn.clone()],
            },
        );
        self.latest_by_order.insert(order, nic.clone());
        Ok(nic)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ORI: &str = "CA034025J";
    pub(crate) const HASH: &str = "ABCDEFGHIJKLMNO";

    /// The MCN of `sequence` (revision 0) for the test order.
    pub(crate) fn mcn(sequence: u16) -> String {
        format!("{sequence:04}0{HASH}")
    }

    /// The ICD sample EPO (with a 20-character MCN).
    pub(crate) fn epo(sequence: u16) -> String {
        format!(
            "EPO.{ORI}.{}.NAM/DOE, JOHN ALLEN.SEX/M.RAC/W.DOB/19850214.HGT/510.WGT/185.EYE/BRO.HAI/BLK.\
             OLN/D1234567.OLS/CA.PNO/24DV01234.OCA/24FL001234.TYP/DV.ISD/20261125.EXP/20311125.EXT/2359.\
             BRD/Y.PCO/01.PCO/05.PCO/07.PPN/DOE, JANE B.PSX/F.PPR/W.PPB/19870302.\
             MIS/STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.",
            mcn(sequence)
        )
    }

    /// A minimal MPO for `nic` that changes the Brady flag and keeps one condition.
    pub(crate) fn mpo(sequence: u16, nic: &str) -> String {
        format!(
            "MPO.{ORI}.{}.NIC/{nic}.NAM/DOE, JOHN ALLEN.SEX/M.RAC/W.DOB/19850214.PNO/24DV01234.OCA/24FL001234.\
             TYP/DV.ISD/20261125.EXP/NONEXP.BRD/N.PCO/01.PPN/DOE, JANE B.PSX/F.",
            mcn(sequence)
        )
    }

    pub(crate) fn cpo(sequence: u16, nic: &str) -> String {
        format!("CPO.{ORI}.{}.NIC/{nic}.PNO/24DV01234.DOC/20270101.", mcn(sequence))
    }

    fn xpo(sequence: u16, nic: &str) -> String {
        format!(
            "XPO.{ORI}.{}.NIC/{nic}.PNO/24DV01234.REA/ENTERED IN ERROR.",
            mcn(sequence)
        )
    }

    fn spo(sequence: u16, nic: &str) -> String {
        format!(
            "SPO.{ORI}.{}.NIC/{nic}.PNO/24DV01234.SVD/20261126.SVT/0930.SVB/DEPUTY SMITH.SVA/CA0340000.SVM/P.",
            mcn(sequence)
        )
    }

    fn parse(text: &str) -> Result<Request, Rejection> {
        parse_request(text, &[])
    }

    fn code_of(text: &str) -> RejectCode {
        parse(text).expect_err(text).code
    }

    /// Replaces the first `from` in the sample EPO with `to`.
    fn epo_with(from: &str, to: &str) -> String {
        let sample = epo(1);
        assert!(sample.contains(from), "sample lacks {from:?}");
        sample.replacen(from, to, 1)
    }

    fn apply(table: &mut RecordTable, text: &str) -> Result<Applied, Rejection> {
        table.apply(&parse(text).unwrap())
    }

    /// The ICD sample EPO parses, keeping fields in order and repeats.
    #[test]
    fn sample_epo_is_valid() {
        let req = parse(&epo(1)).unwrap();
        assert_eq!(req.mke, MessageKey::Epo);
        assert_eq!(
            (req.ori.as_str(), req.mcn.as_str(), req.sequence()),
            (ORI, mcn(1).as_str(), "0001")
        );
        assert_eq!(req.fields.iter().filter(|(t, _)| t == "PCO").count(), 3);
        assert_eq!(req.fields.first().unwrap().0, "NAM");
        assert_eq!(req.value("PNO"), Some("24DV01234"));
    }

    /// Each non-EPO key's sample parses.
    #[test]
    fn samples_of_other_keys_are_valid() {
        for text in [
            mpo(2, "H000000001"),
            cpo(3, "H000000001"),
            xpo(3, "H000000001"),
            spo(2, "H000000001"),
        ] {
            parse(&text).unwrap_or_else(|r| panic!("{text}: {r:?}"));
        }
    }

    /// Header faults: missing final period, short header, unknown key and bad MCN are E01.
    #[test]
    fn malformed_header_is_e01() {
        let sample = epo(1);
        assert_eq!(code_of(sample.strip_suffix('.').unwrap()), RejectCode::E01);
        assert_eq!(code_of("EPO.CA034025J."), RejectCode::E01);
        assert_eq!(code_of(&sample.replacen("EPO.", "ZPO.", 1)), RejectCode::E01);
        for bad_mcn in [
            "0001ABCDEFGHIJKLMNOP",
            "00010ABCDEFGHIJKLMNOP",
            "00010ABCDEFGHIJKLMN1",
            "00010abcdefghijklmno",
        ] {
            assert_eq!(
                code_of(&sample.replacen(&mcn(1), bad_mcn, 1)),
                RejectCode::E01,
                "{bad_mcn}"
            );
        }
    }

    /// A malformed ORI, or one off a non-empty valid list, is E06; an empty list allows any.
    #[test]
    fn bad_or_unlisted_ori_is_e06() {
        let sample = epo(1);
        assert_eq!(code_of(&sample.replacen(ORI, "CA03402", 1)), RejectCode::E06);
        assert_eq!(code_of(&sample.replacen(ORI, "ca034025j", 1)), RejectCode::E06);
        let listed = vec!["CA0341100".to_owned()];
        assert_eq!(parse_request(&sample, &listed).unwrap_err().code, RejectCode::E06);
        assert!(parse_request(&sample, &[ORI.to_owned()]).is_ok());
    }

    /// Fields out of table order are E01.
    #[test]
    fn out_of_order_fields_are_e01() {
        assert_eq!(code_of(&epo_with("SEX/M.RAC/W.", "RAC/W.SEX/M.")), RejectCode::E01);
        assert_eq!(
            code_of(&epo_with("PCO/01.PCO/05.", "PCO/05.TYP/DV.PCO/01.")),
            RejectCode::E01
        );
        // MIS before the protected persons.
        let moved = epo(1).replacen(
            ".MIS/STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE",
            "",
            1,
        );
        let moved = moved.replacen("PPN/", "MIS/STAY AWAY.PPN/", 1);
        assert_eq!(code_of(&moved), RejectCode::E01);
    }

    /// A repeated single field, unknown tag, foreign tag, empty value or non TAG/value field is E01.
    #[test]
    fn malformed_fields_are_e01() {
        assert_eq!(code_of(&epo_with("SEX/M.", "SEX/M.SEX/M.")), RejectCode::E01);
        assert_eq!(code_of(&epo_with("SEX/M.", "SEX/M.ZZZ/1.")), RejectCode::E01);
        assert_eq!(code_of(&epo_with("MIS/", "DOC/20270101.MIS/")), RejectCode::E01);
        assert_eq!(code_of(&epo_with("HGT/510.", "HGT/.")), RejectCode::E01);
        assert_eq!(code_of(&epo_with("HGT/510.", "HGT 510.")), RejectCode::E01);
        assert_eq!(
            code_of(&format!("EPO.{ORI}.{}.NIC/H000000001.{}", mcn(1), &epo(1)[35..])),
            RejectCode::E01
        );
    }

    /// Protected-person groups repeat 1–9 times, each starting with PPN; PCO repeats 1–9 times.
    #[test]
    fn repeats_are_bounded_and_groups_start_with_ppn() {
        let group = "PPN/DOE, JANE B.PSX/F.PPR/W.PPB/19870302.";
        let nine_groups = epo_with(group, &group.repeat(9));
        assert!(parse(&nine_groups).is_ok());
        let parsed = parse(&epo_with(group, "PPN/DOE, JANE.PSX/F.PPN/DOE, JIM.PSX/M.PPB/20150101.")).unwrap();
        assert_eq!(parsed.fields.iter().filter(|(t, _)| t == "PPN").count(), 2);
        assert_eq!(code_of(&epo_with(group, &group.repeat(10))), RejectCode::E01);
        assert_eq!(code_of(&epo_with("PCO/01.", &"PCO/01.".repeat(8))), RejectCode::E01);
        assert!(parse(&epo_with("PCO/01.", &"PCO/01.".repeat(7))).is_ok());
        assert_eq!(code_of(&epo_with("PPN/DOE, JANE B.", "")), RejectCode::E01);
        assert_eq!(code_of(&epo_with("PSX/F.PPR/W.", "PPR/W.PSX/F.")), RejectCode::E01);
    }

    /// Missing required fields are E02, per key, per protected person, and for OLN/OLS pairs.
    #[test]
    fn missing_required_fields_are_e02() {
        for field in [
            "NAM/DOE, JOHN ALLEN.",
            "DOB/19850214.",
            "PNO/24DV01234.",
            "EXP/20311125.",
            "PCO/01.PCO/05.PCO/07.",
        ] {
            assert_eq!(code_of(&epo_with(field, "")), RejectCode::E02, "without {field}");
        }
        assert_eq!(
            code_of(&epo_with("PPN/DOE, JANE B.PSX/F.PPR/W.PPB/19870302.", "")),
            RejectCode::E02
        );
        assert_eq!(code_of(&epo_with("PSX/F.", "")), RejectCode::E02);
        assert_eq!(code_of(&epo_with("OLS/CA.", "")), RejectCode::E02);
        assert_eq!(code_of(&epo_with("OLN/D1234567.", "")), RejectCode::E02);
        assert!(
            parse(&epo_with("OLN/D1234567.OLS/CA.", "")).is_ok(),
            "OLN and OLS are optional together"
        );
        assert_eq!(
            code_of(&cpo(2, "H000000001").replace("DOC/20270101.", "")),
            RejectCode::E02
        );
        assert_eq!(
            code_of(&cpo(2, "H000000001").replace("NIC/H000000001.", "")),
            RejectCode::E02
        );
        assert_eq!(code_of(&spo(2, "H000000001").replace("SVM/P.", "")), RejectCode::E02);
    }

    /// Values off their code lists, malformed, impossible or over their maximum length are E03.
    #[test]
    fn invalid_values_are_e03() {
        let cases = [
            ("SEX/M.", "SEX/Q."),
            ("RAC/W.", "RAC/C."),
            ("EYE/BRO.", "EYE/BRN."),
            ("HAI/BLK.", "HAI/BLA."),
            ("BRD/Y.", "BRD/X."),
            ("PCO/05.", "PCO/10."),
            ("PCO/05.", "PCO/5."),
            ("TYP/DV.", "TYP/XX."),
            ("DOB/19850214.", "DOB/19850230."),
            ("DOB/19850214.", "DOB/29990101."),
            ("DOB/19850214.", "DOB/1985-02-14."),
            ("ISD/20261125.", "ISD/20261325."),
            ("EXP/20311125.", "EXP/20201125."),
            ("EXP/20311125.", "EXP/NEVER."),
            ("EXT/2359.", "EXT/2400."),
            ("EXT/2359.", "EXT/1260."),
            ("HGT/510.", "HGT/512."),
            ("HGT/510.", "HGT/5100."),
            ("WGT/185.", "WGT/0."),
            ("WGT/185.", "WGT/1850."),
            ("OLS/CA.", "OLS/C1."),
            ("NAM/DOE, JOHN ALLEN.", "NAM/DOE JOHN ALLEN."),
            ("NAM/DOE, JOHN ALLEN.", "NAM/Doe, John."),
            ("NAM/DOE, JOHN ALLEN.", "NAM/DOEFFFFFFFFFFFFFFFFFFFFFFFFF, JOHN."),
            ("PNO/24DV01234.", "PNO/24DV/01234."),
            ("PNO/24DV01234.", "PNO/24DV0123456789012."),
            ("OCA/24FL001234.", "OCA/24fl001234."),
            ("PPB/19870302.", "PPB/18870302."),
        ];
        for (from, to) in cases {
            assert_eq!(code_of(&epo_with(from, to)), RejectCode::E03, "{to}");
        }
        let long_mis = format!("MIS/{}.", "X".repeat(501));
        let text = epo(1);
        let mis_start = text.find("MIS/").unwrap();
        assert_eq!(code_of(&format!("{}{long_mis}", &text[..mis_start])), RejectCode::E03);
        assert_eq!(
            code_of(&spo(2, "H000000001").replace("SVM/P.", "SVM/X.")),
            RejectCode::E03
        );
        assert_eq!(
            code_of(&spo(2, "H000000001").replace("SVA/CA0340000.", "SVA/CA034.")),
            RejectCode::E03
        );
        assert_eq!(code_of(&cpo(2, "H00000001")), RejectCode::E03);
    }

    /// A structural fault wins over a missing field, which wins over a bad value.
    #[test]
    fn earlier_check_wins() {
        let both = epo_with("SEX/M.RAC/W.", "RAC/Q.");
        assert_eq!(code_of(&both), RejectCode::E02);
        let all = both.replacen("HGT/510.WGT/185.", "WGT/185.HGT/510.", 1);
        assert_eq!(code_of(&all), RejectCode::E01);
    }

    /// EPO creates an active record with a NIC (letter + 9 digits) and a 13-digit FCN.
    #[test]
    fn epo_creates_active_record() {
        let mut table = RecordTable::new('H', "034");
        let applied = apply(&mut table, &epo(1)).unwrap();
        assert_eq!(
            applied,
            Applied {
                nic: "H000000001".into(),
                fcn: "0340000000001".into(),
                double_record: false
            }
        );
        let record = table.get("H000000001").unwrap();
        assert_eq!(
            (record.ori.as_str(), record.pno.as_str(), record.status),
            (ORI, "24DV01234", RecordStatus::Active)
        );
        assert_eq!(record.mcns, vec![mcn(1)]);
        assert_eq!(record.fields().count(), 25);
    }

    /// A second EPO for an active (ORI, PNO) is E05; after a cancel it is a re-entry with a new NIC.
    #[test]
    fn duplicate_active_order_is_e05_until_cancelled() {
        let mut table = RecordTable::new('H', "034");
        apply(&mut table, &epo(1)).unwrap();
        assert_eq!(apply(&mut table, &epo(2)).unwrap_err().code, RejectCode::E05);
        apply(&mut table, &xpo(2, "H000000001")).unwrap();
        let reentry = apply(&mut table, &epo(3)).unwrap();
        assert_eq!(reentry.nic, "H000000002");
        assert_eq!(table.records().count(), 2);
    }

    /// MPO replaces the entry fields whole, including the PCO and protected-person lists.
    #[test]
    fn mpo_replaces_entry_fields() {
        let mut table = RecordTable::new('H', "034");
        apply(&mut table, &epo(1)).unwrap();
        let applied = apply(&mut table, &mpo(2, "H000000001")).unwrap();
        assert_eq!(
            (applied.nic.as_str(), applied.fcn.as_str()),
            ("H000000001", "0340000000001")
        );
        let record = table.get("H000000001").unwrap();
        let value = |tag: &str| {
            record
                .fields()
                .filter(|(t, _)| t == tag)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(value("PCO"), ["01"]);
        assert_eq!(value("BRD"), ["N"]);
        assert!(value("MIS").is_empty(), "a field absent from MPO is cleared");
        assert!(value("NIC").is_empty());
        assert_eq!(record.mcns, vec![mcn(1), mcn(2)]);
    }

    /// CPO clears the record; later MPO, CPO and SPO are E04, while XPO may still cancel it.
    #[test]
    fn cleared_record_refuses_all_but_cancel() {
        let mut table = RecordTable::new('H', "034");
        apply(&mut table, &epo(1)).unwrap();
        apply(&mut table, &cpo(2, "H000000001")).unwrap();
        assert_eq!(table.get("H000000001").unwrap().status, RecordStatus::Cleared);
        for text in [mpo(3, "H000000001"), cpo(3, "H000000001"), spo(3, "H000000001")] {
            assert_eq!(apply(&mut table, &text).unwrap_err().code, RejectCode::E04, "{text}");
        }
        apply(&mut table, &xpo(3, "H000000001")).unwrap();
        assert_eq!(table.get("H000000001").unwrap().status, RecordStatus::Cancelled);
        assert_eq!(
            apply(&mut table, &xpo(4, "H000000001")).unwrap_err().code,
            RejectCode::E04
        );
    }

    /// An unknown NIC, or a NIC of another ORI or PNO, is E04.
    #[test]
    fn unknown_or_foreign_nic_is_e04() {
        let mut table = RecordTable::new('H', "034");
        assert_eq!(
            apply(&mut table, &mpo(2, "H000000001")).unwrap_err().code,
            RejectCode::E04
        );
        apply(&mut table, &epo(1)).unwrap();
        let other_pno = cpo(2, "H000000001").replace("PNO/24DV01234", "PNO/24DV09999");
        assert_eq!(apply(&mut table, &other_pno).unwrap_err().code, RejectCode::E04);
        let other_ori = cpo(2, "H000000001").replace(ORI, "CA0341100");
        assert_eq!(apply(&mut table, &other_ori).unwrap_err().code, RejectCode::E04);
    }

    /// SPO records service data that survives a later MPO.
    #[test]
    fn service_survives_modify() {
        let mut table = RecordTable::new('H', "034");
        apply(&mut table, &epo(1)).unwrap();
        apply(&mut table, &spo(2, "H000000001")).unwrap();
        apply(&mut table, &mpo(3, "H000000001")).unwrap();
        let record = table.get("H000000001").unwrap();
        let tags: Vec<&str> = record.supplement.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tags, ["SVD", "SVT", "SVB", "SVA", "SVM"]);
        assert_eq!(record.status, RecordStatus::Active);
    }

    /// The same (ORI, PNO, sequence) applied under a second MCN is flagged as a double record.
    #[test]
    fn same_sequence_under_new_mcn_is_double_record() {
        let mut table = RecordTable::new('H', "034");
        apply(&mut table, &epo(1)).unwrap();
        assert!(!apply(&mut table, &mpo(2, "H000000001")).unwrap().double_record);
        // Sequence 2 again, revision 1: a different MCN for an already applied message.
        let again = mpo(2, "H000000001").replacen(&mcn(2), &format!("00021{HASH}"), 1);
        assert!(apply(&mut table, &again).unwrap().double_record);
    }

    /// Clearing the table keeps numbering going, so NICs are never reused.
    #[test]
    fn clear_keeps_numbering() {
        let mut table = RecordTable::new('K', "0991234");
        apply(&mut table, &epo(1)).unwrap();
        table.clear();
        assert_eq!(table.records().count(), 0);
        let applied = apply(&mut table, &epo(1)).unwrap();
        assert_eq!(
            (applied.nic.as_str(), applied.fcn.as_str()),
            ("K000000002", "0991234000002")
        );
        assert!(!applied.double_record);
    }
}
