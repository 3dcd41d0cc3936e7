//! Fault tests against the real stack that `scripts/stack up` starts (a Docker engine, the
//! open registry, skopeo as an independent client). `scripts/test` exports the stack's
//! addresses; without them every test here fails (never skips) with a message that says how
//! to start the stack.
//!
//! - **The registry dies in the middle of a push.** A fault-injecting TCP proxy, [`Proxy`],
//!   listens on `127.0.0.1:<ephemeral port>` and forwards every connection to the real open
//!   registry. The project publishes to `127.0.0.1:<proxy port>/<repo>`: both the engine and
//!   cargo-v6 speak plain HTTP to loopback registries, so the proxy sees every byte. It starts
//!   *armed* with a budget of client-to-server bytes (summed over all connections); the
//!   connection whose bytes exhaust the budget trips it: the proxy shuts down every socket it
//!   holds, both directions, as if the registry process had died. The image carries a layer
//!   of incompressible bytes several times the budget, so the cut falls into a blob upload.
//!   From then on the registry is back *read-only*, as distribution is in maintenance mode:
//!   reads pass, and every write (`POST`, `PUT`, `PATCH`, `DELETE`) gets the `405 Method Not
//!   Allowed` that distribution's read-only mode answers, without reaching the registry.
//!   Why not a registry that stays unreachable: dockerd retries an upload that failed on a
//!   connection error four times, 5, 10, 15 and 20 s apart (moby 20.10
//!   `distribution/xfer/upload.go`), 50 s of waiting that prove nothing about cargo v6;
//!   a 4xx it cannot parse is final (`retryOnError` in `distribution/errors.go`), so the
//!   engine's first retry (after 5 s) ends the push. The cut itself is unchanged.
//!   The test checks exit 1, an `error:` naming the push and the registry, and, through the
//!   real registry directly, that the repository has no tag but the run's claim, which the
//!   read-only registry kept it from deleting. Then the proxy is switched to pass-through (the
//!   registry writable again) and the same publish completes once that claim has gone stale,
//!   its printed digest being the one the exact tag holds, and deletes the claim.
//! - **Ctrl-C during a build.** `publish -v` of a project whose RUN step sleeps is started
//!   with `TMPDIR` pointing at an empty directory; once the engine reports the RUN step's
//!   container and that container is running, the process gets SIGINT. It must end at once
//!   without a panic, leave `TMPDIR` empty and the project directory unchanged, tag nothing
//!   locally or in the registry, and the engine must remove the step's container.
//!
//! Everything is bounded: child processes are killed after a deadline, the proxy's threads
//! end when the proxy is dropped, and it only ever listens on and connects to loopback.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[path = "support/hostile.rs"]
mod hostile;
mod support;
use hostile::{Answer, Hostile, response};
use support::{
    LocalImages, assert_ok, busybox_project, digest_of, docker, repo_tags, stack, text, unique,
};

/// Force-removes a container when the test ends, should the engine have left it behind.
struct Container(Option<String>);

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(id) = &self.0 {
            docker(&["rm", "-f", id]);
        }
    }
}

/// `bytes` of xorshift output: incompressible for gzip, so the layer is as big on the wire.
fn noise(bytes: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(bytes + 8);
    while out.len() < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(bytes);
    out
}

/// `cargo-v6 v6 ARGS` in `dir`, without ambient registry credentials.
fn cargo_v6_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-v6"));
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("V6_REGISTRY_USERNAME")
        .env_remove("V6_REGISTRY_PASSWORD")
        .arg("v6")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, or kills it and fails the test after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            signal(pid, "KILL");
            let output = finished.recv_timeout(Duration::from_secs(10));
            panic!(
                "{cmd:?} did not finish within {limit:?}; killed it. {}",
                output
                    .ok()
                    .and_then(Result::ok)
                    .map(|o| format!("stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr)))
                    .unwrap_or_default()
            );
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

// ---- the fault-injecting proxy ----

const PASS: u8 = 0;
const ARMED: u8 = 1;
/// After the cut: the registry is back in read-only (maintenance) mode.
const READ_ONLY: u8 = 2;
/// The registry stops answering, as a SIGSTOPped process does: connections are accepted and
/// held, nothing is forwarded either way.
const FROZEN: u8 = 3;
/// Passes everything until the first blob upload starts, then freezes.
const FREEZE_ON_UPLOAD: u8 = 4;
/// Every third request that cargo-v6 itself sends (its `User-Agent`) fails: with a 500, a
/// 429 with `Retry-After`, or a reset connection, in turn. The engine's requests pass: its
/// own retries are the engine's business.
const FLAKY: u8 = 5;

/// The failures `FLAKY` answers with, in turn (`None`: reset the connection).
const FLAKY_ANSWERS: [Option<&[u8]>; 3] = [
    Some(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    Some(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    None,
];

/// What distribution 2.8 in read-only maintenance mode answers to a write (`POST`, `PUT`,
/// `PATCH`, `DELETE`): its gorilla method router has no handler for the method. Captured from
/// `docker-registry serve` with `storage.maintenance.readonly.enabled: true` (`Date` left
/// out, `Connection: close` added because the proxy ends the connection after it). dockerd
/// cannot parse the plain-text body of a 4xx, and wraps such an error in `DoNotRetry`
/// (moby 20.10 `distribution/errors.go`, `retryOnError`: `*client.UnexpectedHTTPResponseError`).
const READ_ONLY_WRITE_ANSWER: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\n\
Allow: GET, HEAD\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Docker-Distribution-Api-Version: registry/2.0\r\n\
X-Content-Type-Options: nosniff\r\n\
Content-Length: 19\r\n\
Connection: close\r\n\
\r\n\
Method not allowed\n";

/// A TCP proxy on loopback in front of one upstream (see the module documentation).
struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    /// `PASS`, `ARMED` or `READ_ONLY`.
    mode: AtomicU8,
    /// Client-to-server bytes still allowed while `ARMED`.
    budget: AtomicI64,
    /// Set when the proxy is dropped.
    stop: AtomicBool,
    /// Every socket of every live connection, both ends, to cut them from anywhere.
    sockets: Mutex<Vec<TcpStream>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    /// The request line of the request the cut fell into.
    cut_during: Mutex<Option<String>>,
    /// The request lines of the writes refused while `READ_ONLY`.
    refused: Mutex<Vec<String>>,
    /// cargo-v6's requests seen while `FLAKY`, and the ones failed.
    flaky_seen: AtomicI64,
    flaky_failed: Mutex<Vec<String>>,
}

impl Shared {
    /// Shuts down every socket held: blocked reads on them return at once.
    fn cut_all(&self) {
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Counts `n` client-to-server bytes of a connection whose last request line is `request`;
    /// `false` when they trip the proxy: then every connection is cut, and from then on the
    /// registry answers as a read-only one.
    fn allow(&self, n: usize, request: &str) -> bool {
        if self.mode.load(Ordering::SeqCst) != ARMED {
            return true;
        }
        let n = i64::try_from(n).unwrap();
        if self.budget.fetch_sub(n, Ordering::SeqCst) > n {
            return true;
        }
        // Only the connection that exhausts the budget trips the proxy.
        if self
            .mode
            .compare_exchange(ARMED, READ_ONLY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            *self.cut_during.lock().unwrap() = Some(request.to_string());
            self.cut_all();
        }
        false
    }
}

impl Proxy {
    /// A proxy to `upstream` (`host:port` on loopback), armed to cut after `budget` bytes.
    fn start(upstream: &str, budget: i64) -> Proxy {
        let (upstream, listener, addr) = hostile::listen_before(upstream);
        let shared = Arc::new(Shared {
            upstream,
            mode: AtomicU8::new(ARMED),
            budget: AtomicI64::new(budget),
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
            cut_during: Mutex::new(None),
            refused: Mutex::new(Vec::new()),
            flaky_seen: AtomicI64::new(0),
            flaky_failed: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The request line of the request that was cut, once the proxy tripped.
    fn cut_during(&self) -> Option<String> {
        self.shared.cut_during.lock().unwrap().clone()
    }

    /// The request lines of the writes refused since the cut.
    fn refused(&self) -> Vec<String> {
        self.shared.refused.lock().unwrap().clone()
    }

    /// The registry is back, writable: forward everything from now on.
    fn pass_through(&self) {
        self.shared.mode.store(PASS, Ordering::SeqCst);
    }

    /// Switches to `mode` (`FROZEN`, `FREEZE_ON_UPLOAD`, `FLAKY`, ...).
    fn set_mode(&self, mode: u8) {
        self.shared.mode.store(mode, Ordering::SeqCst);
    }

    /// Whether the proxy is frozen now.
    fn frozen(&self) -> bool {
        self.shared.mode.load(Ordering::SeqCst) == FROZEN
    }

    /// The request lines that `FLAKY` failed.
    fn flaky_failed(&self) -> Vec<String> {
        self.shared.flaky_failed.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees `stop` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.cut_all();
        let pumps: Vec<_> = self.shared.pumps.lock().unwrap().drain(..).collect();
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
        else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        {
            let mut sockets = shared.sockets.lock().unwrap();
            sockets.push(client.try_clone().unwrap());
            sockets.push(server.try_clone().unwrap());
        }
        let mut pumps = shared.pumps.lock().unwrap();
        for (from, to, upload) in [
            (
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                true,
            ),
            (server, client, false),
        ] {
            let shared = Arc::clone(shared);
            pumps.push(std::thread::spawn(move || pump(from, to, upload, &shared)));
        }
    }
}

/// The request line that `chunk` starts with, if it starts a request (a body of noise almost
/// never looks like one).
fn request_line(chunk: &[u8]) -> Option<String> {
    let head = &chunk[..chunk.len().min(512)];
    ["GET ", "HEAD ", "POST ", "PUT ", "PATCH ", "DELETE "]
        .iter()
        .any(|method| head.starts_with(method.as_bytes()))
        .then(|| {
            let end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
            String::from_utf8_lossy(&head[..end]).into_owned()
        })
}

/// Answers a write request as a read-only registry does, then ends the connection: the
/// upstream never sees the request. The client's remaining bytes are read and dropped (as a
/// server does before closing), so that it reads the answer rather than a reset.
fn refuse_write(mut client: TcpStream, server: &TcpStream, request: String, shared: &Shared) {
    shared.refused.lock().unwrap().push(request);
    // The answer first: ending the upstream makes the other pump half-close the client.
    let _ = client.write_all(READ_ONLY_WRITE_ANSWER);
    let _ = client.shutdown(Shutdown::Write);
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sink = [0u8; 16 * 1024];
    while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
}

/// Copies `from` to `to` until either ends or the proxy cuts; `upload` counts against the
/// budget, and is where a read-only registry refuses writes.
fn pump(mut from: TcpStream, mut to: TcpStream, upload: bool, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut request = String::new();
    loop {
        // Frozen: hold the connection, forward nothing, until thawed or dropped.
        while shared.mode.load(Ordering::SeqCst) == FROZEN && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if upload {
            if let Some(line) = request_line(&buf[..n]) {
                let mode = shared.mode.load(Ordering::SeqCst);
                if mode == FREEZE_ON_UPLOAD && line.contains("/blobs/uploads/") {
                    // Hold this request too: it is forwarded, intact, once thawed.
                    shared.mode.store(FROZEN, Ordering::SeqCst);
                    while shared.mode.load(Ordering::SeqCst) == FROZEN
                        && !shared.stop.load(Ordering::SeqCst)
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                let ours = String::from_utf8_lossy(&buf[..n.min(2048)]).contains("cargo-v6/");
                if mode == FLAKY && ours {
                    let seen = shared.flaky_seen.fetch_add(1, Ordering::SeqCst);
                    if seen % 3 == 2 {
                        let answer = FLAKY_ANSWERS[(seen / 3 % 3) as usize];
                        shared.flaky_failed.lock().unwrap().push(line);
                        if let Some(answer) = answer {
                            let _ = from.write_all(answer);
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                        return;
                    }
                }
                let write = !(line.starts_with("GET ") || line.starts_with("HEAD "));
                if write && shared.mode.load(Ordering::SeqCst) == READ_ONLY {
                    refuse_write(from, &to, line, shared);
                    return;
                }
                request = line;
            }
            if !shared.allow(n, &request) {
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // Half-close: the other direction may still carry the answer.
    let _ = to.shutdown(Shutdown::Write);
}

// ---- tests ----

#[test]
fn a_registry_dying_mid_push_leaves_no_tag_and_a_rerun_completes() {
    let real_registry = stack().registry;
    // 1 MiB of requests get through; the layer is 8 MiB of noise.
    let proxy = Proxy::start(&real_registry, 1 << 20);
    let repo = unique("cut");
    let image = format!("{}/{repo}", proxy.addr);
    let direct = format!("{real_registry}/{repo}");
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "fault\n", "");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    std::fs::write(dir.path().join("noise.bin"), noise(8 << 20, seed)).unwrap();

    let started = Instant::now();
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish"]),
        Duration::from_secs(300),
    );
    let stderr = text(&out.stderr);
    let cut_during = proxy
        .cut_during()
        .unwrap_or_else(|| panic!("the proxy never cut (under 1 MiB sent?)\nstderr:\n{stderr}"));
    assert!(
        cut_during.contains("/blobs/uploads/"),
        "cut during a blob upload, not `{cut_during}`"
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    // Progress lines come first; the error is the last thing said, naming the push and the
    // registry.
    let error = &stderr[stderr
        .find("error:")
        .unwrap_or_else(|| panic!("no `error:`:\n{stderr}"))..];
    assert!(
        error.starts_with(&format!("error: cannot push {image}:1.0.0: ")),
        "{stderr}"
    );
    // One error line, then the hint that a re-run completes the job.
    let lines: Vec<&str> = error.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "{error}");
    assert!(
        lines[1].starts_with("help: ") && lines[1].contains("again"),
        "{error}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !text(&out.stdout).contains("@sha256:"),
        "{}",
        text(&out.stdout)
    );
    eprintln!(
        "cut during `{cut_during}`; writes refused read-only since: {:?}; the publish failed \
         after {:?}: {}",
        proxy.refused(),
        started.elapsed(),
        error.trim_end()
    );
    // The real registry, not through the proxy: no version or alias tag; only the run's claim
    // (README, "Guarantees"), written before the cut, which a read-only registry does not let
    // it delete: the re-run waits for it to go stale (45 s), then deletes it.
    let left = repo_tags(&direct);
    assert!(
        left.len() == 1 && left[0].starts_with("v6-claim-1.0.0-"),
        "{left:?}"
    );
    assert_eq!(digest_of(&format!("{direct}:1.0.0")), None);

    // The registry is back: the same publish completes.
    proxy.pass_through();
    let started = Instant::now();
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish"]),
        Duration::from_secs(300),
    );
    assert_ok(&out);
    eprintln!("re-run took {:?}", started.elapsed());
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap();
    let (printed_image, digest) = last.split_once('@').unwrap();
    assert_eq!(printed_image, image);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{last}"
    );
    assert_eq!(
        digest_of(&format!("{direct}:1.0.0")).as_deref(),
        Some(digest)
    );
    assert_eq!(repo_tags(&direct), ["1", "1.0", "1.0.0", "latest"]);
}

/// Relative paths of every file and directory below `root`, with file sizes.
fn tree(root: &Path) -> BTreeSet<(PathBuf, u64)> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let path = entry.path();
            out.insert((path.strip_prefix(root).unwrap().to_path_buf(), meta.len()));
            if meta.is_dir() {
                todo.push(path);
            }
        }
    }
    out
}

/// Ids (full) of the containers whose command mentions `needle`.
fn containers_running(needle: &str) -> BTreeSet<String> {
    let out = docker(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"]);
    assert!(out.status.success(), "docker ps: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Waits (bounded) for a line of `lines` that satisfies `want`; every line seen is kept.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = lines.recv_timeout(left).ok()?;
        seen.push(line.clone());
        if want(&line) {
            return Some(line);
        }
    }
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the untagged intermediate images an interrupted build left in the engine's cache,
/// newest first: those from the COPY step on, which hold this test's unique context (earlier
/// ones are shared with every busybox build). Tagged images are never touched.
struct IntermediateImages(Vec<String>);

impl IntermediateImages {
    /// The ` ---> <id>` results the builder printed from the COPY step on.
    fn from_output(lines: &[String]) -> Self {
        let mut ids = Vec::new();
        let mut copied = false;
        for line in lines {
            copied |= line.contains("Step") && line.contains(": COPY ");
            if let Some(id) = line.strip_prefix(" ---> ")
                && copied
                && id.len() == 12
                && id.bytes().all(|b| b.is_ascii_hexdigit())
            {
                ids.push(id.to_string());
            }
        }
        IntermediateImages(ids)
    }
}

impl Drop for IntermediateImages {
    fn drop(&mut self) {
        for id in self.0.iter().rev() {
            let tags = docker(&["inspect", "-f", "{{len .RepoTags}}", id]);
            if text(&tags.stdout).trim() == "0" {
                // Not its parents: the steps before COPY are shared with concurrent builds.
                docker(&["rmi", "--no-prune", id]);
            }
        }
    }
}

struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn ctrl_c_during_a_build_leaves_no_debris() {
    let s = stack();
    let image = format!("{}/{}", s.registry, unique("interrupt"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "fault\n", "install = \"sleep 20\"\n");
    let tmp = tempfile::tempdir().unwrap();
    let project_before = tree(dir.path());
    let sleepers_before = containers_running("sleep 20");

    let mut cmd = cargo_v6_command(dir.path(), &["publish", "-v"]);
    let child = cmd
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = KillOnDrop(Some(child));
    let stderr = child.0.as_mut().unwrap().stderr.take().unwrap();
    let (line_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });

    // The RUN step, then the engine's ` ---> Running in <container>` for it.
    let mut seen = Vec::new();
    let step = wait_for_line(&lines, &mut seen, Duration::from_secs(120), |l| {
        l.contains("Step") && l.ends_with("RUN sleep 20")
    });
    assert!(step.is_some(), "no RUN step:\n{}", seen.join("\n"));
    let running = wait_for_line(&lines, &mut seen, Duration::from_secs(60), |l| {
        l.contains("Running in ")
    })
    .unwrap_or_else(|| panic!("no container for the RUN step:\n{}", seen.join("\n")));
    let container = running
        .rsplit("Running in ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(!container.is_empty(), "{running}");
    let _container_cleanup = Container(Some(container.clone()));
    assert!(
        eventually(Duration::from_secs(30), || {
            text(&docker(&["inspect", "-f", "{{.State.Running}}", &container]).stdout).trim()
                == "true"
        }),
        "the RUN step's container {container} never ran"
    );

    // Ctrl-C.
    signal(pid, "INT");
    let interrupted = Instant::now();
    let mut waited = child.0.take().unwrap();
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(waited.wait());
    });
    let status = match exited.recv_timeout(Duration::from_secs(10)) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            signal(pid, "KILL");
            panic!("cargo-v6 still ran 10 s after SIGINT");
        }
    };
    let took = interrupted.elapsed();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    let intermediate = IntermediateImages::from_output(&seen);
    eprintln!("intermediate images to remove: {:?}", intermediate.0);
    let stderr = seen.join("\n");
    eprintln!("exited {took:?} after SIGINT: {status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    assert!(!status.success(), "{status:?}\n{stderr}");
    assert!(
        status.signal() == Some(2) || status.code().is_some_and(|c| c != 0),
        "{status:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // No temporary files, nothing written into the project.
    let leftovers = tree(tmp.path());
    assert!(leftovers.is_empty(), "TMPDIR: {leftovers:?}");
    assert_eq!(tree(dir.path()), project_before, "the project changed");

    // The engine removes the step's container once the client is gone (classic builder,
    // forcerm); nothing else sleeping appeared either.
    let since_kill = Instant::now();
    let gone = eventually(Duration::from_secs(30), || {
        text(
            &docker(&[
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                &format!("id={container}"),
            ])
            .stdout,
        )
        .trim()
        .is_empty()
    });
    assert!(
        gone,
        "the engine left the RUN step's container {container} behind: {}",
        text(&docker(&["ps", "-a", "--filter", &format!("id={container}")]).stdout)
    );
    eprintln!(
        "the step's container was gone {:?} later",
        since_kill.elapsed()
    );
    let new_sleepers: Vec<_> = containers_running("sleep 20")
        .difference(&sleepers_before)
        .cloned()
        .collect();
    assert!(new_sleepers.is_empty(), "left behind: {new_sleepers:?}");

    // Nothing tagged, locally or in the registry.
    let local = docker(&["images", "-q", &image]);
    assert!(text(&local.stdout).trim().is_empty(), "tagged locally");
    assert_eq!(repo_tags(&image), Vec::<String>::new());
}

#[test]
fn a_flaky_registry_is_retried_and_the_publish_completes() {
    let real_registry = stack().registry;
    let proxy = Proxy::start(&real_registry, i64::MAX);
    proxy.set_mode(FLAKY);
    let repo = unique("flaky");
    let image = format!("{}/{repo}", proxy.addr);
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "flaky\n", "");
    for round in ["first", "unchanged"] {
        let out = run_bounded(
            cargo_v6_command(dir.path(), &["publish", "-v"]),
            Duration::from_secs(120),
        );
        let stderr = text(&out.stderr);
        assert_ok(&out);
        assert!(
            stderr.contains("Retry "),
            "{round}: retries are shown with -v:\n{stderr}"
        );
        let stdout = text(&out.stdout);
        let digest = support::printed_digest(&stdout);
        assert_eq!(
            digest_of(&format!("{real_registry}/{repo}:1.0.0")).as_deref(),
            Some(digest.as_str()),
            "{round}"
        );
    }
    let failed = proxy.flaky_failed();
    assert!(
        failed.len() >= 3,
        "500, 429 and a reset were all injected: {failed:?}"
    );
}

#[test]
fn a_frozen_registry_ends_the_run_after_the_stall_timeout_and_a_rerun_completes() {
    let real_registry = stack().registry;
    let proxy = Proxy::start(&real_registry, i64::MAX);
    let repo = unique("frozen");
    let image = format!("{}/{repo}", proxy.addr);
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "frozen\n", "");
    std::fs::write(dir.path().join("noise.bin"), noise(2 << 20, 7)).unwrap();

    // Frozen from the start: the first registry request stalls.
    proxy.set_mode(FROZEN);
    let started = Instant::now();
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish", "--stall-timeout", "2"]),
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&proxy.addr.to_string()),
        "names the registry: {stderr}"
    );

    // Frozen in the middle of the push: the engine's push stalls.
    proxy.set_mode(FREEZE_ON_UPLOAD);
    let started = Instant::now();
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish", "--stall-timeout", "2"]),
        Duration::from_secs(90),
    );
    let stderr = text(&out.stderr);
    assert!(
        proxy.frozen(),
        "the freeze fell into a blob upload: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no progress for 2 s"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(digest_of(&format!("{real_registry}/{repo}:1.0.0")), None);

    // Thawed (SIGCONT): the same publish completes.
    proxy.pass_through();
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish"]),
        Duration::from_secs(120),
    );
    assert_ok(&out);
    assert!(digest_of(&format!("{real_registry}/{repo}:1.0.0")).is_some());
}

/// Every form the stack's credentials could take in text: the password, and the base64 of
/// `user:password` (the `Basic` value) in both alphabets, with and without padding.
fn secret_forms(user: &str, password: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let pair = format!("{user}:{password}");
    vec![
        password.to_owned(),
        STANDARD.encode(&pair),
        URL_SAFE.encode(&pair),
        STANDARD_NO_PAD.encode(&pair),
        URL_SAFE_NO_PAD.encode(&pair),
    ]
}

/// A registry (or a proxy in front of it) that echoes the request's `Authorization` header in
/// an error body, for the tag listing, an alias write, the engine's manifest push and the
/// engine's pull for `run`: neither the error on stderr nor the JSON error line holds the
/// secret in any form.
#[test]
fn an_echoed_authorization_header_is_redacted_everywhere() {
    let s = stack();
    for (case, format) in [
        ("tags/list", "human"),
        ("tags/list", "json"),
        ("alias", "json"),
        ("engine", "human"),
        ("pull", "human"),
    ] {
        let echoed = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = Arc::clone(&echoed);
        let proxy = Hostile::start(&s.auth_registry, move |request| {
            let hit = match case {
                "tags/list" => request.ours() && request.path.contains("/tags/list"),
                "alias" => request.method == "PUT" && request.path.ends_with("/manifests/latest"),
                "pull" => !request.ours() && request.path.contains("/manifests/"),
                _ => {
                    !request.ours()
                        && request.method == "PUT"
                        && request.path.contains("/manifests/")
                }
            };
            match (hit, request.header("authorization")) {
                (true, Some(authorization)) => {
                    seen.lock().unwrap().push(authorization.to_owned());
                    let echo = format!("Authorization: {authorization}");
                    let body = serde_json::json!({"errors": [{
                        "code": "MANIFEST_INVALID",
                        "message": format!("rejected request with {echo}"),
                        "detail": {"headers": echo},
                    }]});
                    Answer::Respond(response(
                        "400 Bad Request",
                        &["Content-Type: application/json"],
                        body.to_string().as_bytes(),
                    ))
                }
                _ => Answer::Forward,
            }
        });
        let image = format!("{}/{}", proxy.host(), unique("echo"));
        let _cleanup = LocalImages(image.clone());
        let dir = busybox_project(&image, "echo\n", "");
        let out = run_bounded(
            {
                let image = format!("{image}:1.0.0");
                let args: &[&str] = match case {
                    "pull" => &[
                        "run",
                        "partial_sum",
                        "--image",
                        &image,
                        "--vantage6",
                        "4.15",
                    ],
                    _ => &["publish", "-v", "--message-format", format],
                };
                let mut cmd = cargo_v6_command(dir.path(), args);
                cmd.env("V6_REGISTRY_USERNAME", &s.auth_user)
                    .env("V6_REGISTRY_PASSWORD", &s.auth_password);
                cmd
            },
            Duration::from_secs(180),
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let echoed = echoed.lock().unwrap().clone();
        assert!(
            echoed.iter().any(|a| a.starts_with("Basic ")),
            "{case}: the proxy echoed a Basic authorization: {echoed:?}\n{stderr}"
        );
        assert_eq!(out.status.code(), Some(1), "{case}: {stdout}\n{stderr}");
        let shown = format!("{stdout}\n{stderr}");
        assert!(shown.contains("rejected request with"), "{case}: {shown}");
        for secret in secret_forms(&s.auth_user, &s.auth_password)
            .into_iter()
            .chain(echoed.iter().map(|a| a["Basic ".len()..].to_owned()))
        {
            assert!(
                !shown.contains(&secret),
                "{case}/{format}: `{secret}` in:\n{shown}"
            );
        }
        if format == "json" {
            let error = stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["reason"] == "error");
            assert!(error.is_some(), "{case}: a JSON error line: {stdout}");
        }
    }
}

/// A registry that answers a manifest request with gigabytes (announced, or sent without a
/// length until the connection ends): the publish fails fast, naming the bound, having read
/// no more than a few MiB of it.
#[test]
fn a_gigabyte_manifest_fails_fast_with_bounded_memory() {
    let s = stack();
    for announced in [Some(3_000_000_000u64), None] {
        let hostile = Arc::new(AtomicBool::new(false));
        let on = Arc::clone(&hostile);
        let proxy = Hostile::start(&s.registry, move |request| {
            if on.load(Ordering::SeqCst)
                && request.ours()
                && request.method == "GET"
                && request.path.ends_with("/manifests/1.0.0")
            {
                Answer::Endless {
                    content_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                    length: announced,
                }
            } else {
                Answer::Forward
            }
        });
        let image = format!("{}/{}", proxy.host(), unique("huge"));
        let _cleanup = LocalImages(image.clone());
        let dir = busybox_project(&image, "huge\n", "");
        assert_ok(&run_bounded(
            cargo_v6_command(dir.path(), &["publish"]),
            Duration::from_secs(180),
        ));
        hostile.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let out = run_bounded(
            cargo_v6_command(dir.path(), &["publish"]),
            Duration::from_secs(120),
        );
        let took = started.elapsed();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{announced:?}: {stderr}");
        assert!(
            stderr.contains("larger than 4 MiB"),
            "{announced:?}: names the bound: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        let sent = proxy.endless_sent();
        eprintln!("{announced:?}: failed after {took:?}, {sent} bytes sent: {stderr}");
        assert!(took < Duration::from_secs(30), "{announced:?}: {took:?}");
        // What the client took in, socket buffers included: far from the gigabytes offered.
        assert!(sent < 64 << 20, "{announced:?}: {sent} bytes read");
    }
}

/// A `429` is retried by its status, whatever its error code says (here `DENIED`, which a
/// `403` would mean): the publish completes, and `-v` shows the retries.
#[test]
fn a_429_with_any_error_code_is_retried() {
    let s = stack();
    let count = Arc::new(AtomicI64::new(0));
    let counter = Arc::clone(&count);
    let proxy = Hostile::start(&s.registry, move |request| {
        // Every other request of cargo-v6's own, the engine's pass.
        if request.ours() && counter.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            let body = br#"{"errors":[{"code":"DENIED","message":"rate limited, slow down"}]}"#;
            Answer::Respond(response(
                "429 Too Many Requests",
                &["Content-Type: application/json", "Retry-After: 1"],
                body,
            ))
        } else {
            Answer::Forward
        }
    });
    let repo = unique("limited");
    let image = format!("{}/{repo}", proxy.host());
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "limited\n", "");
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish", "-v"]),
        Duration::from_secs(180),
    );
    let stderr = text(&out.stderr);
    assert_ok(&out);
    assert!(stderr.contains("Retry "), "retries shown with -v: {stderr}");
    assert!(stderr.contains("429"), "{stderr}");
    assert_eq!(
        digest_of(&format!("{}/{repo}:1.0.0", s.registry)).as_deref(),
        Some(support::printed_digest(&text(&out.stdout)).as_str())
    );
}

/// `curl` against the real registry (`http://REGISTRY/v2/PATH`) with `args`; its stdout.
fn curl_registry(registry: &str, path: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sSf", "--max-time", "30"])
        .args(args)
        .arg(format!("http://{registry}/v2/{path}"))
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {path}: {}", text(&out.stderr));
    out.stdout
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Writes, behind cargo-v6's back, the manifest of `repo:tag` again with one more newline: an
/// image of the same config (the same labels, so the same fingerprint) under another digest,
/// as another engine's build of the same commit gives. Returns that digest.
fn republish_same_input(registry: &str, repo: &str, tag: &str) -> String {
    let path = format!("{repo}/manifests/{tag}");
    let mut manifest = curl_registry(
        registry,
        &path,
        &["-H", &format!("Accept: {DOCKER_MANIFEST}")],
    );
    manifest.push(b'\n');
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &manifest).unwrap();
    curl_registry(
        registry,
        &path,
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {DOCKER_MANIFEST}"),
            "--data-binary",
            &format!("@{}", file.path().display()),
        ],
    );
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&manifest)))
}

/// Two jobs publishing one commit through two engines: the other job's image (same input, its
/// own digest) lands under the exact tag between this run's push and its last check. The run
/// counts as unchanged (README "Guarantees"): exit 0 with the digest the tag holds, and the
/// aliases it wrote follow that digest.
#[test]
fn the_same_input_published_by_another_engine_counts_as_unchanged() {
    let s = stack();
    let repo = unique("twin");
    let registry = s.registry.clone();
    let twin = Arc::new(Mutex::new(None::<String>));
    let written = Arc::clone(&twin);
    let repo_in_rule = repo.clone();
    let pushed = Arc::new(AtomicBool::new(false));
    let proxy = Hostile::start(&s.registry, move |request| {
        let exact = request.path.ends_with("/manifests/1.0.0");
        if exact && request.method == "PUT" && !request.ours() {
            pushed.store(true, Ordering::SeqCst);
        }
        // cargo-v6's first HEAD of the exact tag after the engine's push: its last check.
        let mut twin = written.lock().unwrap();
        if exact
            && request.ours()
            && request.method == "HEAD"
            && pushed.load(Ordering::SeqCst)
            && twin.is_none()
        {
            *twin = Some(republish_same_input(&registry, &repo_in_rule, "1.0.0"));
        }
        Answer::Forward
    });
    let image = format!("{}/{repo}", proxy.host());
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "twin\n", "");
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish", "--message-format", "json"]),
        Duration::from_secs(180),
    );
    let stdout = assert_ok(&out);
    let twin = twin
        .lock()
        .unwrap()
        .clone()
        .expect("the other job's image was written");
    let published: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(published["digest"], twin.as_str(), "{stdout}");
    for tag in ["1.0.0", "1.0", "1", "latest"] {
        assert_eq!(
            digest_of(&format!("{}/{repo}:{tag}", s.registry)).as_deref(),
            Some(twin.as_str()),
            "{tag}"
        );
    }
}

/// A registry whose `HEAD` names another digest than the manifest its `GET` serves: reported
/// as a registry inconsistency, not as another publish winning.
#[test]
fn a_head_that_lies_about_the_digest_is_named_an_inconsistency() {
    let s = stack();
    let lie = format!("sha256:{}", "0".repeat(64));
    let answer = response(
        "200 OK",
        &[
            &format!("Docker-Content-Digest: {lie}"),
            &format!("Content-Type: {DOCKER_MANIFEST}"),
        ],
        b"",
    );
    let proxy = Hostile::start(&s.registry, move |request| {
        if request.ours() && request.method == "HEAD" && request.path.ends_with("/manifests/1.0.0")
        {
            Answer::Respond(answer.clone())
        } else {
            Answer::Forward
        }
    });
    let image = format!("{}/{}", proxy.host(), unique("liar"));
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "liar\n", "");
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish"]),
        Duration::from_secs(180),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("inconsistent"), "{stderr}");
    assert!(stderr.contains(&lie), "names what HEAD says: {stderr}");
    assert!(!stderr.contains("another publish won"), "{stderr}");
}

/// A registry that answers `201 Created` to the write of an alias without storing it: the
/// publish reads the alias back, writes it again, and fails naming it; the alias is never
/// listed as pushed.
#[test]
fn an_alias_the_registry_does_not_keep_fails_the_publish() {
    let s = stack();
    let proxy = Hostile::start(&s.registry, move |request| {
        if request.method == "PUT" && request.path.ends_with("/manifests/latest") {
            Answer::Respond(response("201 Created", &[], b""))
        } else {
            Answer::Forward
        }
    });
    let repo = unique("dropped");
    let image = format!("{}/{repo}", proxy.host());
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "dropped\n", "");
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish", "--message-format", "json"]),
        Duration::from_secs(180),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{image}:latest")) && stdout.contains("does not hold it"),
        "names the alias: {stdout}"
    );
    assert!(!stdout.contains("tags_pushed"), "{stdout}");
    let writes = proxy
        .seen()
        .iter()
        .filter(|r| r.starts_with("PUT") && r.ends_with("/manifests/latest"))
        .count();
    assert_eq!(
        writes,
        3,
        "written again before giving up: {:?}",
        proxy.seen()
    );
    assert_eq!(
        repo_tags(&format!("{}/{repo}", s.registry)),
        ["1", "1.0", "1.0.0"]
    );
}

/// One `500` on the engine's manifest write during its push: the push is tried again, shown
/// with `-v`, and the publish completes.
#[test]
fn one_500_on_the_engines_manifest_push_is_retried() {
    let s = stack();
    let failed = Arc::new(AtomicBool::new(false));
    let fail = Arc::clone(&failed);
    let proxy = Hostile::start(&s.registry, move |request| {
        if !request.ours()
            && request.method == "PUT"
            && request.path.contains("/manifests/")
            && !fail.swap(true, Ordering::SeqCst)
        {
            Answer::Respond(response("500 Internal Server Error", &[], b""))
        } else {
            Answer::Forward
        }
    });
    let repo = unique("push500");
    let image = format!("{}/{repo}", proxy.host());
    let _cleanup = LocalImages(image.clone());
    let dir = busybox_project(&image, "push500\n", "");
    let out = run_bounded(
        cargo_v6_command(dir.path(), &["publish", "-v"]),
        Duration::from_secs(180),
    );
    let stderr = text(&out.stderr);
    assert!(failed.load(Ordering::SeqCst), "the 500 was injected");
    assert_ok(&out);
    assert!(
        stderr.contains("Retry ") && stderr.contains("500"),
        "{stderr}"
    );
    assert_eq!(
        digest_of(&format!("{}/{repo}:1.0.0", s.registry)).as_deref(),
        Some(support::printed_digest(&text(&out.stdout)).as_str())
    );
}

/// A registry that issues tokens (as GHCR and Docker Hub do): the token is asked for with the
/// challenge's scope and sent as `Bearer`; a token server answering with gigabytes fails the
/// run fast instead of filling memory.
#[test]
fn tokens_are_used_and_a_gigabyte_token_answer_fails_fast() {
    let s = stack();
    for endless in [false, true] {
        let realm = Arc::new(Mutex::new(String::new()));
        let rule_realm = Arc::clone(&realm);
        let bearers = Arc::new(AtomicI64::new(0));
        let counted = Arc::clone(&bearers);
        let proxy = Hostile::start(&s.registry, move |request| {
            if !request.ours() {
                return Answer::Forward;
            }
            if request.path == "/v2/" {
                let challenge = format!(
                    r#"WWW-Authenticate: Bearer realm="{}",service="hostile""#,
                    rule_realm.lock().unwrap()
                );
                return Answer::Respond(response("401 Unauthorized", &[&challenge], b""));
            }
            if request.path.starts_with("/token?") {
                assert!(
                    request.path.contains("scope=repository%3Ae2e%2F"),
                    "{}",
                    request.path
                );
                return match endless {
                    true => Answer::Endless {
                        content_type: "application/json".into(),
                        length: None,
                    },
                    false => Answer::Respond(response(
                        "200 OK",
                        &["Content-Type: application/json"],
                        br#"{"token":"t0ken-for-the-test"}"#,
                    )),
                };
            }
            if request.header("authorization") == Some("Bearer t0ken-for-the-test") {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Answer::Forward
        });
        *realm.lock().unwrap() = format!("http://{}/token", proxy.host());
        let image = format!("{}/{}", proxy.host(), unique("token"));
        let _cleanup = LocalImages(image.clone());
        let dir = busybox_project(&image, "token\n", "");
        let started = Instant::now();
        let out = run_bounded(
            cargo_v6_command(dir.path(), &["publish"]),
            Duration::from_secs(180),
        );
        let stderr = text(&out.stderr);
        if endless {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("larger than 1 MiB"), "{stderr}");
            assert!(started.elapsed() < Duration::from_secs(30));
            assert!(proxy.endless_sent() < 64 << 20, "{}", proxy.endless_sent());
        } else {
            assert_ok(&out);
            assert!(bearers.load(Ordering::SeqCst) > 0, "{:?}", proxy.seen());
        }
    }
}

/// What the proxies of [`concurrent_publishes_of_one_version_let_exactly_one_push`] share:
/// the runs of the round, cargo-v6's reads of the exact tag, the engine's writes of it, and a
/// count of the requests about claims and tag lists (for their delays).
#[derive(Default)]
struct Race {
    runs: AtomicI64,
    checks: AtomicI64,
    writes: AtomicI64,
    delayed: AtomicI64,
}

/// A proxy to `registry` for one run of the race: it delays every request about claims and
/// tag lists by up to 300 ms (so that claims, lists and pushes interleave), holds the
/// engine's writes of the exact tag until every run has read the tag right before its push
/// (for at most 10 s), and delays each write but the first by 5 s more.
fn race_proxy(registry: &str, race: &Arc<Race>) -> Hostile {
    let race = Arc::clone(race);
    Hostile::start(registry, move |request| {
        let exact = request.path.ends_with("/manifests/1.0.0");
        if exact && request.ours() && request.method == "GET" {
            race.checks.fetch_add(1, Ordering::SeqCst);
        }
        if exact && !request.ours() && request.method == "PUT" {
            let deadline = Instant::now() + Duration::from_secs(10);
            while race.checks.load(Ordering::SeqCst) < race.runs.load(Ordering::SeqCst)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if race.writes.fetch_add(1, Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_secs(5));
            }
        }
        if request.ours()
            && (request.path.contains("/manifests/v6-claim-")
                || request.path.contains("/tags/list"))
        {
            let n = race.delayed.fetch_add(1, Ordering::SeqCst) as u64;
            std::thread::sleep(Duration::from_millis(n.wrapping_mul(2_654_435_761) % 300));
        }
        Answer::Forward
    })
}

/// Publishes of one version started together, each through a proxy of its own to the same
/// repository (as CI jobs on separate engines: no two share a local tag), see [`race_proxy`]:
/// without claims every run finds the version absent and pushes, the first is done before the
/// next write lands, and several exit 0. With claims and different content exactly one exits
/// 0, every other exits 1 naming the digest the tag ends on; with the same content (and image
/// name, so through one proxy) all exit 0 with that one digest. No claim is left behind.
#[test]
fn concurrent_publishes_of_one_version_let_exactly_one_push() {
    let s = stack();
    let race = Arc::new(Race::default());
    let proxies: Vec<Hostile> = (0..4).map(|_| race_proxy(&s.registry, &race)).collect();
    for (round, contents) in [
        ("different", ["a\n", "b\n", "c\n", "d\n"]),
        ("same", ["same\n"; 4]),
    ] {
        race.runs.store(contents.len() as i64, Ordering::SeqCst);
        race.checks.store(0, Ordering::SeqCst);
        race.writes.store(0, Ordering::SeqCst);
        let repo = unique(&format!("claims-{round}"));
        // The same input is the same image name: those runs share one proxy.
        let images: Vec<String> = (0..contents.len())
            .map(|i| match round {
                "different" => format!("{}/{repo}", proxies[i].host()),
                _ => format!("{}/{repo}", proxies[0].host()),
            })
            .collect();
        let _cleanup: Vec<LocalImages> = images.iter().cloned().map(LocalImages).collect();
        let dirs: Vec<_> = images
            .iter()
            .zip(contents)
            .map(|(image, content)| busybox_project(image, content, ""))
            .collect();
        let runs: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let cmd = cargo_v6_command(dir.path(), &["publish", "-v"]);
                std::thread::spawn(move || run_bounded(cmd, Duration::from_secs(300)))
            })
            .collect();
        let outs: Vec<Output> = runs.into_iter().map(|r| r.join().unwrap()).collect();
        let direct = format!("{}/{repo}", s.registry);
        let held = digest_of(&format!("{direct}:1.0.0")).expect("the version is published");
        let mut winners = 0;
        for out in &outs {
            let stderr = text(&out.stderr);
            match out.status.code() {
                Some(0) => {
                    winners += 1;
                    assert_eq!(support::printed_digest(&text(&out.stdout)), held, "{round}");
                }
                Some(1) => assert!(
                    stderr.contains("another publish won") && stderr.contains(&held),
                    "{round}: {stderr}"
                ),
                other => panic!("{round}: {other:?}\n{stderr}"),
            }
        }
        match round {
            "different" => assert_eq!(winners, 1, "{round}: exactly one pushes"),
            _ => assert_eq!(
                winners,
                outs.len(),
                "{round}: the same input counts as unchanged"
            ),
        }
        assert_eq!(
            repo_tags(&direct),
            ["1", "1.0", "1.0.0", "latest"],
            "{round}: no claim left"
        );
    }
}
