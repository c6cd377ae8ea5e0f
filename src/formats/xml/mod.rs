//! The ICD §2 XML order message and the ICD §4 XML status message.
//!
//! # Design note
//!
//! **Reading an order** ([`read_order`]) is one streaming pass of quick-xml's
//! namespace-resolving reader over the body, which is already in memory (an
//! AMQP message). No DOM is built: a small stack of frames, one per open
//! element, says what each element is (the message header, a protected person,
//! a leaf such as `por:SexCode`, …) and where its children stand in its
//! content model (which it has seen, the last one in order and how often).
//! The memory used is bounded by the depth bound and the longest leaf. A
//! leaf's text is collected into one reused buffer and stored
//! straight into the [`OrderMessage`](crate::model::OrderMessage) when the
//! leaf closes.
//!
//! *Names.* Elements are matched by (namespace URI, local name), never by
//! prefix, so a court may use any prefixes or a default namespace. The
//! vocabulary lives in [`names`]; the mapping from a leaf to a model field
//! and its canonical path (`restrained_person.name.last`, …) lives in the
//! `fields` module.
//!
//! *What is refused.* The reader refuses exactly what the XSD in
//! `schemas/por.xsd` (with `schemas/niem/`) refuses, so that a court can
//! check its output with any XSD validator; the validator then judges
//! content (per-action `MISSING`, code lists, the lengths the XSD leaves
//! open, dates in order). What the XSD fixes is mirrored in the `schema`
//! module. The reader refuses, as `INVALID_FORMAT` unless noted:
//! - a body over [`XmlLimits::max_bytes`] or nesting over
//!   [`XmlLimits::max_depth`] (`TOO_LONG`);
//! - invalid UTF-8, or a character XML 1.0 forbids;
//! - malformed XML (with the reader's `line:column`);
//! - a DOCTYPE (and with it any entity declaration), a processing
//!   instruction other than a leading `<?xml …?>` declaration, an encoding
//!   other than UTF-8, and any entity reference other than the five
//!   predefined ones and character references. Nothing external is ever
//!   fetched: quick-xml does not resolve entities and this reader refuses
//!   them before they could matter;
//! - a root other than `{urn:por:order:1}ProtectiveOrderMessage`;
//! - against each element's content model (its `xs:sequence`): an element
//!   that is not allowed where it stands (in any namespace), a second copy
//!   of a singular element, a tenth protected person or condition code
//!   (on the list), and an element before one it must follow. The element's
//!   subtree is skipped and reading goes on, except that the first copy of a
//!   singular element out of order is still read, so that one swap is one
//!   error;
//! - a required element that never comes (`MISSING`, located where it was
//!   expected: at the next element, or at the parent's end tag);
//! - an attribute the XSD does not declare (`xsi:schemaLocation` hints
//!   aside);
//! - a value the XSD refuses: an ORI that is not `[A-Z0-9]{9}`, an order
//!   number that is not `[A-Z0-9-]` (`TOO_LONG` over 15), a value over a
//!   maximum length the ICD fixes (`TOO_LONG`; lengths count as `xs:token`
//!   counts them: trimmed, each run of white space one character), an empty
//!   date, date-time, integer, boolean or action (`MISSING`, as the
//!   validator treats a blank value), and a value of the wrong shape (date,
//!   date-time with seconds, unsigned integer, boolean, base64); an
//!   impossible date of the right shape is `INVALID_DATE`, an unknown
//!   `por:Action` is `INVALID_CODE`. A refused value is left out of the
//!   model.
//!
//! The reader is stricter than an XSD validator in a few places the ICD
//! decides: DOCTYPEs and processing instructions, `xsi:type`, the document
//! element, base64 with stray characters, and the image's digest and size.
//!
//! Malformed XML, refused markup and the bounds stop the reader; other errors
//! are collected (at most [`MAX_ERRORS`]) and the reader carries on, so that
//! a `REJECTED` status can still name the order number and sequence.
//!
//! *Locations.* Every field's location is the `line:column` (1-based; columns
//! count characters) of its element's `<`, computed from the reader's byte
//! offsets with a forward-only cursor, so the whole body is scanned for
//! newlines once. They go into [`Parsed::locations`](crate::formats::Parsed)
//! as numbers under a [`FieldPath`](crate::model::FieldPath), made text only
//! when an error needs them, together with the containers `message`,
//! `order`, `restrained_person`, `protected_persons`, `protected_persons[i]`,
//! `order.service` and `image` (whose attributes `image.mime_type` and
//! `image.sha256` share its location), so that the validator can point at
//! something. An error about a leaf is reported under the leaf's path; an
//! element missing, repeated or out of order under its own path (a wrapper
//! such as `nc:ActivityIdentification` under what it wraps,
//! `order.order_number`; a tenth list item under the list); other errors
//! about structure (a stray element, attribute or text) under the path of
//! the innermost element that has one; malformed XML under `message`.
//!
//! *The signed image.* `por:OrderImage` is base64 (whitespace allowed, as in
//! `xs:base64Binary`), bounded before decoding by
//! [`XmlLimits::max_image_bytes`]; its `sha256` attribute is checked against
//! the decoded bytes (`INVALID_FORMAT` on `image.sha256`) and its `mimeType`
//! must be `application/pdf` or `image/tiff` (`INVALID_CODE`). A missing
//! attribute is `MISSING`, since the XSD requires both; an empty element is
//! no image, but its attributes are still required.
//!
//! **Writing** ([`write_order`], [`write_status`]) is plain, deterministic
//! string building: fixed prefixes `por`, `nc`, `j`, two-space indentation,
//! no XML declaration, and escaping of `&`, `<`, `>` (and `"` in attributes).
//! Characters XML 1.0 cannot carry are written as U+FFFD; a carriage return is
//! written as `&#13;` so that it survives a reader's line-end normalisation.
//! `read_order(write_order(m)).message == m` for any `m` the reader returns,
//! and the output is XSD-valid when `m` is a valid message (it needs its
//! `sent_at`, which a fixed-width message gets from the AMQP `timestamp`).
//!
//! **Statuses** ([`read_status`]) are read with the same namespace-aware
//! reader but without locations: the court simulator and the tests use it.

mod fields;
mod image;
pub mod names;
mod position;
mod reader;
#[cfg(test)]
mod samples;
mod schema;
mod status;
mod values;
mod writer;

pub use reader::read_order;
pub use status::{read_status, write_status};
pub use writer::{image_base64, write_order, write_order_marking_image};

/// Bounds on one XML order message (ICD §0 size limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest body accepted, in bytes (the AMQP message bound, 16 MiB).
    pub max_bytes: usize,
    /// Deepest element nesting accepted; the root is depth 1.
    pub max_depth: usize,
    /// Largest signed-order image accepted, in decoded bytes (10 MiB).
    pub max_image_bytes: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_bytes: crate::formats::MAX_MESSAGE_BYTES,
            max_depth: 32,
            max_image_bytes: 10 * 1024 * 1024,
        }
    }
}

/// The most errors one message reports; the reader stops after that many.
pub const MAX_ERRORS: usize = 100;
