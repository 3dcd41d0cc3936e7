//! Docker Engine I/O: connect, build (streaming the context), tag, push, inspect labels,
//! remove; and run containers (pull, create, start, follow logs, wait, remove).
//!
//! Invariants:
//! - This is the only module that talks to the engine (through bollard). It knows nothing of
//!   the CLI and prints nothing: progress goes to the caller's callbacks ([`BuildEvent`],
//!   [`PushEvent`]), failures come back as [`EngineError`].
//! - The build context is streamed: a blocking thread writes the tar into an in-process pipe
//!   that the HTTP request body reads. Nothing is buffered whole and nothing is written to
//!   disk, so an interrupted build (Ctrl-C drops the future) leaves no temporary files: the
//!   request is dropped, the pipe closes and the writer thread stops at its next write.
//! - A context that cannot be completed (a selected file vanished or is unreadable) fails the
//!   request instead of letting the engine build from a truncated archive, and is reported as
//!   [`EngineError::Io`] naming the file.
//! - Registry secrets only travel in the `X-Registry-Auth` header; no error text contains them.
//!
//! Layout: this file holds the [`Engine`] handle, its request limits and [`EngineError`];
//! `connect` finds and opens the engine (`address` resolves it as the docker CLI does, `ssh`
//! tunnels to it) and names what a failed first request means; `build` streams the context
//! (`context_tar` writes it and checks it against the fingerprint) and tags the result; `push`
//! hands the registry credentials to the engine and follows the push; `container` pulls and
//! runs the containers of `cargo v6 run`; `leftovers` remembers what a signal must remove.

mod address;
mod build;
mod connect;
mod container;
mod context_tar;
mod leftovers;
mod push;
mod ssh;

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use futures_util::{Stream, StreamExt};

pub use build::{BuildEvent, BuildRequest};
pub use container::{Bind, ContainerSpec, LogLine};
pub use push::PushEvent;

/// Timeout of ordinary requests (inspect, tag, create and start a container, the start of a
/// push) when no `--stall-timeout` is given.
const API_TIMEOUT: Duration = Duration::from_secs(120);

/// How long each clean-up request (removing a container or a local tag) may take: clean-up
/// runs after a failure, often because the engine stopped answering, and must not wait out
/// [`API_TIMEOUT`] for an engine that will not answer. A shorter `--stall-timeout` shortens it.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout of the build request. bollard's timeout runs until the response headers arrive,
/// which for `/build` is after the whole context was uploaded and unpacked: large contexts on
/// slow storage (vfs copies everything) need far more than the default two minutes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// A connection to one Docker engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    address: address::Address,
    /// How long a push may make no progress before it is abandoned.
    stall_timeout: Option<Duration>,
}

/// How long a request may wait for its answer, and the name of that limit for messages.
#[derive(Debug, Clone, Copy)]
struct Limit {
    after: Duration,
    name: &'static str,
}

impl Limit {
    /// `default` (called `name`), or `--stall-timeout` when that is shorter.
    fn new(default: Duration, name: &'static str, stall_timeout: Option<Duration>) -> Limit {
        match stall_timeout {
            Some(stall) if stall < default => Limit {
                after: stall,
                name: "--stall-timeout",
            },
            _ => Limit {
                after: default,
                name,
            },
        }
    }
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine did not answer a request in time: it stopped answering (a frozen daemon, a
    /// lost connection), or it accepted the connection and never answered at all.
    #[error(
        "the Docker engine at {endpoint} did not answer {request} within {} s ({limit}); \
         is it running, and not frozen or overloaded?",
        after.as_secs()
    )]
    NoAnswer {
        /// The address, with where it came from.
        endpoint: String,
        /// What was asked (`the first request`, `\`remove container abc\``).
        request: String,
        /// How long it waited.
        after: Duration,
        /// Which timeout that is (`--stall-timeout`, `the first-answer timeout`).
        limit: &'static str,
    },
    /// The address answers HTTP, but not as a Docker engine does (a web server, a proxy, a
    /// registry): its page is not shown, only its status and first line.
    #[error(
        "{endpoint} is not a Docker engine: it answers HTTP, but not the engine's API \
         ({answer}); check DOCKER_HOST (or the Docker context) and the port"
    )]
    NotAnEngine {
        /// The address, with where it came from.
        endpoint: String,
        /// The HTTP status and the first line of what came back, shortened.
        answer: String,
    },
    /// The engine cannot be reached.
    #[error(
        "cannot connect to the Docker engine at {endpoint}: {reason}; is it running? Set \
         DOCKER_HOST to point at it (unix:///path/to/docker.sock, tcp://host:port or \
         ssh://user@host), or DOCKER_CONTEXT to a Docker context"
    )]
    Unreachable {
        /// Where we tried (`DOCKER_HOST` or the default socket).
        endpoint: String,
        /// The underlying failure.
        reason: String,
    },
    /// The engine's address (`DOCKER_HOST`, a Docker context, the TLS files) is unusable.
    #[error("cannot use the Docker engine address {what}: {reason}")]
    Address {
        /// What was read: `DOCKER_HOST=...`, `Docker context `x` (from DOCKER_CONTEXT)`.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake with the engine failed: a certificate was refused either way.
    #[error("TLS with the Docker engine at {endpoint} failed: {reason} (TLS files from {from})")]
    Tls {
        /// The address, with where it came from.
        endpoint: String,
        /// The handshake failure.
        reason: String,
        /// Where the certificates were read from.
        from: String,
    },
    /// A push would send registry credentials to the engine unencrypted over the network. The
    /// command names its flag that sends them anyway.
    #[error(
        "refusing to send the registry credentials to the Docker engine at {endpoint}: it is \
         reached over plain TCP at an address that is not a loopback IP address (a host name, \
         even `localhost`, may resolve off this machine), so they could cross the network in \
         clear text (in the X-Registry-Auth header of the push); use TLS (DOCKER_TLS_VERIFY=1 \
         and DOCKER_CERT_PATH), ssh://, a unix socket or tcp://127.0.0.1"
    )]
    CredentialsInClear {
        /// The address, with where it came from.
        endpoint: String,
    },
    /// The engine rejected the Dockerfile before building (syntax, unknown instruction), or the
    /// rendered Dockerfile's name is unusable.
    #[error("the engine rejected the Dockerfile: {message}")]
    Dockerfile {
        /// The engine's message.
        message: String,
    },
    /// A build step failed (a RUN returned non-zero, a COPY source is missing, the base image
    /// cannot be pulled).
    #[error("`{step}` failed: {message}{}", indented_output(output))]
    BuildStep {
        /// The step as the engine printed it: `Step 3/5 : RUN false`.
        step: String,
        /// The step's last output lines (at most 30), newline-separated.
        output: String,
        /// The engine's message (`The command '/bin/sh -c false' returned a non-zero code: 1`).
        message: String,
    },
    /// A push failed; authentication failures name the registry, never the secret.
    #[error("cannot push {reference}: {message}")]
    Push {
        /// `repository:tag`.
        reference: String,
        /// What went wrong.
        message: String,
    },
    /// A context file could not be read while streaming it.
    #[error("cannot add {} to the build context: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A context file changed after it was fingerprinted or while it was being sent: the image
    /// would not hold what the fingerprint names, so the build is abandoned.
    #[error("{path} changed while the build context was being sent ({what}); nothing was pushed")]
    ContextChanged {
        /// The path, relative to the context.
        path: String,
        /// What differs.
        what: &'static str,
    },
    /// Any other engine failure, with the operation that failed.
    #[error("{0}")]
    Api(String),
}

/// The kept output of a failed step, indented under the message.
fn indented_output(output: &str) -> String {
    output.lines().map(|line| format!("\n    {line}")).collect()
}

impl Engine {
    /// How long an ordinary request waits for its answer.
    fn answer_limit(&self) -> Limit {
        Limit::new(
            API_TIMEOUT,
            "the engine's request timeout",
            self.stall_timeout,
        )
    }

    /// How long a clean-up request waits for its answer.
    fn cleanup_limit(&self) -> Limit {
        Limit::new(CLEANUP_TIMEOUT, "the clean-up timeout", self.stall_timeout)
    }

    /// A clean-up request: `remove` is given the engine with the clean-up limit; what it
    /// removes (`leftover`) is forgotten once it is gone, and one already gone (404) is no
    /// error. `request` names it in a failure (`remove X`).
    async fn clean_up<T, F>(
        &self,
        leftover: leftovers::Leftover,
        request: String,
        remove: impl FnOnce(Docker) -> F,
    ) -> Result<(), EngineError>
    where
        F: std::future::Future<Output = Result<T, BollardError>>,
    {
        let limit = self.cleanup_limit();
        match remove(self.docker.clone().with_timeout(limit.after)).await {
            Ok(_)
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                leftovers::forget(&leftover);
                Ok(())
            }
            Err(err) => Err(self.failed(limit, request, err)),
        }
    }

    /// The failure of the request to `request` (`tag X as Y`), waited for up to `limit`: a
    /// timeout says how long and which limit that was.
    fn failed(&self, limit: Limit, request: String, err: BollardError) -> EngineError {
        match err {
            BollardError::RequestTimeoutError => EngineError::NoAnswer {
                endpoint: self.describe(),
                request: format!("`{request}`"),
                after: limit.after,
                limit: limit.name,
            },
            err => EngineError::Api(format!("cannot {request}: {}", api_message(err))),
        }
    }

    /// Where we connected, for messages and for other clients of the same engine
    /// (`unix:///var/run/docker.sock`, `tcp://host:2376`): the address as written.
    pub fn endpoint(&self) -> &str {
        &self.address.host
    }

    /// [`Engine::endpoint`] with where the address came from (`DOCKER_HOST`, a Docker context,
    /// the default socket), for messages.
    pub fn describe(&self) -> String {
        self.address.describe()
    }
}

/// The next item of `stream`, or `Err(limit)` when none comes within `limit`.
async fn next_within<S: Stream + Unpin>(
    stream: &mut S,
    limit: Limit,
) -> Result<Option<S::Item>, Limit> {
    tokio::time::timeout(limit.after, stream.next())
        .await
        .map_err(|_| limit)
}

/// Removes what this process made and has not removed yet (run containers, temporary tags:
/// see [`Engine::mark_temporary`]), for a process that a signal ends early. Every request
/// waits at most [`CLEANUP_TIMEOUT`], all at once. Returns one line per item that was there:
/// removed, or why not.
pub async fn remove_leftovers() -> Vec<String> {
    leftovers::remove_all(CLEANUP_TIMEOUT).await
}

/// The engine's own message for server and stream errors, bollard's display otherwise.
fn api_message(err: BollardError) -> String {
    api_message_ref(&err)
}

/// [`api_message`] of an error that is looked at again afterwards.
fn api_message_ref(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// The first 12 hex digits of a container or image id, as the docker CLI shows them.
fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shorter_stall_timeout_bounds_every_engine_request() {
        let secs = Duration::from_secs;
        let limit = Limit::new(secs(20), "the first-answer timeout", None);
        assert_eq!(
            (limit.after, limit.name),
            (secs(20), "the first-answer timeout")
        );
        let limit = Limit::new(secs(20), "the first-answer timeout", Some(secs(5)));
        assert_eq!((limit.after, limit.name), (secs(5), "--stall-timeout"));
        let limit = Limit::new(secs(30), "the clean-up timeout", Some(secs(120)));
        assert_eq!(
            (limit.after, limit.name),
            (secs(30), "the clean-up timeout")
        );
    }
}
