//! `v6.toml`: the declarative description of one algorithm.
//!
//! Loading is two passes over the same text, parsed once: serde (through `toml`, which keeps
//! byte spans; the types in [`raw`]) checks syntax, keys and types; then every value that
//! ends up in a Dockerfile, a tag or an image reference is validated ([`validate`], and the
//! sizes a build request can carry in [`limits`]), so that the rest of the pipeline only ever
//! sees valid data ([`model`]). Every error carries the [`Location`] of the offending key or
//! value. A workspace member's document first takes the root's defaults ([`inherit`]).
//! `[store]` is read in the same pass ([`store`]) and checked by `crate::store`.

mod inherit;
mod limits;
mod model;
mod raw;
mod store;
mod validate;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use inherit::Origin;
pub use inherit::{Defaults, INHERITABLE};
pub use limits::{BUILD_URL_MAX, DOCKERFILE_LINE_MAX, label_fits_on_line, quoted_len};
pub use model::{Build, Command, Manifest, Publish, Sign};
pub use store::{
    RawArgument, RawDatabase, RawFunction, RawStore, RawVisualization, StoreSection, StoreSyntax,
};
pub use validate::DEFAULT_STALL_TIMEOUT_SECS;

use crate::diagnostic::{Location, closest, display};
use raw::RawManifest;
use validate::Validator;

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
            let (message, help) = explain_toml_error(err.message(), Keys::Manifest);
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
        // `[store]` is read whole here, but checked by `crate::store` (see `store`).
        let store_table = document.get_ref().get("store").cloned();
        let raw =
            RawManifest::deserialize(toml::de::Deserializer::from(document)).map_err(toml_error)?;
        let vantage6 = raw.algorithm.vantage6.span();
        let store = store_table.map(|table| StoreSection {
            table: store::read(table),
            vantage6_span: (!origin.is_inherited(&vantage6)).then_some(vantage6),
            output: raw
                .store
                .as_ref()
                .and_then(|s| s.output.as_ref())
                .map(|o| o.get_ref().clone()),
        });
        let manifest = Validator {
            origin,
            workspace_root: workspace.map(|w| w.path.as_path()),
        }
        .manifest(raw)?;
        Ok(Manifest { store, ..manifest })
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

    /// Where `build.platforms` was written, when it was (not when `--platform` gave them).
    pub fn platforms_location(&self) -> Option<Location> {
        self.spans.platforms.clone()
    }

    /// The platforms `--platform` gives instead of `build.platforms` (and of `build.platform`).
    pub fn override_platforms(&mut self, platforms: Vec<crate::oci::platform::Platform>) {
        self.build.platforms = platforms;
        self.build.platform = None;
        self.spans.platforms = None;
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

/// Whose keys a serde message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// v6.toml's own.
    Manifest,
    /// `[store]`'s, which are the algorithm store's: an unknown one is refused with the
    /// store's words, as the store would refuse the submission.
    Store,
}

/// Rewords serde's messages for the user and suggests the closest key or variant. serde only
/// gives text for unknown fields and variants, so the expected names are read back from it.
fn explain_toml_error(message: &str, keys: Keys) -> (String, Option<String>) {
    let message = message.trim_end();
    let backticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    for (prefix, what) in [("unknown field", "key"), ("unknown variant", "value")] {
        if let Some((found, expected)) = message
            .starts_with(prefix)
            .then(|| backticked.split_first())
            .flatten()
        {
            let list = || {
                let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
                format!("expected one of {}", list.join(", "))
            };
            let suggestion = closest(found, expected).map(|m| format!("did you mean `{m}`?"));
            return match keys {
                Keys::Store if what == "key" => {
                    (
                        format!("unknown key `{found}` (the store: \"Unknown field.\")"),
                        Some(suggestion.unwrap_or_else(|| {
                            format!("the store refuses unknown keys; {}", list())
                        })),
                    )
                }
                _ => (
                    format!("unknown {what} `{found}`"),
                    suggestion.or_else(|| (!expected.is_empty()).then(list)),
                ),
            };
        }
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return (format!("missing key {field}"), None);
    }
    (message.to_string(), None)
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
        let (message, help) = explain_toml_error(
            "unknown field `zzzzzz`, expected `image` or `name`",
            Keys::Manifest,
        );
        assert_eq!(message, "unknown key `zzzzzz`");
        assert_eq!(help.as_deref(), Some("expected one of `image`, `name`"));
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
