//! CLETS request text (ICD §6): `MKE.ORI.MCN.` then `TAG/value.` fields.
//!
//! # Design note
//!
//! A [`CletsRequest`] is the wire shape only: a message key, the header's ORI
//! and MCN, and `(tag, value)` pairs in wire order. Which fields a key
//! carries, their tags, their order, which are required, which may repeat and
//! their maxima all come from `mappings/clets.toml` through
//! [`CletsTables`](crate::mapping::clets::CletsTables); the canonical order
//! becomes a request in [`crate::translate::clets`].
//!
//! - **Writing** ([`CletsRequest::to_text`], in `writer`) joins the parts
//!   with `.`; it trusts its input, which the translator has already checked.
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

/// A CLETS request, ready to be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CletsRequest {
    /// Message key: `EPO`, `MPO`, `CPO`, `XPO` or `SPO`.
    pub mke: String,
    /// The originating court's ORI.
    pub ori: String,
    /// Message control number (20 characters, ICD §5).
    pub mcn: String,
    /// `(tag, value)` in wire order; values never contain `.`.
    pub fields: Vec<(String, String)>,
}

impl CletsRequest {
    /// The first value of `tag`, if any.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find(|(t, _)| t == tag).map(|(_, v)| v.as_str())
    }

    /// Every value of `tag`, in wire order (`PCO`, the `PPN` group members).
    pub fn get_all<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
    }
}
