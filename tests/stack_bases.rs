//! The two-platform bases `scripts/stack up` pushes to the stack's open registry (stand-ins
//! for vantage6's `algorithm-base:4.15` and `:5.0`, built for linux/amd64 and linux/arm64
//! upstream), read back through the registry by skopeo, an independent client: Docker manifest
//! lists over two Docker v2 manifests (the media types the algorithm store resolves), each
//! config saying its platform, arm64 images whose interpreter and pandas extensions are aarch64
//! code, and the same distributions on both platforms. (The stack itself checks, once when it
//! makes an arm64 rootfs, that it imports vantage6's wrapper and pandas under
//! qemu-aarch64-static; these tests run nothing emulated.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

mod support;
use support::{assert_ok, skopeo, stack};

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The two platforms, as the lists name them, with their ELF `e_machine`.
const PLATFORMS: [(&str, u16); 2] = [("amd64", 0x3E), ("arm64", 0xB7)];

/// One two-platform base of the stack; per platform, in the order of PLATFORMS.
struct Base {
    /// The variable `scripts/stack env` exports its reference in.
    var: &'static str,
    /// The image's interpreter.
    python: [&'static str; 2],
    /// Where vantage6-algorithm-tools and pandas are installed.
    site: [&'static str; 2],
}

/// 4.15: Debian bookworm's python3.11 on both platforms (pip installs into Debian's
/// dist-packages); 5.0: pyenv's CPython 3.13 in /usr/local on amd64 (as in vantage6's uv image),
/// Debian trixie's python3.13 on arm64.
const BASES: [Base; 2] = [
    Base {
        var: "V6_TEST_MULTI_BASE",
        python: ["usr/bin/python3.11", "usr/bin/python3.11"],
        site: [
            "usr/local/lib/python3.11/dist-packages",
            "usr/local/lib/python3.11/dist-packages",
        ],
    },
    Base {
        var: "V6_TEST_MULTI_BASE5",
        python: ["usr/local/bin/python3.13", "usr/bin/python3.13"],
        site: [
            "usr/local/lib/python3.13/site-packages",
            "usr/local/lib/python3.13/dist-packages",
        ],
    },
];

/// The base's reference, from `scripts/stack env`; the test fails (never skips) without it.
fn reference(base: &Base) -> String {
    let _ = stack();
    std::env::var(base.var).unwrap_or_else(|_| {
        panic!(
            "{} is not set: eval \"$(scripts/stack env)\" after scripts/stack up",
            base.var
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
fn bases_are_docker_manifest_lists_of_amd64_and_arm64() {
    for base in &BASES {
        check_list(&reference(base));
    }
}

fn check_list(base: &str) {
    let list = inspect(&["--raw"], base);
    assert_eq!(list["mediaType"], LIST, "{base}: {list}");
    let entries = list["manifests"].as_array().expect("manifests");
    let platforms: BTreeSet<(&str, &str)> = entries
        .iter()
        .map(|m| {
            assert_eq!(m["mediaType"], MANIFEST, "{base}: {m}");
            let p = &m["platform"];
            (
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
            )
        })
        .collect();
    let want = BTreeSet::from([("linux", "amd64"), ("linux", "arm64")]);
    assert_eq!(platforms, want, "{base}: {list}");
    assert_eq!(entries.len(), 2, "{base}: {list}");

    for entry in entries {
        let arch = entry["platform"]["architecture"].as_str().unwrap();
        let by_digest = format!("{}@{}", repository(base), entry["digest"].as_str().unwrap());
        let manifest = inspect(&["--raw"], &by_digest);
        assert_eq!(manifest["mediaType"], MANIFEST, "{by_digest}: {manifest}");
        assert_eq!(
            manifest["config"]["mediaType"], CONFIG,
            "{by_digest}: {manifest}"
        );
        let layers = manifest["layers"].as_array().expect("layers");
        assert!(!layers.is_empty(), "{by_digest}: {manifest}");
        assert!(
            layers.iter().all(|l| l["mediaType"] == LAYER),
            "{by_digest}: {manifest}"
        );

        // The platform skopeo picks from the list is the one the entry names, and its config
        // says so, with the runtime settings of the engine's image of that base.
        let config = inspect(&["--override-arch", arch, "--config"], base);
        assert_eq!(config["architecture"], arch, "{base} {arch}: {config}");
        assert_eq!(config["os"], "linux", "{base} {arch}: {config}");
        let env = config["config"]["Env"].as_array().expect("Env");
        assert!(
            env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")),
            "{base} {arch}: {config}"
        );
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["python3"]),
            "{base} {arch}: {config}"
        );
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(layers.len()),
            "{base} {arch}: {config}"
        );
        assert!(
            !config["history"].as_array().expect("history").is_empty(),
            "{base} {arch}: {config}"
        );
    }
}

/// The ELF machine of a file's first bytes, `None` when it is no ELF file.
fn elf_machine(head: &[u8]) -> Option<u16> {
    (head.len() >= 20 && head.starts_with(b"\x7fELF"))
        .then(|| u16::from_le_bytes([head[18], head[19]]))
}

/// What the tests look at in one platform's image.
#[derive(Debug, Default)]
struct Files {
    /// The ELF machine (None: no ELF file) of the interpreter and of pandas' `.so` files.
    machines: BTreeMap<String, Option<u16>>,
    /// The `*.dist-info` folder names directly in the site folder.
    dists: BTreeSet<String>,
}

/// The files of platform `p` of base `b`. All four images are read once per test binary, side
/// by side (the two tests share them; each read pulls a layer of 100-200 MB through the
/// registry and decompresses it).
fn files(b: usize, p: usize) -> &'static Files {
    static FILES: OnceLock<Vec<Files>> = OnceLock::new();
    let all = FILES.get_or_init(|| {
        std::thread::scope(|scope| {
            let reads: Vec<_> = (0..BASES.len() * PLATFORMS.len())
                .map(|i| scope.spawn(move || image_files(&BASES[i / 2], i % 2)))
                .collect();
            reads.into_iter().map(|r| r.join().unwrap()).collect()
        })
    });
    &all[b * 2 + p]
}

/// Copies the base for platform `p` out of the registry (skopeo, as any client pulls it) and
/// reads its layers.
fn image_files(base: &Base, p: usize) -> Files {
    let reference = reference(base);
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--override-arch",
        PLATFORMS[p].0,
        &format!("docker://{reference}"),
        &format!("dir:{}", dir.path().display()),
    ]));
    let manifest = json(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap());
    let site = format!("{}/", base.site[p]);
    let pandas = format!("{site}pandas/");
    let mut files = Files::default();
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
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let path = path.trim_start_matches("./").trim_end_matches('/');
            if let Some(name) = path.strip_prefix(&site)
                && !name.contains('/')
                && name.ends_with(".dist-info")
            {
                files.dists.insert(name.to_string());
            }
            let wanted =
                path == base.python[p] || (path.starts_with(&pandas) && path.ends_with(".so"));
            if wanted && entry.header().entry_type().is_file() {
                let path = path.to_string();
                let mut head = Vec::new();
                entry.by_ref().take(20).read_to_end(&mut head).unwrap();
                files.machines.insert(path, elf_machine(&head));
            }
        }
        assert!(
            gunzip.wait().unwrap().success(),
            "gzip -dc {}",
            blob.display()
        );
    }
    files
}

/// Each platform's interpreter and pandas' extension modules are that platform's machine code
/// (arm64: aarch64 ELF files, cross-installed wheels, nothing built for the host).
#[test]
fn each_platform_holds_its_own_machine_code() {
    for (b, base) in BASES.iter().enumerate() {
        for (p, (arch, machine)) in PLATFORMS.into_iter().enumerate() {
            let files = files(b, p);
            let context = format!("{} {arch}", base.var);
            assert_eq!(
                files.machines.get(base.python[p]),
                Some(&Some(machine)),
                "{context}: {} (None: missing; Some(None): no ELF file): {files:?}",
                base.python[p]
            );
            let pandas_so = files.machines.len() - 1;
            assert!(
                pandas_so >= 10,
                "{context}: pandas' extension modules: {files:?}"
            );
            let foreign: Vec<_> = files
                .machines
                .iter()
                .filter(|(_, m)| **m != Some(machine))
                .collect();
            assert!(
                foreign.is_empty(),
                "{context}: not {machine:#x}: {foreign:?}"
            );
        }
    }
}

/// Both platforms of a base hold the same distributions at the same versions: what cargo v6
/// leaves out of an image because "the base has it" holds for either platform.
#[test]
fn both_platforms_hold_the_same_distributions() {
    for (b, base) in BASES.iter().enumerate() {
        let [amd64, arm64] = [0, 1].map(|p| &files(b, p).dists);
        for wanted in ["vantage6_algorithm_tools-", "pandas-"] {
            assert!(
                amd64.iter().any(|d| d.starts_with(wanted)),
                "{}: no {wanted}* in /{}: {amd64:?}",
                base.var,
                base.site[0]
            );
        }
        assert_eq!(amd64, arm64, "{}: amd64 (left) and arm64 (right)", base.var);
    }
}
