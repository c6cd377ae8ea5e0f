//! The layout data model: what a layout file says ([`LayoutSpec`] and its
//! parts, deserialised from TOML), and the checked [`Layout`] the reader
//! applies. Loading checks everything that can be checked without input —
//! columns inside the record and not overlapping, known canonical fields,
//! field types that fit their fields, patterns, record order — so that a bad
//! file fails at start, naming the file and the entry, not at the first order.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveTime;
use serde::Deserialize;

use super::pattern::Pattern;
use super::target::{Container, Kind, Target};
use crate::mapping::code_map::{CodeMap, list_of_field};
use crate::model::{Action, FieldColumns};

/// Longest record a layout may declare. Far above any CMS record; it bounds
/// what one record can make the reader scan.
pub const MAX_RECORD_LENGTH: usize = 65_536;

/// Why a layout file could not be used.
#[derive(Debug)]
pub enum LayoutError {
    /// The file could not be read.
    Io { file: String, source: std::io::Error },
    /// The file is not valid TOML, or does not have the layout's shape
    /// (unknown key, missing key, wrong value type).
    Syntax {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// The file is well formed but says something impossible, such as
    /// overlapping columns. `entry` names where (`records[R].fields[restrained_person.sex]`).
    Invalid {
        file: String,
        entry: String,
        message: String,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Io { file, source } => write!(f, "layout {file}: cannot read: {source}"),
            LayoutError::Syntax {
                file,
                line,
                column,
                message,
            } => {
                write!(f, "layout {file}: ")?;
                match (line, column) {
                    (Some(l), Some(c)) => write!(f, "line {l}, column {c}: ")?,
                    (Some(l), None) => write!(f, "line {l}: ")?,
                    _ => {}
                }
                f.write_str(message)
            }
            LayoutError::Invalid { file, entry, message } => {
                write!(f, "layout {file}: {entry}: {message}")
            }
        }
    }
}

impl std::error::Error for LayoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LayoutError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A layout file as written: one fixed-width format of one CMS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSpec {
    /// The layout's name, as court configuration and the `x-por-layout`
    /// header spell it (`cms-a/1`).
    pub name: String,
    /// What the layout is for, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Data bytes per record, terminator excluded.
    pub record_length: usize,
    /// Accepted record terminators (`"LF"`, `"CRLF"`). The last record may
    /// have none.
    pub terminators: Vec<Terminator>,
    /// Where every record carries its type (`O`, `R`, …).
    pub record_type: Columns,
    /// The code-map set under `mappings/` that this layout's codes go through
    /// on their way to the canonical codes; `None` when the layout already
    /// writes canonical codes.
    #[serde(default)]
    pub code_map: Option<String>,
    /// Which records each action's message holds, in order.
    pub record_order: Vec<RecordOrder>,
    /// The record types and their fields.
    pub records: Vec<RecordSpec>,
}

/// A record terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Terminator {
    /// `\n`.
    #[serde(rename = "LF")]
    Lf,
    /// `\r\n`.
    #[serde(rename = "CRLF")]
    Crlf,
}

/// A column range: 1-based first byte column and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// First column, 1-based.
    pub start: usize,
    /// Width in bytes.
    pub length: usize,
}

/// The records of the messages of some actions, in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordOrder {
    /// Spelled-out actions (`ISSUE`, `MODIFY`, …) this order applies to.
    pub actions: Vec<Action>,
    /// Consecutive groups of records of one type.
    pub records: Vec<RecordCount>,
}

/// A run of `min`–`max` consecutive records of one type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordCount {
    /// The record type (`P`).
    #[serde(rename = "type")]
    pub record_type: String,
    /// Fewest consecutive records of the type.
    pub min: usize,
    /// Most consecutive records of the type.
    pub max: usize,
}

/// One record type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// The type code in the `record_type` columns.
    #[serde(rename = "type")]
    pub record_type: String,
    /// What the record holds, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// The part of the message the record describes: `order`,
    /// `restrained_person`, `protected_persons[]` or `order.service`. The
    /// record's presence creates it, and its location is recorded.
    #[serde(default)]
    pub container: Option<String>,
    /// The record's fields; columns not covered are ignored.
    pub fields: Vec<FieldSpec>,
}

/// One field of a record: where it is, how to read it, and which canonical
/// field it fills.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Canonical field path (`order.issue_date`, `protected_persons[].sex`).
    /// Absent for `filler` and `line_number`.
    #[serde(default)]
    pub field: Option<String>,
    /// A label for fields without a canonical path, used in errors.
    #[serde(default)]
    pub name: Option<String>,
    /// First column, 1-based.
    pub start: usize,
    /// Width in bytes.
    pub length: usize,
    /// How the bytes are read.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// `date`, `time`, `datetime`: the pattern, as long as the field.
    #[serde(default)]
    pub pattern: Option<String>,
    /// `time`: the time used when the date is given and the time is blank.
    #[serde(default)]
    pub default: Option<String>,
    /// `number`: every column must be a digit (`0001`).
    #[serde(default)]
    pub zero_padded: bool,
    /// `codes`: width of each repeated code.
    #[serde(default)]
    pub width: Option<usize>,
    /// `flag`: the value meaning yes.
    #[serde(default)]
    pub yes: Option<String>,
    /// `flag`: the value meaning no.
    #[serde(default)]
    pub no: Option<String>,
    /// `action`: wire code → spelled-out action.
    #[serde(default)]
    pub codes: Option<BTreeMap<String, Action>>,
    /// `text`, `code`: repeated records append to the field, trimmed and
    /// separated by this string; blank lines are skipped.
    #[serde(default)]
    pub join: Option<String>,
    /// `text`, `code`, `digits`: longer values (after joining) are `TOO_LONG`.
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// How a field's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Left-justified, space-padded text; blank is none.
    Text,
    /// A code, read like text; the validator checks it against the code lists.
    Code,
    /// Text that must be digits (height, ZIP), kept as a string.
    Digits,
    /// An unsigned number (sequence).
    Number,
    /// A date with `pattern`.
    Date,
    /// A time with `pattern`, combined with the record's `date` field of the
    /// same canonical field.
    Time,
    /// A date and time in one field, with `pattern`.
    Datetime,
    /// Repeated codes of `width` bytes; blank slots are skipped.
    Codes,
    /// Yes/no with `yes` and `no` (default `Y` and `N`).
    Flag,
    /// The message's action, with `codes`.
    Action,
    /// The position of a repeated record (`01`, `02`, …); must count up from 1.
    LineNumber,
    /// Unused columns; their content is ignored (but must be ASCII).
    Filler,
}

/// A checked layout, ready to read order messages.
#[derive(Debug, Clone)]
pub struct Layout {
    spec: LayoutSpec,
    /// Where the layout was read from (its file), for messages.
    source: String,
    pub(super) records: Vec<CompiledRecord>,
    pub(super) orders: Vec<CompiledOrder>,
    /// Most records any action's message may hold.
    pub(super) max_records: usize,
    pub(super) type_columns: Columns,
    /// The code-map set attached with [`Layout::with_code_map`]: what
    /// [`Layout::read_order`] and [`Layout::write_order`] map codes through.
    pub(super) code_map: Option<Arc<CodeMap>>,
    /// Each field's record type, path and columns, for locating fields
    /// without recording them one by one ([`FieldColumns`]).
    pub(super) columns: Arc<FieldColumns>,
}

/// A record type, resolved.
#[derive(Debug, Clone)]
pub(super) struct CompiledRecord {
    pub type_code: Vec<u8>,
    pub container: Option<Container>,
    /// The canonical path errors about the whole record name (`[]` unexpanded).
    pub error_field: &'static str,
    pub fields: Vec<CompiledField>,
    /// The steps that read a clean record of the full length: the fields
    /// that fill or check something, in order ([`Step`]).
    pub steps: Vec<Step>,
}

/// One field as the reader's fast path reads it, compiled at load: where
/// it is and, for the kinds nearly every field has, what to do, in a few
/// bytes. The fast path takes only clean records of the full length, so
/// every range is inside the record and its text is ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Step {
    /// Byte range in the record, 0-based, end excluded.
    pub start: u32,
    pub end: u32,
    /// The field's index in [`CompiledRecord::fields`].
    pub field: u32,
    pub op: Op,
}

/// What a [`Step`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Text (or digits, when `digits`) stored trimmed into `target`: blank
    /// stores nothing; a value over `max` bytes, or digits that are not,
    /// go to the general reader, which reports them.
    Text { target: Target, max: u32, digits: bool },
    /// Any other kind: the general reader ([`Read`]).
    General,
}

impl CompiledRecord {
    /// The fast path's steps for `fields`. A field that fills nothing and
    /// checks nothing (a filler, a field without target) has no step.
    fn steps(fields: &[CompiledField]) -> Vec<Step> {
        let max = |m: &Option<usize>| m.map_or(u32::MAX, |m| u32::try_from(m).unwrap_or(u32::MAX));
        fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let op = match (&f.read, f.target) {
                    (Read::Filler, _) => return None,
                    (Read::LineNumber, _) => Op::General,
                    (_, None) => return None,
                    (Read::Text { join: None, max_length }, Some(target)) => Op::Text {
                        target,
                        max: max(max_length),
                        digits: false,
                    },
                    (Read::Digits { max_length }, Some(target)) => Op::Text {
                        target,
                        max: max(max_length),
                        digits: true,
                    },
                    _ => Op::General,
                };
                let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                Some(Step {
                    start: clamp(f.start - 1),
                    end: clamp(f.start - 1 + f.length),
                    field: clamp(i),
                    op,
                })
            })
            .collect()
    }
}

/// A field, resolved.
#[derive(Debug, Clone)]
pub(super) struct CompiledField {
    /// First column, 1-based.
    pub start: usize,
    pub length: usize,
    pub target: Option<Target>,
    pub read: Read,
}

/// How to read a field, with its attributes resolved.
#[derive(Debug, Clone)]
pub(super) enum Read {
    Text {
        join: Option<String>,
        max_length: Option<usize>,
    },
    Digits {
        max_length: Option<usize>,
    },
    Number {
        zero_padded: bool,
    },
    Date(Pattern),
    Time {
        pattern: Pattern,
        default: Option<NaiveTime>,
    },
    DateTime(Pattern),
    Codes {
        width: usize,
    },
    Flag {
        yes: String,
        no: String,
    },
    Action(BTreeMap<String, Action>),
    LineNumber,
    Filler,
}

/// The record order of some actions, resolved to record indexes.
#[derive(Debug, Clone)]
pub(super) struct CompiledOrder {
    pub actions: Vec<Action>,
    /// (record index, min, max).
    pub groups: Vec<(usize, usize, usize)>,
}

/// Where each field that fills a canonical field sits. A time field is left
/// out: its date-time is located at its date.
fn field_columns(records: &[CompiledRecord]) -> FieldColumns {
    let mut columns = FieldColumns::default();
    for (i, r) in records.iter().enumerate() {
        for f in &r.fields {
            if let Some(t) = f.target
                && !matches!(f.read, Read::Time { .. })
            {
                columns.push(i, t.template(), f.start, f.start - 1 + f.length);
            }
        }
    }
    columns
}

impl Layout {
    /// Reads and checks the layout file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Layout, LayoutError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Io {
            file: file.clone(),
            source,
        })?;
        Layout::from_toml_str(&file, &text)
    }

    /// Parses and checks a layout from TOML text; `name_for_errors` names the
    /// source in errors (usually the file path).
    pub fn from_toml_str(name_for_errors: &str, text: &str) -> Result<Layout, LayoutError> {
        let spec: LayoutSpec = toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            LayoutError::Syntax {
                file: name_for_errors.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        Layout::from_spec(name_for_errors, spec)
    }

    /// Checks a layout built in code; `name_for_errors` names it in errors.
    pub fn from_spec(name_for_errors: &str, spec: LayoutSpec) -> Result<Layout, LayoutError> {
        Checker { file: name_for_errors }.check(spec)
    }

    /// The layout's name (`cms-a/1`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The layout as written.
    pub fn spec(&self) -> &LayoutSpec {
        &self.spec
    }

    /// Most records a message in this layout may hold; the reader rejects
    /// longer messages early.
    pub fn max_records(&self) -> usize {
        self.max_records
    }

    pub(super) fn allows(&self, t: Terminator) -> bool {
        self.spec.terminators.contains(&t)
    }

    /// Data bytes per record, terminator excluded.
    pub fn record_length(&self) -> usize {
        self.spec.record_length
    }

    /// The name of the code-map set the layout file names as its default
    /// (`code_map`), if any.
    pub fn code_map_name(&self) -> Option<&str> {
        self.spec.code_map.as_deref()
    }

    /// The code-map set attached to this layout, if any.
    pub fn code_map(&self) -> Option<&CodeMap> {
        self.code_map.as_deref()
    }

    /// Attaches the code-map set that [`Layout::read_order`] and
    /// [`Layout::write_order`] use, after checking that it fits
    /// ([`Layout::check_code_map`]). [`crate::broker::load_formats`] attaches
    /// each layout's default set.
    pub fn with_code_map(mut self, map: Arc<CodeMap>) -> Result<Layout, LayoutError> {
        self.check_code_map(&map)?;
        self.code_map = Some(map);
        Ok(self)
    }

    /// Checks that every court code of `map` fits the columns of the fields
    /// holding its list (a code wider than its field could never be read,
    /// nor written).
    pub fn check_code_map(&self, map: &CodeMap) -> Result<(), LayoutError> {
        for r in &self.records {
            for f in &r.fields {
                let Some(t) = f.target else { continue };
                let Some(list) = list_of_field(t.template()) else {
                    continue;
                };
                let width = match f.read {
                    Read::Codes { width } => width,
                    _ => f.length,
                };
                if let Some(code) = map.court_codes(list).find(|c| c.len() > width) {
                    return Err(LayoutError::Invalid {
                        file: self.source.clone(),
                        entry: format!(
                            "records[{}].fields[{}]",
                            String::from_utf8_lossy(&r.type_code),
                            t.template()
                        ),
                        message: format!(
                            "code map {} ({}) entry {list}.{code}: the court code is {} bytes, \
                             wider than field {} ({width} bytes)",
                            map.name(),
                            map.file(),
                            code.len(),
                            t.template(),
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The canonical fields (layout paths, `[]` unexpanded) this layout has
    /// columns for. A canonical order with values elsewhere cannot be
    /// written in it.
    pub fn fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        let mut seen: Vec<&'static str> = Vec::new();
        self.records
            .iter()
            .flat_map(|r| r.fields.iter().filter_map(|f| f.target))
            .map(Target::template)
            .filter(move |p| {
                let new = !seen.contains(p);
                if new {
                    seen.push(p);
                }
                new
            })
    }

    /// The record-type byte that begins each order message in a batch file
    /// (ICD §3), for [`crate::formats::batch::read_batch`]: the first byte of
    /// the record holding the action. Batch files tell records apart by
    /// column 1, so this is an error, saying why, when the record type does
    /// not start in column 1, when a record type begins with `H` or `T` (the
    /// batch header's and trailer's), or when another record type begins
    /// with the same byte as the order record.
    pub fn batch_record_type(&self) -> Result<u8, String> {
        if self.type_columns.start != 1 {
            return Err("batch files need the record type to start in column 1".into());
        }
        let first = |r: &CompiledRecord| r.type_code.first().copied();
        if self.records.iter().any(|r| matches!(first(r), Some(b'H' | b'T'))) {
            return Err("one of its record types begins with H or T, like the batch header and trailer".into());
        }
        let action = self
            .records
            .iter()
            .find(|r| r.fields.iter().any(|f| matches!(f.read, Read::Action(_))))
            .and_then(first)
            .ok_or("it has no record holding the action")?;
        if self.records.iter().filter(|r| first(r) == Some(action)).count() > 1 {
            return Err(format!(
                "another record type begins with {:?}, like its order record",
                char::from(action)
            ));
        }
        Ok(action)
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn invalid(&self, entry: impl Into<String>, message: impl Into<String>) -> LayoutError {
        LayoutError::Invalid {
            file: self.file.to_string(),
            entry: entry.into(),
            message: message.into(),
        }
    }

    fn check(&self, spec: LayoutSpec) -> Result<Layout, LayoutError> {
        if spec.name.trim().is_empty() {
            return Err(self.invalid("name", "must not be empty"));
        }
        if spec.record_length == 0 || spec.record_length > MAX_RECORD_LENGTH {
            return Err(self.invalid("record_length", format!("must be between 1 and {MAX_RECORD_LENGTH}")));
        }
        if spec.terminators.is_empty() {
            return Err(self.invalid("terminators", "name at least one of \"LF\", \"CRLF\""));
        }
        let tc = spec.record_type;
        self.columns("record_type", tc, spec.record_length)?;

        let mut records: Vec<CompiledRecord> = Vec::new();
        let mut owner: BTreeMap<&'static str, String> = BTreeMap::new();
        for r in &spec.records {
            let entry = format!("records[{}]", r.record_type);
            if r.record_type.len() != tc.length || !r.record_type.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(self.invalid(
                    entry,
                    format!(
                        "type must be {} printable ASCII character(s), as wide as record_type",
                        tc.length
                    ),
                ));
            }
            if records.iter().any(|c| c.type_code == r.record_type.as_bytes()) {
                return Err(self.invalid(entry, "record type declared twice"));
            }
            let rec = self.record(&entry, r, &spec)?;
            for f in &rec.fields {
                let Some(t) = f.target else { continue };
                let path = t.template();
                match owner.get(path) {
                    Some(other) if *other != r.record_type => {
                        return Err(self.invalid(
                            format!("{entry}.fields[{path}]"),
                            format!("field is also filled by record {other}"),
                        ));
                    }
                    _ => {
                        owner.insert(path, r.record_type.clone());
                    }
                }
            }
            records.push(rec);
        }
        if records.is_empty() {
            return Err(self.invalid("records", "declare at least one record type"));
        }

        let action_records: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.fields.iter().any(|f| matches!(f.read, Read::Action(_))))
            .map(|(i, _)| i)
            .collect();
        let action_record = match action_records.as_slice() {
            [one] => *one,
            [] => return Err(self.invalid("records", "no record has an `action` field")),
            _ => return Err(self.invalid("records", "more than one record has an `action` field")),
        };

        let mut orders: Vec<CompiledOrder> = Vec::new();
        let mut seen_actions: Vec<Action> = Vec::new();
        let mut max_records = 0usize;
        let mut repeatable = vec![false; records.len()];
        let mut used = vec![false; records.len()];
        for (n, o) in spec.record_order.iter().enumerate() {
            let entry = format!("record_order #{}", n + 1);
            if o.actions.is_empty() {
                return Err(self.invalid(entry, "names no action"));
            }
            for a in &o.actions {
                if seen_actions.contains(a) {
                    return Err(self.invalid(entry, format!("action {} already has a record order", a.name())));
                }
                seen_actions.push(*a);
            }
            let mut groups = Vec::new();
            let mut total = 0usize;
            for g in &o.records {
                let Some(i) = records.iter().position(|r| r.type_code == g.record_type.as_bytes()) else {
                    return Err(self.invalid(&entry, format!("record type '{}' is not declared", g.record_type)));
                };
                if g.max == 0 || g.min > g.max || g.max > 999 {
                    return Err(self.invalid(
                        &entry,
                        format!("record {}: need 0 <= min <= max, 1 <= max <= 999", g.record_type),
                    ));
                }
                if groups.last().is_some_and(|&(last, _, _)| last == i) {
                    return Err(self.invalid(
                        &entry,
                        format!("record {} appears in two consecutive groups", g.record_type),
                    ));
                }
                if groups.iter().any(|&(j, _, _)| j == i) {
                    return Err(self.invalid(&entry, format!("record {} appears twice", g.record_type)));
                }
                if g.max > 1 {
                    repeatable[i] = true;
                }
                used[i] = true;
                total += g.max;
                groups.push((i, g.min, g.max));
            }
            match groups.first() {
                Some(&(i, min, _)) if i == action_record && min >= 1 => {}
                _ => {
                    return Err(self.invalid(
                        entry,
                        format!(
                            "must begin with the record that holds the action ({})",
                            String::from_utf8_lossy(&records[action_record].type_code)
                        ),
                    ));
                }
            }
            if repeatable[action_record] {
                return Err(self.invalid(entry, "the action's record cannot repeat"));
            }
            max_records = max_records.max(total);
            orders.push(CompiledOrder {
                actions: o.actions.clone(),
                groups,
            });
        }
        if orders.is_empty() {
            return Err(self.invalid("record_order", "declare the records of at least one action"));
        }
        for (i, r) in records.iter().enumerate() {
            let entry = format!("records[{}]", String::from_utf8_lossy(&r.type_code));
            if !used[i] {
                return Err(self.invalid(entry, "record type appears in no record_order"));
            }
            if repeatable[i] {
                for f in &r.fields {
                    let Some(t) = f.target else { continue };
                    let joined = matches!(f.read, Read::Text { join: Some(_), .. });
                    if !t.indexed() && !joined {
                        return Err(self.invalid(
                            format!("{entry}.fields[{}]", t.template()),
                            "the record can repeat, so the field must be a list element \
                             (`...[]...`) or be joined (`join`)",
                        ));
                    }
                }
            } else if let Some(f) = r
                .fields
                .iter()
                .find(|f| f.target.is_some_and(Target::indexed) || matches!(f.read, Read::LineNumber))
            {
                return Err(self.invalid(
                    format!("{entry}.fields[column {}]", f.start),
                    "list elements and line numbers need a record that can repeat (max > 1)",
                ));
            }
        }

        let columns = Arc::new(field_columns(&records));
        Ok(Layout {
            spec,
            source: self.file.to_string(),
            records,
            orders,
            max_records,
            type_columns: tc,
            code_map: None,
            columns,
        })
    }

    fn columns(&self, entry: &str, c: Columns, record_length: usize) -> Result<(), LayoutError> {
        if c.start == 0 || c.length == 0 || c.start - 1 + c.length > record_length {
            return Err(self.invalid(
                entry,
                format!(
                    "columns {} (start {}, length {}) are not inside the {record_length}-byte record",
                    span(c.start, c.length),
                    c.start,
                    c.length
                ),
            ));
        }
        Ok(())
    }

    fn record(&self, entry: &str, r: &RecordSpec, spec: &LayoutSpec) -> Result<CompiledRecord, LayoutError> {
        let container = match &r.container {
            None => None,
            Some(c) => Some(Container::parse(c).ok_or_else(|| {
                self.invalid(
                    format!("{entry}.container"),
                    format!(
                        "unknown container '{c}'; known: {}",
                        Container::known_paths().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?),
        };
        // (start, end inclusive, label) of every used column range.
        let tc = spec.record_type;
        let mut taken: Vec<(usize, usize, String)> =
            vec![(tc.start, tc.start + tc.length - 1, "record_type".to_string())];
        let mut fields: Vec<CompiledField> = Vec::new();
        for f in &r.fields {
            let label = f
                .field
                .clone()
                .or_else(|| f.name.clone())
                .unwrap_or_else(|| format!("column {}", f.start));
            let fe = format!("{entry}.fields[{label}]");
            self.columns(
                &fe,
                Columns {
                    start: f.start,
                    length: f.length,
                },
                spec.record_length,
            )?;
            let end = f.start + f.length - 1;
            if let Some((s, e, other)) = taken.iter().find(|(s, e, _)| f.start <= *e && *s <= end) {
                return Err(self.invalid(
                    fe,
                    format!(
                        "columns {} overlap {other} (columns {})",
                        span(f.start, f.length),
                        span(*s, e - s + 1)
                    ),
                ));
            }
            taken.push((f.start, end, label.clone()));
            let cf = self.field(&fe, f, container)?;
            fields.push(cf);
        }
        self.date_times(entry, &fields)?;
        if fields.iter().filter(|f| matches!(f.read, Read::LineNumber)).count() > 1 {
            return Err(self.invalid(entry, "more than one line_number field"));
        }
        let error_field = match container {
            Some(c) => c.template(),
            None => fields.iter().find_map(|f| f.target).map_or("message", Target::template),
        };
        Ok(CompiledRecord {
            type_code: r.record_type.as_bytes().to_vec(),
            container,
            error_field,
            steps: CompiledRecord::steps(&fields),
            fields,
        })
    }

    /// Every canonical field is filled once per record, except a date-time,
    /// which is either one `datetime` field or one `date` plus one `time`.
    fn date_times(&self, entry: &str, fields: &[CompiledField]) -> Result<(), LayoutError> {
        for (i, f) in fields.iter().enumerate() {
            let Some(t) = f.target else { continue };
            if fields[..i].iter().any(|g| g.target == Some(t)) {
                continue;
            }
            let same: Vec<&CompiledField> = fields.iter().filter(|g| g.target == Some(t)).collect();
            let fe = format!("{entry}.fields[{}]", t.template());
            let count = |pred: fn(&Read) -> bool| same.iter().filter(|g| pred(&g.read)).count();
            if t.kind() == Kind::DateTime {
                let dates = count(|r| matches!(r, Read::Date(_)));
                let times = count(|r| matches!(r, Read::Time { .. }));
                let both = count(|r| matches!(r, Read::DateTime(_)));
                let ok = (dates == 1 && times == 1 && both == 0) || (dates == 0 && times == 0 && both == 1);
                if !ok {
                    return Err(self.invalid(
                        fe,
                        "a date-time field needs one `date` and one `time` field, or one `datetime` field",
                    ));
                }
            } else if same.len() > 1 {
                return Err(self.invalid(fe, "field is filled twice in the record"));
            }
        }
        Ok(())
    }

    fn field(&self, fe: &str, f: &FieldSpec, container: Option<Container>) -> Result<CompiledField, LayoutError> {
        use FieldType as F;
        let targetless = matches!(f.field_type, F::Filler | F::LineNumber);
        let target = match (&f.field, targetless) {
            (Some(_), true) => {
                return Err(self.invalid(fe, "filler and line_number fields fill no `field`"));
            }
            (None, true) => None,
            (None, false) => {
                return Err(self.invalid(fe, "name the canonical `field` this column fills"));
            }
            (Some(path), false) => Some(Target::parse(path).ok_or_else(|| {
                self.invalid(
                    fe,
                    format!(
                        "unknown canonical field '{path}'; known: {}",
                        Target::known_paths().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?),
        };
        if let Some(t) = target {
            if let Some(c) = container
                && !c.holds(t)
            {
                return Err(self.invalid(
                    fe,
                    format!("field is outside the record's container '{}'", c.template()),
                ));
            }
            if t.indexed() && container != Some(Container::ProtectedPersons) {
                return Err(self.invalid(
                    fe,
                    "list-element fields belong in a record whose container is `protected_persons[]`",
                ));
            }
            let fits = match f.field_type {
                F::Text | F::Code | F::Digits => t.kind() == Kind::Text,
                F::Number => t.kind() == Kind::Number,
                F::Date => matches!(t.kind(), Kind::Date | Kind::DateTime),
                F::Time | F::Datetime => t.kind() == Kind::DateTime,
                F::Codes => t.kind() == Kind::List,
                F::Flag => t.kind() == Kind::Bool,
                F::Action => t.kind() == Kind::Action,
                F::LineNumber | F::Filler => true,
            };
            if !fits {
                return Err(self.invalid(
                    fe,
                    format!("type {:?} cannot fill this canonical field", f.field_type).to_lowercase(),
                ));
            }
        }

        // Attributes only make sense for some types.
        let not_for = |attr: &str| self.invalid(fe, format!("`{attr}` does not apply to this type"));
        let is = |types: &[F]| types.contains(&f.field_type);
        if f.pattern.is_some() && !is(&[F::Date, F::Time, F::Datetime]) {
            return Err(not_for("pattern"));
        }
        if f.default.is_some() && !is(&[F::Time]) {
            return Err(not_for("default"));
        }
        if f.zero_padded && !is(&[F::Number]) {
            return Err(not_for("zero_padded"));
        }
        if f.width.is_some() && !is(&[F::Codes]) {
            return Err(not_for("width"));
        }
        if (f.yes.is_some() || f.no.is_some()) && !is(&[F::Flag]) {
            return Err(not_for("yes/no"));
        }
        if f.codes.is_some() && !is(&[F::Action]) {
            return Err(not_for("codes"));
        }
        if f.join.is_some() && (!is(&[F::Text, F::Code]) || target.is_some_and(Target::indexed)) {
            return Err(not_for("join"));
        }
        if f.max_length.is_some() && !is(&[F::Text, F::Code, F::Digits]) {
            return Err(not_for("max_length"));
        }
        if f.max_length == Some(0) {
            return Err(self.invalid(fe, "max_length must be at least 1"));
        }

        let pattern = |want_date: bool, want_time: bool| -> Result<Pattern, LayoutError> {
            let text = f
                .pattern
                .as_deref()
                .ok_or_else(|| self.invalid(fe, "give the `pattern` (for example CCYYMMDD or HHMM)"))?;
            let p = Pattern::parse(text).map_err(|m| self.invalid(fe, m))?;
            if p.has_date() != want_date || p.has_time() != want_time {
                return Err(self.invalid(
                    fe,
                    format!("pattern '{text}' does not fit a {:?} field", f.field_type).to_lowercase(),
                ));
            }
            if p.width() != f.length {
                return Err(self.invalid(
                    fe,
                    format!("pattern '{text}' is {} bytes; the field is {}", p.width(), f.length),
                ));
            }
            Ok(p)
        };

        let read = match f.field_type {
            F::Text | F::Code => Read::Text {
                join: f.join.clone(),
                max_length: f.max_length,
            },
            F::Digits => Read::Digits {
                max_length: f.max_length,
            },
            F::Number => {
                if f.length > 9 {
                    return Err(self.invalid(fe, "a number field is at most 9 bytes"));
                }
                Read::Number {
                    zero_padded: f.zero_padded,
                }
            }
            F::Date => Read::Date(pattern(true, false)?),
            F::Datetime => Read::DateTime(pattern(true, true)?),
            F::Time => {
                let p = pattern(false, true)?;
                let default = match &f.default {
                    None => None,
                    Some(d) => match p.read(d.as_bytes()) {
                        Ok(Some(parts)) => parts.time,
                        _ => {
                            return Err(
                                self.invalid(fe, format!("default '{d}' does not match pattern '{}'", p.text()))
                            );
                        }
                    },
                };
                Read::Time { pattern: p, default }
            }
            F::Codes => {
                let w = f
                    .width
                    .ok_or_else(|| self.invalid(fe, "give the `width` of each code"))?;
                if w == 0 || !f.length.is_multiple_of(w) {
                    return Err(self.invalid(fe, format!("length {} is not a multiple of width {w}", f.length)));
                }
                Read::Codes { width: w }
            }
            F::Flag => {
                let yes = f.yes.clone().unwrap_or_else(|| "Y".into());
                let no = f.no.clone().unwrap_or_else(|| "N".into());
                let bad =
                    |v: &str| v.trim().is_empty() || v.len() > f.length || !v.bytes().all(|b| b.is_ascii_graphic());
                if bad(&yes) || bad(&no) || yes == no {
                    return Err(self.invalid(fe, "yes and no must differ, be printable ASCII and fit the field"));
                }
                Read::Flag { yes, no }
            }
            F::Action => {
                let codes = f
                    .codes
                    .clone()
                    .unwrap_or_else(|| Action::ALL.iter().map(|a| (a.code().to_string(), *a)).collect());
                if codes.is_empty() {
                    return Err(self.invalid(fe, "codes must name at least one action"));
                }
                if let Some(c) = codes.keys().find(|c| {
                    c.trim().is_empty()
                        || c.trim() != c.as_str()
                        || c.len() > f.length
                        || !c.bytes().all(|b| b.is_ascii_graphic())
                }) {
                    return Err(self.invalid(
                        fe,
                        format!("action code '{c}' must be printable ASCII and fit the field"),
                    ));
                }
                Read::Action(codes)
            }
            F::LineNumber => {
                if f.length > 9 {
                    return Err(self.invalid(fe, "a line number is at most 9 bytes"));
                }
                Read::LineNumber
            }
            F::Filler => Read::Filler,
        };
        Ok(CompiledField {
            start: f.start,
            length: f.length,
            target,
            read,
        })
    }
}

/// `a–b` for columns `a` to `a + len - 1`, or `a` for one column.
fn span(start: usize, len: usize) -> String {
    let end = (start + len).saturating_sub(1);
    if len <= 1 {
        format!("{start}")
    } else {
        format!("{start}–{end}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::formats::fixed::fixtures::{CMS_A, CMS_B};

    fn err(text: &str) -> String {
        Layout::from_toml_str("test.toml", text).unwrap_err().to_string()
    }

    /// The shipped `cms-a/1` layout loads, with the ICD's limits.
    #[test]
    fn cms_a_loads() {
        let l = Layout::from_toml_str("cms-a-1.toml", CMS_A).unwrap();
        assert_eq!(l.name(), "cms-a/1");
        assert_eq!(l.record_length(), 200);
        assert_eq!(l.max_records(), 16);
        assert!(l.allows(Terminator::Lf) && l.allows(Terminator::Crlf));
        // This source file's crate root, whether compiled in place or by path.
        let file = Path::new(file!());
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let root = here.ancestors().nth(4).expect("src/formats/fixed/layout.rs");
        let path = root.join("schemas/layouts/cms-a-1.toml");
        assert!(path.exists(), "{}", path.display());
        assert_eq!(Layout::load(&path).unwrap().name(), "cms-a/1");
    }

    /// The shipped `cms-b/2` layout loads: 240-byte records, types `10`–`50`,
    /// its default code-map set `cms-b`, and columns for every canonical field.
    #[test]
    fn cms_b_loads() {
        let l = Layout::from_toml_str("cms-b-2.toml", CMS_B).unwrap();
        assert_eq!(l.name(), "cms-b/2");
        assert_eq!(l.record_length(), 240);
        assert_eq!(l.max_records(), 14);
        assert_eq!(l.code_map_name(), Some("cms-b"));
        assert!(l.code_map().is_none());
        let fields: Vec<&str> = l.fields().collect();
        for path in Target::known_paths() {
            assert!(fields.contains(&path), "{path}");
        }
        let a = Layout::from_toml_str("cms-a-1.toml", CMS_A).unwrap();
        assert!(!a.fields().any(|f| f == "protected_persons[].name.suffix"));
        assert_eq!(a.fields().count(), Target::known_paths().count() - 1);
    }

    /// Batch files can frame cms-a/1 and cms-b/2 messages by their order
    /// record's first byte; not a layout with its type elsewhere than
    /// column 1, nor one with a record type beginning with H.
    #[test]
    fn batch_record_types() {
        let a = Layout::from_toml_str("a", CMS_A).unwrap();
        assert_eq!(a.batch_record_type(), Ok(b'O'));
        let b = Layout::from_toml_str("b", CMS_B).unwrap();
        assert_eq!(b.batch_record_type(), Ok(b'1'));
        let h = Layout::from_toml_str("h", &CMS_A.replace("\"M\"", "\"H\"")).unwrap();
        assert!(h.batch_record_type().unwrap_err().contains("H or T"));
        let moved: String = CMS_B
            .replace(
                "record_type = { start = 1, length = 2 }",
                "record_type = { start = 239, length = 2 }",
            )
            .lines()
            .filter(|l| !l.contains("\"filler\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let moved = Layout::from_toml_str("m", &moved).unwrap();
        assert!(moved.batch_record_type().unwrap_err().contains("column 1"));
    }

    /// A missing file is an I/O error naming the file.
    #[test]
    fn missing_file_names_it() {
        let e = Layout::load("/nonexistent/layout.toml").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/layout.toml"), "{e}");
    }

    /// An unknown key is refused (deny_unknown_fields), with file and line.
    #[test]
    fn unknown_key_names_file_and_line() {
        let text = CMS_A.replacen("record_length = 200", "record_length = 200\nrecord_lenght = 1", 1);
        let e = err(&text);
        assert!(e.starts_with("layout test.toml: line "), "{e}");
        assert!(e.contains("record_lenght"), "{e}");
        let text = CMS_A.replacen("zero_padded = true", "zero_padded = true, padding = 1", 1);
        assert!(err(&text).contains("padding"));
    }

    /// Overlapping columns are refused at load, naming record and field.
    #[test]
    fn overlap_is_refused() {
        let text = CMS_A.replacen(
            "{ field = \"order.case_number\", start = 11, length = 20",
            "{ field = \"order.case_number\", start = 10, length = 20",
            1,
        );
        let e = err(&text);
        assert!(e.contains("records[O].fields[order.case_number]"), "{e}");
        assert!(e.contains("overlap court_ori"), "{e}");
    }

    /// Columns past the record's end are refused at load.
    #[test]
    fn out_of_range_is_refused() {
        let text = CMS_A.replacen(
            "{ field = \"order.cancel_reason\", start = 141, length = 60",
            "{ field = \"order.cancel_reason\", start = 141, length = 61",
            1,
        );
        let e = err(&text);
        assert!(e.contains("records[O].fields[order.cancel_reason]"), "{e}");
        assert!(e.contains("not inside the 200-byte record"), "{e}");
    }

    /// Unknown canonical fields, bad patterns and misplaced attributes are refused.
    #[test]
    fn bad_fields_are_refused() {
        let text = CMS_A.replacen("\"order.form_id\"", "\"order.form\"", 1);
        assert!(err(&text).contains("unknown canonical field 'order.form'"));
        let text = CMS_A.replacen("pattern = \"CCYYMMDD\"", "pattern = \"YYMMDD\"", 1);
        assert!(err(&text).contains("two-digit years"));
        let text = CMS_A.replacen("pattern = \"CCYYMMDD\"", "pattern = \"CCYYMMDDHHMM\"", 1);
        assert!(err(&text).contains("does not fit a date field"));
        let text = CMS_A.replacen("default = \"2359\"", "default = \"2399\"", 1);
        assert!(err(&text).contains("default '2399'"));
        let text = CMS_A.replacen("type = \"codes\", width = 2", "type = \"codes\", width = 4", 1);
        assert!(err(&text).contains("not a multiple of width"));
        let text = CMS_A.replacen(
            "{ field = \"order.form_id\", start = 55, length = 8, type = \"text\" }",
            "{ field = \"order.form_id\", start = 55, length = 8, type = \"date\" }",
            1,
        );
        assert!(err(&text).contains("cannot fill"));
    }

    /// Record order mistakes are refused: unknown record, missing action record first.
    #[test]
    fn bad_record_order_is_refused() {
        let text = CMS_A.replacen(
            "{ type = \"S\", min = 1, max = 1 }",
            "{ type = \"Z\", min = 1, max = 1 }",
            1,
        );
        assert!(err(&text).contains("record type 'Z' is not declared"));
        let text = CMS_A.replacen(
            "records = [{ type = \"O\", min = 1, max = 1 }]",
            "records = [{ type = \"S\", min = 1, max = 1 }]",
            1,
        );
        assert!(err(&text).contains("must begin with the record that holds the action"));
        let text = CMS_A.replacen("actions = [\"SERVICE\"]", "actions = [\"ISSUE\"]", 1);
        assert!(err(&text).contains("ISSUE already has a record order"));
    }

    /// A non-list field in a repeatable record is refused (it would be overwritten).
    #[test]
    fn repeatable_record_needs_list_fields() {
        let text = CMS_A.replacen("\"protected_persons[].sex\"", "\"restrained_person.sex\"", 1);
        assert!(err(&text).contains("outside the record's container"), "{}", err(&text));
        let text = CMS_A.replacen(
            "{ type = \"S\", min = 1, max = 1 }",
            "{ type = \"S\", min = 1, max = 2 }",
            1,
        );
        assert!(err(&text).contains("must be a list element"), "{}", err(&text));
    }
}
