//! Lookups of short codes without string comparisons.
//!
//! Codes are one to eight bytes (`M`, `DV`, `01`). The validator and the
//! translator look several up for every order; a `BTreeMap<String, _>`
//! compares strings with `memcmp` at every node. Packed into a `u64` (the
//! bytes, big-endian, zero-padded: codes hold no NUL, so no two pack
//! alike), a code is found by binary search over integers.

use std::collections::BTreeMap;

/// `code` packed into a `u64`, when it is 1–8 bytes without NUL.
pub(crate) fn pack(code: &str) -> Option<u64> {
    let bytes = code.as_bytes();
    if bytes.is_empty() || bytes.len() > 8 || bytes.contains(&0) {
        return None;
    }
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(u64::from_be_bytes(buf))
}

/// A map from codes to values, searched by packed code; keys that do not
/// pack are kept in a plain map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShortCodes<V> {
    packed: Vec<(u64, V)>,
    other: BTreeMap<String, V>,
}

impl<V: Clone> ShortCodes<V> {
    pub(crate) fn new<'a>(entries: impl IntoIterator<Item = (&'a String, &'a V)>) -> Self
    where
        V: 'a,
    {
        let mut codes = ShortCodes {
            packed: Vec::new(),
            other: BTreeMap::new(),
        };
        for (code, value) in entries {
            match pack(code) {
                Some(p) => codes.packed.push((p, value.clone())),
                None => {
                    codes.other.insert(code.clone(), value.clone());
                }
            }
        }
        codes.packed.sort_by_key(|(p, _)| *p);
        codes
    }

    pub(crate) fn get(&self, code: &str) -> Option<&V> {
        match pack(code) {
            Some(p) => self
                .packed
                .binary_search_by_key(&p, |(k, _)| *k)
                .ok()
                .map(|i| &self.packed[i].1),
            None => self.other.get(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
