//! Reading a DOJ notice: the identifying fields of an ICD §2 order message.
//!
//! DOJ only needs to know which order and which step of it a notice is, so the simulator reads just:
//! - `por:MessageHeader/por:CourtORI`, `por:Action` and `por:Sequence`;
//! - the order number, `por:ProtectionOrder/nc:ActivityIdentification/nc:IdentificationID`.
//!
//! The document must be well-formed UTF-8 XML 1.0 whose root is `por:ProtectiveOrderMessage` in the
//! namespace `urn:por:order:1`, at most 32 elements deep, without a DOCTYPE (no DTD, no entity
//! declarations) and without processing instructions (ICD §2). The schema validation is done separately
//! by xmllint ([`super::schema`]); this reader adds what the schema leaves open (a sequence of 1 or
//! more) and gives the simulator the four values. Errors name the element, never its value (the body
//! carries personal data).
//!
//! The reader runs before xmllint and tells two kinds of error apart ([`NoticeError`]): what must never
//! reach the validator (not UTF-8, a DOCTYPE, a processing instruction, another XML version or encoding,
//! nesting over 32) is refused at once; for anything else xmllint's verdict comes first, and the
//! reader's reason is given only when the schema accepted the document.

use memchr::memmem;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::common::{ACTIONS, OrderStep, is_order_number, is_ori};

/// The namespace of the order message (ICD §2).
pub const POR_NS: &str = "urn:por:order:1";

/// The deepest element nesting accepted (ICD §0).
pub const MAX_DEPTH: usize = 32;

/// Which value an open element's text goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    CourtOri,
    Action,
    Sequence,
    OrderNumber,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::CourtOri => "CourtORI",
            Self::Action => "Action",
            Self::Sequence => "Sequence",
            Self::OrderNumber => "ActivityIdentification/IdentificationID",
        }
    }

    /// The field an element is, from the local names of its ancestors (root first) and its own.
    fn of(path: &[String], local: &str) -> Option<Self> {
        let parents: Vec<&str> = path.iter().map(String::as_str).collect();
        match (parents.as_slice(), local) {
            (["ProtectiveOrderMessage", "MessageHeader"], "CourtORI") => Some(Self::CourtOri),
            (["ProtectiveOrderMessage", "MessageHeader"], "Action") => Some(Self::Action),
            (["ProtectiveOrderMessage", "MessageHeader"], "Sequence") => Some(Self::Sequence),
            (["ProtectiveOrderMessage", "ProtectionOrder", "ActivityIdentification"], "IdentificationID") => {
                Some(Self::OrderNumber)
            }
            _ => None,
        }
    }
}

/// Why a notice could not be read; either is a reason for a `422`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeError {
    /// The body must not reach the schema validator at all (not UTF-8, a DOCTYPE, a processing
    /// instruction, another XML version or encoding, nested too deep).
    Refused(String),
    /// The document is not what ICD §2 describes; the schema validator's verdict takes precedence.
    Invalid(String),
}

impl NoticeError {
    /// The reason, for the answer and the log.
    pub fn reason(&self) -> &str {
        match self {
            Self::Refused(why) | Self::Invalid(why) => why,
        }
    }
}

impl From<String> for NoticeError {
    fn from(why: String) -> Self {
        Self::Invalid(why)
    }
}

impl From<&str> for NoticeError {
    fn from(why: &str) -> Self {
        Self::Invalid(why.to_owned())
    }
}

/// Refuses, from the raw bytes and before any XML reader or validator sees
/// them, the markup ICD §2 refuses outright: a document type declaration (a
/// DTD, entity declarations) and any processing instruction but the leading
/// XML declaration. Scanning the bytes, not the reader's events, means a body
/// the reader gives up on early (a broken comment, a wrong root) cannot carry
/// a DTD past it to `xmllint`.
pub fn refuse_markup(body: &[u8]) -> Result<(), NoticeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if memmem::find(body, b"<!DOCTYPE").is_some() || memmem::find(body, b"<!ENTITY").is_some() {
        return Err(NoticeError::Refused(
            "DTDs and entity declarations are not accepted".into(),
        ));
    }
    let after_declaration = if body.starts_with(b"<?xml") {
        memmem::find(body, b"?>").map_or(body.len(), |end| end + 2)
    } else {
        0
    };
    if memmem::find(&body[after_declaration..], b"<?").is_some() {
        return Err(NoticeError::Refused("processing instructions are not accepted".into()));
    }
    Ok(())
}

/// Reads the notice's identifying fields.
pub fn read_notice(body: &[u8]) -> Result<OrderStep, NoticeError> {
    let text = std::str::from_utf8(body).map_err(|_| NoticeError::Refused("the body is not UTF-8 text".into()))?;
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.enable_all_checks(true);
    config.trim_text(false);
    config.expand_empty_elements = true;
    config.allow_unmatched_ends = false;

    let mut path: Vec<String> = Vec::new();
    let mut open: Option<(Field, String)> = None;
    let mut values: [Option<String>; 4] = Default::default();
    let mut root_seen = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("the body is not well-formed XML: {e}"))?;
        match event {
            Event::Start(e) => {
                let local = local_name(&e)?;
                if path.is_empty() {
                    if root_seen {
                        return Err("the document has more than one root element".into());
                    }
                    root_seen = true;
                    let in_por = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == POR_NS.as_bytes());
                    if local != "ProtectiveOrderMessage" || !in_por {
                        return Err(format!(
                            "the root element must be ProtectiveOrderMessage in the namespace {POR_NS}"
                        )
                        .into());
                    }
                }
                if path.len() >= MAX_DEPTH {
                    let why = format!("the document is nested deeper than {MAX_DEPTH} elements");
                    return Err(NoticeError::Refused(why));
                }
                open = Field::of(&path, &local).map(|f| (f, String::new()));
                path.push(local);
            }
            Event::End(_) => {
                if let Some((field, value)) = open.take() {
                    let slot = &mut values[field as usize];
                    if slot.is_some() {
                        return Err(format!("{} appears more than once", field.name()).into());
                    }
                    *slot = Some(value.trim().to_owned());
                }
                path.pop();
            }
            Event::Text(t) => {
                let content = t
                    .xml10_content()
                    .map_err(|e| format!("the body is not well-formed XML: {e}"))?;
                if let Some((_, value)) = &mut open {
                    value.push_str(&content);
                } else if path.is_empty() && !content.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Event::CData(t) => {
                let content = t
                    .xml10_content()
                    .map_err(|e| format!("the body is not well-formed XML: {e}"))?;
                if let Some((_, value)) = &mut open {
                    value.push_str(&content);
                } else if path.is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r
                            .decode()
                            .map_err(|e| format!("the body is not well-formed XML: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| "the body refers to an undeclared entity".to_owned())?
                            .to_owned()
                    }
                    Err(e) => return Err(format!("the body is not well-formed XML: {e}").into()),
                };
                if let Some((_, value)) = &mut open {
                    value.push_str(&resolved);
                }
            }
            Event::DocType(_) => {
                let why = "a DOCTYPE (DTD, entity declarations) is not accepted";
                return Err(NoticeError::Refused(why.into()));
            }
            Event::PI(_) => return Err(NoticeError::Refused("processing instructions are not accepted".into())),
            Event::Decl(d) => {
                if d.version().ok().as_deref() != Some(b"1.0") {
                    return Err(NoticeError::Refused("only XML version 1.0 is accepted".into()));
                }
                if let Some(encoding) = d.encoding()
                    && !encoding.is_ok_and(|e| e.eq_ignore_ascii_case(b"UTF-8"))
                {
                    return Err(NoticeError::Refused("only the UTF-8 encoding is accepted".into()));
                }
            }
            Event::Comment(_) => {}
            Event::Empty(_) => unreachable!("empty elements are expanded"),
            Event::Eof => break,
        }
    }
    if !root_seen {
        return Err("the body has no root element".into());
    }
    if !path.is_empty() {
        return Err("the document ends before its elements are closed".into());
    }
    let [court_ori, action, sequence, order_number] = values;
    let required = |field: Field, value: Option<String>| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| NoticeError::Invalid(format!("{} is missing", field.name())))
    };
    let court_ori = required(Field::CourtOri, court_ori)?;
    if !is_ori(&court_ori) {
        return Err("CourtORI must be 9 characters [A-Z0-9]".into());
    }
    let order_number = required(Field::OrderNumber, order_number)?;
    if !is_order_number(&order_number) {
        return Err("the order number must be at most 15 characters [A-Z0-9-]".into());
    }
    let sequence = required(Field::Sequence, sequence)?;
    let sequence = match sequence.parse::<u32>() {
        Ok(n) if n >= 1 && sequence.bytes().all(|b| b.is_ascii_digit()) => n,
        // The schema allows a leading '+' and 0; this simulator, like Porter (INVALID_SEQUENCE), does not.
        _ => return Err("Sequence must be a whole number of 1 or more".into()),
    };
    let action = required(Field::Action, action)?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(format!("Action must be one of {}", ACTIONS.join(", ")).into());
    }
    Ok(OrderStep {
        court_ori,
        order_number,
        sequence,
        action,
    })
}

fn local_name(e: &BytesStart<'_>) -> Result<String, String> {
    std::str::from_utf8(e.local_name().as_ref())
        .map(str::to_owned)
        .map_err(|_| "an element name is not UTF-8".to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small notice in the ICD §2 shape, valid against `schemas/por.xsd`, for the simulator's tests.
    pub(crate) fn notice(action: &str, sequence: u32) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<por:ProtectiveOrderMessage xmlns:por="urn:por:order:1"
    xmlns:nc="http://release.niem.gov/niem/niem-core/4.0/">
  <por:MessageHeader>
    <por:CourtORI>CA034025J</por:CourtORI>
    <por:Action>{action}</por:Action>
    <por:Sequence>{sequence}</por:Sequence>
    <por:SentDateTime>2026-11-25T10:15:00-08:00</por:SentDateTime>
  </por:MessageHeader>
  <por:ProtectionOrder>
    <nc:ActivityIdentification><nc:IdentificationID>24DV01234</nc:IdentificationID></nc:ActivityIdentification>
    <por:OrderType>DV</por:OrderType>
  </por:ProtectionOrder>
  <por:RestrainedPerson><nc:PersonName><nc:PersonSurName>DOE &amp; SON</nc:PersonSurName></nc:PersonName></por:RestrainedPerson>
</por:ProtectiveOrderMessage>"#
        )
    }

    /// The four identifying values are read from the header and the order's identification.
    #[test]
    fn reads_the_identifying_fields() {
        let id = read_notice(notice("MODIFY", 2).as_bytes()).unwrap();
        assert_eq!(
            id,
            OrderStep {
                court_ori: "CA034025J".into(),
                order_number: "24DV01234".into(),
                sequence: 2,
                action: "MODIFY".into(),
            }
        );
    }

    /// Every shipped sample of `schemas/samples/` reads.
    #[test]
    fn reads_the_shipped_samples() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/samples");
        for (file, action, sequence) in [
            ("issue.xml", "ISSUE", 1),
            ("modify.xml", "MODIFY", 2),
            ("service.xml", "SERVICE", 3),
            ("terminate.xml", "TERMINATE", 4),
            ("cancel.xml", "CANCEL", 4),
        ] {
            let body = std::fs::read(format!("{dir}/{file}")).unwrap();
            let id = read_notice(&body).unwrap_or_else(|e| panic!("{file}: {e:?}"));
            assert_eq!(
                (
                    id.action.as_str(),
                    id.sequence,
                    id.court_ori.as_str(),
                    id.order_number.as_str()
                ),
                (action, sequence, "CA034025J", "24DV01234"),
                "{file}"
            );
        }
    }

    /// DTDs, other roots, missing or malformed fields and broken XML are refused with a reason.
    #[test]
    fn refuses_bad_documents() {
        let good = notice("ISSUE", 1);
        let cases = [
            (
                good.replacen(
                    "<por:ProtectiveOrderMessage",
                    "<!DOCTYPE x [<!ENTITY e \"v\">]><por:ProtectiveOrderMessage",
                    1,
                ),
                "DOCTYPE",
            ),
            (good.replace("ProtectiveOrderMessage", "OrderMessage"), "root element"),
            (good.replace("urn:por:order:1", "urn:other"), "root element"),
            (
                good.replace("<por:Sequence>1</por:Sequence>", ""),
                "Sequence is missing",
            ),
            (good.replace("<por:Sequence>1<", "<por:Sequence>0<"), "Sequence must be"),
            (
                good.replace("<por:Sequence>1<", "<por:Sequence>+1<"),
                "Sequence must be",
            ),
            (good.replace("ISSUE", "DELETE"), "Action must be"),
            (good.replace(">CA034025J<", ">ca034025j<"), "CourtORI must be"),
            (good.replace("24DV01234", ""), "is missing"),
            (good.replace("</por:MessageHeader>", ""), "well-formed"),
            (good.replace("&amp;", "&ent;"), "undeclared entity"),
            (format!("{good}<x/>"), "more than one root"),
            ("not xml".to_owned(), "text outside"),
            (String::new(), "no root"),
        ];
        for (body, expected) in cases {
            let err = read_notice(body.as_bytes()).unwrap_err();
            assert!(err.reason().contains(expected), "{expected:?} not in {err:?}");
            // Only the DOCTYPE is kept from the validator among these.
            assert_eq!(matches!(err, NoticeError::Refused(_)), expected == "DOCTYPE", "{err:?}");
        }
        let deep = good.replace(
            "<por:OrderType>DV</por:OrderType>",
            &format!("{}{}", "<a>".repeat(40), "</a>".repeat(40)),
        );
        let refused = |body: &[u8], expected: &str| {
            let err = read_notice(body).unwrap_err();
            assert!(
                matches!(&err, NoticeError::Refused(why) if why.contains(expected)),
                "{expected:?}: {err:?}"
            );
        };
        refused(deep.as_bytes(), "deeper");
        // Markup refused from the bytes, wherever the reader would stop.
        let dtd_behind_a_broken_comment =
            format!("<!-- a -- b --><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/hostname\">]>{good}");
        let pi_behind_a_wrong_root = format!("<wrong/><?evil data?>{good}");
        for (body, expected) in [
            (dtd_behind_a_broken_comment.as_str(), "DTDs"),
            (pi_behind_a_wrong_root.as_str(), "processing instructions"),
            ("<x><!ENTITY e \"v\"></x>", "DTDs"),
        ] {
            let err = refuse_markup(body.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, NoticeError::Refused(why) if why.contains(expected)),
                "{expected:?}: {err:?}"
            );
        }
        refuse_markup(good.as_bytes()).expect("the sample with its XML declaration passes");
        refuse_markup(format!("\u{feff}{good}").as_bytes()).expect("a byte order mark is no markup");
        refused(&[0xff, 0xfe], "UTF-8");
        refused(
            good.replacen("?>", "?><?php x?>", 1).as_bytes(),
            "processing instructions",
        );
        refused(good.replacen("1.0", "1.1", 1).as_bytes(), "version 1.0");
        refused(good.replacen("UTF-8", "ISO-8859-1", 1).as_bytes(), "UTF-8");
    }
}
