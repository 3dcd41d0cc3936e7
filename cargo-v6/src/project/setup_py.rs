//! The `setup(...)` call of setup.py, scanned for its keyword arguments (`version=`,
//! `name=`, `url=`, `packages=`) without running Python.
//!
//! This is a scanner, not a Python parser: it finds `setup(`, walks its arguments at the top
//! nesting level (skipping strings, comments and nested brackets) and reads `keyword=`. A
//! plain (or `r`/`u`) string literal followed by `,` or `)` is a literal; anything else
//! (`get_version()`, `__version__`, an f-string, concatenation) is not.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// The string literal given as `keyword=` to the `setup(...)` call of setup.py (`name`,
/// `url`), read as [`setup_py`] reads `version`: comments, other calls and expressions are
/// not it.
pub fn setup_py_literal(text: &str, keyword: &str) -> Option<String> {
    match setup_keyword(text, keyword)? {
        Keyword::Literal { content, .. } => Some(text[content].to_string()),
        Keyword::Expression(_) => None,
    }
}

/// The source text of the expression given as `keyword=` to the `setup(...)` call
/// (`packages=["a", "a.sub"]`), comments and other calls aside.
pub fn setup_py_argument<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    match setup_keyword(text, keyword)? {
        Keyword::Literal { span, .. } | Keyword::Expression(span) => Some(&text[span]),
    }
}

/// The value of `keyword=` in the first `setup(...)` call that has one.
pub fn setup_keyword(text: &str, keyword: &str) -> Option<Keyword> {
    static CALLS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(\bdef\s+)?\bsetup\s*\(").expect("valid regex"));
    CALLS.captures_iter(text).find_map(|call| {
        // `def setup(` is a definition, not the call.
        let open = call.get(1).is_none().then(|| call.get(0))??.end();
        call_keyword(text.as_bytes(), open, keyword.as_bytes())
    })
}

/// The value of a keyword argument (`version=`).
pub enum Keyword {
    /// A string literal: the text between the quotes, and the whole literal.
    Literal {
        /// Between the quotes.
        content: Range<usize>,
        /// The whole literal.
        span: Range<usize>,
    },
    /// Any other expression.
    Expression(Range<usize>),
}

/// Scans the arguments of a call whose `(` ends just before `start`, for `keyword=`.
fn call_keyword(text: &[u8], start: usize, keyword: &[u8]) -> Option<Keyword> {
    let mut depth = 0usize;
    let mut i = start;
    // Whether the scanner is at the start of an argument (after `(` or `,`).
    let mut at_argument = true;
    while i < text.len() {
        let byte = text[i];
        match byte {
            b'#' => i = skip_comment(text, i),
            b'"' | b'\'' => {
                i = skip_string(text, i).end;
                at_argument = false;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
                at_argument = false;
            }
            b')' | b']' | b'}' => {
                if depth == 0 {
                    return None; // end of the call
                }
                depth -= 1;
                i += 1;
            }
            b',' => {
                at_argument = depth == 0;
                i += 1;
            }
            _ if byte.is_ascii_whitespace() => i += 1,
            _ if byte.is_ascii_alphabetic() || byte == b'_' => {
                let end = identifier_end(text, i);
                if at_argument && depth == 0 && &text[i..end] == keyword {
                    let eq = skip_space(text, end);
                    if text.get(eq) == Some(&b'=') && text.get(eq + 1) != Some(&b'=') {
                        return Some(keyword_value(text, skip_space(text, eq + 1)));
                    }
                }
                at_argument = false;
                i = end;
            }
            _ => {
                at_argument = false;
                i += 1;
            }
        }
    }
    None
}

/// Classifies the expression starting at `start` (up to the next top-level `,` or `)`).
fn keyword_value(text: &[u8], start: usize) -> Keyword {
    let prefix = identifier_end(text, start);
    let is_plain_prefix = matches!(
        text[start..prefix].to_ascii_lowercase().as_slice(),
        b"" | b"r" | b"u"
    );
    if is_plain_prefix && matches!(text.get(prefix), Some(b'"' | b'\'')) {
        let string = skip_string(text, prefix);
        let after = skip_space(text, string.end);
        if string.closed && matches!(text.get(after), Some(b',' | b')')) {
            return Keyword::Literal {
                content: string.content,
                span: start..string.end,
            };
        }
    }
    Keyword::Expression(start..expression_end(text, start))
}

/// The end of the expression at `start`: the next `,` or `)` at its own nesting level,
/// without trailing whitespace or comments.
fn expression_end(text: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    let mut end = start;
    while i < text.len() {
        match text[i] {
            b'#' => {
                i = skip_comment(text, i);
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(text, i).end;
                end = i;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => break,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => break,
            _ => {}
        }
        if !text[i].is_ascii_whitespace() {
            end = i + 1;
        }
        i += 1;
    }
    // `end` follows the last byte of a non-whitespace character, so it is a char boundary.
    end
}

/// A string literal's extent.
struct StringEnd {
    /// Between the quotes (meaningful only when `closed`).
    content: Range<usize>,
    /// After the closing quote, or where an unclosed string stops.
    end: usize,
    closed: bool,
}

/// Skips a string literal whose opening quote is at `start` (single, double or triple).
fn skip_string(text: &[u8], start: usize) -> StringEnd {
    let quote = text[start];
    let triple = text.get(start + 1) == Some(&quote) && text.get(start + 2) == Some(&quote);
    let quotes = if triple { 3 } else { 1 };
    let mut i = start + quotes;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'\n' if !triple => break,
            byte if byte == quote => {
                if !triple || (text.get(i + 1) == Some(&quote) && text.get(i + 2) == Some(&quote)) {
                    return StringEnd {
                        content: start + quotes..i,
                        end: i + quotes,
                        closed: true,
                    };
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    let end = i.min(text.len());
    StringEnd {
        content: end..end,
        end,
        closed: false,
    }
}

fn skip_comment(text: &[u8], start: usize) -> usize {
    text[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |n| start + n)
}

/// Skips whitespace and comments.
fn skip_space(text: &[u8], mut i: usize) -> usize {
    while i < text.len() {
        match text[i] {
            b'#' => i = skip_comment(text, i),
            byte if byte.is_ascii_whitespace() => i += 1,
            _ => break,
        }
    }
    i
}

fn identifier_end(text: &[u8], start: usize) -> usize {
    text[start..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .map_or(text.len(), |n| start + n)
}
