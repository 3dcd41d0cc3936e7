//! Places in files that errors point at, rendered the way rustc and cargo do
//! (`--> v6.toml:4:9` followed by the source line and a marker).

use std::ops::Range;
use std::path::Path;

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

    /// `PATH:LINE:COL`, as compilers print a place: for JSON errors and lists of problems.
    pub fn place(&self) -> String {
        let (line, col) = self.line_col();
        format!("{}:{line}:{col}", self.path)
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

/// Paths shown in messages use `/` and no leading `./`.
pub fn display(path: &Path) -> String {
    let shown = path.display().to_string();
    shown.strip_prefix("./").unwrap_or(&shown).to_string()
}

/// A problem with the user's input, as every module reports it: what is wrong, where (when it
/// is in a file), and how to fix it. Module errors carry one so that the top-level error can
/// print them all alike without knowing the modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, when it is in a file.
    pub location: Option<Location>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem without a place in a file.
    pub fn new(message: impl Into<String>, help: impl Into<Option<String>>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            help: help.into(),
        }
    }

    /// A problem at `location`.
    pub fn at(message: impl Into<String>, location: Location) -> Self {
        Diagnostic {
            message: message.into(),
            location: Some(location),
            help: None,
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The candidate nearest to `word`, if it is near enough to be a likely typo: what "did you
/// mean" hints offer (keys, values, workspace members).
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
