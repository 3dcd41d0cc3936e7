//! The catalog: the wrappers, the releases the tool knows, the default base image per wrapper
//! and release, the Dockerfile template that fits them, and the names vantage6 gives a
//! function's step and a database's type.

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

/// The default for new manifests: the newest 4.x (vantage6-algorithm-tools 4.15.2 on PyPI).
/// vantage6 5.0 is released too ([`newest_of_major`]`(5)`), but a 5.x node needs a 5.x server
/// (Kubernetes, Keycloak): new projects target 5.x when they say so (`--vantage6 5.0`).
pub const NEWEST: &str = "4.15";

/// The newest release per major, for a Dockerfile that shows only the major.
pub fn newest_of_major(major: u64) -> Option<&'static str> {
    match major {
        3 => Some("3.11"),
        4 => Some(NEWEST),
        // Released: vantage6, vantage6-node and vantage6-algorithm-tools 5.0.0 to 5.0.3.
        5 => Some("5.0"),
        _ => None,
    }
}

/// The repository of vantage6's algorithm base images (4.x and 5.x; tags are `MAJOR.MINOR`).
/// harbor2.vantage6.ai, where 3.x and the R base lived, is gone: they have no default.
pub const ALGORITHM_BASE: &str = "ghcr.io/vantage6/infrastructure/algorithm-base";

/// The release a tag template is rendered with when it is checked, before any real value is
/// known: any `MAJOR.MINOR` would do, and a fixed one keeps the check's result the same on
/// every run (it is the example the tags' documentation gives too).
pub const SAMPLE: &str = "4.13";

/// The one manifest media type the vantage6 algorithm store accepts when it resolves an image's
/// digest (its `Accept` header): a single-platform Docker v2 manifest. An image published as
/// anything else (an OCI manifest, an index) may not resolve in the store.
pub const STORE_MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json";

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

impl Vantage6Version {
    /// Parses `MAJOR.MINOR` or `MAJOR.MINOR.PATCH` (as v6.toml's `vantage6` is written).
    pub fn parse(text: &str) -> Option<Vantage6Version> {
        let numbers: Option<Vec<u64>> = text
            .split('.')
            .map(|p| {
                (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect();
        let numbers = numbers.filter(|n| (2..=3).contains(&n.len()))?;
        Some(Vantage6Version {
            text: text.to_owned(),
            major: numbers[0],
            minor: numbers[1],
        })
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

/// The database types the algorithm tools read (`DatabaseType` in vantage6-common; `omop`
/// and `other` are 5.x only). The wrapper's default is `csv`.
pub const DATABASE_TYPES: [&str; 7] = ["csv", "excel", "sql", "sparql", "parquet", "omop", "other"];

/// The step a 5.x function performs: the store's `step_type`, the node's `FUNCTION_ACTION`
/// (`AlgorithmStepType` in vantage6-common 5.x). 4.x has no steps: its functions are partial
/// or central only by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionStep {
    /// Reads the node's source database into a dataframe (a parquet table).
    DataExtraction,
    /// Turns a session dataframe into another (a parquet table).
    Preprocessing,
    /// A partial computation on the node's dataframes; its result is JSON.
    FederatedCompute,
    /// The central part, which creates subtasks through the server.
    CentralCompute,
    /// Processing after the computation.
    PostProcessing,
}

impl FunctionStep {
    /// Every step, in vantage6's order.
    pub const ALL: [FunctionStep; 5] = [
        FunctionStep::DataExtraction,
        FunctionStep::Preprocessing,
        FunctionStep::FederatedCompute,
        FunctionStep::CentralCompute,
        FunctionStep::PostProcessing,
    ];

    /// The value of `FUNCTION_ACTION` (`data_extraction`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionStep::DataExtraction => "data_extraction",
            FunctionStep::Preprocessing => "preprocessing",
            FunctionStep::FederatedCompute => "federated_compute",
            FunctionStep::CentralCompute => "central_compute",
            FunctionStep::PostProcessing => "postprocessing",
        }
    }

    /// Parses the value of `FUNCTION_ACTION`.
    pub fn parse(text: &str) -> Option<FunctionStep> {
        FunctionStep::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the wrapper writes the output as a parquet table (5.x `_write_output`).
    pub fn writes_table(self) -> bool {
        matches!(
            self,
            FunctionStep::DataExtraction | FunctionStep::Preprocessing
        )
    }
}

impl fmt::Display for FunctionStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an algorithm base image comes from: what tells a base vantage6 still publishes from
/// one that is gone or one of the project's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseRegistry {
    /// vantage6's own, `ghcr.io/vantage6/infrastructure/algorithm-base`: the default base.
    Ghcr,
    /// `harbor2.vantage6.ai`: gone.
    Harbor2,
    /// A mirror or a build of one's own, named `.../algorithm-base`.
    Other,
}

/// Whether building on `built` is what a Dockerfile on `base` means, as init reads it: the
/// same image; vantage6's algorithm base (GHCR, or harbor2, gone) of the same `MAJOR.MINOR`
/// on GHCR; or for one that names no version, GHCR's of any.
pub fn same_base(base: &str, built: &str) -> bool {
    if base == built {
        return true;
    }
    let vantage6s = |registry| matches!(registry, BaseRegistry::Ghcr | BaseRegistry::Harbor2);
    match (algorithm_base(base), algorithm_base(built)) {
        (Some((registry, version)), Some((BaseRegistry::Ghcr, Some(b)))) if vantage6s(registry) => {
            version.is_none_or(|a| a == b)
        }
        _ => false,
    }
}

/// For an image named `.../algorithm-base[:TAG]`: where it lives, and the `MAJOR.MINOR` its
/// tag names (`4.15`, `4.15.2`, `5.0.0a26`; none for `latest` or no tag).
pub fn algorithm_base(image: &str) -> Option<(BaseRegistry, Option<(u64, u64)>)> {
    let image = image.split('@').next().unwrap_or(image);
    let (repository, tag) = match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (image, None),
    };
    if repository.rsplit('/').next() != Some("algorithm-base") {
        return None;
    }
    let registry = if repository == ALGORITHM_BASE {
        BaseRegistry::Ghcr
    } else if repository.starts_with("harbor2.vantage6.ai/") {
        BaseRegistry::Harbor2
    } else {
        BaseRegistry::Other
    };
    static VERSION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(\d+)\.(\d+)(?:$|[.a-z_-])").expect("valid regex")
    });
    let version = VERSION
        .captures(tag.unwrap_or_default())
        .and_then(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)));
    Some((registry, version))
}

/// Why the wrapper has no default base image at vantage6 `major` (`None`: it has one, see
/// [`default_base`]): vantage6 3.x and R lost their base images with harbor2, and minimal
/// has none.
pub fn no_default_base(wrapper: Wrapper, major: u64) -> Option<&'static str> {
    match (wrapper, major) {
        (Wrapper::Minimal, _) => Some("the minimal wrapper has no default base image"),
        (Wrapper::R, _) => Some(
            "the R (vtg) base image lived on harbor2.vantage6.ai, which is gone: there is no default",
        ),
        (Wrapper::Python, 3) => Some(
            "vantage6 3.x's base image lived on harbor2.vantage6.ai, which is gone: there is no default",
        ),
        _ => None,
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
        assert_eq!(newest_of_major(5), Some("5.0"));
        assert_eq!(newest_of_major(6), None);
    }

    #[test]
    fn the_sample_release_and_the_stores_media_type_are_well_formed() {
        assert!(Vantage6Version::parse(SAMPLE).is_some());
        assert!(STORE_MANIFEST_ACCEPT.starts_with("application/vnd.docker."));
    }

    #[test]
    fn template_names() {
        assert_eq!(template_name(Wrapper::Python, 5), "python-5.Dockerfile.hbs");
        assert_eq!(template_name(Wrapper::R, 4), "r.Dockerfile.hbs");
        assert_eq!(template_name(Wrapper::Minimal, 3), "minimal.Dockerfile.hbs");
    }

    #[test]
    fn versions_and_steps_parse() {
        let v = Vantage6Version::parse("5.0.1").unwrap();
        assert_eq!((v.major, v.minor, v.text.as_str()), (5, 0, "5.0.1"));
        assert_eq!(Vantage6Version::parse("4"), None);
        assert_eq!(Vantage6Version::parse("4.x"), None);
        for step in FunctionStep::ALL {
            assert_eq!(FunctionStep::parse(step.as_str()), Some(step));
        }
        assert!(FunctionStep::DataExtraction.writes_table());
        assert!(!FunctionStep::FederatedCompute.writes_table());
    }

    #[test]
    fn the_same_base_is_the_image_or_harbor2s_moved_to_ghcr() {
        let ghcr = "ghcr.io/vantage6/infrastructure/algorithm-base:4.11";
        assert!(same_base(ghcr, ghcr));
        assert!(same_base(
            "harbor2.vantage6.ai/infrastructure/algorithm-base:4.11",
            ghcr
        ));
        assert!(!same_base(
            "harbor2.vantage6.ai/infrastructure/algorithm-base:4.12",
            ghcr
        ));
        assert!(!same_base(
            "ghcr.io/vantage6/infrastructure/algorithm-base:4.16",
            ghcr
        ));
        assert!(!same_base("docker.io/library/python:3.11", ghcr));
        // No version named: init chose the newest it knows.
        assert!(same_base(
            "harbor2.vantage6.ai/infrastructure/algorithm-base",
            ghcr
        ));
        assert!(same_base(
            "ghcr.io/vantage6/infrastructure/algorithm-base:latest",
            ghcr
        ));
        assert!(same_base(
            "ghcr.io/vantage6/infrastructure/algorithm-base:4.11.2",
            ghcr
        ));
        assert!(!same_base(
            "mirror.example.org/infrastructure/algorithm-base:4.11",
            ghcr
        ));
    }

    #[test]
    fn a_default_base_exists_exactly_where_no_reason_says_otherwise() {
        for wrapper in [Wrapper::Python, Wrapper::R, Wrapper::Minimal] {
            for major in SUPPORTED_MAJORS {
                let version = Vantage6Version::parse(&format!("{major}.1")).unwrap();
                assert_eq!(
                    default_base(wrapper, &version).is_some(),
                    no_default_base(wrapper, major).is_none(),
                    "{wrapper:?} {major}"
                );
            }
        }
    }
}
