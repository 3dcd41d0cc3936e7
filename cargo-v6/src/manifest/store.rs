//! `[store]` as v6.toml writes it, with spans: read in the same pass as the rest of the
//! manifest, and checked against the algorithm store's schema by `crate::store`.
//!
//! The section is not refused when the manifest loads (but for `output`, a path held to one
//! line like every other): a key or a type the store would refuse is kept, with its place,
//! for the commands that use the store, so that `plan` or `build` still work on a project
//! whose store description is unfinished.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// `[store]` as the manifest read it.
#[derive(Debug, Clone)]
pub struct StoreSection {
    /// The whole section, with spans in the member's own file (`[store]` is never inherited),
    /// or why it cannot be read: kept, not refused, for the commands that use the store.
    pub table: Result<Spanned<RawStore>, StoreSyntax>,
    /// Where this file writes `algorithm.vantage6`, whose major picks the store's schema;
    /// `None` when the workspace gives it (a refusal then points at `[store]`).
    pub vantage6_span: Option<Range<usize>>,
    /// `store.output` as written: already held to one line, and read by the commands that
    /// leave the file out of the build context even when the rest of the section is wrong.
    pub output: Option<String>,
}

/// A key or a type in `[store]` that the section cannot hold, worded as the store refuses it.
#[derive(Debug, Clone)]
pub struct StoreSyntax {
    /// What is wrong.
    pub message: String,
    /// Where, in the manifest's text.
    pub span: Range<usize>,
    /// How to fix it.
    pub help: Option<String>,
}

/// `[store]`: the algorithm's keys, spelled as the store's JSON with `-` for `_`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStore {
    /// Where publish writes the store's JSON, relative to v6.toml.
    pub output: Option<Spanned<String>>,
    /// The algorithm's name in the store (`algorithm.name` by default).
    pub name: Option<Spanned<String>>,
    /// What it is, for the store's users.
    pub description: Option<Spanned<String>>,
    /// Where the code is (required by the store).
    pub code_url: Option<Spanned<String>>,
    /// Where the documentation is.
    pub documentation_url: Option<Spanned<String>>,
    /// `horizontal` or `vertical` (required by the store).
    pub partitioning: Option<Spanned<String>>,
    /// A note for the store's reviewers.
    pub submission_comments: Option<Spanned<String>>,
    /// `[[store.functions]]`: what the algorithm offers.
    pub functions: Option<Vec<Spanned<RawFunction>>>,
    /// The algorithm store's API (`https://store.example.org/api`): where `store submit` and
    /// publish (with `submit`) send the algorithm.
    pub store_url: Option<Spanned<String>>,
    /// The API of the vantage6 server whose account submits: the store checks its tokens
    /// there, and must whitelist it.
    pub server_url: Option<Spanned<String>>,
    /// Submit the algorithm to the store at the end of `publish`.
    pub submit: Option<Spanned<bool>>,
}

/// `[[store.functions]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFunction {
    /// Its name, as the store and the wrapper know it.
    pub name: Option<Spanned<String>>,
    /// The name the store's UI shows.
    pub display_name: Option<Spanned<String>>,
    /// What it is, for the store's users.
    pub description: Option<Spanned<String>>,
    /// `type`: the function's kind in vantage6 4.x (`central`, `federated`).
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// `step-type`: the function's kind in vantage6 5.x.
    pub step_type: Option<Spanned<String>>,
    /// Whether the function runs without others (5.x).
    pub standalone: Option<Spanned<bool>>,
    /// The databases the function reads.
    pub databases: Option<Vec<Spanned<RawDatabase>>>,
    /// The function's arguments.
    pub arguments: Option<Vec<Spanned<RawArgument>>>,
    /// How the store's UI shows the results.
    pub ui_visualizations: Option<Vec<Spanned<RawVisualization>>>,
}

/// `[[store.functions.databases]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDatabase {
    /// Its name, as the store and the wrapper know it.
    pub name: Option<Spanned<String>>,
    /// What it is, for the store's users.
    pub description: Option<Spanned<String>>,
    /// Whether several databases may be given (5.x).
    pub multiple: Option<Spanned<bool>>,
}

/// `[[store.functions.arguments]]`. Defaults and conditional values may be written as TOML
/// values of the argument's type (`default-value = 3`, `["a", "b"]`); the store wants text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawArgument {
    /// Its name, as the store and the wrapper know it.
    pub name: Option<Spanned<String>>,
    /// The name the store's UI shows.
    pub display_name: Option<Spanned<String>>,
    /// What it is, for the store's users.
    pub description: Option<Spanned<String>>,
    /// `type`: one of the store's argument types.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// The only values the argument may take.
    pub allowed_values: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    /// Whether the argument may be left out.
    pub has_default_value: Option<Spanned<bool>>,
    /// Its value when left out.
    pub default_value: Option<Spanned<toml::Value>>,
    /// The argument this one depends on.
    pub conditional_on: Option<Spanned<String>>,
    /// How `conditional-value` is compared.
    pub conditional_operator: Option<Spanned<String>>,
    /// The value of `conditional-on` that makes this argument apply.
    pub conditional_value: Option<Spanned<toml::Value>>,
    /// Whether only the UI uses the argument.
    pub is_frontend_only: Option<Spanned<bool>>,
}

/// `[[store.functions.ui-visualizations]]`; `schema`'s keys are the store's, as they are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawVisualization {
    /// Its name, as the store and the wrapper know it.
    pub name: Option<Spanned<String>>,
    /// What it is, for the store's users.
    pub description: Option<Spanned<String>>,
    /// `type`: `table` or `line`.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// The visualization's settings, with the store's keys.
    pub schema: Option<Spanned<toml::Table>>,
}

/// `[store]` read from the manifest's document, or the first key or type it cannot hold.
pub(super) fn read(table: Spanned<DeValue<'_>>) -> Result<Spanned<RawStore>, StoreSyntax> {
    Spanned::<RawStore>::deserialize(ValueDeserializer::from(table)).map_err(|err| {
        let (message, help) = super::explain_toml_error(err.message(), super::Keys::Store);
        StoreSyntax {
            message,
            span: err.span().unwrap_or(0..0),
            help,
        }
    })
}
