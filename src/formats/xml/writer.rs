//! Writes the normalized ICD §2 order message, and the small element builder
//! the status writer shares.

use data_encoding::BASE64;

use crate::model::{OrderMessage, PersonName};

use super::names;
use super::values::{format_date, format_local_date_time, format_offset_date_time};

/// Writes the normalized XML for a canonical order message: the element
/// order of the ICD §2 sample, with `por:TerminationDate`,
/// `por:CancelReason` and `por:Service` last in `por:ProtectionOrder`, and
/// the image inline when there is one. Absent fields are left out.
///
/// An image without its bytes (an order read back from the store holds only
/// a reference) is written as an empty `por:OrderImage`: a caller that sends
/// the XML to a partner loads the bytes first (the DOJ adapter does).
pub fn write_order(msg: &OrderMessage) -> Vec<u8> {
    write_order_marking_image(msg).0
}

/// The base64 text of an image as [`write_order`] inlines it (standard
/// alphabet, padded, on one line).
pub fn image_base64(data: &[u8]) -> String {
    BASE64.encode(data)
}

/// [`write_order`], and where in its output the image's base64 text is
/// (`None` when nothing of an image was inlined). What lets a recorded
/// request keep the image out and put it back (see `delivery::http`).
pub fn write_order_marking_image(msg: &OrderMessage) -> (Vec<u8>, Option<std::ops::Range<usize>>) {
    let mut x = XmlOut::new(
        "por:ProtectiveOrderMessage",
        &[
            ("xmlns:por", names::POR),
            ("xmlns:nc", names::NC),
            ("xmlns:j", names::J),
        ],
    );

    x.open("por:MessageHeader");
    x.leaf("por:CourtORI", &msg.court_ori);
    x.leaf_opt("por:Action", msg.action.map(|a| a.name()));
    x.leaf_opt("por:Sequence", msg.sequence.map(|s| s.to_string()).as_deref());
    x.leaf_opt("por:SentDateTime", msg.sent_at.map(format_offset_date_time).as_deref());
    x.close("por:MessageHeader");

    let order = &msg.order;
    x.open("por:ProtectionOrder");
    if let Some(number) = &order.order_number {
        x.open("nc:ActivityIdentification");
        x.leaf("nc:IdentificationID", number);
        x.close("nc:ActivityIdentification");
    }
    x.leaf_opt("por:CaseNumber", order.case_number.as_deref());
    x.leaf_opt("por:OrderType", order.order_type.as_deref());
    x.leaf_opt("por:FormID", order.form_id.as_deref());
    if let Some(date) = order.issue_date {
        x.open("j:CourtOrderIssuingDate");
        x.leaf("nc:Date", &format_date(date));
        x.close("j:CourtOrderIssuingDate");
    }
    x.leaf_opt(
        "por:ExpirationDateTime",
        order.expiration.map(format_local_date_time).as_deref(),
    );
    x.leaf_opt("por:JudicialOfficerName", order.judicial_officer.as_deref());
    x.leaf_opt("por:BradyCode", order.brady.as_deref());
    x.leaf_opt("j:ProtectionOrderConditionText", order.condition_text.as_deref());
    for code in &order.condition_codes {
        x.leaf("j:ProtectionOrderConditionCode", code);
    }
    x.leaf_opt(
        "por:FirearmRelinquishmentIndicator",
        order.firearm_relinquishment.map(|b| if b { "true" } else { "false" }),
    );
    x.leaf_opt(
        "por:TerminationDate",
        order.termination_date.map(format_date).as_deref(),
    );
    x.leaf_opt("por:CancelReason", order.cancel_reason.as_deref());
    if let Some(service) = &order.service {
        x.open("por:Service");
        x.leaf_opt(
            "por:ServedDateTime",
            service.served_at.map(format_local_date_time).as_deref(),
        );
        x.leaf_opt("por:ServedBy", service.served_by.as_deref());
        x.leaf_opt("por:ServingAgencyORI", service.serving_agency_ori.as_deref());
        x.leaf_opt("por:ServiceMethod", service.method.as_deref());
        x.close("por:Service");
    }
    x.close("por:ProtectionOrder");

    if let Some(person) = &msg.restrained_person {
        x.open("por:RestrainedPerson");
        person_name(&mut x, &person.name);
        birth_date(&mut x, person.birth_date);
        x.leaf_opt("por:SexCode", person.sex.as_deref());
        x.leaf_opt("por:RaceCode", person.race.as_deref());
        x.leaf_opt("por:HeightFeetInches", person.height.as_deref());
        x.leaf_opt("por:WeightPounds", person.weight.as_deref());
        x.leaf_opt("por:EyeColorCode", person.eye.as_deref());
        x.leaf_opt("por:HairColorCode", person.hair.as_deref());
        if let Some(address) = &person.residence {
            x.open("por:Residence");
            x.leaf_opt("por:Street", address.street.as_deref());
            x.leaf_opt("por:City", address.city.as_deref());
            x.leaf_opt("por:State", address.state.as_deref());
            x.leaf_opt("por:ZIP", address.zip.as_deref());
            x.close("por:Residence");
        }
        if let Some(license) = &person.driver_license {
            x.open("por:DriverLicense");
            x.leaf_opt("por:Number", license.number.as_deref());
            x.leaf_opt("por:State", license.state.as_deref());
            x.close("por:DriverLicense");
        }
        x.close("por:RestrainedPerson");
    }

    for person in &msg.protected_persons {
        x.open("por:ProtectedPerson");
        person_name(&mut x, &person.name);
        birth_date(&mut x, person.birth_date);
        x.leaf_opt("por:SexCode", person.sex.as_deref());
        x.leaf_opt("por:RaceCode", person.race.as_deref());
        x.leaf_opt("por:RelationshipCode", person.relationship.as_deref());
        x.close("por:ProtectedPerson");
    }

    let mut span = None;
    if let Some(image) = &msg.image {
        const NAME: &str = "por:OrderImage";
        let text = image.data.as_deref().map(image_base64).unwrap_or_default();
        x.leaf_with(
            NAME,
            &[("mimeType", &image.mime_type), ("sha256", &image.sha256)],
            &text,
        );
        if !text.is_empty() {
            // Base64 needs no escaping: the text ends right before `</NAME>`.
            let end = x.out.len() - NAME.len() - 3;
            span = Some(end - text.len()..end);
        }
    }
    (x.finish(), span)
}

fn person_name(x: &mut XmlOut, name: &PersonName) {
    if name == &PersonName::default() {
        return;
    }
    x.open("nc:PersonName");
    x.leaf_opt("nc:PersonGivenName", name.first.as_deref());
    x.leaf_opt("nc:PersonMiddleName", name.middle.as_deref());
    x.leaf_opt("nc:PersonSurName", name.last.as_deref());
    x.leaf_opt("nc:PersonNameSuffixText", name.suffix.as_deref());
    x.close("nc:PersonName");
}

fn birth_date(x: &mut XmlOut, date: Option<chrono::NaiveDate>) {
    if let Some(date) = date {
        x.open("nc:PersonBirthDate");
        x.leaf("nc:Date", &format_date(date));
        x.close("nc:PersonBirthDate");
    }
}

/// Builds an indented XML document element by element. Names are written as
/// given (they are Porter's own constants); text and attribute values are
/// escaped.
pub(super) struct XmlOut {
    out: String,
    depth: usize,
    root: &'static str,
}

impl XmlOut {
    /// Starts a document with its root element and namespace declarations.
    pub(super) fn new(root: &'static str, attributes: &[(&str, &str)]) -> Self {
        let mut out = String::with_capacity(2048);
        out.push('<');
        out.push_str(root);
        push_attributes(&mut out, attributes);
        out.push('>');
        XmlOut { out, depth: 1, root }
    }

    fn indent(&mut self) {
        self.out.push('\n');
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    /// Opens a container element on a new line.
    pub(super) fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.depth += 1;
    }

    /// Closes the container element opened last.
    pub(super) fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Writes `<name>value</name>` on a new line.
    pub(super) fn leaf(&mut self, name: &str, value: &str) {
        self.leaf_with(name, &[], value);
    }

    /// Writes a leaf when there is a value.
    pub(super) fn leaf_opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.leaf(name, value);
        }
    }

    /// Writes `<name a="v">value</name>` on a new line.
    pub(super) fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], value: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        push_attributes(&mut self.out, attributes);
        if value.is_empty() {
            self.out.push_str("/>");
            return;
        }
        self.out.push('>');
        push_escaped(&mut self.out, value, false);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Closes the root and returns the document, ending with a newline.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.depth = 1;
        self.close(self.root);
        self.out.push('\n');
        self.out.into_bytes()
    }
}

fn push_attributes(out: &mut String, attributes: &[(&str, &str)]) {
    for (key, value) in attributes {
        out.push(' ');
        out.push_str(key);
        out.push_str("=\"");
        push_escaped(out, value, true);
        out.push('"');
    }
}

/// Escapes text for element content, or for a double-quoted attribute value.
/// A carriage return (and in attributes a tab or newline) becomes a
/// character reference, so that a reader's normalisation keeps it; a
/// character XML 1.0 cannot carry becomes U+FFFD.
fn push_escaped(out: &mut String, value: &str, attribute: bool) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Special characters are escaped and forbidden ones replaced.
    #[test]
    fn escaping() {
        let mut out = String::new();
        push_escaped(&mut out, "a<b>&\"c\"\r\n\u{1}", false);
        assert_eq!(out, "a&lt;b&gt;&amp;\"c\"&#13;\n\u{FFFD}");
        out.clear();
        push_escaped(&mut out, "x\"y\tz\n", true);
        assert_eq!(out, "x&quot;y&#9;z&#10;");
    }

    /// The builder indents by depth and closes the root.
    #[test]
    fn builder_shape() {
        let mut x = XmlOut::new("por:R", &[("xmlns:por", names::POR)]);
        x.open("por:A");
        x.leaf("por:B", "1");
        x.leaf("por:E", "");
        x.close("por:A");
        let text = String::from_utf8(x.finish()).unwrap();
        assert_eq!(
            text,
            "<por:R xmlns:por=\"urn:por:order:1\">\n  <por:A>\n    <por:B>1</por:B>\n    <por:E/>\n  </por:A>\n</por:R>\n"
        );
    }

    /// The marked span is exactly the image's base64 text, and without the
    /// bytes the element is written empty (and nothing is marked).
    #[test]
    fn image_span_marks_the_base64_text() {
        let msg = super::super::samples::full_issue();
        let image = msg.image.clone().expect("the full sample has an image");
        let (xml, span) = write_order_marking_image(&msg);
        let span = span.expect("an inlined image is marked");
        assert_eq!(
            &xml[span.clone()],
            image_base64(image.data.as_deref().unwrap()).as_bytes()
        );
        assert!(xml[span.end..].starts_with(b"</por:OrderImage>"));
        assert_eq!(xml, write_order(&msg));

        let mut reference = msg.clone();
        reference.image.as_mut().unwrap().data = None;
        let (xml, span) = write_order_marking_image(&reference);
        assert_eq!(span, None);
        let text = String::from_utf8(xml).unwrap();
        assert!(text.contains(&format!("sha256=\"{}\"/>", image.sha256)), "{text}");
    }
}
