//! `v6.toml`: the declarative description of one algorithm.

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
