//! Scalar values as XML writes them: dates, date-times, integers, booleans.
//!
//! Each parser tells a badly shaped value (`INVALID_FORMAT`) from a well
//! shaped but impossible one such as `2026-02-30` (`INVALID_DATE`). Each
//! formatter writes what its parser reads back unchanged.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat};

use crate::model::ErrorCode;

/// Why a value was refused: the error code and a sentence for the court.
pub(super) type ValueError = (ErrorCode, String);

/// Shows a value in an error text, cut to a readable length.
pub(super) fn quote(value: &str) -> String {
    const MAX: usize = 40;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("\"{}…\"", &value[..cut]),
        None => format!("\"{value}\""),
    }
}

fn format_error(expected: &str, value: &str) -> ValueError {
    (
        ErrorCode::InvalidFormat,
        format!("expected {expected}, found {}", quote(value)),
    )
}

fn date_error(what: &str, value: &str) -> ValueError {
    (ErrorCode::InvalidDate, format!("{} is not a real {what}", quote(value)))
}

/// A run of ASCII digits as a number; `None` for anything else.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DD` into its three numbers, shape only.
fn date_parts(s: &[u8]) -> Option<(u32, u32, u32)> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    Some((number(&s[..4])?, number(&s[5..7])?, number(&s[8..])?))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fffffffff` into (h, m, s, nanoseconds),
/// shape only. Seconds are optional unless `seconds_required`.
fn time_parts(s: &[u8], seconds_required: bool) -> Option<(u32, u32, u32, u32)> {
    if s.len() < 5 || s[2] != b':' {
        return None;
    }
    let (hour, minute) = (number(&s[..2])?, number(&s[3..5])?);
    let rest = &s[5..];
    if rest.is_empty() {
        return (!seconds_required).then_some((hour, minute, 0, 0));
    }
    if rest.len() < 3 || rest[0] != b':' {
        return None;
    }
    let second = number(&rest[1..3])?;
    let fraction = &rest[3..];
    if fraction.is_empty() {
        return Some((hour, minute, second, 0));
    }
    let digits = fraction.strip_prefix(b".")?;
    let value = number(digits)?;
    let nanos = value * 10u32.pow(9 - digits.len() as u32);
    Some((hour, minute, second, nanos))
}

/// A real date; year 0000 is not one (`xs:date` has no year zero).
fn make_date(year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    if year == 0 {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// An `xs:date` without time zone: `YYYY-MM-DD`.
pub(super) fn parse_date(value: &str) -> Result<NaiveDate, ValueError> {
    let (y, m, d) = date_parts(value.as_bytes()).ok_or_else(|| format_error("a date YYYY-MM-DD", value))?;
    make_date(y, m, d).ok_or_else(|| date_error("date", value))
}

/// Splits `date T time` at the `T`; `None` when there is no `T` at 10.
fn split_date_time(value: &str) -> Option<(&[u8], &[u8])> {
    let bytes = value.as_bytes();
    (bytes.len() > 11 && bytes[10] == b'T').then(|| (&bytes[..10], &bytes[11..]))
}

fn make_date_time(date: (u32, u32, u32), time: (u32, u32, u32, u32)) -> Option<NaiveDateTime> {
    let date = make_date(date.0, date.1, date.2)?;
    // A leap second (nanoseconds ≥ 1e9) is not a civil time a court writes.
    if time.3 >= 1_000_000_000 {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(time.0, time.1, time.2, time.3)?;
    Some(date.and_time(time))
}

/// A local (California civil) date-time without offset, an `xs:dateTime`:
/// `YYYY-MM-DDTHH:MM:SS[.fff]`.
pub(super) fn parse_local_date_time(value: &str) -> Result<NaiveDateTime, ValueError> {
    const SHAPE: &str = "a local date-time YYYY-MM-DDTHH:MM:SS without offset";
    let (date, time) = split_date_time(value).ok_or_else(|| format_error(SHAPE, value))?;
    let date = date_parts(date).ok_or_else(|| format_error(SHAPE, value))?;
    let time = time_parts(time, true).ok_or_else(|| format_error(SHAPE, value))?;
    make_date_time(date, time).ok_or_else(|| date_error("date-time", value))
}

/// A date-time with offset (RFC 3339): `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
pub(super) fn parse_offset_date_time(value: &str) -> Result<DateTime<FixedOffset>, ValueError> {
    const SHAPE: &str = "a date-time with offset YYYY-MM-DDTHH:MM:SS±HH:MM";
    let shape = || format_error(SHAPE, value);
    let (date, rest) = split_date_time(value).ok_or_else(shape)?;
    let date = date_parts(date).ok_or_else(shape)?;
    let (time, offset) = if let Some(time) = rest.strip_suffix(b"Z") {
        (time, Some(0))
    } else {
        if rest.len() < 6 {
            return Err(shape());
        }
        let (time, zone) = rest.split_at(rest.len() - 6);
        let sign = match zone[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(shape()),
        };
        if zone[3] != b':' {
            return Err(shape());
        }
        let (hours, minutes) = (
            number(&zone[1..3]).ok_or_else(shape)?,
            number(&zone[4..]).ok_or_else(shape)?,
        );
        // xs:dateTime offsets run from -14:00 to +14:00.
        let seconds =
            (minutes <= 59 && hours * 60 + minutes <= 14 * 60).then(|| sign * (hours * 3600 + minutes * 60) as i32);
        (time, seconds)
    };
    let time = time_parts(time, true).ok_or_else(shape)?;
    let local = make_date_time(date, time).ok_or_else(|| date_error("date-time", value))?;
    let offset = offset
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| date_error("time zone offset", value))?;
    local
        .and_local_timezone(offset)
        .single()
        .ok_or_else(|| date_error("date-time", value))
}

/// An `xs:unsignedInt` written as plain digits (no sign).
pub(super) fn parse_sequence(value: &str) -> Result<u32, ValueError> {
    let digits = value;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format_error("a non-negative integer", value));
    }
    digits.parse().map_err(|_| {
        (
            ErrorCode::InvalidFormat,
            format!("{} is too large for a sequence", quote(value)),
        )
    })
}

/// An `xs:boolean`: `true`, `false`, `1` or `0`.
pub(super) fn parse_boolean(value: &str) -> Result<bool, ValueError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format_error("true, false, 1 or 0", value)),
    }
}

/// Writes a date as `YYYY-MM-DD`.
pub(super) fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Writes a local date-time as `YYYY-MM-DDTHH:MM:SS`, with a fraction only
/// when there is one.
pub(super) fn format_local_date_time(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}

/// Writes a date-time with its offset (RFC 3339, `+00:00` rather than `Z`),
/// with a fraction only when there is one.
pub(super) fn format_offset_date_time(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A badly shaped date is INVALID_FORMAT, an impossible one INVALID_DATE.
    #[test]
    fn dates_tell_shape_from_value() {
        assert_eq!(
            parse_date("2026-11-25"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 25).unwrap())
        );
        assert_eq!(parse_date("2026-02-30").unwrap_err().0, ErrorCode::InvalidDate);
        assert_eq!(parse_date("2026-13-01").unwrap_err().0, ErrorCode::InvalidDate);
        assert_eq!(parse_date("0000-01-01").unwrap_err().0, ErrorCode::InvalidDate);
        for bad in [
            "2026-2-3",
            "26-02-03",
            "2026/02/03",
            "2026-02-03Z",
            "",
            "２０２６-02-03",
        ] {
            assert_eq!(parse_date(bad).unwrap_err().0, ErrorCode::InvalidFormat, "{bad}");
        }
    }

    /// Local date-times take optional seconds and no offset.
    #[test]
    fn local_date_times() {
        let t = parse_local_date_time("2031-11-25T23:59:00").unwrap();
        assert_eq!(format_local_date_time(t), "2031-11-25T23:59:00");
        let t = parse_local_date_time("2031-11-25T23:59:07.5").unwrap();
        assert_eq!(format_local_date_time(t), "2031-11-25T23:59:07.500");
        assert_eq!(
            parse_local_date_time("2031-11-25T24:00:00").unwrap_err().0,
            ErrorCode::InvalidDate
        );
        assert_eq!(
            parse_local_date_time("2031-02-29T10:00:00").unwrap_err().0,
            ErrorCode::InvalidDate
        );
        assert_eq!(
            parse_local_date_time("0000-02-01T10:00:00").unwrap_err().0,
            ErrorCode::InvalidDate
        );
        for bad in [
            "2031-11-25T23:59-08:00",
            "2031-11-25T23:59Z",
            "2031-11-25 23:59",
            "2031-11-25T2359",
            "2031-11-25T23:59",
            "2031-11-25T",
        ] {
            assert_eq!(
                parse_local_date_time(bad).unwrap_err().0,
                ErrorCode::InvalidFormat,
                "{bad}"
            );
        }
    }

    /// Date-times with offset follow RFC 3339 and round-trip through the formatter.
    #[test]
    fn offset_date_times() {
        for text in [
            "2026-11-25T10:15:00-08:00",
            "2026-11-25T10:15:00.250+05:30",
            "2026-11-25T18:15:00+00:00",
        ] {
            let t = parse_offset_date_time(text).unwrap();
            assert_eq!(format_offset_date_time(t), text);
        }
        assert_eq!(
            parse_offset_date_time("2026-11-25T18:15:00Z").unwrap(),
            parse_offset_date_time("2026-11-25T18:15:00+00:00").unwrap()
        );
        assert_eq!(
            parse_offset_date_time("2026-02-30T10:15:00-08:00").unwrap_err().0,
            ErrorCode::InvalidDate
        );
        for bad in ["-24:00", "+14:01", "-15:00", "+00:60"] {
            let text = format!("2026-02-03T10:15:00{bad}");
            assert_eq!(
                parse_offset_date_time(&text).unwrap_err().0,
                ErrorCode::InvalidDate,
                "{text}"
            );
        }
        assert!(parse_offset_date_time("2026-02-03T10:15:00+14:00").is_ok());
        assert!(parse_offset_date_time("2026-02-03T10:15:00-14:00").is_ok());
        for bad in [
            "2026-11-25T10:15:00",
            "2026-11-25T10:15-08:00",
            "2026-11-25T10:15:00 -08:00",
            "x",
        ] {
            assert_eq!(
                parse_offset_date_time(bad).unwrap_err().0,
                ErrorCode::InvalidFormat,
                "{bad}"
            );
        }
    }

    /// Sequences are unsigned digits that fit a u32 (as xs:unsignedInt, no sign); booleans are
    /// xs:boolean.
    #[test]
    fn sequences_and_booleans() {
        assert_eq!(parse_sequence("1"), Ok(1));
        assert_eq!(parse_sequence("007"), Ok(7));
        assert_eq!(parse_sequence("4294967295"), Ok(u32::MAX));
        for bad in ["-1", "-0", "+7", "1.0", "", "+", "4294967296", "one", "١"] {
            assert_eq!(parse_sequence(bad).unwrap_err().0, ErrorCode::InvalidFormat, "{bad}");
        }
        assert_eq!(parse_boolean("1"), Ok(true));
        assert_eq!(parse_boolean("false"), Ok(false));
        assert!(parse_boolean("TRUE").is_err());
        assert!(parse_boolean("yes").is_err());
    }

    /// Long values are cut in error texts.
    #[test]
    fn quote_cuts_long_values() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote(&"é".repeat(100)).chars().count(), 43);
    }
}
