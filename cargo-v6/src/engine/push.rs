//! Pushing: the registry credentials handed to the engine (only where they do not cross the
//! network in clear text, and in the alphabet the engine decodes), the push's progress, and
//! its failures in words that never hold the secret.

use bollard::BollardRequest;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::PushImageOptionsBuilder;

use super::{Engine, EngineError, api_message, next_within};
use crate::credentials::Credentials;
use crate::oci::reference::TaggedImage;

/// Push progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// Progress of one layer: `Preparing`, `Pushing` (with byte counts), `Pushed`, `Layer
    /// already exists`, ... The engine names the layer, but bollard 0.21's `PushImageInfo`
    /// drops that field, so events of different layers cannot be told apart here.
    Layer {
        /// The engine's status word(s).
        status: String,
        /// Bytes pushed so far, while pushing.
        current: Option<u64>,
        /// Size of the layer, while pushing.
        total: Option<u64>,
    },
    /// A message about the whole push, e.g. `The push refers to repository [...]` or
    /// `1.2.0: digest: sha256:... size: 527`.
    Status(String),
}

impl Engine {
    /// Whether registry credentials given to [`Engine::push`] would cross the network
    /// unencrypted (in the `X-Registry-Auth` header): plain TCP to an engine off loopback.
    /// The docker CLI refuses that; callers must too unless the user opted in.
    pub fn sends_credentials_in_clear(&self) -> bool {
        self.address.sends_credentials_in_clear()
    }

    /// Refuses to hand `credentials` to this engine when they would cross the network in
    /// clear text ([`Engine::sends_credentials_in_clear`]): the check a push makes, which
    /// `doctor` reports too.
    pub fn check_credentials_path(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<(), EngineError> {
        match credentials.is_some() && self.sends_credentials_in_clear() {
            true => Err(EngineError::CredentialsInClear {
                endpoint: self.describe(),
            }),
            false => Ok(()),
        }
    }

    /// Pushes `reference`. Always with a tag: without one the engine pushes every local tag
    /// of the repository. `credentials` go to the registry hosting it.
    pub async fn push(
        &self,
        reference: &TaggedImage,
        credentials: Option<&Credentials>,
        on_event: &mut (dyn FnMut(PushEvent) + Send),
    ) -> Result<(), EngineError> {
        let repository = reference.image.to_string();
        let tag = reference.tag.as_str();
        let registry = reference.image.domain();
        let reference = reference.to_string();
        let auth = registry_auth(registry, credentials);
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = self.docker.push_image(&repository, Some(options), auth);
        // The engine reports a push's progress all along: a long silence is a stall.
        let limit = self.answer_limit();
        let stalled = || EngineError::Push {
            message: format!(
                "no progress for {} s ({}): the registry {registry}, or the engine, stopped \
                 answering; nothing is tagged until a push completes",
                limit.after.as_secs(),
                limit.name
            ),
            reference: reference.clone(),
        };
        loop {
            // Dropping the stream closes the request, which cancels the engine's push.
            let next = next_within(&mut stream, limit)
                .await
                .map_err(|_| stalled())?;
            let Some(item) = next else { break };
            match item {
                // The last message carries only `aux` (tag, digest, size), which bollard drops.
                Ok(info) => {
                    let Some(status) = info.status else { continue };
                    on_event(match info.progress_detail {
                        Some(detail) => PushEvent::Layer {
                            status,
                            current: detail.current.and_then(|n| u64::try_from(n).ok()),
                            total: detail.total.and_then(|n| u64::try_from(n).ok()),
                        },
                        None => PushEvent::Status(status),
                    });
                }
                // No answer to the request itself within the limit.
                Err(BollardError::RequestTimeoutError) => return Err(stalled()),
                Err(err) => {
                    return Err(EngineError::Push {
                        message: push_message(registry, credentials, err),
                        reference,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The `X-Registry-Auth` of a push or pull: `credentials` for `registry`, or none.
pub(super) fn registry_auth(
    registry: &str,
    credentials: Option<&Credentials>,
) -> Option<DockerCredentials> {
    credentials.map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password().to_owned()),
        serveraddress: Some(registry.to_owned()),
        ..DockerCredentials::default()
    })
}

/// bollard encodes `X-Registry-Auth` with the standard base64 alphabet; the engine decodes the
/// URL-safe one and, when the encoding contains `+` or `/`, silently pushes without
/// credentials ("no basic auth credentials"). Rewrite the header into the URL-safe alphabet.
pub(super) fn url_safe_registry_auth(mut request: BollardRequest) -> BollardRequest {
    if let Some(value) = request.headers_mut().get_mut("X-Registry-Auth") {
        let fixed = value.to_str().ok().map(url_safe_base64);
        if let Some(fixed) = fixed.and_then(|text| text.parse().ok()) {
            *value = fixed;
        }
    }
    request
}

fn url_safe_base64(standard: &str) -> String {
    standard.replace('+', "-").replace('/', "_")
}

/// A push failure in words. Authentication failures say which registry refused whom; the
/// secret is scrubbed in case an engine ever echoes it.
pub(super) fn push_message(
    registry: &str,
    credentials: Option<&Credentials>,
    err: BollardError,
) -> String {
    let detail = api_message(err);
    let lower = detail.to_lowercase();
    let auth_failure = [
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    let message = match (auth_failure, credentials) {
        (true, Some(c)) => format!(
            "the registry {registry} refused the credentials of user `{}` ({detail})",
            c.username
        ),
        (true, None) => format!(
            "the registry {registry} requires authentication and no credentials were found \
             for it ({detail})"
        ),
        (false, _) => detail,
    };
    crate::credentials::redact(&message, credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::CredentialSource;

    #[test]
    fn registry_auth_uses_the_url_safe_alphabet() {
        assert_eq!(url_safe_base64("ab+c/d=="), "ab-c_d==");
    }

    #[test]
    fn push_auth_failures_name_the_registry_and_never_the_secret() {
        let creds = Credentials::new("bob".into(), "s3cret".into(), CredentialSource::Environment);
        let err = BollardError::DockerStreamError {
            error: "unauthorized: s3cret is wrong".into(),
        };
        let message = push_message("ghcr.io", Some(&creds), err);
        assert!(
            message.contains("ghcr.io") && message.contains("`bob`"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        let err = BollardError::DockerStreamError {
            error: "no basic auth credentials".into(),
        };
        let message = push_message("ghcr.io", None, err);
        assert!(message.contains("requires authentication"), "{message}");
    }
}
