//! Translation: the canonical order into each partner's message.
//!
//! - [`clets`]: the ICD §6 request for CARPOS, driven by
//!   `mappings/clets.toml`, with the message control number of ICD §5.
//! - [`text`]: the text rules on the way to CLETS (uppercase, ASCII
//!   transliteration, no `.`), each change recorded as a warning.

pub mod clets;
pub mod text;
