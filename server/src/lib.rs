//! `weft-relay`: the self-hosted relay for weft and automerge-repo peers.
//!
//! A relay is a weft [`Repo`] on SQLite that accepts WebSocket peers and serves a document
//! only to a peer that asks for it by id ([`ServeOnRequest`]), as the official
//! automerge-repo sync server does. [`run`] is the whole server; the binary only parses
//! flags, sets up logs and turns SIGINT/SIGTERM into its shutdown.

#![warn(missing_docs)]

use std::{future::Future, path::PathBuf, sync::Arc};

use tokio::net::TcpListener;
use weft::{Repo, RepoConfig, net::NetConfig, sync::ServeOnRequest};

/// How a relay runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The folder of its data (created if missing): `weft.db` and its WAL.
    pub data: PathBuf,
    /// Connection limits and timers.
    pub net: NetConfig,
}

impl RelayConfig {
    /// A relay keeping its data in `data`, with default limits.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            net: NetConfig::default(),
        }
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
}

/// Serves peers on `listener` until `shutdown` resolves; then stops accepting, closes every
/// connection with a close frame, finishes pending writes and closes the database.
pub async fn run(
    listener: TcpListener,
    config: RelayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    let mut repo_config = RepoConfig::default();
    repo_config.sync = repo_config.sync.with_share_policy(Arc::new(ServeOnRequest));
    let repo = Repo::open_with(config.database(), repo_config).await?;
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, database = %config.database().display(), peer_id = %repo.peer_id(), "relay listening");
    }
    let served = weft::net::serve(repo.clone(), listener, config.net, shutdown).await;
    tracing::info!("relay stopping: finishing writes");
    let closed = repo.close().await;
    served?;
    closed?;
    tracing::info!("relay stopped");
    Ok(())
}
