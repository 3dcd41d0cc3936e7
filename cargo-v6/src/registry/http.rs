//! The registry's own requests of [`super::Registry`]: every read, and manifest writes, with
//! every answer's body read up to a bound. oci-client reads whole bodies into memory, so a
//! registry answering a manifest request with gigabytes would fill it; here a body larger than
//! its bound fails the request as soon as the bound is passed (at once when `Content-Length`
//! says so), and an error body is cut at [`MAX_ERROR_BODY`].
//!
//! Failures come back as oci-client's errors, built as oci-client builds them, except that a
//! `429` stays a status (`ServerError`) whatever its body says: it is retried by its status.

use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap};

/// The most of an error body kept: enough for any registry's message, and what is shown.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// How much of an answer's body may be read, and what it is, for the error.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// The most bytes read.
    pub max: usize,
    /// What the body is, completing "... is larger than N bytes": `the manifest`.
    pub what: &'static str,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, within the request's [`Limit`] (empty for `HEAD`).
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name`, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request: the method, the path below `/v2/`, and what goes with it.
#[derive(Debug)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, `PUT`, `PATCH`, `POST` or `DELETE`.
    pub method: reqwest::Method,
    /// The path below `/v2/` (`org/algo/manifests/1.0.0`), with its query; or a whole URL
    /// (`http://...`, `https://...`), such as an upload's `Location`.
    pub path: String,
    /// The `Authorization` header value, when there is one.
    pub authorization: Option<&'a str>,
    /// Media types accepted.
    pub accept: &'a [&'a str],
    /// A body and its content type.
    pub body: Option<(Vec<u8>, &'a str)>,
    /// The bound on the answer's body.
    pub limit: Limit,
}

/// An HTTP client for one registry's API.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    /// `http://HOST` or `https://HOST`.
    base: String,
    /// A loopback registry spoken to over plain HTTP: the client and base (`https://HOST`) of
    /// TLS without checking the certificate, switched to ([`Http::upgrade`]) when the registry
    /// says it serves TLS on that port. The Docker engine treats loopback registries as
    /// insecure the same way (TLS unverified, or plain HTTP).
    tls: Option<(reqwest::Client, String)>,
    /// Set once switched to `tls`.
    upgraded: std::sync::atomic::AtomicBool,
}

impl Http {
    /// A client for the API at `base` (`https://ghcr.io`), with oci-client's timeouts and user
    /// agent. `tls_fallback`: `base` is a loopback registry's plain HTTP, which may turn out to
    /// serve TLS.
    pub fn new(
        base: String,
        connect_timeout: std::time::Duration,
        read_timeout: std::time::Duration,
        user_agent: &str,
        tls_fallback: bool,
    ) -> Result<Http, reqwest::Error> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .read_timeout(read_timeout)
                .user_agent(user_agent)
        };
        let client = builder().build()?;
        let tls = match base.strip_prefix("http://") {
            Some(host) if tls_fallback => Some((
                builder().tls_danger_accept_invalid_certs(true).build()?,
                format!("https://{host}"),
            )),
            _ => None,
        };
        Ok(Http {
            client,
            base,
            tls,
            upgraded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The client and base in use.
    fn current(&self) -> (&reqwest::Client, &str) {
        match &self.tls {
            Some((client, base)) if self.upgraded.load(std::sync::atomic::Ordering::Relaxed) => {
                (client, base)
            }
            _ => (&self.client, &self.base),
        }
    }

    /// Whether `answer`, to a plain HTTP request of a loopback registry, says that the port
    /// serves TLS: Go's servers (distribution, zot, harbor) answer `400 Client sent an HTTP
    /// request to an HTTPS server`, nginx `400 The plain HTTP request was sent to HTTPS port`;
    /// other TLS servers drop the connection. Switches to TLS then, and says so; the caller
    /// asks again.
    pub fn upgrade(
        &self,
        answer: &Result<(reqwest::StatusCode, HeaderMap, Vec<u8>), OciDistributionError>,
    ) -> bool {
        let speaks_tls = match answer {
            Ok((status, _, body)) => {
                *status == reqwest::StatusCode::BAD_REQUEST
                    && String::from_utf8_lossy(body).contains("HTTPS")
            }
            // Connected, then dropped: a TLS server given plain HTTP. Not a refused connection,
            // which says nothing of TLS.
            Err(OciDistributionError::RequestError(e)) => !e.is_timeout() && !e.is_connect(),
            Err(_) => false,
        };
        let can = self.tls.is_some() && !self.upgraded.load(std::sync::atomic::Ordering::Relaxed);
        if speaks_tls && can {
            self.upgraded
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        speaks_tls && can
    }

    /// `GET url` (any URL: the API's root, a token server's realm) with `authorization`: the
    /// status, headers and body of any answer, a success's body within `limit`, a failure's
    /// cut at [`MAX_ERROR_BODY`].
    pub async fn get(
        &self,
        url: &str,
        authorization: Option<&str>,
        limit: Limit,
    ) -> Result<(reqwest::StatusCode, HeaderMap, Vec<u8>), OciDistributionError> {
        let mut builder = self.current().0.get(url);
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        let mut response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = match status.is_success() {
            true => read(&mut response, limit.max, Some(limit)).await?,
            false => read(&mut response, MAX_ERROR_BODY, None).await?,
        };
        Ok((status, headers, body))
    }

    /// `http://HOST` or `https://HOST`.
    pub fn base(&self) -> &str {
        self.current().1
    }

    /// Sends `request`; a success with its body read within its bound, or the failure.
    pub async fn send(&self, request: Request<'_>) -> Result<Answer, OciDistributionError> {
        let head = request.method == reqwest::Method::HEAD;
        let limit = request.limit;
        let mut response = self.respond(request, &[]).await?;
        let headers = response.headers().clone();
        let body = match head {
            true => Vec::new(),
            false => read(&mut response, limit.max, Some(limit)).await?,
        };
        Ok(Answer { headers, body })
    }

    /// Sends `request` with `headers` besides those it names (an upload chunk's
    /// `Content-Range`): a success's answer with its status and its body unread, for a caller
    /// that needs the status or streams the body within the request's bound (see
    /// [`too_large`]); or the failure, its body cut at [`MAX_ERROR_BODY`].
    pub async fn respond(
        &self,
        request: Request<'_>,
        headers: &[(&str, String)],
    ) -> Result<reqwest::Response, OciDistributionError> {
        let url = match request.path.starts_with("http://") || request.path.starts_with("https://")
        {
            true => request.path,
            false => format!("{}/v2/{}", self.base(), request.path),
        };
        let mut builder = self.current().0.request(request.method, &url);
        if let Some(authorization) = request.authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        if !request.accept.is_empty() {
            builder = builder.header(ACCEPT, request.accept.join(", "));
        }
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        if let Some((body, content_type)) = request.body {
            builder = builder.header(CONTENT_TYPE, content_type).body(body);
        }
        let mut response = builder.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = read(&mut response, MAX_ERROR_BODY, None).await?;
            return Err(status_error(status, &body, &url));
        }
        Ok(response)
    }
}

/// The error for a body larger than `limit` allows.
pub fn too_large(limit: Limit) -> OciDistributionError {
    OciDistributionError::IoError(std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!(
            "{} it sent is larger than {} (the most accepted); refusing to read it",
            limit.what,
            bytes_text(limit.max)
        ),
    ))
}

/// Reads the body of `response`, at most `max` bytes: with a `limit`, a longer body is an
/// error (found from `Content-Length` before reading, else as soon as it is passed); without
/// one, the rest is dropped unread.
async fn read(
    response: &mut reqwest::Response,
    max: usize,
    limit: Option<Limit>,
) -> Result<Vec<u8>, OciDistributionError> {
    if let (Some(limit), Some(length)) = (limit, response.content_length())
        && length > max as u64
    {
        return Err(too_large(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return match limit {
                Some(limit) => Err(too_large(limit)),
                None => {
                    body.extend_from_slice(&chunk[..max - body.len()]);
                    Ok(body)
                }
            };
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `bytes` as `4 MiB`, `64 KiB`, or a byte count.
fn bytes_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The error for an answer with `status` and (cut) `body`: `401` as unauthorized; a `429` or
/// a server error as a status; any other client error as the registry's error envelope, or
/// its status when the body is not one.
fn status_error(status: reqwest::StatusCode, body: &[u8], url: &str) -> OciDistributionError {
    let server_error = || OciDistributionError::ServerError {
        code: status.as_u16(),
        url: url.to_owned(),
        message: String::from_utf8_lossy(body).into_owned(),
    };
    match status.as_u16() {
        401 => OciDistributionError::UnauthorizedError {
            url: url.to_owned(),
        },
        429 => server_error(),
        400..=499 => match serde_json::from_slice::<OciEnvelope>(body) {
            Ok(envelope) => OciDistributionError::RegistryError {
                envelope,
                url: url.to_owned(),
            },
            Err(_) => server_error(),
        },
        _ => server_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_stays_a_status_whatever_its_body_says() {
        let body = br#"{"errors":[{"code":"DENIED","message":"slow down"}]}"#;
        let e = status_error(reqwest::StatusCode::TOO_MANY_REQUESTS, body, "u");
        assert!(
            matches!(e, OciDistributionError::ServerError { code: 429, .. }),
            "{e:?}"
        );
        let e = status_error(reqwest::StatusCode::FORBIDDEN, body, "u");
        assert!(
            matches!(e, OciDistributionError::RegistryError { .. }),
            "{e:?}"
        );
        let e = status_error(reqwest::StatusCode::NOT_FOUND, b"", "u");
        assert!(
            matches!(e, OciDistributionError::ServerError { code: 404, .. }),
            "{e:?}"
        );
        let e = status_error(reqwest::StatusCode::UNAUTHORIZED, body, "u");
        assert!(
            matches!(e, OciDistributionError::UnauthorizedError { .. }),
            "{e:?}"
        );
    }

    #[test]
    fn sizes_are_written_in_their_unit() {
        assert_eq!(bytes_text(4 << 20), "4 MiB");
        assert_eq!(bytes_text(64 << 10), "64 KiB");
        assert_eq!(bytes_text(1000), "1000 bytes");
    }
}
