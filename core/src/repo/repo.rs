//! [`Repo`]: the documents of one replica, and where they are stored.

use std::{
    collections::HashMap,
    future::Future,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
};

use automerge::{ActorId, Automerge, AutomergeError, transaction::Transaction};
use tokio::task::JoinSet;

use super::{
    config::RepoConfig,
    doc_event::DocEvent,
    doc_handle::DocHandle,
    document::{DocState, Document, load_untrusted, now_millis},
    executor::Executor,
};
use crate::{
    DocumentId, Error, Result, StorageId,
    store::{
        Chunk, ChunkKind, DocumentMeta, MemoryStorage, SqliteStorage, Storage, StorageError,
        WriteOp,
    },
};

/// The documents of one replica (a device or a relay) and their storage.
///
/// `Repo` is a cheap clonable handle. Every method is async and keeps blocking work (SQLite,
/// automerge loading and saving, change closures) off the async runtime's worker threads, so
/// it must be used inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct Repo {
    shared: Arc<RepoShared>,
}

#[derive(Debug)]
pub(crate) struct RepoShared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: RepoConfig,
    /// Loaded documents; an entry dies with the last handle of its document.
    loaded: Mutex<HashMap<DocumentId, Weak<Document>>>,
    /// Background work (compactions) awaited by [`Repo::close`].
    background: Mutex<JoinSet<()>>,
    /// Threads for document work (closures, automerge loads and saves).
    pub(crate) executor: Executor,
}

impl RepoShared {
    fn loaded(&self) -> MutexGuard<'_, HashMap<DocumentId, Weak<Document>>> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Like [`spawn_background`](Self::spawn_background) from code that may run outside a
    /// tokio runtime (a `Drop`); `false` if there is no runtime to run it on.
    pub(crate) fn spawn_background_if_running(
        &self,
        work: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        if tokio::runtime::Handle::try_current().is_err() {
            return false;
        }
        self.spawn_background(work);
        true
    }

    pub(crate) fn spawn_background(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut background = self
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Reap finished tasks so the set does not grow.
        while background.try_join_next().is_some() {}
        background.spawn(work);
    }
}

impl Repo {
    /// Opens the repo stored in the SQLite database at `path`, creating the file (and its
    /// folder) or migrating an older schema as needed. Commits are fully durable
    /// ([`Synchronous::Full`](crate::store::Synchronous::Full)).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, RepoConfig::default()).await
    }

    /// Like [`open`](Self::open), with a configuration.
    pub async fn open_with(path: impl AsRef<Path>, config: RepoConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let options = config.sqlite;
        let storage = tokio::task::spawn_blocking(move || SqliteStorage::open(path, options))
            .await
            .map_err(Error::from_join)??;
        Ok(Self::with_storage(Arc::new(storage), config))
    }

    /// A repo that keeps its documents in memory only: for tests and ephemeral apps.
    pub fn in_memory() -> Self {
        Self::with_storage(Arc::new(MemoryStorage::new()), RepoConfig::default())
    }

    /// A repo over any [`Storage`] backend.
    pub fn with_storage(storage: Arc<dyn Storage>, config: RepoConfig) -> Self {
        Self {
            shared: Arc::new(RepoShared {
                storage,
                config,
                loaded: Mutex::new(HashMap::new()),
                background: Mutex::new(JoinSet::new()),
                executor: Executor::per_core(),
            }),
        }
    }

    /// This replica's storage id, which peers use to remember their sync state with it.
    pub fn storage_id(&self) -> &StorageId {
        self.shared.storage.storage_id()
    }

    /// The storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.shared.storage
    }

    /// Creates an empty document, stored before this returns.
    pub async fn create(&self) -> Result<DocHandle> {
        self.create_with(|_| Ok(())).await
    }

    /// Creates a document whose first change is made by `init`, stored before this returns.
    pub async fn create_with<F>(&self, init: F) -> Result<DocHandle>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<(), AutomergeError> + Send + 'static,
    {
        let id = DocumentId::random();
        let doc = self
            .shared
            .executor
            .run(id, move || {
                let mut doc = Automerge::new().with_actor(ActorId::random());
                doc.transact(init).map_err(|failure| failure.error)?;
                Ok::<_, Error>(doc)
            })
            .await??;
        self.store_new(id, doc).await
    }

    /// Imports automerge bytes (from `export`, `Automerge::save` or any automerge-repo) as a
    /// new document with a new id. Bytes that are not an automerge document are refused with
    /// [`Error::InvalidDocument`].
    pub async fn import(&self, bytes: Vec<u8>) -> Result<DocHandle> {
        let id = DocumentId::random();
        let doc = self
            .shared
            .executor
            .run(id, move || load_untrusted(&bytes))
            .await?
            .map_err(Error::InvalidDocument)?;
        self.store_new(id, doc.with_actor(ActorId::random())).await
    }

    async fn store_new(&self, id: DocumentId, doc: Automerge) -> Result<DocHandle> {
        let (doc, chunk) = self
            .shared
            .executor
            .run(id, move || {
                let chunk = Chunk::new(ChunkKind::Snapshot, doc.save());
                (doc, chunk)
            })
            .await?;
        let write = WriteOp::CreateDocument {
            id,
            chunk: chunk.clone(),
            heads: doc.get_heads(),
            now: now_millis(),
        };
        self.shared.storage.submit(vec![write]).await?;
        let state = DocState::created(doc, &chunk);
        let document = Arc::new(Document::new(id, state, self.shared.clone()));
        self.shared.loaded().insert(id, Arc::downgrade(&document));
        Ok(DocHandle::new(document))
    }

    /// Finds a stored document, loading it if no handle is open.
    ///
    /// Fails with [`Error::DocumentNotFound`] if it is not stored here, and with
    /// [`Error::CorruptChunk`] or [`Error::CorruptDocument`] if its stored bytes are damaged;
    /// other documents are unaffected by either.
    pub async fn find(&self, id: DocumentId) -> Result<DocHandle> {
        if let Some(document) = self.loaded(id) {
            return Ok(DocHandle::new(document));
        }
        let stored = self
            .shared
            .storage
            .load(id)
            .await?
            .ok_or(Error::DocumentNotFound(id))?;
        let state = self
            .shared
            .executor
            .run(id, move || DocState::decode(id, &stored))
            .await??;
        let mut loaded = self.shared.loaded();
        // Another task may have loaded it meanwhile: keep one copy.
        if let Some(document) = loaded.get(&id).and_then(Weak::upgrade) {
            return Ok(DocHandle::new(document));
        }
        let document = Arc::new(Document::new(id, state, self.shared.clone()));
        loaded.insert(id, Arc::downgrade(&document));
        Ok(DocHandle::new(document))
    }

    fn loaded(&self, id: DocumentId) -> Option<Arc<Document>> {
        let mut loaded = self.shared.loaded();
        let document = loaded.get(&id).and_then(Weak::upgrade);
        if document.is_none() {
            loaded.remove(&id);
        }
        document
    }

    /// The metadata of every stored document (id, times, heads, sizes), without loading any.
    pub async fn list(&self) -> Result<Vec<DocumentMeta>> {
        Ok(self.shared.storage.list().await?)
    }

    /// Deletes a document from this replica's storage. Open handles see
    /// [`DocEvent::Deleted`] and their changes fail with [`Error::DocumentDeleted`].
    pub async fn delete(&self, id: DocumentId) -> Result<()> {
        let write = vec![WriteOp::DeleteDocument { id }];
        let pending = match self.loaded(id) {
            Some(document) => {
                let mut state = document.write();
                state.deleted = true;
                // Submitted under the lock: every change made before is written first.
                let pending = self.shared.storage.submit(write);
                drop(state);
                document.emit(DocEvent::Deleted);
                pending
            }
            None => self.shared.storage.submit(write),
        };
        self.shared.loaded().remove(&id);
        pending.await.map_err(|error| match error {
            StorageError::DocumentNotFound(id) => Error::DocumentNotFound(id),
            other => other.into(),
        })
    }

    /// Compacts open documents that need it, waits for background work (compactions), then
    /// closes the storage, checkpointing SQLite's WAL. Handles still open fail with a storage error afterwards.
    pub async fn close(&self) -> Result<()> {
        // Documents still open are compacted as if unloaded.
        let open: Vec<Arc<Document>> = self
            .shared
            .loaded()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for document in open {
            if document.claim_compaction(true) {
                self.shared.spawn_background(async move {
                    let _ = document.compact().await;
                });
            }
        }
        let mut background = std::mem::take(
            &mut *self
                .shared
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        while background.join_next().await.is_some() {}
        Ok(self.shared.storage.close().await?)
    }
}
