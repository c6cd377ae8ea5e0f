//! Writes a [`CletsRequest`] as ICD §6 request text.

use super::CletsRequest;

impl CletsRequest {
    /// The request as sent: `MKE.ORI.MCN.TAG/value.TAG/value.`
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.fields.iter().map(|(t, v)| t.len() + v.len() + 2).sum::<usize>());
        for part in [&self.mke, &self.ori, &self.mcn] {
            out.push_str(part);
            out.push('.');
        }
        for (tag, value) in &self.fields {
            out.push_str(tag);
            out.push('/');
            out.push_str(value);
            out.push('.');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and every field end with `.`.
    #[test]
    fn text_shape() {
        let r = CletsRequest {
            mke: "EPO".into(),
            ori: "CA034025J".into(),
            mcn: "00010ABCDEFGHIJKLMNO".into(),
            fields: vec![("NAM".into(), "DOE, JOHN".into()), ("PCO".into(), "01".into())],
        };
        assert_eq!(r.to_text(), "EPO.CA034025J.00010ABCDEFGHIJKLMNO.NAM/DOE, JOHN.PCO/01.");
        assert_eq!(r.get_all("PCO").collect::<Vec<_>>(), ["01"]);
    }
}
