//! CLETS request text (ICD §6): `MKE.ORI.MCN.` then `TAG/value.` fields.
//!
//! This module only knows the wire shape. Which fields a key carries, their
//! tags and their order come from `mappings/clets.toml` through
//! [`crate::translate::clets`].

/// A CLETS request, ready to be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CletsRequest {
    /// Message key: `EPO`, `MPO`, `CPO`, `XPO` or `SPO`.
    pub mke: String,
    pub ori: String,
    /// Message control number (20 characters, ICD §5).
    pub mcn: String,
    /// `(tag, value)` in wire order; values never contain `.`.
    pub fields: Vec<(String, String)>,
}

impl CletsRequest {
    /// The request as sent: `MKE.ORI.MCN.TAG/value.TAG/value.`
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.fields.len() * 16);
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

    /// The first value of `tag`, if any.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find(|(t, _)| t == tag).map(|(_, v)| v.as_str())
    }

    /// Reads request text back (used by tests and tools). Returns `None`
    /// when the text is not of the request shape.
    pub fn parse(text: &str) -> Option<CletsRequest> {
        let body = text.strip_suffix('.')?;
        let mut parts = body.split('.');
        let mke = parts.next()?.to_string();
        let ori = parts.next()?.to_string();
        let mcn = parts.next()?.to_string();
        let mut fields = Vec::new();
        for p in parts {
            let (tag, value) = p.split_once('/')?;
            fields.push((tag.to_string(), value.to_string()));
        }
        Some(CletsRequest { mke, ori, mcn, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text written and read back gives the same request.
    #[test]
    fn text_round_trips() {
        let r = CletsRequest {
            mke: "EPO".into(),
            ori: "CA034025J".into(),
            mcn: "00010ABCDEFGHIJKLMNO".into(),
            fields: vec![("NAM".into(), "DOE, JOHN".into()), ("PCO".into(), "01".into())],
        };
        let text = r.to_text();
        assert_eq!(text, "EPO.CA034025J.00010ABCDEFGHIJKLMNO.NAM/DOE, JOHN.PCO/01.");
        assert_eq!(CletsRequest::parse(&text), Some(r));
    }
}
