//! CLETS tables (`mappings/clets.toml`): which message key each action
//! becomes, which fields each key carries in which order, each field's tag
//! and maximum, and canonical → CLETS code tables.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::MappingError;
use crate::model::Action;

/// Porter's name for each CLETS field (the keys of `[fields]`).
pub const KNOWN_FIELDS: &[&str] = &[
    "nic", "name", "sex", "race", "dob", "height", "weight", "eye", "hair", "oln", "ols", "pno",
    "oca", "typ", "isd", "exp", "ext", "brady", "pco", "ppn", "psx", "ppr", "ppb", "mis", "doc",
    "rea", "svd", "svt", "svb", "sva", "svm",
];

/// Code tables the translator needs.
pub const CODE_TABLES: &[&str] =
    &["order_type", "sex", "race", "eye", "hair", "brady", "pco", "service_method"];

/// One field's wire tag and maximum length.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub tag: String,
    pub max: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CletsFile {
    message_keys: BTreeMap<String, String>,
    field_order: BTreeMap<String, Vec<String>>,
    fields: BTreeMap<String, FieldSpec>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

/// The loaded, checked CLETS tables.
#[derive(Debug, Clone)]
pub struct CletsTables {
    message_keys: BTreeMap<Action, String>,
    field_order: BTreeMap<String, Vec<String>>,
    fields: BTreeMap<String, FieldSpec>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

impl CletsTables {
    /// Loads `mappings/clets.toml`.
    pub fn load(path: &Path) -> Result<CletsTables, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError::new(path, e.to_string()))?;
        CletsTables::from_toml_str(&text, path)
    }

    /// Parses and checks the tables; `path` names the file in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<CletsTables, MappingError> {
        let file: CletsFile = toml::from_str(text).map_err(|e| MappingError::new(path, e.to_string()))?;
        let mut message_keys = BTreeMap::new();
        for (action, mke) in &file.message_keys {
            let a = Action::from_name(action).ok_or_else(|| {
                MappingError::new(path, format!("[message_keys] entry {action:?}: not an action"))
            })?;
            if !file.field_order.contains_key(mke) {
                return Err(MappingError::new(
                    path,
                    format!("[message_keys] entry {action:?}: key {mke:?} has no [field_order] entry"),
                ));
            }
            message_keys.insert(a, mke.clone());
        }
        for a in Action::ALL {
            if !message_keys.contains_key(&a) {
                return Err(MappingError::new(path, format!("[message_keys]: missing entry {:?}", a.name())));
            }
        }
        for name in file.fields.keys() {
            if !KNOWN_FIELDS.contains(&name.as_str()) {
                return Err(MappingError::new(path, format!("[fields] entry {name:?}: unknown field")));
            }
        }
        for name in KNOWN_FIELDS {
            if !file.fields.contains_key(*name) {
                return Err(MappingError::new(path, format!("[fields]: missing entry {name:?}")));
            }
        }
        for (mke, order) in &file.field_order {
            for f in order {
                if f != "protected" && !file.fields.contains_key(f) {
                    return Err(MappingError::new(
                        path,
                        format!("[field_order] entry {mke:?}: unknown field {f:?}"),
                    ));
                }
            }
        }
        for table in CODE_TABLES {
            if !file.codes.contains_key(*table) {
                return Err(MappingError::new(path, format!("[codes]: missing table {table:?}")));
            }
        }
        Ok(CletsTables {
            message_keys,
            field_order: file.field_order,
            fields: file.fields,
            codes: file.codes,
        })
    }

    /// The message key an action becomes (`EPO`, …).
    pub fn message_key(&self, action: Action) -> &str {
        &self.message_keys[&action]
    }

    /// The fields a message key carries, in wire order.
    pub fn field_order(&self, mke: &str) -> &[String] {
        self.field_order.get(mke).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A field's tag and maximum.
    pub fn field(&self, name: &str) -> &FieldSpec {
        &self.fields[name]
    }

    /// Canonical → CLETS code; `None` when the table has no such code.
    pub fn code(&self, table: &str, canonical: &str) -> Option<&str> {
        self.codes.get(table)?.get(canonical).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> CletsTables {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/clets.toml");
        CletsTables::load(&path).expect("shipped mappings/clets.toml loads")
    }

    /// The shipped tables map every action to the ICD §6 key.
    #[test]
    fn shipped_tables_map_actions_to_keys() {
        let t = shipped();
        assert_eq!(t.message_key(Action::Issue), "EPO");
        assert_eq!(t.message_key(Action::Service), "SPO");
        assert_eq!(t.field("name").tag, "NAM");
        assert_eq!(t.code("pco", "07"), Some("07"));
    }

    /// A broken entry stops loading with the file and the entry named.
    #[test]
    fn broken_entry_names_file_and_entry() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/clets.toml");
        let text = std::fs::read_to_string(&path).unwrap().replace("nic = { tag", "nicc = { tag");
        let err = CletsTables::from_toml_str(&text, Path::new("mappings/clets.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mappings/clets.toml") && msg.contains("nicc"), "{msg}");
    }
}
