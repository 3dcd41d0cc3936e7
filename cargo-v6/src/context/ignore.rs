//! The `.dockerignore` matcher: a port of moby's `patternmatcher` (matching) and
//! `patternmatcher/ignorefile` (reading the file).
//!
//! Hand-written on purpose: the gitignore crates differ from Docker on anchoring (Docker
//! patterns are always relative to the context root), on `*` (never crosses `/` here), on
//! `**`, on exceptions and on last-match-wins, so none of them reproduces what `docker build`
//! sends. Patterns are compiled once, to a string comparison where moby uses one (its exact,
//! prefix and suffix fast paths, whose quirks are part of the semantics: `**foo` matches
//! `xfoo`) and to a regex otherwise.
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

use regex::Regex;

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
    /// Everything else.
    Regex(Regex),
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
        self.decide(|_, p| p.matches(rel_path) || parents.iter().any(|d| p.matches(d)))
    }

    /// The per-pattern state of the context root: nothing matched yet.
    pub(super) fn root_state(&self) -> Vec<bool> {
        vec![false; self.patterns.len()]
    }

    /// The state of directory `path` inside a directory with state `parent`: for each
    /// pattern, whether it matches `path` or one of its parents. Carrying it down the walk
    /// costs one test per pattern per entry instead of one per parent.
    pub(super) fn enter_dir(&self, parent: &[bool], path: &str) -> Vec<bool> {
        self.patterns
            .iter()
            .zip(parent)
            .map(|(p, &inherited)| inherited || p.matches(path))
            .collect()
    }

    /// Whether a directory with this state is excluded.
    pub(super) fn state_excluded(&self, state: &[bool]) -> bool {
        self.decide(|i, _| state[i])
    }

    /// Whether `path`, an entry of a directory with state `parent`, is excluded; the same
    /// answer as [`is_excluded`](Self::is_excluded).
    pub(super) fn excluded_in(&self, parent: &[bool], path: &str) -> bool {
        self.decide(|i, p| parent[i] || p.matches(path))
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
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", without_trailing_glob(&p.text)).starts_with(&dir_slash))
    }

    /// Last match wins: the last pattern for which `hits` holds decides, and a path no
    /// pattern hits is kept.
    fn decide(&self, mut hits: impl FnMut(usize, &Pattern) -> bool) -> bool {
        self.patterns
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, p)| hits(i, p))
            .is_some_and(|(_, p)| !p.exception)
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

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Matcher::Regex(regex) => regex.is_match(path),
        }
    }
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
/// validating it with `filepath.Match`'s syntax rules on the way.
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
                        kind = Kind::Regex;
                    }
                } else {
                    // Any number of directories, including none.
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '\\' => {
                let escaped = chars
                    .next()
                    .ok_or_else(|| "a trailing `\\` escapes nothing".to_owned())?;
                push_literal(&mut re, escaped);
                kind = Kind::Regex;
            }
            '[' => {
                push_class(&mut chars, &mut re)?;
                kind = Kind::Regex;
            }
            ']' => {
                push_literal(&mut re, ']');
                kind = Kind::Regex;
            }
            _ => push_literal(&mut re, c),
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_owned()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_owned()),
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

fn push_literal(re: &mut String, c: char) {
    re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

/// Translates a `[...]` class (the `[` already consumed) with `filepath.Match`'s grammar:
/// an optional `^`, then one or more characters or `lo-hi` ranges, `\` escaping, `-` and `]`
/// only escaped, closed by `]`.
fn push_class(chars: &mut Peekable<Chars<'_>>, re: &mut String) -> Result<(), String> {
    re.push('[');
    if chars.peek() == Some(&'^') {
        chars.next();
        re.push('^');
    }
    let mut ranges = 0;
    loop {
        if ranges > 0 && chars.peek() == Some(&']') {
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
        ranges += 1;
    }
    re.push(']');
    Ok(())
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
}
