//! The plan: everything a build and publish will do, computed once as plain data before any
//! side effect. `cargo v6 plan` and `--dry-run` print this value; the real run executes it.
//!
//! [`Plan::new`] is pure: the I/O that feeds it (metadata, git, the context walk) happens in
//! [`inputs`], and the registry's tags are read by the caller, at the edges. Values stay typed
//! ([`ImageName`], [`TaggedImage`], [`Version`]) so that nothing downstream parses a string back.

pub mod inputs;
pub mod labels;
pub mod recipe;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::context::ContextError;
use crate::diagnostic::{Diagnostic, Location, display};
use crate::fingerprint::{self, FingerprintError, Recipe};
use crate::manifest::Manifest;
use crate::oci::platform::Platform;
use crate::oci::reference::{ImageName, ImageRef, Tag, TaggedImage};
use crate::render::{self, RenderError, TemplateData};
use crate::tags::{AliasAction, TagContext, TagTemplate};
use crate::vantage6::{self, Wrapper};
use crate::version::{MetadataError, Version};

pub use inputs::{Inputs, VersionError, VersionRemedy};

/// The name the rendered Dockerfile travels under in the build context. Unusual on purpose; a
/// project file of the same name is refused rather than shadowed.
pub const DOCKERFILE_NAME: &str = ".cargo-v6.Dockerfile";

/// Why no plan could be made. Nothing was built or pushed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The user's input is wrong (a value, a flag, a file the manifest points at).
    #[error("{0}")]
    Input(Diagnostic),
    /// The project's metadata gives no usable version.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// No version can be settled on (none given, none in the project, or not one that parses).
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The build context cannot be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A context file cannot be read for the fingerprint.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// A Dockerfile template cannot be read or rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The context holds a file the build cannot send as it is.
    #[error("{0}")]
    Unsendable(Diagnostic),
    /// Several platforms, and a Dockerfile with a step only a builder of each platform runs.
    #[error("{0}")]
    NotAssemblable(Diagnostic),
}

impl PlanError {
    /// Whether the user's input is at fault (exit 2) rather than the outside world (exit 1).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            PlanError::Input(_)
                | PlanError::NotAssemblable(_)
                | PlanError::Metadata(_)
                | PlanError::Version(_)
                | PlanError::Context(ContextError::InvalidPattern { .. })
                | PlanError::Render(RenderError::Template { .. })
        )
    }

    /// The place in a file this error is about, if any.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PlanError::Input(d) | PlanError::Unsendable(d) | PlanError::NotAssemblable(d) => {
                d.location.as_ref()
            }
            PlanError::Metadata(
                MetadataError::NotLiteral { location, .. }
                | MetadataError::Unreadable { location, .. },
            ) => location.as_ref(),
            _ => None,
        }
    }

    /// A hint on how to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            PlanError::Input(d) | PlanError::Unsendable(d) | PlanError::NotAssemblable(d) => {
                d.help.clone()
            }
            PlanError::Version(e) => e.remedy().map(|r| r.to_string()),
            _ => None,
        }
    }
}

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
    /// The release tag on HEAD (`version-from-tag`).
    ReleaseTag(String),
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
    /// The rendered Dockerfile, or the project's own.
    pub dockerfile: String,
    /// The project's own Dockerfile (`build.dockerfile`), as displayed; `None` when rendered.
    pub own: Option<String>,
}

/// The base image of the project's unbuilt Dockerfile (`text`) when the rendered one builds on
/// another, `base_image` (the Dockerfile was moved to another vantage6 and v6.toml was not),
/// as the end of plan's warning: ``base image `X` (it builds on `Y`)``.
fn other_base(text: &str, manifest: &Manifest, base_image: &str) -> Option<String> {
    let base = crate::dockerfile::final_base(text, &manifest.build.args)?;
    let base = ImageRef::parse(&base)
        .map(|r| r.to_string())
        .unwrap_or(base);
    (!crate::vantage6::same_base(&base, base_image))
        .then(|| format!("base image `{base}` (it builds on `{base_image}`)"))
}

/// The Dockerfile for `manifest`: the project's own (`build.dockerfile`), else rendered from
/// the templates (from `build.templates`, else built in).
pub fn render_dockerfile(manifest: &Manifest) -> Result<Rendered, PlanError> {
    if let Some(path) = &manifest.build.dockerfile {
        let shown = display(path);
        let text =
            crate::files::read_regular_text(path, crate::files::SMALL_FILE_MAX).map_err(|e| {
                PlanError::Input(Diagnostic::at(
                    format!("cannot read the Dockerfile `{shown}`: {e}"),
                    manifest.dockerfile_location(),
                ))
            })?;
        if let Some(step) = crate::dockerfile::first_heredoc(&text) {
            return Err(PlanError::Input(Diagnostic {
                help: Some(
                    "write the step as one line (joined with `&&`, continued with `\\`), or COPY a script and RUN it".to_string(),
                ),
                ..Diagnostic::at(
                    format!(
                        "the Dockerfile `{shown}` cannot be built: {} is a heredoc, which the engine's classic builder (the one cargo v6 builds with) does not read",
                        step.shown()
                    ),
                    manifest.dockerfile_location(),
                )
            }));
        }
        let base = crate::dockerfile::final_base(&text, &manifest.build.args).ok_or_else(|| {
            PlanError::Input(Diagnostic::at(
                format!("the Dockerfile `{shown}` has no FROM instruction"),
                manifest.dockerfile_location(),
            ))
        })?;
        let base_image = ImageRef::parse(&base)
            .map(|r| r.to_string())
            .unwrap_or(base);
        return Ok(Rendered {
            base_image,
            dockerfile: text,
            own: Some(shown),
        });
    }
    if let Some(templates) = &manifest.build.templates
        && !templates.is_dir()
    {
        return Err(PlanError::Input(Diagnostic::at(
            format!(
                "template directory `{}` is not a directory",
                display(templates)
            ),
            manifest.templates_location(),
        )));
    }
    let base_text = match &manifest.build.base {
        Some(base) => base.to_string(),
        None => vantage6::default_base(manifest.wrapper, &manifest.vantage6).ok_or_else(|| {
            // The manifest validator requires `base` whenever there is no default.
            PlanError::Input(Diagnostic::new("`build.base` is required", None))
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
        &vantage6::template_name(manifest.wrapper, manifest.vantage6.major),
        manifest.build.templates.as_deref(),
        &data,
    )?;
    Ok(Rendered {
        base_image,
        dockerfile,
        own: None,
    })
}

/// A release's tags against the registry's.
struct Tags {
    exact: Vec<TaggedImage>,
    moves: Vec<TaggedImage>,
    held: Vec<HeldTag>,
}

fn tags_for(
    image: &ImageName,
    templates: &[TagTemplate],
    version: &Version,
    context: &TagContext,
    existing: &[String],
) -> Result<Tags, PlanError> {
    let plan = crate::tags::plan_tags(templates, version, context, existing)
        .map_err(|e| PlanError::Input(Diagnostic::new(e.to_string(), None)))?;
    let mut tags = Tags {
        exact: plan.exact.iter().map(|t| image.with_tag(t)).collect(),
        moves: Vec::new(),
        held: Vec::new(),
    };
    for alias in plan.aliases {
        match alias.action {
            AliasAction::Move => tags.moves.push(image.with_tag(&alias.tag)),
            AliasAction::Held { by } => tags.held.push(HeldTag {
                tag: image.with_tag(&alias.tag),
                by: image.with_tag(&by),
            }),
        }
    }
    Ok(tags)
}

/// An alias left where it is because a higher version owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldTag {
    /// The alias.
    pub tag: TaggedImage,
    /// The exact tag of the version that owns it.
    pub by: TaggedImage,
}

/// What will be built and pushed.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The algorithm's name (PKG_NAME).
    pub name: String,
    /// The version as found.
    pub version: Version,
    /// Where it was found.
    pub version_source: VersionSource,
    /// Stable versions may move aliases; pre-releases never do.
    pub stable: bool,
    /// The wrapper type.
    pub wrapper: Wrapper,
    /// The vantage6 version targeted.
    pub vantage6: String,
    /// The normalized repository, without tag.
    pub image: ImageName,
    /// Tags to push: exact tags first, then the aliases that move, in template order.
    pub tags: Vec<TaggedImage>,
    /// The exact version tags among `tags` (never overwritten without `--force`; at least one).
    pub exact_tags: Vec<TaggedImage>,
    /// Aliases held back by a higher version.
    pub tags_held: Vec<HeldTag>,
    /// The tag templates, to decide the aliases again against the registry's tags right
    /// before they are written ([`Plan::aliases_against`]).
    #[serde(skip)]
    pub tag_templates: Vec<TagTemplate>,
    /// The fields the templates render besides the version.
    #[serde(skip)]
    pub tag_context: TagContext,
    /// How the registry's existing tags were obtained.
    pub registry: RegistryView,
    /// The base image, normalized with its tag.
    pub base_image: String,
    /// The Dockerfile that is built: the rendered one, then one `LABEL` instruction.
    pub dockerfile: String,
    /// The name it is sent under in the build context.
    pub dockerfile_name: String,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// The labels that the `LABEL` instruction cannot carry (a line break in a value), passed
    /// to the engine as build parameters instead.
    #[serde(skip)]
    pub build_labels: BTreeMap<String, String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Network mode for RUN steps.
    pub network: Option<String>,
    /// Target platform of an engine build.
    pub platform: Option<String>,
    /// The platforms of an assembled image (empty: the engine builds it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Platform>,
    /// What is assembled, when the image is (`[build] platforms` and a Dockerfile of the
    /// template's shape): the engine is not used.
    #[serde(skip)]
    pub assembled: Option<recipe::Recipe>,
    /// HEAD's commit time in seconds since 1970, what an assembled image is dated at unless
    /// `SOURCE_DATE_EPOCH` says otherwise.
    #[serde(skip)]
    pub commit_time: Option<u64>,
    /// The lock that fixes an assembled image's dependency versions, when the project has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<recipe::Lock>,
    /// The context directory, absolute.
    #[serde(serialize_with = "lossy_path")]
    pub context: PathBuf,
    /// The files the build sees.
    pub context_files: Vec<String>,
    /// What the fingerprint saw of each of them; the build checks every byte it sends
    /// against it.
    #[serde(skip)]
    pub file_digests: Vec<crate::fingerprint::FileDigest>,
    /// Digest over everything that determines the image; also the image's
    /// [`fingerprint::LABEL`] label. An exact tag holding the same fingerprint is unchanged.
    pub fingerprint: String,
    /// The project's own Dockerfile, when it is the one built (`build.dockerfile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_dockerfile: Option<String>,
    /// The project has a `Dockerfile` that is not the one built, with a step the rendered one
    /// lacks (the first such step): `plan` says so (not every command). `None` when there is
    /// none, or it has only the template's steps: rendering builds the same, as init chose.
    #[serde(skip)]
    pub unused_dockerfile: Option<String>,
    /// Things the user should know on every command that plans.
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

impl Plan {
    /// Computes the plan. Pure but for reading override templates: same manifest, inputs and
    /// registry tags, same plan.
    pub fn new(
        manifest: &Manifest,
        inputs: Inputs,
        registry: RegistryTags,
    ) -> Result<Self, PlanError> {
        let (version, version_source) = inputs.version;
        let Rendered {
            base_image,
            dockerfile: rendered,
            own,
        } = render_dockerfile(manifest)?;

        let image = &manifest.image;
        let tag_context = TagContext {
            vantage6: manifest.vantage6.text.clone(),
            name: manifest.name.clone(),
        };
        let Tags {
            exact: exact_tags,
            moves,
            held: tags_held,
        } = tags_for(
            image,
            &manifest.tags,
            &version,
            &tag_context,
            &registry.tags,
        )?;
        let mut tags = exact_tags.clone();
        tags.extend(moves);

        if inputs.context_files.iter().any(|f| f == DOCKERFILE_NAME) {
            return Err(PlanError::Unsendable(Diagnostic::new(
                format!(
                    "the build context has a file named `{DOCKERFILE_NAME}`, the name cargo v6 sends its rendered Dockerfile under"
                ),
                Some("rename it, or exclude it in .dockerignore".to_string()),
            )));
        }
        let mut warnings = Vec::new();
        let unused_dockerfile = match (&own, &inputs.unused_dockerfile) {
            (None, Some(text)) => crate::detect::first_foreign_step(text, manifest.wrapper)
                .or_else(|| other_base(text, manifest, &base_image)),
            _ => None,
        };

        let linked_ignore = inputs
            .file_digests
            .iter()
            .any(|f| f.path == crate::context::DOCKERIGNORE && f.symlink);
        if linked_ignore {
            warnings.push(format!(
                "`.dockerignore` is a symlink: it is sent as the link it is (as docker sends it), so the engine cannot use it to keep the rendered `{DOCKERFILE_NAME}` out of `COPY`"
            ));
        }
        // As with workspace members outside the workspace: what lies outside the repository
        // is neither checked for uncommitted changes nor described by the revision label.
        if let Some(git) = &inputs.git
            && !inputs.context_dir.starts_with(&git.top)
        {
            warnings.push(format!(
                "the build context `{}` is outside the git repository `{}`: its uncommitted changes are not checked, and the image's revision label does not describe it",
                crate::diagnostic::display(&inputs.context_dir),
                crate::diagnostic::display(&git.top)
            ));
        }
        // So for the project's own Dockerfile (read above, as the build reads it).
        if let (Some(git), Some(path)) = (&inputs.git, &manifest.build.dockerfile)
            && std::fs::canonicalize(path).is_ok_and(|real| !real.starts_with(&git.top))
        {
            warnings.push(format!(
                "the Dockerfile `{}` is outside the git repository `{}`: its uncommitted changes are not checked, and the image's revision label does not describe it",
                display(path),
                display(&git.top)
            ));
        }
        let (assembled, platform) = assembly(manifest, &rendered, &mut warnings)?;
        let platforms = match assembled {
            Some(_) => manifest.build.platforms.clone(),
            None => Vec::new(),
        };
        let lock = match assembled {
            Some(_) => recipe::Lock::find(&inputs.context_dir, &inputs.context_files),
            None => None,
        };
        if assembled.is_some() && lock.is_none() {
            warnings.push(
                "no lock in the build context (uv.lock, or a requirements.txt with hashes): the dependencies are today's newest releases, so the same commit may assemble to another digest later".to_string(),
            );
        }
        let mut labels = labels::labels(manifest, &version, inputs.git.as_ref());
        // The fingerprint covers the rendered Dockerfile and the labels, as it did when the
        // labels travelled as build parameters: the same input keeps the same fingerprint.
        let fingerprint = fingerprint::compute(
            Recipe {
                dockerfile: &rendered,
                base_image: &base_image,
                build_args: &manifest.build.args,
                labels: &labels,
                platform: platform.as_deref(),
                platforms: &platforms,
            },
            &inputs.file_digests,
        );
        labels.insert(fingerprint::LABEL.to_string(), fingerprint.clone());
        // Under another escape character (`# escape=` directive) the LABEL quoting differs,
        // and after a last instruction left open by a trailing escape character a LABEL line
        // would join it: the labels then travel as build parameters, one builder step each.
        let appendable = crate::dockerfile::escape_char(&rendered) == '\\'
            && !crate::dockerfile::ends_in_continuation(&rendered);
        let (instruction, build_labels) = match appendable {
            true => labels::instruction(&labels),
            false => (None, labels.clone()),
        };
        let dockerfile = match instruction {
            Some(line) => format!("{}\n{line}\n", rendered.trim_end_matches('\n')),
            None => rendered,
        };
        Ok(Plan {
            name: manifest.name.clone(),
            stable: version.is_stable(),
            version,
            version_source,
            wrapper: manifest.wrapper,
            vantage6: manifest.vantage6.text.clone(),
            image: image.clone(),
            tags,
            exact_tags,
            tags_held,
            tag_templates: manifest.tags.clone(),
            tag_context,
            registry: registry.view,
            base_image,
            dockerfile,
            dockerfile_name: DOCKERFILE_NAME.to_string(),
            labels,
            build_labels,
            build_args: manifest.build.args.clone(),
            network: manifest.build.network.clone(),
            platform,
            platforms,
            assembled,
            commit_time: inputs.git.as_ref().map(|git| git.time),
            lock,
            context: inputs.context_dir,
            context_files: inputs.context_files,
            file_digests: inputs.file_digests,
            fingerprint,
            own_dockerfile: own,
            unused_dockerfile,
            warnings,
        })
    }

    /// How an assembled image is made, in a line: `for linux/amd64, linux/arm64 (no engine;
    /// dependencies from uv.lock)`; `None` when the engine builds it.
    pub fn assembly(&self) -> Option<String> {
        self.assembled.as_ref()?;
        let platforms: Vec<String> = self.platforms.iter().map(ToString::to_string).collect();
        let lock = match &self.lock {
            Some(recipe::Lock::UvLock(path) | recipe::Lock::Requirements(path)) => {
                format!("dependencies from {path}")
            }
            None => "no lock".to_string(),
        };
        Some(format!("for {} (no engine; {lock})", platforms.join(", ")))
    }

    /// Whether the image is assembled (no engine builds it).
    pub fn is_assembled(&self) -> bool {
        self.assembled.is_some()
    }

    /// The exact version tag that publish reads back and reports: the first one.
    pub fn primary_tag(&self) -> &TaggedImage {
        // `plan_tags` always renders at least one exact tag (the manifest requires a
        // `{{version}}` template), so `exact_tags` is never empty.
        &self.exact_tags[0]
    }

    /// The aliases this version moves, and those a higher version owns, given the tags the
    /// registry holds now: publish decides again right before writing aliases, and once more
    /// after, so that concurrent publishes end with every alias on the highest version.
    pub fn aliases_against(
        &self,
        existing: &[String],
    ) -> Result<(Vec<TaggedImage>, Vec<HeldTag>), PlanError> {
        let tags = tags_for(
            &self.image,
            &self.tag_templates,
            &self.version,
            &self.tag_context,
            existing,
        )?;
        Ok((tags.moves, tags.held))
    }

    /// Whether `tag` is one of the exact version tags.
    pub fn is_exact(&self, tag: &Tag) -> bool {
        self.exact_tags.iter().any(|t| &t.tag == tag)
    }
}

/// How the image is made: assembled (the recipe) when `[build] platforms` is set and the
/// Dockerfile allows it; otherwise by the engine, for `platform` (the one platform listed, or
/// `[build] platform`). Several platforms and a Dockerfile that must run a step is refused:
/// an engine builds for its own platform, and nothing here emulates another.
fn assembly(
    manifest: &Manifest,
    rendered: &str,
    warnings: &mut Vec<String>,
) -> Result<(Option<recipe::Recipe>, Option<String>), PlanError> {
    let platforms = &manifest.build.platforms;
    if platforms.is_empty() {
        return Ok((None, manifest.build.platform.clone()));
    }
    match recipe::recipe(rendered, &manifest.build.args) {
        Ok(recipe) => {
            if !platforms.contains(&Platform::LinuxAmd64) {
                warnings.push(format!(
                    "assembled for {} only: nodes on linux/amd64, most of them, cannot run this image",
                    platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
            Ok((Some(recipe), None))
        }
        Err(refusal) if platforms.len() == 1 => {
            warnings.push(format!(
                "built by the engine, not assembled: {refusal}; the digest depends on the build's time and machine"
            ));
            Ok((None, Some(platforms[0].to_string())))
        }
        Err(refusal) => {
            let file = match &manifest.build.dockerfile {
                Some(path) => display(path),
                None => "the rendered Dockerfile".to_string(),
            };
            let listed: Vec<String> = platforms.iter().map(ToString::to_string).collect();
            Err(PlanError::NotAssemblable(Diagnostic {
                location: manifest.platforms_location(),
                ..Diagnostic::new(
                format!(
                    "cannot make images for {} without emulation: {file} {refusal}",
                    listed.join(" and ")
                ),
                Some("list one platform in `[build] platforms` to build with the engine as before, or build each platform with an engine of that platform; only the template's shape (`COPY . /app`, `pip install /app`, config-only instructions) is assembled for several".to_string()),
                )
            }))
        }
    }
}
