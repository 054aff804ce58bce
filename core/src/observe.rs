//! Hooks for metrics: what a repo and its listener report as they work.
//!
//! weft measures; what to do with the figures is the embedder's choice (the relay exports
//! them to Prometheus). Every method has an empty default, so an [`Observer`] implements
//! only what it records. Methods are called on the hot paths (every message, every
//! commit), from any thread: keep them to counter and histogram updates.

use std::{fmt, time::Duration};

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a peer.
    In,
    /// To a peer.
    Out,
}

impl Direction {
    /// `"in"` or `"out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

/// Why a listener turned a connection away or cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The connection cap was reached.
    ConnectionLimit,
    /// Too many connections were in their handshake (this one, or the oldest, let go).
    HandshakeLimit,
    /// The WebSocket handshake took too long.
    HandshakeTimeout,
    /// The WebSocket handshake failed (not a WebSocket request, a broken request).
    HandshakeFailed,
    /// The [`Authorize`](crate::net::Authorize) hook refused the credentials.
    Unauthorized,
    /// A message over the size limit.
    MessageTooBig,
    /// The peer stopped reading and too much was queued for it.
    NotReading,
    /// A text frame, or a peer that broke the protocol.
    Protocol,
}

impl Refusal {
    /// A short stable name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionLimit => "connection_limit",
            Self::HandshakeLimit => "handshake_limit",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HandshakeFailed => "handshake_failed",
            Self::Unauthorized => "unauthorized",
            Self::MessageTooBig => "message_too_big",
            Self::NotReading => "not_reading",
            Self::Protocol => "protocol",
        }
    }
}

/// Receives measurements from a repo ([`RepoConfig::observer`](crate::RepoConfig::observer))
/// and the listeners serving it.
pub trait Observer: Send + Sync + fmt::Debug + 'static {
    /// A message of wire type `kind` (`"sync"`, `"request"`, …; `"invalid"` for one that
    /// could not be decoded) of `bytes` bytes was received or queued for sending.
    fn message(&self, _direction: Direction, _kind: &'static str, _bytes: usize) {}

    /// A sync (or request) message from a peer was applied to its document, `took` after it
    /// was handed to the document (waiting for the document's thread included; for a
    /// document that had to be loaded first, from the end of the load).
    fn sync_applied(&self, _took: Duration) {}

    /// A storage submission became durable (or failed), `took` after it was submitted.
    fn storage_committed(&self, _took: Duration) {}

    /// A listener accepted a TCP connection (`open` true: a WebSocket peer, a plain HTTP
    /// request, or one refused later), or one ended (`open` false). Dialled connections are
    /// not counted.
    fn connection(&self, _open: bool) {}

    /// A listener turned a connection away or cut it, for `reason`.
    fn refused(&self, _reason: Refusal) {}
}

/// Records nothing: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}
