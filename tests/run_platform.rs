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

/// How many qemu processes run a root file system of the cache `cache`.
fn qemu_processes(cache: &Path) -> usize {
    let cache = cache.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).into_owned())
        .filter(|cmdline| cmdline.contains("qemu-") && cmdline.contains(&cache))
        .count()
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
    assert_eq!(left_in(&roots), std::slice::from_ref(&entry));
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

    // A timeout, and a signal, end the qemu process (and remove the work folder) as they
    // end a container.
    let slow = sum("partial_sum", &pinned, &["--emulate", "--timeout", "1"]);
    let stderr = fails(&slow);
    assert!(stderr.contains("did not finish within 1 s"), "{stderr}");
    assert_eq!(qemu_processes(cache.path()), 0, "qemu left running");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-v6"))
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp.path())
        .env("XDG_CACHE_HOME", cache.path())
        .args([
            "v6",
            "-q",
            "run",
            "partial_sum",
            "--vantage6",
            "4.15",
            "--image",
            &pinned,
        ])
        .args(["--emulate", "--data", &data_arg])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while qemu_processes(cache.path()) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(qemu_processes(cache.path()), 1, "qemu did not start");
    // SAFETY: kill(2) on the child this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while qemu_processes(cache.path()) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(qemu_processes(cache.path()), 0, "qemu left running");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());

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
    // A data file at a path the image has too: qemu would read the image's file.
    let shadowed = run(&[
        "partial_sum",
        "--image",
        &pinned,
        "--emulate",
        "--data",
        "default=/etc/os-release",
    ]);
    let stderr = fails(&shadowed);
    assert!(
        stderr.contains("/etc/os-release is also a path in the image"),
        "{stderr}"
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

/// The two-platform `algorithm-base:4.15` of the stack (amd64 and arm64, a Docker manifest
/// list): `V6_TEST_MULTI_BASE`, which `scripts/stack env` exports; the test fails (never
/// skips) without it.
fn multi_base() -> String {
    std::env::var("V6_TEST_MULTI_BASE").unwrap_or_else(|_| {
        panic!(
            "V6_TEST_MULTI_BASE is not set: eval \"$(scripts/stack env)\" after scripts/stack up"
        )
    })
}

/// `sha256:<hex>` of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha256_bytes(bytes)))
}

fn sha256_bytes(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

/// `curl ARGS` against the stack's registry; its output (headers included with `-i`).
fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Uploads `bytes` as a blob of `repository` (POST, then PUT to its location); its digest.
fn upload(repository: &str, bytes: &[u8]) -> String {
    let registry = stack().registry;
    let digest = sha256(bytes);
    let started = curl(&[
        "-i",
        "-X",
        "POST",
        &format!("http://{registry}/v2/{repository}/blobs/uploads/"),
    ]);
    let location = started
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .expect("the upload's location");
    let location = match location.starts_with('/') {
        true => format!("http://{registry}{location}"),
        false => location,
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.path().display()),
        &format!("{location}&digest={digest}"),
    ]);
    digest
}

/// A layer (tar, and gzipped) that installs examples/partial-sum's package into a Debian
/// Python 3.11's site folder as pip would: the module and its `.dist-info` with METADATA,
/// INSTALLER and RECORD.
fn algorithm_layer() -> (Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    const SITE: &str = "usr/local/lib/python3.11/dist-packages";
    let code =
        std::fs::read(repo_root().join("examples/partial-sum/partial_sum/__init__.py")).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("partial_sum/__init__.py".into(), code),
        (
            "partial_sum-1.0.0.dist-info/METADATA".into(),
            b"Metadata-Version: 2.1\nName: partial-sum\nVersion: 1.0.0\n".to_vec(),
        ),
        (
            "partial_sum-1.0.0.dist-info/INSTALLER".into(),
            b"pip\n".to_vec(),
        ),
    ];
    let mut record = String::new();
    for (path, content) in &files {
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256_bytes(content));
        record.push_str(&format!("{path},sha256={hash},{}\n", content.len()));
    }
    record.push_str("partial_sum-1.0.0.dist-info/RECORD,,\n");
    files.push((
        "partial_sum-1.0.0.dist-info/RECORD".into(),
        record.into_bytes(),
    ));
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, format!("{SITE}/{path}"), &content[..])
            .unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    (tar.clone(), gz.finish().unwrap())
}

/// The 4.x template's command, in the shell form the engine stores.
const WRAPPER: &str =
    "python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"";

#[test]
fn an_arm64_image_runs_under_qemu_aarch64_as_a_node_runs_it() {
    let registry = stack().registry;
    let base = multi_base();
    let (base_repository, _) = base
        .strip_prefix(&format!("{registry}/"))
        .and_then(|rest| rest.rsplit_once(':'))
        .expect("the base is in the stack's registry");
    let inspect = |args: &[&str]| -> serde_json::Value {
        let out = support::skopeo(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The base's arm64 image, with one layer more: the algorithm, PKG_NAME and the wrapper.
    let index = inspect(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{base}"),
    ]);
    let arm64 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .expect("the base has an arm64 image")["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = format!("docker://{registry}/{base_repository}@{arm64}");
    let mut manifest = inspect(&["inspect", "--raw", "--tls-verify=false", &at]);
    let mut config = inspect(&["inspect", "--config", "--raw", "--tls-verify=false", &at]);
    let repository = unique("run-arm64");
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        curl(&[
            "-X",
            "POST",
            &format!(
                "http://{registry}/v2/{repository}/blobs/uploads/?mount={digest}&from={base_repository}"
            ),
        ]);
    }
    let (tar, gz) = algorithm_layer();
    let layer = upload(&repository, &gz);
    config["config"]["Env"]
        .as_array_mut()
        .unwrap()
        .push("PKG_NAME=partial_sum".into());
    config["config"]["Cmd"] = serde_json::json!(["/bin/sh", "-c", WRAPPER]);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(sha256(&tar).into());
    let config = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = upload(&repository, &config).into();
    manifest["config"]["size"] = config.len().into();
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": gz.len(),
            "digest": layer,
        }));
    put_manifest(
        &repository,
        "1.0.0",
        "application/vnd.docker.distribution.manifest.v2+json",
        &manifest.to_string(),
    );

    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let data = repo_root().join("examples/partial-sum/test/data.csv");
    let started = std::time::Instant::now();
    let out = assert_cmd::Command::cargo_bin("cargo-v6")
        .unwrap()
        .current_dir(tmp.path())
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp.path())
        .env("XDG_CACHE_HOME", cache.path())
        .timeout(std::time::Duration::from_secs(600))
        .args([
            "v6",
            "run",
            "partial_sum",
            "--image",
            &format!("{registry}/{repository}:1.0.0"),
            "--platform",
            "linux/arm64",
            "--vantage6",
            "4.15",
            "--kwargs",
            r#"{"column": "b"}"#,
            "--data",
            &format!("default={}", data.display()),
        ])
        .output()
        .unwrap();
    eprintln!(
        "arm64 run under qemu-aarch64-static: {:?}",
        started.elapsed()
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // What the engine's run of the amd64 image gives on the same data (the test above).
    assert_eq!(
        text(&out.stdout),
        "{\"sum\": 30.75, \"count\": 2}\n",
        "{stderr}"
    );
    assert!(stderr.contains("under qemu-aarch64-static"), "{stderr}");
    assert!(
        stderr.contains("info > Module 'partial_sum' imported!"),
        "{stderr}"
    );
    // It ran aarch64 code: the root's Python is an aarch64 ELF (e_machine 183).
    let root = cache.path().join("cargo-v6/rootfs").join(
        std::fs::read_dir(cache.path().join("cargo-v6/rootfs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name(),
    );
    let python = std::fs::read(root.join("usr/bin/python3.11")).unwrap();
    assert_eq!(&python[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([python[18], python[19]]), 183);
    assert_eq!(
        left_in(tmp.path()),
        Vec::<String>::new(),
        "work folders left"
    );
}

#[test]
fn a_5x_session_runs_under_qemu_as_in_the_engine() {
    // The python-5 template on the stack's 5.0 base (CPython 3.13, vantage6-algorithm-tools
    // 5.0.3): an extraction into the session (its source a copy at the node's path), then a
    // compute on the session that reads its state file (one run each way: each takes two
    // emulated processes).
    let image = format!("{}/{}", stack().registry, unique("run-qemu-5"));
    let _cleanup = LocalImages(image.clone());
    let project = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/sum-5"), project.path());
    let manifest = project.path().join("v6.toml");
    let text_of = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("127.0.0.1:5550/algorithms/sum-5", &image);
    std::fs::write(&manifest, text_of).unwrap();
    let published = cargo_v6(project.path(), &["v6", "publish", "--set-version", "1.0.0"]);
    assert!(published.status.success(), "{}", text(&published.stderr));
    let pinned = format!("{image}@{}", printed_digest(&text(&published.stdout)));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("TMPDIR", tmp.path().to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.path().to_str().unwrap()),
    ];
    let state = |extra: &[&str]| {
        let mut args = vec!["v6", "-q", "run", "session_state", "--image", &pinned];
        args.extend_from_slice(&["--extract", "read_csv", "--data", "default=test/a.csv"]);
        args.extend_from_slice(extra);
        let out = cargo_v6_env(project.path(), &env, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut state: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        // When the first row was written: not the same in two runs.
        state.as_object_mut().unwrap().remove("age_seconds");
        state
    };
    // The session's state file, read by pandas in the image: the node's rows, in both.
    let engine_state = state(&[]);
    assert_eq!(
        engine_state["file"],
        serde_json::json!(["session_state.parquet", "default.parquet"])
    );
    assert_eq!(state(&["--emulate"]), engine_state);
    assert_eq!(
        left_in(tmp.path()),
        Vec::<String>::new(),
        "work folders left"
    );
}

/// A function that packs `value` with msgpack and says whether msgpack's C extension did it,
/// on which machine: the shared object of the image's own platform, loaded and run.
const PACKED: &str = r#"


def packed(value):
    import platform

    import msgpack

    return {
        "value": msgpack.unpackb(msgpack.packb(value)),
        "c_extension": msgpack.Packer.__module__ == "msgpack._cmsgpack",
        "machine": platform.machine(),
    }
"#;

#[test]
fn an_assembled_two_platform_image_gives_the_engines_output_on_arm64_under_qemu() {
    // examples/partial-sum assembled for linux/amd64 and linux/arm64 on the stack's
    // two-platform base, with msgpack (a binary wheel per platform) and a function using it.
    let image = format!("{}/{}", stack().registry, unique("run-qemu-list"));
    let _cleanup = LocalImages(image.clone());
    let project = partial_sum_project(&image);
    let manifest = project.path().join("v6.toml");
    let text_of: String = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("release-tag-prefix"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(
        &manifest,
        text_of
            + &format!(
                "\n[build]\nbase = \"{}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
                multi_base()
            ),
    )
    .unwrap();
    let pyproject = project.path().join("pyproject.toml");
    let text_of = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(
        &pyproject,
        text_of.replace("\"pandas\",", "\"pandas\",\n    \"msgpack==1.1.0\","),
    )
    .unwrap();
    let package = project.path().join("partial_sum/__init__.py");
    let code = std::fs::read_to_string(&package).unwrap();
    std::fs::write(&package, code + PACKED).unwrap();
    support::commit_all(project.path());
    let published = cargo_v6(project.path(), &["v6", "publish", "--set-version", "1.0.0"]);
    assert!(published.status.success(), "{}", text(&published.stderr));
    // The list's digest, as the store records it and a node pulls it.
    let list = format!("{image}@{}", printed_digest(&text(&published.stdout)));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("TMPDIR", tmp.path().to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.path().to_str().unwrap()),
    ];
    let run = |method: &str, kwargs: &str, platform: &[&str]| {
        let mut args = vec!["v6", "-q", "run", method, "--image", &list];
        args.extend_from_slice(&["--kwargs", kwargs, "--data", "default=test/data.csv"]);
        args.extend_from_slice(platform);
        let out = cargo_v6_env(project.path(), &env, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_str::<serde_json::Value>(&text(&out.stdout)).unwrap()
    };
    let column = r#"{"column": "b"}"#;
    let amd64 = run("partial_sum", column, &[]);
    assert_eq!(amd64, serde_json::json!({"sum": 30.75, "count": 2}));
    let arm64 = ["--platform", "linux/arm64"];
    assert_eq!(run("partial_sum", column, &arm64), amd64);
    assert_eq!(
        run("packed", r#"{"value": [1, "a"]}"#, &arm64),
        serde_json::json!({"value": [1, "a"], "c_extension": true, "machine": "aarch64"})
    );
    assert_eq!(
        left_in(tmp.path()),
        Vec::<String>::new(),
        "work folders left"
    );
}
