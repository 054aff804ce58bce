//! The engine's inputs, effects and the values they carry.

use std::{fmt, sync::Arc};

use automerge::{AutomergeError, ChangeHash, transaction::Transaction};

use super::access::Access;
use crate::{DocumentId, PeerId, StorageId, wire::PeerMetadata};

/// Milliseconds since the Unix epoch: the engine's notion of now, given by its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// `self` plus `ms` milliseconds.
    pub fn plus(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

/// A connection, named by the driver. Ids must not be reused while the engine lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// The other end of an established connection, as it introduced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The connection.
    pub connection: ConnectionId,
    /// The id the peer claims (not authenticated).
    pub peer_id: PeerId,
    /// Its storage id and whether it is ephemeral.
    pub metadata: PeerMetadata,
    /// What it may read and write (from the credentials of its connection).
    pub access: Access,
}

impl PeerInfo {
    /// The storage id under which sync state with this peer is persisted: only for a peer
    /// that has storage and is not ephemeral (as automerge-repo does).
    pub fn persistent_storage(&self) -> Option<&StorageId> {
        match &self.metadata {
            PeerMetadata {
                storage_id: Some(id),
                is_ephemeral: false,
            } => Some(id),
            _ => None,
        }
    }
}

/// The closure of a [`LocalChange`].
pub type ChangeFn = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send>;

/// A change the app makes to a document: a closure run inside an automerge transaction.
pub struct LocalChange(pub ChangeFn);

impl LocalChange {
    /// Wraps a change closure.
    pub fn new(
        change: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send + 'static,
    ) -> Self {
        Self(Box::new(change))
    }
}

impl fmt::Debug for LocalChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalChange(..)")
    }
}

/// Something that happened, for [`Engine::handle`](super::Engine::handle).
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// A connection is open. If `dialed`, this side opened it and sends `join`; otherwise
    /// it waits for the other side's `join`.
    Connected {
        /// The connection.
        connection: ConnectionId,
        /// Whether this side dialled.
        dialed: bool,
        /// What the peer may read and write ([`Access::full`] for a trusted peer).
        access: Access,
    },
    /// One binary message arrived on a connection.
    Received {
        /// The connection.
        connection: ConnectionId,
        /// The message's bytes.
        bytes: Vec<u8>,
    },
    /// A connection is gone (closed by either side, or broken).
    Disconnected {
        /// The connection.
        connection: ConnectionId,
    },
    /// The app creates a new, empty document with this id.
    Create {
        /// Its id (random in practice: [`DocumentId::random`]).
        document: DocumentId,
    },
    /// The app wants this document: load it from storage, or ask peers for it.
    Open {
        /// The document.
        document: DocumentId,
    },
    /// The app changes an open document.
    Change {
        /// The document.
        document: DocumentId,
        /// The change.
        change: LocalChange,
    },
    /// The app broadcasts an ephemeral payload (presence, cursors) to the document's peers.
    Broadcast {
        /// The document.
        document: DocumentId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A storage task finished.
    Storage(StorageResult),
    /// Time passed: request timeouts and throttled saves are due. Call at
    /// [`Engine::next_deadline`](super::Engine::next_deadline).
    Tick,
}

/// Something the driver must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Send these bytes as one binary message on the connection.
    Send {
        /// The connection.
        connection: ConnectionId,
        /// Its wire type (`"sync"`, `"request"`, …), for metrics.
        kind: &'static str,
        /// One encoded [`Message`](crate::wire::Message).
        bytes: Vec<u8>,
    },
    /// Close the connection (after sending what was queued before this effect), then
    /// report [`Input::Disconnected`].
    Close {
        /// The connection.
        connection: ConnectionId,
        /// Why, for the close frame and the logs.
        reason: String,
    },
    /// Run a storage task; its result, if it has one, comes back as [`Input::Storage`].
    /// Tasks of one document must complete in the order given.
    Storage(StorageTask),
    /// Tell the app.
    Notify(Notification),
}

/// Who delivered changes that arrived from a peer (see
/// [`SyncConfig::record_arrivals`](crate::sync::SyncConfig::record_arrivals)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrivals {
    /// The user the peer's credentials name.
    pub user: String,
    /// The changes new to this replica in what it delivered.
    pub changes: Vec<ChangeHash>,
    /// When they arrived.
    pub at: Millis,
}

/// Storage work the engine asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageTask {
    /// Load a document: answer [`StorageResult::Loaded`].
    Load {
        /// The document.
        document: DocumentId,
    },
    /// Append automerge bytes (a document or changes) to a document's stored chunks,
    /// creating it if needed: answer [`StorageResult::Appended`], once per append and in
    /// the order the appends of a document were asked for.
    Append {
        /// The document.
        document: DocumentId,
        /// Automerge bytes: `save()` or `save_after()` output.
        bytes: Vec<u8>,
        /// The document's heads once they are applied.
        heads: Vec<ChangeHash>,
        /// Who delivered changes, to be stored with them (only when
        /// [`SyncConfig::record_arrivals`](crate::sync::SyncConfig::record_arrivals) is on
        /// and peers' credentials name users): these changes', and any whose write failed.
        arrivals: Vec<Arrivals>,
    },
    /// Load the sync state saved with a peer's storage: answer
    /// [`StorageResult::SyncStateLoaded`].
    LoadSyncState {
        /// The document.
        document: DocumentId,
        /// The peer's storage id.
        peer: StorageId,
    },
    /// Save the sync state with a peer's storage (no answer needed; a lost save only costs
    /// a longer sync next time).
    SaveSyncState {
        /// The document.
        document: DocumentId,
        /// The peer's storage id.
        peer: StorageId,
        /// `automerge::sync::State::encode()` output.
        state: Vec<u8>,
    },
}

/// The result of a [`StorageTask`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageResult {
    /// A document's stored bytes (every chunk concatenated), or `None` if it is not stored.
    Loaded {
        /// The document.
        document: DocumentId,
        /// The bytes.
        bytes: Option<Vec<u8>>,
    },
    /// An append finished.
    Appended {
        /// The document.
        document: DocumentId,
        /// Whether it was committed. After a failure the engine sends nothing for the
        /// document until a retry (the whole document, a second later) is stored.
        ok: bool,
    },
    /// A saved sync state, or `None` if there is none.
    SyncStateLoaded {
        /// The document.
        document: DocumentId,
        /// The peer's storage id.
        peer: StorageId,
        /// The state.
        state: Option<Vec<u8>>,
    },
}

/// What the app hears from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// A connection finished its handshake.
    PeerConnected(PeerInfo),
    /// An established connection is gone.
    PeerDisconnected {
        /// The connection.
        connection: ConnectionId,
        /// The peer's id.
        peer_id: PeerId,
    },
    /// A peer broke the protocol; its connection is being closed with this error.
    PeerFailed {
        /// The connection.
        connection: ConnectionId,
        /// What it did wrong.
        error: String,
    },
    /// A peer sent an `error` message (for instance a relay refusing changes this replica
    /// may not make); the connection stays open unless the peer closes it.
    PeerError {
        /// The connection.
        connection: ConnectionId,
        /// The peer's message.
        message: String,
    },
    /// A document is ready: loaded from storage, created, or received from a peer.
    DocumentReady {
        /// The document.
        document: DocumentId,
    },
    /// Everything in the document up to these heads is stored: local changes made before
    /// are durable (the acknowledgement of a change).
    Stored {
        /// The document.
        document: DocumentId,
        /// Its heads, all stored.
        heads: Vec<ChangeHash>,
    },
    /// Changes from a peer were applied to a document.
    RemoteChange {
        /// The document.
        document: DocumentId,
        /// The peer they came from.
        from: PeerId,
        /// The document's heads after them.
        heads: Vec<ChangeHash>,
    },
    /// Neither storage nor any peer has a document the app opened. If a peer connects
    /// later, it is asked again.
    DocumentUnavailable {
        /// The document.
        document: DocumentId,
    },
    /// An ephemeral payload about a document arrived.
    Ephemeral {
        /// The document.
        document: DocumentId,
        /// The peer that broadcast it.
        from: PeerId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A relay reports a storage's heads of a document (heads gossip).
    RemoteHeads {
        /// The document.
        document: DocumentId,
        /// The storage whose heads these are.
        storage: StorageId,
        /// The heads.
        heads: Vec<ChangeHash>,
        /// When they were seen (milliseconds since the Unix epoch).
        timestamp: u64,
    },
}

/// Why a peer's message ends its connection.
pub(crate) struct PeerFault(pub(crate) String);

impl<T: fmt::Display> From<T> for PeerFault {
    fn from(error: T) -> Self {
        Self(error.to_string())
    }
}

pub(crate) type SharedPeer = Arc<PeerInfo>;
