//! vantage6 5.x end to end on the real stack (`scripts/stack up`): images built on the local
//! stand-in for `algorithm-base:5.0` (CPython 3.13, pip, uv, vantage6-algorithm-tools 5.0.3),
//! the three ways 5.0 repositories install themselves, and `cargo v6 run` feeding them as
//! vantage6-node 5.0.3 does: an extraction then the steps of the same session, dataframes
//! grouped per argument, the ids `@metadata` reads, `--env` beside the node's own, and the
//! session's state file.

use std::path::{Path, PathBuf};
use std::process::Output;

mod support;
use support::{LocalImages, cargo_v6_in_tmp as cargo_v6, copy_dir, stack, text, unique};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The 5.0 base `scripts/stack env` exports; the test fails (never skips) without it.
fn python5_base() -> String {
    std::env::var("V6_TEST_PYTHON5_BASE").unwrap_or_else(|_| {
        panic!(
            "V6_TEST_PYTHON5_BASE is not set: eval \"$(scripts/stack env)\" after scripts/stack up"
        )
    })
}

/// A copy of tests/fixtures/sum-5 whose image is `image`; `dockerfile`, when given, is its
/// own Dockerfile (`[build] dockerfile`), else the python-5 template builds it.
fn sum5_project(image: &str, dockerfile: Option<&str>) -> tempfile::TempDir {
    assert!(!python5_base().is_empty());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/sum-5"), dir.path());
    let manifest = dir.path().join("v6.toml");
    let mut text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("127.0.0.1:5550/algorithms/sum-5", image);
    if let Some(dockerfile) = dockerfile {
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        text.push_str("\n[build]\ndockerfile = \"Dockerfile\"\n");
    }
    std::fs::write(&manifest, text).unwrap();
    dir
}

/// A run that succeeded: its one line of JSON output, parsed.
fn ok_json(output: &Output) -> serde_json::Value {
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    serde_json::from_str(text(&output.stdout).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", text(&output.stdout)))
}

/// Builds the project's image (the first `run`), then an extraction and a compute on its
/// session: the sum of column `a` of test/a.csv.
fn build_and_sum(project: &Path, tmp: &Path) {
    let out = cargo_v6(
        project,
        tmp,
        &[
            "v6",
            "run",
            "partial_sum",
            "--extract",
            "read_csv",
            "--data",
            "default=test/a.csv",
            "--kwargs",
            r#"{"column": "a"}"#,
        ],
    );
    assert_eq!(
        ok_json(&out),
        serde_json::json!({"sum": 6, "count": 3}),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_python_5_template_runs_every_step_as_a_5_0_3_node_feeds_it() {
    let image = format!("{}/{}", stack().registry, unique("v5-template"));
    let _cleanup = LocalImages(image.clone());
    let project = sum5_project(&image, None);
    let dir = project.path();
    let tmp = tempfile::tempdir().unwrap();
    let source = std::fs::read(dir.join("test/a.csv")).unwrap();

    build_and_sum(dir, tmp.path());
    // The extraction wrote to its source, mounted read-write as the node mounts it: a copy.
    assert_eq!(std::fs::read(dir.join("test/a.csv")).unwrap(), source);
    let tagged = format!("{image}:1.0.0");
    let run = |args: &[&str]| {
        let mut full = vec!["v6", "run"];
        full.extend(args);
        full.extend(["--image", &tagged]);
        cargo_v6(dir, tmp.path(), &full)
    };

    // A preprocessing step writes a table; the output is its size.
    let table = ok_json(&run(&[
        "doubled",
        "--step",
        "preprocessing",
        "--extract",
        "read_csv",
        "--data",
        "default=test/a.csv",
        "--kwargs",
        r#"{"column": "a"}"#,
    ]));
    assert!(table["parquet_bytes"].as_u64().unwrap() > 0, "{table}");

    // `+` joins the previous --data: two dataframes as one argument, then one more.
    let grouped = ok_json(&run(&[
        "grouped",
        "--extract",
        "read_csv",
        "--data",
        "first=test/a.csv",
        "--data",
        "+second=test/b.csv",
        "--data",
        "third=test/b.csv",
    ]));
    assert_eq!(
        grouped,
        serde_json::json!({"group": {"first": 3, "second": 2}, "other": 2})
    );

    // `@metadata` reads the four ids (strings, as the node's environment holds them).
    let ids = ok_json(&run(&[
        "ids",
        "--task-id",
        "12",
        "--node-id",
        "3",
        "--organization-id",
        "4",
        "--collaboration-id",
        "5",
    ]));
    assert_eq!(
        ids,
        serde_json::json!({"task": "12", "node": "3", "organization": "4", "collaboration": "5"})
    );
    let ids = ok_json(&run(&["ids"]));
    assert_eq!(
        ids,
        serde_json::json!({"task": "1", "node": "1", "organization": "1", "collaboration": "1"})
    );

    // --env never replaces the node's own variables: skipped, with a warning.
    let out = run(&[
        "environment",
        "--kwargs",
        r#"{"names": ["TASK_ID", "MY_SETTING"]}"#,
        "--env",
        "TASK_ID=99",
        "--env",
        "MY_SETTING=a=b",
    ]);
    assert_eq!(
        ok_json(&out),
        serde_json::json!({"TASK_ID": "1", "MY_SETTING": "a=b"})
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: --env TASK_ID is not set"),
        "{stderr}"
    );

    // The node runs the container with a tty.
    let tty = ok_json(&run(&["terminal"]));
    assert_eq!(tty, serde_json::json!({"stdout_tty": true}));

    // Failures say what failed, through the tty's colours.
    for (args, expected) in [
        (
            [
                "partial_sum",
                "--step",
                "preprocessing",
                r#"{"column": "a"}"#,
            ],
            "`partial_sum` failed: method `partial_sum` is a federated_compute function; it was run as preprocessing",
        ),
        (
            [
                "partial_sum",
                "--step",
                "federated_compute",
                r#"{"column": "zz"}"#,
            ],
            "`partial_sum` failed: method `partial_sum` raised KeyError: 'zz'",
        ),
    ] {
        let out = run(&[
            args[0],
            "--step",
            args[2],
            "--extract",
            "read_csv",
            "--data",
            "default=test/a.csv",
            "--kwargs",
            args[3],
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_default();
        assert_eq!(error, format!("error: {expected}"), "{stderr}");
    }

    // The session's state file, as the node writes it, read by the image's pandas.
    let state = ok_json(&run(&["session_state"]));
    assert_eq!(
        state["columns"],
        serde_json::json!(["action", "file", "timestamp", "message", "dataframe"])
    );
    assert_eq!(state["timestamp"], "datetime64[us, UTC]");
    assert_eq!(state["file"], serde_json::json!(["session_state.parquet"]));
    assert_eq!(
        state["message"],
        serde_json::json!(["Created this session file."])
    );
    assert_eq!(state["action"], serde_json::json!([""]));
    // Created for this run, not a fixed time.
    let age = state["age_seconds"].as_f64().unwrap();
    assert!((0.0..600.0).contains(&age), "{state}");

    // After each extraction the node adds a row naming the dataframe it stored.
    let state = ok_json(&run(&[
        "session_state",
        "--extract",
        "read_csv",
        "--data",
        "default=test/a.csv",
        "--data",
        "other=test/b.csv",
    ]));
    assert_eq!(
        state["action"],
        serde_json::json!(["", "data_extraction", "data_extraction"])
    );
    assert_eq!(
        state["file"],
        serde_json::json!(["session_state.parquet", "default.parquet", "other.parquet"])
    );
    assert_eq!(
        state["message"],
        serde_json::json!([
            "Created this session file.",
            "Session updated.",
            "Session updated."
        ])
    );
    assert_eq!(
        state["dataframe"],
        serde_json::json!(["", "default", "other"])
    );
    assert_eq!(state["timestamp"], "datetime64[us, UTC]");
    assert_eq!(state["ordered"], true, "{state}");

    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the runs left {left:?} behind");
}

#[test]
fn an_own_dockerfile_with_an_editable_uv_install_builds_and_runs_on_5_0() {
    let image = format!("{}/{}", stack().registry, unique("v5-uv-editable"));
    let _cleanup = LocalImages(image.clone());
    let dockerfile = "FROM ghcr.io/vantage6/infrastructure/algorithm-base:5.0
ARG PKG_NAME=\"sum_5\"
COPY . /app
RUN uv pip install --system -e /app
ENV PKG_NAME=${PKG_NAME}
CMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"
";
    let project = sum5_project(&image, Some(dockerfile));
    // Built by hatchling, as vantage6's 5.x template and v6-session-basics are: its editable
    // wheel needs `editables`, which the base must have for an offline build.
    let pyproject = project.path().join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject)
        .unwrap()
        .replace(
            "requires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"",
            "requires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"",
        )
        .replace(
            "[tool.setuptools]\npackages = [\"sum_5\"]",
            "[tool.hatch.build.targets.wheel]\npackages = [\"sum_5\"]",
        );
    assert!(text.contains("hatchling.build") && text.contains("tool.hatch"));
    std::fs::write(&pyproject, text).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    build_and_sum(project.path(), tmp.path());
}

#[test]
fn an_own_dockerfile_with_pip_install_builds_and_runs_on_5_0() {
    let image = format!("{}/{}", stack().registry, unique("v5-pip"));
    let _cleanup = LocalImages(image.clone());
    let dockerfile = "ARG BASE=5.0
FROM ghcr.io/vantage6/infrastructure/algorithm-base:${BASE}
ARG PKG_NAME=\"sum_5\"
COPY . /app
RUN pip install /app
ENV PKG_NAME=${PKG_NAME}
CMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"
";
    let project = sum5_project(&image, Some(dockerfile));
    let tmp = tempfile::tempdir().unwrap();
    build_and_sum(project.path(), tmp.path());
}
