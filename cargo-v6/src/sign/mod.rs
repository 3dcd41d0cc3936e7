//! Signing images the way cosign does, and verifying them: [`keys`] (cosign's key files),
//! [`payload`] (what is signed), [`layouts`] (where signatures are stored), [`verify`] (what
//! counts as a valid signature). This module does the registry I/O for them.
//!
//! Invariants:
//! - Always by digest: a tag is resolved to its digest before anything is signed or verified,
//!   and a signature names the digest, never a tag.
//! - Nothing is replaced: a new signature is appended to the `.sig` manifest, keeping every
//!   layer that is there as written; a bundle is a new manifest, added to the referrers
//!   fallback index next to the entries already there.
//! - Without compare-and-swap on tags, two signers writing the same `.sig` tag or fallback
//!   index at the same moment can drop one of the two signatures: each merges what it reads,
//!   writes, reads back, and reads once more after a settle time ([`settle_time`], longer than
//!   a concurrent signer's read-to-write round trip, whose write based on an older read lands
//!   within it); a signature missing at either read is merged and written again, up to
//!   [`ATTEMPTS`] times, else the signer fails naming it. A write delayed by more than the
//!   settle time can still drop it: `verify` shows that, and an unchanged republish adds the
//!   signature again.
//! - Prints nothing; the private key and its password are in no error.

pub mod keys;
pub mod layouts;
pub mod payload;
pub mod verify;

use std::time::{Duration, Instant};

use crate::oci::manifest::{self, OCI_INDEX, OCI_MANIFEST, descriptor};
use crate::oci::reference::{Digest, ImageName, ImageRef};
use crate::registry::{ManifestInfo, Registry, RegistryError};

pub use keys::{KeyError, KeyId, NewKeys, Password, PublicKey, SigningKey};
pub use layouts::{Format, Layout};
pub use verify::{Refusal, Verified};

use layouts::BUNDLE_MEDIA_TYPE;
use verify::{Found, Judgement};

/// The largest signature payload or bundle read from a registry.
const MAX_SIGNATURE_BLOB: usize = 1024 * 1024;

/// How often a write that a concurrent writer undid is redone.
const ATTEMPTS: u32 = 3;

/// The shortest wait before the second read-back of a signature write.
const SETTLE_MIN: Duration = Duration::from_millis(1500);

/// The longest wait before the second read-back of a signature write.
const SETTLE_MAX: Duration = Duration::from_secs(20);

/// How long a signer waits after its write was read back before reading it once more, given
/// `round_trip`, the time its own read, merge and write took: a concurrent signer that read
/// before this write lands its own within about such a round trip (four of them, and at least
/// [`SETTLE_MIN`], leave room for a slower one).
fn settle_time(round_trip: Duration) -> Duration {
    (round_trip * 4).clamp(SETTLE_MIN, SETTLE_MAX)
}

/// Why signing or verifying failed. Holds no secret.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key could not be read or decrypted.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The registry failed, cannot be reached, or refused the credentials.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The image to sign or verify is not in the registry.
    #[error("{reference} does not exist in the registry")]
    NoSuchImage {
        /// The reference as resolved.
        reference: String,
    },
    /// What is stored where signatures go cannot be kept while adding one.
    #[error("{location} {reason}; refusing to replace it")]
    Unusable {
        /// The tag.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Concurrent writers kept replacing the signature manifest or index: the signature is
    /// not there.
    #[error(
        "the signature by key {key} written to {location} was replaced by another writer {ATTEMPTS} times and is lost; run again"
    )]
    Contended {
        /// The tag.
        location: String,
        /// The signing key ([`KeyId`]'s short form).
        key: String,
    },
    /// The registry accepted the write of a signature manifest but does not hold it when it
    /// is read back, after writing it again.
    #[error(
        "the registry accepted the signature manifest {location} ({ATTEMPTS} times) but does not hold it when read back"
    )]
    NotKept {
        /// Where it was written.
        location: String,
    },
    /// Verification found no valid signature.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl SignError {
    /// Whether the user's input is wrong (a key file, a password).
    pub fn is_input(&self) -> bool {
        matches!(self, SignError::Key(e) if e.is_input())
    }
}

/// One image by digest in one registry: what is signed or verified.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The registry client (the image's registry, with its credentials).
    pub registry: &'a Registry,
    /// The repository.
    pub image: &'a ImageName,
    /// The manifest digest.
    pub digest: &'a Digest,
}

/// Where a signature was written or found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Placed {
    /// The layout.
    pub layout: Layout,
    /// `IMAGE:sha256-….sig`, or the bundle referrer `IMAGE@sha256:…`.
    pub location: String,
    /// Whether this run wrote it (`false`: a valid signature by the key was already there).
    pub added: bool,
}

/// The digest `reference` names: its digest when it has one (which must exist), else what its
/// tag (`latest` when none is written, as Docker has it) points at now.
///
/// Requests: one `GET manifests/DIGEST`, or a `HEAD manifests/TAG`.
pub async fn resolve(registry: &Registry, reference: &ImageRef) -> Result<Digest, SignError> {
    let image = &reference.name;
    if let Some(digest) = &reference.digest {
        return match registry.manifest_at(image, digest).await? {
            Some(_) => Ok(digest.clone()),
            None => Err(SignError::NoSuchImage {
                reference: format!("{image}@{digest}"),
            }),
        };
    }
    let tagged = image.with_tag(&reference.tag_or_latest());
    registry
        .digest(&tagged)
        .await?
        .ok_or_else(|| SignError::NoSuchImage {
            reference: tagged.to_string(),
        })
}

/// Signs `subject` with `key` in `layout`, adding to the signatures already there.
pub async fn sign(
    subject: Subject<'_>,
    key: &SigningKey,
    layout: Layout,
) -> Result<Placed, SignError> {
    let manifest = signed_manifest(subject).await?;
    let location = match layout {
        Layout::Sig => write_sig(subject, key).await?,
        Layout::Bundle => write_bundle(subject, key, &manifest).await?,
    };
    Ok(Placed {
        layout,
        location,
        added: true,
    })
}

/// Makes sure that `subject` has a valid signature by `key` in `layout`: the one found, or
/// a new one when there is none.
pub async fn ensure(
    subject: Subject<'_>,
    key: &SigningKey,
    layout: Layout,
) -> Result<Placed, SignError> {
    let found = find(subject, &[layout]).await?;
    let valid = found.iter().find(|f| {
        verify::judge(f, key.public(), subject.image, subject.digest) == Judgement::Valid
    });
    match valid {
        Some(existing) => Ok(Placed {
            layout,
            location: existing.location.clone(),
            added: false,
        }),
        None => sign(subject, key, layout).await,
    }
}

/// Verifies that `subject` has a valid signature by `key`, in either layout.
pub async fn verify(subject: Subject<'_>, key: &PublicKey) -> Result<Verified, SignError> {
    let found = find(subject, &[Layout::Sig, Layout::Bundle]).await?;
    let sig_tag = format!("{}:{}", subject.image, layouts::sig_tag(subject.digest));
    Ok(verify::verdict(
        &found,
        key,
        subject.image,
        subject.digest,
        &sig_tag,
    )?)
}

/// The manifest being signed, which must exist: a signature of nothing is refused.
async fn signed_manifest(subject: Subject<'_>) -> Result<ManifestInfo, SignError> {
    subject
        .registry
        .manifest_at(subject.image, subject.digest)
        .await?
        .ok_or_else(|| SignError::NoSuchImage {
            reference: format!("{}@{}", subject.image, subject.digest),
        })
}

/// Appends a simple-signing signature to the `.sig` manifest; returns its location.
async fn write_sig(subject: Subject<'_>, key: &SigningKey) -> Result<String, SignError> {
    let (registry, image) = (subject.registry, subject.image);
    let payload = payload::simple_signing(subject.image, subject.digest);
    let signature = key.sign(&payload)?;
    let size = payload.len();
    let payload_digest = registry.push_blob(image, payload).await?;
    let layer = layouts::sig_layer(&payload_digest, size, &signature, key.public().id());
    let tag = image.with_tag(&layouts::sig_tag(subject.digest));
    let location = tag.to_string();
    let holds_layer = |manifest: Option<&ManifestInfo>| {
        manifest.is_some_and(|m| layouts::sig_layers(m.body()).is_ok_and(|l| l.contains(&layer)))
    };
    for _ in 0..ATTEMPTS {
        let started = Instant::now();
        let existing = registry.manifest(&tag).await?;
        let mut layers = match &existing {
            Some(manifest) => {
                layouts::sig_layers(manifest.body()).map_err(|reason| SignError::Unusable {
                    location: location.clone(),
                    reason: format!("holds a manifest that {reason}"),
                })?
            }
            None => Vec::new(),
        };
        layers.push(layer.clone());
        let config = layouts::sig_config(&layers);
        let config_size = config.len();
        let config_digest = registry.push_blob(image, config).await?;
        let manifest = layouts::sig_manifest((&config_digest, config_size), &layers);
        registry.put_manifest(&tag, manifest, OCI_MANIFEST).await?;
        // Read back, and again once a concurrent signer's write from an older read has
        // landed: either may have replaced this one.
        if !holds_layer(registry.manifest(&tag).await?.as_ref()) {
            continue;
        }
        tokio::time::sleep(settle_time(started.elapsed())).await;
        if holds_layer(registry.manifest(&tag).await?.as_ref()) {
            return Ok(location);
        }
    }
    Err(SignError::Contended {
        location,
        key: key.public().id().to_string(),
    })
}

/// Attaches a bundle referrer to `subject` (whose stored manifest is `signed`), and lists it
/// in the referrers fallback index unless the registry's referrers API lists it already.
async fn write_bundle(
    subject: Subject<'_>,
    key: &SigningKey,
    signed: &ManifestInfo,
) -> Result<String, SignError> {
    let (registry, image) = (subject.registry, subject.image);
    let statement = payload::statement(subject.image, subject.digest);
    let signature = key.sign(&payload::pae(payload::IN_TOTO_PAYLOAD_TYPE, &statement))?;
    let bundle = layouts::bundle(
        payload::IN_TOTO_PAYLOAD_TYPE,
        &statement,
        &signature,
        key.public().id(),
    );
    let bundle_size = bundle.len();
    let bundle_digest = registry.push_blob(image, bundle).await?;
    registry
        .push_blob(image, manifest::EMPTY_JSON.to_vec())
        .await?;
    let subject_descriptor = signed.descriptor();
    let annotations = layouts::referrer_annotations(&layouts::now_rfc3339());
    let manifest = layouts::referrer_manifest(
        (&bundle_digest, bundle_size),
        &subject_descriptor,
        &annotations,
    );
    let manifest_size = manifest.len();
    let manifest_digest = manifest::digest_of(&manifest);
    let location = format!("{image}@{manifest_digest}");
    // Read back: an index listing a referrer the registry did not keep lists nothing.
    let mut kept = false;
    for _ in 0..ATTEMPTS {
        registry
            .put_manifest_at_digest(image, manifest.clone(), OCI_MANIFEST)
            .await?;
        if registry
            .manifest_at(image, &manifest_digest)
            .await?
            .is_some()
        {
            kept = true;
            break;
        }
    }
    if !kept {
        return Err(SignError::NotKept { location });
    }

    let mut entry = descriptor(OCI_MANIFEST, &manifest_digest, manifest_size);
    entry["artifactType"] = BUNDLE_MEDIA_TYPE.into();
    entry["annotations"] = annotations;
    let tag = image.with_tag(&manifest::fallback_tag(subject.digest));
    let listed_now = || async {
        let listed = registry.referrers(image, subject.digest).await?;
        Ok::<bool, SignError>(listed.iter().any(|r| r.digest == manifest_digest))
    };
    // Listed by the referrers API: nothing to write.
    if listed_now().await? {
        return Ok(location);
    }
    for _ in 0..ATTEMPTS {
        let started = Instant::now();
        let existing = registry.manifest(&tag).await?;
        let index = manifest::index_with(existing.as_ref().map(ManifestInfo::body), entry.clone())
            .map_err(|reason| SignError::Unusable {
                location: tag.to_string(),
                reason: format!("holds a referrers index that {reason}"),
            })?;
        registry.put_manifest(&tag, index, OCI_INDEX).await?;
        // Read back, and again after the settle time, as for the `.sig` tag.
        if !listed_now().await? {
            continue;
        }
        tokio::time::sleep(settle_time(started.elapsed())).await;
        if listed_now().await? {
            return Ok(location);
        }
    }
    Err(SignError::Contended {
        location: tag.to_string(),
        key: key.public().id().to_string(),
    })
}

/// Every signature of `subject` stored in `layouts`, read but not judged.
async fn find(subject: Subject<'_>, wanted: &[Layout]) -> Result<Vec<Found>, SignError> {
    let mut found = Vec::new();
    if wanted.contains(&Layout::Sig) {
        found.extend(find_sig(subject).await?);
    }
    if wanted.contains(&Layout::Bundle) {
        found.extend(find_bundles(subject).await?);
    }
    Ok(found)
}

/// The signatures in the `.sig` manifest.
async fn find_sig(subject: Subject<'_>) -> Result<Vec<Found>, SignError> {
    let (registry, image) = (subject.registry, subject.image);
    let tag = image.with_tag(&layouts::sig_tag(subject.digest));
    let location = tag.to_string();
    let Some(manifest) = registry.manifest(&tag).await? else {
        return Ok(Vec::new());
    };
    let malformed = |reason: String| Found {
        layout: Layout::Sig,
        location: location.clone(),
        signed: Vec::new(),
        signature: None,
        claim: Err(reason),
        key: None,
    };
    let layers = match layouts::sig_layers(manifest.body()) {
        Ok(layers) => layers,
        Err(reason) => return Ok(vec![malformed(format!("the manifest {reason}"))]),
    };
    let mut found = Vec::new();
    for layer in layers {
        let text = |key: &str| layer.get(key).and_then(|v| v.as_str());
        if text("mediaType") != Some(layouts::SIMPLE_SIGNING_MEDIA_TYPE) {
            continue;
        }
        let annotation = |key: &str| {
            layer
                .pointer(&format!("/annotations/{}", key.replace('/', "~1")))
                .and_then(|v| v.as_str())
        };
        let Some(digest) = text("digest") else {
            found.push(malformed("a layer has no digest".to_owned()));
            continue;
        };
        let Ok(digest) = Digest::parse(digest) else {
            found.push(malformed(format!(
                "a layer has an invalid digest `{digest}`"
            )));
            continue;
        };
        let payload = registry.blob(image, &digest, MAX_SIGNATURE_BLOB).await?;
        found.push(Found {
            layout: Layout::Sig,
            location: location.clone(),
            signature: annotation(layouts::SIGNATURE_ANNOTATION).and_then(layouts::unbase64),
            claim: payload::read_simple_signing(&payload),
            signed: payload,
            key: annotation(layouts::KEY_ANNOTATION).and_then(KeyId::parse),
        });
    }
    Ok(found)
}

/// The signatures in bundle referrers.
async fn find_bundles(subject: Subject<'_>) -> Result<Vec<Found>, SignError> {
    let (registry, image) = (subject.registry, subject.image);
    let mut found = Vec::new();
    for referrer in registry.referrers(image, subject.digest).await? {
        if referrer
            .artifact_type
            .as_deref()
            .is_some_and(|t| t != BUNDLE_MEDIA_TYPE)
        {
            continue;
        }
        let location = format!("{}@{}", subject.image, referrer.digest);
        let Some(manifest) = registry.manifest_at(image, &referrer.digest).await? else {
            continue;
        };
        let Ok(read) = layouts::read_referrer(manifest.body()) else {
            continue;
        };
        // Another artifact, or one about another manifest (a fallback index is writable by
        // anyone who can push, so its entries are checked).
        if read.artifact_type.as_deref() != Some(BUNDLE_MEDIA_TYPE)
            || read.subject.as_ref() != Some(subject.digest)
        {
            continue;
        }
        let malformed = |reason: String| Found {
            layout: Layout::Bundle,
            location: location.clone(),
            signed: Vec::new(),
            signature: None,
            claim: Err(reason),
            key: None,
        };
        let Some((digest, _)) = read.bundle else {
            found.push(malformed("the referrer has no bundle layer".to_owned()));
            continue;
        };
        let bytes = registry.blob(image, &digest, MAX_SIGNATURE_BLOB).await?;
        found.push(match layouts::read_bundle(&bytes) {
            Ok(bundle) => Found {
                layout: Layout::Bundle,
                location: location.clone(),
                signed: payload::pae(&bundle.payload_type, &bundle.payload),
                signature: Some(bundle.signature),
                claim: if bundle.payload_type == payload::IN_TOTO_PAYLOAD_TYPE {
                    payload::read_statement(&bundle.payload)
                } else {
                    Err(format!(
                        "the bundle's payload type is `{}`, not an in-toto statement",
                        bundle.payload_type
                    ))
                },
                key: bundle.key,
            },
            Err(reason) => malformed(reason),
        });
    }
    Ok(found)
}
