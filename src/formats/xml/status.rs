//! The ICD §4 `por:OrderStatusMessage`: written by the broker, read back by
//! the court simulator and the tests.

use chrono::{DateTime, SecondsFormat};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use serde::Deserialize;
use serde::de::IntoDeserializer;

use crate::model::{ErrorCode, FieldError, PartnerId, PartnerRecordId, StatusKind, StatusMessage};

use super::names;
use super::writer::XmlOut;

/// Writes a status in the shape of the ICD §4 sample. The element order is
/// fixed, the time has milliseconds and an offset, and the output depends
/// on nothing but `status`.
pub fn write_status(status: &StatusMessage) -> Vec<u8> {
    let mut x = XmlOut::new("por:OrderStatusMessage", &[("xmlns:por", names::POR)]);
    x.leaf("por:CourtORI", &status.court_ori);
    x.leaf_opt("por:OrderNumber", status.order_number.as_deref());
    x.leaf_opt("por:Sequence", status.sequence.map(|s| s.to_string()).as_deref());
    x.leaf("por:CorrelatesTo", &status.correlates_to);
    x.leaf("por:StatusSequence", &status.status_sequence.to_string());
    x.leaf(
        "por:StatusDateTime",
        &status.status_at.to_rfc3339_opts(SecondsFormat::Millis, false),
    );
    x.leaf("por:Status", status.status.as_str());
    x.leaf_opt(
        "por:Partner",
        status.partner.as_ref().map(PartnerId::wire_name).as_deref(),
    );
    for partner in &status.routed_partners {
        x.leaf("por:RoutedPartner", &partner.wire_name());
    }
    for record in &status.partner_record_ids {
        x.leaf_with("por:PartnerRecordID", &[("scheme", &record.scheme)], &record.id);
    }
    for (element, list) in [("por:Error", &status.errors), ("por:Warning", &status.warnings)] {
        for issue in list {
            x.open(element);
            x.leaf("por:Code", issue.code.as_str());
            x.leaf("por:Field", &issue.field);
            x.leaf_opt("por:Location", issue.location.as_deref());
            x.leaf("por:Text", &issue.text);
            x.close(element);
        }
    }
    x.finish()
}

/// The elements of a status, by local name in the `por` namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Root,
    CourtOri,
    OrderNumber,
    Sequence,
    CorrelatesTo,
    StatusSequence,
    StatusDateTime,
    Status,
    Partner,
    RoutedPartner,
    PartnerRecordId,
    Error,
    Warning,
    Code,
    Field,
    Location,
    Text,
}

impl Part {
    fn from_local(local: &[u8]) -> Option<Part> {
        Some(match local {
            b"OrderStatusMessage" => Part::Root,
            b"CourtORI" => Part::CourtOri,
            b"OrderNumber" => Part::OrderNumber,
            b"Sequence" => Part::Sequence,
            b"CorrelatesTo" => Part::CorrelatesTo,
            b"StatusSequence" => Part::StatusSequence,
            b"StatusDateTime" => Part::StatusDateTime,
            b"Status" => Part::Status,
            b"Partner" => Part::Partner,
            b"RoutedPartner" => Part::RoutedPartner,
            b"PartnerRecordID" => Part::PartnerRecordId,
            b"Error" => Part::Error,
            b"Warning" => Part::Warning,
            b"Code" => Part::Code,
            b"Field" => Part::Field,
            b"Location" => Part::Location,
            b"Text" => Part::Text,
            _ => return None,
        })
    }

    /// Whether this element may appear directly inside `parent`.
    fn allowed_in(self, parent: Option<Part>) -> bool {
        use Part::*;
        match parent {
            None => self == Root,
            Some(Root) => !matches!(self, Root | Code | Field | Location | Text),
            Some(Error | Warning) => matches!(self, Code | Field | Location | Text),
            Some(_) => false,
        }
    }
}

/// A status being read; required parts are checked at the end.
#[derive(Default)]
struct Draft {
    court_ori: Option<String>,
    order_number: Option<String>,
    sequence: Option<u32>,
    correlates_to: Option<String>,
    status_sequence: Option<u32>,
    status_at: Option<DateTime<chrono::FixedOffset>>,
    status: Option<StatusKind>,
    partner: Option<PartnerId>,
    routed_partners: Vec<PartnerId>,
    partner_record_ids: Vec<PartnerRecordId>,
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
    /// The open `por:Error` or `por:Warning`: code, field, location, text.
    issue: [Option<String>; 4],
    /// The open `por:PartnerRecordID`'s scheme.
    scheme: Option<String>,
}

fn once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("por:{name} appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn number(value: &str, name: &str) -> Result<u32, String> {
    value
        .parse()
        .map_err(|_| format!("por:{name} {value:?} is not a non-negative integer"))
}

fn partner(value: &str) -> Result<PartnerId, String> {
    PartnerId::parse(value).ok_or_else(|| format!("unknown partner {value:?}"))
}

fn error_code(value: &str) -> Result<ErrorCode, String> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = value.into_deserializer();
    ErrorCode::deserialize(de).map_err(|_| format!("unknown error code {value:?}"))
}

impl Draft {
    /// Stores a closed leaf's trimmed text.
    fn leaf(&mut self, part: Part, value: &str) -> Result<(), String> {
        let text = value.to_owned();
        match part {
            Part::CourtOri => once(&mut self.court_ori, text, "CourtORI"),
            Part::OrderNumber => once(&mut self.order_number, text, "OrderNumber"),
            Part::Sequence => once(&mut self.sequence, number(value, "Sequence")?, "Sequence"),
            Part::CorrelatesTo => once(&mut self.correlates_to, text, "CorrelatesTo"),
            Part::StatusSequence => once(
                &mut self.status_sequence,
                number(value, "StatusSequence")?,
                "StatusSequence",
            ),
            Part::StatusDateTime => {
                let at =
                    DateTime::parse_from_rfc3339(value).map_err(|e| format!("por:StatusDateTime {value:?}: {e}"))?;
                once(&mut self.status_at, at, "StatusDateTime")
            }
            Part::Status => {
                let kind = StatusKind::parse(value).ok_or_else(|| format!("unknown status {value:?}"))?;
                once(&mut self.status, kind, "Status")
            }
            Part::Partner => once(&mut self.partner, partner(value)?, "Partner"),
            Part::RoutedPartner => {
                self.routed_partners.push(partner(value)?);
                Ok(())
            }
            Part::PartnerRecordId => {
                let scheme = self
                    .scheme
                    .take()
                    .ok_or("por:PartnerRecordID needs a scheme attribute")?;
                self.partner_record_ids.push(PartnerRecordId { scheme, id: text });
                Ok(())
            }
            Part::Code => once(&mut self.issue[0], text, "Code"),
            Part::Field => once(&mut self.issue[1], text, "Field"),
            Part::Location => once(&mut self.issue[2], text, "Location"),
            Part::Text => once(&mut self.issue[3], text, "Text"),
            Part::Root | Part::Error | Part::Warning => Ok(()),
        }
    }

    /// Closes a `por:Error` or `por:Warning`.
    fn issue(&mut self, warning: bool) -> Result<(), String> {
        let [code, field, location, text] = std::mem::take(&mut self.issue);
        let name = if warning { "por:Warning" } else { "por:Error" };
        let code = error_code(&code.ok_or_else(|| format!("{name} needs por:Code"))?)?;
        let field = field.ok_or_else(|| format!("{name} needs por:Field"))?;
        let text = text.ok_or_else(|| format!("{name} needs por:Text"))?;
        let issue = FieldError {
            code,
            field,
            location,
            text,
        };
        if warning {
            self.warnings.push(issue)
        } else {
            self.errors.push(issue)
        }
        Ok(())
    }

    fn finish(self) -> Result<StatusMessage, String> {
        let need = |name: &str| format!("por:{name} is missing");
        Ok(StatusMessage {
            court_ori: self.court_ori.ok_or_else(|| need("CourtORI"))?,
            order_number: self.order_number,
            sequence: self.sequence,
            correlates_to: self.correlates_to.ok_or_else(|| need("CorrelatesTo"))?,
            status_sequence: self.status_sequence.ok_or_else(|| need("StatusSequence"))?,
            status_at: self.status_at.ok_or_else(|| need("StatusDateTime"))?,
            status: self.status.ok_or_else(|| need("Status"))?,
            partner: self.partner,
            routed_partners: self.routed_partners,
            partner_record_ids: self.partner_record_ids,
            errors: self.errors,
            warnings: self.warnings,
        })
    }
}

/// Reads a `por:OrderStatusMessage` (namespace-aware: any prefix or a
/// default namespace). The error says what is wrong and, for malformed XML,
/// at which byte.
pub fn read_status(body: &[u8]) -> Result<StatusMessage, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().enable_all_checks(true);
    let mut draft = Draft::default();
    let mut stack: Vec<Part> = Vec::with_capacity(4);
    let mut value = String::new();
    let mut root_seen = false;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok(read) => read,
            Err(e) => {
                return Err(format!("malformed XML at byte {}: {e}", reader.error_position()));
            }
        };
        let part = match &event {
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name();
                let known = match ns {
                    ResolveResult::Bound(ns) if ns.as_ref() == names::POR.as_bytes() => {
                        Part::from_local(local.as_ref())
                    }
                    _ => None,
                };
                let parent = stack.last().copied();
                match known {
                    Some(part) if part.allowed_in(parent) && !(part == Part::Root && root_seen) => {
                        Some((part, e.attributes()))
                    }
                    _ => {
                        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                        return Err(format!("unexpected element {name}"));
                    }
                }
            }
            _ => None,
        };
        let empty = matches!(event, Event::Empty(_));
        match &event {
            Event::Start(_) | Event::Empty(_) => {
                let Some((part, attributes)) = part else { continue };
                root_seen = true;
                for attribute in attributes {
                    let attribute = attribute.map_err(|e| format!("malformed attribute: {e}"))?;
                    if attribute.key.as_ref() == b"scheme" && part == Part::PartnerRecordId {
                        let scheme = attribute.unescape_value().map_err(|e| e.to_string())?;
                        draft.scheme = Some(scheme.trim().to_owned());
                    }
                }
                stack.push(part);
                value.clear();
                if empty {
                    close(&mut stack, &mut draft, &value)?;
                }
            }
            Event::End(_) => close(&mut stack, &mut draft, &value)?,
            Event::Text(t) => value.push_str(&t.xml10_content().map_err(|e| e.to_string())?),
            Event::CData(t) => value.push_str(&t.xml10_content().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                let raw: &[u8] = r.as_ref();
                let c =
                    match raw {
                        b"lt" => '<',
                        b"gt" => '>',
                        b"amp" => '&',
                        b"apos" => '\'',
                        b"quot" => '"',
                        _ => r.resolve_char_ref().ok().flatten().ok_or_else(|| {
                            format!("entity reference &{}; is not accepted", String::from_utf8_lossy(r))
                        })?,
                    };
                value.push(c);
            }
            Event::Comment(_) | Event::Decl(_) => {}
            Event::PI(_) | Event::DocType(_) => {
                return Err("processing instructions and DOCTYPEs are not accepted".into());
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() || !root_seen {
        return Err("the status message is incomplete".into());
    }
    draft.finish()
}

/// Closes the innermost open element.
fn close(stack: &mut Vec<Part>, draft: &mut Draft, value: &str) -> Result<(), String> {
    match stack.pop() {
        Some(part @ (Part::Error | Part::Warning)) => draft.issue(part == Part::Warning),
        Some(part) => draft.leaf(part, value.trim()),
        None => Err("an end tag has no start tag".into()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn accepted() -> StatusMessage {
        StatusMessage {
            court_ori: "CA034025J".into(),
            order_number: Some("24DV01234".into()),
            sequence: Some(1),
            correlates_to: "cms-000123".into(),
            status_sequence: 1,
            status_at: chrono::FixedOffset::west_opt(8 * 3600)
                .unwrap()
                .with_ymd_and_hms(2026, 11, 25, 10, 15, 1)
                .unwrap()
                + chrono::Duration::milliseconds(250),
            status: StatusKind::Accepted,
            partner: None,
            routed_partners: vec![PartnerId::Clets, PartnerId::Doj, PartnerId::Lea("CA0341100".into())],
            partner_record_ids: vec![],
            errors: vec![],
            warnings: vec![],
        }
    }

    /// The ICD §4 sample's shape: element order, millisecond time with offset, schemes.
    #[test]
    fn writes_the_sample_shape() {
        let status = StatusMessage {
            status_sequence: 2,
            status: StatusKind::PartnerAccepted,
            partner: Some(PartnerId::Clets),
            routed_partners: vec![],
            partner_record_ids: vec![
                PartnerRecordId {
                    scheme: "NIC".into(),
                    id: "H123456789".into(),
                },
                PartnerRecordId {
                    scheme: "FCN".into(),
                    id: "0340000012345".into(),
                },
            ],
            ..accepted()
        };
        let text = String::from_utf8(write_status(&status)).unwrap();
        let expected = r#"<por:OrderStatusMessage xmlns:por="urn:por:order:1">
  <por:CourtORI>CA034025J</por:CourtORI>
  <por:OrderNumber>24DV01234</por:OrderNumber>
  <por:Sequence>1</por:Sequence>
  <por:CorrelatesTo>cms-000123</por:CorrelatesTo>
  <por:StatusSequence>2</por:StatusSequence>
  <por:StatusDateTime>2026-11-25T10:15:01.250-08:00</por:StatusDateTime>
  <por:Status>PARTNER_ACCEPTED</por:Status>
  <por:Partner>CLETS</por:Partner>
  <por:PartnerRecordID scheme="NIC">H123456789</por:PartnerRecordID>
  <por:PartnerRecordID scheme="FCN">0340000012345</por:PartnerRecordID>
</por:OrderStatusMessage>
"#;
        assert_eq!(text, expected);
        assert_eq!(read_status(text.as_bytes()).unwrap(), status);
    }

    /// Statuses with routed partners, errors (with and without location) and
    /// escaped text round-trip.
    #[test]
    fn round_trip() {
        let rejected = StatusMessage {
            order_number: None,
            sequence: None,
            status: StatusKind::Rejected,
            routed_partners: vec![],
            errors: vec![
                FieldError::new(
                    ErrorCode::InvalidDate,
                    "order.issue_date",
                    "\"2026-02-30\" <is> & not real",
                )
                .at("12:5"),
                FieldError::new(ErrorCode::Missing, "protected_persons", "at least one is needed"),
            ],
            warnings: vec![FieldError::new(ErrorCode::Shortened, "restrained_person.name", "cut")],
            ..accepted()
        };
        for status in [accepted(), rejected] {
            let bytes = write_status(&status);
            assert_eq!(
                read_status(&bytes).unwrap(),
                status,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(write_status(&status), bytes, "deterministic");
        }
    }

    /// Another prefix or a default namespace reads the same; a wrong namespace does not.
    #[test]
    fn namespace_aware() {
        let text = String::from_utf8(write_status(&accepted())).unwrap();
        let default_ns = text
            .replace("xmlns:por=", "xmlns=")
            .replace("<por:", "<")
            .replace("</por:", "</");
        assert_eq!(read_status(default_ns.as_bytes()).unwrap(), accepted());
        let other = text
            .replace("xmlns:por=", "xmlns:s=")
            .replace("<por:", "<s:")
            .replace("</por:", "</s:");
        assert_eq!(read_status(other.as_bytes()).unwrap(), accepted());
        let wrong = text.replace("urn:por:order:1", "urn:other");
        assert!(read_status(wrong.as_bytes()).is_err());
        assert!(read_status(b"<x/>").is_err());
        assert!(read_status(&text.as_bytes()[..text.len() / 2]).is_err());
    }
}
