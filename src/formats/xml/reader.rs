//! Reads the ICD §2 `por:ProtectiveOrderMessage` into the canonical model in
//! one streaming pass (see the module design note for what is refused).

use quick_xml::events::{BytesRef, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::formats::Parsed;
use crate::model::{ErrorCode, FieldError, FieldPath, Position};

use super::fields::{self, Element};
use super::image::{self, RawImage};
use super::names::{self, Tag};
use super::position::LineIndex;
use super::schema;
use super::values::quote;
use super::{MAX_ERRORS, XmlLimits};

/// Reads one XML order message. Never panics; every problem is a
/// [`FieldError`] in the result, next to whatever could be read.
pub fn read_order(body: &[u8], limits: &XmlLimits) -> Parsed {
    // Room for the locations of a full order with a few protected persons.
    let mut parsed = Parsed::with_capacity(96);
    parsed.locations.record(FieldPath::new("message"), Position::new(1, 1));
    if body.len() > limits.max_bytes {
        parsed.errors.push(
            FieldError::new(
                ErrorCode::TooLong,
                "message",
                format!(
                    "the message has {} bytes; at most {} are accepted",
                    body.len(),
                    limits.max_bytes
                ),
            )
            .at("1:1"),
        );
        return parsed;
    }
    // quick-xml skips a UTF-8 byte order mark without counting it in its
    // offsets; skipping it here keeps offsets and locations in step (an
    // editor does not show it as a column either).
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut lines = LineIndex::new(body);
    let text = match check_characters(body) {
        Ok(text) => text,
        Err((offset, why)) => {
            parsed
                .errors
                .push(FieldError::new(ErrorCode::InvalidFormat, "message", why).at(lines.locate(offset)));
            return parsed;
        }
    };
    let mut reader = OrderReader::new(text, limits, lines, parsed);
    // `Stop` only says that reading ended early; the reason is in the errors.
    let _ = reader.run();
    reader.parsed
}

/// Checks that the body is UTF-8 and holds only characters XML 1.0 allows;
/// on failure returns the byte offset of the first bad one and why.
fn check_characters(body: &[u8]) -> Result<&str, (usize, String)> {
    let text =
        std::str::from_utf8(body).map_err(|e| (e.valid_up_to(), "the message is not valid UTF-8".to_string()))?;
    match first_forbidden(body) {
        Some(i) => Err((i, format!("character U+{:04X} is not allowed in XML", char_at(text, i)))),
        None => Ok(text),
    }
}

/// The offset of the first character XML 1.0 forbids: a C0 control other
/// than tab, LF and CR, or U+FFFE or U+FFFF (UTF-8 EF BF BE / EF BF BF).
/// Blocks of bytes are first screened with a test the compiler vectorises;
/// only a block that may hold one is looked at byte by byte.
fn first_forbidden(body: &[u8]) -> Option<usize> {
    const BLOCK: usize = 64;
    let suspect = |b: u8| (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') || b == 0xEF;
    let mut start = 0;
    for block in body.chunks(BLOCK) {
        if block.iter().fold(false, |any, &b| any | suspect(b)) {
            let found = (start..start + block.len()).find(|&i| match body[i] {
                0xEF => matches!(body.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])),
                b => suspect(b),
            });
            if found.is_some() {
                return found;
            }
        }
        start += block.len();
    }
    None
}

fn char_at(text: &str, offset: usize) -> u32 {
    text.get(offset..).and_then(|s| s.chars().next()).map_or(0, u32::from)
}

/// Whether XML 1.0 allows this character (the `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether `bytes` hold XML white space only (or nothing).
fn is_xml_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| is_xml_space(char::from(b)))
}

/// Reading ended early; the reason is already in the errors.
struct Stop;

/// One open element, and where its children stand in its content model
/// ([`schema::content`]).
struct Frame {
    element: Element,
    /// The element's name, when it is one Porter knows.
    tag: Option<Tag>,
    /// Children already seen, by [`Tag::bit`].
    seen: u64,
    /// Index in the content model of the last child accepted in order.
    at: Option<usize>,
    /// How often that child has occurred so far.
    count: u8,
    /// Required children the document went past without writing them, with
    /// the offset where each was expected; reported when the element closes
    /// unless they turned up (out of order) after all.
    passed: Vec<(Tag, usize)>,
}

impl Frame {
    fn new(element: Element, tag: Option<Tag>) -> Self {
        Frame {
            element,
            tag,
            seen: 0,
            at: None,
            count: 0,
            passed: Vec::new(),
        }
    }
}

/// How a child element fits its parent's content model.
enum Placement {
    /// In order, within its `maxOccurs`.
    InOrder,
    /// A singular element seen before.
    Duplicate,
    /// A repeatable element over its `maxOccurs`.
    TooMany(u8),
    /// Before an element that must follow it. `read`: it is the first of a
    /// singular element, so its value is read anyway.
    OutOfOrder { before: Tag, read: bool },
}

/// The state of one pass over one message.
struct OrderReader<'a> {
    reader: NsReader<&'a [u8]>,
    /// The whole message, as text.
    source: &'a str,
    limits: &'a XmlLimits,
    lines: LineIndex<'a>,
    parsed: Parsed,
    stack: Vec<Frame>,
    /// The open leaf's text while it is one piece, borrowed from the
    /// message (the usual case: no copy).
    leaf: Option<&'a str>,
    /// The open leaf's text once it comes in several pieces (a reference,
    /// CDATA, line ends to normalise); one leaf is open at a time.
    text: String,
    /// The open `por:OrderImage`, if any.
    image: Option<RawImage>,
    /// The open image's base64 ran over the bound; the rest is ignored.
    image_too_long: bool,
    /// Any event has been read (an XML declaration must come first).
    started: bool,
    /// The root element has been closed.
    root_closed: bool,
}

impl<'a> OrderReader<'a> {
    fn new(text: &'a str, limits: &'a XmlLimits, lines: LineIndex<'a>, parsed: Parsed) -> Self {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.enable_all_checks(true);
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        OrderReader {
            reader,
            source: text,
            leaf: None,
            limits,
            lines,
            parsed,
            stack: Vec::with_capacity(8),
            text: String::new(),
            image: None,
            image_too_long: false,
            started: false,
            root_closed: false,
        }
    }

    /// Records an error at a byte offset; stops once there are too many.
    fn error(&mut self, code: ErrorCode, field: &str, offset: usize, text: String) -> Result<(), Stop> {
        let location = self.lines.locate(offset);
        self.parsed.errors.push(FieldError::new(code, field, text).at(location));
        if self.parsed.errors.len() >= MAX_ERRORS {
            return self.fatal(
                code,
                field,
                offset,
                format!("more than {MAX_ERRORS} errors; reading stopped"),
            );
        }
        Ok(())
    }

    /// Records an error after which reading cannot go on.
    fn fatal<T>(&mut self, code: ErrorCode, field: &str, offset: usize, text: String) -> Result<T, Stop> {
        let location = self.lines.locate(offset);
        self.parsed.errors.push(FieldError::new(code, field, text).at(location));
        Err(Stop)
    }

    fn malformed<T>(&mut self, offset: usize, text: String) -> Result<T, Stop> {
        self.fatal(ErrorCode::InvalidFormat, "message", offset, text)
    }

    fn run(&mut self) -> Result<(), Stop> {
        loop {
            let offset = to_usize(self.reader.buffer_position());
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    let at = to_usize(self.reader.error_position());
                    return self.malformed(at, format!("malformed XML: {e}"));
                }
            };
            // Only start tags need their namespace: end tags are matched
            // by the reader and known from the stack.
            let name = match &event {
                Event::Start(e) | Event::Empty(e) => Some(resolve(&self.reader.resolve_element(e.name()).0, e)),
                _ => None,
            };
            let first = !self.started;
            self.started = true;
            match event {
                Event::Start(e) => self.start(&e, name, offset)?,
                Event::Empty(e) => {
                    self.start(&e, name, offset)?;
                    self.end(offset)?;
                }
                Event::End(_) => self.end(offset)?,
                // Indentation between elements is most of a message's text
                // events: it needs no decoding.
                Event::Text(t) if self.is_indentation(&t) => {}
                Event::Text(t) if let Some(raw) = self.plain_text(&t, offset) => self.plain_characters(raw, offset)?,
                Event::Text(t) => match t.xml10_content() {
                    Ok(content) => self.characters(&content, offset)?,
                    Err(e) => return self.malformed(offset, format!("malformed text: {e}")),
                },
                Event::CData(t) => match t.xml10_content() {
                    Ok(content) => self.characters(&content, offset)?,
                    Err(e) => return self.malformed(offset, format!("malformed CDATA: {e}")),
                },
                Event::GeneralRef(r) => self.reference(&r, offset)?,
                Event::Comment(_) => {}
                Event::Decl(d) => {
                    if !first {
                        return self.malformed(offset, "the XML declaration must come first".into());
                    }
                    let version = d.version().ok();
                    if version.as_deref() != Some(b"1.0") {
                        return self.malformed(offset, "only XML version 1.0 is accepted".into());
                    }
                    if let Some(encoding) = d.encoding() {
                        let utf8 = encoding.is_ok_and(|e| e.eq_ignore_ascii_case(b"UTF-8"));
                        if !utf8 {
                            return self.malformed(offset, "only the UTF-8 encoding is accepted".into());
                        }
                    }
                }
                Event::PI(_) => {
                    return self.malformed(offset, "processing instructions are not accepted".into());
                }
                Event::DocType(_) => {
                    return self.malformed(
                        offset,
                        "a DOCTYPE (DTD, entity declarations) is not accepted (ICD §2)".into(),
                    );
                }
                Event::Eof => return self.eof(offset),
            }
        }
    }

    fn eof(&mut self, offset: usize) -> Result<(), Stop> {
        if !self.stack.is_empty() {
            return self.malformed(offset, "the message ends before its elements are closed".into());
        }
        if !self.root_closed {
            return self.malformed(offset, "the message has no root element".into());
        }
        Ok(())
    }

    fn start(&mut self, e: &BytesStart<'_>, name: Option<Resolved>, offset: usize) -> Result<(), Stop> {
        if self.stack.len() >= self.limits.max_depth {
            return self.fatal(
                ErrorCode::TooLong,
                "message",
                offset,
                format!("elements nest deeper than {}", self.limits.max_depth),
            );
        }
        let name = match name {
            Some(Resolved::Known(name)) => Some(name),
            Some(Resolved::Other) | None => None,
            Some(Resolved::UndeclaredPrefix) => {
                return self.malformed(offset, format!("element {} uses an undeclared prefix", qname(e)));
            }
        };
        let element = match self.stack.last() {
            None if self.root_closed => {
                return self.malformed(offset, "there is content after the root element".into());
            }
            None => {
                if name != Some(Tag::ProtectiveOrderMessage) {
                    return self.malformed(
                        offset,
                        format!(
                            "the root element must be ProtectiveOrderMessage in namespace {}, not {}",
                            names::POR,
                            self.describe(e)
                        ),
                    );
                }
                Element::Message
            }
            Some(parent) => match (parent.element, name) {
                (Element::Skipped, _) => Element::Skipped,
                (_, Some(tag)) => self.child(tag, e, offset)?,
                (_, None) => {
                    self.unexpected(e, offset)?;
                    Element::Skipped
                }
            },
        };
        self.stack.push(Frame::new(element, name));
        if element != Element::Skipped {
            let location = self.lines.position(offset);
            let locations = &mut self.parsed.locations;
            match element {
                Element::Leaf(_) => {
                    self.leaf = None;
                    self.text.clear();
                }
                Element::Image => {
                    self.image = Some(RawImage {
                        location: location.to_string(),
                        ..RawImage::default()
                    });
                    self.image_too_long = false;
                    locations.record(FieldPath::new("image.mime_type"), location);
                    locations.record(FieldPath::new("image.sha256"), location);
                }
                Element::Protected(0) => locations.record(FieldPath::new("protected_persons"), location),
                _ => {}
            }
            element.open(&mut self.parsed.message);
            if let Some(path) = element.path() {
                self.parsed.locations.record(path, location);
            }
        }
        self.attributes(e, element, offset)
    }

    /// What the known element `tag` is inside the innermost open element,
    /// checked against that element's content model (order, `maxOccurs`);
    /// [`Element::Skipped`] when it is refused.
    fn child(&mut self, tag: Tag, e: &BytesStart<'_>, offset: usize) -> Result<Element, Stop> {
        let Some(parent) = self.stack.last_mut() else {
            return Ok(Element::Skipped);
        };
        let model = schema::content(parent.element);
        let position = model.iter().position(|p| p.tag == tag);
        let (Some(i), Some(child)) = (position, parent.element.child(tag, &self.parsed.message)) else {
            self.unexpected(e, offset)?;
            return Ok(Element::Skipped);
        };
        let particle = model[i];
        let seen = parent.seen & tag.bit() != 0;
        let placement = match parent.at {
            Some(at) if i == at && parent.count < particle.max => {
                parent.count += 1;
                Placement::InOrder
            }
            Some(at) if i == at && particle.max == 1 => Placement::Duplicate,
            Some(at) if i == at => Placement::TooMany(particle.max),
            Some(at) if i < at && seen && particle.max == 1 => Placement::Duplicate,
            Some(at) if i < at => Placement::OutOfOrder {
                before: model[at].tag,
                read: !seen && particle.max == 1,
            },
            at => {
                let from = at.map_or(0, |a| a + 1);
                for p in &model[from..i] {
                    if p.min > 0 && parent.seen & p.tag.bit() == 0 {
                        parent.passed.push((p.tag, offset));
                    }
                }
                parent.at = Some(i);
                parent.count = 1;
                Placement::InOrder
            }
        };
        let read = matches!(placement, Placement::InOrder | Placement::OutOfOrder { read: true, .. });
        if read {
            parent.seen |= tag.bit();
            parent.passed.retain(|(t, _)| *t != tag);
        }
        let text = match placement {
            Placement::InOrder => None,
            Placement::Duplicate => Some(format!("element {} appears more than once", qname(e))),
            Placement::TooMany(max) => Some(format!(
                "more than {max} {} elements; at most {max} are allowed",
                qname(e)
            )),
            Placement::OutOfOrder { before, .. } => Some(format!(
                "element {} is out of order: it must come before {}",
                qname(e),
                before.name()
            )),
        };
        if let Some(text) = text {
            let path = child.report_path().unwrap_or_else(|| self.here()).to_string();
            // Too many of a list is about the list, not its n-th element.
            let path = match placement {
                Placement::TooMany(_) => path.split('[').next().unwrap_or(&path),
                _ => &path,
            };
            self.error(ErrorCode::InvalidFormat, path, offset, text)?;
        }
        Ok(if read { child } else { Element::Skipped })
    }

    /// Reports the required children of a closing element that never came,
    /// each at the spot where it was expected (`MISSING`).
    fn missing_children(&mut self, frame: &Frame, offset: usize) -> Result<(), Stop> {
        let model = schema::content(frame.element);
        let from = frame.at.map_or(0, |a| a + 1);
        let trailing = model[from..]
            .iter()
            .filter(|p| p.min > 0 && frame.seen & p.tag.bit() == 0)
            .map(|p| (p.tag, offset));
        let missing: Vec<(Tag, usize)> = frame.passed.iter().copied().chain(trailing).collect();
        for (tag, at) in missing {
            let field = frame
                .element
                .child(tag, &self.parsed.message)
                .and_then(Element::report_path)
                .or_else(|| frame.element.report_path())
                .unwrap_or_else(|| self.here());
            let parent = frame.tag.map_or("its parent", Tag::name);
            let text = format!("{} is missing: {parent} requires it", tag.name());
            self.error(ErrorCode::Missing, &field.to_string(), at, text)?;
        }
        Ok(())
    }

    fn unexpected(&mut self, e: &BytesStart<'_>, offset: usize) -> Result<(), Stop> {
        let text = format!("element {} is not allowed here", self.describe(e));
        self.error(ErrorCode::InvalidFormat, &self.here().to_string(), offset, text)
    }

    /// The path errors about the current spot are reported under: that of
    /// the innermost open element that has one, a wrapper such as
    /// `j:CourtOrderIssuingDate` standing for what it wraps (`message` at
    /// worst).
    fn here(&self) -> FieldPath {
        self.stack
            .iter()
            .rev()
            .find_map(|f| f.element.report_path())
            .unwrap_or(FieldPath::new("message"))
    }

    /// The element's name as written, with its namespace.
    fn describe(&self, e: &BytesStart<'_>) -> String {
        let (ns, _) = self.reader.resolver().resolve_element(e.name());
        match ns {
            ResolveResult::Bound(ns) => {
                format!("{} ({{{}}})", qname(e), String::from_utf8_lossy(ns.as_ref()))
            }
            _ => format!("{} (no namespace)", qname(e)),
        }
    }

    /// Checks every attribute is well formed, and that only allowed ones
    /// appear; keeps the image's.
    fn attributes(&mut self, e: &BytesStart<'_>, element: Element, offset: usize) -> Result<(), Stop> {
        // Most elements have none: nothing to check.
        if is_xml_blank(e.attributes_raw()) {
            return Ok(());
        }
        for attribute in e.attributes() {
            let attribute = match attribute {
                Ok(a) => a,
                Err(err) => return self.malformed(offset, format!("malformed attribute: {err}")),
            };
            let value = match attribute.unescape_value() {
                Ok(v) => v,
                Err(err) => {
                    return self.malformed(offset, format!("attribute value not accepted: {err}"));
                }
            };
            if attribute.key.as_namespace_binding().is_some() || element == Element::Skipped {
                continue;
            }
            let (ns, local) = self.reader.resolver().resolve_attribute(attribute.key);
            let slot = match (&ns, local.as_ref()) {
                (ResolveResult::Unbound, b"mimeType") if element == Element::Image => {
                    self.image.as_mut().map(|i| &mut i.mime_type)
                }
                (ResolveResult::Unbound, b"sha256") if element == Element::Image => {
                    self.image.as_mut().map(|i| &mut i.sha256)
                }
                (ResolveResult::Bound(ns), b"schemaLocation" | b"noNamespaceSchemaLocation")
                    if ns.as_ref() == names::XSI.as_bytes() =>
                {
                    continue;
                }
                (ResolveResult::Unknown(_), _) => {
                    let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                    return self.malformed(offset, format!("attribute {key} uses an undeclared prefix"));
                }
                _ => {
                    let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                    let text = format!("attribute {key} is not allowed on {}", qname(e));
                    self.error(ErrorCode::InvalidFormat, &self.here().to_string(), offset, text)?;
                    continue;
                }
            };
            if let Some(slot) = slot {
                let value = value.trim_matches(is_xml_space);
                *slot = Some(value.to_owned());
            }
        }
        Ok(())
    }

    fn end(&mut self, offset: usize) -> Result<(), Stop> {
        let Some(frame) = self.stack.pop() else {
            return self.malformed(offset, "an end tag has no start tag".into());
        };
        match frame.element {
            Element::Leaf(field) => {
                let text = match self.leaf.take() {
                    Some(piece) => piece,
                    None => &self.text,
                };
                // XML white space is ASCII; the other ASCII white space
                // (form feed) was refused with the control characters.
                let value = text.trim_ascii();
                let stored = schema::check_value(field, value)
                    .and_then(|()| fields::store(&mut self.parsed.message, field, value));
                if let Err((code, text)) = stored {
                    let path = field.path().to_string();
                    let location = self.parsed.locations.get(&path);
                    let mut error = FieldError::new(code, path, text);
                    error.location = location;
                    self.parsed.errors.push(error);
                }
            }
            Element::Image => {
                let raw = self.image.take().unwrap_or_default();
                if self.image_too_long {
                    image::check_attributes(&raw, &mut self.parsed.errors);
                    let max = self.limits.max_image_bytes;
                    let error = FieldError::new(ErrorCode::TooLong, "image", format!("the image is over {max} bytes"));
                    self.parsed.errors.push(error.at(raw.location));
                } else if raw.base64.is_empty() {
                    // No image; the attributes are still required.
                    image::check_attributes(&raw, &mut self.parsed.errors);
                } else {
                    self.parsed.message.image =
                        image::decode_image(raw, self.limits.max_image_bytes, &mut self.parsed.errors);
                }
            }
            Element::Skipped => {}
            element => {
                self.missing_children(&frame, offset)?;
                if element == Element::Message {
                    self.root_closed = true;
                }
            }
        }
        Ok(())
    }

    /// The text of `t` as it stands in the message, when decoding would not
    /// change it: the message is already checked UTF-8, and without a CR
    /// there are no line ends to normalise. `None` sends `t` the long way.
    fn plain_text(&self, t: &BytesText<'_>, offset: usize) -> Option<&'a str> {
        let raw = self.source.get(offset..offset.checked_add(t.len())?)?;
        (raw.as_bytes() == &**t && memchr::memchr(b'\r', raw.as_bytes()).is_none()).then_some(raw)
    }

    /// Whether `t` is white space between elements (not inside a leaf or the
    /// image, whose text is content).
    fn is_indentation(&self, t: &BytesText<'_>) -> bool {
        let inside_content = matches!(
            self.stack.last().map(|f| f.element),
            Some(Element::Leaf(_) | Element::Image)
        );
        !inside_content && is_xml_blank(t)
    }

    /// Text taken as it stands in the message: a leaf's first piece is
    /// kept borrowed.
    fn plain_characters(&mut self, piece: &'a str, offset: usize) -> Result<(), Stop> {
        let in_leaf = matches!(self.stack.last().map(|f| f.element), Some(Element::Leaf(_)));
        if in_leaf && self.leaf.is_none() && self.text.is_empty() {
            self.leaf = Some(piece);
            return Ok(());
        }
        self.characters(piece, offset)
    }

    /// Character data (text or CDATA) at `offset`.
    fn characters(&mut self, content: &str, offset: usize) -> Result<(), Stop> {
        match self.stack.last().map(|f| f.element) {
            Some(Element::Leaf(_)) => {
                if let Some(first) = self.leaf.take() {
                    self.text.push_str(first);
                }
                self.text.push_str(content);
            }
            Some(Element::Image) => {
                if !self.image_too_long {
                    let max = image::max_base64_len(self.limits.max_image_bytes);
                    if let Some(raw) = self.image.as_mut() {
                        raw.base64.extend(content.bytes().filter(|b| !b.is_ascii_whitespace()));
                        if raw.base64.len() > max {
                            self.image_too_long = true;
                            raw.base64 = Vec::new();
                        }
                    }
                }
            }
            Some(Element::Skipped) => {}
            _ if content.chars().all(is_xml_space) => {}
            None => return self.malformed(offset, "there is text outside the root element".into()),
            Some(_) => {
                let text = format!("text {} is not allowed here", quote(content.trim()));
                self.error(ErrorCode::InvalidFormat, &self.here().to_string(), offset, text)?;
            }
        }
        Ok(())
    }

    /// An entity or character reference: only the five predefined entities
    /// and character references are accepted.
    fn reference(&mut self, r: &BytesRef<'_>, offset: usize) -> Result<(), Stop> {
        let c = if r.is_char_ref() {
            match r.resolve_char_ref() {
                Ok(Some(c)) if is_xml_char(c) => c,
                _ => {
                    let name = String::from_utf8_lossy(r.as_ref());
                    return self.malformed(offset, format!("character reference &{name}; is not allowed"));
                }
            }
        } else {
            let raw: &[u8] = r.as_ref();
            match raw {
                b"lt" => '<',
                b"gt" => '>',
                b"amp" => '&',
                b"apos" => '\'',
                b"quot" => '"',
                other => {
                    let name = String::from_utf8_lossy(other);
                    return self.malformed(
                        offset,
                        format!("entity reference &{name}; is not accepted: only the five predefined entities are"),
                    );
                }
            }
        };
        let mut buf = [0; 4];
        self.characters(c.encode_utf8(&mut buf), offset)
    }
}

/// An element's name, resolved against the namespaces in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Known(Tag),
    Other,
    UndeclaredPrefix,
}

fn resolve(ns: &ResolveResult<'_>, e: &BytesStart<'_>) -> Resolved {
    match ns {
        ResolveResult::Bound(ns) => {
            Tag::classify(ns.as_ref(), e.local_name().as_ref()).map_or(Resolved::Other, Resolved::Known)
        }
        ResolveResult::Unbound => Resolved::Other,
        ResolveResult::Unknown(_) => Resolved::UndeclaredPrefix,
    }
}

/// The element's name as written (prefix included).
fn qname(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

fn to_usize(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
