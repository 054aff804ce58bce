//! [`Message`]: every message of automerge-repo's protocol, as values.

use automerge::ChangeHash;

use crate::{DocumentId, PeerId, StorageId};

/// The protocol version this crate speaks, as negotiated in `join` / `peer`.
pub const PROTOCOL_V1: &str = "1";

/// What a peer says about itself in `join` and `peer` (automerge-repo's `peerMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The id of the peer's storage, if it has one. Sync state with a peer is remembered
    /// under this id, so that a reconnect exchanges only what is missing.
    pub storage_id: Option<StorageId>,
    /// The peer keeps nothing (no storage, or a throwaway one): do not persist sync state
    /// for it.
    pub is_ephemeral: bool,
}

/// A peer's heads of one document as last seen by a relay, in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHeads {
    /// The heads.
    pub heads: Vec<ChangeHash>,
    /// When they were seen, in milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// One message of automerge-repo's protocol (version 1).
///
/// `sender` and `target` are the peers' self-chosen ids; they are not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The first message of a connection, from the side that dialled.
    Join {
        /// Who is joining.
        sender: PeerId,
        /// What it says about itself; absent from very old peers.
        metadata: Option<PeerMetadata>,
        /// Protocol versions it speaks. Absent means version 1 (as the JS server reads it).
        supported_versions: Option<Vec<String>>,
    },
    /// The answer to `join`: the connection is established.
    Peer {
        /// Who answers.
        sender: PeerId,
        /// Who joined.
        target: PeerId,
        /// What the answering side says about itself.
        metadata: Option<PeerMetadata>,
        /// The version chosen from the joiner's list.
        selected_version: String,
    },
    /// A fatal error; the sender closes the connection after it.
    Error {
        /// Who sends it (JS sends it; other implementations may not).
        sender: Option<PeerId>,
        /// Who it is for.
        target: Option<PeerId>,
        /// What went wrong, for humans.
        message: String,
    },
    /// Like [`Sync`](Self::Sync), from a peer that has nothing of the document and wants to be
    /// told [`DocUnavailable`](Self::DocUnavailable) if the receiver does not have it either.
    Request {
        /// Who asks.
        sender: PeerId,
        /// Who is asked.
        target: PeerId,
        /// The document.
        document: DocumentId,
        /// An automerge sync message.
        data: Vec<u8>,
    },
    /// An automerge sync message for one document.
    Sync {
        /// Who sends it.
        sender: PeerId,
        /// Who it is for.
        target: PeerId,
        /// The document.
        document: DocumentId,
        /// An automerge sync message (`automerge::sync::Message::encode`).
        data: Vec<u8>,
    },
    /// The sender does not have the document (and neither do the peers it asked).
    DocUnavailable {
        /// Who answers.
        sender: PeerId,
        /// Who asked.
        target: PeerId,
        /// The document.
        document: DocumentId,
    },
    /// An app payload (presence, cursors) about a document, forwarded to the document's other
    /// peers but never stored.
    Ephemeral {
        /// The peer that broadcast it (kept when forwarded).
        sender: PeerId,
        /// The next hop.
        target: PeerId,
        /// The document it is about.
        document: DocumentId,
        /// The sender's session; with `count`, it identifies the message for de-duplication.
        session: String,
        /// The message's number within the session.
        count: u64,
        /// The app's payload (CBOR in automerge-repo).
        data: Vec<u8>,
    },
    /// The sender wants (or no longer wants) `remote-heads-changed` about these storage ids.
    RemoteSubscriptionChange {
        /// Who subscribes.
        sender: PeerId,
        /// Who is asked.
        target: PeerId,
        /// Storage ids to add to the subscription.
        add: Vec<StorageId>,
        /// Storage ids to remove from it.
        remove: Vec<StorageId>,
    },
    /// Heads of a document that other storages have, by storage id.
    RemoteHeadsChanged {
        /// Who reports.
        sender: PeerId,
        /// Who it is for.
        target: PeerId,
        /// The document.
        document: DocumentId,
        /// Heads per storage id.
        new_heads: Vec<(StorageId, RemoteHeads)>,
    },
    /// The sender is leaving. In automerge-repo's written spec only: the JS code never sends
    /// it, but other implementations may.
    Leave {
        /// Who leaves.
        sender: PeerId,
    },
}

impl Message {
    /// The wire name of the message's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Peer { .. } => "peer",
            Self::Error { .. } => "error",
            Self::Request { .. } => "request",
            Self::Sync { .. } => "sync",
            Self::DocUnavailable { .. } => "doc-unavailable",
            Self::Ephemeral { .. } => "ephemeral",
            Self::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Self::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Self::Leave { .. } => "leave",
        }
    }

    /// The document the message is about, if any.
    pub fn document(&self) -> Option<DocumentId> {
        match self {
            Self::Request { document, .. }
            | Self::Sync { document, .. }
            | Self::DocUnavailable { document, .. }
            | Self::Ephemeral { document, .. }
            | Self::RemoteHeadsChanged { document, .. } => Some(*document),
            _ => None,
        }
    }
}
