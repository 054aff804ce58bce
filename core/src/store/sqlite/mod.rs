//! [`SqliteStorage`]: documents in a SQLite database (WAL), written by one thread with group
//! commit and read on tokio's blocking pool.

mod queries;
pub(crate) mod schema;
mod writer;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use automerge::ChangeHash;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use self::writer::{Done, Submission, Writer, WriterCounters, WriterMessage};
use super::{
    Arrival, DocumentMeta, Storage, StorageError, StorageFuture, StoredDocument, WriteDone, WriteOp,
};
use crate::{DocumentId, StorageId};

/// How hard SQLite works to make a commit survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit is fsynced before it is acknowledged: a change that `change()` reported
    /// as saved survives a crash of the process **and** of the machine (power loss, kernel
    /// panic). The default.
    #[default]
    Full,
    /// Commits are fsynced only at WAL checkpoints. A crash of the process loses nothing
    /// acknowledged, but a power loss or OS crash may roll back the last acknowledged
    /// changes. Faster; opt in only where that trade is acceptable.
    Normal,
}

/// Options for opening a [`SqliteStorage`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Durability of commits. Default: [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// Most submissions grouped into one transaction. Default: 1024.
    pub max_batch: usize,
    /// How long a connection waits for a lock held by another process. Default: 5 s.
    pub busy_timeout: Duration,
    /// Group commit delay: when the previous transaction held several submissions (so
    /// writers are active concurrently), wait up to this long for one more before
    /// committing. Raises changes per fsync under concurrency; a lone writer never waits.
    /// Default: 250 µs.
    pub commit_delay: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_batch: 1024,
            busy_timeout: Duration::from_secs(5),
            commit_delay: Duration::from_micros(250),
        }
    }
}

/// Counters of the writer thread, to see group commit at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed (each one WAL fsync with [`Synchronous::Full`]).
    pub transactions: u64,
    /// Submissions written.
    pub submissions: u64,
    /// Time the writer spent applying and committing transactions.
    pub commit_time: Duration,
}

/// Documents in a SQLite database.
///
/// One writer thread owns the write connection and commits whatever submissions are waiting
/// together in one transaction. Reads run on tokio's blocking pool over a small pool of
/// read-only connections, which WAL lets proceed while the writer commits.
#[derive(Debug)]
pub struct SqliteStorage {
    path: PathBuf,
    storage_id: StorageId,
    writer: Mutex<Option<mpsc::Sender<WriterMessage>>>,
    readers: Arc<ReaderPool>,
    counters: Arc<WriterCounters>,
    closed: AtomicBool,
}

#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

/// The most idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;

impl ReaderPool {
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path, self.busy_timeout)?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StorageError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// Why opening the write connection failed, before the path is attached.
enum OpenError {
    Sqlite(rusqlite::Error),
    Foreign,
    Storage(StorageError),
}

impl From<rusqlite::Error> for OpenError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

impl From<StorageError> for OpenError {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

/// Opens the write connection. Everything that could refuse the file (not SQLite, another
/// application's database, a newer schema) is checked before anything is written to it.
fn open_writer(path: &Path, options: &SqliteOptions) -> Result<(Connection, StorageId), OpenError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(options.busy_timeout)?;
    // The first statement that reads the file: a file that is not SQLite fails here.
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    schema::check_version(version)?;
    if version == 0 {
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )?;
        if tables > 0 {
            return Err(OpenError::Foreign);
        }
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite refused WAL mode");
    }
    let synchronous = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    schema::migrate(&mut conn)?;
    let storage_id = queries::storage_id(&conn)?;
    Ok((conn, storage_id))
}

impl SqliteStorage {
    /// Opens (creating or migrating) the database at `path`. Blocking: call it from a
    /// blocking context, as [`Repo::open`](crate::Repo::open) does.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| StorageError::CreateDir {
                path: parent.to_path_buf(),
                detail: error.to_string(),
            })?;
        }
        let (conn, storage_id) = open_writer(&path, &options).map_err(|error| {
            let error = match error {
                OpenError::Sqlite(inner)
                    if inner.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) =>
                {
                    StorageError::NotADatabase { path: path.clone() }
                }
                OpenError::Sqlite(inner) => StorageError::from(inner),
                OpenError::Foreign => StorageError::ForeignDatabase { path: path.clone() },
                OpenError::Storage(error) => error,
            };
            match error {
                StorageError::Corrupt { detail } => StorageError::Corrupt {
                    detail: format!(
                        "{}: {detail} (SQLite cannot read it; restore it from a backup or a peer)",
                        path.display()
                    ),
                },
                other => other,
            }
        })?;

        let counters = Arc::new(WriterCounters::default());
        let (sender, queue) = mpsc::channel();
        let writer = Writer {
            conn,
            queue,
            max_batch: options.max_batch.max(1),
            commit_delay: options.commit_delay,
            counters: counters.clone(),
        };
        std::thread::Builder::new()
            .name("weft-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|error| StorageError::Thread(error.to_string()))?;

        Ok(Self {
            readers: Arc::new(ReaderPool {
                path: path.clone(),
                busy_timeout: options.busy_timeout,
                idle: Mutex::new(Vec::new()),
            }),
            path,
            storage_id,
            writer: Mutex::new(Some(sender)),
            counters,
            closed: AtomicBool::new(false),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Transactions and submissions written so far.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            submissions: self.counters.submissions.load(Ordering::Relaxed),
            commit_time: Duration::from_nanos(self.counters.commit_nanos.load(Ordering::Relaxed)),
        }
    }

    fn send(&self, message: WriterMessage) -> Result<(), StorageError> {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = writer.as_ref().ok_or(StorageError::Closed)?;
        sender.send(message).map_err(|_| StorageError::Closed)
    }

    fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> StorageFuture<T> {
        if self.closed.load(Ordering::Acquire) {
            return Box::pin(std::future::ready(Err(StorageError::Closed)));
        }
        let readers = self.readers.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || readers.with(read))
                .await
                .map_err(|error| StorageError::Thread(error.to_string()))?
        })
    }
}

impl Storage for SqliteStorage {
    fn storage_id(&self) -> &StorageId {
        &self.storage_id
    }

    fn submit_with(&self, writes: Vec<WriteOp>, done: WriteDone) {
        let submission = Submission {
            writes,
            done: Done::new(done),
        };
        // If the writer is gone the submission is dropped, which reports `Closed`.
        let _ = self.send(WriterMessage::Write(submission));
    }

    fn load(&self, id: DocumentId) -> StorageFuture<Option<StoredDocument>> {
        self.read(move |conn| queries::load(conn, id))
    }

    fn list(&self) -> StorageFuture<Vec<DocumentMeta>> {
        self.read(queries::list)
    }

    fn count(&self) -> StorageFuture<u64> {
        self.read(queries::count)
    }

    fn load_sync_state(&self, id: DocumentId, peer: StorageId) -> StorageFuture<Option<Vec<u8>>> {
        self.read(move |conn| queries::load_sync_state(conn, id, &peer))
    }

    fn arrivals(&self, id: DocumentId, changes: Vec<ChangeHash>) -> StorageFuture<Vec<Arrival>> {
        self.read(move |conn| queries::arrivals(conn, id, &changes))
    }

    fn close(&self) -> StorageFuture<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Box::pin(std::future::ready(Ok(())));
        }
        let (reply, closed) = oneshot::channel();
        let sent = self.send(WriterMessage::Close(reply));
        // Later writes fail fast instead of queueing behind a stopped thread.
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.readers
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Box::pin(async move {
            sent?;
            closed.await.map_err(|_| StorageError::Closed)?
        })
    }
}

#[cfg(test)]
mod tests {
    crate::storage_conformance_tests!(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("weft.db");
        let store = crate::store::SqliteStorage::open(path, Default::default()).expect("open");
        (store, dir)
    });
}
