//! Canonical field paths that cost nothing until they are shown.
//!
//! Errors name fields by their canonical path (`restrained_person.sex`,
//! `protected_persons[1].name.last`). The readers and the validator handle
//! every field of every message, but only a field with a problem needs its
//! path as text. A [`FieldPath`] is therefore a `Copy` pair of a static
//! template, with at most one `[]` for a list element, and the index that
//! fills it; it is rendered ([`fmt::Display`]) only for an error, and
//! compared with a path given as text ([`FieldPath::matches`]) without
//! allocating.

use std::fmt;

/// Marks "no index" in [`FieldPath::index`].
const NO_INDEX: u32 = u32::MAX;

/// A canonical field path: a static template and, for a template with `[]`,
/// the list index. Rendered, `[]` becomes `[index]`; a template with `[]`
/// but no index names the whole list, and its `[]` is left out
/// (`protected_persons[]` is `protected_persons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPath {
    template: &'static str,
    index: u32,
}

impl FieldPath {
    /// A path with no list index (`order.brady`, or a whole list).
    pub const fn new(template: &'static str) -> FieldPath {
        FieldPath {
            template,
            index: NO_INDEX,
        }
    }

    /// The `index`-th element's path of a template with `[]`
    /// (`protected_persons[].sex`, 1 → `protected_persons[1].sex`).
    pub fn at(template: &'static str, index: usize) -> FieldPath {
        FieldPath {
            template,
            index: u32::try_from(index).unwrap_or(NO_INDEX - 1),
        }
    }

    /// The template, `[]` unexpanded.
    pub fn template(self) -> &'static str {
        self.template
    }

    /// The list index, when the path has one.
    pub fn index(self) -> Option<usize> {
        (self.index != NO_INDEX).then_some(self.index as usize)
    }

    /// The same template without index: the whole list.
    pub fn list(self) -> FieldPath {
        FieldPath::new(self.template)
    }

    /// Whether `path` is this path written out.
    pub fn matches(self, path: &str) -> bool {
        let Some((before, after)) = split_at_brackets(self.template) else {
            return self.template == path;
        };
        let Some(rest) = path.strip_prefix(before) else {
            return false;
        };
        if self.index == NO_INDEX {
            return rest == after;
        }
        let Some(rest) = rest.strip_prefix('[') else {
            return false;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, rest) = rest.split_at(digits);
        let canonical = digits == 1 || !number.starts_with('0');
        canonical && number.parse::<u32>() == Ok(self.index) && rest.strip_prefix(']') == Some(after)
    }
}

impl FieldPath {
    /// The rendered path as pieces to write one after the other: the
    /// template before `[]`, `[`, the index, `]`, the rest (empty pieces
    /// where there is no index). `digits` holds the index's text.
    fn pieces(self, digits: &mut itoa::Buffer) -> [&str; 5] {
        match split_at_brackets(self.template) {
            None => [self.template, "", "", "", ""],
            Some((before, after)) if self.index == NO_INDEX => [before, after, "", "", ""],
            Some((before, after)) => [before, "[", digits.format(self.index), "]", after],
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces(&mut itoa::Buffer::new())
            .iter()
            .try_for_each(|p| f.write_str(p))
    }
}

impl From<FieldPath> for String {
    /// The rendered path, built at its exact length without the formatting
    /// machinery (an error or warning makes one for every field it names).
    fn from(path: FieldPath) -> String {
        let mut digits = itoa::Buffer::new();
        let pieces = path.pieces(&mut digits);
        let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
        pieces.iter().for_each(|p| out.push_str(p));
        out
    }
}

/// `template` around its first `[]`: a search for one byte, where a
/// two-byte pattern would set up a substring searcher each time.
fn split_at_brackets(template: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(i) = template[from..].find('[') {
        let open = from + i;
        if let Some(after) = template[open..].strip_prefix("[]") {
            return Some((&template[..open], after));
        }
        from = open + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string conversion gives exactly what `Display` gives.
    #[test]
    fn conversion_matches_display() {
        for path in [
            FieldPath::new("order.brady"),
            FieldPath::new("protected_persons[]"),
            FieldPath::at("protected_persons[].name.last", 0),
            FieldPath::at("protected_persons[].name.last", 9),
            FieldPath::at("order.condition_codes[]", 10),
            FieldPath::at("order.condition_codes[]", NO_INDEX as usize - 1),
        ] {
            assert_eq!(String::from(path), path.to_string());
        }
    }

    /// Rendering expands `[]`, or drops it for the whole list.
    #[test]
    fn renders_like_the_canonical_path() {
        assert_eq!(FieldPath::new("order.brady").to_string(), "order.brady");
        assert_eq!(
            FieldPath::at("protected_persons[].name.last", 1).to_string(),
            "protected_persons[1].name.last"
        );
        assert_eq!(FieldPath::new("protected_persons[]").to_string(), "protected_persons");
        assert_eq!(
            FieldPath::at("order.condition_codes[]", 12).to_string(),
            "order.condition_codes[12]"
        );
    }

    /// Matching a written path agrees with rendering, and allocates nothing.
    #[test]
    fn matches_written_paths() {
        let p = FieldPath::at("protected_persons[].sex", 3);
        assert!(p.matches("protected_persons[3].sex"));
        for other in [
            "protected_persons[03].sex",
            "protected_persons[3]",
            "protected_persons[4].sex",
            "protected_persons.sex",
            "protected_persons[3].sex2",
            "x",
        ] {
            assert!(!p.matches(other), "{other}");
        }
        assert!(FieldPath::new("protected_persons[]").matches("protected_persons"));
        assert!(!FieldPath::new("protected_persons[]").matches("protected_persons[0]"));
        assert!(FieldPath::new("court_ori").matches("court_ori"));
        assert!(FieldPath::at("order.condition_codes[]", 0).matches("order.condition_codes[0]"));
    }
}
