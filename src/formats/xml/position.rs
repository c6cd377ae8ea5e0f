//! Byte offsets to `line:column` locations.

use crate::model::Position;

/// Turns byte offsets in one input into 1-based `line:column` locations.
///
/// The reader asks for offsets in increasing order, so the cursor only moves
/// forward and the input is scanned once overall; asking for an earlier offset
/// (an error position) rescans from the start. Columns count characters, not
/// bytes: a UTF-8 continuation byte does not start a column.
///
/// The reader asks for a location at every element, a few dozen bytes
/// apart, so each step must be cheap: newlines are found with `memchr`'s
/// vectorised search, and in an all-ASCII input (checked once) a column is
/// a byte count.
pub(super) struct LineIndex<'a> {
    input: &'a [u8],
    /// The input holds no byte above 0x7F.
    ascii: bool,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> LineIndex<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
        LineIndex {
            input,
            ascii: input.is_ascii(),
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    /// The `(line, column)` of the byte at `offset` (clamped to the input).
    pub(super) fn line_column(&mut self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.input.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
            self.column = 1;
        }
        let span = &self.input[self.offset..offset];
        match memchr::memrchr(b'\n', span) {
            None => self.column += self.characters(span),
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', &span[..=last]).count();
                self.column = 1 + self.characters(&span[last + 1..]);
            }
        }
        self.offset = offset;
        (self.line, self.column)
    }

    /// How many characters `bytes` holds.
    fn characters(&self, bytes: &[u8]) -> usize {
        if self.ascii {
            bytes.len()
        } else {
            bytes.iter().fold(0usize, |n, &b| n + usize::from(b & 0xC0 != 0x80))
        }
    }

    /// The position of the byte at `offset`.
    pub(super) fn position(&mut self, offset: usize) -> Position {
        let (line, column) = self.line_column(offset);
        Position::new(line, column)
    }

    /// The location of the byte at `offset`, as `line:column`.
    pub(super) fn locate(&mut self, offset: usize) -> String {
        let (line, column) = self.line_column(offset);
        format!("{line}:{column}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines and columns are 1-based and columns count characters.
    #[test]
    fn counts_lines_and_characters() {
        let text = "ab\ncé<x\n\n<y";
        let mut index = LineIndex::new(text.as_bytes());
        assert_eq!(index.locate(0), "1:1");
        assert_eq!(index.locate(2), "1:3");
        assert_eq!(index.locate(3), "2:1");
        assert_eq!(index.locate(text.find('<').unwrap()), "2:3");
        assert_eq!(index.locate(text.rfind('<').unwrap()), "4:1");
        // Backwards works too.
        assert_eq!(index.locate(1), "1:2");
        assert_eq!(index.locate(usize::MAX), "4:3");
    }

    /// An all-ASCII input counts columns in bytes, with the same answers as
    /// counting characters.
    #[test]
    fn ascii_input_counts_the_same() {
        let text = "<a>\n  <b>x</b>\n\n<c/>";
        let mut index = LineIndex::new(text.as_bytes());
        assert!(index.ascii);
        assert_eq!(index.locate(text.find("<b").unwrap()), "2:3");
        assert_eq!(index.locate(text.find("x").unwrap()), "2:6");
        assert_eq!(index.locate(text.find("<c").unwrap()), "4:1");
        assert_eq!(index.locate(1), "1:2");
    }
}
