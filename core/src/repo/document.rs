//! [`Document`]: one loaded document — its automerge state, what is stored of it, and the
//! rules that keep the two in step (ordered writes, retries, compaction).
//!
//! Two locks, never held together by the same code except where noted:
//! - `state` (`RwLock`): the automerge document. Changes take it for writing on the
//!   document's executor thread; reads take it for reading.
//! - `book` (`Mutex`): which chunks are stored, in flight or waiting for a retry, and their
//!   sizes. Held only for a few instructions, so any thread may take it, including the
//!   storage writer thread when it reports an outcome. `apply_local` takes it inside `state`.

use std::{
    collections::HashSet,
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use automerge::{
    ActorId, Automerge, ChangeHash, LoadOptions, OnPartialLoad, PatchLog, ReadDoc, TextEncoding,
    VerificationMode, transaction::Transaction,
};
use tokio::sync::{broadcast, oneshot};

use super::{
    doc_event::{ChangeOrigin, DocChange, DocEvent},
    doc_handle::Committed,
    repo::RepoShared,
    sync_driver::{Command, SyncOutcome},
};
use crate::{
    DocumentId, Error, Result, StorageId,
    history::{
        ChangeOptions,
        author::set_local_author,
        undo_stack::{UndoDepths, UndoStacks},
    },
    store::{Chunk, ChunkHash, ChunkKind, StorageError, StoredDocument, WriteDone, WriteOp},
    sync::{
        Arrivals, Effect, Millis, Notification, StorageTask,
        doc_sync::{Context, DocSync},
    },
};

/// Sync work on one document taking longer than this is logged (at debug level).
const SLOW_SYNC_WORK: Duration = Duration::from_millis(50);

/// A loaded document, shared by all its handles.
pub(crate) struct Document {
    pub(crate) id: DocumentId,
    state: RwLock<DocState>,
    book: Mutex<StorageBook>,
    /// The heads after the last applied change, readable without the document lock.
    heads: Mutex<Vec<ChangeHash>>,
    /// Serialises compactions of this document.
    compaction: tokio::sync::Mutex<()>,
    /// A background compaction is queued or running.
    compaction_queued: AtomicBool,
    /// Deleted, or being deleted: changes are refused. Set under the state's write lock (so
    /// it orders with changes); cleared again without it if the delete fails.
    pub(crate) deleted: AtomicBool,
    /// The app's handles on it (`DocHandle`s alive): while there are none and no peer
    /// syncs it, the sync driver lets it go, so a relay holds only what is in use.
    handles: AtomicUsize,
    /// Sync work queued and not yet run: the driver lets a document go only when none is
    /// left (a peer's message may be right behind the work that found it unused).
    pending_work: AtomicUsize,
    /// Sync works finished so far: an outcome is the latest only if none finished after it.
    finished_work: AtomicU64,
    pub(crate) events: broadcast::Sender<DocEvent>,
    pub(crate) repo: Arc<RepoShared>,
    /// This replica's undo and redo stacks (taken inside the state's write lock, never the
    /// other way round).
    undo: Mutex<UndoStacks>,
    /// The undo stacks' depths, read without their lock.
    pub(crate) undo_depths: Arc<UndoDepths>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct DocState {
    pub(crate) doc: Automerge,
    /// The sync protocol's state for this document (idle until peers connect).
    pub(crate) sync: DocSync,
}

/// What is stored of the document, as far as this process knows.
#[derive(Debug, Default)]
struct StorageBook {
    /// Chunks whose write succeeded.
    stored: Vec<(ChunkHash, ChunkKind, u64)>,
    /// Chunks submitted whose outcome is not known yet.
    pending: Vec<Chunk>,
    /// Chunks whose write failed: submitted again with the next change, covered by the next
    /// compaction, flushed when the document is unloaded.
    unsaved: Vec<Chunk>,
    /// Storage said the document is gone: stop writing.
    gone: bool,
    /// The document has a row in storage. False for a document asked of peers (or offered
    /// by one) until its first write.
    in_storage: bool,
}

impl StorageBook {
    fn sizes(&self) -> (u64, u64) {
        let (mut snapshot, mut incremental) = (0, 0);
        let all = self
            .stored
            .iter()
            .map(|(_, kind, len)| (*kind, *len))
            .chain(
                self.pending
                    .iter()
                    .chain(&self.unsaved)
                    .map(|chunk| (chunk.kind(), chunk.len() as u64)),
            );
        for (kind, len) in all {
            match kind {
                ChunkKind::Snapshot => snapshot += len,
                ChunkKind::Incremental => incremental += len,
            }
        }
        (snapshot, incremental)
    }

    /// Whether nothing of the document is in storage or on its way there: its next write
    /// creates it (and must hold the whole document).
    fn is_new(&self) -> bool {
        !self.in_storage && self.pending.is_empty() && self.stored.is_empty()
    }

    /// Records a submission's outcome and returns what its caller is told. A submission
    /// stored while an earlier one of the document has failed is not acknowledged: its
    /// changes depend on the failed ones, which only a retry will store.
    fn settle(&mut self, chunks: &[ChunkHash], result: WriteResult) -> WriteResult {
        let earlier_failed = !self.unsaved.is_empty();
        for hash in chunks {
            let Some(index) = self.pending.iter().position(|c| c.hash() == *hash) else {
                continue; // covered by a compaction meanwhile
            };
            let chunk = self.pending.swap_remove(index);
            match result {
                Ok(()) => {
                    self.in_storage = true;
                    self.stored
                        .push((chunk.hash(), chunk.kind(), chunk.len() as u64));
                }
                Err(StorageError::DocumentNotFound(_)) => self.gone = true,
                Err(_) => self.unsaved.push(chunk),
            }
        }
        match result {
            Ok(()) if earlier_failed => Err(StorageError::EarlierWriteFailed),
            other => other,
        }
    }

    /// Records a compaction's outcome.
    fn compacted(&mut self, snapshot: &Chunk, replaces: &[ChunkHash], result: &WriteResult) {
        match result {
            Ok(()) => {
                // Outcomes arrive in submission order: every replaced chunk has settled.
                let replaced: HashSet<ChunkHash> = replaces.iter().copied().collect();
                self.stored.retain(|(hash, _, _)| !replaced.contains(hash));
                self.unsaved
                    .retain(|chunk| !replaced.contains(&chunk.hash()));
                self.stored
                    .push((snapshot.hash(), ChunkKind::Snapshot, snapshot.len() as u64));
                self.in_storage = true;
            }
            // Deleted, if it was stored; else simply not stored yet (its changes wait in
            // `unsaved` for the next write, which creates it).
            Err(StorageError::DocumentNotFound(_)) if self.in_storage => self.gone = true,
            Err(_) => {}
        }
    }
}

type WriteResult = std::result::Result<(), StorageError>;

/// The write that stores `snapshot` (the whole document, at `heads`) in place of the chunks
/// `replaces`: a compaction, or the document's creation if it was never stored (`creating`:
/// a compaction of a document storage does not have would fail as if it were deleted).
fn snapshot_write(
    creating: bool,
    id: DocumentId,
    snapshot: Chunk,
    replaces: Vec<ChunkHash>,
    heads: Vec<ChangeHash>,
) -> WriteOp {
    if creating {
        WriteOp::CreateDocument {
            id,
            chunk: snapshot,
            heads,
            now: now_millis(),
        }
    } else {
        WriteOp::Compact {
            id,
            snapshot,
            replaces,
        }
    }
}

/// Where the outcome of a local change goes: resolved once its write is reported.
pub(crate) type ChangeReply<R> = oneshot::Sender<Result<Committed<R>>>;

/// Sends `outcome` to the caller if it is still waiting.
fn reply<R>(reply: &mut Option<ChangeReply<R>>, outcome: Result<Committed<R>>) {
    if let Some(reply) = reply.take() {
        let _ = reply.send(outcome);
    }
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Loads automerge bytes that may be hostile: an error or a panic inside automerge becomes
/// an `Err` with automerge's message.
pub(crate) fn load_untrusted(
    bytes: &[u8],
    text_encoding: TextEncoding,
) -> std::result::Result<Automerge, String> {
    let options = LoadOptions::new()
        .text_encoding(text_encoding)
        .on_partial_load(OnPartialLoad::Error)
        .verification_mode(VerificationMode::Check);
    match catch_unwind(AssertUnwindSafe(|| {
        Automerge::load_with_options(bytes, options)
    })) {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("automerge panicked while loading these bytes".to_owned()),
    }
}

/// Counts one queued sync work as done when dropped.
struct WorkDone<'a>(&'a AtomicUsize);

impl Drop for WorkDone<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A document rebuilt from storage, ready to become a [`Document`].
pub(crate) struct Decoded {
    doc: Automerge,
    stored: Vec<(ChunkHash, ChunkKind, u64)>,
    in_storage: bool,
}

impl Decoded {
    /// Rebuilds a document from storage. Blocking: CPU-bound automerge work.
    pub(crate) fn decode(
        id: DocumentId,
        stored: &StoredDocument,
        text_encoding: TextEncoding,
    ) -> Result<Self> {
        let mut bytes = Vec::with_capacity(stored.chunks.iter().map(Chunk::len).sum::<usize>());
        for chunk in &stored.chunks {
            if !chunk.verify() {
                return Err(Error::CorruptChunk {
                    document: id,
                    chunk: chunk.hash(),
                });
            }
            bytes.extend_from_slice(chunk.bytes());
        }
        let corrupt = |reason: String| Error::CorruptDocument {
            document: id,
            reason,
        };
        let doc = load_untrusted(&bytes, text_encoding).map_err(corrupt)?;
        // Changes stored after an earlier change of theirs failed to be written are kept but
        // cannot be applied until that one is stored (automerge queues them). They were never
        // acknowledged (see `StorageBook::settle`), so the document loads without them.
        let missing = doc.get_missing_deps(&[]);
        if !missing.is_empty() {
            tracing::warn!(
                document = %id,
                missing = missing.len(),
                "stored changes wait for changes that were never stored; they are not applied"
            );
        }
        Ok(Self {
            doc: doc.with_actor(ActorId::random()),
            in_storage: true,
            stored: stored
                .chunks
                .iter()
                .map(|c| (c.hash(), c.kind(), c.len() as u64))
                .collect(),
        })
    }

    /// A document that was just created with `first` as its stored chunk.
    pub(crate) fn created(doc: Automerge, first: &Chunk) -> Self {
        Self {
            doc,
            stored: vec![(first.hash(), first.kind(), first.len() as u64)],
            in_storage: true,
        }
    }

    /// A document this replica does not have (yet): asked of peers, or offered by one. It
    /// is written to storage when its first changes arrive.
    pub(crate) fn absent(text_encoding: TextEncoding) -> Self {
        Self {
            doc: Automerge::new_with_encoding(text_encoding).with_actor(ActorId::random()),
            stored: Vec::new(),
            in_storage: false,
        }
    }
}

/// Which local change [`Document::apply_local`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A change to a document the replica has.
    Next,
    /// The first change of a document it does not have (see `Repo::create_with_id`).
    First,
}

impl Document {
    pub(crate) fn new(id: DocumentId, decoded: Decoded, repo: Arc<RepoShared>) -> Self {
        let (events, _) = broadcast::channel(repo.config.event_capacity.max(1));
        let heads = decoded.doc.get_heads();
        let stacks = UndoStacks::default();
        Self {
            id,
            state: RwLock::new(DocState {
                doc: decoded.doc,
                sync: DocSync::new(id, decoded.in_storage),
            }),
            book: Mutex::new(StorageBook {
                stored: decoded.stored,
                in_storage: decoded.in_storage,
                ..StorageBook::default()
            }),
            heads: Mutex::new(heads),
            compaction: tokio::sync::Mutex::new(()),
            compaction_queued: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
            pending_work: AtomicUsize::new(0),
            finished_work: AtomicU64::new(0),
            events,
            repo,
            undo_depths: stacks.depths(),
            undo: Mutex::new(stacks),
        }
    }

    /// The undo and redo stacks.
    pub(crate) fn undo_stacks(&self) -> MutexGuard<'_, UndoStacks> {
        self.undo.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A `DocHandle` on it was made. The first one makes sure the sync driver holds the
    /// document (it may have let it go while it was unused, and a `find` found it again in
    /// memory).
    pub(crate) fn handle_made(self: &Arc<Self>) {
        if self.handles.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(sync) = self.repo.sync.get()
        {
            sync.send(Command::Opened(self.clone()));
        }
    }

    /// The app's handles on it now.
    pub(crate) fn handles(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }

    /// A `DocHandle` on it was dropped; the last one lets the driver reconsider keeping it.
    pub(crate) fn handle_dropped(self: &Arc<Self>) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 && !self.repo.is_closed() {
            self.sync_later(|_, _, _, _| SyncOutcome::default());
        }
    }

    // A panic inside a change closure rolls its transaction back (automerge's `Transaction`
    // does so on drop), so the state is consistent even when the lock was poisoned.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, DocState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, DocState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn book(&self) -> MutexGuard<'_, StorageBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The heads after the last applied change.
    pub(crate) fn heads(&self) -> Vec<ChangeHash> {
        self.heads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a local change in memory and submits its chunk to storage while still holding
    /// the lock, so that chunks reach storage in the order their changes were made. The
    /// outcome goes to `caller` when storage reports it (one hand-off, from the storage
    /// thread to the caller); errors before that go at once. The write's outcome is recorded
    /// whether or not the caller still waits. Blocking: runs the caller's closure and
    /// automerge work.
    ///
    /// With [`Change::First`], the first change of a document this replica does not have:
    /// refused with [`Error::DocumentExists`] if it has content or is stored by the time
    /// this runs on the document's thread (a peer's changes may have arrived first), made
    /// even if it writes nothing (peers take a document without heads for one they do not
    /// have), and stored as the document.
    pub(crate) fn apply_local<R, E, F>(
        self: &Arc<Self>,
        change: F,
        caller: &mut Option<ChangeReply<R>>,
        kind: Change,
        options: &ChangeOptions,
    ) where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<R, E>,
        E: Into<Error>,
        R: Send + 'static,
    {
        let mut state = self.write();
        if self.deleted.load(Ordering::Acquire) || self.book().gone {
            return reply(caller, Err(Error::DocumentDeleted(self.id)));
        }
        if kind == Change::First && (self.book().in_storage || !state.doc.get_heads().is_empty()) {
            return reply(caller, Err(Error::DocumentExists(self.id)));
        }
        set_local_author(&mut state.doc, self.repo.config.author.as_deref());
        let emit_patches = self.events.receiver_count() > 0;
        let log = if emit_patches {
            PatchLog::active()
        } else {
            PatchLog::inactive()
        };
        let mut tx = match state.doc.transaction_log_patches(log) {
            Ok(tx) => tx,
            Err(error) => return reply(caller, Err(Error::Internal(error.to_string()))),
        };
        let value = match change(&mut tx) {
            Ok(value) => value,
            Err(error) => {
                tx.rollback();
                return reply(caller, Err(error.into()));
            }
        };
        let (hash, mut log) = tx.commit_with(options.commit_options());
        let hash = match hash {
            None if kind == Change::First => Some(state.doc.empty_commit(options.commit_options())),
            other => other,
        };
        let made = hash.and_then(|hash| {
            let meta = state.doc.get_change_meta_by_hash(&hash)?;
            Some((hash, meta.start_op, meta.actor.into_owned()))
        });
        self.undo_stacks().committed(
            options.step_kind(),
            made.as_ref().map(|(h, s, a)| (*h, *s, a)),
        );
        let heads = state.doc.get_heads();
        let Some(hash) = hash else {
            return reply(
                caller,
                Ok(Committed {
                    value,
                    heads,
                    change: None,
                }),
            );
        };
        *self.heads.lock().unwrap_or_else(PoisonError::into_inner) = heads.clone();
        let Some(mut change) = state.doc.get_change_by_hash(&hash) else {
            let error = Error::Internal(format!("committed change {hash} is missing"));
            return reply(caller, Err(error));
        };
        // A document's first write is the whole document (here, this one change).
        let bytes = if self.book().is_new() {
            state.doc.save()
        } else {
            change.bytes().into_owned()
        };
        let id = self.id;
        let mut waiting = caller.take();
        let committed = Committed {
            value,
            heads: heads.clone(),
            change: Some(hash),
        };
        // While peers are syncing, nothing is sent until this change is stored (and no sync
        // state saved that claims it).
        let counted = self.repo.sync.get().is_some();
        if counted {
            state.sync.write_started();
        }
        let syncing = Arc::downgrade(self);
        self.submit_changes(
            bytes,
            &heads,
            Vec::new(),
            Box::new(move |result| {
                if counted && let Some(document) = syncing.upgrade() {
                    let ok = result.is_ok();
                    document.sync_later(move |sync, doc, cx, out| {
                        sync.persisted(cx, doc, ok, out);
                        SyncOutcome::default()
                    });
                }
                let outcome = match result {
                    Ok(()) => Ok(committed),
                    Err(StorageError::DocumentNotFound(_)) => Err(Error::DocumentDeleted(id)),
                    Err(error) => Err(error.into()),
                };
                reply(&mut waiting, outcome);
            }),
        );
        if emit_patches {
            let patches = state.doc.make_patches(&mut log);
            self.emit(DocEvent::Changed(DocChange {
                origin: ChangeOrigin::Local,
                heads,
                patches: Arc::new(patches),
            }));
        }
    }

    /// Submits `chunk`, preceded by any chunks whose earlier write failed, as one atomic
    /// submission. Call with the document's write lock held (it orders the submissions).
    fn submit_chunks(
        self: &Arc<Self>,
        chunk: Chunk,
        heads: &[ChangeHash],
        also: Vec<WriteOp>,
        done: WriteDone,
    ) {
        let chunks: Vec<Chunk> = {
            let mut book = self.book();
            let mut chunks = std::mem::take(&mut book.unsaved);
            chunks.push(chunk);
            book.pending.extend(chunks.iter().cloned());
            chunks
        };
        let hashes: Vec<ChunkHash> = chunks.iter().map(Chunk::hash).collect();
        let now = now_millis();
        let writes = chunks
            .into_iter()
            .map(|chunk| WriteOp::AppendChunk {
                id: self.id,
                chunk,
                heads: heads.to_vec(),
                now,
            })
            .chain(also)
            .collect();
        let document = self.clone();
        self.repo.storage.submit_with(
            writes,
            Box::new(move |result| {
                let outcome = document.book().settle(&hashes, result);
                // Let go of the document before the caller hears back, so that a caller who
                // drops its last handle next really unloads it.
                drop(document);
                done(outcome);
            }),
        );
    }

    /// Whether a compaction is due by the policy; if so, marks one as queued. Cheap: takes
    /// only the book lock.
    pub(crate) fn claim_compaction(&self) -> bool {
        let (snapshot, incremental) = {
            let book = self.book();
            if book.gone || self.repo.is_closed() {
                return false;
            }
            book.sizes()
        };
        self.repo
            .config
            .compaction
            .should_compact(snapshot, incremental)
            && !self.compaction_queued.swap(true, Ordering::AcqRel)
    }

    /// Runs a claimed compaction in the background (if a tokio runtime is running). The
    /// claim is released when the compaction ends, however it ends, even if its task never
    /// runs.
    pub(crate) fn spawn_claimed_compaction(self: &Arc<Self>) {
        let claim = ClaimedCompaction(self.clone());
        self.repo.spawn_background(async move {
            // Failures are logged and retried after a later change.
            let _ = claim.0.compact().await;
            drop(claim);
        });
    }

    /// Bytes of snapshots and of incrementals, stored or on their way.
    pub(crate) fn stored_sizes(&self) -> (u64, u64) {
        self.book().sizes()
    }

    /// Whether some changes failed to be written and wait for a retry.
    pub(crate) fn has_unsaved(&self) -> bool {
        !self.book().unsaved.is_empty()
    }

    /// Saves a new snapshot and replaces every chunk it covers, in one transaction. The
    /// outcome is recorded when storage reports it, even if this future is dropped.
    pub(crate) async fn compact(self: &Arc<Self>) -> Result<()> {
        let _serial = self.compaction.lock().await;
        let this = self.clone();
        let submitted = self
            .repo
            .executor
            .run(self.id, move || {
                let state = this.read();
                if this.deleted.load(Ordering::Acquire) || this.book().gone {
                    return None;
                }
                let snapshot = Chunk::new(ChunkKind::Snapshot, state.doc.save());
                // The read lock excludes changes, so every chunk submitted so far holds
                // changes the snapshot has: all of them are replaced, written or not.
                let replaces: Vec<ChunkHash> = {
                    let book = this.book();
                    book.stored
                        .iter()
                        .map(|(hash, _, _)| *hash)
                        .chain(book.pending.iter().chain(&book.unsaved).map(Chunk::hash))
                        .collect()
                };
                let creating = this.book().is_new();
                let write = snapshot_write(
                    creating,
                    this.id,
                    snapshot.clone(),
                    replaces.clone(),
                    state.doc.get_heads(),
                );
                let (sender, outcome) = oneshot::channel();
                let document = this.clone();
                // Submitted under the read lock: ordered after every change it covers.
                this.repo.storage.submit_with(
                    vec![write],
                    Box::new(move |result| {
                        document.book().compacted(&snapshot, &replaces, &result);
                        if let Err(error) = &result {
                            tracing::warn!(document = %document.id, %error, "compaction failed");
                        }
                        drop(document);
                        let _ = sender.send(result);
                    }),
                );
                drop(state);
                Some(outcome)
            })
            .await?;
        match submitted {
            None => Ok(()),
            Some(outcome) => Ok(outcome.await.map_err(|_| StorageError::Closed)??),
        }
    }

    /// Marks the document deleted and submits its delete, on the document's thread and
    /// under its write lock so that the delete is ordered after every change made before.
    /// `done` gets the outcome.
    pub(crate) fn submit_delete(&self, done: WriteDone) {
        let _state = self.write();
        self.deleted.store(true, Ordering::Release);
        self.repo
            .storage
            .submit_with(vec![WriteOp::DeleteDocument { id: self.id }], done);
    }

    /// Records the outcome of this document's delete.
    pub(crate) fn deleted_outcome(&self, result: &WriteResult) {
        match result {
            Ok(()) | Err(StorageError::DocumentNotFound(_)) => {
                self.book().gone = true;
                self.emit(DocEvent::Deleted);
            }
            Err(_) => self.deleted.store(false, Ordering::Release),
        }
    }

    /// Whether the document has content or is stored (a document asked of peers has
    /// neither until they answer).
    pub(crate) fn is_available(&self) -> bool {
        self.book().in_storage || !self.heads().is_empty()
    }

    /// Queues sync work on the document's thread (see [`sync_work`](Self::sync_work)).
    pub(crate) fn sync_later<F>(self: &Arc<Self>, work: F)
    where
        F: FnOnce(&mut DocSync, &mut Automerge, &Context<'_>, &mut Vec<Effect>) -> SyncOutcome
            + Send
            + 'static,
    {
        if self.repo.sync.get().is_none() {
            return; // no peer ever connected: nothing to tell
        }
        let document = self.clone();
        self.pending_work.fetch_add(1, Ordering::AcqRel);
        let queued = self
            .repo
            .executor
            .execute(self.id, move || document.sync_work(work));
        if let Err(error) = queued {
            self.pending_work.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(document = %self.id, %error, "sync work not queued");
        }
    }

    /// Whether the outcome of work `sequence` is the latest word on the document: no sync work finished after
    /// it and none is queued, so a decision taken on it (letting the document go) is not
    /// overtaken by work the driver has not heard of yet.
    pub(crate) fn is_latest(&self, sequence: u64) -> bool {
        self.pending_work.load(Ordering::Acquire) == 0
            && self.finished_work.load(Ordering::Acquire) == sequence
    }

    /// Runs sync work under the document's write lock (call on the document's thread).
    /// Storage effects are carried out under the lock, so remote changes reach storage in
    /// order with local ones; remote changes are announced to subscribers; the rest goes to
    /// the sync driver.
    pub(crate) fn sync_work<F>(self: &Arc<Self>, work: F)
    where
        F: FnOnce(&mut DocSync, &mut Automerge, &Context<'_>, &mut Vec<Effect>) -> SyncOutcome,
    {
        // Counted down before the driver hears the outcome, so that it sees whether more
        // work is queued behind this one.
        let done = WorkDone(&self.pending_work);
        let Some(driver) = self.repo.sync.get() else {
            return;
        };
        let mut state = self.write();
        // Storage said the document is gone (deleted): for good, so nothing is owed to it.
        // (A delete in progress may still fail: until then its sync work runs as usual.)
        if self.book().gone {
            driver.send(Command::Forget {
                document: self.id,
                instance: Some(self.clone()),
            });
            return;
        }
        let mut before = state.doc.get_heads();
        let cx = driver.config.context(Millis(now_millis().max(0) as u64));
        let mut out = Vec::new();
        let DocState { doc, sync } = &mut *state;
        let started = Instant::now();
        let mut outcome = work(sync, doc, &cx, &mut out);
        let took = started.elapsed();
        if took >= SLOW_SYNC_WORK {
            // Large documents arriving or being served: worth knowing when tuning a relay.
            tracing::debug!(document = %self.id, ?took, "slow sync work");
        }
        outcome.deadline = sync.next_deadline(&cx);
        outcome.forgettable = sync.forgettable(doc).then(|| sync.asked_in_vain());
        let unhandled = self.handles.load(Ordering::Acquire) == 0;
        outcome.unused = sync.unused() && unhandled;
        outcome.quiet = sync.quiet() && unhandled;
        outcome.settled = outcome.quiet && sync.settled(doc);
        outcome.sequence = self.finished_work.fetch_add(1, Ordering::AcqRel) + 1;
        outcome.engaged = sync.engaged_peers();
        let mut forward = Vec::new();
        for effect in out {
            match effect {
                Effect::Storage(StorageTask::Append {
                    bytes,
                    heads,
                    arrivals,
                    ..
                }) => {
                    self.submit_remote(bytes, &heads, arrivals);
                }
                Effect::Storage(StorageTask::SaveSyncState { peer, state, .. }) => {
                    let write = WriteOp::PutSyncState {
                        id: self.id,
                        peer,
                        state,
                    };
                    let id = self.id;
                    self.repo.storage.submit_with(
                        vec![write],
                        Box::new(move |result| {
                            if let Err(error) = result {
                                tracing::debug!(document = %id, %error, "sync state not saved");
                            }
                        }),
                    );
                }
                Effect::Storage(StorageTask::LoadSyncState { peer, .. }) => {
                    self.load_sync_state(&driver.runtime, peer);
                }
                Effect::Notify(Notification::RemoteChange { from, heads, .. }) => {
                    *self.heads.lock().unwrap_or_else(PoisonError::into_inner) = heads.clone();
                    let patches = if self.events.receiver_count() > 0 {
                        state.doc.diff(&before, &heads)
                    } else {
                        Vec::new()
                    };
                    before.clone_from(&heads);
                    self.emit(DocEvent::Changed(DocChange {
                        origin: ChangeOrigin::Remote { peer: from },
                        heads,
                        patches: Arc::new(patches),
                    }));
                }
                other => forward.push(other),
            }
        }
        drop(state);
        drop(done);
        driver.send(Command::FromDocument {
            instance: self.clone(),
            effects: forward,
            outcome,
        });
    }

    /// Stores changes received from peers: the whole document if it is not in storage yet
    /// (the synchroniser's first write of a document is a whole save), else an incremental
    /// chunk. Call under the write lock.
    fn submit_remote(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        heads: &[ChangeHash],
        arrivals: Vec<Arrivals>,
    ) {
        let syncing = Arc::downgrade(self);
        let done: WriteDone = Box::new(move |result| {
            if let Some(document) = syncing.upgrade() {
                let ok = result.is_ok();
                document.sync_later(move |sync, doc, cx, out| {
                    sync.persisted(cx, doc, ok, out);
                    SyncOutcome::default()
                });
            }
        });
        // Who delivered them is stored with them, in one transaction.
        let also = arrivals
            .into_iter()
            .map(|arrivals| WriteOp::RecordArrivals {
                id: self.id,
                user: arrivals.user,
                changes: arrivals.changes,
                now: arrivals.at.0 as i64,
            })
            .collect();
        self.submit_changes(bytes, heads, also, done);
    }

    /// Stores changes: as the document, if it is not in storage yet (`bytes` must then be
    /// the whole document), else as an incremental chunk. Call under the write lock.
    fn submit_changes(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        heads: &[ChangeHash],
        also: Vec<WriteOp>,
        done: WriteDone,
    ) {
        if !self.book().is_new() {
            let chunk = Chunk::new(ChunkKind::Incremental, bytes);
            return self.submit_chunks(chunk, heads, also, done);
        }
        let chunk = Chunk::new(ChunkKind::Snapshot, bytes);
        {
            let mut book = self.book();
            // The whole document: it covers whatever an earlier, failed creation held.
            book.unsaved.clear();
            book.pending.push(chunk.clone());
        }
        let hashes = vec![chunk.hash()];
        let write = WriteOp::CreateDocument {
            id: self.id,
            chunk,
            heads: heads.to_vec(),
            now: now_millis(),
        };
        let document = self.clone();
        self.repo.storage.submit_with(
            std::iter::once(write).chain(also).collect(),
            Box::new(move |result| {
                let outcome = document.book().settle(&hashes, result);
                drop(document);
                done(outcome);
            }),
        );
    }

    /// Loads the sync state saved with a peer's storage, then hands it to the synchroniser.
    fn load_sync_state(self: &Arc<Self>, runtime: &tokio::runtime::Handle, peer: StorageId) {
        let document = self.clone();
        runtime.spawn(async move {
            let state = match document
                .repo
                .storage
                .load_sync_state(document.id, peer.clone())
                .await
            {
                Ok(state) => state,
                Err(error) => {
                    tracing::warn!(document = %document.id, %error, "sync state not loaded");
                    None
                }
            };
            document.sync_later(move |sync, doc, cx, out| {
                let (faults, gossip) =
                    sync.sync_state_loaded(cx, doc, &peer, state.as_deref(), out);
                SyncOutcome {
                    faults,
                    gossip,
                    ..SyncOutcome::default()
                }
            });
        });
    }

    pub(crate) fn emit(&self, event: DocEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }
}

impl Drop for Document {
    /// The document is unloaded (its last handle, view and pending write are gone). If its
    /// incremental chunks are more than a small share of its snapshot (the policy's
    /// `idle_ratio`), or some changes failed to be written, its final state is saved as a
    /// snapshot replacing every chunk, on its thread: documents at rest are stored compactly
    /// and load fast, and a transient storage error loses nothing while the process lives.
    fn drop(&mut self) {
        let book = self.book.get_mut().unwrap_or_else(PoisonError::into_inner);
        // After close, storage is closed; `Repo::close` saved what the open documents needed.
        if book.gone || self.deleted.load(Ordering::Acquire) || self.repo.is_closed() {
            return;
        }
        let (snapshot_bytes, incremental_bytes) = book.sizes();
        let idle_due = self
            .repo
            .config
            .compaction
            .should_compact_idle(snapshot_bytes, incremental_bytes);
        if !idle_due && book.unsaved.is_empty() {
            return;
        }
        let creating = book.is_new();
        if creating && book.unsaved.is_empty() {
            return; // never had anything to store (a document asked of peers in vain)
        }
        // No write is pending (each holds the document), so stored and unsaved are all.
        let replaces: Vec<ChunkHash> = book
            .stored
            .iter()
            .map(|(hash, _, _)| *hash)
            .chain(book.unsaved.iter().map(Chunk::hash))
            .collect();
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let doc = std::mem::take(&mut state.doc);
        let (id, repo) = (self.id, self.repo.clone());
        // A load of this document waits for the write (see `RepoShared::unload_save_done`).
        let done = repo.unload_save_started(id);
        let save = move || {
            let snapshot = Chunk::new(ChunkKind::Snapshot, doc.save());
            let write = snapshot_write(creating, id, snapshot, replaces, doc.get_heads());
            let storage = repo.storage.clone();
            storage.submit_with(
                vec![write],
                Box::new(move |result| {
                    match result {
                        Ok(()) | Err(StorageError::DocumentNotFound(_)) => {}
                        Err(error) => {
                            tracing::error!(document = %id, %error, "saving an unloaded document failed");
                        }
                    }
                    repo.unload_save_finished(id, &done);
                }),
            );
        };
        if let Err(error) = self.repo.executor.execute(id, save) {
            tracing::error!(document = %id, %error, "cannot save an unloaded document");
        }
    }
}

/// A claimed background compaction: releases the claim when dropped, so a cancelled, failed
/// or never-started compaction cannot leave it set (automerge-repo's PR #672 fixed such a
/// stuck flag).
struct ClaimedCompaction(Arc<Document>);

impl Drop for ClaimedCompaction {
    fn drop(&mut self) {
        self.0.compaction_queued.store(false, Ordering::Release);
    }
}
