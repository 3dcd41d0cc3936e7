//! `cargo v6 run CENTRAL --org ...` against the real stack: the fixtures' central functions
//! (tests/fixtures/federation4 on the 4.15 base, federation5 on the 5.0 base) run with their
//! subtasks in real containers, and agree with vantage6's own mock of a federation
//! (`MockAlgorithmClient` 4.15.2, `MockNetwork` 5.0.3, in the stack's venvs) on the same data.
//!
//! Each fixture's image is built once, by the first run of its test, and shared by its cases.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod support;
use support::{
    LocalImages, assert_ok, cargo_v6_in_tmp as cargo_v6, commit_all, copy_dir, docker, fails,
    repo_tags, stack, text, unique,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of fixture `name` whose image is `image`, with `extra` appended to its package.
fn project(name: &str, image: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures").join(name), dir.path());
    let package = dir.path().join(name).join("__init__.py");
    let code = std::fs::read_to_string(&package).unwrap();
    std::fs::write(&package, code + extra).unwrap();
    let manifest = dir.path().join("v6.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|line| match line.starts_with("image = ") {
            true => format!("image = \"{image}\""),
            false => line.to_owned(),
        })
        .collect();
    std::fs::write(&manifest, text.join("\n") + "\n").unwrap();
    commit_all(dir.path());
    dir
}

/// The three organizations of the fixtures' data, as `--org` arguments.
const ORGS: [&str; 6] = [
    "--org",
    "1=data/a.csv",
    "--org",
    "2=data/b.csv",
    "--org",
    "3=data/c.csv",
];

/// vantage6's mock (the venv of `V6_MOCK_PYTHON_<major>`) running `method` of fixture `name`
/// over `ORGS`: its result.
fn oracle(major: u8, name: &str, dir: &Path, method: &str, kwargs: &str, extra: &[&str]) -> Value {
    let var = format!("V6_MOCK_PYTHON_{major}");
    let python = std::env::var(&var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/stack up, then eval \"$(scripts/stack env)\"")
    });
    let out = std::process::Command::new(python)
        .current_dir(dir)
        .arg(repo_root().join("tests/support/mock_oracle.py"))
        .args(["--module", name, "--path", ".", "--method", method])
        .args(["--kwargs", kwargs])
        .args(ORGS)
        .args(extra)
        .output()
        .unwrap();
    serde_json::from_str(assert_ok(&out).trim()).unwrap()
}

/// The run's output: the last line of stdout, as JSON.
fn output_of(out: &Output) -> Value {
    let stdout = assert_ok(out);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// No container of `image` is left, running or not.
fn assert_no_containers(image: &str) {
    let out = docker(&["ps", "-a", "--filter", &format!("ancestor={image}"), "-q"]);
    assert_eq!(text(&out.stdout).trim(), "", "containers left behind");
}

/// Functions that ask what a local run does not give, appended to the 4.x fixture.
const EXTRA_4: &str = r#"

@algorithm_client
def central_vpn(client: AlgorithmClient) -> dict:
    """Asks for the VPN addresses, which a local run does not serve."""
    return {"addresses": client.vpn.get_addresses()}


@algorithm_client
def central_elsewhere(client: AlgorithmClient) -> dict:
    """Creates a subtask at an organization that is not in the run."""
    task = client.task.create(
        input_={"method": "partial_sum", "kwargs": {"column": "age"}}, organizations=[9]
    )
    return {"results": client.wait_for_results(task_id=task["id"])}


@algorithm_client
def central_nested(client: AlgorithmClient, column: str) -> dict:
    """A subtask that is itself a central function: vantage6 4.x nodes allow it."""
    task = client.task.create(
        input_={"method": "central_mean", "kwargs": {"column": column}},
        organizations=[2],
    )
    return {"inner": client.wait_for_results(task_id=task["id"])[0]}
"#;

#[test]
fn a_4x_central_function_runs_its_subtasks_in_containers_and_agrees_with_the_mock() {
    let stack = stack();
    let image = format!("{}/{}", stack.registry, unique("federation4"));
    let _cleanup = LocalImages(image.clone());
    let dir = project("federation4", &image, EXTRA_4);
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cargo_v6(dir.path(), tmp.path(), &[&["v6", "run"], args].concat());

    // The whole federation: the central function, a subtask at each organization.
    let kwargs = r#"{"column": "age"}"#;
    let out = run(&[
        &[
            "central_mean",
            "--kwargs",
            kwargs,
            "--message-format",
            "json",
        ],
        &ORGS[..],
    ]
    .concat());
    let result = output_of(&out);
    let expected = oracle(4, "federation4", dir.path(), "central_mean", kwargs, &[]);
    assert_eq!(result, expected);
    assert_eq!(result["count"], 8, "{result}");
    // One JSON line per task: three subtasks of task 1, then the central task.
    let stdout = text(&out.stdout);
    let tasks: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "task")
        .collect();
    assert_eq!(tasks.len(), 4, "{stdout}");
    let mut subtasks: Vec<u64> = tasks
        .iter()
        .filter(|t| t["parent_id"] == 1)
        .map(|t| {
            assert_eq!(
                (&t["method"], &t["status"]),
                (&"partial_sum".into(), &"completed".into())
            );
            t["organization_id"].as_u64().unwrap()
        })
        .collect();
    subtasks.sort_unstable();
    assert_eq!(subtasks, [1, 2, 3]);
    assert_eq!(tasks[3]["method"], "central_mean");
    assert!(
        tmp.path().read_dir().unwrap().next().is_none(),
        "the run left its folders"
    );
    assert_no_containers(&image);

    // Two organizations, one at a time: the same answer as the mock's over the same two.
    let out = run(&[
        "central_mean",
        "--kwargs",
        kwargs,
        "-j",
        "1",
        "--org",
        "1=data/a.csv",
        "--org",
        "3=data/c.csv",
    ]);
    let two = output_of(&out);
    assert_eq!(two["organizations"], serde_json::json!([1, 3]));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Completed task 2 `partial_sum` at organization 3, subtask of 1"),
        "{stderr}"
    );

    // A subtask that creates tasks itself (a 4.x partial has a token too).
    let nested = output_of(&run(
        &[&["central_nested", "--kwargs", kwargs], &ORGS[..]].concat()
    ));
    assert_eq!(nested["inner"], result);

    // An endpoint the run does not serve ends it at once, naming it; the logs are kept.
    let started = std::time::Instant::now();
    let stderr = fails(&run(&[&["central_vpn"], &ORGS[..]].concat()));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        stderr.contains("`GET /vpn/algorithm/addresses`"),
        "{stderr}"
    );
    let kept = stderr
        .lines()
        .find_map(|l| {
            l.split_once("are kept in ")
                .map(|(_, p)| PathBuf::from(p.trim()))
        })
        .unwrap_or_else(|| panic!("no log folder named: {stderr}"));
    let log = std::fs::read_to_string(kept.join("task-1-organization-1.log")).unwrap();
    assert!(log.contains("wrapper for federation4"), "{log}");
    std::fs::remove_dir_all(&kept).unwrap();

    // A subtask at an organization the run does not have.
    let stderr = fails(&run(&[&["central_elsewhere"], &ORGS[..]].concat()));
    assert!(
        stderr.contains("organization 9 is not in this run"),
        "{stderr}"
    );

    // A failing subtask ends the run, naming the subtask and what failed.
    let out = run(&[
        &["central_mean", "--kwargs", r#"{"column": "height"}"#],
        &ORGS[..],
    ]
    .concat());
    let stderr = fails(&out);
    assert!(
        stderr.contains("the subtask `partial_sum` at organization"),
        "{stderr}"
    );
    assert!(stderr.contains("height"), "{stderr}");
    assert_no_containers(&image);
    for entry in tmp.path().read_dir().unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }

    // publish --smoke runs the whole federation before pushing; a failing one pushes nothing.
    let publish = |version: &str, column: &str| {
        let kwargs = format!(r#"{{"column": "{column}"}}"#);
        let args = [
            "v6",
            "publish",
            "--set-version",
            version,
            "--smoke",
            "central_mean",
        ];
        let task = ["--kwargs", &kwargs];
        cargo_v6(
            dir.path(),
            tmp.path(),
            &[&args[..], &task[..], &ORGS[..]].concat(),
        )
    };
    let stderr = fails(&publish("1.0.0", "height"));
    assert!(
        stderr.contains("smoke run of `central_mean` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the subtask `partial_sum` at organization"),
        "{stderr}"
    );
    assert_eq!(
        repo_tags(&image),
        Vec::<String>::new(),
        "a failed smoke pushed"
    );
    let out = publish("1.0.0", "age");
    assert_ok(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Completed task 1 `central_mean` at organization 1 (central)"),
        "{stderr}"
    );
    assert!(repo_tags(&image).contains(&"1.0.0".to_owned()));
    for entry in tmp.path().read_dir().unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }

    // Wrong arguments are exit 2 before anything starts.
    for args in [
        &["central_mean", "--org", "one=data/a.csv"][..],
        &["central_mean", "--org", "1=data/missing.csv"],
        &[
            "central_mean",
            "--org",
            "1=data/a.csv",
            "--org",
            "1=data/b.csv",
        ],
        &[
            "central_mean",
            "--org",
            "1=data/a.csv",
            "--central-org",
            "2",
        ],
        &[
            "central_mean",
            "--org",
            "1=data/a.csv",
            "--data",
            "default=data/a.csv",
        ],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_5x_central_function_runs_over_the_sessions_dataframes_and_agrees_with_the_mock() {
    let stack = stack();
    let image = format!("{}/{}", stack.registry, unique("federation5"));
    let _cleanup = LocalImages(image.clone());
    let dir = project("federation5", &image, "");
    let tmp = tempfile::tempdir().unwrap();
    let kwargs = r#"{"column": "age"}"#;
    let extract = ["--extract", "read_csv"];
    let out = cargo_v6(
        dir.path(),
        tmp.path(),
        &[
            &["v6", "run", "central_mean", "--kwargs", kwargs],
            &extract[..],
            &ORGS[..],
        ]
        .concat(),
    );
    let result = output_of(&out);
    let expected = oracle(
        5,
        "federation5",
        dir.path(),
        "central_mean",
        kwargs,
        &extract,
    );
    assert_eq!(result, expected);
    assert_eq!(result["organizations"], serde_json::json!([1, 2, 3]));
    let stderr = text(&out.stderr);
    // The node's contract: the subtasks are federated_compute steps over the session's dataframe.
    assert!(
        stderr.contains("Validating function action: federated_compute"),
        "{stderr}"
    );
    assert!(stderr.contains("with dataframe name 'default'"), "{stderr}");
    assert!(
        tmp.path().read_dir().unwrap().next().is_none(),
        "the run left its folders"
    );
    assert_no_containers(&image);
}
