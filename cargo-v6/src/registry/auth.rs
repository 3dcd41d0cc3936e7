//! Authorization: the auth handshake (`GET /v2/`, and a token where the registry issues
//! tokens), done once per repository and operation and reused, and the parts of a challenge.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::RegistryToken;

use super::{Registry, RegistryError, http};

/// How long a registry's Bearer token is used before a new one is asked for: tokens last at
/// least this long (Docker Hub's 300 s, GHCR's and distribution's token servers' longer).
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The bound on a token server's answer (a token is a few KiB) and on the API root's.
const TOKEN_LIMIT: http::Limit = http::Limit {
    max: 1 << 20,
    what: "the token answer",
};

/// The auth handshakes done so far, so that each is done once (see [`Registry::authorize`]).
#[derive(Default)]
pub(super) struct Handshakes {
    /// A handshake found that this registry issues no tokens (its `GET /v2/` carries no
    /// Bearer challenge). That answer names no repository, so it holds for all of them.
    tokenless: bool,
    /// The repositories and operations whose authorization is in the client's token cache,
    /// with the `Authorization` value this module's own requests send and when it was made.
    done: BTreeMap<(String, RegistryOperation), (Option<String>, Instant)>,
}

impl Registry {
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
    pub(super) async fn authorize(
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
        let ping = |base: &str| format!("{base}/v2/");
        let mut answer = self
            .http
            .get(&ping(self.http.base()), None, TOKEN_LIMIT)
            .await;
        if self.http.upgrade(&answer) {
            answer = self
                .http
                .get(&ping(self.http.base()), None, TOKEN_LIMIT)
                .await;
        }
        let (_, headers, _) = answer?;
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
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
