//! Reads ICD §6 request text back into a [`CletsRequest`], checking it
//! against the contract. Porter uses it in tests, tools and fuzzing; it is
//! also the reference for what CARPOS accepts.
//!
//! What is refused, as `INVALID_FORMAT` unless noted:
//! - more than [`MAX_REQUEST_BYTES`] (`TOO_LONG`), or a byte that is not
//!   printable ASCII (reading stops);
//! - text that does not end with `.` (reading stops);
//! - a header other than `MKE.ORI.MCN.`: a message key that is not one of
//!   the tables' keys (`INVALID_CODE`; the fields are then not read), an ORI
//!   other than 9 characters `[A-Z0-9]`, an MCN other than the ICD §5 shape
//!   (5 digits, then 15 base32 characters `[A-Z2-7]`);
//! - a field that is not `TAG/value`, a tag the tables do not know, or one
//!   the key does not carry (`–` in the ICD §6 table);
//! - a field out of the key's `[field_order]` (CARPOS `E01`);
//! - a field more often than `[repeats]` allows: only `PCO` and the
//!   protected-person group repeat (1–9 each). A group starts with `PPN`, its
//!   members follow in order, and each member occurs once per group; a group
//!   member before any `PPN` is out of order;
//! - an empty value (an empty optional field is omitted, never sent empty);
//!   a value over the field's maximum (`TOO_LONG`); a lowercase letter (text
//!   is uppercased on its way to CLETS);
//! - a value of the wrong shape: dates (`DOB`, `ISD`, `EXP`, `PPB`, `DOC`,
//!   `SVD`) are real `CCYYMMDD` dates (`EXP` may be `NONEXP`;
//!   `INVALID_DATE` for a well-shaped impossible date), times (`EXT`, `SVT`)
//!   `HHMM`, `NIC` a letter and 9 digits, `SVA` an ORI, `PNO` `[A-Z0-9-]`,
//!   `HGT`/`WGT` digits; `EXT` with `EXP/NONEXP`;
//! - a code that is not a CLETS code of its table in `[codes]`
//!   (`INVALID_CODE`);
//! - a required field (`R`) that is absent (`MISSING`), per group for group
//!   members, and a field of `[required_with]` absent while the field that
//!   requires it is present (`OLS` with `OLN`).
//!
//! Everything after the header is checked and every problem reported, up to
//! [`MAX_ERRORS`].

use chrono::NaiveDate;

use super::CletsRequest;
use crate::mapping::clets::{CletsTables, PROTECTED, PROTECTED_GROUP, Presence};
use crate::model::{ErrorCode, FieldError};

/// Largest request accepted, in bytes: a CLETS frame (ICD §0, §6: 8 KiB).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// The most errors one request reports.
pub const MAX_ERRORS: usize = 100;

/// Which field names hold which kind of value. Porter's CLETS field names
/// are fixed (`KNOWN_FIELDS`); their tags, order and maxima are data.
fn code_table(field: &str) -> Option<&'static str> {
    Some(match field {
        "sex" | "psx" => "sex",
        "race" | "ppr" => "race",
        "eye" => "eye",
        "hair" => "hair",
        "typ" => "order_type",
        "brady" => "brady",
        "pco" => "pco",
        "svm" => "service_method",
        _ => return None,
    })
}

impl CletsRequest {
    /// Reads request text, checking it against ICD §6 and `tables`. Never
    /// panics; returns every problem found (see the module doc of the
    /// reader for the rules).
    pub fn read(text: &[u8], tables: &CletsTables) -> Result<CletsRequest, Vec<FieldError>> {
        Reader::new(tables).read(text)
    }
}

/// A protected-person group seen so far.
struct Group {
    /// Which members (by position in [`PROTECTED_GROUP`]) it carries.
    members: [bool; 4],
    /// Column of its `PPN`.
    column: usize,
}

struct Reader<'a> {
    tables: &'a CletsTables,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn new(tables: &'a CletsTables) -> Self {
        Reader {
            tables,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, code: ErrorCode, field: impl Into<String>, column: Option<usize>, text: impl Into<String>) {
        if self.errors.len() < MAX_ERRORS {
            let mut e = FieldError::new(code, field, text);
            e.location = column.map(|c| format!("1:{c}"));
            self.errors.push(e);
        }
    }

    fn read(mut self, bytes: &[u8]) -> Result<CletsRequest, Vec<FieldError>> {
        if bytes.len() > MAX_REQUEST_BYTES {
            self.error(
                ErrorCode::TooLong,
                "request",
                Some(1),
                format!("{} bytes; a CLETS request is at most {MAX_REQUEST_BYTES}", bytes.len()),
            );
            return Err(self.errors);
        }
        if let Some(i) = bytes.iter().position(|b| !(0x20..=0x7E).contains(b)) {
            self.error(
                ErrorCode::InvalidFormat,
                "request",
                Some(i + 1),
                format!("byte 0x{:02X} is not printable ASCII", bytes[i]),
            );
            return Err(self.errors);
        }
        // Every byte is printable ASCII, so this is UTF-8.
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.error(ErrorCode::InvalidFormat, "request", Some(1), "not ASCII");
            return Err(self.errors);
        };
        let Some(body) = text.strip_suffix('.') else {
            self.error(
                ErrorCode::InvalidFormat,
                "request",
                Some(text.len() + 1),
                "a request ends with '.' after its last field",
            );
            return Err(self.errors);
        };
        // (1-based column, part) for every '.'-separated part.
        let mut column = 1;
        let mut parts = body.split('.').map(|p| {
            let c = column;
            column += p.len() + 1;
            (c, p)
        });

        let mut header = [""; 3];
        for (slot, name) in header.iter_mut().zip(["MKE", "ORI", "MCN"]) {
            match parts.next() {
                Some((_, p)) => *slot = p,
                None => {
                    self.error(
                        ErrorCode::Missing,
                        name,
                        Some(text.len() + 1),
                        "a request starts with the header MKE.ORI.MCN.",
                    );
                    return Err(self.errors);
                }
            }
        }
        let [mke, ori, mcn] = header;
        let mke_known = self.tables.is_message_key(mke);
        if !mke_known {
            self.error(
                ErrorCode::InvalidCode,
                "MKE",
                Some(1),
                format!("'{mke}' is not a CLETS message key"),
            );
        }
        if !is_ori(ori) {
            self.error(
                ErrorCode::InvalidFormat,
                "ORI",
                Some(mke.len() + 2),
                format!("'{ori}' is not an ORI: 9 characters, A-Z and 0-9"),
            );
        }
        if !is_mcn(mcn) {
            self.error(
                ErrorCode::InvalidFormat,
                "MCN",
                Some(mke.len() + ori.len() + 3),
                format!("'{mcn}' is not an MCN: 20 characters, 5 digits then 15 of A-Z and 2-7"),
            );
        }
        if !mke_known {
            return Err(self.errors);
        }

        let order = self.wire_order(mke);
        let group_slots: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, n)| PROTECTED_GROUP.contains(n))
            .map(|(i, _)| i)
            .collect();
        let mut fields: Vec<(&str, &str)> = Vec::new();
        let mut counts = vec![0usize; order.len()];
        let mut groups: Vec<Group> = Vec::new();
        let mut cursor: Option<usize> = None;
        let mut exp_none = false;
        let mut ext_column = None;

        for (column, part) in parts {
            let Some((tag, value)) = part.split_once('/').filter(|(t, _)| !t.is_empty()) else {
                self.error(
                    ErrorCode::InvalidFormat,
                    "request",
                    Some(column),
                    format!("'{part}' is not TAG/value"),
                );
                continue;
            };
            let Some(name) = self.tables.field_by_tag(tag) else {
                self.error(
                    ErrorCode::InvalidFormat,
                    tag,
                    Some(column),
                    format!("'{tag}' is not a CLETS tag"),
                );
                continue;
            };
            let Some(slot) = order.iter().position(|n| *n == name) else {
                self.error(
                    ErrorCode::InvalidFormat,
                    tag,
                    Some(column),
                    format!("{mke} does not carry {tag}"),
                );
                continue;
            };
            let member = PROTECTED_GROUP.iter().position(|m| *m == name);

            // Order and repeats.
            let in_group = cursor.is_some_and(|c| group_slots.contains(&c));
            let ordered = match cursor {
                None => true,
                Some(c) => slot > c || (member == Some(0) && in_group),
            };
            if !ordered {
                let c = cursor.unwrap_or(0);
                if slot == c && self.repeatable(name) {
                    // A repeated field right after itself: counted below.
                } else if slot == c {
                    let what = if member.is_some() {
                        "once per protected person"
                    } else {
                        "once"
                    };
                    self.error(
                        ErrorCode::InvalidFormat,
                        tag,
                        Some(column),
                        format!("{tag} may occur only {what}"),
                    );
                    continue;
                } else {
                    let after = self.tables.field(order[c]).tag.clone();
                    self.error(
                        ErrorCode::InvalidFormat,
                        tag,
                        Some(column),
                        format!("{tag} is out of order: it comes before {after} in a {mke} request"),
                    );
                    continue;
                }
            }
            let field_name = match member {
                Some(0) => {
                    groups.push(Group {
                        members: [true, false, false, false],
                        column,
                    });
                    let max = self.tables.max_repeats(PROTECTED);
                    if groups.len() == max + 1 {
                        self.error(
                            ErrorCode::InvalidFormat,
                            format!("{tag}[{max}]"),
                            Some(column),
                            format!("more than {max} protected persons"),
                        );
                    }
                    format!("{tag}[{}]", groups.len() - 1)
                }
                Some(m) => match groups.last_mut() {
                    Some(g) => {
                        g.members[m] = true;
                        format!("{tag}[{}]", groups.len() - 1)
                    }
                    None => {
                        self.error(
                            ErrorCode::InvalidFormat,
                            tag,
                            Some(column),
                            format!(
                                "{tag} before any {}: a protected person starts with {0}",
                                self.ppn_tag()
                            ),
                        );
                        continue;
                    }
                },
                None => {
                    counts[slot] += 1;
                    let max = self.tables.max_repeats(name);
                    if counts[slot] == max + 1 {
                        self.error(
                            ErrorCode::InvalidFormat,
                            format!("{tag}[{max}]"),
                            Some(column),
                            format!("{tag} more than {max} times"),
                        );
                    }
                    if max > 1 {
                        format!("{tag}[{}]", counts[slot] - 1)
                    } else {
                        tag.to_string()
                    }
                }
            };
            cursor = Some(slot);

            self.value(name, &field_name, column, value);
            match name {
                "exp" => exp_none = value == "NONEXP",
                "ext" => ext_column = Some(column),
                _ => {}
            }
            fields.push((tag, value));
        }

        if exp_none && let Some(c) = ext_column {
            let ext = self.tables.field("ext").tag.clone();
            self.error(
                ErrorCode::InvalidFormat,
                ext,
                Some(c),
                "a time of expiration for an order that does not expire",
            );
        }
        self.required(mke, &order, &counts, &groups);

        if self.errors.is_empty() {
            let mut request = CletsRequest::new(mke, ori, mcn);
            for (tag, value) in fields {
                request.push(tag, value);
            }
            Ok(request)
        } else {
            Err(self.errors)
        }
    }

    /// The fields `mke` carries, in wire order, the group by its members.
    fn wire_order(&self, mke: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        for f in self.tables.field_order(mke) {
            if f == PROTECTED {
                out.extend_from_slice(PROTECTED_GROUP);
            } else if let Some(known) = crate::mapping::clets::KNOWN_FIELDS.iter().find(|k| **k == f) {
                out.push(*known);
            }
        }
        out
    }

    fn repeatable(&self, name: &str) -> bool {
        !PROTECTED_GROUP.contains(&name) && self.tables.max_repeats(name) > 1
    }

    fn ppn_tag(&self) -> String {
        self.tables.field(PROTECTED_GROUP[0]).tag.clone()
    }

    /// Checks one value: not empty, within its maximum, and of its shape.
    fn value(&mut self, name: &str, field: &str, column: usize, value: &str) {
        let max = self.tables.field(name).max;
        if value.is_empty() {
            self.error(
                ErrorCode::InvalidFormat,
                field,
                Some(column),
                "empty value: an empty optional field is left out",
            );
            return;
        }
        if value.len() > max {
            self.error(
                ErrorCode::TooLong,
                field,
                Some(column),
                format!("{} characters; at most {max}", value.len()),
            );
            return;
        }
        if value.bytes().any(|b| b.is_ascii_lowercase()) {
            self.error(
                ErrorCode::InvalidFormat,
                field,
                Some(column),
                "lowercase letters: CLETS text is uppercase",
            );
            return;
        }
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let problem: Option<(ErrorCode, String)> = match name {
            "dob" | "isd" | "ppb" | "doc" | "svd" => date_problem(value),
            "exp" if value == "NONEXP" => None,
            "exp" => date_problem(value),
            "ext" | "svt" => time_problem(value),
            "nic" => (!is_nic(value)).then(|| {
                (
                    ErrorCode::InvalidFormat,
                    format!("'{value}' is not a NIC: a letter and 9 digits"),
                )
            }),
            "sva" => (!is_ori(value)).then(|| {
                (
                    ErrorCode::InvalidFormat,
                    format!("'{value}' is not an ORI: 9 characters, A-Z and 0-9"),
                )
            }),
            "pno" => (!value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'))
            .then(|| {
                (
                    ErrorCode::InvalidFormat,
                    format!("'{value}' has characters other than A-Z, 0-9 and '-'"),
                )
            }),
            "height" | "weight" => {
                (!digits(value)).then(|| (ErrorCode::InvalidFormat, format!("'{value}' is not digits")))
            }
            _ => match code_table(name) {
                Some(table) if !self.tables.is_clets_code(table, value) => Some((
                    ErrorCode::InvalidCode,
                    format!("'{value}' is not a CLETS code of the {table} table"),
                )),
                _ => None,
            },
        };
        if let Some((code, text)) = problem {
            self.error(code, field, Some(column), text);
        }
    }

    /// Required fields, per key and per protected-person group.
    fn required(&mut self, mke: &str, order: &[&str], counts: &[usize], groups: &[Group]) {
        let present = |name: &str| order.iter().position(|n| *n == name).is_some_and(|i| counts[i] > 0);
        for (slot, name) in order.iter().enumerate() {
            let tag = self.tables.field(name).tag.clone();
            let required = self.tables.presence(mke, name) == Presence::Required;
            match PROTECTED_GROUP.iter().position(|m| m == name) {
                Some(0) => {
                    if required && groups.is_empty() {
                        self.error(
                            ErrorCode::Missing,
                            tag,
                            None,
                            format!("{mke} requires at least one protected person"),
                        );
                    }
                }
                Some(m) => {
                    if required {
                        for (i, g) in groups.iter().enumerate() {
                            if !g.members[m] {
                                self.error(
                                    ErrorCode::Missing,
                                    format!("{tag}[{i}]"),
                                    Some(g.column),
                                    format!("{mke} requires {tag} for every protected person"),
                                );
                            }
                        }
                    }
                }
                None => {
                    if counts[slot] > 0 {
                        continue;
                    }
                    if required {
                        self.error(ErrorCode::Missing, &tag, None, format!("{mke} requires {tag}"));
                    } else if let Some(needs) = self.tables.required_with(name)
                        && present(needs)
                    {
                        let needs_tag = self.tables.field(needs).tag.clone();
                        self.error(
                            ErrorCode::Missing,
                            &tag,
                            None,
                            format!("{tag} is required with {needs_tag}"),
                        );
                    }
                }
            }
        }
    }
}

fn date_problem(value: &str) -> Option<(ErrorCode, String)> {
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Some((ErrorCode::InvalidFormat, format!("'{value}' is not a date CCYYMMDD")));
    }
    NaiveDate::parse_from_str(value, "%Y%m%d").is_err().then(|| {
        (
            ErrorCode::InvalidDate,
            format!("'{value}' is not a date of the calendar"),
        )
    })
}

fn time_problem(value: &str) -> Option<(ErrorCode, String)> {
    let ok = value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()) && value[..2] < *"24" && value[2..] < *"60";
    (!ok).then(|| (ErrorCode::InvalidFormat, format!("'{value}' is not a time HHMM")))
}

/// 9 characters `[A-Z0-9]`.
fn is_ori(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// ICD §5: `<sequence:4><revision:1><15 of base32>`.
fn is_mcn(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[..5].iter().all(u8::is_ascii_digit)
        && b[5..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(c))
}

/// A letter, then 9 digits.
fn is_nic(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests;
