//! The canonical fields a layout may fill, by their canonical path, and how a
//! read value is stored into the [`OrderMessage`].
//!
//! A layout names its targets by path (`restrained_person.name.last`,
//! `protected_persons[].sex`); this table is the one place that ties those
//! paths to the model, so a layout file needs no code.

use chrono::{NaiveDate, NaiveDateTime};

use crate::model::{
    Action, Address, DriverLicense, FieldPath, OrderMessage, PersonName, ProtectedPerson, RestrainedPerson, Service,
    Text,
};

/// What kind of value a canonical field holds, which decides the layout
/// field types that may fill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string: `text`, `code` or `digits` fields.
    Text,
    /// An unsigned number: `number` fields.
    Number,
    /// A calendar date: `date` fields.
    Date,
    /// A civil date and time: a `date` plus a `time` field, or one `datetime` field.
    DateTime,
    /// Yes/no: `flag` fields.
    Bool,
    /// The message's action: `action` fields.
    Action,
    /// A list of short codes: `codes` fields.
    List,
}

/// A canonical field a layout field can be mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    CourtOri,
    Action,
    Sequence,
    OrderNumber,
    CaseNumber,
    OrderType,
    FormId,
    IssueDate,
    Expiration,
    JudicialOfficer,
    Brady,
    ConditionText,
    ConditionCodes,
    FirearmRelinquishment,
    TerminationDate,
    CancelReason,
    ServedAt,
    ServedBy,
    ServingAgencyOri,
    ServiceMethod,
    RpLast,
    RpFirst,
    RpMiddle,
    RpSuffix,
    RpBirthDate,
    RpSex,
    RpRace,
    RpHeight,
    RpWeight,
    RpEye,
    RpHair,
    RpStreet,
    RpCity,
    RpState,
    RpZip,
    RpDlNumber,
    RpDlState,
    PpLast,
    PpFirst,
    PpMiddle,
    PpSuffix,
    PpBirthDate,
    PpSex,
    PpRace,
    PpRelationship,
}

/// Every target with its path (as written in a layout) and its kind.
/// `[]` marks a list element: the n-th record of the record type (0-based).
const TARGETS: &[(&str, Target, Kind)] = &[
    ("court_ori", Target::CourtOri, Kind::Text),
    ("action", Target::Action, Kind::Action),
    ("sequence", Target::Sequence, Kind::Number),
    ("order.order_number", Target::OrderNumber, Kind::Text),
    ("order.case_number", Target::CaseNumber, Kind::Text),
    ("order.order_type", Target::OrderType, Kind::Text),
    ("order.form_id", Target::FormId, Kind::Text),
    ("order.issue_date", Target::IssueDate, Kind::Date),
    ("order.expiration", Target::Expiration, Kind::DateTime),
    ("order.judicial_officer", Target::JudicialOfficer, Kind::Text),
    ("order.brady", Target::Brady, Kind::Text),
    ("order.condition_text", Target::ConditionText, Kind::Text),
    ("order.condition_codes", Target::ConditionCodes, Kind::List),
    (
        "order.firearm_relinquishment",
        Target::FirearmRelinquishment,
        Kind::Bool,
    ),
    ("order.termination_date", Target::TerminationDate, Kind::Date),
    ("order.cancel_reason", Target::CancelReason, Kind::Text),
    ("order.service.served_at", Target::ServedAt, Kind::DateTime),
    ("order.service.served_by", Target::ServedBy, Kind::Text),
    ("order.service.serving_agency_ori", Target::ServingAgencyOri, Kind::Text),
    ("order.service.method", Target::ServiceMethod, Kind::Text),
    ("restrained_person.name.last", Target::RpLast, Kind::Text),
    ("restrained_person.name.first", Target::RpFirst, Kind::Text),
    ("restrained_person.name.middle", Target::RpMiddle, Kind::Text),
    ("restrained_person.name.suffix", Target::RpSuffix, Kind::Text),
    ("restrained_person.birth_date", Target::RpBirthDate, Kind::Date),
    ("restrained_person.sex", Target::RpSex, Kind::Text),
    ("restrained_person.race", Target::RpRace, Kind::Text),
    ("restrained_person.height", Target::RpHeight, Kind::Text),
    ("restrained_person.weight", Target::RpWeight, Kind::Text),
    ("restrained_person.eye", Target::RpEye, Kind::Text),
    ("restrained_person.hair", Target::RpHair, Kind::Text),
    ("restrained_person.residence.street", Target::RpStreet, Kind::Text),
    ("restrained_person.residence.city", Target::RpCity, Kind::Text),
    ("restrained_person.residence.state", Target::RpState, Kind::Text),
    ("restrained_person.residence.zip", Target::RpZip, Kind::Text),
    (
        "restrained_person.driver_license.number",
        Target::RpDlNumber,
        Kind::Text,
    ),
    ("restrained_person.driver_license.state", Target::RpDlState, Kind::Text),
    ("protected_persons[].name.last", Target::PpLast, Kind::Text),
    ("protected_persons[].name.first", Target::PpFirst, Kind::Text),
    ("protected_persons[].name.middle", Target::PpMiddle, Kind::Text),
    ("protected_persons[].name.suffix", Target::PpSuffix, Kind::Text),
    ("protected_persons[].birth_date", Target::PpBirthDate, Kind::Date),
    ("protected_persons[].sex", Target::PpSex, Kind::Text),
    ("protected_persons[].race", Target::PpRace, Kind::Text),
    ("protected_persons[].relationship", Target::PpRelationship, Kind::Text),
];

impl Target {
    /// The target a layout path names, if any.
    pub(crate) fn parse(path: &str) -> Option<Target> {
        TARGETS.iter().find(|(p, _, _)| *p == path).map(|(_, t, _)| *t)
    }

    /// The path as written in a layout (`protected_persons[].sex`).
    pub(crate) fn template(self) -> &'static str {
        self.entry().0
    }

    pub(crate) fn kind(self) -> Kind {
        self.entry().2
    }

    /// This target's row of [`TARGETS`], which lists the targets in
    /// declaration order (checked by a test).
    fn entry(self) -> &'static (&'static str, Target, Kind) {
        &TARGETS[self as usize]
    }

    /// True for fields of a list element (`protected_persons[]`).
    pub(crate) fn indexed(self) -> bool {
        use Target as T;
        matches!(
            self,
            T::PpLast
                | T::PpFirst
                | T::PpMiddle
                | T::PpSuffix
                | T::PpBirthDate
                | T::PpSex
                | T::PpRace
                | T::PpRelationship
        )
    }

    /// The canonical path of this target in the `index`-th record of its
    /// type, as a [`FieldPath`] (made text only for an error).
    pub(crate) fn field_path(self, index: usize) -> FieldPath {
        if self.indexed() {
            FieldPath::at(self.template(), index)
        } else {
            FieldPath::new(self.template())
        }
    }

    /// The path of the `index`-th element of a list target
    /// (`order.condition_codes[2]`); the target itself for any other.
    pub(crate) fn element_path(self, index: usize) -> FieldPath {
        match self {
            Target::ConditionCodes => FieldPath::at("order.condition_codes[]", index),
            other => other.field_path(index),
        }
    }

    /// The canonical path of this target in the `index`-th record of its type.
    pub(crate) fn path(self, index: usize) -> String {
        self.field_path(index).to_string()
    }

    /// Every target, in table order.
    pub(crate) fn all() -> impl Iterator<Item = Target> {
        TARGETS.iter().map(|(_, t, _)| *t)
    }

    /// Every known layout path, for error messages.
    pub(crate) fn known_paths() -> impl Iterator<Item = &'static str> {
        TARGETS.iter().map(|(p, _, _)| *p)
    }
}

/// A record's container: the part of the message a whole record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Message,
    Order,
    RestrainedPerson,
    ProtectedPersons,
    Service,
}

const CONTAINERS: &[(&str, Container)] = &[
    ("message", Container::Message),
    ("order", Container::Order),
    ("restrained_person", Container::RestrainedPerson),
    ("protected_persons[]", Container::ProtectedPersons),
    ("order.service", Container::Service),
];

impl Container {
    pub(crate) fn parse(path: &str) -> Option<Container> {
        CONTAINERS.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
    }

    pub(crate) fn template(self) -> &'static str {
        match self {
            Container::Message => "message",
            Container::Order => "order",
            Container::RestrainedPerson => "restrained_person",
            Container::ProtectedPersons => "protected_persons[]",
            Container::Service => "order.service",
        }
    }

    pub(crate) fn indexed(self) -> bool {
        self == Container::ProtectedPersons
    }

    pub(crate) fn known_paths() -> impl Iterator<Item = &'static str> {
        CONTAINERS.iter().map(|(p, _)| *p)
    }

    /// Whether `target` lies inside this container.
    pub(crate) fn holds(self, target: Target) -> bool {
        let t = target.template();
        match self {
            Container::Message => true,
            // The order header also carries the message-level fields.
            Container::Order => !t.contains('.') || t.starts_with("order."),
            Container::RestrainedPerson => t.starts_with("restrained_person."),
            Container::ProtectedPersons => t.starts_with("protected_persons[]."),
            Container::Service => t.starts_with("order.service."),
        }
    }

    /// The canonical path of this container in the `index`-th record.
    pub(crate) fn path(self, index: usize) -> FieldPath {
        if self.indexed() {
            FieldPath::at(self.template(), index)
        } else {
            FieldPath::new(self.template())
        }
    }

    /// Makes the container exist: a record's presence creates its part of
    /// the message even when all its fields are blank.
    pub(crate) fn touch(self, msg: &mut OrderMessage, index: usize) {
        match self {
            Container::Message | Container::Order => {}
            Container::RestrainedPerson => {
                msg.restrained_person.get_or_insert_with(RestrainedPerson::default);
            }
            Container::ProtectedPersons => {
                protected(msg, index);
            }
            Container::Service => {
                msg.order.service.get_or_insert_with(Service::default);
            }
        }
    }
}

/// Replaces `[]` by `[index]`.
pub(crate) fn expand(template: &str, index: usize) -> String {
    template.replacen("[]", &format!("[{index}]"), 1)
}

/// A value read from a record, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(Text),
    Number(u32),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
    Bool(bool),
    Action(Action),
    List(Vec<Text>),
}

/// Upper bound on list indexes, so that no input can make the reader allocate
/// without limit (the ICD allows at most 9 protected persons).
const MAX_INDEX: usize = 64;

fn protected(msg: &mut OrderMessage, index: usize) -> Option<&mut ProtectedPerson> {
    if index >= MAX_INDEX {
        return None;
    }
    while msg.protected_persons.len() <= index {
        msg.protected_persons.push(ProtectedPerson::default());
    }
    msg.protected_persons.get_mut(index)
}

fn rp(msg: &mut OrderMessage) -> &mut RestrainedPerson {
    msg.restrained_person.get_or_insert_with(RestrainedPerson::default)
}

fn rp_name(msg: &mut OrderMessage) -> &mut PersonName {
    &mut rp(msg).name
}

fn residence(msg: &mut OrderMessage) -> &mut Address {
    rp(msg).residence.get_or_insert_with(Address::default)
}

fn licence(msg: &mut OrderMessage) -> &mut DriverLicense {
    rp(msg).driver_license.get_or_insert_with(DriverLicense::default)
}

fn service(msg: &mut OrderMessage) -> &mut Service {
    msg.order.service.get_or_insert_with(Service::default)
}

/// Stores `value` into the canonical field `target` (element `index` for list
/// elements). A value of the wrong kind is ignored: the layout check makes
/// that impossible, and the reader must not panic regardless.
pub(crate) fn store(msg: &mut OrderMessage, target: Target, index: usize, value: Value) {
    use Target as T;
    match value {
        Value::Text(s) => store_text(msg, target, index, s),
        Value::Number(n) => {
            if target == T::Sequence {
                msg.sequence = Some(n);
            }
        }
        Value::Date(d) => match target {
            T::IssueDate => msg.order.issue_date = Some(d),
            T::TerminationDate => msg.order.termination_date = Some(d),
            T::RpBirthDate => rp(msg).birth_date = Some(d),
            T::PpBirthDate => {
                if let Some(p) = protected(msg, index) {
                    p.birth_date = Some(d);
                }
            }
            _ => {}
        },
        Value::DateTime(dt) => match target {
            T::Expiration => msg.order.expiration = Some(dt),
            T::ServedAt => service(msg).served_at = Some(dt),
            _ => {}
        },
        Value::Bool(b) => {
            if target == T::FirearmRelinquishment {
                msg.order.firearm_relinquishment = Some(b);
            }
        }
        Value::Action(a) => {
            if target == T::Action {
                msg.action = Some(a);
            }
        }
        Value::List(codes) => {
            if target == T::ConditionCodes {
                msg.order.condition_codes = codes;
            }
        }
    }
}

/// [`store`] for a text value: the readers' most common case, without the
/// [`Value`] around it.
pub(crate) fn store_text(msg: &mut OrderMessage, target: Target, index: usize, s: Text) {
    if target == Target::CourtOri {
        msg.court_ori = s;
    } else if let Some(slot) = text_slot(msg, target, index) {
        *slot = Some(s);
    }
}

/// [`store_text`] from a borrowed value: the text is made in its slot, not
/// made, moved and copied (a moved inline string is read back wider than it
/// was written, which stalls the store).
pub(crate) fn store_str(msg: &mut OrderMessage, target: Target, index: usize, s: &str) {
    if target == Target::CourtOri {
        msg.court_ori = s.into();
    } else if let Some(slot) = text_slot(msg, target, index) {
        *slot = Some(s.into());
    }
}

/// The place of a text target (of list element `index`); `None` for a
/// target that is not text, or an index past [`MAX_INDEX`].
fn text_slot(msg: &mut OrderMessage, target: Target, index: usize) -> Option<&mut Option<Text>> {
    use Target as T;
    let slot: &mut Option<Text> = match target {
        T::OrderNumber => &mut msg.order.order_number,
        T::CaseNumber => &mut msg.order.case_number,
        T::OrderType => &mut msg.order.order_type,
        T::FormId => &mut msg.order.form_id,
        T::JudicialOfficer => &mut msg.order.judicial_officer,
        T::Brady => &mut msg.order.brady,
        T::ConditionText => &mut msg.order.condition_text,
        T::CancelReason => &mut msg.order.cancel_reason,
        T::ServedBy => &mut service(msg).served_by,
        T::ServingAgencyOri => &mut service(msg).serving_agency_ori,
        T::ServiceMethod => &mut service(msg).method,
        T::RpLast => &mut rp_name(msg).last,
        T::RpFirst => &mut rp_name(msg).first,
        T::RpMiddle => &mut rp_name(msg).middle,
        T::RpSuffix => &mut rp_name(msg).suffix,
        T::RpSex => &mut rp(msg).sex,
        T::RpRace => &mut rp(msg).race,
        T::RpHeight => &mut rp(msg).height,
        T::RpWeight => &mut rp(msg).weight,
        T::RpEye => &mut rp(msg).eye,
        T::RpHair => &mut rp(msg).hair,
        T::RpStreet => &mut residence(msg).street,
        T::RpCity => &mut residence(msg).city,
        T::RpState => &mut residence(msg).state,
        T::RpZip => &mut residence(msg).zip,
        T::RpDlNumber => &mut licence(msg).number,
        T::RpDlState => &mut licence(msg).state,
        T::PpLast | T::PpFirst | T::PpMiddle | T::PpSuffix | T::PpSex | T::PpRace | T::PpRelationship => {
            let p = protected(msg, index)?;
            match target {
                T::PpLast => &mut p.name.last,
                T::PpFirst => &mut p.name.first,
                T::PpMiddle => &mut p.name.middle,
                T::PpSuffix => &mut p.name.suffix,
                T::PpSex => &mut p.sex,
                T::PpRace => &mut p.race,
                _ => &mut p.relationship,
            }
        }
        _ => return None,
    };
    Some(slot)
}

/// The value of the canonical field `target` (element `index` for list
/// elements): the reverse of [`store`], used by the writer. `None` when the
/// field is absent, blank, an empty list, or the element does not exist.
pub(crate) fn fetch(msg: &OrderMessage, target: Target, index: usize) -> Option<Value> {
    use Target as T;
    let text = |v: &Option<Text>| {
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Value::Text(s.into()))
    };
    let rp = msg.restrained_person.as_ref();
    let pp = msg.protected_persons.get(index);
    let svc = msg.order.service.as_ref();
    let o = &msg.order;
    match target {
        T::CourtOri => Some(msg.court_ori.clone())
            .filter(|s| !s.trim().is_empty())
            .map(Value::Text),
        T::Action => msg.action.map(Value::Action),
        T::Sequence => msg.sequence.map(Value::Number),
        T::OrderNumber => text(&o.order_number),
        T::CaseNumber => text(&o.case_number),
        T::OrderType => text(&o.order_type),
        T::FormId => text(&o.form_id),
        T::IssueDate => o.issue_date.map(Value::Date),
        T::Expiration => o.expiration.map(Value::DateTime),
        T::JudicialOfficer => text(&o.judicial_officer),
        T::Brady => text(&o.brady),
        T::ConditionText => text(&o.condition_text),
        T::ConditionCodes => Some(Value::List(o.condition_codes.clone())).filter(|_| !o.condition_codes.is_empty()),
        T::FirearmRelinquishment => o.firearm_relinquishment.map(Value::Bool),
        T::TerminationDate => o.termination_date.map(Value::Date),
        T::CancelReason => text(&o.cancel_reason),
        T::ServedAt => svc.and_then(|s| s.served_at).map(Value::DateTime),
        T::ServedBy => svc.and_then(|s| text(&s.served_by)),
        T::ServingAgencyOri => svc.and_then(|s| text(&s.serving_agency_ori)),
        T::ServiceMethod => svc.and_then(|s| text(&s.method)),
        T::RpLast => rp.and_then(|p| text(&p.name.last)),
        T::RpFirst => rp.and_then(|p| text(&p.name.first)),
        T::RpMiddle => rp.and_then(|p| text(&p.name.middle)),
        T::RpSuffix => rp.and_then(|p| text(&p.name.suffix)),
        T::RpBirthDate => rp.and_then(|p| p.birth_date).map(Value::Date),
        T::RpSex => rp.and_then(|p| text(&p.sex)),
        T::RpRace => rp.and_then(|p| text(&p.race)),
        T::RpHeight => rp.and_then(|p| text(&p.height)),
        T::RpWeight => rp.and_then(|p| text(&p.weight)),
        T::RpEye => rp.and_then(|p| text(&p.eye)),
        T::RpHair => rp.and_then(|p| text(&p.hair)),
        T::RpStreet => rp.and_then(|p| p.residence.as_ref()).and_then(|r| text(&r.street)),
        T::RpCity => rp.and_then(|p| p.residence.as_ref()).and_then(|r| text(&r.city)),
        T::RpState => rp.and_then(|p| p.residence.as_ref()).and_then(|r| text(&r.state)),
        T::RpZip => rp.and_then(|p| p.residence.as_ref()).and_then(|r| text(&r.zip)),
        T::RpDlNumber => rp.and_then(|p| p.driver_license.as_ref()).and_then(|d| text(&d.number)),
        T::RpDlState => rp.and_then(|p| p.driver_license.as_ref()).and_then(|d| text(&d.state)),
        T::PpLast => pp.and_then(|p| text(&p.name.last)),
        T::PpFirst => pp.and_then(|p| text(&p.name.first)),
        T::PpMiddle => pp.and_then(|p| text(&p.name.middle)),
        T::PpSuffix => pp.and_then(|p| text(&p.name.suffix)),
        T::PpBirthDate => pp.and_then(|p| p.birth_date).map(Value::Date),
        T::PpSex => pp.and_then(|p| text(&p.sex)),
        T::PpRace => pp.and_then(|p| text(&p.race)),
        T::PpRelationship => pp.and_then(|p| text(&p.relationship)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path in the table round-trips through parse and template, and
    /// every indexed path expands with its index.
    #[test]
    fn paths_round_trip() {
        for (i, path) in Target::known_paths().enumerate() {
            let t = Target::parse(path).expect(path);
            assert_eq!(t as usize, i, "TARGETS is in declaration order");
            assert_eq!(t.template(), path);
            assert_eq!(t.indexed(), path.contains("[]"));
        }
        assert_eq!(Target::PpSex.path(2), "protected_persons[2].sex");
        assert_eq!(Target::RpSex.path(2), "restrained_person.sex");
        assert_eq!(
            Target::ConditionCodes.element_path(1).to_string(),
            "order.condition_codes[1]"
        );
        for (p, c) in CONTAINERS {
            assert_eq!(c.template(), *p);
        }
    }

    /// `fetch` reads back what `store` stored, for every target.
    #[test]
    fn fetch_reverses_store() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        for t in Target::all() {
            let value = match t.kind() {
                Kind::Text => Value::Text("AB".into()),
                Kind::Number => Value::Number(7),
                Kind::Date => Value::Date(d),
                Kind::DateTime => Value::DateTime(d.and_hms_opt(23, 59, 0).unwrap()),
                Kind::Bool => Value::Bool(true),
                Kind::Action => Value::Action(Action::Modify),
                Kind::List => Value::List(vec!["01".into(), "07".into()]),
            };
            let mut m = OrderMessage::default();
            let index = if t.indexed() { 1 } else { 0 };
            store(&mut m, t, index, value.clone());
            assert_eq!(fetch(&m, t, index), Some(value), "{}", t.template());
            assert_eq!(fetch(&OrderMessage::default(), t, index), None);
        }
    }

    /// Storing a text value into a protected person creates the earlier
    /// elements, and indexes past the bound are ignored without panicking.
    #[test]
    fn store_bounds_list_indexes() {
        let mut m = OrderMessage::default();
        store(&mut m, Target::PpLast, 1, Value::Text("DOE".into()));
        assert_eq!(m.protected_persons.len(), 2);
        assert_eq!(m.protected_persons[1].name.last.as_deref(), Some("DOE"));
        store(&mut m, Target::PpLast, 10_000, Value::Text("X".into()));
        assert_eq!(m.protected_persons.len(), 2);
    }
}
