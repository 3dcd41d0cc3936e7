//! The program an image's config starts, read as the engine reads it (`Entrypoint`, then
//! `Cmd`), without a shell.
//!
//! Why no shell: qemu-user runs one program; when that program starts another (`execve`), the
//! host's kernel runs it, and without binfmt_misc it cannot run another architecture's
//! program (and would run an amd64 one outside the image's root). So the shell form
//! (`CMD python -c "..."`, stored as `["/bin/sh", "-c", "python -c \"...\""]`) is split into
//! words here, as `sh` would split a simple command, and its program run directly; a command
//! that needs more of a shell (pipes, `;`, globs, command substitution) is refused with that
//! reason.

use std::collections::BTreeMap;

/// The command (program and arguments) of an image config's `Entrypoint` and `Cmd`, the shell
/// form split into words; `env` gives the values of `$NAME` in a shell-form command.
pub fn command_of(
    entrypoint: &[String],
    cmd: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let argv: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    let words = match &argv[..] {
        [] => return Err("the image sets no command (Entrypoint or Cmd)".to_owned()),
        [shell, flag, script, ..] if is_shell(shell) && flag == "-c" => {
            let mut words =
                shell_words(script, env).map_err(|why| format!("its command `{script}` {why}"))?;
            // `exec python ...` runs python in the shell's place: the same program.
            if words.first().is_some_and(|w| w == "exec") {
                words.remove(0);
            }
            words
        }
        _ => argv,
    };
    if words.is_empty() {
        return Err("the image's command is empty".to_owned());
    }
    Ok(words)
}

fn is_shell(program: &str) -> bool {
    matches!(
        program,
        "/bin/sh" | "sh" | "/bin/bash" | "bash" | "/usr/bin/sh"
    )
}

/// Splits `text` into words as POSIX `sh` splits a simple command: blanks between words,
/// `'...'` literal, `"..."` with `\` before `$ \` " \` and `$NAME`/`${NAME}` replaced from
/// `env` (an unset name is empty). Anything else a shell would interpret is refused, with what
/// it is.
fn shell_words(text: &str, env: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("has an unclosed `'`".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("has an unclosed `\"`".to_owned()),
                        },
                        Some('$') => {
                            expand(&mut chars, env, &mut word).map_err(|what| needs_shell(&what))?
                        }
                        Some('`') => return Err(needs_shell("command substitution")),
                        Some(c) => word.push(c),
                        None => return Err("has an unclosed `\"`".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
            },
            '$' => {
                in_word = true;
                expand(&mut chars, env, &mut word).map_err(|what| needs_shell(&what))?;
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' => return Err(needs_shell(&format!("`{c}`"))),
            '`' => return Err(needs_shell("command substitution")),
            '*' | '?' | '[' => return Err(needs_shell("a pattern")),
            '#' | '~' if !in_word => return Err(needs_shell(&format!("`{c}`"))),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Why a command cannot run without a shell.
fn needs_shell(what: &str) -> String {
    format!(
        "needs a shell ({what}), which cannot run under qemu-user without binfmt_misc: a shell \
         starts programs through the host's kernel"
    )
}

/// `$NAME` or `${NAME}` (after the `$`): appends the value to `word`; anything else (`$(`,
/// `$1`, `${x:-y}`) is what needs a shell.
fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    env: &BTreeMap<String, String>,
    word: &mut String,
) -> Result<(), String> {
    let braced = chars.next_if_eq(&'{').is_some();
    let mut name = String::new();
    while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
        name.push(c);
    }
    if braced && chars.next_if_eq(&'}').is_none() {
        return Err("a `${...}` expansion".to_owned());
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("a `$` expansion".to_owned());
    }
    word.push_str(env.get(&name).map_or("", String::as_str));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_shell_form_is_split_as_sh_splits_a_simple_command() {
        let env = BTreeMap::from([("PKG_NAME".to_owned(), "summary".to_owned())]);
        let wrapper = "python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"";
        assert_eq!(
            command_of(&[], &strings(&["/bin/sh", "-c", wrapper]), &env).unwrap(),
            strings(&[
                "python",
                "-c",
                "from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()"
            ])
        );
        // The R wrapper names $PKG_NAME; exec, quotes and escapes as sh reads them.
        let r = r#"exec Rscript -e "vtg::docker.wrapper('$PKG_NAME')" 'a b'\ c "\"q\"" ''"#;
        assert_eq!(
            command_of(
                &strings(&["/bin/sh", "-c", r]),
                &strings(&["ignored"]),
                &env
            )
            .unwrap(),
            strings(&[
                "Rscript",
                "-e",
                "vtg::docker.wrapper('summary')",
                "a b c",
                "\"q\"",
                ""
            ])
        );
        // The exec form: Entrypoint then Cmd, as written.
        assert_eq!(
            command_of(&strings(&["python3"]), &strings(&["-m", "x"]), &env).unwrap(),
            strings(&["python3", "-m", "x"])
        );
        for (script, says) in [
            ("python a.py | tee log", "needs a shell (`|`)"),
            ("cd /app && python", "needs a shell (`&`)"),
            ("python $(which x)", "needs a shell (a `$` expansion)"),
            ("python *.py", "needs a shell (a pattern)"),
            ("python 'open", "unclosed `'`"),
        ] {
            let error = command_of(&strings(&["/bin/sh", "-c", script]), &[], &env).unwrap_err();
            assert!(error.contains(says), "{script}: {error}");
        }
        assert!(
            command_of(&[], &[], &env)
                .unwrap_err()
                .contains("no command")
        );
    }
}
