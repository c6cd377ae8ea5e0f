//! Date and time patterns of layout fields (`CCYYMMDD`, `HHMM`, `MMDDYYYY`,
//! `MM/DD/CCYY`, `CCYYMMDDHHMMSS`, `HH:MM`, …).
//!
//! Tokens: `CCYY` or `YYYY` (4-digit year), `MM` (month; minutes when the
//! token before it, separators aside, is `HH`), `DD` (day), `HH` (hour
//! 00–23), `MI` (minutes), `SS` (seconds). Any other printable ASCII character that is not a letter
//! or digit is a literal that must appear as is. Two-digit years are refused:
//! their century would be a guess.

use chrono::{NaiveDate, NaiveTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Literal(u8),
}

impl Item {
    fn width(self) -> usize {
        match self {
            Item::Year => 4,
            Item::Literal(_) => 1,
            _ => 2,
        }
    }
}

/// The numbers a pattern may hold, in the order of [`Pattern::starts`].
const NUMBERS: [Item; 6] = [
    Item::Year,
    Item::Month,
    Item::Day,
    Item::Hour,
    Item::Minute,
    Item::Second,
];

/// A parsed date/time pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    text: String,
    items: Vec<Item>,
    /// Bytes a value takes: the items' widths, summed once at parse.
    width: usize,
    /// The pattern holds a year (and so month and day).
    has_date: bool,
    /// The pattern holds an hour (and so minutes).
    has_time: bool,
    /// Per byte of a value: the literal it must be, or 0 where a digit goes.
    shape: Vec<u8>,
    /// Where each number starts in a value, in the order year, month, day,
    /// hour, minute, second (its width is its [`Item::width`]); `None` when
    /// the pattern does not hold it.
    starts: [Option<usize>; 6],
}

/// What a pattern read from a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts {
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
}

/// Why a non-blank value did not match its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// Not the pattern's shape (letters, misplaced separators): `INVALID_FORMAT`.
    Shape,
    /// The right shape, but no such day (20260230): `INVALID_DATE`.
    NoSuchDate,
    /// The right shape, but no such time of day (2460): `INVALID_DATE`.
    NoSuchTime,
}

impl Pattern {
    /// Parses a pattern, or says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        let b = text.as_bytes();
        let mut items: Vec<Item> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let rest = &b[i..];
            let item = if rest.starts_with(b"CCYY") || rest.starts_with(b"YYYY") {
                Item::Year
            } else if rest.starts_with(b"YY") {
                return Err(format!("pattern '{text}': two-digit years are not supported; use CCYY"));
            } else if rest.starts_with(b"MM") {
                let after_hour = items
                    .iter()
                    .rev()
                    .find(|i| !matches!(i, Item::Literal(_)))
                    .is_some_and(|i| *i == Item::Hour);
                if after_hour { Item::Minute } else { Item::Month }
            } else if rest.starts_with(b"MI") {
                Item::Minute
            } else if rest.starts_with(b"DD") {
                Item::Day
            } else if rest.starts_with(b"HH") {
                Item::Hour
            } else if rest.starts_with(b"SS") {
                Item::Second
            } else {
                let c = rest[0];
                if c.is_ascii_alphanumeric() || !(0x20..0x7f).contains(&c) {
                    return Err(format!(
                        "pattern '{text}': unexpected '{}' at position {}; tokens are CCYY, MM, DD, HH, MI, SS",
                        char::from(c).escape_default(),
                        i + 1
                    ));
                }
                Item::Literal(c)
            };
            if !matches!(item, Item::Literal(_)) && items.contains(&item) {
                return Err(format!("pattern '{text}': a token appears twice"));
            }
            i += item.width();
            items.push(item);
        }
        let mut shape = Vec::new();
        let mut starts = [None; 6];
        for item in &items {
            if let Some(k) = NUMBERS.iter().position(|n| n == item) {
                starts[k] = Some(shape.len());
            }
            match item {
                Item::Literal(c) => shape.push(*c),
                other => shape.resize(shape.len() + other.width(), 0),
            }
        }
        let p = Pattern {
            text: text.to_string(),
            width: shape.len(),
            has_date: items.contains(&Item::Year),
            has_time: items.contains(&Item::Hour),
            items,
            shape,
            starts,
        };
        let date = [Item::Year, Item::Month, Item::Day].map(|t| p.items.contains(&t));
        if date.iter().any(|&x| x) && !date.iter().all(|&x| x) {
            return Err(format!("pattern '{text}': a date needs CCYY, MM and DD"));
        }
        let time = [Item::Hour, Item::Minute].map(|t| p.items.contains(&t));
        if (time.iter().any(|&x| x) || p.items.contains(&Item::Second)) && !time.iter().all(|&x| x) {
            return Err(format!("pattern '{text}': a time needs HH and MI (or HHMM)"));
        }
        if !p.has_date() && !p.has_time() {
            return Err(format!("pattern '{text}': no date or time tokens"));
        }
        Ok(p)
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Bytes a value of this pattern takes.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    pub(crate) fn has_date(&self) -> bool {
        self.has_date
    }

    pub(crate) fn has_time(&self) -> bool {
        self.has_time
    }

    /// Reads `bytes` (exactly [`Pattern::width`] long). All spaces is blank:
    /// `Ok(None)`.
    pub(crate) fn read(&self, bytes: &[u8]) -> Result<Option<Parts>, PatternError> {
        if bytes.iter().fold(true, |blank, &b| blank & (b == b' ')) {
            return Ok(None);
        }
        if bytes.len() != self.width {
            return Err(PatternError::Shape);
        }
        // One pass over the bytes, without early exit: digits where the
        // pattern has numbers, its literals elsewhere.
        let shaped = bytes.iter().zip(&self.shape).fold(true, |ok, (&b, &want)| {
            ok & if want == 0 { b.is_ascii_digit() } else { b == want }
        });
        if !shaped {
            return Err(PatternError::Shape);
        }
        let [y, mo, d, h, mi, s] = std::array::from_fn(|k| {
            self.starts[k].map_or(0, |at| {
                let digits = &bytes[at..at + NUMBERS[k].width()];
                digits.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
            })
        });
        let y = y as i32;
        let date = if self.has_date() {
            Some(NaiveDate::from_ymd_opt(y, mo, d).ok_or(PatternError::NoSuchDate)?)
        } else {
            None
        };
        let time = if self.has_time() {
            Some(NaiveTime::from_hms_opt(h, mi, s).ok_or(PatternError::NoSuchTime)?)
        } else {
            None
        };
        Ok(Some(Parts { date, time }))
    }
}

impl Pattern {
    /// Writes a date and/or time in this pattern: the reverse of
    /// [`Pattern::read`]. A token whose part is `None` is written as spaces,
    /// literals as themselves; `None` for both gives an all-blank value.
    ///
    /// Fails, saying why, when the value cannot be written in the pattern: a
    /// year outside 0000–9999, or seconds (or fractions) that a pattern
    /// without `SS` would silently drop.
    pub(crate) fn write(&self, date: Option<NaiveDate>, time: Option<NaiveTime>) -> Result<Vec<u8>, String> {
        use chrono::{Datelike, Timelike};
        if date.is_none() && time.is_none() {
            return Ok(vec![b' '; self.width()]);
        }
        if let Some(d) = date
            && !(0..=9999).contains(&d.year())
        {
            return Err(format!(
                "year {} does not fit the 4-digit year of {}",
                d.year(),
                self.text
            ));
        }
        if let Some(t) = time {
            let has_seconds = self.items.contains(&Item::Second);
            if t.nanosecond() != 0 || (!has_seconds && t.second() != 0) {
                return Err(format!("time {t} has more precision than {} holds", self.text));
            }
        }
        let mut out = Vec::with_capacity(self.width());
        for item in &self.items {
            let n = match item {
                Item::Literal(c) => {
                    out.push(*c);
                    continue;
                }
                Item::Year => date.map(|d| d.year() as u32),
                Item::Month => date.map(|d| d.month()),
                Item::Day => date.map(|d| d.day()),
                Item::Hour => time.map(|t| t.hour()),
                Item::Minute => time.map(|t| t.minute()),
                Item::Second => time.map(|t| t.second()),
            };
            match n {
                Some(n) => out.extend(format!("{n:0w$}", w = item.width()).bytes()),
                None => out.extend(std::iter::repeat_n(b' ', item.width())),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    /// CCYYMMDD and MMDDYYYY read the same day; blank is `None`.
    #[test]
    fn reads_date_patterns() {
        let a = Pattern::parse("CCYYMMDD").unwrap();
        let b = Pattern::parse("MMDDYYYY").unwrap();
        let c = Pattern::parse("MM/DD/CCYY").unwrap();
        assert_eq!(a.read(b"20261125").unwrap().unwrap().date, ymd(2026, 11, 25));
        assert_eq!(b.read(b"11252026").unwrap().unwrap().date, ymd(2026, 11, 25));
        assert_eq!(c.read(b"11/25/2026").unwrap().unwrap().date, ymd(2026, 11, 25));
        assert_eq!(a.read(b"        "), Ok(None));
    }

    /// A wrong shape is `Shape`; an impossible day or time is `NoSuchDate`/`NoSuchTime`.
    #[test]
    fn distinguishes_shape_from_impossible() {
        let a = Pattern::parse("CCYYMMDD").unwrap();
        assert_eq!(a.read(b"2026-1-1"), Err(PatternError::Shape));
        assert_eq!(a.read(b"2026113 "), Err(PatternError::Shape));
        assert_eq!(a.read(b"20260230"), Err(PatternError::NoSuchDate));
        let t = Pattern::parse("HHMM").unwrap();
        let colon = Pattern::parse("HH:MM").unwrap();
        assert_eq!(
            colon.read(b"09:05").unwrap().unwrap().time,
            NaiveTime::from_hms_opt(9, 5, 0)
        );
        assert_eq!(
            t.read(b"2359").unwrap().unwrap().time,
            NaiveTime::from_hms_opt(23, 59, 0)
        );
        assert_eq!(t.read(b"2460"), Err(PatternError::NoSuchTime));
        let dt = Pattern::parse("CCYYMMDDHHMMSS").unwrap();
        let p = dt.read(b"20261125101530").unwrap().unwrap();
        assert_eq!(p.time, NaiveTime::from_hms_opt(10, 15, 30));
    }

    /// Writing is the reverse of reading, for every pattern shape; values a
    /// pattern cannot hold are refused, not cut.
    #[test]
    fn writes_what_it_reads() {
        let d = ymd(2026, 2, 3);
        let t = NaiveTime::from_hms_opt(9, 5, 0);
        for (text, want) in [
            ("CCYYMMDD", "20260203"),
            ("MMDDYYYY", "02032026"),
            ("MM/DD/CCYY", "02/03/2026"),
            ("HHMM", "0905"),
            ("HH:MM", "09:05"),
            ("MMDDYYYYHHMM", "020320260905"),
            ("CCYYMMDDHHMMSS", "20260203090500"),
        ] {
            let p = Pattern::parse(text).unwrap();
            let date = p.has_date().then_some(d).flatten();
            let time = p.has_time().then_some(t).flatten();
            let bytes = p.write(date, time).unwrap();
            assert_eq!(bytes, want.as_bytes(), "{text}");
            let back = p.read(&bytes).unwrap().unwrap();
            assert_eq!((back.date, back.time), (date, time), "{text}");
        }
        let p = Pattern::parse("CCYYMMDD").unwrap();
        assert_eq!(p.write(None, None).unwrap(), b"        ");
        assert!(p.write(ymd(10000, 1, 1), None).is_err());
        let hm = Pattern::parse("HHMM").unwrap();
        assert!(hm.write(None, NaiveTime::from_hms_opt(9, 5, 1)).is_err());
    }

    /// Bad patterns are refused with a reason.
    #[test]
    fn refuses_bad_patterns() {
        assert!(Pattern::parse("YYMMDD").unwrap_err().contains("two-digit"));
        assert!(Pattern::parse("CCYYMM").unwrap_err().contains("CCYY, MM and DD"));
        assert!(Pattern::parse("CCYYMMDDX").is_err());
        assert!(Pattern::parse("--").is_err());
        assert!(Pattern::parse("CCYYCCYY").is_err());
    }
}
