//! Blobs: read within a bound and checked against their digest (whole, or streamed to a
//! writer in constant memory), small ones uploaded in one piece (signatures and their
//! configs), layers uploaded from a file in chunks, and a blob mounted from another repository
//! of the registry rather than uploaded again.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use oci_client::RegistryOperation;
use oci_client::errors::{DigestError, OciDistributionError};
use sha2::Digest as _;
use tokio::io::AsyncReadExt;

use super::{Class, Registry, RegistryError, classify, http, is_not_found};
use crate::oci::manifest::digest_of;
use crate::oci::reference::{Digest, ImageName};

/// The size of each piece of a chunked upload ([`Registry::push_blob_file`]), and so the most
/// of a layer held in memory. Each piece is one `PATCH`, which must be answered within the
/// stall timeout (the client's read timeout runs from a request's start to its answer's
/// headers, the upload of its body included): 8 MiB in the default 60 s needs 140 KB/s up.
/// Above the 5 MiB that S3-backed registries need of every part but the last.
const CHUNK: usize = 8 << 20;

/// The bound on the answer to an upload request: empty, or an error.
const UPLOAD_ANSWER: http::Limit = http::Limit {
    max: http::MAX_ERROR_BODY,
    what: "the answer to an upload",
};

/// The content type of blob data.
const OCTET_STREAM: &str = "application/octet-stream";

impl Registry {
    /// The blob `digest` of `image`'s repository, of at most `max` bytes; its content is checked
    /// against the digest.
    ///
    /// Requests: one `GET blobs/DIGEST`.
    pub async fn blob(
        &self,
        image: &ImageName,
        digest: &Digest,
        max: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let limit = http::Limit {
            max,
            what: "the blob",
        };
        self.checked_blob(repository, digest, authorization.as_deref(), limit)
            .await
            .map_err(|e| self.error(e, repository))
    }

    /// The blob `digest` of `repository` within `limit`, checked against its digest; retried.
    pub(super) async fn checked_blob(
        &self,
        repository: &str,
        digest: &Digest,
        authorization: Option<&str>,
        limit: http::Limit,
    ) -> Result<Vec<u8>, OciDistributionError> {
        let answer = self
            .retrying("reading a blob", || {
                self.http.send(http::Request {
                    method: reqwest::Method::GET,
                    path: format!("{repository}/blobs/{digest}"),
                    authorization,
                    accept: &[],
                    body: None,
                    limit,
                })
            })
            .await?;
        check_digest(digest, &digest_of(&answer.body))?;
        Ok(answer.body)
    }

    /// Writes the blob `digest` of `image`'s repository, of `size` bytes (its descriptor's), to
    /// `out` as it arrives, in constant memory: a base layer copied from another registry, or
    /// kept in a file. A blob larger than `size` fails as soon as it passes it; one whose
    /// content is not `digest` fails at its end, after `out` has had it all, so the caller
    /// drops what it wrote when this fails.
    ///
    /// Requests: one `GET blobs/DIGEST`, retried until its answer begins (the body is not
    /// retried: `out` cannot be rewound).
    pub async fn pull_blob_to(
        &self,
        image: &ImageName,
        digest: &Digest,
        size: u64,
        out: &mut (dyn Write + Send),
    ) -> Result<(), RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let limit = http::Limit {
            max: usize::try_from(size).unwrap_or(usize::MAX),
            what: "the blob",
        };
        let fail = |e| self.error(e, repository);
        let mut response = self
            .retrying("reading a blob", || {
                let request = http::Request {
                    method: reqwest::Method::GET,
                    path: format!("{repository}/blobs/{digest}"),
                    authorization: authorization.as_deref(),
                    accept: &[],
                    body: None,
                    limit,
                };
                self.http.respond(request, &[])
            })
            .await
            .map_err(fail)?;
        if response
            .content_length()
            .is_some_and(|length| length > size)
        {
            return Err(fail(http::too_large(limit)));
        }
        let mut hash = sha2::Sha256::new();
        let mut read = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.into()))? {
            read += chunk.len() as u64;
            if read > size {
                return Err(fail(http::too_large(limit)));
            }
            hash.update(&chunk);
            out.write_all(&chunk)
                .map_err(|e| RegistryError::LocalBlob {
                    digest: digest.to_string(),
                    reason: format!("writing it: {e}"),
                })?;
        }
        check_digest(digest, &sha256(hash)).map_err(fail)
    }

    /// Uploads `data` as a blob of `image`'s repository unless the registry has it already, and
    /// returns its digest. Only small blobs are uploaded (signatures and their configs): in
    /// one piece.
    ///
    /// Requests: one `HEAD blobs/DIGEST`; when the blob is missing, the upload: `POST
    /// blobs/uploads/`, then a `PUT` of the data to the `Location` it answers.
    pub async fn push_blob(
        &self,
        image: &ImageName,
        data: Vec<u8>,
    ) -> Result<Digest, RegistryError> {
        let repository = image.path();
        let digest = digest_of(&data);
        let authorization = self.authorize(repository, RegistryOperation::Push).await?;
        let authorization = authorization.as_deref();
        match self.has_blob(repository, &digest, authorization).await {
            Ok(true) => return Ok(digest),
            Ok(false) => {}
            Err(e) => return Err(self.error(e, repository)),
        }
        self.retrying("uploading a blob", || async {
            let location = self.start_upload(repository, authorization).await?;
            let body = Some((data.clone(), OCTET_STREAM));
            let url = with_digest(&location, &digest);
            self.http
                .send(http::Request {
                    body,
                    ..upload(reqwest::Method::PUT, url, authorization)
                })
                .await
                .map(|_| ())
        })
        .await
        .map_err(|e| self.error(e, repository))?;
        Ok(digest)
    }

    /// Uploads the file at `path`, the blob `digest` of `size` bytes (a layer that
    /// [`crate::oci::layer::LayerWriter`] wrote, or a base layer [`Registry::pull_blob_to`]
    /// copied), to `image`'s repository unless the registry has it already: `true` when it was
    /// uploaded. In pieces of 8 MiB ([`CHUNK`]), so that a layer far larger than memory goes
    /// in constant memory and each request is answered within the stall timeout. A file that is
    /// not that blob (another size or content) is [`RegistryError::LocalBlob`], found before
    /// the upload is completed; the registry checks the digest again when it is.
    ///
    /// Requests: one `HEAD blobs/DIGEST`; when the blob is missing, the upload: `POST
    /// blobs/uploads/`, one `PATCH` per piece, and a `PUT ?digest=DIGEST` to complete it, each
    /// to the `Location` the one before answers. A failed upload is tried again from the start.
    pub async fn push_blob_file(
        &self,
        image: &ImageName,
        path: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<bool, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Push).await?;
        let authorization = authorization.as_deref();
        match self.has_blob(repository, digest, authorization).await {
            Ok(true) => return Ok(false),
            Ok(false) => {}
            Err(e) => return Err(self.error(e, repository)),
        }
        // Why the file failed, when it did: the upload's error is then not the registry's.
        let local = Mutex::new(None);
        let uploaded = self
            .retrying("uploading a blob", || {
                self.upload_file(repository, path, (digest, size), authorization, &local)
            })
            .await;
        if let Some(reason) = local.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(RegistryError::LocalBlob {
                digest: digest.to_string(),
                reason,
            });
        }
        uploaded.map_err(|e| self.error(e, repository))?;
        Ok(true)
    }

    /// Mounts the blob `digest` of `from` (a repository of the same registry) into `to`: no
    /// byte is uploaded. `false` when the registry did not mount it, or when `from` is on
    /// another registry (no request then): the caller uploads the blob instead. A registry
    /// does not mount a blob that `from` lacks (it answers `202` and opens an upload, which is
    /// cancelled), nor one these credentials may not read: the token is asked for `to` alone,
    /// and a token registry refuses a mount whose `from` it does not cover with `401` or
    /// `403`. Those refusals are `false` too: where the credentials are wrong for `to`
    /// itself, the upload that follows says so.
    ///
    /// Requests: one `POST blobs/uploads/?mount=DIGEST&from=REPO`; when the registry opened an
    /// upload instead of mounting (`202`), one `DELETE` of that upload.
    pub async fn mount_blob(
        &self,
        to: &ImageName,
        digest: &Digest,
        from: &ImageName,
    ) -> Result<bool, RegistryError> {
        if from.domain() != to.domain() {
            return Ok(false);
        }
        let repository = to.path();
        let authorization = self.authorize(repository, RegistryOperation::Push).await?;
        let authorization = authorization.as_deref();
        let path = format!(
            "{repository}/blobs/uploads/?mount={digest}&from={}",
            from.path()
        );
        let answer = self
            .retrying("mounting a blob", || {
                let request = upload(reqwest::Method::POST, path.clone(), authorization);
                self.http.respond(request, &[])
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) if matches!(classify(&e), Class::Unauthorized | Class::Denied) => {
                return Ok(false);
            }
            Err(e) => return Err(self.error(e, repository)),
        };
        if answer.status() == reqwest::StatusCode::CREATED {
            return Ok(true);
        }
        if let Some(location) = answer.headers().get("location") {
            let location = self.absolute(location.to_str().unwrap_or_default());
            let request = upload(reqwest::Method::DELETE, location, authorization);
            // Cancelled so that it does not linger; a session left open expires on the
            // registry's own (distribution's: after a week), so a failed cancel does not fail
            // the mount, which the caller follows with an upload.
            let _ = self.http.send(request).await;
        }
        Ok(false)
    }

    /// Whether `image`'s repository has the blob `digest` (a base layer copied before needs
    /// no second copy).
    ///
    /// Requests: one `HEAD blobs/DIGEST`.
    pub async fn blob_exists(
        &self,
        image: &ImageName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Push).await?;
        self.has_blob(repository, digest, authorization.as_deref())
            .await
            .map_err(|e| self.error(e, repository))
    }

    /// Whether `repository` has the blob `digest`. Retried.
    ///
    /// Requests: one `HEAD blobs/DIGEST`.
    async fn has_blob(
        &self,
        repository: &str,
        digest: &Digest,
        authorization: Option<&str>,
    ) -> Result<bool, OciDistributionError> {
        let exists = self
            .retrying("checking a blob", || {
                let path = format!("{repository}/blobs/{digest}");
                self.http
                    .send(upload(reqwest::Method::HEAD, path, authorization))
            })
            .await;
        match exists {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Opens an upload session in `repository`: the URL to send its data to.
    async fn start_upload(
        &self,
        repository: &str,
        authorization: Option<&str>,
    ) -> Result<String, OciDistributionError> {
        let path = format!("{repository}/blobs/uploads/");
        let started = self
            .http
            .send(upload(reqwest::Method::POST, path, authorization))
            .await?;
        let location = started
            .header("location")
            .ok_or(OciDistributionError::RegistryNoLocationError)?;
        Ok(self.absolute(location))
    }

    /// One try of [`Registry::push_blob_file`]'s upload of `blob` (digest, size) from `path`;
    /// a failure of the file is also put in `local`.
    async fn upload_file(
        &self,
        repository: &str,
        path: &Path,
        (digest, size): (&Digest, u64),
        authorization: Option<&str>,
        local: &Mutex<Option<String>>,
    ) -> Result<(), OciDistributionError> {
        let file_failed = |reason: String| {
            *local.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
            OciDistributionError::GenericError(None)
        };
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| file_failed(format!("cannot read {}: {e}", path.display())))?;
        let mut location = self.start_upload(repository, authorization).await?;
        let mut hash = sha2::Sha256::new();
        let mut offset = 0u64;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            (&mut file)
                .take(CHUNK as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| file_failed(format!("cannot read {}: {e}", path.display())))?;
            if chunk.is_empty() {
                break;
            }
            let end = offset + chunk.len() as u64;
            if end > size {
                return Err(file_failed(format!(
                    "{} is larger than the {size} bytes of the blob",
                    path.display()
                )));
            }
            hash.update(&chunk);
            let request = http::Request {
                body: Some((chunk, OCTET_STREAM)),
                ..upload(reqwest::Method::PATCH, location, authorization)
            };
            let range = format!("{offset}-{}", end - 1);
            let answer = self
                .http
                .respond(request, &[("content-range", range)])
                .await?;
            location = answer
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(|l| self.absolute(l))
                .ok_or(OciDistributionError::RegistryNoLocationError)?;
            offset = end;
        }
        if offset != size {
            return Err(file_failed(format!(
                "{} has {offset} bytes, not the {size} of the blob",
                path.display()
            )));
        }
        let actual = sha256(hash);
        if actual != *digest {
            return Err(file_failed(format!(
                "{} is not this blob: its content is {actual}",
                path.display()
            )));
        }
        let url = with_digest(&location, digest);
        self.http
            .send(http::Request {
                body: Some((Vec::new(), OCTET_STREAM)),
                ..upload(reqwest::Method::PUT, url, authorization)
            })
            .await
            .map(|_| ())
    }

    /// An upload's `Location` as a whole URL: registries answer a path or a URL.
    fn absolute(&self, location: &str) -> String {
        match location.starts_with('/') {
            true => format!("{}{location}", self.http.base()),
            false => location.to_owned(),
        }
    }
}

/// A request of an upload (or a blob check), without a body: a caller that sends one adds it.
fn upload(method: reqwest::Method, path: String, authorization: Option<&str>) -> http::Request<'_> {
    http::Request {
        method,
        path,
        authorization,
        accept: &[],
        body: None,
        limit: UPLOAD_ANSWER,
    }
}

/// The URL completing the upload at `location` with the blob `digest`.
fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// The digest of what `hash` hashed.
fn sha256(hash: sha2::Sha256) -> Digest {
    Digest::parse(&format!("sha256:{}", hex::encode(hash.finalize())))
        .expect("a sha256 digest is a valid digest")
}

/// `actual` must be `expected`: a blob's content is what its digest names.
fn check_digest(expected: &Digest, actual: &Digest) -> Result<(), OciDistributionError> {
    match actual == expected {
        true => Ok(()),
        false => Err(OciDistributionError::DigestError(
            DigestError::VerificationError {
                expected: expected.to_string(),
                actual: actual.to_string(),
            },
        )),
    }
}
