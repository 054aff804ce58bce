//! Deciding, from a connection's HTTP upgrade request, what its peer may read and write.
//!
//! [`serve_with`](super::serve_with) asks an [`Authorize`] before it accepts a peer. A
//! refused peer never reaches the repo: its WebSocket is accepted, sent an automerge-repo
//! `error` message with the reason, and closed with code 1008 (policy violation). Refusing
//! the HTTP upgrade instead would tell browsers nothing (they hide the status), and the
//! official node client throws on anything but a refused TCP connection.

use std::fmt;

pub use tokio_tungstenite::tungstenite::handshake::server::Request as UpgradeRequest;

use crate::sync::Access;

/// Decides what the peer of a new connection may do, from its upgrade request (its URL,
/// with any query, and its headers).
pub trait Authorize: Send + Sync + fmt::Debug + 'static {
    /// The peer's access, or why it is refused. Called on the connection's task before
    /// the WebSocket handshake completes: keep it quick (no I/O).
    fn authorize(&self, request: &UpgradeRequest) -> Result<Access, Refused>;
}

/// Why a connection was refused: sent to the peer, so it must not reveal anything
/// (never echo a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Lets every peer read and write everything: a device on a network it trusts.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustAll;

impl Authorize for TrustAll {
    fn authorize(&self, _: &UpgradeRequest) -> Result<Access, Refused> {
        Ok(Access::full())
    }
}
