//! Where each ICD §2 element goes in the canonical model: which children an
//! element allows, which model field a leaf fills, and that field's
//! canonical path (the serde field names, e.g. `protected_persons[1].sex`).

use crate::model::{ErrorCode, FieldPath, OrderMessage, PersonName, Text};

use super::names::Tag;
use super::values::{self, ValueError, quote};

/// Whose person-level element this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    Restrained,
    /// The index into `protected_persons`.
    Protected(usize),
}

impl Who {
    /// `restrained` for the restrained person; the `protected_persons[]`
    /// template `protected` with this person's index otherwise.
    fn path(self, restrained: &'static str, protected: &'static str) -> FieldPath {
        match self {
            Who::Restrained => FieldPath::new(restrained),
            Who::Protected(i) => FieldPath::at(protected, i),
        }
    }
}

/// A part of `nc:PersonName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NamePart {
    First,
    Middle,
    Last,
    Suffix,
}

/// A leaf element's model field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    CourtOri,
    Action,
    Sequence,
    SentAt,
    OrderNumber,
    CaseNumber,
    OrderType,
    FormId,
    IssueDate,
    Expiration,
    JudicialOfficer,
    Brady,
    ConditionText,
    /// The index into `order.condition_codes`.
    ConditionCode(usize),
    FirearmRelinquishment,
    TerminationDate,
    CancelReason,
    ServedAt,
    ServedBy,
    ServingAgencyOri,
    ServiceMethod,
    Name(Who, NamePart),
    BirthDate(Who),
    Sex(Who),
    Race(Who),
    /// Of the protected person with this index.
    Relationship(usize),
    Height,
    Weight,
    Eye,
    Hair,
    Street,
    City,
    State,
    Zip,
    LicenseNumber,
    LicenseState,
}

impl Field {
    /// The canonical field path, as used in errors and [`Locations`](crate::model::Locations).
    pub(super) fn path(self) -> FieldPath {
        use Field::*;
        use NamePart as N;
        FieldPath::new(match self {
            CourtOri => "court_ori",
            Action => "action",
            Sequence => "sequence",
            SentAt => "sent_at",
            OrderNumber => "order.order_number",
            CaseNumber => "order.case_number",
            OrderType => "order.order_type",
            FormId => "order.form_id",
            IssueDate => "order.issue_date",
            Expiration => "order.expiration",
            JudicialOfficer => "order.judicial_officer",
            Brady => "order.brady",
            ConditionText => "order.condition_text",
            ConditionCode(i) => return FieldPath::at("order.condition_codes[]", i),
            FirearmRelinquishment => "order.firearm_relinquishment",
            TerminationDate => "order.termination_date",
            CancelReason => "order.cancel_reason",
            ServedAt => "order.service.served_at",
            ServedBy => "order.service.served_by",
            ServingAgencyOri => "order.service.serving_agency_ori",
            ServiceMethod => "order.service.method",
            Name(who, N::First) => return who.path("restrained_person.name.first", "protected_persons[].name.first"),
            Name(who, N::Middle) => {
                return who.path("restrained_person.name.middle", "protected_persons[].name.middle");
            }
            Name(who, N::Last) => return who.path("restrained_person.name.last", "protected_persons[].name.last"),
            Name(who, N::Suffix) => {
                return who.path("restrained_person.name.suffix", "protected_persons[].name.suffix");
            }
            BirthDate(who) => return who.path("restrained_person.birth_date", "protected_persons[].birth_date"),
            Sex(who) => return who.path("restrained_person.sex", "protected_persons[].sex"),
            Race(who) => return who.path("restrained_person.race", "protected_persons[].race"),
            Relationship(i) => return FieldPath::at("protected_persons[].relationship", i),
            Height => "restrained_person.height",
            Weight => "restrained_person.weight",
            Eye => "restrained_person.eye",
            Hair => "restrained_person.hair",
            Street => "restrained_person.residence.street",
            City => "restrained_person.residence.city",
            State => "restrained_person.residence.state",
            Zip => "restrained_person.residence.zip",
            LicenseNumber => "restrained_person.driver_license.number",
            LicenseState => "restrained_person.driver_license.state",
        })
    }
}

/// What an open element is, as far as the model is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Element {
    Message,
    Header,
    Order,
    ActivityIdentification,
    IssuingDate,
    Service,
    Restrained,
    Protected(usize),
    PersonName(Who),
    BirthDate(Who),
    Residence,
    DriverLicense,
    Leaf(Field),
    Image,
    /// An element that was refused; its subtree is skipped.
    Skipped,
}

impl Element {
    /// What `name` is when it appears inside `self`; `None` when the schema
    /// does not allow it there. `msg` gives the next index of repeated
    /// elements.
    pub(super) fn child(self, name: Tag, msg: &OrderMessage) -> Option<Element> {
        use Element as E;
        use Field as F;
        use Tag as N;
        Some(match (self, name) {
            (E::Message, N::MessageHeader) => E::Header,
            (E::Message, N::ProtectionOrder) => E::Order,
            (E::Message, N::RestrainedPerson) => E::Restrained,
            (E::Message, N::ProtectedPerson) => E::Protected(msg.protected_persons.len()),
            (E::Message, N::OrderImage) => E::Image,

            (E::Header, N::CourtOri) => E::Leaf(F::CourtOri),
            (E::Header, N::Action) => E::Leaf(F::Action),
            (E::Header, N::Sequence) => E::Leaf(F::Sequence),
            (E::Header, N::SentDateTime) => E::Leaf(F::SentAt),

            (E::Order, N::ActivityIdentification) => E::ActivityIdentification,
            (E::ActivityIdentification, N::IdentificationId) => E::Leaf(F::OrderNumber),
            (E::Order, N::CaseNumber) => E::Leaf(F::CaseNumber),
            (E::Order, N::OrderType) => E::Leaf(F::OrderType),
            (E::Order, N::FormId) => E::Leaf(F::FormId),
            (E::Order, N::CourtOrderIssuingDate) => E::IssuingDate,
            (E::IssuingDate, N::Date) => E::Leaf(F::IssueDate),
            (E::Order, N::ExpirationDateTime) => E::Leaf(F::Expiration),
            (E::Order, N::JudicialOfficerName) => E::Leaf(F::JudicialOfficer),
            (E::Order, N::BradyCode) => E::Leaf(F::Brady),
            (E::Order, N::ProtectionOrderConditionText) => E::Leaf(F::ConditionText),
            (E::Order, N::ProtectionOrderConditionCode) => E::Leaf(F::ConditionCode(msg.order.condition_codes.len())),
            (E::Order, N::FirearmRelinquishmentIndicator) => E::Leaf(F::FirearmRelinquishment),
            (E::Order, N::TerminationDate) => E::Leaf(F::TerminationDate),
            (E::Order, N::CancelReason) => E::Leaf(F::CancelReason),
            (E::Order, N::Service) => E::Service,
            (E::Service, N::ServedDateTime) => E::Leaf(F::ServedAt),
            (E::Service, N::ServedBy) => E::Leaf(F::ServedBy),
            (E::Service, N::ServingAgencyOri) => E::Leaf(F::ServingAgencyOri),
            (E::Service, N::ServiceMethod) => E::Leaf(F::ServiceMethod),

            (E::Restrained, N::PersonName) => E::PersonName(Who::Restrained),
            (E::Protected(i), N::PersonName) => E::PersonName(Who::Protected(i)),
            (E::PersonName(who), N::PersonGivenName) => E::Leaf(F::Name(who, NamePart::First)),
            (E::PersonName(who), N::PersonMiddleName) => E::Leaf(F::Name(who, NamePart::Middle)),
            (E::PersonName(who), N::PersonSurName) => E::Leaf(F::Name(who, NamePart::Last)),
            (E::PersonName(who), N::PersonNameSuffixText) => E::Leaf(F::Name(who, NamePart::Suffix)),
            (E::Restrained, N::PersonBirthDate) => E::BirthDate(Who::Restrained),
            (E::Protected(i), N::PersonBirthDate) => E::BirthDate(Who::Protected(i)),
            (E::BirthDate(who), N::Date) => E::Leaf(F::BirthDate(who)),
            (E::Restrained, N::SexCode) => E::Leaf(F::Sex(Who::Restrained)),
            (E::Protected(i), N::SexCode) => E::Leaf(F::Sex(Who::Protected(i))),
            (E::Restrained, N::RaceCode) => E::Leaf(F::Race(Who::Restrained)),
            (E::Protected(i), N::RaceCode) => E::Leaf(F::Race(Who::Protected(i))),
            (E::Protected(i), N::RelationshipCode) => E::Leaf(F::Relationship(i)),
            (E::Restrained, N::HeightFeetInches) => E::Leaf(F::Height),
            (E::Restrained, N::WeightPounds) => E::Leaf(F::Weight),
            (E::Restrained, N::EyeColorCode) => E::Leaf(F::Eye),
            (E::Restrained, N::HairColorCode) => E::Leaf(F::Hair),
            (E::Restrained, N::Residence) => E::Residence,
            (E::Residence, N::Street) => E::Leaf(F::Street),
            (E::Residence, N::City) => E::Leaf(F::City),
            (E::Residence, N::State) => E::Leaf(F::State),
            (E::Residence, N::Zip) => E::Leaf(F::Zip),
            (E::Restrained, N::DriverLicense) => E::DriverLicense,
            (E::DriverLicense, N::Number) => E::Leaf(F::LicenseNumber),
            (E::DriverLicense, N::State) => E::Leaf(F::LicenseState),
            _ => return None,
        })
    }

    /// The canonical path under which this element's location is recorded,
    /// and errors about it are reported; `None` for pure wrappers such as
    /// `nc:PersonName`.
    pub(super) fn path(self) -> Option<FieldPath> {
        Some(FieldPath::new(match self {
            Element::Message => "message",
            Element::Order => "order",
            Element::Restrained => "restrained_person",
            Element::Protected(i) => return Some(FieldPath::at("protected_persons[]", i)),
            Element::Service => "order.service",
            Element::Residence => "restrained_person.residence",
            Element::DriverLicense => "restrained_person.driver_license",
            Element::Image => "image",
            Element::Leaf(field) => return Some(field.path()),
            _ => return None,
        }))
    }

    /// The path errors about this element itself are reported under (it is
    /// missing, out of order, repeated): [`path`](Self::path), or for a
    /// wrapper the path of what it wraps (`nc:ActivityIdentification` is
    /// `order.order_number`); `None` for the message header.
    pub(super) fn report_path(self) -> Option<FieldPath> {
        match self {
            Element::ActivityIdentification => Some(Field::OrderNumber.path()),
            Element::IssuingDate => Some(Field::IssueDate.path()),
            Element::BirthDate(who) => Some(Field::BirthDate(who).path()),
            Element::PersonName(who) => Some(who.path("restrained_person.name", "protected_persons[].name")),
            other => other.path(),
        }
    }

    /// Creates the model part this element stands for, so that an element
    /// present but empty is `Some` in the model.
    pub(super) fn open(self, msg: &mut OrderMessage) {
        match self {
            Element::Restrained => {
                msg.restrained_person.get_or_insert_default();
            }
            Element::Protected(_) => msg.protected_persons.push(Default::default()),
            Element::Service => {
                msg.order.service.get_or_insert_default();
            }
            Element::Residence => {
                msg.restrained_person
                    .get_or_insert_default()
                    .residence
                    .get_or_insert_default();
            }
            Element::DriverLicense => {
                let person = msg.restrained_person.get_or_insert_default();
                person.driver_license.get_or_insert_default();
            }
            _ => {}
        }
    }
}

fn text(value: &str) -> Option<Text> {
    (!value.is_empty()).then(|| value.into())
}

fn name_of(msg: &mut OrderMessage, who: Who) -> Option<&mut PersonName> {
    match who {
        Who::Restrained => Some(&mut msg.restrained_person.get_or_insert_default().name),
        Who::Protected(i) => msg.protected_persons.get_mut(i).map(|p| &mut p.name),
    }
}

/// Stores a leaf's trimmed text in the model. An empty value leaves the field
/// `None`; a refused value leaves it `None` too and says why.
pub(super) fn store(msg: &mut OrderMessage, field: Field, value: &str) -> Result<(), ValueError> {
    use Field::*;
    let empty = value.is_empty();
    fn person(msg: &mut OrderMessage) -> &mut crate::model::RestrainedPerson {
        msg.restrained_person.get_or_insert_default()
    }
    match field {
        CourtOri => msg.court_ori = value.into(),
        Action if empty => {}
        Action => {
            msg.action = Some(crate::model::Action::from_name(value).ok_or_else(|| {
                let names: Vec<_> = crate::model::Action::ALL.iter().map(|a| a.name()).collect();
                (
                    ErrorCode::InvalidCode,
                    format!("action {} is not one of {}", quote(value), names.join(", ")),
                )
            })?)
        }
        Sequence if empty => {}
        Sequence => msg.sequence = Some(values::parse_sequence(value)?),
        SentAt if empty => {}
        SentAt => msg.sent_at = Some(values::parse_offset_date_time(value)?),
        OrderNumber => msg.order.order_number = text(value),
        CaseNumber => msg.order.case_number = text(value),
        OrderType => msg.order.order_type = text(value),
        FormId => msg.order.form_id = text(value),
        IssueDate if empty => {}
        IssueDate => msg.order.issue_date = Some(values::parse_date(value)?),
        Expiration if empty => {}
        Expiration => msg.order.expiration = Some(values::parse_local_date_time(value)?),
        JudicialOfficer => msg.order.judicial_officer = text(value),
        Brady => msg.order.brady = text(value),
        ConditionText => msg.order.condition_text = text(value),
        // Kept even when empty, so that the validator reports the bad code
        // and the indices of the codes after it stay those of the document.
        ConditionCode(_) => msg.order.condition_codes.push(value.into()),
        FirearmRelinquishment if empty => {}
        FirearmRelinquishment => msg.order.firearm_relinquishment = Some(values::parse_boolean(value)?),
        TerminationDate if empty => {}
        TerminationDate => msg.order.termination_date = Some(values::parse_date(value)?),
        CancelReason => msg.order.cancel_reason = text(value),
        ServedAt if empty => {}
        ServedAt => {
            let at = values::parse_local_date_time(value)?;
            msg.order.service.get_or_insert_default().served_at = Some(at);
        }
        ServedBy => msg.order.service.get_or_insert_default().served_by = text(value),
        ServingAgencyOri => msg.order.service.get_or_insert_default().serving_agency_ori = text(value),
        ServiceMethod => msg.order.service.get_or_insert_default().method = text(value),
        Name(who, part) => {
            if let Some(name) = name_of(msg, who) {
                let slot = match part {
                    NamePart::First => &mut name.first,
                    NamePart::Middle => &mut name.middle,
                    NamePart::Last => &mut name.last,
                    NamePart::Suffix => &mut name.suffix,
                };
                *slot = text(value);
            }
        }
        BirthDate(_) if empty => {}
        BirthDate(Who::Restrained) => person(msg).birth_date = Some(values::parse_date(value)?),
        BirthDate(Who::Protected(i)) => {
            let date = values::parse_date(value)?;
            if let Some(p) = msg.protected_persons.get_mut(i) {
                p.birth_date = Some(date);
            }
        }
        Sex(Who::Restrained) => person(msg).sex = text(value),
        Race(Who::Restrained) => person(msg).race = text(value),
        Sex(Who::Protected(i)) | Race(Who::Protected(i)) | Relationship(i) => {
            if let Some(p) = msg.protected_persons.get_mut(i) {
                let slot = match field {
                    Sex(_) => &mut p.sex,
                    Race(_) => &mut p.race,
                    _ => &mut p.relationship,
                };
                *slot = text(value);
            }
        }
        Height => person(msg).height = text(value),
        Weight => person(msg).weight = text(value),
        Eye => person(msg).eye = text(value),
        Hair => person(msg).hair = text(value),
        Street | City | State | Zip => {
            let address = person(msg).residence.get_or_insert_default();
            let slot = match field {
                Street => &mut address.street,
                City => &mut address.city,
                State => &mut address.state,
                _ => &mut address.zip,
            };
            *slot = text(value);
        }
        LicenseNumber | LicenseState => {
            let license = person(msg).driver_license.get_or_insert_default();
            let slot = if field == LicenseNumber {
                &mut license.number
            } else {
                &mut license.state
            };
            *slot = text(value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;

    /// Paths are the serde field names of the model, with 0-based indices.
    #[test]
    fn paths_match_the_model() {
        assert_eq!(
            Field::Name(Who::Restrained, NamePart::Suffix).path().to_string(),
            "restrained_person.name.suffix"
        );
        assert_eq!(
            Field::Name(Who::Protected(2), NamePart::Last).path().to_string(),
            "protected_persons[2].name.last"
        );
        assert_eq!(
            Field::Relationship(0).path().to_string(),
            "protected_persons[0].relationship"
        );
        assert_eq!(Field::ConditionCode(1).path().to_string(), "order.condition_codes[1]");
        assert_eq!(Field::ServiceMethod.path().to_string(), "order.service.method");
        assert_eq!(
            Field::LicenseState.path().to_string(),
            "restrained_person.driver_license.state"
        );
    }

    /// An unknown action is INVALID_CODE and leaves the action unset.
    #[test]
    fn unknown_action() {
        let mut msg = OrderMessage::default();
        let err = store(&mut msg, Field::Action, "DELETE").unwrap_err();
        assert_eq!(err.0, ErrorCode::InvalidCode);
        assert_eq!(msg.action, None);
        store(&mut msg, Field::Action, "SERVICE").unwrap();
        assert_eq!(msg.action, Some(Action::Service));
    }
}
