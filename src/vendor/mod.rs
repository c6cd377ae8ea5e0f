//! Tools for court CMS vendors, who build against the ICD and must know
//! before they go live whether Porter will accept what their CMS writes.
//!
//! - [`validate`]: `porter validate`, the broker's own stateless verdict on
//!   order files and batch files, offline.

pub mod validate;
