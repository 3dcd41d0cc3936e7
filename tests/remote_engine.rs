//! Remote engines and credential helpers, against real components.
//!
//! Each engine test starts its own second dockerd ([`SecondEngine`]): TLS with client
//! certificates on `127.0.0.1:<free port>` (certificates made here with the openssl CLI), plus a
//! plain unix socket of its own, storage driver vfs, and its own data root, exec root, pid file
//! and containerd, all in a temporary directory, so that it never meets the stack's dockerd (or
//! another test's). It gets the stack's busybox base image by `docker save` / `docker load`,
//! builds and pushes to the stack's registries (it runs on the host network, and registries on
//! loopback are plain HTTP for it too), and is stopped in `Drop` (SIGTERM, then SIGKILL of it
//! and its containerd after a bounded wait). Against it:
//!
//! - `DOCKER_HOST=tcp://` with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`: doctor and a publish
//!   with credentials work; a client certificate of another CA, a missing key, a CA that did
//!   not sign the engine's certificate, and no TLS at all each fail with a message that says
//!   which;
//! - Docker contexts made by the real docker CLI (`docker context create`, `docker context
//!   use`): `DOCKER_CONTEXT`, `currentContext`, `DOCKER_HOST` winning over both, and a context
//!   that skips verification refused;
//! - plain TCP to an engine that is not known to be on this machine: a forwarder on loopback
//!   to the engine's unix socket, addressed by a host name that resolves to loopback (cargo
//!   v6 does not resolve engine host names, so it must count it as remote; every byte stays on
//!   loopback). A publish with credentials is refused before anything is built; with
//!   `--allow-insecure-engine` it goes through, and the forwarder sees the `X-Registry-Auth`
//!   header in clear, which is the reason for the refusal. Without credentials, or addressed
//!   as 127.0.0.1, no refusal;
//! - `ssh://`: an sshd started here on `127.0.0.1:<free port>` (its own host key, an
//!   authorized key whose `environment=` points the remote docker CLI at the second engine),
//!   reached through an `ssh` wrapper first on `PATH` that adds the test's key: publish works,
//!   and no ssh process is left afterwards.
//!
//! Credential helpers use the stack's engine: a `docker-credential-...` script that never
//! answers makes doctor and publish fail within the timeout naming it, and leaves no process
//! behind; an empty `config.json` is anonymous.
//!
//! Needs root (dockerd), the openssl CLI, the docker CLI, and sshd (`openssh-server`).

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use assert_cmd::Command;

mod support;
use support::{RUN_TIMEOUT, assert_ok, busybox_project, cargo_v6_env, fails, stack, text, unique};

/// Longest a second dockerd may take to answer.
const ENGINE_START: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------ processes

/// Runs a program, panicking with its output unless it succeeds.
fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// A free TCP port on `ip` (released for the caller to bind; a small race, fine for tests).
fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid this test started (or read from its own pid file).
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Whether process `pid` has ended (absent or a zombie).
fn ended(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty()
        || stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
}

/// The pids of processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && !ended(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits up to `limit` for `condition`.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------- certificates

/// A CA, the engine's certificate (for 127.0.0.1 and localhost), and client certificate
/// directories in the layout of `DOCKER_CERT_PATH`:
/// - `good/`: ca.pem, cert.pem, key.pem, as the engine wants them;
/// - `other_ca/`: the right ca.pem but a client certificate from another CA;
/// - `no_key/`: ca.pem and cert.pem only;
/// - `wrong_ca/`: the right client certificate, but another CA as ca.pem.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| run("openssl", args, d);
        let key = |name: &str| {
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-out",
                name,
            ])
        };
        let ca = |name: &str| {
            key(&format!("{name}-key.pem"));
            openssl(&[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=cargo-v6 test {name}"),
            ]);
        };
        let signed = |name: &str, by: &str, ext: &str| {
            key(&format!("{name}-key.pem"));
            openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ]);
            std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{by}.pem"),
                "-CAkey",
                &format!("{by}-key.pem"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        };
        ca("ca");
        ca("other");
        signed(
            "server",
            "ca",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        signed("client", "ca", "extendedKeyUsage=clientAuth\n");
        signed("stranger", "other", "extendedKeyUsage=clientAuth\n");
        let layout = |sub: &str, files: &[(&str, &str)]| {
            std::fs::create_dir(d.join(sub)).unwrap();
            for (from, to) in files {
                std::fs::copy(d.join(from), d.join(sub).join(to)).unwrap();
            }
        };
        let client = [
            ("ca.pem", "ca.pem"),
            ("client.pem", "cert.pem"),
            ("client-key.pem", "key.pem"),
        ];
        layout("good", &client);
        layout(
            "other_ca",
            &[
                ("ca.pem", "ca.pem"),
                ("stranger.pem", "cert.pem"),
                ("stranger-key.pem", "key.pem"),
            ],
        );
        layout("no_key", &client[..2]);
        layout(
            "wrong_ca",
            &[
                ("other.pem", "ca.pem"),
                ("client.pem", "cert.pem"),
                ("client-key.pem", "key.pem"),
            ],
        );
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn dir_str(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
}

// -------------------------------------------------------------------------- second engine

/// A dockerd of its own; see the module documentation.
struct SecondEngine {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `unix://...` of its own socket (no TLS).
    unix: String,
    /// Its TLS port on 127.0.0.1.
    port: u16,
}

impl SecondEngine {
    fn start(certs: &Certs) -> SecondEngine {
        let dir = tempfile::Builder::new()
            .prefix("v6-engine-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["data", "exec"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // An empty daemon config, so that a machine's /etc/docker/daemon.json cannot clash.
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let socket = d.join("docker.sock");
        let unix = format!("unix://{}", socket.display());
        let port = free_port(IpAddr::from([127, 0, 0, 1]));
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let path = |p: PathBuf| p.to_str().unwrap().to_owned();
        let child = std::process::Command::new("dockerd")
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .args(["--data-root", &path(d.join("data"))])
            .args(["--exec-root", &path(d.join("exec"))])
            .args(["--pidfile", &path(d.join("dockerd.pid"))])
            .args(["--config-file", &path(d.join("daemon.json"))])
            .args(["-H", &unix, "-H", &format!("tcp://127.0.0.1:{port}")])
            .args(["--tlsverify", "--tlscacert", &path(certs.path("ca.pem"))])
            .args(["--tlscert", &path(certs.path("server.pem"))])
            .args(["--tlskey", &path(certs.path("server-key.pem"))])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd runs (these tests need root and docker.io)");
        let mut engine = SecondEngine {
            dir,
            child: Some(child),
            unix,
            port,
        };
        let deadline = Instant::now() + ENGINE_START;
        loop {
            // Both listeners: the tests speak TLS over TCP, set up after the socket.
            let answers = |host: &str, tls: bool| {
                let mut docker = std::process::Command::new("docker");
                docker.args(["-H", host, "version"]);
                if tls {
                    docker
                        .env("DOCKER_TLS_VERIFY", "1")
                        .env("DOCKER_CERT_PATH", certs.dir_str("good"));
                }
                docker.output().is_ok_and(|out| out.status.success())
            };
            if answers(&engine.unix, false) && answers(&engine.tcp(), true) {
                break;
            }
            let exited = engine.child.as_mut().unwrap().try_wait().unwrap().is_some();
            if exited || Instant::now() >= deadline {
                panic!(
                    "the second dockerd {}; its log:\n{}",
                    if exited { "exited" } else { "did not answer" },
                    engine.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        engine.load_busybox();
        engine
    }

    /// The stack's busybox base image, copied over (this engine pulls nothing).
    fn load_busybox(&self) {
        let archive = self.dir.path().join("busybox.tar");
        let archive = archive.to_str().unwrap();
        let here = self.dir.path();
        run("docker", &["save", "-o", archive, &stack().busybox], here);
        run("docker", &["-H", &self.unix, "load", "-i", archive], here);
        std::fs::remove_file(archive).unwrap();
    }

    fn tcp(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// The local tags of `repository` in this engine.
    fn tags_of(&self, repository: &str) -> Vec<String> {
        let out = run(
            "docker",
            &[
                "-H", &self.unix, "images", "--format", "{{.Tag}}", repository,
            ],
            self.dir.path(),
        );
        text(&out.stdout).lines().map(str::to_owned).collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets dockerd stop its containerd; SIGKILL both if it takes too long.
        signal(child.id(), libc::SIGTERM);
        let stopped = eventually(Duration::from_secs(20), || {
            child.try_wait().ok().flatten().is_some()
        });
        let containerd = self.dir.path().join("exec/containerd/containerd.pid");
        let containerd = std::fs::read_to_string(containerd)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if let Some(pid) = containerd
            && (!stopped || !eventually(Duration::from_secs(10), || ended(pid)))
        {
            signal(pid, libc::SIGKILL);
        }
        if !stopped {
            let _ = child.kill();
        }
        let _ = child.wait();
        // Nothing may stay mounted under the directory about to be removed.
        let root = self.dir.path().to_str().unwrap().to_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut below: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|target| target.starts_with(&format!("{root}/")))
            .collect();
        below.sort_by_key(|target| std::cmp::Reverse(target.len()));
        for target in below {
            let _ = std::process::Command::new("umount")
                .args(["-l", target])
                .status();
        }
    }
}

// --------------------------------------------------------------------- plain-TCP forwarder

/// Listens on `ip:<free port>` and forwards each connection to a unix socket (the second
/// engine's), noting whether any request carried an `X-Registry-Auth` header. Stops (listener
/// closed, connections shut down, threads joined) when dropped.
struct Forwarder {
    port: u16,
    ip: IpAddr,
    /// The host name used in `DOCKER_HOST` instead of `ip`, if any.
    name: Option<String>,
    saw_registry_auth: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// `None` when `ip` cannot be listened on.
    fn start(ip: IpAddr, socket: PathBuf) -> Option<Forwarder> {
        let listener = TcpListener::bind((ip, 0)).ok()?;
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let saw = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (saw2, stop2, sockets2, threads2) =
            (saw.clone(), stop.clone(), sockets.clone(), threads.clone());
        let acceptor = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => break,
                };
                client.set_nonblocking(false).unwrap();
                let Ok(engine) = UnixStream::connect(&socket) else {
                    continue;
                };
                sockets2.lock().unwrap().push(client.try_clone().unwrap());
                let (mut client_in, mut client_out) = (client.try_clone().unwrap(), client);
                let (mut engine_in, mut engine_out) = (engine.try_clone().unwrap(), engine);
                let saw = saw2.clone();
                let up = std::thread::spawn(move || {
                    // Header names as hyper writes them (lower case) or as written elsewhere;
                    // the tail of each read is kept so that a name split across reads is seen.
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = client_in.read(&mut buf) {
                        if n == 0 || engine_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if String::from_utf8_lossy(&seen)
                            .to_ascii_lowercase()
                            .contains("x-registry-auth:")
                        {
                            saw.store(true, Ordering::SeqCst);
                        }
                        let keep = seen.len().saturating_sub(64);
                        seen.drain(..keep);
                    }
                    let _ = engine_out.shutdown(Shutdown::Write);
                });
                let down = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut engine_in, &mut client_out);
                    let _ = client_out.shutdown(Shutdown::Both);
                });
                threads2.lock().unwrap().extend([up, down]);
            }
        });
        Some(Forwarder {
            port,
            name: None,
            ip,
            saw_registry_auth: saw,
            stop,
            sockets,
            threads,
            acceptor: Some(acceptor),
        })
    }

    fn host(&self) -> String {
        match &self.name {
            Some(name) => format!("tcp://{name}:{}", self.port),
            None => format!("tcp://{}:{}", self.ip, self.port),
        }
    }

    /// Addressed by a host name (that resolves to where it listens) instead of its IP.
    fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        for thread in self.threads.lock().unwrap().drain(..) {
            let _ = thread.join();
        }
    }
}

/// A host name, other than `localhost`, that resolves to a loopback address (this machine's
/// name, as Debian's /etc/hosts maps it): cargo v6 does not resolve engine host names, so it
/// must treat the engine as remote, while every byte still stays on loopback. Tests send no
/// traffic to any address but loopback.
fn loopback_host_name() -> String {
    let hostname = text(
        &std::process::Command::new("hostname")
            .output()
            .expect("hostname runs")
            .stdout,
    )
    .trim()
    .to_owned();
    [
        hostname.as_str(),
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
    ]
    .into_iter()
    .filter(|name| !name.is_empty() && *name != "localhost")
    .find(|name| {
        std::net::ToSocketAddrs::to_socket_addrs(&(*name, 0))
            .is_ok_and(|mut addrs| addrs.all(|a| a.ip().is_loopback()))
    })
    .map(str::to_owned)
    .unwrap_or_else(|| {
        panic!("no host name but `localhost` resolves to loopback here (/etc/hosts)")
    })
}

// ---------------------------------------------------------------------------------- tests

/// A busybox project publishing to the auth registry, and the credentials for it.
fn auth_project(name: &str) -> (tempfile::TempDir, String, [(&'static str, String); 2]) {
    let s = stack();
    let image = format!("{}/{}", s.auth_registry, unique(name));
    let dir = busybox_project(&image, &format!("{name}\n"), "");
    let credentials = [
        ("V6_REGISTRY_USERNAME", s.auth_user),
        ("V6_REGISTRY_PASSWORD", s.auth_password),
    ];
    (dir, image, credentials)
}

/// `(name, value)` pairs as the `&str` pairs [`cargo_v6`] takes.
fn pairs<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    owned.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// skopeo on `image`'s registry, with the auth registry's credentials when it is that one.
fn skopeo_on(image: &str, args: &[&str]) -> Output {
    let s = stack();
    let creds = format!("{}:{}", s.auth_user, s.auth_password);
    let mut all: Vec<&str> = args.to_vec();
    all.insert(1, "--tls-verify=false");
    if image.starts_with(&format!("{}/", s.auth_registry)) {
        all.insert(1, "--creds");
        all.insert(2, &creds);
    }
    support::skopeo(&all)
}

/// The digest of `reference` in its registry, `None` when it does not resolve.
fn registry_digest(image: &str, tag: &str) -> Option<String> {
    let out = skopeo_on(image, &["inspect", &format!("docker://{image}:{tag}")]);
    out.status.success().then(|| {
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["Digest"]
            .as_str()
            .unwrap()
            .to_owned()
    })
}

/// The tags of `image` in its registry (none for a repository it never heard of).
fn registry_tags(image: &str) -> Vec<String> {
    let out = skopeo_on(image, &["list-tags", &format!("docker://{image}")]);
    if !out.status.success() {
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("404") || stderr.to_lowercase().contains("name unknown"),
            "skopeo list-tags {image}: {stderr}"
        );
        return Vec::new();
    }
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["Tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The last stdout line of a successful publish, checked against the registry.
fn published(out: &Output, image: &str) -> String {
    let stdout = assert_ok(out);
    let line = stdout.lines().last().unwrap().to_owned();
    assert!(line.starts_with(&format!("{image}@sha256:")), "{stdout}");
    let digest = line.rsplit_once('@').unwrap().1;
    assert_eq!(
        registry_digest(image, "1.0.0").as_deref(),
        Some(digest),
        "the exact tag holds what publish printed"
    );
    line
}

#[test]
fn a_tls_engine_works_with_client_certificates_and_says_what_is_wrong_without_them() {
    let certs = Certs::make();
    let engine = SecondEngine::start(&certs);
    let (dir, image, credentials) = auth_project("tls");
    let config = tempfile::tempdir().unwrap();
    let config = config.path().to_str().unwrap();
    // Every run has the registry's credentials: doctor checks them too.
    let tls = |cert_dir: &str| {
        let mut env = vec![
            ("DOCKER_CONFIG", config.to_owned()),
            ("DOCKER_HOST", engine.tcp()),
            ("DOCKER_TLS_VERIFY", "1".to_owned()),
            ("DOCKER_CERT_PATH", certs.dir_str(cert_dir)),
        ];
        env.extend(credentials.iter().cloned());
        env
    };
    let good = tls("good");
    let out = cargo_v6_env(dir.path(), &pairs(&good), &["v6", "doctor"]);
    let stderr = text(&assert_ok_output(&out).stderr);
    assert!(
        stderr.contains(&format!("ok Docker engine at {}", engine.tcp())),
        "{stderr}"
    );

    // A publish with credentials: built on the TLS engine, pushed by it, checked by skopeo.
    let out = cargo_v6_env(dir.path(), &pairs(&good), &["v6", "publish"]);
    published(&out, &image);
    assert!(!text(&out.stderr).contains("panicked"));

    // A client certificate from another CA: the engine refuses it, and the message says so.
    let stderr = fails(&cargo_v6_env(
        dir.path(),
        &pairs(&tls("other_ca")),
        &["v6", "doctor"],
    ));
    assert!(
        stderr.contains("refused the client certificate"),
        "{stderr}"
    );
    assert!(stderr.contains(&certs.dir_str("other_ca")), "{stderr}");

    // A missing key is named before any connection.
    let stderr = fails(&cargo_v6_env(
        dir.path(),
        &pairs(&tls("no_key")),
        &["v6", "doctor"],
    ));
    let key = certs.path("no_key").join("key.pem");
    assert!(
        stderr.contains(&format!("{}", key.display())) && stderr.contains("no such file"),
        "{stderr}"
    );

    // A CA that did not sign the engine's certificate.
    let stderr = fails(&cargo_v6_env(
        dir.path(),
        &pairs(&tls("wrong_ca")),
        &["v6", "doctor"],
    ));
    assert!(
        stderr.contains("not signed by the CA in ca.pem"),
        "{stderr}"
    );

    // No TLS at all: the engine's answer is turned into what to set.
    let mut plain = tls("good");
    plain.retain(|(name, _)| !name.starts_with("DOCKER_TLS") && *name != "DOCKER_CERT_PATH");
    let stderr = fails(&cargo_v6_env(dir.path(), &pairs(&plain), &["v6", "doctor"]));
    assert!(
        stderr.contains("the engine speaks only TLS: set DOCKER_TLS_VERIFY=1"),
        "{stderr}"
    );

    // The same failure through publish stops before anything is built or pushed.
    let wrong = tls("other_ca");
    let stderr = fails(&cargo_v6_env(
        dir.path(),
        &pairs(&wrong),
        &["v6", "publish", "--set-version", "2.0.0"],
    ));
    assert!(
        stderr.contains("refused the client certificate"),
        "{stderr}"
    );
    assert!(!registry_tags(&image).contains(&"2.0.0".to_owned()));
}

/// [`assert_ok`] that returns the output itself.
fn assert_ok_output(out: &Output) -> &Output {
    assert_ok(out);
    out
}

#[test]
fn a_tls_engine_through_docker_contexts_made_by_the_docker_cli() {
    let certs = Certs::make();
    let engine = SecondEngine::start(&certs);
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().to_str().unwrap().to_owned();
    let docker_cli = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", &config_dir)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            text(&out.stderr)
        );
    };
    let good = certs.path("good");
    let file = |name: &str| good.join(name).to_str().unwrap().to_owned();
    docker_cli(&[
        "context",
        "create",
        "v6-remote",
        "--docker",
        &format!(
            "host={},ca={},cert={},key={}",
            engine.tcp(),
            file("ca.pem"),
            file("cert.pem"),
            file("key.pem")
        ),
    ]);
    docker_cli(&[
        "context",
        "create",
        "v6-sloppy",
        "--docker",
        &format!("host={},skip-tls-verify=true", engine.tcp()),
    ]);
    let (dir, image, credentials) = auth_project("context");
    let without_host = |extra: &[(&str, &str)]| {
        let mut cmd = Command::cargo_bin("cargo-v6").unwrap();
        cmd.current_dir(dir.path())
            .timeout(RUN_TIMEOUT)
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", &config_dir)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("V6_REGISTRY_USERNAME")
            .env_remove("V6_REGISTRY_PASSWORD");
        // The registry's credentials in every run: doctor checks them too.
        let credentials = credentials.iter().map(|(k, v)| (*k, v.as_str()));
        for (k, v) in credentials.chain(extra.iter().copied()) {
            cmd.env(k, v);
        }
        cmd
    };

    // DOCKER_CONTEXT.
    let out = without_host(&[("DOCKER_CONTEXT", "v6-remote")])
        .args(["v6", "doctor"])
        .output()
        .unwrap();
    let stderr = text(&assert_ok_output(&out).stderr);
    assert!(stderr.contains(&engine.tcp()), "{stderr}");

    // currentContext, as `docker context use` writes it; a publish with credentials.
    docker_cli(&["context", "use", "v6-remote"]);
    let out = without_host(&[]).args(["v6", "publish"]).output().unwrap();
    published(&out, &image);

    // DOCKER_HOST wins over the context (here: a socket that does not exist).
    let missing = "unix:///nonexistent/cargo-v6/docker.sock";
    let out = without_host(&[("DOCKER_HOST", missing)])
        .args(["v6", "doctor"])
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert!(stderr.contains(missing), "{stderr}");

    // DOCKER_CONTEXT wins over currentContext; `default` is the default socket.
    let out = without_host(&[("DOCKER_CONTEXT", "default")])
        .args(["v6", "doctor"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unix:///var/run/docker.sock") && !stderr.contains(&engine.tcp()),
        "{stderr}"
    );

    // A context that skips verification is refused, naming it.
    let out = without_host(&[("DOCKER_CONTEXT", "v6-sloppy")])
        .args(["v6", "doctor"])
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert!(
        stderr.contains("Docker context `v6-sloppy` (from DOCKER_CONTEXT)")
            && stderr.contains("SkipTLSVerify"),
        "{stderr}"
    );
    // An unknown context is named too.
    let out = without_host(&[("DOCKER_CONTEXT", "v6-nope")])
        .args(["v6", "doctor"])
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert!(
        stderr.contains("`v6-nope`") && stderr.contains("no such context"),
        "{stderr}"
    );
}

#[test]
fn credentials_never_go_to_a_plain_tcp_engine_off_loopback_unless_allowed() {
    let certs = Certs::make();
    let engine = SecondEngine::start(&certs);
    let config = tempfile::tempdir().unwrap();
    let config = config.path().to_str().unwrap().to_owned();

    // Loopback plain TCP: credentials never leave the machine, no refusal.
    let loopback = Forwarder::start(IpAddr::from([127, 0, 0, 1]), engine.socket()).unwrap();
    let (dir, image, credentials) = auth_project("loopback");
    let mut env = vec![
        ("DOCKER_CONFIG", config.clone()),
        ("DOCKER_HOST", loopback.host()),
    ];
    env.extend(credentials.iter().cloned());
    published(
        &cargo_v6_env(dir.path(), &pairs(&env), &["v6", "publish"]),
        &image,
    );
    assert!(loopback.saw_registry_auth.load(Ordering::SeqCst));
    drop(loopback);

    let name = loopback_host_name();
    let forwarder = Forwarder::start(IpAddr::from([127, 0, 0, 1]), engine.socket())
        .expect("a loopback port to listen on")
        .named(&name);
    let (dir, image, credentials) = auth_project("cleartext");
    let mut env = vec![
        ("DOCKER_CONFIG", config.clone()),
        ("DOCKER_HOST", forwarder.host()),
    ];
    env.extend(credentials.iter().cloned());

    // Refused before anything is built or pushed; the message names the reason and the
    // opt-in. A dry run checks it too.
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["v6", "publish"];
        args.extend_from_slice(extra);
        let stderr = fails(&cargo_v6_env(dir.path(), &pairs(&env), &args));
        assert!(
            stderr.contains(&format!(
                "refusing to send the registry credentials to the Docker engine at {}",
                forwarder.host()
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("clear text") && stderr.contains("--allow-insecure-engine"),
            "{stderr}"
        );
    }
    assert!(!forwarder.saw_registry_auth.load(Ordering::SeqCst));
    assert!(registry_tags(&image).is_empty());
    assert!(engine.tags_of(&image).is_empty(), "nothing was built");

    // Opted in: it goes through, loudly, and the credentials did cross in clear.
    let out = cargo_v6_env(
        dir.path(),
        &pairs(&env),
        &["v6", "publish", "--allow-insecure-engine"],
    );
    published(&out, &image);
    assert!(
        text(&out.stderr).contains("--allow-insecure-engine: the registry credentials go to"),
        "{}",
        text(&out.stderr)
    );
    assert!(forwarder.saw_registry_auth.load(Ordering::SeqCst));

    // No credentials (the open registry): nothing to protect, no refusal.
    let open = format!("{}/{}", stack().registry, unique("cleartext-open"));
    let dir = busybox_project(&open, "open\n", "");
    let env = [("DOCKER_CONFIG", config), ("DOCKER_HOST", forwarder.host())];
    published(
        &cargo_v6_env(dir.path(), &pairs(&env), &["v6", "publish"]),
        &open,
    );
}

#[test]
fn an_ssh_engine_works_through_the_system_ssh() {
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.exists(),
        "this test needs sshd: apt-get install openssh-server"
    );
    let certs = Certs::make();
    let engine = SecondEngine::start(&certs);
    let keys = tempfile::Builder::new()
        .prefix("v6-ssh-")
        .tempdir()
        .unwrap();
    let k = keys.path();
    let keygen = |name: &str| {
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", name],
            k,
        )
    };
    keygen("host_key");
    keygen("client_key");
    let public = std::fs::read_to_string(k.join("client_key.pub")).unwrap();
    let user = text(&run("id", &["-un"], k).stdout).trim().to_owned();
    // The key is authorized for this user only (`%u.keys`), and the remote docker CLI
    // (`docker system dial-stdio`) talks to the second engine.
    std::fs::write(
        k.join(format!("{user}.keys")),
        format!(
            "environment=\"DOCKER_HOST=unix://{}\" {public}",
            engine.socket().display()
        ),
    )
    .unwrap();
    let port = free_port(IpAddr::from([127, 0, 0, 1]));
    let at = |name: &str| k.join(name).to_str().unwrap().to_owned();
    std::fs::write(
        k.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPermitUserEnvironment yes\nStrictModes no\n\
             PidFile {}\n",
            at("host_key"),
            at("%u.keys"),
            at("sshd.pid")
        ),
    )
    .unwrap();
    // sshd wants its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let mut daemon = std::process::Command::new(sshd)
        .args(["-D", "-e", "-f", &at("sshd_config")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(k.join("sshd.log")).unwrap())
        .spawn()
        .unwrap();
    struct Stop<'a>(&'a mut Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(&mut daemon);
    assert!(
        eventually(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "sshd did not listen: {}",
        std::fs::read_to_string(k.join("sshd.log")).unwrap_or_default()
    );
    // `ssh` first on PATH: the real one with this test's key, known hosts ignored.
    let real_ssh = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("ssh"))
        .find(|path| path.exists())
        .expect("ssh on PATH");
    let bin = k.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(
        bin.join("ssh"),
        format!(
            "#!/bin/sh\nexec {} -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=no -o LogLevel=ERROR \"$@\"\n",
            real_ssh.display(),
            at("client_key")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let host = format!("ssh://{user}@127.0.0.1:{port}");
    let config = tempfile::tempdir().unwrap();
    let (dir, image, credentials) = auth_project("ssh");
    let mut env = vec![
        ("DOCKER_CONFIG", config.path().to_str().unwrap().to_owned()),
        ("DOCKER_HOST", host.clone()),
        ("PATH", path.to_str().unwrap().to_owned()),
    ];
    env.extend(credentials.iter().cloned());
    let out = cargo_v6_env(dir.path(), &pairs(&env), &["v6", "doctor"]);
    let stderr = text(&assert_ok_output(&out).stderr);
    assert!(
        stderr.contains(&format!("ok Docker engine at {host}")),
        "{stderr}"
    );
    // A build (the context streamed through ssh) and a push with credentials: ssh is not
    // clear text, so no opt-in is needed.
    published(
        &cargo_v6_env(dir.path(), &pairs(&env), &["v6", "publish"]),
        &image,
    );
    // No ssh process of this test outlives the run.
    let key = at("client_key");
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&key).is_empty()),
        "ssh processes left: {:?}",
        processes_with(&key)
    );

    // A refused login: one line with what ssh said.
    let env = [
        ("DOCKER_CONFIG", config.path().to_str().unwrap().to_owned()),
        ("DOCKER_HOST", format!("ssh://nobody@127.0.0.1:{port}")),
        ("PATH", path.to_str().unwrap().to_owned()),
    ];
    let stderr = fails(&cargo_v6_env(dir.path(), &pairs(&env), &["v6", "doctor"]));
    assert!(
        stderr.contains("ssh said:") && stderr.contains("Permission denied"),
        "{stderr}"
    );
}

/// A project on the auth registry whose Docker config names `docker-credential-v6hang`, a
/// helper that never answers, on a PATH that has it. Returns the project, the env, and the
/// directory where the helper writes its pid and its child's.
fn hanging_helper() -> (
    tempfile::TempDir,
    String,
    Vec<(&'static str, String)>,
    tempfile::TempDir,
) {
    let (dir, image, _) = auth_project("hang");
    let helpers = tempfile::tempdir().unwrap();
    let h = helpers.path();
    let script = h.join("docker-credential-v6hang");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread server\necho $$ >> {0}/pids\nsleep 600 &\necho $! >> {0}/pids\nwait\n",
            h.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(h.join("config.json"), r#"{"credsStore":"v6hang"}"#).unwrap();
    let path = std::env::join_paths(std::iter::once(h.to_owned()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let env = vec![
        ("DOCKER_CONFIG", h.to_str().unwrap().to_owned()),
        ("PATH", path.to_str().unwrap().to_owned()),
        ("V6_CREDENTIAL_HELPER_TIMEOUT_SECS", "2".to_owned()),
    ];
    (dir, image, env, helpers)
}

#[test]
fn a_hanging_credential_helper_fails_doctor_and_publish_in_time_naming_it() {
    let (dir, image, env, helpers) = hanging_helper();
    for args in [&["v6", "doctor"][..], &["v6", "publish"][..]] {
        let started = Instant::now();
        let stderr = fails(&cargo_v6_env(dir.path(), &pairs(&env), args));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
        assert!(
            stderr.contains("credential helper `docker-credential-v6hang`")
                && stderr.contains("did not answer within 2 s"),
            "{stderr}"
        );
    }
    assert!(registry_tags(&image).is_empty());
    // Neither the helper nor what it started is left running.
    let pids = std::fs::read_to_string(helpers.path().join("pids")).unwrap();
    let pids: Vec<u32> = pids.lines().map(|p| p.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 4, "two runs, two processes each: {pids:?}");
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || ended(pid)),
            "{pid} still runs"
        );
    }
}

#[test]
fn an_empty_docker_config_is_anonymous() {
    let image = format!("{}/{}", stack().registry, unique("emptyconfig"));
    let dir = busybox_project(&image, "empty\n", "");
    let _cleanup = support::LocalImages(image.clone());
    let config = tempfile::tempdir().unwrap();
    let config_path = config.path().to_str().unwrap();
    for content in ["", "  \n"] {
        std::fs::write(config.path().join("config.json"), content).unwrap();
        let out = cargo_v6_env(
            dir.path(),
            &[("DOCKER_CONFIG", config_path)],
            &["v6", "doctor"],
        );
        let stderr = text(&assert_ok_output(&out).stderr);
        assert!(stderr.contains("anonymously"), "{stderr}");
    }
    let out = cargo_v6_env(
        dir.path(),
        &[("DOCKER_CONFIG", config_path)],
        &["v6", "publish"],
    );
    published(&out, &image);
}
