//! The serde mirror of v6.toml: syntax, keys and types, with the spans that errors point at.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Command;
use crate::vantage6::Wrapper;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawManifest {
    pub(super) algorithm: RawAlgorithm,
    #[serde(default)]
    pub(super) build: RawBuild,
    #[serde(default)]
    pub(super) publish: RawPublish,
    #[serde(default)]
    pub(super) sign: RawSign,
    /// `[store]`: the algorithm store's metadata, read whole by `super::store` and checked by
    /// `crate::store` (which needs the loaded manifest, so it cannot be checked here without an
    /// import cycle).
    #[serde(default)]
    pub(super) store: Option<RawStore>,
}

/// The one key of `[store]` checked here: `output` is a path that reaches generated files
/// (the CI jobs keep it as an artifact), so it is held to a single line like every other
/// such value, whichever command loads the manifest. The other keys are `crate::store`'s.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawStore {
    pub(super) output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAlgorithm {
    pub(super) name: Spanned<String>,
    pub(super) wrapper: Spanned<Wrapper>,
    pub(super) vantage6: Spanned<String>,
    pub(super) image: Spanned<String>,
    pub(super) version: Option<Spanned<String>>,
    pub(super) description: Option<Spanned<String>>,
    pub(super) license: Option<Spanned<String>>,
    pub(super) tags: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBuild {
    pub(super) context: Option<Spanned<String>>,
    pub(super) base: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) args: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub(super) labels: BTreeMap<Spanned<String>, Spanned<String>>,
    pub(super) network: Option<Spanned<String>>,
    pub(super) platform: Option<Spanned<String>>,
    pub(super) platforms: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) templates: Option<Spanned<String>>,
    pub(super) install: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Command>>,
    pub(super) dockerfile: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPublish {
    pub(super) release_tag_prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) insecure: bool,
    pub(super) stall_timeout: Option<Spanned<u64>>,
    pub(super) version_from_tag: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSign {
    pub(super) key: Option<Spanned<String>>,
    pub(super) format: Option<Spanned<crate::sign::Format>>,
}
