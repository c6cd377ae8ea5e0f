//! What `schemas/por.xsd` and its NIEM subsets (`schemas/niem/`) fix, as the
//! reader enforces it, so that the reader refuses what the XSD refuses:
//!
//! - the **content model** of each element: its `xs:sequence` of children,
//!   each with its `minOccurs`/`maxOccurs` ([`content`]);
//! - the **facets** of each leaf value: the ORI and order-number patterns,
//!   the maximum lengths the ICD fixes, and that a typed value (date,
//!   date-time, integer, boolean, action) is not empty ([`check_value`]).
//!   The shapes of typed values are checked where they are parsed, in the
//!   `values` module.
//!
//! Text types in the XSD are `xs:token`, so a value is compared after
//! trimming, and its length counts every run of white space as one
//! character ([`token_len`]), as an XSD validator counts it.
//!
//! Keep this module and the XSD in step: `tests/xml_schemas.rs` runs the same
//! fixtures, and every length at and over its bound, through `xmllint` and
//! through [`read_order`](super::read_order).

use crate::model::ErrorCode;

use super::fields::{Element, Field, NamePart};
use super::names::Tag;
use super::values::{ValueError, quote};

/// One child in an element's `xs:sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Particle {
    pub(super) tag: Tag,
    /// `minOccurs`: 0 or 1.
    pub(super) min: u8,
    /// `maxOccurs`.
    pub(super) max: u8,
}

const fn one(tag: Tag) -> Particle {
    Particle { tag, min: 1, max: 1 }
}

const fn opt(tag: Tag) -> Particle {
    Particle { tag, min: 0, max: 1 }
}

const fn upto(tag: Tag, max: u8) -> Particle {
    Particle { tag, min: 0, max }
}

use Tag as T;

/// `por:ProtectiveOrderMessageType`.
const MESSAGE: &[Particle] = &[
    one(T::MessageHeader),
    one(T::ProtectionOrder),
    opt(T::RestrainedPerson),
    upto(T::ProtectedPerson, 9),
    opt(T::OrderImage),
];

/// `por:MessageHeaderType`.
const HEADER: &[Particle] = &[one(T::CourtOri), one(T::Action), one(T::Sequence), one(T::SentDateTime)];

/// `por:ProtectionOrderType`.
const ORDER: &[Particle] = &[
    one(T::ActivityIdentification),
    opt(T::CaseNumber),
    one(T::OrderType),
    opt(T::FormId),
    opt(T::CourtOrderIssuingDate),
    opt(T::ExpirationDateTime),
    opt(T::JudicialOfficerName),
    opt(T::BradyCode),
    opt(T::ProtectionOrderConditionText),
    upto(T::ProtectionOrderConditionCode, 9),
    opt(T::FirearmRelinquishmentIndicator),
    opt(T::TerminationDate),
    opt(T::CancelReason),
    opt(T::Service),
];

/// `nc:IdentificationType`.
const IDENTIFICATION: &[Particle] = &[one(T::IdentificationId)];

/// `nc:DateType`.
const DATE: &[Particle] = &[one(T::Date)];

/// `por:ServiceType`.
const SERVICE: &[Particle] = &[
    one(T::ServedDateTime),
    one(T::ServedBy),
    one(T::ServingAgencyOri),
    one(T::ServiceMethod),
];

/// `por:RestrainedPersonType`.
const RESTRAINED: &[Particle] = &[
    opt(T::PersonName),
    opt(T::PersonBirthDate),
    opt(T::SexCode),
    opt(T::RaceCode),
    opt(T::HeightFeetInches),
    opt(T::WeightPounds),
    opt(T::EyeColorCode),
    opt(T::HairColorCode),
    opt(T::Residence),
    opt(T::DriverLicense),
];

/// `por:ProtectedPersonType`.
const PROTECTED: &[Particle] = &[
    opt(T::PersonName),
    opt(T::PersonBirthDate),
    opt(T::SexCode),
    opt(T::RaceCode),
    opt(T::RelationshipCode),
];

/// `nc:PersonNameType`.
const PERSON_NAME: &[Particle] = &[
    opt(T::PersonGivenName),
    opt(T::PersonMiddleName),
    opt(T::PersonSurName),
    opt(T::PersonNameSuffixText),
];

/// `por:ResidenceType`.
const RESIDENCE: &[Particle] = &[opt(T::Street), opt(T::City), opt(T::State), opt(T::Zip)];

/// `por:DriverLicenseType`.
const DRIVER_LICENSE: &[Particle] = &[opt(T::Number), opt(T::State)];

/// The children `element` allows, in order; empty for leaves (and for a
/// skipped element, whose children are not looked at).
pub(super) fn content(element: Element) -> &'static [Particle] {
    match element {
        Element::Message => MESSAGE,
        Element::Header => HEADER,
        Element::Order => ORDER,
        Element::ActivityIdentification => IDENTIFICATION,
        Element::IssuingDate | Element::BirthDate(_) => DATE,
        Element::Service => SERVICE,
        Element::Restrained => RESTRAINED,
        Element::Protected(_) => PROTECTED,
        Element::PersonName(_) => PERSON_NAME,
        Element::Residence => RESIDENCE,
        Element::DriverLicense => DRIVER_LICENSE,
        Element::Leaf(_) | Element::Image | Element::Skipped => &[],
    }
}

/// The length of an `xs:token` value as an XSD validator counts it: in
/// characters, leading and trailing white space ignored, every inner run of
/// white space one character.
pub(super) fn token_len(value: &str) -> usize {
    let mut len = 0;
    let mut after_space = false;
    for c in value.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            after_space = true;
        } else {
            // A run of white space counts once, and only between characters.
            len += if after_space && len > 0 { 2 } else { 1 };
            after_space = false;
        }
    }
    len
}

/// The facet a leaf's value must meet beyond its type's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Facet {
    /// `por:ORISimpleType`: `[A-Z0-9]{9}`.
    Ori,
    /// `nc:IdentificationIDSimpleType`: `[A-Z0-9\-]{1,15}`.
    OrderNumber,
    /// `xs:maxLength`.
    MaxLength(usize),
    /// A date, date-time, integer, boolean or the action: its type has no
    /// empty value.
    Typed(&'static str),
    /// Any token (codes and free text without an ICD length).
    None,
}

fn facet(field: Field) -> Facet {
    use Field::*;
    match field {
        CourtOri | ServingAgencyOri => Facet::Ori,
        OrderNumber => Facet::OrderNumber,
        CaseNumber => Facet::MaxLength(20),
        ConditionText => Facet::MaxLength(500),
        CancelReason => Facet::MaxLength(60),
        ServedBy => Facet::MaxLength(30),
        LicenseNumber => Facet::MaxLength(20),
        Name(_, NamePart::First | NamePart::Middle) => Facet::MaxLength(20),
        Name(_, NamePart::Last) => Facet::MaxLength(30),
        Action => Facet::Typed("an action (ISSUE, MODIFY, TERMINATE, CANCEL or SERVICE)"),
        Sequence => Facet::Typed("a non-negative integer"),
        SentAt => Facet::Typed("a date-time with offset YYYY-MM-DDTHH:MM:SS±HH:MM"),
        IssueDate | TerminationDate | BirthDate(_) => Facet::Typed("a date YYYY-MM-DD"),
        Expiration | ServedAt => Facet::Typed("a local date-time YYYY-MM-DDTHH:MM:SS"),
        FirearmRelinquishment => Facet::Typed("true, false, 1 or 0"),
        Name(_, NamePart::Suffix)
        | FormId
        | OrderType
        | JudicialOfficer
        | Brady
        | ConditionCode(_)
        | ServiceMethod
        | Sex(_)
        | Race(_)
        | Relationship(_)
        | Height
        | Weight
        | Eye
        | Hair
        | Street
        | City
        | State
        | Zip
        | LicenseState => Facet::None,
    }
}

/// Checks a leaf's trimmed value against its XSD facet: an empty value
/// where the type has none is `MISSING` (as the validator treats a blank
/// value), a pattern mismatch `INVALID_FORMAT`, a value over its maximum
/// length `TOO_LONG`.
pub(super) fn check_value(field: Field, value: &str) -> Result<(), ValueError> {
    let facet = facet(field);
    if value.is_empty() {
        let expected = match facet {
            Facet::None | Facet::MaxLength(_) => return Ok(()),
            Facet::Typed(expected) => expected,
            Facet::Ori => "an ORI",
            Facet::OrderNumber => "an order number",
        };
        return Err((ErrorCode::Missing, format!("the element is empty; expected {expected}")));
    }
    match facet {
        Facet::None | Facet::Typed(_) => Ok(()),
        Facet::Ori => {
            if value.len() == 9 && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
                Ok(())
            } else {
                Err((
                    ErrorCode::InvalidFormat,
                    format!("{} is not an ORI: 9 characters A-Z and 0-9", quote(value)),
                ))
            }
        }
        Facet::OrderNumber => {
            let len = token_len(value);
            if len > 15 {
                Err((
                    ErrorCode::TooLong,
                    format!("the order number has {len} characters; at most 15 are allowed"),
                ))
            } else if !value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            {
                Err((
                    ErrorCode::InvalidFormat,
                    format!("{} has characters other than A-Z, 0-9 and '-'", quote(value)),
                ))
            } else {
                Ok(())
            }
        }
        Facet::MaxLength(max) => {
            let len = token_len(value);
            if len > max {
                Err((
                    ErrorCode::TooLong,
                    format!("{len} characters; at most {max} are allowed"),
                ))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::Who;
    use super::super::names::{J, NC, POR};
    use super::*;

    /// Token lengths trim and collapse white space, and count characters.
    #[test]
    fn token_lengths() {
        assert_eq!(token_len(""), 0);
        assert_eq!(token_len("   \n\t "), 0);
        assert_eq!(token_len("ABC"), 3);
        assert_eq!(token_len("  A \r\n\t B  "), 3);
        assert_eq!(token_len("A  B  C"), 5);
        assert_eq!(token_len("ÉÑ😀"), 3);
        assert_eq!(token_len("A\u{A0}B"), 3, "no-break space is not XML white space");
    }

    /// Facets: empty typed values are MISSING, patterns INVALID_FORMAT, lengths TOO_LONG.
    #[test]
    fn facets() {
        fn code(field: Field, value: &str) -> Option<ErrorCode> {
            check_value(field, value).err().map(|e| e.0)
        }
        assert_eq!(code(Field::CourtOri, "CA034025J"), None);
        assert_eq!(code(Field::CourtOri, ""), Some(ErrorCode::Missing));
        assert_eq!(code(Field::CourtOri, "ca034025j"), Some(ErrorCode::InvalidFormat));
        assert_eq!(
            code(Field::ServingAgencyOri, "CA03400000"),
            Some(ErrorCode::InvalidFormat)
        );
        assert_eq!(code(Field::OrderNumber, "24DV-01234"), None);
        assert_eq!(code(Field::OrderNumber, "24DV_01234"), Some(ErrorCode::InvalidFormat));
        assert_eq!(code(Field::OrderNumber, "A B"), Some(ErrorCode::InvalidFormat));
        assert_eq!(code(Field::OrderNumber, &"9".repeat(15)), None);
        assert_eq!(code(Field::OrderNumber, &"9".repeat(16)), Some(ErrorCode::TooLong));
        assert_eq!(
            code(Field::Name(Who::Restrained, NamePart::Last), &"É".repeat(30)),
            None
        );
        assert_eq!(
            code(Field::Name(Who::Protected(0), NamePart::Last), &"É".repeat(31)),
            Some(ErrorCode::TooLong)
        );
        assert_eq!(
            code(
                Field::CancelReason,
                &format!("{}    {}", "A".repeat(29), "B".repeat(30))
            ),
            None
        );
        assert_eq!(code(Field::ConditionText, &"x".repeat(501)), Some(ErrorCode::TooLong));
        assert_eq!(code(Field::Sequence, ""), Some(ErrorCode::Missing));
        assert_eq!(code(Field::OrderType, ""), None);
        assert_eq!(code(Field::ConditionCode(0), ""), None);
    }

    /// Every element in a content model has a display name that classifies
    /// back to it, and only repeatable particles allow more than one.
    #[test]
    fn content_models_are_consistent() {
        let all = [
            MESSAGE,
            HEADER,
            ORDER,
            IDENTIFICATION,
            DATE,
            SERVICE,
            RESTRAINED,
            PROTECTED,
            PERSON_NAME,
            RESIDENCE,
            DRIVER_LICENSE,
        ];
        for model in all {
            for (i, p) in model.iter().enumerate() {
                let (prefix, local) = p.tag.name().split_once(':').unwrap();
                let ns = match prefix {
                    "por" => POR,
                    "nc" => NC,
                    _ => J,
                };
                assert_eq!(Tag::classify(ns.as_bytes(), local.as_bytes()), Some(p.tag));
                assert!(p.min <= 1 && p.max >= 1 && p.min <= p.max);
                assert!(!model[..i].iter().any(|q| q.tag == p.tag), "{:?} twice", p.tag);
            }
        }
        assert_eq!(content(Element::Message)[3], upto(Tag::ProtectedPerson, 9));
    }
}
