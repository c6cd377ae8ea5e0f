//! The signed-order image a simulated XML court attaches (`por:OrderImage`,
//! ICD §2): a generated PDF of a scanned page.
//!
//! # Design note
//!
//! A real CMS attaches the signed order as a scanned PDF, tens of KiB to a few
//! MiB. The simulator generates one from an [`ImageSpec`] (a seed and a
//! size), so that a message only holds the spec until it is written: a load
//! run of thousands of orders does not keep megabytes per order in memory,
//! and the same seed gives the same bytes again.
//!
//! The PDF is real and minimal: a header, six objects (catalog, page tree,
//! one US-letter page, its content stream, a Helvetica font and the "scan"),
//! a cross-reference table with exact offsets and a trailer. The scan is an
//! uncompressed 8-bit grey image [`SCAN_WIDTH`] pixels wide, filled with
//! seeded pseudo-random light-grey noise, with as many rows as fit the
//! requested size; the page draws it and writes the order number and form on
//! top. Nothing personal goes into it.
//!
//! Sizes are drawn log-uniformly between [`MIN_PDF_BYTES`] and
//! [`MAX_PDF_BYTES`] (most scans are small, a few are large). A PDF is at
//! most its requested size and less than one scan row shorter. Written in
//! base64, the largest stays far below Porter's limits: 10 MiB decoded image
//! and 16 MiB AMQP message (ICD §0). The publisher keeps the bodies of the
//! messages awaiting a confirm, so an unthrottled run with images holds at
//! most [`CONFIRM_WINDOW`](super::publisher::CONFIRM_WINDOW) bodies of up to
//! about 4 MiB each.

use std::fmt::Write as _;

use data_encoding::BASE64;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The MIME type of the generated image.
pub const PDF_MIME_TYPE: &str = "application/pdf";
/// The smallest generated PDF, in bytes.
pub const MIN_PDF_BYTES: usize = 20 * 1024;
/// The largest generated PDF, in bytes.
pub const MAX_PDF_BYTES: usize = 3 * 1024 * 1024;
/// Pixels (bytes) per row of the scan: a letter page at 200 dpi.
pub const SCAN_WIDTH: usize = 1700;
/// Base64 characters per line inside `por:OrderImage`, as MIME writes them.
pub const BASE64_LINE: usize = 76;

/// What to generate: the same spec always gives the same PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// Seed of the scan's noise.
    pub seed: u64,
    /// Requested size in bytes, between [`MIN_PDF_BYTES`] + [`SCAN_WIDTH`]
    /// and [`MAX_PDF_BYTES`].
    pub size: usize,
}

impl ImageSpec {
    /// A spec with a fresh seed and a log-uniform size, from `rng`.
    pub fn random(rng: &mut impl Rng) -> ImageSpec {
        let low = ((MIN_PDF_BYTES + SCAN_WIDTH) as f64).ln();
        let high = (MAX_PDF_BYTES as f64).ln();
        let size = rng.random_range(low..=high).exp() as usize;
        ImageSpec {
            seed: rng.random(),
            size: size.clamp(MIN_PDF_BYTES + SCAN_WIDTH, MAX_PDF_BYTES),
        }
    }
}

/// A generated image, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderImage {
    /// The PDF bytes.
    pub data: Vec<u8>,
    /// SHA-256 of `data`, 64 lowercase hex digits.
    pub sha256: String,
}

impl OrderImage {
    /// Generates the PDF of `spec` for an order: `caption` (order number
    /// and form id, no personal data) is written on the page.
    pub fn generate(spec: &ImageSpec, caption: &str) -> OrderImage {
        let data = pdf(spec, caption);
        let sha256 = hex::encode(Sha256::digest(&data));
        OrderImage { data, sha256 }
    }

    /// The `por:OrderImage` element, indented by two spaces, with its base64
    /// in lines of [`BASE64_LINE`] characters (XSD `base64Binary` allows
    /// the whitespace).
    pub fn element(&self) -> String {
        let encoded = BASE64.encode(&self.data);
        let mut x = String::with_capacity(encoded.len() + encoded.len() / BASE64_LINE + 128);
        let _ = writeln!(
            x,
            "  <por:OrderImage mimeType=\"{PDF_MIME_TYPE}\" sha256=\"{}\">",
            self.sha256
        );
        for line in encoded.as_bytes().chunks(BASE64_LINE) {
            x.push_str("    ");
            // Base64 is ASCII.
            x.push_str(std::str::from_utf8(line).unwrap_or_default());
            x.push('\n');
        }
        x.push_str("  </por:OrderImage>\n");
        x
    }
}

/// The PDF of `spec`, with `caption` on its page.
pub fn pdf(spec: &ImageSpec, caption: &str) -> Vec<u8> {
    let size = spec.size.clamp(MIN_PDF_BYTES + SCAN_WIDTH, MAX_PDF_BYTES);
    let overhead = build(spec.seed, caption, 1).len() - SCAN_WIDTH;
    // The row count's digits appear in the file; one row fewer than the
    // estimate keeps the result within the requested size.
    let mut rows = (size.saturating_sub(overhead) / SCAN_WIDTH).max(1);
    loop {
        let pdf = build(spec.seed, caption, rows);
        if pdf.len() <= size || rows == 1 {
            return pdf;
        }
        rows -= 1;
    }
}

/// A one-page PDF whose scan has `rows` rows.
fn build(seed: u64, caption: &str, rows: usize) -> Vec<u8> {
    let caption: String = caption
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ' ')
        .collect();
    let content = format!("q 612 0 0 792 0 0 cm /Im1 Do Q\nBT /F1 14 Tf 72 740 Td (SIGNED ORDER {caption}) Tj ET\n");
    let mut scan = vec![0u8; SCAN_WIDTH * rows];
    StdRng::seed_from_u64(seed).fill_bytes(&mut scan);
    // Light grey paper: keep the noise in 0xC0..=0xFF.
    for b in &mut scan {
        *b |= 0xC0;
    }

    let mut out: Vec<u8> = Vec::with_capacity(scan.len() + 1024);
    // A binary-comment line after the header tells tools the file is binary.
    out.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
    let mut offsets = Vec::new();
    let mut object = |out: &mut Vec<u8>, body: &[u8]| {
        offsets.push(out.len());
        let _ = writeln!(Bytes(out), "{} 0 obj", offsets.len());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    object(&mut out, b"<< /Type /Catalog /Pages 2 0 R >>");
    object(&mut out, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    object(
        &mut out,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
          /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
    );
    object(&mut out, &stream("", content.as_bytes()));
    object(&mut out, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    let image_dict = format!(
        "/Type /XObject /Subtype /Image /Width {SCAN_WIDTH} /Height {rows} /ColorSpace /DeviceGray /BitsPerComponent 8 "
    );
    object(&mut out, &stream(&image_dict, &scan));

    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
    for offset in &offsets {
        let _ = writeln!(tail, "{offset:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

/// A stream object's body: `<< dict /Length n >> stream … endstream`.
fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut s = format!("<< {dict}/Length {} >>\nstream\n", data.len()).into_bytes();
    s.extend_from_slice(data);
    s.extend_from_slice(b"\nendstream");
    s
}

/// `write!` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object the cross-reference table lists starts exactly at its
    /// offset, and `startxref` points at the table.
    fn assert_xref_is_exact(pdf: &[u8]) {
        let text = String::from_utf8_lossy(pdf);
        let tail = &text[text.rfind("startxref\n").unwrap()..];
        let xref: usize = tail.lines().nth(1).unwrap().parse().unwrap();
        assert!(pdf[xref..].starts_with(b"xref\n0 7\n0000000000 65535 f \n"));
        let table = std::str::from_utf8(&pdf[xref..]).unwrap();
        for (n, entry) in table.lines().skip(3).take(6).enumerate() {
            assert_eq!(entry.len(), 19, "each entry is 20 bytes with its LF: {entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            assert!(pdf[offset..].starts_with(format!("{} 0 obj\n", n + 1).as_bytes()));
        }
    }

    /// A generated PDF is a real PDF: header, exact cross-references, a
    /// trailer naming the catalog, a stream whose /Length is its length, and
    /// the caption on the page.
    #[test]
    fn the_pdf_is_well_formed() {
        let spec = ImageSpec { seed: 3, size: 40_000 };
        let pdf = pdf(&spec, "24DV01234 DV-130");
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        assert_xref_is_exact(&pdf);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("trailer\n<< /Size 7 /Root 1 0 R >>"));
        assert!(text.contains("(SIGNED ORDER 24DV01234 DV-130) Tj"));
        let rows = (pdf.len() - build(3, "24DV01234 DV-130", 1).len()) / SCAN_WIDTH + 1;
        assert!(text.contains(&format!("/Height {rows} ")));
        assert!(text.contains(&format!("/Length {} >>\nstream\n", rows * SCAN_WIDTH)));
    }

    /// Drawn sizes stay between 20 KiB and 3 MiB; each PDF is at most its
    /// requested size and less than one scan row shorter; the same spec gives
    /// the same bytes, another seed other bytes.
    #[test]
    fn sizes_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut sizes = Vec::new();
        for _ in 0..12 {
            let spec = ImageSpec::random(&mut rng);
            assert!((MIN_PDF_BYTES + SCAN_WIDTH..=MAX_PDF_BYTES).contains(&spec.size));
            let pdf = pdf(&spec, "X");
            assert!((MIN_PDF_BYTES..=MAX_PDF_BYTES).contains(&pdf.len()));
            assert!(pdf.len() <= spec.size && spec.size - pdf.len() < SCAN_WIDTH);
            sizes.push(pdf.len());
        }
        assert!(sizes.iter().any(|s| *s < 200 * 1024), "{sizes:?}");
        for extreme in [0, MAX_PDF_BYTES, usize::MAX] {
            let pdf = pdf(&ImageSpec { seed: 9, size: extreme }, "X");
            assert!((MIN_PDF_BYTES..=MAX_PDF_BYTES).contains(&pdf.len()), "{extreme}");
            assert_xref_is_exact(&pdf);
        }
        let spec = ImageSpec { seed: 5, size: 30_000 };
        assert_eq!(pdf(&spec, "A"), pdf(&spec, "A"));
        assert_ne!(pdf(&spec, "A"), pdf(&ImageSpec { seed: 6, ..spec }, "A"));
    }

    /// The element's sha256 is the SHA-256 of the bytes its base64 decodes
    /// to, and those bytes are the PDF.
    #[test]
    fn element_carries_the_pdf_and_its_digest() {
        let image = OrderImage::generate(&ImageSpec { seed: 4, size: 25_000 }, "24DV01234");
        let element = image.element();
        let (open, rest) = element.split_once('\n').unwrap();
        assert_eq!(
            open,
            format!(
                "  <por:OrderImage mimeType=\"application/pdf\" sha256=\"{}\">",
                image.sha256
            )
        );
        let base64: String = rest
            .strip_suffix("  </por:OrderImage>\n")
            .unwrap()
            .lines()
            .map(|l| {
                assert!(l.len() <= BASE64_LINE + 4);
                l.trim()
            })
            .collect();
        let decoded = BASE64.decode(base64.as_bytes()).unwrap();
        assert_eq!(decoded, image.data);
        assert_eq!(hex::encode(Sha256::digest(&decoded)), image.sha256);
        assert_eq!(image.sha256.len(), 64);
        assert!(decoded.starts_with(b"%PDF-"));
    }
}
