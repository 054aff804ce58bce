//! [`StorageError`]: what a storage backend can fail with.

use std::path::PathBuf;

use crate::DocumentId;

/// An error from a storage backend.
#[derive(Debug, thiserror::Error)]
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
    /// The storage was closed; nothing more can be read or written.
    #[error("the storage is closed")]
    Closed,
    /// Creating the database folder failed.
    #[error("cannot create the folder {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Any other SQLite error.
    #[error("SQLite error: {0}")]
    Sqlite(rusqlite::Error),
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
            _ => Self::Sqlite(error),
        }
    }
}
