//! Field-level errors and warnings (ICD §4 `por:Error` / `por:Warning`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The ICD §4 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Missing,
    InvalidFormat,
    InvalidCode,
    TooLong,
    InvalidDate,
    InvalidSequence,
    OriMismatch,
    DuplicateConflict,
    SequenceConflict,
    OrderClosed,
    SequenceGap,
    UnknownOrder,
    UnknownCourt,
    /// Not an ICD code of its own: a partner's permanent rejection, carried
    /// with `PARTNER_REJECTED` (the partner's own code is in the text).
    PartnerRejected,
    /// Porter's extension for `DEAD_LETTERED`: a transient failure outlasted
    /// the maximum retry age (ICD §9, 24 h by default).
    RetriesExhausted,
    /// A value Porter changed on its way to a partner (warnings only).
    Shortened,
    /// A value Porter sanitised on its way to a partner (warnings only).
    Sanitized,
    /// Porter's warning code: this message repeats an accepted one (the same
    /// order, sequence and canonical content under a new `message_id`) and
    /// has no second effect.
    Duplicate,
}

impl ErrorCode {
    /// The code as it appears on the wire (`MISSING`, `TOO_LONG`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Missing => "MISSING",
            ErrorCode::InvalidFormat => "INVALID_FORMAT",
            ErrorCode::InvalidCode => "INVALID_CODE",
            ErrorCode::TooLong => "TOO_LONG",
            ErrorCode::InvalidDate => "INVALID_DATE",
            ErrorCode::InvalidSequence => "INVALID_SEQUENCE",
            ErrorCode::OriMismatch => "ORI_MISMATCH",
            ErrorCode::DuplicateConflict => "DUPLICATE_CONFLICT",
            ErrorCode::SequenceConflict => "SEQUENCE_CONFLICT",
            ErrorCode::OrderClosed => "ORDER_CLOSED",
            ErrorCode::SequenceGap => "SEQUENCE_GAP",
            ErrorCode::UnknownOrder => "UNKNOWN_ORDER",
            ErrorCode::UnknownCourt => "UNKNOWN_COURT",
            ErrorCode::PartnerRejected => "PARTNER_REJECTED",
            ErrorCode::RetriesExhausted => "RETRIES_EXHAUSTED",
            ErrorCode::Shortened => "SHORTENED",
            ErrorCode::Sanitized => "SANITIZED",
            ErrorCode::Duplicate => "DUPLICATE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error or warning about one field: which field, where in the input,
/// and why. `field` is the canonical field path (for example
/// `restrained_person.sex`); `location` is in the input's own terms:
/// `record:column` for fixed-width, `line:column` for XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub code: ErrorCode,
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub text: String,
}

impl FieldError {
    pub fn new(code: ErrorCode, field: impl Into<String>, text: impl Into<String>) -> Self {
        FieldError {
            code,
            field: field.into(),
            location: None,
            text: text.into(),
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{} {} at {}: {}", self.code, self.field, loc, self.text),
            None => write!(f, "{} {}: {}", self.code, self.field, self.text),
        }
    }
}
