//! Blobs: read within a bound and checked against their digest, and small ones uploaded in
//! one piece (signatures and their configs).

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;

use super::{Registry, RegistryError, http, is_not_found};
use crate::oci::manifest::digest_of;
use crate::oci::reference::{Digest, ImageName};

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
        let actual = digest_of(&answer.body);
        if actual != *digest {
            return Err(OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError {
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                },
            ));
        }
        Ok(answer.body)
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
        let request = |method, path: String, body| http::Request {
            method,
            path,
            authorization,
            accept: &[],
            body,
            limit: http::Limit {
                max: http::MAX_ERROR_BODY,
                what: "the answer to an upload",
            },
        };
        let exists = self
            .retrying("checking a blob", || {
                self.http.send(request(
                    reqwest::Method::HEAD,
                    format!("{repository}/blobs/{digest}"),
                    None,
                ))
            })
            .await;
        match exists {
            Ok(_) => return Ok(digest),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.error(e, repository)),
        }
        self.retrying("uploading a blob", || async {
            let started = self
                .http
                .send(request(
                    reqwest::Method::POST,
                    format!("{repository}/blobs/uploads/"),
                    None,
                ))
                .await?;
            let location = started
                .header("location")
                .ok_or(OciDistributionError::RegistryNoLocationError)?;
            let location = match location.starts_with('/') {
                true => format!("{}{location}", self.http.base()),
                false => location.to_owned(),
            };
            let separator = if location.contains('?') { '&' } else { '?' };
            let body = Some((data.clone(), "application/octet-stream"));
            let url = format!("{location}{separator}digest={digest}");
            self.http
                .send(request(reqwest::Method::PUT, url, body))
                .await
                .map(|_| ())
        })
        .await
        .map_err(|e| self.error(e, repository))?;
        Ok(digest)
    }
}
