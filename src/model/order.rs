//! The canonical order message (ICD §2 and §3, all five actions).
//!
//! Field names are the canonical paths used in errors and in the LEA JSON
//! body (snake_case). Optional fields are `None` when the input left them
//! empty. Dates and times without an offset are California civil time
//! (America/Los_Angeles), as the ICD fixes.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// A text field of the model. Most values are short (codes, names, numbers):
/// up to 24 bytes are kept inline, so reading an order allocates once per
/// long value, not once per field.
pub type Text = compact_str::CompactString;

/// What a message does to its order (ICD §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    Issue,
    Modify,
    Terminate,
    Cancel,
    Service,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Issue,
        Action::Modify,
        Action::Terminate,
        Action::Cancel,
        Action::Service,
    ];

    /// Spelled-out name, as in XML `por:Action` (`ISSUE`, …).
    pub fn name(self) -> &'static str {
        match self {
            Action::Issue => "ISSUE",
            Action::Modify => "MODIFY",
            Action::Terminate => "TERMINATE",
            Action::Cancel => "CANCEL",
            Action::Service => "SERVICE",
        }
    }

    /// Two-letter code, as in fixed-width columns 46–47 (`IS`, …).
    pub fn code(self) -> &'static str {
        match self {
            Action::Issue => "IS",
            Action::Modify => "MD",
            Action::Terminate => "TM",
            Action::Cancel => "CX",
            Action::Service => "SV",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }

    pub fn from_code(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == s)
    }

    /// ISSUE and MODIFY carry the full order.
    pub fn carries_full_order(self) -> bool {
        matches!(self, Action::Issue | Action::Modify)
    }
}

/// One order message: header, order, parties and optional signed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OrderMessage {
    pub court_ori: Text,
    pub action: Option<Action>,
    pub sequence: Option<u32>,
    /// XML `SentDateTime`; for fixed-width, the AMQP `timestamp`.
    pub sent_at: Option<DateTime<FixedOffset>>,
    pub order: ProtectionOrder,
    pub restrained_person: Option<RestrainedPerson>,
    #[serde(default)]
    pub protected_persons: Vec<ProtectedPerson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<OrderImage>,
}

impl OrderMessage {
    /// The order key's second half, when present.
    pub fn order_number(&self) -> Option<&str> {
        self.order.order_number.as_deref()
    }
}

/// The order itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProtectionOrder {
    pub order_number: Option<Text>,
    pub case_number: Option<Text>,
    pub order_type: Option<Text>,
    pub form_id: Option<Text>,
    pub issue_date: Option<NaiveDate>,
    /// Expiration, California civil time; `None` = no expiration.
    pub expiration: Option<NaiveDateTime>,
    pub judicial_officer: Option<Text>,
    pub brady: Option<Text>,
    pub condition_text: Option<Text>,
    #[serde(default)]
    pub condition_codes: Vec<Text>,
    pub firearm_relinquishment: Option<bool>,
    /// TERMINATE.
    pub termination_date: Option<NaiveDate>,
    /// CANCEL (≤ 60 characters).
    pub cancel_reason: Option<Text>,
    /// SERVICE.
    pub service: Option<Service>,
}

/// A person's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PersonName {
    pub last: Option<Text>,
    pub first: Option<Text>,
    pub middle: Option<Text>,
    pub suffix: Option<Text>,
}

/// The person the order restrains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RestrainedPerson {
    pub name: PersonName,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Text>,
    pub race: Option<Text>,
    /// Height as `FII` (feet, inches), e.g. `510`.
    pub height: Option<Text>,
    pub weight: Option<Text>,
    pub eye: Option<Text>,
    pub hair: Option<Text>,
    pub residence: Option<Address>,
    pub driver_license: Option<DriverLicense>,
}

/// A person the order protects (1–9 per order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProtectedPerson {
    pub name: PersonName,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Text>,
    pub race: Option<Text>,
    pub relationship: Option<Text>,
}

/// A residence address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Address {
    pub street: Option<Text>,
    pub city: Option<Text>,
    pub state: Option<Text>,
    pub zip: Option<Text>,
}

/// A driver licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DriverLicense {
    pub number: Option<Text>,
    pub state: Option<Text>,
}

/// Proof of service (SERVICE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Service {
    /// California civil time.
    pub served_at: Option<NaiveDateTime>,
    pub served_by: Option<Text>,
    pub serving_agency_ori: Option<Text>,
    /// `P`, `S`, `M` or `C`.
    pub method: Option<Text>,
}

/// The signed order's image (PDF or TIFF).
///
/// Its JSON (the canonical order the store keeps, the state of each later
/// message, an operator's edit) is a reference: the media type, the SHA-256
/// and the size. The bytes are never serialised: the store keeps them once,
/// in its `images` table under `sha256`, and the DOJ adapter loads them just
/// before it inlines them (ICD §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderImage {
    pub mime_type: String,
    /// Lowercase hex SHA-256 of the bytes, as the court declared it (the
    /// intake refuses a message whose image does not match it).
    pub sha256: String,
    /// The image's length in bytes.
    pub size: u64,
    /// The decoded bytes, when in hand: as read from a court's message, or
    /// loaded from the store for a DOJ request. `None` in an order read
    /// back from the store.
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
}

impl OrderImage {
    /// An image with its bytes in hand.
    pub fn new(mime_type: impl Into<String>, sha256: impl Into<String>, data: Vec<u8>) -> OrderImage {
        OrderImage {
            mime_type: mime_type.into(),
            sha256: sha256.into(),
            size: data.len() as u64,
            data: Some(data),
        }
    }
}
