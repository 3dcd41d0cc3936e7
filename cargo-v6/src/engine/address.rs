//! Where the engine is and how to reach it, resolved as the docker CLI resolves it:
//!
//! 1. `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` for `tcp://`);
//! 2. else the Docker context named by `DOCKER_CONTEXT`, else by `currentContext` in
//!    `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): its endpoint is read from
//!    `contexts/meta/<sha256 of the name>/meta.json` and its TLS material from
//!    `contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem`; the context `default` is
//!    the default socket;
//! 3. else the platform's default socket.
//!
//! Accepted addresses: `unix:///path`, `tcp://HOST[:PORT]` (`http://` is taken as `tcp://`),
//! `ssh://[USER@]HOST[:PORT]`, and `npipe:////./pipe/NAME` on Windows. Everything here is
//! pure but for reading the context files; the environment comes in as a lookup so tests
//! never touch the process environment.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::EngineError;

/// The engine's default address when nothing else names one.
#[cfg(unix)]
pub(super) const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// The engine's default address when nothing else names one.
#[cfg(windows)]
pub(super) const DEFAULT_DOCKER_HOST: &str = "npipe:////./pipe/docker_engine";

/// The engine's port when `tcp://HOST` names none (the docker CLI's defaults).
const DEFAULT_TCP_PORT: u16 = 2375;
/// The same with TLS.
const DEFAULT_TLS_PORT: u16 = 2376;

/// The accepted forms, for error messages.
#[cfg(unix)]
const ACCEPTED: &str = "unix:///path/to/docker.sock, tcp://HOST:PORT (TLS with DOCKER_TLS_VERIFY=1) or ssh://[USER@]HOST[:PORT]";
/// The accepted forms, for error messages.
#[cfg(windows)]
const ACCEPTED: &str = "npipe:////./pipe/NAME, tcp://HOST:PORT (TLS with DOCKER_TLS_VERIFY=1) or ssh://[USER@]HOST[:PORT]";

/// An environment lookup: `std::env::var` in the program, a map in tests.
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A resolved engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Address {
    /// The address as written (`tcp://10.0.0.5:2376`); what [`super::Engine::endpoint`] gives.
    pub host: String,
    /// How to reach it.
    pub transport: Transport,
    /// Where the address came from.
    pub origin: Origin,
}

/// How the engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Transport {
    /// A unix socket (or, on Windows, a named pipe), given by its full address.
    Local,
    /// TCP, plain or TLS.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
        /// TLS material; `None` is plain HTTP.
        tls: Option<Tls>,
    },
    /// `docker system dial-stdio` on the remote, through the system's `ssh`.
    Ssh(SshTarget),
}

/// The files of a TLS connection with client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tls {
    /// The CA that signed the engine's certificate.
    pub ca: PathBuf,
    /// The client certificate and its key; `None` when the context has none (the engine then
    /// must not require one).
    pub client: Option<(PathBuf, PathBuf)>,
    /// Where the files come from, for messages (`DOCKER_CERT_PATH=/certs`, `context `x``).
    pub from: String,
}

/// An `ssh://` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SshTarget {
    /// `USER@`, if given.
    pub user: Option<String>,
    /// The host.
    pub host: String,
    /// `:PORT`, if given.
    pub port: Option<u16>,
}

/// Where an address came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// `DOCKER_HOST`.
    DockerHost,
    /// A Docker context.
    Context {
        /// Its name.
        name: String,
        /// How it was chosen: `DOCKER_CONTEXT`, or `currentContext in PATH`.
        via: String,
    },
    /// Nothing named one: the platform's default.
    Default,
    /// Given by the caller ([`super::Engine::connect_to`]).
    Given,
}

impl Address {
    /// Whether registry credentials sent to this engine (the `X-Registry-Auth` header of a
    /// push) would cross a network unencrypted: plain TCP to anything but loopback. A unix
    /// socket, a named pipe, TLS and ssh keep them private; so does loopback TCP, which never
    /// leaves the machine.
    pub fn sends_credentials_in_clear(&self) -> bool {
        match &self.transport {
            Transport::Tcp {
                host, tls: None, ..
            } => !is_loopback(host),
            _ => false,
        }
    }

    /// The address with where it came from, for messages: `tcp://h:2376 (Docker context
    /// `remote`, from DOCKER_CONTEXT)`.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::DockerHost | Origin::Given => self.host.clone(),
            Origin::Context { name, via } => {
                format!("{} (Docker context `{name}`, from {via})", self.host)
            }
            Origin::Default => format!("{} (the default socket)", self.host),
        }
    }
}

/// Loopback IP literals only: `127.0.0.0/8`, `::1` (also as `::ffff:127.x.y.z`). No name
/// counts, `localhost` included: a hosts file or a container's resolver can point any name
/// elsewhere, and resolving it here would not help, because the connection resolves it again
/// later and may get another answer (DNS, round robin, a changed hosts file). An address that
/// is loopback by how it is written stays loopback.
pub(super) fn is_loopback(host: &str) -> bool {
    match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Resolves the engine's address from the environment and the Docker config, in the docker
/// CLI's order (see the module documentation).
pub(super) fn resolve(env: Env<'_>) -> Result<Address, EngineError> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(host) = var("DOCKER_HOST") {
        return from_host(&host, Origin::DockerHost, env);
    }
    let config_dir = config_dir(env);
    let chosen = match var("DOCKER_CONTEXT") {
        Some(name) => Some((name, "DOCKER_CONTEXT".to_owned())),
        None => match &config_dir {
            Some(dir) => current_context(&dir.join("config.json"))?,
            None => None,
        },
    };
    match chosen {
        Some((name, via)) if name != "default" => {
            let Some(dir) = config_dir else {
                return Err(address_error(
                    format!("Docker context `{name}` (from {via})"),
                    "neither DOCKER_CONFIG nor HOME is set, so its files cannot be found"
                        .to_owned(),
                ));
            };
            from_context(&dir, &name, &via)
        }
        _ => from_host(DEFAULT_DOCKER_HOST, Origin::Default, env),
    }
}

/// Parses `host` (a `DOCKER_HOST` value). `tcp://` gets TLS from `DOCKER_TLS_VERIFY` and
/// `DOCKER_CERT_PATH` as with the docker CLI.
pub(super) fn from_host(host: &str, origin: Origin, env: Env<'_>) -> Result<Address, EngineError> {
    let what = match origin {
        Origin::DockerHost => format!("DOCKER_HOST={host}"),
        _ => host.to_owned(),
    };
    let tls = |default_port| tls_from_env(env, &what).map(|tls| (tls, default_port));
    parse(host, origin.clone(), &what, tls)
}

/// Parses `host`; `tls` is asked for the TLS material of a `tcp://` address.
fn parse(
    host: &str,
    origin: Origin,
    what: &str,
    tls: impl FnOnce(u16) -> Result<(Option<Tls>, u16), EngineError>,
) -> Result<Address, EngineError> {
    let bad = |reason: String| address_error(what.to_owned(), reason);
    let Some((scheme, rest)) = host.split_once("://") else {
        return Err(bad(format!(
            "an engine address starts with a scheme: use {ACCEPTED}"
        )));
    };
    let transport = match scheme {
        #[cfg(unix)]
        "unix" => {
            if rest.is_empty() {
                return Err(bad("no socket path after unix://".to_owned()));
            }
            Transport::Local
        }
        #[cfg(windows)]
        "npipe" => {
            if rest.is_empty() {
                return Err(bad("no pipe name after npipe://".to_owned()));
            }
            Transport::Local
        }
        "tcp" | "http" => {
            let (name, port) = host_and_port(rest).map_err(bad)?;
            let (tls, default_port) = tls(DEFAULT_TLS_PORT)?;
            let default_port = match tls {
                Some(_) => default_port,
                None => DEFAULT_TCP_PORT,
            };
            Transport::Tcp {
                host: name,
                port: port.unwrap_or(default_port),
                tls,
            }
        }
        "ssh" => {
            let (user, rest) = match rest.rsplit_once('@') {
                Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
                Some(_) => return Err(bad("empty user name before @".to_owned())),
                None => (None, rest),
            };
            let (name, port) = host_and_port(rest).map_err(bad)?;
            // ssh would take either for an option.
            if name.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
                return Err(bad("a user or host name cannot start with `-`".to_owned()));
            }
            Transport::Ssh(SshTarget {
                user,
                host: name,
                port,
            })
        }
        other => {
            return Err(bad(format!(
                "`{other}://` is not an engine address this tool can use: use {ACCEPTED}"
            )));
        }
    };
    Ok(Address {
        host: host.to_owned(),
        transport,
        origin,
    })
}

/// `HOST[:PORT][/]` -> host (IPv6 without brackets) and port.
fn host_and_port(rest: &str) -> Result<(String, Option<u16>), String> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err("a path after the host is not supported".to_owned());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the host".to_owned())?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{after}` after the host")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    let port = match port {
        Some(text) => Some(
            text.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| format!("`{text}` is not a port"))?,
        ),
        None => None,
    };
    Ok((host.to_owned(), port))
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
fn config_dir(env: Env<'_>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".docker")))
}

/// TLS from `DOCKER_TLS_VERIFY` (any non-empty value, as the docker CLI) and
/// `DOCKER_CERT_PATH` (default: the Docker config directory): all three files are required.
fn tls_from_env(env: Env<'_>, what: &str) -> Result<Option<Tls>, EngineError> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    if var("DOCKER_TLS_VERIFY").is_none() {
        if var("DOCKER_TLS").is_some() {
            return Err(address_error(
                what.to_owned(),
                "DOCKER_TLS without DOCKER_TLS_VERIFY (TLS without checking the engine's \
                 certificate) is not supported: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH"
                    .to_owned(),
            ));
        }
        return Ok(None);
    }
    let (dir, from) = match var("DOCKER_CERT_PATH") {
        Some(dir) => (PathBuf::from(&dir), format!("DOCKER_CERT_PATH={dir}")),
        None => match config_dir(env) {
            Some(dir) => {
                let from = format!("{} (DOCKER_CERT_PATH is not set)", dir.display());
                (dir, from)
            }
            None => {
                return Err(address_error(
                    what.to_owned(),
                    "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME is".to_owned(),
                ));
            }
        },
    };
    let tls = Tls {
        ca: dir.join("ca.pem"),
        client: Some((dir.join("cert.pem"), dir.join("key.pem"))),
        from,
    };
    check_tls_files(&tls, what)?;
    Ok(Some(tls))
}

/// Reads each TLS file once, so that a missing or malformed one is named now rather than
/// becoming a handshake failure (bollard drops a client key it cannot read silently, and the
/// engine then says only that no certificate came).
pub(super) fn check_tls_files(tls: &Tls, what: &str) -> Result<(), EngineError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &Path, reason: String| {
        address_error(
            what.to_owned(),
            format!("{} (TLS files from {}): {reason}", path.display(), tls.from),
        )
    };
    let certificates = |path: &Path| -> Result<(), EngineError> {
        let count = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(path, pem_reason(e)))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(path, pem_reason(e)))?
            .len();
        match count {
            0 => Err(bad(path, "holds no PEM certificate".to_owned())),
            _ => Ok(()),
        }
    };
    certificates(&tls.ca)?;
    if let Some((cert, key)) = &tls.client {
        certificates(cert)?;
        PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                bad(key, "holds no PEM private key".to_owned())
            }
            other => bad(key, pem_reason(other)),
        })?;
    }
    Ok(())
}

/// A PEM failure in words; a missing file says so plainly.
fn pem_reason(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "no such file".to_owned()
        }
        rustls_pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        rustls_pki_types::pem::Error::NoItemsFound => "holds nothing in PEM format".to_owned(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// `currentContext` of the Docker config at `path`, with how it was chosen. A missing or empty
/// file, or no `currentContext`, is none.
fn current_context(path: &Path) -> Result<Option<(String, String)>, EngineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(address_error(
                format!("Docker config {}", path.display()),
                format!("cannot read it to find `currentContext`: {e}"),
            ));
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        address_error(
            format!("Docker config {}", path.display()),
            format!("not valid JSON ({e}), so its `currentContext` cannot be read"),
        )
    })?;
    Ok(config
        .get("currentContext")
        .and_then(|name| name.as_str())
        .filter(|name| !name.is_empty())
        .map(|name| {
            (
                name.to_owned(),
                format!("currentContext in {}", path.display()),
            )
        }))
}

/// The endpoint of the Docker context `name` in the config directory `dir`.
fn from_context(dir: &Path, name: &str, via: &str) -> Result<Address, EngineError> {
    let what = format!("Docker context `{name}` (from {via})");
    let bad = |reason: String| address_error(what.clone(), reason);
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta_path = dir.join("contexts/meta").join(&id).join("meta.json");
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(format!(
                "no such context: {} does not exist (`docker context ls` lists them)",
                meta_path.display()
            )));
        }
        Err(e) => return Err(bad(format!("cannot read {}: {e}", meta_path.display()))),
    };
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{} is not valid JSON ({e})", meta_path.display())))?;
    let endpoint = meta.pointer("/Endpoints/docker");
    let Some(host) = endpoint
        .and_then(|e| e.get("Host"))
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
    else {
        return Err(bad(format!(
            "{} has no Endpoints.docker.Host",
            meta_path.display()
        )));
    };
    let skip_verify = endpoint
        .and_then(|e| e.get("SkipTLSVerify"))
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let origin = Origin::Context {
        name: name.to_owned(),
        via: via.to_owned(),
    };
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let tls = |_default_port| {
        let file = |name: &str| Some(tls_dir.join(name)).filter(|path| path.exists());
        let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
        if skip_verify {
            return Err(bad(
                "the context skips verifying the engine's certificate (SkipTLSVerify), which \
                 is not supported: give it the engine's CA (`docker context update NAME \
                 --docker ca=PATH,...`)"
                    .to_owned(),
            ));
        }
        let client = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(bad(format!(
                    "{} has a client certificate without its key or a key without its \
                     certificate: both cert.pem and key.pem are needed",
                    tls_dir.display()
                )));
            }
        };
        let tls = match (ca, client) {
            (None, None) => return Ok((None, DEFAULT_TLS_PORT)),
            (Some(ca), client) => Tls {
                ca,
                client,
                from: format!("context `{name}`: {}", tls_dir.display()),
            },
            (None, Some(_)) => {
                return Err(bad(format!(
                    "{} has a client certificate but no ca.pem: a context without the \
                     engine's CA is not supported",
                    tls_dir.display()
                )));
            }
        };
        check_tls_files(&tls, &what)?;
        Ok((Some(tls), DEFAULT_TLS_PORT))
    };
    parse(host, origin, &what, tls)
}

/// An unusable engine address.
fn address_error(what: String, reason: String) -> EngineError {
    EngineError::Address { what, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::env;

    fn resolve_in(vars: &[(&str, &str)]) -> Result<Address, EngineError> {
        resolve(&env(vars))
    }

    /// PEM blocks of the right kinds: the checks here parse PEM, not the DER inside (the real
    /// certificates are made by openssl in tests/remote_engine.rs).
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    fn write_tls(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("ca.pem"), CERT).unwrap();
        std::fs::write(dir.join("cert.pem"), CERT).unwrap();
        std::fs::write(dir.join("key.pem"), KEY).unwrap();
    }

    /// Writes the Docker context `name` with `host` into the config directory `dir`, as
    /// `docker context create` does.
    fn write_context(dir: &Path, name: &str, host: &str, skip_verify: bool) -> PathBuf {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let meta = dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            serde_json::json!({
                "Name": name,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}}
            })
            .to_string(),
        )
        .unwrap();
        dir.join("contexts/tls").join(&id).join("docker")
    }

    #[test]
    fn docker_host_forms() {
        let a = resolve_in(&[("DOCKER_HOST", "unix:///run/docker.sock")]).unwrap();
        assert_eq!(a.transport, Transport::Local);
        assert_eq!(a.host, "unix:///run/docker.sock");
        assert_eq!(a.origin, Origin::DockerHost);

        let a = resolve_in(&[("DOCKER_HOST", "tcp://10.1.2.3:2375")]).unwrap();
        assert_eq!(
            a.transport,
            Transport::Tcp {
                host: "10.1.2.3".into(),
                port: 2375,
                tls: None
            }
        );
        // No port: the docker CLI's default.
        let a = resolve_in(&[("DOCKER_HOST", "tcp://engine.example")]).unwrap();
        assert!(matches!(a.transport, Transport::Tcp { port: 2375, .. }));
        let a = resolve_in(&[("DOCKER_HOST", "tcp://[::1]:4243/")]).unwrap();
        assert!(
            matches!(&a.transport, Transport::Tcp { host, port: 4243, .. } if host == "::1"),
            "{a:?}"
        );

        let a = resolve_in(&[("DOCKER_HOST", "ssh://me@build.example:2222")]).unwrap();
        assert_eq!(
            a.transport,
            Transport::Ssh(SshTarget {
                user: Some("me".into()),
                host: "build.example".into(),
                port: Some(2222)
            })
        );
        let a = resolve_in(&[("DOCKER_HOST", "ssh://build.example")]).unwrap();
        assert_eq!(
            a.transport,
            Transport::Ssh(SshTarget {
                user: None,
                host: "build.example".into(),
                port: None
            })
        );
        // DOCKER_TLS_VERIFY does not apply to unix sockets or ssh.
        let a = resolve_in(&[
            ("DOCKER_HOST", "unix:///run/docker.sock"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/nonexistent"),
        ])
        .unwrap();
        assert_eq!(a.transport, Transport::Local);
    }

    #[test]
    fn a_host_without_scheme_or_with_another_is_refused_listing_the_accepted_forms() {
        for host in [
            "/var/run/docker.sock",
            "localhost:2375",
            "fd://",
            "https://x:1",
        ] {
            let err = resolve_in(&[("DOCKER_HOST", host)]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("DOCKER_HOST={host}")), "{text}");
            assert!(text.contains("tcp://HOST:PORT"), "{text}");
            assert!(text.contains("ssh://"), "{text}");
            #[cfg(unix)]
            assert!(text.contains("unix:///path/to/docker.sock"), "{text}");
        }
        for (host, reason) in [
            ("tcp://", "no host"),
            ("tcp://h:99999", "`99999` is not a port"),
            ("tcp://h:2375/api", "path"),
            ("ssh://@h", "empty user"),
            ("unix://", "no socket path"),
            ("ssh://-oProxyCommand=x", "cannot start with `-`"),
        ] {
            let text = resolve_in(&[("DOCKER_HOST", host)])
                .unwrap_err()
                .to_string();
            assert!(text.contains(reason), "{host}: {text}");
        }
    }

    #[test]
    fn tls_from_the_environment_needs_all_three_files() {
        let certs = tempfile::tempdir().unwrap();
        write_tls(certs.path());
        let dir = certs.path().to_str().unwrap();
        let a = resolve_in(&[
            ("DOCKER_HOST", "tcp://engine.example"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", dir),
        ])
        .unwrap();
        let Transport::Tcp {
            port,
            tls: Some(tls),
            ..
        } = &a.transport
        else {
            panic!("{a:?}")
        };
        assert_eq!(*port, 2376, "TLS's default port");
        assert_eq!(tls.ca, certs.path().join("ca.pem"));
        assert_eq!(
            tls.client,
            Some((certs.path().join("cert.pem"), certs.path().join("key.pem")))
        );
        assert!(!a.sends_credentials_in_clear());

        // Without DOCKER_CERT_PATH: the Docker config directory, as the docker CLI.
        let a = resolve_in(&[
            ("DOCKER_HOST", "tcp://engine.example:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CONFIG", dir),
        ])
        .unwrap();
        assert!(matches!(a.transport, Transport::Tcp { tls: Some(_), .. }));

        // A missing or malformed file is named.
        std::fs::remove_file(certs.path().join("key.pem")).unwrap();
        let text = resolve_in(&[
            ("DOCKER_HOST", "tcp://engine.example:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", dir),
        ])
        .unwrap_err()
        .to_string();
        assert!(text.contains("key.pem"), "{text}");
        assert!(text.contains("no such file"), "{text}");
        assert!(text.contains("DOCKER_CERT_PATH="), "{text}");
        std::fs::write(certs.path().join("key.pem"), CERT).unwrap();
        let text = resolve_in(&[
            ("DOCKER_HOST", "tcp://engine.example:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", dir),
        ])
        .unwrap_err()
        .to_string();
        assert!(text.contains("holds no PEM private key"), "{text}");

        // DOCKER_TLS alone (no verification) is refused, not silently plain.
        let text = resolve_in(&[("DOCKER_HOST", "tcp://h:2376"), ("DOCKER_TLS", "1")])
            .unwrap_err()
            .to_string();
        assert!(text.contains("DOCKER_TLS_VERIFY=1"), "{text}");
    }

    #[test]
    fn credentials_travel_in_clear_only_over_plain_tcp_off_loopback() {
        let clear = |host: &str| {
            resolve_in(&[("DOCKER_HOST", host)])
                .unwrap()
                .sends_credentials_in_clear()
        };
        assert!(clear("tcp://10.0.0.5:2375"));
        assert!(clear("tcp://engine.example:2375"));
        assert!(clear("http://192.0.2.7:2375"));
        assert!(clear("tcp://[2001:db8::1]:2375"));
        // A name is not resolved: one that points at loopback today may not tomorrow, and
        // `localhost` is a name like any other (a hosts file can point it elsewhere).
        assert!(clear("tcp://my-loopback-alias:2375"));
        assert!(clear("tcp://localhost:2375"));
        assert!(clear("tcp://LOCALHOST"));
        assert!(!clear("tcp://127.0.0.1:2375"));
        assert!(!clear("tcp://127.5.6.7:2375"));
        assert!(!clear("tcp://[::1]:2375"));
        assert!(!clear("tcp://[::ffff:127.0.0.1]:2375"));
        assert!(!clear("unix:///var/run/docker.sock"));
        assert!(!clear("ssh://me@engine.example"));
    }

    #[test]
    fn contexts_are_found_by_the_hash_of_their_name() {
        let config = tempfile::tempdir().unwrap();
        let dir = config.path().to_str().unwrap();
        write_context(config.path(), "plain", "tcp://10.0.0.5:2375", false);
        let tls_dir = write_context(config.path(), "secure", "tcp://10.0.0.6", false);
        write_tls(&tls_dir);
        write_context(config.path(), "sloppy", "tcp://10.0.0.7:2376", true);
        write_context(config.path(), "sock", "unix:///run/other.sock", false);

        let a = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "plain")]).unwrap();
        assert!(
            matches!(&a.transport, Transport::Tcp { host, port: 2375, tls: None } if host == "10.0.0.5"),
            "{a:?}"
        );
        assert!(a.sends_credentials_in_clear());
        assert_eq!(
            a.describe(),
            "tcp://10.0.0.5:2375 (Docker context `plain`, from DOCKER_CONTEXT)"
        );

        let a = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "secure")]).unwrap();
        let Transport::Tcp {
            port: 2376,
            tls: Some(tls),
            ..
        } = &a.transport
        else {
            panic!("{a:?}")
        };
        assert_eq!(tls.ca, tls_dir.join("ca.pem"));
        assert!(tls.from.contains("context `secure`"), "{}", tls.from);
        // A CA without client certificate is a TLS context too.
        std::fs::remove_file(tls_dir.join("cert.pem")).unwrap();
        std::fs::remove_file(tls_dir.join("key.pem")).unwrap();
        let a = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "secure")]).unwrap();
        assert!(
            matches!(
                &a.transport,
                Transport::Tcp {
                    tls: Some(Tls { client: None, .. }),
                    ..
                }
            ),
            "{a:?}"
        );

        // currentContext in config.json, when DOCKER_CONTEXT is unset.
        std::fs::write(
            config.path().join("config.json"),
            r#"{"auths":{},"currentContext":"sock"}"#,
        )
        .unwrap();
        let a = resolve_in(&[("DOCKER_CONFIG", dir)]).unwrap();
        assert_eq!(a.host, "unix:///run/other.sock");
        assert!(
            a.describe().contains("currentContext in"),
            "{}",
            a.describe()
        );
        // DOCKER_CONTEXT wins over currentContext, DOCKER_HOST over both.
        let a = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "plain")]).unwrap();
        assert_eq!(a.host, "tcp://10.0.0.5:2375");
        let a = resolve_in(&[
            ("DOCKER_CONFIG", dir),
            ("DOCKER_CONTEXT", "plain"),
            ("DOCKER_HOST", "unix:///x.sock"),
        ])
        .unwrap();
        assert_eq!(
            (a.host.as_str(), &a.origin),
            ("unix:///x.sock", &Origin::DockerHost)
        );
        // `default` is the default socket.
        let a = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "default")]).unwrap();
        assert_eq!(
            (a.host.as_str(), &a.origin),
            (DEFAULT_DOCKER_HOST, &Origin::Default)
        );

        // HOME/.docker without DOCKER_CONFIG.
        let home = tempfile::tempdir().unwrap();
        write_context(
            &home.path().join(".docker"),
            "plain",
            "tcp://10.9.9.9:2375",
            false,
        );
        let a = resolve_in(&[
            ("HOME", home.path().to_str().unwrap()),
            ("DOCKER_CONTEXT", "plain"),
        ])
        .unwrap();
        assert_eq!(a.host, "tcp://10.9.9.9:2375");

        let text = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "sloppy")])
            .unwrap_err()
            .to_string();
        assert!(text.contains("SkipTLSVerify"), "{text}");
        assert!(text.contains("`sloppy`"), "{text}");
        let text = resolve_in(&[("DOCKER_CONFIG", dir), ("DOCKER_CONTEXT", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("Docker context `nope` (from DOCKER_CONTEXT)"),
            "{text}"
        );
        assert!(text.contains("no such context"), "{text}");
    }

    #[test]
    fn an_empty_or_missing_config_has_no_current_context() {
        let config = tempfile::tempdir().unwrap();
        let dir = config.path().to_str().unwrap();
        let a = resolve_in(&[("DOCKER_CONFIG", dir)]).unwrap();
        assert_eq!(a.origin, Origin::Default);
        for empty in ["", " \n\t"] {
            std::fs::write(config.path().join("config.json"), empty).unwrap();
            let a = resolve_in(&[("DOCKER_CONFIG", dir)]).unwrap();
            assert_eq!(a.origin, Origin::Default);
        }
        std::fs::write(config.path().join("config.json"), "{").unwrap();
        let text = resolve_in(&[("DOCKER_CONFIG", dir)])
            .unwrap_err()
            .to_string();
        assert!(text.contains("not valid JSON"), "{text}");
    }
}
