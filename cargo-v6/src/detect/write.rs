//! What `cargo v6 init` writes: the v6.toml text from what was detected and given, and the
//! next steps it suggests. Pure, so that the text is unit-tested without a project.

use std::path::Path;

use super::ReleaseTags;
use crate::manifest;
use crate::vantage6::{self, Wrapper};

/// How the manifest builds the image.
pub enum Build {
    /// The project's own Dockerfile (`build.dockerfile`).
    Own,
    /// A rendered template, on `base` when the default base does not fit.
    Render {
        /// The base image, when the default does not fit.
        base: Option<String>,
    },
}

/// One step `cargo v6 init` suggests once v6.toml is written; the command words them (and
/// names its flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Fill in a placeholder: the key (`image`, `build.base`, `build.command`).
    Set(&'static str),
    /// Read v6.toml over.
    Review,
    /// Commit v6.toml: publish refuses a dirty work tree.
    Commit,
    /// Tag the commit as the release `tag`, the one after the latest release tag `latest`.
    Tag {
        /// The tag to put on the commit.
        tag: String,
        /// The repository's latest release tag.
        latest: String,
    },
    /// Plan, then publish as a dry run.
    Try,
}

/// The steps after v6.toml is written: the placeholders to fill in, the commit that publish
/// needs (it refuses a dirty work tree), the release tag that commit then needs (under
/// `version-from-tag`), then a plan and a dry run.
pub fn next_steps(
    text: &str,
    git: Option<&crate::git::GitInfo>,
    release: Option<&ReleaseTags>,
) -> Vec<NextStep> {
    let mut steps = Vec::new();
    for (placeholder, key) in [
        (manifest::IMAGE_PLACEHOLDER, "image"),
        (manifest::BASE_PLACEHOLDER, "build.base"),
        ("echo replace me", "build.command"),
    ] {
        if text.contains(placeholder) {
            steps.push(NextStep::Set(key));
        }
    }
    steps.push(NextStep::Review);
    if git.is_some() {
        steps.push(NextStep::Commit);
    }
    // The version is the release tag on HEAD, and the commit just asked for has none: name
    // the tag that would follow the latest release.
    if let Some(release) = release {
        steps.push(NextStep::Tag {
            tag: format!("{}{}", release.prefix, release.latest.1.next_patch()),
            latest: release.latest.0.clone(),
        });
    }
    steps.push(NextStep::Try);
    steps
}

/// The default base image of the wrapper at the version written, if vantage6 publishes one.
pub fn vantage6_default_base(wrapper: Wrapper, version: &str) -> Option<String> {
    let (major, minor) = version.split_once('.')?;
    let version = vantage6::Vantage6Version {
        text: version.to_string(),
        major: major.parse().ok()?,
        minor: minor.split('.').next()?.parse().ok()?,
    };
    vantage6::default_base(wrapper, &version)
}

/// A name for a project with no metadata to read it from: its directory's, made a valid
/// package name (letters, digits, `_`, `-`, `.`, starting with a letter or `_`).
pub fn name_from_dir(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = raw
        .trim_start_matches(|c: char| !c.is_ascii_alphabetic() && c != '_')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "algorithm".to_string()
    } else {
        cleaned
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// What v6.toml says.
pub struct Choices<'a> {
    /// The wrapper.
    pub wrapper: Wrapper,
    /// PKG_NAME.
    pub name: &'a str,
    /// `MAJOR.MINOR`, as given or detected.
    pub vantage6: &'a str,
    /// The repository, or [`manifest::IMAGE_PLACEHOLDER`] for the user to fill in.
    pub image: &'a str,
    /// How the image is built.
    pub build: &'a Build,
    /// How the repository tags its releases, when it does: the version is then the tag's.
    pub release: Option<&'a ReleaseTags>,
    /// The workspace this is a member of, and the `[algorithm]`/`[build]` keys it gives.
    pub workspace: Option<(&'a manifest::Defaults, &'a [&'static str])>,
    /// The platforms to assemble for: the base's, when it has several and the Dockerfile can
    /// be assembled (empty: the engine builds, as before).
    pub platforms: &'a [crate::oci::platform::Platform],
}

/// The v6.toml `init` writes: only the keys it could tell (or was given), the others as
/// comments or placeholders that `plan` refuses until they are set.
pub fn manifest_text(c: &Choices<'_>) -> String {
    let inherits = |key: &str| c.workspace.is_some_and(|(_, keys)| keys.contains(&key));
    let mut text = "# cargo v6 manifest: see v6.toml.example for every key.\n".to_string();
    if let Some((root, keys)) = c.workspace {
        text.push_str(&format!(
            "# A member of the workspace {}{}.\n",
            crate::diagnostic::display(&root.path),
            match keys.is_empty() {
                true => String::new(),
                false => format!(": it gives {}", keys.join(", ")),
            }
        ));
    }
    text.push_str(&format!("[algorithm]\nname = {}\n", toml_string(c.name)));
    for (key, value) in [
        ("wrapper", toml_string(c.wrapper.as_str())),
        ("vantage6", toml_string(c.vantage6)),
        ("image", toml_string(c.image)),
    ] {
        if !inherits(key) {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    if c.release.is_none() {
        text.push_str("# version = \"1.0.0\"  # default: read from the project's metadata\n");
    }
    match c.build {
        Build::Own => text.push_str(
            "\n[build]\n# The project's own Dockerfile, built as it is (one LABEL line appended).\ndockerfile = \"Dockerfile\"\n",
        ),
        Build::Render { base: Some(base) } => text.push_str(&format!(
            "\n[build]\n# The base image of the project's Dockerfile.\nbase = {}\n",
            toml_string(base)
        )),
        Build::Render { base: None } => {
            let needs_base = c.wrapper != Wrapper::Python || c.vantage6.starts_with("3.");
            if needs_base && !inherits("base") {
                text.push_str(&format!(
                    "\n[build]\n# There is no maintained default base image for this wrapper: name yours.\nbase = \"{}\"\n",
                    manifest::BASE_PLACEHOLDER
                ));
            }
        }
    }
    if !c.platforms.is_empty() {
        if !text.contains("\n[build]\n") {
            text.push_str("\n[build]\n");
        }
        let listed: Vec<String> = c
            .platforms
            .iter()
            .map(|p| toml_string(&p.to_string()))
            .collect();
        text.push_str(&format!(
            "# The base is built for these platforms: each image is assembled (no engine, no emulation),\n# the same digest from any clone. Remove the line to build with the engine instead.\nplatforms = [{}]\n",
            listed.join(", ")
        ));
    }
    if c.wrapper == Wrapper::Minimal && !matches!(c.build, Build::Own) {
        if !text.contains("\n[build]\n") {
            text.push_str("\n[build]\n");
        }
        text.push_str("command = [\"sh\", \"-c\", \"echo replace me\"]\n");
    }
    if let Some(release) = c.release {
        text.push_str(&format!(
            "\n[publish]\n# The repository releases with git tags (latest: {}): the release tag on HEAD is the\n# version, whatever the project's metadata says. A new commit needs a new tag\n# (`git tag {}{}`), or --set-version for a build that is not a release.\n",
            release.latest.0,
            release.prefix,
            release.latest.1.next_patch()
        ));
        if release.prefix != "v" {
            text.push_str(&format!(
                "release-tag-prefix = {}\n",
                toml_string(release.prefix)
            ));
        }
        text.push_str("version-from-tag = true\n");
    }
    text
}

/// Why the manifest `text` cannot be written, checked with the same rules as every other
/// command (the value named when the message does not show it); `None` when it loads. Only
/// the placeholders `init` writes on purpose may remain for the user to fill in.
pub fn unwritable(text: &str, workspace: Option<&manifest::Defaults>) -> Option<String> {
    match manifest::Manifest::parse_member(
        Path::new(manifest::FILE_NAME),
        text.to_string(),
        workspace,
    ) {
        Err(manifest::ManifestError::Invalid {
            message, location, ..
        }) => {
            let value = location
                .source
                .get(location.span.clone())
                .unwrap_or_default();
            if value.contains(manifest::IMAGE_PLACEHOLDER)
                || value.contains(manifest::BASE_PLACEHOLDER)
            {
                return None;
            }
            let shown = value.trim_matches('"');
            let message = if message.contains(shown) {
                message
            } else {
                format!("{message} (`{shown}`)")
            };
            Some(message)
        }
        _ => None,
    }
}

/// Which values were given on the command line: they are written even where a workspace
/// gives one.
pub struct Given {
    /// `--wrapper`.
    pub wrapper: bool,
    /// `--vantage6`.
    pub vantage6: bool,
    /// `--image`.
    pub image: bool,
}

/// The keys of `[algorithm]` (and `base` of `[build]`) a member takes from `root`: those it
/// gives, unless given on the command line. A detected value that differs from the
/// workspace's is said (the notes returned), since the workspace's wins.
pub fn inherited(
    root: &manifest::Defaults,
    given: &Given,
    wrapper: Wrapper,
    vantage6: &str,
) -> (Vec<&'static str>, Vec<String>) {
    let mut keys = Vec::new();
    let mut notes = Vec::new();
    for (key, was_given, detected) in [
        ("wrapper", given.wrapper, Some(wrapper.as_str())),
        ("vantage6", given.vantage6, Some(vantage6)),
        ("image", given.image, None),
        ("base", false, None),
    ] {
        let table = if key == "base" { "build" } else { "algorithm" };
        let Some(value) = root.value(table, key) else {
            continue;
        };
        if was_given {
            continue;
        }
        if let Some(detected) = detected.filter(|d| *d != value) {
            notes.push(format!(
                "the workspace gives {key} = \"{value}\" (detected here: {detected}); set `{key}` in this v6.toml to use that instead"
            ));
        }
        keys.push(key);
    }
    (keys, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(wrapper: Wrapper, name: &str, vantage6: &str, image: &str) -> String {
        manifest_text(&Choices {
            wrapper,
            name,
            vantage6,
            image,
            build: &Build::Render { base: None },
            release: None,
            workspace: None,
            platforms: &[],
        })
    }

    #[test]
    fn platforms_the_base_has_are_written_and_load() {
        let both = crate::oci::platform::Platform::ALL;
        let written = manifest_text(&Choices {
            wrapper: Wrapper::Python,
            name: "algo",
            vantage6: "4.15",
            image: "ghcr.io/o/algo",
            build: &Build::Render { base: None },
            release: None,
            workspace: None,
            platforms: &both,
        });
        assert!(
            written.contains("platforms = [\"linux/amd64\", \"linux/arm64\"]\n"),
            "{written}"
        );
        assert_eq!(unwritable(&written, None), None);
    }

    #[test]
    fn what_init_writes_loads_but_for_the_placeholders_it_leaves() {
        let python = text(Wrapper::Python, "algo", "4.15", "ghcr.io/o/algo");
        assert!(!python.contains(manifest::BASE_PLACEHOLDER), "{python}");
        assert_eq!(unwritable(&python, None), None);
        // R has no default base: the placeholder is written, and left for the user.
        let r = text(Wrapper::R, "algo", "4.15", manifest::IMAGE_PLACEHOLDER);
        assert!(r.contains(manifest::BASE_PLACEHOLDER), "{r}");
        assert_eq!(unwritable(&r, None), None);
        // A bad value is named.
        let bad = text(Wrapper::Python, "my algo", "4.15", "ghcr.io/o/algo");
        let message = unwritable(&bad, None).expect("refused");
        assert!(message.contains("invalid algorithm name"), "{message}");
        assert!(message.contains("my algo"), "{message}");
    }

    #[test]
    fn a_member_inherits_what_the_workspace_gives_unless_given() {
        let root = manifest::Defaults {
            path: "../v6.toml".into(),
            dir: "..".into(),
            source: "[workspace.algorithm]\nvantage6 = \"4.14\"\nimage = \"ghcr.io/o/{name}\"\n"
                .into(),
        };
        let nothing_given = Given {
            wrapper: false,
            vantage6: false,
            image: false,
        };
        let (keys, notes) = inherited(&root, &nothing_given, Wrapper::Python, "4.15");
        assert_eq!(keys, ["vantage6", "image"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("vantage6 = \"4.14\" (detected here: 4.15)"));
        let vantage6_given = Given {
            vantage6: true,
            ..nothing_given
        };
        let (keys, notes) = inherited(&root, &vantage6_given, Wrapper::Python, "4.15");
        assert_eq!((keys, notes.len()), (vec!["image"], 0));
    }

    /// The placeholders left, then the release tag after the latest, then a try; no commit
    /// outside a repository.
    #[test]
    fn next_steps_follow_what_is_left_to_do() {
        let text = text(Wrapper::Python, "algo", "4.13", manifest::IMAGE_PLACEHOLDER);
        let release = ReleaseTags {
            prefix: "v",
            count: 1,
            latest: (
                "v1.2.1".into(),
                crate::version::Version::parse_for("1.2.1", Wrapper::Python).unwrap(),
            ),
        };
        assert_eq!(
            next_steps(&text, None, Some(&release)),
            [
                NextStep::Set("image"),
                NextStep::Review,
                NextStep::Tag {
                    tag: "v1.2.2".into(),
                    latest: "v1.2.1".into()
                },
                NextStep::Try
            ]
        );
        assert_eq!(
            next_steps("image = \"ghcr.io/a/b\"\n", None, None),
            [NextStep::Review, NextStep::Try]
        );
    }
}
