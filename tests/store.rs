//! `cargo v6 store`: real `algorithm_store.json` files from vantage6's repositories imported
//! into v6.toml and exported again, checked by the algorithm store's own input schema (the
//! PyPI package, in the venvs `scripts/stack up` makes), and the store's refusals made here
//! too, with the same reasons.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use support::{cargo_v6, text};

/// The real files (tests/fixtures/store/README.md says where each comes from).
const FIXTURES: &[&str] = &[
    "summary-4.9",
    "crosstab-4.5",
    "kaplan-meier-4.5",
    "glm-4.10",
    "glm-5.0",
    "average-4.15",
    "extract-basics-5.0",
    "preprocess-basics-5.0",
];

/// The code URL the test adds where a real file has none (the store requires one).
const CODE_URL: &str = "https://example.org/code";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/store")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The head of every v6.toml here: 8 lines, so that `[store]` starts on line 10 when appended.
fn manifest_head(vantage6: &str, image: &str) -> String {
    format!(
        "# An algorithm, as `cargo v6 init` would describe it.\n[algorithm]\nname = \"algorithm\"   # the package\nwrapper = \"python\"\nvantage6 = \"{vantage6}\"\nimage = \"{image}\"\nversion = \"1.0.0\"\n# (nothing else)\n"
    )
}

/// A project whose v6.toml matches `document`'s vantage6 version and image (without tag).
fn project_for(document: &Value) -> tempfile::TempDir {
    let image = document["image"].as_str().unwrap();
    let image = image.split('@').next().unwrap();
    let image = match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => image,
    };
    let dir = tempfile::tempdir().unwrap();
    let version = document["vantage6_version"].as_str().unwrap();
    std::fs::write(dir.path().join("v6.toml"), manifest_head(version, image)).unwrap();
    dir
}

fn stderr(output: &Output) -> String {
    text(&output.stderr)
}

/// Imports `file` into `dir`'s v6.toml; adds `code-url` when the file has none, as import
/// asks. Returns import's stderr.
fn import(dir: &Path, file: &Path) -> String {
    let output = cargo_v6(dir, &["v6", "store", "import", file.to_str().unwrap()]);
    let err = stderr(&output);
    let manifest = dir.join("v6.toml");
    if err.contains("`code_url` is missing") {
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(err.contains("[store] has no `code-url`"), "{err}");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let text = text.replacen(
            "[store]\n",
            &format!("[store]\ncode-url = \"{CODE_URL}\"\n"),
            1,
        );
        std::fs::write(&manifest, text).unwrap();
    } else {
        assert!(output.status.success(), "{err}");
    }
    err
}

fn export(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["v6", "store", "export", "--offline"];
    args.extend_from_slice(extra);
    let output = cargo_v6(dir, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Import then export of the fixture `name`: the exported document.
fn round_trip(name: &str) -> Value {
    let file = fixtures().join(format!("{name}.json"));
    let dir = project_for(&read_json(&file));
    import(dir.path(), &file);
    export(dir.path(), &[])
}

#[test]
fn real_store_files_round_trip_to_what_the_store_accepts() {
    for name in FIXTURES {
        let exported = round_trip(name);
        // The expected documents were reviewed against the originals: only the normalisations
        // import reports differ, `image` names the exact version tag, and `code_url` is added
        // where the original had none.
        let expected = read_json(&fixtures().join(format!("expected/{name}.json")));
        assert_eq!(exported, expected, "{name}");
        // And the export is a fixed point: imported again, it comes back the same, unchanged.
        let again = tempfile::tempdir().unwrap();
        let file = again.path().join("algorithm_store.json");
        std::fs::write(&file, serde_json::to_string_pretty(&exported).unwrap()).unwrap();
        let project = project_for(&exported);
        let notes = import(project.path(), &file);
        assert!(
            !notes.contains("note:"),
            "{name}: a normalised file needs no change: {notes}"
        );
        assert_eq!(export(project.path(), &[]), exported, "{name}");
    }
}

#[test]
fn import_says_what_it_normalised() {
    let cases = [
        ("summary-4.9", "`developer_id`: dropped"),
        (
            "summary-4.9",
            "`functions[0].arguments[0].conditional_operator`: null dropped (the store wants the key absent)",
        ),
        ("crosstab-4.5", "`code_url` is missing"),
        (
            "kaplan-meier-4.5",
            "`functions[0].ui_visualizations[1].properties` became `schema`",
        ),
        (
            "extract-basics-5.0",
            "`functions[1].arguments[0].default`: null dropped",
        ),
        (
            "preprocess-basics-5.0",
            "`functions[1].arguments[3].default_value`: true became \"true\"",
        ),
        (
            "glm-5.0",
            "`functions[0].arguments[0].conditional_operator`: null dropped (the store takes it as absent)",
        ),
    ];
    for (name, note) in cases {
        let file = fixtures().join(format!("{name}.json"));
        let dir = project_for(&read_json(&file));
        let notes = import(dir.path(), &file);
        assert!(notes.contains(note), "{name}: expected `{note}` in {notes}");
    }
}

/// The interpreter with the store's schema for `major`; the test fails (never skips) without.
fn schema_python(major: u8) -> String {
    let var = format!("V6_STORE_SCHEMA_PYTHON_{major}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `scripts/stack up` (it makes the venvs with the algorithm store's schema), then `eval \"$(scripts/stack env)\"`, or run the tests with scripts/test"
        )
    })
}

/// What the store's real `AlgorithmInputSchema().validate()` says of each document.
fn store_says(major: u8, documents: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let path = dir.path().join(format!("{i}.json"));
            std::fs::write(&path, d.to_string()).unwrap();
            path
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/store_schema.py");
    let output = std::process::Command::new(schema_python(major))
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let answers: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), documents.len());
    answers
}

fn major_of(document: &Value) -> u8 {
    match document["vantage6_version"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
    {
        Some("4") => 4,
        Some("5") => 5,
        other => panic!("no schema for {other:?}"),
    }
}

/// Hand-written v6.toml `[store]` sections that use every kind of value, for both majors.
fn valid_sections() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "4.15",
            r#"[store]
description = "Every argument type"
code-url = "https://example.org/code"
documentation-url = "https://example.org/docs"
partitioning = "vertical"
submission-comments = "Written in v6.toml"

[[store.functions]]
name = "central"
display-name = "Central"
type = "central"
standalone = true
databases = []

[[store.functions.arguments]]
name = "flag"
type = "boolean"
has-default-value = true
default-value = true

[[store.functions.arguments]]
name = "column"
type = "column"
has-default-value = true
conditional-on = "flag"
conditional-operator = "=="
conditional-value = true

[[store.functions.arguments]]
name = "columns"
type = "column_list"
has-default-value = true
default-value = ["a", "b"]

[[store.functions.arguments]]
name = "count"
type = "integer"
has-default-value = true
default-value = 3
allowed-values = ["1", "3"]

[[store.functions.arguments]]
name = "after_count"
type = "string"
has-default-value = true
conditional-on = "count"
conditional-operator = ">="
conditional-value = 2

[[store.functions.arguments]]
name = "ratio"
type = "float"
has-default-value = true
default-value = 0.5

[[store.functions.arguments]]
name = "ratios"
type = "float_list"
has-default-value = true
default-value = [0.5, 1]

[[store.functions.arguments]]
name = "counts"
type = "integer_list"
has-default-value = true
default-value = "[1, 2]"

[[store.functions.arguments]]
name = "options"
type = "json"
has-default-value = true
default-value = { a = 1 }
is-frontend-only = false

[[store.functions.arguments]]
name = "organization"
type = "organization"

[[store.functions.arguments]]
name = "organizations"
type = "organization_list"

[[store.functions.arguments]]
name = "words"
type = "string_list"
allowed-values = ["x", 2, 2.5, true]

[[store.functions.ui-visualizations]]
name = "Curve"
type = "line"
schema = { x = "t", y = "s", location = ["curve"], y_axis_min = 0, y_axis_max = 1.5 }

[[store.functions.ui-visualizations]]
name = "Table"
type = "table"
"#,
        ),
        (
            "5.0",
            r#"[store]
name = "Five"
code-url = "https://example.org/code"
partitioning = "horizontal"

[[store.functions]]
name = "extract"
step-type = "data_extraction"

[[store.functions.databases]]
name = "inputs"
multiple = true

[[store.functions]]
name = "compute"
step-type = "federated_compute"
"#,
        ),
    ]
}

#[test]
fn exports_pass_the_stores_own_schema() {
    let mut documents: Vec<Value> = FIXTURES.iter().map(|name| round_trip(name)).collect();
    for (vantage6, section) in valid_sections() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("v6.toml"),
            format!("{}\n{section}", manifest_head(vantage6, "ghcr.io/o/a")),
        )
        .unwrap();
        documents.push(export(dir.path(), &[]));
    }
    for major in [4, 5] {
        let ours: Vec<Value> = documents
            .iter()
            .filter(|d| major_of(d) == major)
            .cloned()
            .collect();
        assert!(
            ours.len() >= 3,
            "vantage6 {major}: {} documents",
            ours.len()
        );
        for (document, answer) in ours.iter().zip(store_says(major, &ours)) {
            assert_eq!(answer, json!({}), "the store refuses {document:#}");
        }
    }
}

/// A submission the store takes, for the refusals below to break one rule each.
fn base(major: u8) -> Value {
    let mut doc = json!({
        "name": "Base",
        "image": "ghcr.io/o/a",
        "vantage6_version": if major == 4 { "4.15" } else { "5.0" },
        "code_url": "https://example.org/code",
        "partitioning": "horizontal",
        "functions": [{
            "name": "f",
            "databases": [{"name": "db"}],
            "arguments": [
                {"name": "flag", "type": "boolean", "has_default_value": true},
                {"name": "n", "type": "integer", "has_default_value": true},
                {"name": "cols", "type": "column_list", "has_default_value": true},
                {"name": "opts", "type": "json", "has_default_value": true},
                {"name": "org", "type": "organization", "has_default_value": true}
            ],
            "ui_visualizations": [{"name": "t", "type": "table"}]
        }]
    });
    let function = &mut doc["functions"][0];
    if major == 4 {
        function["type"] = json!("central");
    } else {
        function["step_type"] = json!("central_compute");
    }
    doc
}

type Mutation = fn(&mut Value);

/// Each case: the vantage6 major, a change that breaks one of the store's rules, a piece of
/// cargo v6's message and a piece of the store's own answer.
fn refusals() -> Vec<(u8, Mutation, &'static str, &'static str)> {
    fn arg(doc: &mut Value, i: usize) -> &mut Value {
        &mut doc["functions"][0]["arguments"][i]
    }
    vec![
        (
            4,
            |d| d["partitioning"] = json!("diagonal"),
            "Partitioning 'diagonal' is not one of the allowed values",
            "Partitioning 'diagonal' is not one of the allowed values",
        ),
        (
            4,
            |d| {
                d.as_object_mut().unwrap().remove("code_url");
            },
            "[store] has no `code-url`",
            "Missing data for required field.",
        ),
        (
            4,
            |d| {
                d.as_object_mut().unwrap().remove("partitioning");
            },
            "[store] has no `partitioning`",
            "Missing data for required field.",
        ),
        (
            4,
            |d| d["functions"][0]["type"] = json!("local"),
            "Function type 'local' is not one of the allowed values",
            "Function type 'local' is not one of the allowed values",
        ),
        (
            5,
            |d| d["functions"][0]["step_type"] = json!("compute"),
            "Function step type 'compute': Must be one of: data_extraction, preprocessing,",
            "Must be one of: data_extraction, preprocessing, federated_compute",
        ),
        (
            5,
            |d| d["partitioning"] = json!("diagonal"),
            "Partitioning 'diagonal': Must be one of: horizontal, vertical.",
            "Must be one of: horizontal, vertical.",
        ),
        (
            5,
            |d| arg(d, 1)["type"] = json!("date"),
            "Argument type 'date': Must be one of: column, column_list,",
            "Must be one of: column, column_list,",
        ),
        (
            5,
            |d| {
                arg(d, 1)["conditional_on"] = json!("flag");
                arg(d, 1)["conditional_operator"] = json!("=~");
            },
            "Conditional comparator '=~': Must be one of: ==, !=, >, <, >=, <=.",
            "Must be one of: ==, !=, >, <, >=, <=.",
        ),
        (
            5,
            |d| {
                let f = d["functions"][0].as_object_mut().unwrap();
                f.remove("step_type");
                f.insert("type".into(), json!("local"));
            },
            "`type` is not a key of a function for vantage6 5",
            "Unknown field.",
        ),
        (
            4,
            |d| {
                d["functions"][0].as_object_mut().unwrap().remove("name");
            },
            "has no `name`",
            "Missing data for required field.",
        ),
        (
            4,
            |d| arg(d, 1)["type"] = json!("date"),
            "Argument type 'date' is not one of the allowed values",
            "Argument type 'date' is not one of the allowed values",
        ),
        (
            4,
            |d| {
                arg(d, 1)["conditional_on"] = json!("flag");
                arg(d, 1)["conditional_operator"] = json!("=~");
            },
            "Conditional comparator '=~' is not one of the allowed values",
            "Conditional comparator '=~' is not one of the allowed values",
        ),
        (
            4,
            |d| {
                arg(d, 1)["has_default_value"] = json!(false);
                arg(d, 1)["default_value"] = json!("3");
            },
            "Default value cannot be given if has_default_value is False",
            "Default value cannot be given if has_default_value is False",
        ),
        (
            5,
            |d| {
                arg(d, 1)["has_default_value"] = json!(false);
                arg(d, 1)["conditional_on"] = json!("flag");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "Variable cannot be conditional on another variable if it has no default",
            "Variable cannot be conditional on another variable if it has no default",
        ),
        (
            4,
            |d| arg(d, 1)["conditional_on"] = json!("flag"),
            "Either all conditional fields must be specified",
            "Either all conditional fields must be specified",
        ),
        (
            4,
            |d| arg(d, 1)["default_value"] = json!("three"),
            "Default value 'three' is not a valid integer",
            "Default value 'three' is not a valid integer",
        ),
        (
            4,
            |d| {
                arg(d, 1)["type"] = json!("float");
                arg(d, 1)["default_value"] = json!("x");
            },
            "is not a valid float",
            "is not a valid float",
        ),
        (
            4,
            |d| arg(d, 0)["default_value"] = json!("yes"),
            "Default value 'yes' is not a valid boolean",
            "Default value 'yes' is not a valid boolean",
        ),
        (
            5,
            |d| arg(d, 3)["default_value"] = json!("{"),
            "is not a valid JSON object",
            "is not a valid JSON object",
        ),
        (
            4,
            |d| arg(d, 2)["default_value"] = json!("a"),
            "Default value 'a' is not a valid JSON array",
            "Default value 'a' is not a valid JSON array",
        ),
        (
            4,
            |d| {
                arg(d, 2)["type"] = json!("integer_list");
                arg(d, 2)["default_value"] = json!("[1, \"a\"]");
            },
            "is not a valid JSON array of integers",
            "is not a valid JSON array of integers",
        ),
        (
            5,
            |d| {
                arg(d, 2)["type"] = json!("float_list");
                arg(d, 2)["default_value"] = json!("[\"x\"]");
            },
            "is not a valid JSON array of floats",
            "is not a valid JSON array of floats",
        ),
        (
            4,
            |d| arg(d, 1)["allowed_values"] = json!(["a"]),
            "Allowed values should be of type <class 'int'>",
            "Allowed values should be of type <class 'int'>",
        ),
        (
            4,
            |d| arg(d, 1)["allowed_values"] = json!([[1]]),
            "Values should be str, int or float",
            "Values should be str, int or float",
        ),
        (
            4,
            |d| {
                arg(d, 1)["allowed_values"] = json!([1, 2]);
                arg(d, 1)["default_value"] = json!("2");
            },
            "Default value is not one of the allowed values",
            "Default value is not one of the allowed values",
        ),
        (
            4,
            |d| arg(d, 1)["name"] = json!("flag"),
            "All arguments must have a unique name",
            "All arguments must have a unique name",
        ),
        (
            4,
            |d| {
                arg(d, 1)["conditional_on"] = json!("nothing");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "but no other argument with that name exists",
            "but no other argument with that name exists",
        ),
        (
            5,
            |d| {
                arg(d, 1)["conditional_on"] = json!("n");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "The argument 'n' is conditional on itself.",
            "The argument 'n' is conditional on itself.",
        ),
        (
            4,
            |d| {
                arg(d, 1)["conditional_on"] = json!("cols");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "the conditional argument is of a list type, which is not supported",
            "the conditional argument is of a list type, which is not supported",
        ),
        (
            4,
            |d| {
                arg(d, 1)["conditional_on"] = json!("opts");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "is of type 'json', which is not supported",
            "is of type 'json', which is not supported",
        ),
        (
            5,
            |d| {
                arg(d, 1)["conditional_on"] = json!("org");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "is of type 'organization', which is not supported",
            "is of type 'organization', which is not supported",
        ),
        (
            4,
            |d| {
                arg(d, 0)["conditional_on"] = json!("n");
                arg(d, 0)["conditional_operator"] = json!(">");
                arg(d, 0)["conditional_value"] = json!("many");
            },
            "Conditional value 'many' is not a valid integer",
            "Conditional value 'many' is not a valid integer",
        ),
        (
            4,
            |d| {
                arg(d, 1)["conditional_on"] = json!("flag");
                arg(d, 1)["conditional_operator"] = json!("==");
                arg(d, 1)["conditional_value"] = json!("yes");
            },
            "Conditional value 'yes' is not a valid boolean",
            "Conditional value 'yes' is not a valid boolean",
        ),
        (
            5,
            |d| {
                arg(d, 0)["conditional_on"] = json!("n");
                arg(d, 0)["conditional_operator"] = json!("==");
                arg(d, 1)["conditional_on"] = json!("flag");
                arg(d, 1)["conditional_operator"] = json!("==");
            },
            "Circular conditional arguments detected: flag -> n -> flag",
            "Circular conditional arguments detected: flag -> n -> flag",
        ),
        (
            4,
            |d| d["functions"][0]["ui_visualizations"][0]["type"] = json!("pie"),
            "UI visualization type 'pie' is not one of the allowed values",
            "UI visualization type 'pie' is not one of the allowed values",
        ),
        (
            5,
            |d| d["functions"][0]["ui_visualizations"][0]["type"] = json!("pie"),
            "UI visualization type 'pie': Must be one of: table, line.",
            "Must be one of: table, line.",
        ),
        (
            4,
            |d| {
                let v = &mut d["functions"][0]["ui_visualizations"][0];
                v["type"] = json!("line");
                v["schema"] = json!({"x": "t"});
            },
            "'y' is a required property",
            "'y' is a required property",
        ),
        (
            5,
            |d| d["functions"][0]["ui_visualizations"][0]["schema"] = json!({"rows": []}),
            "Additional properties are not allowed ('rows' was unexpected)",
            "Additional properties are not allowed ('rows' was unexpected)",
        ),
    ]
}

#[test]
fn what_the_store_refuses_is_refused_here_with_its_reason() {
    let cases = refusals();
    for major in [4u8, 5] {
        let ours: Vec<_> = cases.iter().filter(|c| c.0 == major).collect();
        let mut documents = vec![base(major)];
        documents.extend(ours.iter().map(|(_, mutate, _, _)| {
            let mut doc = base(major);
            mutate(&mut doc);
            doc
        }));
        let answers = store_says(major, &documents);
        assert_eq!(answers[0], json!({}), "the base document is valid");
        // The base imports and exports as it is.
        let dir = project_for(&documents[0]);
        let file = dir.path().join("algorithm_store.json");
        std::fs::write(&file, documents[0].to_string()).unwrap();
        import(dir.path(), &file);
        for (((_, _, message, reason), document), answer) in
            ours.iter().zip(&documents[1..]).zip(&answers[1..])
        {
            assert!(
                answer.to_string().contains(reason),
                "the store's schema: expected `{reason}` in {answer}"
            );
            let dir = project_for(document);
            let file = dir.path().join("algorithm_store.json");
            std::fs::write(&file, document.to_string()).unwrap();
            let output = cargo_v6(
                dir.path(),
                &["v6", "store", "import", "algorithm_store.json"],
            );
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{reason}: {err}");
            assert!(err.contains(message), "expected `{message}` in {err}");
            assert!(err.contains("--> v6.toml:"), "no place in v6.toml: {err}");
            // And export refuses it too, pointing at the same place.
            let output = cargo_v6(dir.path(), &["v6", "store", "export", "--offline"]);
            assert_eq!(output.status.code(), Some(2));
            assert!(stderr(&output).contains(message), "{}", stderr(&output));
        }
    }
}

#[test]
fn import_keeps_the_rest_of_v6_toml_byte_for_byte() {
    let file = fixtures().join("average-4.15.json");
    let head = "# Top comment\n\n[algorithm]  # the algorithm\nname   =   \"v6-average-py\" # odd spacing\nwrapper = 'python'\nvantage6 = \"4.15\"\nimage = \"ghcr.io/vantage6/algorithm/average\"\nversion = \"1.0.0\"\n\n[publish]\n# a comment in publish\nrelease-tag-prefix = \"\"\n# trailing comment\n";
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("v6.toml");
    std::fs::write(&manifest, head).unwrap();
    // --dry-run prints and writes nothing.
    let output = cargo_v6(
        dir.path(),
        &["v6", "store", "import", file.to_str().unwrap(), "--dry-run"],
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), head);
    let printed = text(&output.stdout);
    assert!(printed.starts_with(head), "{printed}");
    import(dir.path(), &file);
    let written = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        written.starts_with(&format!("{head}\n[store]\n")),
        "{written}"
    );

    // An existing [store] is replaced; its `output` stays, and the tables after it are kept.
    let tail = "\n[sign]\n# after store\nformat = \"both\"\n";
    let old_store =
        "[store]\noutput = \"store.json\" # where publish writes\ndescription = \"old\"\n";
    std::fs::write(&manifest, format!("{head}{old_store}{tail}")).unwrap();
    let output = cargo_v6(
        dir.path(),
        &["v6", "store", "import", file.to_str().unwrap()],
    );
    let err = stderr(&output);
    assert!(err.contains("replaced the [store] section"), "{err}");
    let written = std::fs::read_to_string(&manifest).unwrap();
    // The comment right above the old [store] belongs to it, and moves with it.
    let (above, comment) = head.split_at(head.find("# trailing comment").unwrap());
    assert!(
        written.starts_with(&format!(
            "{above}{tail}\n{comment}[store]\noutput = \"store.json\" # where publish writes\n"
        )),
        "{written}"
    );
    assert!(!written.contains("description = \"old\""), "{written}");
}

#[test]
fn errors_point_at_v6_toml_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("v6.toml");
    let head = manifest_head("4.15", "ghcr.io/o/a");
    let write = |store: &str| std::fs::write(&manifest, format!("{head}\n{store}")).unwrap();
    // No [store]: exit 2 with a hint.
    std::fs::write(&manifest, &head).unwrap();
    let output = cargo_v6(dir.path(), &["v6", "store", "export", "--offline"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has no [store] section"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("cargo v6 store import"));
    // A typo: the place and a suggestion.
    write(
        "[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\nfunctions = []\ncode_url = \"x\"\n",
    );
    let output = cargo_v6(dir.path(), &["v6", "store", "export", "--offline"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown key `code_url`") && err.contains("--> v6.toml:14:1"),
        "{err}"
    );
    assert!(err.contains("did you mean `code-url`?"), "{err}");
    // Other commands read v6.toml with a [store] section as before.
    let output = cargo_v6(dir.path(), &["v6", "dockerfile"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // A file that is not JSON.
    std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
    let output = cargo_v6(dir.path(), &["v6", "store", "import", "bad.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`bad.json` is not an algorithm store document"),
        "{}",
        stderr(&output)
    );
    // A vantage6 without a store.
    std::fs::write(
        &manifest,
        format!(
            "{}\n[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\nfunctions = []\n",
            manifest_head("3.11", "ghcr.io/o/a")
                .replace("\"python\"", "\"minimal\"")
                .replace(
                    "# (nothing else)\n",
                    "[build]\nbase = \"busybox\"\ncommand = \"true\"\n"
                )
        ),
    )
    .unwrap();
    let output = cargo_v6(dir.path(), &["v6", "store", "export", "--offline"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no schema for vantage6 3.11") && err.contains("--> v6.toml:5:12"),
        "{err}"
    );
}

#[test]
fn import_refuses_what_v6_toml_cannot_hold_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("v6.toml");
    let head = manifest_head("4.15", "ghcr.io/o/a");
    std::fs::write(&manifest, &head).unwrap();
    let mut document = base(4);
    // A visualization schema nested 100 deep: TOML readers stop far earlier.
    let mut deep = json!({});
    for _ in 0..100 {
        deep = json!({ "a": deep });
    }
    document["functions"][0]["ui_visualizations"] =
        json!([{"name": "v", "type": "table", "schema": deep}]);
    let file = dir.path().join("deep.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let output = cargo_v6(dir.path(), &["v6", "store", "import", "deep.json"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot import `deep.json`: the v6.toml it would write cannot be loaded"),
        "{err}"
    );
    assert!(
        err.contains("`functions[0].ui_visualizations[0].schema` nests 101 levels deep"),
        "{err}"
    );
    assert!(!err.contains("Imported"), "{err}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), head);
    // 800 KB of DEL, a control character JSON carries as one byte and TOML escapes in six:
    // 4.8 MB, over the 4 MiB a manifest may have.
    let mut document = base(4);
    document["description"] = json!("\u{7f}".repeat(800_000));
    std::fs::write(&file, document.to_string()).unwrap();
    let output = cargo_v6(dir.path(), &["v6", "store", "import", "deep.json"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bytes, over the 4194304 a v6.toml may have"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), head);
    // Every command still loads v6.toml.
    let output = cargo_v6(dir.path(), &["v6", "dockerfile"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn import_into_a_workspace_member_loads_it_with_the_workspace() {
    // The member's v6.toml gives only a name: wrapper, vantage6 and image are the root's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v6.toml"),
        "[workspace]\nmembers = [\"algorithms/*\"]\n[workspace.algorithm]\nwrapper = \"python\"\nvantage6 = \"4.15\"\nimage = \"ghcr.io/vantage6/algorithm/{name}\"\n",
    )
    .unwrap();
    let member = dir.path().join("algorithms/summary");
    std::fs::create_dir_all(&member).unwrap();
    std::fs::write(
        member.join("v6.toml"),
        "[algorithm]\nname = \"summary\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    let file = fixtures().join("summary-4.9.json");
    let output = cargo_v6(&member, &["v6", "store", "import", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let exported = export(&member, &[]);
    assert_eq!(exported["vantage6_version"], "4.15");
    assert_eq!(
        exported["image"],
        "ghcr.io/vantage6/algorithm/summary:1.0.0"
    );
}

#[test]
fn a_missing_code_url_comes_from_the_projects_metadata_or_git_remote() {
    // Shaped like vantage6's 4.x repositories: algorithm_store.json without `code_url`, and
    // setup.py saying `url="https://github.com/..."`.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/comment-wrapper");
    let imported = |dir: &Path| {
        std::fs::write(
            dir.join("v6.toml"),
            manifest_head("4.15", "ghcr.io/example-org/v6-count-py"),
        )
        .unwrap();
        let output = cargo_v6(dir, &["v6", "store", "import", "algorithm_store.json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        (stderr(&output), export(dir, &[]))
    };
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&fixture, dir.path());
    let (notes, from_setup) = imported(dir.path());
    assert!(
        notes.contains(
            "`code-url` is https://github.com/example-org/v6-count-py, from setup.py's `url`"
        ),
        "{notes}"
    );
    assert_eq!(
        from_setup["code_url"],
        "https://github.com/example-org/v6-count-py"
    );

    // pyproject.toml's [project.urls].
    std::fs::remove_file(dir.path().join("setup.py")).unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"v6-count-py\"\nversion = \"1.0.0\"\n[project.urls]\nHomepage = \"https://example.org/count\"\nRepository = \"https://gitlab.example.org/team/v6-count-py\"\n",
    )
    .unwrap();
    let (notes, from_pyproject) = imported(dir.path());
    assert!(
        notes.contains("from pyproject.toml's [project.urls] `Repository`"),
        "{notes}"
    );
    assert_eq!(
        from_pyproject["code_url"],
        "https://gitlab.example.org/team/v6-count-py"
    );

    // No metadata URL: the git remote, as https, without credentials.
    std::fs::remove_file(dir.path().join("pyproject.toml")).unwrap();
    support::git(dir.path(), &["init", "-q"]);
    support::git(
        dir.path(),
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:example-org/v6-count-py.git",
        ],
    );
    support::commit_all(dir.path());
    let (notes, from_git) = imported(dir.path());
    assert!(notes.contains("from the git remote"), "{notes}");
    assert_eq!(
        from_git["code_url"],
        "https://github.com/example-org/v6-count-py"
    );

    // What the store's own schema says of each export.
    let documents = [from_setup, from_pyproject, from_git];
    for (document, answer) in documents.iter().zip(store_says(4, &documents)) {
        assert_eq!(answer, json!({}), "the store refuses {document:#}");
    }
}

#[test]
fn export_pins_the_digest_where_the_store_reads_it() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let section = "[store]\ncode-url = \"u\"\npartitioning = \"horizontal\"\nfunctions = []\n";
    for (vantage6, image) in [
        ("4.15", format!("ghcr.io/o/a:1.0.0@{digest}")),
        ("5.0", format!("ghcr.io/o/a:1.0.0@{digest}")),
        ("4.5", "ghcr.io/o/a:1.0.0".to_string()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("v6.toml"),
            format!("{}\n{section}", manifest_head(vantage6, "ghcr.io/o/a")),
        )
        .unwrap();
        let output = cargo_v6(
            dir.path(),
            &[
                "v6", "store", "export", "--digest", &digest, "-o", "out.json",
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let written = read_json(&dir.path().join("out.json"));
        assert_eq!(written["image"], json!(image), "{vantage6}");
        assert_eq!(written["vantage6_version"], json!(vantage6));
        if vantage6 == "4.5" {
            assert!(
                stderr(&output).contains("cannot read `TAG@DIGEST`"),
                "{}",
                stderr(&output)
            );
        }
        let output = cargo_v6(
            dir.path(),
            &["v6", "store", "export", "--digest", "sha256:short"],
        );
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    }
}

#[test]
fn import_maps_a_functions_kind_across_majors() {
    for (vantage6, from, kind, to, mapped) in [
        ("5.0", "type", "central", "step_type", "central_compute"),
        (
            "4.15",
            "step_type",
            "federated_compute",
            "type",
            "federated",
        ),
    ] {
        let mut document = base(if vantage6 == "5.0" { 5 } else { 4 });
        let function = document["functions"][0].as_object_mut().unwrap();
        function.remove("type");
        function.remove("step_type");
        function.insert(from.to_string(), json!(kind));
        let dir = project_for(&document);
        let file = dir.path().join("algorithm_store.json");
        std::fs::write(&file, document.to_string()).unwrap();
        let notes = import(dir.path(), &file);
        assert!(
            notes.contains(&format!(
                "`functions[0].{from}` = \"{kind}\" became `{to}` = \"{mapped}\""
            )),
            "{notes}"
        );
        let exported = export(dir.path(), &[]);
        assert_eq!(exported["functions"][0][to], json!(mapped));
        assert!(exported["functions"][0].get(from).is_none());
    }
}

/// On the stack: publish writes `store.output` with the digest it pushed (a step after the
/// push, shown by `--dry-run`), `store export` reads the same digest from the registry, and the
/// file, an output, changes neither the next publish's input nor the work tree's cleanliness.
#[test]
fn publish_writes_the_store_file_with_the_digest_it_pushed() {
    let image = format!("{}/{}", support::stack().registry, support::unique("store"));
    let _cleanup = support::LocalImages(image.clone());
    let dir = support::busybox_project(&image, "hello from store\n", "");
    let manifest = dir.path().join("v6.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[store]\noutput = \"algorithm_store.json\"\ncode-url = \"https://example.org/code\"\npartitioning = \"horizontal\"\n\n[[store.functions]]\nname = \"hello\"\ntype = \"central\"\n");
    std::fs::write(&manifest, text).unwrap();
    support::git(dir.path(), &["init", "-q"]);
    support::commit_all(dir.path());

    let dry_run = cargo_v6(dir.path(), &["v6", "publish", "--dry-run"]);
    assert!(dry_run.status.success(), "{}", stderr(&dry_run));
    assert!(
        stderr(&dry_run).contains("Would write algorithm_store.json"),
        "{}",
        stderr(&dry_run)
    );
    assert!(!dir.path().join("algorithm_store.json").exists());

    let published = cargo_v6(dir.path(), &["v6", "publish"]);
    assert!(published.status.success(), "{}", stderr(&published));
    assert!(stderr(&published).contains("Wrote algorithm_store.json"));
    let digest = support::printed_digest(&String::from_utf8_lossy(&published.stdout));
    let written = read_json(&dir.path().join("algorithm_store.json"));
    assert_eq!(written["image"], json!(format!("{image}:1.0.0@{digest}")));
    assert_eq!(export_online(dir.path()), written);
    assert_eq!(store_says(4, std::slice::from_ref(&written)), [json!({})]);

    // The new file is neither in the next build's context nor dirt in the work tree.
    let listed = cargo_v6(dir.path(), &["v6", "context", "--list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("algorithm_store.json"));
    let again = cargo_v6(dir.path(), &["v6", "publish", "--message-format", "json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["skipped_unchanged"], json!(true));
    assert_eq!(again["digest"], json!(digest));
}

/// `store export` reading the digest from the registry.
fn export_online(dir: &Path) -> Value {
    let output = cargo_v6(dir, &["v6", "store", "export"]);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The README's `[store]` example exports, and the store's schema takes it.
#[test]
fn the_readme_example_is_what_the_store_accepts() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = &readme[readme.find("## The algorithm store").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v6.toml"),
        format!(
            "{}\n{example}",
            manifest_head("4.15", "ghcr.io/you/summary")
        ),
    )
    .unwrap();
    let exported = export(dir.path(), &[]);
    assert_eq!(
        exported["functions"][0]["arguments"][2]["default_value"],
        json!("2")
    );
    assert_eq!(store_says(4, &[exported]), [json!({})]);
}

/// Where 5.0.3 differs from 4.15.2 (and 5.0.0a26): `null` for `conditional_operator`,
/// `conditional_value` and `default_value`, and JSON values for the last two, are taken (the
/// store turns them into text). Import still writes text, which both take; its notes say so.
#[test]
fn the_5_0_3_store_takes_nulls_and_json_values_that_4_15_2_refuses() {
    let loosen = |major: u8| {
        let mut doc = base(major);
        let args = &mut doc["functions"][0]["arguments"];
        args[0]["default_value"] = json!(true);
        args[1]["default_value"] = json!(3);
        args[1]["conditional_operator"] = Value::Null;
        args[1]["conditional_value"] = Value::Null;
        doc
    };
    assert_eq!(store_says(5, &[loosen(5)]), [json!({})]);
    assert_ne!(store_says(4, &[loosen(4)]), [json!({})]);
    let document = loosen(5);
    let dir = project_for(&document);
    let file = dir.path().join("algorithm_store.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let notes = import(dir.path(), &file);
    for note in [
        "`functions[0].arguments[1].conditional_operator`: null dropped (the store takes it as absent)",
        "`functions[0].arguments[1].default_value`: 3 became \"3\" (the text the store turns it into)",
    ] {
        assert!(notes.contains(note), "expected `{note}` in {notes}");
    }
}
