//! Helpers shared by the test crates in `tests/`: fixtures copied out of the repository, and
//! the real stack that `scripts/stack up` starts (its addresses come from `scripts/stack env`).
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// The stack's addresses, from the environment that `scripts/stack env` prints.
pub struct Stack {
    /// The open registry, `127.0.0.1:PORT`.
    pub registry: String,
    /// The registry with htpasswd auth.
    pub auth_registry: String,
    /// Its user.
    pub auth_user: String,
    /// Its password (chosen so that its base64 has `+` and `/`).
    pub auth_password: String,
    /// A tiny busybox base image in the engine.
    pub busybox: String,
}

/// The stack's addresses; panics (the test fails, never skips) when the stack is not set up.
pub fn stack() -> Stack {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with scripts/test, or eval \"$(scripts/stack env)\" after scripts/stack up")
        })
    };
    Stack {
        registry: var("V6_TEST_REGISTRY"),
        auth_registry: var("V6_TEST_AUTH_REGISTRY"),
        auth_user: var("V6_TEST_AUTH_USER"),
        auth_password: var("V6_TEST_AUTH_PASSWORD"),
        busybox: var("V6_TEST_BUSYBOX_IMAGE"),
    }
}

/// A repository name no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "e2e/{name}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000
    )
}

/// Removes the local images of a repository when the test ends: images cost disk, and a test
/// about an empty engine must not see another's leftovers.
pub struct LocalImages(pub String);

impl Drop for LocalImages {
    fn drop(&mut self) {
        let out = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", &self.0]);
        let refs: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        if !refs.is_empty() {
            // Untagged parents stay: they are cache layers other tests' builds may be using.
            let mut args = vec!["rmi", "-f", "--no-prune"];
            args.extend(refs.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// A minimal busybox project publishing `hello.txt` (saying `greeting`) to `image`, version
/// 1.0.0; `extra_build` lines go into `[build]`.
pub fn busybox_project(image: &str, greeting: &str, extra_build: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v6.toml"),
        format!(
            "[algorithm]\nname = \"hello\"\nwrapper = \"minimal\"\nvantage6 = \"4.13\"\nimage = \"{image}\"\nversion = \"1.0.0\"\n\n[build]\nbase = \"{}\"\n{extra_build}command = [\"cat\", \"/app/hello.txt\"]\n",
            stack().busybox
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("hello.txt"), greeting).unwrap();
    dir
}

/// Copies a directory tree (fixtures go to temporary directories, away from this repository's
/// git state).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The docker CLI against the stack's engine (classic builder).
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI runs")
}

/// skopeo, the independent registry client.
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs")
}

/// The tags of `image` (on the real registry). A repository the registry has never heard of
/// has none; any other failure (the registry unreachable) fails the test.
pub fn repo_tags(image: &str) -> Vec<String> {
    let out = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    if !out.status.success() {
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("404") || stderr.to_lowercase().contains("name unknown"),
            "skopeo list-tags {image}: {stderr}"
        );
        return Vec::new();
    }
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut tags: Vec<String> = value["Tags"]
        .as_array()
        .map(|t| t.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The digest under a reference on the registry, `None` when it does not resolve.
pub fn digest_of(reference: &str) -> Option<String> {
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    out.status.success().then(|| {
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["Digest"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

/// Asserts success, showing both streams otherwise; returns stdout.
pub fn assert_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs git in `dir` with a fixed identity; fails the test with git's message.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// Makes `dir` a git repository with everything in it committed.
pub fn commit_all(dir: &Path) {
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-qm", "release"]);
}

/// `cargo-v6 ARGS` in `dir`, without colours and without the registry credentials of the
/// environment (each test says which credentials it uses).
pub fn cargo_v6(dir: &Path, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("cargo-v6")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("V6_REGISTRY_USERNAME")
        .env_remove("V6_REGISTRY_PASSWORD")
        .args(args)
        .output()
        .unwrap()
}

/// `cargo v6 ARGS` in `dir` with `tmp` as the temporary directory (where `run` makes its task
/// folders, so that a test can check they are gone).
pub fn cargo_v6_in_tmp(dir: &Path, tmp: &Path, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("cargo-v6")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp)
        .args(args)
        .output()
        .unwrap()
}

/// Longest any cargo-v6 run of [`cargo_v6_env`] may take, whatever goes wrong.
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// `cargo-v6 ARGS` in `dir` with `env` applied after removing what the stack's environment or
/// a previous test could leak in (registry credentials, TLS settings, contexts), and killed
/// after [`RUN_TIMEOUT`]: for the tests that point it at engines that may never answer.
pub fn cargo_v6_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("cargo-v6").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .timeout(RUN_TIMEOUT)
        .env_remove("V6_REGISTRY_USERNAME")
        .env_remove("V6_REGISTRY_PASSWORD")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.args(args).output().unwrap()
}

/// The stderr of a run that must fail with exit 1 and no panic (the rustls crypto provider in
/// particular); shows both streams otherwise.
pub fn fails(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{stderr}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The digest in the last line publish prints on stdout (`IMAGE@sha256:...`).
pub fn printed_digest(stdout: &str) -> String {
    let last = stdout.lines().last().unwrap_or_default();
    let (_, digest) = last
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("no IMAGE@DIGEST line: {stdout}"));
    digest.to_string()
}
