//! What the storage layer stores and returns: document metadata, stored documents, writes.

use automerge::ChangeHash;

use super::chunk::{Chunk, ChunkHash};
use crate::{DocumentId, StorageId};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// The metadata row of a stored document: cheap to list without loading any chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentMeta {
    /// The document.
    pub id: DocumentId,
    /// When the document was first stored here.
    pub created_at: UnixMillis,
    /// When a change was last stored.
    pub updated_at: UnixMillis,
    /// The heads after the last stored change.
    pub heads: Vec<ChangeHash>,
    /// Bytes held in snapshot chunks.
    pub snapshot_bytes: u64,
    /// Bytes held in incremental chunks (what compaction folds into the next snapshot).
    pub incremental_bytes: u64,
    /// Number of chunks.
    pub chunk_count: u64,
}

impl DocumentMeta {
    /// Total bytes stored for the document's content.
    pub fn stored_bytes(&self) -> u64 {
        self.snapshot_bytes + self.incremental_bytes
    }
}

/// A document as stored: its metadata and its chunks, snapshots first, then incrementals in
/// the order they were written.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// The metadata row.
    pub meta: DocumentMeta,
    /// The chunks.
    pub chunks: Vec<Chunk>,
}

/// Who delivered a change to this replica: the user its connection's credentials named
/// (see [`Access::for_user`](crate::sync::Access::for_user)), recorded by a repo with
/// [`SyncConfig::with_arrivals_recorded`](crate::sync::SyncConfig::with_arrivals_recorded)
/// (a relay that checks tokens) when the change first arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The change.
    pub change: ChangeHash,
    /// The user whose connection delivered it first.
    pub user: String,
    /// When it arrived.
    pub received_at: UnixMillis,
}

/// One write to storage. A backend applies the writes of one submission atomically, and
/// applies submissions in the order [`Storage::submit`](super::Storage::submit) was called.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store a new document with its first chunk. Fails with
    /// [`StorageError::DocumentExists`](super::StorageError::DocumentExists) if it is stored
    /// already.
    CreateDocument {
        /// The new document.
        id: DocumentId,
        /// Its first chunk (usually a snapshot).
        chunk: Chunk,
        /// Its heads.
        heads: Vec<ChangeHash>,
        /// The time of creation.
        now: UnixMillis,
    },
    /// Append a chunk of new changes and record the new heads. Writing a chunk that is stored
    /// already (same hash) is a no-op for the chunk. Fails with
    /// [`StorageError::DocumentNotFound`](super::StorageError::DocumentNotFound) if the
    /// document is not stored.
    AppendChunk {
        /// The document.
        id: DocumentId,
        /// The new chunk.
        chunk: Chunk,
        /// The document's heads after these changes.
        heads: Vec<ChangeHash>,
        /// The time of the change.
        now: UnixMillis,
    },
    /// Store a snapshot and delete the chunks it replaces, in one transaction. The heads and
    /// update time are left alone: a snapshot changes how a document is stored, not what it
    /// holds.
    Compact {
        /// The document.
        id: DocumentId,
        /// The new snapshot, which must contain every change of the chunks it replaces.
        snapshot: Chunk,
        /// The chunks to delete.
        replaces: Vec<ChunkHash>,
    },
    /// Delete a document with its chunks and sync states. Fails with
    /// [`StorageError::DocumentNotFound`](super::StorageError::DocumentNotFound) if it is not
    /// stored.
    DeleteDocument {
        /// The document.
        id: DocumentId,
    },
    /// Record that `user` delivered `changes` (written with the chunk that holds them). A
    /// change recorded already keeps its first record. Fails with
    /// [`StorageError::DocumentNotFound`](super::StorageError::DocumentNotFound) if the
    /// document is not stored.
    RecordArrivals {
        /// The document.
        id: DocumentId,
        /// Who delivered them.
        user: String,
        /// The changes.
        changes: Vec<ChangeHash>,
        /// When they arrived.
        now: UnixMillis,
    },
    /// Store the sync state we keep with one peer for one document (replacing the previous).
    PutSyncState {
        /// The document.
        id: DocumentId,
        /// The peer's storage id.
        peer: StorageId,
        /// `automerge::sync::State::encode()` output.
        state: Vec<u8>,
    },
}

impl WriteOp {
    /// The document this write is about.
    pub fn document_id(&self) -> DocumentId {
        match self {
            Self::CreateDocument { id, .. }
            | Self::AppendChunk { id, .. }
            | Self::Compact { id, .. }
            | Self::DeleteDocument { id }
            | Self::RecordArrivals { id, .. }
            | Self::PutSyncState { id, .. } => *id,
        }
    }
}

/// Encodes heads as concatenated 32-byte hashes, the form kept in storage.
pub(crate) fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|head| head.0).collect()
}

/// Decodes heads stored by [`encode_heads`]; `None` if the bytes are not whole hashes.
pub(crate) fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    bytes
        .chunks_exact(32)
        .map(|hash| ChangeHash::try_from(hash).ok())
        .collect()
}
