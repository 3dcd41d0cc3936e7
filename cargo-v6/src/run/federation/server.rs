//! The HTTP side of the federated run's server: a loopback port whose requests [`Api`]
//! answers, and whose effects (runs to start, a reason to stop) go to the run.
//!
//! Loopback, because the containers share this machine's network (`--network host`): the
//! stack's engine, like a rootless or bridge-less one, may have no bridge for a container to
//! reach the host through, and a unix socket would need a client the algorithm does not have.
//! Any program here can reach the port, so the server answers only the tokens it handed out
//! (each container's nonce), 401 to anything else.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::api::{Api, ApiRequest, Effect};

/// A request body larger than this is refused: task inputs are small JSON.
const MAX_BODY: usize = 64 << 20;

/// How long a status request of an unfinished task is held before it is answered anyway.
const HOLD: std::time::Duration = std::time::Duration::from_secs(20);

/// The server, serving until dropped.
pub(super) struct Server {
    /// The port on 127.0.0.1.
    pub port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Starts serving `api` on a free loopback port; effects are sent to `effects`. `changed`
/// is notified whenever a run ends (a held status request then asks again).
pub(super) async fn serve(
    api: Arc<Mutex<Api>>,
    effects: UnboundedSender<Effect>,
    changed: Arc<Notify>,
) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let api = Arc::clone(&api);
            let effects = effects.clone();
            let changed = Arc::clone(&changed);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let api = Arc::clone(&api);
                    let effects = effects.clone();
                    let changed = Arc::clone(&changed);
                    async move {
                        Ok::<_, hyper::Error>(respond(&api, &effects, &changed, request).await)
                    }
                });
                // A connection that breaks off is the container's business.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Server { port, accept })
}

async fn respond(
    api: &Mutex<Api>,
    effects: &UnboundedSender<Effect>,
    changed: &Notify,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return json_response(413, &serde_json::json!({ "msg": "body too large" })),
    };
    let authorization = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let request = ApiRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        body: &body,
        authorization,
    };
    let held_since = tokio::time::Instant::now();
    let answer = loop {
        // Listening before asking: a run that ends in between still wakes this request.
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let answer = api
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .answer(&request);
        let left = HOLD.saturating_sub(held_since.elapsed());
        if !answer.unfinished || left.is_zero() {
            break answer;
        }
        let _ = tokio::time::timeout(left, notified).await;
    };
    if answer.effect != Effect::None {
        // The run has ended when nobody receives: nothing left to do.
        let _ = effects.send(answer.effect);
    }
    json_response(answer.status, &answer.body)
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
