//! Applying a [`Layout`] to the bytes of one order message.
//!
//! The reader is total: every input, however broken, gives a [`Parsed`] with
//! whatever could be read and one error per problem, and it never panics. It
//! works on bytes (columns are byte columns), reads at most
//! [`Layout::max_records`] records, and never scans more than one record
//! length per record.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use smallvec::SmallVec;

use super::layout::{CompiledField, CompiledOrder, CompiledRecord, Layout, Op, Read, Terminator};
use super::pattern::PatternError;
use super::target::{Target, Value, store, store_str};
use crate::formats::Parsed;
use crate::mapping::code_map::CodeMap;
use crate::model::{Action, ErrorCode, FieldError, FieldPath, Locations, Position};
use crate::validate::merge;

impl Layout {
    /// Reads one order message in this layout, mapping its codes through the
    /// attached code-map set ([`Layout::with_code_map`]), if any.
    ///
    /// `body` is the AMQP body as received. `sent_at` is left `None`: for
    /// fixed-width the caller fills it from the AMQP `timestamp`. Every field
    /// read records its `record:column` location in [`Parsed::locations`], so
    /// the validator's errors can point into the input too.
    pub fn read_order(&self, body: &[u8]) -> Parsed {
        self.read_order_with(body, self.code_map.as_deref())
    }

    /// Reads one order message in this layout and maps its codes through
    /// `code_map` (a court's own set), or keeps them as written when `None`.
    /// An unmapped court code is `INVALID_CODE` at its `record:column`.
    pub fn read_order_with(&self, body: &[u8], code_map: Option<&CodeMap>) -> Parsed {
        let mut parsed = self.read_records(body);
        if let Some(map) = code_map {
            let errors = map.apply(&mut parsed.message, &parsed.locations);
            // A code inside a field the reader already rejected (a record of
            // the wrong length) would only echo that error.
            let errors = merge(std::mem::take(&mut parsed.errors), errors);
            parsed.errors = errors;
        }
        parsed
    }

    /// Reads the records, codes as written.
    fn read_records(&self, body: &[u8]) -> Parsed {
        // The result (about 1 KB) is filled where it is returned, not moved
        // out of the reader.
        let mut parsed = Parsed {
            locations: Locations::with_columns(Arc::clone(&self.columns), 2 * self.records.len() + 16),
            ..Parsed::default()
        };
        let mut reader = Reader {
            layout: self,
            parsed: &mut parsed,
            joined: SmallVec::new(),
            counts: SmallVec::from_elem(0, self.records.len()),
            seen: SmallVec::new(),
            date_times: SmallVec::new(),
            suppress: false,
        };
        reader.run(body);
        parsed
    }
}

/// One record's bytes, terminator removed.
struct Line<'a> {
    /// 1-based position in the message.
    number: usize,
    data: &'a [u8],
    terminator: Option<Terminator>,
    /// `data` as text, when no byte of it is one a record may not hold
    /// ([`is_bad_byte`]).
    text: Option<&'a str>,
}

impl<'a> Line<'a> {
    /// `text` is [`clean_text`]`(data)`.
    fn new(number: usize, data: &'a [u8], terminator: Option<Terminator>, text: Option<&'a str>) -> Self {
        Line {
            number,
            data,
            terminator,
            text,
        }
    }
}

/// Text joined over repeated records (condition text lines).
struct Joined {
    target: Target,
    text: String,
    max_length: Option<usize>,
    /// Where the text first grew past `max_length`.
    too_long_at: Option<Position>,
}

/// A date-time filled by a date and a time field of one record.
struct DateTimeParts {
    target: Target,
    date: Part<NaiveDate>,
    time: Part<NaiveTime>,
    default: Option<NaiveTime>,
    time_location: Position,
}

/// The date-times of one record (rarely more than one).
type DateTimes = SmallVec<[DateTimeParts; 2]>;

#[derive(Clone, Copy)]
enum Part<T> {
    Blank,
    Bad,
    Value(T),
}

/// The reader's own lists are [`SmallVec`]s sized for an ordinary message
/// (a few record types, up to 16 records, one joined text, one date-time per
/// record), so reading one allocates only what it returns.
struct Reader<'l> {
    layout: &'l Layout,
    parsed: &'l mut Parsed,
    joined: SmallVec<[Joined; 1]>,
    /// Records of each type read so far.
    counts: SmallVec<[usize; 8]>,
    /// (record number, record type index) of every record of a known type.
    seen: SmallVec<[(usize, usize); 16]>,
    /// The date-time parts of the record being read (reused per record).
    date_times: DateTimes,
    /// True while reading the fields of a record of the wrong length: its
    /// values are still read, but its field errors would only echo the
    /// length error, so they are not reported.
    suppress: bool,
}

/// A byte a fixed-width record may not hold: non-ASCII, or a control
/// character (terminators are removed before this check).
fn is_bad_byte(b: u8) -> bool {
    !(0x20..0x7f).contains(&b)
}

/// Whether `bytes` holds no bad byte. Written as a fold without early exit,
/// so that the compiler checks many bytes at a time.
fn all_clean(bytes: &[u8]) -> bool {
    !bytes.iter().fold(false, |bad, &b| bad | is_bad_byte(b))
}

fn at(record: usize, column: usize) -> Position {
    Position::new(record, column)
}

/// `bytes` as text when it holds no bad byte ([`all_clean`]). Every byte is
/// then printable ASCII (0x20–0x7E), so the UTF-8 check cannot fail; it is
/// kept (safe code) because `porter bench` showed no gain from skipping it.
fn clean_text(bytes: &[u8]) -> Option<&str> {
    if !all_clean(bytes) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The range of `bytes` left without leading and trailing spaces.
fn trimmed_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let end = trimmed_end(bytes);
    let start = bytes[..end].iter().position(|&b| b != b' ').unwrap_or(end);
    start..end
}

/// One past the last byte of `bytes` that is not a space (0 when blank).
///
/// Fields are left-justified and padded, so most of a field is often
/// trailing spaces: they are compared eight at a time, as one word. In a
/// little-endian word the last byte is the most significant, so the leading
/// zero bytes of `word ^ spaces` are the trailing spaces.
fn trimmed_end(bytes: &[u8]) -> usize {
    const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
    let word = |at: usize| -> u64 {
        let chunk: [u8; 8] = bytes[at..at + 8].try_into().unwrap_or([b' '; 8]);
        u64::from_le_bytes(chunk) ^ SPACES
    };
    let non_spaces = |at: usize, diff: u64| at + 8 - (diff.leading_zeros() / 8) as usize;
    if bytes.len() < 8 {
        return bytes.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
    }
    let mut end = bytes.len();
    while end >= 8 {
        let diff = word(end - 8);
        if diff != 0 {
            return non_spaces(end - 8, diff);
        }
        end -= 8;
    }
    // Fewer than eight bytes are left: the first word overlaps spaces
    // already seen, which compare equal.
    match word(0) {
        0 => 0,
        diff => non_spaces(0, diff),
    }
}

/// Clean `text` (printable ASCII) without leading and trailing spaces.
fn trim_text(text: &str) -> &str {
    text.get(trimmed_range(text.as_bytes())).unwrap_or_default()
}

/// Shows field bytes in an error text (ASCII already checked).
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end_matches(' ').to_string()
}

impl Reader<'_> {
    /// Cold, like every error path: a well-formed record never gets here.
    #[cold]
    fn push(&mut self, code: ErrorCode, field: impl Into<String>, location: Position, text: String) {
        if !self.suppress {
            self.parsed.errors.push(FieldError::new(code, field, text).at(location));
        }
    }

    /// Records where `path` was read; the first record of a field wins.
    fn locate(&mut self, path: FieldPath, location: Position) {
        self.parsed.locations.record(path, location);
    }

    fn run(&mut self, body: &[u8]) {
        self.locate(FieldPath::new("message"), at(1, 1));
        if body.is_empty() {
            self.push(
                ErrorCode::InvalidFormat,
                "message",
                at(1, 1),
                "the message is empty: it holds no records".into(),
            );
            return;
        }
        let total = self.records(body);
        self.finish_joined();
        self.check_order(total);
    }

    /// Reads the records one by one as they are split at LF or CRLF,
    /// stopping past the most records a message may hold; returns how many
    /// were read.
    fn records(&mut self, body: &[u8]) -> usize {
        // An error about the message as a whole comes before the records'.
        let first_error = self.parsed.errors.len();
        let mut rest = body;
        let mut total = 0;
        while !rest.is_empty() {
            let number = total + 1;
            if number > self.layout.max_records() {
                let error = FieldError::new(
                    ErrorCode::InvalidFormat,
                    "message",
                    format!(
                        "the message has more than {} records, the most a {} message holds",
                        self.layout.max_records(),
                        self.layout.name()
                    ),
                )
                .at(at(number, 1));
                self.parsed.errors.insert(first_error, error);
                break;
            }
            let (line, next) = self.next_line(number, rest);
            self.record(&line);
            total = number;
            rest = next;
        }
        total
    }

    /// The record at the start of `rest`, and what follows it.
    fn next_line<'b>(&self, number: usize, rest: &'b [u8]) -> (Line<'b>, &'b [u8]) {
        let length = self.layout.record_length();
        let crlf = self.layout.allows(Terminator::Crlf);
        // Fast path: a clean record of the right length has no LF inside,
        // so its terminator is right after it.
        if let Some(data) = rest.get(..length)
            && let Some(text) = clean_text(data)
        {
            let terminator = match &rest[length..] {
                [b'\n', ..] => Some((Terminator::Lf, 1)),
                [b'\r', b'\n', ..] if crlf => Some((Terminator::Crlf, 2)),
                [] => None,
                _ => Some((Terminator::Lf, 0)),
            };
            match terminator {
                None => return (Line::new(number, data, None, Some(text)), &[]),
                Some((t, n)) if n > 0 => return (Line::new(number, data, Some(t), Some(text)), &rest[length + n..]),
                Some(_) => {}
            }
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(p) => {
                let mut data = &rest[..p];
                let mut terminator = Terminator::Lf;
                if crlf && let Some(stripped) = data.strip_suffix(b"\r") {
                    data = stripped;
                    terminator = Terminator::Crlf;
                }
                (
                    Line::new(number, data, Some(terminator), clean_text(data)),
                    &rest[p + 1..],
                )
            }
            None => (Line::new(number, rest, None, clean_text(rest)), &[]),
        }
    }

    fn record(&mut self, line: &Line<'_>) {
        let layout = self.layout;
        let n = line.number;
        let data = line.data;
        let length = layout.record_length();
        let tc = layout.type_columns;
        let type_bytes = data.get(tc.start - 1..tc.start - 1 + tc.length);
        // Record types are nearly always one byte: compared as bytes, not
        // with a `memcmp` call each.
        let index = type_bytes.and_then(|t| match t {
            [b] => layout.records.iter().position(|r| r.type_code[..] == [*b]),
            _ => layout.records.iter().position(|r| r.type_code == t),
        });
        let record = index.map(|i| &layout.records[i]);
        let occurrence = index.map_or(0, |i| self.counts[i]);
        let record_field = record.map_or(FieldPath::new("message"), |r| FieldPath::at(r.error_field, occurrence));

        if line.terminator == Some(Terminator::Lf) && !layout.allows(Terminator::Lf) {
            self.push(
                ErrorCode::InvalidFormat,
                record_field,
                at(n, data.len() + 1),
                format!(
                    "record {n} ends with a bare LF; {} records end with CRLF",
                    layout.name()
                ),
            );
        }
        if data.len() != length {
            let column = data.len().min(length) + 1;
            self.push(
                ErrorCode::InvalidFormat,
                record_field,
                at(n, column),
                format!(
                    "record {n} is {} bytes; a {} record is exactly {length} bytes before its terminator",
                    data.len(),
                    layout.name()
                ),
            );
        }
        if line.text.is_none() {
            self.bad_bytes(n, &data[..data.len().min(length)], record, occurrence, record_field);
        }

        let (Some(i), Some(record)) = (index, record) else {
            if let Some(t) = type_bytes
                && !t.iter().copied().any(is_bad_byte)
            {
                self.push(
                    ErrorCode::InvalidFormat,
                    "message",
                    at(n, tc.start),
                    format!("record {n} has unknown record type '{}'", shown(t)),
                );
            }
            return;
        };
        self.counts[i] += 1;
        self.seen.push((n, i));
        if let Some(c) = record.container {
            c.touch(&mut self.parsed.message, occurrence);
            if c.indexed() {
                self.locate(FieldPath::new(c.template()), at(n, 1));
            }
            self.locate(c.path(occurrence), at(n, 1));
        }
        // The record's fields are located through the layout's columns.
        self.parsed.locations.record_fields(i, occurrence, n, data.len());

        self.suppress = data.len() != length;
        let mut date_times = std::mem::take(&mut self.date_times);
        // A clean record is ASCII: it becomes text once, and its fields are
        // slices of that text.
        let line_text = line.text;
        match line_text {
            Some(text) if data.len() == length => self.steps(n, occurrence, record, text, &mut date_times),
            _ => self.fields(n, occurrence, record, data, line_text, &mut date_times),
        }
        for dt in date_times.drain(..) {
            self.finish_date_time(occurrence, dt);
        }
        self.date_times = date_times;
        self.suppress = false;
    }

    /// Reads a clean record of the full length through its steps
    /// ([`Step`](super::layout::Step)): text and digits here, in a few instructions each, and
    /// every other kind, or a value with a problem, through [`Reader::field`].
    fn steps(&mut self, n: usize, occurrence: usize, record: &CompiledRecord, text: &str, date_times: &mut DateTimes) {
        for step in &record.steps {
            let range = step.start as usize..step.end as usize;
            let Some(value) = text.get(range.clone()) else {
                continue;
            };
            if let Op::Text { target, max, digits } = step.op {
                let trimmed = trim_text(value);
                if trimmed.is_empty() {
                    continue;
                }
                if trimmed.len() <= max as usize && (!digits || trimmed.bytes().all(|b| b.is_ascii_digit())) {
                    store_str(&mut self.parsed.message, target, occurrence, trimmed);
                    continue;
                }
            }
            let f = &record.fields[step.field as usize];
            self.field(
                n,
                occurrence,
                record,
                f,
                &text.as_bytes()[range],
                Some(value),
                date_times,
            );
        }
    }

    /// Reads the fields of any record, field by field: a short or long
    /// record, or one with bytes a record may not hold.
    fn fields(
        &mut self,
        n: usize,
        occurrence: usize,
        record: &CompiledRecord,
        data: &[u8],
        line_text: Option<&str>,
        date_times: &mut DateTimes,
    ) {
        for f in &record.fields {
            let range = f.start - 1..f.start - 1 + f.length;
            let Some(bytes) = data.get(range.clone()) else {
                continue;
            };
            let text = match line_text {
                Some(t) => t.get(range),
                None => clean_text(bytes),
            };
            self.field(n, occurrence, record, f, bytes, text, date_times);
        }
    }

    /// Reports the first non-ASCII or control byte of each field (or of the
    /// columns outside fields) at its exact column. Never suppressed.
    #[cold]
    fn bad_bytes(
        &mut self,
        n: usize,
        data: &[u8],
        record: Option<&CompiledRecord>,
        occurrence: usize,
        record_field: FieldPath,
    ) {
        // One report per field; `None` = outside every field.
        let mut reported: Vec<Option<usize>> = Vec::new();
        for (k, &b) in data.iter().enumerate() {
            if !is_bad_byte(b) {
                continue;
            }
            let column = k + 1;
            let owner = record.and_then(|r| {
                r.fields
                    .iter()
                    .position(|f| f.start <= column && column < f.start + f.length)
            });
            if reported.contains(&owner) {
                continue;
            }
            reported.push(owner);
            let field = owner
                .and_then(|o| record.and_then(|r| r.fields[o].target))
                .map_or(record_field, |t| t.field_path(occurrence));
            let what = if b > 0x7f {
                format!("byte 0x{b:02X} is not ASCII; fixed-width records are ASCII")
            } else {
                format!("control character 0x{b:02X} is not allowed inside a record")
            };
            let saved = std::mem::replace(&mut self.suppress, false);
            self.push(ErrorCode::InvalidFormat, field, at(n, column), what);
            self.suppress = saved;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field(
        &mut self,
        n: usize,
        occurrence: usize,
        record: &CompiledRecord,
        f: &CompiledField,
        bytes: &[u8],
        text: Option<&str>,
        date_times: &mut DateTimes,
    ) {
        let location = at(n, f.start);
        // The field's path is needed only for an error.
        let path = || {
            f.target.map_or_else(
                || FieldPath::at(record.error_field, occurrence),
                |t| t.field_path(occurrence),
            )
        };
        let Some(text) = text else {
            if let (Some(t), Read::Date(_) | Read::Time { .. }) = (f.target, &f.read) {
                let dt = parts_for(date_times, t);
                if matches!(f.read, Read::Date(_)) {
                    dt.date = Part::Bad;
                } else {
                    dt.time = Part::Bad;
                }
            }
            return;
        };
        // Dates, times and code lists read their bytes as they are: only
        // the other kinds are trimmed.
        let trimmed = match f.read {
            Read::Date(_) | Read::Time { .. } | Read::DateTime(_) | Read::Codes { .. } | Read::Filler => text,
            _ => trim_text(text),
        };
        let Some(target) = f.target else {
            if let Read::LineNumber = f.read {
                self.line_number(occurrence, trimmed, path(), location);
            }
            return;
        };
        match &f.read {
            Read::Filler | Read::LineNumber => {}
            Read::Text {
                join: Some(sep),
                max_length,
            } => {
                self.join(target, trimmed, sep, *max_length, location);
            }
            Read::Text { join: None, max_length } => {
                if trimmed.is_empty() {
                    return;
                }
                // Clean text is ASCII: its length in bytes is in characters.
                if let Some(max) = max_length
                    && trimmed.len() > *max
                {
                    self.push(
                        ErrorCode::TooLong,
                        path(),
                        location,
                        format!("{} characters; at most {max}", trimmed.len()),
                    );
                }
                store_str(&mut self.parsed.message, target, occurrence, trimmed);
            }
            Read::Digits { max_length } => {
                if trimmed.is_empty() {
                    return;
                }
                if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
                    self.push(
                        ErrorCode::InvalidFormat,
                        path(),
                        location,
                        format!("expected digits, found '{trimmed}'"),
                    );
                    return;
                }
                if let Some(max) = max_length
                    && trimmed.len() > *max
                {
                    self.push(
                        ErrorCode::TooLong,
                        path(),
                        location,
                        format!("{} digits; at most {max}", trimmed.len()),
                    );
                }
                store_str(&mut self.parsed.message, target, occurrence, trimmed);
            }
            Read::Number { zero_padded } => {
                if trimmed.is_empty() {
                    return;
                }
                let digits = if *zero_padded { text } else { trimmed };
                match digits.parse::<u32>() {
                    Ok(v) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                        store(&mut self.parsed.message, target, occurrence, Value::Number(v));
                    }
                    _ => {
                        let want = if *zero_padded {
                            format!("{} digits, zero-padded", f.length)
                        } else {
                            "digits".to_string()
                        };
                        self.push(
                            ErrorCode::InvalidFormat,
                            path(),
                            location,
                            format!("expected {want}, found '{}'", shown(bytes)),
                        );
                    }
                }
            }
            Read::Date(pattern) => {
                let part = match pattern.read(bytes) {
                    Ok(None) => Part::Blank,
                    Ok(Some(p)) => p.date.map_or(Part::Blank, Part::Value),
                    Err(e) => {
                        self.pattern_error(e, path(), location, pattern.text(), bytes);
                        Part::Bad
                    }
                };
                if target.kind() == super::target::Kind::DateTime {
                    parts_for(date_times, target).date = part;
                } else if let Part::Value(d) = part {
                    store(&mut self.parsed.message, target, occurrence, Value::Date(d));
                }
            }
            Read::Time { pattern, default } => {
                let part = match pattern.read(bytes) {
                    Ok(None) => Part::Blank,
                    Ok(Some(p)) => p.time.map_or(Part::Blank, Part::Value),
                    Err(e) => {
                        self.pattern_error(e, path(), location, pattern.text(), bytes);
                        Part::Bad
                    }
                };
                let dt = parts_for(date_times, target);
                dt.time = part;
                dt.default = *default;
                dt.time_location = location;
            }
            Read::DateTime(pattern) => match pattern.read(bytes) {
                Ok(Some(p)) => {
                    if let (Some(d), Some(t)) = (p.date, p.time) {
                        store(
                            &mut self.parsed.message,
                            target,
                            occurrence,
                            Value::DateTime(d.and_time(t)),
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => self.pattern_error(e, path(), location, pattern.text(), bytes),
            },
            Read::Codes { width } => {
                let mut codes = Vec::new();
                for (k, chunk) in bytes.chunks(*width).enumerate() {
                    // The field is clean ASCII text: its chunks are slices of it.
                    let start = k * width;
                    let code = trim_text(text.get(start..start + chunk.len()).unwrap_or_default());
                    if code.is_empty() {
                        continue;
                    }
                    self.locate(target.element_path(codes.len()), at(n, f.start + k * width));
                    codes.push(code.into());
                }
                store(&mut self.parsed.message, target, occurrence, Value::List(codes));
            }
            Read::Flag { yes, no } => {
                if trimmed.is_empty() {
                    return;
                }
                if trimmed == yes {
                    store(&mut self.parsed.message, target, occurrence, Value::Bool(true));
                } else if trimmed == no {
                    store(&mut self.parsed.message, target, occurrence, Value::Bool(false));
                } else {
                    self.push(
                        ErrorCode::InvalidCode,
                        path(),
                        location,
                        format!("expected {yes} or {no}, found '{trimmed}'"),
                    );
                }
            }
            Read::Action(codes) => {
                if trimmed.is_empty() {
                    return;
                }
                match codes.get(trimmed) {
                    Some(a) => store(&mut self.parsed.message, target, occurrence, Value::Action(*a)),
                    None => {
                        let known: Vec<&str> = codes.keys().map(String::as_str).collect();
                        self.push(
                            ErrorCode::InvalidCode,
                            path(),
                            location,
                            format!("unknown action code '{trimmed}'; expected one of {}", known.join(", ")),
                        );
                    }
                }
            }
        }
    }

    #[cold]
    fn pattern_error(&mut self, e: PatternError, path: FieldPath, location: Position, pattern: &str, bytes: &[u8]) {
        let found = shown(bytes);
        let (code, text) = match e {
            PatternError::Shape => (ErrorCode::InvalidFormat, format!("expected {pattern}, found '{found}'")),
            PatternError::NoSuchDate => (
                ErrorCode::InvalidDate,
                format!("'{found}' is not a calendar date ({pattern})"),
            ),
            PatternError::NoSuchTime => (
                ErrorCode::InvalidDate,
                format!("'{found}' is not a time of day ({pattern})"),
            ),
        };
        self.push(code, path, location, text);
    }

    /// A repeated record's line number must count 1, 2, 3, … in order.
    #[inline(never)]
    fn line_number(&mut self, occurrence: usize, trimmed: &str, path: FieldPath, location: Position) {
        let expected = occurrence + 1;
        let text = if trimmed.is_empty() {
            format!("the line number is blank; expected {expected:02}")
        } else if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            format!("expected a line number, found '{trimmed}'")
        } else if trimmed.parse::<usize>().ok() != Some(expected) {
            format!("line {trimmed} is out of order; expected {expected:02}")
        } else {
            return;
        };
        self.push(ErrorCode::InvalidFormat, path, location, text);
    }

    /// Appends one trimmed line to a joined field; blank lines add nothing.
    #[inline(never)]
    fn join(&mut self, target: Target, piece: &str, sep: &str, max_length: Option<usize>, location: Position) {
        if piece.is_empty() {
            return;
        }
        let i = match self.joined.iter().position(|j| j.target == target) {
            Some(i) => i,
            None => {
                self.joined.push(Joined {
                    target,
                    text: String::new(),
                    max_length,
                    too_long_at: None,
                });
                self.joined.len() - 1
            }
        };
        let j = &mut self.joined[i];
        if !j.text.is_empty() {
            j.text.push_str(sep);
        }
        j.text.push_str(piece);
        // Characters are at most bytes: count them only for a long text.
        if let Some(max) = j.max_length
            && j.too_long_at.is_none()
            && j.text.len() > max
            && j.text.chars().count() > max
        {
            j.too_long_at = Some(location);
        }
    }

    /// Stores each joined text, and reports those over their maximum.
    #[inline(never)]
    fn finish_joined(&mut self) {
        for j in std::mem::take(&mut self.joined) {
            if let (Some(location), Some(max)) = (j.too_long_at, j.max_length) {
                let text = format!(
                    "the joined lines are {} characters; at most {max}",
                    j.text.chars().count()
                );
                self.push(ErrorCode::TooLong, FieldPath::new(j.target.template()), location, text);
            }
            store(&mut self.parsed.message, j.target, 0, Value::Text(j.text.into()));
        }
    }

    #[inline(never)]
    fn finish_date_time(&mut self, occurrence: usize, dt: DateTimeParts) {
        let time = match (dt.date, dt.time) {
            (Part::Bad, _) | (_, Part::Bad) | (Part::Blank, _) => return,
            (Part::Value(_), Part::Value(t)) => t,
            (Part::Value(_), Part::Blank) => match dt.default {
                Some(t) => t,
                None => {
                    self.push(
                        ErrorCode::Missing,
                        dt.target.field_path(occurrence),
                        dt.time_location,
                        "the time is blank; the date needs its time".into(),
                    );
                    return;
                }
            },
        };
        if let Part::Value(d) = dt.date {
            store(
                &mut self.parsed.message,
                dt.target,
                occurrence,
                Value::DateTime(d.and_time(time)),
            );
        }
    }

    /// Checks the records against the layout's record order for the action.
    #[inline(never)]
    fn check_order(&mut self, total: usize) {
        let Some(action) = self.parsed.message.action else {
            return;
        };
        let layout = self.layout;
        let Some(order) = layout.orders.iter().find(|o| o.actions.contains(&action)) else {
            let location = self
                .parsed
                .locations
                .position(FieldPath::new("action"))
                .unwrap_or(at(1, 1));
            self.push(
                ErrorCode::InvalidFormat,
                "action",
                location,
                format!("layout {} does not carry {} messages", layout.name(), action.name()),
            );
            return;
        };
        let problems = order_problems(order, &self.seen, total);
        if problems.is_empty() {
            return;
        }
        let expected = expected_records(layout, order, action);
        for problem in problems {
            let (i, n, text) = problem.describe(layout, &expected);
            let field = FieldPath::new(layout.records[i].error_field);
            self.push(ErrorCode::InvalidFormat, field, at(n, 1), text);
        }
    }
}

/// What is wrong with the records of a message against its record order.
enum OrderProblem {
    /// Record `n`, of type `i`, fits no group left.
    Unexpected { n: usize, i: usize },
    /// Record `n` is one more of type `i` than its group's `max`.
    TooMany { n: usize, i: usize, max: usize },
    /// Record `n`, of type `i`, comes before `min` records of type `gi`.
    Before {
        n: usize,
        i: usize,
        gi: usize,
        min: usize,
        max: usize,
    },
    /// The message ends (record `n` would be next) without group `gi`.
    Ends {
        n: usize,
        gi: usize,
        min: usize,
        max: usize,
    },
}

/// Walks the records seen, `(record number, type index)`, through the
/// order's groups; `total` records were read.
fn order_problems(order: &CompiledOrder, seen: &[(usize, usize)], total: usize) -> Vec<OrderProblem> {
    let mut problems = Vec::new();
    let (mut g, mut count) = (0usize, 0usize);
    for &(n, i) in seen {
        loop {
            let Some(&(gi, min, max)) = order.groups.get(g) else {
                problems.push(OrderProblem::Unexpected { n, i });
                break;
            };
            if gi == i {
                if count < max {
                    count += 1;
                } else {
                    problems.push(OrderProblem::TooMany { n, i, max });
                }
                break;
            }
            if count < min {
                problems.push(OrderProblem::Before { n, i, gi, min, max });
            }
            g += 1;
            count = 0;
        }
    }
    let n = total + 1;
    while let Some(&(gi, min, max)) = order.groups.get(g) {
        if count < min {
            problems.push(OrderProblem::Ends { n, gi, min, max });
        }
        g += 1;
        count = 0;
    }
    problems
}

fn type_name(layout: &Layout, i: usize) -> String {
    String::from_utf8_lossy(&layout.records[i].type_code).to_string()
}

/// "1 R record", "1–9 P records".
fn count_text(layout: &Layout, min: usize, max: usize, i: usize) -> String {
    let noun = if max == 1 { "record" } else { "records" };
    if min == max {
        format!("{min} {} {noun}", type_name(layout, i))
    } else {
        format!("{min}–{max} {} {noun}", type_name(layout, i))
    }
}

/// The action's record order, as errors show it: `(ISSUE: O, R, 1–9 P)`.
fn expected_records(layout: &Layout, order: &CompiledOrder, action: Action) -> String {
    let groups: Vec<String> = order
        .groups
        .iter()
        .map(|&(i, min, max)| match (min, max) {
            (1, 1) => type_name(layout, i),
            (a, b) if a == b => format!("{a} {}", type_name(layout, i)),
            (a, b) => format!("{a}–{b} {}", type_name(layout, i)),
        })
        .collect();
    format!("({}: {})", action.name(), groups.join(", "))
}

impl OrderProblem {
    /// The record type whose path the error names, the record number, and the text.
    fn describe(&self, layout: &Layout, expected: &str) -> (usize, usize, String) {
        match *self {
            OrderProblem::Unexpected { n, i } => (
                i,
                n,
                format!("record {n}: unexpected {} record {expected}", type_name(layout, i)),
            ),
            OrderProblem::TooMany { n, i, max } => (
                i,
                n,
                format!(
                    "record {n}: more than {max} {} records {expected}",
                    type_name(layout, i)
                ),
            ),
            OrderProblem::Before { n, i, gi, min, max } => (
                gi,
                n,
                format!(
                    "record {n}: expected {} before this {} record {expected}",
                    count_text(layout, min, max, gi),
                    type_name(layout, i)
                ),
            ),
            OrderProblem::Ends { n, gi, min, max } => (
                gi,
                n,
                format!(
                    "the message ends without its {} {expected}",
                    count_text(layout, min, max, gi)
                ),
            ),
        }
    }
}

/// The date-time parts of `target` in this record, created on first use.
fn parts_for(list: &mut DateTimes, target: Target) -> &mut DateTimeParts {
    let i = match list.iter().position(|d| d.target == target) {
        Some(i) => i,
        None => {
            list.push(DateTimeParts {
                target,
                date: Part::Blank,
                time: Part::Blank,
                default: None,
                time_location: at(1, 1),
            });
            list.len() - 1
        }
    };
    &mut list[i]
}

#[cfg(test)]
mod tests;
