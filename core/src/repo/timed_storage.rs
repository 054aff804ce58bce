//! A storage that reports how long each submission took to become durable.

use std::{sync::Arc, time::Instant};

use automerge::ChangeHash;

use crate::{
    DocumentId, StorageId,
    observe::Observer,
    store::{Arrival, DocumentMeta, Storage, StorageFuture, StoredDocument, WriteDone, WriteOp},
};

/// Wraps a repo's storage so that its [`Observer`] hears the latency of every submission,
/// whatever the backend; everything else passes through.
#[derive(Debug)]
pub(crate) struct TimedStorage {
    inner: Arc<dyn Storage>,
    observer: Arc<dyn Observer>,
}

impl TimedStorage {
    pub(crate) fn new(inner: Arc<dyn Storage>, observer: Arc<dyn Observer>) -> Self {
        Self { inner, observer }
    }
}

impl Storage for TimedStorage {
    fn storage_id(&self) -> &StorageId {
        self.inner.storage_id()
    }

    fn submit_with(&self, writes: Vec<WriteOp>, done: WriteDone) {
        let (observer, submitted) = (self.observer.clone(), Instant::now());
        self.inner.submit_with(
            writes,
            Box::new(move |result| {
                observer.storage_committed(submitted.elapsed());
                done(result);
            }),
        );
    }

    fn load(&self, id: DocumentId) -> StorageFuture<Option<StoredDocument>> {
        self.inner.load(id)
    }

    fn list(&self) -> StorageFuture<Vec<DocumentMeta>> {
        self.inner.list()
    }

    fn count(&self) -> StorageFuture<u64> {
        self.inner.count()
    }

    fn load_sync_state(&self, id: DocumentId, peer: StorageId) -> StorageFuture<Option<Vec<u8>>> {
        self.inner.load_sync_state(id, peer)
    }

    fn arrivals(&self, id: DocumentId, changes: Vec<ChangeHash>) -> StorageFuture<Vec<Arrival>> {
        self.inner.arrivals(id, changes)
    }

    fn close(&self) -> StorageFuture<()> {
        self.inner.close()
    }
}
