//! The network: repos on WebSockets, as automerge-repo's WebSocket adapters speak them.
//!
//! Each WebSocket binary message is one automerge-repo message. A connection is pumped
//! between the socket and a [`Transport`](crate::Transport) of the repo, so everything the
//! sync engine does (handshake, sync, limits) is the same on every transport.
//! - [`Repo::dial`](crate::Repo::dial): a client that reconnects with exponential backoff
//!   and jitter, with an observable [`ConnectionState`].
//! - [`serve`]: accept peers on a TCP listener (a relay, or a device on its LAN);
//!   [`serve_with`] first asks an [`Authorize`] what each peer may read and write;
//!   [`Server`] also hands plain HTTP requests on the same port to an [`HttpService`].
//!
//! Binary frames only: a text frame, or a message over the size limit, closes that
//! connection with a close frame saying why. Pings keep idle connections alive and find dead
//! ones.

mod authorize;
mod client;
mod http;
mod listener;
mod socket;
pub mod tls;

pub use authorize::{Authorize, Refused, TrustAll, UpgradeRequest};
pub use client::{ConnectionState, Dialer, peer_url, without_query};
pub use http::{HttpConnection, HttpService};
pub use listener::{Server, serve, serve_with};
pub use socket::NetConfig;
