//! The relay's plain HTTP endpoints, on its WebSocket port (weft's listener hands over
//! every request that is not an upgrade) and optionally on a separate metrics address.
//!
//! - `GET /healthz`: 200 while the process serves requests.
//! - `GET /readyz`: 200 while the relay accepts peers and its database answers; 503 once it
//!   is shutting down, or if the database does not answer within two seconds.
//! - `GET /metrics`: Prometheus text (see [`Metrics`]); on the WebSocket port unless a
//!   separate metrics address is configured.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{CONTENT_TYPE, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use weft::{
    Repo,
    net::{HttpConnection, HttpService},
};

use crate::{metrics::Metrics, web::WebRoot};

/// What the endpoints answer from.
#[derive(Debug, Clone)]
pub struct Endpoints {
    repo: Repo,
    metrics: Arc<Metrics>,
    /// Whether `/metrics` is served here (not when it has an address of its own).
    serve_metrics: bool,
    stopping: Arc<AtomicBool>,
    /// A web page served for other `GET`s (`--web`).
    web: Option<Arc<WebRoot>>,
}

impl Endpoints {
    /// Endpoints for `repo`; `/metrics` served only if `serve_metrics`.
    pub fn new(repo: Repo, metrics: Arc<Metrics>, serve_metrics: bool) -> Self {
        Self {
            repo,
            metrics,
            serve_metrics,
            stopping: Arc::new(AtomicBool::new(false)),
            web: None,
        }
    }

    /// The same endpoints, also serving the page in `web` (or none).
    pub fn with_web(&self, web: Option<Arc<WebRoot>>) -> Self {
        Self {
            web,
            ..self.clone()
        }
    }

    /// The same endpoints, with `/metrics` served or not.
    pub fn with_metrics(&self, serve_metrics: bool) -> Self {
        Self {
            serve_metrics,
            ..self.clone()
        }
    }

    /// From now on `/readyz` answers 503 (the relay is shutting down).
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Serves one connection's requests (HTTP/1.1, closed after the response).
    pub async fn serve_connection<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = service_fn(move |request| {
            let endpoints = self.clone();
            async move { Ok::<_, Infallible>(endpoints.answer(request).await) }
        });
        let served = http1::Builder::new()
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), service)
            .await;
        if let Err(error) = served {
            tracing::debug!(%error, "HTTP connection ended badly");
        }
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readiness().await,
            "/metrics" if self.serve_metrics => {
                let mut response = text(StatusCode::OK, self.metrics.render(&self.repo).await);
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            path => match &self.web {
                Some(web) => match web.answer(path).await {
                    Some(page) => page,
                    None => text(StatusCode::NOT_FOUND, "not found\n"),
                },
                None => text(
                    StatusCode::NOT_FOUND,
                    "not found: this is a weft relay; peers connect with WebSocket\n",
                ),
            },
        }
    }

    async fn readiness(&self) -> Response<Full<Bytes>> {
        if self.stopping.load(Ordering::Acquire) {
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        }
        match self.metrics.stored_documents(&self.repo).await {
            Ok(_) => text(StatusCode::OK, "ready\n"),
            Err(error) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
        }
    }

    /// Serves the endpoints on a listener of their own until `shutdown` resolves.
    pub async fn serve_on(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let endpoints = self.clone();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(
                                Duration::from_secs(30),
                                endpoints.serve_connection(stream),
                            )
                            .await;
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accepting a metrics connection failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
    }
}

impl HttpService for Endpoints {
    fn serve(&self, connection: HttpConnection) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.clone().serve_connection(connection))
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
