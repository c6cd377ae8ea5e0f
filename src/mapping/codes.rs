//! The canonical code lists (ICD §0): order types, sex, race, eye, hair,
//! Brady, protection-order conditions (PCO), service methods and
//! relationships.
//!
//! The lists are data, in `mappings/codes.toml`, read at start with
//! [`CodeLists::load`]. The validator checks every code of an order against
//! them (`INVALID_CODE`). They are the *canonical* codes: a court whose CMS
//! writes other codes is translated to these by its code-map set first.
//!
//! File shape: one table per list (`[sex]`), each with a `description` and a
//! `codes` table of `CODE = "meaning"`. Every list must be present, codes are
//! 1–8 upper-case letters or digits, and unknown keys are refused.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::short_codes::ShortCodes;

/// Which code list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodeList {
    /// Order type (`DV`, `CH`, …).
    OrderType,
    Sex,
    Race,
    Eye,
    Hair,
    Brady,
    /// Protection-order conditions (PCO), `01`–`09`.
    Condition,
    ServiceMethod,
    Relationship,
}

impl CodeList {
    /// Every list, in file order.
    pub const ALL: [CodeList; 9] = [
        CodeList::OrderType,
        CodeList::Sex,
        CodeList::Race,
        CodeList::Eye,
        CodeList::Hair,
        CodeList::Brady,
        CodeList::Condition,
        CodeList::ServiceMethod,
        CodeList::Relationship,
    ];

    /// The list's table name in `codes.toml`.
    pub fn key(self) -> &'static str {
        match self {
            CodeList::OrderType => "order_type",
            CodeList::Sex => "sex",
            CodeList::Race => "race",
            CodeList::Eye => "eye",
            CodeList::Hair => "hair",
            CodeList::Brady => "brady",
            CodeList::Condition => "condition",
            CodeList::ServiceMethod => "service_method",
            CodeList::Relationship => "relationship",
        }
    }
}

impl fmt::Display for CodeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One list as written: what it is, and code → meaning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeTable {
    /// What the list is, for people.
    pub description: String,
    /// Code → meaning.
    pub codes: BTreeMap<String, String>,
}

/// The file's shape: every list, by its key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeListsFile {
    order_type: CodeTable,
    sex: CodeTable,
    race: CodeTable,
    eye: CodeTable,
    hair: CodeTable,
    brady: CodeTable,
    condition: CodeTable,
    service_method: CodeTable,
    relationship: CodeTable,
}

/// Why a code-list file could not be used.
#[derive(Debug)]
pub enum CodeListError {
    /// The file could not be read.
    Io { file: String, source: std::io::Error },
    /// Not TOML, or not the expected shape (unknown or missing list or key).
    Syntax {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// A code that cannot be a code; `entry` names it (`sex.codes.m`).
    Invalid {
        file: String,
        entry: String,
        message: String,
    },
}

impl fmt::Display for CodeListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeListError::Io { file, source } => {
                write!(f, "code lists {file}: cannot read: {source}")
            }
            CodeListError::Syntax {
                file,
                line: Some(l),
                message,
            } => {
                write!(f, "code lists {file}: line {l}: {message}")
            }
            CodeListError::Syntax {
                file,
                line: None,
                message,
            } => {
                write!(f, "code lists {file}: {message}")
            }
            CodeListError::Invalid { file, entry, message } => {
                write!(f, "code lists {file}: {entry}: {message}")
            }
        }
    }
}

impl std::error::Error for CodeListError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CodeListError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The canonical code lists, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLists {
    file: CodeListsFile,
    /// Each list's codes (in [`CodeList::ALL`] order), for fast lookups.
    fast: Vec<ShortCodes<()>>,
}

impl CodeLists {
    /// Reads and checks the code lists at `path` (normally `mappings/codes.toml`).
    pub fn load(path: impl AsRef<Path>) -> Result<CodeLists, CodeListError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CodeListError::Io {
            file: file.clone(),
            source,
        })?;
        CodeLists::from_toml_str(&file, &text)
    }

    /// Parses and checks code lists from TOML text; `name_for_errors` names
    /// the source in errors.
    pub fn from_toml_str(name_for_errors: &str, text: &str) -> Result<CodeLists, CodeListError> {
        let file: CodeListsFile = toml::from_str(text).map_err(|e| CodeListError::Syntax {
            file: name_for_errors.to_string(),
            line: e
                .span()
                .map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1),
            message: e.message().trim().to_string(),
        })?;
        let mut lists = CodeLists { file, fast: Vec::new() };
        for list in CodeList::ALL {
            let table = lists.table(list);
            if table.codes.is_empty() {
                return Err(CodeListError::Invalid {
                    file: name_for_errors.to_string(),
                    entry: format!("{list}.codes"),
                    message: "the list has no codes".into(),
                });
            }
            if let Some(code) = table.codes.keys().find(|c| {
                c.is_empty() || c.len() > 8 || !c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }) {
                return Err(CodeListError::Invalid {
                    file: name_for_errors.to_string(),
                    entry: format!("{list}.codes.{code}"),
                    message: "a code is 1-8 upper-case letters or digits".into(),
                });
            }
        }
        lists.fast = CodeList::ALL
            .iter()
            .map(|l| ShortCodes::new(lists.table(*l).codes.keys().map(|k| (k, &()))))
            .collect();
        Ok(lists)
    }

    /// The list as written.
    pub fn table(&self, list: CodeList) -> &CodeTable {
        let f = &self.file;
        match list {
            CodeList::OrderType => &f.order_type,
            CodeList::Sex => &f.sex,
            CodeList::Race => &f.race,
            CodeList::Eye => &f.eye,
            CodeList::Hair => &f.hair,
            CodeList::Brady => &f.brady,
            CodeList::Condition => &f.condition,
            CodeList::ServiceMethod => &f.service_method,
            CodeList::Relationship => &f.relationship,
        }
    }

    /// Whether `code` is in `list` (exact, case-sensitive: codes are upper case).
    pub fn contains(&self, list: CodeList, code: &str) -> bool {
        self.fast[list as usize].get(code).is_some()
    }

    /// What `code` means in `list`.
    pub fn meaning(&self, list: CodeList, code: &str) -> Option<&str> {
        self.table(list).codes.get(code).map(String::as_str)
    }

    /// The codes of `list`, sorted.
    pub fn codes(&self, list: CodeList) -> impl Iterator<Item = &str> {
        self.table(list).codes.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CodeList::ALL` is in declaration order: lists are indexed by it.
    #[test]
    fn all_is_in_declaration_order() {
        for (i, l) in CodeList::ALL.iter().enumerate() {
            assert_eq!(*l as usize, i);
        }
    }

    const CODES: &str = include_str!("../../mappings/codes.toml");

    fn lists() -> CodeLists {
        CodeLists::from_toml_str("codes.toml", CODES).unwrap()
    }

    /// The shipped file loads and holds the ICD §0 lists exactly.
    #[test]
    fn shipped_lists_match_the_icd() {
        let c = lists();
        let all = |l| c.codes(l).collect::<Vec<_>>().join(" ");
        assert_eq!(all(CodeList::OrderType), "CH CPO DV EA EPO GV JV SV WV");
        assert_eq!(all(CodeList::Sex), "F M U X");
        assert_eq!(all(CodeList::Race), "A B H I P U W");
        assert_eq!(all(CodeList::Eye), "BLK BLU BRO GRN GRY HAZ MAR MUL PNK XXX");
        assert_eq!(
            all(CodeList::Hair),
            "BAL BLK BLN BLU BRO GRN GRY ONG PLE PNK RED SDY WHI XXX"
        );
        assert_eq!(all(CodeList::Brady), "N U Y");
        assert_eq!(all(CodeList::Condition), "01 02 03 04 05 06 07 08 09");
        assert_eq!(all(CodeList::ServiceMethod), "C M P S");
        for r in ["SP", "CH", "PA", "SI", "FM", "CO", "DT", "OT"] {
            assert!(c.contains(CodeList::Relationship, r), "{r}");
        }
    }

    /// `contains` is exact: other lists' codes, lower case and blanks are out.
    #[test]
    fn contains_is_exact() {
        let c = lists();
        assert!(c.contains(CodeList::Sex, "M"));
        assert!(!c.contains(CodeList::Sex, "m"));
        assert!(!c.contains(CodeList::Sex, "BRO"));
        assert!(!c.contains(CodeList::Condition, "7"));
        assert!(!c.contains(CodeList::Condition, ""));
        assert_eq!(c.meaning(CodeList::ServiceMethod, "P"), Some("personal service"));
    }

    /// Unknown keys, missing lists and bad codes are refused, naming file and entry.
    #[test]
    fn broken_files_are_refused() {
        let e = CodeLists::from_toml_str("x.toml", &format!("{CODES}\n[colours]\ndescription = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("code lists x.toml: line "), "{e}");
        assert!(e.contains("colours"), "{e}");
        let e = CodeLists::from_toml_str("x.toml", &CODES.replacen("[sex]", "[sexx]", 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `description`"), "{e}");
        let e = CodeLists::from_toml_str("x.toml", &CODES.replacen("M = \"male\"", "m = \"male\"", 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sex.codes.m"), "{e}");
        let e = CodeLists::from_toml_str(
            "x.toml",
            &CODES.replacen(
                "description = \"Sex (NCIC SEX).\"",
                "description = \"Sex\"\ncolour = 1",
                1,
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(
            CodeLists::load("/nonexistent/codes.toml")
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/codes.toml")
        );
    }
}
