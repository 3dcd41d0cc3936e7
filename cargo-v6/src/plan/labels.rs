//! The image's labels, and how they reach the image.
//!
//! The classic builder turns every label given as a build parameter into a `LABEL` step of its
//! own, each running a container (about 60 ms apiece: seven in a git repository). One `LABEL`
//! instruction at the end of the Dockerfile costs one step, whatever the number of labels.
//! Values are written in double quotes with `\`, `"` and `$` escaped, the three characters the
//! Dockerfile lexer treats specially there; a label the instruction cannot carry (a line break
//! or another control character, which would end or corrupt the instruction's line; `=` in a
//! key, which the parser splits on) goes as a build parameter instead, as before.
//!
//! Both ways have a size limit (a Dockerfile line, the build request's URL); the manifest
//! checks the values it holds against them when it is loaded, so that a value too large is
//! refused naming its field rather than by the engine (see `manifest::DOCKERFILE_LINE_MAX`).

use std::collections::BTreeMap;

use crate::git::GitInfo;
use crate::manifest::{Manifest, label_fits_on_line};
use crate::version::Version;

/// OCI annotations from the manifest and git; `created` is the commit time so that the same
/// commit gives the same labels. The user's own labels win.
pub fn labels(
    manifest: &Manifest,
    version: &Version,
    git: Option<&GitInfo>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut set = |key: &str, value: &str| {
        labels.insert(format!("org.opencontainers.image.{key}"), value.to_string());
    };
    set("title", &manifest.name);
    set("version", version.raw());
    if let Some(description) = &manifest.description {
        set("description", description);
    }
    if let Some(license) = &manifest.license {
        set("licenses", license);
    }
    if let Some(git) = git {
        set("revision", &git.revision);
        set("created", &git.created);
        if let Some(source) = &git.source {
            set("source", source);
        }
    }
    labels.extend(manifest.build.labels.clone());
    labels
}

/// Splits `labels` into one `LABEL` instruction (`None` when no label fits in one) and the
/// labels that must travel as build parameters.
pub fn instruction(
    labels: &BTreeMap<String, String>,
) -> (Option<String>, BTreeMap<String, String>) {
    let mut pairs = Vec::new();
    let mut rest = BTreeMap::new();
    for (key, value) in labels {
        if label_fits_on_line(key, value) {
            pairs.push(format!("{}={}", quote(key), quote(value)));
        } else {
            rest.insert(key.clone(), value.clone());
        }
    }
    let line = (!pairs.is_empty()).then(|| format!("LABEL {}", pairs.join(" ")));
    (line, rest)
}

/// A double-quoted Dockerfile word: inside double quotes the lexer unescapes `\\`, `\"` and
/// `\$` and leaves every other character as it is.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_instruction_with_quoted_values() {
        let (line, rest) = instruction(&map(&[
            ("a.b", "plain"),
            ("c", r#"say "hi" to $HOME\n"#),
            ("with space", "x y"),
        ]));
        assert_eq!(
            line.as_deref(),
            Some(r#"LABEL "a.b"="plain" "c"="say \"hi\" to \$HOME\\n" "with space"="x y""#)
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn what_one_line_cannot_carry_goes_as_a_build_parameter() {
        let labels = map(&[
            ("ok", "fine"),
            ("multi", "line one\nline two"),
            ("k=v", "x"),
            ("tab", "a\tb"),
        ]);
        let (line, rest) = instruction(&labels);
        assert_eq!(line.as_deref(), Some(r#"LABEL "ok"="fine""#));
        assert_eq!(
            rest,
            map(&[
                ("multi", "line one\nline two"),
                ("k=v", "x"),
                ("tab", "a\tb")
            ])
        );
        assert_eq!(instruction(&map(&[("m", "\r")])).0, None);
    }

    /// The manifest's size check counts a label's bytes on the `LABEL` line as written here.
    #[test]
    fn the_manifest_measures_labels_as_they_are_written() {
        for text in ["", "plain", r#"say "hi" to $HOME\n"#, "ünï ✓ $$"] {
            assert_eq!(
                crate::manifest::quoted_len(text),
                quote(text).len(),
                "{text:?}"
            );
        }
    }
}
