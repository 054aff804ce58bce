//! [`MemoryStorage`]: the in-memory twin of the SQLite store.

use automerge::ChangeHash;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::ready,
    sync::{Mutex, MutexGuard, PoisonError},
};

use super::{
    Arrival, Chunk, ChunkKind, DocumentMeta, Storage, StorageError, StorageFuture, StoredDocument,
    WriteDone, WriteOp,
};
use crate::{DocumentId, StorageId};

/// Storage that keeps everything in memory: for tests and for apps whose documents need not
/// outlive the process. It follows the same contract as [`SqliteStorage`](super::SqliteStorage)
/// (the conformance suite checks both).
#[derive(Debug)]
pub struct MemoryStorage {
    storage_id: StorageId,
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    closed: bool,
    documents: BTreeMap<DocumentId, MemoryDocument>,
    sync_states: BTreeMap<(DocumentId, StorageId), Vec<u8>>,
}

#[derive(Debug, Clone)]
struct MemoryDocument {
    meta: DocumentMeta,
    chunks: Vec<Chunk>,
    /// Who delivered each change (kept with the document: deleted with it, restored with it
    /// when a submission fails).
    arrivals: HashMap<ChangeHash, Arrival>,
}

impl MemoryDocument {
    fn recount(&mut self) {
        let size = |kind| {
            self.chunks
                .iter()
                .filter(|chunk| chunk.kind() == kind)
                .map(|chunk| chunk.len() as u64)
                .sum()
        };
        self.meta.snapshot_bytes = size(ChunkKind::Snapshot);
        self.meta.incremental_bytes = size(ChunkKind::Incremental);
        self.meta.chunk_count = self.chunks.len() as u64;
    }

    fn add(&mut self, chunk: Chunk) {
        if !self.chunks.iter().any(|held| held.hash() == chunk.hash()) {
            self.chunks.push(chunk);
        }
    }
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// An empty store with a fresh storage id.
    pub fn new() -> Self {
        Self {
            storage_id: StorageId::random(),
            state: Mutex::new(MemoryState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        // Every critical section leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_state(&self) -> Result<MutexGuard<'_, MemoryState>, StorageError> {
        let state = self.lock();
        if state.closed {
            return Err(StorageError::Closed);
        }
        Ok(state)
    }
}

impl MemoryState {
    fn apply(&mut self, write: WriteOp) -> Result<(), StorageError> {
        match write {
            WriteOp::CreateDocument {
                id,
                chunk,
                heads,
                now,
            } => {
                if self.documents.contains_key(&id) {
                    return Err(StorageError::DocumentExists(id));
                }
                let mut document = MemoryDocument {
                    meta: DocumentMeta {
                        id,
                        created_at: now,
                        updated_at: now,
                        heads,
                        snapshot_bytes: 0,
                        incremental_bytes: 0,
                        chunk_count: 0,
                    },
                    chunks: vec![chunk],
                    arrivals: HashMap::new(),
                };
                document.recount();
                self.documents.insert(id, document);
            }
            WriteOp::AppendChunk {
                id,
                chunk,
                heads,
                now,
            } => {
                let document = self.document(id)?;
                document.add(chunk);
                document.meta.heads = heads;
                document.meta.updated_at = now;
                document.recount();
            }
            WriteOp::Compact {
                id,
                snapshot,
                replaces,
            } => {
                let document = self.document(id)?;
                let keep = snapshot.hash();
                document
                    .chunks
                    .retain(|chunk| chunk.hash() == keep || !replaces.contains(&chunk.hash()));
                document.add(snapshot);
                // Snapshots first, as the SQLite store returns them.
                document.chunks.sort_by_key(|chunk| chunk.kind().code());
                document.recount();
            }
            WriteOp::DeleteDocument { id } => {
                self.documents
                    .remove(&id)
                    .ok_or(StorageError::DocumentNotFound(id))?;
                self.sync_states.retain(|(document, _), _| *document != id);
            }
            WriteOp::RecordArrivals {
                id,
                user,
                changes,
                now,
            } => {
                let document = self.document(id)?;
                for change in changes {
                    document.arrivals.entry(change).or_insert_with(|| Arrival {
                        change,
                        user: user.clone(),
                        received_at: now,
                    });
                }
            }
            WriteOp::PutSyncState { id, peer, state } => {
                self.document(id)?;
                self.sync_states.insert((id, peer), state);
            }
        }
        Ok(())
    }

    fn document(&mut self, id: DocumentId) -> Result<&mut MemoryDocument, StorageError> {
        self.documents
            .get_mut(&id)
            .ok_or(StorageError::DocumentNotFound(id))
    }
}

impl Storage for MemoryStorage {
    fn storage_id(&self) -> &StorageId {
        &self.storage_id
    }

    fn submit_with(&self, writes: Vec<WriteOp>, done: WriteDone) {
        let result = self.open_state().and_then(|mut state| {
            // Atomic: remember the documents the writes touch and put them back on failure.
            let touched: BTreeSet<DocumentId> = writes.iter().map(WriteOp::document_id).collect();
            let documents: Vec<_> = touched
                .iter()
                .map(|id| (*id, state.documents.get(id).cloned()))
                .collect();
            let sync_states: Vec<_> = state
                .sync_states
                .iter()
                .filter(|((id, _), _)| touched.contains(id))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            let result = writes.into_iter().try_for_each(|write| state.apply(write));
            if result.is_err() {
                for (id, document) in documents {
                    match document {
                        Some(document) => state.documents.insert(id, document),
                        None => state.documents.remove(&id),
                    };
                }
                state.sync_states.retain(|(id, _), _| !touched.contains(id));
                state.sync_states.extend(sync_states);
            }
            result
        });
        done(result);
    }

    fn load(&self, id: DocumentId) -> StorageFuture<Option<StoredDocument>> {
        let result = self.open_state().map(|state| {
            state.documents.get(&id).map(|document| StoredDocument {
                meta: document.meta.clone(),
                chunks: document.chunks.clone(),
            })
        });
        Box::pin(ready(result))
    }

    fn list(&self) -> StorageFuture<Vec<DocumentMeta>> {
        let result = self.open_state().map(|state| {
            state
                .documents
                .values()
                .map(|document| document.meta.clone())
                .collect()
        });
        Box::pin(ready(result))
    }

    fn load_sync_state(&self, id: DocumentId, peer: StorageId) -> StorageFuture<Option<Vec<u8>>> {
        let result = self
            .open_state()
            .map(|state| state.sync_states.get(&(id, peer)).cloned());
        Box::pin(ready(result))
    }

    fn arrivals(&self, id: DocumentId, changes: Vec<ChangeHash>) -> StorageFuture<Vec<Arrival>> {
        let result = self.open_state().map(|state| {
            state.documents.get(&id).map_or_else(Vec::new, |document| {
                changes
                    .iter()
                    .filter_map(|change| document.arrivals.get(change).cloned())
                    .collect()
            })
        });
        Box::pin(ready(result))
    }

    fn close(&self) -> StorageFuture<()> {
        self.lock().closed = true;
        Box::pin(ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    crate::storage_conformance_tests!(async { (crate::store::MemoryStorage::new(), ()) });
}
