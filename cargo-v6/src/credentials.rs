//! Registry credentials: `V6_REGISTRY_USERNAME`/`V6_REGISTRY_PASSWORD`, then Docker's own
//! config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: auths, credHelpers,
//! credsStore), else anonymous.
//!
//! Invariants:
//! - The secret never leaves [`Credentials`] except to the engine and registry clients: its
//!   `Debug` is redacted, it has no `Display`, and no [`CredentialsError`] carries a secret
//!   (helper output is reduced to one line of its error message, config parse errors keep only
//!   serde's position-bearing message, never the file's content).
//! - This module prints nothing and knows nothing of the CLI; it reads the environment and the
//!   Docker config only through [`resolve`], whose inner function takes the environment as a
//!   closure so tests never touch the process environment.
//!
//! Credential helpers (`credHelpers`, `credsStore`) are run here, not by docker_credential,
//! which waits for them without limit: a helper gets [`HELPER_TIMEOUT`] (30 s; overridden by
//! `V6_CREDENTIAL_HELPER_TIMEOUT_SECS`) to answer, after which it is killed, with everything it
//! started, and the error names it. docker_credential still reads `auths` (it is given the
//! config without its helpers, so it never starts one).
//!
//! Identity tokens (`identitytoken` in `auths`, or a helper answering with username
//! `<token>`) are returned as username `<token>` with the token as password, the convention
//! Docker's credential helpers use. Registries that accept only the OAuth2 refresh-token
//! exchange will refuse them with 401; `V6_REGISTRY_USERNAME`/`V6_REGISTRY_PASSWORD` (a
//! username and access token) is the way around that.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use docker_credential::{CredentialRetrievalError, DockerCredential};

/// The variable holding the registry user name; overrides Docker's config together with
/// [`PASSWORD_VAR`].
pub const USERNAME_VAR: &str = "V6_REGISTRY_USERNAME";
/// The variable holding the registry password or access token.
pub const PASSWORD_VAR: &str = "V6_REGISTRY_PASSWORD";

/// How long a credential helper may take to answer before it is killed. A helper can wait
/// forever (a locked keyring waiting for a password nobody types, a hung D-Bus service).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// Overrides [`HELPER_TIMEOUT`], in whole seconds (for slow keyrings, and for tests).
pub const HELPER_TIMEOUT_VAR: &str = "V6_CREDENTIAL_HELPER_TIMEOUT_SECS";

/// The most of a helper's stdout or stderr that is read; its answer is a few hundred bytes.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;

/// The key Docker stores Docker Hub credentials under (`docker login` with no server), in
/// `auths` and when asking credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What Docker's credential helpers print (exit 1) for a server they hold nothing for
/// (`credentials.ErrCredentialsNotFound` in docker-credential-helpers).
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name Docker's credential helpers use to mark the secret as an identity token.
const IDENTITY_TOKEN_USER: &str = "<token>";

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

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Environment => write!(f, "{USERNAME_VAR}/{PASSWORD_VAR}"),
            CredentialSource::DockerConfig { via } => write!(f, "Docker config ({via})"),
        }
    }
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

/// Why credentials could not be resolved. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Only one of the two variables is set (or the other is empty): using Docker's config
    /// instead would silently push as someone else.
    #[error("{present} is set but {missing} is not: set both or neither")]
    IncompleteEnvironment {
        /// The variable that is set.
        present: &'static str,
        /// The variable that is missing or empty.
        missing: &'static str,
    },
    /// The Docker config exists but cannot be read or parsed, or its entry is malformed.
    #[error("cannot use Docker config {}: {reason}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The credential helper named in the Docker config failed or could not be run.
    #[error("credential helper `{helper}` (named in {}) failed for {registry}: {reason}", config.display())]
    Helper {
        /// The helper program, e.g. `docker-credential-pass`.
        helper: String,
        /// The config file that names it.
        config: PathBuf,
        /// The registry key it was asked about.
        registry: String,
        /// What went wrong: not found, no usable answer, no answer in time, or the first
        /// line of its error.
        reason: String,
    },
    /// A setting in the environment is not usable.
    #[error("{name}={value} is not valid: {expected}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// Its value (never a secret: only non-secret settings are checked this way).
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

/// Resolves the credentials for `registry` (a host with optional port, as in an image
/// reference: `ghcr.io`, `127.0.0.1:5000`, `docker.io`) from the process environment and
/// Docker's config. `Ok(None)` means anonymous: no variables, no config file, or no entry.
pub fn resolve(registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    resolve_with(registry, |name| std::env::var(name).ok())
}

/// [`resolve`] with the environment given as a lookup, so tests need not mutate the process
/// environment. Reads `V6_REGISTRY_*`, then `DOCKER_CONFIG` or `HOME` to find the config.
fn resolve_with(
    registry: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>, CredentialsError> {
    // An empty variable counts as unset: CI systems expand a missing secret to "".
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    match (var(USERNAME_VAR), var(PASSWORD_VAR)) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials::new(
                username,
                password,
                CredentialSource::Environment,
            )));
        }
        (Some(_), None) => {
            return Err(CredentialsError::IncompleteEnvironment {
                present: USERNAME_VAR,
                missing: PASSWORD_VAR,
            });
        }
        (None, Some(_)) => {
            return Err(CredentialsError::IncompleteEnvironment {
                present: PASSWORD_VAR,
                missing: USERNAME_VAR,
            });
        }
        (None, None) => {}
    }
    let dir = var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".docker")));
    let timeout = match var(HELPER_TIMEOUT_VAR) {
        None => HELPER_TIMEOUT,
        Some(value) => match value.trim().parse::<u64>() {
            Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
            _ => {
                return Err(CredentialsError::Setting {
                    name: HELPER_TIMEOUT_VAR,
                    value,
                    expected: "a whole number of seconds, at least 1",
                });
            }
        },
    };
    match dir {
        Some(dir) => from_docker_config(&dir.join("config.json"), registry, timeout),
        None => Ok(None),
    }
}

/// Looks `registry` up in the Docker config file at `path`; a credential helper it names gets
/// `timeout` to answer.
fn from_docker_config(
    path: &Path,
    registry: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, CredentialsError> {
    let config_error = |reason: String| CredentialsError::Config {
        path: path.to_owned(),
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        // No config is the normal state of a machine that never ran `docker login`.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config_error(e.to_string())),
    };
    // An empty file is an empty config, as for the docker CLI (what `touch` or a failed
    // write leaves).
    if text.trim().is_empty() {
        return Ok(None);
    }
    // Parsed here too (docker_credential only says "Unable to read config"), to give the
    // position of a syntax error and to run the helper ourselves.
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| config_error(format!("not valid JSON ({e})")))?;
    let key = config_key(registry);
    if let Some((kind, name)) = helper_for(&config, key) {
        let program = format!("docker-credential-{name}");
        let helper_error = |reason: String| CredentialsError::Helper {
            helper: program.clone(),
            config: path.to_owned(),
            registry: key.to_owned(),
            reason,
        };
        let Some((username, secret)) = ask_helper(&program, key, timeout).map_err(helper_error)?
        else {
            return Ok(None);
        };
        let source = CredentialSource::DockerConfig {
            via: format!("{kind} {program}"),
        };
        return Ok(Some(Credentials::new(username, secret, source)));
    }
    // No helper applies: `auths`. docker_credential gets the config without helpers, so that
    // it cannot start one (it would wait for it without limit).
    if let Some(object) = config.as_object_mut() {
        object.remove("credHelpers");
        object.remove("credsStore");
    }
    let credential =
        match docker_credential::get_credential_from_reader(config.to_string().as_bytes(), key) {
            Ok(credential) => credential,
            Err(CredentialRetrievalError::NoCredentialConfigured) => return Ok(None),
            Err(e) => return Err(retrieval_error(e, path, key)),
        };
    let (via, credentials) = match credential {
        DockerCredential::UsernamePassword(username, password) => ("auths", (username, password)),
        DockerCredential::IdentityToken(token) => (
            "auths identity token",
            (IDENTITY_TOKEN_USER.to_owned(), token),
        ),
    };
    let source = CredentialSource::DockerConfig {
        via: via.to_owned(),
    };
    Ok(Some(Credentials::new(credentials.0, credentials.1, source)))
}

/// Runs `program get` with the documented protocol of Docker's credential helpers: the server
/// on stdin, `{"ServerURL", "Username", "Secret"}` on stdout, exit 1 with
/// `credentials not found in native keychain` on stdout when it holds nothing (`Ok(None)`).
/// Any other failure comes back as one line for the user, never the helper's full output.
///
/// Run here rather than by docker_credential, which waits for the helper without limit: the
/// helper gets `timeout` to exit, after which it is killed. On unix it runs in its own process
/// group and the whole group is killed, so that nothing it started (a script's `sleep`, a
/// prompt) lingers holding its pipes. The cost: a Ctrl-C in the terminal reaches this program
/// and not the helper; a helper left that way ends at the latest when it next writes to its
/// closed pipes.
fn ask_helper(
    program: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<(String, String)>, String> {
    let mut command = Command::new(program);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => "cannot run it (is it installed and on PATH?)".to_owned(),
        _ => format!("cannot run it: {e}"),
    })?;
    let deadline = Instant::now() + timeout;
    // The server, then end of input. A few bytes fit in the pipe: this never blocks. A helper
    // that exits without reading makes the write fail; its exit status tells the rest.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let too_slow = || {
        format!(
            "it did not answer within {} s and was stopped (a locked keyring waiting for a \
             password?); {HELPER_TIMEOUT_VAR} sets the limit, and {USERNAME_VAR}/{PASSWORD_VAR} \
             avoid the helper",
            timeout.as_secs()
        )
    };
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                stop(&mut child);
                return Err(too_slow());
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                stop(&mut child);
                return Err(format!("cannot wait for it: {e}"));
            }
        }
    };
    // It exited; its output ends unless something it started still holds the pipes.
    let collect = |output: mpsc::Receiver<Vec<u8>>| {
        output.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    };
    let (Ok(stdout), Ok(stderr)) = (collect(stdout), collect(stderr)) else {
        stop(&mut child);
        return Err(too_slow());
    };
    let stdout = String::from_utf8_lossy(&stdout);
    if !status.success() {
        if stdout.trim() == HELPER_NOT_FOUND {
            // Docker's helpers answer an unknown server this way; the Docker CLI then goes
            // on anonymously, and so do we (a `credsStore` is asked about every registry).
            return Ok(None);
        }
        // Docker's helpers print their error on stdout; others use stderr.
        let stderr = String::from_utf8_lossy(&stderr);
        let line = stdout
            .lines()
            .chain(stderr.lines())
            .map(str::trim)
            .find(|l| !l.is_empty());
        return Err(match line {
            Some(line) => truncate(line, 200),
            None => format!("it failed ({status}) without a message"),
        });
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_str(&stdout)
        .map_err(|_| "its answer is not the expected JSON".to_owned())?;
    Ok(Some((answer.username, answer.secret)))
}

/// Reads up to [`HELPER_OUTPUT_LIMIT`] bytes of `pipe` on a thread; the bytes arrive on the
/// channel at end of file. A thread left blocked (by a process that keeps the pipe open) ends
/// with the pipe, or with this program.
fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (send, receive) = mpsc::channel();
    let Some(pipe) = pipe else {
        let _ = send.send(Vec::new());
        return receive;
    };
    let spawned = std::thread::Builder::new()
        .name("credential-helper-output".to_owned())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut bytes);
            let _ = send.send(bytes);
        });
    // Without a thread the receiver sees a closed channel: reported as no answer in time.
    drop(spawned);
    receive
}

/// Kills the helper and, on unix, its process group; then reaps it.
fn stop(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group; the group is the
        // helper's own (process_group(0) made its id the helper's pid), and the helper is not
        // reaped yet, so that id cannot have been reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The key Docker files `registry` under: the bare host (with port), except Docker Hub,
/// which `docker login` records as `https://index.docker.io/v1/`.
fn config_key(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY,
        other => other,
    }
}

/// The helper docker_credential will ask for `key`, with how it was chosen, following its
/// precedence: a `credHelpers` entry, else `credsStore` unless `auths` has the entry inline.
fn helper_for(config: &serde_json::Value, key: &str) -> Option<(&'static str, String)> {
    let non_empty = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(name) = config
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .and_then(non_empty)
    {
        return Some(("credHelpers", name));
    }
    let inline = config
        .get("auths")
        .and_then(|a| a.as_object())
        .is_some_and(|auths| {
            auths.iter().any(|(k, entry)| {
                let has = |field: &str| entry.get(field).and_then(non_empty).is_some();
                normalize_key(k) == normalize_key(key)
                    && (has("auth") || has("identitytoken") || (has("username") && has("password")))
            })
        });
    if inline {
        return None;
    }
    config
        .get("credsStore")
        .and_then(non_empty)
        .map(|name| ("credsStore", name))
}

/// The host part of an `auths` key (`https://ghcr.io/v1/` -> `ghcr.io`), Docker Hub's
/// aliases folded, as docker_credential matches keys.
fn normalize_key(key: &str) -> &str {
    let host = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key,
    };
    match host {
        "docker.io" | "registry-1.docker.io" => "index.docker.io",
        other => other,
    }
}

/// Turns a docker_credential failure (of `auths`: it runs no helper here) into an error
/// naming the file, without the entry's content.
fn retrieval_error(e: CredentialRetrievalError, path: &Path, key: &str) -> CredentialsError {
    let reason = match e {
        CredentialRetrievalError::CredentialDecodingError => {
            format!("the `auth` of {key} is not base64 of `user:password`")
        }
        CredentialRetrievalError::CredentialMismatchError => {
            format!("the `auth` of {key} does not match its `username`/`password`")
        }
        other => other.to_string(),
    };
    CredentialsError::Config {
        path: path.to_owned(),
        reason,
    }
}

/// `s` cut to at most `max` characters, marked when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// What a redacted value is replaced with.
const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not replaced where they stand alone: replacing every
/// occurrence of a one- or two-character string would garble the text without hiding anything
/// (their base64 forms, `user:password`, are still replaced).
const MIN_REDACTED_LEN: usize = 3;

/// The shortest run of base64 characters that is decoded to look for the secret.
const MIN_BASE64_RUN: usize = 4;

/// `text` (an error from a registry, or from the engine about a registry) with every
/// authorization value in it replaced by `<redacted>`: a registry or a proxy in front of it
/// may echo the request's `Authorization` header (or the engine's `X-Registry-Auth`) back in an
/// error body. The one redaction for every such text, so that no encoding is forgotten:
///
/// - the value after `Basic` or `Bearer` (any token: registries issue their own), whoever's
///   it is;
/// - with `credentials`: the password as written, JSON-escaped and percent-encoded; and any
///   base64 (standard or URL-safe alphabet, padded or not, also cut short or glued to other
///   text) that decodes to something containing it or `user:password`: `Basic <base64>`,
///   Docker's `auth` field, and `X-Registry-Auth` (base64 of a JSON object with the password).
pub fn redact(text: &str, credentials: Option<&Credentials>) -> String {
    let text = redact_schemes(text);
    let Some(credentials) = credentials.filter(|c| !c.password.is_empty()) else {
        return text;
    };
    let needles = secret_forms(credentials);
    let text = redact_base64(&text, &needles);
    needles
        .iter()
        .filter(|needle| needle.len() >= MIN_REDACTED_LEN)
        .fold(text, |text, needle| text.replace(needle.as_str(), REDACTED))
}

/// The forms in which `credentials`' secret may appear in text: `user:password`, the password
/// and the `password` field of `X-Registry-Auth`'s JSON (which gives a short password away
/// too), each also as a JSON string's content, once and twice escaped (JSON in an error
/// message); and the password percent-encoded.
fn secret_forms(credentials: &Credentials) -> Vec<String> {
    let password = credentials.password.as_str();
    let escape = |s: &str| {
        let json = serde_json::to_string(s).unwrap_or_default();
        json[1..json.len().saturating_sub(1).max(1)].to_owned()
    };
    let field = format!(
        "\"password\":{}",
        serde_json::to_string(password).unwrap_or_default()
    );
    let percent: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut forms = vec![format!("{}:{password}", credentials.username), percent];
    for form in [password.to_owned(), field] {
        let once = escape(&form);
        let twice = escape(&once);
        forms.extend([form, once, twice]);
    }
    let mut seen = std::collections::BTreeSet::new();
    forms.retain(|form| seen.insert(form.clone()));
    forms
}

/// `text` with the credential after every `Basic ` or `Bearer ` replaced (case-insensitive; a
/// space, `%20` or `+` between). A challenge's parameters (`Bearer realm="..."`) are kept.
fn redact_schemes(text: &str) -> String {
    static SCHEME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(?:basic|bearer)(?:\s+|%20|\+)([A-Za-z0-9._~+/-]+=*)")
            .expect("a valid regex")
    });
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for captures in SCHEME.captures_iter(text) {
        let Some(value) = captures.get(1) else {
            continue;
        };
        // `realm="..."`: a challenge's parameter, not a credential.
        let word = value.as_str().strip_suffix('=');
        let followed = text[value.end()..].starts_with(|c: char| c == '"' || c.is_alphanumeric());
        if followed && word.is_some_and(|w| w.chars().all(|c| c.is_ascii_alphabetic())) {
            continue;
        }
        out.push_str(&text[last..value.start()]);
        out.push_str(REDACTED);
        last = value.end();
    }
    out.push_str(&text[last..]);
    out
}

/// `text` with every run of base64 characters replaced whose decoding contains one of
/// `needles` (each of at least [`MIN_REDACTED_LEN`] bytes, or the first, `user:password`). The
/// run is decoded from each of its first four offsets, so that text glued before it (`%20`
/// before a header value) does not hide it, and as far as it goes, so that a value cut short
/// is still found.
fn redact_base64(text: &str, needles: &[String]) -> String {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    /// Decodes what a cut may leave: no padding, and bits past the last whole byte.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let is_base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_');
    let holds_secret = |run: &str| {
        // One alphabet for both: URL-safe characters mapped to the standard ones.
        let standard: String = run
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        (0..4).any(|offset| {
            let Some(rest) = standard.get(offset..) else {
                return false;
            };
            // A lone last character holds no whole byte.
            let whole = &rest[..rest.len() - usize::from(rest.len() % 4 == 1)];
            let Ok(decoded) = LENIENT.decode(whole) else {
                return false;
            };
            let decoded = String::from_utf8_lossy(&decoded);
            needles.iter().enumerate().any(|(i, needle)| {
                (i == 0 || needle.len() >= MIN_REDACTED_LEN) && decoded.contains(needle.as_str())
            })
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_base64) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !is_base64(c)).unwrap_or(rest.len());
        let padded = end + rest[end..].len() - rest[end..].trim_start_matches('=').len();
        let run = &rest[..end];
        if run.len() >= MIN_BASE64_RUN && holds_secret(run) {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[..padded]);
        }
        rest = &rest[padded..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::env;

    /// A DOCKER_CONFIG directory holding `config` as config.json.
    fn config_dir(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    /// Resolves `registry` with only DOCKER_CONFIG=`dir` in the environment.
    fn resolve_in(
        dir: &tempfile::TempDir,
        registry: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        resolve_with(
            registry,
            env(&[("DOCKER_CONFIG", dir.path().to_str().unwrap())]),
        )
    }

    #[test]
    fn environment_overrides_docker_config() {
        // base64("fromfile:filepass")
        let dir = config_dir(r#"{"auths":{"ghcr.io":{"auth":"ZnJvbWZpbGU6ZmlsZXBhc3M="}}}"#);
        let creds = resolve_with(
            "ghcr.io",
            env(&[
                ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
                (USERNAME_VAR, "ci"),
                (PASSWORD_VAR, "envpass"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(creds.username, "ci");
        assert_eq!(creds.password(), "envpass");
        assert_eq!(creds.source, CredentialSource::Environment);
        assert_eq!(
            creds.source.to_string(),
            "V6_REGISTRY_USERNAME/V6_REGISTRY_PASSWORD"
        );
        assert!(!format!("{creds:?}").contains("envpass"));
    }

    #[test]
    fn one_variable_alone_is_an_error_naming_the_other() {
        let err = resolve_with("ghcr.io", env(&[(USERNAME_VAR, "ci")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "V6_REGISTRY_USERNAME is set but V6_REGISTRY_PASSWORD is not: set both or neither"
        );
        // An empty value is how CI expands a missing secret: it counts as unset.
        let err = resolve_with(
            "ghcr.io",
            env(&[(USERNAME_VAR, ""), (PASSWORD_VAR, "secret")]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            CredentialsError::IncompleteEnvironment {
                present: PASSWORD_VAR,
                missing: USERNAME_VAR
            }
        );
        assert!(!format!("{err} {err:?}").contains("secret"));
    }

    #[test]
    fn no_config_file_or_no_home_is_anonymous() {
        let empty = tempfile::tempdir().unwrap();
        let d = empty.path().to_str().unwrap();
        assert!(
            resolve_with("ghcr.io", env(&[("DOCKER_CONFIG", d)]))
                .unwrap()
                .is_none()
        );
        assert!(
            resolve_with("ghcr.io", env(&[("HOME", d)]))
                .unwrap()
                .is_none()
        );
        assert!(resolve_with("ghcr.io", env(&[])).unwrap().is_none());
    }

    #[test]
    fn home_docker_config_is_used_without_docker_config_var() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".docker")).unwrap();
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths":{"ghcr.io":{"auth":"dTpw"}}}"#, // u:p
        )
        .unwrap();
        let creds = resolve_with("ghcr.io", env(&[("HOME", home.path().to_str().unwrap())]))
            .unwrap()
            .unwrap();
        assert_eq!((creds.username.as_str(), creds.password()), ("u", "p"));
    }

    #[test]
    fn auths_entry_is_found_by_host_and_port() {
        // local:pw:with:colons, gh:ghpw
        let dir = config_dir(
            r#"{"auths":{"127.0.0.1:5551":{"auth":"bG9jYWw6cHc6d2l0aDpjb2xvbnM="},
                "https://ghcr.io":{"auth":"Z2g6Z2hwdw=="}}}"#,
        );
        let creds = resolve_in(&dir, "127.0.0.1:5551").unwrap().unwrap();
        assert_eq!(creds.username, "local");
        assert_eq!(creds.password(), "pw:with:colons");
        assert_eq!(
            creds.source,
            CredentialSource::DockerConfig {
                via: "auths".into()
            }
        );
        assert_eq!(creds.source.to_string(), "Docker config (auths)");
        // A key written with a scheme still matches the bare host.
        let creds = resolve_in(&dir, "ghcr.io").unwrap().unwrap();
        assert_eq!(creds.username, "gh");
        // Another registry has no entry: anonymous.
        assert!(resolve_in(&dir, "quay.io").unwrap().is_none());
    }

    #[test]
    fn docker_hub_is_found_under_its_index_key() {
        // hubuser:hubpw
        let dir = config_dir(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHVidXNlcjpodWJwdw=="}}}"#,
        );
        for registry in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            let creds = resolve_in(&dir, registry).unwrap().unwrap();
            assert_eq!(creds.username, "hubuser", "{registry}");
        }
    }

    #[test]
    fn identity_token_maps_to_token_user() {
        let dir = config_dir(r#"{"auths":{"myacr.azurecr.io":{"identitytoken":"tok-123"}}}"#);
        let creds = resolve_in(&dir, "myacr.azurecr.io").unwrap().unwrap();
        assert_eq!(creds.username, "<token>");
        assert_eq!(creds.password(), "tok-123");
        assert_eq!(
            creds.source.to_string(),
            "Docker config (auths identity token)"
        );
        assert!(!format!("{creds:?}").contains("tok-123"));
    }

    #[test]
    fn broken_config_names_the_file_without_its_content() {
        let dir = config_dir(r#"{"auths":{"ghcr.io":{"auth":"c2VjcmV0OnNlY3JldA=="}"#);
        let err = resolve_in(&dir, "ghcr.io").unwrap_err();
        let text = err.to_string();
        let path = dir.path().join("config.json");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("not valid JSON"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }

    #[test]
    fn undecodable_auth_is_a_config_error() {
        let dir = config_dir(r#"{"auths":{"ghcr.io":{"auth":"!!!not-base64"}}}"#);
        let err = resolve_in(&dir, "ghcr.io").unwrap_err();
        assert!(matches!(err, CredentialsError::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("not base64"), "{err}");
        assert!(!err.to_string().contains("!!!not-base64"));
    }

    /// Set in the child process that [`credential_helpers`] starts.
    const HELPER_CHILD_VAR: &str = "V6_TEST_CREDENTIAL_HELPER_CHILD";

    /// docker_credential runs `docker-credential-NAME` from PATH. Changing this process's PATH
    /// would race with other tests, so this runs [`credential_helpers_child`] in a child
    /// process whose PATH starts with a directory of fake helpers.
    #[cfg(unix)]
    #[test]
    fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let bin = tempfile::tempdir().unwrap();
        // Each reads the server from stdin first, as real helpers do: one that exits before
        // docker_credential has written it makes the write fail (a communication error).
        let helpers = [
            (
                "ok",
                r#"read server; printf '{"ServerURL":"%s","Username":"helperuser","Secret":"helper-secret"}' "$server""#,
            ),
            (
                "token",
                r#"read server; printf '{"ServerURL":"%s","Username":"<token>","Secret":"helper-token"}' "$server""#,
            ),
            (
                "notfound",
                "read server; echo 'credentials not found in native keychain'; exit 1",
            ),
            (
                "fail",
                "read server; echo 'error getting credentials - locked keyring'; echo helper-secret; exit 1",
            ),
            ("garbage", "read server; echo helper-secret"),
            // Never answers, and what it started would keep its pipes open if left alive.
            (
                "hang",
                r#"read server; echo $$ > "$V6_TEST_HANG_DIR/helper.pid"; sleep 600 & echo $! > "$V6_TEST_HANG_DIR/sleep.pid"; wait"#,
            ),
        ];
        for (name, body) in helpers {
            let path = bin.path().join(format!("docker-credential-v6test-{name}"));
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(bin.path().to_owned()).chain(std::env::split_paths(&path)),
        )
        .unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "credentials::tests::credential_helpers_child"])
            .args(["--nocapture", "--test-threads=1"])
            .env("PATH", path)
            .env(HELPER_CHILD_VAR, "1")
            .env("V6_TEST_HANG_DIR", bin.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}\n{errors}");
        assert!(
            text.contains("1 passed"),
            "the child test did not run:\n{text}"
        );
    }

    /// The assertions of [`credential_helpers`]; does nothing outside its child process.
    #[test]
    fn credential_helpers_child() {
        if std::env::var_os(HELPER_CHILD_VAR).is_none() {
            return;
        }
        let dir = config_dir(
            r#"{"credHelpers":{"127.0.0.1:5551":"v6test-ok","a.example":"v6test-fail",
                "b.example":"v6test-garbage","c.example":"v6test-not-installed",
                "d.example":"v6test-notfound"},
                "credsStore":"v6test-token",
                "auths":{"inline.example":{"auth":"dTpw"}}}"#,
        );
        let creds = resolve_in(&dir, "127.0.0.1:5551").unwrap().unwrap();
        assert_eq!(creds.username, "helperuser");
        assert_eq!(creds.password(), "helper-secret");
        assert_eq!(
            creds.source.to_string(),
            "Docker config (credHelpers docker-credential-v6test-ok)"
        );
        // No credHelpers entry: the store answers, here with an identity token.
        let creds = resolve_in(&dir, "ghcr.io").unwrap().unwrap();
        assert_eq!(creds.username, "<token>");
        assert_eq!(creds.password(), "helper-token");
        assert_eq!(
            creds.source.to_string(),
            "Docker config (credsStore docker-credential-v6test-token)"
        );
        // An inline auths entry wins over the store.
        let creds = resolve_in(&dir, "inline.example").unwrap().unwrap();
        assert_eq!((creds.username.as_str(), creds.password()), ("u", "p"));
        assert_eq!(creds.source.to_string(), "Docker config (auths)");
        // A helper that holds nothing for the server: anonymous, as with the Docker CLI.
        assert!(resolve_in(&dir, "d.example").unwrap().is_none());

        let err = resolve_in(&dir, "a.example").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("docker-credential-v6test-fail"), "{text}");
        assert!(text.contains("locked keyring"), "{text}");
        assert!(!text.contains("helper-secret"), "{text}");

        let err = resolve_in(&dir, "b.example").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("not the expected JSON"), "{text}");
        assert!(!text.contains("helper-secret"), "{text}");

        let err = resolve_in(&dir, "c.example").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "credential helper `docker-credential-v6test-not-installed` (named in {}) failed \
                 for c.example: cannot run it (is it installed and on PATH?)",
                dir.path().join("config.json").display()
            )
        );

        // A helper that never answers is stopped after the timeout, with what it started.
        let dir = config_dir(r#"{"credsStore":"v6test-hang"}"#);
        let started = Instant::now();
        let err = resolve_with(
            "ghcr.io",
            env(&[
                ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
                (HELPER_TIMEOUT_VAR, "1"),
            ]),
        )
        .unwrap_err();
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let text = err.to_string();
        assert!(text.contains("`docker-credential-v6test-hang`"), "{text}");
        assert!(text.contains("did not answer within 1 s"), "{text}");
        assert!(text.contains(HELPER_TIMEOUT_VAR), "{text}");
        let hang_dir = PathBuf::from(std::env::var_os("V6_TEST_HANG_DIR").unwrap());
        for name in ["helper.pid", "sleep.pid"] {
            let pid = std::fs::read_to_string(hang_dir.join(name)).unwrap();
            assert!(gone(pid.trim()), "{name} {pid} still runs");
        }
    }

    /// Whether process `pid` has ended (absent, or a zombie nobody reaped yet), waiting up to
    /// two seconds for a signal to take effect.
    fn gone(pid: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state follows the command name, which is in parentheses.
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            if stat.is_empty() || state == Some(Some('Z')) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn an_empty_config_file_is_an_empty_config() {
        for empty in ["", "\n", "  \t\r\n"] {
            let dir = config_dir(empty);
            assert!(resolve_in(&dir, "ghcr.io").unwrap().is_none(), "{empty:?}");
        }
    }

    #[test]
    fn the_helper_timeout_must_be_whole_seconds() {
        let dir = config_dir(r#"{"credsStore":"v6test-never-run"}"#);
        for value in ["0", "-1", "1.5", "soon"] {
            let err = resolve_with(
                "ghcr.io",
                env(&[
                    ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
                    (HELPER_TIMEOUT_VAR, value),
                ]),
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{HELPER_TIMEOUT_VAR}={value} is not valid: a whole number of seconds, at \
                     least 1"
                )
            );
        }
    }

    /// Every encoding of `user`/`password` a registry, a proxy or the engine may echo.
    fn echoes(user: &str, password: &str) -> Vec<String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let pair = format!("{user}:{password}");
        let registry_auth = serde_json::json!({
            "username": user,
            "password": password,
            "serveraddress": "127.0.0.1:5000",
        })
        .to_string();
        vec![
            format!("bad request: password {password} refused"),
            format!("Authorization: Basic {}", STANDARD.encode(&pair)),
            format!(
                r#"{{"headers":{{"Authorization":["Basic {}"]}}}}"#,
                STANDARD.encode(&pair)
            ),
            format!("authorization=basic%20{}&x=1", URL_SAFE.encode(&pair)),
            format!("X-Registry-Auth: {}", URL_SAFE.encode(&registry_auth)),
            format!("X-Registry-Auth: {}", STANDARD.encode(&registry_auth)),
            format!("auth {}", URL_SAFE_NO_PAD.encode(&registry_auth)),
            // Cut short by a proxy that truncates what it echoes.
            format!("header: {}...", &STANDARD.encode(&registry_auth)[..60]),
            format!("glued:x{}", STANDARD.encode(format!("{pair}\n"))),
            format!(
                r#"{{"message":{}}}"#,
                serde_json::to_string(&registry_auth).unwrap()
            ),
        ]
    }

    #[test]
    fn redact_hides_every_encoding_of_the_secret() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        for (user, password) in [
            ("ci", "hunter2!x"),
            // Its base64 forms have `+` and `/` (`-` and `_` URL-safe).
            ("v6", "p>?~s?>w"),
            ("u", "a\"b\\c d"),
            ("robot$x", "ab"),
        ] {
            let credentials = Credentials::new(
                user.to_owned(),
                password.to_owned(),
                CredentialSource::Environment,
            );
            let pair = format!("{user}:{password}");
            for echoed in echoes(user, password) {
                let redacted = redact(&echoed, Some(&credentials));
                let alone = echoed.contains(&format!(" {password} "));
                if password.len() >= MIN_REDACTED_LEN || !alone {
                    assert!(redacted.contains(REDACTED), "{echoed} -> {redacted}");
                }
                for secret in [
                    pair.clone(),
                    STANDARD.encode(&pair),
                    URL_SAFE.encode(&pair),
                    STANDARD.encode(&pair)[..4].to_owned(),
                ] {
                    assert!(!redacted.contains(&secret), "{echoed} -> {redacted}");
                }
                if password.len() >= MIN_REDACTED_LEN {
                    assert!(!redacted.contains(password), "{echoed} -> {redacted}");
                }
            }
        }
    }

    #[test]
    fn redact_hides_tokens_and_keeps_the_rest() {
        // Anyone's token, credentials or not.
        let text = "unauthorized: Authorization: Bearer eyJhbGciOi.J9x_y-z==; try again";
        assert_eq!(
            redact(text, None),
            "unauthorized: Authorization: Bearer <redacted>; try again"
        );
        // A challenge's parameters and ordinary words stay.
        let challenge =
            r#"Www-Authenticate: Bearer realm="https://auth",service="r", Basic realm="x""#;
        assert_eq!(redact(challenge, None), challenge);
        let credentials = Credentials::new(
            "ci".into(),
            "hunter22".into(),
            CredentialSource::Environment,
        );
        let plain = "manifest invalid: manifest blob unknown: blob unknown to registry";
        assert_eq!(redact(plain, Some(&credentials)), plain);
        assert_eq!(
            redact("no hunter22 here, hunter22", Some(&credentials)),
            "no <redacted> here, <redacted>"
        );
    }
}
