//! CLETS request text (ICD §6): `MKE.ORI.MCN.` then `TAG/value.` fields.
//!
//! # Design note
//!
//! A [`CletsRequest`] is the wire shape only: a message key, the header's ORI
//! and MCN, and `(tag, value)` pairs in wire order. It is kept as the request
//! text itself plus the offsets of its parts, so that the translator writes
//! each value once, straight into the text that is sent. Which fields a key
//! carries, their tags, their order, which are required, which may repeat and
//! their maxima all come from `mappings/clets.toml` through
//! [`CletsTables`](crate::mapping::clets::CletsTables); the canonical order
//! becomes a request in [`crate::translate::clets`].
//!
//! - **Writing** ([`CletsRequest::new`], [`CletsRequest::push`], in `writer`)
//!   appends each part and its `.`; it trusts its input, which the
//!   translator has already checked (no value holds a `.`).
//! - **Reading** ([`CletsRequest::read`], in `reader`) is the strict,
//!   total inverse: it never panics, reads at most [`MAX_REQUEST_BYTES`],
//!   and refuses anything ICD §6 does not allow, each problem a
//!   [`FieldError`](crate::model::FieldError) naming the tag (`PCO[2]`,
//!   `PPN[0]` for repeated fields and groups, 0-based) and its `1:column`
//!   (1-based byte column of the field's tag; a request is one line). The
//!   reader's rules are listed in its module doc. Every request the
//!   translator writes for a valid order reads back unchanged.

mod reader;
mod writer;

pub use reader::{MAX_ERRORS, MAX_REQUEST_BYTES};
pub(crate) use writer::RequestWriter;

/// A CLETS request, ready to be framed: the request text itself, with the
/// offsets of its parts, so that the translator writes it once and sending
/// it needs no second pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CletsRequest {
    /// `MKE.ORI.MCN.TAG/value.TAG/value.`
    text: String,
    /// Where the message key, the ORI and the MCN end (their `.`).
    header: [u32; 3],
    /// Per field, where its tag starts and where its `/` is; the value
    /// ends at the next `.`.
    fields: Vec<(u32, u32)>,
}

impl CletsRequest {
    /// Message key: `EPO`, `MPO`, `CPO`, `XPO` or `SPO`.
    pub fn mke(&self) -> &str {
        &self.text[..self.header[0] as usize]
    }

    /// The originating court's ORI.
    pub fn ori(&self) -> &str {
        &self.text[self.header[0] as usize + 1..self.header[1] as usize]
    }

    /// Message control number (20 characters, ICD §5).
    pub fn mcn(&self) -> &str {
        &self.text[self.header[1] as usize + 1..self.header[2] as usize]
    }

    /// `(tag, value)` in wire order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.fields.len()).map(|i| self.field(i))
    }

    /// The `i`-th field: its tag runs to its `/`, its value to the `.`
    /// before the next field's tag (or the text's last `.`).
    fn field(&self, i: usize) -> (&str, &str) {
        let (start, slash) = self.fields[i];
        let end = self
            .fields
            .get(i + 1)
            .map_or(self.text.len(), |&(next, _)| next as usize)
            - 1;
        (
            &self.text[start as usize..slash as usize],
            &self.text[slash as usize + 1..end],
        )
    }

    /// How many fields the request carries.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The first value of `tag`, if any.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.fields().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    /// Every value of `tag`, in wire order (`PCO`, the `PPN` group members).
    pub fn get_all<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields().filter(move |(t, _)| *t == tag).map(|(_, v)| v)
    }
}
