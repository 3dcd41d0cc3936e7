//! Manifests: a tag's digest, a manifest as stored (by tag or digest) and its image config's
//! labels, writes of exact bytes under a tag or at their own digest, deletes, and the
//! referrers of a manifest. The data is [`crate::oci::manifest`]'s. Any kind of manifest is
//! read and written the same way: an image, or a manifest list over the images of several
//! platforms, which a tag moved by [`Registry::tag_manifest`] keeps as a list (its bytes and
//! its stored media type).

use std::collections::BTreeMap;

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;

use super::{Registry, RegistryError, http, is_not_found};
use crate::oci::manifest::{
    MANIFEST_TYPES, ManifestInfo, ManifestKind, OCI_INDEX, Referrer, digest_of, fallback_tag,
    labels_of_config, platform_manifest, referrers_of_index,
};
use crate::oci::reference::{Digest, ImageName, Tag, TaggedImage};

/// The largest manifest or index read: what the distribution registry accepts
/// (`storage.maxManifestSize`, 4 MiB); images and signatures take a few KiB.
pub const MAX_MANIFEST: usize = 4 << 20;

/// The largest image config read: labels, environment and history of an image; a few KiB for
/// an algorithm image, and the docker CLI's own bound for configs is 8 MiB.
const MAX_CONFIG: usize = 8 << 20;

/// The bound on a manifest or index read.
const MANIFEST_LIMIT: http::Limit = http::Limit {
    max: MAX_MANIFEST,
    what: "the manifest",
};

/// The header in which a registry names a manifest's digest.
const DIGEST_HEADER: &str = "docker-content-digest";

impl Registry {
    /// The digest `tag` holds as the registry reports it (`Docker-Content-Digest`, with every
    /// manifest type accepted), or `None` when the tag does not exist.
    ///
    /// Requests: one `HEAD manifests/TAG`, and a `GET` after it when a registry answers the
    /// `HEAD` with no digest header (the digest is then that of the manifest).
    pub async fn digest(&self, tag: &TaggedImage) -> Result<Option<Digest>, RegistryError> {
        let repository = tag.image.path();
        let name = tag.tag.as_str();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let head = self
            .retrying("reading a digest", || {
                self.http.send(http::Request {
                    method: reqwest::Method::HEAD,
                    path: format!("{repository}/manifests/{name}"),
                    authorization: authorization.as_deref(),
                    accept: MANIFEST_TYPES,
                    body: None,
                    limit: MANIFEST_LIMIT,
                })
            })
            .await;
        let found = match head {
            Ok(answer) => match answer.header(DIGEST_HEADER) {
                Some(text) => Ok(
                    Digest::parse(text).map_err(|_| RegistryError::InvalidDigest {
                        reference: tag.to_string(),
                        digest: text.to_owned(),
                    }),
                ),
                None => self
                    .raw_manifest(repository, name, authorization.as_deref())
                    .await
                    .map(|body| Ok(digest_of(&body))),
            },
            Err(e) => Err(e),
        };
        match found {
            Ok(digest) => digest.map(Some),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(e, repository)),
        }
    }

    /// The manifest of `tag` as stored (every manifest type accepted): its digest, kind and
    /// config digest, or `None` when the tag does not exist.
    ///
    /// Requests: one `GET manifests/TAG`.
    pub async fn manifest(&self, tag: &TaggedImage) -> Result<Option<ManifestInfo>, RegistryError> {
        self.stored(
            &tag.image,
            tag.tag.as_str(),
            &format!("the manifest of {tag}"),
        )
        .await
    }

    /// The manifest `image@digest` as stored, or `None` when the registry has no such
    /// manifest.
    ///
    /// Requests: one `GET manifests/DIGEST`.
    pub async fn manifest_at(
        &self,
        image: &ImageName,
        digest: &Digest,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        self.stored(
            image,
            digest.as_str(),
            &format!("the manifest {image}@{digest}"),
        )
        .await
    }

    /// The labels of the image config (`config.Labels`; empty when it has none) of the
    /// manifest `info` that [`Registry::manifest`] read from `image`. For an index, the
    /// labels of the image for the platform cargo-v6 runs on (oci-client's default resolver).
    ///
    /// Requests: one `GET blobs/CONFIG`; for an index, one `GET manifests/DIGEST` of the
    /// platform's manifest before it.
    pub async fn config_labels(
        &self,
        image: &ImageName,
        info: &ManifestInfo,
    ) -> Result<BTreeMap<String, String>, RegistryError> {
        let repository = image.path();
        let tag = info.at();
        let protocol = |message: String| RegistryError::Protocol {
            registry: self.name.clone(),
            message,
        };
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let config = if let ManifestKind::Index { .. } = info.kind {
            let platform = platform_manifest(info)
                .map_err(|m| protocol(format!("the manifest of {repository}:{tag} {m}")))?;
            let body = self
                .raw_manifest(repository, platform.as_str(), authorization.as_deref())
                .await
                .map_err(|e| self.error(e, repository))?;
            let what = format!(
                "the manifest {repository}@{platform}, which the index {repository}:{tag} names \
                 for this platform,"
            );
            let image =
                ManifestInfo::parse(tag, body).map_err(|m| protocol(format!("{what} {m}")))?;
            image
                .image_config()
                .map_err(|m| protocol(format!("{what} {m}")))?
        } else {
            info.image_config()
                .map_err(|m| protocol(format!("the manifest of {repository}:{tag} {m}")))?
        };
        let limit = http::Limit {
            max: MAX_CONFIG,
            what: "the image config",
        };
        let bytes = self
            .checked_blob(repository, &config, authorization.as_deref(), limit)
            .await
            .map_err(|e| self.error(e, repository))?;
        labels_of_config(&bytes)
            .map_err(|m| protocol(format!("the image config of {repository}:{tag} {m}")))
    }

    /// The labels of the image config of `tag` (`config.Labels`; empty when it has none), or
    /// `None` when the tag does not exist. For an index, the labels of the image for the
    /// platform cargo-v6 runs on (oci-client's default resolver).
    ///
    /// [`Registry::manifest`] then [`Registry::config_labels`]: use those to get the digest
    /// and kind from the same read.
    pub async fn labels(
        &self,
        tag: &TaggedImage,
    ) -> Result<Option<BTreeMap<String, String>>, RegistryError> {
        match self.manifest(tag).await? {
            Some(info) => Ok(Some(self.config_labels(&tag.image, &info).await?)),
            None => Ok(None),
        }
    }

    /// The kind of manifest `tag` points at, as the registry stores it, to check that it is a
    /// single-platform docker v2 schema 2 manifest the vantage6 store can resolve
    /// ([`ManifestKind::resolvable_by_store`]). [`Registry::manifest`]'s `kind`.
    pub async fn manifest_kind(&self, tag: &TaggedImage) -> Result<ManifestKind, RegistryError> {
        Ok(self.existing_manifest(tag).await?.kind)
    }

    /// Points `tag` at the manifest `info` that [`Registry::manifest`] read from the same
    /// repository, writing its bytes with its media type: no layer is uploaded and the digest
    /// stays [`ManifestInfo::digest`].
    ///
    /// Requests: one `PUT manifests/TAG`.
    pub async fn tag_manifest(
        &self,
        tag: &TaggedImage,
        info: &ManifestInfo,
    ) -> Result<(), RegistryError> {
        self.put_manifest(tag, info.body().to_vec(), info.kind.media_type())
            .await
            .map(|_| ())
    }

    /// Points `to` (a tag of the same repository) at the manifest of `from` and returns its
    /// digest. Only the manifest is written, with the bytes and media type it was read with,
    /// so no layer is uploaded and the digest stays the same.
    ///
    /// [`Registry::manifest`] then [`Registry::tag_manifest`]: with a manifest already read,
    /// call the latter alone.
    pub async fn copy_tag(&self, from: &TaggedImage, to: &Tag) -> Result<Digest, RegistryError> {
        let info = self.existing_manifest(from).await?;
        self.tag_manifest(&from.image.with_tag(to), &info).await?;
        Ok(info.digest)
    }

    /// Writes `body`, a manifest of `media_type`, under `tag`. Returns its digest.
    ///
    /// Requests: one `PUT manifests/TAG`.
    pub async fn put_manifest(
        &self,
        tag: &TaggedImage,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        self.put(&tag.image, tag.tag.as_str(), body, media_type)
            .await
    }

    /// Writes `body`, a manifest of `media_type` that no tag names (a referrer, or a
    /// platform's image that a manifest list names), to `image` at its own digest, which it
    /// returns.
    ///
    /// Requests: one `PUT manifests/DIGEST`.
    pub async fn put_manifest_at_digest(
        &self,
        image: &ImageName,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let digest = digest_of(&body);
        self.put(image, digest.as_str(), body, media_type).await
    }

    /// Deletes the manifest `digest` of `image`, with every tag on it; `false` when the
    /// registry has no such manifest (deleted meanwhile).
    ///
    /// Requests: one `DELETE manifests/DIGEST`.
    pub async fn delete_manifest(
        &self,
        image: &ImageName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Push).await?;
        let deleted = self
            .retrying("deleting a manifest", || {
                self.http.send(http::Request {
                    method: reqwest::Method::DELETE,
                    path: format!("{repository}/manifests/{digest}"),
                    authorization: authorization.as_deref(),
                    accept: &[],
                    body: None,
                    limit: http::Limit {
                        max: http::MAX_ERROR_BODY,
                        what: "the answer to a delete",
                    },
                })
            })
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.error(e, repository)),
        }
    }

    /// The manifests of `image` whose `subject` is `digest`: the referrers API's answer, or
    /// where the registry has no such API (it answers 404), the index under the tag-schema
    /// fallback tag `sha256-<hex>` ([`fallback_tag`]); empty when neither lists any.
    ///
    /// Requests: one `GET referrers/DIGEST`; after a 404, one `GET manifests/sha256-<hex>`.
    pub async fn referrers(
        &self,
        image: &ImageName,
        digest: &Digest,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let listed = self
            .retrying("listing referrers", || {
                self.http.send(http::Request {
                    method: reqwest::Method::GET,
                    path: format!("{repository}/referrers/{digest}"),
                    authorization: authorization.as_deref(),
                    accept: &[OCI_INDEX],
                    body: None,
                    limit: MANIFEST_LIMIT,
                })
            })
            .await;
        let body = match listed {
            Ok(answer) => answer.body,
            // No referrers API: the index under the tag-schema fallback tag, if any.
            Err(e) if is_not_found(&e) => {
                let tag = fallback_tag(digest);
                match self
                    .raw_manifest(repository, tag.as_str(), authorization.as_deref())
                    .await
                {
                    Ok(body) => body,
                    Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(self.error(e, repository)),
                }
            }
            Err(e) => return Err(self.error(e, repository)),
        };
        Ok(referrers_of_index(&body))
    }

    /// [`Registry::manifest`], with a missing tag as [`RegistryError::NotFound`].
    async fn existing_manifest(&self, tag: &TaggedImage) -> Result<ManifestInfo, RegistryError> {
        self.manifest(tag)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                registry: self.name.clone(),
                repository: tag.image.path().to_owned(),
                tag: tag.tag.to_string(),
            })
    }

    /// The manifest at `at` (a tag or a digest) of `image`, parsed, or `None` when there is
    /// none; `what` ("the manifest of X") begins the message of a manifest that cannot be read.
    async fn stored(
        &self,
        image: &ImageName,
        at: &str,
        what: &str,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let body = match self
            .raw_manifest(repository, at, authorization.as_deref())
            .await
        {
            Ok(body) => body,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error(e, repository)),
        };
        ManifestInfo::parse(at, body)
            .map(Some)
            .map_err(|message| RegistryError::Protocol {
                registry: self.name.clone(),
                message: format!("{what} {message}"),
            })
    }

    /// Writes `body`, a manifest of `media_type`, to `image` under `at` (a tag, or its own
    /// digest). Returns its digest.
    async fn put(
        &self,
        image: &ImageName,
        at: &str,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let repository = image.path();
        let digest = digest_of(&body);
        let authorization = self.authorize(repository, RegistryOperation::Push).await?;
        self.retrying("writing a manifest", || {
            self.http.send(http::Request {
                method: reqwest::Method::PUT,
                path: format!("{repository}/manifests/{at}"),
                authorization: authorization.as_deref(),
                accept: &[],
                body: Some((body.clone(), media_type)),
                limit: http::Limit {
                    max: http::MAX_ERROR_BODY,
                    what: "the answer to a manifest write",
                },
            })
        })
        .await
        .map_err(|e| self.error(e, repository))?;
        Ok(digest)
    }

    /// The stored manifest at `at` (a tag or a digest) of `repository`, unparsed: its digest
    /// (that of its bytes) must match the registry's `Docker-Content-Digest`, and a digest
    /// asked for.
    async fn raw_manifest(
        &self,
        repository: &str,
        at: &str,
        authorization: Option<&str>,
    ) -> Result<Vec<u8>, OciDistributionError> {
        let answer = self
            .retrying("reading a manifest", || {
                self.http.send(http::Request {
                    method: reqwest::Method::GET,
                    path: format!("{repository}/manifests/{at}"),
                    authorization,
                    accept: MANIFEST_TYPES,
                    body: None,
                    limit: MANIFEST_LIMIT,
                })
            })
            .await?;
        let digest = digest_of(&answer.body);
        let claimed = answer
            .header(DIGEST_HEADER)
            .filter(|claimed| claimed.starts_with("sha256:"))
            .or(at.starts_with("sha256:").then_some(at));
        if let Some(claimed) = claimed
            && claimed != digest.as_str()
        {
            return Err(OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError {
                    expected: claimed.to_owned(),
                    actual: digest.to_string(),
                },
            ));
        }
        Ok(answer.body)
    }
}
