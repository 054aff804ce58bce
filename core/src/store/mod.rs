//! Storage: where documents live between runs.
//!
//! A document is stored as automerge chunks, as automerge-repo stores it: one snapshot
//! (`Automerge::save`) plus incremental chunks of later changes, each keyed by the SHA-256
//! of its bytes. Compaction folds the incrementals into a new snapshot in one transaction.
//! Beside the chunks, each document has a metadata row (created, updated, heads, sizes),
//! each (document, peer) pair may have a saved sync state, and each change may have an
//! [`Arrival`] record (who delivered it, on a relay).
//!
//! [`Storage`] is the boundary. [`SqliteStorage`] is the durable backend; [`MemoryStorage`]
//! is its in-memory twin for tests and ephemeral apps. Both pass one conformance suite.

mod chunk;
mod conformance;
mod error;
mod memory;
mod records;
mod sqlite;

use std::{future::Future, pin::Pin};

pub use chunk::{Chunk, ChunkHash, ChunkKind};
pub use error::StorageError;
pub use memory::MemoryStorage;
pub use records::{Arrival, DocumentMeta, StoredDocument, UnixMillis, WriteOp};
pub use sqlite::{SqliteOptions, SqliteStorage, StoreStats, Synchronous};

use automerge::ChangeHash;

use crate::{DocumentId, StorageId};

/// A boxed future returned by [`Storage`] methods.
pub type StorageFuture<T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send>>;

/// Called once with the outcome of a submission (see [`Storage::submit_with`]).
pub type WriteDone = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// A storage backend.
///
/// # Contract
/// - [`submit_with`](Storage::submit_with) enqueues its writes **when it is called**, and
///   submissions are applied in call order. The repo relies on this to keep a document's
///   chunks in the order its changes were made while holding the document's lock only for
///   the call, never across an `.await`.
/// - The writes of one submission are applied atomically: a failed submission leaves storage
///   as it was before it, and does not affect other submissions.
/// - The outcome is reported exactly once, once the writes are durable (for SQLite:
///   committed, with the configured `synchronous` level) or have failed, whether or not
///   anybody still waits for it; outcomes are reported in submission order.
/// - No method blocks the calling thread: blocking work runs on threads of the backend's own.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// This replica's storage id, created once and kept for the life of the storage.
    fn storage_id(&self) -> &StorageId;

    /// Enqueues writes, applied atomically and in submission order, and calls `done` with
    /// the outcome. `done` may run on any thread, possibly before this returns (an in-memory
    /// backend); it must be quick. It may submit more writes (never wait for them): the
    /// backend must not hold a lock of its own while calling it.
    fn submit_with(&self, writes: Vec<WriteOp>, done: WriteDone);

    /// Enqueues writes like [`submit_with`](Storage::submit_with); the future resolves with
    /// the outcome. The writes are enqueued even if the future is never polled.
    fn submit(&self, writes: Vec<WriteOp>) -> StorageFuture<()> {
        let (sender, outcome) = tokio::sync::oneshot::channel();
        self.submit_with(
            writes,
            Box::new(move |result| {
                // The caller may have stopped waiting; the write happened all the same.
                let _ = sender.send(result);
            }),
        );
        Box::pin(async move { outcome.await.map_err(|_| StorageError::Closed)? })
    }

    /// Loads a document's metadata and chunks; `None` if it is not stored.
    fn load(&self, id: DocumentId) -> StorageFuture<Option<StoredDocument>>;

    /// The metadata of every stored document, ordered by id.
    fn list(&self) -> StorageFuture<Vec<DocumentMeta>>;

    /// How many documents are stored.
    fn count(&self) -> StorageFuture<u64> {
        let listing = self.list();
        Box::pin(async move { Ok(listing.await?.len() as u64) })
    }

    /// The sync state saved for `(id, peer)`, if any.
    fn load_sync_state(&self, id: DocumentId, peer: StorageId) -> StorageFuture<Option<Vec<u8>>>;

    /// The arrivals recorded for those of `changes` that have one (see [`Arrival`]), in the
    /// order asked.
    fn arrivals(&self, id: DocumentId, changes: Vec<ChangeHash>) -> StorageFuture<Vec<Arrival>>;

    /// Finishes pending writes and releases the backend's resources. Later reads and writes
    /// fail with [`StorageError::Closed`]; closing again is a no-op.
    fn close(&self) -> StorageFuture<()>;
}
