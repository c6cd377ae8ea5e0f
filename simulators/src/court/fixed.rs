//! Writes a generated message as ICD §3 fixed-width records, layout `cms-a/1`.
//!
//! Each record is exactly 200 ASCII bytes followed by LF. Text is uppercased,
//! folded to ASCII the way a fixed-width CMS stores it (`Ñ` → `N`), left-
//! justified and space-padded. The records per action are those of the §3
//! table: `O R P… M…` for ISSUE and MODIFY, `O` for TERMINATE and CANCEL,
//! `O S` for SERVICE. Condition text is wrapped at word boundaries into at
//! most five `M` lines of 100 characters, so that Porter's "trim and join with
//! one space" gives the text back unchanged.

use super::orders::{Action, GeneratedMessage, PersonName};

/// Data bytes per record, without the terminator.
pub const RECORD_LEN: usize = 200;
/// Characters per condition-text line (`M` columns 4–103).
pub const CONDITION_LINE_LEN: usize = 100;
/// At most this many `M` lines.
pub const MAX_CONDITION_LINES: usize = 5;

/// The message as `cms-a/1` records, each 200 bytes + LF.
pub fn to_fixed(message: &GeneratedMessage) -> Vec<u8> {
    let o = &message.order;
    let full = message.action.carries_full_order();
    let mut records = Vec::new();

    let mut header = Record::new(b'O');
    header.put(2, 9, &message.court_ori);
    header.put(11, 20, &o.case_number);
    header.put(31, 15, &o.order_number);
    header.put(46, 2, message.action.code());
    header.put(48, 4, &format!("{:04}", message.sequence));
    header.put(52, 3, &o.order_type);
    if full {
        header.put(55, 8, &o.form_id);
        header.put(63, 8, &o.issue_date.format("%Y%m%d").to_string());
        if let Some(exp) = o.expiration {
            header.put(71, 8, &exp.format("%Y%m%d").to_string());
            header.put(79, 4, &exp.format("%H%M").to_string());
        }
        header.put(83, 1, &o.brady.to_string());
        header.put(84, 18, &o.condition_codes.concat());
        header.put(102, 1, if o.firearm_relinquishment { "Y" } else { "N" });
        header.put(103, 30, &o.judicial_officer);
    }
    match &message.action {
        Action::Terminate { date } => header.put(133, 8, &date.format("%Y%m%d").to_string()),
        Action::Cancel { reason } => header.put(141, 60, reason),
        _ => {}
    }
    records.push(header);

    if full {
        let r = &o.restrained;
        let mut rec = Record::new(b'R');
        rec.put_name(&r.name);
        rec.put(72, 3, r.name.suffix.as_deref().unwrap_or(""));
        rec.put(75, 1, &r.sex.to_string());
        rec.put(76, 1, &r.race.to_string());
        rec.put(77, 8, &r.birth_date.format("%Y%m%d").to_string());
        rec.put(85, 3, &r.height);
        rec.put(88, 3, &format!("{:03}", r.weight));
        rec.put(91, 3, &r.eye);
        rec.put(94, 3, &r.hair);
        rec.put(97, 40, &r.residence.street);
        rec.put(137, 20, &r.residence.city);
        rec.put(157, 2, &r.residence.state);
        rec.put(159, 5, &r.residence.zip);
        if let Some(dl) = &r.driver_license {
            rec.put(164, 20, &dl.number);
            rec.put(184, 2, &dl.state);
        }
        records.push(rec);

        for p in &o.protected {
            let mut rec = Record::new(b'P');
            rec.put_name(&p.name);
            rec.put(72, 1, &p.sex.to_string());
            rec.put(73, 1, &p.race.to_string());
            rec.put(74, 8, &p.birth_date.format("%Y%m%d").to_string());
            rec.put(82, 2, &p.relationship);
            records.push(rec);
        }

        for (i, text) in condition_lines(&o.condition_text)
            .iter()
            .enumerate()
            .take(MAX_CONDITION_LINES)
        {
            let mut rec = Record::new(b'M');
            rec.put(2, 2, &format!("{:02}", i + 1));
            rec.put(4, CONDITION_LINE_LEN, text);
            records.push(rec);
        }
    }

    if let Action::Service(s) = &message.action {
        let mut rec = Record::new(b'S');
        rec.put(2, 8, &s.served_at.format("%Y%m%d").to_string());
        rec.put(10, 4, &s.served_at.format("%H%M").to_string());
        rec.put(14, 30, &s.served_by);
        rec.put(44, 9, &s.serving_agency_ori);
        rec.put(53, 1, &s.method.to_string());
        records.push(rec);
    }

    let mut out = Vec::with_capacity(records.len() * (RECORD_LEN + 1));
    for rec in records {
        out.extend_from_slice(&rec.0);
        out.push(b'\n');
    }
    out
}

/// Splits condition text into lines of at most 100 characters at spaces, the
/// way Porter joins them back (trimmed, one space between). A word longer
/// than a line is cut.
pub fn condition_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while word.len() > CONDITION_LINE_LEN {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            let cut = floor_char_boundary(word, CONDITION_LINE_LEN);
            lines.push(word[..cut].to_string());
            word = &word[cut..];
        }
        if !current.is_empty() && current.len() + 1 + word.len() > CONDITION_LINE_LEN {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Whether condition text fits `cms-a/1`: at most 500 characters and five lines.
pub fn condition_text_fits(text: &str) -> bool {
    text.len() <= 500 && condition_lines(text).len() <= MAX_CONDITION_LINES
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Uppercase ASCII, as a fixed-width CMS stores text: accented Latin letters
/// lose their accent, anything else outside ASCII becomes `?`.
pub fn fold_ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            let folded = match c {
                'À'..='Å' | 'à'..='å' => 'A',
                'Ç' | 'ç' => 'C',
                'È'..='Ë' | 'è'..='ë' => 'E',
                'Ì'..='Ï' | 'ì'..='ï' => 'I',
                'Ñ' | 'ñ' => 'N',
                'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' => 'O',
                'Ù'..='Ü' | 'ù'..='ü' => 'U',
                'Ý' | 'ý' | 'ÿ' => 'Y',
                c if c.is_ascii() && !c.is_ascii_control() => c,
                _ => '?',
            };
            folded.to_ascii_uppercase()
        })
        .collect()
}

/// One 200-byte record, space-filled.
struct Record([u8; RECORD_LEN]);

impl Record {
    fn new(kind: u8) -> Record {
        let mut bytes = [b' '; RECORD_LEN];
        bytes[0] = kind;
        Record(bytes)
    }

    /// Writes `value` left-justified into columns `start..start+len` (1-based).
    /// The generator keeps every value within its width; a longer one is cut
    /// here only so that the record keeps its length.
    fn put(&mut self, start: usize, len: usize, value: &str) {
        let value = fold_ascii(value);
        debug_assert!(value.len() <= len, "{value:?} is wider than {len} columns");
        let n = value.len().min(len);
        self.0[start - 1..start - 1 + n].copy_from_slice(&value.as_bytes()[..n]);
    }

    /// Last 2–31, first 32–51, middle 52–71 (the same in `R` and `P`).
    fn put_name(&mut self, name: &PersonName) {
        self.put(2, 30, &name.last);
        self.put(32, 20, &name.first);
        self.put(52, 20, name.middle.as_deref().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::court::orders::Service;
    use crate::court::xml::tests::sample_message;

    /// The ICD §3 sample records, padded to 200.
    fn icd_sample() -> Vec<String> {
        [
            "OCA034025J24FL001234          24DV01234      IS0001DV DV-130  20261125203111252359Y010507            YHON MARIA LOPEZ",
            "RDOE                           JOHN                ALLEN                  MW19850214510185BROBLK1200 J ST APT 4                         SACRAMENTO          CA95814D1234567            CA",
            "PDOE                           JANE                B                   FW19870302SP",
            "M01STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.",
        ]
        .iter()
        .map(|r| format!("{r:<200}"))
        .collect()
    }

    fn records(bytes: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'));
        text.lines().map(str::to_string).collect()
    }

    /// 1-based inclusive columns `from..=to` of a record.
    fn col(record: &str, from: usize, to: usize) -> &str {
        &record[from - 1..to]
    }

    /// The sample order is written byte for byte as the ICD §3 sample.
    #[test]
    fn issue_matches_the_icd_sample() {
        let mut m = sample_message();
        m.format = crate::court::config::CourtFormat::Fixed;
        let out = to_fixed(&m);
        assert_eq!(out.len(), 4 * 201);
        assert_eq!(records(&out), icd_sample());
    }

    /// Every field of the O, R, P and M records sits in the §3 table's columns.
    #[test]
    fn every_field_is_in_its_icd_column() {
        let recs = records(&to_fixed(&sample_message()));
        assert!(recs.iter().all(|r| r.len() == RECORD_LEN));
        let o = &recs[0];
        let expected_o: &[(usize, usize, &str)] = &[
            (1, 1, "O"),
            (2, 10, "CA034025J"),
            (11, 30, "24FL001234"),
            (31, 45, "24DV01234"),
            (46, 47, "IS"),
            (48, 51, "0001"),
            (52, 54, "DV"),
            (55, 62, "DV-130"),
            (63, 70, "20261125"),
            (71, 78, "20311125"),
            (79, 82, "2359"),
            (83, 83, "Y"),
            (84, 101, "010507"),
            (102, 102, "Y"),
            (103, 132, "HON MARIA LOPEZ"),
            (133, 140, ""),
            (141, 200, ""),
        ];
        let r = &recs[1];
        let expected_r: &[(usize, usize, &str)] = &[
            (1, 1, "R"),
            (2, 31, "DOE"),
            (32, 51, "JOHN"),
            (52, 71, "ALLEN"),
            (72, 74, ""),
            (75, 75, "M"),
            (76, 76, "W"),
            (77, 84, "19850214"),
            (85, 87, "510"),
            (88, 90, "185"),
            (91, 93, "BRO"),
            (94, 96, "BLK"),
            (97, 136, "1200 J ST APT 4"),
            (137, 156, "SACRAMENTO"),
            (157, 158, "CA"),
            (159, 163, "95814"),
            (164, 183, "D1234567"),
            (184, 185, "CA"),
            (186, 200, ""),
        ];
        let p = &recs[2];
        let expected_p: &[(usize, usize, &str)] = &[
            (1, 1, "P"),
            (2, 31, "DOE"),
            (32, 51, "JANE"),
            (52, 71, "B"),
            (72, 72, "F"),
            (73, 73, "W"),
            (74, 81, "19870302"),
            (82, 83, "SP"),
            (84, 200, ""),
        ];
        let m = &recs[3];
        let expected_m: &[(usize, usize, &str)] = &[
            (1, 1, "M"),
            (2, 3, "01"),
            (
                4,
                103,
                "STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.",
            ),
            (104, 200, ""),
        ];
        for (record, table) in [(o, expected_o), (r, expected_r), (p, expected_p), (m, expected_m)] {
            let mut next = 1;
            for &(from, to, value) in table {
                assert_eq!(from, next, "the table leaves a gap before column {from}");
                next = to + 1;
                let field = col(record, from, to);
                assert_eq!(field.trim_end(), value, "{} columns {from}-{to}", &record[..1]);
                assert!(!field.starts_with(' ') || value.is_empty(), "not left-justified");
            }
            assert_eq!(next, RECORD_LEN + 1);
        }
    }

    /// SERVICE is O + S with the S fields in their columns; TERMINATE and CANCEL are one O.
    #[test]
    fn service_terminate_cancel_records() {
        let mut m = sample_message();
        m.sequence = 3;
        m.action = Action::Service(Service {
            served_at: NaiveDate::from_ymd_opt(2026, 11, 25)
                .unwrap()
                .and_hms_opt(9, 40, 0)
                .unwrap(),
            served_by: "DEP SMITH #1234".into(),
            serving_agency_ori: "CA0340000".into(),
            method: 'P',
        });
        let recs = records(&to_fixed(&m));
        assert_eq!(recs.len(), 2);
        let o = &recs[0];
        assert_eq!(col(o, 1, 54), "OCA034025J24FL001234          24DV01234      SV0003DV ");
        assert_eq!(col(o, 55, 200).trim(), "", "SV carries no order terms");
        let s = &recs[1];
        assert_eq!(col(s, 1, 1), "S");
        assert_eq!(col(s, 2, 9), "20261125");
        assert_eq!(col(s, 10, 13), "0940");
        assert_eq!(col(s, 14, 43).trim_end(), "DEP SMITH #1234");
        assert_eq!(col(s, 44, 52), "CA0340000");
        assert_eq!(col(s, 53, 53), "P");
        assert_eq!(col(s, 54, 200).trim(), "");

        m.action = Action::Terminate {
            date: NaiveDate::from_ymd_opt(2027, 1, 5).unwrap(),
        };
        let recs = records(&to_fixed(&m));
        assert_eq!(recs.len(), 1);
        assert_eq!(col(&recs[0], 46, 47), "TM");
        assert_eq!(col(&recs[0], 133, 140), "20270105");

        m.action = Action::Cancel {
            reason: "ENTERED IN ERROR".into(),
        };
        let recs = records(&to_fixed(&m));
        assert_eq!(recs.len(), 1);
        assert_eq!(col(&recs[0], 46, 47), "CX");
        assert_eq!(col(&recs[0], 141, 200).trim_end(), "ENTERED IN ERROR");
    }

    /// Long condition text wraps at spaces and joins back to the same text.
    #[test]
    fn condition_text_wraps_and_joins_back() {
        let text = "NO CONTACT IN PERSON, BY PHONE, TEXT, EMAIL, SOCIAL MEDIA OR THROUGH OTHERS, EXCEPT BRIEF AND PEACEFUL CONTACT REQUIRED FOR COURT-ORDERED VISITATION. DO NOT OWN, POSSESS, BUY OR RECEIVE FIREARMS OR AMMUNITION.";
        let lines = condition_lines(text);
        assert!(lines.len() == 3 && lines.iter().all(|l| l.len() <= 100));
        assert_eq!(lines.join(" "), text);
        let mut m = sample_message();
        m.order.condition_text = text.into();
        let recs = records(&to_fixed(&m));
        let m_lines: Vec<_> = recs.iter().filter(|r| r.starts_with('M')).collect();
        assert_eq!(col(m_lines[2], 1, 3), "M03");
        assert!(condition_text_fits(text));
        assert!(!condition_text_fits(&"X".repeat(501)));
    }

    /// Accents fold to ASCII; a record never holds a byte above 0x7F.
    #[test]
    fn text_is_folded_to_ascii() {
        assert_eq!(fold_ascii("MUÑOZ Peña ÍBÁÑEZ 李"), "MUNOZ PENA IBANEZ ?");
        let mut m = sample_message();
        m.order.restrained.name.last = "NÚÑEZ".into();
        let out = to_fixed(&m);
        assert!(out.is_ascii());
        assert_eq!(col(&records(&out)[1], 2, 31).trim_end(), "NUNEZ");
    }
}
