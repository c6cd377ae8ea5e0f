//! Canonical order message → CLETS request (ICD §6), driven entirely by
//! [`CletsTables`]: the message key, the fields and their order, tags,
//! maxima and codes all come from `mappings/clets.toml`.
//!
//! Rules carried out here:
//! - Text is uppercased and transliterated; `.` becomes a space. Each such
//!   change is a warning for the court (`SANITIZED`).
//! - A value over its maximum is `TOO_LONG`; nothing is cut, except the
//!   composite names `NAM` and `PPN`: first the middle name becomes an
//!   initial, then the first name is cut, each step a warning (`SHORTENED`).
//! - An empty optional field is omitted.
//! - The MCN is deterministic (ICD §5), so a resend carries the same one.
//!
//! The translator runs for every order, so it works from the tables as
//! compiled at load ([`CletsTables::plan`]: steps over a closed set of
//! fields, tags and maxima by index), writes each value straight into the
//! request text (a value that turns out too long is taken back out), and
//! formats dates by hand. Field paths for errors and warnings are
//! [`FieldPath`]s, made text only when there is one.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use data_encoding::BASE32;
use sha2::{Digest, Sha256};

use crate::formats::clets::{CletsRequest, RequestWriter};
use crate::mapping::clets::{CletsField, CletsTables, CodeTable, Step};
use crate::model::{ErrorCode, FieldError, FieldPath, OrderMessage, PersonName};

use super::text::{TextChanges, write_clets_bytes};

/// A request and the warnings its translation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub request: CletsRequest,
    pub warnings: Vec<FieldError>,
}

/// The message control number: `<sequence:4><revision:1><first 15 of
/// base32(SHA-256(ORI "|" order number))>` (ICD §5).
pub fn mcn(court_ori: &str, order_number: &str, sequence: u32, revision: u32) -> String {
    let bytes = mcn_bytes(court_ori, order_number, sequence, revision);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`mcn`] without allocating: 20 ASCII bytes.
fn mcn_bytes(court_ori: &str, order_number: &str, sequence: u32, revision: u32) -> [u8; 20] {
    let digest = Sha256::new()
        .chain_update(court_ori.as_bytes())
        .chain_update(b"|")
        .chain_update(order_number.as_bytes())
        .finalize();
    let mut out = [0u8; 20];
    let mut digits = sequence % 10_000 * 10 + revision % 10;
    for d in out[..5].iter_mut().rev() {
        *d = b'0' + (digits % 10) as u8;
        digits /= 10;
    }
    // Base32 of the first 10 bytes (a whole number of 5-byte groups) is
    // the first 16 characters of the base32 of all 32.
    let mut b32 = [0u8; 16];
    BASE32.encode_mut(&digest[..10], &mut b32);
    out[5..].copy_from_slice(&b32[..15]);
    out
}

/// Translates `msg` into the request for its action. `nic` is the CARPOS
/// record id from the order's `EPO` acknowledgement (needed by every key but
/// `EPO`).
pub fn translate(
    msg: &OrderMessage,
    nic: Option<&str>,
    revision: u32,
    tables: &CletsTables,
) -> Result<Translation, Vec<FieldError>> {
    let Some(action) = msg.action else {
        return Err(vec![FieldError::new(
            ErrorCode::Missing,
            "action",
            "the action is required",
        )]);
    };
    let order_number = msg.order_number().unwrap_or_default();
    let (mke, steps) = tables.plan(action);
    let mcn = mcn_bytes(&msg.court_ori, order_number, msg.sequence.unwrap_or(0), revision);
    let mut t = Translator {
        msg,
        nic,
        tables,
        request: RequestWriter::new(mke.as_bytes(), msg.court_ori.as_bytes(), &mcn),
        warnings: Vec::new(),
        errors: Vec::new(),
        scratch: Vec::new(),
    };
    for step in steps {
        match *step {
            Step::Field(field) => t.field(field),
            Step::Protected => t.protected(),
        }
    }
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    Ok(Translation {
        request: t.request.into_request(),
        warnings: t.warnings,
    })
}

struct Translator<'a> {
    msg: &'a OrderMessage,
    nic: Option<&'a str>,
    tables: &'a CletsTables,
    request: RequestWriter,
    warnings: Vec<FieldError>,
    errors: Vec<FieldError>,
    /// The sanitised parts of a composite name.
    scratch: Vec<u8>,
}

/// `CCYYMMDD`, written by hand for years 0–9999 (chrono's `%Y%m%d`
/// otherwise).
fn date(d: NaiveDate, buf: &mut [u8; 8]) -> std::borrow::Cow<'_, [u8]> {
    let (Ok(year), month, day) = (u32::try_from(d.year()), d.month(), d.day()) else {
        return d.format("%Y%m%d").to_string().into_bytes().into();
    };
    if year > 9999 {
        return d.format("%Y%m%d").to_string().into_bytes().into();
    }
    digits(&mut buf[..4], year);
    digits(&mut buf[4..6], month);
    digits(&mut buf[6..], day);
    buf[..].into()
}

/// `HHMM`.
fn time(t: NaiveDateTime, buf: &mut [u8; 4]) -> &[u8] {
    digits(&mut buf[..2], t.hour());
    digits(&mut buf[2..], t.minute());
    buf
}

/// Writes `n` as decimal digits, zero-padded to `out`'s length.
fn digits(out: &mut [u8], mut n: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `value` without surrounding white space. The readers trim what they
/// read, so a value that starts and ends with a visible ASCII character is
/// returned as it is, without the Unicode-aware scan of `str::trim`.
fn trim(value: &str) -> &str {
    match (value.as_bytes().first(), value.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

fn p(path: &'static str) -> FieldPath {
    FieldPath::new(path)
}

impl<'a> Translator<'a> {
    fn field(&mut self, field: CletsField) {
        use CletsField as F;
        let m = self.msg;
        let o = &m.order;
        let r = m.restrained_person.as_ref();
        let svc = o.service.as_ref();
        let dl = r.and_then(|r| r.driver_license.as_ref());
        match field {
            F::Nic => match self.nic {
                Some(nic) => self.push_raw(F::Nic, nic.as_bytes()),
                None => self.errors.push(FieldError::new(
                    ErrorCode::UnknownOrder,
                    "nic",
                    "no CARPOS record id (NIC) is known for this order yet",
                )),
            },
            F::Name => {
                if let Some(r) = r {
                    self.composite_name(F::Name, p("restrained_person.name"), &r.name, true);
                }
            }
            F::Sex => self.code(
                F::Sex,
                CodeTable::Sex,
                p("restrained_person.sex"),
                r.and_then(|r| r.sex.as_deref()),
            ),
            F::Race => self.code(
                F::Race,
                CodeTable::Race,
                p("restrained_person.race"),
                r.and_then(|r| r.race.as_deref()),
            ),
            F::Dob => self.opt_date(F::Dob, r.and_then(|r| r.birth_date)),
            F::Height => self.text(
                F::Height,
                p("restrained_person.height"),
                r.and_then(|r| r.height.as_deref()),
            ),
            F::Weight => self.text(
                F::Weight,
                p("restrained_person.weight"),
                r.and_then(|r| r.weight.as_deref()),
            ),
            F::Eye => self.code(
                F::Eye,
                CodeTable::Eye,
                p("restrained_person.eye"),
                r.and_then(|r| r.eye.as_deref()),
            ),
            F::Hair => self.code(
                F::Hair,
                CodeTable::Hair,
                p("restrained_person.hair"),
                r.and_then(|r| r.hair.as_deref()),
            ),
            F::Oln => self.text(
                F::Oln,
                p("restrained_person.driver_license.number"),
                dl.and_then(|d| d.number.as_deref()),
            ),
            F::Ols => {
                if dl.and_then(|d| d.number.as_deref()).is_some() {
                    self.text(
                        F::Ols,
                        p("restrained_person.driver_license.state"),
                        dl.and_then(|d| d.state.as_deref()),
                    )
                }
            }
            F::Pno => self.text(F::Pno, p("order.order_number"), o.order_number.as_deref()),
            F::Oca => self.text(F::Oca, p("order.case_number"), o.case_number.as_deref()),
            F::Typ => self.code(
                F::Typ,
                CodeTable::OrderType,
                p("order.order_type"),
                o.order_type.as_deref(),
            ),
            F::Isd => self.opt_date(F::Isd, o.issue_date),
            F::Exp => match o.expiration {
                Some(e) => self.opt_date(F::Exp, Some(e.date())),
                None => self.push_raw(F::Exp, b"NONEXP"),
            },
            F::Ext => self.opt_time(F::Ext, o.expiration),
            F::Brady => self.code(F::Brady, CodeTable::Brady, p("order.brady"), o.brady.as_deref()),
            F::Pco => {
                for (i, c) in o.condition_codes.iter().enumerate() {
                    let path = FieldPath::at("order.condition_codes[]", i);
                    self.code(F::Pco, CodeTable::Pco, path, Some(c));
                }
            }
            // Group members come only through `protected`.
            F::Ppn | F::Psx | F::Ppr | F::Ppb => self.errors.push(FieldError::new(
                ErrorCode::InvalidFormat,
                field.name(),
                "mappings/clets.toml names a field the translator does not know",
            )),
            F::Mis => self.text(F::Mis, p("order.condition_text"), o.condition_text.as_deref()),
            F::Doc => self.opt_date(F::Doc, o.termination_date),
            F::Rea => self.text(F::Rea, p("order.cancel_reason"), o.cancel_reason.as_deref()),
            F::Svd => self.opt_date(F::Svd, svc.and_then(|s| s.served_at).map(|t| t.date())),
            F::Svt => self.opt_time(F::Svt, svc.and_then(|s| s.served_at)),
            F::Svb => self.text(
                F::Svb,
                p("order.service.served_by"),
                svc.and_then(|s| s.served_by.as_deref()),
            ),
            F::Sva => self.text(
                F::Sva,
                p("order.service.serving_agency_ori"),
                svc.and_then(|s| s.serving_agency_ori.as_deref()),
            ),
            F::Svm => self.code(
                F::Svm,
                CodeTable::ServiceMethod,
                p("order.service.method"),
                svc.and_then(|s| s.method.as_deref()),
            ),
        }
    }

    /// The protected-person group, once per protected person.
    fn protected(&mut self) {
        use CletsField as F;
        for (i, person) in self.msg.protected_persons.iter().enumerate() {
            let name = FieldPath::at("protected_persons[].name", i);
            self.composite_name(F::Ppn, name, &person.name, false);
            let sex = FieldPath::at("protected_persons[].sex", i);
            self.code(F::Psx, CodeTable::Sex, sex, person.sex.as_deref());
            let race = FieldPath::at("protected_persons[].race", i);
            self.code(F::Ppr, CodeTable::Race, race, person.race.as_deref());
            self.opt_date(F::Ppb, person.birth_date);
        }
    }

    fn push_raw(&mut self, field: CletsField, value: &[u8]) {
        let tag = &self.tables.spec(field).tag;
        self.request.push(tag, value);
    }

    fn opt_date(&mut self, field: CletsField, value: Option<NaiveDate>) {
        if let Some(d) = value {
            let mut buf = [0; 8];
            self.push_raw(field, &date(d, &mut buf));
        }
    }

    fn opt_time(&mut self, field: CletsField, value: Option<NaiveDateTime>) {
        if let Some(t) = value {
            let mut buf = [0; 4];
            self.push_raw(field, time(t, &mut buf));
        }
    }

    /// Sanitises free text straight into the request; `None` or empty is
    /// omitted, a value over the field's maximum taken back out.
    fn text(&mut self, field: CletsField, canonical: FieldPath, value: Option<&str>) {
        let Some(value) = value.map(trim).filter(|v| !v.is_empty()) else {
            return;
        };
        let spec = self.tables.spec(field);
        let open = self.request.start_field(&spec.tag);
        let written = write_clets_bytes(self.request.value(), value);
        match written {
            Ok(changes) => {
                self.sanitized(canonical, &changes);
                // CLETS text is ASCII: bytes are characters.
                let n = self.request.value_len(open);
                if n > spec.max {
                    self.request.cancel_field(open);
                    self.too_long(field, canonical, n);
                } else {
                    self.request.finish_field(open);
                }
            }
            Err(c) => {
                self.request.cancel_field(open);
                self.untransliterable(canonical, c);
            }
        }
    }

    /// Pushes a value already in CLETS form unless it is over the maximum.
    fn push_checked(&mut self, field: CletsField, canonical: FieldPath, value: &str) {
        let max = self.tables.spec(field).max;
        if value.len() > max && value.chars().count() > max {
            self.too_long(field, canonical, value.chars().count());
            return;
        }
        self.push_raw(field, value.as_bytes());
    }

    #[cold]
    fn too_long(&mut self, field: CletsField, canonical: FieldPath, n: usize) {
        let spec = self.tables.spec(field);
        self.errors.push(FieldError::new(
            ErrorCode::TooLong,
            canonical,
            format!("{n} characters; CLETS {} allows at most {}", spec.tag, spec.max),
        ));
    }

    /// The warnings for what sanitising changed.
    fn sanitized(&mut self, canonical: FieldPath, changes: &TextChanges) {
        if changes.transliterated {
            self.warnings.push(FieldError::new(
                ErrorCode::Sanitized,
                canonical,
                "non-ASCII letters were transliterated for CLETS",
            ));
        }
        if changes.dots_replaced {
            self.warnings.push(FieldError::new(
                ErrorCode::Sanitized,
                canonical,
                "'.' was replaced with a space for CLETS",
            ));
        }
    }

    #[cold]
    fn untransliterable(&mut self, canonical: FieldPath, c: char) {
        self.errors.push(FieldError::new(
            ErrorCode::InvalidFormat,
            canonical,
            format!("character U+{:04X} cannot be transliterated to ASCII", c as u32),
        ));
    }

    fn code(&mut self, field: CletsField, table: CodeTable, canonical: FieldPath, value: Option<&str>) {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        match self.tables.code_in(table, value) {
            Some(c) => self.push_checked(field, canonical, c),
            None => self.errors.push(FieldError::new(
                ErrorCode::InvalidCode,
                canonical,
                format!("code {value:?} has no CLETS equivalent in the {} table", table.name()),
            )),
        }
    }

    /// `LAST SUFFIX, FIRST MIDDLE`, shortened as ICD §6 describes.
    fn composite_name(&mut self, field: CletsField, canonical: FieldPath, name: &PersonName, with_suffix: bool) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        // Sanitised last, suffix, first, middle, as ranges of `scratch`.
        let mut ranges = [None, None, None, None];
        for (slot, part) in ranges
            .iter_mut()
            .zip([&name.last, &name.suffix, &name.first, &name.middle])
        {
            let Some(value) = part.as_deref().map(trim).filter(|s| !s.is_empty()) else {
                continue;
            };
            let start = scratch.len();
            match write_clets_bytes(&mut scratch, value) {
                Ok(changes) => {
                    self.sanitized(canonical, &changes);
                    *slot = Some(start..scratch.len());
                }
                Err(c) => {
                    scratch.truncate(start);
                    self.untransliterable(canonical, c);
                }
            }
        }
        let [last, suffix, first, middle] = ranges.map(|r| r.map(|r| &scratch[r]));
        let suffix = if with_suffix { suffix } else { None };
        let name = self.shorten(
            field,
            canonical,
            Name {
                last,
                suffix,
                first,
                middle,
            },
        );
        let n = name.len();
        if n > self.tables.spec(field).max {
            self.too_long(field, canonical, n);
        } else {
            let open = self.request.start_field(&self.tables.spec(field).tag);
            name.write(self.request.value());
            self.request.finish_field(open);
        }
        self.scratch = scratch;
    }

    /// ICD §6: the middle name becomes an initial, then the first name is
    /// cut. Should the last name (with its suffix) still not leave room,
    /// the middle initial and then the suffix go too. Each step is a warning.
    fn shorten<'n>(&mut self, field: CletsField, canonical: FieldPath, mut name: Name<'n>) -> Name<'n> {
        let tables = self.tables;
        let (tag, max) = (&tables.spec(field).tag, tables.spec(field).max);
        let mut shortened = |part: &str, what: &str| {
            self.warnings.push(FieldError::new(
                ErrorCode::Shortened,
                format!("{canonical}.{part}"),
                format!("CARPOS {tag} is at most {max} characters: {what}"),
            ));
        };
        if name.len() > max
            && let Some(m) = name.middle.filter(|m| m.len() > 1)
        {
            name.middle = Some(&m[..1]);
            shortened("middle", "the middle name was sent as an initial");
        }
        if name.len() > max
            && let Some(f) = name.first
        {
            let keep = f.len().saturating_sub(name.len() - max);
            name.first = (keep > 0).then(|| &f[..keep]);
            shortened("first", "the first name was cut");
        }
        if name.len() > max && name.middle.is_some() {
            name.middle = None;
            shortened("middle", "the middle initial was left out");
        }
        if name.len() > max && name.suffix.is_some() {
            name.suffix = None;
            shortened("suffix", "the suffix was left out");
        }
        name
    }
}

/// A composite name's sanitised parts (CLETS text: ASCII bytes).
#[derive(Debug, Clone, Copy)]
struct Name<'a> {
    last: Option<&'a [u8]>,
    suffix: Option<&'a [u8]>,
    first: Option<&'a [u8]>,
    middle: Option<&'a [u8]>,
}

impl Name<'_> {
    /// The length of `LAST SUFFIX, FIRST MIDDLE` (ASCII: bytes are characters).
    fn len(&self) -> usize {
        let given = match (self.first, self.middle) {
            (Some(f), Some(m)) => 2 + f.len() + 1 + m.len(),
            (Some(g), None) | (None, Some(g)) => 2 + g.len(),
            (None, None) => 0,
        };
        self.last.map_or(0, <[u8]>::len) + self.suffix.map_or(0, |s| 1 + s.len()) + given
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.last.unwrap_or_default());
        if let Some(s) = self.suffix {
            out.push(b' ');
            out.extend_from_slice(s);
        }
        let mut given = [self.first, self.middle].into_iter().flatten();
        if let Some(g) = given.next() {
            out.extend_from_slice(b", ");
            out.extend_from_slice(g);
            for g in given {
                out.push(b' ');
                out.extend_from_slice(g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, ProtectedPerson, RestrainedPerson};
    use std::path::Path;

    fn tables() -> CletsTables {
        CletsTables::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/clets.toml")).unwrap()
    }

    fn name(last: &str, first: &str, middle: &str) -> PersonName {
        PersonName {
            last: Some(last.into()),
            first: Some(first.into()),
            middle: (!middle.is_empty()).then(|| middle.into()),
            suffix: None,
        }
    }

    fn issue() -> OrderMessage {
        let mut m = OrderMessage {
            court_ori: "CA034025J".into(),
            action: Some(Action::Issue),
            sequence: Some(1),
            ..Default::default()
        };
        m.order.order_number = Some("24DV01234".into());
        m.order.case_number = Some("24FL001234".into());
        m.order.order_type = Some("DV".into());
        m.order.issue_date = NaiveDate::from_ymd_opt(2026, 11, 25);
        m.order.expiration = NaiveDate::from_ymd_opt(2031, 11, 25).and_then(|d| d.and_hms_opt(23, 59, 0));
        m.order.brady = Some("Y".into());
        m.order.condition_codes = vec!["01".into(), "05".into(), "07".into()];
        m.order.condition_text = Some("STAY AWAY.".into());
        m.restrained_person = Some(RestrainedPerson {
            name: name("DOE", "JOHN", "ALLEN"),
            birth_date: NaiveDate::from_ymd_opt(1985, 2, 14),
            sex: Some("M".into()),
            race: Some("W".into()),
            ..Default::default()
        });
        m.protected_persons = vec![ProtectedPerson {
            name: name("DOE", "JANE", "B"),
            sex: Some("F".into()),
            ..Default::default()
        }];
        m
    }

    /// An ISSUE becomes an EPO with the §6 fields in table order.
    #[test]
    fn issue_becomes_epo_in_field_order() {
        let t = translate(&issue(), None, 0, &tables()).unwrap();
        let text = t.request.to_text();
        assert!(text.starts_with("EPO.CA034025J."), "{text}");
        assert!(
            text.contains(".NAM/DOE, JOHN ALLEN.SEX/M.RAC/W.DOB/19850214.PNO/24DV01234."),
            "{text}"
        );
        assert!(
            text.contains(".EXP/20311125.EXT/2359.BRD/Y.PCO/01.PCO/05.PCO/07.PPN/DOE, JANE B.PSX/F.MIS/STAY AWAY ."),
            "{text}"
        );
        assert_eq!(t.warnings.len(), 1, "the '.' in MIS is a warning: {:?}", t.warnings);
    }

    /// The MCN is 20 characters, deterministic, and carries sequence and revision.
    #[test]
    fn mcn_is_deterministic() {
        let a = mcn("CA034025J", "24DV01234", 1, 0);
        assert_eq!(a.len(), 20);
        assert!(a.starts_with("00010"));
        assert_eq!(a, mcn("CA034025J", "24DV01234", 1, 0));
        assert_ne!(a[5..], mcn("CA034025J", "24DV01235", 1, 0)[5..]);
    }

    /// A long composite name loses its middle name first, then first-name letters, with warnings.
    #[test]
    fn long_names_are_shortened_with_warnings() {
        let mut m = issue();
        m.restrained_person.as_mut().unwrap().name = name("WOLFESCHLEGELSTEINHAUSEN", "MAXIMILIAN", "ALEXANDER");
        let t = translate(&m, None, 0, &tables()).unwrap();
        let nam = t.request.get("NAM").unwrap();
        assert!(nam.len() <= 30, "{nam}");
        assert!(nam.starts_with("WOLFESCHLEGELSTEINHAUSEN, "), "{nam}");
        assert_eq!(t.warnings.iter().filter(|w| w.code == ErrorCode::Shortened).count(), 2);
    }

    /// A legal 30-character last name still fits NAM: the given names give way, with warnings.
    #[test]
    fn thirty_character_last_name_fits() {
        let mut m = issue();
        m.restrained_person.as_mut().unwrap().name = name("ABCDEFGHIJKLMNOPQRSTUVWXYZABCD", "JOHN", "ALLEN");
        let t = translate(&m, None, 0, &tables()).unwrap();
        assert_eq!(t.request.get("NAM"), Some("ABCDEFGHIJKLMNOPQRSTUVWXYZABCD"));
        assert!(t.warnings.iter().any(|w| w.field.ends_with(".first")));
    }

    /// Keys after EPO need the NIC; without it translation fails.
    #[test]
    fn modify_needs_the_nic() {
        let mut m = issue();
        m.action = Some(Action::Modify);
        m.sequence = Some(2);
        assert!(translate(&m, None, 0, &tables()).is_err());
        let t = translate(&m, Some("H000000001"), 0, &tables()).unwrap();
        assert!(t.request.to_text().starts_with("MPO.CA034025J.00020"));
        assert_eq!(t.request.fields().next(), Some(("NIC", "H000000001")));
    }

    /// A canonical code with no CLETS equivalent is INVALID_CODE, not passed through.
    #[test]
    fn unknown_code_is_invalid_code() {
        let mut m = issue();
        m.order.brady = Some("Q".into());
        let errs = translate(&m, None, 0, &tables()).unwrap_err();
        assert_eq!(errs[0].code, ErrorCode::InvalidCode);
        assert_eq!(errs[0].field, "order.brady");
    }
}
