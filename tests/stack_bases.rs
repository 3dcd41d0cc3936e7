//! The two-platform base `scripts/stack up` pushes to the stack's open registry (the stand-in
//! for vantage6's `algorithm-base:4.15`, built for linux/amd64 and linux/arm64 upstream), read
//! back through the registry by skopeo, an independent client: a Docker manifest list over two
//! Docker v2 manifests (the media types the algorithm store resolves), each config saying its
//! platform, and an arm64 image whose interpreter and pandas extensions are aarch64 code.
//! (The stack itself checks, once when it makes the arm64 rootfs, that it imports vantage6's
//! wrapper and pandas under qemu-aarch64-static; these tests run nothing emulated.)

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::{assert_ok, skopeo, stack};

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// ELF `e_machine` of AArch64 (and the amd64 one, named in failures).
const EM_AARCH64: u16 = 0xB7;

/// Where the 4.15 base's pip put vantage6-algorithm-tools and pandas (Debian's python3.11), in
/// both platforms' images.
const SITE: &str = "usr/local/lib/python3.11/dist-packages";

/// The list `scripts/stack env` exports; the test fails (never skips) without it.
fn multi_base() -> String {
    let _ = stack();
    std::env::var("V6_TEST_MULTI_BASE").unwrap_or_else(|_| {
        panic!(
            "V6_TEST_MULTI_BASE is not set: eval \"$(scripts/stack env)\" after scripts/stack up"
        )
    })
}

fn json(bytes: &str) -> Value {
    serde_json::from_str(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes}"))
}

/// `skopeo inspect ARGS docker://REFERENCE` as JSON.
fn inspect(args: &[&str], reference: &str) -> Value {
    let target = format!("docker://{reference}");
    let mut all = vec!["inspect", "--tls-verify=false"];
    all.extend_from_slice(args);
    all.push(&target);
    json(&assert_ok(&skopeo(&all)))
}

/// The repository part of `REPO:TAG`.
fn repository(reference: &str) -> &str {
    reference.rsplit_once(':').expect("a tagged reference").0
}

#[test]
fn base_is_a_docker_manifest_list_of_amd64_and_arm64() {
    let base = multi_base();
    let list = inspect(&["--raw"], &base);
    assert_eq!(list["mediaType"], LIST, "{list}");
    let entries = list["manifests"].as_array().expect("manifests");
    let platforms: BTreeSet<(String, String)> = entries
        .iter()
        .map(|m| {
            assert_eq!(m["mediaType"], MANIFEST, "{m}");
            let p = &m["platform"];
            (
                p["os"].as_str().unwrap().to_string(),
                p["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [("linux", "amd64"), ("linux", "arm64")]
        .into_iter()
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .collect();
    assert_eq!(platforms, want, "{list}");
    assert_eq!(entries.len(), 2, "{list}");

    for entry in entries {
        let arch = entry["platform"]["architecture"].as_str().unwrap();
        let by_digest = format!(
            "{}@{}",
            repository(&base),
            entry["digest"].as_str().unwrap()
        );
        let manifest = inspect(&["--raw"], &by_digest);
        assert_eq!(manifest["mediaType"], MANIFEST, "{manifest}");
        assert_eq!(manifest["config"]["mediaType"], CONFIG, "{manifest}");
        let layers = manifest["layers"].as_array().expect("layers");
        assert!(!layers.is_empty(), "{manifest}");
        assert!(layers.iter().all(|l| l["mediaType"] == LAYER), "{manifest}");

        // The platform skopeo picks from the list is the one the entry names, and its config
        // says so, with the runtime settings of the engine's 4.15 base.
        let config = inspect(&["--override-arch", arch, "--config"], &base);
        assert_eq!(config["architecture"], arch, "{config}");
        assert_eq!(config["os"], "linux", "{config}");
        let env = config["config"]["Env"].as_array().expect("Env");
        assert!(
            env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")),
            "{config}"
        );
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["python3"]),
            "{config}"
        );
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(layers.len()),
            "{config}"
        );
        assert!(
            !config["history"].as_array().expect("history").is_empty(),
            "{config}"
        );
    }
}

/// The ELF machine of a file's first bytes, `None` when it is no ELF file.
fn elf_machine(head: &[u8]) -> Option<u16> {
    (head.len() >= 20 && head.starts_with(b"\x7fELF"))
        .then(|| u16::from_le_bytes([head[18], head[19]]))
}

#[test]
fn arm64_image_holds_aarch64_python_and_pandas() {
    let base = multi_base();
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("dir:{}", dir.path().display());
    assert_ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--override-arch",
        "arm64",
        &format!("docker://{base}"),
        &dest,
    ]));
    let manifest = json(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap());

    let pandas_dir = format!("{SITE}/pandas/");
    let mut python = None;
    let mut pandas_so = Vec::new();
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().unwrap();
        let blob = dir.path().join(digest.trim_start_matches("sha256:"));
        let mut gunzip = Command::new("gzip")
            .arg("-dc")
            .arg(&blob)
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip runs");
        let mut archive = tar::Archive::new(gunzip.stdout.take().unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let path = path.trim_start_matches("./").to_string();
            let is_python = path == "usr/bin/python3.11";
            let is_pandas_so = path.starts_with(&pandas_dir) && path.ends_with(".so");
            if !(is_python || is_pandas_so) {
                continue;
            }
            let mut head = Vec::new();
            entry.by_ref().take(20).read_to_end(&mut head).unwrap();
            let machine = elf_machine(&head);
            if is_python {
                python = Some(machine);
            } else {
                pandas_so.push((path, machine));
            }
        }
        assert!(
            gunzip.wait().unwrap().success(),
            "gzip -dc {}",
            blob.display()
        );
    }

    assert_eq!(
        python,
        Some(Some(EM_AARCH64)),
        "usr/bin/python3.11 of the arm64 image (None: missing; 0x3E: x86-64)"
    );
    assert!(
        pandas_so.len() >= 10,
        "pandas' extension modules in /{SITE}: {pandas_so:?}"
    );
    let foreign: Vec<_> = pandas_so
        .iter()
        .filter(|(_, machine)| *machine != Some(EM_AARCH64))
        .collect();
    assert!(foreign.is_empty(), "not aarch64: {foreign:?}");
}
