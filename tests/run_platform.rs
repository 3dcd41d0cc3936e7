//! `cargo v6 run --platform` / `--emulate` against the real stack: an image read from the
//! stack's registry, unpacked into a root file system and run under Debian's
//! qemu-user-static (no binfmt_misc, no engine), compared with the engine's run of the same
//! image on the same data.
//!
//! `XDG_CACHE_HOME` points at a folder of the test's own (the root file systems' cache), and
//! `TMPDIR` too (the run's work folders, which must be gone afterwards).

use std::path::{Path, PathBuf};
use std::process::Output;

mod support;
use support::{
    LocalImages, cargo_v6, cargo_v6_env, copy_dir, fails, printed_digest, stack, text, unique,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of examples/partial-sum whose image is `image`.
fn partial_sum_project(image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/partial-sum"), dir.path());
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
    dir
}

/// The folders a run left in `dir`.
fn left_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `body` as a manifest of `media_type` under `reference` (`REPO:TAG`) of the stack's
/// registry.
fn put_manifest(repository: &str, tag: &str, media_type: &str, body: &str) {
    let registry = stack().registry;
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg(body)
        .arg(format!("http://{registry}/v2/{repository}/manifests/{tag}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn an_image_run_under_qemu_gives_the_engines_output_and_says_what_it_cannot_run() {
    let repository = unique("run-qemu");
    let image = format!("{}/{repository}", stack().registry);
    let _cleanup = LocalImages(image.clone());
    let project = partial_sum_project(&image);
    let published = cargo_v6(project.path(), &["v6", "publish", "--set-version", "1.0.0"]);
    assert!(published.status.success(), "{}", text(&published.stderr));
    let digest = printed_digest(&text(&published.stdout));
    let pinned = format!("{image}@{digest}");
    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let data = project.path().join("test/data.csv");
    let data_arg = format!("default={}", data.display());
    let run_env = |path: Option<&str>, args: &[&str]| -> Output {
        let mut env = vec![
            ("TMPDIR", tmp.path().to_str().unwrap()),
            ("XDG_CACHE_HOME", cache.path().to_str().unwrap()),
        ];
        env.extend(path.map(|p| ("PATH", p)));
        let mut all = vec!["v6", "run", "--vantage6", "4.15"];
        all.extend_from_slice(args);
        cargo_v6_env(project.path(), &env, &all)
    };
    let run = |args: &[&str]| run_env(None, args);
    let sum = |method: &str, image: &str, extra: &[&str]| {
        let mut args = vec![
            method,
            "--image",
            image,
            "--kwargs",
            r#"{"column": "b"}"#,
            "--data",
            &data_arg,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // The engine's run, then the same image under qemu-x86_64-static.
    let engine = sum("partial_sum", &pinned, &[]);
    assert!(engine.status.success(), "{}", text(&engine.stderr));
    let started = std::time::Instant::now();
    let emulated = sum("partial_sum", &pinned, &["--emulate"]);
    let first = started.elapsed();
    let stderr = text(&emulated.stderr);
    assert!(emulated.status.success(), "{stderr}");
    assert_eq!(text(&emulated.stdout), text(&engine.stdout), "{stderr}");
    assert_eq!(text(&emulated.stdout), "{\"sum\": 30.75, \"count\": 2}\n");
    for line in [
        "under qemu-x86_64-static (the network is not taken away)",
        "info > Module 'partial_sum' imported!",
        // No mounts: the node's paths are this machine's.
        &format!(
            "info > Using '{}' with label 'default' as database",
            data.display()
        ),
    ] {
        assert!(stderr.contains(line), "expected `{line}` in\n{stderr}");
    }
    assert_eq!(
        left_in(tmp.path()),
        Vec::<String>::new(),
        "work folders left"
    );
    // One root file system, named by the image's manifest digest; no partial one.
    let roots = cache.path().join("cargo-v6/rootfs");
    let entry = digest.replace(':', "-");
    assert_eq!(left_in(&roots), [entry.clone()]);
    assert!(roots.join(&entry).join("usr/bin").is_dir());

    // An index over it, by tag: resolved to its linux/amd64 image, the same cached root (no
    // download: with -v the layers would show).
    let manifest = support::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{pinned}"),
    ]);
    assert!(manifest.status.success());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": digest,
            "size": manifest.stdout.len(),
            "platform": {"os": "linux", "architecture": "amd64"},
        }],
    });
    put_manifest(
        &repository,
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &index.to_string(),
    );
    let multi = format!("{image}:multi");
    let started = std::time::Instant::now();
    let cached = sum(
        "partial_sum",
        &multi,
        &["-v", "--platform", "linux/amd64", "--emulate"],
    );
    let second = started.elapsed();
    let stderr = text(&cached.stderr);
    assert!(cached.status.success(), "{stderr}");
    assert_eq!(text(&cached.stdout), text(&engine.stdout));
    assert!(!stderr.contains("downloading"), "{stderr}");
    assert_eq!(left_in(&roots), [entry]);
    eprintln!("emulated amd64 run: {first:?} with the download and unpack, {second:?} cached");

    // A failure is diagnosed as in a container.
    let missing = sum("no_such_method", &pinned, &["--emulate"]);
    let stderr = fails(&missing);
    assert!(
        stderr.contains("method `no_such_method` not found in module `partial_sum`"),
        "{stderr}"
    );
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());

    // What cannot run says why: a platform the index lacks, a single-platform image of
    // another one (exit 1), qemu missing (exit 1, before anything is read), a platform
    // qemu does not run (exit 2), no --image (exit 2).
    let stderr = fails(&sum("partial_sum", &multi, &["--platform", "linux/arm64"]));
    assert!(
        stderr.contains(&format!(
            "{multi} has no image for linux/arm64; it has linux/amd64"
        )),
        "{stderr}"
    );
    let stderr = fails(&sum("partial_sum", &pinned, &["--platform", "linux/arm64"]));
    assert!(
        stderr.contains("is a single-platform image for linux/amd64, not linux/arm64"),
        "{stderr}"
    );
    let nowhere = tempfile::tempdir().unwrap();
    let without_qemu = run_env(
        nowhere.path().to_str(),
        &[
            "partial_sum",
            "--image",
            &pinned,
            "--platform",
            "linux/arm64",
        ],
    );
    let stderr = fails(&without_qemu);
    assert!(
        stderr.contains("`qemu-aarch64-static` is not on PATH"),
        "{stderr}"
    );
    assert!(
        stderr.contains("qemu-user-static") && stderr.contains("binfmt_misc is not needed"),
        "{stderr}"
    );
    assert!(!stderr.contains("Pulling"), "nothing read: {stderr}");
    let unknown = sum("partial_sum", &pinned, &["--platform", "linux/sparc"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown.stderr));
    assert!(
        text(&unknown.stderr).contains("`linux/sparc`: unknown platform; expected one of"),
        "{}",
        text(&unknown.stderr)
    );
    let no_image = run(&["partial_sum", "--emulate"]);
    assert_eq!(
        no_image.status.code(),
        Some(2),
        "{}",
        text(&no_image.stderr)
    );
    assert!(
        text(&no_image.stderr).contains("pass --image REF"),
        "{}",
        text(&no_image.stderr)
    );
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
}
