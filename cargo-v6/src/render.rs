//! Dockerfiles rendered from handlebars templates: built-in ones embedded in the binary, each
//! overridable by file name from the directory that `build.templates` names.
//!
//! Every value inserted is validated by [`crate::manifest`] (names, references, single-line
//! commands) so that it cannot add an instruction; templates render with strict mode on and
//! HTML escaping off.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use handlebars::Handlebars;
use serde::Serialize;

use crate::manifest::Command;

/// The built-in templates, by file name: the files of `cargo-v6/templates/`, inside the crate so
/// that they ship in its package (the top-level `templates` is a symlink to that directory).
const BUILT_IN: [(&str, &str); 5] = [
    (
        "python-3.Dockerfile.hbs",
        include_str!("../templates/python-3.Dockerfile.hbs"),
    ),
    (
        "python-4.Dockerfile.hbs",
        include_str!("../templates/python-4.Dockerfile.hbs"),
    ),
    (
        "python-5.Dockerfile.hbs",
        include_str!("../templates/python-5.Dockerfile.hbs"),
    ),
    (
        "r.Dockerfile.hbs",
        include_str!("../templates/r.Dockerfile.hbs"),
    ),
    (
        "minimal.Dockerfile.hbs",
        include_str!("../templates/minimal.Dockerfile.hbs"),
    ),
];

/// What a template may use.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateData {
    /// The base image reference, normalized.
    pub base: String,
    /// PKG_NAME.
    pub name: String,
    /// Build argument names, declared with `ARG`.
    pub args: Vec<String>,
    /// Minimal wrapper: the install command (`RUN` line), if any.
    pub install: Option<String>,
    /// Minimal wrapper: the `CMD` instruction's argument (exec form as JSON, or shell form).
    pub command: Option<String>,
}

/// A template could not be read or rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The override file exists but cannot be read.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The override file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Invalid handlebars, or a field the data does not have.
    #[error("template {name}: {message}")]
    Template {
        /// The template's file name (or path, for an override).
        name: String,
        /// Handlebars' message.
        message: String,
    },
}

/// The CMD argument for a minimal image: exec form is JSON, exactly what Docker parses.
pub fn command_text(command: &Command) -> String {
    match command {
        Command::Exec(args) => serde_json::to_string(args).expect("strings serialize"),
        Command::Shell(line) => line.clone(),
    }
}

/// Renders template `name`, from `overrides` if it holds a file of that name, else built in.
pub fn render(
    name: &str,
    overrides: Option<&Path>,
    data: &TemplateData,
) -> Result<String, RenderError> {
    let override_path = overrides.map(|dir| dir.join(name)).filter(|p| p.is_file());
    let (shown, text) = match &override_path {
        Some(path) => (
            crate::diagnostic::display(path),
            crate::files::read_regular_text(path, crate::files::SMALL_FILE_MAX).map_err(
                |source| RenderError::Read {
                    path: crate::diagnostic::display(path),
                    source,
                },
            )?,
        ),
        None => {
            let built_in = BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| RenderError::Template {
                    name: name.to_string(),
                    message: "no such built-in template".to_string(),
                })?;
            (name.to_string(), built_in)
        }
    };
    render_text(&shown, &text, data)
}

/// Renders `text`, a template shown as `name` in errors, the one way every template of the
/// tool is rendered: strict mode (a field the data lacks is an error, not an empty string) and
/// no HTML escaping (the output is a Dockerfile or YAML, whose values the caller made safe).
pub fn render_text(name: &str, text: &str, data: &impl Serialize) -> Result<String, RenderError> {
    let template_error = |message: String| RenderError::Template {
        name: name.to_string(),
        message,
    };
    compiled(name, text)
        .map_err(template_error)?
        .render(name, data)
        .map_err(|e| template_error(e.to_string()))
}

/// A registry holding `text` under `name`, parsed once per run: the members of a workspace
/// render the same few templates, and parsing one costs more than rendering it.
fn compiled(name: &str, text: &str) -> Result<Arc<Handlebars<'static>>, String> {
    type Registries = HashMap<(String, String), Arc<Handlebars<'static>>>;
    static COMPILED: LazyLock<Mutex<Registries>> = LazyLock::new(Mutex::default);
    let key = (name.to_string(), text.to_string());
    if let Some(handlebars) = COMPILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(Arc::clone(handlebars));
    }
    let mut handlebars = Handlebars::new();
    handlebars.register_escape_fn(handlebars::no_escape);
    handlebars.set_strict_mode(true);
    handlebars
        .register_template_string(name, text)
        .map_err(|e| e.to_string())?;
    let handlebars = Arc::new(handlebars);
    COMPILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, Arc::clone(&handlebars));
    Ok(handlebars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vantage6::{Wrapper, template_name};

    fn data() -> TemplateData {
        TemplateData {
            base: "ghcr.io/vantage6/infrastructure/algorithm-base:4.13".into(),
            name: "partial_sum".into(),
            args: vec![],
            install: None,
            command: None,
        }
    }

    #[test]
    fn every_built_in_template_has_a_file_name_the_selector_produces() {
        let mut names: Vec<String> = [3, 4, 5]
            .map(|m| template_name(Wrapper::Python, m))
            .to_vec();
        names.push(template_name(Wrapper::R, 4));
        names.push(template_name(Wrapper::Minimal, 4));
        let built_in: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, built_in);
    }

    #[test]
    fn every_file_in_the_templates_directory_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        // Files only: `ci/` holds the CI templates, which `crate::ci` embeds and checks.
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().unwrap().is_file())
            .map(|entry| entry.file_name().into_string().unwrap())
            .collect();
        files.sort();
        let mut built_in: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        built_in.sort();
        assert_eq!(files, built_in);
    }

    #[test]
    fn override_directory_wins_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("python-4.Dockerfile.hbs"),
            "FROM {{base}}\nCMD [\"{{name}}\"]\n",
        )
        .unwrap();
        let text = render("python-4.Dockerfile.hbs", Some(dir.path()), &data()).unwrap();
        assert_eq!(
            text,
            "FROM ghcr.io/vantage6/infrastructure/algorithm-base:4.13\nCMD [\"partial_sum\"]\n"
        );
    }

    #[test]
    fn unknown_field_in_an_override_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.Dockerfile.hbs"), "FROM {{nope}}\n").unwrap();
        let err = render("r.Dockerfile.hbs", Some(dir.path()), &data()).unwrap_err();
        assert!(matches!(err, RenderError::Template { .. }), "{err}");
    }

    /// Templates are compiled once per name and text: another text under the same name, or
    /// the same text under another name, is its own template.
    #[test]
    fn each_name_and_text_is_its_own_template() {
        let first = render_text("one.hbs", "A {{name}}", &data()).unwrap();
        let other_text = render_text("one.hbs", "B {{name}}", &data()).unwrap();
        assert_eq!(
            (first.as_str(), other_text.as_str()),
            ("A partial_sum", "B partial_sum")
        );
        let name_of = |name: &str| match render_text(name, "{{nope}}", &data()).unwrap_err() {
            RenderError::Template { name, .. } => name,
            other => panic!("{other}"),
        };
        assert_eq!(
            (name_of("a.hbs"), name_of("b.hbs")),
            ("a.hbs".into(), "b.hbs".into())
        );
    }

    #[test]
    fn exec_form_command_is_json() {
        let command = Command::Exec(vec!["cat".into(), "a \"b\"".into()]);
        assert_eq!(command_text(&command), r#"["cat","a \"b\""]"#);
    }
}

#[cfg(test)]
mod snapshots {
    use super::*;
    use crate::vantage6::{Wrapper, template_name};

    /// Every built-in template for every vantage6 major it serves; 3.x and R need an explicit
    /// base, so those use a made-up one as a user would set it.
    #[test]
    fn built_in_templates_render_as_the_vantage6_docs_say() {
        let cases = [
            (Wrapper::Python, 3, "example.org/team/algorithm-base:3.10"),
            (
                Wrapper::Python,
                4,
                "ghcr.io/vantage6/infrastructure/algorithm-base:4.13",
            ),
            (
                Wrapper::Python,
                5,
                "ghcr.io/vantage6/infrastructure/algorithm-base:5.0",
            ),
            (Wrapper::R, 3, "example.org/team/r-base:4.3"),
            (Wrapper::R, 4, "example.org/team/r-base:4.3"),
            (Wrapper::R, 5, "example.org/team/r-base:4.3"),
            (Wrapper::Minimal, 3, "docker.io/library/python:3.12-slim"),
            (Wrapper::Minimal, 4, "docker.io/library/python:3.12-slim"),
            (Wrapper::Minimal, 5, "docker.io/library/python:3.12-slim"),
        ];
        for (wrapper, major, base) in cases {
            let minimal = wrapper == Wrapper::Minimal;
            let data = TemplateData {
                base: base.into(),
                name: if wrapper == Wrapper::R {
                    "vtg.summary"
                } else {
                    "my_algorithm"
                }
                .into(),
                args: if major == 5 {
                    vec!["PIP_INDEX_URL".into()]
                } else {
                    vec![]
                },
                install: minimal.then(|| "pip install --no-cache-dir .".into()),
                command: minimal.then(|| {
                    command_text(&Command::Exec(vec![
                        "python".into(),
                        "-m".into(),
                        "my_algorithm".into(),
                    ]))
                }),
            };
            let text = render(&template_name(wrapper, major), None, &data).unwrap();
            insta::assert_snapshot!(format!("{}-{major}", wrapper.as_str()), text);
        }
    }
}
