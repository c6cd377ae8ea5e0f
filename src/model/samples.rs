//! The ICD's sample order as the canonical model: what the §2 XML sample and
//! the §3 fixed-width sample both read as (the XML one also carries its
//! `SentDateTime`). Shared by the readers' and writers' tests.

use chrono::{NaiveDate, NaiveDateTime};

use super::{
    Action, Address, DriverLicense, OrderMessage, PersonName, ProtectedPerson, ProtectionOrder, RestrainedPerson, Text,
};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn datetime(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, mi, 0).unwrap()
}

fn s(text: &str) -> Option<Text> {
    Some(text.into())
}

/// The ICD sample ISSUE, without `sent_at`.
pub(crate) fn icd_issue() -> OrderMessage {
    OrderMessage {
        court_ori: "CA034025J".into(),
        action: Some(Action::Issue),
        sequence: Some(1),
        sent_at: None,
        order: ProtectionOrder {
            order_number: s("24DV01234"),
            case_number: s("24FL001234"),
            order_type: s("DV"),
            form_id: s("DV-130"),
            issue_date: Some(date(2026, 11, 25)),
            expiration: Some(datetime(2031, 11, 25, 23, 59)),
            judicial_officer: s("HON MARIA LOPEZ"),
            brady: s("Y"),
            condition_text: s("STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE."),
            condition_codes: vec!["01".into(), "05".into(), "07".into()],
            firearm_relinquishment: Some(true),
            termination_date: None,
            cancel_reason: None,
            service: None,
        },
        restrained_person: Some(RestrainedPerson {
            name: PersonName {
                last: s("DOE"),
                first: s("JOHN"),
                middle: s("ALLEN"),
                suffix: None,
            },
            birth_date: Some(date(1985, 2, 14)),
            sex: s("M"),
            race: s("W"),
            height: s("510"),
            weight: s("185"),
            eye: s("BRO"),
            hair: s("BLK"),
            residence: Some(Address {
                street: s("1200 J ST APT 4"),
                city: s("SACRAMENTO"),
                state: s("CA"),
                zip: s("95814"),
            }),
            driver_license: Some(DriverLicense {
                number: s("D1234567"),
                state: s("CA"),
            }),
        }),
        protected_persons: vec![ProtectedPerson {
            name: PersonName {
                last: s("DOE"),
                first: s("JANE"),
                middle: s("B"),
                suffix: None,
            },
            birth_date: Some(date(1987, 3, 2)),
            sex: s("F"),
            race: s("W"),
            relationship: s("SP"),
        }],
        image: None,
    }
}
