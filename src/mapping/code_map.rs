//! Code-map sets: a court CMS's own codes (sex `1`, race `WHITE`, …) and the
//! canonical ICD §0 codes they stand for.
//!
//! # Design note
//!
//! The canonical code lists ([`CodeLists`], `mappings/codes.toml`) are the
//! same for every court. A CMS that writes other codes is not special-cased
//! in code: its codes are translated through a **code-map set**, a TOML file
//! under `mappings/code-maps/`. A fixed-width layout names its default set
//! (`code_map` in the layout file); a court's configuration may name another
//! (`code_map` in `[[courts]]`).
//!
//! ```toml
//! name = "cms-b"                       # as layouts and court entries name it
//! description = "…"                    # optional, for people
//!
//! [sex]                                # a canonical list: court code = canonical code
//! "1" = "M"
//! "2" = "F"
//!
//! [hair]
//! RED = "RED"
//! AUBURN = "RED"                       # several court codes may share one canonical code
//! ```
//!
//! - The tables are the canonical lists' keys: `order_type`, `sex`, `race`,
//!   `eye`, `hair`, `brady`, `condition`, `service_method`, `relationship`.
//!   A list the set does not name passes through unchanged (the court already
//!   writes canonical codes for it); a list it names is closed: a court code
//!   not in it is `INVALID_CODE`.
//! - Court codes are 1–16 printable ASCII characters without leading or
//!   trailing spaces; each canonical code must be in the canonical list.
//! - Reading maps court → canonical ([`CodeMap::to_canonical`]). Writing
//!   maps canonical → court ([`CodeMap::to_court`]); when several court codes
//!   share a canonical code, the one written first in the file is the one
//!   written out.
//!
//! Sets are loaded and checked at start, against the canonical lists: a
//! broken file stops the broker with a message naming the file, the line and
//! the entry (`code map mappings/code-maps/cms-b.toml: line 12: sex."7": …`).
//!
//! Mapping runs after parsing and before validation ([`CodeMap::apply`]):
//! every mapped field keeps the `record:column` location the reader recorded,
//! and an unmapped court code is `INVALID_CODE` at that location, so the
//! validator then sees canonical codes only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::codes::{CodeList, CodeLists};
use crate::model::{ErrorCode, FieldError, Locations, OrderMessage, Text};
use crate::validate::locate;

/// Longest court code a set may hold.
pub const MAX_COURT_CODE: usize = 16;

/// Why a code-map file could not be used.
#[derive(Debug)]
pub enum CodeMapError {
    /// The file could not be read.
    Io { file: String, source: std::io::Error },
    /// Not TOML, not the set's shape, or a value that cannot be used.
    /// `entry` names it (`sex."7"`) when there is one.
    Invalid {
        file: String,
        line: Option<usize>,
        entry: Option<String>,
        message: String,
    },
}

impl fmt::Display for CodeMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeMapError::Io { file, source } => {
                write!(f, "code map {file}: cannot read: {source}")
            }
            CodeMapError::Invalid {
                file,
                line,
                entry,
                message,
            } => {
                write!(f, "code map {file}: ")?;
                if let Some(l) = line {
                    write!(f, "line {l}: ")?;
                }
                if let Some(e) = entry {
                    write!(f, "{e}: ")?;
                }
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for CodeMapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CodeMapError::Io { source, .. } => Some(source),
            CodeMapError::Invalid { .. } => None,
        }
    }
}

type Table = BTreeMap<Spanned<String>, Spanned<String>>;

/// The file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeMapFile {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    order_type: Option<Spanned<Table>>,
    #[serde(default)]
    sex: Option<Spanned<Table>>,
    #[serde(default)]
    race: Option<Spanned<Table>>,
    #[serde(default)]
    eye: Option<Spanned<Table>>,
    #[serde(default)]
    hair: Option<Spanned<Table>>,
    #[serde(default)]
    brady: Option<Spanned<Table>>,
    #[serde(default)]
    condition: Option<Spanned<Table>>,
    #[serde(default)]
    service_method: Option<Spanned<Table>>,
    #[serde(default)]
    relationship: Option<Spanned<Table>>,
}

impl CodeMapFile {
    fn table(&self, list: CodeList) -> Option<&Spanned<Table>> {
        match list {
            CodeList::OrderType => self.order_type.as_ref(),
            CodeList::Sex => self.sex.as_ref(),
            CodeList::Race => self.race.as_ref(),
            CodeList::Eye => self.eye.as_ref(),
            CodeList::Hair => self.hair.as_ref(),
            CodeList::Brady => self.brady.as_ref(),
            CodeList::Condition => self.condition.as_ref(),
            CodeList::ServiceMethod => self.service_method.as_ref(),
            CodeList::Relationship => self.relationship.as_ref(),
        }
    }
}

/// One list's mapping, both ways.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct ListMap {
    /// Court code → canonical code.
    to_canonical: BTreeMap<String, String>,
    /// Canonical code → the first court code for it in the file.
    to_court: BTreeMap<String, String>,
}

/// A checked code-map set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMap {
    name: String,
    description: Option<String>,
    /// Where it was read from, for messages.
    file: String,
    lists: BTreeMap<CodeList, ListMap>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// `"7"` or `M`: a TOML key as written in entries.
fn key(code: &str) -> String {
    if !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        code.to_string()
    } else {
        format!("{code:?}")
    }
}

impl CodeMap {
    /// Reads and checks the set at `path` against the canonical lists.
    pub fn load(path: impl AsRef<Path>, canonical: &CodeLists) -> Result<CodeMap, CodeMapError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CodeMapError::Io {
            file: file.clone(),
            source,
        })?;
        CodeMap::from_toml_str(&file, &text, canonical)
    }

    /// Parses and checks a set from TOML text; `name_for_errors` names the
    /// source in errors (usually the file path).
    pub fn from_toml_str(name_for_errors: &str, text: &str, canonical: &CodeLists) -> Result<CodeMap, CodeMapError> {
        let invalid = |offset: Option<usize>, entry: Option<String>, message: String| CodeMapError::Invalid {
            file: name_for_errors.to_string(),
            line: offset.map(|o| line_of(text, o)),
            entry,
            message,
        };
        let file: CodeMapFile = toml::from_str(text)
            .map_err(|e| invalid(e.span().map(|s| s.start), None, e.message().trim().to_string()))?;
        let name = file.name.get_ref().trim();
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                Some(file.name.span().start),
                Some("name".into()),
                "a name is 1-64 printable ASCII characters without spaces".into(),
            ));
        }
        let mut lists = BTreeMap::new();
        for list in CodeList::ALL {
            let Some(table) = file.table(list) else {
                continue;
            };
            if table.get_ref().is_empty() {
                return Err(invalid(
                    Some(table.span().start),
                    Some(list.key().into()),
                    "the list maps no codes; leave it out to pass the court's codes through".into(),
                ));
            }
            // File order decides which court code a shared canonical code
            // is written as.
            let mut entries: Vec<(&Spanned<String>, &Spanned<String>)> = table.get_ref().iter().collect();
            entries.sort_by_key(|(k, _)| k.span().start);
            let mut map = ListMap::default();
            for (court, canon) in entries {
                let entry = format!("{}.{}", list.key(), key(court.get_ref()));
                let c = court.get_ref();
                if c.is_empty()
                    || c.len() > MAX_COURT_CODE
                    || c.trim() != c
                    || !c.bytes().all(|b| (0x20..0x7f).contains(&b))
                {
                    return Err(invalid(
                        Some(court.span().start),
                        Some(entry),
                        format!(
                            "a court code is 1-{MAX_COURT_CODE} printable ASCII characters, \
                             without leading or trailing spaces"
                        ),
                    ));
                }
                let v = canon.get_ref();
                if !canonical.contains(list, v) {
                    let known: Vec<&str> = canonical.codes(list).collect();
                    return Err(invalid(
                        Some(canon.span().start),
                        Some(entry),
                        format!(
                            "'{v}' is not a canonical {} code ({})",
                            list.key().replace('_', " "),
                            known.join(" ")
                        ),
                    ));
                }
                map.to_canonical.insert(c.clone(), v.clone());
                map.to_court.entry(v.clone()).or_insert_with(|| c.clone());
            }
            lists.insert(list, map);
        }
        Ok(CodeMap {
            name: name.to_string(),
            description: file.description,
            file: name_for_errors.to_string(),
            lists,
        })
    }

    /// The set's name (`cms-b`), as layouts and court entries name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the set is for, for people.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file the set was read from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the set maps `list` (otherwise its codes pass through).
    pub fn maps(&self, list: CodeList) -> bool {
        self.lists.contains_key(&list)
    }

    /// The court codes of `list`, sorted; empty when the list passes through.
    pub fn court_codes(&self, list: CodeList) -> impl Iterator<Item = &str> {
        self.lists
            .get(&list)
            .into_iter()
            .flat_map(|m| m.to_canonical.keys().map(String::as_str))
    }

    /// The canonical code for a court code. A list the set does not map
    /// passes through: the code itself. `None`: the court code is not in
    /// the set's list.
    pub fn to_canonical<'a>(&'a self, list: CodeList, court: &'a str) -> Option<&'a str> {
        match self.lists.get(&list) {
            None => Some(court),
            Some(m) => m.to_canonical.get(court).map(String::as_str),
        }
    }

    /// The court code written for a canonical code (the first in the file
    /// when several share it). A list the set does not map passes through.
    /// `None`: the court has no code for it.
    pub fn to_court<'a>(&'a self, list: CodeList, canonical: &'a str) -> Option<&'a str> {
        match self.lists.get(&list) {
            None => Some(canonical),
            Some(m) => m.to_court.get(canonical).map(String::as_str),
        }
    }

    /// Maps the court codes of a parsed message to canonical codes, in
    /// place. Each code not in the set is left as it is and reported as
    /// `INVALID_CODE` at the field's location (or its nearest enclosing
    /// part's).
    pub fn apply(&self, msg: &mut OrderMessage, locations: &Locations) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for_each_code(msg, |field, list, value| match self.to_canonical(list, value) {
            Some(c) => {
                if c != value.as_str() {
                    *value = c.into();
                }
            }
            None => {
                let mut e = FieldError::new(ErrorCode::InvalidCode, field, self.unknown_text(list, "court", value));
                e.location = locate(locations, field);
                errors.push(e);
            }
        });
        errors
    }

    /// Maps the canonical codes of a message to this court's codes, in
    /// place, for writing. Each canonical code the court has no code for is
    /// `INVALID_CODE` (without location: the message is being written).
    pub fn to_court_codes(&self, msg: &mut OrderMessage) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for_each_code(msg, |field, list, value| match self.to_court(list, value) {
            Some(c) => {
                if c != value.as_str() {
                    *value = c.into();
                }
            }
            None => errors.push(FieldError::new(
                ErrorCode::InvalidCode,
                field,
                format!(
                    "code map {} has no court code for the canonical {} code '{value}'",
                    self.name,
                    list.key().replace('_', " ")
                ),
            )),
        });
        errors
    }

    fn unknown_text(&self, list: CodeList, side: &str, value: &str) -> String {
        let known: Vec<&str> = self.court_codes(list).collect();
        let what = list.key().replace('_', " ");
        if known.len() <= 20 {
            format!(
                "'{value}' is not a {side} {what} code of code map {} ({})",
                self.name,
                known.join(" ")
            )
        } else {
            format!("'{value}' is not a {side} {what} code of code map {}", self.name)
        }
    }
}

/// The code list of a canonical field path as layouts write it
/// (`protected_persons[].sex` → sex, `order.condition_codes` → condition);
/// `None` for fields that hold no code.
pub fn list_of_field(template: &str) -> Option<CodeList> {
    Some(match template {
        "order.order_type" => CodeList::OrderType,
        "order.brady" => CodeList::Brady,
        "order.condition_codes" => CodeList::Condition,
        "order.service.method" => CodeList::ServiceMethod,
        "restrained_person.sex" | "protected_persons[].sex" => CodeList::Sex,
        "restrained_person.race" | "protected_persons[].race" => CodeList::Race,
        "restrained_person.eye" => CodeList::Eye,
        "restrained_person.hair" => CodeList::Hair,
        "protected_persons[].relationship" => CodeList::Relationship,
        _ => return None,
    })
}

/// Calls `f(field path, list, value)` for every non-blank coded value of the
/// message, in field order.
fn for_each_code(msg: &mut OrderMessage, mut f: impl FnMut(&str, CodeList, &mut Text)) {
    let mut one = |field: &str, list: CodeList, v: &mut Option<Text>| {
        if let Some(s) = v.as_mut().filter(|s| !s.trim().is_empty()) {
            f(field, list, s);
        }
    };
    let o = &mut msg.order;
    one("order.order_type", CodeList::OrderType, &mut o.order_type);
    one("order.brady", CodeList::Brady, &mut o.brady);
    for (i, c) in o.condition_codes.iter_mut().enumerate() {
        let mut v = Some(std::mem::take(c));
        one(&format!("order.condition_codes[{i}]"), CodeList::Condition, &mut v);
        *c = v.unwrap_or_default();
    }
    if let Some(s) = o.service.as_mut() {
        one("order.service.method", CodeList::ServiceMethod, &mut s.method);
    }
    if let Some(rp) = msg.restrained_person.as_mut() {
        one("restrained_person.sex", CodeList::Sex, &mut rp.sex);
        one("restrained_person.race", CodeList::Race, &mut rp.race);
        one("restrained_person.eye", CodeList::Eye, &mut rp.eye);
        one("restrained_person.hair", CodeList::Hair, &mut rp.hair);
    }
    for (i, p) in msg.protected_persons.iter_mut().enumerate() {
        one(&format!("protected_persons[{i}].sex"), CodeList::Sex, &mut p.sex);
        one(&format!("protected_persons[{i}].race"), CodeList::Race, &mut p.race);
        one(
            &format!("protected_persons[{i}].relationship"),
            CodeList::Relationship,
            &mut p.relationship,
        );
    }
}

#[cfg(test)]
mod tests;
