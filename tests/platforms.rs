//! Images assembled for linux/amd64 and linux/arm64 without an engine or emulation
//! (`[build] platforms`), against the stack's registries and its two-platform stand-in of
//! vantage6's algorithm-base:4.15 (`V6_TEST_MULTI_BASE`), with skopeo, the engine and
//! vantage6-common's own `get_digest` as independent readers.

use std::path::{Path, PathBuf};
use std::process::Output;

mod support;
use support::{
    assert_ok, cargo_v6_env, commit_all, copy_dir, fails, git, printed_digest, repo_tags, skopeo,
    stack, text, unique,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn multi_base() -> String {
    std::env::var("V6_TEST_MULTI_BASE")
        .expect("V6_TEST_MULTI_BASE is not set: run the tests with scripts/test")
}

/// examples/partial-sum publishing to `image` for both platforms on the stack's base, with
/// one dependency the base lacks that has C code (msgpack: a shared object per platform).
fn project(image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/partial-sum"), dir.path());
    let manifest = dir.path().join("v6.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut text: String = text
        .lines()
        .filter(|line| !line.starts_with("release-tag-prefix"))
        .map(|line| match line.starts_with("image = ") {
            true => format!("image = \"{image}\"\n"),
            false => format!("{line}\n"),
        })
        .collect();
    text.push_str(&format!(
        "\n[build]\nbase = \"{}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        multi_base()
    ));
    std::fs::write(&manifest, text).unwrap();
    let pyproject = dir.path().join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(
        &pyproject,
        text.replace("\"pandas\",", "\"pandas\",\n    \"msgpack==1.1.0\","),
    )
    .unwrap();
    commit_all(dir.path());
    dir
}

fn publish(dir: &Path, env: &[(&str, &str)]) -> Output {
    cargo_v6_env(dir, env, &["v6", "publish", "--set-version", "1.0.0"])
}

/// The manifest `reference` as stored, and its JSON.
fn raw(reference: &str) -> (Vec<u8>, serde_json::Value) {
    let stack = stack();
    let creds = format!("{}:{}", stack.auth_user, stack.auth_password);
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if reference.starts_with(&stack.auth_registry) {
        args.extend(["--creds", &creds]);
    }
    let docker = format!("docker://{reference}");
    args.push(&docker);
    let out = skopeo(&args);
    let bytes = out.stdout.clone();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = serde_json::from_slice(&bytes).unwrap();
    (bytes, json)
}

/// The version 1.0.0 was not published: a refusal wrote no tag.
fn assert_unpublished(image: &str) {
    let tags = repo_tags(image);
    assert!(!tags.iter().any(|t| t == "1.0.0"), "{tags:?}");
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The install layer (the last) of `reference`'s image for `arch`, copied out by skopeo, as
/// a tar archive.
fn install_layer(
    reference: &str,
    arch: &str,
) -> tar::Archive<flate2::read::GzDecoder<std::fs::File>> {
    let dir = tempfile::tempdir().unwrap();
    let out = skopeo(&[
        "--override-arch",
        arch,
        "--override-os",
        "linux",
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("dir:{}", dir.path().display()),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let last = layers.last().unwrap()["digest"].as_str().unwrap();
    // Opened before the folder goes: the open file stays readable.
    let blob = std::fs::File::open(dir.path().join(last.strip_prefix("sha256:").unwrap())).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(blob))
}

/// The ELF machine of the msgpack shared object in the install layer of `reference` for
/// `arch`.
fn msgpack_machine(reference: &str, arch: &str) -> u16 {
    let mut archive = install_layer(reference, arch);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.contains("msgpack/") && path.ends_with(".so") {
            let mut head = [0u8; 20];
            std::io::Read::read_exact(&mut entry, &mut head).unwrap();
            assert_eq!(&head[..4], b"\x7fELF", "{path}");
            return u16::from_le_bytes([head[18], head[19]]);
        }
    }
    panic!("no msgpack shared object in the install layer of {reference} for {arch}");
}

#[test]
fn two_platforms_are_assembled_into_one_manifest_list_of_their_own_binaries() {
    let image = format!("{}/{}", stack().registry, unique("platforms"));
    let dir = project(&image);
    // With a smoke run: the engine pulls the list by digest (its own platform) and runs it,
    // and the arm64 image runs under qemu-user, before any tag is written.
    let out = cargo_v6_env(
        dir.path(),
        &[],
        &[
            "v6",
            "publish",
            "--set-version",
            "1.0.0",
            "--smoke",
            "partial_sum",
            "--kwargs",
            r#"{"column": "a"}"#,
            "--data",
            "default=test/data.csv",
        ],
    );
    let stdout = assert_ok(&out);
    // Both platforms ran: amd64 in the engine, arm64 under qemu-user.
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("Module 'partial_sum' imported!").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("qemu-aarch64-static"), "{stderr}");
    let digest = printed_digest(&stdout);
    let (bytes, list) = raw(&format!("{image}:1.0.0"));
    assert_eq!(sha256(&bytes), digest, "the printed digest is the list's");
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let platforms: Vec<String> = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // Each platform's image holds that platform's machine code: x86-64 (62), AArch64 (183).
    let pinned = format!("{image}@{digest}");
    assert_eq!(msgpack_machine(&pinned, "amd64"), 62);
    assert_eq!(msgpack_machine(&pinned, "arm64"), 183);
    // Nothing of uv's own bookkeeping, and nothing of this machine's paths.
    let mut layer = install_layer(&pinned, "arm64");
    for entry in layer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert!(
            !path.ends_with("/.lock") && !path.ends_with("uv_cache.json"),
            "{path}"
        );
        if path.ends_with("direct_url.json") && path.contains("partial_sum") {
            let mut body = String::new();
            std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
            assert_eq!(body, r#"{"dir_info": {}, "url": "file:///app"}"#);
        }
    }
    // No engine was asked to build anything: nothing of this image is in it.
    let images = support::docker(&["images", "-q", &image]);
    assert_eq!(text(&images.stdout).trim(), "", "the engine holds {image}");

    // The amd64 image runs as a node runs it (the engine pulls it by the list's digest).
    let run = cargo_v6_env(
        dir.path(),
        &[],
        &[
            "v6",
            "run",
            "partial_sum",
            "--image",
            &pinned,
            "--kwargs",
            r#"{"column": "a"}"#,
            "--data",
            "default=test/data.csv",
        ],
    );
    assert_eq!(assert_ok(&run), "{\"sum\": 6, \"count\": 3}\n");

    // Unchanged: the same list, nothing written.
    let again = publish(dir.path(), &[]);
    let stdout = assert_ok(&again);
    assert_eq!(printed_digest(&stdout), digest);
    assert!(
        text(&again.stderr).contains("Unchanged"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn the_same_commit_assembles_to_the_same_digests_from_two_clones_and_one_byte_changes_them() {
    let stack = stack();
    let first = format!("{}/{}", stack.registry, unique("reproducible"));
    let origin = project(&first);
    // v6.toml names the registry: kept out of the image, the same commit is the same image
    // wherever it is published.
    std::fs::write(origin.path().join(".dockerignore"), "v6.toml\n").unwrap();
    git(origin.path(), &["add", ".dockerignore"]);
    git(
        origin.path(),
        &["commit", "-qm", "v6.toml stays out of the image"],
    );
    let clone = |name: &str| {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join(name);
        git(
            parent.path(),
            &["clone", "-q", &origin.path().display().to_string(), name],
        );
        (parent, path)
    };
    let (_a, a) = clone("a");
    let (_b, b) = clone("one/more/level/b");
    // Another umask's modes and other mtimes in the second clone: git records neither.
    let status = std::process::Command::new("sh")
        .current_dir(&b)
        .args([
            "-c",
            "chmod -R go-rwx . && find . -path ./.git -prune -o -type f -exec touch -d '2001-02-03 04:05:06' {} +",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    // The second publishes to the other registry, with SOURCE_DATE_EPOCH at the commit's time
    // (the first takes the commit's time by default).
    let second = format!("{}/{}", stack.auth_registry, unique("reproducible"));
    let manifest = b.join("v6.toml");
    let text_b = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(&first, &second);
    std::fs::write(&manifest, text_b).unwrap();
    let epoch = {
        let out = std::process::Command::new("git")
            .current_dir(&b)
            .args(["log", "-1", "--format=%ct"])
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    };
    // Another clock source, time zone and locale for the second publish.
    let credentials = [
        ("V6_REGISTRY_USERNAME", stack.auth_user.as_str()),
        ("V6_REGISTRY_PASSWORD", stack.auth_password.as_str()),
        ("SOURCE_DATE_EPOCH", epoch.as_str()),
        ("TZ", "Pacific/Auckland"),
        ("LC_ALL", "C"),
    ];
    let one = printed_digest(&assert_ok(&publish(&a, &[])));
    let allow = [credentials.as_slice(), &[]].concat();
    let out = cargo_v6_env(
        &b,
        &allow,
        &["v6", "publish", "--set-version", "1.0.0", "--allow-dirty"],
    );
    let two = printed_digest(&assert_ok(&out));
    assert_eq!(one, two, "two clones of one commit, two digests");
    let per_platform = |reference: &str| -> Vec<String> {
        let (_, list) = raw(reference);
        list["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        per_platform(&format!("{first}:1.0.0")),
        per_platform(&format!("{second}:1.0.0"))
    );

    // A hospital's check: the work tree (this clone, its own time and paths) assembles to
    // the published digest.
    let pinned = format!("{first}@{one}");
    let check = cargo_v6_env(&a, &[], &["v6", "verify", "--rebuild", &pinned]);
    assert_eq!(assert_ok(&check).trim(), pinned);
    assert!(
        text(&check.stderr).contains("Reproduced"),
        "{}",
        text(&check.stderr)
    );
    // What a node pulled for its platform is checked the same way.
    let arm64 = format!("{first}@{}", per_platform(&format!("{first}:1.0.0"))[1]);
    let check = cargo_v6_env(&a, &[], &["v6", "verify", "--rebuild", &arm64]);
    assert_eq!(assert_ok(&check).trim(), arm64);

    // One byte of one file: another digest.
    let data = a.join("test/data.csv");
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'9' { b'8' } else { b'9' };
    std::fs::write(&data, bytes).unwrap();
    git(&a, &["commit", "-qam", "one byte"]);
    let out = cargo_v6_env(&a, &[], &["v6", "publish", "--set-version", "1.0.1"]);
    let changed = printed_digest(&assert_ok(&out));
    assert_ne!(changed, one);
    // The published 1.0.0 is no longer what the work tree makes, and the check says where.
    let check = cargo_v6_env(&a, &[], &["v6", "verify", "--rebuild", &pinned]);
    let stderr = fails(&check);
    assert!(stderr.contains("the build context (`COPY`)"), "{stderr}");
    assert!(!stderr.contains("the installed dependencies"), "{stderr}");
}

#[test]
fn a_step_that_runs_a_program_is_refused_for_two_platforms_and_built_for_one() {
    let image = format!("{}/{}", stack().registry, unique("platforms-apt"));
    let dir = project(&image);
    let dockerfile = format!(
        "FROM {}\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nCOPY . /app\nRUN pip install /app\nENV PKG_NAME=partial_sum\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n",
        multi_base()
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let manifest = dir.path().join("v6.toml");
    let text_now = std::fs::read_to_string(&manifest).unwrap();
    let base_line = format!("base = \"{}\"\n", multi_base());
    std::fs::write(
        &manifest,
        text_now.replace(&base_line, "dockerfile = \"Dockerfile\"\n"),
    )
    .unwrap();
    commit_all(dir.path());
    let refused = cargo_v6_env(
        dir.path(),
        &[],
        &["v6", "publish", "--set-version", "1.0.0"],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(
            "line 2: `RUN apt-get update && apt-get install -y --no-install-recommends gcc`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("linux/amd64 and linux/arm64"), "{stderr}");
    assert!(stderr.contains("list one platform"), "{stderr}");
    // Where: the platforms in v6.toml.
    assert!(stderr.contains("--> v6.toml:"), "{stderr}");
    assert!(
        stderr.contains("platforms = [\"linux/amd64\", \"linux/arm64\"]"),
        "{stderr}"
    );
    // Nothing was pushed.
    assert_unpublished(&image);

    // One platform: the engine builds it, as without `platforms`.
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest).unwrap().replace(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]",
            "platforms = [\"linux/amd64\"]",
        ),
    )
    .unwrap();
    git(dir.path(), &["commit", "-qam", "one platform"]);
    let planned = cargo_v6_env(
        dir.path(),
        &[],
        &["v6", "publish", "--set-version", "1.0.0", "--dry-run"],
    );
    let stderr = text(&planned.stderr);
    assert!(planned.status.success(), "{stderr}");
    assert!(
        stderr.contains("built by the engine, not assembled"),
        "{stderr}"
    );
    let _ = fails;
}

/// The store resolves the digest of what `store export` names with vantage6-common's
/// `get_digest` (one `Accept: ...manifest.v2+json`); run here, from the store's own venv,
/// against the stack's plain-HTTP registry (its `https://` is the one thing changed).
const GET_DIGEST: &str = r#"
import sys, requests
from vantage6.common.docker import addons
real_get = requests.get
def get(url, *args, **kwargs):
    return real_get(url.replace("https://127.0.0.1", "http://127.0.0.1"), *args, **kwargs)
addons.requests.get = get
print(addons.get_digest(sys.argv[1]))
"#;

#[test]
fn the_store_records_the_list_digest_and_each_client_gets_its_platform() {
    let python = std::env::var("V6_STORE_SCHEMA_PYTHON_4").expect("V6_STORE_SCHEMA_PYTHON_4");
    let image = format!("{}/{}", stack().registry, unique("platforms-store"));
    let dir = project(&image);
    let manifest = dir.path().join("v6.toml");
    let mut text_now = std::fs::read_to_string(&manifest).unwrap();
    text_now.push_str(
        "\n[store]\noutput = \"algorithm_store.json\"\ndescription = \"Sums\"\ncode-url = \"https://example.org/partial-sum\"\npartitioning = \"horizontal\"\n\n[[store.functions]]\nname = \"partial_sum\"\ndescription = \"The sum\"\ntype = \"federated\"\n\n[[store.functions.arguments]]\nname = \"column\"\ntype = \"column\"\n\n[[store.functions.databases]]\nname = \"default\"\n",
    );
    std::fs::write(&manifest, text_now).unwrap();
    git(dir.path(), &["commit", "-qam", "store"]);
    let out = publish(dir.path(), &[]);
    let digest = printed_digest(&assert_ok(&out));
    let export: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("algorithm_store.json")).unwrap())
            .unwrap();
    let named = export["image"].as_str().unwrap().to_string();
    assert_eq!(
        named,
        format!("{image}@{digest}"),
        "the list's digest alone, no tag"
    );
    let recorded = std::process::Command::new(&python)
        .args(["-c", GET_DIGEST, &named])
        .output()
        .unwrap();
    assert!(recorded.status.success(), "{}", text(&recorded.stderr));
    assert_eq!(text(&recorded.stdout).trim(), digest);
    // What a tag alone would give the store: the amd64 image's digest, not the list's.
    let by_tag = std::process::Command::new(&python)
        .args(["-c", GET_DIGEST, &format!("{image}:1.0.0")])
        .output()
        .unwrap();
    assert_ne!(text(&by_tag.stdout).trim(), digest);
    // A node pulls IMAGE@DIGEST: each architecture gets its own image.
    for arch in ["amd64", "arm64"] {
        let out = skopeo(&[
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            "inspect",
            "--tls-verify=false",
            &format!("docker://{named}"),
        ]);
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["Architecture"], arch, "{}", text(&out.stderr));
    }
}

#[test]
fn init_proposes_the_base_platforms_and_publish_without_uv_is_refused_before_writing() {
    let image = format!("{}/{}", stack().registry, unique("platforms-init"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/partial-sum"), dir.path());
    std::fs::remove_file(dir.path().join("v6.toml")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nARG PKG_NAME=\"partial_sum\"\nCOPY . /app\nRUN pip install /app\nENV PKG_NAME=${{PKG_NAME}}\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n",
            multi_base()
        ),
    )
    .unwrap();
    commit_all(dir.path());
    let init = cargo_v6_env(dir.path(), &[], &["v6", "init", "--image", &image]);
    assert_ok(&init);
    let stderr = text(&init.stderr);
    assert!(
        stderr.contains("is built for linux/amd64 and linux/arm64"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("v6.toml")).unwrap();
    assert!(
        written.contains("platforms = [\"linux/amd64\", \"linux/arm64\"]"),
        "{written}"
    );
    git(dir.path(), &["add", "v6.toml"]);
    git(dir.path(), &["commit", "-qm", "v6.toml"]);
    // A dry run says what would be done, for CI in JSON: assembled, for both.
    let dry = cargo_v6_env(
        dir.path(),
        &[],
        &[
            "v6",
            "publish",
            "--set-version",
            "1.0.0",
            "--dry-run",
            "--message-format",
            "json",
        ],
    );
    let line: serde_json::Value =
        serde_json::from_str(assert_ok(&dry).lines().next().unwrap()).unwrap();
    assert_eq!(line["action"], "assemble");
    assert_eq!(
        line["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    // `build` still builds this machine's image with the engine, and says how it differs.
    let built = cargo_v6_env(dir.path(), &[], &["v6", "build", "--set-version", "1.0.0"]);
    assert_ok(&built);
    let stderr = text(&built.stderr);
    assert!(
        stderr.contains("`build` makes this machine's image with the engine"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Building") && !stderr.contains("Assembling"),
        "{stderr}"
    );
    let _local = support::LocalImages(image.clone());
    // Without uv: refused before anything is written, with what to install.
    let refused = cargo_v6_env(
        dir.path(),
        &[("CARGO_V6_UV", "/nonexistent/uv")],
        &["v6", "publish", "--set-version", "1.0.0"],
    );
    let stderr = fails(&refused);
    assert!(stderr.contains("assembles the image with uv"), "{stderr}");
    assert!(stderr.contains("pip install uv"), "{stderr}");
    assert_unpublished(&image);
}

#[test]
fn a_signed_list_is_signed_with_each_platform_image_as_cosign_recursive_does() {
    let image = format!("{}/{}", stack().registry, unique("platforms-signed"));
    let dir = project(&image);
    let keys = tempfile::tempdir().unwrap();
    let password = [("COSIGN_PASSWORD", "platforms")];
    let generate = cargo_v6_env(
        keys.path(),
        &password,
        &[
            "v6",
            "key",
            "generate",
            "--output-dir",
            &keys.path().display().to_string(),
        ],
    );
    assert_ok(&generate);
    let key = keys.path().join("cosign.key").display().to_string();
    let public = keys.path().join("cosign.pub").display().to_string();
    let out = cargo_v6_env(
        dir.path(),
        &password,
        &[
            "v6",
            "publish",
            "--set-version",
            "1.0.0",
            "--sign-key",
            &key,
        ],
    );
    let digest = printed_digest(&assert_ok(&out));
    let (_, list) = raw(&format!("{image}@{digest}"));
    let mut signed = vec![digest.clone()];
    signed.extend(
        list["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string()),
    );
    assert_eq!(signed.len(), 3);
    for digest in signed {
        let pinned = format!("{image}@{digest}");
        let verified = cargo_v6_env(
            dir.path(),
            &[],
            &["v6", "verify", &pinned, "--key", &public],
        );
        assert_eq!(assert_ok(&verified).trim(), pinned);
    }
}

#[test]
fn a_5x_algorithm_is_assembled_on_each_platforms_own_python_and_runs_a_session() {
    // The stack's 5.0 base differs per platform as real ones may: CPython 3.13 in /usr/local
    // (site-packages) on amd64, Debian's /usr/bin/python3.13 (dist-packages) on arm64.
    let base = std::env::var("V6_TEST_MULTI_BASE5").expect("V6_TEST_MULTI_BASE5");
    let image = format!("{}/{}", stack().registry, unique("platforms-5"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("tests/fixtures/sum-5"), dir.path());
    let manifest = dir.path().join("v6.toml");
    let text_now = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("127.0.0.1:5550/algorithms/sum-5", &image);
    std::fs::write(
        &manifest,
        format!("{text_now}\n[build]\nbase = \"{base}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n"),
    )
    .unwrap();
    commit_all(dir.path());
    let digest = printed_digest(&assert_ok(&publish(dir.path(), &[])));
    let pinned = format!("{image}@{digest}");
    let site = |arch: &str| -> String {
        let mut archive = install_layer(&pinned, arch);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names
            .iter()
            .find(|n| n.ends_with("/sum_5/__init__.py"))
            .cloned()
            .unwrap_or_else(|| panic!("no sum_5 in {names:?}"))
    };
    assert_eq!(
        site("amd64"),
        "usr/local/lib/python3.13/site-packages/sum_5/__init__.py"
    );
    assert_eq!(
        site("arm64"),
        "usr/local/lib/python3.13/dist-packages/sum_5/__init__.py"
    );
    // The amd64 image runs a 5.x extraction and compute as vantage6-node 5.0.3 does.
    let run = cargo_v6_env(
        dir.path(),
        &[],
        &[
            "v6",
            "-q",
            "run",
            "partial_sum",
            "--image",
            &pinned,
            "--extract",
            "read_csv",
            "--data",
            "default=test/a.csv",
            "--kwargs",
            r#"{"column": "a"}"#,
        ],
    );
    let output: serde_json::Value = serde_json::from_str(&assert_ok(&run)).unwrap();
    let expected: i64 = std::fs::read_to_string(dir.path().join("test/a.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .next()
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(output["sum"].as_i64(), Some(expected), "{output}");
}

#[test]
fn a_dependency_at_another_version_than_the_bases_is_refused_not_installed_beside_it() {
    let image = format!("{}/{}", stack().registry, unique("platforms-replace"));
    let dir = project(&image);
    let pyproject = dir.path().join("pyproject.toml");
    let text_now = std::fs::read_to_string(&pyproject).unwrap();
    // The base has six 1.17.0 (a dependency of vantage6's packages).
    let older = text_now.replace(
        "\"msgpack==1.1.0\",",
        "\"msgpack==1.1.0\",\n    \"six==1.16.0\",",
    );
    std::fs::write(&pyproject, older).unwrap();
    git(dir.path(), &["commit", "-qam", "an older six"]);
    let refused = publish(dir.path(), &[]);
    let stderr = fails(&refused);
    assert!(
        stderr.contains("the project needs six 1.16.0, and the base has six 1.17.0"),
        "{stderr}"
    );
    assert_unpublished(&image);
}
