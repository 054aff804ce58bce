//! [`WeftError`]: the one error the bindings raise.

/// What went wrong, as one exception type per language (`WeftError` in Python and Swift,
/// `WeftException` in Kotlin) with a subtype per kind; the message says what and why.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum WeftError {
    /// No document with this id is stored here or held by a connected peer.
    #[error("{0}")]
    DocumentNotFound(String),
    /// The document was deleted.
    #[error("{0}")]
    DocumentDeleted(String),
    /// Text that is neither a document id nor an `automerge:` URL.
    #[error("{0}")]
    InvalidDocumentId(String),
    /// A path that is malformed or does not fit the document, an edit that cannot be
    /// applied there, or change hashes (heads) that are malformed or not in the document.
    #[error("{0}")]
    InvalidPath(String),
    /// A peer address that is not `ws://` or `wss://` with a host.
    #[error("{0}")]
    InvalidPeerUrl(String),
    /// Bytes that are not an automerge document.
    #[error("{0}")]
    InvalidDocument(String),
    /// The relay or peer refused this repo's token.
    #[error("{0}")]
    Unauthorized(String),
    /// A network operation of this device failed (listening on an address).
    #[error("{0}")]
    Network(String),
    /// Waiting took longer than allowed.
    #[error("{0}")]
    Timeout(String),
    /// Storage failed, or a stored document is damaged.
    #[error("{0}")]
    Storage(String),
    /// The repo, or the connection, is closed.
    #[error("{0}")]
    Closed(String),
    /// A listener implemented in the host language raised an error.
    #[error("{0}")]
    Listener(String),
    /// `undo` or `redo` cannot take the change back (it formats text); nothing changed.
    #[error("{0}")]
    CannotUndo(String),
    /// `Repo.archive` could not write its file, or the document was archived already.
    #[error("{0}")]
    Archive(String),
    /// A failure inside weft that is not the caller's doing.
    #[error("{0}")]
    Internal(String),
}

impl From<weft::Error> for WeftError {
    fn from(error: weft::Error) -> Self {
        use weft::Error as E;
        let message = error.to_string();
        match error {
            E::DocumentNotFound(_) => Self::DocumentNotFound(message),
            E::DocumentDeleted(_) => Self::DocumentDeleted(message),
            E::InvalidPath { .. } | E::Automerge(_) | E::UnknownHeads { .. } => {
                Self::InvalidPath(message)
            }
            E::InvalidPeerUrl { .. } | E::InvalidCertificates(_) => Self::InvalidPeerUrl(message),
            E::InvalidDocument(_) => Self::InvalidDocument(message),
            E::InvalidDocumentId(_) => Self::InvalidDocumentId(message),
            E::Storage(_) | E::CorruptChunk { .. } | E::CorruptDocument { .. } => {
                Self::Storage(message)
            }
            E::Closed => Self::Closed(message),
            E::CannotUndo { .. } => Self::CannotUndo(message),
            E::Archive { .. } | E::DocumentMoved { .. } => Self::Archive(message),
            _ => Self::Internal(message),
        }
    }
}

/// A host listener that raised something other than a `WeftError`.
impl From<uniffi::UnexpectedUniFFICallbackError> for WeftError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Listener(error.reason)
    }
}
