//! The plan: everything a build and publish will do, computed once as plain data before any
//! side effect. `cargo v6 plan` and `--dry-run` print this value; the real run executes it.
//!
//! [`Plan::new`] is pure: the I/O that feeds it (metadata, git, the context walk, the
//! registry's tags) happens in [`Inputs::read`] and in the registry module, at the edges.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Error;
use crate::fingerprint::{self, FileDigest, Recipe};
use crate::git::GitInfo;
use crate::manifest::{Manifest, Wrapper};
use crate::reference::ImageRef;
use crate::render::{self, TemplateData};
use crate::tags::{AliasAction, TagContext};
use crate::version::{self, Version};

/// The name the rendered Dockerfile travels under in the build context. Unusual on purpose; a
/// project file of the same name is refused rather than shadowed.
pub const DOCKERFILE_NAME: &str = ".cargo-v6.Dockerfile";

/// Where the version came from, for the plan and messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// `--set-version`.
    CommandLine,
    /// `version` in v6.toml.
    Manifest,
    /// The project's metadata file (path as displayed).
    File(String),
}

/// The registry's view before publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryView {
    /// `--offline`: planned as if the registry were empty.
    Offline,
    /// The registry could not be read; planned as if it were empty.
    Unreachable,
    /// The registry's tags were read.
    Read,
}

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
}

/// The tags already in the registry, as far as they could be read.
#[derive(Debug, Clone)]
pub struct RegistryTags {
    /// The tags.
    pub tags: Vec<String>,
    /// How they were obtained.
    pub view: RegistryView,
}

impl RegistryTags {
    /// `--offline`, or a command that does not look at the registry.
    pub fn offline() -> Self {
        RegistryTags {
            tags: Vec::new(),
            view: RegistryView::Offline,
        }
    }
}

/// The Dockerfile and the base image it builds on: all that the manifest alone determines.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The base image, normalized with its tag.
    pub base_image: String,
    /// The rendered Dockerfile.
    pub dockerfile: String,
}

/// Renders the Dockerfile for `manifest` (templates from `build.templates`, else built in).
pub fn render_dockerfile(manifest: &Manifest) -> Result<Rendered, Error> {
    if let Some(templates) = &manifest.build.templates {
        if !templates.is_dir() {
            return Err(Error::Input {
                message: format!(
                    "template directory `{}` is not a directory",
                    crate::manifest::display(templates)
                ),
                location: Some(manifest.templates_location()),
                help: None,
            });
        }
    }
    let base_text = match &manifest.build.base {
        Some(base) => base.to_string(),
        None => default_base(manifest).ok_or_else(|| {
            // The manifest validator requires `base` whenever there is no default.
            Error::input("`build.base` is required", None)
        })?,
    };
    let base_image = ImageRef::parse(&base_text)
        .map(|r| r.to_string())
        .unwrap_or(base_text);
    let data = TemplateData {
        base: base_image.clone(),
        name: manifest.name.clone(),
        args: manifest.build.args.keys().cloned().collect(),
        install: manifest.build.install.clone(),
        command: manifest.build.command.as_ref().map(render::command_text),
    };
    let dockerfile = render::render(
        &render::template_name(manifest.wrapper, manifest.vantage6.major),
        manifest.build.templates.as_deref(),
        &data,
    )?;
    Ok(Rendered {
        base_image,
        dockerfile,
    })
}

/// An alias left where it is because a higher version owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldTag {
    /// The alias, a full reference.
    pub tag: String,
    /// The exact tag of the version that owns it.
    pub by: String,
}

/// What will be built and pushed.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The algorithm's name (PKG_NAME).
    pub name: String,
    /// The version as found.
    pub version: String,
    /// Where it was found.
    pub version_source: VersionSource,
    /// Stable versions may move aliases; pre-releases never do.
    pub stable: bool,
    /// The wrapper type.
    pub wrapper: Wrapper,
    /// The vantage6 version targeted.
    pub vantage6: String,
    /// The normalized repository, without tag.
    pub image: String,
    /// Full references to push: exact tags first, then the aliases that move, in template order.
    pub tags: Vec<String>,
    /// The exact version tags among `tags` (never overwritten without `--force`).
    pub exact_tags: Vec<String>,
    /// Aliases held back by a higher version.
    pub tags_held: Vec<HeldTag>,
    /// How the registry's existing tags were obtained.
    pub registry: RegistryView,
    /// The base image, normalized with its tag.
    pub base_image: String,
    /// The rendered Dockerfile.
    pub dockerfile: String,
    /// The name it is sent under in the build context.
    pub dockerfile_name: String,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Network mode for RUN steps.
    pub network: Option<String>,
    /// Target platform.
    pub platform: Option<String>,
    /// The context directory, absolute.
    #[serde(serialize_with = "lossy_path")]
    pub context: PathBuf,
    /// The files the build sees.
    pub context_files: Vec<String>,
    /// Digest over everything that determines the image; also the image's
    /// [`fingerprint::LABEL`] label. An exact tag holding the same fingerprint is unchanged.
    pub fingerprint: String,
    /// Things the user should know (e.g. their own Dockerfile is not the one built).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Paths in JSON: a directory whose name is not UTF-8 is shown with replacement characters
/// rather than failing the whole plan.
fn lossy_path<S: serde::Serializer>(
    path: &std::path::Path,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// The default vantage6 base for Python algorithms of 4.x and 5.x.
fn default_base(manifest: &Manifest) -> Option<String> {
    let v = &manifest.vantage6;
    (manifest.wrapper == Wrapper::Python && v.major >= 4).then(|| {
        format!(
            "ghcr.io/vantage6/infrastructure/algorithm-base:{}.{}",
            v.major, v.minor
        )
    })
}

impl Inputs {
    /// Reads the version, git state and build context that `manifest` points at (all local:
    /// a wrong input is reported before the registry is asked anything).
    /// `set_version` is `--set-version`.
    pub fn read(manifest: &Manifest, set_version: Option<&str>) -> Result<Self, Error> {
        let version = resolve_version(manifest, set_version)?;
        let context_dir = context_dir(manifest)?;
        let context_files = context_files(manifest, &context_dir)?;
        let file_digests = crate::fingerprint::digest_files(&context_dir, &context_files)?;
        Ok(Inputs {
            version,
            git: crate::git::read(&manifest.dir, &context_dir),
            context_dir,
            context_files,
            file_digests,
        })
    }
}

/// The files of the build context; a bad `.dockerignore` line is pointed at like a manifest
/// error, with the path as the user would type it.
pub fn context_files(
    manifest: &Manifest,
    context_dir: &std::path::Path,
) -> Result<Vec<String>, Error> {
    crate::context::select(context_dir).map_err(|error| match error {
        crate::context::ContextError::InvalidPattern {
            line,
            pattern,
            reason,
        } => {
            let path = manifest.build.context.join(crate::context::DOCKERIGNORE);
            let source = std::fs::read_to_string(context_dir.join(crate::context::DOCKERIGNORE))
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
            Error::Input {
                message: format!("invalid .dockerignore pattern `{pattern}`: {reason}"),
                location: Some(crate::diagnostic::Location::new(
                    crate::manifest::display(&path),
                    source,
                    start..end,
                )),
                help: None,
            }
        }
        other => Error::Context(other),
    })
}

/// The absolute build context directory; an error pointing at `build.context` if it is not one.
pub fn context_dir(manifest: &Manifest) -> Result<PathBuf, Error> {
    std::fs::canonicalize(&manifest.build.context)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Error::Input {
            message: format!(
                "build context `{}` is not a directory",
                crate::manifest::display(&manifest.build.context)
            ),
            location: Some(manifest.context_location()),
            help: None,
        })
}

/// `--set-version`, then v6.toml, then the project's metadata.
fn resolve_version(
    manifest: &Manifest,
    set_version: Option<&str>,
) -> Result<(Version, VersionSource), Error> {
    if let Some(raw) = set_version {
        let version = Version::parse_for(raw, manifest.wrapper)
            .map_err(|e| Error::input(format!("invalid `--set-version`: {e}"), None))?;
        return Ok((version, VersionSource::CommandLine));
    }
    if let Some(version) = &manifest.version {
        return Ok((version.clone(), VersionSource::Manifest));
    }
    let found =
        version::read_project_version(&manifest.dir, manifest.wrapper)?.ok_or_else(|| {
            Error::input(
                format!(
                    "no version found for `{}`: none of its {} metadata files has one",
                    manifest.name,
                    manifest.wrapper.as_str()
                ),
                Some("set `version` in v6.toml or pass `--set-version`".to_string()),
            )
        })?;
    let shown = crate::manifest::display(&found.file);
    let version = Version::parse(&found.raw, found.scheme).map_err(|e| {
        Error::input(
            format!("invalid version in {shown}: {e}"),
            Some("set `version` in v6.toml or pass `--set-version`".to_string()),
        )
    })?;
    Ok((version, VersionSource::File(shown)))
}

impl Plan {
    /// Computes the plan. Pure but for reading override templates: same manifest, inputs and
    /// registry tags, same plan.
    pub fn new(manifest: &Manifest, inputs: Inputs, registry: RegistryTags) -> Result<Self, Error> {
        let (version, version_source) = inputs.version;
        let Rendered {
            base_image,
            dockerfile,
        } = render_dockerfile(manifest)?;

        let tag_plan = crate::tags::plan_tags(
            &manifest.tags,
            &version,
            &TagContext {
                vantage6: manifest.vantage6.text.clone(),
                name: manifest.name.clone(),
            },
            &registry.tags,
        )
        .map_err(|e| Error::input(e.to_string(), None))?;
        let image = manifest.image.to_string();
        let exact_tags: Vec<String> = tag_plan
            .exact
            .iter()
            .map(|t| manifest.image.with_tag(t))
            .collect();
        let mut tags = exact_tags.clone();
        let mut tags_held = Vec::new();
        for alias in tag_plan.aliases {
            match alias.action {
                AliasAction::Move => tags.push(manifest.image.with_tag(&alias.tag)),
                AliasAction::Held { by } => tags_held.push(HeldTag {
                    tag: manifest.image.with_tag(&alias.tag),
                    by: manifest.image.with_tag(&by),
                }),
            }
        }

        let mut warnings = Vec::new();
        if inputs.context_files.iter().any(|f| f == DOCKERFILE_NAME) {
            return Err(Error::Failed {
                message: format!(
                    "the build context has a file named `{DOCKERFILE_NAME}`, the name cargo v6 sends its rendered Dockerfile under"
                ),
                help: Some("rename it, or exclude it in .dockerignore".to_string()),
            });
        }
        if inputs.context_files.iter().any(|f| f == "Dockerfile") {
            warnings.push(
                "the project's own `Dockerfile` is not used: cargo v6 builds from the Dockerfile it renders (see `cargo v6 dockerfile`); `COPY` still copies the file into the image unless .dockerignore excludes it".to_string(),
            );
        }

        let mut labels = labels(manifest, &version, inputs.git.as_ref());
        let fingerprint = fingerprint::compute(
            Recipe {
                dockerfile: &dockerfile,
                base_image: &base_image,
                build_args: &manifest.build.args,
                labels: &labels,
                platform: manifest.build.platform.as_deref(),
            },
            &inputs.file_digests,
        );
        labels.insert(fingerprint::LABEL.to_string(), fingerprint.clone());
        Ok(Plan {
            name: manifest.name.clone(),
            version: version.raw().to_string(),
            version_source,
            stable: version.is_stable(),
            wrapper: manifest.wrapper,
            vantage6: manifest.vantage6.text.clone(),
            image,
            tags,
            exact_tags,
            tags_held,
            registry: registry.view,
            base_image,
            dockerfile,
            dockerfile_name: DOCKERFILE_NAME.to_string(),
            labels,
            build_args: manifest.build.args.clone(),
            network: manifest.build.network.clone(),
            platform: manifest.build.platform.clone(),
            context: inputs.context_dir,
            context_files: inputs.context_files,
            fingerprint,
            warnings,
        })
    }
}

/// OCI annotations from the manifest and git; `created` is the commit time so that the same
/// commit gives the same labels. The user's own labels win.
fn labels(
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
