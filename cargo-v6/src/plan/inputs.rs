//! Every read of the project that a plan depends on: the version (command line, v6.toml or the
//! project's metadata), git state, and the build context. All local: a wrong input is reported
//! before the registry is asked anything. [`super::Plan::new`] then works on this data alone.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Location, display};
use crate::fingerprint::FileDigest;
use crate::git::GitInfo;
use crate::manifest::Manifest;
use crate::vantage6::Wrapper;
use crate::version::{self, ParseVersionError, Version};

use super::{PlanError, VersionSource};

/// Everything read from the outside world that the plan depends on.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The version and where it came from.
    pub version: (Version, VersionSource),
    /// The repository around the manifest, if any.
    pub git: Option<GitInfo>,
    /// The context directory, absolute.
    pub context_dir: PathBuf,
    /// The files the build will see.
    pub context_files: Vec<String>,
    /// Their modes and content hashes, for the fingerprint.
    pub file_digests: Vec<FileDigest>,
    /// The text of the context's `Dockerfile` when it is not the one built (no
    /// `build.dockerfile`): the plan says what building it instead would change.
    pub unused_dockerfile: Option<String>,
}

impl Inputs {
    /// Reads the version, git state and build context that `manifest` points at.
    /// `set_version` is the version given explicitly (on the command line).
    pub fn read(manifest: &Manifest, set_version: Option<&str>) -> Result<Self, PlanError> {
        Self::read_shared(manifest, set_version, &crate::git::Cache::default())
    }

    /// [`Inputs::read`] for one algorithm among several: the git state of a repository they
    /// share is read once, through `git`.
    pub fn read_shared(
        manifest: &Manifest,
        set_version: Option<&str>,
        git: &crate::git::Cache,
    ) -> Result<Self, PlanError> {
        let context_dir = context_dir(manifest)?;
        // What the image is made of besides the member's directory and context: the
        // workspace's defaults, the templates and the project's own Dockerfile (wherever
        // they are).
        let inputs: Vec<&Path> = [Some(context_dir.as_path())]
            .into_iter()
            .chain([
                manifest.workspace_root.as_deref(),
                manifest.build.templates.as_deref(),
                manifest.build.dockerfile.as_deref(),
            ])
            .flatten()
            .collect();
        let mut git = git.read(&manifest.dir, &inputs);
        let outputs = outputs(manifest);
        // The files publish writes (the record, the store's file) are its output: they do not
        // make the tree dirty.
        if let Some(git) = git.as_mut() {
            let outputs: Vec<String> = outputs
                .iter()
                .filter_map(|path| relative_to(path, &git.top))
                .collect();
            git.dirty.retain(|path| !outputs.contains(path));
        }
        check_release_tag_prefix(manifest, git.as_ref())?;
        let version = resolve_version(manifest, set_version, git.as_ref())?;
        let context_files = context_files_but(manifest, &context_dir, &outputs)?;
        let file_digests = crate::fingerprint::digest_files(&context_dir, &context_files)?;
        let unused_dockerfile = (manifest.build.dockerfile.is_none()
            && context_files.iter().any(|f| f == "Dockerfile"))
        .then(|| {
            crate::files::read_regular_text(
                &context_dir.join("Dockerfile"),
                crate::files::SMALL_FILE_MAX,
            )
            .ok()
        })
        .flatten();
        Ok(Inputs {
            version,
            git,
            context_dir,
            context_files,
            file_digests,
            unused_dockerfile,
        })
    }
}

/// The files of the build context; a bad `.dockerignore` line is pointed at like a manifest
/// error, with the path as the user would type it. `context_dir` is as [`context_dir`] gives
/// it (a real path).
/// The files publish writes after a release (the record `v6.lock`, the store's
/// `store.output`) are outputs, never inputs: they are left out, so that recording a release
/// does not change the next one's image (nor a republish's fingerprint).
pub fn context_files(manifest: &Manifest, context_dir: &Path) -> Result<Vec<String>, PlanError> {
    context_files_but(manifest, context_dir, &outputs(manifest))
}

/// [`context_files`] without `outputs` (as [`outputs`] gives them).
fn context_files_but(
    manifest: &Manifest,
    context_dir: &Path,
    outputs: &[PathBuf],
) -> Result<Vec<String>, PlanError> {
    let mut files = select_context(manifest, context_dir)?;
    let outputs: Vec<String> = outputs
        .iter()
        .filter_map(|path| relative_to(path, context_dir))
        .collect();
    files.retain(|f| !outputs.contains(f));
    Ok(files)
}

/// The files publish writes after a release: the record of releases and the store's file,
/// each in the real path of its directory (the file itself may not exist yet). Found once per
/// plan, for both git's changes and the context.
fn outputs(manifest: &Manifest) -> Vec<PathBuf> {
    std::iter::once(manifest.record_path())
        .chain(crate::store::output(manifest))
        .filter_map(|path| {
            let parent = match path.parent()? {
                p if p.as_os_str().is_empty() => Path::new("."),
                p => p,
            };
            Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
        })
        .collect()
}

/// `path` (as [`outputs`] gives it) relative to `dir` (a real path: the context's, or the
/// repository's top), `/`-separated, if it lies inside.
fn relative_to(path: &Path, dir: &Path) -> Option<String> {
    let relative = path.strip_prefix(dir).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

fn select_context(manifest: &Manifest, context_dir: &Path) -> Result<Vec<String>, PlanError> {
    crate::context::select(context_dir).map_err(|error| match error {
        crate::context::ContextError::InvalidPattern {
            line,
            pattern,
            reason,
        } => {
            let path = manifest.build.context.join(crate::context::DOCKERIGNORE);
            let source = crate::files::read_regular_text(
                &context_dir.join(crate::context::DOCKERIGNORE),
                crate::context::DOCKERIGNORE_MAX_BYTES,
            )
            .unwrap_or_default();
            let start: usize = source
                .split_inclusive('\n')
                .take(line.saturating_sub(1))
                .map(str::len)
                .sum();
            let end = start
                + source[start.min(source.len())..]
                    .find('\n')
                    .unwrap_or(source.len() - start.min(source.len()));
            PlanError::Input(Diagnostic::at(
                format!("invalid .dockerignore pattern `{pattern}`: {reason}"),
                Location::new(display(&path), source, start..end),
            ))
        }
        other => PlanError::Context(other),
    })
}

/// The absolute build context directory; an error pointing at `build.context` if it is not one.
pub fn context_dir(manifest: &Manifest) -> Result<PathBuf, PlanError> {
    std::fs::canonicalize(&manifest.build.context)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            PlanError::Input(Diagnostic::at(
                format!(
                    "build context `{}` is not a directory",
                    display(&manifest.build.context)
                ),
                manifest.context_location(),
            ))
        })
}

/// The release tags on HEAD under `prefix`, with the versions they name (a tag that is the
/// prefix and no version, such as `v6-migration` under `v`, is not one).
pub fn release_tags(
    git: Option<&GitInfo>,
    prefix: &str,
    wrapper: Wrapper,
) -> Vec<(String, Version)> {
    git.map_or(&[][..], |g| &g.head_tags[..])
        .iter()
        .filter_map(|tag| Some((tag.clone(), tag_version(tag, prefix, wrapper)?)))
        .collect()
}

/// The version `tag` names under `prefix`: what follows the prefix, starting with a digit
/// (under the bare prefix, `v1.2.1` is not a release tag, though PEP 440 would read it).
pub fn tag_version(tag: &str, prefix: &str, wrapper: Wrapper) -> Option<Version> {
    let rest = tag.strip_prefix(prefix)?;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Version::parse_for(rest, wrapper).ok()
}

/// The highest release tag of a repository and the one that would follow it: what to tell a
/// user whose HEAD has no release tag (`git tag 1.1.4`, not a made-up `1.2.3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRelease {
    /// The highest release tag under the prefix (`1.1.3`).
    pub latest: String,
    /// The tag of its next patch release (`1.1.4`).
    pub next: String,
}

/// The highest of `tags` under `prefix` (as [`tag_version`] reads them),
/// and the tag of its next patch; `None` when there is no release tag.
pub fn next_release(tags: &[String], prefix: &str, wrapper: Wrapper) -> Option<NextRelease> {
    let (latest, version) = tags
        .iter()
        .filter_map(|tag| Some((tag, tag_version(tag, prefix, wrapper)?)))
        .max_by(|a, b| a.1.cmp(&b.1))?;
    Some(NextRelease {
        latest: latest.clone(),
        next: format!("{prefix}{}", version.next_patch()),
    })
}

/// A HEAD tagged like a release under the other usual prefix (`1.2.1` while the prefix is
/// `v`, as vantage6's repositories tag) is an error naming it: silently ignoring it would
/// publish the metadata's version instead of the release.
fn check_release_tag_prefix(manifest: &Manifest, git: Option<&GitInfo>) -> Result<(), PlanError> {
    // In a workspace a bare or `v` tag is the repository's, not one member's.
    if manifest.workspace_root.is_some() {
        return Ok(());
    }
    let prefix = &manifest.publish.release_tag_prefix;
    if !release_tags(git, prefix, manifest.wrapper).is_empty() {
        return Ok(());
    }
    for other in ["", "v"].into_iter().filter(|p| p != prefix) {
        if let Some((tag, _)) = release_tags(git, other, manifest.wrapper).first() {
            return Err(PlanError::Input(Diagnostic::new(
                format!(
                    "HEAD is tagged `{tag}`, a release tag with another prefix than `{prefix}` (`release-tag-prefix`)"
                ),
                Some(format!(
                    "set `release-tag-prefix = \"{other}\"` under [publish] in v6.toml (vantage6's repositories tag releases bare: `1.2.1`), or remove the tag"
                )),
            )));
        }
    }
    Ok(())
}

/// `version-from-tag` with no release tag on HEAD: the error names the repository's latest
/// release tag and suggests the next one (`git tag 1.1.4`); with none yet, the project's
/// metadata version as the first.
fn no_release_tag(manifest: &Manifest, git: Option<&GitInfo>) -> VersionError {
    let prefix = &manifest.publish.release_tag_prefix;
    let tags = git.map(|g| crate::git::tags(&g.top)).unwrap_or_default();
    match next_release(&tags, prefix, manifest.wrapper) {
        Some(next) => VersionError::NoReleaseTag {
            latest: Some(next.latest),
            prefix: prefix.clone(),
            next: next.next,
        },
        None => {
            let first = version::read_project_version(&manifest.dir, manifest.wrapper)
                .ok()
                .flatten()
                .and_then(|found| Version::parse(&found.raw, found.scheme).ok())
                .map_or_else(|| "0.1.0".to_string(), |v| v.raw().to_string());
            VersionError::NoReleaseTag {
                latest: None,
                prefix: prefix.clone(),
                next: format!("{prefix}{first}"),
            }
        }
    }
}

/// The explicit version (`set_version`, from the command line), then the release tag on HEAD
/// when `version-from-tag` is set, then v6.toml, then the project's metadata.
fn resolve_version(
    manifest: &Manifest,
    set_version: Option<&str>,
    git: Option<&GitInfo>,
) -> Result<(Version, VersionSource), PlanError> {
    if let Some(raw) = set_version {
        let version =
            Version::parse_for(raw, manifest.wrapper).map_err(VersionError::InvalidExplicit)?;
        return Ok((version, VersionSource::CommandLine));
    }
    if manifest.publish.version_from_tag {
        let prefix = &manifest.publish.release_tag_prefix;
        let tags = release_tags(git, prefix, manifest.wrapper);
        return match tags.into_iter().max_by(|a, b| a.1.cmp(&b.1)) {
            Some((tag, version)) => Ok((version, VersionSource::ReleaseTag(tag))),
            None => Err(no_release_tag(manifest, git).into()),
        };
    }
    if let Some(version) = &manifest.version {
        return Ok((version.clone(), VersionSource::Manifest));
    }
    let found =
        version::read_project_version(&manifest.dir, manifest.wrapper)?.ok_or_else(|| {
            VersionError::NotInMetadata {
                name: manifest.name.clone(),
                wrapper: manifest.wrapper,
            }
        })?;
    let shown = display(&found.file);
    let version = Version::parse(&found.raw, found.scheme).map_err(|source| {
        VersionError::InvalidInMetadata {
            file: shown.clone(),
            source,
        }
    })?;
    Ok((version, VersionSource::File(shown)))
}

/// Why no version can be settled on. Every one of them is fixed by giving the version
/// explicitly, which the command names (`--set-version`); the messages here speak of the
/// project and v6.toml.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The version given explicitly does not parse.
    #[error("invalid explicit version: {0}")]
    InvalidExplicit(ParseVersionError),
    /// `version-from-tag` is set and HEAD has no release tag.
    #[error("{}", match latest {
        Some(latest) => format!("`version-from-tag` is set, but HEAD has no release tag (the latest, `{latest}`, is on an earlier commit)"),
        None => format!("`version-from-tag` is set, but the repository has no release tag yet (`{prefix}` and a version)"),
    })]
    NoReleaseTag {
        /// The repository's latest release tag (on an earlier commit), if there is one.
        latest: Option<String>,
        /// `release-tag-prefix`.
        prefix: String,
        /// The tag to put on HEAD: the latest's next patch, or the metadata's version.
        next: String,
    },
    /// None of the project's metadata files has a version.
    #[error("no version found for `{name}`: none of its {} metadata files has one", wrapper.as_str())]
    NotInMetadata {
        /// The algorithm.
        name: String,
        /// Whose metadata files were read.
        wrapper: Wrapper,
    },
    /// The project's metadata has a version that does not parse.
    #[error("invalid version in {file}: {source}")]
    InvalidInMetadata {
        /// The file, as displayed.
        file: String,
        /// Why it does not parse.
        source: ParseVersionError,
    },
}

impl VersionError {
    /// What to do, short of giving the version explicitly (which the command adds).
    pub fn remedy(&self) -> Option<VersionRemedy> {
        match self {
            VersionError::InvalidExplicit(_) => None,
            VersionError::NoReleaseTag { next, .. } => Some(VersionRemedy::Tag(next.clone())),
            VersionError::NotInMetadata { .. } | VersionError::InvalidInMetadata { .. } => {
                Some(VersionRemedy::SetInManifest)
            }
        }
    }
}

/// How a version that cannot be read is fixed in the project; the other fix, giving the
/// version explicitly, is the command's to name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionRemedy {
    /// Tag HEAD as this release.
    #[error("tag the commit to release (`git tag {0}`)")]
    Tag(String),
    /// Write the version into v6.toml.
    #[error("set `version` in v6.toml")]
    SetInManifest,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `build.dockerfile` outside the manifest's directory and the context (a shared
    /// `../docker/Dockerfile`) is what the image is built from: an uncommitted change to it
    /// is dirt like one to the context.
    #[test]
    fn an_uncommitted_dockerfile_outside_the_context_is_dirty() {
        let repo = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .current_dir(repo.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@e"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        let dockerfile = repo.path().join("docker/Dockerfile");
        std::fs::create_dir_all(dockerfile.parent().unwrap()).unwrap();
        std::fs::write(&dockerfile, "FROM x:1\n").unwrap();
        let dir = repo.path().join("algo");
        std::fs::create_dir_all(&dir).unwrap();
        let text = "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"4.13\"\nimage = \"r.example/a\"\nversion = \"1.0.0\"\n[build]\ndockerfile = \"../docker/Dockerfile\"\n";
        std::fs::write(dir.join("v6.toml"), text).unwrap();
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-qm", "i"]);
        std::fs::write(&dockerfile, "FROM x:1\nRUN uncommitted\n").unwrap();
        let manifest = Manifest::parse(&dir.join("v6.toml"), text.to_string()).unwrap();
        let inputs = Inputs::read(&manifest, None).unwrap();
        assert_eq!(inputs.git.unwrap().dirty, ["docker/Dockerfile"]);
    }

    #[test]
    fn the_next_release_follows_the_highest_tag_under_the_prefix() {
        let tags: Vec<String> = ["1.1.3", "1.2.1", "1.10.0rc1", "v9.0.0", "stable", "1.1.4"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            next_release(&tags, "", Wrapper::Python),
            Some(NextRelease {
                latest: "1.10.0rc1".to_string(),
                next: "1.10.0".to_string()
            })
        );
        let next = next_release(&tags, "v", Wrapper::Python).unwrap();
        assert_eq!(
            (next.latest.as_str(), next.next.as_str()),
            ("v9.0.0", "v9.0.1")
        );
        assert_eq!(next_release(&tags, "summary-v", Wrapper::Python), None);
    }
}
