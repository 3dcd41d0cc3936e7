//! `cargo v6 run` against the real stack (`scripts/stack up`): images built from the real
//! Python template on the locally made `algorithm-base:4.15` (with the real
//! vantage6-algorithm-tools 4.15 inside), run the way a vantage6 node runs them.
//!
//! Each image is built once and shared by the cases that need it; every image and container
//! a test makes is removed when it ends. `TMPDIR` points at a folder of the test's own, so
//! that the run's temporary work folder can be seen to go away, on success and on failure.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

mod support;
use support::{
    LocalImages, cargo_v6_env, cargo_v6_in_tmp as cargo_v6, copy_dir, docker, fails, stack, text,
    unique,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of examples/partial-sum published nowhere: its image is `image`, its PKG_NAME
/// `name`, and `extra` is appended to its package.
fn partial_sum_project(image: &str, name: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/partial-sum"), dir.path());
    let package = dir.path().join("partial_sum/__init__.py");
    let code = std::fs::read_to_string(&package).unwrap();
    std::fs::write(&package, code + extra).unwrap();
    let manifest = dir.path().join("v6.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .lines()
        .map(|line| {
            if line.starts_with("image = ") {
                format!("image = \"{image}\"")
            } else if line.starts_with("name = ") {
                format!("name = \"{name}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, text + "\n").unwrap();
    dir
}

/// Every file under `dir` with its content: a project must be left as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn assert_empty(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "the run left {left:?} behind");
}

/// No container of `image` is left, running or not.
fn assert_no_containers(image: &str) {
    let out = docker(&["ps", "-a", "--filter", &format!("ancestor={image}"), "-q"]);
    assert_eq!(
        text(&out.stdout).trim(),
        "",
        "containers of {image} are left"
    );
}

/// A failed run: exit 1, nothing on stdout, and the error says `expected`.
fn assert_fails_with(output: &Output, expected: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&output.stdout), "", "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in\n{stderr}"));
    assert!(
        error.contains(expected),
        "expected `{expected}` in `{error}`\n{stderr}"
    );
    stderr
}

const EXTRA_FUNCTIONS: &str = r#"

from vantage6.algorithm.tools.decorators import algorithm_client, metadata


@metadata
def run_metadata(meta):
    return {"task_id": meta.task_id, "temporary_directory": str(meta.temporary_directory)}


@algorithm_client
def central(client):
    client.task.create(input_={"method": "partial_sum"}, organizations=[1])
    return {}
"#;

#[test]
fn a_partial_function_on_a_csv_runs_as_on_a_node_and_failures_say_what_failed() {
    let image = format!("{}/{}", stack().registry, unique("run-partial-sum"));
    let _cleanup = LocalImages(image.clone());
    // Two more functions: one reads the node's token (`@metadata`), one is central.
    let project = partial_sum_project(&image, "partial_sum", EXTRA_FUNCTIONS);
    let tmp = tempfile::tempdir().unwrap();
    let before = snapshot(project.path());
    let kwargs = r#"{"column": "a"}"#;

    // Without --image: builds v6.toml's image, then runs it.
    let ok = cargo_v6(
        project.path(),
        tmp.path(),
        &[
            "v6",
            "run",
            "partial_sum",
            "--kwargs",
            kwargs,
            "--data",
            "default=test/data.csv",
        ],
    );
    let stderr = text(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert_eq!(text(&ok.stdout), "{\"sum\": 6, \"count\": 3}\n", "{stderr}");
    // The wrapper's own log, on stderr, and the node's environment it decoded.
    for line in [
        "info > Module 'partial_sum' imported!",
        "info > Reading input file /mnt/data/task-000000001/input",
        "info > Using '/mnt/default.csv' with label 'default' as database",
        "info > Writing output to /mnt/data/task-000000001/output",
    ] {
        assert!(stderr.contains(line), "expected `{line}` in\n{stderr}");
    }
    assert_eq!(
        snapshot(project.path()),
        before,
        "the run wrote into the project"
    );
    assert_empty(tmp.path());
    let tagged = format!("{image}:1.0.0");

    // The built image by reference, from anywhere: no v6.toml needed with --vantage6.
    let elsewhere = tempfile::tempdir().unwrap();
    let data = project.path().join("test/data.csv");
    let data_arg = format!("default={}", data.display());
    let by_ref = cargo_v6(
        elsewhere.path(),
        tmp.path(),
        &[
            "v6",
            "-q",
            "run",
            "partial_sum",
            "--image",
            &tagged,
            "--vantage6",
            "4.15",
            "--kwargs",
            r#"{"column": "b"}"#,
            "--data",
            &data_arg,
        ],
    );
    assert!(by_ref.status.success(), "{}", text(&by_ref.stderr));
    assert_eq!(text(&by_ref.stdout), "{\"sum\": 30.75, \"count\": 2}\n");
    assert_eq!(text(&by_ref.stderr), "", "-q shows nothing");

    // A method the module does not have.
    let missing = cargo_v6(
        project.path(),
        tmp.path(),
        &[
            "v6",
            "run",
            "no_such_method",
            "--image",
            &tagged,
            "--data",
            "default=test/data.csv",
        ],
    );
    let stderr = assert_fails_with(
        &missing,
        "method `no_such_method` not found in module `partial_sum`",
    );
    assert!(
        stderr.contains("error > Method 'no_such_method' not found!"),
        "{stderr}"
    );
    assert_empty(tmp.path());

    // A CSV the wrapper cannot read.
    let bad = project.path().join("test/bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n\"3,4\n").unwrap();
    let bad_csv = cargo_v6(
        project.path(),
        tmp.path(),
        &[
            "v6",
            "run",
            "partial_sum",
            "--image",
            &tagged,
            "--kwargs",
            kwargs,
            "--data",
            "default=test/bad.csv",
        ],
    );
    let stderr = assert_fails_with(
        &bad_csv,
        "cannot read database `default`: pandas.errors.ParserError",
    );
    assert!(
        stderr.contains("help: check the file and its type"),
        "{stderr}"
    );
    assert_empty(tmp.path());

    // The function's own exception (a column the data lacks).
    let raised = cargo_v6(
        project.path(),
        tmp.path(),
        &[
            "v6",
            "run",
            "partial_sum",
            "--image",
            &tagged,
            "--kwargs",
            r#"{"column": "zz"}"#,
            "--data",
            "default=test/data.csv",
        ],
    );
    assert_fails_with(&raised, "method `partial_sum` raised KeyError: 'zz'");

    // The token file holds what the `@metadata` decorator reads; no --data needed.
    let meta = cargo_v6(
        project.path(),
        tmp.path(),
        &["v6", "run", "run_metadata", "--image", &tagged],
    );
    assert!(meta.status.success(), "{}", text(&meta.stderr));
    assert_eq!(
        text(&meta.stdout),
        "{\"task_id\": 1, \"temporary_directory\": \"/mnt/tmp\"}\n"
    );

    // A central function cannot reach the server, and is told so.
    let central = cargo_v6(
        project.path(),
        tmp.path(),
        &["v6", "run", "central", "--image", &tagged],
    );
    let stderr = assert_fails_with(
        &central,
        "method `central` raised requests.exceptions.ConnectionError",
    );
    assert!(
        stderr.contains("help: central functions create subtasks through the server"),
        "{stderr}"
    );

    // Wrong input is exit 2 before any container starts.
    for (args, expected) in [
        (vec!["--kwargs", "[1]"], "--kwargs must be a JSON object"),
        (
            vec!["--data", "default=test/none.csv"],
            "--data default: cannot read test/none.csv",
        ),
        (
            vec!["--data", "my-data=test/data.csv"],
            "database label `my-data`",
        ),
        (
            vec!["--env", "PKG_NAME=x"],
            "environment variable `PKG_NAME`",
        ),
        (vec!["--step", "federated_compute"], "5.x notions"),
    ] {
        let mut full = vec!["v6", "run", "partial_sum", "--image", &tagged];
        full.extend(args);
        let out = cargo_v6(project.path(), tmp.path(), &full);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{full:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{full:?}: expected `{expected}` in\n{stderr}"
        );
    }
    assert_empty(tmp.path());
    assert_no_containers(&tagged);
}

/// A central function as real vantage6 repositories write it: it asks the server for the
/// organizations first, through the algorithm client, which retries a failed connection once
/// a second, for good.
const CENTRAL_FUNCTION: &str = r#"

from vantage6.algorithm.tools.decorators import algorithm_client
from vantage6.algorithm.tools.util import info


@algorithm_client
def central_average(client, column):
    info("Collecting participating organizations")
    organizations = client.organization.list()
    return {"organizations": len(organizations)}
"#;

#[test]
fn a_function_that_waits_for_the_server_fails_within_seconds_with_the_hint() {
    let image = format!("{}/{}", stack().registry, unique("run-central"));
    let _cleanup = LocalImages(image.clone());
    let project = partial_sum_project(&image, "partial_sum", CENTRAL_FUNCTION);
    let tmp = tempfile::tempdir().unwrap();
    let built = cargo_v6(project.path(), tmp.path(), &["v6", "build"]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let tagged = format!("{image}:1.0.0");
    // Without the detection, it would run until the timeout (the wrapper never gives up).
    let started = std::time::Instant::now();
    let out = cargo_v6(
        project.path(),
        tmp.path(),
        &[
            "v6",
            "run",
            "central_average",
            "--image",
            &tagged,
            "--kwargs",
            r#"{"column": "a"}"#,
            "--timeout",
            "100",
        ],
    );
    let took = started.elapsed();
    let stderr = assert_fails_with(&out, "`central_average` tried to reach the vantage6 server");
    assert!(
        stderr.contains("help: central functions create subtasks through the server"),
        "{stderr}"
    );
    assert!(
        took < std::time::Duration::from_secs(60),
        "took {took:?}\n{stderr}"
    );
    assert_empty(tmp.path());
    assert_no_containers(&tagged);
}

#[test]
fn a_pkg_name_that_is_not_the_package_is_named() {
    let image = format!("{}/{}", stack().registry, unique("run-wrong-name"));
    let _cleanup = LocalImages(image.clone());
    // v6.toml's name is PKG_NAME; the package installed is `partial_sum`.
    let project = partial_sum_project(&image, "partial_summ", "");
    let tmp = tempfile::tempdir().unwrap();
    let out = cargo_v6(
        project.path(),
        tmp.path(),
        &[
            "v6",
            "run",
            "partial_sum",
            "--kwargs",
            r#"{"column": "a"}"#,
            "--data",
            "default=test/data.csv",
        ],
    );
    let stderr = assert_fails_with(
        &out,
        "`partial_sum` failed: module `partial_summ` not found (PKG_NAME)",
    );
    assert!(
        stderr.contains("help: `name` in v6.toml is PKG_NAME"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ModuleNotFoundError: No module named 'partial_summ'"),
        "{stderr}"
    );
    assert_empty(tmp.path());
    assert_no_containers(&format!("{image}:1.0.0"));
}

#[test]
fn help_says_which_functions_run_here() {
    let out = Command::cargo_bin("cargo-v6")
        .unwrap()
        .args(["v6", "run", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "partial function",
        "central function",
        "--org",
        "algorithm client",
        "no network",
    ] {
        assert!(help.contains(needle), "expected `{needle}` in\n{help}");
    }
}

/// Where the image and its vantage6 version come from: `--image` or v6.toml's image,
/// `--vantage6` or v6.toml's `vantage6`; v6.toml is read only when one of them needs it. No
/// engine is reached: every case ends before, or at an engine that is not there.
#[test]
fn the_image_and_its_vantage6_version_come_from_the_arguments_or_v6_toml() {
    let nowhere = [("DOCKER_HOST", "unix:///nonexistent/cargo-v6/docker.sock")];
    let exit_2 = |out: &Output, expected: &str| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in\n{stderr}"
        );
        stderr
    };
    let empty = tempfile::tempdir().unwrap();
    let run = |dir: &Path, args: &[&str]| {
        cargo_v6_env(dir, &nowhere, &[&["v6", "run", "f"][..], args].concat())
    };
    // --image without --vantage6 and no v6.toml: the version is unknown.
    let out = run(empty.path(), &["--image", "x"]);
    exit_2(
        &out,
        "the image's vantage6 version is unknown: pass --vantage6",
    );
    let out = run(empty.path(), &["--image", "x", "--vantage6", "4.x"]);
    exit_2(&out, "invalid --vantage6 `4.x`: write MAJOR.MINOR");
    // Without --image, v6.toml is read first: its absence is the error, not the version.
    let out = run(empty.path(), &["--vantage6", "4.x"]);
    let stderr = exit_2(&out, "v6.toml");
    assert!(!stderr.contains("--vantage6"), "{stderr}");
    // The R project's v6.toml says vantage6 3.7, which no local run supports.
    let r = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/r"), r.path());
    let out = run(r.path(), &["--image", "x"]);
    exit_2(&out, "3.7 is not supported");
    let out = run(r.path(), &["--vantage6", "4.x"]);
    exit_2(&out, "invalid --vantage6 `4.x`");
    // --vantage6 wins over v6.toml's; the R wrapper is warned about whenever v6.toml is read.
    let r_warning = "the R wrapper (vtg) dates from vantage6 3.x";
    let stderr = fails(&run(r.path(), &["--vantage6", "4.15"]));
    assert!(stderr.contains(r_warning), "{stderr}");
    let stderr = fails(&run(r.path(), &["--image", "x", "--vantage6", "4.15"]));
    assert!(!stderr.contains(r_warning), "v6.toml is not read: {stderr}");
    assert!(
        stderr.contains("/nonexistent/cargo-v6/docker.sock"),
        "{stderr}"
    );
}

#[test]
fn publish_smoke_runs_the_built_image_before_pushing_and_a_failure_pushes_nothing() {
    let image = format!("{}/{}", stack().registry, unique("smoke"));
    let _cleanup = LocalImages(image.clone());
    let dir = partial_sum_project(&image, "partial_sum", "");
    let tmp = tempfile::tempdir().unwrap();
    let task = [
        "--kwargs",
        r#"{"column": "a"}"#,
        "--data",
        "default=test/data.csv",
    ];
    let smoke = |method: &str, version: &str, extra: &[&str]| {
        let mut args = vec!["v6", "publish", "--set-version", version, "--smoke", method];
        args.extend_from_slice(&task);
        args.extend_from_slice(extra);
        cargo_v6(dir.path(), tmp.path(), &args)
    };
    let tag_exists = |version: &str| support::digest_of(&format!("{image}:{version}")).is_some();

    // The dry run shows the step; nothing runs.
    let out = smoke("partial_sum", "1.0.0", &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Would run `partial_sum`"),
        "{}",
        text(&out.stderr)
    );

    // A method the module does not have: exit 1, named, nothing pushed.
    let out = smoke("no_such_method", "1.0.0", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("smoke run of `no_such_method` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not found in module `partial_sum`"),
        "{stderr}"
    );
    assert!(!tag_exists("1.0.0"), "nothing pushed");

    // The real function: it runs, then the release is pushed.
    let out = smoke("partial_sum", "1.0.0", &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Running partial_sum"), "{stderr}");
    assert!(tag_exists("1.0.0"));
    assert_empty(tmp.path());

    // Task options without --smoke mean nothing to publish: exit 2.
    let out = cargo_v6(dir.path(), tmp.path(), &["v6", "publish", "--kwargs", "{}"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
