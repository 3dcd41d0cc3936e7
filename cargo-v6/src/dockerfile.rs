//! Reading a Dockerfile as the engine would, as far as cargo v6 needs it: the parser
//! directives, the `ARG` defaults and the final stage's base image (with `${ARG}` expanded).
//! Pure text functions, shared by `init` (what a project's Dockerfile targets) and the plan
//! (what the project's own Dockerfile builds on). Written here rather than taken from a crate:
//! no maintained Rust crate parses Dockerfiles with the engine's rules for `ARG` expansion in
//! `FROM`, and these few rules are all that is needed.

use std::collections::BTreeMap;

/// The escape character the Dockerfile declares (`# escape=` parser directive at the top),
/// `\` by default.
pub fn escape_char(text: &str) -> char {
    for line in without_bom(text).lines() {
        // Directives come first, each `# key=value`; the first other line (an instruction,
        // an empty line, or a comment that is no directive) ends them, and what follows is
        // a comment even if it looks like one, as the engine reads it.
        let Some((key, value)) = directive(line) else {
            break;
        };
        if key.eq_ignore_ascii_case("escape") {
            return value.chars().next().unwrap_or('\\');
        }
    }
    '\\'
}

/// `text` without the UTF-8 byte order mark some editors write first, which the engine drops
/// before reading the directives and the first instruction.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{FEFF}').unwrap_or(text)
}

/// `# key=value` with a one-word key: a parser directive's form.
fn directive(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.trim().strip_prefix('#')?.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| (key, value.trim()))
}

/// One instruction: its keyword upper-cased, the rest with runs of white space folded, and
/// the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// `FROM`, `RUN`, ...
    pub keyword: String,
    /// Everything after the keyword, runs of white space folded (for matching).
    pub rest: String,
    /// Everything after the keyword as written (continuations joined): quoted values keep
    /// their spaces.
    pub text: String,
}

impl Instruction {
    /// `line 3: RUN apt-get update && ...`, short enough for one line of output.
    pub fn shown(&self) -> String {
        let text = format!("{} {}", self.keyword, self.rest);
        let text = match text.char_indices().nth(72) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        };
        format!("line {}: `{text}`", self.line)
    }
}

/// The instructions, continuation lines joined (with the `# escape=` character) and comments
/// dropped, each with the line it starts on. As the engine reads them, an empty line inside a
/// continuation is skipped rather than ending the instruction.
pub fn instructions(text: &str) -> Vec<Instruction> {
    parse(text).0
}

/// Whether the last instruction ends with the escape character (then only empty lines and
/// comments): a line appended to the text would become part of that instruction.
pub fn ends_in_continuation(text: &str) -> bool {
    parse(text).1
}

/// The instructions, and whether the text ends inside a continuation.
fn parse(text: &str) -> (Vec<Instruction>, bool) {
    let escape = escape_char(text);
    let mut steps = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in without_bom(text).lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (start, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        match trimmed.strip_suffix(escape) {
            Some(continued) => {
                joined.push_str(continued.trim());
                joined.push(' ');
                current = Some((start, joined));
            }
            None => {
                joined.push_str(trimmed);
                steps.push(instruction(start, &joined));
            }
        }
    }
    let open = current.is_some();
    if let Some((start, joined)) = current {
        steps.push(instruction(start, &joined));
    }
    (steps, open)
}

fn instruction(line: usize, text: &str) -> Instruction {
    let (keyword, rest) = text
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((text.trim(), ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        rest: rest.split_whitespace().collect::<Vec<_>>().join(" "),
        text: rest.trim().to_string(),
    }
}

/// The first `RUN`, `COPY` or `ADD` that opens a heredoc (`RUN <<EOF`, `COPY <<-"END" /x`):
/// BuildKit's syntax, which the engine's classic builder reads as instructions line by line.
pub fn first_heredoc(text: &str) -> Option<Instruction> {
    static HEREDOC: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?:^|\s)<<-?["']?[A-Za-z_]"#).expect("valid regex")
    });
    instructions(text).into_iter().find(|step| {
        matches!(step.keyword.as_str(), "RUN" | "COPY" | "ADD") && HEREDOC.is_match(&step.rest)
    })
}

/// The defaults of the `ARG`s declared before the first `FROM` (the ones `FROM` may use).
pub fn global_args(text: &str) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for step in instructions(text) {
        match step.keyword.as_str() {
            "FROM" => break,
            "ARG" => {
                if let Some((name, value)) = step.rest.split_once('=') {
                    let value = value.trim().trim_matches(['"', '\'']);
                    args.insert(name.trim().to_string(), value.to_string());
                }
            }
            _ => {}
        }
    }
    args
}

/// The image the final stage builds on, `${NAME}` and `$NAME` expanded from `build_args`, then
/// the global `ARG` defaults; a stage named earlier (`FROM builder`) is followed to its image.
pub fn final_base(text: &str, build_args: &BTreeMap<String, String>) -> Option<String> {
    let mut args = global_args(text);
    args.extend(build_args.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut stages: BTreeMap<String, String> = BTreeMap::new();
    let mut last = None;
    for step in instructions(text) {
        if step.keyword != "FROM" {
            continue;
        }
        let mut words = step
            .rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"));
        let image = expand(words.next()?, &args);
        let image = stages
            .get(&image.to_ascii_lowercase())
            .cloned()
            .unwrap_or(image);
        if let (Some(as_word), Some(name)) = (words.next(), words.next())
            && as_word.eq_ignore_ascii_case("AS")
        {
            stages.insert(name.to_ascii_lowercase(), image.clone());
        }
        last = Some(image);
    }
    last
}

/// Replaces `${NAME}`, `${NAME:-default}` and `$NAME` with their values (unknown names become
/// empty, as the engine does).
pub fn expand(word: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = &braced[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            match (args.get(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {}
            }
            rest = &braced[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else if let Some(value) = args.get(&after[..end]) {
                out.push_str(value);
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_base_expands_args_as_the_engine_does() {
        let summary = "# basic python3 image as base\nARG BASE=4.15\nFROM ghcr.io/vantage6/infrastructure/algorithm-base:${BASE}\nARG PKG_NAME=\"v6-summary-py\"\nCOPY . /app\n";
        let none = BTreeMap::new();
        assert_eq!(
            final_base(summary, &none).as_deref(),
            Some("ghcr.io/vantage6/infrastructure/algorithm-base:4.15")
        );
        let overridden = BTreeMap::from([("BASE".to_string(), "4.14".to_string())]);
        assert_eq!(
            final_base(summary, &overridden).as_deref(),
            Some("ghcr.io/vantage6/infrastructure/algorithm-base:4.14")
        );
        let staged = "FROM --platform=linux/amd64 python:3.11 AS build\nRUN x\nfrom build\n";
        assert_eq!(final_base(staged, &none).as_deref(), Some("python:3.11"));
        let continued = "ARG V=1\nFROM \\\n  img:$V\n";
        assert_eq!(final_base(continued, &none).as_deref(), Some("img:1"));
        assert_eq!(expand("a:${X:-dflt}", &none), "a:dflt");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_instruction() {
        // Editors on Windows save one; the engine drops it before parsing.
        let text =
            "\u{FEFF}FROM ghcr.io/vantage6/infrastructure/algorithm-base:4.11\nCOPY . /app\n";
        let steps = instructions(text);
        assert_eq!(steps[0].keyword, "FROM");
        assert_eq!(
            final_base(text, &BTreeMap::new()).as_deref(),
            Some("ghcr.io/vantage6/infrastructure/algorithm-base:4.11")
        );
        assert_eq!(escape_char("\u{FEFF}# escape=`\nFROM x\n"), '`');
    }

    #[test]
    fn empty_lines_inside_a_continuation_do_not_end_the_instruction() {
        // The engine skips them (with a warning): `/app` belongs to the RUN.
        let text = "FROM x\nRUN pip install \\\n\n   \n    /app\nCMD y\n";
        let steps = instructions(text);
        let shown: Vec<(usize, &str, &str)> = steps
            .iter()
            .map(|s| (s.line, s.keyword.as_str(), s.rest.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (1, "FROM", "x"),
                (2, "RUN", "pip install /app"),
                (6, "CMD", "y")
            ]
        );
    }

    #[test]
    fn the_escape_directive_is_read_from_the_top_only() {
        assert_eq!(escape_char("# escape=`\nFROM x\n"), '`');
        assert_eq!(escape_char("FROM x\n# escape=`\n"), '\\');
        assert_eq!(
            escape_char("# syntax=docker/dockerfile:1\n# Escape = `\nFROM x"),
            '`'
        );
        // After a comment that is no directive, or an empty line, it is a comment.
        assert_eq!(escape_char("# basic image\n# escape=`\nFROM x\n"), '\\');
        assert_eq!(escape_char("\n# escape=`\nFROM x\n"), '\\');
        assert_eq!(escape_char("# note: escape=`\nFROM x\n"), '\\');
    }
}
