//! Writes a [`CletsRequest`]: the header, then each `TAG/value.` straight
//! into the request text, which is what is sent.

use super::CletsRequest;

/// A field being written straight into a request's text
/// ([`CletsRequest::start_field`]).
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
        let mut text = String::with_capacity(512);
        let mut header = [0; 3];
        for (end, part) in header.iter_mut().zip([mke, ori, mcn]) {
            text.push_str(part);
            *end = offset(text.len());
            text.push('.');
        }
        CletsRequest {
            text,
            header,
            fields: Vec::with_capacity(32),
        }
    }

    /// Appends `TAG/value.`; the value may not contain `.`.
    pub fn push(&mut self, tag: &str, value: &str) {
        let field = self.start_field(tag);
        self.text.push_str(value);
        self.finish_field(field);
    }

    /// Writes `TAG/`; the caller then writes the value into
    /// [`value_text`](Self::value_text) and finishes or cancels the field.
    pub(crate) fn start_field(&mut self, tag: &str) -> OpenField {
        let start = self.text.len();
        self.text.push_str(tag);
        let slash = self.text.len();
        self.text.push('/');
        OpenField { start, slash }
    }

    /// The text to write the open field's value into.
    pub(crate) fn value_text(&mut self) -> &mut String {
        &mut self.text
    }

    /// The value written so far into the open field.
    pub(crate) fn open_value(&self, field: OpenField) -> &str {
        &self.text[field.slash + 1..]
    }

    /// Ends the open field with `.`.
    pub(crate) fn finish_field(&mut self, field: OpenField) {
        self.text.push('.');
        self.fields.push((offset(field.start), offset(field.slash)));
    }

    /// Removes the open field, as if it had never been started.
    pub(crate) fn cancel_field(&mut self, field: OpenField) {
        self.text.truncate(field.start);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and every field end with `.`; the parts read back.
    #[test]
    fn text_shape() {
        let mut r = CletsRequest::new("EPO", "CA034025J", "00010ABCDEFGHIJKLMNO");
        r.push("NAM", "DOE, JOHN");
        let open = r.start_field("MIS");
        r.value_text().push_str("XY");
        r.cancel_field(open);
        r.push("PCO", "01");
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
}
