//! The signed order's image (`por:OrderImage`): base64 content, a declared
//! SHA-256 and a MIME type, checked against each other.

use data_encoding::BASE64;
use sha2::{Digest, Sha256};

use crate::model::{ErrorCode, FieldError, OrderImage};

use super::values::quote;

/// The MIME types ICD §2 allows for the signed order.
pub(super) const MIME_TYPES: [&str; 2] = ["application/pdf", "image/tiff"];

/// The longest base64 text (whitespace removed) that can decode to at most
/// `max_bytes` bytes.
pub(super) fn max_base64_len(max_bytes: usize) -> usize {
    max_bytes.div_ceil(3).saturating_mul(4)
}

/// What the reader collected from one `por:OrderImage` element.
#[derive(Debug, Default)]
pub(super) struct RawImage {
    /// `mimeType` attribute, trimmed.
    pub(super) mime_type: Option<String>,
    /// `sha256` attribute, trimmed.
    pub(super) sha256: Option<String>,
    /// Base64 content with whitespace removed.
    pub(super) base64: Vec<u8>,
    /// Where the element starts.
    pub(super) location: String,
}

/// Checks the attributes the XSD requires: both present (`MISSING`), the
/// type one of [`MIME_TYPES`] (`INVALID_CODE`), the digest 64 hex digits
/// (`INVALID_FORMAT`). Returns the declared digest, lowercase, when it has
/// the right shape. An empty element (no image) is checked too.
pub(super) fn check_attributes(raw: &RawImage, errors: &mut Vec<FieldError>) -> Option<String> {
    let at = |code, field: &str, text: String| FieldError::new(code, field, text).at(&raw.location);
    match raw.mime_type.as_deref() {
        None => errors.push(at(
            ErrorCode::Missing,
            "image.mime_type",
            "the mimeType attribute is required".into(),
        )),
        Some(m) if !MIME_TYPES.contains(&m) => errors.push(at(
            ErrorCode::InvalidCode,
            "image.mime_type",
            format!("mimeType {} is not application/pdf or image/tiff", quote(m)),
        )),
        Some(_) => {}
    }
    let declared = raw.sha256.as_deref().map(str::to_ascii_lowercase);
    match declared {
        None => {
            errors.push(at(
                ErrorCode::Missing,
                "image.sha256",
                "the sha256 attribute is required".into(),
            ));
            None
        }
        Some(d) if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            errors.push(at(
                ErrorCode::InvalidFormat,
                "image.sha256",
                format!("sha256 {} is not 64 hex digits", quote(&d)),
            ));
            None
        }
        Some(d) => Some(d),
    }
}

/// Checks the attributes, then decodes the image and checks it against its
/// digest. Problems go to `errors`; the image is returned whenever its bytes
/// decoded and both attributes were present, so that the message stays as
/// complete as possible.
pub(super) fn decode_image(raw: RawImage, max_bytes: usize, errors: &mut Vec<FieldError>) -> Option<OrderImage> {
    let declared = check_attributes(&raw, errors);
    let at = |code, field: &str, text: String| FieldError::new(code, field, text).at(&raw.location);
    let data = match BASE64.decode(&raw.base64) {
        Ok(data) => data,
        Err(e) => {
            errors.push(at(ErrorCode::InvalidFormat, "image", format!("bad base64: {e}")));
            return None;
        }
    };
    if data.len() > max_bytes {
        errors.push(at(
            ErrorCode::TooLong,
            "image",
            format!("the image has {} bytes; at most {max_bytes} are accepted", data.len()),
        ));
        return None;
    }
    if let Some(d) = declared.as_deref() {
        let actual = hex::encode(Sha256::digest(&data));
        if actual != d {
            errors.push(at(
                ErrorCode::InvalidFormat,
                "image.sha256",
                format!("sha256 {d} does not match the image, whose sha256 is {actual}"),
            ));
        }
    }
    let declared = declared.or_else(|| raw.sha256.as_deref().map(str::to_ascii_lowercase));
    Some(OrderImage::new(raw.mime_type?, declared?, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(mime: &str, sha: &str, data: &[u8]) -> RawImage {
        RawImage {
            mime_type: Some(mime.into()),
            sha256: Some(sha.into()),
            base64: BASE64.encode(data).into_bytes(),
            location: "3:4".into(),
        }
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// A matching image decodes without errors; an uppercase hash is stored lowercase.
    #[test]
    fn good_image() {
        let mut errors = vec![];
        let image = decode_image(
            raw("image/tiff", &sha(b"II*\0").to_uppercase(), b"II*\0"),
            10,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let image = image.unwrap();
        assert_eq!(image.data.as_deref(), Some(&b"II*\0"[..]));
        assert_eq!(image.sha256, sha(b"II*\0"));
    }

    /// A wrong hash is INVALID_FORMAT on image.sha256, a wrong type INVALID_CODE.
    #[test]
    fn bad_hash_and_type() {
        let mut errors = vec![];
        decode_image(raw("text/plain", &sha(b"other"), b"%PDF"), 10, &mut errors);
        let codes: Vec<_> = errors.iter().map(|e| (e.code, e.field.as_str())).collect();
        assert_eq!(
            codes,
            [
                (ErrorCode::InvalidCode, "image.mime_type"),
                (ErrorCode::InvalidFormat, "image.sha256")
            ]
        );
        assert_eq!(errors[0].location.as_deref(), Some("3:4"));
    }

    /// Bad base64 is INVALID_FORMAT; too many decoded bytes is TOO_LONG.
    #[test]
    fn bad_base64_and_size() {
        let mut errors = vec![];
        let mut r = raw("application/pdf", &sha(b"x"), b"x");
        r.base64 = b"!!!!".to_vec();
        assert!(decode_image(r, 10, &mut errors).is_none());
        assert_eq!(errors[0].code, ErrorCode::InvalidFormat);
        errors.clear();
        assert!(decode_image(raw("application/pdf", &sha(&[0; 11]), &[0; 11]), 10, &mut errors).is_none());
        assert_eq!(errors[0].code, ErrorCode::TooLong);
        assert_eq!(max_base64_len(10), 16);
    }
}
