//! Signing against the real stack (its open registry, a distribution 2.8 without the referrers
//! API), checked by a verifier cargo v6 did not write: sigstore-rs's own cosign client
//! (`triangulate`, `trusted_signature_layers`, `verify_constraints` with a `PublicKeyVerifier`
//! for cosign.pub), the library cosign-compatible Rust tools use. No cosign binary can be
//! installed here, and Debian's skopeo and podman have sigstore verification compiled out.
//!
//! The bundle layout has no such verifier: sigstore-rs 0.15 reads bundle referrers only as
//! keyless signatures (a Fulcio certificate and one Rekor entry), so a bundle signed with a key
//! and no transparency-log entry, what `cosign sign --key --tlog-upload=false` writes, is
//! skipped by its cosign client. Bundles are checked here by parts cargo v6 did not write:
//! oci-client's referrers lookup (with the tag-schema fallback), the Sigstore protobuf-specs
//! schema, and sigstore's key verification over the DSSE encoding.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::{CosignVerificationKey, Signature};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

use cargo_v6::oci::reference::{Digest, ImageName, Tag};
use cargo_v6::registry::Registry;

#[path = "support/hostile.rs"]
mod hostile;
mod support;
use support::{assert_ok, busybox_project, skopeo, stack, text, unique};

const PASSWORD: &str = "sign-test correct horse";

/// `cargo-v6 ARGS` in `dir`: no terminal, the password only when given.
fn cargo_v6(dir: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-v6"));
    command
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("V6_REGISTRY_USERNAME")
        .env_remove("V6_REGISTRY_PASSWORD")
        .stdin(Stdio::null());
    if let Some(password) = password {
        command.env("COSIGN_PASSWORD", password);
    }
    command.output().unwrap()
}

/// `cargo v6 verify REFERENCE --key cosign.pub` in `dir`.
fn verify_in(dir: &Path, reference: &str) -> Output {
    cargo_v6(dir, &["verify", reference, "--key", "cosign.pub"], None)
}

/// A key pair made by `cargo v6 key generate` in a fresh directory.
fn new_keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&cargo_v6(dir.path(), &["key", "generate"], Some(PASSWORD)));
    dir
}

fn public_pem(keys: &Path) -> String {
    std::fs::read_to_string(keys.join("cosign.pub")).unwrap()
}

/// Pushes the stack's busybox image to a fresh repository as `tag` (an OCI manifest when
/// `oci`, else docker v2: two digests for the same content). Returns the repository.
fn push_image(repository: &str, tag: &str, oci: bool) -> String {
    let stack = stack();
    let docker_host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let destination = format!("docker://{repository}:{tag}");
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    if !docker_host.is_empty() {
        args.extend(["--src-daemon-host", &docker_host]);
    }
    if oci {
        args.extend(["--format", "oci"]);
    }
    let source = format!("docker-daemon:{}", stack.busybox);
    args.extend([source.as_str(), destination.as_str()]);
    assert_ok(&skopeo(&args));
    repository.to_owned()
}

fn fresh_image(name: &str) -> String {
    push_image(
        &format!("{}/{}", stack().registry, unique(name)),
        "1",
        false,
    )
}

fn digest_of(reference: &str) -> String {
    support::digest_of(reference).unwrap_or_else(|| panic!("{reference} does not resolve"))
}

/// The raw manifest under `reference`, via skopeo.
fn raw_manifest(reference: &str) -> Option<Value> {
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

fn runtime() -> tokio::runtime::Runtime {
    // One rustls provider for this process too, as main.rs installs it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The independent verification: sigstore-rs's cosign client finds the signatures of
/// `reference` (by its digest) and `verify_constraints` accepts one signed by `public_pem`.
/// Returns how many signature layers it trusted and the digest it resolved, or why not.
fn cosign_verify(reference: &str, public_pem: &str) -> Result<(usize, String), String> {
    cosign_verify_as(reference, public_pem, Auth::Anonymous)
}

/// [`cosign_verify`] with credentials for the registry.
fn cosign_verify_as(
    reference: &str,
    public_pem: &str,
    auth: Auth,
) -> Result<(usize, String), String> {
    runtime().block_on(async {
        let registry = reference.split('/').next().unwrap().to_owned();
        let mut client = ClientBuilder::default()
            .with_oci_client_config(ClientConfig {
                protocol: ClientProtocol::HttpsExcept(vec![registry]),
                ..ClientConfig::default()
            })
            .build()
            .map_err(|e| e.to_string())?;
        let image: OciReference = reference.parse().map_err(|e| format!("{e}"))?;
        let (signatures, digest) = client
            .triangulate(&image, &auth)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(signatures.tag(), Some(sig_tag(&digest).as_str()));
        let layers = client
            .trusted_signature_layers(&auth, &image)
            .await
            .map_err(|e| e.to_string())?;
        let verifier = PublicKeyVerifier::try_from(public_pem.as_bytes()).unwrap();
        let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
        sigstore::cosign::verify_constraints(&layers, constraints.iter()).map_err(|e| {
            format!(
                "{} constraint(s) unsatisfied",
                e.unsatisfied_constraints.len()
            )
        })?;
        Ok((layers.len(), digest))
    })
}

#[test]
fn a_signed_image_is_accepted_by_the_cosign_client_and_by_verify() {
    let keys = new_keys();
    let repository = fresh_image("signed");
    let digest = digest_of(&format!("{repository}:1"));

    // Signing by tag signs the digest the tag points at, and says which.
    let out = cargo_v6(
        keys.path(),
        &["sign", &format!("{repository}:1"), "--key", "cosign.key"],
        Some(PASSWORD),
    );
    let stdout = assert_ok(&out);
    assert_eq!(stdout, format!("{repository}@{digest}\n"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Resolved {repository}:1 -> {digest}")),
        "{stderr}"
    );

    // cosign's layout: an OCI manifest at sha256-<hex>.sig, one simple-signing layer with its
    // signature as an annotation, the payload naming the digest.
    let manifest = raw_manifest(&format!("{repository}:{}", sig_tag(&digest))).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layers[0]["annotations"]["dev.cosignproject.cosign/signature"].is_string());

    let (trusted, resolved) =
        cosign_verify(&format!("{repository}:1"), &public_pem(keys.path())).unwrap();
    assert_eq!((trusted, resolved.as_str()), (1, digest.as_str()));
    // By digest as well.
    cosign_verify(&format!("{repository}@{digest}"), &public_pem(keys.path())).unwrap();

    let out = cargo_v6(
        keys.path(),
        &[
            "verify",
            &format!("{repository}@{digest}"),
            "--key",
            "cosign.pub",
        ],
        None,
    );
    assert_eq!(assert_ok(&out), format!("{repository}@{digest}\n"));
    assert!(text(&out.stderr).contains("1 valid signature by key sha256:"));
}

#[test]
fn unsigned_other_key_other_digest_and_tampered_are_rejected_by_both_verifiers() {
    let keys = new_keys();
    let other = new_keys();
    let public = public_pem(keys.path());
    let verify = |reference: &str| {
        cargo_v6(
            keys.path(),
            &["verify", reference, "--key", "cosign.pub"],
            None,
        )
    };
    let refused = |out: &Output, why: &str| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout when refused");
        assert!(stderr.contains(why), "expected `{why}` in {stderr}");
    };

    // Unsigned.
    let unsigned = fresh_image("unsigned");
    let reference = format!("{unsigned}:1");
    assert!(cosign_verify(&reference, &public).is_err());
    refused(&verify(&reference), "has no signature");

    // Signed with another key.
    let elsewhere = fresh_image("other-key");
    let reference = format!("{elsewhere}:1");
    assert_ok(&cargo_v6(
        other.path(),
        &["sign", &reference, "--key", "cosign.key"],
        Some(PASSWORD),
    ));
    cosign_verify(&reference, &public_pem(other.path())).unwrap();
    assert!(cosign_verify(&reference, &public).is_err());
    refused(
        &verify(&reference),
        "wrong key: signed with another key (sha256:",
    );

    // A valid signature by the key whose payload names another digest: the signature of
    // `:1` copied to the place where `:2`'s signatures go.
    let repository = fresh_image("other-digest");
    push_image(&repository, "2", true);
    let (first, second) = (
        digest_of(&format!("{repository}:1")),
        digest_of(&format!("{repository}:2")),
    );
    assert_ne!(first, second);
    assert_ok(&cargo_v6(
        keys.path(),
        &["sign", &format!("{repository}:1"), "--key", "cosign.key"],
        Some(PASSWORD),
    ));
    let registry = Registry::new(&stack().registry, None, false).unwrap();
    let image = ImageName::parse(&repository).unwrap();
    let tag = |text: &str| Tag::parse(text).unwrap();
    runtime().block_on(async {
        registry
            .copy_tag(
                &image.with_tag(&tag(&sig_tag(&first))),
                &tag(&sig_tag(&second)),
            )
            .await
            .unwrap();
    });
    let reference = format!("{repository}:2");
    assert!(cosign_verify(&reference, &public).is_err());
    refused(
        &verify(&reference),
        &format!(
            "digest mismatch: the signature at {repository}:{} by this key is for {first}, not {second}",
            sig_tag(&second)
        ),
    );
    // The original stays valid.
    cosign_verify(&format!("{repository}:1"), &public).unwrap();

    // A payload changed after signing, its signature kept.
    let tampered = fresh_image("tampered");
    let reference = format!("{tampered}:1");
    assert_ok(&cargo_v6(
        keys.path(),
        &["sign", &reference, "--key", "cosign.key"],
        Some(PASSWORD),
    ));
    let digest = digest_of(&reference);
    let image = ImageName::parse(&tampered).unwrap();
    runtime().block_on(async {
        let tag = image.with_tag(&tag(&sig_tag(&digest)));
        let manifest = registry.manifest(&tag).await.unwrap().unwrap();
        let mut json: Value = serde_json::from_slice(manifest.body()).unwrap();
        let layer = json["layers"][0].clone();
        let payload = registry
            .blob(
                &image,
                &Digest::parse(layer["digest"].as_str().unwrap()).unwrap(),
                1 << 20,
            )
            .await
            .unwrap();
        let mut payload: Value = serde_json::from_slice(&payload).unwrap();
        payload["optional"] = json!({"note": "changed after signing"});
        let payload = serde_json::to_vec(&payload).unwrap();
        let size = payload.len();
        let new_digest = registry.push_blob(&image, payload).await.unwrap();
        json["layers"][0]["digest"] = new_digest.as_str().into();
        json["layers"][0]["size"] = size.into();
        registry
            .put_manifest(
                &tag,
                serde_json::to_vec(&json).unwrap(),
                "application/vnd.oci.image.manifest.v1+json",
            )
            .await
            .unwrap();
    });
    assert!(cosign_verify(&reference, &public).is_err());
    refused(&verify(&reference), "tampered payload: the signature at");
}

#[test]
fn signing_again_keeps_the_earlier_signatures() {
    let keys = new_keys();
    let other = new_keys();
    let repository = fresh_image("resign");
    let reference = format!("{repository}:1");
    let digest = digest_of(&reference);
    let sig = format!("{repository}:{}", sig_tag(&digest));
    let sign = |keys: &Path| {
        assert_ok(&cargo_v6(
            keys,
            &["sign", &reference, "--key", "cosign.key"],
            Some(PASSWORD),
        ))
    };

    sign(other.path());
    let before = raw_manifest(&sig).unwrap()["layers"].clone();
    sign(keys.path());
    sign(keys.path());
    let after = raw_manifest(&sig).unwrap()["layers"].clone();
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), 3);
    assert_eq!(
        after[0], before[0],
        "the first signature is kept as written"
    );

    // Each key's signatures verify, in both verifiers.
    let (trusted, _) = cosign_verify(&reference, &public_pem(keys.path())).unwrap();
    assert_eq!(trusted, 3);
    cosign_verify(&reference, &public_pem(other.path())).unwrap();
    let out = verify_in(keys.path(), &reference);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("2 valid signatures"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn keys_in_cosigns_own_format_sign() {
    // A key that cosign itself generated (empty password), and one the sigstore crate makes
    // in cosign's format: cargo v6 signs with both, and the cosign client verifies with the
    // public key the sigstore crate derives from them.
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cosign-keys/cosign.key");
    std::fs::copy(&fixture, dir.path().join("cosign-made.key")).unwrap();
    let cosign_made =
        SigStoreKeyPair::from_encrypted_pem(&std::fs::read(&fixture).unwrap(), b"").unwrap();

    let sigstore_made = SigStoreKeyPair::ECDSA(
        sigstore::crypto::signing_key::ecdsa::ECDSAKeys::new(
            sigstore::crypto::signing_key::ecdsa::EllipticCurve::P256,
        )
        .unwrap(),
    );
    let pem = sigstore_made
        .private_key_to_encrypted_pem(PASSWORD.as_bytes())
        .unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    std::fs::write(dir.path().join("sigstore-made.key"), pem.as_bytes()).unwrap();

    for (file, password, pair) in [
        ("cosign-made.key", "", &cosign_made),
        ("sigstore-made.key", PASSWORD, &sigstore_made),
    ] {
        let repository = fresh_image("cosign-key");
        let reference = format!("{repository}:1");
        assert_ok(&cargo_v6(
            dir.path(),
            &["sign", &reference, "--key", file],
            Some(password),
        ));
        let public = pair.public_key_to_pem().unwrap();
        cosign_verify(&reference, &public).unwrap();
        std::fs::write(dir.path().join("key.pub"), &public).unwrap();
        assert_ok(&cargo_v6(
            dir.path(),
            &["verify", &reference, "--key", "key.pub"],
            None,
        ));
    }
}

#[test]
fn the_bundle_layout_is_a_referrer_listed_in_the_fallback_index() {
    let keys = new_keys();
    let repository = fresh_image("bundle");
    let reference = format!("{repository}:1");
    let digest = digest_of(&reference);
    let out = cargo_v6(
        keys.path(),
        &[
            "sign",
            &reference,
            "--key",
            "cosign.key",
            "--signature-format",
            "bundle",
        ],
        Some(PASSWORD),
    );
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("bundle referrer"),
        "{}",
        text(&out.stderr)
    );
    // No .sig tag: only the bundle was asked for.
    assert!(raw_manifest(&format!("{repository}:{}", sig_tag(&digest))).is_none());

    // The registry has no referrers API: the fallback index at sha256-<hex> lists the
    // referrer, and oci-client's referrers lookup (which falls back to it) finds it.
    let fallback = raw_manifest(&format!("{repository}:{}", digest.replace(':', "-"))).unwrap();
    assert_eq!(
        fallback["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = fallback["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let referrer = entries[0]["digest"].as_str().unwrap().to_owned();
    let bundle_bytes = runtime().block_on(async {
        let client = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::HttpsExcept(vec![stack().registry]),
            ..Default::default()
        });
        let image: oci_client::Reference = format!("{repository}@{digest}").parse().unwrap();
        client
            .store_auth_if_needed(
                image.resolve_registry(),
                &oci_client::secrets::RegistryAuth::Anonymous,
            )
            .await;
        let index = client.pull_referrers(&image, None).await.unwrap();
        assert!(index.manifests.iter().any(|m| m.digest == referrer));
        let at: oci_client::Reference = format!("{repository}@{referrer}").parse().unwrap();
        let (manifest, _) = client
            .pull_manifest(&at, &oci_client::secrets::RegistryAuth::Anonymous)
            .await
            .unwrap();
        let oci_client::manifest::OciManifest::Image(manifest) = manifest else {
            panic!("the referrer is not an image manifest");
        };
        assert_eq!(
            manifest.artifact_type.as_deref(),
            Some("application/vnd.dev.sigstore.bundle.v0.3+json")
        );
        assert_eq!(
            manifest.subject.as_ref().map(|s| s.digest.as_str()),
            Some(digest.as_str())
        );
        let mut bytes = Vec::new();
        client
            .pull_blob(&at, &manifest.layers[0], &mut bytes)
            .await
            .unwrap();
        bytes
    });

    // The bundle parses as the Sigstore schema defines it, and its DSSE signature verifies
    // with cosign.pub over an in-toto statement naming exactly this digest.
    let bundle: sigstore::bundle::Bundle = serde_json::from_slice(&bundle_bytes).unwrap();
    assert_eq!(
        bundle.media_type,
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{
        bundle::Content, verification_material,
    };
    let Some(Content::DsseEnvelope(envelope)) = bundle.content else {
        panic!("not a DSSE bundle");
    };
    let material = bundle.verification_material.unwrap();
    assert!(matches!(
        material.content,
        Some(verification_material::Content::PublicKey(_))
    ));
    assert!(material.tlog_entries.is_empty());
    assert_eq!(envelope.payload_type, "application/vnd.in-toto+json");
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        envelope.payload_type.len(),
        envelope.payload_type,
        envelope.payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&envelope.payload);
    let key = CosignVerificationKey::try_from_pem(public_pem(keys.path()).as_bytes()).unwrap();
    key.verify_signature(Signature::Raw(&envelope.signatures[0].sig), &pae)
        .unwrap();
    let other = new_keys();
    let other_key =
        CosignVerificationKey::try_from_pem(public_pem(other.path()).as_bytes()).unwrap();
    assert!(
        other_key
            .verify_signature(Signature::Raw(&envelope.signatures[0].sig), &pae)
            .is_err()
    );
    let statement: Value = serde_json::from_slice(&envelope.payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.strip_prefix("sha256:").unwrap()
    );

    // cargo v6 verify reads the bundle; another key is refused.
    let out = verify_in(keys.path(), &reference);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("(bundle referrer)"),
        "{}",
        text(&out.stderr)
    );
    let out = verify_in(other.path(), &reference);
    assert_eq!(out.status.code(), Some(1));

    // A second bundle (with `both`: and a .sig signature) is added to the index, the first
    // entry kept.
    assert_ok(&cargo_v6(
        keys.path(),
        &[
            "sign",
            &reference,
            "--key",
            "cosign.key",
            "--signature-format",
            "both",
        ],
        Some(PASSWORD),
    ));
    let fallback = raw_manifest(&format!("{repository}:{}", digest.replace(':', "-"))).unwrap();
    let entries_now = fallback["manifests"].as_array().unwrap();
    assert_eq!(entries_now.len(), 2);
    assert_eq!(entries_now[0], entries[0]);
    cosign_verify(&reference, &public_pem(keys.path())).unwrap();
    let out = verify_in(keys.path(), &reference);
    assert!(
        text(&out.stderr).contains("3 valid signatures by key")
            && text(&out.stderr).contains(".sig tag, bundle referrer"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn key_generate_refuses_to_overwrite_and_needs_a_password() {
    let keys = new_keys();
    let before = std::fs::read(keys.path().join("cosign.key")).unwrap();
    let out = cargo_v6(keys.path(), &["key", "generate"], Some("another"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already exists; cargo v6 never overwrites a key"));
    assert_eq!(
        std::fs::read(keys.path().join("cosign.key")).unwrap(),
        before
    );

    // No COSIGN_PASSWORD and no terminal: a clear error, and no key written.
    let empty = tempfile::tempdir().unwrap();
    let out = cargo_v6(empty.path(), &["key", "generate"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("needs a password: set COSIGN_PASSWORD"));
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());

    // --output-dir that does not exist yet: made, private (0700), as `ssh-keygen -f` users
    // expect; parents too.
    let out = cargo_v6(
        empty.path(),
        &["key", "generate", "--output-dir", "keys/ci"],
        Some(PASSWORD),
    );
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("Created keys/ci"),
        "{}",
        text(&out.stderr)
    );
    assert!(empty.path().join("keys/ci/cosign.pub").is_file());
    #[cfg(unix)]
    for dir in ["keys", "keys/ci"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(empty.path().join(dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{dir}");
    }
    // An existing directory is used as it is; a file in its place is refused.
    std::fs::create_dir(empty.path().join("open")).unwrap();
    assert_ok(&cargo_v6(
        empty.path(),
        &["key", "generate", "--output-dir", "open"],
        Some(PASSWORD),
    ));
    assert!(empty.path().join("open/cosign.key").is_file());
    std::fs::write(empty.path().join("file"), "").unwrap();
    let out = cargo_v6(
        empty.path(),
        &["key", "generate", "--output-dir", "file"],
        Some(PASSWORD),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("`file` is not a directory"));
}

#[test]
fn a_wrong_password_is_clear_and_no_secret_is_ever_printed() {
    let keys = new_keys();
    let repository = fresh_image("secrets");
    let reference = format!("{repository}:1");
    let mut outputs: Vec<Output> = Vec::new();

    let out = cargo_v6(
        keys.path(),
        &["sign", &reference, "--key", "cosign.key"],
        Some("not the password"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: wrong password for the private key `cosign.key`"),
        "{}",
        text(&out.stderr)
    );
    outputs.push(out);
    let out = cargo_v6(
        keys.path(),
        &["sign", &reference, "--key", "cosign.key"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("needs a password"));
    outputs.push(out);
    // Nothing was signed by the failed attempts.
    assert!(raw_manifest(&format!("{repository}:{}", sig_tag(&digest_of(&reference)))).is_none());

    outputs.push(cargo_v6(
        keys.path(),
        &[
            "-v",
            "sign",
            &reference,
            "--key",
            "cosign.key",
            "--signature-format",
            "both",
        ],
        Some(PASSWORD),
    ));
    outputs.push(cargo_v6(
        keys.path(),
        &["-v", "verify", &reference, "--key", "cosign.pub"],
        None,
    ));
    // A public key where the private one belongs, and the reverse: named, not printed.
    outputs.push(cargo_v6(
        keys.path(),
        &["sign", &reference, "--key", "cosign.pub"],
        Some(PASSWORD),
    ));
    outputs.push(cargo_v6(
        keys.path(),
        &["verify", &reference, "--key", "cosign.key"],
        None,
    ));
    let project = busybox_project(
        &format!("{}/{}", stack().registry, unique("secrets-publish")),
        "s\n",
        "",
    );
    let key = keys.path().join("cosign.key");
    outputs.push(cargo_v6(
        project.path(),
        &[
            "-v",
            "publish",
            "--allow-dirty",
            "--sign-key",
            key.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        Some(PASSWORD),
    ));
    assert_ok(outputs.last().unwrap());

    // The secrets: the password, the encrypted key file's lines, and the key decrypted.
    let file = std::fs::read_to_string(&key).unwrap();
    let decrypted = SigStoreKeyPair::from_encrypted_pem(file.as_bytes(), PASSWORD.as_bytes())
        .unwrap()
        .private_key_to_pem()
        .unwrap();
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];
    for pem in [file.as_str(), decrypted.as_str()] {
        secrets.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_owned),
        );
    }
    assert!(secrets.len() > 4);
    for out in &outputs {
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "a secret was printed:\n{shown}"
            );
        }
    }
}

#[test]
fn publish_signs_and_an_unchanged_republish_completes_the_signature() {
    let keys = new_keys();
    let image = format!("{}/{}", stack().registry, unique("publish-sign"));
    let dir = busybox_project(&image, "signed release\n", "");
    let key = keys.path().join("cosign.key");
    let key = key.to_str().unwrap();
    let publish = |args: &[&str]| {
        let mut all = vec!["publish", "--allow-dirty", "--message-format", "json"];
        all.extend(args);
        cargo_v6(dir.path(), &all, Some(PASSWORD))
    };
    let json = |out: &Output| -> Value {
        let stdout = assert_ok(out);
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };

    // Published without a key: a release whose run ended between push and sign.
    let first = json(&publish(&[]));
    assert!(first.get("signatures").is_none());
    let digest = first["digest"].as_str().unwrap().to_owned();
    assert!(cosign_verify(&format!("{image}:1.0.0"), &public_pem(keys.path())).is_err());

    // The dry run shows the signing step, with the digest known (an unchanged release).
    let dry = json(&publish(&["--dry-run", "--sign-key", key]));
    let steps = dry["steps"].as_array().unwrap();
    assert_eq!(
        steps.last().unwrap(),
        &json!({"reference": format!("{image}:1.0.0"), "change": "sign", "digest": digest, "key": key, "format": "sig"})
    );

    // The unchanged republish with a key adds the signature.
    let second = json(&publish(&["--sign-key", key]));
    assert_eq!(second["skipped_unchanged"], true);
    assert_eq!(second["digest"], digest.as_str());
    assert_eq!(second["signatures"][0]["added"], true);
    assert_eq!(second["signatures"][0]["layout"], "sig");
    let (trusted, resolved) =
        cosign_verify(&format!("{image}:1.0.0"), &public_pem(keys.path())).unwrap();
    assert_eq!((trusted, resolved.as_str()), (1, digest.as_str()));
    // Every tag names the signed digest.
    cosign_verify(&format!("{image}:latest"), &public_pem(keys.path())).unwrap();

    // Once more: the signature is there, none is added.
    let third = json(&publish(&["--sign-key", key]));
    assert_eq!(third["signatures"][0]["added"], false);
    let sig = raw_manifest(&format!("{image}:{}", sig_tag(&digest))).unwrap();
    assert_eq!(sig["layers"].as_array().unwrap().len(), 1);

    // Bundle format too: a bundle is added, the .sig signature kept. (Not by editing v6.toml:
    // it is in the build context, so a new `[sign]` section would be another input.)
    let fourth = json(&publish(&["--sign-key", key, "--signature-format", "both"]));
    let placed: Vec<(&str, bool)> = fourth["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["layout"].as_str().unwrap(), s["added"].as_bool().unwrap()))
        .collect();
    assert_eq!(placed, [("sig", false), ("bundle", true)]);
    let out = cargo_v6(
        keys.path(),
        &["verify", &format!("{image}:1.0.0"), "--key", "cosign.pub"],
        None,
    );
    assert!(
        text(&out.stderr).contains("2 valid signatures"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_fresh_publish_signs_what_it_pushed_and_a_key_in_the_context_is_refused() {
    let keys = new_keys();
    let image = format!("{}/{}", stack().registry, unique("publish-fresh"));
    let dir = busybox_project(&image, "fresh\n", "");
    let key = keys.path().join("cosign.key");
    // The key from v6.toml's [sign], relative to v6.toml.
    let manifest = dir.path().join("v6.toml");
    let text_now = std::fs::read_to_string(&manifest).unwrap();
    let relative = format!(
        "../{}/cosign.key",
        keys.path().file_name().unwrap().to_str().unwrap()
    );
    std::fs::write(
        &manifest,
        format!("{text_now}\n[sign]\nkey = \"{relative}\"\n"),
    )
    .unwrap();
    let out = cargo_v6(dir.path(), &["publish", "--allow-dirty"], Some(PASSWORD));
    let stdout = assert_ok(&out);
    let digest = stdout.trim().rsplit_once('@').unwrap().1.to_owned();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Signed {image}@{digest} with key sha256:")),
        "{stderr}"
    );
    cosign_verify(&format!("{image}@{digest}"), &public_pem(keys.path())).unwrap();

    // The key inside the build context would be copied into the image: refused before
    // anything is built or pushed.
    let other = format!("{}/{}", stack().registry, unique("publish-key-inside"));
    let project = busybox_project(&other, "inside\n", "");
    std::fs::copy(&key, project.path().join("cosign.key")).unwrap();
    let out = cargo_v6(
        project.path(),
        &["publish", "--allow-dirty", "--sign-key", "cosign.key"],
        Some(PASSWORD),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the signing key `cosign.key` is in the build context"),
        "{}",
        text(&out.stderr)
    );
    assert!(support::repo_tags(&other).is_empty(), "nothing was pushed");
}

#[test]
fn signing_on_a_registry_with_credentials() {
    let keys = new_keys();
    let stack = stack();
    let repository = format!("{}/{}", stack.auth_registry, unique("auth-sign"));
    let destination = format!("docker://{repository}:1");
    let creds = format!("{}:{}", stack.auth_user, stack.auth_password);
    let docker_host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let source = format!("docker-daemon:{}", stack.busybox);
    let mut args = vec![
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
    ];
    if !docker_host.is_empty() {
        args.extend(["--src-daemon-host", &docker_host]);
    }
    args.extend([source.as_str(), destination.as_str()]);
    assert_ok(&skopeo(&args));

    let with_credentials = |args: &[&str], password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-v6"));
        command
            .current_dir(keys.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("V6_REGISTRY_USERNAME", &stack.auth_user)
            .env("V6_REGISTRY_PASSWORD", &stack.auth_password)
            .env_remove("COSIGN_PASSWORD")
            .stdin(Stdio::null());
        if let Some(password) = password {
            command.env("COSIGN_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let reference = format!("{repository}:1");
    let signed = with_credentials(
        &[
            "sign",
            &reference,
            "--key",
            "cosign.key",
            "--signature-format",
            "both",
        ],
        Some(PASSWORD),
    );
    assert_ok(&signed);
    let verified = with_credentials(&["verify", &reference, "--key", "cosign.pub"], None);
    assert_ok(&verified);
    for out in [&signed, &verified] {
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!shown.contains(&stack.auth_password), "{shown}");
    }
    cosign_verify_as(
        &reference,
        &public_pem(keys.path()),
        Auth::Basic(stack.auth_user.clone(), stack.auth_password.clone()),
    )
    .unwrap();
    // Without credentials: the registry's refusal, not a verdict.
    let out = verify_in(keys.path(), &reference);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("requires credentials (401 Unauthorized)"));
}

/// Two keys sign one digest at the same moment (`.sig` layout), through a registry where both
/// read the empty signature manifest before either writes, and the first write arrives late
/// (after the second signer has written and read back its own): the signer whose signature
/// that late write replaced finds it gone, merges it in again, and both end with their
/// signature in the manifest (or a signer exits 1 naming it).
#[test]
fn concurrent_signers_both_keep_their_signature() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let repository = fresh_image("twosigners");
    let path = repository.split_once('/').unwrap().1.to_owned();
    let reads = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let (seen_reads, seen_writes) = (Arc::clone(&reads), Arc::clone(&writes));
    let proxy = hostile::Hostile::start(&stack().registry, move |request| {
        if request.path.ends_with(".sig") && request.ours() {
            if request.method == "GET" && seen_reads.fetch_add(1, Ordering::SeqCst) < 2 {
                // The first two reads wait for each other: both signers read before either
                // writes.
                let deadline = Instant::now() + Duration::from_secs(10);
                while seen_reads.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if request.method == "PUT" && seen_writes.fetch_add(1, Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(700));
            }
        }
        hostile::Answer::Forward
    });
    let through_proxy = format!("{}/{path}:1", proxy.host());
    let keys = [new_keys(), new_keys()];
    let signers: Vec<_> = keys
        .iter()
        .map(|keys| {
            let dir = keys.path().to_owned();
            let reference = through_proxy.clone();
            std::thread::spawn(move || {
                cargo_v6(
                    &dir,
                    &["sign", &reference, "--key", "cosign.key"],
                    Some(PASSWORD),
                )
            })
        })
        .collect();
    let outs: Vec<Output> = signers.into_iter().map(|s| s.join().unwrap()).collect();
    assert!(
        writes.load(Ordering::SeqCst) >= 2,
        "both signers wrote: {:?}",
        proxy.seen()
    );
    for (keys, out) in keys.iter().zip(&outs) {
        let stderr = text(&out.stderr);
        // The signatures name the image as signed: through the proxy.
        let verified = verify_in(keys.path(), &through_proxy);
        match out.status.code() {
            Some(0) => {
                assert_ok(&verified);
            }
            Some(1) => assert!(stderr.contains("is lost"), "{stderr}"),
            other => panic!("{other:?}: {stderr}"),
        };
    }
    // Both signers succeed here: the late write lands within the settle time.
    for out in &outs {
        assert_ok(out);
    }
    let digest = digest_of(&format!("{repository}:1"));
    let layers = raw_manifest(&format!("{repository}:{}", sig_tag(&digest))).unwrap()["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 2, "{:?}", proxy.seen());
}

/// A registry that answers `201 Created` to the write of the bundle's referrer manifest
/// without keeping it: signing reads it back, writes it again, and fails naming it, rather
/// than list a referrer that is not there.
#[test]
fn a_referrer_the_registry_does_not_keep_fails_the_signing() {
    let repository = fresh_image("droppedbundle");
    let path = repository.split_once('/').unwrap().1.to_owned();
    let proxy = hostile::Hostile::start(&stack().registry, |request| {
        if request.method == "PUT" && request.path.contains("/manifests/sha256:") {
            hostile::Answer::Respond(hostile::response("201 Created", &[], b""))
        } else {
            hostile::Answer::Forward
        }
    });
    let keys = new_keys();
    let reference = format!("{}/{path}:1", proxy.host());
    let out = cargo_v6(
        keys.path(),
        &[
            "sign",
            &reference,
            "--key",
            "cosign.key",
            "--signature-format",
            "bundle",
        ],
        Some(PASSWORD),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not hold it when read back") && stderr.contains("@sha256:"),
        "{stderr}"
    );
    let writes = proxy
        .seen()
        .iter()
        .filter(|r| r.starts_with("PUT") && r.contains("/manifests/sha256:"))
        .count();
    assert_eq!(writes, 3, "{:?}", proxy.seen());
}
