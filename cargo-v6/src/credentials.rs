//! Registry credentials: `V6_REGISTRY_USERNAME`/`V6_REGISTRY_PASSWORD`, then Docker's own
//! config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: auths, credHelpers,
//! credsStore), else anonymous. The secret never leaves this type except to the engine and
//! registry clients: its `Debug` is redacted and it has no `Display`.

use std::fmt;

/// Where credentials came from, safe to print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// `V6_REGISTRY_USERNAME` and `V6_REGISTRY_PASSWORD`.
    Environment,
    /// A Docker config file (`auths`), or a credential helper named there.
    DockerConfig {
        /// How the config provided them, e.g. `auths` or `credHelper docker-credential-pass`.
        via: String,
    },
}

/// A username and password (or identity token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name (not secret).
    pub username: String,
    password: String,
    /// Where they came from.
    pub source: CredentialSource,
}

impl Credentials {
    /// Wraps a username and secret.
    pub fn new(username: String, password: String, source: CredentialSource) -> Self {
        Credentials {
            username,
            password,
            source,
        }
    }

    /// The secret, for the engine and registry clients only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}
