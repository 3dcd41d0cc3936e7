//! End-to-end tests against the real stack that `scripts/stack up` starts: a Docker engine,
//! an open registry, a registry with htpasswd auth, and skopeo as an independent client.
//! `scripts/test` exports the stack's addresses; without them every test here fails (never
//! skips) with a message that says how to start the stack.
//!
//! Most cases build a tiny busybox image; one builds the real vantage6 4.x Python template on
//! the locally made `algorithm-base:4.15` and runs it the way a node does.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

#[path = "support/counting_proxy.rs"]
mod counting_proxy;
mod support;
use support::cargo_v6;
use support::{
    LocalImages, assert_ok, busybox_project, copy_dir, digest_of, docker, repo_tags, skopeo, stack,
    text, unique,
};

/// `publish --message-format json` and its one JSON object.
fn publish_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["v6", "publish", "--message-format", "json"];
    args.extend_from_slice(extra);
    let stdout = assert_ok(&cargo_v6(dir, &args));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `skopeo inspect` of a reference on the open registry: digest and labels.
fn inspect(reference: &str) -> Value {
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn publish_prints_the_digest_that_skopeo_sees_with_the_oci_labels() {
    let image = format!("{}/{}", stack().registry, unique("hello"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "hello from e2e\n", "");
    let stdout = assert_ok(&cargo_v6(dir.path(), &["v6", "publish"]));
    let last = stdout.lines().last().unwrap();
    let (printed_image, digest) = last.split_once('@').unwrap();
    assert_eq!(printed_image, image);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{last}"
    );

    let inspected = inspect(&format!("{image}:1.0.0"));
    assert_eq!(inspected["Digest"], digest);
    let labels = &inspected["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], "1.0.0");
    assert_eq!(labels["org.opencontainers.image.title"], "hello");
    assert!(
        labels["io.cargo-v6.fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(repo_tags(&image), ["1", "1.0", "1.0.0", "latest"]);
    for alias in ["1", "1.0", "latest"] {
        assert_eq!(
            digest_of(&format!("{image}:{alias}")).as_deref(),
            Some(digest)
        );
    }
    // The rendered Dockerfile and the generated .dockerignore stay out of the image.
    let run = docker(&[
        "run",
        "--rm",
        &format!("{image}@{digest}"),
        "ls",
        "-A",
        "/app",
    ]);
    assert_eq!(
        text(&run.stdout),
        "hello.txt\nv6.toml\n",
        "{}",
        text(&run.stderr)
    );
    let run = docker(&["run", "--rm", &format!("{image}@{digest}")]);
    assert_eq!(text(&run.stdout), "hello from e2e\n");
    // Every label in one LABEL step (the classic builder runs a container per step).
    let history = docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &format!("{image}@{digest}"),
    ]);
    let label_steps = text(&history.stdout)
        .lines()
        .filter(|l| l.contains("LABEL"))
        .count();
    assert_eq!(label_steps, 1, "{}", text(&history.stdout));
}

#[test]
fn labels_reach_the_image_exactly_as_written() {
    let image = format!("{}/{}", stack().registry, unique("labels"));
    let _cleanup = LocalImages(image.clone());
    let labels = [
        ("org.example.quote", r#"say "hi" to 'you'"#),
        ("org.example.dollar", "$HOME and ${PATH:-none} $$"),
        ("org.example.backslash", r"C:\dir\ and \n \"),
        ("org.example.hash", "# not a comment"),
        ("org.example.unicode", "ünï cödé ✓"),
        ("org.example.empty", ""),
        ("with space", "a  b"),
        ("key=with=equals", "v=1"),
        ("org.example.multi", "line one\nline two"),
    ];
    let table: String = labels
        .iter()
        .map(|(k, v)| format!("{} = {}\n", toml_string(k), toml_string(v)))
        .collect();
    let dir = busybox_project(&image, "labels\n", "");
    let manifest = dir.path().join("v6.toml");
    let text_before = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text_before}\n[build.labels]\n{table}")).unwrap();
    let stdout = assert_ok(&cargo_v6(dir.path(), &["v6", "publish"]));
    let digest = support::printed_digest(&stdout);
    let inspected = inspect(&format!("{image}:1.0.0"));
    assert_eq!(inspected["Digest"], digest.as_str());
    for (key, value) in labels {
        assert_eq!(inspected["Labels"][key], value, "label {key:?}");
    }
}

/// The project's own Dockerfile whose last instruction ends with `\\` (then an empty line):
/// the labels must reach the image, and the instruction must stay as written (a LABEL line
/// appended after it would have become arguments of the CMD).
#[test]
fn labels_reach_the_image_when_the_dockerfile_ends_open() {
    let image = format!("{}/{}", stack().registry, unique("open-end"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "open\n", "dockerfile = \"Dockerfile\"\n");
    let manifest = dir.path().join("v6.toml");
    let without_template = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(&format!("base = \"{}\"\n", stack().busybox), "")
        .replace("command = [\"cat\", \"/app/hello.txt\"]\n", "");
    std::fs::write(&manifest, without_template).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nCOPY hello.txt /app/hello.txt\nCMD [\"cat\", \\\n  \"/app/hello.txt\"] \\\n\n",
            stack().busybox
        ),
    )
    .unwrap();
    assert_ok(&cargo_v6(dir.path(), &["v6", "publish"]));
    let inspected = inspect(&format!("{image}:1.0.0"));
    assert_eq!(
        inspected["Labels"]["org.opencontainers.image.version"],
        "1.0.0"
    );
    assert!(
        inspected["Labels"]["io.cargo-v6.fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("sha256:")),
        "{inspected}"
    );
    let config = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        &format!("{image}:1.0.0"),
    ]);
    assert_eq!(text(&config.stdout).trim(), r#"["cat","/app/hello.txt"]"#);
}

/// A TOML basic string for any text.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[test]
fn republish_is_unchanged_even_with_an_empty_engine() {
    let image = format!("{}/{}", stack().registry, unique("republish"));
    let cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "same\n", "");
    let first = publish_json(dir.path(), &[]);
    assert_eq!(first["skipped_unchanged"], false);
    assert_eq!(first["tags_pushed"].as_array().unwrap().len(), 4);

    let second = publish_json(dir.path(), &[]);
    assert_eq!(second["skipped_unchanged"], true);
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(second["tags_pushed"].as_array().unwrap().len(), 0);

    // A fresh machine: no local image at all. Still unchanged, nothing built.
    drop(cleanup);
    let _cleanup = LocalImages(image.clone());
    let third = publish_json(dir.path(), &[]);
    assert_eq!(third["skipped_unchanged"], true);
    assert_eq!(third["digest"], first["digest"]);
    let local = docker(&["images", "-q", &image]);
    assert!(text(&local.stdout).trim().is_empty(), "nothing was built");

    // An interrupted publish leaves an alias behind (here: `latest` still on another image;
    // distribution cannot delete one tag alone). The re-run moves it, by manifest copy only.
    let other = format!("{}/{}", stack().registry, unique("other"));
    let _other_cleanup = LocalImages(other.clone());
    let other_dir = busybox_project(&other, "other\n", "");
    let other_digest = publish_json(other_dir.path(), &[])["digest"].clone();
    let copied = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{other}:1.0.0"),
        &format!("docker://{image}:latest"),
    ]);
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    assert_eq!(
        digest_of(&format!("{image}:latest")).as_deref(),
        other_digest.as_str()
    );
    let preview = assert_ok(&cargo_v6(
        dir.path(),
        &["v6", "publish", "--dry-run", "--message-format", "json"],
    ));
    let preview: Value = serde_json::from_str(preview.trim()).unwrap();
    assert_eq!(preview["action"], "skip the build");
    let steps: Vec<(String, String)> = preview["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["reference"].as_str().unwrap().to_string(),
                s["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (format!("{image}:1.0.0"), "unchanged".to_string()),
            (format!("{image}:1.0"), "unchanged".to_string()),
            (format!("{image}:1"), "unchanged".to_string()),
            (format!("{image}:latest"), "point".to_string()),
        ]
    );
    let fourth = publish_json(dir.path(), &[]);
    assert_eq!(fourth["skipped_unchanged"], true);
    assert_eq!(
        fourth["tags_pushed"],
        serde_json::json!([format!("{image}:latest")])
    );
    assert_eq!(
        digest_of(&format!("{image}:latest")).as_deref(),
        first["digest"].as_str()
    );
}

#[test]
fn changed_content_under_a_published_version_is_refused_unless_forced() {
    let image = format!("{}/{}", stack().registry, unique("refuse"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "v1\n", "");
    let first = publish_json(dir.path(), &[]);
    std::fs::write(dir.path().join("hello.txt"), "v1 but changed\n").unwrap();

    let refused = cargo_v6(dir.path(), &["v6", "publish"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains(&format!("{image}:1.0.0")), "{stderr}");
    assert!(
        stderr.contains(first["digest"].as_str().unwrap()),
        "{stderr}"
    );
    assert!(!text(&refused.stdout).contains("@sha256:"));
    assert_eq!(
        digest_of(&format!("{image}:1.0.0")).as_deref(),
        first["digest"].as_str(),
        "registry untouched"
    );

    let forced = cargo_v6(
        dir.path(),
        &["v6", "publish", "--force", "--message-format", "json"],
    );
    let stdout = assert_ok(&forced);
    assert!(
        text(&forced.stderr).contains("OVERWRITING"),
        "{}",
        text(&forced.stderr)
    );
    let forced: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_ne!(forced["digest"], first["digest"]);
    assert_eq!(
        digest_of(&format!("{image}:1.0.0")).as_deref(),
        forced["digest"].as_str()
    );
}

#[test]
fn a_backport_moves_only_the_aliases_it_owns() {
    let image = format!("{}/{}", stack().registry, unique("backport"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "release\n", "");
    let newer = publish_json(dir.path(), &["--set-version", "1.3.0"]);
    std::fs::write(dir.path().join("hello.txt"), "backport\n").unwrap();
    // `plan` reads the registry's tags and shows the held aliases before anything is pushed.
    let planned = assert_ok(&cargo_v6(
        dir.path(),
        &[
            "v6",
            "plan",
            "--set-version",
            "1.2.5",
            "--message-format",
            "json",
        ],
    ));
    let planned: Value = serde_json::from_str(planned.trim()).unwrap();
    assert_eq!(planned["registry"], "read");
    assert_eq!(
        planned["tags"],
        serde_json::json!([format!("{image}:1.2.5"), format!("{image}:1.2")])
    );
    let older = publish_json(dir.path(), &["--set-version", "1.2.5"]);
    let held: Vec<&str> = older["tags_held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(held, [format!("{image}:1"), format!("{image}:latest")]);
    let digest = |tag: &str| digest_of(&format!("{image}:{tag}"));
    assert_eq!(digest("1").as_deref(), newer["digest"].as_str());
    assert_eq!(digest("latest").as_deref(), newer["digest"].as_str());
    assert_eq!(digest("1.3").as_deref(), newer["digest"].as_str());
    assert_eq!(digest("1.2").as_deref(), older["digest"].as_str());
    assert_eq!(digest("1.2.5").as_deref(), older["digest"].as_str());

    // A pre-release moves nothing.
    std::fs::write(dir.path().join("hello.txt"), "next\n").unwrap();
    let rc = publish_json(dir.path(), &["--set-version", "1.4.0-rc.1"]);
    assert_eq!(rc["tags_pushed"].as_array().unwrap().len(), 1);
    assert_eq!(digest("latest").as_deref(), newer["digest"].as_str());
}

#[test]
fn dry_run_checks_and_reads_but_pushes_nothing() {
    let image = format!("{}/{}", stack().registry, unique("dry"));
    let dir = busybox_project(&image, "dry\n", "");
    let out = cargo_v6(dir.path(), &["v6", "publish", "--dry-run"]);
    let stdout = assert_ok(&out);
    assert!(!stdout.contains("@sha256:"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Would push {image}:1.0.0\n")),
        "{stderr}"
    );
    assert!(repo_tags(&image).is_empty());
    let local = docker(&["images", "-q", &image]);
    assert!(text(&local.stdout).trim().is_empty(), "nothing was built");
}

#[test]
fn a_dirty_work_tree_or_a_mismatched_release_tag_is_refused() {
    let image = format!("{}/{}", stack().registry, unique("git"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "git\n", "");
    let git = |args: &[&str]| support::git(dir.path(), args);
    support::commit_all(dir.path());
    git(&["tag", "v0.9.0"]);
    std::fs::write(dir.path().join("notes.txt"), "uncommitted\n").unwrap();
    let out = cargo_v6(dir.path(), &["v6", "publish", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("--allow-dirty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`v0.9.0`"),
        "both problems at once: {stderr}"
    );
    git(&["tag", "-d", "v0.9.0"]);
    git(&["tag", "v1.0.0"]);
    let out = cargo_v6(dir.path(), &["v6", "publish", "--allow-dirty"]);
    assert_ok(&out);
    let labels = &inspect(&format!("{image}:1.0.0"))["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.revision"]
            .as_str()
            .unwrap()
            .len(),
        40
    );
}

// ---- credentials ----

fn auth_project() -> (tempfile::TempDir, String) {
    let image = format!("{}/{}", stack().auth_registry, unique("auth"));
    (busybox_project(&image, "secret stuff\n", ""), image)
}

fn with_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::cargo_bin("cargo-v6").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

#[test]
fn credentials_from_the_environment_work_and_never_show() {
    let s = stack();
    let (dir, image) = auth_project();
    let _cleanup = LocalImages(image.clone());
    let empty_config = tempfile::tempdir().unwrap();
    let config = empty_config.path().to_str().unwrap();
    let out = with_env(
        dir.path(),
        &[
            ("DOCKER_CONFIG", config),
            ("V6_REGISTRY_USERNAME", &s.auth_user),
            ("V6_REGISTRY_PASSWORD", &s.auth_password),
        ],
        &["v6", "publish", "-v"],
    );
    let stdout = assert_ok(&out);
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with(&format!("{image}@sha256:"))
    );
    assert!(!stdout.contains(&s.auth_password) && !text(&out.stderr).contains(&s.auth_password));

    // Wrong password: the 401 message names the registry, and the password is nowhere.
    std::fs::write(dir.path().join("hello.txt"), "another\n").unwrap();
    let wrong = "wr0ng+pass/word";
    let out = with_env(
        dir.path(),
        &[
            ("DOCKER_CONFIG", config),
            ("V6_REGISTRY_USERNAME", &s.auth_user),
            ("V6_REGISTRY_PASSWORD", wrong),
        ],
        &["v6", "publish", "--set-version", "2.0.0", "-v"],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("401") && all.contains(&s.auth_registry),
        "{all}"
    );
    assert!(!all.contains(wrong), "{all}");
}

#[test]
fn credentials_from_a_docker_config_file_work() {
    let s = stack();
    let (dir, image) = auth_project();
    let _cleanup = LocalImages(image.clone());
    let config = tempfile::tempdir().unwrap();
    let auth = base64_encode(&format!("{}:{}", s.auth_user, s.auth_password));
    std::fs::write(
        config.path().join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            s.auth_registry
        ),
    )
    .unwrap();
    let out = with_env(
        dir.path(),
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
        &["v6", "publish"],
    );
    let stdout = assert_ok(&out);
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with(&format!("{image}@sha256:"))
    );
    assert!(!text(&out.stderr).contains(&s.auth_password));

    // No credentials at all: a clear 401 that says how to provide them.
    let nothing = tempfile::tempdir().unwrap();
    let out = with_env(
        dir.path(),
        &[("DOCKER_CONFIG", nothing.path().to_str().unwrap())],
        &["v6", "publish", "--set-version", "1.0.1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("V6_REGISTRY_USERNAME"),
        "{}",
        text(&out.stderr)
    );
}

fn base64_encode(input: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- faults ----

#[test]
fn an_unreachable_engine_is_one_clear_line() {
    let image = format!("{}/{}", stack().registry, unique("noengine"));
    let dir = busybox_project(&image, "x\n", "");
    let out = with_env(
        dir.path(),
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        &["v6", "publish"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: cannot connect to the Docker engine at unix:///nonexistent/docker.sock"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
    assert!(repo_tags(&image).is_empty());
    // The dry run checks the engine too: it would be needed for the build.
    let dry = with_env(
        dir.path(),
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        &["v6", "publish", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(1), "{}", text(&dry.stderr));
}

#[test]
fn an_unreachable_registry_is_named() {
    let dir = busybox_project("127.0.0.1:9/nothing/here", "x\n", "");
    let out = cargo_v6(dir.path(), &["v6", "publish"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error:") && stderr.contains("127.0.0.1:9"),
        "{stderr}"
    );
}

#[test]
fn a_failing_build_step_is_shown_and_nothing_is_pushed() {
    let image = format!("{}/{}", stack().registry, unique("failing"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "x\n", "");
    let manifest = dir.path().join("v6.toml");
    let text_before = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text_before.replace(
            "command =",
            "install = \"echo about to fail && false\"\ncommand =",
        ),
    )
    .unwrap();
    let out = cargo_v6(dir.path(), &["v6", "publish"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("RUN echo about to fail && false"),
        "{stderr}"
    );
    assert!(
        stderr.contains("about to fail\n"),
        "the step's output: {stderr}"
    );
    assert!(repo_tags(&image).is_empty());
}

#[test]
fn doctor_checks_engine_and_registry() {
    let image = format!("{}/{}", stack().registry, unique("doctor"));
    let dir = busybox_project(&image, "x\n", "");
    let out = cargo_v6(dir.path(), &["v6", "doctor"]);
    assert_ok(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Docker engine at"), "{stderr}");
    assert!(
        stderr.contains(&format!("registry {}", stack().registry)),
        "{stderr}"
    );
    let out = with_env(
        dir.path(),
        &[("DOCKER_HOST", "tcp://127.0.0.1:9")],
        &["v6", "doctor"],
    );
    assert_eq!(out.status.code(), Some(1));
}

// ---- the real vantage6 template, run as a node runs it ----

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bundled example, built from the real 4.x Python template on the locally made
/// `algorithm-base:4.15` (real vantage6-algorithm-tools inside), published, removed locally,
/// and run by digest as a node runs it (`cargo v6 run --image`, which pulls it back).
#[test]
fn the_example_algorithm_publishes_and_runs_like_on_a_node() {
    let image = format!("{}/{}", stack().registry, unique("partial-sum"));
    let _cleanup = LocalImages(image.clone());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/partial-sum"), dir.path());
    let manifest = dir.path().join("v6.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        original.replace("127.0.0.1:5550/algorithms/partial-sum", &image),
    )
    .unwrap();

    let stdout = assert_ok(&cargo_v6(dir.path(), &["v6", "publish"]));
    let reference = stdout.lines().last().unwrap().to_string();
    assert!(
        reference.starts_with(&format!("{image}@sha256:")),
        "{reference}"
    );
    let labels = &inspect(&format!("{image}:1.0.0"))["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "partial_sum");
    assert_eq!(
        labels["org.opencontainers.image.description"],
        "The sum and count of one column on every node"
    );

    // A node pulls by digest: remove every local copy first; `run` pulls it back.
    drop(LocalImages(image.clone()));
    let run = cargo_v6(
        dir.path(),
        &[
            "v6",
            "run",
            "partial_sum",
            "--image",
            &reference,
            "--kwargs",
            r#"{"column": "a"}"#,
            "--data",
            "default=test/data.csv",
        ],
    );
    let stdout = assert_ok(&run);
    assert_eq!(stdout, "{\"sum\": 6, \"count\": 3}\n");
    assert!(
        text(&run.stderr).contains(&format!("Pulling {reference}")),
        "{}",
        text(&run.stderr)
    );
    // The test data stayed out of the image (.dockerignore), the package is installed.
    let listing = docker(&["run", "--rm", "--entrypoint", "ls", &reference, "/app"]);
    let files = text(&listing.stdout);
    assert!(
        files.contains("partial_sum") && !files.contains("test"),
        "{files}"
    );
    // Pulled by digest, the image has no tag for LocalImages to find.
    docker(&["rmi", "-f", "--no-prune", &reference]);
}

/// Output with what differs between runs replaced: the unique image name, the temporary
/// project directory and every digest.
fn redacted(text: &str, image: &str, dir: &Path) -> String {
    let digests = regex::Regex::new("sha256:[0-9a-f]{64}").unwrap();
    let text = text.replace(image, "[IMAGE]").replace(
        &dir.canonicalize().unwrap().display().to_string(),
        "[PROJECT]",
    );
    digests.replace_all(&text, "sha256:[DIGEST]").into_owned()
}

#[test]
fn dry_run_and_refusal_read_like_the_readme() {
    let image = format!("{}/{}", stack().registry, unique("snapshot"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "first\n", "");
    // A backport-like state: 2.0.0 owns `latest` and `2`; 1.0.0 gets `1.0` and `1`.
    publish_json(dir.path(), &["--set-version", "2.0.0"]);

    let human = cargo_v6(dir.path(), &["v6", "publish", "--dry-run"]);
    assert!(human.status.success(), "{}", text(&human.stderr));
    assert_eq!(text(&human.stdout), "", "a dry run prints no digest");
    insta::assert_snapshot!(
        "dry_run_human",
        redacted(&text(&human.stderr), &image, dir.path())
    );
    let json = assert_ok(&cargo_v6(
        dir.path(),
        &["v6", "publish", "--dry-run", "--message-format", "json"],
    ));
    let value: Value = serde_json::from_str(json.trim()).unwrap();
    let shown = serde_json::json!({
        "reason": value["reason"],
        "dry_run": value["dry_run"],
        "action": value["action"],
        "steps": value["steps"],
    });
    insta::assert_snapshot!(
        "dry_run_json",
        redacted(
            &serde_json::to_string_pretty(&shown).unwrap(),
            &image,
            dir.path()
        )
    );

    publish_json(dir.path(), &[]);
    std::fs::write(dir.path().join("hello.txt"), "changed\n").unwrap();
    let refused = cargo_v6(dir.path(), &["v6", "publish"]);
    assert_eq!(refused.status.code(), Some(1));
    insta::assert_snapshot!(
        "publish_refused",
        redacted(&text(&refused.stderr), &image, dir.path())
    );
}

#[test]
fn an_unchanged_republish_takes_at_most_8_registry_requests() {
    let proxy = counting_proxy::CountingProxy::start(&stack().registry);
    let image = format!("{}/{}", proxy.host(), unique("requests"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "counted\n", "");
    // Three aliases: 1.0, 1, latest.
    let first = publish_json(dir.path(), &[]);
    proxy.take();
    let again = publish_json(dir.path(), &[]);
    let requests = proxy.take();
    assert_eq!(again["skipped_unchanged"], true);
    assert_eq!(again["digest"], first["digest"]);
    assert!(
        requests.len() <= 8,
        "{} requests: {requests:#?}",
        requests.len()
    );
    assert!(
        requests.iter().filter(|r| r.ends_with("/v2/")).count() <= 1,
        "{requests:#?}"
    );
}

/// An unchanged republish that points an alias back at its release lists the registry's tags
/// twice: before the plan (the survey's listing, which also decides the aliases, since nothing
/// is built in between) and after writing the alias (the repair pass); not a third time right
/// before the write.
#[test]
fn an_unchanged_republish_lists_the_tags_once_before_moving_an_alias_back() {
    let proxy = counting_proxy::CountingProxy::start(&stack().registry);
    let image = format!("{}/{}", proxy.host(), unique("relist"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "relisted\n", "");
    let first = publish_json(dir.path(), &[]);
    // `latest` moved away: the same image as an OCI manifest, another digest.
    let copied = skopeo(&[
        "copy",
        "--format",
        "oci",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{image}:1.0.0"),
        &format!("docker://{image}:latest"),
    ]);
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    let moved = digest_of(&format!("{image}:latest")).unwrap();
    assert_ne!(first["digest"], moved.as_str());
    proxy.take();
    let again = publish_json(dir.path(), &[]);
    let requests = proxy.take();
    assert_eq!(again["skipped_unchanged"], true);
    assert_eq!(
        again["tags_pushed"],
        serde_json::json!([format!("{image}:latest")])
    );
    assert_eq!(
        digest_of(&format!("{image}:latest")).as_deref(),
        first["digest"].as_str()
    );
    let listings = requests
        .iter()
        .filter(|r| r.contains("/tags/list?") && !r.contains("&last="))
        .count();
    assert_eq!(listings, 2, "{requests:#?}");
}

/// Starts `publish --message-format json` in `dir` without waiting for it.
fn spawn_publish(dir: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_cargo-v6"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["v6", "publish", "--message-format", "json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Two CI jobs publishing one version with different content, started together. Their
/// claims let one push at a time (README, "Guarantees"); what must hold in every
/// interleaving: exactly one exits 0, having printed a digest holding its own content, the tag
/// ends on the winner's content, and the loser exits 1 naming a digest that holds the other's
/// content.
#[test]
fn concurrent_publishes_of_one_version_tell_the_truth() {
    let contents = ["content a\n", "content b\n"];
    let named = regex::Regex::new("sha256:[0-9a-f]{64}").unwrap();
    for round in 0..4 {
        let image = format!("{}/{}", stack().registry, unique(&format!("race{round}")));
        let _cleanup = LocalImages(image.clone());
        let a = busybox_project(&image, contents[0], "");
        let b = busybox_project(&image, contents[1], "");
        let runs = [spawn_publish(a.path(), &[]), spawn_publish(b.path(), &[])];
        let outputs: Vec<Output> = runs
            .into_iter()
            .map(|r| r.wait_with_output().unwrap())
            .collect();
        let shown = |i: usize| format!("{}{}", text(&outputs[i].stdout), text(&outputs[i].stderr));
        let content_of = |digest: &str| {
            let run = docker(&["run", "--rm", &format!("{image}@{digest}")]);
            text(&run.stdout)
        };
        let winners: Vec<usize> = (0..2).filter(|&i| outputs[i].status.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one wins:\n{}\n---\n{}",
            shown(0),
            shown(1)
        );
        for &winner in &winners {
            let printed: Value =
                serde_json::from_str(text(&outputs[winner].stdout).trim()).unwrap();
            let digest = printed["digest"].as_str().unwrap();
            assert_eq!(
                content_of(digest),
                contents[winner],
                "round {round}: {}",
                shown(winner)
            );
        }
        let final_digest = digest_of(&format!("{image}:1.0.0")).unwrap();
        let final_content = content_of(&final_digest);
        assert!(
            winners.iter().any(|&w| contents[w] == final_content),
            "round {round}: the tag holds a loser's content"
        );
        for loser in (0..2).filter(|i| !winners.contains(i)) {
            assert_eq!(
                outputs[loser].status.code(),
                Some(1),
                "round {round}: {}",
                shown(loser)
            );
            let stderr = text(&outputs[loser].stderr);
            let error = stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or_default();
            let digest = named
                .find(error)
                .unwrap_or_else(|| panic!("round {round}: names no digest: {stderr}"));
            assert_eq!(
                content_of(digest.as_str()),
                contents[1 - loser],
                "round {round}"
            );
        }
    }
}

#[test]
fn concurrent_versions_leave_every_alias_on_the_highest() {
    for (round, delay_ms) in [0u64, 0, 300].into_iter().enumerate() {
        let image = format!(
            "{}/{}",
            stack().registry,
            unique(&format!("versions{round}"))
        );
        let _cleanup = LocalImages(image.clone());
        let high = busybox_project(&image, "1.5.0\n", "");
        let low = busybox_project(&image, "1.4.x\n", "");
        let low_version = if delay_ms > 0 { "1.4.9" } else { "1.4.0" };
        let first = spawn_publish(high.path(), &["--set-version", "1.5.0"]);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let second = spawn_publish(low.path(), &["--set-version", low_version]);
        for run in [first, second] {
            let output = run.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "round {round}: {}",
                text(&output.stderr)
            );
        }
        let high_digest = digest_of(&format!("{image}:1.5.0")).unwrap();
        let low_digest = digest_of(&format!("{image}:{low_version}")).unwrap();
        for alias in ["latest", "1", "1.5"] {
            assert_eq!(
                digest_of(&format!("{image}:{alias}")).as_deref(),
                Some(high_digest.as_str()),
                "round {round}: `{alias}` must end on 1.5.0"
            );
        }
        assert_eq!(
            digest_of(&format!("{image}:1.4")).as_deref(),
            Some(low_digest.as_str()),
            "round {round}"
        );
    }
}

#[test]
fn engine_registry_and_work_tree_problems_are_reported_together() {
    let image = format!("{}/{}", stack().registry, unique("together"));
    let dir = busybox_project(&image, "together\n", "");
    support::commit_all(dir.path());
    std::fs::write(dir.path().join("notes.txt"), "uncommitted\n").unwrap();
    let out = Command::cargo_bin("cargo-v6")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", "unix:///nonexistent/cargo-v6/docker.sock")
        .args(["v6", "publish", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot publish:"), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/cargo-v6/docker.sock"),
        "the engine: {stderr}"
    );
    assert!(stderr.contains("notes.txt"), "the work tree: {stderr}");
    assert!(
        digest_of(&format!("{image}:1.0.0")).is_none(),
        "nothing pushed"
    );
}

#[test]
fn a_dockerignore_linking_outside_the_project_is_sent_as_a_link() {
    let image = format!("{}/{}", stack().registry, unique("ignore-link"));
    let _cleanup = LocalImages(image.clone());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "TOKEN=do-not-ship\n").unwrap();
    let dir = busybox_project(&image, "linked\n", "");
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        dir.path().join(".dockerignore"),
    )
    .unwrap();
    let published = publish_json(dir.path(), &[]);
    let digest = published["digest"].as_str().unwrap();
    let run = docker(&[
        "run",
        "--rm",
        &format!("{image}@{digest}"),
        "sh",
        "-c",
        "ls -la /app; cat /app/.dockerignore 2>&1; true",
    ]);
    let shown = text(&run.stdout);
    assert!(!shown.contains("do-not-ship"), "{shown}");
    assert!(
        shown.contains(".dockerignore -> "),
        "sent as the link it is: {shown}"
    );
}

#[test]
fn a_file_changed_while_the_context_is_sent_fails_the_build_naming_it() {
    let image = format!("{}/{}", stack().registry, unique("changing"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "changing\n", "");
    // Enough bytes before it that the change lands while the context streams: files are sent
    // in sorted order, and `zz-last.bin` comes last.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..24 {
        std::fs::write(data.join(format!("{i:02}.bin")), vec![i as u8; 2 << 20]).unwrap();
    }
    let last = dir.path().join("zz-last.bin");
    std::fs::write(&last, vec![0u8; 1 << 20]).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-v6"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["v6", "publish"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Rewrite the file as soon as the build starts (the fingerprint is taken by then).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains("Building") {
            std::fs::write(&last, vec![1u8; 1 << 20]).unwrap();
            break;
        }
    }
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(
        seen.contains("zz-last.bin changed while the build context was being sent"),
        "{seen}"
    );
    assert!(
        digest_of(&format!("{image}:1.0.0")).is_none(),
        "nothing pushed"
    );
}

#[test]
fn an_unchanged_republish_needs_no_engine() {
    let image = format!("{}/{}", stack().registry, unique("no-engine"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "no engine needed\n", "");
    let first = publish_json(dir.path(), &[]);
    let out = Command::cargo_bin("cargo-v6")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", "unix:///nonexistent/cargo-v6/docker.sock")
        .args(["v6", "publish", "--message-format", "json"])
        .output()
        .unwrap();
    let stdout = assert_ok(&out);
    let again: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(again["skipped_unchanged"], true);
    assert_eq!(again["digest"], first["digest"]);
}

/// A version whose tag leaves no room for the claim's suffix is refused before anything is
/// built (it was refused after the build, at the claim).
#[test]
fn a_version_too_long_to_claim_is_refused_before_the_build() {
    let image = format!("{}/{}", stack().registry, unique("e2e-long-version"));
    let dir = busybox_project(&image, "long\n", "");
    let manifest = dir.path().join("v6.toml");
    let version = format!("1.0.0-{}", "a".repeat(84));
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""));
    std::fs::write(&manifest, text).unwrap();
    let out = cargo_v6(dir.path(), &["v6", "publish", "-v"]);
    let stderr = support::fails(&out);
    assert!(stderr.contains("cannot claim"), "{stderr}");
    assert!(!stderr.contains("Step 1/"), "it built: {stderr}");
    assert!(repo_tags(&image).is_empty(), "{:?}", repo_tags(&image));
}
