//! The loaded manifest's types: what every later stage reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diagnostic::Location;
use crate::oci::reference::{ImageName, ImageRef};
use crate::tags::TagTemplate;
use crate::vantage6::{Vantage6Version, Wrapper};
use crate::version::Version;

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
    /// The platforms an assembled image is made for (`linux/amd64`, `linux/arm64`); empty:
    /// the engine builds one image, for its own platform (or `platform`).
    pub platforms: Vec<crate::oci::platform::Platform>,
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
    /// `[store]`, read with the rest but checked only by the commands that use the store
    /// (`crate::store`).
    pub store: Option<super::StoreSection>,
    /// The workspace's root v6.toml, for a member (as the user would type it): its defaults
    /// are part of this algorithm's input.
    pub workspace_root: Option<PathBuf>,
    pub(super) spans: Spans,
}

/// Where the values that later stages check against the filesystem were written (in the
/// member's file, or the workspace root's for an inherited value).
#[derive(Debug, Clone)]
pub(super) struct Spans {
    pub(super) context: Option<Location>,
    pub(super) templates: Option<Location>,
    pub(super) dockerfile: Option<Location>,
    pub(super) platforms: Option<Location>,
    pub(super) name: Location,
}
