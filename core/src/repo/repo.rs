//! [`Repo`]: the documents of one replica, and where they are stored.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    panic::AssertUnwindSafe,
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, transaction::Transaction};
use futures_util::FutureExt;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::{
    config::RepoConfig,
    doc_handle::DocHandle,
    document::{Decoded, Document, load_untrusted, now_millis},
    executor::Executor,
    sync_driver::{Command, FIND_DEFERRAL, Role, SyncHandle, Transport},
    timed_storage::TimedStorage,
};
use crate::{
    ChangeOptions, DocumentId, Error, PeerId, Result, StorageId,
    history::author::set_local_author,
    store::{
        Arrival, Chunk, ChunkKind, DocumentMeta, MemoryStorage, SqliteStorage, Storage,
        StorageError, WriteDone, WriteOp,
    },
    sync::{Access, ConnectionId, PeerInfo},
};

/// The documents of one replica (a device or a relay) and their storage.
///
/// `Repo` is a cheap clonable handle. Its async methods keep blocking work (SQLite, automerge
/// loading and saving, change closures) off the async runtime's worker threads; they must
/// run inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct Repo {
    pub(crate) shared: Arc<RepoShared>,
    /// Dropped with the last clone of this `Repo` (documents hold `RepoShared` but not
    /// this): stops the sync driver, which would otherwise keep the repo alive.
    _lifetime: Arc<Lifetime>,
}

#[derive(Debug)]
struct Lifetime(Weak<RepoShared>);

impl Drop for Lifetime {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade()
            && let Some(sync) = shared.sync.get()
        {
            let (done, _) = tokio::sync::oneshot::channel();
            sync.send(Command::Shutdown { done });
        }
    }
}

#[derive(Debug)]
pub(crate) struct RepoShared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: RepoConfig,
    /// Loaded documents; an entry dies with the last handle of its document.
    loaded: Mutex<HashMap<DocumentId, Weak<Document>>>,
    /// Documents deleted (or being deleted) by this repo, so a `find` that raced the delete
    /// does not bring one back.
    deleted: Mutex<HashSet<DocumentId>>,
    /// Background work (compactions), awaited by [`Repo::close`] and never aborted.
    background: TaskTracker,
    /// Threads for document work (closures, automerge loads and saves).
    pub(crate) executor: Executor,
    closed: AtomicBool,
    /// The outcome of `close` once it has finished, for later callers to wait on.
    close_finished: watch::Sender<Option<std::result::Result<(), String>>>,
    /// The sync driver, started by the first [`Repo::connect`] or [`Repo::dial`].
    pub(crate) sync: OnceLock<SyncHandle>,
    /// Held while the driver starts and while `close` marks the repo closed, so that a
    /// driver is never started after `close` looked for one to stop.
    sync_start: Mutex<()>,
    /// The peers connected now (handshake done), kept by the sync driver.
    pub(crate) peers: watch::Sender<Vec<PeerInfo>>,
    /// Held by [`Repo::archive`], so that two archives of one document cannot both find it
    /// not archived yet.
    pub(crate) archiving: tokio::sync::Mutex<()>,
    /// Documents being written as they were unloaded (the whole document, created if it
    /// was never stored): a load of one waits for that write, so that it neither misses
    /// it nor creates the document a second time.
    unload_saves: Mutex<HashMap<DocumentId, watch::Receiver<bool>>>,
}

impl RepoShared {
    fn loaded(&self) -> MutexGuard<'_, HashMap<DocumentId, Weak<Document>>> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A document is being written as it is unloaded: returns what to send `true` on once
    /// the write is done (see [`unload_save_finished`](Self::unload_save_finished)).
    pub(crate) fn unload_save_started(&self, id: DocumentId) -> watch::Sender<bool> {
        let (done, waiting) = watch::channel(false);
        self.unload_saves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, waiting);
        done
    }

    /// The write an unload started is done (stored or failed).
    pub(crate) fn unload_save_finished(&self, id: DocumentId, done: &watch::Sender<bool>) {
        let mut saves = self
            .unload_saves
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Not one a later unload of the same document started since.
        if saves
            .get(&id)
            .is_some_and(|waiting| waiting.same_channel(&done.subscribe()))
        {
            saves.remove(&id);
        }
        drop(saves);
        let _ = done.send(true);
    }

    /// Waits for a write an unload of `id` started, if any.
    pub(crate) async fn unload_save_done(&self, id: DocumentId) {
        let waiting = self
            .unload_saves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        if let Some(mut waiting) = waiting {
            // A sender dropped without sending (the write was never queued) ends it too.
            let _ = waiting.wait_for(|done| *done).await;
        }
    }

    fn deleted(&self) -> MutexGuard<'_, HashSet<DocumentId>> {
        self.deleted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs `work` in the background if a tokio runtime is running (callers are async code,
    /// so one is; without one the work is skipped, never run on the wrong thread).
    pub(crate) fn spawn_background(&self, work: impl Future<Output = ()> + Send + 'static) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.background.spawn_on(work, &runtime);
        }
    }

    /// The documents loaded now.
    pub(crate) fn open_documents(&self) -> Vec<Arc<Document>> {
        self.loaded().values().filter_map(Weak::upgrade).collect()
    }

    /// Registers a loaded document; tells the sync driver, if peers may want it.
    /// Records a loaded document. (The sync driver hears of it from its first `DocHandle`,
    /// which every caller makes right after.)
    fn register(&self, document: &Arc<Document>) {
        self.loaded().insert(document.id, Arc::downgrade(document));
    }

    /// A document this replica does not have, to be asked of peers: the one loaded if any
    /// (another `find` may be asking already), else a new, empty, unstored one.
    pub(crate) fn register_absent(self: &Arc<Self>, id: DocumentId) -> Arc<Document> {
        let mut loaded = self.loaded();
        if let Some(document) = loaded.get(&id).and_then(Weak::upgrade) {
            return document;
        }
        let document = Arc::new(Document::new(
            id,
            Decoded::absent(self.config.text_encoding),
            self.clone(),
        ));
        loaded.insert(id, Arc::downgrade(&document));
        document
    }

    /// A document a peer sent something about: loaded, stored, or absent (to be stored
    /// when its first changes arrive).
    pub(crate) async fn load_for_sync(self: &Arc<Self>, id: DocumentId) -> Result<Arc<Document>> {
        if let Some(document) = self.loaded().get(&id).and_then(Weak::upgrade) {
            return Ok(document);
        }
        self.unload_save_done(id).await;
        let Some(stored) = self.storage.load(id).await? else {
            return Ok(self.register_absent(id));
        };
        let encoding = self.config.text_encoding;
        let decoded = self
            .executor
            .run(id, move || Decoded::decode(id, &stored, encoding))
            .await??;
        let mut loaded = self.loaded();
        if let Some(document) = loaded.get(&id).and_then(Weak::upgrade) {
            return Ok(document);
        }
        let document = Arc::new(Document::new(id, decoded, self.clone()));
        loaded.insert(id, Arc::downgrade(&document));
        Ok(document)
    }

    fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
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
        Self::in_memory_with(RepoConfig::default())
    }

    /// Like [`in_memory`](Self::in_memory), with a configuration. Peers are told it keeps
    /// nothing (it is ephemeral), so they keep no sync state for it.
    pub fn in_memory_with(mut config: RepoConfig) -> Self {
        config.sync.storage_id = None;
        Self::with_storage_as(Arc::new(MemoryStorage::new()), config)
    }

    /// A repo over any [`Storage`] backend.
    ///
    /// Peers are given the storage's id (`SyncConfig::storage_id`, unless set), so that they
    /// keep sync state for this replica.
    pub fn with_storage(storage: Arc<dyn Storage>, mut config: RepoConfig) -> Self {
        if config.sync.storage_id.is_none() {
            config.sync.storage_id = Some(storage.storage_id().clone());
        }
        Self::with_storage_as(storage, config)
    }

    fn with_storage_as(storage: Arc<dyn Storage>, config: RepoConfig) -> Self {
        let storage = Arc::new(TimedStorage::new(storage, config.observer.clone()));
        let shared = Arc::new(RepoShared {
            storage,
            config,
            loaded: Mutex::new(HashMap::new()),
            deleted: Mutex::new(HashSet::new()),
            background: TaskTracker::new(),
            executor: Executor::per_core(),
            closed: AtomicBool::new(false),
            close_finished: watch::channel(None).0,
            sync: OnceLock::new(),
            sync_start: Mutex::new(()),
            peers: watch::Sender::new(Vec::new()),
            archiving: tokio::sync::Mutex::new(()),
            unload_saves: Mutex::new(HashMap::new()),
        });
        Self {
            _lifetime: Arc::new(Lifetime(Arc::downgrade(&shared))),
            shared,
        }
    }

    /// This replica's storage id, which peers use to remember their sync state with it.
    pub fn storage_id(&self) -> &StorageId {
        self.shared.storage.storage_id()
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
        self.shared.ensure_open()?;
        let id = DocumentId::random();
        let encoding = self.shared.config.text_encoding;
        let author = self.shared.config.author.clone();
        let doc = self
            .shared
            .executor
            .run(id, move || {
                let mut doc = Automerge::new_with_encoding(encoding);
                set_local_author(&mut doc, author.as_deref());
                let options = ChangeOptions::default();
                doc.transact_with(|_| options.commit_options(), init)
                    .map_err(|failure| failure.error)?;
                // Like automerge-repo's `create()`, a new document has a first change even
                // when `init` wrote nothing: peers take a document without heads for one
                // they do not have, and would answer `doc-unavailable`.
                if doc.get_heads().is_empty() {
                    doc.empty_commit(options.commit_options());
                }
                Ok::<_, Error>(doc)
            })
            .await??;
        self.store_new(id, doc).await
    }

    /// Creates a document under an id the app chose, for documents that devices must be able
    /// to start independently, offline, and merge when they meet: an id derived from a name
    /// both know, say. Their histories are unrelated, so what the first changes write must
    /// not collide: keys that are unique per device (as maps of new ids) merge, while two
    /// devices both creating `notes` as a new map would each keep only one of them.
    ///
    /// Fails with [`Error::DocumentExists`] if this repo has the document (stored, loaded,
    /// or received from a peer first): [`find`](Self::find) it instead. A document asked
    /// of peers in vain can be created. Fails with [`Error::DocumentDeleted`] if it was
    /// deleted since this repo was opened (a deleted id can be created again after that).
    /// If storing the first change fails, the error is returned and, as with
    /// [`DocHandle::change`], the change stays in the document and is written (and synced)
    /// with the next write: calling this again then finds it exists.
    pub async fn create_with_id<F>(&self, id: DocumentId, init: F) -> Result<DocHandle>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<(), AutomergeError> + Send + 'static,
    {
        self.shared.ensure_open()?;
        if self.shared.deleted().contains(&id) {
            return Err(Error::DocumentDeleted(id));
        }
        // The document as the sync driver sees it too: stored, loaded, or absent (maybe
        // being asked of peers right now). The first change goes into that one, on the
        // document's thread, which refuses it if content arrived first: no second copy.
        let document = self.shared.load_for_sync(id).await?;
        if document.is_available() {
            return Err(Error::DocumentExists(id));
        }
        let handle = DocHandle::new(document.clone());
        handle
            .first_change(init)
            .await
            .map_err(|error| match error {
                Error::Storage(StorageError::DocumentExists(id)) => Error::DocumentExists(id),
                other => other,
            })?;
        // A `find` of this id still waiting on peers hears that it is here now.
        super::sync_driver::open(&document);
        Ok(handle)
    }

    /// Imports automerge bytes (from `export`, `Automerge::save` or any automerge-repo) as a
    /// new document with a new id. Bytes that are not an automerge document are refused with
    /// [`Error::InvalidDocument`].
    pub async fn import(&self, bytes: Vec<u8>) -> Result<DocHandle> {
        self.shared.ensure_open()?;
        let encoding = self.shared.config.text_encoding;
        let id = DocumentId::random();
        let doc = self
            .shared
            .executor
            .run(id, move || load_untrusted(&bytes, encoding))
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
        let document = Arc::new(Document::new(
            id,
            Decoded::created(doc, &chunk),
            self.shared.clone(),
        ));
        self.shared.register(&document);
        Ok(DocHandle::new(document))
    }

    /// Finds a document: loaded already, stored here, or, once peers are connected, from
    /// them.
    ///
    /// Fails with [`Error::DocumentNotFound`] if it is not stored here and no connected
    /// peer has it (peers are asked, and answer or time out within the sync config's
    /// `request_timeout_ms`), and with
    /// [`Error::CorruptChunk`] or [`Error::CorruptDocument`] if its stored bytes are damaged;
    /// other documents are unaffected by either.
    pub async fn find(&self, id: DocumentId) -> Result<DocHandle> {
        self.shared.ensure_open()?;
        if let Some(document) = self.loaded(id)
            && document.is_available()
        {
            return Ok(DocHandle::new(document));
        }
        self.shared.unload_save_done(id).await;
        let Some(stored) = self.shared.storage.load(id).await? else {
            return self.find_on_peers(id).await;
        };
        let encoding = self.shared.config.text_encoding;
        let decoded = self
            .shared
            .executor
            .run(id, move || Decoded::decode(id, &stored, encoding))
            .await??;
        let loaded = self.shared.loaded();
        // Another task may have loaded it meanwhile: keep one copy.
        if let Some(document) = loaded.get(&id).and_then(Weak::upgrade) {
            return Ok(DocHandle::new(document));
        }
        // Or deleted it after we read it.
        if self.shared.deleted().contains(&id) {
            return Err(Error::DocumentNotFound(id));
        }
        let document = Arc::new(Document::new(id, decoded, self.shared.clone()));
        drop(loaded);
        self.shared.register(&document);
        Ok(DocHandle::new(document))
    }

    /// Offers a stored document to the connected peers the share policy offers documents
    /// to (a relay's replicas), without a handle: it is loaded, synced with them, and let go
    /// once they all have all of it (or once idle, if one does not answer). Resolves then,
    /// or at once if it is loaded already (it is in use, and synced as such), so that a
    /// caller offering many keeps memory bounded by how many it awaits at once.
    pub async fn offer(&self, id: DocumentId) -> Result<()> {
        self.shared.ensure_open()?;
        let Some(sync) = self.sync_driver() else {
            return Ok(()); // no peer ever connected: nobody to offer it to
        };
        let (done, finished) = tokio::sync::oneshot::channel();
        sync.send(Command::Offer { document: id, done });
        let _ = finished.await; // the sender is dropped when the offer is over
        Ok(())
    }

    /// Asks connected peers for a document this replica does not have.
    async fn find_on_peers(&self, id: DocumentId) -> Result<DocHandle> {
        let Some(sync) = self.shared.sync.get() else {
            return Err(Error::DocumentNotFound(id)); // never connected
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        sync.send(Command::Want {
            document: id,
            reply,
        });
        // The engine answers within its request timeout; this bound only guards against a
        // stopped driver.
        let patience =
            Duration::from_millis(sync.config.request_timeout_ms.saturating_mul(2)) + FIND_DEFERRAL;
        match tokio::time::timeout(patience, answer).await {
            Ok(Ok(Some(document))) => Ok(DocHandle::new(document)),
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Err(Error::DocumentNotFound(id)),
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// This repo's id on connections.
    pub fn peer_id(&self) -> &PeerId {
        &self.shared.config.sync.peer_id
    }

    /// Syncs with a peer over `transport` (see [`Transport`]): documents open here are
    /// offered to it as the share policy says, and [`find`](Self::find) asks it for
    /// documents this replica lacks. Returns once the connection is registered; the
    /// handshake and syncing go on in the background until either side closes it.
    ///
    /// Must be called inside a tokio runtime (the sync driver starts on the first call).
    /// The peer is trusted: see [`connect_with`](Self::connect_with) to limit it.
    pub async fn connect(&self, transport: Transport, role: Role) -> Result<ConnectionId> {
        self.connect_with(transport, role, Access::full()).await
    }

    /// Like [`connect`](Self::connect), for a peer that may read and write only what
    /// `access` says (from credentials it presented): other documents are unknown to it,
    /// and its changes to documents it may only read are refused.
    pub async fn connect_with(
        &self,
        transport: Transport,
        role: Role,
        access: Access,
    ) -> Result<ConnectionId> {
        let sync = self.sync_driver().ok_or(Error::Closed)?;
        let (reply, connected) = tokio::sync::oneshot::channel();
        sync.send(Command::Connect {
            transport,
            role,
            access,
            reply,
        });
        connected
            .await
            .map_err(|_| Error::Internal("the sync driver stopped".to_owned()))
    }

    /// The sync driver, started on the first call (inside a tokio runtime); `None` once the
    /// repo is closed.
    pub(crate) fn sync_driver(&self) -> Option<&SyncHandle> {
        let _starting = self
            .shared
            .sync_start
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.is_closed() {
            return None;
        }
        let mut started = false;
        let sync = self.shared.sync.get_or_init(|| {
            started = true;
            SyncHandle::start(&self.shared, self.shared.config.sync.clone())
        });
        if started {
            // Documents opened while the driver was starting (the driver's own list may
            // have missed them); opening twice is harmless.
            for document in self.shared.open_documents() {
                sync.send(Command::Opened(document));
            }
        }
        Some(sync)
    }

    fn loaded(&self, id: DocumentId) -> Option<Arc<Document>> {
        let mut loaded = self.shared.loaded();
        let document = loaded.get(&id).and_then(Weak::upgrade);
        if document.is_none() {
            loaded.remove(&id);
        }
        document
    }

    /// How many documents are loaded in memory now: those the app holds handles on, and
    /// those connected peers are syncing.
    pub fn loaded_documents(&self) -> usize {
        let mut loaded = self.shared.loaded();
        loaded.retain(|_, document| document.strong_count() > 0);
        loaded.len()
    }

    /// The metadata of every stored document (id, times, heads, sizes), without loading any.
    pub async fn list(&self) -> Result<Vec<DocumentMeta>> {
        self.shared.ensure_open()?;
        Ok(self.shared.storage.list().await?)
    }

    /// Who delivered `changes` of document `id` to this repo: the records it keeps for those
    /// that have one, in the order asked (see
    /// [`SyncConfig::with_arrivals_recorded`](crate::sync::SyncConfig::with_arrivals_recorded)).
    /// Changes made here, or delivered by connections whose credentials name no user, have
    /// none.
    pub async fn arrivals(&self, id: DocumentId, changes: Vec<ChangeHash>) -> Result<Vec<Arrival>> {
        self.shared.ensure_open()?;
        Ok(self.shared.storage.arrivals(id, changes).await?)
    }

    /// The peers connected now (their handshake done), updated as they come and go: what
    /// they claim to be and what they may do.
    pub fn peers(&self) -> watch::Receiver<Vec<PeerInfo>> {
        self.shared.peers.subscribe()
    }

    /// How many documents are stored (cheaper than [`list`](Self::list)).
    pub async fn stored_documents(&self) -> Result<u64> {
        self.shared.ensure_open()?;
        Ok(self.shared.storage.count().await?)
    }

    /// Where this repo's measurements go ([`RepoConfig::observer`]).
    pub(crate) fn observer(&self) -> &Arc<dyn crate::observe::Observer> {
        &self.shared.config.observer
    }

    /// Deletes a document from this replica's storage. Once the delete is committed, open
    /// handles see [`DocEvent::Deleted`] and their changes fail with
    /// [`Error::DocumentDeleted`]; changes made while it is being committed fail the same
    /// way. If the delete fails, the document stays as it was. The outcome is applied even
    /// if this future is dropped.
    pub async fn delete(&self, id: DocumentId) -> Result<()> {
        self.shared.ensure_open()?;
        // The tombstone first: a `find` racing this delete cannot bring the document back.
        self.shared.deleted().insert(id);
        let (sender, outcome) = tokio::sync::oneshot::channel();
        let shared = self.shared.clone();
        let document = self.loaded(id);
        let target = document.clone();
        let done: WriteDone = Box::new(move |result| {
            if let Some(document) = &target {
                document.deleted_outcome(&result);
            }
            match &result {
                Ok(()) => {
                    shared.loaded().remove(&id);
                    if let Some(sync) = shared.sync.get() {
                        sync.send(Command::Forget {
                            document: id,
                            instance: None,
                        });
                    }
                }
                // Deleted already (by a concurrent delete): the tombstone stays.
                Err(StorageError::DocumentNotFound(_)) => {}
                Err(_) => {
                    shared.deleted().remove(&id);
                }
            }
            drop(target);
            let _ = sender.send(result);
        });
        match document {
            // On the document's thread: ordered after every change queued before, and no
            // lock is taken on the async runtime.
            Some(document) => {
                let target = document.clone();
                self.shared
                    .executor
                    .run(id, move || target.submit_delete(done))
                    .await?;
            }
            None => self
                .shared
                .storage
                .submit_with(vec![WriteOp::DeleteDocument { id }], done),
        }
        match outcome.await.map_err(|_| StorageError::Closed)? {
            Ok(()) => Ok(()),
            Err(StorageError::DocumentNotFound(id)) => Err(Error::DocumentNotFound(id)),
            Err(other) => Err(other.into()),
        }
    }

    /// Closes the repo: refuses new work, writes any changes whose write failed, compacts
    /// open documents that need it, waits for background work (compactions, never aborted),
    /// then closes the storage, checkpointing SQLite's WAL. Handles still open fail with
    /// [`Error::Closed`] afterwards. Closing again (or concurrently) returns once the first
    /// close has finished, failing if it failed. The close runs to its end even if the
    /// caller stops waiting.
    pub async fn close(&self) -> Result<()> {
        let already = {
            let _starting = self
                .shared
                .sync_start
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.closed.swap(true, Ordering::AcqRel)
        };
        if already {
            // Closing already: return when that close has finished, with its outcome.
            let mut finished = self.shared.close_finished.subscribe();
            let outcome = finished
                .wait_for(Option::is_some)
                .await
                .map(|outcome| outcome.clone());
            return match outcome {
                Ok(Some(Err(error))) => Err(Error::Internal(format!("closing failed: {error}"))),
                _ => Ok(()),
            };
        }
        // A task of its own, so that a caller that stops waiting (a timeout, a cancelled
        // task) does not leave the storage half closed, and later callers still hear the end.
        let repo = self.clone();
        let closing = tokio::spawn(async move {
            let outcome = AssertUnwindSafe(repo.close_once())
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(Error::from_panic(panic.as_ref())));
            let published = outcome.as_ref().map(drop).map_err(ToString::to_string);
            repo.shared.close_finished.send_replace(Some(published));
            outcome
        });
        closing.await.map_err(Error::from_join)?
    }

    async fn close_once(&self) -> Result<()> {
        // No more remote changes: connections close, synced documents are let go.
        if let Some(sync) = self.shared.sync.get() {
            sync.shutdown().await;
        }
        let open: Vec<Arc<Document>> = self
            .shared
            .loaded()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        let policy = self.shared.config.compaction;
        for document in open {
            let (snapshot, incremental) = document.stored_sizes();
            let due = document.has_unsaved() || policy.should_compact_idle(snapshot, incremental);
            if due && let Err(error) = document.compact().await {
                tracing::warn!(document = %document.id, %error, "compaction at close failed");
            }
        }
        self.shared.background.close();
        self.shared.background.wait().await;
        // Documents unloaded meanwhile save themselves on their threads: let them finish.
        self.shared.executor.drain().await;
        Ok(self.shared.storage.close().await?)
    }
}
