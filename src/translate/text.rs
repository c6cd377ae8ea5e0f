//! Text on its way to CLETS (ICD §0): uppercased, transliterated to ASCII
//! (`É`→`E`, `Ñ`→`N`), and with `.` replaced by a space (ICD §6). A
//! character that cannot be transliterated is `INVALID_FORMAT`. Each change
//! is reported, so the translator can warn the court.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// What [`to_clets_text`] did to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextChanges {
    /// Non-ASCII letters were transliterated.
    pub transliterated: bool,
    /// `.` was replaced with a space.
    pub dots_replaced: bool,
}

/// Letters that do not decompose into a base letter plus marks.
fn special(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "SS",
        'Æ' | 'æ' => "AE",
        'Œ' | 'œ' => "OE",
        'Ø' | 'ø' => "O",
        'Ł' | 'ł' => "L",
        'Đ' | 'đ' | 'Ð' | 'ð' => "D",
        'Þ' | 'þ' => "TH",
        'ı' => "I",
        '\u{2018}' | '\u{2019}' => "'",
        '\u{201C}' | '\u{201D}' => "\"",
        '\u{2013}' | '\u{2014}' => "-",
        '\u{00A0}' => " ",
        _ => return None,
    })
}

/// Converts `value` to CLETS text, or returns the first character that has
/// no ASCII form.
pub fn to_clets_text(value: &str) -> Result<(String, TextChanges), char> {
    let mut out = String::with_capacity(value.len());
    let changes = write_clets_text(&mut out, value)?;
    Ok((out, changes))
}

/// Appends `value` as CLETS text to `out` (always ASCII), or returns the
/// first character that has no ASCII form; `out` then holds part of it.
pub fn write_clets_text(out: &mut String, value: &str) -> Result<TextChanges, char> {
    let mut changes = TextChanges::default();
    // ASCII is handled byte by byte, straight into `out`; the translator's
    // fast path for printable ASCII is `write_clets_bytes`.
    let ascii = value.bytes().position(|b| !b.is_ascii()).unwrap_or(value.len());
    out.reserve(value.len());
    for b in value[..ascii].bytes() {
        push_ascii(out, b, &mut changes)?;
    }
    for c in value[ascii..].chars() {
        if c.is_ascii() {
            push_ascii(out, c as u8, &mut changes)?;
            continue;
        }
        changes.transliterated = true;
        if let Some(s) = special(c) {
            out.push_str(s);
            continue;
        }
        let mut base = c.nfd().filter(|d| !is_combining_mark(*d));
        match (base.next(), base.next()) {
            (Some(b), None) if b.is_ascii_alphanumeric() => out.push(b.to_ascii_uppercase()),
            _ => return Err(c),
        }
    }
    Ok(changes)
}

/// [`write_clets_text`] into bytes (the translator's request text, which
/// is ASCII by construction). Printable ASCII, nearly every value, is
/// mapped in one pass, uppercased and with `.` made a space; a value with
/// any other byte is taken back out and goes through [`write_clets_text`].
pub fn write_clets_bytes(out: &mut Vec<u8>, value: &str) -> Result<TextChanges, char> {
    let bytes = value.as_bytes();
    let start = out.len();
    let (mut other, mut dots) = (false, false);
    // Branch-free, so that the compiler maps many bytes at a time.
    out.extend(bytes.iter().map(|&b| {
        let dot = b == b'.';
        other |= !matches!(b, b' '..=b'~');
        dots |= dot;
        let upper = b - (u8::from(b.is_ascii_lowercase()) << 5);
        if dot { b' ' } else { upper }
    }));
    if !other {
        return Ok(TextChanges {
            transliterated: false,
            dots_replaced: dots,
        });
    }
    out.truncate(start);
    let mut text = String::with_capacity(value.len());
    let changes = write_clets_text(&mut text, value);
    out.extend_from_slice(text.as_bytes());
    changes
}

fn push_ascii(out: &mut String, b: u8, changes: &mut TextChanges) -> Result<(), char> {
    if b == b'.' {
        changes.dots_replaced = true;
        out.push(' ');
    } else if b.is_ascii_control() {
        return Err(b as char);
    } else {
        out.push(b.to_ascii_uppercase() as char);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accented letters become their ASCII base letter, uppercased.
    #[test]
    fn accents_are_transliterated() {
        let (s, ch) = to_clets_text("José Muñoz-Éclair").unwrap();
        assert_eq!(s, "JOSE MUNOZ-ECLAIR");
        assert!(ch.transliterated);
        assert!(!ch.dots_replaced);
    }

    /// A period never reaches CLETS: it becomes a space.
    #[test]
    fn dots_become_spaces() {
        let (s, ch) = to_clets_text("St. John").unwrap();
        assert_eq!(s, "ST  JOHN");
        assert!(ch.dots_replaced);
    }

    /// Text already in CLETS form is kept as it is.
    #[test]
    fn clets_text_is_kept() {
        let all: String = (b' '..=b'~')
            .map(char::from)
            .filter(|c| *c != '.' && !c.is_ascii_lowercase())
            .collect();
        assert_eq!(to_clets_text(&all).unwrap(), (all.clone(), TextChanges::default()));
        assert_eq!(to_clets_text("a.b").unwrap().0, "A B");
    }

    /// Writing bytes gives exactly what writing text gives, changes and
    /// errors included, for ASCII and for text that is not.
    #[test]
    fn bytes_and_text_agree() {
        let samples = [
            "",
            "doe",
            "St. John",
            "O'BRIEN-SMITH",
            "José Muñoz",
            "a.b.c",
            "李",
            "a\u{0007}",
            "~ !{}",
            "straße",
            "x\u{00A0}y",
        ];
        for value in samples {
            let mut text = String::from("PRE/");
            let mut bytes = b"PRE/".to_vec();
            let from_text = write_clets_text(&mut text, value);
            let from_bytes = write_clets_bytes(&mut bytes, value);
            assert_eq!(from_bytes, from_text, "{value:?}");
            if from_text.is_ok() {
                assert_eq!(bytes, text.as_bytes(), "{value:?}");
            }
        }
        let all: String = (b' '..=b'~').map(char::from).collect();
        let mut text = String::new();
        let mut bytes = Vec::new();
        assert_eq!(write_clets_bytes(&mut bytes, &all), write_clets_text(&mut text, &all));
        assert_eq!(bytes, text.as_bytes());
    }

    /// A character with no ASCII form is reported, not dropped.
    #[test]
    fn untransliterable_character_is_an_error() {
        assert_eq!(to_clets_text("李"), Err('李'));
        assert_eq!(to_clets_text("a\u{0007}"), Err('\u{0007}'));
    }
}
