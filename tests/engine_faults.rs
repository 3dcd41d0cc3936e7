//! A Docker engine that misbehaves, played on loopback in front of the stack's engine (which
//! is shared with other tests and never stopped or frozen itself):
//!
//! - **Silent**: a listener that takes connections and never answers (a hung daemon). doctor
//!   fails within the first-answer timeout, publish within `--stall-timeout`, each naming the
//!   engine and the limit, instead of waiting the engine API's two minutes.
//! - **Dropping packets**: a listener whose queue is full, so that the kernel drops further
//!   connection attempts as a firewall would: doctor and build fail within the connect
//!   timeout, saying so.
//! - **Frozen during the push**: a proxy to the stack's engine socket that stops passing
//!   anything on once the push request comes (as `kill -STOP dockerd` would). With
//!   `--stall-timeout 5` the publish ends within seconds: the push is abandoned after 5 s and
//!   the clean-up of the build tag waits at most 5 s more, not the API's 120 s.
//! - **Not an engine**: an HTTP server answering with a long HTML page. The error says "not a
//!   Docker engine" with the status and the page's title, and prints none of the page.
//! - **Plain TCP by name**: the proxy addressed as `tcp://localhost:PORT`. A name, even
//!   `localhost`, counts as off this machine, so publish refuses to send the registry
//!   credentials, and doctor reports that refusal (exit 1) instead of `ok`. Addressed as
//!   `tcp://127.0.0.1:PORT`, doctor is fine.
//! - **Signals**: `cargo v6 run` of a container that sleeps, and `publish --smoke` of the
//!   same, get SIGTERM or SIGHUP while the container runs: the process ends by that signal,
//!   and the container, the temporary folder and publish's build tag are gone.
//!
//! Every listener is on 127.0.0.1 and its threads end when it is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;
use support::{LocalImages, busybox_project, cargo_v6_env, docker, fails, stack, text, unique};

/// The stack's engine socket, from `DOCKER_HOST=unix://...`.
fn engine_socket() -> String {
    let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST from scripts/stack env");
    host.strip_prefix("unix://")
        .unwrap_or_else(|| panic!("the stack's engine is a unix socket, not {host}"))
        .to_owned()
}

/// A TCP listener on 127.0.0.1 with a thread per connection, all ended on drop.
struct Listener {
    port: u16,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens; `serve` gets each connection (on its own thread) and may start more threads
    /// through the list it is given.
    fn start(
        serve: impl Fn(TcpStream, &Mutex<Vec<JoinHandle<()>>>) + Send + Sync + 'static,
    ) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (stop2, sockets2, threads2) = (stop.clone(), sockets.clone(), threads.clone());
        let serve = Arc::new(serve);
        let acceptor = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        sockets2.lock().unwrap().push(client.try_clone().unwrap());
                        let (serve, threads3) = (serve.clone(), threads2.clone());
                        let thread = std::thread::spawn(move || serve(client, &threads3));
                        threads2.lock().unwrap().push(thread);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
        });
        Listener {
            port,
            stop,
            sockets,
            threads,
            acceptor: Some(acceptor),
        }
    }

    /// `tcp://HOST:PORT`.
    fn host(&self, name: &str) -> String {
        format!("tcp://{name}:{}", self.port)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Threads may add threads while they end.
        loop {
            let threads: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// Takes every connection and never answers: reads and drops what comes until it closes.
fn silent_engine() -> Listener {
    Listener::start(|mut client, _| {
        let mut buf = [0u8; 4096];
        while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
    })
}

/// What [`EngineProxy`] stops passing on, once a request containing the text comes.
#[derive(Debug, Clone, Copy)]
enum Freeze {
    /// Nothing.
    Never,
    /// Anything, either way, on any connection, that request included: the engine looks
    /// frozen (`kill -STOP dockerd`).
    Engine(&'static str),
    /// The answers on that request's connection only; the request is passed on: the engine
    /// acts on it, and its answer never comes.
    Answer(&'static str),
}

/// A proxy to the stack's engine socket that can look frozen ([`Freeze`]).
/// `saw_registry_auth` tells whether an `X-Registry-Auth` header came.
struct EngineProxy {
    listener: Listener,
    frozen: Arc<AtomicBool>,
    saw_registry_auth: Arc<AtomicBool>,
}

impl EngineProxy {
    fn start(freeze: Freeze) -> EngineProxy {
        let socket = engine_socket();
        let frozen = Arc::new(AtomicBool::new(false));
        let saw = Arc::new(AtomicBool::new(false));
        let (frozen2, saw2) = (frozen.clone(), saw.clone());
        let listener = Listener::start(move |mut client, threads| {
            let mut buf = [0u8; 16 * 1024];
            let engine = match frozen2.load(Ordering::SeqCst) {
                true => None,
                false => UnixStream::connect(&socket).ok(),
            };
            let Some(mut engine) = engine else {
                while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
                return;
            };
            // This connection's answers are held back.
            let held = Arc::new(AtomicBool::new(false));
            let (mut engine_in, mut client_out) =
                (engine.try_clone().unwrap(), client.try_clone().unwrap());
            let (frozen3, held3) = (frozen2.clone(), held.clone());
            let silent = move || frozen3.load(Ordering::SeqCst) || held3.load(Ordering::SeqCst);
            let down = std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = engine_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if !silent() && client_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                if !silent() {
                    let _ = client_out.shutdown(Shutdown::Both);
                }
            });
            threads.lock().unwrap().push(down);
            while let Ok(n) = client.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                match freeze {
                    Freeze::Engine(needle) if chunk.contains(needle) => {
                        frozen2.store(true, Ordering::SeqCst)
                    }
                    Freeze::Answer(needle) if chunk.contains(needle) => {
                        held.store(true, Ordering::SeqCst)
                    }
                    _ => {}
                }
                if chunk.contains("x-registry-auth:") {
                    saw2.store(true, Ordering::SeqCst);
                }
                if !frozen2.load(Ordering::SeqCst) && engine.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = engine.shutdown(Shutdown::Both);
        });
        EngineProxy {
            listener,
            frozen,
            saw_registry_auth: saw,
        }
    }
}

/// Answers every request with `status` and a long HTML page; `marker` is in its body.
fn web_server(status: &'static str, marker: &'static str) -> Listener {
    Listener::start(move |mut client, _| {
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match client.read(&mut buf) {
                Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let mut body = String::from(
            "<!DOCTYPE html>\n<html>\n<head><title>Welcome to the intranet</title></head>\n<body>\n",
        );
        for i in 0..200 {
            body.push_str(&format!("<p>{marker} line {i}</p>\n"));
        }
        body.push_str("</body>\n</html>\n");
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(response.as_bytes());
        let _ = client.shutdown(Shutdown::Both);
    })
}

/// A busybox project publishing to the open registry.
fn project(name: &str) -> (tempfile::TempDir, String) {
    let image = format!("{}/{}", stack().registry, unique(name));
    (busybox_project(&image, &format!("{name}\n"), ""), image)
}

#[test]
fn an_engine_that_never_answers_fails_doctor_and_publish_in_seconds_naming_it() {
    let silent = silent_engine();
    let host = silent.host("127.0.0.1");
    let (dir, image) = project("silent");
    for (args, within, limit) in [
        (
            &["v6", "doctor"][..],
            Duration::from_secs(40),
            "within 20 s (the first-answer timeout)",
        ),
        (
            &["v6", "publish", "--stall-timeout", "5"][..],
            Duration::from_secs(20),
            "within 5 s (--stall-timeout)",
        ),
    ] {
        let started = Instant::now();
        let stderr = fails(&cargo_v6_env(dir.path(), &[("DOCKER_HOST", &host)], args));
        let took = started.elapsed();
        assert!(took < within, "{args:?} took {took:?}\n{stderr}");
        assert!(
            stderr.contains(&format!("the Docker engine at {host} did not answer"))
                && stderr.contains(limit),
            "{args:?}: {stderr}"
        );
    }
    assert!(support::repo_tags(&image).is_empty());
}

/// A listener on 127.0.0.1 whose queue of connections is full and never accepted: the kernel
/// drops further connection attempts, as a firewall that drops packets does. Returns it, the
/// connection that fills its queue, and its port.
fn full_listener() -> (TcpListener, TcpStream, u16) {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) again on a listening socket sets its backlog, here to the minimum.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let address = listener.local_addr().unwrap();
    let held = TcpStream::connect(address).unwrap();
    let dropped = TcpStream::connect_timeout(&address, Duration::from_secs(1));
    assert!(dropped.is_err(), "a further connection was not dropped");
    (listener, held, address.port())
}

#[test]
fn a_host_that_drops_packets_fails_within_the_connect_timeout() {
    let (_listener, _held, port) = full_listener();
    let host = format!("tcp://127.0.0.1:{port}");
    let (dir, _) = project("dropped");
    for args in [&["v6", "doctor"][..], &["v6", "build"][..]] {
        let started = Instant::now();
        let stderr = fails(&cargo_v6_env(dir.path(), &[("DOCKER_HOST", &host)], args));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(30),
            "{args:?} took {took:?}\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("cannot connect to the Docker engine at {host}"))
                && stderr.contains("no TCP connection within 10 s (the connect timeout)"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_engine_frozen_during_the_push_ends_within_the_stall_timeout() {
    let proxy = EngineProxy::start(Freeze::Engine("/push"));
    let (dir, image) = project("frozen");
    let _cleanup = LocalImages(image.clone());
    let started = Instant::now();
    let out = cargo_v6_env(
        dir.path(),
        &[("DOCKER_HOST", &proxy.listener.host("127.0.0.1"))],
        &["v6", "publish", "--stall-timeout", "5"],
    );
    let took = started.elapsed();
    let stderr = fails(&out);
    assert!(proxy.frozen.load(Ordering::SeqCst), "{stderr}");
    // The build takes a few seconds, the stalled push 5 s, its clean-up at most 5 s more.
    assert!(took < Duration::from_secs(60), "took {took:?}\n{stderr}");
    assert!(
        stderr.contains("no progress for 5 s (--stall-timeout)"),
        "{stderr}"
    );
    assert!(support::repo_tags(&image).is_empty());
}

#[test]
fn an_http_server_that_is_not_an_engine_is_named_without_its_page() {
    let (dir, _) = project("not-an-engine");
    for status in ["404 Not Found", "200 OK"] {
        let server = web_server(status, "PAGE-BODY-MARKER");
        let host = server.host("127.0.0.1");
        let stderr = fails(&cargo_v6_env(
            dir.path(),
            &[("DOCKER_HOST", &host)],
            &["v6", "doctor"],
        ));
        assert!(
            stderr.contains(&format!("{host} is not a Docker engine")),
            "{status}: {stderr}"
        );
        assert!(!stderr.contains("PAGE-BODY-MARKER"), "{status}: {stderr}");
        assert!(!stderr.contains("<p>"), "{status}: {stderr}");
        if status.starts_with("404") {
            assert!(
                stderr.contains("HTTP 404: Welcome to the intranet"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn localhost_is_a_name_and_doctor_reports_what_publish_refuses() {
    let proxy = EngineProxy::start(Freeze::Never);
    let s = stack();
    let image = format!("{}/{}", s.auth_registry, unique("localhost"));
    let dir = busybox_project(&image, "localhost\n", "");
    let _cleanup = LocalImages(image.clone());
    let config = tempfile::tempdir().unwrap();
    let config = config.path().to_str().unwrap();
    let by_name = proxy.listener.host("localhost");
    let credentials = [
        ("V6_REGISTRY_USERNAME", s.auth_user.as_str()),
        ("V6_REGISTRY_PASSWORD", s.auth_password.as_str()),
        ("DOCKER_CONFIG", config),
    ];
    let env = |host: &'static str| -> Vec<(&str, String)> {
        let mut env: Vec<(&str, String)> = credentials
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        env.push(("DOCKER_HOST", proxy.listener.host(host)));
        env
    };
    let pairs = |env: &[(&'static str, String)]| -> Vec<(&'static str, String)> { env.to_vec() };
    let run = |host: &'static str, args: &[&str]| {
        let env = pairs(&env(host));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cargo_v6_env(dir.path(), &env, args)
    };

    let refusal =
        format!("refusing to send the registry credentials to the Docker engine at {by_name}");
    for args in [&["v6", "doctor"][..], &["v6", "publish"][..]] {
        let stderr = fails(&run("localhost", args));
        assert!(stderr.contains(&refusal), "{args:?}: {stderr}");
        assert!(stderr.contains("even `localhost`"), "{args:?}: {stderr}");
    }
    assert!(!stderr_says_ok_for_the_engine(&run(
        "localhost",
        &["v6", "doctor"]
    )));
    assert!(!proxy.saw_registry_auth.load(Ordering::SeqCst));

    // The same engine by its loopback IP: doctor is fine.
    let out = run("127.0.0.1", &["v6", "doctor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stderr_says_ok_for_the_engine(&out));
}

fn stderr_says_ok_for_the_engine(out: &Output) -> bool {
    text(&out.stderr)
        .lines()
        .any(|l| l.trim_start().starts_with("ok") && l.contains("Docker engine at"))
}

// ------------------------------------------------------------------------------- signals

/// The containers (running or not) that runs of `method` made: cargo v6 labels them with it.
fn containers_of(method: &str) -> Vec<String> {
    let label = format!("label=io.cargo-v6.run={method}");
    let out = docker(&["ps", "-aq", "--filter", &label]);
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// The local tags of `image`'s repository.
fn local_tags(image: &str) -> Vec<String> {
    let out = docker(&["images", "--format", "{{.Tag}}", image]);
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// Waits up to `limit` for `condition`.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    condition()
}

/// Where a container is when the signal comes (`docker ps --filter status=...`).
#[derive(Debug, Clone, Copy)]
enum State {
    Created,
    Running,
}

/// Starts `cargo v6 ARGS` in `dir` with `tmp` as TMPDIR and `env`, waits until a container
/// for `method` is in `state`, sends `signal`, and returns how the process ended and its
/// stderr.
fn signalled(
    dir: &Path,
    tmp: &Path,
    env: &[(&str, &str)],
    (method, state): (&str, State),
    args: &[&str],
    signal: i32,
) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-v6"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp)
        .env_remove("V6_REGISTRY_USERNAME")
        .env_remove("V6_REGISTRY_PASSWORD")
        .envs(env.iter().copied())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let running = eventually(Duration::from_secs(120), || {
        let out = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=io.cargo-v6.run={method}"),
            "--filter",
            match state {
                State::Created => "status=created",
                State::Running => "status=running",
            },
        ]);
        !text(&out.stdout).trim().is_empty()
    });
    if !running {
        let _ = child.kill();
    }
    // SAFETY: kill(2) on the child this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cargo-v6 still runs 60 s after signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap();
    assert!(
        running,
        "no container of `{method}` was {state:?}:\n{stderr}"
    );
    (status, stderr)
}

/// A busybox project whose image sleeps: `run` and `--smoke` wait on it.
fn sleeping_project(name: &str) -> (tempfile::TempDir, String) {
    let image = format!("{}/{}", stack().registry, unique(name));
    let dir = busybox_project(&image, "zzz\n", "");
    let manifest = dir.path().join("v6.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "command = [\"cat\", \"/app/hello.txt\"]",
        "command = [\"sleep\", \"600\"]",
    );
    std::fs::write(&manifest, text).unwrap();
    (dir, image)
}

#[test]
fn sigterm_and_sighup_clean_up_like_ctrl_c() {
    let (dir, image) = sleeping_project("signal");
    let _cleanup = LocalImages(image.clone());
    // The method names the containers (label `io.cargo-v6.run`); the image ignores it.
    let method = unique("sleep").replace(['/', '-'], "_");
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
        // `run`: its container and its work folder.
        let tmp = tempfile::tempdir().unwrap();
        let args = ["v6", "run", method.as_str()];
        let running = (method.as_str(), State::Running);
        let (status, stderr) = signalled(dir.path(), tmp.path(), &[], running, &args, signal);
        assert_eq!(status.signal(), Some(signal), "{status:?}\n{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        assert!(stderr.contains("removed container"), "{stderr}");
        assert!(containers_of(&method).is_empty(), "{name}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{name}: {left:?} left in TMPDIR\n{stderr}");
    }

    // `publish --smoke`: the smoke container and the build tag.
    let tmp = tempfile::tempdir().unwrap();
    let before = local_tags(&image);
    let args = [
        "v6",
        "publish",
        "--set-version",
        "2.0.0",
        "--smoke",
        method.as_str(),
    ];
    let running = (method.as_str(), State::Running);
    let (status, stderr) = signalled(dir.path(), tmp.path(), &[], running, &args, libc::SIGTERM);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("removed local tag"), "{stderr}");
    assert!(containers_of(&method).is_empty(), "{stderr}");
    assert_eq!(local_tags(&image), before, "{stderr}");
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    assert!(support::repo_tags(&image).is_empty());
}

#[test]
fn a_signal_while_the_engine_creates_the_container_removes_it_by_name() {
    // The engine creates the container, and its answer (the container's id) never comes.
    let proxy = EngineProxy::start(Freeze::Answer("/containers/create"));
    let host = proxy.listener.host("127.0.0.1");
    let (dir, image) = sleeping_project("created");
    let _cleanup = LocalImages(image.clone());
    let method = unique("create").replace(['/', '-'], "_");
    let tmp = tempfile::tempdir().unwrap();
    let created = (method.as_str(), State::Created);
    let args = ["v6", "run", method.as_str()];
    let env = [("DOCKER_HOST", host.as_str())];
    let (status, stderr) = signalled(dir.path(), tmp.path(), &env, created, &args, libc::SIGTERM);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{stderr}");
    assert!(
        stderr.contains("removed container cargo-v6-run-"),
        "{stderr}"
    );
    assert!(containers_of(&method).is_empty(), "{stderr}");
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
}
