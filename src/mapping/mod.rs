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
mod clets_plan;
pub mod code_map;
pub mod codes;
mod short_codes;

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
        MappingError {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An error about `key` in `[table]`, with its line when it can be found.
    pub fn at_entry(path: &Path, text: &str, table: &str, key: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        match entry_line(text, table, key) {
            Some(line) => MappingError::new(path, format!("line {line}: [{table}] {key}: {message}")),
            None => MappingError::new(path, format!("[{table}] {key}: {message}")),
        }
    }
}

/// The 1-based line of `key = …` inside `[table]` of a TOML text (or of
/// the table header when `key` is empty).
pub fn entry_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let header = format!("[{table}]");
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_table = t == header;
            if in_table && key.is_empty() {
                return Some(i + 1);
            }
            continue;
        }
        if in_table {
            let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if k == key {
                return Some(i + 1);
            }
        }
    }
    None
}
