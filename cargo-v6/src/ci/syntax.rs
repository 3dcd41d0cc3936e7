//! The syntax of the generated files: YAML strings, shell words, and the tag patterns of
//! GitHub's globs and GitLab's regexes, each escaped so that a value is read as written.

/// The characters GitHub's filter patterns give a meaning and let `\` escape (`*`, `?`,
/// `+`, `[`, `!` at the start, and `\` itself); a `]` with no `[` is itself, and GitHub
/// refuses an escaped one. (A release tag prefix has none of `*?[\`: git refuses them.)
const GLOB_SPECIAL: &[char] = &['*', '?', '+', '[', '!', '\\'];

/// The GitHub `on.push.tags` pattern for release tags under `prefix`: the prefix literally,
/// then a version that starts `MAJOR.MINOR` (`1.2`, `1.2.3`, `1.2.3-rc.1`, `1.2.0rc1`). `*`
/// matches no `/`, and a pattern must match the whole tag, so `v…` never takes `summary-v1.0.0`
/// and the bare prefix takes only tags that start with a digit.
pub fn github_tag_pattern(prefix: &str) -> String {
    let mut pattern = String::new();
    for c in prefix.chars() {
        if GLOB_SPECIAL.contains(&c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("[0-9]+.[0-9]+*");
    pattern
}

/// The regex, for GitLab's `$CI_COMMIT_TAG =~ /…/`, that accepts the release tags under any of
/// `prefixes`: anchored at the start, the prefix literally, then `MAJOR.MINOR`, as
/// [`github_tag_pattern`] does.
pub fn gitlab_tag_regex(prefixes: &[&str]) -> String {
    let escaped: Vec<String> = prefixes.iter().map(|p| regex_escape(p)).collect();
    let alternatives = match escaped.as_slice() {
        [one] => one.clone(),
        many => format!("(?:{})", many.join("|")),
    };
    format!("^{alternatives}[0-9]+\\.[0-9]+")
}

/// Escapes regex metacharacters, and `/`, which would end GitLab's `/…/` literal (RE2, which
/// GitLab uses, and Rust's regex both read `\/` as `/`).
fn regex_escape(text: &str) -> String {
    let mut escaped = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `text` as a YAML double-quoted scalar: `"` and `\` escaped, a line break as `\n`, and
/// every other character outside YAML's printable set (controls, DEL, C1 controls, the byte order mark) as `\uXXXX`, so
/// that it reads back as exactly `text` on one line.
pub fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if yaml_printable(c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// YAML 1.2's `c-printable`, without the line breaks and tab (escaped too, to stay on a line),
/// and without U+2028 and U+2029, line breaks to YAML 1.1 parsers such as GitLab's.
pub(super) fn yaml_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{FEFF}' | '\u{2028}' | '\u{2029}')
}

/// `text` as one POSIX shell word, single-quoted (`'` written as `'\''`).
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}
