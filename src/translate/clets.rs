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

use chrono::{NaiveDate, NaiveDateTime};
use data_encoding::BASE32;
use sha2::{Digest, Sha256};

use crate::formats::clets::CletsRequest;
use crate::mapping::clets::CletsTables;
use crate::model::{ErrorCode, FieldError, OrderMessage, PersonName};

use super::text::to_clets_text;

/// A request and the warnings its translation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub request: CletsRequest,
    pub warnings: Vec<FieldError>,
}

/// The message control number: `<sequence:4><revision:1><first 15 of
/// base32(SHA-256(ORI "|" order number))>` (ICD §5).
pub fn mcn(court_ori: &str, order_number: &str, sequence: u32, revision: u32) -> String {
    let digest = Sha256::digest(format!("{court_ori}|{order_number}").as_bytes());
    let b32 = BASE32.encode(&digest);
    format!("{:04}{}{}", sequence % 10_000, revision % 10, &b32[..15])
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
    let mut t = Translator {
        msg,
        nic,
        tables,
        fields: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let Some(action) = msg.action else {
        return Err(vec![FieldError::new(
            ErrorCode::Missing,
            "action",
            "the action is required",
        )]);
    };
    let order_number = msg.order_number().unwrap_or_default();
    let mke = tables.message_key(action).to_string();
    for field in tables.field_order(&mke) {
        t.field(field);
    }
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    let request = CletsRequest {
        mke,
        ori: msg.court_ori.clone(),
        mcn: mcn(&msg.court_ori, order_number, msg.sequence.unwrap_or(0), revision),
        fields: t.fields,
    };
    Ok(Translation {
        request,
        warnings: t.warnings,
    })
}

struct Translator<'a> {
    msg: &'a OrderMessage,
    nic: Option<&'a str>,
    tables: &'a CletsTables,
    fields: Vec<(String, String)>,
    warnings: Vec<FieldError>,
    errors: Vec<FieldError>,
}

fn date(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

fn time(t: NaiveDateTime) -> String {
    t.format("%H%M").to_string()
}

impl<'a> Translator<'a> {
    fn field(&mut self, name: &str) {
        let m = self.msg;
        let o = &m.order;
        let r = m.restrained_person.as_ref();
        let svc = o.service.as_ref();
        match name {
            "nic" => match self.nic {
                Some(nic) => self.push_raw("nic", nic.to_string()),
                None => self.errors.push(FieldError::new(
                    ErrorCode::UnknownOrder,
                    "nic",
                    "no CARPOS record id (NIC) is known for this order yet",
                )),
            },
            "name" => {
                if let Some(r) = r {
                    self.composite_name("name", "restrained_person.name", &r.name, true);
                }
            }
            "sex" => self.code("sex", "sex", "restrained_person.sex", r.and_then(|r| r.sex.as_deref())),
            "race" => self.code(
                "race",
                "race",
                "restrained_person.race",
                r.and_then(|r| r.race.as_deref()),
            ),
            "dob" => self.opt_raw("dob", r.and_then(|r| r.birth_date).map(date)),
            "height" => self.text(
                "height",
                "restrained_person.height",
                r.and_then(|r| r.height.as_deref()),
            ),
            "weight" => self.text(
                "weight",
                "restrained_person.weight",
                r.and_then(|r| r.weight.as_deref()),
            ),
            "eye" => self.code("eye", "eye", "restrained_person.eye", r.and_then(|r| r.eye.as_deref())),
            "hair" => self.code(
                "hair",
                "hair",
                "restrained_person.hair",
                r.and_then(|r| r.hair.as_deref()),
            ),
            "oln" => {
                let dl = r.and_then(|r| r.driver_license.as_ref());
                self.text(
                    "oln",
                    "restrained_person.driver_license.number",
                    dl.and_then(|d| d.number.as_deref()),
                )
            }
            "ols" => {
                let dl = r.and_then(|r| r.driver_license.as_ref());
                if dl.and_then(|d| d.number.as_deref()).is_some() {
                    self.text(
                        "ols",
                        "restrained_person.driver_license.state",
                        dl.and_then(|d| d.state.as_deref()),
                    )
                }
            }
            "pno" => self.text("pno", "order.order_number", o.order_number.as_deref()),
            "oca" => self.text("oca", "order.case_number", o.case_number.as_deref()),
            "typ" => self.code("typ", "order_type", "order.order_type", o.order_type.as_deref()),
            "isd" => self.opt_raw("isd", o.issue_date.map(date)),
            "exp" => match o.expiration {
                Some(e) => self.push_raw("exp", date(e.date())),
                None => self.push_raw("exp", "NONEXP".into()),
            },
            "ext" => self.opt_raw("ext", o.expiration.map(time)),
            "brady" => self.code("brady", "brady", "order.brady", o.brady.as_deref()),
            "pco" => {
                for (i, c) in o.condition_codes.iter().enumerate() {
                    self.code("pco", "pco", &format!("order.condition_codes[{i}]"), Some(c));
                }
            }
            "protected" => {
                for (i, p) in m.protected_persons.iter().enumerate() {
                    let base = format!("protected_persons[{i}]");
                    self.composite_name("ppn", &format!("{base}.name"), &p.name, false);
                    self.code("psx", "sex", &format!("{base}.sex"), p.sex.as_deref());
                    self.code("ppr", "race", &format!("{base}.race"), p.race.as_deref());
                    self.opt_raw("ppb", p.birth_date.map(date));
                }
            }
            "mis" => self.text("mis", "order.condition_text", o.condition_text.as_deref()),
            "doc" => self.opt_raw("doc", o.termination_date.map(date)),
            "rea" => self.text("rea", "order.cancel_reason", o.cancel_reason.as_deref()),
            "svd" => self.opt_raw("svd", svc.and_then(|s| s.served_at).map(|t| date(t.date()))),
            "svt" => self.opt_raw("svt", svc.and_then(|s| s.served_at).map(time)),
            "svb" => self.text(
                "svb",
                "order.service.served_by",
                svc.and_then(|s| s.served_by.as_deref()),
            ),
            "sva" => self.text(
                "sva",
                "order.service.serving_agency_ori",
                svc.and_then(|s| s.serving_agency_ori.as_deref()),
            ),
            "svm" => self.code(
                "svm",
                "service_method",
                "order.service.method",
                svc.and_then(|s| s.method.as_deref()),
            ),
            other => self.errors.push(FieldError::new(
                ErrorCode::InvalidFormat,
                other,
                "mappings/clets.toml names a field the translator does not know",
            )),
        }
    }

    fn push_raw(&mut self, field: &str, value: String) {
        let tag = self.tables.field(field).tag.clone();
        self.fields.push((tag, value));
    }

    fn opt_raw(&mut self, field: &str, value: Option<String>) {
        if let Some(v) = value {
            self.push_raw(field, v);
        }
    }

    /// Sanitises free text; `None` or empty is omitted.
    fn text(&mut self, field: &str, canonical: &str, value: Option<&str>) {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return;
        };
        if let Some(v) = self.sanitize(canonical, value) {
            self.push_checked(field, canonical, v);
        }
    }

    fn push_checked(&mut self, field: &str, canonical: &str, value: String) {
        let max = self.tables.field(field).max;
        if value.chars().count() > max {
            self.errors.push(FieldError::new(
                ErrorCode::TooLong,
                canonical,
                format!(
                    "{} characters; CLETS {} allows at most {max}",
                    value.chars().count(),
                    self.tables.field(field).tag
                ),
            ));
            return;
        }
        self.push_raw(field, value);
    }

    fn sanitize(&mut self, canonical: &str, value: &str) -> Option<String> {
        match to_clets_text(value) {
            Ok((v, changes)) => {
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
                Some(v)
            }
            Err(c) => {
                self.errors.push(FieldError::new(
                    ErrorCode::InvalidFormat,
                    canonical,
                    format!("character U+{:04X} cannot be transliterated to ASCII", c as u32),
                ));
                None
            }
        }
    }

    fn code(&mut self, field: &str, table: &str, canonical: &str, value: Option<&str>) {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        match self.tables.code(table, value) {
            Some(c) => {
                let c = c.to_string();
                self.push_checked(field, canonical, c)
            }
            None => self.errors.push(FieldError::new(
                ErrorCode::InvalidCode,
                canonical,
                format!("code {value:?} has no CLETS equivalent in the {table} table"),
            )),
        }
    }

    /// `LAST SUFFIX, FIRST MIDDLE`, shortened as ICD §6 describes.
    fn composite_name(&mut self, field: &str, canonical: &str, name: &PersonName, with_suffix: bool) {
        let part = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut pieces = Vec::new();
        for p in [&name.last, &name.suffix, &name.first, &name.middle] {
            pieces.push(part(p).and_then(|v| self.sanitize(canonical, &v)));
        }
        let [last, suffix, first, middle]: [Option<String>; 4] = pieces.try_into().unwrap_or_default();
        let mut suffix = if with_suffix { suffix } else { None };
        let max = self.tables.field(field).max;
        let tag = self.tables.field(field).tag.clone();
        let compose = |first: &Option<String>, middle: &Option<String>, suffix: &Option<String>| {
            let mut s = last.clone().unwrap_or_default();
            if let Some(x) = suffix {
                s.push(' ');
                s.push_str(x);
            }
            let given: Vec<&str> = [first, middle].into_iter().flatten().map(String::as_str).collect();
            if !given.is_empty() {
                s.push_str(", ");
                s.push_str(&given.join(" "));
            }
            s
        };
        let mut middle = middle;
        let mut first = first;
        let mut value = compose(&first, &middle, &suffix);
        let shortened = |part: &str, what: &str, warnings: &mut Vec<FieldError>| {
            warnings.push(FieldError::new(
                ErrorCode::Shortened,
                format!("{canonical}.{part}"),
                format!("CARPOS {tag} is at most {max} characters: {what}"),
            ));
        };
        // ICD §6: the middle name becomes an initial, then the first name is
        // cut. Should the last name (with its suffix) still not leave room,
        // the middle initial and then the suffix go too.
        if value.len() > max && middle.as_ref().is_some_and(|m| m.len() > 1) {
            middle = middle.map(|m| m[..1].to_string());
            value = compose(&first, &middle, &suffix);
            shortened("middle", "the middle name was sent as an initial", &mut self.warnings);
        }
        if value.len() > max && first.is_some() {
            let over = value.len() - max;
            let f = first.take().unwrap_or_default();
            let keep = f.len().saturating_sub(over);
            first = (keep > 0).then(|| f[..keep].to_string());
            value = compose(&first, &middle, &suffix);
            shortened("first", "the first name was cut", &mut self.warnings);
        }
        if value.len() > max && middle.is_some() {
            middle = None;
            value = compose(&first, &middle, &suffix);
            shortened("middle", "the middle initial was left out", &mut self.warnings);
        }
        if value.len() > max && suffix.is_some() {
            suffix = None;
            value = compose(&first, &middle, &suffix);
            shortened("suffix", "the suffix was left out", &mut self.warnings);
        }
        self.push_checked(field, canonical, value);
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
        assert_eq!(t.request.fields[0], ("NIC".into(), "H000000001".into()));
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
