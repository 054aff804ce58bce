//! Accepting peers on a TCP listener.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, oneshot, watch},
    task::JoinSet,
};

use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use super::{
    authorize::{Authorize, TrustAll},
    http::{self, HttpConnection, HttpService},
    socket::{Ended, NetConfig, pump, refuse, transport_pair},
};
use crate::{Repo, Result, Role, observe::Refusal};

/// How long a connection may be in its handshake before a newer one may evict it.
const MIN_AGE_TO_EVICT: Duration = Duration::from_secs(1);

/// How long a shutdown waits for connections to close.
const DRAIN: Duration = Duration::from_secs(10);

/// How long a plain HTTP connection may take, from its request head on.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts WebSocket peers on `listener` for `repo` until `shutdown` resolves; then stops
/// accepting, closes every connection with a close frame, and returns once they are closed.
/// (The repo stays open: close it after this returns to finish its writes.) Every peer may
/// read and write everything: see [`serve_with`] to check credentials, and [`Server`] for
/// every option.
pub async fn serve(
    repo: Repo,
    listener: TcpListener,
    config: NetConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    Server::new(repo)
        .config(config)
        .serve(listener, shutdown)
        .await
}

/// Like [`serve`], asking `authorize` what each peer may read and write before it is
/// accepted (see [`Authorize`]).
pub async fn serve_with(
    repo: Repo,
    listener: TcpListener,
    config: NetConfig,
    authorize: Arc<dyn Authorize>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    Server::new(repo)
        .config(config)
        .authorize(authorize)
        .serve(listener, shutdown)
        .await
}

/// A listener's setup: the repo it serves, limits, credentials check and what answers
/// plain HTTP requests.
#[derive(Debug, Clone)]
pub struct Server {
    repo: Repo,
    config: NetConfig,
    authorize: Arc<dyn Authorize>,
    http: Option<Arc<dyn HttpService>>,
}

impl Server {
    /// Serves `repo` with default limits, trusting every peer, answering no plain HTTP.
    pub fn new(repo: Repo) -> Self {
        Self {
            repo,
            config: NetConfig::default(),
            authorize: Arc::new(TrustAll),
            http: None,
        }
    }

    /// With these limits and timers.
    pub fn config(mut self, config: NetConfig) -> Self {
        self.config = config;
        self
    }

    /// Asking `authorize` what each peer may read and write (see [`Authorize`]).
    pub fn authorize(mut self, authorize: Arc<dyn Authorize>) -> Self {
        self.authorize = authorize;
        self
    }

    /// Handing requests that are not WebSocket upgrades to `http` (without one they are
    /// closed). They count against the connection cap like any connection.
    pub fn http(mut self, http: Arc<dyn HttpService>) -> Self {
        self.http = Some(http);
        self
    }

    /// Accepts connections on `listener` until `shutdown` resolves (see [`serve`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let Self {
            repo,
            config,
            authorize,
            http,
        } = self;
        let observer = repo.observer().clone();
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let handshaking = Arc::new(Handshaking::new(config.max_handshaking));
        let (stop, stopping) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, address)) => {
                        // Full: refuse this one (never wait here, which would stop the loop
                        // from seeing the shutdown).
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            tracing::warn!(%address, "connection limit reached; refused");
                            observer.refused(Refusal::ConnectionLimit);
                            drop(stream);
                            continue;
                        };
                        // Too many still in their handshake, all of them recent: refuse this
                        // one rather than throw out a real client that is just slow.
                        let Some((id, evicted)) = handshaking.register() else {
                            tracing::debug!(%address, "too many connections in their handshake; refused");
                            observer.refused(Refusal::HandshakeLimit);
                            drop(stream);
                            continue;
                        };
                        let connection = Connection {
                            repo: repo.clone(),
                            config,
                            authorize: authorize.clone(),
                            http: http.clone(),
                            stopping: stopping.clone(),
                        };
                        let (handshaking, observer) = (handshaking.clone(), observer.clone());
                        observer.connection(true);
                        connections.spawn(async move {
                            // Counted out however the task ends (even aborted at shutdown).
                            let _open = OpenConnection(observer.clone());
                            let (spoke, mut spoken) = oneshot::channel();
                            let accepting = connection.run(stream, spoke);
                            tokio::pin!(accepting, evicted);
                            let mut waiting = true;
                            let ended = loop {
                                tokio::select! {
                                    // In this order: a connection that has just spoken is
                                    // done, even if it was picked for eviction meanwhile.
                                    biased;
                                    ended = &mut accepting => break ended,
                                    _ = &mut spoken, if waiting => {
                                        waiting = false;
                                        handshaking.done(id);
                                    }
                                    _ = &mut evicted, if waiting => break Ended::Refused(
                                        Refusal::HandshakeLimit,
                                        "closed: too many connections in their handshake".to_owned(),
                                    ),
                                }
                            };
                            handshaking.done(id);
                            if let Ended::Refused(reason, _) = &ended {
                                observer.refused(*reason);
                            }
                            tracing::debug!(%address, ?ended, "connection ended");
                            drop(slot);
                        });
                    }
                    // A failed accept (out of file descriptors, a reset) concerns that
                    // connection only. Out of file descriptors fails every accept at once:
                    // pause instead of spinning.
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener); // new connections are refused from now on
        let _ = stop.send(true);
        // Each connection closes within a few seconds (sends time out); past that deadline
        // the rest are dropped.
        let drained = tokio::time::timeout(DRAIN, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "connections did not close in time; dropped"
            );
            connections.abort_all();
        }
        Ok(())
    }
}

/// Tells the observer a connection ended when dropped.
struct OpenConnection(Arc<dyn crate::observe::Observer>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connection(false);
    }
}

/// What one accepted connection needs.
struct Connection {
    repo: Repo,
    config: NetConfig,
    authorize: Arc<dyn Authorize>,
    http: Option<Arc<dyn HttpService>>,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Routes the connection by its request head, then serves it; `spoke` fires once it is
    /// no longer in its handshake.
    async fn run(self, stream: TcpStream, spoke: oneshot::Sender<()>) -> Ended {
        let _ = stream.set_nodelay(true);
        // One budget for the request head and the WebSocket handshake.
        let deadline = tokio::time::Instant::now() + self.config.handshake_timeout;
        let routed = tokio::time::timeout_at(deadline, http::read_head(stream)).await;
        let stream = match routed {
            Ok(Ok((stream, true))) => stream,
            Ok(Ok((stream, false))) => {
                let Some(http) = self.http else {
                    return Ended::Refused(
                        Refusal::HandshakeFailed,
                        "a plain HTTP request, and no HTTP service".to_owned(),
                    );
                };
                let _ = spoke.send(());
                return match tokio::time::timeout(HTTP_TIMEOUT, http.serve(stream)).await {
                    Ok(()) => Ended::Closed,
                    Err(_) => Ended::Failed("an HTTP request took too long".to_owned()),
                };
            }
            Ok(Err(error)) => return Ended::Failed(format!("reading the request failed: {error}")),
            Err(_) => return timed_out(),
        };
        self.accept(stream, deadline, spoke).await
    }

    async fn accept(
        self,
        stream: HttpConnection,
        deadline: tokio::time::Instant,
        spoke: oneshot::Sender<()>,
    ) -> Ended {
        let Self {
            repo,
            config,
            authorize,
            stopping,
            ..
        } = self;
        let mut decision = None;
        // The error type is tungstenite's callback signature, not ours to shrink.
        #[allow(clippy::result_large_err)]
        let check = |request: &Request, response: Response| {
            decision = Some(authorize.authorize(request));
            Ok(response)
        };
        let handshake = tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            check,
            Some(config.websocket()),
        );
        let socket = match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                return Ended::Refused(
                    Refusal::HandshakeFailed,
                    format!("WebSocket handshake failed: {error}"),
                );
            }
            Err(_) => return timed_out(),
        };
        let access = match decision {
            Some(Ok(access)) => access,
            Some(Err(refused)) => return refuse(socket, repo.peer_id(), &refused.0).await,
            None => return Ended::Failed("the upgrade request was never seen".to_owned()),
        };
        // Relays replicating each other exchange a message or more per document they
        // hold: the per-peer rate is for clients.
        let config = if access.is_replica() {
            config.with_message_rate(0, 1)
        } else {
            config
        };
        let (transport, link) = transport_pair(&config);
        if let Err(error) = repo.connect_with(transport, Role::Accept, access).await {
            return Ended::Failed(error.to_string());
        }
        pump(socket, link, &config, stopping, Some(spoke)).await
    }
}

fn timed_out() -> Ended {
    Ended::Refused(
        Refusal::HandshakeTimeout,
        "WebSocket handshake timed out".to_owned(),
    )
}

/// Connections still in their handshake, oldest first, each with the trigger that closes
/// it. Beyond the cap, a new one closes the oldest.
struct Handshaking {
    cap: usize,
    next: AtomicU64,
    open: Mutex<VecDeque<(u64, Instant, oneshot::Sender<()>)>>,
}

impl Handshaking {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            next: AtomicU64::new(0),
            open: Mutex::new(VecDeque::new()),
        }
    }

    /// A new connection: its id, and what resolves if it is evicted (or done). `None` if
    /// the registry is full of connections younger than [`MIN_AGE_TO_EVICT`]: the new one
    /// is refused instead (a client retries; a reconnect storm is not turned into
    /// evictions of real clients).
    fn register(&self) -> Option<(u64, oneshot::Receiver<()>)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (evict, evicted) = oneshot::channel();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.cap {
            if open
                .front()
                .is_some_and(|(_, since, _)| since.elapsed() < MIN_AGE_TO_EVICT)
            {
                return None;
            }
            if let Some((oldest, _, evict_oldest)) = open.pop_front() {
                tracing::debug!(
                    connection = oldest,
                    "too many connections in their handshake: closing the oldest"
                );
                let _ = evict_oldest.send(());
            }
        }
        open.push_back((id, Instant::now(), evict));
        Some((id, evicted))
    }

    /// The connection finished its handshake (or ended).
    fn done(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = open.iter().position(|(open_id, _, _)| *open_id == id) {
            open.remove(at);
        }
    }
}
