//! Writes a generated message as the ICD §2 XML order message.
//!
//! The layout follows the §2 sample: prefixes `por`, `nc` and `j`, two-space
//! indentation, the same line grouping and element order. ISSUE and MODIFY
//! carry the full order; TERMINATE, CANCEL and SERVICE carry the order's
//! identification, case number and type, and then their own element at the
//! end of `por:ProtectionOrder` (`por:TerminationDate`, `por:CancelReason`,
//! `por:Service`). An ISSUE or MODIFY with an [`ImageSpec`](super::image::ImageSpec)
//! ends with its `por:OrderImage` (a generated PDF, base64 in 76-character
//! lines, with its SHA-256); the PDF is generated here, when the message is
//! written.

use std::fmt::Write as _;

use quick_xml::escape::partial_escape;

use super::image::OrderImage;
use super::orders::{Action, GeneratedMessage, PersonName};

/// The Porter namespace (prefix `por`).
pub const POR_NS: &str = "urn:por:order:1";
/// NIEM 4.0 core (prefix `nc`).
pub const NC_NS: &str = "http://release.niem.gov/niem/niem-core/4.0/";
/// NIEM Justice 6.0 (prefix `j`).
pub const J_NS: &str = "http://release.niem.gov/niem/domains/jxdm/6.0/";

/// The message as an ICD §2 `por:ProtectiveOrderMessage` (UTF-8).
pub fn to_xml(message: &GeneratedMessage) -> Vec<u8> {
    let o = &message.order;
    let mut x = String::with_capacity(4096);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<por:ProtectiveOrderMessage xmlns:por=\"{POR_NS}\"\n    xmlns:nc=\"{NC_NS}\"\n    xmlns:j=\"{J_NS}\">"
    );
    x.push_str("  <por:MessageHeader>\n");
    line(&mut x, 4, "por:CourtORI", &message.court_ori);
    line(&mut x, 4, "por:Action", message.action.name());
    line(&mut x, 4, "por:Sequence", &message.sequence.to_string());
    line(
        &mut x,
        4,
        "por:SentDateTime",
        &message.sent_at.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
    );
    x.push_str("  </por:MessageHeader>\n");

    x.push_str("  <por:ProtectionOrder>\n");
    let _ = writeln!(
        x,
        "    <nc:ActivityIdentification>{}</nc:ActivityIdentification>",
        element("nc:IdentificationID", &o.order_number)
    );
    line(&mut x, 4, "por:CaseNumber", &o.case_number);
    line(&mut x, 4, "por:OrderType", &o.order_type);
    if message.action.carries_full_order() {
        line(&mut x, 4, "por:FormID", &o.form_id);
        let _ = writeln!(
            x,
            "    <j:CourtOrderIssuingDate>{}</j:CourtOrderIssuingDate>",
            element("nc:Date", &o.issue_date.format("%Y-%m-%d").to_string())
        );
        if let Some(exp) = o.expiration {
            line(
                &mut x,
                4,
                "por:ExpirationDateTime",
                &exp.format("%Y-%m-%dT%H:%M:%S").to_string(),
            );
        }
        line(&mut x, 4, "por:JudicialOfficerName", &o.judicial_officer);
        line(&mut x, 4, "por:BradyCode", &o.brady.to_string());
        if !o.condition_text.is_empty() {
            line(&mut x, 4, "j:ProtectionOrderConditionText", &o.condition_text);
        }
        for code in &o.condition_codes {
            line(&mut x, 4, "j:ProtectionOrderConditionCode", code);
        }
        line(
            &mut x,
            4,
            "por:FirearmRelinquishmentIndicator",
            if o.firearm_relinquishment { "true" } else { "false" },
        );
    }
    match &message.action {
        Action::Issue | Action::Modify => {}
        Action::Terminate { date } => {
            line(&mut x, 4, "por:TerminationDate", &date.format("%Y-%m-%d").to_string());
        }
        Action::Cancel { reason } => line(&mut x, 4, "por:CancelReason", reason),
        Action::Service(s) => {
            x.push_str("    <por:Service>\n");
            line(
                &mut x,
                6,
                "por:ServedDateTime",
                &s.served_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            );
            line(&mut x, 6, "por:ServedBy", &s.served_by);
            line(&mut x, 6, "por:ServingAgencyORI", &s.serving_agency_ori);
            line(&mut x, 6, "por:ServiceMethod", &s.method.to_string());
            x.push_str("    </por:Service>\n");
        }
    }
    x.push_str("  </por:ProtectionOrder>\n");

    if message.action.carries_full_order() {
        let r = &o.restrained;
        x.push_str("  <por:RestrainedPerson>\n");
        person_name(&mut x, &r.name);
        birth_date(&mut x, r.birth_date);
        let _ = writeln!(
            x,
            "    {}{}",
            element("por:SexCode", &r.sex.to_string()),
            element("por:RaceCode", &r.race.to_string())
        );
        let _ = writeln!(
            x,
            "    {}{}",
            element("por:HeightFeetInches", &r.height),
            element("por:WeightPounds", &r.weight.to_string())
        );
        let _ = writeln!(
            x,
            "    {}{}",
            element("por:EyeColorCode", &r.eye),
            element("por:HairColorCode", &r.hair)
        );
        let a = &r.residence;
        let _ = writeln!(
            x,
            "    <por:Residence>{}{}{}{}</por:Residence>",
            element("por:Street", &a.street),
            element("por:City", &a.city),
            element("por:State", &a.state),
            element("por:ZIP", &a.zip)
        );
        if let Some(dl) = &r.driver_license {
            let _ = writeln!(
                x,
                "    <por:DriverLicense>{}{}</por:DriverLicense>",
                element("por:Number", &dl.number),
                element("por:State", &dl.state)
            );
        }
        x.push_str("  </por:RestrainedPerson>\n");
        for p in &o.protected {
            x.push_str("  <por:ProtectedPerson>\n");
            person_name(&mut x, &p.name);
            birth_date(&mut x, p.birth_date);
            let _ = writeln!(
                x,
                "    {}{}{}",
                element("por:SexCode", &p.sex.to_string()),
                element("por:RaceCode", &p.race.to_string()),
                element("por:RelationshipCode", &p.relationship)
            );
            x.push_str("  </por:ProtectedPerson>\n");
        }
        if let Some(spec) = &message.image {
            let caption = format!("{} {}", o.order_number, o.form_id);
            x.push_str(&OrderImage::generate(spec, &caption).element());
        }
    }
    x.push_str("</por:ProtectiveOrderMessage>\n");
    x.into_bytes()
}

/// `<name>value</name>`, with `&`, `<` and `>` escaped.
fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", partial_escape(value))
}

/// One element on its own line, indented.
fn line(x: &mut String, indent: usize, name: &str, value: &str) {
    let _ = writeln!(x, "{:indent$}{}", "", element(name, value));
}

fn person_name(x: &mut String, n: &PersonName) {
    x.push_str("    <nc:PersonName>");
    x.push_str(&element("nc:PersonGivenName", &n.first));
    if let Some(middle) = &n.middle {
        x.push_str(&element("nc:PersonMiddleName", middle));
    }
    x.push_str(&element("nc:PersonSurName", &n.last));
    if let Some(suffix) = &n.suffix {
        x.push_str(&element("nc:PersonNameSuffixText", suffix));
    }
    x.push_str("</nc:PersonName>\n");
}

fn birth_date(x: &mut String, date: chrono::NaiveDate) {
    let _ = writeln!(
        x,
        "    <nc:PersonBirthDate>{}</nc:PersonBirthDate>",
        element("nc:Date", &date.format("%Y-%m-%d").to_string())
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, NaiveDate};

    use super::*;
    use crate::court::config::CourtFormat;
    use crate::court::orders::{Address, DriverLicense, Order, ProtectedPerson, RestrainedPerson, Service};

    /// The ICD §2/§3 sample order as a generated ISSUE.
    pub(crate) fn sample_message() -> GeneratedMessage {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        GeneratedMessage {
            message_id: "cms-000123".into(),
            court_ori: "CA034025J".into(),
            format: CourtFormat::Xml,
            action: Action::Issue,
            sequence: 1,
            sent_at: DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap(),
            order: Order {
                order_number: "24DV01234".into(),
                case_number: "24FL001234".into(),
                order_type: "DV".into(),
                form_id: "DV-130".into(),
                issue_date: d(2026, 11, 25),
                expiration: Some(d(2031, 11, 25).and_hms_opt(23, 59, 0).unwrap()),
                judicial_officer: "HON MARIA LOPEZ".into(),
                brady: 'Y',
                condition_text: "STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.".into(),
                condition_codes: vec!["01".into(), "05".into(), "07".into()],
                firearm_relinquishment: true,
                restrained: RestrainedPerson {
                    name: PersonName {
                        last: "DOE".into(),
                        first: "JOHN".into(),
                        middle: Some("ALLEN".into()),
                        suffix: None,
                    },
                    birth_date: d(1985, 2, 14),
                    sex: 'M',
                    race: 'W',
                    height: "510".into(),
                    weight: 185,
                    eye: "BRO".into(),
                    hair: "BLK".into(),
                    residence: Address {
                        street: "1200 J ST APT 4".into(),
                        city: "SACRAMENTO".into(),
                        state: "CA".into(),
                        zip: "95814".into(),
                    },
                    driver_license: Some(DriverLicense {
                        number: "D1234567".into(),
                        state: "CA".into(),
                    }),
                },
                protected: vec![ProtectedPerson {
                    name: PersonName {
                        last: "DOE".into(),
                        first: "JANE".into(),
                        middle: Some("B".into()),
                        suffix: None,
                    },
                    birth_date: d(1987, 3, 2),
                    sex: 'F',
                    race: 'W',
                    relationship: "SP".into(),
                }],
            },
            image: None,
        }
    }

    /// The sample order is written exactly as the ICD §2 sample (without its image).
    #[test]
    fn issue_matches_the_icd_sample() {
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<por:ProtectiveOrderMessage xmlns:por="urn:por:order:1"
    xmlns:nc="http://release.niem.gov/niem/niem-core/4.0/"
    xmlns:j="http://release.niem.gov/niem/domains/jxdm/6.0/">
  <por:MessageHeader>
    <por:CourtORI>CA034025J</por:CourtORI>
    <por:Action>ISSUE</por:Action>
    <por:Sequence>1</por:Sequence>
    <por:SentDateTime>2026-11-25T10:15:00-08:00</por:SentDateTime>
  </por:MessageHeader>
  <por:ProtectionOrder>
    <nc:ActivityIdentification><nc:IdentificationID>24DV01234</nc:IdentificationID></nc:ActivityIdentification>
    <por:CaseNumber>24FL001234</por:CaseNumber>
    <por:OrderType>DV</por:OrderType>
    <por:FormID>DV-130</por:FormID>
    <j:CourtOrderIssuingDate><nc:Date>2026-11-25</nc:Date></j:CourtOrderIssuingDate>
    <por:ExpirationDateTime>2031-11-25T23:59:00</por:ExpirationDateTime>
    <por:JudicialOfficerName>HON MARIA LOPEZ</por:JudicialOfficerName>
    <por:BradyCode>Y</por:BradyCode>
    <j:ProtectionOrderConditionText>STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.</j:ProtectionOrderConditionText>
    <j:ProtectionOrderConditionCode>01</j:ProtectionOrderConditionCode>
    <j:ProtectionOrderConditionCode>05</j:ProtectionOrderConditionCode>
    <j:ProtectionOrderConditionCode>07</j:ProtectionOrderConditionCode>
    <por:FirearmRelinquishmentIndicator>true</por:FirearmRelinquishmentIndicator>
  </por:ProtectionOrder>
  <por:RestrainedPerson>
    <nc:PersonName><nc:PersonGivenName>JOHN</nc:PersonGivenName><nc:PersonMiddleName>ALLEN</nc:PersonMiddleName><nc:PersonSurName>DOE</nc:PersonSurName></nc:PersonName>
    <nc:PersonBirthDate><nc:Date>1985-02-14</nc:Date></nc:PersonBirthDate>
    <por:SexCode>M</por:SexCode><por:RaceCode>W</por:RaceCode>
    <por:HeightFeetInches>510</por:HeightFeetInches><por:WeightPounds>185</por:WeightPounds>
    <por:EyeColorCode>BRO</por:EyeColorCode><por:HairColorCode>BLK</por:HairColorCode>
    <por:Residence><por:Street>1200 J ST APT 4</por:Street><por:City>SACRAMENTO</por:City><por:State>CA</por:State><por:ZIP>95814</por:ZIP></por:Residence>
    <por:DriverLicense><por:Number>D1234567</por:Number><por:State>CA</por:State></por:DriverLicense>
  </por:RestrainedPerson>
  <por:ProtectedPerson>
    <nc:PersonName><nc:PersonGivenName>JANE</nc:PersonGivenName><nc:PersonMiddleName>B</nc:PersonMiddleName><nc:PersonSurName>DOE</nc:PersonSurName></nc:PersonName>
    <nc:PersonBirthDate><nc:Date>1987-03-02</nc:Date></nc:PersonBirthDate>
    <por:SexCode>F</por:SexCode><por:RaceCode>W</por:RaceCode><por:RelationshipCode>SP</por:RelationshipCode>
  </por:ProtectedPerson>
</por:ProtectiveOrderMessage>
"#;
        assert_eq!(String::from_utf8(to_xml(&sample_message())).unwrap(), expected);
    }

    /// SERVICE carries the order id, case and type, then `por:Service` last, and no persons.
    #[test]
    fn service_goes_at_the_end_of_the_order() {
        let mut m = sample_message();
        m.sequence = 3;
        m.action = Action::Service(Service {
            served_at: NaiveDate::from_ymd_opt(2026, 11, 25)
                .unwrap()
                .and_hms_opt(9, 40, 0)
                .unwrap(),
            served_by: "DEP SMITH #1234".into(),
            serving_agency_ori: "CA0340000".into(),
            method: 'P',
        });
        let xml = String::from_utf8(to_xml(&m)).unwrap();
        let order = "  <por:ProtectionOrder>
    <nc:ActivityIdentification><nc:IdentificationID>24DV01234</nc:IdentificationID></nc:ActivityIdentification>
    <por:CaseNumber>24FL001234</por:CaseNumber>
    <por:OrderType>DV</por:OrderType>
    <por:Service>
      <por:ServedDateTime>2026-11-25T09:40:00</por:ServedDateTime>
      <por:ServedBy>DEP SMITH #1234</por:ServedBy>
      <por:ServingAgencyORI>CA0340000</por:ServingAgencyORI>
      <por:ServiceMethod>P</por:ServiceMethod>
    </por:Service>
  </por:ProtectionOrder>
</por:ProtectiveOrderMessage>
";
        assert!(xml.ends_with(order), "{xml}");
        assert!(xml.contains("<por:Action>SERVICE</por:Action>"));
        assert!(xml.contains("<por:Sequence>3</por:Sequence>"));
    }

    /// TERMINATE and CANCEL put their element at the end of the order; MODIFY carries the full order.
    #[test]
    fn terminate_cancel_and_modify() {
        let mut m = sample_message();
        m.action = Action::Terminate {
            date: NaiveDate::from_ymd_opt(2027, 1, 5).unwrap(),
        };
        let xml = String::from_utf8(to_xml(&m)).unwrap();
        assert!(xml.contains(
            "<por:OrderType>DV</por:OrderType>\n    <por:TerminationDate>2027-01-05</por:TerminationDate>\n  </por:ProtectionOrder>\n</por:ProtectiveOrderMessage>"
        ));
        m.action = Action::Cancel {
            reason: "ENTERED IN ERROR".into(),
        };
        let xml = String::from_utf8(to_xml(&m)).unwrap();
        assert!(xml.contains("<por:CancelReason>ENTERED IN ERROR</por:CancelReason>\n  </por:ProtectionOrder>"));
        m.action = Action::Modify;
        let issue = String::from_utf8(to_xml(&sample_message())).unwrap();
        let modify = String::from_utf8(to_xml(&m)).unwrap();
        assert_eq!(
            modify,
            issue.replace("<por:Action>ISSUE</por:Action>", "<por:Action>MODIFY</por:Action>")
        );
    }

    /// Runs `xmllint` with Porter's XSD over a document on its stdin.
    fn xmllint(xml: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/por.xsd");
        let mut child = std::process::Command::new("xmllint")
            .args(["--noout", "--nonet", "--huge", "--schema", xsd, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("xmllint is installed");
        child.stdin.take().unwrap().write_all(xml).unwrap();
        child.wait_with_output().unwrap()
    }

    /// An ISSUE and a MODIFY with the largest generated image end with a
    /// `por:OrderImage` whose digest matches, stay under the 16 MiB AMQP and
    /// 10 MiB image limits, and validate against `schemas/por.xsd`; so does a
    /// generated lifecycle with images.
    #[test]
    fn messages_with_an_image_validate() {
        use crate::court::image::{ImageSpec, MAX_PDF_BYTES};
        let mut m = sample_message();
        m.image = Some(ImageSpec {
            seed: 1,
            size: MAX_PDF_BYTES,
        });
        for action in [Action::Issue, Action::Modify] {
            m.action = action;
            let xml = to_xml(&m);
            assert!(xml.len() < 16 * 1024 * 1024);
            let text = std::str::from_utf8(&xml).unwrap();
            let image = OrderImage::generate(m.image.as_ref().unwrap(), "24DV01234 DV-130");
            assert!(image.data.len() <= 10 * 1024 * 1024);
            assert!(text.ends_with(&format!(
                "  </por:ProtectedPerson>\n{}</por:ProtectiveOrderMessage>\n",
                image.element()
            )));
            let out = xmllint(&xml);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }

        let court = crate::court::SimCourt {
            ori: "CA034025J".into(),
            name: String::new(),
            format: crate::court::CourtFormat::Xml,
        };
        let now = DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap();
        let mut generator = crate::court::OrderGenerator::new(&court, 3, now, "xsd").with_images(true);
        let messages = generator.next_order(true, true);
        assert!(messages[0].image.is_some());
        for message in &messages {
            let out = xmllint(&to_xml(message));
            assert!(
                out.status.success(),
                "{}: {}",
                message.action.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// `&`, `<` and `>` are escaped, quotes and accents are kept, and a suffix follows the surname.
    #[test]
    fn text_is_escaped() {
        let mut m = sample_message();
        m.order.restrained.name.last = "O'BRIEN & MUÑOZ".into();
        m.order.restrained.name.suffix = Some("JR".into());
        let xml = String::from_utf8(to_xml(&m)).unwrap();
        assert!(xml.contains(
            "<nc:PersonSurName>O'BRIEN &amp; MUÑOZ</nc:PersonSurName><nc:PersonNameSuffixText>JR</nc:PersonNameSuffixText>"
        ));
    }
}
