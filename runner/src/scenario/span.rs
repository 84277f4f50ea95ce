//! Source positions: every token, node and diagnostic carries one.

/// A region of a source file. `line` and `col` are 1-based; `col` counts characters,
/// so a caret under a non-ASCII line still points at the right place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    pub line: u32,
    pub col: u32,
}

impl Span {
    /// A span covering `self` through the end of `other` (both on the same line).
    pub fn to(self, other: Span) -> Span {
        Span {
            len: (other.offset + other.len).saturating_sub(self.offset),
            ..self
        }
    }

    /// The byte range this span covers.
    pub fn range(self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}
