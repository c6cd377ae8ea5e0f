//! The XML vocabulary of ICD §2 and §4: namespace URIs and the elements
//! Porter knows, identified by (namespace URI, local name).

/// The Porter namespace (prefix `por`).
pub const POR: &str = "urn:por:order:1";
/// NIEM 4.0 core (prefix `nc`).
pub const NC: &str = "http://release.niem.gov/niem/niem-core/4.0/";
/// NIEM 4.0 Justice domain 6.0 (prefix `j`).
pub const J: &str = "http://release.niem.gov/niem/domains/jxdm/6.0/";
/// XML Schema instance; only `schemaLocation` hints are accepted from it.
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Every order-message element tag, whatever prefix the document gives it.
///
/// The discriminant doubles as a bit index in a parent's "already seen" mask,
/// so there must stay fewer than 64 variants. Where each may appear, in which
/// order and how often is in the `schema` module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Tag {
    // por
    ProtectiveOrderMessage,
    MessageHeader,
    CourtOri,
    Action,
    Sequence,
    SentDateTime,
    ProtectionOrder,
    CaseNumber,
    OrderType,
    FormId,
    ExpirationDateTime,
    JudicialOfficerName,
    BradyCode,
    FirearmRelinquishmentIndicator,
    TerminationDate,
    CancelReason,
    Service,
    ServedDateTime,
    ServedBy,
    ServingAgencyOri,
    ServiceMethod,
    RestrainedPerson,
    SexCode,
    RaceCode,
    HeightFeetInches,
    WeightPounds,
    EyeColorCode,
    HairColorCode,
    Residence,
    Street,
    City,
    State,
    Zip,
    DriverLicense,
    Number,
    ProtectedPerson,
    RelationshipCode,
    OrderImage,
    // nc
    ActivityIdentification,
    IdentificationId,
    Date,
    PersonName,
    PersonGivenName,
    PersonMiddleName,
    PersonSurName,
    PersonNameSuffixText,
    PersonBirthDate,
    // j
    CourtOrderIssuingDate,
    ProtectionOrderConditionText,
    ProtectionOrderConditionCode,
}

impl Tag {
    /// This element's bit in its parent's "already seen" mask.
    pub(super) fn bit(self) -> u64 {
        1u64 << (self as u8)
    }

    /// The element's name with the ICD's conventional prefix (`por:CourtORI`,
    /// `nc:Date`, …), for error texts about an element the document did not
    /// write at that spot.
    pub(super) fn name(self) -> &'static str {
        use Tag::*;
        match self {
            ProtectiveOrderMessage => "por:ProtectiveOrderMessage",
            MessageHeader => "por:MessageHeader",
            CourtOri => "por:CourtORI",
            Action => "por:Action",
            Sequence => "por:Sequence",
            SentDateTime => "por:SentDateTime",
            ProtectionOrder => "por:ProtectionOrder",
            CaseNumber => "por:CaseNumber",
            OrderType => "por:OrderType",
            FormId => "por:FormID",
            ExpirationDateTime => "por:ExpirationDateTime",
            JudicialOfficerName => "por:JudicialOfficerName",
            BradyCode => "por:BradyCode",
            FirearmRelinquishmentIndicator => "por:FirearmRelinquishmentIndicator",
            TerminationDate => "por:TerminationDate",
            CancelReason => "por:CancelReason",
            Service => "por:Service",
            ServedDateTime => "por:ServedDateTime",
            ServedBy => "por:ServedBy",
            ServingAgencyOri => "por:ServingAgencyORI",
            ServiceMethod => "por:ServiceMethod",
            RestrainedPerson => "por:RestrainedPerson",
            SexCode => "por:SexCode",
            RaceCode => "por:RaceCode",
            HeightFeetInches => "por:HeightFeetInches",
            WeightPounds => "por:WeightPounds",
            EyeColorCode => "por:EyeColorCode",
            HairColorCode => "por:HairColorCode",
            Residence => "por:Residence",
            Street => "por:Street",
            City => "por:City",
            State => "por:State",
            Zip => "por:ZIP",
            DriverLicense => "por:DriverLicense",
            Number => "por:Number",
            ProtectedPerson => "por:ProtectedPerson",
            RelationshipCode => "por:RelationshipCode",
            OrderImage => "por:OrderImage",
            ActivityIdentification => "nc:ActivityIdentification",
            IdentificationId => "nc:IdentificationID",
            Date => "nc:Date",
            PersonName => "nc:PersonName",
            PersonGivenName => "nc:PersonGivenName",
            PersonMiddleName => "nc:PersonMiddleName",
            PersonSurName => "nc:PersonSurName",
            PersonNameSuffixText => "nc:PersonNameSuffixText",
            PersonBirthDate => "nc:PersonBirthDate",
            CourtOrderIssuingDate => "j:CourtOrderIssuingDate",
            ProtectionOrderConditionText => "j:ProtectionOrderConditionText",
            ProtectionOrderConditionCode => "j:ProtectionOrderConditionCode",
        }
    }

    /// Identifies an element from its resolved namespace and local name.
    pub(super) fn classify(ns: &[u8], local: &[u8]) -> Option<Tag> {
        use Tag::*;
        if ns == POR.as_bytes() {
            Some(match local {
                b"ProtectiveOrderMessage" => ProtectiveOrderMessage,
                b"MessageHeader" => MessageHeader,
                b"CourtORI" => CourtOri,
                b"Action" => Action,
                b"Sequence" => Sequence,
                b"SentDateTime" => SentDateTime,
                b"ProtectionOrder" => ProtectionOrder,
                b"CaseNumber" => CaseNumber,
                b"OrderType" => OrderType,
                b"FormID" => FormId,
                b"ExpirationDateTime" => ExpirationDateTime,
                b"JudicialOfficerName" => JudicialOfficerName,
                b"BradyCode" => BradyCode,
                b"FirearmRelinquishmentIndicator" => FirearmRelinquishmentIndicator,
                b"TerminationDate" => TerminationDate,
                b"CancelReason" => CancelReason,
                b"Service" => Service,
                b"ServedDateTime" => ServedDateTime,
                b"ServedBy" => ServedBy,
                b"ServingAgencyORI" => ServingAgencyOri,
                b"ServiceMethod" => ServiceMethod,
                b"RestrainedPerson" => RestrainedPerson,
                b"SexCode" => SexCode,
                b"RaceCode" => RaceCode,
                b"HeightFeetInches" => HeightFeetInches,
                b"WeightPounds" => WeightPounds,
                b"EyeColorCode" => EyeColorCode,
                b"HairColorCode" => HairColorCode,
                b"Residence" => Residence,
                b"Street" => Street,
                b"City" => City,
                b"State" => State,
                b"ZIP" => Zip,
                b"DriverLicense" => DriverLicense,
                b"Number" => Number,
                b"ProtectedPerson" => ProtectedPerson,
                b"RelationshipCode" => RelationshipCode,
                b"OrderImage" => OrderImage,
                _ => return None,
            })
        } else if ns == NC.as_bytes() {
            Some(match local {
                b"ActivityIdentification" => ActivityIdentification,
                b"IdentificationID" => IdentificationId,
                b"Date" => Date,
                b"PersonName" => PersonName,
                b"PersonGivenName" => PersonGivenName,
                b"PersonMiddleName" => PersonMiddleName,
                b"PersonSurName" => PersonSurName,
                b"PersonNameSuffixText" => PersonNameSuffixText,
                b"PersonBirthDate" => PersonBirthDate,
                _ => return None,
            })
        } else if ns == J.as_bytes() {
            Some(match local {
                b"CourtOrderIssuingDate" => CourtOrderIssuingDate,
                b"ProtectionOrderConditionText" => ProtectionOrderConditionText,
                b"ProtectionOrderConditionCode" => ProtectionOrderConditionCode,
                _ => return None,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element fits in a parent's 64-bit "already seen" mask.
    #[test]
    fn names_fit_the_seen_mask() {
        assert!((Tag::ProtectionOrderConditionCode as u8) < 64);
    }

    /// The same local name in another namespace is not the Porter element.
    #[test]
    fn classify_needs_the_namespace() {
        assert_eq!(Tag::classify(POR.as_bytes(), b"CourtORI"), Some(Tag::CourtOri));
        assert_eq!(Tag::classify(NC.as_bytes(), b"CourtORI"), None);
        assert_eq!(Tag::classify(b"urn:other", b"Date"), None);
    }
}
