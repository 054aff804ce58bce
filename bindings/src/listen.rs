//! [`PeerServer`]: accepting other devices' connections, with no relay.

use std::sync::Arc;

use tokio::sync::{Mutex, oneshot};

use crate::{WeftError, runtime::run};

/// Accepts peers (other devices running weft or automerge-repo) on a TCP address, so that
/// devices sync directly. It checks no token: every peer that can reach the address may
/// read and write every document it names, so listen on a trusted network only.
#[derive(Debug, uniffi::Object)]
pub struct PeerServer {
    url: String,
    port: u16,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    served: Mutex<Option<tokio::task::JoinHandle<Result<(), weft::Error>>>>,
}

impl PeerServer {
    /// Binds `address` and serves `repo` on it until stopped.
    pub(crate) async fn start(repo: weft::Repo, address: String) -> Result<Arc<Self>, WeftError> {
        run(async move {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .map_err(|error| {
                    WeftError::Network(format!("cannot listen on {address}: {error}"))
                })?;
            let local = listener
                .local_addr()
                .map_err(|error| WeftError::Internal(error.to_string()))?;
            let (stop, stopped) = oneshot::channel::<()>();
            let served = tokio::spawn(weft::net::serve(
                repo,
                listener,
                weft::net::NetConfig::default(),
                async {
                    let _ = stopped.await;
                },
            ));
            Ok(Arc::new(Self {
                url: format!("ws://{local}"),
                port: local.port(),
                stop: Mutex::new(Some(stop)),
                served: Mutex::new(Some(served)),
            }))
        })
        .await
    }
}

#[uniffi::export]
impl PeerServer {
    /// The address listened on as `ws://host:port` (with the port the system chose for port
    /// 0). For `0.0.0.0` this is not what another device dials: it dials this device's
    /// network address with [`port`](Self::port).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting and closes the peers' connections (they are given a close frame).
    pub async fn stop(&self) -> Result<(), WeftError> {
        if let Some(stop) = self.stop.lock().await.take() {
            let _ = stop.send(());
        }
        let served = self.served.lock().await.take();
        if let Some(served) = served {
            run(async move {
                served
                    .await
                    .map_err(|error| WeftError::Internal(error.to_string()))??;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
