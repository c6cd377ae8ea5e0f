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

/// A field's name in an entry: a path (the readers) or any text ([`Locations::insert`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Path(FieldPath),
    Text(Box<str>),
}

impl Key {
    fn matches(&self, field: &str) -> bool {
        match self {
            Key::Path(p) => p.matches(field),
            Key::Text(t) => **t == *field,
        }
    }
}

/// A location in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    Position(Position),
    Text(Box<str>),
}

impl At {
    fn text(&self) -> String {
        match self {
            At::Position(p) => p.to_string(),
            At::Text(t) => t.to_string(),
        }
    }
}

/// Where each canonical field was found. Keys are canonical field paths as
/// used in [`FieldError::field`]; list elements use an index, e.g.
/// `protected_persons[1].sex`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations(Vec<(Key, At)>);

impl Locations {
    /// Room for `n` entries.
    pub fn with_capacity(n: usize) -> Locations {
        Locations(Vec::with_capacity(n))
    }

    /// Records where `field` was found; a field recorded before keeps its
    /// first location.
    pub fn record(&mut self, field: FieldPath, at: Position) {
        self.0.push((Key::Path(field), At::Position(at)));
    }

    /// Sets the location of any field path, replacing an earlier one.
    pub fn insert(&mut self, field: impl Into<String>, location: impl Into<String>) {
        let field: String = field.into();
        self.0.retain(|(k, _)| !k.matches(&field));
        self.0.push((
            Key::Text(field.into_boxed_str()),
            At::Text(location.into().into_boxed_str()),
        ));
    }

    /// The location of `field`, as text (`line:column`, `record:column`).
    pub fn get(&self, field: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k.matches(field)).map(|(_, at)| at.text())
    }

    /// The position of `field`, when it was recorded as one.
    pub fn position(&self, field: FieldPath) -> Option<Position> {
        self.0.iter().find_map(|(k, at)| match (k, at) {
            (Key::Path(p), At::Position(pos)) if *p == field => Some(*pos),
            _ => None,
        })
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
