//! Lookups of short codes without string comparisons.
//!
//! Codes are one to eight bytes (`M`, `DV`, `01`). The validator and the
//! translator look several up for every order; a `BTreeMap<String, _>`
//! compares strings with `memcmp` at every node. Packed into a `u64` (the
//! bytes, big-endian, zero-padded: codes hold no NUL, so no two pack
//! alike), a code is found among integers: by a straight scan in a short
//! list (the usual code list has a dozen entries, and a scan without
//! unpredictable branches beats a binary search there), by binary search in a
//! long one.

use std::collections::BTreeMap;

/// `code` packed into a `u64`, when it is 1–8 bytes without NUL.
pub(crate) fn pack(code: &str) -> Option<u64> {
    let bytes = code.as_bytes();
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let mut packed = 0u64;
    for &b in bytes {
        if b == 0 {
            return None;
        }
        packed = packed << 8 | u64::from(b);
    }
    Some(packed << (8 * (8 - bytes.len())))
}

/// Lists up to this long are scanned; longer ones binary-searched.
const SCAN_MAX: usize = 32;

/// A map from codes to values, searched by packed code; keys that do not
/// pack are kept in a plain map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShortCodes<V> {
    /// Packed keys, sorted; `values[i]` belongs to `keys[i]`.
    keys: Vec<u64>,
    values: Vec<V>,
    other: BTreeMap<String, V>,
}

impl<V: Clone> ShortCodes<V> {
    pub(crate) fn new<'a>(entries: impl IntoIterator<Item = (&'a String, &'a V)>) -> Self
    where
        V: 'a,
    {
        let mut packed = Vec::new();
        let mut other = BTreeMap::new();
        for (code, value) in entries {
            match pack(code) {
                Some(p) => packed.push((p, value.clone())),
                None => {
                    other.insert(code.clone(), value.clone());
                }
            }
        }
        packed.sort_by_key(|(p, _)| *p);
        let (keys, values) = packed.into_iter().unzip();
        ShortCodes { keys, values, other }
    }

    pub(crate) fn get(&self, code: &str) -> Option<&V> {
        let Some(p) = pack(code) else {
            return self.other.get(code);
        };
        let found = if self.keys.len() <= SCAN_MAX {
            self.keys.iter().position(|&k| k == p)
        } else {
            self.keys.binary_search(&p).ok()
        };
        found.map(|i| &self.values[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list longer than the scan limit is searched the other way, with
    /// the same answers.
    #[test]
    fn long_lists_find_exactly_the_keys() {
        let map: BTreeMap<String, usize> = (0..100).map(|i| (format!("C{i:02}"), i)).collect();
        let codes = ShortCodes::new(&map);
        assert!(codes.keys.len() > SCAN_MAX);
        for (k, v) in &map {
            assert_eq!(codes.get(k), Some(v), "{k}");
        }
        for k in ["C100", "C1", "D00", ""] {
            assert_eq!(codes.get(k), None, "{k:?}");
        }
    }

    /// Every key is found, nothing else is, long keys included.
    #[test]
    fn finds_exactly_the_keys() {
        let map: BTreeMap<String, u8> = [("M", 1), ("F", 2), ("01", 3), ("ABCDEFGHI", 4), ("ABCDEFGH", 5)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let codes = ShortCodes::new(&map);
        for (k, v) in &map {
            assert_eq!(codes.get(k), Some(v), "{k}");
        }
        for k in ["", "m", "MM", "0", "1", "ABCDEFG", "ABCDEFGHIJ", "M\0"] {
            assert_eq!(codes.get(k), None, "{k:?}");
        }
    }
}
