//! The CLETS tables compiled for the translator, once at load.
//!
//! `mappings/clets.toml` names fields, keys and code tables by strings. The
//! translator runs for every order, so at load each message key's field
//! order becomes a list of [`Step`]s over the closed set of [`CletsField`]s,
//! each field's tag and maximum is found by index, and each code table by
//! [`CodeTable`], whose codes are searched packed into integers
//! (`short_codes`): no string-keyed map is searched while translating.

use std::collections::BTreeMap;

use super::clets::{CODE_TABLES, FieldSpec, KNOWN_FIELDS, PROTECTED};
use super::short_codes::ShortCodes;
use crate::model::Action;

/// A CLETS field Porter fills, in the order of [`KNOWN_FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CletsField {
    Nic,
    Name,
    Sex,
    Race,
    Dob,
    Height,
    Weight,
    Eye,
    Hair,
    Oln,
    Ols,
    Pno,
    Oca,
    Typ,
    Isd,
    Exp,
    Ext,
    Brady,
    Pco,
    Ppn,
    Psx,
    Ppr,
    Ppb,
    Mis,
    Doc,
    Rea,
    Svd,
    Svt,
    Svb,
    Sva,
    Svm,
}

impl CletsField {
    /// Every field, in the order of [`KNOWN_FIELDS`].
    pub const ALL: [CletsField; 31] = {
        use CletsField::*;
        [
            Nic, Name, Sex, Race, Dob, Height, Weight, Eye, Hair, Oln, Ols, Pno, Oca, Typ, Isd, Exp, Ext, Brady, Pco,
            Ppn, Psx, Ppr, Ppb, Mis, Doc, Rea, Svd, Svt, Svb, Sva, Svm,
        ]
    };

    /// Porter's name for the field (`name`, `pco`, …).
    pub fn name(self) -> &'static str {
        KNOWN_FIELDS[self as usize]
    }

    pub fn from_name(name: &str) -> Option<CletsField> {
        CletsField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A canonical → CLETS code table, in the order of [`CODE_TABLES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeTable {
    OrderType,
    Sex,
    Race,
    Eye,
    Hair,
    Brady,
    Pco,
    ServiceMethod,
}

impl CodeTable {
    pub const ALL: [CodeTable; 8] = {
        use CodeTable::*;
        [OrderType, Sex, Race, Eye, Hair, Brady, Pco, ServiceMethod]
    };

    /// The table's name in `[codes]`.
    pub fn name(self) -> &'static str {
        CODE_TABLES[self as usize]
    }
}

/// One step of a message key's field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Field(CletsField),
    /// The protected-person group, once per protected person.
    Protected,
}

/// The compiled tables.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Per action (in [`Action::ALL`] order): its message key and steps.
    keys: Vec<(String, Vec<Step>)>,
    /// Per [`CletsField`]: its tag and maximum.
    specs: Vec<FieldSpec>,
    /// Per [`CodeTable`]: canonical → CLETS.
    codes: Vec<ShortCodes<String>>,
}

impl Plan {
    /// Compiles tables already checked by the loader: every key has a field
    /// order, every field a spec, every code table exists.
    pub(super) fn compile(
        message_keys: &BTreeMap<Action, String>,
        field_order: &BTreeMap<String, Vec<String>>,
        fields: &BTreeMap<String, FieldSpec>,
        codes: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Plan {
        let keys = Action::ALL
            .iter()
            .map(|a| {
                let mke = message_keys.get(a).cloned().unwrap_or_default();
                let order = field_order.get(&mke).map(Vec::as_slice).unwrap_or(&[]);
                let steps = order
                    .iter()
                    .filter_map(|f| match f.as_str() {
                        PROTECTED => Some(Step::Protected),
                        name => CletsField::from_name(name).map(Step::Field),
                    })
                    .collect();
                (mke, steps)
            })
            .collect();
        let specs = CletsField::ALL
            .iter()
            .map(|f| {
                fields.get(f.name()).cloned().unwrap_or(FieldSpec {
                    tag: String::new(),
                    max: 0,
                })
            })
            .collect();
        let codes = CodeTable::ALL
            .iter()
            .map(|t| codes.get(t.name()).map(ShortCodes::new).unwrap_or_default())
            .collect();
        Plan { keys, specs, codes }
    }

    pub(super) fn key(&self, action: Action) -> (&str, &[Step]) {
        let (mke, steps) = &self.keys[action as usize];
        (mke, steps)
    }

    pub(super) fn spec(&self, field: CletsField) -> &FieldSpec {
        &self.specs[field as usize]
    }

    pub(super) fn code(&self, table: CodeTable, canonical: &str) -> Option<&str> {
        self.codes[table as usize].get(canonical).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enums follow the name lists they index.
    #[test]
    fn enums_follow_the_name_lists() {
        assert_eq!(CletsField::ALL.len(), KNOWN_FIELDS.len());
        for (i, f) in CletsField::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(CletsField::from_name(KNOWN_FIELDS[i]), Some(*f));
        }
        assert_eq!(CodeTable::ALL.len(), CODE_TABLES.len());
        for (i, t) in CodeTable::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
        }
    }
}
