//! Accepting peers on a TCP listener.

use std::{future::Future, sync::Arc};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    task::JoinSet,
};

use super::socket::{Ended, NetConfig, pump, transport_pair};
use crate::{Repo, Result, Role};

/// How many connections a listener serves at once; more wait for a slot.
const MAX_CONNECTIONS: usize = 10_000;

/// Accepts WebSocket peers on `listener` for `repo` until `shutdown` resolves; then stops
/// accepting, closes every connection with a close frame, and returns once they are closed.
/// (The repo stays open: close it after this returns to finish its writes.)
pub async fn serve(
    repo: Repo,
    listener: TcpListener,
    config: NetConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, address)) => {
                    let Ok(slot) = slots.clone().acquire_owned().await else { break };
                    let (repo, stopping) = (repo.clone(), stopping.clone());
                    connections.spawn(async move {
                        let ended = accept(repo, stream, config, stopping).await;
                        tracing::debug!(%address, ?ended, "connection ended");
                        drop(slot);
                    });
                }
                // A failed accept (out of file descriptors, a reset) concerns that
                // connection only.
                Err(error) => tracing::warn!(%error, "accepting a connection failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn accept(
    repo: Repo,
    stream: TcpStream,
    config: NetConfig,
    stopping: watch::Receiver<bool>,
) -> Ended {
    let _ = stream.set_nodelay(true);
    let handshake = tokio_tungstenite::accept_async_with_config(stream, Some(config.websocket()));
    let socket = match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => return Ended::Failed(format!("WebSocket handshake failed: {error}")),
        Err(_) => return Ended::Failed("WebSocket handshake timed out".to_owned()),
    };
    let (transport, from_repo, to_repo) = transport_pair();
    if let Err(error) = repo.connect(transport, Role::Accept).await {
        return Ended::Failed(error.to_string());
    }
    pump(socket, from_repo, to_repo, &config, stopping).await
}
