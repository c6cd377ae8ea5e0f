//! CARPOS response frames (ICD §6) as a type: parsing what the partner answers, and rendering it (the
//! simulator answers with [`CletsReply::to_frame_text`]).
//!
//! Shapes:
//! - `ACK.MKE.ORI.MCN.NIC/<letter + 9 digits>.FCN/<13 digits>`: accepted.
//! - `REJ.MKE.ORI.MCN.ERR/<code>.MSG/<text>`: rejected, permanently.
//! - `BSY.MKE.ORI.MCN.MSG/<text>`: busy, transient; retry later.
//!
//! Parsing rules:
//! - `MKE`, `ORI` and `MCN` echo the request. They are checked only loosely (non-empty printable ASCII,
//!   without `.` or `/`), because a partner echoes whatever it was sent, even in a rejection of a malformed
//!   request, and that rejection must still reach the caller as a rejection.
//! - `NIC`, `FCN` and the error code are checked strictly.
//! - `MSG` is the last field, so its text is the rest of the frame, taken verbatim (it may contain `.`).
//! - One trailing `.` after `FCN` is tolerated, since request fields end with `.`.

use std::fmt;

/// One CARPOS response, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CletsReply {
    /// The request was applied. `nic` identifies the CARPOS record, `fcn` the file control number.
    Ack {
        /// Message key echoed from the request (`EPO`, `MPO`, ...).
        mke: String,
        /// Originating agency identifier echoed from the request.
        ori: String,
        /// Message control number echoed from the request.
        mcn: String,
        /// CARPOS record id: a letter then 9 digits.
        nic: String,
        /// File control number: 13 digits.
        fcn: String,
    },
    /// The request was refused; resending it unchanged will not help.
    Rej {
        /// Message key echoed from the request.
        mke: String,
        /// Originating agency identifier echoed from the request.
        ori: String,
        /// Message control number echoed from the request.
        mcn: String,
        /// Error code, such as `E03` (see ICD §6).
        code: String,
        /// Human-readable reason.
        message: String,
    },
    /// The partner is busy; the same request may be sent again later.
    Bsy {
        /// Message key echoed from the request.
        mke: String,
        /// Originating agency identifier echoed from the request.
        ori: String,
        /// Message control number echoed from the request.
        mcn: String,
        /// Human-readable reason.
        message: String,
    },
}

/// Why a response frame is not a CARPOS reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The frame holds a byte that is not printable ASCII.
    #[error("reply holds a byte that is not printable ASCII at offset {0}")]
    NotPrintable(usize),
    /// The first field is not `ACK`, `REJ` or `BSY`.
    #[error("unknown reply kind {0:?}")]
    UnknownKind(String),
    /// A field the reply kind needs is absent.
    #[error("reply lacks its {0} field")]
    Missing(&'static str),
    /// A field is present but malformed.
    #[error("reply field {field} is malformed: {value:?}")]
    Malformed {
        /// Which field (`MKE`, `NIC`, ...).
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// Something follows the reply's last field.
    #[error("reply has unexpected trailing text {0:?}")]
    Trailing(String),
}

impl CletsReply {
    /// Parses a response frame's payload.
    pub fn parse(frame: &[u8]) -> Result<Self, ReplyError> {
        if let Some(offset) = frame.iter().position(|b| !(0x20..=0x7E).contains(b)) {
            return Err(ReplyError::NotPrintable(offset));
        }
        // Every byte is printable ASCII, so this cannot fail.
        let text = std::str::from_utf8(frame).map_err(|e| ReplyError::NotPrintable(e.valid_up_to()))?;
        Self::parse_str(text)
    }

    /// Parses a response given as text (see [`CletsReply::parse`]).
    pub fn parse_str(text: &str) -> Result<Self, ReplyError> {
        let (kind, mut rest) = text.split_once('.').unwrap_or((text, ""));
        if !matches!(kind, "ACK" | "REJ" | "BSY") {
            return Err(ReplyError::UnknownKind(kind.to_owned()));
        }
        // Header: MKE, ORI, MCN, each followed by '.'.
        let mut header = [""; 3];
        for (slot, name) in header.iter_mut().zip(["MKE", "ORI", "MCN"]) {
            let (value, tail) = rest.split_once('.').ok_or(ReplyError::Missing(name))?;
            if value.is_empty() || value.contains('/') {
                return Err(ReplyError::Malformed {
                    field: name,
                    value: value.to_owned(),
                });
            }
            *slot = value;
            rest = tail;
        }
        let [mke, ori, mcn] = header.map(str::to_owned);
        match kind {
            "ACK" => {
                let rest = rest.strip_suffix('.').unwrap_or(rest);
                let (nic_field, fcn_field) = rest.split_once('.').unwrap_or((rest, ""));
                let nic = tagged(nic_field, "NIC")?;
                let fcn = tagged(fcn_field, "FCN")?;
                if fcn.contains('.') {
                    let (fcn, trailing) = fcn.split_once('.').unwrap_or_default();
                    return Err(if is_fcn(fcn) {
                        ReplyError::Trailing(trailing.to_owned())
                    } else {
                        ReplyError::Malformed {
                            field: "FCN",
                            value: fcn.to_owned(),
                        }
                    });
                }
                if !is_nic(nic) {
                    return Err(ReplyError::Malformed {
                        field: "NIC",
                        value: nic.to_owned(),
                    });
                }
                if !is_fcn(fcn) {
                    return Err(ReplyError::Malformed {
                        field: "FCN",
                        value: fcn.to_owned(),
                    });
                }
                Ok(Self::Ack {
                    mke,
                    ori,
                    mcn,
                    nic: nic.to_owned(),
                    fcn: fcn.to_owned(),
                })
            }
            "REJ" => {
                let (err_field, msg_field) = rest.split_once('.').unwrap_or((rest, ""));
                let code = tagged(err_field, "ERR")?;
                if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(ReplyError::Malformed {
                        field: "ERR",
                        value: code.to_owned(),
                    });
                }
                let message = tagged(msg_field, "MSG")?;
                Ok(Self::Rej {
                    mke,
                    ori,
                    mcn,
                    code: code.to_owned(),
                    message: message.to_owned(),
                })
            }
            _ => {
                let message = tagged(rest, "MSG")?;
                Ok(Self::Bsy {
                    mke,
                    ori,
                    mcn,
                    message: message.to_owned(),
                })
            }
        }
    }

    /// Renders the reply as frame text, the inverse of [`CletsReply::parse_str`].
    pub fn to_frame_text(&self) -> String {
        match self {
            Self::Ack {
                mke,
                ori,
                mcn,
                nic,
                fcn,
            } => format!("ACK.{mke}.{ori}.{mcn}.NIC/{nic}.FCN/{fcn}"),
            Self::Rej {
                mke,
                ori,
                mcn,
                code,
                message,
            } => {
                format!("REJ.{mke}.{ori}.{mcn}.ERR/{code}.MSG/{message}")
            }
            Self::Bsy { mke, ori, mcn, message } => format!("BSY.{mke}.{ori}.{mcn}.MSG/{message}"),
        }
    }

    /// The message key echoed from the request.
    pub fn mke(&self) -> &str {
        match self {
            Self::Ack { mke, .. } | Self::Rej { mke, .. } | Self::Bsy { mke, .. } => mke,
        }
    }

    /// The originating agency identifier echoed from the request.
    pub fn ori(&self) -> &str {
        match self {
            Self::Ack { ori, .. } | Self::Rej { ori, .. } | Self::Bsy { ori, .. } => ori,
        }
    }

    /// The message control number echoed from the request.
    pub fn mcn(&self) -> &str {
        match self {
            Self::Ack { mcn, .. } | Self::Rej { mcn, .. } | Self::Bsy { mcn, .. } => mcn,
        }
    }
}

impl fmt::Display for CletsReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_frame_text())
    }
}

/// Returns the value of a `TAG/value` field, checking the tag.
fn tagged<'a>(field: &'a str, tag: &'static str) -> Result<&'a str, ReplyError> {
    if field.is_empty() {
        return Err(ReplyError::Missing(tag));
    }
    match field.split_once('/') {
        Some((t, value)) if t == tag => Ok(value),
        _ => Err(ReplyError::Malformed {
            field: tag,
            value: field.to_owned(),
        }),
    }
}

/// A NIC is one uppercase letter then 9 digits.
pub fn is_nic(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

/// An FCN is 13 digits.
pub fn is_fcn(s: &str) -> bool {
    s.len() == 13 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MCN: &str = "00010ABCDEFGHIJKLMNO";

    fn ack() -> CletsReply {
        CletsReply::Ack {
            mke: "EPO".into(),
            ori: "CA034025J".into(),
            mcn: MCN.into(),
            nic: "H123456789".into(),
            fcn: "0340000012345".into(),
        }
    }

    /// Each reply kind renders to the ICD text and parses back to the same value.
    #[test]
    fn every_kind_round_trips() {
        let rej = CletsReply::Rej {
            mke: "MPO".into(),
            ori: "CA034025J".into(),
            mcn: MCN.into(),
            code: "E04".into(),
            message: "UNKNOWN NIC".into(),
        };
        let bsy = CletsReply::Bsy {
            mke: "CPO".into(),
            ori: "CA034025J".into(),
            mcn: MCN.into(),
            message: "CARPOS BUSY, RETRY LATER".into(),
        };
        assert_eq!(
            ack().to_frame_text(),
            format!("ACK.EPO.CA034025J.{MCN}.NIC/H123456789.FCN/0340000012345")
        );
        assert_eq!(
            rej.to_frame_text(),
            format!("REJ.MPO.CA034025J.{MCN}.ERR/E04.MSG/UNKNOWN NIC")
        );
        assert_eq!(
            bsy.to_frame_text(),
            format!("BSY.CPO.CA034025J.{MCN}.MSG/CARPOS BUSY, RETRY LATER")
        );
        for reply in [ack(), rej, bsy] {
            assert_eq!(CletsReply::parse(reply.to_frame_text().as_bytes()).unwrap(), reply);
        }
    }

    /// The accessors give the echoed header whatever the reply kind.
    #[test]
    fn accessors_give_the_echoed_header() {
        let reply = ack();
        assert_eq!((reply.mke(), reply.ori(), reply.mcn()), ("EPO", "CA034025J", MCN));
    }

    /// A message text containing `.` is kept whole, because MSG is the last field.
    #[test]
    fn message_text_keeps_periods() {
        let text = format!("REJ.EPO.CA034025J.{MCN}.ERR/E03.MSG/BAD DOB. SEE MANUAL 4.2.");
        match CletsReply::parse_str(&text).unwrap() {
            CletsReply::Rej { message, .. } => assert_eq!(message, "BAD DOB. SEE MANUAL 4.2."),
            other => panic!("expected REJ, got {other:?}"),
        }
    }

    /// An ACK with a trailing `.` (request-style field terminator) is accepted.
    #[test]
    fn ack_with_trailing_period_is_accepted() {
        let text = format!("{}.", ack().to_frame_text());
        assert_eq!(CletsReply::parse_str(&text).unwrap(), ack());
    }

    /// A rejection of a malformed request still parses when the echoed header is odd.
    #[test]
    fn odd_echoed_header_still_parses_as_rejection() {
        let reply = CletsReply::parse_str("REJ.EPO.CA03.12.ERR/E06.MSG/INVALID ORI").unwrap();
        assert_eq!(reply.ori(), "CA03");
    }

    /// Malformed replies give a typed error, never a panic.
    #[test]
    fn malformed_replies_are_typed_errors() {
        use ReplyError::*;
        let cases: Vec<(String, ReplyError)> = vec![
            (String::new(), UnknownKind(String::new())),
            ("NAK.EPO.CA034025J.X.MSG/NO".into(), UnknownKind("NAK".into())),
            ("ACK".into(), Missing("MKE")),
            ("ACK.EPO.CA034025J".into(), Missing("ORI")),
            (format!("ACK.EPO.CA034025J.{MCN}"), Missing("MCN")),
            (format!("ACK.EPO.CA034025J.{MCN}."), Missing("NIC")),
            (
                format!("ACK.EPO..{MCN}.NIC/H123456789.FCN/0340000012345"),
                Malformed {
                    field: "ORI",
                    value: String::new(),
                },
            ),
            (format!("ACK.EPO.CA034025J.{MCN}.NIC/H123456789"), Missing("FCN")),
            (
                format!("ACK.EPO.CA034025J.{MCN}.NIC/123456789.FCN/0340000012345"),
                Malformed {
                    field: "NIC",
                    value: "123456789".into(),
                },
            ),
            (
                format!("ACK.EPO.CA034025J.{MCN}.NIC/H123456789.FCN/034000001234"),
                Malformed {
                    field: "FCN",
                    value: "034000001234".into(),
                },
            ),
            (
                format!("ACK.EPO.CA034025J.{MCN}.FCN/0340000012345.NIC/H123456789"),
                Malformed {
                    field: "NIC",
                    value: "FCN/0340000012345".into(),
                },
            ),
            (
                format!("ACK.EPO.CA034025J.{MCN}.NIC/H123456789.FCN/0340000012345.XYZ/1"),
                Trailing("XYZ/1".into()),
            ),
            (format!("REJ.EPO.CA034025J.{MCN}.ERR/E03"), Missing("MSG")),
            (
                format!("REJ.EPO.CA034025J.{MCN}.ERR/.MSG/X"),
                Malformed {
                    field: "ERR",
                    value: String::new(),
                },
            ),
            (
                format!("REJ.EPO.CA034025J.{MCN}.MSG/X"),
                Malformed {
                    field: "ERR",
                    value: "MSG/X".into(),
                },
            ),
            (format!("BSY.EPO.CA034025J.{MCN}."), Missing("MSG")),
            (
                format!("BSY.EPO.CA034025J.{MCN}.ERR/E01"),
                Malformed {
                    field: "MSG",
                    value: "ERR/E01".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(CletsReply::parse_str(&text), Err(expected), "parsing {text:?}");
        }
    }

    /// Control characters and non-ASCII bytes are refused with their offset.
    #[test]
    fn unprintable_bytes_are_refused() {
        assert_eq!(CletsReply::parse(b"ACK.EPO\n"), Err(ReplyError::NotPrintable(7)));
        assert_eq!(CletsReply::parse("BSY.É".as_bytes()), Err(ReplyError::NotPrintable(4)));
    }

    /// NIC and FCN checks accept exactly the ICD shapes.
    #[test]
    fn nic_and_fcn_shapes() {
        assert!(is_nic("H123456789"));
        assert!(!is_nic("h123456789"));
        assert!(!is_nic("H12345678"));
        assert!(!is_nic("HH23456789"));
        assert!(is_fcn("0340000012345"));
        assert!(!is_fcn("034000001234X"));
    }
}
