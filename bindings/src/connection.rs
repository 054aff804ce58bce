//! [`Connection`]: a relay or peer the repo keeps connected to.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Mutex, watch};
use tokio_stream::wrappers::WatchStream;
use weft::net::{self, Dialer};

use crate::{Subscription, WeftError, runtime::run};

/// Where a connection stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Opening the connection (`attempt` counts from 1 since the last success).
    Connecting {
        /// The attempt.
        attempt: u32,
    },
    /// Connected: documents sync.
    Connected,
    /// Not connected; everything keeps working locally, and the next attempt is due in
    /// `retry_in_ms`.
    Offline {
        /// Why the last attempt or connection ended.
        last_error: String,
        /// When the next attempt starts, in milliseconds.
        retry_in_ms: u64,
    },
    /// The relay or peer refused the token; no further attempt is made (connect again with
    /// another token).
    Refused {
        /// The peer's reason.
        reason: String,
    },
    /// `disconnect` was called.
    Stopped,
}

impl From<net::ConnectionState> for ConnectionState {
    fn from(state: net::ConnectionState) -> Self {
        use net::ConnectionState as S;
        match state {
            S::Connecting { attempt } => Self::Connecting { attempt },
            S::Connected => Self::Connected,
            S::Offline {
                last_error,
                retry_in,
            } => Self::Offline {
                last_error,
                retry_in_ms: u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
            },
            S::Refused { reason } => Self::Refused { reason },
            // `Stopped`, and whatever later versions add.
            _ => Self::Stopped,
        }
    }
}

/// Told about a connection's state; implemented in the host language.
#[uniffi::export(foreign)]
pub trait ConnectionListener: Send + Sync {
    /// Called with the current state, then as it changes, in order, on a background thread
    /// (states that follow each other quickly may be skipped; the latest always comes). An
    /// error it raises is logged.
    fn on_state(&self, state: ConnectionState) -> Result<(), WeftError>;
}

/// A relay or peer the repo keeps connected to: it dials again with backoff (250 ms
/// doubling to 30 s) whenever the connection drops, until `disconnect`. Documents keep
/// working offline and sync when it is back.
#[derive(Debug, uniffi::Object)]
pub struct Connection {
    url: String,
    state: watch::Receiver<net::ConnectionState>,
    dialer: Mutex<Option<Dialer>>,
}

impl Connection {
    pub(crate) fn new(url: String, dialer: Dialer) -> Arc<Self> {
        Arc::new(Self {
            url,
            state: dialer.watch(),
            dialer: Mutex::new(Some(dialer)),
        })
    }

    /// Whether it was disconnected or refused (nothing more will happen on it).
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(
            *self.state.borrow(),
            net::ConnectionState::Stopped | net::ConnectionState::Refused { .. }
        )
    }
}

#[uniffi::export]
impl Connection {
    /// The address dialled, without its query (which may hold a token).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone().into()
    }

    /// Waits until connected. Raises `Unauthorized` if the peer refuses the token, `Closed`
    /// if the connection was stopped, and `Timeout` (with the last error) if it is not
    /// connected within `timeout_ms`.
    pub async fn wait_connected(&self, timeout_ms: u64) -> Result<(), WeftError> {
        let mut state = self.state.clone();
        let url = self.url.clone();
        run(async move {
            let settled = tokio::time::timeout(
                Duration::from_millis(timeout_ms),
                state.wait_for(|s| {
                    matches!(
                        s,
                        net::ConnectionState::Connected
                            | net::ConnectionState::Refused { .. }
                            | net::ConnectionState::Stopped
                    )
                }),
            )
            .await
            .map(|waited| waited.map(|state| state.clone()));
            match settled {
                Ok(Ok(net::ConnectionState::Connected)) => Ok(()),
                Ok(Ok(net::ConnectionState::Refused { reason })) => {
                    Err(WeftError::Unauthorized(format!("{url}: {reason}")))
                }
                Ok(_) => Err(WeftError::Closed(format!("{url}: disconnected"))),
                Err(_) => {
                    let why = match &*state.borrow() {
                        net::ConnectionState::Offline { last_error, .. } => {
                            format!(" (last error: {last_error})")
                        }
                        _ => String::new(),
                    };
                    Err(WeftError::Timeout(format!(
                        "{url}: not connected after {timeout_ms} ms{why}"
                    )))
                }
            }
        })
        .await
    }

    /// Calls `listener` with the current state and then as it changes, until the
    /// subscription is cancelled or freed.
    pub fn subscribe(
        &self,
        listener: Arc<dyn ConnectionListener>,
    ) -> Result<Arc<Subscription>, WeftError> {
        let states = WatchStream::new(self.state.clone());
        let subscription =
            Subscription::start(states, move |state| listener.on_state(state.into()))?;
        Ok(Arc::new(subscription))
    }

    /// Closes the connection and stops dialling. Documents stay as they are.
    pub async fn disconnect(&self) -> Result<(), WeftError> {
        let dialer = self.dialer.lock().await.take();
        if let Some(dialer) = dialer {
            run(async move {
                dialer.stop().await;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
