//! The canonical model: one shape for an order message whatever format it
//! arrived in (ICD §2 XML, §3 fixed-width), and the status Porter sends back
//! (ICD §4).
//!
//! Parsers fill these types; the validator checks them; the translators read
//! them. Codes (sex, race, order type, …) are kept as the court sent them, as
//! strings, so that a bad code becomes a field-level `INVALID_CODE` error from
//! the validator rather than a parse failure.

pub mod error;
pub mod locations;
pub mod order;
pub mod path;
#[cfg(test)]
pub(crate) mod samples;
pub mod status;

pub use error::{ErrorCode, FieldError};
pub use locations::{FieldColumns, Locations, Position};
pub use order::{
    Action, Address, DriverLicense, OrderImage, OrderMessage, PersonName, ProtectedPerson, ProtectionOrder,
    RestrainedPerson, Service, Text,
};
pub use path::FieldPath;
pub use status::{PartnerId, PartnerRecordId, StatusKind, StatusMessage, now_pacific};
