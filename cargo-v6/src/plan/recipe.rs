//! Whether a Dockerfile can be assembled instead of built, and what it asks for.
//!
//! An image is assembled (no container runs, so no emulation for another platform) when its
//! Dockerfile is the Python template's shape: one `FROM`, `COPY . DIR`, one install of `DIR`
//! with pip or uv, and instructions that only change the image's configuration (`ARG`, `ENV`,
//! `LABEL`, `CMD`, `ENTRYPOINT`, `WORKDIR`, `EXPOSE`, `USER`). Anything else (`RUN apt-get`,
//! `ADD`, a second stage) needs a builder that runs it: [`NotAssemblable`] names the step.
//! Pure: text in, [`Recipe`] out; and the [`Lock`] that fixes the dependencies' versions.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dockerfile::{Instruction, expand, final_base, instructions};
use crate::oci::image::Command;

/// What an assemblable Dockerfile builds: the base and the steps after its `FROM`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The base image as the Dockerfile names it, `ARG`s expanded.
    pub base: String,
    /// The steps after `FROM`.
    pub steps: Vec<RecipeStep>,
}

/// One step of a [`Recipe`], with the text the image's history records for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeStep {
    /// The instruction as the history shows it (`COPY . /app`).
    pub created_by: String,
    /// What it does.
    pub action: Action,
}

/// What a step does to the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `ENV`: variables set in order (values expanded).
    Env(Vec<(String, String)>),
    /// `LABEL`: labels set.
    Label(Vec<(String, String)>),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `WORKDIR`, absolute.
    Workdir(String),
    /// `EXPOSE`: ports (`80/tcp`).
    Expose(Vec<String>),
    /// `USER`.
    User(String),
    /// `COPY . DIR`: the build context's files into the absolute folder `DIR`.
    CopyContext {
        /// The folder.
        dir: String,
    },
    /// `RUN pip install DIR` or `RUN uv pip install --system DIR`: the project copied to `DIR`
    /// and its dependencies installed into the base's Python.
    Install {
        /// Which installer the Dockerfile uses (the layout it writes is the same).
        installer: Installer,
    },
}

/// The installer a Dockerfile's install step names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// `pip install DIR` (vantage6 4.x bases).
    Pip,
    /// `uv pip install --system DIR` (vantage6 5.x bases).
    Uv,
}

/// Why a Dockerfile cannot be assembled: the step, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAssemblable {
    /// The step, as `line N: \`RUN apt-get ...\``; `None` for the file as a whole.
    pub step: Option<String>,
    /// What about it needs a builder.
    pub reason: String,
}

impl std::fmt::Display for NotAssemblable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.step {
            Some(step) => write!(f, "{step}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// The recipe of `dockerfile` with `build_args`, or the first step that needs a builder.
pub fn recipe(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Recipe, NotAssemblable> {
    let all = instructions(dockerfile);
    let froms: Vec<&Instruction> = all.iter().filter(|s| s.keyword == "FROM").collect();
    let [from] = froms.as_slice() else {
        let step = froms.get(1).map(|s| s.shown());
        return Err(NotAssemblable {
            step,
            reason: "a build of more than one stage (or none) runs its stages in a builder".into(),
        });
    };
    let base = final_base(dockerfile, build_args).unwrap_or_default();
    if from.rest.split_whitespace().any(|w| w.starts_with("--")) {
        return Err(refused(
            from,
            "`FROM` with flags (such as --platform) is not assembled",
        ));
    }
    // Values visible to later instructions: the stage's ARGs (build arguments win over
    // their defaults) and the ENVs set so far.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut copied: Option<String> = None;
    let mut installed = false;
    let after_from = all.iter().skip_while(|s| s.keyword != "FROM").skip(1);
    for step in after_from {
        let text = step.text.as_str();
        let action = match step.keyword.as_str() {
            "ARG" => {
                let word = words(text).map_err(|why| refused(step, why))?;
                for w in word {
                    let (name, default) = w.split_once('=').unwrap_or((&w, ""));
                    let value = build_args.get(name).cloned();
                    vars.insert(
                        name.to_string(),
                        value.unwrap_or_else(|| expand(default, &vars)),
                    );
                }
                continue;
            }
            "ENV" => {
                let pairs = pairs(text, true).map_err(|why| refused(step, why))?;
                // Every value of one ENV expands against the variables from before it, as the
                // engine does (`ENV A=1 B=$A` gives B the earlier A).
                let before = vars.clone();
                let mut set = Vec::new();
                for (name, value) in pairs {
                    let value = expand_known(step, &value, &before)?;
                    vars.insert(name.clone(), value.clone());
                    set.push((name, value));
                }
                Action::Env(set)
            }
            "LABEL" => {
                let pairs = pairs(text, false).map_err(|why| refused(step, why))?;
                let mut set = Vec::new();
                for (name, value) in pairs {
                    set.push((name, expand_known(step, &value, &vars)?));
                }
                Action::Label(set)
            }
            "CMD" => Action::Cmd(command(text)),
            "ENTRYPOINT" => Action::Entrypoint(command(text)),
            "WORKDIR" => {
                let dir = expand_known(step, text, &vars)?;
                if !dir.starts_with('/') {
                    return Err(refused(step, "a relative `WORKDIR` is not assembled"));
                }
                Action::Workdir(dir)
            }
            "EXPOSE" => Action::Expose(
                expand_known(step, text, &vars)?
                    .split_whitespace()
                    .map(|port| match port.contains('/') {
                        true => port.to_string(),
                        false => format!("{port}/tcp"),
                    })
                    .collect(),
            ),
            "USER" => Action::User(expand_known(step, text, &vars)?),
            "COPY" => {
                let dir = copy_of_context(text).ok_or_else(|| {
                    refused(
                        step,
                        "only `COPY . DIR` of the whole context to an absolute folder is assembled",
                    )
                })?;
                if copied.replace(dir.clone()).is_some() {
                    return Err(refused(step, "a second `COPY` is not assembled"));
                }
                Action::CopyContext { dir }
            }
            "RUN" => {
                let installer = copied
                    .as_deref()
                    .filter(|_| !installed)
                    .and_then(|dir| install_of(text, dir))
                    .ok_or_else(|| {
                        refused(
                            step,
                            "a `RUN` step runs a program of the image's platform; only `pip install DIR` or `uv pip install --system DIR` of the copied project is assembled",
                        )
                    })?;
                installed = true;
                Action::Install { installer }
            }
            _ => {
                return Err(refused(
                    step,
                    "this instruction is not assembled (only ARG, ENV, LABEL, CMD, ENTRYPOINT, WORKDIR, EXPOSE, USER, `COPY . DIR` and the install)",
                ));
            }
        };
        steps.push(RecipeStep {
            created_by: format!("{} {}", step.keyword, step.text),
            action,
        });
    }
    if !installed {
        return Err(NotAssemblable {
            step: None,
            reason: "the Dockerfile installs no project (`COPY . DIR` then `pip install DIR`)"
                .into(),
        });
    }
    Ok(Recipe { base, steps })
}

fn refused(step: &Instruction, reason: &str) -> NotAssemblable {
    NotAssemblable {
        step: Some(step.shown()),
        reason: reason.to_string(),
    }
}

/// `value` with `$NAME`s expanded; a name this Dockerfile never set is the base image's
/// variable (`ENV PATH=/x:$PATH`), whose value is not known here.
fn expand_known(
    step: &Instruction,
    value: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, NotAssemblable> {
    // A literal `$` (written `\$` by `words`) waits out the expansion as a character no
    // Dockerfile value holds.
    const LITERAL: char = '\u{0}';
    let value = value.replace("\\$", &LITERAL.to_string());
    let mut names = value.split('$').skip(1).map(|after| {
        let after = after.strip_prefix('{').unwrap_or(after);
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        &after[..end]
    });
    match names.find(|name| !name.is_empty() && !vars.contains_key(*name)) {
        Some(name) => Err(refused(
            step,
            &format!(
                "`${name}` is not set by this Dockerfile (a variable of the base image is not assembled)"
            ),
        )),
        None => Ok(expand(&value, vars).replace(LITERAL, "$")),
    }
}

/// The folder `COPY . DIR` copies the context to (also `./`, and `DIR/`).
fn copy_of_context(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [source, dir] = parts.as_slice() else {
        return None;
    };
    if !matches!(*source, "." | "./") || !dir.starts_with('/') {
        return None;
    }
    let dir = dir.trim_end_matches('/');
    (!dir.is_empty() && !dir.contains('$')).then(|| dir.to_string())
}

/// The installer of an install line of the copied project `dir`.
fn install_of(text: &str, dir: &str) -> Option<Installer> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let target = words.last()?.trim_end_matches('/');
    if target != dir {
        return None;
    }
    let head = &words[..words.len() - 1];
    let quiet = |w: &&str| matches!(*w, "--no-cache-dir" | "--no-cache" | "-q" | "--quiet");
    let head: Vec<&str> = head.iter().filter(|w| !quiet(w)).copied().collect();
    match head.as_slice() {
        ["pip" | "pip3", "install"] => Some(Installer::Pip),
        ["python" | "python3", "-m", "pip", "install"] => Some(Installer::Pip),
        ["uv", "pip", "install", "--system"] => Some(Installer::Uv),
        _ => None,
    }
}

/// `CMD`/`ENTRYPOINT`: a JSON array is the exec form, anything else the shell form (as the
/// engine reads it: an array that is not valid JSON is a shell command).
fn command(text: &str) -> Command {
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(argv) => Command::Exec(argv),
        Err(_) => Command::Shell(text.to_string()),
    }
}

/// `KEY=VALUE` pairs; with `legacy`, also `ENV KEY VALUE` (one variable, the rest its value).
fn pairs(text: &str, legacy: bool) -> Result<Vec<(String, String)>, &'static str> {
    let first = text.split_whitespace().next().unwrap_or("");
    if legacy && !first.contains('=') {
        let value = text[first.len()..].trim();
        return Ok(vec![(first.to_string(), value.to_string())]);
    }
    words(text)?
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err("expected KEY=VALUE"),
        })
        .collect()
}

/// Words as the Dockerfile lexer splits them: white space outside quotes separates, a `\`
/// escapes the next character, single quotes keep everything. A `$` that must not be expanded
/// (escaped, or in single quotes) is written `\$`, for [`expand_known`] to leave alone.
fn words(text: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        // `\$` stays escaped so that expansion leaves it alone.
                        Some('\\') => match chars.next() {
                            Some('$') => word.push_str("\\$"),
                            Some(next) => word.push(next),
                            None => return Err("an unterminated `\\`"),
                        },
                        Some(other) => word.push(other),
                        None => return Err("an unterminated double quote"),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some('$') => word.push_str("\\$"),
                        Some(other) => word.push(other),
                        None => return Err("an unterminated single quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('$') => word.push_str("\\$"),
                    Some(next) => word.push(next),
                    None => return Err("an unterminated `\\`"),
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

/// The lock that fixes the versions of an assembled image's dependencies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum Lock {
    /// uv's `uv.lock`, exported to constraints with `uv export`.
    UvLock(String),
    /// A requirements file whose pins carry hashes, used as constraints.
    Requirements(String),
}

impl Lock {
    /// The lock among the context's `files` (relative to `context`): `uv.lock` (beside a
    /// pyproject.toml), else the first `requirements*.txt` at the top whose lines carry
    /// `--hash=`.
    pub fn find(context: &Path, files: &[String]) -> Option<Lock> {
        if files.iter().any(|f| f == "uv.lock") && files.iter().any(|f| f == "pyproject.toml") {
            return Some(Lock::UvLock("uv.lock".into()));
        }
        files
            .iter()
            .filter(|f| !f.contains('/') && f.starts_with("requirements") && f.ends_with(".txt"))
            .find(|f| {
                crate::files::read_regular_text(&context.join(f), 16 << 20)
                    .is_ok_and(|text| text.contains("--hash="))
            })
            .map(|f| Lock::Requirements(f.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON4: &str = "# Rendered by cargo v6\nFROM ghcr.io/vantage6/infrastructure/algorithm-base:4.15\nARG PKG_NAME=\"summary\"\nCOPY . /app\nRUN pip install /app\nENV PKG_NAME=${PKG_NAME}\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\nLABEL \"a.b\"=\"say \\\"hi\\\" to \\$HOME\" \"with space\"=\"x  y\"\n";

    fn no_args() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn the_python_template_is_assembled_step_by_step() {
        let recipe = recipe(PYTHON4, &no_args()).unwrap();
        assert_eq!(
            recipe.base,
            "ghcr.io/vantage6/infrastructure/algorithm-base:4.15"
        );
        let actions: Vec<&Action> = recipe.steps.iter().map(|s| &s.action).collect();
        assert_eq!(
            actions,
            [
                &Action::CopyContext { dir: "/app".into() },
                &Action::Install {
                    installer: Installer::Pip
                },
                &Action::Env(vec![("PKG_NAME".into(), "summary".into())]),
                &Action::Cmd(Command::Shell(
                    "python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\""
                        .into()
                )),
                &Action::Label(vec![
                    ("a.b".into(), "say \"hi\" to $HOME".into()),
                    ("with space".into(), "x  y".into()),
                ]),
            ]
        );
        assert_eq!(recipe.steps[0].created_by, "COPY . /app");
    }

    #[test]
    fn build_arguments_win_over_arg_defaults() {
        let args = BTreeMap::from([("PKG_NAME".to_string(), "other".to_string())]);
        let recipe = recipe(PYTHON4, &args).unwrap();
        assert!(
            recipe
                .steps
                .iter()
                .any(|s| s.action == Action::Env(vec![("PKG_NAME".into(), "other".into())]))
        );
    }

    #[test]
    fn uv_installs_and_exec_form_commands_are_read() {
        let text = "FROM base:5.0\nCOPY ./ /app/\nRUN uv pip install --system --no-cache /app\nENV A=1 B=\"two words\"\nENTRYPOINT [\"python\", \"-m\", \"x\"]\nWORKDIR /app\nEXPOSE 8888\n";
        let recipe = recipe(text, &no_args()).unwrap();
        let actions: Vec<Action> = recipe.steps.into_iter().map(|s| s.action).collect();
        assert_eq!(
            actions[1],
            Action::Install {
                installer: Installer::Uv
            }
        );
        assert_eq!(
            actions[2],
            Action::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into())
            ])
        );
        assert_eq!(
            actions[3],
            Action::Entrypoint(Command::Exec(vec![
                "python".into(),
                "-m".into(),
                "x".into()
            ]))
        );
        assert_eq!(actions[4], Action::Workdir("/app".into()));
        assert_eq!(actions[5], Action::Expose(vec!["8888/tcp".into()]));
    }

    #[test]
    fn a_step_that_runs_a_program_is_named_in_the_refusal() {
        let text = "FROM base:1\nRUN apt-get update && apt-get install -y gcc\nCOPY . /app\nRUN pip install /app\n";
        let refusal = recipe(text, &no_args()).unwrap_err();
        assert_eq!(
            refusal.step.as_deref(),
            Some("line 2: `RUN apt-get update && apt-get install -y gcc`")
        );
        assert!(refusal.reason.contains("runs a program"), "{refusal}");
    }

    #[test]
    fn other_shapes_are_refused_with_their_step() {
        let cases = [
            (
                "FROM a AS b\nFROM b\nCOPY . /app\nRUN pip install /app\n",
                "line 2",
            ),
            ("FROM a\nADD x.tar /x\n", "line 2"),
            ("FROM a\nCOPY src /app\nRUN pip install /app\n", "line 2"),
            ("FROM a\nCOPY . /app\nRUN pip install /other\n", "line 3"),
            (
                "FROM a\nCOPY . /app\nRUN pip install /app\nRUN pip install /app\n",
                "line 4",
            ),
            (
                "FROM a\nENV PATH=/x:$PATH\nCOPY . /app\nRUN pip install /app\n",
                "line 2",
            ),
            (
                "FROM --platform=linux/arm64 a\nCOPY . /app\nRUN pip install /app\n",
                "line 1",
            ),
            ("FROM a\nWORKDIR app\n", "line 2"),
        ];
        for (text, line) in cases {
            let refusal = recipe(text, &no_args()).unwrap_err();
            let step = refusal.step.clone().unwrap_or_default();
            assert!(step.starts_with(line), "{text:?}: {refusal}");
        }
        let none = recipe("FROM a\nCOPY . /app\n", &no_args()).unwrap_err();
        assert_eq!(none.step, None);
    }

    #[test]
    fn a_lock_is_uv_lock_beside_pyproject_or_requirements_with_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "pandas==2.2.3\n").unwrap();
        std::fs::write(
            dir.path().join("requirements-lock.txt"),
            "pandas==2.2.3 --hash=sha256:00\n",
        )
        .unwrap();
        let files = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let found = |names: &[&str]| Lock::find(dir.path(), &files(names));
        assert_eq!(found(&["requirements.txt"]), None, "pins without hashes");
        assert_eq!(
            found(&["requirements.txt", "requirements-lock.txt"]),
            Some(Lock::Requirements("requirements-lock.txt".into()))
        );
        assert_eq!(
            found(&["pyproject.toml", "uv.lock", "requirements-lock.txt"]),
            Some(Lock::UvLock("uv.lock".into()))
        );
        assert_eq!(found(&["uv.lock"]), None, "uv.lock without its project");
    }

    #[test]
    fn one_env_expands_against_the_variables_before_it_and_expose_expands() {
        let text = "FROM a\nARG P=8080\nENV A=1\nENV A=2 C=$A\nEXPOSE $P\nCOPY . /app\nRUN pip install /app\n";
        let actions: Vec<Action> = recipe(text, &no_args())
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.action)
            .collect();
        assert_eq!(
            actions[1],
            Action::Env(vec![("A".into(), "2".into()), ("C".into(), "1".into())])
        );
        assert_eq!(actions[2], Action::Expose(vec!["8080/tcp".into()]));
        // A name set only in the same ENV is not known before it.
        let same = recipe(
            "FROM a\nENV A=1 B=$A\nCOPY . /app\nRUN pip install /app\n",
            &no_args(),
        );
        assert!(same.unwrap_err().step.unwrap().starts_with("line 2"));
    }

    #[test]
    fn legacy_env_takes_the_rest_of_the_line() {
        let text = "FROM a\nENV GREETING hello   world\nCOPY . /app\nRUN pip install /app\n";
        let recipe = recipe(text, &no_args()).unwrap();
        assert_eq!(
            recipe.steps[0].action,
            Action::Env(vec![("GREETING".into(), "hello   world".into())])
        );
    }
}
