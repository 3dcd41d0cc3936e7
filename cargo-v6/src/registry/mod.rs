//! Registry reads and manifest writes over the distribution API: tags, digests, labels, the
//! stored manifest's kind, and moving a tag to an existing manifest; for signatures, small
//! blobs and manifests of any type, and the referrers of a manifest. The requests are this
//! module's own ([`http`]); oci-client gives the types (errors, media types, tokens).
//!
//! Invariants:
//! - One [`Registry`] per registry and credential set: its handshakes hold one credential
//!   set's authorization.
//! - Few round trips: one auth handshake (`GET /v2/`, and a token request where the registry
//!   issues tokens) per repository and operation (pull, push) for the life of a [`Registry`],
//!   none at all for a further repository or operation of a registry that issues no tokens;
//!   every other call is exactly the requests it names in its documentation.
//! - Manifests are copied byte for byte ([`Registry::copy_tag`]): a re-serialised manifest
//!   would get a new digest, and pinned `image@sha256:` references would stop matching.
//! - The secret is in no error text or `Debug` output: errors are built from status codes and
//!   registry names, and any message from the registry goes through
//!   [`crate::credentials::redact`].
//! - Every read is bounded ([`http`]): a manifest or index by the 4 MiB the distribution
//!   registry accepts, a tag list, an image config and a blob by their own bounds, an error
//!   body by 64 KiB, a token server's answer by 1 MiB. What a registry sends beyond a bound
//!   fails the request, with bounded memory.
//! - Prints nothing and knows nothing of the CLI; hints for the user are added by the caller.

mod http;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use oci_client::RegistryOperation;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, ImageIndexEntry,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::RegistryToken;

use crate::credentials::{CredentialSource, Credentials};

/// Every manifest type a registry may store for an image, so that reads see what is stored
/// rather than a conversion the registry makes for a narrower `Accept` header.
const MANIFEST_TYPES: &[&str] = &[
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
];

/// Tags asked for per page; registries that page (GHCR, Docker Hub) ignore the rest of a
/// large listing unless asked for the next page.
const TAGS_PAGE: usize = 1000;

/// The largest manifest or index read: what the distribution registry accepts
/// (`storage.maxManifestSize`, 4 MiB); images and signatures take a few KiB.
pub const MAX_MANIFEST: usize = 4 << 20;

/// The largest page of a tag listing read: a page of [`TAGS_PAGE`] tags of the longest length
/// (128) is 130 KiB; registries that ignore the page size send every tag at once.
const MAX_TAG_LIST: usize = 16 << 20;

/// The largest image config read: labels, environment and history of an image; a few KiB for
/// an algorithm image, and the docker CLI's own bound for configs is 8 MiB.
const MAX_CONFIG: usize = 8 << 20;

/// How long a registry's Bearer token is used before a new one is asked for: tokens last at
/// least this long (Docker Hub's 300 s, GHCR's and distribution's token servers' longer).
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A failed registry operation. Holds no secret.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No HTTP exchange happened: DNS, connection, TLS or timeout.
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable {
        /// The registry as named in the image (`ghcr.io`, `127.0.0.1:5000`).
        registry: String,
        /// The transport error, innermost cause included.
        reason: String,
    },
    /// The registry answered 401: the credentials are wrong, or none were given.
    #[error("{}", unauthorized_message(registry, credentials.as_ref()))]
    Unauthorized {
        /// The registry as named in the image.
        registry: String,
        /// Where the refused credentials came from; `None` when the request was anonymous.
        credentials: Option<CredentialSource>,
    },
    /// The registry answered 403 (`DENIED`): the identity is known but may not do this,
    /// e.g. a token without package write permission.
    #[error("registry {registry} denied access to {repository} (403 Forbidden){}",
        credentials.as_ref().map(|s| format!(" for the credentials from {s}")).unwrap_or_default())]
    Denied {
        /// The registry as named in the image.
        registry: String,
        /// The repository the request was for.
        repository: String,
        /// Where the credentials came from; `None` when the request was anonymous.
        credentials: Option<CredentialSource>,
    },
    /// The tag an operation needs does not exist.
    #[error("{registry}/{repository}:{tag} does not exist")]
    NotFound {
        /// The registry as named in the image.
        registry: String,
        /// The repository.
        repository: String,
        /// The missing tag.
        tag: String,
    },
    /// Any other answer the operation cannot use: a server error, an unexpected status or
    /// body, a manifest that is not JSON.
    #[error("registry {registry}: {message}")]
    Protocol {
        /// The registry as named in the image.
        registry: String,
        /// What went wrong, as oci-client or this module saw it.
        message: String,
    },
}

/// The text of [`RegistryError::Unauthorized`]: says where refused credentials came from, or
/// that there were none and how to provide them.
fn unauthorized_message(registry: &str, credentials: Option<&CredentialSource>) -> String {
    match credentials {
        Some(source) => format!(
            "registry {registry} refused the credentials (401 Unauthorized); they came from {source}"
        ),
        None => format!(
            "registry {registry} requires credentials (401 Unauthorized) and none were found: \
             set {} and {}, or run `docker login {registry}`",
            crate::credentials::USERNAME_VAR,
            crate::credentials::PASSWORD_VAR
        ),
    }
}

/// What kind of manifest a tag points at, as stored. The vantage6 algorithm store asks only
/// for a docker v2 schema 2 manifest, so only [`ManifestKind::DockerV2`] resolves there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// `application/vnd.docker.distribution.manifest.v2+json`: one platform, what the store
    /// and every Docker engine resolve.
    DockerV2,
    /// `application/vnd.oci.image.manifest.v1+json`: one platform, but a registry answering
    /// the store's docker-only `Accept` header refuses it (distribution says
    /// `MANIFEST_UNKNOWN`).
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
    fn from_media_type(media_type: &str) -> Self {
        match media_type {
            IMAGE_MANIFEST_MEDIA_TYPE => ManifestKind::DockerV2,
            OCI_IMAGE_MEDIA_TYPE => ManifestKind::OciImage,
            IMAGE_MANIFEST_LIST_MEDIA_TYPE | OCI_IMAGE_INDEX_MEDIA_TYPE => ManifestKind::Index {
                media_type: media_type.to_owned(),
            },
            other => ManifestKind::Other(other.to_owned()),
        }
    }

    /// The media type, for messages.
    pub fn media_type(&self) -> &str {
        match self {
            ManifestKind::DockerV2 => IMAGE_MANIFEST_MEDIA_TYPE,
            ManifestKind::OciImage => OCI_IMAGE_MEDIA_TYPE,
            ManifestKind::Index { media_type } | ManifestKind::Other(media_type) => media_type,
        }
    }

    /// Whether the vantage6 algorithm store can resolve this manifest's digest, asking with
    /// `Accept: application/vnd.docker.distribution.manifest.v2+json` only.
    pub fn resolvable_by_store(&self) -> bool {
        *self == ManifestKind::DockerV2
    }
}

impl fmt::Display for ManifestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// A tag's manifest as stored, read by [`Registry::manifest`]: what a publish needs to know
/// about an existing tag, and the bytes to write under another tag ([`Registry::tag_manifest`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The manifest's digest: the registry's `Docker-Content-Digest`, checked against the
    /// bytes (their sha256 when the registry sends none). What `image@sha256:` pins.
    pub digest: String,
    /// The kind of manifest, as stored.
    pub kind: ManifestKind,
    /// The tag it was read under, for messages.
    tag: String,
    /// The digest of the image config, for a single image.
    config: Option<String>,
    /// The manifest exactly as stored.
    body: Vec<u8>,
}

impl ManifestInfo {
    /// Reads what the manifest `body` of `tag`, with `digest`, says. The error completes
    /// "the manifest of X ...".
    fn parse(tag: &str, digest: String, body: Vec<u8>) -> Result<ManifestInfo, String> {
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("is not JSON: {e}"))?;
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
            digest,
            kind,
            tag: tag.to_owned(),
            config,
            body,
        })
    }

    /// The digest of the image config, or why there is none; the error completes "the
    /// manifest of X ...".
    fn image_config(&self) -> Result<&str, String> {
        match (&self.config, &self.kind) {
            (Some(config), _) => Ok(config),
            (None, ManifestKind::DockerV2 | ManifestKind::OciImage) => {
                Err("has no config digest".to_owned())
            }
            (None, kind) => Err(format!("is a `{kind}`, not an image")),
        }
    }

    /// The digest of the image config (`config.digest`) of a single image; `None` for an
    /// index, whose configs are those of its platform manifests, and for other kinds.
    pub fn config_digest(&self) -> Option<&str> {
        self.config.as_deref()
    }

    /// The manifest exactly as stored.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// A manifest that names another as its `subject`, as the referrers API (or its tag-schema
/// fallback) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its `artifactType`, when the listing gives one.
    pub artifact_type: Option<String>,
}

impl fmt::Debug for ManifestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestInfo")
            .field("digest", &self.digest)
            .field("kind", &self.kind)
            .field("tag", &self.tag)
            .field("config", &self.config)
            .field("bytes", &self.body.len())
            .finish()
    }
}

/// The auth handshakes done so far, so that each is done once (see [`Registry::authorize`]).
#[derive(Default)]
struct Handshakes {
    /// A handshake found that this registry issues no tokens (its `GET /v2/` carries no
    /// Bearer challenge). That answer names no repository, so it holds for all of them.
    tokenless: bool,
    /// The repositories and operations whose authorization is in the client's token cache,
    /// with the `Authorization` value this module's own requests send and when it was made.
    done: BTreeMap<(String, RegistryOperation), (Option<String>, Instant)>,
}

/// A client for one registry with one credential set.
pub struct Registry {
    /// Every request to the registry (and its token server).
    http: http::Http,
    /// The registry as named in the image, for messages.
    name: String,
    /// The host the API is served on (`registry-1.docker.io` for `docker.io`).
    api_host: String,
    auth: RegistryAuth,
    source: Option<CredentialSource>,
    /// The credentials `auth` holds, to redact them from what the registry says.
    credentials: Option<Credentials>,
    /// Held across a handshake, so that concurrent calls do not repeat it.
    handshakes: tokio::sync::Mutex<Handshakes>,
    /// Retries made since the caller last took them, for `-v`.
    retries: std::sync::Mutex<Vec<String>>,
}

/// How long a request may make no progress when no stall timeout is given.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The bound on a manifest or index read.
const MANIFEST_LIMIT: http::Limit = http::Limit {
    max: MAX_MANIFEST,
    what: "the manifest",
};

/// The bound on a token server's answer (a token is a few KiB) and on the API root's.
const TOKEN_LIMIT: http::Limit = http::Limit {
    max: 1 << 20,
    what: "the token answer",
};

/// `Basic <base64 of user:password>`.
fn basic_authorization(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `text` with every byte but the unreserved ones (RFC 3986) percent-encoded, for a query.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The parameters of a `Bearer` challenge (`Bearer realm="...",service="..."`), names
/// lower-cased; `None` for another scheme.
fn bearer_challenge(header: &str) -> Option<BTreeMap<String, String>> {
    let header = header.trim_start();
    let (scheme, mut rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                // Up to the closing quote; `\` escapes the next character.
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.insert(name.trim().to_ascii_lowercase(), value);
        rest = after;
    }
    Some(params)
}

/// The header in which a registry names a manifest's digest.
const DIGEST_HEADER: &str = "docker-content-digest";

/// `sha256:<hex>` of `bytes`.
fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// How many times a request is tried when the registry answers 429 or 5xx, or the connection
/// fails or resets: the docker CLI retries failed uploads too, and registries under load (or
/// while another client writes the same tag) answer 500 now and then. Every request retried
/// is idempotent (reads, and manifest writes of the same bytes under the same tag).
const ATTEMPTS: u32 = 5;

/// The pause before the first retry; it doubles each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Whether a failed request may succeed when tried again: too many requests, a server error,
/// or a connection that failed or reset. Not a stall (`read_timeout`): a registry that stopped
/// answering for the whole stall timeout is not waited for again.
fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code == 429 || *code >= 500,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        OciDistributionError::RequestError(r) => {
            !r.is_timeout() && (r.is_connect() || r.is_request() || r.is_body())
        }
        _ => false,
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("api_host", &self.api_host)
            .field("auth", &self.auth) // oci-client redacts the secret
            .field("source", &self.source)
            .finish()
    }
}

impl Registry {
    /// A client for `registry` (`ghcr.io`, `docker.io`, `127.0.0.1:5000`), anonymous when
    /// `credentials` is `None`.
    ///
    /// Plain HTTP for loopback registries (127.0.0.0/8, `[::1]`, and `localhost` when every
    /// address it resolves to is loopback: [`plain_http_by_default`]), as the Docker engine
    /// treats them as insecure by default and so pushes there over HTTP, and for registries
    /// marked `insecure`; HTTPS otherwise. `docker.io` is served from
    /// `registry-1.docker.io`, the host the Docker engine uses.
    ///
    /// Makes no request. Fails only when no TLS client can be made (e.g. the system has no
    /// CA certificates).
    pub fn new(
        registry: &str,
        credentials: Option<Credentials>,
        insecure: bool,
    ) -> Result<Registry, RegistryError> {
        Self::with_stall_timeout(registry, credentials, insecure, DEFAULT_STALL_TIMEOUT)
    }

    /// [`Registry::new`], giving up on a request that makes no progress (no byte received)
    /// for `stall_timeout`: a registry that stops answering fails the request, which is then
    /// retried like a reset connection, rather than hanging the publish.
    pub fn with_stall_timeout(
        registry: &str,
        credentials: Option<Credentials>,
        insecure: bool,
        stall_timeout: Duration,
    ) -> Result<Registry, RegistryError> {
        let api_host = api_host(registry).to_owned();
        let plain = insecure || plain_http_by_default(&api_host, resolve);
        let scheme = if plain { "http" } else { "https" };
        let base = format!("{scheme}://{api_host}");
        let user_agent = concat!("cargo-v6/", env!("CARGO_PKG_VERSION"));
        let http = http::Http::new(base, Duration::from_secs(10), stall_timeout, user_agent)
            .map_err(|e| RegistryError::Protocol {
                registry: registry.to_owned(),
                message: format!(
                    "cannot set up an HTTPS client: {e}; are CA certificates installed (the ca-certificates package)?"
                ),
            })?;
        let (auth, source) = match &credentials {
            Some(c) => (
                RegistryAuth::Basic(c.username.clone(), c.password().to_owned()),
                Some(c.source.clone()),
            ),
            None => (RegistryAuth::Anonymous, None),
        };
        Ok(Registry {
            http,
            name: registry.to_owned(),
            api_host,
            auth,
            source,
            credentials,
            handshakes: tokio::sync::Mutex::default(),
            retries: std::sync::Mutex::default(),
        })
    }

    /// Tags of `repository`, sorted, each once. A repository that does not exist yet has no
    /// tags: that is the state before a first push, not an error.
    ///
    /// Requests: one `GET tags/list` per page of up to 1000 tags, and one more that finds no
    /// further page (a registry may return fewer tags than asked for before the end); one for
    /// a repository that does not exist.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().map(String::as_str);
            let page = match self
                .retrying("listing tags", || {
                    self.tags_page(repository, authorization.as_deref(), TAGS_PAGE, last)
                })
                .await
            {
                Ok(page) => page,
                Err(e) if is_not_found(&e) => break,
                Err(e) => return Err(self.error(e, repository)),
            };
            // An empty page ends the listing; a page ending where the last one did means the
            // registry ignores `last`, and asking again would loop forever.
            if page.is_empty() || page.last().map(String::as_str) == last {
                break;
            }
            tags.extend(page);
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// One page of `repository`'s tag listing: up to `n` tags after `last`.
    async fn tags_page(
        &self,
        repository: &str,
        authorization: Option<&str>,
        n: usize,
        last: Option<&str>,
    ) -> Result<Vec<String>, OciDistributionError> {
        #[derive(serde::Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        // Tags are `[A-Za-z0-9_.-]`: nothing to escape in the query.
        let after = last.map(|l| format!("&last={l}")).unwrap_or_default();
        let answer = self
            .http
            .send(http::Request {
                method: reqwest::Method::GET,
                path: format!("{repository}/tags/list?n={n}{after}"),
                authorization,
                accept: &["application/json"],
                body: None,
                limit: http::Limit {
                    max: MAX_TAG_LIST,
                    what: "the tag list",
                },
            })
            .await?;
        let page: Page = serde_json::from_slice(&answer.body)?;
        Ok(page.tags.unwrap_or_default())
    }

    /// The digest of `repository:tag` as the registry reports it (`Docker-Content-Digest`,
    /// with every manifest type accepted), or `None` when the tag does not exist.
    ///
    /// Requests: one `HEAD manifests/TAG`, and a `GET` after it when a registry answers the
    /// `HEAD` with no digest header (the digest is then that of the manifest).
    pub async fn digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, RegistryError> {
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let head = self
            .retrying("reading a digest", || {
                self.http.send(http::Request {
                    method: reqwest::Method::HEAD,
                    path: format!("{repository}/manifests/{tag}"),
                    authorization: authorization.as_deref(),
                    accept: MANIFEST_TYPES,
                    body: None,
                    limit: MANIFEST_LIMIT,
                })
            })
            .await;
        let found = match head {
            Ok(answer) => match answer.header(DIGEST_HEADER) {
                Some(digest) => Ok(digest.to_owned()),
                None => self
                    .raw_manifest(repository, tag, authorization.as_deref())
                    .await
                    .map(|(_, digest)| digest),
            },
            Err(e) => Err(e),
        };
        match found {
            Ok(digest) => Ok(Some(digest)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(e, repository)),
        }
    }

    /// The manifest of `repository:tag` as stored (every manifest type accepted): its digest,
    /// kind and config digest, or `None` when the tag does not exist.
    ///
    /// Requests: one `GET manifests/TAG`.
    pub async fn manifest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let (body, digest) = match self
            .raw_manifest(repository, tag, authorization.as_deref())
            .await
        {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error(e, repository)),
        };
        ManifestInfo::parse(tag, digest, body)
            .map(Some)
            .map_err(|message| RegistryError::Protocol {
                registry: self.name.clone(),
                message: format!("the manifest of {repository}:{tag} {message}"),
            })
    }

    /// The labels of the image config (`config.Labels`; empty when it has none) of the
    /// manifest `info` that [`Registry::manifest`] read from `repository`. For an index, the
    /// labels of the image for the platform cargo-v6 runs on (oci-client's default resolver).
    ///
    /// Requests: one `GET blobs/CONFIG`; for an index, one `GET manifests/DIGEST` of the
    /// platform's manifest before it.
    pub async fn config_labels(
        &self,
        repository: &str,
        info: &ManifestInfo,
    ) -> Result<BTreeMap<String, String>, RegistryError> {
        let tag = &info.tag;
        let protocol = |message: String| RegistryError::Protocol {
            registry: self.name.clone(),
            message,
        };
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let config = if let ManifestKind::Index { .. } = info.kind {
            let platform = platform_manifest(&info.body)
                .map_err(|m| protocol(format!("the manifest of {repository}:{tag} {m}")))?;
            let (body, digest) = self
                .raw_manifest(repository, &platform, authorization.as_deref())
                .await
                .map_err(|e| self.error(e, repository))?;
            let what = format!(
                "the manifest {repository}@{platform}, which the index {repository}:{tag} names \
                 for this platform,"
            );
            let image = ManifestInfo::parse(tag, digest, body)
                .map_err(|m| protocol(format!("{what} {m}")))?;
            image
                .image_config()
                .map_err(|m| protocol(format!("{what} {m}")))?
                .to_owned()
        } else {
            info.image_config()
                .map_err(|m| protocol(format!("the manifest of {repository}:{tag} {m}")))?
                .to_owned()
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

    /// Points `tag` of `repository` at the manifest `info` that [`Registry::manifest`] read
    /// from the same repository, writing its bytes with its media type: no layer is uploaded
    /// and the digest stays [`ManifestInfo::digest`].
    ///
    /// Requests: one `PUT manifests/TAG`.
    pub async fn tag_manifest(
        &self,
        repository: &str,
        info: &ManifestInfo,
        tag: &str,
    ) -> Result<(), RegistryError> {
        self.put_manifest(repository, tag, info.body.clone(), info.kind.media_type())
            .await
            .map(|_| ())
    }

    /// The labels of the image config of `repository:tag` (`config.Labels`; empty when it
    /// has none), or `None` when the tag does not exist. For an index, the labels of the
    /// image for the platform cargo-v6 runs on (oci-client's default resolver).
    ///
    /// [`Registry::manifest`] then [`Registry::config_labels`]: use those to get the digest
    /// and kind from the same read.
    pub async fn labels(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<BTreeMap<String, String>>, RegistryError> {
        match self.manifest(repository, tag).await? {
            Some(info) => Ok(Some(self.config_labels(repository, &info).await?)),
            None => Ok(None),
        }
    }

    /// The kind of manifest `repository:tag` points at, as the registry stores it, to check
    /// that it is a single-platform docker v2 schema 2 manifest the vantage6 store can
    /// resolve ([`ManifestKind::resolvable_by_store`]). [`Registry::manifest`]'s `kind`.
    pub async fn manifest_kind(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<ManifestKind, RegistryError> {
        Ok(self.existing_manifest(repository, tag).await?.kind)
    }

    /// Points `to_tag` at the manifest of `from_tag` and returns its digest. Only the
    /// manifest is written, with the bytes and media type it was read with, so no layer is
    /// uploaded and the digest stays the same.
    ///
    /// [`Registry::manifest`] then [`Registry::tag_manifest`]: with a manifest already read,
    /// call the latter alone.
    pub async fn copy_tag(
        &self,
        repository: &str,
        from_tag: &str,
        to_tag: &str,
    ) -> Result<String, RegistryError> {
        let info = self.existing_manifest(repository, from_tag).await?;
        self.tag_manifest(repository, &info, to_tag).await?;
        Ok(info.digest)
    }

    /// Checks that the registry is reachable and lets these credentials read `repository`
    /// (a repository that does not exist yet passes). Push permission cannot be checked
    /// without writing, so a `Denied` can still come at push time.
    ///
    /// Requests: one `GET tags/list?n=1`.
    pub async fn check(&self, repository: &str) -> Result<(), RegistryError> {
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        match self
            .tags_page(repository, authorization.as_deref(), 1, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error(e, repository)),
        }
    }

    /// The manifest `repository@digest` as stored, or `None` when the registry has no such
    /// manifest.
    ///
    /// Requests: one `GET manifests/DIGEST`.
    pub async fn manifest_at(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let (body, found) = match self
            .raw_manifest(repository, digest, authorization.as_deref())
            .await
        {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error(e, repository)),
        };
        ManifestInfo::parse(digest, found, body)
            .map(Some)
            .map_err(|message| RegistryError::Protocol {
                registry: self.name.clone(),
                message: format!("the manifest {repository}@{digest} {message}"),
            })
    }

    /// The blob `digest` of `repository`, of at most `max` bytes; its content is checked
    /// against the digest.
    ///
    /// Requests: one `GET blobs/DIGEST`.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        max: usize,
    ) -> Result<Vec<u8>, RegistryError> {
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
    async fn checked_blob(
        &self,
        repository: &str,
        digest: &str,
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
        let actual = sha256_digest(&answer.body);
        if actual != digest {
            return Err(OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError {
                    expected: digest.to_owned(),
                    actual,
                },
            ));
        }
        Ok(answer.body)
    }

    /// Uploads `data` as a blob of `repository` unless the registry has it already, and
    /// returns its digest. Only small blobs are uploaded (signatures and their configs): in
    /// one piece.
    ///
    /// Requests: one `HEAD blobs/DIGEST`; when the blob is missing, the upload: `POST
    /// blobs/uploads/`, then a `PUT` of the data to the `Location` it answers.
    pub async fn push_blob(
        &self,
        repository: &str,
        data: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(&data);
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

    /// Writes `body`, a manifest of `media_type`, to `repository` under `at`: a tag, or its
    /// own digest (`sha256:...`, for a manifest no tag names). Returns its digest.
    ///
    /// Requests: one `PUT manifests/AT`.
    pub async fn put_manifest(
        &self,
        repository: &str,
        at: &str,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(&body);
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

    /// Deletes the manifest `digest` of `repository`, with every tag on it; `false` when the
    /// registry has no such manifest (deleted meanwhile).
    ///
    /// Requests: one `DELETE manifests/DIGEST`.
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<bool, RegistryError> {
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

    /// The manifests of `repository` whose `subject` is `digest`: the referrers API's answer,
    /// or where the registry has no such API (it answers 404), the index under the
    /// tag-schema fallback tag `sha256-<hex>`; empty when neither lists any.
    ///
    /// Requests: one `GET referrers/DIGEST`; after a 404, one `GET manifests/sha256-<hex>`.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<Referrer>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Entry {
            digest: String,
            media_type: String,
            artifact_type: Option<String>,
        }
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let listed = self
            .retrying("listing referrers", || {
                self.http.send(http::Request {
                    method: reqwest::Method::GET,
                    path: format!("{repository}/referrers/{digest}"),
                    authorization: authorization.as_deref(),
                    accept: &[OCI_IMAGE_INDEX_MEDIA_TYPE],
                    body: None,
                    limit: MANIFEST_LIMIT,
                })
            })
            .await;
        let body = match listed {
            Ok(answer) => answer.body,
            // No referrers API: the index under the tag-schema fallback tag, if any.
            Err(e) if is_not_found(&e) => {
                let tag = digest.replacen(':', "-", 1);
                match self
                    .raw_manifest(repository, &tag, authorization.as_deref())
                    .await
                {
                    Ok((body, _)) => body,
                    Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(self.error(e, repository)),
                }
            }
            Err(e) => return Err(self.error(e, repository)),
        };
        // What is not an index lists nothing (as the OCI spec recommends for the fallback).
        let index: Index = serde_json::from_slice(&body).unwrap_or(Index {
            manifests: Vec::new(),
        });
        Ok(index
            .manifests
            .into_iter()
            .map(|entry| Referrer {
                digest: entry.digest,
                media_type: entry.media_type,
                artifact_type: entry.artifact_type,
            })
            .collect())
    }

    /// [`Registry::manifest`], with a missing tag as [`RegistryError::NotFound`].
    async fn existing_manifest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<ManifestInfo, RegistryError> {
        self.manifest(repository, tag)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                registry: self.name.clone(),
                repository: repository.to_owned(),
                tag: tag.to_owned(),
            })
    }

    /// The stored manifest at `at` (a tag or a digest) of `repository`, unparsed, with its
    /// digest: that of its bytes, which the registry's `Docker-Content-Digest` (and a digest
    /// asked for) must match.
    async fn raw_manifest(
        &self,
        repository: &str,
        at: &str,
        authorization: Option<&str>,
    ) -> Result<(Vec<u8>, String), OciDistributionError> {
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
        let digest = sha256_digest(&answer.body);
        let claimed = answer
            .header(DIGEST_HEADER)
            .filter(|claimed| claimed.starts_with("sha256:"))
            .or(at.starts_with("sha256:").then_some(at));
        if let Some(claimed) = claimed
            && claimed != digest
        {
            return Err(OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError {
                    expected: claimed.to_owned(),
                    actual: digest,
                },
            ));
        }
        Ok((answer.body, digest))
    }

    /// The `Authorization` value for requests for `operation` on `repository` (`None`:
    /// anonymous), made once and reused, so that requests go out authorized without asking
    /// the registry first.
    ///
    /// The first time for a repository and operation, this is the handshake
    /// ([`Registry::handshake`]): `GET /v2/` and, on a Bearer challenge, a token request; the
    /// token is asked for again after [`TOKEN_LIFETIME`]. A registry that issues no token (no
    /// challenge, or a Basic one) says so for every repository, so from then on the
    /// authorization is made with no request: the credentials as Basic, which a Basic
    /// challenge asks for, or none. A registry that wants credentials refuses a request
    /// without them with 401. A failed handshake is the caller's error: unreachable, or
    /// refused credentials; the next call tries again.
    async fn authorize(
        &self,
        repository: &str,
        operation: RegistryOperation,
    ) -> Result<Option<String>, RegistryError> {
        let mut handshakes = self.handshakes.lock().await;
        let key = (repository.to_owned(), operation);
        // A token is asked for again before it may expire; a Basic authorization never does.
        if let Some((authorization, at)) = handshakes.done.get(&key)
            && (handshakes.tokenless || at.elapsed() < TOKEN_LIFETIME)
        {
            return Ok(authorization.clone());
        }
        if !handshakes.tokenless {
            let handshake = self
                .retrying("authenticating", || self.handshake(repository, operation))
                .await;
            match handshake {
                Ok(Some(token)) => {
                    let authorization = Some(token.bearer_token());
                    handshakes
                        .done
                        .insert(key, (authorization.clone(), Instant::now()));
                    return Ok(authorization);
                }
                Ok(None) => handshakes.tokenless = true,
                Err(e) => return Err(self.error(e, repository)),
            }
        }
        let authorization = match &self.auth {
            RegistryAuth::Basic(user, password) => Some(basic_authorization(user, password)),
            _ => None,
        };
        handshakes
            .done
            .insert(key, (authorization.clone(), Instant::now()));
        Ok(authorization)
    }

    /// The auth handshake (as oci-client does it, with every answer bounded): `GET /v2/`, and on a
    /// Bearer challenge, a token for `repository` and `operation` from the challenge's realm,
    /// asked with the credentials; `None` when the registry issues no tokens.
    async fn handshake(
        &self,
        repository: &str,
        operation: RegistryOperation,
    ) -> Result<Option<RegistryToken>, OciDistributionError> {
        let ping = format!("{}/v2/", self.http.base());
        let (_, headers, _) = self.http.get(&ping, None, TOKEN_LIMIT).await?;
        let Some(challenge) = headers
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_challenge)
        else {
            return Ok(None);
        };
        let Some(realm) = challenge.get("realm") else {
            return Ok(None);
        };
        let scope = match operation {
            RegistryOperation::Pull => format!("repository:{repository}:pull"),
            RegistryOperation::Push => format!("repository:{repository}:pull,push"),
        };
        let mut url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { '&' } else { '?' },
            percent_encode(&scope)
        );
        if let Some(service) = challenge.get("service") {
            url.push_str(&format!("&service={}", percent_encode(service)));
        }
        let basic = match &self.auth {
            RegistryAuth::Basic(user, password) => Some(basic_authorization(user, password)),
            _ => None,
        };
        let (status, _, body) = self.http.get(&url, basic.as_deref(), TOKEN_LIMIT).await?;
        if !status.is_success() {
            return Err(OciDistributionError::AuthenticationFailure(
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| OciDistributionError::RegistryTokenDecodeError(e.to_string()))
    }

    /// Runs `call` until it succeeds, fails for good, or [`ATTEMPTS`] are used up, with
    /// exponential backoff between tries. Each retry is noted for [`Registry::take_retries`].
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1.. {
            match call().await {
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    let reason = self.scrub(error_chain(&e));
                    self.retries
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(format!(
                            "{what} on {}: {reason}; retry {attempt} of {} in {} ms",
                            self.name,
                            ATTEMPTS - 1,
                            backoff.as_millis()
                        ));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                result => return result,
            }
        }
        unreachable!("the loop returns by the last attempt")
    }

    /// The retries made since the last call, one line each (what, why, which attempt).
    pub fn take_retries(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .retries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Maps a request's error to this module's, redacting any authorization from its text.
    fn error(&self, e: OciDistributionError, repository: &str) -> RegistryError {
        let registry = self.name.clone();
        match classify(&e) {
            Class::Unauthorized => RegistryError::Unauthorized {
                registry,
                credentials: self.source.clone(),
            },
            Class::Denied => RegistryError::Denied {
                registry,
                repository: repository.to_owned(),
                credentials: self.source.clone(),
            },
            Class::Unreachable => RegistryError::Unreachable {
                registry,
                reason: self.scrub(error_chain(&e)),
            },
            Class::Other => RegistryError::Protocol {
                registry,
                message: self.scrub(error_chain(&e)),
            },
        }
    }

    /// `text` with every authorization value redacted, in case a registry, a proxy or a
    /// library echoed one ([`crate::credentials::redact`]).
    fn scrub(&self, text: String) -> String {
        crate::credentials::redact(&text, self.credentials.as_ref())
    }
}

/// How an oci-client error maps onto [`RegistryError`].
#[derive(Debug, PartialEq, Eq)]
enum Class {
    Unauthorized,
    Denied,
    Unreachable,
    Other,
}

fn classify(e: &OciDistributionError) -> Class {
    match e {
        // 401 on GET/HEAD is `UnauthorizedError`, on a manifest PUT it is `ServerError{401}`;
        // a token endpoint refusing the credentials is `AuthenticationFailure`.
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::ServerError { code: 401, .. } => Class::Unauthorized,
        OciDistributionError::ServerError { code: 403, .. } => Class::Denied,
        OciDistributionError::RegistryError { envelope, .. } => {
            let has = |code: OciErrorCode| envelope.errors.iter().any(|e| e.code == code);
            if has(OciErrorCode::Unauthorized) {
                Class::Unauthorized
            } else if has(OciErrorCode::Denied) {
                Class::Denied
            } else {
                Class::Other
            }
        }
        OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
            Class::Unreachable
        }
        _ => Class::Other,
    }
}

/// Whether `e` says the repository or tag does not exist.
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code: 404, .. } => true,
        _ => false,
    }
}

/// `e` and its causes, `: `-separated: reqwest's own text hides the cause ("connection
/// refused", a certificate problem, an HTTPS request to an HTTP registry) in its source chain.
/// Whether the registry at `api_host` (`HOST[:PORT]`) is spoken to over plain HTTP without
/// `insecure`: a loopback IP literal, or `localhost` when `resolve` gives only loopback
/// addresses (as the Docker engine decides, by address, for its default insecure range). The
/// name alone proves nothing: a hosts file or a container's resolver may point `localhost`
/// elsewhere, and the credentials would cross the network in clear text. Other names are never
/// resolved here: they are HTTPS.
fn plain_http_by_default(api_host: &str, resolve: impl Fn(&str) -> Vec<IpAddr>) -> bool {
    if crate::oci::reference::is_loopback_domain(api_host) {
        let host = api_host.split(':').next().unwrap_or_default();
        if !host.eq_ignore_ascii_case("localhost") {
            return true; // an IP literal, already checked
        }
        let addresses = resolve(api_host);
        return !addresses.is_empty() && addresses.iter().all(IpAddr::is_loopback);
    }
    false
}

/// The addresses `HOST[:PORT]` resolves to (port 443 when none is given), none when it does
/// not resolve.
fn resolve(api_host: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    let with_port = if api_host.contains(':') {
        api_host.to_owned()
    } else {
        format!("{api_host}:443")
    };
    with_port
        .to_socket_addrs()
        .map(|addresses| addresses.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The host the distribution API of `registry` is served on.
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// The media type of a manifest: its `mediaType`, or for an OCI manifest that omits it
/// (allowed by the spec), the type its fields imply. The error completes "the manifest of X
/// ...".
fn media_type_of_json(json: &serde_json::Value) -> Result<String, String> {
    if let Some(media_type) = json.get("mediaType").and_then(|m| m.as_str()) {
        return Ok(media_type.to_owned());
    }
    if json.get("manifests").is_some() {
        Ok(OCI_IMAGE_INDEX_MEDIA_TYPE.to_owned())
    } else if json.get("config").is_some() {
        Ok(OCI_IMAGE_MEDIA_TYPE.to_owned())
    } else {
        Err("has no media type".to_owned())
    }
}

/// The digest of the manifest an index body names for the platform cargo-v6 runs on
/// (oci-client's default resolver). The error completes "the manifest of X ...".
fn platform_manifest(index: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<ImageIndexEntry>,
    }
    let index: Index =
        serde_json::from_slice(index).map_err(|e| format!("is not an index: {e}"))?;
    oci_client::client::current_platform_resolver(&index.manifests)
        .ok_or_else(|| "names no image for the platform cargo-v6 runs on".to_owned())
}

/// `config.Labels` of an image config (empty when absent); labels whose value is not a
/// string are left out. The error completes "the image config of X ...".
fn labels_of_config(config: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let config: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("is not JSON: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_speaks_plain_http_only_when_it_resolves_to_loopback_alone() {
        let loopback = |_: &str| vec![IpAddr::from([127, 0, 0, 1]), "::1".parse().unwrap()];
        let elsewhere = |_: &str| vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([10, 0, 0, 5])];
        let nowhere = |_: &str| Vec::new();
        let never = |host: &str| -> Vec<IpAddr> { panic!("{host} must not be resolved") };
        assert!(plain_http_by_default("localhost:5000", loopback));
        assert!(plain_http_by_default("LOCALHOST", loopback));
        assert!(!plain_http_by_default("localhost:5000", elsewhere));
        assert!(!plain_http_by_default("localhost:5000", nowhere));
        assert!(plain_http_by_default("127.0.0.1:5550", never));
        assert!(plain_http_by_default("[::1]:5000", never));
        assert!(!plain_http_by_default("ghcr.io", never));
        assert!(!plain_http_by_default("localhost.example.org", never));
        // The real resolver: `localhost` on this machine is loopback.
        assert!(plain_http_by_default("localhost:5000", resolve));
    }
    use crate::credentials::CredentialSource;
    use oci_client::errors::{OciEnvelope, OciError};

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: String::new(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://r/v2/x/manifests/1".into(),
        }
    }

    fn server_error(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "http://r/v2/x/manifests/1".into(),
            message: String::new(),
        }
    }

    #[test]
    fn bearer_challenges_are_read_with_quoted_commas() {
        let challenge = bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push",error=insufficient_scope"#,
        )
        .unwrap();
        assert_eq!(challenge["realm"], "https://auth.docker.io/token");
        assert_eq!(challenge["service"], "registry.docker.io");
        assert_eq!(challenge["scope"], "repository:a/b:pull,push");
        assert_eq!(challenge["error"], "insufficient_scope");
        let escaped = bearer_challenge(r#"bearer Realm="a\"b""#).unwrap();
        assert_eq!(escaped["realm"], r#"a"b"#);
        assert_eq!(bearer_challenge(r#"Basic realm="Registry""#), None);
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn docker_hub_is_served_from_registry_1() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        let registry = Registry::new("docker.io", None, false).unwrap();
        assert_eq!(registry.http.base(), "https://registry-1.docker.io");
        let local = Registry::new("127.0.0.1:5000", None, false).unwrap();
        assert_eq!(local.http.base(), "http://127.0.0.1:5000");
    }

    /// What [`ManifestInfo::parse`] makes of `body`.
    fn parse(body: &str) -> Result<ManifestInfo, String> {
        ManifestInfo::parse("1.0.0", "sha256:d".into(), body.as_bytes().to_vec())
    }

    #[test]
    fn media_type_comes_from_the_body_or_its_shape() {
        let docker = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:c"}}"#;
        assert_eq!(parse(docker).unwrap().kind, ManifestKind::DockerV2);
        assert_eq!(
            parse(r#"{"schemaVersion":2,"config":{},"layers":[]}"#)
                .unwrap()
                .kind,
            ManifestKind::OciImage
        );
        assert_eq!(
            parse(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap().kind,
            ManifestKind::Index {
                media_type: OCI_IMAGE_INDEX_MEDIA_TYPE.into()
            }
        );
        assert_eq!(parse("{}").unwrap_err(), "has no media type");
        assert!(parse("<html>").unwrap_err().starts_with("is not JSON"));
    }

    #[test]
    fn manifest_info_keeps_digest_config_and_bytes() {
        let docker = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:c"}}"#;
        let info = parse(docker).unwrap();
        assert_eq!(info.digest, "sha256:d");
        assert_eq!(info.config_digest(), Some("sha256:c"));
        assert_eq!(info.image_config().unwrap(), "sha256:c");
        assert_eq!(info.body, docker.as_bytes());
        // The bytes are not in the Debug output, only their count.
        assert!(!format!("{info:?}").contains("schemaVersion"));

        let no_config = parse(r#"{"schemaVersion":2,"config":{},"layers":[]}"#).unwrap();
        assert_eq!(no_config.config_digest(), None);
        assert_eq!(
            no_config.image_config().unwrap_err(),
            "has no config digest"
        );

        let index = parse(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert_eq!(index.config_digest(), None);
        assert_eq!(
            index.image_config().unwrap_err(),
            format!("is a `{OCI_IMAGE_INDEX_MEDIA_TYPE}`, not an image")
        );
        let artifact = parse(r#"{"mediaType":"application/x","config":{"digest":"sha256:c"}}"#);
        assert_eq!(artifact.unwrap().config_digest(), None);
    }

    #[test]
    fn index_resolves_to_this_platforms_manifest() {
        let entry = |arch: &str, digest: &str| {
            serde_json::json!({
                "mediaType": OCI_IMAGE_MEDIA_TYPE,
                "digest": digest,
                "size": 1,
                "platform": {"architecture": arch, "os": "linux"},
            })
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [entry("s390x-nowhere", "sha256:a"), entry(arch, "sha256:b")],
        });
        assert_eq!(
            platform_manifest(&serde_json::to_vec(&index).unwrap()).unwrap(),
            "sha256:b"
        );
        let other =
            serde_json::json!({"schemaVersion": 2, "manifests": [entry("none", "sha256:a")]});
        assert_eq!(
            platform_manifest(&serde_json::to_vec(&other).unwrap()).unwrap_err(),
            "names no image for the platform cargo-v6 runs on"
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

    #[test]
    fn manifest_kinds_and_store_resolvability() {
        assert_eq!(
            ManifestKind::from_media_type(IMAGE_MANIFEST_MEDIA_TYPE),
            ManifestKind::DockerV2
        );
        assert!(ManifestKind::DockerV2.resolvable_by_store());
        assert!(!ManifestKind::OciImage.resolvable_by_store());
        let index = ManifestKind::from_media_type(IMAGE_MANIFEST_LIST_MEDIA_TYPE);
        assert_eq!(
            index,
            ManifestKind::Index {
                media_type: IMAGE_MANIFEST_LIST_MEDIA_TYPE.into()
            }
        );
        assert!(!index.resolvable_by_store());
        assert_eq!(index.to_string(), IMAGE_MANIFEST_LIST_MEDIA_TYPE);
        assert_eq!(
            ManifestKind::from_media_type("application/x").to_string(),
            "application/x"
        );
    }

    #[test]
    fn errors_are_classified_by_status_and_code() {
        let u = OciDistributionError::UnauthorizedError { url: "u".into() };
        assert_eq!(classify(&u), Class::Unauthorized);
        // A manifest PUT reports 401 as a plain server error.
        assert_eq!(classify(&server_error(401)), Class::Unauthorized);
        assert_eq!(classify(&server_error(403)), Class::Denied);
        assert_eq!(classify(&server_error(500)), Class::Other);
        assert_eq!(
            classify(&envelope(OciErrorCode::Unauthorized)),
            Class::Unauthorized
        );
        assert_eq!(classify(&envelope(OciErrorCode::Denied)), Class::Denied);
        assert!(is_not_found(&envelope(OciErrorCode::ManifestUnknown)));
        assert!(is_not_found(&envelope(OciErrorCode::NameUnknown)));
        assert!(is_not_found(&server_error(404)));
        assert!(!is_not_found(&envelope(OciErrorCode::Denied)));
    }

    #[test]
    fn messages_say_where_refused_credentials_came_from() {
        let creds = Credentials::new("u".into(), "hunter22".into(), CredentialSource::Environment);
        let registry = Registry::new("127.0.0.1:5571", Some(creds), false).unwrap();
        let err = registry.error(server_error(401), "org/algo");
        assert_eq!(
            err.to_string(),
            "registry 127.0.0.1:5571 refused the credentials (401 Unauthorized); they came from \
             V6_REGISTRY_USERNAME/V6_REGISTRY_PASSWORD"
        );
        let err = registry.error(envelope(OciErrorCode::Denied), "org/algo");
        assert_eq!(
            err.to_string(),
            "registry 127.0.0.1:5571 denied access to org/algo (403 Forbidden) for the \
             credentials from V6_REGISTRY_USERNAME/V6_REGISTRY_PASSWORD"
        );
        // Text a server echoed back is scrubbed.
        let echoed = OciDistributionError::ServerError {
            code: 500,
            url: "u".into(),
            message: "bad password hunter22".into(),
        };
        let err = registry.error(echoed, "org/algo");
        assert!(
            err.to_string().ends_with("bad password <redacted>"),
            "{err}"
        );
        assert!(!format!("{registry:?}").contains("hunter22"));

        let anonymous = Registry::new("ghcr.io", None, false).unwrap();
        assert_eq!(
            anonymous.error(server_error(401), "org/algo").to_string(),
            "registry ghcr.io requires credentials (401 Unauthorized) and none were found: set \
             V6_REGISTRY_USERNAME and V6_REGISTRY_PASSWORD, or run `docker login ghcr.io`"
        );
    }
}
