//! `weft-relay`: the self-hosted relay for weft and automerge-repo peers.
//!
//! A relay is a weft [`Repo`] on SQLite that accepts WebSocket peers and serves a client a
//! document only when it asks for it by id, as the official automerge-repo sync server
//! does, and only if its token lets it ([`auth`]). Relays replicate every document with
//! each other ([`replication`]); a follower only reads. Plain HTTP on the same port answers
//! health checks and metrics ([`http`], [`metrics`]). [`run`] is the whole server; the
//! binary only parses flags, sets up logs and turns SIGINT/SIGTERM into its shutdown.

#![warn(missing_docs)]

pub mod auth;
pub mod http;
pub mod metrics;
pub mod replication;
pub mod secret;
pub mod web;

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

use tokio::{net::TcpListener, sync::watch};
use weft::{
    Repo, RepoConfig,
    net::{NetConfig, Server},
};

use http::Endpoints;
use metrics::Metrics;
use web::WebRoot;

use auth::{Anonymous, Credentials};

/// How a relay runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The folder of its data (created if missing): `weft.db` and its WAL.
    pub data: PathBuf,
    /// Connection limits and timers.
    pub net: NetConfig,
    /// How peers prove what they may read and write.
    pub access: AccessConfig,
    /// How long a peer may take to send `join` after its WebSocket opened (10 s).
    pub handshake_timeout_ms: u64,
    /// Where `/metrics` is served instead of the relay's port (`None`: on the relay's port).
    pub metrics_listen: Option<SocketAddr>,
    /// A built web page served on the relay's port for plain `GET`s (the collaborative
    /// editor); it must hold an `index.html`.
    pub web: Option<PathBuf>,
    /// Relays to replicate with, both ways (`ws://…` or `wss://…`, with `?token=` if they
    /// need one).
    pub upstreams: Vec<String>,
    /// Certificates (PEM) trusted for `wss://` upstreams besides the public web's
    /// authorities.
    pub upstream_ca_file: Option<PathBuf>,
    /// A read-only follower: it replicates from its upstreams and serves reads; every
    /// peer that connects to it may only read.
    pub follower: bool,
    /// How long a document stays in memory with no message while peers still sync it
    /// (60 s; `None`: while they are connected). See [`RepoConfig::idle_unload`].
    pub idle_unload: Option<std::time::Duration>,
}

/// Where the relay's token keys come from, and what peers without a token may do.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AccessConfig {
    /// Peers without a token: refused (`None`, the default), readers, or writers.
    pub anonymous: Option<Anonymous>,
    /// Files holding HS256 secrets (text, at least 32 characters).
    pub hs256_secret_files: Vec<PathBuf>,
    /// Files holding Ed25519 public keys in PEM, for EdDSA tokens.
    pub eddsa_public_key_files: Vec<PathBuf>,
    /// Static keys: (name for the logs, the key itself, what it grants).
    pub static_keys: Vec<(String, String, weft::sync::Access)>,
}

impl RelayConfig {
    /// A relay keeping its data in `data`, with default limits.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            net: NetConfig::default(),
            access: AccessConfig::default(),
            handshake_timeout_ms: 10_000,
            metrics_listen: None,
            web: None,
            upstreams: Vec::new(),
            upstream_ca_file: None,
            follower: false,
            idle_unload: Some(std::time::Duration::from_secs(60)),
        }
    }

    /// With peers without a token let in as `anonymous` says.
    pub fn with_anonymous(mut self, anonymous: Option<Anonymous>) -> Self {
        self.access.anonymous = anonymous;
        self
    }

    /// The database file inside the data folder.
    pub fn database(&self) -> PathBuf {
        self.data.join("weft.db")
    }
}

/// Why the relay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Its database could not be opened (or closed cleanly).
    #[error("relay storage: {0}")]
    Storage(#[from] weft::Error),
    /// A key file could not be read, or holds no usable key.
    #[error("relay keys: {0}")]
    Keys(String),
    /// The web page folder (`--web`) cannot be served.
    #[error("web page: {0}")]
    Web(std::io::Error),
    /// An address could not be listened on.
    #[error("cannot listen on {address}: {error}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// The credentials check of `config`: its key files, or the data folder's generated secret
/// if none is configured (created and announced in the log on first start).
pub fn credentials(config: &RelayConfig) -> Result<Credentials, RelayError> {
    let keys = |path: &PathBuf, error: &dyn std::fmt::Display| {
        RelayError::Keys(format!("{}: {error}", path.display()))
    };
    let mut credentials = Credentials::default().with_anonymous(config.access.anonymous);
    for path in &config.access.hs256_secret_files {
        let secret = secret::read(path).map_err(|error| keys(path, &error))?;
        credentials = credentials.with_hs256_secret(&secret);
    }
    for path in &config.access.eddsa_public_key_files {
        let pem = std::fs::read(path).map_err(|error| keys(path, &error))?;
        credentials = credentials
            .with_eddsa_public_key(&pem)
            .map_err(|error| keys(path, &error))?;
    }
    for (name, key, access) in &config.access.static_keys {
        credentials = credentials.with_static_key(name, key, access.clone());
    }
    if !credentials.has_keys() {
        let (secret, path, created) =
            secret::read_or_create(&config.data).map_err(|error| keys(&config.data, &error))?;
        if created {
            tracing::warn!(
                secret = %path.display(),
                "no token key configured: created a signing secret. Mint a token with \
                 `weft-relay token --data {} --write '*'` and connect with ?token=<token>",
                config.data.display()
            );
        }
        credentials = credentials.with_hs256_secret(&secret);
    }
    Ok(credentials)
}

/// Serves peers on `listener` until `shutdown` resolves; then stops accepting, closes every
/// connection with a close frame, finishes pending writes and closes the database. Plain
/// HTTP requests on the same port get `/healthz`, `/readyz` and `/metrics` ([`http`]).
pub async fn run(
    listener: TcpListener,
    config: RelayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    let metrics = Arc::new(Metrics::new());
    let mut repo_config = RepoConfig::default();
    // Who delivered each change is recorded for connections whose token names a user: the
    // audit trail a peer cannot forge by claiming another author (server/README.md).
    repo_config.sync = repo_config
        .sync
        .with_share_policy(replication::policy())
        .with_arrivals_recorded();
    repo_config.sync.handshake_timeout_ms = config.handshake_timeout_ms;
    repo_config.observer = metrics.observer();
    repo_config.idle_unload = config.idle_unload;
    let credentials = credentials(&config)?.read_only_follower(config.follower);
    let web = match &config.web {
        Some(folder) => Some(Arc::new(WebRoot::new(folder).map_err(RelayError::Web)?)),
        None => None,
    };
    let metrics_listener = match config.metrics_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|error| RelayError::Listen { address, error })?,
        ),
        None => None,
    };
    let repo = Repo::open_with(config.database(), repo_config).await?;
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, database = %config.database().display(), peer_id = %repo.peer_id(), anonymous = ?config.access.anonymous, "relay listening");
    }
    let upstream_tls = match &config.upstream_ca_file {
        None => None,
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|error| RelayError::Keys(format!("{}: {error}", path.display())))?;
            Some(
                weft::net::tls::trusting(&pem)
                    .map_err(|error| RelayError::Keys(format!("{}: {error}", path.display())))?,
            )
        }
    };
    let upstreams =
        replication::dial_upstreams(&repo, &config.upstreams, config.net, upstream_tls.as_ref());
    for url in &config.upstreams {
        tracing::info!(upstream = %url.split('?').next().unwrap_or_default(), follower = config.follower, "replicating with an upstream relay");
    }
    let catching_up = tokio::spawn(replication::catch_up_replicas(repo.clone()));
    if let Some(folder) = &config.web {
        tracing::info!(folder = %folder.display(), "serving the web page");
    }
    let endpoints = Endpoints::new(repo.clone(), metrics, metrics_listener.is_none()).with_web(web);
    let (stopped, stopping) = watch::channel(false);
    if let Some(listener) = metrics_listener {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "metrics listening");
        }
        let mut stopping = stopping;
        let metrics_only = endpoints.with_metrics(true).with_web(None);
        tokio::spawn(metrics_only.serve_on(listener, async move {
            let _ = stopping.wait_for(|stopped| *stopped).await;
        }));
    }
    let announce = endpoints.clone();
    let served = Server::new(repo.clone())
        .config(config.net)
        .authorize(Arc::new(credentials))
        .http(Arc::new(endpoints))
        .serve(listener, async move {
            shutdown.await;
            announce.stopping();
        })
        .await;
    catching_up.abort();
    for upstream in upstreams {
        upstream.stop().await;
    }
    tracing::info!("relay stopping: finishing writes");
    let closed = repo.close().await;
    let _ = stopped.send(true);
    served?;
    closed?;
    tracing::info!("relay stopped");
    Ok(())
}
