//! Docker image references, validated and normalized by distribution's grammar
//! (`user/x` is `docker.io/user/x`, `x` is `docker.io/library/x`).

use std::fmt;

/// Why a string is not a valid image reference or tag; messages follow distribution's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Placeholder until the parser lands.
    #[error("invalid reference format")]
    InvalidFormat,
}

/// A normalized repository: registry domain plus path, no tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    domain: String,
    path: String,
}

impl ImageName {
    /// Parses a repository with no tag or digest (`image` in v6.toml).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        todo!("{s}")
    }
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The repository path inside the registry (`library/x`, `org/algo`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The full reference for `tag`.
    pub fn with_tag(&self, tag: &str) -> String {
        format!("{self}:{tag}")
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}

/// A normalized reference that may carry a tag and/or digest (a base image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository.
    pub name: ImageName,
    /// The tag, if written (`latest` is *not* filled in).
    pub tag: Option<String>,
    /// `sha256:...`, if pinned.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a full reference (`python:3.12-slim`, `ghcr.io/o/r:1@sha256:...`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        todo!("{s}")
    }
}

impl fmt::Display for ImageRef {
    /// Normalized, with `:latest` when neither tag nor digest was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    todo!("{tag}")
}
