//! `cargo v6 init`: write a v6.toml for the project in the current directory.

use std::path::Path;

use crate::detect::{self, Build, Choices, Given, NextStep};
use crate::error::Error;
use crate::manifest;
use crate::project::ProjectFiles;
use crate::report::Reporter;
use crate::vantage6::{self, Wrapper};

/// Write v6.toml for the project in the current directory, from what can be detected.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 init
  cargo v6 init --image ghcr.io/you/my-algorithm --vantage6 4.15
  cargo v6 init --wrapper minimal --name my_tool")]
pub struct Args {
    /// Wrapper type (default: detected from the project).
    #[arg(long, value_enum)]
    wrapper: Option<WrapperArg>,
    /// Package name (PKG_NAME; default: from the project's metadata or Dockerfile).
    #[arg(long)]
    name: Option<String>,
    /// Registry and repository to publish to (default: ghcr.io/OWNER/REPO for a GitHub remote).
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// vantage6 version targeted, MAJOR.MINOR (default: from the Dockerfile, else the newest).
    #[arg(long, value_name = "VERSION")]
    vantage6: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum WrapperArg {
    Python,
    R,
    Minimal,
}

impl From<WrapperArg> for Wrapper {
    fn from(w: WrapperArg) -> Self {
        match w {
            WrapperArg::Python => Wrapper::Python,
            WrapperArg::R => Wrapper::R,
            WrapperArg::Minimal => Wrapper::Minimal,
        }
    }
}

/// Runs `cargo v6 init`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let dir = super::current_dir()?;
    let target = dir.join(manifest::FILE_NAME);
    if target.exists() {
        return Err(Error::Failed {
            message: format!("`{}` already exists", manifest::FILE_NAME),
            help: Some("edit it, or remove it to start over".to_string()),
        });
    }
    // A directory that a workspace above lists: write a member's v6.toml, which inherits.
    let workspace = crate::workspace::enclosing_root(Path::new("."), &dir)?;
    let files = ProjectFiles::read(&dir);
    let dockerfile = files.dockerfile.clone();
    let found = detect::detect(&files);
    let git = crate::git::read(&dir, &dir);

    let given = Given {
        wrapper: args.wrapper.is_some(),
        vantage6: args.vantage6.is_some(),
        image: args.image.is_some(),
    };
    let wrapper = match (args.wrapper, found.wrapper) {
        (Some(w), _) => w.into(),
        (None, Some((w, from))) => {
            reporter.status("Detected", format!("{} project ({from})", w.as_str()));
            w
        }
        (None, None) => {
            reporter.note(
                "no pyproject.toml, setup.cfg, setup.py, DESCRIPTION or Cargo.toml: using the minimal wrapper",
            );
            Wrapper::Minimal
        }
    };
    let name = match (args.name, found.name) {
        (Some(name), _) => name,
        (None, Some(found)) => {
            reporter.status("Detected", format!("name `{}` ({})", found.name, found.why));
            if let Some(warning) = found.warning {
                reporter.warn(warning);
            }
            found.name
        }
        (None, None) => detect::name_from_dir(&dir),
    };
    let vantage6 = match (args.vantage6, found.vantage6) {
        (Some(v), _) => v,
        (None, Some(found)) => {
            reporter.status(
                "Detected",
                format!("vantage6 {} ({})", found.version, found.why),
            );
            if let Some(known) = found.newer_than {
                reporter.note(format!(
                    "vantage6 {} is newer than the newest this cargo v6 knows ({known}): taken as written",
                    found.version
                ));
            }
            found.version
        }
        (None, None) => vantage6::NEWEST.to_string(),
    };
    let image = args
        .image
        .or_else(|| {
            // Before the first commit there is no GitInfo, but the remote may be set.
            let source = match &git {
                Some(git) => git.source.clone(),
                None => crate::git::remote_source(&dir),
            };
            let image = detect::image_from_remote(source.as_deref()?)?;
            reporter.status("Detected", format!("image {image} (GitHub remote)"));
            Some(image)
        })
        .unwrap_or_else(|| {
            // A workspace that names the image (`ghcr.io/org/{name}`) gives it.
            let given = workspace
                .as_ref()
                .and_then(|root| root.value("algorithm", "image"));
            if given.is_none() {
                reporter.warn(format!(
                    "no --image and no GitHub remote: set `image` in {} before publishing",
                    manifest::FILE_NAME
                ));
            }
            manifest::IMAGE_PLACEHOLDER.to_string()
        });

    let own_dockerfile = dockerfile
        .as_deref()
        .and_then(|text| detect::own_dockerfile_reason(text, wrapper));
    let build = match (&dockerfile, own_dockerfile) {
        (None, _) => Build::Render { base: None },
        (Some(text), Some(why)) => {
            reporter.note(format!(
                "v6.toml builds the project's own Dockerfile (`build.dockerfile = \"Dockerfile\"`): {why}"
            ));
            if let Some(step) = crate::dockerfile::first_heredoc(text) {
                reporter.warn(format!(
                    "the Dockerfile's {} is a heredoc, which the engine's classic builder (the one cargo v6 builds with) does not read: write that step as one line, or COPY a script and RUN it",
                    step.shown()
                ));
            }
            if let Some(retired) = &found.retired_base {
                reporter.warn(format!(
                    "the Dockerfile builds on `{retired}`: harbor2.vantage6.ai is gone (vantage6 moved to GHCR), change its FROM{}",
                    match detect::vantage6_default_base(wrapper, &vantage6) {
                        Some(base) => format!(" to `{base}`"),
                        None => String::new(),
                    }
                ));
            }
            Build::Own
        }
        (Some(_), None) => {
            reporter.warn(
                "the project's own `Dockerfile` is not the one built: it has only the template's steps, so cargo v6 renders the same (see `cargo v6 dockerfile`); set `build.dockerfile = \"Dockerfile\"` in v6.toml to build yours instead",
            );
            if let Some(retired) = &found.retired_base {
                reporter.note(match detect::vantage6_default_base(wrapper, &vantage6) {
                    Some(base) => format!(
                        "the Dockerfile builds on `{retired}`, which is gone (vantage6 moved to GHCR): the rendered one builds on `{base}`"
                    ),
                    None => format!(
                        "the Dockerfile builds on `{retired}`, which is gone (vantage6 moved to GHCR): set `build.base`"
                    ),
                });
            }
            Build::Render {
                base: found.custom_base.clone(),
            }
        }
    };
    if let Build::Render { base: Some(base) } = &build {
        reporter.status("Detected", format!("base image {base} (Dockerfile)"));
    }

    let tags = git
        .as_ref()
        .map(|_| crate::git::tags(&dir))
        .unwrap_or_default();
    // A member's release tags are the workspace's convention (`NAME-v1.2.3`), not the
    // repository's bare or `v` tags.
    let release = match &workspace {
        Some(_) => None,
        None => detect::release_tags(&tags, wrapper),
    };
    if let Some(release) = &release {
        reporter.status(
            "Detected",
            format!(
                "{} release tags{} (latest `{}`): the release tag on HEAD is the version (`version-from-tag = true`)",
                release.count,
                if release.prefix.is_empty() {
                    " without prefix".to_string()
                } else {
                    format!(" `{}1.2.3`", release.prefix)
                },
                release.latest.0,
            ),
        );
        let metadata = crate::version::read_project_version(&dir, wrapper)
            .ok()
            .flatten()
            .filter(|found| {
                crate::version::Version::parse(&found.raw, found.scheme)
                    .is_ok_and(|v| v != release.latest.1)
            });
        let stale = match metadata {
            Some(found) => format!(
                " ({} says {}, while the latest tag is {})",
                crate::diagnostic::display(found.file.strip_prefix(&dir).unwrap_or(&found.file)),
                found.raw,
                release.latest.0
            ),
            None => String::new(),
        };
        reporter.note(format!(
            "as vantage6's release workflows do, publish takes the version from the release tag, not from the project's metadata{stale}"
        ));
    }

    let inherited = match &workspace {
        Some(root) => {
            let (keys, notes) = detect::inherited(root, &given, wrapper, &vantage6);
            notes.into_iter().for_each(|note| reporter.note(note));
            keys
        }
        None => Vec::new(),
    };
    let platforms = proposed_platforms(&build, dockerfile.as_deref(), wrapper, &vantage6, reporter);
    let text = detect::manifest_text(&Choices {
        wrapper,
        name: &name,
        vantage6: &vantage6,
        image: &image,
        build: &build,
        release: release.as_ref(),
        workspace: workspace.as_ref().map(|root| (root, inherited.as_slice())),
        platforms: &platforms,
    });
    // A bad `--name`, `--vantage6` or `--image` is exit 2, and nothing is written.
    if let Some(message) = detect::unwritable(&text, workspace.as_ref()) {
        return Err(Error::input(
            format!("cannot write {}: {message}", manifest::FILE_NAME),
            Some(
                "fix the value given to `cargo v6 init`, or what it was detected from".to_string(),
            ),
        ));
    }
    crate::files::write_whole(&target, text.as_bytes()).map_err(|source| Error::Write {
        path: manifest::FILE_NAME.to_string(),
        source,
    })?;
    let member_of = match &workspace {
        Some(root) => format!(
            ", a member of the workspace {}",
            crate::diagnostic::display(&root.path)
        ),
        None => String::new(),
    };
    reporter.status(
        "Created",
        format!(
            "{} ({} wrapper, vantage6 {vantage6}{member_of})",
            manifest::FILE_NAME,
            wrapper.as_str()
        ),
    );
    reporter.note(next_note(&detect::next_steps(
        &text,
        git.as_ref(),
        release.as_ref(),
    )));
    Ok(())
}

/// The platforms to assemble for: those of the base's manifest list, when it has several,
/// the image is a Python one and its Dockerfile can be assembled. The base is read from its
/// registry; when it cannot be, nothing is proposed (and a note says why).
fn proposed_platforms(
    build: &Build,
    dockerfile: Option<&str>,
    wrapper: crate::vantage6::Wrapper,
    vantage6: &str,
    reporter: &Reporter,
) -> Vec<crate::oci::platform::Platform> {
    if wrapper != crate::vantage6::Wrapper::Python {
        return Vec::new();
    }
    let no_args = std::collections::BTreeMap::new();
    let base = match (build, dockerfile) {
        (Build::Own, Some(text)) => {
            if crate::plan::recipe::recipe(text, &no_args).is_err() {
                return Vec::new();
            }
            crate::dockerfile::final_base(text, &no_args)
        }
        (Build::Render { base: Some(base) }, _) => Some(base.clone()),
        _ => detect::vantage6_default_base(wrapper, vantage6),
    };
    let Some(base) = base else {
        return Vec::new();
    };
    let found = super::runtime()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            runtime
                .block_on(crate::assemble::platforms_of(&base))
                .map_err(|e| e.to_string())
        });
    match found {
        Ok(platforms) if platforms.len() > 1 => {
            let listed: Vec<String> = platforms.iter().map(ToString::to_string).collect();
            reporter.status(
                "Detected",
                format!(
                    "base image {base} is built for {}: each is assembled",
                    listed.join(" and ")
                ),
            );
            if let Err(missing) = crate::assemble::uv_version(&crate::assemble::uv_program()) {
                reporter.warn(format!(
                    "assembling needs uv on this machine, and {missing}: install it (`pip install uv`, or see https://docs.astral.sh/uv/)"
                ));
            }
            platforms
        }
        Ok(_) => Vec::new(),
        Err(why) => {
            reporter.note(format!(
                "cannot read the base image {base} to tell its platforms ({why}): the engine builds for its own; add `platforms = [\"linux/amd64\", \"linux/arm64\"]` to [build] to assemble both"
            ));
            Vec::new()
        }
    }
}

/// What `next:` says after v6.toml is written: the steps, with the commands and flags that
/// take them.
fn next_note(steps: &[NextStep]) -> String {
    let words: Vec<String> = steps
        .iter()
        .map(|step| match step {
            NextStep::Set(key) => format!("set `{key}`"),
            NextStep::Review => format!("review {}", manifest::FILE_NAME),
            NextStep::Commit => format!(
                "`git add {} && git commit` (publish refuses a dirty work tree; or pass --allow-dirty)",
                manifest::FILE_NAME
            ),
            NextStep::Tag { tag, latest } => format!(
                "tag the commit to release, e.g. `git tag {tag}` after the latest release tag `{latest}` (or pass `--set-version` for a build that is not a release)"
            ),
            NextStep::Try => "then `cargo v6 plan` and `cargo v6 publish --dry-run`".to_string(),
        })
        .collect();
    format!("next: {}", words.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library picks the steps; the command words them, naming its flags.
    #[test]
    fn next_steps_are_worded_with_the_flags() {
        let steps = [
            NextStep::Set("image"),
            NextStep::Review,
            NextStep::Commit,
            NextStep::Tag {
                tag: "v1.2.2".into(),
                latest: "v1.2.1".into(),
            },
            NextStep::Try,
        ];
        assert_eq!(
            next_note(&steps),
            "next: set `image`, review v6.toml, `git add v6.toml && git commit` (publish refuses a dirty work tree; or pass --allow-dirty), tag the commit to release, e.g. `git tag v1.2.2` after the latest release tag `v1.2.1` (or pass `--set-version` for a build that is not a release), then `cargo v6 plan` and `cargo v6 publish --dry-run`"
        );
        assert_eq!(
            next_note(&[NextStep::Review, NextStep::Try]),
            "next: review v6.toml, then `cargo v6 plan` and `cargo v6 publish --dry-run`"
        );
    }
}
