//! Submitting the algorithm to a vantage6 algorithm store (`cargo v6 store submit`): log in to
//! the vantage6 server whose account submits, ask the store whether it already has this image
//! at this digest, and POST the store's JSON when it has not.
//!
//! What the store does, read from vantage6-algorithm-store 4.15.2 (`resource/algorithm.py`,
//! `model/algorithm.py`):
//! - It checks the bearer token by asking the server named in the `Server-Url` header, which it
//!   must whitelist (403 otherwise), and answers 401 for a token that server rejects.
//! - It resolves the image's digest from the registry itself, over HTTPS, and keys an
//!   algorithm by its image: `REPO:TAG` (the tag kept when a digest is given too), or `REPO`
//!   for a digest alone or `latest`. Approving a version marks every other approved version of
//!   the same image `replaced` (`invalidated_at` set). A release under a new exact tag is thus
//!   a new algorithm beside the previous one; a list named by digest alone (`[build]
//!   platforms`) replaces the repository's previous one once approved.
//! - A new submission is `awaiting reviewer assignment`, or `approved` at once when the store
//!   has reviews disabled.
//!
//! Idempotent: an algorithm the store lists with this image and digest, approved or in review,
//! is reported as it is, and nothing is posted. Secrets (the password, the tokens) are sent to
//! the server and the store only, never shown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::oci::reference::Digest;

/// The variables that hold the submitting account's credentials.
pub const USERNAME_VAR: &str = "V6_SERVER_USERNAME";
/// See [`USERNAME_VAR`].
pub const PASSWORD_VAR: &str = "V6_SERVER_PASSWORD";
/// A server access token instead of a username and password.
pub const TOKEN_VAR: &str = "V6_SERVER_TOKEN";
/// The current two-factor code, for a server that asks for one.
pub const MFA_VAR: &str = "V6_SERVER_MFA_CODE";

/// Where to submit: the APIs' base URLs (`https://store.example.org/api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The vantage6 server whose account submits (4.x: the store checks its tokens there);
    /// `None` in 5.x, where the store checks Keycloak's tokens itself.
    pub server: Option<String>,
    /// The algorithm store.
    pub store: String,
}

impl Endpoints {
    /// Where the account logs in, for messages.
    pub fn login_place(&self) -> String {
        match &self.server {
            Some(server) => format!("logged in at {server}"),
            None => format!("with {TOKEN_VAR}, a Keycloak access token"),
        }
    }
}

/// How the submitting account logs in.
pub enum Login {
    /// A username and password, and a two-factor code when the server asks for one.
    Password {
        /// The username.
        username: String,
        /// The password.
        password: String,
        /// The current two-factor code.
        mfa_code: Option<String>,
    },
    /// An access token of the server.
    Token(String),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Password { username, .. } => write!(f, "Password({username}, <redacted>)"),
            Login::Token(_) => write!(f, "Token(<redacted>)"),
        }
    }
}

impl Login {
    /// The credentials in the environment: a token, or a username and password.
    pub fn from_env() -> Result<Login, SubmitError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var(TOKEN_VAR) {
            return Ok(Login::Token(token));
        }
        match (var(USERNAME_VAR), var(PASSWORD_VAR)) {
            (Some(username), Some(password)) => Ok(Login::Password {
                username,
                password,
                mfa_code: var(MFA_VAR),
            }),
            _ => Err(SubmitError::NoCredentials),
        }
    }
}

/// What the store holds after the submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Submitted {
    /// The store's API.
    pub store: String,
    /// The algorithm's id in the store.
    pub id: u64,
    /// `approved`, `awaiting reviewer assignment`, `under review`, ...
    pub status: String,
    /// The digest the store resolved.
    pub digest: Option<String>,
    /// It was there already: nothing was posted.
    pub unchanged: bool,
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// No credentials in the environment.
    #[error(
        "no credentials to log in to the vantage6 server: set {USERNAME_VAR} and {PASSWORD_VAR}, or {TOKEN_VAR}"
    )]
    NoCredentials,
    /// vantage6 5.x without a token: Keycloak logs people in through a browser.
    #[error(
        "a vantage6 5.x store takes a Keycloak access token: set {TOKEN_VAR} (a username and password cannot log in without a browser)"
    )]
    NeedsToken,
    /// The server or store could not be reached, or answered what is not JSON.
    #[error("cannot reach {what} at {url}: {reason}")]
    Unreachable {
        /// `the vantage6 server`, `the algorithm store`.
        what: &'static str,
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the login.
    #[error("the vantage6 server at {server} refused the login ({status}): {message}")]
    Login {
        /// The server's API.
        server: String,
        /// Its HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The server asks for a two-factor code that was not given.
    #[error(
        "the vantage6 server at {server} asks for a two-factor code: set {MFA_VAR} to the current one"
    )]
    NeedsMfa {
        /// The server's API.
        server: String,
    },
    /// The store created an entry whose digest is not the published one.
    #[error(
        "the algorithm store at {store} created algorithm {id} with digest `{recorded}`, not the published {published}: {}",
        if recorded.is_empty() { "it could not read the image from its registry (it answers 201 all the same)" } else { "the tag points elsewhere now" }
    )]
    WrongDigest {
        /// The store's API.
        store: String,
        /// The entry made.
        id: u64,
        /// What it recorded (empty: nothing).
        recorded: String,
        /// What was published.
        published: String,
    },
    /// The store refused or failed the submission.
    #[error("the algorithm store at {store} answered {status}: {message}")]
    Store {
        /// The store's API.
        store: String,
        /// Its HTTP status.
        status: u16,
        /// Its message, and what it means.
        message: String,
        /// Its schema's `errors`, by key and index (a 400).
        errors: Option<Value>,
    },
}

impl SubmitError {
    /// A schema refusal, at its place in `[store]` of `manifest`; anything else as it is.
    pub fn placed(
        self,
        store: &super::Store,
        manifest: &crate::manifest::Manifest,
    ) -> Result<super::StoreError, SubmitError> {
        match &self {
            SubmitError::Store {
                errors: Some(errors),
                ..
            } => Ok(super::StoreError::Refused {
                location: store.locate(manifest, errors).map(Box::new),
                message: self.to_string(),
                help: self.help(),
            }),
            _ => Err(self),
        }
    }

    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            SubmitError::Store { status: 400, .. } => "the store's schema refused the submission: cargo v6 checks [store] against the schema of v6.toml's vantage6 version, so the store may run another major (a 5.x submission has `step-type`, a 4.x one `type`)".to_owned(),
            SubmitError::Store { status: 401, .. } => "the store could not validate the server's token: check `server-url` (the store asks that server) and the account".to_owned(),
            SubmitError::Store { status: 403, .. } => "the store does not accept this server's users, or the account lacks the store's developer role: ask the store's administrators to whitelist the server and give the account a role that may submit algorithms".to_owned(),
            SubmitError::Store { status: 422, .. } => "the store could not verify the token (its signature): a token of the Keycloak realm the store trusts is needed".to_owned(),
            SubmitError::Store { status: 500, .. } => "the store failed; it resolves the image's digest from the registry itself, over HTTPS: check that the store can reach the registry".to_owned(),
            SubmitError::Login { .. } => format!("check {USERNAME_VAR} and {PASSWORD_VAR} (or {TOKEN_VAR})"),
            _ => return None,
        })
    }
}

/// How long a request may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a request that may be repeated is tried.
const ATTEMPTS: u32 = 4;

/// Submits `export` (the store's JSON for the image published at `digest`) with `login`.
/// Asks first, so that an algorithm the store has at this digest is `unchanged`. The store
/// answers 201 even when it could not read the image (it records an empty digest), or records
/// what the tag points to now: a digest other than `digest` is an error.
pub async fn submit(
    endpoints: &Endpoints,
    login: &Login,
    export: &super::export::Export,
    digest: &Digest,
) -> Result<Submitted, SubmitError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(TIMEOUT)
        // A connection per request: a few requests in all, and a POST must never go out on a
        // kept-alive connection the store (or a proxy before it) has closed meanwhile.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("cargo-v6/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SubmitError::Unreachable {
            what: "the algorithm store",
            url: endpoints.store.clone(),
            reason: e.to_string(),
        })?;
    let token = match (login, &endpoints.server) {
        (Login::Token(token), _) => token.clone(),
        (
            Login::Password {
                username,
                password,
                mfa_code,
            },
            Some(server),
        ) => log_in(&client, server, username, password, mfa_code.as_deref()).await?,
        // vantage6 5.x: Keycloak's device flow needs a person; a CI job uses a token.
        (Login::Password { .. }, None) => return Err(SubmitError::NeedsToken),
    };
    let image = export.image.as_str();
    if let Some(found) = existing(&client, endpoints, &token, image).await?
        && found.digest.as_deref() == Some(digest.as_str())
    {
        return Ok(found);
    }
    let url = format!("{}/algorithm", endpoints.store.trim_end_matches('/'));
    let request = store_request(&client, reqwest::Method::POST, &url, &token, endpoints)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(export.json.clone());
    // A POST is not repeated: the store may have created the algorithm before a reset.
    let (status, body) = send(request, "the algorithm store", &url, 1).await?;
    if status != 201 && status != 200 {
        return Err(store_error(endpoints, status, &body));
    }
    let created = submitted(endpoints, &body, false);
    match created.digest.as_deref() {
        Some(recorded) if recorded == digest.as_str() => Ok(created),
        recorded => Err(SubmitError::WrongDigest {
            store: endpoints.store.clone(),
            id: created.id,
            recorded: recorded.unwrap_or_default().to_owned(),
            published: digest.to_string(),
        }),
    }
}

/// Logs in as `username`; the server's access token.
async fn log_in(
    client: &reqwest::Client,
    server: &str,
    username: &str,
    password: &str,
    mfa_code: Option<&str>,
) -> Result<String, SubmitError> {
    let url = format!("{}/token/user", server.trim_end_matches('/'));
    let mut body = json!({ "username": username, "password": password });
    if let Some(code) = mfa_code {
        body["mfa_code"] = code.into();
    }
    let (status, answer) = send(
        client.post(&url).json(&body),
        "the vantage6 server",
        &url,
        ATTEMPTS,
    )
    .await?;
    if let Some(token) = answer["access_token"].as_str() {
        return Ok(token.to_owned());
    }
    let message = message_of(&answer);
    // 4.15.2 `UserToken.post`: a 200 without a token asks for the two-factor code (or, for
    // an account without two-factor set up, carries its QR code).
    if status == 200 && mfa_code.is_none() {
        return Err(SubmitError::NeedsMfa {
            server: server.to_owned(),
        });
    }
    Err(SubmitError::Login {
        server: server.to_owned(),
        status,
        message,
    })
}

/// The algorithm the store lists with this image and digest, approved or in review.
async fn existing(
    client: &reqwest::Client,
    endpoints: &Endpoints,
    token: &str,
    image: &str,
) -> Result<Option<Submitted>, SubmitError> {
    let url = format!("{}/algorithm", endpoints.store.trim_end_matches('/'));
    for review in [false, true] {
        let mut query = vec![("image", image)];
        if review {
            query.push(("in_review_process", "1"));
        }
        let request =
            store_request(client, reqwest::Method::GET, &url, token, endpoints).query(&query);
        let (status, body) = send(request, "the algorithm store", &url, ATTEMPTS).await?;
        match status {
            200 => {}
            // 4.15.2 answers 400 when the image is unknown at another digest: not ours.
            400 => continue,
            _ => return Err(store_error(endpoints, status, &body)),
        }
        let listed = body.get("data").unwrap_or(&body);
        if let Some(first) = listed.as_array().and_then(|a| a.first()) {
            return Ok(Some(submitted(endpoints, first, true)));
        }
    }
    Ok(None)
}

/// A request to the store, with the server's token and the server it comes from (the header
/// as the 4.15.2 client spells it, `server_url`, and as the store reads it, `Server-Url`).
fn store_request(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    endpoints: &Endpoints,
) -> reqwest::RequestBuilder {
    let request = client.request(method, url).bearer_auth(token);
    match &endpoints.server {
        Some(server) => request.header("Server-Url", server),
        None => request,
    }
}

/// Sends `request` up to `attempts` times (a connection that fails, or a 5xx); the status and
/// the JSON body.
async fn send(
    request: reqwest::RequestBuilder,
    what: &'static str,
    url: &str,
    attempts: u32,
) -> Result<(u16, Value), SubmitError> {
    let unreachable = |reason: String| SubmitError::Unreachable {
        what,
        url: url.to_owned(),
        reason,
    };
    let mut pause = Duration::from_millis(200);
    for attempt in 1..=attempts {
        let Some(try_request) = request.try_clone() else {
            break;
        };
        match try_request.send().await {
            Ok(response) if response.status().is_server_error() && attempt < attempts => {}
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response
                    .text()
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return Ok((status, body));
            }
            Err(e) if attempt < attempts && (e.is_connect() || e.is_timeout()) => {}
            Err(e) => return Err(unreachable(e.to_string())),
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    Err(unreachable("no answer".to_owned()))
}

/// The store's refusal, worded with its own message.
fn store_error(endpoints: &Endpoints, status: u16, body: &Value) -> SubmitError {
    let mut message = message_of(body);
    if let Some(errors) = body.get("errors") {
        message.push_str(&format!(": {errors}"));
    }
    SubmitError::Store {
        store: endpoints.store.clone(),
        status,
        message,
        errors: body.get("errors").cloned(),
    }
}

fn message_of(body: &Value) -> String {
    match body {
        Value::String(text) => text.chars().take(500).collect(),
        _ => body["msg"].as_str().unwrap_or("(no message)").to_owned(),
    }
}

fn submitted(store: &Endpoints, algorithm: &Value, unchanged: bool) -> Submitted {
    Submitted {
        store: store.store.clone(),
        id: algorithm["id"].as_u64().unwrap_or_default(),
        status: algorithm["status"].as_str().unwrap_or("unknown").to_owned(),
        digest: algorithm["digest"].as_str().map(str::to_owned),
        unchanged,
    }
}
