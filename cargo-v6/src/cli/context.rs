//! `cargo v6 context`: the files the build will see.

use std::fmt::Write as _;

use crate::error::Error;
use crate::report::Reporter;

use super::ManifestArgs;

/// Show the build context as Docker applies `.dockerignore` (what `COPY . /app` copies).
#[derive(Debug, clap::Args)]
#[command(
    after_help = r#"Names are printed as they are, unless one holds a double quote, a backslash or a
control character: then it is quoted as git quotes paths, in double quotes with C escapes
(a file named a, newline, b.txt is listed as "a\nb.txt"), so that each line is one file.
With -z, each name ends with a NUL byte instead and is never quoted (like `git ls-files -z`
and `find -print0`).

Examples:
  cargo v6 context --list
  cargo v6 context --list | grep -c .
  cargo v6 context --list -z | xargs -0 ls -l"#
)]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
    /// List the files, one per line, relative and sorted.
    #[arg(long, required = true)]
    list: bool,
    /// End each name with NUL instead of a newline, and print it unquoted.
    #[arg(short = 'z')]
    null: bool,
}

/// Runs `cargo v6 context --list`.
pub fn run(args: Args, _reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let dir = crate::plan::inputs::context_dir(&manifest)?;
    let mut text = String::new();
    for file in crate::plan::inputs::context_files(&manifest, &dir)? {
        if args.null {
            text.push_str(&file);
            text.push('\0');
        } else {
            push_quoted(&mut text, &file);
            text.push('\n');
        }
    }
    crate::report::stdout(&text)
}

/// Appends `name` as git prints a path (`core.quotePath`, without quoting non-ASCII): as it
/// is, or, when it holds `"`, `\` or a control character, in double quotes with `\"`, `\\`,
/// `\a \b \t \n \v \f \r` and three-digit octal escapes for the bytes of other control
/// characters.
fn push_quoted(out: &mut String, name: &str) {
    if !name
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        out.push_str(name);
        return;
    }
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                    let _ = write!(out, "\\{byte:03o}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(name: &str) -> String {
        let mut out = String::new();
        push_quoted(&mut out, name);
        out
    }

    #[test]
    fn plain_names_are_left_alone() {
        for name in ["a.txt", "with space/ünïcødé ß.txt", "'single'", "-x", "a$b"] {
            assert_eq!(quoted(name), name);
        }
    }

    #[test]
    fn names_that_would_be_ambiguous_are_quoted_like_git() {
        for (name, want) in [
            ("a\nb.txt", r#""a\nb.txt""#),
            ("tab\there", r#""tab\there""#),
            ("say \"hi\"", r#""say \"hi\"""#),
            ("back\\slash", r#""back\\slash""#),
            ("\x07\x08\x0b\x0c\r", r#""\a\b\v\f\r""#),
            ("nul-less \x01 \x1b \x7f", r#""nul-less \001 \033 \177""#),
            ("c1 \u{85}", r#""c1 \302\205""#),
            ("dir/ünï\ncødé", "\"dir/ünï\\ncødé\""),
        ] {
            assert_eq!(quoted(name), want, "{name:?}");
        }
    }
}
