//! `ssh://` engines, as the docker CLI reaches them: each HTTP connection is one
//! `ssh [-l USER] [-p PORT] -- HOST docker system dial-stdio` process, whose stdin and stdout
//! carry the engine's API. The system's `ssh` does authentication, `~/.ssh/config`,
//! known hosts and agents, exactly as for the docker CLI.
//!
//! Not bollard's `ssh` feature: in bollard 0.21 it hands `USER@HOST:PORT` to ssh as one host
//! name (so any port but 22 fails) and keeps a control master per connection.
//!
//! The remote needs the docker CLI (for `dial-stdio`), as with `docker -H ssh://...`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, BufReader, Join};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::address::SshTarget;

/// The host name in the requests' URLs; the engine ignores it (the docker CLI's choice).
const DUMMY_HOST: &str = "http://api.moby.localhost";

/// How much of ssh's error output is kept for messages.
const KEPT_STDERR: usize = 2000;

/// How long a failed connection waits for ssh's last words before reporting without them.
const STDERR_GRACE: Duration = Duration::from_secs(2);

/// What the ssh processes printed on stderr (the last [`KEPT_STDERR`] bytes), for the error
/// when a connection fails: `Permission denied (publickey)`, `docker: command not found`.
#[derive(Debug, Default)]
pub(super) struct SshStderr {
    text: Mutex<String>,
    /// Processes whose stderr is still open.
    open: std::sync::atomic::AtomicUsize,
}

impl SshStderr {
    /// The last non-empty line ssh printed, waiting up to [`STDERR_GRACE`] for the processes
    /// that are still running to finish printing.
    pub(super) async fn last_words(&self) -> Option<String> {
        let deadline = tokio::time::Instant::now() + STDERR_GRACE;
        while self.open.load(std::sync::atomic::Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        (!lines.is_empty()).then(|| lines[lines.len().saturating_sub(3)..].join(" / "))
    }

    fn push(&self, line: &str) {
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        text.push_str(line);
        text.push('\n');
        if text.len() > KEPT_STDERR {
            let mut cut = text.len() - KEPT_STDERR;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
    }
}

/// The `ssh` arguments for `target`, as the docker CLI builds them.
fn ssh_args(target: &SshTarget) -> Vec<String> {
    let mut args = vec![
        "-o".to_owned(),
        "ConnectTimeout=30".to_owned(),
        "-T".to_owned(),
    ];
    if let Some(user) = &target.user {
        args.extend(["-l".to_owned(), user.clone()]);
    }
    if let Some(port) = target.port {
        args.extend(["-p".to_owned(), port.to_string()]);
    }
    args.extend(["--".to_owned(), target.host.clone()]);
    args.extend(["docker", "system", "dial-stdio"].map(str::to_owned));
    args
}

/// A bollard client whose connections are ssh processes; the returned [`SshStderr`] collects
/// what they print.
pub(super) fn connect(target: &SshTarget, timeout: Duration) -> (Docker, Arc<SshStderr>) {
    let stderr = Arc::new(SshStderr::default());
    let connector = SshConnector {
        args: Arc::new(ssh_args(target)),
        stderr: stderr.clone(),
    };
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let transport = move |request: BollardRequest| {
        let client = client.clone();
        async move {
            client
                .request(request)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    // Only fails for a client address without scheme; this one has one.
    let docker = Docker::connect_with_custom_transport(
        transport,
        Some(DUMMY_HOST),
        timeout.as_secs(),
        API_DEFAULT_VERSION,
    )
    .expect("a custom transport with a fixed address");
    (docker, stderr)
}

/// Starts one `ssh ... docker system dial-stdio` per connection hyper asks for.
#[derive(Clone)]
struct SshConnector {
    args: Arc<Vec<String>>,
    stderr: Arc<SshStderr>,
}

impl tower_service::Service<Uri> for SshConnector {
    type Response = SshStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SshStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let args = self.args.clone();
        let collected = self.stderr.clone();
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(args.iter())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // A connection hyper drops (or the client going away) ends its process.
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot run `ssh` (is it installed?): {e}"),
                    )
                })?;
            let (Some(stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            collected
                .open
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    collected.push(&line);
                }
                collected
                    .open
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
            Ok(SshStream {
                io: TokioIo::new(tokio::io::join(stdout, stdin)),
                _child: child,
            })
        })
    }
}

/// One connection: ssh's stdout to read, its stdin to write; the process ends with it.
struct SshStream {
    io: TokioIo<Join<ChildStdout, ChildStdin>>,
    _child: Child,
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_is_called_like_the_docker_cli_calls_it() {
        let target = SshTarget {
            user: Some("me".into()),
            host: "build.example".into(),
            port: Some(2222),
        };
        assert_eq!(
            ssh_args(&target).join(" "),
            "-o ConnectTimeout=30 -T -l me -p 2222 -- build.example docker system dial-stdio"
        );
        let target = SshTarget {
            user: None,
            host: "-oProxyCommand=evil".into(),
            port: None,
        };
        // `--` keeps a host that looks like an option a host.
        assert_eq!(
            ssh_args(&target).join(" "),
            "-o ConnectTimeout=30 -T -- -oProxyCommand=evil docker system dial-stdio"
        );
    }

    #[test]
    fn stderr_keeps_the_last_lines() {
        let stderr = SshStderr::default();
        for i in 0..1000 {
            stderr.push(&format!("line {i}"));
        }
        let text = stderr.text.lock().unwrap().clone();
        assert!(text.len() <= KEPT_STDERR, "{}", text.len());
        assert!(text.ends_with("line 999\n"));
        let words = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(stderr.last_words())
            .unwrap();
        assert_eq!(words, "line 997 / line 998 / line 999");
    }
}
