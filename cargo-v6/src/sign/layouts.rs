//! Where signatures live in a registry, as cosign puts them, and the JSON that carries them.
//! Pure data: cosign's manifests and bundles, built from [`crate::oci::manifest`]'s media
//! types, descriptors and index (the fallback index is that module's [`manifest::index_with`]);
//! the I/O is in the parent.
//!
//! - **`.sig` tag** (cosign 1 and 2, read by every verifier): an OCI image manifest at tag
//!   `sha256-<hex>.sig` whose layers are simple-signing payloads
//!   (`application/vnd.dev.cosign.simplesigning.v1+json`), each with its base64 signature in
//!   the annotation `dev.cosignproject.cosign/signature`. One manifest holds every signature
//!   of the image: a new one is appended.
//! - **Bundle referrer** (cosign 3's default): a Sigstore bundle v0.3 (a DSSE envelope around an
//!   in-toto statement) as the single layer of an OCI 1.1 artifact manifest whose `subject` is
//!   the signed image, found through the referrers API, or where the registry has none, through
//!   the index at the fallback tag `sha256-<hex>`, which the signer keeps up to date.

use serde_json::{Value, json};

use super::keys::KeyId;
use crate::oci::manifest::{self, OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST, descriptor};
use crate::oci::reference::{Digest, Tag};

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The layer annotation that holds the base64 signature of its payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// cargo v6's own layer annotation: which public key made the signature
/// ([`KeyId::full`]). Other verifiers ignore it; `verify` uses it only to say why a signature
/// does not verify (another key, or a changed payload).
pub const KEY_ANNOTATION: &str = "io.cargo-v6.public-key";

/// The media type (and artifact type) of a Sigstore bundle v0.3.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Which layout a signature is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    /// The `sha256-<hex>.sig` tag.
    Sig,
    /// A Sigstore bundle attached as a referrer.
    Bundle,
}

impl Layout {
    /// The layout's name in JSON and on the command line: `sig`, `bundle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Sig => "sig",
            Layout::Bundle => "bundle",
        }
    }
}

impl serde::Serialize for Layout {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Sig => ".sig tag",
            Layout::Bundle => "bundle referrer",
        })
    }
}

/// `--signature-format`: which layouts to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The `.sig` tag layout: read by every cosign-compatible verifier.
    #[default]
    Sig,
    /// A bundle referrer: cosign 3's default.
    Bundle,
    /// Both.
    Both,
}

impl Format {
    /// The layouts written, in order.
    pub fn layouts(self) -> &'static [Layout] {
        match self {
            Format::Sig => &[Layout::Sig],
            Format::Bundle => &[Layout::Bundle],
            Format::Both => &[Layout::Sig, Layout::Bundle],
        }
    }

    /// The value as written on the command line and in v6.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Sig => "sig",
            Format::Bundle => "bundle",
            Format::Both => "both",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sig" => Ok(Format::Sig),
            "bundle" => Ok(Format::Bundle),
            "both" => Ok(Format::Both),
            other => Err(format!(
                "unknown signature format `{other}`: expected `sig`, `bundle` or `both`"
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `sha256-<hex>.sig`: where the `.sig` layout stores the signatures of `digest`.
pub fn sig_tag(digest: &Digest) -> Tag {
    Tag::parse(&format!("{}.sig", manifest::fallback_tag(digest)))
        .expect("a fallback tag with `.sig` is a valid tag")
}

/// The layer of a new `.sig` signature: the payload blob's descriptor with the signature and
/// the signing key's id as annotations.
pub fn sig_layer(
    payload_digest: &Digest,
    payload_size: usize,
    signature: &[u8],
    key: &KeyId,
) -> Value {
    let mut layer = descriptor(SIMPLE_SIGNING_MEDIA_TYPE, payload_digest, payload_size);
    layer["annotations"] = json!({
        SIGNATURE_ANNOTATION: base64(signature),
        KEY_ANNOTATION: key.full(),
    });
    layer
}

/// The layers of an existing `.sig` manifest, kept exactly as written (whoever wrote them).
/// The error completes "the signature manifest ...".
pub fn sig_layers(manifest: &[u8]) -> Result<Vec<Value>, String> {
    let json: Value = serde_json::from_slice(manifest).map_err(|e| format!("is not JSON: {e}"))?;
    if json.get("manifests").is_some() {
        return Err("is an index, not an image manifest".to_owned());
    }
    match json.get("layers") {
        Some(Value::Array(layers)) => Ok(layers.clone()),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err("has a `layers` that is not a list".to_owned()),
    }
}

/// The image config of a `.sig` manifest with `layers`, as go-containerregistry writes it for
/// cosign (one `diff_id` and one history entry per layer).
pub fn sig_config(layers: &[Value]) -> Vec<u8> {
    let diff_ids: Vec<&Value> = layers.iter().filter_map(|l| l.get("digest")).collect();
    let history: Vec<Value> = layers
        .iter()
        .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .expect("JSON values serialize")
}

/// The `.sig` manifest over `layers`, with the config blob `config` (digest, size).
pub fn sig_manifest(config: (&Digest, usize), layers: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config.0, config.1),
        "layers": layers,
    }))
    .expect("JSON values serialize")
}

/// A Sigstore bundle v0.3 of a DSSE envelope signed with a key (no certificate, no
/// transparency-log entry: verifiers are told to skip the log, `--insecure-ignore-tlog`).
pub fn bundle(payload_type: &str, payload: &[u8], signature: &[u8], key: &KeyId) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key.hint()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": base64(signature)}],
        },
    }))
    .expect("JSON values serialize")
}

/// A bundle as read back: the bytes its signature covers, and the parts that say what it
/// claims and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBundle {
    /// The DSSE payload (the statement).
    pub payload: Vec<u8>,
    /// The DSSE payload type.
    pub payload_type: String,
    /// The signature, decoded.
    pub signature: Vec<u8>,
    /// The public key's hint, when the bundle names one.
    pub key: Option<KeyId>,
}

/// Reads a bundle that [`bundle`] (or cosign 3 with a key) wrote. The error says what it is
/// instead.
pub fn read_bundle(bytes: &[u8]) -> Result<ReadBundle, String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the bundle is not JSON: {e}"))?;
    let envelope = json.get("dsseEnvelope").ok_or(
        "the bundle holds no DSSE envelope (a message signature or keyless certificate bundle)",
    )?;
    let text = |value: Option<&Value>, what: &str| {
        value
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("the bundle has no {what}"))
    };
    let payload = unbase64(&text(envelope.get("payload"), "payload")?)
        .ok_or("the bundle's payload is not base64")?;
    let payload_type = text(envelope.get("payloadType"), "payload type")?;
    let signatures = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or("the bundle has no signatures")?;
    let [signature] = signatures.as_slice() else {
        return Err(format!(
            "the bundle has {} signatures, not one",
            signatures.len()
        ));
    };
    let signature = unbase64(&text(signature.get("sig"), "signature")?)
        .ok_or("the bundle's signature is not base64")?;
    let key = json
        .pointer("/verificationMaterial/publicKey/hint")
        .and_then(Value::as_str)
        .and_then(KeyId::parse);
    Ok(ReadBundle {
        payload,
        payload_type,
        signature,
        key,
    })
}

/// The annotations of a bundle referrer, as cosign 3 writes them.
pub fn referrer_annotations(created: &str) -> Value {
    json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": super::payload::COSIGN_SIGN_PREDICATE,
        "org.opencontainers.image.created": created,
    })
}

/// The artifact manifest that attaches a bundle blob (`bundle`: digest, size) to `subject`.
pub fn referrer_manifest(
    bundle: (&Digest, usize),
    subject: &Value,
    annotations: &Value,
) -> Vec<u8> {
    let mut layer = descriptor(BUNDLE_MEDIA_TYPE, bundle.0, bundle.1);
    layer["annotations"] = json!({
        "org.opencontainers.image.title": format!("{}.sigstore.json", bundle.0.as_str().replacen(':', "-", 1)),
    });
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": descriptor(OCI_EMPTY, &manifest::empty_digest(), manifest::EMPTY_JSON.len()),
        "layers": [layer],
        "subject": subject,
        "annotations": annotations,
    }))
    .expect("JSON values serialize")
}

/// What a referrer manifest says: its subject's digest and its bundle layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReferrer {
    /// `subject.digest`, when it is a digest.
    pub subject: Option<Digest>,
    /// The artifact type (or the config's media type, as OCI 1.1 allows).
    pub artifact_type: Option<String>,
    /// The bundle layer: digest and size, when both are valid.
    pub bundle: Option<(Digest, usize)>,
}

/// Reads a referrer manifest.
pub fn read_referrer(manifest: &[u8]) -> Result<ReadReferrer, String> {
    let json: Value = serde_json::from_slice(manifest).map_err(|e| format!("is not JSON: {e}"))?;
    let text = |pointer: &str| {
        json.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let bundle = json
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| l.get("mediaType").and_then(Value::as_str) == Some(BUNDLE_MEDIA_TYPE))
        .and_then(|l| {
            let digest = Digest::parse(l.get("digest")?.as_str()?).ok()?;
            let size = usize::try_from(l.get("size")?.as_u64()?).ok()?;
            Some((digest, size))
        });
    Ok(ReadReferrer {
        subject: text("/subject/digest").and_then(|d| Digest::parse(&d).ok()),
        artifact_type: text("/artifactType").or_else(|| text("/config/mediaType")),
        bundle,
    })
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64, tolerating the line breaks some writers insert.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// Now as RFC 3339 UTC (`2024-03-08T18:18:20Z`), for `org.opencontainers.image.created`.
pub fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::time::rfc3339(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::{ImageManifest, ManifestInfo, empty_digest, fallback_tag};

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn tags_follow_cosign_and_the_referrers_tag_schema() {
        assert_eq!(
            sig_tag(&digest('b')).as_str(),
            format!("sha256-{}.sig", "b".repeat(64))
        );
        assert_eq!(
            fallback_tag(&digest('b')).as_str(),
            format!("sha256-{}", "b".repeat(64))
        );
    }

    #[test]
    fn sig_manifests_keep_earlier_layers_as_written() {
        let key = KeyId::parse(&format!("sha256:{}", "c".repeat(64))).unwrap();
        let old = json!({"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "digest": digest('1').as_str(), "size": 1,
            "annotations": {SIGNATURE_ANNOTATION: "b2xk", "x": "kept"}});
        let manifest = sig_manifest((&digest('f'), 3), std::slice::from_ref(&old));
        let mut layers = sig_layers(&manifest).unwrap();
        assert_eq!(layers, std::slice::from_ref(&old));
        layers.push(sig_layer(&digest('2'), 2, b"sig", &key));
        let bytes = sig_manifest((&digest('f'), 3), &layers);
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["mediaType"], OCI_MANIFEST);
        assert_eq!(json["layers"][0], old);
        assert_eq!(
            json["layers"][1]["annotations"][SIGNATURE_ANNOTATION],
            "c2ln"
        );
        assert_eq!(json["layers"][1]["annotations"][KEY_ANNOTATION], key.full());
        // A typed OCI image manifest: its config and layers read back.
        let typed = ManifestInfo::parse("sig", bytes).unwrap().image().unwrap();
        assert_eq!(typed.config().digest().as_ref(), digest('f').as_str());
        assert_eq!(typed.layers()[1].digest().as_ref(), digest('2').as_str());
        assert_eq!(
            typed.layers()[0].annotations().as_ref().unwrap()["x"],
            "kept"
        );
        let config: Value = serde_json::from_slice(&sig_config(&layers)).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!([digest('1').as_str(), digest('2').as_str()])
        );
        assert!(sig_layers(br#"{"manifests":[]}"#).is_err());
    }

    #[test]
    fn bundles_read_back() {
        let key = KeyId::parse(&format!("sha256:{}", "d".repeat(64))).unwrap();
        let bytes = bundle("application/vnd.in-toto+json", b"{}", b"sig", &key);
        let read = read_bundle(&bytes).unwrap();
        assert_eq!(read.payload, b"{}");
        assert_eq!(read.signature, b"sig");
        assert_eq!(read.key, Some(key));
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["mediaType"], BUNDLE_MEDIA_TYPE);
        assert!(read_bundle(br#"{"messageSignature":{}}"#).is_err());
    }

    #[test]
    fn referrer_manifests_attach_a_bundle_to_its_subject() {
        let subject = descriptor(
            "application/vnd.docker.distribution.manifest.v2+json",
            &digest('5'),
            10,
        );
        let manifest = referrer_manifest((&digest('b'), 5), &subject, &referrer_annotations("t"));
        let json: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(json["artifactType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(json["config"]["digest"], empty_digest().as_str());
        assert_eq!(
            json["layers"][0]["annotations"]["org.opencontainers.image.title"],
            format!("sha256-{}.sigstore.json", "b".repeat(64))
        );
        let read = read_referrer(&manifest).unwrap();
        assert_eq!(read.subject, Some(digest('5')));
        assert_eq!(read.bundle, Some((digest('b'), 5)));
        assert_eq!(read.artifact_type.as_deref(), Some(BUNDLE_MEDIA_TYPE));
        // A typed OCI 1.1 artifact manifest with a subject.
        let typed: ImageManifest = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(
            typed.subject().as_ref().unwrap().digest().as_ref(),
            digest('5').as_str()
        );
        assert_eq!(
            typed.artifact_type().as_ref().unwrap().to_string(),
            BUNDLE_MEDIA_TYPE
        );
    }
}
