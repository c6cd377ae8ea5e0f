//! Canonical order messages shared by the reader and writer tests.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use sha2::{Digest, Sha256};

use crate::model::{Action, OrderImage, OrderMessage, PersonName, ProtectedPerson, ProtectionOrder, Service};

/// The ICD §2 sample without `por:OrderImage`, as a file.
pub(super) const ISSUE_SAMPLE: &[u8] = include_bytes!("../../../tests/fixtures/xml/issue-sample.xml");

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").unwrap()
}

fn s(text: &str) -> Option<crate::model::Text> {
    Some(text.into())
}

/// What `issue-sample.xml` reads as.
pub(super) fn issue_sample() -> OrderMessage {
    OrderMessage {
        sent_at: Some(DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap()),
        ..crate::model::samples::icd_issue()
    }
}

/// A small signed image whose hash matches.
pub(super) fn image() -> OrderImage {
    let data = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj <<>> endobj\n%%EOF\n".to_vec();
    OrderImage::new("application/pdf", hex::encode(Sha256::digest(&data)), data)
}

/// An ISSUE using every field: suffix, two protected persons, an image and
/// text that needs escaping.
pub(super) fn full_issue() -> OrderMessage {
    let mut msg = issue_sample();
    msg.order.condition_text = s("NO CONTACT <BY ANY MEANS> & STAY 100 \"YARDS\" AWAY.\nLINE 2");
    msg.order.firearm_relinquishment = Some(false);
    msg.order.condition_codes.push("09".into());
    if let Some(person) = msg.restrained_person.as_mut() {
        person.name.suffix = s("JR");
        person.name.first = s("JOSÉ");
    }
    msg.protected_persons.push(ProtectedPerson {
        name: PersonName {
            last: s("DOE"),
            first: s("JIMMY"),
            middle: None,
            suffix: None,
        },
        birth_date: Some(date(2015, 6, 1)),
        sex: s("M"),
        race: None,
        relationship: s("CH"),
    });
    msg.image = Some(image());
    msg
}

fn header(action: Action, sequence: u32) -> OrderMessage {
    OrderMessage {
        court_ori: "CA034025J".into(),
        action: Some(action),
        sequence: Some(sequence),
        sent_at: Some(DateTime::parse_from_rfc3339("2027-01-05T08:00:00.125+00:00").unwrap()),
        order: ProtectionOrder {
            order_number: s("24DV01234"),
            order_type: s("DV"),
            ..ProtectionOrder::default()
        },
        ..OrderMessage::default()
    }
}

/// A TERMINATE with its termination date.
pub(super) fn terminate() -> OrderMessage {
    let mut msg = header(Action::Terminate, 3);
    msg.order.termination_date = Some(date(2027, 1, 4));
    msg
}

/// A CANCEL with its reason.
pub(super) fn cancel() -> OrderMessage {
    let mut msg = header(Action::Cancel, 2);
    msg.order.cancel_reason = s("ENTERED IN ERROR - WRONG CASE");
    msg
}

/// A SERVICE with its proof of service.
pub(super) fn service() -> OrderMessage {
    let mut msg = header(Action::Service, 2);
    msg.order.service = Some(Service {
        served_at: Some(local("2026-11-26T14:30:00")),
        served_by: s("DEP R SMITH #4411"),
        serving_agency_ori: s("CA0340000"),
        method: s("P"),
    });
    msg
}
