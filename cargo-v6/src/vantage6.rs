//! What cargo v6 knows about vantage6 itself, in one place: the wrappers that run an algorithm
//! inside its image, the releases the tool knows, the default base image per wrapper and
//! release, and the Dockerfile template that fits them.
//!
//! A leaf module: everyone may use it, it uses nobody. When vantage6 publishes a new release or
//! moves its images, this is the file to change. A `MAJOR.MINOR` the user writes is taken as
//! written, even when it is newer than [`NEWEST`]: the tool never replaces a version it does
//! not know with one it does.

use std::fmt;

/// Which wrapper runs the algorithm inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Wrapper {
    /// vantage6's Python algorithm tools.
    Python,
    /// The R `vtg` package (vantage6 3.x era).
    R,
    /// No wrapper: any base, an install command and a command.
    Minimal,
}

impl Wrapper {
    /// The name as written in v6.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Wrapper::Python => "python",
            Wrapper::R => "r",
            Wrapper::Minimal => "minimal",
        }
    }
}

/// The vantage6 majors whose wrappers the templates know.
pub const SUPPORTED_MAJORS: [u64; 3] = [3, 4, 5];

/// The newest stable vantage6 release the tool knows: the default for new manifests
/// (vantage6-algorithm-tools 4.15.2 on PyPI).
pub const NEWEST: &str = "4.15";

/// The newest release per major, for a Dockerfile that shows only the major.
pub fn newest_of_major(major: u64) -> Option<&'static str> {
    match major {
        3 => Some("3.11"),
        4 => Some(NEWEST),
        5 => Some("5.0"),
        _ => None,
    }
}

/// The repository of vantage6's algorithm base images (4.x and 5.x; tags are `MAJOR.MINOR`).
/// harbor2.vantage6.ai, where 3.x and the R base lived, is gone: they have no default.
pub const ALGORITHM_BASE: &str = "ghcr.io/vantage6/infrastructure/algorithm-base";

/// The vantage6 release an algorithm targets (`4.15`); picks base image and entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vantage6Version {
    /// As written, e.g. `4.15` or `5.0.1`.
    pub text: String,
    /// `4` in `4.15`.
    pub major: u64,
    /// `15` in `4.15`.
    pub minor: u64,
}

impl fmt::Display for Vantage6Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The base image a wrapper builds on by default, when vantage6 publishes one: Python on 4.x
/// and later. `None` means the manifest must name `build.base`.
pub fn default_base(wrapper: Wrapper, version: &Vantage6Version) -> Option<String> {
    (wrapper == Wrapper::Python && version.major >= 4)
        .then(|| format!("{ALGORITHM_BASE}:{}.{}", version.major, version.minor))
}

/// The template file name for a wrapper and vantage6 major (`python-4.Dockerfile.hbs`): the
/// Python wrapper's entrypoint and install line differ per major, R and minimal do not.
pub fn template_name(wrapper: Wrapper, vantage6_major: u64) -> String {
    match wrapper {
        Wrapper::Python => format!("python-{vantage6_major}.Dockerfile.hbs"),
        other => format!("{}.Dockerfile.hbs", other.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u64, minor: u64) -> Vantage6Version {
        Vantage6Version {
            text: format!("{major}.{minor}"),
            major,
            minor,
        }
    }

    #[test]
    fn python_on_4_and_later_has_a_default_base_taken_as_written() {
        assert_eq!(
            default_base(Wrapper::Python, &v(4, 15)).as_deref(),
            Some("ghcr.io/vantage6/infrastructure/algorithm-base:4.15")
        );
        // Newer than any the tool knows: still as written.
        assert_eq!(
            default_base(Wrapper::Python, &v(4, 99)).as_deref(),
            Some("ghcr.io/vantage6/infrastructure/algorithm-base:4.99")
        );
        assert_eq!(default_base(Wrapper::Python, &v(3, 11)), None);
        assert_eq!(default_base(Wrapper::R, &v(4, 15)), None);
        assert_eq!(default_base(Wrapper::Minimal, &v(5, 0)), None);
    }

    #[test]
    fn newest_known_releases() {
        assert_eq!(NEWEST, "4.15");
        assert_eq!(newest_of_major(4), Some("4.15"));
        assert_eq!(newest_of_major(6), None);
    }

    #[test]
    fn template_names() {
        assert_eq!(template_name(Wrapper::Python, 5), "python-5.Dockerfile.hbs");
        assert_eq!(template_name(Wrapper::R, 4), "r.Dockerfile.hbs");
        assert_eq!(template_name(Wrapper::Minimal, 3), "minimal.Dockerfile.hbs");
    }
}
