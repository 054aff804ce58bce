//! One WebSocket pumped to and from a repo's transport.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
    time::Instant,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

use crate::{PeerId, Transport, observe::Refusal, repo::Backlog, wire};

/// Limits and timers of WebSocket connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetConfig {
    /// The largest message accepted, in bytes (64 MiB, as the wire decoder's limit); a larger
    /// one closes the connection with "message too big".
    pub max_message_bytes: usize,
    /// How often an idle connection is pinged (15 s). One that answers nothing for two
    /// intervals is closed.
    pub keepalive: Duration,
    /// How long a WebSocket (and TCP) handshake may take (10 s).
    pub handshake_timeout: Duration,
    /// How many connections a listener serves at once (10,000); more are refused. Keep the
    /// process's open-file limit above it.
    pub max_connections: usize,
    /// How many bytes may wait to be written to one connection (64 MiB, and always at
    /// least one message): a peer that stops reading is disconnected beyond it; one that is
    /// still reading (something written within a keepalive interval) beyond four times it.
    pub max_queued_bytes: usize,
    /// How many of those may still be in their handshake (TCP accepted, no automerge-repo
    /// message yet) at once (256). A new one beyond it closes the oldest, so that a flood
    /// of connections that never finish cannot keep a real client out.
    pub max_handshaking: usize,
    /// How many messages per second a peer accepted by a listener may send, sustained
    /// (1,000; 0 for no limit; never applied to dialled connections or other relays).
    /// Beyond it the connection is not read until the rate allows (TCP pushes back on the
    /// peer); nothing is dropped.
    pub message_rate: u32,
    /// How many messages a peer may send at once above the rate (10,000): a client opening
    /// thousands of documents asks for them all at once.
    pub message_burst: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            keepalive: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_handshaking: 256,
            max_queued_bytes: 64 << 20,
            message_rate: 1_000,
            message_burst: 10_000,
        }
    }
}

impl NetConfig {
    pub(crate) fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }

    /// With another largest message size.
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// With other connection caps (see the fields).
    /// `handshaking` is kept to at most half of `connections`, so that connections in
    /// their handshake can never fill every slot (evicting them is what keeps room).
    pub fn with_max_connections(mut self, connections: usize, handshaking: usize) -> Self {
        self.max_connections = connections.max(2);
        self.max_handshaking = handshaking.clamp(1, self.max_connections / 2);
        self
    }

    /// With another bound on bytes waiting to be written to one connection (at least one
    /// message of the largest size).
    pub fn with_max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes.max(1);
        self
    }

    /// With another message rate and burst per connection (a rate of 0: no limit).
    pub fn with_message_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.message_rate = per_second;
        self.message_burst = burst.max(1);
        self
    }

    /// With another handshake timeout.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// With another keepalive interval.
    pub fn with_keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }
}

/// The pump's end of a connection: frames from the repo, frames to it, and what is queued.
pub(crate) struct Link {
    from_repo: mpsc::UnboundedReceiver<Vec<u8>>,
    to_repo: mpsc::UnboundedSender<Vec<u8>>,
    backlog: Arc<Backlog>,
}

/// The repo's end of a connection, and the pump's; at most `config.max_queued_bytes` may
/// wait to be written.
pub(crate) fn transport_pair(config: &NetConfig) -> (Transport, Link) {
    let (to_socket, from_repo) = mpsc::unbounded_channel();
    let (to_repo, from_socket) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::new(config.max_queued_bytes, config.keepalive));
    (
        Transport::from_channels(to_socket, from_socket).with_backlog(backlog.clone()),
        Link {
            from_repo,
            to_repo,
            backlog,
        },
    )
}

/// How a pumped connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Closed normally by either side.
    Closed,
    /// Broken, or closed by the peer for a reason.
    Failed(String),
    /// Turned away or cut by us, for a reason the observer counts.
    Refused(Refusal, String),
    /// Turned away by the peer: it does not accept our credentials (closed with 1008 and a
    /// reason starting "unauthorized", as a weft relay refuses a token).
    Unauthorized(String),
}

impl Ended {
    /// Why it ended, for the dialer's `last_error`.
    pub(crate) fn reason(self) -> String {
        match self {
            Self::Closed => "the connection closed".to_owned(),
            Self::Failed(reason) | Self::Refused(_, reason) | Self::Unauthorized(reason) => reason,
        }
    }
}

/// Moves frames between `socket` and the repo until either side ends the connection.
pub(crate) async fn pump<S>(
    mut socket: WebSocketStream<S>,
    link: Link,
    config: &NetConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut first_message: Option<tokio::sync::oneshot::Sender<()>>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Link {
        mut from_repo,
        to_repo,
        backlog,
    } = link;
    let interval = config.keepalive.max(Duration::from_millis(100));
    // A peer that stops reading stalls our sends; this bounds how long one may take, so
    // that the pump still notices shutdown and dead peers.
    let send_timeout = interval * 2;
    let mut keepalive = tokio::time::interval(interval);
    keepalive.tick().await; // the first tick is immediate
    let mut heard = Instant::now();
    let mut rate = TokenBucket::new(config.message_rate, config.message_burst);
    // Set while the peer is over its message rate: nothing is read until then.
    let mut paused: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(paused.unwrap_or_else(Instant::now)), if paused.is_some() => {
                paused = None;
            }
            frame = socket.next(), if paused.is_none() => {
                heard = Instant::now();
                match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Some(first) = first_message.take() {
                            let _ = first.send(()); // the peer is speaking the protocol
                        }
                        if to_repo.send(bytes.to_vec()).is_err() {
                            return close(&mut socket, CloseCode::Away, "the repo closed").await;
                        }
                        paused = rate.take(heard);
                    }
                    Some(Ok(Message::Text(_))) => {
                        return fail(&mut socket, Refusal::Protocol, CloseCode::Unsupported,
                            "text frames are not part of the protocol: automerge-repo messages are binary").await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        // Reading on sends our reply to the peer's close frame.
                        finish(&mut socket).await;
                        return match frame {
                            Some(frame) if frame.code == CloseCode::Policy && frame.reason.starts_with("unauthorized") => {
                                Ended::Unauthorized(format!("refused by the peer: {}", frame.reason))
                            }
                            // Kept for the dialer's `last_error` (a limit, a protocol error).
                            Some(frame) if frame.code != CloseCode::Normal && frame.code != CloseCode::Away => {
                                Ended::Failed(format!("closed by the peer ({}): {}", u16::from(frame.code), frame.reason))
                            }
                            _ => Ended::Closed,
                        };
                    }
                    None => {
                        finish(&mut socket).await;
                        return Ended::Closed;
                    }
                    Some(Err(tungstenite::Error::Capacity(error))) => {
                        let reason = format!("message too big: {error} (limit {} bytes)", config.max_message_bytes);
                        return fail(&mut socket, Refusal::MessageTooBig, CloseCode::Size, &reason).await;
                    }
                    Some(Err(error)) => return Ended::Failed(error.to_string()),
                }
            }
            outgoing = from_repo.recv() => match outgoing {
                Some(bytes) => {
                    let length = bytes.len();
                    let sending = tokio::time::timeout(send_timeout, socket.send(Message::Binary(bytes.into())));
                    let sent = tokio::select! {
                        sent = sending => sent,
                        // Too much queued behind this send: stop waiting on the peer.
                        () = backlog.overflow.notified() => {
                            return fail(&mut socket, Refusal::NotReading, CloseCode::Policy, &not_reading(config)).await;
                        }
                    };
                    backlog.written(length);
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => return Ended::Failed(error.to_string()),
                        Err(_) => return Ended::Failed("the peer stopped reading".to_owned()),
                    }
                }
                // The repo ended the connection (it said why in an `error` message, if it
                // was the peer's fault).
                None if backlog.overflowed() => {
                    return fail(&mut socket, Refusal::NotReading, CloseCode::Policy, &not_reading(config)).await;
                }
                None => return close(&mut socket, CloseCode::Normal, "closed by the repo").await,
            },
            _ = keepalive.tick() => {
                if heard.elapsed() > interval * 2 {
                    close(&mut socket, CloseCode::Away, "no answer to pings").await;
                    return Ended::Failed("no answer to pings".to_owned());
                }
                let pinging = tokio::time::timeout(send_timeout, socket.send(Message::Ping(Vec::new().into())));
                let ping = tokio::select! {
                    ping = pinging => ping,
                    () = backlog.overflow.notified() => {
                        return fail(&mut socket, Refusal::NotReading, CloseCode::Policy, &not_reading(config)).await;
                    }
                };
                match ping {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Ended::Failed(error.to_string()),
                    Err(_) => return Ended::Failed("the peer stopped reading".to_owned()),
                }
            }
            _ = stop.changed() => return close(&mut socket, CloseCode::Away, "shutting down").await,
        }
    }
}

/// A per-connection message rate: `burst` messages at once, then `rate` per second.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes one message's token at `now`; if none is left for the next message, when
    /// there will be one. Never pauses with no rate set.
    fn take(&mut self, now: Instant) -> Option<Instant> {
        if self.rate <= 0.0 {
            return None;
        }
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst) - 1.0;
        self.last = now;
        (self.tokens < 1.0).then(|| now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }
}

/// Turns a peer away before it reaches the repo: an automerge-repo `error` message saying
/// why (what the JS client logs), then a close frame with 1008 and the same reason.
pub(crate) async fn refuse<S>(mut socket: WebSocketStream<S>, me: &PeerId, reason: &str) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reason = format!("unauthorized: {reason}");
    tracing::info!(%reason, "connection refused");
    let error = wire::encode(&wire::Message::Error {
        sender: Some(me.clone()),
        target: None,
        message: reason.clone(),
    });
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Binary(error.into())),
    )
    .await;
    close(&mut socket, CloseCode::Policy, &reason).await;
    Ended::Refused(Refusal::Unauthorized, reason)
}

fn not_reading(config: &NetConfig) -> String {
    format!(
        "not reading: more than {} bytes queued",
        config.max_queued_bytes
    )
}

async fn close<S>(socket: &mut WebSocketStream<S>, code: CloseCode, reason: &str) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A close frame's reason has room for 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    // Best effort: the other side may be gone already.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(Some(frame))).await;
    finish(socket).await;
    Ended::Closed
}

/// Reads until the peer's side of the closing handshake is done (or a second passed), so
/// the close is clean for both sides instead of a dropped connection.
async fn finish<S>(socket: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

async fn fail<S>(
    socket: &mut WebSocketStream<S>,
    why: Refusal,
    code: CloseCode,
    reason: &str,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::info!(%reason, "closing a connection");
    close(socket, code, reason).await;
    Ended::Refused(why, reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_paces_to_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5);
        let pauses: Vec<_> = (0..5).map(|_| bucket.take(start)).collect();
        assert!(pauses[..4].iter().all(Option::is_none), "{pauses:?}");
        // The fifth empties it: the next message may come a tenth of a second later.
        let resume = pauses[4].expect("a pause once the burst is spent");
        assert_eq!(resume - start, Duration::from_millis(100));
        // At the rate, it stays paced: one message per tenth of a second.
        let next = bucket.take(resume).expect("still paced");
        assert_eq!(next - resume, Duration::from_millis(100));
        // After a long quiet spell the burst is back, never more.
        let later = next + Duration::from_secs(60);
        assert!((0..4).all(|_| bucket.take(later).is_none()));
        assert!(bucket.take(later).is_some());
        // No rate: never paused.
        let mut unlimited = TokenBucket::new(0, 1);
        assert!((0..100).all(|_| unlimited.take(start).is_none()));
    }
}
