//! The sync engine: automerge-repo's protocol as a sans-IO state machine.
//!
//! Nothing here touches a socket, a clock, a thread or a disk. A driver (the network layer,
//! the in-memory channel, or the deterministic simulation in the tests) feeds
//! [`Input`]s to [`Engine::handle`] with the current time, and carries out the returned
//! [`Effect`]s: bytes to send on a connection, connections to close, storage tasks to run
//! (whose results come back as inputs), and notifications for the app.
//!
//! The engine is built from two machines, so that a multi-threaded driver can run document
//! work on the document's own thread:
//! - the *hub* (one per replica): connections, the `join` / `peer` handshake and version
//!   negotiation, decoding with limits, routing messages to documents, de-duplicating
//!   ephemeral messages, remote-heads subscriptions;
//! - a *document synchroniser* (one per loaded document): per-peer automerge sync states,
//!   `request` / `sync` / `doc-unavailable`, share policies, forwarding, and the rule that
//!   nothing leaves a replica before it is durable.
//!
//! [`Engine`] puts them together over documents it keeps in memory, and is what the
//! simulation drives.

mod access;
pub(crate) mod doc_sync;
pub(crate) mod engine;
pub(crate) mod hub;
mod policy;
pub(crate) mod types;

pub use access::{Access, Scope};
pub use engine::{Engine, SyncConfig};
pub use policy::{AnnounceAll, ServeOnRequest, SharePolicy};
pub use types::{
    Arrivals, ChangeFn, ConnectionId, Effect, Input, LocalChange, Millis, Notification, PeerInfo,
    StorageResult, StorageTask,
};
