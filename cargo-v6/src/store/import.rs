//! `algorithm_store.json` into v6.toml's `[store]`, keeping the rest of v6.toml as it was.
//!
//! Real files in vantage6's repositories often fail the store's own input schema (vantage6
//! issue #2681): `null` where the schema wants the key absent, a `developer_id` or a `default`
//! it does not know, booleans or numbers where it wants text, a visualization's `properties`
//! for `schema`, 4.x `type` in a 5.x file. Import accepts them, normalises them to what the
//! store accepts and says so, one note per change. A missing `code_url` (the store requires
//! it) is taken from the project's metadata or git remote, saying from where; what it cannot
//! fill or normalise is written as it is, and the check of the result points at it.
//!
//! The new `[store]` is rendered with toml_edit and appended to the manifest's text unchanged;
//! an existing `[store]` is removed first (keeping its `output`), everything else byte for byte.

use serde_json::{Map, Value};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use std::path::Path;

use crate::manifest::{Defaults, Manifest, ManifestError};

use super::{Flavour, StoreError};

/// The result of an import.
#[derive(Debug)]
pub struct Imported {
    /// The new text of v6.toml.
    pub manifest: String,
    /// One line per change made to the input to satisfy the store's schema.
    pub notes: Vec<String>,
    /// Whether the store would take the result: the first refusal, pointing into the new text.
    pub verdict: Result<(), StoreError>,
}

/// Keys of the algorithm that become `[store]` keys, in the order they are written.
const ALGORITHM_KEYS: &[&str] = &[
    "name",
    "description",
    "code_url",
    "documentation_url",
    "partitioning",
    "submission_comments",
];
const FUNCTION_KEYS: &[&str] = &[
    "name",
    "display_name",
    "description",
    "type",
    "step_type",
    "standalone",
    "databases",
    "arguments",
    "ui_visualizations",
];
const DATABASE_KEYS: &[&str] = &["name", "description", "multiple"];
const ARGUMENT_KEYS: &[&str] = &[
    "name",
    "display_name",
    "description",
    "type",
    "allowed_values",
    "has_default_value",
    "default_value",
    "conditional_on",
    "conditional_operator",
    "conditional_value",
    "is_frontend_only",
];
const VISUALIZATION_KEYS: &[&str] = &["name", "description", "type", "schema"];

/// Imports `json` (the text of `json_path`) into `manifest`'s `[store]`.
pub fn import(manifest: &Manifest, json: &str, json_path: &str) -> Result<Imported, StoreError> {
    let document = |message: String| StoreError::Document {
        path: json_path.to_string(),
        message,
    };
    let value: Value = serde_json::from_str(json).map_err(|e| document(e.to_string()))?;
    let deepest = deepest(&value);
    let flavour = Flavour::for_major(manifest.vantage6.major).ok_or_else(|| {
        document(format!(
            "v6.toml targets vantage6 {}, and the store has schemas for vantage6 4 and 5 only",
            manifest.vantage6
        ))
    })?;
    let mut notes = Vec::new();
    let mut algorithm = normalise(manifest, flavour, value, &mut notes).map_err(document)?;
    if !algorithm.contains_key("code_url") {
        notes.push(match project_code_url(manifest) {
            Some((url, from)) => {
                let note = format!(
                    "`code_url`: none in the file, the store requires one: `code-url` is {url}, from {from}"
                );
                algorithm.insert("code_url".to_string(), Value::String(url));
                note
            }
            None => "`code_url` is missing, and the store requires it: set `code-url` under [store] (no URL in the project's metadata, and no git remote)".to_string(),
        });
    }
    let mut existing: DocumentMut = manifest
        .source
        .parse()
        .map_err(|e: toml_edit::TomlError| document(format!("v6.toml: {e}")))?;
    let old = existing.remove("store");
    let output = old
        .as_ref()
        .and_then(|o| o.get("output"))
        .and_then(Item::as_value)
        .cloned();
    // Comments right above the old `[store]` belong to it: they go above the new one.
    let comments = old
        .as_ref()
        .and_then(Item::as_table)
        .and_then(|t| t.decor().prefix())
        .and_then(|p| p.as_str())
        .map(|p| p.trim_start_matches(['\n', '\r']).to_string())
        .unwrap_or_default();
    let store = store_table(output, &algorithm).map_err(document)?;
    let mut text = if old.is_some() {
        notes.push("replaced the [store] section v6.toml had (its `output` is kept)".to_string());
        existing.to_string()
    } else {
        manifest.source.clone()
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&comments);
    let mut rendered = DocumentMut::new();
    rendered.insert("store", Item::Table(store));
    text.push_str(&rendered.to_string());
    // Loaded as every command will load it: what cannot be is refused before writing.
    let would_not_load = |reason: String, what: String| StoreError::WouldNotLoad {
        path: json_path.to_string(),
        reason,
        help: format!("{what}; shorten it in `{json_path}`, then import again"),
    };
    let size = text.len() as u64;
    if size > crate::files::SMALL_FILE_MAX {
        return Err(would_not_load(
            format!(
                "it would be {size} bytes, over the {} a v6.toml may have",
                crate::files::SMALL_FILE_MAX
            ),
            "TOML writes each control character as a 6-byte escape".to_string(),
        ));
    }
    let parsed = reload(manifest, &text).map_err(|e| {
        let (path, depth) = &deepest;
        would_not_load(e.to_string(), format!("`{path}` nests {depth} levels deep"))
    })?;
    Ok(Imported {
        manifest: text,
        notes,
        verdict: super::check(&parsed),
    })
}

/// Where the project says its code lives, for a submission without `code_url` (the store
/// requires one): the project's metadata beside v6.toml (see [`crate::project::names::project_url`]), else
/// the git remote (`origin` first) as an https address without credentials. With where it
/// was found.
fn project_code_url(manifest: &Manifest) -> Option<(String, String)> {
    let read = |name: &str| crate::project::read_text(&manifest.dir, name);
    let files = crate::project::ProjectFiles {
        pyproject: read("pyproject.toml"),
        setup_cfg: read("setup.cfg"),
        setup_py: read("setup.py"),
        description: read("DESCRIPTION"),
        ..Default::default()
    };
    crate::project::names::project_url(&files).or_else(|| {
        // Only ever an http(s) address, credentials removed; read before the first commit too.
        let source = crate::git::remote_source(&manifest.dir)?;
        Some((source, "the git remote".to_string()))
    })
}

/// The manifest `text` (the new v6.toml at `manifest.path`) loaded as the commands load it: a
/// workspace member with its root's defaults.
fn reload(manifest: &Manifest, text: &str) -> Result<Manifest, ManifestError> {
    let defaults = match &manifest.workspace_root {
        Some(root) => Some(Defaults {
            path: root.clone(),
            dir: root.parent().map(Path::to_path_buf).unwrap_or_default(),
            source: crate::files::read_regular_text(root, crate::files::SMALL_FILE_MAX).map_err(
                |source| ManifestError::Read {
                    path: root.clone(),
                    source,
                },
            )?,
        }),
        None => None,
    };
    Manifest::parse_member(&manifest.path, text.to_string(), defaults.as_ref())
}

/// The path to the most deeply nested value of `value`, down to a field of the submission
/// (`functions[0].ui_visualizations[0].schema`, at most five steps), and how many levels of
/// arrays and objects that field's value nests.
fn deepest(value: &Value) -> (String, usize) {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let mut path = String::new();
    let mut at = value;
    for _ in 0..5 {
        let children: Vec<(String, &Value)> = match at {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[{i}]"), v))
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (format!("{}{k}", if path.is_empty() { "" } else { "." }), v))
                .collect(),
            _ => break,
        };
        let Some((step, child)) = children.into_iter().max_by_key(|(_, v)| depth(v)) else {
            break;
        };
        path.push_str(&step);
        at = child;
    }
    (path, depth(at))
}

/// The input as the store accepts it, with a note per change. `Err` only for a document that
/// is not shaped like a submission at all (not an object, `functions` not a list).
fn normalise(
    manifest: &Manifest,
    flavour: Flavour,
    value: Value,
    notes: &mut Vec<String>,
) -> Result<Map<String, Value>, String> {
    let Value::Object(object) = value else {
        return Err("expected a JSON object at the top".to_string());
    };
    let mut out = Map::new();
    for (key, value) in object {
        match (key.as_str(), value) {
            (_, Value::Null) => notes.push(format!(
                "`{key}`: null dropped (the store wants the key absent)"
            )),
            ("image", Value::String(image)) => {
                let repository = image.split('@').next().unwrap_or_default();
                let repository = match repository.rsplit_once(':') {
                    Some((name, tag)) if !tag.contains('/') => name,
                    _ => repository,
                };
                if repository != manifest.image.to_string() {
                    notes.push(format!(
                        "`image`: {image} is not v6.toml's `image` ({}); export names the image published from v6.toml",
                        manifest.image
                    ));
                }
            }
            ("vantage6_version", version) => {
                if version.as_str() != Some(manifest.vantage6.text.as_str()) {
                    notes.push(format!(
                        "`vantage6_version`: {version} differs from v6.toml's `vantage6` ({}), which export writes and whose schema applies",
                        manifest.vantage6
                    ));
                }
            }
            ("name", Value::String(name)) => {
                if name != manifest.name {
                    out.insert(key, Value::String(name));
                }
            }
            ("functions", Value::Array(functions)) => {
                let functions = functions
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| function(flavour, &format!("functions[{i}]"), f, notes))
                    .collect::<Result<_, _>>()?;
                out.insert(key, Value::Array(functions));
            }
            ("functions", _) => return Err("`functions` is not a list".to_string()),
            (k, value) if ALGORITHM_KEYS.contains(&k) => {
                out.insert(key, value);
            }
            (_, _) => notes.push(format!(
                "`{key}`: dropped, the store's schema has no such key (\"Unknown field.\")"
            )),
        }
    }
    Ok(out)
}

/// Drops nulls and keys the schema does not have (noting each) from `object`, at `path`.
/// `nullable`: keys whose null the store takes as absent (TOML has no null: dropped too).
fn known(
    path: &str,
    object: Map<String, Value>,
    keys: &[&str],
    nullable: &[&str],
    notes: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        if value.is_null() {
            let why = if nullable.contains(&key.as_str()) {
                "the store takes it as absent"
            } else {
                "the store wants the key absent"
            };
            notes.push(format!("`{path}.{key}`: null dropped ({why})"));
        } else if keys.contains(&key.as_str()) {
            out.insert(key, value);
        } else {
            notes.push(format!(
                "`{path}.{key}`: dropped, the store's schema has no such key (\"Unknown field.\")"
            ));
        }
    }
    out
}

fn object(path: &str, value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(format!("`{path}` is not an object")),
    }
}

/// Each element of the list at `object[key]` through `each`.
fn each(
    object: &mut Map<String, Value>,
    path: &str,
    key: &str,
    mut each: impl FnMut(&str, Value) -> Result<Value, String>,
) -> Result<(), String> {
    match object.remove(key) {
        None => Ok(()),
        Some(Value::Array(items)) => {
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| each(&format!("{path}.{key}[{i}]"), item))
                .collect::<Result<_, _>>()?;
            object.insert(key.to_string(), Value::Array(items));
            Ok(())
        }
        Some(_) => Err(format!("`{path}.{key}` is not a list")),
    }
}

fn function(
    flavour: Flavour,
    path: &str,
    value: Value,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let mut f = known(path, object(path, value)?, FUNCTION_KEYS, &[], notes);
    // vantage6 5 replaced a function's `type` (central|federated) by `step_type`.
    let (from, to) = match flavour {
        Flavour::V4 => ("step_type", "type"),
        Flavour::V5 => ("type", "step_type"),
    };
    let map = |kind: &str| match (flavour, kind) {
        (Flavour::V4, "central_compute") => Some("central"),
        (Flavour::V4, "federated_compute") => Some("federated"),
        (Flavour::V5, "central") => Some("central_compute"),
        (Flavour::V5, "federated") => Some("federated_compute"),
        _ => None,
    };
    if let Some(old) = f.get(from).and_then(Value::as_str).map(str::to_string)
        && !f.contains_key(to)
        && let Some(new) = map(&old)
    {
        f.remove(from);
        f.insert(to.to_string(), Value::String(new.to_string()));
        notes.push(format!(
            "`{path}.{from}` = \"{old}\" became `{to}` = \"{new}\" (the schema of this vantage6 version)"
        ));
    }
    each(&mut f, path, "databases", |p, d| {
        let mut d = known(p, object(p, d)?, DATABASE_KEYS, &[], notes);
        if flavour == Flavour::V4 && d.remove("multiple").is_some() {
            notes.push(format!(
                "`{p}.multiple`: dropped, databases have no `multiple` before vantage6 5"
            ));
        }
        Ok(Value::Object(d))
    })?;
    each(&mut f, path, "arguments", |p, a| {
        let mut a = object(p, a)?;
        // `default` for `default_value` (as in v6-extract-basics-py).
        if !a.contains_key("default_value")
            && let Some(default) = a.remove("default")
        {
            if default.is_null() {
                notes.push(format!(
                    "`{p}.default`: null dropped (and `default` is not a key of the store's schema)"
                ));
            } else {
                notes.push(format!("`{p}.default` became `default_value`"));
                a.insert("default_value".to_string(), default);
            }
        }
        // 5.0.3 takes null and JSON values for these, turning them into text itself
        // (`_StoreStringValueField`); 4.15.2 and the 5.0 alphas refuse both. v6.toml holds the
        // text either way.
        let (why, nullable): (_, &[&str]) = match flavour {
            Flavour::V4 => ("the store takes text", &[]),
            Flavour::V5 => (
                "the text the store turns it into",
                &["default_value", "conditional_value", "conditional_operator"],
            ),
        };
        let mut a = known(p, a, ARGUMENT_KEYS, nullable, notes);
        for key in ["default_value", "conditional_value"] {
            if let Some(value) = a.get(key).filter(|v| !v.is_string()).cloned() {
                let text = match &value {
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                notes.push(format!("`{p}.{key}`: {value} became \"{text}\" ({why})"));
                a.insert(key.to_string(), Value::String(text));
            }
        }
        Ok(Value::Object(a))
    })?;
    each(&mut f, path, "ui_visualizations", |p, v| {
        let mut v = object(p, v)?;
        if !v.contains_key("schema")
            && let Some(properties) = v.remove("properties")
        {
            notes.push(format!(
                "`{p}.properties` became `schema` (the store's key for it)"
            ));
            v.insert("schema".to_string(), properties);
        }
        Ok(Value::Object(known(p, v, VISUALIZATION_KEYS, &[], notes)))
    })?;
    Ok(Value::Object(f))
}

/// The TOML key for a JSON key: `-` for `_`, the one renaming there is.
fn toml_key(json_key: &str) -> String {
    json_key.replace('_', "-")
}

/// `[store]` for the normalised document.
fn store_table(
    output: Option<toml_edit::Value>,
    algorithm: &Map<String, Value>,
) -> Result<Table, String> {
    let mut store = Table::new();
    if let Some(output) = output {
        store.insert("output", Item::Value(output));
    }
    fill(&mut store, algorithm, ALGORITHM_KEYS)?;
    if let Some(functions) = algorithm.get("functions") {
        store.insert(
            "functions",
            list(functions, |function, table| {
                fill(table, function, FUNCTION_KEYS)?;
                for (key, keys) in [
                    ("databases", DATABASE_KEYS),
                    ("arguments", ARGUMENT_KEYS),
                    ("ui_visualizations", VISUALIZATION_KEYS),
                ] {
                    if let Some(items) = function.get(key) {
                        table.insert(&toml_key(key), list(items, |item, t| fill(t, item, keys))?);
                    }
                }
                Ok(())
            })?,
        );
    }
    Ok(store)
}

/// A list of objects as `[[...]]` tables, or `key = []` when empty (which `[[...]]` cannot
/// say, and the store's JSON distinguishes from an absent key).
fn list(
    items: &Value,
    mut fill_one: impl FnMut(&Map<String, Value>, &mut Table) -> Result<(), String>,
) -> Result<Item, String> {
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return Ok(toml_edit::value(toml_edit::Array::new()));
    }
    let mut tables = ArrayOfTables::new();
    let empty = Map::new();
    for item in items {
        let mut table = Table::new();
        fill_one(item.as_object().unwrap_or(&empty), &mut table)?;
        tables.push(table);
    }
    Ok(Item::ArrayOfTables(tables))
}

/// The scalar keys among `keys` (lists of objects are handled by [`list`]).
fn fill(table: &mut Table, object: &Map<String, Value>, keys: &[&str]) -> Result<(), String> {
    for key in keys {
        match object.get(*key) {
            None => {}
            Some(Value::Array(items))
                if ["functions", "databases", "arguments", "ui_visualizations"].contains(key)
                    && items.iter().all(Value::is_object) => {}
            Some(value) => {
                table.insert(&toml_key(key), toml_edit::value(toml_value(key, value)?));
            }
        }
    }
    Ok(())
}

/// A JSON value as TOML; `null` has no TOML form.
fn toml_value(key: &str, value: &Value) -> Result<toml_edit::Value, String> {
    Ok(match value {
        Value::Null => return Err(format!("`{key}` holds a null, which TOML cannot write")),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            (None, None) => return Err(format!("`{key}` holds a number TOML cannot write: {n}")),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(toml_value(key, item)?);
            }
            toml_edit::Value::Array(array)
        }
        Value::Object(object) => {
            let mut table = InlineTable::new();
            for (k, v) in object {
                table.insert(k, toml_value(key, v)?);
            }
            toml_edit::Value::InlineTable(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            Path::new("v6.toml"),
            "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"5.0\"\nimage = \"ghcr.io/o/a\"\nversion = \"1.0.0\"\n".to_string(),
        )
        .unwrap()
    }

    /// JSON values with the store's key names, nested as a submission is.
    fn json() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(
            [
                ALGORITHM_KEYS,
                FUNCTION_KEYS,
                ARGUMENT_KEYS,
                VISUALIZATION_KEYS,
            ]
            .concat()
            .into_iter()
            .chain(["functions", "default", "properties", "multiple", "x"])
            .collect::<Vec<_>>(),
        );
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        /// Whatever the JSON, import gives a manifest or an error; never a panic, and the
        /// manifest it gives keeps the original text in front.
        #[test]
        fn any_json_imports_or_is_refused_without_panic(value in json(), arguments in json()) {
            let manifest = manifest();
            let nested = serde_json::json!({
                "code_url": "u",
                "partitioning": "horizontal",
                "functions": [value.clone(), {"name": "f", "arguments": [arguments]}],
            });
            for document in [value, nested] {
                if let Ok(imported) = import(&manifest, &document.to_string(), "x.json") {
                    prop_assert!(imported.manifest.starts_with(&manifest.source));
                }
            }
        }
    }
}
