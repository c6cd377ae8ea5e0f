//! Mapping tables: the data under `mappings/` that turns canonical values
//! into each partner's values.
//!
//! - [`codes`]: the canonical ICD §0 code lists, used by the validator.
//! - [`clets`]: CLETS message keys, field tags, field order and code tables.
//! - [`code_map`]: code-map sets turning a court CMS's own codes into the
//!   canonical ones (`mappings/code-maps/`).
//!
//! All tables are loaded and checked at start; a broken file stops the
//! broker with a message naming the file and the entry.

pub mod clets;
pub mod code_map;
pub mod codes;

use std::path::{Path, PathBuf};

/// A mapping file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct MappingError {
    pub path: PathBuf,
    pub message: String,
}

impl MappingError {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        MappingError { path: path.to_path_buf(), message: message.into() }
    }
}
