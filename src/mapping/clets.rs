//! CLETS tables (`mappings/clets.toml`): which message key each action
//! becomes, which fields each key carries in which order, which of them it
//! requires (ICD §6 R/O/–), which may repeat, each field's tag and maximum,
//! and canonical → CLETS code tables.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::MappingError;
use super::clets_plan::Plan;
pub use super::clets_plan::{CletsField, CodeTable, Step};
use crate::model::Action;

/// Porter's name for each CLETS field (the keys of `[fields]`).
pub const KNOWN_FIELDS: &[&str] = &[
    "nic", "name", "sex", "race", "dob", "height", "weight", "eye", "hair", "oln", "ols", "pno", "oca", "typ", "isd",
    "exp", "ext", "brady", "pco", "ppn", "psx", "ppr", "ppb", "mis", "doc", "rea", "svd", "svt", "svb", "sva", "svm",
];

/// The members of the repeated protected-person group, in wire order; the
/// group is named `protected` in `[field_order]` and `[repeats]`, and a new
/// group starts with its first member.
pub const PROTECTED_GROUP: &[&str] = &["ppn", "psx", "ppr", "ppb"];

/// The name of the protected-person group in `[field_order]` and `[repeats]`.
pub const PROTECTED: &str = "protected";

/// Whether a message key carries a field (ICD §6: R, O or –).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// R: the key must carry it.
    Required,
    /// O: the key may carry it.
    Optional,
    /// –: the key never carries it.
    Absent,
}

/// Code tables the translator needs.
pub const CODE_TABLES: &[&str] = &[
    "order_type",
    "sex",
    "race",
    "eye",
    "hair",
    "brady",
    "pco",
    "service_method",
];

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
    presence: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    required_with: BTreeMap<String, String>,
    #[serde(default)]
    repeats: BTreeMap<String, usize>,
    fields: BTreeMap<String, FieldSpec>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

/// The loaded, checked CLETS tables.
#[derive(Debug, Clone)]
pub struct CletsTables {
    message_keys: BTreeMap<Action, String>,
    field_order: BTreeMap<String, Vec<String>>,
    /// Per key, per field (group members by name): required or optional.
    presence: BTreeMap<String, BTreeMap<String, Presence>>,
    required_with: BTreeMap<String, String>,
    repeats: BTreeMap<String, usize>,
    fields: BTreeMap<String, FieldSpec>,
    /// Wire tag → field name.
    by_tag: BTreeMap<String, String>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
    /// The same tables compiled for the translator.
    plan: Plan,
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
            let a = Action::from_name(action)
                .ok_or_else(|| MappingError::at_entry(path, text, "message_keys", action, "not an action"))?;
            if !file.field_order.contains_key(mke) {
                let why = format!("key {mke:?} has no [field_order] entry");
                return Err(MappingError::at_entry(path, text, "message_keys", action, why));
            }
            message_keys.insert(a, mke.clone());
        }
        for a in Action::ALL {
            if !message_keys.contains_key(&a) {
                return Err(MappingError::new(
                    path,
                    format!("[message_keys]: missing entry {:?}", a.name()),
                ));
            }
        }
        for name in file.fields.keys() {
            if !KNOWN_FIELDS.contains(&name.as_str()) {
                return Err(MappingError::at_entry(path, text, "fields", name, "unknown field"));
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
                    let why = format!("unknown field {f:?}");
                    return Err(MappingError::at_entry(path, text, "field_order", mke, why));
                }
            }
        }
        for table in CODE_TABLES {
            if !file.codes.contains_key(*table) {
                return Err(MappingError::new(path, format!("[codes]: missing table {table:?}")));
            }
        }
        let mut by_tag = BTreeMap::new();
        for (name, spec) in &file.fields {
            let at = |why: String| MappingError::at_entry(path, text, "fields", name, why);
            let tag_ok = !spec.tag.is_empty() && spec.tag.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !tag_ok {
                return Err(at(format!("tag {:?} must be A-Z and 0-9", spec.tag)));
            }
            if spec.max == 0 {
                return Err(at("max must be at least 1".into()));
            }
            if let Some(other) = by_tag.insert(spec.tag.clone(), name.clone()) {
                return Err(at(format!("tag {:?} is also the tag of {other:?}", spec.tag)));
            }
        }
        let presence = check_presence(&file, path, text)?;
        for (field, needs) in &file.required_with {
            for f in [field, needs] {
                if !file.fields.contains_key(f) {
                    let why = format!("unknown field {f:?}");
                    return Err(MappingError::at_entry(path, text, "required_with", field, why));
                }
            }
        }
        for (name, &max) in &file.repeats {
            let at = |why: String| MappingError::at_entry(path, text, "repeats", name, why);
            if name != PROTECTED && (!file.fields.contains_key(name) || PROTECTED_GROUP.contains(&name.as_str())) {
                return Err(at(format!("not a field (or {PROTECTED:?}) that can repeat")));
            }
            if max == 0 {
                return Err(at("must be at least 1".into()));
            }
        }
        let plan = Plan::compile(&message_keys, &file.field_order, &file.fields, &file.codes);
        Ok(CletsTables {
            plan,
            message_keys,
            field_order: file.field_order,
            presence,
            required_with: file.required_with,
            repeats: file.repeats,
            fields: file.fields,
            by_tag,
            codes: file.codes,
        })
    }

    /// Whether `mke` is one of the message keys (`EPO`, …).
    pub fn is_message_key(&self, mke: &str) -> bool {
        self.message_keys.values().any(|k| k == mke)
    }

    /// Whether `mke` carries `field` (a field name; group members by name),
    /// and whether it requires it.
    pub fn presence(&self, mke: &str, field: &str) -> Presence {
        self.presence
            .get(mke)
            .and_then(|p| p.get(field))
            .copied()
            .unwrap_or(Presence::Absent)
    }

    /// The field whose presence makes `field` required (`ols` → `oln`).
    pub fn required_with(&self, field: &str) -> Option<&str> {
        self.required_with.get(field).map(String::as_str)
    }

    /// How often a field, or the `protected` group, may occur in one
    /// request (1 unless `[repeats]` says more).
    pub fn max_repeats(&self, field_or_group: &str) -> usize {
        self.repeats.get(field_or_group).copied().unwrap_or(1)
    }

    /// The field name a wire tag stands for (`NAM` → `name`).
    pub fn field_by_tag(&self, tag: &str) -> Option<&str> {
        self.by_tag.get(tag).map(String::as_str)
    }

    /// Whether `clets` is a CLETS code of the table (a value, not a key,
    /// of `[codes.<table>]`).
    pub fn is_clets_code(&self, table: &str, clets: &str) -> bool {
        self.codes.get(table).is_some_and(|t| t.values().any(|v| v == clets))
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

    /// The message key an action becomes and its field order, compiled.
    pub fn plan(&self, action: Action) -> (&str, &[Step]) {
        self.plan.key(action)
    }

    /// A field's tag and maximum, by index.
    pub fn spec(&self, field: CletsField) -> &FieldSpec {
        self.plan.spec(field)
    }

    /// Canonical → CLETS code through a compiled table.
    pub fn code_in(&self, table: CodeTable, canonical: &str) -> Option<&str> {
        self.plan.code(table, canonical)
    }
}

/// Checks `[presence]` against `[field_order]`: one table per key, naming
/// exactly the fields the key carries (the group by its members), each `R`
/// or `O`; and no field twice in one key's order.
/// An error about a whole `[table]`, with the line of its header.
fn at_table(path: &Path, text: &str, table: &str, why: String) -> MappingError {
    match super::entry_line(text, table, "") {
        Some(line) => MappingError::new(path, format!("line {line}: [{table}]: {why}")),
        None => MappingError::new(path, format!("[{table}]: {why}")),
    }
}

fn check_presence(
    file: &CletsFile,
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, BTreeMap<String, Presence>>, MappingError> {
    let mut out = BTreeMap::new();
    for mke in file.presence.keys() {
        if !file.field_order.contains_key(mke) {
            let why = format!("key {mke:?} has no [field_order] entry");
            return Err(at_table(path, text, &format!("presence.{mke}"), why));
        }
    }
    for (mke, order) in &file.field_order {
        let table_name = format!("presence.{mke}");
        let Some(table) = file.presence.get(mke) else {
            return Err(MappingError::new(
                path,
                format!("[{table_name}]: missing table for key {mke:?}"),
            ));
        };
        let mut carried: Vec<&str> = Vec::new();
        for f in order {
            let names: Vec<&str> = if f == PROTECTED {
                PROTECTED_GROUP.to_vec()
            } else {
                vec![f.as_str()]
            };
            for n in names {
                if carried.contains(&n) {
                    let why = format!("field {n:?} twice");
                    return Err(MappingError::at_entry(path, text, "field_order", mke, why));
                }
                carried.push(n);
            }
        }
        let mut resolved = BTreeMap::new();
        for (field, rule) in table {
            let at = |why: String| MappingError::at_entry(path, text, &table_name, field, why);
            if !carried.contains(&field.as_str()) {
                return Err(at("not in the key's [field_order]".into()));
            }
            let p = match rule.as_str() {
                "R" => Presence::Required,
                "O" => Presence::Optional,
                other => return Err(at(format!("{other:?} is neither \"R\" nor \"O\""))),
            };
            resolved.insert(field.clone(), p);
        }
        if let Some(f) = carried.iter().find(|f| !table.contains_key(**f)) {
            let why = format!("missing entry {f:?}");
            return Err(at_table(path, text, &table_name, why));
        }
        out.insert(mke.clone(), resolved);
    }
    Ok(out)
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
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("nic = { tag", "nicc = { tag");
        let err = CletsTables::from_toml_str(&text, Path::new("mappings/clets.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mappings/clets.toml") && msg.contains("nicc"), "{msg}");
        assert!(msg.contains("line "), "names the line: {msg}");
    }

    /// The shipped presence table is the ICD §6 R/O/– table.
    #[test]
    fn shipped_presence_is_the_icd_table() {
        let t = shipped();
        assert_eq!(t.presence("EPO", "nic"), Presence::Absent);
        assert_eq!(t.presence("MPO", "nic"), Presence::Required);
        assert_eq!(t.presence("EPO", "ext"), Presence::Optional);
        assert_eq!(t.presence("EPO", "ppn"), Presence::Required);
        assert_eq!(t.presence("EPO", "ppr"), Presence::Optional);
        assert_eq!(t.presence("CPO", "doc"), Presence::Required);
        assert_eq!(t.presence("CPO", "name"), Presence::Absent);
        assert_eq!(t.presence("SPO", "svm"), Presence::Required);
        assert_eq!(t.required_with("ols"), Some("oln"));
        assert_eq!(t.max_repeats("pco"), 9);
        assert_eq!(t.max_repeats(PROTECTED), 9);
        assert_eq!(t.max_repeats("nam"), 1);
        assert_eq!(t.field_by_tag("PPN"), Some("ppn"));
        assert!(t.is_message_key("XPO") && !t.is_message_key("ZZZ"));
    }

    /// A presence table that disagrees with the field order stops loading.
    #[test]
    fn presence_must_match_field_order() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/clets.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let load = |t: &str| {
            CletsTables::from_toml_str(t, Path::new("mappings/clets.toml"))
                .unwrap_err()
                .to_string()
        };
        let msg = load(&text.replacen("[presence.CPO]\nnic = \"R\"\n", "[presence.CPO]\n", 1));
        assert!(msg.contains("[presence.CPO]") && msg.contains("nic"), "{msg}");
        let msg = load(&text.replacen("[presence.XPO]\nnic = \"R\"", "[presence.XPO]\nnic = \"X\"", 1));
        assert!(msg.contains("neither") && msg.contains("line "), "{msg}");
        let msg = load(&text.replacen("[presence.XPO]\n", "[presence.XPO]\ndoc = \"O\"\n", 1));
        assert!(msg.contains("not in the key's [field_order]"), "{msg}");
        let msg = load(&text.replacen("rea = { tag = \"REA\"", "rea = { tag = \"DOC\"", 1));
        assert!(msg.contains("also the tag"), "{msg}");
        let msg = load(&text.replacen("protected = 9", "mis = 0", 1));
        assert!(msg.contains("[repeats]"), "{msg}");
    }
}
