//! The LEA jurisdiction table (`mappings/lea-agencies.toml`, ICD §8): which
//! agency polices a residence, and each county's sheriff.
//!
//! Lookup order: an agency whose city *and* ZIP match, then one whose city
//! matches, then one whose ZIP matches. Cities compare upper-case with runs
//! of spaces collapsed; ZIPs by their first five digits. The file is checked
//! when loaded: ORIs, known counties, one entry per city; an error names the
//! file and the line of the entry.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::config::is_ori;
use crate::mapping::MappingError;
use crate::model::Address;

/// One agency of the table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub ori: String,
    #[serde(default)]
    pub name: String,
    pub county: String,
    pub city: String,
    #[serde(default)]
    pub zips: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct County {
    name: String,
    sheriff: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    county: Vec<Spanned<County>>,
    #[serde(default)]
    agency: Vec<Spanned<Agency>>,
}

/// The loaded table.
#[derive(Debug, Clone, Default)]
pub struct LeaTable {
    agencies: Vec<Agency>,
    /// County name → its sheriff's ORI.
    sheriffs: HashMap<String, String>,
}

impl LeaTable {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<LeaTable, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError::new(path, format!("cannot read: {e}")))?;
        LeaTable::parse(&text, path)
    }

    /// Parses and checks a table's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<LeaTable, MappingError> {
        let file: File = toml::from_str(text).map_err(|e| MappingError::new(path, e.to_string()))?;
        let at = |offset: usize, message: String| {
            let line = text.as_bytes()[..offset.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            MappingError::new(path, format!("line {line}: {message}"))
        };
        let mut sheriffs = HashMap::new();
        for county in &file.county {
            let (span, c) = (county.span(), county.get_ref());
            if !is_ori(&c.sheriff) {
                return Err(at(
                    span.start,
                    format!("county {}: sheriff {:?} is not an ORI", c.name, c.sheriff),
                ));
            }
            if sheriffs.insert(normalize(&c.name), c.sheriff.clone()).is_some() {
                return Err(at(span.start, format!("county {} is listed twice", c.name)));
            }
        }
        let mut agencies: Vec<Agency> = Vec::with_capacity(file.agency.len());
        for agency in &file.agency {
            let (span, a) = (agency.span(), agency.get_ref());
            if let Some(message) = agency_problem(a, &sheriffs, &agencies) {
                return Err(at(span.start, message));
            }
            let mut a = a.clone();
            a.city = normalize(&a.city);
            a.county = normalize(&a.county);
            agencies.push(a);
        }
        Ok(LeaTable { agencies, sheriffs })
    }

    /// The agency with jurisdiction over `residence`, if the table knows it.
    /// An address outside California has none.
    pub fn jurisdiction(&self, residence: &Address) -> Option<&Agency> {
        if residence
            .state
            .as_deref()
            .is_some_and(|s| !s.trim().eq_ignore_ascii_case("CA"))
        {
            return None;
        }
        let city = residence.city.as_deref().map(normalize).filter(|c| !c.is_empty());
        let zip = residence
            .zip
            .as_deref()
            .map(|z| z.trim().chars().take(5).collect::<String>());
        let zip_matches = |a: &&Agency| zip.as_ref().is_some_and(|z| a.zips.iter().any(|x| x == z));
        let city_matches = |a: &&Agency| city.as_ref().is_some_and(|c| &a.city == c);
        let agencies = || self.agencies.iter();
        agencies()
            .find(|a| city_matches(a) && zip_matches(a))
            .or_else(|| agencies().find(city_matches))
            .or_else(|| agencies().find(zip_matches))
    }

    /// The sheriff of `county`.
    pub fn sheriff(&self, county: &str) -> Option<&str> {
        self.sheriffs.get(&normalize(county)).map(String::as_str)
    }

    /// Every ORI the table can route to (agencies and sheriffs).
    pub fn oris(&self) -> impl Iterator<Item = &str> {
        self.agencies
            .iter()
            .map(|a| a.ori.as_str())
            .chain(self.sheriffs.values().map(String::as_str))
    }

    /// How many agencies and counties the table has.
    pub fn len(&self) -> (usize, usize) {
        (self.agencies.len(), self.sheriffs.len())
    }
}

/// What is wrong with an agency entry, given the counties and the agencies
/// before it.
fn agency_problem(a: &Agency, sheriffs: &HashMap<String, String>, before: &[Agency]) -> Option<String> {
    let bad_zip = |z: &&String| z.len() != 5 || !z.bytes().all(|b| b.is_ascii_digit());
    if !is_ori(&a.ori) {
        Some(format!("agency {:?} is not an ORI", a.ori))
    } else if !sheriffs.contains_key(&normalize(&a.county)) {
        Some(format!(
            "agency {}: county {:?} has no [[county]] entry",
            a.ori, a.county
        ))
    } else if before.iter().any(|b| b.city == normalize(&a.city)) {
        Some(format!("agency {}: city {:?} already has an agency", a.ori, a.city))
    } else {
        a.zips
            .iter()
            .find(bad_zip)
            .map(|z| format!("agency {}: ZIP {z:?} is not five digits", a.ori))
    }
}

/// Upper-case, trimmed, with runs of spaces collapsed.
fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> LeaTable {
        LeaTable::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/lea-agencies.toml")).unwrap()
    }

    fn at(city: &str, zip: &str, state: &str) -> Address {
        Address {
            street: None,
            city: Some(city.into()),
            state: Some(state.into()),
            zip: Some(zip.into()),
        }
    }

    /// The shipped sample table loads and covers California's 15 largest cities.
    #[test]
    fn shipped_table_covers_the_15_largest_cities() {
        let table = shipped();
        for city in [
            "Los Angeles",
            "San Diego",
            "San Jose",
            "San Francisco",
            "Fresno",
            "Sacramento",
            "Long Beach",
            "Oakland",
            "Bakersfield",
            "Anaheim",
            "Stockton",
            "Riverside",
            "Irvine",
            "Santa Ana",
            "Chula Vista",
        ] {
            assert!(table.jurisdiction(&at(city, "00000", "CA")).is_some(), "{city}");
        }
    }

    /// (ZIP, city) wins over city alone, city over ZIP, and ZIP is the last resort.
    #[test]
    fn lookup_prefers_zip_and_city_then_city_then_zip() {
        let table = shipped();
        assert_eq!(
            table.jurisdiction(&at("sacramento ", "95814", "CA")).unwrap().ori,
            "CA0340400"
        );
        // The city decides over a ZIP that belongs to another agency.
        assert_eq!(
            table.jurisdiction(&at("Sacramento", "95624", "CA")).unwrap().ori,
            "CA0340400"
        );
        // An unknown city falls back to the ZIP.
        assert_eq!(
            table.jurisdiction(&at("Laguna", "95758", "CA")).unwrap().ori,
            "CA0341100"
        );
        assert_eq!(table.jurisdiction(&at("Nowhere", "99999", "CA")), None);
    }

    /// A residence outside California has no agency in the table.
    #[test]
    fn out_of_state_has_no_jurisdiction() {
        assert_eq!(shipped().jurisdiction(&at("Sacramento", "95814", "NV")), None);
    }

    /// A broken entry stops loading with the file, the line and the reason.
    #[test]
    fn broken_entry_names_its_line() {
        let text = "[[county]]\nname = \"A\"\nsheriff = \"CA0010000\"\n\n[[agency]]\nori = \"BAD\"\ncounty = \"A\"\ncity = \"X\"\n";
        let err = LeaTable::parse(text, Path::new("m/lea.toml")).unwrap_err().to_string();
        assert!(
            err.contains("m/lea.toml") && err.contains("line 5") && err.contains("BAD"),
            "{err}"
        );
        let text = "[[agency]]\nori = \"CA0010100\"\ncounty = \"NOPE\"\ncity = \"X\"\n";
        let err = LeaTable::parse(text, Path::new("m/lea.toml")).unwrap_err().to_string();
        assert!(err.contains("NOPE"), "{err}");
    }
}
