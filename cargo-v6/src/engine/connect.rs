//! Connecting to the engine: the address the docker CLI would use, a short timeout for the TCP
//! connection and for the first answer, and the failure of that first request in words that
//! say what to do (turn TLS on, check the certificates, the address is not an engine, nothing
//! listens there).

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;

use super::push::url_safe_registry_auth;
use super::{Engine, EngineError, Limit, address, api_message_ref, ssh};

/// How long opening a TCP connection to the engine may take. Short: a host whose firewall
/// drops packets is found in seconds (the kernel would retry for about two minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the engine may take to give its first answer (the version request every
/// connection starts with; through ssh, the handshake too). Short: an engine that accepts
/// connections and never answers (a hung or frozen daemon) is found in seconds, not after
/// [`API_TIMEOUT`](super::API_TIMEOUT). A shorter `--stall-timeout` shortens it further.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

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
}

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

/// Connection failures, with the causes bollard's own message hides ("client error
/// (Connect)" alone does not say "Connection refused").
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
