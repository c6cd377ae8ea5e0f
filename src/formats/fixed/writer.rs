//! Writing a canonical order message in a [`Layout`]: the reverse of the
//! reader, for property tests, fixtures and tools.
//!
//! The writer refuses what it cannot write faithfully, rather than cut or
//! drop it: a value wider than its columns (`TOO_LONG`), a character that is
//! not printable ASCII (`INVALID_FORMAT`), a canonical code the code-map set
//! has no court code for (`INVALID_CODE`), a date or time the pattern cannot
//! hold, more list elements or text lines than the layout's records hold, and
//! a value the layout has no column for in that action's records. It does
//! not validate: a message missing a required field is written as it is, and
//! the reader or validator reports it.

use chrono::NaiveDateTime;

use super::layout::{CompiledField, CompiledOrder, CompiledRecord, Layout, Read, Terminator};
use super::target::{Container, Target, Value, expand, fetch};
use crate::mapping::code_map::CodeMap;
use crate::model::{Action, ErrorCode, FieldError, OrderMessage};

impl Layout {
    /// Writes `msg` in this layout, mapping its canonical codes to court
    /// codes through the attached code-map set ([`Layout::with_code_map`]),
    /// if any. Records are space-padded to the record length and end with LF
    /// (CRLF when the layout accepts only CRLF).
    ///
    /// What the reader gives back is `msg` again, except `sent_at` (the AMQP
    /// `timestamp` carries it) and values the reader normalises: text is
    /// trimmed, and blank text reads as none.
    pub fn write_order(&self, msg: &OrderMessage) -> Result<Vec<u8>, Vec<FieldError>> {
        self.write_order_with(msg, self.code_map.as_deref())
    }

    /// Writes `msg` in this layout, mapping canonical codes through
    /// `code_map`, or writing them as they are when `None`.
    pub fn write_order_with(&self, msg: &OrderMessage, code_map: Option<&CodeMap>) -> Result<Vec<u8>, Vec<FieldError>> {
        let mut msg = msg.clone();
        let mut w = Writer {
            layout: self,
            errors: code_map.map_or_else(Vec::new, |m| m.to_court_codes(&mut msg)),
            out: Vec::new(),
        };
        let Some(action) = msg.action else {
            w.errors.push(FieldError::new(
                ErrorCode::Missing,
                "action",
                "the action decides which records are written",
            ));
            return Err(w.errors);
        };
        let Some(order) = self.orders.iter().find(|o| o.actions.contains(&action)) else {
            w.errors.push(FieldError::new(
                ErrorCode::InvalidFormat,
                "action",
                format!("layout {} does not carry {} messages", self.name(), action.name()),
            ));
            return Err(w.errors);
        };
        w.uncovered(&msg, action, order);
        w.records(&msg, order);
        if w.errors.is_empty() { Ok(w.out) } else { Err(w.errors) }
    }
}

struct Writer<'l> {
    layout: &'l Layout,
    errors: Vec<FieldError>,
    out: Vec<u8>,
}

/// Printable ASCII: what a fixed-width field may hold.
fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

impl Writer<'_> {
    fn error(&mut self, code: ErrorCode, field: impl Into<String>, text: impl Into<String>) {
        self.errors.push(FieldError::new(code, field, text));
    }

    /// Every value the action's records have no column for is an error: it
    /// would be lost.
    fn uncovered(&mut self, msg: &OrderMessage, action: Action, order: &CompiledOrder) {
        let layout = self.layout;
        let covered: Vec<Target> = order
            .groups
            .iter()
            .flat_map(|&(i, _, _)| layout.records[i].fields.iter().filter_map(|f| f.target))
            .collect();
        for t in Target::all() {
            if covered.contains(&t) {
                continue;
            }
            let count = if t.indexed() { msg.protected_persons.len() } else { 1 };
            for index in 0..count {
                if fetch(msg, t, index).is_some() {
                    self.error(
                        ErrorCode::InvalidFormat,
                        t.path(index),
                        format!(
                            "layout {} has no column for this field in a {} message",
                            layout.name(),
                            action.name()
                        ),
                    );
                }
            }
        }
        if msg.image.is_some() {
            self.error(
                ErrorCode::InvalidFormat,
                "image",
                "a fixed-width message carries no order image",
            );
        }
    }

    /// Writes the records of the action's record order.
    fn records(&mut self, msg: &OrderMessage, order: &CompiledOrder) {
        let layout = self.layout;
        for &(i, min, max) in &order.groups {
            let record = &layout.records[i];
            let lines = self.lines(msg, record);
            let most_lines = lines.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
            let count = match record.container {
                Some(Container::ProtectedPersons) => msg.protected_persons.len(),
                Some(Container::RestrainedPerson) => usize::from(msg.restrained_person.is_some()),
                Some(Container::Service) => usize::from(msg.order.service.is_some()),
                _ if max > 1 => most_lines,
                _ => {
                    let any = record
                        .fields
                        .iter()
                        .filter_map(|f| f.target)
                        .any(|t| fetch(msg, t, 0).is_some());
                    usize::from(min >= 1 || any)
                }
            };
            let count = count.max(most_lines);
            if count > max {
                let kind = String::from_utf8_lossy(&record.type_code).to_string();
                let (code, field) = match lines.iter().find(|(_, l)| l.len() > max) {
                    Some((t, _)) => (ErrorCode::TooLong, t.template().to_string()),
                    None => (ErrorCode::InvalidFormat, record.error_field.replace("[]", "")),
                };
                self.error(
                    code,
                    field,
                    format!(
                        "the message needs {count} {kind} records; layout {} holds at most {max}",
                        layout.name()
                    ),
                );
                continue;
            }
            for occurrence in 0..count {
                self.record(msg, record, occurrence, &lines);
            }
        }
    }

    /// The lines of each joined text field of `record`: the text split at
    /// separators so that the reader, trimming and joining them, gives the
    /// text back.
    fn lines(&mut self, msg: &OrderMessage, record: &CompiledRecord) -> Vec<(Target, Vec<String>)> {
        let mut all = Vec::new();
        for f in &record.fields {
            let (Some(t), Read::Text { join: Some(sep), .. }) = (f.target, &f.read) else {
                continue;
            };
            let Some(Value::Text(text)) = fetch(msg, t, 0) else {
                all.push((t, Vec::new()));
                continue;
            };
            if !printable(&text) {
                self.not_ascii(t.template());
                all.push((t, Vec::new()));
                continue;
            }
            match wrap(&text, sep, f.length) {
                Some(lines) => all.push((t, lines)),
                None => {
                    self.error(
                        ErrorCode::TooLong,
                        t.template(),
                        format!(
                            "the text cannot be split into lines of {} characters at '{sep}' \
                             (a word is longer than a line)",
                            f.length
                        ),
                    );
                    all.push((t, Vec::new()));
                }
            }
        }
        all
    }

    fn not_ascii(&mut self, field: &str) {
        self.error(
            ErrorCode::InvalidFormat,
            field,
            "only printable ASCII can be written in a fixed-width record",
        );
    }

    fn record(
        &mut self,
        msg: &OrderMessage,
        record: &CompiledRecord,
        occurrence: usize,
        lines: &[(Target, Vec<String>)],
    ) {
        let layout = self.layout;
        let mut data = vec![b' '; layout.record_length()];
        let tc = layout.type_columns;
        data[tc.start - 1..tc.start - 1 + tc.length].copy_from_slice(&record.type_code);
        for f in &record.fields {
            if let Some(bytes) = self.field(msg, record, f, occurrence, lines) {
                data[f.start - 1..f.start - 1 + f.length].copy_from_slice(&bytes);
            }
        }
        self.out.extend_from_slice(&data);
        if layout.allows(Terminator::Lf) {
            self.out.push(b'\n');
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// The bytes of one field (exactly `f.length`), or `None` after an error.
    fn field(
        &mut self,
        msg: &OrderMessage,
        record: &CompiledRecord,
        f: &CompiledField,
        occurrence: usize,
        lines: &[(Target, Vec<String>)],
    ) -> Option<Vec<u8>> {
        let blank = || vec![b' '; f.length];
        let Some(target) = f.target else {
            return match f.read {
                Read::LineNumber => {
                    let n = format!("{:0w$}", occurrence + 1, w = f.length);
                    if n.len() > f.length {
                        let field = expand(record.error_field, occurrence);
                        self.error(
                            ErrorCode::TooLong,
                            field,
                            format!("line number {n} does not fit {} digits", f.length),
                        );
                        return None;
                    }
                    Some(n.into_bytes())
                }
                _ => Some(blank()),
            };
        };
        let path = target.path(occurrence);
        let left = |this: &mut Self, s: &str, path: &str| -> Option<Vec<u8>> {
            if !printable(s) {
                this.not_ascii(path);
                return None;
            }
            if s.len() > f.length {
                this.error(
                    ErrorCode::TooLong,
                    path,
                    format!("{} characters; the field holds {}", s.len(), f.length),
                );
                return None;
            }
            let mut b = s.as_bytes().to_vec();
            b.resize(f.length, b' ');
            Some(b)
        };
        if let Read::Text { join: Some(_), .. } = f.read {
            let line = lines
                .iter()
                .find(|(t, _)| *t == target)
                .and_then(|(_, l)| l.get(occurrence));
            return match line {
                Some(l) => left(self, l, target.template()),
                None => Some(blank()),
            };
        }
        let Some(value) = fetch(msg, target, occurrence) else {
            return Some(blank());
        };
        let date_time = |dt: &NaiveDateTime| (dt.date(), dt.time());
        match (&f.read, value) {
            (Read::Text { .. } | Read::Digits { .. }, Value::Text(s)) => left(self, &s, &path),
            (Read::Number { .. }, Value::Number(n)) => {
                let s = format!("{n:0w$}", w = f.length);
                if s.len() > f.length {
                    self.error(
                        ErrorCode::TooLong,
                        path,
                        format!("{n} has more than {} digits", f.length),
                    );
                    return None;
                }
                Some(s.into_bytes())
            }
            (Read::Date(p), Value::Date(d)) => self.pattern(p.write(Some(d), None), &path),
            (Read::Date(p), Value::DateTime(dt)) => self.pattern(p.write(Some(date_time(&dt).0), None), &path),
            (Read::Time { pattern, .. }, Value::DateTime(dt)) => {
                self.pattern(pattern.write(None, Some(date_time(&dt).1)), &path)
            }
            (Read::DateTime(p), Value::DateTime(dt)) => {
                let (d, t) = date_time(&dt);
                self.pattern(p.write(Some(d), Some(t)), &path)
            }
            (Read::Codes { width }, Value::List(codes)) => {
                let slots = f.length / width;
                if codes.len() > slots {
                    self.error(
                        ErrorCode::InvalidFormat,
                        path,
                        format!("{} codes; the field holds {slots}", codes.len()),
                    );
                    return None;
                }
                let mut b = Vec::with_capacity(f.length);
                for (k, code) in codes.iter().enumerate() {
                    let element = format!("{path}[{k}]");
                    if code.trim().is_empty() {
                        self.error(ErrorCode::InvalidFormat, element, "a blank code reads as no code");
                        return None;
                    }
                    if !printable(code) {
                        self.not_ascii(&element);
                        return None;
                    }
                    if code.len() > *width {
                        self.error(
                            ErrorCode::TooLong,
                            element,
                            format!("'{code}' is wider than the {width}-byte code slots"),
                        );
                        return None;
                    }
                    b.extend(code.bytes());
                    b.resize(b.len() + (width - code.len()), b' ');
                }
                b.resize(f.length, b' ');
                Some(b)
            }
            (Read::Flag { yes, no }, Value::Bool(v)) => left(self, if v { yes } else { no }, &path),
            (Read::Action(codes), Value::Action(a)) => {
                let code = codes.iter().find(|(_, x)| **x == a).map(|(c, _)| c.clone());
                match code {
                    Some(c) => left(self, &c, &path),
                    None => {
                        self.error(ErrorCode::InvalidCode, path, format!("no action code for {}", a.name()));
                        None
                    }
                }
            }
            // Types the layout check ties to their canonical kinds.
            _ => Some(blank()),
        }
    }

    fn pattern(&mut self, written: Result<Vec<u8>, String>, path: &str) -> Option<Vec<u8>> {
        written
            .map_err(|why| self.error(ErrorCode::InvalidDate, path, why))
            .ok()
    }
}

/// Splits `text` into pieces of at most `width` bytes at occurrences of
/// `sep`, such that trimming each piece of spaces and joining the pieces
/// with `sep` gives `text` again. Greedy: each piece is as long as it can
/// be. `None` when no such split exists (a word longer than a line).
pub(crate) fn wrap(text: &str, sep: &str, width: usize) -> Option<Vec<String>> {
    let b = text.as_bytes();
    let mut pieces = Vec::new();
    let mut i = 0;
    loop {
        let rest = &text[i..];
        if rest.len() <= width {
            if !rest.is_empty() {
                pieces.push(rest.to_string());
            }
            return Some(pieces);
        }
        // The longest piece that ends where `sep` begins and leaves neither
        // piece with a space at the cut (trimming would change it).
        let cut = (i + 1..=i + width).rev().find(|&j| {
            text[j..].starts_with(sep) && b[j - 1] != b' ' && b.get(j + sep.len()).is_some_and(|&c| c != b' ')
        })?;
        pieces.push(text[i..cut].to_string());
        i = cut + sep.len();
    }
}

#[cfg(test)]
mod tests;
