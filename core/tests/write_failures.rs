//! When storage fails a write, the change's caller gets the error and the change is not lost:
//! it is written with the next change, by a compaction, or when the document is unloaded.
//!
//! The failures are injected by a wrapper around the in-memory store (a fake inside this test
//! only); a second repo over the same store reads what was really stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use weft::{
    DocumentId, Error, Repo, RepoConfig, StorageId,
    automerge::{ROOT, ReadDoc, transaction::Transactable},
    store::{
        DocumentMeta, MemoryStorage, Storage, StorageError, StorageFuture, StoredDocument,
        WriteDone, WriteOp,
    },
};

/// Fails the next `failures` submissions with "disk full".
#[derive(Debug)]
struct FailingStorage {
    inner: Arc<MemoryStorage>,
    failures: AtomicUsize,
}

impl Storage for FailingStorage {
    fn storage_id(&self) -> &StorageId {
        self.inner.storage_id()
    }

    fn submit_with(&self, writes: Vec<WriteOp>, done: WriteDone) {
        let fail = self
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            done(Err(StorageError::DiskFull {
                detail: "injected by the test".into(),
            }));
        } else {
            self.inner.submit_with(writes, done);
        }
    }

    fn load(&self, id: DocumentId) -> StorageFuture<Option<StoredDocument>> {
        self.inner.load(id)
    }

    fn list(&self) -> StorageFuture<Vec<DocumentMeta>> {
        self.inner.list()
    }

    fn load_sync_state(&self, id: DocumentId, peer: StorageId) -> StorageFuture<Option<Vec<u8>>> {
        self.inner.load_sync_state(id, peer)
    }

    fn close(&self) -> StorageFuture<()> {
        self.inner.close()
    }
}

struct Setup {
    repo: Repo,
    storage: Arc<FailingStorage>,
    /// Reads what is really stored.
    observer: Repo,
}

fn setup(config: RepoConfig) -> Setup {
    let inner = Arc::new(MemoryStorage::new());
    let storage = Arc::new(FailingStorage {
        inner: inner.clone(),
        failures: AtomicUsize::new(0),
    });
    Setup {
        repo: Repo::with_storage(storage.clone(), config.clone()),
        storage,
        observer: Repo::with_storage(inner, config),
    }
}

fn no_compaction() -> RepoConfig {
    let mut config = RepoConfig::default();
    config.compaction.ratio = f64::INFINITY;
    config.compaction.idle_ratio = f64::INFINITY;
    config
}

/// A document in a repo whose next `failures` submissions fail (nothing is compacted).
async fn document_with_failures(failures: usize) -> (weft::DocHandle, Setup) {
    let setup = setup(no_compaction());
    let doc = setup.repo.create().await.unwrap();
    setup.storage.failures.store(failures, Ordering::Release);
    (doc, setup)
}

fn is_disk_full<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Storage(StorageError::DiskFull { .. })))
}

/// The keys stored for `id`, read by a fresh load through the observer.
async fn stored_keys(observer: &Repo, id: DocumentId) -> Vec<String> {
    let doc = observer.find(id).await.unwrap();
    let keys = doc.with_doc(|d| d.keys(ROOT).collect());
    drop(doc);
    keys
}

#[tokio::test]
async fn failed_writes_are_retried_with_the_next_change() {
    let (doc, Setup { observer, .. }) = document_with_failures(2).await;
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    // The retry of `a` goes with `b` and fails again: both must be kept for later.
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "b", 2)).await));
    doc.change(|tx| tx.put(ROOT, "c", 3)).await.unwrap();
    assert_eq!(stored_keys(&observer, doc.id()).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_change_whose_caller_stopped_waiting_is_still_retried() {
    let (doc, Setup { observer, .. }) = document_with_failures(1).await;
    // Queued, then abandoned: its failure must still be recorded for a retry.
    drop(doc.change(|tx| tx.put(ROOT, "abandoned", 1)));
    doc.change(|tx| tx.put(ROOT, "next", 2)).await.unwrap();
    assert_eq!(
        stored_keys(&observer, doc.id()).await,
        ["abandoned", "next"]
    );
}

#[tokio::test]
async fn a_compaction_stores_changes_whose_write_failed() {
    let (doc, Setup { observer, .. }) = document_with_failures(1).await;
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    doc.compact().await.unwrap();
    assert_eq!(stored_keys(&observer, doc.id()).await, ["a"]);
    let meta = observer.list().await.unwrap().remove(0);
    assert_eq!(meta.chunk_count, 1, "one snapshot: {meta:?}");
}

#[tokio::test]
async fn unloading_a_document_writes_changes_whose_write_failed() {
    let (doc, Setup { observer, .. }) = document_with_failures(1).await;
    let id = doc.id();
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    drop(doc);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stored_keys(&observer, id).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the change was never written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stored_keys(&observer, id).await, ["a"]);
}

#[tokio::test]
async fn a_failed_delete_leaves_the_document_usable() {
    let (doc, Setup { repo, .. }) = document_with_failures(1).await;
    assert!(is_disk_full(&repo.delete(doc.id()).await));
    doc.change(|tx| tx.put(ROOT, "still", "here"))
        .await
        .unwrap();
    assert!(repo.find(doc.id()).await.is_ok());
}
