//! The vantage6 algorithm store's description of an algorithm, kept in v6.toml's `[store]`.
//!
//! The store (PyPI `vantage6-algorithm-store`) takes a submission only if it passes its
//! marshmallow `AlgorithmInputSchema`, whose rules differ between vantage6 4.x and 5.x. Teams
//! used to hand-maintain that JSON beside the Dockerfile, with an image digest that went stale
//! at every release; here the metadata lives in v6.toml and the JSON is generated from it with
//! the image that was just published.
//!
//! This module parses `[store]` from the manifest's text (with spans) and checks it with the
//! store's own rules ([`rules`]), so that every refusal the store would make is made here first,
//! with the store's reason and `v6.toml:LINE:COL`. [`export`] writes the JSON, [`import`] reads
//! an existing `algorithm_store.json` (as vantage6's repositories have them) into v6.toml.
//!
//! Invariant: a [`Store`] returned by [`load`] passes the store's schema for the manifest's
//! vantage6 major once `image`, `name` and `vantage6_version` are added from `[algorithm]`.

pub mod export;
pub mod import;
mod rules;

use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Location, display};
use crate::manifest::Manifest;

pub use export::refresh_after_publish;

/// Which of the store's input schemas applies: they differ in the function's kind (`type` in
/// 4.x, `step_type` in 5.x), databases' `multiple` (5.x) and nulls (allowed by 4.x only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// vantage6 4.x: `vantage6-algorithm-store` 4.15.2's schema.
    V4,
    /// vantage6 5.x: `vantage6-algorithm-store` 5.0.0a26's schema.
    V5,
}

impl Flavour {
    /// The schema for vantage6 `major`, if the store has one.
    pub fn for_major(major: u64) -> Option<Flavour> {
        match major {
            4 => Some(Flavour::V4),
            5 => Some(Flavour::V5),
            _ => None,
        }
    }

    /// The TOML key of a function's kind.
    fn kind_key(self) -> &'static str {
        match self {
            Flavour::V4 => "type",
            Flavour::V5 => "step-type",
        }
    }

    /// The values a function's kind may take.
    fn kinds(self) -> &'static [&'static str] {
        match self {
            Flavour::V4 => &["central", "federated"],
            Flavour::V5 => &[
                "data_extraction",
                "preprocessing",
                "federated_compute",
                "central_compute",
                "postprocessing",
            ],
        }
    }
}

/// The `[store]` section could not be read, or the store would refuse it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A value the store refuses, a key it does not know, or one it requires that is missing.
    #[error("{message}")]
    Invalid {
        /// What is wrong, with the store's reason.
        message: String,
        /// Where in v6.toml (or in the imported JSON).
        location: Location,
        /// How to fix it.
        help: Option<String>,
    },
    /// The command needs a `[store]` section and v6.toml has none.
    #[error("`{path}` has no [store] section")]
    NoSection {
        /// The manifest.
        path: String,
    },
    /// A file to import cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file to import is not JSON, or not shaped like a store submission.
    #[error("`{path}` is not an algorithm store document: {message}")]
    Document {
        /// The file.
        path: String,
        /// What is wrong, naming the JSON path (`functions[0].name`).
        message: String,
    },
    /// The exported file cannot be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the user's input is at fault (exit code 2) rather than the file system.
    pub fn is_input(&self) -> bool {
        !matches!(self, StoreError::Write { .. } | StoreError::Read { .. })
    }

    /// The place in a file the error is about.
    pub fn location(&self) -> Option<&Location> {
        match self {
            StoreError::Invalid { location, .. } => Some(location),
            _ => None,
        }
    }

    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            StoreError::Invalid { help, .. } => help.clone(),
            StoreError::NoSection { .. } => Some(
                "describe the algorithm under [store] (see the README's \"The algorithm store\"), or import an existing file with `cargo v6 store import algorithm_store.json`"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// A validated `[store]` section, with the values `[algorithm]` contributes.
#[derive(Debug)]
pub struct Store {
    /// Which schema it was checked against.
    pub flavour: Flavour,
    /// The algorithm's name in the store: `store.name`, else `algorithm.name`.
    pub name: String,
    /// `store.output`, relative to the current directory as the user would type it.
    pub output: Option<PathBuf>,
    section: RawStore,
}

/// Reads and checks `[store]`; `None` when v6.toml has none.
pub fn load(manifest: &Manifest) -> Result<Option<Store>, StoreError> {
    let context = Context {
        path: display(&manifest.path),
        source: &manifest.source,
    };
    let raw: RawDocument = toml::from_str(&manifest.source).map_err(|err| {
        let (message, help) = explain_toml_error(err.message());
        context.error(err.span().unwrap_or(0..0), message, help)
    })?;
    let Some(store) = raw.store else {
        return Ok(None);
    };
    let vantage6_span = raw
        .algorithm
        .vantage6
        .as_ref()
        .map_or(store.span(), Spanned::span);
    let Some(flavour) = Flavour::for_major(manifest.vantage6.major) else {
        return Err(context.error(
            vantage6_span,
            format!(
                "the algorithm store has no schema for vantage6 {}: [store] describes algorithms for vantage6 4 and 5",
                manifest.vantage6
            ),
            Some("set `vantage6` to a 4.x or 5.x release, or remove [store]".to_string()),
        ));
    };
    let span = store.span();
    let section = store.into_inner();
    rules::check(&context, flavour, &section, span)?;
    let output = section
        .output
        .as_ref()
        .map(|o| manifest.dir.join(o.get_ref()));
    let name = section
        .name
        .as_ref()
        .map_or_else(|| manifest.name.clone(), |n| n.get_ref().clone());
    Ok(Some(Store {
        flavour,
        name,
        output,
        section,
    }))
}

/// Checks `[store]` without exporting: for a preflight before publishing, so that a bad
/// section is found before anything is pushed rather than after.
pub fn check(manifest: &Manifest) -> Result<(), StoreError> {
    load(manifest).map(|_| ())
}

/// Where errors point: the manifest's path and text.
struct Context<'a> {
    path: String,
    source: &'a str,
}

impl Context<'_> {
    fn error(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> StoreError {
        StoreError::Invalid {
            message: message.into(),
            location: Location::new(self.path.clone(), self.source, span),
            help,
        }
    }
}

/// Rewords serde's messages as the manifest does, suggesting the closest key.
fn explain_toml_error(message: &str) -> (String, Option<String>) {
    let message = message.trim_end();
    let backticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some((found, expected)) = message
        .starts_with("unknown field")
        .then(|| backticked.split_first())
        .flatten()
    {
        let help = closest(found, expected).map_or_else(
            || {
                let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
                format!(
                    "the store refuses unknown keys; expected one of {}",
                    list.join(", ")
                )
            },
            |m| format!("did you mean `{m}`?"),
        );
        return (
            format!("unknown key `{found}` (the store: \"Unknown field.\")"),
            Some(help),
        );
    }
    (message.to_string(), None)
}

/// The candidate nearest to `word`, if near enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The parts of v6.toml this module reads: `[store]`, and `[algorithm].vantage6` to point at.
/// Every other key is the manifest's, already validated by [`Manifest::load`].
#[derive(Deserialize)]
struct RawDocument {
    #[serde(default)]
    algorithm: RawAlgorithm,
    store: Option<Spanned<RawStore>>,
}

#[derive(Deserialize, Default)]
struct RawAlgorithm {
    vantage6: Option<Spanned<String>>,
}

/// `[store]`: the algorithm's keys, spelled as the store's JSON with `-` for `_`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStore {
    output: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    code_url: Option<Spanned<String>>,
    documentation_url: Option<Spanned<String>>,
    partitioning: Option<Spanned<String>>,
    submission_comments: Option<Spanned<String>>,
    functions: Option<Vec<Spanned<RawFunction>>>,
}

/// `[[store.functions]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFunction {
    name: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    step_type: Option<Spanned<String>>,
    standalone: Option<Spanned<bool>>,
    databases: Option<Vec<Spanned<RawDatabase>>>,
    arguments: Option<Vec<Spanned<RawArgument>>>,
    ui_visualizations: Option<Vec<Spanned<RawVisualization>>>,
}

/// `[[store.functions.databases]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDatabase {
    name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    multiple: Option<Spanned<bool>>,
}

/// `[[store.functions.arguments]]`. Defaults and conditional values may be written as TOML
/// values of the argument's type (`default-value = 3`, `["a", "b"]`); the store wants text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawArgument {
    name: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    allowed_values: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    has_default_value: Option<Spanned<bool>>,
    default_value: Option<Spanned<toml::Value>>,
    conditional_on: Option<Spanned<String>>,
    conditional_operator: Option<Spanned<String>>,
    conditional_value: Option<Spanned<toml::Value>>,
    is_frontend_only: Option<Spanned<bool>>,
}

/// `[[store.functions.ui-visualizations]]`; `schema`'s keys are the store's, as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVisualization {
    name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    schema: Option<Spanned<toml::Table>>,
}

/// A TOML value as the store's text: strings as they are, numbers and booleans as Python's
/// `int()`, `float()` and the store's boolean check read them, lists and tables as JSON.
/// `None` for a date, which the store has no type for.
fn store_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(float_text(*f)),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            to_json(value).map(|json| json.to_string())
        }
        toml::Value::Datetime(_) => None,
    }
}

/// A float as Python's `float()` reads it back (`1.0`, `1e300`, `inf`, `nan`).
fn float_text(f: f64) -> String {
    match serde_json::Number::from_f64(f) {
        Some(n) => n.to_string(),
        None if f.is_nan() => "nan".to_string(),
        None if f > 0.0 => "inf".to_string(),
        None => "-inf".to_string(),
    }
}

/// A TOML value as JSON; `None` for a date or a non-finite float, which JSON cannot hold.
fn to_json(value: &toml::Value) -> Option<serde_json::Value> {
    Some(match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::Number(serde_json::Number::from_f64(*f)?),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(to_json).collect::<Option<_>>()?)
        }
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .iter()
                .map(|(k, v)| Some((k.clone(), to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
        toml::Value::Datetime(_) => return None,
    })
}
