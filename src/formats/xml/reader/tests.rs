use super::*;
use crate::formats::xml::samples::{self, ISSUE_SAMPLE};
use crate::formats::xml::write_order;
use crate::model::{Action, OrderMessage};

fn read(body: &[u8]) -> Parsed {
    read_order(body, &XmlLimits::default())
}

fn sample() -> String {
    String::from_utf8(ISSUE_SAMPLE.to_vec()).unwrap()
}

/// The (code, field, location) of every error, for compact assertions.
fn errors(parsed: &Parsed) -> Vec<(ErrorCode, &str, Option<&str>)> {
    parsed
        .errors
        .iter()
        .map(|e| (e.code, e.field.as_str(), e.location.as_deref()))
        .collect()
}

/// The one error of a refused message.
fn only_error(parsed: &Parsed) -> &FieldError {
    assert_eq!(parsed.errors.len(), 1, "{:#?}", parsed.errors);
    &parsed.errors[0]
}

/// The ICD §2 sample parses to the expected model without errors.
#[test]
fn sample_parses_to_the_model() {
    let parsed = read(ISSUE_SAMPLE);
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    assert_eq!(parsed.message, samples::issue_sample());
    let m = &parsed.message;
    let person = m.restrained_person.as_ref().unwrap();
    assert_eq!(
        (
            person.name.first.as_deref(),
            person.name.middle.as_deref(),
            person.name.last.as_deref()
        ),
        (Some("JOHN"), Some("ALLEN"), Some("DOE"))
    );
    assert_eq!(person.birth_date.unwrap().to_string(), "1985-02-14");
    assert_eq!(m.order.condition_codes, ["01", "05", "07"]);
    let protected = &m.protected_persons[0].name;
    assert_eq!(protected.first.as_deref(), Some("JANE"));
    assert_eq!(protected.middle.as_deref(), Some("B"));
    assert_eq!(protected.last.as_deref(), Some("DOE"));
}

/// Every field and container is located at its element's `<`, under its canonical path.
#[test]
fn sample_locations() {
    let parsed = read(ISSUE_SAMPLE);
    let at = |path: &str| parsed.locations.get(path);
    assert_eq!(at("message").as_deref(), Some("1:1"));
    assert_eq!(at("action").as_deref(), Some("6:5"));
    assert_eq!(at("order.issue_date").as_deref(), Some("15:30"));
    assert_eq!(at("order.condition_codes[0]").as_deref(), Some("20:5"));
    assert_eq!(at("order.condition_codes[2]").as_deref(), Some("22:5"));
    assert_eq!(at("restrained_person").as_deref(), Some("25:3"));
    assert_eq!(at("restrained_person.name.last").as_deref(), Some("26:113"));
    assert_eq!(at("restrained_person.birth_date").as_deref(), Some("27:25"));
    assert_eq!(at("restrained_person.sex").as_deref(), Some("28:5"));
    assert_eq!(at("protected_persons").as_deref(), Some("34:3"));
    assert_eq!(at("protected_persons[0]").as_deref(), Some("34:3"));
    assert_eq!(at("protected_persons[0].name.last").as_deref(), Some("35:109"));
    assert_eq!(at("protected_persons[0].birth_date").as_deref(), Some("36:25"));
    assert_eq!(at("protected_persons[0].sex").as_deref(), Some("37:5"));
    for path in [
        "court_ori",
        "sequence",
        "sent_at",
        "order.order_number",
        "order.case_number",
        "order.order_type",
        "order.form_id",
        "order.expiration",
        "order.judicial_officer",
        "order.brady",
        "order.condition_text",
        "order.firearm_relinquishment",
        "restrained_person.name.first",
        "restrained_person.name.middle",
        "restrained_person.race",
        "restrained_person.height",
        "restrained_person.weight",
        "restrained_person.eye",
        "restrained_person.hair",
        "restrained_person.residence.street",
        "restrained_person.residence.city",
        "restrained_person.residence.state",
        "restrained_person.residence.zip",
        "restrained_person.driver_license.number",
        "restrained_person.driver_license.state",
        "protected_persons[0].name.first",
        "protected_persons[0].name.middle",
        "protected_persons[0].race",
        "protected_persons[0].relationship",
    ] {
        assert!(at(path).is_some(), "{path} has no location");
    }
}

/// Other prefixes, or default namespaces, for the same URIs parse identically.
#[test]
fn prefixes_do_not_matter() {
    let text = sample();
    let renamed = text
        .replace("xmlns:por=", "xmlns:o=")
        .replace("xmlns:nc=", "xmlns:niem=")
        .replace("xmlns:j=", "xmlns:jxdm=")
        .replace("<por:", "<o:")
        .replace("</por:", "</o:")
        .replace("<nc:", "<niem:")
        .replace("</nc:", "</niem:")
        .replace("<j:", "<jxdm:")
        .replace("</j:", "</jxdm:");
    let default_por = text
        .replace("xmlns:por=", "xmlns=")
        .replace("<por:", "<")
        .replace("</por:", "</");
    // Declarations on inner elements, and a default namespace switched per subtree.
    let nested = text
        .replace(" xmlns:nc=\"http://release.niem.gov/niem/niem-core/4.0/\"", "")
        .replace(
            "<nc:PersonName>",
            "<PersonName xmlns=\"http://release.niem.gov/niem/niem-core/4.0/\">",
        )
        .replace("</nc:PersonName>", "</PersonName>")
        .replace("<nc:PersonGivenName>", "<PersonGivenName>")
        .replace("</nc:PersonGivenName>", "</PersonGivenName>")
        .replace("<nc:PersonMiddleName>", "<PersonMiddleName>")
        .replace("</nc:PersonMiddleName>", "</PersonMiddleName>")
        .replace("<nc:PersonSurName>", "<PersonSurName>")
        .replace("</nc:PersonSurName>", "</PersonSurName>")
        .replace(
            "<por:ProtectionOrder>",
            "<por:ProtectionOrder xmlns:nc=\"http://release.niem.gov/niem/niem-core/4.0/\">",
        )
        .replace(
            "<por:RestrainedPerson>",
            "<por:RestrainedPerson xmlns:nc=\"http://release.niem.gov/niem/niem-core/4.0/\">",
        )
        .replace(
            "<por:ProtectedPerson>",
            "<por:ProtectedPerson xmlns:nc=\"http://release.niem.gov/niem/niem-core/4.0/\">",
        );
    for variant in [renamed, default_por, nested] {
        let parsed = read(variant.as_bytes());
        assert!(parsed.is_ok(), "{:#?}\n{variant}", parsed.errors);
        assert_eq!(parsed.message, samples::issue_sample());
    }
}

/// The same local names in the wrong namespace are refused.
#[test]
fn wrong_namespace_is_refused() {
    let parsed = read(include_bytes!("../../../../tests/fixtures/xml/wrong-ns.xml"));
    let error = only_error(&parsed);
    assert_eq!(
        (error.code, error.location.as_deref()),
        (ErrorCode::InvalidFormat, Some("1:1"))
    );
    assert!(error.text.contains("urn:por:order:2"), "{}", error.text);
    let parsed = read(b"<ProtectiveOrderMessage/>");
    assert_eq!(only_error(&parsed).code, ErrorCode::InvalidFormat);
    let parsed = read(b"<por:OrderStatusMessage xmlns:por=\"urn:por:order:1\"/>");
    assert_eq!(only_error(&parsed).code, ErrorCode::InvalidFormat);
}

/// A DOCTYPE with an entity declaration is refused before anything is read.
#[test]
fn dtd_is_refused() {
    let parsed = read(include_bytes!("../../../../tests/fixtures/xml/dtd.xml"));
    let error = only_error(&parsed);
    assert_eq!(error.code, ErrorCode::InvalidFormat);
    assert_eq!(error.location.as_deref(), Some("2:1"));
    assert!(error.text.contains("DOCTYPE"), "{}", error.text);
    assert_eq!(parsed.message.court_ori, "");
    // Even a bare internal DOCTYPE.
    let parsed = read(b"<!DOCTYPE x><por:ProtectiveOrderMessage xmlns:por=\"urn:por:order:1\"/>");
    assert_eq!(only_error(&parsed).code, ErrorCode::InvalidFormat);
}

/// An undeclared entity reference is refused; predefined entities and character references are not.
#[test]
fn entities_are_refused() {
    let text = sample();
    let with_entity = text.replace(">HON MARIA LOPEZ<", ">HON &judge;<");
    let parsed = read(with_entity.as_bytes());
    let error = only_error(&parsed);
    assert_eq!(
        (error.code, error.location.as_deref()),
        (ErrorCode::InvalidFormat, Some("17:34"))
    );
    assert!(error.text.contains("&judge;"), "{}", error.text);
    // In an attribute value too.
    let in_attribute = text.replace("<por:ProtectedPerson>", "<por:ProtectedPerson a=\"&x;\">");
    assert_eq!(
        only_error(&read(in_attribute.as_bytes())).code,
        ErrorCode::InvalidFormat
    );
    // Predefined entities and character references are text.
    let escaped = text.replace(
        ">HON MARIA LOPEZ<",
        ">HON &lt;MARIA&gt; &amp; &#76;OPEZ &#x4c;&apos;&quot;<",
    );
    let parsed = read(escaped.as_bytes());
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    assert_eq!(
        parsed.message.order.judicial_officer.as_deref(),
        Some("HON <MARIA> & LOPEZ L'\"")
    );
    // A character reference to a character XML forbids is refused.
    let bad_char = text.replace(">HON MARIA LOPEZ<", ">HON &#1;<");
    assert_eq!(only_error(&read(bad_char.as_bytes())).code, ErrorCode::InvalidFormat);
}

/// Processing instructions and non-UTF-8 declarations are refused; a plain declaration is fine.
#[test]
fn declarations_and_processing_instructions() {
    let text = sample();
    let declared = format!("\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>\n{text}");
    let parsed = read(declared.as_bytes());
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    assert_eq!(parsed.locations.get("action").as_deref(), Some("7:5"));
    for refused in [
        format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n{text}"),
        format!("<?xml-stylesheet href=\"x.xsl\"?>\n{text}"),
        text.replace("<por:MessageHeader>", "<por:MessageHeader><?php x?>"),
        format!("<!-- c -->\n<?xml version=\"1.0\"?>\n{text}"),
    ] {
        let parsed = read(refused.as_bytes());
        assert_eq!(only_error(&parsed).code, ErrorCode::InvalidFormat, "{refused}");
    }
}

/// Nesting deeper than the bound is TOO_LONG, however deep the input goes.
#[test]
fn depth_is_bounded() {
    let limits = XmlLimits {
        max_depth: 3,
        ..XmlLimits::default()
    };
    let parsed = read_order(ISSUE_SAMPLE, &limits);
    let error = only_error(&parsed);
    assert_eq!(
        (error.code, error.location.as_deref()),
        (ErrorCode::TooLong, Some("11:32"))
    );
    let depth = 100_000;
    let deep = format!(
        "<por:ProtectiveOrderMessage xmlns:por=\"urn:por:order:1\">{}{}</por:ProtectiveOrderMessage>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let parsed = read(deep.as_bytes());
    assert_eq!(errors(&parsed).last().unwrap().0, ErrorCode::TooLong);
    assert!(parsed.errors.len() <= 2, "{:#?}", parsed.errors);
    // The sample itself is well within the default bound.
    assert!(
        read_order(
            ISSUE_SAMPLE,
            &XmlLimits {
                max_depth: 4,
                ..XmlLimits::default()
            }
        )
        .is_ok()
    );
}

/// A body over the size bound is TOO_LONG and is not read at all.
#[test]
fn size_is_bounded() {
    let limits = XmlLimits {
        max_bytes: ISSUE_SAMPLE.len() - 1,
        ..XmlLimits::default()
    };
    let parsed = read_order(ISSUE_SAMPLE, &limits);
    assert_eq!(only_error(&parsed).code, ErrorCode::TooLong);
    assert_eq!(parsed.message, OrderMessage::default());
    let limits = XmlLimits {
        max_bytes: ISSUE_SAMPLE.len(),
        ..XmlLimits::default()
    };
    assert!(read_order(ISSUE_SAMPLE, &limits).is_ok());
}

/// Invalid UTF-8 and forbidden control characters are INVALID_FORMAT at their position.
#[test]
fn invalid_utf8() {
    let text = sample();
    let mut body = text.replace("HON MARIA LOPEZ", "HON MARIA LÓPEZ").into_bytes();
    let at = body.windows(2).position(|w| w == "Ó".as_bytes()).unwrap();
    body[at] = 0xFF;
    let error = only_error(&read(&body)).clone();
    assert_eq!(
        (error.code, error.location.as_deref()),
        (ErrorCode::InvalidFormat, Some("17:41"))
    );
    assert!(error.text.contains("UTF-8"));
    let control = text.replace("HON MARIA", "HON\u{7}MARIA");
    let error = only_error(&read(control.as_bytes())).clone();
    assert_eq!(
        (error.code, error.location.as_deref()),
        (ErrorCode::InvalidFormat, Some("17:33"))
    );
}

/// The screen for forbidden characters finds the first one wherever it
/// falls against its blocks, and U+FFFE/U+FFFF across a block's end.
#[test]
fn forbidden_characters_at_every_offset() {
    for at in 0..200 {
        let mut body = vec![b'a'; 200];
        body[at] = 0x01;
        assert_eq!(first_forbidden(&body), Some(at));
        body[at] = b'\t';
        assert_eq!(first_forbidden(&body), None);
    }
    for at in 60..66 {
        let mut body = vec![b'a'; 200];
        body[at..at + 3].copy_from_slice("\u{FFFF}".as_bytes());
        assert_eq!(first_forbidden(&body), Some(at));
        body[at..at + 3].copy_from_slice("\u{F000}".as_bytes());
        assert_eq!(first_forbidden(&body), None);
    }
}

/// February 30 is INVALID_DATE on the field, located at its element.
#[test]
fn impossible_date() {
    let text = sample().replace("<nc:Date>2026-11-25</nc:Date>", "<nc:Date>2026-02-30</nc:Date>");
    let parsed = read(text.as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidDate, "order.issue_date", Some("15:30"))]
    );
    assert_eq!(parsed.message.order.issue_date, None);
    // The rest is still read.
    assert_eq!(parsed.message.order.order_number.as_deref(), Some("24DV01234"));
    let text = sample().replace("<nc:Date>1987-03-02</nc:Date>", "<nc:Date>03/02/1987</nc:Date>");
    let parsed = read(text.as_bytes());
    assert_eq!(
        errors(&parsed),
        [(
            ErrorCode::InvalidFormat,
            "protected_persons[0].birth_date",
            Some("36:25")
        )]
    );
}

/// Bad scalar values get their own codes and locations; empty elements are None.
#[test]
fn scalar_values() {
    let text = sample()
        .replace(">ISSUE<", ">REVOKE<")
        .replace(">1</por:Sequence>", ">-1</por:Sequence>")
        .replace(">true<", ">yes<")
        .replace(">2031-11-25T23:59:00<", ">2031-11-25T23:59:00-08:00<")
        .replace(">2026-11-25T10:15:00-08:00<", ">2026-11-25T10:15:00<")
        .replace(
            "<por:CaseNumber>24FL001234</por:CaseNumber>",
            "<por:CaseNumber>  </por:CaseNumber>",
        )
        .replace("<por:FormID>DV-130</por:FormID>", "<por:FormID/>")
        .replace(
            "<por:City>SACRAMENTO</por:City>",
            "<por:City>\n   SACRAMENTO\t</por:City>",
        );
    let parsed = read(text.as_bytes());
    assert_eq!(
        errors(&parsed),
        [
            (ErrorCode::InvalidCode, "action", Some("6:5")),
            (ErrorCode::InvalidFormat, "sequence", Some("7:5")),
            (ErrorCode::InvalidFormat, "sent_at", Some("8:5")),
            (ErrorCode::InvalidFormat, "order.expiration", Some("16:5")),
            (ErrorCode::InvalidFormat, "order.firearm_relinquishment", Some("23:5")),
        ]
    );
    let m = &parsed.message;
    assert_eq!((m.action, m.sequence, m.sent_at), (None, None, None));
    assert_eq!(
        (m.order.case_number.as_deref(), m.order.form_id.as_deref()),
        (None, None)
    );
    let city = m
        .restrained_person
        .as_ref()
        .unwrap()
        .residence
        .as_ref()
        .unwrap()
        .city
        .as_deref();
    assert_eq!(city, Some("SACRAMENTO"));
}

/// Unknown elements (in any namespace), stray text and duplicates are INVALID_FORMAT at their
/// location; the rest is still read.
#[test]
fn strict_structure() {
    let text = sample()
        .replace(
            "    <por:CaseNumber>",
            "    <por:Nickname>X</por:Nickname><x:Extra xmlns:x=\"urn:x\"><x:Deep/></x:Extra>\n    <por:CaseNumber>",
        )
        .replace(
            "<por:OrderType>DV</por:OrderType>",
            "<por:OrderType>DV</por:OrderType><por:OrderType>CH</por:OrderType>",
        )
        .replace(
            "<por:SexCode>M</por:SexCode>",
            "<por:SexCode>M<b>bold</b></por:SexCode>",
        )
        .replace("<por:ProtectedPerson>", "<por:ProtectedPerson>stray");
    let parsed = read(text.as_bytes());
    let found = errors(&parsed);
    assert_eq!(
        found,
        [
            (ErrorCode::InvalidFormat, "order", Some("12:5")),
            (ErrorCode::InvalidFormat, "order", Some("12:35")),
            (ErrorCode::InvalidFormat, "order.order_type", Some("14:38")),
            (ErrorCode::InvalidFormat, "restrained_person.sex", Some("29:19")),
            (ErrorCode::InvalidFormat, "protected_persons[0]", Some("35:24")),
        ],
        "{:#?}",
        parsed.errors
    );
    assert!(
        parsed.errors[0].text.contains("por:Nickname"),
        "{}",
        parsed.errors[0].text
    );
    assert!(parsed.errors[1].text.contains("{urn:x}"), "{}", parsed.errors[1].text);
    assert!(
        parsed.errors[2].text.contains("more than once"),
        "{}",
        parsed.errors[2].text
    );
    let m = &parsed.message;
    assert_eq!(m.order.order_type.as_deref(), Some("DV"));
    assert_eq!(m.order.case_number.as_deref(), Some("24FL001234"));
    assert_eq!(m.restrained_person.as_ref().unwrap().sex.as_deref(), Some("M"));
    // Unknown attributes are refused; xsi:schemaLocation is accepted.
    let text = sample().replace(
        "<por:ProtectiveOrderMessage ",
        "<por:ProtectiveOrderMessage xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"urn:por:order:1 por.xsd\" ",
    );
    assert!(read(text.as_bytes()).is_ok());
    let text = sample().replace("<por:SexCode>M", "<por:SexCode id=\"a\">M");
    assert_eq!(
        errors(&read(text.as_bytes())),
        [(ErrorCode::InvalidFormat, "restrained_person.sex", Some("28:5"))]
    );
}

/// Several protected persons fill the Vec in order, each with its own paths.
#[test]
fn several_protected_persons() {
    let text = sample();
    let start = text.find("  <por:ProtectedPerson>").unwrap();
    let end = text.find("</por:ProtectedPerson>").unwrap() + "</por:ProtectedPerson>\n".len();
    let second = text[start..end].replace("JANE", "JIMMY").replace(">F<", ">M<");
    let text = format!("{}{second}{}", &text[..end], &text[end..]);
    let parsed = read(text.as_bytes());
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    let persons = &parsed.message.protected_persons;
    assert_eq!(persons.len(), 2);
    assert_eq!(persons[1].name.first.as_deref(), Some("JIMMY"));
    assert_eq!(persons[1].sex.as_deref(), Some("M"));
    assert_eq!(parsed.locations.get("protected_persons").as_deref(), Some("34:3"));
    assert_eq!(parsed.locations.get("protected_persons[1]").as_deref(), Some("39:3"));
    assert_eq!(
        parsed.locations.get("protected_persons[1].sex").as_deref(),
        Some("42:5")
    );
}

fn with_image(attributes: &str, content: &str) -> String {
    sample().replace(
        "</por:ProtectiveOrderMessage>",
        &format!("  <por:OrderImage {attributes}>{content}</por:OrderImage>\n</por:ProtectiveOrderMessage>"),
    )
}

/// The image is decoded (line-wrapped base64 too) and checked: hash, type and size.
#[test]
fn order_image() {
    let image = samples::image();
    let bytes = image.data.clone().expect("the sample image has its bytes");
    let encoded = data_encoding::BASE64.encode(&bytes);
    let wrapped: String = encoded
        .as_bytes()
        .chunks(20)
        .map(|c| format!("\n    {}", std::str::from_utf8(c).unwrap()))
        .collect();
    let good = format!(
        "mimeType=\"application/pdf\" sha256=\"{}\"",
        image.sha256.to_uppercase()
    );
    let parsed = read(with_image(&good, &wrapped).as_bytes());
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    assert_eq!(parsed.message.image.as_ref(), Some(&image));
    for path in ["image", "image.mime_type", "image.sha256"] {
        assert_eq!(parsed.locations.get(path).as_deref(), Some("39:3"), "{path}");
    }

    let wrong_hash = format!("mimeType=\"application/pdf\" sha256=\"{}\"", "0".repeat(64));
    let parsed = read(with_image(&wrong_hash, &encoded).as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidFormat, "image.sha256", Some("39:3"))]
    );

    let wrong_type = format!("mimeType=\"image/png\" sha256=\"{}\"", image.sha256);
    let parsed = read(with_image(&wrong_type, &encoded).as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidCode, "image.mime_type", Some("39:3"))]
    );

    let parsed = read(with_image(&good, "not base64!").as_bytes());
    assert_eq!(errors(&parsed), [(ErrorCode::InvalidFormat, "image", Some("39:3"))]);

    let small = XmlLimits {
        max_image_bytes: bytes.len() - 1,
        ..XmlLimits::default()
    };
    let parsed = read_order(with_image(&good, &encoded).as_bytes(), &small);
    assert_eq!(errors(&parsed), [(ErrorCode::TooLong, "image", Some("39:3"))]);
    let tiny = XmlLimits {
        max_image_bytes: 3,
        ..XmlLimits::default()
    };
    let parsed = read_order(with_image(&good, &encoded).as_bytes(), &tiny);
    assert_eq!(errors(&parsed), [(ErrorCode::TooLong, "image", Some("39:3"))]);
    assert_eq!(parsed.message.image, None);
}

/// Malformed XML is INVALID_FORMAT at the reader's position, keeping what was read.
#[test]
fn malformed_xml() {
    let parsed = read(include_bytes!("../../../../tests/fixtures/xml/broken.xml"));
    let error = only_error(&parsed);
    assert_eq!(error.code, ErrorCode::InvalidFormat);
    assert_eq!(error.location.as_deref(), Some("15:41"), "{error}");
    assert_eq!(parsed.message.court_ori, "CA034025J");
    assert_eq!(parsed.message.order_number(), Some("24DV01234"));
    assert_eq!(parsed.message.sequence, Some(1));

    let mismatched = sample().replace("</por:CaseNumber>", "</por:CaseNumbr>");
    let error = only_error(&read(mismatched.as_bytes())).clone();
    assert_eq!(
        (error.code, error.location.as_deref()),
        (ErrorCode::InvalidFormat, Some("12:31")),
        "{error}"
    );

    for (body, location) in [
        (&b""[..], "1:1"),
        (b"   ", "1:4"),
        (b"<por:X xmlns:por=\"urn:por:order:1\"", "1:1"),
        (b"<p:ProtectiveOrderMessage/>", "1:1"),
        (b"text", "1:1"),
    ] {
        let error = only_error(&read(body)).clone();
        assert_eq!(
            (error.code, error.location.as_deref()),
            (ErrorCode::InvalidFormat, Some(location)),
            "{body:?}: {error}"
        );
    }
    let trailing = format!(
        "{}<por:ProtectiveOrderMessage xmlns:por=\"urn:por:order:1\"/>",
        sample()
    );
    assert_eq!(
        errors(&read(trailing.as_bytes())),
        [(ErrorCode::InvalidFormat, "message", Some("40:1"))]
    );
}

/// Every prefix of a valid message, random bytes and random mutations never panic.
#[test]
fn never_panics() {
    let full = write_order(&samples::full_issue());
    let mut limits = XmlLimits::default();
    for body in [ISSUE_SAMPLE, &full[..]] {
        let complete = body.trim_ascii_end().len();
        for len in 0..=body.len() {
            let parsed = read(&body[..len]);
            assert_eq!(parsed.is_ok(), len >= complete, "prefix of {len} bytes");
        }
    }
    // A small xorshift generator: deterministic, no dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3000 {
        let len = (next() % 600) as usize;
        let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        read(&random);
        let mut mutated = full.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % mutated.len();
            const NASTY: &[u8] = b"<>/&;:\"'=#x \n\xC3\xFF-0T";
            mutated[at] = NASTY[(next() as usize) % NASTY.len()];
        }
        limits.max_depth = 1 + round % 6;
        limits.max_image_bytes = round % 64;
        read_order(&mutated, &limits);
        read_order(&mutated, &XmlLimits::default());
    }
}

/// A message with only errors still reports at most MAX_ERRORS of them.
#[test]
fn errors_are_capped() {
    let many = "<x/>".repeat(MAX_ERRORS * 3);
    let text = sample().replace("<por:MessageHeader>", &format!("<por:MessageHeader>{many}"));
    let parsed = read(text.as_bytes());
    assert_eq!(parsed.errors.len(), MAX_ERRORS + 1);
}

/// `read_order(write_order(m)) == m` for a full ISSUE and for TERMINATE, CANCEL and SERVICE.
#[test]
fn write_then_read_round_trips() {
    for msg in [
        samples::issue_sample(),
        samples::full_issue(),
        samples::terminate(),
        samples::cancel(),
        samples::service(),
    ] {
        let body = write_order(&msg);
        let parsed = read(&body);
        assert!(
            parsed.is_ok(),
            "{:#?}\n{}",
            parsed.errors,
            String::from_utf8_lossy(&body)
        );
        assert_eq!(parsed.message, msg, "{}", String::from_utf8_lossy(&body));
    }
    // Reading the sample and writing it back is stable.
    let once = write_order(&read(ISSUE_SAMPLE).message);
    assert_eq!(write_order(&read(&once).message), once);
    assert_eq!(samples::terminate().action, Some(Action::Terminate));
}

/// Children must come in the order of their `xs:sequence`: an element before one it must follow
/// is INVALID_FORMAT at its location, once, and its value is still read.
#[test]
fn element_order_is_the_schemas() {
    let swapped = sample().replace(
        "<por:Action>ISSUE</por:Action>\n    <por:Sequence>1</por:Sequence>",
        "<por:Sequence>1</por:Sequence>\n    <por:Action>ISSUE</por:Action>",
    );
    let parsed = read(swapped.as_bytes());
    assert_eq!(errors(&parsed), [(ErrorCode::InvalidFormat, "action", Some("7:5"))]);
    assert!(
        parsed.errors[0].text.contains("before por:Sequence"),
        "{}",
        parsed.errors[0].text
    );
    assert_eq!(
        (parsed.message.action, parsed.message.sequence),
        (Some(Action::Issue), Some(1))
    );

    // A person before the order; the image before the protected person.
    let text = sample();
    let order_start = text.find("  <por:ProtectionOrder>").unwrap();
    let order_end = text.find("  <por:RestrainedPerson>").unwrap();
    let moved = format!(
        "{}{}{}",
        &text[..order_start],
        &text[order_end..text.find("  <por:ProtectedPerson>").unwrap()],
        &text[order_start..order_end]
    ) + &text[text.find("  <por:ProtectedPerson>").unwrap()..];
    let parsed = read(moved.as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidFormat, "order", Some("19:3"))],
        "{moved}"
    );
    assert_eq!(parsed.message.order_number(), Some("24DV01234"));

    // A repeated element after the one that follows it is refused, not read.
    let late_code = sample().replace(
        "<por:FirearmRelinquishmentIndicator>true</por:FirearmRelinquishmentIndicator>",
        "<por:FirearmRelinquishmentIndicator>true</por:FirearmRelinquishmentIndicator><j:ProtectionOrderConditionCode>09</j:ProtectionOrderConditionCode>",
    );
    let parsed = read(late_code.as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidFormat, "order.condition_codes[3]", Some("23:82"))]
    );
    assert_eq!(parsed.message.order.condition_codes, ["01", "05", "07"]);
}

/// A required element that is absent is MISSING, located where it was expected: at the next
/// element, or at its parent's end tag.
#[test]
fn required_elements() {
    let cases = [
        (
            "    <por:SentDateTime>2026-11-25T10:15:00-08:00</por:SentDateTime>\n",
            "sent_at",
            "8:3",
        ),
        ("<por:OrderType>DV</por:OrderType>", "order.order_type", "14:5"),
        (
            "<nc:ActivityIdentification><nc:IdentificationID>24DV01234</nc:IdentificationID></nc:ActivityIdentification>",
            "order.order_number",
            "12:5",
        ),
        (
            "<nc:IdentificationID>24DV01234</nc:IdentificationID>",
            "order.order_number",
            "11:32",
        ),
        ("<nc:Date>2026-11-25</nc:Date>", "order.issue_date", "15:30"),
        (
            "<nc:Date>1987-03-02</nc:Date>",
            "protected_persons[0].birth_date",
            "36:25",
        ),
    ];
    for (cut, field, location) in cases {
        let text = sample().replacen(cut, "", 1);
        let parsed = read(text.as_bytes());
        assert_eq!(errors(&parsed), [(ErrorCode::Missing, field, Some(location))], "{cut}");
    }
    // Whole containers.
    let text = sample();
    let header = &text[text.find("  <por:MessageHeader>").unwrap()..text.find("  <por:ProtectionOrder>").unwrap()];
    let parsed = read(text.replace(header, "").as_bytes());
    assert_eq!(errors(&parsed), [(ErrorCode::Missing, "message", Some("4:3"))]);
    assert!(
        parsed.errors[0].text.contains("por:MessageHeader"),
        "{}",
        parsed.errors[0].text
    );
    let parsed = read(b"<ProtectiveOrderMessage xmlns=\"urn:por:order:1\"><MessageHeader/></ProtectiveOrderMessage>");
    let found: Vec<_> = parsed.errors.iter().map(|e| (e.code, e.field.as_str())).collect();
    assert_eq!(
        found,
        [
            (ErrorCode::Missing, "court_ori"),
            (ErrorCode::Missing, "action"),
            (ErrorCode::Missing, "sequence"),
            (ErrorCode::Missing, "sent_at"),
            (ErrorCode::Missing, "order"),
        ]
    );
    // Proof of service needs all four parts.
    let service = write_order(&samples::service());
    let text = String::from_utf8(service)
        .unwrap()
        .replace("<por:ServedBy>DEP R SMITH #4411</por:ServedBy>", "");
    let parsed = read(text.as_bytes());
    assert_eq!(errors(&parsed)[0].0, ErrorCode::Missing);
    assert_eq!(errors(&parsed)[0].1, "order.service.served_by");
}

/// At most 9 protected persons and 9 condition codes; the tenth is refused on the list.
#[test]
fn repeated_elements_are_bounded() {
    let text = sample();
    let start = text.find("  <por:ProtectedPerson>").unwrap();
    let end = text.find("</por:ProtectedPerson>").unwrap() + "</por:ProtectedPerson>\n".len();
    let ten = format!("{}{}{}", &text[..start], text[start..end].repeat(10), &text[end..]);
    let parsed = read(ten.as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidFormat, "protected_persons", Some("79:3"))]
    );
    assert_eq!(parsed.message.protected_persons.len(), 9);
    let codes = "<j:ProtectionOrderConditionCode>01</j:ProtectionOrderConditionCode>".repeat(10);
    let text = sample().replace(
        "<j:ProtectionOrderConditionCode>01</j:ProtectionOrderConditionCode>",
        &codes,
    );
    let parsed = read(text.as_bytes());
    assert_eq!(errors(&parsed)[0].1, "order.condition_codes");
    assert_eq!(parsed.message.order.condition_codes.len(), 9);
}

/// The XSD's facets: ORI and order-number patterns, the ICD's maximum lengths (counted as
/// xs:token counts them) and non-empty typed values.
#[test]
fn value_facets() {
    let text = sample()
        .replace(">CA034025J<", ">CA03402<")
        .replace(">24DV01234<", ">24DV01234-ABCDEF<")
        .replace(">24FL001234<", ">24FL001234-2024-ABCDE<")
        .replace("<por:Sequence>1</por:Sequence>", "<por:Sequence/>")
        .replace(">JOHN<", ">JOHNATHAN-ALEXANDER-X<")
        .replace(">2031-11-25T23:59:00<", "> <");
    let parsed = read(text.as_bytes());
    assert_eq!(
        errors(&parsed),
        [
            (ErrorCode::InvalidFormat, "court_ori", Some("5:5")),
            (ErrorCode::Missing, "sequence", Some("7:5")),
            (ErrorCode::TooLong, "order.order_number", Some("11:32")),
            (ErrorCode::TooLong, "order.case_number", Some("12:5")),
            (ErrorCode::Missing, "order.expiration", Some("16:5")),
            (ErrorCode::TooLong, "restrained_person.name.first", Some("26:20")),
        ]
    );
    let m = &parsed.message;
    assert_eq!(
        (m.court_ori.as_str(), m.order_number(), m.order.case_number.as_deref()),
        ("", None, None)
    );
    // White space runs count once, as xs:token collapses them; the value is kept as written.
    let spaced = sample().replace(">JOHN<", ">JOHNATHAN  \n  ALEXANDER<");
    let parsed = read(spaced.as_bytes());
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    let first = parsed.message.restrained_person.unwrap().name.first;
    assert_eq!(first.as_deref(), Some("JOHNATHAN  \n  ALEXANDER"));
    // A bad order-number character is INVALID_FORMAT.
    let parsed = read(sample().replace(">24DV01234<", ">24dv01234<").as_bytes());
    assert_eq!(
        errors(&parsed),
        [(ErrorCode::InvalidFormat, "order.order_number", Some("11:32"))]
    );
}

/// An empty image is no image, but its attributes are still required.
#[test]
fn empty_image_needs_its_attributes() {
    let parsed = read(with_image("", "").as_bytes());
    let found: Vec<_> = parsed.errors.iter().map(|e| (e.code, e.field.as_str())).collect();
    assert_eq!(
        found,
        [
            (ErrorCode::Missing, "image.mime_type"),
            (ErrorCode::Missing, "image.sha256")
        ]
    );
    let attributes = format!("mimeType=\"image/tiff\" sha256=\"{}\"", "a".repeat(64));
    let parsed = read(with_image(&attributes, "\n  ").as_bytes());
    assert!(parsed.is_ok(), "{:#?}", parsed.errors);
    assert_eq!(parsed.message.image, None);
    let attributes = "mimeType=\"image/tiff\" sha256=\"abc\"";
    assert_eq!(
        errors(&read(with_image(attributes, "").as_bytes()))[0].0,
        ErrorCode::InvalidFormat
    );
}
