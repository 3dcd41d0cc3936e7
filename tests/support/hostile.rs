//! A hostile registry for tests: an HTTP proxy on `127.0.0.1:0` in front of one real registry
//! of the stack that hands every request to a rule, which forwards it, answers it itself (an
//! error body echoing the `Authorization` header, a `201` for a write it drops, a `HEAD` that
//! lies about the digest, an endless body), or does something first (writes to the real
//! registry behind the client's back, waits).
//!
//! One request per connection: every answer, forwarded or made up, ends with `Connection:
//! close`, so that the proxy never has to find where an upstream answer ends (a client opens a
//! new connection for its next request, as HTTP/1.1 lets it). Request bodies are read whole
//! (`Content-Length` or chunked) and forwarded as received.
//!
//! Bounded: sockets time out after [`IDLE_TIMEOUT`] of silence, a request head may be
//! [`MAX_HEAD`] bytes and a body [`MAX_BODY`] bytes; an endless answer stops when the client
//! hangs up or after [`MAX_ENDLESS`] bytes. Dropping the proxy stops it: the listener closes,
//! every open connection is shut down, and its threads are joined. It only ever listens on and
//! connects to loopback.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A connection silent for this long in either direction is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest request head read.
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest request body read (the test images are small).
pub const MAX_BODY: usize = 256 << 20;
/// The most an endless answer sends before the proxy gives up on the client.
pub const MAX_ENDLESS: u64 = 8 << 30;

/// One request, as the client sent it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `HEAD`, `PUT`, ...
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body as received (still chunked when it was).
    pub body: Vec<u8>,
    /// The head and body as received, to forward.
    raw: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether cargo-v6 sent it (its `User-Agent`), not the engine.
    pub fn ours(&self) -> bool {
        self.header("user-agent")
            .is_some_and(|agent| agent.contains("cargo-v6/"))
    }

    /// `METHOD PATH`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What the proxy does with a request.
pub enum Answer {
    /// Forwards it to the registry and its answer back.
    Forward,
    /// Answers with these bytes (a whole HTTP response) instead; the registry never sees it.
    Respond(Vec<u8>),
    /// Answers `200 OK` with this `Content-Type`, and zeros until the client hangs up (or
    /// `length` bytes are sent).
    Endless {
        /// The `Content-Type`.
        content_type: String,
        /// The `Content-Length` announced; `None`: none, the body ends when the connection
        /// does.
        length: Option<u64>,
    },
}

/// An HTTP response with `status` (`404 Not Found`), `headers` (`Name: value` each) and
/// `body`; `Content-Length` and `Connection: close` are added.
pub fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

type Rule = dyn Fn(&Request) -> Answer + Send + Sync;

/// A running proxy; see the module documentation.
pub struct Hostile {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    rule: Box<Rule>,
    stop: AtomicBool,
    /// Every request seen, `METHOD PATH`, in arrival order.
    seen: Mutex<Vec<String>>,
    /// Body bytes sent by endless answers.
    endless_sent: AtomicU64,
    sockets: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// For a proxy in front of `upstream` (`host:port`, which must be on loopback: the tests send
/// traffic nowhere else): its address, and a listener on a free loopback port with its address.
pub fn listen_before(upstream: &str) -> (SocketAddr, TcpListener, SocketAddr) {
    let upstream = upstream
        .to_socket_addrs()
        .unwrap()
        .next()
        .expect("the registry address resolves");
    assert!(upstream.ip().is_loopback(), "only loopback: {upstream}");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (upstream, listener, addr)
}

impl Hostile {
    /// Starts a proxy to `upstream` (`host:port` on loopback) that asks `rule` what to do with
    /// each request.
    pub fn start(
        upstream: &str,
        rule: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> Hostile {
        let (upstream, listener, addr) = listen_before(upstream);
        let shared = Arc::new(Shared {
            upstream,
            rule: Box::new(rule),
            stop: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            endless_sent: AtomicU64::new(0),
            sockets: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        Hostile {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy as a registry name: `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The requests seen so far, `METHOD PATH`.
    pub fn seen(&self) -> Vec<String> {
        lock(&self.shared.seen).clone()
    }

    /// How many body bytes endless answers sent before their clients hung up.
    pub fn endless_sent(&self) -> u64 {
        self.shared.endless_sent.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in lock(&self.shared.sockets).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let workers: Vec<_> = lock(&self.shared.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let _ = client.set_read_timeout(Some(IDLE_TIMEOUT));
        let _ = client.set_write_timeout(Some(IDLE_TIMEOUT));
        if let Ok(keep) = client.try_clone() {
            lock(&shared.sockets).push(keep);
        }
        let worker_shared = Arc::clone(shared);
        let worker = std::thread::spawn(move || serve(client, &worker_shared));
        lock(&shared.workers).push(worker);
    }
}

/// Reads one request from `client`, answers it as the rule says, and closes the connection.
fn serve(mut client: TcpStream, shared: &Shared) {
    let Some(request) = read_request(&mut client) else {
        return;
    };
    lock(&shared.seen).push(request.line());
    match (shared.rule)(&request) {
        Answer::Forward => forward(&request, &mut client, shared),
        Answer::Respond(bytes) => {
            let _ = client.write_all(&bytes);
        }
        Answer::Endless {
            content_type,
            length,
        } => {
            let announced = length
                .map(|l| format!("Content-Length: {l}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{announced}Connection: close\r\n\r\n"
            );
            if client.write_all(head.as_bytes()).is_ok() {
                let zeros = vec![0u8; 64 * 1024];
                let mut sent = 0u64;
                let end = length.unwrap_or(u64::MAX).min(MAX_ENDLESS);
                while sent < end && !shared.stop.load(Ordering::SeqCst) {
                    if client.write_all(&zeros).is_err() {
                        break;
                    }
                    sent += zeros.len() as u64;
                    shared
                        .endless_sent
                        .fetch_add(zeros.len() as u64, Ordering::SeqCst);
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Sends `request` to the registry on a connection of its own (`Connection: close`, no
/// `Expect`) and copies the answer back until the registry closes.
fn forward(request: &Request, client: &mut TcpStream, shared: &Shared) {
    let Ok(mut server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
    else {
        return;
    };
    let _ = server.set_read_timeout(Some(IDLE_TIMEOUT));
    if let Ok(keep) = server.try_clone() {
        lock(&shared.sockets).push(keep);
    }
    let head_end = find(&request.raw, b"\r\n\r\n").unwrap_or(request.raw.len());
    let head = String::from_utf8_lossy(&request.raw[..head_end]);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0 && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("expect"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&request.raw[(head_end + 4).min(request.raw.len())..]);
    if server.write_all(&bytes).is_err() {
        return;
    }
    let _ = std::io::copy(&mut server, client);
}

/// One request: head, then its body by `Content-Length` or chunked encoding. `None` when the
/// client sends nothing usable.
fn read_request(client: &mut TcpStream) -> Option<Request> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end;
        }
        if raw.len() > MAX_HEAD {
            return None;
        }
        let n = client.read(&mut buf).ok().filter(|&n| n > 0)?;
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if value("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let body_start = head_end + 4;
    let chunked = value("transfer-encoding").is_some_and(|v| v.to_lowercase().contains("chunked"));
    let mut read_more = |raw: &mut Vec<u8>| -> Option<()> {
        if raw.len() > MAX_BODY {
            return None;
        }
        let n = client.read(&mut buf).ok().filter(|&n| n > 0)?;
        raw.extend_from_slice(&buf[..n]);
        Some(())
    };
    if chunked {
        while chunked_end(&raw[body_start..]).is_none() {
            read_more(&mut raw)?;
        }
    } else {
        let length: usize = value("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while raw.len() < body_start + length {
            read_more(&mut raw)?;
        }
    }
    Some(Request {
        method,
        path,
        headers,
        body: raw[body_start..].to_vec(),
        raw,
    })
}

/// Where a chunked body ends in `body`, once it is complete.
fn chunked_end(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + find(&body[at..], b"\r\n")?;
        let size_text = String::from_utf8_lossy(&body[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, up to the empty line.
            let end = find(&body[at - 2..], b"\r\n\r\n")?;
            return Some(at - 2 + end + 4);
        }
        at += size + 2;
        if at > body.len() {
            return None;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
