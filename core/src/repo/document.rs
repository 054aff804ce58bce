//! [`Document`]: one loaded document — its automerge state, what is stored of it, and the
//! rules that keep the two in step (ordered writes, retries, compaction).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use automerge::{
    ActorId, Automerge, AutomergeError, ChangeHash, LoadOptions, OnPartialLoad, PatchLog, ReadDoc,
    VerificationMode, transaction::Transaction,
};
use tokio::sync::broadcast;

use super::{
    doc_event::{ChangeOrigin, DocChange, DocEvent},
    repo::RepoShared,
};
use crate::{
    DocumentId, Error, Result,
    store::{Chunk, ChunkHash, ChunkKind, StorageFuture, StoredDocument, WriteOp},
};

/// A loaded document, shared by all its handles.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) id: DocumentId,
    state: RwLock<DocState>,
    pub(crate) events: broadcast::Sender<DocEvent>,
    pub(crate) repo: Arc<RepoShared>,
}

#[derive(Debug)]
pub(crate) struct DocState {
    pub(crate) doc: Automerge,
    pub(crate) deleted: bool,
    /// Chunks submitted to storage (written or in flight): what a compaction replaces.
    stored: Vec<StoredChunk>,
    /// Chunks whose write failed; they are submitted again with the next change, and any
    /// compaction covers them.
    unsaved: Vec<Chunk>,
    compacting: bool,
}

#[derive(Debug, Clone, Copy)]
struct StoredChunk {
    hash: ChunkHash,
    kind: ChunkKind,
    len: u64,
}

impl From<&Chunk> for StoredChunk {
    fn from(chunk: &Chunk) -> Self {
        Self {
            hash: chunk.hash(),
            kind: chunk.kind(),
            len: chunk.len() as u64,
        }
    }
}

/// A local change applied in memory whose write is on its way to storage.
pub(crate) struct AppliedChange<R> {
    pub(crate) value: R,
    pub(crate) heads: Vec<ChangeHash>,
    pub(crate) hash: Option<ChangeHash>,
    pub(crate) write: Option<(Chunk, StorageFuture<()>)>,
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Loads automerge bytes that may be hostile: an error or a panic inside automerge becomes
/// an `Err` with automerge's message.
pub(crate) fn load_untrusted(bytes: &[u8]) -> std::result::Result<Automerge, String> {
    let options = LoadOptions::new()
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

impl DocState {
    /// A document as it was just stored by a create.
    pub(crate) fn created(doc: Automerge, first: &Chunk) -> Self {
        Self {
            doc,
            deleted: false,
            stored: vec![first.into()],
            unsaved: Vec::new(),
            compacting: false,
        }
    }

    /// Rebuilds a document from storage. Blocking: CPU-bound automerge work.
    pub(crate) fn decode(id: DocumentId, stored: &StoredDocument) -> Result<Self> {
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
        let doc = load_untrusted(&bytes).map_err(|reason| Error::CorruptDocument {
            document: id,
            reason,
        })?;
        Ok(Self {
            doc: doc.with_actor(ActorId::random()),
            deleted: false,
            stored: stored.chunks.iter().map(StoredChunk::from).collect(),
            unsaved: Vec::new(),
            compacting: false,
        })
    }

    fn bytes_of(&self, kind: ChunkKind) -> u64 {
        let stored = self.stored.iter().filter(|c| c.kind == kind).map(|c| c.len);
        let unsaved = self.unsaved.iter().filter(|c| c.kind() == kind);
        stored.sum::<u64>() + unsaved.map(|c| c.len() as u64).sum::<u64>()
    }
}

impl Document {
    pub(crate) fn new(id: DocumentId, state: DocState, repo: Arc<RepoShared>) -> Self {
        let (events, _) = broadcast::channel(repo.config.event_capacity.max(1));
        Self {
            id,
            state: RwLock::new(state),
            events,
            repo,
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

    /// Applies a local change in memory and submits its chunk to storage while still holding
    /// the lock, so that chunks reach storage in the order their changes were made.
    /// Blocking: runs the caller's closure and automerge work.
    pub(crate) fn apply_local<R, F>(&self, change: F) -> Result<AppliedChange<R>>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<R, AutomergeError>,
    {
        let mut state = self.write();
        if state.deleted {
            return Err(Error::DocumentDeleted(self.id));
        }
        let emit_patches = self.events.receiver_count() > 0;
        let log = if emit_patches {
            PatchLog::active()
        } else {
            PatchLog::inactive()
        };
        // A fresh patch log always belongs to the document it is started on.
        let mut tx = state
            .doc
            .transaction_log_patches(log)
            .map_err(|error| Error::Panicked(error.to_string()))?;
        let value = match change(&mut tx) {
            Ok(value) => value,
            Err(error) => {
                tx.rollback();
                return Err(error.into());
            }
        };
        let (hash, mut log) = tx.commit();
        let heads = state.doc.get_heads();
        let Some(hash) = hash else {
            return Ok(AppliedChange {
                value,
                heads,
                hash: None,
                write: None,
            });
        };
        let mut change = state
            .doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| Error::Panicked(format!("committed change {hash} is missing")))?;
        let chunk = Chunk::new(ChunkKind::Incremental, change.bytes().into_owned());
        let write = self.submit_chunk(&mut state, chunk.clone(), heads.clone());
        if emit_patches {
            let patches = state.doc.make_patches(&mut log);
            self.emit(DocEvent::Changed(DocChange {
                origin: ChangeOrigin::Local,
                heads: heads.clone(),
                patches: Arc::new(patches),
            }));
        }
        Ok(AppliedChange {
            value,
            heads,
            hash: Some(hash),
            write: Some((chunk, write)),
        })
    }

    /// Submits a chunk (with any chunks whose earlier write failed) under the state lock.
    fn submit_chunk(
        &self,
        state: &mut DocState,
        chunk: Chunk,
        heads: Vec<ChangeHash>,
    ) -> StorageFuture<()> {
        let now = now_millis();
        let mut writes: Vec<WriteOp> = state
            .unsaved
            .drain(..)
            .map(|retry| WriteOp::AppendChunk {
                id: self.id,
                chunk: retry,
                heads: heads.clone(),
                now,
            })
            .collect();
        for write in &writes {
            if let WriteOp::AppendChunk { chunk, .. } = write {
                state.stored.push(chunk.into());
            }
        }
        state.stored.push((&chunk).into());
        writes.push(WriteOp::AppendChunk {
            id: self.id,
            chunk,
            heads,
            now,
        });
        self.repo.storage.submit(writes)
    }

    /// Records that a chunk's write failed, so the next change or compaction stores it.
    pub(crate) fn write_failed(&self, chunk: Chunk) {
        let mut state = self.write();
        state.stored.retain(|stored| stored.hash != chunk.hash());
        if !state.deleted && !state.unsaved.iter().any(|c| c.hash() == chunk.hash()) {
            state.unsaved.push(chunk);
        }
    }

    /// Whether a compaction is due (by the policy's active or idle threshold); if so, marks
    /// one as running.
    pub(crate) fn claim_compaction(&self, idle: bool) -> bool {
        let mut state = self.write();
        let policy = &self.repo.config.compaction;
        let (snapshot, incremental) = (
            state.bytes_of(ChunkKind::Snapshot),
            state.bytes_of(ChunkKind::Incremental),
        );
        let due = !state.deleted
            && !state.compacting
            && if idle {
                policy.should_compact_idle(snapshot, incremental)
            } else {
                policy.should_compact(snapshot, incremental)
            };
        if due {
            state.compacting = true;
        }
        due
    }

    /// Gives up a claimed compaction that could not be started.
    pub(crate) fn release_compaction(&self) {
        self.write().compacting = false;
    }

    /// Saves a new snapshot and replaces every chunk it covers. Call after
    /// [`claim_compaction`](Self::claim_compaction) returned true (or to force one).
    pub(crate) async fn compact(self: Arc<Self>) -> Result<()> {
        let this = self.clone();
        let prepared = self
            .repo
            .executor
            .run(self.id, move || {
                let state = this.read();
                if state.deleted {
                    return None;
                }
                let snapshot = Chunk::new(ChunkKind::Snapshot, state.doc.save());
                let replaces: Vec<ChunkHash> = state
                    .stored
                    .iter()
                    .map(|c| c.hash)
                    .chain(state.unsaved.iter().map(Chunk::hash))
                    .collect();
                Some((snapshot, replaces))
            })
            .await;
        let outcome = match prepared {
            Ok(Some((snapshot, replaces))) => {
                let write = WriteOp::Compact {
                    id: self.id,
                    snapshot: snapshot.clone(),
                    replaces: replaces.clone(),
                };
                let result = self.repo.storage.submit(vec![write]).await;
                let mut state = self.write();
                if result.is_ok() {
                    state.stored.retain(|c| !replaces.contains(&c.hash));
                    state.unsaved.retain(|c| !replaces.contains(&c.hash()));
                    state.stored.insert(0, (&snapshot).into());
                }
                result.map_err(Error::from)
            }
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        self.write().compacting = false;
        if let Err(error) = &outcome {
            tracing::warn!(document = %self.id, %error, "compaction failed; will retry later");
        }
        outcome
    }

    pub(crate) fn emit(&self, event: DocEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }
}
