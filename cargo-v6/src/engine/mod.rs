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

mod address;
mod context_tar;
mod leftovers;
mod ssh;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::BuildInfo;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::{BollardRequest, Docker, body_try_stream};
use futures_util::{Stream, StreamExt, stream};
use tokio_util::bytes::Bytes;
use tokio_util::io::{ReaderStream, SyncIoBridge};

use crate::credentials::Credentials;
use crate::reference::TaggedImage;
use context_tar::{ContextSpec, TarError};
use leftovers::Leftover;

/// Timeout of ordinary requests (inspect, tag, create and start a container, the start of a
/// push) when no `--stall-timeout` is given.
const API_TIMEOUT: Duration = Duration::from_secs(120);

/// How long opening a TCP connection to the engine may take. Short: a host whose firewall
/// drops packets is found in seconds (the kernel would retry for about two minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the engine may take to give its first answer (the version request every
/// connection starts with; through ssh, the handshake too). Short: an engine that accepts
/// connections and never answers (a hung or frozen daemon) is found in seconds, not after
/// [`API_TIMEOUT`]. A shorter `--stall-timeout` shortens it further.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// How long each clean-up request (removing a container or a local tag) may take: clean-up
/// runs after a failure, often because the engine stopped answering, and must not wait out
/// [`API_TIMEOUT`] for an engine that will not answer. A shorter `--stall-timeout` shortens it.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout of the build request. bollard's timeout runs until the response headers arrive,
/// which for `/build` is after the whole context was uploaded and unpacked: large contexts on
/// slow storage (vfs copies everything) need far more than the default two minutes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Capacity of the pipe between the tar writer and the request body; also the write buffer.
const PIPE_CAPACITY: usize = 256 * 1024;

/// How many output lines of the current build step a [`EngineError::BuildStep`] keeps.
const KEPT_STEP_LINES: usize = 30;

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

/// What to build: the caller has already selected the context files and rendered the
/// Dockerfile; this module only ships them.
#[derive(Debug, Clone, Copy)]
pub struct BuildRequest<'a> {
    /// The context root; `files` are relative to it.
    pub context_dir: &'a Path,
    /// Selected files, directories and symlinks: relative, `/`-separated. Symlinks are sent
    /// as symlinks. A `.dockerignore` among them is sent with one line appended (see
    /// [`Engine::build`]).
    pub files: &'a [String],
    /// Name of the rendered Dockerfile at the context root, e.g. `.cargo-v6.Dockerfile`: a
    /// plain file name without glob characters. A selected file of that name is not sent.
    pub dockerfile_name: &'a str,
    /// The rendered Dockerfile, added to the context from memory.
    pub dockerfile: &'a str,
    /// The references to tag the result with; may be empty.
    pub tags: &'a [TaggedImage],
    /// `--build-arg`s.
    pub build_args: &'a BTreeMap<String, String>,
    /// Labels passed as build parameters (the classic builder adds one step per label, so the
    /// plan puts what it can into one `LABEL` instruction of the Dockerfile instead).
    pub labels: &'a BTreeMap<String, String>,
    /// Network mode of RUN steps (`host` when an engine without bridge must reach PyPI).
    pub network: Option<&'a str>,
    /// Target platform, e.g. `linux/amd64`.
    pub platform: Option<&'a str>,
    /// What the fingerprint saw of each file: the bytes sent are compared with it, and a file
    /// that changed fails the build. `None` sends the files as they are.
    pub expected: Option<&'a [crate::fingerprint::FileDigest]>,
}

/// Build progress, in the order the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A Dockerfile instruction starts (`Step 3/5 : RUN pip install .`).
    Step {
        /// 1-based step number.
        number: usize,
        /// Number of steps in the Dockerfile.
        total: usize,
        /// The instruction as the engine prints it (`RUN pip install .`).
        instruction: String,
    },
    /// One line of output: a RUN step's output or the builder's own remarks
    /// (` ---> Running in ...`). Without its newline.
    Output(String),
    /// A status message, e.g. pulling the base image (`<layer>: Downloading`).
    Status(String),
}

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
    /// A push would send registry credentials to the engine unencrypted over the network.
    #[error(
        "refusing to send the registry credentials to the Docker engine at {endpoint}: it is \
         reached over plain TCP at an address that is not a loopback IP address (a host name, \
         even `localhost`, may resolve off this machine), so they could cross the network in \
         clear text (in the X-Registry-Auth header of the push); use TLS (DOCKER_TLS_VERIFY=1 \
         and DOCKER_CERT_PATH), ssh://, a unix socket or tcp://127.0.0.1, or pass \
         --allow-insecure-engine to send them anyway"
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
    /// Connects to the engine the docker CLI would use: `DOCKER_HOST` (with
    /// `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`), else the Docker context named by
    /// `DOCKER_CONTEXT` or by `currentContext` in the Docker config, else the platform's
    /// default socket.
    pub async fn connect() -> Result<Engine, EngineError> {
        Engine::connect_with(None).await
    }

    /// [`Engine::connect`] for a publish: no request to the engine waits longer than
    /// `stall_timeout` for its answer (the first one included), and a push that makes no
    /// progress for that long is abandoned.
    pub async fn connect_with_stall_timeout(
        stall_timeout: Duration,
    ) -> Result<Engine, EngineError> {
        Engine::connect_with(Some(stall_timeout)).await
    }

    async fn connect_with(stall_timeout: Option<Duration>) -> Result<Engine, EngineError> {
        let env = |name: &str| std::env::var(name).ok();
        Engine::connect_address(address::resolve(&env)?, stall_timeout).await
    }

    /// Connects to `endpoint` as if it were `DOCKER_HOST` (`unix://...`, `tcp://...`,
    /// `ssh://...`; TLS from `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`) and negotiates the
    /// API version (the engine may be older than bollard's default, 1.41 on Debian's 20.10).
    /// The version request doubles as the reachability check.
    pub async fn connect_to(endpoint: &str) -> Result<Engine, EngineError> {
        let env = |name: &str| std::env::var(name).ok();
        let address = address::from_host(endpoint, address::Origin::Given, &env)?;
        Engine::connect_address(address, None).await
    }

    /// Connects to a resolved address; see [`Engine::connect_to`]. A TCP connection and the
    /// first answer each have a short timeout of their own ([`CONNECT_TIMEOUT`],
    /// [`FIRST_ANSWER_TIMEOUT`]), so that "nothing there" and "something there that does
    /// not answer" are told apart, and neither takes minutes.
    async fn connect_address(
        address: address::Address,
        stall_timeout: Option<Duration>,
    ) -> Result<Engine, EngineError> {
        let unreachable = |reason: String| EngineError::Unreachable {
            endpoint: address.describe(),
            reason,
        };
        let first_answer = Limit::new(
            FIRST_ANSWER_TIMEOUT,
            "the first-answer timeout",
            stall_timeout,
        );
        if let address::Transport::Tcp { host, port, .. } = &address.transport {
            let limit = first_answer.after.min(CONNECT_TIMEOUT);
            let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
            // Any other failure (refused, no such host) is reported by the request below,
            // in bollard's words.
            if tokio::time::timeout(limit, connect).await.is_err() {
                return Err(unreachable(format!(
                    "no TCP connection within {} s (the connect timeout): is the host up, \
                     and is the port open (a firewall may drop the packets)?",
                    limit.as_secs()
                )));
            }
        }
        let mut ssh_stderr = None;
        let timeout = first_answer.after.as_secs();
        let docker = match &address.transport {
            address::Transport::Local => Docker::connect_with_host(&address.host),
            address::Transport::Tcp {
                host,
                port,
                tls: None,
            } => Docker::connect_with_http(
                &format!("tcp://{}", host_port(host, *port)),
                timeout,
                bollard::API_DEFAULT_VERSION,
            ),
            address::Transport::Tcp {
                host,
                port,
                tls: Some(tls),
            } => {
                install_crypto_provider();
                // Without a client certificate (a context with only a CA), the key and
                // certificate paths name nothing: bollard then sends no certificate.
                let (cert, key) = tls.client.clone().unwrap_or_else(|| {
                    let none = tls.ca.with_file_name("cargo-v6-no-client-certificate");
                    (none.clone(), none)
                });
                Docker::connect_with_ssl(
                    &host_port(host, *port),
                    &key,
                    &cert,
                    &tls.ca,
                    timeout,
                    bollard::API_DEFAULT_VERSION,
                )
            }
            address::Transport::Ssh(target) => {
                let (docker, stderr) = ssh::connect(target, first_answer.after);
                ssh_stderr = Some(stderr);
                Ok(docker)
            }
        }
        .map_err(|err| unreachable(connect_reason(err)))?;
        let negotiated = docker
            .with_timeout(first_answer.after)
            .with_request_modifier(url_safe_registry_auth)
            .negotiate_version()
            .await;
        let docker = match negotiated {
            Ok(docker) => docker,
            Err(BollardError::RequestTimeoutError) => {
                return Err(EngineError::NoAnswer {
                    endpoint: address.describe(),
                    request: "its first request (it took the connection and said nothing)"
                        .to_owned(),
                    after: first_answer.after,
                    limit: first_answer.name,
                });
            }
            Err(err) => {
                let mut error = connect_error(&address, err);
                if let (Some(stderr), EngineError::Unreachable { reason, .. }) =
                    (&ssh_stderr, &mut error)
                    && let Some(words) = stderr.last_words().await
                {
                    *reason = format!("{reason}; ssh said: {words}");
                }
                return Err(error);
            }
        };
        let mut engine = Engine {
            docker,
            address,
            stall_timeout,
        };
        let limit = engine.answer_limit();
        engine.docker = engine.docker.with_timeout(limit.after);
        Ok(engine)
    }

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

    /// [`Engine::endpoint`] with where the address came from (`DOCKER_HOST`, a Docker context,
    /// the default socket), for messages.
    pub fn describe(&self) -> String {
        self.address.describe()
    }

    /// Builds with the classic builder, streaming the context, and tags the result with every
    /// reference in `request.tags`. Returns the image id (`sha256:...`).
    ///
    /// The context holds the selected files, the rendered Dockerfile and a `.dockerignore`
    /// that makes the engine drop the rendered Dockerfile before COPY: the user's own
    /// `.dockerignore` with one line naming the Dockerfile appended (the only difference a
    /// user can see, inside the image if their rules do not exclude `.dockerignore`), or a
    /// generated one that also excludes itself.
    pub async fn build(
        &self,
        request: &BuildRequest<'_>,
        on_event: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> Result<String, EngineError> {
        context_tar::validate_dockerfile_name(request.dockerfile_name)
            .map_err(|message| EngineError::Dockerfile { message })?;
        let labels: HashMap<&str, &str> = request
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let build_args: HashMap<&str, &str> = request
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut options = BuildImageOptionsBuilder::new()
            .dockerfile(request.dockerfile_name)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .buildargs(&build_args)
            .version(BuilderVersion::BuilderV1);
        let first_tag = request.tags.first().map(ToString::to_string);
        if let Some(first) = &first_tag {
            options = options.t(first);
        }
        if let Some(network) = request.network {
            options = options.networkmode(network);
        }
        if let Some(platform) = request.platform {
            options = options.platform(platform);
        }

        let spec = ContextSpec {
            context_dir: request.context_dir.to_owned(),
            files: request.files.to_vec(),
            dockerfile_name: request.dockerfile_name.to_owned(),
            dockerfile: request.dockerfile.to_owned(),
            expected: request.expected.map(|digests| {
                digests
                    .iter()
                    .map(|d| (d.path.clone(), d.clone()))
                    .collect()
            }),
        };
        let context_failure = Arc::new(Mutex::new(None));
        let body = context_body(spec, Arc::clone(&context_failure));
        let docker = self.docker.clone().with_timeout(BUILD_TIMEOUT);
        let mut stream = docker.build_image(options.build(), None, Some(body_try_stream(body)));

        let mut progress = BuildProgress::default();
        let mut image_id = None;
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(id) = info.aux.as_ref().and_then(|aux| aux.id.clone()) {
                        image_id = Some(id);
                    }
                    progress.on_info(info, on_event);
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        drop(stream);
        progress.flush(on_event);
        // A broken context explains any engine error that followed it.
        if let Some(err) = take_failure(&context_failure) {
            return Err(err);
        }
        if let Some(err) = failure {
            return Err(progress.into_error(err));
        }
        let image_id = image_id
            .ok_or_else(|| EngineError::Api("the build finished without an image id".into()))?;
        for reference in request.tags.iter().skip(1) {
            self.tag(&image_id, reference).await?;
        }
        Ok(image_id)
    }

    /// Tags `image_id` (or any reference) as `reference`.
    pub async fn tag(&self, image_id: &str, reference: &TaggedImage) -> Result<(), EngineError> {
        let repository = reference.image.to_string();
        let tag = reference.tag.as_str();
        let options = TagImageOptionsBuilder::new()
            .repo(&repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image_id, Some(options))
            .await
            .map_err(|err| {
                let request = format!("tag {image_id} as {repository}:{tag}");
                self.failed(self.answer_limit(), request, err)
            })
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
        let auth = credentials.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password().to_owned()),
            serveraddress: Some(registry.to_owned()),
            ..DockerCredentials::default()
        });
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

    /// Marks the local tag `reference` as temporary: when a signal ends the process before
    /// [`Engine::remove_tag`] removed it, [`remove_leftovers`] does. Mark it before the build
    /// that makes it: a signal may come between the engine's tagging and the build's end.
    pub fn mark_temporary(&self, reference: &TaggedImage) {
        leftovers::remember(&self.docker, Leftover::Tag(reference.to_string()));
    }

    /// Removes the local tag `reference` (not the image, while other tags name it); a tag that
    /// does not exist is not an error.
    pub async fn remove_tag(&self, reference: &TaggedImage) -> Result<(), EngineError> {
        let reference = reference.to_string();
        // Untagged parents stay: they are the build cache that a concurrent build (another
        // member of a workspace, another job on this engine) may be building on right now;
        // pruning them makes that build fail with "unable to find image".
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .noprune(true)
            .build();
        let limit = self.cleanup_limit();
        let removed = self
            .docker
            .clone()
            .with_timeout(limit.after)
            .remove_image(&reference, Some(options), None)
            .await;
        match removed {
            Ok(_)
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                leftovers::forget(&Leftover::Tag(reference));
                Ok(())
            }
            Err(err) => Err(self.failed(limit, format!("remove {reference}"), err)),
        }
    }

    /// The labels of a local image, or `None` when no such image exists.
    pub async fn image_labels(
        &self,
        reference: &str,
    ) -> Result<Option<BTreeMap<String, String>>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(
                image
                    .config
                    .and_then(|config| config.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            )),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(self.answer_limit(), format!("inspect {reference}"), err)),
        }
    }
}

/// One container to run: what the algorithm runs ([`Engine::create_container`]).
#[derive(Debug, Clone, Copy)]
pub struct ContainerSpec<'a> {
    /// Image id or reference, present in the engine.
    pub image: &'a str,
    /// The container's name (unique per run).
    pub name: &'a str,
    /// Environment variables.
    pub env: &'a BTreeMap<String, String>,
    /// Bind mounts.
    pub binds: &'a [Bind],
    /// Paths mounted as empty tmpfs.
    pub tmpfs: &'a [String],
    /// Network mode: `none` for no network at all.
    pub network: &'a str,
    /// Labels, to find the container again.
    pub labels: &'a BTreeMap<String, String>,
    /// Run with a pseudo-terminal (stdout and stderr then arrive as one stream).
    pub tty: bool,
}

/// A host path bind-mounted into a container. Needs an engine on this machine: the path is
/// the engine host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Absolute path on the engine's host.
    pub host: PathBuf,
    /// Absolute path inside the container.
    pub container: String,
    /// Read-only.
    pub read_only: bool,
}

/// One line a container wrote, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// On stdout.
    Stdout(String),
    /// On stderr.
    Stderr(String),
}

impl LogLine {
    /// The text.
    pub fn text(&self) -> &str {
        match self {
            LogLine::Stdout(line) | LogLine::Stderr(line) => line,
        }
    }
}

/// Containers: pull, create, start, follow the logs, wait, remove.
impl Engine {
    /// Pulls `reference` (`name:tag`, `name@sha256:...`) with `credentials` for its registry.
    pub async fn pull(
        &self,
        reference: &crate::reference::ImageRef,
        credentials: Option<&Credentials>,
        on_status: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), EngineError> {
        let registry = reference.name.domain();
        let text = reference.to_string();
        let auth = credentials.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password().to_owned()),
            serveraddress: Some(registry.to_owned()),
            ..DockerCredentials::default()
        });
        let options = bollard::query_parameters::CreateImageOptionsBuilder::new()
            .from_image(&text)
            .build();
        let docker = self.docker.clone().with_timeout(BUILD_TIMEOUT);
        let mut stream = docker.create_image(Some(options), None, auth);
        // The engine reports a pull's progress all along: a long silence is a stall.
        let limit = self.answer_limit();
        loop {
            let next = next_within(&mut stream, limit).await.map_err(|limit| {
                EngineError::Api(format!(
                    "cannot pull {text}: no progress for {} s ({}): the registry {registry}, \
                     or the engine, stopped answering",
                    limit.after.as_secs(),
                    limit.name
                ))
            })?;
            let Some(item) = next else { break };
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        // The registry's error, as the engine relays it: it may echo the
                        // credentials the engine sent.
                        let detail = crate::credentials::redact(&detail, credentials);
                        return Err(EngineError::Api(format!("cannot pull {text}: {detail}")));
                    }
                    if let Some(status) = info.status {
                        on_status(match info.id {
                            Some(id) => format!("{id}: {status}"),
                            None => status,
                        });
                    }
                }
                Err(err) => {
                    return Err(EngineError::Api(format!(
                        "cannot pull {text}: {}",
                        push_message(registry, credentials, err)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The environment (`K=V`) a local image sets, or `None` when no such image exists.
    pub async fn image_env(&self, reference: &str) -> Result<Option<Vec<String>>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(
                image
                    .config
                    .and_then(|config| config.env)
                    .unwrap_or_default(),
            )),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(self.answer_limit(), format!("inspect {reference}"), err)),
        }
    }

    /// Creates (does not start) a container; returns its id.
    pub async fn create_container(&self, spec: &ContainerSpec<'_>) -> Result<String, EngineError> {
        use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
        let mounts = spec
            .binds
            .iter()
            .map(|bind| Mount {
                source: Some(bind.host.to_string_lossy().into_owned()),
                target: Some(bind.container.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(bind.read_only),
                ..Mount::default()
            })
            .collect();
        let tmpfs = spec
            .tmpfs
            .iter()
            .map(|path| (path.clone(), String::new()))
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(
                spec.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network.to_owned()),
                mounts: Some(mounts),
                tmpfs: Some(tmpfs),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(spec.name)
            .build();
        // Remembered by name before it exists: a signal during the request (which copies the
        // image on some storage drivers) must not leave it behind.
        let named = Leftover::Container(spec.name.to_owned());
        leftovers::remember(&self.docker, named.clone());
        let created = self.docker.create_container(Some(options), body).await;
        leftovers::forget(&named);
        let id = created.map(|created| created.id).map_err(|err| {
            let request = format!("create a container of {}", spec.image);
            self.failed(self.answer_limit(), request, err)
        })?;
        leftovers::remember(&self.docker, Leftover::Container(id.clone()));
        Ok(id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.start_container(id, None).await.map_err(|err| {
            let request = format!("start container {}", short_id(id));
            self.failed(self.answer_limit(), request, err)
        })
    }

    /// Follows a container's stdout and stderr from its start until it exits, line by line.
    pub async fn follow_logs(
        &self,
        id: &str,
        on_line: &mut (dyn FnMut(LogLine) + Send),
    ) -> Result<(), EngineError> {
        use bollard::container::LogOutput;
        let options = bollard::query_parameters::LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut out = Vec::new();
        let mut err = Vec::new();
        let failure = loop {
            let Some(item) = stream.next().await else {
                break None;
            };
            match item {
                Ok(LogOutput::StdErr { message }) => {
                    split_lines(&mut err, &message, &mut |l| on_line(LogLine::Stderr(l)))
                }
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message },
                ) => split_lines(&mut out, &message, &mut |l| on_line(LogLine::Stdout(l))),
                Err(e) => break Some(e),
            }
        };
        if !out.is_empty() {
            on_line(LogLine::Stdout(decode_line(&out)));
        }
        if !err.is_empty() {
            on_line(LogLine::Stderr(decode_line(&err)));
        }
        match failure {
            None => Ok(()),
            Some(e) => Err(EngineError::Api(format!(
                "cannot read the logs of container {}: {}",
                short_id(id),
                api_message(e)
            ))),
        }
    }

    /// Waits until a container stops; returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64, EngineError> {
        let docker = self.docker.clone().with_timeout(BUILD_TIMEOUT);
        let mut stream = docker.wait_container(id, None);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard turns a non-zero exit into an error; it is an answer here.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(err)) => Err(EngineError::Api(format!(
                "cannot wait for container {}: {}",
                short_id(id),
                api_message(err)
            ))),
            None => Err(EngineError::Api(format!(
                "the engine did not say how container {} ended",
                short_id(id)
            ))),
        }
    }

    /// Removes a container, stopping it first if it runs; one that is gone is not an error.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let limit = self.cleanup_limit();
        let removed = self
            .docker
            .clone()
            .with_timeout(limit.after)
            .remove_container(id, Some(options))
            .await;
        match removed {
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                leftovers::forget(&Leftover::Container(id.to_owned()));
                Ok(())
            }
            Err(err) => {
                let request = format!("remove container {}", short_id(id));
                Err(self.failed(limit, request, err))
            }
        }
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

/// Appends `bytes` to `partial` and hands every complete line to `on_line` (a character split
/// between two chunks is joined before it is decoded).
fn split_lines(partial: &mut Vec<u8>, bytes: &[u8], on_line: &mut dyn FnMut(String)) {
    partial.extend_from_slice(bytes);
    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = partial.drain(..=end).collect();
        on_line(decode_line(&line));
    }
}

fn decode_line(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.trim_end_matches(['\n', '\r']).to_owned()
}

/// The first 12 hex digits of a container or image id, as the docker CLI shows them.
fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The request body of a build: the tar written on a blocking thread into a pipe, read as a
/// byte stream. When the writer fails for a context file, the error is stored in `failure`
/// and also ends the body with an `Err`, which aborts the request: closing the pipe alone
/// would look like a complete (truncated) context to the engine.
fn context_body(
    spec: ContextSpec,
    failure: Arc<Mutex<Option<EngineError>>>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (reader, writer) = tokio::io::duplex(PIPE_CAPACITY);
    // Created here, inside the runtime: the bridge captures the runtime handle.
    let bridge = SyncIoBridge::new(writer);
    let writer_task = tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(PIPE_CAPACITY, bridge);
        let out = context_tar::write_context(&spec, out)?;
        let mut bridge = out
            .into_inner()
            .map_err(|err| TarError::Sink(err.into_error()))?;
        bridge.shutdown().map_err(TarError::Sink)
    });
    let outcome = stream::once(async move {
        let err = match writer_task.await {
            Ok(Ok(())) => return None,
            Ok(Err(TarError::Source { path, source })) => EngineError::Io { path, source },
            Ok(Err(TarError::Changed { path, what })) => EngineError::ContextChanged { path, what },
            // The request is gone already; its own error is the one to report.
            Ok(Err(err @ TarError::Sink(_))) => return Some(Err(std::io::Error::other(err))),
            Err(join) => EngineError::Api(format!("the build context writer failed: {join}")),
        };
        let message = err.to_string();
        *failure.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(err);
        Some(Err(std::io::Error::other(message)))
    })
    .filter_map(std::future::ready);
    ReaderStream::new(reader).chain(outcome)
}

fn take_failure(failure: &Mutex<Option<EngineError>>) -> Option<EngineError> {
    failure
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .take()
}

/// Turns the build stream's chunks into lines and events, and remembers the current step and
/// its last output lines for [`EngineError::BuildStep`]. The engine sends `Step n/m : ...`
/// and its newline as separate chunks, so chunks are joined into lines first.
#[derive(Default)]
struct BuildProgress {
    partial: String,
    step: Option<String>,
    step_output: VecDeque<String>,
}

impl BuildProgress {
    fn on_info(&mut self, info: BuildInfo, on_event: &mut (dyn FnMut(BuildEvent) + Send)) {
        if let Some(text) = info.stream {
            self.partial.push_str(&text);
            while let Some(end) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=end).collect();
                self.line(line.trim_end_matches(['\n', '\r']), on_event);
            }
        }
        if let Some(status) = info.status {
            on_event(BuildEvent::Status(match info.id {
                Some(id) => format!("{id}: {status}"),
                None => status,
            }));
        }
    }

    fn flush(&mut self, on_event: &mut (dyn FnMut(BuildEvent) + Send)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(line.trim_end_matches('\r'), on_event);
        }
    }

    fn line(&mut self, line: &str, on_event: &mut (dyn FnMut(BuildEvent) + Send)) {
        let line = strip_colors(line);
        if let Some((number, total, instruction)) = parse_step(&line) {
            self.step = Some(line.clone());
            self.step_output.clear();
            on_event(BuildEvent::Step {
                number,
                total,
                instruction: instruction.to_owned(),
            });
            return;
        }
        // The builder's own remarks say nothing about why a step failed.
        let remark =
            line.starts_with(" ---> ") || line.starts_with("Removing intermediate container ");
        if !remark {
            if self.step_output.len() == KEPT_STEP_LINES {
                self.step_output.pop_front();
            }
            self.step_output.push_back(line.clone());
        }
        on_event(BuildEvent::Output(line));
    }

    fn into_error(self, err: BollardError) -> EngineError {
        match err {
            BollardError::DockerStreamError { error } => match self.step {
                Some(step) => EngineError::BuildStep {
                    step,
                    output: Vec::from(self.step_output).join("\n"),
                    message: error,
                },
                None => EngineError::Api(format!("the build failed: {error}")),
            },
            BollardError::DockerResponseServerError {
                status_code: 400,
                message,
            } => EngineError::Dockerfile { message },
            other => EngineError::Api(format!("the build failed: {}", api_message(other))),
        }
    }
}

/// Removes ANSI colour sequences (`ESC [ ... m`): the classic builder wraps a RUN step's
/// stderr in `ESC[91m` ... `ESC[0m`, which would otherwise end up in messages and JSON.
fn strip_colors(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            out.push('\x1b');
            rest = &rest[start + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `Step 3/5 : RUN false` -> (3, 5, "RUN false").
fn parse_step(line: &str) -> Option<(usize, usize, &str)> {
    let (counts, instruction) = line.strip_prefix("Step ")?.split_once(" : ")?;
    let (number, total) = counts.split_once('/')?;
    Some((number.parse().ok()?, total.parse().ok()?, instruction))
}

/// bollard encodes `X-Registry-Auth` with the standard base64 alphabet; the engine decodes the
/// URL-safe one and, when the encoding contains `+` or `/`, silently pushes without
/// credentials ("no basic auth credentials"). Rewrite the header into the URL-safe alphabet.
fn url_safe_registry_auth(mut request: BollardRequest) -> BollardRequest {
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
fn push_message(registry: &str, credentials: Option<&Credentials>, err: BollardError) -> String {
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

/// The engine's own message for server and stream errors, bollard's display otherwise.
fn api_message(err: BollardError) -> String {
    api_message_ref(&err)
}

fn api_message_ref(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Connection failures, with the causes bollard's own message hides ("client error
/// (Connect)" alone does not say "Connection refused").
/// `host:port`, with brackets around an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

/// Installs the process's rustls crypto provider (aws-lc-rs, the one oci-client's reqwest
/// uses too) unless one is installed already. bollard's TLS client asks for the process
/// default and panics ("no process-level CryptoProvider available") without one, which rustls
/// only installs by itself while exactly one provider feature is compiled in.
fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // An error means another provider was installed first: that one serves as well.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// The failure of the first request to the engine at `address`, as the error that says what
/// to do: TLS failures name the certificates, a TLS engine spoken to in plain HTTP says to
/// turn TLS on, anything else is unreachable.
fn connect_error(address: &address::Address, err: BollardError) -> EngineError {
    let tls = match &address.transport {
        address::Transport::Tcp { tls, .. } => tls.as_ref(),
        _ => None,
    };
    if let BollardError::DockerResponseServerError {
        status_code: 400,
        message,
    } = &err
        && message.contains("HTTP request to an HTTPS server")
    {
        return EngineError::Address {
            what: address.describe(),
            reason: "the engine speaks only TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH \
                     to a directory holding ca.pem, cert.pem and key.pem (or use a Docker \
                     context with TLS material)"
                .to_owned(),
        };
    }
    if let Some(tls) = tls
        && let Some(reason) = tls_failure(&err).or_else(|| closed_early(&err))
    {
        return EngineError::Tls {
            endpoint: address.describe(),
            reason,
            from: tls.from.clone(),
        };
    }
    if let Some(answer) = not_an_engine(&err) {
        return EngineError::NotAnEngine {
            endpoint: address.describe(),
            answer,
        };
    }
    EngineError::Unreachable {
        endpoint: address.describe(),
        reason: connect_reason(err),
    }
}

/// What an address that answers HTTP, but not as an engine does, said to the version request:
/// its status and the first line (or the title) of its page, shortened. An engine answers
/// with its version in JSON, and its errors are JSON messages of one line; anything else (a
/// 404, a page of HTML, JSON without an API version) is something else listening there.
fn not_an_engine(err: &BollardError) -> Option<String> {
    /// Longest piece of the page quoted.
    const QUOTED: usize = 80;
    match err {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } if *status_code == 404 || message.contains('<') || message.trim().contains('\n') => {
            let title = message
                .split_once("<title>")
                .and_then(|(_, rest)| rest.split_once("</title>"))
                .map(|(title, _)| title);
            let line = title
                .or_else(|| message.lines().map(str::trim).find(|l| !l.is_empty()))
                .unwrap_or_default()
                .trim();
            let quoted = match line.char_indices().nth(QUOTED) {
                Some((cut, _)) => format!("{}...", &line[..cut]),
                None => line.to_owned(),
            };
            Some(match quoted.is_empty() {
                true => format!("HTTP {status_code}"),
                false => format!("HTTP {status_code}: {quoted}"),
            })
        }
        BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. } => {
            Some("its answer to the version request is not the engine's JSON".to_owned())
        }
        BollardError::APIVersionParseError {} => {
            Some("its answer to the version request names no API version".to_owned())
        }
        _ => None,
    }
}

/// The TLS failure in `err`'s chain of causes, in words, if there is one.
fn tls_failure(err: &BollardError) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls_reason(tls));
        }
        // io::Error's source() skips the error it wraps (hyper-rustls nests two): look inside.
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

/// A TLS connection the engine closed before answering, without a TLS alert reaching the
/// client: with TLS 1.3 the client finishes its handshake first and the engine checks the
/// client certificate after, so its refusal may arrive as a bare close ("connection was not
/// ready", "connection closed before message completed", a reset) rather than an alert.
fn closed_early(err: &BollardError) -> Option<String> {
    let closed_io = |io: &std::io::Error| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe
        )
    };
    // bollard's I/O error is transparent: its source() skips the io::Error it holds.
    let mut closed = matches!(err, BollardError::IOError { err } if closed_io(err));
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = next.filter(|_| !closed) {
        let text = cause.to_string();
        closed = text.contains("connection was not ready")
            || text.contains("connection closed before message completed")
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(closed_io);
        next = cause.source();
    }
    closed.then(|| {
        "the engine closed the TLS connection before answering: most likely it refused the client certificate (as it does for one from another CA)".to_string()
    })
}

/// What a rustls error means for the user of a Docker engine.
fn tls_reason(err: &rustls::Error) -> String {
    use rustls::AlertDescription as Alert;
    match err {
        rustls::Error::AlertReceived(Alert::BadCertificate | Alert::CertificateRequired) => {
            format!("the engine refused the client certificate ({err})")
        }
        rustls::Error::AlertReceived(Alert::UnknownCA) => {
            format!("the engine does not know the CA of the client certificate ({err})")
        }
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            format!("the engine's certificate is not signed by the CA in ca.pem ({err})")
        }
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        ) => format!("the engine's certificate is not issued for this address ({err})"),
        rustls::Error::InvalidCertificate(_) => {
            format!("the engine's certificate is not valid ({err})")
        }
        other => other.to_string(),
    }
}

fn connect_reason(err: BollardError) -> String {
    if let BollardError::SocketNotFoundError(path) = &err {
        return format!("no socket at {path}");
    }
    let mut reason = api_message_ref(&err);
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        source = cause.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::CredentialSource;

    #[test]
    fn a_tls_connection_closed_before_any_answer_is_named_as_a_refusal() {
        let reset = BollardError::IOError {
            err: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"),
        };
        let reason = closed_early(&reset).unwrap();
        assert!(
            reason.contains("refused the client certificate"),
            "{reason}"
        );
        let refused = BollardError::IOError {
            err: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        };
        assert_eq!(closed_early(&refused), None);
    }

    #[test]
    fn an_http_answer_that_is_not_the_engines_is_named_by_its_status_and_title() {
        let page = |status_code, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        };
        let html = "<html>\n<head><title>404 Not Found</title></head>\n<body>secret</body>";
        assert_eq!(
            not_an_engine(&page(404, html)).as_deref(),
            Some("HTTP 404: 404 Not Found")
        );
        let long = format!("{}\nsecond line", "x".repeat(200));
        let answer = not_an_engine(&page(502, &long)).unwrap();
        assert!(answer.starts_with("HTTP 502: xxx") && answer.ends_with("..."));
        assert!(
            !answer.contains("second line") && answer.len() < 100,
            "{answer}"
        );
        assert_eq!(
            not_an_engine(&page(404, "")).as_deref(),
            Some("HTTP 404"),
            "nothing to quote"
        );
        // An engine's own error: one line of JSON message, left to the usual report.
        assert_eq!(not_an_engine(&page(500, "client version too new")), None);
        let json = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        assert!(not_an_engine(&BollardError::JsonSerdeError { err: json }).is_some());
        assert!(not_an_engine(&BollardError::APIVersionParseError {}).is_some());
        assert_eq!(not_an_engine(&BollardError::RequestTimeoutError), None);
    }

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

    #[test]
    fn step_lines_are_parsed() {
        assert_eq!(
            parse_step("Step 3/5 : RUN false"),
            Some((3, 5, "RUN false"))
        );
        assert_eq!(
            parse_step("Step 12/12 : COPY . /app"),
            Some((12, 12, "COPY . /app"))
        );
        assert_eq!(parse_step(" ---> Running in 1234"), None);
        assert_eq!(parse_step("Step x/5 : RUN"), None);
    }

    #[test]
    fn colour_sequences_are_removed() {
        assert_eq!(strip_colors("\x1b[91mtwo"), "two");
        assert_eq!(strip_colors("\x1b[0mRemoving x"), "Removing x");
        assert_eq!(strip_colors("a\x1b[1;31mb\x1b[0m"), "ab");
        assert_eq!(strip_colors("lone \x1b here"), "lone \x1b here");
    }

    #[test]
    fn registry_auth_uses_the_url_safe_alphabet() {
        assert_eq!(url_safe_base64("ab+c/d=="), "ab-c_d==");
    }

    #[test]
    fn build_output_is_split_into_lines_and_a_failing_step_keeps_its_output() {
        let mut events = Vec::new();
        let mut progress = BuildProgress::default();
        let chunks = [
            "Step 1/2 : FROM x",
            "\n",
            " ---> abc\n",
            "Step 2/2 : RUN false",
            "\n",
            " ---> Running in 123\n",
        ];
        let mut on_event = |e| events.push(e);
        for chunk in chunks.into_iter().chain(["partial ", "line\nunterminated"]) {
            let info = BuildInfo {
                stream: Some(chunk.into()),
                ..BuildInfo::default()
            };
            progress.on_info(info, &mut on_event);
        }
        progress.flush(&mut on_event);
        let err = progress.into_error(BollardError::DockerStreamError {
            error: "returned a non-zero code: 1".into(),
        });
        assert_eq!(
            events,
            [
                BuildEvent::Step {
                    number: 1,
                    total: 2,
                    instruction: "FROM x".into()
                },
                BuildEvent::Output(" ---> abc".into()),
                BuildEvent::Step {
                    number: 2,
                    total: 2,
                    instruction: "RUN false".into()
                },
                BuildEvent::Output(" ---> Running in 123".into()),
                BuildEvent::Output("partial line".into()),
                BuildEvent::Output("unterminated".into()),
            ]
        );
        match err {
            EngineError::BuildStep {
                step,
                output,
                message,
            } => {
                assert_eq!(step, "Step 2/2 : RUN false");
                assert_eq!(output, "partial line\nunterminated");
                assert_eq!(message, "returned a non-zero code: 1");
            }
            other => panic!("{other:?}"),
        }
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

    #[test]
    fn container_output_is_split_into_lines_across_chunks() {
        let mut partial = Vec::new();
        let mut lines = Vec::new();
        // "é" split between two chunks, a CRLF, and an unterminated tail.
        for chunk in [&b"info > a\nin\xc3"[..], b"\xa9\r\n", b"tail"] {
            split_lines(&mut partial, chunk, &mut |l| lines.push(l));
        }
        assert_eq!(lines, ["info > a", "iné"]);
        assert_eq!(decode_line(&partial), "tail");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[tokio::test]
    async fn unreachable_engine_is_one_clear_line() {
        for endpoint in [
            "unix:///nonexistent/cargo-v6/docker.sock",
            "tcp://127.0.0.1:1",
        ] {
            let err = Engine::connect_to(endpoint).await.unwrap_err();
            assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(endpoint), "{message}");
            assert!(message.contains("DOCKER_HOST"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
