//! Writes a [`CletsRequest`]: the header, then each `TAG/value.` straight
//! into the request text, which is what is sent. [`CletsRequest::push`]
//! appends text; the translator writes through a [`RequestWriter`], which
//! appends bytes and checks the text once at the end.

use super::CletsRequest;

/// A field being written straight into a request's text
/// ([`RequestWriter::start_field`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenField {
    start: usize,
    slash: usize,
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl CletsRequest {
    /// A request with its header and no fields yet. None of the parts may
    /// contain `.`.
    pub fn new(mke: &str, ori: &str, mcn: &str) -> CletsRequest {
        RequestWriter::new(mke.as_bytes(), ori.as_bytes(), mcn.as_bytes()).into_request()
    }

    /// Appends `TAG/value.`; the value may not contain `.`.
    pub fn push(&mut self, tag: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(tag);
        let slash = self.text.len();
        self.text.push('/');
        self.text.push_str(value);
        self.text.push('.');
        self.fields.push((offset(start), offset(slash)));
    }

    /// The request as sent: `MKE.ORI.MCN.TAG/value.TAG/value.`
    pub fn as_text(&self) -> &str {
        &self.text
    }

    /// The request as sent, as an owned string.
    pub fn to_text(&self) -> String {
        self.text.clone()
    }

    /// The request as sent, without copying.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// Builds a request's text as bytes, for the translator: every value it
/// writes is CLETS text (printable ASCII), so bytes are appended and changed
/// in place without a UTF-8 check each, and the text is checked once, when
/// the request is made ([`RequestWriter::into_request`]).
#[derive(Debug)]
pub(crate) struct RequestWriter {
    text: Vec<u8>,
    header: [u32; 3],
    fields: Vec<(u32, u32)>,
}

impl RequestWriter {
    /// The header `MKE.ORI.MCN.`; none of the parts may contain `.`.
    pub(crate) fn new(mke: &[u8], ori: &[u8], mcn: &[u8]) -> RequestWriter {
        let mut text = Vec::with_capacity(512);
        let mut header = [0; 3];
        for (end, part) in header.iter_mut().zip([mke, ori, mcn]) {
            text.extend_from_slice(part);
            *end = offset(text.len());
            text.push(b'.');
        }
        RequestWriter {
            text,
            header,
            fields: Vec::with_capacity(32),
        }
    }

    /// Writes `TAG/`; the caller then writes the value into
    /// [`value`](Self::value) and finishes or cancels the field.
    pub(crate) fn start_field(&mut self, tag: &str) -> OpenField {
        let start = self.text.len();
        match *tag.as_bytes() {
            // CLETS tags are three letters: one four-byte write.
            [a, b, c] => self.text.extend_from_slice(&[a, b, c, b'/']),
            _ => {
                self.text.extend_from_slice(tag.as_bytes());
                self.text.push(b'/');
            }
        }
        OpenField {
            start,
            slash: start + tag.len(),
        }
    }

    /// The bytes to write the open field's value into.
    pub(crate) fn value(&mut self) -> &mut Vec<u8> {
        &mut self.text
    }

    /// How many bytes the open field's value has so far.
    pub(crate) fn value_len(&self, field: OpenField) -> usize {
        self.text.len() - field.slash - 1
    }

    /// Ends the open field with `.`.
    pub(crate) fn finish_field(&mut self, field: OpenField) {
        self.text.push(b'.');
        self.fields.push((offset(field.start), offset(field.slash)));
    }

    /// Removes the open field, as if it had never been started.
    pub(crate) fn cancel_field(&mut self, field: OpenField) {
        self.text.truncate(field.start);
    }

    /// Appends `TAG/value.`; the value may not contain `.`.
    pub(crate) fn push(&mut self, tag: &str, value: &[u8]) {
        let field = self.start_field(tag);
        self.text.extend_from_slice(value);
        self.finish_field(field);
    }

    /// The request. Its text is ASCII by construction; should a byte that
    /// is not have slipped in, it becomes U+FFFD rather than a panic, and
    /// the CLETS reader refuses it.
    pub(crate) fn into_request(self) -> CletsRequest {
        let text = String::from_utf8(self.text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        CletsRequest {
            text,
            header: self.header,
            fields: self.fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and every field end with `.`; the parts read back.
    #[test]
    fn text_shape() {
        let mut w = RequestWriter::new(b"EPO", b"CA034025J", b"00010ABCDEFGHIJKLMNO");
        w.push("NAM", b"DOE, JOHN");
        let open = w.start_field("MIS");
        w.value().extend_from_slice(b"XY");
        assert_eq!(w.value_len(open), 2);
        w.cancel_field(open);
        w.push("PCO", b"01");
        let r = w.into_request();
        assert_eq!(r.to_text(), "EPO.CA034025J.00010ABCDEFGHIJKLMNO.NAM/DOE, JOHN.PCO/01.");
        assert_eq!(
            (r.mke(), r.ori(), r.mcn()),
            ("EPO", "CA034025J", "00010ABCDEFGHIJKLMNO")
        );
        assert_eq!(r.fields().collect::<Vec<_>>(), [("NAM", "DOE, JOHN"), ("PCO", "01")]);
        assert_eq!(r.get_all("PCO").collect::<Vec<_>>(), ["01"]);
        assert_eq!(r.get("NAM"), Some("DOE, JOHN"));
        let empty = CletsRequest::new("EPO", "CA034025J", "M");
        assert_eq!(empty.fields().count(), 0);
    }

    /// The public writer and the translator's byte writer give the same
    /// request, tags of any length included.
    #[test]
    fn both_writers_agree() {
        let mut r = CletsRequest::new("SPO", "CA034025J", "00040ABCDEFGHIJKLMNO");
        let mut w = RequestWriter::new(b"SPO", b"CA034025J", b"00040ABCDEFGHIJKLMNO");
        for (tag, value) in [
            ("NIC", "H000000001"),
            ("SV", "X"),
            ("LONGTAG", ""),
            ("PNO", "24DV01234"),
        ] {
            r.push(tag, value);
            w.push(tag, value.as_bytes());
        }
        assert_eq!(w.into_request(), r);
    }
}
