//! The vantage6 algorithm store's description of an algorithm, kept in v6.toml's `[store]`.
//!
//! The store (PyPI `vantage6-algorithm-store`) takes a submission only if it passes its
//! marshmallow `AlgorithmInputSchema`, whose rules differ between vantage6 4.x and 5.x. Teams
//! used to hand-maintain that JSON beside the Dockerfile, with an image digest that went stale
//! at every release; here the metadata lives in v6.toml and the JSON is generated from it with
//! the image that was just published.
//!
//! This module checks the `[store]` that the manifest read with the rest of v6.toml (with
//! spans: [`crate::manifest::StoreSection`]) against the store's own rules ([`rules`]), so
//! that every refusal the store would make is made here first, with the store's reason and
//! `v6.toml:LINE:COL`. [`export`] writes the JSON, [`import`] reads an existing
//! `algorithm_store.json` (as vantage6's repositories have them) into v6.toml.
//!
//! Invariant: a [`Store`] returned by [`load`] passes the store's schema for the manifest's
//! vantage6 major once `image`, `name` and `vantage6_version` are added from `[algorithm]`.

pub mod export;
pub mod import;
mod rules;
pub mod submit;

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Location, display};
use crate::manifest::Manifest;
use crate::manifest::{RawArgument, RawFunction, RawStore, RawVisualization};

pub use export::refresh_after_publish;

/// Which of the store's input schemas applies: they differ in the function's kind (`type` in
/// 4.x, `step_type` in 5.x), databases' `multiple` (5.x) and nulls (allowed by 4.x only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// vantage6 4.x: `vantage6-algorithm-store` 4.15.2's schema.
    V4,
    /// vantage6 5.x: `vantage6-algorithm-store` 5.0.3's schema (the release; where 5.0.0a26
    /// differed, 5.0.3 is followed: `OneOf` messages, nulls and JSON values taken for
    /// `default_value`, `conditional_value` and `conditional_operator`).
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
    /// The algorithm store refused the submission (its schema's 400), at this place of
    /// v6.toml when its message names one.
    #[error("{message}")]
    Refused {
        /// The store's answer.
        message: String,
        /// Where, when the store's errors name a key of `[store]` (boxed: the error stays
        /// small).
        location: Option<Box<Location>>,
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
    /// The import would write a v6.toml that no command could load (nested deeper than TOML
    /// readers go, larger than a manifest may be): refused, nothing written.
    #[error("cannot import `{path}`: the v6.toml it would write cannot be loaded: {reason}")]
    WouldNotLoad {
        /// The file to import.
        path: String,
        /// What the manifest's loader says of the result.
        reason: String,
        /// What in the file makes it so, and what to do.
        help: String,
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
        use std::io::ErrorKind;
        match self {
            StoreError::Write { .. } | StoreError::Refused { .. } => false,
            // The FILE argument names nothing, or something no submission can be (too large,
            // not text, not a regular file): the argument is at fault, not the file system.
            StoreError::Read { source, .. } => matches!(
                source.kind(),
                ErrorKind::NotFound
                    | ErrorKind::InvalidInput
                    | ErrorKind::InvalidData
                    | ErrorKind::FileTooLarge
            ),
            _ => true,
        }
    }

    /// The place in a file the error is about.
    pub fn location(&self) -> Option<&Location> {
        match self {
            StoreError::Invalid { location, .. } => Some(location),
            StoreError::Refused { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            StoreError::Invalid { help, .. } | StoreError::Refused { help, .. } => help.clone(),
            StoreError::WouldNotLoad { help, .. } => Some(help.clone()),
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
    /// `store.store-url` and `store.server-url`: where to submit.
    pub endpoints: Option<submit::Endpoints>,
    /// `store.submit`: publish submits at its end.
    pub submit_on_publish: bool,
    section: RawStore,
}

impl Store {
    /// Where in `manifest`'s `[store]` the store's schema `errors` point (400 `errors`, by
    /// key, function index and argument, database or visualization index, as marshmallow
    /// nests them): the function's or its item's table, or the section's key.
    pub fn locate(&self, manifest: &Manifest, errors: &serde_json::Value) -> Option<Location> {
        let at = |span: Range<usize>| {
            Some(Location::new(
                display(&manifest.path),
                manifest.source.clone(),
                span,
            ))
        };
        let (key, inner) = errors.as_object()?.iter().next()?;
        if key != "functions" {
            let s = &self.section;
            let span = match key.as_str() {
                "name" => s.name.as_ref().map(toml::Spanned::span),
                "description" => s.description.as_ref().map(toml::Spanned::span),
                "code_url" => s.code_url.as_ref().map(toml::Spanned::span),
                "documentation_url" => s.documentation_url.as_ref().map(toml::Spanned::span),
                "partitioning" => s.partitioning.as_ref().map(toml::Spanned::span),
                _ => None,
            };
            return at(span?);
        }
        let (index, inner) = inner.as_object()?.iter().next()?;
        let function = self
            .section
            .functions
            .as_ref()?
            .get(index.parse::<usize>().ok()?)?;
        let f = function.get_ref();
        let item = inner
            .as_object()
            .and_then(|o| o.iter().next())
            .and_then(|(key, list)| {
                let index: usize = list.as_object()?.keys().next()?.parse().ok()?;
                match key.as_str() {
                    "arguments" => f.arguments.as_ref()?.get(index).map(toml::Spanned::span),
                    "databases" => f.databases.as_ref()?.get(index).map(toml::Spanned::span),
                    "ui_visualizations" => f
                        .ui_visualizations
                        .as_ref()?
                        .get(index)
                        .map(toml::Spanned::span),
                    _ => None,
                }
            });
        at(item.unwrap_or_else(|| function.span()))
    }
}

/// An API's base URL: `http://` or `https://`, one line.
fn is_api_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
        && url.len() > "https://".len()
}

/// Checks `[store]`, as the manifest read it; `None` when v6.toml has none.
pub fn load(manifest: &Manifest) -> Result<Option<Store>, StoreError> {
    let context = Context {
        path: display(&manifest.path),
        source: &manifest.source,
    };
    let Some(written) = &manifest.store else {
        return Ok(None);
    };
    let store = written
        .table
        .clone()
        .map_err(|e| context.error(e.span, e.message, e.help))?;
    let vantage6_span = written.vantage6_span.clone().unwrap_or(store.span());
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
    if let Some(output) = &section.output
        && !is_output_name(output.get_ref())
    {
        return Err(context.error(
            output.span(),
            format!("`store.output` must name a `.json` file, not `{}`", output.get_ref()),
            Some("publish writes the submission there, and leaves it out of the build context: e.g. \"algorithm_store.json\"".to_string()),
        ));
    }
    for (key, url) in [
        ("store-url", &section.store_url),
        ("server-url", &section.server_url),
    ] {
        if let Some(url) = url
            && !is_api_url(url.get_ref())
        {
            return Err(context.error(
                url.span(),
                format!("`store.{key}` must be an http:// or https:// URL, not `{}`", url.get_ref()),
                Some("the API's base URL, as the store's whitelist has it: e.g. \"https://store.example.org/api\"".to_string()),
            ));
        }
    }
    let endpoints = match (&section.store_url, &section.server_url) {
        // 5.x: the store checks Keycloak's tokens itself; a server is named only in 4.x.
        (Some(store), server) if server.is_some() || flavour == Flavour::V5 => {
            Some(submit::Endpoints {
                store: store.get_ref().clone(),
                server: server.as_ref().map(|s| s.get_ref().clone()),
            })
        }
        (None, None) => None,
        (Some(given), _) | (None, Some(given)) => {
            return Err(context.error(
                given.span(),
                "`store.store-url` and `store.server-url` go together for vantage6 4.x: its store checks the submitting account's token at the server",
                None,
            ));
        }
    };
    if let (Some(submit), None) = (&section.submit, &endpoints)
        && *submit.get_ref()
    {
        return Err(context.error(
            submit.span(),
            "`store.submit` needs `store-url` and `server-url`",
            None,
        ));
    }
    let submit_on_publish = section.submit.as_ref().is_some_and(|s| *s.get_ref());
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
        endpoints,
        submit_on_publish,
        section,
    }))
}

/// Whether `path` may be the store's file: a `.json` file (publish overwrites it and leaves it
/// out of the build context, so it must not be the manifest, a source file or data).
fn is_output_name(path: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && !path.ends_with('/')
}

/// Where `store.output` is, if v6.toml names one, without checking the rest of `[store]`:
/// the file publish writes is an output, never an input of the build (see
/// `plan::inputs`).
pub fn output(manifest: &Manifest) -> Option<PathBuf> {
    let output = manifest.store.as_ref()?.output.as_deref()?;
    is_output_name(output).then(|| manifest.dir.join(output))
}

/// Where publish submits the algorithm: `[store]`'s endpoints when `submit` is on (or
/// `forced`, publish's `--submit`); a section that does not load is `check`'s to report.
pub fn submit_target(manifest: &Manifest, forced: bool) -> Option<submit::Endpoints> {
    let store = load(manifest).ok()??;
    (store.submit_on_publish || forced)
        .then_some(store.endpoints)
        .flatten()
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Six lines of `[algorithm]`, then `[store]` from line 7.
    fn manifest(vantage6: &str, store: &str) -> Manifest {
        let text = format!(
            "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"{vantage6}\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n{store}"
        );
        Manifest::parse(Path::new("v6.toml"), text).unwrap()
    }

    /// A valid `[store]` (lines 7 to 12) for vantage6 4, and `extra` lines from line 13.
    fn section(extra: &str) -> String {
        format!(
            "[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\n[[store.functions]]\nname = \"f\"\ntype = \"central\"\n{extra}"
        )
    }

    /// The message and `LINE:COL` of the refusal of `store` (and its help).
    fn refused(vantage6: &str, store: &str) -> (String, String, Option<String>) {
        match load(&manifest(vantage6, store)) {
            Err(StoreError::Invalid {
                message,
                location,
                help,
            }) => {
                let (line, col) = location.line_col();
                (message, format!("{line}:{col}"), help)
            }
            other => panic!("not refused with a place: {other:?}\n{store}"),
        }
    }

    #[test]
    fn a_valid_section_loads_and_none_is_none() {
        let store = load(&manifest("4.15", &section(""))).unwrap().unwrap();
        assert_eq!(store.flavour, Flavour::V4);
        assert_eq!(store.name, "a");
        assert!(store.output.is_none());
        assert!(load(&manifest("4.15", "")).unwrap().is_none());
        let store = load(&manifest(
            "5.0",
            "[store]\nname = \"Shown\"\noutput = \"store.json\"\ncode-url = \"u\"\npartitioning = \"vertical\"\nfunctions = []\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((store.flavour, store.name.as_str()), (Flavour::V5, "Shown"));
        assert_eq!(store.output.as_deref(), Some(Path::new("store.json")));
    }

    #[test]
    fn the_output_is_a_json_file_never_the_manifest_or_a_source() {
        for bad in ["v6.toml", "hello.txt", "data/", "v6.lock"] {
            let text = format!(
                "[store]\noutput = \"{bad}\"\ncode-url = \"u\"\npartitioning = \"vertical\"\nfunctions = []\n"
            );
            let loaded = manifest("4.15", &text);
            let error = load(&loaded).unwrap_err().to_string();
            assert!(error.contains("must name a `.json` file"), "{bad}: {error}");
            assert_eq!(output(&loaded), None, "{bad}");
        }
    }

    #[test]
    fn every_refusal_points_at_the_place_with_the_stores_reason() {
        let args = "[[store.functions.arguments]]\nname = \"n\"\ntype = \"integer\"\nhas-default-value = true\n";
        let cases: Vec<(&str, String, &str, &str)> = vec![
            (
                "4.15",
                section("").replace("\"horizontal\"", "\"horizontl\""),
                "9:16",
                "Partitioning 'horizontl' is not one of the allowed values ['horizontal', 'vertical']",
            ),
            (
                "4.15",
                section("").replace("code-url = \"u\"\n", ""),
                "7:1",
                "[store] has no `code-url`, which the store requires",
            ),
            (
                "4.15",
                section("").replace("partitioning = \"horizontal\"\n", ""),
                "7:1",
                "[store] has no `partitioning`",
            ),
            (
                "4.15",
                "[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\n".to_string(),
                "7:1",
                "[store] has no `functions`",
            ),
            (
                "4.15",
                section("").replace("\"central\"", "\"centrl\""),
                "12:8",
                "Function type 'centrl' is not one of the allowed values ['central', 'federated']",
            ),
            (
                "4.15",
                section("step-type = \"central_compute\"\n"),
                "13:13",
                "`step-type` is not a key of a function for vantage6 4",
            ),
            (
                "5.0",
                section(""),
                "12:8",
                "`type` is not a key of a function for vantage6 5",
            ),
            (
                "5.0",
                section("").replace("type = \"central\"\n", "step-type = \"compute\"\n"),
                "12:13",
                "Function step type 'compute': Must be one of: data_extraction, preprocessing, federated_compute, central_compute, postprocessing.",
            ),
            (
                "4.15",
                section("").replace("name = \"f\"\n", ""),
                "10:1",
                "this [[store.functions]] has no `name`",
            ),
            (
                "4.15",
                section("colour = 1\n"),
                "13:1",
                "unknown key `colour`",
            ),
            (
                "4.15",
                section("display_name = \"F\"\n"),
                "13:1",
                "unknown key `display_name`",
            ),
            (
                "4.15",
                section("[[store.functions.databases]]\nname = \"d\"\nmultiple = true\n"),
                "15:12",
                "`multiple` is not a key of a database for vantage6 4",
            ),
            (
                "4.15",
                section("[[store.functions.databases]]\ndescription = \"d\"\n"),
                "13:1",
                "this [[store.functions.databases]] has no `name`",
            ),
            (
                "4.15",
                section(&format!("{args}default-value = \"x\"\n")),
                "17:17",
                "Default value 'x' is not a valid integer, while the argument type integer requires an integer",
            ),
            (
                "4.15",
                section(&format!("{args}default-value = 1979-05-27\n")),
                "17:17",
                "`default-value` cannot be a date",
            ),
            (
                "4.15",
                section(
                    &args
                        .replace("true", "false")
                        .replace("\"integer\"", "\"boolean\"")
                        .replace(
                            "has-default-value = false\n",
                            "has-default-value = false\ndefault-value = \"yes\"\n",
                        ),
                ),
                "17:17",
                "Default value cannot be given if has_default_value is False",
            ),
            (
                "4.15",
                section(&args.replace("\"integer\"", "\"integr\"")),
                "15:8",
                "Argument type 'integr' is not one of the allowed values",
            ),
            (
                "4.15",
                section(&format!("{args}conditional-on = \"m\"\n")),
                "17:18",
                "Either all conditional fields must be specified",
            ),
            (
                "4.15",
                section(&format!(
                    "{args}conditional-on = \"m\"\nconditional-operator = \"~\"\n"
                )),
                "18:24",
                "Conditional comparator '~' is not one of the allowed values",
            ),
            (
                "4.15",
                section(&format!(
                    "{args}conditional-on = \"m\"\nconditional-operator = \"==\"\n"
                )),
                "17:18",
                "The argument 'n' is conditional on 'm', but no other argument with that name exists.",
            ),
            (
                "4.15",
                section(&format!(
                    "{args}conditional-on = \"n\"\nconditional-operator = \"==\"\n"
                )),
                "17:18",
                "The argument 'n' is conditional on itself.",
            ),
            (
                "4.15",
                section(&format!(
                    "{args}conditional-on = \"m\"\nconditional-operator = \"==\"\n{}",
                    args.replace("\"n\"", "\"m\"")
                        .replace("\"integer\"", "\"json\"")
                )),
                "17:18",
                "the conditional argument is of type 'json', which is not supported",
            ),
            (
                "4.15",
                section(&format!(
                    "{args}conditional-on = \"m\"\nconditional-operator = \"==\"\n{}conditional-on = \"n\"\nconditional-operator = \"==\"\n",
                    args.replace("\"n\"", "\"m\"")
                        .replace("\"integer\"", "\"float\"")
                )),
                "17:18",
                "Circular conditional arguments detected: n -> m -> n",
            ),
            (
                "4.15",
                section(&format!(
                    "{args}allowed-values = [\"1\", \"2\"]\ndefault-value = 3\n"
                )),
                "18:17",
                "Default value is not one of the allowed values",
            ),
            (
                "4.15",
                section(&format!("{args}allowed-values = [\"one\"]\n")),
                "17:19",
                "Allowed values should be of type <class 'int'> because the argument type is integer",
            ),
            (
                "4.15",
                section(&format!("{args}allowed-values = [[1]]\n")),
                "17:19",
                "Values should be str, int or float",
            ),
            (
                "4.15",
                section(&format!("{args}{}", args.replace("integer", "string"))),
                "18:8",
                "All arguments must have a unique name",
            ),
            (
                "4.15",
                section("[[store.functions.ui-visualizations]]\nname = \"v\"\ntype = \"pie\"\n"),
                "15:8",
                "UI visualization type 'pie' is not one of the allowed values ['table', 'line']",
            ),
            (
                "4.15",
                section(
                    "[[store.functions.ui-visualizations]]\nname = \"v\"\ntype = \"line\"\nschema = { x = \"a\" }\n",
                ),
                "16:10",
                "Schema does not match requirements for that visualization type: 'y' is a required property",
            ),
            (
                "4.15",
                section(
                    "[[store.functions.ui-visualizations]]\nname = \"v\"\ntype = \"table\"\nschema = { columns = [1] }\n",
                ),
                "16:10",
                "`columns` = [1] is not an array of strings",
            ),
        ];
        for (vantage6, store, at, message) in &cases {
            let (shown, place, _) = refused(vantage6, store);
            assert!(
                shown.contains(message),
                "{store}\nexpected `{message}` in `{shown}`"
            );
            assert_eq!(&place, at, "{shown}\n{store}");
        }
    }

    #[test]
    fn a_section_the_store_refuses_is_refused_by_the_store_only() {
        // The manifest loads: the commands that do not use the store are not stopped by it.
        let loaded = manifest("4.15", &section("colour = 1\n"));
        assert_eq!(output(&loaded), None);
        let (message, at, help) = refused("4.15", &section("colour = 1\n"));
        assert_eq!(
            message,
            "unknown key `colour` (the store: \"Unknown field.\")"
        );
        assert_eq!(at, "13:1");
        assert!(
            help.as_deref().is_some_and(
                |h| h.starts_with("the store refuses unknown keys; expected one of `name`")
            ),
            "{help:?}"
        );
    }

    #[test]
    fn a_vantage6_the_workspace_gives_is_refused_at_the_section() {
        let root = crate::manifest::Defaults {
            path: "../v6.toml".into(),
            dir: "..".into(),
            source:
                "[workspace.algorithm]\nvantage6 = \"3.11\"\n[workspace.build]\nbase = \"b:1\"\n"
                    .into(),
        };
        let text = format!(
            "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n{}",
            section("")
        );
        let member = Manifest::parse_member(Path::new("v6.toml"), text, Some(&root)).unwrap();
        match load(&member) {
            Err(StoreError::Invalid { location, .. }) => {
                assert_eq!(
                    (location.path.as_str(), location.line_col()),
                    ("v6.toml", (6, 1))
                );
            }
            other => panic!("not refused at [store]: {other:?}"),
        }
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        let (_, _, help) = refused(
            "4.15",
            &section("").replace("\"horizontal\"", "\"horizontl\""),
        );
        assert_eq!(help.as_deref(), Some("did you mean `horizontal`?"));
        let (_, _, help) = refused("4.15", &section("display_name = \"F\"\n"));
        assert_eq!(help.as_deref(), Some("did you mean `display-name`?"));
        let (_, _, help) = refused("5.0", &section(""));
        assert!(help.unwrap().contains("`step-type`"));
    }

    #[test]
    fn values_are_read_as_python_reads_them() {
        for yes in ["3", " -3 ", "+1_000", "0"] {
            assert!(rules::python_int(yes), "{yes}");
        }
        for no in ["", "3.0", "1__0", "_1", "x", "0x10", "-"] {
            assert!(!rules::python_int(no), "{no}");
        }
        for yes in ["1.5", " 2 ", "1e5", "-inf", "NaN", "1_000.5", ".5", "5."] {
            assert!(rules::python_float(yes), "{yes}");
        }
        for no in ["", ".", "1__0", "e5", "x", "1_"] {
            assert!(!rules::python_float(no), "{no}");
        }
        assert_eq!(
            store_text(&toml::Value::Boolean(true)).as_deref(),
            Some("true")
        );
        assert_eq!(store_text(&toml::Value::Float(1.0)).as_deref(), Some("1.0"));
        assert_eq!(
            store_text(&toml::Value::Float(f64::INFINITY)).as_deref(),
            Some("inf")
        );
        let list = toml::Value::Array(vec![toml::Value::Integer(1), "a".into()]);
        assert_eq!(store_text(&list).as_deref(), Some("[1,\"a\"]"));
    }

    use proptest::prelude::*;

    proptest! {
        /// Any text under [store]: a store, nothing, or an error inside the file; never a panic.
        #[test]
        fn any_store_section_is_checked_without_panic(text in "\\PC{0,300}") {
            let head = "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"4.15\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n[store]\n";
            if let Ok(manifest) = Manifest::parse(Path::new("v6.toml"), format!("{head}{text}"))
                && let Err(StoreError::Invalid { location, .. }) = load(&manifest)
            {
                prop_assert!(location.span.start <= manifest.source.len());
            }
        }

        /// Values spliced into an argument: checked, never a panic.
        #[test]
        fn any_argument_value_is_checked_without_panic(
            value in "\\PC{0,30}",
            key in prop::sample::select(vec!["default-value", "conditional-value", "type", "conditional-operator"]),
            kind in prop::sample::select(rules::ARGUMENT_TYPES.to_vec()),
        ) {
            let escaped = toml::Value::String(value).to_string();
            let store = section(&format!(
                "[[store.functions.arguments]]\nname = \"m\"\ntype = \"{kind}\"\nhas-default-value = true\n[[store.functions.arguments]]\nname = \"n\"\ntype = \"string\"\nhas-default-value = true\nconditional-on = \"m\"\nconditional-operator = \"==\"\n{key} = {escaped}\n"
            ));
            if let Ok(manifest) = Manifest::parse(Path::new("v6.toml"), manifest("4.15", "").source.clone() + &store) {
                let _ = load(&manifest);
            }
        }
    }
}
