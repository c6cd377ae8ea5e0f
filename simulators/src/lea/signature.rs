//! The request signature of ICD §8:
//! `X-POR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(agency secret, "<t>.<body>")>`.
//!
//! - The header is a comma-separated list of `key=value` parts. `t` must appear once, as decimal digits;
//!   `v1` at least once (a sender rotating secrets may send one per secret); other keys are ignored.
//! - The MAC covers `t` exactly as sent, a `.`, and the body bytes.
//! - A `t` more than the allowed skew away from the receiver's clock is refused, so a captured request
//!   cannot be replayed later.
//! - The MAC is compared in constant time (`hmac`'s `verify_slice`).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The header's name.
pub const HEADER: &str = "x-por-signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused (each a `401`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-POR-Signature` header.
    #[error("the X-POR-Signature header is required")]
    Missing,
    /// The header is not `t=<digits>,v1=<64 hex digits>`.
    #[error("the X-POR-Signature header must be t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    /// `t` is too far from the receiver's clock.
    #[error("the signature timestamp is too far from the receiver's clock")]
    Stale,
    /// No `v1` matches the body under the agency's secret.
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8], t: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value a sender puts on `body` at unix time `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let digest = mac(secret, &t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(digest))
}

/// Checks a request's signature header against `body`, at receiver time `now` (unix seconds).
pub fn verify(
    header: Option<&[u8]>,
    secret: &[u8],
    body: &[u8],
    now: i64,
    max_skew_secs: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match key.trim() {
            "t" if t.is_none() => t = Some(value.trim()),
            "t" => return Err(SignatureError::Malformed),
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    let t_text = t.ok_or(SignatureError::Malformed)?;
    if t_text.is_empty() || t_text.len() > 12 || !t_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let t: i64 = t_text.parse().map_err(|_| SignatureError::Malformed)?;
    let decoded: Vec<Vec<u8>> = signatures
        .iter()
        .map(|s| hex::decode(s).ok().filter(|bytes| bytes.len() == 32))
        .collect::<Option<_>>()
        .ok_or(SignatureError::Malformed)?;
    if decoded.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(t) > max_skew_secs {
        return Err(SignatureError::Stale);
    }
    let base = mac(secret, t_text, body);
    if decoded.iter().any(|sig| base.clone().verify_slice(sig).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// A signature made with `sign` verifies, and is the HMAC-SHA256 of "<t>.<body>".
    #[test]
    fn sign_then_verify() {
        let header = sign(b"s3cret", NOW, b"{}");
        assert!(header.starts_with("t=1800000000,v1="));
        assert_eq!(verify(Some(header.as_bytes()), b"s3cret", b"{}", NOW + 10, 300), Ok(()));
        // Known answer, computed independently: HMAC-SHA256("key", "1.x").
        let known = sign(b"key", 1, b"x");
        let expected = {
            let mut m = HmacSha256::new_from_slice(b"key").unwrap();
            m.update(b"1.x");
            hex::encode(m.finalize().into_bytes())
        };
        assert_eq!(known, format!("t=1,v1={expected}"));
    }

    /// Wrong secret, changed body, stale time and malformed headers are each refused.
    #[test]
    fn refusals() {
        let header = sign(b"s3cret", NOW, b"{}");
        let check = |h: &str, body: &[u8], now: i64| verify(Some(h.as_bytes()), b"s3cret", body, now, 300);
        assert_eq!(check(&header, b"{ }", NOW), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(Some(header.as_bytes()), b"other", b"{}", NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(check(&header, b"{}", NOW + 301), Err(SignatureError::Stale));
        assert_eq!(check(&header, b"{}", NOW - 301), Err(SignatureError::Stale));
        assert_eq!(verify(None, b"s3cret", b"{}", NOW, 300), Err(SignatureError::Missing));
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=-5,v1=00",
            "t=1,t=1,v1=00",
            "garbage",
        ] {
            assert_eq!(check(bad, b"{}", NOW), Err(SignatureError::Malformed), "{bad}");
        }
        let short = format!("t={NOW},v1=abcd");
        assert_eq!(check(&short, b"{}", NOW), Err(SignatureError::Malformed));
    }

    /// With several `v1` values (secret rotation), one match is enough; unknown keys are ignored.
    #[test]
    fn several_signatures() {
        let good = sign(b"s3cret", NOW, b"{}");
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW}, v1={}, v1={v1}, v0=whatever", "0".repeat(64));
        assert_eq!(verify(Some(header.as_bytes()), b"s3cret", b"{}", NOW, 300), Ok(()));
    }
}
