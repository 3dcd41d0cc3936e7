//! The registry client: tags ([`tags`]), manifests and referrers ([`manifests`]), blobs
//! ([`blobs`]) over the distribution API, with its own requests ([`http`]) and auth handshakes
//! ([`auth`]). It speaks typed data: images and tags as [`crate::oci::reference`] has them,
//! digests as [`crate::oci::reference::Digest`]s, manifests as [`crate::oci::manifest`] has them (oci-client gives
//! the error types and tokens).
//!
//! Part 13's images, assembled without an engine, go through [`blobs`]: layers far larger
//! than memory uploaded from a file in bounded chunks ([`Registry::push_blob_file`]) or
//! streamed from another registry ([`Registry::pull_blob_to`]), and a blob that another
//! repository of the registry holds mounted there rather than uploaded again
//! ([`Registry::mount_blob`]); their manifests and manifest lists are written by
//! [`Registry::put_manifest`] like any manifest.
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
//!   registry accepts, a tag list, an image config and a blob by their own bounds (a blob
//!   streamed to a file by the size its descriptor gives, in constant memory), an error
//!   body by 64 KiB, a token server's answer by 1 MiB. What a registry sends beyond a bound
//!   fails the request, with bounded memory.
//! - Prints nothing and knows nothing of the CLI; hints for the user are added by the caller.

mod auth;
mod blobs;
mod http;
mod manifests;
mod tags;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::credentials::{CredentialSource, Credentials};

pub use crate::oci::manifest::{ManifestInfo, ManifestKind, Referrer};
pub use manifests::MAX_MANIFEST;

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
    /// The registry named a digest that is not one (in `Docker-Content-Digest`).
    #[error("the registry gave `{reference}` an invalid digest `{digest}`")]
    InvalidDigest {
        /// The tag asked about.
        reference: String,
        /// What came back.
        digest: String,
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
    /// The local side of a blob transfer: the file to upload cannot be read or is not the
    /// blob named, or what a download is written to failed. Not the registry's fault.
    #[error("blob {digest}: {reason}")]
    LocalBlob {
        /// The blob.
        digest: String,
        /// What went wrong, naming the file.
        reason: String,
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
    handshakes: tokio::sync::Mutex<auth::Handshakes>,
    /// Retries made since the caller last took them, for `-v`.
    retries: std::sync::Mutex<Vec<String>>,
}

/// How long a request may make no progress when no stall timeout is given.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// treats them as insecure by default, unless the first request's answer says the port
    /// serves TLS: then TLS without checking the certificate, as the engine does for such a
    /// registry (it tries TLS first; plain HTTP first costs a plain registry nothing). Plain
    /// HTTP for registries marked `insecure`; HTTPS otherwise. `docker.io` is served from
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
        // A loopback registry may serve TLS: asked by the first request (see `Http::upgrade`).
        let tls_fallback = plain && !insecure;
        let http = http::Http::new(
            base,
            Duration::from_secs(10),
            stall_timeout,
            user_agent,
            tls_fallback,
        )
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

    /// Runs `call` until it succeeds, fails for good, or [`ATTEMPTS`] are used up, with
    /// exponential backoff between tries. Each retry is noted for [`Registry::take_retries`].
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
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
                    attempt += 1;
                }
                result => return result,
            }
        }
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

/// `e` and its causes, `: `-separated: reqwest's own text hides the cause ("connection
/// refused", a certificate problem, an HTTPS request to an HTTP registry) in its source chain.
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
    fn docker_hub_is_served_from_registry_1() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        let registry = Registry::new("docker.io", None, false).unwrap();
        assert_eq!(registry.http.base(), "https://registry-1.docker.io");
        let local = Registry::new("127.0.0.1:5000", None, false).unwrap();
        assert_eq!(local.http.base(), "http://127.0.0.1:5000");
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
