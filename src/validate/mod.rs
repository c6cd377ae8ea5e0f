//! Stateless validation of one canonical order message (ICD §0, §2, §4).
//!
//! # Design note
//!
//! Every format's reader turns bytes into the same [`OrderMessage`]; this
//! module then checks what a message must say, the same way for XML and
//! fixed-width, without the store: fields required per action, formats,
//! maximum lengths, codes against [`CodeLists`], dates in order, the sequence
//! rules a single message shows, and that the court is who it says it is.
//! Checks that need the order's history (sequence gaps, closed orders,
//! conflicts) belong to a later step. `porter validate` runs exactly these
//! checks offline.
//!
//! Every check runs and every problem is reported, each as a [`FieldError`]
//! naming the canonical field, where the reader saw it (from [`Locations`];
//! for a field that is absent, the nearest enclosing part that was seen —
//! `restrained_person`, then `message`), and a sentence saying why.
//!
//! Choices the ICD leaves open:
//! - More than 9 protected persons or condition codes is `INVALID_FORMAT`
//!   (the count, not a value, is wrong), on `protected_persons` or
//!   `order.condition_codes`.
//! - Lengths count characters, not bytes (XML is UTF-8).
//! - Beyond the ICD's lists: a height's inches must be 00–11, a weight is at
//!   most 3 digits (`TOO_LONG`, as CLETS `WGT`), and state codes are two
//!   letters (`INVALID_FORMAT`).
//! - An `ORI_MISMATCH` for the AMQP `user_id` is on the field `user_id` and
//!   has no location (it is a property, not part of the body).
//! - A value that is present but blank counts as missing.
//! - A full order's driver license number needs its state (`MISSING` on
//!   `restrained_person.driver_license.state`): CARPOS takes OLN only with
//!   OLS.
//! - A court ORI that is not an ORI is `INVALID_FORMAT` only; `ORI_MISMATCH`
//!   is for a well-formed ORI that is not the queue's court.
//! - An issue date is all a stateless check can compare dates with: a
//!   TERMINATE's termination date is not checked against the order's issue
//!   date here.
//!
//! The reader's format errors and these errors are combined with [`merge`],
//! which drops a validation error about a field the reader already rejected.

use chrono::NaiveDate;

use crate::mapping::codes::{CodeList, CodeLists};
use crate::model::{Action, ErrorCode, FieldError, FieldPath, Locations, OrderMessage, RestrainedPerson, Text};

/// Maximum lengths, in characters (ICD §0, §2, §6).
pub mod limits {
    pub const ORDER_NUMBER: usize = 15;
    pub const CASE_NUMBER: usize = 20;
    pub const LAST_NAME: usize = 30;
    pub const FIRST_NAME: usize = 20;
    pub const MIDDLE_NAME: usize = 20;
    pub const SUFFIX: usize = 3;
    pub const CONDITION_TEXT: usize = 500;
    pub const CANCEL_REASON: usize = 60;
    pub const SERVED_BY: usize = 30;
    pub const JUDICIAL_OFFICER: usize = 30;
    pub const STREET: usize = 40;
    pub const CITY: usize = 20;
    pub const DL_NUMBER: usize = 20;
    pub const FORM_ID: usize = 8;
    pub const WEIGHT: usize = 3;
    /// Protected persons per order.
    pub const PROTECTED_PERSONS: usize = 9;
    /// Condition (PCO) codes per order.
    pub const CONDITION_CODES: usize = 9;
}

/// What validation needs besides the message: where it arrived, who sent it,
/// and the code lists.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    /// The court ORI of the queue the message came from (`por.inbound.<ORI>`).
    pub queue_court_ori: &'a str,
    /// The AMQP `user_id` property, when the publisher set one.
    pub user_id: Option<&'a str>,
    /// The court's configured AMQP users.
    pub amqp_users: &'a [String],
    /// The canonical code lists.
    pub codes: &'a CodeLists,
}

/// Checks one message; returns every problem found (empty when valid).
pub fn validate(msg: &OrderMessage, locations: &Locations, ctx: &ValidationContext<'_>) -> Vec<FieldError> {
    let mut c = Check {
        locations,
        codes: ctx.codes,
        errors: Vec::new(),
    };
    c.header(msg, ctx);
    c.per_action(msg);
    c.order(msg);
    c.restrained(msg);
    c.protected(msg);
    c.service(msg);
    c.errors
}

/// Combines the reader's errors with the validator's: the validator's errors
/// about a field the reader already reported, or a field inside it, are
/// dropped (an impossible issue date is `INVALID_DATE`, not also `MISSING`).
pub fn merge(parse: Vec<FieldError>, validation: Vec<FieldError>) -> Vec<FieldError> {
    let covered = |field: &str| {
        parse.iter().any(|p| {
            field == p.field
                || field
                    .strip_prefix(p.field.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    };
    let kept: Vec<FieldError> = validation.into_iter().filter(|v| !covered(&v.field)).collect();
    let mut all = parse;
    all.extend(kept);
    all
}

/// The field's location, or that of the nearest enclosing part the reader
/// saw, or `message`'s.
pub fn locate(locations: &Locations, field: &str) -> Option<String> {
    let mut path = field;
    loop {
        if let Some(l) = locations.get(path) {
            return Some(l);
        }
        match path.rfind(['.', '[']) {
            Some(i) => path = &path[..i],
            None => return locations.get("message"),
        }
    }
}

/// A path without index.
const fn p(path: &'static str) -> FieldPath {
    FieldPath::new(path)
}

/// A value that is present and not blank.
fn present(v: &Option<Text>) -> Option<&str> {
    // A first byte that is printable ASCII, not a space, settles it.
    let blank = |s: &str| match s.as_bytes().first() {
        Some(b'!'..=b'~') => false,
        _ => s.trim().is_empty(),
    };
    v.as_deref().filter(|s| !blank(s))
}

/// 9 characters `[A-Z0-9]`.
pub fn is_ori(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `[A-Z0-9-]`, at least one character.
fn is_order_number(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

struct Check<'a> {
    locations: &'a Locations,
    codes: &'a CodeLists,
    errors: Vec<FieldError>,
}

impl Check<'_> {
    /// Records an error; the field's path and location become text only here.
    /// Cold: a valid message never gets here, so the code that builds an
    /// error is kept out of the checks' way.
    #[cold]
    fn error(&mut self, code: ErrorCode, field: FieldPath, text: impl Into<String>) {
        let mut e = FieldError::new(code, field, text);
        e.location = locate(self.locations, &e.field);
        self.errors.push(e);
    }

    #[cold]
    fn missing(&mut self, field: FieldPath, what: &str) {
        self.error(ErrorCode::Missing, field, format!("{what} is required"));
    }

    /// MISSING unless the value is present.
    fn require(&mut self, field: FieldPath, v: &Option<Text>, what: &str) {
        if present(v).is_none() {
            self.missing(field, what);
        }
    }

    fn require_some<T>(&mut self, field: FieldPath, v: &Option<T>, what: &str) {
        if v.is_none() {
            self.missing(field, what);
        }
    }

    fn max_len(&mut self, field: FieldPath, v: &Option<Text>, max: usize) {
        // Characters are at most bytes: count them only for a long value.
        if let Some(s) = v.as_deref().filter(|s| s.len() > max) {
            let n = s.chars().count();
            if n > max {
                self.error(ErrorCode::TooLong, field, format!("{n} characters; at most {max}"));
            }
        }
    }

    fn code(&mut self, field: FieldPath, v: &Option<Text>, list: CodeList) {
        if let Some(s) = present(v) {
            self.code_value(field, s, list);
        }
    }

    fn code_value(&mut self, field: FieldPath, s: &str, list: CodeList) {
        if self.codes.contains(list, s) {
            return;
        }
        let known: Vec<&str> = self.codes.codes(list).collect();
        let text = if known.len() <= 15 {
            format!(
                "'{s}' is not a {} code ({})",
                list.key().replace('_', " "),
                known.join(" ")
            )
        } else {
            format!("'{s}' is not a {} code", list.key().replace('_', " "))
        };
        self.error(ErrorCode::InvalidCode, field, text);
    }

    fn ori(&mut self, field: FieldPath, s: &str) -> bool {
        if is_ori(s) {
            return true;
        }
        self.error(
            ErrorCode::InvalidFormat,
            field,
            format!("'{s}' is not an ORI: 9 characters, A-Z and 0-9"),
        );
        false
    }

    fn born_after_issue(&mut self, field: FieldPath, birth: Option<NaiveDate>, issue: Option<NaiveDate>) {
        if let (Some(b), Some(i)) = (birth, issue)
            && b > i
        {
            self.error(
                ErrorCode::InvalidDate,
                field,
                format!("birth date {b} is after the issue date {i}"),
            );
        }
    }

    fn header(&mut self, msg: &OrderMessage, ctx: &ValidationContext<'_>) {
        let ori = msg.court_ori.trim();
        if ori.is_empty() {
            self.missing(p("court_ori"), "the court ORI");
        } else if self.ori(p("court_ori"), &msg.court_ori) && msg.court_ori != ctx.queue_court_ori {
            self.error(
                ErrorCode::OriMismatch,
                p("court_ori"),
                format!(
                    "the message names court {} but arrived on the queue of court {}",
                    msg.court_ori, ctx.queue_court_ori
                ),
            );
        }
        if let Some(user) = ctx.user_id
            && !ctx.amqp_users.iter().any(|u| u == user)
        {
            self.errors.push(FieldError::new(
                ErrorCode::OriMismatch,
                "user_id",
                format!(
                    "AMQP user '{user}' is not one of the users configured for court {}",
                    ctx.queue_court_ori
                ),
            ));
        }
        if msg.action.is_none() {
            self.missing(p("action"), "the action");
        }
        match (msg.sequence, msg.action) {
            (None, _) => self.missing(p("sequence"), "the sequence"),
            (Some(0), _) => self.error(
                ErrorCode::InvalidSequence,
                p("sequence"),
                "sequence 0: sequences start at 1",
            ),
            (Some(1), Some(a)) if a != Action::Issue => self.error(
                ErrorCode::InvalidSequence,
                p("sequence"),
                format!("sequence 1 is the order's ISSUE; a {} comes later", a.name()),
            ),
            // The MCN carries the sequence in 4 digits (ICD §5), as does
            // fixed-width; a larger one would reuse an earlier MCN.
            (Some(n), _) if n > 9999 => self.error(
                ErrorCode::InvalidSequence,
                p("sequence"),
                format!("sequence {n}: at most 9999 messages per order"),
            ),
            _ => {}
        }
    }

    fn order(&mut self, msg: &OrderMessage) {
        let o = &msg.order;
        match present(&o.order_number) {
            None => self.missing(p("order.order_number"), "the order number"),
            Some(n) => {
                self.max_len(p("order.order_number"), &o.order_number, limits::ORDER_NUMBER);
                if !is_order_number(n) {
                    self.error(
                        ErrorCode::InvalidFormat,
                        p("order.order_number"),
                        format!("'{n}' has characters other than A-Z, 0-9 and '-'"),
                    );
                }
            }
        }
        self.require(p("order.order_type"), &o.order_type, "the order type");
        self.code(p("order.order_type"), &o.order_type, CodeList::OrderType);
        self.max_len(p("order.case_number"), &o.case_number, limits::CASE_NUMBER);
        self.max_len(p("order.form_id"), &o.form_id, limits::FORM_ID);
        self.max_len(
            p("order.judicial_officer"),
            &o.judicial_officer,
            limits::JUDICIAL_OFFICER,
        );
        self.code(p("order.brady"), &o.brady, CodeList::Brady);
        self.max_len(p("order.condition_text"), &o.condition_text, limits::CONDITION_TEXT);
        self.max_len(p("order.cancel_reason"), &o.cancel_reason, limits::CANCEL_REASON);
        if o.condition_codes.len() > limits::CONDITION_CODES {
            self.error(
                ErrorCode::InvalidFormat,
                p("order.condition_codes"),
                format!(
                    "{} condition codes; at most {}",
                    o.condition_codes.len(),
                    limits::CONDITION_CODES
                ),
            );
        }
        for (i, code) in o.condition_codes.iter().enumerate() {
            self.code_value(FieldPath::at("order.condition_codes[]", i), code, CodeList::Condition);
        }
        if let (Some(exp), Some(issue)) = (o.expiration, o.issue_date)
            && exp.date() < issue
        {
            self.error(
                ErrorCode::InvalidDate,
                p("order.expiration"),
                format!("expiration {exp} is before the issue date {issue}"),
            );
        }
    }

    fn restrained(&mut self, msg: &OrderMessage) {
        let Some(rp) = &msg.restrained_person else {
            return;
        };
        self.max_len(p("restrained_person.name.last"), &rp.name.last, limits::LAST_NAME);
        self.max_len(p("restrained_person.name.first"), &rp.name.first, limits::FIRST_NAME);
        self.max_len(p("restrained_person.name.middle"), &rp.name.middle, limits::MIDDLE_NAME);
        self.max_len(p("restrained_person.name.suffix"), &rp.name.suffix, limits::SUFFIX);
        self.code(p("restrained_person.sex"), &rp.sex, CodeList::Sex);
        self.code(p("restrained_person.race"), &rp.race, CodeList::Race);
        self.code(p("restrained_person.eye"), &rp.eye, CodeList::Eye);
        self.code(p("restrained_person.hair"), &rp.hair, CodeList::Hair);
        if let Some(h) = present(&rp.height) {
            let digits = h.len() == 3 && h.bytes().all(|b| b.is_ascii_digit());
            if !digits || h[1..].parse::<u32>().is_ok_and(|inches| inches > 11) {
                self.error(
                    ErrorCode::InvalidFormat,
                    p("restrained_person.height"),
                    format!("'{h}' is not a height as FII: 3 digits, feet then inches 00-11 (510)"),
                );
            }
        }
        if let Some(w) = present(&rp.weight) {
            if !w.bytes().all(|b| b.is_ascii_digit()) {
                self.error(
                    ErrorCode::InvalidFormat,
                    p("restrained_person.weight"),
                    format!("'{w}' is not a weight in pounds: digits only"),
                );
            } else if w.len() > limits::WEIGHT {
                self.error(
                    ErrorCode::TooLong,
                    p("restrained_person.weight"),
                    format!("{} digits; at most {}", w.len(), limits::WEIGHT),
                );
            }
        }
        if let Some(r) = &rp.residence {
            self.max_len(p("restrained_person.residence.street"), &r.street, limits::STREET);
            self.max_len(p("restrained_person.residence.city"), &r.city, limits::CITY);
            self.state(p("restrained_person.residence.state"), &r.state);
            if let Some(z) = present(&r.zip)
                && !(z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit()))
            {
                self.error(
                    ErrorCode::InvalidFormat,
                    p("restrained_person.residence.zip"),
                    format!("'{z}' is not a ZIP code: 5 digits"),
                );
            }
        }
        if let Some(dl) = &rp.driver_license {
            self.max_len(
                p("restrained_person.driver_license.number"),
                &dl.number,
                limits::DL_NUMBER,
            );
            self.state(p("restrained_person.driver_license.state"), &dl.state);
        }
        self.born_after_issue(p("restrained_person.birth_date"), rp.birth_date, msg.order.issue_date);
    }

    /// CARPOS takes a driver license number (OLN) only with its state (OLS,
    /// ICD §6), and every full order goes to CLETS: a number needs its state.
    fn license_state(&mut self, rp: &RestrainedPerson) {
        if let Some(dl) = &rp.driver_license
            && present(&dl.number).is_some()
            && present(&dl.state).is_none()
        {
            self.error(
                ErrorCode::Missing,
                p("restrained_person.driver_license.state"),
                "the driver license state is required with its number (CLETS OLS goes with OLN)",
            );
        }
    }

    fn state(&mut self, field: FieldPath, v: &Option<Text>) {
        if let Some(s) = present(v)
            && !(s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()))
        {
            self.error(
                ErrorCode::InvalidFormat,
                field,
                format!("'{s}' is not a state code: 2 letters"),
            );
        }
    }

    fn protected(&mut self, msg: &OrderMessage) {
        if msg.protected_persons.len() > limits::PROTECTED_PERSONS {
            self.error(
                ErrorCode::InvalidFormat,
                p("protected_persons"),
                format!(
                    "{} protected persons; at most {}",
                    msg.protected_persons.len(),
                    limits::PROTECTED_PERSONS
                ),
            );
        }
        for (i, p) in msg.protected_persons.iter().enumerate() {
            let f = |leaf: &'static str| FieldPath::at(leaf, i);
            self.max_len(f("protected_persons[].name.last"), &p.name.last, limits::LAST_NAME);
            self.max_len(f("protected_persons[].name.first"), &p.name.first, limits::FIRST_NAME);
            self.max_len(
                f("protected_persons[].name.middle"),
                &p.name.middle,
                limits::MIDDLE_NAME,
            );
            self.max_len(f("protected_persons[].name.suffix"), &p.name.suffix, limits::SUFFIX);
            self.code(f("protected_persons[].sex"), &p.sex, CodeList::Sex);
            self.code(f("protected_persons[].race"), &p.race, CodeList::Race);
            self.code(
                f("protected_persons[].relationship"),
                &p.relationship,
                CodeList::Relationship,
            );
            self.born_after_issue(f("protected_persons[].birth_date"), p.birth_date, msg.order.issue_date);
        }
    }

    fn service(&mut self, msg: &OrderMessage) {
        let Some(s) = &msg.order.service else { return };
        self.max_len(p("order.service.served_by"), &s.served_by, limits::SERVED_BY);
        if let Some(ori) = present(&s.serving_agency_ori) {
            self.ori(p("order.service.serving_agency_ori"), ori);
        }
        self.code(p("order.service.method"), &s.method, CodeList::ServiceMethod);
    }

    /// What each action must carry (ICD §2 per-action rules).
    fn per_action(&mut self, msg: &OrderMessage) {
        let o = &msg.order;
        match msg.action {
            Some(Action::Issue | Action::Modify) => {
                self.require_some(p("order.issue_date"), &o.issue_date, "the issue date");
                // CARPOS requires OCA and BRD on EPO and MPO (ICD §6); every
                // order goes to CLETS, so a full order needs them here.
                self.require(p("order.case_number"), &o.case_number, "the case number");
                self.require(p("order.brady"), &o.brady, "the Brady indicator");
                match &msg.restrained_person {
                    None => self.missing(p("restrained_person"), "the restrained person"),
                    Some(rp) => {
                        self.require(
                            p("restrained_person.name.last"),
                            &rp.name.last,
                            "the restrained person's last name",
                        );
                        self.require(
                            p("restrained_person.name.first"),
                            &rp.name.first,
                            "the restrained person's first name",
                        );
                        self.require(p("restrained_person.sex"), &rp.sex, "the restrained person's sex");
                        self.require(p("restrained_person.race"), &rp.race, "the restrained person's race");
                        self.require_some(
                            p("restrained_person.birth_date"),
                            &rp.birth_date,
                            "the restrained person's date of birth",
                        );
                        self.license_state(rp);
                    }
                }
                if msg.protected_persons.is_empty() {
                    self.missing(p("protected_persons"), "at least one protected person");
                }
                for (i, p) in msg.protected_persons.iter().enumerate() {
                    let f = |leaf: &'static str| FieldPath::at(leaf, i);
                    self.require(
                        f("protected_persons[].name.last"),
                        &p.name.last,
                        "the protected person's last name",
                    );
                    self.require(f("protected_persons[].sex"), &p.sex, "the protected person's sex");
                }
                if o.condition_codes.is_empty() {
                    self.missing(p("order.condition_codes"), "at least one condition code");
                }
            }
            Some(Action::Terminate) => {
                self.require_some(p("order.termination_date"), &o.termination_date, "the termination date");
            }
            Some(Action::Cancel) => {
                self.require(p("order.cancel_reason"), &o.cancel_reason, "the cancel reason");
            }
            Some(Action::Service) => match &o.service {
                None => self.missing(p("order.service"), "the proof of service"),
                Some(s) => {
                    self.require_some(p("order.service.served_at"), &s.served_at, "the served date and time");
                    self.require(p("order.service.served_by"), &s.served_by, "who served the order");
                    self.require(
                        p("order.service.serving_agency_ori"),
                        &s.serving_agency_ori,
                        "the serving agency's ORI",
                    );
                    self.require(p("order.service.method"), &s.method, "the service method");
                }
            },
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
