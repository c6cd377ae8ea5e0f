//! The status Porter sends a court about one inbound message (ICD §4).

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::error::FieldError;

/// The ICD §4 status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusKind {
    Accepted,
    Rejected,
    ConflictRejected,
    PartnerAccepted,
    PartnerRejected,
    DeadLettered,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Accepted => "ACCEPTED",
            StatusKind::Rejected => "REJECTED",
            StatusKind::ConflictRejected => "CONFLICT_REJECTED",
            StatusKind::PartnerAccepted => "PARTNER_ACCEPTED",
            StatusKind::PartnerRejected => "PARTNER_REJECTED",
            StatusKind::DeadLettered => "DEAD_LETTERED",
        }
    }

    pub fn parse(s: &str) -> Option<StatusKind> {
        [
            StatusKind::Accepted,
            StatusKind::Rejected,
            StatusKind::ConflictRejected,
            StatusKind::PartnerAccepted,
            StatusKind::PartnerRejected,
            StatusKind::DeadLettered,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A partner an order is routed to: `CLETS`, `DOJ` or `LEA:<ORI>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PartnerId {
    Clets,
    Doj,
    Lea(String),
}

impl PartnerId {
    /// The `por:RoutedPartner` / `por:Partner` spelling.
    pub fn wire_name(&self) -> String {
        match self {
            PartnerId::Clets => "CLETS".into(),
            PartnerId::Doj => "DOJ".into(),
            PartnerId::Lea(ori) => format!("LEA:{ori}"),
        }
    }

    /// The spelling inside an Idempotency-Key (`LEA-<ORI>`).
    pub fn key_name(&self) -> String {
        match self {
            PartnerId::Lea(ori) => format!("LEA-{ori}"),
            other => other.wire_name(),
        }
    }

    pub fn parse(s: &str) -> Option<PartnerId> {
        match s {
            "CLETS" => Some(PartnerId::Clets),
            "DOJ" => Some(PartnerId::Doj),
            _ => s.strip_prefix("LEA:").map(|o| PartnerId::Lea(o.to_string())),
        }
    }
}

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.wire_name())
    }
}

impl From<PartnerId> for String {
    fn from(p: PartnerId) -> String {
        p.wire_name()
    }
}

impl TryFrom<String> for PartnerId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PartnerId::parse(&s).ok_or_else(|| format!("unknown partner {s:?}"))
    }
}

/// A partner's record id, e.g. scheme `NIC`, `FCN` or `tracking_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRecordId {
    pub scheme: String,
    pub id: String,
}

/// One `por:OrderStatusMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMessage {
    pub court_ori: String,
    pub order_number: Option<String>,
    pub sequence: Option<u32>,
    /// The inbound `message_id`.
    pub correlates_to: String,
    pub status_sequence: u32,
    pub status_at: DateTime<FixedOffset>,
    pub status: StatusKind,
    pub partner: Option<PartnerId>,
    #[serde(default)]
    pub routed_partners: Vec<PartnerId>,
    #[serde(default)]
    pub partner_record_ids: Vec<PartnerRecordId>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
    #[serde(default)]
    pub warnings: Vec<FieldError>,
}

/// The current time in California civil time, with its offset, as status
/// timestamps carry it (ICD §0).
pub fn now_pacific() -> DateTime<FixedOffset> {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Los_Angeles)
        .fixed_offset()
}
