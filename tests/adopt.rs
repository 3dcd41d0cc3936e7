//! Adopting cargo v6 in a project shaped like vantage6's own algorithm repositories, end to
//! end on the stack of `scripts/stack up`: `init`, `publish` to the open registry, then the
//! image pulled by digest and run the way a node runs it (`cargo v6 run --image`), so that
//! the wrapper really imports the package `init` named. Like tests/e2e.rs, every test fails
//! (never skips) without the stack.
//!
//! The images build on the locally made `algorithm-base:4.15` (nothing is pulled): the
//! fixtures' packages need nothing the base does not have, so `pip install /app` works offline.

use std::path::{Path, PathBuf};

mod support;
use support::cargo_v6;
use support::{LocalImages, assert_ok, copy_dir, docker, stack, text, unique};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of fixture `name` in a temporary directory.
fn project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures").join(name), dir.path());
    dir
}

/// `publish`, then the printed `IMAGE@sha256:...` pulled into an engine that has no other copy
/// of the image, as a node pulls it; returns the reference.
fn publish_and_pull(dir: &Path, image: &str) -> String {
    let stdout = assert_ok(&cargo_v6(dir, &["publish"]));
    let reference = stdout.lines().last().unwrap().to_string();
    assert!(
        reference.starts_with(&format!("{image}@sha256:")),
        "{reference}"
    );
    drop(LocalImages(image.to_string()));
    let pulled = docker(&["pull", &reference]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    reference
}

/// The algorithm's output when a node runs `reference` on the project's test/input.json (its
/// method and kwargs) and test/data.csv: `cargo v6 run --image`, as a node runs it.
fn run_like_node(reference: &str, dir: &Path) -> String {
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test/input.json")).unwrap())
            .unwrap();
    let method = input["method"].as_str().unwrap();
    let kwargs = input["kwargs"].to_string();
    let data = format!("default={}", dir.join("test/data.csv").display());
    let run = cargo_v6(
        dir,
        &[
            "run", method, "--image", reference, "--kwargs", &kwargs, "--data", &data,
        ],
    );
    assert_ok(&run).trim_end().to_string()
}

#[test]
fn a_hyphenated_package_folder_is_what_the_node_imports() {
    // setup(name="my-algo") and the folder my-algo/__init__.py, no Dockerfile: the wrapper
    // must import `my-algo` (a made-up `my_algo` fails on the node with ModuleNotFoundError).
    let image = format!("{}/{}", stack().registry, unique("my-algo"));
    let _cleanup = LocalImages(image.clone());
    let dir = project("hyphen-package");
    assert_ok(&cargo_v6(
        dir.path(),
        &["init", "--image", &image, "--vantage6", "4.15"],
    ));
    let written = std::fs::read_to_string(dir.path().join("v6.toml")).unwrap();
    assert!(written.contains("name = \"my-algo\"\n"), "{written}");

    let reference = publish_and_pull(dir.path(), &image);
    assert_eq!(
        run_like_node(&reference, dir.path()),
        r#"{"count": 3, "max": 5}"#
    );
}

#[test]
fn a_dockerfile_with_its_own_steps_is_built_as_it_is_and_runs_on_a_node() {
    // The fixture's extra step is `RUN apt-get ...`, which cannot reach a package mirror here:
    // an offline step stands in for it, so that the image shows the step ran.
    let image = format!("{}/{}", stack().registry, unique("own-dockerfile"));
    let _cleanup = LocalImages(image.clone());
    let dir = project("apt-step");
    let dockerfile = dir.path().join("Dockerfile");
    let original = std::fs::read_to_string(&dockerfile).unwrap();
    let apt = original
        .lines()
        .find(|l| l.starts_with("RUN apt-get"))
        .unwrap();
    std::fs::write(
        &dockerfile,
        original.replace(apt, "RUN echo extra > /extra.txt"),
    )
    .unwrap();
    let init = assert_ok(&cargo_v6(dir.path(), &["init", "--image", &image]));
    assert_eq!(init, "", "init prints nothing on stdout");
    let written = std::fs::read_to_string(dir.path().join("v6.toml")).unwrap();
    assert!(
        written.contains("dockerfile = \"Dockerfile\"\n"),
        "{written}"
    );

    let reference = publish_and_pull(dir.path(), &image);
    assert_eq!(run_like_node(&reference, dir.path()), r#"{"rows": 4}"#);
    let extra = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        &reference,
        "/extra.txt",
    ]);
    assert_eq!(text(&extra.stdout), "extra\n", "{}", text(&extra.stderr));
}

#[test]
fn a_4x_repository_with_release_tags_releases_as_init_says() {
    // vantage6's 4.x shape: a retired untagged base, a comment naming 3.x's `docker_wrapper()`
    // above the 4.x CMD, setup.py's stale version, bare release tags.
    let image = format!("{}/{}", stack().registry, unique("count"));
    let _cleanup = LocalImages(image.clone());
    let dir = project("comment-wrapper");
    let git = |args: &[&str]| support::git(dir.path(), args);
    support::commit_all(dir.path());
    git(&["tag", "1.0.3"]);
    let init = cargo_v6(dir.path(), &["init", "--image", &image]);
    assert_ok(&init);
    let written = std::fs::read_to_string(dir.path().join("v6.toml")).unwrap();
    assert!(written.contains("vantage6 = \"4.15\"\n"), "{written}");
    assert!(
        text(&init.stderr).contains("e.g. `git tag 1.0.4` after the latest release tag `1.0.3`"),
        "{}",
        text(&init.stderr)
    );
    // As init's next steps say: commit, tag, plan, publish.
    git(&["add", "v6.toml"]);
    git(&["commit", "-qm", "cargo v6"]);
    git(&["tag", "1.0.4"]);
    let plan = cargo_v6(dir.path(), &["plan"]);
    assert_ok(&plan);
    assert!(
        !text(&plan.stderr).contains("not the one built"),
        "init chose to render, said once: {}",
        text(&plan.stderr)
    );
    let reference = publish_and_pull(dir.path(), &image);
    assert!(reference.starts_with(&format!("{image}@")), "{reference}");
    assert_eq!(run_like_node(&reference, dir.path()), r#"{"rows": 3}"#);

    // A change released under the same tag (moved): refused, and the way out is a new tag,
    // not the metadata that `version-from-tag` does not read.
    std::fs::write(dir.path().join("test/data.csv"), "a,b\n1,x\n").unwrap();
    git(&["commit", "-qam", "change"]);
    git(&["tag", "-f", "1.0.4"]);
    let refused = cargo_v6(dir.path(), &["publish"]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tag the change as a new release (e.g. `git tag 1.0.5`)"),
        "{stderr}"
    );
    assert!(!stderr.contains("bump the version"), "{stderr}");
}
