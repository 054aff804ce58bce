//! [`Error`]: what the repo API fails with.

use automerge::ChangeHash;

use crate::{DocumentId, store::ChunkHash, store::StorageError};

/// An error from the [`Repo`](crate::Repo) or a [`DocHandle`](crate::DocHandle).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage failed; the operation was not stored.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No document with this id is stored here.
    #[error("document {0} not found")]
    DocumentNotFound(DocumentId),
    /// The document was deleted while this handle was open.
    #[error("document {0} was deleted")]
    DocumentDeleted(DocumentId),
    /// [`Repo::create_with_id`](crate::Repo::create_with_id) was given the id of a document
    /// this repo has.
    #[error("document {0} exists already")]
    DocumentExists(DocumentId),
    /// [`DocHandle::undo`](crate::DocHandle::undo) or `redo` cannot take the step back
    /// (it formats text, say); the step stays on its stack and nothing is changed.
    #[error("document {document}: cannot undo: {reason}")]
    CannotUndo {
        /// The document.
        document: DocumentId,
        /// Why.
        reason: String,
    },
    /// [`Repo::archive`](crate::Repo::archive) could not write the archive file (it exists,
    /// or the disk refused); the document was left as it was.
    #[error("cannot write the archive {path}: {reason}")]
    Archive {
        /// The file.
        path: String,
        /// What the file system said.
        reason: String,
    },
    /// [`Repo::archive`](crate::Repo::archive) was asked to archive a document that was
    /// archived already.
    #[error("document {document} was archived and continues as {to}")]
    DocumentMoved {
        /// The document.
        document: DocumentId,
        /// Where it continues.
        to: crate::AutomergeUrl,
    },
    /// A stored chunk no longer matches its content hash: the bytes were damaged on disk.
    /// Other documents are unaffected.
    #[error("document {document} is damaged: chunk {chunk} does not match its hash")]
    CorruptChunk {
        /// The damaged document.
        document: DocumentId,
        /// The chunk whose bytes changed.
        chunk: ChunkHash,
    },
    /// A stored document's bytes are intact but automerge cannot load them.
    #[error("document {document} cannot be loaded: {reason}")]
    CorruptDocument {
        /// The document.
        document: DocumentId,
        /// What automerge reported.
        reason: String,
    },
    /// Bytes given to [`Repo::import`](crate::Repo::import) are not an automerge document.
    #[error("not an automerge document: {0}")]
    InvalidDocument(String),
    /// Heads asked for are not in the document's history.
    #[error("document {document} has no change {}", .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    UnknownHeads {
        /// The document.
        document: DocumentId,
        /// The heads it does not have.
        missing: Vec<ChangeHash>,
    },
    /// automerge refused an operation: the change closure returned this error (and nothing
    /// was changed), or a read asked for something the document does not have.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A path into a document (see [`access::Path`](crate::access::Path)) is malformed, or
    /// does not fit the document (goes through a value, past a list's end, into nothing).
    #[error("path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A closure given to the repo panicked; nothing it did was kept.
    #[error("a closure panicked: {0}")]
    Panicked(String),
    /// The repo was closed; nothing more can be done with it.
    #[error("the repo is closed")]
    Closed,
    /// Text that is neither a document id nor an `automerge:` URL naming one.
    #[error("{0}")]
    InvalidDocumentId(String),
    /// A peer's address is not one weft can dial.
    #[error("{url:?} is not a peer address: {reason}")]
    InvalidPeerUrl {
        /// The address, without its query (which may hold a token).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Certificates for TLS could not be read (not PEM, or not a certificate).
    #[error("TLS certificates: {0}")]
    InvalidCertificates(String),
    /// A failure inside weft that is not the caller's doing (a thread could not start, an
    /// automerge invariant did not hold). The message says which.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A `Result` with weft's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message of a panic caught on a blocking thread.
    pub(crate) fn from_join(error: tokio::task::JoinError) -> Self {
        if error.is_panic() {
            Self::from_panic(error.into_panic().as_ref())
        } else {
            Self::Internal("the task was cancelled".to_owned())
        }
    }

    /// An error carrying a caught panic's message.
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Self::Panicked(message)
    }
}
