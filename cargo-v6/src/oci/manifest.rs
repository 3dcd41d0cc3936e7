//! OCI and Docker manifests as data, with no I/O: media types, the kinds of manifest a
//! registry stores, a stored manifest with its exact bytes ([`ManifestInfo`]), descriptors,
//! the platform an index resolves to, an image config's labels, and the referrers index (the
//! referrers API's answer, and its tag-schema fallback that cargo v6 keeps for registries
//! without that API). The registry module reads and writes these; `sign` builds its artifacts
//! from them.
//!
//! Reading goes through `oci-spec`'s typed [`ImageManifest`], [`ImageIndex`], [`Descriptor`]
//! and [`Platform`] ([`ManifestInfo::image`], [`ManifestInfo::index`]). Three things are not
//! left to them, each for a reason:
//! - **Exact bytes.** A manifest is kept as the registry stored it: its digest is that of its
//!   bytes, and a tag is moved by writing the same bytes ([`ManifestInfo::body`]). A typed value
//!   serialised again is other bytes (field order, spacing), hence another digest, and pinned
//!   `image@sha256:` references would stop matching.
//! - **What cargo v6 writes** (descriptors, the fallback index, and `sign`'s manifests) is
//!   built as `serde_json::Value`, whose maps write their keys sorted: the same value is always
//!   the same bytes. `oci-spec` keeps annotations in a `HashMap`, whose order changes from one
//!   process to the next (the same manifest would get another digest each run, and part 13's
//!   reproducible digests need the opposite), and its `Descriptor` drops fields it does not
//!   know, where an index or signature manifest that another tool wrote must keep them.
//! - **Lenient classification.** [`ManifestInfo::parse`] accepts what registries store and
//!   `oci-spec` refuses (an OCI manifest without `mediaType`, a config descriptor without a
//!   size), as the code before it did, so that publish and verify keep working on them.
//!
//! Docker's media types (schema 2 manifests and manifest lists) are `oci-spec`'s
//! `MediaType::Other`; their JSON has the OCI shape, so the same types read them.
//!
//! Part 13's images, assembled without an engine, are written here as the vantage6 store can
//! resolve them: a Docker image manifest per platform ([`docker_image_manifest`]) and a Docker
//! manifest list over them ([`docker_manifest_list`]), both with sorted keys so that the same
//! images always give the same digests.

use std::collections::BTreeMap;
use std::fmt;

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, Platform};
use serde_json::{Value, json};

use super::layer::LayerDigests;
use super::reference::{Digest, Tag};

/// A Docker image manifest, schema 2: one platform, what the vantage6 store and every Docker
/// engine resolve.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A Docker manifest list: several platforms.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A Docker image config: what a Docker image manifest's config descriptor says.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// A Docker layer: a gzip'd tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// An OCI layer, gzip'd tar: the same bytes as [`DOCKER_LAYER_GZIP`].
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The OCI empty descriptor's media type, content [`EMPTY_JSON`].
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The content of the OCI empty descriptor.
pub const EMPTY_JSON: &[u8] = b"{}";

/// Every manifest type a registry may store for an image, so that reads see what is stored
/// rather than a conversion the registry makes for a narrower `Accept` header.
pub const MANIFEST_TYPES: &[&str] = &[
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
];

/// `sha256:<hex>` of `bytes`: the digest of a manifest or blob.
pub fn digest_of(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    let text = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    Digest::parse(&text).expect("a sha256 digest is a valid digest")
}

/// The digest of [`EMPTY_JSON`].
pub fn empty_digest() -> Digest {
    digest_of(EMPTY_JSON)
}

/// `sha256-<hex>`: the digest as a tag, by the OCI referrers tag schema (`<alg>-<ref>`, the
/// algorithm cut to 32 characters and the hex to 64): where the fallback index of a
/// registry without the referrers API lists the referrers of `digest`.
pub fn fallback_tag(digest: &Digest) -> Tag {
    let (algorithm, hex) = digest
        .as_str()
        .split_once(':')
        .expect("a digest has an algorithm");
    let cut = |text: &str, n: usize| text.chars().take(n).collect::<String>();
    Tag::parse(&format!("{}-{}", cut(algorithm, 32), cut(hex, 64)))
        .expect("an algorithm and lowercase hex make a valid tag")
}

/// What kind of manifest a tag points at, as stored. The vantage6 algorithm store asks only
/// for a docker v2 schema 2 manifest, so only [`ManifestKind::DockerV2`] resolves there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// [`DOCKER_MANIFEST`]: one platform, what the store and every Docker engine resolve.
    DockerV2,
    /// [`OCI_MANIFEST`]: one platform, but a registry answering the store's docker-only
    /// `Accept` header refuses it (distribution says `MANIFEST_UNKNOWN`).
    OciImage,
    /// A manifest list or OCI index (multi-platform, or with attestations): the store gets at
    /// best one platform's manifest, at worst nothing.
    Index {
        /// Which of the two index types.
        media_type: String,
    },
    /// Anything else (an artifact, a schema 1 manifest).
    Other(String),
}

impl ManifestKind {
    /// Classifies a manifest media type.
    pub fn from_media_type(media_type: &str) -> Self {
        match media_type {
            DOCKER_MANIFEST => ManifestKind::DockerV2,
            OCI_MANIFEST => ManifestKind::OciImage,
            DOCKER_MANIFEST_LIST | OCI_INDEX => ManifestKind::Index {
                media_type: media_type.to_owned(),
            },
            other => ManifestKind::Other(other.to_owned()),
        }
    }

    /// The media type, for messages.
    pub fn media_type(&self) -> &str {
        match self {
            ManifestKind::DockerV2 => DOCKER_MANIFEST,
            ManifestKind::OciImage => OCI_MANIFEST,
            ManifestKind::Index { media_type } | ManifestKind::Other(media_type) => media_type,
        }
    }

    /// Whether the vantage6 algorithm store can resolve this manifest's digest, asking with
    /// `Accept: application/vnd.docker.distribution.manifest.v2+json` only.
    pub fn resolvable_by_store(&self) -> bool {
        *self == ManifestKind::DockerV2
    }

    /// Whether the store resolves it when given by digest only (`IMAGE@sha256:...`): a Docker
    /// manifest list is then answered as it is, where by tag the registry answers with its
    /// linux/amd64 image (distribution 2.8, measured); an OCI index is refused both ways.
    pub fn resolvable_by_store_by_digest(&self) -> bool {
        matches!(self, ManifestKind::Index { media_type } if media_type == DOCKER_MANIFEST_LIST)
    }
}

impl fmt::Display for ManifestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// A manifest as stored, read from a tag or by digest: what a publish needs to know about an
/// existing tag, and the bytes to write under another tag.
#[derive(Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The manifest's digest: that of its bytes (which the registry's
    /// `Docker-Content-Digest` must match). What `image@sha256:` pins.
    pub digest: Digest,
    /// The kind of manifest, as stored.
    pub kind: ManifestKind,
    /// The tag (or digest) it was read under, for messages.
    at: String,
    /// The digest of the image config, as written, for a single image.
    config: Option<String>,
    /// The manifest exactly as stored.
    body: Vec<u8>,
}

impl ManifestInfo {
    /// Reads what the manifest `body`, read at `at` (a tag or a digest), says; its digest is
    /// that of `body`. The error completes "the manifest of X ...".
    pub fn parse(at: &str, body: Vec<u8>) -> Result<ManifestInfo, String> {
        let json: Value = serde_json::from_slice(&body).map_err(|e| format!("is not JSON: {e}"))?;
        let kind = ManifestKind::from_media_type(&media_type_of_json(&json)?);
        let config = match kind {
            ManifestKind::DockerV2 | ManifestKind::OciImage => json
                .get("config")
                .and_then(|c| c.get("digest"))
                .and_then(|d| d.as_str())
                .map(str::to_owned),
            ManifestKind::Index { .. } | ManifestKind::Other(_) => None,
        };
        Ok(ManifestInfo {
            digest: digest_of(&body),
            kind,
            at: at.to_owned(),
            config,
            body,
        })
    }

    /// The tag (or digest) the manifest was read under.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The digest of the image config, or why there is none; the error completes "the
    /// manifest of X ...".
    pub fn image_config(&self) -> Result<Digest, String> {
        match (&self.config, &self.kind) {
            (Some(config), _) => Digest::parse(config)
                .map_err(|e| format!("has an invalid config digest `{config}`: {e}")),
            (None, ManifestKind::DockerV2 | ManifestKind::OciImage) => {
                Err("has no config digest".to_owned())
            }
            (None, kind) => Err(format!("is a `{kind}`, not an image")),
        }
    }

    /// The manifest exactly as stored.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// A descriptor of this manifest (its media type, digest and size), as a manifest's
    /// `subject` or an index entry names it.
    pub fn descriptor(&self) -> Value {
        descriptor(self.kind.media_type(), &self.digest, self.body.len())
    }

    /// The manifest as a typed image manifest (Docker schema 2 or OCI); the error completes
    /// "the manifest of X ...".
    pub fn image(&self) -> Result<ImageManifest, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("is not an image manifest: {e}"))
    }

    /// The manifest as a typed index (a Docker manifest list or an OCI index); the error
    /// completes "the manifest of X ...".
    pub fn index(&self) -> Result<ImageIndex, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("is not an index: {e}"))
    }
}

impl fmt::Debug for ManifestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestInfo")
            .field("digest", &self.digest)
            .field("kind", &self.kind)
            .field("at", &self.at)
            .field("config", &self.config)
            .field("bytes", &self.body.len())
            .finish()
    }
}

/// The media type of a manifest: its `mediaType`, or for an OCI manifest that omits it
/// (allowed by the spec), the type its fields imply. The error completes "the manifest of X
/// ...".
fn media_type_of_json(json: &Value) -> Result<String, String> {
    if let Some(media_type) = json.get("mediaType").and_then(|m| m.as_str()) {
        return Ok(media_type.to_owned());
    }
    if json.get("manifests").is_some() {
        Ok(OCI_INDEX.to_owned())
    } else if json.get("config").is_some() {
        Ok(OCI_MANIFEST.to_owned())
    } else {
        Err("has no media type".to_owned())
    }
}

/// The digest of the manifest that `index` names for the platform cargo-v6 runs on (the first
/// entry of this OS and architecture, as oci-client's default resolver chooses). The error
/// completes "the manifest of X ...".
pub fn platform_manifest(index: &ManifestInfo) -> Result<Digest, String> {
    find_manifest(index, &Platform::default(), || {
        "names no image for the platform cargo-v6 runs on".to_owned()
    })
}

/// The digest of the manifest that `index` names for `platform`: the first entry of its OS
/// and architecture, and of its variant when both name one (an entry without a variant
/// matches any). The error completes "the manifest of X ...".
pub fn manifest_for(index: &ManifestInfo, platform: &Platform) -> Result<Digest, String> {
    find_manifest(index, platform, || {
        format!("names no image for {}", platform_text(platform))
    })
}

/// [`manifest_for`], the error `missing()` when no entry is for `platform`.
///
/// Read leniently, entry by entry, not as `oci-spec`'s `ImageIndex`: an index without
/// `schemaVersion`, or with an entry for another platform that `oci-spec` refuses (an invalid
/// digest), still names this platform's image, as it did before the typed layer; only the
/// entry chosen must be valid.
fn find_manifest(
    index: &ManifestInfo,
    platform: &Platform,
    missing: impl FnOnce() -> String,
) -> Result<Digest, String> {
    let index: Value =
        serde_json::from_slice(&index.body).map_err(|e| format!("is not JSON: {e}"))?;
    let wanted = |entry: &&Value| {
        entry
            .get("platform")
            .and_then(|p| serde_json::from_value::<Platform>(p.clone()).ok())
            .is_some_and(|found| {
                found.os() == platform.os()
                    && found.architecture() == platform.architecture()
                    && match (found.variant(), platform.variant()) {
                        (Some(found), Some(wanted)) => found == wanted,
                        _ => true,
                    }
            })
    };
    let entry = index
        .get("manifests")
        .and_then(Value::as_array)
        .and_then(|entries| entries.iter().find(wanted))
        .ok_or_else(missing)?;
    let digest = entry
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Digest::parse(digest).map_err(|e| format!("names an invalid digest `{digest}`: {e}"))
}

/// `os/architecture[/variant]`, as `--platform` writes a platform.
pub fn platform_text(platform: &Platform) -> String {
    match platform.variant() {
        Some(variant) => format!("{}/{}/{variant}", platform.os(), platform.architecture()),
        None => format!("{}/{}", platform.os(), platform.architecture()),
    }
}

/// The manifests an index or manifest list names, in its order (none for an image manifest,
/// or entries without a valid digest).
pub fn list_entries(list: &ManifestInfo) -> Vec<Digest> {
    let value: Value = serde_json::from_slice(list.body()).unwrap_or_default();
    value
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("digest")?.as_str())
        .filter_map(|digest| Digest::parse(digest).ok())
        .collect()
}

/// `config.Labels` of an image config (empty when absent); labels whose value is not a
/// string are left out. The error completes "the image config of X ...".
///
/// Not `oci-spec`'s `ImageConfiguration`: its labels are strings only, and a config with one
/// label of another type would fail whole, where the fingerprint label next to it is what
/// publish needs.
pub fn labels_of_config(config: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let config: Value = serde_json::from_slice(config).map_err(|e| format!("is not JSON: {e}"))?;
    Ok(config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.as_object())
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

/// A content descriptor.
pub fn descriptor(media_type: &str, digest: &Digest, size: usize) -> Value {
    blob_descriptor(media_type, digest, size as u64)
}

/// A content descriptor of a blob, whose size (a layer's) may pass `usize` on 32-bit targets.
fn blob_descriptor(media_type: &str, digest: &Digest, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest.as_str(), "size": size})
}

/// Why an image manifest or manifest list cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A base layer that a Docker image manifest cannot name: compressed otherwise than gzip
    /// (zstd, uncompressed), or foreign/nondistributable (its bytes are not in the registry).
    #[error(
        "the base image's layer {digest} is a `{media_type}`; an image assembled by cargo v6 can \
         only reuse gzip'd layers (`{DOCKER_LAYER_GZIP}` or `{OCI_LAYER_GZIP}`): use a base \
         image pushed with gzip layers"
    )]
    LayerType {
        /// The layer's digest.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// A manifest list entry that is not a Docker image manifest.
    #[error(
        "the manifest {digest} is a `{media_type}`; a Docker manifest list names only \
         `{DOCKER_MANIFEST}` manifests"
    )]
    NotDockerImage {
        /// The manifest's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A manifest list with no image.
    #[error("a manifest list needs at least one image")]
    EmptyList,
    /// Two entries for one platform: which one a client pulls would be the registry's
    /// order, not the user's choice.
    #[error("two images of the manifest list are for {0}")]
    SamePlatform(String),
}

/// A layer as a Docker image manifest names it: a gzip'd tar, of Docker's media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The digest of the gzip bytes.
    pub digest: Digest,
    /// Their size.
    pub size: u64,
}

impl LayerBlob {
    /// A layer of a base image's manifest, to name it again in an image assembled on that
    /// base. A Docker gzip layer is kept; an OCI gzip layer is the same bytes and is named
    /// with the Docker type, because the manifest written is a Docker one (the vantage6 store
    /// asks for that type only) and Docker engines expect Docker layer types in it. Any
    /// other layer (zstd, uncompressed, foreign or nondistributable) is refused.
    pub fn of_base(layer: &Descriptor) -> Result<LayerBlob, ManifestError> {
        let media_type = layer.media_type().to_string();
        let refuse = || ManifestError::LayerType {
            digest: layer.digest().to_string(),
            media_type: media_type.clone(),
        };
        if !matches!(media_type.as_str(), DOCKER_LAYER_GZIP | OCI_LAYER_GZIP)
            || layer.urls().as_ref().is_some_and(|urls| !urls.is_empty())
        {
            return Err(refuse());
        }
        Ok(LayerBlob {
            digest: Digest::parse(layer.digest().as_ref()).map_err(|_| refuse())?,
            size: layer.size(),
        })
    }
}

impl From<&LayerDigests> for LayerBlob {
    /// A layer cargo v6 wrote ([`super::layer::LayerWriter`]).
    fn from(layer: &LayerDigests) -> LayerBlob {
        LayerBlob {
            digest: layer.digest.clone(),
            size: layer.size,
        }
    }
}

/// The Docker image manifest (schema 2) of the image whose config is `config` (the bytes
/// [`super::image::derive_config`] gave) and whose layers are `layers`, base first: sorted
/// keys, so the same image is always the same bytes and digest.
pub fn docker_image_manifest(config: &[u8], layers: &[LayerBlob]) -> ManifestInfo {
    let layers: Vec<Value> = layers
        .iter()
        .map(|layer| blob_descriptor(DOCKER_LAYER_GZIP, &layer.digest, layer.size))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &digest_of(config), config.len()),
        "layers": layers,
    });
    written(manifest)
}

/// The Docker manifest list over `images` (Docker image manifests, each with its platform),
/// in the order given: what a client of any platform pulls by one name, and what the vantage6
/// store resolves by digest (an OCI index it cannot read at all). Sorted keys, so the same
/// images are always the same bytes and digest.
pub fn docker_manifest_list(
    images: &[(&ManifestInfo, &Platform)],
) -> Result<ManifestInfo, ManifestError> {
    if images.is_empty() {
        return Err(ManifestError::EmptyList);
    }
    let mut entries = Vec::with_capacity(images.len());
    let mut platforms = Vec::with_capacity(images.len());
    for (image, platform) in images {
        if image.kind != ManifestKind::DockerV2 {
            return Err(ManifestError::NotDockerImage {
                digest: image.digest.clone(),
                media_type: image.kind.to_string(),
            });
        }
        if platforms.contains(platform) {
            return Err(ManifestError::SamePlatform(platform_text(platform)));
        }
        platforms.push(*platform);
        let mut entry = image.descriptor();
        entry["platform"] = serde_json::to_value(platform).expect("a platform serializes");
        entries.push(entry);
    }
    Ok(written(json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": entries,
    })))
}

/// A manifest cargo v6 wrote, as stored: its bytes (sorted keys, compact) and digest.
fn written(manifest: Value) -> ManifestInfo {
    let body = serde_json::to_vec(&manifest).expect("JSON values serialize");
    let at = digest_of(&body).to_string();
    ManifestInfo::parse(&at, body).expect("a manifest written here reads back")
}

/// A manifest that names another as its `subject`, as the referrers API (or its tag-schema
/// fallback) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its `artifactType`, when the listing gives one.
    pub artifact_type: Option<String>,
}

/// The referrers an index lists (the referrers API's answer, or the fallback index). What is
/// not an index lists nothing, as the OCI spec recommends for the fallback; an entry without
/// a valid digest or media type names nothing that can be read, and is left out.
pub fn referrers_of_index(index: &[u8]) -> Vec<Referrer> {
    let json: Value = serde_json::from_slice(index).unwrap_or(Value::Null);
    let text = |entry: &Value, key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    json.get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(Referrer {
                digest: Digest::parse(&text(entry, "digest")?).ok()?,
                media_type: text(entry, "mediaType")?,
                artifact_type: text(entry, "artifactType"),
            })
        })
        .collect()
}

/// The index `existing` (an empty OCI index when `None`) with `entry` added; the entries
/// already there are kept as written. The error completes "the referrers index ...".
pub fn index_with(existing: Option<&[u8]>, entry: Value) -> Result<Vec<u8>, String> {
    let mut index = match existing {
        Some(bytes) => {
            serde_json::from_slice::<Value>(bytes).map_err(|e| format!("is not JSON: {e}"))?
        }
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let Some(manifests) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Err("is not an image index (no `manifests` list)".to_owned());
    };
    manifests.push(entry);
    Ok(serde_json::to_vec(&index).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Docker schema 2 manifest as the distribution registry stores what an engine pushed:
    /// indented, its own key order.
    const DOCKER_V2: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1470,
      "digest": "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 3408729,
         "digest": "sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8"
      }
   ]
}"#;

    /// An OCI image manifest with annotations.
    const OCI_IMAGE: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7","size":7023},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0","size":32654}],"annotations":{"org.opencontainers.image.created":"2024-03-08T18:18:20Z"}}"#;

    /// A Docker manifest list of two platforms.
    const DOCKER_LIST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f","size":7143,"platform":{"architecture":"ppc64le","os":"linux"}},{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270","size":7682,"platform":{"architecture":"amd64","os":"linux","features":["sse4"]}}]}"#;

    /// An OCI index with an arm64 variant and an attestation entry.
    const OCI_INDEX_BODY: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1024,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":566,"annotations":{"vnd.docker.reference.type":"attestation-manifest"},"platform":{"architecture":"unknown","os":"unknown"}}]}"#;

    /// A cosign `.sig` manifest as go-containerregistry writes it (one signature).
    const COSIGN_SIG: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:0d0e6a0ad6ac3de4d1ebd5c2c0d6a1b1b0d8c0ef9e4e1b5d4d2b6e7f3c2a1b0c"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":248,"digest":"sha256:6f1d2d9a6a0a8e4a5f1e0cfb1c0e9a6d3d1b0f4e5b2c8a7d6e5f4a3b2c1d0e9f","annotations":{"dev.cosignproject.cosign/signature":"MEUCIQDx"}}]}"#;

    /// A referrers fallback index listing a Sigstore bundle referrer.
    const FALLBACK: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":717,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{"dev.sigstore.bundle.content":"dsse-envelope"}}]}"#;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn read(body: &str) -> ManifestInfo {
        ManifestInfo::parse("1.0.0", body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn media_types_are_oci_clients() {
        use oci_client::manifest as oci;
        assert_eq!(DOCKER_MANIFEST, oci::IMAGE_MANIFEST_MEDIA_TYPE);
        assert_eq!(DOCKER_MANIFEST_LIST, oci::IMAGE_MANIFEST_LIST_MEDIA_TYPE);
        assert_eq!(OCI_MANIFEST, oci::OCI_IMAGE_MEDIA_TYPE);
        assert_eq!(OCI_INDEX, oci::OCI_IMAGE_INDEX_MEDIA_TYPE);
        assert_eq!(OCI_CONFIG, oci::IMAGE_CONFIG_MEDIA_TYPE);
        assert_eq!(OCI_EMPTY, oci_spec::image::MediaType::EmptyJSON.to_string());
    }

    #[test]
    fn a_docker_v2_manifest_reads_typed_and_keeps_its_bytes() {
        let info = read(DOCKER_V2);
        assert_eq!(info.kind, ManifestKind::DockerV2);
        assert_eq!(info.body(), DOCKER_V2.as_bytes());
        assert_eq!(info.digest, digest_of(DOCKER_V2.as_bytes()));
        assert_eq!(
            info.image_config().unwrap().as_str(),
            "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d"
        );
        let image = info.image().unwrap();
        assert_eq!(
            image.media_type().as_ref().map(ToString::to_string),
            Some(DOCKER_MANIFEST.to_owned())
        );
        assert_eq!(image.layers().len(), 1);
        assert_eq!(image.layers()[0].size(), 3408729);
        // Serialised again, the same manifest is other bytes, so another digest: what is
        // written under another tag is the body, never the typed value.
        let again = serde_json::to_vec(&image).unwrap();
        assert_ne!(digest_of(&again), info.digest);
        assert_eq!(
            serde_json::from_slice::<ImageManifest>(&again).unwrap(),
            image
        );
        assert!(info.index().is_err());
    }

    #[test]
    fn an_oci_manifest_reads_typed_with_its_annotations() {
        let info = read(OCI_IMAGE);
        assert_eq!(info.kind, ManifestKind::OciImage);
        let image = info.image().unwrap();
        assert_eq!(
            image.annotations().as_ref().unwrap()["org.opencontainers.image.created"],
            "2024-03-08T18:18:20Z"
        );
        assert_eq!(
            image.config().digest().as_ref(),
            info.image_config().unwrap().as_str()
        );
        assert_eq!(info.digest, digest_of(OCI_IMAGE.as_bytes()));
    }

    #[test]
    fn indexes_read_typed_and_resolve_to_this_platform() {
        let list = read(DOCKER_LIST);
        assert_eq!(
            list.kind,
            ManifestKind::Index {
                media_type: DOCKER_MANIFEST_LIST.into()
            }
        );
        let index = list.index().unwrap();
        assert_eq!(index.manifests().len(), 2);
        let platform = index.manifests()[1].platform().as_ref().unwrap();
        assert_eq!(
            platform.features().as_deref(),
            Some(&["sse4".to_owned()][..])
        );
        assert!(list.image().is_err());
        assert_eq!(
            list.image_config().unwrap_err(),
            format!("is a `{DOCKER_MANIFEST_LIST}`, not an image")
        );

        let oci = read(OCI_INDEX_BODY);
        let index = oci.index().unwrap();
        assert_eq!(
            index.manifests()[0]
                .platform()
                .as_ref()
                .unwrap()
                .variant()
                .as_deref(),
            Some("v8")
        );
        let arm = std::env::consts::ARCH == "aarch64";
        let amd = std::env::consts::ARCH == "x86_64";
        match platform_manifest(&list) {
            Ok(found) if amd => assert_eq!(
                found.as_str(),
                "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
            ),
            found => assert!(!amd, "{found:?}"),
        }
        match platform_manifest(&oci) {
            Ok(found) => assert!(arm && found == digest('1')),
            Err(e) => assert_eq!(e, "names no image for the platform cargo-v6 runs on"),
        }
    }

    #[test]
    fn an_index_resolves_leniently_where_only_the_chosen_entry_must_be_valid() {
        let (os, arch) = (
            oci_spec::image::Os::default().to_string(),
            oci_spec::image::Arch::default().to_string(),
        );
        let here = digest('7');
        // No schemaVersion, and another platform's entry with an invalid digest.
        let body = format!(
            r#"{{"mediaType":"{OCI_INDEX}","manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"sha256:1","size":1,"platform":{{"os":"plan9","architecture":"mips"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{here}","size":1,"platform":{{"os":"{os}","architecture":"{arch}"}}}}]}}"#
        );
        let index = ManifestInfo::parse("r.example/a:1", body.into_bytes()).unwrap();
        assert!(index.index().is_err(), "oci-spec refuses it whole");
        assert_eq!(platform_manifest(&index).unwrap(), here);
        // The chosen entry itself must be valid.
        let bad = format!(
            r#"{{"mediaType":"{OCI_INDEX}","manifests":[{{"digest":"sha256:1","platform":{{"os":"{os}","architecture":"{arch}"}}}}]}}"#
        );
        let index = ManifestInfo::parse("r.example/a:1", bad.into_bytes()).unwrap();
        assert!(
            platform_manifest(&index)
                .unwrap_err()
                .starts_with("names an invalid digest `sha256:1`")
        );
    }

    #[test]
    fn a_cosign_sig_manifest_reads_typed_with_its_signature() {
        let sig = read(COSIGN_SIG);
        assert_eq!(sig.kind, ManifestKind::OciImage);
        let image = sig.image().unwrap();
        let layer = &image.layers()[0];
        assert_eq!(
            layer.media_type().to_string(),
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert_eq!(
            layer.annotations().as_ref().unwrap()["dev.cosignproject.cosign/signature"],
            "MEUCIQDx"
        );
    }

    #[test]
    fn the_fallback_index_grows_keeps_what_others_wrote_and_lists_referrers() {
        let listed = referrers_of_index(FALLBACK.as_bytes());
        assert_eq!(
            listed,
            [Referrer {
                digest: digest('3'),
                media_type: OCI_MANIFEST.into(),
                artifact_type: Some("application/vnd.dev.sigstore.bundle.v0.3+json".into()),
            }]
        );
        let grown = index_with(
            Some(FALLBACK.as_bytes()),
            descriptor(OCI_MANIFEST, &digest('4'), 10),
        )
        .unwrap();
        let listed: Vec<Digest> = referrers_of_index(&grown)
            .into_iter()
            .map(|r| r.digest)
            .collect();
        assert!(listed.contains(&digest('3')) && listed.contains(&digest('4')));
        assert!(!listed.contains(&digest('5')));
        // The entry written by another tool keeps its annotations.
        let index: ImageIndex = serde_json::from_slice(&grown).unwrap();
        assert_eq!(
            index.manifests()[0].annotations().as_ref().unwrap()["dev.sigstore.bundle.content"],
            "dsse-envelope"
        );
        // A new index is an OCI index, typed.
        let first = index_with(None, descriptor(OCI_MANIFEST, &digest('a'), 1)).unwrap();
        let index: ImageIndex = serde_json::from_slice(&first).unwrap();
        assert_eq!(index.schema_version(), 2);
        assert_eq!(index.manifests()[0].digest().as_ref(), digest('a').as_str());
        // The same value is always the same bytes.
        assert_eq!(
            first,
            index_with(None, descriptor(OCI_MANIFEST, &digest('a'), 1)).unwrap()
        );
        assert!(index_with(Some(b"{}"), json!({})).is_err());
        // Not an index, or entries that name nothing readable: nothing listed.
        assert!(referrers_of_index(b"<html>").is_empty());
        assert!(
            referrers_of_index(br#"{"manifests":[{"digest":"sha256:x","mediaType":"m"}]}"#)
                .is_empty()
        );
    }

    #[test]
    fn digests_and_fallback_tags() {
        assert_eq!(
            empty_digest().as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            fallback_tag(&digest('b')).as_str(),
            format!("sha256-{}", "b".repeat(64))
        );
        let long = Digest::parse(&format!("sha512:{}", "c".repeat(128))).unwrap();
        assert_eq!(
            fallback_tag(&long).as_str(),
            format!("sha512-{}", "c".repeat(64))
        );
    }

    #[test]
    fn media_type_comes_from_the_body_or_its_shape() {
        let parse = |body: &str| ManifestInfo::parse("1.0.0", body.as_bytes().to_vec());
        assert_eq!(
            parse(r#"{"schemaVersion":2,"config":{},"layers":[]}"#)
                .unwrap()
                .kind,
            ManifestKind::OciImage
        );
        assert_eq!(
            parse(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap().kind,
            ManifestKind::Index {
                media_type: OCI_INDEX.into()
            }
        );
        assert_eq!(parse("{}").unwrap_err(), "has no media type");
        assert!(parse("<html>").unwrap_err().starts_with("is not JSON"));
    }

    #[test]
    fn manifest_info_keeps_digest_config_and_bytes() {
        let docker = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:c"}}"#;
        let info = read(docker);
        assert_eq!(info.digest, digest_of(docker.as_bytes()));
        assert!(
            info.image_config()
                .unwrap_err()
                .starts_with("has an invalid config digest `sha256:c`")
        );
        assert_eq!(info.body(), docker.as_bytes());
        assert_eq!(info.at(), "1.0.0");
        // The bytes are not in the Debug output, only their count.
        assert!(!format!("{info:?}").contains("schemaVersion"));
        assert_eq!(
            info.descriptor(),
            descriptor(DOCKER_MANIFEST, &info.digest, docker.len())
        );

        let no_config = read(r#"{"schemaVersion":2,"config":{},"layers":[]}"#);
        assert_eq!(
            no_config.image_config().unwrap_err(),
            "has no config digest"
        );

        let artifact = read(r#"{"mediaType":"application/x","config":{"digest":"sha256:c"}}"#);
        assert_eq!(
            artifact.image_config().unwrap_err(),
            "is a `application/x`, not an image"
        );
    }

    #[test]
    fn config_labels_keep_string_values() {
        let config = br#"{"config":{"Labels":{"a":"1","b":2}}}"#;
        assert_eq!(
            labels_of_config(config).unwrap(),
            BTreeMap::from([("a".to_owned(), "1".to_owned())])
        );
        assert!(labels_of_config(br#"{"config":{}}"#).unwrap().is_empty());
        assert!(labels_of_config(b"{}").unwrap().is_empty());
        assert!(
            labels_of_config(b"x")
                .unwrap_err()
                .starts_with("is not JSON")
        );
    }

    fn platform(arch: oci_spec::image::Arch, variant: Option<&str>) -> Platform {
        let builder = oci_spec::image::PlatformBuilder::default()
            .os(oci_spec::image::Os::Linux)
            .architecture(arch);
        match variant {
            Some(v) => builder.variant(v.to_owned()).build().unwrap(),
            None => builder.build().unwrap(),
        }
    }

    fn layer_descriptor(media_type: &str, extra: &str) -> Descriptor {
        serde_json::from_str(&format!(
            r#"{{"mediaType":"{media_type}","digest":"{}","size":42{extra}}}"#,
            digest('d')
        ))
        .unwrap()
    }

    #[test]
    fn base_layers_keep_or_take_the_docker_gzip_type_and_others_are_refused() {
        for media_type in [DOCKER_LAYER_GZIP, OCI_LAYER_GZIP] {
            assert_eq!(
                LayerBlob::of_base(&layer_descriptor(media_type, "")).unwrap(),
                LayerBlob {
                    digest: digest('d'),
                    size: 42
                }
            );
        }
        for media_type in [
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        ] {
            assert_eq!(
                LayerBlob::of_base(&layer_descriptor(media_type, "")),
                Err(ManifestError::LayerType {
                    digest: digest('d').to_string(),
                    media_type: media_type.to_owned()
                })
            );
        }
        // A gzip layer whose bytes live elsewhere (`urls`) is foreign too.
        let foreign = layer_descriptor(DOCKER_LAYER_GZIP, r#","urls":["https://x.example/l"]"#);
        assert!(LayerBlob::of_base(&foreign).is_err());
    }

    #[test]
    fn a_docker_image_manifest_is_written_with_sorted_keys_and_reads_back_typed() {
        let config = br#"{"architecture":"amd64"}"#;
        let layers = [
            LayerBlob::of_base(&layer_descriptor(OCI_LAYER_GZIP, "")).unwrap(),
            LayerBlob::from(&LayerDigests {
                digest: digest('e'),
                diff_id: digest('f'),
                size: 5_000_000_000,
            }),
        ];
        let manifest = docker_image_manifest(config, &layers);
        assert_eq!(manifest, docker_image_manifest(config, &layers));
        assert_eq!(manifest.kind, ManifestKind::DockerV2);
        assert_eq!(manifest.digest, digest_of(manifest.body()));
        let text = String::from_utf8(manifest.body().to_vec()).unwrap();
        assert!(text.starts_with(r#"{"config":{"digest":""#), "{text}");
        assert!(text.ends_with(r#""mediaType":"application/vnd.docker.distribution.manifest.v2+json","schemaVersion":2}"#));
        assert_eq!(manifest.image_config().unwrap(), digest_of(config));
        let image = manifest.image().unwrap();
        assert_eq!(image.config().media_type().to_string(), DOCKER_CONFIG);
        assert_eq!(image.config().size(), config.len() as u64);
        let types: Vec<String> = image
            .layers()
            .iter()
            .map(|l| l.media_type().to_string())
            .collect();
        assert_eq!(types, [DOCKER_LAYER_GZIP, DOCKER_LAYER_GZIP]);
        assert_eq!(image.layers()[1].size(), 5_000_000_000);
        assert_eq!(image.layers()[1].digest().as_ref(), digest('e').as_str());
        // Another layer order is another image.
        let swapped = [layers[1].clone(), layers[0].clone()];
        assert_ne!(
            docker_image_manifest(config, &swapped).digest,
            manifest.digest
        );
    }

    #[test]
    fn a_docker_manifest_list_names_each_platform_and_each_is_found_in_it() {
        use oci_spec::image::Arch;
        let amd = docker_image_manifest(b"{\"a\":1}", &[]);
        let arm = docker_image_manifest(b"{\"a\":2}", &[]);
        let (amd64, arm64) = (
            platform(Arch::Amd64, None),
            platform(Arch::ARM64, Some("v8")),
        );
        let list = docker_manifest_list(&[(&amd, &amd64), (&arm, &arm64)]).unwrap();
        assert_eq!(
            list,
            docker_manifest_list(&[(&amd, &amd64), (&arm, &arm64)]).unwrap()
        );
        assert_eq!(
            list.kind,
            ManifestKind::Index {
                media_type: DOCKER_MANIFEST_LIST.into()
            }
        );
        let text = String::from_utf8(list.body().to_vec()).unwrap();
        assert!(text.starts_with(r#"{"manifests":[{"digest":""#), "{text}");
        assert!(
            text.contains(r#""platform":{"architecture":"arm64","os":"linux","variant":"v8"}"#)
        );
        let index = list.index().unwrap();
        assert_eq!(index.manifests().len(), 2);
        assert_eq!(index.manifests()[0].digest().as_ref(), amd.digest.as_str());
        assert_eq!(index.manifests()[0].size(), amd.body().len() as u64);
        assert_eq!(
            index.manifests()[1].media_type().to_string(),
            DOCKER_MANIFEST
        );
        // The lenient readers find each platform; an arm64 without variant finds the v8 one.
        assert_eq!(manifest_for(&list, &amd64).unwrap(), amd.digest);
        assert_eq!(manifest_for(&list, &arm64).unwrap(), arm.digest);
        assert_eq!(
            manifest_for(&list, &platform(Arch::ARM64, None)).unwrap(),
            arm.digest
        );
        assert_eq!(
            manifest_for(&list, &platform(Arch::ARM64, Some("v9"))).unwrap_err(),
            "names no image for linux/arm64/v9"
        );
        assert_eq!(
            manifest_for(&list, &platform(Arch::PowerPC64le, None)).unwrap_err(),
            "names no image for linux/ppc64le"
        );
        let here = manifest_for(&list, &Platform::default());
        assert_eq!(platform_manifest(&list).ok(), here.ok());
        // Refusals.
        assert_eq!(docker_manifest_list(&[]), Err(ManifestError::EmptyList));
        assert_eq!(
            docker_manifest_list(&[(&amd, &amd64), (&arm, &amd64)]),
            Err(ManifestError::SamePlatform("linux/amd64".into()))
        );
        let oci = read(OCI_IMAGE);
        assert_eq!(
            docker_manifest_list(&[(&oci, &amd64)]),
            Err(ManifestError::NotDockerImage {
                digest: oci.digest.clone(),
                media_type: OCI_MANIFEST.into()
            })
        );
    }

    #[test]
    fn manifest_kinds_and_store_resolvability() {
        assert_eq!(
            ManifestKind::from_media_type(DOCKER_MANIFEST),
            ManifestKind::DockerV2
        );
        assert!(ManifestKind::DockerV2.resolvable_by_store());
        assert!(!ManifestKind::OciImage.resolvable_by_store());
        let index = ManifestKind::from_media_type(DOCKER_MANIFEST_LIST);
        assert_eq!(
            index,
            ManifestKind::Index {
                media_type: DOCKER_MANIFEST_LIST.into()
            }
        );
        assert!(!index.resolvable_by_store());
        assert_eq!(index.to_string(), DOCKER_MANIFEST_LIST);
        assert_eq!(
            ManifestKind::from_media_type("application/x").to_string(),
            "application/x"
        );
    }
}
