//! [`StorageError`]: what a storage backend can fail with.

use std::path::PathBuf;

use crate::DocumentId;

/// An error from a storage backend.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file exists but is not a SQLite database (or is encrypted).
    #[error("{path} is not a weft database (not SQLite, or encrypted)")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// SQLite found the database damaged (for example truncated or overwritten).
    #[error("the database is corrupt: {detail}")]
    Corrupt {
        /// What SQLite reported.
        detail: String,
    },
    /// The database was written by a newer weft whose schema this version does not know.
    #[error("the database schema is version {found}, newer than this weft supports ({supported})")]
    SchemaTooNew {
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The disk is full: the write was not stored.
    #[error("the disk is full: {detail}")]
    DiskFull {
        /// What SQLite reported.
        detail: String,
    },
    /// A write named a document that is not stored.
    #[error("document {0} is not stored")]
    DocumentNotFound(DocumentId),
    /// A create named a document that is stored already.
    #[error("document {0} is stored already")]
    DocumentExists(DocumentId),
    /// The write was stored, but an earlier write of the same document failed, and these
    /// changes depend on it: they are not acknowledged until it is stored, which the
    /// document's next change (or compaction, or unload) retries.
    #[error("an earlier change of this document failed to be stored; this one waits for it")]
    EarlierWriteFailed,
    /// The storage was closed; nothing more can be read or written.
    #[error("the storage is closed")]
    Closed,
    /// Creating the database folder failed.
    #[error("cannot create the folder {path}: {detail}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error's message.
        detail: String,
    },
    /// A database that is not weft's: it has tables, but not weft's, so weft leaves it alone.
    #[error("{path} is a SQLite database of another application, not weft's")]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
    },
    /// Any other SQLite error, with SQLite's message.
    #[error("SQLite error: {0}")]
    Sqlite(String),
    /// A background thread of the storage panicked or could not be started.
    #[error("storage thread failed: {0}")]
    Thread(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) => Self::Corrupt {
                detail: error.to_string(),
            },
            Some(ErrorCode::DiskFull) => Self::DiskFull {
                detail: error.to_string(),
            },
            _ => Self::Sqlite(error.to_string()),
        }
    }
}
