//! Where each canonical field was found in the input ([`Locations`]), so
//! that errors found after parsing (by the validator, a code map) can still
//! name a location.
//!
//! # Design note
//!
//! A reader records a location for every field it reads, but only a field
//! with a problem ever needs it as text. So an entry is a [`FieldPath`] (a
//! static template and an index) and a [`Position`] (two numbers), pushed
//! onto one vector: recording allocates nothing beyond the vector's growth.
//! `line:column` or `record:column` text and the field's path as text are
//! made only when an error asks for them ([`Locations::get`],
//! [`Locations::error`]).
//!
//! A fixed-width layout puts every field at a known column, so a
//! fixed-width reader does not record its fields one by one: it records each
//! record it reads (type, occurrence, number, length) once, next to the
//! layout's [`FieldColumns`], and a field's `record:column` is worked out
//! from those when an error asks for it.
//!
//! When a field is recorded more than once (a fixed-width container seen in
//! several records, a joined text over several lines), the first record
//! wins. [`Locations::insert`] is the general, slower form for any path and
//! location text (tests, tools); it replaces what was there.

use std::fmt;
use std::sync::Arc;

use super::error::{ErrorCode, FieldError};
use super::path::FieldPath;

/// A place in the input: `line:column` for XML, `record:column` for
/// fixed-width (1-based both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// Builds a position, saturating numbers that do not fit.
    pub fn new(line: usize, column: usize) -> Position {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Position {
            line: clamp(line),
            column: clamp(column),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<Position> for String {
    fn from(p: Position) -> String {
        p.to_string()
    }
}

/// The fields of a fixed-width layout by record type: each field's path
/// template (`[]` unexpanded) and the columns it spans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldColumns {
    /// `(record type, template, first column, last column)`, 1-based, in
    /// layout order.
    fields: Vec<(u16, &'static str, u32, u32)>,
}

impl FieldColumns {
    /// Adds a field of record type `record_type` at columns `start..=end`.
    pub fn push(&mut self, record_type: usize, template: &'static str, start: usize, end: usize) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let record_type = u16::try_from(record_type).unwrap_or(u16::MAX);
        self.fields.push((record_type, template, clamp(start), clamp(end)));
    }
}

/// A record a fixed-width reader read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordRead {
    record_type: u16,
    /// How many records of its type came before it.
    occurrence: u32,
    /// 1-based place in the message.
    number: u32,
    /// Bytes read, terminator excluded: a field past them was not read.
    length: u32,
}

/// Where each canonical field was found. Keys are canonical field paths as
/// used in [`FieldError::field`]; list elements use an index, e.g.
/// `protected_persons[1].sex`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// What the readers record, in order.
    recorded: Vec<(FieldPath, Position)>,
    /// What [`Locations::insert`] set: any path, any location text. Looked
    /// at first.
    inserted: Vec<(String, String)>,
    /// A fixed-width layout's field columns, and the records read with it.
    columns: Option<Arc<FieldColumns>>,
    records: Vec<RecordRead>,
}

impl Locations {
    /// Room for `n` recorded entries.
    pub fn with_capacity(n: usize) -> Locations {
        Locations {
            recorded: Vec::with_capacity(n),
            ..Locations::default()
        }
    }

    /// For a fixed-width reader: fields are located through `columns` and
    /// the records read ([`Locations::record_fields`]); room for `n`
    /// entries recorded one by one (containers, list elements).
    pub fn with_columns(columns: Arc<FieldColumns>, n: usize) -> Locations {
        Locations {
            recorded: Vec::with_capacity(n),
            columns: Some(columns),
            records: Vec::with_capacity(8),
            ..Locations::default()
        }
    }

    /// Records that the `occurrence`-th record of type `record_type` was
    /// read as record `number`, `length` bytes long: each of its fields in
    /// the columns is located there.
    pub fn record_fields(&mut self, record_type: usize, occurrence: usize, number: usize, length: usize) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.records.push(RecordRead {
            record_type: u16::try_from(record_type).unwrap_or(u16::MAX),
            occurrence: clamp(occurrence),
            number: clamp(number),
            length: clamp(length),
        });
    }

    /// The first field of the records read, in reading order, that `wanted`
    /// picks. Entries recorded one by one are looked at before these: the
    /// reader records that way only containers and list elements, whose
    /// paths no layout field has, so the order between the two never
    /// decides an answer.
    fn column_position(&self, wanted: impl Fn(FieldPath) -> bool) -> Option<Position> {
        let columns = self.columns.as_deref()?;
        self.records.iter().find_map(|r| {
            columns
                .fields
                .iter()
                .filter(|(t, _, _, end)| *t == r.record_type && *end <= r.length)
                .find(|(_, template, _, _)| {
                    let path = if template.contains("[]") {
                        FieldPath::at(template, r.occurrence as usize)
                    } else {
                        FieldPath::new(template)
                    };
                    // An inserted entry replaces what a reader saw.
                    wanted(path) && !self.inserted.iter().any(|(f, _)| path.matches(f))
                })
                .map(|&(_, _, start, _)| Position {
                    line: r.number,
                    column: start,
                })
        })
    }

    /// Records where `field` was found; a field recorded before keeps its
    /// first location.
    pub fn record(&mut self, field: FieldPath, at: Position) {
        self.recorded.push((field, at));
    }

    /// Sets the location of any field path, replacing an earlier one.
    pub fn insert(&mut self, field: impl Into<String>, location: impl Into<String>) {
        let field: String = field.into();
        // An entry located through the columns stays: the inserted one is
        // looked at first.
        self.recorded.retain(|(p, _)| !p.matches(&field));
        self.inserted.retain(|(f, _)| *f != field);
        self.inserted.push((field, location.into()));
    }

    /// The location of `field`, as text (`line:column`, `record:column`).
    pub fn get(&self, field: &str) -> Option<String> {
        if let Some((_, at)) = self.inserted.iter().find(|(f, _)| f == field) {
            return Some(at.clone());
        }
        self.recorded
            .iter()
            .find(|(p, _)| p.matches(field))
            .map(|(_, at)| *at)
            .or_else(|| self.column_position(|p| p.matches(field)))
            .map(|at| at.to_string())
    }

    /// The position of `field`, when a reader recorded it.
    pub fn position(&self, field: FieldPath) -> Option<Position> {
        self.recorded
            .iter()
            .find(|(p, _)| *p == field)
            .map(|(_, at)| *at)
            .or_else(|| self.column_position(|p| p == field))
    }

    /// Builds an error for `field`, located where the parser saw it.
    pub fn error(&self, code: ErrorCode, field: &str, text: impl Into<String>) -> FieldError {
        FieldError {
            code,
            field: field.to_string(),
            location: self.get(field),
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field located through the layout's columns is found in the first
    /// record of its type that holds it, list fields by occurrence; a field
    /// past a short record's end is not found.
    #[test]
    fn fields_are_located_through_columns() {
        let mut columns = FieldColumns::default();
        columns.push(0, "order.order_number", 2, 16);
        columns.push(1, "protected_persons[].sex", 37, 37);
        let mut l = Locations::with_columns(Arc::new(columns), 4);
        l.record_fields(0, 0, 1, 200);
        l.record_fields(1, 0, 3, 200);
        l.record_fields(1, 1, 4, 20);
        l.record_fields(1, 2, 5, 200);
        assert_eq!(l.get("order.order_number").as_deref(), Some("1:2"));
        assert_eq!(l.get("protected_persons[0].sex").as_deref(), Some("3:37"));
        assert_eq!(l.get("protected_persons[1].sex"), None);
        assert_eq!(l.get("protected_persons[2].sex").as_deref(), Some("5:37"));
        assert_eq!(
            l.position(FieldPath::at("protected_persons[].sex", 2)),
            Some(Position::new(5, 37))
        );
        l.insert("order.order_number", "9:9");
        assert_eq!(l.get("order.order_number").as_deref(), Some("9:9"));
        // As for a recorded entry, an inserted one leaves no reader position.
        assert_eq!(l.position(FieldPath::new("order.order_number")), None);
    }

    /// Recorded entries read back as text; the first record wins, insert replaces.
    #[test]
    fn record_get_insert() {
        let mut l = Locations::default();
        l.record(FieldPath::at("protected_persons[].sex", 1), Position::new(4, 37));
        l.record(FieldPath::new("protected_persons[]"), Position::new(3, 1));
        l.record(FieldPath::new("protected_persons[]"), Position::new(4, 1));
        assert_eq!(l.get("protected_persons[1].sex").as_deref(), Some("4:37"));
        assert_eq!(l.get("protected_persons").as_deref(), Some("3:1"));
        assert_eq!(l.get("protected_persons[0].sex"), None);
        l.insert("protected_persons", "9:9");
        assert_eq!(l.get("protected_persons").as_deref(), Some("9:9"));
        assert_eq!(
            l.position(FieldPath::at("protected_persons[].sex", 1)),
            Some(Position::new(4, 37))
        );
    }
}
