//! Part 13's writers on the real stack (`scripts/stack up`, its addresses from `scripts/stack
//! env`): images for two platforms made of a layer from `LayerWriter`, a config from
//! `derive_config` and the manifests of `oci::manifest`, pushed by the registry client and
//! read back by skopeo, the independent client; blobs mounted between repositories and copied
//! between registries. They fail, never skip, when the stack is missing.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use base64::Engine as _;

use cargo_v6::credentials::{CredentialSource, Credentials};
use cargo_v6::oci::image::{Command, Instruction, derive_config};
use cargo_v6::oci::layer::{LayerDigests, LayerWriter};
use cargo_v6::oci::manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, LayerBlob, ManifestInfo, ManifestKind, Platform,
    docker_image_manifest, docker_manifest_list, manifest_for,
};
use cargo_v6::oci::reference::{Digest, ImageName, Tag};
use cargo_v6::registry::{Registry, RegistryError};
use serde_json::Value;

#[path = "support/hostile.rs"]
mod hostile;
mod support;
use hostile::{Answer, Hostile, response};
use support::{assert_ok, skopeo, stack, unique};

/// The time every entry and the config are dated, as `SOURCE_DATE_EPOCH` would give it.
const EPOCH: u64 = 1_767_225_600;
const CREATED: &str = "2026-01-01T00:00:00Z";

/// A small base config, as an engine writes one (its own key order).
const BASE: &str = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]},"history":[]}"#;

/// A file name longer than a tar header's 100 bytes.
const LONG: &str = "app/site-packages/a_package_with_a_rather_long_name-1.0.0.dist-info/and_a_long_file_name_inside_it.txt";

fn platform(arch: &str) -> Platform {
    serde_json::from_str(&format!(r#"{{"architecture":"{arch}","os":"linux"}}"#)).unwrap()
}

fn image(host: &str, repository: &str) -> ImageName {
    ImageName::parse(&format!("{host}/{repository}")).unwrap()
}

/// One platform's image, as written.
struct Written {
    layer: LayerDigests,
    config: Vec<u8>,
    manifest: ManifestInfo,
}

/// Writes the layer of `arch`'s image to `path` and its config and manifest.
fn write_image(arch: &str, path: &Path) -> Written {
    let mut layer = LayerWriter::new(std::fs::File::create(path).unwrap(), EPOCH);
    layer.dir("app", 0o755).unwrap();
    let hello = format!("hello from {arch}\n");
    layer
        .file(
            "app/hello.txt",
            0o644,
            hello.len() as u64,
            &mut hello.as_bytes(),
        )
        .unwrap();
    layer
        .file("app/run.sh", 0o755, 10, &mut &b"#!/bin/sh\n"[..])
        .unwrap();
    layer.symlink("app/sh", "/bin/sh").unwrap();
    layer.file(LONG, 0o644, 4, &mut &b"long"[..]).unwrap();
    let (_, layer) = layer.finish().unwrap();
    let steps = [
        (
            "ENV PKG_NAME=hello".to_owned(),
            Instruction::Env("PKG_NAME".into(), "hello".into()),
        ),
        (
            "COPY . /app".to_owned(),
            Instruction::Layer {
                diff_id: layer.diff_id.clone(),
            },
        ),
        (
            "CMD [\"/app/run.sh\"]".to_owned(),
            Instruction::Cmd(Command::Exec(vec!["/app/run.sh".into()])),
        ),
    ];
    let config = derive_config(BASE.as_bytes(), &platform(arch), CREATED, &steps).unwrap();
    let manifest = docker_image_manifest(&config, &[LayerBlob::from(&layer)]);
    Written {
        layer,
        config,
        manifest,
    }
}

/// Pushes `written` (its layer in `path`) to `image`, its manifest by digest only.
async fn push_image(registry: &Registry, image: &ImageName, written: &Written, path: &Path) {
    let uploaded = registry
        .push_blob_file(image, path, &written.layer.digest, written.layer.size)
        .await
        .unwrap();
    assert!(uploaded);
    // Already there: a HEAD, no second upload.
    let again = registry
        .push_blob_file(image, path, &written.layer.digest, written.layer.size)
        .await
        .unwrap();
    assert!(!again);
    let config = registry
        .push_blob(image, written.config.clone())
        .await
        .unwrap();
    assert_eq!(config, written.manifest.image_config().unwrap());
    let digest = registry
        .put_manifest_at_digest(image, written.manifest.body().to_vec(), DOCKER_MANIFEST)
        .await
        .unwrap();
    assert_eq!(digest, written.manifest.digest);
}

/// skopeo's output for `args` followed by `docker://REFERENCE` on the open registry.
fn skopeo_on(args: &[&str], reference: &str) -> Vec<u8> {
    let target = format!("docker://{reference}");
    let mut all = args.to_vec();
    all.extend(["--tls-verify=false", target.as_str()]);
    let out = skopeo(&all);
    assert_ok(&out);
    out.stdout
}

/// The entries of a gzip'd tar: (path, mode, mtime, uid, gid, link target, content).
type Entry = (String, u32, u64, u64, u64, Option<String>, Vec<u8>);

fn entries(layer: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (
                path,
                header.mode().unwrap(),
                header.mtime().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                link,
                data,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_two_platform_image_reads_back_with_skopeo_byte_for_byte() {
    let stack = stack();
    let repository = unique("oci-write");
    let image = image(&stack.registry, &repository);
    let registry = Registry::new(&stack.registry, None, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (amd64, arm64) = (platform("amd64"), platform("arm64"));
    let mut written = Vec::new();
    for arch in ["amd64", "arm64"] {
        let path = dir.path().join(format!("{arch}.tar.gz"));
        let image_of_arch = write_image(arch, &path);
        push_image(&registry, &image, &image_of_arch, &path).await;
        written.push(image_of_arch);
    }
    let (amd, arm) = (&written[0], &written[1]);
    let list = docker_manifest_list(&[(&amd.manifest, &amd64), (&arm.manifest, &arm64)]).unwrap();
    let tag = image.with_tag(&Tag::parse("1.0.0").unwrap());
    let put = registry
        .put_manifest(&tag, list.body().to_vec(), DOCKER_MANIFEST_LIST)
        .await
        .unwrap();
    assert_eq!(put, list.digest);
    // By digest too, and both read back byte for byte, as the list they are.
    let at_digest = registry
        .put_manifest_at_digest(&image, list.body().to_vec(), DOCKER_MANIFEST_LIST)
        .await
        .unwrap();
    assert_eq!(at_digest, list.digest);
    let by_tag = registry.manifest(&tag).await.unwrap().unwrap();
    let by_digest = registry
        .manifest_at(&image, &list.digest)
        .await
        .unwrap()
        .unwrap();
    for read in [&by_tag, &by_digest] {
        assert_eq!(read.body(), list.body());
        assert_eq!(
            read.kind,
            ManifestKind::Index {
                media_type: DOCKER_MANIFEST_LIST.into()
            }
        );
        assert_eq!(manifest_for(read, &arm64).unwrap(), arm.manifest.digest);
    }
    // An alias moved as publish moves them stays the list, same bytes.
    let latest = Tag::parse("latest").unwrap();
    assert_eq!(registry.copy_tag(&tag, &latest).await.unwrap(), list.digest);
    let alias = registry
        .manifest(&image.with_tag(&latest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alias.kind, by_tag.kind);
    assert_eq!(alias.body(), list.body());

    // skopeo: the exact bytes, under the tag and the alias.
    let reference = tag.to_string();
    assert_eq!(skopeo_on(&["inspect", "--raw"], &reference), list.body());
    assert_eq!(
        skopeo_on(&["inspect", "--raw"], &format!("{image}:latest")),
        list.body()
    );
    // Each platform's config, as a client of that platform resolves it.
    for (arch, one) in [("amd64", amd), ("arm64", arm)] {
        let config = skopeo_on(
            &[
                "--override-arch",
                arch,
                "--override-os",
                "linux",
                "inspect",
                "--config",
                "--raw",
            ],
            &reference,
        );
        assert_eq!(config, one.config, "{arch}");
        let inspected: Value = serde_json::from_slice(&skopeo_on(
            &["--override-arch", arch, "--override-os", "linux", "inspect"],
            &reference,
        ))
        .unwrap();
        assert_eq!(inspected["Architecture"], arch);
        assert_eq!(inspected["Os"], "linux");
        let env: Vec<&str> = inspected["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(env, ["PATH=/usr/local/bin:/usr/bin:/bin", "PKG_NAME=hello"]);
    }
    // The arm64 image copied out: its manifest as written, its layer what was put in it.
    let out = dir.path().join("copied");
    let copied = skopeo(&[
        "--override-arch",
        "arm64",
        "--override-os",
        "linux",
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("dir:{}", out.display()),
    ]);
    assert_ok(&copied);
    assert_eq!(
        std::fs::read(out.join("manifest.json")).unwrap(),
        arm.manifest.body()
    );
    let hex = arm.layer.digest.as_str().trim_start_matches("sha256:");
    // GNU tar, another reader: the long name, the link, owner 0/0 and the date given.
    let listed = std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(out.join(hex))
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let listed = assert_ok(&listed);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 5, "{listed}");
    for (line, (mode, name)) in lines.iter().zip([
        ("drwxr-xr-x", "app"),
        ("-rw-r--r--", "app/hello.txt"),
        ("-rwxr-xr-x", "app/run.sh"),
        ("lrwxrwxrwx", "app/sh -> /bin/sh"),
        ("-rw-r--r--", LONG),
    ]) {
        assert!(line.starts_with(&format!("{mode} 0/0 ")), "{line}");
        assert!(line.contains(" 2026-01-01 00:00 "), "{line}");
        assert!(line.ends_with(name), "{line}");
    }
    let layer = std::fs::read(out.join(hex)).unwrap();
    let found = entries(&layer);
    let file = |path: &str, mode: u32, data: &[u8]| -> Entry {
        (path.into(), mode, EPOCH, 0, 0, None, data.to_vec())
    };
    assert_eq!(
        found,
        vec![
            file("app", 0o755, b""),
            file("app/hello.txt", 0o644, b"hello from arm64\n"),
            file("app/run.sh", 0o755, b"#!/bin/sh\n"),
            (
                "app/sh".into(),
                0o777,
                EPOCH,
                0,
                0,
                Some("/bin/sh".into()),
                vec![]
            ),
            file(LONG, 0o644, b"long"),
        ]
    );
}

#[tokio::test]
async fn the_same_image_written_twice_has_the_same_digests() {
    let stack = stack();
    let registry = Registry::new(&stack.registry, None, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut lists = Vec::new();
    for run in ["first", "second"] {
        // Each write in its own repository, from files made anew.
        let image = image(&stack.registry, &unique("oci-twice"));
        let amd = write_image("amd64", &dir.path().join(format!("{run}-amd64")));
        let arm = write_image("arm64", &dir.path().join(format!("{run}-arm64")));
        for (one, arch) in [(&amd, "amd64"), (&arm, "arm64")] {
            push_image(
                &registry,
                &image,
                one,
                &dir.path().join(format!("{run}-{arch}")),
            )
            .await;
        }
        let list = docker_manifest_list(&[
            (&amd.manifest, &platform("amd64")),
            (&arm.manifest, &platform("arm64")),
        ])
        .unwrap();
        let tag = image.with_tag(&Tag::parse("1.0.0").unwrap());
        let put = registry
            .put_manifest(&tag, list.body().to_vec(), DOCKER_MANIFEST_LIST)
            .await
            .unwrap();
        // The registry's own digest (skopeo's answer) is the one written.
        let inspected: Value = serde_json::from_slice(&skopeo_on(
            &["--override-arch", "arm64", "inspect"],
            &tag.to_string(),
        ))
        .unwrap();
        assert_eq!(inspected["Digest"], put.as_str());
        lists.push((amd.layer, arm.layer, put));
    }
    assert_eq!(lists[0], lists[1]);
    assert_ne!(lists[0].0, lists[0].1, "the platforms' layers differ");
}

/// A blob of `image`, pushed.
async fn small_blob(registry: &Registry, image: &ImageName, content: &str) -> Digest {
    registry
        .push_blob(image, content.as_bytes().to_vec())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_blob_is_mounted_between_repositories_of_one_registry() {
    let stack = stack();
    let registry = Registry::new(&stack.registry, None, false).unwrap();
    let from = image(&stack.registry, &unique("oci-mount-from"));
    let to = image(&stack.registry, &unique("oci-mount-to"));
    let content = format!("a blob of {}", from.path());
    let digest = small_blob(&registry, &from, &content).await;
    assert!(registry.mount_blob(&to, &digest, &from).await.unwrap());
    // HEAD in the target: pushing it again uploads nothing; and it reads back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, &content).unwrap();
    let size = content.len() as u64;
    assert!(
        !registry
            .push_blob_file(&to, &path, &digest, size)
            .await
            .unwrap()
    );
    assert_eq!(
        registry.blob(&to, &digest, 1024).await.unwrap(),
        content.as_bytes()
    );
    // A blob the source lacks is not mounted (the registry's 202, its upload cancelled).
    let elsewhere = image(&stack.registry, &unique("oci-mount-empty"));
    let missing = small_blob(&registry, &elsewhere, "only elsewhere").await;
    let other = image(&stack.registry, &unique("oci-mount-none"));
    assert!(!registry.mount_blob(&other, &missing, &to).await.unwrap());
    // A token registry refusing the mount (no pull scope on the source): not mounted.
    let refusing = Hostile::start(&stack.registry, |request| {
        match request.method == "POST" && request.path.contains("mount=") {
            true => Answer::Respond(response(
                "401 Unauthorized",
                &[
                    r#"Www-Authenticate: Bearer realm="http://127.0.0.1:1/token",error="insufficient_scope""#,
                ],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )),
            false => Answer::Forward,
        }
    });
    let through = Registry::new(&refusing.host(), None, false).unwrap();
    let (to_there, from_there) = (
        image(&refusing.host(), to.path()),
        image(&refusing.host(), from.path()),
    );
    assert!(
        !through
            .mount_blob(&to_there, &digest, &from_there)
            .await
            .unwrap()
    );
    assert_eq!(count(&refusing, "POST", "mount="), 1);
    // Another registry's repository is never mounted.
    let foreign = image(&stack.auth_registry, from.path());
    assert!(!registry.mount_blob(&to, &digest, &foreign).await.unwrap());
}

/// `n` bytes that gzip cannot shrink (xorshift), so that a layer spans several upload pieces.
fn noise(n: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test]
async fn a_layer_is_copied_from_one_registry_to_another_by_download_and_upload() {
    let stack = stack();
    let open = Registry::new(&stack.registry, None, false).unwrap();
    let source = image(&stack.registry, &unique("oci-copy-from"));
    let dir = tempfile::tempdir().unwrap();
    // A 20 MiB layer: three pieces of the chunked upload.
    let path = dir.path().join("layer.tar.gz");
    let layer = noise_layer(&path);
    assert!(layer.size > 16 << 20);
    assert!(
        open.push_blob_file(&source, &path, &layer.digest, layer.size)
            .await
            .unwrap()
    );

    // Downloaded from the open registry into a file, uploaded to the auth one.
    let copy = dir.path().join("copy.tar.gz");
    let mut file = std::fs::File::create(&copy).unwrap();
    open.pull_blob_to(&source, &layer.digest, layer.size, &mut file)
        .await
        .unwrap();
    drop(file);
    let credentials = Credentials::new(
        stack.auth_user.clone(),
        stack.auth_password.clone(),
        CredentialSource::Environment,
    );
    let auth = Registry::new(&stack.auth_registry, Some(credentials), false).unwrap();
    let target = image(&stack.auth_registry, &unique("oci-copy-to"));
    assert!(
        !auth
            .mount_blob(&target, &layer.digest, &source)
            .await
            .unwrap()
    );
    assert!(
        auth.push_blob_file(&target, &copy, &layer.digest, layer.size)
            .await
            .unwrap()
    );
    let mut back = Vec::new();
    auth.pull_blob_to(&target, &layer.digest, layer.size, &mut back)
        .await
        .unwrap();
    assert_eq!(back, std::fs::read(&path).unwrap());
    let found = entries(&back);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].6, noise(20 << 20));

    // A download is bounded by the size its descriptor gives.
    let mut short = Vec::new();
    let err = open
        .pull_blob_to(&source, &layer.digest, layer.size - 1, &mut short)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    // A file that is not the blob named is the caller's error, not the registry's.
    let other = image(&stack.registry, &unique("oci-copy-wrong"));
    let wrong = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
    let err = open
        .push_blob_file(&other, &path, &wrong, layer.size)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::LocalBlob { reason, .. } if reason.contains("is not this blob")),
        "{err}"
    );
    let err = open
        .push_blob_file(&other, &path, &layer.digest, layer.size + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::LocalBlob { reason, .. } if reason.contains("not the")),
        "{err}"
    );
    // Refused credentials: a clear error without the secret.
    let wrong_password = format!("{}x", stack.auth_password);
    let refused = Credentials::new(
        stack.auth_user.clone(),
        wrong_password.clone(),
        CredentialSource::Environment,
    );
    let refused = Registry::new(&stack.auth_registry, Some(refused), false).unwrap();
    let err = refused
        .push_blob_file(&target, &copy, &layer.digest, layer.size)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(&wrong_password));
}

/// A 20 MiB layer of noise (three upload pieces) written to `path`.
fn noise_layer(path: &Path) -> LayerDigests {
    let data = noise(20 << 20);
    let mut writer = LayerWriter::new(std::fs::File::create(path).unwrap(), EPOCH);
    writer
        .file("data.bin", 0o644, data.len() as u64, &mut &data[..])
        .unwrap();
    writer.finish().unwrap().1
}

/// How many requests of `proxy` were `METHOD` with a path containing `part`.
fn count(proxy: &Hostile, method: &str, part: &str) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|line| line.starts_with(&format!("{method} ")) && line.contains(part))
        .count()
}

#[tokio::test]
async fn uploads_and_downloads_are_retried_bounded_and_keep_credentials_out_of_errors() {
    let stack = stack();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar.gz");
    let layer = noise_layer(&path);

    // A piece after the first refused once with a 500, and a download's first answer a 503:
    // the upload is tried again from its start, the download again.
    let (patch_failed, get_failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (patch, get) = (Arc::clone(&patch_failed), Arc::clone(&get_failed));
    let proxy = Hostile::start(&stack.registry, move |request| {
        let later_piece = request
            .header("content-range")
            .is_some_and(|range| !range.starts_with("0-"));
        if request.ours() && request.method == "PATCH" && later_piece && !patch.swap(true, SeqCst) {
            Answer::Respond(response("500 Internal Server Error", &[], b"try again"))
        } else if request.ours()
            && request.method == "GET"
            && request.path.contains("/blobs/sha256:")
            && !get.swap(true, SeqCst)
        {
            Answer::Respond(response("503 Service Unavailable", &[], b""))
        } else {
            Answer::Forward
        }
    });
    let registry = Registry::new(&proxy.host(), None, false).unwrap();
    let faulty = image(&proxy.host(), &unique("oci-faults"));
    assert!(
        registry
            .push_blob_file(&faulty, &path, &layer.digest, layer.size)
            .await
            .unwrap()
    );
    assert!(patch_failed.load(SeqCst));
    assert_eq!(
        count(&proxy, "POST", "/blobs/uploads/"),
        2,
        "{:?}",
        proxy.seen()
    );
    // Three pieces, and the one or two of the try that failed.
    let patches = count(&proxy, "PATCH", "/blobs/uploads/");
    assert!((4..=5).contains(&patches), "{:?}", proxy.seen());
    assert_eq!(count(&proxy, "PUT", "digest="), 1);
    let retries = registry.take_retries();
    assert!(
        retries.len() == 1 && retries[0].starts_with("uploading a blob"),
        "{retries:?}"
    );
    let mut back = Vec::new();
    registry
        .pull_blob_to(&faulty, &layer.digest, layer.size, &mut back)
        .await
        .unwrap();
    assert!(get_failed.load(SeqCst));
    assert_eq!(back, std::fs::read(&path).unwrap());
    drop(proxy);

    // A download that never ends stops at the size its descriptor gives.
    let endless = Hostile::start(&stack.registry, |request| {
        if request.ours() && request.method == "GET" && request.path.contains("/blobs/") {
            Answer::Endless {
                content_type: "application/octet-stream".into(),
                length: None,
            }
        } else {
            Answer::Forward
        }
    });
    let registry = Registry::new(&endless.host(), None, false).unwrap();
    let faulty = image(&endless.host(), faulty.path());
    let mut sink = Vec::new();
    let err = registry
        .pull_blob_to(&faulty, &layer.digest, 1 << 20, &mut sink)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    assert!(sink.len() <= 1 << 20);
    drop(endless);

    // A registry that echoes the Authorization header in an upload's error: not in the error.
    let echo = Hostile::start(&stack.auth_registry, |request| {
        match (request.method.as_str(), request.header("authorization")) {
            ("PATCH", Some(authorization)) => {
                let body = serde_json::json!({"errors": [{
                    "code": "BLOB_UPLOAD_INVALID",
                    "message": format!("rejected Authorization: {authorization}"),
                }]});
                Answer::Respond(response(
                    "400 Bad Request",
                    &["Content-Type: application/json"],
                    body.to_string().as_bytes(),
                ))
            }
            _ => Answer::Forward,
        }
    });
    let credentials = Credentials::new(
        stack.auth_user.clone(),
        stack.auth_password.clone(),
        CredentialSource::Environment,
    );
    let registry = Registry::new(&echo.host(), Some(credentials), false).unwrap();
    let echoed = image(&echo.host(), &unique("oci-echo"));
    let err = registry
        .push_blob_file(&echoed, &path, &layer.digest, layer.size)
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("rejected Authorization"), "{shown}");
    assert!(!shown.contains(&stack.auth_password), "{shown}");
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", stack.auth_user, stack.auth_password));
    assert!(!shown.contains(&basic), "{shown}");
}
