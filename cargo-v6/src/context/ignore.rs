//! The `.dockerignore` matcher: a port of moby's `patternmatcher` (matching) and
//! `patternmatcher/ignorefile` (reading the file).
//!
//! Hand-written on purpose: the gitignore crates differ from Docker on anchoring (Docker
//! patterns are always relative to the context root), on `*` (never crosses `/` here), on
//! `**`, on exceptions and on last-match-wins, so none of them reproduces what `docker build`
//! sends. Patterns are compiled once, to a string comparison where moby uses one (its exact,
//! prefix and suffix fast paths, whose quirks are part of the semantics: `**foo` matches
//! `xfoo`) and otherwise to the tokens of the regex moby would compile (`*` is `[^/]*`, `?`
//! is `[^/]`, `**/` is `(.*/)?`, a trailing `**` is `.*`, `[...]` a class), matched by a small
//! NFA over those tokens with exactly the regex's meaning (`.` does not match a newline; the
//! classes do). A compiled `Regex` costs kilobytes (its program and match caches); with one
//! per line a 100,000-line `.dockerignore` took a gigabyte. The tokens take a few dozen bytes,
//! and a path is tested against them in time linear in its length.
//!
//! Where moby's behaviour is an accident of feeding pattern text straight into Go's regex
//! syntax, this port follows Go's `filepath.Match` instead, which is what Docker documents:
//! - `\x` always means the literal `x` (moby turns `\d` into a digit class and rejects `\y`);
//! - inside `[...]`, `*`, `?`, `[` and `\` escapes are plain class members;
//! - `^` outside a class is a literal (moby's regex treats it as an anchor).
//!
//! A class with a reversed range (`[z-a]`) passes moby's parse-time check but fails every
//! match with `ErrBadPattern`; here it is rejected when the file is parsed.
//!
//! Parent directories are matched as `MatchesOrParentMatches` does. BuildKit's walker uses
//! `MatchesUsingParentResults`, which forgets a pattern it skipped on the parent: with
//! `docs`, `!docs/README.md`, `docs` it sends `docs/README.md`; here the last `docs` wins.

use std::iter::Peekable;
use std::str::Chars;

use super::ContextError;

/// The pattern cargo v6 puts before the user's: repository history stays out of the image
/// unless an exception (`!.git`, `!.git/**`, ...) brings it back.
const IMPLICIT_GIT: &str = ".git";

/// Characters that make an exception a wildcard for fsutil's directory-skipping shortcut
/// (`patternChars` there, with the backslash of a `/`-separated platform).
const WILDCARD_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// A parsed `.dockerignore`: decides which paths of the context the build does not see.
///
/// Always starts with the implicit pattern `.git` (see the [module docs](super)), so that the
/// walker in [`select`](super::select) and the engine's tar writer agree on every path.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    /// Whether any pattern is an exception: without one, an excluded directory is never
    /// entered.
    has_exceptions: bool,
    /// fsutil's `onlyPrefixExcludeExceptions`: every exception is a plain path (after
    /// dropping a trailing `/**` or `/*`), so only the directories on its way can hold a
    /// re-included file.
    literal_exceptions: bool,
}

/// What the walk carries down for a directory: the last pattern (by index) that matches the
/// directory or one of its parents. Last match wins, so the earlier ones can never decide
/// anything below it: one index stands for the whole per-pattern state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DirState {
    last: Option<usize>,
}

/// One line of the file, compiled.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    /// `!pattern`: a match re-includes the path.
    exception: bool,
    matcher: Matcher,
}

/// How a pattern is tested, following moby's `matchType`.
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `literal**`: the path starts with the literal.
    Prefix(String),
    /// `**literal`: the path ends with the literal, or is the literal after a leading `/`.
    Suffix(String),
    /// Everything else: what moby matches with a regex.
    Regex(Glob),
}

/// A pattern that moby compiles to a regex, as the tokens of that regex.
#[derive(Debug, Clone)]
struct Glob {
    /// The regex moby would compile (`^...$`), which the tokens mean exactly; the tests
    /// compare it with moby's and run it against the NFA.
    #[cfg(test)]
    source: Box<str>,
    tokens: Box<[Token]>,
    /// The ranges of the pattern's classes (see [`Token::Class`]).
    ranges: Box<[(char, char)]>,
    /// How many tokens at the start, and at the end, are plain characters: the path starts,
    /// and ends, with those characters.
    literal_head: usize,
    literal_tail: usize,
    /// The ASCII characters that the path must contain, one bit each: a first test that
    /// rejects most paths before the NFA runs.
    required: u128,
}

/// One token of a [`Glob`], named after its regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This character.
    Char(char),
    /// `[^/]` (`?`).
    One,
    /// `[^/]*` (`*`).
    Star,
    /// `(.*/)?` (`**` before more pattern): nothing, or up to and including a `/`.
    Dirs,
    /// `.*` (a trailing `**` after a wildcard).
    Any,
    /// `[...]` or `[^...]`: the ranges `Glob::ranges[start..end]`.
    Class { negated: bool, start: u32, end: u32 },
}

/// A path with what the quick tests of a [`Glob`] need, computed once for all the patterns.
struct Subject<'a> {
    path: &'a str,
    /// The ASCII characters in the path, one bit each.
    ascii: u128,
}

impl<'a> Subject<'a> {
    fn new(path: &'a str) -> Self {
        let ascii = path
            .bytes()
            .filter(u8::is_ascii)
            .fold(0, |bits, b| bits | 1u128 << b);
        Self { path, ascii }
    }
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` the way `ignorefile.ReadAll` and
    /// `patternmatcher.New` do; an invalid line is an error carrying its 1-based number.
    pub fn parse(text: &str) -> Result<Self, ContextError> {
        let mut patterns = vec![Pattern {
            text: IMPLICIT_GIT.to_owned(),
            exception: false,
            matcher: Matcher::Exact,
        }];
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let Some(spec) = normalize(raw) else { continue };
            let pattern = Pattern::new(&spec).map_err(|reason| ContextError::InvalidPattern {
                line: index + 1,
                pattern: raw.trim().to_owned(),
                reason,
            })?;
            patterns.push(pattern);
        }
        patterns.shrink_to_fit();
        let exceptions = || patterns.iter().filter(|p| p.exception);
        let has_exceptions = exceptions().next().is_some();
        let literal_exceptions =
            exceptions().all(|p| !without_trailing_glob(&p.text).contains(WILDCARD_CHARS));
        Ok(Self {
            patterns,
            has_exceptions,
            literal_exceptions,
        })
    }

    /// Whether the build leaves out `rel_path` (relative to the context root,
    /// `/`-separated): the last pattern matching the path or one of its parent directories
    /// decides (moby's `MatchesOrParentMatches`).
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let parents = parent_dirs(rel_path);
        let subjects: Vec<Subject<'_>> = std::iter::once(rel_path)
            .chain(parents.iter().map(String::as_str))
            .map(Subject::new)
            .collect();
        let last = self
            .patterns
            .iter()
            .rposition(|p| subjects.iter().any(|s| p.matches_subject(s)));
        self.decides_excluded(last)
    }

    /// The state of the context root: nothing matched yet.
    pub(super) fn root_state(&self) -> DirState {
        DirState { last: None }
    }

    /// The state of directory `path` inside a directory with state `parent`. Carrying it
    /// down the walk costs one test per pattern per entry instead of one per parent, and
    /// only the patterns after `parent`'s are tested.
    pub(super) fn enter_dir(&self, parent: &DirState, path: &str) -> DirState {
        let after = parent.last.map_or(0, |i| i + 1);
        let subject = Subject::new(path);
        let last = self.patterns[after..]
            .iter()
            .rposition(|p| p.matches_subject(&subject))
            .map(|i| after + i)
            .or(parent.last);
        DirState { last }
    }

    /// Whether a directory with this state is excluded.
    pub(super) fn state_excluded(&self, state: &DirState) -> bool {
        self.decides_excluded(state.last)
    }

    /// Whether `path`, an entry of a directory with state `parent`, is excluded; the same
    /// answer as [`is_excluded`](Self::is_excluded).
    pub(super) fn excluded_in(&self, parent: &DirState, path: &str) -> bool {
        self.state_excluded(&self.enter_dir(parent, path))
    }

    /// Whether an excluded directory must still be walked because an exception could
    /// re-include something below it (fsutil's rule: any wildcard exception may, a plain
    /// one only if it lies under the directory).
    pub(super) fn may_reinclude_under(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        if !self.literal_exceptions {
            return true;
        }
        // fsutil: `pattern + "/"` starts with `dir + "/"`.
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            without_trailing_glob(&p.text)
                .strip_prefix(dir)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// Last match wins: the path is excluded when the last pattern that matches it (if any)
    /// is not an exception.
    fn decides_excluded(&self, last: Option<usize>) -> bool {
        last.is_some_and(|i| !self.patterns[i].exception)
    }
}

impl Pattern {
    /// Compiles a normalized line (`!` prefix included).
    fn new(spec: &str) -> Result<Self, String> {
        let (exception, text) = match spec.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        if exception && text.is_empty() {
            return Err("`!` must be followed by a pattern".to_owned());
        }
        Ok(Self {
            text: text.to_owned(),
            exception,
            matcher: compile(text)?,
        })
    }

    #[cfg(test)]
    fn matches(&self, path: &str) -> bool {
        self.matches_subject(&Subject::new(path))
    }

    fn matches_subject(&self, subject: &Subject<'_>) -> bool {
        let path = subject.path;
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Matcher::Regex(glob) => glob.matches(subject),
        }
    }
}

impl Glob {
    /// The regex moby would compile for the pattern.
    #[cfg(test)]
    fn as_str(&self) -> &str {
        &self.source
    }

    fn matches(&self, subject: &Subject<'_>) -> bool {
        if self.required & !subject.ascii != 0 {
            return false;
        }
        let path = subject.path;
        let head = &self.tokens[..self.literal_head];
        let tail = &self.tokens[self.tokens.len() - self.literal_tail..];
        literal_first(head.iter(), path.chars())
            && literal_first(tail.iter().rev(), path.chars().rev())
            && self.run(path)
    }

    /// Simulates the regex's NFA on `path`. State `2k` is "before token `k`" (`2n` accepts),
    /// `2k + 1` is "inside the `(.*/)?` of token `k`, its `/` not yet read".
    fn run(&self, path: &str) -> bool {
        let accept = 2 * self.tokens.len();
        let words = (accept + 1).div_ceil(64);
        let mut on_stack = [0u64; 8];
        let mut on_heap = Vec::new();
        let buffer: &mut [u64] = if 2 * words <= on_stack.len() {
            &mut on_stack[..2 * words]
        } else {
            on_heap.resize(2 * words, 0);
            &mut on_heap
        };
        let (mut current, mut next) = buffer.split_at_mut(words);
        self.enter(current, 0);
        for c in path.chars() {
            next.fill(0);
            for (w, &word) in current.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let state = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    self.step(next, state, c);
                }
            }
            if next.iter().all(|&w| w == 0) {
                return false;
            }
            std::mem::swap(&mut current, &mut next);
        }
        current[accept / 64] >> (accept % 64) & 1 == 1
    }

    /// Adds "before token `k`" to `set`, and the states reachable from it without reading a
    /// character (past `*`, `**/` and a trailing `**`, which may match nothing).
    fn enter(&self, set: &mut [u64], mut k: usize) {
        loop {
            set_bit(set, 2 * k);
            match self.tokens.get(k) {
                Some(Token::Star | Token::Any | Token::Dirs) => k += 1,
                _ => return,
            }
        }
    }

    /// Adds to `next` the states reached from `state` by reading `c`.
    fn step(&self, next: &mut [u64], state: usize, c: char) {
        let k = state / 2;
        let Some(&token) = self.tokens.get(k) else {
            return; // accepting: nothing more may follow
        };
        if state % 2 == 1 || token == Token::Dirs {
            // `(.*/)?`: any character but a newline, and a `/` may end it.
            if c != '\n' {
                set_bit(next, 2 * k + 1);
            }
            if c == '/' {
                self.enter(next, k + 1);
            }
            return;
        }
        match token {
            Token::Char(expected) if c == expected => self.enter(next, k + 1),
            Token::One if c != '/' => self.enter(next, k + 1),
            Token::Class {
                negated,
                start,
                end,
            } => {
                let ranges = &self.ranges[start as usize..end as usize];
                if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated {
                    self.enter(next, k + 1);
                }
            }
            Token::Star if c != '/' => self.enter(next, k),
            Token::Any if c != '\n' => self.enter(next, k),
            _ => {}
        }
    }
}

/// Whether `chars` starts with the characters of `literal` (only [`Token::Char`]s).
fn literal_first<'t>(
    mut literal: impl Iterator<Item = &'t Token>,
    mut chars: impl Iterator<Item = char>,
) -> bool {
    literal.all(|&t| Some(t) == chars.next().map(Token::Char))
}

fn set_bit(set: &mut [u64], bit: usize) {
    set[bit / 64] |= 1 << (bit % 64);
}

/// One raw line as `ignorefile.ReadAll` then `patternmatcher.New` leave it: `None` for
/// comments and blanks, otherwise the cleaned pattern with its `!` (if any) in front.
fn normalize(raw: &str) -> Option<String> {
    // A comment only when `#` is the very first byte, as in ReadAll.
    if raw.starts_with('#') {
        return None;
    }
    let line = raw.trim();
    if line.is_empty() {
        return None;
    }
    let (exception, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut body = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    let spec = if exception { format!("!{body}") } else { body };
    // `patternmatcher.New` trims and cleans once more, `!` included: `a/ /` ends up `a`.
    Some(clean(spec.trim()))
}

/// Go's `filepath.Clean` for `/`-separated paths: the shortest equivalent path.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|&last| last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The parent directories of `path`, shortest first, as moby derives them: the prefixes at
/// each `/` of `filepath.Dir(path)`, and `Dir` itself unless it is `.`.
fn parent_dirs(path: &str) -> Vec<String> {
    let dir = clean(path.rfind('/').map_or("", |last| &path[..=last]));
    if dir == "." {
        return Vec::new();
    }
    let mut parents: Vec<String> = dir
        .match_indices('/')
        .map(|(i, _)| dir[..i].to_owned())
        .collect();
    parents.push(dir);
    parents
}

/// fsutil's `patternWithoutTrailingGlob`: drops one trailing `/**`, then one trailing `/*`.
fn without_trailing_glob(text: &str) -> &str {
    let text = text.strip_suffix("/**").unwrap_or(text);
    text.strip_suffix("/*").unwrap_or(text)
}

/// Compiles a cleaned pattern (without `!`) the way moby's `Pattern.compile` classifies it,
/// validating it with `filepath.Match`'s syntax rules on the way. Where moby builds a regex,
/// this builds its tokens, and its text for the tests.
fn compile(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = Kind::Exact;
    let mut re = String::from("^");
    let mut tokens = Vec::new();
    let mut ranges = Vec::new();
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is `**`.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        tokens.push(Token::Any);
                        kind = Kind::Regex;
                    }
                } else {
                    // Any number of directories, including none.
                    re.push_str("(.*/)?");
                    tokens.push(Token::Dirs);
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                tokens.push(Token::Star);
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                tokens.push(Token::One);
                kind = Kind::Regex;
            }
            '\\' => {
                let escaped = chars
                    .next()
                    .ok_or_else(|| "a trailing `\\` escapes nothing".to_owned())?;
                push_literal(&mut re, escaped);
                tokens.push(Token::Char(escaped));
                kind = Kind::Regex;
            }
            '[' => {
                tokens.push(push_class(&mut chars, &mut re, &mut ranges)?);
                kind = Kind::Regex;
            }
            ']' => {
                push_literal(&mut re, ']');
                tokens.push(Token::Char(']'));
                kind = Kind::Regex;
            }
            _ => {
                push_literal(&mut re, c);
                tokens.push(Token::Char(c));
            }
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_owned()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_owned()),
        Kind::Regex => {
            re.push('$');
            let glob = Glob::new(tokens, ranges);
            #[cfg(test)]
            let glob = Glob {
                source: re.into_boxed_str(),
                ..glob
            };
            Matcher::Regex(glob)
        }
    })
}

impl Glob {
    fn new(tokens: Vec<Token>, ranges: Vec<(char, char)>) -> Self {
        let is_char = |t: &&Token| matches!(t, Token::Char(_));
        let literal_head = tokens.iter().take_while(is_char).count();
        let literal_tail = if literal_head == tokens.len() {
            0
        } else {
            tokens.iter().rev().take_while(is_char).count()
        };
        let required = tokens.iter().fold(0, |bits, t| match t {
            Token::Char(c) if c.is_ascii() => bits | 1u128 << (*c as u32),
            _ => bits,
        });
        Self {
            #[cfg(test)]
            source: Box::from(""),
            tokens: tokens.into_boxed_slice(),
            ranges: ranges.into_boxed_slice(),
            literal_head,
            literal_tail,
            required,
        }
    }
}

fn push_literal(re: &mut String, c: char) {
    re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

/// Translates a `[...]` class (the `[` already consumed) with `filepath.Match`'s grammar:
/// an optional `^`, then one or more characters or `lo-hi` ranges, `\` escaping, `-` and `]`
/// only escaped, closed by `]`. Appends its regex to `re` and its ranges to `ranges`.
fn push_class(
    chars: &mut Peekable<Chars<'_>>,
    re: &mut String,
    ranges: &mut Vec<(char, char)>,
) -> Result<Token, String> {
    re.push('[');
    let negated = chars.peek() == Some(&'^');
    if negated {
        chars.next();
        re.push('^');
    }
    let start = ranges.len();
    loop {
        if ranges.len() > start && chars.peek() == Some(&']') {
            chars.next();
            break;
        }
        let lo = class_char(chars)?;
        let hi = if chars.peek() == Some(&'-') {
            chars.next();
            class_char(chars)?
        } else {
            lo
        };
        if lo > hi {
            return Err(format!("the range `{lo}-{hi}` in `[...]` is reversed"));
        }
        push_literal(re, lo);
        if hi != lo {
            re.push('-');
            push_literal(re, hi);
        }
        ranges.push((lo, hi));
    }
    re.push(']');
    let index = |i: usize| u32::try_from(i).map_err(|_| "the pattern is too long".to_owned());
    Ok(Token::Class {
        negated,
        start: index(start)?,
        end: index(ranges.len())?,
    })
}

/// One member of a class (`filepath.Match`'s `getEsc`).
fn class_char(chars: &mut Peekable<Chars<'_>>) -> Result<char, String> {
    match chars.next() {
        None => Err("`[` is not closed by `]`".to_owned()),
        Some(c @ ('-' | ']')) => Err(format!("`{c}` in `[...]` must be escaped as `\\{c}`")),
        Some('\\') => chars
            .next()
            .ok_or_else(|| "`[` is not closed by `]`".to_owned()),
        Some(c) => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A matcher with only the given patterns (one per line), implicit `.git` included.
    fn ignore(patterns: &[&str]) -> DockerIgnore {
        DockerIgnore::parse(&patterns.join("\n")).unwrap()
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::new(&normalize(text).unwrap()).unwrap()
    }

    fn invalid_reason(text: &str) -> String {
        match DockerIgnore::parse(text) {
            Err(ContextError::InvalidPattern { reason, .. }) => reason,
            other => panic!("{text:?} should be invalid, got {other:?}"),
        }
    }

    enum Expect {
        Fail,
        /// Matches the path itself.
        Exact,
        /// Matches only through a parent directory.
        Inexact,
    }
    use Expect::{Exact, Fail, Inexact};

    /// moby's `TestMatches` table, checked against the pattern alone (`MatchesExact`) and
    /// with parent directories (`MatchesOrParentMatches`).
    #[test]
    fn moby_matches_table() {
        let cases: &[(&str, &str, Expect)] = &[
            ("**", "file", Exact),
            ("**", "file/", Exact),
            ("**/", "file", Exact),
            ("**/", "file/", Exact),
            ("**", "/", Exact),
            ("**/", "/", Exact),
            ("**", "dir/file", Exact),
            ("**/", "dir/file", Exact),
            ("**", "dir/file/", Exact),
            ("**/", "dir/file/", Exact),
            ("**/**", "dir/file", Exact),
            ("**/**", "dir/file/", Exact),
            ("dir/**", "dir/file", Exact),
            ("dir/**", "dir/file/", Exact),
            ("dir/**", "dir/dir2/file", Exact),
            ("dir/**", "dir/dir2/file/", Exact),
            ("**/dir", "dir", Exact),
            ("**/dir", "dir/file", Inexact),
            ("**/dir2/*", "dir/dir2/file", Exact),
            ("**/dir2/*", "dir/dir2/file/", Inexact),
            ("**/dir2/**", "dir/dir2/dir3/file", Exact),
            ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
            ("**file", "file", Exact),
            ("**file", "dir/file", Exact),
            ("**/file", "dir/file", Exact),
            ("**file", "dir/dir/file", Exact),
            ("**/file", "dir/dir/file", Exact),
            ("**/file*", "dir/dir/file", Exact),
            ("**/file*", "dir/dir/file.txt", Exact),
            ("**/file*txt", "dir/dir/file.txt", Exact),
            ("**/file*.txt", "dir/dir/file.txt", Exact),
            ("**/file*.txt*", "dir/dir/file.txt", Exact),
            ("**/**/*.txt", "dir/dir/file.txt", Exact),
            ("**/**/*.txt2", "dir/dir/file.txt", Fail),
            ("**/*.txt", "file.txt", Exact),
            ("**/**/*.txt", "file.txt", Exact),
            ("a**/*.txt", "a/file.txt", Exact),
            ("a**/*.txt", "a/dir/file.txt", Exact),
            ("a**/*.txt", "a/dir/dir/file.txt", Exact),
            ("a/*.txt", "a/dir/file.txt", Fail),
            ("a/*.txt", "a/file.txt", Exact),
            ("a/*.txt**", "a/file.txt", Exact),
            ("a[b-d]e", "ae", Fail),
            ("a[b-d]e", "ace", Exact),
            ("a[b-d]e", "aae", Fail),
            ("a[^b-d]e", "aze", Exact),
            (".*", ".foo", Exact),
            (".*", "foo", Fail),
            ("abc.def", "abcdef", Fail),
            ("abc.def", "abc.def", Exact),
            ("abc.def", "abcZdef", Fail),
            ("abc?def", "abcZdef", Exact),
            ("abc?def", "abcdef", Fail),
            ("**/foo/bar", "foo/bar", Exact),
            ("**/foo/bar", "dir/foo/bar", Exact),
            ("**/foo/bar", "dir/dir2/foo/bar", Exact),
            ("abc/**", "abc", Fail),
            ("abc/**", "abc/def", Exact),
            ("abc/**", "abc/def/ghi", Exact),
            ("**/.foo", ".foo", Exact),
            ("**/.foo", "bar.foo", Fail),
            ("a(b)c/def", "a(b)c/def", Exact),
            ("a(b)c/def", "a(b)c/xyz", Fail),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                Exact,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                Exact,
            ),
            ("a\\\\", "a\\", Exact),
            ("a\\*b", "a*b", Exact),
        ];
        for (pat, path, expect) in cases {
            let alone = pattern(pat).matches(path);
            assert_eq!(alone, matches!(expect, Exact), "{pat:?} alone on {path:?}");
            let with_parents = ignore(&[pat]).is_excluded(path);
            assert_eq!(with_parents, !matches!(expect, Fail), "{pat:?} on {path:?}");
        }
    }

    /// moby's multi-pattern cases: last match wins, an exception on a directory re-includes
    /// what is under it.
    #[test]
    fn moby_multi_pattern_table() {
        let whl = "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl";
        let cases: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (&["**", &format!("!{whl}")], whl, false),
            (&["**", "!dist/*.whl"], whl, false),
        ];
        for (patterns, path, excluded) in cases {
            assert_eq!(
                ignore(patterns).is_excluded(path),
                *excluded,
                "{patterns:?} on {path:?}"
            );
        }
    }

    /// moby's single tests around `TestMatches` (`TestWildcardMatches` and friends).
    #[test]
    fn moby_simple_cases() {
        assert!(ignore(&["*"]).is_excluded("fileutils.go"));
        assert!(ignore(&["*.go"]).is_excluded("fileutils.go"));
        assert!(ignore(&["!fileutils.go", "*.go"]).is_excluded("fileutils.go"));
        assert!(!ignore(&["*.go", "!fileutils.go"]).is_excluded("fileutils.go"));
        for dir in ["docs", "docs/", "docs/*"] {
            let m = ignore(&[dir, "!docs/README.md"]);
            assert!(!m.is_excluded("docs/README.md"), "{dir}");
            assert!(m.is_excluded("docs/other.md"), "{dir}");
        }
        assert!(!ignore(&[]).is_excluded("any/path/there"));
    }

    /// Go's `filepath.Match` tests as moby runs them through its matcher.
    #[test]
    fn go_filepath_match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (pat, path, excluded) in cases {
            assert_eq!(
                ignore(&[pat]).is_excluded(path),
                *excluded,
                "{pat:?} on {path:?}"
            );
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            invalid_reason(bad);
        }
    }

    /// moby's `TestCompile`: the fast paths are chosen as moby chooses them, and the regexes
    /// come out the same.
    #[test]
    fn moby_compile_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("*", Some(r"^[^/]*$")),
            ("file*", Some(r"^file[^/]*$")),
            ("*file", Some(r"^[^/]*file$")),
            ("a*/b", Some(r"^a[^/]*/b$")),
            ("**/**", Some(r"^(.*/)?.*$")),
            ("**/dir2/*", Some(r"^(.*/)?dir2/[^/]*$")),
            ("**/dir2/**", Some(r"^(.*/)?dir2/.*$")),
            ("**/file*txt", Some(r"^(.*/)?file[^/]*txt$")),
            ("**/**/*.txt", Some(r"^(.*/)?(.*/)?[^/]*\.txt$")),
            ("a[b-d]e", Some(r"^a[b-d]e$")),
            (".*", Some(r"^\.[^/]*$")),
            ("abc?def", Some(r"^abc[^/]def$")),
            ("abc.def", None),
            ("**", None),
            ("dir/**", None),
            ("**/dir", None),
            ("**file", None),
            ("**/foo/bar", None),
            ("a(b)c/def", None),
            ("a.|)$(}+{bc", None),
        ];
        for (pat, regex) in cases {
            let compiled = compile(pat).unwrap();
            let got = match &compiled {
                Matcher::Regex(re) => Some(re.as_str()),
                _ => None,
            };
            assert_eq!(got, *regex, "{pat:?}");
        }
        assert!(matches!(compile("**").unwrap(), Matcher::Suffix(s) if s.is_empty()));
        assert!(matches!(compile("dir/**").unwrap(), Matcher::Prefix(p) if p == "dir/"));
        assert!(matches!(compile("**/dir").unwrap(), Matcher::Suffix(s) if s == "/dir"));
        assert!(matches!(compile("abc.def").unwrap(), Matcher::Exact));
    }

    /// moby's suffix fast path is not anchored at a `/`: `**file` matches `xfile`.
    #[test]
    fn suffix_fast_path_quirk() {
        assert!(ignore(&["**file"]).is_excluded("dir/xfile"));
        assert!(!ignore(&["**/file"]).is_excluded("dir/xfile"));
    }

    /// moby's `TestReadAll`, plus its pattern-cleaning tests.
    #[test]
    fn reads_lines_like_ignorefile() {
        let specs: Vec<String> = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n  docs  \n\tsub//dir/./x/../y/\n"
            .lines()
            .filter_map(normalize)
            .collect();
        assert_eq!(
            specs,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "docs",
                "sub/dir/y"
            ]
        );
        // `#` is a comment only in the first column; `/` alone stays `/`.
        assert_eq!(
            normalize("  # not a comment").as_deref(),
            Some("# not a comment")
        );
        assert_eq!(normalize("/").as_deref(), Some("/"));
        assert_eq!(normalize("a/ /").as_deref(), Some("a"));
        assert_eq!(normalize("../x").as_deref(), Some("../x"));
    }

    #[test]
    fn byte_order_mark_and_crlf_are_ignored() {
        let m = DockerIgnore::parse("\u{feff}secret\r\n!keep\r\n").unwrap();
        assert!(m.is_excluded("secret"));
        assert_eq!(m.patterns.len(), 3);
    }

    #[test]
    fn lone_exception_is_an_error_with_its_line() {
        for text in ["a\n\n!", "a\n\n! ", "a\n\n!/"] {
            let err = DockerIgnore::parse(text).unwrap_err();
            assert!(
                matches!(err, ContextError::InvalidPattern { line: 3, .. }),
                "{text:?}: {err:?}"
            );
        }
    }

    #[test]
    fn invalid_class_names_file_and_line() {
        let err = DockerIgnore::parse("# comment\nok\n  data/[abc\n").unwrap_err();
        let ContextError::InvalidPattern {
            line, ref pattern, ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!((line, pattern.as_str()), (3, "data/[abc"));
        assert!(err.to_string().starts_with(".dockerignore:3: "), "{err}");
    }

    /// moby accepts `[Local-Only]` at parse time and then fails every match on it (its
    /// regex has the reversed range `l-O`); we reject it up front.
    #[test]
    fn reversed_range_is_rejected() {
        assert!(invalid_reason("[Local-Only]/").contains("reversed"));
        assert!(DockerIgnore::parse("[a-a]").is_ok());
    }

    #[test]
    fn exceptions_and_the_implicit_git() {
        let m = ignore(&["docs", "!docs/README.md"]);
        assert!(m.has_exceptions && m.literal_exceptions);
        assert!(m.is_excluded(".git"));
        assert!(m.is_excluded(".git/config"));
        assert!(!m.is_excluded("sub/.git/config"));
        assert!(!m.is_excluded(".github/workflows/ci.yml"));
        for back in ["!.git", "!.git/", "!.git/**", "!/.git"] {
            assert!(!ignore(&[back]).is_excluded(".git/HEAD"), "{back}");
        }
        assert!(ignore(&["!.git/**"]).is_excluded(".git"));
    }

    #[test]
    fn walk_shortcut_follows_fsutil() {
        let none = ignore(&["target"]);
        assert!(!none.may_reinclude_under("target"));
        let literal = ignore(&["docs", "!docs/api/index.md"]);
        assert!(literal.literal_exceptions);
        assert!(literal.may_reinclude_under("docs"));
        assert!(literal.may_reinclude_under("docs/api"));
        assert!(!literal.may_reinclude_under("docs/guide"));
        assert!(!literal.may_reinclude_under("doc"));
        // A trailing `/**` or `/*` does not make an exception a wildcard.
        let trailing = ignore(&["*", "!src/**"]);
        assert!(trailing.literal_exceptions);
        assert!(trailing.may_reinclude_under("src"));
        assert!(!trailing.may_reinclude_under("tests"));
        let wildcard = ignore(&["vendor", "!**/*.go"]);
        assert!(!wildcard.literal_exceptions);
        assert!(wildcard.may_reinclude_under("vendor"));
    }

    #[test]
    fn escapes_and_classes_follow_filepath_match() {
        assert!(ignore(&["\\d"]).is_excluded("d"));
        assert!(!ignore(&["\\d"]).is_excluded("1"));
        assert!(ignore(&["[*]x"]).is_excluded("*x"));
        assert!(!ignore(&["[*]x"]).is_excluded("ax"));
        assert!(ignore(&["[[]"]).is_excluded("["));
        assert!(ignore(&["a]"]).is_excluded("a]"));
        assert!(ignore(&["a^b*"]).is_excluded("a^bc"));
        assert!(ignore(&["[!]"]).is_excluded("!"));
        // A negated class, like Go's, may match `/`.
        assert!(ignore(&["a[^x]b"]).is_excluded("a/b"));
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("a/./b/../c", "a/c"),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("a/..", "."),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}(\n\\PC{0,20}){0,3}", path in "\\PC{0,30}") {
            if let Ok(m) = DockerIgnore::parse(&text) {
                let _ = m.is_excluded(&path);
            }
        }

        #[test]
        fn never_panics_on_pattern_syntax(
            text in "[!/*?\\[\\]\\\\^a-c. -]{0,16}",
            path in "[/*?\\[\\]\\\\a-c.-]{0,12}",
        ) {
            if let Ok(m) = DockerIgnore::parse(&text) {
                let _ = m.is_excluded(&path);
            }
        }

        /// The state carried down the walk gives the same answers as `is_excluded`.
        #[test]
        fn walk_state_agrees_with_is_excluded(
            patterns in proptest::collection::vec("!?[ab*/]{1,6}", 0..5),
            components in proptest::collection::vec("\\.?[ab][ab.]{0,2}", 1..5),
        ) {
            let text = patterns.join("\n");
            let Ok(m) = DockerIgnore::parse(&text) else { return Ok(()) };
            let mut state = m.root_state();
            let mut path = String::new();
            for (i, component) in components.iter().enumerate() {
                if i > 0 {
                    path.push('/');
                }
                path.push_str(component);
                prop_assert_eq!(m.excluded_in(&state, &path), m.is_excluded(&path), "{}", &path);
                state = m.enter_dir(&state, &path);
                prop_assert_eq!(m.state_excluded(&state), m.is_excluded(&path), "{}", &path);
            }
        }
    }

    /// The NFA means exactly the regex moby would compile, newlines and all.
    #[test]
    fn tokens_mean_the_regex() {
        let glob = |pat: &str| match compile(pat).unwrap() {
            Matcher::Regex(glob) => glob,
            other => panic!("{pat:?} is {other:?}"),
        };
        for (pat, path, want) in [
            ("**/x/**", "x/a", true),
            ("**/x/**", "x/a\nb", false),
            ("**/x/**", "a\nb/x/c", false),
            ("a/**/b", "a/\n/b", false),
            ("a*b", "a\nb", true),
            ("a?b", "a\nb", true),
            ("a[^x]b", "a\nb", true),
            ("[a-ζ]*", "β/", false),
            ("*.tmp", "dir/x.tmp", false),
            ("dir*/*.tmp", "dir7/x.tmp", true),
        ] {
            let g = glob(pat);
            let regex = regex::Regex::new(g.as_str()).unwrap();
            assert_eq!(regex.is_match(path), want, "regex {pat:?} on {path:?}");
            assert_eq!(g.matches(&Subject::new(path)), want, "{pat:?} on {path:?}");
        }
        // Long patterns take the heap path of the NFA.
        let long = format!("{}*{}", "a*".repeat(200), "b");
        let g = glob(&long);
        assert!(g.matches(&Subject::new(&format!("{}b", "a".repeat(250)))));
        assert!(!g.matches(&Subject::new(&"a".repeat(250))));
    }

    proptest! {
        #[test]
        fn tokens_agree_with_the_regex(
            pat in "[ab/*?.\\\\\n\u{e9}-]{1,10}|[ab*]{0,3}\\[\\^?[ab/\n]{1,2}\\][ab/*]{0,3}",
            path in "[ab/.*?\n\u{e9}-]{0,12}",
        ) {
            if let Ok(Matcher::Regex(glob)) = compile(&pat) {
                let regex = regex::Regex::new(glob.as_str()).unwrap();
                prop_assert_eq!(
                    glob.matches(&Subject::new(&path)),
                    regex.is_match(&path),
                    "{} on {:?}", glob.as_str(), &path
                );
            }
        }
    }
}
