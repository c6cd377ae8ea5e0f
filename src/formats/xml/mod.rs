//! The ICD §2 XML order message and the ICD §4 XML status message.
//!
//! # Design note
//!
//! **Reading an order** ([`read_order`]) is one streaming pass of quick-xml's
//! namespace-resolving reader over the body, which is already in memory (an
//! AMQP message). No DOM is built: a small stack of frames, one per open
//! element, says what each element is (the message header, a protected person,
//! a leaf such as `por:SexCode`, …) and which of its singular children it has
//! already seen. A leaf's text is collected into one reused buffer and stored
//! straight into the [`OrderMessage`](crate::model::OrderMessage) when the
//! leaf closes.
//!
//! *Names.* Elements are matched by (namespace URI, local name), never by
//! prefix, so a court may use any prefixes or a default namespace. The
//! vocabulary lives in [`names`]; the mapping from a leaf to a model field
//! and its canonical path (`restrained_person.name.last`, …) lives in the
//! `fields` module.
//!
//! *What is refused.* The reader only judges form; the validator judges
//! content (per-action `MISSING`, code lists, maximum lengths). The reader
//! refuses, as `INVALID_FORMAT` unless noted:
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
//! - an element the schema does not allow where it stands (in any
//!   namespace), or a second copy of a singular element; the element's
//!   subtree is skipped and reading goes on;
//! - a value of the wrong shape (date, date-time, integer, boolean, base64);
//!   an impossible date of the right shape is `INVALID_DATE`, an unknown
//!   `por:Action` is `INVALID_CODE`.
//!
//! Malformed XML, refused markup and the bounds stop the reader; other errors
//! are collected (at most [`MAX_ERRORS`]) and the reader carries on, so that
//! a `REJECTED` status can still name the order number and sequence. Element
//! order inside a parent is not checked here (see the XSD in `schemas/`).
//!
//! *Locations.* Every field's location is the `line:column` (1-based; columns
//! count characters) of its element's `<`, computed from the reader's byte
//! offsets with a forward-only cursor, so the whole body is scanned for
//! newlines once. They go into [`Parsed::locations`](crate::formats::Parsed)
//! under the canonical field path, together with the containers `message`,
//! `order`, `restrained_person`, `protected_persons`, `protected_persons[i]`,
//! `order.service` and `image` (whose attributes `image.mime_type` and
//! `image.sha256` share its location), so that the validator can point at
//! something. An error about a leaf is reported under the leaf's path; an
//! error about structure (a stray element, attribute or text) under the path
//! of the innermost element that has one; malformed XML under `message`.
//!
//! *The signed image.* `por:OrderImage` is base64 (whitespace allowed, as in
//! `xs:base64Binary`), bounded before decoding by
//! [`XmlLimits::max_image_bytes`]; its `sha256` attribute is checked against
//! the decoded bytes (`INVALID_FORMAT` on `image.sha256`) and its `mimeType`
//! must be `application/pdf` or `image/tiff` (`INVALID_CODE`). A missing
//! attribute is `MISSING`, since the XSD requires both; an empty element is
//! no image.
//!
//! **Writing** ([`write_order`], [`write_status`]) is plain, deterministic
//! string building: fixed prefixes `por`, `nc`, `j`, two-space indentation,
//! no XML declaration, and escaping of `&`, `<`, `>` (and `"` in attributes).
//! Characters XML 1.0 cannot carry are written as U+FFFD; a carriage return is
//! written as `&#13;` so that it survives a reader's line-end normalisation.
//! `read_order(write_order(m)).message == m` for any `m` the reader returns.
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
mod status;
mod values;
mod writer;

pub use reader::read_order;
pub use status::{read_status, write_status};
pub use writer::write_order;

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
