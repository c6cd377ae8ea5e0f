//! Batch files (ICD §3): many fixed-width order messages in one file, framed
//! by a header and a trailer, as a court's CMS drops them for the file-drop
//! adapter (`porter court file-drop`) and as vendors check them with
//! `porter validate`.
//!
//! # Record format
//!
//! Every record is `record_length` data bytes (the court's layout; 200 for
//! `cms-a/1`) followed by LF or CRLF; the last record may lack its
//! terminator. Records are told apart by column 1: `H`, `T`, and
//! `order_record_type`, which begins each order message (`O` in `cms-a/1`;
//! for a layout with two-byte record types, the first byte of its order
//! record's type, such as the `1` of `cms-b/2`'s `10`).
//!
//! | record | columns |
//! |---|---|
//! | header `H` | 1 `H` · 2–10 court ORI · 11–24 creation time `CCYYMMDDHHMMSS` · 25–34 batch number (10 digits) · 35–44 layout name (left-justified) · 45– filler |
//! | order messages | the court's layout; each message begins with its order record (`O` in `cms-a/1`) and runs to the next one |
//! | trailer `T` | 1 `T` · 2–7 count of order messages · 8–15 count of all records, H and T included · 16– filler |
//!
//! The filler runs to the layout's record length, so the header needs a
//! record length of at least 44 and the trailer one of at least 15.
//!
//! # What this reader checks, and what it leaves to the broker
//!
//! [`read_batch`] checks only the *framing*: the header and trailer fields,
//! that the counts add up, that every record has the layout's length and is
//! ASCII, that the first record after the header is an order record and that
//! nothing follows the trailer. It does not read the orders themselves: each
//! message is published on its own and the broker parses and validates it
//! (a bad order gets its own `REJECTED`, and the rest of the batch still
//! flows). A framing error, by contrast, means the file cannot be trusted to
//! be cut into the right messages, so nothing of it may be published.
//!
//! Every error is an `INVALID_FORMAT` [`FieldError`] whose field is
//! `batch.header[.court_ori|.created|.batch_number|.layout]`,
//! `batch.trailer[.order_count|.record_count]`, `batch.record` (a record of
//! the wrong length or with a non-ASCII byte) or `batch.messages`, located at
//! `record:column` (1-based). All errors are collected, up to
//! [`MAX_ERRORS`]; the reader is total (it never panics) and reads each byte
//! a bounded number of times.
//!
//! Each [`BatchMessage::body`] is the message's records, each ending in LF
//! (a CRLF file is normalised), so the body — and therefore the broker's
//! deduplication key — is the same every time the file is read.

use chrono::NaiveDateTime;

use crate::model::{ErrorCode, FieldError};

/// The record type of the batch header.
pub const HEADER_TYPE: u8 = b'H';
/// The record type of the batch trailer.
pub const TRAILER_TYPE: u8 = b'T';
/// Most errors reported for one file; past it, one last error says how many
/// more there were. It keeps a report readable and bounded for a file of
/// garbage.
pub const MAX_ERRORS: usize = 1000;

/// Last column of the header's fixed fields: a record must be this long.
const HEADER_MIN_LENGTH: usize = 44;
/// Last column of the trailer's fixed fields.
const TRAILER_MIN_LENGTH: usize = 15;

/// The batch header record `H`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchHeader {
    /// Columns 2–10: the court that wrote the batch.
    pub court_ori: String,
    /// Columns 11–24: when the CMS created the batch, `CCYYMMDDHHMMSS`.
    pub created: String,
    /// Columns 25–34: the batch number, 10 digits, zero-padded, unique per
    /// court. It is part of every message id.
    pub batch_number: String,
    /// Columns 35–44, trimmed: the layout the order messages are written in.
    pub layout: String,
}

/// One order message of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchMessage {
    /// Position of the message in the batch, 1-based (part of its message id).
    pub position: usize,
    /// The file's record number of the message's first (order) record, 1-based.
    pub first_record: usize,
    /// How many records the message holds.
    pub record_count: usize,
    /// The message's records, each followed by LF: what is published.
    pub body: Vec<u8>,
}

/// A batch file whose framing is sound.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub header: BatchHeader,
    /// The order messages, in file order.
    pub messages: Vec<BatchMessage>,
    /// The trailer's count of order messages (equals `messages.len()`).
    pub trailer_orders: usize,
    /// The trailer's count of all records, H and T included.
    pub trailer_records: usize,
}

/// The message id of the message at `position` in a batch (ICD §3):
/// `<ORI>-B<batch number>-<position>`, for example `CA034025J-B0000000042-3`.
pub fn message_id(court_ori: &str, batch_number: &str, position: usize) -> String {
    format!("{court_ori}-B{batch_number}-{position}")
}

/// Reads a batch file's framing (see the module doc).
///
/// `record_length` is the layout's data bytes per record; `order_record_type`
/// is the record type (column 1) that begins each order message, `b'O'` for
/// `cms-a/1`. Returns the batch, or every framing error found.
pub fn read_batch(bytes: &[u8], record_length: usize, order_record_type: u8) -> Result<Batch, Vec<FieldError>> {
    Reader::new(record_length, order_record_type).read(bytes)
}

/// One record of the file.
struct Record<'b> {
    /// 1-based record number.
    number: usize,
    /// The data bytes, terminator excluded.
    data: &'b [u8],
}

impl Record<'_> {
    fn kind(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Columns `start..start+length` (1-based), when the record holds them.
    fn columns(&self, start: usize, length: usize) -> Option<&[u8]> {
        self.data.get(start - 1..start - 1 + length)
    }
}

struct Reader {
    record_length: usize,
    order_type: u8,
    errors: Vec<FieldError>,
    /// Errors not kept because [`MAX_ERRORS`] was reached.
    dropped: usize,
}

impl Reader {
    fn new(record_length: usize, order_type: u8) -> Reader {
        Reader {
            record_length,
            order_type,
            errors: Vec::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, field: &str, record: usize, column: usize, text: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors
                .push(FieldError::new(ErrorCode::InvalidFormat, field, text).at(format!("{record}:{column}")));
        } else {
            self.dropped += 1;
        }
    }

    fn read(mut self, bytes: &[u8]) -> Result<Batch, Vec<FieldError>> {
        if self.record_length < HEADER_MIN_LENGTH {
            self.push(
                "batch.header",
                1,
                1,
                format!(
                    "the layout's record length {} is too short for a batch header, which needs {HEADER_MIN_LENGTH} columns",
                    self.record_length
                ),
            );
            return Err(self.errors);
        }
        if self.order_type == HEADER_TYPE || self.order_type == TRAILER_TYPE {
            self.push(
                "batch.messages",
                1,
                1,
                format!(
                    "the layout's order record type {:?} is the header's or the trailer's",
                    self.order_type as char
                ),
            );
            return Err(self.errors);
        }
        let records = split(bytes);
        if records.is_empty() {
            self.push(
                "batch.header",
                1,
                1,
                "the file is empty: a batch begins with a header record H".into(),
            );
            return Err(self.errors);
        }
        let record_kind = |r: &Record<'_>| -> &'static str {
            match r.kind() {
                Some(HEADER_TYPE) if r.number == 1 => "batch.header",
                Some(TRAILER_TYPE) => "batch.trailer",
                _ => "batch.record",
            }
        };
        for r in &records {
            self.check_record(r, record_kind(r));
        }

        // The header: record 1, unless the file begins straight with an order.
        let first = &records[0];
        let (header, body_start) = match first.kind() {
            Some(HEADER_TYPE) => (self.header(first), 1),
            Some(t) if t == self.order_type => {
                self.push(
                    "batch.header",
                    1,
                    1,
                    format!(
                        "the header record H is missing: record 1 is an order record {:?}",
                        t as char
                    ),
                );
                (None, 0)
            }
            other => {
                self.push(
                    "batch.header",
                    1,
                    1,
                    format!("record 1 must be the header H, not {}", describe_type(other)),
                );
                (None, 1)
            }
        };

        // The trailer: the first T after the header.
        let trailer_index = records
            .iter()
            .skip(body_start)
            .position(|r| r.kind() == Some(TRAILER_TYPE))
            .map(|i| i + body_start);
        let body_end = trailer_index.unwrap_or(records.len());
        match trailer_index {
            None => {
                let last = records.len();
                self.push(
                    "batch.trailer",
                    last + 1,
                    1,
                    format!("the trailer record T is missing: the file ends at record {last} without one"),
                );
            }
            Some(t) if t + 1 < records.len() => {
                let extra = records.len() - t - 1;
                self.push(
                    "batch.trailer",
                    records[t + 1].number,
                    1,
                    format!(
                        "{extra} record{} after the trailer (record {}); the trailer must be the last record",
                        if extra == 1 { "" } else { "s" },
                        records[t].number
                    ),
                );
            }
            Some(_) => {}
        }

        // The order messages.
        let mut messages: Vec<BatchMessage> = Vec::new();
        for r in records.get(body_start..body_end).unwrap_or_default() {
            match r.kind() {
                Some(t) if t == self.order_type => messages.push(BatchMessage {
                    position: messages.len() + 1,
                    first_record: r.number,
                    record_count: 0,
                    body: Vec::new(),
                }),
                Some(HEADER_TYPE) => {
                    self.push(
                        "batch.messages",
                        r.number,
                        1,
                        "a second header record H inside the batch".into(),
                    );
                    continue;
                }
                other if messages.is_empty() => {
                    self.push(
                        "batch.messages",
                        r.number,
                        1,
                        format!(
                            "record {} ({}) comes before the first order record {:?}: every order message begins with one",
                            r.number,
                            describe_type(other),
                            self.order_type as char
                        ),
                    );
                    continue;
                }
                _ => {}
            }
            if let Some(m) = messages.last_mut() {
                m.record_count += 1;
                m.body.extend_from_slice(r.data);
                m.body.push(b'\n');
            }
        }
        if messages.is_empty() {
            let at = records.get(body_end).map_or(records.len() + 1, |r| r.number);
            self.push("batch.messages", at, 1, "the batch holds no order messages".into());
        }

        // The trailer's counts.
        let mut counts = None;
        if let Some(t) = trailer_index {
            counts = self.trailer(&records[t], messages.len(), records.len());
        }

        if self.dropped > 0 {
            let last = records.len();
            let dropped = self.dropped;
            self.errors.push(
                FieldError::new(
                    ErrorCode::InvalidFormat,
                    "batch",
                    format!("{dropped} more errors not listed (only the first {MAX_ERRORS} are)"),
                )
                .at(format!("{last}:1")),
            );
        }
        match (header, counts) {
            (Some(header), Some((trailer_orders, trailer_records))) if self.errors.is_empty() => Ok(Batch {
                header,
                messages,
                trailer_orders,
                trailer_records,
            }),
            _ => {
                // Defensive: every path to here without a value pushed an error.
                if self.errors.is_empty() {
                    self.push("batch", 1, 1, "the batch could not be read".into());
                }
                Err(self.errors)
            }
        }
    }

    /// Length and ASCII, for every record.
    fn check_record(&mut self, r: &Record<'_>, field: &str) {
        let len = r.data.len();
        if len != self.record_length {
            let column = len.min(self.record_length) + 1;
            self.push(
                field,
                r.number,
                column,
                format!(
                    "record {} is {len} bytes long; every record must be {} bytes",
                    r.number, self.record_length
                ),
            );
        }
        let mut bad = r.data.iter().enumerate().filter(|(_, b)| **b > 0x7F);
        if let Some((i, b)) = bad.next() {
            let more = bad.count();
            let tail = match more {
                0 => String::new(),
                n => format!(" ({} non-ASCII bytes in this record)", n + 1),
            };
            self.push(field, r.number, i + 1, format!("byte 0x{b:02X} is not ASCII{tail}"));
        }
    }

    /// The header's fields. `None` when any is wrong (already reported).
    fn header(&mut self, r: &Record<'_>) -> Option<BatchHeader> {
        if r.data.len() < HEADER_MIN_LENGTH {
            // Reported by the length check; its fields are not all there.
            return None;
        }
        let before = self.errors.len() + self.dropped;
        let ori = r.columns(2, 9).unwrap_or_default();
        if !ori.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            self.push(
                "batch.header.court_ori",
                r.number,
                2,
                format!("the court ORI {:?} is not 9 characters [A-Z0-9]", printable(ori)),
            );
        }
        let created = r.columns(11, 14).unwrap_or_default();
        let created_ok = created.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(created)
                .ok()
                .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok())
                .is_some();
        if !created_ok {
            self.push(
                "batch.header.created",
                r.number,
                11,
                format!(
                    "the creation time {:?} is not a real date and time CCYYMMDDHHMMSS",
                    printable(created)
                ),
            );
        }
        let number = r.columns(25, 10).unwrap_or_default();
        if !number.iter().all(u8::is_ascii_digit) {
            self.push(
                "batch.header.batch_number",
                r.number,
                25,
                format!(
                    "the batch number {:?} is not 10 digits (zero-padded)",
                    printable(number)
                ),
            );
        }
        let layout = r.columns(35, 10).unwrap_or_default();
        let name = trim_end(layout);
        if name.is_empty() || layout[0] == b' ' || !name.iter().all(|b| b.is_ascii_graphic()) {
            self.push(
                "batch.header.layout",
                r.number,
                35,
                format!(
                    "the layout name {:?} is not a left-justified name such as \"cms-a/1\"",
                    printable(layout)
                ),
            );
        }
        if self.errors.len() + self.dropped != before {
            return None;
        }
        Some(BatchHeader {
            court_ori: ascii(ori),
            created: ascii(created),
            batch_number: ascii(number),
            layout: ascii(name),
        })
    }

    /// The trailer's counts, checked against what the file holds.
    fn trailer(&mut self, r: &Record<'_>, messages: usize, records: usize) -> Option<(usize, usize)> {
        if r.data.len() < TRAILER_MIN_LENGTH {
            return None;
        }
        let orders = self.count(r, 2, 6, "batch.trailer.order_count", "order message count");
        let all = self.count(r, 8, 8, "batch.trailer.record_count", "record count");
        if let Some(n) = orders
            && n != messages
        {
            self.push(
                "batch.trailer.order_count",
                r.number,
                2,
                format!("the trailer counts {n} order messages; the file holds {messages}"),
            );
        }
        if let Some(n) = all
            && n != records
        {
            self.push(
                "batch.trailer.record_count",
                r.number,
                8,
                format!("the trailer counts {n} records; the file holds {records}, header and trailer included"),
            );
        }
        Some((orders?, all?))
    }

    fn count(&mut self, r: &Record<'_>, start: usize, length: usize, field: &str, what: &str) -> Option<usize> {
        let digits = r.columns(start, length).unwrap_or_default();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            self.push(
                field,
                r.number,
                start,
                format!(
                    "the {what} {:?} is not {length} digits (zero-padded)",
                    printable(digits)
                ),
            );
            return None;
        }
        // At most 8 digits: always fits.
        Some(digits.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
    }
}

/// Splits at LF or CRLF; the last record may lack a terminator. A file
/// ending in a terminator has no empty record after it.
fn split(bytes: &[u8]) -> Vec<Record<'_>> {
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let number = records.len() + 1;
        match rest.iter().position(|&b| b == b'\n') {
            Some(p) => {
                let data = &rest[..p];
                let data = data.strip_suffix(b"\r").unwrap_or(data);
                records.push(Record { number, data });
                rest = &rest[p + 1..];
            }
            None => {
                records.push(Record { number, data: rest });
                break;
            }
        }
    }
    records
}

fn describe_type(t: Option<u8>) -> String {
    match t {
        None => "an empty record".into(),
        Some(b) if b.is_ascii_graphic() => format!("a record of type {:?}", b as char),
        Some(b) => format!("a record beginning with byte 0x{b:02X}"),
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

/// Bytes known to be ASCII, as a string.
fn ascii(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Bytes shown in an error: ASCII as is, anything else escaped.
fn printable(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ICD §3 sample order (O, R, P, M01), each record padded to 200.
    fn order(order_number: &str) -> Vec<u8> {
        let lines = [
            format!("OCA034025J24FL001234          {order_number:<15}IS0001DV DV-130  20261125203111252359Y010507            YHON MARIA LOPEZ"),
            "RDOE                           JOHN                ALLEN                  MW19850214510185BROBLK1200 J ST APT 4                         SACRAMENTO          CA95814D1234567            CA".into(),
            "PDOE                           JANE                B                   FW19870302SP".into(),
            "M01STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.".into(),
        ];
        lines.iter().flat_map(|l| pad(l)).collect()
    }

    fn pad(line: &str) -> Vec<u8> {
        let mut v = format!("{line:<200}").into_bytes();
        v.push(b'\n');
        v
    }

    fn header(ori: &str, number: &str) -> Vec<u8> {
        pad(&format!("H{ori}20261125101500{number}cms-a/1   "))
    }

    fn trailer(orders: usize, records: usize) -> Vec<u8> {
        pad(&format!("T{orders:06}{records:08}"))
    }

    /// A good batch of `n` ISSUE orders for court CA034025J, batch 42.
    fn sample(n: usize) -> Vec<u8> {
        let mut b = header("CA034025J", "0000000042");
        for i in 0..n {
            b.extend(order(&format!("24DV0{i:04}")));
        }
        b.extend(trailer(n, n * 4 + 2));
        b
    }

    fn errors(bytes: &[u8]) -> Vec<FieldError> {
        read_batch(bytes, 200, b'O').expect_err("framing errors")
    }

    fn has(errors: &[FieldError], field: &str, location: &str) -> bool {
        errors
            .iter()
            .any(|e| e.field == field && e.location.as_deref() == Some(location) && e.code == ErrorCode::InvalidFormat)
    }

    /// A well-framed batch of three orders gives its header, three messages
    /// with their record numbers, and bodies that are exactly the orders.
    #[test]
    fn good_batch_is_cut_into_its_messages() {
        let batch = read_batch(&sample(3), 200, b'O').unwrap();
        assert_eq!(
            batch.header,
            BatchHeader {
                court_ori: "CA034025J".into(),
                created: "20261125101500".into(),
                batch_number: "0000000042".into(),
                layout: "cms-a/1".into(),
            }
        );
        assert_eq!((batch.trailer_orders, batch.trailer_records), (3, 14));
        assert_eq!(batch.messages.len(), 3);
        for (i, m) in batch.messages.iter().enumerate() {
            assert_eq!(m.position, i + 1);
            assert_eq!(m.first_record, 2 + 4 * i);
            assert_eq!(m.record_count, 4);
            assert_eq!(m.body, order(&format!("24DV0{i:04}")));
        }
    }

    /// The shipped fixtures read as their README says.
    #[test]
    fn fixtures_read_as_documented() {
        let good = read_batch(
            include_bytes!("../../tests/fixtures/batch/good-3-orders.txt"),
            200,
            b'O',
        )
        .unwrap();
        assert_eq!(good.header.batch_number, "0000000042");
        assert_eq!(good.messages.len(), 3);
        let e = errors(include_bytes!(
            "../../tests/fixtures/batch/bad-trailer-short-record.txt"
        ));
        assert!(has(&e, "batch.record", "3:200"), "{e:#?}");
        assert!(has(&e, "batch.trailer.order_count", "10:2"), "{e:#?}");
        assert_eq!(e.len(), 2, "{e:#?}");
    }

    /// The message id is `<ORI>-B<batch number>-<position>`.
    #[test]
    fn message_id_follows_the_icd() {
        assert_eq!(message_id("CA034025J", "0000000042", 3), "CA034025J-B0000000042-3");
    }

    /// CRLF records and a last record without a terminator are accepted,
    /// and the bodies are normalised to LF (the same bytes as the LF file).
    #[test]
    fn crlf_and_missing_final_terminator_are_accepted() {
        let lf = sample(2);
        let mut crlf: Vec<u8> = lf
            .iter()
            .flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] })
            .collect();
        crlf.truncate(crlf.len() - 2);
        let a = read_batch(&lf, 200, b'O').unwrap();
        let b = read_batch(&crlf, 200, b'O').unwrap();
        assert_eq!(a, b);
    }

    /// A trailer whose counts do not add up names both count columns.
    #[test]
    fn trailer_counts_must_add_up() {
        let mut b = sample(2);
        let t = b.len() - 201;
        b.splice(t.., trailer(3, 11));
        let e = errors(&b);
        assert!(has(&e, "batch.trailer.order_count", "10:2"), "{e:#?}");
        assert!(has(&e, "batch.trailer.record_count", "10:8"), "{e:#?}");
    }

    /// A short record is named by record and the first missing column, and
    /// its errors are collected along with the trailer's.
    #[test]
    fn short_record_and_bad_trailer_are_both_reported() {
        let mut b = sample(2);
        // Record 3 (the first order's R) loses its last byte.
        let r3 = 201 * 2 + 199;
        b.remove(r3);
        let t = b.len() - 201;
        b.splice(t.., trailer(5, 10));
        let e = errors(&b);
        assert!(has(&e, "batch.record", "3:200"), "{e:#?}");
        assert!(has(&e, "batch.trailer.order_count", "10:2"), "{e:#?}");
        assert_eq!(e.len(), 2, "{e:#?}");
    }

    /// A long record is named at its first extra column.
    #[test]
    fn long_record_is_named_at_its_first_extra_column() {
        let mut b = sample(1);
        b.insert(201 + 100, b'X');
        assert!(has(&errors(&b), "batch.record", "2:201"));
    }

    /// A byte above 0x7F is named at its exact record and column.
    #[test]
    fn non_ascii_byte_is_named_at_record_and_column() {
        let mut b = sample(1);
        b[201 * 2 + 2] = 0xC3;
        assert!(has(&errors(&b), "batch.record", "3:3"));
    }

    /// Each header field is checked at its own column, and all are reported.
    #[test]
    fn header_fields_are_checked() {
        let mut b = sample(1);
        b.splice(0..201, pad("Hca034025j20261332250000000000004Xcms-a/1   "));
        let e = errors(&b);
        assert!(has(&e, "batch.header.court_ori", "1:2"), "{e:#?}");
        assert!(has(&e, "batch.header.created", "1:11"), "{e:#?}");
        assert!(has(&e, "batch.header.batch_number", "1:25"), "{e:#?}");
        let mut b = sample(1);
        b.splice(0..201, pad("HCA034025J202611251015000000000042"));
        assert!(has(&errors(&b), "batch.header.layout", "1:35"));
    }

    /// A file that begins with an order has no header; one that begins with
    /// another record has a garbled header.
    #[test]
    fn missing_or_garbled_header() {
        let b = sample(1);
        assert!(has(&errors(&b[201..]), "batch.header", "1:1"));
        let mut g = b.clone();
        g[0] = b'X';
        assert!(has(&errors(&g), "batch.header", "1:1"));
    }

    /// A file without a trailer, or with records after it, is refused.
    #[test]
    fn missing_trailer_and_records_after_it() {
        let b = sample(1);
        let no_trailer = &b[..b.len() - 201];
        assert!(has(&errors(no_trailer), "batch.trailer", "6:1"));
        let mut after = b.clone();
        after.extend(order("24DV09999"));
        let e = errors(&after);
        assert!(has(&e, "batch.trailer", "7:1"), "{e:#?}");
    }

    /// A record other than an order record straight after the header, and a
    /// batch with no order messages, are refused.
    #[test]
    fn messages_must_begin_with_an_order_record() {
        let mut b = header("CA034025J", "0000000001");
        b.extend(pad("PDOE"));
        b.extend(order("24DV00001"));
        b.extend(trailer(1, 7));
        assert!(has(&errors(&b), "batch.messages", "2:1"));
        let mut empty = header("CA034025J", "0000000001");
        empty.extend(trailer(0, 2));
        assert!(has(&errors(&empty), "batch.messages", "2:1"));
        assert!(has(&errors(b""), "batch.header", "1:1"));
    }

    /// Another record length adapts the filler; a length too short for the
    /// header is refused rather than misread.
    #[test]
    fn other_record_lengths() {
        let pad60 = |s: &str| format!("{s:<60}\n").into_bytes();
        let mut b = pad60("HCA034025J202611251015000000000042cms-b/2");
        b.extend(pad60("OCA034025J"));
        b.extend(pad60("TABC"));
        b.extend(pad60("T000001"));
        let e = read_batch(&b, 60, b'O').unwrap_err();
        // "TABC" is taken as the trailer; the real one follows it.
        assert!(has(&e, "batch.trailer.order_count", "3:2"), "{e:#?}");
        assert!(has(&e, "batch.trailer", "4:1"), "{e:#?}");
        let mut ok = pad60("HCA034025J202611251015000000000042cms-b/2");
        ok.extend(pad60("OCA034025J"));
        ok.extend(pad60("X"));
        ok.extend(pad60("T00000100000004"));
        let batch = read_batch(&ok, 60, b'O').unwrap();
        assert_eq!(batch.header.layout, "cms-b/2");
        assert_eq!(batch.messages[0].record_count, 2);
        assert!(read_batch(&ok, 40, b'O').is_err());
    }

    /// The reader never panics and never accepts a truncated batch: every
    /// prefix of a good batch either is refused or (when it only lost the
    /// final LF) reads the same.
    #[test]
    fn every_truncation_is_total() {
        let b = sample(2);
        let whole = read_batch(&b, 200, b'O').unwrap();
        for n in 0..b.len() {
            match read_batch(&b[..n], 200, b'O') {
                Ok(batch) => {
                    assert_eq!(n, b.len() - 1, "only dropping the final LF keeps the batch valid");
                    assert_eq!(batch, whole);
                }
                Err(e) => assert!(!e.is_empty() && e.len() <= MAX_ERRORS + 1),
            }
        }
    }

    /// Random bytes, random record lengths and random mutations of a good
    /// batch never panic, and errors stay bounded.
    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
        let good = sample(3);
        for _ in 0..2000 {
            let len = rng.random_range(0..3000);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.random_range(0..10) {
                    0 => b'\n',
                    1 => b'\r',
                    2 => [b'H', b'O', b'T'][rng.random_range(0..3)],
                    _ => rng.random(),
                })
                .collect();
            let record_length = rng.random_range(0..300);
            let _ = read_batch(&bytes, record_length, rng.random());
            let mut mutated = good.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..mutated.len());
                mutated[i] = rng.random();
            }
            if let Err(e) = read_batch(&mutated, 200, b'O') {
                assert!(e.len() <= MAX_ERRORS + 1);
            }
        }
        // Many empty records: the error list is capped.
        let many = vec![b'\n'; 50_000];
        let e = read_batch(&many, 200, b'O').unwrap_err();
        assert_eq!(e.len(), MAX_ERRORS + 1);
        assert_eq!(e.last().unwrap().field, "batch");
    }
}
