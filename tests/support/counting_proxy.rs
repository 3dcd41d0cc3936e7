//! An HTTP-counting TCP proxy for tests: listens on `127.0.0.1:0`, forwards every connection
//! byte for byte to one upstream (a registry of the stack), and records the request line
//! `METHOD PATH` of each HTTP request the client sends, keep-alive included (request heads
//! are parsed, bodies skipped by `Content-Length` or chunked encoding). Responses are not
//! parsed, only copied back.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections at a time (more wait in the listen
//! queue), sockets time out after [`IDLE_TIMEOUT`] of silence, a request head may be
//! [`MAX_HEAD`] bytes long. Dropping the proxy stops it: the listener closes, every open
//! connection is shut down, and all its threads are joined.
//!
//! The client sees the registry as `127.0.0.1:PORT` (plain HTTP, a loopback registry), so
//! whatever the registry puts in absolute URLs (the `Location` of an upload) points back to
//! the proxy through the `Host` header.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections served at the same time.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection silent for this long in either direction is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request head (request line and headers) parsed; a longer one is recorded as
/// `<oversized head>` and the rest of that connection is forwarded unparsed.
pub const MAX_HEAD: usize = 64 * 1024;

/// A running proxy; see the module documentation.
pub struct CountingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    requests: Mutex<Vec<String>>,
    /// Both sockets of every open connection, to shut them down on drop.
    sockets: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    active: AtomicUsize,
}

impl CountingProxy {
    /// Starts a proxy to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
        });
        let upstream = upstream.to_owned();
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || accept_loop(listener, &upstream, accept_shared));
        CountingProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy as a registry name: `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The requests seen so far, `METHOD PATH` (path with its query), in arrival order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// The requests seen so far, forgetting them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.requests))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in lock(&self.shared.sockets).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let workers: Vec<JoinHandle<()>> = lock(&self.shared.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn accept_loop(listener: TcpListener, upstream: &str, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        while shared.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let Ok(server) = TcpStream::connect(upstream) else {
            // The client sees a closed connection, as from a registry that is down.
            continue;
        };
        let clones = (
            client.try_clone(),
            client.try_clone(),
            server.try_clone(),
            server.try_clone(),
        );
        let (Ok(client_out), Ok(client_keep), Ok(server_in), Ok(server_keep)) = clones else {
            continue;
        };
        for socket in [&client, &server] {
            let _ = socket.set_read_timeout(Some(IDLE_TIMEOUT));
            let _ = socket.set_write_timeout(Some(IDLE_TIMEOUT));
            let _ = socket.set_nodelay(true);
        }
        lock(&shared.sockets).extend([client_keep, server_keep]);
        shared.active.fetch_add(2, Ordering::SeqCst);
        let up_shared = Arc::clone(&shared);
        let upward = std::thread::spawn(move || {
            forward_requests(client, server, &up_shared);
            up_shared.active.fetch_sub(1, Ordering::SeqCst);
        });
        let down_shared = Arc::clone(&shared);
        let downward = std::thread::spawn(move || {
            copy_responses(server_in, client_out);
            down_shared.active.fetch_sub(1, Ordering::SeqCst);
        });
        lock(&shared.workers).extend([upward, downward]);
    }
}

/// Client -> server: forwards every byte, recording each request line on the way.
fn forward_requests(mut client: TcpStream, mut server: TcpStream, shared: &Shared) {
    let mut parser = RequestParser::default();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let seen = parser.feed(&buf[..n]);
        if !seen.is_empty() {
            lock(&shared.requests).extend(seen);
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Server -> client, unparsed.
fn copy_responses(mut server: TcpStream, mut client: TcpStream) {
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Write);
}

/// Where the parser is in the client's byte stream.
#[derive(Debug, Default)]
enum State {
    /// Collecting a request head up to its empty line.
    #[default]
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Collecting a chunk-size line.
    ChunkSize,
    /// Skipping this many chunk bytes, then the CRLF after them.
    ChunkData(u64),
    /// Collecting trailer lines up to the empty one.
    Trailers,
    /// Not HTTP as expected: forward the rest without parsing.
    Opaque,
}

/// Splits a client's byte stream into HTTP/1.1 requests, incrementally.
#[derive(Debug, Default)]
pub struct RequestParser {
    state: State,
    /// The unfinished head or line being collected.
    pending: Vec<u8>,
}

impl RequestParser {
    /// Consumes `bytes`; returns the request lines (`METHOD PATH`) completed in them.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        while !bytes.is_empty() {
            match self.state {
                State::Opaque => break,
                State::Body(left) | State::ChunkData(left) if left > 0 => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = &bytes[take..];
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Body(_) if left == 0 => State::Head,
                        State::Body(_) => State::Body(left),
                        _ => State::ChunkData(left),
                    };
                }
                State::Body(_) => self.state = State::Head,
                State::ChunkData(_) => {
                    // The CRLF after the chunk's data: collect it as an (empty) line.
                    let Some(line) = self.line(&mut bytes) else {
                        continue;
                    };
                    self.state = if line.is_empty() {
                        State::ChunkSize
                    } else {
                        State::Opaque
                    };
                }
                State::ChunkSize => {
                    let Some(line) = self.line(&mut bytes) else {
                        continue;
                    };
                    let size = line.split(';').next().unwrap_or("").trim();
                    self.state = match u64::from_str_radix(size, 16) {
                        Ok(0) => State::Trailers,
                        Ok(n) => State::ChunkData(n),
                        Err(_) => State::Opaque,
                    };
                }
                State::Trailers => {
                    let Some(line) = self.line(&mut bytes) else {
                        continue;
                    };
                    if line.is_empty() {
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    let start = self.pending.len().saturating_sub(3);
                    let take = bytes.len().min(MAX_HEAD + 1 - self.pending.len());
                    self.pending.extend_from_slice(&bytes[..take]);
                    let Some(end) = find(&self.pending[start..], b"\r\n\r\n").map(|i| start + i)
                    else {
                        bytes = &bytes[take..];
                        if self.pending.len() > MAX_HEAD {
                            seen.push("<oversized head>".to_owned());
                            self.state = State::Opaque;
                        }
                        continue;
                    };
                    // Give back what follows the head: it is the body or the next request.
                    let used = end + 4 - (self.pending.len() - take);
                    bytes = &bytes[used..];
                    let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                    self.pending.clear();
                    let (line, state) = parse_head(&head);
                    seen.push(line);
                    self.state = state;
                }
            }
        }
        seen
    }

    /// Collects one CRLF-terminated line from `bytes` (advancing it); `None` until complete.
    fn line(&mut self, bytes: &mut &[u8]) -> Option<String> {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pending.extend_from_slice(&bytes[..=i]);
                *bytes = &bytes[i + 1..];
                let line = String::from_utf8_lossy(&self.pending)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.pending.clear();
                Some(line)
            }
            None => {
                self.pending.extend_from_slice(bytes);
                *bytes = &[];
                if self.pending.len() > MAX_HEAD {
                    self.state = State::Opaque;
                }
                None
            }
        }
    }
}

/// `METHOD PATH` of a request head, and what follows it.
fn parse_head(head: &str) -> (String, State) {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let mut length = 0u64;
    let mut chunked = false;
    for header in lines {
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => length = n,
                Err(_) => return (format!("{method} {path}"), State::Opaque),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let state = if chunked {
        State::ChunkSize
    } else if length > 0 {
        State::Body(length)
    } else {
        State::Head
    };
    (format!("{method} {path}"), state)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
