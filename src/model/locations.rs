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
//! When a field is recorded more than once (a fixed-width container seen in
//! several records, a joined text over several lines), the first record
//! wins. [`Locations::insert`] is the general, slower form for any path and
//! location text (tests, tools); it replaces what was there.

use std::fmt;

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
}

impl Locations {
    /// Room for `n` recorded entries.
    pub fn with_capacity(n: usize) -> Locations {
        Locations {
            recorded: Vec::with_capacity(n),
            inserted: Vec::new(),
        }
    }

    /// Records where `field` was found; a field recorded before keeps its
    /// first location.
    pub fn record(&mut self, field: FieldPath, at: Position) {
        self.recorded.push((field, at));
    }

    /// Sets the location of any field path, replacing an earlier one.
    pub fn insert(&mut self, field: impl Into<String>, location: impl Into<String>) {
        let field: String = field.into();
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
            .map(|(_, at)| at.to_string())
    }

    /// The position of `field`, when a reader recorded it.
    pub fn position(&self, field: FieldPath) -> Option<Position> {
        self.recorded.iter().find(|(p, _)| *p == field).map(|(_, at)| *at)
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
