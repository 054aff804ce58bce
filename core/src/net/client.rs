//! Dialling a peer, and dialling again when the connection ends.

use std::time::Duration;

use std::sync::Arc;

use tokio::{sync::watch, task::JoinHandle};
use tokio_tungstenite::Connector;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio_tungstenite::tungstenite;

use super::socket::{Ended, NetConfig, pump, transport_pair};
use crate::{Repo, Role, sync::Access};

/// Where a dialled connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Opening the connection (`attempt` counts from 1 since the last success).
    Connecting {
        /// The attempt.
        attempt: u32,
    },
    /// Connected; the repo syncs over it.
    Connected,
    /// Not connected; the next attempt is due in `retry_in`.
    Offline {
        /// Why the last attempt or connection ended.
        last_error: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// The peer refused this repo's credentials: a weft relay closed the connection with
    /// 1008 and a reason starting "unauthorized" (an unknown, expired or forged token, or
    /// none where one is required). Dialling stops, since the same token would be refused
    /// again: dial again with another one. (An HTTP 401 or 403 from a proxy in front is
    /// `Offline` and retried: it may be passing.)
    Refused {
        /// The peer's reason.
        reason: String,
    },
    /// [`Dialer::stop`] was called, the dialer was dropped, or the repo was closed.
    Stopped,
}

/// A connection the repo keeps dialling: reconnects with exponential backoff (250 ms
/// doubling to 30 s, with jitter) until stopped. Dropping it stops it too.
#[derive(Debug)]
pub struct Dialer {
    state: watch::Receiver<ConnectionState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The first retry delay, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

impl Dialer {
    /// The current state.
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change (`changed().await`).
    pub fn watch(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Waits until the state satisfies `done` (for example, connected).
    pub async fn wait_for(&self, done: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
        let mut state = self.state.clone();
        match state.wait_for(|s| done(s)).await {
            Ok(state) => state.clone(),
            Err(_) => ConnectionState::Stopped,
        }
    }

    /// Closes the connection and stops dialling.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Repo {
    /// Dials a peer at `url` (`ws://host:port`, or `wss://` checked against the public web's
    /// certificate authorities) and keeps the connection up: when it ends
    /// or fails, dials again with exponential backoff and jitter. Must be called inside a
    /// tokio runtime.
    pub fn dial(&self, url: impl Into<String>, config: NetConfig) -> Dialer {
        self.dial_with(url, config, Access::full())
    }

    /// Like [`dial`](Self::dial), granting the dialled peer `access` (a relay dials another
    /// relay with [`Access::replica`], so that it is offered every document).
    pub fn dial_with(&self, url: impl Into<String>, config: NetConfig, access: Access) -> Dialer {
        self.dial_inner(url.into(), config, access, None)
    }

    /// Like [`dial_with`](Self::dial_with), for a `wss://` peer whose certificate `tls`
    /// trusts (see [`tls::trusting`](super::tls::trusting) for a private authority).
    pub fn dial_tls(
        &self,
        url: impl Into<String>,
        config: NetConfig,
        access: Access,
        tls: Arc<rustls::ClientConfig>,
    ) -> Dialer {
        self.dial_inner(url.into(), config, access, Some(tls))
    }

    fn dial_inner(
        &self,
        url: String,
        config: NetConfig,
        access: Access,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Dialer {
        // The message rate guards a listener against its peers; what a repo dialled itself
        // is read as fast as it comes.
        let config = config.with_message_rate(0, 1);
        let (state_tx, state) = watch::channel(ConnectionState::Connecting { attempt: 1 });
        let (stop, stopping) = watch::channel(false);
        let repo = self.clone();
        // Registered before this returns, so that a `find` right after `dial` waits for
        // the first attempt. Until the first connection, finds wait for every attempt;
        // after it, a reconnecting dialer does not hold them up.
        let mut first_attempt = self.sync_driver().map(|sync| sync.dial_attempt());
        let mut ever_connected = false;
        let task = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 1;
            let mut stopping = stopping;
            loop {
                if *stopping.borrow() {
                    break;
                }
                if repo.is_closed() {
                    break; // nothing to sync for: stopped
                }
                let _ = state_tx.send(ConnectionState::Connecting { attempt });
                // Finds made meanwhile wait for this attempt, as for a handshake.
                let mut dial_attempt = first_attempt.take().or_else(|| {
                    (!ever_connected)
                        .then(|| repo.sync_driver().map(|sync| sync.dial_attempt()))
                        .flatten()
                });
                let connecting = tokio::time::timeout(
                    config.handshake_timeout,
                    // Without a configuration, wss:// trusts the Mozilla root store (ws://
                    // ignores the connector).
                    tokio_tungstenite::connect_async_tls_with_config(
                        url.as_str(),
                        Some(config.websocket()),
                        true,
                        Some(Connector::Rustls(
                            tls.clone().unwrap_or_else(super::tls::public_roots),
                        )),
                    ),
                );
                let connected = tokio::select! {
                    connected = connecting => connected,
                    _ = stopping.changed() => break,
                };
                let error = match connected {
                    Ok(Ok((socket, _))) => {
                        let (transport, link) = transport_pair(&config);
                        let registered = repo
                            .connect_with(transport, Role::Dial, access.clone())
                            .await;
                        dial_attempt = None;
                        match registered {
                            Ok(connection) => {
                                let since = tokio::time::Instant::now();
                                let pumping = pump(socket, link, &config, stopping.clone(), None);
                                tokio::pin!(pumping);
                                // Connected once the peer answered the handshake: a relay
                                // that refuses the token closes the socket instead.
                                let mut peers = repo.peers();
                                let joined = peers.wait_for(|peers| {
                                    peers.iter().any(|peer| peer.connection == connection)
                                });
                                let ended = tokio::select! {
                                    ended = &mut pumping => Some(ended),
                                    Ok(_) = joined => None,
                                };
                                let ended = match ended {
                                    Some(ended) => ended,
                                    None => {
                                        ever_connected = true;
                                        let _ = state_tx.send(ConnectionState::Connected);
                                        pumping.await
                                    }
                                };
                                if since.elapsed() >= STABLE {
                                    backoff = FIRST_BACKOFF;
                                    attempt = 0;
                                }
                                if let Ended::Unauthorized(reason) = ended {
                                    refused(&state_tx, &url, reason);
                                    return;
                                }
                                ended.reason()
                            }
                            // The repo is closed: nothing to sync for.
                            Err(error) => {
                                tracing::debug!(%error, "not dialling again");
                                break;
                            }
                        }
                    }
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "the handshake timed out".to_owned(),
                };
                drop(dial_attempt);
                if *stopping.borrow() {
                    break;
                }
                let retry_in = jitter(backoff);
                tracing::info!(url = %without_query(&url), %error, ?retry_in, "connection down; dialling again");
                let _ = state_tx.send(ConnectionState::Offline {
                    last_error: error,
                    retry_in,
                });
                tokio::select! {
                    _ = tokio::time::sleep(retry_in) => {}
                    _ = stopping.changed() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            let _ = state_tx.send(ConnectionState::Stopped);
        });
        Dialer { state, stop, task }
    }
}

/// Checks that `url` is an address [`Repo::dial`] can reach (`ws://` or `wss://`, with a
/// host) and returns it with `token`, if any, added as its `token` query parameter (how a
/// weft relay, and a proxy that keeps tokens out of its logs, expects one).
pub fn peer_url(url: &str, token: Option<&str>) -> crate::Result<String> {
    let invalid = |reason: &str| crate::Error::InvalidPeerUrl {
        url: without_query(url).to_owned(),
        reason: reason.to_owned(),
    };
    let uri: tungstenite::http::Uri = url
        .parse()
        .map_err(|_| invalid("not a URL (expected ws://host:port or wss://host)"))?;
    if !matches!(uri.scheme_str(), Some("ws" | "wss")) {
        return Err(invalid("the scheme must be ws:// or wss://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("there is no host"));
    }
    let Some(token) = token else {
        return Ok(url.to_owned());
    };
    let token = utf8_percent_encode(token, NON_ALPHANUMERIC);
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    // A URL without a path gets one, so that the query is not read as part of the host.
    let has_path = base
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    let slash = if has_path { "" } else { "/" };
    Ok(match query {
        Some(query) => format!("{base}{slash}?{query}&token={token}"),
        None => format!("{base}{slash}?token={token}"),
    })
}

/// Reports that the peer refused our credentials; the dialer then stops.
fn refused(state: &watch::Sender<ConnectionState>, url: &str, reason: String) {
    tracing::warn!(url = %without_query(url), %reason, "the peer refused this repo's credentials; not dialling again");
    let _ = state.send(ConnectionState::Refused { reason });
}

/// `url` without its query, which may hold a token: what logs and error messages show.
pub fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// A delay between half of `base` and `base`, so that many clients that lost the same
/// relay do not all come back at once.
fn jitter(base: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    let fraction = match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    };
    base.mul_f64(0.5 + fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_take_a_token_as_a_query_parameter() {
        assert_eq!(peer_url("ws://h:1", None).unwrap(), "ws://h:1");
        assert_eq!(
            peer_url("ws://h:1", Some("a b/c")).unwrap(),
            "ws://h:1/?token=a%20b%2Fc"
        );
        assert_eq!(
            peer_url("wss://h/sync", Some("t")).unwrap(),
            "wss://h/sync?token=t"
        );
        assert_eq!(
            peer_url("ws://h/?x=1", Some("t")).unwrap(),
            "ws://h/?x=1&token=t"
        );
        assert_eq!(
            peer_url("ws://h/xh", Some("t")).unwrap(),
            "ws://h/xh?token=t"
        );
        assert_eq!(
            peer_url("ws://h:1?x=1", Some("t")).unwrap(),
            "ws://h:1/?x=1&token=t"
        );
    }

    #[test]
    fn only_websocket_urls_with_a_host_are_peers() {
        for (url, reason) in [
            ("http://h:1", "the scheme must be ws:// or wss://"),
            ("h:1", "the scheme must be ws:// or wss://"),
            (
                "not a url",
                "not a URL (expected ws://host:port or wss://host)",
            ),
            (
                "ws:///x",
                "not a URL (expected ws://host:port or wss://host)",
            ),
        ] {
            let error = peer_url(url, None).unwrap_err();
            assert!(error.to_string().ends_with(reason), "{url}: {error}");
        }
    }
}
