//! Size limits against the real engine and registry of `scripts/stack up`: the largest values
//! that `v6.toml` accepts (a description on the Dockerfile's `LABEL` line, a build argument
//! in the build request's URL) are accepted by the engine too, and publish. The values too
//! large are refused before anything is sent (`values_too_large_for_the_engine_name_their_field`
//! in tests/cli.rs, which needs no stack).

use std::path::Path;

use serde_json::Value;

mod support;
use support::cargo_v6;
use support::{LocalImages, assert_ok, busybox_project, skopeo, stack, text, unique};

/// Writes the project's v6.toml with a description of `description` bytes and a build
/// argument `BIG` of `arg` bytes (the install step checks that it arrives whole).
fn write_manifest(dir: &Path, image: &str, description: usize, arg: usize) {
    let project = busybox_project(
        image,
        "",
        &format!(
            "args = {{ BIG = \"{}\" }}\nlabels = {{ \"org.example.notes\" = \"line one\\nline two\" }}\ninstall = \"test ${{#BIG}} -eq {arg}\"\n",
            "x".repeat(arg)
        ),
    );
    let text = std::fs::read_to_string(project.path().join("v6.toml")).unwrap();
    let text = text.replacen(
        "version = \"1.0.0\"\n",
        &format!(
            "version = \"1.0.0\"\ndescription = \"{}\"\n",
            "d".repeat(description)
        ),
        1,
    );
    std::fs::write(dir.join("v6.toml"), text).unwrap();
    std::fs::write(dir.join("hello.txt"), "limits\n").unwrap();
}

/// The largest size in `1..64 KiB` for which `plan --offline` accepts the manifest that
/// `manifest(size)` writes.
fn largest_accepted(dir: &Path, manifest: impl Fn(usize)) -> usize {
    let (mut ok, mut refused) = (1, 64 * 1024);
    manifest(ok);
    assert_ok(&cargo_v6(dir, &["v6", "plan", "--offline"]));
    while refused - ok > 1 {
        let mid = (ok + refused) / 2;
        manifest(mid);
        let output = cargo_v6(dir, &["v6", "plan", "--offline"]);
        if output.status.success() {
            ok = mid;
        } else {
            assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
            assert!(text(&output.stderr).contains("is too large"));
            refused = mid;
        }
    }
    ok
}

#[test]
fn the_largest_values_v6_toml_accepts_publish() {
    let image = format!("{}/{}", stack().registry, unique("limits"));
    let _cleanup = LocalImages(image.clone());
    let dir = tempfile::tempdir().unwrap();
    let description = largest_accepted(dir.path(), |n| write_manifest(dir.path(), &image, n, 1));
    let arg = largest_accepted(dir.path(), |n| write_manifest(dir.path(), &image, 1, n));
    // Close to the 60 KiB limits: what the checks leave out is little.
    assert!(description > 60 * 1024 - 200, "{description}");
    assert!(arg > 60 * 1024 - 200, "{arg}");

    write_manifest(dir.path(), &image, description, arg);
    let stdout = assert_ok(&cargo_v6(dir.path(), &["v6", "publish"]));
    let digest = stdout.lines().last().unwrap().split_once('@').unwrap().1;
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}:1.0.0"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest);
    let labels = &inspected["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.description"],
        "d".repeat(description).as_str()
    );
    assert_eq!(labels["org.example.notes"], "line one\nline two");
}
