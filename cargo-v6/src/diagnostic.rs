//! Places in files that errors point at, rendered the way rustc and cargo do
//! (`--> v6.toml:4:9` followed by the source line and a marker).

use std::ops::Range;

/// A span in a file the user wrote, kept with the file's text so that an error can show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The path as the user would type it (`v6.toml`, `sub/pyproject.toml`).
    pub path: String,
    /// The whole text of the file.
    pub source: String,
    /// Byte range of the offending key or value.
    pub span: Range<usize>,
}

impl Location {
    /// A location in `source` (the text of `path`) at byte range `span`.
    pub fn new(path: impl Into<String>, source: impl Into<String>, span: Range<usize>) -> Self {
        Location {
            path: path.into(),
            source: source.into(),
            span,
        }
    }

    /// 1-based line and column (column counted in characters, not bytes), for JSON errors.
    pub fn line_col(&self) -> (usize, usize) {
        let start = self.span.start.min(self.source.len());
        let before = &self.source[..floor_char_boundary(&self.source, start)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
