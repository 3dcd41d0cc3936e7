//! `v6.toml`: the declarative description of one algorithm.
//!
//! Loading is two passes over the same text: serde (through `toml`, which keeps byte spans)
//! checks syntax, keys and types; then every value that ends up in a Dockerfile, a tag or an
//! image reference is validated here, so that the rest of the pipeline only ever sees valid
//! data. Every error carries the [`Location`] of the offending key or value.

mod inherit;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use inherit::Origin;
pub use inherit::{Defaults, INHERITABLE};

use crate::diagnostic::{Location, closest, display};
use crate::oci::reference::{ImageName, ImageRef, ReferenceError};
use crate::tags::{self, TagTemplate};
use crate::vantage6::{self, Vantage6Version, Wrapper};
use crate::version::Version;

/// In `image` and `release-tag-prefix`, the algorithm's name: what lets one workspace default
/// name every member's repository and release tags.
pub const NAME_PLACEHOLDER: &str = "{name}";

/// The file name searched for, like `Cargo.toml`.
pub const FILE_NAME: &str = "v6.toml";

/// Marks an `image` that `cargo v6 init` could not guess; plan rejects it with a hint.
pub const IMAGE_PLACEHOLDER: &str = "REGISTRY/OWNER/NAME";

/// Marks a `build.base` that `cargo v6 init` cannot know (there is no default for the
/// wrapper); plan rejects it with a hint.
pub const BASE_PLACEHOLDER: &str = "REGISTRY/OWNER/BASE:TAG";

/// How a minimal image's command is written: exec form (`["a", "b"]`) or shell form (`"a b"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Command {
    /// `CMD ["a", "b"]`: no shell.
    Exec(Vec<String>),
    /// `CMD a b`: through `/bin/sh -c`.
    Shell(String),
}

/// `[build]`: how the image is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The build context directory, as the user would type it (relative to the cwd).
    pub context: PathBuf,
    /// Base image override (required for vantage6 3.x, R and minimal).
    pub base: Option<ImageRef>,
    /// Build arguments, declared as `ARG` in the rendered Dockerfile.
    pub args: BTreeMap<String, String>,
    /// Extra image labels.
    pub labels: BTreeMap<String, String>,
    /// Network mode for `RUN` steps (`host` when they need package registries).
    pub network: Option<String>,
    /// Target platform, `os/arch[/variant]`.
    pub platform: Option<String>,
    /// A directory whose `*.Dockerfile.hbs` files override the built-in templates by name.
    pub templates: Option<PathBuf>,
    /// Minimal wrapper: the `RUN` line that installs the algorithm.
    pub install: Option<String>,
    /// Minimal wrapper: the container's command.
    pub command: Option<Command>,
    /// The project's own Dockerfile, built instead of a rendered one (for steps no template
    /// expresses: apt, conda, downloads).
    pub dockerfile: Option<PathBuf>,
}

/// `[publish]`: how releases are checked and pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The git tag that marks a release is `{prefix}{version}`.
    pub release_tag_prefix: String,
    /// Talk plain HTTP to this (non-loopback) registry.
    pub insecure: bool,
    /// How long a registry or a push may go without progress before publish gives up.
    pub stall_timeout: std::time::Duration,
    /// The release tag on HEAD is the version (vantage6's convention: bare tags such as
    /// `1.2.1`, whatever the metadata says); an untagged HEAD needs `--set-version`.
    pub version_from_tag: bool,
}

/// `[sign]`: sign what publish pushes, with cosign's formats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sign {
    /// The private key (cosign.key), relative to the current directory as the user would
    /// type it (written relative to v6.toml). `None`: publish signs only with `--sign-key`.
    pub key: Option<PathBuf>,
    /// Which layouts the signature is written in.
    pub format: crate::sign::Format,
}

/// A loaded and validated v6.toml.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's path as the user would type it.
    pub path: PathBuf,
    /// Its directory (where the project metadata lives), as the user would type it.
    pub dir: PathBuf,
    /// The file's text, kept to point at values in later errors.
    pub source: String,
    /// PKG_NAME: the package the wrapper imports.
    pub name: String,
    /// The wrapper type.
    pub wrapper: Wrapper,
    /// The vantage6 version targeted.
    pub vantage6: Vantage6Version,
    /// The repository the image is published to.
    pub image: ImageName,
    /// `version`, when set explicitly.
    pub version: Option<Version>,
    /// For the `org.opencontainers.image.description` label.
    pub description: Option<String>,
    /// SPDX expression for the `org.opencontainers.image.licenses` label.
    pub license: Option<String>,
    /// Tag templates, exact tags and aliases.
    pub tags: Vec<TagTemplate>,
    /// `[build]`.
    pub build: Build,
    /// `[publish]`.
    pub publish: Publish,
    /// `[sign]`.
    pub sign: Sign,
    /// The workspace's root v6.toml, for a member (as the user would type it): its defaults
    /// are part of this algorithm's input.
    pub workspace_root: Option<PathBuf>,
    spans: Spans,
}

/// Where the values that later stages check against the filesystem were written (in the
/// member's file, or the workspace root's for an inherited value).
#[derive(Debug, Clone)]
struct Spans {
    context: Option<Location>,
    templates: Option<Location>,
    dockerfile: Option<Location>,
    name: Location,
}

/// A manifest could not be found, read or validated.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// No v6.toml in the directory or any parent.
    #[error("could not find `{FILE_NAME}` in `{}` or any parent directory", start.display())]
    NotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// `--manifest-path` names a file that cannot be read.
    #[error("cannot read manifest `{}`: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Syntax, an unknown key, a wrong type or an invalid value.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// Where.
        location: Location,
        /// How to fix it, when there is more to say.
        help: Option<String>,
    },
}

impl Manifest {
    /// Finds the manifest: `manifest_path` if given, else `v6.toml` in `cwd` or a parent.
    /// The result is displayable as the user would type it (relative to `cwd` when found).
    pub fn locate(manifest_path: Option<&Path>, cwd: &Path) -> Result<PathBuf, ManifestError> {
        if let Some(path) = manifest_path {
            return Ok(path.to_path_buf());
        }
        let mut up = PathBuf::new();
        for dir in cwd.ancestors() {
            // Anything of that name but a directory: `load` then says what is wrong with it
            // (a FIFO is named as one rather than silently passed over).
            if dir.join(FILE_NAME).metadata().is_ok_and(|m| !m.is_dir()) {
                return Ok(up.join(FILE_NAME));
            }
            up.push("..");
        }
        Err(ManifestError::NotFound {
            start: cwd.to_path_buf(),
        })
    }

    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let source = crate::files::read_regular_text(path, crate::files::SMALL_FILE_MAX).map_err(
            |source| ManifestError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Self::parse(path, source)
    }

    /// Validates `source`, the text of the manifest at `path`.
    pub fn parse(path: &Path, source: String) -> Result<Self, ManifestError> {
        Self::parse_member(path, source, None)
    }

    /// Validates `source`, the text of the manifest at `path`, a member of the workspace
    /// whose root gives `workspace`'s defaults (see [`inherit`]).
    pub fn parse_member(
        path: &Path,
        source: String,
        workspace: Option<&Defaults>,
    ) -> Result<Self, ManifestError> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let origin = Origin::new(path, &source, &dir).inheriting(workspace);
        let toml_error = |err: toml::de::Error| {
            let (message, help) = explain_toml_error(err.message());
            ManifestError::Invalid {
                message,
                location: origin.locate(err.span().unwrap_or(0..0)),
                help,
            }
        };
        let mut document = toml::de::DeTable::parse(&source).map_err(toml_error)?;
        let root;
        if let Some(defaults) = workspace {
            // The loader has read the root already; an error here still points at it.
            root = toml::de::DeTable::parse(&defaults.source).map_err(|err| {
                invalid(
                    &defaults.path,
                    &defaults.source,
                    err.span().unwrap_or(0..0),
                    err.message().trim_end(),
                    None,
                )
            })?;
            if let Some(table) = root
                .get_ref()
                .get("workspace")
                .and_then(|w| w.get_ref().as_table())
            {
                inherit::merge(document.get_mut(), table, origin.offset());
            }
        }
        let raw =
            RawManifest::deserialize(toml::de::Deserializer::from(document)).map_err(toml_error)?;
        Validator {
            origin,
            workspace_root: workspace.map(|w| w.path.as_path()),
        }
        .manifest(raw)
    }

    /// Where `build.context` was written (or the whole `[algorithm]` name, as a fallback).
    pub fn context_location(&self) -> Location {
        self.spans.context.clone().unwrap_or(self.name_location())
    }

    /// Where `algorithm.name` was written.
    pub fn name_location(&self) -> Location {
        self.spans.name.clone()
    }

    /// Where `build.dockerfile` was written.
    pub fn dockerfile_location(&self) -> Location {
        self.spans
            .dockerfile
            .clone()
            .unwrap_or(self.name_location())
    }

    /// Where `build.templates` was written: in the workspace's root when inherited.
    pub fn templates_location(&self) -> Location {
        self.spans.templates.clone().unwrap_or(self.name_location())
    }

    /// The record of releases (`v6.lock`) this algorithm's releases go to: beside the
    /// workspace's root v6.toml, or its own.
    pub fn record_path(&self) -> PathBuf {
        match &self.workspace_root {
            Some(root) => root.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => self.dir.clone(),
        }
        .join(crate::record::FILE_NAME)
    }
}

fn invalid(
    path: &Path,
    source: &str,
    span: Range<usize>,
    message: impl Into<String>,
    help: Option<String>,
) -> ManifestError {
    ManifestError::Invalid {
        message: message.into(),
        location: Location::new(display(path), source, span),
        help,
    }
}

/// Rewords serde's messages for the user and suggests the closest key or variant. serde only
/// gives text for unknown fields and variants, so the expected names are read back from it.
fn explain_toml_error(message: &str) -> (String, Option<String>) {
    let message = message.trim_end();
    let backticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    for (prefix, what) in [("unknown field", "key"), ("unknown variant", "value")] {
        if let Some((found, expected)) = message
            .starts_with(prefix)
            .then(|| backticked.split_first())
            .flatten()
        {
            let help = closest(found, expected)
                .map(|m| format!("did you mean `{m}`?"))
                .or_else(|| {
                    (!expected.is_empty()).then(|| {
                        let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
                        format!("expected one of {}", list.join(", "))
                    })
                });
            return (format!("unknown {what} `{found}`"), help);
        }
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return (format!("missing key {field}"), None);
    }
    (message.to_string(), None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawManifest {
    algorithm: RawAlgorithm,
    #[serde(default)]
    build: RawBuild,
    #[serde(default)]
    publish: RawPublish,
    #[serde(default)]
    sign: RawSign,
    /// `[store]`: the algorithm store's metadata, read and checked by `crate::store` (which
    /// needs the loaded manifest, so it cannot be checked here without an import cycle).
    #[serde(default)]
    store: Option<RawStore>,
}

/// The one key of `[store]` checked here: `output` is a path that reaches generated files
/// (the CI jobs keep it as an artifact), so it is held to a single line like every other
/// such value, whichever command loads the manifest. The other keys are `crate::store`'s.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawStore {
    output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAlgorithm {
    name: Spanned<String>,
    wrapper: Spanned<Wrapper>,
    vantage6: Spanned<String>,
    image: Spanned<String>,
    version: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    license: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBuild {
    context: Option<Spanned<String>>,
    base: Option<Spanned<String>>,
    #[serde(default)]
    args: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<Spanned<String>, Spanned<String>>,
    network: Option<Spanned<String>>,
    platform: Option<Spanned<String>>,
    templates: Option<Spanned<String>>,
    install: Option<Spanned<String>>,
    command: Option<Spanned<Command>>,
    dockerfile: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPublish {
    release_tag_prefix: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    stall_timeout: Option<Spanned<u64>>,
    version_from_tag: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSign {
    key: Option<Spanned<String>>,
    format: Option<Spanned<crate::sign::Format>>,
}

/// The default of `stall-timeout` and `--stall-timeout`, in seconds.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 120;

/// Turns raw values into validated ones, pointing at the value on failure.
struct Validator<'a> {
    /// Which file (member or workspace root) each span is in.
    origin: Origin<'a>,
    /// A workspace member's root manifest: release tags default to `{name}-v1.2.3`.
    workspace_root: Option<&'a Path>,
}

impl Validator<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            message: message.into(),
            location: self.origin.locate(span),
            help: None,
        }
    }

    fn error_with_help(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        ManifestError::Invalid {
            message: message.into(),
            location: self.origin.locate(span),
            help: Some(help.into()),
        }
    }

    fn manifest(&self, raw: RawManifest) -> Result<Manifest, ManifestError> {
        let dir = self.origin.member_dir().to_path_buf();
        let a = raw.algorithm;
        let wrapper = *a.wrapper.get_ref();
        let name = self.name(&a.name, wrapper)?;
        let vantage6 = self.vantage6(&a.vantage6)?;
        let image = self.image(&a.image, &name)?;
        let version = a
            .version
            .as_ref()
            .map(|v| {
                Version::parse_for(v.get_ref(), wrapper)
                    .map_err(|e| self.error(v.span(), e.to_string()))
            })
            .transpose()?;
        let description = a
            .description
            .as_ref()
            .map(|d| self.single_line(d, "description"))
            .transpose()?;
        let license = a
            .license
            .as_ref()
            .map(|l| self.single_line(l, "license"))
            .transpose()?;
        let tags = self.tags(a.tags.as_ref())?;
        if let Some(output) = raw.store.as_ref().and_then(|s| s.output.as_ref()) {
            self.single_line(output, "store.output")?;
        }
        self.sizes(&a, &raw.build)?;
        let (build, spans) = self.build(raw.build, &dir, &a.wrapper, &vantage6)?;
        let release_tag_prefix = match raw.publish.release_tag_prefix {
            Some(prefix) => self
                .release_tag_prefix(&prefix)?
                .replace(NAME_PLACEHOLDER, &name),
            // cargo-release's form in a workspace, where one repository tags many algorithms.
            None if self.workspace_root.is_some() => format!("{name}-v"),
            None => "v".to_string(),
        };
        let version_from_tag = match (&raw.publish.version_from_tag, &a.version) {
            (Some(from_tag), Some(version))
                if *from_tag.get_ref() && self.origin.is_inherited(&from_tag.span()) =>
            {
                let (line, column) = self.origin.locate(from_tag.span()).line_col();
                return Err(self.error_with_help(
                    version.span(),
                    format!(
                        "`algorithm.version` is set, but the workspace sets `version-from-tag` ({}:{line}:{column})",
                        self.origin.locate(from_tag.span()).path
                    ),
                    "set `version-from-tag = false` under [publish] here to take this version, or remove `version`",
                ));
            }
            (Some(from_tag), Some(_)) if *from_tag.get_ref() => {
                return Err(self.error_with_help(
                    from_tag.span(),
                    "`version-from-tag` and `algorithm.version` cannot both be set",
                    "the release tag on HEAD is the version: remove `version` from [algorithm]",
                ));
            }
            (from_tag, _) => from_tag.as_ref().is_some_and(|f| *f.get_ref()),
        };
        let stall_timeout = match raw.publish.stall_timeout {
            Some(seconds) if !(1..=86_400).contains(seconds.get_ref()) => {
                return Err(self.error_with_help(
                    seconds.span(),
                    "`stall-timeout` must be between 1 and 86400 seconds",
                    "the default is 120: how long a registry or a push may make no progress",
                ));
            }
            Some(seconds) => *seconds.get_ref(),
            None => DEFAULT_STALL_TIMEOUT_SECS,
        };
        let sign = Sign {
            key: raw
                .sign
                .key
                .map(|key| {
                    let text = self.single_line(&key, "sign.key")?;
                    if text.is_empty() {
                        return Err(self.error_with_help(
                            key.span(),
                            "`sign.key` is empty",
                            "write the path of the private key, e.g. \"../keys/cosign.key\"",
                        ));
                    }
                    Ok(self.origin.dir(&key.span()).join(text))
                })
                .transpose()?,
            format: raw.sign.format.map(Spanned::into_inner).unwrap_or_default(),
        };
        Ok(Manifest {
            path: self.origin.member_path().to_path_buf(),
            dir,
            source: self.origin.member_source().to_string(),
            spans: Spans {
                name: self.origin.locate(a.name.span()),
                ..spans
            },
            workspace_root: self.workspace_root.map(Path::to_path_buf),
            name,
            wrapper,
            vantage6,
            image,
            version,
            description,
            license,
            tags,
            build,
            publish: Publish {
                release_tag_prefix,
                insecure: raw.publish.insecure,
                stall_timeout: std::time::Duration::from_secs(stall_timeout),
                version_from_tag,
            },
            sign,
        })
    }

    /// PKG_NAME goes into the Dockerfile and the wrapper's import: a package name, nothing else.
    fn name(&self, name: &Spanned<String>, wrapper: Wrapper) -> Result<String, ManifestError> {
        let text = name.get_ref();
        let valid = match wrapper {
            // R package names: letters, digits and dots, starting with a letter.
            Wrapper::R => {
                text.starts_with(|c: char| c.is_ascii_alphabetic())
                    && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
            }
            // The Python wrapper imports PKG_NAME; minimal images only pass it on.
            Wrapper::Python | Wrapper::Minimal => {
                text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            }
        };
        if valid {
            Ok(text.clone())
        } else {
            Err(self.error_with_help(
                name.span(),
                format!("invalid algorithm name `{}`", text.escape_debug()),
                match wrapper {
                    Wrapper::R => "an R package name has letters, digits and dots, and starts with a letter",
                    _ => "the name is the package the wrapper imports: letters, digits, `_`, `-` and `.`, starting with a letter or `_`",
                },
            ))
        }
    }

    fn vantage6(&self, v: &Spanned<String>) -> Result<Vantage6Version, ManifestError> {
        let text = v.get_ref();
        let parts: Vec<&str> = text.split('.').collect();
        let numbers: Option<Vec<u64>> = parts
            .iter()
            .map(|p| {
                (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect();
        let Some(numbers) = numbers.filter(|n| (2..=3).contains(&n.len())) else {
            return Err(self.error_with_help(
                v.span(),
                format!("invalid vantage6 version `{}`", text.escape_debug()),
                "write MAJOR.MINOR, e.g. \"4.13\"",
            ));
        };
        if !vantage6::SUPPORTED_MAJORS.contains(&numbers[0]) {
            return Err(self.error_with_help(
                v.span(),
                format!("unsupported vantage6 version `{text}`"),
                "cargo v6 has templates for vantage6 3.x, 4.x and 5.x",
            ));
        }
        Ok(Vantage6Version {
            text: text.clone(),
            major: numbers[0],
            minor: numbers[1],
        })
    }

    /// The repository; `{name}` in it is the algorithm's name (a workspace's
    /// `image = "ghcr.io/org/{name}"`).
    fn image(&self, image: &Spanned<String>, name: &str) -> Result<ImageName, ManifestError> {
        if image.get_ref() == IMAGE_PLACEHOLDER {
            return Err(self.error_with_help(
                image.span(),
                "`image` is still the placeholder that `cargo v6 init` wrote",
                "set it to the registry and repository to publish to, e.g. \"ghcr.io/you/algorithm\"",
            ));
        }
        ImageName::parse(&image.get_ref().replace(NAME_PLACEHOLDER, name)).map_err(|e| {
            // The marker already shows the value: say what is wrong, not the value again.
            let reason = match e {
                ReferenceError::NameContainsUppercase { .. } => {
                    "repository names must be lowercase".to_string()
                }
                other => other.to_string(),
            };
            let whose = match image.get_ref().contains(NAME_PLACEHOLDER) {
                true => format!(" for `{name}`"),
                false => String::new(),
            };
            self.error(
                image.span(),
                format!("invalid image reference{whose}: {reason}"),
            )
        })
    }

    /// Values that end up in labels, Dockerfile lines or CI files: one line, no control
    /// characters, and none of the Unicode line and paragraph separators (U+2028, U+2029),
    /// which YAML 1.1 parsers (GitLab's) and JavaScript read as line breaks.
    fn single_line(&self, value: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
        if value
            .get_ref()
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(self.error(
                value.span(),
                format!("`{key}` must be a single line without control characters"),
            ));
        }
        Ok(value.get_ref().clone())
    }

    /// The start of every release tag, so held to git's rules for a tag name (`git
    /// check-ref-format`): a prefix no tag can carry would write CI triggers that never fire.
    fn release_tag_prefix(&self, value: &Spanned<String>) -> Result<String, ManifestError> {
        let text = self.single_line(value, "release-tag-prefix")?;
        let refused = text
            .chars()
            .find(|c| matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
            .map(|c| format!("`{c}`"))
            .or_else(|| {
                ["..", "@{", "//", "/."]
                    .into_iter()
                    .find(|s| text.contains(s))
                    .map(|s| format!("`{s}`"))
            })
            .or_else(|| {
                text.starts_with(['.', '/'])
                    .then(|| "a leading `.` or `/`".to_string())
            });
        match refused {
            Some(what) => Err(self.error_with_help(
                value.span(),
                format!("`release-tag-prefix` holds {what}, which git does not allow in a tag name"),
                "release tags are `{prefix}{version}`, e.g. \"v\" or \"summary-v\"; git refuses spaces, `~ ^ : ? * [ \\`, `..`, `@{` and a leading `.`",
            )),
            None => Ok(text),
        }
    }

    /// A value rendered as the rest of a Dockerfile line: besides one line, it must not end in
    /// `\\`, which would continue the instruction onto the template's next line.
    fn dockerfile_line(&self, value: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
        let text = self.single_line(value, key)?;
        if text.trim_end().ends_with('\\') {
            return Err(self.error(
                value.span(),
                format!("`{key}` must not end with `\\` (it would continue onto the next Dockerfile line)"),
            ));
        }
        Ok(text)
    }

    fn tags(
        &self,
        tags: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<TagTemplate>, ManifestError> {
        let Some(tags) = tags else {
            return Ok(tags::default_templates());
        };
        let templates = tags
            .get_ref()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                TagTemplate::parse(t.get_ref(), i).map_err(|e| self.error(t.span(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !templates.iter().any(TagTemplate::is_exact) {
            return Err(self.error_with_help(
                tags.span(),
                "`tags` has no exact version tag",
                "include a template with `{{version}}`: it is the tag that is never overwritten",
            ));
        }
        Ok(templates)
    }

    fn build(
        &self,
        raw: RawBuild,
        dir: &Path,
        wrapper_value: &Spanned<Wrapper>,
        vantage6: &Vantage6Version,
    ) -> Result<(Build, Spans), ManifestError> {
        let wrapper = *wrapper_value.get_ref();
        if let Some(b) = raw
            .base
            .as_ref()
            .filter(|b| b.get_ref() == BASE_PLACEHOLDER)
        {
            return Err(self.error_with_help(
                b.span(),
                "`build.base` is still the placeholder that `cargo v6 init` wrote",
                "set it to the base image you build on, e.g. \"ghcr.io/you/algorithm-base:1\"",
            ));
        }
        let base = raw
            .base
            .as_ref()
            .map(|b| {
                ImageRef::parse(b.get_ref())
                    .map_err(|e| self.error(b.span(), format!("invalid base image reference: {e}")))
            })
            .transpose()?;
        let mut args = BTreeMap::new();
        for (key, value) in raw.args {
            if !is_identifier(key.get_ref()) {
                return Err(self.error(
                    key.span(),
                    format!(
                        "invalid build argument name `{}`: use letters, digits and `_`",
                        key.get_ref().escape_debug()
                    ),
                ));
            }
            args.insert(key.into_inner(), value.into_inner());
        }
        let mut labels = BTreeMap::new();
        for (key, value) in raw.labels {
            if key.get_ref().is_empty() || key.get_ref().chars().any(char::is_control) {
                return Err(self.error(key.span(), "invalid label name"));
            }
            labels.insert(key.into_inner(), value.into_inner());
        }
        let network = raw
            .network
            .map(|n| self.word(&n, "network", "e.g. \"host\" or \"none\""))
            .transpose()?;
        let platform = raw
            .platform
            .map(|p| {
                let valid = (2..=3).contains(&p.get_ref().split('/').count())
                    && p.get_ref().split('/').all(|part| {
                        !part.is_empty()
                            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                if valid {
                    Ok(p.into_inner())
                } else {
                    Err(self.error_with_help(
                        p.span(),
                        "invalid platform",
                        "write OS/ARCH[/VARIANT], e.g. \"linux/amd64\"",
                    ))
                }
            })
            .transpose()?;
        let install = raw
            .install
            .as_ref()
            .map(|i| self.dockerfile_line(i, "build.install"))
            .transpose()?;
        let command = raw.command.as_ref().map(|c| self.command(c)).transpose()?;
        for (value, key) in [
            (raw.install.as_ref().map(|v| v.span()), "install"),
            (raw.command.as_ref().map(|v| v.span()), "command"),
        ] {
            if let (Some(span), false) = (value, wrapper == Wrapper::Minimal) {
                return Err(self.error_with_help(
                    span,
                    format!("`build.{key}` is only used by the minimal wrapper"),
                    format!(
                        "the {} wrapper installs and runs the package itself",
                        wrapper.as_str()
                    ),
                ));
            }
        }
        if let Some(own) = &raw.dockerfile {
            let unused = [
                (raw.base.as_ref().map(|v| v.span()), "base"),
                (raw.templates.as_ref().map(|v| v.span()), "templates"),
                (raw.install.as_ref().map(|v| v.span()), "install"),
                (raw.command.as_ref().map(|v| v.span()), "command"),
            ];
            if let Some((Some(span), key)) = unused.into_iter().find(|(s, _)| s.is_some()) {
                return Err(self.error_with_help(
                    span,
                    format!("`build.{key}` is not used with `build.dockerfile`"),
                    format!(
                        "the project's own Dockerfile (`{}`) says how the image is built: remove `{key}`",
                        own.get_ref()
                    ),
                ));
            }
        } else {
            self.require_base(base.as_ref(), wrapper_value, vantage6)?;
        }
        if wrapper == Wrapper::Minimal && command.is_none() && raw.dockerfile.is_none() {
            return Err(self.error_with_help(
                wrapper_value.span(),
                "the minimal wrapper needs `build.command`",
                "e.g. command = [\"python\", \"-m\", \"my_algorithm\"]",
            ));
        }
        let at =
            |value: &Option<Spanned<String>>| value.as_ref().map(|v| self.origin.locate(v.span()));
        let spans = Spans {
            context: at(&raw.context),
            templates: at(&raw.templates),
            dockerfile: at(&raw.dockerfile),
            name: self.origin.locate(0..0),
        };
        Ok((
            Build {
                context: dir.join(raw.context.map_or_else(|| ".".into(), Spanned::into_inner)),
                base,
                args,
                labels,
                network,
                platform,
                templates: raw
                    .templates
                    .map(|t| self.origin.dir(&t.span()).join(t.into_inner())),
                install,
                command,
                dockerfile: raw
                    .dockerfile
                    .map(|d| {
                        self.single_line(&d, "build.dockerfile")
                            .map(|d| dir.join(d))
                    })
                    .transpose()?,
            },
            spans,
        ))
    }

    /// vantage6 3.x and R lost their base images with harbor2, and minimal has none.
    fn require_base(
        &self,
        base: Option<&ImageRef>,
        wrapper: &Spanned<Wrapper>,
        vantage6: &Vantage6Version,
    ) -> Result<(), ManifestError> {
        if base.is_some() {
            return Ok(());
        }
        let why = match (*wrapper.get_ref(), vantage6.major) {
            (Wrapper::Minimal, _) => "the minimal wrapper has no default base image",
            (Wrapper::R, _) => {
                "the R (vtg) base image lived on harbor2.vantage6.ai, which is gone: there is no default"
            }
            (Wrapper::Python, 3) => {
                "vantage6 3.x's base image lived on harbor2.vantage6.ai, which is gone: there is no default"
            }
            _ => return Ok(()),
        };
        Err(self.error_with_help(
            wrapper.span(),
            format!("`build.base` is required: {why}"),
            "set `base` under [build] to an image you maintain, e.g. base = \"ghcr.io/you/algorithm-base:1\"",
        ))
    }

    fn command(&self, command: &Spanned<Command>) -> Result<Command, ManifestError> {
        let lines: Vec<&String> = match command.get_ref() {
            Command::Exec(args) if args.is_empty() => {
                return Err(self.error(command.span(), "`build.command` is empty"));
            }
            Command::Exec(args) => args.iter().collect(),
            Command::Shell(line) => {
                if line.trim_end().ends_with('\\') {
                    return Err(self.error(
                        command.span(),
                        "`build.command` must not end with `\\` (it would continue onto the next Dockerfile line)",
                    ));
                }
                vec![line]
            }
        };
        if lines.iter().any(|l| l.chars().any(char::is_control)) {
            return Err(self.error(
                command.span(),
                "`build.command` must not contain newlines or control characters",
            ));
        }
        Ok(command.get_ref().clone())
    }

    fn word(
        &self,
        value: &Spanned<String>,
        key: &str,
        help: &str,
    ) -> Result<String, ManifestError> {
        let text = value.get_ref();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            return Err(self.error_with_help(
                value.span(),
                format!("invalid {key} `{}`", text.escape_debug()),
                help,
            ));
        }
        Ok(text.clone())
    }
}

// ---- Sizes: what one build request can carry ----
//
// Measured on dockerd 20.10 with the classic builder: a Dockerfile line of 65,535 bytes is
// accepted, one of 65,536 is refused ("dockerfile line greater than max allowed size of
// 65535"). The build arguments, and the labels that cannot be written on a Dockerfile line,
// travel in the build request's URL as JSON, URL-encoded: the HTTP client (hyper's
// `http::Uri`) refuses a URI longer than 65,534 bytes ("uri too long"; a 65,000-byte build
// argument passes, 65,300 bytes fail), while the engine itself would take up to 1 MiB (HTTP
// 431 beyond). Both limits are checked when the manifest is loaded, with 4 KiB to spare for
// what cargo v6 adds (its own labels; the socket, path, tag and options of the URL).

/// The most that cargo v6's one `LABEL` line may take for the labels of the manifest
/// (`algorithm.name`, `description`, `license` and `build.labels`, quoted), and the most a
/// `build.install` or `build.command` line may take.
pub const DOCKERFILE_LINE_MAX: usize = 60 * 1024;

/// The most that the build arguments and the labels sent with them may take in the build
/// request's URL, encoded.
pub const BUILD_URL_MAX: usize = 60 * 1024;

/// Whether a label can be written on the Dockerfile's `LABEL` line: no control character
/// (the instruction must stay one line) and no `=` in the key (the parser splits on it).
/// The others travel in the build request's URL.
pub fn label_fits_on_line(key: &str, value: &str) -> bool {
    !key.contains('=') && !key.chars().any(char::is_control) && !value.chars().any(char::is_control)
}

/// The length of `text` as a double-quoted Dockerfile word, `\`, `"` and `$` escaped.
pub fn quoted_len(text: &str) -> usize {
    let escaped = text.bytes().filter(|b| matches!(b, b'\\' | b'"' | b'$'));
    text.len() + 2 + escaped.count()
}

/// The length of `text` in the build request's URL: a JSON string, URL-encoded as a form
/// (letters, digits, `*-._` and space take one byte, every other byte three).
fn url_len(text: &str) -> usize {
    let json = serde_json::to_string(text).expect("a string serializes");
    json.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_' | b' ') {
                1
            } else {
                3
            }
        })
        .sum()
}

/// A size in bytes for messages: `812 bytes`, `60.0 KiB`, `1.2 MiB`.
fn human_size(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `build.labels.KEY` with the key quoted as TOML needs it.
fn label_field(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        format!("build.labels.{key}")
    } else {
        format!("build.labels.{}", toml::Value::String(key.to_owned()))
    }
}

/// One value's share of a size limit, and where it was written.
struct Share {
    field: String,
    span: Range<usize>,
    bytes: usize,
}

impl Validator<'_> {
    /// Refuses what the engine or the HTTP client would refuse for its size, naming the
    /// field, before anything is sent: the labels on the `LABEL` line, the build arguments
    /// and labels in the URL, and the `RUN`/`CMD` lines of the minimal wrapper.
    fn sizes(&self, a: &RawAlgorithm, b: &RawBuild) -> Result<(), ManifestError> {
        // The labels as `plan::labels` makes them from the manifest (`build.labels` win);
        // the labels it adds from the version and git are in the 4 KiB to spare.
        let mut labels: BTreeMap<&str, (String, &Spanned<String>, Range<usize>)> = BTreeMap::new();
        labels.insert(
            "org.opencontainers.image.title",
            ("algorithm.name".to_owned(), &a.name, a.name.span()),
        );
        for (key, field, value) in [
            (
                "org.opencontainers.image.description",
                "algorithm.description",
                &a.description,
            ),
            (
                "org.opencontainers.image.licenses",
                "algorithm.license",
                &a.license,
            ),
        ] {
            if let Some(value) = value {
                labels.insert(key, (field.to_owned(), value, value.span()));
            }
        }
        for (key, value) in &b.labels {
            labels.insert(
                key.get_ref(),
                (label_field(key.get_ref()), value, key.span()),
            );
        }
        let mut line = Vec::new();
        let mut url = Vec::new();
        for (key, (field, value, key_span)) in labels {
            let value_text = value.get_ref();
            if label_fits_on_line(key, value_text) {
                let (k, v) = (quoted_len(key), quoted_len(value_text));
                let span = if k > v { key_span } else { value.span() };
                line.push(Share {
                    field,
                    span,
                    bytes: k + 1 + v + 1,
                });
            } else {
                let (k, v) = (url_len(key), url_len(value_text));
                let span = if k > v { key_span } else { value.span() };
                url.push(Share {
                    field,
                    span,
                    bytes: k + v + 6,
                });
            }
        }
        for (key, value) in &b.args {
            let (k, v) = (url_len(key.get_ref()), url_len(value.get_ref()));
            let span = if k > v { key.span() } else { value.span() };
            let field = format!("build.args.{}", key.get_ref());
            url.push(Share {
                field,
                span,
                bytes: k + v + 6,
            });
        }
        let too_large = |shares: Vec<Share>, base: usize, max: usize, what: &str, help: &str| {
            let total = base + shares.iter().map(|s| s.bytes).sum::<usize>();
            match shares.into_iter().max_by_key(|s| s.bytes) {
                Some(largest) if total > max => Err(self.error_with_help(
                    largest.span,
                    format!(
                        "`{}` is too large: {what} would take {}, more than the {} allowed",
                        largest.field,
                        human_size(total),
                        human_size(max)
                    ),
                    help,
                )),
                _ => Ok(()),
            }
        };
        too_large(
            line,
            "LABEL ".len(),
            DOCKERFILE_LINE_MAX,
            "the labels on the Dockerfile's `LABEL` line",
            "the engine refuses Dockerfile lines over 64 KiB (cargo v6 keeps 4 KiB of the line for the labels it adds): shorten the text, or ship it as a file in the build context",
        )?;
        too_large(
            url,
            "buildargs={}labels={}".len() * 3,
            BUILD_URL_MAX,
            "the build arguments and labels sent in the build request's URL (as URL-encoded JSON)",
            "a build request's URL holds at most 64 KiB (cargo v6 keeps 4 KiB for the rest of it); labels with a line break or control character, and label names with `=`, travel there too: pass large data as a file in the build context",
        )?;
        let command_len = b.command.as_ref().map(|c| match c.get_ref() {
            Command::Exec(args) => serde_json::to_string(args).map_or(0, |j| j.len()),
            Command::Shell(line) => line.len(),
        });
        for (field, span, bytes) in [
            (
                "build.install",
                b.install.as_ref().map(Spanned::span),
                b.install.as_ref().map(|i| i.get_ref().len()),
            ),
            (
                "build.command",
                b.command.as_ref().map(Spanned::span),
                command_len,
            ),
        ] {
            if let (Some(span), Some(bytes)) = (span, bytes)
                && bytes > DOCKERFILE_LINE_MAX
            {
                return Err(self.error_with_help(
                    span,
                    format!(
                        "`{field}` is too large: its Dockerfile line would take {}, more than the {} allowed",
                        human_size(bytes),
                        human_size(DOCKERFILE_LINE_MAX)
                    ),
                    "the engine refuses Dockerfile lines over 64 KiB: put the commands in a script in the build context and run that",
                ));
            }
        }
        Ok(())
    }
}

fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broken manifests the CLI tests also run through the binary.
    #[derive(Deserialize)]
    struct BrokenCases {
        case: Vec<BrokenCase>,
    }

    #[derive(Deserialize)]
    struct BrokenCase {
        manifest: String,
        at: String,
        message: String,
        #[serde(default)]
        filesystem: bool,
    }

    #[test]
    fn sign_key_is_relative_to_the_manifest() {
        let text = "[algorithm]\nname = \"a\"\nwrapper = \"minimal\"\nvantage6 = \"4.13\"\nimage = \"x/y\"\nversion = \"1.0.0\"\n[build]\nbase = \"busybox\"\ncommand = \"run\"\n";
        let plain = Manifest::parse(Path::new("algo/v6.toml"), text.to_string()).unwrap();
        assert_eq!(plain.sign, Sign::default());
        let signed = Manifest::parse(
            Path::new("algo/v6.toml"),
            format!("{text}[sign]\nkey = \"../keys/cosign.key\"\nformat = \"both\"\n"),
        )
        .unwrap();
        assert_eq!(
            signed.sign.key.as_deref(),
            Some(Path::new("algo/../keys/cosign.key"))
        );
        assert_eq!(signed.sign.format, crate::sign::Format::Both);
    }

    #[test]
    fn broken_manifests_point_at_the_place_with_the_reason() {
        let cases: BrokenCases =
            toml::from_str(include_str!("../../tests/broken-manifests.toml")).unwrap();
        assert!(cases.case.len() >= 25);
        for (i, case) in cases.case.iter().enumerate().filter(|(_, c)| !c.filesystem) {
            let error = Manifest::parse(Path::new("v6.toml"), case.manifest.clone())
                .expect_err(&format!("case {i} must be refused"));
            let ManifestError::Invalid { location, .. } = &error else {
                panic!("case {i}: not an error with a place: {error:?}");
            };
            let (line, col) = location.line_col();
            assert_eq!(format!("{line}:{col}"), case.at, "case {i}: {error}");
            let shown = format!("error: {error} {:?}", error_help(&error));
            assert!(
                shown.contains(&case.message),
                "case {i}: expected `{}` in {shown}",
                case.message
            );
        }
    }

    fn error_help(error: &ManifestError) -> Option<&str> {
        match error {
            ManifestError::Invalid { help, .. } => help.as_deref(),
            _ => None,
        }
    }
    use proptest::prelude::*;

    const VALID: &str = "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"4.13\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n";

    #[test]
    fn a_valid_manifest_loads_with_defaults() {
        let m = Manifest::parse(Path::new("v6.toml"), VALID.to_string()).unwrap();
        assert_eq!(m.image.to_string(), "ghcr.io/o/a");
        assert_eq!(m.vantage6.major, 4);
        assert_eq!(m.tags.len(), 4);
        assert_eq!(m.publish.release_tag_prefix, "v");
        assert_eq!(m.build.context, Path::new(".").to_path_buf());
    }

    #[test]
    fn near_misses_get_a_suggestion_and_far_ones_the_list() {
        assert_eq!(closest("imag", &["image", "name"]), Some("image"));
        assert_eq!(closest("zzzzzz", &["image", "name"]), None);
        let (message, help) =
            explain_toml_error("unknown field `zzzzzz`, expected `image` or `name`");
        assert_eq!(message, "unknown key `zzzzzz`");
        assert_eq!(help.as_deref(), Some("expected one of `image`, `name`"));
    }

    /// `VALID` with `extra` lines appended, as a minimal project when `minimal` (for
    /// `install` and `command`).
    fn sized(algorithm: &str, build: &str) -> Result<Manifest, ManifestError> {
        let text = format!("{VALID}{algorithm}\n[build]\n{build}\n");
        Manifest::parse(Path::new("v6.toml"), text)
    }

    /// The field and `LINE:COL` a size error names.
    fn refused(result: Result<Manifest, ManifestError>) -> (String, String) {
        match result {
            Err(ManifestError::Invalid {
                message,
                location,
                help,
            }) => {
                let (line, col) = location.line_col();
                assert!(help.is_some_and(|h| h.contains("64 KiB")), "{message}");
                (message, format!("{line}:{col}"))
            }
            other => panic!("not refused with a place: {other:?}"),
        }
    }

    #[test]
    fn labels_too_large_for_the_label_line_name_their_field() {
        let big = "d".repeat(DOCKERFILE_LINE_MAX);
        let (message, at) = refused(sized(&format!("description = \"{big}\""), ""));
        assert!(
            message.starts_with("`algorithm.description` is too large: the labels on the Dockerfile's `LABEL` line would take 60.1 KiB, more than the 60.0 KiB allowed"),
            "{message}"
        );
        assert_eq!(at, "7:15");
        // Together: the largest one is named.
        let half = "x".repeat(DOCKERFILE_LINE_MAX / 2);
        let (message, at) = refused(sized(
            &format!("license = \"{half}\""),
            &format!(
                "labels = {{ \"org.example.a\" = \"{half}{}\" }}",
                "y".repeat(40)
            ),
        ));
        assert!(
            message.starts_with("`build.labels.\"org.example.a\"` is too large"),
            "{message}"
        );
        assert_eq!(at, "9:30");
        // Below the limit, or replaced by a short `build.labels` value: fine.
        let fits = "d".repeat(DOCKERFILE_LINE_MAX - 200);
        sized(&format!("description = \"{fits}\""), "").unwrap();
        sized(
            &format!("description = \"{big}\""),
            "labels = { \"org.opencontainers.image.description\" = \"short\" }",
        )
        .unwrap();
    }

    #[test]
    fn values_too_large_for_the_url_name_their_field() {
        let (message, at) = refused(sized(
            "",
            &format!("args = {{ BIG = \"{}\" }}", "x".repeat(BUILD_URL_MAX)),
        ));
        assert!(
            message.starts_with("`build.args.BIG` is too large: the build arguments and labels sent in the build request's URL (as URL-encoded JSON) would take 60.1 KiB"),
            "{message}"
        );
        assert_eq!(at, "9:16");
        // Encoded: a `/` takes three bytes.
        let slashes = "/".repeat(BUILD_URL_MAX / 3);
        let (message, _) = refused(sized("", &format!("args = {{ PATHS = \"{slashes}\" }}")));
        assert!(
            message.starts_with("`build.args.PATHS` is too large"),
            "{message}"
        );
        sized(
            "",
            &format!(
                "args = {{ PATHS = \"{}\" }}",
                &slashes[..slashes.len() - 100]
            ),
        )
        .unwrap();
        // A label with a line break travels in the URL too.
        let lines = "line\\n".repeat(BUILD_URL_MAX / 8);
        let (message, at) = refused(sized(
            "",
            &format!("labels = {{ \"notes\" = \"{lines}\" }}"),
        ));
        assert!(
            message.starts_with("`build.labels.notes` is too large"),
            "{message}"
        );
        assert_eq!(at, "9:22");
        sized(
            "",
            &format!("args = {{ BIG = \"{}\" }}", "x".repeat(BUILD_URL_MAX - 100)),
        )
        .unwrap();
    }

    #[test]
    fn dockerfile_lines_of_the_minimal_wrapper_are_bounded() {
        let minimal = VALID.replace("\"python\"", "\"minimal\"");
        let parse = |build: &str| {
            Manifest::parse(
                Path::new("v6.toml"),
                format!("{minimal}\n[build]\nbase = \"busybox:1\"\n{build}\n"),
            )
        };
        let long = "x".repeat(DOCKERFILE_LINE_MAX + 1);
        let (message, at) = refused(parse(&format!(
            "install = \"{long}\"\ncommand = [\"true\"]"
        )));
        assert!(
            message.starts_with("`build.install` is too large"),
            "{message}"
        );
        assert_eq!(at, "10:11");
        let (message, _) = refused(parse(&format!("command = [\"{long}\"]")));
        assert!(
            message.starts_with("`build.command` is too large"),
            "{message}"
        );
        parse(&format!("command = \"{}\"", &long[..DOCKERFILE_LINE_MAX])).unwrap();
    }

    #[test]
    fn sizes_are_measured_as_sent() {
        assert_eq!(quoted_len(r#"a"b$c\d"#), 7 + 2 + 3);
        // `"ab c/é\n"`: quotes 3+3, a b c 1+1+1, space 1, `/` 3, é 3+3, `\n` 3+1.
        assert_eq!(url_len("ab c/é\n"), 6 + 3 + 1 + 3 + 6 + 4);
        assert_eq!(human_size(812), "812 bytes");
        assert_eq!(human_size(61_440), "60.0 KiB");
        assert_eq!(human_size(1_300_000), "1.2 MiB");
        assert_eq!(
            label_field("org.example.x"),
            "build.labels.\"org.example.x\""
        );
        assert_eq!(label_field("team_name-2"), "build.labels.team_name-2");
    }

    proptest! {
        /// Never a panic, whatever the text: every failure is an error with a location inside
        /// the file.
        #[test]
        fn any_text_is_a_manifest_or_an_error_inside_the_file(text in "\\PC{0,400}") {
            if let Err(ManifestError::Invalid { location, .. }) = Manifest::parse(Path::new("v6.toml"), text.clone()) {
                prop_assert!(location.span.start <= text.len());
                let _ = location.line_col();
            }
        }

        /// Values spliced into a valid manifest: validated, never a panic.
        #[test]
        fn any_value_in_a_valid_manifest_is_checked(value in "\\PC{0,60}", key in 0usize..6) {
            let keys = ["name", "wrapper", "vantage6", "image", "version", "description"];
            let escaped = toml::Value::String(value).to_string();
            let text = VALID.lines().map(|line| {
                if line.starts_with(&format!("{} =", keys[key])) { format!("{} = {escaped}", keys[key]) } else { line.to_string() }
            }).collect::<Vec<_>>().join("\n");
            let _ = Manifest::parse(Path::new("v6.toml"), text);
        }
    }
}
