//! The store's input schema (`vantage6.algorithm.store.resource.schema.input_schema`,
//! `AlgorithmInputSchema` and its nested schemas, 4.15.2 and 5.0.3), as checks on `[store]`.
//!
//! Each check mirrors one rule of the schema, in its order, and quotes its reason; the
//! locations are the TOML's. Python's semantics are kept where they decide: a value is checked
//! only when it is "truthy" (an empty default is not checked), numbers are read as `int()` and
//! `float()` read them, and a default is compared with the allowed values as text.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::closest;

use super::{
    Context, Flavour, RawArgument, RawFunction, RawStore, RawVisualization, StoreError, store_text,
    to_json,
};

const PARTITIONINGS: &[&str] = &["horizontal", "vertical"];
const VISUALIZATIONS: &[&str] = &["table", "line"];
const OPERATORS: &[&str] = &["==", "!=", ">", "<", ">=", "<="];
/// The argument types, in the store's order (`ArgumentType`, `AlgorithmArgumentType`).
pub(super) const ARGUMENT_TYPES: &[&str] = &[
    "column",
    "column_list",
    "string",
    "string_list",
    "integer",
    "integer_list",
    "float",
    "float_list",
    "boolean",
    "json",
    "organization",
    "organization_list",
];
/// Types no argument may be conditional on: lists (not supported), organization and json.
const LIST_TYPES: &[&str] = &[
    "column_list",
    "string_list",
    "integer_list",
    "float_list",
    "organization_list",
];

const REQUIRED: &str = "(the store: \"Missing data for required field.\")";
const UNKNOWN: &str = "(the store: \"Unknown field.\")";

/// Checks `[store]` (at `span`) against the store's schema for `flavour`.
pub(super) fn check(
    cx: &Context<'_>,
    flavour: Flavour,
    store: &RawStore,
    span: Range<usize>,
) -> Result<(), StoreError> {
    for (key, value) in [
        ("code-url", store.code_url.is_some()),
        ("partitioning", store.partitioning.is_some()),
        ("functions", store.functions.is_some()),
    ] {
        if !value {
            let what = if key == "functions" {
                "at least one `[[store.functions]]` (or `functions = []`)".to_string()
            } else {
                format!("`{key}`")
            };
            return Err(cx.error(
                span.clone(),
                format!("[store] has no `{key}`, which the store requires {REQUIRED}"),
                Some(format!("add {what} under [store]")),
            ));
        }
    }
    if let Some(partitioning) = &store.partitioning {
        one_of(
            cx,
            flavour,
            partitioning,
            PARTITIONINGS,
            &format!("Partitioning '{}'", partitioning.get_ref()),
        )?;
    }
    for function in store.functions.iter().flatten() {
        check_function(cx, flavour, function)?;
    }
    Ok(())
}

/// `value` must be one of `allowed`: the store's message, with a suggestion.
fn one_of(
    cx: &Context<'_>,
    flavour: Flavour,
    value: &Spanned<String>,
    allowed: &[&str],
    what: &str,
) -> Result<(), StoreError> {
    if allowed.contains(&value.get_ref().as_str()) {
        return Ok(());
    }
    Err(cx.error(
        value.span(),
        not_allowed(flavour, what, allowed, false),
        closest(value.get_ref(), allowed).map(|m| format!("did you mean `{m}`?")),
    ))
}

/// The store's message for `what` (`Partitioning 'x'`) not being one of `allowed`. 4.15.2's
/// own validators name the value: `... is not one of the allowed values ['a', 'b']` (with a
/// colon before the list when `colon`: argument types and comparators). 5.0.3 validates with
/// marshmallow's `OneOf` (`validate.OneOf(....list())` in `input_schema.py`), whose message is
/// `Must be one of: a, b.`: given here after `what`, which it does not name.
fn not_allowed(flavour: Flavour, what: &str, allowed: &[&str], colon: bool) -> String {
    match flavour {
        Flavour::V4 => {
            let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
            let colon = if colon { ":" } else { "" };
            format!(
                "{what} is not one of the allowed values{colon} [{}]",
                list.join(", ")
            )
        }
        Flavour::V5 => format!("{what}: Must be one of: {}.", allowed.join(", ")),
    }
}

fn required<'a, T>(
    cx: &Context<'_>,
    value: &'a Option<Spanned<T>>,
    key: &str,
    table: &str,
    span: Range<usize>,
) -> Result<&'a Spanned<T>, StoreError> {
    value.as_ref().ok_or_else(|| {
        cx.error(
            span,
            format!("{table} has no `{key}`, which the store requires {REQUIRED}"),
            None,
        )
    })
}

fn check_function(
    cx: &Context<'_>,
    flavour: Flavour,
    function: &Spanned<RawFunction>,
) -> Result<(), StoreError> {
    let span = function.span();
    let f = function.get_ref();
    required(
        cx,
        &f.name,
        "name",
        "this [[store.functions]]",
        span.clone(),
    )?;
    let (kind, wrong) = match flavour {
        Flavour::V4 => (&f.kind, &f.step_type),
        Flavour::V5 => (&f.step_type, &f.kind),
    };
    if let Some(wrong) = wrong {
        let (other, release) = match flavour {
            Flavour::V4 => ("step-type", "4"),
            Flavour::V5 => ("type", "5"),
        };
        return Err(cx.error(
            wrong.span(),
            format!("`{other}` is not a key of a function for vantage6 {release} {UNKNOWN}"),
            Some(format!(
                "vantage6 {release} names a function's kind with `{}` ({})",
                flavour.kind_key(),
                flavour.kinds().join(", ")
            )),
        ));
    }
    let kind = required(
        cx,
        kind,
        flavour.kind_key(),
        "this [[store.functions]]",
        span.clone(),
    )?;
    let what = match flavour {
        Flavour::V4 => "Function type",
        Flavour::V5 => "Function step type",
    };
    one_of(
        cx,
        flavour,
        kind,
        flavour.kinds(),
        &format!("{what} '{}'", kind.get_ref()),
    )?;
    for database in f.databases.iter().flatten() {
        let d = database.get_ref();
        required(
            cx,
            &d.name,
            "name",
            "this [[store.functions.databases]]",
            database.span(),
        )?;
        if let (Some(multiple), Flavour::V4) = (&d.multiple, flavour) {
            return Err(cx.error(
                multiple.span(),
                format!("`multiple` is not a key of a database for vantage6 4 {UNKNOWN}"),
                Some("databases that take several inputs are a vantage6 5 feature".to_string()),
            ));
        }
    }
    let arguments: &[Spanned<RawArgument>] = f.arguments.as_deref().unwrap_or_default();
    for argument in arguments {
        check_argument(cx, flavour, argument)?;
    }
    check_conditions(cx, arguments)?;
    for visualization in f.ui_visualizations.iter().flatten() {
        check_visualization(cx, flavour, visualization)?;
    }
    Ok(())
}

/// An argument's own rules (`ArgumentInputSchema`).
fn check_argument(
    cx: &Context<'_>,
    flavour: Flavour,
    argument: &Spanned<RawArgument>,
) -> Result<(), StoreError> {
    let span = argument.span();
    let a = argument.get_ref();
    let table = "this [[store.functions.arguments]]";
    required(cx, &a.name, "name", table, span.clone())?;
    let kind = required(cx, &a.kind, "type", table, span.clone())?;
    if !ARGUMENT_TYPES.contains(&kind.get_ref().as_str()) {
        return Err(cx.error(
            kind.span(),
            not_allowed(
                flavour,
                &format!("Argument type '{}'", kind.get_ref()),
                ARGUMENT_TYPES,
                true,
            ),
            closest(kind.get_ref(), ARGUMENT_TYPES).map(|m| format!("did you mean `{m}`?")),
        ));
    }
    let kind_text = kind.get_ref().as_str();
    if let Some(operator) = &a.conditional_operator
        && !OPERATORS.contains(&operator.get_ref().as_str())
    {
        return Err(cx.error(
            operator.span(),
            not_allowed(
                flavour,
                &format!("Conditional comparator '{}'", operator.get_ref()),
                OPERATORS,
                true,
            ),
            None,
        ));
    }
    if let Some(values) = &a.allowed_values {
        for value in values.get_ref() {
            // A boolean passes: Python's `bool` is an `int`.
            if !matches!(
                value.get_ref(),
                toml::Value::String(_)
                    | toml::Value::Integer(_)
                    | toml::Value::Float(_)
                    | toml::Value::Boolean(_)
            ) {
                return Err(cx.error(
                    value.span(),
                    "the store refuses this allowed value: \"Values should be str, int or float\"",
                    None,
                ));
            }
        }
    }
    let default = text_of(cx, &a.default_value, "default-value")?;
    text_of(cx, &a.conditional_value, "conditional-value")?;
    let has_default = a.has_default_value.as_ref().is_some_and(|h| *h.get_ref());
    if let (Some((text, span)), false) = (&default, has_default)
        && !text.is_empty()
    {
        return Err(cx.error(
            span.clone(),
            "Default value cannot be given if has_default_value is False",
            Some("set `has-default-value = true`, or remove `default-value`".to_string()),
        ));
    }
    if let Some(on) = &a.conditional_on
        && !on.get_ref().is_empty()
        && !has_default
    {
        return Err(cx.error(
            on.span(),
            "Variable cannot be conditional on another variable if it has no default: arguments without defaults must always be specified",
            Some("set `has-default-value = true` on this argument".to_string()),
        ));
    }
    let on = a
        .conditional_on
        .as_ref()
        .filter(|o| !o.get_ref().is_empty());
    let operator = a
        .conditional_operator
        .as_ref()
        .filter(|o| !o.get_ref().is_empty());
    if on.is_some() != operator.is_some() {
        let at = on.map_or_else(
            || operator.map_or(span.clone(), Spanned::span),
            Spanned::span,
        );
        return Err(cx.error(
            at,
            "Either all conditional fields must be specified or none of them should be specified",
            Some(
                "a condition needs both `conditional-on` and `conditional-operator` (and, optionally, `conditional-value`)"
                    .to_string(),
            ),
        ));
    }
    if let Some((text, span)) = &default
        && !text.is_empty()
    {
        if let Some(reason) = default_refusal(kind_text, text) {
            return Err(cx.error(span.clone(), reason, None));
        }
        if let Some(values) = &a.allowed_values
            && !values.get_ref().is_empty()
            && !values
                .get_ref()
                .iter()
                .any(|v| matches!(v.get_ref(), toml::Value::String(s) if s == text))
        {
            return Err(cx.error(
                span.clone(),
                "Default value is not one of the allowed values",
                Some(
                    "the store compares the default with the allowed values as text: write the allowed values as strings"
                        .to_string(),
                ),
            ));
        }
    }
    if let Some(values) = &a.allowed_values {
        for value in values.get_ref() {
            let fits = match (kind_text, value.get_ref()) {
                ("integer", toml::Value::String(s)) => python_int(s),
                ("float", toml::Value::String(s)) => python_float(s),
                _ => true,
            };
            if !fits {
                let desired = if kind_text == "integer" {
                    "<class 'int'>"
                } else {
                    "<class 'float'>"
                };
                return Err(cx.error(
                    value.span(),
                    format!(
                        "Allowed values should be of type {desired} because the argument type is {kind_text}"
                    ),
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// The text the store will get for `value` (see [`store_text`]), and where it was written.
fn text_of(
    cx: &Context<'_>,
    value: &Option<Spanned<toml::Value>>,
    key: &str,
) -> Result<Option<(String, Range<usize>)>, StoreError> {
    value
        .as_ref()
        .map(|v| {
            store_text(v.get_ref())
                .map(|text| (text, v.span()))
                .ok_or_else(|| {
                    cx.error(
                        v.span(),
                        format!("`{key}` cannot be a date or a non-finite number inside a list or table: the store takes text"),
                        Some("write it as a string".to_string()),
                    )
                })
        })
        .transpose()
}

/// Why the store refuses `default` for an argument of type `kind`, if it does.
fn default_refusal(kind: &str, default: &str) -> Option<String> {
    let list = || serde_json::from_str::<serde_json::Value>(default).ok();
    let ok = match kind {
        "integer" | "organization" => python_int(default),
        "float" => python_float(default),
        "boolean" => ["true", "false", "1", "0"].contains(&default.to_lowercase().as_str()),
        "json" => list().is_some(),
        "string_list" | "column_list" => list().is_some_and(|v| v.is_array()),
        "integer_list" | "organization_list" => list().is_some_and(|v| {
            v.as_array()
                .is_some_and(|items| items.iter().all(|i| json_number(i, python_int)))
        }),
        "float_list" => list().is_some_and(|v| {
            v.as_array()
                .is_some_and(|items| items.iter().all(|i| json_number(i, python_float)))
        }),
        _ => true,
    };
    if ok {
        return None;
    }
    Some(match kind {
        "integer" | "organization" => format!(
            "Default value '{default}' is not a valid integer, while the argument type {kind} requires an integer"
        ),
        "float" => format!(
            "Default value '{default}' is not a valid float, while the argument type {kind} requires a float"
        ),
        "boolean" => format!(
            "Default value '{default}' is not a valid boolean, while the argument type {kind} requires a boolean. Please use 'true', 'false', '1', or '0'"
        ),
        "json" => format!(
            "Default value '{default}' is not a valid JSON object, while the argument type {kind} requires a JSON object"
        ),
        "string_list" | "column_list" => format!(
            "Default value '{default}' is not a valid JSON array, while the argument type {kind} requires a JSON array"
        ),
        "float_list" => format!(
            "Default value '{default}' is not a valid JSON array of floats, while the argument type {kind} requires a JSON array of floats"
        ),
        _ => format!(
            "Default value '{default}' is not a valid JSON array of integers, while the argument type {kind} requires a JSON array of integers"
        ),
    })
}

/// A JSON list item as Python's `int()`/`float()` take it: a number, a boolean, or text.
fn json_number(item: &serde_json::Value, text: fn(&str) -> bool) -> bool {
    match item {
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => true,
        serde_json::Value::String(s) => text(s),
        _ => false,
    }
}

/// Whether Python's `int()` reads `text` (surrounding whitespace, a sign, `_` between digits).
pub(super) fn python_int(text: &str) -> bool {
    let t = text.trim();
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    !t.is_empty()
        && t.split('_')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether Python's `float()` reads `text` (also `inf`, `nan`, exponents, `_` between digits).
pub(super) fn python_float(text: &str) -> bool {
    let t = text.trim();
    let digits_around = |i: usize| {
        i > 0
            && t.as_bytes()[i - 1].is_ascii_digit()
            && t.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit)
    };
    if t.match_indices('_').any(|(i, _)| !digits_around(i)) {
        return false;
    }
    let plain = t.replace('_', "");
    let bare = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    // Rust also reads `infinity` and `nan` in any case, as Python does; but not `.`/`e5`.
    !bare.is_empty() && bare != "." && plain.parse::<f64>().is_ok()
}

/// A function's rules on its arguments together (`FunctionInputSchema`): unique names, and
/// conditions on an existing argument of a supported type with a value of that type, without
/// cycles.
fn check_conditions(
    cx: &Context<'_>,
    arguments: &[Spanned<RawArgument>],
) -> Result<(), StoreError> {
    let name = |a: &Spanned<RawArgument>| {
        a.get_ref()
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_default()
    };
    let mut seen = BTreeSet::new();
    for argument in arguments {
        if !seen.insert(name(argument)) {
            let at = argument
                .get_ref()
                .name
                .as_ref()
                .map_or(argument.span(), Spanned::span);
            return Err(cx.error(at, "All arguments must have a unique name", None));
        }
    }
    for argument in arguments {
        let a = argument.get_ref();
        let arg_name = name(argument);
        let Some(on) = a
            .conditional_on
            .as_ref()
            .filter(|o| !o.get_ref().is_empty())
        else {
            continue;
        };
        let target_name = on.get_ref();
        let Some(target) = arguments.iter().find(|t| &name(t) == target_name) else {
            return Err(cx.error(
                on.span(),
                format!(
                    "The argument '{arg_name}' is conditional on '{target_name}', but no other argument with that name exists."
                ),
                None,
            ));
        };
        if target_name == &arg_name {
            return Err(cx.error(
                on.span(),
                format!("The argument '{arg_name}' is conditional on itself."),
                None,
            ));
        }
        let target_kind = target
            .get_ref()
            .kind
            .as_ref()
            .map(|k| k.get_ref().as_str())
            .unwrap_or_default();
        if LIST_TYPES.contains(&target_kind) {
            return Err(cx.error(
                on.span(),
                format!(
                    "The argument '{arg_name}' is conditional on '{target_name}', but the conditional argument is of a list type, which is not supported."
                ),
                None,
            ));
        }
        if matches!(target_kind, "organization" | "json") {
            return Err(cx.error(
                on.span(),
                format!(
                    "The argument '{arg_name}' is conditional on '{target_name}', but the conditional argument is of type '{target_kind}', which is not supported."
                ),
                None,
            ));
        }
        let Some((value, span)) = text_of(cx, &a.conditional_value, "conditional-value")? else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let refusal = match target_kind {
            "integer" if !python_int(&value) => Some(format!(
                "Conditional value '{value}' is not a valid integer, while the conditional argument '{target_name}' requires an integer"
            )),
            "float" if !python_float(&value) => Some(format!(
                "Conditional value '{value}' is not a valid float, while the conditional argument '{target_name}' requires a float"
            )),
            "boolean" if !["true", "false", "1", "0"].contains(&value.to_lowercase().as_str()) => {
                Some(format!(
                    "Conditional value '{value}' is not a valid boolean, while the conditional argument '{target_name}' requires a boolean. Please use 'true', 'false', '1', or '0'"
                ))
            }
            _ => None,
        };
        if let Some(refusal) = refusal {
            return Err(cx.error(span, refusal, None));
        }
    }
    // Each argument depends on at most one other: follow each chain until it ends or comes
    // back to where it started.
    for argument in arguments {
        let start = name(argument);
        let mut chain = vec![start.clone()];
        let mut current = argument;
        while let Some(on) = current.get_ref().conditional_on.as_ref() {
            let Some(next) = arguments.iter().find(|t| &name(t) == on.get_ref()) else {
                break;
            };
            if name(next) == start {
                return Err(cx.error(
                    argument
                        .get_ref()
                        .conditional_on
                        .as_ref()
                        .map_or(argument.span(), Spanned::span),
                    format!(
                        "Circular conditional arguments detected: {} -> {start}",
                        chain.join(" -> ")
                    ),
                    None,
                ));
            }
            if chain.len() > arguments.len() {
                // A cycle that does not pass through `start`: found from one of its members.
                break;
            }
            chain.push(name(next));
            current = next;
        }
    }
    Ok(())
}

/// A visualization's rules (`UIVisualizationInputSchema`): its type, and its `schema` against
/// the store's JSON schema for that type (checked only when not empty, as the store does).
fn check_visualization(
    cx: &Context<'_>,
    flavour: Flavour,
    visualization: &Spanned<RawVisualization>,
) -> Result<(), StoreError> {
    let v = visualization.get_ref();
    let table = "this [[store.functions.ui-visualizations]]";
    required(cx, &v.name, "name", table, visualization.span())?;
    let kind = required(cx, &v.kind, "type", table, visualization.span())?;
    one_of(
        cx,
        flavour,
        kind,
        VISUALIZATIONS,
        &format!("UI visualization type '{}'", kind.get_ref()),
    )?;
    let Some(schema) = &v.schema else {
        return Ok(());
    };
    if schema.get_ref().is_empty() {
        return Ok(());
    }
    let json = to_json(&toml::Value::Table(schema.get_ref().clone()));
    let problem = match json.as_ref().and_then(serde_json::Value::as_object) {
        None => Some("it holds a date or a non-finite number".to_string()),
        Some(object) => visualization_schema_problem(kind.get_ref(), object),
    };
    match problem {
        Some(problem) => Err(cx.error(
            schema.span(),
            format!("Schema does not match requirements for that visualization type: {problem}"),
            Some(match kind.get_ref().as_str() {
                "line" => "a line's schema has `x` and `y` (column names), and may have `location` (a list of keys into the result), `y_axis_min` and `y_axis_max` (numbers)".to_string(),
                _ => "a table's schema may have `location` (a list of keys into the result) and `columns` (a list of column names)".to_string(),
            }),
        )),
        None => Ok(()),
    }
}

/// The store's `TABLE_SCHEMA`/`LINE_SCHEMA` (`ui_visualization_schemas.py`) as code: the first
/// violation, worded as `jsonschema` words it.
fn visualization_schema_problem(
    kind: &str,
    schema: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let (allowed, required): (&[&str], &[&str]) = match kind {
        "line" => (
            &["location", "x", "y", "y_axis_min", "y_axis_max"],
            &["x", "y"],
        ),
        _ => (&["location", "columns"], &[]),
    };
    for key in required {
        if !schema.contains_key(*key) {
            return Some(format!("'{key}' is a required property"));
        }
    }
    for (key, value) in schema {
        let fits = match key.as_str() {
            "location" | "columns" => value
                .as_array()
                .is_some_and(|items| items.iter().all(serde_json::Value::is_string)),
            "x" | "y" => value.is_string(),
            "y_axis_min" | "y_axis_max" => value.is_number(),
            _ => true,
        };
        if !allowed.contains(&key.as_str()) {
            return Some(format!(
                "Additional properties are not allowed ('{key}' was unexpected)"
            ));
        }
        if !fits {
            let wanted = match key.as_str() {
                "location" | "columns" => "an array of strings",
                "x" | "y" => "of type 'string'",
                _ => "of type 'number'",
            };
            return Some(format!("`{key}` = {value} is not {wanted}"));
        }
    }
    None
}
