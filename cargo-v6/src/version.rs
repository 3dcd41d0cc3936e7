//! Versions: read from the project's own metadata, parsed by the project's scheme
//! (semver, PEP 440, R), and mapped to one tag-safe *exact tag*.

use std::path::{Path, PathBuf};

use crate::diagnostic::Location;
use crate::manifest::Wrapper;

/// The version grammar a project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Cargo and most tools: `1.2.3-rc.1+build`.
    Semver,
    /// Python: `1!2.0rc1.post2.dev3+local`.
    Pep440,
    /// R's DESCRIPTION: `1.2-3`, `0.1.2.9000`.
    R,
}

/// A parsed version, ordered by its scheme's precedence.
#[derive(Debug, Clone)]
pub struct Version {
    raw: String,
    scheme: Scheme,
}

/// Why a version string is not a version.
#[derive(Debug, thiserror::Error)]
#[error("invalid {scheme:?} version `{raw}`: {reason}")]
pub struct ParseVersionError {
    /// The text that failed.
    pub raw: String,
    /// The grammar it was parsed with.
    pub scheme: Scheme,
    /// What is wrong with it.
    pub reason: String,
}

impl Version {
    /// Parses `raw` with `scheme`.
    pub fn parse(raw: &str, scheme: Scheme) -> Result<Self, ParseVersionError> {
        todo!("{raw} {scheme:?}")
    }

    /// Parses a version given explicitly (`--set-version`, `version` in v6.toml) for a wrapper.
    pub fn parse_for(raw: &str, wrapper: Wrapper) -> Result<Self, ParseVersionError> {
        todo!("{raw} {wrapper:?}")
    }

    /// The version as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The grammar it was parsed with.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The tag-safe exact tag: at least three numeric components, injective.
    pub fn exact_tag(&self) -> String {
        todo!()
    }

    /// Reads an exact tag back (the inverse of [`Version::exact_tag`]); `None` if `tag` is not one.
    pub fn from_exact_tag(tag: &str, scheme: Scheme) -> Option<Self> {
        todo!("{tag} {scheme:?}")
    }

    /// First numeric component.
    pub fn major(&self) -> u64 {
        todo!()
    }
    /// Second numeric component (0 when absent).
    pub fn minor(&self) -> u64 {
        todo!()
    }
    /// Third numeric component (0 when absent).
    pub fn patch(&self) -> u64 {
        todo!()
    }
    /// The tag-safe pre-release part, `None` for stable versions.
    pub fn prerelease(&self) -> Option<String> {
        todo!()
    }
    /// No pre-release, dev or R development part.
    pub fn is_stable(&self) -> bool {
        todo!()
    }
}

/// A version found in the project's metadata.
#[derive(Debug, Clone)]
pub struct MetadataVersion {
    /// The version as written in the file.
    pub raw: String,
    /// The grammar of that file's ecosystem.
    pub scheme: Scheme,
    /// The file it was read from (as `dir` joined with the file name).
    pub file: PathBuf,
}

/// The project's metadata could not give a version.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The version is computed (`dynamic`, `attr:`, `file:`, an expression).
    #[error(
        "the version in {file} is not a literal ({what}); set `version` in v6.toml or pass `--set-version`"
    )]
    NotLiteral {
        /// The file, as displayed.
        file: String,
        /// What was found instead of a literal.
        what: String,
        /// Where, when known.
        location: Option<Location>,
    },
    /// The file exists but cannot be read or parsed.
    #[error("cannot read {file}: {reason}")]
    Unreadable {
        /// The file, as displayed.
        file: String,
        /// Why.
        reason: String,
        /// Where, when known.
        location: Option<Location>,
    },
}

/// Reads the version from the project's metadata in `dir`, by wrapper; `Ok(None)` if none of
/// the wrapper's files exist or carry a version.
pub fn read_project_version(
    dir: &Path,
    wrapper: Wrapper,
) -> Result<Option<MetadataVersion>, MetadataError> {
    todo!("{dir:?} {wrapper:?}")
}
